/* test_score.c - scoring, top-k and SIMILAR against slow, obvious references.
 *
 * Tolerances (u = 2^-24, the float unit roundoff):
 *  - A float dot product of length k, in any summation order and with or
 *    without FMA, is within gamma_k * sum_d |x_d y_d| of the exact value,
 *    gamma_k = k u / (1 - k u) (Higham, "Accuracy and Stability of Numerical
 *    Algorithms", eq. 3.5). The reference is exact to double rounding
 *    (a float x float product is exact in double), so scores are checked
 *    against (k + 1) u sum |x_d y_d|, which is >= gamma_k for every k here.
 *    The batch (sgemm) and single (sgemv) paths may sum in different orders,
 *    so they agree to twice that, not bit for bit.
 *  - topk_select does no arithmetic beyond `score + adjustment` in float,
 *    which the reference repeats, so its output must match a full sort of
 *    the filtered candidates exactly (indices and scores, bit for bit).
 *  - A cosine adds to the dot product's error (gamma_k relative to
 *    |y_i||y_q|, by Cauchy-Schwarz) the float rounding of the two norms and
 *    of two divisions: at most (k + 4) u(1 + small). SIMILAR's scores are
 *    checked to 2 (k + 4) u, and because nearly equal cosines may swap, its
 *    ranking is checked as "nothing left out is better than the last item
 *    returned by more than twice that", not as an exact list.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/rng.h"
#include "recd/score.h"
#include "testutil.h"

#define U_F 0x1p-24

/* ck_assert* reports every passing check to the parent process in fork
 * mode (a write per assertion); inside the big loops only a failure may
 * cost anything. */
#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

/* n x k factors at stride ldy, N(0, sd); the padding is NaN so that a read
 * past k in a row would show. */
static float *make_Y(uint32_t n, uint32_t k, size_t ldy, uint64_t seed, float sd) {
  float *Y = malloc(((size_t)n * ldy + 1) * sizeof *Y);
  ck_assert_ptr_nonnull(Y);
  rng_t r;
  rng_seed(&r, seed);
  for (uint32_t i = 0; i < n; i++)
    for (size_t d = 0; d < ldy; d++)
      Y[i * ldy + d] = d < k ? (float)rng_normal(&r) * sd : NAN;
  return Y;
}

static void check_dot(float got, const float *x, const float *y, uint32_t k,
                      const char *what, uint32_t i) {
  double s = 0, a = 0;
  for (uint32_t d = 0; d < k; d++) {
    s += (double)x[d] * y[d];
    a += fabs((double)x[d] * y[d]);
  }
  const double tol = (k + 1) * U_F * a;
  EXPECT(fabs((double)got - s) <= tol, "%s: item %u: %.9g vs %.9g (tol %.3g)", what, i,
                (double)got, s, tol);
}

START_TEST(test_score_items_vs_double) {
  static const uint32_t ns[] = {1, 7, 1000, 4099};
  static const uint32_t ks[] = {1, 8, 64};
  /* Magnitudes: ordinary, huge (products ~1e30) and tiny (~1e-30, still
   * above FLT_MIN), so that a wrong scale or a flush shows. */
  static const float scales[] = {0.3f, 1e15f, 1e-15f};
  for (size_t ni = 0; ni < 4; ni++)
    for (size_t ki = 0; ki < 3; ki++)
      for (size_t si = 0; si < 3; si++) {
        const uint32_t n = ns[ni], k = ks[ki];
        const size_t ldy = k + 3;
        float *Y = make_Y(n, k, ldy, 10 * ni + ki, scales[si]);
        float *x = make_Y(1, k, k, 99 + ki, scales[si]);
        /* Zero rows and a zero coordinate of x. */
        memset(Y + (n / 2) * ldy, 0, k * sizeof *Y);
        x[k / 2] = 0.0f;
        float *out = malloc(n * sizeof *out);
        score_items(Y, ldy, n, k, x, out);
        char what[64];
        snprintf(what, sizeof what, "n=%u k=%u scale=%g", n, k, (double)scales[si]);
        for (uint32_t i = 0; i < n; i++)
          check_dot(out[i], x, Y + i * ldy, k, what, i);
        ck_assert_float_eq(out[n / 2], 0.0f);
        free(out);
        free(x);
        free(Y);
      }
}
END_TEST

START_TEST(test_score_batch_matches_single) {
  static const uint32_t ms[] = {1, 3, 17};
  static const uint32_t ks[] = {1, 8, 64};
  const uint32_t n = 1001;
  for (size_t mi = 0; mi < 3; mi++)
    for (size_t ki = 0; ki < 3; ki++) {
      const uint32_t m = ms[mi], k = ks[ki];
      const size_t ldy = k + 1, ldx = k + 2, ldo = n + 3;
      float *Y = make_Y(n, k, ldy, 5 + ki, 0.5f);
      float *X = make_Y(m, k, ldx, 50 + mi, 0.5f);
      float *out = malloc(m * ldo * sizeof *out);
      float *one = malloc(n * sizeof *one);
      for (size_t j = 0; j < m * ldo; j++)
        out[j] = -7.0f; /* the columns past n must stay untouched */
      score_items_batch(Y, ldy, n, k, X, ldx, m, out, ldo);
      for (uint32_t u = 0; u < m; u++) {
        const float *x = X + u * ldx;
        score_items(Y, ldy, n, k, x, one);
        for (uint32_t i = 0; i < n; i++) {
          check_dot(out[u * ldo + i], x, Y + i * ldy, k, "batch", i);
          double a = 0;
          for (uint32_t d = 0; d < k; d++)
            a += fabs((double)x[d] * Y[i * ldy + d]);
          EXPECT(fabs((double)out[u * ldo + i] - one[i]) <= 2 * (k + 1) * U_F * a,
                 "batch vs single: user %u item %u: %.9g vs %.9g", u, i,
                 (double)out[u * ldo + i], (double)one[i]);
        }
        for (size_t j = n; j < ldo; j++)
          EXPECT(out[u * ldo + j] == -7.0f, "batch wrote past n at user %u", u);
      }
      free(out);
      free(one);
      free(X);
      free(Y);
    }
}
END_TEST

/* ---- top-k ---------------------------------------------------------- */

typedef struct cand {
  float s;
  uint32_t i;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
  const cand_t *x = a, *y = b;
  if (x->s != y->s)
    return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* The obvious reference: mark exclusions, adjust, drop NaN and -inf, sort
 * everything with the total order, take the first `want`. */
static size_t ref_topk(const float *scores, uint32_t n, const topk_filter_t *f, size_t want,
                       cand_t *out) {
  cand_t *all = malloc((n + 1) * sizeof *all);
  char *gone = calloc(n + 1, 1);
  size_t m = 0;
  if (f != NULL) {
    for (size_t j = 0; j < f->n_exclude; j++)
      if (f->exclude[j] < n)
        gone[f->exclude[j]] = 1;
    if (f->exclude_bits != NULL)
      for (uint32_t i = 0; i < n; i++)
        if ((f->exclude_bits[i / 64] >> (i % 64)) & 1)
          gone[i] = 1;
  }
  for (uint32_t i = 0; i < n; i++) {
    if (gone[i])
      continue;
    float s = scores[i];
    if (f != NULL && f->item_category != NULL && f->cat_adjust != NULL && f->n_slots > 0) {
      uint32_t c = f->item_category[i];
      s += c < f->n_slots ? f->cat_adjust[c] : 0.0f;
    }
    if (isnan(s) || s == -INFINITY)
      continue;
    all[m++] = (cand_t){s, i};
  }
  qsort(all, m, sizeof *all, cmp_cand);
  size_t got = m < want ? m : want;
  memcpy(out, all, got * sizeof *out);
  free(all);
  free(gone);
  return got;
}

#define SENTINEL 0xDEADBEEFu

/* Runs topk_select with and without score_out and compares both with the
 * reference, including that nothing past the returned count is written. */
static void check_topk(const float *scores, uint32_t n, const topk_filter_t *f, size_t want,
                       const char *what) {
  cand_t *ref = malloc((want + 1) * sizeof *ref);
  uint32_t *idx = malloc((want + 2) * sizeof *idx);
  float *sc = malloc((want + 2) * sizeof *sc);
  const size_t exp = ref_topk(scores, n, f, want, ref);
  for (size_t j = 0; j < want + 2; j++) {
    idx[j] = SENTINEL;
    sc[j] = -123.0f;
  }
  size_t got = topk_select(scores, n, f, want, idx, sc);
  EXPECT(got == exp, "%s: got %zu items, want %zu", what, got, exp);
  for (size_t j = 0; j < got; j++) {
    EXPECT(idx[j] == ref[j].i, "%s: rank %zu: item %u, want %u", what, j, idx[j],
                  ref[j].i);
    EXPECT(memcmp(&sc[j], &ref[j].s, sizeof(float)) == 0, "%s: rank %zu: score %g vs %g",
                  what, j, (double)sc[j], (double)ref[j].s);
  }
  for (size_t j = got; j < want + 2; j++) {
    EXPECT(idx[j] == SENTINEL && sc[j] == -123.0f, "%s: wrote past the count", what);
  }
  for (size_t j = 0; j < want + 2; j++)
    idx[j] = SENTINEL;
  EXPECT(topk_select(scores, n, f, want, idx, NULL) == exp, "%s: count without scores", what);
  for (size_t j = 0; j < got; j++)
    EXPECT(idx[j] == ref[j].i, "%s: rank %zu differs without scores", what, j);
  free(ref);
  free(idx);
  free(sc);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

START_TEST(test_topk_vs_sort) {
  static const float few[] = {-2.0f, -1.0f, 0.0f, 0.5f, 1.0f, 3.0f};
  static const float adjs[] = {0.0f, 0.5f, -1.0f, -INFINITY, 1.0f, 2.5f, -0.25f, INFINITY, NAN};
  rng_t r;
  rng_seed(&r, 2024);
  for (int seed = 0; seed < 600; seed++) {
    rng_t q;
    rng_seed(&q, (uint64_t)seed);
    const uint32_t n = seed % 10 == 0 ? 1 + (uint32_t)rng_below(&q, 5)
                                      : 1 + (uint32_t)rng_below(&q, 3000);
    float *scores = malloc(n * sizeof *scores);
    const int ties = seed % 3 != 0; /* most seeds: scores from six values */
    for (uint32_t i = 0; i < n; i++) {
      double u = rng_uniform(&q);
      if (u < 0.05)
        scores[i] = NAN;
      else if (u < 0.07)
        scores[i] = -INFINITY;
      else if (u < 0.08)
        scores[i] = INFINITY;
      else
        scores[i] = ties ? few[rng_below(&q, 6)] : (float)rng_normal(&q);
    }
    /* Exclude list: sorted, with duplicates and entries >= n. */
    size_t n_ex = (size_t)rng_below(&q, n / 4 + 3);
    uint32_t *ex = malloc((n_ex + 1) * sizeof *ex);
    for (size_t j = 0; j < n_ex; j++)
      ex[j] = (uint32_t)rng_below(&q, n + 10);
    if (n_ex > 1)
      ex[n_ex - 1] = ex[0]; /* a guaranteed duplicate */
    qsort(ex, n_ex, sizeof *ex, cmp_u32);
    const size_t words = (n + 63) / 64;
    uint64_t *bits = calloc(words, sizeof *bits);
    for (uint32_t i = 0; i < n; i++)
      if (rng_uniform(&q) < 0.1)
        bits[i / 64] |= (uint64_t)1 << (i % 64);
    const uint32_t n_slots = 1 + (uint32_t)rng_below(&q, 6);
    float adj[6];
    /* Mostly finite adjustments; rarely +inf or NaN (both legal floats:
     * +inf ranks first, NaN removes). */
    for (uint32_t c = 0; c < n_slots; c++)
      adj[c] = adjs[rng_below(&q, rng_uniform(&q) < 0.9 ? 7 : 9)];
    uint32_t *cat = malloc(n * sizeof *cat);
    for (uint32_t i = 0; i < n; i++)
      cat[i] = (uint32_t)rng_below(&q, n_slots);

    topk_filter_t full = {.exclude = ex, .n_exclude = n_ex, .exclude_bits = bits,
                          .item_category = cat, .cat_adjust = adj, .n_slots = n_slots};
    topk_filter_t only_ex = {.exclude = ex, .n_exclude = n_ex};
    topk_filter_t only_bits = {.exclude_bits = bits};
    topk_filter_t only_cat = {.item_category = cat, .cat_adjust = adj, .n_slots = n_slots};
    const size_t wants[] = {0, 1, 10, (size_t)rng_below(&q, n + 6), (size_t)n + 5};
    for (size_t wi = 0; wi < 5; wi++) {
      char what[96];
      snprintf(what, sizeof what, "seed %d n=%u want=%zu", seed, n, wants[wi]);
      check_topk(scores, n, &full, wants[wi], what);
      check_topk(scores, n, NULL, wants[wi], what);
      if (wi == 2) {
        check_topk(scores, n, &only_ex, wants[wi], what);
        check_topk(scores, n, &only_bits, wants[wi], what);
        check_topk(scores, n, &only_cat, wants[wi], what);
      }
    }
    free(scores);
    free(ex);
    free(bits);
    free(cat);
  }
}
END_TEST

START_TEST(test_topk_edges) {
  uint32_t idx[8];
  float sc[8];
  /* n = 1 */
  const float one = 0.25f;
  ck_assert_uint_eq(topk_select(&one, 1, NULL, 5, idx, sc), 1);
  ck_assert_uint_eq(idx[0], 0);
  ck_assert_float_eq(sc[0], 0.25f);
  ck_assert_uint_eq(topk_select(&one, 1, NULL, 0, idx, sc), 0);
  ck_assert_uint_eq(topk_select(&one, 0, NULL, 5, idx, sc), 0);
  /* All NaN, all -inf: nothing to return. */
  const float nans[4] = {NAN, NAN, -INFINITY, NAN};
  ck_assert_uint_eq(topk_select(nans, 4, NULL, 3, idx, sc), 0);
  /* Everything filtered, by each filter. */
  const float s[5] = {5, 4, 3, 2, 1};
  const uint32_t all[] = {0, 1, 1, 2, 3, 4, 70};
  topk_filter_t f1 = {.exclude = all, .n_exclude = 7};
  ck_assert_uint_eq(topk_select(s, 5, &f1, 3, idx, sc), 0);
  const uint64_t bits = 0x1F;
  topk_filter_t f2 = {.exclude_bits = &bits};
  ck_assert_uint_eq(topk_select(s, 5, &f2, 3, idx, sc), 0);
  const uint32_t cat[5] = {0, 1, 0, 1, 0};
  const float gone[2] = {-INFINITY, -INFINITY};
  topk_filter_t f3 = {.item_category = cat, .cat_adjust = gone, .n_slots = 2};
  ck_assert_uint_eq(topk_select(s, 5, &f3, 3, idx, sc), 0);
  /* A CATEGORY filter: only slot 1, boosted; ties by index. */
  const float only1[2] = {-INFINITY, 1.0f};
  topk_filter_t f4 = {.item_category = cat, .cat_adjust = only1, .n_slots = 2};
  ck_assert_uint_eq(topk_select(s, 5, &f4, 8, idx, sc), 2);
  ck_assert_uint_eq(idx[0], 1);
  ck_assert_float_eq(sc[0], 5.0f);
  ck_assert_uint_eq(idx[1], 3);
  /* Equal scores: smaller index first, and the cut keeps the smaller. */
  const float eq[6] = {1, 2, 1, 2, 1, 2};
  ck_assert_uint_eq(topk_select(eq, 6, NULL, 4, idx, NULL), 4);
  ck_assert_uint_eq(idx[0], 1);
  ck_assert_uint_eq(idx[1], 3);
  ck_assert_uint_eq(idx[2], 5);
  ck_assert_uint_eq(idx[3], 0);
  /* +inf plus a -inf adjustment is NaN: removed; +inf alone ranks first. */
  const float inf[3] = {INFINITY, 1.0f, INFINITY};
  const uint32_t c3[3] = {0, 0, 1};
  const float adj3[2] = {0.0f, -INFINITY};
  topk_filter_t f5 = {.item_category = c3, .cat_adjust = adj3, .n_slots = 2};
  ck_assert_uint_eq(topk_select(inf, 3, &f5, 3, idx, sc), 2);
  ck_assert_uint_eq(idx[0], 0);
  ck_assert_uint_eq(idx[1], 1);
}
END_TEST

/* ---- SIMILAR ------------------------------------------------------- */

static void check_similar(const float *Y, size_t ldy, uint32_t n, uint32_t k,
                          const float *norms, uint32_t q, const topk_filter_t *f, size_t want,
                          const char *what) {
  double *cosd = malloc(n * sizeof *cosd);
  char *ok = calloc(n, 1);
  size_t eligible = 0;
  double nqd = 0;
  for (uint32_t d = 0; d < k; d++)
    nqd += (double)Y[q * ldy + d] * Y[q * ldy + d];
  nqd = sqrt(nqd);
  for (uint32_t i = 0; i < n; i++) {
    double dot = 0, ni = 0;
    for (uint32_t d = 0; d < k; d++) {
      dot += (double)Y[i * ldy + d] * Y[q * ldy + d];
      ni += (double)Y[i * ldy + d] * Y[i * ldy + d];
    }
    ni = sqrt(ni);
    cosd[i] = dot / (ni * nqd);
    ok[i] = i != q && ni > 0 && nqd > 0;
    if (ok[i] && f != NULL) {
      for (size_t j = 0; j < f->n_exclude; j++)
        ok[i] &= f->exclude[j] != i;
      if (f->exclude_bits != NULL)
        ok[i] &= !((f->exclude_bits[i / 64] >> (i % 64)) & 1);
    }
    eligible += ok[i];
  }
  uint32_t *idx = malloc((want + 1) * sizeof *idx);
  float *sc = malloc((want + 1) * sizeof *sc);
  float *scratch = malloc(n * sizeof *scratch); /* exactly n: ASan checks */
  const size_t got = score_similar(Y, ldy, n, k, norms, q, f, want, idx, sc, scratch);
  const size_t exp = eligible < want ? eligible : want;
  EXPECT(got == exp, "%s: got %zu, want %zu", what, got, exp);
  const double tol = 2.0 * (k + 4) * U_F;
  char *seen = calloc(n, 1);
  for (size_t j = 0; j < got; j++) {
    const uint32_t i = idx[j];
    EXPECT(i < n && ok[i] && !seen[i], "%s: rank %zu: item %u not eligible", what, j, i);
    seen[i] = 1;
    EXPECT(fabs((double)sc[j] - cosd[i]) <= tol, "%s: item %u: cos %.9g vs %.9g", what,
                  i, (double)sc[j], cosd[i]);
    if (j > 0)
      EXPECT(sc[j] < sc[j - 1] || (sc[j] == sc[j - 1] && idx[j] > idx[j - 1]),
                    "%s: rank %zu out of order", what, j);
  }
  if (got > 0 && got < eligible)
    for (uint32_t i = 0; i < n; i++)
      if (ok[i] && !seen[i])
        EXPECT(cosd[i] <= cosd[idx[got - 1]] + 2 * tol,
                      "%s: item %u (cos %.9g) left out, last kept %.9g", what, i, cosd[i],
                      cosd[idx[got - 1]]);
  free(seen);
  free(scratch);
  free(sc);
  free(idx);
  free(ok);
  free(cosd);
}

START_TEST(test_similar_vs_brute_force) {
  static const uint32_t ks[] = {1, 8, 64};
  for (size_t ki = 0; ki < 3; ki++) {
    const uint32_t n = 700, k = ks[ki];
    const size_t ldy = k + 2;
    float *Y = make_Y(n, k, ldy, 300 + ki, 0.4f);
    /* Zero rows (never similar, never a useful query), an exact duplicate
     * pair 10/11 and a query 12 = 2 * row 10 (a tie at cosine ~1). */
    memset(Y + 3 * ldy, 0, k * sizeof *Y);
    memset(Y + 400 * ldy, 0, k * sizeof *Y);
    memcpy(Y + 11 * ldy, Y + 10 * ldy, k * sizeof *Y);
    for (uint32_t d = 0; d < k; d++)
      Y[12 * ldy + d] = 2.0f * Y[10 * ldy + d];
    float *norms = malloc(n * sizeof *norms);
    for (uint32_t i = 0; i < n; i++) {
      double s = 0;
      for (uint32_t d = 0; d < k; d++)
        s += (double)Y[i * ldy + d] * Y[i * ldy + d];
      norms[i] = (float)sqrt(s);
    }
    char what[64];
    uint32_t idx[4];
    float sc[4];
    float *scratch = malloc(n * sizeof *scratch);
    if (k > 1) { /* at k = 1 every cosine is +-1: a tie among hundreds */
      ck_assert_uint_eq(score_similar(Y, ldy, n, k, norms, 12, NULL, 2, idx, sc, scratch), 2);
      ck_assert_uint_eq(idx[0], 10);
      ck_assert_uint_eq(idx[1], 11);
      ck_assert_float_eq(sc[0], sc[1]);
    }
    /* A zero-norm query, an unknown item, want 0. */
    ck_assert_uint_eq(score_similar(Y, ldy, n, k, norms, 3, NULL, 5, idx, sc, scratch), 0);
    ck_assert_uint_eq(score_similar(Y, ldy, n, k, norms, n, NULL, 5, idx, sc, scratch), 0);
    ck_assert_uint_eq(score_similar(Y, ldy, n, k, norms, 5, NULL, 0, idx, sc, scratch), 0);
    /* The given norms are the authority: an item whose norm says zero is
     * similar to nothing even if its row is not zero. */
    {
      const float keep = norms[20];
      norms[20] = 0.0f;
      uint32_t *all = malloc(n * sizeof *all);
      size_t got = score_similar(Y, ldy, n, k, norms, 5, NULL, n, all, NULL, scratch);
      ck_assert_uint_eq(got, n - 4); /* not 3, 400 (zero), 5 (query), 20 */
      for (size_t j = 0; j < got; j++)
        EXPECT(all[j] != 20 && all[j] != 3 && all[j] != 400 && all[j] != 5, "item %u", all[j]);
      free(all);
      norms[20] = keep;
    }
    free(scratch);

    const uint32_t ex[] = {2, 10, 11, 250, 251, 252};
    uint64_t bits[(700 + 63) / 64] = {0};
    for (uint32_t i = 0; i < n; i += 7)
      bits[i / 64] |= (uint64_t)1 << (i % 64);
    topk_filter_t f = {.exclude = ex, .n_exclude = 6, .exclude_bits = bits};
    static const uint32_t queries[] = {0, 12, 99, 250, 699};
    static const size_t wants[] = {1, 10, 1000};
    for (size_t qi = 0; qi < 5; qi++)
      for (size_t wi = 0; wi < 3; wi++) {
        snprintf(what, sizeof what, "k=%u q=%u want=%zu", k, queries[qi], wants[wi]);
        check_similar(Y, ldy, n, k, norms, queries[qi], NULL, wants[wi], what);
        check_similar(Y, ldy, n, k, norms, queries[qi], &f, wants[wi], what);
      }
    free(norms);
    free(Y);
  }
}
END_TEST

static Suite *score_suite(void) {
  Suite *s = suite_create("score");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_score_items_vs_double);
  tcase_add_test(tc, test_score_batch_matches_single);
  tcase_add_test(tc, test_topk_vs_sort);
  tcase_add_test(tc, test_topk_edges);
  tcase_add_test(tc, test_similar_vs_brute_force);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(score_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
