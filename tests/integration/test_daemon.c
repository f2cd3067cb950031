/* test_daemon.c - recd end to end: the real daemon, a real redis-server, real
 * clients (hiredis's synchronous API and raw TCP sockets).
 *
 * main() generates a planted data set, trains two small models on it and
 * writes a synthetic 60000-item one with recd-train, once; then every test (one Check tcase each, in its own fork)
 * starts its own redis-server and recd on free loopback ports in a
 * directory of its own (helpers.h), imports the data with
 * `recd-train --import`, drives recd, and stops both, requiring recd to exit
 * 0 on SIGTERM with every handle closed (under ASan that is also the leak
 * check).
 *
 * Expected answers are computed independently (reference.h): the test loads
 * the same model file, reads the customer's history and preferences from
 * Redis itself, folds the customer in by a dense double-precision solve and
 * applies the business rules by brute force. Only near-ties may differ.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "helpers.h"
#include "reference.h"
#include "testutil.h"

static ref_model_t M1, M2, M3; /* model1 (k = 16), model2 (k = 12), synth (60000 items) */

/* ---- helpers ---------------------------------------------------------------- */

/* Splits "a b c" into argv (at most 64 words; the string is copied). */
typedef struct words {
  char buf[2048];
  const char *v[64];
  int n;
} words_t;

static void words_split(words_t *w, const char *s) {
  it_fmt(w->buf, sizeof w->buf, "%s", s);
  w->n = 0;
  for (char *save = NULL, *t = strtok_r(w->buf, " ", &save); t != NULL && w->n < 64;
       t = strtok_r(NULL, " ", &save))
    w->v[w->n++] = t;
}

static int words_has(const words_t *w, const char *word) {
  for (int i = 0; i < w->n; i++)
    if (strcasecmp(w->v[i], word) == 0)
      return 1;
  return 0;
}

/* Runs "RECOMMEND <user> <args>" on c and checks it against the reference
 * for model M, with the customer's data read from Redis now. q (may be
 * NULL) adds EXCLUDE / CATEGORY / unavailable to the reference query; the
 * reference's u is set here unless `degraded` (the daemon had no data).
 * Returns the reply (caller frees). */
static redisReply *reco_check_q(it_env_t *e, redisContext *c, const ref_model_t *M,
                                const char *user, const char *args, const ref_query_t *q0,
                                size_t offset, size_t count, int degraded, const char *what) {
  char line[2048];
  it_fmt(line, sizeof line, "RECOMMEND %s %s", user, args);
  words_t w;
  words_split(&w, line);
  ref_user_t u = {0};
  if (!degraded)
    ref_user_read(M, e->redis, user, &u);
  ref_query_t q = q0 ? *q0 : (ref_query_t){0};
  q.u = degraded ? NULL : &u;
  ref_answer_t a;
  ref_recommend(M, &q, &a);
  redisReply *r = it_cmdv(c, w.n, w.v);
  char msg[2200];
  it_fmt(msg, sizeof msg, "%s: %s", what, line);
  ref_check_recommend(M, &a, r, offset, count, words_has(&w, "WITHSCORES"),
                      words_has(&w, "WITHREASONS"), &u, msg);
  ref_answer_free(&a);
  ref_user_free(&u);
  return r;
}

static void reco_check(it_env_t *e, const ref_model_t *M, const char *user, const char *args,
                       size_t offset, size_t count, const char *what) {
  freeReplyObject(reco_check_q(e, e->c, M, user, args, NULL, offset, count, 0, what));
}

/* Whether an answer is personalized: WITHREASONS gives a reason (non-nil)
 * exactly when it is. */
static int is_personalized(redisContext *c, const char *user) {
  redisReply *r = it_cmd(c, "RECOMMEND %s COUNT 3 WITHREASONS", user);
  ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == 6, "RECOMMEND %s: type %d", user,
                r->type);
  int p = r->element[1]->type == REDIS_REPLY_STRING;
  freeReplyObject(r);
  return p;
}

/* The ids of an array reply, every `per`-th element (malloc'ed copies). */
static char **reply_ids(const redisReply *r, size_t per, size_t *n) {
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  *n = r->elements / per;
  char **v = calloc(*n ? *n : 1, sizeof *v);
  ck_assert_ptr_nonnull(v);
  for (size_t j = 0; j < *n; j++)
    v[j] = strdup(r->element[j * per]->str);
  return v;
}

static void ids_free(char **v, size_t n) {
  for (size_t j = 0; j < n; j++)
    free(v[j]);
  free(v);
}

static int reply_contains(const redisReply *r, size_t per, const char *id) {
  for (size_t j = 0; j < r->elements; j += per)
    if (r->element[j]->type == REDIS_REPLY_STRING && strcmp(r->element[j]->str, id) == 0)
      return 1;
  return 0;
}

static size_t reply_pos(const redisReply *r, const char *id) {
  for (size_t j = 0; j < r->elements; j++)
    if (strcmp(r->element[j]->str, id) == 0)
      return j;
  return SIZE_MAX;
}

static void expect_status(redisReply *r, const char *want) {
  ck_assert_msg(r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0,
                "reply type %d '%s', want +%s", r->type, r->str ? r->str : "", want);
  freeReplyObject(r);
}

static void expect_bulk(redisReply *r, const char *want) {
  ck_assert_msg(r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0,
                "reply type %d '%s', want \"%s\"", r->type, r->str ? r->str : "", want);
  freeReplyObject(r);
}

static long long cmdstat_calls(redisContext *c, const char *cmd) {
  redisReply *r = it_cmd(c, "INFO stats");
  char key[64];
  it_fmt(key, sizeof key, "cmdstat_%s:calls=", cmd);
  const char *p = strstr(r->str, key);
  long long v = p ? strtoll(p + strlen(key), NULL, 10) : 0;
  freeReplyObject(r);
  return v;
}

/* Whether item `id` belongs to category `cat` in model M. */
static int item_in_cat(const ref_model_t *M, const char *id, const char *cat) {
  int64_t i = ref_item(M, id);
  ck_assert_int_ge(i, 0);
  uint32_t c = model_find_category(M->m, cat, strlen(cat));
  return c != 0 && M->cat[i] == c;
}

/* ---- every small command ------------------------------------------------------ */

START_TEST(small_commands) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;

  expect_status(it_cmd(c, "PING"), "PONG");
  expect_status(it_cmd(c, "ping"), "PONG");
  expect_bulk(it_cmd(c, "PING %s", "hello world"), "hello world");
  redisReply *r = it_cmd(c, "ECHO %b", "a\0b", (size_t)3);
  ck_assert_uint_eq(r->len, 3);
  ck_assert_int_eq(memcmp(r->str, "a\0b", 3), 0);
  freeReplyObject(r);
  it_expect_error(c, "ERR wrong number of arguments for 'ping' command", "PING a b");
  it_expect_error(c, "ERR wrong number of arguments for 'echo' command", "ECHO");
  it_expect_error(c, "ERR wrong number of arguments for 'echo' command", "ECHO a b");
  it_expect_error(c, "ERR wrong number of arguments for 'recommend' command", "RECOMMEND");
  it_expect_error(c, "ERR wrong number of arguments for 'rank' command", "RANK user1");
  it_expect_error(c, "ERR wrong number of arguments for 'similar' command", "SIMILAR");
  it_expect_error(c, "ERR wrong number of arguments for 'feedback' command", "FEEDBACK u");
  it_expect_error(c, "ERR wrong number of arguments for 'model' command", "MODEL");
  it_expect_error(c, "ERR unknown command 'FLUSHALL', with args beginning with: 'x' ",
                  "FLUSHALL x");
  it_expect_error(c, "ERR unknown command 'GET'", "GET k");
  it_expect_error(c, "ERR unknown MODEL subcommand", "MODEL FOO");
  it_expect_error(c, "ERR AUTH <password> called without any password configured", "AUTH x");

  /* COMMAND and HELLO: enough for clients. */
  r = it_cmd(c, "COMMAND");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  r = it_cmd(c, "COMMAND COUNT");
  ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
  ck_assert_int_ge(r->integer, 12); /* at least the commands of DESIGN.md */
  freeReplyObject(r);
  r = it_cmd(c, "COMMAND DOCS");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  for (int v = 0; v < 2; v++) {
    r = v == 0 ? it_cmd(c, "HELLO") : it_cmd(c, "HELLO 2");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_eq(r->elements % 2, 0);
    int proto = 0, server = 0;
    for (size_t j = 0; j + 1 < r->elements; j += 2) {
      if (strcmp(r->element[j]->str, "proto") == 0)
        proto = (int)r->element[j + 1]->integer;
      if (strcmp(r->element[j]->str, "server") == 0)
        server = strcmp(r->element[j + 1]->str, "recd") == 0;
    }
    ck_assert_int_eq(proto, 2);
    ck_assert(server);
    freeReplyObject(r);
  }
  it_expect_error(c, "NOPROTO", "HELLO 3");
  it_expect_error(c, "NOPROTO", "HELLO 4");
  expect_status(it_cmd(c, "PING"), "PONG"); /* still RESP2, still connected */

  /* INFO: every section by default, one with INFO <section>. */
  r = it_cmd(c, "INFO");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  const char *sections[] = {"# Server", "# Clients", "# Model", "# Stats", "# Redis"};
  for (size_t j = 0; j < 5; j++)
    ck_assert_msg(strstr(r->str, sections[j]) != NULL, "INFO lacks %s", sections[j]);
  ck_assert_ptr_nonnull(strstr(r->str, "connected_clients:1\r\n"));
  ck_assert_ptr_nonnull(strstr(r->str, "redis_connected:1\r\n"));
  ck_assert_ptr_nonnull(strstr(r->str, "model_items:120\r\n"));
  freeReplyObject(r);
  const char *names[] = {"server", "clients", "model", "stats", "redis"};
  for (size_t j = 0; j < 5; j++) {
    r = it_cmd(c, "INFO %s", names[j]);
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    for (size_t t = 0; t < 5; t++)
      ck_assert_msg((strstr(r->str, sections[t]) != NULL) == (t == j), "INFO %s: %s %s", names[j],
                    sections[t], t == j ? "missing" : "present");
    freeReplyObject(r);
  }
  r = it_cmd(c, "INFO STATS"); /* case-insensitive */
  ck_assert_ptr_nonnull(strstr(r->str, "# Stats"));
  freeReplyObject(r);
  /* Counters move. */
  double total0 = it_info_num(c, "stats", "total_commands_processed");
  long long ping0 = cmdstat_calls(c, "ping"), reco0 = cmdstat_calls(c, "recommend");
  for (int j = 0; j < 3; j++)
    freeReplyObject(it_cmd(c, "PING"));
  freeReplyObject(it_cmd(c, "RECOMMEND user1"));
  ck_assert_int_eq(cmdstat_calls(c, "ping"), ping0 + 3);
  ck_assert_int_eq(cmdstat_calls(c, "recommend"), reco0 + 1);
  ck_assert_double_ge(it_info_num(c, "stats", "total_commands_processed"), total0 + 4);
  redisContext *c2 = it_connect(e.port);
  ck_assert_double_eq(it_info_num(c2, "clients", "connected_clients"), 2);
  double conns = it_info_num(c2, "clients", "total_connections_received");
  redisFree(c2);
  c2 = it_connect(e.port);
  ck_assert_double_eq(it_info_num(c2, "clients", "total_connections_received"), conns + 1);
  redisFree(c2);
  r = it_cmd(c, "INFO stats");
  ck_assert_ptr_nonnull(strstr(r->str, "p99_usec="));
  freeReplyObject(r);

  /* MODEL INFO. */
  ck_assert_str_eq(it_model_info(c, "path"), e.model);
  ck_assert_str_eq(it_model_info(c, "version"), "1");
  ck_assert_str_eq(it_model_info(c, "items"), "120");
  ck_assert_str_eq(it_model_info(c, "factors"), "16");
  ck_assert_str_eq(it_model_info(c, "categories"), "6");
  ck_assert_str_eq(it_model_info(c, "users_trained"), "300");
  char sum[16];
  it_fmt(sum, sizeof sum, "%08x", model_checksum(M1.m));
  ck_assert_str_eq(it_model_info(c, "checksum"), sum);
  ck_assert_ptr_nonnull(strstr(it_model_info(c, "params"), "factors=16"));
  /* Model format 3: what the model serves and how it was trained (names,
   * not numbers; the values are the trainer's, popularity_fallback pins
   * them). */
  const char *serves = it_model_info(c, "serves");
  ck_assert_msg(strcmp(serves, "als") == 0 || strcmp(serves, "popularity") == 0 ||
                strcmp(serves, "recent-popularity") == 0, "serves %s", serves);
  const char *split = it_model_info(c, "eval_split");
  ck_assert_msg(strcmp(split, "random") == 0 || strcmp(split, "user-latest") == 0 ||
                strcmp(split, "time-cut") == 0, "eval_split %s", split);
  ck_assert_double_ge(strtod(it_model_info(c, "half_life_days"), NULL), 0);
  ck_assert_double_ge(strtod(it_model_info(c, "tuned_at"), NULL), 0);
  it_expect_error(c, "ERR unknown variant 'extra' (variants: default)", "MODEL INFO extra");
  it_expect_error(c, "ERR unknown MODEL subcommand", "MODEL INFO a b");

  /* QUIT: +OK, then the server closes the connection. */
  int fd = it_raw_connect(e.port);
  it_raw_send(fd, "QUIT\r\n", 6);
  size_t len;
  int closed;
  char *got = it_raw_read_until_close(fd, 5000, &len, &closed);
  ck_assert_str_eq(got, "+OK\r\n");
  ck_assert(closed);
  free(got);
  close(fd);
  /* QUIT after pipelined commands answers them first; nothing after it runs. */
  fd = it_raw_connect(e.port);
  const char *pipe = "PING\r\nECHO x\r\nQUIT\r\nPING\r\n";
  it_raw_send(fd, pipe, strlen(pipe));
  got = it_raw_read_until_close(fd, 5000, &len, &closed);
  ck_assert_str_eq(got, "+PONG\r\n$1\r\nx\r\n+OK\r\n");
  ck_assert(closed);
  free(got);
  close(fd);
  /* QUIT behind a RECOMMEND that waits for Redis: both answered, in order,
   * then closed. */
  fd = it_raw_connect(e.port);
  pipe = "RECOMMEND user1 COUNT 2\r\nQUIT\r\nPING\r\n";
  it_raw_send(fd, pipe, strlen(pipe));
  got = it_raw_read_until_close(fd, 5000, &len, &closed);
  ck_assert(closed);
  ck_assert_msg(strncmp(got, "*2\r\n$", 5) == 0 && len > 5 && strcmp(got + len - 5, "+OK\r\n") == 0,
                "RECOMMEND + QUIT got '%s'", got);
  free(got);
  close(fd);
  r = it_cmd(c, "QUIT");
  expect_status(r, "OK");

  it_env_stop(&e);
}
END_TEST

START_TEST(auth) {
  it_env_t e;
  it_opts_t o = {.requirepass = "s3cret pass"};
  it_env_start(&e, __func__, &o);

  redisContext *c = it_connect(e.port);
  it_expect_error(c, "NOAUTH", "PING");
  it_expect_error(c, "NOAUTH", "RECOMMEND user1");
  it_expect_error(c, "NOAUTH", "MODEL INFO");
  it_expect_error(c, "NOAUTH", "INFO");
  it_expect_error(c, "WRONGPASS", "AUTH %s", "wrong");
  it_expect_error(c, "WRONGPASS", "AUTH %s", "s3cret pass2");
  it_expect_error(c, "WRONGPASS", "AUTH %s", "s3cret pas");
  it_expect_error(c, "WRONGPASS", "AUTH default %s", "wrong");
  it_expect_error(c, "WRONGPASS", "AUTH admin %s", "s3cret pass");
  it_expect_error(c, "NOAUTH", "PING");
  expect_status(it_cmd(c, "AUTH %s", "s3cret pass"), "OK");
  expect_status(it_cmd(c, "PING"), "PONG");
  reco_check(&e, &M1, "user1", "COUNT 5", 0, 5, "after AUTH");
  redisFree(c);

  /* AUTH default <pass> (the Redis 6 form) and HELLO AUTH. */
  c = it_connect(e.port);
  expect_status(it_cmd(c, "AUTH default %s", "s3cret pass"), "OK");
  expect_status(it_cmd(c, "PING"), "PONG");
  redisFree(c);
  c = it_connect(e.port);
  it_expect_error(c, "NOAUTH", "HELLO");
  it_expect_error(c, "NOAUTH", "HELLO 2");
  it_expect_error(c, "WRONGPASS", "HELLO 2 AUTH default %s", "nope");
  it_expect_error(c, "NOAUTH", "PING");
  redisReply *r = it_cmd(c, "HELLO 2 AUTH default %s SETNAME me", "s3cret pass");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  expect_status(it_cmd(c, "PING"), "PONG");
  r = it_cmd(c, "HELLO");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  redisFree(c);
  /* QUIT needs no AUTH. */
  c = it_connect(e.port);
  expect_status(it_cmd(c, "QUIT"), "OK");
  redisFree(c);

  it_env_stop(&e);
}
END_TEST

/* ---- RECOMMEND ------------------------------------------------------------------ */

START_TEST(recommend_vs_bruteforce) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  const char *users[] = {"user0", "user1",  "user2",  "user3",   "user4",
                         "user5", "user17", "user42", "user101", "user299"};
  for (size_t j = 0; j < sizeof users / sizeof *users; j++) {
    reco_check(&e, &M1, users[j], "", 0, 10, "default COUNT");
    reco_check(&e, &M1, users[j], "COUNT 20 WITHSCORES", 0, 20, "COUNT 20");
    reco_check(&e, &M1, users[j], "withscores count 1000", 0, 1000, "everything");
  }
  /* Options are case-insensitive and may come in any order. */
  reco_check(&e, &M1, "user7", "withScores Count 7 offset 2", 2, 7, "mixed case");
  /* User ids are binary-safe and case-sensitive: USER1 is unknown. */
  reco_check(&e, &M1, "USER1", "COUNT 10 WITHSCORES", 0, 10, "case-sensitive id");
  it_env_stop(&e);
}
END_TEST

START_TEST(recommend_paging) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  redisReply *r10 = it_cmd(c, "RECOMMEND user5 COUNT 10");
  redisReply *a = it_cmd(c, "RECOMMEND user5 COUNT 5");
  redisReply *b = it_cmd(c, "RECOMMEND user5 COUNT 5 OFFSET 5");
  ck_assert_uint_eq(r10->elements, 10);
  ck_assert_uint_eq(a->elements, 5);
  ck_assert_uint_eq(b->elements, 5);
  for (size_t j = 0; j < 5; j++) {
    ck_assert_str_eq(a->element[j]->str, r10->element[j]->str);
    ck_assert_str_eq(b->element[j]->str, r10->element[5 + j]->str);
  }
  freeReplyObject(r10);
  freeReplyObject(a);
  freeReplyObject(b);
  reco_check(&e, &M1, "user5", "COUNT 5 OFFSET 5 WITHSCORES", 5, 5, "page 2");
  reco_check(&e, &M1, "user5", "OFFSET 30 COUNT 40", 30, 40, "deep page");
  reco_check(&e, &M1, "user5", "OFFSET 110 COUNT 50", 110, 50, "past the end");
  reco_check(&e, &M1, "user5", "OFFSET 500 COUNT 500", 500, 500, "far past the end");

  redisReply *r = it_cmd(c, "RECOMMEND user5 COUNT 0");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 0);
  freeReplyObject(r);
  r = it_cmd(c, "RECOMMEND user5 COUNT 1000");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);

  it_expect_error(c, "ERR OFFSET + COUNT must be at most max-count (1000)",
                  "RECOMMEND user5 OFFSET 995 COUNT 10");
  it_expect_error(c, "ERR OFFSET + COUNT must be at most max-count", "RECOMMEND user5 OFFSET 1000");
  it_expect_error(c, "ERR COUNT must be an integer", "RECOMMEND user5 COUNT 1001");
  it_expect_error(c, "ERR COUNT must be an integer", "RECOMMEND user5 COUNT abc");
  it_expect_error(c, "ERR COUNT must be an integer", "RECOMMEND user5 COUNT -1");
  it_expect_error(c, "ERR COUNT must be an integer", "RECOMMEND user5 COUNT 1.5");
  it_expect_error(c, "ERR COUNT must be an integer", "RECOMMEND user5 COUNT %s", "");
  it_expect_error(c, "ERR OFFSET must be an integer", "RECOMMEND user5 OFFSET x");
  it_expect_error(c, "ERR syntax error", "RECOMMEND user5 COUNT");
  it_expect_error(c, "ERR syntax error", "RECOMMEND user5 FROBNICATE");
  it_expect_error(c, "ERR syntax error", "RECOMMEND user5 CATEGORY");
  it_expect_error(c, "ERR syntax error", "RECOMMEND user5 EXCLUDE");
  /* Errors are answers, not disconnections. */
  expect_status(it_cmd(c, "PING"), "PONG");
  /* (a configured max-count: limits_and_options) */
  it_env_stop(&e);
}
END_TEST

START_TEST(recommend_filters) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  /* Repeated CATEGORY: items of any of them, nothing else. */
  const char *cats[] = {"cat1", "cat4"};
  ref_query_t q = {.cats = cats, .n_cats = 2};
  const char *users[] = {"user1", "user6", "user8", "user33"};
  for (size_t j = 0; j < 4; j++) {
    redisReply *r = reco_check_q(&e, c, &M1, users[j], "CATEGORY cat1 CATEGORY cat4 COUNT 50", &q,
                                 0, 50, 0, "CATEGORY x2");
    ck_assert_uint_gt(r->elements, 0);
    for (size_t i = 0; i < r->elements; i++)
      ck_assert_msg(item_in_cat(&M1, r->element[i]->str, "cat1") ||
                        item_in_cat(&M1, r->element[i]->str, "cat4"),
                    "%s is in neither category", r->element[i]->str);
    freeReplyObject(r);
  }
  const char *one[] = {"cat2"};
  q = (ref_query_t){.cats = one, .n_cats = 1};
  freeReplyObject(reco_check_q(&e, c, &M1, "user2", "category cat2 count 5 withscores", &q, 0, 5, 0,
                               "CATEGORY x1"));
  /* An unknown category is an error (issue 19: it used to match nothing,
   * silently), alone or next to a known one. */
  it_expect_error(c, "ERR unknown CATEGORY 'nosuch'", "RECOMMEND user2 CATEGORY nosuch");
  it_expect_error(c, "ERR unknown CATEGORY 'nosuch'",
                  "RECOMMEND user2 CATEGORY nosuch CATEGORY cat3 COUNT 30");
  redisReply *r;

  /* EXCLUDE: the best three disappear, the rest moves up. */
  r = it_cmd(c, "RECOMMEND user9 COUNT 3");
  size_t n;
  char **top = reply_ids(r, 1, &n);
  freeReplyObject(r);
  ck_assert_uint_eq(n, 3);
  char args[512];
  it_fmt(args, sizeof args, "COUNT 10 EXCLUDE %s %s nosuchitem %s", top[0], top[1], top[2]);
  const char *excl[] = {top[0], top[1], top[2], "nosuchitem"};
  q = (ref_query_t){.exclude = excl, .n_exclude = 4};
  r = reco_check_q(&e, c, &M1, "user9", args, &q, 0, 10, 0, "EXCLUDE");
  for (size_t j = 0; j < 3; j++)
    ck_assert(!reply_contains(r, 1, top[j]));
  freeReplyObject(r);
  /* EXCLUDE takes the rest of the line, after the other options. */
  it_fmt(args, sizeof args, "WITHSCORES CATEGORY cat3 COUNT 4 EXCLUDE %s", top[0]);
  const char *c3[] = {"cat3"};
  q = (ref_query_t){.exclude = excl, .n_exclude = 1, .cats = c3, .n_cats = 1};
  freeReplyObject(reco_check_q(&e, c, &M1, "user9", args, &q, 0, 4, 0, "EXCLUDE + CATEGORY"));
  ids_free(top, n);

  /* History items are never recommended, however deep the page. */
  for (int u = 0; u < 30; u++) {
    char user[16];
    it_fmt(user, sizeof user, "user%d", u);
    r = it_cmd(c, "RECOMMEND %s COUNT 1000", user);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    redisReply *h = it_cmd(e.redis, "ZRANGE recd:hist:%s 0 -1", user);
    ck_assert_uint_gt(h->elements, 0);
    ck_assert_uint_eq(r->elements, 120 - h->elements);
    for (size_t j = 0; j < h->elements; j++)
      ck_assert_msg(!reply_contains(r, 1, h->element[j]->str), "%s got history item %s", user,
                    h->element[j]->str);
    freeReplyObject(h);
    freeReplyObject(r);
  }
  it_env_stop(&e);
}
END_TEST

START_TEST(recommend_withreasons) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  const char *users[] = {"user0", "user3", "user11", "user12", "user57", "user200"};
  for (size_t j = 0; j < 6; j++) {
    reco_check(&e, &M1, users[j], "COUNT 10 WITHREASONS", 0, 10, "WITHREASONS");
    reco_check(&e, &M1, users[j], "WITHREASONS COUNT 20 WITHSCORES OFFSET 3", 3, 20,
               "WITHSCORES WITHREASONS");
  }
  /* A customer with a single past item: it is the reason for everything. */
  redisReply *r = it_cmd(e.redis, "ZADD recd:hist:solo 2 item5");
  freeReplyObject(r);
  r = reco_check_q(&e, e.c, &M1, "solo", "COUNT 10 WITHREASONS", NULL, 0, 10, 0, "one item");
  for (size_t j = 1; j < r->elements; j += 2)
    ck_assert_str_eq(r->element[j]->str, "item5");
  freeReplyObject(r);
  /* Not personalized: nil reasons. */
  reco_check(&e, &M1, "nobody", "COUNT 10 WITHREASONS WITHSCORES", 0, 10, "unknown user");
  it_env_stop(&e);
}
END_TEST

START_TEST(recommend_popular) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  /* Unknown customers get the most popular items, in model_popularity
   * order (the reference sorts by it: ties by item index). */
  redisReply *r =
      reco_check_q(&e, c, &M1, "nobody", "COUNT 30 WITHSCORES", NULL, 0, 30, 0, "unknown user");
  for (size_t j = 0; j < r->elements; j += 2) {
    int64_t i = ref_item(&M1, r->element[j]->str);
    ck_assert_double_eq_tol(strtod(r->element[j + 1]->str, NULL), M1.pop[i], 1e-4 * M1.pop[i]);
    if (j >= 2) {
      int64_t prev = ref_item(&M1, r->element[j - 2]->str);
      ck_assert(M1.pop[prev] > M1.pop[i] || (M1.pop[prev] == M1.pop[i] && prev < i));
    }
  }
  freeReplyObject(r);
  /* An unknown user is not an error, whatever its bytes. */
  const char *odd[] = {"RECOMMEND", "us\xff\x00r", "COUNT", "3"};
  size_t lens[] = {9, 5, 5, 1};
  r = redisCommandArgv(c, 4, odd, lens);
  ck_assert_ptr_nonnull(r);
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 3);
  freeReplyObject(r);
  /* Ids are up to 256 bytes. */
  char longid[300];
  memset(longid, 'u', sizeof longid - 1);
  longid[256] = '\0';
  r = it_cmd(c, "RECOMMEND %s COUNT 2", longid);
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  longid[256] = 'u';
  longid[257] = '\0';
  it_expect_error(c, "ERR user id longer than 256 bytes", "RECOMMEND %s", longid);

  /* personalize = 0: popular items, as for an unknown visitor (the history
   * is not read, so past items are not filtered out: opt_out_is_anonymous). */
  ck_assert(is_personalized(c, "user9"));
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user9 personalize 0"));
  ck_assert(!is_personalized(c, "user9"));
  reco_check(&e, &M1, "user9", "COUNT 20 WITHREASONS WITHSCORES", 0, 20, "opted out");
  /* ... with preferences still applied (on the popularity scale). */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user9 cat:cat2 0.5 cat:cat0 -1"));
  reco_check(&e, &M1, "user9", "COUNT 30 WITHSCORES", 0, 30, "opted out + preferences");
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user9 personalize 1"));
  ck_assert(is_personalized(c, "user9"));
  reco_check(&e, &M1, "user9", "COUNT 20 WITHREASONS", 0, 20, "opted in again");
  it_env_stop(&e);
}
END_TEST

/* Two replies that must be the same, element by element (ids, scores as
 * formatted, nil reasons). */
static void expect_same_reply(const redisReply *got, const redisReply *want, const char *what) {
  ck_assert_msg(got->type == want->type, "%s: reply type %d, want %d", what, got->type, want->type);
  ck_assert_msg(got->type == REDIS_REPLY_ARRAY, "%s: reply type %d", what, got->type);
  ck_assert_msg(got->elements == want->elements, "%s: %zu elements, want %zu (got %s)", what,
                got->elements, want->elements, ref_ids_str(got, 1));
  for (size_t j = 0; j < got->elements; j++) {
    const redisReply *g = got->element[j], *w = want->element[j];
    ck_assert_msg(g->type == w->type &&
                      (g->type != REDIS_REPLY_STRING ||
                       (g->len == w->len && memcmp(g->str, w->str, g->len) == 0)),
                  "%s: element %zu is '%s' (type %d), want '%s' (type %d)", what, j,
                  g->str ? g->str : "", g->type, w->str ? w->str : "", w->type);
  }
}

/* recd:pref:<user> personalize = 0 (DESIGN.md, Redis data layout): the
 * customer opted out, so recd answers with non-personalized (popular) items
 * and does not read the history. An opted-out customer therefore gets
 * exactly what an unknown visitor gets, even when the history holds the
 * most popular items (a history filter would take them out of the answer,
 * which uses the history). Same ids, same scores, same order, every page;
 * RANK the same. */
START_TEST(opt_out_is_anonymous) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  /* The unknown visitor's ranking: every item, by popularity. */
  redisReply *anon = it_cmd(c, "RECOMMEND nobody COUNT 1000");
  ck_assert_uint_eq(anon->elements, 120);
  /* A customer who bought the 1st, 2nd, 4th and 7th most popular items and
   * a less popular one, then opted out. */
  const char *top[] = {anon->element[0]->str, anon->element[1]->str, anon->element[3]->str,
                       anon->element[6]->str, anon->element[40]->str};
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:optout 5 %s 3 %s 2 %s 1 %s 1 %s", top[0],
                         top[1], top[2], top[3], top[4]));
  ck_assert(is_personalized(c, "optout")); /* the history personalizes ... */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:optout personalize 0"));
  ck_assert(!is_personalized(c, "optout")); /* ... until the customer opts out */
  /* user9, a customer of the data set, opts out too. */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user9 personalize 0"));
  redisReply *h9 = it_cmd(e.redis, "ZRANGE recd:hist:user9 0 -1");
  ck_assert_uint_gt(h9->elements, 0);
  freeReplyObject(h9);

  const char *args[] = {"",
                        "COUNT 5",
                        "COUNT 20 WITHSCORES",
                        "COUNT 1000 WITHSCORES",
                        "COUNT 10 OFFSET 3 WITHSCORES WITHREASONS",
                        "CATEGORY cat0 CATEGORY cat3 COUNT 50 WITHSCORES"};
  const char *users[] = {"optout", "user9"};
  for (size_t u = 0; u < 2; u++)
    for (size_t j = 0; j < sizeof args / sizeof *args; j++) {
      char line[256], what[320];
      it_fmt(line, sizeof line, "RECOMMEND nobody %s", args[j]);
      words_t w;
      words_split(&w, line);
      redisReply *want = it_cmdv(c, w.n, w.v);
      w.v[1] = users[u];
      redisReply *got = it_cmdv(c, w.n, w.v);
      it_fmt(what, sizeof what, "opted-out %s vs an unknown visitor: RECOMMEND %s %s", users[u],
             users[u], args[j]);
      expect_same_reply(got, want, what);
      freeReplyObject(want);
      freeReplyObject(got);
    }
  /* The answer still is the popular one (never personalized): nil reasons. */
  reco_check(&e, &M1, "optout", "COUNT 20 WITHREASONS WITHSCORES", 0, 20, "opted out");

  /* RANK: the candidates (past items among them) in popularity order. */
  char cand[512];
  it_fmt(cand, sizeof cand, "%s nosuch %s %s item5 %s %s item77 WITHSCORES", top[3], top[0],
         top[4], top[2], top[1]);
  for (size_t u = 0; u < 2; u++) {
    char cmd[600], what[700];
    it_fmt(cmd, sizeof cmd, "RANK nobody %s", cand);
    words_t w;
    words_split(&w, cmd);
    redisReply *want = it_cmdv(c, w.n, w.v);
    w.v[1] = users[u];
    redisReply *got = it_cmdv(c, w.n, w.v);
    it_fmt(what, sizeof what, "opted-out %s vs an unknown visitor: %s", users[u], cmd);
    expect_same_reply(got, want, what);
    freeReplyObject(want);
    freeReplyObject(got);
  }
  freeReplyObject(anon);
  it_env_stop(&e);
}
END_TEST

START_TEST(recommend_preferences) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  /* user12 is in cluster 0: its best items are cat0. */
  reco_check(&e, &M1, "user12", "COUNT 1000", 0, 1000, "no preferences");
  redisReply *base = it_cmd(c, "RECOMMEND user12 COUNT 1000");
  ck_assert(item_in_cat(&M1, base->element[0]->str, "cat0"));

  /* -1: the category never appears. */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user12 cat:cat0 -1"));
  redisReply *r =
      reco_check_q(&e, c, &M1, "user12", "COUNT 1000 WITHSCORES", NULL, 0, 1000, 0, "cat0 = -1");
  ck_assert_uint_gt(r->elements, 0);
  for (size_t j = 0; j < r->elements; j += 2)
    ck_assert_msg(!item_in_cat(&M1, r->element[j]->str, "cat0"), "cat0 item %s shown",
                  r->element[j]->str);
  freeReplyObject(r);
  /* Even when asked for by CATEGORY. */
  r = it_cmd(c, "RECOMMEND user12 CATEGORY cat0");
  ck_assert_uint_eq(r->elements, 0);
  freeReplyObject(r);
  freeReplyObject(it_cmd(e.redis, "DEL recd:pref:user12"));

  /* A positive preference moves a category up: every cat3 item ranks
   * higher than without it, and the top is cat3. */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user12 cat:cat3 1"));
  r = reco_check_q(&e, c, &M1, "user12", "COUNT 1000", NULL, 0, 1000, 0, "cat3 = +1");
  size_t moved = 0;
  for (size_t j = 0; j < base->elements; j++) {
    const char *id = base->element[j]->str;
    if (!item_in_cat(&M1, id, "cat3"))
      continue;
    size_t now = reply_pos(r, id);
    ck_assert_msg(now <= j, "cat3 item %s moved down from %zu to %zu", id, j, now);
    moved += now < j;
  }
  ck_assert_uint_gt(moved, 0);
  freeReplyObject(r);
  /* A negative one (above -1) moves the customer's own category down. */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user12 cat:cat3 0 cat:cat0 -0.5"));
  r = reco_check_q(&e, c, &M1, "user12", "COUNT 1000", NULL, 0, 1000, 0, "cat0 = -0.5");
  for (size_t j = 0; j < base->elements; j++) {
    const char *id = base->element[j]->str;
    if (item_in_cat(&M1, id, "cat0"))
      ck_assert_uint_ge(reply_pos(r, id), j);
  }
  freeReplyObject(r);
  /* Several at once, and invalid values ignored (2, not a number). */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user12 cat:cat1 0.25 cat:cat2 2 cat:cat4 x "
                                  "cat:cat5 -1 cat:nosuch 1"));
  freeReplyObject(reco_check_q(&e, c, &M1, "user12", "COUNT 1000 WITHSCORES", NULL, 0, 1000, 0,
                               "several preferences"));
  freeReplyObject(base);
  it_env_stop(&e);
}
END_TEST

START_TEST(recommend_unavailable) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  redisReply *r = it_cmd(c, "RECOMMEND user3 COUNT 3");
  size_t n;
  char **top = reply_ids(r, 1, &n);
  freeReplyObject(r);
  r = it_cmd(c, "SIMILAR item3 COUNT 2");
  char **sim = reply_ids(r, 1, &n);
  freeReplyObject(r);
  freeReplyObject(it_cmd(e.redis, "SADD recd:unavailable %s %s %s %s nosuchitem", top[0], top[1],
                         sim[0], sim[1]));
  /* recd refreshes its copy every 100 ms here: poll, bounded. */
  uint64_t t0 = it_now_ms();
  for (;;) {
    r = it_cmd(c, "RECOMMEND user3 COUNT 3");
    int gone = !reply_contains(r, 1, top[0]) && !reply_contains(r, 1, top[1]);
    freeReplyObject(r);
    if (gone)
      break;
    ck_assert_msg(it_now_ms() - t0 < 5000, "unavailable items still recommended after 5 s");
    it_sleep_ms(20);
  }
  it_sleep_ms(150); /* one more refresh period: the copy is stable now */
  const char *un[] = {top[0], top[1], sim[0], sim[1], "nosuchitem"};
  ref_query_t q = {.unavail = un, .n_unavail = 5};
  const char *users[] = {"user3", "user4", "user10", "nobody"};
  for (size_t j = 0; j < 4; j++)
    freeReplyObject(
        reco_check_q(&e, c, &M1, users[j], "COUNT 1000", &q, 0, 1000, 0, "unavailable"));
  ck_assert_double_eq(it_info_num(c, "model", "unavailable_items"), 4);
  r = it_cmd(c, "SIMILAR item3 COUNT 119");
  for (size_t j = 0; j < 2; j++) {
    ck_assert(!reply_contains(r, 1, sim[j]));
    ck_assert(!reply_contains(r, 1, top[j]));
  }
  ck_assert_uint_eq(r->elements, 119 - 4);
  freeReplyObject(r);
  /* RANK orders what it is given: availability is the storefront's call. */
  r = it_cmd(c, "RANK user3 %s item0", top[0]);
  ck_assert_uint_eq(r->elements, 2);
  freeReplyObject(r);

  /* Back in stock: they come back. */
  freeReplyObject(it_cmd(e.redis, "SREM recd:unavailable %s %s", top[0], top[1]));
  t0 = it_now_ms();
  for (;;) {
    r = it_cmd(c, "RECOMMEND user3 COUNT 3");
    int back = reply_contains(r, 1, top[0]) && reply_contains(r, 1, top[1]);
    freeReplyObject(r);
    if (back)
      break;
    ck_assert_msg(it_now_ms() - t0 < 5000, "available items not back after 5 s");
    it_sleep_ms(20);
  }
  freeReplyObject(it_cmd(e.redis, "DEL recd:unavailable"));
  t0 = it_now_ms();
  while (it_info_num(c, "model", "unavailable_items") != 0) {
    ck_assert_msg(it_now_ms() - t0 < 5000, "unavailable set not emptied after 5 s");
    it_sleep_ms(20);
  }
  reco_check(&e, &M1, "user3", "COUNT 1000", 0, 1000, "nothing unavailable");
  ids_free(top, 3);
  ids_free(sim, 2);
  it_env_stop(&e);
}
END_TEST

/* ---- RANK, SIMILAR ----------------------------------------------------------------- */

/* RANK <user> <cands...> [WITHSCORES] against the reference. */
static void rank_check(it_env_t *e, const char *user, const char *const *cand, size_t n,
                       int withscores) {
  const char *argv[80];
  int argc = 0;
  argv[argc++] = "RANK";
  argv[argc++] = user;
  for (size_t j = 0; j < n; j++)
    argv[argc++] = cand[j];
  if (withscores)
    argv[argc++] = "WITHSCORES";
  ref_user_t u;
  ref_user_read(&M1, e->redis, user, &u);
  ref_query_t q = {.u = &u};
  ref_answer_t a;
  ref_recommend(&M1, &q, &a); /* a.score: adjusted scores, -inf = removed */
  double tol = ref_tol(&a);
  redisReply *r = it_cmdv(e->c, argc, argv);
  size_t per = withscores ? 2 : 1;
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, n * per);
  /* Expected classes in order: scored (best first), removed, unknown; the
   * last two in the order given. */
  size_t n_known = 0, n_removed = 0;
  for (size_t j = 0; j < n; j++) {
    int64_t i = ref_item(&M1, cand[j]);
    if (i >= 0 && a.score[i] != -INFINITY)
      n_known++;
    else if (i >= 0)
      n_removed++;
  }
  size_t k_removed = 0, k_unknown = 0;
  double prev = INFINITY;
  for (size_t j = 0; j < n; j++) {
    const char *id = r->element[j * per]->str;
    int64_t i = ref_item(&M1, id);
    if (j < n_known) {
      ck_assert_msg(i >= 0 && a.score[i] != -INFINITY, "RANK %s: position %zu is %s", user, j, id);
      ck_assert_msg(a.score[i] <= prev + tol, "RANK %s: %s (%.9g) after a lower score %.9g", user,
                    id, a.score[i], prev);
      prev = a.score[i];
      if (withscores)
        ck_assert_double_eq_tol(strtod(r->element[j * per + 1]->str, NULL), a.score[i], tol);
    } else {
      /* removed, then unknown, each in the order given */
      int removed = j < n_known + n_removed;
      size_t want = removed ? k_removed++ : k_unknown++, seen = 0;
      const char *exp = NULL;
      for (size_t t = 0; t < n && exp == NULL; t++) {
        int64_t ci = ref_item(&M1, cand[t]);
        int cls = ci < 0 ? 2 : a.score[ci] == -INFINITY ? 1 : 0;
        if (cls == (removed ? 1 : 2) && seen++ == want)
          exp = cand[t];
      }
      ck_assert_msg(exp != NULL && strcmp(id, exp) == 0, "RANK %s: position %zu is %s, want %s",
                    user, j, id, exp ? exp : "?");
      if (withscores && !removed)
        ck_assert_int_eq(r->element[j * per + 1]->type, REDIS_REPLY_NIL);
    }
  }
  freeReplyObject(r);
  ref_answer_free(&a);
  ref_user_free(&u);
}

START_TEST(rank) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisReply *h = it_cmd(e.redis, "ZRANGE recd:hist:user4 0 0");
  const char *cand[] = {"item0",  "nosuch1", "item4",   "item10", "item22", h->element[0]->str,
                        "item34", "item40",  "nosuch2", "item46", "item51", "item99",
                        "item1",  "item7"};
  size_t n = sizeof cand / sizeof *cand;
  rank_check(&e, "user4", cand, n, 0);
  rank_check(&e, "user4", cand, n, 1);
  rank_check(&e, "user31", cand, n, 1);
  rank_check(&e, "nobody", cand, n, 1); /* popularity order */
  rank_check(&e, "user4", cand, 1, 1);
  const char *unknown[] = {"zz", "aa", "mm"};
  rank_check(&e, "user4", unknown, 3, 1);
  /* A removed category goes after the scored items, before unknown ids. */
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:user4 cat:cat4 -1 cat:cat0 0.5"));
  rank_check(&e, "user4", cand, n, 1);
  rank_check(&e, "user4", cand, n, 0);
  /* Candidates may repeat: each is ranked. */
  const char *dup[] = {"item1", "item2", "item1"};
  rank_check(&e, "user5", dup, 3, 0);
  it_expect_error(e.c, "ERR wrong number of arguments for 'rank' command", "RANK user4");
  it_expect_error(e.c, "ERR wrong number of arguments for 'rank' command", "RANK user4 WITHSCORES");
  freeReplyObject(h);
  it_env_stop(&e);
}
END_TEST

static int cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x < y) - (x > y);
}

static void similar_check(it_env_t *e, const ref_model_t *M, const char *item, size_t count) {
  redisReply *r = it_cmd(e->c, "SIMILAR %s COUNT %d WITHSCORES", item, (int)count);
  int64_t q = ref_item(M, item);
  ck_assert_int_ge(q, 0);
  /* Brute force: every other item by cosine, best first. */
  double *best = malloc(M->n * sizeof *best);
  ck_assert_ptr_nonnull(best);
  size_t nb = 0;
  for (uint32_t i = 0; i < M->n; i++)
    if (i != (uint32_t)q && !isnan(ref_cosine(M, (uint32_t)q, i)))
      best[nb++] = ref_cosine(M, (uint32_t)q, i);
  qsort(best, nb, sizeof *best, cmp_desc);
  size_t want = count < nb ? count : nb;
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 2 * want);
  for (size_t j = 0; j < want; j++) {
    int64_t i = ref_item(M, r->element[2 * j]->str);
    ck_assert_int_ge(i, 0);
    ck_assert_int_ne(i, q);
    double cs = ref_cosine(M, (uint32_t)q, (uint32_t)i);
    /* cosines are in [-1, 1]: an absolute float tolerance */
    ck_assert_msg(fabs(cs - best[j]) <= 1e-5, "SIMILAR %s: rank %zu is %s (%.7f), want %.7f", item,
                  j, r->element[2 * j]->str, cs, best[j]);
    ck_assert_double_eq_tol(strtod(r->element[2 * j + 1]->str, NULL), cs, 1e-5);
  }
  freeReplyObject(r);
  free(best);
}

START_TEST(similar) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  similar_check(&e, &M1, "item0", 10);
  similar_check(&e, &M1, "item7", 5);
  similar_check(&e, &M1, "item55", 119);
  similar_check(&e, &M1, "item119", 1000);
  redisReply *r = it_cmd(e.c, "SIMILAR item3");
  ck_assert_uint_eq(r->elements, 10);
  /* "customers also bought": the planted cluster comes first */
  for (size_t j = 0; j < 5; j++)
    ck_assert(item_in_cat(&M1, r->element[j]->str, "cat3"));
  freeReplyObject(r);
  r = it_cmd(e.c, "SIMILAR nosuch COUNT 5 WITHSCORES");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 0);
  freeReplyObject(r);
  r = it_cmd(e.c, "SIMILAR item3 COUNT 0");
  ck_assert_uint_eq(r->elements, 0);
  freeReplyObject(r);
  it_expect_error(e.c, "ERR COUNT must be an integer", "SIMILAR item3 COUNT x");
  it_expect_error(e.c, "ERR COUNT must be an integer", "SIMILAR item3 COUNT 5000");
  it_expect_error(e.c, "ERR syntax error", "SIMILAR item3 FOO");
  it_env_stop(&e);
}
END_TEST

/* ---- freshness ---------------------------------------------------------------------- */

START_TEST(freshness) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  reco_check(&e, &M1, "user20", "COUNT 20 WITHSCORES", 0, 20, "before");
  redisReply *r = it_cmd(c, "RECOMMEND user20 COUNT 2");
  char *i1 = strdup(r->element[0]->str), *i2 = strdup(r->element[1]->str);
  freeReplyObject(r);

  /* FEEDBACK returns the new weight; Redis agrees; the very next RECOMMEND
   * excludes the item and is computed from the new history. */
  r = it_cmd(c, "FEEDBACK user20 %s", i1);
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  ck_assert_double_eq(strtod(r->str, NULL), 1);
  freeReplyObject(r);
  r = it_cmd(e.redis, "ZSCORE recd:hist:user20 %s", i1);
  ck_assert_double_eq(strtod(r->str, NULL), 1);
  freeReplyObject(r);
  r = reco_check_q(&e, c, &M1, "user20", "COUNT 20 WITHSCORES WITHREASONS", NULL, 0, 20, 0,
                   "after FEEDBACK");
  ck_assert(!reply_contains(r, 3, i1));
  freeReplyObject(r);
  r = it_cmd(c, "FEEDBACK user20 %s WEIGHT 2.5", i1);
  ck_assert_double_eq(strtod(r->str, NULL), 3.5);
  freeReplyObject(r);
  r = it_cmd(e.redis, "ZSCORE recd:hist:user20 %s", i1);
  ck_assert_double_eq(strtod(r->str, NULL), 3.5);
  freeReplyObject(r);
  reco_check(&e, &M1, "user20", "COUNT 20 WITHSCORES", 0, 20, "after FEEDBACK WEIGHT");

  /* The storefront's own ZINCRBY, on another connection. */
  freeReplyObject(it_cmd(e.redis, "ZINCRBY recd:hist:user20 1 %s", i2));
  r = reco_check_q(&e, c, &M1, "user20", "COUNT 20 WITHSCORES WITHREASONS", NULL, 0, 20, 0,
                   "after ZINCRBY");
  ck_assert(!reply_contains(r, 3, i2));
  freeReplyObject(r);
  /* Pipelined on one connection: FEEDBACK then RECOMMEND, answered in
   * order, the RECOMMEND already seeing the FEEDBACK. */
  redisAppendCommand(c, "FEEDBACK user20 item100");
  redisAppendCommand(c, "RECOMMEND user20 COUNT 200");
  void *v;
  ck_assert_int_eq(redisGetReply(c, &v), REDIS_OK);
  r = v;
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  freeReplyObject(r);
  ck_assert_int_eq(redisGetReply(c, &v), REDIS_OK);
  r = v;
  ck_assert(!reply_contains(r, 1, "item100"));
  freeReplyObject(r);
  reco_check(&e, &M1, "user20", "COUNT 200", 0, 200, "after pipelined FEEDBACK");

  /* A new customer is personalized from the first purchase on. */
  ck_assert(!is_personalized(c, "newbie"));
  r = it_cmd(c, "FEEDBACK newbie item8");
  ck_assert_double_eq(strtod(r->str, NULL), 1);
  freeReplyObject(r);
  r = reco_check_q(&e, c, &M1, "newbie", "COUNT 10 WITHREASONS", NULL, 0, 10, 0, "new customer");
  for (size_t j = 1; j < r->elements; j += 2)
    ck_assert_str_eq(r->element[j]->str, "item8");
  freeReplyObject(r);
  /* An item the model does not know is recorded, but changes nothing. */
  r = it_cmd(c, "FEEDBACK newbie brand-new-item WEIGHT 4");
  ck_assert_double_eq(strtod(r->str, NULL), 4);
  freeReplyObject(r);
  reco_check(&e, &M1, "newbie", "COUNT 10 WITHREASONS", 0, 10, "unknown item in history");

  it_expect_error(c, "ERR WEIGHT must be", "FEEDBACK user20 item1 WEIGHT 0");
  it_expect_error(c, "ERR WEIGHT must be", "FEEDBACK user20 item1 WEIGHT -1");
  it_expect_error(c, "ERR WEIGHT must be", "FEEDBACK user20 item1 WEIGHT abc");
  it_expect_error(c, "ERR WEIGHT must be", "FEEDBACK user20 item1 WEIGHT nan");
  it_expect_error(c, "ERR syntax error", "FEEDBACK user20 item1 WEIGHT");
  it_expect_error(c, "ERR syntax error", "FEEDBACK user20 item1 COLOR 2");
  it_expect_error(c, "ERR user and item ids must be 1 to 256 bytes", "FEEDBACK user20 %s", "");
  r = it_cmd(e.redis, "ZSCORE recd:hist:user20 item1");
  ck_assert_int_eq(r->type, REDIS_REPLY_NIL); /* nothing recorded by the errors */
  freeReplyObject(r);
  free(i1);
  free(i2);
  it_env_stop(&e);
}
END_TEST

/* ---- the wire ----------------------------------------------------------------------- */

START_TEST(pipeline_1000) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  /* Expected answers, one request at a time. */
  redisReply *want[20];
  for (int u = 0; u < 20; u++) {
    want[u] = it_cmd(e.c, "RECOMMEND user%d COUNT 5 WITHSCORES", u);
    ck_assert_uint_eq(want[u]->elements, 10);
  }
  /* 1000 requests, RECOMMEND and PING alternating, in one write. */
  size_t cap = 1 << 17, len = 0;
  char *buf = malloc(cap);
  ck_assert_ptr_nonnull(buf);
  for (int j = 0; j < 1000; j++) {
    char user[16], tag[16];
    it_fmt(user, sizeof user, "user%d", (j / 2) % 20);
    it_fmt(tag, sizeof tag, "%d", j);
    if (j % 2 == 0)
      len += (size_t)snprintf(buf + len, cap - len,
                              "*5\r\n$9\r\nRECOMMEND\r\n$%zu\r\n%s\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n"
                              "$10\r\nWITHSCORES\r\n",
                              strlen(user), user);
    else
      len += (size_t)snprintf(buf + len, cap - len, "*2\r\n$4\r\nPING\r\n$%zu\r\n%s\r\n",
                              strlen(tag), tag);
  }
  int fd = it_raw_connect(e.port);
  ssize_t sent = send(fd, buf, len, MSG_NOSIGNAL);
  ck_assert_int_eq(sent, (ssize_t)len); /* one write(2) */
  redisReply **got = it_raw_read_replies(fd, 1000, 30000);
  for (int j = 0; j < 1000; j++) {
    redisReply *r = got[j];
    if (j % 2 == 1) {
      char tag[16];
      it_fmt(tag, sizeof tag, "%d", j);
      ck_assert_msg(r->type == REDIS_REPLY_STRING && strcmp(r->str, tag) == 0,
                    "reply %d out of order", j);
    } else {
      redisReply *w = want[(j / 2) % 20];
      ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == w->elements, "reply %d", j);
      for (size_t t = 0; t < w->elements; t++)
        ck_assert_str_eq(r->element[t]->str, w->element[t]->str);
    }
    freeReplyObject(r);
  }
  free(got);
  /* The connection is still good. */
  it_raw_send(fd, "PING\r\n", 6);
  got = it_raw_read_replies(fd, 1, 5000);
  ck_assert_str_eq(got[0]->str, "PONG");
  freeReplyObject(got[0]);
  free(got);
  close(fd);
  free(buf);
  /* The same through hiredis's pipelining API, from another connection. */
  redisContext *c = it_connect(e.port);
  for (int j = 0; j < 1000; j++) {
    if (j % 2 == 0)
      redisAppendCommand(c, "RECOMMEND user%d COUNT 5 WITHSCORES", (j / 2) % 20);
    else
      redisAppendCommand(c, "PING %d", j);
  }
  for (int j = 0; j < 1000; j++) {
    void *v;
    ck_assert_int_eq(redisGetReply(c, &v), REDIS_OK);
    redisReply *r = v;
    if (j % 2 == 1) {
      ck_assert_int_eq(atoi(r->str), j);
    } else {
      redisReply *w = want[(j / 2) % 20];
      ck_assert_uint_eq(r->elements, w->elements);
      ck_assert_str_eq(r->element[0]->str, w->element[0]->str);
    }
    freeReplyObject(r);
  }
  redisFree(c);
  for (int u = 0; u < 20; u++)
    freeReplyObject(want[u]);
  it_env_stop(&e);
}
END_TEST

START_TEST(byte_by_byte) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisReply *want = it_cmd(e.c, "RECOMMEND user11 COUNT 5");
  const char *reqs[] = {
      "*4\r\n$9\r\nRECOMMEND\r\n$6\r\nuser11\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n",
      "RECOMMEND user11 COUNT 5\r\n",
  };
  for (size_t t = 0; t < 2; t++) {
    int fd = it_raw_connect(e.port);
    for (size_t j = 0; reqs[t][j] != '\0'; j++) {
      it_raw_send(fd, reqs[t] + j, 1);
      it_sleep_ms(1);
    }
    redisReply **got = it_raw_read_replies(fd, 1, 5000);
    ck_assert_int_eq(got[0]->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(got[0]->elements, 5);
    for (size_t j = 0; j < 5; j++)
      ck_assert_str_eq(got[0]->element[j]->str, want->element[j]->str);
    freeReplyObject(got[0]);
    free(got);
    close(fd);
  }
  /* Two requests split at every offset in two writes. */
  const char *two = "*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n*1\r\n$4\r\nPING\r\n";
  int fd = it_raw_connect(e.port);
  for (size_t cut = 1; cut < strlen(two); cut++) {
    it_raw_send(fd, two, cut);
    it_sleep_ms(1);
    it_raw_send(fd, two + cut, strlen(two) - cut);
    redisReply **got = it_raw_read_replies(fd, 2, 5000);
    ck_assert_str_eq(got[0]->str, "abc");
    ck_assert_str_eq(got[1]->str, "PONG");
    freeReplyObject(got[0]);
    freeReplyObject(got[1]);
    free(got);
  }
  close(fd);
  freeReplyObject(want);
  it_env_stop(&e);
}
END_TEST

START_TEST(inline_commands) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisReply *want = it_cmd(e.c, "RECOMMEND user3 COUNT 3");
  int fd = it_raw_connect(e.port);
  it_raw_send(fd, "PING\r\n", 6);
  char buf[64];
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  ck_assert_int_eq(n, 7);
  buf[n] = '\0';
  ck_assert_str_eq(buf, "+PONG\r\n");
  const char *s = "RECOMMEND user3 COUNT 3\r\n";
  it_raw_send(fd, s, strlen(s));
  redisReply **got = it_raw_read_replies(fd, 1, 5000);
  ck_assert_uint_eq(got[0]->elements, 3);
  for (size_t j = 0; j < 3; j++)
    ck_assert_str_eq(got[0]->element[j]->str, want->element[j]->str);
  freeReplyObject(got[0]);
  free(got);
  /* LF-only line ends, quoting, extra blanks, several per write. */
  s = "ping hello\n  ECHO   \"a b\\x41\"  \r\n\r\nrecommend   user3   count 3\nPING\r\n";
  it_raw_send(fd, s, strlen(s));
  got = it_raw_read_replies(fd, 4, 5000);
  ck_assert_str_eq(got[0]->str, "hello");
  ck_assert_str_eq(got[1]->str, "a bA");
  ck_assert_uint_eq(got[2]->elements, 3);
  ck_assert_str_eq(got[2]->element[0]->str, want->element[0]->str);
  ck_assert_str_eq(got[3]->str, "PONG");
  for (int j = 0; j < 4; j++)
    freeReplyObject(got[j]);
  free(got);
  /* Inline and multibulk mixed on one connection. */
  s = "*1\r\n$4\r\nPING\r\nECHO x\r\n*2\r\n$4\r\nECHO\r\n$1\r\ny\r\n";
  it_raw_send(fd, s, strlen(s));
  got = it_raw_read_replies(fd, 3, 5000);
  ck_assert_str_eq(got[0]->str, "PONG");
  ck_assert_str_eq(got[1]->str, "x");
  ck_assert_str_eq(got[2]->str, "y");
  for (int j = 0; j < 3; j++)
    freeReplyObject(got[j]);
  free(got);
  close(fd);
  freeReplyObject(want);
  it_env_stop(&e);
}
END_TEST

START_TEST(protocol_errors) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *a = e.c; /* a well-behaved client, connected throughout */
  expect_status(it_cmd(a, "PING"), "PONG");
  double errs0 = it_info_num(a, "stats", "protocol_errors");
  struct {
    const char *send, *reply;
  } bad[] = {
      {"*2\r\n$4\r\nPING\r\nxx\r\n", "-ERR Protocol error: expected '$', got 'x'\r\n"},
      {"*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
      {"*99999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
      {"*1\r\n$4\r\nPINGxx", "-ERR Protocol error: expected CRLF after bulk data\r\n"},
      {"ECHO \"unbalanced\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
      /* answered up to the bad request, in order, then closed */
      {"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n",
       "+PONG\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n"},
      /* ... also behind a request that waits for Redis */
      {"RANK nobody item1\r\n*x\r\n",
       "*1\r\n$5\r\nitem1\r\n-ERR Protocol error: invalid multibulk length\r\n"},
  };
  size_t nbad = sizeof bad / sizeof *bad;
  for (size_t j = 0; j < nbad; j++) {
    int fd = it_raw_connect(e.port);
    it_raw_send(fd, bad[j].send, strlen(bad[j].send));
    size_t len;
    int closed;
    char *got = it_raw_read_until_close(fd, 5000, &len, &closed);
    ck_assert_msg(closed, "connection %zu not closed after a protocol error", j);
    ck_assert_str_eq(got, bad[j].reply);
    free(got);
    close(fd);
    /* The other client never notices. */
    expect_status(it_cmd(a, "PING"), "PONG");
  }
  /* A request over max-request-bytes (1 MB default) is refused the same way. */
  size_t big = (1u << 20) + 4096;
  char *huge = malloc(big + 64);
  ck_assert_ptr_nonnull(huge);
  int hl = snprintf(huge, 64, "*2\r\n$4\r\nECHO\r\n$%zu\r\n", big);
  memset(huge + hl, 'x', big);
  int fd = it_raw_connect(e.port);
  /* the server may close before everything is sent: ignore send errors */
  for (size_t off = 0; off < (size_t)hl + big;) {
    ssize_t n = send(fd, huge + off, (size_t)hl + big - off, MSG_NOSIGNAL);
    if (n <= 0)
      break;
    off += (size_t)n;
  }
  size_t len;
  int closed;
  char *got = it_raw_read_until_close(fd, 5000, &len, &closed);
  ck_assert(closed);
  ck_assert_msg(strncmp(got, "-ERR", 4) == 0, "oversized request got '%s'", got);
  free(got);
  free(huge);
  close(fd);
  expect_status(it_cmd(a, "PING"), "PONG");
  ck_assert_double_ge(it_info_num(a, "stats", "protocol_errors"), errs0 + (double)nbad + 1);
  reco_check(&e, &M1, "user1", "COUNT 10", 0, 10, "after protocol errors");
  it_env_stop(&e);
}
END_TEST

/* ---- faults ------------------------------------------------------------------------- */

START_TEST(redis_down_and_back) {
  it_env_t e;
  const int timeout_ms = 200;
  const int feedback_ms = 300;
  it_opts_t o = {.redis_timeout_ms = timeout_ms,
                 .extra = {"--feedback-timeout-ms", "300", NULL}};
  it_env_start(&e, __func__, &o);
  redisContext *c = e.c;
  /* Slack on top of the deadline for a loaded (or sanitized) machine. */
  const uint64_t slack = 1500;
  ck_assert(is_personalized(c, "user6"));
  reco_check(&e, &M1, "user6", "COUNT 10 WITHREASONS", 0, 10, "Redis up");

  /* Redis hangs (SIGSTOP): the answer comes at the deadline, popular. */
  double deg0 = it_info_num(c, "stats", "degraded_answers");
  kill(e.redis_pid, SIGSTOP);
  uint64_t t0 = it_now_ms();
  freeReplyObject(
      reco_check_q(&e, c, &M1, "user6", "COUNT 10 WITHREASONS", NULL, 0, 10, 1, "Redis hung"));
  uint64_t dt = it_now_ms() - t0;
  ck_assert_msg(dt + 5 >= (uint64_t)timeout_ms && dt <= timeout_ms + slack,
                "answer after %llu ms with redis-timeout-ms %d", (unsigned long long)dt,
                timeout_ms);
  ck_assert_double_eq(it_info_num(c, "stats", "degraded_answers"), deg0 + 1);
  ck_assert_double_eq(it_info_num(c, "redis", "degraded_answers"), deg0 + 1);
  /* Concurrent requests wait in parallel, not one deadline after another. */
  t0 = it_now_ms();
  for (int j = 0; j < 5; j++)
    redisAppendCommand(c, "RECOMMEND user%d COUNT 4", j);
  redisAppendCommand(c, "RANK user6 item1 item2 nosuch");
  for (int j = 0; j < 6; j++) {
    void *v;
    ck_assert_int_eq(redisGetReply(c, &v), REDIS_OK);
    redisReply *r = v;
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, j < 5 ? 4 : 3);
    freeReplyObject(r);
  }
  dt = it_now_ms() - t0;
  ck_assert_msg(dt < 4u * timeout_ms, "6 pipelined requests took %llu ms", (unsigned long long)dt);
  ck_assert_double_eq(it_info_num(c, "stats", "degraded_answers"), deg0 + 7);
  /* FEEDBACK cannot be answered without Redis: it fails at its own
   * deadline, saying the outcome is unknown, and the PING behind it on the
   * same connection is not held longer. */
  t0 = it_now_ms();
  redisAppendCommand(c, "FEEDBACK user6 item3");
  redisAppendCommand(c, "PING after");
  {
    void *v;
    ck_assert_int_eq(redisGetReply(c, &v), REDIS_OK);
    redisReply *r = v;
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    ck_assert_msg(strstr(r->str, "did not answer FEEDBACK within 300 ms") != NULL, "%s", r->str);
    freeReplyObject(r);
    ck_assert_int_eq(redisGetReply(c, &v), REDIS_OK);
    r = v;
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(r->str, "after");
    freeReplyObject(r);
  }
  dt = it_now_ms() - t0;
  ck_assert_msg(dt + 5 >= (uint64_t)feedback_ms && dt <= feedback_ms + slack,
                "FEEDBACK failed after %llu ms with feedback-timeout-ms %d",
                (unsigned long long)dt, feedback_ms);
  /* Clients that leave while their requests wait: nothing to answer, no
   * harm (the requests end at their deadline or with Redis's late reply). */
  for (int j = 0; j < 3; j++) {
    int fd = it_raw_connect(e.port);
    const char *req = "RECOMMEND user1\r\nRANK user2 item1 item2\r\nFEEDBACK user3 item4\r\n";
    it_raw_send(fd, req, strlen(req));
    close(fd);
  }
  it_sleep_ms(50);
  kill(e.redis_pid, SIGCONT);
  t0 = it_now_ms();
  while (!is_personalized(c, "user6")) {
    ck_assert_msg(it_now_ms() - t0 < 5000, "not personalized 5 s after SIGCONT");
    it_sleep_ms(20);
  }
  reco_check(&e, &M1, "user6", "COUNT 10 WITHREASONS", 0, 10, "Redis resumed");

  /* Redis stops: answers keep coming, degraded, within the deadline. */
  expect_status(it_cmd(e.redis, "SAVE"), "OK");
  redisFree(e.redis);
  e.redis = NULL;
  it_redis_stop(&e);
  deg0 = it_info_num(c, "stats", "degraded_answers");
  for (int j = 0; j < 5; j++) {
    t0 = it_now_ms();
    freeReplyObject(reco_check_q(&e, c, &M1, "user6", "COUNT 10 WITHREASONS WITHSCORES", NULL, 0,
                                 10, 1, "Redis down"));
    dt = it_now_ms() - t0;
    ck_assert_msg(dt <= timeout_ms + slack, "answer after %llu ms", (unsigned long long)dt);
  }
  ck_assert_double_eq(it_info_num(c, "stats", "degraded_answers"), deg0 + 5);
  ck_assert_double_eq(it_info_num(c, "redis", "redis_connected"), 0);
  redisReply *r = it_cmd(c, "RANK user6 item1 nosuch item2");
  ck_assert_uint_eq(r->elements, 3);
  ck_assert_str_eq(r->element[2]->str, "nosuch");
  freeReplyObject(r);
  it_expect_error(c, "ERR Redis unavailable", "FEEDBACK user6 item1");
  expect_status(it_cmd(c, "PING"), "PONG");

  /* Redis is back on the same port with the same data: personalized
   * answers return once recd has reconnected. */
  it_redis_start(&e);
  e.redis = it_connect(e.redis_port);
  r = it_cmd(e.redis, "ZCARD recd:hist:user6");
  ck_assert_int_gt(r->integer, 0);
  freeReplyObject(r);
  t0 = it_now_ms();
  while (!is_personalized(c, "user6")) {
    ck_assert_msg(it_now_ms() - t0 < 10000, "not personalized 10 s after Redis restarted");
    it_sleep_ms(20);
  }
  reco_check(&e, &M1, "user6", "COUNT 10 WITHREASONS WITHSCORES", 0, 10, "Redis back");
  ck_assert_double_eq(it_info_num(c, "redis", "redis_connected"), 1);
  ck_assert_double_ge(it_info_num(c, "redis", "redis_connects"), 2);
  r = it_cmd(c, "FEEDBACK user6 item1");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  freeReplyObject(r);
  it_env_stop(&e);
}
END_TEST

/* ---- hot reload --------------------------------------------------------------------- */

static void expect_error_has(redisReply *r, const char *a, const char *b) {
  ck_assert_msg(r->type == REDIS_REPLY_ERROR, "reply type %d '%s', want an error", r->type,
                r->str ? r->str : "");
  ck_assert_msg(strstr(r->str, a) != NULL && (b == NULL || strstr(r->str, b) != NULL),
                "error '%s' lacks '%s' / '%s'", r->str, a, b ? b : "");
  freeReplyObject(r);
}

static void wait_model_version(redisContext *c, const char *v) {
  uint64_t t0 = it_now_ms();
  while (strcmp(it_model_info(c, "version"), v) != 0) {
    ck_assert_msg(it_now_ms() - t0 < 5000, "model version is %s after 5 s, want %s",
                  it_model_info(c, "version"), v);
    it_sleep_ms(10);
  }
}

START_TEST(hot_reload) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  char path[IT_PATH + 64];
  ck_assert_str_eq(it_model_info(c, "version"), "1");
  reco_check(&e, &M1, "user2", "COUNT 10 WITHSCORES", 0, 10, "model 1");

  /* MODEL RELOAD: the file published at the model path. */
  it_install_file(it_data.model2, e.model);
  redisReply *r = it_cmd(c, "MODEL RELOAD");
  ck_assert_msg(r->type == REDIS_REPLY_STATUS && strncmp(r->str, "OK model version 2", 18) == 0,
                "MODEL RELOAD: %s", r->str);
  freeReplyObject(r);
  ck_assert_str_eq(it_model_info(c, "version"), "2");
  ck_assert_str_eq(it_model_info(c, "factors"), "12");
  ck_assert_str_eq(it_model_info(c, "path"), e.model);
  reco_check(&e, &M2, "user2", "COUNT 10 WITHSCORES WITHREASONS", 0, 10, "model 2");
  reco_check(&e, &M2, "nobody", "COUNT 10", 0, 10, "model 2, popular");

  /* SIGHUP. */
  it_install_file(it_data.model1, e.model);
  kill(e.recd_pid, SIGHUP);
  wait_model_version(c, "3");
  ck_assert_str_eq(it_model_info(c, "factors"), "16");
  reco_check(&e, &M1, "user2", "COUNT 10 WITHSCORES WITHREASONS", 0, 10, "model 1 again");
  ck_assert_double_eq(it_info_num(c, "model", "model_version"), 3);
  ck_assert_double_eq(it_info_num(c, "model", "model_reloads_ok"), 2);

  /* MODEL RELOAD <path> inside the models directory. */
  it_fmt(path, sizeof path, "%s/other.bin", e.models_dir);
  it_copy_file(it_data.model2, path);
  r = it_cmd(c, "MODEL RELOAD %s", path);
  ck_assert_msg(r->type == REDIS_REPLY_STATUS, "MODEL RELOAD %s: %s", path, r->str);
  freeReplyObject(r);
  ck_assert_str_eq(it_model_info(c, "version"), "4");
  ck_assert_str_eq(it_model_info(c, "path"), path);
  reco_check(&e, &M2, "user2", "COUNT 10 WITHSCORES", 0, 10, "model 2 by path");

  /* Paths outside the models directory are refused. */
  expect_error_has(it_cmd(c, "MODEL RELOAD /etc/passwd"), "outside the models directory", NULL);
  it_fmt(path, sizeof path, "%s/../../model1.bin", e.models_dir); /* exists */
  expect_error_has(it_cmd(c, "MODEL RELOAD %s", path), "outside the models directory", NULL);
  it_fmt(path, sizeof path, "%s/../model.bin", e.models_dir);
  it_copy_file(it_data.model1, path);
  expect_error_has(it_cmd(c, "MODEL RELOAD %s", path), "outside the models directory", NULL);
  it_fmt(path, sizeof path, "%s/link.bin", e.models_dir);
  ck_assert_int_eq(symlink(it_data.model1, path), 0);
  expect_error_has(it_cmd(c, "MODEL RELOAD %s", path), "outside the models directory", NULL);
  it_fmt(path, sizeof path, "%s/nope.bin", e.models_dir);
  expect_error_has(it_cmd(c, "MODEL RELOAD %s", path), "No such file", NULL);
  expect_error_has(it_cmd(c, "MODEL RELOAD %b", "a\0b", (size_t)3), "NUL", NULL);
  ck_assert_str_eq(it_model_info(c, "version"), "4");

  /* Corrupt files: an error naming the problem; the old model serves. */
  size_t len;
  unsigned char *good = tu_read_file(it_data.model1, &len);
  struct {
    const char *name, *why;
    size_t len;
    int flip;
  } bad[] = {
      {"flipped.bin", "checksum", len, 1},
      {"truncated.bin", "truncated", len / 2, 0},
      {"empty.bin", "", 0, 0},
  };
  for (size_t j = 0; j < 3; j++) {
    it_fmt(path, sizeof path, "%s/%s", e.models_dir, bad[j].name);
    if (bad[j].flip)
      good[len / 2] ^= 0x5a;
    tu_write_file(path, good, bad[j].len);
    if (bad[j].flip)
      good[len / 2] ^= 0x5a;
    expect_error_has(it_cmd(c, "MODEL RELOAD %s", path), "still serving version 4", bad[j].why);
  }
  it_fmt(path, sizeof path, "%s/garbage.bin", e.models_dir);
  tu_write_file(path, "this is not a model file, just some text\n", 41);
  expect_error_has(it_cmd(c, "MODEL RELOAD %s", path), "model not reloaded", NULL);
  ck_assert_str_eq(it_model_info(c, "version"), "4");
  ck_assert_str_eq(it_model_info(c, "factors"), "12");
  reco_check(&e, &M2, "user2", "COUNT 10 WITHSCORES", 0, 10, "after failed reloads");
  double failed = it_info_num(c, "model", "model_reloads_failed");
  ck_assert_double_ge(failed, 4);

  /* A corrupt file at the configured path: SIGHUP and MODEL RELOAD (which
   * load the configured model, not other.bin loaded last) fail, the old
   * model keeps serving. */
  it_fmt(path, sizeof path, "%s/flipped.bin", e.models_dir);
  it_install_file(path, e.model);
  kill(e.recd_pid, SIGHUP);
  uint64_t t0 = it_now_ms();
  while (it_info_num(c, "model", "model_reloads_failed") < failed + 1) {
    ck_assert_msg(it_now_ms() - t0 < 5000, "SIGHUP reload of a corrupt file not reported");
    it_sleep_ms(10);
  }
  expect_error_has(it_cmd(c, "MODEL RELOAD"), "checksum", NULL);
  r = it_cmd(c, "INFO model");
  const char *last = strstr(r->str, "model_last_reload_error:");
  ck_assert_ptr_nonnull(last);
  ck_assert_ptr_nonnull(strstr(last, "checksum mismatch"));
  freeReplyObject(r);
  ck_assert_str_eq(it_model_info(c, "version"), "4");
  reco_check(&e, &M2, "user2", "COUNT 10 WITHSCORES", 0, 10, "after a corrupt reload");
  /* ... until a good file is published again: a plain MODEL RELOAD serves
   * the configured model, not other.bin (issue 19: a MODEL RELOAD <path>
   * used to stick until a restart). */
  it_install_file(it_data.model1, e.model);
  r = it_cmd(c, "MODEL RELOAD");
  ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
  freeReplyObject(r);
  ck_assert_str_eq(it_model_info(c, "version"), "5");
  ck_assert_str_eq(it_model_info(c, "path"), e.model);
  reco_check(&e, &M1, "user2", "COUNT 10 WITHSCORES", 0, 10, "good model again");
  /* A relative path is relative to models-dir, not to recd's cwd. */
  r = it_cmd(c, "MODEL RELOAD other.bin");
  ck_assert_msg(r->type == REDIS_REPLY_STATUS && strstr(r->str, "not pinned") != NULL,
                "MODEL RELOAD other.bin: %s", r->str);
  freeReplyObject(r);
  it_fmt(path, sizeof path, "%s/other.bin", e.models_dir);
  ck_assert_str_eq(it_model_info(c, "path"), path);
  ck_assert_str_eq(it_model_info(c, "factors"), "12");
  kill(e.recd_pid, SIGHUP); /* and SIGHUP serves the configured model again */
  wait_model_version(c, "7");
  ck_assert_str_eq(it_model_info(c, "path"), e.model);
  ck_assert_str_eq(it_model_info(c, "factors"), "16");
  it_expect_error(c, "ERR unknown variant 'a' (variants: default)", "MODEL RELOAD a b");
  it_expect_error(c, "ERR unknown MODEL subcommand", "MODEL RELOAD a b c");
  free(good);
  it_env_stop(&e);
}
END_TEST

START_TEST(reload_under_load) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  enum { REQUESTS = 2000, BATCH = 4 };
  pid_t parent = getpid();
  pid_t child = fork();
  ck_assert_int_ge(child, 0);
  if (child == 0) {
    /* The load: 2000 RECOMMENDs, a few pipelined at a time so that some
     * are always in flight. Exit status = failed requests. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(120);
    struct timeval tv = {10, 0};
    redisContext *lc = redisConnectWithTimeout("127.0.0.1", e.port, tv);
    if (lc == NULL || lc->err)
      _exit(121);
    redisSetTimeout(lc, tv);
    int failed = 0;
    for (int b = 0; b < REQUESTS / BATCH; b++) {
      for (int j = 0; j < BATCH; j++)
        redisAppendCommand(lc, "RECOMMEND user%d COUNT 10", (b * BATCH + j) % 50);
      for (int j = 0; j < BATCH; j++) {
        void *v = NULL;
        if (redisGetReply(lc, &v) != REDIS_OK) {
          fprintf(stderr, "load: connection error %s\n", lc->errstr);
          _exit(122);
        }
        redisReply *r = v;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 10) {
          if (failed++ < 5)
            fprintf(stderr, "load: bad reply type %d %s\n", r->type,
                    r->type == REDIS_REPLY_ERROR ? r->str : "");
        }
        freeReplyObject(r);
      }
    }
    redisFree(lc);
    _exit(failed > 100 ? 100 : failed);
  }
  int reloads = 0, st = 0;
  uint64_t t0 = it_now_ms();
  while (!it_wait_exit(child, 0, &st)) {
    it_install_file(reloads % 2 ? it_data.model1 : it_data.model2, e.model);
    redisReply *r = it_cmd(c, "MODEL RELOAD");
    ck_assert_msg(r->type == REDIS_REPLY_STATUS, "MODEL RELOAD under load: %s", r->str);
    freeReplyObject(r);
    reloads++;
    if (it_now_ms() - t0 > 45000) {
      it_kill_hard(child);
      ck_abort_msg("the load did not finish within 45 s");
    }
  }
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "load: %d failed requests (status %d)",
                WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
  ck_assert_int_ge(reloads, 3);
  char v[32];
  it_fmt(v, sizeof v, "%d", reloads + 1);
  ck_assert_str_eq(it_model_info(c, "version"), v);
  double calls = (double)cmdstat_calls(c, "recommend");
  ck_assert_double_ge(calls, REQUESTS);
  ck_assert_double_eq(it_info_num(c, "model", "model_reloads_failed"), 0);
  it_env_stop(&e);
}
END_TEST

/* ---- shutdown, Unix socket ---------------------------------------------------------- */

START_TEST(sigterm_unix_socket) {
  it_env_t e;
  it_opts_t o = {.unixsocket = 1, .redis_timeout_ms = 1000};
  it_env_start(&e, __func__, &o);
  struct stat sb;
  ck_assert_int_eq(lstat(e.sock, &sb), 0);
  ck_assert(S_ISSOCK(sb.st_mode));
  ck_assert_msg((sb.st_mode & 0777) == 0700, "socket mode %03o", (unsigned)(sb.st_mode & 0777));
  redisContext *u = it_connect_unix(e.sock);
  expect_status(it_cmd(u, "PING"), "PONG");
  freeReplyObject(reco_check_q(&e, u, &M1, "user1", "COUNT 5 WITHSCORES WITHREASONS", NULL, 0, 5, 0,
                               "Unix socket"));
  ck_assert_double_eq(it_info_num(u, "clients", "connected_clients"), 2);

  /* A request in flight (Redis hung, so it waits for its 1 s deadline)
   * when SIGTERM arrives is still answered. */
  kill(e.redis_pid, SIGSTOP);
  redisContext *t = it_connect(e.port);
  double before = it_info_num(u, "stats", "total_commands_processed");
  redisAppendCommand(t, "RECOMMEND user1 COUNT 7");
  int done = 0;
  while (!done)
    ck_assert_int_eq(redisBufferWrite(t, &done), REDIS_OK);
  /* Wait until recd has read it (each INFO counts itself too). */
  uint64_t t0 = it_now_ms();
  for (int polls = 1;; polls++) {
    double now = it_info_num(u, "stats", "total_commands_processed");
    if (now - before - polls >= 1)
      break;
    ck_assert_msg(it_now_ms() - t0 < 5000, "recd did not read the request");
    it_sleep_ms(2);
  }
  kill(e.recd_pid, SIGTERM);
  void *v = NULL;
  ck_assert_int_eq(redisGetReply(t, &v), REDIS_OK);
  redisReply *r = v;
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(r->elements, 7);
  freeReplyObject(r);
  /* No new connections once stopping. */
  struct timeval tv = {1, 0};
  redisContext *late = redisConnectWithTimeout("127.0.0.1", e.port, tv);
  int refused = late == NULL || late->err != 0;
  if (!refused) { /* accepted by the kernel backlog race: must not be served */
    redisSetTimeout(late, tv);
    redisReply *lr = redisCommand(late, "PING");
    refused = lr == NULL || lr->type == REDIS_REPLY_ERROR;
    if (lr)
      freeReplyObject(lr);
  }
  if (late)
    redisFree(late);
  ck_assert_msg(refused, "a new connection was served after SIGTERM");
  int st;
  ck_assert_msg(it_wait_exit(e.recd_pid, 10000, &st), "recd still running 10 s after SIGTERM");
  e.recd_pid = 0;
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "recd exit status %d",
                WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  ck_assert_msg(lstat(e.sock, &sb) != 0 && errno == ENOENT, "unix socket left behind");
  it_check_clean_exit(&e);
  kill(e.redis_pid, SIGCONT);
  redisFree(t);
  redisFree(u);
  it_env_stop(&e);
}
END_TEST

START_TEST(sigint_and_startup_errors) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  /* SIGINT stops the daemon like SIGTERM, also while Redis is down and
   * recd is between reconnection attempts. */
  it_redis_stop(&e);
  uint64_t t0 = it_now_ms();
  while (it_info_num(e.c, "redis", "redis_connected") != 0) {
    ck_assert_msg(it_now_ms() - t0 < 5000, "recd did not notice Redis stopped");
    it_sleep_ms(10);
  }
  it_sleep_ms(250); /* a reconnection attempt or two */
  kill(e.recd_pid, SIGINT);
  int st;
  ck_assert(it_wait_exit(e.recd_pid, 10000, &st));
  e.recd_pid = 0;
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  it_check_clean_exit(&e);
  /* A missing or corrupt model is a clear start-up error. */
  char bin[IT_PATH], log[IT_PATH + 16], port[16], path[IT_PATH + 16];
  it_fmt(bin, sizeof bin, "%s", it_bin("recd"));
  it_fmt(log, sizeof log, "%s/startup.log", e.dir);
  it_fmt(port, sizeof port, "%d", it_free_port());
  it_fmt(path, sizeof path, "%s/missing.bin", e.dir);
  char *argv[] = {bin, "--model", path, "--port", port, NULL};
  ck_assert_int_ne(it_run(argv, log, 10000), 0);
  size_t len;
  char *text = tu_read_file(log, &len);
  text = realloc(text, len + 1);
  text[len] = '\0';
  ck_assert_msg(strstr(text, "missing.bin") != NULL, "start-up error lacks the path: %s", text);
  free(text);
  it_env_stop(&e);
}
END_TEST

/* ---- configured limits and options ---------------------------------------------- */

static void wait_clients(redisContext *c, double n) {
  uint64_t t0 = it_now_ms();
  while (it_info_num(c, "clients", "connected_clients") != n) {
    ck_assert_msg(it_now_ms() - t0 < 5000, "connected_clients never became %g", n);
    it_sleep_ms(10);
  }
}

START_TEST(limits_and_options) {
  it_env_t e;
  it_opts_t o = {.extra = {"--maxclients", "4", "--max-count", "50", "--history-limit", "3",
                           "--exclude-history", "no", "--max-request-args", "16",
                           "--client-output-buffer-limit", "64kb", NULL}};
  it_env_start(&e, __func__, &o);
  redisContext *c = e.c;

  /* history-limit 3: the strongest three past items are folded in (ties:
   * smaller item index); exclude-history no: past items may come back. */
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:heavy 5 item0 4 item6 4 item12 1 item18 "
                                  "1 item1 3 item7 2 item2"));
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:ties 2 item3 2 item9 2 item15 2 item21 "
                                  "2 item4"));
  ref_query_t q = {.history_limit = 3, .keep_history = 1};
  const char *users[] = {"user0", "user1", "user2", "user3", "heavy", "ties"};
  int history_shown = 0;
  for (size_t j = 0; j < 6; j++) {
    redisReply *r = reco_check_q(&e, c, &M1, users[j], "COUNT 50 WITHSCORES WITHREASONS", &q, 0, 50,
                                 0, "history-limit 3, exclude-history no");
    redisReply *h = it_cmd(e.redis, "ZRANGE recd:hist:%s 0 -1", users[j]);
    for (size_t t = 0; t < h->elements; t++)
      history_shown += reply_contains(r, 3, h->element[t]->str);
    freeReplyObject(h);
    freeReplyObject(r);
  }
  ck_assert_int_gt(history_shown, 0);

  /* max-count 50. */
  it_expect_error(c, "ERR COUNT must be an integer in [0, 50]", "RECOMMEND user1 COUNT 51");
  it_expect_error(c, "ERR OFFSET + COUNT must be at most max-count (50)",
                  "RECOMMEND user1 OFFSET 45 COUNT 10");
  it_expect_error(c, "ERR COUNT must be an integer in [0, 50]", "SIMILAR item1 COUNT 51");
  redisReply *r = it_cmd(c, "RECOMMEND user1 OFFSET 40 COUNT 10");
  ck_assert_uint_eq(r->elements, 10);
  freeReplyObject(r);

  /* max-request-args 16: a longer command is a protocol error for that
   * client alone. */
  char req[1024] = "*22\r\n$4\r\nRANK\r\n$5\r\nuser1\r\n";
  for (int j = 0; j < 20; j++) {
    char one[32];
    it_fmt(one, sizeof one, "$%d\r\nitem%d\r\n", j < 10 ? 5 : 6, j);
    strcat(req, one);
  }
  const char *inl = "RANK user1 i1 i2 i3 i4 i5 i6 i7 i8 i9 i10 i11 i12 i13 i14 i15 i16\r\n";
  const char *want[] = {"-ERR Protocol error: invalid multibulk length\r\n",
                        "-ERR Protocol error: too many arguments in inline request\r\n"};
  const char *reqs[] = {req, inl};
  for (int j = 0; j < 2; j++) {
    int fd = it_raw_connect(e.port);
    it_raw_send(fd, reqs[j], strlen(reqs[j]));
    size_t len;
    int closed;
    char *got = it_raw_read_until_close(fd, 5000, &len, &closed);
    ck_assert(closed);
    ck_assert_str_eq(got, want[j]);
    free(got);
    close(fd);
  }
  r = it_cmd(c, "RANK user1 item1 item2 item3 item4 item5 item6 item7 item8 item9 item10 "
                "item11 item12 item13 item14");
  ck_assert_uint_eq(r->elements, 14); /* 16 arguments: accepted */
  freeReplyObject(r);

  /* client-output-buffer-limit 64kb: a client that sends and never reads is
   * cut off once its unsent replies pass the limit; others carry on. */
  double cut0 = it_info_num(c, "stats", "output_limit_disconnections");
  const size_t blen = 500000;
  char *echo = malloc(blen + 64);
  ck_assert_ptr_nonnull(echo);
  int hl = snprintf(echo, 64, "*2\r\n$4\r\nECHO\r\n$%zu\r\n", blen);
  memset(echo + hl, 'x', blen);
  memcpy(echo + hl + blen, "\r\n", 2);
  int efd = it_raw_connect(e.port);
  struct timeval stv = {2, 0}; /* a send the server no longer reads fails */
  setsockopt(efd, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof stv);
  uint64_t t0 = it_now_ms();
  for (int j = 0; j < 60; j++) {
    ssize_t sent = 0;
    while ((size_t)sent < (size_t)hl + blen + 2) {
      ssize_t n = send(efd, echo + sent, (size_t)hl + blen + 2 - (size_t)sent, MSG_NOSIGNAL);
      if (n <= 0)
        break;
      sent += n;
    }
    if ((size_t)sent < (size_t)hl + blen + 2 ||
        it_info_num(c, "stats", "output_limit_disconnections") > cut0)
      break;
  }
  while (it_info_num(c, "stats", "output_limit_disconnections") <= cut0) {
    ck_assert_msg(it_now_ms() - t0 < 10000, "a client that never reads was not cut off");
    it_sleep_ms(10);
  }
  close(efd);
  free(echo);
  expect_status(it_cmd(c, "PING"), "PONG");

  /* maxclients 4: the fifth connection is told so and closed. */
  wait_clients(c, 1);
  redisContext *more[3];
  for (int j = 0; j < 3; j++) {
    more[j] = it_connect(e.port);
    expect_status(it_cmd(more[j], "PING"), "PONG");
  }
  int fd = it_raw_connect(e.port);
  size_t len;
  int closed;
  char *got = it_raw_read_until_close(fd, 5000, &len, &closed);
  ck_assert(closed);
  ck_assert_str_eq(got, "-ERR max number of clients reached\r\n");
  free(got);
  close(fd);
  ck_assert_double_eq(it_info_num(c, "clients", "rejected_connections"), 1);
  for (int j = 0; j < 3; j++)
    expect_status(it_cmd(more[j], "PING"), "PONG");
  redisFree(more[2]);
  wait_clients(c, 3);
  more[2] = it_connect(e.port);
  expect_status(it_cmd(more[2], "PING"), "PONG");
  for (int j = 0; j < 3; j++)
    redisFree(more[j]);
  it_env_stop(&e);
}
END_TEST

/* ---- a catalogue scored on the thread pool ------------------------------------------ */

/* split: NULL for the defaults (below scan-split-items a batch runs on one
 * worker), or a scan-split-items value that splits every batch's int8 scan
 * over both workers; prefilter: whether one customer's scan goes through
 * the 4-bit prefilter (scan-prefilter-bytes 0; by default it would not at
 * this size): the answers must not change. */
static void large_catalogue_run(const char *name, const char *split, int prefilter) {
  it_env_t e;
  it_opts_t o = {.model = it_data.synth, .no_import = 1,
                 .extra = {"--scan-prefilter-bytes", prefilter ? "0" : "33554432",
                           split ? "--scan-split-items" : NULL, split, NULL}};
  it_env_start(&e, name, &o);
  redisContext *c = e.c;
  ck_assert_str_eq(it_model_info(c, "items"), "60000");
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:big 3 i5 1 i77 2 i12345 1 i59999 4 i300"));
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:small 1 i42"));
  freeReplyObject(reco_check_q(&e, c, &M3, "big", "COUNT 20 WITHSCORES WITHREASONS", NULL, 0, 20, 0,
                               "large catalogue"));
  freeReplyObject(reco_check_q(&e, c, &M3, "small", "COUNT 10 OFFSET 990 WITHSCORES", NULL, 990, 10,
                               0, "large catalogue, deep page"));
  freeReplyObject(reco_check_q(&e, c, &M3, "nobody", "COUNT 10 WITHSCORES", NULL, 0, 10, 0,
                               "large catalogue, popular"));
  const char *cats[] = {"c7", "c93"};
  ref_query_t q = {.cats = cats, .n_cats = 2};
  freeReplyObject(reco_check_q(&e, c, &M3, "big", "COUNT 10 CATEGORY c7 CATEGORY c93", &q, 0, 10, 0,
                               "large catalogue, CATEGORY"));
  freeReplyObject(it_cmd(e.redis, "HSET recd:pref:big cat:c3 1 cat:c4 -1"));
  freeReplyObject(reco_check_q(&e, c, &M3, "big", "COUNT 30 WITHSCORES", NULL, 0, 30, 0,
                               "large catalogue, preferences"));
  similar_check(&e, &M3, "i5", 10);
  redisReply *r = it_cmd(c, "RANK big i1 nosuch i2 i5");
  ck_assert_uint_eq(r->elements, 4);
  ck_assert_str_eq(r->element[3]->str, "nosuch");
  freeReplyObject(r);

  /* Offloaded requests complete in any order on the pool; the replies
   * must still leave in request order, also across a reload. */
  const int users = 8;
  redisReply *want[8];
  for (int u = 0; u < users; u++) {
    freeReplyObject(
        it_cmd(e.redis, "ZADD recd:hist:p%d 1 i%d 2 i%d", u, u * 7000 + 1, u * 3000 + 2));
    want[u] = it_cmd(c, "RECOMMEND p%d COUNT 5", u);
    ck_assert_uint_eq(want[u]->elements, 5);
  }
  for (int j = 0; j < 300; j++) {
    if (j == 150)
      redisAppendCommand(c, "MODEL RELOAD");
    else if (j % 3 == 2)
      redisAppendCommand(c, "PING %d", j);
    else
      redisAppendCommand(c, "RECOMMEND p%d COUNT 5", j % users);
  }
  for (int j = 0; j < 300; j++) {
    void *v;
    ck_assert_int_eq(redisGetReply(c, &v), REDIS_OK);
    redisReply *g = v;
    if (j == 150) {
      ck_assert_msg(g->type == REDIS_REPLY_STATUS, "MODEL RELOAD: %s", g->str);
    } else if (j % 3 == 2) {
      ck_assert_int_eq(atoi(g->str), j);
    } else {
      ck_assert_uint_eq(g->elements, 5);
      for (size_t t = 0; t < 5; t++)
        ck_assert_str_eq(g->element[t]->str, want[j % users]->element[t]->str);
    }
    freeReplyObject(g);
  }
  for (int u = 0; u < users; u++)
    freeReplyObject(want[u]);
  ck_assert_str_eq(it_model_info(c, "version"), "2");
  /* A client that leaves with work queued on the pool. */
  int fd = it_raw_connect(e.port);
  for (int j = 0; j < 50; j++)
    it_raw_send(fd, "RECOMMEND big COUNT 5\r\n", 23);
  close(fd);
  expect_status(it_cmd(c, "PING"), "PONG");
  freeReplyObject(
      reco_check_q(&e, c, &M3, "big", "COUNT 20", NULL, 0, 20, 0, "after a client left"));
  /* The int8 path ran, split or not as configured, on an AVX2 machine
   * unless RECD_QSCORE_ISA=scalar (inherited by recd) asked for the
   * portable kernel: then the float path runs and nothing is split. */
  __builtin_cpu_init();
  const char *isa = getenv("RECD_QSCORE_ISA");
  const int int8 = __builtin_cpu_supports("avx2") && !(isa && strcmp(isa, "scalar") == 0);
  double splits = it_info_num(c, "stats", "scoring_split_batches");
  if (int8 && split)
    ck_assert_msg(splits > 0, "no split batch");
  else
    ck_assert_msg(splits == 0, "%g split batches (int8 path %d, split %s)", splits, int8,
                  split ? split : "default");
  ck_assert_str_eq(it_info_str(c, "stats", "scoring_prefilter"),
                   int8 && prefilter ? "int4" : "none");
  /* the loop thread helps only split batches, and scans a chunk at least
   * in each it counts (whether it gets to one is the scheduler's call) */
  const double helped = it_info_num(c, "stats", "scoring_split_loop_batches");
  ck_assert_msg(helped <= splits, "%g helped of %g split batches", helped, splits);
  ck_assert(it_info_num(c, "stats", "scoring_split_loop_chunks") >= helped);
  it_env_stop(&e);
}

START_TEST(large_catalogue) {
  large_catalogue_run(__func__, NULL, 0);
}
END_TEST

START_TEST(large_catalogue_split) {
  large_catalogue_run(__func__, "0", 0);
}
END_TEST

START_TEST(large_catalogue_prefilter) {
  large_catalogue_run(__func__, NULL, 1);
}
END_TEST

START_TEST(large_catalogue_prefilter_split) {
  large_catalogue_run(__func__, "0", 1);
}
END_TEST

/* ---- bad data in Redis ---------------------------------------------------------------- */

START_TEST(bad_data_in_redis) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  double anomalies = it_info_num(c, "redis", "redis_anomalies");
  /* A history of the wrong type: skipped, counted, popular answer. */
  freeReplyObject(it_cmd(e.redis, "SET recd:hist:strhist not-a-zset"));
  ck_assert(!is_personalized(c, "strhist"));
  freeReplyObject(
      reco_check_q(&e, c, &M1, "strhist", "COUNT 10", NULL, 0, 10, 1, "history of the wrong type"));
  ck_assert_double_gt(it_info_num(c, "redis", "redis_anomalies"), anomalies);
  redisReply *r = it_cmd(c, "FEEDBACK strhist item1");
  ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
  ck_assert_msg(strstr(r->str, "WRONGTYPE") != NULL, "FEEDBACK on a string: %s", r->str);
  freeReplyObject(r);
  /* Weights that are not > 0 are skipped: nothing left to personalize. */
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:neg -1 item1 0 item2"));
  ck_assert(!is_personalized(c, "neg"));
  freeReplyObject(reco_check_q(&e, c, &M1, "neg", "COUNT 10", NULL, 0, 10, 1, "bad weights"));
  /* Preferences of the wrong type: the history still personalizes. */
  freeReplyObject(it_cmd(e.redis, "SET recd:pref:user4 not-a-hash"));
  ck_assert(is_personalized(c, "user4"));
  freeReplyObject(it_cmd(e.redis, "DEL recd:pref:user4"));
  reco_check(&e, &M1, "user4", "COUNT 10 WITHREASONS", 0, 10, "after bad preferences");
  /* An unavailable set of the wrong type keeps the previous copy. */
  freeReplyObject(it_cmd(e.redis, "SADD recd:unavailable item0"));
  uint64_t t0 = it_now_ms();
  while (it_info_num(c, "model", "unavailable_items") != 1) {
    ck_assert_msg(it_now_ms() - t0 < 5000, "unavailable set not read");
    it_sleep_ms(10);
  }
  freeReplyObject(it_cmd(e.redis, "DEL recd:unavailable"));
  freeReplyObject(it_cmd(e.redis, "SET recd:unavailable oops"));
  it_sleep_ms(300); /* three refresh periods */
  ck_assert_double_eq(it_info_num(c, "model", "unavailable_items"), 1);
  expect_status(it_cmd(c, "PING"), "PONG");
  it_env_stop(&e);
}
END_TEST

/* ---- a popularity fallback (model format 3) ------------------------------ */

/* When popularity beats ALS the trainer writes a k = 1 model whose factor
 * is that popularity: the unchanged serving code answers a customer with
 * that order minus their history, and MODEL INFO and INFO say what is
 * served. */
START_TEST(popularity_fallback) {
  enum { N = 30 };
  char ids[N][8], path[IT_PATH], err[RECD_ERRLEN];
  const char *idp[N];
  uint32_t lens[N];
  float Y[N], pop[N];
  for (int i = 0; i < N; i++) {
    lens[i] = (uint32_t)snprintf(ids[i], sizeof ids[i], "p%d", i);
    idp[i] = ids[i];
    Y[i] = (float)((i * 7) % N + 1); /* recent popularity: a permutation of 1..N */
    pop[i] = (float)i;               /* all-time popularity: another order */
  }
  model_spec_t spec = {
    .n_items = N,
    .params = {.factors = 1, .conf_mode = PARAMS_CONF_LINEAR, .lambda = 0.1f, .alpha = 1},
    .meta = {.created_at = 1767225600, .score_scale = 1, .holdout_fraction = 0.2,
             .has_recent = 1, .recent_popularity = {.ndcg = 0.2},
             .serves = MODEL_SERVES_RECENT_POPULARITY, .eval_split = MODEL_SPLIT_TIME_CUT,
             .half_life_days = 14, .tuned_at = 1767139200},
    .Y = Y, .ldy = 1, .popularity = pop, .item_ids = idp, .item_id_lens = lens};
  it_fmt(path, sizeof path, "%s/fallback-%d.bin", it_data.dir, (int)getpid());
  ck_assert_msg(model_write(&spec, path, err) == 0, "%s", err);
  it_opts_t o = {.model = path, .no_import = 1};
  it_env_t e;
  it_env_start(&e, __func__, &o);
  redisContext *c = e.c;
  ck_assert_str_eq(it_model_info(c, "serves"), "recent-popularity");
  ck_assert_str_eq(it_model_info(c, "eval_split"), "time-cut");
  ck_assert_str_eq(it_model_info(c, "half_life_days"), "14");
  ck_assert_str_eq(it_model_info(c, "tuned_at"), "1767139200");
  ck_assert_str_eq(it_model_info(c, "factors"), "1");
  redisReply *r = it_cmd(c, "INFO model");
  ck_assert_ptr_nonnull(strstr(r->str, "\r\nmodel_serves:recent-popularity\r\n"));
  ck_assert_ptr_nonnull(strstr(r->str, "\r\nmodel_eval_split:time-cut\r\n"));
  ck_assert_ptr_nonnull(strstr(r->str, "\r\nmodel_half_life_days:14\r\n"));
  ck_assert_ptr_nonnull(strstr(r->str, "\r\nmodel_tuned_at:1767139200\r\n"));
  ck_assert_ptr_nonnull(strstr(r->str, ",serves=recent-popularity\r\n"));
  freeReplyObject(r);

  /* The items by recent popularity, best first; the customer holds the
   * best one and two others. */
  int order[N];
  for (int i = 0; i < N; i++)
    order[N - (int)Y[i]] = i; /* Y is 1..N */
  const int held[3] = {order[0], order[4], order[N - 1]};
  r = it_cmd(c, "RECOMMEND u1 COUNT 10 HISTORY 3 p%d p%d p%d", held[0], held[1], held[2]);
  size_t n;
  char **got = reply_ids(r, 1, &n);
  freeReplyObject(r);
  ck_assert_uint_eq(n, 10);
  size_t j = 0;
  for (int at = 0; at < N && j < n; at++) {
    const int i = order[at];
    if (i == held[0] || i == held[1] || i == held[2])
      continue;
    char want[8];
    snprintf(want, sizeof want, "p%d", i);
    ck_assert_msg(strcmp(got[j], want) == 0, "answer %zu is %s, expected %s", j, got[j], want);
    j++;
  }
  ids_free(got, n);
  it_env_stop(&e);
  unlink(path);
}
END_TEST

static Suite *daemon_suite(void) {
  Suite *s = suite_create("daemon");
  IT_ADD(s, small_commands, 60);
  IT_ADD(s, auth, 60);
  IT_ADD(s, recommend_vs_bruteforce, 60);
  IT_ADD(s, recommend_paging, 60);
  IT_ADD(s, recommend_filters, 60);
  IT_ADD(s, recommend_withreasons, 60);
  IT_ADD(s, recommend_popular, 60);
  IT_ADD(s, opt_out_is_anonymous, 60);
  IT_ADD(s, recommend_preferences, 60);
  IT_ADD(s, recommend_unavailable, 60);
  IT_ADD(s, rank, 60);
  IT_ADD(s, similar, 60);
  IT_ADD(s, freshness, 60);
  IT_ADD(s, pipeline_1000, 60);
  IT_ADD(s, byte_by_byte, 60);
  IT_ADD(s, inline_commands, 60);
  IT_ADD(s, protocol_errors, 60);
  IT_ADD(s, redis_down_and_back, 60);
  IT_ADD(s, hot_reload, 60);
  IT_ADD(s, reload_under_load, 90);
  IT_ADD(s, sigterm_unix_socket, 60);
  IT_ADD(s, sigint_and_startup_errors, 60);
  IT_ADD(s, limits_and_options, 60);
  IT_ADD(s, large_catalogue, 60);
  IT_ADD(s, large_catalogue_split, 60);
  IT_ADD(s, large_catalogue_prefilter, 60);
  IT_ADD(s, large_catalogue_prefilter_split, 60);
  IT_ADD(s, bad_data_in_redis, 60);
  IT_ADD(s, popularity_fallback, 60);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  ref_model_load(&M1, it_data.model1);
  ref_model_load(&M2, it_data.model2);
  ref_model_load(&M3, it_data.synth);
  int failed = it_run_suite(daemon_suite());
  ref_model_free(&M1);
  ref_model_free(&M2);
  ref_model_free(&M3);
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
