// embed_factor.c: the dense, word2ket ("kron") and word2ketXS ("kronxs") embeddings of
// embed_factor.h: spec parsing, initialization, and forward/backward of the rows a
// batch needs and of the whole table (for the tied output projection).
//
// Parameter layout (one contiguous block, tensors in this order):
//   dense   "embed.weight"     (V, C)          row w is E[w, :]
//   kron    "embed.kron"       (V, R, Q)       Q = q_0 + .. + q_{N-1}; [w, k, :] is the
//                                              concatenation v_{w,k,0} | .. | v_{w,k,N-1},
//                                              so all that token w needs is contiguous
//   kronxs  "embed.kronxs.j"   (R, t_j, q_j)   one tensor per factor j (0-based),
//                                              F_{k,j} stacked over the rank k
//
// Kronecker convention: (a (x) b)[i * len(b) + j] = a[i] * b[j], the last factor
// fastest. Factors are numbered from 0, as in the code: a rank term of a row is
// f_0 (x) .. (x) f_{N-1}, f_j of q_j entries, and a row uses only its first C entries.
// The prefix product of the first j factors, f_0 (x) .. (x) f_{j-1}, reaches those
// through its first
//   L_j = ceil(C / (q_j .. q_{N-1}))   entries (L_0 = 1, L_N = C, L_j = ceil(L_{j+1} / q_j)),
// so products are built progressively and cut to L_j: one rank term of one row costs
// C (1 + 1/q_{N-1} + 1/(q_{N-1} q_{N-2}) + ..) multiply-adds, about C.
//
// Backward of one rank term, given the row gradient G (C): with the prefixes
// P_j = (f_0 (x) .. (x) f_{j-1})[:L_j] (P_0 = 1) and H_j = G, zero-padded to
// L_j x (q_j .. q_{N-1}), contracted with f_j (x) .. (x) f_{N-1} (so H_N = G and
// H_j[a] = sum_b H_{j+1}[a q_j + b] f_j[b]),
//   d f_j[b] = sum_a P_j[a] H_{j+1}[a q_j + b],   j = N-1 down to 0,
// which for N = 2 is the familiar dL/df_0 = G f_1, dL/df_1 = G^T f_0 (G reshaped
// q_0 x q_1). About 2 C multiply-adds per rank term.
//
// Determinism without atomics: the gradient of a token's parameters depends on its
// positions only through the sum of their row gradients. So the backward first groups
// the positions by token (a stable counting sort) and sums each token's row gradients
// in increasing position order, one thread per token. dense and kron then add into the
// token's own parameters (one owner per token). kronxs tokens share factor rows
// F_{k,j}[a, :], so each token's factor gradients go to a scratch buffer, and for each
// factor j the tokens are grouped by their digit a and reduced in increasing token
// order, one thread per destination row (k, j, a). Results are bit-identical for any
// number of threads.
//
// Spec defaults: n = 2 (or the number of factors given in q or t), r = 1, q and t the
// balanced factors of C and V (see balanced_factors: 16x16 for C = 256, n = 2; 7x7x6 for
// n = 3). No factor may exceed its target (q_j <= C, t_j <= V): the excess could never
// reach a row. Tokens passed to the kernels must be in [0, V).
#include "embed_factor.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"dense", "kron", "kronxs"};

// Allocation failure is not a user error these void kernels could report: stop.
static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "embed_factor: out of memory allocating %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

// ----------------------------------------------------------------------------
// Spec parsing

// prod f in double: exact below 2^53; larger products only need to compare >= target.
static double product(const int *f, int n) {
    double p = 1;
    for (int j = 0; j < n; j++) p *= f[j];
    return p;
}

static double ipow(int b, int m) {
    double p = 1;
    for (int i = 0; i < m; i++) p *= b;
    return p;
}

// The default factors of `target` (C for q, V for t) into n: the balanced ones. With b
// the largest integer such that b^n <= target, the factors are (b+1) m times, then b
// (n - m) times, for the smallest m whose product (b+1)^m b^(n-m) is >= target. They
// differ by at most one, the larger first, and among such factors their product is the
// smallest that reaches target. E.g. C = 256: n = 2 -> 16x16, n = 3 -> 7x7x6 (294),
// n = 4 -> 4x4x4x4; C = 64, n = 4 -> 3x3x3x3 (81); V = 8000, n = 2 -> 90x89 (8010).
static void balanced_factors(int *f, int n, int target) {
    int b = (int)floor(pow((double)target, 1.0 / n));
    if (b < 1) b = 1;
    while (ipow(b + 1, n) <= target) b++;       // fix the rounding of pow either way
    while (b > 1 && ipow(b, n) > target) b--;
    for (int m = 0; m <= n; m++) {              // m = n always works: (b+1)^n > target
        for (int j = 0; j < n; j++) f[j] = j < m ? b + 1 : b;
        if (product(f, n) >= target) return;
    }
}

// "16x16" from {16, 16}
static void format_factors(char *out, size_t cap, const int *f, int n) {
    size_t len = 0;
    out[0] = '\0';
    for (int j = 0; j < n && len < cap; j++)
        len += (size_t)snprintf(out + len, cap - len, j ? "x%d" : "%d", f[j]);
}

// A positive decimal integer, all of s.
static int parse_positive(const char *s, int *out) {
    if (!isdigit((unsigned char)s[0])) return 1;
    long long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) return 1;
        v = v * 10 + (*s - '0');
        if (v > INT_MAX) return 1;
    }
    if (v < 1) return 1;
    *out = (int)v;
    return 0;
}

// "16x16" -> f = {16, 16}, *n = 2. Returns 1 if malformed, 2 if too many factors.
static int parse_factors(const char *s, int *f, int *n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    *n = 0;
    for (char *item = buf; item;) {
        char *next = strchr(item, 'x');
        if (next) *next++ = '\0';
        if (*n == EMBED_MAX_ORDER) return 2;
        if (parse_positive(item, &f[*n])) return 1;
        (*n)++;
        item = next;
    }
    return 0;
}

// Checks one factor list (q over C, or t over V); 0 if fine.
static int check_factors(const int *f, int n, int target, char key, const char *what,
                         char *err) {
    char fs[128];
    format_factors(fs, sizeof fs, f, n);
    for (int j = 0; j < n; j++)
        if (f[j] > target) {
            snprintf(err, KF_ERRLEN, "%c=%s has a factor above %s %d; no factor needs "
                     "to exceed %d", key, fs, what, target, target);
            return 1;
        }
    double p = product(f, n);
    if (p < target) {
        snprintf(err, KF_ERRLEN, "%c=%s gives %.0f < %s %d; choose factors whose "
                 "product is at least %d", key, fs, p, what, target, target);
        return 1;
    }
    return 0;
}

int embed_parse(Embed *e, const char *spec, int V, int C, char *err) {
    if (V < 1 || C < 1) {
        snprintf(err, KF_ERRLEN, "embedding needs a positive vocabulary and width, got "
                 "V=%d, C=%d; fix the model config", V, C);
        return 1;
    }
    if (!spec || !*spec) {
        snprintf(err, KF_ERRLEN, "empty embedding spec; use dense, kron:n=2,r=1 or "
                 "kronxs:n=2,r=1");
        return 1;
    }
    char buf[256];
    if (strlen(spec) >= sizeof buf) {
        snprintf(err, KF_ERRLEN, "embedding spec is %zu characters long; keep it under "
                 "%zu", strlen(spec), sizeof buf);
        return 1;
    }
    strcpy(buf, spec);
    char *opts = strchr(buf, ':');
    if (opts) *opts++ = '\0';
    int kind = -1;
    for (int k = 0; k < 3; k++)
        if (!strcmp(buf, kind_names[k])) kind = k;
    if (kind < 0) {
        snprintf(err, KF_ERRLEN, "unknown embedding kind '%s' in '%s'; use dense, kron "
                 "or kronxs", buf, spec);
        return 1;
    }
    if (kind == EMBED_DENSE && opts) {
        snprintf(err, KF_ERRLEN, "dense takes no options, got '%s'; use plain 'dense'",
                 spec);
        return 1;
    }

    // options; 0 = not given
    int n = 0, r = 0, nq = 0, nt = 0, q[EMBED_MAX_ORDER], t[EMBED_MAX_ORDER];
    for (char *item = opts; item;) {
        char *next = strchr(item, ',');
        if (next) *next++ = '\0';
        char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            snprintf(err, KF_ERRLEN, "expected key=value in embedding spec '%s', got "
                     "'%s'; e.g. %s:n=2,r=1", spec, item, kind_names[kind]);
            return 1;
        }
        *eq = '\0';
        const char *key = item, *val = eq + 1;
        int known = !strcmp(key, "n") || !strcmp(key, "r") || !strcmp(key, "q") ||
                    (kind == EMBED_KRONXS && !strcmp(key, "t"));
        if (!known) {
            snprintf(err, KF_ERRLEN, "unknown key '%s' in embedding spec '%s'; %s takes "
                     "%s", key, spec, kind_names[kind],
                     kind == EMBED_KRON ? "n, r and q" : "n, r, q and t");
            return 1;
        }
        int *count = key[0] == 'q' ? &nq : &nt;
        int seen = key[0] == 'n' ? n : key[0] == 'r' ? r : *count;
        if (seen) {
            snprintf(err, KF_ERRLEN, "key '%s' given twice in embedding spec '%s'; give "
                     "it once", key, spec);
            return 1;
        }
        if (key[0] == 'n' || key[0] == 'r') {
            int v;
            if (parse_positive(val, &v)) {
                snprintf(err, KF_ERRLEN, "%s=%s is not a positive integer; the %s must "
                         "be at least 1, e.g. %s=2", key, val,
                         key[0] == 'n' ? "order" : "rank", key);
                return 1;
            }
            if (key[0] == 'n' && v > EMBED_MAX_ORDER) {
                snprintf(err, KF_ERRLEN, "n=%d is out of range; the order must be "
                         "between 1 and %d", v, EMBED_MAX_ORDER);
                return 1;
            }
            *(key[0] == 'n' ? &n : &r) = v;
        } else {
            int rc = parse_factors(val, key[0] == 'q' ? q : t, count);
            if (rc == 1)
                snprintf(err, KF_ERRLEN, "%s=%s is not a list of positive integers; "
                         "write e.g. %s=16x16", key, val, key);
            else if (rc == 2)
                snprintf(err, KF_ERRLEN, "%s=%s has more than %d factors; use at most "
                         "%d", key, val, EMBED_MAX_ORDER, EMBED_MAX_ORDER);
            if (rc) return 1;
        }
        item = next;
    }

    Embed x;
    memset(&x, 0, sizeof x);
    x.kind = kind;
    x.V = V;
    x.C = C;
    x.init_std = 1.0 / sqrt((double)C);
    if (kind == EMBED_DENSE) {
        x.n = x.r = 1;
        x.q[0] = C;
        x.num_params = (size_t)V * C;
        *e = x;
        return 0;
    }

    // n: given, else the length of q or t, else 2; q and t must agree with it
    if (!n) n = nq ? nq : nt ? nt : 2;
    char fs[128];
    if (nq && nq != n) {
        format_factors(fs, sizeof fs, q, nq);
        snprintf(err, KF_ERRLEN, "n=%d but q=%s has %d factors; give n factors or drop "
                 "n", n, fs, nq);
        return 1;
    }
    if (nt && nt != n) {
        format_factors(fs, sizeof fs, t, nt);
        snprintf(err, KF_ERRLEN, "n=%d but t=%s has %d factors; give n factors or drop "
                 "n", n, fs, nt);
        return 1;
    }
    x.n = n;
    x.r = r ? r : 1;
    if (nq) memcpy(x.q, q, sizeof(int) * n);
    else balanced_factors(x.q, n, C);
    if (check_factors(x.q, n, C, 'q', "d_model", err)) return 1;

    double np;
    if (kind == EMBED_KRON) {
        double Q = 0;
        for (int j = 0; j < n; j++) Q += x.q[j];
        np = (double)V * x.r * Q;
    } else {
        if (nt) memcpy(x.t, t, sizeof(int) * n);
        else balanced_factors(x.t, n, V);
        if (check_factors(x.t, n, V, 't', "vocabulary", err)) return 1;
        np = 0;
        for (int j = 0; j < n; j++) np += (double)x.r * x.t[j] * x.q[j];
    }
    if (np > 4294967296.0) {
        snprintf(err, KF_ERRLEN, "embedding '%s' would have %.3g parameters; lower r or "
                 "the factors", spec, np);
        return 1;
    }
    x.num_params = (size_t)np;
    *e = x;
    return 0;
}

void embed_spec_string(const Embed *e, char *out, size_t cap) {
    if (e->kind == EMBED_DENSE) {
        snprintf(out, cap, "dense");
        return;
    }
    char qs[128], ts[128];
    format_factors(qs, sizeof qs, e->q, e->n);
    format_factors(ts, sizeof ts, e->t, e->n);
    if (e->kind == EMBED_KRON)
        snprintf(out, cap, "kron:n=%d,r=%d,q=%s", e->n, e->r, qs);
    else
        snprintf(out, cap, "kronxs:n=%d,r=%d,q=%s,t=%s", e->n, e->r, qs, ts);
}

// ----------------------------------------------------------------------------
// Tensors

static int sum_q(const Embed *e) {
    int Q = 0;
    for (int j = 0; j < e->n; j++) Q += e->q[j];
    return Q;
}

int embed_num_tensors(const Embed *e) {
    return e->kind == EMBED_KRONXS ? e->n : 1;
}

// Unused trailing entries of shape are set to 1.
void embed_tensor_info(const Embed *e, int i, char *name, size_t cap, int *ndim,
                       int shape[4], size_t *offset, size_t *numel) {
    for (int d = 0; d < 4; d++) shape[d] = 1;
    *offset = 0;
    if (e->kind == EMBED_DENSE) {
        snprintf(name, cap, "embed.weight");
        *ndim = 2;
        shape[0] = e->V;
        shape[1] = e->C;
    } else if (e->kind == EMBED_KRON) {
        snprintf(name, cap, "embed.kron");
        *ndim = 3;
        shape[0] = e->V;
        shape[1] = e->r;
        shape[2] = sum_q(e);
    } else {
        snprintf(name, cap, "embed.kronxs.%d", i);
        for (int j = 0; j < i; j++) *offset += (size_t)e->r * e->t[j] * e->q[j];
        *ndim = 3;
        shape[0] = e->r;
        shape[1] = e->t[i];
        shape[2] = e->q[i];
    }
    *numel = (size_t)shape[0] * shape[1] * shape[2];
}

// ----------------------------------------------------------------------------
// Initialization
//
// Every entry of a row must have mean 0 and variance init_std^2, as a dense table. An
// entry of one rank term is a product of N independent zero-mean factor entries of
// variance s^2, so its variance is s^(2N); the R terms are independent, so the entry
// has variance R s^(2N) = init_std^2 when
//   s = (init_std^2 / R)^(1 / (2N)).
// (A per-factor std that ignores N would shrink or blow up rows geometrically with N.)
// kron draws every factor entry from N(0, s^2). A kronxs table is built from only
// R sum_j t_j q_j numbers (81 for V = 2000, C = 64, n = 4: t = 7x7x7x6, q = 3x3x3x3),
// so the sample variance of plain draws would scale the whole table by a random factor
// (0.56 to 1.04 over 8 seeds there). So each column of F_{k,j} is drawn uniformly on
// the sphere of radius s sqrt(t_j) (a normal vector rescaled): every entry still has
// mean 0 and variance exactly s^2, and the mean square of every column over its t_j
// rows is exactly s^2, which makes the mean square of the table exactly R s^(2N) for
// R = 1 and prod t = V (and close to it otherwise: within 2% in the tests).

void embed_init(const Embed *e, real *params, uint64_t *rng) {
    if (e->kind == EMBED_DENSE) {
        for (size_t i = 0; i < e->num_params; i++)
            params[i] = (real)(e->init_std * rng_normal(rng));
        return;
    }
    double s = pow(e->init_std * e->init_std / e->r, 1.0 / (2 * e->n));
    if (e->kind == EMBED_KRON) {
        for (size_t i = 0; i < e->num_params; i++) params[i] = (real)(s * rng_normal(rng));
        return;
    }
    int tmax = 1;
    for (int j = 0; j < e->n; j++) tmax = e->t[j] > tmax ? e->t[j] : tmax;
    double *col = xmalloc(sizeof(double) * tmax);
    real *F = params;                                   // F_{k,j}  (t_j, q_j)
    for (int j = 0; j < e->n; j++) {
        const int tj = e->t[j], qj = e->q[j];
        for (int k = 0; k < e->r; k++, F += (size_t)tj * qj) {
            for (int b = 0; b < qj; b++) {
                double ss = 0;
                for (int a = 0; a < tj; a++) {
                    col[a] = rng_normal(rng);
                    ss += col[a] * col[a];
                }
                double f = s * sqrt(tj / ss);
                for (int a = 0; a < tj; a++) F[(size_t)a * qj + b] = (real)(f * col[a]);
            }
        }
    }
    free(col);
}

// ----------------------------------------------------------------------------
// The cut Kronecker product and its backward, for one rank term

typedef struct {
    int n, R, C, Q;                   // order, rank, width, Q = q_0 + .. + q_{N-1}
    const int *q, *t;                 // the factor widths and (kronxs) heights
    int L[EMBED_MAX_ORDER + 1];       // L[j]: entries of f_0 (x) .. (x) f_{j-1} used, see top
    int qoff[EMBED_MAX_ORDER];        // factor j within a (Q) vector of the kron layout
    size_t xoff[EMBED_MAX_ORDER];     // kronxs: tensor j within the parameter block
    int poff[EMBED_MAX_ORDER];        // prefix P_j within the work buffer, j < N
    int pre;                          // reals of all prefixes, sum_{j<N} L[j]
} Plan;

static void plan_init(Plan *p, const Embed *e) {
    p->n = e->n;
    p->R = e->r;
    p->C = e->C;
    p->q = e->q;
    p->t = e->t;
    p->L[e->n] = e->C;
    for (int j = e->n; j > 0; j--) p->L[j - 1] = (p->L[j] + e->q[j - 1] - 1) / e->q[j - 1];
    p->Q = 0;
    p->pre = 0;
    size_t x = 0;
    for (int j = 0; j < e->n; j++) {
        p->qoff[j] = p->Q;
        p->Q += e->q[j];
        p->xoff[j] = x;
        x += (size_t)e->r * e->t[j] * e->q[j];
        p->poff[j] = p->pre;
        p->pre += p->L[j];
    }
}

// y[a q + b] += alpha x[a] f[b] for a q + b < len: the Kronecker product x (x) f cut to
// its first len entries (x needs ceil(len / q) entries).
static void kron_cut(real *y, const real *x, const real *f, int q, int len, real alpha) {
    for (int a = 0; a * q < len; a++) {
        const real xa = alpha * x[a];
        const int bn = len - a * q < q ? len - a * q : q;
        real *ya = y + (size_t)a * q;
        for (int b = 0; b < bn; b++) ya[b] += xa * f[b];
    }
}

// P_j = (f_0 (x) .. (x) f_{j-1})[:L_j] for j = 0..N-1 into work + poff[j] (P_0 = 1).
static void build_prefixes(real *work, const real *const *f, const Plan *p) {
    work[0] = 1;
    for (int j = 1; j < p->n; j++) {
        real *P = work + p->poff[j];
        memset(P, 0, sizeof(real) * p->L[j]);
        kron_cut(P, work + p->poff[j - 1], f[j - 1], p->q[j - 1], p->L[j], 1);
    }
}

// df_j += d/df_j <G, (f_0 (x) .. (x) f_{N-1})[:C]> for every j.  G (C), work (pre + L_{N-1})
static void term_backward(real *const *df, const real *G, const real *const *f,
                          const Plan *p, real *work) {
    build_prefixes(work, f, p);
    const real *Hin = G;                            // H_{j+1}, (L_{j+1}); H_N = G
    real *H = work + p->pre;                        // the contracted H_j, (L_j)
    for (int j = p->n - 1; j >= 0; j--) {           // 0-based factor j: P_j, H_{j+1}
        const real *P = work + p->poff[j];
        const int q = p->q[j], len = p->L[j + 1];
        for (int a = 0; a < p->L[j]; a++) {         // df_j[b] += P_j[a] H_{j+1}[a q + b]
            const int bn = len - a * q < q ? len - a * q : q;
            const real pa = P[a], *Ha = Hin + (size_t)a * q;
            real *g = df[j];
            for (int b = 0; b < bn; b++) g[b] += pa * Ha[b];
        }
        if (j == 0) break;
        for (int a = 0; a < p->L[j]; a++) {         // H_j[a] = sum_b H_{j+1}[a q + b] f_j[b]
            const int bn = len - a * q < q ? len - a * q : q;
            const real *Ha = Hin + (size_t)a * q;
            const real *fj = f[j];
            real sum = 0;
            for (int b = 0; b < bn; b++) sum += Ha[b] * fj[b];
            H[a] = sum;                             // may be in place: a <= a q, read first
        }
        Hin = H;
    }
}

// Digits of token w in mixed radix over t_0..t_{N-1}, the last fastest.
static void token_digits(int *d, int w, const Plan *p) {
    for (int j = p->n - 1; j >= 0; j--) {
        d[j] = w % p->t[j];
        w /= p->t[j];
    }
}

// Offset of factor j of rank term k of token (or slot) w in a (., R, Q) kron block.
static size_t kron_offset(const Plan *p, int w, int k, int j) {
    return ((size_t)w * p->R + k) * p->Q + p->qoff[j];
}

// Offsets of the N factor vectors of rank term k of token w in the parameter block.
static void factor_offsets(size_t *off, const Embed *e, const Plan *p, int w, int k) {
    if (e->kind == EMBED_KRON) {
        for (int j = 0; j < p->n; j++) off[j] = kron_offset(p, w, k, j);
        return;
    }
    int d[EMBED_MAX_ORDER];
    token_digits(d, w, p);
    for (int j = 0; j < p->n; j++)
        off[j] = p->xoff[j] + ((size_t)k * p->t[j] + d[j]) * p->q[j];
}

// out = alpha row(w) for a factorized embedding.                out (C), work (pre)
static void row_forward(real *out, const real *params, const Embed *e, const Plan *p,
                        int w, real alpha, real *work) {
    memset(out, 0, sizeof(real) * p->C);
    for (int k = 0; k < p->R; k++) {
        size_t off[EMBED_MAX_ORDER];
        const real *f[EMBED_MAX_ORDER];
        factor_offsets(off, e, p, w, k);
        for (int j = 0; j < p->n; j++) f[j] = params + off[j];
        build_prefixes(work, f, p);
        kron_cut(out, work + p->poff[p->n - 1], f[p->n - 1], p->q[p->n - 1], p->C, alpha);
    }
}

// ----------------------------------------------------------------------------
// Forward

void embed_rows_forward(real *out, const int *tokens, const real *params,
                        const Embed *e, int N, real scale) {
    const int C = e->C;
    if (e->kind == EMBED_DENSE) {
        #pragma omp parallel for schedule(static)
        for (int i = 0; i < N; i++) {
            const real *row = params + (size_t)tokens[i] * C;   // (C)
            real *o = out + (size_t)i * C;                       // (C)
            for (int c = 0; c < C; c++) o[c] = scale * row[c];
        }
        return;
    }
    Plan p;
    plan_init(&p, e);
    #pragma omp parallel
    {
        real *work = xmalloc(sizeof(real) * p.pre);
        #pragma omp for schedule(static)
        for (int i = 0; i < N; i++)
            row_forward(out + (size_t)i * C, params, e, &p, tokens[i], scale, work);
        free(work);
    }
}

// The whole table (V, C). Costs (multiply-adds; memory is the (V, C) scratch):
//   kron:   V R C (1 + 1/q_{N-1} + ..), every row built on its own.
//   kronxs: V R C for the last factor, plus the prefixes f_0 (x) .. (x) f_{N-2}, which
//           all t_{N-1} rows of a block sharing the digits w_0..w_{N-2} reuse: about
//           (V / t_{N-1}) R C / q_{N-1} more. Each thread keeps the R prefixes of its
//           current block, so a row is R cut products of a cached prefix with
//           F_{k,N-1}[w_{N-1}, :].
const real *embed_table_forward(real *scratch, const real *params, const Embed *e) {
    if (e->kind == EMBED_DENSE) return params;
    const int V = e->V, C = e->C;
    Plan p;
    plan_init(&p, e);
    if (e->kind == EMBED_KRON) {
        #pragma omp parallel
        {
            real *work = xmalloc(sizeof(real) * p.pre);
            #pragma omp for schedule(static)
            for (int w = 0; w < V; w++)
                row_forward(scratch + (size_t)w * C, params, e, &p, w, 1, work);
            free(work);
        }
        return scratch;
    }
    const int n = p.n, tN = p.t[n - 1], qN = p.q[n - 1];
    #pragma omp parallel
    {
        real *work = xmalloc(sizeof(real) * p.pre * p.R);  // (R, pre) prefixes of a block
        int block = -1;                                    // whose prefixes work holds
        #pragma omp for schedule(static)
        for (int w = 0; w < V; w++) {
            if (w / tN != block) {
                block = w / tN;
                for (int k = 0; k < p.R; k++) {
                    size_t off[EMBED_MAX_ORDER];
                    const real *f[EMBED_MAX_ORDER];
                    factor_offsets(off, e, &p, w, k);
                    for (int j = 0; j < n; j++) f[j] = params + off[j];
                    build_prefixes(work + (size_t)k * p.pre, f, &p);
                }
            }
            real *row = scratch + (size_t)w * C;           // (C)
            memset(row, 0, sizeof(real) * C);
            for (int k = 0; k < p.R; k++) {
                const real *FN = params + p.xoff[n - 1] + ((size_t)k * tN + w % tN) * qN;
                kron_cut(row, work + (size_t)k * p.pre + p.poff[n - 1], FN, qN, C, 1);
            }
        }
        free(work);
    }
    return scratch;
}

// ----------------------------------------------------------------------------
// Backward

// Stable counting sort: order lists 0..n-1 grouped by key in [0, K), ascending index
// within a group; group k is order[start[k] .. start[k+1]).            start (K + 1)
static void group_by_key(int *order, int *start, const int *key, int n, int K) {
    memset(start, 0, sizeof(int) * ((size_t)K + 1));
    for (int i = 0; i < n; i++) start[key[i] + 1]++;
    for (int k = 0; k < K; k++) start[k + 1] += start[k];
    for (int i = 0; i < n; i++) order[start[key[i]]++] = i;  // start[k] -> end of group k
    for (int k = K; k > 0; k--) start[k] = start[k - 1];
    start[0] = 0;
}

// F_{k,j}[a, :] += sum of gtok[u, k, factor j] over the slots u whose token has digit
// a in position j, in increasing u; one thread per destination row (k, j, a).
static void kronxs_reduce(real *dparams, const real *gtok, const int *utok, int nu,
                          const Plan *p) {
    int *digits = xmalloc(sizeof(int) * (size_t)nu * p->n);   // (nu, N)
    int *key = xmalloc(sizeof(int) * (size_t)nu), *order = xmalloc(sizeof(int) * (size_t)nu);
    for (int u = 0; u < nu; u++) token_digits(digits + (size_t)u * p->n, utok ? utok[u] : u, p);
    for (int j = 0; j < p->n; j++) {
        const int tj = p->t[j], qj = p->q[j];
        int *start = xmalloc(sizeof(int) * ((size_t)tj + 1));
        for (int u = 0; u < nu; u++) key[u] = digits[(size_t)u * p->n + j];
        group_by_key(order, start, key, nu, tj);
        #pragma omp parallel for schedule(static)
        for (int ka = 0; ka < p->R * tj; ka++) {           // row k * t_j + a of tensor j
            const int k = ka / tj, a = ka % tj;
            real *dst = dparams + p->xoff[j] + (size_t)ka * qj;   // (q_j)
            for (int s = start[a]; s < start[a + 1]; s++) {
                const real *src = gtok + kron_offset(p, order[s], k, j);
                for (int b = 0; b < qj; b++) dst[b] += src[b];
            }
        }
        free(start);
    }
    free(order);
    free(key);
    free(digits);
}

// dparams += the gradient from nu distinct tokens utok[u] (utok NULL: token u), each
// with its summed, scaled row gradient G[u, :].                          G (nu, C)
static void tokens_backward(real *dparams, const real *G, const int *utok, int nu,
                            const real *params, const Embed *e) {
    const int C = e->C;
    if (e->kind == EMBED_DENSE) {
        #pragma omp parallel for schedule(static)
        for (int u = 0; u < nu; u++) {
            real *d = dparams + (size_t)(utok ? utok[u] : u) * C;
            const real *g = G + (size_t)u * C;
            for (int c = 0; c < C; c++) d[c] += g[c];
        }
        return;
    }
    Plan p;
    plan_init(&p, e);
    // kron: gradients go straight to the token's own parameters. kronxs: to gtok
    // (nu, R, Q), laid out like kron parameters, then reduced into the shared rows.
    real *gtok = NULL;
    if (e->kind == EMBED_KRONXS) {
        gtok = xmalloc(sizeof(real) * (size_t)nu * p.R * p.Q);
        memset(gtok, 0, sizeof(real) * (size_t)nu * p.R * p.Q);
    }
    #pragma omp parallel
    {
        real *work = xmalloc(sizeof(real) * ((size_t)p.pre + p.L[p.n - 1]));
        #pragma omp for schedule(static)
        for (int u = 0; u < nu; u++) {
            const int w = utok ? utok[u] : u;
            for (int k = 0; k < p.R; k++) {
                size_t off[EMBED_MAX_ORDER];
                const real *f[EMBED_MAX_ORDER];
                real *df[EMBED_MAX_ORDER];
                factor_offsets(off, e, &p, w, k);
                for (int j = 0; j < p.n; j++) {
                    f[j] = params + off[j];
                    df[j] = gtok ? gtok + kron_offset(&p, u, k, j) : dparams + off[j];
                }
                term_backward(df, G + (size_t)u * C, f, &p, work);
            }
        }
        free(work);
    }
    if (gtok) {
        kronxs_reduce(dparams, gtok, utok, nu, &p);
        free(gtok);
    }
}

void embed_rows_backward(real *dparams, const real *dout, const int *tokens,
                         const real *params, const Embed *e, int N, real scale) {
    const int V = e->V, C = e->C;
    // group the positions by token; utok lists the distinct tokens in increasing order
    int *order = xmalloc(sizeof(int) * (size_t)N), *start = xmalloc(sizeof(int) * ((size_t)V + 1));
    group_by_key(order, start, tokens, N, V);
    int *utok = xmalloc(sizeof(int) * (size_t)N), nu = 0;
    for (int w = 0; w < V; w++)
        if (start[w + 1] > start[w]) utok[nu++] = w;
    real *G = xmalloc(sizeof(real) * (size_t)nu * C);         // (nu, C)
    #pragma omp parallel for schedule(static)
    for (int u = 0; u < nu; u++) {
        real *g = G + (size_t)u * C;
        memset(g, 0, sizeof(real) * C);
        for (int s = start[utok[u]]; s < start[utok[u] + 1]; s++) {
            const real *d = dout + (size_t)order[s] * C;
            for (int c = 0; c < C; c++) g[c] += d[c];
        }
        for (int c = 0; c < C; c++) g[c] *= scale;
    }
    tokens_backward(dparams, G, utok, nu, params, e);
    free(G);
    free(utok);
    free(start);
    free(order);
}

// Costs (multiply-adds): kron V R 2C; kronxs V R 2C plus V R Q for the reduction, and
// V R Q reals of scratch for the per-token factor gradients. Rows w >= V of a kronxs
// grid (prod t > V) are not in the table and contribute nothing.
void embed_table_backward(real *dparams, const real *dtable, const real *params,
                          const Embed *e) {
    tokens_backward(dparams, dtable, NULL, e->V, params, e);
}
