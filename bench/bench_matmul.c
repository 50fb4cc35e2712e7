// bench_matmul.c: GFLOP/s of mm_nt / mm_nn / mm_tn at the model's shapes (B*T = 2048
// rows, C = 256, F = 1024, V = 8000), median of several timed runs after a warm-up.
//
//   bench/bench_matmul            one line per shape, then the total, with the kernel in
//                                 use (the best this CPU runs, or KF_MM_KERNEL's)
//   bench/bench_matmul --kernels  the median GFLOP/s of each kernel this CPU runs, side
//                                 by side, one line per shape, then the totals
//   bench/bench_matmul --shapes   only the shape list (bench/numpy_gemm.py reads it)
//
// Output columns: op M N K median_ms GFLOP/s(median) GFLOP/s(min) GFLOP/s(max).
// The backward products accumulate (+=), as the model calls them.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../matmul.h"
#include "../fileio.h"
#ifdef _OPENMP
#include <omp.h>
#endif

typedef void (*mm_fn)(real *, const real *, const real *, int, int, int, int, int, int, WriteMode);

static const struct { const char *op; int M, N, K; } shapes[] = {
    // forward, Y = X W^T
    {"nt", 2048, 768, 256},  {"nt", 2048, 256, 256},  {"nt", 2048, 1024, 256},
    {"nt", 2048, 256, 1024}, {"nt", 2048, 8000, 256}, {"nt", 2048, 512, 256},
    // backward, dX = dY W
    {"nn", 2048, 256, 768},  {"nn", 2048, 256, 1024}, {"nn", 2048, 1024, 256},
    {"nn", 2048, 256, 8000},
    // backward, dW = dY^T X
    {"tn", 768, 256, 2048},  {"tn", 1024, 256, 2048}, {"tn", 256, 1024, 2048},
    {"tn", 8000, 256, 2048},
};
#define NSHAPES ((int)(sizeof(shapes) / sizeof(shapes[0])))

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

// Times fn on the shape's operands: warm-up, then runs until ~0.4 s or 25 runs, at least
// 5. Returns the median seconds; the fastest and slowest go to *lo and *hi.
static double time_product(mm_fn fn, real *c, const real *a, const real *b, int M, int N,
                           int K, int lda, int ldb, WriteMode mode, double *lo, double *hi) {
    for (int w = 0; w < 2; w++) fn(c, a, b, M, N, K, lda, ldb, N, mode);
    double times[25];
    int runs = 0;
    double start = seconds_now();
    while (runs < 25 && (runs < 5 || seconds_since(start) < 0.4)) {
        double t0 = seconds_now();
        fn(c, a, b, M, N, K, lda, ldb, N, mode);
        times[runs++] = seconds_since(t0);
    }
    qsort(times, runs, sizeof(double), cmp_double);
    *lo = times[0], *hi = times[runs - 1];
    return runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--shapes") == 0) {
        for (int s = 0; s < NSHAPES; s++)
            printf("%s %d %d %d\n", shapes[s].op, shapes[s].M, shapes[s].N, shapes[s].K);
        return 0;
    }
    int side_by_side = argc > 1 && strcmp(argv[1], "--kernels") == 0;
    if (argc > 2 || (argc > 1 && !side_by_side)) {
        fprintf(stderr, "usage: bench_matmul [--kernels | --shapes]\n");
        return 2;
    }
    // the kernels to time: the one in use, or each this CPU runs
    const char *kernels[8];
    int nk = 0;
    if (side_by_side) {
        for (int i = 0; mm_kernel_list(i) && nk < 8; i++)
            if (mm_use_kernel(mm_kernel_list(i)) == 0) kernels[nk++] = mm_kernel_list(i);
    } else {
        kernels[nk++] = mm_kernel_name();
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    if (side_by_side) {
        printf("# kronformer mm_* (%s, %d threads), median GFLOP/s of each kernel\n", REAL_NAME, threads);
        printf("# op     M     N     K");
        for (int k = 0; k < nk; k++) printf(" %9s", kernels[k]);
        printf("\n");
    } else {
        printf("# kronformer mm_* (%s kernel, %s, %d threads)\n", mm_kernel_name(), REAL_NAME, threads);
        printf("# op     M     N     K  median_ms  GFLOP/s  (min-max)\n");
    }
    uint64_t rng = 42;
    double total_flops = 0, total_time[8] = {0};
    for (int s = 0; s < NSHAPES; s++) {
        int M = shapes[s].M, N = shapes[s].N, K = shapes[s].K;
        const char *op = shapes[s].op;
        mm_fn fn = op[0] == 't' ? mm_tn : op[1] == 't' ? mm_nt : mm_nn;
        WriteMode accumulate = fn != mm_nt ? ACCUMULATE : OVERWRITE;
        // Every operand is stored densely; A is [M,K] ([K,M] for tn), B is [K,N] ([N,K] for nt).
        int lda = op[0] == 't' ? M : K, ldb = op[1] == 't' ? K : N;
        real *a = malloc(sizeof(real) * (size_t)M * K);
        real *b = malloc(sizeof(real) * (size_t)K * N);
        real *c = malloc(sizeof(real) * (size_t)M * N);
        if (!a || !b || !c) { fprintf(stderr, "bench_matmul: out of memory\n"); return 1; }
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (real)rng_normal(&rng);
        for (size_t i = 0; i < (size_t)K * N; i++) b[i] = (real)rng_normal(&rng);
        memset(c, 0, sizeof(real) * (size_t)M * N);
        double flops = 2.0 * M * N * K;
        printf("%s %5d %5d %5d", op, M, N, K);
        for (int k = 0; k < nk; k++) {
            mm_use_kernel(kernels[k]);
            double lo, hi, med = time_product(fn, c, a, b, M, N, K, lda, ldb, accumulate, &lo, &hi);
            if (side_by_side)
                printf(" %9.1f", flops / med * 1e-9);
            else
                printf(" %10.3f %8.1f  (%.1f-%.1f)", med * 1e3, flops / med * 1e-9, flops / hi * 1e-9,
                       flops / lo * 1e-9);
            total_time[k] += med;
        }
        printf("\n");
        fflush(stdout);
        total_flops += flops;
        free(a); free(b); free(c);
    }
    for (int k = 0; k < nk; k++)
        printf("total %s %.1f GFLOP in %.3f ms: %.1f GFLOP/s\n", kernels[k], total_flops * 1e-9,
               total_time[k] * 1e3, total_flops / total_time[k] * 1e-9);
    return 0;
}
