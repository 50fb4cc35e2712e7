// data.h: binary token files and the batches made from them.
//
// Token file (little-endian):
//   char magic[8] = "KFTOKSEQ"; uint32 version = 1; uint32 reserved = 0;
//   uint64 tokenizer_checksum; uint64 n_seqs; uint64 n_tokens;
//   uint64 offsets[n_seqs + 1];  (offsets[0] = 0, offsets[n_seqs] = n_tokens)
//   int32 tokens[n_tokens];
// Sequence i is tokens[offsets[i] .. offsets[i+1]).
#ifndef KF_DATA_H
#define KF_DATA_H

#include "common.h"

typedef struct {
    uint64_t checksum;   // of the tokenizer that made the file
    size_t n;            // sequences
    size_t ntok;         // tokens
    uint64_t *off;       // (n + 1)
    int32_t *tok;        // (ntok)
    int max_len;         // longest sequence
} TokenFile;

// Writes atomically (temporary file, then rename).
int tokfile_write(const char *path, uint64_t checksum, const int32_t *tok,
                  const uint64_t *off, size_t n, char *err);
// Returns non-zero with a message on a missing, corrupt, truncated or wrong-version file.
int tokfile_read(TokenFile *f, const char *path, char *err);
void tokfile_free(TokenFile *f);

// One batch, padded with TOK_PAD (0).
//   seq2seq (src != NULL): src = x + <eos>;  tgt_in = <bos> + y;  tgt_out = y + <eos>
//   lm      (src == NULL): tgt_in = <bos> + x[0..n-2];  tgt_out = x
typedef struct {
    int B, S, T;     // sentences, source length, target length (S = 0 for lm)
    int *src;        // (B, S)
    int *tgt_in;     // (B, T)
    int *tgt_out;    // (B, T)
    int ntok;        // non-pad tokens in tgt_out
    int *index;      // (B) which sequence of the file each row is (lm windows: none)
} Batch;

// Groups sequences of similar length (sorted by target then source length, ties in a
// random order), cuts the sorted list into batches with B * max(S, T) <= batch_tokens
// (at least one sentence each), and visits the batches in a random order that changes
// every epoch. Deterministic from seed. shuffle = 0 keeps file order (evaluation).
// Returns NULL with a message in err (KF_ERRLEN bytes) if src and tgt differ in their
// number of sequences, if there is no sequence to learn from (lm: no non-empty one), if
// batch_tokens < 1, or when out of memory.
typedef struct Batcher Batcher;
Batcher *batcher_new(const TokenFile *src, const TokenFile *tgt, int batch_tokens,
                     uint64_t seed, int shuffle, char *err);
// Fills *b (valid until the next call). Returns 1, or 0 when the epoch has ended; the
// next call then starts a new epoch.
int batcher_next(Batcher *bt, Batch *b);
// lm windows, as nanoGPT's get_batch: the file's sequences read as one stream of tokens,
// each row a window w of T + 1 consecutive tokens, tgt_in = w[0..T-1], tgt_out = w[1..T]
// (no <bos>). shuffle: B = max(1, batch_tokens / T) windows at random offsets, drawn from
// (seed, epoch, batch) alone, so batcher_seek goes on bit for bit; an epoch is
// ntok / (B T) batches (at least one). shuffle = 0 (evaluation): the stream cut into
// consecutive windows that overlap by one token, so that every token but the first is a
// target exactly once (the last window shorter, padded). T is at most ntok - 1 in
// shuffled windows. Returns NULL with a message if the file has fewer than 2 tokens.
Batcher *batcher_new_windows(const TokenFile *f, int T, int batch_tokens, uint64_t seed,
                             int shuffle, char *err);
int batcher_num_batches(const Batcher *bt);
int batcher_epoch(const Batcher *bt);
// The position in the data (completed epochs, batches drawn in this one) and back: an
// epoch's order follows from (seed, epoch) alone, so these two numbers are the whole
// state of a shuffled Batcher. seek fails on a position outside [0, num_batches].
void batcher_position(const Batcher *bt, long *epoch, long *pos);
int batcher_seek(Batcher *bt, long epoch, long pos);
void batcher_free(Batcher *bt);

#endif
