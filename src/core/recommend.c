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
 * c_j (W y_i) . y_j "explains" the recommendation. ws->fw.A holds the
 * Cholesky factor L of A from the fold-in just done; W y_i is two
 * triangular solves. */
static int32_t rec__reason(const model_t *m, const rec_query_t *q, rec_ws_t *ws, size_t n_used,
                           uint32_t item) {
  if (n_used == 0)
    return -1; /* nothing folded in (a given vector): ws->fw.A is not this customer's */
  const uint32_t k = model_factors(m), stride = model_stride(m);
  const float *Y = model_item_factors(m);
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
static int rec__rescore(const model_t *m, const float *x, const topk_filter_t *f, size_t want,
                        size_t got, rec_ws_t *ws) {
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
    float s = rec_score_exact(x, Y + (size_t)i * stride, k);
    if (f->cat_adjust != NULL)
      s += f->cat_adjust[f->item_category[i]];
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
static int rec__refine(const model_t *m, const float *approx, const float *x, float err,
                       const topk_filter_t *f, size_t want, size_t got, rec_ws_t *ws) {
  const uint32_t n = model_n_items(m);
  const float slack = rec_score_slack(m, x, f) + err;
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
  return rec__rescore(m, x, f, want, got, ws);
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
      int r = rec__refine(m, scores, x, err, &rules.f, depth, got, ws);
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
  int r = rec__rescore(m, x, &rules->f, depth, n_cand, ws);
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

int rec_similar(const model_t *m, uint32_t item, size_t count, const uint64_t *unavailable,
                rec_ws_t *ws, rec_result_t *out) {
  memset(out, 0, sizeof *out);
  if (rec__ws_for_model(ws, m) != 0 || rec__grow_top(ws, count) != 0 ||
      rec__ws_scores(ws) == NULL)
    return RECD_ENOMEM;
  topk_filter_t f = {.exclude_bits = unavailable};
  out->n = score_similar(model_item_factors(m), model_stride(m), model_n_items(m),
                         model_factors(m), model_item_norms(m), item, &f, count, ws->top,
                         ws->top_scores, ws->scores);
  out->items = ws->top;
  out->scores = ws->top_scores;
  return 0;
}

int rec_similar_q(const model_t *m, uint32_t item, const rec_query_t *q, rec_ws_t *ws,
                  rec_result_t *out) {
  memset(out, 0, sizeof *out);
  const uint32_t n = model_n_items(m);
  if (rec__ws_for_model(ws, m) != 0 || rec__ws_scores(ws) == NULL)
    return RECD_ENOMEM;
  if (item >= n || q->offset + q->count == 0)
    return 0;
  /* No promoted slots, no reasons; preferences only as removals: a scale
   * of 0 makes every adjustment 0 but the -1's -INFINITY, so a cosine
   * plus its adjustment is the cosine itself. */
  rec_query_t sq = *q;
  sq.promote = 0;
  sq.promoted = NULL;
  sq.with_reasons = 0;
  rec_rules_t rules;
  if (rec_rules_init(&rules, m, &sq, 0.0f) != 0)
    return RECD_ENOMEM;
  if (!score_cosines(model_item_factors(m), model_stride(m), n, model_factors(m),
                     model_item_norms(m), item, ws->scores)) {
    rec_rules_free(&rules);
    return 0; /* a zero vector is similar to nothing */
  }
  size_t depth = rec_depth(m, &sq);
  int rc = 0;
  for (;;) {
    if (rec__grow_top(ws, depth) != 0) {
      rc = RECD_ENOMEM;
      break;
    }
    const size_t got = topk_select(ws->scores, n, &rules.f, depth, ws->top, ws->top_scores);
    size_t deeper;
    rc = rec__answer(m, &sq, &rules.f, NULL, ws->scores, got, got < depth || depth >= n, 0, 0,
                     ws, out, &deeper);
    if (rc != 0 || deeper == 0)
      break;
    depth = deeper < n ? deeper : n;
  }
  rec_rules_free(&rules);
  return rc;
}
