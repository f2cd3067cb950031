/* gate.h - the retrain gate: a new model is published only if it is not
 * worse than the model serving now, measured on the same hold-out split
 * of the same fresh data, and not worse than the best model published in
 * the last days, so that small nightly drops cannot add up.
 *
 * Relative bound, on the same split of the same fresh data. The hold-out
 * split of --holdout is drawn again (same seed) and two models answer its
 * customers: the new model as it will be published (trained on all of
 * today's data) and the serving model (--compare FILE, trained on all of
 * the data of its day). Both were trained on data that contains most of
 * the held-out pairs, so neither has the advantage of having seen them
 * while the other has not. (The hold-out model, trained without those
 * pairs, judged against a serving model that saw them, loses by 18% on
 * the demo shop with the very same data and settings: every retrain
 * would be refused.) The rule:
 *     new ndcg@10 >= (1 - max_drop) x serving ndcg@10   (same split)
 *
 * Each model answers as the daemon would answer each hold-out customer:
 * the customer's training history mapped to the model's items by id
 * (items it does not know are dropped, as recd drops them), folded in with
 * the model's own parameters from the strongest --history-limit items,
 * every item of its catalogue scored (the popularity order when no history
 * item is known, as recd answers then), training items excluded, the top
 * 10 compared with the held-out items (which it can only hit if it knows
 * them). The serving model's catalogue may hold items the fresh data no
 * longer has: they compete for its top 10 too.
 *
 * Data volume: the same split cannot tell a model trained on a Redis that
 * was emptied or truncated (both models then answer the few customers
 * left), so with --compare the new data must hold at least min_data x the
 * interactions the serving model was trained on (its file records them).
 *
 * Cumulative bound, across days. The new model's own hold-out ndcg@10 (of
 * the model trained without the held-out pairs: the figure that measures
 * generalisation, recorded in the model file) is compared with the best
 * one recorded in the history file over the last drift_days:
 *     new hold-out ndcg@10 >= (1 - max_drift) x best of the window
 * so a model may lose a little to the one before it, night after night,
 * but never more than max_drift in all against the best of the window.
 * Every published model appends its line to the history.
 */
#ifndef RECD_TRAIN_GATE_H
#define RECD_TRAIN_GATE_H

#include <stdint.h>
#include <stdio.h>

#include "recd/dataset.h"
#include "recd/eval.h"
#include "recd/model.h"

typedef struct gate_opts {
  const char *compare;  /* --compare MODEL: the serving model file, or NULL */
  double max_drop;      /* --max-drop R: new >= (1 - R) * serving's, same split */
  double min_data;      /* --min-data F: refused when the data has fewer than
                           F x the interactions the serving model had */
  const char *history;  /* --history FILE: published ndcg@10 values, or NULL */
  double max_drift;     /* --max-drift X: new >= (1 - X) * best of the window */
  uint32_t drift_days;  /* --drift-days N: the window */
  const char *split;    /* the kind of split of the hold-out figures (history
                           lines of other kinds are not compared); NULL =
                           "random" */
} gate_opts_t;

#define GATE_DEFAULT_MAX_DROP 0.02
#define GATE_DEFAULT_MAX_DRIFT 0.05
#define GATE_DEFAULT_MIN_DATA 0.5
#define GATE_DEFAULT_DRIFT_DAYS 7

typedef struct gate_result {
  int have_served;
  model_metrics_t served;   /* --compare's model on the split */
  model_metrics_t fresh;    /* the new model (trained on everything) on it */
  uint64_t served_users;
  uint64_t served_interactions; /* what the serving model was trained on */
  uint64_t fresh_interactions;  /* what the new one was */
  int have_best;            /* a history entry in the window */
  double best;              /* its highest ndcg@10 */
  char best_version[64];
  int64_t best_at;
} gate_result_t;

/* With g->compare: draws the hold-out split of ds (fraction, seed, as the
 * evaluation did) and evaluates on it the new model (new_fn over ds's
 * items) and g->compare. Without it nothing is done. 0 or an error in
 * errbuf. */
int gate_compare(const gate_opts_t *g, const dataset_t *ds, double fraction, uint64_t seed,
                 uint32_t history_limit, eval_score_fn new_fn, void *new_ctx,
                 gate_result_t *res, char *errbuf);

/* Reads the history window (entries of the last drift_days before now, of
 * g->split's kind; a line without a kind is "random").
 * A missing file is an empty history. 0 or an error naming the file and
 * line. */
int gate_read_history(const gate_opts_t *g, int64_t now, gate_result_t *res, char *errbuf);

/* Applies both bounds (holdout_ndcg: the new model's hold-out figure, for
 * the cumulative one). Prints the comparison on
 * `log` (may be NULL). 0: publish; 1: refused, with the reason in why
 * (RECD_ERRLEN). */
int gate_check(const gate_opts_t *g, double holdout_ndcg, const gate_result_t *res, FILE *log,
               char *why);

/* Appends "<unix time> <version> <ndcg@10> <split>" to the history file and drops
 * entries older than 90 days (rewritten atomically). */
int gate_record(const gate_opts_t *g, int64_t now, const char *version, double ndcg,
                char *errbuf);

#endif
