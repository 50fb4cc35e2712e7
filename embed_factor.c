// embed_factor.c: the dense, word2ket ("kron"), word2ketXS ("kronxs") and tensor-train
// ("tt") embeddings of embed_factor.h: spec parsing, initialization, and forward/backward of the rows a
// batch needs and of the whole table (for the tied output projection).
//
// Token w is looked up in slot s = slot(w) (w itself unless order=freq). Slots below
// head have dense rows; slot s >= head is the factorized slot g = s - head.
// Parameter layout (one contiguous block, tensors in this order):
//   dense   "embed.weight"      (V, C)          row w is E[w, :]
//   [head   "embed.head"        (K, C)          row s is slot s's, s < K = head]
//   kron    "embed.kron"        (V-K, R, Q)     Q = q_0 + .. + q_{N-1}; [g, k, :] is the
//                                               concatenation v_{g,k,0} | .. | v_{g,k,N-1},
//                                               so all that slot g needs is contiguous
//   kronxs  "embed.kronxs.j"    (R, t_j, q_j)   one tensor per factor j (0-based),
//                                               F_{k,j} stacked over the rank k
//   tt      "embed.tt.j"        (r_j, t_j, q_j, r_{j+1})  core j, r_0 = r_N = 1, else R
//   [norm   "embed.norm.weight" (C), and for ln "embed.norm.bias" (C)]
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
// Determinism without atomics: the gradient of a slot's parameters depends on its
// positions only through the sum of their row gradients. So the backward first groups
// the positions by slot (a stable counting sort) and sums each slot's row gradients
// in increasing position order, one thread per slot. dense, head and kron rows then
// take their slot's sum (one owner per slot). kronxs slots share factor rows
// F_{k,j}[a, :], so each slot's factor gradients go to a scratch buffer, and for each
// factor j the slots are grouped by their digit a and reduced in increasing slot
// order, one thread per destination row (k, j, a); the norm's gain sums over slots
// in order, one thread per block of channels. The whole table of kronxs with n = 2
// takes matrix products instead (see "kronxs with n = 2"), which fix their summation
// order too. Results are bit-identical for any number of threads.
//
// tt shares core slices between slots as kronxs shares factor rows; its row and
// backward are a chain of small matrix products (see "The tensor train" below), and
// its backward reduces per-slot slice gradients the same way (tt_slots_backward).
//
// Spec defaults: n = 2 (tt: 3; or the number of factors given in q or t), r = 1, q and t the
// balanced factors of C and V - head (see balanced_factors: 16x16 for C = 256, n = 2;
// 7x7x6 for n = 3), head=0, order=id, layout=radix, norm=ln, lr=3. No factor may
// exceed its target (q_j <= C, t_j <= V - head): the excess could never reach a row.
// Tokens passed to the kernels must be in [0, V).
#include "embed_factor.h"
#include "matmul.h"
#include "vecmath.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {"dense", "kron", "kronxs", "tt"};
#define NKINDS 4
// The keys whose value is a name, and their values (value v is the enum's value v).
static const char *const choice_keys[3] = {"norm", "order", "layout"};
static const char *const choice_values[3][3] = {
    {"none", "rms", "ln"}, {"id", "freq", NULL}, {"radix", "diag", NULL}};

// Allocation failure is not a user error these void kernels could report: stop.
static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "embed_factor: out of memory allocating %zu bytes\n", bytes);
        exit(1);
    }
    return p;
}

// tt: the rank r_j of the bond left of core j; r_0 = r_N = 1, the inner ones R.
static int tt_rank(const Embed *e, int j) { return j == 0 || j == e->n ? 1 : e->r; }

// tt: reals of core j, (r_j, t_j, q_j, r_{j+1}).
static size_t tt_core_size(const Embed *e, int j) {
    return (size_t)tt_rank(e, j) * e->t[j] * e->q[j] * tt_rank(e, j + 1);
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
            errorf(err, "%c=%s has a factor above %s %d; no factor needs "
                   "to exceed %d", key, fs, what, target, target);
            return 1;
        }
    double p = product(f, n);
    if (p < target) {
        errorf(err, "%c=%s gives %.0f < %s %d; choose factors whose "
               "product is at least %d", key, fs, p, what, target, target);
        return 1;
    }
    return 0;
}

int embed_parse(Embed *e, const char *spec, int V, int C, char *err) {
    if (V < 1 || C < 1) {
        errorf(err, "embedding needs a positive vocabulary and width, got "
               "V=%d, C=%d; fix the model config", V, C);
        return 1;
    }
    if (!spec || !*spec) {
        errorf(err, "empty embedding spec; use dense, kron:n=2,r=1 or "
               "kronxs:n=2,r=1");
        return 1;
    }
    char buf[256];
    if (strlen(spec) >= sizeof buf) {
        errorf(err, "embedding spec is %zu characters long; keep it under "
               "%zu", strlen(spec), sizeof buf);
        return 1;
    }
    strcpy(buf, spec);
    char *opts = strchr(buf, ':');
    if (opts) *opts++ = '\0';
    int kind = -1;
    for (int k = 0; k < NKINDS; k++)
        if (!strcmp(buf, kind_names[k])) kind = k;
    if (kind < 0) {
        errorf(err, "unknown embedding kind '%s' in '%s'; use dense, kron, "
               "kronxs or tt", buf, spec);
        return 1;
    }
    if (kind == EMBED_DENSE && opts) {
        errorf(err, "dense takes no options, got '%s'; use plain 'dense'",
               spec);
        return 1;
    }

    // options; 0 (or -1 for head and the named choices) = not given
    int n = 0, r = 0, nq = 0, nt = 0, q[EMBED_MAX_ORDER], t[EMBED_MAX_ORDER];
    int head = -1, choice[3] = {-1, -1, -1};   // norm, order, layout
    double lr = 0;
    const int grid = kind == EMBED_KRONXS || kind == EMBED_TT;   // slots on a t grid
    for (char *item = opts; item;) {
        char *next = strchr(item, ',');
        if (next) *next++ = '\0';
        char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            errorf(err, "expected key=value in embedding spec '%s', got "
                   "'%s'; e.g. %s:n=2,r=1", spec, item, kind_names[kind]);
            return 1;
        }
        *eq = '\0';
        const char *key = item, *val = eq + 1;
        int c = -1;                                   // which of choice_keys
        for (int i = 0; i < 3; i++)
            if (!strcmp(key, choice_keys[i]) && (i != 2 || grid)) c = i;
        int known = c >= 0 || !strcmp(key, "n") || !strcmp(key, "r") || !strcmp(key, "q") ||
                    !strcmp(key, "head") || !strcmp(key, "lr") ||
                    (grid && !strcmp(key, "t"));
        if (!known) {
            errorf(err, "unknown key '%s' in embedding spec '%s'; %s takes "
                   "%s", key, spec, kind_names[kind], kind == EMBED_KRON
                   ? "n, r, q, head, order, norm and lr"
                   : "n, r, q, t, head, order, layout, norm and lr");
            return 1;
        }
        int seen = !strcmp(key, "n") ? n : !strcmp(key, "r") ? r : !strcmp(key, "q") ? nq
                 : !strcmp(key, "t") ? nt : !strcmp(key, "head") ? head >= 0
                 : !strcmp(key, "lr") ? lr > 0 : choice[c] >= 0;
        if (seen) {
            errorf(err, "key '%s' given twice in embedding spec '%s'; give "
                   "it once", key, spec);
            return 1;
        }
        if (c >= 0) {
            for (int v = 0; v < 3 && choice_values[c][v]; v++)
                if (!strcmp(val, choice_values[c][v])) choice[c] = v;
            if (choice[c] < 0) {
                errorf(err, "%s=%s is not known; use %s=%s%s%s%s%s", key, val,
                       key, choice_values[c][0], "|", choice_values[c][1],
                       choice_values[c][2] ? "|" : "",
                       choice_values[c][2] ? choice_values[c][2] : "");
                return 1;
            }
        } else if (!strcmp(key, "lr")) {
            char *end;
            lr = strtod(val, &end);
            if (end == val || *end || !(lr > 0) || lr > 1e6) {
                errorf(err, "lr=%s is not a positive number; it multiplies "
                       "--lr for the embedding, e.g. lr=3", val);
                return 1;
            }
        } else if (!strcmp(key, "head")) {
            if (!strcmp(val, "0")) head = 0;
            else if (parse_positive(val, &head)) {
                errorf(err, "head=%s is not a count of tokens; give an "
                       "integer from 0 to V-1, e.g. head=256", val);
                return 1;
            }
        } else if (key[0] == 'n' || key[0] == 'r') {
            int v;
            if (parse_positive(val, &v)) {
                errorf(err, "%s=%s is not a positive integer; the %s must "
                       "be at least 1, e.g. %s=2", key, val,
                       key[0] == 'n' ? "order" : "rank", key);
                return 1;
            }
            if (key[0] == 'n' && v > EMBED_MAX_ORDER) {
                errorf(err, "n=%d is out of range; the order must be "
                       "between 1 and %d", v, EMBED_MAX_ORDER);
                return 1;
            }
            *(key[0] == 'n' ? &n : &r) = v;
        } else {
            int rc = parse_factors(val, key[0] == 'q' ? q : t, key[0] == 'q' ? &nq : &nt);
            if (rc == 1)
                errorf(err, "%s=%s is not a list of positive integers; "
                       "write e.g. %s=16x16", key, val, key);
            else if (rc == 2)
                errorf(err, "%s=%s has more than %d factors; use at most "
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
    x.lr_scale = 1;
    x.init_std = 1.0 / sqrt((double)C);
    if (kind == EMBED_DENSE) {
        x.n = x.r = 1;
        x.q[0] = C;
        x.num_params = (size_t)V * C;
        *e = x;
        return 0;
    }
    x.head = head > 0 ? head : 0;
    // The defaults norm=ln and lr=3 come from the study of README "Dense against
    // factorized": a LayerNorm on the product row and factors that learn 3x faster
    // than a dense row each closed part of the gap; norm=none,lr=1 is the old behaviour.
    x.norm = choice[0] >= 0 ? choice[0] : EMBED_NORM_LN;
    x.order = choice[1] > 0 ? choice[1] : 0;
    x.layout = choice[2] > 0 ? choice[2] : 0;
    x.lr_scale = lr > 0 ? lr : 3;
    if (x.head >= V) {
        errorf(err, "head=%d leaves no token to factorize (V=%d); give "
               "head below %d", x.head, V, V);
        return 1;
    }
    const int Vf = V - x.head;                    // factorized slots

    // n: given, else the length of q or t, else 2 (tt: 3); q and t must agree with it
    if (!n) n = nq ? nq : nt ? nt : kind == EMBED_TT ? 3 : 2;
    char fs[128];
    if (nq && nq != n) {
        format_factors(fs, sizeof fs, q, nq);
        errorf(err, "n=%d but q=%s has %d factors; give n factors or drop "
               "n", n, fs, nq);
        return 1;
    }
    if (nt && nt != n) {
        format_factors(fs, sizeof fs, t, nt);
        errorf(err, "n=%d but t=%s has %d factors; give n factors or drop "
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
        np = (double)Vf * x.r * Q;
    } else {
        if (nt) memcpy(x.t, t, sizeof(int) * n);
        else balanced_factors(x.t, n, Vf);
        if (check_factors(x.t, n, Vf, 't', x.head ? "factorized tokens V-head" : "vocabulary",
                          err))
            return 1;
        np = 0;
        for (int j = 0; j < n; j++)
            np += kind == EMBED_TT ? (double)tt_rank(&x, j) * x.t[j] * x.q[j] * tt_rank(&x, j + 1)
                                   : (double)x.r * x.t[j] * x.q[j];
    }
    x.factor_off = (size_t)x.head * C;
    np += (double)x.factor_off;
    x.norm_off = (size_t)np;
    np += x.norm == EMBED_NORM_LN ? 2.0 * C : x.norm == EMBED_NORM_RMS ? C : 0;
    if (np > 4294967296.0) {
        errorf(err, "embedding '%s' would have %.3g parameters; lower r or "
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
    char qs[128], ts[128], layout[32] = "";
    format_factors(qs, sizeof qs, e->q, e->n);
    format_factors(ts, sizeof ts, e->t, e->n);
    const int grid = e->kind != EMBED_KRON;           // kronxs, tt: t and layout
    if (grid)
        snprintf(layout, sizeof layout, ",layout=%s", choice_values[2][e->layout]);
    snprintf(out, cap, "%s:n=%d,r=%d,q=%s%s%s,head=%d,order=%s%s,norm=%s,lr=%.9g",
             kind_names[e->kind], e->n, e->r, qs, grid ? ",t=" : "",
             grid ? ts : "", e->head, choice_values[1][e->order], layout,
             choice_values[0][e->norm], e->lr_scale);
}

void embed_legacy_spec(char *out, size_t cap, const char *spec) {
    int factorized = !strncmp(spec, "kron", 4);
    if (!factorized || strstr(spec, "lr=")) {
        snprintf(out, cap, "%s", spec);
        return;
    }
    snprintf(out, cap, "%s%s,head=0,order=id,norm=none,lr=1%s", spec,
             strchr(spec, ':') ? "" : ":n=2", strncmp(spec, "kronxs", 6) ? "" : ",layout=radix");
}

// ----------------------------------------------------------------------------
// Slots: order=freq

typedef struct { double count; int token; } Ranked;

// decreasing count, then increasing token id
static int by_count(const void *pa, const void *pb) {
    const Ranked *a = pa, *b = pb;
    if (a->count != b->count) return a->count < b->count ? 1 : -1;
    return (a->token > b->token) - (a->token < b->token);
}

void embed_set_order(Embed *e, int *slot, int *token, const double *counts) {
    const int V = e->V;
    Ranked *r = xmalloc(sizeof(Ranked) * (size_t)V);
    for (int w = 0; w < V; w++) r[w] = (Ranked){.count = counts[w], .token = w};
    qsort(r, (size_t)V, sizeof(Ranked), by_count);
    for (int s = 0; s < V; s++) {
        token[s] = r[s].token;
        slot[r[s].token] = s;
    }
    free(r);
    e->slot = slot;
    e->token = token;
}

int embed_use_slots(Embed *e, const int *slot, int *token) {
    for (int s = 0; s < e->V; s++) token[s] = -1;
    for (int w = 0; w < e->V; w++) {
        if (slot[w] < 0 || slot[w] >= e->V || token[slot[w]] >= 0) return 1;
        token[slot[w]] = w;
    }
    e->slot = slot;
    e->token = token;
    return 0;
}

// ----------------------------------------------------------------------------
// Tensors

static int sum_q(const Embed *e) {
    int Q = 0;
    for (int j = 0; j < e->n; j++) Q += e->q[j];
    return Q;
}

// The tensors in order: [head] factors... [norm gain] [ln bias]
int embed_num_tensors(const Embed *e) {
    if (e->kind == EMBED_DENSE) return 1;
    return (e->head > 0) + (e->kind == EMBED_KRON ? 1 : e->n) + (e->norm != EMBED_NORM_NONE) +
           (e->norm == EMBED_NORM_LN);
}

// Unused trailing entries of shape are set to 1.
void embed_tensor_info(const Embed *e, int i, char *name, size_t cap, int *ndim,
                       int shape[4], size_t *offset, size_t *numel, int *decay) {
    for (int d = 0; d < 4; d++) shape[d] = 1;
    *offset = 0;
    *decay = 1;
    *ndim = 2;
    const int nfactor = e->kind == EMBED_KRON ? 1 : e->n;
    if (e->kind == EMBED_DENSE) {
        snprintf(name, cap, "embed.weight");
        shape[0] = e->V;
        shape[1] = e->C;
    } else if (e->head > 0 && i == 0) {
        snprintf(name, cap, "embed.head");
        shape[0] = e->head;
        shape[1] = e->C;
    } else if ((i -= e->head > 0) >= nfactor) {   // the norm's gain, then bias
        snprintf(name, cap, i == nfactor ? "embed.norm.weight" : "embed.norm.bias");
        *offset = e->norm_off + (size_t)(i - nfactor) * e->C;
        *ndim = 1;
        shape[0] = e->C;
        *decay = 0;
    } else if (e->kind == EMBED_KRON) {
        snprintf(name, cap, "embed.kron");
        *offset = e->factor_off;
        *ndim = 3;
        shape[0] = e->V - e->head;
        shape[1] = e->r;
        shape[2] = sum_q(e);
    } else if (e->kind == EMBED_TT) {
        snprintf(name, cap, "embed.tt.%d", i);
        *offset = e->factor_off;
        for (int j = 0; j < i; j++) *offset += tt_core_size(e, j);
        *ndim = 4;
        shape[0] = tt_rank(e, i);
        shape[1] = e->t[i];
        shape[2] = e->q[i];
        shape[3] = tt_rank(e, i + 1);
    } else {
        snprintf(name, cap, "embed.kronxs.%d", i);
        *offset = e->factor_off;
        for (int j = 0; j < i; j++) *offset += (size_t)e->r * e->t[j] * e->q[j];
        *ndim = 3;
        shape[0] = e->r;
        shape[1] = e->t[i];
        shape[2] = e->q[i];
    }
    *numel = (size_t)shape[0] * shape[1] * shape[2] * shape[3];
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
// tt: an entry is sum over the N - 1 inner bond indices of a product of N core entries,
// R^(N-1) products, uncorrelated (two differ in some entry, which enters once and has
// mean 0), so its variance is R^(N-1) s^(2N) and s = (init_std^2 / R^(N-1))^(1/(2N)).
// A core (r_j, t_j, q_j, r_{j+1}) is drawn as r_j matrices t_j x (q_j r_{j+1}) with
// the columns on the sphere, as kronxs's F_{k,j}.

// Head rows are drawn as dense ones. With a norm, the gain starts at init_std and the
// bias at 0, so that normalized rows have the entry scale of dense ones too.
void embed_init(const Embed *e, real *params, uint64_t *rng) {
    if (e->kind == EMBED_DENSE) {
        for (size_t i = 0; i < e->num_params; i++)
            params[i] = (real)(e->init_std * rng_normal(rng));
        return;
    }
    for (size_t i = 0; i < e->factor_off; i++)
        params[i] = (real)(e->init_std * rng_normal(rng));
    for (int c = 0; c < e->C && e->norm != EMBED_NORM_NONE; c++) {
        params[e->norm_off + c] = (real)e->init_std;
        if (e->norm == EMBED_NORM_LN) params[e->norm_off + e->C + c] = 0;
    }
    params += e->factor_off;
    const int tt = e->kind == EMBED_TT;
    const double terms = tt ? ipow(e->r, e->n - 1) : e->r;   // products summed in an entry
    double s = pow(e->init_std * e->init_std / terms, 1.0 / (2 * e->n));
    if (e->kind == EMBED_KRON) {
        size_t nf = e->norm_off - e->factor_off;
        for (size_t i = 0; i < nf; i++) params[i] = (real)(s * rng_normal(rng));
        return;
    }
    int tmax = 1;
    for (int j = 0; j < e->n; j++) tmax = e->t[j] > tmax ? e->t[j] : tmax;
    double *col = xmalloc(sizeof(double) * tmax);
    real *F = params;                                   // F_{k,j}  (t_j, q_j)
    for (int j = 0; j < e->n; j++) {                    // tt: G_j[k] (t_j, q_j r_{j+1})
        const int tj = e->t[j], qj = tt ? e->q[j] * tt_rank(e, j + 1) : e->q[j];
        for (int k = 0; k < (tt ? tt_rank(e, j) : e->r); k++, F += (size_t)tj * qj) {
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
    int pre;                          // reals of all prefixes, sum_{j<N} L[j] (tt: L[j] r_j)
    int rk[EMBED_MAX_ORDER + 1];      // tt: bond ranks r_0 = 1, R, .., R, r_N = 1
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
    size_t x = e->factor_off;
    const int tt = e->kind == EMBED_TT;
    for (int j = 0; j <= e->n; j++) p->rk[j] = tt_rank(e, j);
    for (int j = 0; j < e->n; j++) {
        p->qoff[j] = p->Q;
        p->Q += e->q[j];
        p->xoff[j] = x;
        x += tt ? tt_core_size(e, j) : (size_t)e->r * e->t[j] * e->q[j];
        p->poff[j] = p->pre;
        p->pre += p->L[j] * (tt ? p->rk[j] : 1);
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

// Digits of factorized slot g in the spec's layout (radix or diag), the last fastest.
static void grid_digits(int *d, int g, const Embed *e) {
    for (int j = e->n - 1; j >= 0; j--) {
        d[j] = g % e->t[j];
        g /= e->t[j];
    }
    if (e->layout == EMBED_LAYOUT_DIAG)
        for (int j = e->n - 1, sum = 0; j >= 0; j--) {   // d_j = (a_j + .. + a_{N-1}) mod t_j
            sum += d[j];
            d[j] = sum % e->t[j];
        }
}

static int slot_of(const Embed *e, int w) { return e->slot ? e->slot[w] : w; }
static int token_of(const Embed *e, int s) { return e->token ? e->token[s] : s; }

// Offset of factor j of rank term k of factorized slot g in a (., R, Q) kron block.
static size_t kron_offset(const Plan *p, int g, int k, int j) {
    return ((size_t)g * p->R + k) * p->Q + p->qoff[j];
}

// Offsets of the N factor vectors of rank term k of factorized slot g in the parameter
// block. tt (k = 0): of the core slices G_j[0, d_j, 0, 0], see tt_step.
static void factor_offsets(size_t *off, const Embed *e, const Plan *p, int g, int k) {
    if (e->kind == EMBED_KRON) {
        for (int j = 0; j < p->n; j++) off[j] = e->factor_off + kron_offset(p, g, k, j);
        return;
    }
    int d[EMBED_MAX_ORDER];
    grid_digits(d, g, e);
    for (int j = 0; j < p->n; j++)
        off[j] = e->kind == EMBED_TT ? p->xoff[j] + (size_t)d[j] * p->q[j] * p->rk[j + 1]
                                     : p->xoff[j] + ((size_t)k * p->t[j] + d[j]) * p->q[j];
}

// ----------------------------------------------------------------------------
// The tensor train (tt): one row and its backward
//
// With core j's slice at the slot's digit w_j, M_j(i) = G_j[:, w_j, i, :] (r_j x r_{j+1}),
// the left partial products over the first j digits of the row index, cut as kron's
// prefixes (see top),
//   P_0 = [1] (1 x 1),   P_{j+1}[a q_j + i, :] = P_j[a, :] M_j(i)      (L_{j+1} x r_{j+1}),
// give the row: row = P_N[:, 0] (L_N = C, r_N = 1). About C R + C R^2 / q_{N-1} + ..
// multiply-adds. (P_0 .. P_{N-1} depend only on the digits w_0 .. w_{N-2}.)
// Backward, given the row gradient G (C): let H_{j+1} = dL/dP_{j+1} (L_{j+1} x r_{j+1}),
// the right partial products M_{j+1} .. M_{N-1} contracted with G; H_N[:, 0] = G. From
// the recurrence, for a q_j + i < L_{j+1}, j = N-1 down to 0:
//   dM_j(i)   += sum_a P_j[a, :]^T H_{j+1}[a q_j + i, :]     (r_j x r_{j+1}, outer products)
//   H_j[a, :]  = sum_i H_{j+1}[a q_j + i, :] M_j(i)^T        (H_0 is not needed)
// For N = 2, R = 1 this is kronxs's dF_0 = G f_1, dF_1 = G^T f_0.

// Y[a q + i, :] = alpha X[a, :] M(i) for a q + i < len, one step of the train, with
// M(i)[k, b] = m[k t q r1 + i r1 + b] (a core slice, see factor_offsets).
//                                        Y (len, r1), X (ceil(len / q), r0)
static void tt_step(real *Y, const real *X, const real *m, int t, int q, int r0, int r1,
                    int len, real alpha) {
    const size_t kstride = (size_t)t * q * r1;
    for (int x = 0; x < len; x++) {
        const int a = x / q, i = x % q;
        real *y = Y + (size_t)x * r1;
        for (int b = 0; b < r1; b++) y[b] = 0;
        for (int k = 0; k < r0; k++) {
            const real xa = alpha * X[(size_t)a * r0 + k], *mk = m + k * kstride + (size_t)i * r1;
            for (int b = 0; b < r1; b++) y[b] += xa * mk[b];
        }
    }
}

// P_j for j = 0..N-1 into work + poff[j] (P_0 = 1), from the core slices m.
static void tt_prefixes(real *work, const real *const *m, const Plan *p) {
    work[0] = 1;
    for (int j = 1; j < p->n; j++)
        tt_step(work + p->poff[j], work + p->poff[j - 1], m[j - 1], p->t[j - 1], p->q[j - 1],
                p->rk[j - 1], p->rk[j], p->L[j], 1);
}

// One core of the backward: dm += dL/dM_j, laid out (r_j, q_j, r_{j+1}) (the slice
// without the t_j stride), and, unless H is NULL, H_j += the contraction of H_{j+1}.
//            Hin = H_{j+1} (L_{j+1}, r_{j+1}), P = P_j (L_j, r_j), H (L_j, r_j)
static void tt_core_backward(real *dm, real *H, const real *Hin, const real *P,
                             const real *m, const Plan *p, int j) {
    const int q = p->q[j], r0 = p->rk[j], r1 = p->rk[j + 1];
    const size_t mstride = (size_t)p->t[j] * q * r1, dstride = (size_t)q * r1;
    for (int x = 0; x < p->L[j + 1]; x++) {
        const int a = x / q, i = x % q;
        const real *h = Hin + (size_t)x * r1;
        for (int k = 0; k < r0; k++) {
            const real pa = P[(size_t)a * r0 + k], *mk = m + k * mstride + (size_t)i * r1;
            real *d = dm + k * dstride + (size_t)i * r1;
            for (int b = 0; b < r1; b++) d[b] += pa * h[b];
            if (H) H[(size_t)a * r0 + k] += dot8(mk, h, r1);
        }
    }
}

// out = alpha row of factorized slot g.                       out (C), work (pre)
static void tt_row(real *out, const real *params, const Embed *e, const Plan *p, int g,
                   real alpha, real *work) {
    const int n = p->n;
    size_t off[EMBED_MAX_ORDER];
    const real *m[EMBED_MAX_ORDER];
    factor_offsets(off, e, p, g, 0);
    for (int j = 0; j < n; j++) m[j] = params + off[j];
    tt_prefixes(work, m, p);
    tt_step(out, work + p->poff[n - 1], m[n - 1], p->t[n - 1], p->q[n - 1], p->rk[n - 1], 1,
            p->C, alpha);
}

// out = alpha sum_k (x)_j f_{k,j}, the product row of factorized slot g.
//                                                              out (C), work (pre)
static void product_row(real *out, const real *params, const Embed *e, const Plan *p,
                        int g, real alpha, real *work) {
    if (e->kind == EMBED_TT) {
        tt_row(out, params, e, p, g, alpha, work);
        return;
    }
    memset(out, 0, sizeof(real) * p->C);
    for (int k = 0; k < p->R; k++) {
        size_t off[EMBED_MAX_ORDER];
        const real *f[EMBED_MAX_ORDER];
        factor_offsets(off, e, p, g, k);
        for (int j = 0; j < p->n; j++) f[j] = params + off[j];
        build_prefixes(work, f, p);
        kron_cut(out, work + p->poff[p->n - 1], f[p->n - 1], p->q[p->n - 1], p->C, alpha);
    }
}

// ----------------------------------------------------------------------------
// The norm of a factorized row x (C), with gain gamma and (ln) bias beta:
//   rms: xhat = x r,         r = 1 / sqrt(mean(x^2) + eps)
//   ln:  xhat = (x - mu) r,  r = 1 / sqrt(mean((x - mu)^2) + eps),  mu = mean(x)
//   y = gamma * xhat (+ beta)
// Backward, given dy: dgamma += dy * xhat, dbeta += dy, and with dxhat = dy * gamma,
//   rms: dx = r (dxhat - xhat mean(dxhat xhat))
//   ln:  dx = r (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
// (from d xhat_i / d x_j = r (delta_ij - xhat_i xhat_j / C) for rms; ln subtracts the
// mean first, which adds the -mean(dxhat) term.) eps = 1e-5, as the model's LayerNorm.
#define NORM_EPS 1e-5

// sum_c (x[c] - m) (y[c] - m), or with y NULL sum_c (x[c] - m), in double, as LANES
// interleaved partial sums added in a fixed order: the same on every thread, and a loop
// that vectorizes (one running sum is one dependent add after another, 4 cycles each).
enum { LANES = 8 };
static double centered_sum(const real *x, const real *y, double m, int n) {
    double acc[LANES] = {0}, s = 0;
    int c = 0;
    for (; c + LANES <= n && y; c += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += (x[c + l] - m) * (y[c + l] - m);
    for (; c + LANES <= n && !y; c += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += x[c + l] - m;
    for (; c < n; c++) acc[0] += (x[c] - m) * (y ? y[c] - m : 1);
    for (int l = 0; l < LANES; l++) s += acc[l];
    return s;
}

// xhat (C) in place of x; returns r.
static real norm_standardize(real *x, const Embed *e) {
    const int C = e->C;
    const double mu = e->norm == EMBED_NORM_LN ? centered_sum(x, NULL, 0, C) / C : 0;
    const double ss = centered_sum(x, x, mu, C);
    real r = (real)(1.0 / sqrt(ss / C + NORM_EPS));
    for (int c = 0; c < C; c++) x[c] = (real)((x[c] - mu) * r);
    return r;
}

// x = alpha (gamma xhat + beta) in place: the normalized row of product row x (C).
static void norm_row(real *x, const real *params, const Embed *e, real alpha) {
    norm_standardize(x, e);
    const real *gamma = params + e->norm_off, *beta = gamma + e->C;
    for (int c = 0; c < e->C; c++)
        x[c] = alpha * (gamma[c] * x[c] + (e->norm == EMBED_NORM_LN ? beta[c] : 0));
}

// out = alpha row(slot s): a head row, or the product row, normalized if asked.
//                                                              out (C), work (pre)
static void slot_row(real *out, const real *params, const Embed *e, const Plan *p, int s,
                     real alpha, real *work) {
    const int C = e->C;
    if (s < e->head) {
        const real *h = params + (size_t)s * C;
        for (int c = 0; c < C; c++) out[c] = alpha * h[c];
        return;
    }
    if (e->norm == EMBED_NORM_NONE) {
        product_row(out, params, e, p, s - e->head, alpha, work);
        return;
    }
    product_row(out, params, e, p, s - e->head, 1, work);
    norm_row(out, params, e, alpha);
}

// ----------------------------------------------------------------------------
// kronxs with n = 2: the table as one matrix product
//
// With factor rows a < t_0, b < t_1 and columns i < q_0, j < q_1, entry i q_1 + j of the
// product row of grid cell (a, b) is sum_k F_{k,0}[a, i] F_{k,1}[b, j]. Rearranged with
// rows (a, i) and columns (b, j) (Van Loan and Pitsianis), all of them form one matrix
// of rank R,
//   M[(a, i), (b, j)] = sum_k F_{k,0}[a, i] F_{k,1}[b, j],   M = F_0^T F_1,
// where F_j is the (R, t_j q_j) matrix that tensor j is stored as. So the forward is one
// mm_tn with K = R; the row of slot g is read from M at its cell (a, b) = its digits:
// q_0 runs of q_1 contiguous reals, t_1 q_1 apart, cut to C. Given the rearranged row
// gradients dM (zero at the cells that reach no row: grid cells past V - head, entries
// past C), the chain rule through M = F_0^T F_1 gives the backward as two products,
//   dF_0 += F_1 dM^T (mm_nt, K = t_1 q_1),   dF_1 += F_0 dM (mm_nn, K = t_0 q_0),
// each contracting over the whole table at once: no per-slot scratch, no grouping by
// digit, the reuse across ranks and slots is the matrix product's blocking. Each costs
// R prod(t) prod(q) multiply-adds (about V R C) at matrix-product speed, plus a copy
// of the (V, C) table between the two layouts. M is prod(t) prod(q) reals, so this path
// is taken only while that is at most twice the table (else the per-slot loops).

// The scratch of the matrix path (n reals), grown on demand and kept by the calling
// thread: in a fresh allocation of this size each step, the page faults of its first
// touch cost as much as the products themselves.
static _Thread_local real *ws_buf;
static _Thread_local size_t ws_cap;
static real *workspace(size_t n) {
    if (n > ws_cap) {
        free(ws_buf);
        ws_buf = xmalloc(sizeof(real) * n);
        ws_cap = n;
    }
    return ws_buf;
}

static int matrix_path(const Embed *e) {
    if (e->kind != EMBED_KRONXS || e->n != 2) return 0;
    double cells = (double)e->t[0] * e->q[0] * e->t[1] * e->q[1];
    return cells <= 2.0 * (e->V - e->head) * e->C && cells <= INT_MAX;
}

// Offset in M (t_0 q_0, t_1 q_1) of entry 0 of the product row of factorized slot g.
static size_t cell_offset(int g, const Embed *e) {
    int d[EMBED_MAX_ORDER];
    grid_digits(d, g, e);
    return (size_t)d[0] * e->q[0] * e->t[1] * e->q[1] + (size_t)d[1] * e->q[1];
}

// Copies the C entries of a row between the table layout and M: run i (entries i q_1 ..
// i q_1 + q_1 - 1, the last run cut to C) from src + i src_ld to dst + i dst_ld.
static void copy_runs(real *dst, size_t dst_ld, const real *src, size_t src_ld,
                      const Embed *e) {
    const int C = e->C, q1 = e->q[1];
    for (int i = 0; i * q1 < C; i++)
        memcpy(dst + i * dst_ld, src + i * src_ld, sizeof(real) * (C - i * q1 < q1 ? C - i * q1 : q1));
}

// M = F_0^T F_1, every grid cell's product row, rearranged.      M (t_0 q_0, t_1 q_1)
static void kronxs2_product(real *M, const real *params, const Embed *e) {
    const int R = e->r, m0 = e->t[0] * e->q[0], m1 = e->t[1] * e->q[1];
    const real *F0 = params + e->factor_off, *F1 = F0 + (size_t)R * m0;   // (R, m0), (R, m1)
    mm_tn(M, F0, F1, m0, m1, R, m0, m1, m1, OVERWRITE);
}

// dF_0 += F_1 dM^T and dF_1 += F_0 dM.                           dM (t_0 q_0, t_1 q_1)
static void kronxs2_backward(real *dparams, const real *dM, const real *params,
                             const Embed *e) {
    const int R = e->r, m0 = e->t[0] * e->q[0], m1 = e->t[1] * e->q[1];
    const real *F0 = params + e->factor_off, *F1 = F0 + (size_t)R * m0;   // (R, m0), (R, m1)
    real *dF0 = dparams + e->factor_off, *dF1 = dF0 + (size_t)R * m0;
    mm_nt(dF0, F1, dM, R, m0, m1, m1, m1, m0, ACCUMULATE);
    mm_nn(dF1, F0, dM, R, m1, m0, m0, m1, m1, ACCUMULATE);
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
            slot_row(out + (size_t)i * C, params, e, &p, slot_of(e, tokens[i]), scale, work);
        free(work);
    }
}

// The whole table (V, C), row w = row(slot(w)). Costs (multiply-adds; memory is the
// (V, C) scratch):
//   kron:   V R C (1 + 1/q_{N-1} + ..), every row built on its own.
//   kronxs: V R C for the last factor, plus the prefixes f_0 (x) .. (x) f_{N-2}. In the
//           radix layout, all t_{N-1} consecutive slots sharing the digits
//           g_0..g_{N-2} reuse them: about (V / t_{N-1}) R C / q_{N-1} more. Each
//           thread keeps the R prefixes of its current block, so a row is R cut
//           products of a cached prefix with F_{k,N-1}[g_{N-1}, :]. (In the diag
//           layout consecutive slots share no prefix: V R C / q_{N-1} more.)
// A norm adds 3 C per row.
const real *embed_table_forward_ref(real *scratch, const real *params, const Embed *e) {
    if (e->kind == EMBED_DENSE) return params;
    const int V = e->V, C = e->C;
    Plan p;
    plan_init(&p, e);
    const int n = p.n, tN = p.t[n - 1], qN = p.q[n - 1];
    #pragma omp parallel
    {
        real *work = xmalloc(sizeof(real) * p.pre * p.R);  // (R, pre) prefixes of a block
        int cached[EMBED_MAX_ORDER], have = 0;            // whose digits work holds
        #pragma omp for schedule(static)
        for (int s = 0; s < V; s++) {
            real *row = scratch + (size_t)token_of(e, s) * C;   // (C)
            if (e->kind != EMBED_KRONXS || s < e->head) {
                slot_row(row, params, e, &p, s, 1, work);
                continue;
            }
            const int g = s - e->head;
            int d[EMBED_MAX_ORDER];
            grid_digits(d, g, e);
            if (!have || memcmp(d, cached, sizeof(int) * (n - 1))) {
                memcpy(cached, d, sizeof(int) * n);
                have = 1;
                for (int k = 0; k < p.R; k++) {
                    size_t off[EMBED_MAX_ORDER];
                    const real *f[EMBED_MAX_ORDER];
                    factor_offsets(off, e, &p, g, k);
                    for (int j = 0; j < n; j++) f[j] = params + off[j];
                    build_prefixes(work + (size_t)k * p.pre, f, &p);
                }
            }
            memset(row, 0, sizeof(real) * C);
            for (int k = 0; k < p.R; k++) {
                const real *FN = params + p.xoff[n - 1] + ((size_t)k * tN + d[n - 1]) * qN;
                kron_cut(row, work + (size_t)k * p.pre + p.poff[n - 1], FN, qN, C, 1);
            }
            if (e->norm != EMBED_NORM_NONE) norm_row(row, params, e, 1);
        }
        free(work);
    }
    return scratch;
}

// kronxs, n = 2: the rows read from M = F_0^T F_1 (see above); the rest as the reference.
const real *embed_table_forward(real *scratch, const real *params, const Embed *e) {
    if (!matrix_path(e)) return embed_table_forward_ref(scratch, params, e);
    const int V = e->V, C = e->C;
    real *M = workspace((size_t)e->t[0] * e->q[0] * e->t[1] * e->q[1]);
    kronxs2_product(M, params, e);
    const size_t m1 = (size_t)e->t[1] * e->q[1];
    #pragma omp parallel for schedule(static)
    for (int s = 0; s < V; s++) {
        real *row = scratch + (size_t)token_of(e, s) * C;   // (C)
        if (s < e->head) {
            memcpy(row, params + (size_t)s * C, sizeof(real) * C);
            continue;
        }
        copy_runs(row, e->q[1], M + cell_offset(s - e->head, e), m1, e);
        if (e->norm != EMBED_NORM_NONE) norm_row(row, params, e, 1);
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

// F_{k,j}[a, :] += sum of gtok[u, k, factor j] over the factorized slots grid[u] with
// digit a in position j, in increasing u; one thread per destination row (k, j, a).
static void kronxs_reduce(real *dparams, const real *gtok, const int *grid, int nu,
                          const Embed *e, const Plan *p) {
    int *digits = xmalloc(sizeof(int) * (size_t)nu * p->n);   // (nu, N)
    int *key = xmalloc(sizeof(int) * (size_t)nu), *order = xmalloc(sizeof(int) * (size_t)nu);
    for (int u = 0; u < nu; u++) grid_digits(digits + (size_t)u * p->n, grid[u], e);
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

// tt: dparams += the cores' gradient from nf factorized slots grid[u] with row
// gradients G (nf, C). Slots share core slices, so, as kronxs, each slot's slice
// gradients go to scratch (r_j q_j r_{j+1} reals per core, about R^2 q a slot), and for
// each core j the slots are grouped by their digit w and reduced in increasing u, one
// thread per destination row G_j[k, w, :, :]. TT_CHUNK slots at a time bound the
// scratch (4 R^2 q KB in float: 18 MB for R = 26, q = 7); chunks are added in order,
// so the result does not depend on the threads.
// A run of consecutive slots whose digits differ only in the last (up to t_{N-1} of them
// in the radix layout) shares P_0..P_{N-1}, and the loss depends on what lies below
// core N-1 only through the sum of the run's H_{N-1}: so a run builds its prefixes
// once, each slot adds its H_{N-1}, and cores N-2..0 are walked back once per run, their
// gradient going to the scratch of the run's first slot. One thread per run.
#define TT_CHUNK 1024
static void tt_slots_backward(real *dparams, const real *G, const int *grid, int nf,
                              const real *params, const Embed *e, const Plan *p) {
    const int n = p->n;
    size_t soff[EMBED_MAX_ORDER], S = 0;              // core j within a slot's scratch
    int tmax = 1;
    for (int j = 0; j < n; j++) {
        soff[j] = S;
        S += (size_t)p->rk[j] * p->q[j] * p->rk[j + 1];
        tmax = p->t[j] > tmax ? p->t[j] : tmax;
    }
    real *gslot = xmalloc(sizeof(real) * TT_CHUNK * S);     // (TT_CHUNK, S)
    int *digits = xmalloc(sizeof(int) * TT_CHUNK * n);       // (TT_CHUNK, N)
    int *key = xmalloc(sizeof(int) * TT_CHUNK), *order = xmalloc(sizeof(int) * TT_CHUNK);
    int *start = xmalloc(sizeof(int) * ((size_t)tmax + 1));
    int *run = xmalloc(sizeof(int) * (TT_CHUNK + 1));        // run r is u in [run[r], run[r+1])
    for (int u0 = 0; u0 < nf; u0 += TT_CHUNK) {
        const int nc = nf - u0 < TT_CHUNK ? nf - u0 : TT_CHUNK;
        memset(gslot, 0, sizeof(real) * nc * S);
        int nrun = 0;
        for (int u = 0; u < nc; u++) {
            grid_digits(digits + (size_t)u * n, grid[u0 + u], e);
            if (!u || memcmp(digits + (size_t)u * n, digits + (size_t)(u - 1) * n,
                             sizeof(int) * (n - 1)))
                run[nrun++] = u;
        }
        run[nrun] = nc;
        #pragma omp parallel
        {
            real *work = xmalloc(sizeof(real) * 2 * (size_t)p->pre);  // P_j, then H_j
            #pragma omp for schedule(static)
            for (int r = 0; r < nrun; r++) {
                size_t off[EMBED_MAX_ORDER];
                const real *m[EMBED_MAX_ORDER];
                factor_offsets(off, e, p, grid[u0 + run[r]], 0);
                for (int j = 0; j < n; j++) m[j] = params + off[j];
                tt_prefixes(work, m, p);
                real *H = work + p->pre;                          // H_j at H + poff[j]
                memset(H, 0, sizeof(real) * p->pre);
                for (int u = run[r]; u < run[r + 1]; u++) {       // core N-1: per slot
                    factor_offsets(off, e, p, grid[u0 + u], 0);
                    tt_core_backward(gslot + u * S + soff[n - 1], n > 1 ? H + p->poff[n - 1] : NULL,
                                     G + (size_t)(u0 + u) * p->C, work + p->poff[n - 1],
                                     params + off[n - 1], p, n - 1);
                }
                for (int j = n - 2; j >= 0; j--)                  // the others: per run
                    tt_core_backward(gslot + run[r] * S + soff[j], j ? H + p->poff[j] : NULL,
                                     H + p->poff[j + 1], work + p->poff[j], m[j], p, j);
            }
            free(work);
        }
        for (int j = 0; j < n; j++) {
            const int tj = p->t[j];
            const size_t row = (size_t)p->q[j] * p->rk[j + 1];   // G_j[k, w, :, :]
            for (int u = 0; u < nc; u++) key[u] = digits[(size_t)u * n + j];
            group_by_key(order, start, key, nc, tj);
            #pragma omp parallel for schedule(static)
            for (int kw = 0; kw < p->rk[j] * tj; kw++) {
                const int k = kw / tj, w = kw % tj;
                real *dst = dparams + p->xoff[j] + (size_t)kw * row;
                for (int s = start[w]; s < start[w + 1]; s++) {
                    const real *src = gslot + order[s] * S + soff[j] + k * row;
                    for (size_t b = 0; b < row; b++) dst[b] += src[b];
                }
            }
        }
    }
    free(run);
    free(start);
    free(order);
    free(key);
    free(digits);
    free(gslot);
}

// X[u] = the product row of factorized slot grid[u]: read from M (kronxs2_product) if
// given, else built.                                                        X (nu, C)
static void product_rows(real *X, const int *grid, int nu, const real *M,
                         const real *params, const Embed *e, const Plan *p) {
    const int C = e->C;
    #pragma omp parallel
    {
        real *work = xmalloc(sizeof(real) * p->pre);
        #pragma omp for schedule(static)
        for (int u = 0; u < nu; u++) {
            if (M) copy_runs(X + (size_t)u * C, e->q[1], M + cell_offset(grid[u], e),
                             (size_t)e->t[1] * e->q[1], e);
            else product_row(X + (size_t)u * C, params, e, p, grid[u], 1, work);
        }
        free(work);
    }
}

// The norm's backward for nu factorized slots with product rows X (nu, C, overwritten
// with xhat) and row gradients G (nu, C): dgamma, dbeta into dparams, and the gradient
// of the product rows into dx (nu, C). The gain's gradient sums over the slots in
// increasing u, one thread per block of channels.
static void norm_backward(real *dparams, real *dx, const real *G, real *X, int nu,
                          const real *params, const Embed *e) {
    const int C = e->C;
    real *r = xmalloc(sizeof(real) * (size_t)nu);
    #pragma omp parallel for schedule(static)
    for (int u = 0; u < nu; u++) r[u] = norm_standardize(X + (size_t)u * C, e);
    real *dgamma = dparams + e->norm_off, *dbeta = dgamma + C;
    const real *gamma = params + e->norm_off;
    enum { CB = 32 };                                  // channels of a thread's block
    #pragma omp parallel for schedule(static)
    for (int c0 = 0; c0 < C; c0 += CB) {               // along rows, not down columns
        const int cn = C - c0 < CB ? C - c0 : CB;
        real sg[CB] = {0}, sb[CB] = {0};
        for (int u = 0; u < nu; u++) {
            const real *g = G + (size_t)u * C + c0, *xh = X + (size_t)u * C + c0;
            for (int c = 0; c < cn; c++) {
                sg[c] += g[c] * xh[c];
                sb[c] += g[c];
            }
        }
        for (int c = 0; c < cn; c++) {
            dgamma[c0 + c] += sg[c];
            if (e->norm == EMBED_NORM_LN) dbeta[c0 + c] += sb[c];
        }
    }
    #pragma omp parallel for schedule(static)
    for (int u = 0; u < nu; u++) {
        const real *g = G + (size_t)u * C, *xh = X + (size_t)u * C;
        real *d = dx + (size_t)u * C;
        for (int c = 0; c < C; c++) d[c] = g[c] * gamma[c];   // dxhat
        const double mean_d = e->norm == EMBED_NORM_LN ? centered_sum(d, NULL, 0, C) / C : 0;
        const double mean_dx = centered_sum(d, xh, 0, C) / C;   // mean(dxhat xhat)
        for (int c = 0; c < C; c++)
            d[c] = (real)(r[u] * (d[c] - mean_d - xh[c] * mean_dx));
    }
    free(r);
}

// dparams += the gradient from nu distinct slots uslot[u], in increasing order, each
// with its summed, scaled row gradient G[u, :]. by_matrix: kronxs n = 2 through
// M = F_0^T F_1 when matrix_path allows and the factorized slots are at least an
// eighth of the grid, else per slot. (The products cost the same for any number of
// slots, and run several times faster per multiply-add than the per-slot loops: for
// the 1482 distinct tokens of 4096 drawn from Zipf's law, V = 8000, C = 256, r = 36,
// the rows' backward took 60% of the per-slot time.)                     G (nu, C)
static void slots_backward(real *dparams, const real *G, const int *uslot, int nu,
                           const real *params, const Embed *e, int by_matrix) {
    const int C = e->C;
    const int own = e->kind == EMBED_DENSE ? e->V : e->head;   // slots with own rows
    int nh = 0;                                        // they come first
    while (nh < nu && uslot[nh] < own) nh++;
    #pragma omp parallel for schedule(static)
    for (int u = 0; u < nh; u++) {                     // dense and head rows: own rows
        real *d = dparams + (size_t)uslot[u] * C;
        const real *g = G + (size_t)u * C;
        for (int c = 0; c < C; c++) d[c] += g[c];
    }
    if (e->kind == EMBED_DENSE) return;
    const int nf = nu - nh;
    G += (size_t)nh * C;
    int *grid = xmalloc(sizeof(int) * ((size_t)nf + 1));   // factorized slot of each u
    for (int u = 0; u < nf; u++) grid[u] = uslot[nh + u] - e->head;
    Plan p;
    plan_init(&p, e);
    // The matrix path's M (then the rearranged gradient dM in the same place); with a
    // norm, the product rows X (nf, C) and their gradient dx (nf, C). Kept scratch on
    // the matrix path, allocated here otherwise.
    const int matrix = by_matrix && matrix_path(e) && 8.0 * nf >= (double)e->t[0] * e->t[1];
    const size_t cells = matrix ? (size_t)e->t[0] * e->q[0] * e->t[1] * e->q[1] : 0;
    const size_t rows = e->norm != EMBED_NORM_NONE ? (size_t)nf * C : 0;
    real *buf = matrix ? workspace(cells + 2 * rows) : xmalloc(sizeof(real) * 2 * rows);
    real *M = matrix ? buf : NULL, *X = buf + cells, *dx = X + rows;
    if (e->norm != EMBED_NORM_NONE) {
        if (M) kronxs2_product(M, params, e);
        product_rows(X, grid, nf, M, params, e, &p);
        norm_backward(dparams, dx, G, X, nf, params, e);
        G = dx;
    }
    if (e->kind == EMBED_TT) {
        tt_slots_backward(dparams, G, grid, nf, params, e, &p);
        free(buf);
        free(grid);
        return;
    }
    if (M) {
        if (cells > (size_t)nf * C) memset(M, 0, sizeof(real) * cells);   // cells of no row
        #pragma omp parallel for schedule(static)
        for (int u = 0; u < nf; u++)
            copy_runs(M + cell_offset(grid[u], e), (size_t)e->t[1] * e->q[1],
                      G + (size_t)u * C, e->q[1], e);
        kronxs2_backward(dparams, M, params, e);
        free(grid);
        return;
    }
    // kron: gradients go straight to the slot's own parameters. kronxs: to gtok
    // (nf, R, Q), laid out like kron parameters, then reduced into the shared rows.
    real *gtok = NULL;
    if (e->kind == EMBED_KRONXS) {
        gtok = xmalloc(sizeof(real) * (size_t)nf * p.R * p.Q);
        memset(gtok, 0, sizeof(real) * (size_t)nf * p.R * p.Q);
    }
    #pragma omp parallel
    {
        real *work = xmalloc(sizeof(real) * ((size_t)p.pre + p.L[p.n - 1]));
        #pragma omp for schedule(static)
        for (int u = 0; u < nf; u++) {
            for (int k = 0; k < p.R; k++) {
                size_t off[EMBED_MAX_ORDER];
                const real *f[EMBED_MAX_ORDER];
                real *df[EMBED_MAX_ORDER];
                factor_offsets(off, e, &p, grid[u], k);
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
        kronxs_reduce(dparams, gtok, grid, nf, e, &p);
        free(gtok);
    }
    free(buf);
    free(grid);
}

// by_matrix: see slots_backward.
static void rows_backward(real *dparams, const real *dout, const int *tokens,
                          const real *params, const Embed *e, int N, real scale,
                          int by_matrix) {
    const int V = e->V, C = e->C;
    // group the positions by slot; uslot lists the distinct slots in increasing order
    int *key = xmalloc(sizeof(int) * (size_t)N), *order = xmalloc(sizeof(int) * (size_t)N);
    int *start = xmalloc(sizeof(int) * ((size_t)V + 1));
    for (int i = 0; i < N; i++) key[i] = slot_of(e, tokens[i]);
    group_by_key(order, start, key, N, V);
    int *uslot = xmalloc(sizeof(int) * (size_t)N), nu = 0;
    for (int s = 0; s < V; s++)
        if (start[s + 1] > start[s]) uslot[nu++] = s;
    real *G = xmalloc(sizeof(real) * (size_t)nu * C);         // (nu, C)
    #pragma omp parallel for schedule(static)
    for (int u = 0; u < nu; u++) {
        real *g = G + (size_t)u * C;
        memset(g, 0, sizeof(real) * C);
        for (int i = start[uslot[u]]; i < start[uslot[u] + 1]; i++) {
            const real *d = dout + (size_t)order[i] * C;
            for (int c = 0; c < C; c++) g[c] += d[c];
        }
        for (int c = 0; c < C; c++) g[c] *= scale;
    }
    slots_backward(dparams, G, uslot, nu, params, e, by_matrix);
    free(G);
    free(uslot);
    free(start);
    free(order);
    free(key);
}

void embed_rows_backward_ref(real *dparams, const real *dout, const int *tokens,
                             const real *params, const Embed *e, int N, real scale) {
    rows_backward(dparams, dout, tokens, params, e, N, scale, 0);
}

void embed_rows_backward(real *dparams, const real *dout, const int *tokens,
                         const real *params, const Embed *e, int N, real scale) {
    rows_backward(dparams, dout, tokens, params, e, N, scale, 1);
}

// Costs (multiply-adds): kron V R 2C; kronxs V R 2C plus V R Q for the reduction, and
// V R Q reals of scratch for the per-slot factor gradients; with a norm, one more
// product row per slot (the forward's xhat is not kept). Rows g >= V - head of a
// kronxs grid (prod t > V - head) are not in the table and contribute nothing.
// by_matrix (see slots_backward): kronxs n = 2 instead costs two matrix products of
// about V R C each and one M (t_0 q_0, t_1 q_1) of scratch, plus M = F_0^T F_1 again
// with a norm (see "kronxs with n = 2").
static void table_backward(real *dparams, const real *dtable, const real *params,
                           const Embed *e, int by_matrix) {
    const int V = e->V, C = e->C;
    int *uslot = xmalloc(sizeof(int) * (size_t)V);
    for (int s = 0; s < V; s++) uslot[s] = s;
    real *G = NULL;                                   // dtable in slot order, if not
    if (e->token) {
        G = xmalloc(sizeof(real) * (size_t)V * C);
        #pragma omp parallel for schedule(static)
        for (int s = 0; s < V; s++)
            memcpy(G + (size_t)s * C, dtable + (size_t)e->token[s] * C, sizeof(real) * C);
    }
    slots_backward(dparams, G ? G : dtable, uslot, V, params, e, by_matrix);
    free(G);
    free(uslot);
}

void embed_table_backward_ref(real *dparams, const real *dtable, const real *params,
                              const Embed *e) {
    table_backward(dparams, dtable, params, e, 0);
}

void embed_table_backward(real *dparams, const real *dtable, const real *params,
                          const Embed *e) {
    table_backward(dparams, dtable, params, e, 1);
}
