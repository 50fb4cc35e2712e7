// vecmath.h: the speed helpers of model.c's kernels, kept apart so that model.c reads
// as the math: sums in 8 fixed lanes that the compiler turns into vector instructions
// without changing the rounding, and an exp it can vectorize. `make REF=1` (KF_REF)
// replaces that exp by libm's (and matmul.c's products by its reference loops).
#ifndef KF_VECMATH_H
#define KF_VECMATH_H

#include <string.h>
#include <tgmath.h>   // exp of a float stays in float
#include "common.h"

// Dot product in 8 interleaved partial sums, added in a fixed order at the end. A plain
// `s += a[i] * b[i]` is one serial chain the compiler may not reorder (that would change
// the rounding); 8 independent lanes become one vector multiply-add per step.
// (c = NULL: the plain sum of a; otherwise sum_i a_i b_i (c_i - c0), for LayerNorm.)
static inline real lanes8(const real *a, const real *b, const real *c, real c0, int n) {
    real acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i = 0;
    if (!b)
        for (; i + 8 <= n; i += 8) for (int j = 0; j < 8; j++) acc[j] += a[i + j];
    else if (!c)
        for (; i + 8 <= n; i += 8) for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    else
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j] * (c[i + j] - c0);
    real s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += !b ? a[i] : !c ? a[i] * b[i] : a[i] * b[i] * (c[i] - c0);
    return s;
}
static inline real dot8(const real *a, const real *b, int n) { return lanes8(a, b, NULL, 0, n); }
static inline real sum8(const real *a, int n) { return lanes8(a, NULL, NULL, 0, n); }

// exp for the float build, in plain C that the compiler vectorizes (libm's expf is a
// scalar call): x = n ln2 + r with |r| <= ln2/2 (n rounded by adding and subtracting
// 1.5 * 2^23; ln2 in two parts, so r is exact),
// exp(r) by its degree-6 Taylor polynomial (relative error below 2e-7 there), and 2^n
// written straight into the float's exponent. Inputs are clamped to [-87, 88], where
// exp stays a normal float. The double build, which the gradient tests use, and the
// REF=1 build keep libm.
#if defined(KF_DOUBLE) || defined(KF_REF)
static inline real exp_r(real x) { return exp(x); }
#else
static inline real exp_r(real x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    real n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   // round to nearest
    real r = x - n * 0.693145751953125f - n * 1.42860682030941723e-6f;
    real p = 1 + r * (1 + r * (0.5f + r * (1.66666667e-1f + r * (4.16666667e-2f +
             r * (8.33333333e-3f + r * 1.38888889e-3f)))));
    int32_t bits = ((int32_t)n + 127) << 23;
    real scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
#endif
// tanh(u) = 1 - 2 / (exp(2u) + 1): exact at both tails, absolute error ~1e-7 near 0.
static inline real tanh_r(real u) { return 1 - 2 / (exp_r(2 * u) + 1); }

#endif
