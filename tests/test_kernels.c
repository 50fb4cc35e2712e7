// test_kernels.c: the float build's fast paths of model.c (a vectorizable exp inside
// GELU, softmax and cross-entropy; lane-wise reductions; attention as small per-head
// products) against plain libm formulas in double or model.c's plain loops. test_model
// checks the same kernels' calculus in double; this checks that the float arithmetic the
// trainer really runs stays close to the exact values.
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "../model.h"
#include "../tokenizer.h"
#include "check.h"

#ifdef KF_DOUBLE
#error "test_kernels checks the float build"
#endif

static double gelu_ref(double x) {
    return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
static double gelu_grad_ref(double x) {
    double k = 0.7978845608028654, u = k * (x + 0.044715 * x * x * x), th = tanh(u);
    return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * k * (1 + 3 * 0.044715 * x * x);
}

static void test_gelu(void) {
    int N = 20001;
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float)), *d = calloc(N, sizeof(float)),
          *one = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) { x[i] = -30 + 60.0f * i / (N - 1); one[i] = 1; }
    gelu_forward(y, x, N);
    gelu_backward(d, x, one, N, OVERWRITE);
    double wf = 0, wb = 0;
    for (int i = 0; i < N; i++) {
        wf = fmax(wf, fabs(y[i] - gelu_ref(x[i])) / (1 + fabs(gelu_ref(x[i]))));
        wb = fmax(wb, fabs(d[i] - gelu_grad_ref(x[i])) / (1 + fabs(gelu_grad_ref(x[i]))));
    }
    CHECK(wf < 2e-6, "float gelu forward vs libm on [-30, 30]", "worst error %g", wf);
    CHECK(wb < 2e-6, "float gelu backward vs libm on [-30, 30]", "worst error %g", wb);
    free(x); free(y); free(d); free(one);
}

// Softmax and loss of rows spanning large and tiny logits, against double libm.
static void test_crossentropy_float(void) {
    int N = 6, V = 3001;
    float *lg = malloc((size_t)N * V * sizeof(float)), rl[6];
    double *ref = malloc((size_t)N * V * sizeof(double));
    int tg[6] = {5, 3000, TOK_PAD, 17, 100, 2999};
    uint64_t s = 1;
    for (int i = 0; i < N * V; i++) lg[i] = (float)(rng_normal(&s) * (1 + i / V * 8));   // std 1 .. 41
    double want = 0; int n = 0;
    for (int i = 0; i < N; i++) {
        double mx = -1e300, z = 0, sx = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, lg[i * V + v]);
        for (int v = 0; v < V; v++) { z += exp(lg[i * V + v] - mx); sx += lg[i * V + v]; }
        for (int v = 0; v < V; v++) ref[i * V + v] = exp(lg[i * V + v] - mx) / z;
        if (tg[i] == TOK_PAD) continue;
        double logz = mx + log(z);
        want += 0.9 * (logz - lg[i * V + tg[i]]) + 0.1 * (logz - sx / V);
        n++;
    }
    want /= n;
    float loss = crossentropy_forward(rl, lg, tg, N, V, 0.1f);
    double worst = 0;
    for (int i = 0; i < N * V; i++) worst = fmax(worst, fabs(lg[i] - ref[i]));
    CHECK(fabs(loss - want) < 1e-5 * want, "float cross-entropy loss vs libm", "%.9g vs %.9g", loss, want);
    CHECK(worst < 1e-6, "float softmax probabilities vs libm", "worst abs error %g", worst);
    free(lg); free(ref);
}

#ifndef KF_REF   // under REF=1 both versions are the plain loops
// Attention's fast version against its plain loops (attention_*_ref), on shapes that are
// not multiples of the tiles (head_mm: 32 columns; hs 40 = 32 + 8, hs 7), with padded
// row strides, causal and not, padded keys (and a row of padding only), dropout, both
// write modes, and decoding's key cache (kv_rows, kv_batch). Worst error relative to the
// largest value of each tensor.
static double worst_rel(const float *x, const float *y, size_t n) {
    double mx = 0, d = 0;
    for (size_t i = 0; i < n; i++) { mx = fmax(mx, fabs(y[i])); d = fmax(d, fabs(x[i] - y[i])); }
    return d / (mx + 1e-30);
}
static float *randn(size_t n, uint64_t *s) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)rng_normal(s);
    return p;
}
static void test_attention_fast(int Tq, int Tk, int NH, int hs, int causal, float p, int decode,
                                WriteMode mode, const char *name) {
    int B = 3, C = NH * hs, kv_rows = decode ? Tk + 4 : Tk;
    int kv_batch[3] = {2, 0, 2};
    AttnShape a = { .B = B, .Tq = Tq, .Tk = Tk, .C = C, .NH = NH, .q_stride = C + 3,
                    .kv_stride = 2 * C + 1, .causal = causal, .p = p, .base = 99,
                    .kv_rows = decode ? kv_rows : 0, .kv_batch = decode ? kv_batch : NULL };
    uint64_t s = 5;
    size_t nq = (size_t)B * Tq * a.q_stride, nkv = (size_t)B * kv_rows * a.kv_stride, no = (size_t)B * Tq * C,
           natt = (size_t)B * NH * Tq * Tk;
    float *q = randn(nq, &s), *kv = randn(nkv, &s), *dout = randn(no, &s);
    unsigned char *valid = malloc((size_t)B * kv_rows);
    for (int i = 0; i < B * kv_rows; i++) valid[i] = (i % kv_rows) < Tk - 3 * (i / kv_rows);   // rows 1, 2 padded
    valid[2 * kv_rows] = 0;   // and row 2's first key: with causal, its query 0 sees no key
    float *out[2], *att[2], *dq[2], *dkv[2];
    for (int v = 0; v < 2; v++) {
        out[v] = randn(no, &s); att[v] = randn(natt, &s);
        uint64_t g = 9;   // the same starting gradients for both (ACCUMULATE adds to them)
        dq[v] = randn(nq, &g); dkv[v] = randn(nkv, &g);
    }
    attention_forward_ref(out[0], att[0], q, kv, kv + C, valid, a);
    attention_forward(out[1], att[1], q, kv, kv + C, valid, a);
    double eo = worst_rel(out[1], out[0], no), ea = worst_rel(att[1], att[0], natt), eq = 0, ekv = 0;
    if (!decode) {   // backward is training's: one kv row per entry
        float *datt = malloc(natt * sizeof(float));
        attention_backward_ref(dq[0], dkv[0], dkv[0] + C, datt, dout, q, kv, kv + C, att[0], a, mode);
        attention_backward(dq[1], dkv[1], dkv[1] + C, datt, dout, q, kv, kv + C, att[0], a, mode);
        eq = worst_rel(dq[1], dq[0], nq); ekv = worst_rel(dkv[1], dkv[0], nkv);
        free(datt);
    }
    char n[160];
    snprintf(n, sizeof n, "attention fast vs plain loops, float (%s)", name);
    CHECK(eo < 1e-5 && ea < 1e-5 && eq < 1e-5 && ekv < 1e-5, n, "worst rel error out %g att %g dq %g dk,dv %g",
          eo, ea, eq, ekv);
    for (int v = 0; v < 2; v++) { free(out[v]); free(att[v]); free(dq[v]); free(dkv[v]); }
    free(q); free(kv); free(dout); free(valid);
}
#endif

int main(void) {
    test_gelu();
    test_crossentropy_float();
#ifdef KF_REF
    printf("SKIP attention fast vs plain loops: under REF=1 both are the plain loops\n");
#else
    test_attention_fast(37, 37, 3, 40, 1, 0, 0, OVERWRITE, "causal self, T 37, hs 40");
    test_attention_fast(29, 45, 2, 7, 0, 0, 0, ACCUMULATE, "cross, T 29, S 45, hs 7, accumulate");
    test_attention_fast(33, 33, 2, 32, 1, 0.2f, 0, OVERWRITE, "causal self with dropout, hs 32");
    test_attention_fast(32, 32, 8, 32, 0, 0, 0, OVERWRITE, "the small config's shape, padded keys");
    test_attention_fast(1, 19, 2, 40, 0, 0, 1, OVERWRITE, "decoding: one query, a key cache, kv_batch");
#endif
    CHECK_EXIT();
}
