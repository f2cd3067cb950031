/* eval.h - offline evaluation: hold-out split and ranking metrics at 10.
 *
 * The protocol mirrors serving: for every evaluated user, a recommender sees
 * only the training part of the history, scores the whole catalogue, the
 * training items are excluded (as the daemon excludes past purchases), and
 * the top 10 are compared with the held-out items.
 */
#ifndef RECD_EVAL_H
#define RECD_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recd/dataset.h"
#include "recd/model.h"

#define EVAL_CUTOFF 10

/* Splits users x items interactions into train and test: every user with at
 * least 2 items holds out round(fraction * n) of them (at least 1, and at
 * least 1 stays in training), chosen uniformly with the seeded generator.
 * Both outputs have the input's shape; free them with csr_free(). */
int eval_holdout_split(const csr_t *by_user, double fraction, uint64_t seed,
                       csr_t *train, csr_t *test);

/* A recommender under evaluation: fills scores[0..n_items) for a user whose
 * training history is (items, weights, n). Returns 0 or a RECD_E* code. */
typedef int (*eval_score_fn)(void *ctx, const uint32_t *items,
                             const float *weights, size_t n, float *scores);

/* Scores every user with test items, excludes their training items, and
 * averages precision, recall (hits / |test|), NDCG and MAP at EVAL_CUTOFF;
 * coverage is the share of the n_items catalogue that appears in at least
 * one top-10 list. *n_users (may be NULL) receives the users evaluated. */
int eval_ranking(const csr_t *train, const csr_t *test, eval_score_fn fn,
                 void *ctx, model_metrics_t *out, uint64_t *n_users);

/* Popularity scorer: every user gets the same scores. */
typedef struct eval_popularity_ctx {
  const float *pop; /* n_items values */
  uint32_t n_items;
} eval_popularity_ctx_t;
int eval_score_popularity(void *ctx, const uint32_t *items, const float *weights,
                          size_t n, float *scores);

/* Item popularity from interactions: the number of distinct users per item
 * (by_item row lengths). Counting customers rather than summing weights
 * keeps one wholesale buyer of 10,000 units from dominating. */
void eval_popularity(const csr_t *by_item, float *pop);

/* EASE (Steck 2019): the closed-form item-item model
 *   B = I - P diag(1/diag(P)),  P = (X^T X + lambda I)^-1,  diag(B) = 0
 * on the binarised user x item matrix. *B_out is n_items x n_items
 * row-major (malloc'ed, the caller frees). Cost O(n_items^3) time and
 * n_items^2 floats of memory: use for catalogues up to ~20k items. */
int ease_fit(const csr_t *by_user, float lambda, float **B_out, char *errbuf);

/* EASE scorer: ctx is an ease_scorer_t. */
typedef struct ease_scorer {
  const float *B;
  uint32_t n_items;
} ease_scorer_t;
int ease_score(void *ctx, const uint32_t *items, const float *weights, size_t n,
               float *scores);

/* Picks lambda from `grid` by NDCG@10 on a validation split of `train`
 * (fraction and seed as for eval_holdout_split), logging each candidate to
 * progress (may be NULL). */
int ease_select_lambda(const csr_t *train, double fraction, uint64_t seed,
                       const float *grid, size_t n_grid, float *best,
                       FILE *progress, char *errbuf);

#endif
