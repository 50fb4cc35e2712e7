// evaluate.h: translating a test set and scoring it against its references, for
// `train eval` and for the validation BLEU that `train fit` reports at its end.
#ifndef KF_EVALUATE_H
#define KF_EVALUATE_H

#include "generate.h"
#include "metrics.h"
#include "prepare.h"

typedef struct {
    BleuScore bleu;
    double chrf;        // chrF2
    int sentences;
    long tokens;        // translation tokens produced (without <eos>)
    int truncated;      // sources cut to the model's maximum length
    double seconds;     // translating only, not scoring
} EvalResult;

// Scores n translations against n reference lines: r->bleu, r->chrf, r->sentences.
int score_translations(EvalResult *r, char *const *hyps, const char *const *refs, int n,
                       char *err);

// Translates the first max_sentences pairs of a seq2seq data directory's validation set
// with the options o and scores them; the references are its target token files decoded
// back to text (the tokenizer round-trips every byte, so they are the prepared text).
int evaluate_valid(Model *m, const Dataset *d, int max_sentences, const DecodeOptions *o,
                   EvalResult *r, char *err);

#endif
