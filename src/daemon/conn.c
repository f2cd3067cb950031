/* conn.c - see conn.h. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "acl_cmd.h"
#include "log.h"
#include "tls.h"

/* Read buffer reserved per read callback. */
#define CONN_READ_CHUNK (16 * 1024)
/* Query buffer cap before AUTH (with requirepass set): a stranger must not
 * be able to pin max-request-bytes on every one of maxclients connections
 * (Redis likewise caps unauthenticated requests far below its limits). */
#define CONN_PREAUTH_MAX_REQUEST (16 * 1024)

typedef struct write_req {
  uv_write_t req; /* first, so the uv_write_t* is the write_req_t* */
  client_t *c;
  char *block;    /* detached reply buffer, freed on completion */
  size_t len;
} write_req_t;

static void conn__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void conn__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void conn__process(client_t *c);
static int conn__tls_send(client_t *c);

int client_gone(const client_t *c) {
  return (c->flags & CLIENT_CLOSING) != 0;
}

int conn_finished(const client_t *c) {
  return (c->flags & (CLIENT_CLOSING | CLIENT_LINGER)) != 0;
}

/* One close callback for both handles: the client goes with the last. */
static void conn__on_close(uv_handle_t *h) {
  client_t *c = h->data;
  if (--c->open_handles > 0)
    return;
  server_t *s = c->srv;
  /* Requests still waiting for Redis or the pool forget their client; they
   * free themselves when their callbacks are over. */
  reqq_detach_all(&c->rq);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->n_clients--;
  resp_parser_free(&c->parser);
  reply_free(&c->out);
  tls_conn_free(c->tls);
  free(c->name);
  free(c->lib_name);
  free(c->lib_ver);
  free(c);
}

void client_close(client_t *c, const char *why) {
  if (c->flags & CLIENT_CLOSING)
    return;
  c->flags |= CLIENT_CLOSING;
  if (why != NULL)
    log_verbose("client %llu (%s) closed: %s", (unsigned long long)c->id, c->addr, why);
  /* Off the pending-write list now: the flusher must never see it again. */
  if (c->flags & CLIENT_PENDING_WRITE) {
    client_t **pp = &c->srv->pending_writes;
    while (*pp != c)
      pp = &(*pp)->pw_next;
    *pp = c->pw_next;
    c->flags &= ~(unsigned)CLIENT_PENDING_WRITE;
  }
  uv_close(&c->h.handle, conn__on_close);
  if (c->flags & CLIENT_LINGER)
    uv_close((uv_handle_t *)&c->linger, conn__on_close);
}

static void conn__schedule_flush(client_t *c) {
  if (c->flags & (CLIENT_PENDING_WRITE | CLIENT_CLOSING))
    return;
  c->flags |= CLIENT_PENDING_WRITE;
  c->pw_next = c->srv->pending_writes;
  c->srv->pending_writes = c;
}

/* ---- graceful close ------------------------------------------------------ */

static void conn__discard_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)h, (void)hint;
  static char sink[16 * 1024]; /* loop thread only; the bytes are dropped */
  *buf = uv_buf_init(sink, sizeof sink);
}

static void conn__discard_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread < 0) /* the client closed its side (or the connection broke) */
    client_close(st->data, NULL);
}

static void conn__linger_expired(uv_timer_t *t) {
  client_close(t->data, "did not close its side within the linger time");
}

static void conn__shutdown_done(uv_shutdown_t *sr, int status) {
  client_t *c = sr->data;
  if (status < 0 && !(c->flags & CLIENT_CLOSING))
    client_close(c, uv_strerror(status));
}

/* Every reply has been handed to libuv: FIN after the last byte (libuv
 * sends the shutdown once the writes queued before it are done), then
 * discard input until the client closes, within CONN_LINGER_MS. */
static void conn__linger(client_t *c) {
  if (c->flags & (CLIENT_LINGER | CLIENT_CLOSING))
    return;
  /* TLS: close_notify before the FIN, so the client knows the stream was
   * not cut short. */
  if (c->tls != NULL) {
    tls_conn_close_notify(c->tls);
    if (conn__tls_send(c) != 0)
      return;
  }
  c->flags |= CLIENT_LINGER;
  uv_timer_init(c->srv->loop, &c->linger); /* cannot fail */
  c->linger.data = c;
  c->open_handles++;
  uv_timer_start(&c->linger, conn__linger_expired, CONN_LINGER_MS, 0);
  c->shutdown.data = c;
  int rc = uv_shutdown(&c->shutdown, &c->h.stream, conn__shutdown_done);
  if (rc == 0)
    rc = uv_read_start(&c->h.stream, conn__discard_alloc, conn__discard_read);
  if (rc != 0)
    client_close(c, uv_strerror(rc));
}

static int conn__all_out(const client_t *c) {
  return reply_len(&c->out) == 0 && c->rq.head == NULL;
}

void client_close_after_reply(client_t *c) {
  c->flags |= CLIENT_CLOSE_AFTER;
  uv_read_stop(&c->h.stream);
  conn__schedule_flush(c);
}

/* The graceful close path, never client_close(): a request in flight
 * (waiting for Redis or on a worker thread) keeps its client until it is
 * answered, so nothing it points to is freed under it, and the client gets
 * every reply it is owed, the last one included. */
int client_kill(client_t *c) {
  if (c->flags & (CLIENT_KILLED | CLIENT_CLOSING | CLIENT_LINGER))
    return -1;
  c->flags |= CLIENT_KILLED;
  log_verbose("client %llu (%s) killed by CLIENT KILL", (unsigned long long)c->id, c->addr);
  client_close_after_reply(c);
  return 0;
}

/* ---- replies ------------------------------------------------------------- */

reply_buf_t *client_reply(client_t *c) {
  reply_buf_t *r = reqq_reply(&c->rq, &c->out);
  if (r == NULL)
    client_close(c, "out of memory");
  return r;
}

req_t *client_request(client_t *c, cmd_stats_t *st) {
  req_t *r = req_new(&c->rq, st);
  if (r == NULL)
    client_close(c, "out of memory");
  return r;
}

void client_advance(client_t *c) {
  if (c->flags & CLIENT_CLOSING)
    return;
  reqq_take_done(&c->rq, &c->out);
  if (c->out.err != 0) {
    c->srv->st.output_limit_closes++;
    log_warning("client %llu (%s): output buffer over %zu bytes, closing", (unsigned long long)c->id,
                c->addr, c->srv->cfg->client_output_buffer_limit);
    client_close(c, NULL);
    return;
  }
  conn__schedule_flush(c);
}

static void conn__queue_ready(reqq_t *q) {
  client_advance(q->owner);
}

static void conn__after_write(uv_write_t *w, int status) {
  write_req_t *wr = (write_req_t *)w;
  client_t *c = wr->c;
  c->write_bytes -= wr->len;
  free(wr->block);
  free(wr);
  if (status < 0 && status != UV_ECANCELED)
    client_close(c, uv_strerror(status));
}

/* A paused reader whose queue has drained to half parses what it has
 * buffered and, unless the server is stopping, reads again. Called from
 * the flush, never from inside a command. The only place that resumes. */
static void conn__resume(client_t *c) {
  if (!(c->flags & CLIENT_READ_PAUSED) || c->rq.len >= CONN_MAX_QUEUED / 2 ||
      (c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER)))
    return;
  c->flags &= ~(unsigned)CLIENT_READ_PAUSED;
  if (!c->srv->stopping)
    uv_read_start(&c->h.stream, conn__alloc, conn__on_read);
  conn__process(c); /* what is already buffered */
}

/* After a flush: the graceful close once everything is out, else a paused
 * reader may go on. */
static void conn__flushed(client_t *c) {
  if ((c->flags & CLIENT_CLOSE_AFTER) && conn__all_out(c))
    conn__linger(c);
  else
    conn__resume(c);
}

/* ---- TLS (tls.h) --------------------------------------------------------- */

/* Ciphertext read buffer of the TLS clients: each read is handed to
 * OpenSSL before the next one, on the loop thread, so one buffer serves
 * every connection (plaintext is decrypted into the parser's own buffer). */
static char conn__tls_in[64 * 1024];

/* Sends the ciphertext OpenSSL produced (records, handshake messages,
 * alerts) as one uv_write, counted against client-output-buffer-limit as
 * plain replies are. 0, or -1 when c has been closed. */
static int conn__tls_send(client_t *c) {
  size_t n = tls_conn_pending(c->tls);
  if (n == 0 || (c->flags & CLIENT_CLOSING))
    return 0;
  write_req_t *wr = malloc(sizeof *wr);
  char *block = malloc(n);
  if (wr == NULL || block == NULL) {
    free(wr);
    free(block);
    client_close(c, "out of memory");
    return -1;
  }
  n = tls_conn_take(c->tls, block, n);
  wr->c = c;
  wr->block = block;
  wr->len = n;
  /* uv_write writes at once when nothing is queued (as uv_try_write
   * would), and keeps the rest. */
  uv_buf_t b = uv_buf_init(block, (unsigned)n);
  int rc = uv_write(&wr->req, &c->h.stream, &b, 1, conn__after_write);
  if (rc != 0) {
    free(block);
    free(wr);
    client_close(c, uv_strerror(rc));
    return -1;
  }
  c->write_bytes += n;
  if (c->write_bytes > c->srv->cfg->client_output_buffer_limit) {
    c->srv->st.output_limit_closes++;
    log_warning("client %llu (%s): %zu reply bytes unread, over client-output-buffer-limit, "
                "closing", (unsigned long long)c->id, c->addr, c->write_bytes);
    client_close(c, NULL);
    return -1;
  }
  return 0;
}

/* conn_flush for a TLS client: the ready replies are encrypted whole (the
 * memory BIO takes everything) and sent. Nothing is sent before the
 * handshake is done: no reply exists then. */
static int conn__tls_flush(client_t *c) {
  size_t n;
  const char *data = reply_data(&c->out, &n);
  if (n > 0 && tls_conn_ready(c->tls)) {
    char err[RECD_ERRLEN];
    if (tls_conn_write(c->tls, data, n, err) != 0) {
      client_close(c, err);
      return -1;
    }
    reply_consume(&c->out, n);
  }
  return conn__tls_send(c);
}

/* A handshake that cannot complete: the alert OpenSSL wrote goes out, then
 * a graceful close (FIN, input discarded), so the client reads the alert
 * rather than a reset. */
static void conn__tls_failed(client_t *c, const char *why) {
  c->srv->tls.handshake_failures++;
  log_verbose("client %llu (%s): TLS handshake failed: %s", (unsigned long long)c->id, c->addr,
              why);
  if (conn__tls_send(c) == 0)
    client_close_after_reply(c);
}

void conn_tls_timeouts(server_t *s, uint64_t now) {
  for (client_t *c = s->clients, *next; c != NULL; c = next) {
    next = c->next;
    if (c->tls != NULL && !tls_conn_ready(c->tls) &&
        !(c->flags & (CLIENT_CLOSING | CLIENT_LINGER)) &&
        now - c->created_ms > TLS_HANDSHAKE_TIMEOUT_MS) {
      s->tls.handshake_failures++;
      log_verbose("client %llu (%s): TLS handshake not done within %d ms, closing",
                  (unsigned long long)c->id, c->addr, TLS_HANDSHAKE_TIMEOUT_MS);
      client_close(c, NULL);
    }
  }
}

void conn_flush(client_t *c) {
  if (c->tls != NULL) {
    if (conn__tls_flush(c) == 0)
      conn__flushed(c);
    return;
  }
  size_t n;
  const char *data = reply_data(&c->out, &n);
  if (n > 0 && c->write_bytes == 0) {
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    int w = uv_try_write(&c->h.stream, &b, 1);
    if (w > 0) {
      reply_consume(&c->out, (size_t)w);
      data = reply_data(&c->out, &n);
    } else if (w < 0 && w != UV_EAGAIN && w != UV_ENOSYS) {
      client_close(c, uv_strerror(w));
      return;
    }
  }
  if (n > 0) {
    write_req_t *wr = malloc(sizeof *wr);
    char *block;
    if (wr == NULL || reply_detach(&c->out, &block, &data, &n) != 0) {
      free(wr);
      client_close(c, "out of memory");
      return;
    }
    wr->c = c;
    wr->block = block;
    wr->len = n;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    int rc = uv_write(&wr->req, &c->h.stream, &b, 1, conn__after_write);
    if (rc != 0) {
      free(block);
      free(wr);
      client_close(c, uv_strerror(rc));
      return;
    }
    c->write_bytes += n;
    /* A client that reads slower than it asks: the kernel and libuv hold
     * its backlog; past the limit, it is cut off (Redis's hard limit). */
    if (c->write_bytes > c->srv->cfg->client_output_buffer_limit) {
      c->srv->st.output_limit_closes++;
      log_warning("client %llu (%s): %zu reply bytes unread, over client-output-buffer-limit, "
                  "closing", (unsigned long long)c->id, c->addr, c->write_bytes);
      client_close(c, NULL);
      return;
    }
  }
  conn__flushed(c);
}

/* ---- input --------------------------------------------------------------- */

static void conn__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  client_t *c = h->data;
  if (c->tls != NULL) {
    *buf = uv_buf_init(conn__tls_in, sizeof conn__tls_in);
    return;
  }
  char *p;
  size_t avail;
  if (resp_parser_reserve(&c->parser, CONN_READ_CHUNK, &p, &avail) != 0) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to read_cb */
    return;
  }
  *buf = uv_buf_init(p, (unsigned)(avail > UINT32_MAX ? UINT32_MAX : avail));
}

/* A request the connection cannot go on from: the error is the last
 * reply, then a graceful close. */
static void conn__fatal(client_t *c, const char *msg) {
  c->srv->st.protocol_errors++;
  reply_buf_t *r = client_reply(c);
  if (r != NULL)
    reply_errorf(r, "%s", msg);
  client_advance(c);
  client_close_after_reply(c);
}

/* Parses and runs every complete command in c's buffer. */
static void conn__process(client_t *c) {
  server_t *s = c->srv;
  resp_cmd_t cmd;
  while (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER))) {
    if (c->rq.len >= CONN_MAX_QUEUED) {
      if (!(c->flags & CLIENT_READ_PAUSED)) {
        c->flags |= CLIENT_READ_PAUSED;
        uv_read_stop(&c->h.stream);
      }
      return;
    }
    resp_status_t st = resp_parser_next(&c->parser, &cmd);
    if (st == RESP_NEED_MORE) {
      /* Stopping: every command read before the signal has now run; a
       * partial one is dropped. */
      if (s->stopping)
        client_close_after_reply(c);
      break;
    }
    if (st == RESP_ERROR) {
      char sample[4 * 64 + 1];
      const char *d = c->parser.buf ? c->parser.buf + c->parser.req : "";
      size_t n = c->parser.buf ? c->parser.len - c->parser.req : 0;
      log_sanitize(sample, d, n, 64);
      log_verbose("client %llu (%s): %s; input starts \"%s\"", (unsigned long long)c->id, c->addr,
                  c->parser.errstr, sample);
      conn__fatal(c, c->parser.errstr);
      return;
    }
    c->cmds++;
    s->st.total_commands++;
    s->dispatch(c, &cmd);
  }
  /* A request still incomplete may not grow past the query buffer cap
   * (the parser's own limits stop single huge lengths earlier). */
  int authed = (c->flags & CLIENT_AUTHED) != 0;
  size_t cap = s->cfg->max_request_bytes;
  if (!authed && cap > CONN_PREAUTH_MAX_REQUEST)
    cap = CONN_PREAUTH_MAX_REQUEST;
  if (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER)) &&
      resp_parser_bytes_buffered(&c->parser) > cap)
    conn__fatal(c, authed ? "request larger than max-request-bytes"
                          : "unauthenticated request larger than 16384 bytes");
}

/* A TLS client's read: ciphertext to OpenSSL, the handshake, then the
 * plaintext decrypted straight into the parser's buffer (one copy, the
 * decryption's own), and the commands run as for a plain client. */
static void conn__tls_read(client_t *c, ssize_t nread, const uv_buf_t *buf) {
  server_t *s = c->srv;
  char err[RECD_ERRLEN];
  if (nread < 0) {
    if (!tls_conn_ready(c->tls)) { /* a half handshake, then gone */
      s->tls.handshake_failures++;
      log_verbose("client %llu (%s): closed during the TLS handshake", (unsigned long long)c->id,
                  c->addr);
    }
    client_close(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
    return;
  }
  if (nread == 0)
    return;
  c->last_io_ms = uv_now(s->loop);
  if (tls_conn_feed(c->tls, buf->base, (size_t)nread) != 0) {
    client_close(c, "out of memory");
    return;
  }
  if (!tls_conn_ready(c->tls)) {
    int hs = tls_conn_handshake(c->tls, err);
    if (hs < 0) {
      conn__tls_failed(c, err);
      return;
    }
    if (conn__tls_send(c) != 0 || hs == 0)
      return;
    s->tls.connections++;
    log_debug("client %llu (%s): TLS handshake done", (unsigned long long)c->id, c->addr);
  }
  int peer_closed = 0;
  for (;;) {
    char *p;
    size_t avail;
    if (resp_parser_reserve(&c->parser, CONN_READ_CHUNK, &p, &avail) != 0) {
      client_close(c, "out of memory");
      return;
    }
    ssize_t n = tls_conn_read(c->tls, p, avail, err);
    resp_parser_commit(&c->parser, n > 0 ? (size_t)n : 0);
    if (n > 0)
      continue;
    if (n == TLS_FAILED) { /* a bad record: the stream cannot be trusted */
      char why[RECD_ERRLEN + 8];
      snprintf(why, sizeof why, "TLS: %s", err);
      client_close(c, why);
      return;
    }
    peer_closed = n == TLS_CLOSED;
    break;
  }
  if (conn__tls_send(c) != 0)
    return;
  conn__process(c);
  /* close_notify is the TLS end of file: as UV_EOF for a plain client */
  if (peer_closed)
    client_close(c, NULL);
}

static void conn__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  client_t *c = st->data;
  if (c->tls != NULL) {
    conn__tls_read(c, nread, buf);
    return;
  }
  (void)buf;
  resp_parser_commit(&c->parser, nread > 0 ? (size_t)nread : 0);
  if (nread < 0) {
    client_close(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
    return;
  }
  c->last_io_ms = uv_now(c->srv->loop);
  conn__process(c);
}

void conn_stop_reading(client_t *c) {
  if (c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER))
    return;
  uv_read_stop(&c->h.stream);
  /* A paused client still has commands buffered: conn__resume runs them
   * as its queue drains, and closes it after the last. */
  if (!(c->flags & CLIENT_READ_PAUSED))
    client_close_after_reply(c);
}

void conn_init(client_t *c, server_t *s) {
  c->srv = s;
  c->open_handles = 1;
  acl_client_init(c); /* user default; authenticated when it takes no password */
  resp_config_t rcfg = {.max_args = (size_t)s->cfg->max_request_args,
                        .max_request = s->cfg->max_request_bytes};
  resp_parser_init(&c->parser, &rcfg);
  reply_init(&c->out);
  reply_set_limit(&c->out, s->cfg->client_output_buffer_limit);
  reqq_init(&c->rq, conn__queue_ready, c);
  c->last_io_ms = uv_now(s->loop);
  c->created_ms = c->last_io_ms;
}

void conn_start(client_t *c, const char *reject) {
  if (reject != NULL) {
    reply_error(&c->out, reject);
    client_close_after_reply(c);
    return;
  }
  uv_read_start(&c->h.stream, conn__alloc, conn__on_read);
}
