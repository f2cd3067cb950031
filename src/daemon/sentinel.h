/* sentinel.h - follow the Redis primary that a set of Sentinels names.
 *
 * With `redis-sentinels "host:port ..."` and `redis-master-name NAME` the
 * daemon's Redis client (rclient.h) is not given an address: this module
 * finds the primary and points the client at it (rclient_set_target()),
 * following the procedure of Redis's "Sentinel client spec":
 *
 *   resolve   ask the sentinels in turn, each bounded by timeout_ms,
 *             SENTINEL get-master-addr-by-name NAME, starting with the one
 *             that answered last; the first usable answer is the candidate
 *   probe     connect to the candidate (AUTH as for the primary) and ask
 *             ROLE: only a "master" is used (a demoted old primary, or a
 *             replica named by a sentinel that has not caught up, is not;
 *             the sentinels are asked again after a short backoff)
 *   retarget  when the candidate differs from the current address, or the
 *             client is not connected, rclient_set_target()
 *
 * A resolve runs at start, whenever the client loses its connection or a
 * connection attempt fails (every loss of the primary), when ROLE on the
 * client's own new connection is not "master", and when a periodic health
 * round (every sentinel asked every health_ms) finds a sentinel naming
 * another address. Besides, one connection to one sentinel is SUBSCRIBEd to
 * +switch-master; a switch for our master name is probed and followed at
 * once, without waiting for the client to notice anything. When that
 * connection drops, the next sentinel in the list is subscribed to (and a
 * resolve runs, since a switch may have been missed meanwhile).
 *
 * Requests issued while the primary is being found complete as rclient's
 * contract says (RCLIENT_UNAVAILABLE: degraded answers), never hang.
 *
 * Threading: loop thread only. OOM: nothing aborts; a connection that
 * cannot be set up counts as a failed attempt and is retried.
 */
#ifndef RECD_SENTINEL_H
#define RECD_SENTINEL_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "rclient.h"

/* Sentinels accepted at most (each health round opens one connection to
 * every sentinel; real set-ups have 3 or 5). */
#define SENTINEL_MAX CONFIG_SENTINELS_MAX
/* Longest master name (a token of sentinel.conf's `sentinel monitor`). */
#define SENTINEL_NAME_MAX 128

typedef struct sentinel sentinel_t;

typedef struct sentinel_opts {
  const char *sentinels;         /* "host:port host:port ..." (required) */
  const char *master_name;       /* required, 1..SENTINEL_NAME_MAX bytes,
                                    no blanks or control characters */
  const char *sentinel_password; /* AUTH to the sentinels; NULL/"" = none */
  const char *user;              /* the primary's ACL user for the ROLE
                                    probe; NULL/"" = AUTH with the password
                                    alone */
  const char *password;          /* the primary's password; NULL/"" = none */
  unsigned timeout_ms;           /* connect + answer bound of every sentinel
                                    query and probe, default 500 */
  unsigned health_ms;            /* health round period, default 5000 */
  unsigned retry_min_ms;         /* backoff between failed resolves, */
  unsigned retry_max_ms;         /* default 100 doubling up to 500 */
  rclient_log_cb log;            /* may be NULL */
  void *log_arg;
} sentinel_opts_t;

/* Counters and state for INFO (copied out by sentinel_get_stats()). */
typedef struct sentinel_stats {
  char primary[RCLIENT_ERRLEN];    /* "host:port" the client is pointed at,
                                      "" until a primary has been found */
  char subscribed[RCLIENT_ERRLEN]; /* "host:port" of the sentinel holding
                                      the +switch-master subscription, ""
                                      when none */
  uint64_t switches;               /* +switch-master messages for our name */
  uint64_t retargets;              /* times the client moved to another
                                      address */
  uint64_t resolves;               /* resolves run (each asks the sentinels
                                      in turn) */
  uint64_t not_master;             /* candidates or connections whose ROLE
                                      was not master */
  unsigned sentinels;              /* configured */
  unsigned reachable;              /* sentinels whose last contact gave a
                                      usable answer */
} sentinel_stats_t;

/* Fills o with the defaults documented in sentinel_opts_t (strings NULL). */
void sentinel_opts_init(sentinel_opts_t *o);

/* Starts following the primary for rc, which should have been created
 * with wait_for_target (rclient_opts_t) so that it connects nowhere before
 * the sentinels have been asked. The strings of o are copied. Registers
 * rc's state callback (rclient_on_state), which must stay the module's
 * until sentinel_close(). Returns 0 and *out, RECD_EINVAL (bad list or
 * name, message in errbuf naming the key) or RECD_ENOMEM; on error nothing
 * is left running. Sentinels being down is not an error: they are asked
 * again with backoff. */
int sentinel_new(uv_loop_t *loop, rclient_t *rc, const sentinel_opts_t *o, sentinel_t **out,
                 char *errbuf);

void sentinel_get_stats(const sentinel_t *s, sentinel_stats_t *out);

/* Stops: drops every sentinel connection, stops the timers, unregisters
 * the state callback and never touches rc again except to receive the
 * completion of a ROLE check in flight; s is freed once its handles have
 * closed and that completion has arrived (rclient_close() guarantees it),
 * so call this before rclient_close(rc). NULL is a no-op. */
void sentinel_close(sentinel_t *s);

#endif
