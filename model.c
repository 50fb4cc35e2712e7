// model.c: the Transformer of kronformer. Layers first, each forward with its backward
// beside it; then the model: parameters, activations, forward, backward, AdamW.
//
// Conventions (llm.c's): kernels take (outputs, inputs, weights, dims, mode). The one
// gradient rule (matmul.h's WriteMode): a backward kernel always adds (+=) into the
// gradients of parameters, and writes the gradient of its input as the caller says at
// each call: OVERWRITE (a fresh buffer, no zeroing pass first) or ACCUMULATE (a sum of
// contributions, as the residual stream's gradient). Every parallel loop gives each
// output element to exactly one thread and sums in a fixed order, so results do not
// depend on the number of threads.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tgmath.h>   // exp, tanh, sqrt of a float stay in float

#include "model.h"
#include "matmul.h"
#include "tokenizer.h"
#include "vecmath.h"

// Sums over the rows of a (N, n) matrix (bias and LayerNorm parameter gradients): each
// thread owns a block of COL_BLOCK columns and keeps their sums in local arrays (in
// registers) while it walks the rows in order, reading COL_BLOCK contiguous reals of
// each. Every sum adds the rows in order 0..N-1, whatever the number of threads.
// (Measured, one thread, N = 2048: 3x faster than blocks of 16 summed in memory.)
#define COL_BLOCK 64

// ----------------------------------------------------------------------------
// LayerNorm: out = (x - mean) * rstd * w + b over the C channels of each row.

void layernorm_forward(real *out, real *mean, real *rstd, const real *inp,
                       const real *w, const real *b, int N, int C) {
    // out, inp (N, C); mean, rstd (N); w, b (C)
    #pragma omp parallel for
    for (int i = 0; i < N; i++) {
        const real *x = inp + (size_t)i * C;
        real *o = out + (size_t)i * C;
        real m = sum8(x, C) / C;
        for (int c = 0; c < C; c++) o[c] = x[c] - m;
        real s = 1 / sqrt(dot8(o, o, C) / C + (real)1e-5);
        for (int c = 0; c < C; c++) o[c] = o[c] * s * w[c] + b[c];
        mean[i] = m;
        rstd[i] = s;
    }
}

// Backward, for one row (code names: m = mean, s = rstd, g = dout). Forward was
//   m = mean_c x_c,  s = 1 / sqrt(mean_c (x_c - m)^2 + 1e-5),  xhat_c = (x_c - m) s,
//   out_c = xhat_c w_c + b_c,
// so dw_c += g_c xhat_c, db_c += g_c, and with dxhat_c = g_c w_c the chain rule through
// xhat_c gives dx_j = sum_c dxhat_c dxhat_c/dx_j, where
//   dxhat_c/dx_j = s (delta_cj - 1/C) + (x_c - m) ds/dx_j,   ds/dx_j = -s^2 xhat_j / C
// (the variance's derivative is 2 (x_j - m) / C: the mean's own term sums to zero), so
//   dx_j = s (dxhat_j - mean_c dxhat_c - xhat_j mean_c(dxhat_c xhat_c)).
// Below: gm = mean_c dxhat_c, gx = mean_c(dxhat_c xhat_c).
void layernorm_backward(real *dinp, real *dw, real *db, const real *dout,
                        const real *inp, const real *w, const real *mean,
                        const real *rstd, int N, int C, WriteMode mode) {
    #pragma omp parallel for
    for (int i = 0; i < N; i++) {
        const real *x = inp + (size_t)i * C, *g = dout + (size_t)i * C;
        real m = mean[i], s = rstd[i];
        real *d = dinp + (size_t)i * C;
        real gm = dot8(g, w, C) / C;                     // mean of g w
        real gx = lanes8(g, w, x, m, C) * s / C;         // mean of g w xhat
        for (int c = 0; c < C; c++) {
            real dx = s * (g[c] * w[c] - gm - (x[c] - m) * s * gx);
            d[c] = mode == ACCUMULATE ? d[c] + dx : dx;
        }
    }
    // Parameter gradients sum over rows: each thread owns a block of channels (see
    // COL_BLOCK), its sums in registers while the rows go by in order.
    #pragma omp parallel for
    for (int c0 = 0; c0 < C; c0 += COL_BLOCK) {
        int n = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
        real sw[COL_BLOCK], sb[COL_BLOCK];
        memcpy(sw, dw + c0, n * sizeof(real));
        memcpy(sb, db + c0, n * sizeof(real));
        for (int i = 0; i < N; i++) {
            const real *x = inp + (size_t)i * C + c0, *g = dout + (size_t)i * C + c0;
            for (int c = 0; c < n; c++) {
                sw[c] += g[c] * (x[c] - mean[i]) * rstd[i];
                sb[c] += g[c];
            }
        }
        memcpy(dw + c0, sw, n * sizeof(real));
        memcpy(db + c0, sb, n * sizeof(real));
    }
}

// ----------------------------------------------------------------------------
// Linear layer: out (N, OC) = inp (N, IC) . W^T + b, W (OC, IC), b (OC) or NULL.

void matmul_forward(real *out, const real *inp, const real *w, const real *b,
                    int N, int IC, int OC) {
    mm_nt(out, inp, w, N, OC, IC, IC, IC, OC, OVERWRITE);
    if (!b) return;
    #pragma omp parallel for
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OC; o++) out[(size_t)i * OC + o] += b[o];
}

// dinp (+)= dout . W (as mode says);  dw += dout^T . inp;  db += column sums of dout.
// dinp, db may be NULL.
void matmul_backward(real *dinp, real *dw, real *db, const real *dout,
                     const real *inp, const real *w, int N, int IC, int OC, WriteMode mode) {
    if (dinp) mm_nn(dinp, dout, w, N, IC, OC, OC, IC, IC, mode);
    mm_tn(dw, dout, inp, OC, IC, N, OC, IC, IC, ACCUMULATE);
    if (!db) return;
    #pragma omp parallel for   // see COL_BLOCK
    for (int o0 = 0; o0 < OC; o0 += COL_BLOCK) {
        int n = OC - o0 < COL_BLOCK ? OC - o0 : COL_BLOCK;
        real sb[COL_BLOCK];
        memcpy(sb, db + o0, n * sizeof(real));
        for (int i = 0; i < N; i++) {
            const real *g = dout + (size_t)i * OC + o0;
            for (int o = 0; o < n; o++) sb[o] += g[o];
        }
        memcpy(db + o0, sb, n * sizeof(real));
    }
}

// ----------------------------------------------------------------------------
// GELU, tanh approximation: 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi).
// With u = k (x + 0.044715 x^3) and tanh' = 1 - tanh^2, the product rule gives
//   gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du,   du = k (1 + 3 * 0.044715 x^2).

#define GELU_K 0.7978845608028654

static inline real gelu(real x) {
    return (real)0.5 * x * ((real)1 + tanh_r((real)GELU_K * (x + (real)0.044715 * x * x * x)));
}

void gelu_forward(real *out, const real *inp, size_t N) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = gelu(inp[i]);
}

void gelu_backward(real *dinp, const real *inp, const real *dout, size_t N, WriteMode mode) {
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) {
        real x = inp[i];
        real u = (real)GELU_K * (x + (real)0.044715 * x * x * x);
        real th = tanh_r(u);
        real du = (real)GELU_K * ((real)1 + (real)(3 * 0.044715) * x * x);
        real grad = (real)0.5 * ((real)1 + th) + (real)0.5 * x * ((real)1 - th * th) * du;
        dinp[i] = mode == ACCUMULATE ? dinp[i] + grad * dout[i] : grad * dout[i];
    }
}

// ----------------------------------------------------------------------------
// Dropout: x * keep / (1 - p), keep ~ Bernoulli(1 - p). The mask of element i is a hash
// of (base, i), so it is recomputed in backward instead of stored, and is the same for
// any number of threads. Dropout is linear and self-adjoint: one function serves both
// directions (out may alias inp).

static inline int dropout_keep(uint64_t base, size_t i, uint32_t threshold) {
    return (uint32_t)(hash64(base + i) >> 40) >= threshold;   // 24 random bits
}
static inline uint32_t dropout_threshold(float p) { return (uint32_t)(p * 16777216.0f); }

void dropout_apply(real *out, const real *inp, size_t N, float p, uint64_t base) {
    if (p <= 0.0f) { if (out != inp) memcpy(out, inp, N * sizeof(real)); return; }
    uint32_t th = dropout_threshold(p);
    real scale = (real)(1.0 / (1.0 - p));
    #pragma omp parallel for
    for (size_t i = 0; i < N; i++) out[i] = dropout_keep(base, i, th) ? inp[i] * scale : 0;
}

// ----------------------------------------------------------------------------
// Multi-head attention. For batch b, head h, query t, key s:
//   score = q . k / sqrt(hs), masked to -inf where key s is padding or (causal) s > t;
//   att = softmax over s (saved, before dropout); out = sum_s dropout(att)[s] v[s].
// q (B, Tq, .) with row stride q_stride; k, v (B, Tk, .) with row stride kv_stride; head h
// occupies columns h*hs .. h*hs+hs-1 of each. out (B, Tq, C); att (B, NH, Tq, Tk);
// key_valid (B, Tk): 1 for a real token, 0 for padding. (Decoding reads keys from a
// cache: see kv_rows and kv_batch in model.h.) Each (b, h) is one thread's: it owns its
// slices of out and att (and in backward of dq, dk, dv, datt).
//
// Two versions compute the same math: the plain loops (attention_forward_ref,
// attention_backward_ref: one query row at a time, one dot product per score), the
// oracle of the tests; and the fast ones (attention_forward, attention_backward), which
// turn each head into small matrix products (head_mm) and differ only in the rounding.

// Where one (b, h) reads and writes: head h's columns of q, k, v (and of out, dq, dk, dv,
// which share those strides), keys from entry kv0 / kv_rows of the key arrays, and the
// (Tq, Tk) block of att (and datt) at ah.
typedef struct { size_t q, kv, out, att, kv0; } HeadAt;
static HeadAt head_at(AttnShape a, int b, int h) {
    int hs = a.C / a.NH;
    size_t kv_rows = a.kv_rows ? (size_t)a.kv_rows : (size_t)a.Tk;
    size_t kv0 = (size_t)(a.kv_batch ? a.kv_batch[b] : b) * kv_rows;   // key 0 of entry b
    return (HeadAt){ .q = (size_t)b * a.Tq * a.q_stride + h * hs, .kv = kv0 * a.kv_stride + h * hs,
                     .out = (size_t)b * a.Tq * a.C + h * hs,
                     .att = ((size_t)b * a.NH + h) * a.Tq * a.Tk, .kv0 = kv0 };
}
// The number of keys query t may see: all Tk, or (causal) the first t + 1.
static int keys_seen(AttnShape a, int t) { return a.causal ? (t + 1 < a.Tk ? t + 1 : a.Tk) : a.Tk; }
// Dropout's factor for the attention probability at index idx of att: 0 or 1 / (1 - p),
// the same hashed mask as dropout_apply (1 without dropout).
static real attn_keep(AttnShape a, size_t idx) {
    if (a.p <= 0) return 1;
    return dropout_keep(a.base, idx, dropout_threshold(a.p)) ? (real)(1.0 / (1.0 - a.p)) : 0;
}

// Softmax of one row, in place: row[s] holds q . k_s for the keys s < smax with valid[s]
// = 1 (the others are read as -inf, whatever they hold), and gets the probabilities.
// A row with no key to see gets zeros.
static void softmax_row(real *row, const unsigned char *valid, int smax, int Tk, real scale) {
    real mx = -INFINITY;
    for (int s = 0; s < Tk; s++) {
        row[s] = s < smax && valid[s] ? row[s] * scale : -INFINITY;
        if (row[s] > mx) mx = row[s];
    }
    real sum = 0;
    for (int s = 0; s < Tk; s++) {
        row[s] = (mx == -INFINITY || row[s] == -INFINITY) ? 0 : exp_r(row[s] - mx);
        sum += row[s];
    }
    real inv = sum > 0 ? 1 / sum : 0;
    for (int s = 0; s < Tk; s++) row[s] *= inv;
}

static void head_forward_ref(real *out, real *att, const real *q, const real *k, const real *v,
                             const unsigned char *key_valid, AttnShape a, int b, int h) {
    int hs = a.C / a.NH;
    HeadAt at = head_at(a, b, h);
    for (int t = 0; t < a.Tq; t++) {
        const real *qt = q + at.q + (size_t)t * a.q_stride;
        real *row = att + at.att + (size_t)t * a.Tk;
        int smax = keys_seen(a, t);
        for (int s = 0; s < smax; s++)
            if (key_valid[at.kv0 + s]) row[s] = dot8(qt, k + at.kv + (size_t)s * a.kv_stride, hs);
        softmax_row(row, key_valid + at.kv0, smax, a.Tk, (real)(1.0 / sqrt((double)hs)));
        real *ot = out + at.out + (size_t)t * a.C;
        for (int i = 0; i < hs; i++) ot[i] = 0;
        for (int s = 0; s < smax; s++) {
            if (row[s] == 0) continue;
            real p = row[s] * attn_keep(a, at.att + (size_t)t * a.Tk + s);
            const real *vs = v + at.kv + (size_t)s * a.kv_stride;
            for (int i = 0; i < hs; i++) ot[i] += p * vs[i];
        }
    }
}

void attention_forward_ref(real *out, real *att, const real *q, const real *k, const real *v,
                           const unsigned char *key_valid, AttnShape a) {
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < a.B; b++)
        for (int h = 0; h < a.NH; h++) head_forward_ref(out, att, q, k, v, key_valid, a, b, h);
}

// Backward, for one query row t (code names: P = att row, D = dropout(P), dP = drow).
// Forward was score_s = q . k_s / sqrt(hs), P = softmax_s(score), out = sum_s D_s v_s, so
//   dv_s += D_s dout,   dD_s = dout . v_s,   dP_s = dropout(dD)_s (the same mask: linear),
// and softmax's Jacobian dP_r/dscore_s = P_r (delta_rs - P_s) gives
//   dscore_s = sum_r dP_r P_r (delta_rs - P_s) = P_s (dP_s - sum_r P_r dP_r)   (pdp = the sum),
//   dq += sum_s dscore_s k_s / sqrt(hs),   dk_s += dscore_s q / sqrt(hs)   (ds = dscore_s / sqrt(hs)).
// dq, dk, dv are written as mode says; datt (B, NH, Tq, Tk) is scratch. (Training only:
// kv_rows and kv_batch are 0 and NULL here.)
static void head_backward_ref(real *dq, real *dk, real *dv, real *datt, const real *dout,
                              const real *q, const real *k, const real *v, const real *att,
                              AttnShape a, WriteMode mode, int b, int h) {
    int hs = a.C / a.NH;
    real scale = (real)(1.0 / sqrt((double)hs));
    HeadAt at = head_at(a, b, h);
    if (mode == OVERWRITE) {   // this (b, h)'s columns of dq, dk, dv
        for (int t = 0; t < a.Tq; t++) memset(dq + at.q + (size_t)t * a.q_stride, 0, hs * sizeof(real));
        for (int s = 0; s < a.Tk; s++) {
            memset(dk + at.kv + (size_t)s * a.kv_stride, 0, hs * sizeof(real));
            memset(dv + at.kv + (size_t)s * a.kv_stride, 0, hs * sizeof(real));
        }
    }
    for (int t = 0; t < a.Tq; t++) {
        size_t rowidx = at.att + (size_t)t * a.Tk;
        const real *prow = att + rowidx;
        real *drow = datt + rowidx;
        const real *dot_ = dout + at.out + (size_t)t * a.C;
        // dP[s] = dropout(dout . v[s]); dv[s] += dropout(P[s]) * dout
        real pdp = 0;
        for (int s = 0; s < a.Tk; s++) {
            drow[s] = 0;
            if (prow[s] == 0) continue;
            real m = attn_keep(a, rowidx + s);
            if (m == 0) continue;
            const real *vs = v + at.kv + (size_t)s * a.kv_stride;
            real *dvs = dv + at.kv + (size_t)s * a.kv_stride;
            real pm = prow[s] * m;
            for (int i = 0; i < hs; i++) dvs[i] += pm * dot_[i];
            drow[s] = dot8(dot_, vs, hs) * m;
            pdp += prow[s] * drow[s];
        }
        // softmax backward, then the two products of the scores
        const real *qt = q + at.q + (size_t)t * a.q_stride;
        real *dqt = dq + at.q + (size_t)t * a.q_stride;
        for (int s = 0; s < a.Tk; s++) {
            if (prow[s] == 0) continue;
            real ds = prow[s] * (drow[s] - pdp) * scale;
            const real *ks = k + at.kv + (size_t)s * a.kv_stride;
            real *dks = dk + at.kv + (size_t)s * a.kv_stride;
            for (int i = 0; i < hs; i++) { dqt[i] += ds * ks[i]; dks[i] += ds * qt[i]; }
        }
    }
}

void attention_backward_ref(real *dq, real *dk, real *dv, real *datt, const real *dout,
                            const real *q, const real *k, const real *v, const real *att,
                            AttnShape a, WriteMode mode) {
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < a.B; b++)
        for (int h = 0; h < a.NH; h++)
            head_backward_ref(dq, dk, dv, datt, dout, q, k, v, att, a, mode, b, h);
}

// The fast version. Per head, with Q (Tq, hs), K and V (Tk, hs), P = att (Tq, Tk),
// D = dropout(P), O = out (Tq, hs):
//   forward   P = softmax(Q K^T / sqrt(hs)),  O = D V;
//   backward  dV = D^T dO,  dD = dO V^T,  dS = P * (dP - rowsum(P * dP)) / sqrt(hs)
//             (the row rule above, dP = dropout(dD)),  dQ = dS K,  dK = dS^T Q.
// Every product is head_mm's C (+)= A B with B's rows contiguous: K and V are transposed
// into a per-thread buffer for the two that need K^T and V^T.

// C[M,N] (+)= A B, with A(m, j) = a[m*am + j*ak] (a row-major A or a transposed one) and B
// row-major. A tile of HEAD_TM rows and HEAD_TN columns of C at a time: its sums stay in
// vector registers while j runs over the K terms in order (a fixed order: the result
// does not depend on the threads), each row of B read once for the tile's rows. Zero
// terms (masked or dropped probabilities) are skipped: adding a zero product changes no
// sum. (Measured at 32 x 32 x 32 on AVX2 and AVX-512: 4 rows beat 2 and 1, and these
// loops beat matmul.c's packed product, whose packing costs more than such a product.)
#define HEAD_TM 4
#define HEAD_TN 32
static inline void head_mm_tile(real *acc, const real *arow, int am, int ak, const real *b, int ldb,
                                int K, int R, int w) {   // acc (R, HEAD_TN): rows 0..R-1, w columns
    for (int r = 0; r < R; r++) for (int n = 0; n < w; n++) acc[r * HEAD_TN + n] = 0;
    for (int j = 0; j < K; j++) {
        const real *bj = b + (size_t)j * ldb;
        for (int r = 0; r < R; r++) {
            real x = arow[(size_t)r * am + (size_t)j * ak];
            if (x == 0) continue;
            for (int n = 0; n < w; n++) acc[r * HEAD_TN + n] += x * bj[n];
        }
    }
}
static void head_mm(real *c, int ldc, const real *a, int am, int ak, const real *b, int ldb,
                    int M, int N, int K, WriteMode mode) {
    for (int m = 0; m < M; ) {
        int R = M - m < HEAD_TM ? 1 : HEAD_TM;   // full tiles, then the last rows one by one
        const real *arow = a + (size_t)m * am;
        for (int n0 = 0; n0 < N; n0 += HEAD_TN) {
            real acc[HEAD_TM * HEAD_TN];
            int w = N - n0 < HEAD_TN ? N - n0 : HEAD_TN;
            if (R == HEAD_TM && w == HEAD_TN)   // constant sizes: the compiler unrolls them
                head_mm_tile(acc, arow, am, ak, b + n0, ldb, K, HEAD_TM, HEAD_TN);
            else
                head_mm_tile(acc, arow, am, ak, b + n0, ldb, K, R, w);
            for (int r = 0; r < R; r++) {
                real *crow = c + (size_t)(m + r) * ldc + n0;
                for (int n = 0; n < w; n++)
                    crow[n] = mode == ACCUMULATE ? crow[n] + acc[r * HEAD_TN + n] : acc[r * HEAD_TN + n];
            }
        }
        m += R;
    }
}

// xt (hs, Tk) = x^T for one head's rows x (Tk, hs) of stride ld.
static void head_transpose(real *xt, const real *x, int Tk, int hs, int ld) {
    for (int s = 0; s < Tk; s++)
        for (int i = 0; i < hs; i++) xt[(size_t)i * Tk + s] = x[(size_t)s * ld + i];
}

// D = dropout(P) for one head: P itself without dropout, else a copy in d (Tq, Tk).
static const real *head_dropout(real *d, const real *p, AttnShape a, size_t at) {
    if (a.p <= 0) return p;
    for (size_t i = 0; i < (size_t)a.Tq * a.Tk; i++) d[i] = p[i] * attn_keep(a, at + i);
    return d;
}

// A per-thread buffer of n reals for the transposes and D, grown on demand and kept
// (NULL if it cannot be allocated: that head then takes the plain loops).
static _Thread_local real *head_ws;
static _Thread_local size_t head_ws_cap;
static real *head_workspace(size_t n) {
    if (n > head_ws_cap) {
        free(head_ws);
        head_ws = malloc(n * sizeof(real));
        head_ws_cap = head_ws ? n : 0;
    }
    return head_ws;
}
// The `make REF=1` build sends attention to the plain loops, as it does matrix products.
#ifdef KF_REF
#define ATTN_REF 1
#else
#define ATTN_REF 0
#endif

static void head_forward(real *out, real *att, const real *q, const real *k, const real *v,
                         const unsigned char *key_valid, AttnShape a, int b, int h, real *ws) {
    int hs = a.C / a.NH;
    HeadAt at = head_at(a, b, h);
    real *kt = ws, *d = ws + (size_t)hs * a.Tk;   // kt (hs, Tk); d (Tq, Tk)
    real *p = att + at.att;
    head_transpose(kt, k + at.kv, a.Tk, hs, a.kv_stride);
    head_mm(p, a.Tk, q + at.q, a.q_stride, 1, kt, a.Tk, a.Tq, a.Tk, hs, OVERWRITE);   // Q K^T
    for (int t = 0; t < a.Tq; t++)
        softmax_row(p + (size_t)t * a.Tk, key_valid + at.kv0, keys_seen(a, t), a.Tk,
                    (real)(1.0 / sqrt((double)hs)));
    head_mm(out + at.out, a.C, head_dropout(d, p, a, at.att), a.Tk, 1, v + at.kv, a.kv_stride,
            a.Tq, hs, a.Tk, OVERWRITE);   // O = D V
}

void attention_forward(real *out, real *att, const real *q, const real *k, const real *v,
                       const unsigned char *key_valid, AttnShape a) {
    size_t n = (size_t)(a.C / a.NH + a.Tq) * a.Tk;
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < a.B; b++)
        for (int h = 0; h < a.NH; h++) {
            real *ws = ATTN_REF ? NULL : head_workspace(n);
            if (ws) head_forward(out, att, q, k, v, key_valid, a, b, h, ws);
            else head_forward_ref(out, att, q, k, v, key_valid, a, b, h);
        }
}

static void head_backward(real *dq, real *dk, real *dv, real *datt, const real *dout,
                          const real *q, const real *k, const real *v, const real *att,
                          AttnShape a, WriteMode mode, int b, int h, real *ws) {
    int hs = a.C / a.NH;
    real scale = (real)(1.0 / sqrt((double)hs));
    HeadAt at = head_at(a, b, h);
    real *vt = ws, *d = ws + (size_t)hs * a.Tk;   // vt (hs, Tk); d (Tq, Tk)
    const real *p = att + at.att, *dO = dout + at.out;
    real *ds = datt + at.att;
    head_mm(dv + at.kv, a.kv_stride, head_dropout(d, p, a, at.att), 1, a.Tk, dO, a.C,
            a.Tk, hs, a.Tq, mode);   // dV = D^T dO
    head_transpose(vt, v + at.kv, a.Tk, hs, a.kv_stride);
    head_mm(ds, a.Tk, dO, a.C, 1, vt, a.Tk, a.Tq, a.Tk, hs, OVERWRITE);   // dD = dO V^T
    for (int t = 0; t < a.Tq; t++) {   // dD -> dP -> dS, in place
        real *row = ds + (size_t)t * a.Tk;
        const real *prow = p + (size_t)t * a.Tk;
        real pdp = 0;
        for (int s = 0; s < a.Tk; s++) {
            row[s] = prow[s] == 0 ? 0 : row[s] * attn_keep(a, at.att + (size_t)t * a.Tk + s);
            pdp += prow[s] * row[s];
        }
        for (int s = 0; s < a.Tk; s++) row[s] = prow[s] * (row[s] - pdp) * scale;
    }
    head_mm(dq + at.q, a.q_stride, ds, a.Tk, 1, k + at.kv, a.kv_stride, a.Tq, hs, a.Tk, mode);   // dQ = dS K
    head_mm(dk + at.kv, a.kv_stride, ds, 1, a.Tk, q + at.q, a.q_stride, a.Tk, hs, a.Tq, mode);   // dK = dS^T Q
}

void attention_backward(real *dq, real *dk, real *dv, real *datt, const real *dout,
                        const real *q, const real *k, const real *v, const real *att,
                        AttnShape a, WriteMode mode) {
    size_t n = (size_t)(a.C / a.NH + a.Tq) * a.Tk;
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < a.B; b++)
        for (int h = 0; h < a.NH; h++) {
            real *ws = ATTN_REF ? NULL : head_workspace(n);
            if (ws) head_backward(dq, dk, dv, datt, dout, q, k, v, att, a, mode, b, h, ws);
            else head_backward_ref(dq, dk, dv, datt, dout, q, k, v, att, a, mode, b, h);
        }
}

// ----------------------------------------------------------------------------
// Softmax cross-entropy with label smoothing, fused with its backward (as llm.c does):
// the target distribution is y = (1 - eps) onehot(target) + eps / V, so
//   loss_i = -sum_v y_v log p_v   and   dlogits_i = (p - y) / n,
// n = number of non-pad targets. Forward turns logits into probabilities in place and
// returns the mean loss (crossentropy_mean); backward turns probabilities into dlogits
// in place. Both work row by row: model.c runs them on a chunk of rows at a time.

real crossentropy_forward(real *rowloss, real *logits, const int *targets, int N, int V,
                          float eps) {
    // rowloss (N); logits (N, V) -> probs (N, V); targets (N), TOK_PAD = ignored
    #pragma omp parallel for
    for (int i = 0; i < N; i++) {
        real *x = logits + (size_t)i * V;
        int y = targets[i];
        real xy = y == TOK_PAD ? 0 : x[y];   // the target's logit, before x turns into p
        real mx = x[0];
        for (int v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        double sumx = sum8(x, V);
        for (int v = 0; v < V; v++) x[v] = exp_r(x[v] - mx);
        double sum = sum8(x, V);
        real inv = (real)(1.0 / sum);
        for (int v = 0; v < V; v++) x[v] *= inv;
        if (y == TOK_PAD) { rowloss[i] = 0; continue; }
        double logz = mx + log(sum);          // log p_v = logit_v - logz
        double nll = logz - xy;
        double smooth = logz - sumx / V;      // -mean_v log p_v
        rowloss[i] = (real)((1.0 - eps) * nll + eps * smooth);
    }
    return crossentropy_mean(rowloss, targets, N);
}

real crossentropy_mean(const real *rowloss, const int *targets, int N) {
    double total = 0.0;
    int n = 0;
    for (int i = 0; i < N; i++) if (targets[i] != TOK_PAD) { total += rowloss[i]; n++; }
    return n ? (real)(total / n) : 0;
}

void crossentropy_backward(real *probs, const int *targets, int N, int V, float eps, int n) {
    real inv_n = n ? (real)1 / n : 0, off = (real)eps / V;
    #pragma omp parallel for
    for (int i = 0; i < N; i++) {
        real *p = probs + (size_t)i * V;
        if (targets[i] == TOK_PAD) { memset(p, 0, (size_t)V * sizeof(real)); continue; }
        for (int v = 0; v < V; v++) p[v] = (p[v] - off) * inv_n;
        p[targets[i]] -= (real)(1.0 - eps) * inv_n;
    }
}

// ----------------------------------------------------------------------------
// Config

void config_default(Config *c) {
    memset(c, 0, sizeof(*c));
    c->arch = ARCH_SEQ2SEQ;
    c->V = 8000; c->C = 256; c->NH = 8; c->F = 1024; c->Le = 3; c->Ld = 3;
    c->maxT = 128; c->tie = 1;
    snprintf(c->embed, sizeof(c->embed), "dense");
    c->dropout = 0.1f; c->label_smoothing = 0.1f;
}

int config_check(const Config *c, char *err) {
    #define BAD(...) do { errorf(err, __VA_ARGS__); return 1; } while (0)
    // Upper limits, above what fits in memory anyway: they keep every size product of
    // this file inside an int.
    static const struct { const char *flag; int max; } lim[] = {
        {"--d-model", 65536}, {"--heads", 65536}, {"--ffn", 1 << 20},
        {"--layers (encoder)", 1000}, {"--layers (decoder)", 1000}, {"--max-len", 100000},
        {"vocabulary size", 1000000},
    };
    int v[] = {c->C, c->NH, c->F, c->Le, c->Ld, c->maxT - 1, c->V};
    for (int i = 0; i < (int)(sizeof(v) / sizeof(v[0])); i++)
        if (v[i] > lim[i].max) BAD("%s %d is too large; use at most %d", lim[i].flag, v[i], lim[i].max);
    if (c->arch != ARCH_SEQ2SEQ && c->arch != ARCH_LM) BAD("unknown architecture %d; use seq2seq or lm", c->arch);
    if (c->V < 4) BAD("vocabulary size %d is too small; it must be at least 4", c->V);
    if (c->C < 1) BAD("--d-model %d must be positive", c->C);
    if (c->NH < 1) BAD("--heads %d must be positive", c->NH);
    if (c->C % c->NH) BAD("--heads %d does not divide --d-model %d; choose heads that divide d_model (e.g. %d)",
                          c->NH, c->C, c->C % 8 == 0 ? 8 : 1);
    if (c->F < 1) BAD("--ffn %d must be positive", c->F);
    if (c->Ld < 1) BAD("--layers (decoder) %d must be at least 1", c->Ld);
    if (c->arch == ARCH_SEQ2SEQ && c->Le < 1) BAD("--enc-layers %d must be at least 1 for seq2seq", c->Le);
    if (c->maxT < 2) BAD("--max-len %d must be at least 2", c->maxT);
    if (!(c->dropout >= 0 && c->dropout < 1)) BAD("--dropout %g must be in [0, 1)", c->dropout);
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1))
        BAD("--label-smoothing %g must be in [0, 1)", c->label_smoothing);
    Embed e;
    if (embed_parse(&e, c->embed, c->V, c->C, err)) return 1;
    #undef BAD
    return 0;
}

// ----------------------------------------------------------------------------
// Parameters: one buffer, carved into the tensors of the table below, in its order
// (which is the checkpoint's). The gradient buffer has the same layout.

enum { NO_DECAY = 0, DECAY = 1 };

typedef struct {
    real **param, **grad;   // the fields of m->params and m->grads this tensor fills
    const char *name;       // in model.safetensors
    int shape[3];           // (0: no such dimension)
    int decay;              // AdamW weight decay: weights only, not gains and biases
    InitKind init;
    int present;            // 0: not in this architecture
} TensorSpec;

// Lays out the embedding block (its tensors are embed_factor.c's), then every tensor of
// the table; allocates the parameter and gradient buffers and points Params at them.
static int layout_params(Model *m) {
    const Config *c = &m->cfg;
    int C = c->C, F = c->F, V = c->V, Le = c->Le, Ld = c->Ld;
    int s2s = c->arch == ARCH_SEQ2SEQ, untied = !c->tie;
    Params *p = &m->params, *g = &m->grads;
    const TensorSpec table[] = {
        // params           grads              name                         shape           decay     init           present
        {&p->outw,          &g->outw,          "output.weight",             {V, C},         DECAY,    INIT_OUTPUT,   untied},
        {&p->e_self.lnw,    &g->e_self.lnw,    "encoder.ln1.weight",        {Le, C},        NO_DECAY, INIT_ONE,      s2s},
        {&p->e_self.lnb,    &g->e_self.lnb,    "encoder.ln1.bias",          {Le, C},        NO_DECAY, INIT_ZERO,     s2s},
        {&p->e_self.qkvw,   &g->e_self.qkvw,   "encoder.attn.qkv.weight",   {Le, 3 * C, C}, DECAY,    INIT_NORMAL,   s2s},
        {&p->e_self.qkvb,   &g->e_self.qkvb,   "encoder.attn.qkv.bias",     {Le, 3 * C},    NO_DECAY, INIT_ZERO,     s2s},
        {&p->e_self.projw,  &g->e_self.projw,  "encoder.attn.proj.weight",  {Le, C, C},     DECAY,    INIT_RESIDUAL, s2s},
        {&p->e_self.projb,  &g->e_self.projb,  "encoder.attn.proj.bias",    {Le, C},        NO_DECAY, INIT_ZERO,     s2s},
        {&p->e_ffn.lnw,     &g->e_ffn.lnw,     "encoder.ln2.weight",        {Le, C},        NO_DECAY, INIT_ONE,      s2s},
        {&p->e_ffn.lnb,     &g->e_ffn.lnb,     "encoder.ln2.bias",          {Le, C},        NO_DECAY, INIT_ZERO,     s2s},
        {&p->e_ffn.fcw,     &g->e_ffn.fcw,     "encoder.ffn.fc1.weight",    {Le, F, C},     DECAY,    INIT_NORMAL,   s2s},
        {&p->e_ffn.fcb,     &g->e_ffn.fcb,     "encoder.ffn.fc1.bias",      {Le, F},        NO_DECAY, INIT_ZERO,     s2s},
        {&p->e_ffn.fc2w,    &g->e_ffn.fc2w,    "encoder.ffn.fc2.weight",    {Le, C, F},     DECAY,    INIT_RESIDUAL, s2s},
        {&p->e_ffn.fc2b,    &g->e_ffn.fc2b,    "encoder.ffn.fc2.bias",      {Le, C},        NO_DECAY, INIT_ZERO,     s2s},
        {&p->e_lnfw,        &g->e_lnfw,        "encoder.ln_final.weight",   {C},            NO_DECAY, INIT_ONE,      s2s},
        {&p->e_lnfb,        &g->e_lnfb,        "encoder.ln_final.bias",     {C},            NO_DECAY, INIT_ZERO,     s2s},
        {&p->d_self.lnw,    &g->d_self.lnw,    "decoder.ln1.weight",        {Ld, C},        NO_DECAY, INIT_ONE,      1},
        {&p->d_self.lnb,    &g->d_self.lnb,    "decoder.ln1.bias",          {Ld, C},        NO_DECAY, INIT_ZERO,     1},
        {&p->d_self.qkvw,   &g->d_self.qkvw,   "decoder.attn.qkv.weight",   {Ld, 3 * C, C}, DECAY,    INIT_NORMAL,   1},
        {&p->d_self.qkvb,   &g->d_self.qkvb,   "decoder.attn.qkv.bias",     {Ld, 3 * C},    NO_DECAY, INIT_ZERO,     1},
        {&p->d_self.projw,  &g->d_self.projw,  "decoder.attn.proj.weight",  {Ld, C, C},     DECAY,    INIT_RESIDUAL, 1},
        {&p->d_self.projb,  &g->d_self.projb,  "decoder.attn.proj.bias",    {Ld, C},        NO_DECAY, INIT_ZERO,     1},
        {&p->d_cross.lnw,   &g->d_cross.lnw,   "decoder.ln2.weight",        {Ld, C},        NO_DECAY, INIT_ONE,      s2s},
        {&p->d_cross.lnb,   &g->d_cross.lnb,   "decoder.ln2.bias",          {Ld, C},        NO_DECAY, INIT_ZERO,     s2s},
        {&p->d_cross.qw,    &g->d_cross.qw,    "decoder.cross.q.weight",    {Ld, C, C},     DECAY,    INIT_NORMAL,   s2s},
        {&p->d_cross.qb,    &g->d_cross.qb,    "decoder.cross.q.bias",      {Ld, C},        NO_DECAY, INIT_ZERO,     s2s},
        {&p->d_cross.kvw,   &g->d_cross.kvw,   "decoder.cross.kv.weight",   {Ld, 2 * C, C}, DECAY,    INIT_NORMAL,   s2s},
        {&p->d_cross.kvb,   &g->d_cross.kvb,   "decoder.cross.kv.bias",     {Ld, 2 * C},    NO_DECAY, INIT_ZERO,     s2s},
        {&p->d_cross.projw, &g->d_cross.projw, "decoder.cross.proj.weight", {Ld, C, C},     DECAY,    INIT_RESIDUAL, s2s},
        {&p->d_cross.projb, &g->d_cross.projb, "decoder.cross.proj.bias",   {Ld, C},        NO_DECAY, INIT_ZERO,     s2s},
        {&p->d_ffn.lnw,     &g->d_ffn.lnw,     "decoder.ln3.weight",        {Ld, C},        NO_DECAY, INIT_ONE,      1},
        {&p->d_ffn.lnb,     &g->d_ffn.lnb,     "decoder.ln3.bias",          {Ld, C},        NO_DECAY, INIT_ZERO,     1},
        {&p->d_ffn.fcw,     &g->d_ffn.fcw,     "decoder.ffn.fc1.weight",    {Ld, F, C},     DECAY,    INIT_NORMAL,   1},
        {&p->d_ffn.fcb,     &g->d_ffn.fcb,     "decoder.ffn.fc1.bias",      {Ld, F},        NO_DECAY, INIT_ZERO,     1},
        {&p->d_ffn.fc2w,    &g->d_ffn.fc2w,    "decoder.ffn.fc2.weight",    {Ld, C, F},     DECAY,    INIT_RESIDUAL, 1},
        {&p->d_ffn.fc2b,    &g->d_ffn.fc2b,    "decoder.ffn.fc2.bias",      {Ld, C},        NO_DECAY, INIT_ZERO,     1},
        {&p->d_lnfw,        &g->d_lnfw,        "decoder.ln_final.weight",   {C},            NO_DECAY, INIT_ONE,      1},
        {&p->d_lnfb,        &g->d_lnfb,        "decoder.ln_final.bias",     {C},            NO_DECAY, INIT_ZERO,     1},
    };
    int ntable = sizeof(table) / sizeof(table[0]);

    // sizes and offsets: the embedding's tensors, then the table's present ones
    m->ntensors = 0;
    for (int i = 0; i < embed_num_tensors(&m->emb); i++) {
        TensorInfo *t = &m->tensors[m->ntensors++];
        embed_tensor_info(&m->emb, i, t->name, sizeof(t->name), &t->ndim, t->shape,
                          &t->offset, &t->numel, &t->decay);
        t->lr_scale = (float)m->emb.lr_scale;
        t->init = INIT_EMBED;
    }
    size_t total = m->emb.num_params;
    for (int i = 0; i < ntable; i++) {
        const TensorSpec *e = &table[i];
        if (!e->present) continue;
        TensorInfo *t = &m->tensors[m->ntensors++];
        snprintf(t->name, sizeof(t->name), "%s", e->name);
        t->ndim = 0;
        t->numel = 1;
        memset(t->shape, 0, sizeof(t->shape));
        for (int d = 0; d < 3 && e->shape[d]; d++) {
            t->shape[t->ndim++] = e->shape[d];
            t->numel *= (size_t)e->shape[d];
        }
        t->offset = total;
        t->decay = e->decay;
        t->lr_scale = 1;
        t->init = e->init;
        total += t->numel;
    }
    m->num_params = total;

    // the buffers, and the named pointers into them
    m->param_mem = calloc(total, sizeof(real));
    m->grad_mem = calloc(total, sizeof(real));
    if (!m->param_mem || !m->grad_mem) return 1;
    memset(p, 0, sizeof(*p));
    memset(g, 0, sizeof(*g));
    p->embed = m->param_mem;
    g->embed = m->grad_mem;
    for (int i = 0, k = embed_num_tensors(&m->emb); i < ntable; i++) {
        if (!table[i].present) continue;
        *table[i].param = m->param_mem + m->tensors[k].offset;
        *table[i].grad = m->grad_mem + m->tensors[k].offset;
        k++;
    }
    return 0;
}

int model_build(Model *m, const Config *cfg, char *err) {
    memset(m, 0, sizeof(*m));
    if (config_check(cfg, err)) return 1;
    m->cfg = *cfg;
    if (embed_parse(&m->emb, cfg->embed, cfg->V, cfg->C, err)) return 1;
    m->num_embed_params = m->emb.num_params;
    int C = cfg->C, T = cfg->maxT;
    m->pos = malloc((size_t)T * C * sizeof(real));
    if (layout_params(m) || !m->pos) {
        errorf(err, "out of memory for %zu parameters; choose a smaller model", m->num_params);
        model_free(m);
        return 1;
    }
    // sinusoidal positions: pos[t, 2i] = sin(t / 10000^(2i/C)), pos[t, 2i+1] = cos(same)
    for (int t = 0; t < T; t++)
        for (int i = 0; i < C; i += 2) {
            double ang = t / pow(10000.0, (double)i / C);
            m->pos[(size_t)t * C + i] = (real)sin(ang);
            if (i + 1 < C) m->pos[(size_t)t * C + i + 1] = (real)cos(ang);
        }
    return 0;
}

void model_init(Model *m, uint64_t seed) {
    uint64_t rng = seed * 0x2545F4914F6CDD1DULL + 1;
    const Config *c = &m->cfg;
    double resid_std = 0.02 / sqrt(2.0 * (c->Le + c->Ld));   // GPT-2: keep the residual stream's variance flat
    memset(m->param_mem, 0, m->num_params * sizeof(real));
    embed_init(&m->emb, m->params.embed, &rng);
    for (int i = 0; i < m->ntensors; i++) {   // in buffer order: the random draws follow it
        const TensorInfo *t = &m->tensors[i];
        real *p = m->param_mem + t->offset;
        double std = 0;
        switch (t->init) {
        case INIT_EMBED: case INIT_ZERO: continue;   // embed_init above; the memset
        case INIT_ONE: for (size_t j = 0; j < t->numel; j++) p[j] = 1; continue;
        case INIT_NORMAL: std = 0.02; break;
        case INIT_RESIDUAL: std = resid_std; break;
        case INIT_OUTPUT: std = m->emb.init_std; break;
        }
        for (size_t j = 0; j < t->numel; j++) p[j] = (real)(std * rng_normal(&rng));
    }
}

// ----------------------------------------------------------------------------
// Activations: one buffer, carved for a batch shape (B, S, T) and grown when a larger
// batch arrives. Layer tensors are stacked: e_qkv is (Le, B*S, 3C).

struct Acts {
    real *mem; size_t cap;          // the buffer and its size in reals
    int *imem; size_t icap;         // token copies
    unsigned char *vmem; size_t vcap;
    int Bc, Sc, Tc;                 // the shape the buffer is carved for
    size_t nS, nT;                  // rows: Bc*Sc, Bc*Tc
    size_t aSS, aTT, aTS;           // attention sizes per layer: Bc*NH*Sc*Sc, ...
    int *src, *tgt_in, *tgt_out;    // (B, S), (B, T), (B, T)
    unsigned char *src_valid, *tgt_valid; // (B, S), (B, T): 1 = real token
    // encoder
    real *e_x;                      // (Le+1, BS, C) residual stream entering each layer
    real *e_ln1, *e_ln1m, *e_ln1r;  // (Le, BS, C), (Le, BS), (Le, BS)
    real *e_qkv;                    // (Le, BS, 3C)
    real *e_att;                    // (Le, B, NH, S, S) attention probabilities
    real *e_atty;                   // (Le, BS, C) attention output before projection
    real *e_xmid;                   // (Le, BS, C) residual after attention
    real *e_ln2, *e_ln2m, *e_ln2r;  // (Le, BS, C), (Le, BS), (Le, BS)
    real *e_fch, *e_fchg;           // (Le, BS, F) before and after GELU
    real *e_out, *e_lnfm, *e_lnfr;  // (BS, C), (BS), (BS) encoder output
    // decoder
    real *d_x;                      // (Ld+1, BT, C)
    real *d_ln1, *d_ln1m, *d_ln1r;  // (Ld, BT, C), (Ld, BT), (Ld, BT)
    real *d_qkv;                    // (Ld, BT, 3C)
    real *d_att;                    // (Ld, B, NH, T, T)
    real *d_atty;                   // (Ld, BT, C)
    real *d_x2;                     // (Ld, BT, C) after self-attention
    real *d_ln2, *d_ln2m, *d_ln2r;  // (Ld, BT, C), (Ld, BT), (Ld, BT)
    real *d_cq;                     // (Ld, BT, C)
    real *d_ckv;                    // (Ld, BS, 2C)
    real *d_catt;                   // (Ld, B, NH, T, S)
    real *d_catty;                  // (Ld, BT, C)
    real *d_x3;                     // (Ld, BT, C) after cross-attention
    real *d_ln3, *d_ln3m, *d_ln3r;  // (Ld, BT, C), (Ld, BT), (Ld, BT)
    real *d_fch, *d_fchg;           // (Ld, BT, F)
    real *d_out, *d_lnfm, *d_lnfr;  // (BT, C), (BT), (BT)
    real *logits;                   // (rows, V): logits, probabilities, then dlogits of
                                    // a chunk of rows (loss_forward); all BT rows for a
                                    // forward without targets, B for model_decode
    int dout_grad;                  // 1: the last forward left d_out's gradient in dln
    int rows_from_table;            // 1: the tokens' rows are gathered from the tied
                                    // factorized table W (see tokens_forward)
    real *rowloss;                  // (BT)
    real *table;                    // (V, C) factorized tied output table
    const real *W;                  // (V, C) the output projection the last forward used
    real *branch;                   // (R, C) a sublayer's output, before dropout and the
                                    // residual add; R = max(BS, BT)
    real *d_last;                   // (B, C) d_out at each row's last position (generation)
    // backward scratch, each the gradient of the activation it is named after
    real *dtable;                   // (V, C)
    real *dres;                     // (R, C) the residual stream
    real *denc;                     // (BS, C) the encoder output
    real *dln;                      // (R, C) a LayerNorm's output
    real *dbranch;                  // (R, C) a branch's output (dropout's mask applied)
    real *datty;                    // (R, C) an attention's output
    real *dqkv;                     // (R, 3C) self-attention qkv; cross-attention q (R, C)
    real *dkv;                      // (BS, 2C) cross-attention keys | values
    real *dfch, *dfchg;             // (R, F)
    real *datt;                     // (B, NH, max(S,T), max(S,T))
};

// Carves the buffer for (B, S, T) with logits of `rows` rows; reallocates only when it
// must grow.
static int acts_carve(Model *m, int B, int S, int T, int rows) {
    const Config *c = &m->cfg;
    Acts *a = m->acts;
    if (!a) a = m->acts = calloc(1, sizeof(Acts));
    if (!a) return 1;
    size_t C = c->C, F = c->F, V = c->V, NH = c->NH, Le = c->Le, Ld = c->Ld;
    int enc = c->arch == ARCH_SEQ2SEQ;
    size_t nS = enc ? (size_t)B * S : 0, nT = (size_t)B * T, R = nS > nT ? nS : nT;
    size_t TS = (size_t)(S > T ? S : T);
    size_t aSS = B * NH * (size_t)S * S, aTT = B * NH * (size_t)T * T, aTS = B * NH * (size_t)T * S;
    int fact_tied = c->tie && m->emb.kind != EMBED_DENSE;
    struct { real **p; size_t n; } list[] = {
        {&a->e_x, (Le + 1) * nS * C}, {&a->e_ln1, Le * nS * C}, {&a->e_ln1m, Le * nS},
        {&a->e_ln1r, Le * nS}, {&a->e_qkv, Le * nS * 3 * C}, {&a->e_att, Le * aSS},
        {&a->e_atty, Le * nS * C}, {&a->e_xmid, Le * nS * C}, {&a->e_ln2, Le * nS * C},
        {&a->e_ln2m, Le * nS}, {&a->e_ln2r, Le * nS}, {&a->e_fch, Le * nS * F},
        {&a->e_fchg, Le * nS * F}, {&a->e_out, nS * C}, {&a->e_lnfm, nS}, {&a->e_lnfr, nS},
        {&a->d_x, (Ld + 1) * nT * C}, {&a->d_ln1, Ld * nT * C}, {&a->d_ln1m, Ld * nT},
        {&a->d_ln1r, Ld * nT}, {&a->d_qkv, Ld * nT * 3 * C}, {&a->d_att, Ld * aTT},
        {&a->d_atty, Ld * nT * C}, {&a->d_x2, Ld * nT * C},
        {&a->d_ln2, enc * Ld * nT * C}, {&a->d_ln2m, enc * Ld * nT}, {&a->d_ln2r, enc * Ld * nT},
        {&a->d_cq, enc * Ld * nT * C}, {&a->d_ckv, Ld * nS * 2 * C}, {&a->d_catt, enc * Ld * aTS},
        {&a->d_catty, enc * Ld * nT * C}, {&a->d_x3, enc * Ld * nT * C},
        {&a->d_ln3, Ld * nT * C}, {&a->d_ln3m, Ld * nT}, {&a->d_ln3r, Ld * nT},
        {&a->d_fch, Ld * nT * F}, {&a->d_fchg, Ld * nT * F}, {&a->d_out, nT * C},
        {&a->d_lnfm, nT}, {&a->d_lnfr, nT}, {&a->logits, (size_t)rows * V}, {&a->rowloss, nT},
        {&a->table, fact_tied * V * C}, {&a->branch, R * C}, {&a->d_last, B * C},
        {&a->dtable, fact_tied * V * C}, {&a->dres, R * C}, {&a->denc, nS * C},
        {&a->dln, R * C}, {&a->dbranch, R * C}, {&a->datty, R * C}, {&a->dqkv, R * 3 * C},
        {&a->dkv, nS * 2 * C},
        {&a->dfch, R * F}, {&a->dfchg, R * F}, {&a->datt, B * NH * TS * TS},
    };
    int n = sizeof(list) / sizeof(list[0]);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += list[i].n;
    if (total > a->cap) {
        free(a->mem);
        a->mem = malloc(total * sizeof(real));
        a->cap = a->mem ? total : 0;
        if (!a->mem) return 1;
    }
    real *p = a->mem;
    for (int i = 0; i < n; i++) { *list[i].p = list[i].n ? p : NULL; p += list[i].n; }
    size_t ni = 2 * nT + nS, nv = nT + nS;
    if (ni > a->icap) { free(a->imem); a->imem = malloc(ni * sizeof(int)); a->icap = a->imem ? ni : 0; }
    if (nv > a->vcap) { free(a->vmem); a->vmem = malloc(nv); a->vcap = a->vmem ? nv : 0; }
    if (!a->imem || !a->vmem) return 1;
    a->tgt_in = a->imem; a->tgt_out = a->imem + nT; a->src = a->imem + 2 * nT;
    a->tgt_valid = a->vmem; a->src_valid = a->vmem + nT;
    a->Bc = B; a->Sc = S; a->Tc = T; a->nS = nS; a->nT = nT;
    a->aSS = aSS; a->aTT = aTT; a->aTS = aTS;
    return 0;
}

static void decoder_free(struct Decoder *d);

static int alloc_slots(Model *m) {
    if (!m->emb_slot) m->emb_slot = malloc(sizeof(int) * (size_t)m->cfg.V);
    if (!m->emb_token) m->emb_token = malloc(sizeof(int) * (size_t)m->cfg.V);
    return !m->emb_slot || !m->emb_token;
}

int model_set_token_counts(Model *m, const double *counts) {
    if (alloc_slots(m)) return 1;
    embed_set_order(&m->emb, m->emb_slot, m->emb_token, counts);
    return 0;
}

int model_use_slots(Model *m, const int *slot) {
    if (alloc_slots(m)) return 1;
    memcpy(m->emb_slot, slot, sizeof(int) * (size_t)m->cfg.V);
    return embed_use_slots(&m->emb, m->emb_slot, m->emb_token);
}

void model_free(Model *m) {
    free(m->emb_slot); free(m->emb_token);
    decoder_free(m->dec);
    if (m->acts) { free(m->acts->mem); free(m->acts->imem); free(m->acts->vmem); free(m->acts); }
    free(m->param_mem); free(m->grad_mem); free(m->adam_m); free(m->adam_v); free(m->pos);
    memset(m, 0, sizeof(*m));
}

// ----------------------------------------------------------------------------
// Sublayers. Each is pre-LN: x_out = x + dropout(branch(LayerNorm(x))). A view holds
// the pointers of one sublayer of one layer: its weights, their gradients, and the
// activations saved for backward. Backward reads the gradient of x_out from a->dres and
// leaves the gradient of x there.

// Layer l of a stack of layers of n reals each (NULL stays NULL: an unused buffer).
static real *layer_slice(real *p, int l, size_t n) { return p ? p + (size_t)l * n : NULL; }

// One layer's weights (or gradients) out of the stacked tensors of Params.
static SelfAttnParams self_attn_layer(const SelfAttnParams *s, int l, size_t C) {
    return (SelfAttnParams){ .lnw = s->lnw + l * C, .lnb = s->lnb + l * C,
        .qkvw = s->qkvw + l * 3 * C * C, .qkvb = s->qkvb + l * 3 * C,
        .projw = s->projw + l * C * C, .projb = s->projb + l * C };
}
static CrossAttnParams cross_attn_layer(const CrossAttnParams *s, int l, size_t C) {
    return (CrossAttnParams){ .lnw = s->lnw + l * C, .lnb = s->lnb + l * C,
        .qw = s->qw + l * C * C, .qb = s->qb + l * C,
        .kvw = s->kvw + l * 2 * C * C, .kvb = s->kvb + l * 2 * C,
        .projw = s->projw + l * C * C, .projb = s->projb + l * C };
}
static FFNParams ffn_layer(const FFNParams *s, int l, size_t C, size_t F) {
    return (FFNParams){ .lnw = s->lnw + l * C, .lnb = s->lnb + l * C,
        .fcw = s->fcw + l * F * C, .fcb = s->fcb + l * F,
        .fc2w = s->fc2w + l * C * F, .fc2b = s->fc2b + l * C };
}

// Each dropout has its own site: (encoder 0 / decoder 1, layer, slot); a sublayer uses
// slot k for its attention probabilities and k + 1 for its output.
static int drop_site(int stack, int l, int slot) { return (stack << 24) | (l << 4) | slot; }
// A site's masks are keyed by an element's index in the whole batch: row0 * (n / B) plus
// its index here (n: the site's elements in this batch of B rows), so that a shard of
// rows (data-parallel training, dist.h) draws the masks its rows get in the whole batch.
static uint64_t drop_base(const Model *m, int site, size_t n) {
    size_t per_row = m->B > 0 ? n / (size_t)m->B : 0;
    return hash64(m->dropout_seed ^ hash64(m->dropout_step)) + hash64((uint64_t)site << 32) +
           (uint64_t)m->row0 * per_row;
}
static float drop_p(const Model *m) { return m->training ? m->cfg.dropout : 0.0f; }

// The end of a sublayer in one pass over (N, C): xout = x + dropout(y + b), y the
// product of its last linear without the bias b (C) (p = 0: no dropout). The same
// operations in the same order as a bias pass, dropout_apply and an add pass, so the
// same result, with those passes' reads and writes of (N, C) saved.
static void residual_out(real *xout, const real *x, const real *y, const real *b, int N, int C,
                         float p, uint64_t base) {
    uint32_t th = dropout_threshold(p);
    real scale = (real)(1.0 / (1.0 - p));
    #pragma omp parallel for
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            size_t k = (size_t)i * C + c;
            real v = y[k] + b[c];
            if (p > 0) v = dropout_keep(base, k, th) ? v * scale : 0;
            xout[k] = x[k] + v;
        }
}

// fc1's bias and GELU in one pass over (N, F): h += b, then hg = gelu(h) (h holds the
// product without the bias b (F), and keeps the pre-activation for backward).
static void bias_gelu_forward(real *hg, real *h, const real *b, int N, int F) {
    #pragma omp parallel for
    for (int i = 0; i < N; i++)
        for (int f = 0; f < F; f++) {
            size_t k = (size_t)i * F + f;
            h[k] += b[f];
            hg[k] = gelu(h[k]);
        }
}
static void zero(real *p, size_t n) { memset(p, 0, n * sizeof(real)); }

// N rows (B sentences of T positions) of one layer.
typedef struct {       // self-attention: branch = proj(attention(qkv(ln)))
    SelfAttnParams w, dw;         // this layer's weights and their gradients
    real *ln, *lnm, *lnr;         // (N, C), (N), (N) LayerNorm output, mean, 1/std
    real *qkv;                    // (N, 3C) queries | keys | values
    real *att;                    // (B, NH, T, T) attention probabilities
    real *atty;                   // (N, C) attention output, before the projection
    const unsigned char *valid;   // (B, T) key mask
    int causal, site;
} SelfAttn;

typedef struct {       // cross-attention: queries from ln(x), keys and values from the encoder
    CrossAttnParams w, dw;
    real *ln, *lnm, *lnr;         // (N, C), (N), (N)
    real *q;                      // (N, C)
    real *kv;                     // (B*S, 2C) keys | values of the encoder output
    real *att;                    // (B, NH, T, S)
    real *atty;                   // (N, C)
    int site;
} CrossAttn;

typedef struct {       // feed-forward: branch = fc2(gelu(fc1(ln)))
    FFNParams w, dw;
    real *ln, *lnm, *lnr;         // (N, C), (N), (N)
    real *fch, *fchg;             // (N, F) before and after GELU
    real *branch;                 // (N, C) the branch's output
    int site;
} FFN;

static SelfAttn enc_self(const Model *m, int l) {
    const Acts *a = m->acts;
    size_t C = m->cfg.C, nS = a->nS;
    return (SelfAttn){ .w = self_attn_layer(&m->params.e_self, l, C),
        .dw = self_attn_layer(&m->grads.e_self, l, C),
        .ln = layer_slice(a->e_ln1, l, nS * C), .lnm = layer_slice(a->e_ln1m, l, nS),
        .lnr = layer_slice(a->e_ln1r, l, nS), .qkv = layer_slice(a->e_qkv, l, nS * 3 * C),
        .att = layer_slice(a->e_att, l, a->aSS), .atty = layer_slice(a->e_atty, l, nS * C),
        .valid = a->src_valid, .causal = 0, .site = drop_site(0, l, 0) };
}
static FFN enc_ffn(const Model *m, int l) {
    const Acts *a = m->acts;
    size_t C = m->cfg.C, F = m->cfg.F, nS = a->nS;
    return (FFN){ .w = ffn_layer(&m->params.e_ffn, l, C, F),
        .dw = ffn_layer(&m->grads.e_ffn, l, C, F),
        .ln = layer_slice(a->e_ln2, l, nS * C), .lnm = layer_slice(a->e_ln2m, l, nS),
        .lnr = layer_slice(a->e_ln2r, l, nS), .fch = layer_slice(a->e_fch, l, nS * F),
        .fchg = layer_slice(a->e_fchg, l, nS * F), .branch = a->branch,
        .site = drop_site(0, l, 2) };
}
static SelfAttn dec_self(const Model *m, int l) {
    const Acts *a = m->acts;
    size_t C = m->cfg.C, nT = a->nT;
    return (SelfAttn){ .w = self_attn_layer(&m->params.d_self, l, C),
        .dw = self_attn_layer(&m->grads.d_self, l, C),
        .ln = layer_slice(a->d_ln1, l, nT * C), .lnm = layer_slice(a->d_ln1m, l, nT),
        .lnr = layer_slice(a->d_ln1r, l, nT), .qkv = layer_slice(a->d_qkv, l, nT * 3 * C),
        .att = layer_slice(a->d_att, l, a->aTT), .atty = layer_slice(a->d_atty, l, nT * C),
        .valid = a->tgt_valid, .causal = 1, .site = drop_site(1, l, 0) };
}
static CrossAttn dec_cross(const Model *m, int l) {
    const Acts *a = m->acts;
    size_t C = m->cfg.C, nT = a->nT, nS = a->nS;
    return (CrossAttn){ .w = cross_attn_layer(&m->params.d_cross, l, C),
        .dw = cross_attn_layer(&m->grads.d_cross, l, C),
        .ln = layer_slice(a->d_ln2, l, nT * C), .lnm = layer_slice(a->d_ln2m, l, nT),
        .lnr = layer_slice(a->d_ln2r, l, nT), .q = layer_slice(a->d_cq, l, nT * C),
        .kv = layer_slice(a->d_ckv, l, nS * 2 * C), .att = layer_slice(a->d_catt, l, a->aTS),
        .atty = layer_slice(a->d_catty, l, nT * C), .site = drop_site(1, l, 2) };
}
static FFN dec_ffn(const Model *m, int l) {
    const Acts *a = m->acts;
    size_t C = m->cfg.C, F = m->cfg.F, nT = a->nT;
    return (FFN){ .w = ffn_layer(&m->params.d_ffn, l, C, F),
        .dw = ffn_layer(&m->grads.d_ffn, l, C, F),
        .ln = layer_slice(a->d_ln3, l, nT * C), .lnm = layer_slice(a->d_ln3m, l, nT),
        .lnr = layer_slice(a->d_ln3r, l, nT), .fch = layer_slice(a->d_fch, l, nT * F),
        .fchg = layer_slice(a->d_fchg, l, nT * F), .branch = a->branch,
        .site = drop_site(1, l, 4) };
}

// Adds a branch's output y + b (y (N, C) without the bias) to the residual stream, with
// dropout.
static void branch_out_forward(Model *m, real *xout, const real *x, const real *y, const real *b,
                               int site, int N) {
    int C = m->cfg.C;
    residual_out(xout, x, y, b, N, C, drop_p(m), drop_base(m, site, (size_t)N * C));
}

// The gradient of a branch's output, from the residual stream's: dropout's mask applied
// to a->dres (into a->dbranch), or a->dres itself when dropout is off.
static const real *branch_out_backward(Model *m, int site, size_t n) {
    if (drop_p(m) <= 0) return m->acts->dres;
    dropout_apply(m->acts->dbranch, m->acts->dres, n, drop_p(m), drop_base(m, site, n));
    return m->acts->dbranch;
}

static AttnShape self_attn_shape(const Model *m, const SelfAttn *v, int B, int T) {
    int C = m->cfg.C;
    return (AttnShape){ .B = B, .Tq = T, .Tk = T, .C = C, .NH = m->cfg.NH, .q_stride = 3 * C,
                        .kv_stride = 3 * C, .causal = v->causal, .p = drop_p(m),
                        .base = drop_base(m, v->site, (size_t)B * m->cfg.NH * T * T) };
}

static void self_attn_forward(Model *m, const SelfAttn *v, real *xout, const real *x, int B, int T) {
    Acts *a = m->acts;
    int C = m->cfg.C, N = B * T;
    layernorm_forward(v->ln, v->lnm, v->lnr, x, v->w.lnw, v->w.lnb, N, C);
    matmul_forward(v->qkv, v->ln, v->w.qkvw, v->w.qkvb, N, C, 3 * C);
    attention_forward(v->atty, v->att, v->qkv, v->qkv + C, v->qkv + 2 * C, v->valid,
                      self_attn_shape(m, v, B, T));
    matmul_forward(a->branch, v->atty, v->w.projw, NULL, N, C, C);
    branch_out_forward(m, xout, x, a->branch, v->w.projb, v->site + 1, N);
}

static void self_attn_backward(Model *m, const SelfAttn *v, const real *x, int B, int T) {
    Acts *a = m->acts;
    int C = m->cfg.C, N = B * T;
    const real *dbranch = branch_out_backward(m, v->site + 1, (size_t)N * C);
    matmul_backward(a->datty, v->dw.projw, v->dw.projb, dbranch, v->atty, v->w.projw, N, C, C,
                    OVERWRITE);
    attention_backward(a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->datt, a->datty, v->qkv,
                       v->qkv + C, v->qkv + 2 * C, v->att, self_attn_shape(m, v, B, T), OVERWRITE);
    matmul_backward(a->dln, v->dw.qkvw, v->dw.qkvb, a->dqkv, v->ln, v->w.qkvw, N, C, 3 * C,
                    OVERWRITE);
    layernorm_backward(a->dres, v->dw.lnw, v->dw.lnb, a->dln, x, v->w.lnw, v->lnm, v->lnr, N, C,
                       ACCUMULATE);
}

static AttnShape cross_attn_shape(const Model *m, const CrossAttn *v, int B, int S, int T) {
    int C = m->cfg.C;
    return (AttnShape){ .B = B, .Tq = T, .Tk = S, .C = C, .NH = m->cfg.NH, .q_stride = C,
                        .kv_stride = 2 * C, .p = drop_p(m),
                        .base = drop_base(m, v->site, (size_t)B * m->cfg.NH * T * S) };
}

static void cross_attn_forward(Model *m, const CrossAttn *v, real *xout, const real *x,
                               int B, int S, int T) {
    Acts *a = m->acts;
    int C = m->cfg.C;
    layernorm_forward(v->ln, v->lnm, v->lnr, x, v->w.lnw, v->w.lnb, B * T, C);
    matmul_forward(v->q, v->ln, v->w.qw, v->w.qb, B * T, C, C);
    matmul_forward(v->kv, a->e_out, v->w.kvw, v->w.kvb, B * S, C, 2 * C);
    attention_forward(v->atty, v->att, v->q, v->kv, v->kv + C, a->src_valid,
                      cross_attn_shape(m, v, B, S, T));
    matmul_forward(a->branch, v->atty, v->w.projw, NULL, B * T, C, C);
    branch_out_forward(m, xout, x, a->branch, v->w.projb, v->site + 1, B * T);
}

// Also accumulates the gradient of the encoder output into a->denc.
static void cross_attn_backward(Model *m, const CrossAttn *v, const real *x, int B, int S, int T) {
    Acts *a = m->acts;
    int C = m->cfg.C, N = B * T;
    const real *dbranch = branch_out_backward(m, v->site + 1, (size_t)N * C);
    matmul_backward(a->datty, v->dw.projw, v->dw.projb, dbranch, v->atty, v->w.projw, N, C, C,
                    OVERWRITE);
    attention_backward(a->dqkv, a->dkv, a->dkv + C, a->datt, a->datty, v->q, v->kv, v->kv + C,
                       v->att, cross_attn_shape(m, v, B, S, T), OVERWRITE);
    matmul_backward(a->denc, v->dw.kvw, v->dw.kvb, a->dkv, a->e_out, v->w.kvw, B * S, C, 2 * C,
                    ACCUMULATE);   // every layer's keys and values read the encoder output
    matmul_backward(a->dln, v->dw.qw, v->dw.qb, a->dqkv, v->ln, v->w.qw, N, C, C, OVERWRITE);
    layernorm_backward(a->dres, v->dw.lnw, v->dw.lnb, a->dln, x, v->w.lnw, v->lnm, v->lnr, N, C,
                       ACCUMULATE);
}

static void ffn_forward(Model *m, const FFN *v, real *xout, const real *x, int N) {
    int C = m->cfg.C, F = m->cfg.F;
    layernorm_forward(v->ln, v->lnm, v->lnr, x, v->w.lnw, v->w.lnb, N, C);
    matmul_forward(v->fch, v->ln, v->w.fcw, NULL, N, C, F);
    bias_gelu_forward(v->fchg, v->fch, v->w.fcb, N, F);
    matmul_forward(v->branch, v->fchg, v->w.fc2w, NULL, N, F, C);
    branch_out_forward(m, xout, x, v->branch, v->w.fc2b, v->site, N);
}

static void ffn_backward(Model *m, const FFN *v, const real *x, int N) {
    Acts *a = m->acts;
    int C = m->cfg.C, F = m->cfg.F;
    const real *dbranch = branch_out_backward(m, v->site, (size_t)N * C);
    matmul_backward(a->dfchg, v->dw.fc2w, v->dw.fc2b, dbranch, v->fchg, v->w.fc2w, N, F, C,
                    OVERWRITE);
    gelu_backward(a->dfch, v->fch, a->dfchg, (size_t)N * F, OVERWRITE);
    matmul_backward(a->dln, v->dw.fcw, v->dw.fcb, a->dfch, v->ln, v->w.fcw, N, C, F, OVERWRITE);
    layernorm_backward(a->dres, v->dw.lnw, v->dw.lnb, a->dln, x, v->w.lnw, v->lnm, v->lnr, N, C,
                       ACCUMULATE);
}

// ----------------------------------------------------------------------------
// Token embedding: x[b, t, :] = sqrt(C) * row(token) + pos[t, :].

// With a tied factorized embedding, training builds the whole (V, C) table for the
// logits anyway (and its backward takes a (V, C) gradient back to the factors), so the
// tokens' rows are gathered from it, out[i] = sqrt(C) table[tok[i]], and their gradient
// scattered into the table's, dtable[tok[i]] += sqrt(C) dout[i], before that one
// backward: the factors' products run once a step, not once more per batch row
// (a->rows_from_table). Otherwise each row is built from its factors.
static void tokens_forward(Model *m, real *out, const int *tok, int B, int T) {
    int C = m->cfg.C;
    const real s = (real)sqrt((double)C);
    if (m->acts->rows_from_table) {
        const real *W = m->acts->W;                              // (V, C)
        #pragma omp parallel for
        for (int i = 0; i < B * T; i++)
            for (int c = 0; c < C; c++) out[(size_t)i * C + c] = s * W[(size_t)tok[i] * C + c];
    } else {
        embed_rows_forward(out, tok, m->params.embed, &m->emb, B * T, s);
    }
    #pragma omp parallel for
    for (int i = 0; i < B * T; i++) {
        const real *p = m->pos + (size_t)(i % T) * C;
        for (int c = 0; c < C; c++) out[(size_t)i * C + c] += p[c];
    }
}
static void tokens_backward(Model *m, const real *dout, const int *tok, int N) {
    int C = m->cfg.C;
    const real s = (real)sqrt((double)C);
    if (!m->acts->rows_from_table) {
        embed_rows_backward(m->grads.embed, dout, tok, m->params.embed, &m->emb, N, s);
        return;
    }
    // One owner per column block of dtable: each adds the rows i in increasing order,
    // whatever the number of threads.
    enum { CB = 32 };
    real *dtable = m->acts->dtable;                              // (V, C)
    #pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += CB) {
        const int c1 = c0 + CB < C ? c0 + CB : C;
        for (int i = 0; i < N; i++) {
            real *d = dtable + (size_t)tok[i] * C;
            const real *g = dout + (size_t)i * C;
            for (int c = c0; c < c1; c++) d[c] += s * g[c];
        }
    }
}

// The output projection (V, C): the tied embedding table or the separate matrix.
static const real *output_weight(Model *m) {
    if (!m->cfg.tie) return m->params.outw;
    return embed_table_forward(m->acts->table, m->params.embed, &m->emb);
}

// ----------------------------------------------------------------------------
// The whole model: the encoder, the decoder, the logits, each forward with its backward
// beside it. model_backward runs the three backwards in the reverse order.

static void set_tokens(int *dst, unsigned char *valid, const int *src, size_t n) {
    for (size_t i = 0; i < n; i++) { dst[i] = src[i]; valid[i] = src[i] != TOK_PAD; }
}

// src (B, S) -> e_out (B*S, C)
static void encoder_forward(Model *m) {
    Acts *a = m->acts;
    int B = m->B, S = m->S, C = m->cfg.C;
    size_t nS = a->nS * C;
    tokens_forward(m, a->e_x, a->src, B, S);
    for (int l = 0; l < m->cfg.Le; l++) {
        SelfAttn sa = enc_self(m, l);
        FFN ff = enc_ffn(m, l);
        self_attn_forward(m, &sa, a->e_xmid + l * nS, a->e_x + l * nS, B, S);
        ffn_forward(m, &ff, a->e_x + (l + 1) * nS, a->e_xmid + l * nS, B * S);
    }
    layernorm_forward(a->e_out, a->e_lnfm, a->e_lnfr, a->e_x + m->cfg.Le * nS,
                      m->params.e_lnfw, m->params.e_lnfb, B * S, C);
}

// Model.grads_final of the gradients [from, to) of grad_mem.
static void grads_final(Model *m, real *from, real *to) {
    if (m->grads_final) m->grads_final(from, (size_t)(to - from));
}

// The gradient of e_out (a->denc, gathered by every cross-attention) -> the encoder's
// weights and the source tokens' embeddings.
static void encoder_backward(Model *m) {
    Acts *a = m->acts;
    int B = m->B, S = m->S, C = m->cfg.C;
    size_t nS = a->nS * C;
    layernorm_backward(a->dres, m->grads.e_lnfw, m->grads.e_lnfb, a->denc, a->e_x + m->cfg.Le * nS,
                       m->params.e_lnfw, a->e_lnfm, a->e_lnfr, B * S, C, OVERWRITE);
    for (int l = m->cfg.Le - 1; l >= 0; l--) {   // see decoder_backward for a->dres
        SelfAttn sa = enc_self(m, l);
        FFN ff = enc_ffn(m, l);
        ffn_backward(m, &ff, a->e_xmid + l * nS, B * S);
        self_attn_backward(m, &sa, a->e_x + l * nS, B, S);
        grads_final(m, m->grads.e_self.lnw, l == 0 ? m->grads.d_self.lnw : m->grads.e_self.lnw);
    }
    tokens_backward(m, a->dres, a->src, B * S);
}

// tgt_in (B, T) (and e_out) -> d_out (B*T, C)
static void decoder_forward(Model *m) {
    Acts *a = m->acts;
    int B = m->B, S = m->S, T = m->T, C = m->cfg.C, enc = m->cfg.arch == ARCH_SEQ2SEQ;
    size_t nT = a->nT * C;
    tokens_forward(m, a->d_x, a->tgt_in, B, T);
    for (int l = 0; l < m->cfg.Ld; l++) {
        SelfAttn sa = dec_self(m, l);
        FFN ff = dec_ffn(m, l);
        real *x = a->d_x + l * nT, *x2 = a->d_x2 + l * nT, *x3 = x2;
        self_attn_forward(m, &sa, x2, x, B, T);
        if (enc) {
            CrossAttn ca = dec_cross(m, l);
            x3 = a->d_x3 + l * nT;
            cross_attn_forward(m, &ca, x3, x2, B, S, T);
        }
        ffn_forward(m, &ff, a->d_x + (l + 1) * nT, x3, B * T);
    }
    layernorm_forward(a->d_out, a->d_lnfm, a->d_lnfr, a->d_x + m->cfg.Ld * nT,
                      m->params.d_lnfw, m->params.d_lnfb, B * T, C);
}

// The gradient of d_out (a->dln, from loss_forward) -> the decoder's weights, the
// target tokens' embeddings, and (seq2seq) the gradient of e_out in a->denc.
static void decoder_backward(Model *m) {
    Acts *a = m->acts;
    int B = m->B, S = m->S, T = m->T, C = m->cfg.C, enc = m->cfg.arch == ARCH_SEQ2SEQ;
    size_t nT = a->nT * C;
    layernorm_backward(a->dres, m->grads.d_lnfw, m->grads.d_lnfb, a->dln, a->d_x + m->cfg.Ld * nT,
                       m->params.d_lnfw, a->d_lnfm, a->d_lnfr, B * T, C, OVERWRITE);
    if (enc) zero(a->denc, (size_t)B * S * C);
    // The residual gradient: x_out = x + branch(x) gives dx = dx_out + (d branch/dx)^T dx_out.
    // a->dres holds dx_out; each sublayer's backward adds its branch's part into it
    // (layernorm_backward accumulates) and leaves dx there for the sublayer below.
    for (int l = m->cfg.Ld - 1; l >= 0; l--) {
        SelfAttn sa = dec_self(m, l);
        FFN ff = dec_ffn(m, l);
        real *x2 = a->d_x2 + l * nT;
        ffn_backward(m, &ff, enc ? a->d_x3 + l * nT : x2, B * T);
        if (enc) {
            CrossAttn ca = dec_cross(m, l);
            cross_attn_backward(m, &ca, x2, B, S, T);
        }
        self_attn_backward(m, &sa, a->d_x + l * nT, B, T);
        real *dec = m->grads.d_self.lnw;
        grads_final(m, dec, l == 0 ? m->grad_mem + m->num_params : dec);
    }
    tokens_backward(m, a->dres, a->tgt_in, B * T);
}

// logits (B*T, V) = d_out . W^T, all of them at once (a forward without targets: tests
// and tools that read every position's logits); last_only: each row's last position
// only, (B, V), for generation.
static void logits_forward(Model *m, int last_only) {
    Acts *a = m->acts;
    int B = m->B, T = m->T, C = m->cfg.C;
    a->W = output_weight(m);   // built once per step; backward reuses it
    if (last_only) {
        for (int b = 0; b < B; b++)
            memcpy(a->d_last + (size_t)b * C, a->d_out + ((size_t)b * T + T - 1) * C, (size_t)C * sizeof(real));
        matmul_forward(a->logits, a->d_last, a->W, NULL, B, C, m->cfg.V);
    } else {
        matmul_forward(a->logits, a->d_out, a->W, NULL, B * T, C, m->cfg.V);
    }
    m->logits = a->logits;
}

// Rows per chunk of the loss: matmul's K slice of the B*T rows (at most 256), or
// m->loss_rows when set.
static int loss_chunk_rows(const Model *m, int N) {
    return m->loss_rows > 0 ? (m->loss_rows < N ? m->loss_rows : N) : mm_k_slice(N);
}

// The mean cross-entropy of the B*T rows of d_out, a chunk of rows at a time, so that
// only (rows, V) logits are ever in memory: all B*T*V of them were the largest buffer
// of training (65 MB for the small config's batch at V = 8000, 4x that at V = 32k).
// Per chunk: logits = d_out . W^T, softmax cross-entropy into a->rowloss, and, when
// training, its backward at once (fused, as llm.c's fused classifier): the
// probabilities become dlogits = (p - y) / n in place, then through logits = d_out . W^T
//   dd_out = dlogits . W   (into a->dln, for model_backward),
//   dW    += dlogits^T . d_out   (into outw, the dense table, or, factorized and tied, a
//            scratch table that model_backward, once the tokens' rows have added theirs,
//            takes back to the factors with embed_table_backward).
// Fusing costs nothing; a separate backward would compute each chunk's logits and
// softmax again (one more logits matmul, ~6% of a small-config step). Chunking costs
// little: each chunk's two products with W pack it again (measured, on a loaded
// machine: 0-3% of the CPU time of a one-layer lm step, V = 8000, B*T = 2048). The
// chunks are matmul's K slices of the rows (mm_k_slice): W's gradient, accumulated over
// them in order, has the bits of one product over all rows, and every other value is
// computed row by row: the chunked loss and gradients equal the unchunked ones bit for
// bit.
static real loss_forward(Model *m) {
    Acts *a = m->acts;
    const Config *c = &m->cfg;
    int N = m->B * m->T, C = c->C, V = c->V, rows = loss_chunk_rows(m, N);
    float eps = m->training ? c->label_smoothing : 0.0f;
    int n = m->loss_tokens ? m->loss_tokens : m->ntok;
    int fact_tied = c->tie && m->emb.kind != EMBED_DENSE;
    real *dW = !c->tie ? m->grads.outw : fact_tied ? a->dtable : m->grads.embed;   // (V, C)
    if (!a->rows_from_table) a->W = output_weight(m);
    if (m->training && fact_tied) zero(a->dtable, (size_t)V * C);
    for (int i0 = 0; i0 < N; i0 += rows) {
        int r = N - i0 < rows ? N - i0 : rows;
        const real *x = a->d_out + (size_t)i0 * C;   // (r, C)
        const int *y = a->tgt_out + i0;              // (r)
        matmul_forward(a->logits, x, a->W, NULL, r, C, V);
        crossentropy_forward(a->rowloss + i0, a->logits, y, r, V, eps);
        if (!m->training) continue;
        crossentropy_backward(a->logits, y, r, V, eps, n);
        matmul_backward(a->dln + (size_t)i0 * C, dW, NULL, a->logits, x, a->W, r, C, V,
                        OVERWRITE);
    }
    a->dout_grad = m->training;
    m->logits = NULL;   // the last chunk's only
    return crossentropy_mean(a->rowloss, a->tgt_out, N);
}

static void carve_or_die(Model *m, int B, int S, int T, int rows) {
    if (acts_carve(m, B, S, T, rows)) {
        fprintf(stderr, "train: error: out of memory for a batch of %d x (%d, %d) tokens; "
                "lower --batch-tokens (fit) or --batch (translate)\n", B, S, T);
        exit(1);
    }
}

real model_forward(Model *m, const int *src, const int *tgt_in, const int *tgt_out,
                   int B, int S, int T) {
    int enc = m->cfg.arch == ARCH_SEQ2SEQ;
    if (!enc) S = 0;
    if (m->training) m->dropout_step++;
    m->ntok = 0;
    if (B == 0) { m->B = 0; return 0; }   // an empty shard (dist.h): nothing to compute
    carve_or_die(m, B, S, T, tgt_out ? loss_chunk_rows(m, B * T) : B * T);
    Acts *a = m->acts;
    a->dout_grad = 0;
    // training with a tied factorized table: build it first, gather the tokens' rows
    a->rows_from_table = m->training && tgt_out && m->cfg.tie && m->emb.kind != EMBED_DENSE;
    if (a->rows_from_table) a->W = output_weight(m);
    m->B = B; m->S = S; m->T = T;
    if (enc) set_tokens(a->src, a->src_valid, src, (size_t)B * S);
    set_tokens(a->tgt_in, a->tgt_valid, tgt_in, (size_t)B * T);
    if (enc) encoder_forward(m);
    decoder_forward(m);
    if (!tgt_out) { logits_forward(m, 0); return 0; }
    memcpy(a->tgt_out, tgt_out, (size_t)B * T * sizeof(int));
    for (int i = 0; i < B * T; i++) m->ntok += tgt_out[i] != TOK_PAD;
    return loss_forward(m);
}

// grad_mem holds the embedding (and an untied output projection), then the encoder's
// tensors, then the decoder's: each stack's are final after its first layer's backward,
// the embedding's last (see Model.grads_final).
void model_backward(Model *m) {
    int enc = m->cfg.arch == ARCH_SEQ2SEQ;
    real *dec = m->grads.d_self.lnw, *first = enc ? m->grads.e_self.lnw : dec;
    if (m->B == 0) {   // an empty shard: no gradient, but the same final ranges as the others
        grads_final(m, dec, m->grad_mem + m->num_params);
        if (enc) grads_final(m, first, dec);
        grads_final(m, m->grad_mem, first);
        return;
    }
    if (!m->acts->dout_grad) {
        fprintf(stderr, "train: error: model_backward needs a training forward with targets "
                "before it (bug in the caller)\n");
        exit(1);
    }
    decoder_backward(m);
    if (enc) encoder_backward(m);
    if (m->acts->rows_from_table)   // the logits' and the tokens' gradients, at once
        embed_table_backward(m->grads.embed, m->acts->dtable, m->params.embed, &m->emb);
    grads_final(m, m->grad_mem, first);
}

void model_zero_grad(Model *m) { zero(m->grad_mem, m->num_params); }

void model_encode(Model *m, const int *src, int B, int S) {
    carve_or_die(m, B, S, m->cfg.maxT, B);   // room for every prefix model_decode may get
    m->B = B; m->S = S;
    set_tokens(m->acts->src, m->acts->src_valid, src, (size_t)B * S);
    encoder_forward(m);
}

void model_decode(Model *m, const int *tgt_in, int B, int T) {
    if (m->cfg.arch == ARCH_LM || !m->acts || m->acts->Tc < m->cfg.maxT) {
        carve_or_die(m, B, 0, m->cfg.maxT, B);   // lm: no encoder to keep
        m->S = 0;
    }
    m->B = B; m->T = T;
    set_tokens(m->acts->tgt_in, m->acts->tgt_valid, tgt_in, (size_t)B * T);
    decoder_forward(m);
    logits_forward(m, 1);
}

// ----------------------------------------------------------------------------
// Incremental decoding. Each step gives every row one new position t. Self-attention
// appends that position's key and value to a per-layer cache and lets its query attend
// to the cached positions 0..t, which is what the causal mask of the full forward
// leaves it; cross-attention reads the encoder output's keys and values, projected once
// in model_decode_begin. Every other sublayer works row by row, so it is the training
// code on R rows of one position each.

struct Decoder {
    real *mem; size_t cap;            // one buffer for everything below
    int rows_max, Tmax, Bs, S, L;     // the shape it is carved for (L: decoder layers)
    int R, t;                         // rows decoding now; the next position
    real **k, **v;                    // (L) each (rows_max, Tmax, C): cached keys, values
    real *spare;                      // (rows_max, Tmax, C): model_decode_select gathers
                                      // a layer into it, then swaps it with that layer's
    real *ckv;                        // (L, Bs, S, 2C) cross-attention keys, then values
    unsigned char *src_valid;         // (Bs, S) 1 = a real source token
    unsigned char *all_valid;         // (rows_max, Tmax) ones: a row's cache has no padding
    int *src_of, *src_tmp;            // (rows_max) the sentence of each row
    real *x, *x2, *x3;                // (rows_max, C) the residual stream of the new position
    real *ln, *lnm, *lnr;             // (rows_max, C), (rows_max), (rows_max)
    real *qkv;                        // (rows_max, 3C); cross-attention queries use (., C)
    real *att;                        // (rows_max, NH, max(Tmax, S)) attention probabilities
    real *atty, *branch;              // (rows_max, C) attention output; a branch's output
    real *fch, *fchg;                 // (rows_max, F)
    real *logits;                     // (rows_max, V)
    real *table;                      // (V, C) the tied factorized output table
    const real *W;                    // (V, C) the output projection
};

static void decoder_free(struct Decoder *d) {
    if (!d) return;
    free(d->mem); free(d->k); free(d->v); free(d->src_of); free(d->src_tmp);
    free(d->src_valid); free(d->all_valid); free(d);
}

// Carves the decoder state for rows_max rows of Tmax positions against Bs sentences of
// S tokens; reallocates only when it must grow. Returns non-zero when out of memory.
static int decoder_carve(Model *m, int rows_max, int Tmax, int Bs, int S) {
    const Config *c = &m->cfg;
    struct Decoder *d = m->dec;
    if (!d && !(d = m->dec = calloc(1, sizeof(*d)))) return 1;
    size_t C = c->C, F = c->F, V = c->V, NH = c->NH, L = c->Ld, Rm = rows_max;
    size_t cache = Rm * Tmax * C, TS = (size_t)(Tmax > S ? Tmax : S);
    int fact_tied = c->tie && m->emb.kind != EMBED_DENSE;
    struct { real **p; size_t n; } list[] = {
        {&d->spare, cache}, {&d->ckv, L * Bs * S * 2 * C},
        {&d->x, Rm * C}, {&d->x2, Rm * C}, {&d->x3, Rm * C},
        {&d->ln, Rm * C}, {&d->lnm, Rm}, {&d->lnr, Rm}, {&d->qkv, Rm * 3 * C},
        {&d->att, Rm * NH * TS}, {&d->atty, Rm * C}, {&d->branch, Rm * C},
        {&d->fch, Rm * F}, {&d->fchg, Rm * F}, {&d->logits, Rm * V},
        {&d->table, fact_tied * V * C},
    };
    int n = sizeof(list) / sizeof(list[0]);
    size_t total = 2 * L * cache;   // the caches, first
    for (int i = 0; i < n; i++) total += list[i].n;
    if (total > d->cap) {
        free(d->mem);
        d->mem = malloc(total * sizeof(real));
        d->cap = d->mem ? total : 0;
    }
    free(d->k); free(d->v); free(d->src_of); free(d->src_tmp); free(d->src_valid); free(d->all_valid);
    d->k = malloc(L * sizeof(real *));
    d->v = malloc(L * sizeof(real *));
    d->src_of = malloc(Rm * sizeof(int));
    d->src_tmp = malloc(Rm * sizeof(int));
    d->src_valid = malloc((size_t)Bs * S + 1);
    d->all_valid = malloc(Rm * Tmax);
    if (!d->mem || !d->k || !d->v || !d->src_of || !d->src_tmp || !d->src_valid || !d->all_valid)
        return 1;
    real *p = d->mem;
    for (size_t l = 0; l < L; l++) { d->k[l] = p; p += cache; d->v[l] = p; p += cache; }
    for (int i = 0; i < n; i++) { *list[i].p = list[i].n ? p : NULL; p += list[i].n; }
    memset(d->all_valid, 1, Rm * Tmax);
    d->rows_max = rows_max; d->Tmax = Tmax; d->Bs = Bs; d->S = S; d->L = (int)L;
    return 0;
}

void model_decode_begin(Model *m, int R, int rows_max, const int *src_of, int Tmax) {
    const Config *c = &m->cfg;
    const Params *p = &m->params;
    int enc = c->arch == ARCH_SEQ2SEQ, C = c->C;
    int Bs = enc ? m->B : 0, S = enc ? m->S : 0;
    if (rows_max < R) rows_max = R;
    if (Tmax < 1 || Tmax > c->maxT) Tmax = c->maxT;
    if (decoder_carve(m, rows_max, Tmax, Bs, S)) {
        fprintf(stderr, "train: error: out of memory for decoding %d rows of %d positions; "
                "lower --batch or --beam\n", rows_max, Tmax);
        exit(1);
    }
    struct Decoder *d = m->dec;
    d->R = R;
    d->t = 0;
    for (int r = 0; r < R; r++) d->src_of[r] = src_of ? src_of[r] : r;
    if (enc) {
        memcpy(d->src_valid, m->acts->src_valid, (size_t)Bs * S);
        for (int l = 0; l < c->Ld; l++) {
            CrossAttnParams w = cross_attn_layer(&p->d_cross, l, C);
            matmul_forward(d->ckv + (size_t)l * Bs * S * 2 * C, m->acts->e_out, w.kvw, w.kvb,
                           Bs * S, C, 2 * C);
        }
    }
    d->W = c->tie ? embed_table_forward(d->table, p->embed, &m->emb) : p->outw;
}

// Self-attention of decoder layer l for the new position of every row.
static void self_attn_step(Model *m, int l, real *xout, const real *x) {
    struct Decoder *d = m->dec;
    int C = m->cfg.C, R = d->R;
    size_t C3 = 3 * (size_t)C;
    SelfAttnParams w = self_attn_layer(&m->params.d_self, l, C);
    layernorm_forward(d->ln, d->lnm, d->lnr, x, w.lnw, w.lnb, R, C);
    matmul_forward(d->qkv, d->ln, w.qkvw, w.qkvb, R, C, 3 * C);
    for (int r = 0; r < R; r++) {   // append position t's key and value to the cache
        size_t at = ((size_t)r * d->Tmax + d->t) * C;
        memcpy(d->k[l] + at, d->qkv + r * C3 + C, (size_t)C * sizeof(real));
        memcpy(d->v[l] + at, d->qkv + r * C3 + 2 * C, (size_t)C * sizeof(real));
    }
    AttnShape s = { .B = R, .Tq = 1, .Tk = d->t + 1, .C = C, .NH = m->cfg.NH,
                    .q_stride = 3 * C, .kv_stride = C, .kv_rows = d->Tmax };
    attention_forward(d->atty, d->att, d->qkv, d->k[l], d->v[l], d->all_valid, s);
    matmul_forward(d->branch, d->atty, w.projw, NULL, R, C, C);
    residual_out(xout, x, d->branch, w.projb, R, C, 0, 0);
}

// Cross-attention of decoder layer l: row r's query against its sentence's encoding.
static void cross_attn_step(Model *m, int l, real *xout, const real *x) {
    struct Decoder *d = m->dec;
    int C = m->cfg.C, R = d->R;
    const real *ckv = d->ckv + (size_t)l * d->Bs * d->S * 2 * C;
    CrossAttnParams w = cross_attn_layer(&m->params.d_cross, l, C);
    layernorm_forward(d->ln, d->lnm, d->lnr, x, w.lnw, w.lnb, R, C);
    matmul_forward(d->qkv, d->ln, w.qw, w.qb, R, C, C);
    AttnShape s = { .B = R, .Tq = 1, .Tk = d->S, .C = C, .NH = m->cfg.NH, .q_stride = C,
                    .kv_stride = 2 * C, .kv_batch = d->src_of };
    attention_forward(d->atty, d->att, d->qkv, ckv, ckv + C, d->src_valid, s);
    matmul_forward(d->branch, d->atty, w.projw, NULL, R, C, C);
    residual_out(xout, x, d->branch, w.projb, R, C, 0, 0);
}

void model_decode_step(Model *m, const int *tok) {
    struct Decoder *d = m->dec;
    const Config *c = &m->cfg;
    int R = d->R, C = c->C, t = d->t;
    // x = sqrt(C) * row(token) + pos[t], as tokens_forward does for position t
    embed_rows_forward(d->x, tok, m->params.embed, &m->emb, R, (real)sqrt((double)C));
    const real *pos = m->pos + (size_t)t * C;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < C; i++) d->x[(size_t)r * C + i] += pos[i];
    for (int l = 0; l < c->Ld; l++) {
        self_attn_step(m, l, d->x2, d->x);
        const real *x = d->x2;
        if (c->arch == ARCH_SEQ2SEQ) { cross_attn_step(m, l, d->x3, d->x2); x = d->x3; }
        FFN ff = { .w = ffn_layer(&m->params.d_ffn, l, C, c->F), .ln = d->ln, .lnm = d->lnm,
                   .lnr = d->lnr, .fch = d->fch, .fchg = d->fchg, .branch = d->branch,
                   .site = drop_site(1, l, 4) };
        ffn_forward(m, &ff, d->x, x, R);
    }
    layernorm_forward(d->ln, d->lnm, d->lnr, d->x, m->params.d_lnfw, m->params.d_lnfb, R, C);
    matmul_forward(d->logits, d->ln, d->W, NULL, R, C, c->V);
    m->logits = d->logits;
    d->t++;
}

void model_decode_select(Model *m, const int *from, int R) {
    struct Decoder *d = m->dec;   // R <= rows_max of model_decode_begin
    size_t C = m->cfg.C, row = (size_t)d->Tmax * C, used = (size_t)d->t * C;
    for (int l = 0; l < d->L; l++) {
        real **cache[2] = {&d->k[l], &d->v[l]};
        for (int j = 0; j < 2; j++) {
            real *old = *cache[j], *gathered = d->spare;
            #pragma omp parallel for
            for (int r = 0; r < R; r++)
                memcpy(gathered + r * row, old + (size_t)from[r] * row, used * sizeof(real));
            *cache[j] = gathered;
            d->spare = old;
        }
    }
    for (int r = 0; r < R; r++) d->src_tmp[r] = d->src_of[from[r]];
    memcpy(d->src_of, d->src_tmp, (size_t)R * sizeof(int));
    d->R = R;
}

// ----------------------------------------------------------------------------
// Gradient norm, clipping, AdamW.

// Sum of squares in fixed chunks, then the chunks in order: the same for any thread count.
double model_grad_norm(const Model *m) {
    const size_t CH = 1 << 14;
    size_t nch = (m->num_params + CH - 1) / CH;
    double *part = malloc(nch * sizeof(double));
    if (!part) return NAN;
    #pragma omp parallel for
    for (size_t k = 0; k < nch; k++) {
        size_t i1 = (k + 1) * CH < m->num_params ? (k + 1) * CH : m->num_params;
        double s = 0.0;
        for (size_t i = k * CH; i < i1; i++) s += (double)m->grad_mem[i] * m->grad_mem[i];
        part[k] = s;
    }
    double total = 0.0;
    for (size_t k = 0; k < nch; k++) total += part[k];
    free(part);
    return sqrt(total);
}

void model_clip_grads(Model *m, double norm, double max_norm) {
    if (!(max_norm > 0) || !(norm > max_norm)) return;
    real s = (real)(max_norm / norm);
    #pragma omp parallel for
    for (size_t i = 0; i < m->num_params; i++) m->grad_mem[i] *= s;
}

// m_t = b1 m + (1-b1) g;  v_t = b2 v + (1-b2) g^2;
// p -= lr * (m_t / (1-b1^t) / (sqrt(v_t / (1-b2^t)) + eps) + wd * p)   (wd only where decay)
void model_adamw(Model *m, float lr, float beta1, float beta2, float eps,
                 float weight_decay, int t) {
    if (!m->adam_m) {
        m->adam_m = calloc(m->num_params, sizeof(real));
        m->adam_v = calloc(m->num_params, sizeof(real));
        if (!m->adam_m || !m->adam_v) {
            fprintf(stderr, "train: error: out of memory for the optimizer state; choose a smaller model\n");
            exit(1);
        }
    }
    real c1 = (real)(1.0 / (1.0 - pow(beta1, t))), c2 = (real)(1.0 / (1.0 - pow(beta2, t)));
    for (int k = 0; k < m->ntensors; k++) {
        const TensorInfo *ti = &m->tensors[k];
        real wd = ti->decay ? weight_decay : 0, lrt = lr * ti->lr_scale;
        real *p = m->param_mem + ti->offset, *g = m->grad_mem + ti->offset;
        real *mm = m->adam_m + ti->offset, *vv = m->adam_v + ti->offset;
        #pragma omp parallel for
        for (size_t i = 0; i < ti->numel; i++) {
            mm[i] = beta1 * mm[i] + (1 - beta1) * g[i];
            vv[i] = beta2 * vv[i] + (1 - beta2) * g[i] * g[i];
            p[i] -= lrt * (mm[i] * c1 / (sqrt(vv[i] * c2) + eps) + wd * p[i]);
        }
    }
}

double model_flops_forward(const Model *m, int B, int S, int T) {
    const Config *c = &m->cfg;
    double C = c->C, F = c->F, nS = (double)B * S, nT = (double)B * T;
    double block = 2 * (3 * C * C + C * C + 2 * C * F);   // per row: qkv, proj, fc1, fc2
    double f = 0;
    if (c->arch == ARCH_SEQ2SEQ)
        f += c->Le * (nS * block + 4.0 * B * S * S * C)
           + c->Ld * (nT * 4 * C * C + nS * 4 * C * C + 4.0 * B * T * S * C);   // cross-attention
    f += c->Ld * (nT * block + 4.0 * B * T * T * C);
    f += 2 * nT * C * c->V;                                                   // logits
    return f;
}
