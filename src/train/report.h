/* report.h - recd-train's evaluation report: a table on stderr and JSON. */
#ifndef RECD_TRAIN_REPORT_H
#define RECD_TRAIN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "recd/model.h"

typedef struct report {
  const char *source;      /* CSV path or "redis://host:port" */
  params_t params;
  uint32_t threads;
  uint64_t users, items, interactions;
  double holdout;          /* fraction, 0 = no evaluation */
  uint64_t eval_users;
  double train_seconds;    /* the final model's training */
  double holdout_train_seconds;
  double seconds_per_iteration;
  model_metrics_t model, popularity;
  int have_ease;
  model_metrics_t ease;
  float ease_lambda;
  double ease_seconds;
  const char *ease_skipped; /* why EASE did not run, or NULL */
} report_t;

/* Prints the comparison table (model, popularity, EASE) to fp. */
void report_print(const report_t *r, FILE *fp);

/* Writes the report as JSON to path (atomically: temp file + rename). */
int report_write_json(const report_t *r, const char *path, char *errbuf);

#endif
