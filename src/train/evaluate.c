/* evaluate.c - see evaluate.h. */
#include "evaluate.h"

#include <stdlib.h>
#include <string.h>

#include "recd/clock.h"
#include "recd/err.h"
#include "recd/eval.h"
#include "popularity.h"

/* OpenBLAS symbol; declared here because cblas.h of some BLAS builds lacks it. */
void openblas_set_num_threads(int num_threads);

static int evaluate__ease(const csr_t *train_raw, const csr_t *test, const evaluate_opts_t *o,
                          split_eval_t *out, char *errbuf) {
  if (o->ease_max_items == 0) {
    out->ease_skipped = "--ease-max-items 0";
    return 0;
  }
  if (train_raw->n_cols > o->ease_max_items) {
    out->ease_skipped = "catalogue larger than --ease-max-items";
    return 0;
  }
  /* EASE is a few big LAPACK calls with nothing else running: here BLAS
   * may have the threads. */
  openblas_set_num_threads((int)o->threads);
  int rc = ease_select_lambda(train_raw, o->fraction, o->seed + 1, o->ease_grid, o->n_ease_grid,
                              &out->ease_lambda, NULL, errbuf);
  float *B = NULL;
  if (rc == 0)
    rc = ease_fit(train_raw, out->ease_lambda, &B, errbuf);
  if (rc == 0) {
    ease_scorer_t es = {.B = B, .n_items = train_raw->n_cols};
    rc = eval_ranking(train_raw, test, ease_score, &es, &out->ease, NULL);
    out->have_ease = rc == 0;
    if (rc != 0)
      recd_errf(errbuf, rc, "evaluating EASE: %s", recd_strerror(rc));
  }
  free(B);
  openblas_set_num_threads(1);
  return rc;
}

/* The metrics of what validation chose to ship: the ALS figures already
 * measured, or the popularity baseline it prefers. */
static const model_metrics_t *evaluate__shipped(const split_eval_t *s, uint32_t serves,
                                                const model_metrics_t *als) {
  if (serves == MODEL_SERVES_POPULARITY)
    return &s->popularity;
  if (serves == MODEL_SERVES_RECENT_POPULARITY)
    return &s->recent;
  return als;
}

int evaluate_split(const events_t *ev, split_kind_t kind, const recipe_t *recipe,
                   const evaluate_opts_t *o, split_eval_t *out, char *errbuf) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  const double t0 = recd_clock_seconds();
  events_t train;
  csr_t test, train_raw;
  int rc = events_split(ev, kind, o->fraction, o->seed, &train, &test, &out->cut, errbuf);
  if (rc != 0)
    return rc;
  if ((rc = events_to_csr(&train, 0, 0, &train_raw)) != 0) {
    events_free(&train);
    csr_free(&test);
    return recd_errf(errbuf, rc, "%s split: %s", split_kind_name(kind), recd_strerror(rc));
  }
  out->train_events = train.n;
  out->test_pairs = test.ptr[test.n_rows];
  if (out->test_pairs == 0) {
    events_free(&train);
    csr_free(&test);
    csr_free(&train_raw);
    return recd_errf(errbuf, RECD_ENOTFOUND, "the %s split holds nothing out (no customer has "
                     "interactions on both sides)", split_kind_name(kind));
  }
  if (o->log != NULL)
    fprintf(o->log, "evaluation (%s split): training on %llu of %llu interactions, %llu "
            "held-out pairs\n", split_kind_name(kind), (unsigned long long)train.n,
            (unsigned long long)ev->n, (unsigned long long)out->test_pairs);
  rc = popularity_evaluate(&train, &train_raw, &test, MODEL_SERVES_POPULARITY, o->recent_days,
                            &out->popularity, errbuf);
  if (rc == 0 && train.has_time) {
    rc = popularity_evaluate(&train, &train_raw, &test, MODEL_SERVES_RECENT_POPULARITY,
                              o->recent_days, &out->recent, errbuf);
    out->have_recent = rc == 0;
  }
  /* Validation on the training part: what would be shipped, and with
   * --tune the search (whose trial 0 is this very recipe). */
  tune_opts_t to = o->tune_opts;
  to.kind = kind;
  to.fraction = o->fraction;
  to.seed = o->seed;
  to.threads = o->threads;
  to.history_limit = o->history_limit;
  to.recent_days = o->recent_days;
  to.fallback = o->fallback;
  if (!o->tune)
    to.trials = 1;
  tune_result_t tr;
  memset(&tr, 0, sizeof tr);
  out->recd_serves = MODEL_SERVES_ALS;
  if (rc == 0 && (o->fallback || o->tune))
    rc = tune_run(&train, recipe, &to, &tr, errbuf);
  if (rc == 0 && o->fallback) {
    double pop = tr.pop_ndcg > tr.recent_ndcg ? tr.pop_ndcg : tr.recent_ndcg;
    if (tr.start_ndcg <= pop)
      out->recd_serves = tr.have_recent && tr.recent_ndcg > tr.pop_ndcg
                             ? MODEL_SERVES_RECENT_POPULARITY
                             : MODEL_SERVES_POPULARITY;
  }
  als_factors_t f;
  if (rc == 0)
    rc = recipe_fit(recipe, &train, o->threads, NULL, 0, &f, &out->als_seconds, errbuf);
  if (rc == 0) {
    rc = recipe_score(&f, recipe, &train, &test, o->history_limit, &out->als, &out->users,
                      errbuf);
    als_factors_free(&f);
  }
  if (rc == 0)
    out->recd = *evaluate__shipped(out, out->recd_serves, &out->als);
  if (rc == 0 && o->tune) {
    out->tune = tr;
    out->tuned_serves = tr.serves;
    if (tr.serves == MODEL_SERVES_ALS) {
      rc = recipe_fit(&tr.best, &train, o->threads, NULL, 0, &f, NULL, errbuf);
      if (rc == 0) {
        rc = recipe_score(&f, &tr.best, &train, &test, o->history_limit, &out->tuned, NULL,
                          errbuf);
        als_factors_free(&f);
      }
    } else {
      out->tuned = *evaluate__shipped(out, tr.serves, NULL);
    }
    out->have_tuned = rc == 0;
  }
  if (rc == 0)
    rc = evaluate__ease(&train_raw, &test, o, out, errbuf);
  events_free(&train);
  csr_free(&test);
  csr_free(&train_raw);
  out->seconds = recd_clock_seconds() - t0;
  return rc;
}
