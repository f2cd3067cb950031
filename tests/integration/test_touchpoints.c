/* test_touchpoints.c - the storefront rules of DESIGN.md "Touchpoints and
 * rules" that live in Redis, end to end through the real daemon and a real
 * redis-server:
 *
 *   hide_unhide   FEEDBACK ... TYPE hide / unhide: the hidden set in Redis,
 *                 the replies, hidden items never recommended, RANK puts
 *                 them last, unhide brings them back
 *   merge         MERGE <from> <to>: histories summed, hidden sets and
 *                 impressions joined (latest impression wins, shown counts
 *                 add up), from's keys gone, the reply, errors
 *   shown_counts  impressions count the answers that showed an item, an
 *                 outcome sets the count back to 0, and SHOWNLIMIT leaves
 *                 out items shown that often
 *   history       RECOMMEND <anon> HISTORY n ...: an anonymous visitor with
 *                 a cart gets exactly what a customer with that stored
 *                 history gets, cart items filtered out
 */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* Reply elements of an array as strings, for membership checks. */
static int has_member(const redisReply *r, const char *id) {
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, id) == 0)
      return 1;
  return 0;
}

static long long int_reply(redisContext *c, const char *fmt, const char *a, const char *b) {
  redisReply *r = it_cmd(c, fmt, a, b);
  ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "%s: type %d (%s)", fmt, r->type,
                r->type == REDIS_REPLY_ERROR ? r->str : "");
  long long v = r->integer;
  freeReplyObject(r);
  return v;
}

START_TEST(hide_unhide) {
  it_env_t e;
  it_env_start(&e, "hide_unhide", &(it_opts_t){0});
  /* user3's best item, then hidden. */
  redisReply *r = it_cmd(e.c, "RECOMMEND user3 COUNT 5 NOTRACK");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_ge(r->elements, 2);
  char top[64];
  it_fmt(top, sizeof top, "%s", r->element[0]->str);
  freeReplyObject(r);
  ck_assert_int_eq(int_reply(e.c, "FEEDBACK %s %s TYPE hide", "user3", top), 1);
  ck_assert_int_eq(int_reply(e.c, "FEEDBACK %s %s TYPE hide", "user3", top), 0);
  ck_assert_int_eq(int_reply(e.redis, "SISMEMBER recd:hidden:%s %s", "user3", top), 1);
  /* No history weight, no outcome. */
  r = it_cmd(e.redis, "ZSCORE recd:hist:user3 %s", top);
  ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
  freeReplyObject(r);
  it_expect_error(e.c, "ERR", "FEEDBACK user3 %s TYPE hide WEIGHT 2", top);
  /* Never recommended, on any page; RANK puts it last of the known. */
  r = it_cmd(e.c, "RECOMMEND user3 COUNT 1000 NOTRACK");
  ck_assert_msg(!has_member(r, top), "hidden %s recommended", top);
  ck_assert_uint_gt(r->elements, 1);
  char other[64];
  it_fmt(other, sizeof other, "%s", r->element[0]->str);
  freeReplyObject(r);
  r = it_cmd(e.c, "RANK user3 %s %s NOTRACK", top, other);
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 2);
  ck_assert_str_eq(r->element[0]->str, other);
  ck_assert_str_eq(r->element[1]->str, top);
  freeReplyObject(r);
  /* Unhide: back on top. */
  ck_assert_int_eq(int_reply(e.c, "FEEDBACK %s %s TYPE unhide", "user3", top), 1);
  ck_assert_int_eq(int_reply(e.c, "FEEDBACK %s %s TYPE unhide", "user3", top), 0);
  ck_assert_int_eq(int_reply(e.redis, "SISMEMBER recd:hidden:%s %s", "user3", top), 0);
  r = it_cmd(e.c, "RECOMMEND user3 COUNT 5 NOTRACK");
  ck_assert_str_eq(r->element[0]->str, top);
  freeReplyObject(r);
  it_env_stop(&e);
}
END_TEST

START_TEST(merge) {
  it_env_t e;
  it_env_start(&e, "merge", &(it_opts_t){.no_import = 1});
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:anon 1 item1 2 item2"));
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:cust 1 item2 1 item3"));
  freeReplyObject(it_cmd(e.redis, "SADD recd:hidden:anon item7"));
  freeReplyObject(it_cmd(e.redis, "SADD recd:hidden:cust item8"));
  /* Impressions: item1 only anon's; item2 both, cust's newer. */
  freeReplyObject(it_cmd(e.redis, "HSET recd:imp:anon item1 1000|a|home|2 item2 1000|a|home|3"));
  freeReplyObject(it_cmd(e.redis, "HSET recd:imp:cust item2 2000|b|cart|1"));
  ck_assert_int_eq(int_reply(e.c, "MERGE %s %s", "anon", "cust"), 2);
  /* Weights summed. */
  {
    redisReply *r = it_cmd(e.redis, "ZRANGE recd:hist:cust 0 -1 WITHSCORES");
    ck_assert_uint_eq(r->elements, 6);
    const char *want[6] = {"item1", "1", "item3", "1", "item2", "3"};
    for (int i = 0; i < 6; i++)
      ck_assert_str_eq(r->element[i]->str, want[i]);
    freeReplyObject(r);
  }
  ck_assert_int_eq(int_reply(e.redis, "SISMEMBER recd:hidden:%s %s", "cust", "item7"), 1);
  ck_assert_int_eq(int_reply(e.redis, "SISMEMBER recd:hidden:%s %s", "cust", "item8"), 1);
  redisReply *r = it_cmd(e.redis, "HGET recd:imp:cust item1");
  ck_assert_str_eq(r->str, "1000|a|home|2");
  freeReplyObject(r);
  r = it_cmd(e.redis, "HGET recd:imp:cust item2");
  ck_assert_str_eq(r->str, "2000|b|cart|4"); /* the newer one, counts added */
  freeReplyObject(r);
  r = it_cmd(e.redis, "TTL recd:imp:cust");
  ck_assert_int_gt(r->integer, 0);
  freeReplyObject(r);
  ck_assert_int_eq(int_reply(e.redis, "EXISTS recd:hist:%s recd:hidden:%s", "anon", "anon"), 0);
  ck_assert_int_eq(int_reply(e.redis, "EXISTS recd:imp:%s recd:imp:%s", "anon", "anon"), 0);
  /* Again: nothing left to merge, nothing doubled. */
  ck_assert_int_eq(int_reply(e.c, "MERGE %s %s", "anon", "cust"), 0);
  r = it_cmd(e.redis, "ZSCORE recd:hist:cust item2");
  ck_assert_str_eq(r->str, "3");
  freeReplyObject(r);
  it_expect_error(e.c, "ERR MERGE: from and to are the same id", "MERGE cust cust");
  {
    const char *argv[3] = {"MERGE", "", "cust"};
    redisReply *er = it_cmdv(e.c, 3, argv);
    ck_assert_int_eq(er->type, REDIS_REPLY_ERROR);
    ck_assert_msg(strncmp(er->str, "ERR MERGE: the from id must be 1 to 256 bytes", 45) == 0,
                  "%s", er->str);
    freeReplyObject(er);
  }
  it_expect_error(e.c, "ERR wrong number of arguments", "MERGE cust");
  /* The merged customer is personalized from the joined history. */
  r = it_cmd(e.c, "RECOMMEND cust COUNT 3 WITHREASONS NOTRACK");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 6);
  ck_assert_int_eq(r->element[1]->type, REDIS_REPLY_STRING); /* a reason: personalized */
  freeReplyObject(r);
  it_env_stop(&e);
}
END_TEST

/* The shown count of item in user's impressions (-1: none). */
static long shown(redisContext *rd, const char *user, const char *item) {
  redisReply *r = it_cmd(rd, "HGET recd:imp:%s %s", user, item);
  long n = -1;
  if (r->type == REDIS_REPLY_STRING) {
    const char *bar = strrchr(r->str, '|');
    ck_assert_ptr_nonnull(bar);
    n = strtol(bar + 1, NULL, 10);
  }
  freeReplyObject(r);
  return n;
}

START_TEST(shown_counts) {
  it_env_t e;
  it_env_start(&e, "shown_counts", &(it_opts_t){0});
  char first[3][64];
  for (int k = 0; k < 2; k++) {
    redisReply *r = it_cmd(e.c, "RECOMMEND user5 COUNT 3");
    ck_assert_uint_eq(r->elements, 3);
    for (int i = 0; i < 3; i++)
      it_fmt(first[i], sizeof first[i], "%s", r->element[i]->str);
    freeReplyObject(r);
  }
  /* Impressions are written after the reply: poll. */
  uint64_t until = it_now_ms() + 5000;
  while (shown(e.redis, "user5", first[2]) != 2 && it_now_ms() < until)
    it_sleep_ms(5);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(shown(e.redis, "user5", first[i]), 2);
  /* An outcome: that item's count goes back to 0. */
  redisReply *r = it_cmd(e.c, "FEEDBACK user5 %s TYPE click WEIGHT 0.5", first[1]);
  freeReplyObject(r);
  until = it_now_ms() + 5000;
  while (shown(e.redis, "user5", first[1]) != 0 && it_now_ms() < until)
    it_sleep_ms(5);
  ck_assert_int_eq(shown(e.redis, "user5", first[1]), 0);
  ck_assert_int_eq(shown(e.redis, "user5", first[0]), 2);
  /* SHOWNLIMIT 2: shown twice without an outcome -> left out; the clicked
   * one stays. */
  r = it_cmd(e.c, "RECOMMEND user5 COUNT 20 SHOWNLIMIT 2 NOTRACK");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_msg(!has_member(r, first[0]) && !has_member(r, first[2]),
                "items shown twice are still recommended");
  freeReplyObject(r);
  r = it_cmd(e.c, "RECOMMEND user5 COUNT 20 SHOWNLIMIT 3 NOTRACK");
  ck_assert_msg(has_member(r, first[0]), "SHOWNLIMIT 3 left out an item shown twice");
  freeReplyObject(r);
  it_env_stop(&e);
}
END_TEST

START_TEST(history) {
  it_env_t e;
  it_env_start(&e, "history", &(it_opts_t){0});
  /* A customer whose stored history is exactly {item0: 1, item6: 1,
   * item12: 1} and an anonymous visitor with that cart. */
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:known 1 item0 1 item6 1 item12"));
  redisReply *a = it_cmd(e.c, "RECOMMEND known COUNT 10 WITHSCORES NOTRACK");
  redisReply *b = it_cmd(e.c, "RECOMMEND anon-s1 HISTORY 3 item0 item6 item12 COUNT 10 "
                              "WITHSCORES NOTRACK");
  ck_assert_int_eq(a->type, REDIS_REPLY_ARRAY);
  ck_assert_int_eq(b->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(a->elements, b->elements);
  ck_assert_uint_eq(a->elements, 20);
  for (size_t i = 0; i < a->elements; i++)
    ck_assert_str_eq(a->element[i]->str, b->element[i]->str);
  ck_assert(!has_member(b, "item0") && !has_member(b, "item6") && !has_member(b, "item12"));
  freeReplyObject(a);
  freeReplyObject(b);
  /* On top of a stored history: the cart counts once more. */
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:both 1 item0"));
  a = it_cmd(e.c, "RECOMMEND both HISTORY 2 item0 item6 COUNT 5 NOTRACK");
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:ref 2 item0 1 item6"));
  b = it_cmd(e.c, "RECOMMEND ref COUNT 5 NOTRACK");
  ck_assert_uint_eq(a->elements, b->elements);
  for (size_t i = 0; i < a->elements; i++)
    ck_assert_str_eq(a->element[i]->str, b->element[i]->str);
  freeReplyObject(a);
  freeReplyObject(b);
  /* RANK takes it too: the cart items rank like the stored history's. */
  a = it_cmd(e.c, "RANK anon-s2 item1 item2 item3 item4 item5 HISTORY 3 item0 item6 item12 "
                  "WITHSCORES NOTRACK");
  b = it_cmd(e.c, "RANK known item1 item2 item3 item4 item5 WITHSCORES NOTRACK");
  ck_assert_int_eq(a->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(a->elements, b->elements);
  for (size_t i = 0; i < a->elements; i++)
    ck_assert_str_eq(a->element[i]->str, b->element[i]->str);
  freeReplyObject(a);
  freeReplyObject(b);
  it_env_stop(&e);
}
END_TEST

static Suite *touchpoints_suite(void) {
  Suite *s = suite_create("touchpoints");
  IT_ADD(s, hide_unhide, 60);
  IT_ADD(s, merge, 60);
  IT_ADD(s, shown_counts, 60);
  IT_ADD(s, history, 60);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  int failed = it_run_suite(touchpoints_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
