/* scorer.h - an ALS model as the daemon runs it, for offline evaluation.
 *
 * Fold the customer in from the (capped) history with the model's own
 * parameters, score every item: evaluation, tuning and the gate go through
 * exactly this path so that the figures they report are what customers get.
 */
#ifndef RECD_TRAIN_SCORER_H
#define RECD_TRAIN_SCORER_H

#include <stddef.h>
#include <stdint.h>

#include "recd/als.h"
#include "recd/foldin.h"
#include "recd/params.h"

typedef struct als_scorer {
  const float *Y;
  uint32_t n_items, stride;
  params_t params; /* a copy: the caller's may change between trials */
  float *G;
  size_t cap;
  float *x;
  foldin_ws_t ws;
} als_scorer_t;

/* Scores with the item factors f->Y (f must outlive the scorer); cap is the
 * daemon's history-limit. 0 or RECD_ENOMEM. */
int als_scorer_init(als_scorer_t *s, const als_factors_t *f, const params_t *p, size_t cap);
void als_scorer_free(als_scorer_t *s);

/* An eval_score_fn (eval.h): ctx is an als_scorer_t. */
int als_scorer_score(void *ctx, const uint32_t *items, const float *weights, size_t n,
                     float *scores);

#endif
