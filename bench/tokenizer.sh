#!/bin/sh
# bench/tokenizer.sh: learning a byte-level BPE vocabulary (8000 ids) from Multi30k
# train, German and English together (about 3.9 MB), and encoding that corpus with it:
# kronformer's tokenizer against SentencePiece, medians of 3 runs each.
#
# SentencePiece runs as
#   spm_train --input=CORPUS --model_prefix=X --vocab_size=8000 --model_type=bpe
#             --num_threads=2 --character_coverage=1.0 --byte_fallback=true
#   spm_encode --model=X.model --output_format=id < CORPUS > /dev/null
# --character_coverage=1.0 and --byte_fallback=true make it cover every input, as a
# byte-level tokenizer does. Its times are of whole processes (they include reading
# the corpus and, for spm_encode, printing the ids); ours are of the library calls on
# the corpus in memory (reading the 3.9 MB file takes a few milliseconds).
# Needs gzip, GNU date (+%N) and, for the comparison, the sentencepiece package.
# VOCAB=n and RUNS=n override the defaults.
set -e
cd "$(dirname "$0")/.."
DATA=../shared/data/multi30k_de_en
VOCAB=${VOCAB:-8000}
RUNS=${RUNS:-3}
if [ ! -f "$DATA/train.de.gz" ] || [ ! -f "$DATA/train.en.gz" ]; then
    echo "tokenizer bench: skipped ($DATA/train.{de,en}.gz not found)"
    exit 0
fi
make -s bench/bench_tokenizer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gzip -dc "$DATA/train.de.gz" "$DATA/train.en.gz" >"$tmp/corpus.txt"

echo "== kronformer (bench/bench_tokenizer, vocab $VOCAB, $RUNS runs)"
ours=$(./bench/bench_tokenizer "$tmp/corpus.txt" "$VOCAB" "$RUNS")
echo "$ours"
our_train=$(echo "$ours" | sed -n 's/^train: \([0-9.]*\) s.*/\1/p')
our_encode=$(echo "$ours" | sed -n 's/^encode: \([0-9.]*\) s.*/\1/p')

if ! command -v spm_train >/dev/null || ! command -v spm_encode >/dev/null; then
    echo "SentencePiece comparison: skipped (spm_train not found; apt-get install sentencepiece)"
    exit 0
fi

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# seconds taken by the command given as arguments (its output discarded)
elapsed() {
    t0=$(now)
    "$@" >/dev/null 2>&1
    t1=$(now)
    echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }'
}
spm_enc() { spm_encode --model="$tmp/spm.model" --output_format=id <"$tmp/corpus.txt"; }

echo "== SentencePiece (spm_train / spm_encode, vocab $VOCAB, $RUNS runs)"
: >"$tmp/train.txt"
: >"$tmp/encode.txt"
i=0
while [ $i -lt "$RUNS" ]; do
    elapsed spm_train --input="$tmp/corpus.txt" --model_prefix="$tmp/spm" \
        --vocab_size="$VOCAB" --model_type=bpe --num_threads=2 \
        --character_coverage=1.0 --byte_fallback=true >>"$tmp/train.txt"
    i=$((i + 1))
done
i=0
while [ $i -lt "$RUNS" ]; do
    elapsed spm_enc >>"$tmp/encode.txt"
    i=$((i + 1))
done
spm_train_s=$(median <"$tmp/train.txt")
spm_encode_s=$(median <"$tmp/encode.txt")
spm_tokens=$(spm_enc | wc -w)
echo "train: $spm_train_s s (median of $RUNS)"
echo "encode: $spm_encode_s s (median of $RUNS), $spm_tokens tokens"

echo "== ratios (SentencePiece time / kronformer time; above 1 means kronformer is faster)"
echo "$spm_train_s $our_train $spm_encode_s $our_encode" |
    awk '{ printf "train: %.1fx\nencode: %.1fx\n", $1 / $2, $3 / $4 }'
