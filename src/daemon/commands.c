/* commands.c - the command table, dispatch, and the small commands.
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

#include "batch.h"
#include "log.h"
#include "server.h"

#define CMD_NOAUTH (1u << 0)
#define CMD_ASYNC (1u << 1)

typedef void (*cmd_fn)(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);

struct cmd_def {
  const char *name;
  cmd_fn fn;
  int arity;
  unsigned flags;
  cmd_stats_t st;
};

static void cmd_ping(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
static void cmd_echo(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
static void cmd_quit(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
static void cmd_auth(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
static void cmd_hello(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
static void cmd_command(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
static void cmd_info(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
static void cmd_model(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);

static struct cmd_def cmd_table[] = {
  {"recommend", reco_recommend, -2, CMD_ASYNC, {0}},
  {"rank", reco_rank, -3, CMD_ASYNC, {0}},
  {"similar", reco_similar, -2, CMD_ASYNC, {0}},
  {"feedback", reco_feedback, -3, CMD_ASYNC, {0}},
  {"model", cmd_model, -2, CMD_ASYNC, {0}},
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

void commands_record(struct cmd_def *cmd, uint64_t us, int failed) {
  cmd->st.calls++;
  cmd->st.errors += failed != 0;
  stats_hist_record(&cmd->st.latency, us);
}

void commands_foreach(void (*fn)(const char *name, const cmd_stats_t *st, void *arg), void *arg) {
  for (size_t i = 0; i < CMD_COUNT; i++)
    fn(cmd_table[i].name, &cmd_table[i].st, arg);
}

reply_buf_t *client_sync_reply(client_t *c) {
  if (c->q_head == NULL)
    return &c->out;
  req_t *r = req_new(c, NULL);
  if (r == NULL)
    return NULL;
  r->done = 1;
  return &r->reply;
}

req_t *req_new(client_t *c, struct cmd_def *cmd) {
  req_t *r = calloc(1, sizeof *r);
  if (r == NULL) {
    client_close(c, "out of memory");
    return NULL;
  }
  reply_init(&r->reply);
  r->c = c;
  r->refs = 1; /* the queue's */
  r->cmd = cmd;
  r->start_us = stats_now_us();
  if (c->q_tail)
    c->q_tail->next = r;
  else
    c->q_head = r;
  c->q_tail = r;
  c->q_len++;
  return r;
}

void req_unref(req_t *r) {
  if (--r->refs > 0)
    return;
  if (r->ctx_free)
    r->ctx_free(r->ctx);
  reply_free(&r->reply);
  free(r);
}

void req_finish(req_t *r, int failed) {
  r->done = 1;
  if (r->cmd)
    commands_record(r->cmd, stats_now_us() - r->start_us, failed);
  if (r->c != NULL)
    client_advance(r->c);
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
    reply_buf_t *r = client_sync_reply(c);
    if (r)
      commands__unknown(r, a);
    client_advance(c);
    return;
  }
  if ((cmd->arity > 0 && a->argc != (size_t)cmd->arity) ||
      (cmd->arity < 0 && a->argc < (size_t)-cmd->arity)) {
    reply_buf_t *r = client_sync_reply(c);
    if (r)
      reply_errorf(r, "wrong number of arguments for '%s' command", cmd->name);
    commands_record(cmd, 0, 1);
    client_advance(c);
    return;
  }
  if (!(c->flags & CLIENT_AUTHED) && !(cmd->flags & CMD_NOAUTH)) {
    reply_buf_t *r = client_sync_reply(c);
    if (r)
      reply_error(r, "-NOAUTH Authentication required.");
    commands_record(cmd, 0, 1);
    client_advance(c);
    return;
  }
  uint64_t t0 = stats_now_us();
  cmd->fn(c, cmd, a);
  if (!(cmd->flags & CMD_ASYNC))
    commands_record(cmd, stats_now_us() - t0, 0);
  if (!(c->flags & CLIENT_CLOSING))
    client_advance(c);
}

static void cmd_ping(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  (void)cmd;
  reply_buf_t *r = client_sync_reply(c);
  if (r == NULL)
    return;
  if (a->argc == 1)
    reply_simple(r, "PONG");
  else if (a->argc == 2)
    reply_bulk(r, a->argv[1], a->argvlen[1]);
  else
    reply_error(r, "wrong number of arguments for 'ping' command");
}

static void cmd_echo(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  (void)cmd;
  reply_buf_t *r = client_sync_reply(c);
  if (r)
    reply_bulk(r, a->argv[1], a->argvlen[1]);
}

static void cmd_quit(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  (void)cmd, (void)a;
  reply_buf_t *r = client_sync_reply(c);
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

static void cmd_auth(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  (void)cmd;
  reply_buf_t *r = client_sync_reply(c);
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
static void cmd_hello(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  (void)cmd;
  reply_buf_t *r = client_sync_reply(c);
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
static void cmd_command(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  (void)cmd;
  reply_buf_t *r = client_sync_reply(c);
  if (r == NULL)
    return;
  if (a->argc == 2 && strcasecmp(a->argv[1], "count") == 0)
    reply_int(r, (long long)CMD_COUNT);
  else
    reply_array(r, 0);
}

static void cmd_info(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  (void)cmd;
  reply_buf_t *r = client_sync_reply(c);
  if (r == NULL)
    return;
  if (a->argc > 2) {
    reply_error(r, "syntax error");
    return;
  }
  info_render(c->srv, a->argc == 2 ? a->argv[1] : "default", r);
}

/* MODEL INFO: a flat array of field, value pairs (like CONFIG GET). */
static void commands__model_info(server_t *s, reply_buf_t *r) {
  const served_t *sv = s->model;
  const model_t *m = sv->m;
  const model_meta_t *meta = model_meta(m);
  const params_t *p = model_params(m);
  char v[160];
  reply_array(r, 2 * 14);
#define KV_STR(k, val) (reply_bulk_cstr(r, k), reply_bulk_cstr(r, val))
#define KV_FMT(k, ...) (snprintf(v, sizeof v, __VA_ARGS__), KV_STR(k, v))
  KV_STR("path", sv->path);
  KV_FMT("version", "%llu", (unsigned long long)sv->version);
  KV_FMT("loaded_at", "%lld", (long long)sv->loaded_at);
  KV_FMT("created_at", "%lld", (long long)meta->created_at);
  KV_FMT("items", "%u", model_n_items(m));
  KV_FMT("factors", "%u", model_factors(m));
  KV_FMT("categories", "%u", model_n_categories(m));
  KV_FMT("checksum", "%08x", model_checksum(m));
  KV_FMT("file_bytes", "%zu", model_file_size(m));
  KV_FMT("users_trained", "%llu", (unsigned long long)meta->n_users);
  KV_FMT("interactions_trained", "%llu", (unsigned long long)meta->n_interactions);
  KV_FMT("holdout_ndcg@10", "%.6f", meta->model.ndcg);
  KV_FMT("holdout_popularity_ndcg@10", "%.6f", meta->popularity.ndcg);
  KV_FMT("params", "factors=%u lambda=%g alpha=%g confidence=%s", p->factors, (double)p->lambda,
         (double)p->alpha, p->conf_mode == PARAMS_CONF_LOG ? "log" : "linear");
#undef KV_STR
#undef KV_FMT
}

static void commands__reload_done(server_t *s, int status, const char *msg, void *arg) {
  req_t *r = arg;
  (void)s;
  if (status == 0)
    reply_simple(&r->reply, msg);
  else
    reply_errorf(&r->reply, "%s", msg);
  req_finish(r, status != 0);
  req_unref(r);
}

static void cmd_model(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  server_t *s = c->srv;
  if (strcasecmp(a->argv[1], "info") == 0 && a->argc == 2) {
    req_t *r = req_new(c, cmd);
    if (r == NULL)
      return;
    commands__model_info(s, &r->reply);
    req_finish(r, 0);
    return;
  }
  if (strcasecmp(a->argv[1], "reload") == 0 && a->argc <= 3) {
    req_t *r = req_new(c, cmd);
    if (r == NULL)
      return;
    char err[RECD_ERRLEN];
    char *path = NULL;
    if (a->argc == 3 && memchr(a->argv[2], '\0', a->argvlen[2]) != NULL) {
      reply_error(&r->reply, "model path contains a NUL byte");
      req_finish(r, 1);
      return;
    }
    if (a->argc == 3)
      path = (char *)a->argv[2];
    r->refs++; /* the reload callback's */
    if (model_store_reload(s, path, commands__reload_done, r, err) != 0) {
      r->refs--;
      reply_errorf(&r->reply, "%s", err);
      req_finish(r, 1);
    }
    return;
  }
  req_t *r = req_new(c, cmd);
  if (r == NULL)
    return;
  reply_error(&r->reply, "unknown MODEL subcommand or wrong number of arguments "
                         "(MODEL INFO | MODEL RELOAD [path])");
  req_finish(r, 1);
}

/* INFO ---------------------------------------------------------------- */

typedef struct info_out {
  char *buf;
  size_t len, cap;
  int oom;
} info_out_t;

static void info__printf(info_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info__printf(info_out_t *o, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0)
      return;
    if (o->buf && o->len + (size_t)n < o->cap) {
      o->len += (size_t)n;
      return;
    }
    size_t cap = o->cap ? o->cap * 2 : 4096;
    while (cap < o->len + (size_t)n + 1)
      cap *= 2;
    char *b = realloc(o->buf, cap);
    if (b == NULL) {
      o->oom = 1;
      return;
    }
    o->buf = b;
    o->cap = cap;
  }
}

static int info__want(const char *section, const char *name) {
  return strcasecmp(section, "all") == 0 || strcasecmp(section, "everything") == 0 ||
         strcasecmp(section, "default") == 0 || strcasecmp(section, name) == 0;
}

int info_render(server_t *s, const char *section, reply_buf_t *out) {
  info_out_t o = {0};
  uint64_t now = uv_now(s->loop);
  if (info__want(section, "server")) {
    info__printf(&o, "# Server\r\nrecd_version:%s\r\nprocess_id:%d\r\ntcp_port:%d\r\n"
                 "uptime_in_seconds:%llu\r\nlibuv_version:%s\r\n\r\n",
                 RECD_VERSION, (int)getpid(), s->cfg->port,
                 (unsigned long long)((now - s->started_ms) / 1000), uv_version_string());
  }
  if (info__want(section, "clients")) {
    info__printf(&o, "# Clients\r\nconnected_clients:%u\r\nmaxclients:%d\r\n"
                 "total_connections_received:%llu\r\nrejected_connections:%llu\r\n\r\n",
                 s->n_clients, s->cfg->maxclients, (unsigned long long)s->total_connections,
                 (unsigned long long)s->rejected_connections);
  }
  if (info__want(section, "model")) {
    const model_t *m = s->model->m;
    info__printf(&o, "# Model\r\nmodel_path:%s\r\nmodel_version:%llu\r\nmodel_items:%u\r\n"
                 "model_factors:%u\r\nmodel_categories:%u\r\nmodel_created_at:%lld\r\n"
                 "model_loaded_at:%lld\r\nmodel_checksum:%08x\r\nmodel_reloads_ok:%llu\r\n"
                 "model_reloads_failed:%llu\r\nmodel_last_reload_error:%s\r\n"
                 "unavailable_items:%zu\r\n\r\n",
                 s->model->path, (unsigned long long)s->model->version, model_n_items(m),
                 model_factors(m), model_n_categories(m), (long long)model_meta(m)->created_at,
                 (long long)s->model->loaded_at, model_checksum(m),
                 (unsigned long long)s->reloads_ok, (unsigned long long)s->reloads_failed,
                 s->last_reload_error, s->unavail ? s->unavail->n_set : 0);
  }
  if (info__want(section, "stats")) {
    info__printf(&o, "# Stats\r\ntotal_commands_processed:%llu\r\nprotocol_errors:%llu\r\n"
                 "degraded_answers:%llu\r\noutput_limit_disconnections:%llu\r\n"
                 "idle_disconnections:%llu\r\n",
                 (unsigned long long)s->total_commands, (unsigned long long)s->protocol_errors,
                 (unsigned long long)s->degraded, (unsigned long long)s->output_limit_closes,
                 (unsigned long long)s->idle_closes);
    batcher_stats_t bs;
    batcher_get_stats(s->batcher, &bs);
    info__printf(&o, "scoring_batches:%llu\r\nscoring_batch_rows:%llu\r\n"
                 "scoring_batch_rows_avg:%.2f\r\nscoring_batch_rows_max:%llu\r\n"
                 "scoring_split_batches:%llu\r\nscoring_first_pass:%s\r\n",
                 (unsigned long long)bs.jobs, (unsigned long long)bs.rows,
                 bs.jobs ? (double)bs.rows / (double)bs.jobs : 0.0,
                 (unsigned long long)bs.max_rows_seen, (unsigned long long)bs.split_jobs,
                 s->model->have_q && qscore_isa_default() != QSCORE_SCALAR ? "int8-avx2"
                                                                           : "float-blas");
    for (size_t i = 0; i < CMD_COUNT; i++) {
      const cmd_stats_t *st = &cmd_table[i].st;
      if (st->calls == 0)
        continue;
      info__printf(&o, "cmdstat_%s:calls=%llu,failed=%llu,usec_per_call=%.2f,p50_usec=%llu,"
                   "p99_usec=%llu,p999_usec=%llu,max_usec=%llu\r\n",
                   cmd_table[i].name, (unsigned long long)st->calls,
                   (unsigned long long)st->errors, (double)st->latency.sum_us / st->calls,
                   (unsigned long long)stats_hist_quantile(&st->latency, 0.5),
                   (unsigned long long)stats_hist_quantile(&st->latency, 0.99),
                   (unsigned long long)stats_hist_quantile(&st->latency, 0.999),
                   (unsigned long long)st->latency.max_us);
    }
    info__printf(&o, "\r\n");
  }
  if (info__want(section, "redis")) {
    rclient_stats_t rs;
    rclient_get_stats(s->redis, &rs);
    info__printf(&o, "# Redis\r\nredis_connected:%d\r\nredis_connects:%llu\r\n"
                 "redis_disconnects:%llu\r\nredis_errors:%llu\r\nredis_anomalies:%llu\r\n"
                 "redis_last_error:%s\r\ndegraded_answers:%llu\r\n\r\n",
                 rs.connected, (unsigned long long)rs.connects,
                 (unsigned long long)rs.disconnects, (unsigned long long)rs.errors,
                 (unsigned long long)rs.anomalies, rs.last_error,
                 (unsigned long long)s->degraded);
  }
  int rc = o.oom ? RECD_ENOMEM : reply_bulk(out, o.buf ? o.buf : "", o.len);
  free(o.buf);
  return rc;
}
