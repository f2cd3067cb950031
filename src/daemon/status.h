/* status.h - what the metrics port serves besides /metrics: GET / (the
 * status page, status_page.h) and GET /experiments.json, gathered from the
 * running server. Loop thread only. */
#ifndef RECD_DAEMON_STATUS_H
#define RECD_DAEMON_STATUS_H

#include <stddef.h>

#include "server.h"

/* malloc'ed documents (*len bytes); NULL when out of memory. */
char *status_html(server_t *s, size_t *len);
/* The tracker's latest report as experiment.h's JSON ({"rows": []} before
 * the first read from Redis). */
char *status_json(server_t *s, size_t *len);

#endif
