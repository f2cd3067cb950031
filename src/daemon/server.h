/* server.h - the daemon's shared types: server, client, request, model.
 *
 * Ownership in one place:
 *  - server_t owns the listeners, every client_t, the Redis client, the
 *    current served_t and the loop-thread scratch.
 *  - client_t owns its parser, output buffer and the queue of requests it
 *    sent; a request whose client went away lives on (client = NULL) until
 *    its last callback, then frees itself.
 *  - served_t (a loaded model) and bits_t (the unavailable-items bitmap for
 *    one model) are reference counted, on the loop thread only: every
 *    request holds a reference to the model it started with, so a reload
 *    never changes a model under a request in flight.
 */
#ifndef RECD_DAEMON_SERVER_H
#define RECD_DAEMON_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "rclient.h"
#include "recd/recommend.h"
#include "recd/reply.h"
#include "recd/resp.h"
#include "stats.h"

typedef struct server server_t;
typedef struct client client_t;
typedef struct req req_t;

/* A loaded model and what is derived from it once. */
typedef struct served {
  unsigned refs;
  model_t *m;
  uint64_t version;    /* 1, 2, ... per successful load */
  char *path;
  int64_t loaded_at;   /* unix seconds */
  float pop_scale;     /* rec_popularity_scale() */
  int have_q;          /* q is built (large catalogues only) */
  qmat_t q;            /* int8 copy of the item factors (first pass) */
} served_t;

/* Unavailable items as a bitmap over one model's items. */
typedef struct bits {
  unsigned refs;
  const served_t *for_model; /* the model whose indices the bits use */
  size_t n_set;
  uint64_t words[];
} bits_t;

served_t *served_ref(served_t *s);
void served_unref(served_t *s);
bits_t *bits_ref(bits_t *b);
void bits_unref(bits_t *b);

/* Client flags. */
enum {
  CLIENT_AUTHED = 1u << 0,       /* AUTH succeeded (or no requirepass) */
  CLIENT_CLOSING = 1u << 1,      /* uv_close() called; freed in close_cb */
  CLIENT_CLOSE_AFTER = 1u << 2,  /* close once the output is flushed (QUIT,
                                    protocol error) */
  CLIENT_PENDING_WRITE = 1u << 3,/* on server.pending_writes */
  CLIENT_READ_PAUSED = 1u << 4,  /* too many requests in flight */
  CLIENT_UNIX = 1u << 5          /* connected over the Unix socket */
};

struct client {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;                      /* first: handle->data is the client */
  server_t *srv;
  uint64_t id;              /* for logs and INFO */
  unsigned flags;           /* CLIENT_* */
  resp_parser_t parser;     /* input bytes and parse state */
  reply_buf_t out;          /* replies ready to send, in request order */
  req_t *q_head, *q_tail;   /* requests not yet answered, in order */
  unsigned q_len;
  size_t write_bytes;       /* bytes handed to uv_write, not yet written */
  uint64_t last_io_ms;      /* idle timeout clock (uv_now) */
  uint64_t cmds;            /* commands processed */
  client_t *prev, *next;    /* server.clients */
  client_t *pw_next;        /* server.pending_writes */
  char addr[64];            /* peer, for logs */
};

struct req {
  req_t *next;              /* in the client's queue */
  client_t *c;              /* NULL when the client has gone */
  int done;                 /* reply complete (in `reply`) */
  unsigned refs;            /* queue + outstanding callbacks */
  reply_buf_t reply;
  uint64_t start_us;
  struct cmd_def *cmd;      /* for stats */
  void *ctx;                /* command-specific state (reco.c) */
  void (*ctx_free)(void *ctx);
};

/* Per-command statistics, kept in the command table (commands.c). */
typedef struct cmd_stats {
  uint64_t calls, errors;
  stats_hist_t latency;
} cmd_stats_t;

struct server {
  uv_loop_t *loop;
  config_t *cfg;
  uv_tcp_t tcp[CONFIG_BIND_MAX];
  int n_tcp;
  uv_pipe_t unix_sock;
  int have_unix;
  uv_prepare_t flusher;       /* flushes pending writes once per loop turn */
  uv_timer_t cron;            /* idle timeouts, once per second */
  uv_signal_t sig_hup, sig_term, sig_int;
  client_t *clients;
  unsigned n_clients;
  client_t *pending_writes;
  rclient_t *redis;
  served_t *model;            /* current model */
  bits_t *unavail;            /* unavailable items of the current model */
  char **unavail_ids;         /* last set read from Redis, to rebuild the */
  size_t *unavail_lens;       /* bitmap when a new model comes in */
  size_t n_unavail_ids;
  rec_ws_t ws;                /* scratch for scoring on the loop thread */
  struct batcher *batcher;    /* RECOMMEND micro-batching (batch.c) */
  uint64_t next_model_version;
  int reloading;              /* a model load is running on the pool */
  int stopping;               /* SIGTERM/SIGINT received */
  uint64_t started_ms;
  /* counters for INFO */
  uint64_t total_connections, rejected_connections, protocol_errors;
  uint64_t total_commands, degraded, output_limit_closes, idle_closes;
  uint64_t reloads_ok, reloads_failed;
  char last_reload_error[RECD_ERRLEN];
};

/* server.c */
int server_listen(server_t *s, char *errbuf);
void server_stop_accepting(server_t *s);
void server_close_all_clients(server_t *s);
/* Appends the done requests at the head of c's queue to its output and
 * schedules a flush; may close the client (output limit). */
void client_advance(client_t *c);
/* Marks c to be closed once its output is flushed. */
void client_close_after_reply(client_t *c);
/* Closes c now (idempotent); memory is freed in the close callback. */
void client_close(client_t *c, const char *why);

/* commands.c */
/* Runs one parsed command for c: lookup, arity, auth policy, handler,
 * stats. Replies go to c's output or to a queued request. */
void commands_dispatch(client_t *c, const resp_cmd_t *cmd);
/* Reply target for a synchronous command: c->out when nothing is queued,
 * otherwise a new done request appended to the queue (NULL when out of
 * memory: the client has then been closed). */
reply_buf_t *client_sync_reply(client_t *c);
/* A new pending request appended to c's queue (NULL when out of memory). */
req_t *req_new(client_t *c, struct cmd_def *cmd);
/* Completes a request: stats, then client_advance(). */
void req_finish(req_t *r, int failed);
void req_unref(req_t *r);
/* INFO text into a reply (commands.c / info). */
int info_render(server_t *s, const char *section, reply_buf_t *out);
void commands_record(struct cmd_def *cmd, uint64_t us, int failed);
/* Calls fn for every command of the table with its statistics (for the
 * metrics endpoint). */
void commands_foreach(void (*fn)(const char *name, const cmd_stats_t *st, void *arg), void *arg);

/* model_store.c */
int model_store_load_initial(server_t *s, char *errbuf);
/* Starts a reload on the thread pool; `done` is called on the loop thread
 * with 0 or an error code and message. path NULL = the configured model. */
typedef void (*model_reload_cb)(server_t *s, int status, const char *msg, void *arg);
int model_store_reload(server_t *s, const char *path, model_reload_cb done, void *arg,
                       char *errbuf);
void model_store_set_unavailable(server_t *s, const char *const *ids, const size_t *lens,
                                 size_t n);
void model_store_shutdown(server_t *s);

/* reco.c: RECOMMEND, RANK, SIMILAR, FEEDBACK */
struct cmd_def;
void reco_recommend(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
void reco_rank(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
void reco_similar(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);
void reco_feedback(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a);

#endif
