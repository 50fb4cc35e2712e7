#!/bin/sh
# bench/run.sh: `make bench` runs this.
# 1. kronformer's matmuls at the model's shapes and, if Debian's python3 has numpy, the
#    same products through numpy's BLAS with the same number of threads: ours/numpy per
#    shape and overall (total FLOPs over total median time).
# 2. one training step of the "small" configuration (bench/bench_step.c: median, min-max,
#    FLOPs, MFU, per-kernel profile) and, if python3 has torch, the same step in PyTorch
#    (../shared/bench/torch_step.py), alternately ROUNDS times (default 3); the ratio of
#    the medians.
# 3. the same step with factorized embeddings (the tied table built from its factors
#    every step) against dense, alternately ROUNDS times: each one's median and its ratio
#    to dense.
# For the comparisons: apt-get install python3-numpy python3-torch libopenblas0-pthread
# (without OpenBLAS, Debian's numpy runs the slow reference BLAS). Machines are noisy:
# compare figures from one run, on an otherwise idle machine.
cd "$(dirname "$0")/.." || exit 1
THREADS=${OMP_NUM_THREADS:-$(nproc)}
export OMP_NUM_THREADS="$THREADS"
ROUNDS=${ROUNDS:-3}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE would override OpenBLAS's own tuning: unset them.
py() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$THREADS" /usr/bin/python3 "$@"; }

echo "== matrix multiplies ($THREADS threads)"
./bench/bench_matmul >"$tmp/ours" || exit 1
cat "$tmp/ours"
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    echo "(no numpy for /usr/bin/python3: skipping the BLAS comparison)"
else
    echo
    ./bench/bench_matmul --shapes | py bench/numpy_gemm.py >"$tmp/blas" || exit 1
    cat "$tmp/blas"
    echo
    echo "# op     M     N     K  ours/numpy"
    awk 'FNR == NR { if ($1 == "total") total = $(NF - 1); else if ($1 !~ /^#/) gf[$1 FS $2 FS $3 FS $4] = $6; next }
         $1 == "total" { printf "overall  %.1f / %.1f GFLOP/s = %.2f\n", $(NF - 1), total, $(NF - 1) / total; next }
         $1 !~ /^#/ { printf "%s %5d %5d %5d  %9.2f\n", $1, $2, $3, $4, $6 / gf[$1 FS $2 FS $3 FS $4] }' \
        "$tmp/blas" "$tmp/ours"
fi

echo
echo "== training step, small configuration ($THREADS threads, $ROUNDS rounds, ours and PyTorch alternately)"
TORCH=../shared/bench/torch_step.py
have_torch=0
[ -f "$TORCH" ] && /usr/bin/python3 -c 'import torch' 2>/dev/null && have_torch=1
[ "$have_torch" = 1 ] || echo "(no torch for /usr/bin/python3 or no $TORCH: skipping the PyTorch step)"
# MFU is relative to the peak BLAS reaches on this machine (195 GFLOP/s if no numpy)
PEAK=195
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    PEAK=$(py bench/numpy_gemm.py --peak) || exit 1
    echo "BLAS peak (a 4096^3 product through numpy): $PEAK GFLOP/s"
fi
for r in $(seq "$ROUNDS"); do
    ./bench/bench_step 10 dense "$PEAK" >"$tmp/step$r" || exit 1
    if [ "$r" = 1 ]; then cat "$tmp/step$r"; else grep step_ms "$tmp/step$r"; fi
    [ "$have_torch" = 1 ] && py "$TORCH" 256 3 8 1024 8000 64 32 "$THREADS" 10 | tee -a "$tmp/torch"
done
# median of the per-run medians, and the list
summary() { grep -ho 'step_ms_median=[0-9.]*' "$@" | cut -d= -f2 | sort -n |
            awk '{ v[NR] = $1; s = s " " $1 } END { printf "%s ms (runs:%s ms)", v[int((NR + 1) / 2)], s }'; }
echo
echo "kronformer step: $(summary "$tmp"/step*)"
if [ "$have_torch" = 1 ]; then
    echo "pytorch step:    $(summary "$tmp/torch")"
    ours_ms=$(summary "$tmp"/step* | cut -d' ' -f1)
    torch_ms=$(summary "$tmp/torch" | cut -d' ' -f1)
    awk -v a="$ours_ms" -v b="$torch_ms" 'BEGIN { printf "speed-up over PyTorch (tokens/s ratio): %.2fx\n", b / a }'
fi

echo
echo "== training step with factorized embeddings ($THREADS threads, $ROUNDS rounds, alternately)"
SPECS="dense kronxs:n=2,r=18 kronxs:n=2,r=36 kron:n=2,r=1 kronxs:n=2,r=18,head=200,order=freq,layout=diag"
for r in $(seq "$ROUNDS"); do
    i=0
    for spec in $SPECS; do
        i=$((i + 1))
        ./bench/bench_step 10 "$spec" | grep -o 'step_ms_median=[0-9.]*' >>"$tmp/emb$i" || exit 1
    done
done
i=0
for spec in $SPECS; do
    i=$((i + 1))
    line=$(summary "$tmp/emb$i")
    [ "$i" = 1 ] && dense_ms=${line%% *}
    awk -v s="$spec" -v l="$line" -v a="${line%% *}" -v d="$dense_ms" \
        'BEGIN { printf "%-52s %s  %.3fx dense\n", s, l, a / d }'
done
