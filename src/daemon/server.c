/* server.c - listeners, connections, reading and parsing, ordered replies,
 * batched flushing, limits.
 *
 * Replies leave in request order even though RECOMMEND waits for Redis: a
 * client's commands are answered into its queue of requests, and only the
 * done requests at the head of the queue move to the output buffer. All
 * output is flushed once per loop turn from a uv_prepare_t (try_write
 * first, uv_write for the rest) so a pipeline of 1000 commands costs a few
 * system calls, not 1000.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "server.h"

/* Requests a client may have in flight before we stop reading from it:
 * back-pressure for a client that pipelines faster than Redis answers.
 * Small on purpose: every queued RECOMMEND holds a place in the one Redis
 * connection's queue, and at 4096 a client pipelining without reading
 * pushed other clients' Redis reads past their deadline (a witness waited
 * 341 ms and got a degraded answer). Reading resumes as soon as half have
 * been answered (client__resume), so a pipelining client still keeps the
 * batcher full. */
#define CLIENT_MAX_QUEUED 256
/* Read buffer reserved per read callback. */
#define CLIENT_READ_CHUNK (16 * 1024)
/* Query buffer cap before AUTH (with requirepass set): a stranger must not
 * be able to pin max-request-bytes on every one of maxclients connections
 * (Redis likewise caps unauthenticated requests far below its limits). */
#define CLIENT_PREAUTH_MAX_REQUEST (16 * 1024)

typedef struct write_req {
  uv_write_t req; /* first, so the uv_write_t* is the write_req_t* */
  client_t *c;
  char *block;    /* detached reply buffer, freed on completion */
  size_t len;
} write_req_t;

static void client__on_close(uv_handle_t *h) {
  client_t *c = h->data;
  server_t *s = c->srv;
  /* Requests still waiting for Redis forget their client; they free
   * themselves when their callbacks fire. */
  for (req_t *r = c->q_head, *next; r != NULL; r = next) {
    next = r->next;
    r->c = NULL;
    r->next = NULL;
    req_unref(r);
  }
  if (c->prev)
    c->prev->next = c->next;
  else
    s->clients = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->n_clients--;
  resp_parser_free(&c->parser);
  reply_free(&c->out);
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
  uv_close(&c->h.handle, client__on_close);
}

static void client__schedule_flush(client_t *c) {
  if (c->flags & (CLIENT_PENDING_WRITE | CLIENT_CLOSING))
    return;
  c->flags |= CLIENT_PENDING_WRITE;
  c->pw_next = c->srv->pending_writes;
  c->srv->pending_writes = c;
}

void client_close_after_reply(client_t *c) {
  c->flags |= CLIENT_CLOSE_AFTER;
  uv_read_stop(&c->h.stream);
  client__schedule_flush(c);
}

void client_advance(client_t *c) {
  if (c->flags & CLIENT_CLOSING)
    return;
  while (c->q_head != NULL && c->q_head->done) {
    req_t *r = c->q_head;
    size_t n;
    const char *data = reply_data(&r->reply, &n);
    if (n > 0)
      reply_raw(&c->out, data, n);
    c->q_head = r->next;
    if (c->q_head == NULL)
      c->q_tail = NULL;
    c->q_len--;
    r->next = NULL;
    r->c = NULL;
    req_unref(r);
  }
  if (c->out.err != 0) {
    c->srv->output_limit_closes++;
    log_warning("client %llu (%s): output buffer over %zu bytes, closing", (unsigned long long)c->id,
                c->addr, c->srv->cfg->client_output_buffer_limit);
    client_close(c, NULL);
    return;
  }
  client__schedule_flush(c);
}

static void client__after_write(uv_write_t *w, int status) {
  write_req_t *wr = (write_req_t *)w;
  client_t *c = wr->c;
  c->write_bytes -= wr->len;
  free(wr->block);
  free(wr);
  if (status < 0 && status != UV_ECANCELED) {
    client_close(c, uv_strerror(status));
    return;
  }
  /* Requests still queued (QUIT or a protocol error after a RECOMMEND that
   * waits for Redis) are answered before the connection closes. */
  if ((c->flags & CLIENT_CLOSE_AFTER) && c->write_bytes == 0 && reply_len(&c->out) == 0 &&
      c->q_head == NULL && !(c->flags & CLIENT_CLOSING))
    client_close(c, "closed after reply");
}

/* Sends what c has ready: as much as the socket takes now, the rest with
 * one uv_write of the detached buffer (no copy). */
static void client__process(client_t *c);
static void client__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void client__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* A paused reader whose queue has drained to half: read and parse again.
 * Called from the flush, at most once per loop iteration and never from
 * inside a command. */
static void client__resume(client_t *c) {
  if (!(c->flags & CLIENT_READ_PAUSED) || c->q_len >= CLIENT_MAX_QUEUED / 2 ||
      (c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER)))
    return;
  c->flags &= ~(unsigned)CLIENT_READ_PAUSED;
  uv_read_start(&c->h.stream, client__alloc, client__on_read);
  client__process(c); /* what is already buffered */
}

static void client__flush(client_t *c) {
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
    int rc = uv_write(&wr->req, &c->h.stream, &b, 1, client__after_write);
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
      c->srv->output_limit_closes++;
      log_warning("client %llu (%s): %zu reply bytes unread, over client-output-buffer-limit, "
                  "closing", (unsigned long long)c->id, c->addr, c->write_bytes);
      client_close(c, NULL);
      return;
    }
  }
  if ((c->flags & CLIENT_CLOSE_AFTER) && c->write_bytes == 0 && reply_len(&c->out) == 0 &&
      c->q_head == NULL)
    client_close(c, "closed after reply");
}

static void server__on_prepare(uv_prepare_t *p) {
  server_t *s = p->data;
  while (s->pending_writes != NULL) {
    client_t *c = s->pending_writes;
    s->pending_writes = c->pw_next;
    c->flags &= ~(unsigned)CLIENT_PENDING_WRITE;
    client__flush(c);
    if (!(c->flags & CLIENT_CLOSING))
      client__resume(c);
  }
}

static void client__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  client_t *c = h->data;
  char *p;
  size_t avail;
  if (resp_parser_reserve(&c->parser, CLIENT_READ_CHUNK, &p, &avail) != 0) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to read_cb */
    return;
  }
  *buf = uv_buf_init(p, (unsigned)(avail > UINT32_MAX ? UINT32_MAX : avail));
}

/* Parses and runs every complete command in c's buffer. */
static void client__process(client_t *c) {
  server_t *s = c->srv;
  resp_cmd_t cmd;
  while (!(c->flags & (CLIENT_CLOSING | CLIENT_CLOSE_AFTER))) {
    if (c->q_len >= CLIENT_MAX_QUEUED) {
      if (!(c->flags & CLIENT_READ_PAUSED)) {
        c->flags |= CLIENT_READ_PAUSED;
        uv_read_stop(&c->h.stream);
      }
      return;
    }
    resp_status_t st = resp_parser_next(&c->parser, &cmd);
    if (st == RESP_NEED_MORE)
      break;
    if (st == RESP_ERROR) {
      char sample[4 * 64 + 1];
      size_t n;
      const char *d = c->parser.buf ? c->parser.buf + c->parser.req : "";
      n = c->parser.buf ? c->parser.len - c->parser.req : 0;
      log_sanitize(sample, d, n, 64);
      log_verbose("client %llu (%s): %s; input starts \"%s\"", (unsigned long long)c->id, c->addr,
                  c->parser.errstr, sample);
      s->protocol_errors++;
      reply_buf_t *r = client_sync_reply(c);
      if (r != NULL)
        reply_errorf(r, "%s", c->parser.errstr);
      client_advance(c);
      client_close_after_reply(c);
      return;
    }
    c->cmds++;
    s->total_commands++;
    commands_dispatch(c, &cmd);
  }
  /* A request still incomplete may not grow past the query buffer cap
   * (the parser's own limits stop single huge lengths earlier). */
  int authed = (c->flags & CLIENT_AUTHED) != 0;
  size_t cap = s->cfg->max_request_bytes;
  if (!authed && cap > CLIENT_PREAUTH_MAX_REQUEST)
    cap = CLIENT_PREAUTH_MAX_REQUEST;
  if (!(c->flags & CLIENT_CLOSING) && resp_parser_bytes_buffered(&c->parser) > cap) {
    s->protocol_errors++;
    reply_buf_t *r = client_sync_reply(c);
    if (r != NULL)
      reply_error(r, authed ? "request larger than max-request-bytes"
                            : "unauthenticated request larger than 16384 bytes");
    client_advance(c);
    client_close_after_reply(c);
  }
}

static void client__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  client_t *c = st->data;
  (void)buf;
  resp_parser_commit(&c->parser, nread > 0 ? (size_t)nread : 0);
  if (nread < 0) {
    client_close(c, nread == UV_EOF ? NULL : uv_strerror((int)nread));
    return;
  }
  c->last_io_ms = uv_now(c->srv->loop);
  client__process(c);
}

static void server__accept(uv_stream_t *listener, int status, int is_unix) {
  server_t *s = listener->data;
  if (status < 0) {
    log_warning("accept: %s", uv_strerror(status));
    return;
  }
  client_t *c = calloc(1, sizeof *c);
  if (c == NULL)
    return;
  int rc = is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp);
  if (rc != 0) {
    free(c);
    return;
  }
  c->h.handle.data = c;
  c->srv = s;
  c->id = ++s->total_connections;
  c->flags = (s->cfg->requirepass[0] == '\0' ? CLIENT_AUTHED : 0) | (is_unix ? CLIENT_UNIX : 0);
  resp_config_t rcfg = {.max_args = (size_t)s->cfg->max_request_args,
                        .max_request = s->cfg->max_request_bytes};
  resp_parser_init(&c->parser, &rcfg);
  reply_init(&c->out);
  reply_set_limit(&c->out, s->cfg->client_output_buffer_limit);
  c->next = s->clients;
  if (s->clients)
    s->clients->prev = c;
  s->clients = c;
  s->n_clients++;
  if (uv_accept(listener, &c->h.stream) != 0) {
    client_close(c, "accept failed");
    return;
  }
  if (is_unix) {
    snprintf(c->addr, sizeof c->addr, "unix:%s", s->cfg->unixsocket);
  } else {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[48] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
      if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
      } else {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
      }
    }
    snprintf(c->addr, sizeof c->addr, "%s:%d", ip, port);
    uv_tcp_nodelay(&c->h.tcp, 1);
  }
  /* maxclients: like Redis, accept, answer the error, close. */
  if (s->n_clients > (unsigned)s->cfg->maxclients || s->stopping) {
    s->rejected_connections++;
    reply_error(&c->out, s->stopping ? "server is shutting down"
                                     : "max number of clients reached");
    client_close_after_reply(c);
    return;
  }
  c->last_io_ms = uv_now(s->loop);
  uv_read_start(&c->h.stream, client__alloc, client__on_read);
  log_debug("client %llu connected from %s", (unsigned long long)c->id, c->addr);
}

static void server__on_tcp(uv_stream_t *l, int status) {
  server__accept(l, status, 0);
}

static void server__on_unix(uv_stream_t *l, int status) {
  server__accept(l, status, 1);
}

/* Idle timeouts and paused readers, once a second. */
static void server__on_cron(uv_timer_t *t) {
  server_t *s = t->data;
  uint64_t now = uv_now(s->loop);
  for (client_t *c = s->clients, *next; c != NULL; c = next) {
    next = c->next;
    if (c->flags & CLIENT_CLOSING)
      continue;
    if ((c->flags & CLIENT_READ_PAUSED) && c->q_len < CLIENT_MAX_QUEUED / 2) {
      c->flags &= ~(unsigned)CLIENT_READ_PAUSED;
      uv_read_start(&c->h.stream, client__alloc, client__on_read);
      client__process(c);
    }
    if (s->cfg->timeout > 0 && c->q_len == 0 &&
        now - c->last_io_ms > (uint64_t)s->cfg->timeout * 1000) {
      s->idle_closes++;
      client_close(c, "idle timeout");
    }
  }
}

int server_listen(server_t *s, char *errbuf) {
  const config_t *cfg = s->cfg;
  uv_prepare_init(s->loop, &s->flusher);
  s->flusher.data = s;
  uv_prepare_start(&s->flusher, server__on_prepare);
  uv_timer_init(s->loop, &s->cron);
  s->cron.data = s;
  uv_timer_start(&s->cron, server__on_cron, 1000, 1000);
  if (cfg->port > 0) {
    for (int i = 0; i < cfg->bind.n; i++) {
      struct sockaddr_storage ss;
      const char *a = cfg->bind.addr[i];
      int rc = strchr(a, ':') ? uv_ip6_addr(a, cfg->port, (struct sockaddr_in6 *)&ss)
                              : uv_ip4_addr(a, cfg->port, (struct sockaddr_in *)&ss);
      uv_tcp_t *t = &s->tcp[s->n_tcp];
      if (rc == 0)
        rc = uv_tcp_init(s->loop, t);
      if (rc != 0)
        return recd_errf(errbuf, RECD_EIO, "bind %s: %s", a, uv_strerror(rc));
      t->data = s;
      s->n_tcp++;
      rc = uv_tcp_bind(t, (struct sockaddr *)&ss, strchr(a, ':') ? UV_TCP_IPV6ONLY : 0);
      if (rc == 0)
        rc = uv_listen((uv_stream_t *)t, 511, server__on_tcp);
      if (rc != 0)
        return recd_errf(errbuf, RECD_EIO, "cannot listen on %s:%d: %s", a, cfg->port,
                         uv_strerror(rc));
      log_notice("listening on %s:%d", a, cfg->port);
    }
  }
  if (cfg->unixsocket[0] != '\0') {
    unlink(cfg->unixsocket); /* a stale socket of a previous run */
    int rc = uv_pipe_init(s->loop, &s->unix_sock, 0);
    if (rc != 0)
      return recd_errf(errbuf, RECD_EIO, "unix socket: %s", uv_strerror(rc));
    s->unix_sock.data = s;
    s->have_unix = 1;
    /* Create the socket with no access, then chmod: no window in which
     * it is reachable with the umask's permissions. */
    mode_t old = umask(0777);
    rc = uv_pipe_bind(&s->unix_sock, cfg->unixsocket);
    umask(old);
    if (rc == 0 && chmod(cfg->unixsocket, (mode_t)cfg->unixsocketperm) != 0)
      rc = UV_EPERM;
    if (rc == 0)
      rc = uv_listen((uv_stream_t *)&s->unix_sock, 511, server__on_unix);
    if (rc != 0)
      return recd_errf(errbuf, RECD_EIO, "cannot listen on %s: %s", cfg->unixsocket,
                       uv_strerror(rc));
    log_notice("listening on unix:%s (mode %03o)", cfg->unixsocket, cfg->unixsocketperm);
  }
  return 0;
}

void server_stop_accepting(server_t *s) {
  for (int i = 0; i < s->n_tcp; i++)
    if (!uv_is_closing((uv_handle_t *)&s->tcp[i]))
      uv_close((uv_handle_t *)&s->tcp[i], NULL);
  if (s->have_unix && !uv_is_closing((uv_handle_t *)&s->unix_sock)) {
    uv_close((uv_handle_t *)&s->unix_sock, NULL);
    unlink(s->cfg->unixsocket);
  }
}

void server_close_all_clients(server_t *s) {
  for (client_t *c = s->clients; c != NULL; c = c->next)
    client_close(c, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->flusher))
    uv_close((uv_handle_t *)&s->flusher, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->cron))
    uv_close((uv_handle_t *)&s->cron, NULL);
}
