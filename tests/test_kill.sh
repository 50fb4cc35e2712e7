#!/bin/sh
# tests/test_kill.sh: kill -9 a training run at pseudo-random moments (a fixed seed),
# KILLS times, with a checkpoint at every step so that many kills land amid a save.
# After each kill the run directory must hold only whole files under their final names
# (every *.safetensors parses, tests/st_check) and resume; at the end log.csv holds
# each step exactly once, in order, the run still resumes, and its losses and weights
# are those of a run never killed, bit for bit.
# Run from the repository root after `make train tests/st_check`.

TRAIN=${TRAIN:-./train}
KILLS=${KILLS:-32}
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

. tests/tiny_data.sh
tiny_data "$T"
$TRAIN prepare --src "$T/train.en" --tgt "$T/train.de" --out "$T/d" --vocab-size 300 >/dev/null 2>&1
R="$T/run"
FLAGS="--data $T/d --d-model 32 --heads 2 --ffn 64 --layers 1 --batch-tokens 300 --threads 1 \
       --dropout 0.1 --steps 100000 --eval-every 1 --eval-batches 1 --keep-checkpoints 2"

# the kill delays, 20 to 400 ms, from a fixed seed
awk -v n="$KILLS" 'BEGIN { srand(20261202); for (i = 0; i < n; i++) printf "%.3f\n", 0.02 + 0.38 * rand() }' \
    >"$T/delays"

kills=0; whole=0; resumed=0; amid_save=0; rounds=0; bad=""
# one round: start (or resume) the run, kill -9 it after $1 seconds, check the files
kill_round() {
    if [ -e "$R/run.txt" ]; then
        $TRAIN fit --resume "$R" >"$T/out" 2>"$T/err" &
    else
        $TRAIN fit $FLAGS --out "$R" >"$T/out" 2>"$T/err" &
    fi
    pid=$!
    sleep "$1"
    kill -9 $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
    rc=$?
    rounds=$((rounds + 1))
    # an exit of its own before the kill is an error (the budget is far away)
    [ $rc -ne 137 ] && [ $rc -ne 0 ] && bad="$bad; exit $rc: $(head -c 200 "$T/err")"
    [ -n "$(find "$R" -name '*.tmp' 2>/dev/null)" ] && amid_save=$((amid_save + 1))
    files=$(find "$R" -name '*.safetensors' 2>/dev/null)
    if [ -z "$files" ] || ./tests/st_check $files >"$T/check"; then
        whole=$((whole + 1))
    else
        bad="$bad; after kill $kills: $(head -n 1 "$T/check")"
    fi
    grep -q 'resuming' "$T/out" && resumed=$((resumed + 1))
}
while read -r delay; do kill_round "$delay"; done <"$T/delays"
# Which kills land amid a save depends on the machine's speed and load: on a slow or busy
# one (a sanitizer build, another job) go on, the same delays again, until one has.
while [ $amid_save -eq 0 ] && [ $rounds -lt $((3 * KILLS)) ]; do
    while read -r delay; do [ $amid_save -eq 0 ] && kill_round "$delay"; done <"$T/delays"
done

[ -z "$bad" ] && pass "kill_runs_end_only_by_the_kill" || fail kill_runs_end_only_by_the_kill "$bad"
[ $kills -ge 30 ] && [ $whole -eq "$rounds" ] && pass "kill_${kills}_times_files_whole" ||
    fail kill_files_whole "$kills kills, $whole times every file whole"
[ $resumed -ge $((KILLS / 2)) ] && pass "kill_resumed_${resumed}_times" ||
    fail kill_resumed "resumed from a checkpoint only $resumed times of $KILLS"
[ $amid_save -ge 1 ] && pass "kill_amid_save_${amid_save}_times" ||
    fail kill_amid_save "no kill left a temporary file: none landed amid a save"
echo "test_kill: $kills kills, $amid_save amid a save (a .tmp left), $resumed resumed from a checkpoint"
# the log: steps 1, 2, 3, ... once each
awk -F, 'NR > 1 && $1 != NR - 1 { bad = 1 } END { exit bad || NR < 3 }' "$R/log.csv" &&
    pass kill_log_steps_in_order || fail kill_log_steps_in_order "$(cut -d, -f1 "$R/log.csv" | tr '\n' ' ' | head -c 300)"
last=$(tail -n 1 "$R/log.csv" | cut -d, -f1)
$TRAIN fit --resume "$R" --stop-at $((last + 3)) >"$T/out" 2>"$T/err"
[ $? -eq 130 ] && grep -q "resuming .* from step" "$T/out" && pass kill_run_resumes_at_the_end ||
    fail kill_run_resumes_at_the_end "$(cat "$T/err")"
# and all those kills changed nothing: the same log and weights as a run never killed
$TRAIN fit $FLAGS --out "$T/straight" --stop-at $((last + 3)) >/dev/null 2>&1
cut -d, -f1-7,10 "$R/log.csv" >"$T/a"; cut -d, -f1-7,10 "$T/straight/log.csv" >"$T/b"
cmp -s "$T/a" "$T/b" && cmp -s "$R/model.safetensors" "$T/straight/model.safetensors" &&
    pass kill_run_equals_one_never_killed || fail kill_run_equals_one_never_killed "$(diff "$T/a" "$T/b" | head -n 4)"
echo 'one two three' | $TRAIN translate --model "$R" >"$T/out" 2>"$T/err" && [ -s "$T/out" ] &&
    pass kill_model_translates || fail kill_model_translates "$(cat "$T/err")"
