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
 * has a fixed order that depends only on k, never on alignment, thread or
 * which code path (SSE2 or AVX2 clone) runs, so the model bytes are the same
 * for any thread count (and the clones agree bit for bit: ISO C mode does
 * not contract a*b+c into an FMA, and the AVX2 target does not enable FMA).
 */

/* Observations processed together by als__obs_apply(): their 4 dot
 * products share the loads of v, and their 4 updates of out share one load
 * and store of out. */
#define ALS_OBS_BLOCK 4

/* The kernels must be inlined into each clone of als__cg_row(): called out
 * of line they would only exist in the baseline (SSE2) version. */
#if defined(__GNUC__)
#define ALS_INLINE static inline __attribute__((always_inline))
#else
#define ALS_INLINE static inline
#endif

/* Dot products are summed in 16 lanes (two 8-float vectors) over the
 * padded length kp = k rounded up to 16 (<= stride), then the lanes are
 * added in a fixed tree. Padding is zero in factor rows and in the CG
 * vectors, so the extra terms add exactly +0, and without a tail loop the
 * lanes stay in registers (GCC 12 spilled them to the stack when a
 * variable-length tail fed the same lanes). 16 independent lanes keep a
 * k = 64 dot from being one long chain of dependent adds.
 *
 * The lanes are a GNU C vector type, as plain loops of this shape were
 * vectorised across the wrong dimension; other compilers get a struct with
 * the same lane-wise arithmetic in scalar C (same bits). Macros rather than
 * functions, so that no 32-byte vector is ever passed by value (an ABI that
 * differs between the clones; GCC warns with -Wpsabi). */
#if defined(__GNUC__)
typedef float als__v8 __attribute__((vector_size(32)));
#define ALS_V8_ZERO ((als__v8){0, 0, 0, 0, 0, 0, 0, 0})
#define ALS_V8_MULADD(acc, a, b) ((acc) += (a) * (b)) /* two roundings: no FMA */
#define ALS_V8_LANE(v, l) ((v)[l])
/* An unaligned load (the element alignment, as _mm256_loadu_ps), allowed to
 * alias the floats it reads. */
typedef float als__v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define ALS_V8_LOAD(src) (*(const als__v8u *)(const void *)(src))
#else
typedef struct als__v8 {
  float f[8];
} als__v8;
#define ALS_V8_ZERO ((als__v8){{0}})
#define ALS_V8_MULADD(acc, a, b)                                                  \
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

/* s[0..3] = y0..y3 . v, each summed exactly as als__dot() sums it; the four
 * share every load of v. */
ALS_INLINE void als__dot4(const float *restrict y0, const float *restrict y1,
                          const float *restrict y2, const float *restrict y3,
                          const float *restrict v, uint32_t kp, float *s) {
  als__v8 l0 = ALS_V8_ZERO, h0 = ALS_V8_ZERO, l1 = ALS_V8_ZERO, h1 = ALS_V8_ZERO;
  als__v8 l2 = ALS_V8_ZERO, h2 = ALS_V8_ZERO, l3 = ALS_V8_ZERO, h3 = ALS_V8_ZERO;
  for (uint32_t j = 0; j < kp; j += 16) {
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
  s[0] = ALS_LANES_SUM(l0, h0);
  s[1] = ALS_LANES_SUM(l1, h1);
  s[2] = ALS_LANES_SUM(l2, h2);
  s[3] = ALS_LANES_SUM(l3, h3);
}

/* out = G v for the full symmetric k x k G: out accumulates rows of G (the
 * columns, by symmetry) scaled by v[j], so the inner loop is a contiguous
 * axpy the compiler vectorises. Four rows per pass: one load and store of
 * out per 4 rows, and the sum for each out[i] still runs j = 0, 1, 2, ...
 * left to right (C evaluates a + b + c + d as ((a + b) + c) + d). */
ALS_INLINE void als__symv(const float *restrict G, uint32_t k,
                          const float *restrict v, float *restrict out) {
  for (uint32_t i = 0; i < k; i++)
    out[i] = 0.0f;
  uint32_t j = 0;
  for (; j + 4 <= k; j += 4) {
    const float *g0 = G + (size_t)j * k, *g1 = g0 + k, *g2 = g1 + k, *g3 = g2 + k;
    const float v0 = v[j], v1 = v[j + 1], v2 = v[j + 2], v3 = v[j + 3];
    for (uint32_t i = 0; i < k; i++)
      out[i] = out[i] + v0 * g0[i] + v1 * g1[i] + v2 * g2[i] + v3 * g3[i];
  }
  for (; j < k; j++) {
    const float *g = G + (size_t)j * k;
    const float vj = v[j];
    for (uint32_t i = 0; i < k; i++)
      out[i] += vj * g[i];
  }
}

/* For each observation j of a row (fixed-side vector y_j, confidence c_j):
 *   s = y_j . v;  out += coef * y_j  with
 *   coef = c_j - (c_j - 1) s   (resid: the b - A x terms of the residual), or
 *   coef = (c_j - 1) s         (otherwise: the sum (c-1) y y^T v of A v).
 * Observations are taken ALS_OBS_BLOCK at a time; the updates of out keep
 * the order j = 0, 1, 2, ... of one axpy per observation. */
ALS_INLINE void als__obs_apply(const uint32_t *restrict idx,
                               const float *restrict conf, size_t n,
                               const float *restrict fixed, uint32_t stride,
                               uint32_t k, uint32_t kp, const float *restrict v,
                               float *restrict out, int resid) {
  size_t j = 0;
  for (; j + ALS_OBS_BLOCK <= n; j += ALS_OBS_BLOCK) {
    const float *y0 = fixed + (size_t)idx[j] * stride;
    const float *y1 = fixed + (size_t)idx[j + 1] * stride;
    const float *y2 = fixed + (size_t)idx[j + 2] * stride;
    const float *y3 = fixed + (size_t)idx[j + 3] * stride;
    float s[ALS_OBS_BLOCK];
    als__dot4(y0, y1, y2, y3, v, kp, s);
    float coef[ALS_OBS_BLOCK];
    for (uint32_t b = 0; b < ALS_OBS_BLOCK; b++) {
      const float c = conf[j + b];
      coef[b] = resid ? c - (c - 1.0f) * s[b] : (c - 1.0f) * s[b];
    }
    for (uint32_t q = 0; q < k; q++)
      out[q] = out[q] + coef[0] * y0[q] + coef[1] * y1[q] + coef[2] * y2[q] +
               coef[3] * y3[q];
  }
  for (; j < n; j++) {
    const float *y = fixed + (size_t)idx[j] * stride;
    const float c = conf[j];
    const float sj = als__dot(y, v, kp);
    const float coef = resid ? c - (c - 1.0f) * sj : (c - 1.0f) * sj;
    for (uint32_t q = 0; q < k; q++)
      out[q] += coef * y[q];
  }
}

/* One row's conjugate-gradient update, warm-started from x (Takacs et al.
 * 2011, as in the implicit library). A = G + lambda I + sum (c-1) y y^T and
 * b = sum c y are never formed: A p is computed from G and the row's
 * observations, so a step costs O(k^2 + n k). conf[j] is the confidence of
 * observation j (als__confidences). tmp holds 3 vectors of stride floats,
 * zero from k on; x and the rows of fixed are zero from k on as well.
 *
 * Compiled twice where the compiler can (GCC on x86-64, glibc ifunc): for
 * AVX2 and for the baseline, picked once at load time. Both give the same
 * bits (see above); AVX2 halves the instructions of every kernel. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
__attribute__((target_clones("avx2", "default")))
#endif
static void als__cg_row(const uint32_t *restrict idx, const float *restrict conf,
                        size_t n, const float *restrict fixed, uint32_t stride,
                        const float *restrict G, const params_t *p,
                        float *restrict x, float *restrict tmp) {
  const uint32_t k = p->factors, kp = als__stride(k);
  float *restrict r = tmp, *restrict d = tmp + stride;
  float *restrict Ad = tmp + 2 * (size_t)stride;
  const float lambda = params_lambda(p, (uint32_t)n);

  /* r = b - A x */
  als__symv(G, k, x, Ad);
  for (uint32_t i = 0; i < k; i++)
    r[i] = -Ad[i] - lambda * x[i];
  als__obs_apply(idx, conf, n, fixed, stride, k, kp, x, r, 1);
  for (uint32_t i = 0; i < k; i++)
    d[i] = r[i];
  float rs_old = als__dot(r, r, kp);
  for (uint32_t it = 0; it < p->cg_steps; it++) {
    if (rs_old < 1e-20f)
      break; /* converged; another step would divide by ~0 */
    als__symv(G, k, d, Ad);
    for (uint32_t i = 0; i < k; i++)
      Ad[i] += lambda * d[i];
    als__obs_apply(idx, conf, n, fixed, stride, k, kp, d, Ad, 0);
    float dAd = als__dot(d, Ad, kp);
    if (!(dAd > 0.0f))
      break; /* only rounding can make A look indefinite here */
    float a = rs_old / dAd;
    for (uint32_t i = 0; i < k; i++) {
      x[i] += a * d[i];
      r[i] -= a * Ad[i];
    }
    float rs_new = als__dot(r, r, kp);
    const float beta = rs_new / rs_old;
    for (uint32_t i = 0; i < k; i++)
      d[i] = beta * d[i] + r[i];
    rs_old = rs_new;
  }
}

/* Shared state of one half-sweep. */
typedef struct als__job {
  const csr_t *obs;
  const float *conf; /* confidence of every entry of obs */
  float *rows;
  const float *fixed;
  uint32_t stride;
  const float *G;
  const params_t *p;
  atomic_uint_fast32_t next; /* first row of the next unclaimed chunk */
  atomic_int err;            /* first error, 0 if none */
} als__job_t;

static void als__worker(void *arg) {
  als__job_t *job = arg;
  const params_t *p = job->p;
  const uint32_t k = p->factors;
  /* Three CG vectors, each starting on a 64-byte boundary like the rows. */
  float *tmp = als__alloc_rows(3, job->stride);
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
  for (;;) {
    uint32_t lo = (uint32_t)atomic_fetch_add(&job->next, ALS_CHUNK);
    if (lo >= job->obs->n_rows || atomic_load(&job->err) != 0)
      break;
    uint32_t hi = lo + ALS_CHUNK < job->obs->n_rows ? lo + ALS_CHUNK : job->obs->n_rows;
    for (uint32_t r = lo; r < hi; r++) {
      const uint64_t b = job->obs->ptr[r], e = job->obs->ptr[r + 1];
      float *x = job->rows + (size_t)r * job->stride;
      if (have_ws) {
        int rc = foldin_solve(job->fixed, job->stride, job->G, p, job->obs->idx + b,
                              job->obs->val + b, (size_t)(e - b), 0, x, NULL, &ws);
        if (rc != 0) {
          atomic_store(&job->err, rc);
          break;
        }
      } else {
        als__cg_row(job->obs->idx + b, job->conf + b, (size_t)(e - b),
                    job->fixed, job->stride, job->G, p, x, tmp);
      }
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
                            const params_t *p, uint32_t threads) {
  const uint32_t k = p->factors;
  /* The kernels read rows up to k rounded up to 16 (als__dot). */
  if (stride < als__stride(k) || stride % 16 != 0)
    return RECD_EINVAL;
  float *G = malloc((size_t)k * k * sizeof *G);
  if (G == NULL)
    return RECD_ENOMEM;
  als_gram(fixed, n_fixed, k, stride, G);

  als__job_t job = {.obs = obs, .conf = conf, .rows = rows, .fixed = fixed,
                    .stride = stride, .G = G, .p = p};
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
  return atomic_load(&job.err);
}

int als_update_side(const csr_t *obs, float *rows, const float *fixed,
                    uint32_t n_fixed, uint32_t stride, const params_t *p,
                    uint32_t threads) {
  float *conf = als__confidences(obs, p);
  if (conf == NULL)
    return RECD_ENOMEM;
  int rc = als__update_side(obs, conf, rows, fixed, n_fixed, stride, p, threads);
  free(conf);
  return rc;
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
  int rc = 0;
  for (uint32_t it = 0; it < p->iterations && rc == 0; it++) {
    double t0 = als__now();
    rc = als__update_side(by_user, conf_u, f->X, f->Y, f->n_items, f->stride, p,
                          o->threads);
    if (rc == 0)
      rc = als__update_side(by_item, conf_i, f->Y, f->X, f->n_users, f->stride, p,
                            o->threads);
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
