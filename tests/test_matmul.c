// test_matmul.c: the fast products against hand-computed values and against the plain
// reference loops, for every micro-kernel this machine runs (matmul.h: the others are
// listed as skipped), on awkward shapes (1, ragged tiles of each kernel, several K
// slices, row and column blocks), through sub-matrix views (leading dimensions wider
// than the view, elements outside the view must stay untouched), overwriting and
// accumulating; for each kernel the result must be bit-identical for any number of
// threads, and the two fused multiply-add kernels (AVX2, AVX-512) must agree bit for bit.
// Also the choice itself: the default is the best kernel the CPU runs, and asking for
// an unknown kernel fails and changes nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#include "../matmul.h"
#include "check.h"
#ifdef _OPENMP
#include <omp.h>
#endif

typedef void (*mm_fn)(real *, const real *, const real *, int, int, int, int, int, int, WriteMode);

static const struct { const char *name; mm_fn fast, ref; int a_t, b_t; } ops[] = {
    {"mm_nt", mm_nt, mm_nt_ref, 0, 1}, // A [M,K], B [N,K]
    {"mm_nn", mm_nn, mm_nn_ref, 0, 0}, // A [M,K], B [K,N]
    {"mm_tn", mm_tn, mm_tn_ref, 1, 0}, // A [K,M], B [K,N]
};

static uint64_t rng = 7;

static real *random_buffer(size_t n) {
    real *x = malloc(n * sizeof(real));
    if (!x) { fprintf(stderr, "test_matmul: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) x[i] = (real)(2.0 * rng_uniform(&rng) - 1.0);
    return x;
}

// The element (i,k) of A and (k,j) of B as stored, for the tolerance.
static real a_at(const real *a, int a_t, int lda, int i, int k) {
    return a_t ? a[(size_t)k * lda + i] : a[(size_t)i * lda + k];
}
static real b_at(const real *b, int b_t, int ldb, int k, int j) {
    return b_t ? b[(size_t)j * ldb + k] : b[(size_t)k * ldb + j];
}

// 2x3 times 3x2, every op, with the kernel in use (`kernel` names it), or with the
// reference loops (kernel NULL): exact small integers.
static void test_hand_computed(const char *kernel) {
    // A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12], A B = [58 64; 139 154]
    const real a_n[] = {1, 2, 3, 4, 5, 6}, a_t[] = {1, 4, 2, 5, 3, 6};
    const real b_n[] = {7, 8, 9, 10, 11, 12}, b_t[] = {7, 9, 11, 8, 10, 12};
    const real want[] = {58, 64, 139, 154};
    for (int o = 0; o < 3; o++) {
        real c[4] = {1, 1, 1, 1};
        const real *a = ops[o].a_t ? a_t : a_n, *b = ops[o].b_t ? b_t : b_n;
        int lda = ops[o].a_t ? 2 : 3, ldb = ops[o].b_t ? 3 : 2;
        mm_fn fn = kernel ? ops[o].fast : ops[o].ref;
        fn(c, a, b, 2, 2, 3, lda, ldb, 2, ACCUMULATE); // onto ones
        int ok = 1;
        for (int i = 0; i < 4; i++) ok &= c[i] == want[i] + 1;
        char name[64];
        snprintf(name, sizeof name, "%s %s%s hand-computed 2x3 . 3x2", kernel ? kernel : "",
                 ops[o].name, kernel ? "" : "_ref");
        CHECK(ok, name, "got [%g %g; %g %g], want [59 65; 140 155]", c[0], c[1], c[2], c[3]);
    }
}

// One op at one shape through views: every stored matrix has 3 (or 5) spare columns.
static void test_against_ref(const char *kernel, int o, int M, int N, int K, int accumulate) {
    int a_rows = ops[o].a_t ? K : M, a_cols = ops[o].a_t ? M : K;
    int b_rows = ops[o].b_t ? N : K, b_cols = ops[o].b_t ? K : N;
    int lda = a_cols + 3, ldb = b_cols + 5, ldc = N + 3;
    real *a = random_buffer((size_t)a_rows * lda + 1);
    real *b = random_buffer((size_t)b_rows * ldb + 1);
    real *c = random_buffer((size_t)M * ldc + 1); // also the sentinels around the view
    real *want = malloc(((size_t)M * ldc + 1) * sizeof(real));
    memcpy(want, c, ((size_t)M * ldc + 1) * sizeof(real));
    ops[o].ref(want, a, b, M, N, K, lda, ldb, ldc, accumulate);
    ops[o].fast(c, a, b, M, N, K, lda, ldb, ldc, accumulate);

    // Inside the view: |fast - ref| <= (K + 3) u (sum_k |a_ik b_kj| + |c_ij|), u the unit
    // roundoff: a sum of K products (and C) in any order whose tree is at most K + 2 deep
    // (the K slices add to C one after the other) errs by at most (K + 2) u times the sum
    // of the magnitudes (Higham, Accuracy and Stability, 3.1), and the reference, summed
    // in double, by one more rounding to real. Outside (the spare columns and the element
    // past the end): bit-identical.
    const double tol = (K + 3) * (sizeof(real) == 4 ? FLT_EPSILON : DBL_EPSILON) / 2;
    double worst = 0.0; // largest |diff| / bound
    int outside_ok = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            size_t e = (size_t)i * ldc + j;
            if (j >= N) { outside_ok &= memcmp(&c[e], &want[e], sizeof(real)) == 0; continue; }
            double bound = 1e-30;
            for (int k = 0; k < K; k++)
                bound += fabs((double)a_at(a, ops[o].a_t, lda, i, k) * b_at(b, ops[o].b_t, ldb, k, j));
            if (accumulate) bound += fabs((double)want[e]);
            double r = fabs((double)c[e] - want[e]) / (tol * bound);
            if (r > worst || r != r) worst = r != r ? 1e30 : r;
        }
    outside_ok &= memcmp(&c[(size_t)M * ldc], &want[(size_t)M * ldc], sizeof(real)) == 0;
    char name[96];
    snprintf(name, sizeof name, "%s %s M=%d N=%d K=%d accumulate=%d", kernel, ops[o].name, M, N, K,
             accumulate);
    CHECK(worst <= 1.0 && outside_ok, name, "worst error %.3g x tolerance, outside view %s",
          worst, outside_ok ? "untouched" : "MODIFIED");
    free(a); free(b); free(c); free(want);
}

// K = 0 is the empty sum: C = 0 when overwriting, C unchanged when accumulating.
static void test_empty_k(const char *kernel) {
    for (int o = 0; o < 3; o++)
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            real a[1] = {1}, b[1] = {1}, c[6] = {1, 2, 3, 4, 5, 6};
            ops[o].fast(c, a, b, 2, 2, 0, 1, 1, 3, accumulate); // view 2x2 of a 2x3 C
            int ok = c[2] == 3 && c[5] == 6;
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) ok &= c[i * 3 + j] == (accumulate ? 1 + i * 3 + j : 0);
            char name[64];
            snprintf(name, sizeof name, "%s %s K=0 accumulate=%d", kernel, ops[o].name, accumulate);
            CHECK(ok, name, "got [%g %g %g; %g %g %g]", c[0], c[1], c[2], c[3], c[4], c[5]);
        }
}

#ifdef _OPENMP
// Large enough to run on several threads with several row blocks, K slices and ragged
// edges, tall (the threads split the rows) and wide (they split the columns): 1, 2 and
// 3 threads must give the same bits.
static void test_thread_invariance(const char *kernel) {
    static const int shapes[][3] = {{611, 290, 700}, {70, 900, 300}};
    for (int s = 0; s < 2; s++)
        for (int o = 0; o < 3; o++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int lda = ops[o].a_t ? M : K, ldb = ops[o].b_t ? K : N;
            real *a = random_buffer((size_t)M * K), *b = random_buffer((size_t)K * N), *c[3];
            for (int t = 0; t < 3; t++) {
                c[t] = malloc((size_t)M * N * sizeof(real));
                for (size_t e = 0; e < (size_t)M * N; e++) c[t][e] = (real)(e % 13) * 0.25f;
                omp_set_num_threads(t + 1);
                ops[o].fast(c[t], a, b, M, N, K, lda, ldb, N, 1);
            }
            omp_set_num_threads(omp_get_num_procs());
            int same2 = memcmp(c[0], c[1], (size_t)M * N * sizeof(real)) == 0;
            int same3 = memcmp(c[0], c[2], (size_t)M * N * sizeof(real)) == 0;
            char name[96];
            snprintf(name, sizeof name, "%s %s M=%d N=%d K=%d bit-identical on 1, 2, 3 threads",
                     kernel, ops[o].name, M, N, K);
            CHECK(same2 && same3, name, "2 threads %s, 3 threads %s", same2 ? "same" : "DIFFER",
                  same3 ? "same" : "DIFFER");
            for (int t = 0; t < 3; t++) free(c[t]);
            free(a); free(b);
        }
}
#endif

// The two fused multiply-add kernels sum each element in the same order (matmul.c), so
// they give the same bits; run only if this CPU has both (and not in the KF_REF build,
// where every product is the reference's).
static void test_fma_kernels_agree(void) {
#ifdef KF_REF
    return;
#endif
    if (mm_use_kernel("avx2-fma") || mm_use_kernel("avx512")) return;
    for (int o = 0; o < 3; o++) {
        int M = 37, N = 75, K = 600; // ragged for both tiles, three K slices
        int lda = ops[o].a_t ? M : K, ldb = ops[o].b_t ? K : N;
        real *a = random_buffer((size_t)M * K), *b = random_buffer((size_t)K * N);
        real *c = random_buffer((size_t)M * N * 2), *c512 = c + (size_t)M * N;
        memcpy(c512, c, (size_t)M * N * sizeof(real));
        mm_use_kernel("avx2-fma");
        ops[o].fast(c, a, b, M, N, K, lda, ldb, N, ACCUMULATE);
        mm_use_kernel("avx512");
        ops[o].fast(c512, a, b, M, N, K, lda, ldb, N, ACCUMULATE);
        char name[96];
        snprintf(name, sizeof name, "avx2-fma and avx512 %s M=%d N=%d K=%d bit-identical",
                 ops[o].name, M, N, K);
        CHECK(memcmp(c, c512, (size_t)M * N * sizeof(real)) == 0, name, "they differ");
        free(a); free(b); free(c);
    }
}

int main(void) {
    // The default (unless KF_MM_KERNEL chose) is the last kernel of the list that this
    // CPU runs; mm_use_kernel of an unknown name fails and keeps the kernel in use.
    const char *first = mm_kernel_name(), *best = NULL;
    for (int i = 0; mm_kernel_list(i); i++)
        if (mm_use_kernel(mm_kernel_list(i)) == 0) best = mm_kernel_list(i);
#ifdef KF_REF
    best = "reference"; // (the reference build sends every product to the reference loops)
#endif
    if (!getenv("KF_MM_KERNEL"))
        CHECK(best && strcmp(first, best) == 0, "default kernel is the best this CPU runs",
              "default %s, best %s", first, best ? best : "none");
    const char *before = mm_kernel_name();
    int status = mm_use_kernel("no-such-kernel");
    CHECK(status == 1 && strcmp(mm_kernel_name(), before) == 0, "unknown kernel refused",
          "status %d, kernel %s (was %s)", status, mm_kernel_name(), before);

    test_hand_computed(NULL);
    // (M,N,K): single elements, ragged tiles, a K of one, K in several slices (KC = 256),
    // N in two column blocks (NC = 4080), M in several row blocks (MC = 144); exactly one
    // tile of each kernel (6x16, 12x32) and a few of them.
    static const int shapes[][3] = {
        {1, 1, 1}, {7, 33, 257}, {257, 7, 33}, {33, 257, 1}, {130, 70, 300}, {6, 16, 256},
        {13, 35, 520}, {5, 4100, 9}, {300, 19, 40}, {12, 32, 256}, {24, 64, 513},
        {145, 97, 33},
    };
    for (int i = 0; mm_kernel_list(i); i++) {
        const char *kernel = mm_kernel_list(i);
        if (mm_use_kernel(kernel)) {
            printf("# kernel %s: skipped, this CPU cannot run it\n", kernel);
            continue;
        }
        printf("# kernel %s (in use: %s)\n", kernel, mm_kernel_name());
        test_hand_computed(kernel);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int o = 0; o < 3; o++)
                for (int accumulate = 0; accumulate < 2; accumulate++)
                    test_against_ref(kernel, o, shapes[s][0], shapes[s][1], shapes[s][2], accumulate);
        test_empty_k(kernel);
#ifdef _OPENMP
        test_thread_invariance(kernel);
#endif
    }
    test_fma_kernels_agree();
    CHECK_EXIT();
}
