/* foldin.c - the ALS user step (see foldin.h).
 *
 * One solve is four phases, each O(n) or better except the last:
 *
 *   1. collect  validate the weights and merge duplicate items (a strictly
 *               ascending history, which is what the trainer's CSR rows are,
 *               cannot hold duplicates and skips the hash table);
 *   2. cap      when more distinct items than `cap` remain, keep the cap
 *               strongest with a bounded heap: O(n log cap) worst case and
 *               about O(n) in practice (most entries lose one comparison
 *               against the heap root), never a sort of the whole history;
 *   3. order    the entries in ascending item order (ws->order, ws->idx),
 *               weights become confidences c_i (ws->conf);
 *   4. solve    A x = b, A = YtY + sum (c_i - 1) y_i y_i^T + lambda_u I,
 *               b = sum c_i y_i, to a certified accuracy (below).
 *
 * Phase 4 used to form A (n k^2) and factor it (k^3 / 3): at k = 256 some
 * 130-300 us whatever the history (OpenBLAS's spotrf runs at ~20 GFLOP/s
 * there), which bounded the default model's RECOMMEND. Now:
 *
 * An eigenbasis per model. YtY is the same for every customer: with
 * YtY = E diag(l) E^T computed once (dsyevd, kept in a registry shared by
 * all threads, see "The registry") and z_i = E^T y_i cached per item, A in
 * the eigenbasis is
 *
 *   E^T A E = diag(l + lambda_u) + Z^T (C - I) Z = S^-1 (I + V^T V) S^-1,
 *   S = diag(1 / sqrt(l_q + lambda_u)),  V = (C - I)^1/2 Z S
 *
 * (Z the n x k rows z_i, V's rows sqrt(c_i - 1) S z_i), and I + V^T V is
 * solved by conjugate gradients from the cached rows alone: 4 n k flops per
 * step, no k x k matrix. With the frequency-scaled regularisation
 * (lambda_u = lambda n^nu) V^T V stays small against I: on the demo shop at
 * k = 256 its largest eigenvalue is 0.1-0.7 for histories of 150-450 items,
 * and CG reaches float precision in 4-6 steps. Float is not enough for the
 * answer, so a solve is two rounds of refinement: round 1 solves x' from the
 * right-hand side S E^T b = S sum c_i z_i in float, then computes the
 * eigenbasis residual r' = E^T b - E^T A E x' in double (z_i kept as two
 * floats h + l that add up to it in double); round 2 solves for the
 * correction, and x = E x' (one k x k product in double) goes to the check.
 *
 * The check: every answer is certified against the float inputs
 * themselves, not against the cached basis: r = b - A x computed in double
 * straight from Y, YtY, the confidences and lambda_u (one pass over YtY and
 * over the history's rows). A >= (lambda_u + l_min) I (l_min the smallest
 * eigenvalue of YtY), so |x - x*| <= |r| / (lambda_u + l_min) for the exact
 * solution x*, and x is accepted only when that bound is below
 * FOLDIN__TOL |x| (2^-36): x rounded to float is then x* rounded to float
 * but for components within 2^-36 of a rounding boundary, and every score
 * y_i . x is within |y_i| 2^-36 |x| of the exact one. Whatever went wrong
 * before it (a cached row that is stale because a model was freed and
 * another loaded at the same address, CG that did not converge) can only
 * make the check fail, and then the solve falls back.
 *
 * Measured on the demo shop (online-retail, k = 256, its customers' own
 * histories, bench/README.md "The fold-in"): 8-30 us for histories of
 * 1-50 items where the Cholesky solve took 125-180 us, 80-110 us for
 * 100-199 items (250-300).
 *
 * The fallback (no eigenbasis, lambda_u + l_min <= 0, a history longer than
 * FOLDIN__EIGEN_MAX_N, or a round that fails to halve the residual: huge
 * confidences) is the Cholesky path: A formed in float and factored
 * exactly as before the eigenbasis (foldin__factor), then the same
 * refinement with P = (L L^T)^-1, residual and check. foldin_factor() forms
 * that factor on demand for WITHREASONS, from the same code, so its
 * reasons are the same bits as before.
 *
 * The answers' cache: a customer's history comes back with every page
 * view, so each basis keeps recent answers (x in double), and a cached x
 * that passes the check is the answer (see "The answers' cache").
 *
 * Determinism: every kernel below sums in a fixed order that depends only
 * on k and n (never on alignment, threads or the AVX2/SSE2 clone, as in
 * als.c), and the path a solve takes depends only on its inputs and the
 * model (a solve waits for the basis being built rather than take another
 * path meanwhile), so the same history gives the same bits. Two paths
 * (eigenbasis, Cholesky) agree to the certified 2^-36, not bit for bit.
 *
 * OOM policy: every allocation failure of the workspace is returned as
 * RECD_ENOMEM and leaves the workspace as it was (still valid, just not
 * grown). The registry's memory is mapped, not allocated: without it a
 * solve takes the Cholesky path, which is never an error.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "recd/foldin.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Certified relative error of x (see the top of the file). */
#define FOLDIN__TOL 0x1p-36
/* Refinement rounds before giving up on a path; each must at least halve
 * the residual. Two certify a well-conditioned system. */
#define FOLDIN__ROUNDS 8
/* CG steps per round and their stopping point (|residual|^2 relative to
 * the start, float precision). A round that needs more than the steps
 * still reduces the error; the round's halving test judges it. */
#define FOLDIN__CG_STEPS 48
#define FOLDIN__CG_TOL2 0x1p-44f
/* Longest history the eigenbasis path takes: its scratch for rows the
 * model's cache lacks is n x 2 kp floats (the trainer's item step can fold
 * in hundreds of thousands of users; Cholesky's is FOLDIN_BLOCK rows). */
#define FOLDIN__EIGEN_MAX_N 8192

int foldin_ws_init(foldin_ws_t *ws, uint32_t k) {
  memset(ws, 0, sizeof *ws);
  if (k == 0)
    k = 1; /* keep every pointer valid; foldin_solve rejects k = 0 itself */
  const size_t cap = 64; /* a typical capped history; grows on demand */
  ws->A = malloc((size_t)k * k * sizeof *ws->A);
  ws->rows = malloc((size_t)FOLDIN_BLOCK * k * sizeof *ws->rows);
  const size_t kp = (k + 7u) & ~7u;
  ws->dv = malloc(8 * kp * sizeof *ws->dv);
  ws->fv = malloc(8 * kp * sizeof *ws->fv);
  ws->order = malloc(cap * sizeof *ws->order);
  ws->conf = malloc(cap * sizeof *ws->conf);
  ws->idx = malloc(cap * sizeof *ws->idx);
  ws->zp = malloc(2 * cap * sizeof *ws->zp);
  if (ws->A == NULL || ws->rows == NULL || ws->dv == NULL ||
      ws->fv == NULL || ws->order == NULL || ws->conf == NULL || ws->idx == NULL ||
      ws->zp == NULL) {
    foldin_ws_free(ws);
    return RECD_ENOMEM;
  }
  ws->k = k;
  ws->cap = cap;
  return 0;
}

void foldin_ws_free(foldin_ws_t *ws) {
  free(ws->A);
  free(ws->rows);
  free(ws->dv);
  free(ws->fv);
  free(ws->order);
  free(ws->conf);
  free(ws->idx);
  free(ws->zp);
  free(ws->slots);
  free(ws->zs);
  memset(ws, 0, sizeof *ws);
}

/* Makes the k-sized buffers hold k factors. The old contents need not
 * survive, so new buffers replace old ones only once all exist. */
static int foldin__grow_k(foldin_ws_t *ws, uint32_t k) {
  if (k <= ws->k)
    return 0;
  float *A = malloc((size_t)k * k * sizeof *A);
  float *rows = malloc((size_t)FOLDIN_BLOCK * k * sizeof *rows);
  const size_t kp = (k + 7u) & ~7u;
  double *dv = malloc(8 * kp * sizeof *dv);
  float *fv = malloc(8 * kp * sizeof *fv);
  if (A == NULL || rows == NULL || dv == NULL || fv == NULL) {
    free(A);
    free(rows);
    free(dv);
    free(fv);
    return RECD_ENOMEM;
  }
  free(ws->A);
  free(ws->rows);
  free(ws->dv);
  free(ws->fv);
  ws->A = A;
  ws->rows = rows;
  ws->dv = dv;
  ws->fv = fv;
  ws->k = k;
  /* zs's rows are kp long: regrown for the new k when needed. */
  free(ws->zs);
  ws->zs = NULL;
  ws->zs_cap = 0;
  return 0;
}

/* Makes order/conf/idx/zp hold n entries, growing geometrically so that a
 * slowly growing history does not reallocate on every request. */
static int foldin__grow_n(foldin_ws_t *ws, size_t n) {
  if (n <= ws->cap)
    return 0;
  size_t cap = ws->cap * 2 > n ? ws->cap * 2 : n;
  uint32_t *order = malloc(cap * sizeof *order);
  float *conf = malloc(cap * sizeof *conf);
  uint32_t *idx = malloc(cap * sizeof *idx);
  const float **zp = malloc(2 * cap * sizeof *zp);
  if (order == NULL || conf == NULL || idx == NULL || zp == NULL) {
    free(order);
    free(conf);
    free(idx);
    free(zp);
    return RECD_ENOMEM;
  }
  free(ws->order);
  free(ws->conf);
  free(ws->idx);
  free(ws->zp);
  ws->order = order;
  ws->conf = conf;
  ws->idx = idx;
  ws->zp = zp;
  ws->cap = cap;
  return 0;
}

/* Makes zs hold n rows (high and low parts) of kp floats, growing
 * geometrically. Most solves find every row in the model's cache and never
 * need it. */
static int foldin__grow_zs(foldin_ws_t *ws, size_t n) {
  if (n <= ws->zs_cap)
    return 0;
  const size_t kp = (ws->k + 7u) & ~7u;
  size_t cap = ws->zs_cap * 2 > n ? ws->zs_cap * 2 : n;
  float *zs = malloc(2 * cap * kp * sizeof *zs);
  if (zs == NULL)
    return RECD_ENOMEM;
  free(ws->zs);
  ws->zs = zs;
  ws->zs_cap = cap;
  return 0;
}

/* Heapsort of the entries order/conf[0, n) by items[order[j]] ascending:
 * in place (no allocation on the request path), O(n log n). Items are
 * distinct here (duplicates were merged), so the order is total: any
 * sort gives the same result. */
static void foldin__sift_item(uint32_t *order, float *conf, const uint32_t *items, size_t root,
                         size_t n) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n)
      return;
    if (child + 1 < n && items[order[child + 1]] > items[order[child]])
      child++;
    if (items[order[root]] >= items[order[child]])
      return;
    const uint32_t o = order[root];
    order[root] = order[child];
    order[child] = o;
    const float c = conf[root];
    conf[root] = conf[child];
    conf[child] = c;
    root = child;
  }
}

static void foldin__sort_by_item(uint32_t *order, float *conf, const uint32_t *items, size_t n) {
  if (n <= 24) {
    /* Insertion sort: a short history (most are) sorts in a few dozen
     * comparisons that the branch predictor mostly gets right. */
    for (size_t i = 1; i < n; i++) {
      const uint32_t o = order[i], it = items[o];
      const float c = conf[i];
      size_t j = i;
      for (; j > 0 && items[order[j - 1]] > it; j--) {
        order[j] = order[j - 1];
        conf[j] = conf[j - 1];
      }
      order[j] = o;
      conf[j] = c;
    }
    return;
  }
  for (size_t i = n / 2; i-- > 0;)
    foldin__sift_item(order, conf, items, i, n);
  for (size_t end = n; end-- > 1;) {
    const uint32_t o = order[0];
    order[0] = order[end];
    order[end] = o;
    const float c = conf[0];
    conf[0] = conf[end];
    conf[end] = c;
    foldin__sift_item(order, conf, items, 0, end);
  }
}

/* Smallest power of two >= 2n: the table stays at most half full, so a
 * linear probe ends after a couple of steps on average. */
static size_t foldin__table_size(size_t n) {
  size_t s = 16;
  while (s < 2 * n)
    s *= 2;
  return s;
}

static int foldin__grow_slots(foldin_ws_t *ws, size_t size) {
  if (size <= ws->n_slots)
    return 0;
  uint32_t *slots = malloc(size * sizeof *slots);
  if (slots == NULL)
    return RECD_ENOMEM;
  free(ws->slots);
  ws->slots = slots;
  ws->n_slots = size;
  return 0;
}

/* Phase 1, unsorted history: merges duplicates through an open-addressing
 * table of `size` slots (a power of two). order/conf are rewritten with the
 * distinct items in first-occurrence order, conf holding summed weights.
 * Only the first `size` slots are cleared, so a table once grown for a huge
 * history costs nothing extra on small ones. Returns the distinct count. */
static size_t foldin__merge(foldin_ws_t *ws, const uint32_t *items, const float *weights,
                            size_t n, size_t size) {
  uint32_t *slots = ws->slots;
  uint32_t *order = ws->order;
  float *conf = ws->conf;
  int bits = 0;
  while (((size_t)1 << bits) < size)
    bits++;
  memset(slots, 0, size * sizeof *slots);
  const size_t mask = size - 1;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const uint32_t it = items[i];
    /* Fibonacci hashing: the top bits of the product mix every input bit,
     * so item indices that differ only in high bits still spread out. */
    size_t h = (size_t)((it * 0x9E3779B97F4A7C15ull) >> (64 - bits));
    for (;;) {
      const uint32_t s = slots[h];
      if (s == 0) {
        slots[h] = (uint32_t)(m + 1);
        order[m] = (uint32_t)i;
        conf[m] = weights[i];
        m++;
        break;
      }
      if (items[order[s - 1]] == it) {
        conf[s - 1] += weights[i];
        break;
      }
      h = (h + 1) & mask;
    }
  }
  return m;
}

/* The cap's total order: is entry (wa, ia) weaker than (wb, ib)? Item
 * indices of distinct entries differ, so this never calls two equal. */
static inline int foldin__weaker(float wa, uint32_t ia, float wb, uint32_t ib) {
  return wa < wb || (wa == wb && ia > ib);
}

/* Sift-down in a heap of `len` entries (order[], w[]) whose root is the
 * weakest entry. */
static void foldin__sift(uint32_t *order, float *w, const uint32_t *items, size_t len,
                         size_t pos) {
  const uint32_t po = order[pos];
  const float pw = w[pos];
  const uint32_t pi = items[po];
  for (;;) {
    size_t child = 2 * pos + 1;
    if (child >= len)
      break;
    if (child + 1 < len &&
        foldin__weaker(w[child + 1], items[order[child + 1]], w[child], items[order[child]]))
      child++;
    if (!foldin__weaker(w[child], items[order[child]], pw, pi))
      break;
    order[pos] = order[child];
    w[pos] = w[child];
    pos = child;
  }
  order[pos] = po;
  w[pos] = pw;
}

/* Phase 2: keeps the `cap` strongest of the m entries in order/w[0, cap),
 * strongest first. The heap is built in place over the first cap entries;
 * an entry j >= cap that beats the root overwrites it, which is safe because
 * slot 0 is never read again as a candidate. */
static void foldin__select(uint32_t *order, float *w, const uint32_t *items, size_t m,
                           size_t cap) {
  for (size_t i = cap / 2; i-- > 0;)
    foldin__sift(order, w, items, cap, i);
  for (size_t j = cap; j < m; j++) {
    if (foldin__weaker(w[0], items[order[0]], w[j], items[order[j]])) {
      order[0] = order[j];
      w[0] = w[j];
      foldin__sift(order, w, items, cap, 0);
    }
  }
  /* Heapsort: moving the weakest remaining entry to the back each time
   * leaves the array strongest first. */
  for (size_t end = cap; end > 1; end--) {
    uint32_t to = order[0];
    float tw = w[0];
    order[0] = order[end - 1];
    w[0] = w[end - 1];
    order[end - 1] = to;
    w[end - 1] = tw;
    foldin__sift(order, w, items, end - 1, 0);
  }
}

static int foldin__fail(float *x, uint32_t k, int rc) {
  memset(x, 0, (size_t)k * sizeof *x);
  return rc;
}


/* ---- Kernels ------------------------------------------------------------
 *
 * Small loops of fixed summation order instead of BLAS-2 calls: the
 * matrices here are k x k (k = 256 at most in practice) or n x k, where a
 * cblas call's dispatch and checks are a visible share, and the order of
 * every sum must depend only on k and n (see "Determinism" above). A sum
 * either runs over the rows of a matrix with the output vector as the
 * accumulator (the "axpy form": no reduction, vectorised across the
 * output), or, for a dot product, in lanes of a GNU C vector added in a
 * fixed tree at the end (plain loops of that shape were vectorised across
 * the wrong dimension, or spilled their lanes, as als.c found). ISO C mode
 * does not contract a*b+c into an FMA, so the AVX2 and the baseline clones
 * give the same bits. Vectors the solve owns are padded with zeros to
 * kp = k rounded up to 8, so that the lanes never see a tail; the caller's
 * Y rows are not, and their last k % 8 products are summed on their own. */

#if defined(__GNUC__)
#define FOLDIN_INLINE static inline __attribute__((always_inline))
#else
#define FOLDIN_INLINE static inline
#endif
/* The hot functions are compiled for AVX2 and the baseline, picked once at
 * load time (glibc ifunc), as in als.c; the kernels are inlined into each. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FOLDIN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FOLDIN_CLONES
#endif

/* Lanes: 8 floats or 4 doubles. Macros, so that no 32-byte vector is passed
 * by value (an ABI that differs between the clones). Other compilers get
 * structs with the same lane-wise arithmetic in scalar C (same bits). */
#if defined(__GNUC__)
typedef float foldin__v8 __attribute__((vector_size(32)));
typedef double foldin__v4 __attribute__((vector_size(32)));
typedef float foldin__v8u __attribute__((vector_size(32), aligned(4), may_alias));
typedef double foldin__v4u __attribute__((vector_size(32), aligned(8), may_alias));
#define FOLDIN_V8_ZERO ((foldin__v8){0, 0, 0, 0, 0, 0, 0, 0})
#define FOLDIN_V4_ZERO ((foldin__v4){0, 0, 0, 0})
#define FOLDIN_MULADD(acc, a, b) ((acc) += (a) * (b)) /* two roundings */
#define FOLDIN_LANE(v, l) ((v)[l])
#define FOLDIN_V8_LOAD(src) (*(const foldin__v8u *)(const void *)(src))
#define FOLDIN_V4_LOAD(src) (*(const foldin__v4u *)(const void *)(src))
/* 4 floats widened to 4 doubles. */
#define FOLDIN_V4_WIDEN(src)                                                   \
  ((foldin__v4){(double)(src)[0], (double)(src)[1], (double)(src)[2], (double)(src)[3]})
#else
typedef struct foldin__v8 {
  float f[8];
} foldin__v8;
typedef struct foldin__v4 {
  double f[4];
} foldin__v4;
#define FOLDIN_V8_ZERO ((foldin__v8){{0}})
#define FOLDIN_V4_ZERO ((foldin__v4){{0}})
#define FOLDIN_MULADD(acc, a, b)                                               \
  do {                                                                         \
    const __typeof__(acc) a_ = (a), b_ = (b);                                  \
    for (size_t l_ = 0; l_ < sizeof a_.f / sizeof *a_.f; l_++)                 \
      (acc).f[l_] += a_.f[l_] * b_.f[l_];                                      \
  } while (0)
#define FOLDIN_LANE(v, l) ((v).f[l])
static inline foldin__v8 foldin__v8_load(const float *s) {
  foldin__v8 v;
  memcpy(&v, s, sizeof v);
  return v;
}
static inline foldin__v4 foldin__v4_load(const double *s) {
  foldin__v4 v;
  memcpy(&v, s, sizeof v);
  return v;
}
static inline foldin__v4 foldin__v4_widen(const float *s) {
  return (foldin__v4){{s[0], s[1], s[2], s[3]}};
}
#define FOLDIN_V8_LOAD(src) foldin__v8_load(src)
#define FOLDIN_V4_LOAD(src) foldin__v4_load(src)
#define FOLDIN_V4_WIDEN(src) foldin__v4_widen(src)
#endif

/* Lanes added in a fixed tree. */
#define FOLDIN_SUM8(v)                                                         \
  (((FOLDIN_LANE(v, 0) + FOLDIN_LANE(v, 4)) + (FOLDIN_LANE(v, 2) + FOLDIN_LANE(v, 6))) + \
   ((FOLDIN_LANE(v, 1) + FOLDIN_LANE(v, 5)) + (FOLDIN_LANE(v, 3) + FOLDIN_LANE(v, 7))))
#define FOLDIN_SUM4x2(lo, hi)                                                  \
  (((FOLDIN_LANE(lo, 0) + FOLDIN_LANE(hi, 0)) + (FOLDIN_LANE(lo, 2) + FOLDIN_LANE(hi, 2))) + \
   ((FOLDIN_LANE(lo, 1) + FOLDIN_LANE(hi, 1)) + (FOLDIN_LANE(lo, 3) + FOLDIN_LANE(hi, 3))))

static uint32_t foldin__kp(uint32_t k) {
  return (k + 7u) & ~7u;
}

/* a . b over kp floats (a multiple of 8). */
FOLDIN_INLINE float foldin__fdot(const float *restrict a, const float *restrict b, uint32_t kp) {
  foldin__v8 acc = FOLDIN_V8_ZERO;
  for (uint32_t q = 0; q < kp; q += 8)
    FOLDIN_MULADD(acc, FOLDIN_V8_LOAD(a + q), FOLDIN_V8_LOAD(b + q));
  return FOLDIN_SUM8(acc);
}

/* a . b over kp doubles (a multiple of 8), in 8 lanes (two chains). */
FOLDIN_INLINE double foldin__ddot(const double *restrict a, const double *restrict b,
                                  uint32_t kp) {
  foldin__v4 lo = FOLDIN_V4_ZERO, hi = FOLDIN_V4_ZERO;
  for (uint32_t q = 0; q < kp; q += 8) {
    FOLDIN_MULADD(lo, FOLDIN_V4_LOAD(a + q), FOLDIN_V4_LOAD(b + q));
    FOLDIN_MULADD(hi, FOLDIN_V4_LOAD(a + q + 4), FOLDIN_V4_LOAD(b + q + 4));
  }
  return FOLDIN_SUM4x2(lo, hi);
}

/* y . x for a caller's float row y (k floats, no padding) and x in double:
 * 8 lanes over the first k & ~7, the rest summed apart, then added. */
FOLDIN_INLINE double foldin__ydot(const float *restrict y, const double *restrict x, uint32_t k) {
  const uint32_t k8 = k & ~7u;
  foldin__v4 lo = FOLDIN_V4_ZERO, hi = FOLDIN_V4_ZERO;
  for (uint32_t q = 0; q < k8; q += 8) {
    FOLDIN_MULADD(lo, FOLDIN_V4_WIDEN(y + q), FOLDIN_V4_LOAD(x + q));
    FOLDIN_MULADD(hi, FOLDIN_V4_WIDEN(y + q + 4), FOLDIN_V4_LOAD(x + q + 4));
  }
  double t = 0.0;
  for (uint32_t q = k8; q < k; q++)
    t += (double)y[q] * x[q];
  return FOLDIN_SUM4x2(lo, hi) + t;
}

/* s[0..3] = y_j . x for four caller's rows at once (each summed exactly as
 * foldin__ydot sums it): four rows' chains in flight instead of one. */
FOLDIN_INLINE void foldin__ydot4(const float *restrict y0, const float *restrict y1,
                                 const float *restrict y2, const float *restrict y3,
                                 const double *restrict x, uint32_t k, double *s) {
  const uint32_t k8 = k & ~7u;
  foldin__v4 l0 = FOLDIN_V4_ZERO, h0 = FOLDIN_V4_ZERO, l1 = FOLDIN_V4_ZERO, h1 = FOLDIN_V4_ZERO;
  foldin__v4 l2 = FOLDIN_V4_ZERO, h2 = FOLDIN_V4_ZERO, l3 = FOLDIN_V4_ZERO, h3 = FOLDIN_V4_ZERO;
  for (uint32_t q = 0; q < k8; q += 8) {
    const foldin__v4 xl = FOLDIN_V4_LOAD(x + q), xh = FOLDIN_V4_LOAD(x + q + 4);
    FOLDIN_MULADD(l0, FOLDIN_V4_WIDEN(y0 + q), xl);
    FOLDIN_MULADD(h0, FOLDIN_V4_WIDEN(y0 + q + 4), xh);
    FOLDIN_MULADD(l1, FOLDIN_V4_WIDEN(y1 + q), xl);
    FOLDIN_MULADD(h1, FOLDIN_V4_WIDEN(y1 + q + 4), xh);
    FOLDIN_MULADD(l2, FOLDIN_V4_WIDEN(y2 + q), xl);
    FOLDIN_MULADD(h2, FOLDIN_V4_WIDEN(y2 + q + 4), xh);
    FOLDIN_MULADD(l3, FOLDIN_V4_WIDEN(y3 + q), xl);
    FOLDIN_MULADD(h3, FOLDIN_V4_WIDEN(y3 + q + 4), xh);
  }
  double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0;
  for (uint32_t q = k8; q < k; q++) {
    t0 += (double)y0[q] * x[q];
    t1 += (double)y1[q] * x[q];
    t2 += (double)y2[q] * x[q];
    t3 += (double)y3[q] * x[q];
  }
  s[0] = FOLDIN_SUM4x2(l0, h0) + t0;
  s[1] = FOLDIN_SUM4x2(l1, h1) + t1;
  s[2] = FOLDIN_SUM4x2(l2, h2) + t2;
  s[3] = FOLDIN_SUM4x2(l3, h3) + t3;
}

/* One CG product on the cached rows: Mp = (I + S Z^T (C - I) Z S) p
 * = p + S sum_j (c_j - 1) (h_j . S p) h_j, with S = diag(sv) and h_j =
 * zh[j] the rows in the eigenbasis as floats (kp, zero-padded, as every
 * vector here). Each group of four rows is read once for its four dot
 * products and again, from L1, for the update of acc, whose element q
 * sums j = 0, 1, 2, ... left to right. w and acc: kp floats of scratch. */
FOLDIN_INLINE void foldin__apply(const float *const *restrict zh, const float *restrict conf,
                                 size_t n, uint32_t kp, const float *restrict sv,
                                 const float *restrict p, float *restrict w,
                                 float *restrict acc, float *restrict Mp) {
  for (uint32_t q = 0; q < kp; q++) {
    w[q] = sv[q] * p[q];
    acc[q] = 0.0f;
  }
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float *h0 = zh[j], *h1 = zh[j + 1], *h2 = zh[j + 2], *h3 = zh[j + 3];
    foldin__v8 a0 = FOLDIN_V8_ZERO, a1 = FOLDIN_V8_ZERO, a2 = FOLDIN_V8_ZERO,
               a3 = FOLDIN_V8_ZERO;
    for (uint32_t q = 0; q < kp; q += 8) {
      const foldin__v8 wq = FOLDIN_V8_LOAD(w + q);
      FOLDIN_MULADD(a0, FOLDIN_V8_LOAD(h0 + q), wq);
      FOLDIN_MULADD(a1, FOLDIN_V8_LOAD(h1 + q), wq);
      FOLDIN_MULADD(a2, FOLDIN_V8_LOAD(h2 + q), wq);
      FOLDIN_MULADD(a3, FOLDIN_V8_LOAD(h3 + q), wq);
    }
    const float s0 = (conf[j] - 1.0f) * FOLDIN_SUM8(a0);
    const float s1 = (conf[j + 1] - 1.0f) * FOLDIN_SUM8(a1);
    const float s2 = (conf[j + 2] - 1.0f) * FOLDIN_SUM8(a2);
    const float s3 = (conf[j + 3] - 1.0f) * FOLDIN_SUM8(a3);
    for (uint32_t q = 0; q < kp; q++)
      acc[q] = acc[q] + s0 * h0[q] + s1 * h1[q] + s2 * h2[q] + s3 * h3[q];
  }
  for (; j < n; j++) {
    const float *h0 = zh[j];
    const float s0 = (conf[j] - 1.0f) * foldin__fdot(h0, w, kp);
    for (uint32_t q = 0; q < kp; q++)
      acc[q] += s0 * h0[q];
  }
  for (uint32_t q = 0; q < kp; q++)
    Mp[q] = p[q] + sv[q] * acc[q];
}

/* g = S sum_j c_j h_j: the first round's right-hand side S E^T b, to float
 * precision (the residual after that round is computed exactly). */
FOLDIN_CLONES
static void foldin__rhs(const float *const *restrict zh, const float *restrict conf, size_t n,
                        uint32_t kp, const float *restrict sv, float *restrict g) {
  for (uint32_t q = 0; q < kp; q++)
    g[q] = 0.0f;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float *h0 = zh[j], *h1 = zh[j + 1], *h2 = zh[j + 2], *h3 = zh[j + 3];
    const float c0 = conf[j], c1 = conf[j + 1], c2 = conf[j + 2], c3 = conf[j + 3];
    for (uint32_t q = 0; q < kp; q++)
      g[q] = g[q] + c0 * h0[q] + c1 * h1[q] + c2 * h2[q] + c3 * h3[q];
  }
  for (; j < n; j++) {
    const float *h0 = zh[j];
    const float c0 = conf[j];
    for (uint32_t q = 0; q < kp; q++)
      g[q] += c0 * h0[q];
  }
  for (uint32_t q = 0; q < kp; q++)
    g[q] *= sv[q];
}

/* Conjugate gradients on (I + S Z^T (C - I) Z S) u = g from u = 0.
 * Stops at |res|^2 <= FOLDIN__CG_TOL2 |g|^2 or after FOLDIN__CG_STEPS
 * steps. cg holds 5 kp-vectors of scratch. */
FOLDIN_CLONES
static void foldin__cg(const float *const *restrict zh, const float *restrict conf, size_t n,
                       uint32_t kp, const float *restrict sv, const float *restrict g,
                       float *restrict u, float *restrict cg) {
  float *restrict res = cg, *restrict p = res + kp, *restrict Mp = p + kp;
  float *restrict w = Mp + kp, *restrict acc = w + kp;
  for (uint32_t q = 0; q < kp; q++) {
    u[q] = 0.0f;
    res[q] = g[q];
    p[q] = g[q];
  }
  float rs = foldin__fdot(res, res, kp);
  const float stop = rs * FOLDIN__CG_TOL2;
  for (int it = 0; it < FOLDIN__CG_STEPS && rs > stop; it++) {
    foldin__apply(zh, conf, n, kp, sv, p, w, acc, Mp);
    const float pMp = foldin__fdot(p, Mp, kp);
    if (!(pMp > 0.0f))
      break; /* only rounding: the matrix is >= I */
    const float alpha = rs / pMp;
    for (uint32_t q = 0; q < kp; q++) {
      u[q] += alpha * p[q];
      res[q] -= alpha * Mp[q];
    }
    const float rs_new = foldin__fdot(res, res, kp);
    const float beta = rs_new / rs;
    for (uint32_t q = 0; q < kp; q++)
      p[q] = res[q] + beta * p[q];
    rs = rs_new;
  }
}

/* z_j = h_j + l_j in double (exact: l_j is what rounding z_j to h_j left). */
#define FOLDIN_V4_Z(h, l, q) (FOLDIN_V4_WIDEN((h) + (q)) + FOLDIN_V4_WIDEN((l) + (q)))

/* (h + l) . x over kp doubles, in 8 lanes. */
FOLDIN_INLINE double foldin__zdot(const float *restrict h, const float *restrict l,
                                  const double *restrict x, uint32_t kp) {
  foldin__v4 lo = FOLDIN_V4_ZERO, hi = FOLDIN_V4_ZERO;
  for (uint32_t q = 0; q < kp; q += 8) {
    FOLDIN_MULADD(lo, FOLDIN_V4_Z(h, l, q), FOLDIN_V4_LOAD(x + q));
    FOLDIN_MULADD(hi, FOLDIN_V4_Z(h, l, q + 4), FOLDIN_V4_LOAD(x + q + 4));
  }
  return FOLDIN_SUM4x2(lo, hi);
}

/* The eigenbasis residual in double:
 *   r' = E^T b - (diag(l) + lambda I) x' - Z^T (C - I) Z x'
 *      = sum_j (c_j - (c_j - 1) z_j . x') z_j - (l + lambda) x'
 * (b = sum c_j y_j never formed: each row's two terms share its pass), over
 * the n rows z_j = zp[j] + zp[n + j] (high and low floats). Returns
 * |r'|^2. */
FOLDIN_CLONES
static double foldin__eres(const float *const *restrict zp, const float *restrict conf,
                           size_t n, const double *restrict l, double lambda, uint32_t kp,
                           const double *restrict x, double *restrict r) {
  const float *const *zh = zp, *const *zl = zp + n;
  for (uint32_t q = 0; q < kp; q++)
    r[q] = -((l[q] + lambda) * x[q]);
  size_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const float *h0 = zh[j], *l0 = zl[j], *h1 = zh[j + 1], *l1 = zl[j + 1];
    const double c0 = conf[j], c1 = conf[j + 1];
    const double s0 = c0 - (c0 - 1.0) * foldin__zdot(h0, l0, x, kp);
    const double s1 = c1 - (c1 - 1.0) * foldin__zdot(h1, l1, x, kp);
    for (uint32_t q = 0; q < kp; q++)
      r[q] = r[q] + s0 * ((double)h0[q] + (double)l0[q]) +
             s1 * ((double)h1[q] + (double)l1[q]);
  }
  for (; j < n; j++) {
    const float *h0 = zh[j], *l0 = zl[j];
    const double c0 = conf[j];
    const double s0 = c0 - (c0 - 1.0) * foldin__zdot(h0, l0, x, kp);
    for (uint32_t q = 0; q < kp; q++)
      r[q] += s0 * ((double)h0[q] + (double)l0[q]);
  }
  double rr = 0.0;
  for (uint32_t q = 0; q < kp; q++)
    rr += r[q] * r[q];
  return rr;
}

/* out[0, k) = sum_q s[q] M[q][0, k) over the k rows of M (stride kp), in
 * double: x = E x' with M = F = E^T. Four rows per pass. */
FOLDIN_CLONES
static void foldin__dtmv(const double *restrict M, uint32_t k, uint32_t kp,
                         const double *restrict s, double *restrict out) {
  for (uint32_t a = 0; a < k; a++)
    out[a] = 0.0;
  uint32_t q = 0;
  for (; q + 4 <= k; q += 4) {
    const double *m0 = M + (size_t)q * kp, *m1 = m0 + kp, *m2 = m1 + kp, *m3 = m2 + kp;
    const double s0 = s[q], s1 = s[q + 1], s2 = s[q + 2], s3 = s[q + 3];
    for (uint32_t a = 0; a < k; a++)
      out[a] = out[a] + s0 * m0[a] + s1 * m1[a] + s2 * m2[a] + s3 * m3[a];
  }
  for (; q < k; q++) {
    const double *m0 = M + (size_t)q * kp;
    const double s0 = s[q];
    for (uint32_t a = 0; a < k; a++)
      out[a] += s0 * m0[a];
  }
}

/* z = E^T y = F y for a caller's row y, z[q] = F[q] . y in double (rows of
 * F have stride kp), stored as h = (float)z and l = (float)(z - h) (kp
 * floats each, zero-padded). yd: kp doubles of scratch. */
FOLDIN_CLONES
static void foldin__zrow_compute(const double *restrict F, uint32_t k, uint32_t kp,
                                 const float *restrict y, double *restrict yd,
                                 float *restrict h, float *restrict l) {
  for (uint32_t a = 0; a < kp; a++)
    yd[a] = a < k ? (double)y[a] : 0.0;
  for (uint32_t q = 0; q < kp; q++) {
    const double z = q < k ? foldin__ddot(F + (size_t)q * kp, yd, kp) : 0.0;
    h[q] = (float)z;
    l[q] = (float)(z - (double)h[q]);
  }
}

/* The residual r = b - A x of the original system in double, A = G +
 * lambda I + sum (c_j - 1) y_j y_j^T and b = sum c_j y_j, straight from the
 * float inputs (each product of two floats, or of a float and a double,
 * rounds once in double): r = sum_j (c_j - (c_j - 1) y_j . x) y_j - G x -
 * lambda x. G x runs over G's rows in the axpy form (G is symmetric: row q
 * is column q). Returns |r|^2. */
FOLDIN_CLONES
static double foldin__residual(const float *restrict Y, size_t ldy,
                               const uint32_t *restrict idx, const float *restrict conf,
                               size_t n, const float *restrict G, uint32_t k, double lambda,
                               const double *restrict x, double *restrict r) {
  for (uint32_t a = 0; a < k; a++)
    r[a] = 0.0;
  uint32_t q = 0;
  for (; q + 4 <= k; q += 4) {
    const float *g0 = G + (size_t)q * k, *g1 = g0 + k, *g2 = g1 + k, *g3 = g2 + k;
    const double x0 = x[q], x1 = x[q + 1], x2 = x[q + 2], x3 = x[q + 3];
    for (uint32_t a = 0; a < k; a++)
      r[a] = r[a] + x0 * g0[a] + x1 * g1[a] + x2 * g2[a] + x3 * g3[a];
  }
  for (; q < k; q++) {
    const float *g0 = G + (size_t)q * k;
    const double x0 = x[q];
    for (uint32_t a = 0; a < k; a++)
      r[a] += x0 * g0[a];
  }
  for (uint32_t a = 0; a < k; a++)
    r[a] = -(r[a] + lambda * x[a]);
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float *y0 = Y + (size_t)idx[j] * ldy, *y1 = Y + (size_t)idx[j + 1] * ldy;
    const float *y2 = Y + (size_t)idx[j + 2] * ldy, *y3 = Y + (size_t)idx[j + 3] * ldy;
    /* (c - 1) exactly in double: c is a float. */
    const double c0 = conf[j], c1 = conf[j + 1], c2 = conf[j + 2], c3 = conf[j + 3];
    double dots[4];
    foldin__ydot4(y0, y1, y2, y3, x, k, dots);
    const double s0 = c0 - (c0 - 1.0) * dots[0], s1 = c1 - (c1 - 1.0) * dots[1];
    const double s2 = c2 - (c2 - 1.0) * dots[2], s3 = c3 - (c3 - 1.0) * dots[3];
    for (uint32_t d = 0; d < k; d++)
      r[d] = r[d] + s0 * y0[d] + s1 * y1[d] + s2 * y2[d] + s3 * y3[d];
  }
  for (; j < n; j++) {
    const float *y0 = Y + (size_t)idx[j] * ldy;
    const double c0 = conf[j];
    const double s0 = c0 - (c0 - 1.0) * foldin__ydot(y0, x, k);
    for (uint32_t d = 0; d < k; d++)
      r[d] += s0 * y0[d];
  }
  double rr = 0.0;
  for (uint32_t a = 0; a < k; a++)
    rr += r[a] * r[a];
  return rr;
}

/* ---- The registry -------------------------------------------------------
 *
 * Eigenbases of the Gram matrices solves have been asked for, keyed by the
 * (Y, ldy, YtY, k) of the call and a fingerprint of the contents (YtY's
 * diagonal and first row, Y's first row), shared by every thread: the daemon makes a new
 * workspace per batch, so a per-workspace cache would be rebuilt for every
 * batch. At most FOLDIN__BASES are kept; a new one replaces the one used
 * least recently that no solve is using. Each basis lives in one anonymous
 * mapping (MAP_NORESERVE: pages cost memory only once touched) that also
 * holds its z_i = E^T y_i cache (as two floats h + l: CG reads h, the
 * eigenbasis residual needs z to double rounding): an open-addressing table from item to a
 * row of z, filled by whichever solve first needs the item (a CAS claims
 * the slot, a release store publishes the row), at most
 * FOLDIN__CACHE_BYTES of rows per basis; past that, rows are computed per
 * solve (the same function, so the same bits). */

#define FOLDIN__BASES 4
#define FOLDIN__CACHE_BYTES ((size_t)64 << 20)
#define FOLDIN__CACHE_ROWS ((size_t)1 << 20)

enum { FOLDIN__BUILDING, FOLDIN__READY, FOLDIN__FAILED };

typedef struct foldin__basis {
  const float *Y, *G; /* the key, compared, never dereferenced */
  size_t ldy;
  uint32_t k;
  uint64_t fp;     /* foldin__fingerprint of G when built */
  int state;       /* FOLDIN__*, under foldin__lock */
  unsigned users;  /* solves holding it, under foldin__lock */
  int dead;        /* its model was freed: unmapped by the last user */
  uint64_t used_at;
  size_t bytes;    /* of the mapping that starts with this struct */
  uint32_t kp;     /* foldin__kp(k): the stride of F and z */
  double l_min;    /* lower bound of YtY's smallest eigenvalue */
  double *l;       /* kp: the k eigenvalues, ascending, then zeros */
  float *lf;       /* the same as floats, but 1 in the padding */
  double *F;       /* k x kp: row q is eigenvector q (F = E^T), zero-padded */
  uint32_t bits;   /* log2 of the table's slots */
  _Atomic uint32_t *key; /* item + 1, 0 = free */
  _Atomic uint32_t *row; /* 0 = being computed, FOLDIN__NOROW, or z row + 1 */
  atomic_size_t next;    /* z rows handed out */
  size_t max_rows;
  float *zh, *zl;  /* max_rows x kp each: z rows as floats, and the float of
                      what that rounded off */
  unsigned char *memo; /* the answers' cache: 2 (memo_mask + 1) entries */
  size_t memo_mask;    /* of memo_stride bytes (see "The answers' cache") */
  size_t memo_stride;
  atomic_uint_fast64_t memo_clock; /* stamps of the writes */
} foldin__basis_t;

#define FOLDIN__NOROW UINT32_MAX

/* The answers' cache. A customer's RECOMMEND folds in the same history
 * again and again (every page view until they buy something): each basis
 * keeps the x (in double) of recent solves, direct-mapped by a hash of the
 * canonical history (the items used and their float confidences, in solve
 * order) and lambda_u. A hit is not trusted: its x must pass the same
 * check against the float inputs as a fresh solve's (foldin__residual and
 * the certificate, one YtY pass and 2 n k), so a hash collision or a stale
 * basis costs a solve, never a wrong answer; a hit that passes is the
 * bits a fresh solve gives (the solve is deterministic for its basis, and
 * the cache dies with it). Two-way set associative (a hash picks a pair,
 * a new answer replaces the older of the two), so that two customers
 * whose hashes meet do not evict each other. An entry is a seqlock: a writer takes an even
 * seq to odd with a CAS (or gives up: someone else is writing), writes,
 * and releases seq + 2; a reader copies and keeps the copy only when seq
 * was even and unchanged. Every word is accessed atomically (relaxed; the
 * seq orders them), so a racing copy is a miss, never undefined
 * behaviour. */
#define FOLDIN__MEMO_BYTES ((size_t)32 << 20)

typedef struct foldin__memo {
  _Atomic uint32_t seq;
  _Atomic uint32_t n;     /* history entries, 0 = empty */
  _Atomic uint64_t hash;
  _Atomic uint64_t stamp; /* when written: the older of a pair goes first */
  /* then kp words of x (the bits of doubles) */
} foldin__memo_t;

static pthread_mutex_t foldin__lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t foldin__built = PTHREAD_COND_INITIALIZER;
static foldin__basis_t *foldin__bases[FOLDIN__BASES];
static uint64_t foldin__clock;

static size_t foldin__align(size_t x) {
  return (x + 63) & ~(size_t)63;
}

/* Three independent chains (one multiply each per step, not three in a
 * row): it runs on every solve. */
static uint64_t foldin__fingerprint(const float *Y, const float *G, uint32_t k) {
  uint64_t hd = 0x9E3779B97F4A7C15ull ^ k, hf = 0xC2B2AE3D27D4EB4Full, hy = 0x165667B19E3779F9ull;
  for (uint32_t a = 0; a < k; a++) {
    uint32_t d, f, y;
    memcpy(&d, G + (size_t)a * k + a, sizeof d);
    memcpy(&f, G + a, sizeof f);
    memcpy(&y, Y + a, sizeof y);
    hd = (hd ^ d) * 0x100000001B3ull;
    hf = (hf ^ f) * 0x100000001B3ull;
    hy = (hy ^ y) * 0x100000001B3ull;
  }
  return hd ^ (hf * 0xBF58476D1CE4E5B9ull) ^ (hy * 0x94D049BB133111EBull);
}

/* A basis for k factors in a fresh mapping, or NULL. */
static foldin__basis_t *foldin__map(uint32_t k) {
  const uint32_t kp = foldin__kp(k);
  size_t max_rows = FOLDIN__CACHE_BYTES / ((size_t)kp * 2 * sizeof(float));
  if (max_rows > FOLDIN__CACHE_ROWS)
    max_rows = FOLDIN__CACHE_ROWS;
  uint32_t bits = 4;
  while (((size_t)1 << bits) < 2 * max_rows)
    bits++;
  const size_t slots = (size_t)1 << bits;
  const size_t o_l = foldin__align(sizeof(foldin__basis_t));
  const size_t o_lf = o_l + foldin__align((size_t)kp * sizeof(double));
  const size_t o_F = o_lf + foldin__align((size_t)kp * sizeof(float));
  const size_t o_key = o_F + foldin__align((size_t)k * kp * sizeof(double));
  const size_t o_row = o_key + foldin__align(slots * sizeof(uint32_t));
  const size_t o_zh = o_row + foldin__align(slots * sizeof(uint32_t));
  const size_t o_zl = o_zh + foldin__align(max_rows * kp * sizeof(float));
  const size_t memo_stride = foldin__align(sizeof(foldin__memo_t) + (size_t)kp * sizeof(double));
  size_t memo_slots = 16; /* entries: a power of two, pairs of them */
  while (2 * memo_slots * memo_stride <= FOLDIN__MEMO_BYTES)
    memo_slots *= 2;
  const size_t o_memo = o_zl + foldin__align(max_rows * kp * sizeof(float));
  const size_t bytes = o_memo + memo_slots * memo_stride;
  char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (m == MAP_FAILED)
    return NULL;
  foldin__basis_t *B = (foldin__basis_t *)(void *)m; /* zero-filled */
  B->bytes = bytes;
  B->k = k;
  B->kp = kp;
  B->l = (double *)(void *)(m + o_l);
  B->lf = (float *)(void *)(m + o_lf);
  B->F = (double *)(void *)(m + o_F);
  B->bits = bits;
  B->key = (_Atomic uint32_t *)(void *)(m + o_key);
  B->row = (_Atomic uint32_t *)(void *)(m + o_row);
  atomic_init(&B->next, 0);
  B->max_rows = max_rows;
  B->zh = (float *)(void *)(m + o_zh);
  B->zl = (float *)(void *)(m + o_zl);
  B->memo = (unsigned char *)(m + o_memo);
  B->memo_mask = memo_slots / 2 - 1;
  atomic_init(&B->memo_clock, 0);
  B->memo_stride = memo_stride;
  return B;
}

/* Removes B from the registry; the caller holds foldin__lock. */
static void foldin__unlist(const foldin__basis_t *B) {
  for (int i = 0; i < FOLDIN__BASES; i++)
    if (foldin__bases[i] == B)
      foldin__bases[i] = NULL;
}

static void foldin__unmap(foldin__basis_t *B) {
  if (B != NULL)
    munmap(B, B->bytes);
}

/* The eigendecomposition of G into B (dsyevd in double; work space mapped
 * and unmapped here, so that LAPACKE allocates nothing). Returns 1 on
 * success. */
static int foldin__build(foldin__basis_t *B, const float *G) {
  const uint32_t k = B->k;
  const size_t lwork = 1 + 6 * (size_t)k + 2 * (size_t)k * k, liwork = 3 + 5 * (size_t)k;
  const size_t bytes = ((size_t)k * k + lwork) * sizeof(double) + liwork * sizeof(lapack_int);
  char *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return 0;
  double *A = (double *)(void *)m, *work = A + (size_t)k * k;
  lapack_int *iwork = (lapack_int *)(void *)(work + lwork);
  for (size_t i = 0; i < (size_t)k * k; i++)
    A[i] = G[i];
  /* Symmetric: column-major reads the same matrix. Column q of the result
   * (A + q k) is eigenvector q. */
  lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'U', (lapack_int)k, A,
                                        (lapack_int)k, B->l, work, (lapack_int)lwork, iwork,
                                        (lapack_int)liwork);
  int ok = info == 0;
  for (uint32_t q = 0; ok && q < k; q++)
    memcpy(B->F + (size_t)q * B->kp, A + (size_t)q * k, (size_t)k * sizeof(double));
  for (uint32_t q = 0; q < B->kp; q++)
    B->lf[q] = q < k ? (float)B->l[q] : 1.0f;
  if (ok) {
    /* dsyevd's eigenvalues are within a small multiple of k 2^-53 |G| of
     * the exact ones; 2^-30 |G| is a wide margin, and still far below any
     * lambda that matters. */
    const double big = fmax(fabs(B->l[0]), fabs(B->l[k - 1]));
    B->l_min = B->l[0] - big * 0x1p-30;
    ok = isfinite(B->l_min) && isfinite(big);
  }
  munmap(m, bytes);
  return ok;
}

/* The ready basis for (Y, ldy, G, k), built if needed (the caller then
 * builds it while solves with the same key wait), or NULL (take the
 * Cholesky path). A non-NULL result must be given back with
 * foldin__release(). */
static foldin__basis_t *foldin__acquire(const float *Y, size_t ldy, const float *G, uint32_t k) {
  const uint64_t fp = foldin__fingerprint(Y, G, k);
  foldin__basis_t *old = NULL, *B = NULL;
  pthread_mutex_lock(&foldin__lock);
  for (;;) {
    int slot = -1;
    for (int i = 0; i < FOLDIN__BASES; i++) {
      const foldin__basis_t *c = foldin__bases[i];
      if (c != NULL && !c->dead && c->Y == Y && c->G == G && c->ldy == ldy && c->k == k) {
        slot = i;
        break;
      }
    }
    if (slot < 0)
      break;
    foldin__basis_t *c = foldin__bases[slot];
    if (c->fp == fp) {
      if (c->state == FOLDIN__BUILDING) {
        pthread_cond_wait(&foldin__built, &foldin__lock);
        continue;
      }
      if (c->state == FOLDIN__READY) {
        c->users++;
        c->used_at = ++foldin__clock;
        B = c;
      }
      pthread_mutex_unlock(&foldin__lock);
      return B; /* NULL when its build failed: not retried for this key */
    }
    /* The same addresses with other contents: a freed model's memory
     * reused by the next one. Drop the old basis (nobody can be using it
     * for this G: a G in use cannot change under its solves). */
    if (c->users != 0) {
      pthread_mutex_unlock(&foldin__lock);
      return NULL;
    }
    old = c;
    foldin__bases[slot] = NULL;
    break;
  }
  int slot = -1;
  for (int i = 0; i < FOLDIN__BASES; i++)
    if (foldin__bases[i] == NULL) {
      slot = i;
      break;
    }
  if (slot < 0) /* the least recently used one that nobody holds */
    for (int i = 0; i < FOLDIN__BASES; i++) {
      const foldin__basis_t *c = foldin__bases[i];
      if (c->users == 0 && c->state != FOLDIN__BUILDING &&
          (slot < 0 || c->used_at < foldin__bases[slot]->used_at))
        slot = i;
    }
  foldin__basis_t *evict = NULL;
  if (slot >= 0)
    B = foldin__map(k);
  if (B != NULL) {
    evict = foldin__bases[slot];
    B->Y = Y;
    B->G = G;
    B->ldy = ldy;
    B->fp = fp;
    B->state = FOLDIN__BUILDING;
    B->users = 1;
    B->used_at = ++foldin__clock;
    foldin__bases[slot] = B;
  }
  pthread_mutex_unlock(&foldin__lock);
  foldin__unmap(old);
  foldin__unmap(evict);
  if (B == NULL)
    return NULL;
  const int ok = foldin__build(B, G);
  pthread_mutex_lock(&foldin__lock);
  B->state = ok ? FOLDIN__READY : FOLDIN__FAILED;
  const int drop = !ok && --B->users == 0 && B->dead;
  if (drop)
    foldin__unlist(B);
  pthread_cond_broadcast(&foldin__built);
  pthread_mutex_unlock(&foldin__lock);
  if (drop)
    foldin__unmap(B);
  return ok ? B : NULL;
}

static void foldin__release(foldin__basis_t *B) {
  if (B == NULL)
    return;
  pthread_mutex_lock(&foldin__lock);
  const int last = --B->users == 0 && B->dead;
  if (last)
    foldin__unlist(B);
  pthread_mutex_unlock(&foldin__lock);
  if (last)
    foldin__unmap(B);
}

int foldin_prepare(const float *Y, size_t ldy, const float *YtY, uint32_t k) {
  if (Y == NULL || YtY == NULL || k == 0)
    return 0;
  foldin__basis_t *B = foldin__acquire(Y, ldy, YtY, k);
  foldin__release(B);
  return B != NULL;
}

int foldin_cache_bases(void) {
  int n = 0;
  pthread_mutex_lock(&foldin__lock);
  for (int i = 0; i < FOLDIN__BASES; i++)
    n += foldin__bases[i] != NULL;
  pthread_mutex_unlock(&foldin__lock);
  return n;
}

void foldin_forget(const float *YtY) {
  foldin__basis_t *drop[FOLDIN__BASES];
  int n = 0;
  pthread_mutex_lock(&foldin__lock);
  for (int i = 0; i < FOLDIN__BASES; i++) {
    foldin__basis_t *c = foldin__bases[i];
    if (c == NULL || c->G != YtY)
      continue;
    if (c->users == 0 && c->state != FOLDIN__BUILDING) {
      foldin__bases[i] = NULL;
      drop[n++] = c;
    } else {
      c->dead = 1; /* its last foldin__release() unmaps it */
    }
  }
  pthread_mutex_unlock(&foldin__lock);
  for (int i = 0; i < n; i++)
    foldin__unmap(drop[i]);
}

void foldin_cache_clear(void) {
  pthread_mutex_lock(&foldin__lock);
  for (int i = 0; i < FOLDIN__BASES; i++) {
    foldin__basis_t *c = foldin__bases[i];
    if (c != NULL && c->users == 0 && c->state != FOLDIN__BUILDING) {
      foldin__bases[i] = NULL;
      foldin__unmap(c);
    }
  }
  pthread_mutex_unlock(&foldin__lock);
}

/* z = E^T y for y = row `item` of Y: 1 with the cached row's two parts in
 * *h and *l (computed into the cache by the first solve that needs it), or
 * 0 when the cache has no room for it (the caller computes it into its
 * own scratch: the same function, so the same bits). yd: kp doubles of
 * scratch. */
static int foldin__zrow(foldin__basis_t *B, uint32_t item, const float *y, double *yd,
                        const float **h, const float **l) {
  if (item == UINT32_MAX)
    return 0;
  const uint32_t kp = B->kp;
  const size_t mask = ((size_t)1 << B->bits) - 1;
  size_t s = (size_t)(((uint64_t)item * 0x9E3779B97F4A7C15ull) >> (64 - B->bits));
  for (int probe = 0; probe < 64;) {
    uint32_t kv = atomic_load_explicit(&B->key[s], memory_order_acquire);
    size_t r;
    if (kv == item + 1) {
      const uint32_t rv = atomic_load_explicit(&B->row[s], memory_order_acquire);
      if (rv == 0 || rv == FOLDIN__NOROW)
        return 0; /* another solve is computing it, or there is no room */
      r = rv - 1;
    } else if (kv == 0) {
      if (atomic_load_explicit(&B->next, memory_order_relaxed) >= B->max_rows)
        return 0;
      if (!atomic_compare_exchange_strong(&B->key[s], &kv, item + 1))
        continue; /* taken meanwhile: look at it again */
      r = atomic_fetch_add(&B->next, 1);
      if (r >= B->max_rows) {
        atomic_store_explicit(&B->row[s], FOLDIN__NOROW, memory_order_release);
        return 0;
      }
      foldin__zrow_compute(B->F, B->k, kp, y, yd, B->zh + r * kp, B->zl + r * kp);
      atomic_store_explicit(&B->row[s], (uint32_t)(r + 1), memory_order_release);
    } else {
      s = (s + 1) & mask;
      probe++;
      continue;
    }
    *h = B->zh + r * kp;
    *l = B->zl + r * kp;
    return 1;
  }
  return 0;
}

static uint64_t foldin__memo_hash(const uint32_t *idx, const float *conf, size_t n,
                                  float lambda) {
  uint32_t lb;
  memcpy(&lb, &lambda, sizeof lb);
  uint64_t a = 0x9E3779B97F4A7C15ull ^ n, b = 0xC2B2AE3D27D4EB4Full ^ lb;
  for (size_t j = 0; j < n; j++) {
    uint32_t c;
    memcpy(&c, conf + j, sizeof c);
    a = (a ^ idx[j]) * 0x100000001B3ull;
    b = (b ^ c) * 0x100000001B3ull;
  }
  a ^= b + (a >> 29);
  a *= 0xBF58476D1CE4E5B9ull;
  return a ^ (a >> 31);
}

/* Entry `way` (0, 1) of the pair of hash h. */
static foldin__memo_t *foldin__memo_at(const foldin__basis_t *B, uint64_t h, int way) {
  const size_t e = 2 * (size_t)(h & B->memo_mask) + (size_t)way;
  return (foldin__memo_t *)(void *)(B->memo + e * B->memo_stride);
}

/* x (kp doubles) of a solve with this hash and n, if the cache holds one:
 * 1, else 0. The caller checks it. */
static int foldin__memo_get(const foldin__basis_t *B, uint64_t h, size_t n, double *x) {
  for (int way = 0; way < 2; way++) {
    foldin__memo_t *e = foldin__memo_at(B, h, way);
    const uint32_t s = atomic_load_explicit(&e->seq, memory_order_acquire);
    if ((s & 1) || atomic_load_explicit(&e->hash, memory_order_relaxed) != h ||
        atomic_load_explicit(&e->n, memory_order_relaxed) != n)
      continue;
    _Atomic uint64_t *xs = (_Atomic uint64_t *)(void *)(e + 1);
    for (uint32_t a = 0; a < B->kp; a++) {
      const uint64_t v = atomic_load_explicit(&xs[a], memory_order_relaxed);
      memcpy(x + a, &v, sizeof v);
    }
    atomic_thread_fence(memory_order_acquire);
    return atomic_load_explicit(&e->seq, memory_order_relaxed) == s;
  }
  return 0;
}

static void foldin__memo_put(foldin__basis_t *B, uint64_t h, size_t n, const double *x) {
  /* The entry holding this hash, else an empty one, else the older. */
  foldin__memo_t *e0 = foldin__memo_at(B, h, 0), *e1 = foldin__memo_at(B, h, 1), *e;
  if (atomic_load_explicit(&e0->hash, memory_order_relaxed) == h ||
      atomic_load_explicit(&e0->n, memory_order_relaxed) == 0)
    e = e0;
  else if (atomic_load_explicit(&e1->hash, memory_order_relaxed) == h ||
           atomic_load_explicit(&e1->n, memory_order_relaxed) == 0)
    e = e1;
  else
    e = atomic_load_explicit(&e0->stamp, memory_order_relaxed) <=
                atomic_load_explicit(&e1->stamp, memory_order_relaxed)
            ? e0
            : e1;
  uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
  if ((s & 1) ||
      !atomic_compare_exchange_strong_explicit(&e->seq, &s, s + 1, memory_order_acquire,
                                               memory_order_relaxed))
    return; /* another writer has it */
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&e->hash, h, memory_order_relaxed);
  atomic_store_explicit(&e->n, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, memory_order_relaxed);
  atomic_store_explicit(&e->stamp, atomic_fetch_add(&B->memo_clock, 1) + 1, memory_order_relaxed);
  _Atomic uint64_t *xs = (_Atomic uint64_t *)(void *)(e + 1);
  for (uint32_t a = 0; a < B->kp; a++) {
    uint64_t v = 0;
    if (a < B->k)
      memcpy(&v, x + a, sizeof v);
    atomic_store_explicit(&xs[a], v, memory_order_relaxed);
  }
  atomic_store_explicit(&e->seq, s + 2, memory_order_release);
}

/* ---- The solve ---------------------------------------------------------- */

/* Forms A = G + sum (c_j - 1) y_j y_j^T + lambda I over the n entries of
 * ws (lower triangle: ssyrk writes only it and potrf reads only it) and
 * factors it into L, in ws->A. This is the Cholesky-only fold-in's code,
 * bit for bit, so WITHREASONS's factor did not change.
 *
 * The rows scaled by sqrt(c_j - 1) are gathered into a block of at most
 * FOLDIN_BLOCK x k and applied with one cblas_ssyrk per block, rather than
 * one cblas_ssyr per item: a rank-1 update is level-2 and streams the whole
 * k x k triangle through memory once per item, while ssyrk is a blocked
 * level-3 kernel that keeps A in registers/cache across many rows.
 * Measured at k = 64 (OpenBLAS 0.3.21, one thread, AMD EPYC): 20 items take
 * 2.5 us with one ssyrk against 17 us with 20 ssyr calls, 100 items 9.5 us
 * against 143 us. Blocking bounds the scratch for the trainer's item step,
 * where one "history" is every user of a popular item. Copying all of G in
 * one call is cheaper than k row copies of the triangle. The copy is
 * cblas_scopy, not memcpy: glibc's memcpy moves 16 KiB with `rep movsb`,
 * which on AMD Zen runs some 40x slower when the destination sits 16 bytes
 * past the source modulo 4 KiB (measured: 7-11 us instead of 0.2-0.4 us),
 * and where a malloc'ed A lands relative to the model's YtY is luck.
 *
 * The lower triangle of a row-major matrix is, byte for byte, the upper
 * triangle of the same matrix read column-major, and the factor U = L^T of
 * A = U^T U lands exactly where L of A = L L^T goes. Calling LAPACKE in
 * column-major/'U' therefore computes the row-major lower factor, without
 * the transposed copies that LAPACKE's row-major wrappers make around the
 * Fortran call. The _work entry points skip LAPACKE's NaN scan of the
 * matrix: the inputs cannot hold NaN here (weights are checked, the model
 * loader rejects non-finite factors), and a NaN that got in anyway would
 * surface as a failed factorisation or a NaN x, not a crash. */
static int foldin__factor(const float *Y, size_t ldy, const float *G, uint32_t k, float lambda,
                          size_t n, foldin_ws_t *ws) {
  float *A = ws->A, *rows = ws->rows;
  cblas_scopy((int)(k * k), G, 1, A, 1);
  for (size_t j0 = 0; j0 < n; j0 += FOLDIN_BLOCK) {
    const size_t nb = n - j0 < FOLDIN_BLOCK ? n - j0 : FOLDIN_BLOCK;
    for (size_t r = 0; r < nb; r++) {
      const float s = sqrtf(ws->conf[j0 + r] - 1.0f);
      const float *y = Y + (size_t)ws->idx[j0 + r] * ldy;
      float *row = rows + r * k;
      for (uint32_t d = 0; d < k; d++)
        row[d] = s * y[d];
    }
    /* A += R^T R for the nb x k block R (one item per row, hence Trans). */
    cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, (int)k, (int)nb, 1.0f, rows, (int)k,
                1.0f, A, (int)k);
  }
  for (uint32_t d = 0; d < k; d++)
    A[(size_t)d * k + d] += lambda;
  const lapack_int info =
      LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)k, A, (lapack_int)k);
  if (info != 0)
    return RECD_ENUMERIC;
  ws->factored = 1;
  return 0;
}

/* rf = r / 2^e in float, 2^e the power of two at or below max |r|: exact
 * scaling, so that a tiny late residual neither underflows nor loses bits
 * to subnormals. Returns 2^e, or 0 when r = 0. */
static double foldin__to_float(const double *r, uint32_t k, float *rf) {
  double m = 0.0;
  for (uint32_t a = 0; a < k; a++)
    m = fmax(m, fabs(r[a]));
  if (!(m > 0.0))
    return 0.0;
  const double sc = ldexp(1.0, ilogb(m));
  for (uint32_t a = 0; a < k; a++)
    rf[a] = (float)(r[a] / sc);
  return sc;
}

static double foldin__norm2(const double *x, uint32_t k) {
  double s = 0.0;
  for (uint32_t a = 0; a < k; a++)
    s += x[a] * x[a];
  return s;
}

/* Is x certified: |x - x*| <= |r| / lb <= FOLDIN__TOL |x|? (Squares.) */
static int foldin__certified(double rr, double lb, double xx) {
  return lb > 0.0 && rr <= FOLDIN__TOL * FOLDIN__TOL * lb * lb * xx;
}

/* Asks for the `bytes` at p to be brought into the caches: the history's
 * rows are scattered over the model, and every pass over them after the
 * first finds them in L1/L2 anyway; this lets the first one overlap its
 * misses instead of waiting for each row. */
static inline void foldin__prefetch(const void *p, size_t bytes) {
#if defined(__GNUC__)
  for (size_t o = 0; o < bytes; o += 64)
    __builtin_prefetch((const char *)p + o, 0, 3);
#else
  (void)p;
  (void)bytes;
#endif
}

/* The eigenbasis path (see the top of the file): x' refined in the
 * eigenbasis, then x = E x' checked against the float inputs themselves
 * (the original system's residual): ws->dv[0, k) = x certified and 0, or 1
 * when this path cannot certify x (the caller falls back to Cholesky), or
 * RECD_ENOMEM. Round 1 solves from the float right-hand side and computes
 * the eigenbasis residual r'; round 2 solves for the correction and goes
 * straight to the check, which then normally certifies; any later round
 * computes r' again first and must at least halve it. */
static int foldin__eigen(foldin__basis_t *B, const float *Y, size_t ldy, const float *G,
                         uint32_t k, float lambda, size_t n, foldin_ws_t *ws) {
  const double lb = (double)lambda + B->l_min;
  if (!(lb > 0.0) || n > FOLDIN__EIGEN_MAX_N)
    return 1;
  const uint32_t kp = B->kp;
  double *x = ws->dv, *r = x + kp, *xe = r + kp, *re = xe + kp, *yd = re + kp;
  float *sv = ws->fv, *g = sv + kp, *u = g + kp, *cg = u + kp;
  const float **zh = ws->zp, **zl = ws->zp + n;
  /* The rows z_j, from the cache, or into zs. */
  size_t missing = 0;
  for (size_t j = 0; j < n; j++) {
    const uint32_t i = ws->idx[j];
    if (!foldin__zrow(B, i, Y + (size_t)i * ldy, yd, &zh[j], &zl[j])) {
      zh[j] = NULL;
      missing++;
    } else {
      foldin__prefetch(zh[j], kp * sizeof(float));
      foldin__prefetch(zl[j], kp * sizeof(float));
    }
  }
  if (missing > 0) {
    const int rc = foldin__grow_zs(ws, missing);
    if (rc != 0)
      return rc;
    float *h = ws->zs, *l = ws->zs + missing * kp;
    for (size_t j = 0; j < n; j++)
      if (zh[j] == NULL) {
        foldin__zrow_compute(B->F, k, kp, Y + (size_t)ws->idx[j] * ldy, yd, h, l);
        zh[j] = h;
        zl[j] = l;
        h += kp;
        l += kp;
      }
  }
  /* S only shapes the preconditioner: float is plenty. The padding's
   * eigenvalues are 0 and its S is 0, as every padded entry here. */
  for (uint32_t q = 0; q < kp; q++)
    sv[q] = 1.0f / sqrtf(B->lf[q] + lambda);
  for (uint32_t q = k; q < kp; q++)
    sv[q] = 0.0f;
  memset(xe, 0, kp * sizeof *xe);
  double rr = 0.0; /* |r'|^2 of the last round that computed it */
  for (int round = 0; round < FOLDIN__ROUNDS; round++) {
    double sc = 1.0;
    if (round == 0) {
      foldin__rhs(zh, ws->conf, n, kp, sv, g);
    } else {
      if (round >= 2) {
        const double rr_new =
            foldin__eres(ws->zp, ws->conf, n, B->l, (double)lambda, kp, xe, re);
        if (!(rr_new <= 0.25 * rr))
          return 1; /* |r'| did not halve: too far from converging */
        rr = rr_new;
      }
      if ((sc = foldin__to_float(re, kp, g)) == 0.0)
        return 1; /* r' = 0, and yet x did not pass the check */
      for (uint32_t q = 0; q < kp; q++)
        g[q] *= sv[q];
    }
    foldin__cg(zh, ws->conf, n, kp, sv, g, u, cg);
    for (uint32_t q = 0; q < kp; q++)
      xe[q] += sc * (double)(u[q] * sv[q]);
    if (round == 0) {
      rr = foldin__eres(ws->zp, ws->conf, n, B->l, (double)lambda, kp, xe, re);
      if (!isfinite(rr))
        return 1;
      continue;
    }
    foldin__dtmv(B->F, k, kp, xe, x);
    const double rr0 = foldin__residual(Y, ldy, ws->idx, ws->conf, n, G, k, lambda, x, r);
    if (foldin__certified(rr0, lb, foldin__norm2(x, k)))
      return 0;
  }
  return 1;
}

/* The Cholesky path: x from the float factor of A, then refined with it
 * until certified (lb > 0: lambda + l_min from the eigenbasis), until the
 * correction stops mattering (2^-36 |x|) or the residual stops shrinking
 * (a system too ill-conditioned for float: the best x seen is kept).
 * ws->dv[0, k) = x. Returns 0 or RECD_ENUMERIC. */
static int foldin__cholesky(const float *Y, size_t ldy, const float *G, uint32_t k,
                            float lambda, double lb, size_t n, foldin_ws_t *ws) {
  const int rc = foldin__factor(Y, ldy, G, k, lambda, n, ws);
  if (rc != 0)
    return rc;
  double *x = ws->dv, *r = x + k, *x2 = r + k, *r2 = x2 + k;
  float *rf = ws->fv;
  /* x = 0: r = b = sum c_j y_j. */
  memset(x, 0, (size_t)k * sizeof *x);
  double rr = foldin__residual(Y, ldy, ws->idx, ws->conf, n, G, k, lambda, x, r);
  for (int round = 0; round < FOLDIN__ROUNDS; round++) {
    const double sc = foldin__to_float(r, k, rf);
    if (sc == 0.0)
      break;
    LAPACKE_spotrs_work(LAPACK_COL_MAJOR, 'U', (lapack_int)k, 1, ws->A, (lapack_int)k, rf,
                        (lapack_int)k);
    double dd = 0.0;
    for (uint32_t a = 0; a < k; a++) {
      const double d = sc * rf[a];
      x2[a] = x[a] + d;
      dd += d * d;
    }
    const double rr2 = foldin__residual(Y, ldy, ws->idx, ws->conf, n, G, k, lambda, x2, r2);
    /* The first round is the plain Cholesky solve: always kept. */
    if (round > 0 && !(rr2 < rr))
      break;
    memcpy(x, x2, (size_t)k * sizeof *x);
    memcpy(r, r2, (size_t)k * sizeof *r);
    rr = rr2;
    const double xx = foldin__norm2(x, k);
    if (foldin__certified(rr, lb, xx) || dd <= FOLDIN__TOL * FOLDIN__TOL * xx)
      break;
  }
  return 0;
}

int foldin_solve(const float *Y, size_t ldy, const float *YtY, const params_t *p,
                 const uint32_t *items, const float *weights, size_t n, size_t cap,
                 float *x, size_t *n_used, foldin_ws_t *ws) {
  const uint32_t k = p->factors;
  if (n_used != NULL)
    *n_used = 0;
  if (k == 0)
    return RECD_EINVAL;
  if (n == 0) {
    memset(x, 0, (size_t)k * sizeof *x);
    return 0;
  }
  /* Positions are stored as uint32 and slot values as position + 1. */
  if (n >= UINT32_MAX)
    return foldin__fail(x, k, RECD_EINVAL);
  int rc = foldin__grow_k(ws, k);
  if (rc == 0)
    rc = foldin__grow_n(ws, n);
  if (rc != 0)
    return foldin__fail(x, k, rc);
  ws->n_used = 0;
  ws->factored = 0;

  /* Phase 1. One pass validates, copies and tests for strictly ascending
   * indices; only an unsorted history pays for duplicate merging. The test
   * `w > 0 && w <= FLT_MAX` is false for NaN, infinities and w <= 0. */
  uint32_t *order = ws->order;
  float *conf = ws->conf;
  int ascending = 1;
  for (size_t i = 0; i < n; i++) {
    const float w = weights[i];
    if (!(w > 0.0f && w <= FLT_MAX))
      return foldin__fail(x, k, RECD_EINVAL);
    order[i] = (uint32_t)i;
    conf[i] = w;
    ascending &= i == 0 || items[i] > items[i - 1];
  }
  size_t m = n;
  if (!ascending) {
    const size_t size = foldin__table_size(n);
    if ((rc = foldin__grow_slots(ws, size)) != 0)
      return foldin__fail(x, k, rc);
    m = foldin__merge(ws, items, weights, n, size);
  }

  /* Phase 2. */
  size_t used = m;
  if (cap > 0 && m > cap) {
    foldin__select(order, conf, items, m, cap);
    used = cap;
  }

  /* Phase 3. The entries go in ascending item order whatever the input
   * order, so that the same history gives the same floats bit for bit
   * however it was assembled (a stored history comes strongest first, a
   * cart in page order, and HISTORY a b c must answer exactly like a stored
   * {a, b, c}): the sums of the solve are not associative. An ascending
   * input that the cap did not reorder already is. */
  if (!ascending || used < m)
    foldin__sort_by_item(order, conf, items, used);

  /* Weights become confidences in place. c < 1 (a negative alpha) could not
   * be written as a sqrt-scaled row, and an overflowed c (huge summed
   * weights) would poison the whole system: both are caller errors. */
  for (size_t j = 0; j < used; j++) {
    const float c = params_confidence(p, conf[j]);
    if (!(c >= 1.0f && c <= FLT_MAX))
      return foldin__fail(x, k, RECD_EINVAL);
    conf[j] = c;
    ws->idx[j] = items[order[j]];
    /* Every way of solving reads these rows (the check at least). */
    foldin__prefetch(Y + (size_t)ws->idx[j] * ldy, (size_t)k * sizeof(float));
  }
  /* Phase 4. */
  const float lambda = params_lambda(p, used > UINT32_MAX ? UINT32_MAX : (uint32_t)used);
  foldin__basis_t *B = foldin__acquire(Y, ldy, YtY, k);
  rc = 1;
  uint64_t h = 0;
  if (B != NULL) {
    /* A cached x that passes the check is this solve's answer. */
    h = foldin__memo_hash(ws->idx, conf, used, lambda);
    double *xd = ws->dv, *r = xd + B->kp;
    if (foldin__memo_get(B, h, used, xd) &&
        foldin__certified(foldin__residual(Y, ldy, ws->idx, conf, used, YtY, k, lambda, xd, r),
                          (double)lambda + B->l_min, foldin__norm2(xd, k)))
      rc = 0;
    else if ((rc = foldin__eigen(B, Y, ldy, YtY, k, lambda, used, ws)) == 0)
      foldin__memo_put(B, h, used, ws->dv);
  }
  if (rc == 1)
    rc = foldin__cholesky(Y, ldy, YtY, k, lambda, B != NULL ? (double)lambda + B->l_min : 0.0,
                          used, ws);
  foldin__release(B);
  if (rc != 0)
    return foldin__fail(x, k, rc);
  for (uint32_t d = 0; d < k; d++)
    x[d] = (float)ws->dv[d];
  ws->n_used = used;
  if (n_used != NULL)
    *n_used = used;
  return 0;
}

int foldin_factor(const float *Y, size_t ldy, const float *YtY, const params_t *p,
                  foldin_ws_t *ws) {
  const uint32_t k = p->factors;
  if (ws->n_used == 0 || k == 0 || k > ws->k)
    return RECD_EINVAL;
  if (ws->factored)
    return 0;
  const size_t n = ws->n_used;
  return foldin__factor(Y, ldy, YtY, k,
                        params_lambda(p, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n), n, ws);
}
