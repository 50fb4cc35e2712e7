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

// Which inner kernel the fast path uses ("avx2-fma" or "portable"), for logs and bench.
const char *mm_kernel_name(void);

#endif
