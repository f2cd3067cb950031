/* test_serve.c - the serving algorithm of serve.h: a batch answers every
 * customer exactly as serve_one() does alone, bit for bit, whatever the
 * first pass (float, or int8 with either kernel), the batch size, the order
 * of the calls within a phase, the threads that make them and the split of
 * the scan into parts; the batch's own rules (capacity, choice of the pass,
 * answers given at fold time, given vectors, errors) hold.
 *
 * That serve_one's answers are the brute force's is test_recommend.c's. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"
#include "recd/rng.h"
#include "recd/serve.h"
#include "testutil.h"

/* N is not a multiple of 8 (the int8 copy's last block is partial) and K
 * not a multiple of 4 (its rows are padded). */
enum { N = 997, K = 12, NC = 4, MAXB = 40 };

/* adversarial: items 0..199 score 1 + 1e-5 * (a shuffled rank) for the
 * all-ones query, far closer together than the int8 pass can tell apart,
 * so its collectors must keep them all; duplicated rows make exact ties. */
static model_t *make_model(char **dir_out, int adversarial) {
  char *dir = tu_mkdtemp();
  static float Y[N * K], pop[N];
  static uint32_t cat[N], lens[N], clens[NC];
  static char idbuf[N][8], cbuf[NC][8];
  static const char *ids[N], *cnames[NC];
  tu_randn(Y, N * K, 17, 0.4f);
  for (int i = 24; i < N; i += 25)
    memcpy(Y + (size_t)i * K, Y + (size_t)(i - 1) * K, K * sizeof *Y);
  if (adversarial)
    for (int i = 0; i < 200; i++) {
      float *y = Y + (size_t)i * K;
      double dot = 0;
      for (int a = 0; a < K; a++)
        dot += y[a];
      const double t = 1.0 + 1e-5 * (double)((i * 37) % 200);
      for (int a = 0; a < K; a++)
        y[a] = (float)(y[a] + (t - dot) / K);
    }
  rng_t r;
  rng_seed(&r, 23);
  for (int i = 0; i < N; i++) {
    pop[i] = (float)rng_below(&r, 40); /* popularity ties */
    cat[i] = (uint32_t)(i % (NC + 1));
    lens[i] = (uint32_t)snprintf(idbuf[i], sizeof idbuf[i], "i%d", i);
    ids[i] = idbuf[i];
  }
  for (int c = 0; c < NC; c++) {
    clens[c] = (uint32_t)snprintf(cbuf[c], sizeof cbuf[c], "c%d", c + 1);
    cnames[c] = cbuf[c];
  }
  model_spec_t spec = {.n_items = N,
                       .params = {.factors = K, .iterations = 1, .conf_mode = PARAMS_CONF_LOG,
                                  .cg_steps = 3, .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f,
                                  .reg_exponent = 0.5f},
                       .meta = {.score_scale = 0.7f},
                       .Y = Y, .ldy = K, .popularity = pop, .item_ids = ids,
                       .item_id_lens = lens, .item_category = cat, .n_categories = NC,
                       .category_names = cnames, .category_name_lens = clens};
  char err[RECD_ERRLEN];
  ck_assert_int_eq(model_write(&spec, tu_path(dir, "m.bin"), err), 0);
  model_t *m;
  ck_assert_msg(model_load(&m, tu_path(dir, "m.bin"), err) == 0, "%s", err);
  *dir_out = dir;
  return m;
}

/* A query and the arrays it points to. */
typedef struct tq {
  uint32_t hist[24], excl[6], cats[2], pcat[2];
  float hw[24], pval[2];
  uint64_t unav[(N + 63) / 64];
  rec_query_t q;
} tq_t;

/* A random query of every kind a batch meets: opted out, empty history,
 * nothing asked for (offset + count = 0), reasons, every filter, paging,
 * and now and then an invalid weight (the fold-in fails: an error for
 * that customer only). */
static void tq_random(tq_t *t, rng_t *r) {
  memset(t, 0, sizeof *t);
  const size_t nh = rng_below(r, 8) == 0 ? 0 : 1 + rng_below(r, 23);
  for (size_t j = 0; j < nh; j++) {
    t->hist[j] = (uint32_t)rng_below(r, N);
    t->hw[j] = 1.0f + (float)rng_below(r, 4);
  }
  if (nh > 0 && rng_below(r, 25) == 0)
    t->hw[rng_below(r, nh)] = 0.0f;
  const size_t ne = rng_below(r, 7), nc = rng_below(r, 3) == 0 ? 1 + rng_below(r, 2) : 0;
  for (size_t j = 0; j < ne; j++)
    t->excl[j] = (uint32_t)rng_below(r, N);
  for (size_t j = 0; j < nc; j++)
    t->cats[j] = 1 + (uint32_t)rng_below(r, NC);
  const size_t np = rng_below(r, 3) == 0 ? 1 : 0;
  t->pcat[0] = 1 + (uint32_t)rng_below(r, NC);
  t->pval[0] = rng_below(r, 4) == 0 ? -1.0f : (float)rng_uniform(r) - 0.5f;
  const int unav = rng_below(r, 3) == 0;
  for (int j = 0; unav && j < 40; j++)
    t->unav[rng_below(r, N / 64)] |= 1ull << rng_below(r, 64);
  const int nothing = rng_below(r, 12) == 0;
  t->q = (rec_query_t){.hist = t->hist, .hist_w = t->hw, .n_hist = nh,
                       .history_limit = rng_below(r, 2) ? 10 : 0,
                       .personalize = rng_below(r, 8) != 0,
                       .exclude_history = (int)rng_below(r, 2), .exclude = t->excl,
                       .n_exclude = ne, .categories = t->cats, .n_categories = nc,
                       .category_filter = nc > 0, .pref_cat = t->pcat, .pref_val = t->pval,
                       .n_pref = np, .unavailable = unav ? t->unav : NULL,
                       .offset = nothing ? 0 : rng_below(r, 5),
                       .count = nothing ? 0 : rng_below(r, 50),
                       .with_reasons = rng_below(r, 4) == 0};
}

/* The same answer, bit for bit. */
static void same_answer(const serve_answer_t *a, const serve_answer_t *e, const char *ctx,
                        size_t j) {
  ck_assert_msg(a->rc == e->rc, "%s customer %zu: rc %d vs %d", ctx, j, a->rc, e->rc);
  if (e->rc != 0)
    return;
  ck_assert_msg(a->personalized == e->personalized, "%s customer %zu: personalized", ctx, j);
  ck_assert_msg(a->n_used == e->n_used, "%s customer %zu: n_used %zu vs %zu", ctx, j,
                a->n_used, e->n_used);
  ck_assert_msg(a->n == e->n, "%s customer %zu: %zu vs %zu items", ctx, j, a->n, e->n);
  ck_assert_msg((a->reasons == NULL) == (e->reasons == NULL), "%s customer %zu: reasons", ctx,
                j);
  ck_assert_ptr_nonnull(a->items);
  ck_assert_ptr_nonnull(a->scores);
  for (size_t t = 0; t < e->n; t++) {
    ck_assert_msg(a->items[t] == e->items[t], "%s customer %zu pos %zu: item %u vs %u", ctx, j,
                  t, a->items[t], e->items[t]);
    ck_assert_msg(memcmp(&a->scores[t], &e->scores[t], sizeof(float)) == 0,
                  "%s customer %zu pos %zu: score %.9g vs %.9g", ctx, j, t,
                  (double)a->scores[t], (double)e->scores[t]);
    if (e->reasons != NULL)
      ck_assert_msg(a->reasons[t] == e->reasons[t], "%s customer %zu pos %zu: reason %d vs %d",
                    ctx, j, t, a->reasons[t], e->reasons[t]);
  }
}

/* How a batch's scan is cut: segments [lo, hi) covering [0, N) once, each
 * given to a part, in the order of the calls. */
typedef struct split {
  unsigned parts;
  size_t nseg;
  uint32_t lo[16], hi[16];
  unsigned part[16];
} split_t;

static int cmp_u32(const void *a, const void *b) {
  const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Up to 16 segments of random (uneven, multiple of 8) sizes, in a
 * shuffled order, each given to a random part (so some parts may scan
 * several ranges and some none). */
static void split_random(split_t *s, rng_t *r, unsigned parts) {
  uint32_t cut[17];
  size_t nc = 0;
  const size_t want = 1 + rng_below(r, 16);
  cut[nc++] = 0;
  for (size_t t = 1; t < want; t++)
    cut[nc++] = 8 * (uint32_t)(1 + rng_below(r, N / 8));
  qsort(cut, nc, sizeof *cut, cmp_u32);
  size_t u = 1; /* distinct cuts */
  for (size_t t = 1; t < nc; t++)
    if (cut[t] != cut[u - 1])
      cut[u++] = cut[t];
  s->parts = parts;
  s->nseg = u;
  for (size_t t = 0; t < u; t++) {
    s->lo[t] = cut[t];
    s->hi[t] = t + 1 < u ? cut[t + 1] : N;
    /* the first `parts` segments go to distinct parts, so that every
     * part has work when there are enough segments */
    s->part[t] = t < parts ? (unsigned)t : (unsigned)rng_below(r, parts);
  }
  for (size_t t = u; t > 1; t--) {
    const size_t k = rng_below(r, t);
    uint32_t lo = s->lo[t - 1], hi = s->hi[t - 1];
    unsigned p = s->part[t - 1];
    s->lo[t - 1] = s->lo[k];
    s->hi[t - 1] = s->hi[k];
    s->part[t - 1] = s->part[k];
    s->lo[k] = lo;
    s->hi[k] = hi;
    s->part[k] = p;
  }
}

static void split_one(split_t *s) {
  *s = (split_t){.parts = 1, .nseg = 1, .lo = {0}, .hi = {N}, .part = {0}};
}

/* A batch of qs[0..n) run phase by phase as several threads would: the
 * fold-ins in reverse order over two workspaces, the scan as s says, the
 * rows finished in reverse order over the two workspaces. xs: when not
 * NULL, customer j's vector is given (xs + j * K) instead of folded in.
 * The caller frees the batch. */
static serve_batch_t *run_phased(const serve_model_t *sm, const rec_query_t *const *qs,
                                 size_t n, const split_t *s, rec_ws_t ws[2], const float *xs) {
  serve_batch_t *b;
  ck_assert_int_eq(serve_batch_new(sm, qs, n, s->parts, &b), 0);
  ck_assert_uint_eq(serve_batch_size(b), n);
  ck_assert_uint_eq(serve_batch_n_items(b), N);
  for (size_t j = n; j-- > 0;) {
    if (xs != NULL)
      serve_batch_set_vector(b, j, xs + j * K);
    else
      serve_batch_fold(b, j, &ws[j % 2]);
  }
  ck_assert_int_eq(serve_batch_rows(b), 0);
  for (size_t t = 0; t < s->nseg; t++)
    ck_assert_int_eq(serve_batch_scan(b, s->part[t], s->lo[t], s->hi[t]), 0);
  for (size_t r = serve_batch_n_rows(b); r-- > 0;)
    serve_batch_finish(b, r, &ws[r % 2]);
  return b;
}

START_TEST(test_batch_equals_one) {
  /* serve_batch_run() over batches of every size class (one sgemv per row
   * below 3 rows, one sgemm from 3 on; one scan for every row) against
   * serve_one() per customer, and every way against the float pass. */
  static const size_t sizes[] = {1, 2, 3, 4, 7, 16, MAXB};
  for (int adv = 0; adv <= 1; adv++) {
    char *dir;
    model_t *m = make_model(&dir, adv);
    serve_model_t sm[TU_SERVE_WAYS];
    int have[TU_SERVE_WAYS];
    for (int way = 0; way < TU_SERVE_WAYS; way++)
      have[way] = tu_serve_way(&sm[way], m, way);
    rec_ws_t ws;
    rec_ws_init(&ws);
    rng_t r;
    rng_seed(&r, 100 + (uint64_t)adv);
    static tq_t tq[MAXB];
    const rec_query_t *qs[MAXB];
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
      const size_t n = sizes[si];
      for (size_t j = 0; j < n; j++) {
        tq_random(&tq[j], &r);
        qs[j] = &tq[j].q;
      }
      serve_answer_t ref[MAXB];
      for (size_t j = 0; j < n; j++) {
        const int rc = serve_one(&sm[0], qs[j], &ws, &ref[j]);
        ck_assert_int_eq(rc, ref[j].rc);
      }
      for (int way = 0; way < TU_SERVE_WAYS; way++) {
        if (!have[way])
          continue;
        serve_batch_t *b;
        ck_assert_int_eq(serve_batch_new(&sm[way], qs, n, 1, &b), 0);
        ck_assert_int_eq(serve_batch_run(b, &ws), 0);
        char ctx[64];
        snprintf(ctx, sizeof ctx, "%s adv %d batch %zu", tu_serve_way_name(way), adv, n);
        for (size_t j = 0; j < n; j++) {
          serve_answer_t one;
          serve_one(&sm[way], qs[j], &ws, &one);
          same_answer(serve_batch_answer(b, j), &one, ctx, j);
          same_answer(&one, &ref[j], ctx, j); /* and the float pass's */
          serve_answer_free(&one);
        }
        serve_batch_free(b);
      }
      for (size_t j = 0; j < n; j++)
        serve_answer_free(&ref[j]);
    }
    for (int way = 0; way < TU_SERVE_WAYS; way++)
      if (have[way])
        serve_model_free(&sm[way]);
    rec_ws_free(&ws);
    model_free(m);
    tu_rmtree(dir);
    free(dir);
  }
}
END_TEST

START_TEST(test_split_scan_equals_one_part) {
  /* The scan cut into 1..SERVE_MAX_PARTS parts, ranges of uneven sizes
   * given in shuffled order (a part may get several or none), the other
   * phases in odd orders over two workspaces: the answers are serve_one's.
   * Batches of 2 (sgemv per row) and 6 (sgemm) customers. */
  char *dir;
  model_t *m = make_model(&dir, 1);
  rec_ws_t ws[2];
  rec_ws_init(&ws[0]);
  rec_ws_init(&ws[1]);
  rng_t r;
  rng_seed(&r, 7);
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, m, way))
      continue;
    for (unsigned parts = 1; parts <= SERVE_MAX_PARTS; parts++)
      for (int trial = 0; trial < 6; trial++) {
        const size_t n = trial % 2 ? 6 : 2;
        tq_t tq[6];
        const rec_query_t *qs[6];
        for (size_t j = 0; j < n; j++) {
          tq_random(&tq[j], &r);
          qs[j] = &tq[j].q;
        }
        /* one customer aimed at the near-tied items */
        tq[0].q.personalize = 1;
        tq[0].q.count = 15;
        split_t s;
        split_random(&s, &r, parts);
        serve_batch_t *b = run_phased(&sm, qs, n, &s, ws, NULL);
        char ctx[96];
        snprintf(ctx, sizeof ctx, "%s parts %u trial %d (%zu ranges)", tu_serve_way_name(way), parts,
                 trial, s.nseg);
        for (size_t j = 0; j < n; j++) {
          serve_answer_t one;
          serve_one(&sm, qs[j], &ws[0], &one);
          same_answer(serve_batch_answer(b, j), &one, ctx, j);
          serve_answer_free(&one);
        }
        serve_batch_free(b);
      }
    serve_model_free(&sm);
  }
  rec_ws_free(&ws[0]);
  rec_ws_free(&ws[1]);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_mixed_batch) {
  /* One batch of every kind of customer: the ones that need no scan are
   * answered by the fold (before phase 2), the others become the rows, in
   * order; each answer is what that kind of customer must get. */
  char *dir;
  model_t *m = make_model(&dir, 0);
  const uint32_t *cat = model_item_categories(m);
  const float *pop = model_popularity(m);
  uint32_t hist[5] = {10, 20, 30, 20, 40}; /* 20 twice: 4 distinct items */
  float hw[5] = {1, 2, 3, 1, 1}, bad_w[5] = {1, 2, NAN, 1, 1};
  uint32_t excl[3] = {1, 2, 3}, cats[1] = {2};
  uint64_t unav[(N + 63) / 64] = {0};
  unav[0] = 0xF0F0;
  const rec_query_t base = {.hist = hist, .hist_w = hw, .n_hist = 5, .personalize = 1,
                            .exclude_history = 1, .count = 10};
  enum { NQ = 8 };
  rec_query_t q[NQ];
  for (int j = 0; j < NQ; j++)
    q[j] = base;
  q[1].personalize = 0;                    /* opted out: popularity */
  q[2].n_hist = 0;                         /* no history: popularity */
  q[3].count = 0;                          /* nothing asked for */
  q[4].with_reasons = 1;                   /* reasons */
  q[5].exclude = excl;                     /* every filter */
  q[5].n_exclude = 3;
  q[5].categories = cats;
  q[5].n_categories = 1;
  q[5].category_filter = 1;
  q[5].unavailable = unav;
  q[5].offset = 3;
  q[6].hist_w = bad_w;                     /* the fold-in fails */
  q[7].personalize = 0;                    /* reasons, not personalized */
  q[7].with_reasons = 1;
  const rec_query_t *qs[NQ];
  for (int j = 0; j < NQ; j++)
    qs[j] = &q[j];
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, m, way))
      continue;
    serve_batch_t *b;
    ck_assert_int_eq(serve_batch_new(&sm, qs, NQ, 3, &b), 0);
    for (size_t j = 0; j < NQ; j++)
      ck_assert_int_eq(serve_batch_answer(b, j)->rc, RECD_EINVAL); /* not computed yet */
    for (size_t j = 0; j < NQ; j++)
      serve_batch_fold(b, j, &ws);
    /* answered by the fold: 1, 2, 3, 7, and 6 with the fold-in's error
     * (a NaN weight); the others wait for their row */
    static const int at_fold[NQ] = {0, 1, 1, 1, 0, 0, 0, 1};
    for (size_t j = 0; j < NQ; j++)
      ck_assert_msg(serve_batch_answer(b, j)->rc == (at_fold[j] ? 0 : RECD_EINVAL),
                    "%s customer %zu: %d", tu_serve_way_name(way), j, serve_batch_answer(b, j)->rc);
    ck_assert_int_eq(serve_batch_rows(b), 0);
    ck_assert_uint_eq(serve_batch_n_rows(b), 3); /* 0, 4, 5 */
    /* three parts: two thirds and nothing */
    ck_assert_int_eq(serve_batch_scan(b, 1, 336, N), 0);
    ck_assert_int_eq(serve_batch_scan(b, 0, 0, 336), 0);
    for (size_t r = 0; r < 3; r++)
      serve_batch_finish(b, r, &ws);
    for (size_t j = 0; j < NQ; j++) {
      const serve_answer_t *a = serve_batch_answer(b, j);
      if (j == 6) {
        ck_assert_int_eq(a->rc, RECD_EINVAL); /* the NaN weight */
        continue;
      }
      ck_assert_msg(a->rc == 0, "%s customer %zu: %d", tu_serve_way_name(way), j, a->rc);
      ck_assert_int_eq(a->personalized, j != 1 && j != 2 && j != 7);
      ck_assert_uint_eq(a->n_used, a->personalized ? 4 : 0);
      ck_assert_int_eq(a->reasons != NULL, j == 4 || j == 7);
      ck_assert_uint_eq(a->n, j == 3 ? 0 : 10);
      /* and each is what it is alone */
      serve_answer_t one;
      serve_one(&sm, qs[j], &ws, &one);
      same_answer(a, &one, tu_serve_way_name(way), j);
      serve_answer_free(&one);
    }
    /* popularity: the most popular items, history excluded (ties: the
     * smaller index) */
    const serve_answer_t *a1 = serve_batch_answer(b, 1);
    for (size_t t = 0; t < a1->n; t++) {
      const uint32_t i = a1->items[t];
      ck_assert(a1->scores[t] == pop[i]);
      for (int h = 0; h < 5; h++)
        ck_assert_uint_ne(i, hist[h]);
      for (uint32_t o = 0; o < N; o++) { /* nobody better is left out */
        int shown = 0, hidden = 0;
        for (size_t u = 0; u < a1->n; u++)
          shown |= a1->items[u] == o;
        for (int h = 0; h < 5; h++)
          hidden |= hist[h] == o;
        if (!shown && !hidden)
          ck_assert(pop[o] < a1->scores[a1->n - 1] ||
                    (pop[o] == a1->scores[a1->n - 1] && o > a1->items[a1->n - 1]));
      }
    }
    const serve_answer_t *a4 = serve_batch_answer(b, 4), *a7 = serve_batch_answer(b, 7);
    for (size_t t = 0; t < a4->n; t++)
      ck_assert(a4->reasons[t] >= 0 && a4->reasons[t] < 5);
    for (size_t t = 0; t < a7->n; t++)
      ck_assert_int_eq(a7->reasons[t], -1);
    const serve_answer_t *a5 = serve_batch_answer(b, 5);
    for (size_t t = 0; t < a5->n; t++) {
      const uint32_t i = a5->items[t];
      ck_assert_uint_eq(cat[i], 2);
      ck_assert(i > 3 && i != 10 && i != 20 && i != 30 && i != 40);
      ck_assert(!(unav[i / 64] >> (i % 64) & 1));
    }
    serve_batch_free(b);
    serve_model_free(&sm);
  }
  rec_ws_free(&ws);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_capacity) {
  char *dir;
  model_t *m = make_model(&dir, 0);
  serve_model_t fl, q8;
  ck_assert_int_eq(tu_serve_way(&fl, m, 0), 1);
  ck_assert_int_eq(tu_serve_way(&q8, m, 1), 1);
  /* the float pass: rows x N floats of scores fit in the cap, one more
   * row would not */
  const size_t fit = serve_batch_capacity(&fl, (size_t)1 << 30);
  ck_assert_uint_le(fit * N * sizeof(float), SERVE_FLOAT_MAX_SCORE_BYTES);
  ck_assert_uint_gt((fit + 1) * N * sizeof(float), SERVE_FLOAT_MAX_SCORE_BYTES);
  ck_assert_uint_eq(serve_batch_capacity(&fl, fit), fit);
  ck_assert_uint_eq(serve_batch_capacity(&fl, fit + 1), fit);
  ck_assert_uint_eq(serve_batch_capacity(&fl, 5), 5);
  ck_assert_uint_eq(serve_batch_capacity(&fl, 0), 1);
  /* the int8 pass has no score buffer */
  ck_assert_uint_eq(serve_batch_capacity(&q8, (size_t)1 << 30), (size_t)1 << 30);
  ck_assert_uint_eq(serve_batch_capacity(&q8, 0), 1);
  /* serve_batch_new holds to it */
  const rec_query_t q = {.personalize = 0, .count = 3};
  const rec_query_t **qs = malloc((fit + 1) * sizeof *qs);
  for (size_t j = 0; j <= fit; j++)
    qs[j] = &q;
  serve_batch_t *b = (serve_batch_t *)qs; /* must be reset */
  ck_assert_int_eq(serve_batch_new(&fl, qs, fit + 1, 1, &b), RECD_EINVAL);
  ck_assert_ptr_null(b);
  ck_assert_int_eq(serve_batch_new(&fl, qs, fit, 1, &b), 0);
  serve_batch_free(b);
  ck_assert_int_eq(serve_batch_new(&q8, qs, fit + 1, 1, &b), 0);
  serve_batch_free(b);
  free(qs);
  serve_model_free(&fl);
  serve_model_free(&q8);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_model_choice) {
  char *dir;
  model_t *m = make_model(&dir, 0);
  serve_opts_t o;
  serve_opts_default(&o);
  ck_assert_int_eq(o.automatic, 1);
  ck_assert_uint_eq(o.int8_min_items, SERVE_INT8_MIN_ITEMS);
  ck_assert_uint_eq(o.int8_min_bytes, SERVE_INT8_MIN_BYTES);
  ck_assert_int_eq(o.isa, qscore_isa_default());
  serve_model_t sm;
  /* defaults: N is far below SERVE_INT8_MIN_ITEMS, its rows below
   * SERVE_INT8_MIN_BYTES */
  ck_assert_uint_lt((size_t)N * K * sizeof(float), SERVE_INT8_MIN_BYTES);
  ck_assert_int_eq(serve_model_init(&sm, m, NULL), 0);
  ck_assert_int_eq(sm.pass, SERVE_PASS_FLOAT);
  ck_assert_ptr_eq(sm.m, m);
  ck_assert(sm.pop_scale == rec_popularity_scale(m));
  ck_assert_str_eq(serve_pass_name(&sm), "float-blas");
  serve_model_free(&sm);
  const int avx2 = qscore_isa_supported(QSCORE_AVX2);
  /* int8 from int8_min_items items on, with a vector kernel */
  o.isa = QSCORE_AVX2;
  o.int8_min_items = N;
  if (avx2) {
    ck_assert_int_eq(serve_model_init(&sm, m, &o), 0);
    ck_assert_int_eq(sm.pass, SERVE_PASS_INT8);
    ck_assert_int_eq(sm.isa, QSCORE_AVX2);
    ck_assert_uint_eq(sm.q.n, N);
    ck_assert_uint_eq(sm.q.k, K);
    ck_assert_str_eq(serve_pass_name(&sm), "int8-avx2");
    serve_model_free(&sm);
  }
  if (qscore_isa_supported(QSCORE_AVX512)) { /* each kernel named as it is */
    o.isa = QSCORE_AVX512;
    ck_assert_int_eq(serve_model_init(&sm, m, &o), 0);
    ck_assert_int_eq(sm.pass, SERVE_PASS_INT8);
    ck_assert_str_eq(serve_pass_name(&sm), "int8-avx512");
    serve_model_free(&sm);
    o.isa = QSCORE_AVX2;
  }
  o.int8_min_items = N + 1;
  ck_assert_int_eq(serve_model_init(&sm, m, &o), 0);
  ck_assert_int_eq(sm.pass, SERVE_PASS_FLOAT);
  serve_model_free(&sm);
  /* or from int8_min_bytes of float rows (N x K x 4) on, fewer items */
  o.int8_min_bytes = (size_t)N * K * sizeof(float);
  if (avx2) {
    ck_assert_int_eq(serve_model_init(&sm, m, &o), 0);
    ck_assert_int_eq(sm.pass, SERVE_PASS_INT8);
    serve_model_free(&sm);
  }
  o.int8_min_bytes++;
  ck_assert_int_eq(serve_model_init(&sm, m, &o), 0);
  ck_assert_int_eq(sm.pass, SERVE_PASS_FLOAT);
  serve_model_free(&sm);
  /* never automatically with the portable kernel */
  o.isa = QSCORE_SCALAR;
  o.int8_min_items = 1;
  ck_assert_int_eq(serve_model_init(&sm, m, &o), 0);
  ck_assert_int_eq(sm.pass, SERVE_PASS_FLOAT);
  serve_model_free(&sm);
  /* forced: whatever the size; `pass` is ignored while automatic */
  o.automatic = 0;
  o.pass = SERVE_PASS_INT8;
  o.int8_min_items = N + 1;
  ck_assert_int_eq(serve_model_init(&sm, m, &o), 0);
  ck_assert_int_eq(sm.pass, SERVE_PASS_INT8);
  ck_assert_str_eq(serve_pass_name(&sm), "int8-scalar");
  serve_model_free(&sm);
  o.isa = QSCORE_AVX2;
  o.pass = SERVE_PASS_FLOAT;
  o.int8_min_items = 1;
  ck_assert_int_eq(serve_model_init(&sm, m, &o), 0);
  ck_assert_int_eq(sm.pass, SERVE_PASS_FLOAT);
  ck_assert_str_eq(serve_pass_name(&sm), "float-blas");
  serve_model_free(&sm);
  o.pass = SERVE_PASS_INT8;
  ck_assert_int_eq(serve_model_init(&sm, m, &o), avx2 ? 0 : RECD_EINVAL);
  if (avx2)
    serve_model_free(&sm);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

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

START_TEST(test_set_vector) {
  /* Given vectors: personalized, nothing folded in, and the exact top of
   * x . y_i (rec_score_exact, plus the preference) after the filters, bit
   * for bit, with every pass; the vector a fold-in gives yields the
   * folded customer's own answer. */
  char *dir;
  model_t *m = make_model(&dir, 1);
  const float *Y = model_item_factors(m);
  const uint32_t st = model_stride(m), *cat = model_item_categories(m);
  enum { B = 7 };
  float xs[B * K];
  tu_randn(xs, B * K, 41, 1.0f);
  for (int a = 0; a < K; a++)
    xs[a] = 1.0f; /* customer 0: the near-tied items */
  uint32_t excl[2] = {5, 700}, pcat[1] = {3};
  float pval[1] = {0.25f};
  rec_query_t q[B];
  const rec_query_t *qs[B];
  for (int j = 0; j < B; j++) {
    q[j] = (rec_query_t){.exclude = excl, .n_exclude = 2, .pref_cat = pcat, .pref_val = pval,
                         .n_pref = (size_t)(j % 2), .count = 5 + 6 * (size_t)j,
                         .offset = (size_t)j % 3, .with_reasons = j == 3};
    qs[j] = &q[j];
  }
  rec_ws_t ws[2];
  rec_ws_init(&ws[0]);
  rec_ws_init(&ws[1]);
  static cand_t c[N];
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, m, way))
      continue;
    split_t s;
    split_one(&s);
    serve_batch_t *b = run_phased(&sm, qs, B, &s, ws, xs);
    ck_assert_uint_eq(serve_batch_n_rows(b), B);
    for (int j = 0; j < B; j++) {
      const serve_answer_t *a = serve_batch_answer(b, (size_t)j);
      ck_assert_int_eq(a->rc, 0);
      ck_assert_int_eq(a->personalized, 1);
      ck_assert_uint_eq(a->n_used, 0);
      size_t n = 0;
      for (uint32_t i = 0; i < N; i++) {
        if (i == excl[0] || i == excl[1])
          continue;
        float sc = rec_score_exact(xs + j * K, Y + (size_t)i * st, K);
        if (q[j].n_pref && cat[i] == pcat[0])
          sc += pval[0] * model_meta(m)->score_scale;
        c[n++] = (cand_t){sc, i};
      }
      qsort(c, n, sizeof *c, cmp_cand);
      ck_assert_uint_eq(a->n, q[j].count);
      for (size_t t = 0; t < a->n; t++) {
        ck_assert_msg(a->items[t] == c[q[j].offset + t].i, "%s customer %d pos %zu: %u vs %u",
                      tu_serve_way_name(way), j, t, a->items[t], c[q[j].offset + t].i);
        ck_assert(memcmp(&a->scores[t], &c[q[j].offset + t].s, sizeof(float)) == 0);
      }
      /* reasons need a fold-in: none here */
      ck_assert_int_eq(a->reasons != NULL, j == 3);
      for (size_t t = 0; j == 3 && t < a->n; t++)
        ck_assert_int_eq(a->reasons[t], -1);
    }
    serve_batch_free(b);
    /* the vector a fold-in gives: the folded customer's answer */
    uint32_t hist[4] = {3, 99, 500, 996};
    float hw[4] = {1, 2, 1, 4}, x[K];
    rec_query_t fq = {.hist = hist, .hist_w = hw, .n_hist = 4, .personalize = 1,
                      .exclude_history = 1, .count = 12};
    foldin_ws_t fw;
    ck_assert_int_eq(foldin_ws_init(&fw, K), 0);
    ck_assert_int_eq(foldin_solve(Y, st, model_gram(m), model_params(m), hist, hw, 4, 0, x,
                                  NULL, &fw),
                     0);
    foldin_ws_free(&fw);
    const rec_query_t *fqs[1] = {&fq};
    b = run_phased(&sm, fqs, 1, &s, ws, x);
    serve_answer_t one;
    ck_assert_int_eq(serve_one(&sm, &fq, &ws[0], &one), 0);
    ck_assert_uint_eq(one.n_used, 4);
    one.n_used = 0; /* the one difference */
    same_answer(serve_batch_answer(b, 0), &one, tu_serve_way_name(way), 0);
    serve_answer_free(&one);
    serve_batch_free(b);
    serve_model_free(&sm);
  }
  rec_ws_free(&ws[0]);
  rec_ws_free(&ws[1]);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* ---- phases on two threads ---- */

typedef struct worker {
  serve_batch_t *b;
  int phase; /* 1 fold, 3 scan, 4 finish */
  unsigned idx;
  rec_ws_t ws;
  int rc;
} worker_t;

/* Thread idx of 2: every other customer or row, or scan part idx (its
 * half of the items, in two ranges). */
static void worker_run(void *arg) {
  worker_t *w = arg;
  serve_batch_t *b = w->b;
  const uint32_t n = serve_batch_n_items(b), half = n / 16 * 8, quarter = n / 32 * 8;
  switch (w->phase) {
  case 1:
    for (size_t j = w->idx; j < serve_batch_size(b); j += 2)
      serve_batch_fold(b, j, &w->ws);
    break;
  case 3:
    if (w->idx == 0) {
      w->rc = serve_batch_scan(b, 0, quarter, half);
      if (w->rc == 0)
        w->rc = serve_batch_scan(b, 0, 0, quarter);
    } else {
      w->rc = serve_batch_scan(b, 1, half, n);
    }
    break;
  case 4:
    for (size_t r = w->idx; r < serve_batch_n_rows(b); r += 2)
      serve_batch_finish(b, r, &w->ws);
    break;
  }
}

START_TEST(test_threads) {
  /* The phases shared by two threads, as the daemon's workers share a
   * batch (joined between phases: the barriers): serve_one's answers. */
  char *dir;
  model_t *m = make_model(&dir, 1);
  rng_t r;
  rng_seed(&r, 55);
  enum { B = 9 };
  tq_t tq[B];
  const rec_query_t *qs[B];
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, m, way))
      continue;
    for (int trial = 0; trial < 4; trial++) {
      for (size_t j = 0; j < B; j++) {
        tq_random(&tq[j], &r);
        qs[j] = &tq[j].q;
      }
      worker_t w[2];
      serve_batch_t *b;
      ck_assert_int_eq(serve_batch_new(&sm, qs, B, 2, &b), 0);
      for (unsigned t = 0; t < 2; t++) {
        w[t] = (worker_t){.b = b, .idx = t};
        rec_ws_init(&w[t].ws);
      }
      for (int phase = 1; phase <= 4; phase++) {
        if (phase == 2) {
          ck_assert_int_eq(serve_batch_rows(b), 0);
          continue;
        }
        uv_thread_t th[2];
        for (unsigned t = 0; t < 2; t++) {
          w[t].phase = phase;
          ck_assert_int_eq(uv_thread_create(&th[t], worker_run, &w[t]), 0);
        }
        for (unsigned t = 0; t < 2; t++) {
          ck_assert_int_eq(uv_thread_join(&th[t]), 0);
          ck_assert_int_eq(w[t].rc, 0);
        }
      }
      for (size_t j = 0; j < B; j++) {
        serve_answer_t one;
        serve_one(&sm, qs[j], &w[0].ws, &one);
        same_answer(serve_batch_answer(b, j), &one, tu_serve_way_name(way), j);
        serve_answer_free(&one);
      }
      serve_batch_free(b);
      rec_ws_free(&w[0].ws);
      rec_ws_free(&w[1].ws);
    }
    serve_model_free(&sm);
  }
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_misuse_is_an_error) {
  /* Mistakes in driving the phases fail the answers instead of returning
   * answers that look right. */
  char *dir;
  model_t *m = make_model(&dir, 0);
  uint32_t hist[2] = {4, 8};
  float hw[2] = {1, 1};
  const rec_query_t q = {.hist = hist, .hist_w = hw, .n_hist = 2, .personalize = 1,
                         .count = 5};
  const rec_query_t *qs[2] = {&q, &q};
  rec_ws_t ws;
  rec_ws_init(&ws);
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, m, way))
      continue;
    serve_batch_t *b = NULL;
    ck_assert_int_eq(serve_batch_new(&sm, qs, 2, 0, &b), RECD_EINVAL);
    ck_assert_int_eq(serve_batch_new(&sm, qs, 2, SERVE_MAX_PARTS + 1, &b), RECD_EINVAL);
    /* a batch of nobody is fine */
    ck_assert_int_eq(serve_batch_new(&sm, NULL, 0, 1, &b), 0);
    ck_assert_int_eq(serve_batch_run(b, &ws), 0);
    ck_assert_uint_eq(serve_batch_n_rows(b), 0);
    serve_batch_free(b);
    /* bad ranges are refused and fail the rows; so does a scan that
     * leaves items out */
    for (int mistake = 0; mistake < 4; mistake++) {
      ck_assert_int_eq(serve_batch_new(&sm, qs, 2, 2, &b), 0);
      serve_batch_fold(b, 0, &ws);
      serve_batch_fold(b, 1, &ws);
      ck_assert_int_eq(serve_batch_rows(b), 0);
      ck_assert_uint_eq(serve_batch_n_rows(b), 2);
      ck_assert_int_eq(serve_batch_scan(b, 0, 0, 504), 0);
      switch (mistake) {
      case 0: /* lo not a multiple of 8 */
        ck_assert_int_eq(serve_batch_scan(b, 1, 500, N), RECD_EINVAL);
        break;
      case 1: /* past the end */
        ck_assert_int_eq(serve_batch_scan(b, 1, 504, N + 1), RECD_EINVAL);
        break;
      case 2: /* no such part (the items are then missing) */
        ck_assert_int_eq(serve_batch_scan(b, 2, 504, N), RECD_EINVAL);
        break;
      case 3: /* the same items twice, others never */
        ck_assert_int_eq(serve_batch_scan(b, 1, 0, N - 504), 0);
        ck_assert_int_eq(serve_batch_scan(b, 1, 0, 8), 0);
        break;
      }
      serve_batch_finish(b, 0, &ws);
      serve_batch_finish(b, 1, &ws);
      ck_assert_msg(serve_batch_answer(b, 0)->rc == RECD_EINVAL, "%s mistake %d",
                    tu_serve_way_name(way), mistake);
      ck_assert_int_eq(serve_batch_answer(b, 1)->rc, RECD_EINVAL);
      serve_batch_free(b);
    }
    /* rows never finished stay unanswered */
    ck_assert_int_eq(serve_batch_new(&sm, qs, 2, 1, &b), 0);
    serve_batch_fold(b, 0, &ws);
    serve_batch_fold(b, 1, &ws);
    ck_assert_int_eq(serve_batch_rows(b), 0);
    ck_assert_int_eq(serve_batch_scan(b, 0, 0, N), 0);
    serve_batch_finish(b, 1, &ws);
    ck_assert_int_eq(serve_batch_answer(b, 0)->rc, RECD_EINVAL);
    ck_assert_int_eq(serve_batch_answer(b, 1)->rc, 0);
    serve_batch_free(b);
    serve_model_free(&sm);
  }
  rec_ws_free(&ws);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

static Suite *serve_suite(void) {
  Suite *s = suite_create("serve");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_batch_equals_one);
  tcase_add_test(tc, test_split_scan_equals_one_part);
  tcase_add_test(tc, test_mixed_batch);
  tcase_add_test(tc, test_capacity);
  tcase_add_test(tc, test_model_choice);
  tcase_add_test(tc, test_set_vector);
  tcase_add_test(tc, test_threads);
  tcase_add_test(tc, test_misuse_is_an_error);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(serve_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
