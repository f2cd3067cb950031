/* tracking.h - what recommendations sell: impressions, outcomes and their
 * attribution, kept in Redis (DESIGN.md "Experiments and outcomes").
 *
 * Impressions: after an answer to a customer has been replied, its items
 * are written to <prefix>imp:<user>, a HASH item -> "<unix ms>|<variant>|
 * <placement>|<shown>" (so the latest impression of an item wins; shown,
 * kept only with track-shown yes or a shown-limit, counts the answers that
 * showed the item since its last click, cart or purchase, and starts again
 * at 1 when the item's previous impression is older than the window: the
 * rotation rule, SHOWNLIMIT), which expires
 * attribution-window seconds after the customer's last answer and is
 * trimmed to its impressions-max most recent items once it exceeds that by
 * a quarter: one Lua script per answer (EVALSHA after one SCRIPT LOAD), on
 * that one key. The answer and
 * its items are counted in memory and added to <prefix>exp:counters every
 * 100 ms. Fire and forget, after the reply: recording never delays or
 * fails a request (a failure is only counted: INFO tracking_errors).
 *
 * Outcomes (FEEDBACK ... TYPE purchase|cart|click): the impression of that
 * item is read (and its shown count set back to 0) by a script sent in
 * the same round trip as the history update; shown within
 * the window, the outcome counts for the impression's variant and
 * placement, otherwise for the customer's own variant and the placement
 * "organic".
 *
 * The report (EXPERIMENT REPORT) is HGETALL <prefix>exp:counters turned
 * into rows by experiment.h; a copy refreshed every experiment-refresh-ms
 * serves INFO, /metrics and the status page without a Redis round trip.
 */
#ifndef RECD_DAEMON_TRACKING_H
#define RECD_DAEMON_TRACKING_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "rclient.h"
#include "recd/experiment.h"
#include "variants.h"

typedef struct tracker tracker_t;

typedef struct tracker_opts {
  int enabled;            /* track-impressions */
  uint64_t window_s;      /* attribution-window */
  unsigned cap;           /* impressions-max */
  uint64_t refresh_ms;    /* experiment-refresh-ms */
  int count_shown;        /* track-shown (or a shown-limit): impressions
                             carry their shown count */
} tracker_opts_t;

typedef struct tracker_stats {
  uint64_t requests;      /* answers whose impressions were sent */
  uint64_t impressions;   /* items in them */
  uint64_t errors;        /* writes lost, reads answered with an error */
  uint64_t trims;         /* customers' impressions trimmed to the cap */
  uint64_t attributed;    /* outcomes attributed to an impression */
  uint64_t organic;       /* outcomes without one */
  uint64_t report_anomalies; /* malformed counter fields in the last read */
} tracker_stats_t;

int tracker_new(uv_loop_t *loop, rclient_t *rc, const variants_t *vs, const tracker_opts_t *o,
                tracker_t **out);
/* Sends what was counted and not yet flushed, stops the timers, and frees
 * the tracker once every Redis call it made is back; then closed(arg)
 * (may be NULL) runs: the Redis client may be closed from there (closing
 * it earlier drops what hiredis has not sent yet). */
void tracker_close(tracker_t *t, void (*closed)(void *arg), void *arg);
int tracker_enabled(const tracker_t *t);
/* Impressions carry shown counts (SHOWNLIMIT can work). */
int tracker_counts_shown(const tracker_t *t);

/* An answer's items (ids[0..n)) shown to user by variant at placement. */
void tracker_impressions(tracker_t *t, const char *user, size_t ulen, const char *variant,
                         const char *placement, const char *const *ids, const size_t *lens,
                         size_t n);

/* An outcome's attribution, from the HGET imp:<user> <item> reply (NULL or
 * nil: no impression): counts it under the impression's variant and
 * placement when shown within the window, else organic under the
 * customer's variant. counter: EXP_CLICKS, EXP_CARTS or EXP_PURCHASES;
 * value: money (added to EXP_VALUE when > 0). */
void tracker_outcome(tracker_t *t, const char *user, size_t ulen, const char *impression,
                     size_t ilen, exp_counter_t counter, double value);

/* Reads the impression of item (and resets its shown count) in Redis,
 * then counts the outcome as tracker_outcome() does. Fire and forget:
 * failures are counted (tracking_errors). */
void tracker_outcome_send(tracker_t *t, const char *user, size_t ulen, const char *item,
                          size_t ilen, exp_counter_t counter, double value);

/* An impression's value, parsed. Values written before shown counts were
 * kept ("<ms>|<variant>|<placement>") read as shown once. */
typedef struct tracker_impression {
  int64_t at_ms;
  char variant[EXP_NAME_MAX + 1];
  char placement[EXP_NAME_MAX + 1];
  uint64_t shown;
} tracker_impression_t;
/* 0, or -1 when v is not an impression recd wrote. */
int tracker_parse_impression(const char *v, size_t len, tracker_impression_t *out);
/* 1 when an impression at at_ms is within the attribution window. */
int tracker_within_window(const tracker_t *t, int64_t at_ms);

/* The last report read by the refresh (NULL before the first) and its age
 * in ms. */
const exp_report_t *tracker_report(const tracker_t *t, int64_t *age_ms);
void tracker_get_stats(const tracker_t *t, tracker_stats_t *out);

/* A fresh report: HGETALL now; done(rc, report, arg) on the loop thread
 * (report NULL when rc != 0: Redis down, out of memory). */
typedef void (*tracker_report_cb)(int rc, const exp_report_t *report, const char *errstr,
                                  void *arg);
int tracker_read_report(tracker_t *t, tracker_report_cb done, void *arg);
/* EXPERIMENT RESET: deletes the counters; done(rc, NULL, errstr, arg). */
int tracker_reset(tracker_t *t, tracker_report_cb done, void *arg);

#endif
