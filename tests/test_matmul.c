// test_matmul.c: the fast products against hand-computed values and against the plain
// reference loops, on awkward shapes (1, ragged tiles, several K slices and column
// blocks), through sub-matrix views (leading dimensions wider than the view, elements
// outside the view must stay untouched), overwriting and accumulating; and the result
// must be bit-identical for any number of threads.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

// 2x3 times 3x2, every op, fast and reference: exact small integers.
static void test_hand_computed(void) {
    // A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12], A B = [58 64; 139 154]
    const real a_n[] = {1, 2, 3, 4, 5, 6}, a_t[] = {1, 4, 2, 5, 3, 6};
    const real b_n[] = {7, 8, 9, 10, 11, 12}, b_t[] = {7, 9, 11, 8, 10, 12};
    const real want[] = {58, 64, 139, 154};
    for (int o = 0; o < 3; o++)
        for (int fast = 0; fast < 2; fast++) {
            real c[4] = {1, 1, 1, 1};
            const real *a = ops[o].a_t ? a_t : a_n, *b = ops[o].b_t ? b_t : b_n;
            int lda = ops[o].a_t ? 2 : 3, ldb = ops[o].b_t ? 3 : 2;
            mm_fn fn = fast ? ops[o].fast : ops[o].ref;
            fn(c, a, b, 2, 2, 3, lda, ldb, 2, ACCUMULATE); // onto ones
            int ok = 1;
            for (int i = 0; i < 4; i++) ok &= c[i] == want[i] + 1;
            char name[64];
            snprintf(name, sizeof name, "%s%s hand-computed 2x3 . 3x2", ops[o].name, fast ? "" : "_ref");
            CHECK(ok, name, "got [%g %g; %g %g], want [59 65; 140 155]", c[0], c[1], c[2], c[3]);
        }
}

// One op at one shape through views: every stored matrix has 3 (or 5) spare columns.
static void test_against_ref(int o, int M, int N, int K, int accumulate) {
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

    // Inside the view: |fast - ref| within the rounding of a float sum of |a||b| terms.
    // Outside (the spare columns and the element past the end): bit-identical.
    const double tol = sizeof(real) == 4 ? 1e-5 : 1e-13;
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
    snprintf(name, sizeof name, "%s M=%d N=%d K=%d accumulate=%d", ops[o].name, M, N, K, accumulate);
    CHECK(worst <= 1.0 && outside_ok, name, "worst error %.3g x tolerance, outside view %s",
          worst, outside_ok ? "untouched" : "MODIFIED");
    free(a); free(b); free(c); free(want);
}

// K = 0 is the empty sum: C = 0 when overwriting, C unchanged when accumulating.
static void test_empty_k(void) {
    for (int o = 0; o < 3; o++)
        for (int accumulate = 0; accumulate < 2; accumulate++) {
            real a[1] = {1}, b[1] = {1}, c[6] = {1, 2, 3, 4, 5, 6};
            ops[o].fast(c, a, b, 2, 2, 0, 1, 1, 3, accumulate); // view 2x2 of a 2x3 C
            int ok = c[2] == 3 && c[5] == 6;
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) ok &= c[i * 3 + j] == (accumulate ? 1 + i * 3 + j : 0);
            char name[64];
            snprintf(name, sizeof name, "%s K=0 accumulate=%d", ops[o].name, accumulate);
            CHECK(ok, name, "got [%g %g %g; %g %g %g]", c[0], c[1], c[2], c[3], c[4], c[5]);
        }
}

#ifdef _OPENMP
// Large enough to run on several threads with several row blocks, K slices and ragged
// edges, tall (the threads split the rows) and wide (they split the columns): 1, 2 and
// 3 threads must give the same bits.
static void test_thread_invariance(void) {
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
            snprintf(name, sizeof name, "%s M=%d N=%d K=%d bit-identical on 1, 2, 3 threads",
                     ops[o].name, M, N, K);
            CHECK(same2 && same3, name, "2 threads %s, 3 threads %s", same2 ? "same" : "DIFFER",
                  same3 ? "same" : "DIFFER");
            for (int t = 0; t < 3; t++) free(c[t]);
            free(a); free(b);
        }
}
#endif

int main(void) {
    printf("# kernel: %s\n", mm_kernel_name());
    test_hand_computed();
    // (M,N,K): single elements, ragged tiles, a K of one, K in several slices, N in
    // two column blocks, M in several row blocks.
    static const int shapes[][3] = {
        {1, 1, 1}, {7, 33, 257}, {257, 7, 33}, {33, 257, 1}, {130, 70, 300}, {6, 16, 256},
        {13, 35, 520}, {5, 4100, 9}, {300, 19, 40},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int o = 0; o < 3; o++)
            for (int accumulate = 0; accumulate < 2; accumulate++)
                test_against_ref(o, shapes[s][0], shapes[s][1], shapes[s][2], accumulate);
    test_empty_k();
#ifdef _OPENMP
    test_thread_invariance();
#endif
    CHECK_EXIT();
}
