/* recommend.h - one customer's answer from a model: the business rules on
 * top of the serving kernel.
 *
 * Pure computation (no I/O, no loop): the daemon gathers a request's inputs
 * (history and preferences from Redis, options from the command) into a
 * rec_query_t and formats the answer. RECOMMEND runs through serve.h,
 * which sequences the building blocks below (fold-in, a first pass, exact
 * re-scoring and the rules) for a batch of customers; RANK and SIMILAR are
 * answered here directly (rec_rank, rec_similar). Keeping the rules here
 * means the tests can check them against brute force without a daemon.
 *
 * Rules, in order (DESIGN.md "Model semantics"):
 *  1. personalized when personalize != 0 and the history has at least one
 *     item the model knows: x = fold-in of the history (capped), score
 *     s_i = x . y_i; otherwise s_i = popularity_i (not personalized);
 *  2. preference adjustment: s_i += pref(cat_i) * scale, where scale is the
 *     model's score_scale (personalized) or the popularity standard
 *     deviation (popular); pref = -1 removes the category;
 *  3. filters: history items (when exclude_history), unavailable items,
 *     EXCLUDE ids, CATEGORY (items of any listed category only);
 *  4. top offset+count by adjusted score (ties: smaller item index), of
 *     which the last `count` are returned.
 */
#ifndef RECD_RECOMMEND_H
#define RECD_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/score.h"

typedef struct rec_query {
  const uint32_t *hist;        /* model indices of the history items ... */
  const float *hist_w;         /* ... and their weights (> 0), n_hist each */
  size_t n_hist;
  size_t history_limit;        /* fold-in uses the strongest this many */
  int personalize;             /* 0: the customer opted out */
  int exclude_history;         /* never return history items */
  const uint32_t *exclude;     /* EXCLUDE ids, model indices, any order */
  size_t n_exclude;
  const uint32_t *categories;  /* CATEGORY filter: category numbers */
  size_t n_categories;
  int category_filter;         /* CATEGORY given (an unknown category then
                                  matches nothing) */
  const uint32_t *pref_cat;    /* preference: category number ... */
  const float *pref_val;       /* ... and value in [-1, 1] */
  size_t n_pref;
  const uint64_t *unavailable; /* bitmap over items, or NULL */
  size_t offset, count;
  int with_reasons;
} rec_query_t;

typedef struct rec_result {
  size_t n;          /* items returned (<= count) */
  uint32_t *items;   /* model indices, best first */
  float *scores;     /* adjusted scores */
  int32_t *reasons;  /* WITHREASONS: index into the query's hist of the
                        past item contributing most, -1 when none */
  int personalized;  /* 1 when the answer used the customer's vector */
  size_t n_used;     /* history items folded in */
} rec_result_t;

/* Scratch for one computation at a time (one per thread), grown on demand;
 * results point into it and stay valid until its next use. */
typedef struct rec_ws {
  foldin_ws_t fw;
  uint32_t n_items, k;
  float *scores, *x, *cat_adjust, *tmp;
  uint32_t *top;
  float *top_scores;
  int32_t *reasons;
  size_t top_cap, slots_cap;
} rec_ws_t;

void rec_ws_init(rec_ws_t *ws);
void rec_ws_free(rec_ws_t *ws);

/* Standard deviation of the model's popularity (the preference scale of
 * non-personalized answers); computed once per model by the caller. */
float rec_popularity_scale(const model_t *m);

/* The two halves of a RECOMMEND with a dense first pass (serve.h runs
 * them, with the first pass in between):
 *  - rec_prepare() folds the customer in: x (model_stride() floats, caller
 *    owned) and *personalized = 1, or *personalized = 0 when the answer
 *    will be popularity (x untouched, and may be NULL). Returns 0,
 *    RECD_ENOMEM or the fold-in's error;
 *  - rec_select() applies the rules to the catalogue's scores for that x
 *    (scores = NULL: the non-personalized answer, pop_scale as from
 *    rec_popularity_scale()); the scores may come from any BLAS path, or
 *    from an approximate pass whose error is at most `err` for every item
 *    (0 for float BLAS, whose rounding is accounted for here): the final
 *    ranking re-scores the candidates that can reach the top exactly with
 *    x (rec_score_exact). The result points into ws, valid until its next
 *    use. WITHREASONS needs the fold-in factor that rec_prepare() leaves in
 *    ws, so with_reasons is only valid when rec_select() follows
 *    rec_prepare() of the same query on the same ws. */
int rec_prepare(const model_t *m, const rec_query_t *q, rec_ws_t *ws, float *x,
                int *personalized, size_t *n_used);
int rec_select(const model_t *m, float pop_scale, const rec_query_t *q, const float *scores,
               const float *x, float err, size_t n_used, rec_ws_t *ws, rec_result_t *out);

/* A query's filters as a topk_filter_t, owning its arrays (sorted
 * exclusions: EXCLUDE ids and, with exclude_history, the history; category
 * adjustments at `scale` per preference unit). Independent of any ws, so a
 * batch can keep one per customer. 0 or RECD_ENOMEM. */
typedef struct rec_rules {
  topk_filter_t f;
  uint32_t *excl;
  float *cat_adjust;
} rec_rules_t;
int rec_rules_init(rec_rules_t *r, const model_t *m, const rec_query_t *q, float scale);
void rec_rules_free(rec_rules_t *r);

/* The largest difference between a float32 dot product (any summation
 * order) plus the category adjustment of f, and the exact score
 * rec_score_exact() ranks on, for customer x and any item: the error bound
 * of the float first passes, to which an approximate pass adds its own. */
float rec_score_slack(const model_t *m, const float *x, const topk_filter_t *f);

/* The end of a personalized answer from a first pass that delivered its
 * candidates (the int8 scan's qsel_t after its final qsel_compact, in
 * serve.h): re-scores cand[0..n) exactly, ranks them and applies offset,
 * count and reasons (reasons as for rec_select). The candidates must
 * already pass rules->f and include every item that can reach the top
 * offset + count. */
int rec_select_candidates(const model_t *m, const rec_query_t *q, const rec_rules_t *rules,
                          const float *x, const uint32_t *cand, size_t n_cand, size_t n_used,
                          rec_ws_t *ws, rec_result_t *out);

/* The exact score of an item for a customer: the dot product accumulated in
 * double in a fixed order (four partial sums) and rounded once. Personalized answers (RECOMMEND
 * and RANK) are ranked and reported on it, whatever BLAS path produced the
 * first pass, so the same request always gets the same answer. */
float rec_score_exact(const float *x, const float *y, uint32_t k);

/* RANK: orders the candidates cand[0..n) (model indices, -1 = unknown id)
 * by adjusted score; unknown ids go last, removed categories (pref -1) just
 * before them, in their given order. order_out receives n positions into
 * cand, scores_out (may be NULL) their scores (NAN for unknown). Only the
 * query's history, personalize and preference fields are used. */
int rec_rank(const model_t *m, float pop_scale, const rec_query_t *q, const int64_t *cand,
             size_t n, rec_ws_t *ws, uint32_t *order_out, float *scores_out, int *personalized);

/* SIMILAR: the `count` items most similar to `item` by cosine of item
 * factors, skipping unavailable items (bitmap, may be NULL). Results point
 * into ws as for rec_select(). */
int rec_similar(const model_t *m, uint32_t item, size_t count, const uint64_t *unavailable,
                rec_ws_t *ws, rec_result_t *out);

#endif
