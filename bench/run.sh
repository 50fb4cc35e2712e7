#!/bin/sh
# bench/run.sh: `make bench` runs this. Times kronformer's matmuls at the model's shapes
# and, if Debian's python3 has numpy, the same products through numpy's BLAS with the
# same number of threads, then prints ours/numpy per shape and overall (total FLOPs over
# total median time). Machines are noisy: compare figures from one run, on an idle machine.
cd "$(dirname "$0")/.." || exit 1
ours=$(mktemp) && blas=$(mktemp) || exit 1
trap 'rm -f "$ours" "$blas"' EXIT

./bench/bench_matmul >"$ours" || exit 1
cat "$ours"

if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    echo "(no numpy for /usr/bin/python3: skipping the BLAS comparison)"
    exit 0
fi
echo
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE would override OpenBLAS's own tuning: unset them.
./bench/bench_matmul --shapes |
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}" \
        /usr/bin/python3 bench/numpy_gemm.py >"$blas" || exit 1
cat "$blas"

echo
echo "# op     M     N     K  ours/numpy"
awk 'FNR == NR { if ($1 == "total") total = $(NF - 1); else if ($1 !~ /^#/) gf[$1 FS $2 FS $3 FS $4] = $6; next }
     $1 == "total" { printf "overall  %.1f / %.1f GFLOP/s = %.2f\n", $(NF - 1), total, $(NF - 1) / total; next }
     $1 !~ /^#/ { printf "%s %5d %5d %5d  %9.2f\n", $1, $2, $3, $4, $6 / gf[$1 FS $2 FS $3 FS $4] }' \
    "$blas" "$ours"
