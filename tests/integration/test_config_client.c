/* test_config_client.c - the operator commands of issue 17 against the real
 * daemon: CONFIG GET (glob patterns, secrets hidden, Redis's save and
 * appendonly for redis-benchmark), CONFIG SET (the change is seen by the
 * next requests; refusals name the key; all pairs or none), CONFIG
 * RESETSTAT, and CLIENT ID / LIST / INFO / SETNAME / GETNAME / SETINFO /
 * KILL (by id, addr, laddr, user, old form, oneself), including a client
 * killed with requests in flight on the worker threads, which must get
 * every reply it is owed and then be closed cleanly (under ASan: no use
 * after free).
 *
 *   config_get            patterns, dedup, secrets, unknown keys
 *   config_set            effects, refusals, atomicity, requirepass, loglevel
 *   config_set_timeout    a run-time timeout closes idle clients
 *   client_names          ID, SETNAME, GETNAME, SETINFO, LIST, INFO
 *   client_kill           every filter, counts, errors, killing oneself
 *   client_kill_inflight  pipelined SIMILARs on the 60000-item model
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

static void expect_status(redisReply *r, const char *want) {
  ck_assert_msg(r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0,
                "reply type %d '%s', want +%s", r->type, r->str ? r->str : "", want);
  freeReplyObject(r);
}

static long long expect_int(redisReply *r) {
  ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "reply type %d '%s', want an integer", r->type,
                r->str ? r->str : "");
  long long v = r->integer;
  freeReplyObject(r);
  return v;
}

/* The value of `key` in a CONFIG GET reply (static buffer), NULL when the
 * key is not in it; fails on a malformed reply. */
static const char *pair_value(const redisReply *r, const char *key) {
  static char buf[4096];
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_int_eq(r->elements % 2, 0);
  for (size_t j = 0; j + 1 < r->elements; j += 2) {
    ck_assert_int_eq(r->element[j]->type, REDIS_REPLY_STRING);
    ck_assert_int_eq(r->element[j + 1]->type, REDIS_REPLY_STRING);
    if (strcmp(r->element[j]->str, key) == 0) {
      snprintf(buf, sizeof buf, "%s", r->element[j + 1]->str);
      return buf;
    }
  }
  return NULL;
}

/* CONFIG GET key: its value (static buffer); fails when it is missing. */
static const char *cfg_get(redisContext *c, const char *key) {
  static char buf[4096];
  redisReply *r = it_cmd(c, "CONFIG GET %s", key);
  const char *v = pair_value(r, key);
  ck_assert_msg(v != NULL, "CONFIG GET %s: no such key in the reply", key);
  snprintf(buf, sizeof buf, "%s", v);
  freeReplyObject(r);
  return buf;
}

/* The keys of CONFIG GET <pattern>, as "k1,k2,..." in reply order (static
 * buffer). */
static const char *config_keys(redisContext *c, const char *pattern) {
  static char buf[8192];
  redisReply *r = it_cmd(c, "CONFIG GET %s", pattern);
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_int_eq(r->elements % 2, 0);
  size_t o = 0;
  buf[0] = '\0';
  for (size_t j = 0; j + 1 < r->elements; j += 2)
    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", j ? "," : "", r->element[j]->str);
  freeReplyObject(r);
  return buf;
}

/* A field of a CLIENT LIST / INFO line ("name" -> the text after "name=" up
 * to the blank), in a static buffer; NULL when absent. */
static const char *line_field(const char *line, const char *field) {
  static char buf[256];
  char key[64];
  it_fmt(key, sizeof key, " %s=", field);
  const char *p = strncmp(line, key + 1, strlen(key + 1)) == 0 ? line : strstr(line, key);
  if (p == NULL)
    return NULL;
  p = strchr(p, '=') + 1;
  size_t n = strcspn(p, " \n");
  ck_assert_uint_lt(n, sizeof buf);
  memcpy(buf, p, n);
  buf[n] = '\0';
  return buf;
}

/* The CLIENT LIST line of client `id` (malloc'ed), NULL when not listed. */
static char *list_line(redisContext *c, long long id) {
  redisReply *r = it_cmd(c, "CLIENT LIST");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  ck_assert_msg(r->len > 0 && r->str[r->len - 1] == '\n', "CLIENT LIST does not end in \\n");
  char want[32];
  it_fmt(want, sizeof want, "id=%lld ", id);
  char *out = NULL;
  for (char *line = r->str; *line != '\0';) {
    char *nl = strchr(line, '\n');
    ck_assert_ptr_nonnull(nl);
    if (strncmp(line, want, strlen(want)) == 0) {
      out = strndup(line, (size_t)(nl - line + 1));
      break;
    }
    line = nl + 1;
  }
  freeReplyObject(r);
  return out;
}

static int list_count(redisContext *c) {
  redisReply *r = it_cmd(c, "CLIENT LIST");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  int n = 0;
  for (size_t i = 0; i < r->len; i++)
    n += r->str[i] == '\n';
  freeReplyObject(r);
  return n;
}

/* Whether the server has closed c: a command then fails (EOF or reset). */
static int is_closed(redisContext *c) {
  redisReply *r = redisCommand(c, "PING");
  if (r == NULL)
    return 1;
  freeReplyObject(r);
  return 0;
}

/* ---- CONFIG GET ------------------------------------------------------------ */

START_TEST(config_get) {
  it_env_t e;
  it_opts_t o = {.requirepass = "Pa55word-not-shown"};
  it_env_start(&e, __func__, &o);
  redisContext *c = it_connect(e.port);
  expect_status(it_cmd(c, "AUTH %s", "Pa55word-not-shown"), "OK");

  /* Everything: pairs, each key once, the secrets empty, the password
   * nowhere in the reply. */
  redisReply *r = it_cmd(c, "CONFIG GET *");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_int_ge(r->elements, 2 * 40);
  for (size_t j = 0; j < r->elements; j++) {
    ck_assert_ptr_null(strstr(r->element[j]->str, "Pa55word"));
    for (size_t k = 0; k < j && j % 2 == 0; k += 2)
      ck_assert_str_ne(r->element[j]->str, r->element[k]->str);
  }
  char port[16];
  it_fmt(port, sizeof port, "%d", e.port);
  ck_assert_str_eq(pair_value(r, "port"), port);
  ck_assert_str_eq(pair_value(r, "requirepass"), "");
  ck_assert_str_eq(pair_value(r, "redis-password"), "");
  ck_assert_str_eq(pair_value(r, "max-count"), "1000");
  ck_assert_str_eq(pair_value(r, "exclude-history"), "yes");
  ck_assert_str_eq(pair_value(r, "loglevel"), "verbose"); /* the helpers' */
  ck_assert_str_eq(pair_value(r, "client-output-buffer-limit"), "33554432");
  ck_assert_str_eq(pair_value(r, "feedback-weight-cart"), "0.5");
  ck_assert_str_eq(pair_value(r, "key-prefix"), "recd:");
  /* Redis's own keys only to their exact names */
  ck_assert_ptr_null(pair_value(r, "save"));
  ck_assert_ptr_null(pair_value(r, "appendonly"));
  freeReplyObject(r);

  /* Globs: * ? [set] [^set] [a-z] \x, case-insensitive, several patterns
   * with a key matched twice listed once. */
  ck_assert_str_eq(config_keys(c, "max-count"), "max-count");
  ck_assert_str_eq(config_keys(c, "MAX-COUNT"), "max-count");
  ck_assert_str_eq(config_keys(c, "max-coun?"), "max-count");
  ck_assert_str_eq(config_keys(c, "max-[c]ount"), "max-count");
  ck_assert_str_eq(config_keys(c, "max-[^r]ount"), "max-count");
  ck_assert_str_eq(config_keys(c, "max-[a-d]ount"), "max-count");
  ck_assert_str_eq(config_keys(c, "max\\-count"), "max-count");
  ck_assert_str_eq(config_keys(c, "feedback-weight-c*"), "feedback-weight-cart,feedback-weight-click");
  ck_assert_str_eq(config_keys(c, "*timeout*"),
                   "timeout,redis-timeout-ms,feedback-timeout-ms");
  ck_assert_str_eq(config_keys(c, "[^a-z]*"), "");
  ck_assert_str_eq(config_keys(c, "nosuch"), "");
  ck_assert_str_eq(config_keys(c, "max-coun"), "");
  r = it_cmd(c, "CONFIG GET port p*rt max-count");
  ck_assert_int_eq(r->elements, 4);
  ck_assert_str_eq(pair_value(r, "port"), port);
  ck_assert_str_eq(pair_value(r, "max-count"), "1000");
  freeReplyObject(r);
  ck_assert_str_eq(config_keys(c, "*pass*"),
                   "requirepass,redis-password,redis-sentinel-password");
  ck_assert_str_eq(cfg_get(c, "requirepass"), "");
  /* what redis-benchmark asks: one pair each (an empty array makes it
   * warn "Could not fetch server CONFIG") */
  r = it_cmd(c, "CONFIG GET save");
  ck_assert_int_eq(r->elements, 2);
  ck_assert_str_eq(pair_value(r, "save"), "");
  freeReplyObject(r);
  ck_assert_str_eq(cfg_get(c, "appendonly"), "no");
  ck_assert_str_eq(config_keys(c, "sav*"), "");
  /* errors */
  it_expect_error(c, "ERR wrong number of arguments for 'config|get' command", "CONFIG GET");
  it_expect_error(c, "ERR wrong number of arguments for 'config' command", "CONFIG");
  it_expect_error(c, "ERR unknown subcommand or wrong number of arguments for 'NOPE'",
                  "CONFIG NOPE");
  it_expect_error(c, "ERR CONFIG REWRITE is not supported", "CONFIG REWRITE");
  r = it_cmd(c, "CONFIG HELP");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_int_ge(r->elements, 5);
  freeReplyObject(r);
  /* before AUTH: refused like every command */
  redisContext *anon = it_connect(e.port);
  it_expect_error(anon, "NOAUTH", "CONFIG GET *");
  it_expect_error(anon, "NOAUTH", "CLIENT LIST");
  redisFree(anon);
  redisFree(c);
  it_env_stop(&e);
}
END_TEST

/* ---- CONFIG SET ------------------------------------------------------------ */

START_TEST(config_set) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;

  /* max-count: the next request is judged by the new value. */
  redisReply *r = it_cmd(c, "RECOMMEND user1 COUNT 20");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_int_eq(r->elements, 20);
  freeReplyObject(r);
  expect_status(it_cmd(c, "CONFIG SET max-count 5"), "OK");
  ck_assert_str_eq(cfg_get(c, "max-count"), "5");
  it_expect_error(c, "ERR COUNT must be an integer in [0, 5], got '20'", "RECOMMEND user1 COUNT 20");
  r = it_cmd(c, "RECOMMEND user1 COUNT 5");
  ck_assert_int_eq(r->elements, 5);
  freeReplyObject(r);
  /* other connections see it too */
  redisContext *c2 = it_connect(e.port);
  it_expect_error(c2, "ERR COUNT must be an integer in [0, 5]", "SIMILAR item1 COUNT 6");
  redisFree(c2);

  /* Several keys at once, names case-insensitive, values as in recd.conf. */
  expect_status(it_cmd(c, "CONFIG SET MAX-COUNT 7 exclude-history no history-limit 50 "
                          "feedback-weight-cart 2.5 max-per-category 2 one-per-group yes"),
                "OK");
  ck_assert_str_eq(cfg_get(c, "max-count"), "7");
  ck_assert_str_eq(cfg_get(c, "exclude-history"), "no");
  ck_assert_str_eq(cfg_get(c, "history-limit"), "50");
  ck_assert_str_eq(cfg_get(c, "feedback-weight-cart"), "2.5");
  ck_assert_str_eq(cfg_get(c, "max-per-category"), "2");
  ck_assert_str_eq(cfg_get(c, "one-per-group"), "yes");
  r = it_cmd(c, "RECOMMEND user1 COUNT 7");
  ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
  ck_assert_int_ge(r->elements, 1);
  ck_assert_int_le(r->elements, 7);
  freeReplyObject(r);
  /* FEEDBACK's weight: a cart now adds 2.5 */
  freeReplyObject(it_cmd(e.redis, "DEL recd:hist:fresh"));
  r = it_cmd(c, "FEEDBACK fresh item3 TYPE cart");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  ck_assert_str_eq(r->str, "2.5");
  freeReplyObject(r);

  /* Refusals name the key; a key that cannot change says so. */
  it_expect_error(c, "ERR CONFIG SET: 'port' cannot change at run time; restart recd",
                  "CONFIG SET port 1234");
  const char *fixed[] = {"bind 127.0.0.2", "workers 4", "model /tmp/x.bin", "variant \"\"",
                         "key-prefix x:", "redis-port 1", "max-request-bytes 2mb",
                         "track-impressions no", "metrics-port 9999", "unixsocket /tmp/s"};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
    char key[64], cmd[128], want[128];
    it_fmt(cmd, sizeof cmd, "CONFIG SET %s", fixed[i]);
    it_fmt(key, sizeof key, "%.*s", (int)strcspn(fixed[i], " "), fixed[i]);
    it_fmt(want, sizeof want, "ERR CONFIG SET: '%s' cannot change at run time", key);
    r = it_cmd(c, cmd);
    ck_assert_msg(r->type == REDIS_REPLY_ERROR && strncmp(r->str, want, strlen(want)) == 0,
                  "%s: %s", cmd, r->str ? r->str : "(not an error)");
    freeReplyObject(r);
  }
  it_expect_error(c, "ERR CONFIG SET: unknown key 'nosuch'", "CONFIG SET nosuch 1");
  it_expect_error(c, "ERR CONFIG SET: unknown key 'save'", "CONFIG SET save \"\"");
  it_expect_error(c, "ERR CONFIG SET: max-count: expected an integer in [1, 100000], got 'abc'",
                  "CONFIG SET max-count abc");
  it_expect_error(c, "ERR CONFIG SET: max-count: expected an integer in [1, 100000], got '0'",
                  "CONFIG SET max-count 0");
  it_expect_error(c, "ERR CONFIG SET: exclude-history: expected yes or no, got 'maybe'",
                  "CONFIG SET exclude-history maybe");
  it_expect_error(c, "ERR CONFIG SET: loglevel: expected one of debug, verbose, notice, warning",
                  "CONFIG SET loglevel loud");
  it_expect_error(c, "ERR CONFIG SET: 'max-count' is given twice",
                  "CONFIG SET max-count 8 MAX-COUNT 9");
  it_expect_error(c, "ERR wrong number of arguments for 'config|set' command",
                  "CONFIG SET max-count");
  it_expect_error(c, "ERR wrong number of arguments for 'config|set' command",
                  "CONFIG SET max-count 8 history-limit");
  /* shown-limit needs shown counts, which this recd was started without */
  it_expect_error(c, "ERR CONFIG SET: shown-limit needs shown counts", "CONFIG SET shown-limit 3");

  /* All or nothing: a bad pair anywhere leaves every key as it was. */
  it_expect_error(c, "ERR CONFIG SET: history-limit:",
                  "CONFIG SET max-count 9 history-limit 0");
  it_expect_error(c, "ERR CONFIG SET: 'port' cannot change",
                  "CONFIG SET max-count 9 timeout 5 port 1");
  it_expect_error(c, "ERR CONFIG SET: unknown key",
                  "CONFIG SET max-count 9 nosuch 1");
  it_expect_error(c, "ERR CONFIG SET: shown-limit",
                  "CONFIG SET max-count 9 requirepass x shown-limit 2");
  ck_assert_str_eq(cfg_get(c, "max-count"), "7");
  ck_assert_str_eq(cfg_get(c, "history-limit"), "50");
  ck_assert_str_eq(cfg_get(c, "timeout"), "0");
  ck_assert_str_eq(cfg_get(c, "shown-limit"), "0");
  expect_status(it_cmd(c, "PING"), "PONG"); /* no password was set */
  redisContext *c3 = it_connect(e.port);
  expect_status(it_cmd(c3, "PING"), "PONG");
  redisFree(c3);
  it_expect_error(c, "ERR COUNT must be an integer in [0, 7], got '8'", "RECOMMEND user1 COUNT 8");

  /* requirepass at run time: new connections must AUTH with it, the
   * connected ones stay authenticated (as Redis); shown as "". */
  expect_status(it_cmd(c, "CONFIG SET requirepass %s", "new secret"), "OK");
  ck_assert_str_eq(cfg_get(c, "requirepass"), "");
  c3 = it_connect(e.port);
  it_expect_error(c3, "NOAUTH", "PING");
  it_expect_error(c3, "WRONGPASS", "AUTH %s", "wrong");
  expect_status(it_cmd(c3, "AUTH %s", "new secret"), "OK");
  expect_status(it_cmd(c3, "PING"), "PONG");
  redisFree(c3);
  expect_status(it_cmd(c, "PING"), "PONG");
  ck_assert(!it_file_contains(e.recd_log, "new secret"));
  expect_status(it_cmd(c, "CONFIG SET requirepass %s", ""), "OK");
  c3 = it_connect(e.port);
  expect_status(it_cmd(c3, "PING"), "PONG");
  redisFree(c3);

  /* loglevel: debug lines appear from the next event on */
  ck_assert(!it_file_contains(e.recd_log, "[debug]"));
  expect_status(it_cmd(c, "CONFIG SET loglevel debug"), "OK");
  c3 = it_connect(e.port);
  expect_status(it_cmd(c3, "PING"), "PONG");
  redisFree(c3);
  ck_assert_int_ge(it_wait_file_contains(e.recd_log, "[debug] client", 5000), 0);
  ck_assert(it_file_contains(e.recd_log, "CONFIG SET loglevel debug"));
  expect_status(it_cmd(c, "CONFIG SET loglevel verbose"), "OK");

  /* RESETSTAT: INFO's counters from 0 */
  ck_assert_double_gt(it_info_num(c, "stats", "total_commands_processed"), 20);
  expect_status(it_cmd(c, "CONFIG RESETSTAT"), "OK");
  ck_assert_double_le(it_info_num(c, "stats", "total_commands_processed"), 1);
  r = it_cmd(c, "INFO stats");
  ck_assert_ptr_null(strstr(r->str, "cmdstat_recommend:"));
  freeReplyObject(r);
  ck_assert_double_gt(it_info_num(c, "clients", "total_connections_received"), 5);
  it_env_stop(&e);
}
END_TEST

/* timeout at run time: the idle sweep reads the new value. */
START_TEST(config_set_timeout) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *idle = it_connect(e.port);
  expect_status(it_cmd(idle, "PING"), "PONG");
  expect_status(it_cmd(e.c, "CONFIG SET timeout 1"), "OK");
  uint64_t t0 = it_now_ms();
  while (it_info_num(e.c, "stats", "idle_disconnections") < 1 && it_now_ms() - t0 < 8000) {
    expect_status(it_cmd(e.c, "PING"), "PONG"); /* e.c stays busy */
    it_sleep_ms(100);
  }
  ck_assert_double_ge(it_info_num(e.c, "stats", "idle_disconnections"), 1);
  ck_assert(is_closed(idle));
  redisFree(idle);
  expect_status(it_cmd(e.c, "CONFIG SET timeout 0"), "OK");
  it_env_stop(&e);
}
END_TEST

/* ---- CLIENT ---------------------------------------------------------------- */

START_TEST(client_names) {
  it_env_t e;
  it_opts_t o = {.unixsocket = 1};
  it_env_start(&e, __func__, &o);
  redisContext *c = e.c;
  const long long id = expect_int(it_cmd(c, "CLIENT ID"));
  ck_assert_int_gt(id, 0);
  /* HELLO says the same id */
  redisReply *r = it_cmd(c, "HELLO 2");
  for (size_t j = 0; j + 1 < r->elements; j += 2)
    if (strcmp(r->element[j]->str, "id") == 0)
      ck_assert_int_eq(r->element[j + 1]->integer, id);
  freeReplyObject(r);

  r = it_cmd(c, "CLIENT GETNAME");
  ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
  freeReplyObject(r);
  expect_status(it_cmd(c, "CLIENT SETNAME checkout-web-3"), "OK");
  r = it_cmd(c, "CLIENT GETNAME");
  ck_assert_str_eq(r->str, "checkout-web-3");
  freeReplyObject(r);
  it_expect_error(c, "ERR Client names cannot contain spaces, newlines or special characters.",
                  "CLIENT SETNAME %s", "a b");
  it_expect_error(c, "ERR Client names cannot contain", "CLIENT SETNAME %s", "a\nb");
  char longname[300];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  it_expect_error(c, "ERR client name longer than 256 bytes", "CLIENT SETNAME %s", longname);
  expect_status(it_cmd(c, "CLIENT SETINFO LIB-NAME redis-py"), "OK");
  expect_status(it_cmd(c, "CLIENT SETINFO lib-ver 5.0.1"), "OK");
  it_expect_error(c, "ERR Unrecognized option 'lib-foo'", "CLIENT SETINFO lib-foo x");
  it_expect_error(c, "ERR LIB-NAME cannot contain spaces", "CLIENT SETINFO LIB-NAME %s", "a b");
  it_expect_error(c, "ERR unknown subcommand or wrong number of arguments for 'SETINFO'",
                  "CLIENT SETINFO LIB-NAME");
  it_expect_error(c, "ERR unknown subcommand or wrong number of arguments for 'NOPE'",
                  "CLIENT NOPE");

  /* LIST: this client's line, every documented field, cmd= the last one */
  freeReplyObject(it_cmd(c, "RECOMMEND user1 COUNT 2"));
  char *line = list_line(c, id);
  ck_assert_ptr_nonnull(line);
  ck_assert_str_eq(line_field(line, "name"), "checkout-web-3");
  ck_assert_str_eq(line_field(line, "lib-name"), "redis-py");
  ck_assert_str_eq(line_field(line, "lib-ver"), "5.0.1");
  ck_assert_str_eq(line_field(line, "user"), "default");
  ck_assert_str_eq(line_field(line, "db"), "0");
  ck_assert_str_eq(line_field(line, "cmd"), "client|list");
  ck_assert_int_le(atoi(line_field(line, "age")), 5);
  char laddr[64];
  it_fmt(laddr, sizeof laddr, "127.0.0.1:%d", e.port);
  ck_assert_str_eq(line_field(line, "laddr"), laddr);
  ck_assert(strncmp(line_field(line, "addr"), "127.0.0.1:", 10) == 0);
  ck_assert_int_gt(atoi(line_field(line, "fd")), 2);
  const char *fields[] = {"id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db",
                          "cmd", "user", "lib-name", "lib-ver"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    ck_assert_msg(line_field(line, fields[i]) != NULL, "no %s= in %s", fields[i], line);
  /* every field is key=value without blanks (what client libraries split) */
  for (char *tok = strtok(line, " \n"); tok != NULL; tok = strtok(NULL, " \n"))
    ck_assert_msg(strchr(tok, '=') != NULL, "field '%s' without '='", tok);
  free(line);
  /* INFO: the same line for the caller */
  r = it_cmd(c, "CLIENT INFO");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  ck_assert_str_eq(line_field(r->str, "cmd"), "client|info");
  ck_assert_str_eq(line_field(r->str, "name"), "checkout-web-3");
  freeReplyObject(r);

  /* another client: listed with its own name, after the caller's */
  redisContext *c2 = it_connect(e.port);
  const long long id2 = expect_int(it_cmd(c2, "CLIENT ID"));
  ck_assert_int_gt(id2, id);
  r = it_cmd(c2, "HELLO 2 SETNAME via-hello");
  freeReplyObject(r);
  freeReplyObject(it_cmd(c2, "MODEL INFO"));
  line = list_line(c, id2);
  ck_assert_ptr_nonnull(line);
  ck_assert_str_eq(line_field(line, "name"), "via-hello");
  ck_assert_str_eq(line_field(line, "flags"), "N");
  ck_assert_str_eq(line_field(line, "cmd"), "model|info");
  ck_assert_str_eq(line_field(line, "lib-name"), "");
  free(line);
  ck_assert_int_eq(list_count(c), 2);
  /* LIST ID and TYPE filters */
  r = it_cmd(c, "CLIENT LIST ID %lld", id2);
  ck_assert_str_eq(line_field(r->str, "name"), "via-hello");
  ck_assert_ptr_null(strstr(r->str, "checkout-web-3"));
  freeReplyObject(r);
  r = it_cmd(c, "CLIENT LIST TYPE pubsub");
  ck_assert_int_eq(r->len, 0);
  freeReplyObject(r);
  it_expect_error(c, "ERR Invalid client ID", "CLIENT LIST ID x");
  it_expect_error(c, "ERR Unknown client type 'cats'", "CLIENT LIST TYPE cats");
  /* a name removed with "" */
  expect_status(it_cmd(c2, "CLIENT SETNAME %s", ""), "OK");
  r = it_cmd(c2, "CLIENT GETNAME");
  ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
  freeReplyObject(r);
  redisFree(c2);
  /* a Unix socket client: the socket's path, port 0, flag U (Redis's) */
  redisContext *cu = it_connect_unix(e.sock);
  const long long idu = expect_int(it_cmd(cu, "CLIENT ID"));
  line = list_line(c, idu);
  ck_assert_ptr_nonnull(line);
  char uaddr[IT_PATH + 8];
  it_fmt(uaddr, sizeof uaddr, "%s:0", e.sock);
  ck_assert_str_eq(line_field(line, "addr"), uaddr);
  ck_assert_str_eq(line_field(line, "laddr"), uaddr);
  ck_assert_str_eq(line_field(line, "flags"), "U");
  free(line);
  redisFree(cu);
  /* gone once it closed */
  uint64_t t0 = it_now_ms();
  while (list_count(c) != 1 && it_now_ms() - t0 < 5000)
    it_sleep_ms(10);
  ck_assert_int_eq(list_count(c), 1);
  it_env_stop(&e);
}
END_TEST

START_TEST(client_kill) {
  it_env_t e;
  it_env_start(&e, __func__, NULL);
  redisContext *c = e.c;
  enum { N = 4 };
  redisContext *v[N];
  long long ids[N];
  char addrs[N][64];
  for (int i = 0; i < N; i++) {
    v[i] = it_connect(e.port);
    ids[i] = expect_int(it_cmd(v[i], "CLIENT ID"));
    redisReply *r = it_cmd(v[i], "CLIENT INFO");
    it_fmt(addrs[i], sizeof addrs[i], "%s", line_field(r->str, "addr"));
    freeReplyObject(r);
  }
  ck_assert_int_eq(list_count(c), N + 1);

  /* ID: the one client, which is then closed and no longer listed */
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL ID %lld", ids[0])), 1);
  char *line = list_line(c, ids[0]);
  ck_assert_ptr_null(line);
  ck_assert(is_closed(v[0]));
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL ID %lld", ids[0])), 0);
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL ID 999999")), 0);
  /* ADDR, with a filter that does not match it too: all must match */
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL ADDR %s ID %lld", addrs[1], ids[2])), 0);
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL ADDR %s ID %lld", addrs[1], ids[1])), 1);
  ck_assert(is_closed(v[1]));
  /* the old form: +OK, then no such client */
  expect_status(it_cmd(c, "CLIENT KILL %s", addrs[2]), "OK");
  ck_assert(is_closed(v[2]));
  it_expect_error(c, "ERR No such client", "CLIENT KILL %s", addrs[2]);
  it_expect_error(c, "ERR No such client", "CLIENT KILL 10.9.8.7:6");
  /* errors kill nothing */
  it_expect_error(c, "ERR No such user 'bob'", "CLIENT KILL USER bob");
  it_expect_error(c, "ERR client-id should be greater than 0", "CLIENT KILL ID 0");
  it_expect_error(c, "ERR client-id should be greater than 0", "CLIENT KILL ID x");
  it_expect_error(c, "ERR syntax error", "CLIENT KILL SKIPME maybe");
  it_expect_error(c, "ERR syntax error", "CLIENT KILL ID %lld NOPE 1", ids[3]);
  it_expect_error(c, "ERR syntax error", "CLIENT KILL ID %lld SKIPME", ids[3]);
  it_expect_error(c, "ERR Unknown client type 'x'", "CLIENT KILL TYPE x");
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL TYPE pubsub")), 0);
  expect_status(it_cmd(v[3], "PING"), "PONG");
  ck_assert_int_eq(list_count(c), 2);

  /* USER default (SKIPME yes by default): everybody but the caller */
  redisContext *w[3];
  for (int i = 0; i < 3; i++) {
    w[i] = it_connect(e.port);
    expect_status(it_cmd(w[i], "PING"), "PONG");
  }
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL USER default")), 4);
  ck_assert(is_closed(v[3]));
  for (int i = 0; i < 3; i++) {
    ck_assert(is_closed(w[i]));
    redisFree(w[i]);
  }
  expect_status(it_cmd(c, "PING"), "PONG");
  ck_assert_int_eq(list_count(c), 1);
  for (int i = 0; i < N; i++)
    redisFree(v[i]);

  /* LADDR: the listening address; TYPE normal */
  redisContext *x = it_connect(e.port);
  expect_status(it_cmd(x, "PING"), "PONG");
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL LADDR 127.0.0.1:%d TYPE normal", e.port)),
                   1);
  ck_assert(is_closed(x));
  redisFree(x);

  /* Killing oneself: the reply arrives, then the connection closes. */
  const long long me = expect_int(it_cmd(c, "CLIENT ID"));
  ck_assert_int_eq(expect_int(it_cmd(c, "CLIENT KILL ID %lld SKIPME no", me)), 1);
  ck_assert(is_closed(c));
  redisFree(e.c);
  e.c = it_connect(e.port);
  expect_status(it_cmd(e.c, "PING"), "PONG");
  ck_assert_double_ge(it_info_num(e.c, "clients", "connected_clients"), 1);
  it_env_stop(&e);
}
END_TEST

/* Pipelined SIMILARs (on the worker threads: 60000 items) and RECOMMENDs
 * (waiting for Redis, then the batcher), killed from another connection
 * while they run: every command it had read is answered, whole, then the
 * connection closes; the daemon goes on. Under ASan this is the
 * use-after-free check of the kill path. */
START_TEST(client_kill_inflight) {
  it_env_t e;
  it_opts_t o = {.model = it_data.synth, .no_import = 1};
  it_env_start(&e, __func__, &o);
  freeReplyObject(it_cmd(e.redis, "ZADD recd:hist:u1 3 i5 1 i77 2 i12345"));
  enum { ROUNDS = 6, PIPE = 400 };
  for (int round = 0; round < ROUNDS; round++) {
    int fd = it_raw_connect(e.port);
    const char *hello = "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n";
    it_raw_send(fd, hello, strlen(hello));
    redisReply **rr = it_raw_read_replies(fd, 1, 10000);
    ck_assert_int_eq(rr[0]->type, REDIS_REPLY_INTEGER);
    const long long id = rr[0]->integer;
    freeReplyObject(rr[0]);
    free(rr);
    expect_status(it_cmd(e.c, "CONFIG RESETSTAT"), "OK");
    char *buf = malloc((size_t)PIPE * 64);
    size_t n = 0;
    for (int i = 0; i < PIPE; i++) {
      char item[16];
      int il = snprintf(item, sizeof item, "i%d", (i * 7919 + round) % 60000);
      if (i % 2 == 0)
        n += (size_t)sprintf(buf + n, "*4\r\n$7\r\nSIMILAR\r\n$%d\r\n%s\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n",
                             il, item);
      else
        n += (size_t)sprintf(buf + n, "*4\r\n$9\r\nRECOMMEND\r\n$2\r\nu1\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n");
    }
    it_raw_send(fd, buf, n);
    free(buf);
    /* kill it at once, or after a moment: mid-pipeline either way */
    if (round % 2 == 1)
      it_sleep_ms(2 * round);
    ck_assert_int_eq(expect_int(it_cmd(e.c, "CLIENT KILL ID %lld", id)), 1);
    size_t len = 0;
    int closed = 0;
    char *out = it_raw_read_until_close(fd, 20000, &len, &closed);
    close(fd);
    ck_assert_msg(closed, "the killed client was not closed");
    /* whole replies only, each an array (no error) */
    redisReader *rd = redisReaderCreate();
    ck_assert_int_eq(redisReaderFeed(rd, out, len), REDIS_OK);
    long long got = 0;
    void *rep;
    while (redisReaderGetReply(rd, &rep) == REDIS_OK && rep != NULL) {
      ck_assert_int_eq(((redisReply *)rep)->type, REDIS_REPLY_ARRAY);
      freeReplyObject(rep);
      got++;
    }
    ck_assert_msg(!it_reader_partial(rd), "a reply cut short after %lld", got);
    redisReaderFree(rd);
    free(out);
    ck_assert_int_le(got, PIPE);
    fprintf(stderr, "client_kill_inflight: round %d, %lld of %d replies, then closed\n", round,
            got, (int)PIPE);
    /* every command it ran was answered: the counters of the commands
     * finished (stats are recorded when a request finishes) equal the
     * replies received */
    redisReply *r = it_cmd(e.c, "INFO stats");
    long long calls = 0;
    for (const char *k = r->str; (k = strstr(k, "cmdstat_")) != NULL; k++) {
      if (strncmp(k, "cmdstat_similar:calls=", 22) == 0)
        calls += atoll(k + 22);
      else if (strncmp(k, "cmdstat_recommend:calls=", 24) == 0)
        calls += atoll(k + 24);
    }
    freeReplyObject(r);
    ck_assert_int_eq(calls, got);
    expect_status(it_cmd(e.c, "PING"), "PONG");
  }
  ck_assert_int_eq(list_count(e.c), 1);
  it_env_stop(&e);
}
END_TEST

static Suite *config_client_suite(void) {
  Suite *s = suite_create("config_client");
  IT_ADD(s, config_get, 60);
  IT_ADD(s, config_set, 60);
  IT_ADD(s, config_set_timeout, 60);
  IT_ADD(s, client_names, 60);
  IT_ADD(s, client_kill, 60);
  IT_ADD(s, client_kill_inflight, 120);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  int failed = it_run_suite(config_client_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
