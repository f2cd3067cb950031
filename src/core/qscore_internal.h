/* qscore_internal.h - what the scan kernels (qscore.c, qscore_avx2.c,
 * qscore_avx512.c) share: the per-item score formula and the collector's append. */
#ifndef RECD_QSCORE_INTERNAL_H
#define RECD_QSCORE_INTERNAL_H

#include "recd/err.h"
#include "recd/qscore.h"

/* The approximate score of an item from its exact integer dot product.
 * Every kernel uses exactly these two float multiplications, in this order,
 * so their scores are bit-identical. */
static inline float qscore__value(int32_t dot, float scale_i, float sx) {
  return (float)dot * (scale_i * sx);
}

/* Appends a candidate (score v, bound e) that passed thresh; compacts a
 * full buffer first. 0 or RECD_ENOMEM. */
static inline int qsel__push(qsel_t *s, uint32_t i, float v, float e) {
  if (s->n >= s->lim) {
    int rc = qsel_compact(s);
    if (rc != 0)
      return rc;
  }
  s->idx[s->n] = i;
  s->s[s->n] = v;
  s->err[s->n] = e;
  s->n++;
  return 0;
}

int qscan__avx2(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel,
                size_t nq);
int qscan__avx512(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel,
                  size_t nq);

#endif
