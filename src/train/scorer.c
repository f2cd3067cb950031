/* scorer.c - see scorer.h. */
#include "scorer.h"

#include <stdlib.h>
#include <string.h>

#include "recd/err.h"
#include "recd/score.h"

int als_scorer_init(als_scorer_t *s, const als_factors_t *f, const params_t *p, size_t cap) {
  memset(s, 0, sizeof *s);
  s->Y = f->Y;
  s->n_items = f->n_items;
  s->stride = f->stride;
  s->params = *p;
  s->cap = cap;
  s->G = malloc((size_t)f->k * f->k * sizeof *s->G);
  s->x = calloc(f->stride, sizeof *s->x);
  if (s->G == NULL || s->x == NULL || foldin_ws_init(&s->ws, f->k) != 0) {
    free(s->G);
    free(s->x);
    return RECD_ENOMEM;
  }
  als_gram(f->Y, f->n_items, f->k, f->stride, s->G);
  return 0;
}

void als_scorer_free(als_scorer_t *s) {
  foldin_ws_free(&s->ws);
  free(s->G);
  free(s->x);
}

int als_scorer_score(void *ctx, const uint32_t *items, const float *weights, size_t n,
                     float *scores) {
  als_scorer_t *s = ctx;
  int rc = foldin_solve(s->Y, s->stride, s->G, &s->params, items, weights, n, s->cap, s->x,
                        NULL, &s->ws);
  if (rc == 0)
    score_items(s->Y, s->stride, s->n_items, s->params.factors, s->x, scores);
  return rc;
}
