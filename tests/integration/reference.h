/* reference.h - slow, obvious answers to compare the daemon with (STYLE 26).
 *
 * Everything here is computed in double precision straight from the
 * definitions in DESIGN.md, without the serving kernel: the user vector is
 * the dense solution of the ALS normal equations
 *
 *   x = (YtY + sum_j (c_j - 1) y_j y_j^T + lambda_u I)^-1 sum_j c_j y_j
 *
 * (c_j and lambda_u by the formulas of include/recd/params.h, which define
 * the model), scores are double dot products, the business rules are
 * applied item by item and the ranking is a full sort. The only things taken
 * from the library are the model file reader and its id lookups.
 *
 * Tolerance: the daemon works in float32 (Cholesky of a k x k system, sgemv)
 * while this works in double; a score may differ by a few float ulps of the
 * largest terms. Two answers agree when at every rank the daemon's item has
 * (by this reference) a score within ref_tol() of the reference's item at
 * that rank, so items whose scores are within the tolerance may swap.
 */
#ifndef RECD_ITEST_REFERENCE_H
#define RECD_ITEST_REFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "recd/model.h"

typedef struct ref_model {
  model_t *m;
  uint32_t n, k, stride, n_cat;
  const float *Y;
  const float *pop;
  const uint32_t *cat;
  params_t p;
  double score_scale; /* preference unit of personalized answers */
  double pop_scale;   /* preference unit of popular answers: std. dev. of
                         popularity */
  double *YtY;        /* k x k, computed here in double from Y */
} ref_model_t;

void ref_model_load(ref_model_t *r, const char *path);
void ref_model_free(ref_model_t *r);

/* One customer as Redis holds them right now. */
typedef struct ref_user {
  size_t n_hist;     /* history items the model knows */
  uint32_t *hist;    /* their indices */
  double *w;         /* and accumulated weights, aged as the fold-in ages
                        them when the model has a half-life */
  size_t n_hist_all; /* every history member, known or not */
  int personalize;   /* 0 when recd:pref:<u> personalize = 0 */
  size_t n_pref;
  uint32_t *pref_cat; /* category numbers the model knows */
  double *pref_val;
} ref_user_t;

/* Reads recd:hist:<user> and recd:pref:<user> with the test's own client. */
void ref_user_read(const ref_model_t *r, redisContext *redis, const char *user, ref_user_t *u);
void ref_user_free(ref_user_t *u);

typedef struct ref_query {
  const ref_user_t *u;        /* NULL: no data (a degraded answer) */
  const char *const *exclude; /* EXCLUDE ids */
  size_t n_exclude;
  const char *const *cats; /* CATEGORY names */
  size_t n_cats;
  const char *const *unavail; /* members of recd:unavailable */
  size_t n_unavail;
  size_t history_limit; /* strongest items folded in; 0 = 500, the
                           daemon's default */
  int keep_history;     /* exclude-history no: past items may be
                           recommended */
} ref_query_t;

typedef struct ref_answer {
  int personalized;
  size_t n_used;     /* history items folded in ... */
  size_t *used;      /* ... their positions in u->hist (the strongest
                        history_limit: weight descending, then item index) */
  double *x;         /* k: the user vector (personalized) */
  double *W;         /* k x k: A^-1 (personalized) */
  double *conf;      /* per u->hist entry: confidence c_j */
  double *score;     /* n: adjusted score (-INFINITY = category removed) */
  unsigned char *ok; /* n: passes every filter */
  uint32_t *order;   /* the items that pass, best first (ties: index) */
  size_t n_order;
  double max_abs; /* largest |score| of an item that passes */
} ref_answer_t;

void ref_recommend(const ref_model_t *r, const ref_query_t *q, ref_answer_t *a);
void ref_answer_free(ref_answer_t *a);

/* Tolerance for comparing a daemon score with a reference score. */
double ref_tol(const ref_answer_t *a);

/* Index of an item id (NUL-terminated), -1 when unknown. */
int64_t ref_item(const ref_model_t *r, const char *id);

/* Checks a RECOMMEND reply (array of ids, `per` elements per item: 1, or 2
 * with WITHSCORES or WITHREASONS, 3 with both; scores at +1 when
 * withscores) against positions [offset, offset + count) of the reference
 * ranking; fails the test with `what` in the message. */
void ref_check_recommend(const ref_model_t *r, const ref_answer_t *a, const redisReply *rep,
                         size_t offset, size_t count, int withscores, int withreasons,
                         const ref_user_t *u, const char *what);

/* The WITHREASONS explanation term c_j y_i^T W y_j of history entry j (a
 * position in u->hist that was folded in) for item i (Hu, Koren & Volinsky
 * 2008, section 5). */
double ref_reason_term(const ref_model_t *r, const ref_answer_t *a, const ref_user_t *u, size_t j,
                       uint32_t item);

/* Cosine similarity of two items' factors (NAN when a norm is 0). */
double ref_cosine(const ref_model_t *r, uint32_t i, uint32_t j);

/* The ids of a flat reply (every `per`-th element from 0), as a string
 * "a b c" for messages (static buffer). */
const char *ref_ids_str(const redisReply *rep, size_t per);

#endif
