/* qscore4.c - the 4-bit copy of the item factors and its portable scan
 * kernel (qmat4_t in qscore.h; the AVX2 kernel is in qscore_avx2.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qscore_internal.h"
#include "recd/qscore.h"

/* Byte offset of item i's block: 8 items x kpad / 2 bytes. */
static size_t qmat4__block(const qmat4_t *qm, uint32_t i) {
  return (size_t)(i / 8) * 4 * qm->kpad;
}

int qmat4_build(qmat4_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k) {
  memset(qm, 0, sizeof *qm);
  qm->n = n;
  qm->k = k;
  qm->kpad = (k + 7u) & ~7u;
  const size_t rows = ((size_t)n + 7) & ~(size_t)7, bytes = (rows ? rows : 8) * qm->kpad / 2;
  qm->q = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  qm->scale = calloc(rows ? rows : 8, sizeof *qm->scale);
  if (qm->q == NULL || qm->scale == NULL) {
    qmat4_free(qm);
    return RECD_ENOMEM;
  }
  memset(qm->q, 0x88, bytes); /* the stored zero, in both nibbles */
  for (uint32_t i = 0; i < n; i++) {
    const float *y = Y + (size_t)i * ldy;
    float m = 0;
    double norm = 0;
    for (uint32_t a = 0; a < k; a++) {
      m = fabsf(y[a]) > m ? fabsf(y[a]) : m;
      norm += (double)y[a] * y[a];
    }
    float yn = (float)(sqrt(norm) * (1.0 + 0x1p-20)); /* rounded up */
    if (yn > qm->max_norm)
      qm->max_norm = yn;
    const float s = m / 7.0f;
    qm->scale[i] = s;
    uint8_t *q = qm->q + qmat4__block(qm, i) + (i % 8) * 4;
    double resid = 0;
    for (uint32_t a = 0; a < k; a++) {
      long v = 0;
      if (s > 0) {
        v = lrintf(y[a] / s);
        v = v > 7 ? 7 : v < -7 ? -7 : v;
      }
      uint8_t *b = q + (a / 8) * 32 + a % 4;
      const unsigned shift = (a % 8) < 4 ? 0 : 4;
      *b = (uint8_t)((*b & ~(0xFu << shift)) | ((unsigned)(v + 8) << shift));
      double d = (double)y[a] - (double)s * (double)v;
      resid += d * d;
    }
    float r = (float)(sqrt(resid) * (1.0 + 0x1p-20)); /* rounded up */
    if (r > qm->max_resid)
      qm->max_resid = r;
  }
  return 0;
}

void qmat4_free(qmat4_t *qm) {
  free(qm->q);
  free(qm->scale);
  memset(qm, 0, sizeof *qm);
}

float qquery4_bound(const qmat4_t *qm, const qquery_t *qq) {
  return qquery__bound(qq, qm->max_norm, qm->max_resid);
}

/* The 8 dot products of a block in plain C (the same integers as the AVX2
 * kernel's), the offset 8 * sum xq not yet removed. */
static void qscore4__dots8(const uint8_t *restrict blk, uint32_t kpad, const int8_t *restrict xq,
                           int32_t acc[8]) {
  for (uint32_t j = 0; j < 8; j++)
    acc[j] = 0;
  for (uint32_t c = 0; c < kpad / 8; c++)
    for (uint32_t t = 0; t < 4; t++) {
      const int32_t xlo = xq[64 * c + t], xhi = xq[64 * c + 32 + t];
      for (uint32_t j = 0; j < 8; j++) {
        const uint8_t b = blk[32 * c + 4 * j + t];
        acc[j] += (int32_t)(b & 0xF) * xlo + (int32_t)(b >> 4) * xhi;
      }
    }
}

static int qscan4__scalar(const qmat4_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
                          qsel_t *sel, size_t nq) {
  for (uint32_t base = lo; base < hi; base += 8) {
    const uint32_t end = hi - base > 8 ? base + 8 : hi;
    const uint8_t *blk = qm->q + qmat4__block(qm, base);
    for (size_t r = 0; r < nq; r++) {
      int32_t acc[8];
      qscore4__dots8(blk, qm->kpad, qq[r].xq, acc);
      for (uint32_t i = base; i < end; i++) {
        const float v = qscore__value(acc[i - base] - 8 * qq[r].xsum, qm->scale[i], qq[r].sx);
        if (v >= sel[r].thresh) {
          int rc = qsel__push(&sel[r], i, v);
          if (rc != 0)
            return rc;
        }
      }
    }
  }
  return 0;
}

int qscan4(qscore_isa_t isa, const qmat4_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
           qsel_t *sel, size_t nq) {
  if (hi > qm->n)
    hi = qm->n;
  if (lo >= hi || nq == 0)
    return 0;
#if defined(__x86_64__) || defined(__i386__)
  if (isa == QSCORE_AVX2)
    return qscan4__avx2(qm, lo, hi, qq, sel, nq);
#else
  (void)isa;
#endif
  return qscan4__scalar(qm, lo, hi, qq, sel, nq);
}
