// tokenizer.h: byte-level BPE. Ids 0..2 are the special tokens, 3..258 the 256 bytes,
// 259.. the learned merges in the order they were learned (lower id = higher rank).
// Any byte string round-trips exactly: decode(encode(x)) == x.
#ifndef KF_TOKENIZER_H
#define KF_TOKENIZER_H

#include "common.h"

enum { TOK_PAD = 0, TOK_BOS = 1, TOK_EOS = 2, TOK_BYTE0 = 3, TOK_NBASE = 259 };

typedef struct Tokenizer Tokenizer; // opaque

// A byte-level tokenizer with no merges (vocab_size 259).
Tokenizer *tokenizer_new_bytes(void);
// Learns merges from `text` (len bytes; '\n' separates lines and is never merged)
// until the vocabulary has vocab_size ids (or no pair occurs twice).
// Returns NULL with a message on error (e.g. vocab_size < 259).
Tokenizer *tokenizer_train(const char *text, size_t len, int vocab_size, int verbose,
                           char *err);
void tokenizer_free(Tokenizer *t);

int tokenizer_vocab_size(const Tokenizer *t);
// 64-bit checksum of the vocabulary (FNV-1a of the merge list): token files record it.
uint64_t tokenizer_checksum(const Tokenizer *t);

// Encodes len bytes (no special tokens added). Writes at most cap ids to out and
// returns the number of ids the whole text needs (call again with more room if larger).
size_t tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int *out,
                        size_t cap);
// Decodes n ids to bytes; special tokens produce no bytes. Writes at most cap bytes and
// returns the number of bytes needed, or -1 with a message if an id is out of range.
long tokenizer_decode(const Tokenizer *t, const int *ids, size_t n, char *out,
                      size_t cap, char *err);
// Bytes of one token (for printing); *len receives the length. NULL for a special id.
const unsigned char *tokenizer_piece(const Tokenizer *t, int id, int *len);

// Binary file: magic "KFTOKENS", version, vocab size, merges. Writes atomically
// (temporary file, then rename). Load returns NULL with a message on a missing,
// corrupt, truncated or wrong-version file.
int tokenizer_save(const Tokenizer *t, const char *path, char *err);
Tokenizer *tokenizer_load(const char *path, char *err);

#endif
