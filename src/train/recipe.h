/* recipe.h - how a model is trained: the ALS hyper-parameters and the age
 * weighting of interactions.
 *
 * Age weighting (half-life h days, age.h): in training an interaction t
 * seconds older than the newest one in the training data counts
 * 2^(-t / (h * 86400)) of its weight (events_to_csr). The fold-in weighs
 * each of the customer's (user, item) pairs, its summed weight, by the age
 * of its last interaction relative to the customer's own newest one: what
 * the daemon does with recd:hist:<user> and recd:time:<user>. Both were
 * chosen by measurement (README "Time").
 */
#ifndef RECD_TRAIN_RECIPE_H
#define RECD_TRAIN_RECIPE_H

#include <stdint.h>
#include <stdio.h>

#include "recd/als.h"
#include "recd/eval.h"
#include "recd/events.h"
#include "recd/model.h"
#include "recd/params.h"

typedef struct recipe {
  params_t params;
  double half_life_days; /* 0 = every interaction counts fully */
  int64_t tuned_at;      /* unix seconds when --tune chose it, 0 = not tuned */
} recipe_t;

/* Trains ALS factors on ev (weights decayed by age when the recipe says so
 * and ev has times) from the recipe's seeded start. *seconds (may be NULL)
 * receives the training time. 0 or a RECD_E* code with errbuf set. */
int recipe_fit(const recipe_t *r, const events_t *ev, uint32_t threads, FILE *progress,
               int loss, als_factors_t *f, double *seconds, char *errbuf);

/* The customers' histories as the daemon folds them in: by user, one
 * entry per (user, item) pair with the summed weight (ZINCRBY's), weighed
 * by the age of the pair's last interaction relative to the user's newest
 * when the recipe has a half-life and ev has times; plain sums otherwise.
 * 0 or RECD_ENOMEM / RECD_EINVAL (out zeroed). */
int recipe_foldin_matrix(const recipe_t *r, const events_t *ev, csr_t *out);

/* Evaluates factors f (trained with r) on test: every test customer is
 * folded in from recipe_foldin_matrix(r, train), capped at history_limit
 * items, their training items excluded. *users (may be NULL) receives the
 * customers evaluated. */
int recipe_score(const als_factors_t *f, const recipe_t *r, const events_t *train,
                 const csr_t *test, uint32_t history_limit, model_metrics_t *out,
                 uint64_t *users, char *errbuf);

#endif
