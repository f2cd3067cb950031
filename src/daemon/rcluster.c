/* rcluster.c - see rcluster.h.
 *
 * Ownership rules (hiredis 0.14 async.c, as in rclient.c, per node):
 *
 * - A node's redisAsyncContext is freed by hiredis itself after an I/O
 *   error, EOF or a failed connect, after it has fired every pending reply
 *   callback with a NULL reply. redisAsyncFree() from inside a reply
 *   callback of that context only flags it; hiredis frees it when the
 *   callback returns. onConnect / onDisconnect never free: a failure there
 *   becomes a zero-delay node timer.
 * - node->ac is set to NULL as soon as we learn that the context is going
 *   (first NULL reply, onDisconnect, a failed onConnect, our own drop),
 *   before any user callback runs; later notifications about that context
 *   see node->ac != ac and are ignored.
 * - Nodes are never freed before rcluster_close(): their index is the slot
 *   map's (cluster_map_t keeps its nodes), and a reply callback finds its
 *   node through ac->data.
 * - A command lives from rcluster_command() until its callback has
 *   returned: in flight on one node (its reply callback's priv), parked on
 *   a connecting node, or in the deferred queue that the idle handle drains
 *   on the next loop turn (so that no callback ever fires from inside the
 *   call that issued the command).
 */
#include "rcluster.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "cluster_slots_reply.h"
#include "rattach.h"
#include "rreply.h"
#include "recd/cluster_slot.h"
#include "recd/err.h"
#include "recd/rng.h"

typedef struct rcluster__cmd rcluster__cmd_t;
typedef struct rcluster__group rcluster__group_t;

struct rcluster__cmd {
  rcluster__cmd_t *next;      /* parked or deferred list */
  rcluster_cb cb;             /* may be NULL */
  void *arg;
  rcluster__group_t *group;   /* a part of a command to every master */
  char *buf;                  /* the RESP command, in the same block as the
                                 command; the group's for a part */
  size_t len;
  uint16_t slot;
  int keyed;                  /* routed by slot, else to any master */
  int ask;                    /* node to send to with ASKING first, or -1 */
  int redirects;              /* MOVED / ASK followed so far */
  rclient_status_t st;        /* a deferred completion's status ... */
  char errstr[RCLIENT_ERRLEN];/* ... and reason */
};

/* A command sent to every master (SCRIPT LOAD): completes once, when the
 * last part is back, with the best part's outcome: a reply that is no
 * error, else an error reply, else UNAVAILABLE. */
struct rcluster__group {
  rcluster_cb cb;
  void *arg;
  char *buf;
  size_t len;
  int pending;
  int rank;                   /* of rep: 0 none, 1 an error reply, 2 a reply */
  redisReply *rep;            /* a copy of the best reply so far */
  char errstr[RCLIENT_ERRLEN];
};

typedef struct rcluster__node {
  rcluster_t *cl;
  int idx;                    /* in cl->map.nodes */
  redisAsyncContext *ac;      /* NULL when none or dying */
  rclient_state_t state;
  int wanted;                 /* to be kept connected */
  int master;                 /* serves slots in the map */
  int seed;
  int target;                 /* named by a redirection since the last map */
  int drop_requested;         /* the zero-delay timer is a drop, not a timeout */
  unsigned attempt;           /* connections lost or failed since the
                                 last one that answered (rcluster__progress) */
  size_t inflight;            /* commands on ac not answered yet */
  uint64_t progress_ms;       /* uv_now() of the last reply, or of the send
                                 that made inflight 1 */
  int stalled;                /* commands waiting, no reply for
                                 connect_timeout_ms: a hung node */
  uv_timer_t timer;           /* connect timeout, or backoff */
  rcluster__cmd_t *parked_head, *parked_tail; /* waiting for CONNECTED */
  char last_err[RCLIENT_ERRLEN]; /* the node's last failure, "" once connected */
  char name[CLUSTER_HOST_MAX + 16];           /* host:port, for messages */
} rcluster__node_t;

struct rcluster {
  uv_loop_t *loop;
  char *password;             /* NULL = no AUTH */
  char *user;                 /* NULL = AUTH password alone */
  unsigned connect_timeout_ms, reconnect_min_ms, reconnect_max_ms, refresh_ms;
  rclient_log_cb log;
  void *log_arg;
  void (*error)(const char *msg, void *arg);
  void (*health)(int healthy, void *arg);
  void *cb_arg;

  cluster_map_t map;          /* slot -> node index; nodes only ever added */
  int have_map;               /* a CLUSTER SLOTS reply has been applied */
  uint32_t unserved;          /* slots of the map without a master */
  rcluster__node_t **nodes;   /* one per map node, same index */
  size_t n_nodes, cap_nodes;

  int need_seeds;             /* no node connected to read the map from */
  int refresh_inflight;       /* a CLUSTER SLOTS is outstanding ... */
  rcluster__node_t *refresh_node; /* ... on this node; a reply from another
                                 (one given up on) is ignored */
  int refresh_again;          /* a re-read was asked for meanwhile */
  int refresh_pending;        /* wanted, waiting for a node to connect */
  int refreshed_once;
  uint64_t last_refresh_ms;   /* uv_now() of the last CLUSTER SLOTS sent */
  size_t rr;                  /* round robin: map reads, ROUTE_ANY */
  uv_timer_t refresh_timer;
  uv_idle_t idle;
  rattach_batch_t batch;      /* writes the commands of a loop turn at once */
  int maint_due, health_due;
  rcluster__cmd_t *deferred_head, *deferred_tail;
  int healthy, reported;      /* now, and as last told to health() */
  int closing;
  int handles_open;
  void (*done)(void *arg);
  void *done_arg;
  rng_t rng;
  rcluster_stats_t stats;
};

static void rcluster__connect(rcluster__node_t *n);
static void rcluster__dispatch(rcluster_t *cl, rcluster__cmd_t *cmd);
static void rcluster__idle_cb(uv_idle_t *h);

/* ---- pure helpers ------------------------------------------------------ */

static int rcluster__eq(const char *a, size_t len, const char *b) {
  return strlen(b) == len && strncasecmp(a, b, len) == 0;
}

rcluster_route_t rcluster_route(int argc, const char *const *argv, const size_t *lens,
                                uint16_t *slot) {
  *slot = 0;
  if (argc < 1)
    return RCLUSTER_ROUTE_ANY;
  const char *c = argv[0];
  const size_t l = lens[0];
  if (rcluster__eq(c, l, "EVAL") || rcluster__eq(c, l, "EVALSHA") ||
      rcluster__eq(c, l, "EVAL_RO") || rcluster__eq(c, l, "EVALSHA_RO") ||
      rcluster__eq(c, l, "FCALL") || rcluster__eq(c, l, "FCALL_RO")) {
    if (argc < 4)
      return RCLUSTER_ROUTE_ANY;
    long long nk = 0;
    size_t i;
    for (i = 0; i < lens[2] && i < 10 && argv[2][i] >= '0' && argv[2][i] <= '9'; i++)
      nk = nk * 10 + (argv[2][i] - '0');
    if (i == 0 || i != lens[2] || nk < 1)
      return RCLUSTER_ROUTE_ANY;
    *slot = cluster_key_slot(argv[3], lens[3]);
    return RCLUSTER_ROUTE_KEY;
  }
  if (rcluster__eq(c, l, "SCRIPT"))
    return RCLUSTER_ROUTE_ALL;
  if (argc < 2 || rcluster__eq(c, l, "PING") || rcluster__eq(c, l, "ECHO") ||
      rcluster__eq(c, l, "INFO") || rcluster__eq(c, l, "TIME") || rcluster__eq(c, l, "CLUSTER"))
    return RCLUSTER_ROUTE_ANY;
  *slot = cluster_key_slot(argv[1], lens[1]);
  return RCLUSTER_ROUTE_KEY;
}

int rcluster_one_slot(size_t n, const char *const *keys, const size_t *lens) {
  if (n == 0)
    return 1;
  const uint16_t s = cluster_key_slot(keys[0], lens[0]);
  for (size_t i = 1; i < n; i++)
    if (cluster_key_slot(keys[i], lens[i]) != s)
      return 0;
  return 1;
}

/* A copy is one block: every redisReply first, then the element arrays,
 * then the strings (so that a history of n entries is one malloc, not
 * 2n + 2). */
typedef struct rcluster__dup {
  redisReply *node;
  redisReply **ptr;
  char *str;
} rcluster__dup_t;

static void rcluster__dup_count(const redisReply *r, size_t *nodes, size_t *ptrs,
                                size_t *bytes) {
  ++*nodes;
  if (r->str != NULL)
    *bytes += r->len + 1;
  if (r->type == REDIS_REPLY_ARRAY) {
    *ptrs += r->elements;
    for (size_t i = 0; i < r->elements; i++)
      rcluster__dup_count(r->element[i], nodes, ptrs, bytes);
  }
}

static redisReply *rcluster__dup_fill(const redisReply *r, rcluster__dup_t *at) {
  redisReply *d = at->node++;
  memset(d, 0, sizeof *d);
  d->type = r->type;
  d->integer = r->integer;
  if (r->str != NULL) {
    d->str = at->str;
    d->len = r->len;
    memcpy(d->str, r->str, r->len);
    d->str[r->len] = '\0';
    at->str += r->len + 1;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
    d->element = at->ptr;
    d->elements = r->elements;
    at->ptr += r->elements;
    for (size_t i = 0; i < r->elements; i++)
      d->element[i] = rcluster__dup_fill(r->element[i], at);
  }
  return d;
}

redisReply *rcluster_reply_dup(const redisReply *r) {
  size_t nodes = 0, ptrs = 0, bytes = 0;
  rcluster__dup_count(r, &nodes, &ptrs, &bytes);
  char *block = malloc(nodes * sizeof(redisReply) + ptrs * sizeof(redisReply *) + bytes);
  if (block == NULL)
    return NULL;
  rcluster__dup_t at = {(redisReply *)(void *)block,
                        (redisReply **)(void *)(block + nodes * sizeof(redisReply)),
                        block + nodes * sizeof(redisReply) + ptrs * sizeof(redisReply *)};
  return rcluster__dup_fill(r, &at);
}

void rcluster_reply_free(redisReply *r) {
  free(r);
}

/* ---- messages ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void rcluster__log(rcluster_t *cl, int level, const char *fmt, ...) {
  if (cl->log == NULL)
    return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  cl->log(level, buf, cl->log_arg);
}

__attribute__((format(printf, 2, 3)))
static void rcluster__error(rcluster_t *cl, const char *fmt, ...) {
  char buf[RCLIENT_ERRLEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (cl->error != NULL)
    cl->error(buf, cl->cb_arg);
  else
    rcluster__log(cl, RCLIENT_LOG_WARNING, "redis: %s", buf);
}

/* A node's failure: reported (and recorded as the last error) the first
 * time, only logged at VERBOSE while it repeats, so that a node down (or
 * a wrong password) does not flood the log once per node and attempt. */
struct rcluster__node;
__attribute__((format(printf, 2, 3)))
static void rcluster__node_error(struct rcluster__node *n, const char *fmt, ...);

/* ---- completion -------------------------------------------------------- */

static void rcluster__group_part(rcluster_t *cl, rcluster__group_t *g, rclient_status_t st,
                                 const redisReply *rep, const char *errstr) {
  const int rank = st != RCLIENT_OK ? 0 : rep->type == REDIS_REPLY_ERROR ? 1 : 2;
  if (rank > g->rank) {
    redisReply *d = rcluster_reply_dup(rep);
    if (d != NULL) {
      rcluster_reply_free(g->rep);
      g->rep = d;
      g->rank = rank;
    } else if (g->rank == 0) {
      snprintf(g->errstr, sizeof g->errstr, "out of memory");
    }
  } else if (rank == 0 && g->rank == 0 && errstr != NULL) {
    snprintf(g->errstr, sizeof g->errstr, "%s", errstr);
  }
  if (--g->pending > 0)
    return;
  if (g->cb != NULL)
    g->cb(cl, g->rank > 0 ? RCLIENT_OK : RCLIENT_UNAVAILABLE, g->rep,
          g->rank > 0 ? NULL : g->errstr, g->arg);
  rcluster_reply_free(g->rep);
  free(g->buf);
  free(g);
}

/* Fires cmd's callback (or its group's part) and frees it. */
static void rcluster__complete(rcluster_t *cl, rcluster__cmd_t *cmd, rclient_status_t st,
                               const redisReply *rep, const char *errstr) {
  if (cmd->group != NULL) {
    rcluster__group_part(cl, cmd->group, st, rep, errstr);
  } else {
    if (cmd->cb != NULL)
      cmd->cb(cl, st, st == RCLIENT_OK ? rep : NULL, st == RCLIENT_OK ? NULL : errstr, cmd->arg);
  }
  free(cmd);
}

/* Completes cmd with st on the next loop turn. */
__attribute__((format(printf, 4, 5)))
static void rcluster__defer(rcluster_t *cl, rcluster__cmd_t *cmd, rclient_status_t st,
                            const char *fmt, ...) {
  cmd->st = st;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd->errstr, sizeof cmd->errstr, fmt, ap);
  va_end(ap);
  cmd->next = NULL;
  if (cl->deferred_tail != NULL)
    cl->deferred_tail->next = cmd;
  else
    cl->deferred_head = cmd;
  cl->deferred_tail = cmd;
  uv_idle_start(&cl->idle, rcluster__idle_cb);
}

static void rcluster__kick(rcluster_t *cl) {
  uv_idle_start(&cl->idle, rcluster__idle_cb);
}

/* ---- health and wanted connections ------------------------------------ */

/* Recounts masters and connections; a change of health is reported to
 * health() from the idle callback (never from inside a caller's call). */
static void rcluster__health(rcluster_t *cl) {
  size_t masters = 0, up = 0;
  for (size_t i = 0; i < cl->n_nodes; i++) {
    const rcluster__node_t *n = cl->nodes[i];
    if (n->master) {
      masters++;
      up += n->state == RCLIENT_CONNECTED && !n->stalled;
    }
  }
  cl->stats.masters = masters;
  cl->stats.masters_connected = up;
  cl->stats.nodes = cl->map.n_nodes;
  cl->stats.unserved_slots = cl->have_map ? cl->unserved : CLUSTER_N_SLOTS;
  const int h = cl->have_map && cl->unserved == 0 && masters > 0 && up == masters;
  cl->stats.healthy = h;
  if (h == cl->healthy)
    return;
  cl->healthy = h;
  if (h)
    rcluster__log(cl, RCLIENT_LOG_NOTICE, "redis cluster: healthy: %zu masters, all connected",
                  masters);
  else
    rcluster__log(cl, RCLIENT_LOG_NOTICE, "redis cluster: not healthy (%zu of %zu masters "
                  "connected, %u slots without a master)", up, masters,
                  cl->have_map ? cl->unserved : (unsigned)CLUSTER_N_SLOTS);
  cl->health_due = 1;
  rcluster__kick(cl);
}

/* Which nodes are kept connected: the masters of the map, the nodes a
 * redirection named, and the seeds while no map is known (or no node is
 * connected to read one from). The idle callback acts on it. */
static void rcluster__update_wanted(rcluster_t *cl) {
  for (size_t i = 0; i < cl->n_nodes; i++) {
    rcluster__node_t *n = cl->nodes[i];
    n->wanted = (cl->have_map && n->master) || n->target ||
                (n->seed && (!cl->have_map || cl->need_seeds));
  }
  cl->maint_due = 1;
  rcluster__kick(cl);
}

/* One rcluster__node_t per map node (the map gains nodes from CLUSTER
 * SLOTS and redirections). 0 or RECD_ENOMEM / RECD_EIO. */
static int rcluster__sync_nodes(rcluster_t *cl) {
  if (cl->closing)
    return RECD_EINVAL;
  while (cl->n_nodes < cl->map.n_nodes) {
    if (cl->n_nodes == cl->cap_nodes) {
      size_t nc = cl->cap_nodes ? 2 * cl->cap_nodes : 8;
      rcluster__node_t **g = realloc(cl->nodes, nc * sizeof *g);
      if (g == NULL)
        return RECD_ENOMEM;
      cl->nodes = g;
      cl->cap_nodes = nc;
    }
    rcluster__node_t *n = calloc(1, sizeof *n);
    if (n == NULL)
      return RECD_ENOMEM;
    if (uv_timer_init(cl->loop, &n->timer) != 0) {
      free(n);
      return RECD_EIO;
    }
    n->cl = cl;
    n->idx = (int)cl->n_nodes;
    n->state = RCLIENT_DISCONNECTED;
    n->timer.data = n;
    const cluster_node_t *cn = &cl->map.nodes[n->idx];
    snprintf(n->name, sizeof n->name, strchr(cn->host, ':') ? "[%s]:%d" : "%s:%d", cn->host,
             cn->port);
    cl->nodes[cl->n_nodes++] = n;
  }
  return 0;
}

static void rcluster__node_error(rcluster__node_t *n, const char *fmt, ...) {
  char buf[RCLIENT_ERRLEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (strcmp(buf, n->last_err) == 0) {
    rcluster__log(n->cl, RCLIENT_LOG_VERBOSE, "redis: %s", buf);
    return;
  }
  memcpy(n->last_err, buf, sizeof buf);
  rcluster__error(n->cl, "%s", buf);
}

/* ---- the slot map ------------------------------------------------------ */

static void rcluster__refresh_tick(uv_timer_t *t);

/* The next map read in at most delay ms (an earlier one stays). */
static void rcluster__schedule(rcluster_t *cl, uint64_t delay) {
  if (cl->closing)
    return;
  if (uv_is_active((uv_handle_t *)&cl->refresh_timer) &&
      uv_timer_get_due_in(&cl->refresh_timer) <= delay)
    return;
  uv_timer_start(&cl->refresh_timer, rcluster__refresh_tick, delay, 0);
}

/* A map read as soon as allowed (RCLUSTER_MIN_GAP_MS after the last). */
static void rcluster__want_refresh(rcluster_t *cl) {
  const uint64_t now = uv_now(cl->loop);
  const uint64_t at = cl->refreshed_once ? cl->last_refresh_ms + RCLUSTER_MIN_GAP_MS : now;
  rcluster__schedule(cl, at > now ? at - now : 0);
}

/* Applies a CLUSTER SLOTS reply from node n. 0, else the map is as before
 * and errbuf says why. */
static int rcluster__apply_map(rcluster_t *cl, const redisReply *r, const rcluster__node_t *n,
                               char *errbuf) {
  uint16_t *saved = malloc(sizeof cl->map.slot_node);
  if (saved == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  memcpy(saved, cl->map.slot_node, sizeof cl->map.slot_node);
  int rc = cluster_slots_parse_reply(r, cl->map.nodes[n->idx].host, &cl->map, errbuf);
  if (rc == 0 && (rc = rcluster__sync_nodes(cl)) != 0)
    recd_errf(errbuf, rc, "out of memory");
  if (rc != 0) {
    memcpy(cl->map.slot_node, saved, sizeof cl->map.slot_node);
    free(saved);
    return rc;
  }
  free(saved);
  uint8_t *serves = calloc(cl->n_nodes > 0 ? cl->n_nodes : 1, 1);
  if (serves == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  uint32_t unserved = 0;
  for (uint32_t s = 0; s < CLUSTER_N_SLOTS; s++) {
    const uint16_t v = cl->map.slot_node[s];
    if (v == 0 || (size_t)v > cl->n_nodes)
      unserved++;
    else
      serves[v - 1] = 1;
  }
  int changed = !cl->have_map || unserved != cl->unserved;
  for (size_t i = 0; i < cl->n_nodes; i++) {
    changed |= cl->nodes[i]->master != serves[i];
    cl->nodes[i]->master = serves[i];
    cl->nodes[i]->target = 0;
  }
  free(serves);
  cl->have_map = 1;
  cl->need_seeds = 0;
  cl->unserved = unserved;
  cl->stats.refreshes++;
  if (changed) {
    char list[512];
    size_t o = 0;
    list[0] = '\0';
    for (size_t i = 0; i < cl->n_nodes && o < sizeof list - 1; i++)
      if (cl->nodes[i]->master)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", o ? " " : "",
                              cl->nodes[i]->name);
    rcluster__log(cl, RCLIENT_LOG_NOTICE, "redis cluster: slot map from %s: masters %s, "
                  "%u slots without a master", n->name, list[0] ? list : "(none)", unserved);
  }
  rcluster__update_wanted(cl);
  rcluster__health(cl);
  return 0;
}

static void rcluster__lost(rcluster__node_t *n, const redisAsyncContext *ac);
static void rcluster__progress(rcluster__node_t *n);

static void rcluster__slots_cb(redisAsyncContext *ac, void *reply, void *priv) {
  rcluster__node_t *n = priv;
  rcluster_t *cl = n->cl;
  if (n->inflight > 0)
    n->inflight--;
  if (reply != NULL)
    rcluster__progress(n);
  const int current = cl->refresh_inflight && cl->refresh_node == n;
  if (current) {
    cl->refresh_inflight = 0;
    cl->refresh_node = NULL;
  }
  if (reply == NULL) {
    rcluster__lost(n, ac);
    if (current)
      rcluster__want_refresh(cl);
    return;
  }
  if (cl->closing || !current)
    return; /* late: the map was asked of another node since */
  char err[RECD_ERRLEN];
  int rc = rcluster__apply_map(cl, reply, n, err);
  if (rc != 0) {
    cl->stats.refresh_errors++;
    rcluster__error(cl, "cluster slot map from %s: %s", n->name, err);
  }
  const uint64_t delay = cl->refresh_again ? RCLUSTER_MIN_GAP_MS
                         : rc != 0 || !cl->healthy ? RCLUSTER_FAST_MS
                                                   : cl->refresh_ms;
  cl->refresh_again = 0;
  rcluster__schedule(cl, delay);
}

/* CLUSTER SLOTS to a connected node, masters first, in turn; with none
 * connected the seeds are wanted too and the first to connect is asked. */
static void rcluster__refresh_send(rcluster_t *cl) {
  if (cl->closing || cl->refresh_inflight)
    return;
  rcluster__node_t *pick = NULL;
  for (int pass = 0; pass < 2 && pick == NULL; pass++)
    for (size_t k = 0; k < cl->n_nodes; k++) {
      rcluster__node_t *n = cl->nodes[(cl->rr + k) % cl->n_nodes];
      if (n->state == RCLIENT_CONNECTED && n->ac != NULL && !n->stalled &&
          (pass == 1 || n->master)) {
        pick = n;
        break;
      }
    }
  cl->rr++;
  if (pick == NULL) {
    cl->refresh_pending = 1;
    if (!cl->need_seeds) {
      cl->need_seeds = 1;
      rcluster__update_wanted(cl);
    }
    return;
  }
  if (redisAsyncCommand(pick->ac, rcluster__slots_cb, pick, "CLUSTER SLOTS") != REDIS_OK) {
    cl->stats.errors++;
    rcluster__error(cl, "cannot queue CLUSTER SLOTS to %s: out of memory", pick->name);
    return;
  }
  if (pick->inflight++ == 0)
    pick->progress_ms = uv_now(cl->loop);
  cl->stats.commands_sent++;
  cl->refresh_inflight = 1;
  cl->refresh_node = pick;
  cl->refresh_pending = 0;
  cl->refreshed_once = 1;
  cl->last_refresh_ms = uv_now(cl->loop);
}

static int rcluster__is_stalled(rcluster__node_t *n);

static void rcluster__refresh_tick(uv_timer_t *t) {
  rcluster_t *cl = t->data;
  if (cl->closing)
    return;
  for (size_t i = 0; i < cl->n_nodes; i++)
    if (cl->nodes[i]->state == RCLIENT_CONNECTED)
      (void)rcluster__is_stalled(cl->nodes[i]);
  if (cl->refresh_inflight) {
    const uint64_t waited = uv_now(cl->loop) - cl->last_refresh_ms;
    if (waited < cl->connect_timeout_ms) {
      cl->refresh_again = 1; /* its reply schedules the next ... */
      rcluster__schedule(cl, cl->connect_timeout_ms - waited); /* ... or this gives up */
      return;
    }
    /* A node that does not answer (hung, or a master the cluster is
     * failing over) must not stop the map reads: ask another. */
    cl->stats.refresh_errors++;
    rcluster__error(cl, "CLUSTER SLOTS to %s unanswered after %llu ms: asking another node",
                    cl->refresh_node->name, (unsigned long long)waited);
    cl->refresh_inflight = 0;
    cl->refresh_node = NULL;
  }
  rcluster__refresh_send(cl);
  if (!cl->refresh_inflight) /* nobody to ask yet */
    rcluster__schedule(cl, RCLUSTER_FAST_MS);
}

/* ---- connections, one per node (rclient.c's state machine) ------------ */

static uint64_t rcluster__backoff(rcluster_t *cl, rcluster__node_t *n) {
  uint64_t base = cl->reconnect_min_ms;
  for (unsigned i = 0; i < n->attempt && base < cl->reconnect_max_ms; i++)
    base *= 2;
  if (base > cl->reconnect_max_ms)
    base = cl->reconnect_max_ms;
  if (n->attempt < UINT_MAX)
    n->attempt++;
  const uint64_t half = base / 2;
  return base - half + rng_below(&cl->rng, half + 1);
}

static void rcluster__reconnect_cb(uv_timer_t *t) {
  rcluster__node_t *n = t->data;
  if (n->cl->closing || !n->wanted || n->state != RCLIENT_DISCONNECTED)
    return;
  n->cl->stats.reconnect_attempts++;
  rcluster__connect(n);
}

/* Parked commands of n complete as UNAVAILABLE on the next turn. */
static void rcluster__fail_parked(rcluster__node_t *n, const char *why) {
  rcluster__cmd_t *cmd = n->parked_head;
  n->parked_head = n->parked_tail = NULL;
  while (cmd != NULL) {
    rcluster__cmd_t *next = cmd->next;
    rcluster__defer(n->cl, cmd, RCLIENT_UNAVAILABLE, "%s", why);
    cmd = next;
  }
}

/* n's connection is gone (n->ac already detached): count it, and retry
 * with backoff while the node is wanted. */
static void rcluster__disconnected(rcluster__node_t *n) {
  rcluster_t *cl = n->cl;
  const int was = n->state == RCLIENT_CONNECTED;
  if (was)
    cl->stats.disconnects++;
  n->state = RCLIENT_DISCONNECTED;
  n->stalled = 0;
  uv_timer_stop(&n->timer);
  char why[RCLIENT_ERRLEN];
  snprintf(why, sizeof why, "connection to %.80s failed", n->name);
  rcluster__fail_parked(n, why);
  if (cl->closing)
    return;
  rcluster__health(cl);
  if (was && n->master)
    rcluster__want_refresh(cl); /* a master lost: a failover may follow */
  if (n->wanted) {
    const uint64_t delay = rcluster__backoff(cl, n);
    rcluster__log(cl, RCLIENT_LOG_VERBOSE, "redis cluster: reconnecting to %s in %llu ms",
                  n->name, (unsigned long long)delay);
    uv_timer_start(&n->timer, rcluster__reconnect_cb, delay, 0);
  }
}

static void rcluster__lost(rcluster__node_t *n, const redisAsyncContext *ac) {
  if (ac == NULL || n->ac != ac)
    return;
  n->ac = NULL;
  if (n->state == RCLIENT_CONNECTED) {
    rcluster__node_error(n, "lost connection to %s: %s", n->name,
                    ac->c.err ? ac->c.errstr : "closed by peer");
  } else {
    n->cl->stats.errors++;
    rcluster__node_error(n, "connection to %s failed: %s", n->name,
                    ac->c.err ? ac->c.errstr : "closed by peer");
  }
  rcluster__disconnected(n);
}

/* Drops n's connection on our own initiative: from a timer, the idle
 * callback or a reply callback only. quiet: not a failure (a node that is
 * no master any more). */
static void rcluster__drop(rcluster__node_t *n, int quiet) {
  redisAsyncContext *ac = n->ac;
  n->ac = NULL;
  if (quiet)
    n->state = RCLIENT_DISCONNECTED;
  rcluster__disconnected(n);
  if (ac != NULL)
    redisAsyncFree(ac);
}

static int rcluster__send(rcluster__node_t *n, rcluster__cmd_t *cmd);

static void rcluster__connected(rcluster__node_t *n) {
  rcluster_t *cl = n->cl;
  uv_timer_stop(&n->timer);
  n->state = RCLIENT_CONNECTED;
  n->last_err[0] = '\0';
  cl->stats.connects++;
  rcluster__log(cl, RCLIENT_LOG_NOTICE, "redis cluster: connected to %s%s", n->name,
                n->master ? " (master)" : cl->have_map ? "" : " (seed)");
  rcluster__cmd_t *cmd = n->parked_head;
  n->parked_head = n->parked_tail = NULL;
  while (cmd != NULL) {
    rcluster__cmd_t *next = cmd->next;
    if (rcluster__send(n, cmd) != 0)
      rcluster__defer(cl, cmd, cmd->st, "%s", cmd->errstr);
    cmd = next;
  }
  if ((cl->refresh_pending || !cl->have_map) && !cl->refresh_inflight)
    rcluster__refresh_send(cl);
  if (!n->wanted) { /* a seed no longer needed: closed once idle */
    cl->maint_due = 1;
    rcluster__kick(cl);
  }
  rcluster__health(cl);
}

static void rcluster__timeout_cb(uv_timer_t *t) {
  rcluster__node_t *n = t->data;
  const int requested = n->drop_requested;
  n->drop_requested = 0;
  if (n->state != RCLIENT_CONNECTING || n->ac == NULL)
    return;
  if (!requested) {
    n->cl->stats.errors++;
    rcluster__node_error(n, "connecting to %s timed out after %u ms", n->name,
                    n->cl->connect_timeout_ms);
  }
  rcluster__drop(n, 0);
}

static void rcluster__auth_cb(redisAsyncContext *ac, void *reply, void *priv) {
  rcluster__node_t *n = ac->data;
  const redisReply *r = reply;
  (void)priv;
  if (r == NULL) {
    rcluster__lost(n, ac);
    return;
  }
  if (n->ac != ac)
    return;
  if (r->type == REDIS_REPLY_ERROR) {
    n->cl->stats.errors++;
    rcluster__node_error(n, "AUTH to %s failed: %.*s", n->name,
                    (int)(r->len > 200 ? 200 : r->len), r->str);
    rcluster__drop(n, 0);
    return;
  }
  rcluster__connected(n);
}

static void rcluster__on_connect(const redisAsyncContext *cac, int status) {
  rcluster__node_t *n = cac->data;
  if (n->ac != cac)
    return;
  redisAsyncContext *ac = n->ac;
  if (status != REDIS_OK) {
    rcluster__lost(n, cac);
    return;
  }
  rcluster_t *cl = n->cl;
  if (cl->password == NULL && cl->user == NULL) {
    rcluster__connected(n);
    return;
  }
  /* as rclient's: AUTH [user] password, first on the wire */
  const char *pass = cl->password != NULL ? cl->password : "";
  const char *argv[3] = {"AUTH", cl->user != NULL ? cl->user : pass, pass};
  const size_t lens[3] = {4, strlen(argv[1]), strlen(pass)};
  if (redisAsyncCommandArgv(ac, rcluster__auth_cb, NULL, cl->user != NULL ? 3 : 2, argv, lens) !=
      REDIS_OK) {
    cl->stats.errors++;
    rcluster__error(cl, "cannot queue AUTH to %s: out of memory", n->name);
    n->drop_requested = 1;
    uv_timer_start(&n->timer, rcluster__timeout_cb, 0, 0);
    return;
  }
  cl->stats.commands_sent++;
}

static void rcluster__on_disconnect(const redisAsyncContext *ac, int status) {
  (void)status;
  rcluster__lost(ac->data, ac);
}

static void rcluster__connect(rcluster__node_t *n) {
  rcluster_t *cl = n->cl;
  const cluster_node_t *cn = &cl->map.nodes[n->idx];
  n->state = RCLIENT_CONNECTING;
  char why[RCLIENT_ERRLEN] = "";
  redisAsyncContext *ac = redisAsyncConnect(cn->host, cn->port);
  if (ac == NULL) {
    snprintf(why, sizeof why, "out of memory");
  } else if (ac->err) {
    /* refused at once: no hooks attached yet, a plain free is safe */
    snprintf(why, sizeof why, "%s", ac->c.errstr);
    redisAsyncFree(ac);
  } else if (rattach_libuv_batched(ac, cl->loop, &cl->batch) != 0) {
    /* rattach.h: POLLERR reaches hiredis, and the commands of a loop
     * turn go out in one write, with no epoll_ctl per command */
    redisAsyncFree(ac);
    snprintf(why, sizeof why, "cannot attach to the event loop");
  } else {
    rreply_use(&ac->c); /* rreply.h: one arena per reply */
    ac->data = n;
    n->ac = ac;
    redisAsyncSetConnectCallback(ac, rcluster__on_connect);
    redisAsyncSetDisconnectCallback(ac, rcluster__on_disconnect);
    uv_timer_start(&n->timer, rcluster__timeout_cb, cl->connect_timeout_ms, 0);
    return;
  }
  cl->stats.errors++;
  rcluster__node_error(n, "connection to %s failed: %s", n->name, why);
  rcluster__disconnected(n);
}

/* ---- commands ---------------------------------------------------------- */

/* A node answered: it is not (or no longer) hung, and only now does its
 * reconnect backoff start again from reconnect_min_ms, as rclient's does
 * (rclient__answered): a node that breaks every connection with its first
 * reply is retried at the backoff's pace. */
static void rcluster__progress(rcluster__node_t *n) {
  n->attempt = 0;
  n->progress_ms = uv_now(n->cl->loop);
  if (!n->stalled)
    return;
  n->stalled = 0;
  rcluster__log(n->cl, RCLIENT_LOG_NOTICE, "redis cluster: %s answers again", n->name);
  rcluster__health(n->cl);
}

/* Whether n has had commands waiting without a single reply for
 * connect_timeout_ms (a hung master: SIGSTOP, a long script, a network
 * that drops packets). Such a node gets no new commands (they complete as
 * UNAVAILABLE at once: the deadline would have answered them degraded
 * anyway), the cluster counts as unhealthy and the map is read again every
 * RCLUSTER_FAST_MS, so that the replica the cluster promotes is found. */
static int rcluster__is_stalled(rcluster__node_t *n) {
  if (n->stalled)
    return 1;
  rcluster_t *cl = n->cl;
  const uint64_t now = uv_now(cl->loop);
  if (n->inflight == 0 || now - n->progress_ms < cl->connect_timeout_ms)
    return 0;
  n->stalled = 1;
  rcluster__node_error(n, "%s has not answered for %llu ms (%zu commands waiting)", n->name,
                       (unsigned long long)(now - n->progress_ms), n->inflight);
  rcluster__health(cl);
  rcluster__want_refresh(cl);
  return 1;
}

static int rcluster__is(const redisReply *r, const char *word) {
  const size_t n = strlen(word);
  return r->len >= n && memcmp(r->str, word, n) == 0 && (r->len == n || r->str[n] == ' ');
}

static void rcluster__reply_cb(redisAsyncContext *ac, void *reply, void *priv) {
  rcluster__cmd_t *cmd = priv;
  rcluster__node_t *n = ac->data;
  rcluster_t *cl = n->cl;
  const redisReply *r = reply;
  if (n->inflight > 0)
    n->inflight--;
  if (cl->stats.inflight > 0)
    cl->stats.inflight--;
  if (r != NULL)
    rcluster__progress(n);
  if (r == NULL) {
    rcluster__lost(n, ac);
    char why[RCLIENT_ERRLEN];
    snprintf(why, sizeof why, "connection to %.80s lost", n->name);
    rcluster__complete(cl, cmd, RCLIENT_UNAVAILABLE, NULL, why);
    return;
  }
  if (r->type == REDIS_REPLY_ERROR && !cl->closing) {
    uint16_t slot;
    cluster_node_t to;
    const int redir = cluster_parse_redirect(r->str, r->len, &slot, &to);
    if (redir != CLUSTER_REDIR_NONE) {
      if (to.host[0] == '\0')
        snprintf(to.host, sizeof to.host, "%s", cl->map.nodes[n->idx].host);
      int t = cluster_map_node(&cl->map, to.host, strlen(to.host), to.port);
      if (t >= 0 && rcluster__sync_nodes(cl) != 0)
        t = RECD_ENOMEM;
      if (t < 0 || ++cmd->redirects > RCLUSTER_MAX_REDIRECTS) {
        char why[RCLIENT_ERRLEN];
        snprintf(why, sizeof why, "%s (%.80s)",
                 t < 0 ? "cannot follow a redirection" : "too many redirections", r->str);
        rcluster__complete(cl, cmd, RCLIENT_UNAVAILABLE, NULL, why);
        return;
      }
      if (redir == CLUSTER_REDIR_MOVED) {
        cl->stats.moved++;
        cluster_map_assign(&cl->map, slot, slot, t);
        if (!cl->nodes[t]->master) {
          cl->nodes[t]->master = 1;
          cl->nodes[t]->wanted = 1;
          rcluster__health(cl);
        }
        rcluster__want_refresh(cl);
      } else {
        cl->stats.ask++;
        cmd->ask = t;
      }
      rcluster__dispatch(cl, cmd);
      return;
    }
    if (rcluster__is(r, "CLUSTERDOWN") || rcluster__is(r, "TRYAGAIN") ||
        rcluster__is(r, "MASTERDOWN") || rcluster__is(r, "LOADING")) {
      cl->stats.down++;
      if (!rcluster__is(r, "TRYAGAIN"))
        rcluster__want_refresh(cl);
      char why[RCLIENT_ERRLEN];
      snprintf(why, sizeof why, "%.24s: %.*s", n->name, (int)(r->len > 100 ? 100 : r->len),
               r->str);
      rcluster__complete(cl, cmd, RCLIENT_UNAVAILABLE, NULL, why);
      return;
    }
  }
  rcluster__complete(cl, cmd, RCLIENT_OK, r, NULL);
}

/* Queues cmd on n's connection (ASKING first when asked). 0, or -1 with
 * cmd->st / errstr saying why. */
static int rcluster__send(rcluster__node_t *n, rcluster__cmd_t *cmd) {
  rcluster_t *cl = n->cl;
  redisAsyncContext *ac = n->ac;
  if (ac == NULL) {
    cmd->st = RCLIENT_UNAVAILABLE;
    snprintf(cmd->errstr, sizeof cmd->errstr, "not connected to %.80s", n->name);
    return -1;
  }
  if ((cmd->ask >= 0 && redisAsyncCommand(ac, NULL, NULL, "ASKING") != REDIS_OK) ||
      redisAsyncFormattedCommand(ac, rcluster__reply_cb, cmd, cmd->buf, cmd->len) != REDIS_OK) {
    /* hiredis says REDIS_ERR for OOM and for a context going away */
    if (ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) {
      cmd->st = RCLIENT_UNAVAILABLE;
      snprintf(cmd->errstr, sizeof cmd->errstr, "not connected to %.80s", n->name);
    } else {
      cl->stats.errors++;
      cmd->st = RCLIENT_ERROR;
      snprintf(cmd->errstr, sizeof cmd->errstr, "out of memory");
    }
    return -1;
  }
  cl->stats.commands_sent += cmd->ask >= 0 ? 2 : 1;
  cmd->ask = -1;
  if (n->inflight++ == 0)
    n->progress_ms = uv_now(cl->loop);
  cl->stats.inflight++;
  return 0;
}

/* A connected master, in turn; -1 when none is. */
static int rcluster__any_master(rcluster_t *cl) {
  for (size_t k = 0; k < cl->n_nodes; k++) {
    const rcluster__node_t *n = cl->nodes[(cl->rr + k) % cl->n_nodes];
    if (n->master && n->state == RCLIENT_CONNECTED) {
      cl->rr += k + 1;
      return n->idx;
    }
  }
  return -1;
}

/* Sends cmd where it belongs now, parks it on a connecting node, or
 * completes it as UNAVAILABLE on the next turn. */
static void rcluster__dispatch(rcluster_t *cl, rcluster__cmd_t *cmd) {
  if (cl->closing) {
    rcluster__defer(cl, cmd, RCLIENT_UNAVAILABLE, "Redis client closed");
    return;
  }
  const int idx = cmd->ask >= 0 ? cmd->ask
                  : cmd->keyed  ? cluster_map_lookup(&cl->map, cmd->slot)
                                : rcluster__any_master(cl);
  rcluster__node_t *n = idx >= 0 && (size_t)idx < cl->n_nodes ? cl->nodes[idx] : NULL;
  if (n == NULL) {
    rcluster__want_refresh(cl);
    if (!cl->have_map)
      rcluster__defer(cl, cmd, RCLIENT_UNAVAILABLE, "no Redis Cluster slot map yet");
    else if (cmd->keyed)
      rcluster__defer(cl, cmd, RCLIENT_UNAVAILABLE, "slot %u has no master", cmd->slot);
    else
      rcluster__defer(cl, cmd, RCLIENT_UNAVAILABLE, "no Redis Cluster master connected");
    return;
  }
  if (n->state == RCLIENT_DISCONNECTED && !uv_is_active((uv_handle_t *)&n->timer)) {
    /* a node nobody keeps connected (a redirection named it): connect
     * now; the command waits for it */
    n->target = 1;
    n->wanted = 1;
    rcluster__connect(n);
  }
  if (n->state == RCLIENT_CONNECTED && rcluster__is_stalled(n)) {
    rcluster__defer(cl, cmd, RCLIENT_UNAVAILABLE, "Redis Cluster node %s does not answer",
                    n->name);
  } else if (n->state == RCLIENT_CONNECTED) {
    if (rcluster__send(n, cmd) != 0)
      rcluster__defer(cl, cmd, cmd->st, "%s", cmd->errstr);
  } else if (n->state == RCLIENT_CONNECTING) {
    cmd->next = NULL;
    if (n->parked_tail != NULL)
      n->parked_tail->next = cmd;
    else
      n->parked_head = cmd;
    n->parked_tail = cmd;
  } else {
    rcluster__defer(cl, cmd, RCLIENT_UNAVAILABLE, "Redis Cluster node %s is down (reconnecting)",
                    n->name);
  }
}

/* SCRIPT ... to every connected master. */
static int rcluster__broadcast(rcluster_t *cl, char *buf, size_t len, rcluster_cb cb,
                               void *arg) {
  rcluster__group_t *g = calloc(1, sizeof *g);
  if (g == NULL) {
    free(buf);
    return RECD_ENOMEM;
  }
  *g = (rcluster__group_t){.cb = cb, .arg = arg, .buf = buf, .len = len};
  snprintf(g->errstr, sizeof g->errstr, "no Redis Cluster master connected");
  size_t targets = 0;
  for (size_t i = 0; i < cl->n_nodes; i++)
    targets += cl->nodes[i]->master && cl->nodes[i]->state == RCLIENT_CONNECTED;
  if (targets == 0) {
    rcluster__cmd_t *part = calloc(1, sizeof *part);
    if (part != NULL) {
      *part = (rcluster__cmd_t){.group = g, .buf = g->buf, .len = g->len, .ask = -1};
      g->pending = 1;
      rcluster__want_refresh(cl);
      rcluster__defer(cl, part, RCLIENT_UNAVAILABLE, "%s", g->errstr);
    }
  }
  for (size_t i = 0; i < cl->n_nodes && targets > 0; i++) {
    rcluster__node_t *n = cl->nodes[i];
    if (!n->master || n->state != RCLIENT_CONNECTED)
      continue;
    rcluster__cmd_t *part = calloc(1, sizeof *part);
    if (part == NULL)
      break; /* the masters reached so far answer for the group */
    *part = (rcluster__cmd_t){.group = g, .buf = g->buf, .len = g->len, .ask = -1};
    g->pending++;
    if (rcluster__send(n, part) != 0)
      rcluster__defer(cl, part, part->st, "%s", part->errstr);
  }
  if (g->pending == 0) {
    free(g->buf);
    free(g);
    return RECD_ENOMEM;
  }
  return 0;
}

/* RESP: "*<argc>\r\n" then "$<len>\r\n<arg>\r\n" per argument. */
static size_t rcluster__digits(size_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

static size_t rcluster__resp_len(int argc, const size_t *lens) {
  size_t n = 3 + rcluster__digits((size_t)argc);
  for (int i = 0; i < argc; i++)
    n += 5 + rcluster__digits(lens[i]) + lens[i];
  return n;
}

static char *rcluster__put_num(char *p, char lead, size_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  *p++ = lead;
  while (n > 0)
    *p++ = tmp[--n];
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

static void rcluster__resp_write(char *p, int argc, const char **argv, const size_t *lens) {
  p = rcluster__put_num(p, '*', (size_t)argc);
  for (int i = 0; i < argc; i++) {
    p = rcluster__put_num(p, '$', lens[i]);
    if (lens[i] > 0)
      memcpy(p, argv[i], lens[i]);
    p += lens[i];
    *p++ = '\r';
    *p++ = '\n';
  }
}

int rcluster_command(rcluster_t *cl, int argc, const char **argv, const size_t *lens,
                     rcluster_cb cb, void *arg) {
  if (cl == NULL || cl->closing || argc < 1)
    return RECD_EINVAL;
  uint16_t slot;
  const rcluster_route_t route = rcluster_route(argc, argv, lens, &slot);
  const size_t len = rcluster__resp_len(argc, lens);
  if (route == RCLUSTER_ROUTE_ALL) {
    char *buf = malloc(len);
    if (buf == NULL)
      return RECD_ENOMEM;
    rcluster__resp_write(buf, argc, argv, lens);
    return rcluster__broadcast(cl, buf, len, cb, arg);
  }
  /* one block: the command, then its RESP */
  rcluster__cmd_t *cmd = malloc(sizeof *cmd + len);
  if (cmd == NULL)
    return RECD_ENOMEM;
  *cmd = (rcluster__cmd_t){.cb = cb, .arg = arg, .buf = (char *)(cmd + 1), .len = len,
                           .slot = slot, .keyed = route == RCLUSTER_ROUTE_KEY, .ask = -1};
  rcluster__resp_write(cmd->buf, argc, argv, lens);
  rcluster__dispatch(cl, cmd);
  return 0;
}

void rcluster_get_stats(const rcluster_t *cl, rcluster_stats_t *out) {
  *out = cl->stats;
}

/* ---- the idle callback: deferred completions, health, maintenance ----- */

static void rcluster__maintain(rcluster_t *cl) {
  for (size_t i = 0; i < cl->n_nodes; i++) {
    rcluster__node_t *n = cl->nodes[i];
    if (n->wanted && n->state == RCLIENT_DISCONNECTED &&
        !uv_is_active((uv_handle_t *)&n->timer)) {
      rcluster__connect(n);
    } else if (!n->wanted && n->state == RCLIENT_CONNECTED) {
      /* Commands still in flight there (a master that hung, and whose
       * replica the cluster promoted, may never answer them) complete as
       * UNAVAILABLE: their requests have had their degraded answers at
       * the deadline, and they must not hold max_inflight forever. */
      rcluster__log(cl, n->inflight > 0 ? RCLIENT_LOG_NOTICE : RCLIENT_LOG_VERBOSE,
                    "redis cluster: closing the connection to %s (not a master; %zu commands "
                    "in flight)", n->name, n->inflight);
      rcluster__drop(n, 1);
    }
  }
}

/* One of cl's handles (or its batch) is closed; the last frees cl. */
static void rcluster__one_closed(rcluster_t *cl) {
  if (--cl->handles_open > 0)
    return;
  void (*done)(void *) = cl->done;
  void *arg = cl->done_arg;
  for (size_t i = 0; i < cl->n_nodes; i++)
    free(cl->nodes[i]);
  free(cl->nodes);
  cluster_map_free(&cl->map);
  free(cl->password);
  free(cl->user);
  free(cl);
  if (done != NULL)
    done(arg);
}

static void rcluster__closed_cb(uv_handle_t *h) {
  rcluster__one_closed(h->data);
}

static void rcluster__batch_closed(void *arg) {
  rcluster__one_closed(arg);
}

static void rcluster__node_closed_cb(uv_handle_t *h) {
  rcluster__node_t *n = h->data;
  rcluster__one_closed(n->cl);
}

static void rcluster__close_handles(rcluster_t *cl) {
  cl->handles_open = 3 + (int)cl->n_nodes;
  rattach_batch_close(&cl->batch, rcluster__batch_closed, cl);
  uv_close((uv_handle_t *)&cl->refresh_timer, rcluster__closed_cb);
  uv_close((uv_handle_t *)&cl->idle, rcluster__closed_cb);
  for (size_t i = 0; i < cl->n_nodes; i++)
    uv_close((uv_handle_t *)&cl->nodes[i]->timer, rcluster__node_closed_cb);
}

static void rcluster__idle_cb(uv_idle_t *h) {
  rcluster_t *cl = h->data;
  rcluster__cmd_t *cmd = cl->deferred_head;
  cl->deferred_head = cl->deferred_tail = NULL;
  while (cmd != NULL) {
    rcluster__cmd_t *next = cmd->next;
    rcluster__complete(cl, cmd, cmd->st, NULL, cmd->errstr);
    cmd = next;
  }
  if (cl->health_due && !cl->closing) {
    cl->health_due = 0;
    if (cl->healthy != cl->reported) {
      cl->reported = cl->healthy;
      if (cl->health != NULL)
        cl->health(cl->healthy, cl->cb_arg);
    }
  }
  if (cl->maint_due && !cl->closing) {
    cl->maint_due = 0;
    rcluster__maintain(cl);
  }
  if (cl->deferred_head != NULL || (!cl->closing && (cl->maint_due || cl->health_due)))
    return; /* more next turn */
  uv_idle_stop(h);
  if (cl->closing && cl->handles_open == 0)
    rcluster__close_handles(cl);
}

/* ---- life cycle ---------------------------------------------------------- */

int rcluster_new(uv_loop_t *loop, const rcluster_opts_t *o, rcluster_t **out, char *errbuf) {
  if (loop == NULL || o == NULL || out == NULL || o->seeds == NULL)
    return recd_errf(errbuf, RECD_EINVAL, "rcluster: missing argument");
  if (o->connect_timeout_ms == 0 || o->reconnect_min_ms == 0 || o->refresh_ms == 0 ||
      o->reconnect_max_ms < o->reconnect_min_ms)
    return recd_errf(errbuf, RECD_EINVAL, "rcluster: bad timeouts");
  cluster_node_t *seeds = NULL;
  size_t n_seeds = 0;
  char why[RECD_ERRLEN];
  int rc = cluster_parse_nodes(o->seeds, &seeds, &n_seeds, why);
  if (rc != 0)
    return recd_errf(errbuf, rc, "redis-cluster-nodes: %s", why);
  rcluster_t *cl = calloc(1, sizeof *cl);
  if (cl == NULL) {
    free(seeds);
    return recd_errf(errbuf, RECD_ENOMEM, "rcluster: out of memory");
  }
  cl->loop = loop;
  cl->connect_timeout_ms = o->connect_timeout_ms;
  cl->reconnect_min_ms = o->reconnect_min_ms;
  cl->reconnect_max_ms = o->reconnect_max_ms;
  cl->refresh_ms = o->refresh_ms;
  cl->log = o->log;
  cl->log_arg = o->log_arg;
  cl->error = o->error;
  cl->health = o->health;
  cl->cb_arg = o->cb_arg;
  cluster_map_init(&cl->map);
  rng_seed(&cl->rng, uv_hrtime() ^ (uint64_t)(uintptr_t)cl ^ ((uint64_t)getpid() << 32));
  if (o->password != NULL && o->password[0] != '\0' &&
      (cl->password = strdup(o->password)) == NULL)
    rc = RECD_ENOMEM;
  if (o->user != NULL && o->user[0] != '\0' && (cl->user = strdup(o->user)) == NULL)
    rc = RECD_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n_seeds; i++) {
    const int idx = cluster_map_node(&cl->map, seeds[i].host, strlen(seeds[i].host),
                                     seeds[i].port);
    if (idx < 0)
      rc = idx;
  }
  free(seeds);
  if (rc != 0) {
    cluster_map_free(&cl->map);
    free(cl->password);
    free(cl->user);
    free(cl);
    return recd_errf(errbuf, rc, "rcluster: %s", recd_strerror(rc));
  }
  /* Timer and idle init cannot fail on Unix; from here on everything is
   * released through the close path. */
  uv_timer_init(loop, &cl->refresh_timer);
  uv_idle_init(loop, &cl->idle);
  rattach_batch_init(&cl->batch, loop);
  cl->refresh_timer.data = cl;
  cl->idle.data = cl;
  if ((rc = rcluster__sync_nodes(cl)) != 0) {
    cl->closing = 1;
    rcluster__close_handles(cl);
    return recd_errf(errbuf, rc, "rcluster: out of memory");
  }
  for (size_t i = 0; i < cl->n_nodes; i++) {
    cl->nodes[i]->seed = 1;
    cl->nodes[i]->wanted = 1;
  }
  cl->stats.nodes = cl->map.n_nodes;
  cl->stats.unserved_slots = CLUSTER_N_SLOTS;
  /* The seeds at once; the first to connect is asked for the map. */
  for (size_t i = 0; i < cl->n_nodes; i++)
    rcluster__connect(cl->nodes[i]);
  rcluster__schedule(cl, RCLUSTER_FAST_MS);
  *out = cl;
  return 0;
}

void rcluster_close(rcluster_t *cl, void (*done)(void *arg), void *arg) {
  if (cl == NULL || cl->closing)
    return;
  cl->closing = 1;
  cl->done = done;
  cl->done_arg = arg;
  uv_timer_stop(&cl->refresh_timer);
  for (size_t i = 0; i < cl->n_nodes; i++) {
    rcluster__node_t *n = cl->nodes[i];
    uv_timer_stop(&n->timer);
    redisAsyncContext *ac = n->ac;
    n->ac = NULL;
    n->state = RCLIENT_DISCONNECTED;
    rcluster__fail_parked(n, "Redis client closed");
    /* Pending replies fire now with NULL (or right after the current
     * reply callback when we are inside one of ac's). */
    if (ac != NULL)
      redisAsyncFree(ac);
  }
  rcluster__log(cl, RCLIENT_LOG_VERBOSE, "redis cluster: client closed");
  rcluster__kick(cl);
}
