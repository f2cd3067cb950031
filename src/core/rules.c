/* rules.c - the walk of recommend.h: category caps, one item per product
 * family, bought families and promoted slots over an exact prefix of the
 * filtered ranking.
 *
 * The walk is a pure function of the filtered ranking R and the promoted
 * items, which is what makes it exact whatever the first pass: the pass
 * only decides how much of R is known (an exact prefix), and the walk
 * either finishes inside that prefix or says how deep to go next. Each
 * stream (R, and the promoted items in R's order) is read once with a
 * cursor: admissibility only ever shrinks as the answer grows (counts
 * grow, families fill, items are taken), so an item skipped once would be
 * skipped at every later position too.
 *
 * The sets (items taken, families used, families bought) are small
 * open-addressing tables of at most offset + count or |hist| entries,
 * sized for a load of at most one half, rather than bitmaps over the
 * catalogue or the families: a bitmap would have to be cleared per request
 * at 1M items. All memory is one block in the workspace, grown on demand.
 */
#include "rules_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/err.h"

typedef struct rules__set {
  uint32_t *k; /* keys; UINT32_MAX = empty (no item or family index is) */
  size_t mask; /* slots - 1, a power of two minus one */
} rules__set_t;

static size_t rules__pow2(size_t entries) {
  size_t n = 16;
  while (n < 2 * entries + 2)
    n *= 2;
  return n;
}

static void rules__set_init(rules__set_t *s, uint32_t *mem, size_t slots) {
  s->k = mem;
  s->mask = slots - 1;
  memset(mem, 0xff, slots * sizeof *mem);
}

static size_t rules__hash(uint32_t v, size_t mask) {
  return ((uint64_t)v * 0x9E3779B97F4A7C15ull >> 32) & mask;
}

static int rules__set_has(const rules__set_t *s, uint32_t v) {
  for (size_t h = rules__hash(v, s->mask);; h = (h + 1) & s->mask) {
    if (s->k[h] == v)
      return 1;
    if (s->k[h] == UINT32_MAX)
      return 0;
  }
}

static void rules__set_add(rules__set_t *s, uint32_t v) {
  size_t h = rules__hash(v, s->mask);
  while (s->k[h] != UINT32_MAX && s->k[h] != v)
    h = (h + 1) & s->mask;
  s->k[h] = v;
}

int rec_walk_needed(const rec_query_t *q, int use_promote) {
  return q->max_per_category > 0 || q->one_per_group ||
         (q->exclude_bought_groups && q->families == NULL) ||
         (use_promote && q->promote > 0 && q->promoted != NULL);
}

int rec_filter_passes(const topk_filter_t *f, uint32_t i) {
  if (f == NULL)
    return 1;
  if (f->exclude_bits != NULL && (f->exclude_bits[i / 64] >> (i % 64)) & 1)
    return 0;
  size_t lo = 0, hi = f->n_exclude; /* sorted: binary search */
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (f->exclude[mid] < i)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < f->n_exclude && f->exclude[lo] == i)
    return 0;
  if (f->item_category != NULL && f->cat_adjust != NULL) {
    const uint32_t c = f->item_category[i];
    if (c < f->n_slots && !(f->cat_adjust[c] > -INFINITY))
      return 0; /* removed category (NaN adjustments never rank either) */
  }
  return 1;
}

typedef struct rules__cand {
  float s;
  uint32_t i;
} rules__cand_t;

static int rules__cmp_cand(const void *a, const void *b) {
  const rules__cand_t *x = a, *y = b;
  if (x->s != y->s)
    return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

static int rules__better(const rules__cand_t *a, const rules__cand_t *b) {
  return a->s > b->s || (a->s == b->s && a->i < b->i);
}

/* Reorders a[0..n) so that a[0..t) are its best t, in any order (0 < t <
 * n). Wirth's selection: linear on average; the order is total (indices
 * differ), so it is well defined. */
static void rules__select(rules__cand_t *a, size_t n, size_t t) {
  ptrdiff_t l = 0, m = (ptrdiff_t)n - 1;
  const ptrdiff_t k = (ptrdiff_t)t - 1;
  while (l < m) {
    const rules__cand_t x = a[k];
    ptrdiff_t i = l, j = m;
    do {
      while (rules__better(&a[i], &x))
        i++;
      while (rules__better(&x, &a[j]))
        j--;
      if (i <= j) {
        const rules__cand_t tmp = a[i];
        a[i] = a[j];
        a[j] = tmp;
        i++;
        j--;
      }
    } while (i <= j);
    if (j < k)
      l = i;
    if (k < i)
      m = j;
  }
}

/* The answer arrays to `want` entries. */
static int rules__grow_ans(rec_ws_t *ws, size_t want) {
  if (want <= ws->ans_cap && ws->ans != NULL)
    return 0;
  const size_t n = want < 16 ? 16 : want;
  uint32_t *a = realloc(ws->ans, n * sizeof *a);
  if (a != NULL)
    ws->ans = a;
  float *s = realloc(ws->ans_scores, n * sizeof *s);
  if (s != NULL)
    ws->ans_scores = s;
  uint8_t *p = realloc(ws->ans_promoted, n * sizeof *p);
  if (p != NULL)
    ws->ans_promoted = p;
  if (a == NULL || s == NULL || p == NULL)
    return RECD_ENOMEM;
  ws->ans_cap = n;
  return 0;
}

/* The walk's scratch block to at least `bytes`. */
static void *rules__scratch(rec_ws_t *ws, size_t bytes) {
  if (bytes > ws->walk_cap || ws->walk == NULL) {
    void *p = malloc(bytes ? bytes : 1);
    if (p == NULL)
      return NULL;
    free(ws->walk);
    ws->walk = p;
    ws->walk_cap = bytes;
  }
  return ws->walk;
}

/* The state of one walk. */
typedef struct rules__walk {
  size_t cap;               /* max_per_category, 0 = off */
  const uint32_t *cat;      /* item categories */
  uint32_t *count;          /* per category slot: items taken */
  const uint32_t *group;    /* item families, NULL when no family rule */
  int one_per_group;
  rules__set_t used, bought, taken;
  int track_taken;          /* promoted slots: an item may come twice */
  int track_bought;
  /* "nothing admissible is left": allowed categories not yet full (slot 0
   * allowed counts as never full) */
  size_t open;
  const float *adj;         /* the filter's adjustments (NULL: all allowed) */
  uint32_t n_slots;
} rules__walk_t;

static int rules__allowed_slot(const rules__walk_t *w, uint32_t c) {
  return w->adj == NULL || c >= w->n_slots || w->adj[c] > -INFINITY;
}

static int rules__admissible(const rules__walk_t *w, uint32_t i) {
  if (w->track_taken && rules__set_has(&w->taken, i))
    return 0;
  if (w->group != NULL && w->group[i] != MODEL_NO_GROUP) {
    const uint32_t g = w->group[i];
    if (w->track_bought && rules__set_has(&w->bought, g))
      return 0;
    if (w->one_per_group && rules__set_has(&w->used, g))
      return 0;
  }
  if (w->cap > 0) {
    const uint32_t c = w->cat[i];
    if (c != MODEL_NO_CATEGORY && c < w->n_slots && w->count[c] >= w->cap)
      return 0;
  }
  return 1;
}

static void rules__take(rules__walk_t *w, uint32_t i) {
  if (w->track_taken)
    rules__set_add(&w->taken, i);
  if (w->one_per_group && w->group != NULL && w->group[i] != MODEL_NO_GROUP)
    rules__set_add(&w->used, w->group[i]);
  if (w->cap > 0) {
    const uint32_t c = w->cat[i];
    if (c != MODEL_NO_CATEGORY && c < w->n_slots && ++w->count[c] == w->cap &&
        rules__allowed_slot(w, c))
      w->open--;
  }
}

int rec_walk(const model_t *m, const rec_query_t *q, const topk_filter_t *f, const uint32_t *R,
             const float *Rs, size_t nR, int complete, const float *x, const float *base,
             int use_promote, rec_ws_t *ws, size_t *n_out, size_t *deeper) {
  const uint32_t n = model_n_items(m);
  *n_out = 0;
  *deeper = 0;
  size_t want = q->offset + q->count;
  if (want > n)
    want = n; /* no answer ranking is longer than the catalogue */
  if (rules__grow_ans(ws, want) != 0)
    return RECD_ENOMEM;
  rules__walk_t w = {.cap = q->max_per_category,
                     .cat = model_item_categories(m),
                     .one_per_group = q->one_per_group,
                     .n_slots = model_n_categories(m) + 1};
  if (f != NULL && f->cat_adjust != NULL && f->n_slots == w.n_slots)
    w.adj = f->cat_adjust;
  if (q->one_per_group || (q->exclude_bought_groups && q->families == NULL))
    w.group = model_item_groups(m);
  /* with the family index the bought families are already filtered out */
  w.track_bought = q->exclude_bought_groups && q->families == NULL && q->n_hist > 0;
  size_t promote = use_promote && q->promoted != NULL ? q->promote : 0;
  if (promote > want / 2)
    promote = want / 2; /* slots beyond the answer's length never come up */
  w.track_taken = promote > 0;

  /* The promoted candidates: how many bits are set, to size the block. */
  size_t np_max = 0;
  if (promote > 0)
    for (uint32_t b = 0; b < (n + 63) / 64; b++) {
      uint64_t word = q->promoted[b];
      if (b == n / 64 && n % 64 != 0)
        word &= ((uint64_t)1 << (n % 64)) - 1;
      np_max += (size_t)__builtin_popcountll(word);
    }

  /* One block: counts, the three sets, the promoted candidates. */
  const size_t s_used = w.one_per_group ? rules__pow2(want) : 0;
  const size_t s_bought = w.track_bought ? rules__pow2(q->n_hist) : 0;
  const size_t s_taken = w.track_taken ? rules__pow2(want) : 0;
  const size_t n_count = w.cap > 0 ? w.n_slots : 0;
  const size_t u32s = n_count + s_used + s_bought + s_taken;
  const size_t cand_off = (u32s * sizeof(uint32_t) + 7) & ~(size_t)7;
  uint8_t *blk = rules__scratch(ws, cand_off + np_max * sizeof(rules__cand_t));
  if (blk == NULL)
    return RECD_ENOMEM;
  uint32_t *u = (uint32_t *)(void *)blk;
  w.count = u;
  memset(w.count, 0, n_count * sizeof *w.count);
  u += n_count;
  if (s_used > 0)
    rules__set_init(&w.used, u, s_used);
  u += s_used;
  if (s_bought > 0) {
    rules__set_init(&w.bought, u, s_bought);
    for (size_t j = 0; j < q->n_hist; j++)
      if (q->hist[j] < n && w.group[q->hist[j]] != MODEL_NO_GROUP)
        rules__set_add(&w.bought, w.group[q->hist[j]]);
  }
  u += s_bought;
  if (s_taken > 0)
    rules__set_init(&w.taken, u, s_taken);
  rules__cand_t *P = (rules__cand_t *)(void *)(blk + cand_off);

  /* Categories that can still take an item: when none is left (and
   * uncategorised items are filtered out), nothing beyond the prefix can
   * be admissible and the walk is decided. */
  if (w.cap > 0) {
    w.open = rules__allowed_slot(&w, MODEL_NO_CATEGORY) ? SIZE_MAX / 2 : 0;
    for (uint32_t c = 1; c < w.n_slots; c++)
      w.open += rules__allowed_slot(&w, c);
  }

  /* P: the promoted items that pass the filter, scored as R is. Their
   * rows are scattered over the catalogue: the rows a few items ahead are
   * requested while one is scored (as rec__rescore does), and only the
   * best few are sorted up front (the walk rarely needs more than the
   * slots plus a few the caps skip); the rest is sorted if it is reached. */
  size_t np = 0, sorted = 0;
  if (promote > 0) {
    for (uint32_t b = 0; b < (n + 63) / 64; b++)
      for (uint64_t word = q->promoted[b]; word != 0; word &= word - 1) {
        const uint32_t i = b * 64 + (uint32_t)__builtin_ctzll(word);
        if (i < n && rec_filter_passes(f, i))
          P[np++].i = i;
      }
    const float *Y = model_item_factors(m);
    const uint32_t stride = model_stride(m), k = model_factors(m);
    enum { AHEAD = 8 };
    const size_t row_bytes = (size_t)stride * sizeof(float);
    for (size_t j = 0; x != NULL && j < np && j < AHEAD; j++)
      for (size_t o = 0; o < row_bytes; o += 64)
        __builtin_prefetch((const char *)(Y + (size_t)P[j].i * stride) + o);
    size_t kept = 0;
    for (size_t j = 0; j < np; j++) {
      const uint32_t i = P[j].i;
      float s;
      if (x != NULL) {
        if (j + AHEAD < np)
          for (size_t o = 0; o < row_bytes; o += 64)
            __builtin_prefetch((const char *)(Y + (size_t)P[j + AHEAD].i * stride) + o);
        s = rec_score_exact(x, Y + (size_t)i * stride, k);
      } else {
        s = base[i];
      }
      if (f != NULL && f->item_category != NULL && f->cat_adjust != NULL) {
        const uint32_t c = f->item_category[i];
        s += c < f->n_slots ? f->cat_adjust[c] : 0.0f;
      }
      if (isnan(s) || s == -INFINITY)
        continue; /* never ranked, as in topk_select */
      P[kept++] = (rules__cand_t){s, i};
    }
    np = kept;
    sorted = 2 * promote + 16;
    if (sorted < np)
      rules__select(P, np, sorted);
    else
      sorted = np;
    qsort(P, sorted, sizeof *P, rules__cmp_cand);
  }

  size_t pos = 0, ri = 0, pi = 0;
  while (pos < want) {
    if (pos % 2 == 1 && pos / 2 < promote) {
      for (;;) {
        if (pi == sorted && sorted < np) {
          /* everything left ranks below P[0..sorted): sort it too */
          qsort(P + sorted, np - sorted, sizeof *P, rules__cmp_cand);
          sorted = np;
        }
        if (pi == np || rules__admissible(&w, P[pi].i))
          break;
        pi++;
      }
      if (pi < np) {
        rules__take(&w, P[pi].i);
        ws->ans[pos] = P[pi].i;
        ws->ans_scores[pos] = P[pi].s;
        ws->ans_promoted[pos] = 1;
        pos++;
        pi++;
        continue;
      }
    }
    while (ri < nR && !rules__admissible(&w, R[ri]))
      ri++;
    if (ri == nR) {
      if (complete || (w.cap > 0 && w.open == 0))
        break; /* nothing admissible is left */
      /* Undecided: read so far nR items for pos answers; ask for twice
       * what that rate needs for the rest, at least twice as deep. */
      const size_t need = want - pos, per = nR / (pos ? pos : 1) + 1;
      size_t next = need > (SIZE_MAX / 4) / per ? SIZE_MAX / 4 : nR + 2 * need * per;
      if (next < 2 * nR + 64)
        next = 2 * nR + 64;
      *deeper = next;
      return 0;
    }
    rules__take(&w, R[ri]);
    ws->ans[pos] = R[ri];
    ws->ans_scores[pos] = Rs[ri];
    ws->ans_promoted[pos] = 0;
    pos++;
    ri++;
  }
  *n_out = pos;
  ws->walk_read = ri;
  return 0;
}
