/* traps.h - the counters and once-only logs of "no silent traps" (issue
 * 19, DESIGN.md): what the daemon accepts but a storefront developer
 * should hear about.
 *
 *  - degraded answers by cause (the total stays server_stats_t.degraded);
 *  - FEEDBACK for an item the model does not know: stored (new products
 *    are real) and counted; with `feedback-unknown-items warn` also logged,
 *    once per item;
 *  - preferences that cannot be used (a cat: value that is not a number in
 *    [-1, 1], a personalize value other than 0 / 1, a category the model
 *    does not know): counted, and logged once per customer with the key.
 *
 * "Once" is kept in memory that does not grow: a direct-mapped set of
 * TRAPS_SLOTS 64-bit digests per kind, so an id is logged again only after
 * another id with the same slot has evicted it (a storm of distinct bad ids
 * still logs at most one line per request, never more memory).
 * Loop thread only.
 */
#ifndef RECD_DAEMON_TRAPS_H
#define RECD_DAEMON_TRAPS_H

#include <stddef.h>
#include <stdint.h>

#define TRAPS_SLOTS 4096

typedef enum traps_degraded {
  TRAPS_DEG_TIMEOUT = 0,   /* redis-timeout-ms passed before Redis answered */
  TRAPS_DEG_REDIS_DOWN,    /* not connected, connection lost, or the request
                              could not be sent (overload, shutdown) */
  TRAPS_DEG_REDIS_ERROR,   /* Redis answered with an error */
  TRAPS_DEG_N
} traps_degraded_t;

typedef struct traps {
  uint64_t degraded[TRAPS_DEG_N];
  uint64_t feedback_unknown_items; /* FEEDBACKs of an item unknown to the model */
  uint64_t pref_bad_entries;       /* unusable preference entries seen */
  uint64_t pref_unknown_categories;/* cat:<name> fields the model does not know */
  uint64_t seen_items[TRAPS_SLOTS];
  uint64_t seen_users[TRAPS_SLOTS];
} traps_t;

/* "timeout", "redis_down", "redis_error" (INFO, /metrics, WITHMETA). */
const char *traps_degraded_name(traps_degraded_t c);

/* 1 the first time id is seen in set (a seen_* array; then remembered), 0
 * when it was seen before. */
int traps_first(uint64_t *set, const char *id, size_t len);

#endif
