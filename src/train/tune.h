/* tune.h - recd-train --tune: a bounded hyper-parameter search, and the
 * validation that decides between the model and (recent) popularity.
 *
 * A validation split is carved from the data given (the training part of an
 * evaluation, or all of it for the model to ship) the same way the
 * evaluation splits: by time when the data has timestamps. Every trial
 * trains on the validation's training part and is judged by ndcg@10 on its
 * held-out part, folding customers in exactly as the daemon does.
 *
 * The search: trial 0 is the starting recipe (so tuning never ships
 * something validation likes less than the defaults); then 60% of the
 * budget draws recipes at random from the space below, and the rest
 * perturbs the best so far (alpha and lambda by a log-normal factor, the
 * discrete settings to a neighbour). The sequence is a function of the
 * seed and the trial budget, so the same data, seed and --tune-trials give
 * the same result; a time budget (--tune-seconds) only stops it earlier.
 *
 *   factors        32 64 128 256
 *   iterations     5 8 12 15 20
 *   alpha          log-uniform [0.05, 20]
 *   reg exponent   0 0.25 0.5 0.75 1
 *   lambda         log-uniform [0.01, 1] x 100^(1 - exponent) (a constant
 *                  lambda must be larger than one multiplied by n^nu)
 *   half-life      off 14 30 90 180 365 days (data with timestamps only)
 *
 * With trials = 1 it is only the validation of one recipe: what
 * recd-train does before shipping a model, so that a model that does not
 * beat popularity on validation is never shipped ("never worse than
 * popularity").
 */
#ifndef RECD_TRAIN_TUNE_H
#define RECD_TRAIN_TUNE_H

#include <stdint.h>
#include <stdio.h>

#include "recd/events.h"
#include "recipe.h"

/* Settings the search keeps as the starting recipe has them (given on the
 * command line: the operator decided). */
enum {
  TUNE_FIX_FACTORS = 1u << 0, TUNE_FIX_ITERATIONS = 1u << 1, TUNE_FIX_ALPHA = 1u << 2,
  TUNE_FIX_LAMBDA = 1u << 3, TUNE_FIX_REG_EXPONENT = 1u << 4, TUNE_FIX_HALF_LIFE = 1u << 5
};

typedef struct tune_opts {
  split_kind_t kind;      /* how validation is carved */
  double fraction;        /* its held-out fraction */
  uint32_t trials;        /* at most this many trials, >= 1 */
  double seconds;         /* no new trial after this long (0 = no limit) */
  uint64_t seed;          /* the search and the validation split */
  uint32_t threads;
  uint32_t history_limit; /* the daemon's fold-in cap */
  double recent_days;     /* recent popularity's window */
  int fallback;           /* judge (recent) popularity too */
  unsigned fixed;         /* TUNE_FIX_* */
  FILE *log;              /* the table, or NULL */
  int progress_bar;       /* log is a terminal: redraw a progress line */
} tune_opts_t;

typedef struct tune_result {
  recipe_t best;
  double best_ndcg;       /* validation ndcg@10 of best */
  double start_ndcg;      /* of trial 0, the starting recipe */
  double pop_ndcg, recent_ndcg;
  int have_recent;        /* recent popularity was judged (data with times) */
  uint32_t serves;        /* MODEL_SERVES_*: what validation prefers */
  uint32_t trials;        /* trials run */
  uint64_t users;         /* validation customers */
  double seconds;
} tune_result_t;

/* Runs the search on ev from `start`. 0 or a RECD_E* code with errbuf set:
 * RECD_ENOTFOUND when the validation split holds nothing out (e.g. a time
 * cut where no customer has interactions on both sides; the caller may try
 * another kind), RECD_EINVAL for a temporal kind on data without times. */
int tune_run(const events_t *ev, const recipe_t *start, const tune_opts_t *o,
             tune_result_t *res, char *errbuf);

#endif
