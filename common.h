// common.h: the scalar type, a small deterministic RNG, and error helpers shared by
// every file of kronformer.
#ifndef KF_COMMON_H
#define KF_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>

// The model computes in `real`: float for training, double (-DKF_DOUBLE) so that the
// tests can check analytic gradients against finite differences to 1e-6.
#ifdef KF_DOUBLE
typedef double real;
#define REAL_NAME "F64"
#else
typedef float real;
#define REAL_NAME "F32"
#endif

// Functions that can fail on user input return 0 on success and non-zero on failure,
// with a one-line message (no trailing newline) written to err[KF_ERRLEN].
#define KF_ERRLEN 512

// The one way to report such a failure: errorf(err, "what was wrong; how to fix it",
// ...) writes the message (printf-style; err may be NULL) and returns 1, so that a
// function can end with `return errorf(err, ...);`.
static inline int errorf(char *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, KF_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return 1;
}

// splitmix64: a tiny, high-quality 64-bit generator. rng_next advances the state;
// hash64 is the same finalizer used statelessly, for counter-based randomness
// (dropout masks) that does not depend on the order in which threads draw numbers.
static inline uint64_t hash64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
static inline uint64_t rng_next(uint64_t *state) {
    uint64_t x = *state;
    *state += 0x9e3779b97f4a7c15ULL;
    return hash64(x);
}
// uniform in [0, 1) with 24 random bits (exactly representable in float)
static inline double rng_uniform(uint64_t *state) {
    return (double)(rng_next(state) >> 40) * (1.0 / 16777216.0);
}
// standard normal by Box-Muller
static inline double rng_normal(uint64_t *state) {
    double u1 = rng_uniform(state), u2 = rng_uniform(state);
    if (u1 < 1e-12) u1 = 1e-12;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
