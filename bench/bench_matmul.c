// bench_matmul.c: GFLOP/s of mm_nt / mm_nn / mm_tn at the model's shapes (B*T = 2048
// rows, C = 256, F = 1024, V = 8000), median of several timed runs after a warm-up.
//
//   bench/bench_matmul            one line per shape, then the total
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

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--shapes") == 0) {
        for (int s = 0; s < NSHAPES; s++)
            printf("%s %d %d %d\n", shapes[s].op, shapes[s].M, shapes[s].N, shapes[s].K);
        return 0;
    }
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("# kronformer mm_* (%s kernel, %s, %d threads)\n", mm_kernel_name(), REAL_NAME, threads);
    printf("# op     M     N     K  median_ms  GFLOP/s  (min-max)\n");
    uint64_t rng = 42;
    double total_flops = 0, total_time = 0;
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
        // warm up, then time runs until ~0.4 s or 25 runs, at least 5
        for (int w = 0; w < 2; w++) fn(c, a, b, M, N, K, lda, ldb, N, accumulate);
        double times[25];
        int runs = 0;
        double start = seconds_now();
        while (runs < 25 && (runs < 5 || seconds_since(start) < 0.4)) {
            double t0 = seconds_now();
            fn(c, a, b, M, N, K, lda, ldb, N, accumulate);
            times[runs++] = seconds_since(t0);
        }
        qsort(times, runs, sizeof(double), cmp_double);
        double med = runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
        printf("%s %5d %5d %5d %10.3f %8.1f  (%.1f-%.1f)\n", op, M, N, K, med * 1e3,
               flops / med * 1e-9, flops / times[runs - 1] * 1e-9, flops / times[0] * 1e-9);
        total_flops += flops;
        total_time += med;
        free(a); free(b); free(c);
    }
    printf("total %.1f GFLOP in %.3f ms: %.1f GFLOP/s\n", total_flops * 1e-9, total_time * 1e3,
           total_flops / total_time * 1e-9);
    return 0;
}
