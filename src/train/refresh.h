/* refresh.h - recd-train --refresh-items: new products into the served
 * model between retrains, and the evaluations of issue 14 (how close a
 * refreshed item is to a full retrain; cart recommendations).
 */
#ifndef RECD_TRAIN_REFRESH_H
#define RECD_TRAIN_REFRESH_H

#include <stdint.h>
#include <stdio.h>

#include "recd/als.h"
#include "recd/dataset.h"
#include "recd/model.h"
#include "redis_io.h"

typedef struct refresh_opts {
  const char *model;        /* the served model file */
  const char *out;          /* where the refreshed model goes (may equal model) */
  const char *csv, *items;  /* histories from a CSV instead of Redis (tests, evaluation) */
  int skip_bad;
  redis_opts_t redis;
  uint32_t min_item_users;  /* customers an item needs to get a vector (3) */
  uint32_t history_limit;   /* fold-in cap, as the daemon's history-limit */
  params_t params;          /* training parameters (evaluation modes only) */
  uint32_t threads;
  int quiet;
  struct publish *pub;      /* --refresh-items: the output as recd-train
                               publishes it (lock, kept versions with
                               --keep: publish.h); NULL = a plain
                               model_write (evaluations) */
} refresh_opts_t;

/* What refresh_items() did. */
typedef struct refresh_result {
  uint32_t added;           /* new items given a vector */
  uint32_t too_few;         /* new items left out: fewer than min_item_users customers */
  uint32_t users;           /* customers folded in */
  int written;              /* 0: nothing added and out is the served file,
                               which is then left as it is */
} refresh_result_t;

/* The refresh itself: every item of ds (finalized histories, with the
 * categories and groups of its items) that the served model m does not
 * know and that has at least o->min_item_users customers gets the ALS item
 * step
 *     y = (XᵀX + Xᵀ(C_i − I)X + λ_i I)⁻¹ XᵀC_i p_i
 * against the customers' vectors X folded in from their histories with m
 * exactly as the daemon folds (model Y, the file's YᵀY, m's parameters,
 * the history capped at o->history_limit, items m does not know ignored);
 * XᵀX is over every customer of ds. Every row of m is copied bit for bit;
 * new items come after them, with popularity = their summed weight and
 * category/group from ds. The result is published atomically to `out`
 * with model_write() (YᵀY recomputed). 0 or an error with errbuf. */
int refresh_items(const model_t *m, const dataset_t *ds, const refresh_opts_t *o,
                  const char *out, refresh_result_t *res, char *errbuf);

/* recd-train --refresh-items: reads the served model and the histories
 * (Redis, or --csv), refreshes, publishes, prints the count. */
int refresh_main(const refresh_opts_t *o, char *errbuf);

/* recd-train --eval-refresh: on --csv, holds out a seeded random 5% of the
 * items, trains without them, refreshes them in, trains with them, and
 * prints the mean overlap@10 of each held-out item's SIMILAR neighbours
 * (cosine) between the refreshed and the fully retrained model; the same
 * for a second full retrain with another seed (the noise floor). */
int refresh_eval_main(const refresh_opts_t *o, double fraction, char *errbuf);

/* Shared by the evaluation modes. Histories from --csv (and --items) or
 * from Redis (then *c is the open connection, for the item attributes),
 * finalized. */
int refresh_load(const refresh_opts_t *o, dataset_t *ds, redis_link_t **c, char *errbuf);
/* Trains o->params (with this seed) on ds. */
int refresh_train(const refresh_opts_t *o, const dataset_t *ds, uint64_t seed,
                  als_factors_t *f, char *errbuf);
/* Writes ds's items with factors f (ids and popularity only) to path and
 * loads it back into *out. */
int refresh_write_trained(const refresh_opts_t *o, const dataset_t *ds, const als_factors_t *f,
                          const char *path, model_t **out, char *errbuf);

/* recd-train --eval-cart (cart_eval.c): see README "How good are cart
 * recommendations". */
int cart_eval_main(const refresh_opts_t *o, char *errbuf);

#endif
