// model.h: the encoder-decoder Transformer (or decoder-only LM) of kronformer: its
// config, parameters, activations, forward and backward, loss and AdamW.
//
// Dimension letters: B batch (sentences), S source length, T target length, C d_model,
// NH heads, hs = C/NH head size, F FFN width, V vocabulary, Le/Ld encoder/decoder
// layers. Every buffer is row-major with its shape in a comment.
#ifndef KF_MODEL_H
#define KF_MODEL_H

#include "common.h"
#include "embed_factor.h"
#include "matmul.h"   // WriteMode

enum { ARCH_SEQ2SEQ = 0, ARCH_LM = 1 };

typedef struct {
    int arch;               // ARCH_SEQ2SEQ or ARCH_LM
    int V;                  // vocabulary (shared by source and target)
    int C;                  // d_model
    int NH;                 // attention heads; C % NH == 0
    int F;                  // FFN hidden width
    int Le, Ld;             // encoder layers (0 for lm), decoder layers
    int maxT;               // longest sequence (positions table)
    int tie;                // 1: output projection = embedding table
    char embed[128];        // embedding spec, see embed_factor.h
    float dropout;          // on attention probabilities and residual branches
    float label_smoothing;  // epsilon of the smoothed target distribution
} Config;

// Fills the defaults of the "small" configuration of the README.
void config_default(Config *c);
// Checks sizes; returns non-zero with a one-line message naming the problem and fix.
int config_check(const Config *c, char *err);

// The weights of one kind of sublayer, stacked over the L layers of its stack (shapes
// below); model.c slices them to one layer, and the same structs then hold that layer's
// weights or their gradients ((C), (3C, C), ...).
typedef struct {              // self-attention: proj(attention(qkv(LayerNorm(x))))
    real *lnw, *lnb;          // (L, C)
    real *qkvw, *qkvb;        // (L, 3C, C), (L, 3C)
    real *projw, *projb;      // (L, C, C), (L, C)
} SelfAttnParams;
typedef struct {              // cross-attention: queries from LayerNorm(x), keys and
    real *lnw, *lnb;          // (L, C)             values from the encoder output
    real *qw, *qb;            // (L, C, C), (L, C)
    real *kvw, *kvb;          // (L, 2C, C), (L, 2C)
    real *projw, *projb;      // (L, C, C), (L, C)
} CrossAttnParams;
typedef struct {              // feed-forward: fc2(gelu(fc1(LayerNorm(x))))
    real *lnw, *lnb;          // (L, C)
    real *fcw, *fcb;          // (L, F, C), (L, F)
    real *fc2w, *fc2b;        // (L, C, F), (L, C)
} FFNParams;

// Named pointers into the one parameter buffer (and, with the same layout, into the
// gradient buffer). model.c's layout_params lists every tensor, with its name.
typedef struct {
    real *embed;              // embedding parameter block (see embed_factor.h)
    real *outw;               // (V, C) untied output projection, else NULL
    SelfAttnParams e_self;    // encoder, L = Le
    FFNParams e_ffn;
    real *e_lnfw, *e_lnfb;    // (C) final encoder LN
    SelfAttnParams d_self;    // decoder, L = Ld: causal self-attention
    CrossAttnParams d_cross;  // seq2seq only
    FFNParams d_ffn;
    real *d_lnfw, *d_lnfb;    // (C) final decoder LN
} Params;

// How a tensor is initialized (model_init); explicit, not guessed from its name.
typedef enum {
    INIT_EMBED,     // the embedding block: embed_init (embed_factor.c)
    INIT_ZERO,      // biases, LayerNorm biases
    INIT_ONE,       // LayerNorm gains
    INIT_NORMAL,    // N(0, 0.02^2)
    INIT_RESIDUAL,  // N(0, (0.02 / sqrt(2 (Le + Ld)))^2): the last linear of a residual branch
    INIT_OUTPUT,    // N(0, 1/C), as the embedding rows: the untied output projection
} InitKind;

// One tensor of the parameter buffer, for checkpoints, tests, init and weight decay.
typedef struct {
    char name[64];       // e.g. "encoder.attn.qkv.weight", "embed.weight"
    size_t offset;       // into the parameter buffer
    size_t numel;
    int ndim, shape[4];
    int decay;           // AdamW weight decay applies (not to LN gains and biases)
    float lr_scale;      // AdamW's learning rate is lr_scale * lr (the embed spec's lr=)
    InitKind init;
} TensorInfo;
#define MAX_TENSORS 64

typedef struct Acts Acts; // activations, private to model.c

typedef struct {
    Config cfg;
    Embed emb;
    int *emb_slot, *emb_token;    // (V) each: the embedding's slots (order=freq), or NULL
    size_t num_params, num_embed_params;
    TensorInfo tensors[MAX_TENSORS];
    int ntensors;
    Params params, grads;         // named pointers into param_mem and grad_mem
    real *param_mem, *grad_mem;   // (num_params)
    real *adam_m, *adam_v;        // (num_params), allocated at the first AdamW step
    real *pos;                    // (maxT, C) sinusoidal positions
    Acts *acts;                   // grows to the largest batch seen
    struct Decoder *dec;          // incremental decoding state (model_decode_begin)
    // state of the last forward
    int B, S, T;
    int training;                 // 1: dropout on
    uint64_t dropout_seed;        // masks are a hash of (seed, step, site, index)
    uint64_t dropout_step;        // advanced by every training forward
    int ntok;                     // non-pad targets of the last loss
    real *logits;                 // (B, T, V) of the last forward without targets; (B, V)
                                  // of decoding; NULL after a forward with targets
    int loss_rows;                // rows per chunk of the loss (0: matmul's K slice of
                                  // B*T, at most 256); tests set B*T for the unchunked loss
    // Data-parallel training (dist.h) runs each rank on a shard of the rows of a batch:
    int row0;                     // the shard's first row in the batch (dropout masks are
                                  // keyed by the row in the batch); 0 otherwise
    int loss_tokens;              // the targets of the whole batch: the loss gradient is of
                                  // its mean over them; 0: over this batch's ntok
    // Called by model_backward after each layer with the gradients that have just become
    // final, grad[0..n) (n = 0: none yet; the tensors are stacked over layers, so a
    // stack's are final after its last layer), that they may be summed over the ranks
    // while backward goes on; NULL: not called.
    void (*grads_final)(real *grad, size_t n);
} Model;

// Builds the model for cfg (parameters allocated, not initialized).
int model_build(Model *m, const Config *cfg, char *err);
// Random init from seed: N(0, 0.02) linear weights (output projections of residual
// branches scaled by 1/sqrt(2 * layers)), zero biases, unit LN gains, embeddings with
// std C^-1/2 (so sqrt(C) * row has unit variance).
void model_init(Model *m, uint64_t seed);
// order=freq embeddings: the slots from the token counts of the training data (V).
// model_use_slots takes a saved slot table (V) instead; non-zero if it is not a
// permutation. Either may be called after model_build; the last call holds.
int model_set_token_counts(Model *m, const double *counts);
int model_use_slots(Model *m, const int *slot);
void model_free(Model *m);

// Forward pass. src (B, S) (NULL for lm), tgt_in (B, T), tgt_out (B, T) or NULL;
// TOK_PAD entries are padding. With tgt_out it returns the mean cross-entropy
// (label-smoothed when training) over non-pad targets, computing the logits a chunk of
// rows at a time (never all B*T*V of them); when training it also runs the loss's
// backward, fused with it: the output projection's gradient is added to grads, and
// d_out's is kept for model_backward. Without tgt_out it computes m->logits (B, T, V)
// and returns 0. S, T <= cfg.maxT. B = 0 (an empty shard, dist.h) returns 0, and its
// backward adds nothing.
real model_forward(Model *m, const int *src, const int *tgt_in, const int *tgt_out,
                   int B, int S, int T);
// Backward of the last forward (which must have been a training forward with tgt_out):
// grads += d loss / d params, the output projection's part added by that forward.
void model_backward(Model *m);
void model_zero_grad(Model *m);

// For generation: the encoder alone (seq2seq), then the decoder on tgt_in (B, T)
// against that encoding (an lm needs no model_encode). model_decode fills m->logits
// (B, V) with the logits of each row's last position only. It recomputes the whole
// prefix: the plain path, kept as the oracle of the incremental one below.
void model_encode(Model *m, const int *src, int B, int S);
void model_decode(Model *m, const int *tgt_in, int B, int T);

// Incremental decoding: one new token per row and step, with a key/value cache, so a
// step costs one row's work per layer instead of the whole prefix's.
// model_decode_begin starts R rows (room for up to rows_max, for beams) of at most Tmax
// positions each (<= maxT). Seq2seq: row r decodes sentence src_of[r] of the last
// model_encode (src_of NULL: sentence r); the cross-attention keys and values of the
// encoder output are computed here, once, and shared by the rows of a sentence.
void model_decode_begin(Model *m, int R, int rows_max, const int *src_of, int Tmax);
// Feeds tok[r] to row r at the next position (<bos> first); m->logits (R, V) then holds
// each row's next-token logits, as model_decode on the same prefix would.
void model_decode_step(Model *m, const int *tok);
// Continues with R rows: new row r takes the state of old row from[r] (rows may be
// repeated, as a beam's children, or dropped, as finished sentences).
void model_decode_select(Model *m, const int *from, int R);

// Global gradient L2 norm; clip_grads scales the gradients to norm <= max_norm.
double model_grad_norm(const Model *m);
void model_clip_grads(Model *m, double norm, double max_norm);
// AdamW step t (1-based) with bias correction and decoupled weight decay.
void model_adamw(Model *m, float lr, float beta1, float beta2, float eps,
                 float weight_decay, int t);

// ----------------------------------------------------------------------------
// The layers, exposed for the tests. Backward functions add into the gradients of
// parameters (dw, db) and write dinp (dq, dk, dv) as mode says (see matmul.h).
void layernorm_forward(real *out, real *mean, real *rstd, const real *inp,
                       const real *w, const real *b, int N, int C);
void layernorm_backward(real *dinp, real *dw, real *db, const real *dout,
                        const real *inp, const real *w, const real *mean,
                        const real *rstd, int N, int C, WriteMode mode);
void matmul_forward(real *out, const real *inp, const real *w, const real *b,
                    int N, int IC, int OC);
void matmul_backward(real *dinp, real *dw, real *db, const real *dout,
                     const real *inp, const real *w, int N, int IC, int OC, WriteMode mode);
void gelu_forward(real *out, const real *inp, size_t N);
void gelu_backward(real *dinp, const real *inp, const real *dout, size_t N, WriteMode mode);
void dropout_apply(real *out, const real *inp, size_t N, float p, uint64_t base);
typedef struct {
    int B, Tq, Tk, C, NH;
    int q_stride, kv_stride;   // row strides of q and of k, v (and of their gradients)
    int causal;
    float p;                   // dropout on the attention probabilities
    uint64_t base;             // dropout mask base
    // Incremental decoding only (attention_forward; training leaves them 0 and NULL):
    int kv_rows;               // rows per batch entry of k, v and key_valid (0: Tk), for
                               // a cache with room for more than Tk positions
    const int *kv_batch;       // (B) entry b reads keys, values, key_valid of entry
                               // kv_batch[b] (beams of one sentence share its encoding)
} AttnShape;
void attention_forward(real *out, real *att, const real *q, const real *k, const real *v,
                       const unsigned char *key_valid, AttnShape a);
void attention_backward(real *dq, real *dk, real *dv, real *datt, const real *dout,
                        const real *q, const real *k, const real *v, const real *att,
                        AttnShape a, WriteMode mode);
// The plain loops, one query row and one dot product at a time: the tests' oracle.
void attention_forward_ref(real *out, real *att, const real *q, const real *k, const real *v,
                           const unsigned char *key_valid, AttnShape a);
void attention_backward_ref(real *dq, real *dk, real *dv, real *datt, const real *dout,
                            const real *q, const real *k, const real *v, const real *att,
                            AttnShape a, WriteMode mode);
real crossentropy_forward(real *rowloss, real *logits, const int *targets, int N, int V,
                          float eps);
// The mean of rowloss (N) over the non-pad targets (N); 0 if there are none.
real crossentropy_mean(const real *rowloss, const int *targets, int N);
// dlogits of the mean loss over n targets (n: the non-pad targets, or more of them when
// this batch is a shard of a larger one).
void crossentropy_backward(real *probs, const int *targets, int N, int V, float eps, int n);

// Forward FLOPs of one batch (matrix multiplies and attention), for MFU reports.
double model_flops_forward(const Model *m, int B, int S, int T);

#endif
