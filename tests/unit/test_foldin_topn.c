/* test_foldin_topn.c - the fold-in's answers: the same top-N as the exact
 * ALS user step, through every way the daemon scores.
 *
 * The reference is the user step of foldin.h solved in double precision
 * for the very entries foldin_solve used (ws->idx, ws->conf: the float
 * confidences, as the trainer's exact step uses them) with lambda_u as the
 * float params_lambda gives it: the exact solution x* of the float-defined
 * system, by tu_solve (Gauss-Jordan). The daemon ranks items on
 * rec_score_exact(x, y_i), best first, ties by smaller index; the reference
 * ranking is that of x* rounded to float. For each history:
 *
 *   - x is within 2^-22 |x*| (max norm) of x*: float rounding (2^-24) and
 *     the certified solve (2^-36) leave far less; the Cholesky-only fold-in
 *     was off by up to ~1e-6 relative, which moved a top-100 now and then;
 *   - the top 10, 50 and 100 of x (history excluded) are those of x*, in
 *     the same order;
 *   - through serve_one, on the float pass and the int8 pass with every
 *     kernel this CPU runs (portable, AVX2, AVX-512 VNNI), the answer of
 *     COUNT 100 is the reference's top 100.
 *
 * Models: random Gaussian factors at k = 8, 64, 256 with histories of 1 to
 * 500 items (both confidence modes, with and without frequency-scaled
 * regularisation), and a model trained by als_train on planted clusters,
 * folding its own users' training histories back in. Also: the Cholesky
 * fallback (a history longer than the eigenbasis path takes), many threads
 * solving against one model at once (bit-identical to one thread), more
 * models than the registry keeps (evicted and rebuilt: the same bits), and
 * a Gram matrix changed in place under the same pointers.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/als.h"
#include "recd/dataset.h"
#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/recommend.h"
#include "recd/rng.h"
#include "recd/serve.h"
#include "testutil.h"

#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

#define TOP 100

/* A model as the fold-in sees it. */
typedef struct fm {
  const float *Y;
  size_t ldy;
  const float *G;
  params_t p;
  uint32_t N, k;
} fm_t;

/* x* for the entries of ws's last solve (n_used of them). */
static void reference(const fm_t *m, const foldin_ws_t *ws, size_t n_used, double *x) {
  const uint32_t k = m->k;
  double *A = malloc((size_t)k * k * sizeof *A), *b = calloc(k, sizeof *b);
  ck_assert(A != NULL && b != NULL);
  for (size_t i = 0; i < (size_t)k * k; i++)
    A[i] = m->G[i];
  for (size_t j = 0; j < n_used; j++) {
    const float *y = m->Y + (size_t)ws->idx[j] * m->ldy;
    const double c = ws->conf[j];
    for (uint32_t a = 0; a < k; a++) {
      b[a] += c * y[a];
      for (uint32_t d = 0; d < k; d++)
        A[(size_t)a * k + d] += (c - 1.0) * y[a] * y[d];
    }
  }
  const double lam = params_lambda(&m->p, (uint32_t)n_used);
  for (uint32_t a = 0; a < k; a++)
    A[(size_t)a * k + a] += lam;
  tu_solve(A, (int)k, b, 1, x);
  free(A);
  free(b);
}

typedef struct ranked {
  float s;
  uint32_t i;
} ranked_t;

static int cmp_ranked(const void *a, const void *b) {
  const ranked_t *x = a, *y = b;
  if (x->s != y->s)
    return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* The daemon's ranking of x (rec_score_exact, ties by index), history
 * excluded: the first `top` items into out. */
static size_t rank_top(const fm_t *m, const float *x, const uint32_t *hist, size_t n_hist,
                       uint32_t *out, size_t top, ranked_t *buf) {
  size_t n = 0;
  for (uint32_t i = 0; i < m->N; i++) {
    int in_hist = 0;
    for (size_t j = 0; j < n_hist && !in_hist; j++)
      in_hist = hist[j] == i;
    if (!in_hist)
      buf[n++] = (ranked_t){rec_score_exact(x, m->Y + (size_t)i * m->ldy, m->k), i};
  }
  qsort(buf, n, sizeof *buf, cmp_ranked);
  if (top > n)
    top = n;
  for (size_t r = 0; r < top; r++)
    out[r] = buf[r].i;
  return top;
}

/* One history: fold-in against the reference (x, and the top 10/50/100).
 * Writes the reference's top TOP into want (returns how many). */
static size_t check_history(const fm_t *m, foldin_ws_t *ws, const uint32_t *hist,
                            const float *w, size_t n, size_t cap, uint32_t *want,
                            const char *what) {
  const uint32_t k = m->k;
  float *x = malloc(k * sizeof *x), *xr = malloc(k * sizeof *xr);
  double *xd = malloc(k * sizeof *xd);
  ranked_t *buf = malloc(m->N * sizeof *buf);
  uint32_t got[TOP];
  ck_assert(x && xr && xd && buf);
  size_t used = 0;
  ck_assert_int_eq(foldin_solve(m->Y, m->ldy, m->G, &m->p, hist, w, n, cap, x, &used, ws), 0);
  ck_assert_uint_gt(used, 0);
  reference(m, ws, used, xd);
  double err = 0, xn = 0;
  for (uint32_t a = 0; a < k; a++) {
    xr[a] = (float)xd[a];
    err = fmax(err, fabs((double)x[a] - xd[a]));
    xn = fmax(xn, fabs(xd[a]));
  }
  EXPECT(err <= 0x1p-22 * xn, "%s: |x - x*| = %.3g |x*|", what, err / xn);
  const size_t nw = rank_top(m, xr, hist, n, want, TOP, buf);
  const size_t ng = rank_top(m, x, hist, n, got, TOP, buf);
  ck_assert_uint_eq(nw, ng);
  static const size_t tops[] = {10, 50, TOP};
  for (size_t t = 0; t < 3; t++) {
    const size_t upto = tops[t] < nw ? tops[t] : nw;
    for (size_t r = 0; r < upto; r++)
      EXPECT(got[r] == want[r], "%s: top %zu differs at rank %zu: item %u, want %u", what,
             tops[t], r, got[r], want[r]);
  }
  free(x);
  free(xr);
  free(xd);
  free(buf);
  return nw;
}

/* n distinct items of [0, N), random order; weights like counts, some
 * fractional (decayed). */
static void random_history(rng_t *r, uint32_t N, size_t n, uint32_t *items, float *w,
                           uint8_t *mark) {
  for (size_t j = 0; j < n; j++) {
    uint32_t i;
    do
      i = (uint32_t)rng_below(r, N);
    while (mark[i]);
    mark[i] = 1;
    items[j] = i;
    w[j] = (j % 5 == 4) ? 0.25f + (float)rng_uniform(r) * 3.0f : (float)(1 + rng_below(r, 5));
  }
  for (size_t j = 0; j < n; j++)
    mark[items[j]] = 0;
}

/* YtY as a model stores it: summed in double, rounded once to float. */
static float *gram(const float *Y, uint32_t N, uint32_t k, size_t ldy) {
  float *G = malloc((size_t)k * k * sizeof *G);
  double *acc = calloc((size_t)k * k, sizeof *acc);
  ck_assert(G && acc);
  for (uint32_t i = 0; i < N; i++) {
    const float *y = Y + (size_t)i * ldy;
    for (uint32_t a = 0; a < k; a++)
      for (uint32_t b = 0; b < k; b++)
        acc[(size_t)a * k + b] += (double)y[a] * y[b];
  }
  for (size_t i = 0; i < (size_t)k * k; i++)
    G[i] = (float)acc[i];
  free(acc);
  return G;
}

START_TEST(test_random_models) {
  static const struct {
    uint32_t N, k, histories;
  } sizes[] = {{600, 8, 120}, {2000, 64, 120}, {2000, 256, 36}};
  static const size_t lens[] = {1, 2, 3, 5, 8, 13, 20, 35, 60, 100, 200, 500};
  rng_t r;
  rng_seed(&r, 41);
  for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
    const uint32_t N = sizes[si].N, k = sizes[si].k;
    const size_t ldy = k + 3;
    float *Y = malloc((size_t)N * ldy * sizeof *Y);
    ck_assert(Y != NULL);
    /* Item norms spread like a trained model's (popular items longer). */
    for (uint32_t i = 0; i < N; i++) {
      const float sd = 0.05f + 0.4f * (float)rng_uniform(&r);
      tu_randn(Y + (size_t)i * ldy, k, 1000 + i + 7919 * si, sd);
      for (size_t d = k; d < ldy; d++)
        Y[(size_t)i * ldy + d] = NAN; /* padding is never read */
    }
    float *G = gram(Y, N, k, ldy);
    uint32_t *items = malloc(500 * sizeof *items), want[TOP];
    float *w = malloc(500 * sizeof *w);
    uint8_t *mark = calloc(N, 1);
    foldin_ws_t ws;
    ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
    for (uint32_t h = 0; h < sizes[si].histories; h++) {
      /* The default parameters (log confidence, alpha 0.3, nu = 1), then
       * the classic ones (constant lambda, stronger confidence: a worse
       * conditioned system), then linear confidence. */
      fm_t m = {.Y = Y, .ldy = ldy, .G = G, .N = N, .k = k};
      const int kind = (int)(h % 3);
      m.p = (params_t){.factors = k, .conf_mode = kind == 2 ? PARAMS_CONF_LINEAR : PARAMS_CONF_LOG,
                       .lambda = kind == 0 ? 0.12f : 0.5f, .alpha = kind == 0 ? 0.3f : 4.0f,
                       .eps = 1.0f, .reg_exponent = kind == 0 ? 1.0f : 0.0f};
      const size_t n = lens[h % (sizeof lens / sizeof *lens)];
      random_history(&r, N, n, items, w, mark);
      char what[96];
      snprintf(what, sizeof what, "k=%u N=%u history %u (n=%zu, params %d)", k, N, h, n, kind);
      check_history(&m, &ws, items, w, n, 500, want, what);
    }
    foldin_ws_free(&ws);
    free(items);
    free(w);
    free(mark);
    free(Y);
    free(G);
  }
}
END_TEST

/* Planted data: users in clusters, each cluster favouring its own items,
 * with a popularity skew; history lengths from 1 to a few hundred. Trained
 * with the trainer's defaults but k. */
typedef struct trained {
  csr_t by_user, by_item;
  als_factors_t f;
  params_t p;
  model_t *m;
  char *dir;
} trained_t;

static void train_planted(trained_t *t, uint32_t n_users, uint32_t n_items, uint32_t k) {
  memset(t, 0, sizeof *t);
  rng_t r;
  rng_seed(&r, 5 + k);
  const uint32_t clusters = 12;
  size_t cap = 1 << 16, nnz = 0;
  uint32_t *row = malloc(cap * sizeof *row), *col = malloc(cap * sizeof *col);
  float *val = malloc(cap * sizeof *val);
  uint8_t *mark = calloc(n_items, 1);
  ck_assert(row && col && val && mark);
  t->by_user.n_rows = n_users;
  t->by_user.n_cols = n_items;
  t->by_user.ptr = calloc((size_t)n_users + 1, sizeof *t->by_user.ptr);
  for (uint32_t u = 0; u < n_users; u++) {
    const uint32_t c = u % clusters;
    /* lengths 1..~300, most short */
    const double e = rng_uniform(&r);
    uint32_t len = 1 + (uint32_t)(300.0 * e * e * e);
    if (len > n_items / 2)
      len = n_items / 2;
    uint32_t *mine = malloc(len * sizeof *mine);
    for (uint32_t j = 0; j < len; j++) {
      uint32_t i;
      do {
        /* 70%: the cluster's slice, skewed to its first items */
        if (rng_uniform(&r) < 0.7) {
          const double v = rng_uniform(&r);
          i = (c * (n_items / clusters) + (uint32_t)(v * v * (n_items / clusters))) % n_items;
        } else {
          const double v = rng_uniform(&r);
          i = (uint32_t)(v * v * n_items) % n_items;
        }
      } while (mark[i]);
      mark[i] = 1;
      mine[j] = i;
    }
    /* ascending within the row, as a CSR wants */
    for (uint32_t i = 0, j = 0; i < n_items && j < len; i++)
      if (mark[i]) {
        if (nnz == cap) {
          cap *= 2;
          row = realloc(row, cap * sizeof *row);
          col = realloc(col, cap * sizeof *col);
          val = realloc(val, cap * sizeof *val);
          ck_assert(row && col && val);
        }
        row[nnz] = u;
        col[nnz] = i;
        val[nnz] = (float)(1 + rng_below(&r, 6));
        nnz++;
        j++;
        mark[i] = 0;
      }
    t->by_user.ptr[u + 1] = nnz;
    free(mine);
  }
  t->by_user.idx = col;
  t->by_user.val = val;
  free(row);
  free(mark);
  ck_assert_int_eq(csr_transpose(&t->by_user, &t->by_item), 0);
  t->p = (params_t){.factors = k, .iterations = 6, .conf_mode = PARAMS_CONF_LOG, .cg_steps = 3,
                    .lambda = 0.12f, .alpha = 0.3f, .eps = 1.0f, .reg_exponent = 1.0f,
                    .seed = 42};
  ck_assert_int_eq(als_factors_init(&t->f, n_users, n_items, &t->p), 0);
  const als_opts_t o = {.params = t->p, .threads = 2};
  char err[RECD_ERRLEN] = "";
  ck_assert_msg(als_train(&t->by_user, &t->by_item, &o, &t->f, NULL, NULL, err) == 0, "%s", err);

  /* As a model file, so that serve_one can serve it. */
  float *pop = calloc(n_items, sizeof *pop);
  uint32_t *lens = malloc(n_items * sizeof *lens);
  char **ids = malloc(n_items * sizeof *ids);
  ck_assert(pop && lens && ids);
  for (uint32_t i = 0; i < n_items; i++) {
    pop[i] = (float)(t->by_item.ptr[i + 1] - t->by_item.ptr[i]);
    ids[i] = malloc(16);
    lens[i] = (uint32_t)snprintf(ids[i], 16, "i%u", i);
  }
  model_spec_t spec = {.n_items = n_items, .params = t->p, .meta = {.score_scale = 1.0f},
                       .Y = t->f.Y, .ldy = t->f.stride, .popularity = pop,
                       .item_ids = (const char *const *)ids, .item_id_lens = lens};
  t->dir = tu_mkdtemp();
  ck_assert_msg(model_write(&spec, tu_path(t->dir, "m.bin"), err) == 0, "%s", err);
  ck_assert_msg(model_load(&t->m, tu_path(t->dir, "m.bin"), err) == 0, "%s", err);
  for (uint32_t i = 0; i < n_items; i++)
    free(ids[i]);
  free(ids);
  free(lens);
  free(pop);
}

static void trained_free(trained_t *t) {
  model_free(t->m);
  tu_rmtree(t->dir);
  free(t->dir);
  als_factors_free(&t->f);
  csr_free(&t->by_user);
  csr_free(&t->by_item);
}

/* Every user's own history, strongest first as Redis returns it, folded in
 * directly and answered through every serving way. */
static void check_trained(uint32_t n_users, uint32_t n_items, uint32_t k, uint32_t users) {
  trained_t t;
  train_planted(&t, n_users, n_items, k);
  const model_t *mm = t.m;
  fm_t m = {.Y = model_item_factors(mm), .ldy = model_stride(mm), .G = model_gram(mm),
            .p = *model_params(mm), .N = model_n_items(mm), .k = k};
  serve_model_t sm[TU_SERVE_WAYS];
  int have[TU_SERVE_WAYS];
  for (int way = 0; way < TU_SERVE_WAYS; way++)
    have[way] = tu_serve_way(&sm[way], mm, way);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  rec_ws_t rws;
  rec_ws_init(&rws);
  uint32_t *hist = malloc(n_items * sizeof *hist), want[TOP];
  float *hw = malloc(n_items * sizeof *hw);
  ck_assert(hist && hw);
  const uint32_t step = n_users / users ? n_users / users : 1;
  for (uint32_t u = 0; u < n_users; u += step) {
    const uint64_t b = t.by_user.ptr[u], e = t.by_user.ptr[u + 1];
    const size_t n = (size_t)(e - b);
    if (n == 0)
      continue;
    /* strongest first, ties by item: the order of a ZSET read */
    for (size_t j = 0; j < n; j++) {
      hist[j] = t.by_user.idx[b + j];
      hw[j] = t.by_user.val[b + j];
    }
    for (size_t j = 1; j < n; j++)
      for (size_t l = j; l > 0 && hw[l] > hw[l - 1]; l--) {
        const uint32_t ti = hist[l];
        hist[l] = hist[l - 1];
        hist[l - 1] = ti;
        const float tw = hw[l];
        hw[l] = hw[l - 1];
        hw[l - 1] = tw;
      }
    char what[96];
    snprintf(what, sizeof what, "trained k=%u, user %u (n=%zu)", k, u, n);
    const size_t nw = check_history(&m, &ws, hist, hw, n, 500, want, what);
    const rec_query_t q = {.hist = hist, .hist_w = hw, .n_hist = n, .history_limit = 500,
                           .personalize = 1, .exclude_history = 1, .count = TOP};
    for (int way = 0; way < TU_SERVE_WAYS; way++) {
      if (!have[way])
        continue;
      serve_answer_t a;
      ck_assert_int_eq(serve_one(&sm[way], &q, &rws, &a), 0);
      ck_assert_int_eq(a.rc, 0);
      EXPECT(a.personalized && a.n == nw, "%s, %s: %zu items, want %zu", what,
             tu_serve_way_name(way), a.n, nw);
      for (size_t r = 0; r < nw; r++)
        EXPECT(a.items[r] == want[r], "%s, %s: rank %zu is item %u, want %u", what,
               tu_serve_way_name(way), r, a.items[r], want[r]);
      serve_answer_free(&a);
    }
  }
  for (int way = 0; way < TU_SERVE_WAYS; way++)
    if (have[way])
      serve_model_free(&sm[way]);
  rec_ws_free(&rws);
  foldin_ws_free(&ws);
  free(hist);
  free(hw);
  trained_free(&t);
}

START_TEST(test_trained_k64) {
  check_trained(1200, 1500, 64, 300);
}
END_TEST

START_TEST(test_trained_k256) {
  check_trained(600, 1200, 256, 60);
}
END_TEST

/* A history longer than the eigenbasis path takes: the Cholesky fallback,
 * refined in double, is as exact. */
START_TEST(test_cholesky_fallback) {
  const uint32_t N = 10000, k = 8;
  float *Y = malloc((size_t)N * k * sizeof *Y);
  tu_randn(Y, (size_t)N * k, 77, 0.2f);
  float *G = gram(Y, N, k, k);
  fm_t m = {.Y = Y, .ldy = k, .G = G, .N = N, .k = k,
            .p = {.factors = k, .conf_mode = PARAMS_CONF_LOG, .lambda = 0.12f, .alpha = 0.3f,
                  .eps = 1.0f, .reg_exponent = 1.0f}};
  const size_t n = 9000;
  uint32_t *items = malloc(n * sizeof *items), want[TOP];
  float *w = malloc(n * sizeof *w);
  uint8_t *mark = calloc(N, 1);
  rng_t r;
  rng_seed(&r, 3);
  random_history(&r, N, n, items, w, mark);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  check_history(&m, &ws, items, w, n, 0, want, "9000 items, uncapped");
  /* The Cholesky path leaves its factor: foldin_factor has nothing to do. */
  ck_assert(ws.factored);
  /* The same history capped to 500: the eigenbasis path, same checks. */
  check_history(&m, &ws, items, w, n, 500, want, "9000 items, capped to 500");
  ck_assert(!ws.factored);
  foldin_ws_free(&ws);
  free(items);
  free(w);
  free(mark);
  free(Y);
  free(G);
}
END_TEST

/* Threads solving against one model at once share its eigenbasis and fill
 * its cache of rows concurrently: every x is the bits one thread alone
 * computes. */
typedef struct job {
  const fm_t *m;
  const uint32_t *items;
  const float *w;
  const size_t *n;
  size_t histories;
  const float *want; /* histories x k */
  int bad;
} job_t;

static void *job_run(void *arg) {
  job_t *j = arg;
  foldin_ws_t ws;
  if (foldin_ws_init(&ws, j->m->k) != 0) {
    j->bad = 1;
    return NULL;
  }
  float *x = malloc(j->m->k * sizeof *x);
  for (int rep = 0; rep < 3 && x != NULL; rep++)
    for (size_t h = 0; h < j->histories; h++) {
      size_t used;
      if (foldin_solve(j->m->Y, j->m->ldy, j->m->G, &j->m->p, j->items + h * 200, j->w + h * 200,
                       j->n[h], 500, x, &used, &ws) != 0 ||
          memcmp(x, j->want + h * j->m->k, j->m->k * sizeof *x) != 0)
        j->bad = 1;
    }
  if (x == NULL)
    j->bad = 1;
  free(x);
  foldin_ws_free(&ws);
  return NULL;
}

START_TEST(test_threads_share_the_basis) {
  const uint32_t N = 3000, k = 64, H = 40, T = 4;
  float *Y = malloc((size_t)N * k * sizeof *Y);
  tu_randn(Y, (size_t)N * k, 99, 0.3f);
  float *G = gram(Y, N, k, k);
  fm_t m = {.Y = Y, .ldy = k, .G = G, .N = N, .k = k,
            .p = {.factors = k, .conf_mode = PARAMS_CONF_LOG, .lambda = 0.12f, .alpha = 0.3f,
                  .eps = 1.0f, .reg_exponent = 1.0f}};
  uint32_t *items = malloc((size_t)H * 200 * sizeof *items);
  float *w = malloc((size_t)H * 200 * sizeof *w), *want = malloc((size_t)H * k * sizeof *want);
  size_t n[40];
  uint8_t *mark = calloc(N, 1);
  rng_t r;
  rng_seed(&r, 8);
  for (uint32_t h = 0; h < H; h++) {
    n[h] = 1 + rng_below(&r, 200);
    random_history(&r, N, n[h], items + (size_t)h * 200, w + (size_t)h * 200, mark);
  }
  /* One thread, on a model the registry has not seen: it builds the basis
   * and fills the cache as it goes. */
  foldin_cache_clear();
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  for (uint32_t h = 0; h < H; h++) {
    size_t used;
    ck_assert_int_eq(foldin_solve(Y, k, G, &m.p, items + (size_t)h * 200, w + (size_t)h * 200,
                                  n[h], 500, want + (size_t)h * k, &used, &ws),
                     0);
  }
  foldin_ws_free(&ws);
  /* Then T threads at once, from an empty registry again. */
  foldin_cache_clear();
  pthread_t tid[4];
  job_t jobs[4];
  for (uint32_t t = 0; t < T; t++) {
    jobs[t] = (job_t){.m = &m, .items = items, .w = w, .n = n, .histories = H, .want = want};
    ck_assert_int_eq(pthread_create(&tid[t], NULL, job_run, &jobs[t]), 0);
  }
  for (uint32_t t = 0; t < T; t++) {
    pthread_join(tid[t], NULL);
    ck_assert_msg(!jobs[t].bad, "thread %u computed other bits", t);
  }
  free(items);
  free(w);
  free(want);
  free(mark);
  free(Y);
  free(G);
}
END_TEST

/* More models than the registry keeps, taken in turns: each time the same
 * bits. Then one model's Y and YtY changed in place (the same pointers,
 * as when a freed model's memory is reused by the next): the answer
 * follows the new contents. */
START_TEST(test_registry_turns_and_reuse) {
  enum { MODELS = 6 };
  const uint32_t N = 800, k = 16;
  float *Y[MODELS], *G[MODELS];
  fm_t m[MODELS];
  for (int i = 0; i < MODELS; i++) {
    Y[i] = malloc((size_t)N * k * sizeof *Y[i]);
    tu_randn(Y[i], (size_t)N * k, 500 + (uint64_t)i, 0.3f);
    G[i] = gram(Y[i], N, k, k);
    m[i] = (fm_t){.Y = Y[i], .ldy = k, .G = G[i], .N = N, .k = k,
                  .p = {.factors = k, .conf_mode = PARAMS_CONF_LOG, .lambda = 0.12f,
                        .alpha = 0.3f, .eps = 1.0f, .reg_exponent = 1.0f}};
  }
  uint32_t items[50], want[TOP];
  float w[50], first[MODELS][16], x[16];
  uint8_t *mark = calloc(N, 1);
  rng_t r;
  rng_seed(&r, 13);
  random_history(&r, N, 50, items, w, mark);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < MODELS; i++) {
      size_t used;
      ck_assert_int_eq(foldin_solve(Y[i], k, G[i], &m[i].p, items, w, 50, 0,
                                    round ? x : first[i], &used, &ws),
                       0);
      if (round)
        ck_assert_int_eq(memcmp(x, first[i], sizeof x), 0);
    }
  char what[64];
  for (int i = 0; i < MODELS; i++) {
    snprintf(what, sizeof what, "model %d", i);
    check_history(&m[i], &ws, items, w, 50, 0, want, what);
  }
  /* Model 0's memory now holds other factors and their Gram matrix. */
  tu_randn(Y[0], (size_t)N * k, 4242, 0.35f);
  float *G2 = gram(Y[0], N, k, k);
  memcpy(G[0], G2, (size_t)k * k * sizeof *G2);
  free(G2);
  check_history(&m[0], &ws, items, w, 50, 0, want, "model 0 rewritten in place");
  /* Only its rows changed (not YtY's diagonal or first row, nor Y's first
   * row): the fingerprint cannot see it, the check against the float
   * inputs does, and the answer is still exact. */
  for (uint32_t i = 1; i < N; i++)
    for (uint32_t d = 0; d < k; d++)
      Y[0][(size_t)i * k + d] *= (d % 2) ? 1.01f : 0.99f;
  check_history(&m[0], &ws, items, w, 50, 0, want, "model 0's rows changed");
  foldin_ws_free(&ws);
  foldin_cache_clear();
  free(mark);
  for (int i = 0; i < MODELS; i++) {
    free(Y[i]);
    free(G[i]);
  }
}
END_TEST

/* A freed model's basis goes with it (model_free() -> foldin_forget()),
 * the others stay, and the next solve against it rebuilds the same bits. */
START_TEST(test_forget_drops_one_model) {
  const uint32_t N = 500, k = 16;
  float *Y[2], *G[2], x0[16], x[16];
  params_t p = {.factors = k, .conf_mode = PARAMS_CONF_LOG, .lambda = 0.12f, .alpha = 0.3f,
                .eps = 1.0f, .reg_exponent = 1.0f};
  for (int i = 0; i < 2; i++) {
    Y[i] = malloc((size_t)N * k * sizeof *Y[i]);
    tu_randn(Y[i], (size_t)N * k, 70 + (uint64_t)i, 0.3f);
    G[i] = gram(Y[i], N, k, k);
  }
  uint32_t items[30];
  float w[30];
  uint8_t *mark = calloc(N, 1);
  rng_t r;
  rng_seed(&r, 21);
  random_history(&r, N, 30, items, w, mark);
  foldin_cache_clear();
  ck_assert_int_eq(foldin_cache_bases(), 0);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  size_t used;
  ck_assert_int_eq(foldin_solve(Y[0], k, G[0], &p, items, w, 30, 0, x0, &used, &ws), 0);
  ck_assert_int_eq(foldin_solve(Y[1], k, G[1], &p, items, w, 30, 0, x, &used, &ws), 0);
  ck_assert_int_eq(foldin_cache_bases(), 2);
  foldin_forget(G[0]);
  ck_assert_int_eq(foldin_cache_bases(), 1);
  foldin_forget(G[0]); /* nothing left of it: a no-op */
  ck_assert_int_eq(foldin_cache_bases(), 1);
  ck_assert_int_eq(foldin_solve(Y[0], k, G[0], &p, items, w, 30, 0, x, &used, &ws), 0);
  ck_assert_int_eq(memcmp(x, x0, sizeof x), 0);
  ck_assert_int_eq(foldin_cache_bases(), 2);
  foldin_ws_free(&ws);
  foldin_cache_clear();
  ck_assert_int_eq(foldin_cache_bases(), 0);
  free(mark);
  for (int i = 0; i < 2; i++) {
    free(Y[i]);
    free(G[i]);
  }
}
END_TEST

static Suite *topn_suite(void) {
  Suite *s = suite_create("foldin_topn");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_random_models);
  tcase_add_test(tc, test_trained_k64);
  tcase_add_test(tc, test_trained_k256);
  tcase_add_test(tc, test_cholesky_fallback);
  tcase_add_test(tc, test_threads_share_the_basis);
  tcase_add_test(tc, test_registry_turns_and_reuse);
  tcase_add_test(tc, test_forget_drops_one_model);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(topn_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
