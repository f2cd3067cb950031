/* score.c - catalogue scoring and SIMILAR (score.h); top-N is in topk.c.
 *
 * Scoring is a matrix-vector (one user) or matrix-matrix (a batch) product
 * over the item factors, which is memory-bound on Y: for one user every
 * float of Y is read once, so the only things that matter are letting BLAS
 * stream the rows (row-major, lda = ldy, the 64-byte padded stride of the
 * model) and not doing anything per item outside BLAS that could not be
 * vectorised. The batch path reads Y once for m users.
 *
 * cblas takes int sizes. k and ldy are bounded by MODEL_MAX_FACTORS; the
 * item count is split into chunks of at most INT_MAX rows so a huge
 * catalogue cannot overflow the int.
 */
#include "recd/score.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* Rows per BLAS call: the largest count cblas can take. */
#define SCORE__MAX_ROWS ((uint32_t)INT_MAX)

void score_items(const float *Y, size_t ldy, uint32_t n, uint32_t k, const float *x,
                 float *out) {
  if (k == 0) {
    /* An empty dot product; BLAS would reject lda = 0. */
    memset(out, 0, (size_t)n * sizeof *out);
    return;
  }
  for (uint32_t i0 = 0; i0 < n;) {
    const uint32_t m = n - i0 < SCORE__MAX_ROWS ? n - i0 : SCORE__MAX_ROWS;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)m, (int)k, 1.0f, Y + (size_t)i0 * ldy,
                (int)ldy, x, 1, 0.0f, out + i0, 1);
    i0 += m;
  }
}

void score_items_batch(const float *Y, size_t ldy, uint32_t n, uint32_t k, const float *X,
                       size_t ldx, uint32_t m, float *out, size_t ldo) {
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    for (uint32_t u = 0; u < m; u++)
      memset(out + (size_t)u * ldo, 0, (size_t)n * sizeof *out);
    return;
  }
  /* out (m x n) = X (m x k) * Y^T: Y is n x k row-major, so CblasTrans on
   * it reads each item row contiguously, exactly like the sgemv path. */
  for (uint32_t i0 = 0; i0 < n;) {
    const uint32_t c = n - i0 < SCORE__MAX_ROWS ? n - i0 : SCORE__MAX_ROWS;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)c, (int)k, 1.0f, X,
                (int)ldx, Y + (size_t)i0 * ldy, (int)ldy, 0.0f, out + i0, (int)ldo);
    i0 += c;
  }
}

/* Contract in score.h. Beyond it: an item index >= n, or want == 0, gives
 * 0; scratch[0, n) is overwritten (the cosines, NaN for removed items);
 * k == 0 makes every norm zero in any consistent model, so nothing is
 * similar. Cosines are computed as (y_i . y_q) / |y_i| / |y_q|: dividing
 * by each norm separately keeps a product of two tiny norms from underflowing
 * to a zero denominator (and 1 / |y_q| from overflowing). */
int score_cosines(const float *Y, size_t ldy, uint32_t n, uint32_t k, const float *norms,
                  uint32_t item, float *out) {
  if (item >= n || k == 0)
    return 0;
  const float nq = norms[item];
  if (!(nq > 0.0f))
    return 0;
  score_items(Y, ldy, n, k, Y + (size_t)item * ldy, out);
  /* NaN marks "never return" for topk_select: zero-norm candidates (whose
   * cosine is undefined) and, below, the query itself. The select compiles
   * to a blend, so this loop vectorises. */
  for (uint32_t i = 0; i < n; i++) {
    const float ni = norms[i];
    out[i] = ni > 0.0f ? out[i] / ni / nq : NAN;
  }
  out[item] = NAN;
  return 1;
}

size_t score_similar(const float *Y, size_t ldy, uint32_t n, uint32_t k, const float *norms,
                     uint32_t item, const topk_filter_t *f, size_t want, uint32_t *idx_out,
                     float *score_out, float *scratch) {
  if (want == 0 || !score_cosines(Y, ldy, n, k, norms, item, scratch))
    return 0;
  return topk_select(scratch, n, f, want, idx_out, score_out);
}
