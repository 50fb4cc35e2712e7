// test_tokenizer.c: the byte-level BPE tokenizer: merges derived by hand, exact round
// trips of any bytes, the pre-tokenization rule, determinism, files and their errors, and
// the incremental trainer against a naive one on random corpora.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tokenizer.h"
#include "check.h"

// Byte ids of the characters used below.
enum {
    SP = TOK_BYTE0 + ' ',
    A = TOK_BYTE0 + 'a',
    B = TOK_BYTE0 + 'b',
    C = TOK_BYTE0 + 'c',
    D = TOK_BYTE0 + 'd'
};

static const char *GERMAN =
    "Grüße aus Köln, schöne Straße! Zwei Männer überqueren 3 Brücken.";
// The opening of 三國演義 (Romance of the Three Kingdoms): no spaces, 3 bytes a character.
static const char *CHINESE =
    "滾滾長江東逝水，浪花淘盡英雄。是非成敗轉頭空，青山依舊在，幾度夕陽紅。"
    "話說天下大勢，分久必合，合久必分。";

static Tokenizer *train_str(const char *s, int vocab) {
    char err[KF_ERRLEN] = "";
    Tokenizer *t = tokenizer_train(s, strlen(s), vocab, 0, err);
    if (!t) printf("tokenizer_train failed: %s\n", err);
    return t;
}

// Encodes s (n bytes) into a malloc'd array; *k receives the number of ids.
static int *encode(const Tokenizer *t, const char *s, size_t n, size_t *k) {
    *k = tokenizer_encode(t, s, n, NULL, 0);
    int *ids = malloc((*k + 1) * sizeof *ids);
    size_t again = tokenizer_encode(t, s, n, ids, *k);
    if (again != *k) *k = (size_t)-1;
    return ids;
}

// decode(encode(s)) == s
static int round_trips(const Tokenizer *t, const char *s, size_t n) {
    size_t k;
    int *ids = encode(t, s, n, &k);
    char *back = malloc(n + 1), err[KF_ERRLEN];
    long m = tokenizer_decode(t, ids, k, back, n + 1, err);
    int ok = m == (long)n && !memcmp(back, s, n);
    free(ids);
    free(back);
    return ok;
}

// Does the merge list equal want (pairs of ids)?
static int merges_are(const Tokenizer *t, const int *want, int n) {
    if (tokenizer_vocab_size(t) != TOK_NBASE + n) return 0;
    for (int m = 0; m < n; m++) {
        int la, lb, lm;
        const unsigned char *pa = tokenizer_piece(t, want[2 * m], &la);
        const unsigned char *pb = tokenizer_piece(t, want[2 * m + 1], &lb);
        const unsigned char *pm = tokenizer_piece(t, TOK_NBASE + m, &lm);
        if (!pa || !pb || !pm || lm != la + lb || memcmp(pm, pa, (size_t)la) ||
            memcmp(pm + la, pb, (size_t)lb))
            return 0;
    }
    return 1;
}

static int ids_are(const Tokenizer *t, const char *s, const int *want, size_t n) {
    size_t k;
    int *ids = encode(t, s, strlen(s), &k);
    int ok = k == n && !memcmp(ids, want, n * sizeof *ids);
    free(ids);
    return ok;
}

// The pre-tokenization classes, written again here as the oracle for "no merge
// crosses a chunk boundary".
enum { LETTER, DIGIT, PUNCT, SPACE, NEWLINE };
static int cls(unsigned char c) {
    if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return LETTER;
    if (c >= '0' && c <= '9') return DIGIT;
    if (c == '\n') return NEWLINE;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') return SPACE;
    return PUNCT;
}
// A token fits in one chunk: spaces only, or an optional ' ' and then bytes of one word
// class; a multi-byte token never holds '\n' and has at most 64 bytes.
static int piece_in_one_chunk(const unsigned char *p, int n) {
    if (n == 1) return 1;
    if (n > 64) return 0;
    int i = p[0] == ' ' && cls(p[1]) != SPACE, c = cls(p[i]);
    if (c == NEWLINE) return 0;
    for (; i < n; i++)
        if (cls(p[i]) != c) return 0;
    return 1;
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}
static int same_files(const char *p, const char *q) {
    FILE *f = fopen(p, "rb"), *g = fopen(q, "rb");
    int same = f && g;
    while (same) {
        int a = fgetc(f), b = fgetc(g);
        same = a == b;
        if (a == EOF) break;
    }
    if (f) fclose(f);
    if (g) fclose(g);
    return same;
}
static void write_bytes(const char *path, const unsigned char *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}
static void put32(unsigned char *p, uint32_t v) {
    for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (8 * k));
}
// Writes a tokenizer file with the given header fields and merges.
static void write_tok(const char *path, const char *magic, uint32_t version,
                      uint32_t vocab, const int *merges, uint32_t n) {
    unsigned char buf[20 + 8 * 16];
    memcpy(buf, magic, 8);
    put32(buf + 8, version);
    put32(buf + 12, vocab);
    put32(buf + 16, n);
    for (uint32_t i = 0; i < 2 * n; i++) put32(buf + 20 + 4 * i, (uint32_t)merges[i]);
    write_bytes(path, buf, 20 + 8 * n);
}
// Loading must fail, with a message containing `word`.
static void check_load_fails(const char *path, const char *word, const char *name) {
    char err[KF_ERRLEN] = "";
    Tokenizer *t = tokenizer_load(path, err);
    CHECK(!t && strstr(err, word), name,
          "expected an error mentioning '%s', got %s \"%s\"", word,
          t ? "a tokenizer" : "NULL", err);
    tokenizer_free(t);
}

// ----------------------------------------------------------------------------
// A naive BPE trainer, the oracle of the incremental one: the chunk rules of
// tokenizer.c's header written again, every chunk occurrence kept (no counting of
// distinct words), and after each merge every pair counted again from scratch.

// End of the chunk that starts at s[i]: "\n" alone; else an optional ' ' and a run of
// letters, digits or punctuation; else a run of spaces, less its last ' ' when a word
// byte follows. At most 64 bytes; a cut backs up by at most 3 bytes (keeping one) so as
// not to split a UTF-8 character.
static size_t naive_chunk_end(const unsigned char *s, size_t i, size_t n) {
    if (s[i] == '\n') return i + 1;
    size_t start = i, end;
    if (s[i] == ' ' && i + 1 < n && cls(s[i + 1]) < SPACE) i++;
    int c = cls(s[i]);
    for (end = i; end < n && cls(s[end]) == c; end++) {}
    if (end - start > 64) {   // cut by the length limit
        end = start + 64;
        for (int k = 0; k < 3 && end > start + 1 && (s[end] & 0xC0) == 0x80; k++) end--;
    } else if (c == SPACE && end < n && end - start > 1 && s[end - 1] == ' ' && cls(s[end]) < SPACE) {
        end--;
    }
    return end;
}

// Learns merges into merges[2 * k] (left, right), at most `max` of them; returns k.
static int naive_train(const unsigned char *s, size_t n, int max, int *merges) {
    int *sym = malloc((n + 1) * sizeof *sym);     // every chunk's symbols, back to back
    size_t *start = malloc((n + 1) * sizeof *start), *len = malloc((n + 1) * sizeof *len);
    size_t nchunks = 0;
    for (size_t i = 0, e; i < n; i = e) {
        e = naive_chunk_end(s, i, n);
        start[nchunks] = i; len[nchunks++] = e - i;
        for (size_t j = i; j < e; j++) sym[j] = TOK_BYTE0 + s[j];
    }
    int V = TOK_NBASE + max;
    long *count = calloc((size_t)V * V, sizeof *count);
    int k = 0;
    for (; k < max; k++) {
        memset(count, 0, (size_t)V * V * sizeof *count);
        for (size_t c = 0; c < nchunks; c++)
            for (size_t j = 0; j + 1 < len[c]; j++) count[sym[start[c] + j] * V + sym[start[c] + j + 1]]++;
        long best = 1;   // a merge needs a pair that occurs at least twice
        int bl = -1, br = -1;
        for (int l = 0; l < V; l++)        // in (left, right) order: ties go to the first
            for (int r = 0; r < V; r++)
                if (count[l * V + r] > best) { best = count[l * V + r]; bl = l; br = r; }
        if (bl < 0) break;
        merges[2 * k] = bl; merges[2 * k + 1] = br;
        for (size_t c = 0; c < nchunks; c++) {   // left to right, without overlaps
            int *w = sym + start[c];
            size_t out = 0;
            for (size_t j = 0; j < len[c]; j++) {
                if (j + 1 < len[c] && w[j] == bl && w[j + 1] == br) { w[out++] = TOK_NBASE + k; j++; }
                else w[out++] = w[j];
            }
            len[c] = out;
        }
    }
    free(sym); free(start); free(len); free(count);
    return k;
}

// A random corpus: a few letters (so that pairs repeat), digits, spaces, tabs,
// newlines, punctuation, 2- and 3-byte UTF-8 characters, stray bytes >= 0x80, and
// runs longer than a chunk.
static size_t random_corpus(unsigned char *s, size_t n, uint64_t *rng) {
    static const char *pieces[] = {"a", "b", "c", "ab", "1", "2", " ", " ", " ", "  ", "\n",
                                   "\t", ".", "!", "\xc3\xa9", "\xe2\x82\xac", "\x80", "\xff"};
    size_t i = 0;
    while (i + 200 < n) {
        uint64_t r = rng_next(rng);
        if (r % 97 == 0) {   // a long run of one letter, of spaces or of a 2-byte character
            const char *run = r % 3 == 0 ? "a" : r % 3 == 1 ? " " : "\xc3\xa9";
            size_t rl = strlen(run), reps = 40 + (r >> 8) % 60;
            for (size_t k = 0; k < reps; k++, i += rl) memcpy(s + i, run, rl);
            continue;
        }
        const char *p = pieces[(r >> 16) % (sizeof pieces / sizeof pieces[0])];
        memcpy(s + i, p, strlen(p));
        i += strlen(p);
    }
    return i;
}

// The merge list of t, from its file (format in tokenizer.h): merges at byte 20.
static int saved_merges(const Tokenizer *t, const char *path, int *merges, int max) {
    char err[KF_ERRLEN];
    if (tokenizer_save(t, path, err)) { printf("tokenizer_save: %s\n", err); return -1; }
    FILE *f = fopen(path, "rb");
    unsigned char b[4];
    int k = 0;
    if (!f || fseek(f, 20, SEEK_SET)) { if (f) fclose(f); return -1; }
    while (k < 2 * max && fread(b, 1, 4, f) == 4) merges[k++] = (int)(b[0] | b[1] << 8 | b[2] << 16 | (uint32_t)b[3] << 24);
    fclose(f);
    remove(path);
    return k / 2;
}

static void test_against_naive(void) {
    enum { MAXM = 300, CORPORA = 30 };
    uint64_t rng = 2024;
    unsigned char *s = malloc(6000);
    int *want = malloc(2 * MAXM * sizeof *want), *got = malloc(2 * MAXM * sizeof *got);
    int bad = -1, bad_merge = -1, total = 0, ngot = 0, nwant = 0;
    for (int c = 0; c < CORPORA && bad < 0; c++) {
        size_t n = random_corpus(s, 300 + rng_next(&rng) % 5600, &rng);
        int max = 20 + (int)(rng_next(&rng) % (MAXM - 20));
        char err[KF_ERRLEN];
        Tokenizer *t = tokenizer_train((const char *)s, n, TOK_NBASE + max, 0, err);
        nwant = naive_train(s, n, max, want);
        ngot = t ? saved_merges(t, "test_tokenizer_naive.tok.tmp", got, MAXM) : -1;
        total += nwant;
        if (ngot != nwant || memcmp(got, want, 2 * (size_t)nwant * sizeof *got)) {
            bad = c;
            for (bad_merge = 0; bad_merge < nwant && bad_merge < ngot &&
                 got[2 * bad_merge] == want[2 * bad_merge] && got[2 * bad_merge + 1] == want[2 * bad_merge + 1];
                 bad_merge++) {}
        }
        tokenizer_free(t);
    }
    CHECK(bad < 0 && total > 1000, "train_matches_naive_trainer",
          "corpus %d: %d merges, naive %d; first difference at merge %d: (%d, %d), naive (%d, %d)",
          bad, ngot, nwant, bad_merge, bad_merge >= 0 && bad_merge < ngot ? got[2 * bad_merge] : -1,
          bad_merge >= 0 && bad_merge < ngot ? got[2 * bad_merge + 1] : -1,
          bad_merge >= 0 && bad_merge < nwant ? want[2 * bad_merge] : -1,
          bad_merge >= 0 && bad_merge < nwant ? want[2 * bad_merge + 1] : -1);
    printf("  %d random corpora, %d merges compared\n", CORPORA, total);
    free(s); free(want); free(got);
}

int main(void) {
    char err[KF_ERRLEN];

    // --- a byte-only tokenizer maps each byte b to id 3 + b
    Tokenizer *bytes = tokenizer_new_bytes();
    {
        const char s[] = "A\0\xff\n";
        int want[] = {TOK_BYTE0 + 'A', TOK_BYTE0, TOK_BYTE0 + 255, TOK_BYTE0 + '\n'};
        size_t k;
        int *ids = encode(bytes, s, 4, &k);
        CHECK(tokenizer_vocab_size(bytes) == TOK_NBASE && k == 4 &&
                  !memcmp(ids, want, sizeof want),
              "bytes_encode", "vocab %d, %zu ids", tokenizer_vocab_size(bytes), k);
        free(ids);
        int len;
        const unsigned char *p = tokenizer_piece(bytes, TOK_BYTE0 + 'A', &len);
        CHECK(p && len == 1 && p[0] == 'A' && !tokenizer_piece(bytes, TOK_PAD, &len) &&
                  !tokenizer_piece(bytes, TOK_NBASE, &len),
              "bytes_piece", "piece lookup wrong");
    }

    // --- hand-derived merges.
    // "aaab aaab ab" pre-tokenizes to "aaab", " aaab", " ab" (once each). Pair counts:
    // (a,a) 2+2 = 4, (a,b) 3, (' ',a) 2, so merge 259 = a+a. The words become [aa a b],
    // [' ' aa a b], [' ' a b]: (a,b) 3, (aa,a) 2, (' ',aa) 1, (' ',a) 1, so 260 = a+b.
    // Then [aa ab], [' ' aa ab], [' ' ab]: (aa,ab) 2, so 261 = aa+ab. Left: (' ',aaab) 1
    // and (' ',ab) 1; no pair occurs twice, so training stops at 262 < 300 ids.
    {
        Tokenizer *t = train_str("aaab aaab ab", 300);
        int want[] = {A, A, A, B, 259, 260};
        CHECK(t && merges_are(t, want, 3), "hand_merges", "merge list differs");
        // encoding by rank reproduces training's segmentation of each word
        int ids[] = {261, SP, 261, SP, 260};
        CHECK(t && ids_are(t, "aaab aaab ab", ids, 5) &&
                  ids_are(t, "aaab aaab ab", ids, 5),
              "hand_encode", "encoding (fresh, then cached) differs");
        tokenizer_free(t);
    }
    // Ties: "cd ab cd ab" gives "cd", " ab" x2, " cd". (c,d), (' ',a), (a,b) all occur 2
    // times; the smallest (left, right) wins: (' ',a) = (35,100) makes 259. Then
    // (c,d) = (102,103) and (259,b) = (259,101) tie at 2; (102,103) is smaller: 260.
    // Then 261 = 259+b; (' ',cd) occurs once. A vocab of 261 stops after two merges.
    {
        Tokenizer *t = train_str("cd ab cd ab", 1000),
                  *t2 = train_str("cd ab cd ab", 261);
        int want[] = {SP, A, C, D, 259, B};
        CHECK(t && merges_are(t, want, 3), "tie_break", "merge list differs");
        CHECK(t2 && merges_are(t2, want, 2), "vocab_size_limit", "vocab %d",
              t2 ? tokenizer_vocab_size(t2) : -1);
        tokenizer_free(t);
        tokenizer_free(t2);
    }
    // Overlapping runs: "aaaa aaaa" has (a,a) 3+3 times, but merging a+a left to right
    // leaves [aa aa] and [' ' aa aa]: (aa,aa) occurs exactly 2 times (merge 260) and
    // (' ',aa) once. So "aaaaa" encodes to [aaaa, a] and "aaa" to [aa, a].
    {
        Tokenizer *t = train_str("aaaa aaaa", 300);
        int want[] = {A, A, 259, 259}, five[] = {260, A}, three[] = {259, A};
        CHECK(t && merges_are(t, want, 2) && ids_are(t, "aaaaa", five, 2) &&
                  ids_are(t, "aaa", three, 2),
              "overlapping_runs", "merges or encoding differ");
        tokenizer_free(t);
    }

    // --- no merge across a pre-token boundary
    {
        // letters, digits and punctuation alternate, and newlines repeat: every chunk
        // is a single byte, so nothing may be merged although (a,1), (x,.) occur 4 times
        Tokenizer *t = train_str("a1a1a1a1 x.x.x.x.\n\n\n\n", 300);
        CHECK(t && tokenizer_vocab_size(t) == TOK_NBASE, "no_merge_across_classes",
              "vocab %d", t ? tokenizer_vocab_size(t) : -1);
        tokenizer_free(t);
        // "a  b  b  b": a run of two spaces gives its last one to the word after it, so
        // the chunks are "a", " ", " b" x3: the only merge is ' '+b, never ' '+' '
        int want[] = {SP, B};
        t = train_str("a  b  b  b", 300);
        CHECK(t && merges_are(t, want, 1), "leading_space_rule", "merge list differs");
        tokenizer_free(t);
    }

    // --- a corpus of everything, for the round trips and the property checks (its
    // distinct pairs run out at about 516 ids)
    enum { VOCAB = 400 };
    uint64_t rng = 42;
    size_t clen = 0, ccap = 1 << 16;
    char *corpus = malloc(ccap);
    for (int rep = 0; rep < 20; rep++) {
        int n =
            sprintf(corpus + clen, "%s\n%s\n\n  The  year 1984, said   he.\t\"Yes!\"\r\n",
                    GERMAN, CHINESE);
        clen += (size_t)n;
        for (int i = 0; i < 200; i++) corpus[clen++] = (char)(rng_next(&rng) & 0xff);
    }
    Tokenizer *t = tokenizer_train(corpus, clen, VOCAB, 0, err);
    CHECK(t && tokenizer_vocab_size(t) == VOCAB, "train_mixed", "%s",
          t ? "wrong vocab" : err);
    if (!t) CHECK_EXIT();
    {
        int bad = -1;
        for (int id = TOK_NBASE; id < VOCAB && bad < 0; id++) {
            int len;
            const unsigned char *p = tokenizer_piece(t, id, &len);
            if (!p || !piece_in_one_chunk(p, len)) bad = id;
        }
        CHECK(bad < 0, "pieces_within_chunks", "token %d crosses a pre-token boundary",
              bad);
    }

    // --- round trips: random bytes (NUL, invalid UTF-8), German, Chinese, empty lines,
    // runs longer than a chunk
    {
        int fails = 0;
        char s[400];
        for (int i = 0; i < 2000; i++) {
            size_t n = rng_next(&rng) % sizeof s;
            for (size_t j = 0; j < n; j++) s[j] = (char)(rng_next(&rng) & 0xff);
            fails += !round_trips(t, s, n) + !round_trips(bytes, s, n);
        }
        CHECK(fails == 0, "round_trip_random", "%d of 4000 random strings differ", fails);
        char lng[600];
        size_t nc = strlen(CHINESE);
        memset(lng, 'a', 200);
        memset(lng + 200, ' ', 150);
        memcpy(lng + 350, CHINESE, nc < 240 ? nc : 240);
        size_t nl = 350 + (nc < 240 ? nc : 240);
        CHECK(round_trips(t, GERMAN, strlen(GERMAN)) && round_trips(t, CHINESE, nc) &&
                  round_trips(bytes, CHINESE, nc),
              "round_trip_utf8", "German or Chinese differs");
        CHECK(round_trips(t, "", 0) && round_trips(t, "\n", 1) &&
                  round_trips(t, "\n\n\n", 3) && round_trips(t, " \n \n", 4) &&
                  round_trips(t, "x\n\ny\n", 5),
              "round_trip_empty_lines", "empty input or empty lines differ");
        CHECK(round_trips(t, lng, nl), "round_trip_long_runs",
              "runs over 64 bytes differ");
        // learned merges join whole characters: the Chinese text (3 bytes a character)
        // needs fewer ids than it has characters
        size_t k;
        free(encode(t, CHINESE, nc, &k));
        CHECK(k < nc / 3, "chinese_compresses", "%zu ids for %zu characters", k, nc / 3);
    }

    // --- encode and decode respect the capacity and report the full size
    {
        const char *s = GERMAN;
        size_t n = strlen(s), k;
        int *all = encode(t, s, n, &k), part[4] = {-7, -7, -7, -7};
        size_t k2 = tokenizer_encode(t, s, n, part, 3);
        CHECK(k2 == k && k > 3 && !memcmp(part, all, 3 * sizeof *part) && part[3] == -7,
              "encode_capacity", "returned %zu of %zu", k2, k);
        char out[8] = "#######";
        long m = tokenizer_decode(t, all, k, out, 5, err);
        CHECK(m == (long)n && !memcmp(out, s, 5) && out[5] == '#', "decode_capacity",
              "returned %ld of %zu", m, n);
        free(all);
    }

    // --- decode: special tokens give no bytes, ids out of range an error
    {
        int ids[] = {TOK_BOS, TOK_BYTE0 + 'h', TOK_BYTE0 + 'i', TOK_EOS, TOK_PAD};
        char out[8];
        long m = tokenizer_decode(t, ids, 5, out, sizeof out, err);
        CHECK(m == 2 && !memcmp(out, "hi", 2), "decode_specials", "got %ld bytes", m);
        int bad[][2] = {{TOK_BYTE0, -1}, {TOK_BYTE0, VOCAB}, {1 << 30, TOK_BYTE0}};
        for (int i = 0; i < 3; i++) {
            err[0] = 0;
            m = tokenizer_decode(t, bad[i], 2, out, sizeof out, err);
            CHECK(m == -1 && strstr(err, "range"), "decode_out_of_range",
                  "id %d: %ld \"%s\"", bad[i][0] == TOK_BYTE0 ? bad[i][1] : bad[i][0], m,
                  err);
        }
    }

    // --- errors on bad arguments
    {
        err[0] = 0;
        Tokenizer *x = tokenizer_train("abc", 3, 258, 0, err);
        CHECK(!x && strstr(err, "259"), "train_vocab_too_small", "\"%s\"", err);
        tokenizer_free(x);
    }

    // --- determinism and the checksum
    const char *p1 = "test_tokenizer_a.tok.tmp", *p2 = "test_tokenizer_b.tok.tmp",
               *pb = "test_tokenizer_bad.tok.tmp";
    {
        Tokenizer *u = tokenizer_train(corpus, clen, VOCAB, 0, err),
                  *v = tokenizer_train(corpus, clen, VOCAB - 1, 0, err);
        int saved = u && v && !tokenizer_save(t, p1, err) && !tokenizer_save(u, p2, err);
        CHECK(saved && same_files(p1, p2) &&
                  file_size(p1) == 20 + 8 * (VOCAB - TOK_NBASE),
              "deterministic_files", "%s", saved ? "files differ" : err);
        CHECK(u && v && tokenizer_checksum(t) == tokenizer_checksum(u) &&
                  tokenizer_checksum(t) != tokenizer_checksum(v),
              "checksum_identifies_vocab", "checksums %llx %llx",
              (unsigned long long)tokenizer_checksum(t),
              (unsigned long long)(v ? tokenizer_checksum(v) : 0));
        tokenizer_free(u);
        tokenizer_free(v);
        // oracle: FNV-1a 64 over the vocab size and merge ids as 4 little-endian bytes
        // (the hand-derived "cd ab cd ab" list)
        Tokenizer *h = train_str("cd ab cd ab", 300);
        uint32_t words[] = {262, SP, A, C, D, 259, B};
        uint64_t f = 0xcbf29ce484222325ULL;
        for (int i = 0; i < 7; i++)
            for (int k = 0; k < 4; k++)
                f = (f ^ ((words[i] >> (8 * k)) & 0xff)) * 0x100000001b3ULL;
        CHECK(h && tokenizer_checksum(h) == f, "checksum_fnv1a", "got %llx, want %llx",
              (unsigned long long)(h ? tokenizer_checksum(h) : 0), (unsigned long long)f);
        tokenizer_free(h);
    }

    // --- save and load
    {
        Tokenizer *l = tokenizer_load(p1, err);
        size_t k1, k2;
        int *e1 = encode(t, corpus, clen, &k1),
            *e2 = l ? encode(l, corpus, clen, &k2) : NULL;
        CHECK(l && tokenizer_vocab_size(l) == VOCAB &&
                  tokenizer_checksum(l) == tokenizer_checksum(t) && k1 == k2 &&
                  !memcmp(e1, e2, k1 * sizeof *e1),
              "save_load", "%s", l ? "loaded tokenizer differs" : err);
        free(e1);
        free(e2);
        tokenizer_free(l);
    }

    // --- bad files: errors, never crashes
    {
        check_load_fails("no/such/dir/tokenizer.tok", "cannot open", "load_missing");
        write_bytes(pb, (const unsigned char *)"hello, this is a text file\n", 27);
        check_load_fails(pb, "bad magic", "load_bad_magic");
        int m1[] = {A, B};
        write_tok(pb, "KFTOKENS", 2, 260, m1, 1);
        check_load_fails(pb, "version", "load_bad_version");
        write_tok(pb, "KFTOKENS", 1, 261, m1, 1);
        check_load_fails(pb, "corrupt", "load_vocab_mismatch");
        int fut[] = {A, 259};
        write_tok(pb, "KFTOKENS", 1, 260, fut, 1);
        check_load_fails(pb, "corrupt", "load_future_id");
        int spec[] = {TOK_EOS, A}, neg[] = {-5, A}, dup[] = {A, B, A, B};
        write_tok(pb, "KFTOKENS", 1, 260, spec, 1);
        check_load_fails(pb, "corrupt", "load_special_id");
        write_tok(pb, "KFTOKENS", 1, 260, neg, 1);
        check_load_fails(pb, "corrupt", "load_negative_id");
        write_tok(pb, "KFTOKENS", 1, 261, dup, 2);
        check_load_fails(pb, "corrupt", "load_duplicate_merge");
        // each merge doubles a token: 2, 4, ..., 128 bytes, more than a chunk can hold
        int grow[] = {A, A, 259, 259, 260, 260, 261, 261, 262, 262, 263, 263, 264, 264};
        write_tok(pb, "KFTOKENS", 1, 266, grow, 7);
        check_load_fails(pb, "corrupt", "load_overlong_token");
        // every truncation of a good file, and one byte too many
        long size = file_size(p1);
        unsigned char *good = malloc((size_t)size + 1);
        FILE *f = fopen(p1, "rb");
        size_t got = fread(good, 1, (size_t)size, f);
        fclose(f);
        int crashes = 0;
        for (long n = 0; n < size && got == (size_t)size; n++) {
            write_bytes(pb, good, (size_t)n);
            err[0] = 0;
            Tokenizer *x = tokenizer_load(pb, err);
            crashes += x != NULL || !strstr(err, "truncated");
            tokenizer_free(x);
        }
        CHECK(got == (size_t)size && crashes == 0, "load_truncated",
              "%d of %ld truncations were not reported as truncated", crashes, size);
        good[size] = 0;
        write_bytes(pb, good, (size_t)size + 1);
        check_load_fails(pb, "trailing", "load_trailing_bytes");
        free(good);
    }
#ifdef _OPENMP
    // --- concurrent encode calls fill one word cache and give the serial result
    {
        enum { LINES = 400, W = 300 };
        Tokenizer *par = tokenizer_load(p1, err); // a fresh tokenizer: its cache is empty
        int(*want)[W] = malloc(LINES * sizeof *want), mism = 0;
        size_t kw[LINES];
        for (int i = 0; i < LINES; i++) {
            size_t off = (size_t)i * 97 % clen, n = clen - off < W ? clen - off : W;
            kw[i] = tokenizer_encode(t, corpus + off, n, want[i], W);
        }
        if (par) {
#pragma omp parallel for reduction(+ : mism) schedule(dynamic)
            for (int i = 0; i < LINES; i++) {
                size_t off = (size_t)i * 97 % clen, n = clen - off < W ? clen - off : W;
                int got[W];
                size_t k = tokenizer_encode(par, corpus + off, n, got, W);
                mism += k != kw[i] || memcmp(got, want[i], (k < W ? k : W) * sizeof *got);
            }
        }
        CHECK(par && mism == 0, "encode_threads", "%d of %d lines differ", mism, LINES);
        free(want);
        tokenizer_free(par);
    }
#endif
    remove(p1);
    remove(p2);
    remove(pb);

    tokenizer_free(t);
    tokenizer_free(bytes);
    free(corpus);
    test_against_naive();
    CHECK_EXIT();
}
