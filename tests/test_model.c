// test_model.c: every layer of model.c against hand-computed values or a plain
// reference, every backward against central finite differences, and the whole model's
// gradient (both architectures, padding, dropout, label smoothing, tied and untied,
// dense and factorized embeddings) against finite differences. Built in double.
#include <stdlib.h>
#include <string.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../model.h"
#include "../tokenizer.h"
#include "check.h"

#ifndef KF_DOUBLE
#error "test_model is built with -DKF_DOUBLE: finite differences need double precision"
#endif

static uint64_t rng = 12345;
static void fill(real *p, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) p[i] = scale * rng_normal(&rng);
}
static real *alloc(size_t n) { return calloc(n ? n : 1, sizeof(real)); }
static double dot(const real *a, const real *b, size_t n) {
    double s = 0; for (size_t i = 0; i < n; i++) s += a[i] * b[i]; return s;
}
static double max_rel(double a, double n) {
    return fabs(a - n) / (fmax(fabs(a), fabs(n)) + 1e-12);
}

// ----------------------------------------------------------------------------
// Finite differences of a scalar function L(x) = <R, f(x)> with respect to every entry
// of one input x, against the analytic gradient g. Returns the worst relative error over
// the entries whose gradient is not negligible.

typedef double (*LossFn)(void *ctx);
// dL/dx by fourth-order central differences: error O(h^4) + O(eps/h).
static double fd_deriv(LossFn f, void *ctx, real *x) {
    const double h = 3e-4;
    real keep = *x;
    *x = keep + h; double p1 = f(ctx);
    *x = keep - h; double m1 = f(ctx);
    *x = keep + 2 * h; double p2 = f(ctx);
    *x = keep - 2 * h; double m2 = f(ctx);
    *x = keep;
    return (8 * (p1 - m1) - (p2 - m2)) / (12 * h);
}

static double fd_check(LossFn f, void *ctx, real *x, const real *g, size_t n) {
    double worst = 0, gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    for (size_t i = 0; i < n; i++) {
        double num = fd_deriv(f, ctx, x + i);
        if (fmax(fabs(num), fabs(g[i])) < 1e-6 * gmax) continue;
        worst = fmax(worst, max_rel(g[i], num));
    }
    return worst;
}

// ----------------------------------------------------------------------------
// LayerNorm

typedef struct { real *out, *mean, *rstd, *inp, *w, *b, *R; int N, C; } LNCtx;
static double ln_loss(void *p) {
    LNCtx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->N, c->C);
    return dot(c->out, c->R, (size_t)c->N * c->C);
}

static void test_layernorm(void) {
    // hand-computed: x = (1, 2, 3, 4): mean 2.5, variance 1.25
    real x[4] = {1, 2, 3, 4}, w[4] = {1, 2, 1, 1}, b[4] = {0, 0, 0, 0.5}, out[4], mean, rstd;
    layernorm_forward(out, &mean, &rstd, x, w, b, 1, 4);
    double s = 1 / sqrt(1.25 + 1e-5);
    CHECK(fabs(mean - 2.5) < 1e-12 && fabs(rstd - s) < 1e-12, "layernorm stats hand-computed",
          "mean %g rstd %g", mean, rstd);
    CHECK(fabs(out[0] + 1.5 * s) < 1e-12 && fabs(out[1] + 1.0 * s) < 1e-12 &&
          fabs(out[3] - (1.5 * s + 0.5)) < 1e-12, "layernorm output hand-computed",
          "out %g %g %g %g", out[0], out[1], out[2], out[3]);

    int N = 5, C = 7;
    LNCtx c = { alloc(N * C), alloc(N), alloc(N), alloc(N * C), alloc(C), alloc(C), alloc(N * C), N, C };
    fill(c.inp, N * C, 1.0); fill(c.w, C, 1.0); fill(c.b, C, 1.0); fill(c.R, N * C, 1.0);
    real *dinp = alloc(N * C), *dw = alloc(C), *db = alloc(C);
    ln_loss(&c);
    layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, N, C, ACCUMULATE);
    double e1 = fd_check(ln_loss, &c, c.inp, dinp, N * C);
    double e2 = fd_check(ln_loss, &c, c.w, dw, C);
    double e3 = fd_check(ln_loss, &c, c.b, db, C);
    CHECK(e1 < 1e-6 && e2 < 1e-6 && e3 < 1e-6, "layernorm backward vs finite differences",
          "rel err dinp %g dw %g db %g", e1, e2, e3);
    // ACCUMULATE adds to dinp, OVERWRITE replaces it
    real *d2 = alloc(N * C); memcpy(d2, dinp, N * C * sizeof(real));
    layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, N, C, ACCUMULATE);
    double worst = 0;
    for (int i = 0; i < N * C; i++) worst = fmax(worst, fabs(dinp[i] - 2 * d2[i]));
    CHECK(worst < 1e-12, "layernorm backward accumulates", "diff %g", worst);
    layernorm_backward(dinp, dw, db, c.R, c.inp, c.w, c.mean, c.rstd, N, C, OVERWRITE);
    worst = 0;
    for (int i = 0; i < N * C; i++) worst = fmax(worst, fabs(dinp[i] - d2[i]));
    CHECK(worst < 1e-12, "layernorm backward overwrites", "diff %g", worst);
    free(c.out); free(c.mean); free(c.rstd); free(c.inp); free(c.w); free(c.b); free(c.R);
    free(dinp); free(dw); free(db); free(d2);
}

// ----------------------------------------------------------------------------
// Linear layer and GELU

typedef struct { real *out, *inp, *w, *b, *R; int N, IC, OC; } MMCtx;
static double mm_loss(void *p) {
    MMCtx *c = p;
    matmul_forward(c->out, c->inp, c->w, c->b, c->N, c->IC, c->OC);
    return dot(c->out, c->R, (size_t)c->N * c->OC);
}

static void test_matmul_layer(void) {
    real x[2 * 3] = {1, 2, 3, 4, 5, 6}, w[2 * 3] = {1, 0, -1, 2, 1, 0}, b[2] = {0.5, -1}, out[4];
    matmul_forward(out, x, w, b, 2, 3, 2);
    // row 0: (1 - 3 + 0.5, 2 + 2 - 1) = (-1.5, 3); row 1: (4 - 6 + 0.5, 8 + 5 - 1) = (-1.5, 12)
    CHECK(out[0] == -1.5 && out[1] == 3 && out[2] == -1.5 && out[3] == 12,
          "linear forward hand-computed", "%g %g %g %g", out[0], out[1], out[2], out[3]);
    int N = 6, IC = 5, OC = 4;
    MMCtx c = { alloc(N * OC), alloc(N * IC), alloc(OC * IC), alloc(OC), alloc(N * OC), N, IC, OC };
    fill(c.inp, N * IC, 1); fill(c.w, OC * IC, 1); fill(c.b, OC, 1); fill(c.R, N * OC, 1);
    real *di = alloc(N * IC), *dw = alloc(OC * IC), *db = alloc(OC);
    mm_loss(&c);
    matmul_backward(di, dw, db, c.R, c.inp, c.w, N, IC, OC, ACCUMULATE);
    double e1 = fd_check(mm_loss, &c, c.inp, di, N * IC);
    double e2 = fd_check(mm_loss, &c, c.w, dw, OC * IC);
    double e3 = fd_check(mm_loss, &c, c.b, db, OC);
    CHECK(e1 < 1e-6 && e2 < 1e-6 && e3 < 1e-6, "linear backward vs finite differences",
          "rel err %g %g %g", e1, e2, e3);
    free(c.out); free(c.inp); free(c.w); free(c.b); free(c.R); free(di); free(dw); free(db);

    real g[3] = {0, 1, -2}, go[3];
    gelu_forward(go, g, 3);
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    double k = sqrt(2 / 3.141592653589793), g1 = 0.5 * (1 + tanh(k * 1.044715)), g2 = -(1 + tanh(k * (-2 - 0.35772)));
    CHECK(go[0] == 0 && fabs(go[1] - g1) < 1e-12 && fabs(go[2] - g2) < 1e-12,
          "gelu forward hand-computed", "%g %g %g", go[0], go[1], go[2]);
}

// The parameter gradients that sum over rows (linear db; LayerNorm dw, db) walk blocks
// of columns: on widths of several blocks and a ragged last one, each must equal the
// plain sum of the rows in order added to what it held (the same operations: equal).
static void test_row_sums_in_blocks(void) {
    int N = 9, IC = 3, OCs[] = {64, 101, 200};
    for (int k = 0; k < 3; k++) {
        int OC = OCs[k];
        real *dout = alloc(N * OC), *inp = alloc(N * IC), *w = alloc(OC * IC), *dw = alloc(OC * IC),
             *db = alloc(OC), *want = alloc(OC);
        fill(dout, N * OC, 1); fill(inp, N * IC, 1); fill(w, OC * IC, 1); fill(db, OC, 1);
        memcpy(want, db, OC * sizeof(real));
        for (int i = 0; i < N; i++)
            for (int o = 0; o < OC; o++) want[o] += dout[(size_t)i * OC + o];
        matmul_backward(NULL, dw, db, dout, inp, w, N, IC, OC, ACCUMULATE);
        CHECK(memcmp(db, want, OC * sizeof(real)) == 0, "linear bias gradient: rows summed in order",
              "OC %d", OC);
        // LayerNorm over C = OC channels: dw_c += sum_i g_ic (x_ic - mean_i) rstd_i, db_c += sum_i g_ic
        int C = OC;
        real *x = alloc(N * C), *out = alloc(N * C), *mean = alloc(N), *rstd = alloc(N), *g = alloc(C),
             *b = alloc(C), *dinp = alloc(N * C), *lw = alloc(C), *lb = alloc(C), *ww = alloc(C), *wb = alloc(C);
        fill(x, N * C, 1); fill(g, C, 1); fill(b, C, 1); fill(lw, C, 1); fill(lb, C, 1);
        layernorm_forward(out, mean, rstd, x, g, b, N, C);
        memcpy(ww, lw, C * sizeof(real)); memcpy(wb, lb, C * sizeof(real));
        for (int i = 0; i < N; i++)
            for (int c = 0; c < C; c++) {
                real gc = dout[(size_t)i * C + c];
                ww[c] += gc * (x[(size_t)i * C + c] - mean[i]) * rstd[i];
                wb[c] += gc;
            }
        layernorm_backward(dinp, lw, lb, dout, x, g, mean, rstd, N, C, OVERWRITE);
        CHECK(memcmp(lw, ww, C * sizeof(real)) == 0 && memcmp(lb, wb, C * sizeof(real)) == 0,
              "layernorm parameter gradients: rows summed in order", "C %d", C);
        free(x); free(out); free(mean); free(rstd); free(g); free(b); free(dinp); free(lw); free(lb);
        free(ww); free(wb); free(dout); free(inp); free(w); free(dw); free(db); free(want);
    }
}

typedef struct { real *out, *inp, *R; int N; } GCtx;
static double gelu_loss(void *p) {
    GCtx *c = p; gelu_forward(c->out, c->inp, c->N); return dot(c->out, c->R, c->N);
}
static void test_gelu_backward(void) {
    int N = 20;
    GCtx c = { alloc(N), alloc(N), alloc(N), N };
    fill(c.inp, N, 2); fill(c.R, N, 1);
    real *d = alloc(N);
    gelu_backward(d, c.inp, c.R, N, ACCUMULATE);
    double e = fd_check(gelu_loss, &c, c.inp, d, N);
    CHECK(e < 1e-6, "gelu backward vs finite differences", "rel err %g", e);
    free(c.out); free(c.inp); free(c.R); free(d);
}

// ----------------------------------------------------------------------------
// Attention: against a plain reference and finite differences, with strides, masks,
// causal, cross (Tq != Tk) and dropout.

static void attention_ref(real *out, const real *q, const real *k, const real *v,
                          const unsigned char *valid, AttnShape a) {
    int hs = a.C / a.NH;
    for (int b = 0; b < a.B; b++) for (int h = 0; h < a.NH; h++) for (int t = 0; t < a.Tq; t++) {
        double sc[64], mx = -1e300, sum = 0;
        for (int s = 0; s < a.Tk; s++) {
            int ok = valid[b * a.Tk + s] && (!a.causal || s <= t);
            double d = 0;
            for (int i = 0; i < hs; i++)
                d += q[(b * a.Tq + t) * a.q_stride + h * hs + i] * k[(b * a.Tk + s) * a.kv_stride + h * hs + i];
            sc[s] = ok ? d / sqrt(hs) : -1e300;
            if (ok && sc[s] > mx) mx = sc[s];
        }
        for (int s = 0; s < a.Tk; s++) { sc[s] = sc[s] == -1e300 ? 0 : exp(sc[s] - mx); sum += sc[s]; }
        for (int i = 0; i < hs; i++) {
            double o = 0;
            for (int s = 0; s < a.Tk; s++) o += sc[s] / sum * v[(b * a.Tk + s) * a.kv_stride + h * hs + i];
            out[(b * a.Tq + t) * a.C + h * hs + i] = o;
        }
    }
}

typedef struct { real *out, *att, *q, *kv, *R; unsigned char *valid; AttnShape s; } ACtx;
static double attn_loss(void *p) {
    ACtx *c = p;
    attention_forward(c->out, c->att, c->q, c->kv, c->kv + c->s.C, c->valid, c->s);
    return dot(c->out, c->R, (size_t)c->s.B * c->s.Tq * c->s.C);
}

static void test_attention(int causal, int Tq, int Tk, float p, const char *name) {
    int B = 2, C = 6, NH = 2;
    AttnShape s = { .B = B, .Tq = Tq, .Tk = Tk, .C = C, .NH = NH, .q_stride = C + 1,
                     .kv_stride = 2 * C + 3, .causal = causal, .p = p, .base = 777 };   // padded row strides
    ACtx c = { alloc(B * Tq * C), alloc(B * NH * Tq * Tk), alloc(B * Tq * s.q_stride),
               alloc(B * Tk * s.kv_stride), alloc(B * Tq * C), malloc(B * Tk), s };
    fill(c.q, B * Tq * s.q_stride, 1); fill(c.kv, B * Tk * s.kv_stride, 1); fill(c.R, B * Tq * C, 1);
    for (int i = 0; i < B * Tk; i++) c.valid[i] = 1;
    c.valid[1 * Tk + Tk - 1] = 0; c.valid[1 * Tk + Tk - 2] = 0;   // row 1 is padded
    if (p == 0) {
        real *ref = alloc(B * Tq * C);
        attention_ref(ref, c.q, c.kv, c.kv + C, c.valid, s);
        attn_loss(&c);
        double worst = 0;
        for (int i = 0; i < B * Tq * C; i++) worst = fmax(worst, fabs(ref[i] - c.out[i]));
        char n[128]; snprintf(n, sizeof n, "attention forward vs reference (%s)", name);
        CHECK(worst < 1e-12, n, "max diff %g", worst);
        free(ref);
    }
    real *dq = alloc(B * Tq * s.q_stride), *dkv = alloc(B * Tk * s.kv_stride), *datt = alloc(B * NH * Tq * Tk);
    attn_loss(&c);
    attention_backward(dq, dkv, dkv + C, datt, c.R, c.q, c.kv, c.kv + C, c.att, s, ACCUMULATE);
    double e1 = fd_check(attn_loss, &c, c.q, dq, B * Tq * s.q_stride);
    double e2 = fd_check(attn_loss, &c, c.kv, dkv, B * Tk * s.kv_stride);
    // padded keys get no gradient
    double padg = 0;
    for (int i = 0; i < 2 * C; i++) padg += fabs(dkv[((size_t)1 * Tk + Tk - 1) * s.kv_stride + i]);
    char n[128]; snprintf(n, sizeof n, "attention backward vs finite differences (%s)", name);
    CHECK(e1 < 1e-6 && e2 < 1e-6 && padg == 0, n, "rel err dq %g dkv %g, pad key grad %g", e1, e2, padg);
    free(c.out); free(c.att); free(c.q); free(c.kv); free(c.R); free(c.valid); free(dq); free(dkv); free(datt);
}

// ----------------------------------------------------------------------------
// Cross-entropy with label smoothing

typedef struct { real *logits, *work, *rowloss; int *tg; int N, V; float eps; } CECtx;
static double ce_loss(void *p) {
    CECtx *c = p;
    memcpy(c->work, c->logits, (size_t)c->N * c->V * sizeof(real));
    return crossentropy_forward(c->rowloss, c->work, c->tg, c->N, c->V, c->eps);
}

static void test_crossentropy(void) {
    // logits (0, log 2): p = (1/3, 2/3). Target 1, eps 0.1:
    // loss = 0.9 * -log(2/3) + 0.1 * -(log(1/3) + log(2/3)) / 2
    real lg[2] = {0, log(2.0)}, rl[1];
    int tg[1] = {1};
    real loss = crossentropy_forward(rl, lg, tg, 1, 2, 0.1f);
    double eps = (double)0.1f;
    double want = (1 - eps) * -log(2.0 / 3) + eps * -(log(1.0 / 3) + log(2.0 / 3)) / 2;
    CHECK(fabs(loss - want) < 1e-12 && fabs(lg[1] - 2.0 / 3) < 1e-12, "cross-entropy hand-computed",
          "loss %.15g want %.15g", loss, want);
    int N = 5, V = 7;
    CECtx c = { alloc(N * V), alloc(N * V), alloc(N), malloc(N * sizeof(int)), N, V, 0.1f };
    fill(c.logits, N * V, 2);
    int t[5] = {3, TOK_PAD, 6, 0 + 4, TOK_PAD};
    memcpy(c.tg, t, sizeof t);
    ce_loss(&c);
    crossentropy_backward(c.work, c.tg, N, V, c.eps, 3);   // 3 non-pad targets
    real *g = alloc(N * V); memcpy(g, c.work, N * V * sizeof(real));
    double e = fd_check(ce_loss, &c, c.logits, g, N * V);
    double padg = 0;
    for (int v = 0; v < V; v++) padg += fabs(g[1 * V + v]);
    CHECK(e < 1e-6 && padg == 0, "cross-entropy backward vs finite differences, padding ignored",
          "rel err %g pad grad %g", e, padg);
    free(c.logits); free(c.work); free(c.rowloss); free(c.tg); free(g);
}

static void test_dropout(void) {
    int N = 100000;
    real *x = alloc(N), *y = alloc(N), *z = alloc(N);
    for (int i = 0; i < N; i++) x[i] = 1;
    dropout_apply(y, x, N, 0.25f, 99);
    dropout_apply(z, x, N, 0.25f, 99);
    int kept = 0, same = 1, scaled = 1;
    for (int i = 0; i < N; i++) {
        kept += y[i] != 0; same &= y[i] == z[i];
        scaled &= y[i] == 0 || fabs(y[i] - 1 / 0.75) < 1e-12;
    }
    CHECK(same && scaled && fabs(kept / (double)N - 0.75) < 0.01, "dropout keeps 1-p, scales by 1/(1-p), repeatable",
          "kept %d of %d", kept, N);
    free(x); free(y); free(z);
}

// ----------------------------------------------------------------------------
// The whole model: the analytic gradient of the loss for EVERY entry of every parameter
// tensor against finite differences. Which entries are checked, and how closely, does
// not depend on the analytic gradient, so an entry that is wrongly zero (or tiny) fails
// like any other.

typedef struct { Model *m; int *src, *tin, *tout; int B, S, T; } MCtx;
static double model_loss(void *p) {
    MCtx *c = p;
    c->m->dropout_step = 41;   // the same dropout masks in every evaluation
    return model_forward(c->m, c->src, c->tin, c->tout, c->B, c->S, c->T);
}

static void make_batch(MCtx *c, int V) {
    // rows of different lengths, padded with TOK_PAD at the end
    int B = c->B, S = c->S, T = c->T;
    c->src = malloc(B * S * sizeof(int)); c->tin = malloc(B * T * sizeof(int)); c->tout = malloc(B * T * sizeof(int));
    for (int b = 0; b < B; b++) {
        int ls = S - b, lt = T - 2 * b;
        for (int s = 0; s < S; s++) c->src[b * S + s] = s < ls ? 3 + (b * 7 + s * 3) % (V - 3) : TOK_PAD;
        for (int t = 0; t < T; t++) {
            c->tin[b * T + t] = t == 0 ? TOK_BOS : t < lt ? 3 + (b * 5 + t * 2) % (V - 3) : TOK_PAD;
            c->tout[b * T + t] = t < lt - 1 ? 3 + (b * 5 + (t + 1) * 2) % (V - 3) : t == lt - 1 ? TOK_EOS : TOK_PAD;
        }
    }
}

static void test_model_grad(int arch, int tie, const char *embed, const char *name) {
    Config cfg;
    config_default(&cfg);
    cfg.arch = arch; cfg.V = 13; cfg.C = 8; cfg.NH = 2; cfg.F = 12;
    cfg.Le = arch == ARCH_SEQ2SEQ ? 2 : 0; cfg.Ld = 2; cfg.maxT = 8; cfg.tie = tie;
    snprintf(cfg.embed, sizeof cfg.embed, "%s", embed);
    cfg.dropout = 0.2f; cfg.label_smoothing = 0.1f;
    Model m; char err[KF_ERRLEN];
    if (model_build(&m, &cfg, err)) { CHECK(0, name, "model_build: %s", err); return; }
    model_init(&m, 7);
    if (m.emb.order == EMBED_ORDER_FREQ) {   // counts with ties: w mod 4, by 3s
        double counts[13];
        for (int w = 0; w < 13; w++) counts[w] = (w * 3) % 4;
        if (model_set_token_counts(&m, counts)) { CHECK(0, name, "out of memory"); return; }
    }
    // larger weights than the init so that every path carries a visible gradient
    for (size_t i = 0; i < m.num_params; i++) m.param_mem[i] += 0.1 * rng_normal(&rng);
    m.training = 1; m.dropout_seed = 5;
    MCtx c = { &m, NULL, NULL, NULL, 3, 5, 6 };
    make_batch(&c, cfg.V);
    model_zero_grad(&m);
    model_loss(&c);
    model_backward(&m);
    real *g = alloc(m.num_params);
    memcpy(g, m.grad_mem, m.num_params * sizeof(real));
#ifdef _OPENMP
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);   // 4 forwards per entry of a tiny model: threads only cost
#endif
    // |analytic - numeric| <= 1e-10 + 1e-7 |numeric|. The fourth-order differences have
    // a truncation error O(h^4) (relative) and a rounding error of about 1e-16 |loss| / h
    // (absolute, whatever the entry's size); measured, both stay below 1/20 of this
    // tolerance, which is far below any real gradient of this model (the smallest are
    // ~1e-5; the key biases' is 0 in exact arithmetic, and the differences give ~1e-12).
    double worst = 0, worst_g = 0, worst_num = 0; const char *worst_name = "";
    size_t worst_i = 0, checked = 0;
    for (int k = 0; k < m.ntensors; k++) {
        TensorInfo *t = &m.tensors[k];
        real *p = m.param_mem + t->offset, *gt = g + t->offset;
        double gmax = 0;
        for (size_t i = 0; i < t->numel; i++) {
            double num = fd_deriv(model_loss, &c, p + i);
            double e = fabs(gt[i] - num) / (1e-10 + 1e-7 * fabs(num));   // > 1 fails
            if (e > worst) { worst = e; worst_name = t->name; worst_i = i; worst_g = gt[i]; worst_num = num; }
            gmax = fmax(gmax, fabs(num));
            checked++;
        }
        if (gmax < 1e-9) { worst = INFINITY; worst_name = t->name; }   // a tensor with no gradient is a bug
    }
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    CHECK(worst <= 1 && checked == m.num_params, name,
          "%s[%zu]: analytic %.12g, finite differences %.12g (error %.3g of the tolerance; "
          "%zu of %zu entries checked)", worst_name, worst_i, worst_g, worst_num, worst,
          checked, m.num_params);
    printf("  %s: %zu entries, worst error %.3g of the tolerance\n", name, checked, worst);
    free(g); free(c.src); free(c.tin); free(c.tout);
    model_free(&m);
}

// A tiny copy task: the loss must fall well below its start.
static void test_training_reduces_loss(void) {
    Config cfg; config_default(&cfg);
    cfg.V = 12; cfg.C = 16; cfg.NH = 2; cfg.F = 32; cfg.Le = 1; cfg.Ld = 1; cfg.maxT = 8;
    cfg.dropout = 0; cfg.label_smoothing = 0;
    Model m; char err[KF_ERRLEN];
    model_build(&m, &cfg, err); model_init(&m, 1);
    m.training = 1;
    int B = 8, S = 4, T = 5, src[32], tin[40], tout[40];
    uint64_t r = 9;
    real first = 0, last = 0;
    for (int step = 1; step <= 300; step++) {
        for (int b = 0; b < B; b++) {
            tin[b * T] = TOK_BOS;
            for (int s = 0; s < S; s++) {
                int tok = 3 + (int)(rng_next(&r) % 9);
                src[b * S + s] = tok; tin[b * T + s + 1] = tok; tout[b * T + s] = tok;
            }
            tout[b * T + S] = TOK_EOS;
        }
        model_zero_grad(&m);
        real loss = model_forward(&m, src, tin, tout, B, S, T);
        model_backward(&m);
        model_clip_grads(&m, model_grad_norm(&m), 1.0);
        model_adamw(&m, 1e-2f, 0.9f, 0.98f, 1e-8f, 0.0f, step);
        if (step == 1) first = loss;
        last = loss;
    }
    CHECK(last < 0.5 * first, "training a copy task lowers the loss", "first %g last %g", first, last);
    model_free(&m);
}

// ----------------------------------------------------------------------------
// The loss in chunks of rows (model.c's loss_forward) against the plain, unchunked
// computation (m.loss_rows = B*T: one chunk of every row): B*T = 7 * 43 = 301 rows, so
// the default chunks are matmul's K slices (151 + 150 rows) and 8-row chunks leave a
// ragged last one of 5; rows end in padding, and training runs dropout and label
// smoothing. The default chunks must give the unchunked loss and gradients bit for bit
// (their sums are the same, see mm_k_slice), except in the REF build, whose reference
// loops round once per product; any other chunking differs only in the rounding of W's
// gradient summed over the chunks.

enum { CH_B = 7, CH_S = 10, CH_T = 43 };

typedef struct { double train_loss, eval_loss; real *grad; } ChunkRun;

static void swap_row(int *p, int width, int a, int b) {
    for (int i = 0; i < width; i++) {
        int x = p[a * width + i]; p[a * width + i] = p[b * width + i]; p[b * width + i] = x;
    }
}

static ChunkRun chunk_run(Model *m, MCtx *c, int rows) {
    ChunkRun r = { .grad = alloc(m->num_params) };
    m->loss_rows = rows;
    m->training = 1;
    model_zero_grad(m);
    r.train_loss = model_loss(c);
    model_backward(m);
    memcpy(r.grad, m->grad_mem, m->num_params * sizeof(real));
    m->training = 0;
    r.eval_loss = model_forward(m, c->src, c->tin, c->tout, c->B, c->S, c->T);
    return r;
}

static void test_chunked_loss(int arch, int tie, const char *embed, const char *name) {
    Config cfg;
    config_default(&cfg);
    cfg.arch = arch; cfg.V = 13; cfg.C = 8; cfg.NH = 2; cfg.F = 12;
    cfg.Le = arch == ARCH_SEQ2SEQ ? 1 : 0; cfg.Ld = 1; cfg.maxT = CH_T; cfg.tie = tie;
    cfg.dropout = 0.2f; cfg.label_smoothing = 0.1f;
    snprintf(cfg.embed, sizeof cfg.embed, "%s", embed);
    Model m; char err[KF_ERRLEN];
    if (model_build(&m, &cfg, err)) { CHECK(0, name, "model_build: %s", err); return; }
    model_init(&m, 3);
    for (size_t i = 0; i < m.num_params; i++) m.param_mem[i] += 0.1 * rng_normal(&rng);
    m.dropout_seed = 9;
    MCtx c = { &m, NULL, NULL, NULL, CH_B, arch == ARCH_SEQ2SEQ ? CH_S : 0, CH_T };
    make_batch(&c, cfg.V);   // row b: 2b pad targets at the end; reversed, so that the
    for (int b = 0; b < CH_B / 2; b++) {   // ragged last chunk holds the full row's end
        swap_row(c.src, c.S, b, CH_B - 1 - b);
        swap_row(c.tin, CH_T, b, CH_B - 1 - b);
        swap_row(c.tout, CH_T, b, CH_B - 1 - b);
    }
    int N = CH_B * CH_T, pads = 0;
    for (int i = 0; i < N; i++) pads += c.tout[i] == TOK_PAD;
    ChunkRun whole = chunk_run(&m, &c, N), slices = chunk_run(&m, &c, 0), small = chunk_run(&m, &c, 8);
    double gmax = 0, d_slices = 0, d_small = 0;
    for (size_t i = 0; i < m.num_params; i++) {
        gmax = fmax(gmax, fabs(whole.grad[i]));
        d_slices = fmax(d_slices, fabs(slices.grad[i] - whole.grad[i]));
        d_small = fmax(d_small, fabs(small.grad[i] - whole.grad[i]));
    }
    int ref = strcmp(mm_kernel_name(), "reference") == 0;
    char n[200];
    snprintf(n, sizeof n, "%s: K-slice chunks (%d + %d rows, %d pad targets) give the unchunked "
             "loss and gradients%s", name, mm_k_slice(N), N - mm_k_slice(N), pads,
             ref ? " (REF build: to rounding)" : " bit for bit");
    int same = ref ? fabs(slices.train_loss - whole.train_loss) <= 1e-14 * whole.train_loss &&
                     d_slices <= 1e-13 * gmax
                   : slices.train_loss == whole.train_loss && slices.eval_loss == whole.eval_loss &&
                     memcmp(slices.grad, whole.grad, m.num_params * sizeof(real)) == 0;
    CHECK(same && gmax > 0 && pads > 0, n, "train loss %.17g vs %.17g, eval loss %.17g vs %.17g, "
          "largest gradient difference %.3g (largest gradient %.3g)", slices.train_loss,
          whole.train_loss, slices.eval_loss, whole.eval_loss, d_slices, gmax);
    // 8-row chunks: the loss is summed row by row (exact); W's gradient differs by the
    // rounding of 38 partial sums (~1e-16 relative in double); a chunk computed at the
    // wrong offset would be off by the size of a gradient
    snprintf(n, sizeof n, "%s: 8-row chunks (37 of 8, one of 5) give the unchunked loss, "
             "and its gradients to rounding", name);
    CHECK(small.train_loss == whole.train_loss && small.eval_loss == whole.eval_loss &&
          d_small <= 1e-13 * gmax, n, "train loss %.17g vs %.17g, eval loss %.17g vs %.17g, "
          "largest gradient difference %.3g (largest gradient %.3g)", small.train_loss,
          whole.train_loss, small.eval_loss, whole.eval_loss, d_small, gmax);
    free(whole.grad); free(slices.grad); free(small.grad);
    free(c.src); free(c.tin); free(c.tout);
    model_free(&m);
}

// ----------------------------------------------------------------------------
// AdamW and clipping, by hand.

// A small seq2seq model with every kind of tensor (untied output, cross-attention),
// with more than 2^14 parameters so that model_grad_norm sums several chunks.
static int small_model(Model *m) {
    Config cfg; config_default(&cfg);
    cfg.V = 1500; cfg.C = 16; cfg.NH = 2; cfg.F = 24; cfg.Le = 1; cfg.Ld = 1; cfg.maxT = 8; cfg.tie = 0;
    char err[KF_ERRLEN];
    if (model_build(m, &cfg, err)) { CHECK(0, "small model", "model_build: %s", err); return 1; }
    return 0;
}

// Weight decay applies to matrices and embeddings, not to LayerNorm gains and biases
// (README): stated here by name, independently of TensorInfo.decay.
static int decays(const char *name) {
    size_t n = strlen(name);
    return !(n > 5 && strcmp(name + n - 5, ".bias") == 0) && !strstr(name, ".ln");
}

static void test_adamw(void) {
    Model m;
    if (small_model(&m)) return;
    // beta1 = 1/2, beta2 = 3/4, eps = 1/2, lr = 1/2, weight decay 1/4: binary fractions,
    // so the values below are exact. Every weight starts at 1.
    // Step 1, g = 2: m1 = 1/2 * 2 = 1, v1 = 1/4 * 4 = 1; corrected m^ = 1 / (1 - 1/2) = 2,
    //   v^ = 1 / (1 - 3/4) = 4, step = 2 / (sqrt(4) + 1/2) = 4/5.
    //   decayed: 1 - 1/2 (4/5 + 1/4 * 1) = 19/40;  not decayed: 1 - 1/2 * 4/5 = 3/5.
    // Step 2, g = -2: m2 = 1/2 * 1 + 1/2 * (-2) = -1/2, v2 = 3/4 * 1 + 1/4 * 4 = 7/4;
    //   m^ = (-1/2) / (1 - 1/4) = -2/3, v^ = (7/4) / (1 - 9/16) = 4, step = (-2/3) / (5/2) = -4/15.
    //   decayed: 19/40 - 1/2 (-4/15 + 1/4 * 19/40) = 527/960;  not decayed: 3/5 + 2/15 = 11/15.
    // (Without bias correction step 2 would be (-1/2) / (sqrt(7/4) + 1/2) = -0.274, and
    // step 1 2/3 instead of 4/5.)
    for (size_t i = 0; i < m.num_params; i++) m.param_mem[i] = 1;
    double want[2][2] = {{3.0 / 5, 19.0 / 40}, {11.0 / 15, 527.0 / 960}};   // [step][decays]
    int ok = 1, flags_ok = 1;
    char detail[256] = "";
    for (int t = 1; t <= 2; t++) {
        for (size_t i = 0; i < m.num_params; i++) m.grad_mem[i] = t == 1 ? 2 : -2;
        model_adamw(&m, 0.5f, 0.5f, 0.75f, 0.5f, 0.25f, t);
        for (int k = 0; k < m.ntensors; k++) {
            const TensorInfo *ti = &m.tensors[k];
            int d = decays(ti->name);
            flags_ok &= ti->decay == d;
            for (size_t i = ti->offset; i < ti->offset + ti->numel; i++)
                if (fabs(m.param_mem[i] - want[t - 1][d]) > 1e-15 && ok) {
                    ok = 0;
                    snprintf(detail, sizeof detail, "step %d, %s: %.17g, want %.17g", t, ti->name,
                             m.param_mem[i], want[t - 1][d]);
                }
        }
    }
    CHECK(ok, "AdamW hand-computed: bias correction, decay on matrices and embeddings only", "%s", detail);
    CHECK(flags_ok, "AdamW decay flags: none on LayerNorm gains and biases", "a tensor's decay flag is wrong");
    CHECK(m.adam_m[0] == -0.5 && m.adam_v[0] == 1.75, "AdamW moments hand-computed",
          "m %g (want -1/2), v %g (want 7/4)", m.adam_m[0], m.adam_v[0]);
    model_free(&m);
}

static void test_clip(void) {
    Model m;
    if (small_model(&m)) return;
    size_t n = m.num_params;
    // all ones: norm sqrt(n), summed over ceil(n / 2^14) chunks
    for (size_t i = 0; i < n; i++) m.grad_mem[i] = 1;
    double norm = model_grad_norm(&m);
    CHECK(n > 2 * 16384 && fabs(norm - sqrt((double)n)) < 1e-12 * sqrt((double)n),
          "gradient norm of all ones is sqrt(n)", "n %zu: %.17g, want %.17g", n, norm, sqrt((double)n));
    // 3 in the first entry and 4 in the last: norm 5; clipped to 1 they become 3/5, 4/5
    memset(m.grad_mem, 0, n * sizeof(real));
    m.grad_mem[0] = 3; m.grad_mem[n - 1] = 4;
    norm = model_grad_norm(&m);
    model_clip_grads(&m, norm, 10.0);   // below the threshold: untouched
    model_clip_grads(&m, norm, 0.0);    // 0: clipping off
    int untouched = m.grad_mem[0] == 3 && m.grad_mem[n - 1] == 4;
    model_clip_grads(&m, norm, 1.0);
    CHECK(norm == 5 && untouched && fabs(m.grad_mem[0] - 0.6) < 1e-15 && fabs(m.grad_mem[n - 1] - 0.8) < 1e-15 &&
          fabs(model_grad_norm(&m) - 1) < 1e-15, "clipping hand-computed: (3, 4) to norm 1 is (3/5, 4/5)",
          "norm %.17g, untouched %d, clipped %.17g %.17g", norm, untouched, m.grad_mem[0], m.grad_mem[n - 1]);
    model_free(&m);
}

static void test_config_errors(void) {
    Config c; char err[KF_ERRLEN];
    config_default(&c); c.NH = 3;
    CHECK(config_check(&c, err) != 0 && strstr(err, "divide"), "heads not dividing d_model is refused", "%s", err);
    config_default(&c); c.embed[0] = 'x';
    CHECK(config_check(&c, err) != 0, "a bad embedding spec is refused", "accepted");
    config_default(&c);
    CHECK(config_check(&c, err) == 0, "the default config is valid", "%s", err);
}

int main(void) {
    test_layernorm();
    test_matmul_layer();
    test_row_sums_in_blocks();
    test_gelu_backward();
    test_attention(0, 5, 5, 0, "bidirectional, padding");
    test_attention(1, 5, 5, 0, "causal, padding");
    test_attention(0, 4, 6, 0, "cross, Tq != Tk");
    test_attention(1, 5, 5, 0.3f, "causal with dropout");
    test_crossentropy();
    test_dropout();
    test_config_errors();
    test_model_grad(ARCH_SEQ2SEQ, 1, "dense", "full model gradient: seq2seq, tied dense");
    test_model_grad(ARCH_SEQ2SEQ, 0, "dense", "full model gradient: seq2seq, untied");
    test_model_grad(ARCH_LM, 1, "dense", "full model gradient: lm, tied dense");
    test_model_grad(ARCH_SEQ2SEQ, 1, "kronxs:n=2,r=2,q=2x4,t=4x4", "full model gradient: seq2seq, tied kronxs");
    test_model_grad(ARCH_LM, 0, "kron:n=2,r=2,q=4x2", "full model gradient: lm, untied kron");
    test_model_grad(ARCH_SEQ2SEQ, 1, "kronxs:n=2,r=2,q=2x4,t=3x3,head=4,order=freq,layout=diag,norm=ln,lr=2",
                    "full model gradient: seq2seq, tied kronxs with head, freq, diag, ln");
    test_model_grad(ARCH_LM, 1, "kron:n=2,r=2,q=4x2,head=3,norm=rms",
                    "full model gradient: lm, tied kron with head, rms");
    test_model_grad(ARCH_SEQ2SEQ, 1, "tt:n=3,r=2,q=2x2x2,t=3x2x2,head=3,order=freq,layout=diag",
                    "full model gradient: seq2seq, tied tt with head, freq, diag, ln");
    test_chunked_loss(ARCH_SEQ2SEQ, 1, "dense", "chunked loss, seq2seq, tied dense");
    test_chunked_loss(ARCH_LM, 0, "dense", "chunked loss, lm, untied");
    test_chunked_loss(ARCH_SEQ2SEQ, 1, "kronxs:n=2,r=2,q=2x4,t=4x4", "chunked loss, seq2seq, tied kronxs");
    test_adamw();
    test_clip();
    test_training_reduces_loss();
    CHECK_EXIT();
}
