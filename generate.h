// generate.h: using a trained model: translation (greedy or beam search, seq2seq) and
// sampling (lm), both with the decoder's key/value cache (model_decode_step).
#ifndef KF_GENERATE_H
#define KF_GENERATE_H

#include <stdio.h>
#include "model.h"
#include "tokenizer.h"

typedef struct {
    int beam;          // hypotheses kept per sentence; 1 is greedy
    double lenpen;     // A: a hypothesis of n tokens scores sum log p / (n + 1)^A, the
                       // sum over its tokens and the final <eos> (fairseq's rule)
    int max_len;       // tokens per translation at most (0: the model's maxT - 1)
    int batch;         // sentences decoded together (each with `beam` rows)
    int no_cache;      // 1: greedy by re-running the decoder on the whole prefix at every
                       // step (the plain path, kept as the oracle and for the benchmark)
} DecodeOptions;

// beam 5, lenpen 1.0, max_len 0, batch 32, the cache on.
void decode_defaults(DecodeOptions *o);
// Checks the options against the model; non-zero with a one-line message.
int decode_check(const DecodeOptions *o, const Model *m, char *err);

// Decodes B sentences encoded by the last model_encode. Row b's tokens go to
// hyp[b * max_len ...] (hyp_len[b] of them, without <eos>); score[b] (may be NULL)
// receives the hypothesis's score by the rule above.
//   greedy: the most likely token at every step, until <eos> or max_len tokens.
//   beam:   every live hypothesis is extended by its 2K best tokens; the K best
//           candidates that do not end in <eos> live on (all rows of all sentences in
//           one batched step); those that end in <eos> are kept aside. A sentence is
//           done when K hypotheses have ended, when no live one can still beat its
//           best ended one, or at max_len (where <eos> is the only choice).
void decode_greedy(Model *m, int B, int max_len, int no_cache, int *hyp, int *hyp_len);
void decode_beam(Model *m, int B, int K, double lenpen, int max_len, int *hyp,
                 int *hyp_len, double *score);

// Text of n ids as a malloc'd NUL-terminated string, or NULL with a message.
char *tokens_to_text(const Tokenizer *tok, const int *ids, size_t n, char *err);

typedef struct {
    int truncated;     // sources longer than the model's maxT - 1 tokens, cut
    long tokens;       // tokens produced (without <eos>)
} TranslateStats;

// Translates n sources given as token ids (ids[i], len[i] of them, without <eos>):
// out[i] receives a malloc'd, NUL-terminated translation. An empty source translates to
// an empty line. Sources are grouped by length into batches, each encoded once.
// Returns non-zero with a message on error.
int translate_ids(Model *m, const Tokenizer *tok, const int *const *ids, const int *len,
                  int n, const DecodeOptions *o, char **out, TranslateStats *st, char *err);
// The same for n lines of text (src[i] of len[i] bytes), encoded with tok first.
int translate_lines(Model *m, const Tokenizer *tok, char *const *src, const size_t *len,
                    int n, const DecodeOptions *o, char **out, TranslateStats *st, char *err);

// Samples ntokens tokens from an lm after the prompt and writes their text to out as
// they come. The model sees <bos> + the prompt + what it wrote, up to its window of
// maxT - 1 positions; when the window is full it starts again from <bos> + the last
// half of the window (so the cache stays valid between restarts). temperature 0 is
// greedy; top_k > 0 keeps the k most likely tokens. Special tokens are never drawn.
int sample_lm(Model *m, const Tokenizer *tok, const char *prompt, int ntokens,
              float temperature, int top_k, uint64_t seed, FILE *out, char *err);

#endif
