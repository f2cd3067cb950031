/* test_fault_reload.c - the daemon's model store (model_store.h) with every
 * allocation failed in turn (faultloop.h): the initial load, a reload that
 * runs on libuv's thread pool (so the failing allocation is on a pool
 * thread), and the unavailable set.
 *
 * A failed reload must leave the old model served (same version, its
 * unavailable set intact), report RECD_ENOMEM with "out of memory" through
 * the callback, count in reloads_failed, leak nothing, and a reload right
 * after must work. The one allocation a reload may lose without failing is
 * the rebuilt unavailable bitmap: the new model is then served with nothing
 * unavailable (model_store.h), which `degraded` checks.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "faultalloc.h"
#include "faultloop.h"
#include "log.h"
#include "model_store.h"
#include "recd/model.h"
#include "testutil.h"

enum { K = 8, N1 = 120, N2 = 200, NC = 3 };

/* Item ids "id-<i>" (so both models know the unavailable ids below), n
 * items of k factors, categories; seed varies Y. */
static void write_model(const char *path, uint32_t n, uint64_t seed) {
  float *Y = malloc((size_t)n * K * sizeof *Y), *pop = malloc(n * sizeof *pop);
  uint32_t *cat = malloc(n * sizeof *cat), *lens = malloc(n * sizeof *lens);
  char (*idbuf)[16] = malloc(n * sizeof *idbuf);
  const char **ids = malloc(n * sizeof *ids);
  ck_assert(Y && pop && cat && lens && idbuf && ids);
  tu_randn(Y, (size_t)n * K, seed, 0.3f);
  for (uint32_t i = 0; i < n; i++) {
    pop[i] = (float)(i % 17);
    cat[i] = i % (NC + 1);
    lens[i] = (uint32_t)snprintf(idbuf[i], sizeof idbuf[i], "id-%u", i);
    ids[i] = idbuf[i];
  }
  const char *cnames[NC] = {"a", "bb", "ccc"};
  const uint32_t clens[NC] = {1, 2, 3};
  model_spec_t spec = {
      .n_items = n,
      .params = {.factors = K, .iterations = 1, .conf_mode = PARAMS_CONF_LOG, .cg_steps = 3,
                 .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f, .reg_exponent = 0.5f},
      .meta = {.created_at = 1700000000, .score_scale = 0.5f},
      .Y = Y, .ldy = K, .popularity = pop, .item_ids = ids, .item_id_lens = lens,
      .item_category = cat, .n_categories = NC, .category_names = cnames,
      .category_name_lens = clens};
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&spec, path, err) == 0, "%s", err);
  free(Y), free(pop), free(cat), free(lens), free(idbuf), free(ids);
}

static const char *const unavail_ids[] = {"id-3", "id-50", "id-119", "id-150", "nope"};
static const size_t unavail_lens[] = {4, 5, 6, 6, 4};
#define N_UNAVAIL 5
#define UNAVAIL_IN_1 3 /* of them, items of model 1 (N1 = 120 items) */
#define UNAVAIL_IN_2 4 /* of model 2 */

typedef struct rl_ctx {
  uv_loop_t loop;
  model_store_opts_t opts;
  char dir[4096], path1[4096], path2[4096];
  model_store_t *ms;
  /* the reload's callback */
  int called, status;
  char msg[RECD_ERRLEN + 64];
} rl_ctx_t;

static void rl_done(int status, const char *msg, void *arg) {
  rl_ctx_t *x = arg;
  x->called++;
  x->status = status;
  snprintf(x->msg, sizeof x->msg, "%s", msg);
}

static void loop_setup(void *c) {
  rl_ctx_t *x = c;
  ck_assert_int_eq(uv_loop_init(&x->loop), 0);
  x->ms = NULL;
  x->called = 0;
}

static void loop_teardown(void *c) {
  rl_ctx_t *x = c;
  model_store_free(x->ms);
  x->ms = NULL;
  ck_assert_int_eq(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&x->loop), 0);
}

/* Whether requests get a bitmap at all (none after its rebuild failed). */
static int has_bitmap(model_store_t *ms) {
  model_ref_t ref;
  model_store_hold(ms, &ref);
  int has = ref.unavail != NULL;
  model_ref_release(&ref);
  return has;
}

/* What a request sees: the served model and its unavailable set. */
static void expect_served(model_store_t *ms, uint64_t version, uint32_t n_items,
                          size_t unavailable) {
  const served_t *cur = model_store_current(ms);
  ck_assert_ptr_nonnull(cur);
  ck_assert_uint_eq(cur->version, version);
  ck_assert_uint_eq(model_n_items(cur->m), n_items);
  ck_assert_ptr_eq(cur->sm.m, cur->m);
  model_ref_t ref;
  model_store_hold(ms, &ref);
  ck_assert_ptr_eq(ref.sv, cur);
  if (unavailable == 0) {
    ck_assert(ref.unavail == NULL || ref.unavail->n_set == 0);
  } else {
    ck_assert_ptr_nonnull(ref.unavail);
    ck_assert_uint_eq(ref.unavail->n_set, unavailable);
    ck_assert_ptr_eq(ref.unavail->for_model, cur);
  }
  model_ref_release(&ref);
  model_store_stats_t st;
  model_store_get_stats(ms, &st);
  ck_assert_uint_eq(st.unavailable, unavailable);
  ck_assert_int_eq(model_store_reloading(ms), 0);
}

/* ---- model_store_open ---------------------------------------------------- */

static int open_run(void *c, char *err) {
  rl_ctx_t *x = c;
  return model_store_open(&x->loop, &x->opts, &x->ms, err);
}

static void open_after_fail(void *c, int rc) {
  (void)rc;
  rl_ctx_t *x = c;
  ck_assert_ptr_null(x->ms);
}

/* The one allocation open may lose: the (empty) unavailable bitmap; the
 * model is served with nothing unavailable, as after a reload. */
static void open_degraded(void *c) {
  rl_ctx_t *x = c;
  expect_served(x->ms, 1, N1, 0);
  ck_assert_msg(!has_bitmap(x->ms), "model_store_open succeeded although an allocation "
                "other than the unavailable bitmap's failed");
}

static void open_check(void *c) {
  rl_ctx_t *x = c;
  expect_served(x->ms, 1, N1, 0);
  ck_assert(has_bitmap(x->ms));
  ck_assert_str_eq(model_store_current(x->ms)->path, x->path1);
}

static void open_undo(void *c) {
  rl_ctx_t *x = c;
  model_store_free(x->ms);
  x->ms = NULL;
}

/* ---- model_store_reload ------------------------------------------------- */

static void reload_setup(void *c) {
  rl_ctx_t *x = c;
  loop_setup(c);
  char err[RECD_ERRLEN];
  ck_assert_msg(model_store_open(&x->loop, &x->opts, &x->ms, err) == 0, "%s", err);
  model_store_set_unavailable(x->ms, unavail_ids, unavail_lens, N_UNAVAIL);
  expect_served(x->ms, 1, N1, UNAVAIL_IN_1);
}

/* The reload as the daemon runs it: queued from the loop, loaded on the
 * pool, installed by the after-work callback on the loop thread. */
static int reload_run(void *c, char *err) {
  rl_ctx_t *x = c;
  x->called = 0;
  x->status = -100;
  int rc = model_store_reload(x->ms, x->path2, rl_done, x, err);
  if (rc != 0)
    return rc;
  uv_run(&x->loop, UV_RUN_DEFAULT);
  snprintf(err, RECD_ERRLEN, "%s", x->msg);
  return x->called == 1 ? x->status : RECD_EINVAL;
}

static void reload_after_fail(void *c, int rc) {
  (void)rc;
  rl_ctx_t *x = c;
  ck_assert_int_le(x->called, 1);
  expect_served(x->ms, 1, N1, UNAVAIL_IN_1); /* the old model, untouched */
  model_store_stats_t st;
  model_store_get_stats(x->ms, &st);
  ck_assert_uint_eq(st.reloads_ok, 0);
  if (x->called) { /* failed on the pool, not in model_store_reload itself */
    ck_assert_uint_eq(st.reloads_failed, 1);
    ck_assert_msg(strstr(st.last_reload_error, "out of memory") != NULL, "%s",
                  st.last_reload_error);
  }
}

static void reload_degraded(void *c) {
  rl_ctx_t *x = c;
  ck_assert_int_eq(x->called, 1);
  expect_served(x->ms, 2, N2, 0); /* the bitmap of the new model was lost */
  ck_assert_msg(!has_bitmap(x->ms), "the reload succeeded although an allocation other "
                "than the unavailable bitmap's failed");
}

static void reload_check(void *c) {
  rl_ctx_t *x = c;
  ck_assert_int_eq(x->called, 1);
  const served_t *cur = model_store_current(x->ms);
  expect_served(x->ms, cur->version, N2, UNAVAIL_IN_2);
  ck_assert_str_eq(cur->path, x->path2);
}

/* ---- model_store_set_unavailable ---------------------------------------- */

static void unavail_setup(void *c) {
  rl_ctx_t *x = c;
  loop_setup(c);
  char err[RECD_ERRLEN];
  ck_assert_msg(model_store_open(&x->loop, &x->opts, &x->ms, err) == 0, "%s", err);
  model_store_set_unavailable(x->ms, unavail_ids, unavail_lens, 1); /* "id-3" */
  expect_served(x->ms, 1, N1, 1);
}

/* void: "the previous set stays when memory runs out (logged)", which is
 * what the result says. */
static int unavail_run(void *c, char *err) {
  (void)err;
  rl_ctx_t *x = c;
  model_store_set_unavailable(x->ms, unavail_ids, unavail_lens, N_UNAVAIL);
  model_store_stats_t st;
  model_store_get_stats(x->ms, &st);
  return st.unavailable == UNAVAIL_IN_1 ? 0 : st.unavailable == 1 ? RECD_ENOMEM : RECD_EINVAL;
}

static void unavail_after_fail(void *c, int rc) {
  (void)rc;
  rl_ctx_t *x = c;
  expect_served(x->ms, 1, N1, 1);
}

static void unavail_check(void *c) {
  rl_ctx_t *x = c;
  expect_served(x->ms, 1, N1, UNAVAIL_IN_1);
}

START_TEST(test_model_store) {
  static rl_ctx_t x;
  memset(&x, 0, sizeof x);
  char *dir = tu_mkdtemp();
  snprintf(x.dir, sizeof x.dir, "%s", dir);
  snprintf(x.path1, sizeof x.path1, "%s/m1.bin", dir);
  snprintf(x.path2, sizeof x.path2, "%s/m2.bin", dir);
  write_model(x.path1, N1, 1);
  write_model(x.path2, N2, 2);
  log_set_level(CONFIG_LOG_WARNING + 1); /* the loops would log hundreds of lines */
  x.opts.model = x.path1;
  x.opts.models_dir = "";
  serve_opts_default(&x.opts.serve);
  x.opts.serve.automatic = 0;
  x.opts.serve.pass = SERVE_PASS_INT8; /* with the int8 copy to build */

  const fault_op_t open = {.name = "model_store_open", .has_msg = 1, .setup = loop_setup,
                           .run = open_run, .after_fail = open_after_fail, .degraded = open_degraded,
                           .check = open_check,
                           .undo = open_undo, .teardown = loop_teardown};
  fault_check(&open, &x);
  const fault_op_t reload = {.name = "model_store_reload (on the pool)", .has_msg = 1,
                             .setup = reload_setup, .run = reload_run,
                             .after_fail = reload_after_fail, .degraded = reload_degraded,
                             .check = reload_check, .teardown = loop_teardown};
  fault_check(&reload, &x);
  const fault_op_t unavail = {.name = "model_store_set_unavailable", .setup = unavail_setup,
                              .run = unavail_run, .after_fail = unavail_after_fail,
                              .check = unavail_check, .teardown = loop_teardown};
  fault_check(&unavail, &x);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

static Suite *reload_suite(void) {
  Suite *s = suite_create("fault_reload");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_model_store);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(reload_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
