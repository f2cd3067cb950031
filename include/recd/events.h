/* events.h - the interaction log: one entry per interaction, with its time,
 * for splits that respect time and for age-weighted training matrices.
 *
 * A dataset_t sums duplicates into by_user, which loses when things
 * happened. An events_t keeps each interaction (user, item, weight, time)
 * in insertion order, so an evaluation can hold out the most recent part of
 * the history instead of a random one, and training can weigh old events
 * down. Times are int64 in the source's unit (Unix seconds for the CSV and
 * Redis); DATASET_NO_TIME marks an event without one.
 *
 * Splits (events_split). Every kind returns the training part as events
 * (so it can be split again: a validation split is carved from the training
 * part exactly like the test split from the whole) and the test part as a
 * by-user CSR of held-out (user, item) pairs. Both keep the input's
 * n_users x n_items shape; a test value is the sum of the weights of the
 * pair's held-out events (summed in double, in event order, clamped to
 * FLT_MAX, like dataset_finalize), and a test row lists its items
 * ascending. Train events keep their input order. For every kind:
 *   - a test pair's user has at least one train event;
 *   - no test (user, item) pair has any event in train: recd never
 *     recommends what the customer already has, so a repeat is never an
 *     evaluation target;
 *   - the result is a function of (input, kind, fraction, seed) only.
 * With n a user's number of distinct items, the users with n >= 2 hold out
 * h = round(fraction * n) of them, clamped to [1, n - 1] (as
 * eval_holdout_split does) in the two per-user kinds:
 *   SPLIT_RANDOM: the pairs of eval_holdout_split(aggregated, fraction,
 *     seed), where aggregated is events_to_csr(ev, 0, ...): the same random
 *     choice as the pre-events evaluation. Train = the events of the other
 *     pairs. Needs no times.
 *   SPLIT_USER_LATEST: a user's distinct items are ordered by the time of
 *     their pair's first (earliest) event; ties are ordered by a seeded
 *     random permutation (the generator is seeded once with `seed` and
 *     drawn from only for users with n >= 2, in user order). The last h
 *     pairs go to test with all their events; the others to train.
 *   SPLIT_TIME_CUT: one cut for everyone,
 *       T = t_min + ceil((1 - fraction) * (t_max - t_min))
 *     over the input's events. Train = the events with t < T. Test = the
 *     pairs with an event at t >= T whose user has at least one train event
 *     and whose item is not among that user's train items (all events of
 *     such a pair are at t >= T). Events at t >= T of other pairs (new
 *     users, repeats) are in neither part. With t_min == t_max, T = t_min:
 *     train and test are empty; an empty log gives T = DATASET_NO_TIME.
 * The temporal kinds need ev->has_time (RECD_EINVAL otherwise).
 */
#ifndef RECD_EVENTS_H
#define RECD_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "recd/dataset.h"
#include "recd/err.h"

typedef struct events {
  size_t n, cap;
  uint32_t *user, *item; /* < n_users, < n_items */
  float *w;              /* finite, > 0 */
  int64_t *t;            /* DATASET_NO_TIME when untimed (may be all of them) */
  uint32_t n_users, n_items;
  int has_time; /* 1: every event has a time (a split's train part inherits it) */
} events_t;
/* Every function below checks its input log: events inside the shape, with
 * a finite weight > 0, and a time on each when has_time (RECD_EINVAL). */

typedef enum split_kind {
  SPLIT_RANDOM = 0,
  SPLIT_USER_LATEST = 1,
  SPLIT_TIME_CUT = 2
} split_kind_t;

/* "random", "user-latest", "time-cut"; "unknown" for another value. */
const char *split_kind_name(split_kind_t k);
/* The kind named s (one of the names above). 0 or RECD_EINVAL. */
int split_kind_parse(const char *s, split_kind_t *out);

/* The events of a finalized data set: its raw rows in insertion order when
 * ds->has_time, else one event per aggregated (user, item) pair of
 * ds->by_user (users ascending, then items) with t = DATASET_NO_TIME and
 * has_time = 0. n_users and n_items are the data set's. *out is
 * overwritten (free with events_free). 0, RECD_EINVAL (not finalized) or
 * RECD_ENOMEM (out zeroed). */
int events_from_dataset(const dataset_t *ds, events_t *out);

/* Releases the arrays and zeroes e; a zeroed events_t is a no-op. */
void events_free(events_t *e);

/* Splits ev as described at the top. fraction in (0, 1). *train (an
 * events_t; must not be ev) and *test are overwritten; free them with
 * events_free and csr_free. *cut (may be NULL) receives T for
 * SPLIT_TIME_CUT; for the other kinds the latest time among the train
 * events, DATASET_NO_TIME when they have none. Returns 0, RECD_EINVAL
 * (bad fraction or kind, a temporal kind on untimed events, an event out of
 * the n_users x n_items shape, a non-positive weight, or an untimed event
 * in a has_time log; errbuf says which) or RECD_ENOMEM; on error both
 * outputs are zeroed. errbuf may be NULL. */
int events_split(const events_t *ev, split_kind_t kind, double fraction, uint64_t seed,
                 events_t *train, csr_t *test, int64_t *cut, char *errbuf);

/* The n_users x n_items by-user matrix of ev, items ascending per row, the
 * events of a pair summed (in double, in event order, clamped to FLT_MAX;
 * a sum aged below the smallest float stays at FLT_TRUE_MIN, so a pair
 * present keeps a positive value however old). With
 * half_life_s > 0 (in the unit of the times) each event's weight is
 * multiplied by exp2(-(t_ref - t) / half_life_s): an event one half-life
 * older than t_ref counts half. An event at or after t_ref, or untimed,
 * keeps its weight; half_life_s = 0 weighs nothing down. *by_user is
 * overwritten (free with csr_free). 0, RECD_EINVAL (half_life_s negative
 * or NaN, or an invalid event, see events_t) or RECD_ENOMEM (by_user
 * zeroed). */
int events_to_csr(const events_t *ev, double half_life_s, int64_t t_ref, csr_t *by_user);

/* Per item, the number of distinct users with an event at t >= since
 * (since = INT64_MIN, which is DATASET_NO_TIME: every event, untimed ones
 * included); pop has n_items entries. Counting customers, not weights, as
 * eval_popularity does. 0, RECD_EINVAL (an invalid event, see events_t)
 * or RECD_ENOMEM (pop unchanged). */
int events_popularity(const events_t *ev, int64_t since, float *pop);

/* The latest time among the events; DATASET_NO_TIME when none has one. */
int64_t events_t_max(const events_t *ev);

#endif
