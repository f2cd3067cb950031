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
 *   caps_promote  MAXPERCATEGORY, ONEPERGROUP (the families of the suite's
 *                 items file), OFFSET pages through the capped ranking, and
 *                 PROMOTE fills slots 2, 4, ... with the best promoted items
 *                 of recd:promoted once recd has re-read it: every answer is
 *                 the daemon's own uncapped ranking walked by hand (the
 *                 uncapped ranking is checked against brute force in
 *                 test_daemon, the walk in tests/unit/test_rules.c)
 *   similar_for   SIMILAR <item> FOR <user>: the plain SIMILAR ranking less
 *                 the customer's history, hidden items and removed
 *                 categories, in order; without FOR nothing of the
 *                 customer's applies
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
  /* Without shown counts (the default) SHOWNLIMIT is refused, not
   * ignored, and impressions have no count. */
  it_env_start(&e, "shown_counts", &(it_opts_t){0});
  it_expect_error(e.c, "ERR SHOWNLIMIT needs shown counts", "RECOMMEND user5 SHOWNLIMIT 2");
  freeReplyObject(it_cmd(e.c, "RECOMMEND user9 COUNT 1"));
  uint64_t until0 = it_now_ms() + 5000;
  redisReply *v = NULL;
  for (;;) {
    v = it_cmd(e.redis, "HVALS recd:imp:user9");
    if ((v->type == REDIS_REPLY_ARRAY && v->elements == 1) || it_now_ms() > until0)
      break;
    freeReplyObject(v);
    it_sleep_ms(5);
  }
  ck_assert_uint_eq(v->elements, 1);
  ck_assert_msg(strstr(v->element[0]->str, "|default|default") != NULL &&
                    strstr(v->element[0]->str, "|default|default|") == NULL,
                "%s", v->element[0]->str);
  freeReplyObject(v);
  it_recd_stop(&e);
  it_recd_start(&e, &(it_opts_t){.extra = {"--track-shown", "yes", NULL}});
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
  /* WITHMETA tells a customer without history from one whose history the
   * model does not know yet (new products only), and a cart personalizes. */
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:newbie 1 brand-new-item"));
  const char *who[3][2] = {{"RECOMMEND newbie COUNT 1 WITHMETA NOTRACK", "unknown_items"},
                           {"RECOMMEND nobody-yet COUNT 1 WITHMETA NOTRACK", "no_history"},
                           {"RECOMMEND nobody-yet HISTORY 1 item0 COUNT 1 WITHMETA NOTRACK", ""}};
  for (int w = 0; w < 3; w++) {
    a = it_cmd(e.c, who[w][0]);
    ck_assert_int_eq(a->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(a->element[0]->type, REDIS_REPLY_ARRAY);
    ck_assert_str_eq(a->element[0]->element[1]->str, w == 2 ? "personalized" : "popular");
    ck_assert_str_eq(a->element[0]->element[3]->str, who[w][1]);
    freeReplyObject(a);
  }
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

/* The suite's items (helpers.c): itemN is in category N % 6 and family
 * N / 12 * 6 + N % 6. */
static int item_num(const char *id) {
  return atoi(id + 4);
}
static int item_cat(const char *id) {
  return item_num(id) % 6;
}
static int item_fam(const char *id) {
  return item_num(id) / 12 * 6 + item_num(id) % 6;
}

/* The capped walk of the ranking full[0..n): at most cap per category (0 =
 * no cap), one per family when one_per_fam; the first `want` kept. */
static size_t walk(char full[][16], size_t n, int cap, int one_per_fam, char out[][16],
                   size_t want) {
  int per_cat[6] = {0}, fam_used[120] = {0};
  size_t k = 0;
  for (size_t i = 0; i < n && k < want; i++) {
    if (cap > 0 && per_cat[item_cat(full[i])] >= cap)
      continue;
    if (one_per_fam && fam_used[item_fam(full[i])])
      continue;
    per_cat[item_cat(full[i])]++;
    fam_used[item_fam(full[i])] = 1;
    it_fmt(out[k++], 16, "%s", full[i]);
  }
  return k;
}

static void expect_ids(redisReply *r, char want[][16], size_t n, size_t per, const char *what) {
  ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "%s: type %d (%s)", what, r->type,
                r->type == REDIS_REPLY_ERROR ? r->str : "");
  ck_assert_msg(r->elements == n * per, "%s: %zu elements, want %zu", what, r->elements, n * per);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(strcmp(r->element[i * per]->str, want[i]) == 0, "%s: [%zu] = %s, want %s",
                  what, i, r->element[i * per]->str, want[i]);
}

START_TEST(caps_promote) {
  it_env_t e;
  it_env_start(&e, "caps_promote",
               &(it_opts_t){.extra = {"--unavailable-refresh-ms", "100", NULL}});
  /* user7's whole uncapped ranking. */
  static char full[120][16], want[120][16];
  redisReply *r = it_cmd(e.c, "RECOMMEND user7 COUNT 120 NOTRACK");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  const size_t n = r->elements;
  ck_assert_uint_gt(n, 40);
  for (size_t i = 0; i < n; i++)
    it_fmt(full[i], sizeof full[i], "%s", r->element[i]->str);
  freeReplyObject(r);
  /* MAXPERCATEGORY 2: the best list under the cap, and its pages. */
  size_t k = walk(full, n, 2, 0, want, 12);
  ck_assert_uint_eq(k, 12);
  r = it_cmd(e.c, "RECOMMEND user7 COUNT 12 MAXPERCATEGORY 2 NOTRACK");
  expect_ids(r, want, 12, 1, "MAXPERCATEGORY 2");
  freeReplyObject(r);
  r = it_cmd(e.c, "RECOMMEND user7 COUNT 4 OFFSET 4 MAXPERCATEGORY 2 NOTRACK");
  expect_ids(r, want + 4, 4, 1, "MAXPERCATEGORY 2 OFFSET 4");
  freeReplyObject(r);
  /* ONEPERGROUP, alone and with the cap. */
  k = walk(full, n, 0, 1, want, 10);
  r = it_cmd(e.c, "RECOMMEND user7 COUNT 10 ONEPERGROUP NOTRACK");
  expect_ids(r, want, k, 1, "ONEPERGROUP");
  freeReplyObject(r);
  k = walk(full, n, 1, 1, want, 10);
  r = it_cmd(e.c, "RECOMMEND user7 COUNT 10 ONEPERGROUP MAXPERCATEGORY 1 NOTRACK");
  expect_ids(r, want, k, 1, "ONEPERGROUP MAXPERCATEGORY 1");
  freeReplyObject(r);
  /* PROMOTE 2 with two promoted items from the tail of the ranking. */
  freeReplyObject(it_cmd(e.redis, "SADD recd:promoted %s %s", full[n - 1], full[n - 3]));
  /* expected: organic 0, promoted (better of the two first), organic 1,
   * promoted, organic 2 */
  it_fmt(want[0], 16, "%s", full[0]);
  it_fmt(want[1], 16, "%s", full[n - 3]);
  it_fmt(want[2], 16, "%s", full[1]);
  it_fmt(want[3], 16, "%s", full[n - 1]);
  it_fmt(want[4], 16, "%s", full[2]);
  uint64_t until = it_now_ms() + 5000;
  for (;;) {
    r = it_cmd(e.c, "RECOMMEND user7 COUNT 5 PROMOTE 2 WITHREASONS NOTRACK");
    if ((r->type == REDIS_REPLY_ARRAY && r->elements == 10 &&
         strcmp(r->element[2]->str, want[1]) == 0) ||
        it_now_ms() > until)
      break;
    freeReplyObject(r);
    it_sleep_ms(20);
  }
  expect_ids(r, want, 5, 2, "PROMOTE 2");
  for (size_t i = 0; i < 5; i++) {
    const redisReply *why = r->element[2 * i + 1];
    if (i == 1 || i == 3)
      ck_assert_msg(why->type == REDIS_REPLY_STRING && strcmp(why->str, "promoted") == 0,
                    "slot %zu: reason is not 'promoted'", i + 1);
    else
      ck_assert_msg(why->type != REDIS_REPLY_STRING || strcmp(why->str, "promoted") != 0,
                    "organic slot %zu says promoted", i + 1);
  }
  freeReplyObject(r);
  /* The second page goes on with the organic ranking (both promoted items
   * are placed). */
  it_fmt(want[0], 16, "%s", full[3]);
  it_fmt(want[1], 16, "%s", full[4]);
  r = it_cmd(e.c, "RECOMMEND user7 COUNT 2 OFFSET 5 PROMOTE 2 NOTRACK");
  expect_ids(r, want, 2, 1, "PROMOTE 2 OFFSET 5");
  freeReplyObject(r);
  /* Without PROMOTE the promoted set changes nothing. */
  r = it_cmd(e.c, "RECOMMEND user7 COUNT 3 NOTRACK");
  expect_ids(r, full, 3, 1, "no PROMOTE");
  freeReplyObject(r);
  it_env_stop(&e);
}
END_TEST

START_TEST(similar_for) {
  it_env_t e;
  it_env_start(&e, "similar_for", &(it_opts_t){0});
  /* The whole plain ranking of item0's neighbours. */
  static char full[120][16], want[120][16];
  redisReply *r = it_cmd(e.c, "SIMILAR item0 COUNT 119");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  const size_t n = r->elements;
  ck_assert_uint_gt(n, 100);
  for (size_t i = 0; i < n; i++)
    it_fmt(full[i], sizeof full[i], "%s", r->element[i]->str);
  freeReplyObject(r);
  /* A customer who bought two of the neighbours, hid a third and removed
   * category cat3. */
  freeReplyObject(it_cmd(e.redis, "DEL recd:hist:shopper"));
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:shopper 1 %s 2 %s", full[0], full[2]));
  freeReplyObject(it_cmd(e.redis, "SADD recd:hidden:shopper %s", full[1]));
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:shopper cat:cat3 -1"));
  size_t k = 0;
  for (size_t i = 0; i < n && k < 10; i++) {
    if (i <= 2 || item_cat(full[i]) == 3)
      continue;
    it_fmt(want[k++], 16, "%s", full[i]);
  }
  r = it_cmd(e.c, "SIMILAR item0 COUNT 10 FOR shopper");
  expect_ids(r, want, k, 1, "SIMILAR FOR");
  freeReplyObject(r);
  /* OFFSET pages the filtered ranking; WITHMETA says similar. */
  r = it_cmd(e.c, "SIMILAR item0 COUNT 3 OFFSET 2 FOR shopper WITHMETA");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 4);
  ck_assert_int_eq(r->element[0]->type, REDIS_REPLY_ARRAY);
  ck_assert_str_eq(r->element[0]->element[1]->str, "similar");
  for (size_t i = 0; i < 3; i++)
    ck_assert_str_eq(r->element[1 + i]->str, want[2 + i]);
  freeReplyObject(r);
  /* An unknown customer filters nothing. */
  r = it_cmd(e.c, "SIMILAR item0 COUNT 10 FOR nobody-at-all");
  expect_ids(r, full, 10, 1, "SIMILAR FOR an unknown customer");
  freeReplyObject(r);
  /* Redis gone: the answer without the customer's filters, degraded. */
  it_redis_stop(&e);
  r = it_cmd(e.c, "SIMILAR item0 COUNT 3 FOR shopper WITHMETA");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 4);
  ck_assert_str_eq(r->element[0]->element[1]->str, "degraded");
  for (size_t i = 0; i < 3; i++)
    ck_assert_str_eq(r->element[1 + i]->str, full[i]);
  freeReplyObject(r);
  it_redis_start(&e);
  it_env_stop(&e);
}
END_TEST

static Suite *touchpoints_suite(void) {
  Suite *s = suite_create("touchpoints");
  IT_ADD(s, hide_unhide, 60);
  IT_ADD(s, merge, 60);
  IT_ADD(s, shown_counts, 60);
  IT_ADD(s, history, 60);
  IT_ADD(s, caps_promote, 60);
  IT_ADD(s, similar_for, 60);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  int failed = it_run_suite(touchpoints_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
