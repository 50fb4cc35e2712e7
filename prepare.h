// prepare.h: text to token files (`train prepare`), and a prepared data directory read
// back for training (`train fit`).
//
// A data directory holds
//   tokenizer.bin                          the BPE tokenizer (tokenizer.h)
//   train.src train.tgt valid.src valid.tgt  token files (data.h), seq2seq, or
//   train.lm valid.lm                      token files of text chunks, lm
//   dataset.txt                            key=value lines: arch, vocab_size, max_len,
//                                          counts, and the recipe that made it
#ifndef KF_PREPARE_H
#define KF_PREPARE_H

#include <stdint.h>
#include "tokenizer.h"
#include "data.h"

typedef struct {
    int arch;                     // ARCH_SEQ2SEQ or ARCH_LM (model.h)
    const char *src, *tgt;        // seq2seq: two line-aligned files, or
    const char *tsv;              // seq2seq: source<TAB>target per line
    const char *text;             // lm: one text
    const char *valid_src, *valid_tgt;  // seq2seq validation files,
    const char *valid_text;       // lm: a validation text, else a split:
    double valid_fraction;        // of the training lines (lm: chunks), seeded
    const char *out;              // directory to write
    int vocab_size;               // 0: the default rule, prepare_default_vocab
    const char *tokenizer;        // reuse this tokenizer.bin instead of training one
    int max_len;                  // tokens per line (longer lines are cut) or per chunk
    uint64_t seed;                // of the validation split
} PrepareOptions;

// Default vocabulary for `bytes` of training text: min(8000, 259 + bytes / 500).
int prepare_default_vocab(size_t bytes);
// Reads, checks, tokenizes and writes; prints statistics on stdout. Checks every input
// before it writes anything. Returns non-zero with a message on error.
int prepare_run(const PrepareOptions *o, char *err);
// 1 if o->out already holds a complete data set made by the same options.
int prepare_is_current(const PrepareOptions *o);

// A prepared directory, loaded and checked: the token files were made by its
// tokenizer, the sources and targets pair up, every id is inside the vocabulary.
typedef struct {
    int arch, vocab_size, max_len;
    Tokenizer *tok;
    TokenFile train_src, train_tgt;   // lm: only train_tgt, the chunks of train.lm
    TokenFile valid_src, valid_tgt;   // lm: only valid_tgt (valid.lm)
} Dataset;

int dataset_open(Dataset *d, const char *dir, char *err);
void dataset_close(Dataset *d);

#endif
