// embed_factor.h: the input embedding (and, when tied, the output projection) of
// kronformer: a dense table, or a Kronecker-factorized or tensor-train one.
//
//   dense                       row(w) = E[w, :]                      params V*C
//   kron:n=N,r=R[,q=Q1x..xQN]   word2ket: row(w) = sum_k v_{w,k,0} (x) .. (x) v_{w,k,N-1},
//                               v_{w,k,j} in R^{q_j}, prod q_j >= C, cut to C.
//                               params V * R * sum_j q_j
//   kronxs:n=N,r=R[,q=..][,t=T1x..xTN]
//                               word2ketXS: E = sum_k F_{k,0} (x) .. (x) F_{k,N-1}, F_{k,j}
//                               of t_j x q_j, prod t_j >= V; w in mixed radix
//                               (w_0..w_{N-1}) over (t_0..t_{N-1}), w_{N-1} fastest;
//                               row(w) = sum_k (x)_j F_{k,j}[w_j, :], cut to C.
//                               params R * sum_j t_j q_j
//   tt:n=N,r=R[,q=..][,t=..]    tensor train (Hrinchuk et al. 2020): cores G_j of shape
//                               (r_j, t_j, q_j, r_{j+1}), r_0 = r_N = 1, inner ranks R;
//                               w in mixed radix over t as kronxs, row index i < C in
//                               mixed radix over q; row(w)[i] = G_0[:, w_0, i_0, :]
//                               G_1[:, w_1, i_1, :] .. G_{N-1}[:, w_{N-1}, i_{N-1}, :],
//                               a product of 1 x R, R x R, .., R x 1 matrices.
//                               params sum_j r_j t_j q_j r_{j+1}; default n = 3
// Options of the factorized kinds (the study of README "Dense against factorized"):
//   order=id|freq     the slot of token w: w itself, or its rank by frequency in the
//                     training data (the most frequent token gets slot 0); the table
//                     of ranks is set by embed_set_order and saved with the model
//   head=K            slots 0..K-1 get dense rows of their own (K C params); the other
//                     V - K slots are factorized (kronxs, tt: prod t >= V - K)
//   layout=radix|diag kronxs and tt: the digits of factorized slot g. radix: g in mixed radix
//                     (a_0..a_{N-1}) over t. diag: digit j is (a_j + .. + a_{N-1}) mod
//                     t_j, so the first t_{N-1} slots (with order=freq, the most
//                     frequent tokens) share no row of any factor
//   norm=ln|rms|none  each factorized row standardized (ln, the default) or divided by
//                     its RMS (rms), times a learned gain (C params; ln adds a bias, C
//                     more); none: the product row as it is
//   lr=X              the learning rate of the embedding's tensors is X times --lr
//                     (default 3: shared factors learn too slowly at 1)
// The parameters of an embedding are one contiguous block of `num_params` reals, laid
// out as the tensors listed by embed_tensor_info. Factors are numbered from 0, as in the
// code (the spec's Q1..QN are q_0..q_{N-1}).
#ifndef KF_EMBED_FACTOR_H
#define KF_EMBED_FACTOR_H

#include "common.h"

enum { EMBED_DENSE = 0, EMBED_KRON = 1, EMBED_KRONXS = 2, EMBED_TT = 3 };
enum { EMBED_NORM_NONE = 0, EMBED_NORM_RMS = 1, EMBED_NORM_LN = 2 };
enum { EMBED_ORDER_ID = 0, EMBED_ORDER_FREQ = 1 };
enum { EMBED_LAYOUT_RADIX = 0, EMBED_LAYOUT_DIAG = 1 };
#define EMBED_MAX_ORDER 8

typedef struct {
    int kind;                  // EMBED_DENSE, EMBED_KRON, EMBED_KRONXS or EMBED_TT
    int V, C;                  // vocabulary size, embedding width (d_model)
    int n, r;                  // order N and rank R (1, 1 for dense; tt: inner ranks)
    int q[EMBED_MAX_ORDER];    // factor widths, prod q >= C
    int t[EMBED_MAX_ORDER];    // kronxs, tt: factor heights, prod t >= V - head
    int head;                  // slots with a dense row of their own
    int norm, order, layout;   // EMBED_NORM_*, EMBED_ORDER_*, EMBED_LAYOUT_*
    double lr_scale;           // learning rate multiplier of the embedding's tensors
    size_t num_params;         // reals in the parameter block
    size_t factor_off;         // where the factors start (after the head rows)
    size_t norm_off;           // where the norm's gain (then ln's bias) starts
    double init_std;           // std of every entry of a row at initialization
    const int *slot;           // (V) order=freq: token -> slot, NULL: the identity
    const int *token;          // (V) its inverse, slot -> token
} Embed;

// Parses SPEC ("dense", "kron:n=2,r=1", "kronxs:n=2,r=8,q=16x16,t=90x90", ...) for a
// vocabulary of V and width C, fills the defaults, checks the sizes.
// Returns 0, or non-zero with a one-line message naming the problem and the fix.
int embed_parse(Embed *e, const char *spec, int V, int C, char *err);

// Canonical spec with every option written out, e.g.
// "kronxs:n=2,r=8,q=16x16,t=90x89,head=0,order=id,layout=radix,norm=ln,lr=3".
void embed_spec_string(const Embed *e, char *out, size_t cap);

// The spec of a file written before the options existed (a factorized spec without
// lr=, as typed then), with those options set to what they meant then (head=0,
// order=id, layout=radix, norm=none, lr=1); any other spec is copied as it is.
void embed_legacy_spec(char *out, size_t cap, const char *spec);

// order=freq: the slots from token counts (V): by decreasing count, ties by token id.
// Fills slot and token (V each, owned by the caller) and points e at them.
void embed_set_order(Embed *e, int *slot, int *token, const double *counts);
// Points e at a saved slot table (V); fills token with its inverse. Returns 0, or
// non-zero if slot is not a permutation of 0..V-1.
int embed_use_slots(Embed *e, const int *slot, int *token);

// Tensors of the parameter block, in order, for checkpoints and printing.
// i in [0, embed_num_tensors): name (e.g. "embed.weight", "embed.kron", "embed.kronxs.0",
// "embed.tt.0", "embed.head", "embed.norm.weight"), shape, and whether AdamW decays it (not the
// norm's gain and bias).
int embed_num_tensors(const Embed *e);
void embed_tensor_info(const Embed *e, int i, char *name, size_t cap, int *ndim,
                       int shape[4], size_t *offset, size_t *numel, int *decay);

// Fills the parameters so that every entry of every row has mean 0 and standard
// deviation e->init_std (the dense initialization), whatever the order and rank.
void embed_init(const Embed *e, real *params, uint64_t *rng);

// Rows for N tokens: out[i, :] = scale * row(tokens[i]).          out (N, C)
void embed_rows_forward(real *out, const int *tokens, const real *params,
                        const Embed *e, int N, real scale);
// dparams += d/dparams of sum_i <dout[i, :], scale * row(tokens[i])>.
void embed_rows_backward(real *dparams, const real *dout, const int *tokens,
                         const real *params, const Embed *e, int N, real scale);

// The whole table (V, C), for the tied output projection. For dense it returns
// `params` itself and leaves `scratch` untouched; otherwise it fills and returns scratch.
const real *embed_table_forward(real *scratch, const real *params, const Embed *e);
// dparams += gradient of the table, given dtable (V, C). For dense the caller
// accumulates straight into dparams instead and need not call this.
void embed_table_backward(real *dparams, const real *dtable, const real *params,
                          const Embed *e);
// The same three, every row built and differentiated on its own (kronxs n = 2 goes
// through one matrix product of its factors in the three above, the rows' backward
// when the batch has at least prod(t) / 8 distinct factorized slots): the reference
// the tests compare with.
const real *embed_table_forward_ref(real *scratch, const real *params, const Embed *e);
void embed_table_backward_ref(real *dparams, const real *dtable, const real *params,
                              const Embed *e);
void embed_rows_backward_ref(real *dparams, const real *dout, const int *tokens,
                             const real *params, const Embed *e, int N, real scale);

#endif
