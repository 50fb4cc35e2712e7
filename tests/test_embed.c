// test_embed.c: the dense, kron (word2ket), kronxs (word2ketXS) and tt (tensor-train)
// embeddings, built in
// double. Checks spec parsing (defaults, canonical strings, errors), parameter counts
// and tensor layout, hand-computed rows, a naive oracle for every row, finite-difference
// gradients of rows_backward and table_backward, the table's fast paths against the
// per-slot reference, init statistics, and that results do not depend on the number of
// OpenMP threads.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../embed_factor.h"
#include "check.h"

static Embed make(const char *spec, int V, int C) {
    Embed e;
    char err[KF_ERRLEN];
    if (embed_parse(&e, spec, V, C, err)) {
        printf("FAIL parse %s (V=%d, C=%d): %s\n", spec, V, C, err);
        exit(1);
    }
    return e;
}

static real *alloc(size_t n) {
    real *p = calloc(n ? n : 1, sizeof(real));
    if (!p) { printf("FAIL out of memory\n"); exit(1); }
    return p;
}

static void fill_normal(real *x, size_t n, uint64_t *rng) {
    for (size_t i = 0; i < n; i++) x[i] = (real)rng_normal(rng);
}

static double max_abs_diff(const real *a, const real *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

static double max_abs(const real *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i]));
    return m;
}

// tt's bond rank r_j: 1 at both ends, else R.
static int tt_r(const Embed *e, int j) { return j == 0 || j == e->n ? 1 : e->r; }

// Reals of kronxs factor j, (R, t_j, q_j), or of tt core j, (r_j, t_j, q_j, r_{j+1}).
static size_t factor_size(const Embed *e, int j) {
    size_t tq = (size_t)e->t[j] * e->q[j];
    return e->kind == EMBED_TT ? tt_r(e, j) * tq * tt_r(e, j + 1) : e->r * tq;
}

// ----------------------------------------------------------------------------
// A naive oracle written from the documented layout: token w sits in slot s (w, or
// its rank with order=freq); a slot below head is its own dense row; otherwise
// g = s - head and row(g)[i] = sum_k prod_j f_{k,j}[i_j], with (i_0..i_{N-1}) the
// digits of i over q and, for kronxs, the digits of g over t (the last fastest; diag:
// digit j is the sum of the radix digits j..N-1 mod t_j); tt: row(g)[i] is the matrix
// product prod_j G_j[:, w_j, i_j, :]; then the norm, in double.
static void oracle_row(real *row, const real *params, const Embed *e, int w) {
    if (e->kind == EMBED_DENSE) {
        for (int c = 0; c < e->C; c++) row[c] = params[(size_t)w * e->C + c];
        return;
    }
    int s = e->slot ? e->slot[w] : w;
    if (s < e->head) {
        for (int c = 0; c < e->C; c++) row[c] = params[(size_t)s * e->C + c];
        return;
    }
    const int g = s - e->head;
    const real *f = params + (size_t)e->head * e->C;   // the factors follow the head
    int Q = 0, qoff[EMBED_MAX_ORDER], wd[EMBED_MAX_ORDER] = {0};
    size_t toff[EMBED_MAX_ORDER] = {0}, nf = 0;
    for (int j = 0; j < e->n; j++) {
        qoff[j] = Q;
        Q += e->q[j];
        if (j) toff[j] = toff[j - 1] + factor_size(e, j - 1);
        nf += factor_size(e, j);
    }
    if (e->kind == EMBED_KRON) nf = (size_t)(e->V - e->head) * e->r * Q;
    for (int j = e->n - 1, x = g; j >= 0 && e->kind != EMBED_KRON; j--) {
        wd[j] = x % e->t[j];
        x /= e->t[j];
    }
    if (e->layout == EMBED_LAYOUT_DIAG) {
        int a[EMBED_MAX_ORDER];
        memcpy(a, wd, sizeof a);
        for (int j = 0; j < e->n; j++) {
            int sum = 0;
            for (int i = j; i < e->n; i++) sum += a[i];
            wd[j] = sum % e->t[j];
        }
    }
    double x[4096];
    for (int i = 0; i < e->C; i++) {
        int id[EMBED_MAX_ORDER];
        for (int j = e->n - 1, y = i; j >= 0; j--) {
            id[j] = y % e->q[j];
            y /= e->q[j];
        }
        double sum = 0, v[64] = {1}, vn[64];        // tt: v = prod_{i<j} G_i[:, w_i, id_i, :]
        for (int j = 0; j < e->n && e->kind == EMBED_TT; j++) {
            for (int b = 0; b < tt_r(e, j + 1); b++) {
                vn[b] = 0;
                for (int k = 0; k < tt_r(e, j); k++)
                    vn[b] += v[k] * f[toff[j] + (((size_t)k * e->t[j] + wd[j]) * e->q[j] + id[j]) *
                                                    tt_r(e, j + 1) + b];
            }
            memcpy(v, vn, sizeof v);
            sum = v[0];
        }
        for (int k = 0; k < e->r && e->kind != EMBED_TT; k++) {
            double prod = 1;
            for (int j = 0; j < e->n; j++) {
                size_t at = e->kind == EMBED_KRON
                    ? ((size_t)g * e->r + k) * Q + qoff[j] + id[j]
                    : toff[j] + ((size_t)k * e->t[j] + wd[j]) * e->q[j] + id[j];
                prod *= f[at];
            }
            sum += prod;
        }
        x[i] = sum;
    }
    double mu = 0, var = 0;
    for (int i = 0; i < e->C && e->norm == EMBED_NORM_LN; i++) mu += x[i] / e->C;
    for (int i = 0; i < e->C; i++) var += (x[i] - mu) * (x[i] - mu) / e->C;
    const real *gain = f + nf, *bias = gain + e->C;
    for (int i = 0; i < e->C; i++)
        row[i] = (real)(e->norm == EMBED_NORM_NONE ? x[i]
                        : gain[i] * (x[i] - mu) / sqrt(var + 1e-5) +
                          (e->norm == EMBED_NORM_LN ? bias[i] : 0));
}

// order=freq: slots from fixed counts, with ties (count w mod 5, by 7s)
static int slot_buf[4096], token_buf[4096];
static void set_test_order(Embed *e) {
    if (e->order != EMBED_ORDER_FREQ) return;
    double counts[4096];
    for (int w = 0; w < e->V; w++) counts[w] = (w * 7) % 5;
    embed_set_order(e, slot_buf, token_buf, counts);
}

// ----------------------------------------------------------------------------
// Spec parsing

static void test_defaults(void) {
    // the balanced rule: factors differ by at most one, larger first, product the
    // smallest such that reaches the target
    struct { int target, n; const char *q; } cases[] = {
        {256, 2, "16x16"}, {256, 3, "7x7x6"}, {256, 4, "4x4x4x4"}, {64, 4, "3x3x3x3"},
        {512, 3, "8x8x8"}, {12, 2, "4x3"}, {10, 3, "3x2x2"}, {1000, 1, "1000"},
        {5, 8, "2x2x2x1x1x1x1x1"}, {1, 2, "1x1"}, {8000, 2, "90x89"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char spec[64], want[128], got[128], name[96];
        snprintf(spec, sizeof spec, "kron:n=%d", cases[i].n);
        Embed e = make(spec, 50, cases[i].target);
        snprintf(want, sizeof want, "kron:n=%d,r=1,q=%s,head=0,order=id,norm=ln,lr=3",
                 cases[i].n, cases[i].q);
        embed_spec_string(&e, got, sizeof got);
        snprintf(name, sizeof name, "default q for C=%d n=%d", cases[i].target, cases[i].n);
        CHECK(!strcmp(got, want), name, "got %s, want %s", got, want);
    }
    char got[128];
    struct { const char *spec; int V, C; const char *want, *name; } defaults[] = {
        {"kronxs:n=2,r=8", 8000, 256,
         "kronxs:n=2,r=8,q=16x16,t=90x89,head=0,order=id,layout=radix,norm=ln,lr=3",
         "default t over V"},
        {"kron", 100, 256, "kron:n=2,r=1,q=16x16,head=0,order=id,norm=ln,lr=3",
         "kron defaults n=2 r=1"},
        {"kronxs", 100, 256,
         "kronxs:n=2,r=1,q=16x16,t=10x10,head=0,order=id,layout=radix,norm=ln,lr=3",
         "kronxs defaults"},
        {"kronxs:t=10x10x10", 1000, 256,
         "kronxs:n=3,r=1,q=7x7x6,t=10x10x10,head=0,order=id,layout=radix,norm=ln,lr=3",
         "n from t"},
        {"kron:r=3,q=8x32", 100, 256, "kron:n=2,r=3,q=8x32,head=0,order=id,norm=ln,lr=3",
         "non-uniform q kept"},
        {"kronxs:r=2,head=1000,norm=ln,order=freq,layout=diag,lr=2.5", 9100, 256,
         "kronxs:n=2,r=2,q=16x16,t=90x90,head=1000,order=freq,layout=diag,norm=ln,lr=2.5",
         "options; t over V - head"},
        {"tt", 8000, 256,
         "tt:n=3,r=1,q=7x7x6,t=20x20x20,head=0,order=id,layout=radix,norm=ln,lr=3",
         "tt defaults n=3"},
        {"tt:r=16,head=200,order=freq,layout=diag,norm=rms,lr=2", 8000, 256,
         "tt:n=3,r=16,q=7x7x6,t=20x20x20,head=200,order=freq,layout=diag,norm=rms,lr=2",
         "tt options; t over V - head"},
        {"tt:q=16x16", 100, 256,
         "tt:n=2,r=1,q=16x16,t=10x10,head=0,order=id,layout=radix,norm=ln,lr=3",
         "tt n from q"},
    };
    Embed e;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        e = make(defaults[i].spec, defaults[i].V, defaults[i].C);
        embed_spec_string(&e, got, sizeof got);
        CHECK(!strcmp(got, defaults[i].want), defaults[i].name, "got %s", got);
    }
    e = make("dense", 100, 256);
    embed_spec_string(&e, got, sizeof got);
    CHECK(!strcmp(got, "dense") && e.n == 1 && e.r == 1, "dense spec", "got %s", got);
    CHECK(fabs(e.init_std - 1 / 16.0) < 1e-15, "init_std = C^-1/2", "got %g", e.init_std);

    // the canonical string parses back to the same embedding
    const char *specs[] = {"dense", "kron:q=3x4", "kronxs:n=3,r=2", "kron:n=4,r=5",
                           "kronxs:r=2,q=3x4,t=4x3", "kron:head=3,norm=rms,lr=0.5",
                           "kronxs:head=2,norm=ln,order=freq,layout=diag,lr=3",
                           "tt:r=3,head=1,order=freq,layout=diag,norm=none,lr=0.5",
                           "tt:n=2,q=3x4"};
    int ok = 1;
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        Embed a = make(specs[i], 10, 12), b;
        char s[128], err[KF_ERRLEN];
        embed_spec_string(&a, s, sizeof s);
        ok &= !embed_parse(&b, s, 10, 12, err) && !memcmp(&a, &b, sizeof a);
    }
    CHECK(ok, "spec string round-trips", "a canonical spec parsed differently");

    // a spec as typed before the options meant their old defaults (lr=1 among them)
    char legacy[160];
    embed_legacy_spec(legacy, sizeof legacy, "kronxs:n=2,r=2");
    e = make(legacy, 100, 256);
    embed_spec_string(&e, got, sizeof got);
    CHECK(!strcmp(got, "kronxs:n=2,r=2,q=16x16,t=10x10,head=0,order=id,layout=radix,"
                  "norm=none,lr=1"), "legacy spec: the old defaults", "got %s", got);
    embed_legacy_spec(legacy, sizeof legacy, got);
    CHECK(!strcmp(legacy, got), "an expanded spec is not legacy", "got %s", legacy);
    embed_legacy_spec(legacy, sizeof legacy, "kron");
    CHECK(!strcmp(legacy, "kron:n=2,head=0,order=id,norm=none,lr=1"), "legacy bare kron",
          "got %s", legacy);
}

static void test_errors(void) {
    struct { const char *spec; int V, C; const char *msg; } cases[] = {
        {"krom", 100, 256, "unknown embedding kind 'krom'"},
        {"", 100, 256, "empty embedding spec"},
        {"dense:n=2", 100, 256, "dense takes no options"},
        {"kron:x=2", 100, 256, "unknown key 'x'"},
        {"kron:t=10x10", 100, 256, "unknown key 't'"},
        {"kron:q=8x16", 100, 256,
         "q=8x16 gives 128 < d_model 256; choose factors whose product is at least 256"},
        {"kronxs:t=10x9", 100, 256,
         "t=10x9 gives 90 < vocabulary 100; choose factors whose product is at least 100"},
        {"kron:n=3,q=16x16", 100, 256, "n=3 but q=16x16 has 2 factors"},
        {"kronxs:n=2,t=5x5x4", 100, 256, "n=2 but t=5x5x4 has 3 factors"},
        {"kronxs:q=16x16,t=5x5x4", 100, 256, "n=2 but t=5x5x4 has 3 factors"},
        {"kron:r=0", 100, 256, "r=0 is not a positive integer"},
        {"kron:r=-1", 100, 256, "r=-1 is not a positive integer"},
        {"kron:n=0", 100, 256, "n=0 is not a positive integer"},
        {"kron:n=9", 100, 256, "n=9 is out of range"},
        {"kron:n=2,n=2", 100, 256, "key 'n' given twice"},
        {"kron:n", 100, 256, "expected key=value"},
        {"kron:n=2,", 100, 256, "expected key=value"},
        {"kron:r=two", 100, 256, "r=two is not a positive integer"},
        {"kron:q=8x", 100, 256, "q=8x is not a list of positive integers"},
        {"kron:q=2x2x2x2x2x2x2x2x2", 100, 256, "has more than 8 factors"},
        {"kron:q=512x2", 100, 256, "has a factor above d_model 256"},
        {"kronxs:t=200x2", 100, 256, "has a factor above vocabulary 100"},
        {"kron:r=100000000", 100000, 256, "parameters; lower r"},
        {"dense", 0, 256, "positive vocabulary and width"},
        {"kron:layout=diag", 100, 256, "unknown key 'layout'"},
        {"kronxs:norm=bn", 100, 256, "norm=bn is not known; use norm=none|rms|ln"},
        {"kronxs:order=rank", 100, 256, "order=rank is not known; use order=id|freq"},
        {"kronxs:layout=x", 100, 256, "layout=x is not known; use layout=radix|diag"},
        {"kronxs:norm=ln,norm=rms", 100, 256, "key 'norm' given twice"},
        {"kronxs:lr=0", 100, 256, "lr=0 is not a positive number"},
        {"kronxs:lr=fast", 100, 256, "lr=fast is not a positive number"},
        {"kronxs:head=-1", 100, 256, "head=-1 is not a count of tokens"},
        {"kronxs:head=100", 100, 256, "head=100 leaves no token to factorize"},
        {"kronxs:head=10,t=9x9", 100, 256, "t=9x9 gives 81 < factorized tokens V-head 90"},
        {"tt:x=1", 100, 256, "unknown key 'x' in embedding spec 'tt:x=1'; tt takes n, r, q, t"},
        {"tt:r=0", 100, 256, "r=0 is not a positive integer"},
        {"tt:t=4x4x4", 100, 256, "t=4x4x4 gives 64 < vocabulary 100"},
        {"tt:q=8x8x2", 100, 256, "q=8x8x2 gives 128 < d_model 256"},
        {"tt:n=2,t=5x5x4", 100, 256, "n=2 but t=5x5x4 has 3 factors"},
        {"tt:head=100", 100, 256, "head=100 leaves no token to factorize"},
        {"tt:layout=snake", 100, 256, "layout=snake is not known; use layout=radix|diag"},
        {"tt:r=70000,n=3,q=256x1x1,t=100x1x1", 100, 256, "parameters; lower r"},
        {"tt:n=9", 100, 256, "n=9 is out of range"},
        {"tensor", 100, 256, "use dense, kron, kronxs or tt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Embed e;
        char err[KF_ERRLEN] = "", name[96];
        int rc = embed_parse(&e, cases[i].spec, cases[i].V, cases[i].C, err);
        snprintf(name, sizeof name, "spec error '%s'", cases[i].spec);
        CHECK(rc != 0 && strstr(err, cases[i].msg) && !strchr(err, '\n'), name,
              "rc %d, message '%s', want '%s'", rc, err, cases[i].msg);
    }
    Embed e;
    char err[KF_ERRLEN];
    CHECK(embed_parse(&e, NULL, 10, 10, err) != 0, "NULL spec is an error", "accepted");
}

// ----------------------------------------------------------------------------
// Layout

static void test_counts(void) {
    struct { const char *spec; int V, C; size_t want; int ntensors; } cases[] = {
        {"dense", 1000, 64, 1000 * 64, 1},
        {"kron:n=2,r=3,q=8x8,norm=none", 1000, 64, 1000 * 3 * 16, 1},
        {"kron:n=3,r=2,q=4x4x5,norm=none", 1000, 64, 1000 * 2 * 13, 1},
        {"kronxs:n=2,r=4,q=8x8,t=40x25,norm=none", 1000, 64, 4 * (40 * 8 + 25 * 8), 2},
        {"kronxs:n=3,r=2,q=4x4x4,t=10x10x10,norm=none", 1000, 64, 2 * 3 * 40, 3},
        {"kron:n=2,r=3,q=8x8,head=100,norm=ln", 1000, 64, 100 * 64 + 900 * 3 * 16 + 2 * 64, 4},
        {"kronxs:n=2,r=4,q=8x8,t=30x30,head=100,norm=rms", 1000, 64,
         100 * 64 + 4 * (30 * 8 + 30 * 8) + 64, 4},
        // cores (1, 10, 4, 4), (4, 10, 4, 4), (4, 10, 4, 1)
        {"tt:n=3,r=4,q=4x4x4,t=10x10x10,norm=none", 1000, 64, 160 + 640 + 160, 3},
        {"tt:n=3,r=4,q=4x4x4,t=10x10x9,head=100,norm=ln", 1000, 64,
         100 * 64 + 160 + 640 + 4 * 9 * 4 + 2 * 64, 6},
        {"tt:n=2,r=3,q=8x8,t=40x25,norm=none", 1000, 64, 40 * 8 * 3 + 3 * 25 * 8, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Embed e = make(cases[i].spec, cases[i].V, cases[i].C);
        char name[96];
        snprintf(name, sizeof name, "num_params %s", cases[i].spec);
        CHECK(e.num_params == cases[i].want, name, "got %zu, want %zu", e.num_params,
              cases[i].want);
        // tensors tile the block in order, numel = product of the shape
        int nt = embed_num_tensors(&e), ok = nt == cases[i].ntensors;
        size_t next = 0;
        for (int k = 0; k < nt; k++) {
            char tn[64];
            int ndim, shape[4], decay;
            size_t off, numel, prod = 1;
            embed_tensor_info(&e, k, tn, sizeof tn, &ndim, shape, &off, &numel, &decay);
            for (int d = 0; d < ndim; d++) prod *= (size_t)shape[d];
            ok &= off == next && numel == prod;
            next = off + numel;
        }
        snprintf(name, sizeof name, "tensors tile %s", cases[i].spec);
        CHECK(ok && next == e.num_params, name, "%d tensors end at %zu of %zu", nt, next,
              e.num_params);
    }
    Embed e = make("kronxs:n=2,r=4,q=8x8,t=40x25", 1000, 64);
    char tn[64];
    int ndim, s[4], decay;
    size_t off, numel;
    embed_tensor_info(&e, 1, tn, sizeof tn, &ndim, s, &off, &numel, &decay);
    CHECK(!strcmp(tn, "embed.kronxs.1") && ndim == 3 && s[0] == 4 && s[1] == 25 &&
          s[2] == 8 && off == 4 * 40 * 8, "kronxs tensor 1 name/shape",
          "%s ndim %d (%d, %d, %d) at %zu", tn, ndim, s[0], s[1], s[2], off);
    e = make("kron:n=3,r=2,q=4x4x5", 1000, 64);
    embed_tensor_info(&e, 0, tn, sizeof tn, &ndim, s, &off, &numel, &decay);
    CHECK(!strcmp(tn, "embed.kron") && ndim == 3 && s[0] == 1000 && s[1] == 2 &&
          s[2] == 13, "kron tensor name/shape", "%s (%d, %d, %d)", tn, s[0], s[1], s[2]);
    e = make("dense", 1000, 64);
    embed_tensor_info(&e, 0, tn, sizeof tn, &ndim, s, &off, &numel, &decay);
    CHECK(!strcmp(tn, "embed.weight") && ndim == 2 && s[0] == 1000 && s[1] == 64,
          "dense tensor name/shape", "%s (%d, %d)", tn, s[0], s[1]);
    e = make("kronxs:n=2,r=4,q=8x8,t=30x30,head=100,norm=ln", 1000, 64);
    embed_tensor_info(&e, 0, tn, sizeof tn, &ndim, s, &off, &numel, &decay);
    int ok = !strcmp(tn, "embed.head") && ndim == 2 && s[0] == 100 && s[1] == 64 && off == 0 &&
             decay;
    embed_tensor_info(&e, 1, tn, sizeof tn, &ndim, s, &off, &numel, &decay);
    ok &= !strcmp(tn, "embed.kronxs.0") && off == 6400 && decay;
    embed_tensor_info(&e, 3, tn, sizeof tn, &ndim, s, &off, &numel, &decay);
    ok &= !strcmp(tn, "embed.norm.weight") && ndim == 1 && s[0] == 64 && !decay &&
          off == 6400 + 4 * 480;
    embed_tensor_info(&e, 4, tn, sizeof tn, &ndim, s, &off, &numel, &decay);
    ok &= !strcmp(tn, "embed.norm.bias") && off == 6400 + 4 * 480 + 64 && !decay;
    CHECK(ok && embed_num_tensors(&e) == 5, "head, factors, norm tensors: names, offsets, "
          "no decay on the norm", "tensor %s at %zu", tn, off);
    e = make("tt:n=3,r=4,q=4x4x4,t=10x10x9,head=100", 1000, 64);
    embed_tensor_info(&e, 2, tn, sizeof tn, &ndim, s, &off, &numel, &decay);
    CHECK(!strcmp(tn, "embed.tt.1") && ndim == 4 && s[0] == 4 && s[1] == 10 && s[2] == 4 &&
          s[3] == 4 && off == 6400 + 160 && numel == 640 && decay, "tt tensor 1 name/shape",
          "%s ndim %d (%d, %d, %d, %d) at %zu", tn, ndim, s[0], s[1], s[2], s[3], off);
}

// ----------------------------------------------------------------------------
// Hand-computed rows

static void test_hand(void) {
    // kronxs n=2 r=1, t=2x2, q=2x2: F1 = [[1,2],[3,4]], F2 = [[5,6],[7,8]]. Token 2 has
    // digits (1, 0): F1[1] (x) F2[0] = [3,4] (x) [5,6] = [15, 18, 20, 24]; token 1 has
    // (0, 1): [1,2] (x) [7,8] = [7, 8, 14, 16]. V = 3 < 4 leaves grid row 3 unused.
    Embed e = make("kronxs:n=2,r=1,q=2x2,t=2x2,norm=none", 3, 4);
    real params[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[8], table[12];
    int tokens[2] = {2, 1};
    embed_rows_forward(out, tokens, params, &e, 2, 1);
    real want[8] = {15, 18, 20, 24, 7, 8, 14, 16};
    CHECK(max_abs_diff(out, want, 8) == 0, "kronxs 2x2 rows by hand",
          "got %g %g %g %g | %g %g %g %g", out[0], out[1], out[2], out[3], out[4], out[5],
          out[6], out[7]);
    const real *tab = embed_table_forward(table, params, &e);
    real want0[4] = {5, 6, 10, 12};   // token 0: [1,2] (x) [5,6]
    CHECK(tab == table && max_abs_diff(tab, want0, 4) == 0 &&
          max_abs_diff(tab + 4, want + 4, 4) == 0 && max_abs_diff(tab + 8, want, 4) == 0,
          "kronxs 2x2 table by hand", "row 0: %g %g %g %g", tab[0], tab[1], tab[2], tab[3]);

    // the same factors with C = 3: the row is cut to its first 3 entries
    e = make("kronxs:n=2,r=1,q=2x2,t=2x2,norm=none", 4, 3);
    embed_rows_forward(out, tokens, params, &e, 1, 1);
    CHECK(out[0] == 15 && out[1] == 18 && out[2] == 20, "kronxs cut to C=3 by hand",
          "got %g %g %g", out[0], out[1], out[2]);

    // kron n=2 r=2, q=2x3, C=5, scale 2, token 1: a=[1,2], b=[1,0,-1], c=[0,1],
    // d=[2,3,4]. a(x)b = [1,0,-1,2,0,-2], c(x)d = [0,0,0,2,3,4], sum [1,0,-1,4,3,2],
    // cut to 5 and doubled: [2, 0, -2, 8, 6].
    e = make("kron:n=2,r=2,q=2x3,norm=none", 2, 5);
    real kp[20] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9,       // token 0: not used
                   1, 2, 1, 0, -1, 0, 1, 2, 3, 4};     // token 1: [a | b], [c | d]
    int one = 1;
    embed_rows_forward(out, &one, kp, &e, 1, 2);
    real wantk[5] = {2, 0, -2, 8, 6};
    CHECK(max_abs_diff(out, wantk, 5) == 0, "kron rank-2 row by hand",
          "got %g %g %g %g %g", out[0], out[1], out[2], out[3], out[4]);

    // its gradient by hand for G = [1,0,0,0,0] * (scale 2): only entry 0 = a0 b0 + c0 d0
    // depends on a0, b0, c0, d0: da0 = 2 b0 = 2, db0 = 2 a0 = 2, dc0 = 2 d0 = 4, dd0 = 0
    real g[20] = {0}, G[5] = {1, 0, 0, 0, 0};
    embed_rows_backward(g, G, &one, kp, &e, 1, 2);
    real wantg[20] = {0};
    wantg[10] = 2;
    wantg[12] = 2;
    wantg[15] = 4;
    CHECK(max_abs_diff(g, wantg, 20) == 0, "kron rank-2 gradient by hand",
          "got a0 %g b0 %g c0 %g d0 %g", g[10], g[12], g[15], g[17]);

    // layouts, C = 1, t = 3x3: F0 = [1, 2, 3], F1 = [10, 20, 30]. radix: slot g has
    // digits (g / 3, g % 3); diag: ((g / 3 + g % 3) % 3, g % 3). Slots 1 and 4:
    // radix (0,1) -> 20, (1,1) -> 40; diag (1,1) -> 40, (2,1) -> 60; and slots 0..2 of
    // diag use rows (0,0), (1,1), (2,2): no factor row shared.
    real lp[6] = {1, 2, 3, 10, 20, 30}, lo[3];
    int lt[3] = {1, 4, 2};
    e = make("kronxs:n=2,r=1,q=1x1,t=3x3,norm=none", 9, 1);
    embed_rows_forward(lo, lt, lp, &e, 2, 1);
    CHECK(lo[0] == 20 && lo[1] == 40, "radix layout by hand", "got %g %g", lo[0], lo[1]);
    e = make("kronxs:n=2,r=1,q=1x1,t=3x3,layout=diag,norm=none", 9, 1);
    embed_rows_forward(lo, lt, lp, &e, 3, 1);
    CHECK(lo[0] == 40 && lo[1] == 60 && lo[2] == 90, "diag layout by hand",
          "got %g %g %g", lo[0], lo[1], lo[2]);

    // tt n=2 r=2, t=1x2, q=2x1, C = 2: G_0 (1, 1, 2, 2) = [[1, 2], [3, 4]] (rows i),
    // G_1 (2, 2, 1, 1) = [[5, 6], [7, 8]] (rows k, columns w). Token 1 has digits (0, 1):
    // row[i] = G_0[0, 0, i, :] . G_1[:, 1, 0, 0] = [1,2].[6,8], [3,4].[6,8] = [22, 50].
    // For G = [1, 0]: dG_0[0, 0, 0, :] = [6, 8], dG_1[:, 1, 0, 0] = [1, 2].
    e = make("tt:n=2,r=2,q=2x1,t=1x2,norm=none", 2, 2);
    real tp[8] = {1, 2, 3, 4, 5, 6, 7, 8}, to[2], tg[8] = {0}, tG[2] = {1, 0};
    embed_rows_forward(to, &one, tp, &e, 1, 1);
    CHECK(to[0] == 22 && to[1] == 50, "tt 2-core row by hand", "got %g %g", to[0], to[1]);
    embed_rows_backward(tg, tG, &one, tp, &e, 1, 1);
    real wanttg[8] = {6, 8, 0, 0, 0, 1, 0, 2};
    CHECK(max_abs_diff(tg, wanttg, 8) == 0, "tt 2-core gradient by hand",
          "got %g %g %g %g %g %g %g %g", tg[0], tg[1], tg[2], tg[3], tg[4], tg[5], tg[6], tg[7]);

    // order=freq: counts {5, 9, 9, 1} rank tokens 1, 2 (tie by id), 0, 3
    double counts[4] = {5, 9, 9, 1};
    int slot[4], token[4];
    e = make("kron:order=freq", 4, 4);
    embed_set_order(&e, slot, token, counts);
    CHECK(slot[0] == 2 && slot[1] == 0 && slot[2] == 1 && slot[3] == 3 && token[0] == 1 &&
          token[2] == 0, "order=freq slots by hand", "slots %d %d %d %d", slot[0], slot[1],
          slot[2], slot[3]);
    int bad[4] = {0, 1, 1, 3};
    CHECK(embed_use_slots(&e, bad, token) != 0, "a slot table that is no permutation is "
          "refused", "accepted");

    // head=1, C = 2, norm=rms, t = 2x1 (V - head = 2), q = 2x1: slot 0 is the head row
    // [7, -1]; slot 2 is g = 1, digits (1, 0): F0[1] = [3, 4] (x) F1[0] = [2] -> [6, 8],
    // RMS sqrt(50 + eps), times gain [1, 10]: [6, 80] / sqrt(50 + eps).
    e = make("kronxs:n=2,r=1,q=2x1,t=2x1,head=1,norm=rms", 3, 2);
    real hp[9] = {7, -1,          // head
                  0, 0, 3, 4,     // F0 (2 x 2)
                  2,              // F1 (1 x 1)
                  1, 10}, ho[4];  // gain
    int ht[2] = {0, 2};
    embed_rows_forward(ho, ht, hp, &e, 2, 1);
    const double rms = sqrt(50 + 1e-5);
    CHECK(e.num_params == 9 && e.norm_off == 7 && ho[0] == 7 && ho[1] == -1 &&
          fabs(ho[2] - 6 / rms) < 1e-12 && fabs(ho[3] - 80 / rms) < 1e-12,
          "head row and rms row by hand",
          "got %g %g %g %g", ho[0], ho[1], ho[2], ho[3]);
}

// kron:n=1,r=1 is a dense table whose rows are the kron parameters
static void test_n1_is_dense(void) {
    const int V = 17, C = 9, N = 6;
    Embed k = make("kron:n=1,r=1,norm=none", V, C), d = make("dense", V, C);
    uint64_t rng = 5;
    real *p = alloc(k.num_params), *a = alloc((size_t)N * C), *b = alloc((size_t)N * C);
    real *ta = alloc((size_t)V * C), *ga = alloc(k.num_params), *gb = alloc(k.num_params);
    fill_normal(p, k.num_params, &rng);
    int tokens[6] = {3, 16, 0, 3, 9, 3};
    embed_rows_forward(a, tokens, p, &k, N, (real)1.5);
    embed_rows_forward(b, tokens, p, &d, N, (real)1.5);
    const real *tb = embed_table_forward(NULL, p, &d);
    embed_table_forward(ta, p, &k);
    CHECK(k.num_params == d.num_params && max_abs_diff(a, b, (size_t)N * C) == 0 &&
          tb == p && max_abs_diff(ta, tb, (size_t)V * C) == 0, "kron n=1 r=1 is dense",
          "rows differ by %g", max_abs_diff(a, b, (size_t)N * C));
    fill_normal(a, (size_t)N * C, &rng);
    embed_rows_backward(ga, a, tokens, p, &k, N, (real)1.5);
    embed_rows_backward(gb, a, tokens, p, &d, N, (real)1.5);
    CHECK(max_abs_diff(ga, gb, k.num_params) < 1e-15, "kron n=1 r=1 gradient is dense",
          "differ by %g", max_abs_diff(ga, gb, k.num_params));
    free(p); free(a); free(b); free(ta); free(ga); free(gb);
}

// ALBERT's low-rank table A B (A: V x R, B: R x C) is word2ketXS with t = V x 1 and
// q = 1 x C: row(w) = sum_k F_{k,0}[w, :] (x) F_{k,1}[0, :] = sum_k A[w, k] B[k, :].
static void test_low_rank(void) {
    const int V = 13, C = 7, R = 3, N = 4;
    Embed e = make("kronxs:n=2,r=3,t=13x1,q=1x7,norm=none", V, C);
    uint64_t rng = 9;
    real *p = alloc(e.num_params), *out = alloc((size_t)N * C);
    fill_normal(p, e.num_params, &rng);
    const real *A = p, *B = p + R * V;   // embed.kronxs.0 (R, V, 1), embed.kronxs.1 (R, 1, C)
    int tokens[4] = {0, 12, 5, 5};
    embed_rows_forward(out, tokens, p, &e, N, 1);
    double worst = 0;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            double want = 0;
            for (int k = 0; k < R; k++) want += A[k * V + tokens[i]] * B[k * C + c];
            worst = fmax(worst, fabs(out[i * C + c] - want));
        }
    CHECK(e.num_params == (size_t)R * (V + C) && worst < 1e-12,
          "low rank: kronxs t=Vx1, q=1xC is A B", "params %zu, worst %g", e.num_params, worst);
    free(p); free(out);
}

// A tensor train of order 2 is word2ketXS: row(w)[i_0 q_1 + i_1] =
// sum_k G_0[0, w_0, i_0, k] G_1[k, w_1, i_1, 0] = sum_k F_{k,0}[w_0, i_0] F_{k,1}[w_1, i_1].
// So with G_0 (1, t_0, q_0, R) the transpose of kronxs's factor 0 (R, t_0, q_0), and
// G_1 (R, t_1, q_1, 1) its factor 1 as it is, tables and gradients agree (head, ln and
// the freq order included, as the blocks are laid out alike around the factors).
static void test_tt2_is_kronxs(void) {
    const int V = 23, C = 11;
    Embed x = make("kronxs:n=2,r=3,q=3x4,t=4x5,head=3,order=freq,layout=diag", V, C);
    Embed t = make("tt:n=2,r=3,q=3x4,t=4x5,head=3,order=freq,layout=diag", V, C);
    set_test_order(&x);
    set_test_order(&t);
    const size_t P = x.num_params, VC = (size_t)V * C;
    const size_t f0 = x.factor_off, n0 = (size_t)3 * 4 * 3;     // factor 0: R t_0 q_0
    uint64_t rng = 77;
    real *px = alloc(P), *pt = alloc(P), *ta = alloc(VC), *tb = alloc(VC), *W = alloc(VC);
    real *gx = alloc(P), *gt = alloc(P), *gmap = alloc(P);
    fill_normal(px, P, &rng);
    fill_normal(W, VC, &rng);
    memcpy(pt, px, sizeof(real) * P);
    for (int k = 0; k < 3; k++)            // F_{k,0}[a, b] -> G_0[0, a, b, k]
        for (int ab = 0; ab < 12; ab++) pt[f0 + (size_t)ab * 3 + k] = px[f0 + (size_t)k * 12 + ab];
    embed_table_forward(ta, px, &x);
    embed_table_forward(tb, pt, &t);
    embed_table_backward(gx, W, px, &x);
    embed_table_backward(gt, W, pt, &t);
    memcpy(gmap, gt, sizeof(real) * P);
    for (int k = 0; k < 3; k++)
        for (int ab = 0; ab < 12; ab++) gmap[f0 + (size_t)k * 12 + ab] = gt[f0 + (size_t)ab * 3 + k];
    CHECK(t.num_params == P && n0 == 36 && max_abs_diff(ta, tb, VC) < 1e-12 &&
          max_abs_diff(gx, gmap, P) < 1e-12, "tt n=2 equals kronxs with matching cores",
          "params %zu vs %zu, table diff %g, grad diff %g", t.num_params, P,
          max_abs_diff(ta, tb, VC), max_abs_diff(gx, gmap, P));
    free(px); free(pt); free(ta); free(tb); free(W); free(gx); free(gt); free(gmap);
}

// ----------------------------------------------------------------------------
// Oracle rows and finite-difference gradients

typedef struct { const char *spec; int V, C; } Case;

static const Case cases[] = {
    {"kron:n=1,r=1", 10, 12},
    {"kron:n=1,r=3", 10, 10},
    {"kron:n=2,r=1,q=3x4", 10, 12},
    {"kron:n=2,r=3,q=3x4", 10, 10},             // prod q = 12 > C = 10
    {"kron:n=3,r=3,q=2x3x2", 10, 12},
    {"kron:n=3,r=1,q=2x3x2", 10, 10},
    {"kronxs:n=1,r=1,q=12,t=10", 10, 12},
    {"kronxs:n=1,r=3", 10, 10},
    {"kronxs:n=2,r=1,q=3x4,t=4x3", 12, 12},     // exact grid
    {"kronxs:n=2,r=3,q=3x4,t=4x3", 10, 10},     // prod t > V, prod q > C
    {"kronxs:n=3,r=3,q=2x3x2,t=2x3x2", 10, 12},
    {"kronxs:n=3,r=1,q=2x2x3,t=3x2x2", 12, 10},
    {"kronxs:n=3,r=3,q=2x3x2,t=3x2x2", 11, 12},
    {"dense", 10, 12},
    {"kronxs:n=2,r=2,q=3x4,t=4x3,layout=diag", 10, 12},
    {"kronxs:n=3,r=2,q=2x3x2,t=3x2x2,layout=diag,order=freq", 12, 10},
    {"kronxs:n=2,r=2,q=3x4,head=3,norm=ln", 10, 12},
    {"kronxs:n=2,r=3,q=3x4,head=2,norm=rms,order=freq,layout=diag", 10, 10},
    {"kron:n=2,r=2,q=3x4,head=2,norm=rms", 10, 12},
    {"kron:n=3,r=1,q=2x3x2,order=freq,norm=ln", 10, 10},
    {"kron:n=2,r=1,q=3x4,head=4,order=freq", 10, 12},
    {"kronxs:n=2,r=3,q=3x4,t=4x3,norm=none", 10, 10},   // the plain product rows
    {"kron:n=3,r=3,q=2x3x2,norm=none", 10, 12},
    {"kronxs:n=2,r=2,q=1x12,t=10x1,norm=none", 10, 12}, // low rank, V x 2 times 2 x C
    {"tt:n=3,r=2,q=2x3x2,t=2x3x2,norm=none", 10, 12},   // ragged: prod t > V
    {"tt:n=3,r=3,q=2x3x2,t=3x2x2,norm=none", 11, 10},   // cut: prod q > C
    {"tt:n=3,r=2,q=2x3x2,t=2x2x2,head=3,order=freq", 10, 10},   // ln by default
    {"tt:n=3,r=2,q=3x2x2,t=3x2x2,head=2,order=freq,layout=diag,norm=rms", 12, 11},
    {"tt:n=2,r=3,q=3x4,t=4x3,norm=none", 10, 10},
    {"tt:n=4,r=2,q=2x2x2x2,t=2x2x2x2,norm=none", 15, 13},
    {"tt:n=1,r=1,q=12,t=10,norm=none", 10, 12},
    {"tt:n=3,r=1,q=2x3x2,t=2x3x2,layout=diag", 12, 12},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static const int batch[] = {3, 1, 3, 0, 9, 3, 1, 7, 0, 5};   // repeated tokens
#define NB 10

static double dot(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// L = <W, scale rows(batch)> (table = 0) or <W, table> (table = 1)
static double loss(const real *p, const real *W, const Embed *e, real scale, int table,
                   real *buf) {
    if (table) return dot(embed_table_forward(buf, p, e), W, (size_t)e->V * e->C);
    embed_rows_forward(buf, batch, p, e, NB, scale);
    return dot(buf, W, (size_t)NB * e->C);
}

static void test_oracle_and_gradients(void) {
    for (int ci = 0; ci < NCASES; ci++) {
        const Case *c = &cases[ci];
        Embed e = make(c->spec, c->V, c->C);
        set_test_order(&e);
        const size_t P = e.num_params, VC = (size_t)e.V * e.C;
        uint64_t rng = 1000 + ci;
        real *p = alloc(P), *table = alloc(VC), *rows = alloc((size_t)NB * e.C);
        real *row = alloc(e.C), *W = alloc(VC), *g = alloc(P), *fd = alloc(P);
        fill_normal(p, P, &rng);
        char name[128];

        // every table row against the oracle; rows_forward against the table
        const real *tab = embed_table_forward(table, p, &e);
        double err = 0;
        for (int w = 0; w < e.V; w++) {
            oracle_row(row, p, &e, w);
            err = fmax(err, max_abs_diff(row, tab + (size_t)w * e.C, e.C));
        }
        snprintf(name, sizeof name, "table = oracle %s V=%d C=%d", c->spec, c->V, c->C);
        CHECK(err < 1e-12, name, "max diff %g", err);
        embed_rows_forward(rows, batch, p, &e, NB, 1);
        err = 0;
        for (int i = 0; i < NB; i++)
            err = fmax(err, max_abs_diff(rows + (size_t)i * e.C, tab + (size_t)batch[i] * e.C, e.C));
        snprintf(name, sizeof name, "rows = table rows %s V=%d C=%d", c->spec, c->V, c->C);
        CHECK(err == 0, name, "max diff %g", err);

        // gradients: rows (scale 1.7) and table. dparams starts at 1 to check +=.
        // Without a norm every parameter enters a row linearly, so central differences
        // are exact up to rounding; with one, h = 1e-5 leaves an O(h^2) error of about
        // 1e-10 relative.
        for (int table_mode = 0; table_mode < 2; table_mode++) {
            const real scale = (real)1.7;
            size_t nw = table_mode ? VC : (size_t)NB * e.C;
            fill_normal(W, nw, &rng);
            for (size_t i = 0; i < P; i++) g[i] = 1;
            if (table_mode) embed_table_backward(g, W, p, &e);
            else embed_rows_backward(g, W, batch, p, &e, NB, scale);
            for (size_t i = 0; i < P; i++) g[i] -= 1;
            const double h = e.norm == EMBED_NORM_NONE ? 1e-3 : 1e-5;
            for (size_t i = 0; i < P; i++) {
                real keep = p[i];
                p[i] = keep + h;
                double lp = loss(p, W, &e, scale, table_mode, table_mode ? table : rows);
                p[i] = keep - h;
                double lm = loss(p, W, &e, scale, table_mode, table_mode ? table : rows);
                p[i] = keep;
                fd[i] = (real)((lp - lm) / (2 * h));
            }
            double rel = max_abs_diff(g, fd, P) / fmax(max_abs(fd, P), 1e-300);
            snprintf(name, sizeof name, "grad %s %s V=%d C=%d",
                     table_mode ? "table_backward" : "rows_backward", c->spec, c->V, c->C);
            CHECK(rel < 1e-6 && max_abs(fd, P) > 0, name, "relative error %g", rel);
        }
        free(p); free(table); free(rows); free(row); free(W); free(g); free(fd);
    }
}

// tt with more slots than tt_slots_backward's chunk (1024): the gradient of
// L = <W, table> (and of rows of a batch of 1500 tokens) along a random direction v,
// against (L(p + h v) - L(p - h v)) / 2h, which is exact up to O(h^2) and rounding.
static void test_tt_chunks(void) {
    const int V = 1300, C = 12, N = 1500;
    Embed e = make("tt:n=3,r=3,q=2x3x2,head=5,order=freq,norm=ln", V, C);
    set_test_order(&e);
    const size_t P = e.num_params, VC = (size_t)V * C;
    uint64_t rng = 31;
    real *p = alloc(P), *v = alloc(P), *q = alloc(P), *g = alloc(P), *W = alloc((size_t)N * C);
    real *buf = alloc((size_t)N * C);               // N > V: rows or the table
    int *tokens = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) tokens[i] = (int)(rng_next(&rng) % V);
    fill_normal(p, P, &rng);
    fill_normal(v, P, &rng);
    fill_normal(W, (size_t)N * C, &rng);
    for (int rows = 0; rows < 2; rows++) {
        const size_t nw = rows ? (size_t)N * C : VC;
        memset(g, 0, sizeof(real) * P);
        if (rows) embed_rows_backward(g, W, tokens, p, &e, N, 1);
        else embed_table_backward(g, W, p, &e);
        const double h = 1e-5;
        double l[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            for (size_t i = 0; i < P; i++) q[i] = p[i] + (sgn ? -h : h) * v[i];
            if (rows) embed_rows_forward(buf, tokens, q, &e, N, 1);
            const real *t = rows ? buf : embed_table_forward(buf, q, &e);
            l[sgn] = dot(t, W, nw);
        }
        const double fd = (l[0] - l[1]) / (2 * h), an = dot(g, v, P);
        CHECK(fabs(an - fd) < 1e-7 * fabs(fd) && fabs(fd) > 0,
              rows ? "tt rows gradient over chunks: directional derivative"
                   : "tt table gradient over chunks: directional derivative",
              "analytic %.12g, finite difference %.12g", an, fd);
    }
    free(p); free(v); free(q); free(g); free(W); free(buf); free(tokens);
}

// ----------------------------------------------------------------------------
// The table's fast paths and the rows' backward against the per-slot reference
// (embed_table_*_ref, embed_rows_backward_ref), at sizes where the matrix products
// block and split over threads: kronxs n = 2 goes through M = F_0^T F_1. Forward
// values and gradients (accumulated onto random ones) agree to rounding; the last
// spec's M would exceed twice the table, so it takes the per-slot path and must agree
// exactly. The rows: 700 positions of 60 distinct tokens (the matrix path: 60 slots
// are at least an eighth of the grid) and 12 positions of 4 (per slot, exactly).

static void test_table_fast_vs_ref(void) {
    static const Case fast[] = {
        {"kronxs:n=2,r=5,q=7x6,t=18x17", 300, 40},                 // ragged V, cut C, ln
        {"kronxs:n=2,r=36,q=8x8,t=20x15", 300, 64},                 // exact grid
        {"kronxs:n=2,r=4,head=20,order=freq,layout=diag,norm=rms", 300, 40},
        {"kronxs:n=2,r=3,q=8x5,layout=diag,norm=none", 290, 40},
        {"kronxs:n=2,r=2,t=300x1,q=1x40,norm=none", 300, 40},       // low rank
        {"kronxs:n=2,r=7,head=9,order=freq,norm=ln", 301, 37},
        {"kronxs:n=2,r=2,q=40x40,t=20x15", 300, 40},                // M too large
    };
    const int ncase = (int)(sizeof fast / sizeof fast[0]);
    for (int ci = 0; ci < ncase; ci++) {
        const Case *c = &fast[ci];
        Embed e = make(c->spec, c->V, c->C);
        set_test_order(&e);
        const size_t P = e.num_params, VC = (size_t)e.V * e.C;
        uint64_t rng = 77 + ci;
        real *p = alloc(P), *ta = alloc(VC), *tb = alloc(VC), *W = alloc(VC);
        real *ga = alloc(P), *gb = alloc(P), *ra = alloc(P), *rb = alloc(P);
        real *dout = alloc((size_t)700 * e.C);
        fill_normal(p, P, &rng);
        fill_normal(W, VC, &rng);
        fill_normal(ga, P, &rng);
        memcpy(gb, ga, sizeof(real) * P);
        embed_table_forward(ta, p, &e);
        embed_table_forward_ref(tb, p, &e);
        embed_table_backward(ga, W, p, &e);
        embed_table_backward_ref(gb, W, p, &e);
        const double tol = ci == ncase - 1 ? 0 : 1e-12;
        double ft = max_abs_diff(ta, tb, VC) / max_abs(tb, VC);
        double fg = max_abs_diff(ga, gb, P) / max_abs(gb, P);
        char name[128];
        snprintf(name, sizeof name, "table fast = reference %s V=%d C=%d", c->spec, c->V, c->C);
        CHECK(ft <= tol && fg <= tol, name, "relative difference: table %g, gradient %g", ft, fg);
        for (int few = 0; few < 2; few++) {
            const int N = few ? 12 : 700;
            int tokens[700];
            for (int i = 0; i < N; i++) tokens[i] = (int)(rng_next(&rng) % (few ? 4 : 60)) * 4;
            fill_normal(ra, P, &rng);
            fill_normal(dout, (size_t)N * e.C, &rng);
            memcpy(rb, ra, sizeof(real) * P);
            embed_rows_backward(ra, dout, tokens, p, &e, N, (real)1.3);
            embed_rows_backward_ref(rb, dout, tokens, p, &e, N, (real)1.3);
            double fr = max_abs_diff(ra, rb, P) / max_abs(rb, P);
            snprintf(name, sizeof name, "rows_backward fast = reference, %d of %d tokens %s",
                     few ? 4 : 60, N, c->spec);
            CHECK(fr <= (few ? 0 : tol), name, "relative difference %g", fr);
        }
        free(p); free(ta); free(tb); free(W); free(ga); free(gb); free(ra); free(rb); free(dout);
    }
}

// ----------------------------------------------------------------------------
// Initialization statistics

static void test_init(void) {
    const char *specs[] = {"dense", "kron:n=2,r=4", "kronxs:n=3,r=2", "kronxs:n=4,r=1",
                           "kron:n=4,r=2", "kronxs:n=2,r=4,head=50,norm=rms",
                           "kronxs:n=2,r=2,layout=diag,norm=ln,head=10",
                           "tt:n=3,r=4,norm=none", "tt:n=3,r=1,norm=none",
                           "tt:n=4,r=3,norm=none", "tt:n=2,r=8,norm=none",
                           "tt:n=3,r=6,head=20,order=id,norm=ln"};
    const int V = 2000, C = 64;
    real *table = alloc((size_t)V * C);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        Embed e = make(specs[i], V, C);
        real *p = alloc(e.num_params);
        uint64_t rng = 42 + i;
        embed_init(&e, p, &rng);
        const real *t = embed_table_forward(table, p, &e);
        double s1 = 0, s2 = 0;
        for (size_t k = 0; k < (size_t)V * C; k++) { s1 += t[k]; s2 += (double)t[k] * t[k]; }
        double mean = s1 / ((double)V * C), sd = sqrt(s2 / ((double)V * C) - mean * mean);
        char name[96];
        snprintf(name, sizeof name, "init std %s V=%d C=%d", specs[i], V, C);
        CHECK(fabs(sd / e.init_std - 1) < 0.05 && fabs(mean) < 0.05 * e.init_std, name,
              "std %g (want %g), mean %g", sd, e.init_std, mean);
        free(p);
    }
    free(table);
}

// ----------------------------------------------------------------------------
// Thread-count independence

#ifdef _OPENMP
static void run_all(const Embed *e, const real *p, const int *tokens, int N, real *rows,
                    real *table, real *grows, real *gtable, const real *dout,
                    const real *dtable) {
    embed_rows_forward(rows, tokens, p, e, N, (real)0.7);
    const real *t = embed_table_forward(table, p, e);
    if (t != table) memcpy(table, t, sizeof(real) * e->V * e->C);
    memset(grows, 0, sizeof(real) * e->num_params);
    memset(gtable, 0, sizeof(real) * e->num_params);
    embed_rows_backward(grows, dout, tokens, p, e, N, (real)0.7);
    embed_table_backward(gtable, dtable, p, e);
}

static void test_threads(void) {
    const char *specs[] = {"dense", "kron:n=3,r=3", "kronxs:n=2,r=3,t=20x16",
                           "kronxs:n=3,r=2,q=4x3x4",
                           "kronxs:n=2,r=3,layout=diag,norm=ln,head=7,order=freq",
                           "kronxs:n=2,r=40,t=20x16,norm=rms",   // products on 2 threads
                           "kron:n=3,r=3,norm=rms,head=5,order=freq",
                           "tt:n=3,r=3,q=4x3x4,norm=ln,head=7,order=freq,layout=diag"};
    const int V = 300, C = 40, N = 700;
    int *tokens = malloc(sizeof(int) * N);
    uint64_t rng = 9;
    for (int i = 0; i < N; i++) tokens[i] = (int)(rng_next(&rng) % 60) * 5;  // repeats
    real *dout = alloc((size_t)N * C), *dtable = alloc((size_t)V * C);
    fill_normal(dout, (size_t)N * C, &rng);
    fill_normal(dtable, (size_t)V * C, &rng);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        Embed e = make(specs[i], V, C);
        set_test_order(&e);
        size_t sizes[4] = {(size_t)N * C, (size_t)V * C, e.num_params, e.num_params};
        real *p = alloc(e.num_params), *buf[3][4];
        fill_normal(p, e.num_params, &rng);
        for (int nth = 1; nth <= 3; nth++) {          // buf[nth - 1]: with nth threads
            for (int k = 0; k < 4; k++) buf[nth - 1][k] = alloc(sizes[k]);
            omp_set_num_threads(nth);
            real **b = buf[nth - 1];
            run_all(&e, p, tokens, N, b[0], b[1], b[2], b[3], dout, dtable);
        }
        for (int nth = 2; nth <= 3; nth++) {
            int same = 1;
            for (int k = 0; k < 4; k++)
                same &= !memcmp(buf[0][k], buf[nth - 1][k], sizeof(real) * sizes[k]);
            char name[96];
            snprintf(name, sizeof name, "1 vs %d threads bit-identical %s", nth, specs[i]);
            CHECK(same, name, "forward or backward differs");
        }
        for (int r = 0; r < 3; r++)
            for (int k = 0; k < 4; k++) free(buf[r][k]);
        free(p);
    }
    free(tokens); free(dout); free(dtable);
}
#endif

int main(void) {
    test_defaults();
    test_errors();
    test_counts();
    test_hand();
    test_n1_is_dense();
    test_low_rank();
    test_tt2_is_kronxs();
    test_oracle_and_gradients();
    test_tt_chunks();
    test_table_fast_vs_ref();
    test_init();
#ifdef _OPENMP
    test_threads();
#endif
    CHECK_EXIT();
}
