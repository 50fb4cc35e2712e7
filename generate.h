// generate.h: using a trained model: greedy translation (seq2seq) and sampling (lm).
#ifndef KF_GENERATE_H
#define KF_GENERATE_H

#include <stdio.h>
#include "model.h"
#include "tokenizer.h"

// Translates n source lines (src[i] of len[i] bytes) greedily: out[i] receives a
// malloc'd, NUL-terminated translation. Lines are grouped by length into batches of up
// to `batch` sentences; each batch is encoded once, then the decoder runs on the growing
// prefix, appending the argmax token of every row, until each row has produced <eos> or
// max_len tokens. Sources longer than the model's maxT - 1 tokens are cut; *truncated
// counts them. Returns non-zero with a message on error.
int translate_lines(Model *m, const Tokenizer *tok, char *const *src, const size_t *len,
                    int n, int batch, int max_len, char **out, int *truncated, char *err);

// Samples ntokens tokens from an lm after the prompt and writes their text to out as
// they come. The model sees <bos> + the last maxT - 2 tokens (as in training).
// temperature 0 is greedy;
// top_k > 0 keeps the k most likely tokens. Special tokens are never drawn.
int sample_lm(Model *m, const Tokenizer *tok, const char *prompt, int ntokens,
              float temperature, int top_k, uint64_t seed, FILE *out, char *err);

#endif
