/* test_similar.c - SIMILAR on every first pass against the float brute
 * force, bit for bit.
 *
 * The brute force: every other item's exact cosine with the query item,
 * rec_score_exact(y_q, y_i) / |y_i| / |y_q| over the model's stored norms
 * (NaN for a zero row), the filters applied by hand (EXCLUDE, CATEGORY,
 * unavailable, hidden, history, removed categories, bought families), a
 * full sort (cosine descending, then item index), the walk with
 * MAXPERCATEGORY and ONEPERGROUP, then OFFSET and COUNT. Every way of
 * answering must give exactly that, ids and scores: the dense pass
 * (rec_similar, rec_similar_q: sgemv), and the int8 scan of the normalised
 * copy (serve_similar_one, batches of many SIMILARs with the scan split
 * into parts) with the portable, AVX2 and AVX-512 VNNI kernels.
 *
 * The models are built to break a wrong bound: exact duplicates and rows
 * that are exact multiples of each other (ties: the smaller index first),
 * 200 rows within 1e-4 of one direction (cosines far closer together than
 * the int8 copy can tell apart, so its collectors must keep them all), zero
 * rows (similar to nothing), and rows whose norm is outside the range of
 * the proven bound (tiny, subnormal, huge: always re-scored exactly).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"
#include "recd/rng.h"
#include "recd/serve.h"
#include "testutil.h"

/* N is not a multiple of 8 (the int8 copy's last block is partial). */
enum { N = 1001, NC = 5, NG = 40, MAXK = 64 };

/* Failures only: ck_assert reports every passing check to the parent. */
#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

/* The special rows. */
enum { TINY = 7, SUBNORMAL = 8, HUGE_ROW = 9, CLUSTER_LO = 100, CLUSTER_HI = 300 };

static model_t *make_model(const char *dir, uint32_t k, uint64_t seed) {
  static float Y[N * MAXK], pop[N];
  static uint32_t cat[N], grp[N], lens[N], clens[NC], glens[NG];
  static char idbuf[N][8], cbuf[NC][8], gbuf[NG][8];
  static const char *ids[N], *cnames[NC], *gnames[NG];
  tu_randn(Y, (size_t)N * k, seed, 0.4f);
  /* The cluster: one direction plus 1e-4 of noise. */
  for (uint32_t i = CLUSTER_LO + 1; i < CLUSTER_HI; i++)
    for (uint32_t a = 0; a < k; a++)
      Y[(size_t)i * k + a] = Y[(size_t)CLUSTER_LO * k + a] * (1.0f + 0.5f * (float)(i % 3)) +
                             1e-4f * Y[(size_t)i * k + a];
  for (uint32_t i = 1; i < N; i++) {
    float *y = Y + (size_t)i * k;
    const float *prev = y - k;
    if (i % 97 == 5)
      memset(y, 0, k * sizeof *y); /* zero rows */
    else if (i % 50 == 48 && i > CLUSTER_HI)
      for (uint32_t a = 0; a < k; a++)
        y[a] = 4.0f * prev[a]; /* an exact multiple of the row before */
    else if (i % 50 == 49 && i > CLUSTER_HI)
      memcpy(y, prev, k * sizeof *y); /* an exact duplicate */
  }
  for (uint32_t a = 0; a < k; a++) {
    Y[(size_t)TINY * k + a] *= 1e-25f;
    Y[(size_t)SUBNORMAL * k + a] *= 1e-41f;
    Y[(size_t)HUGE_ROW * k + a] *= 1e19f;
  }
  rng_t r;
  rng_seed(&r, seed + 1);
  for (uint32_t i = 0; i < N; i++) {
    pop[i] = (float)rng_below(&r, 40);
    cat[i] = (uint32_t)rng_below(&r, NC + 1); /* 0: uncategorised */
    grp[i] = rng_below(&r, 3) == 0 ? 0 : 1 + (uint32_t)rng_below(&r, NG);
    lens[i] = (uint32_t)snprintf(idbuf[i], sizeof idbuf[i], "i%u", i);
    ids[i] = idbuf[i];
  }
  for (int c = 0; c < NC; c++) {
    clens[c] = (uint32_t)snprintf(cbuf[c], sizeof cbuf[c], "c%d", c + 1);
    cnames[c] = cbuf[c];
  }
  for (int g = 0; g < NG; g++) {
    glens[g] = (uint32_t)snprintf(gbuf[g], sizeof gbuf[g], "g%d", g + 1);
    gnames[g] = gbuf[g];
  }
  model_spec_t spec = {.n_items = N,
                       .params = {.factors = k, .iterations = 1, .conf_mode = PARAMS_CONF_LOG,
                                  .cg_steps = 3, .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f,
                                  .reg_exponent = 0.5f},
                       .meta = {.score_scale = 0.7f},
                       .Y = Y, .ldy = k, .popularity = pop, .item_ids = ids,
                       .item_id_lens = lens, .item_category = cat, .n_categories = NC,
                       .category_names = cnames, .category_name_lens = clens,
                       .item_group = grp, .n_groups = NG, .group_names = gnames,
                       .group_name_lens = glens};
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&spec, tu_path(dir, "m.bin"), err) == 0, "%s", err);
  model_t *m;
  ck_assert_msg(model_load(&m, tu_path(dir, "m.bin"), err) == 0, "%s", err);
  return m;
}

/* ---- the brute force ------------------------------------------------- */

typedef struct tq {
  uint32_t item;
  uint32_t hist[12], excl[8], cats[2], pcat[2], hidden[6];
  float hw[12], pval[2];
  uint64_t unav[(N + 63) / 64], promo[(N + 63) / 64];
  rec_query_t q;
} tq_t;

static int tq_has(const uint32_t *v, size_t n, uint32_t i) {
  for (size_t j = 0; j < n; j++)
    if (v[j] == i)
      return 1;
  return 0;
}

/* A random SIMILAR: the item (now and then a special one), and every
 * option the daemon passes (with FOR: the customer's filters) or that
 * rec_similar_q must ignore (promote, reasons, preference values). */
static void tq_random(tq_t *t, rng_t *r) {
  memset(t, 0, sizeof *t);
  static const uint32_t special[] = {5, TINY, SUBNORMAL, HUGE_ROW, CLUSTER_LO, 150, 347, 348,
                                     349, N - 1};
  t->item = rng_below(r, 4) == 0 ? special[rng_below(r, 10)] : (uint32_t)rng_below(r, N);
  const int user = rng_below(r, 2) == 0;
  const size_t nh = user ? rng_below(r, 12) : 0;
  for (size_t j = 0; j < nh; j++) {
    t->hist[j] = rng_below(r, 3) == 0 ? CLUSTER_LO + (uint32_t)rng_below(r, 200)
                                      : (uint32_t)rng_below(r, N);
    t->hw[j] = 1.0f;
  }
  const size_t ne = rng_below(r, 9), nc = rng_below(r, 4) == 0 ? 1 + rng_below(r, 2) : 0;
  for (size_t j = 0; j < ne; j++)
    t->excl[j] = rng_below(r, 2) ? CLUSTER_LO + (uint32_t)rng_below(r, 200)
                                 : (uint32_t)rng_below(r, N);
  for (size_t j = 0; j < nc; j++)
    t->cats[j] = 1 + (uint32_t)rng_below(r, NC + 1); /* NC + 1: unknown, matches nothing */
  const size_t np = user && rng_below(r, 2) ? 2 : 0;
  t->pcat[0] = 1 + (uint32_t)rng_below(r, NC);
  t->pval[0] = rng_below(r, 2) ? -1.0f : 0.8f;
  t->pcat[1] = 1 + (uint32_t)rng_below(r, NC);
  t->pval[1] = -0.5f;
  const size_t nhid = user ? rng_below(r, 6) : 0;
  for (size_t j = 0; j < nhid; j++)
    t->hidden[j] = CLUSTER_LO + (uint32_t)rng_below(r, 200);
  const int unav = rng_below(r, 3) == 0;
  for (int j = 0; unav && j < 60; j++) {
    const uint32_t i = rng_below(r, 2) ? CLUSTER_LO + (uint32_t)rng_below(r, 200)
                                       : (uint32_t)rng_below(r, N);
    t->unav[i / 64] |= 1ull << (i % 64);
  }
  for (int j = 0; j < 30; j++) {
    const uint32_t i = (uint32_t)rng_below(r, N);
    t->promo[i / 64] |= 1ull << (i % 64);
  }
  const int deep = rng_below(r, 10) == 0;
  t->q = (rec_query_t){.hist = t->hist, .hist_w = t->hw, .n_hist = nh, .history_limit = 5,
                       .personalize = 1, .exclude_history = user && rng_below(r, 3) != 0,
                       .exclude = t->excl, .n_exclude = ne, .categories = t->cats,
                       .n_categories = nc, .category_filter = nc > 0, .pref_cat = t->pcat,
                       .pref_val = t->pval, .n_pref = np,
                       .unavailable = unav ? t->unav : NULL,
                       .offset = rng_below(r, 6), .count = deep ? 300 : rng_below(r, 41),
                       .with_reasons = rng_below(r, 4) == 0, .hidden = t->hidden,
                       .n_hidden = nhid,
                       .max_per_category = rng_below(r, 3) == 0 ? 1 + rng_below(r, 3) : 0,
                       .one_per_group = rng_below(r, 6) == 0,
                       .exclude_bought_groups = user && rng_below(r, 2),
                       .promoted = t->promo, .promote = rng_below(r, 3)};
}

typedef struct bf {
  float s;
  uint32_t i;
} bf_t;

static int bf_cmp(const void *a, const void *b) {
  const bf_t *x = a, *y = b;
  if (x->s != y->s)
    return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* The exact cosine, as defined (recommend.h, rec_similar_exact). */
static float exact_cos(const model_t *m, uint32_t q, uint32_t i) {
  const float *Y = model_item_factors(m), *nr = model_item_norms(m);
  const uint32_t s = model_stride(m), k = model_factors(m);
  if (!(nr[i] > 0.0f) || !(nr[q] > 0.0f))
    return NAN;
  return rec_score_exact(Y + (size_t)q * s, Y + (size_t)i * s, k) / nr[i] / nr[q];
}

/* The expected answer into e; returns its length. */
static size_t brute(const model_t *m, const tq_t *t, bf_t *e) {
  static bf_t all[N];
  const rec_query_t *q = &t->q;
  const uint32_t *cat = model_item_categories(m), *grp = model_item_groups(m);
  int removed[NC + 2] = {0}, bought[NG + 1] = {0};
  for (size_t j = 0; j < q->n_pref; j++)
    if (q->pref_val[j] <= -1.0f)
      removed[q->pref_cat[j]] = 1;
  for (size_t j = 0; q->exclude_bought_groups && j < q->n_hist; j++)
    bought[grp[q->hist[j]]] = grp[q->hist[j]] != 0;
  size_t na = 0;
  for (uint32_t i = 0; i < N; i++) {
    const float s = exact_cos(m, t->item, i);
    if (i == t->item || isnan(s) || tq_has(q->exclude, q->n_exclude, i) ||
        (q->unavailable && (q->unavailable[i / 64] >> (i % 64)) & 1) ||
        tq_has(q->hidden, q->n_hidden, i) ||
        (q->exclude_history && tq_has(q->hist, q->n_hist, i)) ||
        (q->category_filter && (cat[i] == 0 || !tq_has(q->categories, q->n_categories, cat[i]))) ||
        removed[cat[i]] || bought[grp[i]])
      continue;
    all[na++] = (bf_t){s, i};
  }
  qsort(all, na, sizeof *all, bf_cmp);
  /* the walk: caps per category (0 uncapped), one item per family (0 free) */
  size_t count[NC + 1] = {0}, n = 0, placed = 0;
  int used[NG + 1] = {0};
  for (size_t j = 0; j < na && placed < q->offset + q->count; j++) {
    const uint32_t i = all[j].i;
    if (q->max_per_category > 0 && cat[i] != 0 && count[cat[i]] >= q->max_per_category)
      continue;
    if (q->one_per_group && grp[i] != 0 && used[grp[i]])
      continue;
    count[cat[i]]++;
    used[grp[i]] = 1;
    if (placed++ >= q->offset)
      e[n++] = all[j];
  }
  return n;
}

static void expect_same(const uint32_t *items, const float *scores, size_t n, const bf_t *e,
                        size_t ne, const char *what, int t) {
  EXPECT(n == ne, "%s, query %d: %zu items, expected %zu", what, t, n, ne);
  for (size_t j = 0; j < n; j++) {
    EXPECT(items[j] == e[j].i, "%s, query %d, position %zu: item %u, expected %u (%.9g vs %.9g)",
           what, t, j, items[j], e[j].i, (double)scores[j], (double)e[j].s);
    EXPECT(memcmp(&scores[j], &e[j].s, sizeof(float)) == 0,
           "%s, query %d, position %zu: score %.9g, expected %.9g", what, t, j, (double)scores[j],
           (double)e[j].s);
  }
}

static const uint32_t KS[] = {1, 7, 24, 64};

/* ---- the int8 copy's bound -------------------------------------------- */

/* The bound itself, item by item: for a regular query, every regular row's
 * approximate score (the scan's: qscore_items on the normalised copy) is
 * within its per-item bound plus rec_similar_slack of the exact cosine;
 * zero rows score NaN and irregular rows carry an infinite bound. */
START_TEST(test_cosine_copy_bound) {
  char *dir = tu_mkdtemp();
  for (size_t ki = 0; ki < sizeof KS / sizeof KS[0]; ki++) {
    const uint32_t k = KS[ki];
    model_t *m = make_model(dir, k, 40 + ki);
    const float *Y = model_item_factors(m), *nr = model_item_norms(m);
    const uint32_t s = model_stride(m);
    qmat_t qm;
    ck_assert_int_eq(qmat_build_cosine(&qm, Y, s, N, k, nr, REC_SIMILAR_NORM_MIN,
                                       REC_SIMILAR_NORM_MAX), 0);
    ck_assert(isnan(qm.scale[5]));
    ck_assert(isinf(qm.resid[TINY]) && isinf(qm.resid[SUBNORMAL]) && isinf(qm.resid[HUGE_ROW]));
    int8_t *xq = aligned_alloc(64, qquery_bytes(&qm));
    int8_t *scratch = aligned_alloc(64, qquery_bytes(&qm));
    float *approx = malloc(N * sizeof *approx), *z = malloc(k * sizeof *z);
    const float slack = rec_similar_slack(k);
    double worst = 0;
    for (uint32_t q = 0; q < N; q += 3) {
      if (!(nr[q] > 0.0f) || !rec_similar_regular(nr[q]))
        continue;
      for (uint32_t a = 0; a < k; a++)
        z[a] = Y[(size_t)q * s + a] / nr[q];
      qquery_t qq = {.xq = xq};
      qquery_prepare(&qm, z, &qq);
      qscore_items(&qm, z, approx, scratch);
      for (uint32_t i = 0; i < N; i++) {
        const float c = exact_cos(m, q, i);
        if (isnan(c)) {
          EXPECT(isnan(approx[i]), "k %u, query %u: zero row %u scored %g", k, q, i,
                 (double)approx[i]);
          continue;
        }
        const float e = qquery_item_bound(&qq, qm.resid[i], qm.norm[i]);
        if (!rec_similar_regular(nr[i])) {
          EXPECT(isinf(e), "k %u: irregular row %u has a finite bound", k, i);
          continue;
        }
        const double err = fabs((double)approx[i] - c);
        EXPECT(err <= (double)e + slack, "k %u, query %u, item %u: |%.9g - %.9g| > %g + %g", k,
               q, i, (double)approx[i], (double)c, (double)e, (double)slack);
        if (err / ((double)e + slack) > worst)
          worst = err / ((double)e + slack);
      }
    }
    ck_assert(worst > 0.0); /* the bound was exercised, not vacuous */
    free(z);
    free(approx);
    free(scratch);
    free(xq);
    qmat_free(&qm);
    model_free(m);
  }
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* ---- one SIMILAR at a time, every way ------------------------------------ */

START_TEST(test_similar_every_way) {
  char *dir = tu_mkdtemp();
  static bf_t e[N];
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (size_t ki = 0; ki < sizeof KS / sizeof KS[0]; ki++) {
    const uint32_t k = KS[ki];
    model_t *m = make_model(dir, k, 7 + ki);
    serve_model_t sm[TU_SERVE_WAYS];
    int have[TU_SERVE_WAYS];
    for (int w = 0; w < TU_SERVE_WAYS; w++)
      have[w] = tu_serve_way(&sm[w], m, w);
    rng_t r;
    rng_seed(&r, 99 + ki);
    const int T = k == 1 ? 60 : 160;
    for (int t = 0; t < T; t++) {
      tq_t tq;
      tq_random(&tq, &r);
      const size_t ne = brute(m, &tq, e);
      /* The dense pass directly. */
      rec_result_t res;
      ck_assert_int_eq(rec_similar_q(m, tq.item, &tq.q, &ws, &res), 0);
      expect_same(res.items, res.scores, res.n, e, ne, "rec_similar_q", t);
      ck_assert_ptr_null(res.reasons);
      ck_assert_ptr_null(res.promoted);
      for (int w = 0; w < TU_SERVE_WAYS; w++) {
        if (!have[w])
          continue;
        serve_answer_t a;
        ck_assert_int_eq(serve_similar_one(&sm[w], tq.item, &tq.q, &ws, &a), 0);
        char what[64];
        snprintf(what, sizeof what, "k %u, %s", k, tu_serve_way_name(w));
        expect_same(a.items, a.scores, a.n, e, ne, what, t);
        ck_assert_ptr_null(a.reasons);
        serve_answer_free(&a);
      }
    }
    /* rec_similar: only count and the unavailable items. */
    for (int t = 0; t < 30; t++) {
      tq_t tq;
      tq_random(&tq, &r);
      const rec_query_t keep = tq.q;
      tq.q = (rec_query_t){.count = keep.count, .unavailable = keep.unavailable};
      const size_t ne = brute(m, &tq, e);
      rec_result_t res;
      ck_assert_int_eq(rec_similar(m, tq.item, tq.q.count, tq.q.unavailable, &ws, &res), 0);
      expect_same(res.items, res.scores, res.n, e, ne, "rec_similar", t);
    }
    for (int w = 0; w < TU_SERVE_WAYS; w++)
      if (have[w])
        serve_model_free(&sm[w]);
    model_free(m);
  }
  rec_ws_free(&ws);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* Ties: at k = 1 every cosine is +1 or -1, and the rows that are exact
 * duplicates or multiples tie exactly: the whole ranking is decided by the
 * item index. The answers list the tied items in index order, every way. */
START_TEST(test_similar_ties) {
  char *dir = tu_mkdtemp();
  static bf_t e[N];
  rec_ws_t ws;
  rec_ws_init(&ws);
  model_t *m = make_model(dir, 24, 3);
  serve_model_t sm;
  for (int w = 0; w < TU_SERVE_WAYS; w++) {
    if (!tu_serve_way(&sm, m, w))
      continue;
    /* 398 is 4 x 397 and 399 a copy of 398: querying 397 gives 398 and
     * 399 at exactly the same cosine (scaling by 4 is exact), 398 first. */
    tq_t tq;
    memset(&tq, 0, sizeof tq);
    tq.item = 397;
    tq.q.count = 5;
    serve_answer_t a;
    ck_assert_int_eq(serve_similar_one(&sm, tq.item, &tq.q, &ws, &a), 0);
    ck_assert_uint_ge(a.n, 2);
    ck_assert_uint_eq(a.items[0], 398);
    ck_assert_uint_eq(a.items[1], 399);
    ck_assert(a.scores[0] == a.scores[1]);
    const size_t ne = brute(m, &tq, e);
    expect_same(a.items, a.scores, a.n, e, ne, tu_serve_way_name(w), 0);
    serve_answer_free(&a);
    serve_model_free(&sm);
  }
  model_free(m);
  rec_ws_free(&ws);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* ---- batches ------------------------------------------------------------- */

/* Many SIMILARs in one batch, the scan split into parts over ranges in a
 * shuffled order, the phases' calls in scrambled orders: every answer is
 * the brute force's, whatever the batch, the split and the kernel. */
START_TEST(test_similar_batches) {
  char *dir = tu_mkdtemp();
  enum { B = 37 };
  static bf_t e[B][N];
  static size_t ne[B];
  static tq_t tq[B];
  const rec_query_t *qp[B];
  uint32_t items[B];
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (size_t ki = 1; ki < sizeof KS / sizeof KS[0]; ki++) {
    const uint32_t k = KS[ki];
    model_t *m = make_model(dir, k, 70 + ki);
    rng_t r;
    rng_seed(&r, 5 + ki);
    for (int w = 1; w < TU_SERVE_WAYS; w++) {
      serve_model_t sm;
      if (!tu_serve_way(&sm, m, w))
        continue;
      for (int round = 0; round < 4; round++) {
        const size_t n = 1 + rng_below(&r, B);
        for (size_t j = 0; j < n; j++) {
          tq_random(&tq[j], &r);
          qp[j] = &tq[j].q;
          items[j] = tq[j].item;
          ne[j] = brute(m, &tq[j], e[j]);
        }
        const unsigned parts = 1 + (unsigned)rng_below(&r, 3);
        serve_batch_t *b;
        ck_assert_int_eq(serve_batch_new_similar(&sm, qp, items, n, parts, &b), 0);
        for (size_t j = n; j-- > 0;) /* phase 1 in reverse */
          serve_batch_fold(b, j, &ws);
        ck_assert_int_eq(serve_batch_rows(b), 0);
        /* ranges of 8 to 200 items, dealt to the parts at random */
        uint32_t lo = 0;
        while (lo < N) {
          uint32_t len = 8 * (1 + (uint32_t)rng_below(&r, 25));
          const uint32_t hi = N - lo > len ? lo + len : N;
          ck_assert_int_eq(serve_batch_scan(b, (unsigned)rng_below(&r, parts), lo, hi), 0);
          lo = hi;
        }
        for (size_t row = 0; row < serve_batch_n_rows(b); row++)
          serve_batch_finish(b, row, &ws);
        for (size_t j = 0; j < n; j++) {
          const serve_answer_t *a = serve_batch_answer(b, j);
          char what[80];
          snprintf(what, sizeof what, "k %u, %s, batch of %zu in %u parts, #%zu", k,
                   tu_serve_way_name(w), n, parts, j);
          EXPECT(a->rc == 0, "%s: rc %d", what, a->rc);
          expect_same(a->items, a->scores, a->n, e[j], ne[j], what, round);
        }
        serve_batch_free(b);
      }
      serve_model_free(&sm);
    }
    model_free(m);
  }
  rec_ws_free(&ws);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* The batch's own rules: the float pass has no SIMILAR batches; an item
 * out of range, COUNT 0 and a zero row answer nothing, with no scan. */
START_TEST(test_similar_batch_rules) {
  char *dir = tu_mkdtemp();
  model_t *m = make_model(dir, 12, 1);
  serve_model_t sm;
  ck_assert(tu_serve_way(&sm, m, 0));
  const rec_query_t q = {.count = 5};
  const rec_query_t *qp[1] = {&q};
  const uint32_t it[1] = {3};
  serve_batch_t *b;
  ck_assert_int_eq(serve_batch_new_similar(&sm, qp, it, 1, 1, &b), RECD_EINVAL);
  ck_assert_ptr_null(b);
  serve_model_free(&sm);
  ck_assert(tu_serve_way(&sm, m, 1));
  ck_assert_int_eq(serve_batch_new_similar(&sm, qp, NULL, 1, 1, &b), RECD_EINVAL);
  const rec_query_t none = {.count = 0};
  const rec_query_t *q3[3] = {&q, &none, &q};
  const uint32_t i3[3] = {N + 5, 3, 5}; /* unknown, nothing asked, zero row */
  ck_assert_int_eq(serve_batch_new_similar(&sm, q3, i3, 3, 2, &b), 0);
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (size_t j = 0; j < 3; j++)
    serve_batch_fold(b, j, &ws);
  ck_assert_int_eq(serve_batch_rows(b), 0);
  ck_assert_uint_eq(serve_batch_n_rows(b), 0);
  for (size_t j = 0; j < 3; j++) {
    ck_assert_int_eq(serve_batch_answer(b, j)->rc, 0);
    ck_assert_uint_eq(serve_batch_answer(b, j)->n, 0);
  }
  serve_batch_free(b);
  rec_ws_free(&ws);
  serve_model_free(&sm);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

static Suite *similar_suite(void) {
  Suite *s = suite_create("similar");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_cosine_copy_bound);
  tcase_add_test(tc, test_similar_every_way);
  tcase_add_test(tc, test_similar_ties);
  tcase_add_test(tc, test_similar_batches);
  tcase_add_test(tc, test_similar_batch_rules);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(similar_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
