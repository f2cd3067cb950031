/* eval.c - hold-out split and ranking metrics (see eval.h). */
#include "recd/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/err.h"
#include "recd/rng.h"
#include "recd/score.h"

/* Allocates a CSR of the given shape with room for nnz entries. */
static int eval__csr_alloc(csr_t *m, uint32_t rows, uint32_t cols, uint64_t nnz) {
  memset(m, 0, sizeof *m);
  m->n_rows = rows;
  m->n_cols = cols;
  m->ptr = calloc((size_t)rows + 1, sizeof *m->ptr);
  m->idx = malloc((size_t)(nnz ? nnz : 1) * sizeof *m->idx);
  m->val = malloc((size_t)(nnz ? nnz : 1) * sizeof *m->val);
  if (m->ptr == NULL || m->idx == NULL || m->val == NULL) {
    csr_free(m);
    return RECD_ENOMEM;
  }
  return 0;
}

int eval_holdout_split(const csr_t *in, double fraction, uint64_t seed,
                       csr_t *train, csr_t *test) {
  uint64_t nnz = in->ptr[in->n_rows];
  if (!(fraction > 0.0 && fraction < 1.0))
    return RECD_EINVAL;
  if (eval__csr_alloc(train, in->n_rows, in->n_cols, nnz) != 0)
    return RECD_ENOMEM;
  if (eval__csr_alloc(test, in->n_rows, in->n_cols, nnz) != 0) {
    csr_free(train);
    return RECD_ENOMEM;
  }
  size_t max_row = 0;
  for (uint32_t u = 0; u < in->n_rows; u++)
    if (in->ptr[u + 1] - in->ptr[u] > max_row)
      max_row = (size_t)(in->ptr[u + 1] - in->ptr[u]);
  uint8_t *held = malloc(max_row ? max_row : 1);
  uint32_t *perm = malloc((max_row ? max_row : 1) * sizeof *perm);
  if (held == NULL || perm == NULL) {
    free(held);
    free(perm);
    csr_free(train);
    csr_free(test);
    return RECD_ENOMEM;
  }
  rng_t r;
  rng_seed(&r, seed);
  uint64_t ntr = 0, nte = 0;
  for (uint32_t u = 0; u < in->n_rows; u++) {
    const uint64_t b = in->ptr[u];
    const size_t n = (size_t)(in->ptr[u + 1] - b);
    memset(held, 0, n);
    if (n >= 2) {
      size_t h = (size_t)llround(fraction * (double)n);
      h = h < 1 ? 1 : h > n - 1 ? n - 1 : h;
      /* Partial Fisher-Yates: the first h of a random permutation. */
      for (size_t j = 0; j < n; j++)
        perm[j] = (uint32_t)j;
      for (size_t j = 0; j < h; j++) {
        size_t pick = j + (size_t)rng_below(&r, n - j);
        uint32_t t = perm[j];
        perm[j] = perm[pick];
        perm[pick] = t;
        held[perm[j]] = 1;
      }
    }
    /* Copy in column order so both outputs keep sorted rows. */
    for (size_t j = 0; j < n; j++) {
      if (held[j]) {
        test->idx[nte] = in->idx[b + j];
        test->val[nte++] = in->val[b + j];
      } else {
        train->idx[ntr] = in->idx[b + j];
        train->val[ntr++] = in->val[b + j];
      }
    }
    train->ptr[u + 1] = ntr;
    test->ptr[u + 1] = nte;
  }
  free(held);
  free(perm);
  return 0;
}

int eval_ranking(const csr_t *train, const csr_t *test, eval_score_fn fn,
                 void *ctx, model_metrics_t *out, uint64_t *n_users) {
  const uint32_t n_items = train->n_cols;
  memset(out, 0, sizeof *out);
  float *scores = malloc((size_t)(n_items ? n_items : 1) * sizeof *scores);
  uint8_t *shown = calloc(n_items ? n_items : 1, 1);
  if (scores == NULL || shown == NULL) {
    free(scores);
    free(shown);
    return RECD_ENOMEM;
  }
  /* log2(rank + 2) discounts, rank 0-based. */
  double disc[EVAL_CUTOFF];
  for (int j = 0; j < EVAL_CUTOFF; j++)
    disc[j] = 1.0 / log2((double)j + 2.0);

  uint64_t users = 0;
  double sp = 0, sr = 0, sn = 0, sm = 0;
  int rc = 0;
  for (uint32_t u = 0; u < test->n_rows && rc == 0; u++) {
    const uint64_t tb = test->ptr[u], te = test->ptr[u + 1];
    if (te == tb)
      continue;
    const uint64_t b = train->ptr[u], e = train->ptr[u + 1];
    rc = fn(ctx, train->idx + b, train->val + b, (size_t)(e - b), scores);
    if (rc != 0)
      break;
    /* Past items are never recommended: exactly the daemon's default. */
    topk_filter_t f = {.exclude = train->idx + b, .n_exclude = (size_t)(e - b)};
    uint32_t top[EVAL_CUTOFF];
    size_t got = topk_select(scores, n_items, &f, EVAL_CUTOFF, top, NULL);
    const size_t n_test = (size_t)(te - tb);
    double hits = 0, dcg = 0, ap = 0, idcg = 0;
    for (size_t j = 0; j < got; j++) {
      shown[top[j]] = 1;
      /* Test rows are sorted: binary search for membership. */
      const uint32_t *lo = test->idx + tb;
      size_t a = 0, z = n_test;
      while (a < z) {
        size_t mid = (a + z) / 2;
        if (lo[mid] < top[j])
          a = mid + 1;
        else
          z = mid;
      }
      if (a < n_test && lo[a] == top[j]) {
        hits += 1;
        dcg += disc[j];
        ap += hits / (double)(j + 1);
      }
    }
    size_t ideal = n_test < EVAL_CUTOFF ? n_test : EVAL_CUTOFF;
    for (size_t j = 0; j < ideal; j++)
      idcg += disc[j];
    sp += hits / EVAL_CUTOFF;
    sr += hits / (double)n_test;
    sn += dcg / idcg;
    sm += ap / (double)ideal;
    users++;
  }
  if (rc == 0 && users > 0) {
    out->precision = sp / (double)users;
    out->recall = sr / (double)users;
    out->ndcg = sn / (double)users;
    out->map = sm / (double)users;
    size_t c = 0;
    for (uint32_t i = 0; i < n_items; i++)
      c += shown[i];
    out->coverage = n_items ? (double)c / n_items : 0.0;
  }
  if (n_users != NULL)
    *n_users = users;
  free(scores);
  free(shown);
  return rc;
}

void eval_popularity(const csr_t *by_item, float *pop) {
  for (uint32_t i = 0; i < by_item->n_rows; i++)
    pop[i] = (float)(by_item->ptr[i + 1] - by_item->ptr[i]);
}

int eval_score_popularity(void *ctx, const uint32_t *items, const float *weights,
                          size_t n, float *scores) {
  (void)items, (void)weights, (void)n;
  const eval_popularity_ctx_t *c = ctx;
  memcpy(scores, c->pop, (size_t)c->n_items * sizeof *scores);
  return 0;
}
