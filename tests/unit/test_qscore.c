/* test_qscore.c - the int8 first pass: its error bounds (per item and for
 * the whole catalogue) hold on random and adversarial inputs, against
 * double-precision dot products; the fused scan's candidates are exactly
 * the dense definition's. */
#include <check.h>
#include <math.h>
#include <stdio.h>
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
  int8_t *scratch = malloc(qquery_bytes(&qm));
  float bound = qscore_items(&qm, x, out, scratch);
  ck_assert(bound >= 0 && isfinite(bound));
  qquery_t qq = {.xq = scratch};
  ck_assert(qquery_prepare(&qm, x, &qq) == bound);
  double worst = 0;
  for (uint32_t i = 0; i < n; i++) {
    double exact = 0;
    for (uint32_t a = 0; a < k; a++)
      exact += (double)x[a] * Y[(size_t)i * k + a];
    double e = fabs(out[i] - exact);
    worst = e > worst ? e : worst;
    const float ei = qquery_item_bound(&qq, qm.resid[i], qm.norm[i]);
    ck_assert_msg(e <= ei, "n=%u k=%u item %u: error %g > its bound %g", n, k, i, e, (double)ei);
    ck_assert_msg(ei <= bound, "n=%u k=%u item %u: bound %g > the catalogue's %g", n, k, i,
                  (double)ei, (double)bound);
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

/* The fused scan (every kernel, whole range and split in two parts with a
 * merge) leaves exactly the dense candidate set, on catalogues much larger
 * than the collector's buffer (so it compacts many times mid-scan), with
 * exclusions, an unavailable bitmap and category adjustments, for tiny and
 * all-zero customers too. */
static void check_scan(uint32_t n, uint32_t k, uint64_t seed, int ties) {
  float *Y = malloc((size_t)n * k * sizeof *Y), *x = malloc(k * sizeof *x);
  float *approx = malloc(n * sizeof *approx), *err = malloc(n * sizeof *err);
  unsigned char *in = malloc(n);
  tu_randn(Y, (size_t)n * k, seed, 0.5f);
  if (ties) /* blocks of identical rows: equal scores everywhere */
    for (uint32_t i = 0; i < n; i++)
      memcpy(Y + (size_t)i * k, Y + (size_t)(i / 97) * k, k * sizeof *Y);
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
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
    for (int isa = QSCORE_SCALAR; isa < QSCORE_ISA_COUNT; isa++) {
      if (!qscore_isa_supported((qscore_isa_t)isa))
        continue;
      for (int parts = 1; parts <= 2; parts++) {
        qquery_t qq = {.xq = xq};
        qquery_prepare(&qm, x, &qq);
        qsel_t a, b;
        ck_assert_int_eq(qsel_init(&a, &f, want, slack), 0);
        ck_assert_int_eq(qsel_init(&b, &f, want, slack), 0);
        const uint32_t mid = parts == 1 ? n : (n / 2) & ~7u;
        ck_assert_int_eq(qscan((qscore_isa_t)isa, &qm, 0, mid, &qq, &a, 1), 0);
        ck_assert_int_eq(qscan((qscore_isa_t)isa, &qm, mid, n, &qq, &b, 1), 0);
        ck_assert_int_eq(qsel_merge(&a, &b), 0);
        ck_assert_msg(a.n == expect, "n=%u k=%u trial %d %s parts %d: %zu candidates, want %zu",
                      n, k, trial, qscore_isa_name((qscore_isa_t)isa), parts, a.n, expect);
        for (size_t j = 0; j < a.n; j++) {
          ck_assert_msg(in[a.idx[j]], "item %u is not a candidate", a.idx[j]);
          /* bit-identical to the dense (portable) scores and bounds */
          ck_assert(memcmp(&a.s[j], &approx[a.idx[j]], sizeof(float)) == 0);
          ck_assert(memcmp(&a.err[j], &err[a.idx[j]], sizeof(float)) == 0);
          in[a.idx[j]] = 0; /* each once */
        }
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
  free(Y);
  free(x);
  free(approx);
  free(err);
  free(in);
}

START_TEST(test_scan_candidates_are_exact_set) {
  check_scan(20011, 64, 1, 0);
  check_scan(5003, 100, 2, 0);
  check_scan(3001, 8, 3, 0);
  check_scan(9, 1, 4, 0);
  check_scan(20000, 64, 5, 1);
}
END_TEST

START_TEST(test_scan_batch_equals_single) {
  /* nq customers in one scan: each collector ends as if scanned alone */
  const uint32_t n = 12345, k = 64;
  float *Y = malloc((size_t)n * k * sizeof *Y), X[5 * 64];
  tu_randn(Y, (size_t)n * k, 7, 1.0f);
  tu_randn(X, 5 * k, 8, 1.0f);
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, k, n, k), 0);
  int8_t xq[5][512];
  qquery_t qq[5];
  qsel_t many[5], one;
  for (int isa = QSCORE_SCALAR; isa < QSCORE_ISA_COUNT; isa++) {
    if (!qscore_isa_supported((qscore_isa_t)isa))
      continue;
    for (int r = 0; r < 5; r++) {
      qq[r].xq = xq[r];
      qquery_prepare(&qm, X + r * k, &qq[r]);
      ck_assert_int_eq(qsel_init(&many[r], NULL, 10, 0.0f), 0);
    }
    ck_assert_int_eq(qscan((qscore_isa_t)isa, &qm, 0, n, qq, many, 5), 0);
    for (int r = 0; r < 5; r++) {
      ck_assert_int_eq(qsel_compact(&many[r]), 0);
      ck_assert_int_eq(qsel_init(&one, NULL, 10, many[r].slack), 0);
      ck_assert_int_eq(qscan((qscore_isa_t)isa, &qm, 0, n, &qq[r], &one, 1), 0);
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
    for (int isa = QSCORE_SCALAR; isa < QSCORE_ISA_COUNT; isa++) {
      if (!qscore_isa_supported((qscore_isa_t)isa))
        continue;
      qsel_t got[NQ];
      for (int r = 0; r < NQ; r++)
        ck_assert_int_eq(qsel_init(&got[r], NULL, (size_t)n + 1, 0.0f), 0);
      ck_assert_int_eq(qscan((qscore_isa_t)isa, &qm, lo, hi, qq, got, NQ), 0);
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
                        qscore_isa_name((qscore_isa_t)isa), n, k, kind, lo, hi, r, i,
                        j < a->n ? (double)a->s[j] : 0.0, (double)v);
          if (isa != QSCORE_SCALAR) /* and the portable scan's, bit for bit */
            ck_assert(ref[r].idx[j] == i && memcmp(&ref[r].s[j], &a->s[j], 4) == 0 &&
                      memcmp(&ref[r].err[j], &a->err[j], 4) == 0);
          j++;
        }
        ck_assert_msg(j == a->n, "%s n=%u k=%u kind %d [%u,%u) r %d: %zu items, want %zu",
                      qscore_isa_name((qscore_isa_t)isa), n, k, kind, lo, hi, r, a->n, j);
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
    printf("test_qscore: no AVX-512 VNNI on this CPU: its kernel is not tested here\n");
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
  for (int isa = QSCORE_SCALAR; isa < QSCORE_ISA_COUNT; isa++) {
    if (!qscore_isa_supported((qscore_isa_t)isa))
      continue;
    for (size_t nq = 1; nq <= 2; nq++) {
      qsel_t s[2];
      for (size_t r = 0; r < nq; r++)
        ck_assert_int_eq(qsel_init(&s[r], NULL, n + 1, 0.0f), 0);
      ck_assert_int_eq(qscan((qscore_isa_t)isa, &qm, 0, n, qq, s, nq), 0);
      for (size_t r = 0; r < nq; r++) {
        ck_assert_uint_eq(s[r].n, n);
        for (size_t j = 0; j < n; j++) {
          /* 63 * 63 * 1024 (with the offset: 127 * 63 * 1024 - 64 * 63 * 1024) */
          const uint32_t i = s[r].idx[j];
          const float want =
              (float)((i % 2 ? -1.0 : 1.0) * 63 * 63 * 1024) * (qm.scale[i] * qq[0].sx);
          ck_assert_msg(s[r].s[j] == want, "%s nq %zu item %u: %a want %a",
                        qscore_isa_name((qscore_isa_t)isa), nq, i, (double)s[r].s[j], (double)want);
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
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_bound_holds);
  tcase_add_test(tc, test_zero_query);
  tcase_add_test(tc, test_scan_candidates_are_exact_set);
  tcase_add_test(tc, test_scan_batch_equals_single);
  tcase_add_test(tc, test_kernels_bit_identical);
  tcase_add_test(tc, test_kernels_largest_dots);
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
