#!/bin/sh
# tests/test_cli.sh: the train program end to end, on tiny data made on the fly in a
# temporary directory: help, bad input (exit 2, nothing written), prepare, fit (the loss
# falls), translate, encode/decode, compare, and the language-model path.
# Run from the repository root after `make train`; prints "PASS name" / "FAIL name: why".

TRAIN=${TRAIN:-./train}   # e.g. TRAIN=/tmp/train_asan sh tests/test_cli.sh
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT

. tests/lib.sh

# ---------------------------------------------------------------------------
# tiny data (tests/tiny_data.sh)
. tests/tiny_data.sh
tiny_data "$T"
head -n 399 "$T/train.de" >"$T/short.de"
: >"$T/empty.txt"
SMALL="--d-model 32 --heads 2 --ffn 64 --layers 1 --batch-tokens 400 --threads 1"

# ---------------------------------------------------------------------------
# help and bad flags

expect_exit help 0 $TRAIN --help
expect_exit help_fit 0 $TRAIN fit --help
grep -q -- '--label-smoothing' "$T/out" && pass help_fit_documents_flags ||
    fail help_fit_documents_flags "fit --help does not list --label-smoothing"
expect_exit unknown_flag 2 $TRAIN fit --data "$T/d" --out "$T/r" --frobnicate 3
grep -q 'frobnicate' "$T/err" && pass unknown_flag_named || fail unknown_flag_named "$(cat "$T/err")"
expect_exit unknown_command 2 $TRAIN frobnicate
expect_exit missing_value 2 $TRAIN prepare --src
expect_exit non_numeric 2 $TRAIN fit --data "$T/d" --out "$T/r" --steps abc
expect_exit trailing_junk 2 $TRAIN fit --data "$T/d" --out "$T/r" --steps 12abc
expect_exit integer_out_of_range 2 $TRAIN fit --data "$T/d" --out "$T/r" --steps 99999999999
grep -q 'out of range' "$T/err" && pass integer_out_of_range_named || fail integer_out_of_range_named "$(cat "$T/err")"
expect_exit nan_float 2 $TRAIN fit --data "$T/d" --out "$T/r" --lr nan
expect_exit too_many_threads 2 $TRAIN translate --model "$T/r" --threads 100000

# ---------------------------------------------------------------------------
# prepare

expect_exit mismatched_lines 2 $TRAIN prepare --src "$T/train.en" --tgt "$T/short.de" --out "$T/bad"
[ ! -e "$T/bad" ] && pass mismatched_writes_nothing || fail mismatched_writes_nothing "$T/bad was created"
expect_exit empty_file 2 $TRAIN prepare --src "$T/empty.txt" --tgt "$T/empty.txt" --out "$T/bad"
expect_exit missing_file 2 $TRAIN prepare --src "$T/nope.en" --tgt "$T/train.de" --out "$T/bad"
[ ! -e "$T/bad" ] && pass bad_input_writes_nothing || fail bad_input_writes_nothing "$T/bad was created"
expect_exit directory_as_file 2 $TRAIN prepare --src "$T" --tgt "$T/train.de" --out "$T/bad"
grep -q 'is a directory' "$T/err" && pass directory_as_file_named || fail directory_as_file_named "$(cat "$T/err")"
expect_exit vocab_too_small 2 $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/bad" --vocab-size 100

expect_exit prepare 0 $TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/d" --vocab-size 300
ok=1
for f in tokenizer.bin train.src train.tgt valid.src valid.tgt dataset.txt; do
    [ -s "$T/d/$f" ] || { ok=0; missing=$f; }
done
[ $ok -eq 1 ] && pass prepare_writes_all_files || fail prepare_writes_all_files "no $T/d/$missing"
grep -q '^valid.src_sequences=20$' "$T/d/dataset.txt" && pass prepare_valid_fraction ||
    fail prepare_valid_fraction "expected 20 of 400 lines held out: $(grep sequences "$T/d/dataset.txt")"
grep -q 'bytes/token' "$T/out" && pass prepare_prints_statistics || fail prepare_prints_statistics "$(cat "$T/out")"

# ---------------------------------------------------------------------------
# encode / decode

printf 'Straße, Größe: äöü ÄÖÜ ß €\nvier fünf\n\nplain ascii 123\n' >"$T/utf8.txt"
$TRAIN encode --tokenizer "$T/d/tokenizer.bin" <"$T/utf8.txt" >"$T/ids.txt" 2>"$T/err" &&
    $TRAIN decode --tokenizer "$T/d/tokenizer.bin" <"$T/ids.txt" >"$T/back.txt" 2>>"$T/err"
cmp -s "$T/utf8.txt" "$T/back.txt" && pass encode_decode_round_trip ||
    fail encode_decode_round_trip "decode(encode(x)) differs: $(cat "$T/back.txt" "$T/err")"
[ "$(wc -l <"$T/ids.txt")" -eq 4 ] && pass encode_one_line_per_line || fail encode_one_line_per_line "$(cat "$T/ids.txt")"
echo "5 300 7" >"$T/badids.txt"
expect_exit decode_out_of_range 2 $TRAIN decode --tokenizer "$T/d/tokenizer.bin" <"$T/badids.txt"
echo "5 x7" >"$T/badids.txt"
expect_exit decode_not_a_number 2 $TRAIN decode --tokenizer "$T/d/tokenizer.bin" <"$T/badids.txt"

# ---------------------------------------------------------------------------
# bleu: the expected lines are sacreBLEU 2.x's own output for these files (an empty
# translation, umlauts, digits and punctuation; the last line without its newline)

printf 'The cat sat on the mat.\n\nDas M\303\244dchen l\303\244uft, 3.5 km schnell!\nIt costs $1,000 -- "cheap".' >"$T/bleu.hyp"
printf 'The cat is on the mat.\nA dog barks.\nDas M\303\244dchen rennt 3.5 km schnell.\nIt costs $1,000 - "cheap".\n' >"$T/bleu.ref"
printf 'BLEU = 38.99 79.2/61.9/38.9/20.0 (BP = 0.882 ratio = 0.889 hyp_len = 24 ref_len = 27)\nchrF2 = 67.42\n' >"$T/bleu.want"
expect_exit bleu_files 0 $TRAIN bleu --ref "$T/bleu.ref" "$T/bleu.hyp"
cmp -s "$T/out" "$T/bleu.want" && pass bleu_files_lines || fail bleu_files_lines "$(cat "$T/out")"
$TRAIN bleu --ref "$T/bleu.ref" <"$T/bleu.hyp" >"$T/out" 2>"$T/err"
cmp -s "$T/out" "$T/bleu.want" && pass bleu_stdin || fail bleu_stdin "$(cat "$T/out" "$T/err")"
printf '\n\n\n\n' >"$T/bleu_empty.hyp"
expect_exit bleu_empty_lines 0 $TRAIN bleu --ref "$T/bleu.ref" "$T/bleu_empty.hyp"
printf 'BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 27)\nchrF2 = 0.00\n' |
    cmp -s - "$T/out" && pass bleu_empty_lines_score || fail bleu_empty_lines_score "$(cat "$T/out")"
expect_exit bleu_two_hyp_files 2 $TRAIN bleu --ref "$T/bleu.ref" "$T/bleu_empty.hyp" "$T/bleu.hyp"
head -n 3 "$T/bleu.ref" >"$T/bleu3.ref"
expect_exit bleu_mismatched_lines 2 $TRAIN bleu --ref "$T/bleu3.ref" "$T/bleu.hyp"
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "4 lines.*bleu.hyp.* 3 reference lines.*bleu3.ref" "$T/err" &&
    pass bleu_mismatched_lines_named || fail bleu_mismatched_lines_named "$(cat "$T/err")"
expect_exit bleu_missing_file 2 $TRAIN bleu --ref "$T/bleu.ref" "$T/nope.hyp"
expect_exit bleu_missing_ref 2 $TRAIN bleu --ref "$T/nope.ref" "$T/bleu.hyp"
expect_exit bleu_needs_ref 2 $TRAIN bleu "$T/bleu.hyp"
expect_exit bleu_empty_file 2 $TRAIN bleu --ref "$T/bleu.ref" "$T/empty.txt"
expect_exit bleu_help 0 $TRAIN bleu --help
grep -q -- '--ref FILE' "$T/out" && grep -q 'chrF2' "$T/out" && pass bleu_help_documents ||
    fail bleu_help_documents "$(cat "$T/out")"

# ---------------------------------------------------------------------------
# fit

expect_exit heads_not_dividing 2 $TRAIN fit --data "$T/d" --out "$T/r" --d-model 30 --heads 4 --steps 5
expect_exit zero_steps 2 $TRAIN fit --data "$T/d" --out "$T/r" --steps 0
expect_exit negative_lr 2 $TRAIN fit --data "$T/d" --out "$T/r" --lr -1
expect_exit bad_embed 2 $TRAIN fit --data "$T/d" --out "$T/r" --embed kron:n=0
expect_exit missing_data 2 $TRAIN fit --data "$T/nodata" --out "$T/r"
expect_exit huge_d_model 2 $TRAIN fit --data "$T/d" --out "$T/r" --d-model 100000000 --heads 1 --steps 2
grep -q 'too large' "$T/err" && pass huge_d_model_named || fail huge_d_model_named "$(cat "$T/err")"
expect_exit huge_layers 2 $TRAIN fit --data "$T/d" --out "$T/r" --layers 1000000000 --steps 2
expect_exit huge_max_len 2 $TRAIN fit --data "$T/d" --out "$T/r" --max-len 1000000000 --steps 2
mkdir "$T/dbad" && cp "$T/d/"* "$T/dbad/" && sed 's/^max_len=.*/max_len=12abc/' "$T/d/dataset.txt" >"$T/dbad/dataset.txt"
expect_exit dataset_txt_garbage 2 $TRAIN fit --data "$T/dbad" --out "$T/r" --steps 2
[ ! -e "$T/r" ] && pass fit_bad_input_writes_nothing || fail fit_bad_input_writes_nothing "$T/r was created"

expect_exit fit 0 $TRAIN fit --data "$T/d" --out "$T/r" $SMALL --steps 60 --lr 3e-3 --warmup 5 --eval-every 20 --dropout 0 --keep-checkpoints 2
for f in log.csv summary.json model.safetensors tokenizer.bin; do
    [ -s "$T/r/$f" ] && pass "fit_writes_$f" || fail "fit_writes_$f" "missing"
done
head -n 1 "$T/r/log.csv" | grep -q '^step,epoch,tokens,lr,train_loss,val_loss,grad_norm,tokens_per_s,seconds,skipped$' &&
    pass fit_log_header || fail fit_log_header "$(head -n 1 "$T/r/log.csv")"
# the loss of the first step against the mean of the last five
awk -F, 'NR == 2 { first = $5 } NR > 1 { n++; l[n] = $5 }
         END { for (i = n - 4; i <= n; i++) s += l[i]; last = s / 5;
               printf "%s %s\n", first, last; exit !(n == 60 && last < 0.6 * first) }' \
    "$T/r/log.csv" >"$T/losses" && pass fit_loss_falls || fail fit_loss_falls "first, last: $(cat "$T/losses")"
[ "$(awk -F, 'NR > 1 && $6 != ""' "$T/r/log.csv" | wc -l)" -eq 3 ] && pass fit_val_every ||
    fail fit_val_every "expected val_loss at steps 20, 40, 60"
grep -q '"best_val_loss": [0-9]' "$T/r/summary.json" && pass fit_summary || fail fit_summary "$(cat "$T/r/summary.json")"

# 1 and 2 threads, with dropout: the same logged losses and gradient norms, through the
# command line (tests/test_threads compares the bits, at shapes that split every kernel)
for th in 1 2; do
    $TRAIN fit --data "$T/d" --out "$T/th$th" $SMALL --steps 8 --dropout 0.2 --eval-every 0 --threads $th \
        >/dev/null 2>&1
    cut -d, -f5,7 "$T/th$th/log.csv" >"$T/th$th.losses" 2>/dev/null
done
[ -s "$T/th1.losses" ] && cmp -s "$T/th1.losses" "$T/th2.losses" && pass threads_same_log ||
    fail threads_same_log "$(paste -d' ' "$T/th1.losses" "$T/th2.losses" | head -n 4)"

# a run refused for bad input leaves the existing run directory alone
cat "$T/r/"*.* | cksum >"$T/sum1"
expect_exit failing_run 2 $TRAIN fit --data "$T/d" --out "$T/r" $SMALL --heads 3 --steps 5
expect_exit failing_run_huge 2 $TRAIN fit --data "$T/d" --out "$T/r" $SMALL --ffn 1000000000 --steps 5
cat "$T/r/"*.* | cksum >"$T/sum2"
cmp -s "$T/sum1" "$T/sum2" && pass checkpoint_kept || fail checkpoint_kept "files of $T/r changed"

# ---------------------------------------------------------------------------
# translate

head -n 7 "$T/train.en" >"$T/in.en"
expect_exit translate 0 $TRAIN translate --model "$T/r" --threads 1 <"$T/in.en"
[ "$(wc -l <"$T/out")" -eq 7 ] && pass translate_one_line_per_input ||
    fail translate_one_line_per_input "$(wc -l <"$T/out") lines for 7"
# a NUL byte, an empty line and a line far longer than the model's maximum length
{ printf 'one\000two\n\n'; awk 'BEGIN { for (i = 0; i < 20000; i++) printf "seven "; print "" }'; } >"$T/odd.en"
expect_exit translate_odd_lines 0 $TRAIN translate --model "$T/r" --threads 1 <"$T/odd.en"
[ "$(wc -l <"$T/out")" -eq 3 ] && grep -q 'truncated' "$T/err" && pass translate_truncates_long_lines ||
    fail translate_truncates_long_lines "$(wc -l <"$T/out") lines for 3; stderr: $(cat "$T/err")"
sed -n 2p "$T/out" | grep -q '^$' && pass translate_empty_line_is_empty ||
    fail translate_empty_line_is_empty "line 2: '$(sed -n 2p "$T/out")'"
expect_exit translate_model_is_file 2 $TRAIN translate --model "$T/in.en" <"$T/in.en"
# decoding: greedy with and without the cache, beam 1 and the default beam agree on lines
expect_exit translate_greedy 0 $TRAIN translate --model "$T/r" --beam 1 <"$T/odd.en"
cp "$T/out" "$T/greedy.out"
expect_exit translate_no_cache 0 $TRAIN translate --model "$T/r" --beam 1 --no-cache <"$T/odd.en"
cmp -s "$T/out" "$T/greedy.out" && pass translate_cached_equals_uncached ||
    fail translate_cached_equals_uncached "$(diff "$T/out" "$T/greedy.out" | head -n 4)"
expect_exit translate_beam 0 $TRAIN translate --model "$T/r" --beam 4 --lenpen 0.6 --batch 2 <"$T/in.en"
[ "$(wc -l <"$T/out")" -eq 7 ] && pass translate_beam_one_line_per_input ||
    fail translate_beam_one_line_per_input "$(wc -l <"$T/out") lines for 7"
for bad in "--beam 0" "--beam -3" "--beam x" "--lenpen nan" "--lenpen inf" "--lenpen 1e9" \
           "--batch 0" "--max-len 0" "--max-len 100000" "--no-cache --beam 5"; do
    name=$(echo "translate_bad_$bad" | tr -c 'a-z0-9_\n' '_')
    expect_exit "$name" 2 $TRAIN translate --model "$T/r" $bad <"$T/in.en"
    [ -s "$T/out" ] && fail "${name}_no_output" "wrote $(wc -c <"$T/out") bytes"
done
# checkpoint metadata edited in place (same length): heads not dividing, negative width, tie 7
for edit in '"NH":"2"/"NH":"3"' '"C":"32"/"C":"-5"' '"tie":"1"/"tie":"7"'; do
    rm -rf "$T/meta" && mkdir "$T/meta" && cp "$T/r/"*.* "$T/meta/"
    from=${edit%/*}; to=${edit#*/}
    at=$(grep -obUa -- "$from" "$T/meta/model.safetensors" | head -n 1 | cut -d: -f1)
    printf '%s' "$to" | dd of="$T/meta/model.safetensors" bs=1 seek="$at" conv=notrunc 2>/dev/null
    expect_exit "translate_bad_metadata_$to" 2 $TRAIN translate --model "$T/meta" <"$T/in.en"
done
expect_exit translate_no_checkpoint 2 $TRAIN translate --model "$T/d" <"$T/in.en"
mkdir "$T/corrupt" && cp "$T/r/tokenizer.bin" "$T/corrupt/" &&
    head -c 1000 "$T/r/model.safetensors" >"$T/corrupt/model.safetensors"
expect_exit translate_corrupt_checkpoint 2 $TRAIN translate --model "$T/corrupt" <"$T/in.en"

# ---------------------------------------------------------------------------
# eval, bleu, and the validation BLEU of fit

# every validation sentence is scored (fewer than --bleu-sentences' default 2000), and
# the summary counts those
nvalid=$(sed -n 's/^valid.src_sequences=//p' "$T/d/dataset.txt")
[ "$nvalid" -gt 0 ] && [ "$nvalid" -lt 2000 ] &&
    grep -q "\"val_bleu\": {\"sentences\": $nvalid, \"greedy\": [0-9]" "$T/r/summary.json" &&
    pass fit_summary_val_bleu || fail fit_summary_val_bleu "$(grep val_bleu "$T/r/summary.json")"
head -n 20 "$T/train.en" >"$T/ev.en"; head -n 20 "$T/train.de" >"$T/ev.de"
expect_exit eval 0 $TRAIN eval --model "$T/r" --src "$T/ev.en" --ref "$T/ev.de" --beam 3 --hyp-out "$T/ev.hyp"
grep -q '^BLEU = ' "$T/out" && grep -q '^chrF2 = ' "$T/out" && grep -q 'sentences/s' "$T/out" &&
    pass eval_prints_scores || fail eval_prints_scores "$(cat "$T/out")"
[ "$(wc -l <"$T/ev.hyp")" -eq 20 ] && pass eval_hyp_out_lines || fail eval_hyp_out_lines "$(wc -l <"$T/ev.hyp")"
head -n 2 "$T/out" >"$T/ev.scores"
$TRAIN bleu --ref "$T/ev.de" "$T/ev.hyp" >"$T/bleu.out" 2>&1
cmp -s "$T/ev.scores" "$T/bleu.out" && pass eval_matches_bleu_of_its_hyps ||
    fail eval_matches_bleu_of_its_hyps "$(cat "$T/ev.scores" "$T/bleu.out")"
head -n 19 "$T/train.de" >"$T/ev19.de"
expect_exit eval_line_counts_differ 2 $TRAIN eval --model "$T/r" --src "$T/ev.en" --ref "$T/ev19.de"
grep -q '20 source lines' "$T/err" && grep -q '19 reference lines' "$T/err" &&
    pass eval_line_counts_named || fail eval_line_counts_named "$(cat "$T/err")"
expect_exit eval_needs_src 2 $TRAIN eval --model "$T/r" --ref "$T/ev.de"
expect_exit eval_bad_beam 2 $TRAIN eval --model "$T/r" --src "$T/ev.en" --ref "$T/ev.de" --beam 0

# ---------------------------------------------------------------------------
# compare

expect_exit compare 0 $TRAIN compare --data "$T/d" --out "$T/cmp" --embed dense --embed kronxs:n=2,r=2 \
    $SMALL --steps 10 --eval-every 5
[ "$(grep -c -e '^| dense .* | [0-9.]* | [0-9.]* | [0-9]* | [0-9]* |$' -e '^| kronxs_n2_r2 ' "$T/cmp/summary.md")" -eq 2 ] &&
    grep -q 'val BLEU beam' "$T/cmp/summary.md" && pass compare_summary_rows ||
    fail compare_summary_rows "$(cat "$T/cmp/summary.md")"
grep -q '<svg' "$T/cmp/loss.svg" && grep -q '</svg>' "$T/cmp/loss.svg" && pass compare_plot ||
    fail compare_plot "loss.svg missing or incomplete"
# well-formed XML, by the checker in test_checkpoint (built by `make test` before this runs)
xml=$(./tests/test_checkpoint --xml-check "$T/cmp/loss.svg" 2>&1) && pass compare_plot_is_xml ||
    fail compare_plot_is_xml "$xml"
[ -s "$T/cmp/kronxs_n2_r2/model.safetensors" ] && pass compare_run_dirs || fail compare_run_dirs "no kronxs_n2_r2/model.safetensors"
expect_exit compare_bad_spec 2 $TRAIN compare --data "$T/d" --out "$T/cmp2" --embed dense --embed kronxs:n=1,r=0 --steps 2
[ ! -e "$T/cmp2" ] && pass compare_bad_spec_writes_nothing || fail compare_bad_spec_writes_nothing "$T/cmp2 was created"

# ---------------------------------------------------------------------------
# language model: prepare --text, fit, sample

for i in 1 2 3 4 5 6 7 8; do
    echo "der hund läuft über die straße und die katze schläft im haus."
    echo "the dog runs across the street and the cat sleeps in the house."
done >"$T/lm.txt"
expect_exit lm_prepare 0 $TRAIN prepare --text "$T/lm.txt" --out "$T/lmd" --max-len 16 --vocab-size 280 --valid-fraction 0.2
[ -s "$T/lmd/train.lm" ] && [ -s "$T/lmd/valid.lm" ] && grep -q '^arch=lm$' "$T/lmd/dataset.txt" &&
    pass lm_prepare_files || fail lm_prepare_files "missing train.lm/valid.lm or arch=lm"
mkdir "$T/mixed" && cp "$T/d/"* "$T/mixed/" && cp "$T/lmd/tokenizer.bin" "$T/mixed/"
expect_exit fit_refuses_other_tokenizer 2 $TRAIN fit --data "$T/mixed" --out "$T/rm" --steps 2
grep -q 'tokenizer' "$T/err" && [ ! -e "$T/rm" ] && pass fit_tokenizer_named ||
    fail fit_tokenizer_named "$(cat "$T/err")"
# train.lm with three empty sequences: header, the tokenizer checksum, zero offsets
mkdir "$T/lmempty" && cp "$T/lmd/"* "$T/lmempty/"
{ printf 'KFTOKSEQ\001\000\000\000\000\000\000\000'; dd if="$T/lmd/train.lm" bs=1 skip=16 count=8 2>/dev/null
  printf '\003\000\000\000\000\000\000\000'; head -c 40 /dev/zero; } >"$T/lmempty/train.lm"
expect_exit lm_empty_sequences 2 $TRAIN fit --data "$T/lmempty" --out "$T/lmer" --steps 2
grep -q 'every sequence is empty' "$T/err" && [ ! -e "$T/lmer" ] && pass lm_empty_sequences_named ||
    fail lm_empty_sequences_named "$(cat "$T/err")"
expect_exit lm_fit 0 $TRAIN fit --data "$T/lmd" --out "$T/lmr" $SMALL --steps 30 --lr 3e-3 --warmup 3
# --valid-text: the validation text as is (byte-level: one token per byte), in order;
# trained on random windows (the default) and on chunks
head -n 12 "$T/lm.txt" >"$T/lm_train.txt"; tail -n 4 "$T/lm.txt" >"$T/lm_valid.txt"
expect_exit lm_prepare_valid_text 0 $TRAIN prepare --text "$T/lm_train.txt" --valid-text "$T/lm_valid.txt" --out "$T/lmv" --max-len 16 --vocab-size 259
[ "$(grep '^valid.lm_tokens=' "$T/lmv/dataset.txt")" = "valid.lm_tokens=$(wc -c <"$T/lm_valid.txt" | tr -d ' ')" ] &&
    [ "$(grep '^train.lm_tokens=' "$T/lmv/dataset.txt")" = "train.lm_tokens=$(wc -c <"$T/lm_train.txt" | tr -d ' ')" ] &&
    pass lm_valid_text_as_is || fail lm_valid_text_as_is "$(grep tokens "$T/lmv/dataset.txt")"
for how in windows chunks; do
    flag=; [ $how = chunks ] && flag=--lm-chunks
    expect_exit lm_fit_$how 0 $TRAIN fit --data "$T/lmv" --out "$T/lmv_$how" $SMALL --steps 30 --lr 3e-3 --warmup 3 $flag
    grep -q "^lm_chunks=$([ $how = chunks ] && echo 1 || echo 0)$" "$T/lmv_$how/run.txt" &&
        awk -F, 'NR == 2 { a = $5 } END { exit !($5 < a) }' "$T/lmv_$how/log.csv" &&
        pass lm_fit_${how}_learns || fail lm_fit_${how}_learns "$(sed -n '2p;$p' "$T/lmv_$how/log.csv")"
done
# the first lm (embedding std 0.02) predicts near uniformly, loss ln V, not its input
# token (std 1/sqrt(C) gives it a logit of about sqrt(C): loss 5.9 here)
awk -F, 'NR == 2 { d = $5 - log(259); exit !(d > -0.1 && d < 0.1) }' "$T/lmv_windows/log.csv" &&
    grep -q '^embed_std=0$' "$T/lmv_windows/run.txt" &&
    pass lm_first_loss_ln_v || fail lm_first_loss_ln_v "$(sed -n 2p "$T/lmv_windows/log.csv")"
# checkpoint averaging: fit kept the last 2 of its checkpoints (steps 20, 40, 60)
[ "$(ls "$T/r/checkpoints")" = "$(printf 'step-000040\nstep-000060')" ] &&
    cmp -s "$T/r/model.safetensors" "$T/r/checkpoints/step-000060/model.safetensors" &&
    pass keep_checkpoints_keeps_the_last || fail keep_checkpoints_keeps_the_last "$(ls "$T/r/checkpoints")"
expect_exit average 0 $TRAIN average --out "$T/avg" "$T/r/checkpoints/step-000040" "$T/r/checkpoints/step-000060"
echo 'one two three' | $TRAIN translate --model "$T/avg" >"$T/out" 2>&1 && [ -s "$T/out" ] &&
    ! cmp -s "$T/avg/model.safetensors" "$T/r/model.safetensors" &&
    pass average_is_a_new_model || fail average_is_a_new_model "$(cat "$T/out")"
# every weight of the average is the mean of the two (the three files share one layout:
# 8 bytes of header length, the JSON header, then the float32 data)
weights() {
    n=$(od -A n -t u8 -N 8 "$1" | tr -d ' ')
    od -A n -v -t f4 -j $((8 + n)) "$1" | tr -s ' ' '\n' | grep -v '^$'
}
weights "$T/r/checkpoints/step-000040/model.safetensors" >"$T/w40"
weights "$T/r/checkpoints/step-000060/model.safetensors" >"$T/w60"
weights "$T/avg/model.safetensors" >"$T/wavg"
paste "$T/w40" "$T/w60" "$T/wavg" | awk '{ m = ($1 + $2) / 2; d = m - $3; if (d < 0) d = -d;
    s = ($1 < 0 ? -$1 : $1) + ($2 < 0 ? -$2 : $2); if (d > 1e-6 * s + 1e-30) bad++; if ($1 != $2) moved++ }
    END { exit !(NR > 1000 && moved > NR / 2 && bad == 0) }' &&
    pass average_is_the_mean || fail average_is_the_mean "$(wc -l <"$T/wavg") weights, some not the mean"
# the mean of x and x is x, bit for bit, metadata too
$TRAIN average --out "$T/avg2" "$T/r" "$T/r" >/dev/null 2>&1
cmp -s "$T/avg2/model.safetensors" "$T/r/model.safetensors" && cmp -s "$T/avg2/tokenizer.bin" "$T/r/tokenizer.bin" &&
    pass average_of_one_model_is_itself || fail average_of_one_model_is_itself "files differ"
# the mean does not depend on the order, nor on repeating every input
$TRAIN average --out "$T/avg3" "$T/r/checkpoints/step-000060" "$T/r/checkpoints/step-000040" \
    "$T/r/checkpoints/step-000060" "$T/r/checkpoints/step-000040" >/dev/null 2>&1
cmp -s "$T/avg3/model.safetensors" "$T/avg/model.safetensors" && pass average_is_symmetric ||
    fail average_is_symmetric "files differ"

# saved_and_loaded NAME SPEC PATTERN...: a 4-step fit with --embed SPEC writes a header
# that matches every PATTERN (grep -a); the model is read back and written again bit for
# bit (the average of the run with itself), and translates after loading
saved_and_loaded() {   # (not $name: expect_exit sets it)
    run=$1; spec=$2; shift 2
    expect_exit "fit_$run" 0 $TRAIN fit --data "$T/d" --out "$T/r_$run" $SMALL --steps 4 \
        --eval-every 2 --bleu-sentences 0 --embed "$spec"
    missing=
    for pattern in "$@"; do
        grep -aq "$pattern" "$T/r_$run/model.safetensors" || missing="$missing $pattern"
    done
    [ -z "$missing" ] && pass "${run}_saved" || fail "${run}_saved" "header lacks$missing"
    $TRAIN average --out "$T/avg_$run" "$T/r_$run" "$T/r_$run" >/dev/null 2>&1
    cmp -s "$T/avg_$run/model.safetensors" "$T/r_$run/model.safetensors" &&
        pass "${run}_round_trip" || fail "${run}_round_trip" "files differ"
    expect_exit "translate_$run" 0 $TRAIN translate --model "$T/r_$run" --threads 1 <"$T/in.en"
}
# order=freq: the slot table is saved (an I32 tensor), with the expanded spec
saved_and_loaded embed_slot kronxs:n=2,r=2,order=freq,head=5,norm=ln,layout=diag,lr=2 \
    '"embed.slot":{"dtype":"I32","shape":\[[0-9]*\]' \
    '"embed":"kronxs:n=2,r=2,q=[0-9x]*,t=[0-9x]*,head=5,order=freq,layout=diag,norm=ln,lr=2"'
# tt: the cores are rank-4 tensors embed.tt.j (r_j, t_j, q_j, r_{j+1}); a bad tt spec is
# a one-line error
saved_and_loaded tt tt:n=3,r=3,head=5,order=freq \
    '"embed.tt.0":{"dtype":"F32","shape":\[1,[0-9]*,[0-9]*,3\]' \
    '"embed.tt.2":{"dtype":"F32","shape":\[3,[0-9]*,[0-9]*,1\]' \
    '"embed":"tt:n=3,r=3,q=[0-9x]*,t=[0-9x]*,head=5,order=freq,layout=radix,norm=ln,lr=3"'
expect_exit fit_bad_tt_spec 2 $TRAIN fit --data "$T/d" --out "$T/badtt" $SMALL --steps 2 --embed tt:n=3,t=4x4x4
grep -q 'gives 64 < vocabulary' "$T/err" && pass fit_bad_tt_spec_says_why || fail fit_bad_tt_spec_says_why "$(cat "$T/err")"

# a checkpoint from before the options (its embed as typed, "kronxs:n=2,r=2") loads
# with the old defaults: a model trained with them, its header rewritten in place,
# padded with JSON whitespace
$TRAIN fit --data "$T/d" --out "$T/old" $SMALL --steps 2 --eval-every 0 --bleu-sentences 0 \
    --embed kronxs:n=2,r=2,norm=none,lr=1 >/dev/null 2>&1
mkdir -p "$T/legacy" && cp "$T/old/tokenizer.bin" "$T/legacy/" &&
    perl -pe 's/"embed":"(kronxs:n=2,r=2),[^"]*"/my $k = $&; my $n = "\"embed\":\"$1\""; $n . " " x (length($k) - length($n))/e' \
        "$T/old/model.safetensors" >"$T/legacy/model.safetensors"
grep -aq '"embed":"kronxs:n=2,r=2" ' "$T/legacy/model.safetensors" &&
    $TRAIN translate --model "$T/legacy" --threads 1 <"$T/in.en" >"$T/legacy.out" 2>"$T/err" &&
    $TRAIN translate --model "$T/old" --threads 1 <"$T/in.en" >"$T/expanded.out" &&
    cmp -s "$T/legacy.out" "$T/expanded.out" && pass embed_legacy_spec_loads ||
    fail embed_legacy_spec_loads "$(cat "$T/err")"
cksum "$T/avg/model.safetensors" >"$T/sum.before"
expect_exit average_refuses_existing 2 $TRAIN average --out "$T/avg" "$T/r" "$T/r"
cksum "$T/avg/model.safetensors" | cmp -s - "$T/sum.before" && pass average_leaves_existing_model ||
    fail average_leaves_existing_model "model.safetensors changed"
expect_exit average_different_models 2 $TRAIN average --out "$T/avg4" "$T/r" "$T/lmr"
grep -q 'different models' "$T/err" && [ ! -e "$T/avg4" ] && pass average_different_models_named ||
    fail average_different_models_named "$(cat "$T/err")"
expect_exit average_needs_two 2 $TRAIN average --out "$T/avg5" "$T/r"
expect_exit keep_checkpoints_negative 2 $TRAIN fit --data "$T/d" --out "$T/r6" $SMALL --steps 2 --keep-checkpoints -1
expect_exit keep_checkpoints_taken 2 $TRAIN fit --data "$T/d" --out "$T/r" $SMALL --steps 2 --keep-checkpoints 1
grep -q 'earlier run' "$T/err" && pass keep_checkpoints_taken_named || fail keep_checkpoints_taken_named "$(cat "$T/err")"
grep -q '"arch": "lm"' "$T/lmr/summary.json" && grep -q '"Le": 0' "$T/lmr/summary.json" &&
    pass lm_fit_summary || fail lm_fit_summary "$(head -n 3 "$T/lmr/summary.json")"
expect_exit lm_sample 0 $TRAIN sample --model "$T/lmr" --prompt "der hund" --tokens 20 --threads 1
[ "$(head -c 8 "$T/out")" = "der hund" ] && [ "$(wc -c <"$T/out")" -gt 12 ] && pass lm_sample_text ||
    fail lm_sample_text "$(cat "$T/out")"
# past the window of 16 positions the cache restarts from the last half of it
expect_exit lm_sample_long 0 $TRAIN sample --model "$T/lmr" --prompt "der" --tokens 60 --temperature 0
[ "$(wc -c <"$T/out")" -gt 60 ] && pass lm_sample_past_window || fail lm_sample_past_window "$(cat "$T/out")"
expect_exit sample_needs_lm 2 $TRAIN sample --model "$T/r" --tokens 5
expect_exit translate_needs_seq2seq 2 $TRAIN translate --model "$T/lmr" <"$T/in.en"
expect_exit eval_lm 2 $TRAIN eval --model "$T/lmr" --src "$T/ev.en" --ref "$T/ev.de"

exit $FAILED
