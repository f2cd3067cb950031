/* evaluate.h - recd-train's hold-out evaluation on one kind of split.
 *
 * The split (events.h) is made once; everything is judged on it:
 *   recd        what recd-train ships with the given recipe: its ALS model,
 *               or (recent) popularity when validation, carved from the
 *               training part, prefers that ("never worse than popularity")
 *   als         the ALS model of the recipe, whatever validation chose
 *   tuned       with --tune: the search of tune.h run on the training part,
 *               then shipped the same way (model or popularity)
 *   popularity, recent popularity (last 30 days of the training part), and
 *   EASE (lambda chosen on a random validation split of the training part).
 * Customers are folded in from the plain weights of their training part,
 * as the daemon does, and their training items are never recommended.
 */
#ifndef RECD_TRAIN_EVALUATE_H
#define RECD_TRAIN_EVALUATE_H

#include <stdint.h>
#include <stdio.h>

#include "recd/events.h"
#include "recd/model.h"
#include "recipe.h"
#include "tune.h"

typedef struct split_eval {
  split_kind_t kind;
  int64_t cut;                 /* time-cut: the cut; else the latest training time */
  uint64_t train_events, test_pairs, users;
  model_metrics_t recd;
  uint32_t recd_serves;        /* MODEL_SERVES_* */
  model_metrics_t als;
  double als_seconds;          /* training the ALS model on the training part */
  int have_tuned;
  model_metrics_t tuned;
  uint32_t tuned_serves;
  tune_result_t tune;          /* the search that chose tuned_recipe */
  model_metrics_t popularity, recent;
  int have_recent;
  int have_ease;
  model_metrics_t ease;
  float ease_lambda;
  const char *ease_skipped;    /* why EASE did not run, or NULL */
  double seconds;              /* the whole evaluation of this split */
} split_eval_t;

typedef struct evaluate_opts {
  double fraction;
  uint64_t seed;
  uint32_t threads;
  uint32_t history_limit;
  double recent_days;
  int fallback;                /* validate against popularity (default) */
  int tune;                    /* also tune on the training part */
  tune_opts_t tune_opts;       /* its budget; kind, fraction, seed are set here */
  uint32_t ease_max_items;     /* 0 = no EASE */
  const float *ease_grid;
  size_t n_ease_grid;
  FILE *log;
} evaluate_opts_t;

/* 0, RECD_ENOTFOUND when the split holds nothing out (the caller skips
 * that kind), or another RECD_E* code; errbuf says why. */
int evaluate_split(const events_t *ev, split_kind_t kind, const recipe_t *recipe,
                   const evaluate_opts_t *o, split_eval_t *out, char *errbuf);

#endif
