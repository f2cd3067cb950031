/* conn.h - one client connection: reading and parsing commands, the queue
 * of requests and their ordered replies (reqq.h), batched flushing,
 * back-pressure, and closing.
 *
 * Replies are flushed once per loop turn from the server's uv_prepare_t
 * (try_write first, uv_write for the rest), so a pipeline of 1000 commands
 * costs a few system calls, not 1000.
 *
 * Closing comes in two kinds:
 *  - client_close(): now (errors, limits, idle timeout);
 *  - graceful, after every reply (QUIT, a protocol error, shutdown): once
 *    the last reply is handed to the kernel the write side is shut down
 *    (FIN), and input is read and discarded until the client closes its
 *    side or CONN_LINGER_MS pass. Closing a socket with unread input makes
 *    the kernel send a reset, and a reset makes the client's kernel drop
 *    reply bytes it has not yet delivered: the client would see half a
 *    reply.
 */
#ifndef RECD_DAEMON_CONN_H
#define RECD_DAEMON_CONN_H

#include <stdint.h>
#include <uv.h>

#include "recd/reply.h"
#include "recd/resp.h"
#include "reqq.h"
#include "server.h"

/* Requests a client may have in flight before we stop reading from it:
 * back-pressure for a client that pipelines faster than Redis answers.
 * Small on purpose: every queued RECOMMEND holds a place in the one Redis
 * connection's queue, and at 4096 a client pipelining without reading
 * pushed other clients' Redis reads past their deadline (a witness waited
 * 341 ms and got a degraded answer). Reading resumes as soon as half have
 * been answered, so a pipelining client still keeps the batcher full. */
#define CONN_MAX_QUEUED 256
/* How long a graceful close waits for the client to close its side. */
#define CONN_LINGER_MS 2000

/* Client flags. */
enum {
  CLIENT_AUTHED = 1u << 0,       /* AUTH succeeded (or no requirepass) */
  CLIENT_CLOSING = 1u << 1,      /* uv_close() called; freed in close_cb */
  CLIENT_CLOSE_AFTER = 1u << 2,  /* close gracefully once every reply is out */
  CLIENT_PENDING_WRITE = 1u << 3,/* on server.pending_writes */
  CLIENT_READ_PAUSED = 1u << 4,  /* too many requests in flight */
  CLIENT_UNIX = 1u << 5,         /* connected over the Unix socket */
  CLIENT_LINGER = 1u << 6,       /* write side shut down, discarding input */
  CLIENT_KILLED = 1u << 7        /* CLIENT KILL: closing once its replies are out */
};

struct client {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } h;                      /* first: handle->data is the client */
  uv_shutdown_t shutdown;   /* graceful close: the FIN */
  uv_timer_t linger;        /* graceful close: its time limit */
  unsigned open_handles;    /* h, and linger once started: freed at 0 */
  server_t *srv;
  uint64_t id;              /* for logs and INFO */
  unsigned flags;           /* CLIENT_* */
  resp_parser_t parser;     /* input bytes and parse state */
  reply_buf_t out;          /* replies ready to send, in request order */
  reqq_t rq;                /* requests not yet answered, in order */
  size_t write_bytes;       /* bytes handed to uv_write, not yet written */
  uint64_t last_io_ms;      /* idle timeout clock (uv_now) */
  uint64_t cmds;            /* commands processed */
  client_t *prev, *next;    /* server.clients */
  client_t *pw_next;        /* server.pending_writes */
  char addr[64];            /* peer, for logs */
  /* CLIENT LIST / SETNAME / SETINFO (client_cmd.c); the strings are
   * malloc'ed, NULL when unset, freed with the client */
  uint64_t created_ms;      /* uv_now at accept: age= */
  char *name;               /* CLIENT SETNAME, HELLO SETNAME */
  char *lib_name, *lib_ver; /* CLIENT SETINFO LIB-NAME / LIB-VER */
  char last_cmd[32];        /* cmd=: "recommend", "client|list"; "" before any */
  const struct acl_user *user; /* its user in s->acl (acl_cmd.h); never NULL */
  unsigned char acl_logged; /* denials already logged for it (acl_cmd.c) */
  struct tls_conn *tls;     /* accepted on tls-port (tls.h); NULL: plain */
};

/* Sets up c's state (its handle is initialised by the server, on s->loop);
 * from here client_close() can free it. */
void conn_init(client_t *c, server_t *s);
/* Starts reading from the accepted connection, unless `reject` is given:
 * then that error is the only reply and the connection closes
 * gracefully. */
void conn_start(client_t *c, const char *reject);

/* Reply target of a command answered at once (reqq_reply); NULL when out of
 * memory (the client has then been closed). */
reply_buf_t *client_reply(client_t *c);
/* A new pending request for an asynchronous command (NULL when out of
 * memory: the client has then been closed). */
req_t *client_request(client_t *c, cmd_stats_t *st);
/* Moves done replies to the output and schedules a flush; may close the
 * client (output limit). */
void client_advance(client_t *c);
/* Closes c gracefully once every reply is out; reads no more commands. */
void client_close_after_reply(client_t *c);
/* Closes c now (idempotent); memory is freed in the close callbacks. */
void client_close(client_t *c, const char *why);
/* The client is gone or going: an answer for it would go nowhere. */
int client_gone(const client_t *c);
/* CLIENT KILL: c reads no more commands and closes gracefully once every
 * reply it is owed (requests in flight included) is out, as QUIT does.
 * 0, or -1 when c was already killed, closing or lingering. */
int client_kill(client_t *c);

/* For the server: */
/* Flushes c's output (the flusher, once per loop turn), then lets a paused
 * reader go on when its queue has drained. */
void conn_flush(client_t *c);
/* Shutdown: no more reads; what is already read is answered, then c closes
 * gracefully. */
void conn_stop_reading(client_t *c);
/* c is closing, or closing gracefully: every reply has been handed over. */
int conn_finished(const client_t *c);
/* Closes TLS clients whose handshake is not done TLS_HANDSHAKE_TIMEOUT_MS
 * after accept (the server's cron, once a second). */
void conn_tls_timeouts(server_t *s, uint64_t now);

#endif
