/* tune.c - see tune.h. */
#include "tune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/clock.h"
#include "recd/err.h"
#include "recd/rng.h"
#include "popularity.h"

/* The discrete settings, as doubles so that one nearest-neighbour step
 * serves them all. */
static const double tune__factors[] = {32, 64, 128, 256};
static const double tune__iters[] = {5, 8, 12, 15, 20};
static const double tune__nu[] = {0, 0.25, 0.5, 0.75, 1};
static const double tune__half_life[] = {0, 14, 30, 90, 180, 365};
#define TUNE__N(a) (sizeof(a) / sizeof((a)[0]))
/* Share of the trial budget drawn at random before the local search. */
#define TUNE__RANDOM_SHARE 0.6

static double tune__log_uniform(rng_t *r, double lo, double hi) {
  return exp(log(lo) + rng_uniform(r) * (log(hi) - log(lo)));
}

/* Index of the entry of a closest to v. */
static size_t tune__nearest(const double *a, size_t n, double v) {
  size_t best = 0;
  for (size_t i = 1; i < n; i++)
    if (fabs(a[i] - v) < fabs(a[best] - v))
      best = i;
  return best;
}

/* A neighbour of v in a[0, n): one step up or down, at random. */
static double tune__neighbour(rng_t *r, const double *a, size_t n, double v) {
  size_t i = tune__nearest(a, n, v);
  if (n < 2)
    return a[i];
  if (i == 0)
    return a[1];
  if (i == n - 1)
    return a[n - 2];
  return a[rng_below(r, 2) ? i + 1 : i - 1];
}

static void tune__random(rng_t *r, int timed, recipe_t *c) {
  c->params.factors = (uint32_t)tune__factors[rng_below(r, TUNE__N(tune__factors))];
  c->params.iterations = (uint32_t)tune__iters[rng_below(r, TUNE__N(tune__iters))];
  c->params.alpha = (float)tune__log_uniform(r, 0.05, 20);
  c->params.reg_exponent = (float)tune__nu[rng_below(r, TUNE__N(tune__nu))];
  c->params.lambda = (float)(tune__log_uniform(r, 0.01, 1) *
                             pow(100.0, 1.0 - c->params.reg_exponent));
  c->half_life_days = timed ? tune__half_life[rng_below(r, TUNE__N(tune__half_life))] : 0;
}

static void tune__perturb(rng_t *r, int timed, const recipe_t *best, recipe_t *c) {
  *c = *best;
  c->params.alpha = (float)(best->params.alpha * exp(0.5 * rng_normal(r)));
  c->params.lambda = (float)(best->params.lambda * exp(0.5 * rng_normal(r)));
  /* Each discrete setting moves with probability 1/3. */
  if (rng_below(r, 3) == 0)
    c->params.factors = (uint32_t)tune__neighbour(r, tune__factors, TUNE__N(tune__factors),
                                                  best->params.factors);
  if (rng_below(r, 3) == 0)
    c->params.iterations = (uint32_t)tune__neighbour(r, tune__iters, TUNE__N(tune__iters),
                                                     best->params.iterations);
  if (rng_below(r, 3) == 0) {
    float nu = (float)tune__neighbour(r, tune__nu, TUNE__N(tune__nu), best->params.reg_exponent);
    /* Keep lambda * n^nu about the same for a typical row of ~30. */
    c->params.lambda *= powf(30.0f, best->params.reg_exponent - nu);
    c->params.reg_exponent = nu;
  }
  if (timed && rng_below(r, 3) == 0)
    c->half_life_days =
        tune__neighbour(r, tune__half_life, TUNE__N(tune__half_life), best->half_life_days);
  /* Stay inside what recd-train accepts on the command line. */
  if (c->params.alpha > 1000.0f)
    c->params.alpha = 1000.0f;
  if (c->params.lambda < 1e-6f)
    c->params.lambda = 1e-6f;
}

static void tune__progress(const tune_opts_t *o, uint32_t done, double elapsed, double best) {
  if (!o->progress_bar || o->log == NULL)
    return;
  const int width = 30;
  int fill = (int)((double)done / o->trials * width);
  if (o->seconds > 0 && elapsed / o->seconds * width > fill)
    fill = (int)(elapsed / o->seconds * width);
  if (fill > width)
    fill = width;
  fprintf(o->log, "\r[%.*s%.*s] %u/%u trials  %.0f s  best ndcg@10 %.4f", fill,
          "##############################", width - fill, "..............................",
          done, o->trials, elapsed, best);
  fflush(o->log);
}

static void tune__clear(const tune_opts_t *o) {
  if (o->progress_bar && o->log != NULL)
    fputs("\r\033[K", o->log);
}

static void tune__row(const tune_opts_t *o, uint32_t i, const recipe_t *c, double ndcg,
                      double secs, int is_best) {
  if (o->log == NULL)
    return;
  char hl[16];
  if (c->half_life_days > 0)
    snprintf(hl, sizeof hl, "%.0f d", c->half_life_days);
  else
    snprintf(hl, sizeof hl, "off");
  tune__clear(o);
  fprintf(o->log, "  %5u %7u %5u %8.3g %8.3g %5.2f %9s %8.4f %7.1f%s\n", i, c->params.factors,
          c->params.iterations, (double)c->params.alpha, (double)c->params.lambda,
          (double)c->params.reg_exponent, hl, ndcg, secs, is_best ? " *" : "");
  fflush(o->log);
}

/* The validation split and what every trial needs of it. */
typedef struct tune_split {
  events_t train;
  csr_t test, train_raw;
} tune_split_t;

static void tune__split_free(tune_split_t *s) {
  events_free(&s->train);
  csr_free(&s->test);
  csr_free(&s->train_raw);
}

static int tune__popularity(const tune_split_t *s, uint32_t serves, const tune_opts_t *o,
                            double *ndcg, char *errbuf) {
  model_metrics_t m;
  int rc = popularity_evaluate(&s->train, &s->train_raw, &s->test, serves, o->recent_days, &m,
                               errbuf);
  if (rc == 0)
    *ndcg = m.ndcg;
  return rc;
}

static int tune__trial(const tune_split_t *s, const recipe_t *c, const tune_opts_t *o,
                       double *ndcg, uint64_t *users, char *errbuf) {
  als_factors_t f;
  int rc = recipe_fit(c, &s->train, o->threads, NULL, 0, &f, NULL, errbuf);
  if (rc != 0)
    return rc;
  model_metrics_t m;
  rc = recipe_score(&f, c, &s->train, &s->test, o->history_limit, &m, users, errbuf);
  als_factors_free(&f);
  if (rc == 0)
    *ndcg = m.ndcg;
  return rc;
}

int tune_run(const events_t *ev, const recipe_t *start, const tune_opts_t *o,
             tune_result_t *res, char *errbuf) {
  memset(res, 0, sizeof *res);
  const double t0 = recd_clock_seconds();
  tune_split_t s;
  memset(&s, 0, sizeof s);
  int64_t cut;
  /* Its own stream: the validation split must differ from the evaluation's
   * split of the same seed when ev is itself a training part. */
  int rc = events_split(ev, o->kind, o->fraction, o->seed ^ 0x76616c6964ull, &s.train, &s.test,
                        &cut, errbuf);
  if (rc != 0)
    return rc;
  if (s.test.ptr[s.test.n_rows] == 0) {
    tune__split_free(&s);
    return recd_errf(errbuf, RECD_ENOTFOUND, "the %s validation split holds nothing out (no "
                     "customer has interactions on both sides)", split_kind_name(o->kind));
  }
  if ((rc = events_to_csr(&s.train, 0, 0, &s.train_raw)) != 0) {
    tune__split_free(&s);
    return recd_errf(errbuf, rc, "validation split: %s", recd_strerror(rc));
  }
  const int timed = ev->has_time;
  res->serves = MODEL_SERVES_ALS;
  if (o->fallback) {
    rc = tune__popularity(&s, MODEL_SERVES_POPULARITY, o, &res->pop_ndcg, errbuf);
    if (rc == 0 && timed) {
      rc = tune__popularity(&s, MODEL_SERVES_RECENT_POPULARITY, o, &res->recent_ndcg, errbuf);
      res->have_recent = rc == 0;
    }
  }
  if (rc == 0 && o->log != NULL && o->trials > 1) {
    fprintf(o->log, "tuning: %s validation split of %llu interactions, up to %u trials",
            split_kind_name(o->kind), (unsigned long long)ev->n, o->trials);
    if (o->seconds > 0)
      fprintf(o->log, " or %.0f s", o->seconds);
    fprintf(o->log, "\n  trial factors iters    alpha   lambda    nu half-life  ndcg@10 seconds\n");
  }
  rng_t r;
  rng_seed(&r, o->seed);
  const uint32_t n_random = (uint32_t)ceil(o->trials * TUNE__RANDOM_SHARE);
  recipe_t c = *start;
  for (uint32_t i = 0; rc == 0 && i < o->trials; i++) {
    if (i > 0 && o->seconds > 0 && recd_clock_seconds() - t0 >= o->seconds)
      break;
    if (i > 0 && i < n_random)
      tune__random(&r, timed, &c);
    else if (i > 0)
      tune__perturb(&r, timed, &res->best, &c);
    const unsigned fx = o->fixed;
    if (fx & TUNE_FIX_FACTORS) c.params.factors = start->params.factors;
    if (fx & TUNE_FIX_ITERATIONS) c.params.iterations = start->params.iterations;
    if (fx & TUNE_FIX_ALPHA) c.params.alpha = start->params.alpha;
    if (fx & TUNE_FIX_LAMBDA) c.params.lambda = start->params.lambda;
    if (fx & TUNE_FIX_REG_EXPONENT) c.params.reg_exponent = start->params.reg_exponent;
    if (fx & TUNE_FIX_HALF_LIFE) c.half_life_days = start->half_life_days;
    if (!timed)
      c.half_life_days = 0;
    double ndcg = 0, t1 = recd_clock_seconds();
    uint64_t users = 0;
    rc = tune__trial(&s, &c, o, &ndcg, &users, errbuf);
    if (rc != 0)
      break;
    int better = i == 0 || ndcg > res->best_ndcg;
    if (i == 0) {
      res->start_ndcg = ndcg;
      res->users = users;
    }
    if (better) {
      res->best = c;
      res->best_ndcg = ndcg;
    }
    res->trials = i + 1;
    if (o->trials > 1) {
      tune__row(o, i, &c, ndcg, recd_clock_seconds() - t1, better);
      tune__progress(o, i + 1, recd_clock_seconds() - t0, res->best_ndcg);
    }
  }
  if (o->trials > 1)
    tune__clear(o);
  if (rc == 0 && o->fallback) {
    /* Popularity wins ties: it is the simpler, cheaper answer. */
    double pop = res->pop_ndcg > res->recent_ndcg ? res->pop_ndcg : res->recent_ndcg;
    if (res->best_ndcg <= pop)
      res->serves = res->have_recent && res->recent_ndcg > res->pop_ndcg
                        ? MODEL_SERVES_RECENT_POPULARITY
                        : MODEL_SERVES_POPULARITY;
  }
  res->seconds = recd_clock_seconds() - t0;
  tune__split_free(&s);
  return rc;
}
