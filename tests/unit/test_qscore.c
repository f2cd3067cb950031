/* test_qscore.c - the int8 first pass: its error bounds (per item and for
 * the whole catalogue) and the 4-bit copy's hold on random and adversarial
 * inputs, against double-precision dot products; the fused scan's
 * candidates are exactly the dense definition's, with and without the
 * 4-bit prefilter, and every kernel makes the same pushes. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/qscore.h"
#include "recd/rng.h"
#include "testutil.h"

/* The kernels the tests compare: each ISA's that this CPU runs, and, when
 * the suite is built with SIMDe (qscore_avx512_emu.c), the AVX-512 VNNI
 * kernel's source on SIMDe's portable intrinsics, on any CPU with AVX2
 * (it scans one customer with the AVX2 kernel, as on real AVX-512). */
enum { KERNEL_AVX512_EMU = QSCORE_ISA_COUNT, KERNEL_COUNT };
#ifdef RECD_TEST_AVX512_EMU
int qscan__avx512_emu(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel,
                      size_t nq);
#endif

static int kernel_available(int kern) {
  if (kern < QSCORE_ISA_COUNT)
    return qscore_isa_supported((qscore_isa_t)kern);
#ifdef RECD_TEST_AVX512_EMU
  return qscore_isa_supported(QSCORE_AVX2);
#else
  return 0;
#endif
}

static const char *kernel_name(int kern) {
  return kern == KERNEL_AVX512_EMU ? "avx512-on-simde" : qscore_isa_name((qscore_isa_t)kern);
}

/* qscan() on kernel kern. The emulated kernel is the int8 scan alone:
 * callers give it models without the 4-bit copy or batches. */
static int kernel_scan(int kern, const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
                       qsel_t *sel, size_t nq) {
#ifdef RECD_TEST_AVX512_EMU
  if (kern == KERNEL_AVX512_EMU) {
    ck_assert(nq > 1 || qm->q4 == NULL);
    if (hi > qm->n) /* qscan()'s own checks */
      hi = qm->n;
    return lo >= hi || nq == 0 ? 0 : qscan__avx512_emu(qm, lo, hi, qq, sel, nq);
  }
#endif
  return qscan((qscore_isa_t)kern, qm, lo, hi, qq, sel, nq);
}

static void check_bound(uint32_t n, uint32_t k, float sd, uint64_t seed, int adversarial) {
  float *Y = malloc((size_t)n * k * sizeof *Y), *x = malloc(k * sizeof *x);
  float *out = malloc(n * sizeof *out), *out4 = malloc(n * sizeof *out4);
  float *err4 = malloc(n * sizeof *err4);
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
  int8_t *scratch = malloc(qquery_bytes(&qm));
  float bound = qscore_items(&qm, x, out, scratch);
  ck_assert(bound >= 0 && isfinite(bound));
  qquery_t qq = {.xq = scratch};
  ck_assert(qquery_prepare(&qm, x, &qq) == bound);
  qscore_items4(&qm, x, out4, err4, scratch);
  double worst = 0, worst4 = 0, bound4 = 0;
  for (uint32_t i = 0; i < n; i++) {
    double exact = 0;
    for (uint32_t a = 0; a < k; a++)
      exact += (double)x[a] * Y[(size_t)i * k + a];
    double e = fabs(out[i] - exact);
    worst = e > worst ? e : worst;
    /* the 4-bit copy's score and bound (finite here: no extreme values) */
    ck_assert_msg(isfinite(out4[i]) && isfinite(err4[i]), "n=%u k=%u item %u: 4-bit %g +- %g", n,
                  k, i, (double)out4[i], (double)err4[i]);
    const double e4 = fabs(out4[i] - exact);
    ck_assert_msg(e4 <= err4[i], "n=%u k=%u item %u: 4-bit error %g > its bound %g", n, k, i, e4,
                  (double)err4[i]);
    worst4 = e4 > worst4 ? e4 : worst4;
    bound4 = err4[i] > bound4 ? err4[i] : bound4;
    const float ei = qquery_item_bound(&qq, qm.resid[i], qm.norm[i]);
    ck_assert_msg(e <= ei, "n=%u k=%u item %u: error %g > its bound %g", n, k, i, e, (double)ei);
    ck_assert_msg(ei <= bound, "n=%u k=%u item %u: bound %g > the catalogue's %g", n, k, i,
                  (double)ei, (double)bound);
  }
  /* The bound is useful, not vacuous: on random data with several factors
   * it stays within a small multiple of the worst error actually seen (it
   * is a worst case, so it cannot be tight; k = 1 quantises exactly). */
  if (!adversarial && k >= 8) {
    ck_assert_msg(bound < 64 * worst, "n=%u k=%u: bound %g vs worst %g", n, k, (double)bound,
                  worst);
    ck_assert_msg(bound4 < 64 * worst4, "n=%u k=%u: 4-bit bound %g vs worst %g", n, k, bound4,
                  worst4);
  }
  free(out4);
  free(err4);
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
  int8_t scratch[512];
  ck_assert(qquery_bytes(&qm) <= sizeof scratch);
  float b = qscore_items(&qm, x, out, scratch);
  for (int i = 0; i < 4; i++)
    ck_assert_float_eq(out[i], 0.0f);
  ck_assert(b >= 0);
  qmat_free(&qm);
}
END_TEST

static int cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

/* The dense definition of the final candidate set (qsel_t): items that pass
 * the filter and whose hi = key + e + slack reaches L, the want-th best
 * lo = key - e - slack (key = approximate score + category adjustment, in
 * float; lo and hi in double). Marks them in `in` and returns how many. */
static size_t dense_candidates(const float *approx, const float *err, uint32_t n,
                               const topk_filter_t *f, size_t want, float slack,
                               unsigned char *in) {
  float *key = malloc(n * sizeof *key);
  double *sorted = malloc(n * sizeof *sorted);
  size_t passing = 0;
  for (uint32_t i = 0; i < n; i++) {
    int drop = f->exclude_bits && (f->exclude_bits[i / 64] >> (i % 64) & 1);
    for (size_t j = 0; j < f->n_exclude; j++)
      drop |= f->exclude[j] == i;
    float v = approx[i] + (f->cat_adjust ? f->cat_adjust[f->item_category[i]] : 0.0f);
    key[i] = drop || isnan(v) ? -INFINITY : v;
    if (key[i] != -INFINITY)
      sorted[passing++] = (double)key[i] - err[i] - slack;
  }
  qsort(sorted, passing, sizeof *sorted, cmp_desc); /* L by a full sort */
  const double bar = passing >= want ? sorted[want - 1] : -INFINITY;
  size_t c = 0;
  for (uint32_t i = 0; i < n; i++) {
    in[i] = key[i] != -INFINITY && (double)key[i] + err[i] + slack >= bar;
    c += in[i];
  }
  free(key);
  free(sorted);
  return c;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Marks in `top` the items whose exact (double) score plus category
 * adjustment is at least the want-th best of those the filter keeps: the
 * items every exact answer of `want` needs among its candidates. */
static void exact_top(const float *Y, const float *x, uint32_t n, uint32_t k,
                      const topk_filter_t *f, size_t want, unsigned char *top) {
  double *key = malloc(n * sizeof *key), *sorted = malloc(n * sizeof *sorted);
  size_t passing = 0;
  for (uint32_t i = 0; i < n; i++) {
    double d = 0;
    for (uint32_t a = 0; a < k; a++)
      d += (double)x[a] * Y[(size_t)i * k + a];
    int drop = f->exclude_bits && (f->exclude_bits[i / 64] >> (i % 64) & 1);
    for (size_t j = 0; j < f->n_exclude; j++)
      drop |= f->exclude[j] == i;
    const float adj = f->cat_adjust ? f->cat_adjust[f->item_category[i]] : 0.0f;
    key[i] = drop || adj == -INFINITY ? -INFINITY : d + adj;
    if (key[i] != -INFINITY)
      sorted[passing++] = key[i];
  }
  qsort(sorted, passing, sizeof *sorted, cmp_desc);
  const double bar = passing >= want ? sorted[want - 1] : -INFINITY;
  for (uint32_t i = 0; i < n; i++)
    top[i] = key[i] != -INFINITY && key[i] >= bar;
  free(key);
  free(sorted);
}

/* The fused scan (every kernel, whole range and split in two parts with a
 * merge) leaves exactly the dense candidate set, on catalogues much larger
 * than the collector's buffer (so it compacts many times mid-scan), with
 * exclusions, an unavailable bitmap and category adjustments, for tiny and
 * all-zero customers too. Through the 4-bit prefilter (one customer) it
 * leaves a part of that set, bit for bit, that holds every item an exact
 * answer needs: the prefilter skips only items whose score is below the
 * bar, some of which the int8 bound alone would have kept. */
static void check_scan(uint32_t n, uint32_t k, uint64_t seed, int ties) {
  float *Y = malloc((size_t)n * k * sizeof *Y), *x = malloc(k * sizeof *x);
  float *approx = malloc(n * sizeof *approx), *err = malloc(n * sizeof *err);
  unsigned char *in = malloc(n), *top = malloc(n);
  tu_randn(Y, (size_t)n * k, seed, 0.5f);
  if (ties) /* blocks of identical rows: equal scores everywhere */
    for (uint32_t i = 0; i < n; i++)
      memcpy(Y + (size_t)i * k, Y + (size_t)(i / 97) * k, k * sizeof *Y);
  qmat_t qm, q8; /* with the 4-bit copy, and without */
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
  ck_assert_int_eq(qmat_build(&q8, Y, k, n, k), 0);
  qmat_drop_q4(&q8);
  int8_t *xq = malloc(qquery_bytes(&qm));
  uint32_t excl[40], *cat = malloc(n * sizeof *cat);
  uint64_t *bits = calloc((n + 63) / 64, sizeof *bits);
  float adj[4] = {0.0f, 0.3f, -INFINITY, -0.2f};
  for (uint32_t i = 0; i < n; i++)
    cat[i] = (i * 7u) % 4u;
  for (int trial = 0; trial < 7; trial++) {
    tu_randn(x, k, seed + 100 + (uint64_t)trial, trial % 3 == 2 ? 1e-3f : 1.0f);
    if (trial == 6) /* every score 0: every item a candidate (the buffer grows) */
      memset(x, 0, k * sizeof *x);
    for (int j = 0; j < 40; j++)
      excl[j] = (uint32_t)((j * 2654435761u + (uint32_t)trial) % n);
    qsort(excl, 40, sizeof *excl, cmp_u32);
    memset(bits, 0, (n + 63) / 64 * sizeof *bits);
    for (uint32_t i = 0; i < n; i += 13)
      bits[i / 64] |= 1ull << (i % 64);
    topk_filter_t f = {.exclude = excl, .n_exclude = trial % 2 ? 40 : 0,
                       .exclude_bits = trial % 3 ? bits : NULL};
    if (trial >= 3) {
      f.item_category = cat;
      f.cat_adjust = adj;
      f.n_slots = 4;
    }
    const size_t want = (size_t)(1 + trial * 7);
    qscore_items(&qm, x, approx, xq);
    qquery_t q0 = {.xq = xq};
    qquery_prepare(&qm, x, &q0);
    for (uint32_t i = 0; i < n; i++)
      err[i] = qquery_item_bound(&q0, qm.resid[i], qm.norm[i]);
    const float slack = trial % 2 ? 1e-6f : 0.0f;
    const size_t expect = dense_candidates(approx, err, n, &f, want, slack, in);
    exact_top(Y, x, n, k, &f, want, top);
    for (int isa = QSCORE_SCALAR; isa < QSCORE_ISA_COUNT; isa++) {
      if (!qscore_isa_supported((qscore_isa_t)isa))
        continue;
      for (int way = 0; way < 4; way++) {
        const int parts = 1 + way % 2, q4 = way >= 2;
        const qmat_t *m = q4 ? &qm : &q8;
        qquery_t qq = {.xq = xq};
        qquery_prepare(m, x, &qq);
        qsel_t a, b;
        ck_assert_int_eq(qsel_init(&a, &f, want, slack), 0);
        ck_assert_int_eq(qsel_init(&b, &f, want, slack), 0);
        const uint32_t mid = parts == 1 ? n : (n / 2) & ~7u;
        ck_assert_int_eq(qscan((qscore_isa_t)isa, m, 0, mid, &qq, &a, 1), 0);
        ck_assert_int_eq(qscan((qscore_isa_t)isa, m, mid, n, &qq, &b, 1), 0);
        ck_assert_int_eq(qsel_merge(&a, &b), 0);
        ck_assert_msg(q4 ? a.n <= expect : a.n == expect,
                      "n=%u k=%u trial %d %s parts %d 4-bit %d: %zu candidates, want %zu", n, k,
                      trial, qscore_isa_name((qscore_isa_t)isa), parts, q4, a.n, expect);
        size_t needed = 0;
        for (size_t j = 0; j < a.n; j++) {
          ck_assert_msg(in[a.idx[j]], "item %u is not a candidate", a.idx[j]);
          /* bit-identical to the dense (portable) scores and bounds */
          ck_assert(memcmp(&a.s[j], &approx[a.idx[j]], sizeof(float)) == 0);
          ck_assert(memcmp(&a.err[j], &err[a.idx[j]], sizeof(float)) == 0);
          in[a.idx[j]] = 0; /* each once */
          needed += top[a.idx[j]];
        }
        size_t top_n = 0;
        for (uint32_t i = 0; i < n; i++)
          top_n += top[i];
        ck_assert_msg(needed == top_n, "n=%u k=%u trial %d %s parts %d 4-bit %d: %zu of the %zu "
                      "items an exact answer needs", n, k, trial,
                      qscore_isa_name((qscore_isa_t)isa), parts, q4, needed, top_n);
        dense_candidates(approx, err, n, &f, want, slack, in);
        qsel_free(&a);
        qsel_free(&b);
      }
    }
  }
  free(bits);
  free(cat);
  free(xq);
  qmat_free(&qm);
  qmat_free(&q8);
  free(Y);
  free(x);
  free(approx);
  free(err);
  free(in);
  free(top);
}

/* The collector's bar follows the offers one by one (qsel_t): once `want`
 * items that pass the filter were offered, thresh is the bar of the
 * want-th best lo, with no compaction in between; an item the filter
 * removes is not kept and never raises it, whatever its score; a NaN score
 * is never kept; compaction then drops exactly the items whose hi is
 * below the bar. */
START_TEST(test_bar_follows_offers) {
  uint32_t excl[1] = {7};
  topk_filter_t f = {.exclude = excl, .n_exclude = 1};
  qsel_t s;
  ck_assert_int_eq(qsel_init(&s, &f, 2, 0.0f), 0);
  ck_assert(s.thresh == -INFINITY);
  ck_assert_int_eq(qsel_offer(&s, 7, 100.0f, 0.0f), 0); /* excluded */
  ck_assert_int_eq(qsel_offer(&s, 1, NAN, 0.0f), 0);    /* never ranks */
  ck_assert_uint_eq(s.n, 0);
  ck_assert_int_eq(qsel_offer(&s, 2, 5.0f, 1.0f), 0);   /* lo 4, hi 6 */
  ck_assert(s.thresh == -INFINITY);                     /* one of two */
  ck_assert_int_eq(qsel_offer(&s, 3, 3.0f, 0.5f), 0);   /* lo 2.5, hi 3.5 */
  /* bar 2.5: thresh just below it (the relative pad) */
  ck_assert(s.thresh < 2.5f && s.thresh > 2.49f);
  ck_assert_int_eq(qsel_offer(&s, 4, 9.0f, 0.5f), 0);   /* lo 8.5: bar 4 */
  ck_assert(s.thresh < 4.0f && s.thresh > 3.99f);
  ck_assert_int_eq(qsel_offer(&s, 5, 1.0f, 0.25f), 0);  /* hi 1.25 < 4 */
  ck_assert_uint_eq(s.n, 4);
  ck_assert_int_eq(qsel_compact(&s), 0); /* drops 3 (hi 3.5) and 5 */
  ck_assert_uint_eq(s.n, 2);
  ck_assert_uint_eq(s.idx[0], 2);
  ck_assert_uint_eq(s.idx[1], 4);
  ck_assert(s.thresh < 4.0f && s.thresh > 3.99f);
  qsel_free(&s);
}
END_TEST

/* A hinted filter (topk_filter_hint) excludes exactly the items of its
 * list: those whose hint bit is shared with an excluded item (i and
 * i + 512) are still kept; the hint follows the list when it is set again
 * for a longer one. */
START_TEST(test_exclusion_hint) {
  uint32_t excl[4] = {3, 515, 1027, 70000};
  topk_filter_t f = {.exclude = excl, .n_exclude = 3};
  topk_filter_hint(&f);
  ck_assert(f.hinted);
  for (int pass = 0; pass < 2; pass++) {
    qsel_t s;
    ck_assert_int_eq(qsel_init(&s, &f, 100, 0.0f), 0);
    const uint32_t items[] = {3, 4, 515, 1027, 1539, 2, 70000, 70001};
    for (size_t j = 0; j < sizeof items / sizeof *items; j++)
      ck_assert_int_eq(qsel_offer(&s, items[j], 1.0f + (float)j, 0.0f), 0);
    const uint32_t kept0[] = {4, 1539, 2, 70000, 70001}, kept1[] = {4, 1539, 2, 70001};
    const uint32_t *kept = pass == 0 ? kept0 : kept1;
    ck_assert_uint_eq(s.n, pass == 0 ? 5 : 4);
    for (size_t j = 0; j < s.n; j++)
      ck_assert_uint_eq(s.idx[j], kept[j]);
    qsel_free(&s);
    f.n_exclude = 4; /* 70000 joins: hinted again */
    topk_filter_hint(&f);
  }
}
END_TEST

/* qsel_kth_lo is the j-th best lo the collector has counted (against a
 * sort of every lo offered, many of them equal, with wants below and
 * above its 64-value stack copy), -INFINITY for j beyond what it has
 * counted or 0, also when asked again (its cache); qsel_raise_bar puts
 * thresh where the collector's own bar would, and never lowers it. */
START_TEST(test_kth_lo_and_raise_bar) {
  const size_t wants[] = {1, 2, 7, 64, 65, 300};
  uint64_t st = 12345;
  for (size_t w = 0; w < sizeof wants / sizeof *wants; w++) {
    const size_t want = wants[w];
    qsel_t s;
    ck_assert_int_eq(qsel_init(&s, NULL, want, 0.0f), 0);
    ck_assert(qsel_kth_lo(&s, 1) == -INFINITY);
    double *lo = malloc(3 * want * sizeof *lo);
    for (size_t i = 0; i < 3 * want; i++) {
      st = st * 6364136223846793005ULL + 1442695040888963407ULL;
      const float v = (float)((st >> 40) % 50) / 4.0f; /* many ties */
      ck_assert_int_eq(qsel_offer(&s, (uint32_t)i, v, 0.5f), 0);
      lo[i] = (double)v - 0.5;
      double *sorted = malloc((i + 1) * sizeof *sorted);
      memcpy(sorted, lo, (i + 1) * sizeof *sorted);
      qsort(sorted, i + 1, sizeof *sorted, cmp_desc);
      /* the last call of the previous offer asked j = want: cached,
       * whether this offer changed the want best or not */
      ck_assert(qsel_kth_lo(&s, want) == (i + 1 >= want ? sorted[want - 1] : -INFINITY));
      for (size_t j = 1; j <= want + 1; j++) {
        const double want_lo = j <= i + 1 && j <= want ? sorted[j - 1] : -INFINITY;
        ck_assert_msg(qsel_kth_lo(&s, j) == want_lo, "want %zu, %zu offers, j %zu", want, i + 1,
                      j);
      }
      free(sorted);
    }
    ck_assert(qsel_kth_lo(&s, 0) == -INFINITY);
    free(lo);
    qsel_free(&s);
  }
  qsel_t s;
  ck_assert_int_eq(qsel_init(&s, NULL, 2, 0.0f), 0);
  qsel_raise_bar(&s, -INFINITY);
  qsel_raise_bar(&s, NAN);
  ck_assert(s.thresh == -INFINITY);
  qsel_raise_bar(&s, 4.0);
  ck_assert(s.thresh < 4.0f && s.thresh > 3.99f); /* as test_bar_follows_offers */
  qsel_raise_bar(&s, 1.0);
  ck_assert(s.thresh < 4.0f && s.thresh > 3.99f); /* never lowered */
  ck_assert_int_eq(qsel_offer(&s, 1, 2.0f, 0.0f), 0); /* below thresh: kept, */
  ck_assert_uint_eq(s.n, 1);                            /* offers are not tested */
  ck_assert(s.thresh < 4.0f && s.thresh > 3.99f);
  qsel_free(&s);
}
END_TEST

START_TEST(test_scan_candidates_are_exact_set) {
  check_scan(20011, 64, 1, 0);
  check_scan(5003, 100, 2, 0);
  check_scan(3001, 8, 3, 0);
  check_scan(9, 1, 4, 0);
  check_scan(20000, 64, 5, 1);
}
END_TEST

START_TEST(test_scan_batch_equals_single) {
  /* nq customers in one scan: each collector ends as if scanned alone (by
   * the int8 scan alone: without the 4-bit copy) */
  const uint32_t n = 12345, k = 64;
  float *Y = malloc((size_t)n * k * sizeof *Y), X[5 * 64];
  tu_randn(Y, (size_t)n * k, 7, 1.0f);
  tu_randn(X, 5 * k, 8, 1.0f);
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
  qmat_drop_q4(&qm);
  int8_t xq[5][512];
  qquery_t qq[5];
  qsel_t many[5], one;
  for (int kern = QSCORE_SCALAR; kern < KERNEL_COUNT; kern++) {
    if (!kernel_available(kern))
      continue;
    for (int r = 0; r < 5; r++) {
      qq[r].xq = xq[r];
      qquery_prepare(&qm, X + r * k, &qq[r]);
      ck_assert_int_eq(qsel_init(&many[r], NULL, 10, 0.0f), 0);
    }
    ck_assert_int_eq(kernel_scan(kern, &qm, 0, n, qq, many, 5), 0);
    for (int r = 0; r < 5; r++) {
      ck_assert_int_eq(qsel_compact(&many[r]), 0);
      ck_assert_int_eq(qsel_init(&one, NULL, 10, many[r].slack), 0);
      ck_assert_int_eq(kernel_scan(kern, &qm, 0, n, &qq[r], &one, 1), 0);
      ck_assert_int_eq(qsel_compact(&one), 0);
      ck_assert_uint_eq(one.n, many[r].n);
      ck_assert(one.n >= 10);
      qsort(one.idx, one.n, sizeof *one.idx, cmp_u32);
      qsort(many[r].idx, many[r].n, sizeof *one.idx, cmp_u32);
      ck_assert_int_eq(memcmp(one.idx, many[r].idx, one.n * sizeof *one.idx), 0);
      qsel_free(&one);
      qsel_free(&many[r]);
    }
  }
  qmat_free(&qm);
  free(Y);
}
END_TEST

/* Every kernel gives every item of a range the portable kernel's score and
 * bound, bit for bit, in the same order: a collector that wants more than
 * the range keeps everything it is offered (no bar), and a threshold of
 * -inf offers every item. Ranges start at any block and end anywhere (a
 * lone last block, a partial one, two blocks), nq customers at once. */
enum { KB_RANDOM, KB_EXTREME, KB_TIES, KB_KINDS };

static void fill_model(float *Y, uint32_t n, uint32_t k, int kind, uint64_t seed) {
  tu_randn(Y, (size_t)n * k, seed, 0.7f);
  for (uint32_t i = 0; kind == KB_EXTREME && i < n; i++) {
    float *y = Y + (size_t)i * k;
    switch (i % 7) {
    case 0: /* all at the full scale: stored bytes 127 */
      for (uint32_t a = 0; a < k; a++)
        y[a] = 3.0f;
      break;
    case 1: /* all at minus the full scale: stored bytes 1 */
      for (uint32_t a = 0; a < k; a++)
        y[a] = -3.0f;
      break;
    case 2: /* alternating extremes */
      for (uint32_t a = 0; a < k; a++)
        y[a] = a % 2 ? 1e30f : -1e30f;
      break;
    case 3: /* one huge coordinate: every other one quantises to 0 */
      y[i % k] = 1e4f;
      break;
    case 4: /* a zero row */
      memset(y, 0, k * sizeof *y);
      break;
    case 5: /* tiny, subnormal scale */
      for (uint32_t a = 0; a < k; a++)
        y[a] *= 1e-40f;
      break;
    default: /* values at the rounding midpoints */
      for (uint32_t a = 0; a < k; a++)
        y[a] = (float)((int)(a % 127) - 63) + 0.5f;
    }
  }
  if (kind == KB_TIES) /* duplicate rows and near-ties (one ulp apart) */
    for (uint32_t i = 0; i < n; i++) {
      memcpy(Y + (size_t)i * k, Y + (size_t)(i / 5) * k, k * sizeof *Y);
      if (i % 5 == 4)
        Y[(size_t)i * k + i % k] = nextafterf(Y[(size_t)i * k + i % k], INFINITY);
    }
}

static void fill_query(float *x, uint32_t k, int r, uint64_t seed) {
  tu_randn(x, k, seed, 1.0f);
  for (uint32_t a = 0; a < k; a++) {
    if (r == 1) /* all at the full scale: every xq = 63, the largest dots */
      x[a] = 2.0f;
    else if (r == 2) /* all at minus the full scale and alternating */
      x[a] = a % 2 ? -2.0f : 2.0f;
    else if (r == 3) /* all zero */
      x[a] = 0.0f;
    else if (r == 4) /* extreme magnitudes */
      x[a] *= 1e30f;
  }
}

static void check_kernels(uint32_t n, uint32_t k, int kind, uint64_t seed) {
  enum { NQ = 5 };
  float *Y = malloc((size_t)n * k * sizeof *Y), *x = malloc(k * sizeof *x);
  fill_model(Y, n, k, kind, seed);
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
  int8_t *xq = malloc(NQ * qquery_bytes(&qm));
  float *dense = malloc((size_t)NQ * n * sizeof *dense);
  qquery_t qq[NQ];
  for (int r = 0; r < NQ; r++) {
    fill_query(x, k, r, seed + 1000 + (uint64_t)r);
    qscore_items(&qm, x, dense + (size_t)r * n, xq + r * qquery_bytes(&qm));
    qq[r].xq = xq + r * qquery_bytes(&qm);
    qquery_prepare(&qm, x, &qq[r]);
  }
  const uint32_t nb = (n + 7) / 8;
  const uint32_t ranges[][2] = {{0, n},          {8 * (nb / 2), n}, {0, 8 * (nb / 2)},
                                {8, n - n / 3},  {0, 9},            {0, 8},
                                {8 * (nb - 1), n}, {0, 17}};
  for (size_t g = 0; g < sizeof ranges / sizeof *ranges; g++) {
    const uint32_t lo = ranges[g][0], hi = ranges[g][1] < n ? ranges[g][1] : n;
    qsel_t ref[NQ];
    for (int isa = QSCORE_SCALAR; isa < KERNEL_COUNT; isa++) {
      if (!kernel_available(isa))
        continue;
      qsel_t got[NQ];
      for (int r = 0; r < NQ; r++)
        ck_assert_int_eq(qsel_init(&got[r], NULL, (size_t)n + 1, 0.0f), 0);
      ck_assert_int_eq(kernel_scan(isa, &qm, lo, hi, qq, got, NQ), 0);
      for (int r = 0; r < NQ; r++) {
        /* every item but those whose v + e is NaN (overflowing extremes) */
        const qsel_t *a = &got[r];
        size_t j = 0;
        for (uint32_t i = lo; i < hi; i++) {
          const float v = dense[(size_t)r * n + i];
          const float e = qquery_item_bound(&qq[r], qm.resid[i], qm.norm[i]);
          if (!(v + e >= -INFINITY))
            continue;
          ck_assert_msg(j < a->n && a->idx[j] == i && memcmp(&a->s[j], &v, 4) == 0 &&
                            memcmp(&a->err[j], &e, 4) == 0,
                        "%s n=%u k=%u kind %d [%u,%u) r %d: item %u score %a, portable %a",
                        kernel_name(isa), n, k, kind, lo, hi, r, i,
                        j < a->n ? (double)a->s[j] : 0.0, (double)v);
          if (isa != QSCORE_SCALAR) /* and the portable scan's, bit for bit */
            ck_assert(ref[r].idx[j] == i && memcmp(&ref[r].s[j], &a->s[j], 4) == 0 &&
                      memcmp(&ref[r].err[j], &a->err[j], 4) == 0);
          j++;
        }
        ck_assert_msg(j == a->n, "%s n=%u k=%u kind %d [%u,%u) r %d: %zu items, want %zu",
                      kernel_name(isa), n, k, kind, lo, hi, r, a->n, j);
        if (isa == QSCORE_SCALAR)
          ref[r] = got[r];
        else
          qsel_free(&got[r]);
      }
    }
    for (int r = 0; r < NQ; r++)
      qsel_free(&ref[r]);
  }
  free(dense);
  free(xq);
  qmat_free(&qm);
  free(Y);
  free(x);
}

START_TEST(test_kernels_bit_identical) {
  if (!qscore_isa_supported(QSCORE_AVX512))
    printf("test_qscore: no AVX-512 VNNI on this CPU: its kernel is tested on SIMDe's "
           "portable intrinsics only%s\n",
           kernel_available(KERNEL_AVX512_EMU) ? "" : ", and this build has no SIMDe: not at all");
  if (!qscore_isa_supported(QSCORE_AVX2))
    printf("test_qscore: no AVX2 on this CPU: its kernel is not tested here\n");
  const uint32_t ks[] = {1, 4, 8, 12, 16, 24, 64, 100, 256, 1024};
  for (size_t t = 0; t < sizeof ks / sizeof *ks; t++)
    for (int kind = 0; kind < KB_KINDS; kind++) {
      const uint32_t n = ks[t] >= 256 ? 203 : 1001 + (uint32_t)t * 3;
      check_kernels(n, ks[t], kind, 40 + t * 3 + (uint64_t)kind);
    }
  check_kernels(16, 64, KB_EXTREME, 90); /* exactly two blocks */
  check_kernels(5, 64, KB_EXTREME, 91);  /* one partial block */
}
END_TEST

/* The largest dot products a model can give (every stored byte 127 and
 * every query byte 63, at the largest k): exact in every kernel, and the
 * same scores in every kernel, for one customer and for a batch (the
 * AVX-512 kernel scans batches itself and one customer with AVX2). */
START_TEST(test_kernels_largest_dots) {
  const uint32_t n = 24, k = 1024;
  float *Y = malloc((size_t)n * k * sizeof *Y), *x = malloc(k * sizeof *x);
  for (size_t a = 0; a < (size_t)n * k; a++)
    Y[a] = a / k % 2 ? -1.0f : 1.0f;
  for (uint32_t a = 0; a < k; a++)
    x[a] = 1.0f;
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
  int8_t *xq = malloc(qquery_bytes(&qm));
  qquery_t qq[2] = {{.xq = xq}, {.xq = xq}};
  qquery_prepare(&qm, x, &qq[0]);
  qq[1] = qq[0];
  for (int isa = QSCORE_SCALAR; isa < KERNEL_COUNT; isa++) {
    if (!kernel_available(isa))
      continue;
    /* (one customer goes through the 4-bit copy: kernel_scan) */
    for (size_t nq = isa == KERNEL_AVX512_EMU ? 2 : 1; nq <= 2; nq++) {
      qsel_t s[2];
      for (size_t r = 0; r < nq; r++)
        ck_assert_int_eq(qsel_init(&s[r], NULL, n + 1, 0.0f), 0);
      ck_assert_int_eq(kernel_scan(isa, &qm, 0, n, qq, s, nq), 0);
      for (size_t r = 0; r < nq; r++) {
        ck_assert_uint_eq(s[r].n, n);
        for (size_t j = 0; j < n; j++) {
          /* 63 * 63 * 1024 (with the offset: 127 * 63 * 1024 - 64 * 63 * 1024) */
          const uint32_t i = s[r].idx[j];
          const float want =
              (float)((i % 2 ? -1.0 : 1.0) * 63 * 63 * 1024) * (qm.scale[i] * qq[0].sx);
          ck_assert_msg(s[r].s[j] == want, "%s nq %zu item %u: %a want %a",
                        kernel_name(isa), nq, i, (double)s[r].s[j], (double)want);
        }
        qsel_free(&s[r]);
      }
    }
  }
  free(xq);
  qmat_free(&qm);
  free(Y);
  free(x);
}
END_TEST

/* RECD_QSCORE_ISA names a kernel; the default is the best supported. */
/* The 4-bit prefilter: every kernel makes the portable kernel's pushes,
 * bit for bit and in order, and leaves the same threshold, on models of
 * every kind (extreme values, ties), for every kind of customer, scanning
 * the range whole and in chunks with one collector (as a daemon's split
 * scan does: only the first chunk warms up); and the threshold it leaves
 * never exceeds the int8 scan's bar for the same items. */
static void check_prefilter(uint32_t n, uint32_t k, int kind, size_t want, uint64_t seed) {
  float *Y = malloc((size_t)n * k * sizeof *Y), *x = malloc(k * sizeof *x);
  fill_model(Y, n, k, kind, seed);
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
  ck_assert(qm.q4 != NULL);
  int8_t *xq = malloc(qquery_bytes(&qm));
  for (int r = 0; r < 5; r++) {
    if (r == 2 || (r == 3 && kind != KB_RANDOM))
      continue; /* (their cases, the others' in short: time under ASan) */
    fill_query(x, k, r, seed + 77 + (uint64_t)r);
    qquery_t qq = {.xq = xq};
    qquery_prepare(&qm, x, &qq);
    for (uint32_t chunk = 0; chunk <= 2048; chunk += 2048) { /* 0: whole */
      qsel_t ref;
      for (int isa = QSCORE_SCALAR; isa < QSCORE_ISA_COUNT; isa++) {
        if (!qscore_isa_supported((qscore_isa_t)isa))
          continue;
        qsel_t got;
        ck_assert_int_eq(qsel_init(&got, NULL, want, 0.0f), 0);
        for (uint32_t lo = 0; lo < n; lo += chunk ? chunk : n)
          ck_assert_int_eq(qscan((qscore_isa_t)isa, &qm, lo, chunk ? lo + chunk : n, &qq, &got, 1),
                           0);
        if (isa == QSCORE_SCALAR) {
          ref = got;
          continue;
        }
        ck_assert_msg(got.n == ref.n && memcmp(&got.thresh, &ref.thresh, sizeof(float)) == 0,
                      "%s n=%u k=%u kind %d want %zu r %d chunk %u: %zu pushes (thresh %a), "
                      "portable %zu (%a)",
                      qscore_isa_name((qscore_isa_t)isa), n, k, kind, want, r, chunk, got.n,
                      (double)got.thresh, ref.n, (double)ref.thresh);
        ck_assert(memcmp(got.idx, ref.idx, got.n * sizeof *got.idx) == 0);
        ck_assert(memcmp(got.s, ref.s, got.n * sizeof *got.s) == 0);
        ck_assert(memcmp(got.err, ref.err, got.n * sizeof *got.err) == 0);
        qsel_free(&got);
      }
      qsel_free(&ref);
    }
  }
  free(xq);
  qmat_free(&qm);
  free(Y);
  free(x);
}

START_TEST(test_prefilter_kernels_identical) {
  const uint32_t ks[] = {1, 8, 12, 64, 100, 256};
  for (size_t t = 0; t < sizeof ks / sizeof *ks; t++)
    for (int kind = 0; kind < KB_KINDS; kind++) {
      check_prefilter(ks[t] >= 256 ? 2003 : 6007, ks[t], kind, 10, 300 + t * 3 + (uint64_t)kind);
      check_prefilter(ks[t] >= 256 ? 1001 : 3001, ks[t], kind, 1, 400 + t * 3 + (uint64_t)kind);
    }
  check_prefilter(13, 64, KB_RANDOM, 50, 500); /* fewer items than wanted */
}
END_TEST

/* The 4-bit copy's numbers: the stored scale is the one the row was
 * quantised with, residual and norm are rounded up, padding is zero; rows
 * with no cosine (zero norm) and rows without a proven bound pass any
 * threshold. */
START_TEST(test_q4_copy) {
  const uint32_t n = 11, k = 12;
  float Y[11 * 12];
  tu_randn(Y, n * k, 61, 1.0f);
  for (uint32_t a = 0; a < k; a++)
    Y[3 * k + a] = 0.0f; /* a zero row */
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
  ck_assert_uint_eq(qm.kpad, 16);
  /* per row: nibbles, scale and residual; per block of 8: the norm */
  ck_assert_uint_eq(qmat_bytes(&qm), qmat_bytes_int8(&qm) + 16 * (16 / 2 + 4) + 2 * 2);
  for (uint32_t i = 0; i < 16; i++) {
    uint32_t b;
    float f;
    b = (uint32_t)qm.scale4[i] << 16;
    memcpy(&f, &b, 4);
    if (i >= n || i == 3) {
      ck_assert(f == 0.0f && qm.resid4[i] == 0);
      continue;
    }
    float m = 0;
    for (uint32_t a = 0; a < k; a++)
      m = fabsf(Y[i * k + a]) > m ? fabsf(Y[i * k + a]) : m;
    ck_assert(f >= m / 7.0f && f <= m / 7.0f * 1.01f); /* rounded up, by less than 2^-7 */
    b = (uint32_t)qm.norm16[i / 8] << 16; /* its block's: at least its own */
    memcpy(&f, &b, 4);
    ck_assert(f >= qm.norm[i]);
  }
  /* and no more than its block's largest, rounded up (the padding rows'
   * and the zero row's norms are 0) */
  for (uint32_t blk = 0; blk < 2; blk++) {
    float mx = 0.0f, f;
    for (uint32_t i = 8 * blk; i < 8 * blk + 8 && i < n; i++)
      mx = qm.norm[i] > mx ? qm.norm[i] : mx;
    const uint32_t b = (uint32_t)qm.norm16[blk] << 16;
    memcpy(&f, &b, 4);
    ck_assert(f >= mx && f <= mx * 1.01f);
  }
  /* the padding rows' nibbles (items 11-15 of the second block) are the
   * stored zero */
  for (uint32_t p = 0; p < qm.kpad / 8; p++)
    for (uint32_t j = n % 8; j < 8; j++)
      for (uint32_t t = 0; t < 4; t++)
        ck_assert_uint_eq(qm.q4[4 * qm.kpad + 32 * p + 4 * j + t], 0x88);
  qmat_drop_q4(&qm);
  ck_assert(qm.q4 == NULL && qmat_bytes(&qm) == qmat_bytes_int8(&qm));
  qmat_free(&qm);

  /* cosine: row 3 (norm 0) has a NaN scale, row 5 (outside the proven
   * range) an infinite residual; a scan offers neither by mistake and
   * keeps row 5 a candidate whatever the bar */
  float norms[11];
  for (uint32_t i = 0; i < n; i++) {
    double s = 0;
    for (uint32_t a = 0; a < k; a++)
      s += (double)Y[i * k + a] * Y[i * k + a];
    norms[i] = (float)sqrt(s);
  }
  norms[5] = 1e30f;
  ck_assert_int_eq(qmat_build_cosine(&qm, Y, k, n, k, norms, 1e-20f, 1e20f), 0);
  ck_assert_uint_eq(qm.scale4[3], 0x7fc0);
  ck_assert_uint_eq(qm.resid4[5], 0x7f80);
  int8_t xq[8 * 16];
  qquery_t qq = {.xq = xq};
  qquery_prepare(&qm, Y, &qq); /* item 0's direction */
  for (int isa = QSCORE_SCALAR; isa < QSCORE_ISA_COUNT; isa++) {
    if (!qscore_isa_supported((qscore_isa_t)isa))
      continue;
    qsel_t sel;
    ck_assert_int_eq(qsel_init(&sel, NULL, 1, 0.0f), 0);
    ck_assert_int_eq(qscan((qscore_isa_t)isa, &qm, 0, n, &qq, &sel, 1), 0);
    ck_assert_int_eq(qsel_compact(&sel), 0);
    int has0 = 0, has5 = 0;
    for (size_t j = 0; j < sel.n; j++) {
      ck_assert_uint_ne(sel.idx[j], 3);
      has0 |= sel.idx[j] == 0;
      has5 |= sel.idx[j] == 5;
    }
    ck_assert(has0 && has5);
    qsel_free(&sel);
  }
  qmat_free(&qm);
}
END_TEST

/* Built without its 4-bit copy (what serve_model_init does below
 * scan-prefilter-bytes): the int8 copy is byte for byte the one built with
 * it, and qmat_bytes_int8_for() foretold its size; the same for the
 * cosine copy, whose zero row and row of unproven norm have no 4-bit scale
 * or residual to mark. */
static void same_int8(const qmat_t *a, const qmat_t *b) {
  const size_t rows = (a->n + 7) / 8 * 8;
  ck_assert_uint_eq(a->kpad, b->kpad);
  ck_assert_int_eq(memcmp(a->q, b->q, rows * a->kpad), 0);
  ck_assert_int_eq(memcmp(a->scale, b->scale, rows * sizeof *a->scale), 0);
  ck_assert_int_eq(memcmp(a->norm, b->norm, rows * sizeof *a->norm), 0);
  ck_assert_int_eq(memcmp(a->resid, b->resid, rows * sizeof *a->resid), 0);
  ck_assert(memcmp(&a->max_norm, &b->max_norm, sizeof a->max_norm) == 0 &&
            memcmp(&a->max_resid, &b->max_resid, sizeof a->max_resid) == 0);
}

START_TEST(test_build_without_q4) {
  const uint32_t n = 21, k = 10;
  float Y[21 * 10], norms[21];
  tu_randn(Y, n * k, 67, 1.0f);
  for (uint32_t a = 0; a < k; a++)
    Y[4 * k + a] = 0.0f; /* a zero row */
  for (uint32_t i = 0; i < n; i++) {
    double s = 0;
    for (uint32_t a = 0; a < k; a++)
      s += (double)Y[i * k + a] * Y[i * k + a];
    norms[i] = (float)sqrt(s);
  }
  norms[7] = 1e30f; /* outside the proven range: an infinite residual */
  qmat_t with, without;
  ck_assert_int_eq(qmat_build(&with, Y, k, n, k), 0);
  ck_assert_int_eq(qmat_build_with(&without, Y, k, n, k, 0), 0);
  ck_assert(without.q4 == NULL && without.scale4 == NULL && without.resid4 == NULL &&
            without.norm16 == NULL && with.q4 != NULL);
  same_int8(&with, &without);
  ck_assert_uint_eq(qmat_bytes(&without), qmat_bytes_int8(&without));
  ck_assert_uint_eq(qmat_bytes_int8_for(n, k), qmat_bytes_int8(&with));
  qmat_free(&with);
  qmat_free(&without);
  ck_assert_int_eq(qmat_build_cosine(&with, Y, k, n, k, norms, 1e-20f, 1e20f), 0);
  ck_assert_int_eq(qmat_build_cosine_with(&without, Y, k, n, k, norms, 1e-20f, 1e20f, 0), 0);
  ck_assert(without.q4 == NULL && isnan(without.scale[4]) && isinf(without.resid[7]));
  same_int8(&with, &without);
  qmat_free(&with);
  qmat_free(&without);
}
END_TEST

START_TEST(test_isa_names) {
  for (int isa = QSCORE_SCALAR; isa < QSCORE_ISA_COUNT; isa++)
    for (int j = 0; j < isa; j++)
      ck_assert_str_ne(qscore_isa_name((qscore_isa_t)isa), qscore_isa_name((qscore_isa_t)j));
  ck_assert_str_eq(qscore_isa_name(QSCORE_AVX512), "avx512");
  const qscore_isa_t d = qscore_isa_default();
  ck_assert(qscore_isa_supported(d));
  const char *e = getenv("RECD_QSCORE_ISA");
  if (e == NULL)
    for (int isa = d + 1; isa < QSCORE_ISA_COUNT; isa++)
      ck_assert(!qscore_isa_supported((qscore_isa_t)isa));
  printf("test_qscore: default kernel %s\n", qscore_isa_name(d));
}
END_TEST

static Suite *qscore_suite(void) {
  Suite *s = suite_create("qscore");
  TCase *tc = tcase_create("core");
  /* per test; the slowest (the scan and prefilter sweeps over every
   * kernel and model kind) take about 30 s under ASan */
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_bound_holds);
  tcase_add_test(tc, test_zero_query);
  tcase_add_test(tc, test_bar_follows_offers);
  tcase_add_test(tc, test_kth_lo_and_raise_bar);
  tcase_add_test(tc, test_exclusion_hint);
  tcase_add_test(tc, test_scan_candidates_are_exact_set);
  tcase_add_test(tc, test_scan_batch_equals_single);
  tcase_add_test(tc, test_kernels_bit_identical);
  tcase_add_test(tc, test_kernels_largest_dots);
  tcase_add_test(tc, test_prefilter_kernels_identical);
  tcase_add_test(tc, test_q4_copy);
  tcase_add_test(tc, test_build_without_q4);
  tcase_add_test(tc, test_isa_names);
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
