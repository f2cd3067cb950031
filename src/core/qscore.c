/* qscore.c - see qscore.h. */
#include "recd/qscore.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/err.h"

int qmat_build(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k) {
  memset(qm, 0, sizeof *qm);
  qm->n = n;
  qm->k = k;
  qm->kpad = (k + 63u) & ~63u;
  qm->q = aligned_alloc(64, (size_t)n * qm->kpad + 64);
  qm->scale = malloc((size_t)(n ? n : 1) * sizeof *qm->scale);
  if (qm->q == NULL || qm->scale == NULL) {
    qmat_free(qm);
    return RECD_ENOMEM;
  }
  memset(qm->q, 0, (size_t)n * qm->kpad + 64);
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
    float s = m / 127.0f;
    qm->scale[i] = s;
    if (s > qm->max_scale)
      qm->max_scale = s;
    int8_t *q = qm->q + (size_t)i * qm->kpad;
    double resid = 0;
    for (uint32_t a = 0; a < k; a++) {
      if (s > 0) {
        long v = lrintf(y[a] / s);
        q[a] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
      }
      double d = (double)y[a] - (double)s * q[a];
      resid += d * d;
    }
    /* rounded up so that the bound stays a bound in float */
    float r = (float)(sqrt(resid) * (1.0 + 0x1p-20));
    if (r > qm->max_resid)
      qm->max_resid = r;
  }
  return 0;
}

void qmat_free(qmat_t *qm) {
  free(qm->q);
  free(qm->scale);
  memset(qm, 0, sizeof *qm);
}

/* The integer kernel: the compiler vectorises the int8 -> int32 products
 * (pmaddwd), and target_clones builds an AVX2 copy chosen at run time when
 * the CPU has it, so release builds need no -march=native. */
__attribute__((target_clones("avx2", "default")))
static void qscore__dots(const int8_t *restrict Q, uint32_t n, uint32_t kpad,
                         const int8_t *restrict xq, const float *restrict scale, float sx,
                         float *restrict out) {
  for (uint32_t i = 0; i < n; i++) {
    const int8_t *q = Q + (size_t)i * kpad;
    int32_t acc = 0;
    for (uint32_t a = 0; a < kpad; a++)
      acc += (int32_t)q[a] * (int32_t)xq[a];
    out[i] = (float)acc * (scale[i] * sx);
  }
}

float qscore_items(const qmat_t *qm, const float *x, float *out, int8_t *scratch) {
  const uint32_t k = qm->k;
  float m = 0;
  double xn = 0;
  for (uint32_t a = 0; a < k; a++) {
    m = fabsf(x[a]) > m ? fabsf(x[a]) : m;
    xn += (double)x[a] * x[a];
  }
  float sx = m / 127.0f;
  memset(scratch, 0, qm->kpad);
  double dxn = 0;
  for (uint32_t a = 0; a < k; a++) {
    if (sx > 0)
      scratch[a] = (int8_t)lrintf(x[a] / sx);
    double d = (double)x[a] - (double)sx * scratch[a];
    dxn += d * d;
  }
  qscore__dots(qm->q, qm->n, qm->kpad, scratch, qm->scale, sx, out);
  /* The integer dot is exact (|acc| <= 127^2 k < 2^31 for every k up to
   * MODEL_MAX_FACTORS); the float conversion and the two products round
   * by at most 3 ulps of |s_x q_x| |s_i q_i| <= (|x| + |dx|)(|y| + |dy|). */
  const double xnorm = sqrt(xn), dx = sqrt(dxn), ymax = qm->max_norm, r = qm->max_resid;
  double b = xnorm * r + dx * ymax + dx * r + 4.0 * 0x1p-24 * (xnorm + dx) * (ymax + r);
  return (float)(b * (1.0 + 0x1p-16)); /* rounded up: a float bound */
}
