/* rules_internal.h - the walk of recommend.h (caps, families, promoted
 * slots) shared by recommend.c's answers; private to src/core. */
#ifndef RECD_RULES_INTERNAL_H
#define RECD_RULES_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "recd/model.h"
#include "recd/recommend.h"
#include "recd/score.h"

/* Does q need the walk at all (a cap, a family rule or promoted slots)?
 * Without it the answer ranking is the filtered ranking itself. */
int rec_walk_needed(const rec_query_t *q, int use_promote);

/* Does item i pass f (exclusions, bitmap, removed category)? The same
 * decision as topk_select and the int8 collectors make. */
int rec_filter_passes(const topk_filter_t *f, uint32_t i);

/* Runs the walk of recommend.h over the exact prefix R[0..nR) of the
 * filtered ranking (best first, scores Rs), which is the whole filtered
 * ranking when `complete`. Promoted slots (use_promote, q->promote,
 * q->promoted) take their candidates from the promoted items that pass f,
 * scored here exactly like R: rec_score_exact(x, y_i) when x != NULL, else
 * base[i], plus f's category adjustment. Writes the answer ranking's first
 * min(offset + count, ...) entries to ws->ans / ans_scores / ans_promoted
 * and their number to *n_out, with *deeper = 0; or, when the prefix is too
 * short to decide it, *deeper = a larger depth to try (unclamped). 0 or
 * RECD_ENOMEM. */
int rec_walk(const model_t *m, const rec_query_t *q, const topk_filter_t *f, const uint32_t *R,
             const float *Rs, size_t nR, int complete, const float *x, const float *base,
             int use_promote, rec_ws_t *ws, size_t *n_out, size_t *deeper);

#endif
