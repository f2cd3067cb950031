/* dataset.h - user x item interactions, as training and evaluation see them.
 *
 * Interactions are added one at a time (from CSV or Redis); duplicates of a
 * (user, item) pair are summed, exactly as ZINCRBY accumulates them in
 * recd:hist:<user>. dataset_finalize() then builds two compressed sparse row
 * views: by user (for the user step) and by item (for the item step), each
 * with indices sorted ascending.
 *
 * Interactions may carry a time (dataset_add_timed(), the CSV's optional
 * timestamp column). When every one of them does, finalize keeps the raw
 * rows, so that temporal splits and age weighting (events.h) can see them.
 */
#ifndef RECD_DATASET_H
#define RECD_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recd/err.h"
#include "recd/idmap.h"

/* Longest user id, item id or category name, in bytes (see DESIGN.md). */
#define DATASET_MAX_ID 256

/* The time of an interaction that has none. Times are int64 in whatever
 * unit the source uses (the CSV's and Redis's are Unix seconds). */
#define DATASET_NO_TIME INT64_MIN

/* Compressed sparse rows: row r holds ptr[r+1]-ptr[r] entries
 * (idx[j], val[j]) for j in [ptr[r], ptr[r+1]). */
typedef struct csr {
  uint32_t n_rows;
  uint32_t n_cols;
  uint64_t *ptr;  /* n_rows + 1 */
  uint32_t *idx;  /* column indices, ascending within a row */
  float *val;
} csr_t;

typedef struct dataset {
  idmap_t *users;
  idmap_t *items;
  idmap_t *categories;     /* category names; category c is key c-1 */
  uint32_t *item_category; /* per item, 0 = none, else 1 + categories index;
                              grown with items, NULL until categories set */
  size_t item_category_cap;
  idmap_t *groups;         /* product family names; group g is key g-1 */
  uint32_t *item_group;    /* per item, 0 = none, else 1 + groups index;
                              grown with items, NULL until groups set */
  size_t item_group_cap;

  /* Interactions as added (coordinate form, insertion order, duplicates
   * not merged); coo_t is DATASET_NO_TIME for a row without a time.
   * Finalize frees them, unless has_time: then they stay (read-only, as the
   * raw interaction log; events_from_dataset() copies them). */
  size_t n_coo, coo_cap;
  uint32_t *coo_user, *coo_item;
  float *coo_w;
  int64_t *coo_t;
  size_t n_timed; /* rows added with a time */

  /* Built by dataset_finalize(). */
  int finalized;
  csr_t by_user; /* n_users x n_items */
  csr_t by_item; /* n_items x n_users, the transpose */
  int has_time;         /* 1 iff there is at least one row and every row has a time */
  int64_t t_min, t_max; /* over all rows when has_time, else DATASET_NO_TIME */
} dataset_t;

/* Initialises an empty data set. Returns 0 or RECD_ENOMEM. */
int dataset_init(dataset_t *ds);
void dataset_free(dataset_t *ds);

/* Adds an interaction; ids are copied. The weight must be finite and > 0
 * (RECD_ERANGE otherwise). Returns 0, RECD_ERANGE, RECD_EINVAL (empty or
 * too long id, or data set already finalized) or RECD_ENOMEM. */
int dataset_add(dataset_t *ds, const char *user, size_t ulen, const char *item,
                size_t ilen, float weight);

/* dataset_add() with the interaction's time t (DATASET_NO_TIME: none). Any
 * other int64 is a valid time, negative included. Same returns. */
int dataset_add_timed(dataset_t *ds, const char *user, size_t ulen, const char *item,
                      size_t ilen, float weight, int64_t t);

/* Sets the category of an item already in the data set (interning the
 * category name); an empty category means none. Returns 0, RECD_ENOTFOUND
 * for an item without interactions (it has no factors, so it is left out
 * of the model), RECD_EINVAL for an over-long name, or RECD_ENOMEM. */
int dataset_set_category(dataset_t *ds, const char *item, size_t ilen,
                         const char *cat, size_t clen);

/* The same for the item's product family (group); an empty name means none. */
int dataset_set_group(dataset_t *ds, const char *item, size_t ilen, const char *group,
                      size_t glen);

/* Sums duplicate pairs and builds by_user and by_item, and sets has_time,
 * t_min and t_max. When has_time, the coo_* arrays are kept (trimmed to
 * n_coo); otherwise they are freed. Idempotent. */
int dataset_finalize(dataset_t *ds);

/* Builds a finalized data set directly from a user x item CSR (copied);
 * ids are "u<r>" and "i<c>"; no times (has_time = 0). For synthetic tests
 * and the hold-out split. */
int dataset_from_csr(dataset_t *ds, const csr_t *by_user);

/* Reads interactions from a CSV file with header user,item,weight[,timestamp].
 * The timestamp (an int64, Unix seconds) is stored with the row; an empty
 * one means the row has no time.
 * A bad line (wrong field count, empty id, id longer than 256 bytes,
 * non-numeric, non-finite or non-positive weight, bad timestamp, or one equal
 * to DATASET_NO_TIME) is an error
 * naming file:line and the reason, unless skip_bad is set: then it is counted
 * in *skipped. Progress goes to `progress` (may be NULL) every ~1M rows. */
int dataset_read_csv(dataset_t *ds, const char *path, int skip_bad,
                     uint64_t *skipped, FILE *progress, char *errbuf);

/* Reads item categories from a CSV with header item,title,category, or
 * item,title,category,group (the product family; empty = none). Items
 * absent from the interactions are ignored (they have no factors). */
int dataset_read_items_csv(dataset_t *ds, const char *path, char *errbuf);
/* The same, and *ignored (may be NULL) receives the number of lines that
 * named items absent from the interactions. */
int dataset_read_items_csv_ex(dataset_t *ds, const char *path, uint64_t *ignored,
                              char *errbuf);

/* Sizes. */
static inline uint32_t dataset_n_users(const dataset_t *ds) {
  return (uint32_t)idmap_size(ds->users);
}
static inline uint32_t dataset_n_items(const dataset_t *ds) {
  return (uint32_t)idmap_size(ds->items);
}

/* csr helpers */
void csr_free(csr_t *m);
/* Transpose of a (n_rows x n_cols) CSR, indices sorted. 0 or RECD_ENOMEM. */
int csr_transpose(const csr_t *m, csr_t *out);

#endif
