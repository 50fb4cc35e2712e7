// generate.c: see generate.h.
#include "generate.h"
#include "fileio.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

char *tokens_to_text(const Tokenizer *tok, const int *ids, size_t n, char *err) {
    char small[256];
    long need = tokenizer_decode(tok, ids, n, small, sizeof(small), err);
    if (need < 0) return NULL;
    char *s = malloc((size_t)need + 1);
    if (!s) { errorf(err, "out of memory decoding"); return NULL; }
    if ((size_t)need <= sizeof(small)) memcpy(s, small, (size_t)need);
    else tokenizer_decode(tok, ids, n, s, (size_t)need, err);
    s[need] = '\0';
    return s;
}

// ----------------------------------------------------------------------------
// decoding an encoded batch

void decode_defaults(DecodeOptions *o) {
    memset(o, 0, sizeof(*o));
    o->beam = 5;
    o->lenpen = 1.0;
    o->batch = 32;
}

int decode_check(const DecodeOptions *o, const Model *m, char *err) {
    if (o->beam < 1 || o->beam > 1000) {
        errorf(err, "--beam %d must be in [1, 1000] (1 is greedy)", o->beam);
        return 1;
    }
    if (!isfinite(o->lenpen) || o->lenpen < -10 || o->lenpen > 10) {
        errorf(err, "--lenpen %g must be a number in [-10, 10] (1 divides by the length, "
               "0 turns the penalty off)", o->lenpen);
        return 1;
    }
    if (o->max_len < 0 || o->max_len > m->cfg.maxT - 1) {
        errorf(err, "--max-len %d must be in [1, %d], the model's maximum", o->max_len,
               m->cfg.maxT - 1);
        return 1;
    }
    if (o->batch < 1 || o->batch > 100000) {
        errorf(err, "--batch %d must be in [1, 100000]", o->batch);
        return 1;
    }
    if (o->no_cache && o->beam != 1) {
        errorf(err, "--no-cache decodes greedily only; add --beam 1");
        return 1;
    }
    return 0;
}

// The most likely next token of a row: <eos> or an ordinary token (never <pad> or
// <bos>); ties go to the smaller id.
static int argmax_token(const real *logit, int V) {
    int best = TOK_EOS;
    for (int v = TOK_BYTE0; v < V; v++) if (logit[v] > logit[best]) best = v;
    return best;
}

// The plain path: every step re-runs the decoder on the whole prefix of every row.
static void greedy_uncached(Model *m, int B, int max_len, int *hyp, int *hyp_len) {
    // prefix (B, t): row b is <bos> and its tokens so far; padding once it has ended
    int V = m->cfg.V, B_done = 0;
    int *prefix = malloc((size_t)B * (max_len + 1) * sizeof(int));
    unsigned char *done = calloc((size_t)B, 1);
    if (!prefix || !done) {
        fprintf(stderr, "train: error: out of memory decoding; lower --batch\n");
        exit(1);
    }
    for (int b = 0; b < B; b++) hyp_len[b] = 0;
    for (int t = 1; t <= max_len && B_done < B; t++) {
        for (int b = 0; b < B; b++) {   // (B, t): row b is <bos> + hyp, padded
            int *row = prefix + (size_t)b * t;
            row[0] = TOK_BOS;
            for (int j = 1; j < t; j++) row[j] = j - 1 < hyp_len[b] ? hyp[(size_t)b * max_len + j - 1] : TOK_PAD;
        }
        model_decode(m, prefix, B, t);
        for (int b = 0; b < B; b++) {
            if (done[b]) continue;
            int v = argmax_token(m->logits + (size_t)b * V, V);
            if (v == TOK_EOS) { done[b] = 1; B_done++; }
            else hyp[(size_t)b * max_len + hyp_len[b]++] = v;
        }
    }
    free(prefix);
    free(done);
}

// Greedy with the cache: rows that have ended leave the batch.
static void greedy_cached(Model *m, int B, int max_len, int *hyp, int *hyp_len) {
    int V = m->cfg.V, R = B;
    int *sent = malloc((size_t)B * sizeof(int)), *tok = malloc((size_t)B * sizeof(int));
    int *from = malloc((size_t)B * sizeof(int));
    if (!sent || !tok || !from) {
        fprintf(stderr, "train: error: out of memory decoding; lower --batch\n");
        exit(1);
    }
    for (int b = 0; b < B; b++) { sent[b] = b; tok[b] = TOK_BOS; hyp_len[b] = 0; }
    model_decode_begin(m, B, B, NULL, max_len + 1);
    for (int t = 0; t < max_len && R > 0; t++) {
        model_decode_step(m, tok);
        int kept = 0;   // rows kept so far: row `kept` continues row r (kept <= r)
        for (int r = 0; r < R; r++) {
            int v = argmax_token(m->logits + (size_t)r * V, V), b = sent[r];
            if (v == TOK_EOS) continue;
            hyp[(size_t)b * max_len + hyp_len[b]++] = v;
            from[kept] = r; sent[kept] = b; tok[kept] = v; kept++;
        }
        if (kept < R) model_decode_select(m, from, kept);
        R = kept;
    }
    free(sent);
    free(tok);
    free(from);
}

void decode_greedy(Model *m, int B, int max_len, int no_cache, int *hyp, int *hyp_len) {
    if (no_cache) greedy_uncached(m, B, max_len, hyp, hyp_len);
    else greedy_cached(m, B, max_len, hyp, hyp_len);
}

// log p(v) = logit_v - log sum_u exp(logit_u), over the whole vocabulary.
static void log_softmax(double *lp, const real *logit, int V) {
    double mx = logit[0], sum = 0;
    for (int v = 1; v < V; v++) if (logit[v] > mx) mx = logit[v];
    for (int v = 0; v < V; v++) sum += exp((double)logit[v] - mx);
    double logz = mx + log(sum);
    for (int v = 0; v < V; v++) lp[v] = (double)logit[v] - logz;
}

typedef struct { double score; int row, tok; } Candidate;

// Best first; ties by row, then token, so that the search is deterministic.
static int by_score(const void *a, const void *b) {
    const Candidate *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->row != y->row) return x->row < y->row ? -1 : 1;
    return (x->tok > y->tok) - (x->tok < y->tok);
}

// Appends row r's best n continuations (among <eos> and ordinary tokens) to c, best
// first, by insertion into the short sorted list; returns the new count.
static int best_tokens(Candidate *c, int count, int n, const double *lp, int V, double base, int r) {
    Candidate *top = c + count;
    int k = 0;
    for (int v = TOK_EOS; v < V; v++) {   // <eos>, then the ordinary ids TOK_BYTE0..
        Candidate x = { base + lp[v], r, v };
        if (k == n && by_score(&x, &top[n - 1]) >= 0) continue;
        int i = k < n ? k++ : n - 1;
        for (; i > 0 && by_score(&x, &top[i - 1]) < 0; i--) top[i] = top[i - 1];
        top[i] = x;
    }
    return count + k;
}

void decode_beam(Model *m, int B, int K, double lenpen, int max_len, int *hyp,
                 int *hyp_len, double *score) {
    int V = m->cfg.V, rows_max = B * K, R = B;
    // per row (rows_max): its sentence, the score so far, the last token, its tokens
    // (rows_max, max_len); the n-suffixed arrays are the next step's
    int *sent = malloc((size_t)rows_max * sizeof(int)), *nsent = malloc((size_t)rows_max * sizeof(int));
    int *tok = malloc((size_t)rows_max * sizeof(int)), *from = malloc((size_t)rows_max * sizeof(int));
    double *sum = malloc((size_t)rows_max * sizeof(double)), *nsum = malloc((size_t)rows_max * sizeof(double));
    int *hist = malloc((size_t)rows_max * (max_len + 1) * sizeof(int));
    int *nhist = malloc((size_t)rows_max * (max_len + 1) * sizeof(int));
    double *lp = malloc((size_t)V * sizeof(double));
    Candidate *cand = malloc((size_t)K * 2 * K * sizeof(Candidate));
    int *ended = calloc((size_t)B, sizeof(int));                 // hypotheses ended per sentence
    double *best = malloc((size_t)B * sizeof(double));           // the best ended one's score
    if (!sent || !nsent || !tok || !from || !sum || !nsum || !hist || !nhist || !lp || !cand ||
        !ended || !best) {
        fprintf(stderr, "train: error: out of memory for beam search; lower --batch or --beam\n");
        exit(1);
    }
    for (int b = 0; b < B; b++) { sent[b] = b; tok[b] = TOK_BOS; sum[b] = 0; hyp_len[b] = 0; best[b] = -INFINITY; }
    model_decode_begin(m, B, rows_max, NULL, max_len + 1);
    for (int t = 0; R > 0; t++) {   // t tokens so far; this step chooses token t + 1
        model_decode_step(m, tok);
        double norm = pow(t + 1.0, lenpen);          // length of a hypothesis ending now
        // a live hypothesis can at best keep its score to the most favourable length
        double bound_len = pow(lenpen > 0 ? max_len + 1.0 : t + 2.0, lenpen);
        int nR = 0;
        for (int r0 = 0; r0 < R;) {
            int b = sent[r0], r1 = r0, nc = 0;
            while (r1 < R && sent[r1] == b) r1++;
            for (int r = r0; r < r1; r++) {
                log_softmax(lp, m->logits + (size_t)r * V, V);
                if (t == max_len) cand[nc++] = (Candidate){ sum[r] + lp[TOK_EOS], r, TOK_EOS };
                else nc = best_tokens(cand, nc, 2 * K, lp, V, sum[r], r);
            }
            qsort(cand, (size_t)nc, sizeof(Candidate), by_score);
            int live = 0;
            for (int i = 0; i < nc && live < K && ended[b] < K; i++) {
                const Candidate *c = &cand[i];
                if (c->tok == TOK_EOS) {
                    if (c->score / norm > best[b]) {
                        best[b] = c->score / norm;
                        hyp_len[b] = t;
                        memcpy(hyp + (size_t)b * max_len, hist + (size_t)c->row * (max_len + 1),
                               (size_t)t * sizeof(int));
                    }
                    ended[b]++;
                    continue;
                }
                int n = nR + live++;
                from[n] = c->row; nsent[n] = b; nsum[n] = c->score;
                memcpy(nhist + (size_t)n * (max_len + 1), hist + (size_t)c->row * (max_len + 1),
                       (size_t)t * sizeof(int));
                nhist[(size_t)n * (max_len + 1) + t] = c->tok;
            }
            int done = ended[b] >= K || live == 0;
            if (!done && ended[b] > 0) {   // can any live hypothesis still beat the best?
                double reach = -INFINITY;
                for (int n = nR; n < nR + live; n++) if (nsum[n] / bound_len > reach) reach = nsum[n] / bound_len;
                done = reach <= best[b];
            }
            if (!done) nR += live;
            r0 = r1;
        }
        if (nR == 0) break;
        model_decode_select(m, from, nR);
        for (int n = 0; n < nR; n++) {
            sent[n] = nsent[n];
            sum[n] = nsum[n];
            tok[n] = nhist[(size_t)n * (max_len + 1) + t];
        }
        int *swap = hist; hist = nhist; nhist = swap;
        R = nR;
    }
    if (score) for (int b = 0; b < B; b++) score[b] = best[b];
    free(sent); free(nsent); free(tok); free(from); free(sum); free(nsum);
    free(hist); free(nhist); free(lp); free(cand); free(ended); free(best);
}

// ----------------------------------------------------------------------------
// translation

typedef struct { int len, index; } ByLength;

static int by_length(const void *a, const void *b) {
    const ByLength *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

int translate_ids(Model *m, const Tokenizer *tok, const int *const *ids, const int *len,
                  int n, const DecodeOptions *o, char **out, TranslateStats *st, char *err) {
    const Config *c = &m->cfg;
    if (c->arch != ARCH_SEQ2SEQ) {
        errorf(err, "this model is a language model (arch lm); use `train "
                 "sample`, or train a seq2seq model to translate");
        return 1;
    }
    if (decode_check(o, m, err)) return 1;
    int maxS = c->maxT - 1;   // source tokens, before <eos>
    int max_len = o->max_len ? o->max_len : c->maxT - 1, batch = o->batch;
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < n; i++) out[i] = NULL;
    if (n == 0) return 0;
    ByLength *order = malloc((size_t)n * sizeof(ByLength));
    int *srcb = malloc((size_t)batch * c->maxT * sizeof(int));               // (B, S)
    int *hyp = malloc((size_t)batch * max_len * sizeof(int));                // (B, max_len)
    int *hyp_len = malloc((size_t)batch * sizeof(int));                      // (B)
    int rc = 1, nonempty = 0;
    if (!order || !srcb || !hyp || !hyp_len) {
        errorf(err, "out of memory translating %d lines; translate fewer at a time", n);
        goto done;
    }
    // empty sources translate to empty lines; the rest in batches of similar length,
    // so that little of each batch is padding
    for (int i = 0; i < n; i++) {
        int k = len[i];
        if (k > maxS) { k = maxS; st->truncated++; }
        if (k == 0 && !(out[i] = calloc(1, 1))) {
            errorf(err, "out of memory translating %d lines; translate fewer at a time", n);
            goto done;
        }
        if (k > 0) order[nonempty++] = (ByLength){ k, i };
    }
    qsort(order, (size_t)nonempty, sizeof(ByLength), by_length);
    m->training = 0;
    for (int start = 0; start < nonempty; start += batch) {
        int B = nonempty - start < batch ? nonempty - start : batch;
        int S = order[start + B - 1].len + 1;   // the longest row, plus <eos>
        for (int b = 0; b < B; b++) {
            const ByLength *x = &order[start + b];
            int *row = srcb + b * S;
            memcpy(row, ids[x->index], (size_t)x->len * sizeof(int));
            row[x->len] = TOK_EOS;
            for (int j = x->len + 1; j < S; j++) row[j] = TOK_PAD;
        }
        model_encode(m, srcb, B, S);
        if (o->beam > 1) decode_beam(m, B, o->beam, o->lenpen, max_len, hyp, hyp_len, NULL);
        else decode_greedy(m, B, max_len, o->no_cache, hyp, hyp_len);
        for (int b = 0; b < B; b++) {
            char **res = &out[order[start + b].index];
            if (!(*res = tokens_to_text(tok, hyp + (size_t)b * max_len, (size_t)hyp_len[b], err)))
                goto done;
            st->tokens += hyp_len[b];
        }
    }
    rc = 0;
done:
    if (rc) for (int i = 0; i < n; i++) { free(out[i]); out[i] = NULL; }
    free(order);
    free(srcb);
    free(hyp);
    free(hyp_len);
    return rc;
}

int translate_lines(Model *m, const Tokenizer *tok, char *const *src, const size_t *len,
                    int n, const DecodeOptions *o, char **out, TranslateStats *st, char *err) {
    // ids[i]: len[i] + 1 ids at most (a token covers at least a byte)
    int **ids = calloc((size_t)(n ? n : 1), sizeof(int *));
    int *nids = malloc((size_t)(n ? n : 1) * sizeof(int)), rc = 1;
    if (!ids || !nids) goto oom;
    for (int i = 0; i < n; i++) {
        if (!(ids[i] = malloc((len[i] + 1) * sizeof(int)))) goto oom;
        nids[i] = (int)tokenizer_encode(tok, src[i], len[i], ids[i], len[i] + 1);
    }
    rc = translate_ids(m, tok, (const int *const *)ids, nids, n, o, out, st, err);
    goto done;
oom:
    errorf(err, "out of memory translating %d lines; translate fewer at a time", n);
done:
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(nids);
    return rc;
}

// ----------------------------------------------------------------------------
// sampling

static int descending(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

// Draws the next token from logits (V): special tokens excluded, the top_k most likely
// kept (all if top_k <= 0), softmax at the temperature (argmax at 0).
static int pick_token(const real *logits, int V, float temperature, int top_k,
                      float *scratch, uint64_t *rng) {
    // scratch (V): the sorted logits, then the unnormalized probabilities
    int best = TOK_BYTE0;
    for (int v = TOK_BYTE0; v < V; v++) if (logits[v] > logits[best]) best = v;
    if (temperature <= 0) return best;
    float cut = -FLT_MAX;   // the smallest logit kept: the k-th largest
    int nv = V - TOK_BYTE0;
    if (top_k > 0 && top_k < nv) {
        for (int v = 0; v < nv; v++) scratch[v] = (float)logits[TOK_BYTE0 + v];
        qsort(scratch, (size_t)nv, sizeof(float), descending);
        cut = scratch[top_k - 1];
    }
    double sum = 0;
    for (int v = 0; v < V; v++) {
        int keep = v >= TOK_BYTE0 && logits[v] >= cut;
        scratch[v] = keep ? (float)exp((logits[v] - logits[best]) / temperature) : 0.0f;
        sum += scratch[v];
    }
    double u = rng_uniform(rng) * sum;
    for (int v = TOK_BYTE0; v < V; v++) {
        u -= scratch[v];
        if (u < 0) return v;
    }
    return best;   // rounding left u >= 0: the most likely token
}

// Starts the cache on <bos> + the last k tokens of ctx (n of them); returns the positions
// it holds. m->logits then predicts the token after ctx.
static int start_window(Model *m, const int *ctx, size_t n, size_t k, int W) {
    int bos = TOK_BOS;
    model_decode_begin(m, 1, 1, NULL, W);
    model_decode_step(m, &bos);
    for (size_t j = n - k; j < n; j++) model_decode_step(m, &ctx[j]);
    return 1 + (int)k;
}

int sample_lm(Model *m, const Tokenizer *tok, const char *prompt, int ntokens,
              float temperature, int top_k, uint64_t seed, FILE *out, char *err) {
    const Config *c = &m->cfg;
    if (c->arch != ARCH_LM) {
        errorf(err, "this model is a translation model (arch seq2seq); use "
                 "`train translate`, or train an lm to sample");
        return 1;
    }
    size_t plen = strlen(prompt);
    // the window: an lm trained on chunks of maxT - 1 tokens saw <bos> + at most maxT - 2
    // of them, so positions up to maxT - 2 only
    int W = c->maxT - 1;
    int *ctx = malloc((plen + (size_t)ntokens + 1) * sizeof(int));   // prompt + sample
    float *scratch = malloc((size_t)c->V * sizeof(float));
    if (!ctx || !scratch) {
        free(ctx); free(scratch);
        errorf(err, "out of memory sampling");
        return 1;
    }
    size_t n = tokenizer_encode(tok, prompt, plen, ctx, plen + 1);
    uint64_t rng = seed;
    fwrite(prompt, 1, plen, out);
    m->training = 0;
    int pos = start_window(m, ctx, n, n < (size_t)W - 1 ? n : (size_t)W - 1, W);
    for (int i = 0; i < ntokens; i++) {
        int next = pick_token(m->logits, c->V, temperature, top_k, scratch, &rng);
        ctx[n++] = next;
        int blen;
        const unsigned char *piece = tokenizer_piece(tok, next, &blen);
        if (piece) fwrite(piece, 1, (size_t)blen, out);
        fflush(out);
        if (i + 1 == ntokens) break;
        if (pos == W) pos = start_window(m, ctx, n, (size_t)W / 2, W);   // the window is full
        else { model_decode_step(m, &next); pos++; }
    }
    fputc('\n', out);
    free(ctx);
    free(scratch);
    return 0;
}
