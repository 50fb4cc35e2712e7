"""numpy_gemm.py: the BLAS baseline for bench_matmul, numpy float32 products at the
same shapes, in the same output format (op M N K median_ms GFLOP/s (min-max)).

Reads the shapes, one "op M N K" per line, from stdin:
    bench/bench_matmul --shapes | python3 bench/numpy_gemm.py
With --peak instead: the machine's peak as BLAS reaches it, the median GFLOP/s of a
4096 x 4096 x 4096 product (one number: bench_step's reference for MFU).
op nt: C = A B^T with A [M,K], B [N,K];  nn: C = A B, B [K,N];  tn: C = A^T B, A [K,M].
The transposes are views, so BLAS sees the transpose flags, as the C code sees strides.
"""
import sys
import time

import numpy as np


def bench(op, M, N, K, rng):
    a = rng.standard_normal((K, M) if op[0] == "t" else (M, K), dtype=np.float32)
    b = rng.standard_normal((N, K) if op[1] == "t" else (K, N), dtype=np.float32)
    x = a.T if op[0] == "t" else a
    y = b.T if op[1] == "t" else b
    c = np.empty((M, N), dtype=np.float32)
    for _ in range(2):  # warm up
        np.dot(x, y, out=c)
    times = []
    start = time.perf_counter()
    while len(times) < 25 and (len(times) < 5 or time.perf_counter() - start < 0.4):
        t0 = time.perf_counter()
        np.dot(x, y, out=c)
        times.append(time.perf_counter() - t0)
    return sorted(times)


def main():
    rng = np.random.default_rng(42)
    print(f"# numpy {np.__version__} float32")
    print("# op     M     N     K  median_ms  GFLOP/s  (min-max)")
    total_flops = total_time = 0.0
    for line in sys.stdin:
        if not line.strip() or line.startswith("#"):
            continue
        op, M, N, K = line.split()[:4]
        M, N, K = int(M), int(N), int(K)
        t = bench(op, M, N, K, rng)
        med = float(np.median(t))
        flops = 2.0 * M * N * K
        print(f"{op} {M:5d} {N:5d} {K:5d} {med * 1e3:10.3f} {flops / med * 1e-9:8.1f}"
              f"  ({flops / t[-1] * 1e-9:.1f}-{flops / t[0] * 1e-9:.1f})", flush=True)
        total_flops += flops
        total_time += med
    print(f"total {total_flops * 1e-9:.1f} GFLOP in {total_time * 1e3:.3f} ms: "
          f"{total_flops / total_time * 1e-9:.1f} GFLOP/s")


def peak():
    t = bench("nn", 4096, 4096, 4096, np.random.default_rng(42))
    print(f"{2.0 * 4096**3 / float(np.median(t)) * 1e-9:.1f}")


if __name__ == "__main__":
    peak() if sys.argv[1:] == ["--peak"] else main()
