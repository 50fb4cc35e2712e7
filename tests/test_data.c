// test_data.c: token files (round trip, corrupt files), the Batcher (coverage, budget,
// padding, lm mode, determinism, file order) and the toy number-word data set.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../data.h"
#include "../tokenizer.h"
#include "../data/toydata.h"
#include "check.h"

static char tmpdir[64];

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

// Builds a TokenFile in memory from n sequences given as (len, tokens...) lists.
static TokenFile make_file(int n, const int *lens, const int32_t *tok) {
    TokenFile f = {0};
    f.n = (size_t)n;
    f.off = malloc((size_t)(n + 1) * sizeof *f.off);
    f.off[0] = 0;
    for (int i = 0; i < n; i++) {
        f.off[i + 1] = f.off[i] + (uint64_t)lens[i];
        if (lens[i] > f.max_len) f.max_len = lens[i];
    }
    f.ntok = (size_t)f.off[n];
    f.tok = malloc((f.ntok + 1) * sizeof *f.tok);
    if (f.ntok) memcpy(f.tok, tok, f.ntok * sizeof *f.tok);
    return f;
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc(*len + 1);
    if (fread(buf, 1, *len, fp) != *len) *len = 0;
    fclose(fp);
    buf[*len] = 0;
    return buf;
}

static void write_all(const char *path, const unsigned char *buf, size_t len) {
    FILE *fp = fopen(path, "wb");
    fwrite(buf, 1, len, fp);
    fclose(fp);
}

// ----------------------------------------------------------------------------

static void test_tokfile_roundtrip(void) {
    int lens[5] = {3, 0, 1, 0, 6};
    int32_t tok[10] = {5, 6, 7, 9, 3, 4, 5, 6, 7, 300000};
    TokenFile a = make_file(5, lens, tok), b;
    char path[128], err[KF_ERRLEN] = "";
    tmp_path(path, sizeof path, "a.tok");
    uint64_t sum = 0xfedcba9876543210ULL;
    int rc = tokfile_write(path, sum, a.tok, a.off, a.n, err);
    CHECK(rc == 0, "tokfile write", "%s", err);
    rc = tokfile_read(&b, path, err);
    CHECK(rc == 0, "tokfile read", "%s", err);
    int same = rc == 0 && b.n == a.n && b.ntok == a.ntok &&
               !memcmp(b.off, a.off, (a.n + 1) * sizeof *a.off) &&
               !memcmp(b.tok, a.tok, a.ntok * sizeof *a.tok);
    CHECK(same, "tokfile round trip keeps sequences (incl. empty ones)", "n %zu ntok %zu",
          b.n, b.ntok);
    CHECK(b.checksum == sum, "tokfile keeps checksum", "%llx",
          (unsigned long long)b.checksum);
    CHECK(b.max_len == 6, "tokfile max_len", "%d", b.max_len);
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0, "tokfile write leaves no .tmp", "%s exists", tmp);
    // header (40) + 6 offsets (48) + 10 tokens (40), little-endian
    size_t len;
    unsigned char *buf = read_all(path, &len);
    CHECK(len == 128 && !memcmp(buf, "KFTOKSEQ\1\0\0\0\0\0\0\0\x10\x32\x54\x76", 20) &&
              buf[24] == 5 && buf[32] == 10 && buf[40 + 8 * 5] == 10 &&
              buf[88] == 5 && buf[124] == 0xe0 && buf[125] == 0x93 && buf[126] == 0x04,
          "tokfile byte layout matches data.h", "len %zu", len);
    free(buf);
    tokfile_free(&b);
    tokfile_free(&a);

    // A file with no sequences at all.
    uint64_t off0 = 0;
    tmp_path(path, sizeof path, "empty.tok");
    rc = tokfile_write(path, 7, NULL, &off0, 0, err) || tokfile_read(&b, path, err);
    CHECK(rc == 0 && b.n == 0 && b.ntok == 0 && b.checksum == 7 && b.max_len == 0,
          "tokfile with zero sequences", "%s", err);
    tokfile_free(&b);

    uint64_t bad_off[3] = {0, 3, 2};
    rc = tokfile_write(path, 7, tok, bad_off, 2, err);
    CHECK(rc != 0 && strstr(err, "offsets"), "tokfile write rejects decreasing offsets",
          "rc %d err '%s'", rc, err);
}

// Corrupts a good file in one way and checks that reading fails with a message.
static void expect_read_error(const unsigned char *good, size_t len, const char *name,
                              size_t at, int width, uint64_t value, size_t newlen,
                              const char *want) {
    unsigned char *buf = calloc(newlen + 8, 1);
    memcpy(buf, good, len < newlen ? len : newlen);
    for (int i = 0; i < width; i++) buf[at + i] = (unsigned char)(value >> (8 * i));
    char path[128], err[KF_ERRLEN] = "";
    tmp_path(path, sizeof path, "bad.tok");
    write_all(path, buf, newlen);
    TokenFile f;
    int rc = tokfile_read(&f, path, err);
    CHECK(rc != 0 && strstr(err, want) && strstr(err, "bad.tok") && !strchr(err, '\n') &&
              f.off == NULL && f.tok == NULL,
          name, "rc %d err '%s' (want '%s')", rc, err, want);
    free(buf);
}

static void test_tokfile_errors(void) {
    int lens[3] = {2, 0, 3};
    int32_t tok[5] = {10, 11, 12, 13, 14};
    TokenFile a = make_file(3, lens, tok);
    char path[128], err[KF_ERRLEN] = "";
    tmp_path(path, sizeof path, "good.tok");
    tokfile_write(path, 1, a.tok, a.off, a.n, err);
    size_t len;
    unsigned char *good = read_all(path, &len);
    // layout: header 0..39 (version at 8, n at 24, ntok at 32), offsets 40..71, tokens 72..
    expect_read_error(good, len, "tokfile: truncated", 0, 0, 0, len - 1, "truncated");
    expect_read_error(good, len, "tokfile: header only", 0, 0, 0, 40, "truncated");
    expect_read_error(good, len, "tokfile: half a header", 0, 0, 0, 20, "truncated");
    expect_read_error(good, len, "tokfile: tiny file", 0, 0, 0, 5, "magic");
    expect_read_error(good, len, "tokfile: extra bytes", 0, 0, 0, len + 4, "truncated");
    expect_read_error(good, len, "tokfile: wrong magic", 0, 1, 'X', len, "magic");
    expect_read_error(good, len, "tokfile: wrong version", 8, 4, 2, len,
                      "re-run ./train prepare");
    expect_read_error(good, len, "tokfile: huge n_seqs", 24, 8, 1ULL << 61, len,
                      "truncated");
    expect_read_error(good, len, "tokfile: huge n_tokens", 32, 8, ~0ULL, len,
                      "truncated");
    expect_read_error(good, len, "tokfile: offsets out of order", 48, 8, 3, len,
                      "out of order");
    expect_read_error(good, len, "tokfile: offsets not from 0", 40, 8, 1, len, "start");
    expect_read_error(good, len, "tokfile: offsets not ending at n_tokens", 64, 8, 4, len,
                      "n_tokens");
    expect_read_error(good, len, "tokfile: negative token", 72, 4, 0xffffffffULL, len,
                      "negative");
    TokenFile f;
    tmp_path(path, sizeof path, "missing.tok");
    int rc = tokfile_read(&f, path, err);
    CHECK(rc != 0 && strstr(err, "missing.tok"), "tokfile: missing file", "'%s'", err);
    free(good);
    tokfile_free(&a);
}

// ----------------------------------------------------------------------------

#define EXPECT_ROW(arr, r, n, ...) row_is((arr) + (size_t)(r) * (n), n, (int[]){__VA_ARGS__})
static int row_is(const int *row, int n, const int *want) {
    for (int t = 0; t < n; t++)
        if (row[t] != want[t]) return 0;
    return 1;
}

static void test_batch_by_hand(void) {
    // seq2seq: src = x <eos>, tgt_in = <bos> y, tgt_out = y <eos>; an empty source
    // becomes <eos> alone.
    int sl[3] = {2, 1, 0}, tl[3] = {1, 3, 2};
    int32_t st[3] = {10, 11, 12}, tt[6] = {20, 21, 22, 23, 24, 25};
    TokenFile src = make_file(3, sl, st), tgt = make_file(3, tl, tt);
    Batcher *bt = batcher_new(&src, &tgt, 1000, 1, 0, (char[KF_ERRLEN]){0});
    Batch b;
    int got = bt && batcher_next(bt, &b);
    CHECK(got && b.B == 3 && b.S == 3 && b.T == 4 && b.ntok == 9,
          "batch by hand: shape", "B %d S %d T %d ntok %d", b.B, b.S, b.T, b.ntok);
    if (got && b.S == 3 && b.T == 4) {
        CHECK(EXPECT_ROW(b.src, 0, 3, 10, 11, TOK_EOS) && EXPECT_ROW(b.src, 1, 3, 12, TOK_EOS, 0) &&
                  EXPECT_ROW(b.src, 2, 3, TOK_EOS, 0, 0),
              "batch by hand: src = x <eos> <pad>...", "row0 %d %d %d", b.src[0], b.src[1], b.src[2]);
        CHECK(EXPECT_ROW(b.tgt_in, 0, 4, TOK_BOS, 20, 0, 0) &&
                  EXPECT_ROW(b.tgt_in, 1, 4, TOK_BOS, 21, 22, 23) &&
                  EXPECT_ROW(b.tgt_in, 2, 4, TOK_BOS, 24, 25, 0),
              "batch by hand: tgt_in = <bos> y <pad>...", "row0 %d %d %d %d", b.tgt_in[0],
              b.tgt_in[1], b.tgt_in[2], b.tgt_in[3]);
        CHECK(EXPECT_ROW(b.tgt_out, 0, 4, 20, TOK_EOS, 0, 0) &&
                  EXPECT_ROW(b.tgt_out, 1, 4, 21, 22, 23, TOK_EOS) &&
                  EXPECT_ROW(b.tgt_out, 2, 4, 24, 25, TOK_EOS, 0),
              "batch by hand: tgt_out = y <eos> <pad>...", "row0 %d %d %d %d", b.tgt_out[0],
              b.tgt_out[1], b.tgt_out[2], b.tgt_out[3]);
        CHECK(b.index[0] == 0 && b.index[1] == 1 && b.index[2] == 2, "batch by hand: index",
              "%d %d %d", b.index[0], b.index[1], b.index[2]);
    }
    CHECK(bt && batcher_next(bt, &b) == 0 && batcher_epoch(bt) == 1 &&
              batcher_next(bt, &b) == 1 && b.B == 3,
          "batch by hand: epoch ends, then restarts", "epoch %d", bt ? batcher_epoch(bt) : -1);
    batcher_free(bt);

    // Budget 8: max(S, T) is 4 for the first two rows (2 * 4 = 8), and the third would
    // make it 12, so it goes alone.
    bt = batcher_new(&src, &tgt, 8, 1, 0, (char[KF_ERRLEN]){0});
    int b1 = bt && batcher_next(bt, &b) ? b.B : -1;
    int b2 = bt && batcher_next(bt, &b) ? b.B : -1;
    CHECK(bt && batcher_num_batches(bt) == 2 && b1 == 2 && b2 == 1 && b.index[0] == 2,
          "batch by hand: cut by batch_tokens", "batches %d: %d + %d",
          bt ? batcher_num_batches(bt) : -1, b1, b2);
    batcher_free(bt);

    // lm: tgt_in = <bos> x[0..n-2], tgt_out = x; the empty sequence is skipped.
    int ll[3] = {3, 0, 1};
    int32_t lt[4] = {5, 6, 7, 8};
    TokenFile lm = make_file(3, ll, lt);
    bt = batcher_new(NULL, &lm, 1000, 1, 0, (char[KF_ERRLEN]){0});
    got = bt && batcher_next(bt, &b);
    CHECK(got && b.B == 2 && b.S == 0 && b.T == 3 && b.src == NULL && b.ntok == 4 &&
              b.index[0] == 0 && b.index[1] == 2,
          "batch lm: shape, skips empty sequence", "B %d S %d T %d ntok %d", b.B, b.S, b.T,
          b.ntok);
    if (got && b.B == 2 && b.T == 3)
        CHECK(EXPECT_ROW(b.tgt_in, 0, 3, TOK_BOS, 5, 6) && EXPECT_ROW(b.tgt_in, 1, 3, TOK_BOS, 0, 0) &&
                  EXPECT_ROW(b.tgt_out, 0, 3, 5, 6, 7) && EXPECT_ROW(b.tgt_out, 1, 3, 8, 0, 0),
              "batch lm: tgt_in = <bos> x[:-1], tgt_out = x", "%d %d %d / %d %d %d",
              b.tgt_in[0], b.tgt_in[1], b.tgt_in[2], b.tgt_out[0], b.tgt_out[1], b.tgt_out[2]);
    batcher_free(bt);

    int zl[2] = {0, 0};
    TokenFile zero = make_file(2, zl, NULL);
    CHECK(batcher_new(NULL, &zero, 100, 1, 1, (char[KF_ERRLEN]){0}) == NULL, "batcher: lm of empty sequences -> NULL", "");
    CHECK(batcher_new(&zero, &src, 100, 1, 1, (char[KF_ERRLEN]){0}) == NULL, "batcher: 2 vs 3 sequences -> NULL", "");
    tokfile_free(&src); tokfile_free(&tgt); tokfile_free(&lm); tokfile_free(&zero);
}

// Random files: n pairs with lengths 0..30, plus a few sequences too long to share a
// batch with anything.
static void make_random(TokenFile *src, TokenFile *tgt, int n, uint64_t seed) {
    int *sl = malloc((size_t)n * sizeof *sl), *tl = malloc((size_t)n * sizeof *tl);
    int32_t *tok = malloc((size_t)n * 100 * sizeof *tok);
    for (int i = 0; i < n; i++) {
        sl[i] = (int)(rng_next(&seed) % 31);
        tl[i] = (int)(rng_next(&seed) % 31);
        if (i % 97 == 5) tl[i] = 90;
    }
    for (int i = 0; i < n * 100; i++) tok[i] = 3 + (int32_t)(rng_next(&seed) % 1000);
    *src = make_file(n, sl, tok);
    *tgt = make_file(n, tl, tok + n * 50);
    free(sl); free(tl); free(tok);
}

// Checks that every row of b is exactly its file sequence with <bos>/<eos> and padding,
// that S and T are tight, and that the budget holds.
static int batch_ok(const Batch *b, const TokenFile *src, const TokenFile *tgt,
                    int batch_tokens, char *why) {
    int maxS = 0, maxT = 0, ntok = 0;
    for (int r = 0; r < b->B; r++) {
        int i = b->index[r];
        int nx = src ? (int)(src->off[i + 1] - src->off[i]) : 0;
        int ny = (int)(tgt->off[i + 1] - tgt->off[i]);
        const int32_t *x = src ? src->tok + src->off[i] : NULL, *y = tgt->tok + tgt->off[i];
        int S = src ? nx + 1 : 0, T = src ? ny + 1 : ny;
        if (S > maxS) maxS = S;
        if (T > maxT) maxT = T;
        ntok += T;
        for (int t = 0; t < b->S; t++) {
            int want = t < nx ? x[t] : t == nx ? TOK_EOS : TOK_PAD;
            if (b->src[r * b->S + t] != want) return sprintf(why, "src row %d col %d", r, t), 0;
        }
        for (int t = 0; t < b->T; t++) {
            int in = t == 0 ? TOK_BOS : t - 1 < ny && (src || t < ny) ? y[t - 1] : TOK_PAD;
            int out = t < ny ? y[t] : t == ny && src ? TOK_EOS : TOK_PAD;
            if (b->tgt_in[r * b->T + t] != in || b->tgt_out[r * b->T + t] != out)
                return sprintf(why, "tgt row %d col %d", r, t), 0;
        }
    }
    int m = b->S > b->T ? b->S : b->T;
    if (b->S != maxS || b->T != maxT) return sprintf(why, "S %d T %d not tight", b->S, b->T), 0;
    if (b->ntok != ntok) return sprintf(why, "ntok %d, want %d", b->ntok, ntok), 0;
    if (b->B < 1 || (b->B > 1 && b->B * m > batch_tokens))
        return sprintf(why, "B %d * %d > %d", b->B, m, batch_tokens), 0;
    return 1;
}

// Runs one epoch; records the file indices in visiting order (out, n entries) and the
// (T, S) key range of each batch. Returns the number of batches, or -1 on a bad batch.
static int run_epoch(Batcher *bt, const TokenFile *src, const TokenFile *tgt, int budget,
                     int *order, int *norder, long long *lo, long long *hi, char *why) {
    Batch b;
    int nb = 0;
    *norder = 0;
    while (batcher_next(bt, &b)) {
        if (!batch_ok(&b, src, tgt, budget, why)) return -1;
        lo[nb] = 1LL << 62; hi[nb] = -1;
        for (int r = 0; r < b.B; r++) {
            int i = b.index[r];
            long long key = (long long)(tgt->off[i + 1] - tgt->off[i]) * 1000 +
                            (long long)(src->off[i + 1] - src->off[i]);
            if (key < lo[nb]) lo[nb] = key;
            if (key > hi[nb]) hi[nb] = key;
            order[(*norder)++] = i;
        }
        nb++;
    }
    return nb;
}

static int cmp_ll_pair(const void *a, const void *b) {
    const long long *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

static void test_batcher_random(void) {
    enum { N = 500, BUDGET = 64 };
    TokenFile src, tgt;
    make_random(&src, &tgt, N, 42);
    static int order[3][N], seen[N];
    static long long lo[N], hi[N], range[N][2];
    char why[128] = "";

    Batcher *bt = batcher_new(&src, &tgt, BUDGET, 7, 1, (char[KF_ERRLEN]){0});
    int nbatch = bt ? batcher_num_batches(bt) : 0, all_once = 1, ok = bt != NULL;
    int norder = 0, sorted = 1;
    for (int e = 0; e < 3 && ok; e++) {
        int nb = run_epoch(bt, &src, &tgt, BUDGET, order[e], &norder, lo, hi, why);
        ok = nb == nbatch && batcher_epoch(bt) == e + 1;
        if (!ok) break;
        memset(seen, 0, sizeof seen);
        for (int k = 0; k < norder; k++) seen[order[e][k]]++;
        for (int i = 0; i < N; i++) all_once &= seen[i] == 1;
        all_once &= norder == N;
        // Batches hold consecutive runs of the (T, S)-sorted list: their key ranges,
        // in sorted order, do not overlap.
        for (int k = 0; k < nb; k++) { range[k][0] = lo[k]; range[k][1] = hi[k]; }
        qsort(range, (size_t)nb, sizeof range[0], cmp_ll_pair);
        for (int k = 0; k + 1 < nb; k++) sorted &= range[k][1] <= range[k + 1][0];
    }
    CHECK(ok, "batcher: valid batches (content, padding, tight S/T, budget) for 3 epochs",
          "%s", why);
    CHECK(all_once, "batcher: every sequence exactly once per epoch", "");
    CHECK(sorted, "batcher: batches group sequences of similar length", "");
    CHECK(nbatch > 20 && memcmp(order[0], order[1], sizeof order[0]) != 0 &&
              memcmp(order[1], order[2], sizeof order[0]) != 0,
          "batcher: new batch order each epoch", "%d batches", nbatch);

    // The same seed gives the same batches in the same order; another seed does not.
    Batcher *b2 = batcher_new(&src, &tgt, BUDGET, 7, 1, (char[KF_ERRLEN]){0});
    Batcher *b3 = batcher_new(&src, &tgt, BUDGET, 8, 1, (char[KF_ERRLEN]){0});
    static int o2[N], o3[N];
    int n2 = 0, n3 = 0;
    run_epoch(b2, &src, &tgt, BUDGET, o2, &n2, lo, hi, why);
    run_epoch(b3, &src, &tgt, BUDGET, o3, &n3, lo, hi, why);
    CHECK(n2 == N && !memcmp(o2, order[0], sizeof o2), "batcher: deterministic from seed", "");
    CHECK(n3 == N && memcmp(o3, order[0], sizeof o3) != 0, "batcher: seed changes the order", "");
    batcher_free(b2); batcher_free(b3); batcher_free(bt);

    // shuffle = 0: file order in every epoch, and greedy cuts (the next sequence would
    // not have fit into the batch before it).
    bt = batcher_new(&src, &tgt, BUDGET, 7, 0, (char[KF_ERRLEN]){0});
    int in_order = bt != NULL, greedy = 1, prevS = 0, prevT = 0, prevB = 0;
    Batch b;
    for (int e = 0; e < 2 && bt; e++) {
        int k = 0;
        while (batcher_next(bt, &b)) {
            in_order &= batch_ok(&b, &src, &tgt, BUDGET, why);
            for (int r = 0; r < b.B; r++) in_order &= b.index[r] == k++;
            int S = (int)(src.off[b.index[0] + 1] - src.off[b.index[0]]) + 1;
            int T = (int)(tgt.off[b.index[0] + 1] - tgt.off[b.index[0]]) + 1;
            S = S > prevS ? S : prevS; T = T > prevT ? T : prevT;
            if (prevB) greedy &= (prevB + 1) * (S > T ? S : T) > BUDGET;
            prevS = b.S; prevT = b.T; prevB = b.B;
        }
        in_order &= k == N;
        prevB = 0;
    }
    CHECK(in_order, "batcher shuffle=0: file order in every epoch", "%s", why);
    CHECK(greedy, "batcher shuffle=0: batches are as full as the budget allows", "");
    batcher_free(bt);

    // lm mode on the same target file: every non-empty sequence once.
    bt = batcher_new(NULL, &tgt, BUDGET, 3, 1, (char[KF_ERRLEN]){0});
    int nonempty = 0, count = 0, lm_ok = bt != NULL;
    for (int i = 0; i < N; i++) nonempty += tgt.off[i + 1] > tgt.off[i];
    memset(seen, 0, sizeof seen);
    while (bt && batcher_next(bt, &b)) {
        lm_ok &= batch_ok(&b, NULL, &tgt, BUDGET, why) && b.S == 0;
        for (int r = 0; r < b.B; r++) { seen[b.index[r]]++; count++; }
    }
    for (int i = 0; i < N; i++) lm_ok &= seen[i] == (tgt.off[i + 1] > tgt.off[i]);
    CHECK(lm_ok && count == nonempty, "batcher lm: valid batches, each non-empty sequence once",
          "%s (count %d of %d)", why, count, nonempty);
    batcher_free(bt);
    tokfile_free(&src); tokfile_free(&tgt);
}

// ----------------------------------------------------------------------------
// lm windows (batcher_new_windows)

// A window row of a stream whose token i is i: tgt_in = a, a+1, ..; tgt_out one ahead.
// Returns its offset a, or -1 if the row is not such a window inside [0, ntok).
static int window_offset(const Batch *b, int r, int ntok) {
    const int *in = b->tgt_in + (size_t)r * b->T, *out = b->tgt_out + (size_t)r * b->T;
    int a = in[0];
    for (int t = 0; t < b->T; t++)
        if (in[t] != a + t || out[t] != a + t + 1) return -1;
    return a >= 0 && a + b->T < ntok ? a : -1;
}

static void test_windows(void) {
    // By hand: two sequences 10..13 and 14..19 read as one stream of 10 tokens; T = 4,
    // 8 tokens a batch (B = 2). Consecutive windows start at 0, 4, 8: 9 targets, each once;
    // the last window has one target, padded.
    int ll[2] = {4, 6};
    int32_t lt[10] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
    TokenFile f = make_file(2, ll, lt);
    Batch b;
    Batcher *bt = batcher_new_windows(&f, 4, 8, 1, 0, (char[KF_ERRLEN]){0});
    int got = bt && batcher_num_batches(bt) == 2 && batcher_next(bt, &b);
    CHECK(got && b.B == 2 && b.T == 4 && b.S == 0 && b.src == NULL && b.ntok == 8 &&
              EXPECT_ROW(b.tgt_in, 0, 4, 10, 11, 12, 13) && EXPECT_ROW(b.tgt_out, 0, 4, 11, 12, 13, 14) &&
              EXPECT_ROW(b.tgt_in, 1, 4, 14, 15, 16, 17) && EXPECT_ROW(b.tgt_out, 1, 4, 15, 16, 17, 18),
          "windows shuffle=0: consecutive windows across sequences", "B %d T %d ntok %d",
          got ? b.B : -1, got ? b.T : -1, got ? b.ntok : -1);
    got = bt && batcher_next(bt, &b);
    CHECK(got && b.B == 1 && b.ntok == 1 && EXPECT_ROW(b.tgt_in, 0, 4, 18, 0, 0, 0) &&
              EXPECT_ROW(b.tgt_out, 0, 4, 19, 0, 0, 0) && batcher_next(bt, &b) == 0,
          "windows shuffle=0: the last window is short and padded, then the epoch ends",
          "B %d ntok %d", got ? b.B : -1, got ? b.ntok : -1);
    batcher_free(bt);
    // shuffled, T above the 9 targets: the one window that fits, the whole stream
    bt = batcher_new_windows(&f, 50, 100, 1, 1, (char[KF_ERRLEN]){0});
    got = bt && batcher_next(bt, &b);
    CHECK(got && b.B == 11 && b.T == 9 && b.ntok == 99 &&
              EXPECT_ROW(b.tgt_in, 10, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18),
          "windows: T clamped to the stream", "B %d T %d", got ? b.B : -1, got ? b.T : -1);
    batcher_free(bt);
    int one[1] = {1};
    TokenFile tiny = make_file(1, one, lt);
    char err[KF_ERRLEN] = "";
    CHECK(batcher_new_windows(&tiny, 4, 8, 1, 1, err) == NULL && strstr(err, "a single token"),
          "windows: a stream of one token -> NULL with a message", "'%s'", err);
    tokfile_free(&f); tokfile_free(&tiny);

    // Random windows of a stream 0..N-1: every row a window inside it, offsets spread over
    // the whole stream; the same (seed, epoch, batch) gives the same batch after a seek.
    enum { N = 1000, T = 16, BT = 64 };   // B = 4
    int32_t *st = malloc(N * sizeof *st);
    int lens[1] = {N};
    for (int i = 0; i < N; i++) st[i] = i;
    f = make_file(1, lens, st);
    bt = batcher_new_windows(&f, T, BT, 5, 1, (char[KF_ERRLEN]){0});
    Batcher *b2 = batcher_new_windows(&f, T, BT, 5, 1, (char[KF_ERRLEN]){0});
    Batcher *b3 = batcher_new_windows(&f, T, BT, 6, 1, (char[KF_ERRLEN]){0});
    int ok = bt && b2 && b3 && batcher_num_batches(bt) == (N - 1) / BT, lo = N, hi = -1;
    int same = 1, other = 0, epochs_differ = 0;
    static int first[3][4];   // offsets of the first batch of epochs 0, 1, 2
    for (int e = 0; e < 3 && ok; e++) {
        for (int k = 0; batcher_next(bt, &b); k++) {
            ok &= b.B == 4 && b.T == T && b.ntok == 4 * T;
            for (int r = 0; r < b.B && ok; r++) {
                int a = window_offset(&b, r, N);
                ok &= a >= 0;
                if (a < lo) lo = a;
                if (a > hi) hi = a;
                if (k == 0) first[e][r] = a;
            }
            if (e == 1 && k == 3) {   // a fresh batcher sought to (1, 3) draws the same
                long ep, pos;
                batcher_position(bt, &ep, &pos);
                Batch c;
                same &= batcher_seek(b2, ep, pos - 1) == 0 && batcher_next(b2, &c) &&
                        !memcmp(c.tgt_in, b.tgt_in, sizeof(int) * 4 * T) &&
                        !memcmp(c.tgt_out, b.tgt_out, sizeof(int) * 4 * T);
                Batch d;
                batcher_seek(b3, ep, pos - 1);
                other |= batcher_next(b3, &d) && memcmp(d.tgt_in, b.tgt_in, sizeof(int) * 4 * T);
            }
        }
    }
    epochs_differ = memcmp(first[0], first[1], sizeof first[0]) && memcmp(first[1], first[2], sizeof first[0]);
    CHECK(ok && lo < 30 && hi > N - T - 31, "windows shuffled: rows are windows of the "
          "stream, spread over all of it", "lo %d hi %d", lo, hi);
    CHECK(same, "windows shuffled: a seek draws the same batch (resume)", "");
    CHECK(other && epochs_differ, "windows shuffled: another seed or epoch, other windows", "");
    batcher_free(bt); batcher_free(b2); batcher_free(b3);
    tokfile_free(&f);
    free(st);
}

// ----------------------------------------------------------------------------
// Toy data. parse_english is an independent oracle: words back to the number.

static int parse_english(const char *s) {
    static const char *ones[20] = {
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
        "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
        "seventeen", "eighteen", "nineteen"};
    static const char *tens[10] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty",
                                   "seventy", "eighty", "ninety"};
    int total = 0, cur = 0;
    char w[32];
    while (*s) {
        size_t n = strcspn(s, " -");
        if (n == 0 || n >= sizeof w) return -1;
        memcpy(w, s, n); w[n] = 0;
        s += n;
        if (*s) s++;
        int v = -1;
        for (int i = 0; i < 20 && v < 0; i++) if (!strcmp(w, ones[i])) v = i;
        for (int i = 2; i < 10 && v < 0; i++) if (!strcmp(w, tens[i])) v = 10 * i;
        if (v >= 0) cur += v;
        else if (!strcmp(w, "hundred")) cur *= 100;
        else if (!strcmp(w, "thousand")) { total = cur * 1000; cur = 0; }
        else return -1;
    }
    return total + cur;
}

static void test_toy_words(void) {
    static const struct { int n; const char *en, *de; } table[] = {
        {0, "zero", "null"},
        {1, "one", "eins"},
        {7, "seven", "sieben"},
        {11, "eleven", "elf"},
        {16, "sixteen", "sechzehn"},
        {17, "seventeen", "siebzehn"},
        {21, "twenty-one", "einundzwanzig"},
        {30, "thirty", "dreißig"},
        {99, "ninety-nine", "neunundneunzig"},
        {100, "one hundred", "einhundert"},
        {101, "one hundred one", "einhunderteins"},
        {116, "one hundred sixteen", "einhundertsechzehn"},
        {342, "three hundred forty-two", "dreihundertzweiundvierzig"},
        {1000, "one thousand", "eintausend"},
        {1001, "one thousand one", "eintausendeins"},
        {2001, "two thousand one", "zweitausendeins"},
        {10000, "ten thousand", "zehntausend"},
        {21121, "twenty-one thousand one hundred twenty-one",
         "einundzwanzigtausendeinhunderteinundzwanzig"},
        {100000, "one hundred thousand", "einhunderttausend"},
        {999999, "nine hundred ninety-nine thousand nine hundred ninety-nine",
         "neunhundertneunundneunzigtausendneunhundertneunundneunzig"},
    };
    char en[256], de[256];
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        char name[64];
        toy_english(table[k].n, en, sizeof en);
        toy_german(table[k].n, de, sizeof de);
        snprintf(name, sizeof name, "toy words %d", table[k].n);
        CHECK(!strcmp(en, table[k].en) && !strcmp(de, table[k].de), name,
              "got '%s' / '%s'", en, de);
    }
    // Every number: English parses back, German is one non-empty word.
    int bad = -1;
    for (int n = 0; n <= 999999 && bad < 0; n++) {
        toy_english(n, en, sizeof en);
        toy_german(n, de, sizeof de);
        if (parse_english(en) != n || !de[0] || strchr(de, ' ')) bad = n;
    }
    CHECK(bad < 0, "toy words: all of 0..999999 well formed", "n = %d: '%s' / '%s'", bad, en, de);
    toy_german(777777, de, 8);
    CHECK(strlen(de) == 7 && !strncmp(de, "siebenh", 7), "toy words: truncates to cap",
          "'%s'", de);
}

// Reads DIR/NAME.{en,de}, checks alignment; marks each number with split id in owner.
// Returns the line count, or -1 on misalignment/duplicate/overlap.
static int read_split(const char *dir, const char *name, int id, signed char *owner,
                      char *why) {
    char pen[256], pde[256], en[256], de[256], want[256];
    snprintf(pen, sizeof pen, "%s/%s.en", dir, name);
    snprintf(pde, sizeof pde, "%s/%s.de", dir, name);
    FILE *fe = fopen(pen, "r"), *fd = fopen(pde, "r");
    int n = fe && fd ? 0 : -1;
    if (n < 0) sprintf(why, "cannot open %s", name);
    while (n >= 0 && fgets(en, sizeof en, fe)) {
        en[strcspn(en, "\n")] = 0;
        int x = parse_english(en);
        if (!fgets(de, sizeof de, fd) || x < 0) { sprintf(why, "%s line %d", name, n); n = -1; break; }
        de[strcspn(de, "\n")] = 0;
        toy_german(x, want, sizeof want);
        if (strcmp(de, want)) { sprintf(why, "%s line %d not aligned", name, n); n = -1; break; }
        if (owner[x] >= 0) { sprintf(why, "%d in two places", x); n = -1; break; }
        owner[x] = (signed char)id;
        n++;
    }
    if (n >= 0 && fgets(de, sizeof de, fd)) { sprintf(why, "%s.de longer", name); n = -1; }
    if (fe) fclose(fe);
    if (fd) fclose(fd);
    return n;
}

static int same_file(const char *a, const char *b) {
    size_t la, lb;
    unsigned char *x = read_all(a, &la), *y = read_all(b, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x); free(y);
    return same;
}

static void remove_toy(const char *dir) {
    static const char *files[6] = {"train.en", "train.de", "valid.en", "valid.de",
                                   "test.en", "test.de"};
    char p[256];
    for (int k = 0; k < 6; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[k]);
        remove(p);
    }
    rmdir(dir);
}

static void test_toy_generate(void) {
    char d1[128], d2[128], d3[128], d4[128], parent[128], err[KF_ERRLEN] = "";
    tmp_path(d1, sizeof d1, "toy1");
    tmp_path(parent, sizeof parent, "new");
    tmp_path(d2, sizeof d2, "new/toy2/");   // parent missing, trailing slash
    tmp_path(d3, sizeof d3, "toy3");
    tmp_path(d4, sizeof d4, "toy4");
    int rc = toy_generate(d1, 5, 300, 40, 60, err);
    CHECK(rc == 0, "toy generate", "%s", err);
    signed char *owner = malloc(1000000);
    memset(owner, -1, 1000000);
    char why[128] = "";
    int ntr = read_split(d1, "train", 0, owner, why);
    int nva = ntr < 0 ? -1 : read_split(d1, "valid", 1, owner, why);
    int nte = nva < 0 ? -1 : read_split(d1, "test", 2, owner, why);
    CHECK(ntr == 300 && nva == 40 && nte == 60,
          "toy generate: line counts, aligned en/de, distinct, disjoint splits",
          "%d %d %d: %s", ntr, nva, nte, why);
    int small = 1, digits[7] = {0};
    for (int x = 0; x < 100; x++) small &= owner[x] == 0;
    for (int x = 100; x < 1000000; x++)
        if (owner[x] == 2) digits[x < 1000 ? 3 : x < 10000 ? 4 : x < 100000 ? 5 : 6]++;
    CHECK(small, "toy generate: all of 0..99 in train", "");
    // ... but spread through the file, not as its first 100 lines.
    char line[256];
    snprintf(line, sizeof line, "%s/train.en", d1);
    FILE *fp = fopen(line, "r");
    int top_small = 0;
    for (int k = 0; k < 100 && fp && fgets(line, sizeof line, fp); k++) {
        line[strcspn(line, "\n")] = 0;
        top_small += parse_english(line) < 100;
    }
    if (fp) fclose(fp);
    CHECK(top_small < 100, "toy generate: train is shuffled", "%d", top_small);
    CHECK(digits[3] && digits[4] && digits[5] && digits[6],
          "toy generate: test has 3- to 6-digit numbers", "%d %d %d %d", digits[3],
          digits[4], digits[5], digits[6]);

    rc = toy_generate(d2, 5, 300, 40, 60, err);
    int same = rc == 0;
    static const char *files[6] = {"train.en", "train.de", "valid.en", "valid.de",
                                   "test.en", "test.de"};
    for (int k = 0; k < 6 && same; k++) {
        char a[256], b[256];
        snprintf(a, sizeof a, "%s/%s", d1, files[k]);
        snprintf(b, sizeof b, "%s%s", d2, files[k]);
        same = same_file(a, b);
    }
    CHECK(same, "toy generate: deterministic from seed (and creates a missing parent)",
          "%s", err);
    rc = toy_generate(d3, 6, 300, 40, 60, err);
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/test.de", d1);
    snprintf(b, sizeof b, "%s/test.de", d3);
    CHECK(rc == 0 && !same_file(a, b), "toy generate: seed changes the data", "%s", err);
    rc = toy_generate(d4, 5, 1000, 40, 60, err);
    snprintf(b, sizeof b, "%s/test.de", d4);
    CHECK(rc == 0 && same_file(a, b), "toy generate: test set does not depend on n_train",
          "%s", err);

    rc = toy_generate(d4, 5, 1000, 999001, 0, err);
    CHECK(rc != 0 && strstr(err, "fewer"), "toy generate: too many numbers -> error", "'%s'", err);
    snprintf(b, sizeof b, "%s/test.de/x", d4);
    rc = toy_generate(b, 5, 10, 1, 1, err);
    CHECK(rc != 0 && strstr(err, "test.de"), "toy generate: directory is a file -> error",
          "'%s'", err);

    remove_toy(d1); remove_toy(d2); rmdir(parent); remove_toy(d3); remove_toy(d4);
    free(owner);
}

int main(void) {
    strcpy(tmpdir, "/tmp/kf_test_data_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("FAIL mkdtemp\n"); return 1; }
    test_tokfile_roundtrip();
    test_tokfile_errors();
    test_batch_by_hand();
    test_batcher_random();
    test_windows();
    test_toy_words();
    test_toy_generate();
    char p[128];
    static const char *files[5] = {"a.tok", "empty.tok", "good.tok", "bad.tok", "x"};
    for (int k = 0; k < 5; k++) { tmp_path(p, sizeof p, files[k]); remove(p); }
    rmdir(tmpdir);
    CHECK_EXIT();
}
