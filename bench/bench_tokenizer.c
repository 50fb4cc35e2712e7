// bench_tokenizer.c: times learning a BPE vocabulary from a text file and encoding the
// whole file with it (medians of several runs), and checks that the encoding decodes
// back to the file.
//   usage: bench/bench_tokenizer FILE [VOCAB_SIZE=8000] [RUNS=3]
// Every encode run uses a freshly loaded tokenizer, so its word cache starts empty.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tokenizer.h"
#include "../fileio.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [VOCAB_SIZE=8000] [RUNS=3]\n", argv[0]);
        return 1;
    }
    int vocab = argc > 2 ? atoi(argv[2]) : 8000, runs = argc > 3 ? atoi(argv[3]) : 3;
    if (runs < 1 || runs > 100) runs = 3;
    size_t len;
    char *text, err[KF_ERRLEN];
    if (read_file(argv[1], &text, &len, err)) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    double t_train[100], t_enc[100];
    Tokenizer *tok = NULL;
    for (int r = 0; r < runs; r++) {
        tokenizer_free(tok);
        double t0 = seconds_now();
        tok = tokenizer_train(text, len, vocab, 0, err);
        t_train[r] = seconds_since(t0);
        if (!tok) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    const char *path = "bench_tokenizer.tok.tmp";
    if (tokenizer_save(tok, path, err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t ntok = tokenizer_encode(tok, text, len, NULL, 0);
    int *ids = malloc(ntok * sizeof *ids);
    char *back = malloc(len + 1);
    if (!ids || !back) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int r = 0; r < runs; r++) {
        Tokenizer *fresh = tokenizer_load(path, err);
        if (!fresh) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        double t0 = seconds_now();
        tokenizer_encode(fresh, text, len, ids, ntok);
        t_enc[r] = seconds_since(t0);
        tokenizer_free(fresh);
    }
    remove(path);
    long nb = tokenizer_decode(tok, ids, ntok, back, len + 1, err);
    int ok = nb == (long)len && !memcmp(back, text, len);
    double mt = median(t_train, runs), me = median(t_enc, runs);
    printf("corpus: %s, %zu bytes\n", argv[1], len);
    printf("vocab: %d ids, checksum %016llx\n", tokenizer_vocab_size(tok),
           (unsigned long long)tokenizer_checksum(tok));
    printf("train: %.3f s (median of %d)\n", mt, runs);
    printf("encode: %.3f s (median of %d), %zu tokens, %.1f MB/s, %.2f bytes/token\n", me,
           runs, ntok, (double)len / me / 1e6, (double)len / (double)ntok);
    printf("round trip: %s\n", ok ? "ok" : "FAILED");
    tokenizer_free(tok);
    free(ids);
    free(back);
    free(text);
    return ok ? 0 : 1;
}
