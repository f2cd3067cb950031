/* metrics.c - GET /metrics and GET /healthz over HTTP/1.1 (see metrics.h).
 *
 * One request per connection: the request is parsed with the http-parser
 * library (Debian's libhttp-parser), answered with "Connection: close", and
 * the connection is then half-closed (FIN) and drained until the peer closes
 * or a short linger time passes. Closing outright while unread request bytes
 * sit in the kernel would make it send a RST, which can destroy the response
 * before the client has read it; draining first is what web servers do
 * ("lingering close").
 *
 * Connections live in a fixed pool allocated with the endpoint, so accepting
 * never allocates and the concurrency cap is the pool size. When the pool is
 * full the listener's callback returns without uv_accept(): libuv then stops
 * watching the listening socket until uv_accept() is called, which happens
 * from the close callback that frees a slot. Excess connections therefore
 * wait in the kernel's accept queue instead of being refused.
 *
 * OOM policy: the only allocations after start-up are the /metrics bodies;
 * when one fails the client gets a 500 and the daemon carries on.
 */
#include "metrics.h"

#include <http_parser.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "commands.h"
#include "log.h"
#include "model_store.h"
#include "rclient.h"
#include "status.h"
#include "tls.h"
#include "tracking.h"
#include "variants.h"

/* Longest request target we keep; longer ones get 414. Paths we serve are
 * 8 bytes, so this only has to leave room for query strings. */
#define METRICS_MAX_URL 1024
/* How long a half-closed connection may keep sending before we close. */
#define METRICS_LINGER_MS 2000
/* Period of the deadline sweep. */
#define METRICS_SWEEP_MS 500

typedef enum metrics_conn_state {
  METRICS_CONN_FREE = 0,   /* slot unused */
  METRICS_CONN_READING,    /* waiting for a complete request */
  METRICS_CONN_RESPONDING, /* response handed to uv_write */
  METRICS_CONN_LINGERING,  /* response sent, FIN sent, draining input */
  METRICS_CONN_CLOSING     /* uv_close() called; slot freed in close_cb */
} metrics_conn_state_t;

typedef struct metrics_conn {
  uv_tcp_t tcp;             /* first: tcp.data is the connection */
  metrics_t *m;             /* the endpoint owning this slot */
  metrics_conn_state_t state;
  http_parser parser;       /* incremental request parser (parser.data = this) */
  size_t req_bytes;         /* bytes the parser consumed: the request size */
  uint64_t deadline_ms;     /* uv_now() at which the sweep closes it */
  int headers_done;         /* on_headers_complete seen (431 vs 413) */
  int complete;             /* on_message_complete seen; parser paused */
  int url_too_long;         /* request target over METRICS_MAX_URL */
  int peer_eof;             /* the peer half-closed after its request */
  size_t url_len;
  char url[METRICS_MAX_URL];/* request target, not NUL-terminated */
  uv_write_t wreq;          /* the one response write */
  uv_shutdown_t sreq;       /* the FIN after it */
  char head[384];           /* status line and headers of the response */
  char *body_owned;         /* malloc'd response body, freed in on_write */
  tls_conn_t *tls;          /* metrics-tls: the HTTPS session; NULL: HTTP */
} metrics_conn_t;

struct metrics {
  server_t *srv;
  uv_tcp_t listener;
  uv_timer_t sweep;          /* deadlines of every connection */
  unsigned open_handles;     /* listener + sweep + open connections */
  int accept_pending;        /* a connection waits for a free slot */
  int stopping;              /* metrics_stop() called: free at 0 handles */
  char rbuf[4096];           /* read buffer shared by all connections: the
                                loop thread consumes it before the next
                                read, so one suffices */
  char pbuf[4096];           /* metrics-tls: plaintext decrypted from rbuf */
  metrics_conn_t conns[METRICS_MAX_CONNS];
};

/* Growable text buffer for the exposition; `oom` sticks once set. */
typedef struct metrics_buf {
  char *p;
  size_t len, cap;
  int oom;
} metrics_buf_t;

static void metrics__printf(metrics_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void metrics__printf(metrics_buf_t *b, const char *fmt, ...) {
  while (!b->oom) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap ? b->cap * 2 : 16384;
    while (cap < b->len + (size_t)n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
}

/* The HELP and TYPE lines of one metric family. */
static void metrics__family(metrics_buf_t *b, const char *name, const char *type,
                            const char *help) {
  metrics__printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metrics__u64(metrics_buf_t *b, const char *name, const char *type, const char *help,
                         uint64_t v) {
  metrics__family(b, name, type, help);
  metrics__printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void metrics__f64(metrics_buf_t *b, const char *name, const char *type, const char *help,
                         double v) {
  metrics__family(b, name, type, help);
  metrics__printf(b, "%s %.3f\n", name, v);
}

/* Histogram boundaries (Prometheus `le`, seconds), in microseconds and as
 * printed. Fixed so that dashboards can rely on them across versions. */
static const struct {
  uint64_t us;
  const char *le;
} metrics__bounds[] = {
  {50, "0.00005"}, {100, "0.0001"}, {250, "0.00025"}, {500, "0.0005"},
  {1000, "0.001"}, {2500, "0.0025"}, {5000, "0.005"}, {10000, "0.01"},
  {25000, "0.025"}, {50000, "0.05"}, {100000, "0.1"}, {250000, "0.25"},
  {500000, "0.5"}, {1000000, "1"}, {2500000, "2.5"}, {5000000, "5"},
};
#define METRICS_N_BOUNDS (sizeof metrics__bounds / sizeof metrics__bounds[0])

typedef struct metrics_cmd_pass {
  metrics_buf_t *b;
  int pass; /* 0: counters, 1: histograms */
} metrics_cmd_pass_t;

static void metrics__on_command(const char *name, const cmd_stats_t *st, void *arg) {
  metrics_cmd_pass_t *cp = arg;
  metrics_buf_t *b = cp->b;
  /* Command names come from the static command table (lower-case ASCII), so
   * they need no label-value escaping. */
  if (cp->pass == 0) {
    metrics__printf(b,
                    "recd_commands_total{command=\"%s\",outcome=\"ok\"} %llu\n"
                    "recd_commands_total{command=\"%s\",outcome=\"error\"} %llu\n",
                    name, (unsigned long long)(st->calls - st->errors), name,
                    (unsigned long long)st->errors);
    return;
  }
  /* The log-linear buckets (8 per power of two) do not line up with the
   * boundaries. A bucket counts towards a boundary only when its largest
   * value is within it; a bucket that straddles a boundary is counted at
   * the next one. Every `le` count is thus a lower bound: the histogram may
   * say a request was up to one bucket width (12.5%) slower than it was,
   * never faster, which is the safe side for latency alerts. */
  const stats_hist_t *h = &st->latency;
  uint64_t cum = 0;
  unsigned bk = 0;
  for (size_t i = 0; i < METRICS_N_BOUNDS; i++) {
    while (bk < STATS_BUCKETS - 1 && stats_hist_bucket_upper(bk) <= metrics__bounds[i].us)
      cum += h->bucket[bk++];
    metrics__printf(b, "recd_command_duration_seconds_bucket{command=\"%s\",le=\"%s\"} %llu\n",
                    name, metrics__bounds[i].le, (unsigned long long)cum);
  }
  metrics__printf(b,
                  "recd_command_duration_seconds_bucket{command=\"%s\",le=\"+Inf\"} %llu\n"
                  "recd_command_duration_seconds_sum{command=\"%s\"} %.6f\n"
                  "recd_command_duration_seconds_count{command=\"%s\"} %llu\n",
                  name, (unsigned long long)h->count, name, (double)h->sum_us / 1e6, name,
                  (unsigned long long)h->count);
}

/* The experiment counters, from the tracker's periodic copy of the
 * counters in Redis: the figures of every replica together, so they may
 * go down after EXPERIMENT RESET (a counter reset to Prometheus). */
static void metrics__experiments(metrics_buf_t *b, const server_t *s) {
  const exp_report_t *rep = s->tracker ? tracker_report(s->tracker, NULL) : NULL;
  if (rep == NULL)
    return;
  static const char *const help[EXP_N_COUNTERS] = {
    "Answers recorded as impressions, by variant and placement (all replicas).",
    "Items shown in those answers.",
    "Clicks (FEEDBACK TYPE click) attributed to an impression, or organic.",
    "Items put in a cart (FEEDBACK TYPE cart), attributed or organic.",
    "Purchases (FEEDBACK TYPE purchase), attributed or organic.",
    "Money of the purchases (FEEDBACK ... VALUE), attributed or organic.",
  };
  for (int k = 0; k < EXP_N_COUNTERS; k++) {
    char name[64];
    snprintf(name, sizeof name, "recd_experiment_%s_total", exp_counter_name((exp_counter_t)k));
    metrics__family(b, name, "counter", help[k]);
    for (size_t i = 0; i < rep->n; i++)
      metrics__printf(b, "%s{variant=\"%s\",placement=\"%s\"} %.17g\n", name,
                      rep->row[i].variant, rep->row[i].placement, rep->row[i].v[k]);
  }
  /* The figures, where they are defined (variant and placement names are
   * [A-Za-z0-9_.:-], nothing to escape in a label). */
  static const struct {
    const char *name, *help;
    size_t off;
    int lift_only;
  } figs[] = {
    {"recd_experiment_ctr", "Clicks per impression.", offsetof(exp_row_t, ctr), 0},
    {"recd_experiment_conversion", "Purchases per impression.", offsetof(exp_row_t, conversion),
     0},
    {"recd_experiment_lift", "Conversion relative to the control variant, minus 1.",
     offsetof(exp_row_t, lift), 1},
    {"recd_experiment_p_value", "Two-proportion z-test of conversion against the control.",
     offsetof(exp_row_t, p_value), 1},
  };
  for (size_t f = 0; f < sizeof figs / sizeof figs[0]; f++) {
    metrics__family(b, figs[f].name, "gauge", figs[f].help);
    for (size_t i = 0; i < rep->n; i++) {
      const exp_row_t *w = &rep->row[i];
      const double v = *(const double *)((const char *)w + figs[f].off);
      if ((figs[f].lift_only && !w->has_lift) || !isfinite(v))
        continue;
      metrics__printf(b, "%s{variant=\"%s\",placement=\"%s\"} %.17g\n", figs[f].name,
                      w->variant, w->placement, v);
    }
  }
}

char *metrics_render(server_t *s, size_t *len) {
  metrics_buf_t b = {0};
  metrics_cmd_pass_t cp = {&b, 0};

  metrics__family(&b, "recd_build_info", "gauge", "Always 1; the version is a label.");
  metrics__printf(&b, "recd_build_info{version=\"%s\"} 1\n", RECD_VERSION);
  metrics__f64(&b, "recd_uptime_seconds", "gauge", "Seconds since recd started.",
               (double)(uv_now(s->loop) - s->started_ms) / 1000.0);

  metrics__family(&b, "recd_commands_total", "counter",
                  "Commands processed, by command and outcome (error = counted as failed, "
                  "as INFO cmdstat failed=).");
  commands_foreach(metrics__on_command, &cp);
  metrics__family(&b, "recd_command_duration_seconds", "histogram",
                  "Time from reading a command to its reply being ready, by command.");
  cp.pass = 1;
  commands_foreach(metrics__on_command, &cp);

  metrics__u64(&b, "recd_degraded_answers_total", "counter",
               "Requests answered with popular items because Redis did not answer in time.",
               s->st.degraded);
  metrics__family(&b, "recd_degraded_answers_by_cause_total", "counter",
                  "Degraded answers by cause: timeout (redis-timeout-ms passed), redis_down "
                  "(not connected or not sent), redis_error (Redis answered an error).");
  for (int c = 0; c < TRAPS_DEG_N; c++)
    metrics__printf(&b, "recd_degraded_answers_by_cause_total{cause=\"%s\"} %llu\n",
                    traps_degraded_name((traps_degraded_t)c),
                    (unsigned long long)s->traps.degraded[c]);
  metrics__u64(&b, "recd_acl_denied_commands_total", "counter",
               "Commands refused with NOPERM (ACL, issue 17).", s->acl.denied_commands);
  metrics__u64(&b, "recd_acl_denied_auth_total", "counter",
               "AUTH / HELLO AUTH refused: wrong password, unknown or disabled user.",
               s->acl.denied_auth);
  metrics__u64(&b, "recd_feedback_unknown_items_total", "counter",
               "FEEDBACKs stored for an item the customer's model does not know.",
               s->traps.feedback_unknown_items);
  metrics__u64(&b, "recd_customer_unusable_entries_total", "counter",
               "Entries of customers' pref/hist keys skipped as unusable (bad values).",
               s->traps.pref_bad_entries);
  metrics__u64(&b, "recd_pref_unknown_categories_total", "counter",
               "cat:<name> preference fields naming a category the model does not know.",
               s->traps.pref_unknown_categories);
  batcher_stats_t bs;
  memset(&bs, 0, sizeof bs);
  if (s->batcher != NULL) /* NULL only while shutting down */
    batcher_get_stats(s->batcher, &bs);
  metrics__u64(&b, "recd_scoring_batches_total", "counter",
               "RECOMMEND scoring passes on the thread pool (one per micro-batch).", bs.jobs);
  metrics__u64(&b, "recd_scoring_batch_rows_total", "counter",
               "RECOMMEND requests in those passes; divided by the batches, the mean batch "
               "size.", bs.rows);
  metrics__u64(&b, "recd_protocol_errors_total", "counter",
               "Connections closed for malformed or oversized RESP requests.",
               s->st.protocol_errors);
  metrics__u64(&b, "recd_connected_clients", "gauge", "RESP clients connected now.",
               s->n_clients);
  metrics__u64(&b, "recd_connections_total", "counter", "RESP connections accepted.",
               s->st.total_connections);
  metrics__u64(&b, "recd_rejected_connections_total", "counter",
               "RESP connections refused because maxclients was reached.",
               s->st.rejected_connections);
  metrics__u64(&b, "recd_output_limit_disconnections_total", "counter",
               "Clients disconnected for exceeding client-output-buffer-limit.",
               s->st.output_limit_closes);
  metrics__u64(&b, "recd_idle_disconnections_total", "counter",
               "Clients disconnected after `timeout` seconds idle.", s->st.idle_closes);
  if (s->tls.cur.ctx != NULL) { /* tls-port or metrics-tls: INFO tls's figures */
    metrics__u64(&b, "recd_tls_connections_total", "counter",
                 "TLS handshakes completed (tls-port and metrics-tls).", s->tls.connections);
    metrics__u64(&b, "recd_tls_handshake_failures_total", "counter",
                 "TLS handshakes failed, abandoned or timed out (plain clients, missing, "
                 "expired or untrusted client certificates).",
                 s->tls.handshake_failures);
    metrics__u64(&b, "recd_tls_cert_not_after_seconds", "gauge",
                 "notAfter of the certificate new TLS connections get, unix time: alert on "
                 "it minus time().",
                 s->tls.cur.not_after > 0 ? (uint64_t)s->tls.cur.not_after : 0);
    metrics__u64(&b, "recd_tls_reloads_failed_total", "counter",
                 "Certificate reloads (SIGHUP) that failed; the previous certificate serves.",
                 s->tls.reloads_failed);
  }

  rclient_stats_t rs;
  memset(&rs, 0, sizeof rs);
  if (s->redis != NULL) /* NULL only while shutting down */
    rclient_get_stats(s->redis, &rs);
  metrics__u64(&b, "recd_redis_connected", "gauge", "1 when the Redis connection is up.",
               (uint64_t)(rs.connected != 0));
  metrics__u64(&b, "recd_redis_reconnects_total", "counter",
               "Connections to Redis established after the first one.",
               rs.connects > 0 ? rs.connects - 1 : 0);
  metrics__u64(&b, "recd_redis_disconnects_total", "counter",
               "Established Redis connections that were lost.", rs.disconnects);
  metrics__u64(&b, "recd_redis_errors_total", "counter",
               "Failed Redis connection attempts, AUTH failures and error replies.",
               rs.errors);
  metrics__u64(&b, "recd_redis_anomalies_total", "counter",
               "Malformed entries in Redis skipped (wrong key type, bad score or value).",
               rs.anomalies);

  /* The control's model under the historical names (the only model
   * without variant lines). */
  model_store_t *ctl = s->variants ? variants_control(s->variants)->store : NULL;
  const served_t *sv = ctl ? model_store_current(ctl) : NULL;
  model_store_stats_t mst = {0};
  if (ctl != NULL)
    model_store_get_stats(ctl, &mst);
  const model_t *m = sv ? sv->m : NULL;
  metrics__u64(&b, "recd_model_version", "gauge",
               "Serial number of the model being served (1, 2, ... per successful load).",
               sv ? sv->version : 0);
  metrics__u64(&b, "recd_model_items", "gauge", "Items in the model being served.",
               m ? model_n_items(m) : 0);
  metrics__u64(&b, "recd_model_factors", "gauge", "Latent factors (k) of the model being served.",
               m ? model_factors(m) : 0);
  metrics__f64(&b, "recd_model_age_seconds", "gauge",
               "Seconds since the model being served was trained (its created-at time).",
               m ? difftime(time(NULL), (time_t)model_meta(m)->created_at) : 0.0);
  metrics__u64(&b, "recd_model_loaded_timestamp_seconds", "gauge",
               "Unix time at which the model being served was loaded.",
               sv && sv->loaded_at > 0 ? (uint64_t)sv->loaded_at : 0);
  metrics__family(&b, "recd_model_reloads_total", "counter",
                  "Model reloads (SIGHUP, MODEL RELOAD) by outcome; a failed reload keeps "
                  "the previous model.");
  metrics__printf(&b,
                  "recd_model_reloads_total{outcome=\"ok\"} %llu\n"
                  "recd_model_reloads_total{outcome=\"error\"} %llu\n",
                  (unsigned long long)mst.reloads_ok, (unsigned long long)mst.reloads_failed);
  metrics__u64(&b, "recd_unavailable_items", "gauge",
               "Items of the model currently in the unavailable set.",
               mst.unavailable);
  metrics__experiments(&b, s);

  if (b.oom) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}

/* Connections -------------------------------------------------------- */

static void metrics__accept(metrics_t *m);

static void metrics__free_if_done(metrics_t *m) {
  if (m->stopping && m->open_handles == 0)
    free(m);
}

static void metrics__on_handle_close(uv_handle_t *h) {
  metrics_t *m = h->data;
  m->open_handles--;
  metrics__free_if_done(m);
}

static void metrics__on_conn_close(uv_handle_t *h) {
  metrics_conn_t *c = h->data;
  metrics_t *m = c->m;
  tls_conn_free(c->tls);
  c->tls = NULL;
  c->state = METRICS_CONN_FREE;
  m->open_handles--;
  if (m->stopping) {
    metrics__free_if_done(m);
    return;
  }
  if (m->accept_pending)
    metrics__accept(m);
}

static void metrics__close(metrics_conn_t *c) {
  if (c->state == METRICS_CONN_CLOSING)
    return;
  c->state = METRICS_CONN_CLOSING;
  uv_close((uv_handle_t *)&c->tcp, metrics__on_conn_close);
}

static void metrics__on_shutdown(uv_shutdown_t *req, int status) {
  metrics_conn_t *c = req->handle->data;
  if (c->state == METRICS_CONN_CLOSING)
    return;
  if (status < 0 || c->peer_eof) {
    metrics__close(c);
    return;
  }
  /* Keep reading (and discarding) until the peer's FIN or the linger
   * deadline: see the comment at the top of the file. */
  c->state = METRICS_CONN_LINGERING;
  c->deadline_ms = uv_now(c->m->srv->loop) + METRICS_LINGER_MS;
}

static void metrics__on_write(uv_write_t *req, int status) {
  metrics_conn_t *c = req->handle->data;
  free(c->body_owned);
  c->body_owned = NULL;
  if (c->state == METRICS_CONN_CLOSING)
    return;
  if (status < 0 || uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, metrics__on_shutdown) != 0)
    metrics__close(c);
}

/* Sends the whole response and moves c to RESPONDING. Takes ownership of
 * `owned` (the body, or NULL when `body` is static); a HEAD request gets the
 * headers only. May close c (write refused). */
static void metrics__respond(metrics_conn_t *c, int code, const char *reason,
                             const char *extra_headers, const char *content_type,
                             const char *body, size_t len, char *owned) {
  int head_only = c->parser.method == HTTP_HEAD;
  int n = snprintf(c->head, sizeof c->head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                   code, reason, content_type, len, extra_headers);
  if (n < 0 || (size_t)n >= sizeof c->head) { /* only with a new, longer header */
    free(owned);
    metrics__close(c);
    return;
  }
  c->state = METRICS_CONN_RESPONDING;
  c->deadline_ms = uv_now(c->m->srv->loop) + METRICS_REQUEST_TIMEOUT_MS;
  c->body_owned = owned;
  if (c->tls != NULL) {
    /* HTTPS: head, body and close_notify (Connection: close) encrypted
     * into one block, which replaces the body as what on_write frees. */
    char err[RECD_ERRLEN];
    int bad = tls_conn_write(c->tls, c->head, (size_t)n, err) != 0 ||
              (!head_only && len > 0 && tls_conn_write(c->tls, body, len, err) != 0);
    free(c->body_owned);
    c->body_owned = NULL;
    if (!bad)
      tls_conn_close_notify(c->tls);
    size_t clen = bad ? 0 : tls_conn_pending(c->tls);
    char *block = clen > 0 ? malloc(clen) : NULL;
    if (block == NULL) {
      metrics__close(c);
      return;
    }
    clen = tls_conn_take(c->tls, block, clen);
    c->body_owned = block;
    uv_buf_t b = uv_buf_init(block, (unsigned)clen);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, metrics__on_write) != 0) {
      free(c->body_owned);
      c->body_owned = NULL;
      metrics__close(c);
    }
    return;
  }
  uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)n), uv_buf_init((char *)body, (unsigned)len)};
  int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, head_only || len == 0 ? 1 : 2,
                    metrics__on_write);
  if (rc != 0) {
    free(c->body_owned);
    c->body_owned = NULL;
    metrics__close(c);
  }
}

static void metrics__respond_text(metrics_conn_t *c, int code, const char *reason,
                                  const char *extra_headers, const char *body) {
  metrics__respond(c, code, reason, extra_headers, "text/plain; charset=utf-8", body,
                   strlen(body), NULL);
}

static int metrics__path_is(const char *path, size_t len, const char *want) {
  return strlen(want) == len && memcmp(path, want, len) == 0;
}

/* A complete request: route it. */
static void metrics__route(metrics_conn_t *c) {
  server_t *s = c->m->srv;
  if (c->url_too_long) {
    metrics__respond_text(c, 414, "URI Too Long", "", "request target too long\n");
    return;
  }
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (http_parser_parse_url(c->url, c->url_len, c->parser.method == HTTP_CONNECT, &u) != 0) {
    metrics__respond_text(c, 400, "Bad Request", "", "bad request target\n");
    return;
  }
  /* Origin form ("/metrics?x") and absolute form ("http://h/metrics") both
   * have a path; an absolute form without one means "/". */
  const char *path = "/";
  size_t plen = 1;
  if (u.field_set & (1u << UF_PATH)) {
    path = c->url + u.field_data[UF_PATH].off;
    plen = u.field_data[UF_PATH].len;
  }
  int is_metrics = metrics__path_is(path, plen, "/metrics");
  int is_health = metrics__path_is(path, plen, "/healthz");
  int is_page = metrics__path_is(path, plen, "/");
  int is_json = metrics__path_is(path, plen, "/experiments.json");
  char shown[4 * 64 + 1];
  log_sanitize(shown, path, plen, 64);
  log_debug("metrics: %s %s", http_method_str((enum http_method)c->parser.method), shown);
  if (!is_metrics && !is_health && !is_page && !is_json) {
    metrics__respond_text(c, 404, "Not Found", "",
                          "not found: try /, /metrics, /healthz or /experiments.json\n");
    return;
  }
  if (c->parser.method != HTTP_GET && c->parser.method != HTTP_HEAD) {
    metrics__respond_text(c, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
                          "method not allowed\n");
    return;
  }
  if (is_health) {
    /* Answered from the loop: reaching this line is the liveness check. */
    if (s->stopping)
      metrics__respond_text(c, 503, "Service Unavailable", "", "shutting down\n");
    else if (s->variants == NULL)
      metrics__respond_text(c, 503, "Service Unavailable", "", "no model loaded\n");
    else
      metrics__respond_text(c, 200, "OK", "", "ok\n");
    return;
  }
  if (is_page || is_json) {
    size_t len = 0;
    char *body = is_page ? status_html(s, &len) : status_json(s, &len);
    if (body == NULL) {
      metrics__respond_text(c, 500, "Internal Server Error", "", "out of memory\n");
      return;
    }
    metrics__respond(c, 200, "OK", "",
                     is_page ? "text/html; charset=utf-8" : "application/json", body, len, body);
    return;
  }
  size_t len = 0;
  char *text = metrics_render(s, &len);
  if (text == NULL) {
    log_warning("metrics: out of memory rendering /metrics");
    metrics__respond_text(c, 500, "Internal Server Error", "", "out of memory\n");
    return;
  }
  metrics__respond(c, 200, "OK", "", "text/plain; version=0.0.4; charset=utf-8", text, len,
                   text);
}

static int metrics__on_url(http_parser *p, const char *at, size_t len) {
  metrics_conn_t *c = p->data;
  /* The parser may deliver the target in pieces (one per read). */
  if (c->url_too_long || len > sizeof c->url - c->url_len) {
    c->url_too_long = 1;
    return 0;
  }
  memcpy(c->url + c->url_len, at, len);
  c->url_len += len;
  return 0;
}

static int metrics__on_headers_complete(http_parser *p) {
  metrics_conn_t *c = p->data;
  c->headers_done = 1;
  return 0;
}

static int metrics__on_message_complete(http_parser *p) {
  metrics_conn_t *c = p->data;
  c->complete = 1;
  /* One request per connection: stop here; pipelined bytes after it are
   * drained unparsed. */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings metrics__settings = {
  .on_url = metrics__on_url,
  .on_headers_complete = metrics__on_headers_complete,
  .on_message_complete = metrics__on_message_complete,
};

static void metrics__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  metrics_conn_t *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->m->rbuf, sizeof c->m->rbuf);
}

static void metrics__consume(metrics_conn_t *c, const char *data, size_t nread);

/* metrics-tls: the handshake (its messages sent as they come; a failure
 * is counted with tls-port's and closes), then the plaintext, decrypted
 * into pbuf, goes to the HTTP parser as a plain read's would. */
static void metrics__tls_read(metrics_conn_t *c, const char *data, size_t n) {
  server_t *s = c->m->srv;
  char err[RECD_ERRLEN];
  if (tls_conn_feed(c->tls, data, n) != 0) {
    metrics__close(c);
    return;
  }
  int hs = 1;
  if (!tls_conn_ready(c->tls)) {
    hs = tls_conn_handshake(c->tls, err);
    if (hs < 0) {
      s->tls.handshake_failures++;
      log_verbose("metrics: TLS handshake failed: %s", err);
      metrics__close(c);
      return;
    }
    size_t out = tls_conn_pending(c->tls);
    if (out > 0) { /* the server's flight: written before the response */
      char *block = malloc(out);
      uv_buf_t b;
      if (block == NULL) {
        metrics__close(c);
        return;
      }
      b = uv_buf_init(block, (unsigned)tls_conn_take(c->tls, block, out));
      /* uv_try_write first; what the kernel does not take at once (a
       * handshake flight is a few KB) is not worth a write request here */
      int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
      free(block);
      if (w != (int)b.len) {
        log_verbose("metrics: TLS handshake: socket full");
        metrics__close(c);
        return;
      }
    }
    if (hs == 0)
      return;
    s->tls.connections++;
  }
  for (;;) {
    ssize_t k = tls_conn_read(c->tls, c->m->pbuf, sizeof c->m->pbuf, err);
    if (k <= 0) {
      if (k == TLS_FAILED)
        metrics__close(c);
      return;
    }
    metrics__consume(c, c->m->pbuf, (size_t)k);
    if (c->state != METRICS_CONN_READING)
      return;
  }
}

static void metrics__on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  metrics_conn_t *c = st->data;
  if (nread == 0 || c->state == METRICS_CONN_CLOSING)
    return;
  if (nread < 0) {
    /* A client may half-close right after its request (HTTP/1.0 style):
     * the response in flight must still go out. */
    if (nread == UV_EOF && c->state == METRICS_CONN_RESPONDING) {
      c->peer_eof = 1;
      uv_read_stop(st);
      return;
    }
    /* Otherwise the peer is done (lingering), gave up before finishing its
     * request, or the connection failed: nothing more to say. */
    metrics__close(c);
    return;
  }
  if (c->state != METRICS_CONN_READING)
    return; /* drained */
  if (c->tls != NULL)
    metrics__tls_read(c, buf->base, (size_t)nread);
  else
    metrics__consume(c, buf->base, (size_t)nread);
}

/* Request bytes: to the HTTP parser, and the response once it is whole. */
static void metrics__consume(metrics_conn_t *c, const char *data, size_t nread) {
  /* Feed at most one byte past the cap: enough to know the request is too
   * large, and the parser never sees headers beyond it. */
  size_t room = METRICS_MAX_REQUEST + 1 - c->req_bytes;
  size_t feed = nread < room ? nread : room;
  c->req_bytes += http_parser_execute(&c->parser, &metrics__settings, data, feed);
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (c->complete && c->req_bytes <= METRICS_MAX_REQUEST) {
    metrics__route(c);
  } else if (c->req_bytes > METRICS_MAX_REQUEST) {
    if (c->headers_done)
      metrics__respond_text(c, 413, "Payload Too Large", "", "request too large\n");
    else
      metrics__respond_text(c, 431, "Request Header Fields Too Large", "",
                            "request too large\n");
  } else if (e != HPE_OK) {
    char sample[4 * 32 + 1];
    log_sanitize(sample, data, nread, 32);
    log_verbose("metrics: bad HTTP request (%s): \"%s\"",
                http_errno_name(e), sample);
    metrics__respond_text(c, 400, "Bad Request", "", "bad request\n");
  }
}

/* Accepts the connection libuv holds for us into a free slot, or leaves it
 * pending (and the listener paused) until a slot frees. */
static void metrics__accept(metrics_t *m) {
  metrics_conn_t *c = NULL;
  for (size_t i = 0; i < METRICS_MAX_CONNS && c == NULL; i++)
    if (m->conns[i].state == METRICS_CONN_FREE)
      c = &m->conns[i];
  if (c == NULL) {
    if (!m->accept_pending)
      log_verbose("metrics: %d connections open; new ones wait", METRICS_MAX_CONNS);
    m->accept_pending = 1;
    return;
  }
  m->accept_pending = 0;
  /* metrics-tls: the session first, so that running out of memory leaves
   * the slot untouched (the connection waits in the kernel's queue) */
  c->tls = NULL;
  if (m->srv->cfg->metrics_tls && (c->tls = tls_conn_new(&m->srv->tls)) == NULL) {
    log_warning("metrics: out of memory (TLS)");
    return;
  }
  int rc = uv_tcp_init(m->srv->loop, &c->tcp);
  if (rc != 0) {
    log_warning("metrics: cannot accept: %s", uv_strerror(rc));
    tls_conn_free(c->tls);
    c->tls = NULL;
    return;
  }
  memset(&c->parser, 0, sizeof c->parser);
  c->m = m;
  c->tcp.data = c;
  c->state = METRICS_CONN_READING;
  c->req_bytes = 0;
  c->headers_done = c->complete = c->url_too_long = c->peer_eof = 0;
  c->url_len = 0;
  c->body_owned = NULL;
  /* The whole request must arrive within the timeout; trickling bytes does
   * not extend it (a slow-header client cannot hold a slot forever). */
  c->deadline_ms = uv_now(m->srv->loop) + METRICS_REQUEST_TIMEOUT_MS;
  m->open_handles++;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  rc = uv_accept((uv_stream_t *)&m->listener, (uv_stream_t *)&c->tcp);
  if (rc == 0)
    rc = uv_read_start((uv_stream_t *)&c->tcp, metrics__on_alloc, metrics__on_read);
  if (rc != 0) {
    log_verbose("metrics: accept: %s", uv_strerror(rc));
    metrics__close(c);
  }
}

static void metrics__on_connection(uv_stream_t *listener, int status) {
  metrics_t *m = listener->data;
  if (status < 0) {
    log_warning("metrics: accept failed: %s", uv_strerror(status));
    return;
  }
  if (!m->stopping)
    metrics__accept(m);
}

static void metrics__on_sweep(uv_timer_t *t) {
  metrics_t *m = t->data;
  uint64_t now = uv_now(m->srv->loop);
  for (size_t i = 0; i < METRICS_MAX_CONNS; i++) {
    metrics_conn_t *c = &m->conns[i];
    if (c->state == METRICS_CONN_FREE || c->state == METRICS_CONN_CLOSING || now < c->deadline_ms)
      continue;
    if (c->state == METRICS_CONN_READING)
      log_verbose("metrics: no complete request within %d ms, closing",
                  METRICS_REQUEST_TIMEOUT_MS);
    metrics__close(c);
  }
}

int metrics_start(server_t *s, metrics_t **out, char *errbuf) {
  const config_t *cfg = s->cfg;
  const char *a = cfg->bind.n > 0 ? cfg->bind.addr[0] : "127.0.0.1";
  struct sockaddr_storage ss;
  int v6 = strchr(a, ':') != NULL;
  int rc = v6 ? uv_ip6_addr(a, cfg->metrics_port, (struct sockaddr_in6 *)&ss)
              : uv_ip4_addr(a, cfg->metrics_port, (struct sockaddr_in *)&ss);
  if (rc != 0)
    return recd_errf(errbuf, RECD_EINVAL, "metrics: bad address %s: %s", a, uv_strerror(rc));
  metrics_t *m = calloc(1, sizeof *m);
  if (m == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "metrics: out of memory");
  m->srv = s;
  rc = uv_tcp_init(s->loop, &m->listener);
  if (rc != 0) {
    free(m);
    return recd_errf(errbuf, RECD_EIO, "metrics: %s", uv_strerror(rc));
  }
  m->listener.data = m;
  m->open_handles = 1;
  uv_timer_init(s->loop, &m->sweep); /* cannot fail */
  m->sweep.data = m;
  m->open_handles++;
  rc = uv_tcp_bind(&m->listener, (struct sockaddr *)&ss, v6 ? UV_TCP_IPV6ONLY : 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&m->listener, 128, metrics__on_connection);
  if (rc != 0) {
    /* Nothing was published: close what we opened; it frees itself. */
    metrics_stop(m);
    return recd_errf(errbuf, RECD_EIO, "cannot listen on %s:%d for metrics: %s", a,
                     cfg->metrics_port, uv_strerror(rc));
  }
  uv_timer_start(&m->sweep, metrics__on_sweep, METRICS_SWEEP_MS, METRICS_SWEEP_MS);
  log_notice("metrics on %s://%s%s%s:%d/metrics and /healthz", cfg->metrics_tls ? "https" : "http",
             v6 ? "[" : "", a, v6 ? "]" : "", cfg->metrics_port);
  *out = m;
  return 0;
}

void metrics_stop(metrics_t *m) {
  if (m == NULL || m->stopping)
    return;
  m->stopping = 1;
  uv_close((uv_handle_t *)&m->listener, metrics__on_handle_close);
  uv_close((uv_handle_t *)&m->sweep, metrics__on_handle_close);
  for (size_t i = 0; i < METRICS_MAX_CONNS; i++)
    if (m->conns[i].state != METRICS_CONN_FREE)
      metrics__close(&m->conns[i]);
}
