// metrics.h: corpus BLEU and chrF2, computed as sacreBLEU 2.x computes them with its
// defaults, so that a score printed here can be compared with a published one.
//
// Lines are NUL-terminated UTF-8 strings without their newline; line i of the
// hypotheses is scored against line i of the references (one reference each). Both
// metrics see Unicode code points, as sacreBLEU sees Python strings; a byte that is not
// part of valid UTF-8 counts as one character of its own. A NULL line reads as "".
#ifndef KF_METRICS_H
#define KF_METRICS_H

#include <stddef.h>
#include "common.h"

typedef struct {
    double bleu;             // 0..100
    double precisions[4];    // 0..100, as sacreBLEU reports them (after smoothing)
    double bp, ratio;        // brevity penalty, sys_len / ref_len
    long sys_len, ref_len;   // 13a tokens
    long correct[4], total[4];
} BleuScore;

// Corpus BLEU of n hypothesis lines against n reference lines (one reference each),
// sacreBLEU 2.x defaults: 13a tokenization, 4-grams, 'exp' smoothing, brevity penalty.
// Returns 0, or non-zero with a message in err (KF_ERRLEN) on out of memory.
// (n == 0 gives the empty corpus's score: BLEU 0, BP 1, ratio 0.)
int bleu_corpus(BleuScore *out, const char *const *hyp, const char *const *ref, size_t n,
                char *err);
// sacreBLEU's line: "BLEU = 30.06 76.9/45.5/22.2/14.3 (BP = 0.926 ratio = 0.929 hyp_len = 13 ref_len = 14)"
void bleu_line(char *out, size_t cap, const BleuScore *s);

// Corpus chrF2 (character 6-grams, word order 0, beta 2, whitespace removed as
// sacreBLEU does), 0..100. Returns 0, or non-zero with a message in err on out of memory.
int chrf_corpus(double *out, const char *const *hyp, const char *const *ref, size_t n,
                char *err);
// "chrF2 = 61.44"
void chrf_line(char *out, size_t cap, double chrf);

// The 13a tokenization of one line, as BLEU sees it: its tokens joined by single
// spaces (sacreBLEU's Tokenizer13a()(line.rstrip())). Writes at most cap bytes,
// NUL-terminated when cap > 0, and returns the length the whole result needs (without
// the NUL), or -1 with a message in err on out of memory.
long bleu_tokenize(char *out, size_t cap, const char *line, char *err);

#endif
