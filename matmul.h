// matmul.h: the three matrix products that training needs, row-major, with leading
// dimensions, in a fast (packed, cache-blocked, register-tiled, OpenMP) version and a
// plain reference version that the tests use as the oracle.
//
//   mm_nt:  C[M,N] (+)= A[M,K] . B[N,K]^T     forward   Y  = X W^T
//   mm_nn:  C[M,N] (+)= A[M,K] . B[K,N]       backward  dX = dY W
//   mm_tn:  C[M,N] (+)= A[K,M]^T . B[K,N]     backward  dW = dY^T X
//
// lda, ldb, ldc are the row strides (in elements) of the matrices as stored.
// mode OVERWRITE: C = A B; ACCUMULATE: C += A B (see WriteMode).
// Every element of C is owned by one thread and summed in a fixed order, so the result
// does not depend on the number of threads.
#ifndef KF_MATMUL_H
#define KF_MATMUL_H

#include "common.h"

// The one rule for every kernel that writes a product or a gradient (here and in
// model.c): the caller says at each call, by name, whether the kernel overwrites its
// output (OVERWRITE, into a fresh buffer: no zeroing pass first) or adds to it
// (ACCUMULATE, a sum of several contributions, as the residual stream's gradient).
// Parameter gradients always accumulate: model_zero_grad clears them once per step.
typedef enum { OVERWRITE = 0, ACCUMULATE = 1 } WriteMode;

void mm_nt(real *c, const real *a, const real *b, int M, int N, int K,
           int lda, int ldb, int ldc, WriteMode mode);
void mm_nn(real *c, const real *a, const real *b, int M, int N, int K,
           int lda, int ldb, int ldc, WriteMode mode);
void mm_tn(real *c, const real *a, const real *b, int M, int N, int K,
           int lda, int ldb, int ldc, WriteMode mode);

// Plain triple loops: obviously correct, slow.
void mm_nt_ref(real *c, const real *a, const real *b, int M, int N, int K,
               int lda, int ldb, int ldc, WriteMode mode);
void mm_nn_ref(real *c, const real *a, const real *b, int M, int N, int K,
               int lda, int ldb, int ldc, WriteMode mode);
void mm_tn_ref(real *c, const real *a, const real *b, int M, int N, int K,
               int lda, int ldb, int ldc, WriteMode mode);

// The depth of the slices of K that the fast path sums one after the other, in order,
// for a product over K terms (at most 256; balanced: K = 300 is two slices of 150).
// A product over K done as ACCUMULATE products over consecutive slices of this depth
// gives the same bits as the whole (not in the REF build: its loops sum all K in
// double, then add once). model.c cuts the loss's rows along these slices.
int mm_k_slice(int K);

// The micro-kernel of the fast path is chosen at run time, once: the best this CPU runs
// of "portable" (plain C, always), "avx2-fma" (6x16 tile in ymm registers) and "avx512"
// (12x32 in zmm); the x86 ones exist only in the float build. The environment variable
// KF_MM_KERNEL=NAME, read at the first product, picks one instead (to compare them); a
// name this build or CPU cannot run ends the program with a one-line error, exit 2.
// For a given kernel the results do not depend on the number of threads.

// The name of the i-th kernel of this build, worst first (NULL past the end).
const char *mm_kernel_list(int i);
// Uses kernel `name` from now on: 0, or 1 if this build has no such kernel, 2 if this
// CPU cannot run it (the kernel in use is then unchanged). For tests and benchmarks.
int mm_use_kernel(const char *name);
// Applies KF_MM_KERNEL now, if set: 0, or 1 with the message in err (a program calls
// it first thing to report a bad value in its own way).
int mm_kernel_from_env(char *err);
// The kernel in use ("reference" in the KF_REF build), for logs and bench.
const char *mm_kernel_name(void);

#endif
