/* test_similar.c - SIMILAR through the daemon on a catalogue served by the
 * int8 pass (the suite's 60,000-item synthetic model): pipelined requests,
 * so that the micro-batcher puts many SIMILARs in one job, with and without
 * the scan split over both workers, with every filter (CATEGORY, EXCLUDE,
 * unavailable items, MAXPERCATEGORY, OFFSET) and with FOR <user> (history,
 * hidden items, a removed category). Every reply must be, id for id and
 * score for score (the reply's text), the core's dense float pass
 * (rec_similar_q over the same model file, in this process), which
 * test_similar.c checks against the brute force.
 *
 *   similar_batched        scan on one worker per batch (the default below
 *                          scan-split-items)
 *   similar_batched_split  every batch's scan split over both workers
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "recd/model.h"
#include "recd/recommend.h"
#include "recd/reply.h"
#include "recd/rng.h"

enum { REQS = 160, HIST = 6, HIDDEN = 3, UNAV = 40 };

typedef struct sreq {
  uint32_t item;
  uint32_t excl[4], cats[2];
  size_t n_excl, n_cats;
  int for_user;
  rec_query_t q;
} sreq_t;

/* The customer: stored history, hidden items, category c3 removed (c5
 * preferred, which does not move a cosine). */
static const char *const hist_ids[HIST] = {"i11", "i2024", "i31337", "i45000", "i59998", "i7"};
static const char *const hidden_ids[HIDDEN] = {"i100", "i200", "i300"};
static uint32_t hist[HIST], hidden[HIDDEN], pref_cat[2];
static float hist_w[HIST], pref_val[2] = {-1.0f, 0.5f};
static uint64_t unav[60000 / 64 + 1];

static uint32_t item_of(const model_t *m, const char *id) {
  const int64_t i = model_find_item(m, id, strlen(id));
  ck_assert_msg(i >= 0, "unknown item %s", id);
  return (uint32_t)i;
}

/* A random request: its text into cmd, its query into r. */
static void make_req(const model_t *m, rng_t *g, sreq_t *r, char *cmd, size_t size) {
  memset(r, 0, sizeof *r);
  const uint32_t n = model_n_items(m);
  r->item = (uint32_t)rng_below(g, n);
  const size_t count = 1 + rng_below(g, 30), offset = rng_below(g, 4) == 0 ? rng_below(g, 6) : 0;
  const size_t cap = rng_below(g, 4) == 0 ? 1 + rng_below(g, 2) : 0;
  r->for_user = rng_below(g, 3) == 0;
  r->n_cats = rng_below(g, 5) == 0 ? 1 + rng_below(g, 2) : 0;
  r->n_excl = rng_below(g, 3) == 0 ? 1 + rng_below(g, 4) : 0;
  size_t at = (size_t)snprintf(cmd, size, "SIMILAR i%u COUNT %zu WITHSCORES", r->item, count);
  if (offset > 0)
    at += (size_t)snprintf(cmd + at, size - at, " OFFSET %zu", offset);
  if (cap > 0)
    at += (size_t)snprintf(cmd + at, size - at, " MAXPERCATEGORY %zu", cap);
  for (size_t j = 0; j < r->n_cats; j++) {
    char name[16];
    snprintf(name, sizeof name, "c%u", (unsigned)rng_below(g, 100));
    r->cats[j] = model_find_category(m, name, strlen(name));
    ck_assert_uint_ne(r->cats[j], 0);
    at += (size_t)snprintf(cmd + at, size - at, " CATEGORY %s", name);
  }
  if (r->for_user)
    at += (size_t)snprintf(cmd + at, size - at, " FOR shopper");
  if (r->n_excl > 0)
    at += (size_t)snprintf(cmd + at, size - at, " EXCLUDE");
  for (size_t j = 0; j < r->n_excl; j++) {
    r->excl[j] = (uint32_t)rng_below(g, n);
    at += (size_t)snprintf(cmd + at, size - at, " i%u", r->excl[j]);
  }
  ck_assert_uint_lt(at, size);
  /* What similar.c and reco.c pass (recommend.h, rec_similar_q): the
   * request's filters, the unavailable items, and with FOR the
   * customer's history (exclude-history yes), hidden items and
   * preferences. */
  r->q = (rec_query_t){.exclude = r->excl, .n_exclude = r->n_excl, .categories = r->cats,
                       .n_categories = r->n_cats, .category_filter = r->n_cats > 0,
                       .unavailable = unav, .offset = offset, .count = count,
                       .max_per_category = cap};
  if (r->for_user) {
    r->q.hist = hist;
    r->q.hist_w = hist_w;
    r->q.n_hist = HIST;
    r->q.history_limit = 500;
    r->q.personalize = 1;
    r->q.exclude_history = 1;
    r->q.hidden = hidden;
    r->q.n_hidden = HIDDEN;
    r->q.pref_cat = pref_cat;
    r->q.pref_val = pref_val;
    r->q.n_pref = 2;
  }
}

/* The reply must be the core's answer: the same ids, each score printed
 * from the same float. */
static void expect_core(const model_t *m, rec_ws_t *ws, const sreq_t *r, const redisReply *rep,
                        const char *cmd) {
  rec_result_t res;
  ck_assert_int_eq(rec_similar_q(m, r->item, &r->q, ws, &res), 0);
  ck_assert_msg(rep->type == REDIS_REPLY_ARRAY, "%s: type %d (%s)", cmd, rep->type,
                rep->type == REDIS_REPLY_ERROR ? rep->str : "");
  ck_assert_msg(rep->elements == 2 * res.n, "%s: %zu elements, want %zu", cmd, rep->elements,
                2 * res.n);
  for (size_t j = 0; j < res.n; j++) {
    size_t len;
    const char *id = model_item_id(m, res.items[j], &len);
    char score[REPLY_DOUBLE_LEN];
    score[reply_format_float(score, res.scores[j])] = '\0';
    ck_assert_msg(rep->element[2 * j]->len == len && memcmp(rep->element[2 * j]->str, id, len) == 0,
                  "%s: [%zu] = %s, want %.*s", cmd, j, rep->element[2 * j]->str, (int)len, id);
    ck_assert_msg(strcmp(rep->element[2 * j + 1]->str, score) == 0, "%s: [%zu] score %s, want %s",
                  cmd, j, rep->element[2 * j + 1]->str, score);
  }
}

static void run(const char *name, const char *split) {
  it_env_t e;
  it_opts_t o = {.model = it_data.synth, .no_import = 1,
                 .extra = {"--unavailable-refresh-ms", "100", split ? "--scan-split-items" : NULL,
                           split, NULL}};
  it_env_start(&e, name, &o);
  model_t *m;
  char err[RECD_ERRLEN];
  ck_assert_msg(model_load(&m, it_data.synth, err) == 0, "%s", err);
  /* The int8 pass, on an AVX2 machine unless RECD_QSCORE_ISA=scalar
   * (inherited by recd) asked for the portable kernel: then the float
   * pass answers, and the comparison below holds all the same. */
  __builtin_cpu_init();
  const char *isa = getenv("RECD_QSCORE_ISA");
  const int int8 = __builtin_cpu_supports("avx2") && !(isa && strcmp(isa, "scalar") == 0);
  if (int8)
    ck_assert_msg(strncmp(it_model_info(e.c, "first_pass"), "int8-", 5) == 0, "first pass %s",
                  it_model_info(e.c, "first_pass"));
  /* The customer, and the unavailable items (some of them the best
   * neighbours of i5, so that the wait below can see them applied). */
  for (int j = 0; j < HIST; j++) {
    hist[j] = item_of(m, hist_ids[j]);
    hist_w[j] = 1.0f + (float)j;
    freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:shopper %d %s", j + 1, hist_ids[j]));
  }
  for (int j = 0; j < HIDDEN; j++) {
    hidden[j] = item_of(m, hidden_ids[j]);
    freeReplyObject(it_cmd(e.redis, "SADD recd:hidden:shopper %s", hidden_ids[j]));
  }
  pref_cat[0] = model_find_category(m, "c3", 2);
  pref_cat[1] = model_find_category(m, "c5", 2);
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:shopper cat:c3 -1 cat:c5 0.5"));
  rec_ws_t ws;
  rec_ws_init(&ws);
  rec_result_t res;
  ck_assert_int_eq(rec_similar(m, 5, UNAV / 4, NULL, &ws, &res), 0);
  memset(unav, 0, sizeof unav);
  rng_t g;
  rng_seed(&g, 77);
  for (int j = 0; j < UNAV; j++) {
    const uint32_t i = j < UNAV / 4 ? res.items[j] : (uint32_t)rng_below(&g, model_n_items(m));
    unav[i / 64] |= 1ull << (i % 64);
    size_t len;
    const char *id = model_item_id(m, i, &len);
    freeReplyObject(it_cmd(e.redis, "SADD recd:unavailable %b", id, len));
  }
  /* Until recd has read them (every 100 ms here). */
  sreq_t probe = {.item = 5};
  probe.q = (rec_query_t){.unavailable = unav, .count = 10};
  const uint64_t until = it_now_ms() + 10000;
  for (;;) {
    redisReply *r = it_cmd(e.c, "SIMILAR i5 COUNT 10 WITHSCORES");
    ck_assert_int_eq(rec_similar_q(m, 5, &probe.q, &ws, &res), 0);
    size_t len = 0;
    const char *best = res.n > 0 ? model_item_id(m, res.items[0], &len) : "";
    const int applied = r->elements == 2 * res.n && res.n > 0 &&
                        r->element[0]->len == len && memcmp(r->element[0]->str, best, len) == 0;
    freeReplyObject(r);
    if (applied)
      break;
    ck_assert_msg(it_now_ms() < until, "the unavailable items were never applied");
    it_sleep_ms(50);
  }
  /* Pipelined: the batcher takes many SIMILARs per job. */
  static sreq_t req[REQS];
  static char cmd[REQS][512];
  for (int round = 0; round < 2; round++) {
    for (int j = 0; j < REQS; j++) {
      make_req(m, &g, &req[j], cmd[j], sizeof cmd[j]);
      ck_assert_int_eq(redisAppendCommand(e.c, cmd[j]), REDIS_OK);
    }
    for (int j = 0; j < REQS; j++) {
      void *v;
      ck_assert_int_eq(redisGetReply(e.c, &v), REDIS_OK);
      expect_core(m, &ws, &req[j], v, cmd[j]);
      freeReplyObject(v);
    }
  }
  /* They were batched, and split when asked to be. */
  ck_assert_msg(it_info_num(e.c, "stats", "scoring_batch_rows_max") > 1, "never batched");
  const double splits = it_info_num(e.c, "stats", "scoring_split_batches");
  if (split && int8)
    ck_assert_msg(splits > 0, "no split batch");
  else
    ck_assert_msg(splits == 0, "%g split batches", splits);
  rec_ws_free(&ws);
  model_free(m);
  it_env_stop(&e);
}

START_TEST(similar_batched) {
  run(__func__, NULL);
}
END_TEST

START_TEST(similar_batched_split) {
  run(__func__, "0");
}
END_TEST

static Suite *similar_suite(void) {
  Suite *s = suite_create("similar");
  IT_ADD(s, similar_batched, 120);
  IT_ADD(s, similar_batched_split, 120);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  int failed = it_run_suite(similar_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
