/* test_rules.c - the storefront rules of issue 14 (recommend.h: hidden
 * items, MAXPERCATEGORY, ONEPERGROUP, bought families, promoted slots,
 * SIMILAR with filters, RANK with hidden items) against brute force: the
 * whole catalogue scored in double precision (rounded to float once, as
 * the served scores are), filtered, sorted, and the walk of recommend.h
 * applied by hand in the most obvious way (each position scans the ranking
 * from its start). Every first pass (float, int8 portable, int8 AVX2) must
 * give the brute force's list item for item, with its promoted flags.
 *
 * The model makes the rules bite: items come in product families of 1-4
 * near-identical rows (same category), categories pull their items'
 * vectors together (so a customer's top is dominated by a few
 * categories), some rows are exact copies (ties), popularity has ties. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/recommend.h"
#include "recd/rng.h"
#include "recd/serve.h"
#include "testutil.h"

/* N is not a multiple of 8 (the int8 copy's last block is partial). */
enum { N = 4099, K = 12, NC = 6, MAXG = N };

static uint32_t g_n_groups;

static model_t *make_model(char **dir_out) {
  char *dir = tu_mkdtemp();
  static float Y[N * K], pop[N], mu[(NC + 1) * K], base[K];
  static uint32_t cat[N], grp[N], lens[N], clens[NC], glens[MAXG];
  static char idbuf[N][8], cbuf[NC][8], gbuf[MAXG][8];
  static const char *ids[N], *cnames[NC], *gnames[MAXG];
  rng_t r;
  rng_seed(&r, 1401);
  tu_randn(mu, (NC + 1) * K, 1402, 0.45f);
  memset(mu, 0, K * sizeof *mu); /* uncategorised items: no pull */
  uint32_t ng = 0;
  for (uint32_t i = 0; i < N;) {
    uint32_t size = 1 + (uint32_t)rng_below(&r, 4), c = (uint32_t)rng_below(&r, NC + 1);
    if (size > N - i)
      size = N - i;
    for (int a = 0; a < K; a++)
      base[a] = mu[c * K + a] + (float)(0.35 * rng_normal(&r));
    const uint32_t g = size > 1 ? ++ng : 0;
    for (uint32_t j = 0; j < size; j++, i++) {
      for (int a = 0; a < K; a++)
        Y[(size_t)i * K + a] = base[a] + (float)(0.04 * rng_normal(&r));
      cat[i] = c;
      grp[i] = g;
    }
  }
  for (uint32_t i = 96; i < N; i += 97) /* exact ties */
    memcpy(Y + (size_t)i * K, Y + (size_t)(i - 1) * K, K * sizeof *Y);
  for (uint32_t i = 0; i < N; i++) {
    pop[i] = (float)rng_below(&r, 50);
    lens[i] = (uint32_t)snprintf(idbuf[i], sizeof idbuf[i], "i%u", i);
    ids[i] = idbuf[i];
  }
  for (int c = 0; c < NC; c++) {
    clens[c] = (uint32_t)snprintf(cbuf[c], sizeof cbuf[c], "c%d", c + 1);
    cnames[c] = cbuf[c];
  }
  for (uint32_t g = 0; g < ng; g++) {
    glens[g] = (uint32_t)snprintf(gbuf[g], sizeof gbuf[g], "g%u", g + 1);
    gnames[g] = gbuf[g];
  }
  g_n_groups = ng;
  model_spec_t spec = {.n_items = N,
                       .params = {.factors = K, .iterations = 1, .conf_mode = PARAMS_CONF_LOG,
                                  .cg_steps = 3, .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f,
                                  .reg_exponent = 0.5f},
                       .meta = {.score_scale = 0.6f},
                       .Y = Y, .ldy = K, .popularity = pop, .item_ids = ids,
                       .item_id_lens = lens, .item_category = cat, .n_categories = NC,
                       .category_names = cnames, .category_name_lens = clens,
                       .item_group = grp, .n_groups = ng, .group_names = gnames,
                       .group_name_lens = glens};
  char err[RECD_ERRLEN];
  ck_assert_int_eq(model_write(&spec, tu_path(dir, "m.bin"), err), 0);
  model_t *m;
  ck_assert_msg(model_load(&m, tu_path(dir, "m.bin"), err) == 0, "%s", err);
  ck_assert_uint_eq(model_n_groups(m), ng);
  *dir_out = dir;
  return m;
}

/* ---- the brute force ---------------------------------------------------- */

typedef struct bf {
  float s;
  uint32_t i;
} bf_t;

static int cmp_bf(const void *a, const void *b) {
  const bf_t *x = a, *y = b;
  if (x->s != y->s)
    return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

static int in_list(const uint32_t *v, size_t n, uint32_t i) {
  for (size_t j = 0; j < n; j++)
    if (v[j] == i)
      return 1;
  return 0;
}

static int bit(const uint64_t *b, uint32_t i) {
  return b != NULL && (b[i / 64] >> (i % 64) & 1);
}

/* The category adjustments, as recommend.h defines them (float). */
static void adjustments(const rec_query_t *q, float scale, float *adj, int *removed) {
  for (uint32_t c = 0; c <= NC; c++) {
    adj[c] = 0.0f;
    /* CATEGORY 0 (unknown names) matches nothing, not uncategorised items */
    removed[c] = q->category_filter && (c == 0 || !in_list(q->categories, q->n_categories, c));
  }
  for (size_t j = 0; j < q->n_pref; j++) {
    const uint32_t c = q->pref_cat[j];
    if (c < 1 || c > NC || removed[c])
      continue;
    if (q->pref_val[j] <= -1.0f)
      removed[c] = 1;
    else
      adj[c] += q->pref_val[j] * scale;
  }
}

/* The filtered ranking R of q for scores sc (NaN = never), into r. */
static size_t filtered(const model_t *m, const rec_query_t *q, const double *sc, float scale,
                       bf_t *r) {
  const uint32_t *cat = model_item_categories(m), *grp = model_item_groups(m);
  float adj[NC + 1];
  int removed[NC + 1];
  adjustments(q, scale, adj, removed);
  size_t n = 0;
  for (uint32_t i = 0; i < N; i++) {
    if (isnan(sc[i]) || removed[cat[i]] || bit(q->unavailable, i) ||
        in_list(q->exclude, q->n_exclude, i) || in_list(q->hidden, q->n_hidden, i) ||
        (q->exclude_history && in_list(q->hist, q->n_hist, i)))
      continue;
    if (q->exclude_bought_groups && grp[i] != 0) {
      int bought = 0;
      for (size_t j = 0; j < q->n_hist; j++)
        bought |= grp[q->hist[j]] == grp[i];
      if (bought)
        continue;
    }
    r[n++] = (bf_t){(float)sc[i] + adj[cat[i]], i};
  }
  qsort(r, n, sizeof *r, cmp_bf);
  return n;
}

/* The walk of recommend.h, the obvious way: each position scans R from
 * its start for the first item not taken whose category and family are
 * not full (for a promoted slot: the first promoted one, else any). */
static size_t walk(const model_t *m, const rec_query_t *q, const bf_t *r, size_t nr, int promote,
                   bf_t *out, uint8_t *promo) {
  const uint32_t *cat = model_item_categories(m), *grp = model_item_groups(m);
  const size_t want = q->offset + q->count;
  static uint8_t taken[N];
  static size_t in_cat[NC + 1], in_grp[MAXG + 1];
  memset(taken, 0, sizeof taken);
  memset(in_cat, 0, sizeof in_cat);
  memset(in_grp, 0, sizeof in_grp);
  size_t len = 0;
  for (size_t pos = 1; len < want; pos++) {
    const int slot = promote && q->promoted != NULL && pos % 2 == 0 && pos / 2 <= q->promote;
    size_t pick = nr;
    for (int pass = slot ? 0 : 1; pass < 2 && pick == nr; pass++)
      for (size_t j = 0; j < nr && pick == nr; j++) {
        const uint32_t i = r[j].i;
        if (taken[i] || (pass == 0 && !bit(q->promoted, i)))
          continue;
        if (q->max_per_category && cat[i] != 0 && in_cat[cat[i]] >= q->max_per_category)
          continue;
        if (q->one_per_group && grp[i] != 0 && in_grp[grp[i]] > 0)
          continue;
        pick = j;
        promo[len] = pass == 0;
      }
    if (pick == nr)
      break;
    const uint32_t i = r[pick].i;
    taken[i] = 1;
    in_cat[cat[i]]++;
    in_grp[grp[i]]++;
    out[len++] = r[pick];
  }
  return len;
}

/* Scores of every item for customer x (NULL: popularity), in double,
 * rounded to float once. */
static void all_scores(const model_t *m, const float *x, double *sc) {
  const float *Y = model_item_factors(m);
  const uint32_t stride = model_stride(m);
  for (uint32_t i = 0; i < N; i++) {
    if (x == NULL) {
      sc[i] = model_popularity(m)[i];
      continue;
    }
    double s = 0;
    for (int a = 0; a < K; a++)
      s += (double)x[a] * Y[(size_t)i * stride + a];
    sc[i] = (float)s;
  }
}

/* The expected answer of q; returns its length. */
static size_t expected(const model_t *m, const serve_model_t *sm, const rec_query_t *q,
                       bf_t *out, uint8_t *promo, int *personalized) {
  static float x[64];
  static double sc[N];
  static bf_t r[N], l[N];
  static uint8_t lp[N];
  rec_ws_t ws;
  rec_ws_init(&ws);
  size_t used;
  ck_assert_int_eq(rec_prepare(m, q, &ws, x, personalized, &used), 0);
  rec_ws_free(&ws);
  all_scores(m, *personalized ? x : NULL, sc);
  const float scale = *personalized ? model_meta(m)->score_scale : sm->pop_scale;
  const size_t nr = filtered(m, q, sc, scale, r);
  const size_t nl = walk(m, q, r, nr, 1, l, lp);
  size_t n = 0;
  for (size_t j = q->offset; j < nl && n < q->count; j++, n++) {
    out[n] = l[j];
    promo[n] = lp[j];
  }
  return n;
}

static void check_answer(const serve_answer_t *a, const bf_t *e, const uint8_t *ep, size_t n,
                         int pers, const rec_query_t *q, const char *ctx) {
  ck_assert_msg(a->rc == 0, "%s: rc %d", ctx, a->rc);
  ck_assert_msg(a->personalized == pers, "%s: personalized %d", ctx, a->personalized);
  ck_assert_msg(a->n == n, "%s: %zu items, expected %zu", ctx, a->n, n);
  const int promo = q->promote > 0 && q->promoted != NULL;
  /* flags with promoted slots (an empty answer may have none) */
  ck_assert_msg(promo ? a->promoted != NULL || n == 0 : a->promoted == NULL,
                "%s: promoted flags", ctx);
  for (size_t j = 0; j < n; j++) {
    ck_assert_msg(a->items[j] == e[j].i, "%s: pos %zu: item %u, expected %u (%.9g vs %.9g)",
                  ctx, j, a->items[j], e[j].i, (double)a->scores[j], (double)e[j].s);
    ck_assert_msg(a->scores[j] == e[j].s, "%s: pos %zu: score %.9g, expected %.9g", ctx, j,
                  (double)a->scores[j], (double)e[j].s);
    if (promo)
      ck_assert_msg(a->promoted[j] == ep[j], "%s: pos %zu: promoted %d, expected %d", ctx, j,
                    a->promoted[j], ep[j]);
  }
}

/* ---- random queries ----------------------------------------------------- */

typedef struct tq {
  uint32_t hist[24], excl[8], hidden[12], cats[3], pcat[3];
  float hist_w[24], pval[3];
  uint64_t unavail[(N + 63) / 64], promoted[(N + 63) / 64];
  rec_query_t q;
} tq_t;

static void tq_random(tq_t *t, rng_t *r, const model_t *m) {
  memset(t, 0, sizeof *t);
  rec_query_t *q = &t->q;
  q->n_hist = rng_below(r, 8) == 0 ? 0 : 1 + rng_below(r, 20);
  for (size_t j = 0; j < q->n_hist; j++) {
    t->hist[j] = (uint32_t)rng_below(r, N);
    t->hist_w[j] = 1.0f + (float)rng_below(r, 4);
  }
  if (q->n_hist > 2 && rng_below(r, 3) == 0)
    t->hist[q->n_hist - 1] = t->hist[0]; /* a HISTORY item also in the stored history */
  q->hist = t->hist;
  q->hist_w = t->hist_w;
  q->history_limit = 16;
  q->personalize = rng_below(r, 6) != 0;
  q->exclude_history = rng_below(r, 5) != 0;
  q->n_exclude = rng_below(r, 9);
  for (size_t j = 0; j < q->n_exclude; j++)
    t->excl[j] = (uint32_t)rng_below(r, N);
  q->exclude = t->excl;
  q->n_hidden = rng_below(r, 13);
  for (size_t j = 0; j < q->n_hidden; j++) /* some hidden items among the history's family */
    t->hidden[j] = q->n_hist && rng_below(r, 2) ? (t->hist[rng_below(r, q->n_hist)] + 1) % N
                                                : (uint32_t)rng_below(r, N);
  if (q->n_hidden > 1)
    t->hidden[1] = t->hidden[0]; /* duplicates allowed */
  q->hidden = t->hidden;
  if (rng_below(r, 4) == 0) {
    q->category_filter = 1;
    q->n_categories = 1 + rng_below(r, 3);
    for (size_t j = 0; j < q->n_categories; j++)
      t->cats[j] = (uint32_t)rng_below(r, NC + 1); /* 0: matches nothing ... */
    q->categories = t->cats;
  }
  if (rng_below(r, 3) == 0) {
    q->n_pref = 1 + rng_below(r, 3);
    for (size_t j = 0; j < q->n_pref; j++) {
      t->pcat[j] = 1 + (uint32_t)rng_below(r, NC);
      t->pval[j] = rng_below(r, 4) == 0 ? -1.0f : (float)(rng_uniform(r) * 1.6 - 0.8);
    }
    q->pref_cat = t->pcat;
    q->pref_val = t->pval;
  }
  if (rng_below(r, 3) == 0) {
    for (uint32_t i = 0; i < N; i++)
      if (rng_below(r, 10) == 0)
        t->unavail[i / 64] |= (uint64_t)1 << (i % 64);
    q->unavailable = t->unavail;
  }
  q->max_per_category = rng_below(r, 3) == 0 ? 0 : 1 + rng_below(r, 3);
  q->one_per_group = rng_below(r, 2);
  q->exclude_bought_groups = rng_below(r, 2);
  if (rng_below(r, 3) != 0) {
    /* promoted: a sparse random set, so that the promoted slots differ
     * from the organic ranking */
    const uint64_t per = 1 + rng_below(r, 60);
    /* sometimes a whole category too: under a cap most of it is skipped,
     * so the walk reads far down the promoted items */
    const uint32_t whole = rng_below(r, 3) == 0 ? 1 + (uint32_t)rng_below(r, NC) : NC + 1;
    const uint32_t *cat = model_item_categories(m);
    for (uint32_t i = 0; i < N; i++)
      if (rng_below(r, 1000) < per || cat[i] == whole)
        t->promoted[i / 64] |= (uint64_t)1 << (i % 64);
    q->promoted = t->promoted;
    q->promote = rng_below(r, 5);
  }
  q->offset = rng_below(r, 3) == 0 ? rng_below(r, 25) : 0;
  q->count = 1 + rng_below(r, 14);
  q->with_reasons = rng_below(r, 4) == 0;
}

/* ---- tests -------------------------------------------------------------- */

static char *g_dir;
static model_t *g_m;

static void setup(void) {
  g_m = make_model(&g_dir);
}

static void teardown(void) {
  model_free(g_m);
  tu_rmtree(g_dir);
  free(g_dir);
}

/* Every way, serve_one: random queries with every rule mixed. */
START_TEST(test_rules_match_brute_force) {
  static bf_t e[N];
  static uint8_t ep[N];
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, g_m, way))
      continue;
    rng_t r;
    rng_seed(&r, 77);
    for (int t = 0; t < 400; t++) {
      tq_t tq;
      tq_random(&tq, &r, g_m);
      int pers;
      const size_t n = expected(g_m, &sm, &tq.q, e, ep, &pers);
      serve_answer_t a;
      serve_one(&sm, &tq.q, &ws, &a);
      char ctx[96];
      snprintf(ctx, sizeof ctx, "%s query %d (cap %zu opg %d ebg %d promote %zu off %zu)",
               tu_serve_way_name(way), t, tq.q.max_per_category, tq.q.one_per_group,
               tq.q.exclude_bought_groups, tq.q.promote, tq.q.offset);
      check_answer(&a, e, ep, n, pers, &tq.q, ctx);
      ck_assert(a.n == 0 || (a.reasons != NULL) == (tq.q.with_reasons != 0));
      serve_answer_free(&a);
    }
    serve_model_free(&sm);
  }
  rec_ws_free(&ws);
}
END_TEST

/* Walks that read far past the first depth: one item per family and per
 * category over long answers, so the int8 pass must scan again (several
 * times), ultimately over the whole catalogue. */
START_TEST(test_deep_walks) {
  static bf_t e[N];
  static uint8_t ep[N];
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, g_m, way))
      continue;
    rng_t r;
    rng_seed(&r, 99);
    for (int t = 0; t < 24; t++) {
      tq_t tq;
      tq_random(&tq, &r, g_m);
      rec_query_t *q = &tq.q;
      q->category_filter = 0;
      q->max_per_category = t % 3 == 0 ? 0 : 1 + (size_t)(t % 4);
      q->one_per_group = t % 2 == 0 || q->max_per_category == 0;
      q->count = t % 4 == 0 ? 3000 : 20 + (size_t)t * 7;
      q->offset = (size_t)t % 5;
      int pers;
      const size_t n = expected(g_m, &sm, q, e, ep, &pers);
      serve_answer_t a;
      serve_one(&sm, q, &ws, &a);
      char ctx[64];
      snprintf(ctx, sizeof ctx, "%s deep %d", tu_serve_way_name(way), t);
      check_answer(&a, e, ep, n, pers, q, ctx);
      serve_answer_free(&a);
    }
    /* Early end: every category the filter lets through is full. */
    tq_t tq;
    memset(&tq, 0, sizeof tq);
    uint32_t cats[2] = {2, 5}, h[3] = {10, 200, 3000};
    float hw[3] = {1, 2, 1};
    tq.q = (rec_query_t){.hist = h, .hist_w = hw, .n_hist = 3, .history_limit = 10,
                         .personalize = 1, .exclude_history = 1, .categories = cats,
                         .n_categories = 2, .category_filter = 1, .max_per_category = 2,
                         .count = 10};
    int pers;
    const size_t n = expected(g_m, &sm, &tq.q, e, ep, &pers);
    ck_assert_uint_eq(n, 4);
    serve_answer_t a;
    serve_one(&sm, &tq.q, &ws, &a);
    check_answer(&a, e, ep, n, pers, &tq.q, "categories full");
    serve_answer_free(&a);
    serve_model_free(&sm);
  }
  rec_ws_free(&ws);
}
END_TEST

/* The int8 pass learns how deep capped walks read (serve.c): easy walks
 * (a cap the top items hardly meet) pull the learnt ratio down from its
 * 4x start, hard ones (one item per category and family over a long
 * answer) push it up; exact answers throughout, the hard walks after the
 * easy ones included (they start too shallow and deepen). */
START_TEST(test_learnt_depth) {
  static bf_t e[N];
  static uint8_t ep[N];
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (int way = 1; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, g_m, way))
      continue;
    ck_assert_uint_eq(serve_model_walk_ratio16(&sm), 64);
    rng_t r;
    rng_seed(&r, 5);
    for (int phase = 0; phase < 2; phase++) {
      for (int t = 0; t < 60; t++) {
        tq_t tq;
        tq_random(&tq, &r, g_m);
        rec_query_t *q = &tq.q;
        q->category_filter = 0;
        q->promoted = NULL;
        q->promote = 0;
        q->exclude_bought_groups = 0;
        q->offset = 0;
        if (phase == 0) { /* easy: a loose cap on a short answer */
          q->max_per_category = 50;
          q->one_per_group = 0;
          q->count = 5;
        } else { /* hard: one per category and family, 40 long */
          q->max_per_category = 1;
          q->one_per_group = 1;
          q->count = 40;
        }
        int pers;
        const size_t n = expected(g_m, &sm, q, e, ep, &pers);
        serve_answer_t a;
        serve_one(&sm, q, &ws, &a);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "%s learnt depth phase %d query %d", tu_serve_way_name(way),
                 phase, t);
        check_answer(&a, e, ep, n, pers, q, ctx);
        serve_answer_free(&a);
      }
      const uint32_t r16 = serve_model_walk_ratio16(&sm);
      if (phase == 0)
        ck_assert_msg(r16 < 32, "%s: easy walks left the ratio at %u/16", tu_serve_way_name(way),
                      r16);
      else
        ck_assert_msg(r16 > 32, "%s: hard walks left the ratio at %u/16", tu_serve_way_name(way),
                      r16);
    }
    serve_model_free(&sm);
  }
  rec_ws_free(&ws);
}
END_TEST

/* Pages: OFFSET pages through the answer ranking, promoted slots at their
 * absolute positions: the pages put together are the long list. */
START_TEST(test_pages_concatenate) {
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, g_m, way))
      continue;
    rng_t r;
    rng_seed(&r, 5150);
    for (int t = 0; t < 40; t++) {
      tq_t tq;
      tq_random(&tq, &r, g_m);
      rec_query_t q = tq.q;
      q.offset = 0;
      q.count = 48;
      q.promote = 1 + (size_t)(t % 6);
      q.promoted = tq.promoted;
      serve_answer_t all;
      serve_one(&sm, &q, &ws, &all);
      ck_assert_int_eq(all.rc, 0);
      const size_t page = 1 + (size_t)(t % 7);
      size_t at = 0;
      for (q.offset = 0; q.offset < 48; q.offset += page) {
        q.count = q.offset + page > 48 ? 48 - q.offset : page;
        serve_answer_t a;
        serve_one(&sm, &q, &ws, &a);
        ck_assert_int_eq(a.rc, 0);
        for (size_t j = 0; j < a.n; j++, at++) {
          ck_assert_uint_eq(a.items[j], all.items[at]);
          ck_assert(a.scores[j] == all.scores[at]);
          ck_assert_int_eq(a.promoted[j], all.promoted[at]);
        }
        if (a.n < q.count) {
          serve_answer_free(&a);
          break;
        }
        serve_answer_free(&a);
      }
      ck_assert_uint_eq(at, all.n);
      serve_answer_free(&all);
    }
    serve_model_free(&sm);
  }
  rec_ws_free(&ws);
}
END_TEST

/* A batch of mixed queries, its scan split into parts, answers what
 * serve_one answers for each. */
START_TEST(test_batch_split) {
  enum { B = 9 };
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, g_m, way))
      continue;
    rng_t r;
    rng_seed(&r, 31337 + (uint64_t)way);
    static tq_t tq[B];
    const rec_query_t *qs[B];
    for (int j = 0; j < B; j++) {
      tq_random(&tq[j], &r, g_m);
      tq[j].q.count += (size_t)j * 9;
      qs[j] = &tq[j].q;
    }
    serve_batch_t *b;
    ck_assert_int_eq(serve_batch_new(&sm, qs, B, 3, &b), 0);
    for (size_t j = 0; j < B; j++)
      serve_batch_fold(b, j, &ws);
    ck_assert_int_eq(serve_batch_rows(b), 0);
    const uint32_t n = serve_batch_n_items(b);
    ck_assert_int_eq(serve_batch_scan(b, 2, 0, 1024), 0);
    ck_assert_int_eq(serve_batch_scan(b, 0, 1024, 2048), 0);
    ck_assert_int_eq(serve_batch_scan(b, 1, 2048, n), 0);
    for (size_t row = 0; row < serve_batch_n_rows(b); row++)
      serve_batch_finish(b, row, &ws);
    for (int j = 0; j < B; j++) {
      static bf_t e[N];
      static uint8_t ep[N];
      int pers;
      const size_t ne = expected(g_m, &sm, qs[j], e, ep, &pers);
      char ctx[48];
      snprintf(ctx, sizeof ctx, "%s batch slot %d", tu_serve_way_name(way), j);
      check_answer(serve_batch_answer(b, (size_t)j), e, ep, ne, pers, qs[j], ctx);
    }
    serve_batch_free(b);
    serve_model_free(&sm);
  }
  rec_ws_free(&ws);
}
END_TEST

/* The same answers directly through rec_select (dense scores: the float
 * pass, with an err of 0) and with the popularity answer. */
START_TEST(test_rec_select_dense) {
  static bf_t e[N];
  static uint8_t ep[N];
  static float S[N];
  static float x[64];
  serve_model_t sm;
  tu_serve_way(&sm, g_m, 0);
  rec_ws_t ws, ws2;
  rec_ws_init(&ws);
  rec_ws_init(&ws2);
  rng_t r;
  rng_seed(&r, 4242);
  for (int t = 0; t < 60; t++) {
    tq_t tq;
    tq_random(&tq, &r, g_m);
    tq.q.families = t % 2 ? &sm.families : NULL;
    int pers;
    size_t used;
    const size_t n = expected(g_m, &sm, &tq.q, e, ep, &pers);
    ck_assert_int_eq(rec_prepare(g_m, &tq.q, &ws, x, &pers, &used), 0);
    if (pers)
      score_items(model_item_factors(g_m), model_stride(g_m), N, K, x, S);
    rec_result_t res;
    ck_assert_int_eq(rec_select(g_m, sm.pop_scale, &tq.q, pers ? S : NULL, x, 0.0f, used, &ws,
                                &res),
                     0);
    serve_answer_t a = {.rc = 0, .personalized = res.personalized, .n = res.n,
                        .items = res.items, .scores = res.scores, .promoted = res.promoted};
    char ctx[32];
    snprintf(ctx, sizeof ctx, "rec_select %d", t);
    check_answer(&a, e, ep, n, pers, &tq.q, ctx);
  }
  rec_ws_free(&ws);
  rec_ws_free(&ws2);
  serve_model_free(&sm);
}
END_TEST

/* The promoted slots by hand, on a small case: with PROMOTE 2 and the
 * customer's best promoted items known, positions 2 and 4 are theirs. */
START_TEST(test_promoted_positions) {
  rec_ws_t ws;
  rec_ws_init(&ws);
  serve_model_t sm;
  tu_serve_way(&sm, g_m, 0);
  /* popularity answer: no history */
  static uint64_t promo[(N + 63) / 64];
  memset(promo, 0, sizeof promo);
  /* the three least popular items promoted: far from the organic top */
  static bf_t pop[N];
  for (uint32_t i = 0; i < N; i++)
    pop[i] = (bf_t){model_popularity(g_m)[i], i};
  qsort(pop, N, sizeof *pop, cmp_bf);
  for (int j = 1; j <= 3; j++)
    promo[pop[N - j].i / 64] |= (uint64_t)1 << (pop[N - j].i % 64);
  rec_query_t q = {.personalize = 1, .promoted = promo, .promote = 2, .count = 6};
  serve_answer_t a;
  ck_assert_int_eq(serve_one(&sm, &q, &ws, &a), 0);
  ck_assert_uint_eq(a.n, 6);
  const uint8_t flags[6] = {0, 1, 0, 1, 0, 0};
  for (int j = 0; j < 6; j++)
    ck_assert_int_eq(a.promoted[j], flags[j]);
  /* organic: the popularity top 4; promoted: the best two of the three */
  ck_assert_uint_eq(a.items[0], pop[0].i);
  ck_assert_uint_eq(a.items[2], pop[1].i);
  ck_assert_uint_eq(a.items[4], pop[2].i);
  ck_assert_uint_eq(a.items[5], pop[3].i);
  ck_assert_uint_eq(a.items[1], pop[N - 3].i);
  ck_assert_uint_eq(a.items[3], pop[N - 2].i);
  serve_answer_free(&a);
  /* a promoted item that is the organic best is not repeated: position 1
   * is it (organic), the slots take the next promoted ones */
  promo[pop[0].i / 64] |= (uint64_t)1 << (pop[0].i % 64);
  ck_assert_int_eq(serve_one(&sm, &q, &ws, &a), 0);
  ck_assert_uint_eq(a.items[0], pop[0].i);
  ck_assert_int_eq(a.promoted[0], 0);
  ck_assert_uint_eq(a.items[1], pop[N - 3].i);
  ck_assert_uint_eq(a.items[3], pop[N - 2].i);
  serve_answer_free(&a);
  /* hidden promoted items never show */
  const uint32_t hid[1] = {pop[N - 3].i};
  q.hidden = hid;
  q.n_hidden = 1;
  ck_assert_int_eq(serve_one(&sm, &q, &ws, &a), 0);
  ck_assert_uint_eq(a.items[1], pop[N - 2].i);
  ck_assert_uint_eq(a.items[3], pop[N - 1].i);
  serve_answer_free(&a);
  serve_model_free(&sm);
  rec_ws_free(&ws);
}
END_TEST

/* RANK: scored candidates first, then hidden and removed-category ones in
 * their given order, then unknown ids. */
START_TEST(test_rank_hidden) {
  rec_ws_t ws;
  rec_ws_init(&ws);
  rng_t r;
  rng_seed(&r, 808);
  const uint32_t *cat = model_item_categories(g_m);
  for (int t = 0; t < 100; t++) {
    tq_t tq;
    tq_random(&tq, &r, g_m);
    rec_query_t *q = &tq.q;
    enum { C = 40 };
    int64_t cand[C];
    for (int j = 0; j < C; j++)
      cand[j] = rng_below(&r, 12) == 0 ? -1 : (int64_t)rng_below(&r, N);
    for (size_t j = 0; j < q->n_hidden && j < 5; j++)
      cand[rng_below(&r, C)] = q->hidden[j];
    uint32_t order[C];
    float sc[C];
    int pers;
    ck_assert_int_eq(rec_rank(g_m, 1.0f, q, cand, C, &ws, order, sc, &pers), 0);
    /* expected: class, then score (class 0), then position */
    static float x[64];
    static double all[N];
    int p2;
    size_t used;
    rec_ws_t w2;
    rec_ws_init(&w2);
    ck_assert_int_eq(rec_prepare(g_m, q, &w2, x, &p2, &used), 0);
    rec_ws_free(&w2);
    ck_assert_int_eq(pers, p2);
    all_scores(g_m, pers ? x : NULL, all);
    float adj[NC + 1];
    int removed[NC + 1];
    rec_query_t nf = *q;
    nf.category_filter = 0;
    adjustments(&nf, pers ? model_meta(g_m)->score_scale : 1.0f, adj, removed);
    int cls[C];
    float s[C];
    for (int j = 0; j < C; j++) {
      if (cand[j] < 0) {
        cls[j] = 2;
        continue;
      }
      const uint32_t i = (uint32_t)cand[j];
      s[j] = (float)all[i] + adj[cat[i]];
      cls[j] = removed[cat[i]] || in_list(q->hidden, q->n_hidden, i);
    }
    for (int j = 1; j < C; j++) {
      const uint32_t a = order[j - 1], b = order[j];
      ck_assert_int_le(cls[a], cls[b]);
      if (cls[a] != cls[b])
        continue;
      if (cls[a] == 0 && s[a] != s[b])
        ck_assert_msg(s[a] > s[b], "rank %d: %g before %g", t, (double)s[a], (double)s[b]);
      else
        ck_assert_uint_lt(a, b);
    }
    for (int j = 0; j < C; j++)
      if (cls[order[j]] == 0)
        ck_assert(sc[j] == s[order[j]]);
  }
  rec_ws_free(&ws);
}
END_TEST

/* SIMILAR with every filter: today's cosine ranking (rec_similar over the
 * whole catalogue, whose cosines are checked in double here too), then
 * the rules by hand. */
START_TEST(test_similar_filters) {
  static bf_t e[N], rk[N], l[N];
  static uint8_t lp[N];
  static uint32_t full[N];
  static float full_s[N];
  static double cos_all[N];
  rec_ws_t ws;
  rec_ws_init(&ws);
  rng_t r;
  rng_seed(&r, 2718);
  const float *Y = model_item_factors(g_m), *norms = model_item_norms(g_m);
  const uint32_t stride = model_stride(g_m);
  rec_families_t fam;
  ck_assert_int_eq(rec_families_build(&fam, g_m), 0);
  for (int t = 0; t < 150; t++) {
    tq_t tq;
    tq_random(&tq, &r, g_m);
    rec_query_t *q = &tq.q;
    q->families = t % 2 ? &fam : NULL; /* bought families filtered, or skipped */
    const uint32_t item = (uint32_t)rng_below(&r, N);
    if (t % 3 == 0) { /* without FOR: no customer filters */
      q->n_hist = q->n_hidden = q->n_pref = 0;
      q->exclude_bought_groups = 0;
    }
    /* today's ranking of every item */
    rec_result_t res;
    ck_assert_int_eq(rec_similar(g_m, item, N, NULL, &ws, &res), 0);
    const size_t nfull = res.n;
    memcpy(full, res.items, nfull * sizeof *full);
    memcpy(full_s, res.scores, nfull * sizeof *full_s);
    for (uint32_t i = 0; i < N; i++) {
      double d = 0;
      for (int a = 0; a < K; a++)
        d += (double)Y[(size_t)i * stride + a] * Y[(size_t)item * stride + a];
      cos_all[i] = d / norms[i] / norms[item];
    }
    for (size_t j = 0; j < nfull; j++)
      ck_assert(fabs(full_s[j] - cos_all[full[j]]) < 1e-5);
    /* the brute force: NaN for items not in today's list, cosines as
     * today's, then the filters (preferences only as removals) */
    static double sc[N];
    for (uint32_t i = 0; i < N; i++)
      sc[i] = NAN;
    for (size_t j = 0; j < nfull; j++)
      sc[full[j]] = full_s[j];
    const size_t nr = filtered(g_m, q, sc, 0.0f, rk);
    const size_t nl = walk(g_m, q, rk, nr, 0, l, lp);
    size_t n = 0;
    for (size_t j = q->offset; j < nl && n < q->count; j++)
      e[n++] = l[j];
    ck_assert_int_eq(rec_similar_q(g_m, item, q, &ws, &res), 0);
    ck_assert_msg(res.n == n, "similar %d: %zu items, expected %zu", t, res.n, n);
    ck_assert_ptr_null(res.promoted);
    ck_assert_ptr_null(res.reasons);
    for (size_t j = 0; j < n; j++) {
      ck_assert_msg(res.items[j] == e[j].i, "similar %d pos %zu: %u vs %u", t, j, res.items[j],
                    e[j].i);
      ck_assert(res.scores[j] == e[j].s);
      ck_assert_uint_ne(res.items[j], item);
    }
  }
  rec_families_free(&fam);
  rec_ws_free(&ws);
}
END_TEST

/* Duplicated history entries (a HISTORY item already in the stored
 * history) are one item with the summed weight: the same answer as the
 * merged history. */
START_TEST(test_duplicate_history) {
  rec_ws_t ws;
  rec_ws_init(&ws);
  serve_model_t sm;
  tu_serve_way(&sm, g_m, 0);
  uint32_t h1[4] = {5, 77, 5, 900}, h2[3] = {5, 77, 900};
  float w1[4] = {1, 2, 1, 3}, w2[3] = {2, 2, 3};
  rec_query_t q1 = {.hist = h1, .hist_w = w1, .n_hist = 4, .history_limit = 10,
                    .personalize = 1, .exclude_history = 1, .exclude_bought_groups = 1,
                    .one_per_group = 1, .count = 12};
  rec_query_t q2 = q1;
  q2.hist = h2;
  q2.hist_w = w2;
  q2.n_hist = 3;
  serve_answer_t a, b;
  ck_assert_int_eq(serve_one(&sm, &q1, &ws, &a), 0);
  ck_assert_int_eq(serve_one(&sm, &q2, &ws, &b), 0);
  ck_assert_uint_eq(a.n, b.n);
  ck_assert_uint_eq(a.n_used, 3);
  for (size_t j = 0; j < a.n; j++) {
    ck_assert_uint_eq(a.items[j], b.items[j]);
    ck_assert(a.scores[j] == b.scores[j]);
  }
  serve_answer_free(&a);
  serve_answer_free(&b);
  serve_model_free(&sm);
  rec_ws_free(&ws);
}
END_TEST

/* The family index: every member of a family once, ascending, and
 * nothing else. */
START_TEST(test_families_index) {
  rec_families_t f;
  ck_assert_int_eq(rec_families_build(&f, g_m), 0);
  const uint32_t *g = model_item_groups(g_m);
  ck_assert_uint_eq(f.n_groups, g_n_groups);
  size_t members = 0;
  for (uint32_t i = 0; i < N; i++)
    members += g[i] != 0;
  ck_assert_uint_eq(f.start[0], 0);
  ck_assert_uint_eq(f.start[f.n_groups + 1], members);
  for (uint32_t c = 1; c <= f.n_groups; c++) {
    ck_assert_uint_ge(f.start[c + 1] - f.start[c], 2); /* families of 2..4 here */
    for (uint32_t j = f.start[c]; j < f.start[c + 1]; j++) {
      ck_assert_uint_eq(g[f.items[j]], c);
      if (j > f.start[c])
        ck_assert_uint_lt(f.items[j - 1], f.items[j]);
    }
  }
  rec_families_free(&f);
  rec_families_free(&f); /* twice is safe */
}
END_TEST

static Suite *rules_suite(void) {
  Suite *s = suite_create("rules");
  TCase *tc = tcase_create("core");
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_rules_match_brute_force);
  tcase_add_test(tc, test_deep_walks);
  tcase_add_test(tc, test_learnt_depth);
  tcase_add_test(tc, test_pages_concatenate);
  tcase_add_test(tc, test_batch_split);
  tcase_add_test(tc, test_rec_select_dense);
  tcase_add_test(tc, test_promoted_positions);
  tcase_add_test(tc, test_rank_hidden);
  tcase_add_test(tc, test_similar_filters);
  tcase_add_test(tc, test_duplicate_history);
  tcase_add_test(tc, test_families_index);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(rules_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
