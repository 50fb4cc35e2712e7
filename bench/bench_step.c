// bench_step.c: one training step (forward, backward, AdamW) of the "small"
// configuration, the shape of ../shared/bench/torch_step.py: d_model 256, 3 + 3 layers,
// 8 heads, FFN 1024, vocabulary 8000, tied dense embedding, 64 sentences x 32 source and
// 32 target tokens, no dropout. Prints the median step time, target tokens per second,
// FLOPs and model FLOPs utilization, then where the time goes (each kernel timed alone
// at the step's shapes, times the number of calls per step).
//
// usage: bench_step [steps (10)] [embed spec (dense)] [peak GFLOP/s for MFU (195)]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../model.h"
#include "../matmul.h"
#include "../tokenizer.h"
#include "../fileio.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *t, int n) { qsort(t, n, sizeof(double), cmp); return t[n / 2]; }

// out = median seconds of 5 runs of stmt, after one warm-up run.
#define TIME(out, stmt) do { double ts_[5]; stmt; \
    for (int r_ = 0; r_ < 5; r_++) { double t0_ = seconds_now(); stmt; ts_[r_] = seconds_since(t0_); } \
    out = median(ts_, 5); } while (0)

static real *rnd(size_t n, uint64_t *s) {
    real *p = malloc(n * sizeof(real));
    for (size_t i = 0; i < n; i++) p[i] = (real)(0.1 * rng_normal(s));
    return p;
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 10;
    const char *embed = argc > 2 ? argv[2] : "dense";
    double peak = argc > 3 ? atof(argv[3]) : 195.0;
    if (steps < 3 || steps > 1000) { fprintf(stderr, "usage: bench_step [steps 3..1000] [embed] [peak]\n"); return 2; }
    Config cfg;
    config_default(&cfg);   // the "small" shape
    cfg.dropout = 0; cfg.label_smoothing = 0; cfg.maxT = 32;
    snprintf(cfg.embed, sizeof cfg.embed, "%s", embed);
    Model m; char err[KF_ERRLEN];
    if (model_build(&m, &cfg, err)) { fprintf(stderr, "bench_step: %s\n", err); return 2; }
    model_init(&m, 1);
    m.training = 1;
    int B = 64, S = 32, T = 32, V = cfg.V;
    int *src = malloc(B * S * sizeof(int)), *tin = malloc(B * T * sizeof(int)), *tout = malloc(B * T * sizeof(int));
    uint64_t s = 42;
    for (int i = 0; i < B * S; i++) src[i] = 3 + (int)(rng_next(&s) % (V - 3));
    for (int i = 0; i < B * T; i++) { tin[i] = 3 + (int)(rng_next(&s) % (V - 3)); tout[i] = 3 + (int)(rng_next(&s) % (V - 3)); }

    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    double *ts = malloc(steps * sizeof(double)), *tf = malloc(steps * sizeof(double)),
           *tb = malloc(steps * sizeof(double)), *ta = malloc(steps * sizeof(double));
    for (int it = -2; it < steps; it++) {   // two warm-up steps
        double t0 = seconds_now();
        model_zero_grad(&m);
        model_forward(&m, src, tin, tout, B, S, T);
        double t1 = seconds_now();
        model_backward(&m);
        double t2 = seconds_now();
        model_clip_grads(&m, model_grad_norm(&m), 1.0);
        model_adamw(&m, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, it + 3);
        double t3 = seconds_now();
        if (it >= 0) { ts[it] = t3 - t0; tf[it] = t1 - t0; tb[it] = t2 - t1; ta[it] = t3 - t2; }
    }
    double mn = ts[0], mx = ts[0];
    for (int i = 0; i < steps; i++) { mn = ts[i] < mn ? ts[i] : mn; mx = ts[i] > mx ? ts[i] : mx; }
    double med = median(ts, steps);
    double flops = 3 * model_flops_forward(&m, B, S, T);   // backward is about twice the forward
    printf("kronformer step (small: d256 3+3 layers 8 heads ffn1024 V8000 %s, B64 x 32+32, %d threads, matmul kernel %s)\n",
           embed, threads, mm_kernel_name());
    printf("  params=%zu step_ms_median=%.1f min=%.1f max=%.1f target_tokens_per_s=%.0f\n",
           m.num_params, med * 1e3, mn * 1e3, mx * 1e3, B * T / med);
    // (the forward includes the loss's backward, which model.c fuses into it in training)
    printf("  forward_ms=%.1f backward_ms=%.1f optimizer_ms=%.1f\n",
           median(tf, steps) * 1e3, median(tb, steps) * 1e3, median(ta, steps) * 1e3);
    printf("  flops_per_step=%.2f GFLOP achieved=%.1f GFLOP/s MFU=%.1f%% (of %.0f GFLOP/s)\n",
           flops * 1e-9, flops / med * 1e-9, 100 * flops / med / (peak * 1e9), peak);

    // Where the time goes: each kernel alone at the step's shapes, times its calls per step.
    int C = cfg.C, F = cfg.F, NH = cfg.NH, N = B * T, L = cfg.Le + cfg.Ld;
    real *x = rnd((size_t)N * F, &s), *y = rnd((size_t)N * V, &s), *w = rnd((size_t)V * C, &s),
         *dw = calloc((size_t)V * C, sizeof(real)), *att = rnd((size_t)B * NH * T * T, &s),
         *qkv = rnd((size_t)N * 3 * C, &s), *dq = calloc((size_t)N * 3 * C, sizeof(real)),
         *mean = rnd(N, &s), *rstd = rnd(N, &s), *g = rnd(C, &s);
    int *tg = malloc(N * sizeof(int));
    int ntok = 0;
    for (int i = 0; i < N; i++) { tg[i] = tout[i]; ntok += tg[i] != TOK_PAD; }
    unsigned char *valid = malloc(N);
    memset(valid, 1, N);
    AttnShape as = { .B = B, .Tq = T, .Tk = T, .C = C, .NH = NH, .q_stride = 3 * C, .kv_stride = 3 * C, .causal = 1 };
    double mf_l, mf_c, mb_l, mb_c, lf, lb, ce, af, ab, lnf, lnb, gf, gb;
    // linear layers: qkv, proj, fc1, fc2 in every layer; cross q, kv, proj in the decoder's
    TIME(mf_l, { matmul_forward(y, x, w, NULL, N, C, 3 * C); matmul_forward(y, x, w, NULL, N, C, C);
                 matmul_forward(y, x, w, NULL, N, C, F); matmul_forward(y, x, w, NULL, N, F, C); });
    TIME(mf_c, { matmul_forward(y, x, w, NULL, N, C, C); matmul_forward(y, x, w, NULL, N, C, 2 * C);
                 matmul_forward(y, x, w, NULL, N, C, C); });
    TIME(mb_l, { matmul_backward(x, dw, NULL, y, x, w, N, C, 3 * C, ACCUMULATE); matmul_backward(x, dw, NULL, y, x, w, N, C, C, ACCUMULATE);
                 matmul_backward(x, dw, NULL, y, x, w, N, C, F, ACCUMULATE); matmul_backward(x, dw, NULL, y, x, w, N, F, C, ACCUMULATE); });
    TIME(mb_c, { matmul_backward(x, dw, NULL, y, x, w, N, C, C, ACCUMULATE); matmul_backward(x, dw, NULL, y, x, w, N, C, 2 * C, ACCUMULATE);
                 matmul_backward(x, dw, NULL, y, x, w, N, C, C, ACCUMULATE); });
    TIME(lf, matmul_forward(y, x, w, NULL, N, C, V));
    TIME(lb, matmul_backward(x, dw, NULL, y, x, w, N, C, V, ACCUMULATE));
    TIME(ce, { crossentropy_forward(x, y, tg, N, V, 0.1f); crossentropy_backward(y, tg, N, V, 0.1f, ntok); });
    TIME(af, attention_forward(x, att, qkv, qkv + C, qkv + 2 * C, valid, as));
    TIME(ab, attention_backward(dq, dq + C, dq + 2 * C, y, x, qkv, qkv + C, qkv + 2 * C, att, as, ACCUMULATE));
    TIME(lnf, layernorm_forward(y, mean, rstd, x, g, g, N, C));
    TIME(lnb, layernorm_backward(y, dw, dw, x, x, g, mean, rstd, N, C, ACCUMULATE));
    TIME(gf, gelu_forward(y, x, (size_t)N * F));
    TIME(gb, gelu_backward(y, x, x, (size_t)N * F, ACCUMULATE));
    int nln = 2 * L + cfg.Ld + 2, natt = L + cfg.Ld;
    struct { const char *name; double sec; } k[] = {
        {"matmul fwd (layers)", mf_l * L + mf_c * cfg.Ld}, {"matmul bwd (layers)", mb_l * L + mb_c * cfg.Ld},
        {"logits fwd", lf}, {"logits bwd", lb}, {"cross-entropy fwd+bwd", ce},
        {"attention fwd", af * natt}, {"attention bwd", ab * natt},
        {"layernorm fwd", lnf * nln}, {"layernorm bwd", lnb * nln},
        {"gelu fwd", gf * L}, {"gelu bwd", gb * L}, {"adamw + grad norm", median(ta, steps)},
    };
    int nk = sizeof k / sizeof k[0];
    double total = 0;
    for (int i = 0; i < nk; i++) total += k[i].sec;
    printf("  per-kernel profile (each kernel timed alone x calls per step; sum %.1f ms of %.1f ms step):\n",
           total * 1e3, med * 1e3);
    for (int i = 0; i < nk; i++)
        printf("    %-24s %7.1f ms  %5.1f%%\n", k[i].name, k[i].sec * 1e3, 100 * k[i].sec / med);
    model_free(&m);
    return 0;
}
