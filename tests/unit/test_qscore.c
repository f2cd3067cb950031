/* test_qscore.c - the int8 first pass: its error bound holds on random and
 * adversarial inputs, against double-precision dot products. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/qscore.h"
#include "recd/rng.h"
#include "testutil.h"

static void check_bound(uint32_t n, uint32_t k, float sd, uint64_t seed, int adversarial) {
  float *Y = malloc((size_t)n * k * sizeof *Y), *x = malloc(k * sizeof *x);
  float *out = malloc(n * sizeof *out);
  tu_randn(Y, (size_t)n * k, seed, sd);
  tu_randn(x, k, seed + 1, 1.0f);
  if (adversarial) {
    /* one huge coordinate per row (coarse scale for the rest), values at
     * the rounding midpoints, a zero row, and x aligned with a row */
    for (uint32_t i = 0; i < n; i++)
      Y[(size_t)i * k + i % k] = sd * 100.0f;
    for (uint32_t a = 0; a < k; a++)
      Y[a] = (a % 2 ? 0.5f : -0.5f) * sd; /* row 0: all at .5 steps */
    memset(Y + (size_t)(n / 2) * k, 0, k * sizeof *Y);
    memcpy(x, Y + (size_t)(n - 1) * k, k * sizeof *x);
  }
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
  int8_t *scratch = malloc(qm.kpad);
  float bound = qscore_items(&qm, x, out, scratch);
  ck_assert(bound >= 0 && isfinite(bound));
  double worst = 0;
  for (uint32_t i = 0; i < n; i++) {
    double exact = 0;
    for (uint32_t a = 0; a < k; a++)
      exact += (double)x[a] * Y[(size_t)i * k + a];
    double e = fabs(out[i] - exact);
    worst = e > worst ? e : worst;
    ck_assert_msg(e <= bound, "n=%u k=%u item %u: error %g > bound %g", n, k, i, e,
                  (double)bound);
  }
  /* The bound is useful, not vacuous: on random data with several factors
   * it stays within a small multiple of the worst error actually seen (it
   * is a worst case, so it cannot be tight; k = 1 quantises exactly). */
  if (!adversarial && k >= 8)
    ck_assert_msg(bound < 64 * worst, "n=%u k=%u: bound %g vs worst %g", n, k, (double)bound,
                  worst);
  free(scratch);
  qmat_free(&qm);
  free(Y);
  free(x);
  free(out);
}

START_TEST(test_bound_holds) {
  uint32_t ks[] = {1, 8, 64, 100, 256};
  for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
    check_bound(2000, ks[j], 0.3f, 10 + j, 0);
    check_bound(2000, ks[j], 1e-6f, 20 + j, 0);
    check_bound(2000, ks[j], 1e6f, 30 + j, 0);
    check_bound(500, ks[j], 0.3f, 40 + j, 1);
  }
}
END_TEST

START_TEST(test_zero_query) {
  float Y[4 * 3] = {1, 2, 3, -1, 0, 0, 0, 0, 0, 5, 5, 5}, x[3] = {0, 0, 0}, out[4];
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, 3, 4, 3), 0);
  int8_t scratch[64];
  ck_assert(qm.kpad <= sizeof scratch);
  float b = qscore_items(&qm, x, out, scratch);
  for (int i = 0; i < 4; i++)
    ck_assert_float_eq(out[i], 0.0f);
  ck_assert(b >= 0);
  qmat_free(&qm);
}
END_TEST

static Suite *qscore_suite(void) {
  Suite *s = suite_create("qscore");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_bound_holds);
  tcase_add_test(tc, test_zero_query);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(qscore_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
