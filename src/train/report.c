/* report.c - see report.h. */
#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recd/err.h"

static void report__row(FILE *fp, const char *name, const model_metrics_t *m) {
  fprintf(fp, "  %-11s %9.4f %9.4f %9.4f %9.4f %9.4f\n", name, m->precision, m->recall,
          m->ndcg, m->map, m->coverage);
}

void report_print(const report_t *r, FILE *fp) {
  fprintf(fp, "hold-out evaluation (%.0f%% of each user's items, %llu users), cut-off 10:\n",
          r->holdout * 100, (unsigned long long)r->eval_users);
  fprintf(fp, "  %-11s %9s %9s %9s %9s %9s\n", "", "precision", "recall", "ndcg", "map",
          "coverage");
  report__row(fp, "als", &r->model);
  report__row(fp, "popularity", &r->popularity);
  if (r->have_ease)
    report__row(fp, "ease", &r->ease);
  else if (r->ease_skipped)
    fprintf(fp, "  ease: not run (%s)\n", r->ease_skipped);
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
