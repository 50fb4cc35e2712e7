// metrics.c: BLEU and chrF2 as sacreBLEU 2.x computes them with its defaults (see
// metrics.h). Written from sacreBLEU's definitions (metrics/bleu.py, metrics/chrf.py,
// metrics/helpers.py, tokenizers/tokenizer_13a.py, tokenizer_re.py).
//
// BLEU (Papineni et al., 2002), in its corpus form. Each line is tokenized (13a, below).
// For each order n = 1..4, total[n] counts the hypothesis n-grams and correct[n] the
// matched ones, clipped per line: an n-gram that occurs h times in the hypothesis and r
// times in its reference matches min(h, r) times. The counts are summed over the
// corpus before anything is divided (corpus BLEU is not a mean of sentence scores):
//   p_n  = 100 correct[n] / total[n];
//          when correct[n] = 0, 'exp' smoothing (mteval-v13a's; Chen and Cherry 2014,
//          method 3) takes p_n = 100 / (2^k total[n]) instead, for the k-th such order;
//          when total[n] = 0 (no hypothesis has n tokens) the orders stop: p_n = 0 from
//          there on;
//          when no n-gram of any order matches, BLEU = 0 and every p_n is reported as 0;
//   BP   = 1 if sys_len >= ref_len, else exp(1 - ref_len / sys_len), and 0 if sys_len = 0
//          (sys_len, ref_len: tokens of all hypotheses, of all references);
//   BLEU = BP exp(sum_n log(p_n) / 4), with log 0 taken as -9999999999 (so BLEU = 0).
//
// The 13a tokenization (mteval-v13a.pl's, which WMT uses), on code points:
//   0. trailing whitespace is stripped (BLEU strips each line before tokenizing);
//   1. "<skipped>" and "-\n" are removed, "\n" becomes " ", and the entities "&quot;",
//      "&amp;", "&lt;", "&gt;" become '"', '&', '<', '>': one pass over the whole line for
//      each, in that order (so "&amp;lt;" ends as "<");
//   2. one space is added at each end;
//   3. each of  { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /  gets a
//      space on each side (not ' , - . nor anything beyond ASCII);
//   4. a period or comma after a non-digit is split off:  "x." -> "x . ";
//   5. a period or comma before a non-digit is split off: ".x" -> " . x";
//      so "3.50" and "1,000" stay whole, while "3." and ".5" are split;
//   6. a dash after a digit is split off: "1-2" -> "1 - 2", but "well-known" stays;
//   7. the tokens are what whitespace separates (Python's whitespace, with U+00A0,
//      U+2009, U+3000 ...; see is_space).
// Steps 3 to 6 are Python's re.sub: left to right, without overlapping matches, each
// step over the whole output of the one before. Steps 4 to 6 look at two characters;
// pair_rule reproduces exactly which pairs re.sub rewrites.
//
// chrF (Popović, 2015), chrF2: whitespace is removed from each line, and for each order
// n = 1..6 the line's character n-grams are counted (over code points). Per line pair:
// hyp[n] = the hypothesis n-grams, but 0 when the reference has none of order n (it is
// shorter than n characters); ref[n] = the reference n-grams; match[n] = the clipped
// matches. These are summed over the corpus. Then, over the orders with hyp[n] > 0 and
// ref[n] > 0 (the effective order N'),
//   P = mean of match[n] / hyp[n],  R = mean of match[n] / ref[n],
//   chrF2 = 100 (1 + b^2) P R / (b^2 P + R), b = 2 (recall weighs b times precision),
// and 0 when no order counts or P + R = 0. (sacreBLEU 2.x also computes an epsilon-
// smoothed mean of per-order F scores, but returns it only with eps_smoothing=True,
// which is not its default.)
//
// The n-grams of one line pair live in a hash table of spans of code points: a word
// n-gram is a substring of the tokenized line (n tokens and the n - 1 single spaces
// between them, so n-grams of different orders never compare equal), a character
// n-gram a substring of the line without whitespace. The table is sized for the line
// and reused from line to line.
#include "metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BLEU_ORDER = 4, CHRF_ORDER = 6, CHRF_BETA = 2 };

static const char *or_empty(const char *s) { return s ? s : ""; }

static void oom(char *err, const char *what, size_t i, size_t n) {
    if (err)
        errorf(err, "out of memory computing %s (line %zu of %zu)", what, i + 1, n);
}

// Grows a buffer of code points to hold at least need of them, keeping its contents.
static int reserve_cp(uint32_t **p, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    uint32_t *q = realloc(*p, c * sizeof *q);
    if (!q) return 1;
    *p = q;
    *cap = c;
    return 0;
}

// ----------------------------------------------------------------------------
// code points

// A byte that is not part of valid UTF-8 becomes U+DC80..U+DCFF, as Python's
// 'surrogateescape' does: a lone surrogate, which no valid UTF-8 decodes to, so the bad
// byte is one character, equal only to the same bad byte.
enum { BAD_BYTE = 0xDC00 };

// Decodes the NUL-terminated UTF-8 s into out (room for strlen(s) code points) and
// returns the number of code points. Overlong forms, surrogates and values above
// U+10FFFF are invalid (RFC 3629); an invalid or truncated sequence yields its first
// byte as a bad byte, and decoding goes on at the next byte.
static size_t utf8_decode(const unsigned char *s, uint32_t *out) {
    size_t n = 0;
    while (*s) {
        unsigned c = s[0], lo = 0x80, hi = 0xBF;   // lo..hi: the second byte's range
        int len = 0;
        uint32_t cp = 0;
        if (c < 0x80) { len = 1; cp = c; }
        else if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3; cp = c & 0x0F;
            if (c == 0xE0) lo = 0xA0;              // no overlong forms
            if (c == 0xED) hi = 0x9F;              // no surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4; cp = c & 0x07;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;              // nothing above U+10FFFF
        }
        int ok = len > 0;
        for (int k = 1; ok && k < len; k++) {      // a NUL fails the range test: no overrun
            unsigned b = s[k];
            ok = k == 1 ? b >= lo && b <= hi : b >= 0x80 && b <= 0xBF;
            cp = cp << 6 | (b & 0x3F);
        }
        if (!ok) { cp = BAD_BYTE | c; len = 1; }
        out[n++] = cp;
        s += len;
    }
    return n;
}

// Writes code point c as UTF-8 (a bad byte as itself) to o (4 bytes of room); returns
// the number of bytes.
static int utf8_encode(uint32_t c, unsigned char *o) {
    if (c >= (BAD_BYTE | 0x80) && c <= (BAD_BYTE | 0xFF)) { o[0] = (unsigned char)c; return 1; }
    if (c < 0x80) { o[0] = (unsigned char)c; return 1; }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | c >> 6);
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | c >> 12);
        o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | c >> 18);
    o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

// Python's str.isspace, which str.split() and str.rstrip() use: the ASCII controls
// \t \n \v \f \r, the separators U+001C..U+001F, space, U+0085, and Unicode's spaces.
static int is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int is_period_comma(uint32_t c) { return c == '.' || c == ','; }

// Step 3's characters: the regex class [\{-\~\[-\` -\&\(-\+\:-\@\/].
static int is_spaced_symbol(uint32_t c) {
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
           (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// ----------------------------------------------------------------------------
// the 13a tokenizer

// Step 1, in order: (from, to), ASCII, each "to" no longer than its "from". (sacreBLEU
// replaces the entities only when the line holds a '&'; every entity starts with one
// and no earlier replacement makes one, so replacing unconditionally is the same.)
static const char *const REPLACE[][2] = {
    {"<skipped>", ""}, {"-\n", ""}, {"\n", " "},
    {"&quot;", "\""}, {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"},
};

// Python's s.replace(from, to) on n code points, in place (to is no longer than from,
// so the write position never passes the read position). Returns the new length.
static size_t replace_all(uint32_t *s, size_t n, const char *from, const char *to) {
    size_t lf = strlen(from), lt = strlen(to), k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = 0;
        while (j < lf && i + j < n && s[i + j] == (unsigned char)from[j]) j++;
        if (j == lf) {
            for (size_t t = 0; t < lt; t++) s[k++] = (unsigned char)to[t];
            i += lf;
        } else {
            s[k++] = s[i++];
        }
    }
    return k;
}

// Steps 2 and 3: ' ' + in + ' ' with a space on each side of each step-3 character.
// out has room for 3 n + 2. Returns the new length.
static size_t space_symbols(const uint32_t *in, size_t n, uint32_t *out) {
    size_t k = 0;
    out[k++] = ' ';
    for (size_t i = 0; i < n; i++) {
        if (is_spaced_symbol(in[i])) {
            out[k++] = ' ';
            out[k++] = in[i];
            out[k++] = ' ';
        } else {
            out[k++] = in[i];
        }
    }
    out[k++] = ' ';
    return k;
}

// Steps 4 to 6, one re.sub each, of a pattern of two characters (a, b):
//   PERIOD_AFTER_NONDIGIT   ([^0-9])([\.,])  ->  "a b "
//   PERIOD_BEFORE_NONDIGIT  ([\.,])([^0-9])  ->  " a b"
//   DASH_AFTER_DIGIT        ([0-9])(-)       ->  "a b "
// re.sub takes the leftmost match, then searches again after it: so at each position
// either the pair matches (write the replacement, skip both characters) or the
// character is copied. out has room for 2 n. Returns the new length.
enum { PERIOD_AFTER_NONDIGIT, PERIOD_BEFORE_NONDIGIT, DASH_AFTER_DIGIT };
static size_t pair_rule(int rule, const uint32_t *in, size_t n, uint32_t *out) {
    size_t k = 0, i = 0;
    while (i < n) {
        uint32_t a = in[i], b = i + 1 < n ? in[i + 1] : 0;
        int hit = i + 1 < n &&
                  (rule == PERIOD_AFTER_NONDIGIT    ? !is_digit(a) && is_period_comma(b)
                   : rule == PERIOD_BEFORE_NONDIGIT ? is_period_comma(a) && !is_digit(b)
                                                    : is_digit(a) && b == '-');
        if (!hit) { out[k++] = a; i++; continue; }
        if (rule == PERIOD_BEFORE_NONDIGIT) out[k++] = ' ';
        out[k++] = a;
        out[k++] = ' ';
        out[k++] = b;
        if (rule != PERIOD_BEFORE_NONDIGIT) out[k++] = ' ';
        i += 2;
    }
    return k;
}

// A tokenized line and the work buffers that made it, kept from line to line.
typedef struct {
    uint32_t *a, *b;   // (cap) code points: each step reads one and writes the other
    size_t cap;
    const uint32_t *tok;  // (len) the tokens joined by single spaces (points into a or b)
    size_t len;
    size_t *start;     // (ntok) where each token starts in tok
    size_t ntok, start_cap;
} Tokens;

static int tokens_reserve(Tokens *t, size_t need) {
    size_t cap = t->cap;
    if (reserve_cp(&t->a, &cap, need)) return 1;
    cap = t->cap;
    if (reserve_cp(&t->b, &cap, need)) return 1;
    t->cap = cap;
    return 0;
}

static void tokens_free(Tokens *t) {
    free(t->a);
    free(t->b);
    free(t->start);
    memset(t, 0, sizeof *t);
}

// Tokenizes line into t (steps 0 to 7 above). Returns non-zero when out of memory.
static int tokenize(Tokens *t, const char *line) {
    size_t n = strlen(line);
    if (tokens_reserve(t, 3 * n + 2)) return 1;     // decoding, steps 1 to 3
    n = utf8_decode((const unsigned char *)line, t->a);
    while (n > 0 && is_space(t->a[n - 1])) n--;                             // 0.
    for (size_t r = 0; r < sizeof REPLACE / sizeof REPLACE[0]; r++)         // 1.
        n = replace_all(t->a, n, REPLACE[r][0], REPLACE[r][1]);
    n = space_symbols(t->a, n, t->b);                                       // 2, 3.
    int in_b = 1;   // which buffer holds the line (reserving may move both)
    for (int rule = PERIOD_AFTER_NONDIGIT; rule <= DASH_AFTER_DIGIT; rule++) {  // 4 - 6.
        if (tokens_reserve(t, 2 * n)) return 1;
        n = pair_rule(rule, in_b ? t->b : t->a, n, in_b ? t->a : t->b);
        in_b = !in_b;
    }
    // 7. the runs of non-whitespace, joined by single spaces, into the other buffer
    if (n + 1 > t->start_cap) {
        size_t *s = realloc(t->start, (n + 1) * sizeof *s);
        if (!s) return 1;
        t->start = s;
        t->start_cap = n + 1;
    }
    const uint32_t *in = in_b ? t->b : t->a;
    uint32_t *out = in_b ? t->a : t->b;
    size_t k = 0;
    t->ntok = 0;
    for (size_t i = 0; i < n;) {
        if (is_space(in[i])) { i++; continue; }
        if (t->ntok > 0) out[k++] = ' ';
        t->start[t->ntok++] = k;
        while (i < n && !is_space(in[i])) out[k++] = in[i++];
    }
    t->tok = out;
    t->len = k;
    return 0;
}

long bleu_tokenize(char *out, size_t cap, const char *line, char *err) {
    Tokens t = {0};
    if (tokenize(&t, or_empty(line))) {
        tokens_free(&t);
        if (err) errorf(err, "out of memory tokenizing a line of %zu bytes",
                        strlen(or_empty(line)));
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < t.len; i++) {
        unsigned char u[4];
        int m = utf8_encode(t.tok[i], u);
        for (int j = 0; j < m; j++, k++)
            if (k + 1 < cap) out[k] = (char)u[j];
    }
    if (cap > 0) out[k < cap ? k : cap - 1] = '\0';
    tokens_free(&t);
    return (long)k;
}

// ----------------------------------------------------------------------------
// n-gram counts of a line pair

// One distinct n-gram, a span of code points, and how often it occurs on each side.
typedef struct {
    const uint32_t *s;   // NULL: an empty slot
    size_t len;          // code points
    int order;           // 1-based
    long hyp, ref;       // occurrences in the hypothesis, in the reference
} Gram;

// Open addressing with linear probing; cap is a power of two, at least twice the number
// of n-grams added, so the table is at most half full.
typedef struct {
    Gram *slot;   // (cap)
    size_t cap, alloc;
} GramTable;

// Empties the table and sizes it for up to ngrams additions.
static int grams_reset(GramTable *g, size_t ngrams) {
    size_t cap = 16;
    while (cap < 2 * ngrams) cap *= 2;
    if (cap > g->alloc) {
        Gram *p = realloc(g->slot, cap * sizeof *p);
        if (!p) return 1;
        g->slot = p;
        g->alloc = cap;
    }
    memset(g->slot, 0, cap * sizeof *g->slot);
    g->cap = cap;
    return 0;
}

// FNV-1a over the code points, finished by hash64 (the table indexes with low bits).
static uint64_t span_hash(const uint32_t *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return hash64(h);
}

// Counts one occurrence of the span s (len code points, an n-gram of this order) in the
// hypothesis (is_ref 0) or the reference (is_ref 1).
static void grams_add(GramTable *g, const uint32_t *s, size_t len, int order, int is_ref) {
    size_t mask = g->cap - 1;
    for (size_t i = span_hash(s, len) & mask;; i = (i + 1) & mask) {
        Gram *e = &g->slot[i];
        if (!e->s) {
            e->s = s;
            e->len = len;
            e->order = order;
        } else if (e->len != len || memcmp(e->s, s, len * sizeof *s) != 0) {
            continue;
        }
        if (is_ref) e->ref++;
        else e->hyp++;
        return;
    }
}

// Adds the word n-grams of a tokenized line, orders 1..BLEU_ORDER.
static void add_word_grams(GramTable *g, const Tokens *t, int is_ref) {
    for (int n = 1; n <= BLEU_ORDER; n++)
        for (size_t i = 0; i + (size_t)n <= t->ntok; i++) {
            size_t last = i + (size_t)n - 1;
            size_t end = last + 1 < t->ntok ? t->start[last + 1] - 1 : t->len;
            grams_add(g, t->tok + t->start[i], end - t->start[i], n, is_ref);
        }
}

// Adds the character n-grams of s (len code points), orders 1..CHRF_ORDER.
static void add_char_grams(GramTable *g, const uint32_t *s, size_t len, int is_ref) {
    for (int n = 1; n <= CHRF_ORDER; n++)
        for (size_t i = 0; i + (size_t)n <= len; i++) grams_add(g, s + i, (size_t)n, n, is_ref);
}

// Clipped matches per order: match[n - 1] += min(hyp, ref) over the distinct n-grams.
static void grams_matches(const GramTable *g, long *match) {
    for (size_t i = 0; i < g->cap; i++) {
        const Gram *e = &g->slot[i];
        if (e->s) match[e->order - 1] += e->hyp < e->ref ? e->hyp : e->ref;
    }
}

// ----------------------------------------------------------------------------
// BLEU

// The score from the summed counts and lengths, as sacreBLEU's compute_bleu with 'exp'
// smoothing (see the top of the file).
static void bleu_from_counts(BleuScore *s) {
    s->bp = 1.0;
    if (s->sys_len < s->ref_len)
        s->bp = s->sys_len > 0 ? exp(1.0 - (double)s->ref_len / (double)s->sys_len) : 0.0;
    s->ratio = s->ref_len > 0 ? (double)s->sys_len / (double)s->ref_len : 0.0;
    s->bleu = 0.0;
    long any = 0;
    for (int n = 0; n < BLEU_ORDER; n++) {
        s->precisions[n] = 0.0;
        any |= s->correct[n];
    }
    if (!any) return;   // no match of any order: 0, and the precisions stay 0
    double smooth = 1.0, logsum = 0.0;
    for (int n = 0; n < BLEU_ORDER; n++) {
        if (s->total[n] == 0) break;
        if (s->correct[n] == 0) {
            smooth *= 2.0;
            s->precisions[n] = 100.0 / (smooth * (double)s->total[n]);
        } else {
            s->precisions[n] = 100.0 * (double)s->correct[n] / (double)s->total[n];
        }
    }
    for (int n = 0; n < BLEU_ORDER; n++)
        logsum += s->precisions[n] == 0.0 ? -9999999999.0 : log(s->precisions[n]);
    s->bleu = s->bp * exp(logsum / BLEU_ORDER);
}

int bleu_corpus(BleuScore *out, const char *const *hyp, const char *const *ref, size_t n,
                char *err) {
    memset(out, 0, sizeof *out);
    Tokens th = {0}, tr = {0};
    GramTable g = {0};
    size_t i = 0;
    for (; i < n; i++) {
        if (tokenize(&th, or_empty(hyp[i])) || tokenize(&tr, or_empty(ref[i])) ||
            grams_reset(&g, BLEU_ORDER * (th.ntok + tr.ntok)))
            break;
        add_word_grams(&g, &th, 0);
        add_word_grams(&g, &tr, 1);
        grams_matches(&g, out->correct);
        for (int k = 0; k < BLEU_ORDER; k++)
            if (th.ntok > (size_t)k) out->total[k] += (long)(th.ntok - (size_t)k);
        out->sys_len += (long)th.ntok;
        out->ref_len += (long)tr.ntok;
    }
    tokens_free(&th);
    tokens_free(&tr);
    free(g.slot);
    if (i < n) {
        oom(err, "BLEU", i, n);
        return 1;
    }
    bleu_from_counts(out);
    return 0;
}

void bleu_line(char *out, size_t cap, const BleuScore *s) {
    snprintf(out, cap, "BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f hyp_len = %ld "
             "ref_len = %ld)", s->bleu, s->precisions[0], s->precisions[1], s->precisions[2],
             s->precisions[3], s->bp, s->ratio, s->sys_len, s->ref_len);
}

// ----------------------------------------------------------------------------
// chrF

// line without whitespace, as code points, into *buf (grown as needed); returns the
// length, or (size_t)-1 when out of memory.
static size_t chars_no_space(uint32_t **buf, size_t *cap, const char *line) {
    if (reserve_cp(buf, cap, strlen(line) + 1)) return (size_t)-1;
    size_t n = utf8_decode((const unsigned char *)line, *buf), k = 0;
    for (size_t i = 0; i < n; i++)
        if (!is_space((*buf)[i])) (*buf)[k++] = (*buf)[i];
    return k;
}

int chrf_corpus(double *out, const char *const *hyp, const char *const *ref, size_t n,
                char *err) {
    long nhyp[CHRF_ORDER] = {0}, nref[CHRF_ORDER] = {0}, match[CHRF_ORDER] = {0};
    uint32_t *h = NULL, *r = NULL;
    size_t hcap = 0, rcap = 0, i = 0;
    GramTable g = {0};
    *out = 0.0;
    for (; i < n; i++) {
        size_t lh = chars_no_space(&h, &hcap, or_empty(hyp[i]));
        size_t lr = lh == (size_t)-1 ? lh : chars_no_space(&r, &rcap, or_empty(ref[i]));
        if (lr == (size_t)-1 || grams_reset(&g, CHRF_ORDER * (lh + lr))) break;
        add_char_grams(&g, h, lh, 0);
        add_char_grams(&g, r, lr, 1);
        grams_matches(&g, match);
        for (int k = 0; k < CHRF_ORDER; k++) {
            size_t len = (size_t)k + 1;
            long hk = lh >= len ? (long)(lh - len + 1) : 0;
            long rk = lr >= len ? (long)(lr - len + 1) : 0;
            nhyp[k] += rk > 0 ? hk : 0;   // no reference n-gram: the hypothesis's do not count
            nref[k] += rk;
        }
    }
    free(h);
    free(r);
    free(g.slot);
    if (i < n) {
        oom(err, "chrF", i, n);
        return 1;
    }
    double P = 0.0, R = 0.0;
    int orders = 0;   // the effective order
    for (int k = 0; k < CHRF_ORDER; k++) {
        if (nhyp[k] > 0 && nref[k] > 0) {
            P += (double)match[k] / (double)nhyp[k];
            R += (double)match[k] / (double)nref[k];
            orders++;
        }
    }
    if (orders > 0) {
        P /= orders;
        R /= orders;
    }
    if (P + R != 0.0) {
        // in separate statements, so that no compiler fuses b2 P + R into one rounding
        // (an FMA) where Python rounds twice
        double b2 = CHRF_BETA * CHRF_BETA, f = (1 + b2) * P * R, d = b2 * P;
        d += R;
        f /= d;
        *out = 100.0 * f;
    }
    return 0;
}

void chrf_line(char *out, size_t cap, double chrf) {
    snprintf(out, cap, "chrF%d = %.2f", CHRF_BETA, chrf);
}
