/* recipe.c - see recipe.h. */
#include "recipe.h"

#include <stdlib.h>

#include "recd/age.h"

#include "recd/clock.h"
#include "recd/err.h"
#include "scorer.h"

int recipe_fit(const recipe_t *r, const events_t *ev, uint32_t threads, FILE *progress,
               int loss, als_factors_t *f, double *seconds, char *errbuf) {
  csr_t by_user, by_item;
  const double h = ev->has_time ? r->half_life_days * 86400.0 : 0.0;
  int rc = events_to_csr(ev, h, events_t_max(ev), &by_user);
  if (rc != 0)
    return recd_errf(errbuf, rc, "building the training matrix: %s", recd_strerror(rc));
  if ((rc = csr_transpose(&by_user, &by_item)) != 0) {
    csr_free(&by_user);
    return recd_errf(errbuf, rc, "building the training matrix: %s", recd_strerror(rc));
  }
  rc = als_factors_init(f, by_user.n_rows, by_item.n_rows, &r->params);
  if (rc != 0) {
    recd_errf(errbuf, rc, "cannot allocate factors for %u users x %u items", by_user.n_rows,
              by_item.n_rows);
  } else {
    als_opts_t o = {.params = r->params, .threads = threads, .compute_loss = loss,
                    .progress = progress};
    double t0 = recd_clock_seconds();
    rc = als_train(&by_user, &by_item, &o, f, NULL, NULL, errbuf);
    if (seconds != NULL)
      *seconds = recd_clock_seconds() - t0;
    if (rc != 0)
      als_factors_free(f);
  }
  csr_free(&by_user);
  csr_free(&by_item);
  return rc;
}

int recipe_foldin_matrix(const recipe_t *r, const events_t *ev, csr_t *out) {
  int rc = events_to_csr(ev, 0, 0, out);
  if (rc != 0 || !(r->half_life_days > 0) || !ev->has_time)
    return rc;
  const uint64_t nnz = out->ptr[out->n_rows];
  int64_t *last = malloc((size_t)(nnz ? nnz : 1) * sizeof *last);
  if (last == NULL) {
    csr_free(out);
    return RECD_ENOMEM;
  }
  for (uint64_t j = 0; j < nnz; j++)
    last[j] = AGE_NO_TIME;
  /* The last time of each pair: its entry found by bisection in the row. */
  for (size_t e = 0; e < ev->n; e++) {
    const uint32_t u = ev->user[e], *row = out->idx + out->ptr[u];
    size_t lo = 0, hi = (size_t)(out->ptr[u + 1] - out->ptr[u]);
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (row[mid] < ev->item[e])
        lo = mid + 1;
      else
        hi = mid;
    }
    int64_t *t = &last[out->ptr[u] + lo];
    if (ev->t[e] > *t)
      *t = ev->t[e];
  }
  const double h = r->half_life_days * 86400.0;
  for (uint32_t u = 0; u < out->n_rows; u++) {
    int64_t ref = AGE_NO_TIME;
    for (uint64_t j = out->ptr[u]; j < out->ptr[u + 1]; j++)
      ref = last[j] > ref ? last[j] : ref;
    for (uint64_t j = out->ptr[u]; j < out->ptr[u + 1]; j++)
      out->val[j] = age_weight(out->val[j], last[j], ref, h);
  }
  free(last);
  return 0;
}

int recipe_score(const als_factors_t *f, const recipe_t *r, const events_t *train,
                 const csr_t *test, uint32_t history_limit, model_metrics_t *out,
                 uint64_t *users, char *errbuf) {
  csr_t hist;
  int rc = recipe_foldin_matrix(r, train, &hist);
  if (rc != 0)
    return recd_errf(errbuf, rc, "building the fold-in histories: %s", recd_strerror(rc));
  als_scorer_t s;
  rc = als_scorer_init(&s, f, &r->params, history_limit);
  if (rc != 0) {
    csr_free(&hist);
    return recd_errf(errbuf, rc, "out of memory for the evaluation");
  }
  rc = eval_ranking(&hist, test, als_scorer_score, &s, out, users);
  als_scorer_free(&s);
  csr_free(&hist);
  if (rc != 0)
    recd_errf(errbuf, rc, "evaluation: %s", recd_strerror(rc));
  return rc;
}
