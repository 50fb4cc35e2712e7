// test_metrics.c: BLEU and chrF2 against hand-computed cases (the 13a tokenizer's rules,
// smoothing, brevity penalty, empty lines, code points), then against sacreBLEU's own
// scores of the test vectors in ../shared/eval (or the directory given as argv[1]),
// when they are there.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../metrics.h"
#include "../fileio.h"
#include "check.h"

static int near(double a, double b, double tol) { return fabs(a - b) <= tol; }

static BleuScore bleu_of(const char *const *hyp, const char *const *ref, size_t n) {
    BleuScore s;
    char err[KF_ERRLEN] = "";
    if (bleu_corpus(&s, hyp, ref, n, err)) printf("bleu_corpus failed: %s\n", err);
    return s;
}

static double chrf_of(const char *const *hyp, const char *const *ref, size_t n) {
    double c = -1;
    char err[KF_ERRLEN] = "";
    if (chrf_corpus(&c, hyp, ref, n, err)) printf("chrf_corpus failed: %s\n", err);
    return c;
}

// The counts and precisions of a score, as a string for failure messages.
static const char *describe(const BleuScore *s) {
    static char buf[512];
    snprintf(buf, sizeof buf, "bleu %.6f p %.4f/%.4f/%.4f/%.4f correct %ld/%ld/%ld/%ld total "
             "%ld/%ld/%ld/%ld bp %.6f len %ld/%ld", s->bleu, s->precisions[0],
             s->precisions[1], s->precisions[2], s->precisions[3], s->correct[0], s->correct[1],
             s->correct[2], s->correct[3], s->total[0], s->total[1], s->total[2], s->total[3],
             s->bp, s->sys_len, s->ref_len);
    return buf;
}

static int counts_are(const BleuScore *s, const long correct[4], const long total[4]) {
    for (int n = 0; n < 4; n++)
        if (s->correct[n] != correct[n] || s->total[n] != total[n]) return 0;
    return 1;
}

static int precisions_are(const BleuScore *s, const double p[4]) {
    for (int n = 0; n < 4; n++)
        if (!near(s->precisions[n], p[n], 1e-9)) return 0;
    return 1;
}

// ----------------------------------------------------------------------------
// BLEU by hand

static void test_bleu(void) {
    char line[256];

    // identical: every precision 100, BP 1, BLEU 100 (7 + 5 tokens: "." is one)
    {
        const char *h[] = {"the cat sat on the mat.", "a b c d e"};
        const char *r[] = {"the cat sat on the mat.", "a b c d e"};
        BleuScore s = bleu_of(h, r, 2);
        const double p[4] = {100, 100, 100, 100};
        CHECK(near(s.bleu, 100, 1e-9) && precisions_are(&s, p) && s.bp == 1.0 &&
              s.sys_len == 12 && s.ref_len == 12, "bleu_identical", "%s", describe(&s));
        bleu_line(line, sizeof line, &s);
        CHECK(!strcmp(line, "BLEU = 100.00 100.0/100.0/100.0/100.0 (BP = 1.000 ratio = 1.000 "
                            "hyp_len = 12 ref_len = 12)"), "bleu_line_identical", "%s", line);
    }
    // No 4-gram matches. correct 3/2/1/0 of total 4/3/2/1; the one order without a
    // match is the first smoothed: 100 / (2^1 * 1) = 50. BLEU = (75 * 66.67 * 50 * 50)^(1/4)
    // = 12,500,000^(1/4) = 59.4604.
    {
        const char *h[] = {"the cat sat down"}, *r[] = {"the cat sat up"};
        BleuScore s = bleu_of(h, r, 1);
        const long c[4] = {3, 2, 1, 0}, t[4] = {4, 3, 2, 1};
        const double p[4] = {75, 200.0 / 3, 50, 50};
        CHECK(counts_are(&s, c, t) && precisions_are(&s, p) && near(s.bleu, 59.460356, 1e-6),
              "bleu_exp_smoothing_one_order", "%s", describe(&s));
    }
    // Two orders without a match: the k-th gets 2^k. 3-grams: 100 / (2 * 2) = 25; 4-grams:
    // 100 / (4 * 1) = 25. BLEU = (50 * 33.33 * 25 * 25)^(1/4) = 1,041,666.7^(1/4) = 31.9472.
    {
        const char *h[] = {"the cat ran down"}, *r[] = {"the cat sat up"};
        BleuScore s = bleu_of(h, r, 1);
        const double p[4] = {50, 100.0 / 3, 25, 25};
        CHECK(precisions_are(&s, p) && near(s.bleu, 31.947155, 1e-6),
              "bleu_exp_smoothing_two_orders", "%s", describe(&s));
        bleu_line(line, sizeof line, &s);
        CHECK(!strcmp(line, "BLEU = 31.95 50.0/33.3/25.0/25.0 (BP = 1.000 ratio = 1.000 "
                            "hyp_len = 4 ref_len = 4)"), "bleu_line_smoothed", "%s", line);
    }
    // A hypothesis of 2 tokens has no 3-grams: total 0 stops the orders, p3 = p4 = 0 and
    // BLEU = 0 (not smoothed), whatever the matches; BP = exp(1 - 6/2) = 0.1353.
    {
        const char *h[] = {"the cat"}, *r[] = {"the cat sat on the mat"};
        BleuScore s = bleu_of(h, r, 1);
        const double p[4] = {100, 100, 0, 0};
        CHECK(s.bleu == 0 && precisions_are(&s, p) && near(s.bp, exp(-2.0), 1e-12),
              "bleu_order_without_ngrams", "%s", describe(&s));
    }
    // no match of any order: 0, and the precisions are reported as 0, not smoothed
    {
        const char *h[] = {"x y z w"}, *r[] = {"a b c d"};
        BleuScore s = bleu_of(h, r, 1);
        const double p[4] = {0, 0, 0, 0};
        CHECK(s.bleu == 0 && precisions_are(&s, p) && s.bp == 1.0, "bleu_no_match", "%s",
              describe(&s));
    }
    // Brevity penalty: 4 tokens against 6, all matching: BP = exp(1 - 6/4) = exp(-0.5) =
    // 0.60653, BLEU = 100 BP.
    {
        const char *h[] = {"the cat sat on"}, *r[] = {"the cat sat on the mat"};
        BleuScore s = bleu_of(h, r, 1);
        CHECK(near(s.bp, exp(-0.5), 1e-12) && near(s.bleu, 100 * exp(-0.5), 1e-9) &&
              near(s.ratio, 4.0 / 6, 1e-12), "bleu_brevity_penalty", "%s", describe(&s));
        bleu_line(line, sizeof line, &s);
        CHECK(!strcmp(line, "BLEU = 60.65 100.0/100.0/100.0/100.0 (BP = 0.607 ratio = 0.667 "
                            "hyp_len = 4 ref_len = 6)"), "bleu_line_brevity", "%s", line);
    }
    // Longer than the reference: no penalty. correct 6/5/4/3 of 7/6/5/4 (clipped: "the"
    // twice in each). BLEU = (85.71 * 83.33 * 80 * 75)^(1/4) = 80.9107.
    {
        const char *h[] = {"the cat sat on the mat today"}, *r[] = {"the cat sat on the mat"};
        BleuScore s = bleu_of(h, r, 1);
        const long c[4] = {6, 5, 4, 3}, t[4] = {7, 6, 5, 4};
        CHECK(counts_are(&s, c, t) && s.bp == 1.0 && near(s.bleu, 80.910671, 1e-6),
              "bleu_long_hypothesis", "%s", describe(&s));
    }
    // Clipping: "the the the" against "the cat": "the" matches once, not three times.
    {
        const char *h[] = {"the the the"}, *r[] = {"the cat"};
        BleuScore s = bleu_of(h, r, 1);
        CHECK(s.correct[0] == 1 && s.total[0] == 3 && s.correct[1] == 0, "bleu_clipped_counts",
              "%s", describe(&s));
    }
    // Empty hypothesis lines: they add reference tokens only. 6 tokens against 2 + 6:
    // every n-gram matches, BP = exp(1 - 8/6) = 0.71653, BLEU = 71.6531.
    {
        const char *h[] = {"", "the cat sat on the mat"}, *r[] = {"a dog", "the cat sat on the mat"};
        BleuScore s = bleu_of(h, r, 2);
        CHECK(s.sys_len == 6 && s.ref_len == 8 && near(s.bp, exp(1 - 8.0 / 6), 1e-12) &&
              near(s.bleu, 100 * exp(1 - 8.0 / 6), 1e-9), "bleu_empty_hypothesis_line", "%s",
              describe(&s));
        const char *e[] = {"", ""};
        s = bleu_of(e, r, 2);
        bleu_line(line, sizeof line, &s);
        CHECK(s.bleu == 0 && s.bp == 0 && s.sys_len == 0 &&
              !strcmp(line, "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 "
                            "ref_len = 8)"), "bleu_all_hypotheses_empty", "%s", line);
        const char *n[] = {NULL, "the cat sat on the mat"};
        BleuScore z = bleu_of(n, r, 2);
        CHECK(z.sys_len == 6 && near(z.bleu, 100 * exp(1 - 8.0 / 6), 1e-9), "bleu_null_is_empty",
              "%s", describe(&z));
    }
    // no lines at all: the empty corpus (BP 1 since 0 >= 0; ratio 0 as sacreBLEU's)
    {
        BleuScore s = bleu_of(NULL, NULL, 0);
        CHECK(s.bleu == 0 && s.bp == 1 && s.ratio == 0 && s.sys_len == 0, "bleu_no_lines", "%s",
              describe(&s));
    }
}

// ----------------------------------------------------------------------------
// the 13a tokenizer

static void test_tokenizer(void) {
    // Each line and its tokens, worked through the steps of metrics.c by hand:
    //  - "$" and '"' are spaced (step 3); "3.50" and "1,000.00" keep their periods and
    //    commas, which stand between digits; "50," and "deal"." split them (steps 4, 5);
    //    "--" stays (a dash is split only after a digit, step 6): "10-20" -> 10 - 20;
    //  - entities: &quot; &amp; &lt; &gt; only (&apos; is left, then its '&' and ';' are
    //    spaced); "&amp;lt;" becomes "&lt;" and then "<" (passes in order);
    //  - "U.S.A." splits every period; "e.g.," too; "3." and ".5" split; "well-known" and
    //    "-5" stay; "1-2-3" splits after each digit; "it's" stays (no rule for ');
    //  - "-\n" joins the two halves, "\n" is a space, "<skipped>" goes;
    //  - U+00A0, U+3000, U+2009 separate tokens as Python's str.split() does, U+200B
    //    (zero width space) does not; trailing whitespace goes;
    //  - invalid UTF-8 bytes stay as they are, one character each.
    static const char *const CASES[][2] = {
        {"He paid $3.50, not 1,000.00 -- \"a 10-20 deal\".",
         "He paid $ 3.50 , not 1,000.00 -- \" a 10 - 20 deal \" ."},
        {"&quot;Tom&apos;s&quot; A&amp;B &lt;b&gt; x&amp;lt;y",
         "\" Tom & apos ; s \" A & B < b > x < y"},
        {"U.S.A. e.g., 3. .5 and 5. well-known -5 1-2-3 it's (ok) [x] {y} a/b #1 50% @home "
         "~`^_|\\",
         "U . S . A . e . g . , 3 . . 5 and 5 . well-known -5 1 - 2 - 3 it's ( ok ) [ x ] "
         "{ y } a / b # 1 50 % @ home ~ ` ^ _ | \\"},
        {"long-\nterm\nnext <skipped>x", "longterm next x"},
        {"a\xc2\xa0" "b\xe3\x80\x80" "c\xe2\x80\x89" "d\xe2\x80\x8b" "e  \t", "a b c d\xe2\x80\x8b" "e"},
        {"\xff.x caf\xc3\xa9. a\xe2\x82", "\xff . x caf\xc3\xa9 . a\xe2\x82"},
        {"", ""},
        {"  \t ", ""},
    };
    char out[512], err[KF_ERRLEN];
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        long k = bleu_tokenize(out, sizeof out, CASES[i][0], err);
        char name[64];
        snprintf(name, sizeof name, "tokenize_13a_%zu", i + 1);
        CHECK(k == (long)strlen(CASES[i][1]) && !strcmp(out, CASES[i][1]), name,
              "'%s' -> '%s', expected '%s'", CASES[i][0], out, CASES[i][1]);
    }
    // the length it needs without room, and a cut, NUL-terminated result with little
    long need = bleu_tokenize(NULL, 0, "a,b", err);
    char small[4] = "xxx";
    long k = bleu_tokenize(small, sizeof small, "a,b", err);
    CHECK(need == 5 && k == 5 && !strcmp(small, "a ,"), "tokenize_13a_room", "need %ld, '%s'",
          need, small);
    // the tokenizer decides the n-grams: "3.50," and "3.50 ," are the same two tokens
    const char *h[] = {"It costs 3.50, right?"}, *r[] = {"It costs 3.50 , right ?"};
    BleuScore s = bleu_of(h, r, 1);
    CHECK(near(s.bleu, 100, 1e-9) && s.sys_len == 6, "bleu_tokenized_alike", "%s", describe(&s));
}

// ----------------------------------------------------------------------------
// chrF by hand

static void test_chrf(void) {
    char line[64];
    {
        const char *h[] = {"the cat sat on the mat.", "a b"}, *r[] = {"the cat sat on the mat.", "a b"};
        double c = chrf_of(h, r, 2);
        chrf_line(line, sizeof line, c);
        CHECK(near(c, 100, 1e-9) && !strcmp(line, "chrF2 = 100.00"), "chrf_identical", "%s", line);
    }
    // "ab c" -> "abc" against "abd". 1-grams: a b match, P = R = 2/3; 2-grams: ab matches,
    // bc not, P = R = 1/2; 3-grams: abc against abd, P = R = 0 (counted: both have one);
    // 4- to 6-grams: neither has any, not counted. Effective order 3: P = R = 7/18, and
    // with P = R, F = 5 P R / (4 P + R) = P: chrF2 = 38.89.
    {
        const char *h[] = {"ab c"}, *r[] = {"abd"};
        double c = chrf_of(h, r, 1);
        chrf_line(line, sizeof line, c);
        CHECK(near(c, 700.0 / 18, 1e-9) && !strcmp(line, "chrF2 = 38.89"), "chrf_by_hand",
              "%.9f %s", c, line);
    }
    // "ab" against "abc": 1-grams P = 2/2, R = 2/3; 2-grams P = 1/1, R = 1/2; 3-grams: the
    // reference has one, the hypothesis none: hyp = 0, so the order does not count. P = 1,
    // R = 7/12: F = 5 (7/12) / (4 + 7/12) = 35/55 = 7/11: chrF2 = 63.64 (recall weighs more).
    {
        const char *h[] = {"ab"}, *r[] = {"abc"};
        double c = chrf_of(h, r, 1);
        CHECK(near(c, 700.0 / 11, 1e-9), "chrf_recall_weighted", "%.9f", c);
    }
    // A reference shorter than n characters has no n-grams of order n, and then that
    // line's hypothesis n-grams of order n are not counted either (sacreBLEU's
    // "hyp_count if ref_ngrams else 0"). "abc" against "ab", and "xyz" against "xyz":
    //   1-grams: hyp 3 + 3, ref 2 + 3, match 2 + 3: P = 5/6, R = 1
    //   2-grams: hyp 2 + 2, ref 1 + 2, match 1 + 2: P = 3/4, R = 1
    //   3-grams: hyp 0 (not 1) + 1, ref 0 + 1, match 1: P = 1, R = 1
    // P = 31/36, R = 1: F = 5 P / (4 P + 1) = 155 / 160 = 96.875. (Counting the "abc"
    // 3-gram would give P3 = 1/2 and 91.91.)
    {
        const char *h[] = {"abc", "xyz"}, *r[] = {"ab", "xyz"};
        double c = chrf_of(h, r, 2);
        CHECK(near(c, 96.875, 1e-9), "chrf_short_reference", "%.9f", c);
    }
    // Empty hypothesis lines: line 1 ("" against "adog") adds reference n-grams only
    // (4, 3, 2, 1 of orders 1..4); line 2 is "thecatsatonthemat" (17 characters) on both
    // sides: 17, 16, ..., 12 n-grams, all matching. P = 1 for every order; R = 17/21,
    // 16/19, 15/17, 14/15, 13/13, 12/12, mean 0.9112192; F = 5 R / (4 + R) = 92.769.
    {
        const char *h[] = {"", "the cat sat on the mat"}, *r[] = {"a dog", "the cat sat on the mat"};
        double c = chrf_of(h, r, 2);
        double R = (17.0 / 21 + 16.0 / 19 + 15.0 / 17 + 14.0 / 15 + 1 + 1) / 6;
        CHECK(near(c, 100 * 5 * R / (4 + R), 1e-9) && near(c, 92.769146, 1e-6),
              "chrf_empty_hypothesis_line", "%.9f", c);
        const char *e[] = {"", ""};
        c = chrf_of(e, r, 2);
        chrf_line(line, sizeof line, c);
        CHECK(c == 0 && !strcmp(line, "chrF2 = 0.00"), "chrf_all_hypotheses_empty", "%s", line);
        CHECK(chrf_of(NULL, NULL, 0) == 0, "chrf_no_lines", "not 0");
    }
    // Code points: "Mädchen" is 7 characters (8 bytes). Against "Mädchenx" (8 characters)
    // every hypothesis n-gram matches: P = 1, R_n = (8 - n) / (9 - n) for n = 1..6 (7/8,
    // 6/7, ..., 2/3), F = 5 R / (4 + R) = 83.0748. Counting bytes would give
    // (9 - n) / (10 - n) and 86.27.
    {
        const char *h[] = {"M\xc3\xa4" "dchen"}, *r[] = {"M\xc3\xa4" "dchenx"};
        double c = chrf_of(h, r, 1), R = 0;
        for (int n = 1; n <= 6; n++) R += (8.0 - n) / (9.0 - n);
        R /= 6;
        CHECK(near(c, 100 * 5 * R / (4 + R), 1e-9) && near(c, 83.074823, 1e-6),
              "chrf_code_points", "%.9f", c);
    }
    // "ä" against "äx": one character, 1-grams P = 1, R = 1/2, the reference's 2-gram not
    // counted: F = 2.5 / 4.5 = 5/9. A bad byte (0xE4 alone, Latin-1's ä) is one character
    // in the same way, and whitespace of every kind is removed.
    {
        const char *h[] = {"\xc3\xa4"}, *r[] = {"\xc3\xa4x"};
        const char *hb[] = {"\xe4"}, *rb[] = {"\xe4 \xc2\xa0x"};
        double c = chrf_of(h, r, 1), cb = chrf_of(hb, rb, 1);
        CHECK(near(c, 500.0 / 9, 1e-9) && near(cb, 500.0 / 9, 1e-9), "chrf_one_character",
              "%.9f %.9f", c, cb);
    }
}

// ----------------------------------------------------------------------------
// sacreBLEU's own scores: DIR/expected.json and DIR/NAME.hyp, DIR/NAME.ref

// expected.json's fields for one test vector
typedef struct {
    char name[128];
    double bleu, precisions[4], bp, chrf2;
    long sys_len, ref_len;
    char bleu_line[256], chrf_line[64];
    int fields;   // how many of the 8 were found
} Expected;

// A minimal JSON reader for expected.json: { NAME: { KEY: number | [numbers] | string } }.
typedef struct {
    const char *p;
    int bad;
} Json;

static void json_ws(Json *j) {
    while (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t') j->p++;
}

// Consumes c (after whitespace) if it is next; returns whether it was.
static int json_eat(Json *j, char c) {
    json_ws(j);
    if (*j->p != c) return 0;
    j->p++;
    return 1;
}

static void json_expect(Json *j, char c) {
    if (!json_eat(j, c)) j->bad = 1;
}

// A string into out (cap bytes); escapes \" \\ \/ \n \t and \uXXXX below U+D800.
static void json_string(Json *j, char *out, size_t cap) {
    size_t k = 0;
    json_expect(j, '"');
    while (!j->bad && *j->p != '"') {
        unsigned c = (unsigned char)*j->p++;
        if (c == '\0') { j->bad = 1; break; }
        if (c == '\\') {
            c = (unsigned char)*j->p++;
            if (c == 'n') c = '\n';
            else if (c == 't') c = '\t';
            else if (c == 'u') {
                unsigned u = 0;
                if (sscanf(j->p, "%4x", &u) != 1 || u >= 0xD800) { j->bad = 1; break; }
                j->p += 4;
                // UTF-8 of u, then on
                char enc[3];
                int m = u < 0x80 ? 1 : u < 0x800 ? 2 : 3;
                if (m == 1) enc[0] = (char)u;
                if (m == 2) { enc[0] = (char)(0xC0 | u >> 6); enc[1] = (char)(0x80 | (u & 0x3F)); }
                if (m == 3) {
                    enc[0] = (char)(0xE0 | u >> 12);
                    enc[1] = (char)(0x80 | (u >> 6 & 0x3F));
                    enc[2] = (char)(0x80 | (u & 0x3F));
                }
                for (int i = 0; i < m; i++)
                    if (k + 1 < cap) out[k++] = enc[i];
                continue;
            } else if (c != '"' && c != '\\' && c != '/') { j->bad = 1; break; }
        }
        if (k + 1 < cap) out[k++] = (char)c;
    }
    json_expect(j, '"');
    if (cap) out[k] = '\0';
}

static double json_number(Json *j) {
    json_ws(j);
    char *end;
    double x = strtod(j->p, &end);
    if (end == j->p) j->bad = 1;
    j->p = end;
    return x;
}

// Reads one entry's object into e.
static void json_entry(Json *j, Expected *e) {
    json_expect(j, '{');
    if (json_eat(j, '}')) return;
    while (!j->bad) {
        char key[64];
        json_string(j, key, sizeof key);
        json_expect(j, ':');
        if (!strcmp(key, "bleu")) e->bleu = json_number(j);
        else if (!strcmp(key, "bp")) e->bp = json_number(j);
        else if (!strcmp(key, "chrf2")) e->chrf2 = json_number(j);
        else if (!strcmp(key, "sys_len")) e->sys_len = (long)json_number(j);
        else if (!strcmp(key, "ref_len")) e->ref_len = (long)json_number(j);
        else if (!strcmp(key, "sacrebleu_line")) json_string(j, e->bleu_line, sizeof e->bleu_line);
        else if (!strcmp(key, "chrf_line")) json_string(j, e->chrf_line, sizeof e->chrf_line);
        else if (!strcmp(key, "precisions")) {
            json_expect(j, '[');
            for (int n = 0; n < 4 && !j->bad; n++) {
                if (n) json_expect(j, ',');
                e->precisions[n] = json_number(j);
            }
            json_expect(j, ']');
        } else {
            if (!j->bad) printf("expected.json: unknown field '%s' in %s\n", key, e->name);
            j->bad = 1;
        }
        e->fields++;
        if (!json_eat(j, ',')) break;
    }
    json_expect(j, '}');
}

// Parses expected.json into *out (malloc'd, *n entries); returns 0 or 1 on bad JSON.
static int read_expected(const char *text, Expected **out, size_t *n) {
    Json j = {text, 0};
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    json_expect(&j, '{');
    if (!j.bad && !json_eat(&j, '}')) {
        while (!j.bad) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                Expected *p = realloc(*out, cap * sizeof *p);
                if (!p) return 1;
                *out = p;
            }
            Expected *e = &(*out)[(*n)++];
            memset(e, 0, sizeof *e);
            json_string(&j, e->name, sizeof e->name);
            json_expect(&j, ':');
            json_entry(&j, e);
            if (!json_eat(&j, ',')) break;
        }
        json_expect(&j, '}');
    }
    json_ws(&j);
    return j.bad || *j.p != '\0';
}

// Scores DIR/NAME.hyp against DIR/NAME.ref and checks them against e; *worst receives
// the largest difference of BLEU, a precision or chrF2 seen.
static void check_vector(const char *dir, const Expected *e, double *worst) {
    char hp[PATH_CAP], rp[PATH_CAP], name[192], err[KF_ERRLEN];
    snprintf(hp, sizeof hp, "%s/%s.hyp", dir, e->name);
    snprintf(rp, sizeof rp, "%s/%s.ref", dir, e->name);
    Lines h, r;
    snprintf(name, sizeof name, "sacrebleu_%s_read", e->name);
    int bad = lines_read(&h, hp, err);
    if (!bad && (bad = lines_read(&r, rp, err))) lines_free(&h);
    if (!bad && h.n != r.n) {
        snprintf(err, sizeof err, "%zu hypothesis lines, %zu reference lines", h.n, r.n);
        bad = 1;
        lines_free(&h);
        lines_free(&r);
    }
    CHECK(!bad && e->fields == 8, name, "%s", bad ? err : "expected.json lacks fields");
    if (bad) return;

    BleuScore s = bleu_of((const char *const *)h.line, (const char *const *)r.line, h.n);
    double c = chrf_of((const char *const *)h.line, (const char *const *)r.line, h.n);
    double d = fabs(s.bleu - e->bleu);
    for (int n = 0; n < 4; n++) d = fmax(d, fabs(s.precisions[n] - e->precisions[n]));
    d = fmax(d, fabs(c - e->chrf2));
    *worst = fmax(*worst, d);
    snprintf(name, sizeof name, "sacrebleu_%s_scores", e->name);
    CHECK(d <= 0.01 && fabs(s.bp - e->bp) <= 0.001 && s.sys_len == e->sys_len &&
          s.ref_len == e->ref_len, name, "%s, chrF2 %.4f; sacreBLEU: bleu %.4f p %.4f/%.4f/%.4f/"
          "%.4f bp %.4f len %ld/%ld chrF2 %.4f", describe(&s), c, e->bleu, e->precisions[0],
          e->precisions[1], e->precisions[2], e->precisions[3], e->bp, e->sys_len, e->ref_len,
          e->chrf2);
    char bl[256], cl[64];
    bleu_line(bl, sizeof bl, &s);
    chrf_line(cl, sizeof cl, c);
    snprintf(name, sizeof name, "sacrebleu_%s_lines", e->name);
    CHECK(!strcmp(bl, e->bleu_line) && !strcmp(cl, e->chrf_line), name,
          "'%s' '%s'; sacreBLEU: '%s' '%s'", bl, cl, e->bleu_line, e->chrf_line);
    lines_free(&h);
    lines_free(&r);
}

static void test_sacrebleu(const char *dir) {
    char path[PATH_CAP], err[KF_ERRLEN], *text;
    size_t len, n;
    snprintf(path, sizeof path, "%s/expected.json", dir);
    if (!file_exists(path)) {
        printf("skipping the sacreBLEU test vectors: no %s (they live beside the repository, "
               "in shared/eval)\n", path);
        return;
    }
    Expected *e = NULL;
    int bad = read_file(path, &text, &len, err);
    if (!bad) {
        bad = read_expected(text, &e, &n);
        snprintf(err, sizeof err, "%.400s is not the JSON expected", path);
        free(text);
    }
    CHECK(!bad && n > 0, "sacrebleu_expected_json", "%s", bad ? err : "no entries");
    if (bad) { free(e); return; }
    double worst = 0;
    for (size_t i = 0; i < n; i++) check_vector(dir, &e[i], &worst);
    printf("sacreBLEU test vectors: %zu, largest difference of BLEU, precisions and chrF2 %.3g\n",
           n, worst);
    free(e);
}

int main(int argc, char **argv) {
    test_bleu();
    test_tokenizer();
    test_chrf();
    test_sacrebleu(argc > 1 ? argv[1] : "../shared/eval");
    CHECK_EXIT();
}
