/* report.c - see report.h. */
#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recd/err.h"

static void report__row(FILE *fp, const char *name, const model_metrics_t *m) {
  fprintf(fp, "  %-31s %9.4f %9.4f %9.4f %9.4f %9.4f\n", name, m->precision, m->recall,
          m->ndcg, m->map, m->coverage);
}

void report_print(const report_t *r, FILE *fp) {
  for (size_t i = 0; i < r->n_splits; i++) {
    const split_eval_t *e = &r->splits[i];
    fprintf(fp, "hold-out evaluation, %s split (", split_kind_name(e->kind));
    if (e->kind == SPLIT_TIME_CUT)
      fprintf(fp, "the last %.0f%% of the time span", r->holdout * 100);
    else if (e->kind == SPLIT_USER_LATEST)
      fprintf(fp, "each customer's latest %.0f%% of items", r->holdout * 100);
    else
      fprintf(fp, "%.0f%% of each customer's items", r->holdout * 100);
    fprintf(fp, ", %llu customers, %.1f s), cut-off 10:\n", (unsigned long long)e->users,
            e->seconds);
    fprintf(fp, "  %-31s %9s %9s %9s %9s %9s\n", "", "precision", "recall", "ndcg", "map",
            "coverage");
    char name[40];
    snprintf(name, sizeof name, "recd (%s)", model_serves_name(e->recd_serves));
    report__row(fp, name, &e->recd);
    report__row(fp, "als", &e->als);
    if (e->have_tuned) {
      snprintf(name, sizeof name, "recd --tune (%s)", model_serves_name(e->tuned_serves));
      report__row(fp, name, &e->tuned);
    }
    report__row(fp, "popularity", &e->popularity);
    if (e->have_recent)
      report__row(fp, "recent popularity", &e->recent);
    if (e->have_ease)
      report__row(fp, "ease", &e->ease);
    else if (e->ease_skipped)
      fprintf(fp, "  ease: not run (%s)\n", e->ease_skipped);
  }
}

/* JSON string body with the escapes RFC 8259 requires. */
static void report__json_str(FILE *fp, const char *s) {
  fputc('"', fp);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(fp, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(fp, "\\u%04x", *p);
    else
      fputc(*p, fp);
  }
  fputc('"', fp);
}

static void report__metrics(FILE *fp, const model_metrics_t *m) {
  fprintf(fp,
          "{\"precision@10\": %.6f, \"recall@10\": %.6f, \"ndcg@10\": %.6f, "
          "\"map@10\": %.6f, \"coverage\": %.6f}",
          m->precision, m->recall, m->ndcg, m->map, m->coverage);
}

int report_write_json(const report_t *r, const char *path, char *errbuf) {
  size_t n = strlen(path);
  char *tmp = malloc(n + 16);
  if (tmp == NULL)
    return RECD_ENOMEM;
  snprintf(tmp, n + 16, "%s.tmp%ld", path, (long)getpid());
  FILE *fp = fopen(tmp, "w");
  if (fp == NULL) {
    free(tmp);
    return recd_errf(errbuf, RECD_EIO, "cannot write report %s", path);
  }
  const params_t *p = &r->params;
  fprintf(fp, "{\n  \"source\": ");
  report__json_str(fp, r->source);
  fprintf(fp, ",\n  \"model\": ");
  report__metrics(fp, &r->model);
  fprintf(fp, ",\n  \"popularity\": ");
  report__metrics(fp, &r->popularity);
  if (r->have_ease) {
    fprintf(fp, ",\n  \"ease\": ");
    report__metrics(fp, &r->ease);
    fprintf(fp, ",\n  \"ease_lambda\": %g,\n  \"ease_seconds\": %.3f", (double)r->ease_lambda,
            r->ease_seconds);
  }
  fprintf(fp, ",\n  \"primary_split\": \"%s\",\n  \"serves\": \"%s\",\n"
          "  \"half_life_days\": %g,\n  \"tuned_at\": %lld,\n  \"timestamps\": %s,\n"
          "  \"evaluation_seconds\": %.3f",
          r->n_splits ? split_kind_name(r->splits[0].kind) : "none", model_serves_name(r->serves),
          r->half_life_days, (long long)r->tuned_at, r->timed ? "true" : "false",
          r->evaluation_seconds);
  if (r->have_tune)
    fprintf(fp, ",\n  \"tune\": {\"trials\": %u, \"seconds\": %.3f, \"validation_users\": %llu, "
            "\"best_ndcg@10\": %.6f, \"defaults_ndcg@10\": %.6f}",
            r->tune.trials, r->tune.seconds, (unsigned long long)r->tune.users, r->tune.best_ndcg,
            r->tune.start_ndcg);
  if (r->have_validation) {
    fprintf(fp, ",\n  \"validation\": {\"users\": %llu, \"model_ndcg@10\": %.6f, "
            "\"popularity_ndcg@10\": %.6f", (unsigned long long)r->validation.users,
            r->validation.best_ndcg, r->validation.pop_ndcg);
    if (r->validation.have_recent)
      fprintf(fp, ", \"recent_popularity_ndcg@10\": %.6f", r->validation.recent_ndcg);
    fprintf(fp, "}");
  }
  fprintf(fp, ",\n  \"splits\": {");
  for (size_t i = 0; i < r->n_splits; i++) {
    const split_eval_t *e = &r->splits[i];
    fprintf(fp, "%s\n    \"%s\": {\"users\": %llu, \"train_interactions\": %llu, "
            "\"test_pairs\": %llu, \"cut\": %lld, \"seconds\": %.3f,\n      \"recd_serves\": \"%s\", "
            "\"recd\": ", i ? "," : "", split_kind_name(e->kind), (unsigned long long)e->users,
            (unsigned long long)e->train_events, (unsigned long long)e->test_pairs,
            (long long)e->cut, e->seconds, model_serves_name(e->recd_serves));
    report__metrics(fp, &e->recd);
    fprintf(fp, ",\n      \"als\": ");
    report__metrics(fp, &e->als);
    if (e->have_tuned) {
      const params_t *tp = &e->tune.best.params;
      fprintf(fp, ",\n      \"tuned_serves\": \"%s\", \"tuned_params\": {\"factors\": %u, "
              "\"iterations\": %u, \"alpha\": %g, \"lambda\": %g, \"reg_exponent\": %g, "
              "\"half_life_days\": %g, \"trials\": %u, \"seconds\": %.3f}, \"tuned\": ",
              model_serves_name(e->tuned_serves), tp->factors, tp->iterations,
              (double)tp->alpha, (double)tp->lambda, (double)tp->reg_exponent,
              e->tune.best.half_life_days, e->tune.trials, e->tune.seconds);
      report__metrics(fp, &e->tuned);
    }
    fprintf(fp, ",\n      \"popularity\": ");
    report__metrics(fp, &e->popularity);
    if (e->have_recent) {
      fprintf(fp, ",\n      \"recent_popularity\": ");
      report__metrics(fp, &e->recent);
    }
    if (e->have_ease) {
      fprintf(fp, ",\n      \"ease\": ");
      report__metrics(fp, &e->ease);
      fprintf(fp, ", \"ease_lambda\": %g", (double)e->ease_lambda);
    }
    fprintf(fp, "}");
  }
  fprintf(fp, "%s}", r->n_splits ? "\n  " : "");
  fprintf(fp,
          ",\n  \"train_seconds\": %.3f,\n  \"holdout_train_seconds\": %.3f,\n"
          "  \"seconds_per_iteration\": %.4f,\n  \"threads\": %u,\n"
          "  \"factors\": %u,\n  \"iterations\": %u,\n  \"lambda\": %g,\n  \"alpha\": %g,\n"
          "  \"confidence\": \"%s\",\n  \"eps\": %g,\n  \"reg_exponent\": %g,\n"
          "  \"cg_steps\": %u,\n  \"seed\": %llu,\n  \"holdout\": %g,\n"
          "  \"evaluated_users\": %llu,\n  \"users\": %llu,\n  \"items\": %llu,\n"
          "  \"interactions\": %llu\n}\n",
          r->train_seconds, r->holdout_train_seconds, r->seconds_per_iteration, r->threads,
          p->factors, p->iterations, (double)p->lambda, (double)p->alpha,
          p->conf_mode == PARAMS_CONF_LOG ? "log" : "linear", (double)p->eps,
          (double)p->reg_exponent, p->cg_steps, (unsigned long long)p->seed, r->holdout,
          (unsigned long long)r->eval_users, (unsigned long long)r->users,
          (unsigned long long)r->items, (unsigned long long)r->interactions);
  int bad = ferror(fp) != 0;
  bad |= fclose(fp) != 0;
  if (bad || rename(tmp, path) != 0) {
    unlink(tmp);
    free(tmp);
    return recd_errf(errbuf, RECD_EIO, "cannot write report %s", path);
  }
  free(tmp);
  return 0;
}
