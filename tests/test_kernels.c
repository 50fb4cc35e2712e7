// test_kernels.c: the float build's fast paths of model.c (a vectorizable exp inside
// GELU, softmax and cross-entropy; lane-wise reductions) against plain libm formulas in
// double. test_model checks the same kernels' calculus in double; this checks that the
// float arithmetic the trainer really runs stays close to the exact values.
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

int main(void) {
    test_gelu();
    test_crossentropy_float();
    CHECK_EXIT();
}
