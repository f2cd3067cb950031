/* ease.c - the EASE baseline (Steck 2019, "Embarrassingly Shallow
 * Autoencoders for Sparse Data"). It is here to keep recd's ALS honest: a
 * closed-form item-item model that is among the strongest published
 * baselines for top-N recommendation from implicit data. */
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/err.h"
#include "recd/eval.h"

int ease_fit(const csr_t *by_user, float lambda, float **B_out, char *errbuf) {
  const size_t n = by_user->n_cols;
  *B_out = NULL;
  if (n == 0)
    return recd_errf(errbuf, RECD_EINVAL, "ease: empty catalogue");
  float *P = calloc(n * n, sizeof *P);
  if (P == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "ease: %zu x %zu Gram matrix does not fit in memory",
                     n, n);
  /* G = X^T X on the binarised matrix, lower triangle only (rows are sorted,
   * so idx[a] >= idx[b] for a >= b): sum over users of |I_u|^2 / 2 updates,
   * far cheaper than a dense product for sparse histories. */
  for (uint32_t u = 0; u < by_user->n_rows; u++) {
    for (uint64_t a = by_user->ptr[u]; a < by_user->ptr[u + 1]; a++) {
      float *row = P + (size_t)by_user->idx[a] * n;
      for (uint64_t b = by_user->ptr[u]; b <= a; b++)
        row[by_user->idx[b]] += 1.0f;
    }
  }
  for (size_t i = 0; i < n; i++)
    P[i * n + i] += lambda;
  lapack_int info = LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, P, (lapack_int)n);
  if (info == 0)
    info = LAPACKE_spotri(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, P, (lapack_int)n);
  if (info != 0) {
    free(P);
    return recd_errf(errbuf, RECD_ENUMERIC, "ease: X^T X + %g I is not invertible (info %d)",
                     (double)lambda, (int)info);
  }
  for (size_t i = 0; i < n; i++) /* mirror the lower triangle */
    for (size_t j = i + 1; j < n; j++)
      P[i * n + j] = P[j * n + i];
  /* B_ij = -P_ij / P_jj, B_ii = 0; in place, the diagonal read first. */
  float *dinv = malloc(n * sizeof *dinv);
  if (dinv == NULL) {
    free(P);
    return RECD_ENOMEM;
  }
  for (size_t j = 0; j < n; j++)
    dinv[j] = -1.0f / P[j * n + j];
  for (size_t i = 0; i < n; i++) {
    float *row = P + i * n;
    for (size_t j = 0; j < n; j++)
      row[j] *= dinv[j];
    row[i] = 0.0f;
  }
  free(dinv);
  *B_out = P;
  return 0;
}

int ease_score(void *ctx, const uint32_t *items, const float *weights, size_t n,
               float *scores) {
  (void)weights; /* EASE is fitted on the binarised matrix */
  const ease_scorer_t *e = ctx;
  memset(scores, 0, (size_t)e->n_items * sizeof *scores);
  for (size_t j = 0; j < n; j++) {
    const float *row = e->B + (size_t)items[j] * e->n_items;
    for (uint32_t i = 0; i < e->n_items; i++)
      scores[i] += row[i];
  }
  return 0;
}

int ease_select_lambda(const csr_t *train, double fraction, uint64_t seed,
                       const float *grid, size_t n_grid, float *best,
                       FILE *progress, char *errbuf) {
  csr_t fit, val;
  if (n_grid == 0)
    return recd_errf(errbuf, RECD_EINVAL, "ease: empty lambda grid");
  int rc = eval_holdout_split(train, fraction, seed, &fit, &val);
  if (rc != 0)
    return recd_errf(errbuf, rc, "ease: validation split: %s", recd_strerror(rc));
  double best_ndcg = -1.0;
  for (size_t g = 0; g < n_grid && rc == 0; g++) {
    float *B;
    rc = ease_fit(&fit, grid[g], &B, errbuf);
    if (rc != 0)
      break;
    ease_scorer_t sc = {.B = B, .n_items = fit.n_cols};
    model_metrics_t m;
    rc = eval_ranking(&fit, &val, ease_score, &sc, &m, NULL);
    free(B);
    if (rc != 0)
      break;
    if (progress != NULL)
      fprintf(progress, "ease: lambda %g: validation ndcg@10 %.4f\n", (double)grid[g], m.ndcg);
    if (m.ndcg > best_ndcg) {
      best_ndcg = m.ndcg;
      *best = grid[g];
    }
  }
  csr_free(&fit);
  csr_free(&val);
  return rc;
}
