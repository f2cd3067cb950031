/* commands.c - the command table, dispatch, and the small commands
 * (see commands.h).
 *
 * Dispatch order (as Redis's processCommand): lookup, arity, auth policy,
 * handler, statistics. Command flags:
 *   CMD_NOAUTH  allowed before AUTH when requirepass is set (AUTH, HELLO,
 *               QUIT, as Redis allows)
 *   CMD_ASYNC   the handler answers later through a req_t (it records its
 *               own statistics when the request finishes)
 * Arity: N means exactly N arguments including the name, -N at least N.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"

#define CMD_NOAUTH (1u << 0)
#define CMD_ASYNC (1u << 1)

struct cmd_def {
  const char *name;
  cmd_fn fn;
  int arity;
  unsigned flags;
  cmd_stats_t st;
};

static void cmd_ping(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
static void cmd_echo(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
static void cmd_quit(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
static void cmd_auth(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
static void cmd_hello(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
static void cmd_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
static void cmd_info(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);

static struct cmd_def cmd_table[] = {
  {"recommend", reco_recommend, -2, CMD_ASYNC, {0}},
  {"rank", reco_rank, -3, CMD_ASYNC, {0}},
  {"similar", similar_command, -2, CMD_ASYNC, {0}},
  {"feedback", feedback_command, -3, CMD_ASYNC, {0}},
  {"merge", merge_command, 3, CMD_ASYNC, {0}},
  {"model", model_command, -2, CMD_ASYNC, {0}},
  {"experiment", experiment_command, 2, CMD_ASYNC, {0}},
  {"ping", cmd_ping, -1, 0, {0}},
  {"echo", cmd_echo, 2, 0, {0}},
  {"quit", cmd_quit, -1, CMD_NOAUTH, {0}},
  {"auth", cmd_auth, -2, CMD_NOAUTH, {0}},
  {"hello", cmd_hello, -1, CMD_NOAUTH, {0}},
  {"command", cmd_command, -1, 0, {0}},
  {"info", cmd_info, -1, 0, {0}},
};
#define CMD_COUNT (sizeof cmd_table / sizeof cmd_table[0])

static struct cmd_def *commands__lookup(const char *name, size_t len) {
  for (size_t i = 0; i < CMD_COUNT; i++)
    if (strlen(cmd_table[i].name) == len && strncasecmp(cmd_table[i].name, name, len) == 0)
      return &cmd_table[i];
  return NULL;
}

void commands_foreach(void (*fn)(const char *name, const cmd_stats_t *st, void *arg), void *arg) {
  for (size_t i = 0; i < CMD_COUNT; i++)
    fn(cmd_table[i].name, &cmd_table[i].st, arg);
}

/* Redis's wording, with the first arguments shown (sanitised, bounded). */
static void commands__unknown(reply_buf_t *r, const resp_cmd_t *a) {
  char name[4 * 32 + 1], args[512] = "";
  log_sanitize(name, a->argv[0], a->argvlen[0], 32);
  size_t off = 0;
  for (size_t i = 1; i < a->argc && off < sizeof args - 140; i++) {
    char one[4 * 32 + 1];
    log_sanitize(one, a->argv[i], a->argvlen[i], 32);
    off += (size_t)snprintf(args + off, sizeof args - off, "'%s' ", one);
  }
  reply_errorf(r, "unknown command '%s', with args beginning with: %s", name, args);
}

void commands_dispatch(client_t *c, const resp_cmd_t *a) {
  struct cmd_def *cmd = commands__lookup(a->argv[0], a->argvlen[0]);
  if (cmd == NULL) {
    reply_buf_t *r = client_reply(c);
    if (r)
      commands__unknown(r, a);
    client_advance(c);
    return;
  }
  if ((cmd->arity > 0 && a->argc != (size_t)cmd->arity) ||
      (cmd->arity < 0 && a->argc < (size_t)-cmd->arity)) {
    reply_buf_t *r = client_reply(c);
    if (r)
      reply_errorf(r, "wrong number of arguments for '%s' command", cmd->name);
    cmd_stats_record(&cmd->st, 0, 1);
    client_advance(c);
    return;
  }
  if (!(c->flags & CLIENT_AUTHED) && !(cmd->flags & CMD_NOAUTH)) {
    reply_buf_t *r = client_reply(c);
    if (r)
      reply_error(r, "-NOAUTH Authentication required.");
    cmd_stats_record(&cmd->st, 0, 1);
    client_advance(c);
    return;
  }
  uint64_t t0 = stats_now_us();
  cmd->fn(c, &cmd->st, a);
  if (!(cmd->flags & CMD_ASYNC))
    cmd_stats_record(&cmd->st, stats_now_us() - t0, 0);
  if (!(c->flags & CLIENT_CLOSING))
    client_advance(c);
}

static void cmd_ping(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r == NULL)
    return;
  if (a->argc == 1)
    reply_simple(r, "PONG");
  else if (a->argc == 2)
    reply_bulk(r, a->argv[1], a->argvlen[1]);
  else
    reply_error(r, "wrong number of arguments for 'ping' command");
}

static void cmd_echo(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r)
    reply_bulk(r, a->argv[1], a->argvlen[1]);
}

static void cmd_quit(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st, (void)a;
  reply_buf_t *r = client_reply(c);
  if (r)
    reply_simple(r, "OK");
  client_advance(c);
  client_close_after_reply(c);
}

/* Compares without an early exit, so the time taken does not tell an
 * attacker how many leading bytes of a guess were right. */
static int commands__secret_equal(const char *a, size_t alen, const char *b, size_t blen) {
  unsigned char diff = (unsigned char)(alen != blen);
  for (size_t i = 0; i < alen; i++)
    diff |= (unsigned char)(a[i] ^ b[i % (blen ? blen : 1)]);
  return diff == 0 && blen > 0;
}

/* AUTH password | AUTH default password (the Redis 6 form clients send). */
static int commands__auth(client_t *c, const char *user, size_t ulen, const char *pass,
                          size_t plen, reply_buf_t *r) {
  const char *want = c->srv->cfg->requirepass;
  if (want[0] == '\0') {
    reply_error(r, "AUTH <password> called without any password configured for the default "
                   "user. Are you sure your configuration is correct?");
    return -1;
  }
  int user_ok = user == NULL || (ulen == 7 && memcmp(user, "default", 7) == 0);
  if (!commands__secret_equal(pass, plen, want, strlen(want)) || !user_ok) {
    reply_error(r, "-WRONGPASS invalid username-password pair or user is disabled.");
    return -1;
  }
  c->flags |= CLIENT_AUTHED;
  return 0;
}

static void cmd_auth(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r == NULL)
    return;
  if (a->argc > 3) {
    reply_error(r, "syntax error");
    return;
  }
  int rc = a->argc == 2 ? commands__auth(c, NULL, 0, a->argv[1], a->argvlen[1], r)
                        : commands__auth(c, a->argv[1], a->argvlen[1], a->argv[2], a->argvlen[2], r);
  if (rc == 0)
    reply_simple(r, "OK");
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]: recd speaks RESP2 only,
 * which clients accept as -NOPROTO for HELLO 3 (they fall back to RESP2). */
static void cmd_hello(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r == NULL)
    return;
  size_t i = 1;
  if (a->argc > 1) {
    if (!(a->argvlen[1] == 1 && (a->argv[1][0] == '2' || a->argv[1][0] == '3'))) {
      reply_error(r, "-NOPROTO unsupported protocol version");
      return;
    }
    if (a->argv[1][0] == '3') {
      reply_error(r, "-NOPROTO recd speaks RESP2 only");
      return;
    }
    i = 2;
  }
  for (; i < a->argc; i++) {
    if (strcasecmp(a->argv[i], "AUTH") == 0 && i + 2 < a->argc) {
      if (commands__auth(c, a->argv[i + 1], a->argvlen[i + 1], a->argv[i + 2],
                         a->argvlen[i + 2], r) != 0)
        return;
      i += 2;
    } else if (strcasecmp(a->argv[i], "SETNAME") == 0 && i + 1 < a->argc) {
      i += 1; /* accepted and ignored: recd has no CLIENT LIST */
    } else {
      reply_error(r, "syntax error in HELLO option");
      return;
    }
  }
  if (!(c->flags & CLIENT_AUTHED)) {
    reply_error(r, "-NOAUTH HELLO must be called with the client already authenticated, "
                   "otherwise the HELLO AUTH <user> <pass> option can be used to authenticate "
                   "the client and select the RESP protocol version at the same time");
    return;
  }
  reply_array(r, 14);
  reply_bulk_cstr(r, "server");
  reply_bulk_cstr(r, "recd");
  reply_bulk_cstr(r, "version");
  reply_bulk_cstr(r, RECD_VERSION);
  reply_bulk_cstr(r, "proto");
  reply_int(r, 2);
  reply_bulk_cstr(r, "id");
  reply_int(r, (long long)c->id);
  reply_bulk_cstr(r, "mode");
  reply_bulk_cstr(r, "standalone");
  reply_bulk_cstr(r, "role");
  reply_bulk_cstr(r, "master");
  reply_bulk_cstr(r, "modules");
  reply_array(r, 0);
}

/* COMMAND: just enough for redis-cli and client libraries: COMMAND COUNT,
 * and an empty list for everything else (COMMAND, COMMAND DOCS, INFO), which
 * clients treat as "no hints available". */
static void cmd_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r == NULL)
    return;
  if (a->argc == 2 && strcasecmp(a->argv[1], "count") == 0)
    reply_int(r, (long long)CMD_COUNT);
  else
    reply_array(r, 0);
}

static void cmd_info(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r == NULL)
    return;
  if (a->argc > 2) {
    reply_error(r, "syntax error");
    return;
  }
  info_render(c->srv, a->argc == 2 ? a->argv[1] : "default", r);
}


