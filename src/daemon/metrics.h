/* metrics.h - the HTTP monitoring endpoint: GET /metrics (Prometheus text
 * exposition format 0.0.4) and GET /healthz, on `metrics-port`.
 *
 * The endpoint runs on the daemon's own loop, so /healthz is answered only
 * by a loop that turns: a stuck loop fails the probe, which is the point.
 * It reads the server's counters directly (no copies, no locks: everything
 * lives on the loop thread).
 *
 * Limits, all fixed because the endpoint is for a monitoring system on a
 * trusted network, not for the public: a request (line, headers and body)
 * of at most METRICS_MAX_REQUEST bytes, at most METRICS_MAX_CONNS
 * connections at once (further ones wait in the kernel's accept queue), a
 * request must arrive within METRICS_REQUEST_TIMEOUT_MS of the connection,
 * and every response ends with "Connection: close".
 */
#ifndef RECD_DAEMON_METRICS_H
#define RECD_DAEMON_METRICS_H

#include "server.h"

#define METRICS_MAX_REQUEST (8 * 1024)
#define METRICS_MAX_CONNS 64
#define METRICS_REQUEST_TIMEOUT_MS 10000

typedef struct metrics metrics_t;

/* Listens on the first `bind` address of s->cfg at `metrics-port` on
 * s->loop. Returns 0 and the endpoint in *out, or a negative RECD_E* code
 * with a message in errbuf (RECD_ERRLEN bytes), e.g. "cannot listen on
 * 127.0.0.1:9121 for metrics: address already in use"; on failure every
 * handle it opened is already closing and is freed by the loop, so the
 * caller only has to run the loop to completion. s must outlive the
 * endpoint (until metrics_stop()'s handles have closed). */
int metrics_start(server_t *s, metrics_t **out, char *errbuf);

/* Stops listening and closes every metrics connection, responses in flight
 * included. Memory is released from the close callbacks, on the loop, so the
 * loop must run once more before uv_loop_close(); m must not be used after
 * this call. NULL is a no-op. */
void metrics_stop(metrics_t *m);

/* The Prometheus text for s, NUL-terminated, in a malloc'd buffer that the
 * caller frees; *len is its length. NULL when out of memory. */
char *metrics_render(server_t *s, size_t *len);

#endif
