#!/bin/sh
# tests/test_mpi.sh: data-parallel training under mpirun (dist.h), on tiny data made on
# the fly. Builds ./train-mpi (make USE_MPI=1 PROG=train-mpi; the objects go to
# build-mpi/, ./train is untouched) and checks:
#   - one rank of the MPI build trains exactly as the plain build (same log, same weights),
#     and 2 ranks the same with gradients summed while backward runs or after it;
#   - 2 ranks on shards of a batch of 2B rows train as 1 process on the whole batch: the
#     loss, validation loss and gradient norm of every step agree to 1e-6 relative, and
#     the final weights closely (float sums in another order, see the README);
#   - a rank that cannot start (its --data is missing) makes every rank exit with the
#     message, and a stop signal to one rank stops every rank cleanly: no hang (timeout).
# Prints "SKIP" and passes where mpicc or mpirun is missing. Run from the repository
# root after `make train tests/weights_diff`; prints "PASS name" / "FAIL name: why".

if ! command -v mpicc >/dev/null 2>&1 || ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP test_mpi: mpicc or mpirun not found (apt-get install libopenmpi-dev openmpi-bin)"
    exit 0
fi
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
FAILED=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FAILED=1; }

if ! make -s USE_MPI=1 PROG=train-mpi >"$T/make.log" 2>&1; then
    fail mpi_build "make USE_MPI=1 failed: $(tail -n 5 "$T/make.log")"
    exit 1
fi
pass mpi_build
# OpenMPI refuses root without these, and this machine may have fewer cores than ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Under make sanitize: OpenMPI's plugins allocate at start and are unloaded before exit,
# so LeakSanitizer reports memory no program can free; the rest of the suite checks
# kronformer's own leaks, these runs check everything else ASan and UBSan see.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
MPIRUN="timeout 300 mpirun --oversubscribe --bind-to none"

# tiny data (tests/tiny_data.sh)
. tests/tiny_data.sh
tiny_data "$T"
./train prepare --src "$T/train.en" --tgt "$T/train.de" --vocab-size 300 --out "$T/d" \
    >/dev/null 2>&1 || { fail mpi_prepare "train prepare failed"; exit 1; }
# dropout on (the default 0.1): the shards must draw the masks of their rows in the batch
SMALL="--d-model 32 --heads 2 --ffn 64 --layers 1 --batch-tokens 400 --threads 1 --bleu-sentences 0"
FIT="fit --data $T/d $SMALL --steps 20 --eval-every 5"

./train $FIT --out "$T/plain" >"$T/plain.out" 2>&1 || fail mpi_plain_run "$(tail -n 3 "$T/plain.out")"
$MPIRUN -np 1 ./train-mpi $FIT --out "$T/np1" >"$T/np1.out" 2>&1 ||
    fail mpi_np1_run "$(tail -n 3 "$T/np1.out")"
$MPIRUN -np 2 ./train-mpi $FIT --out "$T/np2" >"$T/np2.out" 2>&1 ||
    fail mpi_np2_run "$(tail -n 3 "$T/np2.out")"
$MPIRUN -np 2 ./train-mpi $FIT --no-overlap --out "$T/np2b" >"$T/np2b.out" 2>&1 ||
    fail mpi_np2_no_overlap_run "$(tail -n 3 "$T/np2b.out")"

# step, train_loss, val_loss, grad_norm of each step
for r in plain np1 np2 np2b; do cut -d, -f1,5,6,7 "$T/$r/log.csv" 2>/dev/null | tail -n +2 >"$T/$r.cols"; done
[ -s "$T/plain.cols" ] && cmp -s "$T/plain.cols" "$T/np1.cols" && pass mpi_one_rank_is_plain ||
    fail mpi_one_rank_is_plain "the logs of ./train and 1 rank of ./train-mpi differ"
w=$(./tests/weights_diff "$T/plain" "$T/np1" 2>&1)
case "$w" in "max_abs 0 "*) pass mpi_one_rank_same_weights ;;
    *) fail mpi_one_rank_same_weights "$w" ;; esac

# Summed per stack while backward runs, or all at once after it: the same sums.
[ -s "$T/np2.cols" ] && cmp -s "$T/np2.cols" "$T/np2b.cols" && pass mpi_overlap_same_sums ||
    fail mpi_overlap_same_sums "the logs of 2 ranks with and without --no-overlap differ"

# The largest relative difference of each column over the steps (and the step count).
paste -d, "$T/np1.cols" "$T/np2.cols" | awk -F, '
    function rel(a, b) { d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a; return m > 0 ? d / m : d }
    { n++; if ($1 != $5) bad = 1
      if (rel($2, $6) > tl) tl = rel($2, $6)
      if ($3 != "" || $7 != "") { nv++; if ($3 == "" || $7 == "") bad = 1; else if (rel($3, $7) > vl) vl = rel($3, $7) }
      if (rel($4, $8) > gn) gn = rel($4, $8) }
    END { printf "%d %d %d %.3g %.3g %.3g\n", n, nv, bad, tl, vl, gn }' >"$T/rel"
read n nv bad tl vl gn <"$T/rel"
echo "2 ranks x B against 1 x 2B: $n steps, max relative difference: train loss $tl, val loss $vl, grad norm $gn"
[ "$n" -eq 20 ] && [ "$nv" -eq 4 ] && [ "$bad" -eq 0 ] &&
    awk -v a="$tl" -v b="$vl" -v c="$gn" 'BEGIN { exit !(a < 1e-6 && b < 1e-6 && c < 1e-6) }' &&
    pass mpi_two_ranks_same_losses || fail mpi_two_ranks_same_losses "$(cat "$T/rel")"
# AdamW divides each gradient by its own RMS, so a gradient that is a sum cancelling to
# near zero carries its float rounding (relative 1e-3 and more) into a step of lr; 20
# steps of the warmup add up to about 1e-3 of lr, so weights move by up to 1e-3 per
# weight between any two summation orders: they must agree far closer than that.
w=$(./tests/weights_diff "$T/np1" "$T/np2" 2>&1)
echo "2 ranks x B against 1 x 2B: final weights $w"
echo "$w" | awk '$1 == "max_abs" && $2 < 2e-5 { ok = 1 } END { exit !ok }' &&
    pass mpi_two_ranks_same_weights || fail mpi_two_ranks_same_weights "$w"
grep -q "^fit: 2 ranks; the gradient all-reduce" "$T/np2.out" && [ "$(grep -c '^fit: saved' "$T/np2.out")" -eq 1 ] &&
    pass mpi_rank0_prints || fail mpi_rank0_prints "$(tail -n 3 "$T/np2.out")"

# A rank without its data: every rank stops with the message, exit 2, well before the timeout.
$MPIRUN -np 1 ./train-mpi $FIT --out "$T/bad" : -np 1 ./train-mpi $FIT --data "$T/missing" \
    --out "$T/bad" >"$T/bad.out" 2>&1
rc=$?
# (both ranks print it; mpirun may interleave their stderr on one line, so count matches)
[ "$rc" -eq 2 ] && [ "$(grep -o "rank 1: $T/missing has no dataset.txt" "$T/bad.out" | wc -l)" -eq 2 ] &&
    [ ! -e "$T/bad/log.csv" ] && pass mpi_failed_rank_stops_all ||
    fail mpi_failed_rank_stops_all "exit $rc (124: timeout); $(head -c 400 "$T/bad.out")"

# SIGINT to rank 1 alone: both ranks stop after the same step, rank 0 saves, exit 130.
$MPIRUN -np 2 ./train-mpi fit --data "$T/d" $SMALL --steps 100000 --eval-every 0 --out "$T/int" \
    >"$T/int.out" 2>&1 &
job=$!
i=0   # wait (at most a minute) for a few steps
while [ "$i" -lt 600 ] && ! { [ -f "$T/int/log.csv" ] && [ "$(wc -l <"$T/int/log.csv")" -ge 4 ]; }; do
    sleep 0.1; i=$((i + 1))
done
# the ranks are mpirun's children; rank 1 is the one with OMPI_COMM_WORLD_RANK=1
for p in $(ps -o pid= --ppid "$(pgrep -P "$job" mpirun || echo "$job")"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 && kill -INT "$p"
done
wait "$job"
rc=$?
grep -q '"interrupted": true' "$T/int/summary.json" 2>/dev/null && [ "$rc" -eq 130 ] &&
    [ -s "$T/int/model.safetensors" ] && pass mpi_signal_stops_all ||
    fail mpi_signal_stops_all "exit $rc (124: timeout); $(tail -n 3 "$T/int.out")"
exit $FAILED
