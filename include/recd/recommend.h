/* recommend.h - one customer's answer from a model: the business rules on
 * top of the serving kernel.
 *
 * Pure computation (no I/O, no loop): the daemon gathers a request's inputs
 * (history and preferences from Redis, options from the command) into a
 * rec_query_t and formats the answer. RECOMMEND runs through serve.h,
 * which sequences the building blocks below (fold-in, a first pass, exact
 * re-scoring and the rules) for a batch of customers; RANK is answered here
 * directly (rec_rank), SIMILAR here (rec_similar_q, the dense pass) or
 * through serve.h (the int8 pass) from the building blocks below. Keeping the rules here
 * means the tests can check them against brute force without a daemon.
 *
 * Rules, in order (DESIGN.md "Model semantics", "Touchpoints and rules"):
 *  1. personalized when personalize != 0 and the history has at least one
 *     item the model knows: x = fold-in of the history (capped), score
 *     s_i = x . y_i; otherwise s_i = popularity_i (not personalized);
 *  2. preference adjustment: s_i += pref(cat_i) * scale, where scale is the
 *     model's score_scale (personalized) or the popularity standard
 *     deviation (popular); pref = -1 removes the category;
 *  3. filters: history items (when exclude_history), hidden items,
 *     unavailable items, EXCLUDE ids, CATEGORY (items of any listed
 *     category only), and with exclude_bought_groups every item whose
 *     product family (group) is the family of a history item. What passes
 *     is "the filtered ranking" R: adjusted score descending, equal scores
 *     by smaller item index;
 *  4. the caps (max_per_category, one_per_group) and the promoted slots
 *     (promote) turn R into "the answer ranking" L by the walk below; with
 *     none of them L = R;
 *  5. L[offset .. offset + count) is returned.
 *
 * The walk (exact: it is a pure function of R and the promoted items, so
 * the first pass only has to deliver enough of R, see "Depth" below).
 * Positions p = 1, 2, 3, ... of L are filled in order. Position p is a
 * promoted slot when promote > 0, p is even and p <= 2 * promote (the
 * slots 2, 4, ..., 2 * promote, 1-based: every other slot starting with
 * the second, so the best organic item always leads and promoted items
 * never bunch together). An item is *admissible* at a position when
 *  - max_per_category > 0: its category is 0 (uncategorised) or fewer than
 *    max_per_category items of its category are already in L[1..p);
 *  - one_per_group: its group is 0 (no family) or no item of its group is
 *    already in L[1..p);
 *  - it is not already in L[1..p).
 * A promoted slot takes the best (in R's order) admissible item of R that
 * is in the promoted bitmap, flagged as promoted; when none is left the
 * slot is an ordinary one. Every other position takes the best admissible
 * item of R, promoted or not (flagged organic: a promoted item that earns
 * its place on its own score is shown, and not repeated, and the promoted
 * slots then go to the next promoted items, so the merchandiser's slots
 * always add promoted items that the organic ranking would not show
 * there). The walk ends when count + offset positions are filled or no
 * admissible item is left. Consequences, by design:
 *  - promoted items pass every filter of step 3 and count toward the caps
 *    like any item (a promotion never breaks MAXPERCATEGORY or
 *    ONEPERGROUP, and fills the category's quota);
 *  - uncategorised items (category 0) are never capped: category 0 means
 *    "no category", not one big category, so a catalogue without
 *    categories is not cut to max_per_category items; likewise group 0;
 *  - an item skipped because its category or group was full never comes
 *    back later in the walk (counts only grow), so L is a subsequence of
 *    R once the promoted items are put back in their slots;
 *  - OFFSET pages through L: page 2 with the same query is L[offset ..],
 *    so the promoted slots are absolute positions of L (with PROMOTE 2 a
 *    page starting at offset 2 has its promoted item at its second
 *    position, position 4 of L), and the concatenation of pages is the
 *    long list.
 *
 * Bought families are a filter of step 3: the families of every item of
 * hist (the whole list, HISTORY items included, not only the
 * history_limit strongest that are folded in). With the family index
 * (q->families) their members are excluded like EXCLUDE ids, before any
 * pass; without it the walk skips them, which needs more depth.
 *
 * Depth. The walk reads a prefix of R. Without caps or family rules the
 * prefix it reads is never longer than offset + count (each item read is
 * either placed or was placed in a promoted slot already); with them it
 * is unknown beforehand. So the first pass delivers the exact top D of R
 * (D from rec_depth(): offset + count without those rules, a few times
 * more with them) and the walk runs on it; when the walk would read past
 * a prefix that is not the whole of R, the answer is not decided yet: the
 * caller collects the top D' (a larger depth estimated from how far the
 * walk got: twice the items per placed item it has seen so far for the
 * positions left, at least 2D + 64) and runs it again, ultimately over
 * the whole filtered catalogue. A dense float pass just selects deeper on
 * the scores it has; the int8 pass scans the catalogue again for that
 * customer with a deeper collector, or beyond a quarter of the catalogue
 * scores it densely in float (serve.c). The walk also stops early,
 * deciding the answer, when every category the filters let through is
 * full and category 0 is filtered out (e.g. CATEGORY kitchen
 * MAXPERCATEGORY 3). The promoted items are few (tens to thousands): they
 * are scored exactly one by one (rows prefetched), not taken from the
 * first pass, and only the best 2 * promote + 16 are sorted unless the
 * walk reads further.
 *
 * History: hist may hold an item more than once (the daemon appends the
 * request's HISTORY items to the stored history): fold-in merges
 * duplicates, summing their weights (foldin.h), the exclusion lists
 * accept duplicates, and a reason names the item's first position.
 *
 * Rotation (SHOWNLIMIT): the items shown too often are passed by the
 * daemon as more EXCLUDE entries (appended to exclude); they are filtered
 * exactly like EXCLUDE ids, so nothing here needs to know about them.
 */
#ifndef RECD_RECOMMEND_H
#define RECD_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/score.h"

/* The members of every product family of a model, for
 * exclude_bought_groups: family g's items are items[start[g] ..
 * start[g + 1]) in ascending order (g in 1..n_groups; start has n_groups +
 * 2 entries). Built once per model (serve_model_init keeps one in
 * serve_model_t), so that a query's bought families become plain
 * exclusions that the first pass filters, instead of items the walk must
 * skip (which would need a deeper first pass). */
typedef struct rec_families {
  uint32_t n_groups;
  uint32_t *start;
  uint32_t *items;
} rec_families_t;

/* 0 or RECD_ENOMEM (then f is empty and rec_families_free is safe). A
 * model without families gets an empty index (n_groups 0, no memory). */
int rec_families_build(rec_families_t *f, const model_t *m);
void rec_families_free(rec_families_t *f);

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
  /* Issue 14 (see the walk above); all 0 / NULL: off. */
  const uint32_t *hidden;      /* "not interested": model indices, any order,
                                  duplicates allowed; never returned, last
                                  in RANK */
  size_t n_hidden;
  size_t max_per_category;     /* MAXPERCATEGORY: 0 = no cap */
  int one_per_group;           /* ONEPERGROUP: at most one item per family */
  int exclude_bought_groups;   /* no item of a family any hist item is in
                                  (the history's own items too, even
                                  without exclude_history) */
  const uint64_t *promoted;    /* bitmap over items, or NULL ... */
  size_t promote;              /* ... and PROMOTE slots (0 = off) */
  const rec_families_t *families; /* the model's family index, or NULL:
                                  with it the bought families are filtered
                                  as exclusions; without it the walk skips
                                  their items (the same answer, found with
                                  a deeper first pass). serve.h sets it
                                  itself (a batch's own copy of the query);
                                  direct callers (SIMILAR) may pass
                                  serve_model_t's */
} rec_query_t;

typedef struct rec_result {
  size_t n;          /* items returned (<= count) */
  uint32_t *items;   /* model indices, best first */
  float *scores;     /* adjusted scores */
  int32_t *reasons;  /* WITHREASONS: index into the query's hist of the
                        past item contributing most, -1 when none */
  uint8_t *promoted; /* when the query has promote > 0 and a promoted
                        bitmap (else NULL; also NULL when n is 0): 1 for
                        an item placed in a promoted slot, 0 for an
                        organic one */
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
  /* the walk (rules.c): the answer ranking, the promoted candidates and
   * the walk's sets, grown on demand */
  uint32_t *ans;
  float *ans_scores;
  uint8_t *ans_promoted;
  size_t ans_cap;
  void *walk;
  size_t walk_cap;
  size_t walk_read;  /* after a decided walk: how many items of the
                        filtered ranking it read (serve.c learns the depth
                        of the first pass from it) */
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
/* rec_select with the depth of the first selection given (0: rec_depth):
 * serve.c passes what the model has learnt of its walks. Any depth gives
 * the same answer; only the work differs. */
int rec_select_depth(const model_t *m, float pop_scale, const rec_query_t *q,
                     const float *scores, const float *x, float err, size_t n_used,
                     size_t depth, rec_ws_t *ws, rec_result_t *out);
int rec_select(const model_t *m, float pop_scale, const rec_query_t *q, const float *scores,
               const float *x, float err, size_t n_used, rec_ws_t *ws, rec_result_t *out);

/* A query's filters as a topk_filter_t, owning its arrays (sorted
 * exclusions: EXCLUDE ids, hidden items, with exclude_history the history,
 * with exclude_bought_groups and q->families the members of the history's
 * families; category adjustments at `scale` per preference unit).
 * Independent of any ws, so a batch can keep one per customer. 0 or
 * RECD_ENOMEM. */
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

/* The depth D of the filtered ranking R that a first pass must deliver
 * for q (see "Depth" above): offset + count without caps or family rules;
 * with max_per_category or one_per_group 4 (offset + count) + 32 (a top
 * dominated by two or three categories or by families of near-identical
 * rows still fits), and with exclude_bought_groups 4 more per history
 * item that is in a family (at most 1024 more): every bought family may
 * hide its siblings, which rank near the top. A guess, not a bound: the
 * walk deepens when it is short. Never more than the catalogue's items. */
size_t rec_depth(const model_t *m, const rec_query_t *q);

/* The end of a personalized answer from a first pass that delivered its
 * candidates (the int8 scan's qsel_t after its final qsel_compact, in
 * serve.h): re-scores cand[0..n) exactly, keeps the top `depth` of R and
 * applies the walk, offset, count and reasons (reasons as for
 * rec_select). The candidates must already pass rules->f and include
 * every item that can reach the top `depth` of R. *deeper is 0 when the
 * answer is decided (out is set); otherwise the top `depth` was not enough
 * for the caps (see "Depth"): out is empty and *deeper > depth is the
 * depth to collect candidates for and call again with. */
int rec_select_candidates(const model_t *m, const rec_query_t *q, const rec_rules_t *rules,
                          const float *x, const uint32_t *cand, size_t n_cand, size_t depth,
                          size_t n_used, rec_ws_t *ws, rec_result_t *out, size_t *deeper);

/* The exact score of an item for a customer: the dot product accumulated in
 * double in a fixed order (four partial sums) and rounded once. Personalized answers (RECOMMEND
 * and RANK) are ranked and reported on it, whatever BLAS path produced the
 * first pass, so the same request always gets the same answer. */
float rec_score_exact(const float *x, const float *y, uint32_t k);

/* RANK: orders the candidates cand[0..n) (model indices, -1 = unknown id)
 * by adjusted score; then, in their given order, the removed candidates:
 * hidden items and items of a removed category (pref -1), as one group
 * (both mean "the customer does not want this", so neither outranks the
 * other and the storefront's own order is kept among them); unknown ids
 * last, in their given order. order_out receives n positions into cand,
 * scores_out (may be NULL) their scores (NAN for unknown; a hidden item
 * keeps its score). Only the query's history, personalize, preference and
 * hidden fields are used: RANK orders the storefront's own list, so it
 * filters nothing and neither caps nor promotes. */
int rec_rank(const model_t *m, float pop_scale, const rec_query_t *q, const int64_t *cand,
             size_t n, rec_ws_t *ws, uint32_t *order_out, float *scores_out, int *personalized);

/* SIMILAR's score of item i for the query `item`: the exact dot product
 * of their rows (rec_score_exact), divided by |y_i|, then by |y_item| (the
 * model's stored norms, model_item_norms); NaN when either norm is 0 (a
 * zero row is similar to nothing). Answers are ranked and reported on it
 * whatever the first pass (the dense sgemv or the int8 scan of the
 * normalised rows), so the same request always gets the same answer, bit
 * for bit. */
float rec_similar_exact(const model_t *m, uint32_t item, uint32_t i);

/* The norms for which the first passes' error bounds hold (no underflow or
 * overflow in the exact cosine): rows outside are re-scored exactly
 * whatever their approximate score, a query outside scores every item
 * exactly. Real models never come near either end. */
#define REC_SIMILAR_NORM_MIN 0x1p-60f
#define REC_SIMILAR_NORM_MAX 0x1p60f
int rec_similar_regular(float norm);

/* The largest difference between rec_similar_exact() and what the first
 * passes bound: the dense pass's float cosine, or the real dot product of
 * the float-normalised rows the int8 copy is built from
 * (qmat_build_cosine), for regular norms, at k factors (recommend.c says
 * why). */
float rec_similar_slack(uint32_t k);

/* SIMILAR: the `count` items most similar to `item` by cosine of item
 * factors (rec_similar_exact), skipping unavailable items (bitmap, may be
 * NULL). Results point into ws as for rec_select(). */
int rec_similar(const model_t *m, uint32_t item, size_t count, const uint64_t *unavailable,
                rec_ws_t *ws, rec_result_t *out);

/* SIMILAR with the rules: R is every item but `item` itself ranked by
 * rec_similar_exact() (equal cosines by smaller index), filtered by q's
 * history (exclude_history), hidden, unavailable, EXCLUDE, CATEGORY, the
 * categories whose preference is -1 (other preferences do not move a
 * cosine) and exclude_bought_groups (the families of q's hist); then the
 * walk with max_per_category and one_per_group, and q's offset and count.
 * Without FOR <user> the daemon passes a query with only count, offset,
 * CATEGORY, EXCLUDE, the caps and unavailable. Ignored: personalize,
 * history_limit, hist_w, the preference values other than -1, promote (a
 * product page's "similar items" has no promoted slots) and with_reasons.
 * `item` itself is never returned and does not fill its category's or
 * family's quota (the page can show one sibling of the same family).
 * Results point into ws. 0, RECD_ENOMEM. This is the dense pass (one
 * sgemv over the float items, then the exact selection); serve.h answers
 * the same from the int8 copy of the normalised rows. */
int rec_similar_q(const model_t *m, uint32_t item, const rec_query_t *q, rec_ws_t *ws,
                  rec_result_t *out);

/* The building blocks of SIMILAR on another first pass (serve.c):
 *  - rec_similar_query: q as SIMILAR reads it (promote, promoted and
 *    with_reasons cleared);
 *  - rec_similar_rules_init: sq's filters as for rec_similar_q (category
 *    removals only, `item` itself excluded). 0 or RECD_ENOMEM;
 *  - rec_similar_candidates: as rec_select_candidates, on the exact
 *    cosines: cand[0..n) must pass rules->f and include every item that
 *    can reach the top `depth` of R. */
void rec_similar_query(const rec_query_t *q, rec_query_t *sq);
int rec_similar_rules_init(rec_rules_t *r, const model_t *m, const rec_query_t *sq,
                           uint32_t item);
int rec_similar_candidates(const model_t *m, const rec_query_t *sq, const rec_rules_t *rules,
                           uint32_t item, const uint32_t *cand, size_t n_cand, size_t depth,
                           rec_ws_t *ws, rec_result_t *out, size_t *deeper);

#endif
