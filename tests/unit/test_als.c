/* test_als.c - ALS against direct dense solves, loss, recovery, determinism.
 *
 * Tolerances: factors are float32 and k <= 8 here, so a solve of a
 * well-conditioned k x k system (lambda >= 0.1 keeps the condition number
 * modest) agrees with a double-precision reference to ~1e-5 relative; we
 * allow 1e-3 relative + 1e-4 absolute, far below any real bug's effect.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/als.h"
#include "recd/dataset.h"
#include "recd/eval.h"
#include "recd/foldin.h"
#include "recd/rng.h"
#include "recd/score.h"
#include "testutil.h"

#ifdef RECD_TEST_ALS_WIDE_EMU
/* als.c's AVX-512 version compiled for any CPU (als_wide_emu.c). */
int als_wide_emu_update_side_isa(const csr_t *obs, float *rows, const float *fixed,
                                 uint32_t n_fixed, uint32_t stride, const params_t *p,
                                 uint32_t threads, als_isa_t isa);
#endif

/* The versions compared: each ISA's that this CPU runs, then (when built
 * with als_wide_emu.c) the AVX-512 one as generic code, on any CPU. */
enum { ALS_WIDE_EMU = ALS_ISA_COUNT, ALS_VERSIONS };

static int version_available(int v) {
#ifdef RECD_TEST_ALS_WIDE_EMU
  if (v == ALS_WIDE_EMU)
    return 1;
#endif
  return v < ALS_ISA_COUNT && als_isa_supported((als_isa_t)v);
}

static const char *version_name(int v) {
  return v == ALS_WIDE_EMU ? "avx512-as-generic" : als_isa_name((als_isa_t)v);
}

static int version_update_side(int v, const csr_t *obs, float *rows, const float *fixed,
                               uint32_t n_fixed, uint32_t stride, const params_t *p,
                               uint32_t threads) {
#ifdef RECD_TEST_ALS_WIDE_EMU
  if (v == ALS_WIDE_EMU)
    return als_wide_emu_update_side_isa(obs, rows, fixed, n_fixed, stride, p, threads,
                                        ALS_ISA_AVX512);
#endif
  return als_update_side_isa(obs, rows, fixed, n_fixed, stride, p, threads, (als_isa_t)v);
}

/* Random sparse users x items CSR with weights in [1, 5]. */
static void random_csr(csr_t *m, uint32_t users, uint32_t items, double density,
                       uint64_t seed) {
  rng_t r;
  rng_seed(&r, seed);
  m->n_rows = users;
  m->n_cols = items;
  m->ptr = calloc(users + 1, sizeof *m->ptr);
  m->idx = malloc((size_t)users * items * sizeof *m->idx);
  m->val = malloc((size_t)users * items * sizeof *m->val);
  uint64_t nnz = 0;
  for (uint32_t u = 0; u < users; u++) {
    for (uint32_t i = 0; i < items; i++) {
      if (rng_uniform(&r) < density || i == u % items) { /* every user has >= 1 */
        m->idx[nnz] = i;
        m->val[nnz++] = 1.0f + (float)rng_below(&r, 5);
      }
    }
    m->ptr[u + 1] = nnz;
  }
}

/* Solves the dense normal equations of one row in double:
 * (F^T C F + lambda I) x = F^T C p over ALL n_fixed columns. */
static void dense_row_solve(const csr_t *obs, uint32_t row, const float *fixed,
                            uint32_t n_fixed, uint32_t stride, const params_t *p,
                            double *x) {
  const uint32_t k = p->factors;
  double *A = calloc((size_t)k * k, sizeof *A), *rhs = calloc(k, sizeof *rhs);
  double *c = malloc(n_fixed * sizeof *c), *pv = calloc(n_fixed, sizeof *pv);
  for (uint32_t i = 0; i < n_fixed; i++)
    c[i] = 1.0;
  uint32_t n = (uint32_t)(obs->ptr[row + 1] - obs->ptr[row]);
  for (uint64_t j = obs->ptr[row]; j < obs->ptr[row + 1]; j++) {
    c[obs->idx[j]] = params_confidence(p, obs->val[j]);
    pv[obs->idx[j]] = 1.0;
  }
  for (uint32_t i = 0; i < n_fixed; i++) {
    const float *y = fixed + (size_t)i * stride;
    for (uint32_t a = 0; a < k; a++) {
      for (uint32_t b = 0; b < k; b++)
        A[a * k + b] += c[i] * y[a] * y[b];
      rhs[a] += c[i] * pv[i] * y[a];
    }
  }
  for (uint32_t a = 0; a < k; a++)
    A[a * k + a] += params_lambda(p, n);
  tu_solve(A, (int)k, rhs, 1, x);
  free(A);
  free(rhs);
  free(c);
  free(pv);
}

static params_t test_params(uint32_t k, uint32_t cg_steps, int log_conf, float nu) {
  params_t p = {.factors = k, .iterations = 5, .conf_mode = log_conf ? PARAMS_CONF_LOG
                                                                     : PARAMS_CONF_LINEAR,
                .cg_steps = cg_steps, .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f,
                .reg_exponent = nu, .seed = 7};
  return p;
}

static void check_side_matches_dense(uint32_t cg_steps, int log_conf, float nu) {
  csr_t m, mt;
  random_csr(&m, 30, 20, 0.3, 11);
  ck_assert_int_eq(csr_transpose(&m, &mt), 0);
  params_t p = test_params(6, cg_steps, log_conf, nu);
  als_factors_t f;
  ck_assert_int_eq(als_factors_init(&f, m.n_rows, m.n_cols, &p), 0);
  tu_randn(f.Y, (size_t)f.n_items * f.stride, 3, 0.5f);
  for (uint32_t i = 0; i < f.n_items; i++) /* padding must stay zero */
    memset(f.Y + (size_t)i * f.stride + p.factors, 0, (f.stride - p.factors) * sizeof(float));
  /* Users given Y, then items given the new X: both directions. */
  for (int side = 0; side < 2; side++) {
    const csr_t *obs = side == 0 ? &m : &mt;
    float *rows = side == 0 ? f.X : f.Y;
    const float *fixed = side == 0 ? f.Y : f.X;
    uint32_t n_fixed = side == 0 ? f.n_items : f.n_users;
    /* CG converges in at most k steps in exact arithmetic; 3k leaves
     * float rounding no room to matter. */
    for (int rep = 0; rep < (cg_steps ? 3 : 1); rep++)
      ck_assert_int_eq(als_update_side(obs, rows, fixed, n_fixed, f.stride, &p, 2), 0);
    for (uint32_t r = 0; r < obs->n_rows; r++) {
      double x[16];
      dense_row_solve(obs, r, fixed, n_fixed, f.stride, &p, x);
      for (uint32_t a = 0; a < p.factors; a++) {
        double got = rows[(size_t)r * f.stride + a];
        ck_assert_msg(fabs(got - x[a]) <= 1e-4 + 1e-3 * fabs(x[a]),
                      "side %d row %u dim %u: als %.7g, dense %.7g", side, r, a, got, x[a]);
      }
    }
  }
  als_factors_free(&f);
  csr_free(&m);
  csr_free(&mt);
}

START_TEST(test_cholesky_step_matches_dense) {
  check_side_matches_dense(0, 0, 0.0f);
  check_side_matches_dense(0, 1, 0.5f);
}
END_TEST

START_TEST(test_cg_step_matches_dense) {
  check_side_matches_dense(6, 0, 0.0f);
  check_side_matches_dense(6, 1, 1.0f);
}
END_TEST

typedef struct loss_trace {
  double loss[32];
  uint32_t n;
} loss_trace_t;

static void record_loss(uint32_t it, double loss, double secs, void *arg) {
  (void)secs;
  loss_trace_t *t = arg;
  ck_assert_uint_eq(it, t->n + 1);
  t->loss[t->n++] = loss;
}

START_TEST(test_loss_decreases) {
  /* Exact ALS minimises the objective block by block, so it can never go
   * up; 3 CG steps from a warm start only approximately minimise, so it is
   * checked for a decrease over the run and a tiny tolerance per step. */
  for (uint32_t cg = 0; cg <= 3; cg += 3) {
    csr_t m, mt;
    random_csr(&m, 200, 80, 0.08, 5);
    ck_assert_int_eq(csr_transpose(&m, &mt), 0);
    params_t p = test_params(8, cg, 1, 0.5f);
    p.iterations = 10;
    als_factors_t f;
    ck_assert_int_eq(als_factors_init(&f, m.n_rows, m.n_cols, &p), 0);
    double before = als_loss(&m, &mt, &p, &f);
    als_opts_t o = {.params = p, .threads = 2, .compute_loss = 1};
    loss_trace_t t = {.n = 0};
    char err[RECD_ERRLEN];
    ck_assert_int_eq(als_train(&m, &mt, &o, &f, record_loss, &t, err), 0);
    ck_assert_uint_eq(t.n, 10);
    ck_assert(t.loss[0] < before);
    for (uint32_t i = 1; i < t.n; i++)
      ck_assert_msg(t.loss[i] <= t.loss[i - 1] * (1 + (cg ? 1e-3 : 1e-6)),
                    "cg %u: loss went up at iteration %u: %g -> %g", cg, i + 1,
                    t.loss[i - 1], t.loss[i]);
    ck_assert(t.loss[t.n - 1] < t.loss[0]);
    als_factors_free(&f);
    csr_free(&m);
    csr_free(&mt);
  }
}
END_TEST

START_TEST(test_planted_structure_recovered) {
  /* Users and items belong to one of 4 clusters; a user buys only within
   * their cluster. Held-out purchases must rank far above random. */
  enum { U = 400, I = 200, C = 4 };
  rng_t r;
  rng_seed(&r, 99);
  csr_t m = {.n_rows = U, .n_cols = I};
  m.ptr = calloc(U + 1, sizeof *m.ptr);
  m.idx = malloc(U * I * sizeof *m.idx);
  m.val = malloc(U * I * sizeof *m.val);
  uint64_t nnz = 0;
  for (uint32_t u = 0; u < U; u++) {
    for (uint32_t i = 0; i < I; i++)
      if (i % C == u % C && rng_uniform(&r) < 0.2) {
        m.idx[nnz] = i;
        m.val[nnz++] = 1.0f;
      }
    m.ptr[u + 1] = nnz;
  }
  csr_t train, test, train_t;
  ck_assert_int_eq(eval_holdout_split(&m, 0.2, 1, &train, &test), 0);
  ck_assert_int_eq(csr_transpose(&train, &train_t), 0);
  params_t p = test_params(8, 3, 0, 0.0f);
  p.iterations = 10;
  p.lambda = 0.1f;
  als_factors_t f;
  ck_assert_int_eq(als_factors_init(&f, U, I, &p), 0);
  als_opts_t o = {.params = p, .threads = 2};
  char err[RECD_ERRLEN];
  ck_assert_int_eq(als_train(&train, &train_t, &o, &f, NULL, NULL, err), 0);

  /* Rank test items through fold-in, as serving does. */
  float *G = malloc(p.factors * p.factors * sizeof *G), *scores = malloc(I * sizeof *scores);
  float x[16];
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, p.factors), 0);
  als_gram(f.Y, I, p.factors, f.stride, G);
  double hits = 0, total = 0;
  for (uint32_t u = 0; u < U; u++) {
    uint64_t b = train.ptr[u];
    ck_assert_int_eq(foldin_solve(f.Y, f.stride, G, &p, train.idx + b, train.val + b,
                                  (size_t)(train.ptr[u + 1] - b), 0, x, NULL, &ws), 0);
    score_items(f.Y, f.stride, I, p.factors, x, scores);
    topk_filter_t flt = {.exclude = train.idx + b, .n_exclude = (size_t)(train.ptr[u + 1] - b)};
    uint32_t top[10];
    size_t got = topk_select(scores, I, &flt, 10, top, NULL);
    for (size_t j = 0; j < got; j++) {
      total++;
      hits += top[j] % C == u % C; /* recommended within the user's cluster */
    }
  }
  /* Random ranking puts 1/C = 25% in the cluster; the model must be near 100%. */
  ck_assert_msg(hits / total > 0.95, "in-cluster share %.3f", hits / total);
  foldin_ws_free(&ws);
  free(G);
  free(scores);
  als_factors_free(&f);
  csr_free(&m);
  csr_free(&train);
  csr_free(&test);
  csr_free(&train_t);
}
END_TEST

START_TEST(test_foldin_reproduces_trained_user) {
  /* After a final exact user step against the final Y, folding a training
   * user in from their history must give their trained vector: it is the
   * same computation, which is the point of serving by fold-in. */
  csr_t m, mt;
  random_csr(&m, 100, 60, 0.1, 21);
  ck_assert_int_eq(csr_transpose(&m, &mt), 0);
  params_t p = test_params(8, 3, 1, 0.5f);
  als_factors_t f;
  ck_assert_int_eq(als_factors_init(&f, m.n_rows, m.n_cols, &p), 0);
  als_opts_t o = {.params = p, .threads = 2};
  char err[RECD_ERRLEN];
  ck_assert_int_eq(als_train(&m, &mt, &o, &f, NULL, NULL, err), 0);
  params_t exact = p;
  exact.cg_steps = 0;
  ck_assert_int_eq(als_update_side(&m, f.X, f.Y, f.n_items, f.stride, &exact, 2), 0);
  float *G = malloc(64 * sizeof *G);
  als_gram(f.Y, f.n_items, 8, f.stride, G);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, 8), 0);
  for (uint32_t u = 0; u < m.n_rows; u++) {
    float x[8];
    size_t used;
    ck_assert_int_eq(foldin_solve(f.Y, f.stride, G, &p, m.idx + m.ptr[u], m.val + m.ptr[u],
                                  (size_t)(m.ptr[u + 1] - m.ptr[u]), 0, x, &used, &ws), 0);
    ck_assert_uint_eq(used, m.ptr[u + 1] - m.ptr[u]);
    for (int a = 0; a < 8; a++)
      ck_assert_float_eq_tol(x[a], f.X[(size_t)u * f.stride + a], 1e-5f);
  }
  foldin_ws_free(&ws);
  free(G);
  als_factors_free(&f);
  csr_free(&m);
  csr_free(&mt);
}
END_TEST

START_TEST(test_deterministic_for_seed_and_threads) {
  /* Rows are independent given the fixed side, so even the thread count
   * cannot change the bytes; a different seed must. */
  csr_t m, mt;
  random_csr(&m, 300, 100, 0.05, 8);
  ck_assert_int_eq(csr_transpose(&m, &mt), 0);
  params_t p = test_params(16, 3, 1, 0.5f);
  als_factors_t f[3];
  uint32_t threads[3] = {2, 2, 1};
  char err[RECD_ERRLEN];
  for (int t = 0; t < 3; t++) {
    ck_assert_int_eq(als_factors_init(&f[t], m.n_rows, m.n_cols, &p), 0);
    als_opts_t o = {.params = p, .threads = threads[t]};
    ck_assert_int_eq(als_train(&m, &mt, &o, &f[t], NULL, NULL, err), 0);
  }
  size_t ybytes = (size_t)f[0].n_items * f[0].stride * sizeof(float);
  ck_assert_int_eq(memcmp(f[0].Y, f[1].Y, ybytes), 0);
  ck_assert_int_eq(memcmp(f[0].Y, f[2].Y, ybytes), 0);
  als_factors_t g;
  p.seed = 8;
  ck_assert_int_eq(als_factors_init(&g, m.n_rows, m.n_cols, &p), 0);
  als_opts_t o = {.params = p, .threads = 2};
  ck_assert_int_eq(als_train(&m, &mt, &o, &g, NULL, NULL, err), 0);
  ck_assert_int_ne(memcmp(f[0].Y, g.Y, ybytes), 0);
  for (int t = 0; t < 3; t++)
    als_factors_free(&f[t]);
  als_factors_free(&g);
  csr_free(&m);
  csr_free(&mt);
}
END_TEST

/* The CG row update written out one row at a time in plain scalar C, with
 * every sum in the order als.c fixes (a dot product in 16 lanes added in
 * one tree; G v and the observations' terms left to right). Whatever the
 * kernels do to go fast (rows in lock step, G v for several rows at once,
 * observations in blocks, SSE2, AVX2 or AVX-512), the model must be this,
 * bit for bit: it is also the arithmetic of the per-row update that came
 * before them, so models do not change. */
static float ref_dot(const float *a, const float *b, uint32_t kp) {
  float l[16] = {0};
  for (uint32_t j = 0; j < kp; j += 16)
    for (uint32_t q = 0; q < 16; q++)
      l[q] = l[q] + a[j + q] * b[j + q];
  return (((l[0] + l[8]) + (l[4] + l[12])) + ((l[2] + l[10]) + (l[6] + l[14]))) +
         (((l[1] + l[9]) + (l[5] + l[13])) + ((l[3] + l[11]) + (l[7] + l[15])));
}

/* out = G v, or out += the observations' terms (resid: of b - A x). */
static void ref_symv(const float *G, uint32_t k, const float *v, float *out) {
  for (uint32_t i = 0; i < k; i++) {
    float s = 0.0f;
    for (uint32_t j = 0; j < k; j++)
      s = s + v[j] * G[(size_t)j * k + i];
    out[i] = s;
  }
}

static void ref_obs(const uint32_t *idx, const float *val, size_t n, const float *fixed,
                    uint32_t stride, const params_t *p, const float *v, float *out,
                    int resid) {
  const uint32_t k = p->factors, kp = (k + 15) & ~15u;
  for (size_t j = 0; j < n; j++) {
    const float *y = fixed + (size_t)idx[j] * stride;
    const float c = params_confidence(p, val[j]), s = ref_dot(y, v, kp);
    const float coef = resid ? c - (c - 1.0f) * s : (c - 1.0f) * s;
    for (uint32_t q = 0; q < k; q++)
      out[q] = out[q] + coef * y[q];
  }
}

static void ref_cg_row(const uint32_t *idx, const float *val, size_t n, const float *fixed,
                       uint32_t stride, const float *G, const params_t *p, float *x) {
  const uint32_t k = p->factors, kp = (k + 15) & ~15u;
  float r[272] = {0}, d[272] = {0}, Ad[272] = {0};
  const float lambda = params_lambda(p, (uint32_t)n);
  ref_symv(G, k, x, Ad);
  for (uint32_t i = 0; i < k; i++)
    r[i] = -Ad[i] - lambda * x[i];
  ref_obs(idx, val, n, fixed, stride, p, x, r, 1);
  for (uint32_t i = 0; i < k; i++)
    d[i] = r[i];
  float rs_old = ref_dot(r, r, kp);
  for (uint32_t it = 0; it < p->cg_steps; it++) {
    if (rs_old < 1e-20f)
      break;
    ref_symv(G, k, d, Ad);
    for (uint32_t i = 0; i < k; i++)
      Ad[i] += lambda * d[i];
    ref_obs(idx, val, n, fixed, stride, p, d, Ad, 0);
    float dAd = ref_dot(d, Ad, kp);
    if (!(dAd > 0.0f))
      break;
    float a = rs_old / dAd;
    for (uint32_t i = 0; i < k; i++) {
      x[i] += a * d[i];
      r[i] -= a * Ad[i];
    }
    float rs_new = ref_dot(r, r, kp);
    const float beta = rs_new / rs_old;
    for (uint32_t i = 0; i < k; i++)
      d[i] = beta * d[i] + r[i];
    rs_old = rs_new;
  }
}

START_TEST(test_cg_bits_match_reference_on_every_isa) {
  /* Row lengths 0 .. 40 (every tail of the blocks of 4 and 8 observations,
   * groups of 8 rows with a partial last one, rows that stop at once: an
   * empty history from x = 0 has a zero residual), k around the 16-float
   * lanes, strides wider than needed, both confidences, 1 and 3 threads. */
  const uint32_t ks[] = {1, 5, 16, 17, 37, 64, 100, 256};
  for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
    const uint32_t k = ks[t], kp = (k + 15) & ~15u, stride = kp + (t % 2 ? 16 : 0);
    csr_t m, mt;
    random_csr(&m, 77, 41, 0.25, 100 + t);
    /* rows 70 .. 76: 0 .. 6 observations (items 0, 1, ...) */
    for (uint32_t u = 70; u < 77; u++) {
      m.ptr[u + 1] = m.ptr[u] + (u - 70);
      for (uint32_t j = 0; j < u - 70; j++) {
        m.idx[m.ptr[u] + j] = j;
        m.val[m.ptr[u] + j] = 1.0f + (float)j;
      }
    }
    ck_assert_int_eq(csr_transpose(&m, &mt), 0);
    params_t p = test_params(k, 3, (int)(t % 2), t % 3 ? 0.5f : 0.0f);
    const uint32_t nrow[2] = {m.n_rows, mt.n_rows};
    float *fixed[2], *start[2], *want[2], *got[2];
    for (int side = 0; side < 2; side++) {
      const uint32_t nf = nrow[1 - side];
      size_t rows = (size_t)nrow[side] * stride, fs = (size_t)nf * stride;
      fixed[side] = calloc(fs, sizeof(float));
      start[side] = calloc(rows, sizeof(float));
      want[side] = calloc(rows, sizeof(float));
      got[side] = calloc(rows, sizeof(float));
      tu_randn(fixed[side], fs, 40 + t, 0.3f);
      tu_randn(start[side], rows, 50 + t, 0.1f);
      for (size_t i = 0; i < fs; i++)
        if (i % stride >= k)
          fixed[side][i] = 0.0f;
      for (size_t i = 0; i < rows; i++)
        if (i % stride >= k || (side == 0 && i / stride == 70))
          start[side][i] = 0.0f; /* user 70: no history, x = 0 */
      const csr_t *obs = side == 0 ? &m : &mt;
      float *G = malloc((size_t)k * k * sizeof *G);
      als_gram(fixed[side], nf, k, stride, G);
      memcpy(want[side], start[side], rows * sizeof(float));
      for (uint32_t r = 0; r < obs->n_rows; r++) {
        uint64_t b = obs->ptr[r];
        ref_cg_row(obs->idx + b, obs->val + b, (size_t)(obs->ptr[r + 1] - b), fixed[side],
                   stride, G, &p, want[side] + (size_t)r * stride);
      }
      free(G);
    }
    int ran = 0;
    for (int isa = 0; isa < ALS_VERSIONS; isa++) {
      if (isa == ALS_WIDE_EMU && !version_available(isa))
        continue;
      if (!version_available(isa)) {
        ck_assert_int_eq(als_update_side_isa(&m, got[0], fixed[0], nrow[1], stride, &p, 1,
                                             (als_isa_t)isa),
                         RECD_EINVAL);
        continue;
      }
      ran++;
      for (uint32_t threads = 1; threads <= 3; threads += 2)
        for (int side = 0; side < 2; side++) {
          const csr_t *obs = side == 0 ? &m : &mt;
          size_t bytes = (size_t)nrow[side] * stride * sizeof(float);
          memcpy(got[side], start[side], bytes);
          ck_assert_int_eq(version_update_side(isa, obs, got[side], fixed[side],
                                               nrow[1 - side], stride, &p, threads),
                           0);
          ck_assert_msg(memcmp(got[side], want[side], bytes) == 0,
                        "k %u side %d isa %s threads %u: not the reference's bits", k, side,
                        version_name(isa), threads);
        }
    }
    ck_assert_int_ge(ran, 1);
    for (int side = 0; side < 2; side++) {
      free(fixed[side]);
      free(start[side]);
      free(want[side]);
      free(got[side]);
    }
    csr_free(&m);
    csr_free(&mt);
  }
}
END_TEST

START_TEST(test_isa_names_and_default) {
  ck_assert_str_eq(als_isa_name(ALS_ISA_BASELINE), "baseline");
  ck_assert_str_eq(als_isa_name(ALS_ISA_AVX2), "avx2");
  ck_assert_str_eq(als_isa_name(ALS_ISA_AVX512), "avx512");
  ck_assert(als_isa_supported(ALS_ISA_BASELINE));
  ck_assert(als_isa_supported(als_isa_default()));
  /* the default is the best the CPU runs unless RECD_ALS_ISA asks */
  if (getenv("RECD_ALS_ISA") == NULL)
    for (int isa = als_isa_default() + 1; isa < ALS_ISA_COUNT; isa++)
      ck_assert(!als_isa_supported((als_isa_t)isa));
}
END_TEST

START_TEST(test_rejects_bad_params) {
  csr_t m, mt;
  random_csr(&m, 10, 10, 0.2, 1);
  ck_assert_int_eq(csr_transpose(&m, &mt), 0);
  params_t p = test_params(4, 3, 0, 0.0f);
  als_factors_t f;
  ck_assert_int_eq(als_factors_init(&f, 10, 10, &p), 0);
  char err[RECD_ERRLEN];
  als_opts_t o = {.params = p, .threads = 1};
  o.params.lambda = 0.0f;
  ck_assert_int_eq(als_train(&m, &mt, &o, &f, NULL, NULL, err), RECD_EINVAL);
  ck_assert_str_eq(err, "als: lambda must be > 0 (got 0)");
  o.params = p;
  o.params.conf_mode = PARAMS_CONF_LOG;
  o.params.eps = 0.0f;
  ck_assert_int_eq(als_train(&m, &mt, &o, &f, NULL, NULL, err), RECD_EINVAL);
  ck_assert_str_eq(err, "als: eps must be > 0 (got 0)");
  als_factors_free(&f);
  csr_free(&m);
  csr_free(&mt);
}
END_TEST

static Suite *als_suite(void) {
  Suite *s = suite_create("als");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_cholesky_step_matches_dense);
  tcase_add_test(tc, test_cg_step_matches_dense);
  tcase_add_test(tc, test_loss_decreases);
  tcase_add_test(tc, test_planted_structure_recovered);
  tcase_add_test(tc, test_foldin_reproduces_trained_user);
  tcase_add_test(tc, test_deterministic_for_seed_and_threads);
  tcase_add_test(tc, test_rejects_bad_params);
  tcase_add_test(tc, test_cg_bits_match_reference_on_every_isa);
  tcase_add_test(tc, test_isa_names_and_default);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(als_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
