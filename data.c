// data.c: binary token files (see data.h for the format) and the Batcher, which turns
// a pair of token files (or one, for a language model) into padded batches.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "tokenizer.h"
#include "fileio.h"

// ----------------------------------------------------------------------------
// Token files. Integers are stored little-endian byte by byte (fileio.h, put_le).

static const char TOK_MAGIC[8] = {'K', 'F', 'T', 'O', 'K', 'S', 'E', 'Q'};
enum { TOK_VERSION = 1, TOK_HEADER = 8 + 4 + 4 + 8 + 8 + 8 };

// Writes n integers of `bytes` bytes each through a small staging buffer.
static int write_ints(FILE *fp, const void *src, size_t n, int bytes) {
    unsigned char buf[4096];
    size_t per = sizeof buf / (size_t)bytes;
    for (size_t i = 0; i < n; i += per) {
        size_t m = n - i < per ? n - i : per;
        for (size_t j = 0; j < m; j++) {
            uint64_t v = bytes == 8 ? ((const uint64_t *)src)[i + j]
                                    : (uint32_t)((const int32_t *)src)[i + j];
            put_le(buf + j * (size_t)bytes, v, bytes);
        }
        if (fwrite(buf, (size_t)bytes, m, fp) != m) return 1;
    }
    return 0;
}

int tokfile_write(const char *path, uint64_t checksum, const int32_t *tok,
                  const uint64_t *off, size_t n, char *err) {
    if (off[0] != 0) {
        errorf(err, "%s: offsets must start at 0 (bug in the caller)", path);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (off[i + 1] < off[i]) {
            errorf(err, "%s: offsets decrease at sequence %zu (bug in the "
                   "caller)", path, i);
            return 1;
        }
    uint64_t ntok = off[n];

    FILE *fp = replace_begin(path, err);
    if (!fp) return 1;
    unsigned char h[TOK_HEADER];
    memcpy(h, TOK_MAGIC, 8);
    put_le(h + 8, TOK_VERSION, 4);
    put_le(h + 12, 0, 4);
    put_le(h + 16, checksum, 8);
    put_le(h + 24, n, 8);
    put_le(h + 32, ntok, 8);
    fwrite(h, 1, sizeof h, fp);   // replace_commit sees any write error through ferror
    write_ints(fp, off, n + 1, 8);
    write_ints(fp, tok, (size_t)ntok, 4);
    return replace_commit(fp, path, err);
}

int tokfile_read(TokenFile *f, const char *path, char *err) {
    memset(f, 0, sizeof *f);
    size_t len;
    char *file;
    if (read_file(path, &file, &len, err)) return 1;
    unsigned char *buf = (unsigned char *)file;
    const char *why = NULL;
    uint64_t n = 0, ntok = 0;
    if (len < 8 || memcmp(buf, TOK_MAGIC, 8) != 0) {
        why = "not a token file (bad magic)";
    } else if (len < TOK_HEADER) {
        why = "truncated (incomplete header)";
    } else if (get_le(buf + 8, 4) != TOK_VERSION) {
        errorf(err, "%s: token file version %u, this program reads version %d;"
               " re-run ./train prepare", path, (unsigned)get_le(buf + 8, 4), TOK_VERSION);
        free(buf);
        return 1;
    } else {
        n = get_le(buf + 24, 8);
        ntok = get_le(buf + 32, 8);
        // Compare against the file length without overflowing: n and ntok are untrusted.
        size_t body = len - TOK_HEADER;
        if (n >= body / 8 || ntok > (body - (n + 1) * 8) / 4 ||
            (n + 1) * 8 + ntok * 4 != body)
            why = "truncated or corrupt (sizes do not match the file length)";
    }
    if (!why) {
        f->checksum = get_le(buf + 16, 8);
        f->n = (size_t)n;
        f->ntok = (size_t)ntok;
        f->off = malloc((f->n + 1) * sizeof *f->off);
        f->tok = malloc((f->ntok ? f->ntok : 1) * sizeof *f->tok);
        if (!f->off || !f->tok) why = "out of memory";
    }
    for (size_t i = 0; !why && i <= f->n; i++) {
        f->off[i] = get_le(buf + TOK_HEADER + 8 * i, 8);
        if (i == 0) {
            if (f->off[0] != 0) why = "corrupt (offsets do not start at 0)";
        } else if (f->off[i] < f->off[i - 1] || f->off[i] - f->off[i - 1] >= INT_MAX) {
            why = "corrupt (sequence offsets out of order)";
        } else if ((int)(f->off[i] - f->off[i - 1]) > f->max_len) {
            f->max_len = (int)(f->off[i] - f->off[i - 1]);
        }
    }
    if (!why && f->off[f->n] != ntok) why = "corrupt (offsets do not end at n_tokens)";
    size_t tok_at = TOK_HEADER + 8 * (f->n + 1);  // byte offset of tokens[0]
    for (size_t i = 0; !why && i < f->ntok; i++) {
        uint64_t v = get_le(buf + tok_at + 4 * i, 4);
        if (v > INT32_MAX) why = "corrupt (negative token id)";
        else f->tok[i] = (int32_t)v;
    }
    free(buf);
    if (why) {
        errorf(err, "%s: %s; re-run ./train prepare", path, why);
        tokfile_free(f);
        return 1;
    }
    return 0;
}

void tokfile_free(TokenFile *f) {
    free(f->off);
    free(f->tok);
    memset(f, 0, sizeof *f);
}

// ----------------------------------------------------------------------------
// Batcher. At construction the sequences are put in batch order (sorted by length, or
// file order) and cut into batches; each epoch only permutes the order of the batches.

struct Batcher {
    const TokenFile *src, *tgt;  // src is NULL for a language model
    int shuffle;
    uint64_t seed;
    int nseq;        // sequences that take part (lm skips empty ones)
    int *seq;        // (nseq) file indices in batch order
    int nbatch;
    int *first;      // (nbatch + 1) batch b is seq[first[b] .. first[b+1])
    int *visit;      // (nbatch) batches in this epoch's order
    int pos, epoch;  // next entry of visit; completed epochs
    int window;      // lm windows: tokens per row (T), else 0 (batcher_new_windows)
    int rows;        // lm windows: rows per batch (B)
    Batch b;         // buffers sized for the largest batch
};

static int seq_len(const TokenFile *f, int i) { return (int)(f->off[i + 1] - f->off[i]); }

// Padded lengths of sequence i: S counts the source's <eos>, T the target's <bos>/<eos>
// (for a language model, T is the length of x and S is 0).
static void padded_lens(const Batcher *bt, int i, int *S, int *T) {
    *S = bt->src ? seq_len(bt->src, i) + 1 : 0;
    *T = bt->src ? seq_len(bt->tgt, i) + 1 : seq_len(bt->tgt, i);
}

typedef struct { int t, s, i; uint64_t tie; } SortKey;

static int cmp_key(const void *pa, const void *pb) {
    const SortKey *a = pa, *b = pb;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    if (a->s != b->s) return a->s < b->s ? -1 : 1;
    if (a->tie != b->tie) return a->tie < b->tie ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

// Fisher-Yates shuffle of the batch order, seeded by (seed, epoch) so that epoch e has
// the same order however many batches were drawn before.
static void plan_epoch(Batcher *bt) {
    if (bt->window) return;   // windows are drawn from (seed, epoch, pos) in window_batch
    for (int k = 0; k < bt->nbatch; k++) bt->visit[k] = k;
    if (!bt->shuffle) return;
    uint64_t rng = hash64(bt->seed ^ hash64((uint64_t)bt->epoch + 1));
    for (int k = bt->nbatch - 1; k > 0; k--) {
        int j = (int)(rng_next(&rng) % (uint64_t)(k + 1));
        int t = bt->visit[k]; bt->visit[k] = bt->visit[j]; bt->visit[j] = t;
    }
}

void batcher_free(Batcher *bt) {
    if (!bt) return;
    free(bt->seq); free(bt->first); free(bt->visit);
    free(bt->b.src); free(bt->b.tgt_in); free(bt->b.tgt_out); free(bt->b.index);
    free(bt);
}

Batcher *batcher_new(const TokenFile *src, const TokenFile *tgt, int batch_tokens,
                     uint64_t seed, int shuffle, char *err) {
    if (batch_tokens < 1) {
        errorf(err, "batch_tokens %d must be at least 1", batch_tokens);
        return NULL;
    }
    if (tgt->n >= (size_t)INT_MAX) {
        errorf(err, "%zu sequences are more than a batcher takes (%d); split "
               "the data", tgt->n, INT_MAX - 1);
        return NULL;
    }
    if (src && src->n != tgt->n) {
        errorf(err, "%zu source but %zu target sequences; the token files "
               "must pair up (re-run ./train prepare)", src->n, tgt->n);
        return NULL;
    }
    int n = (int)tgt->n;
    SortKey *key = NULL;
    Batcher *bt = calloc(1, sizeof *bt);
    if (!bt) goto oom;
    bt->src = src; bt->tgt = tgt; bt->shuffle = shuffle; bt->seed = seed;
    bt->seq = malloc((size_t)(n ? n : 1) * sizeof *bt->seq);
    bt->first = malloc((size_t)(n + 1) * sizeof *bt->first);
    key = malloc((size_t)(n ? n : 1) * sizeof *key);
    if (!bt->seq || !bt->first || !key) goto oom;

    // Batch order: file order, or sorted by (T, S) with seeded random ties.
    uint64_t rng = seed;
    for (int i = 0; i < n; i++) {
        int S, T;
        padded_lens(bt, i, &S, &T);
        if (T == 0) continue;  // empty lm sequence: nothing to predict
        key[bt->nseq++] = (SortKey){T, S, i, rng_next(&rng)};
    }
    if (bt->nseq == 0) {
        errorf(err, "no sequence to learn from (%s); give data with some "
               "text", n == 0 ? "the token files are empty" : "every sequence is empty");
        goto fail;
    }
    if (shuffle) qsort(key, (size_t)bt->nseq, sizeof *key, cmp_key);

    // Cut greedily: a sequence joins the current batch (which starts at seq[lo]) while
    // the grown batch still fits, B * max(S, T) <= batch_tokens.
    long long S = 0, T = 0, capB = 0, capS = 0, capT = 0;
    for (int k = 0, lo = 0; k < bt->nseq; k++) {
        bt->seq[k] = key[k].i;
        long long S1 = key[k].s > S ? key[k].s : S, T1 = key[k].t > T ? key[k].t : T;
        if (k == 0 || (k - lo + 1) * (S1 > T1 ? S1 : T1) > batch_tokens) {
            bt->first[bt->nbatch++] = lo = k;  // start a new batch with this sequence
            S1 = key[k].s; T1 = key[k].t;
        }
        S = S1; T = T1;
        long long B = k - lo + 1;
        if (B > capB) capB = B;
        if (B * S > capS) capS = B * S;
        if (B * T > capT) capT = B * T;
    }
    bt->first[bt->nbatch] = bt->nseq;
    free(key);
    key = NULL;

    bt->visit = malloc((size_t)bt->nbatch * sizeof *bt->visit);
    bt->b.src = src ? malloc((size_t)capS * sizeof(int)) : NULL;
    bt->b.tgt_in = malloc((size_t)capT * sizeof(int));
    bt->b.tgt_out = malloc((size_t)capT * sizeof(int));
    bt->b.index = malloc((size_t)capB * sizeof(int));
    if (!bt->visit || (src && !bt->b.src) || !bt->b.tgt_in || !bt->b.tgt_out ||
        !bt->b.index)
        goto oom;
    plan_epoch(bt);
    return bt;
oom:
    errorf(err, "out of memory for the batches of %zu sequences; lower "
           "--batch-tokens or use less data", tgt->n);
fail:
    free(key);
    batcher_free(bt);
    return NULL;
}

Batcher *batcher_new_windows(const TokenFile *f, int T, int batch_tokens, uint64_t seed,
                             int shuffle, char *err) {
    if (batch_tokens < 1 || T < 1) {
        errorf(err, "batch_tokens %d and the window %d must be at least 1", batch_tokens, T);
        return NULL;
    }
    if (f->ntok < 2) {
        errorf(err, "no token to learn from (%s); give data with some text",
               f->n == 0 ? "the token files are empty" : f->ntok == 0 ?
               "every sequence is empty" : "a single token");
        return NULL;
    }
    if (f->ntok >= (size_t)INT_MAX) {
        errorf(err, "%zu tokens are more than windows take (%d); split the data", f->ntok,
               INT_MAX - 1);
        return NULL;
    }
    long long targets = (long long)f->ntok - 1;   // tokens that can be predicted
    if (shuffle && T > targets) T = (int)targets;
    int B = batch_tokens / T > 0 ? batch_tokens / T : 1;
    long long nwin = (targets + T - 1) / T;      // consecutive windows (shuffle = 0)
    long long nbatch = shuffle ? targets / ((long long)B * T) : (nwin + B - 1) / B;
    Batcher *bt = calloc(1, sizeof *bt);
    if (!bt) goto oom;
    *bt = (Batcher){ .tgt = f, .shuffle = shuffle, .seed = seed, .window = T, .rows = B,
                     .nbatch = nbatch < 1 ? 1 : nbatch > INT_MAX ? INT_MAX : (int)nbatch };
    bt->b.tgt_in = malloc((size_t)B * T * sizeof(int));
    bt->b.tgt_out = malloc((size_t)B * T * sizeof(int));
    bt->b.index = calloc((size_t)B, sizeof(int));
    if (!bt->b.tgt_in || !bt->b.tgt_out || !bt->b.index) goto oom;
    return bt;
oom:
    errorf(err, "out of memory for batches of %d windows of %d tokens", B, T);
    batcher_free(bt);
    return NULL;
}

// Batch k (= pos) of an epoch of windows (see batcher_new_windows): row r starts at a
// random offset in [0, ntok - T - 1] drawn from (seed, epoch, k), or at (k B + r) T
// (the last of those batches has only the windows left).
static void window_batch(Batcher *bt, int k, Batch *b) {
    int B = bt->rows, T = bt->window;
    long long ntok = (long long)bt->tgt->ntok;
    long long left = (ntok - 2) / T + 1 - (long long)k * B;   // consecutive windows left
    if (!bt->shuffle && left < B) B = (int)left;
    const int32_t *tok = bt->tgt->tok;
    uint64_t rng = hash64(bt->seed ^ hash64((uint64_t)bt->epoch + 1) ^
                          hash64(~(uint64_t)k));
    *b = (Batch){ .B = B, .S = 0, .T = T, .src = NULL, .tgt_in = bt->b.tgt_in,
                  .tgt_out = bt->b.tgt_out, .index = bt->b.index };
    memset(b->tgt_in, 0, (size_t)B * T * sizeof(int));   // TOK_PAD is 0
    memset(b->tgt_out, 0, (size_t)B * T * sizeof(int));
    for (int r = 0; r < B; r++) {
        long long at = bt->shuffle ? (long long)(rng_next(&rng) % (uint64_t)(ntok - T))
                                   : ((long long)k * bt->rows + r) * T;
        int n = at + T < ntok ? T : (int)(ntok - 1 - at);  // targets in this window
        for (int t = 0; t < n; t++) {
            b->tgt_in[(size_t)r * T + t] = tok[at + t];
            b->tgt_out[(size_t)r * T + t] = tok[at + t + 1];
        }
        b->ntok += n;
    }
}

int batcher_next(Batcher *bt, Batch *out) {
    if (bt->pos == bt->nbatch) {  // end of epoch: report it, then plan the next one
        bt->epoch++;
        bt->pos = 0;
        plan_epoch(bt);
        return 0;
    }
    if (bt->window) {
        window_batch(bt, bt->pos++, out);
        return 1;
    }
    int k = bt->visit[bt->pos++];
    int lo = bt->first[k], B = bt->first[k + 1] - lo;
    Batch *b = &bt->b;
    b->B = B; b->S = 0; b->T = 0; b->ntok = 0;
    for (int r = 0; r < B; r++) {
        int S, T;
        padded_lens(bt, bt->seq[lo + r], &S, &T);
        if (S > b->S) b->S = S;
        if (T > b->T) b->T = T;
    }
    int S = b->S, T = b->T;
    if (bt->src) memset(b->src, 0, (size_t)B * S * sizeof(int));  // TOK_PAD is 0
    memset(b->tgt_in, 0, (size_t)B * T * sizeof(int));
    memset(b->tgt_out, 0, (size_t)B * T * sizeof(int));
    for (int r = 0; r < B; r++) {
        int i = bt->seq[lo + r];
        b->index[r] = i;
        const int32_t *y = bt->tgt->tok + bt->tgt->off[i];
        int ny = seq_len(bt->tgt, i);
        int *tin = b->tgt_in + (size_t)r * T;   // (T)
        int *tout = b->tgt_out + (size_t)r * T; // (T)
        tin[0] = TOK_BOS;
        if (bt->src) {
            // src = x <eos>;  tgt_in = <bos> y;  tgt_out = y <eos>
            const int32_t *x = bt->src->tok + bt->src->off[i];
            int nx = seq_len(bt->src, i);
            int *s = b->src + (size_t)r * S;  // (S)
            for (int t = 0; t < nx; t++) s[t] = x[t];
            s[nx] = TOK_EOS;
            for (int t = 0; t < ny; t++) { tin[t + 1] = y[t]; tout[t] = y[t]; }
            tout[ny] = TOK_EOS;
            b->ntok += ny + 1;
        } else {
            // tgt_in = <bos> x[0..n-2];  tgt_out = x  (predict each token from the past)
            for (int t = 0; t < ny; t++) tout[t] = y[t];
            for (int t = 1; t < ny; t++) tin[t] = y[t - 1];
            b->ntok += ny;
        }
    }
    *out = *b;
    return 1;
}

int batcher_num_batches(const Batcher *bt) { return bt->nbatch; }
int batcher_epoch(const Batcher *bt) { return bt->epoch; }

void batcher_position(const Batcher *bt, long *epoch, long *pos) {
    *epoch = bt->epoch;
    *pos = bt->pos;
}

int batcher_seek(Batcher *bt, long epoch, long pos) {
    if (epoch < 0 || epoch > INT_MAX || pos < 0 || pos > bt->nbatch) return 1;
    bt->epoch = (int)epoch;
    bt->pos = (int)pos;
    plan_epoch(bt);
    return 0;
}
