// generate.c: see generate.h.
#include "generate.h"
#include "fileio.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

// Text of n ids as a malloc'd NUL-terminated string, or NULL with a message.
static char *decode_string(const Tokenizer *tok, const int *ids, size_t n, char *err) {
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
// greedy translation

typedef struct { int len, index; } ByLength;

static int by_length(const void *a, const void *b) {
    const ByLength *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

// Greedy decoding of one batch of B encoded sources: out[b] is the translation of row b.
static int decode_batch(Model *m, const Tokenizer *tok, int B, int max_len, int *seq,
                        int *prefix, char **out, char *err) {
    // seq (B, maxT): row b is <bos> then the tokens chosen so far (padding once done)
    // prefix (B, t): the first t columns of seq, contiguous, as model_decode reads them
    int V = m->cfg.V, maxT = m->cfg.maxT, B_done = 0;
    int *len = calloc((size_t)B, sizeof(int)), *done = calloc((size_t)B, sizeof(int));
    if (!len || !done) { free(len); free(done); errorf(err, "out of memory"); return 1; }
    for (int b = 0; b < B; b++) seq[b * maxT] = TOK_BOS;
    for (int t = 1; t <= max_len && B_done < B; t++) {
        for (int b = 0; b < B; b++) memcpy(prefix + b * t, seq + b * maxT, (size_t)t * sizeof(int));
        model_decode(m, prefix, B, t);
        for (int b = 0; b < B; b++) {
            int next = TOK_PAD;
            if (!done[b]) {
                // argmax of the last position's logits; <pad> and <bos> are never right
                const real *logit = m->logits + (size_t)b * V;   // (V) of position t - 1
                next = TOK_EOS;
                for (int v = TOK_EOS + 1; v < V; v++) if (logit[v] > logit[next]) next = v;
                if (next == TOK_EOS) { done[b] = 1; B_done++; next = TOK_PAD; }
                else len[b]++;
            }
            seq[b * maxT + t] = next;
        }
    }
    int rc = 0;
    for (int b = 0; b < B && !rc; b++)
        if (!(out[b] = decode_string(tok, seq + b * maxT + 1, (size_t)len[b], err))) rc = 1;
    free(len);
    free(done);
    return rc;
}

int translate_lines(Model *m, const Tokenizer *tok, char *const *src, const size_t *len,
                    int n, int batch, int max_len, char **out, int *truncated, char *err) {
    const Config *c = &m->cfg;
    if (c->arch != ARCH_SEQ2SEQ) {
        errorf(err, "this model is a language model (arch lm); use `train "
                 "sample`, or train a seq2seq model to translate");
        return 1;
    }
    int maxS = c->maxT - 1;   // source tokens, before <eos>
    if (max_len < 1 || max_len > c->maxT - 1) max_len = c->maxT - 1;
    if (batch < 1) batch = 1;
    *truncated = 0;
    for (int i = 0; i < n; i++) out[i] = NULL;
    if (n == 0) return 0;

    // encode every source; ids[i] (len[i] ids at most: a token covers at least a byte)
    int **ids = calloc((size_t)n, sizeof(int *));
    ByLength *order = malloc((size_t)n * sizeof(ByLength));
    int *srcb = malloc((size_t)batch * c->maxT * sizeof(int));     // (B, S)
    int *seq = malloc((size_t)batch * c->maxT * sizeof(int));      // (B, maxT)
    int *prefix = malloc((size_t)batch * c->maxT * sizeof(int));   // (B, t)
    int rc = 1;
    if (!ids || !order || !srcb || !seq || !prefix) goto oom;
    for (int i = 0; i < n; i++) {
        if (!(ids[i] = malloc((len[i] + 1) * sizeof(int)))) goto oom;
        int k = (int)tokenizer_encode(tok, src[i], len[i], ids[i], len[i] + 1);
        if (k > maxS) { k = maxS; (*truncated)++; }
        order[i].len = k;
        order[i].index = i;
    }
    // batches of sources of similar length, so that little of each batch is padding
    qsort(order, (size_t)n, sizeof(ByLength), by_length);
    char **res = malloc((size_t)batch * sizeof(char *));
    if (!res) goto oom;
    for (int start = 0; start < n; start += batch) {
        int B = n - start < batch ? n - start : batch;
        int S = order[start + B - 1].len + 1;   // the longest row, plus <eos>
        for (int b = 0; b < B; b++) {
            const ByLength *o = &order[start + b];
            int *row = srcb + b * S;
            memcpy(row, ids[o->index], (size_t)o->len * sizeof(int));
            row[o->len] = TOK_EOS;
            for (int j = o->len + 1; j < S; j++) row[j] = TOK_PAD;
        }
        m->training = 0;
        model_encode(m, srcb, B, S);
        if (decode_batch(m, tok, B, max_len, seq, prefix, res, err)) {
            for (int b = 0; b < B; b++) free(res[b]);
            free(res);
            goto fail;
        }
        for (int b = 0; b < B; b++) out[order[start + b].index] = res[b];
    }
    free(res);
    rc = 0;
    goto fail;
oom:
    errorf(err, "out of memory translating %d lines; translate fewer at a time", n);
fail:
    if (rc) for (int i = 0; i < n; i++) { free(out[i]); out[i] = NULL; }
    for (int i = 0; ids && i < n; i++) free(ids[i]);
    free(ids);
    free(order);
    free(srcb);
    free(seq);
    free(prefix);
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

int sample_lm(Model *m, const Tokenizer *tok, const char *prompt, int ntokens,
              float temperature, int top_k, uint64_t seed, FILE *out, char *err) {
    const Config *c = &m->cfg;
    if (c->arch != ARCH_LM) {
        errorf(err, "this model is a translation model (arch seq2seq); use "
                 "`train translate`, or train an lm to sample");
        return 1;
    }
    size_t plen = strlen(prompt);
    // context window: an lm trained on chunks of maxT - 1 tokens saw <bos> + at most
    // maxT - 2 of them, so positions up to maxT - 2 only
    int W = c->maxT - 2;
    int *ctx = malloc((plen + (size_t)ntokens + 1) * sizeof(int));   // prompt + sample
    int *in = malloc((size_t)c->maxT * sizeof(int));                  // (1, T)
    float *scratch = malloc((size_t)c->V * sizeof(float));
    if (!ctx || !in || !scratch) {
        free(ctx); free(in); free(scratch);
        errorf(err, "out of memory sampling");
        return 1;
    }
    size_t n = tokenizer_encode(tok, prompt, plen, ctx, plen + 1);
    uint64_t rng = seed;
    fwrite(prompt, 1, plen, out);
    m->training = 0;
    for (int i = 0; i < ntokens; i++) {
        int k = n < (size_t)W ? (int)n : W;
        in[0] = TOK_BOS;
        memcpy(in + 1, ctx + n - k, (size_t)k * sizeof(int));
        model_decode(m, in, 1, k + 1);
        int next = pick_token(m->logits, c->V, temperature, top_k,
                              scratch, &rng);
        ctx[n++] = next;
        int blen;
        const unsigned char *piece = tokenizer_piece(tok, next, &blen);
        if (piece) fwrite(piece, 1, (size_t)blen, out);
        fflush(out);
    }
    fputc('\n', out);
    free(ctx);
    free(in);
    free(scratch);
    return 0;
}
