// dist.c: see dist.h. The MPI calls sit under USE_MPI; without it there is one rank and
// each function reduces to its single-rank case.
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run.h"

#ifdef USE_MPI
#include <mpi.h>
#ifdef KF_DOUBLE
#define MPI_REAL_TYPE MPI_DOUBLE
#else
#define MPI_REAL_TYPE MPI_FLOAT
#endif
#endif

static int rank_ = 0, size_ = 1;
static double reduce_seconds = 0;

#ifdef USE_MPI
static void finish(void) {
    int done;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}
#endif

void dist_init(void) {
#ifdef USE_MPI
    int started, provided;
    MPI_Initialized(&started);
    if (started) return;
    // OpenMP threads compute; only the main thread calls MPI. MPI errors keep their
    // default handler, which ends every rank.
    MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    atexit(finish);
    if (rank_ > 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "train: error: rank %d cannot open /dev/null for its stdout\n", rank_);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
#endif
}

int dist_rank(void) { return rank_; }
int dist_size(void) { return size_; }

static int row_tokens(const Batch *g, int r) {
    const int *y = g->tgt_out + (size_t)r * g->T;   // (T)
    int n = 0;
    for (int t = 0; t < g->T; t++) n += y[t] != TOK_PAD;
    return n;
}

// Rank k's rows are [start(k), start(k+1)): start(k) is the first row at which the
// tokens of the rows before it reach k / size of the batch's, moved (when B >= size) to
// leave at least one row to every rank before and after it.
int dist_shard_of(const Batch *g, int rank, int size, Batch *shard) {
    int lo = 0, hi = g->B, prev = 0, r = 0;
    long long before = 0;   // tokens of rows [0, r)
    for (int k = 1; k < size && k <= rank + 1; k++) {
        while (r < g->B && before * size < (long long)k * g->ntok) before += row_tokens(g, r++);
        int start = r;
        if (g->B >= size) {
            if (start < prev + 1) start = prev + 1;
            if (start > g->B - (size - k)) start = g->B - (size - k);
        }
        if (k == rank) lo = start;
        if (k == rank + 1) hi = start;
        prev = start;
    }
    *shard = *g;
    shard->B = hi - lo;
    shard->src = g->src ? g->src + (size_t)lo * g->S : NULL;
    shard->tgt_in = g->tgt_in + (size_t)lo * g->T;
    shard->tgt_out = g->tgt_out + (size_t)lo * g->T;
    shard->index = g->index + lo;
    shard->ntok = 0;
    for (int i = lo; i < hi; i++) shard->ntok += row_tokens(g, i);
    return lo;
}

int dist_shard(const Batch *g, Batch *shard) { return dist_shard_of(g, rank_, size_, shard); }

void dist_sum(double *x, int n) {
#ifdef USE_MPI
    if (size_ > 1) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)x; (void)n;
#endif
}

#ifdef USE_MPI
enum { MAX_PENDING = 64 };
static MPI_Request pending[MAX_PENDING];   // the sums started and not yet waited for
static int npending = 0;

// Starts summing grad[0..n) over the ranks, in place, without waiting; then lets MPI
// advance the sums already started (OpenMPI moves them only inside MPI calls).
static void start_sum(real *grad, size_t n) {
    double t0 = seconds_now();
    const size_t chunk = (size_t)1 << 30;   // MPI counts are ints
    for (size_t i = 0; i < n; i += chunk) {
        if (npending == MAX_PENDING) {
            MPI_Waitall(npending, pending, MPI_STATUSES_IGNORE);
            npending = 0;
        }
        size_t k = n - i < chunk ? n - i : chunk;
        MPI_Iallreduce(MPI_IN_PLACE, grad + i, (int)k, MPI_REAL_TYPE, MPI_SUM,
                       MPI_COMM_WORLD, &pending[npending++]);
    }
    int done;
    MPI_Testall(npending, pending, &done, MPI_STATUSES_IGNORE);
    reduce_seconds += seconds_since(t0);
}
#endif

void dist_overlap(Model *m) {
#ifdef USE_MPI
    if (size_ > 1) m->grads_final = start_sum;
#else
    (void)m;
#endif
}

void dist_sum_grads(Model *m) {
#ifdef USE_MPI
    if (size_ == 1) return;
    if (!m->grads_final) start_sum(m->grad_mem, m->num_params);   // one sum, after backward
    double t0 = seconds_now();
    MPI_Waitall(npending, pending, MPI_STATUSES_IGNORE);
    npending = 0;
    reduce_seconds += seconds_since(t0);
#else
    (void)m;
#endif
}

double dist_reduce_seconds(void) { return reduce_seconds; }

int dist_any_failed(int failed, char *err) {
#ifdef USE_MPI
    if (size_ == 1) return failed;
    int mine = failed ? rank_ : size_, first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == size_) return 0;
    char msg[KF_ERRLEN];
    if (rank_ == first) memcpy(msg, err, KF_ERRLEN);
    MPI_Bcast(msg, KF_ERRLEN, MPI_CHAR, first, MPI_COMM_WORLD);
    msg[KF_ERRLEN - 1] = '\0';
    errorf(err, "rank %d: %.*s", first, KF_ERRLEN - 32, msg);
    return 1;
#else
    (void)err;
    return failed;
#endif
}

int dist_agree_stop(double *p, int stop) {
#ifdef USE_MPI
    if (size_ > 1) {
        // one all-reduce with MAX: the other ranks offer p = 0, below rank 0's p >= 0
        double x[2] = {rank_ == 0 ? *p : 0.0, stop ? 1.0 : 0.0};
        MPI_Allreduce(MPI_IN_PLACE, x, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        *p = x[0];
        return x[1] > 0;
    }
#else
    (void)p;
#endif
    return stop != 0;
}

void dist_fail_alone(const char *err) {
#ifdef USE_MPI
    if (size_ == 1) return;
    fprintf(stderr, "train: error: rank %d: %s; stopping every rank\n", rank_, err);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
#else
    (void)err;
#endif
}
