/* redis_cluster.c - see redis_cluster.h. */
#include "redis_cluster.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster_slots_reply.h"
#include "recd/err.h"

/* Rounds of a batch (redirections and retries) before giving up, and the
 * sleep before a retry of TRYAGAIN / CLUSTERDOWN / LOADING: 50 ms more each
 * round, at most 500 ms, so about 6 s in all. */
#define LINK_MAX_ROUNDS 16
#define LINK_RETRY_MS 50
#define LINK_RETRY_MAX_MS 500

/* One command of a batch. */
typedef struct link_cmd {
  char *buf;          /* RESP, from redisvFormatCommand */
  size_t len;
  uint16_t slot;
  int ask;            /* node to send it to with ASKING first, or -1 */
  int node;           /* where it went this round */
  int moved;          /* the node a MOVED named this round, or -1 */
  redisReply *reply;  /* the final reply, or NULL while pending */
  char last_err[96];  /* the last retryable error, for the message */
} link_cmd_t;

struct redis_link {
  const redis_opts_t *o;
  int cluster;
  cluster_map_t map;       /* single server: one node serving every slot */
  redisContext **conn;     /* per map node, NULL until connected */
  size_t conn_cap;
  link_cmd_t *cmd;
  size_t n_cmd, cmd_cap;
  int oom;                 /* an append failed */
  int ran;                 /* the batch has run: replies until the next append */
};

static void link__sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0)
    ;
}

/* Where node i is, for messages. */
static const char *link__name(const redis_link_t *l, int i, char *buf, size_t cap) {
  if (!l->cluster && l->o->socket != NULL)
    snprintf(buf, cap, "%s", l->o->socket);
  else
    snprintf(buf, cap, strchr(l->map.nodes[i].host, ':') ? "[%s]:%d" : "%s:%d",
             l->map.nodes[i].host, l->map.nodes[i].port);
  return buf;
}

int redis_node_connect(const redis_opts_t *o, const char *host, int port, const char *sock,
                       redisContext **out, char *errbuf) {
  struct timeval tv = {.tv_sec = o->timeout_ms / 1000,
                       .tv_usec = (o->timeout_ms % 1000) * 1000};
  redisContext *c = sock ? redisConnectUnixWithTimeout(sock, tv)
                         : redisConnectWithTimeout(host, port, tv);
  if (c == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "redis: cannot allocate a context");
  if (c->err) {
    if (sock)
      recd_errf(errbuf, RECD_EREDIS, "redis: cannot connect to %s: %s", sock, c->errstr);
    else
      recd_errf(errbuf, RECD_EREDIS, "redis: cannot connect to %s:%d: %s", host, port,
                c->errstr);
    redisFree(c);
    return RECD_EREDIS;
  }
  redisSetTimeout(c, tv);
  const char *user = o->user != NULL && *o->user ? o->user : NULL;
  if ((o->password != NULL && *o->password) || user != NULL) {
    /* With --redis-user, Redis 6's AUTH user password (a nopass user
     * takes any password, "" included). */
    const char *pass = o->password != NULL ? o->password : "";
    redisReply *r = user != NULL ? redisCommand(c, "AUTH %s %s", user, pass)
                                 : redisCommand(c, "AUTH %s", pass);
    int bad = r == NULL || r->type == REDIS_REPLY_ERROR;
    if (bad && sock)
      recd_errf(errbuf, RECD_EREDIS, "redis: AUTH failed: %s", r ? r->str : c->errstr);
    else if (bad)
      recd_errf(errbuf, RECD_EREDIS, "redis: AUTH failed on %s:%d: %s", host, port,
                r ? r->str : c->errstr);
    freeReplyObject(r);
    if (bad) {
      redisFree(c);
      return RECD_EREDIS;
    }
  }
  *out = c;
  return 0;
}

/* conn[] as long as the map's node list. */
static int link__grow(redis_link_t *l) {
  if (l->map.n_nodes <= l->conn_cap)
    return 0;
  size_t nc = l->map.cap > l->map.n_nodes ? l->map.cap : l->map.n_nodes;
  redisContext **g = realloc(l->conn, nc * sizeof *g);
  if (g == NULL)
    return RECD_ENOMEM;
  for (size_t i = l->conn_cap; i < nc; i++)
    g[i] = NULL;
  l->conn = g;
  l->conn_cap = nc;
  return 0;
}

/* The connection to node i, opened when needed. */
static int link__conn(redis_link_t *l, int i, redisContext **out, char *errbuf) {
  if (link__grow(l) != 0)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  if (l->conn[i] == NULL) {
    int rc = redis_node_connect(l->o, l->map.nodes[i].host, l->map.nodes[i].port,
                           l->cluster ? NULL : l->o->socket, &l->conn[i], errbuf);
    if (rc != 0)
      return rc;
  }
  *out = l->conn[i];
  return 0;
}

static void link__drop(redis_link_t *l, int i) {
  if ((size_t)i < l->conn_cap && l->conn[i] != NULL) {
    redisFree(l->conn[i]);
    l->conn[i] = NULL;
  }
}

/* Reads CLUSTER SLOTS from c (at host `replier`) into the map; the map is
 * unchanged on failure. */
static int link__load_slots(redis_link_t *l, redisContext *c, const char *replier,
                            char *errbuf) {
  redisReply *r = redisCommand(c, "CLUSTER SLOTS");
  if (r == NULL)
    return recd_errf(errbuf, RECD_EREDIS, "redis cluster: CLUSTER SLOTS from %s: %s", replier,
                     c->errstr);
  uint16_t saved[CLUSTER_N_SLOTS];
  memcpy(saved, l->map.slot_node, sizeof saved);
  int rc = cluster_slots_parse_reply(r, replier, &l->map, errbuf);
  if (rc == 0 && link__grow(l) != 0)
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  uint32_t first = 0, unserved = rc == 0 ? cluster_map_unserved(&l->map, &first) : 0;
  if (rc == 0 && unserved > 0)
    rc = recd_errf(errbuf, RECD_EREDIS, "redis cluster: %u slots (first %u) have no master "
                   "(cluster not ready or not fully covered: see CLUSTER INFO)", unserved, first);
  if (rc != 0)
    memcpy(l->map.slot_node, saved, sizeof saved);
  freeReplyObject(r);
  return rc;
}

/* Re-reads the slot map from a master it knows, else from a seed. */
static int link__refresh(redis_link_t *l, char *errbuf) {
  int rc = RECD_EREDIS;
  for (size_t i = 0; i < l->map.n_nodes; i++) {
    redisContext *c;
    if (!cluster_map_serves(&l->map, (int)i) || link__conn(l, (int)i, &c, errbuf) != 0)
      continue;
    if ((rc = link__load_slots(l, c, l->map.nodes[i].host, errbuf)) == 0)
      return 0;
  }
  cluster_node_t *seeds = NULL;
  size_t n_seeds = 0;
  if ((rc = cluster_parse_nodes(l->o->cluster_nodes, &seeds, &n_seeds, errbuf)) != 0)
    return rc;
  char why[RECD_ERRLEN] = "";
  rc = RECD_EREDIS;
  for (size_t i = 0; i < n_seeds && rc != 0; i++) {
    redisContext *c = NULL;
    rc = redis_node_connect(l->o, seeds[i].host, seeds[i].port, NULL, &c, why);
    if (rc == 0) {
      rc = link__load_slots(l, c, seeds[i].host, why);
      redisFree(c);
    }
  }
  free(seeds);
  if (rc != 0)
    recd_errf(errbuf, rc, "redis cluster: no seed node gave a usable slot map (last: %s)",
              why);
  return rc;
}

int redis_link_open(const redis_opts_t *o, redis_link_t **out, char *errbuf) {
  *out = NULL;
  redis_link_t *l = calloc(1, sizeof *l);
  if (l == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  l->o = o;
  cluster_map_init(&l->map);
  int rc;
  if (o->cluster_nodes == NULL) {
    const char *host = o->socket ? "localhost" : o->host;
    const int node = cluster_map_node(&l->map, host, strlen(host), o->socket ? 1 : o->port);
    rc = node < 0 ? recd_errf(errbuf, RECD_EINVAL, "redis: bad host \"%s\"", host) : 0;
    if (rc == 0)
      cluster_map_assign(&l->map, 0, CLUSTER_N_SLOTS - 1, node);
    redisContext *c;
    if (rc == 0)
      rc = link__conn(l, 0, &c, errbuf);
  } else {
    l->cluster = 1;
    rc = link__refresh(l, errbuf);
    /* Every master now, so that a wrong password or an unreachable master
     * stops the run before any work. */
    for (size_t i = 0; rc == 0 && i < l->map.n_nodes; i++) {
      redisContext *c;
      if (cluster_map_serves(&l->map, (int)i))
        rc = link__conn(l, (int)i, &c, errbuf);
    }
  }
  if (rc != 0) {
    redis_link_close(l);
    return rc;
  }
  *out = l;
  return 0;
}

static void link__clear_batch(redis_link_t *l) {
  for (size_t i = 0; i < l->n_cmd; i++) {
    free(l->cmd[i].buf);
    freeReplyObject(l->cmd[i].reply);
  }
  l->n_cmd = 0;
  l->oom = 0;
  l->ran = 0;
}

void redis_link_close(redis_link_t *l) {
  if (l == NULL)
    return;
  link__clear_batch(l);
  free(l->cmd);
  for (size_t i = 0; i < l->conn_cap; i++)
    if (l->conn[i] != NULL)
      redisFree(l->conn[i]);
  free(l->conn);
  cluster_map_free(&l->map);
  free(l);
}

int redis_link_is_cluster(const redis_link_t *l) {
  return l->cluster;
}

size_t redis_link_n_masters(const redis_link_t *l) {
  size_t n = 0;
  for (size_t i = 0; i < l->map.n_nodes; i++)
    n += (size_t)cluster_map_serves(&l->map, (int)i);
  return n;
}

int redis_link_scan(redis_link_t *l, const char *pattern,
                    int (*fn)(void *arg, const char *key, size_t len), void *arg,
                    char *errbuf) {
  /* The masters when the scan starts: a node that gains slots later only
   * gains keys some master already returned (or, mid-migration, may miss
   * or repeat some, as one server's SCAN may while it rehashes). */
  const size_t n_nodes = l->map.n_nodes;
  uint8_t *master = calloc(n_nodes > 0 ? n_nodes : 1, 1);
  if (master == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  for (size_t i = 0; i < n_nodes; i++)
    master[i] = (uint8_t)cluster_map_serves(&l->map, (int)i);
  int rc = 0;
  char name[300];
  for (size_t i = 0; i < n_nodes && rc == 0; i++) {
    if (!master[i])
      continue;
    redisContext *c;
    if ((rc = link__conn(l, (int)i, &c, errbuf)) != 0)
      break;
    char cursor[32] = "0";
    do {
      redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
      if (r == NULL) {
        rc = recd_errf(errbuf, RECD_EREDIS, "redis: SCAN on %s: %s",
                       link__name(l, (int)i, name, sizeof name), c->errstr);
        break;
      }
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
          r->element[0]->type != REDIS_REPLY_STRING ||
          r->element[1]->type != REDIS_REPLY_ARRAY || r->element[0]->len >= sizeof cursor) {
        rc = recd_errf(errbuf, RECD_EREDIS, "redis: unexpected SCAN reply from %s%s%s",
                       link__name(l, (int)i, name, sizeof name),
                       r->type == REDIS_REPLY_ERROR ? ": " : "",
                       r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
        break;
      }
      memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
      const redisReply *keys = r->element[1];
      for (size_t k = 0; k < keys->elements && rc == 0; k++)
        if (keys->element[k]->type == REDIS_REPLY_STRING)
          rc = fn(arg, keys->element[k]->str, keys->element[k]->len);
      freeReplyObject(r);
    } while (rc == 0 && strcmp(cursor, "0") != 0);
  }
  free(master);
  return rc;
}

/* The first argument of a formatted command ("*N\r\n$L\r\nNAME\r\n$L\r\nKEY\r\n"):
 * its key. */
static int link__key(const char *buf, size_t len, const char **key, size_t *klen) {
  const char *p = buf, *end = buf + len;
  p = memchr(p, '\n', (size_t)(end - p));            /* *N */
  for (int arg = 0; arg < 2 && p != NULL; arg++) {
    if (++p >= end || *p != '$')
      return -1;
    size_t l = 0;
    for (++p; p < end && *p >= '0' && *p <= '9'; p++)
      l = l * 10 + (size_t)(*p - '0');
    if (end - p < 2 || (size_t)(end - p - 2) < l)
      return -1;
    p += 2; /* \r\n */
    if (arg == 1) {
      *key = p;
      *klen = l;
      return 0;
    }
    p += l + 1; /* the name, \r; p on \n */
  }
  return -1;
}

int redis_link_append(redis_link_t *l, const char *fmt, ...) {
  if (l->ran)
    link__clear_batch(l);
  if (l->oom)
    return RECD_ENOMEM;
  if (l->n_cmd == l->cmd_cap) {
    size_t nc = l->cmd_cap ? 2 * l->cmd_cap : 64;
    link_cmd_t *g = realloc(l->cmd, nc * sizeof *g);
    if (g == NULL) {
      l->oom = 1;
      return RECD_ENOMEM;
    }
    l->cmd = g;
    l->cmd_cap = nc;
  }
  va_list ap;
  va_start(ap, fmt);
  char *buf = NULL;
  int len = redisvFormatCommand(&buf, fmt, ap);
  va_end(ap);
  if (len < 0 || buf == NULL) {
    l->oom = 1;
    return RECD_ENOMEM;
  }
  const char *key = "";
  size_t klen = 0;
  link__key(buf, (size_t)len, &key, &klen); /* no key (never sent so): slot 0 */
  l->cmd[l->n_cmd++] = (link_cmd_t){.buf = buf, .len = (size_t)len,
                                    .slot = cluster_key_slot(key, klen), .ask = -1,
                                    .moved = -1};
  return 0;
}

size_t redis_link_pending(const redis_link_t *l) {
  return l->ran ? 0 : l->n_cmd;
}

const redisReply *redis_link_reply(const redis_link_t *l, size_t i) {
  return i < l->n_cmd ? l->cmd[i].reply : NULL;
}

static int link__is(const redisReply *r, const char *word) {
  const size_t n = strlen(word);
  return r->type == REDIS_REPLY_ERROR && r->len >= n && memcmp(r->str, word, n) == 0 &&
         (r->len == n || r->str[n] == ' ');
}

/* Sends this round's pending commands, each to its node, and reads the
 * replies. *redirected / *retry say whether the map must be re-read / a
 * sleep is due. */
static int link__round(redis_link_t *l, int *redirected, int *retry, char *errbuf) {
  static const char asking[] = "*1\r\n$6\r\nASKING\r\n";
  char name[300];
  const size_t n_nodes = l->map.n_nodes;
  uint8_t *used = calloc(n_nodes > 0 ? n_nodes : 1, 1);
  if (used == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  int rc = 0;
  for (size_t i = 0; i < l->n_cmd && rc == 0; i++) {
    link_cmd_t *m = &l->cmd[i];
    if (m->reply != NULL)
      continue;
    m->node = m->ask >= 0 ? m->ask : cluster_map_lookup(&l->map, m->slot);
    if (m->node < 0) { /* cannot happen: a loaded map serves every slot */
      rc = recd_errf(errbuf, RECD_EREDIS, "redis cluster: slot %u has no master", m->slot);
      break;
    }
    redisContext *c;
    if ((rc = link__conn(l, m->node, &c, errbuf)) != 0)
      break;
    if ((m->ask >= 0 && redisAppendFormattedCommand(c, asking, sizeof asking - 1) != REDIS_OK) ||
        redisAppendFormattedCommand(c, m->buf, m->len) != REDIS_OK)
      rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
    used[m->node] = 1;
  }
  /* Every node's commands on the wire before any reply is awaited, so the
   * masters work in parallel. */
  for (size_t n = 0; n < n_nodes && rc == 0; n++) {
    int done = 0;
    while (used[n] && !done && rc == 0)
      if (redisBufferWrite(l->conn[n], &done) != REDIS_OK)
        rc = recd_errf(errbuf, RECD_EREDIS, "redis: %s: %s",
                       link__name(l, (int)n, name, sizeof name), l->conn[n]->errstr);
  }
  /* Replies per node, in the order sent. */
  for (size_t i = 0; i < l->n_cmd && rc == 0; i++) {
    link_cmd_t *m = &l->cmd[i];
    if (m->reply != NULL)
      continue;
    redisContext *c = l->conn[m->node];
    void *v = NULL;
    if (m->ask >= 0) {
      if (redisGetReply(c, &v) != REDIS_OK) {
        rc = recd_errf(errbuf, RECD_EREDIS, "redis: %s: %s",
                       link__name(l, m->node, name, sizeof name), c->errstr);
        break;
      }
      freeReplyObject(v); /* +OK; were it an error, the command's reply says why */
      v = NULL;
      m->ask = -1;
    }
    if (redisGetReply(c, &v) != REDIS_OK) {
      rc = recd_errf(errbuf, RECD_EREDIS, "redis: %s: %s",
                     link__name(l, m->node, name, sizeof name), c->errstr);
      break;
    }
    redisReply *r = v;
    uint16_t slot;
    cluster_node_t to;
    const int redir = r->type == REDIS_REPLY_ERROR
                          ? cluster_parse_redirect(r->str, r->len, &slot, &to)
                          : CLUSTER_REDIR_NONE;
    if (redir != CLUSTER_REDIR_NONE && !l->cluster) {
      rc = recd_errf(errbuf, RECD_EREDIS, "redis: %s is a Redis Cluster node (%.60s): use "
                     "--redis-cluster-nodes", link__name(l, 0, name, sizeof name), r->str);
      freeReplyObject(r);
      break;
    }
    if (redir != CLUSTER_REDIR_NONE) {
      if (to.host[0] == '\0')
        snprintf(to.host, sizeof to.host, "%s", l->map.nodes[m->node].host);
      const int node = cluster_map_node(&l->map, to.host, strlen(to.host), to.port);
      if (node < 0 || link__grow(l) != 0) {
        rc = recd_errf(errbuf, node == RECD_EINVAL ? RECD_EREDIS : RECD_ENOMEM,
                       "redis cluster: cannot follow %.80s", r->str);
        freeReplyObject(r);
        break;
      }
      if (redir == CLUSTER_REDIR_MOVED) {
        cluster_map_assign(&l->map, slot, slot, node);
        m->moved = node;
        *redirected = 1;
      } else {
        m->ask = node;
      }
      snprintf(m->last_err, sizeof m->last_err, "%s", r->str);
      freeReplyObject(r);
      continue;
    }
    if (link__is(r, "TRYAGAIN") || link__is(r, "CLUSTERDOWN") || link__is(r, "LOADING") ||
        link__is(r, "MASTERDOWN")) {
      snprintf(m->last_err, sizeof m->last_err, "%s", r->str);
      *retry = 1;
      freeReplyObject(r);
      continue;
    }
    m->reply = r;
  }
  free(used);
  return rc;
}

int redis_link_exec(redis_link_t *l, char *errbuf) {
  int rc = l->oom ? recd_errf(errbuf, RECD_ENOMEM, "out of memory") : 0;
  for (int round = 0; rc == 0; round++) {
    size_t left = 0, first = 0;
    for (size_t i = 0; i < l->n_cmd; i++)
      if (l->cmd[i].reply == NULL && left++ == 0)
        first = i;
    if (left == 0) {
      l->ran = 1;
      return 0;
    }
    if (round == LINK_MAX_ROUNDS) {
      rc = recd_errf(errbuf, RECD_EREDIS, "redis cluster: %zu commands still unanswered after "
                     "%d attempts (last: %s)", left, round, l->cmd[first].last_err);
      break;
    }
    int redirected = 0, retry = 0;
    rc = link__round(l, &redirected, &retry, errbuf);
    if (rc == 0 && redirected) {
      /* The whole map again (a MOVED usually means slots moved), then the
       * answers of the nodes themselves on top, in case CLUSTER SLOTS came
       * from a node that has not heard yet. */
      char why[RECD_ERRLEN];
      (void)link__refresh(l, why); /* on failure the MOVED answers alone */
      for (size_t i = 0; i < l->n_cmd; i++)
        if (l->cmd[i].moved >= 0) {
          cluster_map_assign(&l->map, l->cmd[i].slot, l->cmd[i].slot, l->cmd[i].moved);
          l->cmd[i].moved = -1;
        }
    }
    if (rc == 0 && retry) {
      const long ms = LINK_RETRY_MS * (round + 1);
      link__sleep_ms(ms < LINK_RETRY_MAX_MS ? ms : LINK_RETRY_MAX_MS);
    }
  }
  /* A failed batch leaves replies unread on some connections: those are
   * closed, so that a later batch starts in step. */
  for (size_t i = 0; i < l->conn_cap; i++)
    link__drop(l, (int)i);
  link__clear_batch(l);
  return rc;
}
