/* report.h - recd-train's evaluation report: a table on stderr and JSON. */
#ifndef RECD_TRAIN_REPORT_H
#define RECD_TRAIN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "recd/model.h"
#include "evaluate.h"
#include "tune.h"

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
  /* The splits evaluated, the primary one (whose figures are above) first. */
  split_eval_t splits[3];
  size_t n_splits;
  double evaluation_seconds;
  int timed;               /* every interaction has a time */
  uint32_t serves;         /* MODEL_SERVES_* of the model shipped */
  double half_life_days;
  int64_t tuned_at;
  int have_tune;           /* tune: the search whose best was shipped ... */
  split_kind_t tune_kind;  /* ... on a validation split of this kind */
  tune_result_t tune;
  int have_validation;     /* validation: the check on all the data */
  tune_result_t validation;
} report_t;

/* Prints one comparison table per split to fp. */
void report_print(const report_t *r, FILE *fp);

/* Writes the report as JSON to path (atomically: temp file + rename). */
int report_write_json(const report_t *r, const char *path, char *errbuf);

#endif
