/* qscore.h - a compressed copy of the item factors for a fast first pass.
 *
 * Scoring a large catalogue is memory-bound: every request reads the whole
 * n x k float32 matrix. qscore keeps each row as int8 with one float scale
 * (y_i ~ s_i q_i, |q_ia| <= 127), a quarter of the bytes, and scores a
 * customer with integer dot products against the customer's vector, also
 * quantized (x ~ s_x q_x). The approximation error of every score is
 * bounded (qscore_error_bound), which is what lets recd stay exact: the
 * answer is decided by re-scoring in float every candidate whose
 * approximate score is within twice that bound of the N-th best
 * (rec_select with its `slack`), so the top N is provably the one the
 * float32 brute force gives.
 */
#ifndef RECD_QSCORE_H
#define RECD_QSCORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct qmat {
  uint32_t n, k;
  uint32_t kpad;  /* bytes per row, multiple of 64 */
  int8_t *q;      /* n x kpad, 64-byte aligned, padding 0 */
  float *scale;   /* n per-row scales s_i = max_a |y_ia| / 127 */
  float max_scale;
  float max_norm; /* max_i |y_i| */
  float max_resid;/* max_i |y_i - s_i q_i|: the quantisation error */
} qmat_t;

/* Builds the int8 copy of Y (n rows of k floats at stride ldy).
 * 0 or RECD_ENOMEM. */
int qmat_build(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k);
void qmat_free(qmat_t *qm);

/* out[i] = approximate x . y_i for every item. scratch: kpad bytes.
 * Returns a bound on |out[i] - x . y_i| that holds for every i. With
 * y_i = s_i q_i + dy_i and x = s_x q_x + dx (both measured exactly):
 *   x.y_i - s_x s_i q_x.q_i = x.dy_i + dx.y_i - dx.dy_i
 *   |.| <= |x| max|dy| + |dx| max|y| + |dx| max|dy|    (Cauchy-Schwarz)
 * plus the rounding of the float scaling of the exact integer dot. */
float qscore_items(const qmat_t *qm, const float *x, float *out, int8_t *scratch);

#endif
