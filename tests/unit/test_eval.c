/* test_eval.c - hold-out split, metrics on hand-computed cases, EASE
 * against its closed form computed densely in double. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/dataset.h"
#include "recd/eval.h"
#include "recd/rng.h"
#include "testutil.h"

static void csr_from_dense(csr_t *m, const float *d, uint32_t rows, uint32_t cols) {
  m->n_rows = rows;
  m->n_cols = cols;
  m->ptr = calloc(rows + 1, sizeof *m->ptr);
  m->idx = malloc((size_t)rows * cols * sizeof *m->idx + 4);
  m->val = malloc((size_t)rows * cols * sizeof *m->val + 4);
  uint64_t n = 0;
  for (uint32_t r = 0; r < rows; r++) {
    for (uint32_t c = 0; c < cols; c++)
      if (d[r * cols + c] != 0) {
        m->idx[n] = c;
        m->val[n++] = d[r * cols + c];
      }
    m->ptr[r + 1] = n;
  }
}

START_TEST(test_split_partitions_each_user) {
  rng_t r;
  rng_seed(&r, 3);
  enum { U = 300, I = 50 };
  float *d = calloc(U * I, sizeof *d);
  for (int u = 0; u < U; u++)
    for (int i = 0; i < I; i++)
      if (rng_uniform(&r) < 0.15 || i == u % I)
        d[u * I + i] = 1 + (float)(i % 3);
  csr_t m, tr, te;
  csr_from_dense(&m, d, U, I);
  ck_assert_int_eq(eval_holdout_split(&m, 0.25, 9, &tr, &te), 0);
  for (uint32_t u = 0; u < U; u++) {
    uint64_t n = m.ptr[u + 1] - m.ptr[u];
    uint64_t nt = te.ptr[u + 1] - te.ptr[u], nr = tr.ptr[u + 1] - tr.ptr[u];
    ck_assert_uint_eq(nt + nr, n);
    if (n < 2) {
      ck_assert_uint_eq(nt, 0);
    } else {
      uint64_t want = (uint64_t)llround(0.25 * (double)n);
      want = want < 1 ? 1 : want > n - 1 ? n - 1 : want;
      ck_assert_uint_eq(nt, want);
    }
    /* disjoint, sorted, and together exactly the original row */
    float row[I] = {0};
    for (uint64_t j = tr.ptr[u]; j < tr.ptr[u + 1]; j++) {
      if (j > tr.ptr[u])
        ck_assert_uint_lt(tr.idx[j - 1], tr.idx[j]);
      row[tr.idx[j]] += tr.val[j];
    }
    for (uint64_t j = te.ptr[u]; j < te.ptr[u + 1]; j++) {
      if (j > te.ptr[u])
        ck_assert_uint_lt(te.idx[j - 1], te.idx[j]);
      ck_assert_float_eq(row[te.idx[j]], 0.0f);
      row[te.idx[j]] += te.val[j];
    }
    for (int i = 0; i < I; i++)
      ck_assert_float_eq(row[i], d[u * I + i]);
  }
  /* Same seed, same split; another seed, another split. */
  csr_t tr2, te2;
  ck_assert_int_eq(eval_holdout_split(&m, 0.25, 9, &tr2, &te2), 0);
  ck_assert_int_eq(memcmp(te.idx, te2.idx, te.ptr[U] * sizeof *te.idx), 0);
  csr_free(&tr2);
  csr_free(&te2);
  ck_assert_int_eq(eval_holdout_split(&m, 0.25, 10, &tr2, &te2), 0);
  ck_assert_int_ne(memcmp(te.idx, te2.idx, te.ptr[U] * sizeof *te.idx), 0);
  csr_free(&tr2);
  csr_free(&te2);
  csr_free(&m);
  csr_free(&tr);
  csr_free(&te);
  free(d);
}
END_TEST

/* Scores item i as 100 - i: the ranking is 0, 1, 2, ... minus exclusions. */
static int score_descending(void *ctx, const uint32_t *items, const float *w, size_t n,
                            float *scores) {
  (void)items, (void)w, (void)n;
  uint32_t n_items = *(const uint32_t *)ctx;
  for (uint32_t i = 0; i < n_items; i++)
    scores[i] = 100.0f - (float)i;
  return 0;
}

START_TEST(test_metrics_hand_computed) {
  /* 20 items. User 0 trained on {0}, test {1, 3, 15}: ranking excludes 0,
   * so the top 10 is 1..10: hits at ranks 1 and 3 (1-based).
   * precision 2/10; recall 2/3; DCG = 1/log2(2) + 1/log2(4) = 1.5;
   * IDCG = 1 + 1/log2(3) + 1/2; AP = (1/1 + 2/3) / 3.
   * User 1 trained on {5}, test {5 excluded? no: test {19}}: no hit.
   * User 2 has no test items and is not evaluated. */
  enum { I = 20 };
  float tr[3 * I] = {0}, te[3 * I] = {0};
  tr[0 * I + 0] = 1;
  te[0 * I + 1] = te[0 * I + 3] = te[0 * I + 15] = 1;
  tr[1 * I + 5] = 1;
  te[1 * I + 19] = 1;
  tr[2 * I + 2] = 1;
  csr_t train, test;
  csr_from_dense(&train, tr, 3, I);
  csr_from_dense(&test, te, 3, I);
  uint32_t n_items = I;
  model_metrics_t m;
  uint64_t users;
  ck_assert_int_eq(eval_ranking(&train, &test, score_descending, &n_items, &m, &users), 0);
  ck_assert_uint_eq(users, 2);
  double idcg = 1 + 1 / log2(3.0) + 0.5;
  ck_assert_double_eq_tol(m.precision, (0.2 + 0) / 2, 1e-12);
  ck_assert_double_eq_tol(m.recall, (2.0 / 3 + 0) / 2, 1e-12);
  ck_assert_double_eq_tol(m.ndcg, (1.5 / idcg + 0) / 2, 1e-12);
  ck_assert_double_eq_tol(m.map, ((1 + 2.0 / 3) / 3 + 0) / 2, 1e-12);
  /* user 0 saw 1..10, user 1 saw 0..4 and 6..10: items 0..10 = 11 of 20 */
  ck_assert_double_eq_tol(m.coverage, 11.0 / 20, 1e-12);
  csr_free(&train);
  csr_free(&test);
}
END_TEST

START_TEST(test_popularity_counts_users) {
  float d[3 * 4] = {1, 5, 0, 0, /**/ 1, 0, 0, 2, /**/ 9, 0, 0, 1};
  csr_t m, mt;
  csr_from_dense(&m, d, 3, 4);
  ck_assert_int_eq(csr_transpose(&m, &mt), 0);
  float pop[4];
  eval_popularity(&mt, pop);
  ck_assert_float_eq(pop[0], 3);
  ck_assert_float_eq(pop[1], 1);
  ck_assert_float_eq(pop[2], 0);
  ck_assert_float_eq(pop[3], 2);
  csr_free(&m);
  csr_free(&mt);
}
END_TEST

START_TEST(test_ease_matches_closed_form) {
  enum { U = 40, I = 12 };
  rng_t r;
  rng_seed(&r, 17);
  float d[U * I] = {0};
  for (int u = 0; u < U; u++)
    for (int i = 0; i < I; i++)
      if (rng_uniform(&r) < 0.3)
        d[u * I + i] = 1 + (float)rng_below(&r, 4); /* EASE must binarise */
  csr_t m;
  csr_from_dense(&m, d, U, I);
  const float lambda = 3.0f;
  float *B;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(ease_fit(&m, lambda, &B, err), 0);
  /* Reference: P = (X^T X + lambda I)^-1, in double. */
  static double G[I * I], Id[I * I], P[I * I];
  for (int a = 0; a < I; a++) {
    for (int b = 0; b < I; b++) {
      G[a * I + b] = 0;
      for (int u = 0; u < U; u++)
        G[a * I + b] += (d[u * I + a] != 0) * (d[u * I + b] != 0);
      Id[a * I + b] = a == b;
    }
    G[a * I + a] += lambda;
  }
  tu_solve(G, I, Id, I, P);
  for (int a = 0; a < I; a++)
    for (int b = 0; b < I; b++) {
      double want = a == b ? 0.0 : -P[a * I + b] / P[b * I + b];
      /* float32 Cholesky of a matrix with condition ~ (U + lambda)/lambda */
      ck_assert_msg(fabs(B[a * I + b] - want) < 1e-4, "B[%d][%d] = %g, want %g", a, b,
                    (double)B[a * I + b], want);
    }
  /* Scoring sums the rows of the user's items, ignoring weights. */
  ease_scorer_t es = {.B = B, .n_items = I};
  uint32_t hist[2] = {1, 4};
  float w[2] = {7, 0.5f}, s[I];
  ck_assert_int_eq(ease_score(&es, hist, w, 2, s), 0);
  for (int i = 0; i < I; i++)
    ck_assert_float_eq_tol(s[i], B[1 * I + i] + B[4 * I + i], 1e-6f);
  free(B);
  csr_free(&m);
}
END_TEST

static Suite *eval_suite(void) {
  Suite *s = suite_create("eval");
  TCase *tc = tcase_create("core");
  /* Check's default of 4 s is too tight for a sanitized build on a
   * loaded 2-core machine. */
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_split_partitions_each_user);
  tcase_add_test(tc, test_metrics_hand_computed);
  tcase_add_test(tc, test_popularity_counts_users);
  tcase_add_test(tc, test_ease_matches_closed_form);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(eval_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
