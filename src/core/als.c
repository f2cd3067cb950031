/* als.c - implicit ALS training (see als.h for the method and guarantees). */
#include "recd/als.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "recd/err.h"
#include "recd/foldin.h"
#include "recd/rng.h"

/* Rows a worker claims at a time: large enough that the shared counter is
 * not contended, small enough that skewed row lengths (a few heavy users)
 * still spread over both cores. */
#define ALS_CHUNK 64

static uint32_t als__stride(uint32_t k) {
  return (k + 15u) & ~15u;
}

static void *als__alloc_rows(uint32_t n, uint32_t stride) {
  size_t bytes = (size_t)(n ? n : 1) * stride * sizeof(float);
  bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple */
  void *p = aligned_alloc(64, bytes);
  if (p != NULL)
    memset(p, 0, bytes);
  return p;
}

int als_factors_init(als_factors_t *f, uint32_t n_users, uint32_t n_items,
                     const params_t *p) {
  memset(f, 0, sizeof *f);
  f->n_users = n_users;
  f->n_items = n_items;
  f->k = p->factors;
  f->stride = als__stride(p->factors);
  f->X = als__alloc_rows(n_users, f->stride);
  f->Y = als__alloc_rows(n_items, f->stride);
  if (f->X == NULL || f->Y == NULL) {
    als_factors_free(f);
    return RECD_ENOMEM;
  }
  /* Small random start: large enough to break the symmetry between
   * factors, small enough that the first sweep is dominated by the data. */
  rng_t r;
  rng_seed(&r, p->seed);
  for (uint32_t i = 0; i < n_items; i++)
    for (uint32_t j = 0; j < f->k; j++)
      f->Y[(size_t)i * f->stride + j] = (float)(rng_normal(&r) * 0.01);
  for (uint32_t u = 0; u < n_users; u++)
    for (uint32_t j = 0; j < f->k; j++)
      f->X[(size_t)u * f->stride + j] = (float)(rng_normal(&r) * 0.01);
  return 0;
}

void als_factors_free(als_factors_t *f) {
  free(f->X);
  free(f->Y);
  f->X = f->Y = NULL;
}

void als_gram(const float *F, uint32_t n, uint32_t k, uint32_t stride, float *G) {
  memset(G, 0, (size_t)k * k * sizeof *G);
  if (n > 0)
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)n, 1.0f, F,
                (int)stride, 0.0f, G, (int)k);
  for (uint32_t i = 0; i < k; i++) /* mirror: callers use the full matrix */
    for (uint32_t j = 0; j < i; j++)
      G[(size_t)i * k + j] = G[(size_t)j * k + i];
}

/* The CG row update below uses its own small vector kernels instead of
 * BLAS-1/2 calls. At k = 64 a cblas_sdot/saxpy call does so little work that
 * the call, argument checks and kernel dispatch were about half of its cost,
 * and cblas_ssymv takes a lock (its buffer allocation) on every call. The
 * kernels also make the rounding independent of the BLAS build: every sum
 * has a fixed order that depends only on k, never on alignment, thread,
 * how rows are grouped or which version (baseline, AVX2 or AVX-512) runs,
 * so the model bytes are the same for any thread count and instruction
 * set. The versions agree bit for bit because each does the same IEEE
 * operations on the same lanes, only in wider or narrower registers, and
 * ISO C mode (-std=c11) does not contract a*b+c into an FMA, whatever the
 * target.
 *
 * The fixed orders:
 * - a dot product is summed in 16 lanes (lane l takes the terms j = l mod
 *   16) over the padded length kp = k rounded up to 16 (<= stride), then
 *   the lanes are added in the fixed tree of ALS_LANES_SUM. Padding is zero
 *   in factor rows and in the CG vectors, so the extra terms add exactly
 *   +0, and without a tail loop the lanes stay in registers;
 * - element i of G v: ((0 + v_0 G_0i) + v_1 G_1i) + ... over j = 0 .. k-1;
 * - element q of the observations' part of A v (or of the residual):
 *   out_q + coef_0 y_0q + coef_1 y_1q + ... left to right over the
 *   observations in their stored order.
 * Any blocking that keeps these orders gives the same bits: the kernels
 * take observations 4 (AVX-512: 8) at a time, sharing the loads of v and
 * of out, and the G v of several rows in one pass over G.
 */

/* Rows updated in lock step (als__cg_group): one pass over G computes
 * G d for all of them. Grouping rows so that their histories stay in L2
 * between two CG steps (fewer rows per group) was measured slower on
 * movielens-1m than full groups: the rows come in through the prefetches
 * of als__obs_apply either way, and a G d pass for fewer vectors reads G
 * from L2 more often. */
#define ALS_GROUP_MAX 8

/* The kernels must be inlined into each instruction-set version of
 * als__cg_group(): called out of line they would only exist in the
 * baseline (SSE2) version. */
#if defined(__GNUC__)
#define ALS_INLINE static inline __attribute__((always_inline))
#else
#define ALS_INLINE static inline
#endif

/* The 16 lanes are two 8-float vectors (lo: j mod 16 < 8, hi: the rest),
 * of a GNU C vector type, as plain loops of this shape were vectorised
 * across the wrong dimension; other compilers get a struct with the same
 * lane-wise arithmetic in scalar C (same bits). Macros rather than
 * functions, so that no 32-byte vector is ever passed by value (an ABI that
 * differs between the versions; GCC warns with -Wpsabi). */
#if defined(__GNUC__)
typedef float als__v8 __attribute__((vector_size(32)));
#define ALS_V8_ZERO ((als__v8){0, 0, 0, 0, 0, 0, 0, 0})
#define ALS_V8_BCAST(s) ((als__v8){(s), (s), (s), (s), (s), (s), (s), (s)})
#define ALS_V8_MULADD(acc, a, b) ((acc) += (a) * (b)) /* two roundings: no FMA */
#define ALS_V8_LANE(v, l) ((v)[l])
/* Unaligned loads and stores (the element alignment, as _mm256_loadu_ps),
 * allowed to alias the floats they touch. */
typedef float als__v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define ALS_V8_LOAD(src) (*(const als__v8u *)(const void *)(src))
#define ALS_V8_STORE(dst, v) (*(als__v8u *)(void *)(dst) = (v))
#define ALS_PREFETCH(p) __builtin_prefetch((p), 0, 3)
/* Loops over a micro-kernel's registers: unrolled, so that they are
 * registers. */
#define ALS_UNROLL _Pragma("GCC unroll 8")
#else
typedef struct als__v8 {
  float f[8];
} als__v8;
#define ALS_V8_ZERO ((als__v8){{0}})
#define ALS_V8_BCAST(s) ((als__v8){{(s), (s), (s), (s), (s), (s), (s), (s)}})
#define ALS_V8_MULADD(acc, a, b)                                               \
  do {                                                                         \
    const als__v8 a_ = (a), b_ = (b);                                          \
    for (int l_ = 0; l_ < 8; l_++)                                             \
      (acc).f[l_] += a_.f[l_] * b_.f[l_];                                      \
  } while (0)
#define ALS_V8_LANE(v, l) ((v).f[l])
static inline als__v8 als__v8_load(const float *src) {
  als__v8 v;
  memcpy(&v, src, sizeof v);
  return v;
}
#define ALS_V8_LOAD(src) als__v8_load(src)
#define ALS_V8_STORE(dst, v) memcpy((dst), &(v), sizeof(als__v8))
#define ALS_PREFETCH(p) ((void)(p))
#define ALS_UNROLL
#endif

/* (lo + hi) summed over lanes as ((0+4) + (2+6)) + ((1+5) + (3+7)). */
#define ALS_LANES_SUM(lo, hi)                                                  \
  (((ALS_V8_LANE(lo, 0) + ALS_V8_LANE(hi, 0)) + (ALS_V8_LANE(lo, 4) + ALS_V8_LANE(hi, 4))) + \
   ((ALS_V8_LANE(lo, 2) + ALS_V8_LANE(hi, 2)) + (ALS_V8_LANE(lo, 6) + ALS_V8_LANE(hi, 6)))) + \
  (((ALS_V8_LANE(lo, 1) + ALS_V8_LANE(hi, 1)) + (ALS_V8_LANE(lo, 5) + ALS_V8_LANE(hi, 5))) + \
   ((ALS_V8_LANE(lo, 3) + ALS_V8_LANE(hi, 3)) + (ALS_V8_LANE(lo, 7) + ALS_V8_LANE(hi, 7))))

/* a . b over the padded length kp (a multiple of 16). */
ALS_INLINE float als__dot(const float *restrict a, const float *restrict b,
                          uint32_t kp) {
  als__v8 lo = ALS_V8_ZERO, hi = ALS_V8_ZERO;
  for (uint32_t j = 0; j < kp; j += 16) {
    ALS_V8_MULADD(lo, ALS_V8_LOAD(a + j), ALS_V8_LOAD(b + j));
    ALS_V8_MULADD(hi, ALS_V8_LOAD(a + j + 8), ALS_V8_LOAD(b + j + 8));
  }
  return ALS_LANES_SUM(lo, hi);
}

/* The coefficient of observation (c, s = y . v) in the observations' part
 * of A v: c - (c-1) s in the residual b - A x, (c-1) s in A d. */
#define ALS_COEF(c, s, resid) ((resid) ? (c) - ((c) - 1.0f) * (s) : ((c) - 1.0f) * (s))

/* out[q] = out[q] + coef[0] y0[q] + ... + coef[3] y3[q] for q < k (the
 * padding of out is never written). */
ALS_INLINE void als__axpy4(const float *restrict y0, const float *restrict y1,
                           const float *restrict y2, const float *restrict y3,
                           const float *coef, uint32_t k, float *restrict out) {
  const uint32_t k8 = k & ~7u;
  const als__v8 c0 = ALS_V8_BCAST(coef[0]), c1 = ALS_V8_BCAST(coef[1]);
  const als__v8 c2 = ALS_V8_BCAST(coef[2]), c3 = ALS_V8_BCAST(coef[3]);
  uint32_t q = 0;
  for (; q < k8; q += 8) {
    als__v8 o = ALS_V8_LOAD(out + q);
    ALS_V8_MULADD(o, c0, ALS_V8_LOAD(y0 + q));
    ALS_V8_MULADD(o, c1, ALS_V8_LOAD(y1 + q));
    ALS_V8_MULADD(o, c2, ALS_V8_LOAD(y2 + q));
    ALS_V8_MULADD(o, c3, ALS_V8_LOAD(y3 + q));
    ALS_V8_STORE(out + q, o);
  }
  for (; q < k; q++)
    out[q] = out[q] + coef[0] * y0[q] + coef[1] * y1[q] + coef[2] * y2[q] +
             coef[3] * y3[q];
}

/* Four observations: s_b = y_b . v, summed exactly as als__dot() sums it
 * (the four share every load of v), then the update of out. The rows of
 * the next block (yn) are prefetched meanwhile, one line of each per
 * 16-float step: a row of the fixed side is 1 KB at k = 256, and its first
 * touch in a half-sweep comes from L3 or memory. */
ALS_INLINE void als__obs_block4(const float *const *y, const float *const *yn,
                                const float *restrict conf, const float *restrict v,
                                uint32_t k, uint32_t kp, int resid, float *restrict out) {
  const float *restrict y0 = y[0], *restrict y1 = y[1], *restrict y2 = y[2],
                        *restrict y3 = y[3];
  als__v8 l0 = ALS_V8_ZERO, h0 = ALS_V8_ZERO, l1 = ALS_V8_ZERO, h1 = ALS_V8_ZERO;
  als__v8 l2 = ALS_V8_ZERO, h2 = ALS_V8_ZERO, l3 = ALS_V8_ZERO, h3 = ALS_V8_ZERO;
  for (uint32_t j = 0; j < kp; j += 16) {
    ALS_PREFETCH(yn[0] + j);
    ALS_PREFETCH(yn[1] + j);
    ALS_PREFETCH(yn[2] + j);
    ALS_PREFETCH(yn[3] + j);
    const als__v8 vl = ALS_V8_LOAD(v + j), vh = ALS_V8_LOAD(v + j + 8);
    ALS_V8_MULADD(l0, ALS_V8_LOAD(y0 + j), vl);
    ALS_V8_MULADD(h0, ALS_V8_LOAD(y0 + j + 8), vh);
    ALS_V8_MULADD(l1, ALS_V8_LOAD(y1 + j), vl);
    ALS_V8_MULADD(h1, ALS_V8_LOAD(y1 + j + 8), vh);
    ALS_V8_MULADD(l2, ALS_V8_LOAD(y2 + j), vl);
    ALS_V8_MULADD(h2, ALS_V8_LOAD(y2 + j + 8), vh);
    ALS_V8_MULADD(l3, ALS_V8_LOAD(y3 + j), vl);
    ALS_V8_MULADD(h3, ALS_V8_LOAD(y3 + j + 8), vh);
  }
  float coef[4];
  coef[0] = ALS_COEF(conf[0], ALS_LANES_SUM(l0, h0), resid);
  coef[1] = ALS_COEF(conf[1], ALS_LANES_SUM(l1, h1), resid);
  coef[2] = ALS_COEF(conf[2], ALS_LANES_SUM(l2, h2), resid);
  coef[3] = ALS_COEF(conf[3], ALS_LANES_SUM(l3, h3), resid);
  als__axpy4(y0, y1, y2, y3, coef, k, out);
}

/* out[g] = G v[g] for m vectors (m <= ALS_GROUP_MAX), G the full symmetric
 * k x k matrix in rows of kp floats (zero from k on): out[g] accumulates
 * rows of G (the columns, by symmetry) scaled by v[g][j], 4 rows at a time
 * (one load and store of out per 4), as plain loops the compiler
 * vectorises with whatever the baseline has (SSE2 on x86-64, where the
 * register blocks of the AVX2 and AVX-512 versions below would not fit and
 * went through memory). Each 4 rows of G (4 KB at k = 256) serve all m
 * vectors from L1, where one G v at a time read all of G from L2 for every
 * vector. Element i of out[g] is ((0 + v_0 G_0i) + v_1 G_1i) + ... in the
 * order j = 0, 1, 2, ... (C evaluates a + b + c as (a + b) + c); the
 * padding of out is never written. */
ALS_INLINE void als__gemm_loops(const float *restrict Gp, uint32_t k, uint32_t kp,
                                const float *const *v, float *const *out, uint32_t m) {
  for (uint32_t g = 0; g < m; g++)
    for (uint32_t i = 0; i < k; i++)
      out[g][i] = 0.0f;
  uint32_t j = 0;
  for (; j + 4 <= k; j += 4) {
    const float *restrict g0 = Gp + (size_t)j * kp, *restrict g1 = g0 + kp;
    const float *restrict g2 = g1 + kp, *restrict g3 = g2 + kp;
    for (uint32_t g = 0; g < m; g++) {
      float *restrict o = out[g];
      const float v0 = v[g][j], v1 = v[g][j + 1], v2 = v[g][j + 2], v3 = v[g][j + 3];
      for (uint32_t i = 0; i < k; i++)
        o[i] = o[i] + v0 * g0[i] + v1 * g1[i] + v2 * g2[i] + v3 * g3[i];
    }
  }
  for (; j < k; j++) {
    const float *restrict gj = Gp + (size_t)j * kp;
    for (uint32_t g = 0; g < m; g++) {
      float *restrict o = out[g];
      const float vj = v[g][j];
      for (uint32_t i = 0; i < k; i++)
        o[i] = o[i] + vj * gj[i];
    }
  }
}

/* The kernels of the AVX2 and AVX-512 versions: G v with register blocks
 * in 8-float vectors (AVX2) and 16-float vectors (one zmm register each:
 * AVX-512), and the observations 8 at a time in 16-float vectors, whose
 * sums fit the 32 registers of AVX-512. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define ALS_X86_VERSIONS 1
/* The AVX-512 version's target, and whether this CPU runs it (libgcc's
 * check includes the OS's zmm state). tests/unit/als_wide_emu.c compiles
 * this file a second time with both set to "any CPU": the same wide
 * kernels, as generic vector code (the same element-wise IEEE operations,
 * no FMA), so that test_als checks them where AVX-512 is missing. */
#ifndef ALS_WIDE_TARGET
#define ALS_WIDE_TARGET __attribute__((target("avx512f,avx512vl")))
#define ALS_WIDE_SUPPORTED()                                                   \
  (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&      \
   __builtin_cpu_supports("avx512vl"))
#endif
typedef float als__v16 __attribute__((vector_size(64)));
typedef float als__v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define ALS_V16_ZERO ((als__v16){0})
#define ALS_V16_BCAST(s)                                                       \
  ((als__v16){(s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s), (s)})
#define ALS_V16_LOAD(src) (*(const als__v16u *)(const void *)(src))
#define ALS_V16_STORE(dst, v) (*(als__v16u *)(void *)(dst) = (v))
#define ALS_V16_MULADD(acc, a, b) ((acc) += (a) * (b)) /* two roundings: no FMA */
#define ALS_V16_LANE(v, l) ((v)[l])
/* The same G v products (als__gemm_loops) with register blocking: a
 * micro-kernel keeps R vectors x U units (8 floats with AVX2, 16 with
 * AVX-512) of out in registers while it runs down j = 0 .. k-1, so G is
 * read once per R vectors, each element of it loaded once for R x 8 (or
 * 16) products, and the R x U independent sums hide the latency of the
 * adds. Element i of out[g] is still ((0 + v_0 G_0i) + v_1 G_1i) + ... in
 * the order j = 0, 1, 2, ...; the padding of out is never written. */
#define ALS_GEMM_MICRO(NAME, VT, W, ZERO, LOAD, STORE, BCAST, MULADD, LANE)    \
  ALS_INLINE void NAME(const float *restrict Gp, uint32_t k, uint32_t kp,      \
                       uint32_t i0, const float *const *v, float *const *out,  \
                       const uint32_t R, const uint32_t U) {                   \
    VT acc[4][4];                                                              \
    ALS_UNROLL for (uint32_t r = 0; r < R; r++)                                \
      ALS_UNROLL for (uint32_t u = 0; u < U; u++) acc[r][u] = ZERO;            \
    const float *gj = Gp + i0;                                                 \
    for (uint32_t j = 0; j < k; j++, gj += kp) {                               \
      VT gv[4];                                                                \
      ALS_UNROLL for (uint32_t u = 0; u < U; u++) gv[u] = LOAD(gj + (W) * u);  \
      ALS_UNROLL for (uint32_t r = 0; r < R; r++) {                            \
        const VT b = BCAST(v[r][j]);                                           \
        ALS_UNROLL for (uint32_t u = 0; u < U; u++) MULADD(acc[r][u], b, gv[u]); \
      }                                                                        \
    }                                                                          \
    ALS_UNROLL for (uint32_t r = 0; r < R; r++)                                \
      ALS_UNROLL for (uint32_t u = 0; u < U; u++) {                            \
        const uint32_t c = i0 + (W) * u;                                       \
        float *o = out[r] + c;                                                 \
        if (c + (W) <= k) {                                                    \
          STORE(o, acc[r][u]);                                                 \
        } else {                                                               \
          for (uint32_t l = 0; c + l < k; l++)                                 \
            o[l] = LANE(acc[r][u], l);                                         \
        }                                                                      \
      }                                                                        \
  }                                                                            \
                                                                               \
  ALS_INLINE void NAME##_cols(const float *restrict Gp, uint32_t k, uint32_t kp, \
                              const float *const *v, float *const *out,       \
                              const uint32_t R, const uint32_t U) {            \
    uint32_t i0 = 0;                                                           \
    for (; i0 + (W) * U <= kp; i0 += (W) * U)                                  \
      NAME(Gp, k, kp, i0, v, out, R, U);                                       \
    for (; i0 < kp; i0 += (W))                                                 \
      NAME(Gp, k, kp, i0, v, out, R, 1);                                       \
  }

ALS_GEMM_MICRO(als__gemm_v8_micro, als__v8, 8, ALS_V8_ZERO, ALS_V8_LOAD, ALS_V8_STORE,
               ALS_V8_BCAST, ALS_V8_MULADD, ALS_V8_LANE)

/* 16 registers (AVX2): R x U = 8 sums, 6 for R = 3. */
ALS_INLINE void als__gemm_v8(const float *restrict Gp, uint32_t k, uint32_t kp,
                          const float *const *v, float *const *out, uint32_t m) {
  uint32_t g = 0;
  for (; g + 4 <= m; g += 4)
    als__gemm_v8_micro_cols(Gp, k, kp, v + g, out + g, 4, 2);
  if (m - g == 3)
    als__gemm_v8_micro_cols(Gp, k, kp, v + g, out + g, 3, 2);
  else if (m - g == 2)
    als__gemm_v8_micro_cols(Gp, k, kp, v + g, out + g, 2, 4);
  else if (m - g == 1)
    als__gemm_v8_micro_cols(Gp, k, kp, v + g, out + g, 1, 4);
}

/* The sums of 8 dot products' lanes, s[b] = ALS_LANES_SUM of a_b's lanes
 * (lane l of the 16 is lane l of lo for l < 8, lane l - 8 of hi), with
 * each level of the tree done for all 8 at once: the same additions of
 * the same pairs, in 8 vector adds and 16 shuffles where one sum at a time
 * took some 40 instructions.
 *   t[l] = a[l] + a[l+8] (l < 8), u[l] = t[l] + t[l+4] (l < 4),
 *   w[l] = u[l] + u[l+2] (l < 2), s = w[0] + w[1]
 * is ((t0 + t4) + (t2 + t6)) + ((t1 + t5) + (t3 + t7)). s[0..7] get the
 * sums (s has room for 16 floats). */
typedef int als__i16 __attribute__((vector_size(64)));
#define ALS_SHUF(a, b, ...) __builtin_shuffle((a), (b), ((als__i16){__VA_ARGS__}))
#define ALS_V16_SUM8(a0, a1, a2, a3, a4, a5, a6, a7, s)                        \
  do {                                                                         \
    /* [t_b | t_b+1] */                                                        \
    const als__v16 t01 = ALS_SHUF(a0, a1, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) + \
                         ALS_SHUF(a0, a1, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    const als__v16 t23 = ALS_SHUF(a2, a3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) + \
                         ALS_SHUF(a2, a3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    const als__v16 t45 = ALS_SHUF(a4, a5, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) + \
                         ALS_SHUF(a4, a5, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    const als__v16 t67 = ALS_SHUF(a6, a7, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) + \
                         ALS_SHUF(a6, a7, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31); \
    /* [u_b | u_b+1 | u_b+2 | u_b+3] */                                        \
    const als__v16 u03 = ALS_SHUF(t01, t23, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) + \
                         ALS_SHUF(t01, t23, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31); \
    const als__v16 u47 = ALS_SHUF(t45, t67, 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) + \
                         ALS_SHUF(t45, t67, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31); \
    /* group b of 4 lanes: [w_b[0], w_b[1], w_b+4[0], w_b+4[1]] */             \
    const als__v16 w = ALS_SHUF(u03, u47, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) + \
                       ALS_SHUF(u03, u47, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31); \
    /* lanes 0..7: s_0 .. s_7 */                                               \
    const als__v16 sv = ALS_SHUF(w, w, 0, 4, 8, 12, 2, 6, 10, 14, 0, 4, 8, 12, 2, 6, 10, 14) + \
                        ALS_SHUF(w, w, 1, 5, 9, 13, 3, 7, 11, 15, 1, 5, 9, 13, 3, 7, 11, 15); \
    ALS_V16_STORE((s), sv);                                                    \
  } while (0)

ALS_INLINE void als__obs_block8_v16(const float *const *y, const float *const *yn,
                                    const float *restrict conf, const float *restrict v,
                                    uint32_t k, uint32_t kp, int resid,
                                    float *restrict out) {
  const float *restrict y0 = y[0], *restrict y1 = y[1], *restrict y2 = y[2],
                        *restrict y3 = y[3], *restrict y4 = y[4], *restrict y5 = y[5],
                        *restrict y6 = y[6], *restrict y7 = y[7];
  als__v16 a0 = ALS_V16_ZERO, a1 = ALS_V16_ZERO, a2 = ALS_V16_ZERO, a3 = ALS_V16_ZERO;
  als__v16 a4 = ALS_V16_ZERO, a5 = ALS_V16_ZERO, a6 = ALS_V16_ZERO, a7 = ALS_V16_ZERO;
  for (uint32_t j = 0; j < kp; j += 16) {
    if ((j & 16) == 0) /* one line in two: measured a little faster than every line */
      for (uint32_t b = 0; b < 8; b++)
        ALS_PREFETCH(yn[b] + j);
    const als__v16 vj = ALS_V16_LOAD(v + j);
    a0 += ALS_V16_LOAD(y0 + j) * vj;
    a1 += ALS_V16_LOAD(y1 + j) * vj;
    a2 += ALS_V16_LOAD(y2 + j) * vj;
    a3 += ALS_V16_LOAD(y3 + j) * vj;
    a4 += ALS_V16_LOAD(y4 + j) * vj;
    a5 += ALS_V16_LOAD(y5 + j) * vj;
    a6 += ALS_V16_LOAD(y6 + j) * vj;
    a7 += ALS_V16_LOAD(y7 + j) * vj;
  }
  float c[16];
  ALS_V16_SUM8(a0, a1, a2, a3, a4, a5, a6, a7, c);
  for (uint32_t b = 0; b < 8; b++)
    c[b] = ALS_COEF(conf[b], c[b], resid);
  const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4], c5 = c[5],
              c6 = c[6], c7 = c[7];
  const als__v16 b0 = ALS_V16_BCAST(c0), b1 = ALS_V16_BCAST(c1), b2 = ALS_V16_BCAST(c2),
                 b3 = ALS_V16_BCAST(c3), b4 = ALS_V16_BCAST(c4), b5 = ALS_V16_BCAST(c5),
                 b6 = ALS_V16_BCAST(c6), b7 = ALS_V16_BCAST(c7);
  const uint32_t k16 = k & ~15u;
  uint32_t q = 0;
  for (; q < k16; q += 16) {
    als__v16 o = ALS_V16_LOAD(out + q);
    o += b0 * ALS_V16_LOAD(y0 + q);
    o += b1 * ALS_V16_LOAD(y1 + q);
    o += b2 * ALS_V16_LOAD(y2 + q);
    o += b3 * ALS_V16_LOAD(y3 + q);
    o += b4 * ALS_V16_LOAD(y4 + q);
    o += b5 * ALS_V16_LOAD(y5 + q);
    o += b6 * ALS_V16_LOAD(y6 + q);
    o += b7 * ALS_V16_LOAD(y7 + q);
    ALS_V16_STORE(out + q, o);
  }
  for (; q < k; q++)
    out[q] = out[q] + c0 * y0[q] + c1 * y1[q] + c2 * y2[q] + c3 * y3[q] + c4 * y4[q] +
             c5 * y5[q] + c6 * y6[q] + c7 * y7[q];
}

ALS_GEMM_MICRO(als__gemm_v16_micro, als__v16, 16, ALS_V16_ZERO, ALS_V16_LOAD, ALS_V16_STORE,
               ALS_V16_BCAST, ALS_V16_MULADD, ALS_V16_LANE)

/* 32 registers: R x U = 16 sums (12 for R = 3, 4 for R = 1). */
ALS_INLINE void als__gemm_v16(const float *restrict Gp, uint32_t k, uint32_t kp,
                              const float *const *v, float *const *out, uint32_t m) {
  uint32_t g = 0;
  for (; g + 4 <= m; g += 4)
    als__gemm_v16_micro_cols(Gp, k, kp, v + g, out + g, 4, 4);
  if (m - g == 3)
    als__gemm_v16_micro_cols(Gp, k, kp, v + g, out + g, 3, 4);
  else if (m - g == 2)
    als__gemm_v16_micro_cols(Gp, k, kp, v + g, out + g, 2, 4);
  else if (m - g == 1)
    als__gemm_v16_micro_cols(Gp, k, kp, v + g, out + g, 1, 4);
}
#endif

/* The observations' part of A v for one row: for each observation j
 * (fixed-side vector y_j, confidence c_j), s = y_j . v and
 * out += ALS_COEF(c_j, s, resid) y_j, in blocks of 4 (wide: 8, the
 * AVX-512 kernel) observations, then one at a time. */
ALS_INLINE void als__obs_apply(const uint32_t *restrict idx,
                               const float *restrict conf, size_t n,
                               const float *restrict fixed, uint32_t stride,
                               uint32_t k, uint32_t kp, const float *restrict v,
                               float *restrict out, int resid, const int wide) {
  const uint32_t nb = wide ? 8 : 4;
  size_t j = 0;
  for (; j + nb <= n; j += nb) {
    const float *y[8], *yn[8];
    for (uint32_t b = 0; b < nb; b++) {
      y[b] = fixed + (size_t)idx[j + b] * stride;
      /* the next block's rows (past the end: this block's again) */
      yn[b] = j + nb + b < n ? fixed + (size_t)idx[j + nb + b] * stride : y[b];
    }
#if defined(ALS_X86_VERSIONS)
    if (wide) {
      als__obs_block8_v16(y, yn, conf + j, v, k, kp, resid, out);
      continue;
    }
#endif
    als__obs_block4(y, yn, conf + j, v, k, kp, resid, out);
  }
  for (; j < n; j++) {
    const float *yj = fixed + (size_t)idx[j] * stride;
    const float sj = als__dot(yj, v, kp);
    const float coef = ALS_COEF(conf[j], sj, resid);
    for (uint32_t q = 0; q < k; q++)
      out[q] = out[q] + coef * yj[q];
  }
}

/* One row of a lock-step group: its observations, its vector and CG state. */
typedef struct als__row {
  const uint32_t *idx;
  const float *conf;
  size_t n;
  float *x;             /* the row being updated (in the model) */
  float *r, *d, *Ad;    /* CG vectors, stride floats each, zero from k on */
  float lambda, rs_old;
  int active;
} als__row_t;

/* The conjugate-gradient update of a group of rows, each warm-started from
 * its x (Takacs et al. 2011, as in the implicit library). For a row,
 * A = G + lambda I + sum (c-1) y y^T and b = sum c y are never formed: A p
 * is computed from G and the row's observations, so a step costs
 * O(k^2 + n k). conf[j] is the confidence of observation j
 * (als__confidences); x and the rows of fixed are zero from k on.
 *
 * The rows take their CG steps in lock step so that one pass over G serves
 * all of them (als__gemm_*); every row does exactly the arithmetic it would
 * do alone, and a row that converges (or whose A looks indefinite through
 * rounding) stops as it would alone while the others go on. isa (a
 * constant after inlining) selects the kernels. */
ALS_INLINE void als__cg_group_body(als__row_t *rw, uint32_t m,
                                   const float *restrict fixed, uint32_t stride,
                                   const float *restrict Gp, uint32_t k,
                                   uint32_t cg_steps, const als_isa_t isa) {
  const uint32_t kp = als__stride(k);
  const int wide = isa == ALS_ISA_AVX512;
#if defined(ALS_X86_VERSIONS)
#define ALS_GEMM(...)                                                          \
  (isa == ALS_ISA_AVX512 ? als__gemm_v16(__VA_ARGS__)                          \
   : isa == ALS_ISA_AVX2 ? als__gemm_v8(__VA_ARGS__)                           \
                         : als__gemm_loops(__VA_ARGS__))
#else
#define ALS_GEMM(...) als__gemm_loops(__VA_ARGS__)
#endif
  const float *vin[ALS_GROUP_MAX];
  float *vout[ALS_GROUP_MAX];
  uint32_t live[ALS_GROUP_MAX];

  /* r = b - A x */
  for (uint32_t g = 0; g < m; g++) {
    vin[g] = rw[g].x;
    vout[g] = rw[g].Ad;
  }
  ALS_GEMM(Gp, k, kp, vin, vout, m);
  for (uint32_t g = 0; g < m; g++) {
    als__row_t *w = &rw[g];
    float *restrict r = w->r, *restrict d = w->d;
    const float *restrict x = w->x, *restrict Ad = w->Ad;
    for (uint32_t i = 0; i < k; i++)
      r[i] = -Ad[i] - w->lambda * x[i];
    als__obs_apply(w->idx, w->conf, w->n, fixed, stride, k, kp, x, r, 1, wide);
    for (uint32_t i = 0; i < k; i++)
      d[i] = r[i];
    w->rs_old = als__dot(r, r, kp);
    w->active = 1;
  }
  for (uint32_t it = 0; it < cg_steps; it++) {
    uint32_t nl = 0;
    for (uint32_t g = 0; g < m; g++) {
      if (rw[g].active && rw[g].rs_old < 1e-20f)
        rw[g].active = 0; /* converged; another step would divide by ~0 */
      if (rw[g].active) {
        vin[nl] = rw[g].d;
        vout[nl] = rw[g].Ad;
        live[nl++] = g;
      }
    }
    if (nl == 0)
      break;
    ALS_GEMM(Gp, k, kp, vin, vout, nl);
    for (uint32_t l = 0; l < nl; l++) {
      als__row_t *w = &rw[live[l]];
      float *restrict x = w->x, *restrict r = w->r, *restrict d = w->d;
      float *restrict Ad = w->Ad;
      for (uint32_t i = 0; i < k; i++)
        Ad[i] += w->lambda * d[i];
      als__obs_apply(w->idx, w->conf, w->n, fixed, stride, k, kp, d, Ad, 0, wide);
      const float dAd = als__dot(d, Ad, kp);
      if (!(dAd > 0.0f)) {
        w->active = 0; /* only rounding can make A look indefinite here */
        continue;
      }
      const float a = w->rs_old / dAd;
      for (uint32_t i = 0; i < k; i++) {
        x[i] += a * d[i];
        r[i] -= a * Ad[i];
      }
      const float rs_new = als__dot(r, r, kp);
      const float beta = rs_new / w->rs_old;
      for (uint32_t i = 0; i < k; i++)
        d[i] = beta * d[i] + r[i];
      w->rs_old = rs_new;
    }
  }
#undef ALS_GEMM
}

/* One version per instruction set where the compiler can (GCC on x86-64),
 * picked at run time (als_isa_default); all give the same bits. */

typedef void (*als__group_fn)(als__row_t *rw, uint32_t m, const float *fixed,
                              uint32_t stride, const float *Gp, uint32_t k,
                              uint32_t cg_steps);

static void als__cg_group_baseline(als__row_t *rw, uint32_t m, const float *fixed,
                                   uint32_t stride, const float *Gp, uint32_t k,
                                   uint32_t cg_steps) {
  als__cg_group_body(rw, m, fixed, stride, Gp, k, cg_steps, ALS_ISA_BASELINE);
}

#if defined(ALS_X86_VERSIONS)
__attribute__((target("avx2"))) static void
als__cg_group_avx2(als__row_t *rw, uint32_t m, const float *fixed, uint32_t stride,
                   const float *Gp, uint32_t k, uint32_t cg_steps) {
  als__cg_group_body(rw, m, fixed, stride, Gp, k, cg_steps, ALS_ISA_AVX2);
}

/* 16-float vectors, and 32 registers: observations 8 at a time. */
ALS_WIDE_TARGET static void
als__cg_group_avx512(als__row_t *rw, uint32_t m, const float *fixed, uint32_t stride,
                     const float *Gp, uint32_t k, uint32_t cg_steps) {
  als__cg_group_body(rw, m, fixed, stride, Gp, k, cg_steps, ALS_ISA_AVX512);
}
#endif

int als_isa_supported(als_isa_t isa) {
#if defined(ALS_X86_VERSIONS)
  __builtin_cpu_init();
  if (isa == ALS_ISA_AVX2)
    return __builtin_cpu_supports("avx2");
  if (isa == ALS_ISA_AVX512)
    return ALS_WIDE_SUPPORTED();
#endif
  return isa == ALS_ISA_BASELINE;
}

const char *als_isa_name(als_isa_t isa) {
  return isa == ALS_ISA_AVX512 ? "avx512" : isa == ALS_ISA_AVX2 ? "avx2" : "baseline";
}

als_isa_t als_isa_default(void) {
  /* Decided once per process; a race on first use only computes the same
   * value twice. */
  static volatile int chosen = -1;
  if (chosen < 0) {
    int want = ALS_ISA_COUNT - 1; /* the best */
    const char *e = getenv("RECD_ALS_ISA");
    for (int i = 0; e != NULL && i < ALS_ISA_COUNT; i++)
      if (strcmp(e, als_isa_name((als_isa_t)i)) == 0)
        want = i;
    while (want > ALS_ISA_BASELINE && !als_isa_supported((als_isa_t)want))
      want--;
    chosen = want;
  }
  return (als_isa_t)chosen;
}

static als__group_fn als__group_version(als_isa_t isa) {
#if defined(ALS_X86_VERSIONS)
  if (isa == ALS_ISA_AVX512)
    return als__cg_group_avx512;
  if (isa == ALS_ISA_AVX2)
    return als__cg_group_avx2;
#endif
  (void)isa;
  return als__cg_group_baseline;
}

/* Shared state of one half-sweep. */
typedef struct als__job {
  const csr_t *obs;
  const float *conf; /* confidence of every entry of obs */
  float *rows;
  const float *fixed;
  uint32_t stride;
  const float *G;  /* k x k */
  const float *Gp; /* the same in rows of kp floats, zero from k on */
  const params_t *p;
  als__group_fn group;
  atomic_uint_fast32_t next; /* first row of the next unclaimed chunk */
  atomic_int err;            /* first error, 0 if none */
} als__job_t;

static void als__worker(void *arg) {
  als__job_t *job = arg;
  const params_t *p = job->p;
  const uint32_t k = p->factors, stride = job->stride;
  /* Three CG vectors per row of a group, each starting on a 64-byte
   * boundary like the rows. */
  float *tmp = als__alloc_rows(3 * ALS_GROUP_MAX, stride);
  foldin_ws_t ws;
  int have_ws = 0;
  if (tmp == NULL) {
    atomic_store(&job->err, RECD_ENOMEM);
    return;
  }
  if (p->cg_steps == 0) {
    if (foldin_ws_init(&ws, k) != 0) {
      free(tmp);
      atomic_store(&job->err, RECD_ENOMEM);
      return;
    }
    have_ws = 1;
  }
  als__row_t rw[ALS_GROUP_MAX];
  for (uint32_t g = 0; g < ALS_GROUP_MAX; g++) {
    rw[g].r = tmp + (size_t)(3 * g) * stride;
    rw[g].d = tmp + (size_t)(3 * g + 1) * stride;
    rw[g].Ad = tmp + (size_t)(3 * g + 2) * stride;
  }
  for (;;) {
    uint32_t lo = (uint32_t)atomic_fetch_add(&job->next, ALS_CHUNK);
    if (lo >= job->obs->n_rows || atomic_load(&job->err) != 0)
      break;
    uint32_t hi = lo + ALS_CHUNK < job->obs->n_rows ? lo + ALS_CHUNK : job->obs->n_rows;
    if (have_ws) {
      for (uint32_t r = lo; r < hi; r++) {
        const uint64_t b = job->obs->ptr[r], e = job->obs->ptr[r + 1];
        float *x = job->rows + (size_t)r * stride;
        int rc = foldin_solve(job->fixed, stride, job->G, p, job->obs->idx + b,
                              job->obs->val + b, (size_t)(e - b), 0, x, NULL, &ws);
        if (rc != 0) {
          atomic_store(&job->err, rc);
          break;
        }
      }
      continue;
    }
    /* Consecutive rows in groups of ALS_GROUP_MAX (the last one smaller). */
    for (uint32_t r = lo; r < hi;) {
      uint32_t m = 0;
      for (; r < hi && m < ALS_GROUP_MAX; r++, m++) {
        const uint64_t b = job->obs->ptr[r], e = job->obs->ptr[r + 1];
        rw[m].idx = job->obs->idx + b;
        rw[m].conf = job->conf + b;
        rw[m].n = (size_t)(e - b);
        rw[m].x = job->rows + (size_t)r * stride;
        rw[m].lambda = params_lambda(p, (uint32_t)(e - b));
      }
      job->group(rw, m, job->fixed, stride, job->Gp, k, p->cg_steps);
    }
  }
  if (have_ws)
    foldin_ws_free(&ws);
  free(tmp);
}

/* Confidence of every stored entry of obs, or NULL without memory. The
 * confidence of a weight never changes during training, but with the log
 * mode it costs a log1pf, and the CG update needs it 1 + cg_steps times per
 * entry and half-sweep: computed per use it was the largest single cost of
 * training (~30% of the time). Computed once, it costs 4 bytes per entry
 * and side for the whole run. The values are exactly the floats
 * params_confidence() returns, so the model bytes do not change. */
static float *als__confidences(const csr_t *obs, const params_t *p) {
  uint64_t nnz = obs->ptr[obs->n_rows];
  float *c = malloc((size_t)(nnz ? nnz : 1) * sizeof *c);
  if (c == NULL)
    return NULL;
  for (uint64_t j = 0; j < nnz; j++)
    c[j] = params_confidence(p, obs->val[j]);
  return c;
}

static int als__update_side(const csr_t *obs, const float *conf, float *rows,
                            const float *fixed, uint32_t n_fixed, uint32_t stride,
                            const params_t *p, uint32_t threads, als_isa_t isa) {
  const uint32_t k = p->factors, kp = als__stride(k);
  /* The kernels read rows up to k rounded up to 16 (als__dot). */
  if (stride < kp || stride % 16 != 0)
    return RECD_EINVAL;
  if (!als_isa_supported(isa))
    return RECD_EINVAL;
  float *G = malloc((size_t)k * k * sizeof *G);
  float *Gp = als__alloc_rows(k, kp);
  if (G == NULL || Gp == NULL) {
    free(G);
    free(Gp);
    return RECD_ENOMEM;
  }
  als_gram(fixed, n_fixed, k, stride, G);
  for (uint32_t i = 0; i < k; i++)
    memcpy(Gp + (size_t)i * kp, G + (size_t)i * k, (size_t)k * sizeof *G);

  als__job_t job = {.obs = obs, .conf = conf, .rows = rows, .fixed = fixed,
                    .stride = stride, .G = G, .Gp = Gp, .p = p,
                    .group = als__group_version(isa)};
  atomic_init(&job.next, 0);
  atomic_init(&job.err, 0);
  if (threads < 1)
    threads = 1;
  uv_thread_t tid[64];
  if (threads > 64)
    threads = 64;
  uint32_t started = 0;
  /* The calling thread is worker 0; a thread that fails to start only
   * costs parallelism, never correctness. */
  for (uint32_t t = 1; t < threads; t++) {
    if (uv_thread_create(&tid[started], als__worker, &job) != 0)
      break;
    started++;
  }
  als__worker(&job);
  for (uint32_t t = 0; t < started; t++)
    uv_thread_join(&tid[t]);
  free(G);
  free(Gp);
  return atomic_load(&job.err);
}

int als_update_side_isa(const csr_t *obs, float *rows, const float *fixed,
                        uint32_t n_fixed, uint32_t stride, const params_t *p,
                        uint32_t threads, als_isa_t isa) {
  float *conf = als__confidences(obs, p);
  if (conf == NULL)
    return RECD_ENOMEM;
  int rc = als__update_side(obs, conf, rows, fixed, n_fixed, stride, p, threads, isa);
  free(conf);
  return rc;
}

int als_update_side(const csr_t *obs, float *rows, const float *fixed,
                    uint32_t n_fixed, uint32_t stride, const params_t *p,
                    uint32_t threads) {
  return als_update_side_isa(obs, rows, fixed, n_fixed, stride, p, threads,
                             als_isa_default());
}

double als_loss(const csr_t *by_user, const csr_t *by_item, const params_t *p,
                const als_factors_t *f) {
  const uint32_t k = f->k, s = f->stride;
  const csr_t *m = by_user;
  float *G = malloc((size_t)k * k * sizeof *G);
  float *Gx = malloc((size_t)k * sizeof *Gx);
  if (G == NULL || Gx == NULL) {
    free(G);
    free(Gx);
    return NAN;
  }
  als_gram(f->Y, f->n_items, k, s, G);
  double loss = 0.0;
  for (uint32_t u = 0; u < m->n_rows; u++) {
    const float *x = f->X + (size_t)u * s;
    cblas_ssymv(CblasRowMajor, CblasUpper, (int)k, 1.0f, G, (int)k, x, 1, 0.0f, Gx, 1);
    /* x^T G x counts every item as unobserved (c = 1, p = 0); the observed
     * ones are then corrected to c (1 - xy)^2. */
    double lu = cblas_sdot((int)k, x, 1, Gx, 1);
    uint64_t n = m->ptr[u + 1] - m->ptr[u];
    for (uint64_t j = m->ptr[u]; j < m->ptr[u + 1]; j++) {
      double c = params_confidence(p, m->val[j]);
      double xy = cblas_sdot((int)k, x, 1, f->Y + (size_t)m->idx[j] * s, 1);
      lu += (c - 1.0) * xy * xy - 2.0 * c * xy + c;
    }
    lu += params_lambda(p, (uint32_t)n) * cblas_sdot((int)k, x, 1, x, 1);
    loss += lu;
  }
  const csr_t *t = by_item;
  for (uint32_t i = 0; i < t->n_rows; i++) {
    const float *y = f->Y + (size_t)i * s;
    uint64_t n = t->ptr[i + 1] - t->ptr[i];
    loss += params_lambda(p, (uint32_t)n) * cblas_sdot((int)k, y, 1, y, 1);
  }
  free(G);
  free(Gx);
  return loss;
}

static double als__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int als_train(const csr_t *by_user, const csr_t *by_item, const als_opts_t *o,
              als_factors_t *f, als_iter_cb cb, void *cb_arg, char *errbuf) {
  const params_t *p = &o->params;
  if (p->factors == 0 || p->factors != f->k)
    return recd_errf(errbuf, RECD_EINVAL, "als: factors must be >= 1 (got %u)", p->factors);
  if (!(p->lambda > 0.0f) || !isfinite(p->lambda))
    return recd_errf(errbuf, RECD_EINVAL, "als: lambda must be > 0 (got %g)", (double)p->lambda);
  if (!(p->alpha >= 0.0f) || !isfinite(p->alpha))
    return recd_errf(errbuf, RECD_EINVAL, "als: alpha must be >= 0 (got %g)", (double)p->alpha);
  if (p->conf_mode == PARAMS_CONF_LOG && !(p->eps > 0.0f))
    return recd_errf(errbuf, RECD_EINVAL, "als: eps must be > 0 (got %g)", (double)p->eps);
  if (!(p->reg_exponent >= 0.0f && p->reg_exponent <= 2.0f))
    return recd_errf(errbuf, RECD_EINVAL, "als: reg exponent must be in [0, 2] (got %g)",
                     (double)p->reg_exponent);
  if (f->n_users != by_user->n_rows || f->n_items != by_item->n_rows ||
      by_user->n_cols != by_item->n_rows || by_item->n_cols != by_user->n_rows)
    return recd_errf(errbuf, RECD_EINVAL, "als: factors do not match the data set shape");

  float *conf_u = als__confidences(by_user, p);
  float *conf_i = als__confidences(by_item, p);
  if (conf_u == NULL || conf_i == NULL) {
    free(conf_u);
    free(conf_i);
    return recd_errf(errbuf, RECD_ENOMEM, "als: %s", recd_strerror(RECD_ENOMEM));
  }
  const als_isa_t isa = als_isa_default();
  int rc = 0;
  for (uint32_t it = 0; it < p->iterations && rc == 0; it++) {
    double t0 = als__now();
    rc = als__update_side(by_user, conf_u, f->X, f->Y, f->n_items, f->stride, p,
                          o->threads, isa);
    if (rc == 0)
      rc = als__update_side(by_item, conf_i, f->Y, f->X, f->n_users, f->stride, p,
                            o->threads, isa);
    if (rc != 0) {
      recd_errf(errbuf, rc, "als: iteration %u: %s", it + 1, recd_strerror(rc));
      break;
    }
    double secs = als__now() - t0;
    double loss = o->compute_loss ? als_loss(by_user, by_item, p, f) : NAN;
    if (o->progress != NULL) {
      if (o->compute_loss)
        fprintf(o->progress, "iteration %u/%u: %.3f s, loss %.6g\n", it + 1,
                p->iterations, secs, loss);
      else
        fprintf(o->progress, "iteration %u/%u: %.3f s\n", it + 1, p->iterations, secs);
    }
    if (cb != NULL)
      cb(it + 1, loss, secs, cb_arg);
  }
  free(conf_u);
  free(conf_i);
  return rc;
}
