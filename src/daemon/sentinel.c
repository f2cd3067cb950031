/* sentinel.c - see sentinel.h.
 *
 * Every connection this module opens is a "link": one hiredis async
 * context plus a timer, used for one question (a sentinel query, a ROLE
 * probe, a health query) or, for the subscription, for as long as the
 * sentinel keeps it. Ownership follows rclient.c's rules for hiredis 0.14:
 *
 * - l->ac is cleared as soon as we learn the context is going (a NULL
 *   reply, onDisconnect, a failed onConnect) or before we free it
 *   ourselves; every later notification about that context sees
 *   l->ac != ac and is ignored.
 * - We never free a context inside its own onConnect/onDisconnect (hiredis
 *   keeps using it): a failure there is handed to the link's timer with a
 *   zero delay. Inside its reply callbacks redisAsyncFree() only marks it,
 *   hiredis frees it once the callback returns.
 * - A link is freed by the close callback of its timer, which libuv runs
 *   after the current phase: every hiredis callback of the context (they
 *   all run inside redisAsyncFree() or right after the reply callback)
 *   still finds the link alive.
 * - The owner is told exactly once per link (link_done), except for a link
 *   it aborts itself.
 */
#include "sentinel.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "rattach.h"
#include "sentinel_reply.h"
#include "recd/cluster_slot.h"

enum {
  SENTINEL__QUERY = 1,  /* resolve: SENTINEL get-master-addr-by-name */
  SENTINEL__PROBE = 2,  /* resolve: ROLE on the candidate */
  SENTINEL__HEALTH = 3, /* health round: the same query to every sentinel */
  SENTINEL__SUB = 4     /* SUBSCRIBE +switch-master, long-lived */
};

/* Where a resolve is. */
enum { SENTINEL__IDLE = 0, SENTINEL__ASKING = 1, SENTINEL__PROBING = 2, SENTINEL__WAITING = 3 };

/* Steps of a link's conversation. */
enum { SENTINEL__CONNECTING = 0, SENTINEL__AUTH = 1, SENTINEL__ASKED = 2, SENTINEL__SUBSCRIBED = 3 };

typedef struct sentinel__link {
  struct sentinel__link *next, *prev; /* s->links: every live link */
  sentinel_t *s;
  redisAsyncContext *ac;     /* NULL once gone or going */
  uv_timer_t timer;          /* the timeout; zero delay: a deferred failure */
  int kind;                  /* SENTINEL__QUERY ... */
  int step;                  /* SENTINEL__CONNECTING ... */
  int finished;              /* the owner has been told (or aborted it) */
  size_t idx;                /* the sentinel talked to (not for a probe) */
  char host[CLUSTER_HOST_MAX + 1];
  int port;
  char where[RCLIENT_ERRLEN];
  char err[RCLIENT_ERRLEN];  /* a failure waiting for the zero-delay timer */
} sentinel__link_t;

struct sentinel {
  uv_loop_t *loop;
  rclient_t *rc;
  cluster_node_t *nodes;     /* the sentinels, in configuration order */
  size_t n;
  int *ok;                   /* per sentinel: last contact usable */
  char *name;
  size_t name_len;
  char *sentinel_password;   /* NULL = no AUTH to the sentinels */
  char *user, *password;     /* the primary's AUTH; NULL = none */
  unsigned timeout_ms, health_ms, retry_min_ms, retry_max_ms;
  rclient_log_cb log;
  void *log_arg;
  char last_log[RCLIENT_ERRLEN + 64]; /* a repeat of it drops to VERBOSE */

  /* the resolve */
  int state;                 /* SENTINEL__IDLE ... */
  sentinel__link_t *asking;  /* the query or probe out, or NULL */
  size_t asked;              /* sentinels asked in this round */
  size_t cur;                /* the sentinel asked now */
  size_t preferred;          /* the first one asked next round */
  size_t cand_from;          /* who named the candidate; n = +switch-master */
  int again;                 /* a reason to resolve came while one ran */
  unsigned failures;         /* failed rounds in a row (backoff) */
  char cand_host[CLUSTER_HOST_MAX + 1];
  int cand_port;
  uv_timer_t retry_timer;

  /* where the client points */
  char target_host[CLUSTER_HOST_MAX + 1];
  int target_port;           /* 0 = nowhere yet */
  int retargeting;           /* inside rclient_set_target(): its state
                                change is ours, not a loss */
  unsigned role_inflight;    /* ROLE checks issued through rclient */

  /* the subscription */
  sentinel__link_t *sub;     /* NULL while none */
  size_t sub_next;           /* the sentinel tried next */
  unsigned sub_failures;     /* attempts failed in a row */
  int sub_ever;              /* a subscription has been confirmed once */
  uv_timer_t sub_timer;      /* the delay before the next attempt */

  /* the health round */
  uv_timer_t health_timer;
  size_t health_pending;

  sentinel__link_t *links;
  int closing;
  int handles_open;          /* of the three timers above */
  sentinel_stats_t stats;
};

static void sentinel__resolve(sentinel_t *s, const char *why);
static void sentinel__link_done(sentinel__link_t *l, const redisReply *r, const char *err);
static void sentinel__sub_schedule(sentinel_t *s);

/* ---- logging ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void sentinel__log(sentinel_t *s, int level, const char *fmt, ...) {
  if (s->log == NULL)
    return;
  char buf[RCLIENT_ERRLEN + 64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  /* The same failure every backoff period during a long outage would flood
   * the log: a repeat of the last warning drops to VERBOSE. */
  if (level >= RCLIENT_LOG_WARNING) {
    if (strcmp(buf, s->last_log) == 0)
      level = RCLIENT_LOG_VERBOSE;
    else
      memcpy(s->last_log, buf, sizeof buf);
  }
  s->log(level, buf, s->log_arg);
}

/* A reply's error text, bounded, for a log line. */
static int sentinel__errlen(const redisReply *r) {
  return r->len > 200 ? 200 : (int)r->len;
}

static void sentinel__set_ok(sentinel_t *s, size_t idx, int ok) {
  if (idx >= s->n || s->ok[idx] == ok)
    return;
  s->ok[idx] = ok;
  unsigned n = 0;
  for (size_t i = 0; i < s->n; i++)
    n += s->ok[i] != 0;
  s->stats.reachable = n;
}

/* ---- links ------------------------------------------------------------ */

static void sentinel__link_freed_cb(uv_handle_t *h) {
  free(h->data);
}

/* Unlinks l, drops its context and frees it on a later phase. Safe from a
 * timer, from a reply callback of l's own context (hiredis defers the
 * free) and from any callback of another context. */
static void sentinel__link_dispose(sentinel__link_t *l) {
  sentinel_t *s = l->s;
  l->finished = 1;
  if (l->prev)
    l->prev->next = l->next;
  else
    s->links = l->next;
  if (l->next)
    l->next->prev = l->prev;
  l->next = l->prev = NULL;
  redisAsyncContext *ac = l->ac;
  l->ac = NULL;
  if (ac != NULL)
    redisAsyncFree(ac);
  uv_timer_stop(&l->timer);
  uv_close((uv_handle_t *)&l->timer, sentinel__link_freed_cb);
}

/* The timeout, or a failure deferred out of onConnect. */
static void sentinel__link_timer_cb(uv_timer_t *t) {
  sentinel__link_t *l = t->data;
  if (l->finished)
    return;
  char err[RCLIENT_ERRLEN];
  if (l->err[0])
    snprintf(err, sizeof err, "%s", l->err);
  else
    snprintf(err, sizeof err, "no answer within %u ms", l->s->timeout_ms);
  sentinel__link_done(l, NULL, err);
}

/* Fails l on the next loop turn (from where freeing is unsafe, or to keep
 * a start-up failure from recursing into the caller). */
static void sentinel__link_fail_later(sentinel__link_t *l, const char *err) {
  snprintf(l->err, sizeof l->err, "%s", err);
  uv_timer_start(&l->timer, sentinel__link_timer_cb, 0, 0);
}

static void sentinel__link_reply_cb(redisAsyncContext *ac, void *reply, void *priv);

/* Queues argv on l; 0 or -1 (out of memory or the context is going). */
static int sentinel__link_send(sentinel__link_t *l, int argc, const char **argv) {
  size_t lens[4];
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  return redisAsyncCommandArgv(l->ac, sentinel__link_reply_cb, l, argc, argv, lens) == REDIS_OK
             ? 0
             : -1;
}

/* The link's question, once connected and authenticated. */
static int sentinel__link_ask(sentinel__link_t *l) {
  sentinel_t *s = l->s;
  l->step = SENTINEL__ASKED;
  if (l->kind == SENTINEL__PROBE) {
    const char *argv[1] = {"ROLE"};
    return sentinel__link_send(l, 1, argv);
  }
  if (l->kind == SENTINEL__SUB) {
    const char *argv[2] = {"SUBSCRIBE", "+switch-master"};
    return sentinel__link_send(l, 2, argv);
  }
  const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", s->name};
  return sentinel__link_send(l, 3, argv);
}

/* AUTH first when a password applies: the sentinels' for a sentinel link,
 * the primary's for a probe. */
static int sentinel__link_start(sentinel__link_t *l) {
  sentinel_t *s = l->s;
  const char *pass = l->kind == SENTINEL__PROBE ? s->password : s->sentinel_password;
  const char *user = l->kind == SENTINEL__PROBE ? s->user : NULL;
  if (pass == NULL)
    return sentinel__link_ask(l);
  l->step = SENTINEL__AUTH;
  const char *argv[3] = {"AUTH", user ? user : pass, pass};
  return sentinel__link_send(l, user ? 3 : 2, argv);
}

static void sentinel__link_on_connect(const redisAsyncContext *cac, int status) {
  sentinel__link_t *l = cac->data;
  if (l->ac != cac || l->finished)
    return;
  if (status != REDIS_OK) {
    /* hiredis frees the context after this callback. */
    char err[RCLIENT_ERRLEN];
    snprintf(err, sizeof err, "%s", cac->c.err ? cac->c.errstr : "connect failed");
    l->ac = NULL;
    sentinel__link_done(l, NULL, err);
    return;
  }
  if (sentinel__link_start(l) != 0)
    sentinel__link_fail_later(l, "cannot queue a command: out of memory");
}

static void sentinel__link_on_disconnect(const redisAsyncContext *ac, int status) {
  sentinel__link_t *l = ac->data;
  (void)status;
  if (l->ac != ac || l->finished)
    return;
  char err[RCLIENT_ERRLEN];
  snprintf(err, sizeof err, "%s", ac->c.err ? ac->c.errstr : "connection closed");
  l->ac = NULL;
  sentinel__link_done(l, NULL, err);
}

static void sentinel__on_sub_message(sentinel_t *s, sentinel__link_t *l, const redisReply *r);

static void sentinel__link_reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  sentinel__link_t *l = priv;
  const redisReply *r = reply;
  if (l->ac != ac || l->finished)
    return;
  if (r == NULL) {
    char err[RCLIENT_ERRLEN];
    snprintf(err, sizeof err, "%s", ac->c.err ? ac->c.errstr : "connection lost");
    l->ac = NULL;
    sentinel__link_done(l, NULL, err);
    return;
  }
  if (l->step == SENTINEL__AUTH) {
    if (r->type == REDIS_REPLY_ERROR) {
      char err[RCLIENT_ERRLEN];
      snprintf(err, sizeof err, "AUTH refused: %.*s", sentinel__errlen(r), r->str);
      sentinel__link_done(l, NULL, err);
      return;
    }
    if (sentinel__link_ask(l) != 0)
      sentinel__link_done(l, NULL, "cannot queue a command: out of memory");
    return;
  }
  if (l->kind == SENTINEL__SUB) {
    sentinel__on_sub_message(l->s, l, r);
    return;
  }
  sentinel__link_done(l, r, NULL);
}

/* Opens a link of kind to host:port. Returns it (the owner hears of it
 * through link_done, never from inside this call) or NULL when out of
 * memory. */
static sentinel__link_t *sentinel__link_new(sentinel_t *s, int kind, size_t idx,
                                            const char *host, int port) {
  sentinel__link_t *l = calloc(1, sizeof *l);
  if (l == NULL)
    return NULL;
  l->s = s;
  l->kind = kind;
  l->idx = idx;
  snprintf(l->host, sizeof l->host, "%s", host);
  l->port = port;
  snprintf(l->where, sizeof l->where, "%s:%d", host, port);
  uv_timer_init(s->loop, &l->timer);
  l->timer.data = l;
  l->next = s->links;
  if (s->links)
    s->links->prev = l;
  s->links = l;
  /* A TCP connect that is refused at once (nothing listens on a loopback
   * port) shows up here; the owner still hears of it on the next turn. */
  redisAsyncContext *ac = redisAsyncConnect(host, port);
  if (ac == NULL) {
    sentinel__link_fail_later(l, "out of memory");
    return l;
  }
  if (ac->err) {
    sentinel__link_fail_later(l, ac->c.errstr);
    redisAsyncFree(ac);
    return l;
  }
  if (rattach_libuv(ac, s->loop) != 0) {
    redisAsyncFree(ac);
    sentinel__link_fail_later(l, "cannot attach to the event loop");
    return l;
  }
  ac->data = l;
  l->ac = ac;
  redisAsyncSetConnectCallback(ac, sentinel__link_on_connect);
  redisAsyncSetDisconnectCallback(ac, sentinel__link_on_disconnect);
  uv_timer_start(&l->timer, sentinel__link_timer_cb, s->timeout_ms, 0);
  return l;
}

/* ---- where the client points ------------------------------------------ */

static void sentinel__role_cb(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                              const char *errstr, void *arg);

static void sentinel__free(sentinel_t *s) {
  free(s->nodes);
  free(s->ok);
  free(s->name);
  free(s->sentinel_password);
  free(s->user);
  free(s->password);
  free(s);
}

/* The client's state changed. Inside rclient's callback chains: only
 * requests and our own links may start from here. */
static void sentinel__on_state(rclient_t *rc, rclient_state_t st, void *arg) {
  sentinel_t *s = arg;
  if (s->closing || s->retargeting)
    return;
  if (st == RCLIENT_CONNECTED) {
    /* The probe said master, but a reconnection by the client's own
     * backoff, or a demotion since the probe, may have landed on a
     * replica: check the connection actually in use. */
    const char *argv[1] = {"ROLE"};
    const size_t lens[1] = {4};
    if (rclient_call(rc, 1, argv, lens, sentinel__role_cb, s) == 0)
      s->role_inflight++;
  } else if (st == RCLIENT_DISCONNECTED) {
    sentinel__resolve(s, "the connection to the primary was lost or refused");
  }
}

static void sentinel__role_cb(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                              const char *errstr, void *arg) {
  sentinel_t *s = arg;
  (void)rc, (void)errstr;
  s->role_inflight--;
  if (s->closing) {
    if (s->role_inflight == 0 && s->handles_open == 0)
      sentinel__free(s);
    return;
  }
  if (st != RCLIENT_OK)
    return; /* a lost connection is the state callback's business */
  char role[40];
  const char *name = sentinel_reply_role(rep, role, sizeof role);
  if (name != NULL && strcmp(name, "master") == 0)
    return;
  s->stats.not_master++;
  sentinel__log(s, RCLIENT_LOG_WARNING,
                "sentinel: %s answers ROLE with '%s', not master; asking the sentinels again",
                s->stats.primary, name ? name : "?");
  sentinel__resolve(s, "the connected server is not the primary");
}

/* The candidate answered ROLE master: point the client at it. */
static void sentinel__use(sentinel_t *s, const char *host, int port) {
  rclient_stats_t rs;
  rclient_get_stats(s->rc, &rs);
  const int same = s->target_port == port && strcmp(s->target_host, host) == 0;
  /* Connected (or connecting) to it already: nothing to do. Otherwise
   * reconnect at once rather than after the client's backoff. */
  if (same && rs.state != RCLIENT_DISCONNECTED)
    return;
  char err[RECD_ERRLEN];
  s->retargeting = 1;
  int rc = rclient_set_target(s->rc, host, port, err);
  s->retargeting = 0;
  if (rc != 0) {
    sentinel__log(s, RCLIENT_LOG_WARNING, "sentinel: cannot point the client at %s:%d: %s",
                  host, port, err);
    return;
  }
  if (!same && s->target_port != 0) {
    s->stats.retargets++;
    sentinel__log(s, RCLIENT_LOG_NOTICE, "sentinel: primary of %s is now %s:%d (was %s)",
                  s->name, host, port, s->stats.primary);
  } else if (!same) {
    sentinel__log(s, RCLIENT_LOG_NOTICE, "sentinel: primary of %s is %s:%d", s->name, host,
                  port);
  }
  snprintf(s->target_host, sizeof s->target_host, "%s", host);
  s->target_port = port;
  snprintf(s->stats.primary, sizeof s->stats.primary, "%s:%d", host, port);
}

/* ---- the resolve ------------------------------------------------------ */

static void sentinel__ask(sentinel_t *s);

static void sentinel__retry_cb(uv_timer_t *t) {
  sentinel_t *s = t->data;
  s->state = SENTINEL__IDLE;
  sentinel__resolve(s, NULL);
}

/* This round found no usable primary: ask again after a backoff (the
 * shortest when something happened meanwhile). */
static void sentinel__round_failed(sentinel_t *s) {
  s->asking = NULL;
  s->state = SENTINEL__WAITING;
  uint64_t delay = s->retry_min_ms;
  if (!s->again)
    for (unsigned i = 0; i < s->failures && delay < s->retry_max_ms; i++)
      delay *= 2;
  if (delay > s->retry_max_ms)
    delay = s->retry_max_ms;
  s->again = 0;
  if (s->failures < 32)
    s->failures++;
  uv_timer_start(&s->retry_timer, sentinel__retry_cb, delay, 0);
}

static void sentinel__probe(sentinel_t *s, const char *host, int port, size_t from) {
  snprintf(s->cand_host, sizeof s->cand_host, "%s", host);
  s->cand_port = port;
  s->cand_from = from;
  s->state = SENTINEL__PROBING;
  s->asking = sentinel__link_new(s, SENTINEL__PROBE, s->n, host, port);
  if (s->asking == NULL)
    sentinel__round_failed(s);
}

/* Starts a round (IDLE or WAITING), or notes that one is wanted. */
static void sentinel__resolve(sentinel_t *s, const char *why) {
  if (s->closing)
    return;
  if (s->state == SENTINEL__ASKING || s->state == SENTINEL__PROBING) {
    s->again = 1;
    return;
  }
  uv_timer_stop(&s->retry_timer);
  if (why != NULL)
    sentinel__log(s, RCLIENT_LOG_VERBOSE, "sentinel: asking for the primary of %s: %s",
                  s->name, why);
  s->stats.resolves++;
  s->state = SENTINEL__ASKING;
  s->again = 0;
  s->asked = 0;
  s->cur = s->preferred;
  sentinel__ask(s);
}

static void sentinel__ask(sentinel_t *s) {
  const cluster_node_t *nd = &s->nodes[s->cur];
  s->asking = sentinel__link_new(s, SENTINEL__QUERY, s->cur, nd->host, nd->port);
  if (s->asking == NULL)
    sentinel__round_failed(s);
}

/* A sentinel's answer to the query (r NULL: it failed with err). */
static int sentinel__answer(sentinel_t *s, const sentinel__link_t *l, const redisReply *r,
                            const char *err, char *host, int *port) {
  const char *what = l->kind == SENTINEL__HEALTH ? "health check" : "query";
  if (r == NULL) {
    sentinel__set_ok(s, l->idx, 0);
    sentinel__log(s, RCLIENT_LOG_WARNING, "sentinel: %s of %s failed: %s", what, l->where, err);
    return -1;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    sentinel__set_ok(s, l->idx, 0);
    sentinel__log(s, RCLIENT_LOG_WARNING, "sentinel: %s answers %.*s", l->where,
                  sentinel__errlen(r), r->str);
    return -1;
  }
  const int got = sentinel_reply_addr(r, host, CLUSTER_HOST_MAX + 1, port);
  if (got == 0) {
    sentinel__set_ok(s, l->idx, 0);
    sentinel__log(s, RCLIENT_LOG_WARNING,
                  "sentinel: %s does not monitor a master named '%s' (redis-master-name)",
                  l->where, s->name);
  } else if (got < 0) {
    sentinel__set_ok(s, l->idx, 0);
    sentinel__log(s, RCLIENT_LOG_WARNING,
                  "sentinel: %s gave an unexpected answer to get-master-addr-by-name (type %d)",
                  l->where, r->type);
  } else {
    sentinel__set_ok(s, l->idx, 1);
  }
  return got == 1 ? 0 : -1;
}

static void sentinel__on_query(sentinel_t *s, sentinel__link_t *l, const redisReply *r,
                               const char *err) {
  char host[CLUSTER_HOST_MAX + 1];
  int port = 0;
  s->asking = NULL;
  if (sentinel__answer(s, l, r, err, host, &port) == 0) {
    sentinel__probe(s, host, port, l->idx);
    return;
  }
  if (++s->asked < s->n) {
    s->cur = (s->cur + 1) % s->n;
    sentinel__ask(s);
    return;
  }
  sentinel__round_failed(s);
}

static void sentinel__on_probe(sentinel_t *s, sentinel__link_t *l, const redisReply *r,
                               const char *err) {
  s->asking = NULL;
  char role[40];
  const char *name = r ? sentinel_reply_role(r, role, sizeof role) : NULL;
  if (name != NULL && strcmp(name, "master") == 0) {
    s->state = SENTINEL__IDLE;
    s->failures = 0;
    s->again = 0;
    if (s->cand_from < s->n)
      s->preferred = s->cand_from;
    sentinel__use(s, l->host, l->port);
    return;
  }
  if (r == NULL)
    sentinel__log(s, RCLIENT_LOG_WARNING, "sentinel: candidate primary %s: %s", l->where, err);
  else if (r->type == REDIS_REPLY_ERROR)
    sentinel__log(s, RCLIENT_LOG_WARNING, "sentinel: candidate primary %s answers %.*s",
                  l->where, sentinel__errlen(r), r->str);
  else {
    s->stats.not_master++;
    sentinel__log(s, RCLIENT_LOG_WARNING,
                  "sentinel: candidate primary %s is not a master (ROLE '%s'); "
                  "asking the sentinels again",
                  l->where, name ? name : "?");
  }
  sentinel__round_failed(s);
}

/* ---- the health round ------------------------------------------------- */

static void sentinel__on_health(sentinel_t *s, sentinel__link_t *l, const redisReply *r,
                                const char *err) {
  char host[CLUSTER_HOST_MAX + 1];
  int port = 0;
  if (s->health_pending > 0)
    s->health_pending--;
  if (sentinel__answer(s, l, r, err, host, &port) != 0) {
    /* A sentinel that hangs keeps its TCP connection open: a failed health
     * check is what moves the subscription to another one. */
    if (s->sub != NULL && s->sub->idx == l->idx && s->sub->step == SENTINEL__SUBSCRIBED)
      sentinel__link_done(s->sub, NULL, "its health check failed");
    return;
  }
  if (port != s->target_port || strcmp(host, s->target_host) != 0)
    sentinel__resolve(s, "a sentinel names another primary");
}

static void sentinel__health_cb(uv_timer_t *t) {
  sentinel_t *s = t->data;
  if (s->health_pending > 0)
    return; /* the last round is still out (bounded by timeout_ms) */
  for (size_t i = 0; i < s->n; i++)
    if (sentinel__link_new(s, SENTINEL__HEALTH, i, s->nodes[i].host, s->nodes[i].port) != NULL)
      s->health_pending++;
}

/* ---- the subscription ------------------------------------------------- */

static void sentinel__sub_cb(uv_timer_t *t) {
  sentinel_t *s = t->data;
  if (s->closing || s->sub != NULL)
    return;
  const size_t i = s->sub_next;
  s->sub_next = (i + 1) % s->n;
  s->sub = sentinel__link_new(s, SENTINEL__SUB, i, s->nodes[i].host, s->nodes[i].port);
  if (s->sub == NULL)
    sentinel__sub_schedule(s);
}

/* The next subscription attempt: at once to the next sentinel after a
 * loss, with a backoff once every sentinel has failed in a row. */
static void sentinel__sub_schedule(sentinel_t *s) {
  uint64_t delay = 0;
  if (s->sub_failures >= s->n) {
    delay = s->retry_min_ms;
    for (size_t i = s->n; i < s->sub_failures && delay < s->retry_max_ms; i++)
      delay *= 2;
    if (delay > s->retry_max_ms)
      delay = s->retry_max_ms;
  }
  if (s->sub_failures < 64)
    s->sub_failures++;
  uv_timer_start(&s->sub_timer, sentinel__sub_cb, delay, 0);
}

static void sentinel__on_sub_failed(sentinel_t *s, sentinel__link_t *l, const char *err) {
  s->sub = NULL;
  sentinel__set_ok(s, l->idx, 0);
  if (s->stats.subscribed[0])
    sentinel__log(s, RCLIENT_LOG_WARNING,
                  "sentinel: lost the +switch-master subscription on %s: %s", l->where, err);
  else
    sentinel__log(s, RCLIENT_LOG_WARNING, "sentinel: cannot subscribe on %s: %s", l->where,
                  err);
  s->stats.subscribed[0] = '\0';
  sentinel__sub_schedule(s);
}

/* "<name> <old-ip> <old-port> <new-ip> <new-port>": 0 with the new address
 * when it is about our master, else -1. */
static int sentinel__parse_switch(const sentinel_t *s, const char *p, size_t len, char *host,
                                  int *port) {
  const char *tok[5] = {0};
  size_t tlen[5] = {0};
  size_t k = 0, i = 0;
  while (k < 5 && i < len) {
    while (i < len && p[i] == ' ')
      i++;
    if (i == len)
      break;
    tok[k] = p + i;
    while (i < len && p[i] != ' ')
      i++;
    tlen[k] = (size_t)(p + i - tok[k]);
    k++;
  }
  if (k != 5 || tlen[0] != s->name_len || memcmp(tok[0], s->name, s->name_len) != 0 ||
      tlen[3] == 0 || tlen[3] > CLUSTER_HOST_MAX || tlen[4] == 0 || tlen[4] > 5)
    return -1;
  int v = 0;
  for (size_t j = 0; j < tlen[4]; j++) {
    if (tok[4][j] < '0' || tok[4][j] > '9')
      return -1;
    v = v * 10 + (tok[4][j] - '0');
  }
  if (v < 1 || v > 65535)
    return -1;
  memcpy(host, tok[3], tlen[3]);
  host[tlen[3]] = '\0';
  *port = v;
  return 0;
}

/* Every reply on the subscription: the confirmation, then messages. */
static void sentinel__on_sub_message(sentinel_t *s, sentinel__link_t *l, const redisReply *r) {
  if (r->type == REDIS_REPLY_ERROR) {
    char err[RCLIENT_ERRLEN];
    snprintf(err, sizeof err, "SUBSCRIBE refused: %.*s", sentinel__errlen(r), r->str);
    sentinel__link_done(l, NULL, err);
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[0]->type != REDIS_REPLY_STRING)
    return;
  const redisReply *kind = r->element[0];
  if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0) {
    uv_timer_stop(&l->timer); /* held open from now on, no timeout */
    l->step = SENTINEL__SUBSCRIBED;
    s->sub_failures = 0;
    sentinel__set_ok(s, l->idx, 1);
    snprintf(s->stats.subscribed, sizeof s->stats.subscribed, "%s", l->where);
    sentinel__log(s, RCLIENT_LOG_NOTICE, "sentinel: following +switch-master on %s", l->where);
    /* A switch may have happened while no sentinel was listened to. */
    if (s->sub_ever)
      sentinel__resolve(s, "subscribed again");
    s->sub_ever = 1;
    return;
  }
  if (kind->len != 7 || memcmp(kind->str, "message", 7) != 0 ||
      r->element[2]->type != REDIS_REPLY_STRING)
    return;
  char host[CLUSTER_HOST_MAX + 1];
  int port;
  if (sentinel__parse_switch(s, r->element[2]->str, r->element[2]->len, host, &port) != 0)
    return; /* another master of the same sentinels */
  s->stats.switches++;
  sentinel__log(s, RCLIENT_LOG_NOTICE, "sentinel: +switch-master %.*s (from %s)",
                (int)(r->element[2]->len > 300 ? 300 : r->element[2]->len), r->element[2]->str,
                l->where);
  /* The announced primary wins over whatever a resolve was doing. */
  if (s->asking != NULL) {
    sentinel__link_dispose(s->asking);
    s->asking = NULL;
  }
  uv_timer_stop(&s->retry_timer);
  s->again = 0;
  sentinel__probe(s, host, port, s->n);
}

/* ---- dispatch --------------------------------------------------------- */

/* Tells the owner about l (once) and disposes of l, except a subscription
 * that is still confirmed. r is borrowed. */
static void sentinel__link_done(sentinel__link_t *l, const redisReply *r, const char *err) {
  sentinel_t *s = l->s;
  if (l->finished)
    return;
  l->finished = 1;
  switch (l->kind) {
  case SENTINEL__QUERY:
    sentinel__on_query(s, l, r, err);
    break;
  case SENTINEL__PROBE:
    sentinel__on_probe(s, l, r, err);
    break;
  case SENTINEL__HEALTH:
    sentinel__on_health(s, l, r, err);
    break;
  default:
    sentinel__on_sub_failed(s, l, err);
    break;
  }
  sentinel__link_dispose(l);
}

/* ---- lifetime --------------------------------------------------------- */

void sentinel_opts_init(sentinel_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->timeout_ms = 500;
  o->health_ms = 5000;
  o->retry_min_ms = 100;
  o->retry_max_ms = 500;
}

static char *sentinel__dup(const char *v, int *oom) {
  if (v == NULL || v[0] == '\0')
    return NULL;
  char *d = strdup(v);
  if (d == NULL)
    *oom = 1;
  return d;
}

int sentinel_new(uv_loop_t *loop, rclient_t *rc, const sentinel_opts_t *o, sentinel_t **out,
                 char *errbuf) {
  if (loop == NULL || rc == NULL || o == NULL || out == NULL)
    return recd_errf(errbuf, RECD_EINVAL, "sentinel: missing argument");
  const char *name = o->master_name ? o->master_name : "";
  const size_t nl = strlen(name);
  if (nl == 0 || nl > SENTINEL_NAME_MAX)
    return recd_errf(errbuf, RECD_EINVAL, "redis-master-name: expected 1 to %d bytes, got %zu",
                     SENTINEL_NAME_MAX, nl);
  for (size_t i = 0; i < nl; i++)
    if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f)
      return recd_errf(errbuf, RECD_EINVAL,
                       "redis-master-name: no blanks or control characters allowed");
  if (o->timeout_ms == 0 || o->health_ms == 0 || o->retry_min_ms == 0 ||
      o->retry_max_ms < o->retry_min_ms)
    return recd_errf(errbuf, RECD_EINVAL, "sentinel: bad timeouts");
  sentinel_t *s = calloc(1, sizeof *s);
  if (s == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "sentinel: out of memory");
  char perr[RECD_ERRLEN];
  int err = cluster_parse_nodes(o->sentinels ? o->sentinels : "", &s->nodes, &s->n, perr);
  if (err != 0) {
    free(s);
    return recd_errf(errbuf, err, "redis-sentinels: %s", perr);
  }
  if (s->n > SENTINEL_MAX) {
    const size_t n = s->n;
    free(s->nodes);
    free(s);
    return recd_errf(errbuf, RECD_EINVAL, "redis-sentinels: %zu sentinels, at most %d", n,
                     SENTINEL_MAX);
  }
  int oom = 0;
  s->ok = calloc(s->n, sizeof *s->ok);
  s->name = strdup(name);
  s->sentinel_password = sentinel__dup(o->sentinel_password, &oom);
  s->user = sentinel__dup(o->user, &oom);
  s->password = sentinel__dup(o->password, &oom);
  if (oom || s->ok == NULL || s->name == NULL) {
    sentinel__free(s);
    return recd_errf(errbuf, RECD_ENOMEM, "sentinel: out of memory");
  }
  /* AUTH user pass needs a password; a user alone is the default user. */
  if (s->password == NULL) {
    free(s->user);
    s->user = NULL;
  }
  s->name_len = nl;
  s->loop = loop;
  s->rc = rc;
  s->timeout_ms = o->timeout_ms;
  s->health_ms = o->health_ms;
  s->retry_min_ms = o->retry_min_ms;
  s->retry_max_ms = o->retry_max_ms;
  s->log = o->log;
  s->log_arg = o->log_arg;
  s->stats.sentinels = (unsigned)s->n;
  /* Timer init cannot fail on Unix (libuv only links the handle). */
  uv_timer_init(loop, &s->retry_timer);
  uv_timer_init(loop, &s->sub_timer);
  uv_timer_init(loop, &s->health_timer);
  s->retry_timer.data = s->sub_timer.data = s->health_timer.data = s;
  s->handles_open = 3;
  rclient_on_state(rc, sentinel__on_state, s);
  sentinel__log(s, RCLIENT_LOG_NOTICE, "sentinel: following master '%s' through %zu sentinel%s",
                s->name, s->n, s->n == 1 ? "" : "s");
  sentinel__resolve(s, "start");
  uv_timer_start(&s->sub_timer, sentinel__sub_cb, 0, 0);
  /* The first round soon after start (INFO's reachable count), then
   * every health_ms. */
  uv_timer_start(&s->health_timer, sentinel__health_cb, s->timeout_ms, s->health_ms);
  *out = s;
  return 0;
}

void sentinel_get_stats(const sentinel_t *s, sentinel_stats_t *out) {
  *out = s->stats;
}

static void sentinel__closed_cb(uv_handle_t *h) {
  sentinel_t *s = h->data;
  if (--s->handles_open > 0 || s->role_inflight > 0)
    return;
  sentinel__free(s);
}

void sentinel_close(sentinel_t *s) {
  if (s == NULL || s->closing)
    return;
  s->closing = 1;
  rclient_on_state(s->rc, NULL, NULL);
  /* Each dispose fires the dropped context's callbacks, which find their
   * link finished and do nothing. */
  while (s->links != NULL)
    sentinel__link_dispose(s->links);
  s->asking = s->sub = NULL;
  uv_close((uv_handle_t *)&s->retry_timer, sentinel__closed_cb);
  uv_close((uv_handle_t *)&s->sub_timer, sentinel__closed_cb);
  uv_close((uv_handle_t *)&s->health_timer, sentinel__closed_cb);
}
