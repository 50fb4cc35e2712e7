// tests/fuzz/fuzz.c: libFuzzer targets for every reader of untrusted input, one per
// build (-DFUZZ_TARGET=N, see the Makefile's `make fuzz`):
//   1 tokenizer  tokenizer_load (tokenizer.bin)     4 dataset    dataset_open (dataset.txt)
//   2 tokens     tokfile_read (token files)         5 embed      embed_parse (--embed specs)
//   3 safetensors st_open, st_meta, st_read         6 lines      lines_read (the text readers
//                                                                of encode/decode/translate)
// The readers take paths, so each input is written to a file first. A reader must
// return an error or a value, never crash, leak or read out of bounds (ASan, UBSan).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../tokenizer.h"
#include "../../data.h"
#include "../../checkpoint.h"
#include "../../prepare.h"
#include "../../embed_factor.h"
#include "../../fileio.h"

#if FUZZ_TARGET != 5   // the spec parser takes a string
static char dir[64], path[96];

// The input as the file PATH (in a directory of this process's own).
static void write_input(const char *name, const uint8_t *data, size_t n) {
    if (!dir[0]) {
        char err[KF_ERRLEN];
        snprintf(dir, sizeof dir, "/tmp/kf_fuzz_%d", (int)getpid());
        if (make_dirs(dir, err)) abort();
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) abort();
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char err[KF_ERRLEN];
#if FUZZ_TARGET == 1
    write_input("tokenizer.bin", data, n);
    Tokenizer *t = tokenizer_load(path, err);
    if (t) {   // a tokenizer that loads must also encode and decode
        int ids[64];
        char text[256];
        size_t k = tokenizer_encode(t, "hello, world", 12, ids, 64);
        tokenizer_decode(t, ids, k < 64 ? k : 64, text, sizeof text, err);
        tokenizer_free(t);
    }
#elif FUZZ_TARGET == 2
    write_input("train.src", data, n);
    TokenFile f;
    if (tokfile_read(&f, path, err) == 0) tokfile_free(&f);
#elif FUZZ_TARGET == 3
    write_input("model.safetensors", data, n);
    StFile *f = st_open(path, err);
    if (f) {
        real x[16];
        int shape[1] = {16};
        st_meta(f, "step");
        st_read(f, "embed.weight", x, 1, shape, err);
        st_close(f);
    }
#elif FUZZ_TARGET == 4
    write_input("dataset.txt", data, n);
    Dataset d;
    if (dataset_open(&d, dir, err) == 0) dataset_close(&d);
#elif FUZZ_TARGET == 5
    char spec[256];
    size_t k = n < sizeof spec - 1 ? n : sizeof spec - 1;
    memcpy(spec, data, k);
    spec[k] = '\0';
    Embed e;
    embed_parse(&e, spec, 300, 32, err);
#elif FUZZ_TARGET == 6
    write_input("input.txt", data, n);
    Lines l;
    if (lines_read(&l, path, err) == 0) lines_free(&l);
#else
#error "FUZZ_TARGET must be 1 to 6"
#endif
    return 0;
}
