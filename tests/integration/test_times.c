/* test_times.c - the last interaction time per customer and item (issue
 * 16), <prefix>time:<user>, a ZSET item -> unix seconds, end to end through
 * the real daemon and a real redis-server:
 *
 *   feedback_times  a FEEDBACK that adds weight sets the item's time to
 *                   recd's clock; a later one moves it forward, never back
 *                   (a later time stays); a time that is no time (a day
 *                   ahead, fractional) is replaced; a weight-0 outcome and
 *                   hide / unhide write no time; a time key of the wrong
 *                   type fails the FEEDBACK with its name and records
 *                   nothing (nor does a history of the wrong type)
 *   merge_times     MERGE keeps the later time per item, drops from's
 *                   implausible times, deletes from's key; a key of the
 *                   wrong type fails the MERGE with its name and merges
 *                   nothing
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

/* ZSCORE key item as a number; NAN when the item has none. */
static double zscore(redisContext *c, const char *key, const char *item) {
  redisReply *r = it_cmd(c, "ZSCORE %s %s", key, item);
  ck_assert_msg(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL,
                "ZSCORE %s %s: type %d", key, item, r->type);
  double v = r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : NAN;
  freeReplyObject(r);
  return v;
}

static long long int_cmd(redisContext *c, const char *fmt, const char *a) {
  redisReply *r = it_cmd(c, fmt, a);
  ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "%s: type %d (%s)", fmt, r->type,
                r->type == REDIS_REPLY_ERROR ? r->str : "");
  long long v = r->integer;
  freeReplyObject(r);
  return v;
}

/* Runs a command given as one string, its words split at spaces (the ids
 * here have none). */
static redisReply *words(redisContext *c, const char *cmd) {
  char buf[256];
  const char *argv[16];
  int argc = 0;
  snprintf(buf, sizeof buf, "%s", cmd);
  for (char *save = NULL, *w = strtok_r(buf, " ", &save); w != NULL && argc < 16;
       w = strtok_r(NULL, " ", &save))
    argv[argc++] = w;
  return it_cmdv(c, argc, argv);
}

/* A FEEDBACK that must succeed (its reply, the new weight, is dropped). */
static void feedback(redisContext *c, const char *user, const char *item, const char *opts) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "FEEDBACK %s %s %s", user, item, opts);
  redisReply *r = words(c, cmd);
  ck_assert_msg(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_INTEGER,
                "%s: type %d (%s)", cmd, r->type, r->type == REDIS_REPLY_ERROR ? r->str : "");
  freeReplyObject(r);
}

/* The item's time must be recd's clock now: an integer within a few
 * seconds of ours. */
static void assert_now(redisContext *rd, const char *key, const char *item) {
  const double t = zscore(rd, key, item), now = (double)time(NULL);
  ck_assert_msg(!isnan(t), "%s has no time for %s", key, item);
  ck_assert_msg(t == floor(t) && fabs(t - now) <= 5, "%s %s: time %.17g, now %.0f", key, item,
                t, now);
}

/* The command must fail with an error that
 * contains each of the needles. */
static void expect_error_has(redisContext *c, const char *cmd, const char *n1, const char *n2) {
  redisReply *r = words(c, cmd);
  ck_assert_msg(r->type == REDIS_REPLY_ERROR, "%s: type %d", cmd, r->type);
  ck_assert_msg(strstr(r->str, n1) != NULL && strstr(r->str, n2) != NULL,
                "%s: \"%s\" lacks \"%s\" or \"%s\"", cmd, r->str, n1, n2);
  freeReplyObject(r);
}

START_TEST(feedback_times) {
  it_env_t e;
  /* Clicks carry no history weight here: an outcome only. */
  it_env_start(&e, "feedback_times",
               &(it_opts_t){.no_import = 1, .extra = {"--feedback-weight-click", "0", NULL}});
  redisContext *rd = e.redis;
  feedback(e.c, "u1", "item1", "");
  assert_now(rd, "recd:time:u1", "item1");
  /* An older time moves forward; the history and the time stay together. */
  freeReplyObject(it_cmd(rd, "ZADD recd:time:u1 1000 item1"));
  feedback(e.c, "u1", "item1", "TYPE cart");
  assert_now(rd, "recd:time:u1", "item1");
  ck_assert_double_eq(zscore(rd, "recd:hist:u1", "item1"), 1.5);
  /* A later time (another replica's clock an hour ahead) stays: only
   * forward, as ZADD GT. */
  char later[32];
  const long long ahead = (long long)time(NULL) + 3600;
  snprintf(later, sizeof later, "%lld", ahead);
  freeReplyObject(it_cmd(rd, "ZADD recd:time:u1 %s item2", later));
  feedback(e.c, "u1", "item2", "WEIGHT 2");
  ck_assert_double_eq(zscore(rd, "recd:time:u1", "item2"), (double)ahead);
  ck_assert_double_eq(zscore(rd, "recd:hist:u1", "item2"), 2);
  /* Scores that are no time are replaced: far ahead, fractional. */
  freeReplyObject(it_cmd(rd, "ZADD recd:time:u1 1e15 item3 %lld.5 item4", ahead));
  feedback(e.c, "u1", "item3", "");
  feedback(e.c, "u1", "item4", "");
  assert_now(rd, "recd:time:u1", "item3");
  assert_now(rd, "recd:time:u1", "item4");
  /* A weight-0 outcome changes no history, so no time either. */
  feedback(e.c, "u1", "item5", "TYPE click");
  ck_assert(isnan(zscore(rd, "recd:hist:u1", "item5")));
  ck_assert(isnan(zscore(rd, "recd:time:u1", "item5")));
  /* Neither does hide / unhide. */
  feedback(e.c, "u1", "item6", "TYPE hide");
  feedback(e.c, "u1", "item6", "TYPE unhide");
  ck_assert(isnan(zscore(rd, "recd:time:u1", "item6")));
  /* A fresh customer: both keys created by the one FEEDBACK. */
  feedback(e.c, "u9", "item1", "TYPE cart");
  assert_now(rd, "recd:time:u9", "item1");
  ck_assert_int_eq(int_cmd(rd, "ZCARD %s", "recd:time:u9"), 1);
  /* Hostile data: a STRING under time: fails the FEEDBACK, named, and the
   * history is not touched (the script checks before it writes). */
  freeReplyObject(it_cmd(rd, "SET recd:time:u2 not-a-zset"));
  expect_error_has(e.c, "FEEDBACK u2 item1", "WRONGTYPE", "recd:time:u2");
  ck_assert_int_eq(int_cmd(rd, "EXISTS %s", "recd:hist:u2"), 0);
  /* A history of the wrong type: named, and no time written. */
  freeReplyObject(it_cmd(rd, "SET recd:hist:u3 not-a-zset"));
  expect_error_has(e.c, "FEEDBACK u3 item1", "WRONGTYPE", "recd:hist:u3");
  ck_assert_int_eq(int_cmd(rd, "EXISTS %s", "recd:time:u3"), 0);
  /* The daemon serves on. */
  redisReply *r = it_cmd(e.c, "PING");
  ck_assert_str_eq(r->str, "PONG");
  freeReplyObject(r);
  it_env_stop(&e);
}
END_TEST

START_TEST(merge_times) {
  it_env_t e;
  it_env_start(&e, "merge_times", &(it_opts_t){.no_import = 1});
  redisContext *rd = e.redis;
  freeReplyObject(it_cmd(rd, "ZADD recd:hist:anon 1 a 1 b 1 c 1 d"));
  freeReplyObject(it_cmd(rd, "ZADD recd:hist:cust 1 b 1 c 1 e"));
  /* b: anon's later; c: cust's later; d: anon's is no time; e: cust's
   * only. */
  freeReplyObject(it_cmd(rd, "ZADD recd:time:anon 100 a 300 b 100 c 1e15 d"));
  freeReplyObject(it_cmd(rd, "ZADD recd:time:cust 200 b 200 c 50 e"));
  ck_assert_int_eq(int_cmd(e.c, "MERGE anon %s", "cust"), 4);
  ck_assert_double_eq(zscore(rd, "recd:time:cust", "a"), 100);
  ck_assert_double_eq(zscore(rd, "recd:time:cust", "b"), 300);
  ck_assert_double_eq(zscore(rd, "recd:time:cust", "c"), 200);
  ck_assert(isnan(zscore(rd, "recd:time:cust", "d")));
  ck_assert_double_eq(zscore(rd, "recd:time:cust", "e"), 50);
  ck_assert_int_eq(int_cmd(rd, "EXISTS %s", "recd:time:anon"), 0);
  ck_assert_int_eq(int_cmd(rd, "EXISTS %s", "recd:hist:anon"), 0);
  /* Again: nothing to merge, nothing changed. */
  ck_assert_int_eq(int_cmd(e.c, "MERGE anon %s", "cust"), 0);
  ck_assert_double_eq(zscore(rd, "recd:time:cust", "b"), 300);
  /* A visitor with times and no history (the storefront wrote only
   * times): they are merged all the same. */
  freeReplyObject(it_cmd(rd, "ZADD recd:time:anon2 400 c"));
  ck_assert_int_eq(int_cmd(e.c, "MERGE anon2 %s", "cust"), 0);
  ck_assert_double_eq(zscore(rd, "recd:time:cust", "c"), 400);
  ck_assert_int_eq(int_cmd(rd, "EXISTS %s", "recd:time:anon2"), 0);
  /* Hostile data: a STRING under from's time: key fails the MERGE, named,
   * before anything is written. */
  freeReplyObject(it_cmd(rd, "ZADD recd:hist:anon3 5 a"));
  freeReplyObject(it_cmd(rd, "SADD recd:hidden:anon3 z"));
  freeReplyObject(it_cmd(rd, "SET recd:time:anon3 not-a-zset"));
  expect_error_has(e.c, "MERGE anon3 cust", "WRONGTYPE", "recd:time:anon3");
  ck_assert_double_eq(zscore(rd, "recd:hist:cust", "a"), 1);
  ck_assert_int_eq(int_cmd(rd, "EXISTS %s", "recd:hist:anon3"), 1);
  ck_assert_int_eq(int_cmd(rd, "SISMEMBER recd:hidden:cust %s", "z"), 0);
  /* The same for a to-key of the wrong type (here the hidden set). */
  freeReplyObject(it_cmd(rd, "DEL recd:time:anon3"));
  freeReplyObject(it_cmd(rd, "SET recd:hidden:cust2 not-a-set"));
  expect_error_has(e.c, "MERGE anon3 cust2", "WRONGTYPE", "recd:hidden:cust2");
  ck_assert_int_eq(int_cmd(rd, "EXISTS %s", "recd:hist:cust2"), 0);
  ck_assert_int_eq(int_cmd(rd, "EXISTS %s", "recd:hist:anon3"), 1);
  it_env_stop(&e);
}
END_TEST

static Suite *times_suite(void) {
  Suite *s = suite_create("times");
  IT_ADD(s, feedback_times, 120);
  IT_ADD(s, merge_times, 120);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  int failed = it_run_suite(times_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
