/* reference.c - see reference.h. */
#include "reference.h"

#include "helpers.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* History items at most that the daemon folds in (its history-limit
 * default). */
#define REF_HISTORY_LIMIT 500

void ref_model_load(ref_model_t *r, const char *path) {
  char err[RECD_ERRLEN];
  memset(r, 0, sizeof *r);
  IT_CHECK(model_load(&r->m, path, err) == 0, "model_load(%s): %s", path, err);
  r->n = model_n_items(r->m);
  r->k = model_factors(r->m);
  r->stride = model_stride(r->m);
  r->n_cat = model_n_categories(r->m);
  r->Y = model_item_factors(r->m);
  r->pop = model_popularity(r->m);
  r->cat = model_item_categories(r->m);
  r->p = *model_params(r->m);
  r->score_scale = model_meta(r->m)->score_scale;
  double mean = 0, var = 0;
  for (uint32_t i = 0; i < r->n; i++)
    mean += r->pop[i];
  mean /= r->n;
  for (uint32_t i = 0; i < r->n; i++)
    var += (r->pop[i] - mean) * (r->pop[i] - mean);
  r->pop_scale = sqrt(var / r->n);
  if (!(r->pop_scale > 0))
    r->pop_scale = 1;
  const uint32_t k = r->k;
  r->YtY = calloc((size_t)k * k, sizeof *r->YtY);
  IT_CHECK(r->YtY != NULL, "out of memory");
  for (uint32_t i = 0; i < r->n; i++) {
    const float *y = r->Y + (size_t)i * r->stride;
    for (uint32_t a = 0; a < k; a++)
      for (uint32_t b = 0; b < k; b++)
        r->YtY[a * k + b] += (double)y[a] * y[b];
  }
}

void ref_model_free(ref_model_t *r) {
  model_free(r->m);
  free(r->YtY);
  memset(r, 0, sizeof *r);
}

int64_t ref_item(const ref_model_t *r, const char *id) {
  return model_find_item(r->m, id, strlen(id));
}

/* The time of history member id in a ZRANGE recd:time:<user> WITHSCORES
 * reply, when it is a time (an integer in [0, 2^53]); else NAN. */
static double ref__time_of(const redisReply *t, const redisReply *id) {
  for (size_t j = 0; t != NULL && j + 1 < t->elements; j += 2)
    if (t->element[j]->len == id->len && memcmp(t->element[j]->str, id->str, id->len) == 0) {
      const double v = strtod(t->element[j + 1]->str, NULL);
      return v >= 0 && v <= 9007199254740992.0 && v == floor(v) ? v : NAN;
    }
  return NAN;
}

void ref_user_read(const ref_model_t *r, redisContext *redis, const char *user, ref_user_t *u) {
  memset(u, 0, sizeof *u);
  u->personalize = 1;
  redisReply *h = redisCommand(redis, "ZRANGE recd:hist:%s 0 -1 WITHSCORES", user);
  ck_assert_msg(h != NULL && h->type == REDIS_REPLY_ARRAY, "ZRANGE recd:hist:%s", user);
  size_t n = h->elements / 2;
  u->hist = malloc((n ? n : 1) * sizeof *u->hist);
  u->w = malloc((n ? n : 1) * sizeof *u->w);
  ck_assert(u->hist != NULL && u->w != NULL);
  u->n_hist_all = n;
  /* A model with a half-life: each weight times 2^(-age / half-life), the
   * age from the customer's newest interaction (any member, known to the
   * model or not); an untimed item keeps its weight (age.h, README "The
   * model"). */
  const double hl = model_meta(r->m)->half_life_days * 86400.0;
  redisReply *t = NULL;
  double t_ref = -INFINITY;
  if (hl > 0) {
    t = redisCommand(redis, "ZRANGE recd:time:%s 0 -1 WITHSCORES", user);
    ck_assert_msg(t != NULL && t->type == REDIS_REPLY_ARRAY, "ZRANGE recd:time:%s", user);
    for (size_t j = 0; j < n; j++) {
      const double tj = ref__time_of(t, h->element[2 * j]);
      if (tj > t_ref)
        t_ref = tj;
    }
  }
  for (size_t j = 0; j < n; j++) {
    const redisReply *id = h->element[2 * j], *sc = h->element[2 * j + 1];
    int64_t i = model_find_item(r->m, id->str, id->len);
    if (i < 0)
      continue;
    u->hist[u->n_hist] = (uint32_t)i;
    double w = strtod(sc->str, NULL);
    const double tj = hl > 0 ? ref__time_of(t, id) : NAN;
    if (!isnan(tj) && tj < t_ref)
      w *= exp2(-(t_ref - tj) / hl);
    u->w[u->n_hist++] = w;
  }
  if (t != NULL)
    freeReplyObject(t);
  freeReplyObject(h);
  redisReply *p = redisCommand(redis, "HGETALL recd:pref:%s", user);
  ck_assert_msg(p != NULL && p->type == REDIS_REPLY_ARRAY, "HGETALL recd:pref:%s", user);
  size_t np = p->elements / 2;
  u->pref_cat = malloc((np ? np : 1) * sizeof *u->pref_cat);
  u->pref_val = malloc((np ? np : 1) * sizeof *u->pref_val);
  ck_assert(u->pref_cat != NULL && u->pref_val != NULL);
  for (size_t j = 0; j < np; j++) {
    const char *f = p->element[2 * j]->str, *v = p->element[2 * j + 1]->str;
    if (strcmp(f, "personalize") == 0) {
      u->personalize = strcmp(v, "0") != 0;
    } else if (strncmp(f, "cat:", 4) == 0) {
      uint32_t c = model_find_category(r->m, f + 4, strlen(f + 4));
      double val = strtod(v, NULL);
      if (c != 0 && val >= -1 && val <= 1) {
        u->pref_cat[u->n_pref] = c;
        u->pref_val[u->n_pref++] = val;
      }
    }
  }
  freeReplyObject(p);
}

void ref_user_free(ref_user_t *u) {
  free(u->hist);
  free(u->w);
  free(u->pref_cat);
  free(u->pref_val);
  memset(u, 0, sizeof *u);
}

/* Cholesky factorisation of the k x k SPD matrix A in place (lower
 * triangle); fails the test when A is not positive definite. */
static void ref__cholesky(double *A, uint32_t k) {
  for (uint32_t j = 0; j < k; j++) {
    double d = A[j * k + j];
    for (uint32_t t = 0; t < j; t++)
      d -= A[j * k + t] * A[j * k + t];
    ck_assert_msg(d > 0, "fold-in system not positive definite");
    A[j * k + j] = sqrt(d);
    for (uint32_t i = j + 1; i < k; i++) {
      double s = A[i * k + j];
      for (uint32_t t = 0; t < j; t++)
        s -= A[i * k + t] * A[j * k + t];
      A[i * k + j] = s / A[j * k + j];
    }
  }
}

/* Solves L L^T z = b in place. */
static void ref__chol_solve(const double *L, uint32_t k, double *z) {
  for (uint32_t i = 0; i < k; i++) {
    double s = z[i];
    for (uint32_t t = 0; t < i; t++)
      s -= L[i * k + t] * z[t];
    z[i] = s / L[i * k + i];
  }
  for (uint32_t i = k; i-- > 0;) {
    double s = z[i];
    for (uint32_t t = i + 1; t < k; t++)
      s -= L[t * k + i] * z[t];
    z[i] = s / L[i * k + i];
  }
}

static double ref__conf(const params_t *p, double w) {
  if (p->conf_mode == PARAMS_CONF_LOG)
    return 1.0 + (double)p->alpha * log1p(w / (double)p->eps);
  return 1.0 + (double)p->alpha * w;
}

static double ref__lambda(const params_t *p, size_t n) {
  if (p->reg_exponent == 0.0f || n == 0)
    return p->lambda;
  return (double)p->lambda * pow((double)n, (double)p->reg_exponent);
}

/* The strongest-first order of a history: weight descending, then item
 * index ascending (include/recd/foldin.h). */
static const ref_user_t *ref__sort_user;
static int ref__cmp_strength(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  const ref_user_t *u = ref__sort_user;
  if (u->w[x] != u->w[y])
    return u->w[x] > u->w[y] ? -1 : 1;
  return (u->hist[x] > u->hist[y]) - (u->hist[x] < u->hist[y]);
}

static const double *ref__sort_scores;
static int ref__cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  double sx = ref__sort_scores[x], sy = ref__sort_scores[y];
  if (sx != sy)
    return sx > sy ? -1 : 1;
  return (x > y) - (x < y);
}

static int ref__in(const char *const *list, size_t n, const char *s, size_t len) {
  for (size_t j = 0; j < n; j++)
    if (strlen(list[j]) == len && memcmp(list[j], s, len) == 0)
      return 1;
  return 0;
}

void ref_recommend(const ref_model_t *r, const ref_query_t *q, ref_answer_t *a) {
  const uint32_t k = r->k, n = r->n;
  const ref_user_t *u = q->u;
  memset(a, 0, sizeof *a);
  a->x = calloc(k, sizeof *a->x);
  a->W = calloc((size_t)k * k, sizeof *a->W);
  a->conf = calloc(u && u->n_hist ? u->n_hist : 1, sizeof *a->conf);
  a->used = calloc(u && u->n_hist ? u->n_hist : 1, sizeof *a->used);
  a->score = calloc(n, sizeof *a->score);
  a->ok = calloc(n, 1);
  a->order = calloc(n, sizeof *a->order);
  ck_assert(a->x && a->W && a->conf && a->used && a->score && a->ok && a->order);

  double scale;
  if (u != NULL && u->personalize && u->n_hist > 0) {
    const size_t limit = q->history_limit ? q->history_limit : REF_HISTORY_LIMIT;
    a->personalized = 1;
    for (size_t j = 0; j < u->n_hist; j++)
      a->used[j] = j;
    if (u->n_hist > limit) {
      ref__sort_user = u;
      qsort(a->used, u->n_hist, sizeof *a->used, ref__cmp_strength);
    }
    a->n_used = u->n_hist < limit ? u->n_hist : limit;
    double *A = malloc((size_t)k * k * sizeof *A);
    ck_assert_ptr_nonnull(A);
    memcpy(A, r->YtY, (size_t)k * k * sizeof *A);
    for (size_t h = 0; h < a->n_used; h++) {
      const size_t j = a->used[h];
      const float *y = r->Y + (size_t)u->hist[j] * r->stride;
      double c = ref__conf(&r->p, u->w[j]);
      a->conf[j] = c;
      for (uint32_t s = 0; s < k; s++) {
        a->x[s] += c * y[s];
        for (uint32_t t = 0; t < k; t++)
          A[s * k + t] += (c - 1) * y[s] * y[t];
      }
    }
    double lambda = ref__lambda(&r->p, a->n_used);
    for (uint32_t s = 0; s < k; s++)
      A[s * k + s] += lambda;
    ref__cholesky(A, k);
    ref__chol_solve(A, k, a->x);
    for (uint32_t col = 0; col < k; col++) { /* W = A^-1, column by column */
      double *e = calloc(k, sizeof *e);
      ck_assert_ptr_nonnull(e);
      e[col] = 1;
      ref__chol_solve(A, k, e);
      for (uint32_t s = 0; s < k; s++)
        a->W[s * k + col] = e[s];
      free(e);
    }
    free(A);
    for (uint32_t i = 0; i < n; i++) {
      const float *y = r->Y + (size_t)i * r->stride;
      double s = 0;
      for (uint32_t t = 0; t < k; t++)
        s += a->x[t] * y[t];
      a->score[i] = s;
    }
    scale = r->score_scale;
  } else {
    for (uint32_t i = 0; i < n; i++)
      a->score[i] = r->pop[i];
    scale = r->pop_scale;
  }
  /* Preferences: +value * scale, exactly -1 removes the category. */
  for (size_t j = 0; u != NULL && j < u->n_pref; j++)
    for (uint32_t i = 0; i < n; i++)
      if (r->cat[i] == u->pref_cat[j])
        a->score[i] = u->pref_val[j] <= -1 ? -INFINITY : a->score[i] + u->pref_val[j] * scale;
  /* Filters. */
  for (uint32_t i = 0; i < n; i++) {
    size_t len;
    const char *id = model_item_id(r->m, i, &len);
    int ok = a->score[i] != -INFINITY;
    /* An opted-out customer's history is not read at all: it filters
     * nothing (DESIGN.md, recd:pref personalize = 0). */
    for (size_t j = 0; ok && u != NULL && u->personalize && !q->keep_history && j < u->n_hist;
         j++)
      ok = u->hist[j] != i;
    if (ok && ref__in(q->exclude, q->n_exclude, id, len))
      ok = 0;
    if (ok && ref__in(q->unavail, q->n_unavail, id, len))
      ok = 0;
    if (ok && q->n_cats > 0) {
      size_t clen = 0;
      const char *cname = r->cat[i] ? model_category_name(r->m, r->cat[i], &clen) : "";
      ok = r->cat[i] != 0 && ref__in(q->cats, q->n_cats, cname, clen);
    }
    a->ok[i] = (unsigned char)ok;
    if (ok) {
      a->order[a->n_order++] = i;
      if (fabs(a->score[i]) > a->max_abs)
        a->max_abs = fabs(a->score[i]);
    }
  }
  ref__sort_scores = a->score;
  qsort(a->order, a->n_order, sizeof *a->order, ref__cmp);
}

void ref_answer_free(ref_answer_t *a) {
  free(a->x);
  free(a->W);
  free(a->conf);
  free(a->used);
  free(a->score);
  free(a->ok);
  free(a->order);
  memset(a, 0, sizeof *a);
}

/* float32 keeps ~7 digits; the fold-in's Cholesky and the sgemv lose a
 * little more on k = 16 terms: the largest difference observed on these
 * models is ~1e-6 of the largest score. 1e-4 leaves two orders of magnitude
 * of headroom and is still far below the gaps between distinct scores that
 * decide a ranking (a 1% change of the preference scale fails the tests). */
double ref_tol(const ref_answer_t *a) {
  return 1e-4 * (a->max_abs > 1e-3 ? a->max_abs : 1e-3);
}

double ref_reason_term(const ref_model_t *r, const ref_answer_t *a, const ref_user_t *u, size_t j,
                       uint32_t item) {
  const uint32_t k = r->k;
  const float *yi = r->Y + (size_t)item * r->stride;
  const float *yj = r->Y + (size_t)u->hist[j] * r->stride;
  double t = 0;
  for (uint32_t s = 0; s < k; s++) {
    double wy = 0;
    for (uint32_t v = 0; v < k; v++)
      wy += a->W[s * k + v] * yj[v];
    t += yi[s] * wy;
  }
  return a->conf[j] * t;
}

double ref_cosine(const ref_model_t *r, uint32_t i, uint32_t j) {
  const float *a = r->Y + (size_t)i * r->stride, *b = r->Y + (size_t)j * r->stride;
  double d = 0, na = 0, nb = 0;
  for (uint32_t t = 0; t < r->k; t++) {
    d += (double)a[t] * b[t];
    na += (double)a[t] * a[t];
    nb += (double)b[t] * b[t];
  }
  if (na == 0 || nb == 0)
    return NAN;
  return d / sqrt(na) / sqrt(nb);
}

const char *ref_ids_str(const redisReply *rep, size_t per) {
  static char buf[4096];
  size_t off = 0;
  buf[0] = '\0';
  for (size_t j = 0; rep->type == REDIS_REPLY_ARRAY && j < rep->elements && off < sizeof buf - 300;
       j += per) {
    const redisReply *e = rep->element[j];
    off += (size_t)snprintf(buf + off, sizeof buf - off, "%s ",
                            e->type == REDIS_REPLY_STRING ? e->str : "(nil)");
  }
  return buf;
}

void ref_check_recommend(const ref_model_t *r, const ref_answer_t *a, const redisReply *rep,
                         size_t offset, size_t count, int withscores, int withreasons,
                         const ref_user_t *u, const char *what) {
  const size_t per = 1 + (size_t)(withscores != 0) + (size_t)(withreasons != 0);
  const size_t avail = a->n_order > offset ? a->n_order - offset : 0;
  const size_t want = count < avail ? count : avail;
  const double tol = ref_tol(a);
  ck_assert_msg(rep->type == REDIS_REPLY_ARRAY, "%s: reply type %d (%s)", what, rep->type,
                rep->type == REDIS_REPLY_ERROR ? rep->str : "");
  ck_assert_msg(rep->elements == want * per, "%s: %zu elements, want %zu", what, rep->elements,
                want * per);
  unsigned char *seen = calloc(r->n, 1);
  ck_assert_ptr_nonnull(seen);
  for (size_t j = 0; j < want; j++) {
    const redisReply *e = rep->element[j * per];
    ck_assert_int_eq(e->type, REDIS_REPLY_STRING);
    int64_t i = ref_item(r, e->str);
    ck_assert_msg(i >= 0, "%s: unknown item %s", what, e->str);
    ck_assert_msg(a->ok[i], "%s: item %s at rank %zu must not be returned (score %g)", what, e->str,
                  offset + j, a->score[i]);
    ck_assert_msg(!seen[i], "%s: item %s returned twice", what, e->str);
    seen[i] = 1;
    uint32_t want_i = a->order[offset + j];
    size_t wl;
    const char *want_id = model_item_id(r->m, want_i, &wl);
    ck_assert_msg(fabs(a->score[i] - a->score[want_i]) <= tol,
                  "%s: rank %zu is %s (score %.9g), reference has %.*s (score %.9g); got [%s]",
                  what, offset + j, e->str, a->score[i], (int)wl, want_id, a->score[want_i],
                  ref_ids_str(rep, per));
    if (withscores) {
      const redisReply *s = rep->element[j * per + 1];
      ck_assert_int_eq(s->type, REDIS_REPLY_STRING);
      double v = strtod(s->str, NULL);
      ck_assert_msg(fabs(v - a->score[i]) <= tol, "%s: score of %s is %s, reference %.9g", what,
                    e->str, s->str, a->score[i]);
    }
    if (withreasons) {
      const redisReply *why = rep->element[j * per + per - 1];
      if (!a->personalized) {
        ck_assert_msg(why->type == REDIS_REPLY_NIL, "%s: a popular answer has a reason", what);
        continue;
      }
      ck_assert_msg(why->type == REDIS_REPLY_STRING, "%s: no reason for %s", what, e->str);
      int64_t wi = ref_item(r, why->str);
      size_t jw = SIZE_MAX;
      for (size_t h = 0; wi >= 0 && h < u->n_hist; h++)
        if (u->hist[h] == (uint32_t)wi)
          jw = h;
      ck_assert_msg(jw != SIZE_MAX, "%s: reason %s of %s is not in the history", what, why->str,
                    e->str);
      int folded = 0;
      for (size_t t = 0; t < a->n_used; t++)
        folded |= a->used[t] == jw;
      ck_assert_msg(folded, "%s: reason %s of %s is not among the %zu strongest past items", what,
                    why->str, e->str, a->n_used);
      double best = -INFINITY, big = 0;
      for (size_t h = 0; h < a->n_used; h++) {
        double t = ref_reason_term(r, a, u, a->used[h], (uint32_t)i);
        if (t > best)
          best = t;
        if (fabs(t) > big)
          big = fabs(t);
      }
      double got = ref_reason_term(r, a, u, jw, (uint32_t)i);
      ck_assert_msg(best - got <= 1e-4 * big + 1e-12,
                    "%s: reason of %s is %s (term %.9g), the largest term is %.9g", what, e->str,
                    why->str, got, best);
    }
  }
  free(seen);
}
