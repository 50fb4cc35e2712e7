// dist.h: data-parallel training over MPI ranks (`make USE_MPI=1`, then
// `mpirun -np N ./train fit ...`). Every rank holds the whole model and data, builds the
// same model from the same seed and draws the same global batches; each runs forward and
// backward on its shard of a batch's rows; the gradients are summed over the ranks, so
// that every rank holds the gradient of the batch's mean loss and takes the same AdamW
// step. Built without USE_MPI there is one rank (rank 0 of 1) and every function is the
// trivial one.
#ifndef KF_DIST_H
#define KF_DIST_H

#include "data.h"
#include "model.h"

// Starts MPI, once; MPI_Finalize runs at exit. The stdout of ranks other than 0 goes to
// /dev/null: rank 0 alone prints (stderr stays, for errors).
void dist_init(void);
int dist_rank(void);
int dist_size(void);

// Rank `rank` of `size`'s shard of the global batch g: a run of whole rows, cut so that
// the ranks' target tokens differ by at most about one row's, at least one row each when
// g has as many rows as ranks. The shard keeps g's S and T and points into g's arrays.
// Returns its first row in g (for Model.row0).
int dist_shard_of(const Batch *g, int rank, int size, Batch *shard);
// This rank's shard.
int dist_shard(const Batch *g, Batch *shard);

// x[0..n) summed over the ranks, in place, in double.
void dist_sum(double *x, int n);
// Overlap: sets m->grads_final, so that model_backward starts the sum over the ranks of
// each stack's gradients (a non-blocking all-reduce) as soon as they are final, while the
// layers below still run: the decoder's, then the encoder's, then the embedding's.
void dist_overlap(Model *m);
// The gradient buffer summed over the ranks, in place: waits for the sums that backward
// started (dist_overlap), else sums it all in one all-reduce. Each rank's backward
// averaged over the targets of the whole batch (Model.loss_tokens), so the sum is the
// gradient of the batch's mean loss.
void dist_sum_grads(Model *m);
// Seconds spent starting and waiting for gradient sums so far: the time the reduction
// adds to a step (with overlap, the part that backward did not hide).
double dist_reduce_seconds(void);

// Every rank says whether it failed (its message in err). If any did, every rank returns
// 1 with err = "rank R: " and the message of the first rank R that failed; else 0.
int dist_any_failed(int failed, char *err);

// The decision to stop, the same on every rank: *p (the fraction of the budget used)
// becomes rank 0's, whose clock decides time budgets, and the result is 1 when any rank
// was asked to stop (stop != 0, a signal), else 0.
int dist_agree_stop(double *p, int stop);

// An error on this rank alone amid training, when the others would wait for it forever:
// with more than one rank it prints err and ends every rank (MPI_Abort, exit status 1);
// with one rank it returns, and the caller stops as usual.
void dist_fail_alone(const char *err);

#endif
