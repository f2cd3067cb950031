/* rcluster.h - the daemon's connections to a Redis Cluster.
 *
 * rclient.h's client in cluster mode (config redis-cluster-nodes) hands
 * every command to this module, which routes it: the slot map comes from
 * CLUSTER SLOTS (asked of a seed first, then of the masters it names), one
 * hiredis async connection per master on the daemon's libuv loop (the same
 * adapter, AUTH and backoff as rclient's single connection), and each
 * command goes to the master of its key's slot (recd/cluster_slot.h:
 * CRC16, hash tags). Commands given in one loop turn to one master leave
 * in one write at the end of the turn (a uv_check handle; hiredis
 * pipelines them), the masters work in parallel. The connections' event
 * hooks keep an armed read event armed and arm the write event only for a
 * connect or a partial write: hiredis 0.14 with the libuv adapter would
 * otherwise restart the poll handle (two epoll_ctl) after every read and
 * for every command.
 *
 * Redirections: -MOVED updates that slot's entry at once, schedules a full
 * re-read of the map and sends the command again to the named node; -ASK
 * sends ASKING and the command to the named node, once (the slot stays
 * where it is in the map). At most RCLUSTER_MAX_REDIRECTS per command.
 * -CLUSTERDOWN, -TRYAGAIN, -MASTERDOWN and -LOADING complete the command
 * as RCLIENT_UNAVAILABLE (the daemon's deadline then gives the degraded
 * answer; nothing is retried behind its back) and a CLUSTERDOWN schedules a
 * re-read.
 *
 * The map is re-read every refresh_ms (default 5 s) while the cluster is
 * healthy (every slot served, every master connected), every
 * RCLUSTER_FAST_MS while it is not (a master lost: its replica's promotion
 * is found within that), and within RCLUSTER_MIN_GAP_MS of a MOVED or a
 * CLUSTERDOWN. A master that goes away is reconnected with backoff until
 * the map stops naming it; nodes that are no masters are not kept
 * connected (a seed that is a replica is used for the first map only).
 * A command whose master is reconnecting fails at once (UNAVAILABLE); one
 * whose master is still connecting (a node just named by the map or a
 * redirection) waits for that connection, at most connect_timeout_ms.
 * A master that has had commands waiting without a single reply for
 * connect_timeout_ms is taken as hung (SIGSTOP, a network that drops
 * packets): it gets no new commands (UNAVAILABLE at once) and the cluster
 * is unhealthy until it answers again or the map names another master
 * (then its connection is dropped, and the commands still waiting there
 * complete as UNAVAILABLE). A CLUSTER SLOTS not answered within
 * connect_timeout_ms is asked of another node.
 *
 * Scripts: SCRIPT (LOAD, FLUSH, EXISTS) goes to every connected master;
 * EVAL / EVALSHA are routed by their first key. Multi-key commands and
 * scripts must have all their keys in one slot: Redis refuses others
 * (CROSSSLOT), which is the caller's business (feedback.c and merge.c
 * split theirs into one step per key in a cluster).
 *
 * Callback guarantee (rclient.h's): a call that returns 0 fires its
 * callback exactly once, never from inside the call: with st RCLIENT_OK and
 * the reply (borrowed; an error reply other than the ones above is such a
 * reply), or with RCLIENT_UNAVAILABLE, a NULL reply and errstr.
 *
 * Loop thread only.
 */
#ifndef RECD_DAEMON_RCLUSTER_H
#define RECD_DAEMON_RCLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "rclient.h"

struct redisReply;

typedef struct rcluster rcluster_t;

#define RCLUSTER_MAX_REDIRECTS 5
#define RCLUSTER_FAST_MS 200    /* map re-read period while not healthy */
#define RCLUSTER_MIN_GAP_MS 50  /* least time between two map reads */

typedef struct rcluster_opts {
  const char *seeds;           /* "host:port host:port ..." (cluster_parse_nodes) */
  const char *password;        /* AUTH on every node; NULL or "" = none */
  const char *user;            /* Redis 6 ACL user: AUTH user password on
                                  every node; NULL or "" = none */
  unsigned connect_timeout_ms; /* connect + AUTH bound per node */
  unsigned reconnect_min_ms, reconnect_max_ms; /* backoff per node */
  unsigned refresh_ms;         /* map re-read period while healthy */
  /* Notices (connected, map changes) and errors; errors also go to
   * error(), which de-duplicates and records them (rclient's last error). */
  rclient_log_cb log;
  void *log_arg;
  void (*error)(const char *msg, void *arg);
  /* Fired (never from inside an rcluster call) when the cluster becomes
   * healthy or stops being so. */
  void (*health)(int healthy, void *arg);
  void *cb_arg;                /* error's and health's */
} rcluster_opts_t;

typedef struct rcluster_stats {
  int healthy;                 /* map loaded, every slot served, every
                                  master connected */
  size_t nodes;                /* nodes known: seeds, masters, targets */
  size_t masters;              /* masters in the slot map */
  size_t masters_connected;
  uint32_t unserved_slots;
  uint64_t refreshes;          /* slot maps loaded */
  uint64_t refresh_errors;     /* CLUSTER SLOTS that failed */
  uint64_t moved, ask;         /* redirections followed */
  uint64_t down;               /* CLUSTERDOWN / TRYAGAIN / MASTERDOWN /
                                  LOADING replies */
  uint64_t connects, disconnects, reconnect_attempts;
  uint64_t errors;             /* failed attempts, AUTH failures */
  uint64_t commands_sent;
  size_t inflight;             /* commands waiting for a node now */
} rcluster_stats_t;

typedef void (*rcluster_cb)(rcluster_t *cl, rclient_status_t st, const struct redisReply *rep,
                            const char *errstr, void *arg);

/* Starts connecting to the seeds. 0, RECD_EINVAL (bad seed list, errbuf
 * says which entry), RECD_ENOMEM or RECD_EIO; on error nothing stays on
 * the loop (handles already initialised are closing). */
int rcluster_new(uv_loop_t *loop, const rcluster_opts_t *o, rcluster_t **out, char *errbuf);

/* Routes and sends one command (argv copied). 0 (cb fires exactly once,
 * never from inside this call), RECD_EINVAL (closing, argc < 1) or
 * RECD_ENOMEM (cb never fires). cb may be NULL. */
int rcluster_command(rcluster_t *cl, int argc, const char **argv, const size_t *lens,
                     rcluster_cb cb, void *arg);

void rcluster_get_stats(const rcluster_t *cl, rcluster_stats_t *out);

/* Drops every connection (commands in flight complete with
 * RCLIENT_UNAVAILABLE), closes the handles and fires done(arg) on a later
 * loop turn, after which cl is freed. */
void rcluster_close(rcluster_t *cl, void (*done)(void *arg), void *arg);

/* ---- pure helpers (unit-tested) ---------------------------------------- */

typedef enum rcluster_route {
  RCLUSTER_ROUTE_KEY = 0, /* the master of *slot */
  RCLUSTER_ROUTE_ANY = 1, /* any master (no key) */
  RCLUSTER_ROUTE_ALL = 2  /* every master (SCRIPT ...) */
} rcluster_route_t;

/* Where a command goes: EVAL / EVALSHA / FCALL (and their _RO forms) by
 * their first key (ANY without keys), SCRIPT to every master, PING, ECHO,
 * INFO, TIME, CLUSTER and commands without arguments to any master, every
 * other command by its first argument. */
rcluster_route_t rcluster_route(int argc, const char *const *argv, const size_t *lens,
                                uint16_t *slot);

/* 1 when the n keys (n >= 1) all hash to one slot: a multi-key script on
 * them runs in a cluster as it does on a single Redis. */
int rcluster_one_slot(size_t n, const char *const *keys, const size_t *lens);

/* A deep copy of a hiredis reply (hiredis frees its replies when their
 * callback returns) in one block, or NULL when out of memory; free it with
 * rcluster_reply_free() (not freeReplyObject). */
struct redisReply *rcluster_reply_dup(const struct redisReply *r);
void rcluster_reply_free(struct redisReply *r);

#endif
