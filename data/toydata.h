// toydata.h: the project's own toy translation task: English number words to German
// number words, e.g. "three hundred forty-two" -> "dreihundertzweiundvierzig".
// German puts units before tens ("zweiundvierzig") and writes a number as one compound
// word below a million, so the model must reorder and fuse, not copy word by word.
#ifndef KF_TOYDATA_H
#define KF_TOYDATA_H

#include <stddef.h>
#include <stdint.h>

// Words for 0 <= n <= 999999 into out (cap bytes, NUL-terminated).
void toy_english(int n, char *out, size_t cap);
void toy_german(int n, char *out, size_t cap);

// Writes DIR/{train,valid,test}.{en,de}: line-aligned, distinct numbers drawn from a
// seed; no number appears in two splits. Creates DIR if needed. Returns 0, or non-zero
// with a one-line message in err (512 bytes).
int toy_generate(const char *dir, uint64_t seed, int n_train, int n_valid, int n_test,
                 char *err);

#endif
