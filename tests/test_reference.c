// test_reference.c: kronformer against an independent implementation of the same model
// in PyTorch (tests/ref/make_reference.py, float64). Finite differences prove that the
// backward matches the forward; this proves that the forward is the intended
// Transformer, and that the gradients and three training steps (clipping, AdamW) are
// the ones PyTorch's autograd and optimizer give.
//
// Each fixture tests/ref/NAME.safetensors holds a config, its weights, a padded batch,
// and PyTorch's logits, losses, gradient norms, gradients and the weights after 3
// steps. The test builds the model through model.h, sets the weights, and repeats what
// `train fit` does for a step (run.c): forward, backward, model_grad_norm,
// model_clip_grads, model_adamw. Built twice: in double (test_reference) and in float
// (test_reference_f32, the build that trains, with its vectorized exp and AVX2 kernels).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "../model.h"
#include "../checkpoint.h"
#include "check.h"

// Error of a tensor: max_i |c_i - r_i| / max_i |r_i|, the worst difference relative to
// the tensor's scale (an entrywise relative error would measure only the rounding of
// entries that cancel to nearly zero).
// Double against float64: the two sum in different orders, so they differ by a few
// units of 1e-16 times the depth of the computation; three AdamW steps divide each
// gradient by its own size (m / sqrt(v)), which turns a gradient's relative error into
// an error of the step. 1e-10 leaves room for both and still catches any mistake in the
// math, which shows at 1e-3 or more.
// Float: float32 rounds at 6e-8 per operation, and the sums over C, F, V and the rows
// of the batch, the polynomial exp (2e-7) and the AdamW steps add up to about 1e-6; so
// 1e-5.
#ifdef KF_DOUBLE
#define TOL 1e-10
#define BUILD "double"
#else
#define TOL 1e-5
#define BUILD "float"
#endif

static const char *FIXTURES[] = {
    "s2s_dense_tied", "s2s_dense_untied", "s2s_kron_tied", "s2s_kronxs_untied",
    "lm_dense_tied", "lm_kron_untied", "lm_kronxs_tied",
};

typedef struct {
    const char *fixture;   // for messages
    StFile *f;
    int failed;            // a read failed: the fixture's result is a failure
} Fixture;

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) { printf("FAIL out of memory\n"); exit(1); }
    return p;
}

// Reads tensor `name` of the given shape into out (n values).
static int read_real(Fixture *fx, const char *name, real *out, int ndim, const int *shape) {
    char err[KF_ERRLEN];
    if (st_read(fx->f, name, out, ndim, shape, err) == 0) return 0;
    printf("FAIL reference %s: %s\n", fx->fixture, err);
    fx->failed = 1;
    return 1;
}

// The float64 value of `name`: its F32 part plus the F32 remainder `name`.lo.
static double *read_wide(Fixture *fx, const char *name, size_t n, int ndim, const int *shape) {
    real *hi = xcalloc(n, sizeof(real)), *lo = xcalloc(n, sizeof(real));
    double *x = xcalloc(n, sizeof(double));
    char lo_name[96];
    snprintf(lo_name, sizeof lo_name, "%s.lo", name);
    if (!read_real(fx, name, hi, ndim, shape) && !read_real(fx, lo_name, lo, ndim, shape))
        for (size_t i = 0; i < n; i++) x[i] = (double)hi[i] + (double)lo[i];
    free(hi); free(lo);
    return x;
}

// Reads a token tensor (small integers stored as F32).
static int *read_tokens(Fixture *fx, const char *name, int B, int L) {
    int shape[2] = {B, L};
    real *r = xcalloc((size_t)B * L, sizeof(real));
    int *tok = xcalloc((size_t)B * L, sizeof(int));
    if (!read_real(fx, name, r, 2, shape))
        for (int i = 0; i < B * L; i++) tok[i] = (int)r[i];
    free(r);
    return tok;
}

static const char *meta(Fixture *fx, const char *key) {
    const char *s = st_meta(fx->f, key);
    if (!s) { printf("FAIL reference %s: no metadata \"%s\"\n", fx->fixture, key); fx->failed = 1; }
    return s ? s : "0";
}
static int meta_i(Fixture *fx, const char *key) { return atoi(meta(fx, key)); }
static float meta_f(Fixture *fx, const char *key) { return strtof(meta(fx, key), NULL); }

// The error of one tensor (see TOL): max_i (|c_i - r_i| - allow_i) / max_i |r_i|, with
// allow (absolute, per entry) NULL for none; printed when it exceeds TOL. *worst and
// *worst_name keep the largest over a group of tensors.
static double compare(const char *fixture, const char *name, const real *c, const double *r,
                      const double *allow, size_t n, double *worst, const char **worst_name) {
    double scale = 0, diff = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(r[i]));
        double d = fabs((double)c[i] - r[i]) - (allow ? allow[i] : 0);
        if (d > diff || d != d) { diff = d; at = i; }
    }
    double e = diff / (scale > 0 ? scale : 1);
    if (!(e <= TOL))
        printf("  %s: %s: max error %.3g (relative to max |x| %.3g) at entry %zu: "
               "kronformer %.17g, PyTorch %.17g\n", fixture, name, e, scale, at,
               (double)c[at], r[at]);
    if (!(e <= *worst)) { *worst = e; *worst_name = name; }
    return e;
}

static void report(const char *fixture, const char *what, double worst, const char *name) {
    char n[160];
    snprintf(n, sizeof n, "reference %s (%s): %s", fixture, BUILD, what);
    CHECK(worst <= TOL, n, "max error %.3g in %s exceeds %g", worst, name, TOL);
    printf("  measured %s %s: %.3g (%s)\n", fixture, what, worst, name);
}

static void run_fixture(const char *fixture) {
    char path[256], err[KF_ERRLEN];
    snprintf(path, sizeof path, "tests/ref/%s.safetensors", fixture);
    Fixture fx = { fixture, st_open(path, err), 0 };
    if (!fx.f) { CHECK(0, fixture, "%s (run from the repository root)", err); return; }
    Config cfg;
    config_default(&cfg);
    cfg.arch = strcmp(meta(&fx, "arch"), "lm") == 0 ? ARCH_LM : ARCH_SEQ2SEQ;
    cfg.V = meta_i(&fx, "V"); cfg.C = meta_i(&fx, "C"); cfg.NH = meta_i(&fx, "NH");
    cfg.F = meta_i(&fx, "F"); cfg.Le = meta_i(&fx, "Le"); cfg.Ld = meta_i(&fx, "Ld");
    cfg.maxT = meta_i(&fx, "maxT"); cfg.tie = meta_i(&fx, "tie");
    embed_legacy_spec(cfg.embed, sizeof cfg.embed, meta(&fx, "embed"));   // as typed
    cfg.dropout = meta_f(&fx, "dropout");
    cfg.label_smoothing = meta_f(&fx, "label_smoothing");
    int B = meta_i(&fx, "B"), S = meta_i(&fx, "S"), T = meta_i(&fx, "T");
    float lr[3], beta1 = meta_f(&fx, "beta1"), beta2 = meta_f(&fx, "beta2");
    float eps = meta_f(&fx, "eps"), wd = meta_f(&fx, "weight_decay");
    double clip = meta_f(&fx, "clip");
    if (sscanf(meta(&fx, "lr"), "%f,%f,%f", &lr[0], &lr[1], &lr[2]) != 3) fx.failed = 1;
    Model m;
    char name[160];
    if (fx.failed || model_build(&m, &cfg, err)) {
        CHECK(0, fixture, "bad fixture metadata or model_build: %s", fx.failed ? "see above" : err);
        st_close(fx.f);
        return;
    }
    snprintf(name, sizeof name, "reference %s: the parameter count", fixture);
    CHECK((size_t)meta_i(&fx, "num_params") == m.num_params, name,
          "the fixture has %d parameters, the model %zu", meta_i(&fx, "num_params"), m.num_params);
    for (int k = 0; k < m.ntensors; k++) {
        const TensorInfo *t = &m.tensors[k];
        snprintf(name, sizeof name, "param.%s", t->name);
        read_real(&fx, name, m.param_mem + t->offset, t->ndim, t->shape);
    }
    int *src = cfg.arch == ARCH_SEQ2SEQ ? read_tokens(&fx, "src", B, S) : NULL;
    int *tin = read_tokens(&fx, "tgt_in", B, T), *tout = read_tokens(&fx, "tgt_out", B, T);
    int shape3[3] = {B, T, cfg.V}, three[1] = {3};
    size_t nlog = (size_t)B * T * cfg.V;
    double *logits = read_wide(&fx, "logits", nlog, 3, shape3);
    double *loss = read_wide(&fx, "loss", 3, 1, three);
    double *norm = read_wide(&fx, "grad_norm", 3, 1, three);
    double *want_grad = xcalloc(m.num_params, sizeof(double));    // PyTorch's, at step 1
    double *want_after = xcalloc(m.num_params, sizeof(double));   // after 3 steps
    real *grad1 = xcalloc(m.num_params, sizeof(real));   // kronformer's, at step 1
    for (int k = 0; k < m.ntensors; k++) {
        const TensorInfo *t = &m.tensors[k];
        snprintf(name, sizeof name, "grad.%s", t->name);
        double *g = read_wide(&fx, name, t->numel, t->ndim, t->shape);
        memcpy(want_grad + t->offset, g, t->numel * sizeof(double));
        free(g);
        snprintf(name, sizeof name, "adamw.%s", t->name);
        double *w = read_wide(&fx, name, t->numel, t->ndim, t->shape);
        memcpy(want_after + t->offset, w, t->numel * sizeof(double));
        free(w);
    }
    st_close(fx.f);
    if (fx.failed) { CHECK(0, fixture, "the fixture is incomplete (see above)"); goto done; }

    // label smoothing applies in training mode; dropout is 0 (its masks are kronformer's
    // own hash, which PyTorch cannot reproduce)
    m.training = 1;
    model_forward(&m, src, tin, NULL, B, S, T);   // without targets: m.logits are logits
    double worst = 0; const char *wn = "logits";
    compare(fixture, "logits", m.logits, logits, NULL, nlog, &worst, &wn);
    report(fixture, "logits", worst, wn);

    double wl = 0, wg = 0;
    double got_loss[3], got_norm[3];
    for (int step = 1; step <= 3; step++) {   // one step of `train fit` (run.c)
        model_zero_grad(&m);
        got_loss[step - 1] = model_forward(&m, src, tin, tout, B, S, T);
        model_backward(&m);
        double n = model_grad_norm(&m);
        got_norm[step - 1] = n;
        wl = fmax(wl, fabs(got_loss[step - 1] - loss[step - 1]) / fabs(loss[step - 1]));
        wg = fmax(wg, fabs(n - norm[step - 1]) / norm[step - 1]);
        if (step == 1) {
            memcpy(grad1, m.grad_mem, m.num_params * sizeof(real));
            worst = 0; wn = "";
            for (int k = 0; k < m.ntensors; k++) {
                const TensorInfo *t = &m.tensors[k];
                compare(fixture, t->name, m.grad_mem + t->offset, want_grad + t->offset, NULL,
                        t->numel, &worst, &wn);
            }
            report(fixture, "gradients", worst, wn);
        }
        model_clip_grads(&m, n, clip);
        model_adamw(&m, lr[step - 1], beta1, beta2, eps, wd, step);
    }
    if (!(wl <= TOL)) printf("  %s: losses %.17g %.17g %.17g, PyTorch %.17g %.17g %.17g\n", fixture,
                             got_loss[0], got_loss[1], got_loss[2], loss[0], loss[1], loss[2]);
    report(fixture, "loss of 3 steps", wl, "loss");
    if (!(wg <= TOL)) printf("  %s: gradient norms %.17g %.17g %.17g, PyTorch %.17g %.17g %.17g\n",
                             fixture, got_norm[0], got_norm[1], got_norm[2], norm[0], norm[1], norm[2]);
    report(fixture, "gradient norm of 3 steps", wg, "grad_norm");
    // AdamW divides each gradient by its own running size (m^ / sqrt(v^)), so an
    // entry's gradient error dg becomes an error of its step of about lr * dg / |g|: tiny
    // for most entries, up to the whole step (at most lr: |m^| / sqrt(v^) <= 1.003 for
    // t <= 3, by Cauchy-Schwarz) for entries whose gradient is as small as its error.
    // Those exist: the key biases' gradient is zero in exact arithmetic (q . b_k adds the
    // same amount to every score of a query, which softmax ignores), so theirs is
    // rounding noise, 1e-17 in double and 1e-8 in float against 1e-1 for the others, and
    // AdamW turns it into steps of up to lr in either direction (in PyTorch alike). So an
    // entry may differ by allow = sum_t lr_t * min(1.01, 4 dg_T / |g|) beyond TOL, with
    // dg_T the largest gradient error measured above in its tensor T (at most TOL times
    // its scale, checked) and 4 for the steps' gradients moving apart.
    double lrsum = (double)lr[0] + lr[1] + lr[2];
    double *allow = xcalloc(m.num_params, sizeof(double));
    int loose = 0;   // entries allowed more than a tenth of a step
    for (int k = 0; k < m.ntensors; k++) {
        const TensorInfo *t = &m.tensors[k];
        double dg = 0;
        for (size_t i = t->offset; i < t->offset + t->numel; i++)
            dg = fmax(dg, fabs((double)grad1[i] - want_grad[i]));
        for (size_t i = t->offset; i < t->offset + t->numel; i++) {
            double g = fabs(want_grad[i]);   // both exactly 0 (a row of an absent token): no step
            allow[i] = grad1[i] == 0 && g == 0 ? 0 : lrsum * (4 * dg >= 1.01 * g ? 1.01 : 4 * dg / g);
            loose += allow[i] > 0.1 * lrsum;
        }
    }
    worst = 0; wn = "";
    for (int k = 0; k < m.ntensors; k++) {
        const TensorInfo *t = &m.tensors[k];
        compare(fixture, t->name, m.param_mem + t->offset, want_after + t->offset, allow + t->offset,
                t->numel, &worst, &wn);
    }
    report(fixture, "weights after 3 AdamW steps", worst, wn);
    double raw = 0;
    for (size_t i = 0; i < m.num_params; i++) raw = fmax(raw, fabs((double)m.param_mem[i] - want_after[i]));
    printf("  measured %s: %d of %zu weights have a gradient near its rounding error "
           "(key biases); largest raw difference of a weight %.3g\n", fixture, loose, m.num_params, raw);
    free(allow);
done:
    free(src); free(tin); free(tout); free(logits); free(loss); free(norm); free(want_grad); free(want_after); free(grad1);
    model_free(&m);
}

int main(void) {
    for (size_t i = 0; i < sizeof FIXTURES / sizeof FIXTURES[0]; i++) run_fixture(FIXTURES[i]);
    CHECK_EXIT();
}
