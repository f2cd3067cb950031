/* gate.c - see gate.h. */
#define _GNU_SOURCE /* strndup */
#include "gate.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recd/csv.h"
#include "recd/err.h"
#include "recd/eval.h"
#include "recd/foldin.h"
#include "recd/score.h"
#include "recd/versions.h"

/* The serving model as a scorer over the split's item space, extended by
 * the items only it knows (indices n_ds.. of the extended space). */
typedef struct served_scorer {
  const model_t *m;
  const float *Y, *G, *pop;
  const params_t *params;
  uint32_t n_s, stride, k, n_ds, n_extra;
  const int64_t *map;    /* split item -> served item, -1: unknown to it */
  const uint32_t *extra; /* extended index n_ds + j -> served item */
  size_t cap;            /* --history-limit */
  uint32_t *hist;
  float *hist_w, *x, *scores;
  foldin_ws_t ws;
} served_scorer_t;

static int gate__score(void *ctx, const uint32_t *items, const float *weights, size_t n,
                       float *out) {
  served_scorer_t *s = ctx;
  size_t known = 0;
  for (size_t j = 0; j < n; j++) {
    int64_t i = s->map[items[j]];
    if (i < 0)
      continue; /* an item newer than the model: recd skips it too */
    s->hist[known] = (uint32_t)i;
    s->hist_w[known++] = weights[j];
  }
  if (known > 0) {
    int rc = foldin_solve(s->Y, s->stride, s->G, s->params, s->hist, s->hist_w, known, s->cap,
                          s->x, NULL, &s->ws);
    if (rc != 0)
      return rc;
    score_items(s->Y, s->stride, s->n_s, s->k, s->x, s->scores);
  } else {
    /* Nothing the model knows: recd answers by popularity. */
    memcpy(s->scores, s->pop, (size_t)s->n_s * sizeof *s->scores);
  }
  for (uint32_t i = 0; i < s->n_ds; i++)
    out[i] = s->map[i] >= 0 ? s->scores[s->map[i]] : -INFINITY; /* never shown */
  for (uint32_t j = 0; j < s->n_extra; j++)
    out[s->n_ds + j] = s->scores[s->extra[j]];
  return 0;
}

static int gate__eval_served(const gate_opts_t *g, const dataset_t *ds, const csr_t *train,
                             const csr_t *test, uint32_t history_limit, gate_result_t *res,
                             char *errbuf) {
  model_t *m;
  char err[RECD_ERRLEN];
  int rc = model_load(&m, g->compare, err);
  if (rc != 0)
    return recd_errf(errbuf, rc, "--compare: %s", err);
  res->served_interactions = model_meta(m)->n_interactions;
  served_scorer_t s = {.m = m, .Y = model_item_factors(m), .G = model_gram(m),
                       .pop = model_popularity(m), .params = model_params(m),
                       .n_s = model_n_items(m), .stride = model_stride(m),
                       .k = model_factors(m), .n_ds = train->n_cols, .cap = history_limit};
  int64_t *map = malloc((size_t)(s.n_ds ? s.n_ds : 1) * sizeof *map);
  uint8_t *known = calloc(s.n_s, 1);
  uint32_t *extra = malloc((size_t)s.n_s * sizeof *extra);
  size_t longest = 1;
  for (uint32_t u = 0; u < train->n_rows; u++)
    if (train->ptr[u + 1] - train->ptr[u] > longest)
      longest = (size_t)(train->ptr[u + 1] - train->ptr[u]);
  s.hist = malloc(longest * sizeof *s.hist);
  s.hist_w = malloc(longest * sizeof *s.hist_w);
  s.x = calloc(s.stride, sizeof *s.x);
  s.scores = malloc((size_t)s.n_s * sizeof *s.scores);
  rc = map && known && extra && s.hist && s.hist_w && s.x && s.scores &&
               foldin_ws_init(&s.ws, s.k) == 0
           ? 0
           : RECD_ENOMEM;
  if (rc == 0) {
    for (uint32_t i = 0; i < s.n_ds; i++) {
      size_t len;
      const char *id = idmap_key(ds->items, i, &len);
      map[i] = model_find_item(m, id, len);
      if (map[i] >= 0)
        known[map[i]] = 1;
    }
    for (uint32_t i = 0; i < s.n_s; i++)
      if (!known[i])
        extra[s.n_extra++] = i;
    s.map = map;
    s.extra = extra;
    /* The same split, seen through a catalogue of n_ds + n_extra items:
     * only n_cols differs (train and test index the split's items). */
    csr_t tr = *train, te = *test;
    tr.n_cols = te.n_cols = s.n_ds + s.n_extra;
    rc = eval_ranking(&tr, &te, gate__score, &s, &res->served, &res->served_users);
    if (rc != 0)
      recd_errf(errbuf, rc, "evaluating %s on the hold-out: %s", g->compare, recd_strerror(rc));
    else
      res->have_served = 1;
  } else {
    recd_errf(errbuf, rc, "out of memory evaluating %s", g->compare);
  }
  foldin_ws_free(&s.ws);
  free(map);
  free(known);
  free(extra);
  free(s.hist);
  free(s.hist_w);
  free(s.x);
  free(s.scores);
  model_free(m);
  return rc;
}

int gate_compare(const gate_opts_t *g, const dataset_t *ds, double fraction, uint64_t seed,
                 uint32_t history_limit, eval_score_fn new_fn, void *new_ctx,
                 gate_result_t *res, char *errbuf) {
  if (g->compare == NULL)
    return 0;
  res->fresh_interactions = ds->by_user.ptr[ds->by_user.n_rows];
  csr_t train, test;
  int rc = eval_holdout_split(&ds->by_user, fraction, seed, &train, &test);
  if (rc != 0)
    return recd_errf(errbuf, rc, "hold-out split: %s", recd_strerror(rc));
  rc = eval_ranking(&train, &test, new_fn, new_ctx, &res->fresh, NULL);
  if (rc != 0)
    recd_errf(errbuf, rc, "evaluating the new model on the hold-out: %s", recd_strerror(rc));
  else
    rc = gate__eval_served(g, ds, &train, &test, history_limit, res, errbuf);
  csr_free(&train);
  csr_free(&test);
  return rc;
}

/* The split of a history line without one: files written before the
 * temporal splits existed hold random-split figures. */
#define GATE__OLD_SPLIT "random"

/* One history line: "<unix seconds> <version> <ndcg@10> [<split>]". 0 or -1.
 * *split points into line (GATE__OLD_SPLIT when absent). */
static int gate__parse_line(char *line, int64_t *t, char *version, size_t vcap, double *ndcg,
                            const char **split) {
  char *save = NULL;
  char *a = strtok_r(line, " \t\r\n", &save);
  char *b = a ? strtok_r(NULL, " \t\r\n", &save) : NULL;
  char *c = b ? strtok_r(NULL, " \t\r\n", &save) : NULL;
  char *d = c ? strtok_r(NULL, " \t\r\n", &save) : NULL;
  float f;
  *split = d != NULL ? d : GATE__OLD_SPLIT;
  if (c == NULL || (d != NULL && strtok_r(NULL, " \t\r\n", &save) != NULL) ||
      csv_parse_i64(a, strlen(a), t) != 0 || strlen(b) >= vcap ||
      csv_parse_float(c, strlen(c), &f) != 0 || !(f >= 0 && f <= 1))
    return -1;
  snprintf(version, vcap, "%s", b);
  /* The float parser is the CSV one (strict, whole field); the value is
   * re-read as a double so that 6 printed decimals survive. */
  *ndcg = strtod(c, NULL);
  return 0;
}

static const char *gate__split(const gate_opts_t *g) {
  return g->split != NULL ? g->split : GATE__OLD_SPLIT;
}

int gate_read_history(const gate_opts_t *g, int64_t now, gate_result_t *res, char *errbuf) {
  if (g->history == NULL)
    return 0;
  FILE *f = fopen(g->history, "r");
  if (f == NULL) {
    if (errno == ENOENT)
      return 0; /* the first published model starts it */
    return recd_errf(errbuf, RECD_EIO, "--history %s: %s", g->history, strerror(errno));
  }
  char line[512];
  int rc = 0;
  unsigned long no = 0;
  const int64_t since = now - (int64_t)g->drift_days * 86400;
  while (fgets(line, sizeof line, f) != NULL) {
    no++;
    if (line[strspn(line, " \t\r\n")] == '\0' || line[0] == '#')
      continue;
    int64_t t;
    char v[64];
    double n;
    const char *split;
    if (strchr(line, '\n') == NULL && !feof(f)) {
      rc = recd_errf(errbuf, RECD_EINVAL, "%s:%lu: line too long", g->history, no);
      break;
    }
    if (gate__parse_line(line, &t, v, sizeof v, &n, &split) != 0) {
      rc = recd_errf(errbuf, RECD_EINVAL,
                     "%s:%lu: expected \"<unix seconds> <version> <ndcg@10 in [0, 1]> "
                     "[<split>]\"", g->history, no);
      break;
    }
    /* Figures of another kind of split are not comparable (a time cut is
     * harder than a random hold-out): only the same kind bounds. */
    if (strcmp(split, gate__split(g)) != 0)
      continue;
    if (t >= since && (!res->have_best || n > res->best)) {
      res->have_best = 1;
      res->best = n;
      res->best_at = t;
      snprintf(res->best_version, sizeof res->best_version, "%s", v);
    }
  }
  fclose(f);
  return rc;
}

int gate_check(const gate_opts_t *g, double holdout_ndcg, const gate_result_t *res, FILE *log,
               char *why) {
  why[0] = '\0';
  int refused = 0;
  if (res->have_served) {
    const double fresh = res->fresh.ndcg, bound = (1.0 - g->max_drop) * res->served.ndcg;
    const int ok = fresh >= bound;
    if (log)
      fprintf(log, "gate: ndcg@10 on the same hold-out split (%llu customers): new %.6f, "
                   "serving %.6f (%s); bound (1 - %g) x %.6f = %.6f: %s\n",
              (unsigned long long)res->served_users, fresh, res->served.ndcg, g->compare,
              g->max_drop, res->served.ndcg, bound, ok ? "passed" : "FAILED");
    if (!ok) {
      snprintf(why, RECD_ERRLEN,
               "not published: the new model's ndcg@10 %.6f is below (1 - %g) x %.6f = %.6f, "
               "the serving model's on the same hold-out split",
               fresh, g->max_drop, res->served.ndcg, bound);
      refused = 1;
    }
  }
  if (res->have_served && g->min_data > 0) {
    const double floor = g->min_data * (double)res->served_interactions;
    const int ok = (double)res->fresh_interactions >= floor;
    if (log)
      fprintf(log, "gate: interactions: new data %llu, the serving model's %llu; at least %g x: "
                   "%s\n",
              (unsigned long long)res->fresh_interactions,
              (unsigned long long)res->served_interactions, g->min_data,
              ok ? "passed" : "FAILED");
    if (!ok && !refused) {
      snprintf(why, RECD_ERRLEN,
               "not published: the data has %llu interactions, fewer than %g x the %llu the "
               "serving model was trained on (Redis emptied or truncated?)",
               (unsigned long long)res->fresh_interactions, g->min_data,
               (unsigned long long)res->served_interactions);
      refused = 1;
    }
  }
  const double new_ndcg = holdout_ndcg;
  if (g->history != NULL) {
    if (!res->have_best) {
      if (log)
        fprintf(log, "gate: no model published in the last %u days in %s (%s split): no "
                     "cumulative bound\n", g->drift_days, g->history, gate__split(g));
    } else {
      const double bound = (1.0 - g->max_drift) * res->best;
      const int ok = new_ndcg >= bound;
      if (log)
          fprintf(log, "gate: hold-out ndcg@10: new %.6f, best published in the last %u days "
                     "%.6f (version %s); bound (1 - %g) x %.6f = %.6f: %s\n",
                new_ndcg, g->drift_days, res->best, res->best_version, g->max_drift, res->best,
                bound, ok ? "passed" : "FAILED");
      if (!ok && !refused) {
        snprintf(why, RECD_ERRLEN,
                 "not published: the new model's hold-out ndcg@10 %.6f is below (1 - %g) x "
                 "%.6f = %.6f, the best published in the last %u days (version %s)",
                 new_ndcg, g->max_drift, res->best, bound, g->drift_days, res->best_version);
        refused = 1;
      }
    }
  }
  return refused;
}

int gate_record(const gate_opts_t *g, int64_t now, const char *version, double ndcg,
                char *errbuf) {
  if (g->history == NULL)
    return 0;
  size_t hl = strlen(g->history);
  char *tmp = malloc(hl + 8);
  if (tmp == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  snprintf(tmp, hl + 8, "%s.new", g->history);
  FILE *out = fopen(tmp, "w");
  if (out == NULL) {
    int e = errno;
    free(tmp);
    return recd_errf(errbuf, RECD_EIO, "--history %s: cannot write %s.new: %s", g->history,
                     g->history, strerror(e));
  }
  /* Entries older than 90 days are dropped: the file stays small whatever
   * the window. Lines that do not parse were refused by
   * gate_read_history() before anything was trained. */
  FILE *in = fopen(g->history, "r");
  char line[512], copy[512];
  if (in != NULL) {
    while (fgets(line, sizeof line, in) != NULL) {
      int64_t t;
      char v[64];
      double n;
      const char *split;
      snprintf(copy, sizeof copy, "%s", line);
      if (gate__parse_line(copy, &t, v, sizeof v, &n, &split) == 0 && t >= now - 90 * 86400LL)
        fputs(line, out);
    }
    fclose(in);
  }
  fprintf(out, "%lld %s %.6f %s\n", (long long)now, version, ndcg, gate__split(g));
  int bad = ferror(out) || fflush(out) != 0 || fsync(fileno(out)) != 0;
  bad = fclose(out) != 0 || bad;
  if (bad || rename(tmp, g->history) != 0) {
    int e = errno;
    unlink(tmp);
    free(tmp);
    return recd_errf(errbuf, RECD_EIO, "--history %s: cannot update it: %s", g->history,
                     strerror(e));
  }
  free(tmp);
  return 0;
}
