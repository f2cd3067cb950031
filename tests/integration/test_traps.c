/* test_traps.c - issue 19, "no silent traps": each trap a new user of the
 * demo shop fell into, driven through the real daemon against a real
 * redis-server. Every test here failed on the code before the issue (an
 * option swallowed as an id, a bare "syntax error", an empty array for a
 * misspelt category, an empty id accepted, a degraded answer that looked
 * like a new customer's, a FEEDBACK or a preference that vanished without
 * a word), and passes now.
 */
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "helpers.h"

/* The error of a command, which must be one and contain every needle. */
static void expect_error_has(redisContext *c, const char *cmdline, const char *n1,
                             const char *n2) {
  /* split on blanks into an argument vector */
  char buf[512];
  const char *argv[32];
  int argc = 0;
  snprintf(buf, sizeof buf, "%s", cmdline);
  for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < 32;
       t = strtok_r(NULL, " ", &save))
    argv[argc++] = t;
  redisReply *r = it_cmdv(c, argc, argv);
  ck_assert_msg(r->type == REDIS_REPLY_ERROR, "'%s' was accepted (reply type %d, %zu elements)",
                cmdline, r->type, r->type == REDIS_REPLY_ARRAY ? r->elements : 0);
  ck_assert_msg(strstr(r->str, n1) != NULL, "'%s': error '%s' lacks '%s'", cmdline, r->str, n1);
  ck_assert_msg(n2 == NULL || strstr(r->str, n2) != NULL, "'%s': error '%s' lacks '%s'", cmdline,
                r->str, n2);
  freeReplyObject(r);
}

/* Same with an argument vector (empty ids). */
static void expect_errorv(redisContext *c, int argc, const char **argv, const char *needle) {
  redisReply *r = it_cmdv(c, argc, argv);
  ck_assert_msg(r->type == REDIS_REPLY_ERROR, "%s with an empty id was accepted", argv[0]);
  ck_assert_msg(strstr(r->str, needle) != NULL, "error '%s' lacks '%s'", r->str, needle);
  freeReplyObject(r);
}

/* WITHMETA's element: a flat array of field, value pairs; the value of f. */
static const char *meta(const redisReply *m, const char *f) {
  ck_assert_int_eq(m->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(m->elements, 10);
  for (size_t j = 0; j + 1 < m->elements; j += 2)
    if (strcmp(m->element[j]->str, f) == 0)
      return m->element[j + 1]->str;
  ck_abort_msg("no field %s in WITHMETA", f);
  return NULL;
}

/* ---- the grammar ---------------------------------------------------------- */

START_TEST(grammar_traps) {
  it_env_t e;
  it_env_start(&e, "grammar_traps", NULL);
  redisContext *c = e.c;
  /* An option after EXCLUDE was an id to exclude: 10 items, no scores. */
  expect_error_has(c, "RECOMMEND user5 EXCLUDE item1 COUNT 2", "syntax error at 'COUNT'",
                   "options go before EXCLUDE");
  expect_error_has(c, "RECOMMEND user5 EXCLUDE item1 WITHSCORES", "syntax error at 'WITHSCORES'",
                   NULL);
  /* RANK ranked the item "WITHSCORES". */
  expect_error_has(c, "RANK user5 item1 WITHSCORES item2", "syntax error at 'item2'",
                   "RANK's items come before its options");
  /* Bare "syntax error": now the token, what was expected, the likely fix. */
  expect_error_has(c, "RECOMMEND user5 COUNTS 2", "syntax error at 'COUNTS': expected COUNT, "
                   "OFFSET", "(did you mean COUNT?)");
  expect_error_has(c, "RECOMMEND user5 WITHSCORE", "syntax error at 'WITHSCORE'",
                   "(did you mean WITHSCORES?)");
  expect_error_has(c, "RANK user5 item1 item2 WITHSCORE", "syntax error at 'WITHSCORE'",
                   "did you mean WITHSCORES?");
  expect_error_has(c, "SIMILAR item1 5", "syntax error at '5'", "(did you mean COUNT 5?)");
  expect_error_has(c, "FEEDBACK user5 item1 5", "syntax error at '5': expected WEIGHT, TYPE or "
                   "VALUE", "(did you mean WEIGHT 5?)");
  /* A misspelt category answered an empty array. */
  expect_error_has(c, "RECOMMEND user5 CATEGORY catt3", "unknown CATEGORY 'catt3'",
                   "did you mean 'cat3'");
  expect_error_has(c, "RECOMMEND user5 CATEGORY Cat3", "unknown CATEGORY 'Cat3'",
                   "did you mean 'cat3'");
  expect_error_has(c, "SIMILAR item1 CATEGORY CAT3", "unknown CATEGORY 'CAT3'", NULL);
  /* Empty ids were accepted. */
  const char *r1[] = {"RECOMMEND", "", "COUNT", "2"};
  expect_errorv(c, 4, r1, "user id is empty");
  const char *r2[] = {"RANK", "user5", "item1", ""};
  expect_errorv(c, 4, r2, "RANK item #2 is empty");
  const char *r3[] = {"SIMILAR", ""};
  expect_errorv(c, 2, r3, "item id is empty");
  const char *r4[] = {"RECOMMEND", "user5", "EXCLUDE", ""};
  expect_errorv(c, 4, r4, "EXCLUDE id #1 is empty");
  const char *r5[] = {"FEEDBACK", "user5", ""};
  expect_errorv(c, 3, r5, "the item id is empty");
  /* Wrong arity says what was expected. */
  expect_error_has(c, "FEEDBACK user5", "wrong number of arguments for 'feedback' command",
                   "(FEEDBACK <user> <item> [WEIGHT w]");
  expect_error_has(c, "MERGE a", "wrong number of arguments for 'merge' command",
                   "(MERGE <from-id> <to-id>)");
  /* The forms that were right stay right. */
  redisReply *r = it_cmd(c, "RECOMMEND user5 COUNT 2 WITHSCORES EXCLUDE item1 item7");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 4);
  freeReplyObject(r);
  r = it_cmd(c, "RANK user5 item1 item2 item3 WITHSCORES NOTRACK");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 6);
  freeReplyObject(r);
  r = it_cmd(c, "SIMILAR item1 COUNT 5 WITHSCORES");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 10);
  freeReplyObject(r);
  /* SIMILAR OFFSET pages through the same ranking */
  redisReply *all = it_cmd(c, "SIMILAR item1 COUNT 6");
  redisReply *page = it_cmd(c, "SIMILAR item1 COUNT 3 OFFSET 3");
  ck_assert_uint_eq(all->elements, 6);
  ck_assert_uint_eq(page->elements, 3);
  for (size_t j = 0; j < 3; j++)
    ck_assert_str_eq(page->element[j]->str, all->element[3 + j]->str);
  freeReplyObject(all);
  freeReplyObject(page);
  /* SIMILAR's filters (issue 14): CATEGORY and EXCLUDE apply */
  r = it_cmd(c, "SIMILAR item2 COUNT 4 CATEGORY cat1");
  ck_assert_uint_eq(r->elements, 4);
  for (size_t j = 0; j < r->elements; j++)
    ck_assert_msg(atoi(r->element[j]->str + 4) % 6 == 1, "%s is not in cat1", r->element[j]->str);
  char first[32];
  snprintf(first, sizeof first, "%s", r->element[0]->str);
  freeReplyObject(r);
  r = it_cmd(c, "SIMILAR item2 COUNT 4 CATEGORY cat1 EXCLUDE %s", first);
  for (size_t j = 0; j < r->elements; j++)
    ck_assert_str_ne(r->element[j]->str, first);
  freeReplyObject(r);
  it_env_stop(&e);
}
END_TEST

/* ---- WITHMETA -------------------------------------------------------------- */

START_TEST(withmeta_kinds) {
  it_env_t e;
  it_env_start(&e, "withmeta_kinds", NULL);
  redisContext *c = e.c;
  char sum[16], version[64];
  snprintf(sum, sizeof sum, "%s", it_model_info(c, "checksum"));
  snprintf(version, sizeof version, "%s", it_model_info(c, "file_version"));
  /* Without WITHMETA the reply keeps its shape: the same items. */
  redisReply *plain = it_cmd(c, "RECOMMEND user5 COUNT 3 NOTRACK");
  redisReply *r = it_cmd(c, "RECOMMEND user5 COUNT 3 WITHMETA NOTRACK");
  ck_assert_uint_eq(plain->elements, 3);
  ck_assert_uint_eq(r->elements, 4);
  ck_assert_str_eq(meta(r->element[0], "kind"), "personalized");
  ck_assert_str_eq(meta(r->element[0], "reason"), "");
  ck_assert_str_eq(meta(r->element[0], "variant"), "default");
  ck_assert_str_eq(meta(r->element[0], "model"), version);
  ck_assert_str_eq(meta(r->element[0], "checksum"), sum);
  for (size_t j = 0; j < 3; j++)
    ck_assert_str_eq(r->element[1 + j]->str, plain->element[j]->str);
  freeReplyObject(plain);
  freeReplyObject(r);
  /* An unknown customer: popular, which used to look the same as degraded. */
  r = it_cmd(c, "RECOMMEND nobody-at-all COUNT 2 WITHMETA NOTRACK");
  ck_assert_uint_eq(r->elements, 3);
  ck_assert_str_eq(meta(r->element[0], "kind"), "popular");
  ck_assert_str_eq(meta(r->element[0], "reason"), "no_history");
  freeReplyObject(r);
  /* Opted out. */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user6 personalize 0"));
  r = it_cmd(c, "RECOMMEND user6 COUNT 2 WITHMETA NOTRACK");
  ck_assert_str_eq(meta(r->element[0], "kind"), "popular");
  ck_assert_str_eq(meta(r->element[0], "reason"), "opted_out");
  freeReplyObject(r);
  /* RANK and SIMILAR */
  r = it_cmd(c, "RANK user5 item1 item2 WITHSCORES WITHMETA NOTRACK");
  ck_assert_uint_eq(r->elements, 5);
  ck_assert_str_eq(meta(r->element[0], "kind"), "personalized");
  freeReplyObject(r);
  r = it_cmd(c, "SIMILAR item1 COUNT 2 WITHMETA");
  ck_assert_uint_eq(r->elements, 3);
  ck_assert_str_eq(meta(r->element[0], "kind"), "similar");
  ck_assert_str_eq(meta(r->element[0], "checksum"), sum);
  freeReplyObject(r);
  r = it_cmd(c, "SIMILAR Item1 WITHMETA");
  ck_assert_uint_eq(r->elements, 1);
  ck_assert_str_eq(meta(r->element[0], "kind"), "unknown_item");
  freeReplyObject(r);
  ck_assert(it_info_num(c, "stats", "degraded_answers") == 0);
  /* Redis down: degraded, and counted by cause. */
  it_redis_stop(&e);
  it_sleep_ms(100);
  r = it_cmd(c, "RECOMMEND user5 COUNT 2 WITHMETA NOTRACK");
  ck_assert_uint_eq(r->elements, 3);
  ck_assert_str_eq(meta(r->element[0], "kind"), "degraded");
  const char *why = meta(r->element[0], "reason");
  ck_assert_msg(strcmp(why, "redis_down") == 0 || strcmp(why, "timeout") == 0, "reason %s", why);
  freeReplyObject(r);
  r = it_cmd(c, "RANK user5 item1 item2 WITHMETA NOTRACK");
  ck_assert_str_eq(meta(r->element[0], "kind"), "degraded");
  freeReplyObject(r);
  ck_assert(it_info_num(c, "stats", "degraded_answers") == 2);
  ck_assert(it_info_num(c, "stats", "degraded_answers_timeout") +
                it_info_num(c, "stats", "degraded_answers_redis_down") ==
            2);
  ck_assert(it_info_num(c, "redis", "degraded_answers_redis_error") == 0);
  it_env_stop(&e);
}
END_TEST

/* A Redis that does not answer in time: degraded by timeout. */
START_TEST(withmeta_timeout) {
  it_env_t e;
  it_opts_t o = {.redis_timeout_ms = 50};
  it_env_start(&e, "withmeta_timeout", &o);
  kill(e.redis_pid, SIGSTOP);
  redisReply *r = it_cmd(e.c, "RECOMMEND user5 COUNT 2 WITHMETA NOTRACK");
  kill(e.redis_pid, SIGCONT);
  ck_assert_uint_eq(r->elements, 3);
  ck_assert_str_eq(meta(r->element[0], "kind"), "degraded");
  ck_assert_str_eq(meta(r->element[0], "reason"), "timeout");
  freeReplyObject(r);
  ck_assert(it_info_num(e.c, "stats", "degraded_answers_timeout") == 1);
  it_env_stop(&e);
}
END_TEST

/* ---- what is accepted but said ----------------------------------------------- */

START_TEST(feedback_unknown_item) {
  it_env_t e;
  it_opts_t o = {.extra = {"--feedback-unknown-items", "warn", NULL}};
  it_env_start(&e, "feedback_unknown_item", &o);
  redisContext *c = e.c;
  /* "Item5": the catalogue has item5. Stored (new products are real)... */
  for (int k = 0; k < 3; k++) {
    redisReply *r = it_cmd(c, "FEEDBACK user5 Item5");
    ck_assert_msg(r->type == REDIS_REPLY_STRING, "FEEDBACK of an unknown item refused");
    freeReplyObject(r);
  }
  freeReplyObject(it_cmd(c, "FEEDBACK user5 item5"));
  /* ... but counted, and logged once. */
  ck_assert(it_info_num(c, "stats", "feedback_unknown_items") == 3);
  ck_assert_msg(it_wait_file_contains(e.recd_log, "FEEDBACK for item 'Item5'", 5000) >= 0,
                "no log line for the unknown item");
  FILE *f = fopen(e.recd_log, "r");
  ck_assert_ptr_nonnull(f);
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, f))
    n += strstr(line, "FEEDBACK for item 'Item5'") != NULL;
  fclose(f);
  ck_assert_int_eq(n, 1);
  it_env_stop(&e);
}
END_TEST

START_TEST(bad_preferences) {
  it_env_t e;
  it_env_start(&e, "bad_preferences", NULL);
  redisContext *c = e.c;
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user7 cat:cat1 5"));
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user8 cat:kitchn 0.5"));
  for (int k = 0; k < 3; k++) {
    freeReplyObject(it_cmd(c, "RECOMMEND user7 COUNT 2 NOTRACK"));
    freeReplyObject(it_cmd(c, "RECOMMEND user8 COUNT 2 NOTRACK"));
  }
  ck_assert(it_info_num(c, "stats", "customer_unusable_entries") == 3);
  ck_assert(it_info_num(c, "stats", "pref_unknown_categories") == 3);
  ck_assert(it_wait_file_contains(e.recd_log, "recd:pref:user7: cat:cat1 = '5' is not usable",
                                  5000) >= 0);
  ck_assert(it_wait_file_contains(e.recd_log, "recd:pref:user8: field cat:kitchn", 5000) >= 0);
  FILE *f = fopen(e.recd_log, "r");
  ck_assert_ptr_nonnull(f);
  char line[1024];
  int n7 = 0, n8 = 0;
  while (fgets(line, sizeof line, f)) {
    n7 += strstr(line, "recd:pref:user7") != NULL;
    n8 += strstr(line, "recd:pref:user8") != NULL;
  }
  fclose(f);
  ck_assert_int_eq(n7, 1); /* once per customer */
  ck_assert_int_eq(n8, 1);
  it_env_stop(&e);
}
END_TEST

static Suite *traps_suite(void) {
  Suite *s = suite_create("traps");
  IT_ADD(s, grammar_traps, 120);
  IT_ADD(s, withmeta_kinds, 120);
  IT_ADD(s, withmeta_timeout, 120);
  IT_ADD(s, feedback_unknown_item, 120);
  IT_ADD(s, bad_preferences, 120);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  int failed = it_run_suite(traps_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
