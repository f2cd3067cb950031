/* server.h - the RESP server: listeners, the set of connections, the
 * services commands use, counters, and shutdown.
 *
 * Ownership: server_t owns the listeners and every client_t (conn.h); the
 * variants (their model stores), Redis client, batcher and tracker are
 * created by main() and handed to the server as the services commands run
 * on. The server knows nothing
 * about commands: each complete command a connection parses goes to the
 * `dispatch` function given to server_init() (commands.c's).
 *
 * Shutdown, through this API only:
 *   server_shutdown_begin()  stop accepting and reading; commands already
 *                            read are answered, then each connection is
 *                            closed gracefully (conn.h)
 *   server_drained()         every connection has had all its replies
 *                            and is closing
 *   server_close()           closes what is left and the server's handles
 */
#ifndef RECD_DAEMON_SERVER_H
#define RECD_DAEMON_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "acl.h"
#include "config.h"
#include "recd/recommend.h"
#include "recd/resp.h"
#include "tls.h"
#include "traps.h"

typedef struct server server_t;
typedef struct client client_t;
struct rclient;
struct sentinel;
struct variants;
struct batcher;
struct tracker;
struct itemset;

typedef void (*server_dispatch_fn)(client_t *c, const resp_cmd_t *cmd);

/* Counters for INFO and /metrics. */
typedef struct server_stats {
  uint64_t total_connections, rejected_connections, protocol_errors;
  uint64_t total_commands, degraded, output_limit_closes, idle_closes;
} server_stats_t;

struct server {
  uv_loop_t *loop;
  const config_t *cfg;
  server_dispatch_fn dispatch;
  /* services for the commands (owned by main) */
  struct variants *variants;  /* the models served (variants.h) */
  struct rclient *redis;      /* NULL once closed at shutdown */
  struct sentinel *sentinel;  /* Sentinel mode (sentinel.h); NULL otherwise
                                 and once closed at shutdown */
  struct batcher *batcher;    /* NULL once closed at shutdown */
  struct tracker *tracker;    /* impressions and outcomes; NULL once closed */
  struct itemset *promoted;   /* <prefix>promoted (itemset.h) */
  rec_ws_t ws;                /* scratch for scoring on the loop thread */
  /* connections */
  uv_tcp_t tcp[2 * CONFIG_BIND_MAX]; /* port's, then tls-port's listeners */
  int n_tcp;
  tls_server_t tls;           /* tls-port: credentials (tls.cur.ctx NULL when
                                 off) and counters */
  uv_pipe_t unix_sock;
  int have_unix;
  uv_prepare_t flusher;       /* flushes pending writes once per loop turn */
  uv_timer_t cron;            /* idle timeouts, once per second */
  client_t *clients;
  unsigned n_clients;
  client_t *pending_writes;
  int stopping;               /* server_shutdown_begin() was called */
  uint64_t started_ms;
  server_stats_t st;
  traps_t traps;              /* issue 19's counters and once-only logs */
  acl_t acl;                  /* users and permissions (acl_cmd.h) */
};

/* Sets s up on loop (no I/O yet). */
void server_init(server_t *s, uv_loop_t *loop, const config_t *cfg,
                 server_dispatch_fn dispatch);
int server_listen(server_t *s, char *errbuf);
void server_shutdown_begin(server_t *s);
int server_drained(const server_t *s);
void server_close(server_t *s);

#endif
