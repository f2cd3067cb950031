/* popularity.c - see popularity.h. */
#include "popularity.h"

#include <stdlib.h>
#include <string.h>

#include "recd/err.h"

int popularity_vector(const events_t *ev, uint32_t serves, double recent_days, float *y) {
  const uint32_t n = ev->n_items;
  int rc = events_popularity(ev, INT64_MIN, y);
  if (rc != 0)
    return rc;
  if (serves != MODEL_SERVES_RECENT_POPULARITY) {
    /* + 1: an item without customers in this part of the data (possible in
     * a split) still gets a positive factor. */
    for (uint32_t i = 0; i < n; i++)
      y[i] += 1.0f;
    return 0;
  }
  if (!ev->has_time)
    return RECD_EINVAL;
  float *recent = malloc((size_t)(n ? n : 1) * sizeof *recent);
  if (recent == NULL)
    return RECD_ENOMEM;
  const int64_t since = events_t_max(ev) - (int64_t)(recent_days * 86400.0);
  rc = events_popularity(ev, since, recent);
  if (rc != 0) {
    free(recent);
    return rc;
  }
  float most = 0;
  for (uint32_t i = 0; i < n; i++)
    most = y[i] > most ? y[i] : most;
  /* Recent customers first; plain popularity only orders equal recent
   * counts: its share stays below 1. */
  for (uint32_t i = 0; i < n; i++)
    y[i] = recent[i] + (y[i] + 1.0f) / (most + 2.0f);
  free(recent);
  return 0;
}

int popularity_factors(const float *y, uint32_t n_items, als_factors_t *f, params_t *p) {
  *p = (params_t){.factors = 1, .iterations = 0, .conf_mode = PARAMS_CONF_LOG, .cg_steps = 0,
                  .lambda = 1.0f, .alpha = 1.0f, .eps = 1.0f, .reg_exponent = 0.0f,
                  .seed = p->seed};
  int rc = als_factors_init(f, 0, n_items, p);
  if (rc != 0)
    return rc;
  for (uint32_t i = 0; i < n_items; i++)
    f->Y[(size_t)i * f->stride] = y[i];
  return 0;
}

int popularity_evaluate(const events_t *train, const csr_t *train_raw, const csr_t *test,
                        uint32_t serves, double recent_days, model_metrics_t *m,
                        char *errbuf) {
  const uint32_t n = train->n_items;
  float *y = malloc((size_t)(n ? n : 1) * sizeof *y);
  if (y == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  int rc = popularity_vector(train, serves, recent_days, y);
  if (rc == 0) {
    eval_popularity_ctx_t pc = {.pop = y, .n_items = n};
    rc = eval_ranking(train_raw, test, eval_score_popularity, &pc, m, NULL);
  }
  free(y);
  if (rc != 0)
    recd_errf(errbuf, rc, "evaluating %s: %s", model_serves_name(serves), recd_strerror(rc));
  return rc;
}
