// toydata.c: English and German number words for 0..999999, and a generator for the
// toy translation data set (see data/README.md for the task and the split scheme).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common.h"
#include "../fileio.h"
#include "toydata.h"

// Appends s to out (cap bytes), truncating safely; out stays NUL-terminated.
static void append(char *out, size_t cap, const char *s) {
    size_t n = strlen(out), m = strlen(s);
    if (n + m >= cap) m = cap - 1 - n;
    memcpy(out + n, s, m);
    out[n + m] = '\0';
}

// ----------------------------------------------------------------------------
// English: "three hundred forty-two thousand one hundred five" (no "and").

static const char *EN_ONES[20] = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
    "seventeen", "eighteen", "nineteen"};
static const char *EN_TENS[10] = {
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};

// 1 <= n <= 999
static void english_below_1000(int n, char *out, size_t cap) {
    int h = n / 100, r = n % 100;
    if (h) {
        append(out, cap, EN_ONES[h]);
        append(out, cap, " hundred");
        if (r) append(out, cap, " ");
    }
    if (r >= 20) {
        append(out, cap, EN_TENS[r / 10]);
        if (r % 10) { append(out, cap, "-"); append(out, cap, EN_ONES[r % 10]); }
    } else if (r) {
        append(out, cap, EN_ONES[r]);
    }
}

void toy_english(int n, char *out, size_t cap) {
    if (cap == 0) return;
    out[0] = '\0';
    if (n < 0 || n > 999999) return;
    if (n == 0) { append(out, cap, "zero"); return; }
    if (n >= 1000) {
        english_below_1000(n / 1000, out, cap);
        append(out, cap, " thousand");
        if (n % 1000) append(out, cap, " ");
    }
    if (n % 1000) english_below_1000(n % 1000, out, cap);
}

// ----------------------------------------------------------------------------
// German: one compound word, units before tens: 342 = "dreihundertzweiundvierzig".
// The unit 1 is "ein" inside a word (einhundert, eintausend, einundzwanzig) and "eins"
// only when it ends the number (eins, einhunderteins, zweitausendeins).

static const char *DE_UNITS[10] = {
    "", "ein", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"};
static const char *DE_TEENS[10] = {
    "zehn", "elf", "zwölf", "dreizehn", "vierzehn", "fünfzehn", "sechzehn", "siebzehn",
    "achtzehn", "neunzehn"};
static const char *DE_TENS[10] = {
    "", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig",
    "neunzig"};

// 1 <= n <= 999; last: these are the final digits of the number (1 -> "eins").
static void german_below_1000(int n, int last, char *out, size_t cap) {
    int h = n / 100, r = n % 100;
    if (h) { append(out, cap, DE_UNITS[h]); append(out, cap, "hundert"); }
    if (r == 1 && last) {
        append(out, cap, "eins");
    } else if (r < 10) {
        append(out, cap, DE_UNITS[r]);
    } else if (r < 20) {
        append(out, cap, DE_TEENS[r - 10]);
    } else {
        if (r % 10) { append(out, cap, DE_UNITS[r % 10]); append(out, cap, "und"); }
        append(out, cap, DE_TENS[r / 10]);
    }
}

void toy_german(int n, char *out, size_t cap) {
    if (cap == 0) return;
    out[0] = '\0';
    if (n < 0 || n > 999999) return;
    if (n == 0) { append(out, cap, "null"); return; }
    if (n >= 1000) {
        german_below_1000(n / 1000, 0, out, cap);
        append(out, cap, "tausend");
    }
    if (n % 1000) german_below_1000(n % 1000, 1, out, cap);
}

// ----------------------------------------------------------------------------
// The data set. Numbers 0..99 are the vocabulary every larger number is built from, so
// they all go to train (up to n_train). Every other number comes from 100..999999,
// drawing a digit count 3..6 uniformly among those not yet used up, then a number with
// that many digits uniformly, rejecting repeats. Valid and test are drawn first, so they
// stay the same for a seed whatever n_train is.

enum { TOY_N = 1000000, TOY_SMALL = 100 };

// Draws one unused number of 3..6 digits and marks it used; -1 if none is left.
static int draw_large(uint8_t *used, int *left, uint64_t *rng) {
    static const int lo[4] = {100, 1000, 10000, 100000};
    int open[4], nopen = 0;
    for (int d = 0; d < 4; d++)
        if (left[d] > 0) open[nopen++] = d;
    if (nopen == 0) return -1;
    int d = open[rng_next(rng) % (uint64_t)nopen];
    int x;
    do x = lo[d] + (int)(rng_next(rng) % (uint64_t)(9 * lo[d])); while (used[x]);
    used[x] = 1;
    left[d]--;
    return x;
}

// Writes DIR/NAME.{en,de} (german = 0, 1) for nums[0..n), atomically.
static int write_lines(const char *dir, const char *name, int german, const int *nums,
                       int n, char *err) {
    char file[64], path[PATH_CAP];
    snprintf(file, sizeof file, "%s.%s", name, german ? "de" : "en");
    path_join(path, dir, file);
    FILE *fp = replace_begin(path, err);
    if (!fp) return 1;
    char line[256];
    for (int i = 0; i < n; i++) {
        if (german) toy_german(nums[i], line, sizeof line);
        else toy_english(nums[i], line, sizeof line);
        fprintf(fp, "%s\n", line);
    }
    return replace_commit(fp, path, err);
}

int toy_generate(const char *dir, uint64_t seed, int n_train, int n_valid, int n_test,
                 char *err) {
    int n_small = n_train < TOY_SMALL ? n_train : TOY_SMALL;
    if (n_train < 0 || n_valid < 0 || n_test < 0 ||
        (long long)n_valid + n_test + (n_train - n_small) > TOY_N - TOY_SMALL) {
        snprintf(err, KF_ERRLEN, "toy data: cannot draw %d + %d + %d distinct numbers "
                 "below 1000000; ask for fewer", n_train, n_valid, n_test);
        return 1;
    }
    if (strlen(dir) > PATH_ARG_MAX) {
        snprintf(err, KF_ERRLEN, "toy data: directory name too long: %.80s...", dir);
        return 1;
    }
    if (make_dirs(dir, err)) return 1;
    uint8_t *used = calloc(TOY_N, 1);
    int *nums = malloc(((size_t)n_train + n_valid + n_test + 1) * sizeof *nums);
    if (!used || !nums) {
        free(used); free(nums);
        snprintf(err, KF_ERRLEN, "toy data: out of memory");
        return 1;
    }
    int *valid = nums, *test = valid + n_valid, *train = test + n_test;
    int left[4] = {900, 9000, 90000, 900000};  // unused numbers of 3, 4, 5, 6 digits
    uint64_t rng = seed;
    for (int i = 0; i < n_valid + n_test; i++) valid[i] = draw_large(used, left, &rng);
    for (int i = 0; i < n_train; i++)
        train[i] = i < n_small ? i : draw_large(used, left, &rng);
    // Shuffle train so that the small numbers are not all at the top of the file.
    for (int i = n_train - 1; i > 0; i--) {
        int j = (int)(rng_next(&rng) % (uint64_t)(i + 1));
        int t = train[i]; train[i] = train[j]; train[j] = t;
    }
    free(used);

    static const char *names[3] = {"valid", "test", "train"};
    const int *split[3] = {valid, test, train};
    int count[3] = {n_valid, n_test, n_train};
    int rc = 0;
    for (int s = 0; s < 3 && !rc; s++)
        for (int german = 0; german < 2 && !rc; german++)
            rc = write_lines(dir, names[s], german, split[s], count[s], err);
    free(nums);
    return rc;
}
