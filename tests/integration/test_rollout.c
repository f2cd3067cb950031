/* test_rollout.c - rollouts that cannot drift (issue 19), end to end with a
 * real recd: kept versions in models-dir (model.<version>.bin, model.bin a
 * symlink to the newest, as `recd-train --keep` publishes them), MODEL
 * ROLLBACK (default: the version before the served one) serving an earlier
 * model without pinning it (SIGHUP serves model.bin again), MODEL PIN /
 * UNPIN, what MODEL INFO says about all of it, the same per variant, and
 * MODEL CATEGORIES. */
#include <check.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "recd/model.h"

#define V1 "20260101T000000Z"
#define V2 "20260102T000000Z"

/* model.bin -> target, replaced atomically as recd-train does. */
static void point(const char *dir, const char *link, const char *target) {
  char tmp[IT_PATH + 64], dst[IT_PATH + 64];
  it_fmt(tmp, sizeof tmp, "%s/%s.tmp.test01", dir, link);
  it_fmt(dst, sizeof dst, "%s/%s", dir, link);
  unlink(tmp);
  ck_assert_int_eq(symlink(target, tmp), 0);
  ck_assert_int_eq(rename(tmp, dst), 0);
}

static void wait_version(redisContext *c, const char *v) {
  uint64_t t0 = it_now_ms();
  while (strcmp(it_model_info(c, "version"), v) != 0) {
    ck_assert_msg(it_now_ms() - t0 < 5000, "model version %s after 5 s, want %s",
                  it_model_info(c, "version"), v);
    it_sleep_ms(10);
  }
}

static void expect_ok_has(redisReply *r, const char *want) {
  ck_assert_msg(r->type == REDIS_REPLY_STATUS && strstr(r->str, want) != NULL,
                "want +OK ...%s..., got type %d '%s'", want, r->type, r->str ? r->str : "");
  freeReplyObject(r);
}

static void expect_err_has(redisReply *r, const char *want) {
  ck_assert_msg(r->type == REDIS_REPLY_ERROR && strstr(r->str, want) != NULL,
                "want -ERR ...%s..., got type %d '%s'", want, r->type, r->str ? r->str : "");
  freeReplyObject(r);
}

/* The kept_versions value of MODEL INFO [variant], joined with ','. */
static const char *kept_versions(redisContext *c, const char *variant) {
  static char buf[512];
  redisReply *r = variant ? it_cmd(c, "MODEL INFO %s", variant) : it_cmd(c, "MODEL INFO");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  buf[0] = '\0';
  int found = 0;
  for (size_t i = 0; i + 1 < r->elements; i += 2)
    if (strcmp(r->element[i]->str, "kept_versions") == 0) {
      const redisReply *a = r->element[i + 1];
      ck_assert_int_eq(a->type, REDIS_REPLY_ARRAY);
      for (size_t j = 0; j < a->elements; j++)
        it_fmt(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", j ? "," : "", a->element[j]->str);
      found = 1;
    }
  freeReplyObject(r);
  ck_assert(found);
  return buf;
}

START_TEST(rollback_and_pin) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  char p1[IT_PATH + 64], p2[IT_PATH + 64];
  it_fmt(p1, sizeof p1, "%s/model." V1 ".bin", e.models_dir);
  it_fmt(p2, sizeof p2, "%s/model." V2 ".bin", e.models_dir);
  it_copy_file(it_data.model1, p1); /* k = 16 */
  it_copy_file(it_data.model2, p2); /* k = 12 */
  point(e.models_dir, "model.bin", "model." V2 ".bin");
  kill(e.recd_pid, SIGHUP);
  wait_version(c, "2");
  ck_assert_str_eq(it_model_info(c, "path"), e.model);
  ck_assert_str_eq(it_model_info(c, "file_version"), V2);
  ck_assert_str_eq(it_model_info(c, "factors"), "12");
  ck_assert_str_eq(it_model_info(c, "pinned"), "no");
  ck_assert_str_eq(it_model_info(c, "next_reload"), e.model);
  ck_assert_str_eq(kept_versions(c, NULL), V2 "," V1);
  ck_assert_ptr_nonnull(strstr(it_model_info(c, "file"), "/model." V2 ".bin"));

  /* ROLLBACK: the version before the served one, not pinned. */
  expect_ok_has(it_cmd(c, "MODEL ROLLBACK"), "rolled back to " V1);
  ck_assert_str_eq(it_model_info(c, "file_version"), V1);
  ck_assert_str_eq(it_model_info(c, "factors"), "16");
  ck_assert_str_eq(it_model_info(c, "pinned"), "no");
  expect_err_has(it_cmd(c, "MODEL ROLLBACK"), "no kept version older than the served " V1);
  /* ... and SIGHUP (the nightly publish) serves model.bin, the newest. */
  kill(e.recd_pid, SIGHUP);
  wait_version(c, "4");
  ck_assert_str_eq(it_model_info(c, "file_version"), V2);

  /* ROLLBACK <version>, then PIN: SIGHUP, RELOAD and ROLLBACK refused. */
  expect_ok_has(it_cmd(c, "MODEL ROLLBACK " V1), "not pinned: the next publish, SIGHUP");
  expect_ok_has(it_cmd(c, "MODEL PIN"), "pinned to " V1);
  ck_assert_str_eq(it_model_info(c, "pinned"), "yes");
  ck_assert_str_eq(it_model_info(c, "next_reload"), "none (pinned)");
  double failed = it_info_num(c, "model", "model_reloads_failed");
  kill(e.recd_pid, SIGHUP);
  it_sleep_ms(300);
  ck_assert_str_eq(it_model_info(c, "version"), "5");
  ck_assert_str_eq(it_model_info(c, "file_version"), V1);
  ck_assert_double_eq(it_info_num(c, "model", "model_reloads_failed"), failed);
  expect_err_has(it_cmd(c, "MODEL RELOAD"), "reload refused: model pinned to " V1);
  expect_err_has(it_cmd(c, "MODEL RELOAD model.bin"), "MODEL UNPIN first");
  expect_err_has(it_cmd(c, "MODEL ROLLBACK"), "rollback refused: model pinned");
  /* PIN <version> moves the pin. */
  expect_ok_has(it_cmd(c, "MODEL PIN " V2), "pinned to " V2);
  ck_assert_str_eq(it_model_info(c, "file_version"), V2);
  ck_assert_str_eq(it_model_info(c, "pinned"), "yes");
  expect_ok_has(it_cmd(c, "MODEL UNPIN"), "unpinned: still serving " V2);
  expect_ok_has(it_cmd(c, "MODEL UNPIN"), "not pinned");
  ck_assert_str_eq(it_model_info(c, "pinned"), "no");
  expect_ok_has(it_cmd(c, "MODEL RELOAD"), "OK model version 7");

  /* Errors name the culprit and what exists. */
  expect_err_has(it_cmd(c, "MODEL ROLLBACK 20250101T000000Z"),
                 "no kept version 20250101T000000Z in");
  expect_err_has(it_cmd(c, "MODEL ROLLBACK 20250101T000000Z"), "(kept: " V2 ", " V1 ")");
  expect_err_has(it_cmd(c, "MODEL ROLLBACK 20261301T000000Z"),
                 "'20261301T000000Z' is not a version: expected YYYYMMDDTHHMMSSZ");
  expect_err_has(it_cmd(c, "MODEL PIN ../model"), "is not a version");
  expect_err_has(it_cmd(c, "MODEL ROLLBACK default nope"), "'nope' is not a version");
  expect_err_has(it_cmd(c, "MODEL UNPIN x"), "unknown variant 'x'");
  expect_err_has(it_cmd(c, "MODEL PIN a b c"), "unknown MODEL subcommand");
  ck_assert_str_eq(it_model_info(c, "version"), "7");
  it_env_stop(&e);
}
END_TEST

START_TEST(categories) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  model_t *m;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(model_load(&m, it_data.model1, err), 0);
  redisReply *r = it_cmd(e.c, "MODEL CATEGORIES");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 2 * model_n_categories(m));
  uint64_t sum = 0;
  for (size_t i = 0; i < r->elements; i += 2) {
    ck_assert_int_eq(r->element[i]->type, REDIS_REPLY_STRING);
    ck_assert_int_eq(r->element[i + 1]->type, REDIS_REPLY_INTEGER);
    if (i > 0) /* sorted by name */
      ck_assert_int_lt(strcmp(r->element[i - 2]->str, r->element[i]->str), 0);
    uint32_t cat = model_find_category(m, r->element[i]->str, r->element[i]->len);
    ck_assert_uint_gt(cat, 0);
    long long want = 0;
    for (uint32_t j = 0; j < model_n_items(m); j++)
      want += model_item_categories(m)[j] == cat;
    ck_assert_int_eq(r->element[i + 1]->integer, want);
    sum += (uint64_t)want;
  }
  freeReplyObject(r);
  char un[32];
  it_fmt(un, sizeof un, "%llu", (unsigned long long)(model_n_items(m) - sum));
  ck_assert_str_eq(it_model_info(e.c, "uncategorized_items"), un);
  model_free(m);
  it_expect_error(e.c, "ERR unknown variant 'x'", "MODEL CATEGORIES x");
  it_env_stop(&e);
}
END_TEST

/* Each variant has its own kept versions (<stem>.<version>.bin of its own
 * model path) and its own pin. */
START_TEST(variants) {
  it_env_t e;
  it_opts_t o;
  memset(&o, 0, sizeof o);
  o.no_model = 1;
  /* Variant b's files are prepared by the runner before recd starts: its
   * model path must exist. */
  char cand[IT_PATH + 64];
  it_fmt(cand, sizeof cand, "%s/variants/candidate.bin", it_data.dir);
  static char va[IT_PATH + 96], vb[IT_PATH + 96], dir[IT_PATH + 64];
  it_fmt(dir, sizeof dir, "%s/variants", it_data.dir);
  it_fmt(va, sizeof va, "a %s/variants/control.bin 50", it_data.dir);
  it_fmt(vb, sizeof vb, "b %s 50", cand);
  it_fmt(cand, sizeof cand, "%s/candidate." V1 ".bin", dir);
  it_copy_file(it_data.model1, cand);
  it_fmt(cand, sizeof cand, "%s/candidate." V2 ".bin", dir);
  it_copy_file(it_data.model2, cand);
  point(dir, "candidate.bin", "candidate." V2 ".bin");
  it_fmt(cand, sizeof cand, "%s/control.bin", dir);
  it_copy_file(it_data.model1, cand);
  static char md[IT_PATH + 64];
  it_fmt(md, sizeof md, "%s", dir);
  o.extra[0] = "--variant";
  o.extra[1] = va;
  o.extra[2] = "--variant";
  o.extra[3] = vb;
  o.extra[4] = "--models-dir";
  o.extra[5] = md;
  it_env_start(&e, __func__, &o);
  redisContext *c = e.c;
  ck_assert_str_eq(kept_versions(c, "b"), V2 "," V1);
  ck_assert_str_eq(kept_versions(c, "a"), "");
  expect_err_has(it_cmd(c, "MODEL ROLLBACK a"), "no kept version older than");
  expect_ok_has(it_cmd(c, "MODEL ROLLBACK b"), "rolled back to " V1);
  redisReply *r = it_cmd(c, "MODEL INFO b");
  freeReplyObject(r);
  expect_ok_has(it_cmd(c, "MODEL PIN b"), "pinned to " V1);
  expect_ok_has(it_cmd(c, "MODEL UNPIN a"), "not pinned");
  expect_ok_has(it_cmd(c, "MODEL RELOAD a"), "OK model version 2");
  expect_err_has(it_cmd(c, "MODEL RELOAD b"), "pinned");
  expect_ok_has(it_cmd(c, "MODEL UNPIN b"), "unpinned");
  expect_ok_has(it_cmd(c, "MODEL RELOAD b"), "OK model version 3");
  r = it_cmd(c, "MODEL CATEGORIES b");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  it_env_stop(&e);
}
END_TEST

static Suite *rollout_suite(void) {
  Suite *s = suite_create("rollout");
  IT_ADD(s, rollback_and_pin, 120);
  IT_ADD(s, categories, 60);
  IT_ADD(s, variants, 60);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  char dir[IT_PATH + 16];
  it_fmt(dir, sizeof dir, "%s/variants", it_data.dir);
  IT_CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
  int failed = it_run_suite(rollout_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
