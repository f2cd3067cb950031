/* server.c - listeners, accepting connections, idle timeouts and
 * shutdown (see server.h; a connection's own work is in conn.c). */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"

void server_init(server_t *s, uv_loop_t *loop, const config_t *cfg,
                 server_dispatch_fn dispatch) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->cfg = cfg;
  s->dispatch = dispatch;
  s->started_ms = uv_now(loop);
  rec_ws_init(&s->ws);
}

static void server__on_prepare(uv_prepare_t *p) {
  server_t *s = p->data;
  while (s->pending_writes != NULL) {
    client_t *c = s->pending_writes;
    s->pending_writes = c->pw_next;
    c->flags &= ~(unsigned)CLIENT_PENDING_WRITE;
    conn_flush(c);
  }
}

/* Kinds of listener. */
enum { SERVER__TCP, SERVER__UNIX, SERVER__TLS };

static void server__accept(uv_stream_t *listener, int status, int kind) {
  const int is_unix = kind == SERVER__UNIX;
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
  c->id = ++s->st.total_connections;
  c->flags = is_unix ? CLIENT_UNIX : 0;
  conn_init(c, s);
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
  const char *reject = NULL;
  if (s->stopping)
    reject = "server is shutting down";
  else if (s->n_clients > (unsigned)s->cfg->maxclients)
    reject = "max number of clients reached";
  if (reject != NULL)
    s->st.rejected_connections++;
  else
    log_debug("client %llu connected from %s", (unsigned long long)c->id, c->addr);
  if (kind == SERVER__TLS) {
    /* The error reply of a rejection could only be sent after a whole
     * handshake: a rejected TLS client is closed at once instead. */
    if (reject != NULL) {
      client_close(c, reject);
      return;
    }
    if ((c->tls = tls_conn_new(&s->tls)) == NULL) {
      client_close(c, "out of memory (TLS)");
      return;
    }
  }
  conn_start(c, reject);
}

static void server__on_tcp(uv_stream_t *l, int status) {
  server__accept(l, status, SERVER__TCP);
}

static void server__on_unix(uv_stream_t *l, int status) {
  server__accept(l, status, SERVER__UNIX);
}

static void server__on_tls(uv_stream_t *l, int status) {
  server__accept(l, status, SERVER__TLS);
}

/* Idle timeouts and TLS handshake timeouts, once a second. */
static void server__on_cron(uv_timer_t *t) {
  server_t *s = t->data;
  uint64_t now = uv_now(s->loop);
  if (s->tls.cur.ctx != NULL)
    conn_tls_timeouts(s, now);
  if (s->cfg->timeout <= 0)
    return;
  for (client_t *c = s->clients, *next; c != NULL; c = next) {
    next = c->next;
    if (!(c->flags & (CLIENT_CLOSING | CLIENT_LINGER)) && c->rq.len == 0 &&
        now - c->last_io_ms > (uint64_t)s->cfg->timeout * 1000) {
      s->st.idle_closes++;
      client_close(c, "idle timeout");
    }
  }
}

/* Listens on port at every bind address (nothing when port is 0). */
static int server__listen_tcp(server_t *s, int port, uv_connection_cb cb, const char *what,
                              char *errbuf) {
  const config_t *cfg = s->cfg;
  for (int i = 0; port > 0 && i < cfg->bind.n; i++) {
    struct sockaddr_storage ss;
    const char *a = cfg->bind.addr[i];
    int rc = strchr(a, ':') ? uv_ip6_addr(a, port, (struct sockaddr_in6 *)&ss)
                            : uv_ip4_addr(a, port, (struct sockaddr_in *)&ss);
    uv_tcp_t *t = &s->tcp[s->n_tcp];
    if (rc == 0)
      rc = uv_tcp_init(s->loop, t);
    if (rc != 0)
      return recd_errf(errbuf, RECD_EIO, "bind %s: %s", a, uv_strerror(rc));
    t->data = s;
    s->n_tcp++;
    rc = uv_tcp_bind(t, (struct sockaddr *)&ss, strchr(a, ':') ? UV_TCP_IPV6ONLY : 0);
    if (rc == 0)
      rc = uv_listen((uv_stream_t *)t, 511, cb);
    if (rc != 0)
      return recd_errf(errbuf, RECD_EIO, "cannot listen on %s:%d%s: %s", a, port, what,
                       uv_strerror(rc));
    log_notice("listening on %s:%d%s", a, port, what);
  }
  return 0;
}

int server_listen(server_t *s, char *errbuf) {
  const config_t *cfg = s->cfg;
  uv_prepare_init(s->loop, &s->flusher);
  s->flusher.data = s;
  uv_prepare_start(&s->flusher, server__on_prepare);
  uv_timer_init(s->loop, &s->cron);
  s->cron.data = s;
  uv_timer_start(&s->cron, server__on_cron, 1000, 1000);
  int rc = server__listen_tcp(s, cfg->port, server__on_tcp, "", errbuf);
  if (rc != 0)
    return rc;
  if (cfg->tls_port > 0 || (cfg->metrics_tls && cfg->metrics_port > 0)) {
    /* The certificate is loaded before the port opens: a TLS port that
     * cannot complete a handshake is a start-up error. metrics-tls uses
     * the same credentials (metrics.c). */
    if ((rc = tls_creds_load(cfg, &s->tls.cur, errbuf)) != 0)
      return rc;
    if (tls_creds_expired(&s->tls.cur, (long long)time(NULL)))
      log_warning("the TLS certificate in %s has expired: clients will refuse it",
                  cfg->tls_cert_file);
  }
  if (cfg->tls_port > 0 &&
      (rc = server__listen_tcp(s, cfg->tls_port, server__on_tls, " (TLS)", errbuf)) != 0)
    return rc;
  if (cfg->unixsocket[0] != '\0') {
    unlink(cfg->unixsocket); /* a stale socket of a previous run */
    rc = uv_pipe_init(s->loop, &s->unix_sock, 0);
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

static void server__stop_accepting(server_t *s) {
  for (int i = 0; i < s->n_tcp; i++)
    if (!uv_is_closing((uv_handle_t *)&s->tcp[i]))
      uv_close((uv_handle_t *)&s->tcp[i], NULL);
  if (s->have_unix && !uv_is_closing((uv_handle_t *)&s->unix_sock)) {
    uv_close((uv_handle_t *)&s->unix_sock, NULL);
    unlink(s->cfg->unixsocket);
  }
}

void server_shutdown_begin(server_t *s) {
  if (s->stopping)
    return;
  s->stopping = 1;
  server__stop_accepting(s);
  for (client_t *c = s->clients; c != NULL; c = c->next)
    conn_stop_reading(c);
}

int server_drained(const server_t *s) {
  for (const client_t *c = s->clients; c != NULL; c = c->next)
    if (!conn_finished(c))
      return 0;
  return 1;
}

/* Clients whose replies are all out are already closing gracefully (their
 * linger ends when they close their side or CONN_LINGER_MS pass); the rest
 * (grace period over) are cut off. */
void server_close(server_t *s) {
  server__stop_accepting(s);
  for (client_t *c = s->clients; c != NULL; c = c->next)
    if (!(c->flags & CLIENT_LINGER))
      client_close(c, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->flusher))
    uv_close((uv_handle_t *)&s->flusher, NULL);
  if (!uv_is_closing((uv_handle_t *)&s->cron))
    uv_close((uv_handle_t *)&s->cron, NULL);
  tls_server_free(&s->tls); /* lingering connections keep their context */
  rec_ws_free(&s->ws);
}
