/* test_foldin.c - foldin_solve against a dense double-precision reference.
 *
 * The reference is deliberately the slow, obvious formula of foldin.h with
 * nothing borrowed from the kernel: C_u is a full diagonal over ALL items
 * (c = 1 off the history), the k x k normal equations
 *
 *   (sum_i c_i y_i y_i^T + lambda_u I) x = sum_{i in history} c_i y_i
 *
 * are summed in double straight from Y, and solved by Gaussian elimination
 * with partial pivoting.
 *
 * Tolerances. With u = 2^-24 (float unit roundoff), the kernel's result x^
 * is the exact solution of a nearby system (A + dA) x^ = b + db: YtY is
 * rounded to float (u), each entry of the history update and of b is a
 * float sum of n_used products (about n_used u), and Cholesky with the
 * triangular solves is backward stable with a constant of about 2k u
 * (Higham, "Accuracy and Stability of Numerical Algorithms", thm 10.4 and
 * 8.5). The normwise backward error
 *
 *   eta = |A x^ - b|_inf / (|A|_inf |x^|_inf + |b|_inf)
 *
 * is therefore bounded by BACKWARD_TOL = 4 (n_used + 2k + 4) u, which is
 * independent of the conditioning and so also holds for huge confidences.
 * The forward error then obeys |x^ - x| / |x| <= 2 kappa eta / (1 - kappa
 * eta) (Higham thm 7.2), kappa = |A|_inf |A^-1|_inf computed here in double;
 * it is checked whenever that bound is meaningful (kappa eta < 1/2).
 * A bug such as the wrong lambda_u (n instead of n_used), c instead of c - 1
 * or a dropped history row perturbs A by far more than 1e-4 |A| and fails.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/foldin.h"
#include "recd/rng.h"
#include "testutil.h"

#define U_F 0x1p-24 /* float unit roundoff */

/* ck_assert* reports every passing check to the parent process in fork
 * mode (a write per assertion); inside loops only a failure may cost. */
#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

/* Item factors with a padded stride; the padding holds NaN so that any read
 * outside the k leading floats of a row poisons the result. */
static float *make_Y(uint32_t N, uint32_t k, size_t ldy, uint64_t seed, float sd) {
  float *Y = malloc((size_t)N * ldy * sizeof *Y);
  float *row = malloc(k * sizeof *row);
  ck_assert_ptr_nonnull(Y);
  rng_t r;
  rng_seed(&r, seed);
  for (uint32_t i = 0; i < N; i++) {
    for (uint32_t d = 0; d < k; d++)
      row[d] = (float)rng_normal(&r) * sd;
    memcpy(Y + (size_t)i * ldy, row, k * sizeof *row);
    for (size_t d = k; d < ldy; d++)
      Y[(size_t)i * ldy + d] = NAN;
  }
  free(row);
  return Y;
}

/* YtY as the model stores it: summed in double, rounded once to float. */
static float *make_gram(const float *Y, uint32_t N, uint32_t k, size_t ldy) {
  float *G = malloc((size_t)k * k * sizeof *G);
  for (uint32_t a = 0; a < k; a++)
    for (uint32_t b = 0; b < k; b++) {
      double s = 0;
      for (uint32_t i = 0; i < N; i++)
        s += (double)Y[i * ldy + a] * Y[i * ldy + b];
      G[a * k + b] = (float)s;
    }
  return G;
}

static double conf_ref(const params_t *p, double w) {
  if (p->conf_mode == PARAMS_CONF_LOG)
    return 1.0 + (double)p->alpha * log1p(w / (double)p->eps);
  return 1.0 + (double)p->alpha * w;
}

/* The dense normal equations of the used (distinct) history items. */
static void ref_system(const float *Y, uint32_t N, uint32_t k, size_t ldy, const params_t *p,
                       const uint32_t *items, const double *w, size_t n, double *A,
                       double *b) {
  double *c = malloc(N * sizeof *c);
  for (uint32_t i = 0; i < N; i++)
    c[i] = 1.0;
  for (size_t j = 0; j < n; j++)
    c[items[j]] = conf_ref(p, w[j]);
  for (uint32_t a = 0; a < k; a++) {
    b[a] = 0;
    for (uint32_t bb = 0; bb < k; bb++) {
      double s = 0;
      for (uint32_t i = 0; i < N; i++)
        s += c[i] * Y[i * ldy + a] * Y[i * ldy + bb];
      A[a * k + bb] = s;
    }
  }
  for (size_t j = 0; j < n; j++)
    for (uint32_t a = 0; a < k; a++)
      b[a] += c[items[j]] * Y[items[j] * ldy + a];
  const double lam =
      n == 0 ? p->lambda
             : (double)p->lambda * (p->reg_exponent == 0 ? 1.0 : pow((double)n, p->reg_exponent));
  for (uint32_t a = 0; a < k; a++)
    A[a * k + a] += lam;
  free(c);
}

/* x = A^-1 b (A, b untouched), by the shared reference solver. */
static void ge_solve(const double *A, const double *b, uint32_t k, double *x) {
  tu_solve(A, (int)k, b, 1, x);
}

static double norm_inf_mat(const double *A, uint32_t k) {
  double m = 0;
  for (uint32_t r = 0; r < k; r++) {
    double s = 0;
    for (uint32_t c = 0; c < k; c++)
      s += fabs(A[r * k + c]);
    m = s > m ? s : m;
  }
  return m;
}

/* kappa_inf(A) = |A|_inf |A^-1|_inf, A^-1 column by column. */
static double cond_inf(const double *A, uint32_t k) {
  double *e = calloc(k, sizeof *e), *col = malloc(k * sizeof *col);
  double *rows = calloc(k, sizeof *rows); /* row sums of |A^-1| */
  for (uint32_t j = 0; j < k; j++) {
    e[j] = 1;
    ge_solve(A, e, k, col);
    e[j] = 0;
    for (uint32_t r = 0; r < k; r++)
      rows[r] += fabs(col[r]);
  }
  double m = 0;
  for (uint32_t r = 0; r < k; r++)
    m = rows[r] > m ? rows[r] : m;
  free(e);
  free(col);
  free(rows);
  return norm_inf_mat(A, k) * m;
}

/* ws->A after foldin_factor(): the Cholesky factor L of the last solve's
 * system, which WITHREASONS reads. */
static const float *factor_of(foldin_ws_t *ws, const float *Y, size_t ldy, const float *G,
                              const params_t *p) {
  ck_assert_int_eq(foldin_factor(Y, ldy, G, p, ws), 0);
  ck_assert(ws->factored);
  /* A second call is a no-op. */
  const float *A = ws->A;
  ck_assert_int_eq(foldin_factor(Y, ldy, G, p, ws), 0);
  ck_assert_ptr_eq(ws->A, A);
  return ws->A;
}

/* Checks x^ (float, from the kernel) against the dense system of the used
 * items, with the tolerances of the header comment. When L is not NULL,
 * also checks that L L^T (L = lower triangle of ws->A) reproduces A. */
static void check_against_dense(const float *xf, const float *Y, uint32_t N, uint32_t k,
                                size_t ldy, const params_t *p, const uint32_t *items,
                                const double *w, size_t n, const float *L, const char *what) {
  double *A = malloc((size_t)k * k * sizeof *A), *b = malloc(k * sizeof *b);
  double *x = malloc(k * sizeof *x);
  ref_system(Y, N, k, ldy, p, items, w, n, A, b);
  ge_solve(A, b, k, x);

  const double tol = 4.0 * ((double)n + 2.0 * k + 4.0) * U_F;
  double res = 0, xn = 0, bn = 0, err = 0, xr = 0;
  for (uint32_t r = 0; r < k; r++) {
    EXPECT(isfinite(xf[r]), "%s: x[%u] = %g", what, r, (double)xf[r]);
    double s = -b[r];
    for (uint32_t c = 0; c < k; c++)
      s += A[r * k + c] * xf[c];
    res = fmax(res, fabs(s));
    xn = fmax(xn, fabs((double)xf[r]));
    bn = fmax(bn, fabs(b[r]));
    err = fmax(err, fabs((double)xf[r] - x[r]));
    xr = fmax(xr, fabs(x[r]));
  }
  const double eta = res / (norm_inf_mat(A, k) * xn + bn);
  ck_assert_msg(eta <= tol, "%s: backward error %.3g > %.3g", what, eta, tol);
  const double kappa = cond_inf(A, k);
  if (kappa * tol < 0.5) {
    const double bound = 2.0 * kappa * tol / (1.0 - kappa * tol);
    ck_assert_msg(err <= bound * xr, "%s: forward error %.3g > %.3g (kappa %.3g)", what,
                  err / xr, bound, kappa);
  }
  if (L != NULL) {
    /* |L L^T - A| <= (k + 1) u |L||L^T| (Higham thm 10.3), plus A's own
     * float rounding: the backward tolerance covers both. */
    double dmax = 0;
    for (uint32_t r = 0; r < k; r++)
      for (uint32_t c = 0; c <= r; c++) {
        double s = 0;
        for (uint32_t j = 0; j <= c; j++)
          s += (double)L[r * k + j] * L[c * k + j];
        dmax = fmax(dmax, fabs(s - A[r * k + c]));
      }
    ck_assert_msg(dmax <= tol * norm_inf_mat(A, k), "%s: |LL^T - A| = %.3g", what, dmax);
  }
  free(A);
  free(b);
  free(x);
}

static params_t make_params(uint32_t k, uint32_t mode, float reg_exp) {
  params_t p = {.factors = k, .conf_mode = mode, .lambda = 0.1f, .reg_exponent = reg_exp,
                .alpha = mode == PARAMS_CONF_LOG ? 5.0f : 2.0f, .eps = 0.5f};
  return p;
}

/* n distinct items of [0, N) in random order (partial Fisher-Yates). */
static void random_items(rng_t *r, uint32_t N, uint32_t *out, size_t n) {
  uint32_t *perm = malloc(N * sizeof *perm);
  for (uint32_t i = 0; i < N; i++)
    perm[i] = i;
  for (size_t j = 0; j < n; j++) {
    uint32_t t = (uint32_t)(j + rng_below(r, N - j));
    uint32_t v = perm[j];
    perm[j] = perm[t];
    perm[t] = v;
    out[j] = perm[j];
  }
  free(perm);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

typedef struct ranked {
  uint32_t item, pos;
  float w;
} ranked_t;

static int cmp_strongest(const void *a, const void *b) {
  const ranked_t *x = a, *y = b;
  if (x->w != y->w)
    return x->w > y->w ? -1 : 1;
  return (x->item > y->item) - (x->item < y->item);
}

static int cmp_item(const void *a, const void *b) {
  const ranked_t *x = a, *y = b;
  return (x->item > y->item) - (x->item < y->item);
}

/* Runs a capped fold-in and checks that it used exactly the `cap` strongest
 * distinct items (summed weights, ties by smaller index), listed in
 * ascending item order with their confidences, and that x solves their
 * dense system. */
static void check_cap(const float *Y, uint32_t N, uint32_t k, size_t ldy, const float *G,
                      const params_t *p, const uint32_t *items, const float *w, size_t n,
                      size_t cap, foldin_ws_t *ws, const char *what) {
  /* Expected: merge duplicates (first position, summed in input order, as
   * float, because that is what is ranked), full sort, take cap. */
  ranked_t *rk = malloc(n * sizeof *rk);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < m && rk[j].item != items[i])
      j++;
    if (j == m)
      rk[m++] = (ranked_t){.item = items[i], .pos = (uint32_t)i, .w = w[i]};
    else
      rk[j].w += w[i];
  }
  qsort(rk, m, sizeof *rk, cmp_strongest);
  const size_t want = cap < m ? cap : m;
  float *x = malloc(k * sizeof *x);
  size_t used = 0;
  ck_assert_int_eq(foldin_solve(Y, ldy, G, p, items, w, n, cap, x, &used, ws), 0);
  ck_assert_uint_eq(used, want);
  uint32_t *ui = malloc(want * sizeof *ui);
  double *uw = malloc(want * sizeof *uw);
  /* The entries used are listed in ascending item order, with their
   * confidences. */
  qsort(rk, want, sizeof *rk, cmp_item);
  for (size_t j = 0; j < want; j++) {
    EXPECT(ws->order[j] == rk[j].pos, "%s: order[%zu] = %u, want position %u", what, j,
           ws->order[j], rk[j].pos);
    EXPECT(ws->conf[j] == params_confidence(p, rk[j].w), "%s: conf[%zu]", what, j);
    ui[j] = rk[j].item;
    uw[j] = rk[j].w;
  }
  check_against_dense(x, Y, N, k, ldy, p, ui, uw, want, factor_of(ws, Y, ldy, G, p), what);
  free(ui);
  free(uw);
  free(x);
  free(rk);
}

START_TEST(test_random_vs_dense) {
  /* Every size x confidence mode x regularisation x history length, each
   * history both in random order (the hash merge path) and ascending (the
   * trainer's CSR path). 600 items span three ssyrk blocks. */
  static const struct { uint32_t N, k; } sizes[] = {{40, 1}, {120, 8}, {300, 64}, {1000, 8}};
  static const size_t lens[] = {1, 7, 60, 600};
  rng_t r;
  rng_seed(&r, 7);
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
    const uint32_t N = sizes[si].N, k = sizes[si].k;
    const size_t ldy = k + 5;
    float *Y = make_Y(N, k, ldy, 100 + si, 0.3f);
    float *G = make_gram(Y, N, k, ldy);
    foldin_ws_t ws;
    ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
    float *x = malloc(k * sizeof *x);
    for (uint32_t mode = 0; mode < 2; mode++)
      for (int re = 0; re < 2; re++)
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
          const size_t n = lens[li];
          if (n > N)
            continue;
          params_t p = make_params(k, mode, re ? 0.5f : 0.0f);
          uint32_t *items = malloc(n * sizeof *items);
          float *w = malloc(n * sizeof *w);
          double *wd = malloc(n * sizeof *wd);
          random_items(&r, N, items, n);
          for (int sorted = 0; sorted < 2; sorted++) {
            if (sorted)
              qsort(items, n, sizeof *items, cmp_u32);
            for (size_t j = 0; j < n; j++) {
              w[j] = 0.5f + (float)rng_uniform(&r) * 4.5f;
              wd[j] = w[j];
            }
            char what[128];
            snprintf(what, sizeof what, "N=%u k=%u mode=%u nu=%d n=%zu sorted=%d", N, k, mode,
                     re, n, sorted);
            size_t used = 99;
            /* cap 0 (none) and cap == n (not cut) must be identical. */
            ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, items, w, n, 0, x, &used, &ws), 0);
            ck_assert_uint_eq(used, n);
            check_against_dense(x, Y, N, k, ldy, &p, items, wd, n,
                                factor_of(&ws, Y, ldy, G, &p), what);
            float *x2 = malloc(k * sizeof *x2);
            ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, items, w, n, n, x2, &used, &ws), 0);
            ck_assert_int_eq(memcmp(x, x2, k * sizeof *x), 0);
            free(x2);
            /* Uncut, the used entries are every input entry, in ascending
             * item order (random_items gives distinct items). */
            for (size_t j = 0; j < n; j++) {
              EXPECT(j == 0 || items[ws.order[j]] > items[ws.order[j - 1]],
                     "%s: order[%zu] = %u out of item order", what, j, ws.order[j]);
              EXPECT(ws.order[j] < n, "%s: order[%zu] = %u", what, j, ws.order[j]);
            }
            /* And with the cap cutting the history in half. */
            if (n > 1)
              check_cap(Y, N, k, ldy, G, &p, items, w, n, (n + 1) / 2, &ws, what);
          }
          free(items);
          free(w);
          free(wd);
        }
    free(x);
    foldin_ws_free(&ws);
    free(Y);
    free(G);
  }
}
END_TEST

START_TEST(test_cap_uses_strongest) {
  /* Weights from three values: most of the ranking is decided by the
   * index tie-break. */
  const uint32_t N = 500, k = 8;
  const size_t ldy = 16;
  float *Y = make_Y(N, k, ldy, 3, 0.3f);
  float *G = make_gram(Y, N, k, ldy);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  rng_t r;
  rng_seed(&r, 11);
  uint32_t items[200];
  float w[200];
  for (int seed = 0; seed < 40; seed++) {
    const size_t n = 2 + rng_below(&r, 199);
    const size_t cap = 1 + rng_below(&r, n - 1);
    random_items(&r, N, items, n);
    for (size_t j = 0; j < n; j++)
      w[j] = (float)(1 + rng_below(&r, 3));
    params_t p = make_params(k, (uint32_t)(seed & 1), (seed & 2) ? 0.5f : 0.0f);
    char what[64];
    snprintf(what, sizeof what, "seed %d n=%zu cap=%zu", seed, n, cap);
    check_cap(Y, N, k, ldy, G, &p, items, w, n, cap, &ws, what);
  }
  /* A long history (the hash and the heap at scale), continuous weights
   * with some exact ties, cap far below n. */
  const uint32_t N2 = 20000;
  float *Y2 = make_Y(N2, k, ldy, 4, 0.3f);
  float *G2 = make_gram(Y2, N2, k, ldy);
  const size_t n2 = 15000;
  uint32_t *it2 = malloc(n2 * sizeof *it2);
  float *w2 = malloc(n2 * sizeof *w2);
  random_items(&r, N2, it2, n2);
  for (size_t j = 0; j < n2; j++)
    w2[j] = j % 3 == 0 ? 7.0f : (float)rng_uniform(&r) * 8.0f + 0.01f;
  params_t p = make_params(k, PARAMS_CONF_LOG, 0.5f);
  check_cap(Y2, N2, k, ldy, G2, &p, it2, w2, n2, 100, &ws, "long history, cap 100");
  check_cap(Y2, N2, k, ldy, G2, &p, it2, w2, n2, 5001, &ws, "long history, cap 5001");
  free(it2);
  free(w2);
  free(Y2);
  free(G2);
  foldin_ws_free(&ws);
  free(Y);
  free(G);
}
END_TEST

START_TEST(test_duplicates_are_summed) {
  const uint32_t N = 50, k = 8;
  const size_t ldy = 8;
  float *Y = make_Y(N, k, ldy, 5, 0.3f);
  float *G = make_gram(Y, N, k, ldy);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  params_t p = make_params(k, PARAMS_CONF_LINEAR, 0.5f);
  /* Sums are exact in float, so the merged history is bit-identical input
   * to the BLAS phase: same items, same order (first occurrences), same
   * summed weights. */
  const uint32_t dup_items[] = {5, 9, 5, 3, 9, 5};
  const float dup_w[] = {1.0f, 2.0f, 0.5f, 1.0f, 1.0f, 0.25f};
  const uint32_t merged_items[] = {5, 9, 3};
  const float merged_w[] = {1.75f, 3.0f, 1.0f};
  float x1[8], x2[8];
  size_t used;
  ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, dup_items, dup_w, 6, 0, x1, &used, &ws), 0);
  ck_assert_uint_eq(used, 3);
  /* Ascending items 3, 5, 9 at their first positions 3, 0, 1. */
  ck_assert_uint_eq(ws.order[0], 3);
  ck_assert_uint_eq(ws.order[1], 0);
  ck_assert_uint_eq(ws.order[2], 1);
  ck_assert_float_eq(ws.conf[1], params_confidence(&p, 1.75f));
  ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, merged_items, merged_w, 3, 0, x2, &used, &ws), 0);
  ck_assert_int_eq(memcmp(x1, x2, sizeof x1), 0);
  const double wd[] = {1.75, 3.0, 1.0};
  check_against_dense(x1, Y, N, k, ldy, &p, merged_items, wd, 3, NULL, "duplicates");
  /* The cap ranks summed weights: item 7 (0.6 + 0.6) beats item 2 (1.0). */
  const uint32_t ci[] = {7, 2, 7};
  const float cw[] = {0.6f, 1.0f, 0.6f};
  ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, ci, cw, 3, 1, x1, &used, &ws), 0);
  ck_assert_uint_eq(used, 1);
  ck_assert_uint_eq(ws.order[0], 0);
  const uint32_t one = 7;
  const double w12 = 0.6f + 0.6f;
  check_against_dense(x1, Y, N, k, ldy, &p, &one, &w12, 1, NULL, "duplicates under cap");
  foldin_ws_free(&ws);
  free(Y);
  free(G);
}
END_TEST

/* The same history in any order (a stored history comes strongest first,
 * a cart in page order) gives the same x, bit for bit, and the same
 * entries in the same order. */
START_TEST(test_order_independent) {
  const uint32_t N = 300, k = 16;
  const size_t ldy = 16;
  float *Y = make_Y(N, k, ldy, 11, 0.3f);
  float *G = make_gram(Y, N, k, ldy);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  params_t p = make_params(k, PARAMS_CONF_LINEAR, 2.0f);
  enum { n = 120 };
  uint32_t items[n], perm_items[n];
  float w[n], perm_w[n];
  for (uint32_t i = 0; i < n; i++) {
    items[i] = (i * 37u + 5u) % N;
    w[i] = 0.5f + (float)(i % 7) * 0.75f;
  }
  float x0[16], x1[16];
  uint32_t items0[n];
  size_t used0, used1;
  for (size_t cap = 0; cap <= 40; cap += 40) {
    ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, items, w, n, cap, x0, &used0, &ws), 0);
    for (size_t j = 0; j < used0; j++)
      items0[j] = items[ws.order[j]];
    uint64_t rng = 99;
    for (int round = 0; round < 5; round++) {
      /* Fisher-Yates with a fixed LCG. */
      memcpy(perm_items, items, sizeof items);
      memcpy(perm_w, w, sizeof w);
      for (size_t i = n - 1; i > 0; i--) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)(rng >> 33) % (i + 1);
        uint32_t ti = perm_items[i];
        perm_items[i] = perm_items[j];
        perm_items[j] = ti;
        float tw = perm_w[i];
        perm_w[i] = perm_w[j];
        perm_w[j] = tw;
      }
      ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, perm_items, perm_w, n, cap, x1, &used1, &ws),
                       0);
      ck_assert_uint_eq(used0, used1);
      ck_assert_int_eq(memcmp(x0, x1, sizeof x0), 0);
      for (size_t j = 0; j < used1; j++)
        ck_assert_uint_eq(perm_items[ws.order[j]], items0[j]);
    }
  }
  foldin_ws_free(&ws);
  free(Y);
  free(G);
}
END_TEST

START_TEST(test_empty_and_single) {
  static const uint32_t ks[] = {1, 8, 64};
  for (size_t ki = 0; ki < 3; ki++) {
    const uint32_t N = 90, k = ks[ki];
    const size_t ldy = k + 1;
    float *Y = make_Y(N, k, ldy, 6 + ki, 0.5f);
    float *G = make_gram(Y, N, k, ldy);
    foldin_ws_t ws;
    ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
    float *x = malloc(k * sizeof *x);
    for (uint32_t d = 0; d < k; d++)
      x[d] = 123.0f;
    size_t used = 99;
    params_t p = make_params(k, PARAMS_CONF_LOG, 0.5f);
    ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, NULL, NULL, 0, 10, x, &used, &ws), 0);
    ck_assert_uint_eq(used, 0);
    for (uint32_t d = 0; d < k; d++)
      ck_assert_float_eq(x[d], 0.0f);
    const uint32_t item = 17;
    const float w = 3.0f;
    const double wd = 3.0;
    ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, &item, &w, 1, 10, x, &used, &ws), 0);
    ck_assert_uint_eq(used, 1);
    check_against_dense(x, Y, N, k, ldy, &p, &item, &wd, 1, factor_of(&ws, Y, ldy, G, &p),
                        "single item");
    /* A single item is the ALS step with one observation: x points along
     * (A^-1) y, and its score on that item is positive. */
    double s = 0;
    for (uint32_t d = 0; d < k; d++)
      s += (double)x[d] * Y[item * ldy + d];
    ck_assert_double_gt(s, 0.0);
    free(x);
    foldin_ws_free(&ws);
    free(Y);
    free(G);
  }
}
END_TEST

START_TEST(test_extreme_weights) {
  /* Huge confidences make A nearly rank-deficient plus a small regular
   * part: the forward error is then allowed to grow with kappa, but the
   * backward error must stay at float level. */
  const uint32_t N = 200, k = 8;
  const size_t ldy = 8;
  float *Y = make_Y(N, k, ldy, 8, 0.3f);
  float *G = make_gram(Y, N, k, ldy);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  const uint32_t items[] = {3, 150, 77, 9, 120};
  static const float wl[] = {1e6f, 1e-6f, 3e4f, 1e-3f, 1.0f};
  static const float wg[] = {1e30f, 1e-30f, 1e10f, 1e-10f, 1.0f};
  float x[8];
  double wd[5];
  for (int mode = 0; mode < 2; mode++) {
    params_t p = make_params(k, (uint32_t)mode, 0.5f);
    p.alpha = 40.0f;
    const float *w = mode == PARAMS_CONF_LOG ? wg : wl;
    for (int j = 0; j < 5; j++)
      wd[j] = w[j];
    size_t used;
    ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, items, w, 5, 0, x, &used, &ws), 0);
    check_against_dense(x, Y, N, k, ldy, &p, items, wd, 5, factor_of(&ws, Y, ldy, G, &p),
                        mode ? "extreme weights, log" : "extreme weights, linear");
    /* Only tiny weights: c - 1 underflows relative to 1, the result is
     * the plain ALS step with p = 1 and c ~ 1 on those items. */
    ck_assert_int_eq(foldin_solve(Y, ldy, G, &p, items + 1, w + 1, 1, 0, x, &used, &ws), 0);
    check_against_dense(x, Y, N, k, ldy, &p, items + 1, wd + 1, 1,
                        factor_of(&ws, Y, ldy, G, &p), "tiny weight");
  }
  foldin_ws_free(&ws);
  free(Y);
  free(G);
}
END_TEST

START_TEST(test_errors) {
  const uint32_t N = 20, k = 8;
  float *Y = make_Y(N, k, k, 9, 0.3f);
  float *G = make_gram(Y, N, k, k);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  params_t p = make_params(k, PARAMS_CONF_LINEAR, 0.0f);
  const uint32_t items[] = {1, 2};
  const float bad[] = {0.0f, -1.0f, NAN, INFINITY, FLT_MAX};
  float x[8];
  for (int i = 0; i < 5; i++) {
    float w[2] = {1.0f, bad[i]};
    for (uint32_t d = 0; d < k; d++)
      x[d] = 5.0f;
    /* FLT_MAX is a valid weight, but alpha * FLT_MAX overflows c. */
    ck_assert_int_eq(foldin_solve(Y, k, G, &p, items, w, 2, 0, x, NULL, &ws), RECD_EINVAL);
    for (uint32_t d = 0; d < k; d++)
      ck_assert_float_eq(x[d], 0.0f);
  }
  /* Duplicates whose sum overflows are rejected the same way. */
  const uint32_t dup[] = {4, 4};
  const float big[] = {3e38f, 3e38f};
  ck_assert_int_eq(foldin_solve(Y, k, G, &p, dup, big, 2, 0, x, NULL, &ws), RECD_EINVAL);
  params_t p0 = p;
  p0.factors = 0;
  ck_assert_int_eq(foldin_solve(Y, k, G, &p0, items, big, 2, 0, x, NULL, &ws), RECD_EINVAL);
  /* lambda = 0 and factors that span only 3 of 8 dimensions: A is exactly
   * singular (zero rows), which Cholesky must report. */
  for (uint32_t i = 0; i < N; i++)
    for (uint32_t d = 3; d < k; d++)
      Y[i * k + d] = 0.0f;
  free(G);
  G = make_gram(Y, N, k, k);
  p.lambda = 0.0f;
  const float w1[] = {1.0f, 2.0f};
  for (uint32_t d = 0; d < k; d++)
    x[d] = 5.0f;
  ck_assert_int_eq(foldin_solve(Y, k, G, &p, items, w1, 2, 0, x, NULL, &ws), RECD_ENUMERIC);
  for (uint32_t d = 0; d < k; d++)
    ck_assert_float_eq(x[d], 0.0f);
  foldin_ws_free(&ws);
  free(Y);
  free(G);
}
END_TEST

START_TEST(test_workspace_growth) {
  /* A workspace made for k = 1 grows to k = 64 and a long history, gives
   * bit-identical results to a fresh one, and does not reallocate once
   * warm, for the same or smaller problems (k too). */
  const uint32_t N = 3000;
  float *Y = make_Y(N, 64, 64, 10, 0.2f);
  float *G64 = make_gram(Y, N, 64, 64);
  float *G8 = make_gram(Y, N, 8, 64);
  rng_t r;
  rng_seed(&r, 12);
  const size_t n = 1000;
  uint32_t *items = malloc(n * sizeof *items);
  float *w = malloc(n * sizeof *w);
  random_items(&r, N, items, n);
  for (size_t j = 0; j < n; j++)
    w[j] = 1.0f + (float)rng_below(&r, 4);
  params_t p = make_params(64, PARAMS_CONF_LOG, 0.5f);
  foldin_ws_t small, fresh;
  ck_assert_int_eq(foldin_ws_init(&small, 1), 0);
  ck_assert_int_eq(foldin_ws_init(&fresh, 64), 0);
  float x1[64], x2[64];
  ck_assert_int_eq(foldin_solve(Y, 64, G64, &p, items, w, n, 0, x1, NULL, &small), 0);
  ck_assert_int_eq(foldin_solve(Y, 64, G64, &p, items, w, n, 0, x2, NULL, &fresh), 0);
  ck_assert_int_eq(memcmp(x1, x2, sizeof x1), 0);
  const foldin_ws_t before = small;
  params_t p8 = make_params(8, PARAMS_CONF_LOG, 0.5f);
  for (int rep = 0; rep < 3; rep++) {
    ck_assert_int_eq(foldin_solve(Y, 64, G64, &p, items, w, n, 0, x1, NULL, &small), 0);
    ck_assert_int_eq(foldin_solve(Y, 64, G64, &p, items, w, n, 50, x1, NULL, &small), 0);
    ck_assert_int_eq(foldin_solve(Y, 64, G8, &p8, items, w, 300, 0, x1, NULL, &small), 0);
  }
  ck_assert_ptr_eq(small.A, before.A);
  ck_assert_ptr_eq(small.order, before.order);
  ck_assert_ptr_eq(small.conf, before.conf);
  ck_assert_ptr_eq(small.rows, before.rows);
  ck_assert_ptr_eq(small.slots, before.slots);
  /* The k = 8 solve against a k = 64-sized workspace is still right. */
  double *wd = malloc(300 * sizeof *wd);
  for (size_t j = 0; j < 300; j++)
    wd[j] = w[j];
  check_against_dense(x1, Y, N, 8, 64, &p8, items, wd, 300, factor_of(&small, Y, 64, G8, &p8),
                      "k 8 in k 64 workspace");
  free(wd);
  foldin_ws_free(&small);
  foldin_ws_free(&fresh);
  foldin_ws_free(&fresh); /* idempotent */
  free(items);
  free(w);
  free(Y);
  free(G64);
  free(G8);
}
END_TEST

static Suite *foldin_suite(void) {
  Suite *s = suite_create("foldin");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_random_vs_dense);
  tcase_add_test(tc, test_cap_uses_strongest);
  tcase_add_test(tc, test_duplicates_are_summed);
  tcase_add_test(tc, test_order_independent);
  tcase_add_test(tc, test_empty_and_single);
  tcase_add_test(tc, test_extreme_weights);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_workspace_growth);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(foldin_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
