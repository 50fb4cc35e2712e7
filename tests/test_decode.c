// test_decode.c: incremental decoding against the plain path, and beam search against
// greedy decoding and against a brute-force search over every sequence. Built twice:
// in double (tests/test_decode_double), where cached and uncached logits agree to
// 1e-12, and in float, to 1e-5 (the two paths multiply matrices of different row
// counts, so their sums are rounded in different orders).
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "../model.h"
#include "../generate.h"
#include "../tokenizer.h"
#include "check.h"

#ifdef KF_DOUBLE
#define TOL 1e-12
#else
#define TOL 1e-5
#endif

static uint64_t rng = 777;

// A random model; weights larger than the init so that its choices depend on the input.
static int build(Model *m, int arch, int tie, const char *embed, int V, int C, int NH, int L,
                 int maxT) {
    Config cfg;
    config_default(&cfg);
    cfg.arch = arch; cfg.V = V; cfg.C = C; cfg.NH = NH; cfg.F = 2 * C;
    cfg.Le = arch == ARCH_SEQ2SEQ ? L : 0; cfg.Ld = L; cfg.maxT = maxT; cfg.tie = tie;
    snprintf(cfg.embed, sizeof cfg.embed, "%s", embed);
    char err[KF_ERRLEN];
    if (model_build(m, &cfg, err)) { CHECK(0, "model_build", "%s", err); return 1; }
    model_init(m, 11);
    for (size_t i = 0; i < m->num_params; i++) m->param_mem[i] += 0.15 * rng_normal(&rng);
    m->training = 0;
    return 0;
}

// Sources (B, S) of different lengths, padded, each ending in <eos>.
static void make_sources(int *src, int B, int S, int V) {
    for (int b = 0; b < B; b++) {
        int len = S - 1 - b % (S - 1);
        for (int s = 0; s < S; s++)
            src[b * S + s] = s < len ? TOK_BYTE0 + (int)(rng_next(&rng) % (uint64_t)(V - TOK_BYTE0))
                           : s == len ? TOK_EOS : TOK_PAD;
    }
}

static double rel_diff(const real *a, const real *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / (scale + 1e-30));
    return worst;
}

// Runs T steps of cached decoding on B rows, feeding each row the argmax of the plain
// path's logits, and compares the logits of every step. Half way, the rows are
// reordered (repeated and dropped, as beam search does), and the plain path is given
// the same rows: the sources re-encoded in the new order.
static void test_cached_equals_uncached(int arch, int tie, const char *embed, int NH, int L,
                                        const char *name) {
    int V = 23, C = 16, maxT = 12, B = 4, S = 6, T = maxT - 1;
    Model m;
    if (build(&m, arch, tie, embed, V, C, NH, L, maxT)) return;
    int enc = arch == ARCH_SEQ2SEQ;
    int src[4 * 6], src2[4 * 6], prefix[4 * 12], prefix2[4 * 12], tok[4];
    int from[4] = {2, 2, 0, 3};   // after the reorder: row r continues row from[r]
    real *cached = malloc((size_t)B * V * sizeof(real));
    make_sources(src, B, S, V);
    for (int b = 0; b < B; b++) {
        memcpy(src2 + b * S, src + from[b] * S, (size_t)S * sizeof(int));
        prefix[b * maxT] = TOK_BOS;
    }
    if (enc) model_encode(&m, src, B, S);
    model_decode_begin(&m, B, B, NULL, maxT);
    double worst = 0;
    int same_tokens = 1;
    for (int t = 1; t <= T; t++) {
        if (t == T / 2) {   // reorder rows, in the cache and in the plain path's prefixes
            model_decode_select(&m, from, B);
            memcpy(prefix2, prefix, sizeof prefix);
            for (int b = 0; b < B; b++)
                memcpy(prefix + b * maxT, prefix2 + from[b] * maxT, (size_t)maxT * sizeof(int));
        }
        for (int b = 0; b < B; b++) tok[b] = prefix[b * maxT + t - 1];
        model_decode_step(&m, tok);
        memcpy(cached, m.logits, (size_t)B * V * sizeof(real));
        // the plain path on the prefixes (B, t), against the matching encoding
        int in[4 * 12];
        for (int b = 0; b < B; b++) memcpy(in + b * t, prefix + b * maxT, (size_t)t * sizeof(int));
        if (enc) model_encode(&m, t < T / 2 ? src : src2, B, S);
        model_decode(&m, in, B, t);
        worst = fmax(worst, rel_diff(cached, m.logits, (size_t)B * V));
        for (int b = 0; b < B && t < maxT; b++) {
            int best = TOK_BYTE0, best_cached = TOK_BYTE0;
            for (int v = TOK_BYTE0; v < V; v++) {
                if (m.logits[b * V + v] > m.logits[b * V + best]) best = v;
                if (cached[b * V + v] > cached[b * V + best_cached]) best_cached = v;
            }
            same_tokens &= best == best_cached;
            if (t < maxT - 1) prefix[b * maxT + t] = best;
        }
    }
    CHECK(worst < TOL && same_tokens, name, "worst relative difference %g (tolerance %g), same tokens %d",
          worst, TOL, same_tokens);
    free(cached);
    model_free(&m);
}

#ifndef KF_DOUBLE
// Beam 1 is greedy decoding, and greedy with and without the cache agree.
static void test_beam1_is_greedy(void) {
    Model m;
    rng = 2;   // this test's own random stream: rows that end and one that does not
    int V = 30, B = 5, S = 7, max_len = 14;
    if (build(&m, ARCH_SEQ2SEQ, 0, "dense", V, 16, 2, 2, 16)) return;
    int src[5 * 7], g[5 * 14], gl[5], u[5 * 14], ul[5], bm[5 * 14], bl[5];
    make_sources(src, B, S, V);
    model_encode(&m, src, B, S);
    decode_greedy(&m, B, max_len, 0, g, gl);
    model_encode(&m, src, B, S);
    decode_greedy(&m, B, max_len, 1, u, ul);
    model_encode(&m, src, B, S);
    decode_beam(&m, B, 1, 1.0, max_len, bm, bl, NULL);
    int same_u = 1, same_b = 1, ended = 0;
    for (int b = 0; b < B; b++) {
        same_u &= gl[b] == ul[b] && !memcmp(g + b * max_len, u + b * max_len, (size_t)gl[b] * sizeof(int));
        same_b &= gl[b] == bl[b] && !memcmp(g + b * max_len, bm + b * max_len, (size_t)gl[b] * sizeof(int));
        ended += gl[b] < max_len;
    }
    CHECK(same_u, "greedy: cached and uncached give the same tokens", "differ");
    CHECK(same_b, "beam 1 gives greedy's tokens", "differ");
    CHECK(ended > 0 && ended < B, "greedy test sees rows that end before max_len, and one that does not",
          "%d of %d ended", ended, B);
    model_free(&m);
}

// sum of log p over y_1..y_n and then <eos>, given one source sentence, by the plain path.
static double sequence_logp(Model *m, const int *src, int S, const int *y, int n) {
    int in[8];
    double total = 0;
    model_encode(m, src, 1, S);
    in[0] = TOK_BOS;
    for (int t = 0; t <= n; t++) {
        if (t > 0) in[t] = y[t - 1];
        model_decode(m, in, 1, t + 1);
        const real *lg = m->logits;
        double mx = lg[0], sum = 0;
        for (int v = 1; v < m->cfg.V; v++) mx = fmax(mx, lg[v]);
        for (int v = 0; v < m->cfg.V; v++) sum += exp(lg[v] - mx);
        int next = t < n ? y[t] : TOK_EOS;
        total += lg[next] - mx - log(sum);
    }
    return total;
}

// On a model with 3 ordinary tokens and at most 3 tokens per hypothesis there are
// 1 + 3 + 9 + 27 = 40 hypotheses; a beam of 40 holds every prefix, so beam search must
// find exactly the best of them, with its score. Several random models, so that some
// sentence ends early with a hypothesis that a longer one beats later: the case that
// tests the rule for stopping a sentence.
static void test_beam_exact(double lenpen, const char *name) {
    int V = TOK_BYTE0 + 3, B = 3, S = 4, max_len = 3, K = 40, models = 8;
    int ok = 1, nonempty = 0;
    double worst = 0;
    for (int trial = 0; trial < models; trial++) {
        Model m;
        if (build(&m, ARCH_SEQ2SEQ, 0, "dense", V, 8, 2, 1, 8)) return;
        for (size_t i = 0; i < m.num_params; i++) m.param_mem[i] *= 3;   // peaked distributions
        int src[3 * 4], hyp[3 * 3], hl[3];
        double score[3];
        make_sources(src, B, S, V);
        model_encode(&m, src, B, S);
        decode_beam(&m, B, K, lenpen, max_len, hyp, hl, score);
        for (int b = 0; b < B; b++) {
            double best = -INFINITY;
            int best_y[3], best_n = 0, y[3];
            for (int n = 0; n <= max_len; n++) {
                int count = 1;
                for (int i = 0; i < n; i++) count *= 3;
                for (int c = 0; c < count; c++) {
                    for (int i = 0, x = c; i < n; i++, x /= 3) y[i] = TOK_BYTE0 + x % 3;
                    double s = sequence_logp(&m, src + b * S, S, y, n) / pow(n + 1.0, lenpen);
                    if (s > best) { best = s; best_n = n; memcpy(best_y, y, sizeof y); }
                }
            }
            ok &= hl[b] == best_n && !memcmp(hyp + b * max_len, best_y, (size_t)best_n * sizeof(int));
            worst = fmax(worst, fabs(score[b] - best));
            nonempty += best_n > 0;
        }
        model_free(&m);
    }
    CHECK(ok && worst < 1e-4 && (lenpen == 0 || nonempty > 0), name,
          "beam's best differs from brute force (score difference %g, nonempty %d)", worst, nonempty);
}

// A wider beam never scores worse than greedy under its own rule (lenpen 0: the sum).
static void test_beam_beats_greedy(void) {
    Model m;
    int V = 40, B = 6, S = 6, max_len = 10;
    if (build(&m, ARCH_SEQ2SEQ, 1, "kronxs:n=2,r=2", V, 16, 2, 2, 12)) return;
    int src[6 * 6], hyp[6 * 10], hl[6];
    double s1[6], s5[6];
    make_sources(src, B, S, V);
    model_encode(&m, src, B, S);
    decode_beam(&m, B, 1, 0.0, max_len, hyp, hl, s1);
    model_encode(&m, src, B, S);
    decode_beam(&m, B, 5, 0.0, max_len, hyp, hl, s5);
    int ok = 1, better = 0;
    for (int b = 0; b < B; b++) { ok &= s5[b] >= s1[b] - 1e-6; better += s5[b] > s1[b] + 1e-6; }
    CHECK(ok, "beam 5 scores at least as well as beam 1", "a sentence scored worse");
    printf("(beam 5 found a better hypothesis for %d of %d sentences)\n", better, B);
    model_free(&m);
}
#endif

int main(void) {
    test_cached_equals_uncached(ARCH_SEQ2SEQ, 1, "dense", 2, 2, "cached = uncached: seq2seq, tied dense");
    test_cached_equals_uncached(ARCH_SEQ2SEQ, 0, "dense", 4, 1, "cached = uncached: seq2seq, untied, 4 heads");
    test_cached_equals_uncached(ARCH_SEQ2SEQ, 1, "kronxs:n=2,r=2", 2, 3, "cached = uncached: seq2seq, tied kronxs, 3 layers");
    test_cached_equals_uncached(ARCH_LM, 1, "dense", 2, 2, "cached = uncached: lm, tied dense");
    test_cached_equals_uncached(ARCH_LM, 0, "kron:n=2,r=1", 1, 2, "cached = uncached: lm, untied kron, 1 head");
#ifndef KF_DOUBLE
    test_beam1_is_greedy();
    test_beam_exact(0.0, "beam of every prefix = brute force, lenpen 0");
    test_beam_exact(1.0, "beam of every prefix = brute force, lenpen 1");
    test_beam_exact(0.6, "beam of every prefix = brute force, lenpen 0.6");
    test_beam_exact(2.0, "beam of every prefix = brute force, lenpen 2 (long hypotheses win late)");
    test_beam_beats_greedy();
#endif
    CHECK_EXIT();
}
