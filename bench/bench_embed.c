// bench_embed.c: the tied embedding's whole-table forward (embed_table_forward) and
// backward (embed_table_backward) of the small configuration (V = 8000, C = 256), side
// by side with the per-slot reference paths (embed_table_*_ref) in the same run.
// Prints the median of 5 timed runs (after one warm-up) of each, in milliseconds.
//
// usage: bench_embed [spec ...]   (default: the specs of README "Dense against
//        factorized": kronxs:n=2,r=36, kronxs:n=2,r=18,head=200, kron:n=2,r=1)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "../embed_factor.h"
#include "../fileio.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// out = median milliseconds of 5 runs of stmt, after one warm-up run.
#define TIME_MS(out, stmt) do { double ts_[5]; stmt; \
    for (int r_ = 0; r_ < 5; r_++) { double t0_ = seconds_now(); stmt; ts_[r_] = 1e3 * seconds_since(t0_); } \
    qsort(ts_, 5, sizeof(double), cmp); out = ts_[2]; } while (0)

int main(int argc, char **argv) {
    static const char *const defaults[] = {"kronxs:n=2,r=36,q=16x16,t=90x90",
                                           "kronxs:n=2,r=18,head=200", "kron:n=2,r=1"};
    const char *const *specs = argc > 1 ? (const char *const *)argv + 1 : defaults;
    const int nspec = argc > 1 ? argc - 1 : 3, V = 8000, C = 256;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    printf("V=%d C=%d, %d threads; ms, median of 5\n", V, C, threads);
    printf("%-40s %10s %10s %10s %10s\n", "spec", "fwd ref", "fwd", "bwd ref", "bwd");
    for (int i = 0; i < nspec; i++) {
        Embed e;
        char err[KF_ERRLEN];
        if (embed_parse(&e, specs[i], V, C, err)) {
            fprintf(stderr, "bench_embed: %s\n", err);
            return 2;
        }
        uint64_t rng = 1;
        real *p = malloc(sizeof(real) * e.num_params), *g = calloc(e.num_params, sizeof(real));
        real *table = malloc(sizeof(real) * (size_t)V * C), *dtable = malloc(sizeof(real) * (size_t)V * C);
        if (!p || !g || !table || !dtable) { fprintf(stderr, "bench_embed: out of memory\n"); return 1; }
        embed_init(&e, p, &rng);
        for (size_t k = 0; k < (size_t)V * C; k++) dtable[k] = (real)(1e-3 * rng_normal(&rng));
        double fr, ff, br, bf;
        TIME_MS(fr, embed_table_forward_ref(table, p, &e));
        TIME_MS(ff, embed_table_forward(table, p, &e));
        TIME_MS(br, embed_table_backward_ref(g, dtable, p, &e));
        TIME_MS(bf, embed_table_backward(g, dtable, p, &e));
        printf("%-40s %10.2f %10.2f %10.2f %10.2f\n", specs[i], fr, ff, br, bf);
        free(p); free(g); free(table); free(dtable);
    }
    return 0;
}
