/* test_recommend.c - the business rules of recommend.c against brute force.
 *
 * The fold-in itself is checked against a dense solve in test_foldin.c;
 * here x comes from foldin_solve() and everything after it (scores,
 * preference adjustment, filters, paging, reasons, RANK order) is recomputed
 * naively in double and compared. A RECOMMEND is served as the daemon
 * serves it, through serve.h (serve_one), with each first pass forced: the
 * float pass, and the int8 pass with every kernel the CPU runs. How
 * batches and split scans compare with serve_one is test_serve.c's. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"
#include "recd/rng.h"
#include "recd/score.h"
#include "recd/serve.h"
#include "testutil.h"

enum { N = 300, K = 8, NC = 5 };

/* clustered 1: items 0..99 are one row plus relative noise of 1e-6, so
 * their scores differ by about the float rounding of a dot product: the
 * adversarial case for a first pass with approximate scores.
 * clustered 2: see below, the adversarial case for the int8 first pass. */
static model_t *make_model_ex(char **dir_out, int clustered) {
  char *dir = tu_mkdtemp();
  static float Y[N * K], pop[N];
  static uint32_t cat[N], lens[N], clens[NC];
  static char idbuf[N][8], cbuf[NC][8];
  static const char *ids[N], *cnames[NC];
  tu_randn(Y, N * K, 5, 0.4f);
  for (int i = 24; i < N; i += 25) /* exact ties: duplicated items */
    memcpy(Y + (size_t)i * K, Y + (size_t)(i - 1) * K, K * sizeof *Y);
  if (clustered == 2) {
    /* items 0..99: random directions whose score for the query x0 (all
     * ones) is 1 + 1e-5 * (a shuffled rank): exactly ordered, but far
     * closer together than the int8 first pass can tell apart */
    for (int i = 0; i < 100; i++) {
      float *y = Y + (size_t)i * K;
      double dot = 0;
      for (int a = 0; a < K; a++)
        dot += y[a];
      double t = 1.0 + 1e-5 * (double)((i * 37) % 100);
      for (int a = 0; a < K; a++)
        y[a] = (float)(y[a] + (t - dot) / K);
    }
  } else if (clustered) {
    rng_t cr;
    rng_seed(&cr, 3);
    for (int i = 1; i < 100; i++)
      for (int a = 0; a < K; a++)
        Y[(size_t)i * K + a] = Y[a] * (float)(1.0 + 1e-6 * rng_normal(&cr));
  }
  rng_t r;
  rng_seed(&r, 9);
  for (int i = 0; i < N; i++) {
    pop[i] = (float)rng_below(&r, 50); /* many popularity ties */
    cat[i] = (uint32_t)(i % (NC + 1));  /* 0 = uncategorised */
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

static model_t *make_model(char **dir_out) {
  return make_model_ex(dir_out, 0);
}

typedef struct cand {
  double s;
  uint32_t i;
} cand_t;

static int cmp_cand(const void *a, const void *b) {
  const cand_t *x = a, *y = b;
  if (x->s != y->s)
    return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* The expected answer of q, from x (NULL = popularity). */
static size_t brute(const model_t *m, const rec_query_t *q, const float *x, float scale,
                    uint32_t *out, double *out_s) {
  static cand_t c[N];
  size_t n = 0;
  const float *Y = model_item_factors(m);
  const uint32_t *cat = model_item_categories(m);
  for (uint32_t i = 0; i < N; i++) {
    int drop = 0;
    for (size_t j = 0; j < q->n_exclude; j++)
      drop |= q->exclude[j] == i;
    for (size_t j = 0; q->exclude_history && j < q->n_hist; j++)
      drop |= q->hist[j] == i;
    if (q->unavailable && (q->unavailable[i / 64] >> (i % 64) & 1))
      drop = 1;
    if (q->category_filter) {
      int in = 0;
      for (size_t j = 0; j < q->n_categories; j++)
        in |= q->categories[j] == cat[i];
      drop |= !in;
    }
    double s;
    if (x) {
      s = 0;
      for (int a = 0; a < K; a++)
        s += (double)x[a] * Y[(size_t)i * model_stride(m) + a];
    } else {
      s = model_popularity(m)[i];
    }
    for (size_t j = 0; j < q->n_pref; j++)
      if (q->pref_cat[j] == cat[i]) {
        if (q->pref_val[j] <= -1)
          drop = 1;
        s += q->pref_val[j] * scale;
      }
    if (!drop)
      c[n++] = (cand_t){(float)s, i};
  }
  qsort(c, n, sizeof *c, cmp_cand);
  size_t got = 0;
  for (size_t j = q->offset; j < n && got < q->count; j++, got++) {
    out[got] = c[j].i;
    out_s[got] = c[j].s;
  }
  return got;
}

static void check_same(const serve_answer_t *res, const uint32_t *want, const double *ws,
                       size_t n) {
  ck_assert_uint_eq(res->n, n);
  for (size_t j = 0; j < n; j++) {
    /* scores agree to float rounding of a K-term dot product */
    ck_assert_msg(fabs(res->scores[j] - ws[j]) < 1e-4, "pos %zu: %g vs %g", j,
                  (double)res->scores[j], ws[j]);
    /* ids agree unless two expected scores are within rounding */
    if (res->items[j] != want[j])
      ck_assert_msg(fabs(ws[j] - res->scores[j]) < 1e-4 && j + 1 < n &&
                        fabs(ws[j] - ws[j + 1]) < 1e-4,
                    "pos %zu: item %u vs %u", j, res->items[j], want[j]);
  }
}

START_TEST(test_rules_match_brute_force) {
  char *dir;
  model_t *m = make_model(&dir);
  float pop_scale = rec_popularity_scale(m);
  serve_model_t sm[TU_SERVE_WAYS];
  int have[TU_SERVE_WAYS];
  for (int way = 0; way < TU_SERVE_WAYS; way++)
    have[way] = tu_serve_way(&sm[way], m, way);
  rec_ws_t ws;
  rec_ws_init(&ws);
  foldin_ws_t fw;
  ck_assert_int_eq(foldin_ws_init(&fw, K), 0);
  rng_t r;
  rng_seed(&r, 77);
  for (int trial = 0; trial < 300; trial++) {
    uint32_t hist[20], excl[5], cats[3], pcat[3];
    float hw[20], pval[3];
    uint64_t unav[(N + 63) / 64] = {0};
    size_t nh = rng_below(&r, 20), ne = rng_below(&r, 5), nc = rng_below(&r, 3),
           np = rng_below(&r, 3);
    for (size_t j = 0; j < nh; j++) {
      hist[j] = (uint32_t)rng_below(&r, N);
      hw[j] = 1.0f + (float)rng_below(&r, 4);
    }
    for (size_t j = 0; j < ne; j++)
      excl[j] = (uint32_t)rng_below(&r, N);
    for (size_t j = 0; j < nc; j++)
      cats[j] = 1 + (uint32_t)rng_below(&r, NC);
    for (size_t j = 0; j < np; j++) {
      pcat[j] = 1 + (uint32_t)rng_below(&r, NC);
      pval[j] = rng_below(&r, 4) == 0 ? -1.0f : (float)(rng_uniform(&r) * 2 - 1);
    }
    /* one preference per category, as a HASH guarantees */
    for (size_t j = 1; j < np; j++)
      if (pcat[j] == pcat[0])
        np = 1;
    for (int j = 0; j < 10; j++)
      unav[rng_below(&r, N / 64)] |= 1ull << rng_below(&r, 64);
    rec_query_t q = {.hist = hist, .hist_w = hw, .n_hist = nh, .history_limit = 15,
                     .personalize = rng_below(&r, 5) != 0, .exclude_history = 1,
                     .exclude = excl, .n_exclude = ne, .categories = cats, .n_categories = nc,
                     .category_filter = nc > 0, .pref_cat = pcat, .pref_val = pval, .n_pref = np,
                     .unavailable = trial % 2 ? unav : NULL, .offset = rng_below(&r, 6),
                     .count = rng_below(&r, 25)};
    int personal = q.personalize && nh > 0;
    float x[K];
    if (personal)
      ck_assert_int_eq(foldin_solve(model_item_factors(m), model_stride(m), model_gram(m),
                                    model_params(m), hist, hw, nh, 15, x, NULL, &fw), 0);
    uint32_t want[32];
    double want_s[32];
    size_t n = brute(m, &q, personal ? x : NULL,
                     personal ? model_meta(m)->score_scale : pop_scale, want, want_s);
    for (int way = 0; way < TU_SERVE_WAYS; way++) {
      if (!have[way])
        continue;
      serve_answer_t res;
      ck_assert_int_eq(serve_one(&sm[way], &q, &ws, &res), 0);
      ck_assert_msg(res.personalized == personal, "%s trial %d", tu_serve_way_name(way), trial);
      check_same(&res, want, want_s, n);
      serve_answer_free(&res);
    }
  }
  for (int way = 0; way < TU_SERVE_WAYS; way++)
    if (have[way])
      serve_model_free(&sm[way]);
  foldin_ws_free(&fw);
  rec_ws_free(&ws);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_reasons_match_dense_formula) {
  /* Hu, Koren & Volinsky (2008) sec. 5: s_i = sum_j c_j y_i^T W y_j with
   * W = (Y^T C Y + lambda I)^-1; the reason is the j with the largest term.
   * W is computed here by the reference solver (testutil) in double. */
  char *dir;
  model_t *m = make_model(&dir);
  rec_ws_t ws;
  rec_ws_init(&ws);
  const float *Y = model_item_factors(m);
  const params_t *p = model_params(m);
  const uint32_t st = model_stride(m);
  uint32_t hist[6] = {3, 50, 77, 120, 200, 299};
  float hw[6] = {1, 3, 2, 5, 1, 2};
  double A[K * K] = {0}, Id[K * K] = {0}, W[K * K];
  for (uint32_t i = 0; i < N; i++)
    for (int a = 0; a < K; a++)
      for (int b = 0; b < K; b++)
        A[a * K + b] += (double)Y[i * st + a] * Y[i * st + b];
  double c[6];
  for (int j = 0; j < 6; j++) {
    c[j] = params_confidence(p, hw[j]);
    for (int a = 0; a < K; a++)
      for (int b = 0; b < K; b++)
        A[a * K + b] += (c[j] - 1) * Y[hist[j] * st + a] * Y[hist[j] * st + b];
  }
  for (int a = 0; a < K; a++) {
    A[a * K + a] += params_lambda(p, 6);
    Id[a * K + a] = 1;
  }
  tu_solve(A, K, Id, K, W);
  for (int way = 0; way < TU_SERVE_WAYS; way++) {
    serve_model_t sm;
    if (!tu_serve_way(&sm, m, way))
      continue;
    rec_query_t q = {.hist = hist, .hist_w = hw, .n_hist = 6, .history_limit = 0,
                     .personalize = 1, .exclude_history = 1, .count = 20, .with_reasons = 1};
    serve_answer_t res;
    ck_assert_int_eq(serve_one(&sm, &q, &ws, &res), 0);
    ck_assert_uint_eq(res.n, 20);
    ck_assert_uint_eq(res.n_used, 6);
    ck_assert_ptr_nonnull(res.reasons);
    for (size_t t = 0; t < res.n; t++) {
      uint32_t i = res.items[t];
      double best = -INFINITY, second = -INFINITY;
      int arg = -1;
      for (int j = 0; j < 6; j++) {
        double v = 0;
        for (int a = 0; a < K; a++)
          for (int b = 0; b < K; b++)
            v += Y[i * st + a] * W[a * K + b] * Y[hist[j] * st + b];
        v *= c[j];
        if (v > best) {
          second = best;
          best = v;
          arg = j;
        } else if (v > second) {
          second = v;
        }
      }
      if (best - second > 1e-4) /* a clear winner must be the one reported */
        ck_assert_msg(res.reasons[t] == arg, "%s pos %zu: reason %d vs %d",
                      tu_serve_way_name(way), t, res.reasons[t], arg);
    }
    serve_answer_free(&res);
    /* not personalized: no reasons */
    q.personalize = 0;
    ck_assert_int_eq(serve_one(&sm, &q, &ws, &res), 0);
    ck_assert_int_eq(res.personalized, 0);
    ck_assert_uint_eq(res.n, 20);
    ck_assert_ptr_nonnull(res.reasons);
    for (size_t t = 0; t < res.n; t++)
      ck_assert_int_eq(res.reasons[t], -1);
    serve_answer_free(&res);
    serve_model_free(&sm);
  }
  rec_ws_free(&ws);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_rank_orders_candidates) {
  char *dir;
  model_t *m = make_model(&dir);
  rec_ws_t ws;
  rec_ws_init(&ws);
  uint32_t hist[3] = {1, 2, 3};
  float hw[3] = {1, 1, 1};
  uint32_t pcat[1] = {2};
  float pval[1] = {-1};
  rec_query_t q = {.hist = hist, .hist_w = hw, .n_hist = 3, .personalize = 1,
                   .pref_cat = pcat, .pref_val = pval, .n_pref = 1};
  /* item 2 and 8 are category 2 (i % 6), removed by the preference */
  int64_t cand[7] = {10, -1, 2, 40, 8, -1, 33};
  uint32_t order[7];
  float sc[7];
  int pers;
  ck_assert_int_eq(rec_rank(m, 1.0f, &q, cand, 7, &ws, order, sc, &pers), 0);
  ck_assert_int_eq(pers, 1);
  /* scored first (descending), then removed (given order), then unknown */
  float x[K];
  foldin_ws_t fw;
  ck_assert_int_eq(foldin_ws_init(&fw, K), 0);
  ck_assert_int_eq(foldin_solve(model_item_factors(m), model_stride(m), model_gram(m),
                                model_params(m), hist, hw, 3, 0, x, NULL, &fw), 0);
  ck_assert_uint_eq(order[3], 2);
  ck_assert_uint_eq(order[4], 4);
  ck_assert_uint_eq(order[5], 1);
  ck_assert_uint_eq(order[6], 5);
  for (int j = 0; j < 3; j++) {
    double s = 0;
    for (int a = 0; a < K; a++)
      s += (double)x[a] * model_item_factors(m)[cand[order[j]] * model_stride(m) + a];
    ck_assert_msg(fabs(s - sc[j]) < 1e-4, "%g vs %g", s, (double)sc[j]);
    if (j > 0)
      ck_assert(sc[j - 1] >= sc[j]);
  }
  foldin_ws_free(&fw);
  rec_ws_free(&ws);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_batched_halves_equal_single) {
  /* The building blocks by hand, as a batch uses them: rec_prepare for
   * several customers, one sgemm, rec_select per row must give what
   * serve_one gives for each alone (its float pass is one sgemv). sgemm
   * and sgemv may sum in different orders, so scores agree to float
   * rounding and ids up to near-ties (check_same). */
  char *dir;
  model_t *m = make_model(&dir);
  float pop_scale = rec_popularity_scale(m);
  serve_model_t sm;
  ck_assert_int_eq(tu_serve_way(&sm, m, 0), 1);
  enum { B = 6 };
  const uint32_t st = model_stride(m);
  float *X = calloc((size_t)B * st, sizeof *X), *S = malloc((size_t)B * N * sizeof *S);
  uint32_t hist[B][8];
  float hw[B][8];
  rec_query_t q[B];
  int pers[B];
  size_t used[B];
  rec_ws_t ws;
  rec_ws_init(&ws);
  rng_t r;
  rng_seed(&r, 5);
  for (int b = 0; b < B; b++) {
    for (int j = 0; j < 8; j++) {
      hist[b][j] = (uint32_t)rng_below(&r, N);
      hw[b][j] = 1.0f + (float)rng_below(&r, 3);
    }
    q[b] = (rec_query_t){.hist = hist[b], .hist_w = hw[b], .n_hist = (size_t)(b == 3 ? 0 : 8),
                         .personalize = b != 4, .exclude_history = 1, .count = 15,
                         .offset = (size_t)b};
    ck_assert_int_eq(rec_prepare(m, &q[b], &ws, X + (size_t)b * st, &pers[b], &used[b]), 0);
  }
  ck_assert_int_eq(pers[3], 0); /* no history */
  ck_assert_int_eq(pers[4], 0); /* opted out */
  score_items_batch(model_item_factors(m), st, N, K, X, st, B, S, N);
  for (int b = 0; b < B; b++) {
    rec_result_t got;
    ck_assert_int_eq(rec_select(m, pop_scale, &q[b], pers[b] ? S + (size_t)b * N : NULL,
                                pers[b] ? X + (size_t)b * st : NULL, 0.0f, used[b], &ws, &got),
                     0);
    uint32_t gi[32];
    double gs[32];
    size_t n = got.n;
    for (size_t j = 0; j < n; j++) {
      gi[j] = got.items[j];
      gs[j] = got.scores[j];
    }
    serve_answer_t want;
    ck_assert_int_eq(serve_one(&sm, &q[b], &ws, &want), 0);
    ck_assert_int_eq(want.personalized, pers[b]);
    ck_assert_uint_eq(want.n_used, used[b]);
    check_same(&want, gi, gs, n);
    serve_answer_free(&want);
  }
  serve_model_free(&sm);
  free(X);
  free(S);
  rec_ws_free(&ws);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_answer_independent_of_first_pass_rounding) {
  /* Whatever rounding the first pass had (within the float error of a
   * k-term dot product), the personalized answer must be bit-identical:
   * perturb every first-pass score by up to k*u*|x||y_i| and compare with
   * the answer from unperturbed exact scores. Many ties are planted by
   * duplicating item rows. */
  char *dir;
  model_t *m = make_model_ex(&dir, 1);
  rec_ws_t ws;
  rec_ws_init(&ws);
  const uint32_t st = model_stride(m);
  const float *Y = model_item_factors(m);
  float *exact = malloc(N * sizeof *exact), *noisy = malloc(N * sizeof *noisy);
  float x[K];
  rng_t r;
  rng_seed(&r, 11);
  for (int trial = 0; trial < 200; trial++) {
    /* half the trials aim at the near-tied cluster */
    for (int a = 0; a < K; a++)
      x[a] = trial % 2 ? Y[a] * (float)(1 + 0.1 * rng_normal(&r)) : (float)rng_normal(&r);
    double xn = 0;
    for (int a = 0; a < K; a++)
      xn += (double)x[a] * x[a];
    for (uint32_t i = 0; i < N; i++) {
      exact[i] = rec_score_exact(x, Y + (size_t)i * st, K);
      double bound = K * 0x1p-24 * sqrt(xn) * model_item_norms(m)[i];
      noisy[i] = exact[i] + (float)((rng_uniform(&r) * 2 - 1) * bound);
    }
    uint32_t pcat[1] = {1 + (uint32_t)(trial % NC)};
    float pval[1] = {0.3f};
    rec_query_t q = {.personalize = 1, .count = 1 + (size_t)(trial % 30),
                     .offset = (size_t)(trial % 4), .pref_cat = pcat, .pref_val = pval,
                     .n_pref = (size_t)(trial % 3 == 0)};
    rec_result_t a, b;
    ck_assert_int_eq(rec_select(m, 1.0f, &q, exact, x, 0.0f, 0, &ws, &a), 0);
    uint32_t ai[64];
    float as[64];
    memcpy(ai, a.items, a.n * sizeof *ai);
    memcpy(as, a.scores, a.n * sizeof *as);
    size_t an = a.n;
    ck_assert_int_eq(rec_select(m, 1.0f, &q, noisy, x, 0.0f, 0, &ws, &b), 0);
    ck_assert_uint_eq(b.n, an);
    ck_assert_int_eq(memcmp(b.items, ai, an * sizeof *ai), 0);
    ck_assert_int_eq(memcmp(b.scores, as, an * sizeof *as), 0);
  }
  free(exact);
  free(noisy);
  rec_ws_free(&ws);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_int8_first_pass_is_exact) {
  /* The int8 first pass with its error bound gives the float32 answer
   * bit for bit, also on the near-tied cluster and with preferences. */
  char *dir;
  model_t *m = make_model_ex(&dir, 2);
  rec_ws_t ws;
  rec_ws_init(&ws);
  const uint32_t st = model_stride(m);
  const float *Y = model_item_factors(m);
  qmat_t qm;
  ck_assert_int_eq(qmat_build(&qm, Y, st, N, K), 0);
  int8_t *scratch = malloc(qquery_bytes(&qm));
  float *fs = malloc(N * sizeof *fs), *qs = malloc(N * sizeof *qs);
  float x[K];
  rng_t r;
  rng_seed(&r, 21);
  for (int trial = 0; trial < 200; trial++) {
    for (int a = 0; a < K; a++)
      x[a] = trial % 2 ? 1.0f : (float)rng_normal(&r);
    score_items(Y, st, N, K, x, fs);
    float err = qscore_items(&qm, x, qs, scratch);
    uint32_t pcat[1] = {1 + (uint32_t)(trial % NC)};
    float pval[1] = {trial % 5 == 0 ? -1.0f : 0.4f};
    rec_query_t q = {.personalize = 1, .count = 1 + (size_t)(trial % 40),
                     .offset = (size_t)(trial % 3), .pref_cat = pcat, .pref_val = pval,
                     .n_pref = (size_t)(trial % 2)};
    rec_result_t a, b;
    ck_assert_int_eq(rec_select(m, 1.0f, &q, fs, x, 0.0f, 0, &ws, &a), 0);
    uint32_t ai[64];
    float as[64];
    size_t an = a.n;
    memcpy(ai, a.items, an * sizeof *ai);
    memcpy(as, a.scores, an * sizeof *as);
    ck_assert_int_eq(rec_select(m, 1.0f, &q, qs, x, err, 0, &ws, &b), 0);
    ck_assert_uint_eq(b.n, an);
    ck_assert_int_eq(memcmp(b.items, ai, an * sizeof *ai), 0);
    ck_assert_int_eq(memcmp(b.scores, as, an * sizeof *as), 0);
  }
  free(fs);
  free(qs);
  free(scratch);
  qmat_free(&qm);
  rec_ws_free(&ws);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_fused_pass_equals_float_path) {
  /* The int8 pass (scan + collector + exact re-scoring) gives the float
   * pass's answer bit for bit, reasons included, with every rule, on the
   * random model and on both adversarial ones, with both kernels. */
  for (int variant = 0; variant <= 2; variant++) {
    char *dir;
    model_t *m = make_model_ex(&dir, variant);
    serve_model_t sm[TU_SERVE_WAYS];
    int have[TU_SERVE_WAYS];
    for (int way = 0; way < TU_SERVE_WAYS; way++)
      have[way] = tu_serve_way(&sm[way], m, way);
    ck_assert(have[0] && have[1]); /* float and the portable kernel: always */
    rec_ws_t wa, wb;
    rec_ws_init(&wa);
    rec_ws_init(&wb);
    rng_t r;
    rng_seed(&r, 300 + (uint64_t)variant);
    for (int trial = 0; trial < 200; trial++) {
      uint32_t hist[20], excl[5], cats[2], pcat[1] = {1 + (uint32_t)rng_below(&r, NC)};
      float hw[20], pval[1] = {rng_below(&r, 4) == 0 ? -1.0f : (float)rng_uniform(&r) - 0.5f};
      uint64_t unav[(N + 63) / 64] = {0};
      size_t nh = 1 + rng_below(&r, 19), ne = rng_below(&r, 5), nc = rng_below(&r, 2);
      for (size_t j = 0; j < nh; j++) {
        hist[j] = (uint32_t)rng_below(&r, N);
        hw[j] = 1.0f + (float)rng_below(&r, 4);
      }
      for (size_t j = 0; j < ne; j++)
        excl[j] = (uint32_t)rng_below(&r, N);
      for (size_t j = 0; j < nc; j++)
        cats[j] = 1 + (uint32_t)rng_below(&r, NC);
      for (int j = 0; j < 10; j++)
        unav[rng_below(&r, N / 64)] |= 1ull << rng_below(&r, 64);
      rec_query_t q = {.hist = hist, .hist_w = hw, .n_hist = nh, .history_limit = 15,
                       .personalize = 1, .exclude_history = trial % 2,
                       .exclude = excl, .n_exclude = ne, .categories = cats,
                       .n_categories = nc, .category_filter = nc > 0, .pref_cat = pcat,
                       .pref_val = pval, .n_pref = (size_t)(trial % 3 == 0),
                       .unavailable = trial % 4 ? unav : NULL, .offset = rng_below(&r, 4),
                       .count = rng_below(&r, 60), .with_reasons = trial % 5 == 0};
      serve_answer_t a, b;
      ck_assert_int_eq(serve_one(&sm[0], &q, &wa, &a), 0);
      ck_assert_int_eq(a.personalized, 1);
      for (int way = 1; way < TU_SERVE_WAYS; way++) {
        if (!have[way])
          continue;
        ck_assert_int_eq(serve_one(&sm[way], &q, &wb, &b), 0);
        ck_assert_msg(b.n == a.n, "variant %d trial %d %s: %zu vs %zu items", variant, trial,
                      tu_serve_way_name(way), b.n, a.n);
        ck_assert_int_eq(b.personalized, 1);
        ck_assert_uint_eq(b.n_used, a.n_used);
        ck_assert_int_eq(b.reasons != NULL, a.reasons != NULL);
        if (a.n > 0) { /* memcmp of 0 bytes: nothing to compare */
          ck_assert_int_eq(memcmp(b.items, a.items, a.n * sizeof *a.items), 0);
          ck_assert_int_eq(memcmp(b.scores, a.scores, a.n * sizeof *a.scores), 0);
          if (q.with_reasons)
            ck_assert_int_eq(memcmp(b.reasons, a.reasons, a.n * sizeof *a.reasons), 0);
        }
        serve_answer_free(&b);
      }
      serve_answer_free(&a);
    }
    for (int way = 0; way < TU_SERVE_WAYS; way++)
      if (have[way])
        serve_model_free(&sm[way]);
    rec_ws_free(&wa);
    rec_ws_free(&wb);
    model_free(m);
    tu_rmtree(dir);
    free(dir);
  }
}
END_TEST

static Suite *rec_suite(void) {
  Suite *s = suite_create("recommend");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_rules_match_brute_force);
  tcase_add_test(tc, test_reasons_match_dense_formula);
  tcase_add_test(tc, test_rank_orders_candidates);
  tcase_add_test(tc, test_batched_halves_equal_single);
  tcase_add_test(tc, test_answer_independent_of_first_pass_rounding);
  tcase_add_test(tc, test_int8_first_pass_is_exact);
  tcase_add_test(tc, test_fused_pass_equals_float_path);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(rec_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
