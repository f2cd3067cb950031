/* qscore_internal.h - what the scan kernels (qscore.c, qscore_avx2.c,
 * qscore_avx512.c) share: the per-item score formula and the collector's append. */
#ifndef RECD_QSCORE_INTERNAL_H
#define RECD_QSCORE_INTERNAL_H

#include <string.h>

#include "recd/err.h"
#include "recd/qscore.h"

/* The approximate score of an item from its exact integer dot product.
 * Every kernel uses exactly these two float multiplications, in this order,
 * so their scores are bit-identical. */
static inline float qscore__value(int32_t dot, float scale_i, float sx) {
  return (float)dot * (scale_i * sx);
}

/* Offers a candidate (score v, bound e) that passed thresh (qsel_offer).
 * 0 or RECD_ENOMEM. */
static inline int qsel__push(qsel_t *s, uint32_t i, float v, float e) {
  return qsel_offer(s, i, v, e);
}

/* Pushes the items base + j of a vector kernel's hit mask (lanes whose
 * v + e reached thresh when tested), from the lanes' scores vs, bounds es
 * and sums ves, in lane order. 0 or RECD_ENOMEM. */
static inline int qsel__push_hits(qsel_t *s, uint32_t base, unsigned hit, const float *vs,
                                  const float *es, const float *ves) {
  while (hit) {
    const int j = __builtin_ctz(hit);
    hit &= hit - 1;
    /* thresh may have risen with the lanes before: test again */
    if (ves[j] >= s->thresh) {
      int rc = qsel__push(s, base + (uint32_t)j, vs[j], es[j]);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

/* bfloat16 (the top 16 bits of a float) to float: exact. */
static inline float qscore__bf16(uint16_t h) {
  const uint32_t b = (uint32_t)h << 16;
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

/* The 4-bit copy's score of an item from its exact integer dot product
 * (stored nibbles minus 8): qscore__value's two products, with the row's
 * bfloat16 scale. */
static inline float qscore__value4(int32_t dot, uint16_t scale4, float sx) {
  return qscore__value(dot, qscore__bf16(scale4), sx);
}

/* The blocks that passed the 4-bit test and wait for their int8 scan.
 * Why wait: a passing block's int8 bytes are not in cache (the stream
 * reads the 4-bit copy), and scanning it at once stalls on memory for
 * every one (about a third of the prefilter's time at 1M items); a block
 * is prefetched when it passes and scanned QSCORE4_LAG blocks later, or
 * sooner when the queue is full. Every kernel follows this same rule, so
 * the thresholds its tests meet, and its pushes, are the same. */
enum { QSCORE4_LAG = 16 };
typedef struct qscore4_lag {
  uint32_t base[QSCORE4_LAG];
  unsigned head, n;
} qscore4_lag_t;

/* The oldest waiting block is due: the queue is full, or it passed
 * QSCORE4_LAG blocks before `base` (or everything is due: base = UINT32_MAX). */
static inline int qscore4__due(const qscore4_lag_t *l, uint32_t base) {
  return l->n > 0 &&
         (l->n == QSCORE4_LAG || base == UINT32_MAX || base - l->base[l->head] >= 8u * QSCORE4_LAG);
}
static inline uint32_t qscore4__pop(qscore4_lag_t *l) {
  const uint32_t b = l->base[l->head];
  l->head = (l->head + 1) % QSCORE4_LAG;
  l->n--;
  return b;
}
static inline void qscore4__push(qscore4_lag_t *l, uint32_t base) {
  l->base[(l->head + l->n) % QSCORE4_LAG] = base;
  l->n++;
}

/* Memory (not zeroed) for the copies' arrays, 64-byte aligned, on
 * transparent huge pages when large (qscore.c); freed with free(). */
void *qscore__alloc_big(size_t bytes);

/* The int8 scan of one customer over [lo, hi) (qscore.c): what the 4-bit
 * kernels run on a block that passes. */
int qscan__scalar(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel,
                  size_t nq);
/* The 4-bit copy (qscore4.c): storage, one row, and the portable scan of
 * one customer with its prefilter. */
int qmat4__alloc(qmat_t *qm, size_t rows);
void qmat4__row(qmat_t *qm, uint32_t i, const float *y, float norm);
int qscan4__scalar(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel);

int qscan__avx2(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel,
                size_t nq);
int qscan4__avx2(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel);
int qscan__avx512(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel,
                  size_t nq);

#endif
