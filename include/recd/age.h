/* age.h - weighing an interaction down by its age (the half-life of issue 16).
 *
 * One definition for training (recd-train), offline evaluation and the
 * daemon's fold-in, so that what is measured is what is served. A weight
 * w of an interaction at time t (Unix seconds) counts
 *     w * 2^(-(t_ref - t) / half_life_s)
 * at the reference time t_ref: half as much one half-life before it. An
 * interaction at or after t_ref, an untimed one (AGE_NO_TIME) or
 * half_life_s <= 0 keeps its weight. The result is clamped to
 * [FLT_TRUE_MIN, FLT_MAX]: an interaction however old is still there (the
 * implicit model's preference p = 1 does not decay, only the confidence).
 *
 * Reference times (measured, README "Time"): training weighs every
 * interaction against the newest one in the data; the fold-in of a
 * customer weighs their history against their own newest interaction
 * (the visitor's cart, HISTORY, counts as now), so that recency within a
 * customer's history counts, not how long ago they last came.
 */
#ifndef RECD_AGE_H
#define RECD_AGE_H

#include <float.h>
#include <math.h>
#include <stdint.h>

#define AGE_NO_TIME INT64_MIN /* the same value as DATASET_NO_TIME */

static inline float age_weight(double w, int64_t t, int64_t t_ref, double half_life_s) {
  if (half_life_s > 0 && t != AGE_NO_TIME && t < t_ref)
    w *= exp2(-(double)(t_ref - t) / half_life_s);
  if (w < FLT_TRUE_MIN)
    return FLT_TRUE_MIN;
  return w > FLT_MAX ? FLT_MAX : (float)w;
}

#endif
