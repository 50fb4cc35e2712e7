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

// Named pointers into the one parameter buffer (and, with the same layout, into the
// gradient and AdamW buffers). Layer tensors are stacked: e_qkvw is (Le, 3C, C).
typedef struct {
    real *embed;                  // embedding parameter block (see embed_factor.h)
    real *outw;                   // (V, C) untied output projection, else NULL
    // encoder
    real *e_ln1w, *e_ln1b;        // (Le, C)
    real *e_qkvw, *e_qkvb;        // (Le, 3C, C), (Le, 3C)
    real *e_projw, *e_projb;      // (Le, C, C), (Le, C)
    real *e_ln2w, *e_ln2b;        // (Le, C)
    real *e_fcw, *e_fcb;          // (Le, F, C), (Le, F)
    real *e_fc2w, *e_fc2b;        // (Le, C, F), (Le, C)
    real *e_lnfw, *e_lnfb;        // (C) final encoder LN
    // decoder
    real *d_ln1w, *d_ln1b;        // (Ld, C)
    real *d_qkvw, *d_qkvb;        // (Ld, 3C, C), (Ld, 3C)  causal self-attention
    real *d_projw, *d_projb;      // (Ld, C, C), (Ld, C)
    real *d_ln2w, *d_ln2b;        // (Ld, C)                (seq2seq only, as all d_c*)
    real *d_cqw, *d_cqb;          // (Ld, C, C), (Ld, C)    cross-attention queries
    real *d_ckvw, *d_ckvb;        // (Ld, 2C, C), (Ld, 2C)  cross-attention keys, values
    real *d_cprojw, *d_cprojb;    // (Ld, C, C), (Ld, C)
    real *d_ln3w, *d_ln3b;        // (Ld, C)
    real *d_fcw, *d_fcb;          // (Ld, F, C), (Ld, F)
    real *d_fc2w, *d_fc2b;        // (Ld, C, F), (Ld, C)
    real *d_lnfw, *d_lnfb;        // (C) final decoder LN
} Params;

// One tensor of the parameter buffer, for checkpoints, tests and weight decay.
typedef struct {
    char name[64];       // e.g. "encoder.attn.qkv.weight", "embed.weight"
    size_t offset;       // into the parameter buffer
    size_t numel;
    int ndim, shape[4];
    int decay;           // AdamW weight decay applies (not to LN gains and biases)
} TensorInfo;
#define MAX_TENSORS 64

typedef struct Acts Acts; // activations, private to model.c

typedef struct {
    Config cfg;
    Embed emb;
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
    real *logits;                 // (B, T, V) of the last forward
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
void model_free(Model *m);

// Forward pass. src (B, S) (NULL for lm), tgt_in (B, T), tgt_out (B, T) or NULL;
// TOK_PAD entries are padding. Computes m->logits (B, T, V); with tgt_out returns the
// mean cross-entropy (label-smoothed when training) over non-pad targets, and
// m->logits then holds the probabilities (backward turns them into dlogits in place);
// without, it returns 0. S, T <= cfg.maxT. B = 0 (an empty shard, dist.h) returns 0,
// and its backward adds nothing.
real model_forward(Model *m, const int *src, const int *tgt_in, const int *tgt_out,
                   int B, int S, int T);
// Backward of the last forward (which must have had tgt_out): grads += d loss / d params.
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
// The layers, exposed for the tests. Backward functions accumulate into d* outputs.
void layernorm_forward(real *out, real *mean, real *rstd, const real *inp,
                       const real *w, const real *b, int N, int C);
void layernorm_backward(real *dinp, real *dw, real *db, const real *dout,
                        const real *inp, const real *w, const real *mean,
                        const real *rstd, int N, int C);
void matmul_forward(real *out, const real *inp, const real *w, const real *b,
                    int N, int IC, int OC);
void matmul_backward(real *dinp, real *dw, real *db, const real *dout,
                     const real *inp, const real *w, int N, int IC, int OC);
void gelu_forward(real *out, const real *inp, size_t N);
void gelu_backward(real *dinp, const real *inp, const real *dout, size_t N);
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
                        AttnShape a);
real crossentropy_forward(real *rowloss, real *logits, const int *targets, int N, int V,
                          float eps);
// dlogits of the mean loss over n targets (n: the non-pad targets, or more of them when
// this batch is a shard of a larger one).
void crossentropy_backward(real *probs, const int *targets, int N, int V, float eps, int n);

// Forward FLOPs of one batch (matrix multiplies and attention), for MFU reports.
double model_flops_forward(const Model *m, int B, int S, int T);

#endif
