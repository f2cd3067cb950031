/* qscore4.c - the 4-bit copy of the items and the portable kernel of the
 * prefilter that reads it (qscore.h: "The 4-bit prefilter").
 *
 * Each row is quantised on its own scale t_i (a bfloat16, rounded up from
 * max_a |y_ia| / 7, so that the stored number is the exact scale used),
 * p_ia = round(y_ia / t_i) in [-7, 7], stored as p + 8 (1..15) in a
 * nibble; the residual |y_i - t_i p_i| is measured in double and rounded
 * up twice (to float with a relative pad, then to bfloat16), so the bound
 * qquery_item_bound(resid4, norm16) computes stays a bound.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qscore_internal.h"

/* The smallest bfloat16 >= f, for f >= 0 (scales, residuals, norms); NaN
 * stays NaN. Rounding a positive float's bit pattern up at bit 16 is
 * rounding it up in value (the largest finite float goes to infinity). */
static uint16_t qscore4__bf16_up(float f) {
  if (f != f)
    return 0x7fc0; /* NaN */
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  if (b & 0x80000000u)
    return 0; /* -0 (nothing negative is ever asked for) */
  if (b & 0xffffu)
    b += 0x10000u;
  return (uint16_t)(b >> 16);
}

int qmat4__alloc(qmat_t *qm, size_t rows) {
  const size_t bytes = (rows * (qm->kpad / 2) + 63) & ~(size_t)63;
  qm->q4 = qscore__alloc_big(bytes ? bytes : 64);
  qm->scale4 = qscore__alloc_big(rows * sizeof *qm->scale4);
  qm->resid4 = qscore__alloc_big(rows * sizeof *qm->resid4);
  qm->norm16 = qscore__alloc_big((rows + 7) / 8 * sizeof *qm->norm16);
  if (qm->q4 == NULL || qm->scale4 == NULL || qm->resid4 == NULL || qm->norm16 == NULL)
    return RECD_ENOMEM; /* the caller frees what was allocated */
  memset(qm->q4, 0x88, bytes ? bytes : 64); /* both nibbles the stored zero */
  memset(qm->scale4, 0, rows * sizeof *qm->scale4);
  memset(qm->resid4, 0, rows * sizeof *qm->resid4);
  memset(qm->norm16, 0, (rows + 7) / 8 * sizeof *qm->norm16);
  return 0;
}

void qmat_drop_q4(qmat_t *qm) {
  free(qm->q4);
  free(qm->scale4);
  free(qm->resid4);
  free(qm->norm16);
  qm->q4 = NULL;
  qm->scale4 = qm->resid4 = qm->norm16 = NULL;
}

void qmat4__row(qmat_t *qm, uint32_t i, const float *y, float norm) {
  const uint32_t k = qm->k;
  float m = 0;
  for (uint32_t a = 0; a < k; a++)
    m = fabsf(y[a]) > m ? fabsf(y[a]) : m;
  const uint16_t th = qscore4__bf16_up(m / 7.0f);
  const float t = qscore__bf16(th);
  /* row i's nibbles: block, then its 4-byte slot in each 32-byte pair */
  uint8_t *q = qm->q4 + (size_t)(i / 8) * 4 * qm->kpad + (i % 8) * 4;
  double resid = 0;
  for (uint32_t a = 0; a < k; a++) {
    long v = 0;
    if (t > 0 && t < INFINITY) {
      v = lrintf(y[a] / t); /* |y / t| <= 7 (+ rounding) */
      v = v > 7 ? 7 : v < -7 ? -7 : v;
    }
    const uint32_t c = a / 4; /* the int8 layout's group */
    uint8_t *b = q + 32 * (c / 2) + a % 4;
    const uint8_t u = (uint8_t)(v + 8);
    *b = c % 2 ? (uint8_t)((*b & 0x0f) | (u << 4)) : (uint8_t)((*b & 0xf0) | u);
    /* v == 0 contributes nothing, even when t is infinite */
    const double d = (double)y[a] - (v != 0 ? (double)t * (double)v : 0.0);
    resid += d * d;
  }
  qm->scale4[i] = th;
  qm->resid4[i] = qscore4__bf16_up((float)(sqrt(resid) * (1.0 + 0x1p-20)));
  /* The block's largest: the bit patterns of non-negative bfloat16s
   * order as their values, and NaN's (0x7fc0) above every one of them, so
   * a NaN norm makes the block's bound NaN: it passes. */
  const uint16_t nb = qscore4__bf16_up(norm);
  if (nb > qm->norm16[i / 8])
    qm->norm16[i / 8] = nb;
}

/* The 8 stored-nibble dot products of one block (the offset 8 not yet
 * removed), in plain C, loops ordered like qscore__dots8. */
static void qscore4__dots8(const uint8_t *restrict blk, uint32_t pairs,
                           const int8_t *restrict xq, int32_t acc[8]) {
  for (uint32_t j = 0; j < 8; j++)
    acc[j] = 0;
  for (uint32_t p = 0; p < pairs; p++)
    for (uint32_t t = 0; t < 4; t++) {
      const int32_t xl = xq[64 * p + t], xh = xq[64 * p + 32 + t];
      for (uint32_t j = 0; j < 8; j++) {
        const uint8_t b = blk[32 * p + 4 * j + t];
        acc[j] += (int32_t)(b & 0x0f) * xl + (int32_t)(b >> 4) * xh;
      }
    }
}

/* Item base + j's 4-bit score plus bound, the number the prefilter tests. */
static float qscore4__hi(const qmat_t *qm, uint32_t i, int32_t dot, const qquery_t *qq) {
  const float v = qscore__value4(dot - qq->corr / 8, qm->scale4[i], qq->sx);
  const float e =
      qquery_item_bound(qq, qscore__bf16(qm->resid4[i]), qscore__bf16(qm->norm16[i / 8]));
  return v + e;
}

/* The int8 scans of the waiting blocks that are due at `base`. */
static int qscan4__flush(const qmat_t *qm, uint32_t hi, const qquery_t *qq, qsel_t *sel,
                         qscore4_lag_t *lag, uint32_t base) {
  while (qscore4__due(lag, base)) {
    const uint32_t b = qscore4__pop(lag);
    int rc = qscan__scalar(qm, b, hi - b > 8 ? b + 8 : hi, qq, sel, 1);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int qscan4__scalar(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel) {
  qscore4_lag_t lag = {.n = 0};
  int rc;
  for (uint32_t base = lo; base < hi; base += 8) {
    const uint32_t end = hi - base > 8 ? base + 8 : hi;
    int32_t acc[8];
    qscore4__dots8(qm->q4 + (size_t)(base / 8) * 4 * qm->kpad, qm->kpad / 8, qq->xq, acc);
    int pass = 0;
    for (uint32_t i = base; i < end; i++)
      pass |= !(qscore4__hi(qm, i, acc[i - base], qq) < sel->thresh); /* NaN passes */
    if (pass)
      qscore4__push(&lag, base);
    if ((rc = qscan4__flush(qm, hi, qq, sel, &lag, base)) != 0)
      return rc;
  }
  return qscan4__flush(qm, hi, qq, sel, &lag, UINT32_MAX);
}

void qscore_items4(const qmat_t *qm, const float *x, float *out, float *err, int8_t *scratch) {
  qquery_t qq = {.xq = scratch};
  (void)qquery_prepare(qm, x, &qq);
  for (uint32_t base = 0; base < qm->n; base += 8) {
    int32_t acc[8];
    qscore4__dots8(qm->q4 + (size_t)(base / 8) * 4 * qm->kpad, qm->kpad / 8, qq.xq, acc);
    for (uint32_t i = base; i < qm->n && i < base + 8; i++) {
      out[i] = qscore__value4(acc[i - base] - qq.corr / 8, qm->scale4[i], qq.sx);
      err[i] = qquery_item_bound(&qq, qscore__bf16(qm->resid4[i]), qscore__bf16(qm->norm16[i / 8]));
    }
  }
}
