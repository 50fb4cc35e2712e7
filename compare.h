// compare.h: several training runs that differ only in their embedding (`train compare`),
// one after the other, each in its own child process (so its peak memory is its own and
// a crash loses only that run), then a table (RUNS/summary.md) and a loss plot
// (RUNS/loss.svg).
#ifndef KF_COMPARE_H
#define KF_COMPARE_H

#include "run.h"

// A filesystem-safe run name for an embedding spec: letters and digits are kept, '='
// is dropped, anything else becomes '_' ("kronxs:n=2,r=8" -> "kronxs_n2_r8").
void compare_run_name(char *out, size_t cap, const char *spec);

// Trains base with each spec as its embedding into out/<name>/. Checks every
// configuration before the first run starts. Returns 0 when every run finished,
// 1 if some run failed (the others are kept), 2 with a message on bad input (nothing
// written), 130 if interrupted by SIGINT/SIGTERM (the finished runs are reported).
int compare_run(const FitOptions *base, const char *const *specs, int nspecs, const char *out,
                char *err);

#endif
