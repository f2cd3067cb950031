/* factors.h - recd-train --export-factors and --import-factors: item
 * factors as JSON lines (recd/factors_json.h), so that a model trained
 * elsewhere (Spark MLlib's ALS with implicitPrefs=true on a cluster) can be
 * served, folded in and evaluated by recd exactly like one of its own.
 *
 * Export writes the model's item factors, one line per item in model order.
 *
 * Import builds a model file from item factors: the items are the file's,
 * in its order; popularity, categories and groups come from the histories
 * (Redis, or --csv and --items) as recd-train's own models get them; YtY is
 * computed from the factors by model_write(); the hyperparameters are the
 * command line's (recd-train's defaults unless given), which must describe
 * how the factors were trained for the fold-in to be the ALS user step of
 * that training (Spark: --confidence linear --alpha <alpha> --lambda
 * <regParam> --reg-exponent 1 --half-life 0). Importing what export wrote,
 * with the same data and options, gives the same model file (with
 * SOURCE_DATE_EPOCH pinned, byte for byte).
 *
 * Items with factors but no interactions are kept (catalogue items, cold:
 * popularity 0); items of the histories without factors are left out
 * (the fold-in ignores them like any unknown item); both are counted on
 * stderr. An import where no factor id appears in the histories is refused
 * (ids that need --factor-ids, or the wrong data).
 */
#ifndef RECD_TRAIN_FACTORS_H
#define RECD_TRAIN_FACTORS_H

#include <stdint.h>

#include "recd/params.h"
#include "publish.h"
#include "redis_io.h"

typedef struct factors_opts {
  const char *file;        /* the JSON-lines file ("-": stdin / stdout) */
  const char *model;       /* export: the model read */
  const char *factor_ids;  /* import: MAP.csv (header factor_id,item), or NULL */
  const char *csv, *items; /* import: histories from a CSV instead of Redis */
  int skip_bad;
  redis_opts_t redis;
  params_t params;         /* import: the model's parameters (factors: 0 or
                              the file's k, given with --factors) */
  double half_life_days;   /* import: recorded when every interaction has a time */
  uint32_t history_limit;  /* import: fold-in cap for the score scale */
  int64_t created_at;      /* import: the model's creation time */
  int quiet;
  publish_t *pub;          /* import: where the model goes (publish.h) */
} factors_opts_t;

/* 0 or a RECD_E* code with errbuf set. */
int factors_export_main(const factors_opts_t *o, char *errbuf);
int factors_import_main(const factors_opts_t *o, char *errbuf);

#endif
