/* test_foldin_times.c - the time-aware fold-in (issue 16) end to end
 * through the real daemon and a real redis-server: a model trained with a
 * half-life folds each customer in with their history weighed by age
 * (include/recd/age.h) against their own newest interaction.
 *
 *   aged_foldin    a model with half_life_days 30: RECOMMEND ... WITHSCORES
 *                  and RANK give exactly (ids and float bits) what
 *                  foldin_solve + rec_score_exact give offline with the
 *                  weights of age_weight, which differs from the undecayed
 *                  answer for a history spanning several half-lives; a
 *                  customer without a time key gets the undecayed answer;
 *                  a newer item the model does not know moves the
 *                  reference; a HISTORY cart moves it to now; the time key
 *                  is read once per RECOMMEND / RANK and never for SIMILAR
 *                  FOR (Redis's INFO commandstats)
 *   plain_foldin   a model without a half-life never reads the time key
 *                  (no ZRANGE reaches Redis) and answers with the weights
 *                  as stored, times or not
 */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "recd/age.h"
#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/recommend.h"

#define HL_DAYS 30.0
#define HL_S (HL_DAYS * 86400.0)
#define DAY 86400LL
#define TOP 10

/* Copies model src to dst with meta.half_life_days set: the same factors,
 * as if recd-train had aged the data or not (what it learned does not
 * matter here, only what the daemon does with it). */
static void write_with_half_life(const char *src, const char *dst, double days) {
  model_t *m;
  char err[RECD_ERRLEN];
  ck_assert_msg(model_load(&m, src, err) == 0, "%s: %s", src, err);
  const uint32_t n = model_n_items(m), nc = model_n_categories(m), ng = model_n_groups(m);
  const char **ids = calloc(n, sizeof *ids), **cn = calloc(nc + 1, sizeof *cn),
             **gn = calloc(ng + 1, sizeof *gn);
  uint32_t *il = calloc(n, sizeof *il), *cl = calloc(nc + 1, sizeof *cl),
           *gl = calloc(ng + 1, sizeof *gl);
  ck_assert(ids && cn && gn && il && cl && gl);
  size_t len;
  for (uint32_t i = 0; i < n; i++) {
    ids[i] = model_item_id(m, i, &len);
    il[i] = (uint32_t)len;
  }
  for (uint32_t c = 1; c <= nc; c++) {
    cn[c - 1] = model_category_name(m, c, &len);
    cl[c - 1] = (uint32_t)len;
  }
  for (uint32_t g = 1; g <= ng; g++) {
    gn[g - 1] = model_group_name(m, g, &len);
    gl[g - 1] = (uint32_t)len;
  }
  model_spec_t spec = {.n_items = n, .params = *model_params(m), .meta = *model_meta(m),
                       .Y = model_item_factors(m), .ldy = model_stride(m),
                       .popularity = model_popularity(m), .item_ids = ids, .item_id_lens = il,
                       .item_category = model_item_categories(m), .n_categories = nc,
                       .category_names = cn, .category_name_lens = cl,
                       .item_group = ng > 0 ? model_item_groups(m) : NULL, .n_groups = ng,
                       .group_names = gn, .group_name_lens = gl};
  spec.meta.half_life_days = days;
  ck_assert_msg(model_write(&spec, dst, err) == 0, "%s: %s", dst, err);
  free(ids);
  free(cn);
  free(gn);
  free(il);
  free(cl);
  free(gl);
  model_free(m);
}

/* One stored history entry: an item (a model index, or -1 for an item the
 * model does not know), its weight and its time (AGE_NO_TIME: none). */
typedef struct entry {
  int64_t item;
  double w;
  int64_t t;
} entry_t;

#define MAX_E 8

typedef struct customer {
  const char *name;
  entry_t e[MAX_E];
  size_t n;
  int with_times; /* the time key is written */
} customer_t;

/* Writes the customer's hist: (and time:) keys as a storefront does. */
static void store(redisContext *rd, const model_t *m, const customer_t *c) {
  for (size_t j = 0; j < c->n; j++) {
    size_t len;
    const char *id = c->e[j].item >= 0 ? model_item_id(m, (uint32_t)c->e[j].item, &len)
                                       : "no-such-item";
    if (c->e[j].item < 0)
      len = strlen(id);
    freeReplyObject(it_cmd(rd, "ZADD recd:hist:%s %.17g %b", c->name, c->e[j].w, id, len));
    if (c->with_times && c->e[j].t != AGE_NO_TIME)
      freeReplyObject(
          it_cmd(rd, "ZADD recd:time:%s %lld %b", c->name, (long long)c->e[j].t, id, len));
  }
}

/* The answer computed offline: the customer's weights (as float, as
 * Redis's scores reach the daemon), aged against t_ref when aged (t_ref
 * AGE_NO_TIME: the customer's newest entry), plus the cart items at
 * weight 1; x from foldin_solve with the daemon's history-limit (500); the
 * exact score of every item. */
typedef struct expect {
  float *x;
  float *score; /* per item */
  uint32_t top[TOP];
  int64_t t_ref;
} expect_t;

static void expect_compute(const model_t *m, const customer_t *c, int aged, int64_t t_ref,
                           const uint32_t *cart, size_t n_cart, expect_t *out) {
  const uint32_t n = model_n_items(m), k = model_factors(m);
  if (aged && t_ref == AGE_NO_TIME)
    for (size_t j = 0; j < c->n; j++)
      if (c->e[j].t > t_ref)
        t_ref = c->e[j].t;
  out->t_ref = t_ref;
  uint32_t items[MAX_E + 4];
  float w[MAX_E + 4];
  size_t h = 0;
  for (size_t j = 0; j < c->n; j++) {
    if (c->e[j].item < 0)
      continue;
    items[h] = (uint32_t)c->e[j].item;
    const float stored = (float)c->e[j].w;
    w[h++] = aged ? age_weight(stored, c->e[j].t, t_ref, HL_S) : stored;
  }
  for (size_t j = 0; j < n_cart; j++) {
    items[h] = cart[j];
    w[h++] = 1.0f;
  }
  out->x = calloc(k, sizeof *out->x);
  out->score = calloc(n, sizeof *out->score);
  ck_assert(out->x && out->score);
  foldin_ws_t ws;
  ck_assert_int_eq(foldin_ws_init(&ws, k), 0);
  ck_assert_int_eq(foldin_solve(model_item_factors(m), model_stride(m), model_gram(m),
                                model_params(m), items, w, h, 500, out->x, NULL, &ws),
                   0);
  foldin_ws_free(&ws);
  for (uint32_t i = 0; i < n; i++)
    out->score[i] = rec_score_exact(out->x, model_item_factors(m) + (size_t)i * model_stride(m), k);
  /* the top, history excluded (exclude-history yes): higher score first,
   * then the smaller index */
  size_t got = 0;
  while (got < TOP) {
    int64_t best = -1;
    for (uint32_t i = 0; i < n; i++) {
      int skip = 0;
      for (size_t j = 0; j < h && !skip; j++)
        skip = items[j] == i;
      for (size_t j = 0; j < got && !skip; j++)
        skip = out->top[j] == i;
      if (!skip && (best < 0 || out->score[i] > out->score[best]))
        best = i;
    }
    ck_assert(best >= 0);
    out->top[got++] = (uint32_t)best;
  }
}

static void expect_free(expect_t *e) {
  free(e->x);
  free(e->score);
}

/* The ranks at which a's top and b's hold different items. */
static size_t moved(const expect_t *a, const expect_t *b) {
  size_t n = 0;
  for (size_t i = 0; i < TOP; i++)
    n += a->top[i] != b->top[i];
  return n;
}

/* The reply of RECOMMEND ... COUNT TOP WITHSCORES must be the expected
 * top, its scores those floats exactly. */
static void check_recommend(const model_t *m, redisReply *r, const expect_t *want,
                            const char *what) {
  ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "%s: type %d (%s)", what, r->type,
                r->type == REDIS_REPLY_ERROR ? r->str : "");
  ck_assert_msg(r->elements == 2 * TOP, "%s: %zu elements", what, r->elements);
  for (size_t j = 0; j < TOP; j++) {
    size_t len;
    const char *id = model_item_id(m, want->top[j], &len);
    const redisReply *ri = r->element[2 * j], *rs = r->element[2 * j + 1];
    ck_assert_msg(ri->len == len && memcmp(ri->str, id, len) == 0,
                  "%s: rank %zu is %s, expected %.*s (score %.9g)", what, j, ri->str, (int)len,
                  id, (double)want->score[want->top[j]]);
    const float got = strtof(rs->str, NULL);
    ck_assert_msg(got == want->score[want->top[j]], "%s: rank %zu (%s) scores %s, expected %.9g",
                  what, j, ri->str, rs->str, (double)want->score[want->top[j]]);
  }
}

static redisReply *recommend(redisContext *c, const char *user) {
  return it_cmd(c, "RECOMMEND %s COUNT %d WITHSCORES", user, TOP);
}

/* RANK user <cands> WITHSCORES: every candidate with its expected score,
 * best first. */
static void check_rank(redisContext *c, const model_t *m, const char *user,
                       const uint32_t *cand, size_t nc, const expect_t *want) {
  const char *argv[2 + 16 + 1];
  int argc = 0;
  argv[argc++] = "RANK";
  argv[argc++] = user;
  char ids[16][300];
  for (size_t j = 0; j < nc; j++) {
    size_t len;
    const char *id = model_item_id(m, cand[j], &len);
    snprintf(ids[j], sizeof ids[j], "%.*s", (int)len, id);
    argv[argc++] = ids[j];
  }
  argv[argc++] = "WITHSCORES";
  redisReply *r = it_cmdv(c, argc, argv);
  ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == 2 * nc, "RANK %s: type %d",
                user, r->type);
  float prev = INFINITY;
  for (size_t j = 0; j < nc; j++) {
    const int64_t i = model_find_item(m, r->element[2 * j]->str, r->element[2 * j]->len);
    ck_assert(i >= 0);
    const float got = strtof(r->element[2 * j + 1]->str, NULL);
    ck_assert_msg(got == want->score[i], "RANK %s: %s scores %s, expected %.9g", user,
                  r->element[2 * j]->str, r->element[2 * j + 1]->str, (double)want->score[i]);
    ck_assert(got <= prev);
    prev = got;
  }
  freeReplyObject(r);
}

/* ZRANGE commands Redis has run (INFO commandstats): recd reads the time
 * key with ZRANGE and nothing else here does. */
static long long zrange_calls(redisContext *rd) {
  redisReply *r = it_cmd(rd, "INFO commandstats");
  ck_assert(r->type == REDIS_REPLY_STRING);
  const char *p = strstr(r->str, "cmdstat_zrange:calls=");
  long long n = p != NULL ? strtoll(p + strlen("cmdstat_zrange:calls="), NULL, 10) : 0;
  freeReplyObject(r);
  return n;
}

/* Items picked from the model: a (and its two nearest neighbours) against
 * the three items least like it, so that a history whose weight moves
 * from one group to the other changes the answer. */
typedef struct picks {
  uint32_t near[3], far[3], other;
} picks_t;

static double cosine(const model_t *m, uint32_t i, uint32_t j) {
  const float *Y = model_item_factors(m);
  const size_t st = model_stride(m);
  double d = 0, a = 0, b = 0;
  for (uint32_t f = 0; f < model_factors(m); f++) {
    d += (double)Y[i * st + f] * Y[j * st + f];
    a += (double)Y[i * st + f] * Y[i * st + f];
    b += (double)Y[j * st + f] * Y[j * st + f];
  }
  return a > 0 && b > 0 ? d / sqrt(a * b) : 0;
}

static const double *pick_cos; /* for pick_cmp */

static int pick_cmp(const void *a, const void *b) {
  const double x = pick_cos[*(const uint32_t *)a], y = pick_cos[*(const uint32_t *)b];
  return x > y ? -1 : x < y ? 1 : 0;
}

static void pick(const model_t *m, picks_t *p) {
  const uint32_t n = model_n_items(m);
  ck_assert_uint_ge(n, 20);
  double *cos = malloc(n * sizeof *cos);
  uint32_t *by = malloc(n * sizeof *by);
  ck_assert(cos && by);
  for (uint32_t i = 0; i < n; i++) {
    cos[i] = cosine(m, 0, i);
    by[i] = i;
  }
  cos[0] = 2; /* item 0 first */
  pick_cos = cos;
  qsort(by, n, sizeof *by, pick_cmp);
  for (int r = 0; r < 3; r++) {
    p->near[r] = by[r];
    p->far[r] = by[n - 1 - r];
  }
  p->other = by[n / 2]; /* a cart item in neither group */
  free(cos);
  free(by);
}

/* A history spanning ten half-lives: heavy old interactions with the
 * "near" group, light recent ones with the "far" group (one untimed: it
 * keeps its weight). */
static customer_t history(const char *name, const picks_t *p, int64_t t_new, int with_times) {
  const int64_t hl = (int64_t)HL_S;
  customer_t c = {.name = name, .with_times = with_times, .n = 6};
  c.e[0] = (entry_t){p->near[0], 20, t_new - 10 * hl};
  c.e[1] = (entry_t){p->near[1], 10, t_new - 8 * hl};
  c.e[2] = (entry_t){p->near[2], 8, t_new - 6 * hl};
  c.e[3] = (entry_t){p->far[0], 1, t_new};
  c.e[4] = (entry_t){p->far[1], 2, t_new - hl / 2};
  c.e[5] = (entry_t){p->far[2], 1.5, AGE_NO_TIME};
  return c;
}

START_TEST(aged_foldin) {
  char path[IT_PATH];
  it_fmt(path, sizeof path, "%s/half-life.bin", it_data.dir);
  write_with_half_life(it_data.model1, path, HL_DAYS);
  it_env_t e;
  it_env_start(&e, "aged_foldin", &(it_opts_t){.model = path, .no_import = 1});
  model_t *m;
  char err[RECD_ERRLEN];
  ck_assert_msg(model_load(&m, e.model, err) == 0, "%s", err);
  ck_assert_double_eq(model_meta(m)->half_life_days, HL_DAYS);
  picks_t p;
  pick(m, &p);
  const int64_t t_new = (int64_t)time(NULL) - 2 * DAY;
  const customer_t aged = history("aged", &p, t_new, 1);
  const customer_t untimed = history("untimed", &p, t_new, 0);
  customer_t newer = history("newer", &p, t_new, 1);
  /* the newest interaction is with a product the model does not know */
  newer.e[newer.n++] = (entry_t){-1, 1, t_new + 15 * DAY};
  const customer_t carted = history("carted", &p, t_new, 1);
  store(e.redis, m, &aged);
  store(e.redis, m, &untimed);
  store(e.redis, m, &newer);
  store(e.redis, m, &carted);
  const long long z0 = zrange_calls(e.redis);

  expect_t want_aged, want_plain, want_newer;
  expect_compute(m, &aged, 1, AGE_NO_TIME, NULL, 0, &want_aged);
  ck_assert_int_eq(want_aged.t_ref, t_new);
  expect_compute(m, &aged, 0, AGE_NO_TIME, NULL, 0, &want_plain);
  expect_compute(m, &newer, 1, AGE_NO_TIME, NULL, 0, &want_newer);
  ck_assert_int_eq(want_newer.t_ref, t_new + 15 * DAY);
  /* ten half-lives move the answer: most ranks change (the catalogue is
   * small: the same popular items fill both tops, in another order) */
  ck_assert_msg(moved(&want_aged, &want_plain) >= TOP / 2, "aged and plain tops differ at %zu",
                moved(&want_aged, &want_plain));

  redisReply *r = recommend(e.c, "aged");
  check_recommend(m, r, &want_aged, "aged");
  freeReplyObject(r);
  /* no time key: the weights as stored */
  r = recommend(e.c, "untimed");
  check_recommend(m, r, &want_plain, "untimed");
  freeReplyObject(r);
  r = recommend(e.c, "newer");
  check_recommend(m, r, &want_newer, "newer");
  freeReplyObject(r);

  /* A cart is an interaction now: the reference is the wall clock, the
   * second the daemon read it (between these two), not aged itself. */
  size_t olen;
  const char *oid = model_item_id(m, p.other, &olen);
  const int64_t before = (int64_t)time(NULL);
  r = it_cmd(e.c, "RECOMMEND carted COUNT %d WITHSCORES HISTORY 1 %b", TOP, oid, olen);
  const int64_t after = (int64_t)time(NULL);
  ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == 2 * TOP, "carted: type %d",
                r->type);
  int64_t now = before;
  for (; now < after; now++) { /* the second may have turned meanwhile */
    expect_t w;
    expect_compute(m, &carted, 1, now, &p.other, 1, &w);
    const int same = strtof(r->element[1]->str, NULL) == w.score[w.top[0]];
    expect_free(&w);
    if (same)
      break;
  }
  expect_t want_cart;
  expect_compute(m, &carted, 1, now, &p.other, 1, &want_cart);
  check_recommend(m, r, &want_cart, "carted");
  freeReplyObject(r);
  /* two days of age at most: not the stored history's answer */
  ck_assert_uint_ge(moved(&want_cart, &want_plain), TOP / 2);
  expect_free(&want_cart);

  /* RANK folds in the same way */
  const uint32_t cand[8] = {want_aged.top[0], want_plain.top[0], want_aged.top[3],
                            want_plain.top[2], want_aged.top[9], want_plain.top[9],
                            p.other, want_plain.top[5]};
  check_rank(e.c, m, "aged", cand, 8, &want_aged);
  check_rank(e.c, m, "untimed", cand, 8, &want_plain);

  /* one ZRANGE per RECOMMEND and RANK: 4 + 2 */
  const long long z1 = zrange_calls(e.redis);
  ck_assert_int_eq(z1 - z0, 6);
  /* SIMILAR ... FOR folds nothing in: no time key read */
  size_t len;
  const char *sid = model_item_id(m, p.far[0], &len);
  r = it_cmd(e.c, "SIMILAR %b FOR aged COUNT 5", sid, len);
  ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "SIMILAR: type %d", r->type);
  freeReplyObject(r);
  ck_assert_int_eq(zrange_calls(e.redis), z1);

  expect_free(&want_aged);
  expect_free(&want_plain);
  expect_free(&want_newer);
  model_free(m);
  it_env_stop(&e);
}
END_TEST

START_TEST(plain_foldin) {
  /* recd-train ages timed data by default: the same model without */
  char path[IT_PATH];
  it_fmt(path, sizeof path, "%s/no-half-life.bin", it_data.dir);
  write_with_half_life(it_data.model1, path, 0);
  it_env_t e;
  it_env_start(&e, "plain_foldin", &(it_opts_t){.model = path, .no_import = 1});
  model_t *m;
  char err[RECD_ERRLEN];
  ck_assert_msg(model_load(&m, e.model, err) == 0, "%s", err);
  ck_assert_double_eq(model_meta(m)->half_life_days, 0);
  picks_t p;
  pick(m, &p);
  const customer_t timed = history("timed", &p, (int64_t)time(NULL) - 2 * DAY, 1);
  store(e.redis, m, &timed);
  expect_t want;
  expect_compute(m, &timed, 0, AGE_NO_TIME, NULL, 0, &want);
  redisReply *r = recommend(e.c, "timed");
  check_recommend(m, r, &want, "timed");
  freeReplyObject(r);
  const uint32_t cand[4] = {want.top[0], want.top[5], p.other, want.top[9]};
  check_rank(e.c, m, "timed", cand, 4, &want);
  ck_assert_int_eq(zrange_calls(e.redis), 0);
  expect_free(&want);
  model_free(m);
  it_env_stop(&e);
}
END_TEST

static Suite *foldin_times_suite(void) {
  Suite *s = suite_create("foldin_times");
  IT_ADD(s, aged_foldin, 120);
  IT_ADD(s, plain_foldin, 120);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  int failed = it_run_suite(foldin_times_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
