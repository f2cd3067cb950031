/* rclient.c - asynchronous Redis client on the daemon's libuv loop.
 *
 * Ownership rules that the whole file relies on (hiredis 0.14 async.c):
 *
 * - A redisAsyncContext is freed by hiredis itself after an I/O error, EOF
 *   or failed connect; before the memory goes it fires every pending reply
 *   callback with a NULL reply, then onDisconnect (only if the connection
 *   had been established). onConnect(REDIS_ERR) is the last word on a
 *   connect that failed.
 * - redisAsyncFree() from inside a reply callback only sets REDIS_FREEING;
 *   hiredis frees once the callback returns. From inside onConnect or
 *   onDisconnect it is NOT safe (hiredis keeps using the context), so those
 *   two callbacks never free: a failure there is turned into a zero-delay
 *   state timer that drops the connection on the next loop turn.
 * - c->ac is the connection we own. It is set to NULL as soon as we learn
 *   the context is going away (first NULL reply, onDisconnect, a failed
 *   onConnect, or our own drop), before any user callback runs; every later
 *   notification about that context sees c->ac != ac and is ignored. New
 *   requests therefore never reach a dying context.
 * - The rclient_t itself is freed only in the close callback of our last
 *   libuv handle, which runs on a later loop turn than the redisAsyncFree()
 *   of rclient_close(): no hiredis callback chain can still reference it.
 */
#include "rclient.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "rattach.h"
#include "rreply.h"
#include "rcluster.h"
#include "recd/cluster_slot.h"
#include "recd/rng.h"

/* Longest key we build: prefix + "unavailable" or "hist:"/"pref:" + id. */
#define RCLIENT__KEY_MAX RECD_KEY_MAX

enum { RCLIENT__FETCH = 1, RCLIENT__FEEDBACK = 2, RCLIENT__CALL = 3 };

/* Strings copied out of a reply (hiredis frees a reply when its callback
 * returns, and a fetch completes on its last reply): one block holding the
 * pointer and length arrays, then the bytes. */
typedef struct rclient__strs {
  size_t n;
  const char **s;
  size_t *len;
} rclient__strs_t;

/* One request from the daemon, alive from the issuing call until its
 * callback has returned. */
typedef struct rclient__req {
  struct rclient__req *next;  /* link in the deferred-completion queue */
  rclient_t *c;
  int kind;                   /* RCLIENT__FETCH or RCLIENT__FEEDBACK */
  int sent;                   /* commands queued in hiredis (fetch: 3 to 5
                                 by its flags, fewer when queueing one
                                 failed) */
  int got;                    /* hiredis callbacks received so far */
  rclient_status_t status;    /* worst outcome seen so far */
  char errstr[RCLIENT_ERRLEN];/* why, when status != RCLIENT_OK */
  union {
    rclient_user_cb user;
    rclient_feedback_cb feedback;
    rclient_call_cb call;
  } cb;
  void *arg;
  /* Fetch only: the preferences, parsed from the HGETALL reply (hiredis
   * frees each reply when its callback returns, and the history reply comes
   * second), kept until the history reply completes the request. */
  int personalize;
  size_t anomalies;
  char pref_bad[2 * 32 * 4 + 8]; /* the first unusable pref entry, "" = none */
  size_t cats_n;
  rclient_cat_t *cats;        /* one block: array, then the names */
  unsigned flags;             /* RCLIENT_FETCH_* */
  rclient__strs_t hidden;     /* SMEMBERS hidden:<user>, copied */
  rclient__strs_t imp;        /* HGETALL imp:<user> (flag), copied pairs */
  size_t times_n;             /* ZRANGE time:<user> (flag), copied and */
  rclient_time_t *times;      /* sorted by id: one block, then the ids */
  /* Cluster mode: each fetch command is routed on its own (its reply
   * callback's priv is its part), and the history reply, which may come
   * before the others, is kept as a copy until the last one. */
  struct rclient__part {
    struct rclient__req *r;
    int part;
  } parts[5];
  struct redisReply *hist_copy;
} rclient__req_t;

struct rclient {
  uv_loop_t *loop;
  redisAsyncContext *ac;      /* our connection; NULL when none or dying */
  rclient_state_t state;
  int closing;                /* rclient_close() was called */
  int refresh_inflight[RCLIENT_SET_COUNT]; /* an SMEMBERS of that set is
                                             outstanding */
  int drop_requested;         /* the zero-delay state timer is a drop asked
                                 for where freeing was unsafe, not a timeout */
  unsigned attempt;           /* connections lost or failed since the
                                 last one that answered (rclient__answered) */

  /* options (strings point into the same allocation as the struct) */
  const char *host;
  int port;
  const char *socket;         /* NULL = TCP */
  const char *password;       /* NULL = no AUTH */
  const char *user;           /* Redis 6 ACL user: AUTH user password; NULL = none */
  const char *prefix;
  size_t prefix_len;
  const char *where;          /* "host:port" or "unix:path", for logs */
  unsigned connect_timeout_ms, reconnect_min_ms, reconnect_max_ms, refresh_ms;
  unsigned max_inflight;      /* 0 = no limit */
  rclient_log_cb log;
  void *log_arg;
  rclient_unavailable_cb on_set[RCLIENT_SET_COUNT];
  void *set_arg[RCLIENT_SET_COUNT];
  rclient_state_cb on_state;  /* rclient_on_state(); NULL = none */
  void *state_arg;
  char *target_mem;           /* host and where given by rclient_set_target()
                                 (one block); NULL = rclient_new()'s */

  /* handles: one timer serves the connect timeout (CONNECTING) and the
   * backoff (DISCONNECTED), which never overlap */
  uv_timer_t state_timer;
  uv_timer_t refresh_timer;
  uv_idle_t idle;             /* drains the deferred queue next turn */
  rattach_batch_t batch;      /* writes the commands of a loop turn at once */
  int handles_open;           /* handles not yet through their close_cb */
  rclient_close_cb done;
  void *done_arg;

  rclient__req_t *deferred_head, *deferred_tail;
  rng_t rng;                  /* backoff jitter */
  rclient_stats_t stats;
  rcluster_t *cl;             /* cluster mode: the connections, until closed */
};

static void rclient__connect(rclient_t *c);
static void rclient__refresh_send(rclient_t *c);

/* ---- small helpers ---------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void rclient__log(rclient_t *c, int level, const char *fmt, ...) {
  if (c->log == NULL)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  c->log(level, buf, c->log_arg);
}

/* Records msg as the last error and logs it. A message equal to the
 * previous one (the same refused connect every backoff period) drops to
 * VERBOSE so that a long outage does not flood the log. */
__attribute__((format(printf, 2, 3)))
static void rclient__error(rclient_t *c, const char *fmt, ...) {
  char buf[RCLIENT_ERRLEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  int repeat = strcmp(buf, c->stats.last_error) == 0;
  memcpy(c->stats.last_error, buf, sizeof buf);
  rclient__log(c, repeat ? RCLIENT_LOG_VERBOSE : RCLIENT_LOG_WARNING, "redis: %s", buf);
}

static void rclient__set_state(rclient_t *c, rclient_state_t s) {
  const int changed = c->state != s;
  c->state = s;
  c->stats.state = s;
  c->stats.connected = s == RCLIENT_CONNECTED;
  if (changed && c->on_state != NULL && !c->closing)
    c->on_state(c, s, c->state_arg);
}

static int rclient__is_wrongtype(const redisReply *r) {
  return r->type == REDIS_REPLY_ERROR && r->len >= 9 && memcmp(r->str, "WRONGTYPE", 9) == 0;
}

/* Strict number parser for Redis strings: the whole string must be a
 * number, no blanks; "inf" and "nan" parse, callers check finiteness.
 * Redis never sends more than ~30 characters for a score. */
static int rclient__parse_double(const char *s, size_t len, double *out) {
  char buf[64];
  if (len == 0 || len >= sizeof buf || isspace((unsigned char)s[0]))
    return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *end;
  double d = strtod(buf, &end);
  if (end != buf + len)
    return -1;
  *out = d;
  return 0;
}

/* Builds <prefix><mid><id> into buf (RCLIENT__KEY_MAX bytes); returns the
 * length. Callers have checked idlen <= RCLIENT_ID_MAX. */
static size_t rclient__key(const rclient_t *c, char *buf, const char *kind, const char *id,
                           size_t idlen) {
  return recd_key(buf, c->prefix, c->prefix_len, kind, id, idlen);
}

static int64_t rclient__now_unix_ms(void) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0)
    return 0;
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* ---- connection state machine ---------------------------------------- */

/* Next backoff delay: exponential from reconnect_min_ms up to
 * reconnect_max_ms, with "equal jitter" (half fixed, half random) so the
 * delay still grows while many daemons restarted together do not hammer a
 * recovering Redis in lockstep. */
static uint64_t rclient__backoff(rclient_t *c) {
  uint64_t base = c->reconnect_min_ms;
  for (unsigned i = 0; i < c->attempt && base < c->reconnect_max_ms; i++)
    base *= 2;
  if (base > c->reconnect_max_ms)
    base = c->reconnect_max_ms;
  if (c->attempt < UINT_MAX)
    c->attempt++;
  uint64_t half = base / 2;
  return base - half + rng_below(&c->rng, half + 1);
}

static void rclient__reconnect_cb(uv_timer_t *t) {
  rclient_t *c = t->data;
  c->stats.reconnect_attempts++;
  rclient__connect(c);
}

/* The connection is gone (c->ac already detached by the caller): count it
 * and schedule the next attempt unless we are closing. */
static void rclient__disconnected(rclient_t *c) {
  if (c->state == RCLIENT_CONNECTED)
    c->stats.disconnects++;
  rclient__set_state(c, RCLIENT_DISCONNECTED);
  uv_timer_stop(&c->state_timer);
  if (c->closing)
    return;
  uint64_t delay = rclient__backoff(c);
  rclient__log(c, RCLIENT_LOG_VERBOSE, "redis: reconnecting to %s in %llu ms", c->where,
               (unsigned long long)delay);
  uv_timer_start(&c->state_timer, rclient__reconnect_cb, delay, 0);
}

/* hiredis told us (NULL reply, onDisconnect) that ac is being torn down.
 * Idempotent: only the first notification about our current context acts. */
static void rclient__lost(rclient_t *c, const redisAsyncContext *ac) {
  if (ac == NULL || c->ac != ac)
    return;
  c->ac = NULL;
  if (c->state == RCLIENT_CONNECTED)
    rclient__error(c, "lost connection to %s: %s", c->where,
                   ac->c.err ? ac->c.errstr : "closed by peer");
  else {
    c->stats.errors++;
    rclient__error(c, "connection to %s failed: %s", c->where,
                   ac->c.err ? ac->c.errstr : "closed by peer");
  }
  rclient__disconnected(c);
}

/* Drops our current connection on our own initiative (timeout, AUTH
 * failure). Only from a timer callback or a reply callback: in the latter
 * hiredis defers the free until the callback returns. */
static void rclient__drop(rclient_t *c) {
  redisAsyncContext *ac = c->ac;
  c->ac = NULL;
  rclient__disconnected(c);
  if (ac != NULL)
    redisAsyncFree(ac);
}

/* A reply came (not AUTH's): only now does the backoff start again from
 * reconnect_min_ms. Resetting it on connect let a server that accepts
 * connections but breaks every one with its first reply (a reply hiredis
 * cannot read, rreply.h's limit) be reconnected every 50-100 ms, each time
 * logged, forever. */
static void rclient__answered(rclient_t *c) {
  c->attempt = 0;
}

static void rclient__connected(rclient_t *c) {
  uv_timer_stop(&c->state_timer);
  rclient__set_state(c, RCLIENT_CONNECTED);
  c->stats.connects++;
  rclient__log(c, RCLIENT_LOG_NOTICE, "redis: connected to %s", c->where);
  /* A restarted Redis may hold a different set: read it now, then every
   * refresh_ms from here. */
  rclient__refresh_send(c);
  uv_timer_again(&c->refresh_timer);
}

/* CONNECTING took too long (or a zero-delay drop was requested from a
 * callback where freeing is unsafe). */
static void rclient__timeout_cb(uv_timer_t *t) {
  rclient_t *c = t->data;
  int requested = c->drop_requested;
  c->drop_requested = 0;
  if (c->state != RCLIENT_CONNECTING || c->ac == NULL)
    return;
  if (!requested) {
    c->stats.errors++;
    rclient__error(c, "connecting to %s timed out after %u ms", c->where, c->connect_timeout_ms);
  }
  rclient__drop(c);
}

static void rclient__auth_cb(redisAsyncContext *ac, void *reply, void *priv) {
  rclient_t *c = ac->data;
  const redisReply *r = reply;
  (void)priv;
  if (r == NULL) {
    rclient__lost(c, ac);
    return;
  }
  if (c->ac != ac)
    return;
  if (r->type == REDIS_REPLY_ERROR) {
    c->stats.errors++;
    rclient__error(c, "AUTH to %s failed: %.*s", c->where, (int)(r->len > 256 ? 256 : r->len),
                   r->str);
    rclient__drop(c);
    return;
  }
  rclient__connected(c);
}

/* First writable event: the TCP/Unix connect finished one way or the
 * other. hiredis frees the context after a failure and keeps using it
 * after success, so nothing here may free it. */
static void rclient__on_connect(const redisAsyncContext *cac, int status) {
  rclient_t *c = cac->data;
  if (c->ac != cac)
    return;
  redisAsyncContext *ac = c->ac;
  if (status != REDIS_OK) {
    rclient__lost(c, cac);
    return;
  }
  if (c->password == NULL && c->user == NULL) {
    rclient__connected(c);
    return;
  }
  /* AUTH goes first on the wire; the daemon's commands wait for its reply
   * because the state stays CONNECTING until then. With a user, Redis 6's
   * AUTH user password (a nopass user takes any password, "" included). */
  const char *pass = c->password != NULL ? c->password : "";
  const char *argv[3] = {"AUTH", c->user != NULL ? c->user : pass, pass};
  size_t lens[3] = {4, strlen(argv[1]), strlen(pass)};
  if (redisAsyncCommandArgv(ac, rclient__auth_cb, NULL, c->user != NULL ? 3 : 2, argv, lens) !=
      REDIS_OK) {
    c->stats.errors++;
    rclient__error(c, "cannot queue AUTH to %s: out of memory", c->where);
    c->drop_requested = 1;
    uv_timer_start(&c->state_timer, rclient__timeout_cb, 0, 0);
    return;
  }
  c->stats.commands_sent++;
}

static void rclient__on_disconnect(const redisAsyncContext *ac, int status) {
  (void)status;
  rclient__lost(ac->data, ac);
}

/* A failed attempt that never produced a usable context. */
__attribute__((format(printf, 2, 3)))
static void rclient__attempt_failed(rclient_t *c, const char *fmt, ...) {
  char buf[RCLIENT_ERRLEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  c->stats.errors++;
  rclient__error(c, "connection to %s failed: %s", c->where, buf);
  rclient__disconnected(c);
}

static void rclient__connect(rclient_t *c) {
  rclient__set_state(c, RCLIENT_CONNECTING);
  redisAsyncContext *ac =
      c->socket ? redisAsyncConnectUnix(c->socket) : redisAsyncConnect(c->host, c->port);
  if (ac == NULL) {
    rclient__attempt_failed(c, "out of memory");
    return;
  }
  if (ac->err) {
    /* Refused at once (a Unix socket that is not there, a loopback port
     * with no listener): no hooks are attached yet, plain free is safe. */
    rclient__attempt_failed(c, "%s", ac->c.errstr);
    redisAsyncFree(ac);
    return;
  }
  /* rattach.h: the adapter with its POLLERR handling fixed, so that a
   * refused connect or a reset connection reaches hiredis; and the commands
   * of a loop turn go out in one write at its end, with no epoll_ctl per
   * command (a request of the daemon sends several). */
  if (rattach_libuv_batched(ac, c->loop, &c->batch) != 0) {
    redisAsyncFree(ac);
    rclient__attempt_failed(c, "cannot attach to the event loop");
    return;
  }
  /* rreply.h: a customer's history is one arena, not an object and a
   * string per element. */
  rreply_use(&ac->c);
  ac->data = c;
  c->ac = ac;
  /* Setting the connect callback starts polling for writability. */
  redisAsyncSetConnectCallback(ac, rclient__on_connect);
  redisAsyncSetDisconnectCallback(ac, rclient__on_disconnect);
  uv_timer_start(&c->state_timer, rclient__timeout_cb, c->connect_timeout_ms, 0);
}

/* ---- the unavailable set --------------------------------------------- */

/* The Redis key of each watched set (after the prefix). */
static const char *const rclient__set_key[RCLIENT_SET_COUNT] = {RECD_KEY_UNAVAILABLE,
                                                                RECD_KEY_PROMOTED};

/* A watched set's SMEMBERS reply (never NULL). */
static void rclient__refresh_apply(rclient_t *c, rclient_set_t set, const redisReply *r) {
  const char *name = rclient__set_key[set];
  if (r->type == REDIS_REPLY_ERROR) {
    if (rclient__is_wrongtype(r))
      c->stats.anomalies++;
    else
      c->stats.errors++;
    rclient__error(c, "SMEMBERS %s%s: %.*s (keeping the previous set)", c->prefix, name,
                   (int)(r->len > 256 ? 256 : r->len), r->str);
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY) {
    c->stats.anomalies++;
    rclient__error(c, "SMEMBERS %s%s: unexpected reply type %d", c->prefix, name, r->type);
    return;
  }
  const char **ids = NULL;
  size_t *lens = NULL;
  size_t n = 0;
  if (r->elements > 0) {
    /* One block for both arrays: pointers first keeps size_t aligned. */
    ids = malloc(r->elements * (sizeof *ids + sizeof *lens));
    if (ids == NULL) {
      c->stats.errors++;
      rclient__error(c, "SMEMBERS %s%s: out of memory (keeping the previous set)", c->prefix,
                     name);
      return;
    }
    lens = (size_t *)(ids + r->elements);
  }
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_STRING || e->len > RCLIENT_ID_MAX) {
      c->stats.anomalies++;
      continue;
    }
    ids[n] = e->str;
    lens[n] = e->len;
    n++;
  }
  if (set == RCLIENT_SET_UNAVAILABLE) {
    c->stats.unavailable_refreshes++;
    c->stats.last_refresh_unix_ms = rclient__now_unix_ms();
    c->stats.unavailable_count = n;
  } else {
    c->stats.promoted_count = n;
  }
  if (c->on_set[set] != NULL && !c->closing)
    c->on_set[set](ids, lens, n, c->set_arg[set]);
  free(ids);
}

static void rclient__refresh_cb(redisAsyncContext *ac, void *reply, void *priv) {
  rclient_t *c = ac->data;
  const rclient_set_t set = (rclient_set_t)(uintptr_t)priv;
  c->refresh_inflight[set] = 0;
  if (reply == NULL) {
    rclient__lost(c, ac);
    return;
  }
  rclient__answered(c);
  rclient__refresh_apply(c, set, reply);
}

/* Cluster mode: the set's key routed to its master. */
typedef struct rclient__set_read {
  rclient_t *c;
  rclient_set_t set;
} rclient__set_read_t;

static void rclient__cl_refresh_cb(rcluster_t *cl, rclient_status_t st, const redisReply *rep,
                                   const char *errstr, void *priv) {
  (void)cl;
  rclient__set_read_t *x = priv;
  rclient_t *c = x->c;
  const rclient_set_t set = x->set;
  free(x);
  c->refresh_inflight[set] = 0;
  if (st == RCLIENT_OK)
    rclient__refresh_apply(c, set, rep);
  else if (!c->closing)
    rclient__error(c, "SMEMBERS %s%s: %s (keeping the previous set)", c->prefix,
                   rclient__set_key[set], errstr ? errstr : "");
}

/* SMEMBERS of every watched set (the unavailable set always: INFO reports
 * its refreshes), at most one read of each in flight. */
static void rclient__refresh_send(rclient_t *c) {
  if (c->cl != NULL && !c->closing) {
    rcluster_stats_t cs;
    rcluster_get_stats(c->cl, &cs);
    if (cs.refreshes == 0)
      return; /* no slot map yet: nowhere to send it */
    for (int set = 0; set < RCLIENT_SET_COUNT; set++) {
      if (c->refresh_inflight[set] || (set != RCLIENT_SET_UNAVAILABLE && c->on_set[set] == NULL))
        continue;
      char key[RCLIENT__KEY_MAX];
      const char *argv[2] = {"SMEMBERS", key};
      size_t lens[2] = {8, rclient__key(c, key, rclient__set_key[set], NULL, 0)};
      rclient__set_read_t *x = malloc(sizeof *x);
      if (x != NULL)
        *x = (rclient__set_read_t){c, (rclient_set_t)set};
      if (x == NULL || rcluster_command(c->cl, 2, argv, lens, rclient__cl_refresh_cb, x) != 0) {
        free(x);
        c->stats.errors++;
        rclient__error(c, "cannot queue SMEMBERS: out of memory");
        return;
      }
      c->refresh_inflight[set] = 1;
    }
    return;
  }
  if (c->state != RCLIENT_CONNECTED || c->closing)
    return;
  for (int set = 0; set < RCLIENT_SET_COUNT; set++) {
    if (c->refresh_inflight[set] || (set != RCLIENT_SET_UNAVAILABLE && c->on_set[set] == NULL))
      continue;
    char key[RCLIENT__KEY_MAX];
    const char *argv[2] = {"SMEMBERS", key};
    size_t lens[2] = {8, rclient__key(c, key, rclient__set_key[set], NULL, 0)};
    if (redisAsyncCommandArgv(c->ac, rclient__refresh_cb, (void *)(uintptr_t)set, 2, argv,
                              lens) != REDIS_OK) {
      /* Only OOM gets here while CONNECTED; the next tick retries. */
      c->stats.errors++;
      rclient__error(c, "cannot queue SMEMBERS: out of memory");
      return;
    }
    c->refresh_inflight[set] = 1;
    c->stats.commands_sent++;
  }
}

static void rclient__refresh_tick(uv_timer_t *t) {
  rclient__refresh_send(t->data);
}

/* ---- requests --------------------------------------------------------- */

static void rclient__req_fail(rclient__req_t *r, rclient_status_t st, const char *msg) {
  /* UNAVAILABLE wins over ERROR: the connection is gone either way. */
  if (r->status == RCLIENT_OK || st == RCLIENT_UNAVAILABLE) {
    if (r->status != RCLIENT_UNAVAILABLE) {
      r->status = st;
      snprintf(r->errstr, sizeof r->errstr, "%s", msg);
    }
  }
}

static void rclient__req_fail_reply(rclient__req_t *r, const redisReply *e) {
  char msg[RCLIENT_ERRLEN];
  snprintf(msg, sizeof msg, "%.*s", (int)(e->len >= sizeof msg ? sizeof msg - 1 : e->len),
           e->str);
  r->c->stats.errors++;
  rclient__req_fail(r, RCLIENT_ERROR, msg);
}

/* Describes the first unusable preference entry (field = 'value', at most
 * 32 bytes of each, escaped) for the daemon's once-per-customer log. */
static void rclient__pref_bad(rclient__req_t *r, const redisReply *f, const redisReply *v) {
  if (r->pref_bad[0] != '\0')
    return;
  size_t o = 0;
  for (size_t j = 0; j < f->len && j < 32; j++)
    o += recd_escape_byte(r->pref_bad + o, (unsigned char)f->str[j], "'");
  memcpy(r->pref_bad + o, " = '", 4);
  o += 4;
  for (size_t j = 0; j < v->len && j < 32; j++)
    o += recd_escape_byte(r->pref_bad + o, (unsigned char)v->str[j], "'");
  r->pref_bad[o++] = '\'';
  r->pref_bad[o] = '\0';
}

/* Whether a fetch reply is the array it should be. Otherwise it is
 * counted: WRONGTYPE or another type is an anomaly (the storefront wrote
 * something else under our key), any other error fails the request. */
static int rclient__is_array(rclient__req_t *r, const redisReply *rep) {
  if (rep->type == REDIS_REPLY_ARRAY)
    return 1;
  if (rep->type == REDIS_REPLY_ERROR && !rclient__is_wrongtype(rep))
    rclient__req_fail_reply(r, rep);
  else
    r->anomalies++;
  return 0;
}

/* Parses the HGETALL reply into r (copying what must outlive the reply). */
static void rclient__parse_prefs(rclient__req_t *r, const redisReply *rep) {
  rclient_t *c = r->c;
  if (!rclient__is_array(r, rep))
    return;
  size_t npairs = rep->elements / 2, bytes = 0;
  if (rep->elements % 2)
    r->anomalies++;
  for (size_t i = 0; i < npairs; i++) {
    const redisReply *f = rep->element[2 * i];
    if (f->type == REDIS_REPLY_STRING && f->len > 4 && memcmp(f->str, RECD_PREF_CATEGORY_PREFIX, 4) == 0)
      bytes += f->len - 4;
  }
  if (bytes > 0) {
    r->cats = malloc(npairs * sizeof *r->cats + bytes);
    if (r->cats == NULL) {
      c->stats.errors++;
      rclient__req_fail(r, RCLIENT_ERROR, "out of memory");
      return;
    }
  }
  /* Only touched when r->cats holds at least one name byte. */
  char *names = r->cats != NULL ? (char *)(r->cats + npairs) : NULL;
  for (size_t i = 0; i < npairs; i++) {
    const redisReply *f = rep->element[2 * i], *v = rep->element[2 * i + 1];
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
      r->anomalies++;
      continue;
    }
    if (f->len == 11 && memcmp(f->str, RECD_PREF_PERSONALIZE, 11) == 0) {
      if (v->len == 1 && v->str[0] == '0')
        r->personalize = 0;
      else if (!(v->len == 1 && v->str[0] == '1')) {
        r->anomalies++; /* stays personalized: only "0" opts out */
        rclient__pref_bad(r, f, v);
      }
      continue;
    }
    if (f->len < 4 || memcmp(f->str, RECD_PREF_CATEGORY_PREFIX, 4) != 0)
      continue; /* other fields are for other readers */
    size_t nl = f->len - 4;
    double d;
    if (nl == 0 || nl > RCLIENT_ID_MAX || rclient__parse_double(v->str, v->len, &d) != 0 ||
        !isfinite(d) || d < -1.0 || d > 1.0) {
      r->anomalies++;
      rclient__pref_bad(r, f, v);
      continue;
    }
    memcpy(names, f->str + 4, nl);
    r->cats[r->cats_n].name = names;
    r->cats[r->cats_n].len = nl;
    r->cats[r->cats_n].value = (float)d;
    r->cats_n++;
    names += nl;
  }
}

/* Copies the strings of an array reply (SMEMBERS, or HGETALL's fields and
 * values when pairs) into *out: ids longer than RCLIENT_ID_MAX, non-string
 * elements and values over RCLIENT__VAL_MAX are skipped as anomalies. An
 * error reply fails the request unless it is WRONGTYPE (an anomaly: the
 * storefront wrote something else under our key). */
#define RCLIENT__VAL_MAX 1024
static void rclient__copy_strs(rclient__req_t *r, const redisReply *rep, int pairs,
                               rclient__strs_t *out) {
  if (!rclient__is_array(r, rep))
    return;
  const size_t step = pairs ? 2 : 1;
  if (pairs && rep->elements % 2)
    r->anomalies++;
  const size_t cap = rep->elements / step * step;
  size_t bytes = 0;
  for (size_t i = 0; i < cap; i++)
    if (rep->element[i]->type == REDIS_REPLY_STRING)
      bytes += rep->element[i]->len;
  if (cap == 0)
    return;
  char *block = malloc(cap * (sizeof(char *) + sizeof(size_t)) + bytes);
  if (block == NULL) {
    r->c->stats.errors++;
    rclient__req_fail(r, RCLIENT_ERROR, "out of memory");
    return;
  }
  out->s = (const char **)(void *)block;
  out->len = (size_t *)(void *)(out->s + cap);
  char *bytes_at = (char *)(out->len + cap);
  out->n = 0;
  for (size_t i = 0; i < cap; i += step) {
    int ok = 1;
    for (size_t j = 0; j < step; j++) {
      const redisReply *e = rep->element[i + j];
      if (e->type != REDIS_REPLY_STRING || e->len > (j == 0 ? RCLIENT_ID_MAX : RCLIENT__VAL_MAX))
        ok = 0;
    }
    if (!ok) {
      r->anomalies++;
      continue;
    }
    for (size_t j = 0; j < step; j++) {
      const redisReply *e = rep->element[i + j];
      memcpy(bytes_at, e->str, e->len);
      out->s[out->n] = bytes_at;
      out->len[out->n] = e->len;
      out->n++;
      bytes_at += e->len;
    }
  }
}

/* Order of rclient_time_t by id: length, then bytes (any total order
 * serves the lookup). */
static int rclient__time_cmp(const void *a, const void *b) {
  const rclient_time_t *x = a, *y = b;
  if (x->len != y->len)
    return x->len < y->len ? -1 : 1;
  return x->len == 0 ? 0 : memcmp(x->id, y->id, x->len);
}

/* Largest time accepted: 2^53, up to which every integer is a double, so
 * that a score Redis formats is the exact second that was written. */
#define RCLIENT__TIME_MAX 9007199254740992.0

/* Parses the ZRANGE time:<user> WITHSCORES reply into r->times, sorted by
 * id for the history's lookup. An id longer than RCLIENT_ID_MAX or a score
 * that is no time (not an integer in [0, 2^53]: fractional, negative, inf,
 * nan) is skipped as an anomaly; its item is then untimed, which keeps its
 * weight. Errors as rclient__copy_strs. */
static void rclient__parse_times(rclient__req_t *r, const redisReply *rep) {
  if (!rclient__is_array(r, rep))
    return;
  const size_t npairs = rep->elements / 2;
  if (rep->elements % 2)
    r->anomalies++;
  size_t bytes = 0;
  for (size_t i = 0; i < npairs; i++)
    if (rep->element[2 * i]->type == REDIS_REPLY_STRING)
      bytes += rep->element[2 * i]->len;
  if (npairs == 0)
    return;
  r->times = malloc(npairs * sizeof *r->times + bytes);
  if (r->times == NULL) {
    r->c->stats.errors++;
    rclient__req_fail(r, RCLIENT_ERROR, "out of memory");
    return;
  }
  char *ids = (char *)(r->times + npairs);
  for (size_t i = 0; i < npairs; i++) {
    const redisReply *m = rep->element[2 * i], *sc = rep->element[2 * i + 1];
    double d;
    if (m->type != REDIS_REPLY_STRING || m->len > RCLIENT_ID_MAX ||
        sc->type != REDIS_REPLY_STRING || rclient__parse_double(sc->str, sc->len, &d) != 0 ||
        !(d >= 0.0 && d <= RCLIENT__TIME_MAX) || d != floor(d)) {
      r->anomalies++;
      continue;
    }
    memcpy(ids, m->str, m->len);
    r->times[r->times_n++] = (rclient_time_t){.id = ids, .len = m->len, .t = (int64_t)d};
    ids += m->len;
  }
  qsort(r->times, r->times_n, sizeof *r->times, rclient__time_cmp);
}

/* The time of history entry (id, len) from r->times; RCLIENT_NO_TIME when
 * it has none. */
static int64_t rclient__time_of(const rclient__req_t *r, const char *id, size_t len) {
  if (r->times_n == 0)
    return RCLIENT_NO_TIME;
  const rclient_time_t key = {.id = id, .len = len};
  const rclient_time_t *t =
      bsearch(&key, r->times, r->times_n, sizeof *r->times, rclient__time_cmp);
  return t != NULL ? t->t : RCLIENT_NO_TIME;
}

/* Completes a fetch: parses the history reply (borrowed, alive during this
 * call only) when there is one, fires the callback, frees everything. */
static void rclient__finish_fetch(rclient__req_t *r, const redisReply *hist) {
  rclient_t *c = r->c;
  rclient_user_t res;
  memset(&res, 0, sizeof res);
  void *block = NULL;
  if (r->status == RCLIENT_OK && hist != NULL) {
    if (hist->type == REDIS_REPLY_ERROR) {
      if (rclient__is_wrongtype(hist))
        r->anomalies++;
      else
        rclient__req_fail_reply(r, hist);
    } else if (hist->type != REDIS_REPLY_ARRAY) {
      r->anomalies++;
    } else {
      size_t npairs = hist->elements / 2;
      if (hist->elements % 2)
        r->anomalies++;
      /* the history's times (flag) first: int64_t is the widest */
      const size_t tsz = (r->flags & RCLIENT_FETCH_TIMES) ? sizeof(int64_t) : 0;
      if (npairs > 0)
        block = malloc(npairs * (tsz + sizeof(char *) + sizeof(size_t) + sizeof(float)));
      if (npairs > 0 && block == NULL) {
        c->stats.errors++;
        rclient__req_fail(r, RCLIENT_ERROR, "out of memory");
      } else if (block != NULL) {
        int64_t *ht = tsz ? block : NULL;
        const char **ids = (const char **)(void *)((char *)block + npairs * tsz);
        size_t *lens = (size_t *)(ids + npairs);
        float *w = (float *)(lens + npairs);
        size_t n = 0;
        for (size_t i = 0; i < npairs; i++) {
          const redisReply *m = hist->element[2 * i], *s = hist->element[2 * i + 1];
          double d;
          /* float must stay finite and > 0 too: the fold-in's contract. */
          if (m->type != REDIS_REPLY_STRING || m->len > RCLIENT_ID_MAX ||
              s->type != REDIS_REPLY_STRING || rclient__parse_double(s->str, s->len, &d) != 0 ||
              !isfinite(d) || d <= 0.0 || !isfinite((float)d) || (float)d <= 0.0f) {
            r->anomalies++;
            continue;
          }
          ids[n] = m->str;
          lens[n] = m->len;
          w[n] = (float)d;
          if (ht != NULL)
            ht[n] = rclient__time_of(r, m->str, m->len);
          n++;
        }
        res.hist_n = n;
        res.hist_ids = ids;
        res.hist_lens = lens;
        res.hist_weights = w;
        res.hist_times = ht;
      }
    }
  }
  c->stats.anomalies += r->anomalies;
  res.status = r->status;
  res.anomalies = r->anomalies;
  res.personalize = 1;
  if (r->status == RCLIENT_OK) {
    res.personalize = r->personalize;
    res.cats_n = r->cats_n;
    res.cats = r->cats;
    res.pref_bad = r->pref_bad[0] != '\0' ? r->pref_bad : NULL;
    res.hidden_n = r->hidden.n;
    res.hidden_ids = r->hidden.s;
    res.hidden_lens = r->hidden.len;
    res.imp_n = r->imp.n / 2;
    res.imp = r->imp.s;
    res.imp_lens = r->imp.len;
    res.times_n = r->times_n;
    res.times = r->times_n > 0 ? r->times : NULL;
  } else {
    res.hist_n = 0;
    res.hist_ids = NULL;
    res.hist_lens = NULL;
    res.hist_weights = NULL;
    res.hist_times = NULL;
    res.errstr = r->errstr;
  }
  r->cb.user(c, &res, r->arg);
  free(block);
  free(r->cats);
  free((void *)r->hidden.s);
  free((void *)r->imp.s);
  free(r->times);
  free(r);
}

static void rclient__finish_feedback(rclient__req_t *r, const redisReply *rep) {
  double score = 0.0;
  if (r->status == RCLIENT_OK && rep != NULL) {
    if (rep->type == REDIS_REPLY_ERROR)
      rclient__req_fail_reply(r, rep);
    else if (rep->type != REDIS_REPLY_STRING ||
             rclient__parse_double(rep->str, rep->len, &score) != 0) {
      r->c->stats.errors++;
      rclient__req_fail(r, RCLIENT_ERROR, "unexpected reply to ZINCRBY");
    }
  }
  if (r->status != RCLIENT_OK)
    score = 0.0;
  r->cb.feedback(r->c, r->status, score, r->status == RCLIENT_OK ? NULL : r->errstr, r->arg);
  free(r);
}

static void rclient__finish_call(rclient__req_t *r, const redisReply *rep) {
  if (r->status == RCLIENT_OK && rep != NULL && rep->type == REDIS_REPLY_ERROR)
    rclient__req_fail_reply(r, rep);
  if (r->cb.call != NULL)
    r->cb.call(r->c, r->status, r->status == RCLIENT_OK ? rep : NULL,
               r->status == RCLIENT_OK ? NULL : r->errstr, r->arg);
  free(r);
}

static void rclient__finish(rclient__req_t *r, const redisReply *rep) {
  if (r->sent > 0)
    r->c->stats.inflight--;
  if (r->kind == RCLIENT__FETCH)
    rclient__finish_fetch(r, rep);
  else if (r->kind == RCLIENT__FEEDBACK)
    rclient__finish_feedback(r, rep);
  else
    rclient__finish_call(r, rep);
}

/* A fetch's commands, in the order they are sent and answered. */
enum {
  RCLIENT__F_PREF = 0,
  RCLIENT__F_HIDDEN = 1,
  RCLIENT__F_IMP = 2,
  RCLIENT__F_TIME = 3,
  RCLIENT__F_HIST = 4
};

/* The fetch command answering reply number idx of r: the optional parts
 * are sent only with their flag. */
static int rclient__fetch_part(const rclient__req_t *r, int idx) {
  static const unsigned flag[RCLIENT__F_HIST] = {0, 0, RCLIENT_FETCH_IMPRESSIONS,
                                                 RCLIENT_FETCH_TIMES};
  for (int part = 0; part < RCLIENT__F_HIST; part++)
    if ((flag[part] == 0 || (r->flags & flag[part])) && idx-- == 0)
      return part;
  return RCLIENT__F_HIST;
}

/* One hiredis reply for r arrived (or NULL: the connection is going).
 * Replies come in command order: a fetch's first replies are copied into
 * r, its last (ZREVRANGE) is borrowed while the callback runs; the request
 * completes on the last reply of what was actually queued. */
static void rclient__reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  rclient__req_t *r = priv;
  const redisReply *rep = reply;
  int idx = r->got++;
  const int part = r->kind == RCLIENT__FETCH ? rclient__fetch_part(r, idx) : -1;
  if (rep == NULL) {
    rclient__lost(r->c, ac);
    rclient__req_fail(r, RCLIENT_UNAVAILABLE, "connection to Redis lost");
  } else {
    rclient__answered(r->c);
    if (part == RCLIENT__F_PREF)
      rclient__parse_prefs(r, rep);
    else if (part == RCLIENT__F_HIDDEN && r->status == RCLIENT_OK)
      rclient__copy_strs(r, rep, 0, &r->hidden);
    else if (part == RCLIENT__F_IMP && r->status == RCLIENT_OK)
      rclient__copy_strs(r, rep, 1, &r->imp);
    else if (part == RCLIENT__F_TIME && r->status == RCLIENT_OK)
      rclient__parse_times(r, rep);
  }
  if (r->got == r->sent)
    rclient__finish(r, part == RCLIENT__F_HIST || part < 0 ? rep : NULL);
}

static void rclient__idle_cb(uv_idle_t *h);

/* Queues r for completion with st on the next loop turn. */
static void rclient__defer(rclient_t *c, rclient__req_t *r, rclient_status_t st,
                           const char *msg) {
  rclient__req_fail(r, st, msg);
  r->next = NULL;
  if (c->deferred_tail)
    c->deferred_tail->next = r;
  else
    c->deferred_head = r;
  c->deferred_tail = r;
  uv_idle_start(&c->idle, rclient__idle_cb);
}

static rclient__req_t *rclient__req_new(rclient_t *c, int kind, void *arg) {
  rclient__req_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  r->c = c;
  r->kind = kind;
  r->arg = arg;
  r->personalize = 1;
  return r;
}

/* ---- cluster mode (rcluster.h) ---------------------------------------- */

/* The max_inflight guard: 1 when r may go, else r is deferred. */
static int rclient__cl_admit(rclient_t *c, rclient__req_t *r) {
  if (c->max_inflight > 0 && c->stats.inflight >= c->max_inflight) {
    c->stats.rejected++;
    rclient__defer(c, r, RCLIENT_UNAVAILABLE, "too many requests waiting for Redis");
    return 0;
  }
  return 1;
}

/* The one command of a call or a FEEDBACK came back. */
static void rclient__cl_one_cb(rcluster_t *cl, rclient_status_t st, const redisReply *rep,
                               const char *errstr, void *priv) {
  (void)cl;
  rclient__req_t *r = priv;
  r->got++;
  if (st != RCLIENT_OK)
    rclient__req_fail(r, st, errstr ? errstr : "Redis unavailable");
  rclient__finish(r, st == RCLIENT_OK ? rep : NULL);
}

/* One fetch command came back, in any order: the parts are parsed as in
 * rclient__reply_cb, the history copied unless it is the last. */
static void rclient__cl_part_cb(rcluster_t *cl, rclient_status_t st, const redisReply *rep,
                                const char *errstr, void *priv) {
  (void)cl;
  struct rclient__part *p = priv;
  rclient__req_t *r = p->r;
  r->got++;
  if (st != RCLIENT_OK) {
    rclient__req_fail(r, st, errstr ? errstr : "Redis unavailable");
  } else if (r->status != RCLIENT_OK) {
    /* failed already: nothing more to parse */
  } else if (p->part == RCLIENT__F_PREF) {
    rclient__parse_prefs(r, rep);
  } else if (p->part == RCLIENT__F_HIDDEN) {
    rclient__copy_strs(r, rep, 0, &r->hidden);
  } else if (p->part == RCLIENT__F_IMP) {
    rclient__copy_strs(r, rep, 1, &r->imp);
  } else if (p->part == RCLIENT__F_TIME) {
    rclient__parse_times(r, rep);
  } else if (r->got < r->sent && (r->hist_copy = rcluster_reply_dup(rep)) == NULL) {
    r->c->stats.errors++;
    rclient__req_fail(r, RCLIENT_ERROR, "out of memory");
  }
  if (r->got < r->sent)
    return;
  redisReply *copy = r->hist_copy;
  const redisReply *hist = copy;
  if (hist == NULL && st == RCLIENT_OK && p->part == RCLIENT__F_HIST)
    hist = rep;
  rclient__finish(r, hist); /* frees r */
  rcluster_reply_free(copy);
}

/* The argv of fetch command `part` (its key written into key[]). */
static int rclient__fetch_argv(const rclient_t *c, int part, const char *user, size_t ulen,
                               const char *stop, char *key, const char **argv, size_t *lens) {
  static const char *const kinds[] = {RECD_KEY_PREF, RECD_KEY_HIDDEN, RECD_KEY_IMP,
                                      RECD_KEY_TIME, RECD_KEY_HIST};
  static const char *const cmds[] = {"HGETALL", "SMEMBERS", "HGETALL", "ZRANGE", "ZREVRANGE"};
  argv[0] = cmds[part];
  lens[0] = strlen(cmds[part]);
  argv[1] = key;
  lens[1] = rclient__key(c, key, kinds[part], user, ulen);
  if (part < RCLIENT__F_TIME)
    return 2;
  argv[2] = "0";
  lens[2] = 1;
  argv[3] = part == RCLIENT__F_TIME ? "-1" : stop;
  lens[3] = strlen(argv[3]);
  argv[4] = "WITHSCORES";
  lens[4] = 10;
  return 5;
}

/* A fetch in a cluster: each key to its master, all at once (one
 * pipelined write per master). 0 (sent or deferred) or RECD_ENOMEM with
 * nothing sent (r to be freed by the caller). */
static int rclient__cl_fetch(rclient_t *c, rclient__req_t *r, const char *user, size_t ulen,
                             size_t max_history) {
  if (!rclient__cl_admit(c, r))
    return 0;
  int parts[5], n = 0;
  parts[n++] = RCLIENT__F_PREF;
  parts[n++] = RCLIENT__F_HIDDEN;
  if (r->flags & RCLIENT_FETCH_IMPRESSIONS)
    parts[n++] = RCLIENT__F_IMP;
  if (r->flags & RCLIENT_FETCH_TIMES)
    parts[n++] = RCLIENT__F_TIME;
  parts[n++] = RCLIENT__F_HIST;
  char key[RCLIENT__KEY_MAX], stop[24];
  snprintf(stop, sizeof stop, "%zu", max_history - 1);
  for (int i = 0; i < n; i++) {
    const char *argv[5];
    size_t lens[5];
    const int argc = rclient__fetch_argv(c, parts[i], user, ulen, stop, key, argv, lens);
    r->parts[i].r = r;
    r->parts[i].part = parts[i];
    if (rcluster_command(c->cl, argc, argv, lens, rclient__cl_part_cb, &r->parts[i]) != 0) {
      if (r->sent == 0)
        return RECD_ENOMEM;
      /* the parts sent complete r; it fails */
      c->stats.errors++;
      rclient__req_fail(r, RCLIENT_ERROR, "out of memory");
      break;
    }
    if (r->sent++ == 0)
      c->stats.inflight++;
  }
  return 0;
}

static void rclient__cl_health(int healthy, void *arg) {
  rclient_t *c = arg;
  if (c->closing)
    return;
  rclient__set_state(c, healthy ? RCLIENT_CONNECTED : RCLIENT_DISCONNECTED);
  if (healthy) {
    /* as after a reconnect: the sets may have changed meanwhile */
    rclient__refresh_send(c);
    uv_timer_again(&c->refresh_timer);
  }
}

static void rclient__cl_error(const char *msg, void *arg) {
  rclient__error(arg, "%s", msg);
}

static void rclient__cl_closed(void *arg) {
  rclient_t *c = arg;
  c->cl = NULL;
  uv_idle_start(&c->idle, rclient__idle_cb);
}

int rclient_is_cluster(const rclient_t *c) {
  return c->stats.cluster;
}

/* Sends the first command of r. Returns 0 (sent, or deferred as
 * UNAVAILABLE) or RECD_ENOMEM (nothing happened; r must be freed). */
static int rclient__send_first(rclient_t *c, rclient__req_t *r, int argc, const char **argv,
                               const size_t *lens) {
  if (c->cl != NULL) {
    if (!rclient__cl_admit(c, r))
      return 0;
    if (rcluster_command(c->cl, argc, argv, lens, rclient__cl_one_cb, r) != 0)
      return RECD_ENOMEM;
    r->sent = 1;
    c->stats.inflight++;
    return 0;
  }
  if (c->state != RCLIENT_CONNECTED || c->ac == NULL) {
    rclient__defer(c, r, RCLIENT_UNAVAILABLE, "not connected to Redis");
    return 0;
  }
  if (c->max_inflight > 0 && c->stats.inflight >= c->max_inflight) {
    c->stats.rejected++;
    rclient__defer(c, r, RCLIENT_UNAVAILABLE, "too many requests waiting for Redis");
    return 0;
  }
  if (redisAsyncCommandArgv(c->ac, rclient__reply_cb, r, argc, argv, lens) != REDIS_OK) {
    /* hiredis returns REDIS_ERR both for OOM and for a context that is
     * shutting down; the flags tell them apart. */
    if (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) {
      rclient__defer(c, r, RCLIENT_UNAVAILABLE, "not connected to Redis");
      return 0;
    }
    return RECD_ENOMEM;
  }
  r->sent = 1;
  c->stats.inflight++;
  c->stats.commands_sent++;
  return 0;
}

int rclient_fetch_user(rclient_t *c, const char *user, size_t ulen, size_t max_history,
                       unsigned flags, rclient_user_cb cb, void *arg) {
  if (c == NULL || cb == NULL || c->closing || (user == NULL && ulen > 0) ||
      ulen > RCLIENT_ID_MAX || max_history == 0 || max_history > INT32_MAX ||
      (flags & ~(unsigned)(RCLIENT_FETCH_IMPRESSIONS | RCLIENT_FETCH_TIMES)) != 0)
    return RECD_EINVAL;
  rclient__req_t *r = rclient__req_new(c, RCLIENT__FETCH, arg);
  if (r == NULL)
    return RECD_ENOMEM;
  r->cb.user = cb;
  r->flags = flags;
  if (c->cl != NULL) {
    int err = rclient__cl_fetch(c, r, user, ulen, max_history);
    if (err != 0)
      free(r);
    return err;
  }
  char pkey[RCLIENT__KEY_MAX], key[RCLIENT__KEY_MAX], stop[24];
  const char *pargv[2] = {"HGETALL", pkey};
  size_t plens[2] = {7, rclient__key(c, pkey, RECD_KEY_PREF, user, ulen)};
  int err = rclient__send_first(c, r, 2, pargv, plens);
  if (err != 0) {
    free(r);
    return err;
  }
  if (r->sent == 0)
    return 0; /* deferred */
  /* Back to back in hiredis's output buffer: one write, one round trip.
   * Once the first is queued it owns r: a later failure marks r and the
   * last queued reply completes it. */
  const char *hargv[2] = {"SMEMBERS", key};
  size_t hlens[2] = {8, rclient__key(c, key, RECD_KEY_HIDDEN, user, ulen)};
  if (redisAsyncCommandArgv(c->ac, rclient__reply_cb, r, 2, hargv, hlens) != REDIS_OK)
    goto oom;
  r->sent++;
  c->stats.commands_sent++;
  if (flags & RCLIENT_FETCH_IMPRESSIONS) {
    const char *iargv[2] = {"HGETALL", key};
    size_t ilens[2] = {7, rclient__key(c, key, RECD_KEY_IMP, user, ulen)};
    if (redisAsyncCommandArgv(c->ac, rclient__reply_cb, r, 2, iargv, ilens) != REDIS_OK)
      goto oom;
    r->sent++;
    c->stats.commands_sent++;
  }
  if (flags & RCLIENT_FETCH_TIMES) {
    const char *targv[5] = {"ZRANGE", key, "0", "-1", "WITHSCORES"};
    size_t tlens[5] = {6, rclient__key(c, key, RECD_KEY_TIME, user, ulen), 1, 2, 10};
    if (redisAsyncCommandArgv(c->ac, rclient__reply_cb, r, 5, targv, tlens) != REDIS_OK)
      goto oom;
    r->sent++;
    c->stats.commands_sent++;
  }
  int sl = snprintf(stop, sizeof stop, "%zu", max_history - 1);
  const char *zargv[5] = {"ZREVRANGE", key, "0", stop, "WITHSCORES"};
  size_t zlens[5] = {9, rclient__key(c, key, RECD_KEY_HIST, user, ulen), 1, (size_t)sl, 10};
  if (redisAsyncCommandArgv(c->ac, rclient__reply_cb, r, 5, zargv, zlens) != REDIS_OK)
    goto oom;
  r->sent++;
  c->stats.commands_sent++;
  return 0;
oom:
  c->stats.errors++;
  rclient__req_fail(r, RCLIENT_ERROR, "out of memory");
  return 0;
}

int rclient_feedback(rclient_t *c, const char *user, size_t ulen, const char *item,
                     size_t ilen, double weight, rclient_feedback_cb cb, void *arg) {
  if (c == NULL || cb == NULL || c->closing || (user == NULL && ulen > 0) ||
      (item == NULL && ilen > 0) || ulen > RCLIENT_ID_MAX || ilen > RCLIENT_ID_MAX ||
      !isfinite(weight))
    return RECD_EINVAL;
  rclient__req_t *r = rclient__req_new(c, RCLIENT__FEEDBACK, arg);
  if (r == NULL)
    return RECD_ENOMEM;
  r->cb.feedback = cb;
  char key[RCLIENT__KEY_MAX], wbuf[32];
  /* %.17g round-trips every double exactly. */
  int wl = snprintf(wbuf, sizeof wbuf, "%.17g", weight);
  const char *argv[4] = {"ZINCRBY", key, wbuf, ilen > 0 ? item : ""};
  size_t lens[4] = {7, rclient__key(c, key, RECD_KEY_HIST, user, ulen), (size_t)wl, ilen};
  int err = rclient__send_first(c, r, 4, argv, lens);
  if (err != 0)
    free(r);
  return err;
}

int rclient_call(rclient_t *c, int argc, const char **argv, const size_t *lens,
                 rclient_call_cb cb, void *arg) {
  if (c == NULL || c->closing || argc < 1)
    return RECD_EINVAL;
  rclient__req_t *r = rclient__req_new(c, RCLIENT__CALL, arg);
  if (r == NULL)
    return RECD_ENOMEM;
  r->cb.call = cb;
  int err = rclient__send_first(c, r, argc, argv, lens);
  if (err != 0)
    free(r);
  return err;
}

size_t rclient_key(const rclient_t *c, char *buf, const char *kind, const char *id,
                   size_t idlen) {
  return rclient__key(c, buf, kind, id, idlen);
}

/* ---- lifetime --------------------------------------------------------- */

static void rclient__closed_cb(uv_handle_t *h) {
  rclient_t *c = h->data;
  if (--c->handles_open > 0)
    return;
  rclient_close_cb done = c->done;
  void *arg = c->done_arg;
  free(c->target_mem);
  free(c);
  if (done != NULL)
    done(arg);
}

/* Last close callback of the two timers and the batch: close the idle
 * handle now. Its close callback runs on the NEXT loop turn, after every
 * handle closed on this one, including hiredis's poll handle, so done()
 * really comes after all of them (libuv runs the close callbacks queued
 * during a pass on the following pass). */
static void rclient__one_closed(rclient_t *c) {
  if (--c->handles_open > 1)
    return;
  uv_close((uv_handle_t *)&c->idle, rclient__closed_cb);
}

static void rclient__timer_closed_cb(uv_handle_t *h) {
  rclient__one_closed(h->data);
}

static void rclient__batch_closed(void *arg) {
  rclient__one_closed(arg);
}

static void rclient__close_handles(rclient_t *c) {
  c->handles_open = 4;
  uv_close((uv_handle_t *)&c->state_timer, rclient__timer_closed_cb);
  uv_close((uv_handle_t *)&c->refresh_timer, rclient__timer_closed_cb);
  rattach_batch_close(&c->batch, rclient__batch_closed, c);
}

static void rclient__idle_cb(uv_idle_t *h) {
  rclient_t *c = h->data;
  rclient__req_t *r = c->deferred_head;
  c->deferred_head = c->deferred_tail = NULL;
  while (r != NULL) {
    rclient__req_t *next = r->next;
    rclient__finish(r, NULL);
    r = next;
  }
  if (c->deferred_head != NULL)
    return; /* callbacks issued new requests: next turn */
  uv_idle_stop(h);
  if (c->closing && c->handles_open == 0 && c->cl == NULL)
    rclient__close_handles(c);
}

void rclient_opts_init(rclient_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->host = "127.0.0.1";
  o->port = 6379;
  o->prefix = RECD_PREFIX_DEFAULT;
  o->connect_timeout_ms = 1000;
  o->reconnect_min_ms = 100;
  o->reconnect_max_ms = 5000;
  o->unavailable_refresh_ms = 2000;
  o->cluster_refresh_ms = 5000;
  o->max_inflight = 10000;
}

/* Appends s (or nothing for NULL) to the string area at *p. */
static const char *rclient__stash(char **p, const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s) + 1;
  char *d = *p;
  memcpy(d, s, n);
  *p += n;
  return d;
}

/* Handles initialised before a failure in rclient_new: closed, and the
 * block freed by the last close callback (they are linked into the loop,
 * so the memory cannot go before libuv lets go of them). */
static void rclient__new_unwound(void *arg) {
  rclient_t *c = arg;
  if (--c->handles_open == 0)
    free(c);
}

static void rclient__new_unwind_cb(uv_handle_t *h) {
  rclient__new_unwound(h->data);
}

int rclient_new(uv_loop_t *loop, const rclient_opts_t *o, rclient_t **out, char *errbuf) {
  if (loop == NULL || o == NULL || out == NULL)
    return recd_errf(errbuf, RECD_EINVAL, "rclient: missing argument");
  /* Cluster mode: the seeds replace host, port and socket (rcluster.h). */
  const char *seeds = o->cluster_nodes && o->cluster_nodes[0] ? o->cluster_nodes : NULL;
  rclient_opts_t cluster_o;
  if (seeds != NULL) {
    cluster_node_t *nodes;
    size_t n_nodes;
    char why[RECD_ERRLEN];
    if (cluster_parse_nodes(seeds, &nodes, &n_nodes, why) != 0)
      return recd_errf(errbuf, RECD_EINVAL, "redis-cluster-nodes: %s", why);
    free(nodes);
    if (o->cluster_refresh_ms == 0)
      return recd_errf(errbuf, RECD_EINVAL, "rclient: timeouts and periods must be > 0 ms");
    cluster_o = *o;
    cluster_o.host = "cluster";
    cluster_o.port = 6379;
    cluster_o.socket = NULL;
    cluster_o.wait_for_target = 0;
    o = &cluster_o;
  }
  const char *socket = o->socket && o->socket[0] ? o->socket : NULL;
  const char *password = o->password && o->password[0] ? o->password : NULL;
  const char *user = o->user && o->user[0] ? o->user : NULL;
  const char *host = o->host ? o->host : "";
  const char *prefix = o->prefix ? o->prefix : "";
  if (socket == NULL && host[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL, "redis-host is empty");
  if (socket == NULL && (o->port < 1 || o->port > 65535))
    return recd_errf(errbuf, RECD_EINVAL, "redis-port %d is not in 1..65535", o->port);
  if (strlen(prefix) > RCLIENT_PREFIX_MAX)
    return recd_errf(errbuf, RECD_EINVAL, "key-prefix is longer than %d bytes",
                     RCLIENT_PREFIX_MAX);
  if (o->connect_timeout_ms == 0 || o->reconnect_min_ms == 0 ||
      o->unavailable_refresh_ms == 0)
    return recd_errf(errbuf, RECD_EINVAL, "rclient: timeouts and periods must be > 0 ms");
  if (o->reconnect_max_ms < o->reconnect_min_ms)
    return recd_errf(errbuf, RECD_EINVAL, "rclient: reconnect max %u ms < min %u ms",
                     o->reconnect_max_ms, o->reconnect_min_ms);

  char where[RCLIENT_ERRLEN];
  if (socket)
    snprintf(where, sizeof where, "unix:%s", socket);
  else
    snprintf(where, sizeof where, "%s:%d", host, o->port);
  size_t strings = strlen(host) + 1 + strlen(prefix) + 1 + strlen(where) + 1 +
                   (socket ? strlen(socket) + 1 : 0) + (password ? strlen(password) + 1 : 0) +
                   (user ? strlen(user) + 1 : 0);
  rclient_t *c = calloc(1, sizeof *c + strings);
  if (c == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "rclient: out of memory");
  char *p = (char *)(c + 1);
  c->host = rclient__stash(&p, host);
  c->prefix = rclient__stash(&p, prefix);
  c->where = rclient__stash(&p, where);
  c->socket = rclient__stash(&p, socket);
  c->password = rclient__stash(&p, password);
  c->user = rclient__stash(&p, user);
  c->prefix_len = strlen(prefix);
  c->port = o->port;
  c->loop = loop;
  c->connect_timeout_ms = o->connect_timeout_ms;
  c->reconnect_min_ms = o->reconnect_min_ms;
  c->reconnect_max_ms = o->reconnect_max_ms;
  c->refresh_ms = o->unavailable_refresh_ms;
  c->max_inflight = o->max_inflight;
  c->log = o->log;
  c->log_arg = o->log_arg;
  rng_seed(&c->rng, uv_hrtime() ^ (uint64_t)(uintptr_t)c ^ ((uint64_t)getpid() << 32));

  /* libuv's timer and idle init cannot fail on Unix today; checked anyway,
   * and unwound through uv_close because an initialised handle is linked
   * into the loop. */
  uv_handle_t *hs[3] = {(uv_handle_t *)&c->state_timer, (uv_handle_t *)&c->refresh_timer,
                        (uv_handle_t *)&c->idle};
  int rc = uv_timer_init(loop, &c->state_timer);
  int inited = rc == 0;
  if (rc == 0 && (rc = uv_timer_init(loop, &c->refresh_timer)) == 0)
    inited++;
  if (rc == 0 && (rc = uv_idle_init(loop, &c->idle)) == 0)
    inited++;
  for (int i = 0; i < 3; i++)
    hs[i]->data = c;
  if (rc != 0) {
    if (inited == 0) {
      free(c);
    } else {
      c->handles_open = inited;
      for (int i = 0; i < inited; i++)
        uv_close(hs[i], rclient__new_unwind_cb);
    }
    return recd_errf(errbuf, RECD_EIO, "rclient: cannot initialise loop handles: %s",
                     uv_strerror(rc));
  }
  rattach_batch_init(&c->batch, loop);
  if (seeds != NULL) {
    rcluster_opts_t co = {.seeds = seeds,
                          .password = password,
                          .user = user,
                          .connect_timeout_ms = o->connect_timeout_ms,
                          .reconnect_min_ms = o->reconnect_min_ms,
                          .reconnect_max_ms = o->reconnect_max_ms,
                          .refresh_ms = o->cluster_refresh_ms,
                          .log = o->log,
                          .log_arg = o->log_arg,
                          .error = rclient__cl_error,
                          .health = rclient__cl_health,
                          .cb_arg = c};
    /* messages say "cluster", not the placeholder host's "cluster:6379" */
    snprintf((char *)c->where, strlen(c->where) + 1, "cluster");
    if ((rc = rcluster_new(loop, &co, &c->cl, errbuf)) != 0) {
      c->handles_open = 4;
      for (int i = 0; i < 3; i++)
        uv_close(hs[i], rclient__new_unwind_cb);
      rattach_batch_close(&c->batch, rclient__new_unwound, c);
      return rc;
    }
    c->stats.cluster = 1;
    uv_timer_start(&c->refresh_timer, rclient__refresh_tick, c->refresh_ms, c->refresh_ms);
    *out = c;
    return 0;
  }
  uv_timer_start(&c->refresh_timer, rclient__refresh_tick, c->refresh_ms, c->refresh_ms);
  if (o->wait_for_target)
    rclient__set_state(c, RCLIENT_DISCONNECTED); /* until rclient_set_target() */
  else
    rclient__connect(c);
  *out = c;
  return 0;
}

void rclient_on_set(rclient_t *c, rclient_set_t set, rclient_unavailable_cb cb, void *arg) {
  c->on_set[set] = cb;
  c->set_arg[set] = arg;
}

void rclient_on_unavailable(rclient_t *c, rclient_unavailable_cb cb, void *arg) {
  rclient_on_set(c, RCLIENT_SET_UNAVAILABLE, cb, arg);
}

void rclient_on_state(rclient_t *c, rclient_state_cb cb, void *arg) {
  c->on_state = cb;
  c->state_arg = arg;
}

int rclient_set_target(rclient_t *c, const char *host, int port, char *errbuf) {
  if (c == NULL || c->closing)
    return recd_errf(errbuf, RECD_EINVAL, "rclient: client closing");
  if (host == NULL || host[0] == '\0' || strlen(host) > 255)
    return recd_errf(errbuf, RECD_EINVAL, "rclient: target host empty or longer than 255 bytes");
  if (port < 1 || port > 65535)
    return recd_errf(errbuf, RECD_EINVAL, "rclient: target port %d is not in 1..65535", port);
  char where[256 + 8]; /* host (checked above) ':' port */
  snprintf(where, sizeof where, "%s:%d", host, port);
  const size_t hl = strlen(host) + 1, wl = strlen(where) + 1;
  char *mem = malloc(hl + wl);
  if (mem == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "rclient: out of memory");
  memcpy(mem, host, hl);
  memcpy(mem + hl, where, wl);
  /* Drop the current connection as rclient_close() does: c->ac goes first,
   * so the NULL replies of the old context are ignored by the state
   * machine and complete their requests as UNAVAILABLE; requests issued by
   * those callbacks see DISCONNECTED and are deferred the same way. */
  redisAsyncContext *ac = c->ac;
  c->ac = NULL;
  if (c->state == RCLIENT_CONNECTED)
    c->stats.disconnects++;
  rclient__set_state(c, RCLIENT_DISCONNECTED);
  uv_timer_stop(&c->state_timer);
  c->drop_requested = 0;
  c->attempt = 0;
  c->socket = NULL;
  c->host = mem;
  c->where = mem + hl;
  c->port = port;
  free(c->target_mem);
  c->target_mem = mem;
  if (ac != NULL)
    redisAsyncFree(ac);
  rclient__log(c, RCLIENT_LOG_NOTICE, "redis: target is now %s", c->where);
  /* At once, not after a backoff: the caller knows the new server is up. */
  rclient__connect(c);
  return 0;
}

void rclient_get_stats(const rclient_t *c, rclient_stats_t *out) {
  *out = c->stats;
  if (c->cl != NULL) {
    rcluster_stats_t cs;
    rcluster_get_stats(c->cl, &cs);
    out->state = cs.healthy ? RCLIENT_CONNECTED : RCLIENT_DISCONNECTED;
    out->connected = cs.healthy;
    out->connects = cs.connects;
    out->disconnects = cs.disconnects;
    out->reconnect_attempts = cs.reconnect_attempts;
    out->errors += cs.errors;
    out->commands_sent = cs.commands_sent;
    out->cluster_nodes = cs.nodes;
    out->cluster_masters = cs.masters;
    out->cluster_connected = cs.masters_connected;
    out->cluster_refreshes = cs.refreshes;
    out->cluster_moved = cs.moved;
    out->cluster_ask = cs.ask;
    out->cluster_down = cs.down;
  }
}

void rclient_close(rclient_t *c, rclient_close_cb done, void *arg) {
  if (c == NULL || c->closing)
    return;
  c->closing = 1;
  c->done = done;
  c->done_arg = arg;
  uv_timer_stop(&c->state_timer);
  uv_timer_stop(&c->refresh_timer);
  redisAsyncContext *ac = c->ac;
  c->ac = NULL;
  rclient__set_state(c, RCLIENT_DISCONNECTED);
  if (c->cl != NULL) /* its requests complete now too; c->cl goes later */
    rcluster_close(c->cl, rclient__cl_closed, c);
  if (ac != NULL) {
    /* Pending replies fire now with NULL (or right after the current reply
     * callback when we are inside one); they find c->ac == NULL, so they
     * complete as UNAVAILABLE without scheduling anything. */
    redisAsyncFree(ac);
  }
  rclient__log(c, RCLIENT_LOG_VERBOSE, "redis: client for %s closed", c->where);
  /* The handles are closed from the idle callback, after the deferred
   * queue has drained: never from inside a caller's callback chain. */
  uv_idle_start(&c->idle, rclient__idle_cb);
}
