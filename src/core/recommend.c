/* recommend.c - business rules over the serving kernel (see recommend.h). */
#include "recd/recommend.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/score.h"
#include "rules_internal.h"

void rec_ws_init(rec_ws_t *ws) {
  memset(ws, 0, sizeof *ws);
}

void rec_ws_free(rec_ws_t *ws) {
  foldin_ws_free(&ws->fw);
  free(ws->scores);
  free(ws->x);
  free(ws->cat_adjust);
  free(ws->tmp);
  free(ws->top);
  free(ws->top_scores);
  free(ws->reasons);
  free(ws->ans);
  free(ws->ans_scores);
  free(ws->ans_promoted);
  free(ws->walk);
  memset(ws, 0, sizeof *ws);
}

/* Per-model buffers: sized by the model, reallocated when it changes. */
static int rec__ws_for_model(rec_ws_t *ws, const model_t *m) {
  const uint32_t n = model_n_items(m), k = model_factors(m), nc = model_n_categories(m);
  if (ws->n_items != n || ws->k != k || ws->slots_cap < (size_t)nc + 1) {
    free(ws->scores);
    free(ws->x);
    free(ws->cat_adjust);
    free(ws->tmp);
    ws->scores = NULL; /* rec__ws_scores(): only the dense paths need it */
    ws->x = calloc(model_stride(m), sizeof *ws->x);
    ws->tmp = calloc(model_stride(m), sizeof *ws->tmp);
    ws->cat_adjust = malloc(((size_t)nc + 1) * sizeof *ws->cat_adjust);
    ws->n_items = n;
    ws->k = k;
    ws->slots_cap = (size_t)nc + 1;
    if (ws->x == NULL || ws->tmp == NULL || ws->cat_adjust == NULL) {
      ws->n_items = ws->k = 0;
      ws->slots_cap = 0;
      return RECD_ENOMEM;
    }
  }
  if (ws->fw.k != k) {
    foldin_ws_free(&ws->fw);
    if (foldin_ws_init(&ws->fw, k) != 0)
      return RECD_ENOMEM;
  }
  return 0;
}

/* The n-float score array of the dense (BLAS) paths, allocated on first
 * use: the fused int8 path never needs it, and at 1M items it is 4 MB per
 * workspace. */
static float *rec__ws_scores(rec_ws_t *ws) {
  if (ws->scores == NULL)
    ws->scores = malloc((size_t)(ws->n_items ? ws->n_items : 1) * sizeof *ws->scores);
  return ws->scores;
}

float rec_popularity_scale(const model_t *m) {
  const float *p = model_popularity(m);
  const uint32_t n = model_n_items(m);
  double mean = 0, var = 0;
  for (uint32_t i = 0; i < n; i++)
    mean += p[i];
  mean /= n;
  for (uint32_t i = 0; i < n; i++)
    var += (p[i] - mean) * (p[i] - mean);
  double sd = sqrt(var / n);
  return sd > 0 ? (float)sd : 1.0f;
}

/* Fills ws->cat_adjust from the CATEGORY filter and the preferences.
 * Returns 0 when no category rule applies (the filter can skip it). */
static int rec__category_rules(const model_t *m, const rec_query_t *q, float scale,
                               float *adj) {
  const uint32_t slots = model_n_categories(m) + 1;
  if (!q->category_filter && q->n_pref == 0)
    return 0;
  for (uint32_t s = 0; s < slots; s++)
    adj[s] = q->category_filter ? -INFINITY : 0.0f;
  for (size_t j = 0; j < q->n_categories; j++)
    if (q->categories[j] >= 1 && q->categories[j] < slots)
      adj[q->categories[j]] = 0.0f;
  for (size_t j = 0; j < q->n_pref; j++) {
    uint32_t c = q->pref_cat[j];
    if (c < 1 || c >= slots || adj[c] == -INFINITY)
      continue;
    /* Exactly -1 means "never show"; anything above moves the category. */
    adj[c] = q->pref_val[j] <= -1.0f ? -INFINITY : adj[c] + q->pref_val[j] * scale;
  }
  return 1;
}

static int rec__cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

int rec_families_build(rec_families_t *f, const model_t *m) {
  memset(f, 0, sizeof *f);
  const uint32_t n = model_n_items(m), ng = model_n_groups(m);
  const uint32_t *g = model_item_groups(m);
  if (ng == 0)
    return 0; /* no families: nothing to index (and nothing allocated) */
  f->start = calloc((size_t)ng + 2, sizeof *f->start);
  if (f->start == NULL)
    return RECD_ENOMEM;
  /* A counting sort: items in index order land in ascending order. */
  for (uint32_t i = 0; i < n; i++)
    if (g[i] != MODEL_NO_GROUP && g[i] <= ng)
      f->start[g[i] + 1]++;
  for (uint32_t c = 1; c <= ng + 1; c++)
    f->start[c] += f->start[c - 1];
  const uint32_t members = f->start[ng + 1];
  f->items = malloc((members ? members : 1) * sizeof *f->items);
  uint32_t *at = malloc(((size_t)ng + 1) * sizeof *at);
  if (f->items == NULL || at == NULL) {
    free(at);
    rec_families_free(f);
    return RECD_ENOMEM;
  }
  memcpy(at, f->start, ((size_t)ng + 1) * sizeof *at);
  for (uint32_t i = 0; i < n; i++)
    if (g[i] != MODEL_NO_GROUP && g[i] <= ng)
      f->items[at[g[i]]++] = i;
  free(at);
  f->n_groups = ng;
  return 0;
}

void rec_families_free(rec_families_t *f) {
  free(f->start);
  free(f->items);
  memset(f, 0, sizeof *f);
}

/* The distinct non-zero families of q's history, sorted, into *out
 * (malloc'ed; NULL when none) and the number of their members. */
static int rec__bought(const model_t *m, const rec_query_t *q, uint32_t **out, size_t *n_fam,
                       size_t *n_members) {
  *out = NULL;
  *n_fam = *n_members = 0;
  const rec_families_t *fam = q->families;
  if (!q->exclude_bought_groups || fam == NULL || fam->n_groups == 0 || q->n_hist == 0)
    return 0;
  const uint32_t n = model_n_items(m), *g = model_item_groups(m);
  uint32_t *v = malloc(q->n_hist * sizeof *v);
  if (v == NULL)
    return RECD_ENOMEM;
  size_t k = 0;
  for (size_t j = 0; j < q->n_hist; j++)
    if (q->hist[j] < n && g[q->hist[j]] != MODEL_NO_GROUP && g[q->hist[j]] <= fam->n_groups)
      v[k++] = g[q->hist[j]];
  qsort(v, k, sizeof *v, rec__cmp_u32);
  size_t u = 0;
  for (size_t j = 0; j < k; j++)
    if (u == 0 || v[u - 1] != v[j])
      v[u++] = v[j];
  for (size_t j = 0; j < u; j++)
    *n_members += fam->start[v[j] + 1] - fam->start[v[j]];
  *out = v;
  *n_fam = u;
  return 0;
}

int rec_rules_init(rec_rules_t *r, const model_t *m, const rec_query_t *q, float scale) {
  memset(r, 0, sizeof *r);
  uint32_t *fams;
  size_t n_fam, n_members;
  if (rec__bought(m, q, &fams, &n_fam, &n_members) != 0)
    return RECD_ENOMEM;
  const size_t n_hist = q->exclude_history ? q->n_hist : 0;
  const size_t n_excl = q->n_exclude + n_hist + q->n_hidden + n_members;
  r->excl = malloc((n_excl ? n_excl : 1) * sizeof *r->excl);
  r->cat_adjust = malloc(((size_t)model_n_categories(m) + 1) * sizeof *r->cat_adjust);
  if (r->excl == NULL || r->cat_adjust == NULL) {
    free(fams);
    rec_rules_free(r);
    return RECD_ENOMEM;
  }
  /* memcpy from NULL is undefined even for 0 bytes. */
  size_t at = 0;
  if (q->n_exclude > 0)
    memcpy(r->excl, q->exclude, q->n_exclude * sizeof *r->excl);
  at += q->n_exclude;
  if (n_hist > 0)
    memcpy(r->excl + at, q->hist, n_hist * sizeof *r->excl);
  at += n_hist;
  if (q->n_hidden > 0)
    memcpy(r->excl + at, q->hidden, q->n_hidden * sizeof *r->excl);
  at += q->n_hidden;
  for (size_t j = 0; j < n_fam; j++) {
    const rec_families_t *fam = q->families;
    const uint32_t lo = fam->start[fams[j]], hi = fam->start[fams[j] + 1];
    memcpy(r->excl + at, fam->items + lo, (size_t)(hi - lo) * sizeof *r->excl);
    at += hi - lo;
  }
  free(fams);
  qsort(r->excl, n_excl, sizeof *r->excl, rec__cmp_u32);
  r->f = (topk_filter_t){.exclude = r->excl, .n_exclude = n_excl, .exclude_bits = q->unavailable};
  topk_filter_hint(&r->f);
  if (rec__category_rules(m, q, scale, r->cat_adjust)) {
    r->f.item_category = model_item_categories(m);
    r->f.cat_adjust = r->cat_adjust;
    r->f.n_slots = model_n_categories(m) + 1;
  }
  return 0;
}

void rec_rules_free(rec_rules_t *r) {
  free(r->excl);
  free(r->cat_adjust);
  memset(r, 0, sizeof *r);
}

/* The three parallel result arrays, grown together to `want` entries. */
static int rec__grow_top(rec_ws_t *ws, size_t want) {
  if (want <= ws->top_cap && ws->top != NULL)
    return 0;
  size_t n = want < 16 ? 16 : want;
  uint32_t *top = realloc(ws->top, n * sizeof *top);
  if (top != NULL)
    ws->top = top;
  float *ts = realloc(ws->top_scores, n * sizeof *ts);
  if (ts != NULL)
    ws->top_scores = ts;
  int32_t *rs = realloc(ws->reasons, n * sizeof *rs);
  if (rs != NULL)
    ws->reasons = rs;
  if (top == NULL || ts == NULL || rs == NULL)
    return RECD_ENOMEM;
  ws->top_cap = n;
  return 0;
}

/* RANK's scores: the customer's vector in ws->x (personalized, *scores =
 * NULL) or popularity. Sets *scores, *scale and *personalized. */
static int rec__score(const model_t *m, float pop_scale, const rec_query_t *q, rec_ws_t *ws,
                      const float **scores, float *scale, int *personalized, size_t *n_used) {
  *n_used = 0;
  if (q->personalize && q->n_hist > 0) {
    int rc = foldin_solve(model_item_factors(m), model_stride(m), model_gram(m), model_params(m),
                          q->hist, q->hist_w, q->n_hist, q->history_limit, ws->x, n_used,
                          &ws->fw);
    if (rc != 0)
      return rc;
    *scores = NULL; /* RANK scores its few candidates exactly from ws->x */
    *scale = model_meta(m)->score_scale;
    *personalized = 1;
  } else {
    *scores = model_popularity(m);
    *scale = pop_scale;
    *personalized = 0;
  }
  return 0;
}

/* WITHREASONS (Hu, Koren & Volinsky 2008, section 5): the score of item i
 * decomposes as sum_j c_j y_i^T W y_j over the history, W = A^-1 the
 * inverse of the fold-in system, so the past item with the largest term
 * c_j (W y_i) . y_j "explains" the recommendation. foldin_factor() puts
 * the Cholesky factor L of A of the fold-in just done in ws->fw.A; W y_i is
 * two triangular solves. */
static int32_t rec__reason(const model_t *m, const rec_query_t *q, rec_ws_t *ws, size_t n_used,
                           uint32_t item) {
  if (n_used == 0)
    return -1; /* nothing folded in (a given vector): ws->fw.A is not this customer's */
  const uint32_t k = model_factors(m), stride = model_stride(m);
  const float *Y = model_item_factors(m);
  /* The factor is formed on the first reason asked for (the fold-in itself
   * no longer needs it). */
  if (foldin_factor(Y, stride, model_gram(m), model_params(m), &ws->fw) != 0)
    return -1;
  float *z = ws->tmp;
  memcpy(z, Y + (size_t)item * stride, k * sizeof *z);
  cblas_strsv(CblasRowMajor, CblasLower, CblasNoTrans, CblasNonUnit, (int)k, ws->fw.A, (int)k,
              z, 1);
  cblas_strsv(CblasRowMajor, CblasLower, CblasTrans, CblasNonUnit, (int)k, ws->fw.A, (int)k, z,
              1);
  int32_t best = -1;
  float best_v = -INFINITY;
  for (size_t j = 0; j < n_used; j++) {
    uint32_t pos = ws->fw.order[j];
    float v = ws->fw.conf[j] * cblas_sdot((int)k, z, 1, Y + (size_t)q->hist[pos] * stride, 1);
    if (v > best_v) {
      best_v = v;
      best = (int32_t)pos;
    }
  }
  return best;
}

int rec_prepare(const model_t *m, const rec_query_t *q, rec_ws_t *ws, float *x,
                int *personalized, size_t *n_used) {
  *personalized = 0;
  *n_used = 0;
  int rc = rec__ws_for_model(ws, m);
  if (rc != 0 || !(q->personalize && q->n_hist > 0))
    return rc;
  rc = foldin_solve(model_item_factors(m), model_stride(m), model_gram(m), model_params(m),
                    q->hist, q->hist_w, q->n_hist, q->history_limit, x, n_used, &ws->fw);
  if (rc == 0)
    *personalized = 1;
  return rc;
}

float rec_score_exact(const float *x, const float *y, uint32_t k) {
  /* Four partial sums (a fixed order: factor a goes to sum a % 4), so the
   * additions form four independent chains that vectorise, instead of one
   * chain of k dependent double additions; every product of two floats is
   * exact in double, and the order never varies, so neither does the
   * result. */
  double acc[4] = {0.0, 0.0, 0.0, 0.0};
  uint32_t a = 0;
  for (; a + 4 <= k; a += 4)
    for (uint32_t j = 0; j < 4; j++)
      acc[j] += (double)x[a + j] * (double)y[a + j];
  for (uint32_t j = 0; a < k; a++, j++)
    acc[j] += (double)x[a] * (double)y[a];
  return (float)((acc[0] + acc[1]) + (acc[2] + acc[3]));
}

/* Largest possible |BLAS score - exact score| plus the rounding of the
 * category adjustment, for customer x. A float dot product of k terms is
 * within k*u*sum|x_a y_a| of the real value (u = 2^-24, Higham 3.1), and
 * sum|x_a y_a| <= |x| |y_i| <= |x| max|y|; doubled, plus a few ulps of the
 * largest adjusted score, to cover the float additions after it. */
float rec_score_slack(const model_t *m, const float *x, const topk_filter_t *f) {
  const uint32_t k = model_factors(m);
  /* The stored norms are float roundings of the true ones: one ulp up. */
  double xn = 0, ymax = model_max_item_norm(m) * (1.0 + 0x1p-22), amax = 0;
  for (uint32_t a = 0; a < k; a++)
    xn += (double)x[a] * x[a];
  for (uint32_t c = 0; f != NULL && f->cat_adjust != NULL && c < f->n_slots; c++)
    if (isfinite(f->cat_adjust[c]) && fabs(f->cat_adjust[c]) > amax)
      amax = fabs(f->cat_adjust[c]);
  const double u = 0x1p-24, top = sqrt(xn) * ymax;
  return (float)(2.0 * (k + 2) * u * top + 8.0 * u * (top + amax) + 1e-30);
}

typedef struct rec__cand {
  float s;
  uint32_t i;
} rec__cand_t;

/* What an exact re-scoring computes: the customer's dot product
 * rec_score_exact(x, y_i) (RECOMMEND), or, with norms, SIMILAR's cosine
 * with the query row x = y_q of norm nq (rec_similar_exact). */
typedef struct rec__scorer {
  const float *x;
  const float *norms; /* NULL: a dot product */
  float nq;
} rec__scorer_t;

static inline float rec__cosine(const float *yq, float nq, const float *y, float ni,
                                uint32_t k) {
  /* Each norm divided separately, as score_cosines does: a product of two
   * tiny norms cannot underflow to a zero denominator. */
  return ni > 0.0f && nq > 0.0f ? rec_score_exact(yq, y, k) / ni / nq : NAN;
}

static inline float rec__score_one(const rec__scorer_t *sc, const float *y, uint32_t i,
                                   uint32_t k) {
  return sc->norms != NULL ? rec__cosine(sc->x, sc->nq, y, sc->norms[i], k)
                           : rec_score_exact(sc->x, y, k);
}

static int rec__cmp_cand(const void *a, const void *b) {
  const rec__cand_t *x = a, *y = b;
  if (x->s != y->s)
    return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* Is a ranked below b (lower score, or equal score and larger index)? */
static int rec__worse(const rec__cand_t *a, const rec__cand_t *b) {
  return a->s < b->s || (a->s == b->s && a->i > b->i);
}

/* Restores the heap (worst candidate at the root) below position p. */
static void rec__sift(rec__cand_t *h, size_t len, size_t p) {
  for (;;) {
    size_t c = 2 * p + 1;
    if (c >= len)
      return;
    if (c + 1 < len && rec__worse(&h[c + 1], &h[c]))
      c++;
    if (!rec__worse(&h[c], &h[p]))
      return;
    rec__cand_t t = h[p];
    h[p] = h[c];
    h[c] = t;
    p = c;
  }
}

/* Re-scores ws->top[0..got) exactly (plus the category adjustment) and
 * leaves the best min(got, want) of them in ws->top / top_scores, best
 * first; returns that count or RECD_ENOMEM. Near-ties or a wide CATEGORY
 * filter can hand over thousands of candidates for a top 10: the best
 * `want` are kept in a heap as they are scored, and only those are
 * sorted. */
static int rec__rescore(const model_t *m, const rec__scorer_t *sc, const topk_filter_t *f,
                        size_t want, size_t got, rec_ws_t *ws) {
  const uint32_t k = model_factors(m), stride = model_stride(m);
  const float *Y = model_item_factors(m);
  const size_t keep = got < want ? got : want;
  rec__cand_t *h = malloc((keep ? keep : 1) * sizeof *h);
  if (h == NULL)
    return RECD_ENOMEM;
  size_t len = 0;
  /* Candidates are scattered over the catalogue, so each row is a cache
   * (and often TLB) miss: the rows a few candidates ahead are requested
   * while this one is scored, so the misses overlap instead of queueing. */
  enum { AHEAD = 8 };
  const size_t row_bytes = (size_t)stride * sizeof(float);
  for (size_t j = 0; j < got && j < AHEAD; j++)
    for (size_t b = 0; b < row_bytes; b += 64)
      __builtin_prefetch((const char *)(Y + (size_t)ws->top[j] * stride) + b);
  for (size_t j = 0; j < got; j++) {
    uint32_t i = ws->top[j];
    if (j + AHEAD < got)
      for (size_t b = 0; b < row_bytes; b += 64)
        __builtin_prefetch((const char *)(Y + (size_t)ws->top[j + AHEAD] * stride) + b);
    float s = rec__score_one(sc, Y + (size_t)i * stride, i, k);
    if (f->cat_adjust != NULL)
      s += f->cat_adjust[f->item_category[i]];
    if (isnan(s))
      continue; /* never ranked (a cosine with a zero row: not offered anyway) */
    const rec__cand_t c = {s, i};
    if (len < keep) {
      h[len++] = c;
      if (len == keep)
        for (size_t p = keep / 2; p-- > 0;)
          rec__sift(h, keep, p);
    } else if (keep > 0 && rec__worse(&h[0], &c)) {
      h[0] = c;
      rec__sift(h, keep, 0);
    }
  }
  qsort(h, len, sizeof *h, rec__cmp_cand);
  for (size_t j = 0; j < len; j++) {
    ws->top[j] = h[j].i;
    ws->top_scores[j] = h[j].s;
  }
  free(h);
  return (int)len;
}

/* Personalized answers are decided on exact scores (rec_score_exact), so
 * that a customer gets the same answer whether the first pass was an sgemv
 * for them alone or an sgemm inside a batch of any size: BLAS kernels round
 * differently for different shapes. The first pass only narrows the
 * catalogue down to the candidates that can still be in the top `want`:
 * everything within the error bound of the want-th score is re-scored. */
static int rec__refine(const model_t *m, const float *approx, const rec__scorer_t *sc,
                       float slack, const topk_filter_t *f, size_t want, size_t got,
                       rec_ws_t *ws) {
  const uint32_t n = model_n_items(m);
  size_t asked = want + 8; /* what the caller's first topk_select asked for */
  if (want == 0)
    return 0;
  /* The list holds every item that can reach the exact top `want` once
   * the filter has run out (got < asked) or its last score is below the
   * want-th by more than twice the error bound. Otherwise count (an upper
   * bound, ignoring the filters) the items that can still reach the bar,
   * and take that many in one more selection: one extra pass, however
   * loose the first pass was. */
  if (got == asked && ws->top_scores[got - 1] >= ws->top_scores[want - 1] - 2.0f * slack) {
    const float bar = ws->top_scores[want - 1] - 2.0f * slack;
    float amax = 0.0f;
    for (uint32_t c = 0; f->cat_adjust != NULL && c < f->n_slots; c++)
      if (f->cat_adjust[c] > amax) /* NaN and -inf never raise a score */
        amax = f->cat_adjust[c];
    size_t reach = 0;
    for (uint32_t i = 0; i < n; i++)
      reach += approx[i] + amax >= bar;
    if (reach > asked) {
      asked = reach;
      if (rec__grow_top(ws, asked) != 0)
        return RECD_ENOMEM;
      got = topk_select(approx, n, f, asked, ws->top, ws->top_scores);
    }
  }
  return rec__rescore(m, sc, f, want, got, ws);
}

/* The answer from items[0..got) (the answer ranking, best first): offset,
 * count, reasons, promoted flags (promo, or NULL). */
static void rec__output(const model_t *m, const rec_query_t *q, uint32_t *items, float *scores,
                        uint8_t *promo, size_t got, size_t n_used, rec_ws_t *ws,
                        rec_result_t *out) {
  const size_t want = q->offset + q->count;
  if (got > want)
    got = want;
  if (got <= q->offset)
    return;
  out->n = got - q->offset;
  out->items = items + q->offset;
  out->scores = scores + q->offset;
  if (promo != NULL)
    out->promoted = promo + q->offset;
  if (q->with_reasons) {
    if (out->n > ws->top_cap)
      return; /* cannot happen: ws->reasons holds the depth, >= n */
    out->reasons = ws->reasons;
    for (size_t j = 0; j < out->n; j++)
      out->reasons[j] = out->personalized ? rec__reason(m, q, ws, n_used, out->items[j]) : -1;
  }
}

size_t rec_depth(const model_t *m, const rec_query_t *q) {
  const size_t n = model_n_items(m);
  size_t want = q->offset + q->count;
  if (want < q->offset || want > n)
    want = n; /* no ranking is longer than the catalogue */
  size_t d = want;
  if (q->max_per_category > 0 || q->one_per_group)
    d = 4 * want + 32;
  if (q->exclude_bought_groups && q->families == NULL) {
    /* with the index the bought families are filtered in the first pass */
    const uint32_t *g = model_item_groups(m);
    size_t in_family = 0;
    for (size_t j = 0; j < q->n_hist && in_family < 256; j++)
      in_family += q->hist[j] < n && g[q->hist[j]] != MODEL_NO_GROUP;
    d += 4 * in_family;
  }
  return d < n ? d : n;
}

/* The answer from the exact prefix ws->top[0..got) of the filtered
 * ranking (best first; the whole of it when `complete`): the walk when q
 * needs one, else the prefix itself. *deeper as for rec_walk. */
static int rec__answer(const model_t *m, const rec_query_t *q, const topk_filter_t *f,
                       const float *x, const float *base, size_t got, int complete,
                       size_t n_used, int use_promote, rec_ws_t *ws, rec_result_t *out,
                       size_t *deeper) {
  *deeper = 0;
  if (!rec_walk_needed(q, use_promote)) {
    rec__output(m, q, ws->top, ws->top_scores, NULL, got, n_used, ws, out);
    return 0;
  }
  size_t len;
  int rc = rec_walk(m, q, f, ws->top, ws->top_scores, got, complete, x, base, use_promote, ws,
                    &len, deeper);
  if (rc != 0 || *deeper != 0)
    return rc;
  const int promo = use_promote && q->promote > 0 && q->promoted != NULL;
  rec__output(m, q, ws->ans, ws->ans_scores, promo ? ws->ans_promoted : NULL, len, n_used, ws,
              out);
  return 0;
}

int rec_select(const model_t *m, float pop_scale, const rec_query_t *q, const float *scores,
               const float *x, float err, size_t n_used, rec_ws_t *ws, rec_result_t *out) {
  return rec_select_depth(m, pop_scale, q, scores, x, err, n_used, 0, ws, out);
}

int rec_select_depth(const model_t *m, float pop_scale, const rec_query_t *q,
                     const float *scores, const float *x, float err, size_t n_used,
                     size_t first_depth, rec_ws_t *ws, rec_result_t *out) {
  memset(out, 0, sizeof *out);
  const uint32_t n = model_n_items(m);
  if (rec__ws_for_model(ws, m) != 0)
    return RECD_ENOMEM;
  out->personalized = scores != NULL;
  out->n_used = n_used;
  float scale = model_meta(m)->score_scale;
  if (scores == NULL) {
    scores = model_popularity(m);
    scale = pop_scale;
  }
  rec_rules_t rules;
  if (rec_rules_init(&rules, m, q, scale) != 0)
    return RECD_ENOMEM;
  size_t depth = first_depth > 0 && first_depth < n ? first_depth : rec_depth(m, q);
  int rc = 0;
  /* The dense scores are all here: a deeper prefix is one more selection
   * on them (see recommend.h, "Depth"). */
  for (;;) {
    if (rec__grow_top(ws, depth + 8) != 0) {
      rc = RECD_ENOMEM;
      break;
    }
    size_t got;
    if (out->personalized) {
      got = topk_select(scores, n, &rules.f, depth + 8, ws->top, ws->top_scores);
      const rec__scorer_t sc = {.x = x};
      int r = rec__refine(m, scores, &sc, rec_score_slack(m, x, &rules.f) + err, &rules.f,
                          depth, got, ws);
      if (r < 0) {
        rc = r;
        break;
      }
      got = (size_t)r;
    } else {
      got = topk_select(scores, n, &rules.f, depth, ws->top, ws->top_scores);
    }
    size_t deeper;
    rc = rec__answer(m, q, &rules.f, out->personalized ? x : NULL, scores, got,
                     got < depth || depth >= n, n_used, 1, ws, out, &deeper);
    if (rc != 0 || deeper == 0)
      break;
    depth = deeper < n ? deeper : n;
  }
  rec_rules_free(&rules);
  return rc;
}

int rec_select_candidates(const model_t *m, const rec_query_t *q, const rec_rules_t *rules,
                          const float *x, const uint32_t *cand, size_t n_cand, size_t depth,
                          size_t n_used, rec_ws_t *ws, rec_result_t *out, size_t *deeper) {
  memset(out, 0, sizeof *out);
  *deeper = 0;
  const uint32_t n = model_n_items(m);
  if (depth > n)
    depth = n;
  if (rec__ws_for_model(ws, m) != 0 || rec__grow_top(ws, n_cand > depth ? n_cand : depth) != 0)
    return RECD_ENOMEM;
  out->personalized = 1;
  out->n_used = n_used;
  if (n_cand > 0)
    memcpy(ws->top, cand, n_cand * sizeof *ws->top);
  const rec__scorer_t sc = {.x = x};
  int r = rec__rescore(m, &sc, &rules->f, depth, n_cand, ws);
  if (r < 0)
    return r;
  const size_t got = (size_t)r;
  int rc = rec__answer(m, q, &rules->f, x, NULL, got, got < depth || depth >= n, n_used, 1, ws,
                       out, deeper);
  if (rc == 0 && *deeper != 0) {
    memset(out, 0, sizeof *out);
    if (*deeper > n)
      *deeper = n;
    if (*deeper <= depth) /* cannot happen: a prefix of n items is complete */
      *deeper = 0;
  }
  return rc;
}

typedef struct rec__ranked {
  float score;
  uint32_t pos;
  int cls; /* 0 scored, 1 removed (hidden or removed category), 2 unknown id */
} rec__ranked_t;

static int rec__cmp_ranked(const void *a, const void *b) {
  const rec__ranked_t *x = a, *y = b;
  if (x->cls != y->cls)
    return x->cls - y->cls;
  if (x->cls == 0 && x->score != y->score)
    return x->score > y->score ? -1 : 1;
  return (x->pos > y->pos) - (x->pos < y->pos);
}

int rec_rank(const model_t *m, float pop_scale, const rec_query_t *q, const int64_t *cand,
             size_t n, rec_ws_t *ws, uint32_t *order_out, float *scores_out, int *personalized) {
  int rc = rec__ws_for_model(ws, m);
  if (rc != 0)
    return rc;
  rec__ranked_t *r = malloc((n ? n : 1) * sizeof *r);
  if (r == NULL)
    return RECD_ENOMEM;
  const float *scores;
  float scale;
  size_t n_used;
  /* Only n candidates are needed: score them one by one, not the catalogue. */
  rc = rec__score(m, pop_scale, q, ws, &scores, &scale, personalized, &n_used);
  if (rc != 0) {
    free(r);
    return rc;
  }
  /* Hidden items, sorted for a binary search per candidate. */
  uint32_t *hid = NULL;
  if (q->n_hidden > 0) {
    hid = malloc(q->n_hidden * sizeof *hid);
    if (hid == NULL) {
      free(r);
      return RECD_ENOMEM;
    }
    memcpy(hid, q->hidden, q->n_hidden * sizeof *hid);
    qsort(hid, q->n_hidden, sizeof *hid, rec__cmp_u32);
  }
  rec_query_t rules = *q;
  rules.category_filter = 0;
  int have_rules = rec__category_rules(m, &rules, scale, ws->cat_adjust);
  const uint32_t *cats = model_item_categories(m);
  const float *Y = model_item_factors(m);
  const uint32_t stride = model_stride(m), k = model_factors(m);
  for (size_t j = 0; j < n; j++) {
    r[j].pos = (uint32_t)j;
    r[j].cls = cand[j] < 0 ? 2 : 0;
    r[j].score = NAN;
    if (cand[j] < 0)
      continue;
    uint32_t i = (uint32_t)cand[j];
    float s = *personalized ? rec_score_exact(ws->x, Y + (size_t)i * stride, k) : scores[i];
    if (have_rules)
      s += ws->cat_adjust[cats[i]];
    if (s == -INFINITY || isnan(s) ||
        (hid != NULL && bsearch(&i, hid, q->n_hidden, sizeof *hid, rec__cmp_u32) != NULL))
      r[j].cls = 1;
    r[j].score = s;
  }
  free(hid);
  qsort(r, n, sizeof *r, rec__cmp_ranked);
  for (size_t j = 0; j < n; j++) {
    order_out[j] = r[j].pos;
    if (scores_out != NULL)
      scores_out[j] = r[j].score;
  }
  free(r);
  return 0;
}

/* ---- SIMILAR ---------------------------------------------------------- */

float rec_similar_exact(const model_t *m, uint32_t item, uint32_t i) {
  const float *Y = model_item_factors(m), *norms = model_item_norms(m);
  const uint32_t stride = model_stride(m);
  return rec__cosine(Y + (size_t)item * stride, norms[item], Y + (size_t)i * stride, norms[i],
                     model_factors(m));
}

int rec_similar_regular(float norm) {
  return norm >= REC_SIMILAR_NORM_MIN && norm <= REC_SIMILAR_NORM_MAX;
}

/* Why this bound (u = 2^-24; norms in [2^-60, 2^60], recommend.h). Let c_i
 * be the real y_q . y_i / (n_i n_q) with the stored norms n (each within
 * 1.01 u of the true norm: a double sum, one sqrt, one float rounding).
 *  - The exact score fl(fl(fl(D) / n_i) / n_q), D the double dot product
 *    (error below 2^-37 relative): three roundings, 3.1 u |c_i|, plus
 *    underflow, at most 2^-150 / (n_i n_q) <= 2^-30 (the norms' range).
 *  - The int8 pass scores against z = fl(y / n) (qmat_build_cosine): each
 *    factor within u of y / n, so |z_q . z_i - c_i| <= 2.01 u (|y / n| <=
 *    1 + 1.02 u). Its own bound is qscore's; this is what is left: 5.2 u.
 *  - The dense pass divides a float32 dot product (sgemv, any order, with
 *    or without FMA: gamma_k |y_q| |y_i| plus k 2^-149 of underflow) by
 *    both norms: (k (1 + 1/32) + 2.1) u, and 3.1 u more to the exact one.
 * (2k + 32) u covers both for every k >= 1, with room to spare. */
float rec_similar_slack(uint32_t k) {
  return (float)((2.0 * k + 32.0) * 0x1p-24);
}

void rec_similar_query(const rec_query_t *q, rec_query_t *sq) {
  *sq = *q;
  /* No promoted slots, no reasons; preferences only as removals (the
   * rules are built with a scale of 0: every adjustment is 0 but the -1's
   * -INFINITY, so a cosine plus its adjustment is the cosine itself). */
  sq->promote = 0;
  sq->promoted = NULL;
  sq->with_reasons = 0;
}

int rec_similar_rules_init(rec_rules_t *r, const model_t *m, const rec_query_t *sq,
                           uint32_t item) {
  if (rec_rules_init(r, m, sq, 0.0f) != 0)
    return RECD_ENOMEM;
  /* `item` itself joins the sorted exclusions: it is never answered and
   * never holds a place in a collector's top (its cosine is the best). */
  uint32_t *e = realloc(r->excl, (r->f.n_exclude + 1) * sizeof *e);
  if (e == NULL) {
    rec_rules_free(r);
    return RECD_ENOMEM;
  }
  size_t at = r->f.n_exclude;
  while (at > 0 && e[at - 1] > item)
    at--;
  memmove(e + at + 1, e + at, (r->f.n_exclude - at) * sizeof *e);
  e[at] = item;
  r->excl = e;
  r->f.exclude = e;
  r->f.n_exclude++;
  topk_filter_hint(&r->f);
  return 0;
}

int rec_similar_candidates(const model_t *m, const rec_query_t *sq, const rec_rules_t *rules,
                           uint32_t item, const uint32_t *cand, size_t n_cand, size_t depth,
                           rec_ws_t *ws, rec_result_t *out, size_t *deeper) {
  memset(out, 0, sizeof *out);
  *deeper = 0;
  const uint32_t n = model_n_items(m);
  if (depth > n)
    depth = n;
  if (rec__ws_for_model(ws, m) != 0 || rec__grow_top(ws, n_cand > depth ? n_cand : depth) != 0)
    return RECD_ENOMEM;
  if (n_cand > 0)
    memcpy(ws->top, cand, n_cand * sizeof *ws->top);
  const rec__scorer_t sc = {.x = model_item_factors(m) + (size_t)item * model_stride(m),
                            .norms = model_item_norms(m),
                            .nq = model_item_norms(m)[item]};
  int r = rec__rescore(m, &sc, &rules->f, depth, n_cand, ws);
  if (r < 0)
    return r;
  const size_t got = (size_t)r;
  int rc = rec__answer(m, sq, &rules->f, NULL, NULL, got, got < depth || depth >= n, 0, 0, ws,
                       out, deeper);
  if (rc == 0 && *deeper != 0) {
    memset(out, 0, sizeof *out);
    if (*deeper > n)
      *deeper = n;
    if (*deeper <= depth) /* cannot happen: a prefix of n items is complete */
      *deeper = 0;
  }
  return rc;
}

/* The dense pass: every cosine from one sgemv (score_items) divided by
 * both norms, NaN for `item` and zero rows, then the exact selection (as
 * rec_select_depth: the top depth + 8, the candidates within the bound
 * re-scored exactly, deeper when the walk asks). Rows without a proven
 * bound (a norm outside the regular range) get their exact cosine here
 * instead of the approximate one; a query without one gets exact cosines
 * for every item. */
static int rec__similar_dense(const model_t *m, uint32_t item, const rec_query_t *sq,
                              const rec_rules_t *rules, rec_ws_t *ws, rec_result_t *out) {
  const uint32_t n = model_n_items(m), k = model_factors(m), stride = model_stride(m);
  const float *Y = model_item_factors(m), *norms = model_item_norms(m);
  const float nq = norms[item];
  float *a = ws->scores;
  if (!(nq > 0.0f) || k == 0)
    return 0; /* a zero vector is similar to nothing */
  const float *yq = Y + (size_t)item * stride;
  if (rec_similar_regular(nq)) {
    score_items(Y, stride, n, k, yq, a);
    int irregular = 0;
    for (uint32_t i = 0; i < n; i++) {
      const float ni = norms[i];
      /* selects, so that the loop vectorises */
      a[i] = ni > 0.0f ? a[i] / ni / nq : NAN;
      irregular |= ni > 0.0f && !(ni >= REC_SIMILAR_NORM_MIN && ni <= REC_SIMILAR_NORM_MAX);
    }
    for (uint32_t i = 0; irregular && i < n; i++)
      if (norms[i] > 0.0f && !rec_similar_regular(norms[i]))
        a[i] = rec__cosine(yq, nq, Y + (size_t)i * stride, norms[i], k);
  } else {
    for (uint32_t i = 0; i < n; i++)
      a[i] = rec__cosine(yq, nq, Y + (size_t)i * stride, norms[i], k);
  }
  a[item] = NAN;
  const rec__scorer_t sc = {.x = yq, .norms = norms, .nq = nq};
  const float slack = rec_similar_slack(k);
  size_t depth = rec_depth(m, sq);
  for (;;) {
    if (rec__grow_top(ws, depth + 8) != 0)
      return RECD_ENOMEM;
    size_t got = topk_select(a, n, &rules->f, depth + 8, ws->top, ws->top_scores);
    const int r = rec__refine(m, a, &sc, slack, &rules->f, depth, got, ws);
    if (r < 0)
      return r;
    got = (size_t)r;
    size_t deeper;
    int rc = rec__answer(m, sq, &rules->f, NULL, NULL, got, got < depth || depth >= n, 0, 0, ws,
                         out, &deeper);
    if (rc != 0 || deeper == 0)
      return rc;
    memset(out, 0, sizeof *out);
    depth = deeper < n ? deeper : n;
  }
}

int rec_similar(const model_t *m, uint32_t item, size_t count, const uint64_t *unavailable,
                rec_ws_t *ws, rec_result_t *out) {
  const rec_query_t q = {.count = count, .unavailable = unavailable};
  return rec_similar_q(m, item, &q, ws, out);
}

int rec_similar_q(const model_t *m, uint32_t item, const rec_query_t *q, rec_ws_t *ws,
                  rec_result_t *out) {
  memset(out, 0, sizeof *out);
  const uint32_t n = model_n_items(m);
  if (rec__ws_for_model(ws, m) != 0 || rec__ws_scores(ws) == NULL)
    return RECD_ENOMEM;
  if (item >= n || q->offset + q->count == 0)
    return 0;
  rec_query_t sq;
  rec_similar_query(q, &sq);
  rec_rules_t rules;
  if (rec_similar_rules_init(&rules, m, &sq, item) != 0)
    return RECD_ENOMEM;
  int rc = rec__similar_dense(m, item, &sq, &rules, ws, out);
  rec_rules_free(&rules);
  return rc;
}
