// tests/weights_diff.c: how far apart the weights of two run directories are, for
// tests/test_mpi.sh. Prints "max_abs D max_weight W n N": the largest |a - b| over the N
// weights, and the largest |a| (the scale D is judged against). Exit 2 when a run
// cannot be loaded or the two models differ in shape.
#include <stdio.h>
#include "../run.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: tests/weights_diff RUNDIR_A RUNDIR_B\n");
        return 2;
    }
    Model a, b;
    Tokenizer *ta, *tb;
    char err[KF_ERRLEN];
    if (run_load(&a, &ta, NULL, argv[1], err)) {
        fprintf(stderr, "weights_diff: %s\n", err);
        return 2;
    }
    if (run_load(&b, &tb, NULL, argv[2], err)) {
        fprintf(stderr, "weights_diff: %s\n", err);
        model_free(&a);
        tokenizer_free(ta);
        return 2;
    }
    int rc = 0;
    if (a.num_params != b.num_params) {
        fprintf(stderr, "weights_diff: %zu against %zu weights; compare runs of one model\n",
                a.num_params, b.num_params);
        rc = 2;
        goto done;
    }
    double dmax = 0, wmax = 0;
    for (size_t i = 0; i < a.num_params; i++) {
        double d = fabs((double)a.param_mem[i] - b.param_mem[i]), w = fabs(a.param_mem[i]);
        if (d > dmax) dmax = d;
        if (w > wmax) wmax = w;
    }
    printf("max_abs %.3g max_weight %.3g n %zu\n", dmax, wmax, a.num_params);
done:
    model_free(&a);
    model_free(&b);
    tokenizer_free(ta);
    tokenizer_free(tb);
    return rc;
}
