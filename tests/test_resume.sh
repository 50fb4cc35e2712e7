#!/bin/sh
# tests/test_resume.sh: run directories that never lose work. An existing run is refused
# unless --resume or --force; a run stopped halfway and resumed logs the same losses and
# ends with the same weights, bit for bit, as one never stopped (seq2seq and lm, dense
# and kronxs, dropout on); flags that would change the run are refused on resume;
# non-finite steps are skipped and counted; a write error (ulimit -f) stops the run and
# keeps the previous checkpoint whole.
# Run from the repository root after `make train`; prints "PASS name" / "FAIL name: why".

TRAIN=${TRAIN:-./train}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT

. tests/lib.sh

# checksums of every file under a directory, for "nothing changed"
sums() { find "$1" -type f | sort | xargs cksum; }

. tests/tiny_data.sh
tiny_data "$T"
$TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/d" --vocab-size 300 >/dev/null 2>&1
for i in 1 2 3 4 5 6 7 8; do
    echo "der hund läuft über die straße und die katze schläft im haus."
    echo "the dog runs across the street and the cat sleeps in the house."
done >"$T/lm.txt"
$TRAIN prepare --text "$T/lm.txt" --out "$T/lmd" --max-len 16 --vocab-size 280 --valid-fraction 0.2 >/dev/null 2>&1
SMALL="--d-model 32 --heads 2 --ffn 64 --layers 1 --batch-tokens 300 --threads 1 --bleu-sentences 0"

# log.csv without its clock columns (tokens_per_s, seconds)
losses() { cut -d, -f1-7,10 "$1/log.csv"; }

# ---------------------------------------------------------------------------
# exact resume: 40 steps straight against 20, stop, resume to 40

for data in d lmd; do
    for embed in dense kronxs:n=2,r=2; do
        run=$(echo "${data}_$embed" | tr -c 'a-z0-9_\n' '_')
        flags="--data $T/$data $SMALL --embed $embed --dropout 0.2 --steps 40 --eval-every 7 --warmup 5 --lr 3e-3 --keep-checkpoints 2"
        $TRAIN fit $flags --out "$T/straight_$run" >/dev/null 2>&1
        $TRAIN fit $flags --out "$T/resumed_$run" --stop-at 20 >/dev/null 2>&1
        [ "$(tail -n 1 "$T/resumed_$run/log.csv" | cut -d, -f1)" = 20 ] &&
            pass "stop_at_$run" || fail "stop_at_$run" "$(tail -n 1 "$T/resumed_$run/log.csv")"
        # the stopped run resumes with no other flag; --threads may change
        expect_exit "resume_$run" 0 $TRAIN fit --resume "$T/resumed_$run" --threads 2
        grep -q 'resuming .* from step 20' "$T/out" && pass "resume_${run}_says_step" ||
            fail "resume_${run}_says_step" "$(head -n 2 "$T/out")"
        losses "$T/straight_$run" >"$T/a"; losses "$T/resumed_$run" >"$T/b"
        [ "$(wc -l <"$T/a")" -eq 41 ] && cmp -s "$T/a" "$T/b" && pass "resume_${run}_same_log" ||
            fail "resume_${run}_same_log" "$(diff "$T/a" "$T/b" | head -n 4)"
        cmp -s "$T/straight_$run/model.safetensors" "$T/resumed_$run/model.safetensors" &&
            pass "resume_${run}_same_weights" || fail "resume_${run}_same_weights" "model.safetensors differ"
        [ "$(ls "$T/straight_$run/checkpoints")" = "$(ls "$T/resumed_$run/checkpoints")" ] &&
            cmp -s "$T/straight_$run/checkpoints/step-000035/model.safetensors" \
                   "$T/resumed_$run/checkpoints/step-000035/model.safetensors" &&
            pass "resume_${run}_same_kept" || fail "resume_${run}_same_kept" "$(ls "$T/resumed_$run/checkpoints")"
    done
done

# ---------------------------------------------------------------------------
# an existing run directory

R="$T/resumed_d_dense"
sums "$R" >"$T/sum1"
expect_exit refuses_existing_run 2 $TRAIN fit --data "$T/d" --out "$R" $SMALL --steps 5
grep -q -- "--resume $R" "$T/err" && grep -q -- '--force' "$T/err" && pass refuses_existing_names_fix ||
    fail refuses_existing_names_fix "$(cat "$T/err")"
expect_exit resume_refuses_changed_flags 2 $TRAIN fit --resume "$R" --lr 1e-2 --d-model 64 --heads 4 --eval-every 3
grep -q -- '--d-model, --heads, --lr would change the run' "$T/err" &&
    pass resume_names_changed_flags || fail resume_names_changed_flags "$(cat "$T/err")"
expect_exit resume_refuses_complete_run 2 $TRAIN fit --resume "$R"
expect_exit resume_refuses_out 2 $TRAIN fit --resume "$R" --out "$T/other"
expect_exit resume_refuses_force 2 $TRAIN fit --resume "$R" --force
expect_exit resume_needs_a_run 2 $TRAIN fit --resume "$T/d"
sums "$R" | cmp -s - "$T/sum1" && pass refused_runs_change_nothing ||
    fail refused_runs_change_nothing "files of $R changed"
expect_exit force_starts_over 0 $TRAIN fit --data "$T/d" --out "$R" $SMALL --steps 6 --eval-every 3 --force
[ "$(wc -l <"$R/log.csv")" -eq 7 ] && [ ! -e "$R/checkpoints" ] && grep -q '^steps=6$' "$R/run.txt" &&
    pass force_replaces_the_run || fail force_replaces_the_run "$(ls "$R"; wc -l <"$R/log.csv")"

# the demo and compare replace only runs they made
expect_exit compare_first 0 $TRAIN compare --data "$T/d" --out "$T/cmp" --embed dense $SMALL --steps 3 --eval-every 0
expect_exit compare_again 0 $TRAIN compare --data "$T/d" --out "$T/cmp" --embed dense $SMALL --steps 3 --eval-every 0
grep -q 'replacing the earlier run of compare' "$T/out" && pass compare_says_it_replaces ||
    fail compare_says_it_replaces "$(head -n 3 "$T/out")"
mkdir "$T/cmp2" && cp -r "$R" "$T/cmp2/dense"
sums "$T/cmp2" >"$T/sum1"
expect_exit compare_refuses_a_fit_run 2 $TRAIN compare --data "$T/d" --out "$T/cmp2" --embed dense $SMALL --steps 3
sums "$T/cmp2" | cmp -s - "$T/sum1" && pass compare_leaves_a_fit_run || fail compare_leaves_a_fit_run "files changed"
mkdir -p "$T/demo/runs" && cp -r "$R" "$T/demo/runs/default"
(cd "$T/demo" && exec "$OLDPWD/$TRAIN" demo --minutes 0.01) >"$T/out" 2>"$T/err"
[ $? -eq 2 ] && grep -q 'did not make' "$T/err" && pass demo_refuses_a_fit_run ||
    fail demo_refuses_a_fit_run "$(cat "$T/err")"

# ---------------------------------------------------------------------------
# numerical faults: a few non-finite steps are skipped, a run of them stops the run

expect_exit nan_steps_skipped 0 env KF_TEST_NAN_STEPS=4-6 $TRAIN fit --data "$T/d" --out "$T/nan" $SMALL --steps 12 --eval-every 3
[ "$(tail -n 1 "$T/nan/log.csv" | cut -d, -f10)" = 3 ] && [ "$(sed -n 5p "$T/nan/log.csv" | cut -d, -f10)" = 1 ] &&
    pass nan_steps_counted || fail nan_steps_counted "$(cut -d, -f1,5,10 "$T/nan/log.csv" | tr '\n' ' ')"
awk -F, 'NR > 1 && $1 > 6 && $5 !~ /^[0-9.]+$/ { bad = 1 } END { exit bad }' "$T/nan/log.csv" &&
    pass nan_steps_leave_weights_finite || fail nan_steps_leave_weights_finite "a later loss is not finite"
env KF_TEST_NAN_STEPS=5-100 $TRAIN fit --data "$T/d" --out "$T/nan2" $SMALL --steps 40 --eval-every 3 >"$T/out" 2>"$T/err"
[ $? -ne 0 ] && grep -q '10 steps in a row' "$T/err" && grep -q 'last good checkpoint' "$T/err" &&
    pass nan_run_stops || fail nan_run_stops "$(cat "$T/err")"
grep -q '"step":"3"' "$T/nan2/model.safetensors" && pass nan_run_keeps_last_good ||
    fail nan_run_keeps_last_good "model.safetensors is not that of step 3"

# ---------------------------------------------------------------------------
# a write error: `ulimit -f` below the size of optimizer.safetensors

R="$T/full"
$TRAIN fit --data "$T/d" --out "$R" $SMALL --steps 20 --eval-every 5 --stop-at 10 >/dev/null 2>&1
sums "$R" | grep -v log.csv >"$T/sum1"
size=$(wc -c <"$R/optimizer.safetensors")
(ulimit -f $((size / 1024 / 2)) && exec $TRAIN fit --resume "$R") >"$T/out" 2>"$T/err"
rc=$?
# (one line besides the progress lines, which a slow or loaded machine prints after 5 s)
[ $rc -eq 2 ] && grep -q 'cannot write .*optimizer.safetensors' "$T/err" && [ "$(grep -vc '^step ' "$T/err")" -eq 1 ] &&
    pass file_size_limit_stops || fail file_size_limit_stops "exit $rc: $(cat "$T/err")"
sums "$R" | grep -v log.csv | cmp -s - "$T/sum1" && [ -z "$(find "$R" -name '*.tmp')" ] &&
    pass file_size_limit_keeps_checkpoint || fail file_size_limit_keeps_checkpoint "$(ls "$R")"
expect_exit resume_after_write_error 0 $TRAIN fit --resume "$R"
[ "$(wc -l <"$R/log.csv")" -eq 21 ] && pass resume_after_write_error_log ||
    fail resume_after_write_error_log "$(wc -l <"$R/log.csv") lines"
