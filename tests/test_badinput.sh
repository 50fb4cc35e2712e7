#!/bin/sh
# tests/test_badinput.sh: a table of bad inputs to the command line. Each must end with
# exactly one line "train: error: ..." on stderr, exit status 2 (no crash, no signal),
# and leave every existing file byte-identical (checksums before and after).
# Run from the repository root after `make train`.

TRAIN=${TRAIN:-./train}
T=$(mktemp -d) || exit 1
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T" "$T.before" "$T.after" "$T.out" "$T.err"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
sums() { find "$T" -type f | sort | xargs cksum; }

# bad NAME CMD...: the checks above (stdin from /dev/null unless redirected by CMD)
bad() {
    name=$1; shift
    sums >"$T.before"
    "$@" </dev/null >"$T.out" 2>"$T.err"
    rc=$?
    sums >"$T.after"
    if [ $rc -ne 2 ]; then fail "$name" "exit $rc, expected 2: $(head -c 200 "$T.err")"
    elif [ "$(wc -l <"$T.err")" -ne 1 ] || ! grep -q '^train: error: ' "$T.err"; then
        fail "$name" "not one 'train: error:' line: $(head -c 300 "$T.err")"
    elif ! cmp -s "$T.before" "$T.after"; then fail "$name" "files changed: $(diff "$T.before" "$T.after" | head -n 3)"
    else pass "$name"; fi
}

. tests/tiny_data.sh
tiny_data "$T"
$TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/d" --vocab-size 300 >/dev/null 2>&1
printf 'hello world\nsecond line\n' >"$T/other.txt"
$TRAIN prepare --text "$T/other.txt" --out "$T/lmd" --max-len 8 --vocab-size 260 --valid-fraction 0.5 >/dev/null 2>&1
SMALL="--d-model 32 --heads 2 --ffn 64 --layers 1 --batch-tokens 300 --threads 1 --bleu-sentences 0"
$TRAIN fit --data "$T/d" --out "$T/r" $SMALL --steps 4 --eval-every 2 >/dev/null 2>&1
: >"$T/empty"
head -c 3000 /dev/urandom >"$T/binary"
mkdir "$T/adir"
# broken copies of a data directory and of a run directory
broken() { rm -rf "$T/$1"; cp -r "$T/$2" "$T/$1"; }
broken d_trunc d; head -c 100 "$T/d/train.src" >"$T/d_trunc/train.src"
broken d_empty d; : >"$T/d_empty/train.tgt"
broken d_binary d; cp "$T/binary" "$T/d_binary/valid.src"
broken d_version d; printf 'KFTOKSEQ\011' | dd of="$T/d_version/train.src" conv=notrunc 2>/dev/null
broken d_tok d; cp "$T/lmd/tokenizer.bin" "$T/d_tok/tokenizer.bin"
broken d_toktrunc d; head -c 20 "$T/d/tokenizer.bin" >"$T/d_toktrunc/tokenizer.bin"
broken d_nodataset d; rm "$T/d_nodataset/dataset.txt"
broken d_dataset_binary d; cp "$T/binary" "$T/d_dataset_binary/dataset.txt"
broken d_dir d; rm "$T/d_dir/train.src"; mkdir "$T/d_dir/train.src"
broken r_trunc r; head -c 500 "$T/r/model.safetensors" >"$T/r_trunc/model.safetensors"
broken r_binary r; cp "$T/binary" "$T/r_binary/model.safetensors"
broken r_empty r; : >"$T/r_empty/model.safetensors"
broken r_tok r; cp "$T/lmd/tokenizer.bin" "$T/r_tok/tokenizer.bin"
broken r_opt r; head -c 700 "$T/r/optimizer.safetensors" >"$T/r_opt/optimizer.safetensors"
broken r_runtxt r; cp "$T/binary" "$T/r_runtxt/run.txt"
printf 'one two\n' >"$T/in.txt"

# missing, empty, binary, truncated, wrong-version files
bad prepare_missing_src $TRAIN prepare --src "$T/nope" --tgt "$T/train.de" --out "$T/o1"
bad prepare_empty_src $TRAIN prepare --src "$T/empty" --tgt "$T/empty" --out "$T/o1"
bad prepare_text_empty $TRAIN prepare --text "$T/empty" --out "$T/o1"
bad prepare_valid_text_empty $TRAIN prepare --text "$T/train.en" --valid-text "$T/empty" --out "$T/o1"
bad prepare_valid_text_missing $TRAIN prepare --text "$T/train.en" --valid-text "$T/nope" --out "$T/o1"
bad prepare_valid_text_and_fraction $TRAIN prepare --text "$T/train.en" --valid-text "$T/train.de" --valid-fraction 0.1 --out "$T/o1"
bad prepare_valid_text_seq2seq $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --valid-text "$T/train.de" --out "$T/o1"
bad fit_embed_std_zero $TRAIN fit --data "$T/d" --out "$T/o1" --steps 2 --embed-std 0
bad prepare_tokenizer_binary $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --tokenizer "$T/binary" --out "$T/o1"
bad prepare_tokenizer_truncated $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --tokenizer "$T/d_toktrunc/tokenizer.bin" --out "$T/o1"
bad fit_token_file_truncated $TRAIN fit --data "$T/d_trunc" --out "$T/o1" --steps 2
bad fit_token_file_empty $TRAIN fit --data "$T/d_empty" --out "$T/o1" --steps 2
bad fit_token_file_binary $TRAIN fit --data "$T/d_binary" --out "$T/o1" --steps 2
bad fit_token_file_wrong_version $TRAIN fit --data "$T/d_version" --out "$T/o1" --steps 2
bad fit_tokenizer_of_other_data $TRAIN fit --data "$T/d_tok" --out "$T/o1" --steps 2
bad fit_tokenizer_truncated $TRAIN fit --data "$T/d_toktrunc" --out "$T/o1" --steps 2
bad fit_no_dataset_txt $TRAIN fit --data "$T/d_nodataset" --out "$T/o1" --steps 2
bad fit_dataset_txt_binary $TRAIN fit --data "$T/d_dataset_binary" --out "$T/o1" --steps 2
bad translate_model_truncated $TRAIN translate --model "$T/r_trunc"
bad translate_model_binary $TRAIN translate --model "$T/r_binary"
bad translate_model_empty $TRAIN translate --model "$T/r_empty"
bad translate_tokenizer_of_other_data $TRAIN translate --model "$T/r_tok"
bad resume_optimizer_truncated $TRAIN fit --resume "$T/r_opt"
bad resume_run_txt_binary $TRAIN fit --resume "$T/r_runtxt"
bad encode_tokenizer_binary $TRAIN encode --tokenizer "$T/binary"
bad decode_tokenizer_empty $TRAIN decode --tokenizer "$T/empty"
bad bleu_ref_binary_missing $TRAIN bleu --ref "$T/nope" "$T/in.txt"
# absurd or non-numeric flags
bad prepare_vocab_size_0 $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/o1" --vocab-size 0
bad prepare_vocab_size_text $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/o1" --vocab-size many
bad fit_steps_negative $TRAIN fit --data "$T/d" --out "$T/o1" --steps -5
bad fit_lr_text $TRAIN fit --data "$T/d" --out "$T/o1" --lr fast
bad fit_dropout_2 $TRAIN fit --data "$T/d" --out "$T/o1" --dropout 2
bad fit_batch_tokens_0 $TRAIN fit --data "$T/d" --out "$T/o1" --batch-tokens 0
bad fit_minutes_inf $TRAIN fit --data "$T/d" --out "$T/o1" --minutes inf
bad fit_stop_at_negative $TRAIN fit --data "$T/d" --out "$T/o1" --stop-at -1
bad translate_beam_huge $TRAIN translate --model "$T/r" --beam 100000
bad sample_tokens_text $TRAIN sample --model "$T/r" --tokens lots
# an existing run directory, a directory where a file is expected and the reverse
bad fit_existing_run $TRAIN fit --data "$T/d" --out "$T/r" --steps 2
bad fit_existing_run_keep $TRAIN fit --data "$T/d" --out "$T/r" --steps 2 --keep-checkpoints 1
bad resume_not_a_run $TRAIN fit --resume "$T/d"
bad prepare_src_is_dir $TRAIN prepare --src "$T/adir" --tgt "$T/train.de" --out "$T/o1"
bad fit_token_file_is_dir $TRAIN fit --data "$T/d_dir" --out "$T/o1" --steps 2
bad fit_data_is_file $TRAIN fit --data "$T/train.en" --out "$T/o1" --steps 2
bad fit_out_is_file $TRAIN fit --data "$T/d" --out "$T/train.en" --steps 2
# the matrix-product kernel named in the environment (matmul.h): unknown to this build
bad fit_mm_kernel_unknown env KF_MM_KERNEL=avx1024 $TRAIN fit --data "$T/d" --out "$T/o1" $SMALL --steps 2
bad prepare_out_is_file $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/train.en"
bad translate_model_is_file $TRAIN translate --model "$T/train.en"
bad encode_tokenizer_is_dir $TRAIN encode --tokenizer "$T/adir"
# a read-only output directory (root writes anyway: skipped there)
if [ "$(id -u)" -ne 0 ]; then
    mkdir "$T/ro" && chmod a-w "$T/ro"
    bad prepare_read_only_out $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/ro/x"
    bad fit_read_only_out $TRAIN fit --data "$T/d" --out "$T/ro" $SMALL --steps 2
else
    echo "SKIP read-only output directory: running as root, which writes anyway"
fi
