/* model.h - the model file: item side of an implicit ALS model.
 *
 * A model holds, for n items with k factors: item ids, item factors Y
 * (n x k float32, rows padded to `stride` floats so that each row starts on
 * a 64-byte boundary), the Gram matrix YtY (k x k), item popularity (for
 * cold start), item categories, product families (groups), the
 * hyperparameters and training metadata. User vectors are not stored: they
 * are folded in at request time.
 *
 * The byte layout is documented in models/FORMAT.md. model_load() maps the
 * file read-only and validates all of it (sizes, section bounds, checksum,
 * ids, categories, groups, finiteness) before returning, so a model_t that exists is
 * always safe to use; model_write() publishes atomically (temp file, fsync,
 * rename, fsync of the directory).
 */
#ifndef RECD_MODEL_H
#define RECD_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "recd/err.h"
#include "recd/params.h"

#define MODEL_VERSION 3        /* written; model_load() reads 1 to 3 */
#define MODEL_MIN_VERSION 1    /* oldest version model_load() still reads */
#define MODEL_ALIGN 64         /* bytes; every row and section starts aligned */
#define MODEL_MAX_ID_LEN 256   /* item ids and category names, bytes */
#define MODEL_MAX_FACTORS 1024
#define MODEL_NO_CATEGORY 0u   /* item_category value of an uncategorised item */
#define MODEL_NO_GROUP 0u      /* item_group value of an item in no family */

/* model_meta_t.serves: what the item factors are. A popularity model is a
 * k = 1 model whose single factor is the (recent) popularity of each item
 * (>= 0): folding any customer in gives a positive multiple of it, so the
 * unchanged serving code answers popularity minus the customer's history.
 * The trainer writes one when a popularity baseline beats ALS on
 * validation. */
#define MODEL_SERVES_ALS 0u
#define MODEL_SERVES_POPULARITY 1u
#define MODEL_SERVES_RECENT_POPULARITY 2u
#define MODEL_SERVES_MAX 2u

/* model_meta_t.eval_split: how the hold-out of the stored metrics was cut. */
#define MODEL_SPLIT_RANDOM 0u      /* a random fraction of each user's items */
#define MODEL_SPLIT_USER_LATEST 1u /* each user's latest interactions */
#define MODEL_SPLIT_TIME_CUT 2u    /* everything after one point in time */
#define MODEL_SPLIT_MAX 2u

/* Ranking quality on held-out interactions, cut off at 10. */
typedef struct model_metrics {
  double precision;
  double recall;
  double ndcg;
  double map;
  double coverage; /* distinct items recommended / catalogue size */
} model_metrics_t;

/* What the trainer knew when it wrote the model. */
typedef struct model_meta {
  int64_t created_at;        /* unix seconds */
  uint64_t n_users;          /* users in the training data */
  uint64_t n_interactions;   /* distinct (user, item) pairs trained on */
  double train_seconds;
  double holdout_fraction;   /* 0 when no hold-out evaluation was run */
  uint64_t holdout_users;    /* users evaluated */
  model_metrics_t model;     /* hold-out metrics of this model */
  model_metrics_t popularity;/* hold-out metrics of the popularity baseline */
  float score_scale;         /* typical spread of a user's scores (std. dev.
                                over items, averaged over training users);
                                preference adjustments are multiples of it */
  uint32_t has_ease;         /* 1: `ease` holds the hold-out metrics of the
                                EASE baseline; 0: not computed (no hold-out,
                                catalogue too large, or a version-1 file), and
                                `ease` is all zero */
  model_metrics_t ease;
  /* Version 3 (all 0 when read from a version-1 or -2 file): */
  uint32_t has_recent;       /* 1: `recent_popularity` holds the hold-out
                                metrics of the recent-popularity baseline
                                (last 30 days); 0: not computed, all zero */
  model_metrics_t recent_popularity;
  uint32_t serves;           /* MODEL_SERVES_*: ALS, or a popularity fallback
                                (then k = 1 and every factor is >= 0) */
  uint32_t eval_split;       /* MODEL_SPLIT_*: where the metrics come from */
  double half_life_days;     /* age weighting in training, 0 = off; >= 0 */
  int64_t tuned_at;          /* unix seconds when `recd-train --tune` chose the
                                hyperparameters; 0 = defaults or by hand */
} model_meta_t;

typedef struct model model_t;

/* Everything model_write() needs; the caller owns all of it. */
typedef struct model_spec {
  uint32_t n_items;
  params_t params;           /* params.factors is k */
  model_meta_t meta;
  const float *Y;            /* n_items rows of k floats ... */
  size_t ldy;                /* ... row i starts at Y + i * ldy (ldy >= k) */
  const float *popularity;   /* n_items values >= 0 (e.g. summed weight) */
  const char *const *item_ids;     /* n_items ids, unique ... */
  const uint32_t *item_id_lens;    /* ... of 1..MODEL_MAX_ID_LEN bytes */
  const uint32_t *item_category;   /* n_items values in 0..n_categories, or NULL */
  uint32_t n_categories;
  const char *const *category_names; /* n_categories names (category c is
                                        category_names[c - 1]), unique */
  const uint32_t *category_name_lens;
  /* Product families ("the same parasol in natural and in pink"), stored
   * like categories: item_group[i] in 0..n_groups (0 = none), or NULL for
   * no groups at all; group g is group_names[g - 1]. */
  const uint32_t *item_group;
  uint32_t n_groups;
  const char *const *group_names;
  const uint32_t *group_name_lens;
} model_spec_t;

/* Writes a model file to `path` atomically: the data goes to a temporary file
 * in the same directory which is fsync()ed and rename()d over `path`, so a
 * reader sees the old file or the new one, never a mix. YtY is computed here
 * from Y. Returns 0 or a RECD_E* code with a message in errbuf. */
int model_write(const model_spec_t *spec, const char *path, char *errbuf);

/* Maps and validates the model file at `path`. On success *out owns the
 * mapping and must be released with model_free(); on failure *out is NULL and
 * errbuf says what is wrong (truncated, bad checksum, version, which section
 * or field is inconsistent). */
int model_load(model_t **out, const char *path, char *errbuf);

/* Same, from a caller-owned buffer (fuzzing, tests). The buffer is copied. */
int model_load_buffer(model_t **out, const void *data, size_t len, char *errbuf);

void model_free(model_t *m);

/* "als", "popularity", "recent-popularity" for MODEL_SERVES_*; "random",
 * "user-latest", "time-cut" for MODEL_SPLIT_*; "unknown" for any other value
 * (a loaded model never has one). */
const char *model_serves_name(uint32_t serves);
const char *model_split_name(uint32_t split);

/* Accessors. Pointers stay valid until model_free(). */
uint32_t model_n_items(const model_t *m);
uint32_t model_factors(const model_t *m);                /* k */
uint32_t model_stride(const model_t *m);                 /* floats per Y row */
const params_t *model_params(const model_t *m);
const model_meta_t *model_meta(const model_t *m);
const float *model_item_factors(const model_t *m);       /* n x stride, 64-aligned */
const float *model_gram(const model_t *m);               /* YtY, k x k row-major */
const float *model_popularity(const model_t *m);         /* n values */
const float *model_item_norms(const model_t *m);         /* ||y_i||, n values */
float model_max_item_norm(const model_t *m);             /* max_i ||y_i|| */
const uint32_t *model_item_categories(const model_t *m); /* n values, 0 = none */
uint32_t model_n_categories(const model_t *m);
/* Product family of each item: n values, 0 = none, else 1..model_n_groups().
 * Always a valid array (all 0 for a version-1 file). */
const uint32_t *model_item_groups(const model_t *m);
uint32_t model_n_groups(const model_t *m);
uint32_t model_version(const model_t *m);                /* of the loaded file */
uint32_t model_checksum(const model_t *m);               /* as stored in the file */
size_t model_file_size(const model_t *m);

/* Item id of index i (not NUL-terminated; *len receives its length). */
const char *model_item_id(const model_t *m, uint32_t i, size_t *len);
/* Index of an item id, or -1 when the model does not know it. */
int64_t model_find_item(const model_t *m, const char *id, size_t len);
/* Name of category c in 1..n_categories (not NUL-terminated). */
const char *model_category_name(const model_t *m, uint32_t c, size_t *len);
/* Category number of a name, or 0 when the model does not know it. */
uint32_t model_find_category(const model_t *m, const char *name, size_t len);
/* Name of group g in 1..n_groups (not NUL-terminated); NULL, *len = 0 otherwise. */
const char *model_group_name(const model_t *m, uint32_t g, size_t *len);
/* Group number of a name, or 0 when the model does not know it. */
uint32_t model_find_group(const model_t *m, const char *name, size_t len);

#endif
