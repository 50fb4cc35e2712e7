#!/bin/sh
# bench/mpi.sh: data-parallel training on one machine (loopback), side by side in one
# run: `fit` with the default ("small") model as 1 process x 2 threads and as 2 MPI
# ranks x 1 thread (the gradient sums overlapped with backward, then after it with
# --no-overlap), in turn, ROUNDS times (default 3), STEPS steps each (default 20);
# medians of the training tokens/s and, for 2 ranks, of the time the gradient all-reduce
# adds to a step (fit's own figures, from its last lines).
#
#   sh bench/mpi.sh
#
# Data: runs/m30k (Multi30k, examples/multi30k_data.sh) when ../shared/data has it,
# else the toy set of the demo (runs/toy-data). Builds ./train and ./train-mpi
# (make USE_MPI=1 PROG=train-mpi). Machines are noisy: run it on an otherwise idle one.
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-20}
command -v mpirun >/dev/null 2>&1 || { echo "bench/mpi.sh: needs mpirun (apt-get install libopenmpi-dev openmpi-bin)" >&2; exit 2; }
make -s train && make -s USE_MPI=1 PROG=train-mpi || exit 1
if [ -f ../shared/data/multi30k_de_en/train.de.gz ]; then
    sh examples/multi30k_data.sh >/dev/null || exit 1
    DATA=runs/m30k
else
    [ -f runs/toy-data/dataset.txt ] || ./train demo --minutes 0.05 >/dev/null || exit 1
    DATA=runs/toy-data
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
FIT="fit --data $DATA --steps $STEPS --eval-every 0 --eval-batches 1 --bleu-sentences 0"

# "fit: 20 steps in 17.1 s, 2398 tokens/s, ..." -> 2398
tok_s() { sed -n 's/^fit: [0-9]* steps in [0-9.]* s, \([0-9]*\) tokens\/s.*/\1/p' "$1"; }
for r in $(seq "$ROUNDS"); do
    ./train $FIT --threads 2 --out "$tmp/one" >"$tmp/one.out" 2>&1 || { cat "$tmp/one.out"; exit 1; }
    tok_s "$tmp/one.out" >>"$tmp/one.tok"
    line="round $r: 1 x 2 threads $(tail -n 1 "$tmp/one.tok") tok/s"
    for two in two:"" after:--no-overlap; do   # overlapped, then after backward
        name=${two%%:*}
        mpirun -np 2 --oversubscribe --bind-to core ./train-mpi $FIT --threads 1 ${two#*:} \
            --out "$tmp/$name" >"$tmp/$name.out" 2>&1 || { cat "$tmp/$name.out"; exit 1; }
        tok_s "$tmp/$name.out" >>"$tmp/$name.tok"
        sed -n 's/^fit: 2 ranks; the gradient all-reduce of \([0-9.]*\) MB ([a-z ]*) took \([0-9.]*\) ms per step.*/\1 \2/p' \
            "$tmp/$name.out" >>"$tmp/$name.red"
        line="$line; 2 ranks x 1 thread ($name) $(tail -n 1 "$tmp/$name.tok") tok/s,"
        line="$line all-reduce $(tail -n 1 "$tmp/$name.red" | cut -d' ' -f2) ms per step"
    done
    echo "$line"
done

# median of a column of numbers (the middle one; the lower middle for an even count)
median() { sort -n | awk '{ x[NR] = $1 } END { print x[int((NR + 1) / 2)] }'; }
echo
echo "data $DATA, $STEPS steps of $(sed -n 's/.* \([0-9]*\) tokens per batch.*/\1/p' "$tmp/one.out") tokens, medians of $ROUNDS rounds:"
echo "| run | tokens/s | all-reduce per step |"
echo "|---|---:|---:|"
echo "| 1 process x 2 threads | $(median <"$tmp/one.tok") | - |"
for name in two after; do
    [ "$name" = two ] && what="overlapped with backward" || what="after backward (--no-overlap)"
    echo "| 2 ranks x 1 thread, loopback, all-reduce $what | $(median <"$tmp/$name.tok") |" \
         "$(cut -d' ' -f2 "$tmp/$name.red" | median) ms of $(head -n 1 "$tmp/$name.red" | cut -d' ' -f1) MB |"
done
