// test_threads.c: training gives bit-identical results with 1 and 2 OpenMP threads.
// Several training steps (forward with dropout and label smoothing, backward, gradient
// norm, clipping, AdamW), then an evaluation forward and greedy-decoding calls, once
// with 1 thread and once with 2; every loss and gradient norm as raw bits, the final
// weights, AdamW's moments and the logits (of the evaluation forward, model_decode and
// each step of incremental decoding) go through an FNV-1a hash, and the hashes must be
// equal. Built in float, the build that trains (AVX2 kernels, vectorized exp).
//
// The shapes make every parallel path split its work over both threads: 16 sentences
// of up to 24 + 20 tokens are 320-384 rows for LayerNorm, GELU and the residual adds
// (an owner-computes loop over rows); B * NH = 64 (b, h) pairs for attention; and every
// matrix product is above matmul.c's threshold for a second thread (MM_THREAD_MIN =
// 2^18 multiply-adds per thread): the smallest, the attention projection's weight
// gradient, is 64 x 64 x 320 = 1.3M; the logits 320 x 500 x 64 = 10M.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../model.h"
#include "../tokenizer.h"
#include "check.h"

// FNV-1a 64 over bytes, continued from h.
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}
#define FNV_START 0xcbf29ce484222325ULL

enum { B = 16, S = 24, T = 20, STEPS = 4 };

// A padded batch of random tokens: row b has S - b % 5 source and T - b % 7 target tokens.
static void make_batch(int *src, int *tin, int *tout, int V, uint64_t *rng) {
    for (int b = 0; b < B; b++) {
        int ls = S - b % 5, lt = T - b % 7;
        for (int s = 0; s < S; s++)
            src[b * S + s] = s < ls - 1 ? 3 + (int)(rng_next(rng) % (uint64_t)(V - 3)) : s == ls - 1 ? TOK_EOS : TOK_PAD;
        for (int t = 0; t < T; t++)
            tout[b * T + t] = t < lt - 1 ? 3 + (int)(rng_next(rng) % (uint64_t)(V - 3)) : t == lt - 1 ? TOK_EOS : TOK_PAD;
        for (int t = 0; t < T; t++)
            tin[b * T + t] = t == 0 ? TOK_BOS : tout[b * T + t - 1] == TOK_EOS ? TOK_PAD : tout[b * T + t - 1];
    }
}

typedef struct {
    uint64_t losses;    // every step's loss and gradient norm, as raw bits
    uint64_t weights;   // the parameters after the last step
    uint64_t adam;      // AdamW's moments
    uint64_t outputs;   // logits of an evaluation forward and of decoding
    real loss[STEPS];
} Hashes;

static Hashes train(const Config *cfg, int threads) {
    Hashes h = { FNV_START, FNV_START, FNV_START, FNV_START, {0} };
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    Model m;
    char err[KF_ERRLEN];
    if (model_build(&m, cfg, err)) { printf("FAIL model_build: %s\n", err); exit(1); }
    model_init(&m, 11);
    m.training = 1;
    m.dropout_seed = 3;
    int lm = cfg->arch == ARCH_LM;
    int src[B * S], tin[B * T], tout[B * T];
    uint64_t rng = 77;
    for (int step = 1; step <= STEPS; step++) {
        make_batch(src, tin, tout, cfg->V, &rng);
        model_zero_grad(&m);
        real loss = model_forward(&m, lm ? NULL : src, tin, tout, B, lm ? 0 : S, T);
        model_backward(&m);
        double norm = model_grad_norm(&m);
        model_clip_grads(&m, norm, 1.0);
        model_adamw(&m, 1e-3f, 0.9f, 0.98f, 1e-9f, 0.01f, step);
        h.losses = fnv1a(h.losses, &loss, sizeof loss);
        h.losses = fnv1a(h.losses, &norm, sizeof norm);
        h.loss[step - 1] = loss;
    }
    h.weights = fnv1a(h.weights, m.param_mem, m.num_params * sizeof(real));
    h.adam = fnv1a(h.adam, m.adam_m, m.num_params * sizeof(real));
    h.adam = fnv1a(h.adam, m.adam_v, m.num_params * sizeof(real));
    m.training = 0;
    model_forward(&m, lm ? NULL : src, tin, NULL, B, lm ? 0 : S, T);
    h.outputs = fnv1a(h.outputs, m.logits, (size_t)B * T * cfg->V * sizeof(real));
    if (!lm) model_encode(&m, src, B, S);
    model_decode(&m, tin, B, T / 2);
    h.outputs = fnv1a(h.outputs, m.logits, (size_t)B * cfg->V * sizeof(real));
    // incremental decoding, as translate does: the first 10 tokens of every row (real
    // tokens in all rows), one step at a time
    model_decode_begin(&m, B, B, NULL, T);
    for (int t = 0; t < 10; t++) {
        int tok[B];
        for (int b = 0; b < B; b++) tok[b] = tin[b * T + t];
        model_decode_step(&m, tok);
        h.outputs = fnv1a(h.outputs, m.logits, (size_t)B * cfg->V * sizeof(real));
    }
    model_free(&m);
    return h;
}

static void test_config(int arch, int tie, const char *embed, const char *name) {
    Config cfg;
    config_default(&cfg);
    cfg.arch = arch; cfg.V = 500; cfg.C = 64; cfg.NH = 4; cfg.F = 256;
    cfg.Le = arch == ARCH_SEQ2SEQ ? 2 : 0; cfg.Ld = 2; cfg.maxT = 32; cfg.tie = tie;
    cfg.dropout = 0.1f; cfg.label_smoothing = 0.1f;
    snprintf(cfg.embed, sizeof cfg.embed, "%s", embed);
    Hashes one = train(&cfg, 1), two = train(&cfg, 2);
    char n[160];
    snprintf(n, sizeof n, "1 and 2 threads: bit-identical losses and gradient norms (%s)", name);
    CHECK(one.losses == two.losses, n, "hash %016llx vs %016llx; losses %.9g %.9g %.9g %.9g vs %.9g %.9g %.9g %.9g",
          (unsigned long long)one.losses, (unsigned long long)two.losses, one.loss[0], one.loss[1],
          one.loss[2], one.loss[3], two.loss[0], two.loss[1], two.loss[2], two.loss[3]);
    snprintf(n, sizeof n, "1 and 2 threads: bit-identical weights after %d steps (%s)", STEPS, name);
    CHECK(one.weights == two.weights, n, "hash %016llx vs %016llx", (unsigned long long)one.weights,
          (unsigned long long)two.weights);
    snprintf(n, sizeof n, "1 and 2 threads: bit-identical AdamW moments (%s)", name);
    CHECK(one.adam == two.adam, n, "hash %016llx vs %016llx", (unsigned long long)one.adam,
          (unsigned long long)two.adam);
    snprintf(n, sizeof n, "1 and 2 threads: bit-identical evaluation and decoding logits (%s)", name);
    CHECK(one.outputs == two.outputs, n, "hash %016llx vs %016llx", (unsigned long long)one.outputs,
          (unsigned long long)two.outputs);
}

int main(void) {
#ifdef _OPENMP
    // the premise: a parallel region really gets 2 threads here
    int got = 0;
    omp_set_num_threads(2);
    #pragma omp parallel
    {
        #pragma omp single
        got = omp_get_num_threads();
    }
    CHECK(got == 2, "a parallel region runs 2 threads", "got %d (OMP_THREAD_LIMIT or OMP_DYNAMIC set?)", got);
    test_config(ARCH_SEQ2SEQ, 1, "dense", "seq2seq, tied dense");
    test_config(ARCH_SEQ2SEQ, 0, "kron:n=2,r=2", "seq2seq, untied kron");
    test_config(ARCH_LM, 1, "kronxs:n=2,r=4", "lm, tied kronxs");
    test_config(ARCH_LM, 1, "tt:n=3,r=3,head=5,order=freq", "lm, tied tt");
#else
    printf("SKIP test_threads: built without OpenMP, there is one thread\n");
#endif
    CHECK_EXIT();
}
