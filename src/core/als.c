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

/* One row's conjugate-gradient update, warm-started from x (Takacs et al.
 * 2011, as in the implicit library). A = G + lambda I + sum (c-1) y y^T and
 * b = sum c y are never formed: A p is computed from G and the row's
 * observations, so a step costs O(k^2 + n k). conf[j] is the confidence of
 * observation j (als__confidences). tmp holds 3k floats. */
static void als__cg_row(const uint32_t *idx, const float *conf, size_t n,
                        const float *fixed, uint32_t stride, const float *G,
                        const params_t *p, float *x, float *tmp) {
  const int k = (int)p->factors;
  float *r = tmp, *d = tmp + k, *Ad = tmp + 2 * k;
  const float lambda = params_lambda(p, (uint32_t)n);

  /* r = b - A x */
  cblas_ssymv(CblasRowMajor, CblasUpper, k, -1.0f, G, k, x, 1, 0.0f, r, 1);
  cblas_saxpy(k, -lambda, x, 1, r, 1);
  for (size_t j = 0; j < n; j++) {
    const float *y = fixed + (size_t)idx[j] * stride;
    float c = conf[j];
    float yx = cblas_sdot(k, y, 1, x, 1);
    cblas_saxpy(k, c - (c - 1.0f) * yx, y, 1, r, 1);
  }
  memcpy(d, r, (size_t)k * sizeof *d);
  float rs_old = cblas_sdot(k, r, 1, r, 1);
  for (uint32_t it = 0; it < p->cg_steps; it++) {
    if (rs_old < 1e-20f)
      break; /* converged; another step would divide by ~0 */
    cblas_ssymv(CblasRowMajor, CblasUpper, k, 1.0f, G, k, d, 1, 0.0f, Ad, 1);
    cblas_saxpy(k, lambda, d, 1, Ad, 1);
    for (size_t j = 0; j < n; j++) {
      const float *y = fixed + (size_t)idx[j] * stride;
      float c = conf[j];
      cblas_saxpy(k, (c - 1.0f) * cblas_sdot(k, y, 1, d, 1), y, 1, Ad, 1);
    }
    float dAd = cblas_sdot(k, d, 1, Ad, 1);
    if (!(dAd > 0.0f))
      break; /* only rounding can make A look indefinite here */
    float a = rs_old / dAd;
    cblas_saxpy(k, a, d, 1, x, 1);
    cblas_saxpy(k, -a, Ad, 1, r, 1);
    float rs_new = cblas_sdot(k, r, 1, r, 1);
    cblas_sscal(k, rs_new / rs_old, d, 1);
    cblas_saxpy(k, 1.0f, r, 1, d, 1);
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
  float *tmp = malloc(3 * (size_t)k * sizeof *tmp);
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
