/* score.h - scoring the catalogue for a user, filtering, top-N, SIMILAR.
 *
 * This is the serving kernel. Scores are dot products x_u . y_i computed
 * with BLAS (sgemv for one user, sgemm for a batch); topk_select() then
 * applies the business filters and keeps the best N with a bounded heap.
 * Order is total and deterministic: higher score first, and on equal scores
 * the smaller item index first.
 */
#ifndef RECD_SCORE_H
#define RECD_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "recd/err.h"

/* out[i] = x . y_i for i < n; Y row i at Y + i*ldy, k floats. */
void score_items(const float *Y, size_t ldy, uint32_t n, uint32_t k,
                 const float *x, float *out);

/* For m users at once: out[u*ldo + i] = X[u*ldx ..] . y_i (one sgemm). */
void score_items_batch(const float *Y, size_t ldy, uint32_t n, uint32_t k,
                       const float *X, size_t ldx, uint32_t m, float *out,
                       size_t ldo);

/* What may not be shown, and how categories move scores. Every member may
 * be NULL / 0 (no such filter). */
typedef struct topk_filter {
  const uint32_t *exclude;      /* item indices never returned, sorted
                                   ascending (duplicates allowed) */
  size_t n_exclude;
  const uint64_t *exclude_bits; /* bitmap of items never returned (bit i of
                                   word i/64), e.g. unavailable items */
  const uint32_t *item_category;/* per item category slot, 0..n_slots-1 */
  const float *cat_adjust;      /* per category slot: added to the score;
                                   -INFINITY removes the category (a CATEGORY
                                   filter is every other slot at -INFINITY) */
  uint32_t n_slots;             /* entries of cat_adjust */
  /* Optional (topk_filter_hint): bit i % 512 is set for every item i of
   * exclude, so an item whose bit is clear is not in it without a search
   * (the scan's collector looks up each item it keeps). */
  int hinted;
  uint64_t exclude_hint[8];
} topk_filter_t;

/* Sets f's exclude_hint from its exclude list (call again whenever the
 * list changes). */
void topk_filter_hint(topk_filter_t *f);

/* Selects the `want` best items of scores[0..n) that pass the filter, after
 * category adjustment, into idx_out/score_out (best first; score_out may be
 * NULL). Items with a NaN score are never returned, nor items whose adjusted
 * score is -INFINITY. Returns the number of items written (< want when fewer
 * pass). Allocation-free; O(n + n_exclude + r log want) for r insertions. */
size_t topk_select(const float *scores, uint32_t n, const topk_filter_t *f,
                   size_t want, uint32_t *idx_out, float *score_out);

/* The cosine of every item with `item` into out[0..n): (y_i . y_item) /
 * |y_i| / |y_item| from one sgemv, NaN for `item` itself and for
 * zero-norm items (never returned by topk_select). Returns 0, and writes
 * nothing, when `item` is out of range, k is 0 or its norm is zero (it is
 * similar to nothing); else 1. score_similar's scores. */
int score_cosines(const float *Y, size_t ldy, uint32_t n, uint32_t k, const float *norms,
                  uint32_t item, float *out);

/* Items most similar to `item` by cosine of item factors (norms given, a
 * zero-norm item is similar to nothing), excluding the item itself and
 * anything the filter removes. scratch holds n floats. Returns the number of
 * items written. */
size_t score_similar(const float *Y, size_t ldy, uint32_t n, uint32_t k,
                     const float *norms, uint32_t item, const topk_filter_t *f,
                     size_t want, uint32_t *idx_out, float *score_out,
                     float *scratch);

#endif
