/* status_page.h - the self-contained HTML status page of the metrics port
 * (GET /): each variant's model, the experiment table, request latency and
 * the Redis connection, rendered from a snapshot the caller fills in.
 *
 * Self-contained: one HTML document with inline CSS and inline SVG bars,
 * no external assets, no script. Every text that comes from outside
 * (variant and placement names, paths, error messages) is HTML-escaped.
 * Elements carry stable ids and classes so that tests (and scrapers) can
 * find the figures: see status_page.c's comment for the markup contract.
 */
#ifndef RECD_DAEMON_STATUS_PAGE_H
#define RECD_DAEMON_STATUS_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "recd/experiment.h"

typedef struct status_model {
  const char *variant;     /* variant name ("default" without variants) */
  unsigned percent;        /* share of customers */
  const char *path;
  uint64_t version;
  uint32_t items, factors;
  int64_t created_at, loaded_at; /* unix seconds */
  const char *first_pass;  /* serve_pass_name() */
  double ndcg_model;       /* hold-out ndcg@10 of the model, NaN = unknown */
  double ndcg_popularity;  /* of the popularity baseline, NaN = unknown */
  double ndcg_ease;        /* of EASE, NaN = unknown (not in the model file) */
  /* Model format 3 (0 for older files, and where a caller does not set
   * them): */
  uint32_t serves;         /* MODEL_SERVES_*: anything but ALS is a popularity
                              fallback, which the card says prominently */
  int has_recent;          /* 1: ndcg_recent gets a bar after EASE's */
  double ndcg_recent;      /* of recent popularity, NaN = unknown */
} status_model_t;

typedef struct status_latency {
  const char *command;     /* "recommend", ... */
  uint64_t calls, failed;
  uint64_t p50_us, p99_us, p999_us, max_us;
} status_latency_t;

typedef struct status_page {
  const char *version;     /* recd's */
  uint64_t uptime_s;
  int64_t now;             /* unix seconds, for ages */
  const status_model_t *models;
  size_t n_models;
  const exp_report_t *report; /* NULL: not read from Redis yet */
  int64_t report_age_ms;   /* how old the report is */
  uint64_t attribution_window_s;
  const status_latency_t *latency;
  size_t n_latency;
  int redis_connected;
  const char *redis_last_error; /* "" when none */
  uint64_t degraded;       /* degraded answers since start */
} status_page_t;

/* The page as a malloc'ed NUL-terminated string of *len bytes; NULL when
 * out of memory. */
char *status_page_html(const status_page_t *p, size_t *len);

#endif
