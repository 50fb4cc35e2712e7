// matmul.c: the three matrix products of training (see matmul.h), in the GotoBLAS/BLIS
// structure. All three are one product C(i,j) (+)= sum_k A(i,k) B(k,j) that differ only
// in the strides through which A and B are read, so one driver serves them all. Each
// thread owns one rectangular block of C and computes it as
//
//   for each NC-wide column block                           (B panel in L3)
//     for each KC-deep slice of K, in order                  (fixed summation order)
//       pack B[KC, NC] into NR-wide micro-panels
//       for each MC-tall row block                           (A block in L2)
//         pack A[MC, KC] into MR-tall micro-panels
//         for each NR-wide, then MR-tall tile:                (B micro-panel in L1)
//           micro-kernel: KC outer products of MR x NR, accumulated in registers
//
// Packing copies the operands into exactly the order the micro-kernel reads them, so
// the transposes cost nothing beyond the copy, and zero-pads ragged edges so that the
// micro-kernel always computes a full tile. Every element of C is summed over k in the
// same order whatever the tiling, so the result does not depend on the number of threads.
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "matmul.h"

#ifdef _OPENMP
#include <omp.h>
#define OMP_PRAGMA_(x) _Pragma(#x)
#define OMP(x) OMP_PRAGMA_(omp x)
#else
#define OMP(x)
#endif

// The AVX2 and AVX-512 kernels are compiled into every float build on x86 through
// target attributes (no -march needed) and chosen at run time by cpuid; the double build
// (the finite-difference tests) has only the portable kernel.
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__) && !defined(KF_DOUBLE)
#include <immintrin.h>
#define MM_X86 1
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f")))
#endif

// Cache blocking, the same for every kernel: KC x NR of B stays in L1, MC x KC of A
// (144 KB) in L2, KC x NC of B (at most 4 MB per thread) in L3. MC is a multiple of each
// kernel's MR (6 and 12). (Float sizes; the double build keeps the same shapes.)
#define KC 256
#define MC 144
#define NC 4080
// Each thread gets at least this many multiply-adds (a few microseconds), else fewer
// threads are used: starting them and packing twice would cost more than they gain.
#define MM_THREAD_MIN (1 << 18)

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
static inline int round_up(int a, int b) { return ceil_div(a, b) * b; }
// (a GCC and Clang builtin on every target: prefetcht0 on x86)
static inline void prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

int mm_k_slice(int K) { return K > 0 ? ceil_div(K, ceil_div(K, KC)) : 0; }

// ----------------------------------------------------------------------------
// packing

// Packing a matrix whose columns are contiguous goes PACK_P columns at a time.
#define PACK_P 8

// Fast path of pack() for s_p = 1 (rows of X contiguous), or NULL: packs the first p of
// the kc columns, returns p (see pack_panel_avx2).
typedef int PackPanel(real *restrict dst, const real *restrict x, ptrdiff_t s_r, int n,
                      int ahead, int kc, int W);

#ifdef MM_X86
// In-register transpose of the 8 x 8 block whose rows are v[0..7].
TARGET_AVX2 static inline void transpose8(__m256 v[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);     // v_i0 v_i+1,0 v_i1 v_i+1,1 | cols 4,5
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]); // cols 2,3 | cols 6,7
    }
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));     // col 0 | 4
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2)); // col 1 | 5
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0)); // col 2 | 6
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2)); // col 3 | 7
    }
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        v[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

// Stores the first w (1..8) lanes of v at d.
TARGET_AVX2 static inline void store_lanes(float *d, __m256 v, int w) {
    if (w == 8) { _mm256_storeu_ps(d, v); return; }
    __m128 x = _mm256_castps256_ps128(v);
    if (w >= 4) { _mm_storeu_ps(d, x); x = _mm256_extractf128_ps(v, 1); d += 4; w -= 4; }
    if (w >= 2) { _mm_storel_pi((__m64 *)d, x); x = _mm_movehl_ps(x, x); d += 2; w -= 2; }
    if (w) _mm_store_ss(d, x);
}

// The transposing copy of pack() for s_p = 1, 8 x 8 blocks at a time through registers,
// fetching ahead the same part of the next `ahead` rows (the next panel); returns how
// many p it packed (kc rounded down to 8). Any W works: the last 8-row group of a panel
// stores only its W % 8 rows. Serves the AVX2 and the AVX-512 kernels.
TARGET_AVX2 static int pack_panel_avx2(float *restrict dst, const float *restrict x,
                                       ptrdiff_t s_r, int n, int ahead, int kc, int W) {
    int p = 0;
    for (; p + 8 <= kc; p += 8) {
        for (int r = 0; r < ahead; r++) prefetch(x + (W + r) * s_r + p);
        for (int g = 0; g < W; g += 8) { // rows g..g+7 of the panel
            __m256 v[8];
            for (int r = 0; r < 8; r++)
                v[r] = g + r < n ? _mm256_loadu_ps(x + (g + r) * s_r + p) : _mm256_setzero_ps();
            transpose8(v);
            for (int q = 0; q < 8; q++) store_lanes(dst + (size_t)(p + q) * W + g, v[q], imin(8, W - g));
        }
    }
    return p;
}
#endif

// Packs n rows of the kc-deep slice of a matrix X, X(r,p) = x[r*s_r + p*s_p], into
// ceil(n/W) micro-panels dst[n/W][kc][W]: for each p the W values X(r0..r0+W-1, p) side
// by side, rows past n zero. The loop order follows the memory order of X.
static void pack(real *restrict dst, const real *restrict x, ptrdiff_t s_r, ptrdiff_t s_p,
                 int n, int kc, int W, PackPanel *pack_panel) {
    if (s_r == 1) { // X(., p) is contiguous: copy runs of it, PACK_P values of p at a time,
        // so that the source rows stay in L1 and each panel gets a contiguous run of output
        // (one p at a time, the panels' stores alias in L1: they are kc*W apart)
        for (int p0 = 0; p0 < kc; p0 += PACK_P) {
            int p1 = imin(kc, p0 + PACK_P);
            // fetch the next columns now: they are far apart, the hardware would not guess
            for (int p = p1; p < imin(kc, p1 + PACK_P); p++)
                for (int r = 0; r < n; r += 64 / sizeof(real)) prefetch(x + p * s_p + r);
            for (int r0 = 0; r0 < n; r0 += W)
                for (int p = p0; p < p1; p++) {
                    const real *xp = x + p * s_p + r0;
                    real *d = dst + (size_t)r0 * kc + (size_t)p * W;
                    if (n - r0 >= W) // (a loop, not memcpy: W is not a constant, and short)
                        for (int r = 0; r < W; r++) d[r] = xp[r];
                    else
                        for (int r = 0; r < W; r++) d[r] = r0 + r < n ? xp[r] : 0;
                }
        }
        return;
    }
    // X(r, .) is contiguous (or neither is): panel by panel
    for (int r0 = 0; r0 < n; r0 += W, dst += (size_t)W * kc) {
        const real *xr = x + r0 * s_r;
        int w = imin(W, n - r0), p = 0;
        if (s_p == 1 && pack_panel) p = pack_panel(dst, xr, s_r, w, imin(W, n - r0 - w), kc, W);
        for (; p < kc; p++)
            for (int r = 0; r < W; r++) dst[(size_t)p * W + r] = r < w ? xr[r * s_r + p * s_p] : 0;
    }
}

// ----------------------------------------------------------------------------
// micro-kernels: acc[MR][NR] = sum_p a[p][0..MR) (outer) b[p][0..NR), then the mr x nr
// valid corner goes to C: c = acc (add = 0) or c += acc (add = 1). a is an MR-tall
// micro-panel [kc][MR], b an NR-wide one [kc][NR] (64-byte aligned). Each element's sum
// runs over p in order, one multiply-add at a time, in every kernel: the AVX2 and
// AVX-512 kernels (both fused multiply-adds) give the same bits.
typedef void MicroKernel(int kc, const real *restrict a, const real *restrict b,
                         real *restrict c, ptrdiff_t ldc, int mr, int nr, int add);

// The edge path of the AVX2 kernel; also the whole store of the portable kernel. acc is
// [MR][NR] with row stride NR.
static void store_tile(real *restrict c, ptrdiff_t ldc, const real *restrict acc, int NR,
                       int mr, int nr, int add) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[i * ldc + j] = add ? c[i * ldc + j] + acc[i * NR + j] : acc[i * NR + j];
}

// Portable, 6 x 16: one row of the tile at a time, so that its NR accumulators fit in
// vector registers (with all MR x NR of them, the compiler keeps the tile in memory).
#define PORTABLE_MR 6
#define PORTABLE_NR 16
static void micro_portable(int kc, const real *restrict a, const real *restrict b,
                           real *restrict c, ptrdiff_t ldc, int mr, int nr, int add) {
    enum { MR = PORTABLE_MR, NR = PORTABLE_NR };
    real acc[MR * NR];
    for (int i = 0; i < MR; i++) {
        real t[NR] = {0};
        for (int p = 0; p < kc; p++)
            for (int j = 0; j < NR; j++) t[j] += a[p * MR + i] * b[p * NR + j];
        memcpy(acc + i * NR, t, sizeof t);
    }
    store_tile(c, ldc, acc, NR, mr, nr, add);
}

#ifdef MM_X86
// The first and last element of each row of the mr x nr tile of C.
static inline void prefetch_tile(const float *c, ptrdiff_t ldc, int mr, int nr) {
    for (int i = 0; i < mr; i++) {
        prefetch(c + i * ldc);
        prefetch(c + i * ldc + nr - 1);
    }
}

// AVX2 + FMA, 6 x 16 floats: 12 ymm accumulators, plus two B vectors and a broadcast A
// value, fit the 16 ymm registers; KC x NR of B is 16 KB. The 12 accumulators are named
// variables: as an array, GCC keeps them in memory.
#define AVX2_MR 6
#define AVX2_NR 16
TARGET_AVX2 static void micro_avx2(int kc, const float *restrict a, const float *restrict b,
                                   float *restrict c, ptrdiff_t ldc, int mr, int nr, int add) {
    enum { MR = AVX2_MR, NR = AVX2_NR };
    prefetch_tile(c, ldc, mr, nr); // C is needed only at the end: fetch it meanwhile
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    // Unrolled (GCC and Clang read this pragma), the loop runs ~15% faster.
#pragma GCC unroll 4
    for (int p = 0; p < kc; p++, a += MR, b += NR) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), ai;
#define ROW(i)                                      \
        ai = _mm256_broadcast_ss(a + i);            \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0); \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (mr == MR && nr == NR) {
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            if (add) {
                acc[i][0] = _mm256_add_ps(_mm256_loadu_ps(ci), acc[i][0]);
                acc[i][1] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc[i][1]);
            }
            _mm256_storeu_ps(ci, acc[i][0]);
            _mm256_storeu_ps(ci + 8, acc[i][1]);
        }
    } else {
        float tmp[MR * NR];
        for (int i = 0; i < MR; i++) {
            _mm256_storeu_ps(tmp + i * NR, acc[i][0]);
            _mm256_storeu_ps(tmp + i * NR + 8, acc[i][1]);
        }
        store_tile(c, ldc, tmp, NR, mr, nr, add);
    }
}

// AVX-512, 12 x 32 floats: 24 zmm accumulators (two 16-float vectors per row), the two B
// vectors and a broadcast A value use 27 of the 32 zmm registers. Why this shape: per p
// it loads 2 B vectors and 12 A values for 24 multiply-adds (the FMA units, not the
// loads, set the pace; 6 x 16 in ymm loads 8 values for 12), and 24 independent chains
// cover the FMA latency (4 cycles x 2 units) three times over. A wider tile (6 x 64)
// would need a B micro-panel of KC x 64 floats = 64 KB, more than L1; 12 x 32 needs
// 32 KB. 12 divides MC. Edges are masked loads and stores, so no temporary tile.
#define AVX512_MR 12
#define AVX512_NR 32
TARGET_AVX512 static void micro_avx512(int kc, const float *restrict a, const float *restrict b,
                                       float *restrict c, ptrdiff_t ldc, int mr, int nr, int add) {
    enum { MR = AVX512_MR, NR = AVX512_NR };
    prefetch_tile(c, ldc, mr, nr); // C is needed only at the end: fetch it meanwhile
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00,
           c60 = c00, c61 = c00, c70 = c00, c71 = c00, c80 = c00, c81 = c00,
           c90 = c00, c91 = c00, cA0 = c00, cA1 = c00, cB0 = c00, cB1 = c00;
#pragma GCC unroll 2
    for (int p = 0; p < kc; p++, a += MR, b += NR) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16), ai;
#define ROW(i, x)                                   \
        ai = _mm512_set1_ps(a[i]);                  \
        c##x##0 = _mm512_fmadd_ps(ai, b0, c##x##0); \
        c##x##1 = _mm512_fmadd_ps(ai, b1, c##x##1);
        ROW(0, 0) ROW(1, 1) ROW(2, 2) ROW(3, 3) ROW(4, 4) ROW(5, 5)
        ROW(6, 6) ROW(7, 7) ROW(8, 8) ROW(9, 9) ROW(10, A) ROW(11, B)
#undef ROW
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
                         {c60, c61}, {c70, c71}, {c80, c81}, {c90, c91}, {cA0, cA1}, {cB0, cB1}};
    // lanes j < nr of the two vectors of a row
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        if (add) {
            acc[i][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), acc[i][0]);
            acc[i][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), acc[i][1]);
        }
        _mm512_mask_storeu_ps(ci, m0, acc[i][0]);
        _mm512_mask_storeu_ps(ci + 16, m1, acc[i][1]);
    }
}

// The run-time checks (cpuid, and that the OS saves the registers): the AVX-512 kernel
// packs with the AVX2 code.
static int has_avx2_fma(void) {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int has_avx512(void) { return has_avx2_fma() && __builtin_cpu_supports("avx512f"); }
#endif

// ----------------------------------------------------------------------------
// the kernel table and the choice among them

typedef struct {
    const char *name;
    int MR, NR;              // register tile; the packing follows it
    MicroKernel *micro;
    PackPanel *pack_panel;   // fast packing of contiguous rows, or NULL
    int (*supported)(void);  // can this CPU run it (NULL: always)
} Kernel;

// Worst to best: the best one the CPU supports is the default.
static const Kernel kernels[] = {
    {.name = "portable", .MR = PORTABLE_MR, .NR = PORTABLE_NR, .micro = micro_portable},
#ifdef MM_X86
    {.name = "avx2-fma", .MR = AVX2_MR, .NR = AVX2_NR, .micro = micro_avx2,
     .pack_panel = pack_panel_avx2, .supported = has_avx2_fma},
    {.name = "avx512", .MR = AVX512_MR, .NR = AVX512_NR, .micro = micro_avx512,
     .pack_panel = pack_panel_avx2, .supported = has_avx512},
#endif
};
#define NKERNELS ((int)(sizeof kernels / sizeof kernels[0]))

// NULL until the first product (or mm_use_kernel); atomic because the first products
// may come from several threads at once.
static _Atomic(const Kernel *) kernel_in_use;

const char *mm_kernel_list(int i) { return i >= 0 && i < NKERNELS ? kernels[i].name : NULL; }

int mm_use_kernel(const char *name) {
    for (int i = 0; i < NKERNELS; i++)
        if (strcmp(name, kernels[i].name) == 0) {
            if (kernels[i].supported && !kernels[i].supported()) return 2;
            atomic_store(&kernel_in_use, &kernels[i]);
            return 0;
        }
    return 1;
}

int mm_kernel_from_env(char *err) {
    const char *name = getenv("KF_MM_KERNEL");
    if (!name || !*name) return 0;
    int status = mm_use_kernel(name);
    if (status == 0) return 0;
    char names[128] = "";
    for (int i = 0; i < NKERNELS; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                 kernels[i].name);
    return errorf(err, "KF_MM_KERNEL=%s: %s (the kernels of this build: %s)", name,
                  status == 1 ? "no such kernel" : "this CPU cannot run it", names);
}

// The kernel of the products: on first use KF_MM_KERNEL if set (a bad value ends the
// program with exit status 2), else the best the CPU supports.
static const Kernel *kernel(void) {
    const Kernel *k = atomic_load(&kernel_in_use);
    if (k) return k;
    char err[KF_ERRLEN];
    if (mm_kernel_from_env(err)) {
        fprintf(stderr, "error: %s\n", err);
        exit(2);
    }
    int best = 0;
    for (int i = 0; i < NKERNELS; i++)
        if (!kernels[i].supported || kernels[i].supported()) best = i;
    const Kernel *none = NULL; // (unless KF_MM_KERNEL or another thread chose meanwhile)
    atomic_compare_exchange_strong(&kernel_in_use, &none, &kernels[best]);
    return atomic_load(&kernel_in_use);
}

const char *mm_kernel_name(void) {
#ifdef KF_REF
    return "reference";
#else
    return kernel()->name;
#endif
}

// ----------------------------------------------------------------------------
// driver

// Packing buffers, grown on demand and kept by the calling thread (so that concurrent
// callers do not share them): per worker thread a B panel [KC][NC] and an A block [MC][KC].
static _Thread_local real *ws_buf;
static _Thread_local size_t ws_cap; // elements

static real *workspace(size_t n) {
    if (n > ws_cap) {
        free(ws_buf);
        ws_buf = aligned_alloc(64, (n * sizeof(real) + 63) / 64 * 64);
        ws_cap = ws_buf ? n : 0;
    }
    return ws_buf;
}

// C[M,N] (+)= A B with A(i,k) = a[i*a_i + k*a_k], B(k,j) = b[k*b_k + j*b_j].
// Returns -1 (C untouched) if the packing buffers cannot be allocated, else 0.
static int gemm(real *c, const real *a, const real *b, int M, int N, int K,
                ptrdiff_t a_i, ptrdiff_t a_k, ptrdiff_t b_k, ptrdiff_t b_j, int ldc,
                WriteMode mode) {
    if (M <= 0 || N <= 0) return 0;
    if (K <= 0) { // the empty sum
        if (mode == OVERWRITE)
            for (int i = 0; i < M; i++) memset(c + (size_t)i * ldc, 0, N * sizeof(real));
        return 0;
    }
    // The threads split C into a grid of tr x tc blocks and work without synchronizing
    // until the end (a barrier per K slice costs more, on a busy machine, than packing
    // twice): each packs the rows of A and the columns of B that its block needs, so A
    // is packed tc times and B tr times; the grid minimizes that. The K slices depend on
    // K only: they fix the summation order.
    const Kernel *ker = kernel();
    const int MR = ker->MR, NR = ker->NR;
    int nt = 1;
#ifdef _OPENMP
    if (!omp_in_parallel())
        nt = (int)fmin(omp_get_max_threads(), fmax(1.0, (double)M * N * K / MM_THREAD_MIN));
#endif
    int tr = 1, tc = 1;
    double least = -1;
    for (int r = 1; r <= nt; r++) {
        int q = nt / r;
        if (nt % r || r > ceil_div(M, MR) || q > ceil_div(N, NR)) continue;
        double cost = (double)q * M + (double)r * N;
        if (least < 0 || cost < least) least = cost, tr = r, tc = q;
    }
    int mb = round_up(ceil_div(M, tr), MR), nb = round_up(ceil_div(N, tc), NR); // a thread's block
    tr = ceil_div(M, mb), tc = ceil_div(N, nb);
    int kc = mm_k_slice(K);
    int mc = round_up(ceil_div(mb, ceil_div(mb, MC)), MR);
    int nc = round_up(ceil_div(nb, ceil_div(nb, NC)), NR);
    size_t line = 64 / sizeof(real); // each thread's buffers start on a cache line
    size_t per_thread = ((size_t)kc * nc + (size_t)mc * kc + line - 1) / line * line;
    real *ws = workspace((size_t)tr * tc * per_thread);
    if (!ws) return -1;

    OMP(parallel for schedule(static, 1) num_threads(tr * tc))
    for (int t = 0; t < tr * tc; t++) {
        real *pb = ws + t * per_thread; // B [kc][nc] as NR-wide micro-panels [kc][NR]
        real *pa = pb + (size_t)kc * nc; // A [mc][kc] as MR-tall micro-panels [kc][MR]
        int m0 = t / tc * mb, m1 = imin(M, m0 + mb);
        int n0 = t % tc * nb, n1 = imin(N, n0 + nb);
        for (int jc = n0; jc < n1; jc += nc) {
            int ncur = imin(nc, n1 - jc);
            for (int pc = 0; pc < K; pc += kc) {
                int kcur = imin(kc, K - pc);
                int add = mode == ACCUMULATE || pc > 0;   // later K slices add to the first
                // the columns of B are the rows of its panels
                pack(pb, b + pc * b_k + jc * b_j, b_j, b_k, ncur, kcur, NR, ker->pack_panel);
                for (int ic = m0; ic < m1; ic += mc) {
                    int mcur = imin(mc, m1 - ic);
                    pack(pa, a + ic * a_i + pc * a_k, a_i, a_k, mcur, kcur, MR, ker->pack_panel);
                    for (int jr = 0; jr < ncur; jr += NR)
                        for (int ir = 0; ir < mcur; ir += MR)
                            ker->micro(kcur, pa + (size_t)ir * kcur, pb + (size_t)jr * kcur,
                                       c + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                                       imin(MR, mcur - ir), imin(NR, ncur - jr), add);
                }
            }
        }
    }
    return 0;
}

// The reference loops below give the answer when the packing buffers cannot be
// allocated, and always in the `make REF=1` build (KF_REF).
#ifdef KF_REF
#define MM_REF 1
#else
#define MM_REF 0
#endif
void mm_nt(real *c, const real *a, const real *b, int M, int N, int K,
           int lda, int ldb, int ldc, WriteMode mode) {
    if (MM_REF || gemm(c, a, b, M, N, K, lda, 1, 1, ldb, ldc, mode))
        mm_nt_ref(c, a, b, M, N, K, lda, ldb, ldc, mode);
}
void mm_nn(real *c, const real *a, const real *b, int M, int N, int K,
           int lda, int ldb, int ldc, WriteMode mode) {
    if (MM_REF || gemm(c, a, b, M, N, K, lda, 1, ldb, 1, ldc, mode))
        mm_nn_ref(c, a, b, M, N, K, lda, ldb, ldc, mode);
}
void mm_tn(real *c, const real *a, const real *b, int M, int N, int K,
           int lda, int ldb, int ldc, WriteMode mode) {
    if (MM_REF || gemm(c, a, b, M, N, K, 1, lda, ldb, 1, ldc, mode))
        mm_tn_ref(c, a, b, M, N, K, lda, ldb, ldc, mode);
}

// ----------------------------------------------------------------------------
// reference: one dot product per element, summed in double. Written out per case rather
// than through the strided driver, so that the oracle shares no indexing with it.

void mm_nt_ref(real *c, const real *a, const real *b, int M, int N, int K,
               int lda, int ldb, int ldc, WriteMode mode) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)a[(size_t)i * lda + k] * b[(size_t)j * ldb + k];
            real *cij = &c[(size_t)i * ldc + j];
            *cij = (real)(mode == ACCUMULATE ? *cij + s : s);
        }
}
void mm_nn_ref(real *c, const real *a, const real *b, int M, int N, int K,
               int lda, int ldb, int ldc, WriteMode mode) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)a[(size_t)i * lda + k] * b[(size_t)k * ldb + j];
            real *cij = &c[(size_t)i * ldc + j];
            *cij = (real)(mode == ACCUMULATE ? *cij + s : s);
        }
}
void mm_tn_ref(real *c, const real *a, const real *b, int M, int N, int K,
               int lda, int ldb, int ldc, WriteMode mode) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)a[(size_t)k * lda + i] * b[(size_t)k * ldb + j];
            real *cij = &c[(size_t)i * ldc + j];
            *cij = (real)(mode == ACCUMULATE ? *cij + s : s);
        }
}
