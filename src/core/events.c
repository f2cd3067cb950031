/* events.c - the interaction log, its splits, its age-weighted matrix and
 * its popularity (contracts in events.h).
 *
 * Everything here works on the log grouped by (user, item) pair: two stable
 * counting sorts (by item, then by user) give every event's position in
 * (user, item, input order) order, in O(n + users + items) and without a
 * comparison sort, exactly as dataset_finalize() orders its rows. A pair's
 * events are then adjacent and in input order, so sums come out identical
 * to dataset_finalize()'s, and the pairs of a user come out with their
 * items ascending, which is already CSR order.
 */
#include "recd/events.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/eval.h"
#include "recd/rng.h"

static const char *const events__kind_names[] = {"random", "user-latest", "time-cut"};
#define EVENTS__N_KINDS (sizeof events__kind_names / sizeof events__kind_names[0])

/* Contract in events.h. */
const char *split_kind_name(split_kind_t k) {
  return (unsigned)k < EVENTS__N_KINDS ? events__kind_names[k] : "unknown";
}

/* Contract in events.h. */
int split_kind_parse(const char *s, split_kind_t *out) {
  if (s == NULL)
    return RECD_EINVAL;
  for (unsigned k = 0; k < EVENTS__N_KINDS; k++) {
    if (strcmp(s, events__kind_names[k]) == 0) {
      *out = (split_kind_t)k;
      return 0;
    }
  }
  return RECD_EINVAL;
}

/* Contract in events.h. */
void events_free(events_t *e) {
  free(e->user);
  free(e->item);
  free(e->w);
  free(e->t);
  memset(e, 0, sizeof *e);
}

/* Allocates e (overwritten) with room for cap events, n = 0. At least one
 * slot, so that an empty log still has non-NULL arrays. 0 or RECD_ENOMEM
 * (e zeroed). */
static int events__alloc(events_t *e, size_t cap, uint32_t n_users, uint32_t n_items,
                         int has_time) {
  memset(e, 0, sizeof *e);
  if (cap == 0)
    cap = 1;
  if (cap > SIZE_MAX / sizeof(int64_t))
    return RECD_ENOMEM;
  e->user = malloc(cap * sizeof *e->user);
  e->item = malloc(cap * sizeof *e->item);
  e->w = malloc(cap * sizeof *e->w);
  e->t = malloc(cap * sizeof *e->t);
  if (e->user == NULL || e->item == NULL || e->w == NULL || e->t == NULL) {
    events_free(e);
    return RECD_ENOMEM;
  }
  e->cap = cap;
  e->n_users = n_users;
  e->n_items = n_items;
  e->has_time = has_time;
  return 0;
}

/* Contract in events.h. */
int events_from_dataset(const dataset_t *ds, events_t *out) {
  memset(out, 0, sizeof *out);
  if (!ds->finalized)
    return RECD_EINVAL;
  const uint32_t nu = dataset_n_users(ds), ni = dataset_n_items(ds);
  if (ds->has_time) {
    const size_t n = ds->n_coo;
    if (events__alloc(out, n, nu, ni, 1) != 0)
      return RECD_ENOMEM;
    if (n > 0) {
      memcpy(out->user, ds->coo_user, n * sizeof *out->user);
      memcpy(out->item, ds->coo_item, n * sizeof *out->item);
      memcpy(out->w, ds->coo_w, n * sizeof *out->w);
      memcpy(out->t, ds->coo_t, n * sizeof *out->t);
    }
    out->n = n;
    return 0;
  }
  const csr_t *m = &ds->by_user;
  const uint64_t nnz = m->ptr[m->n_rows];
  if (nnz > SIZE_MAX || events__alloc(out, (size_t)nnz, nu, ni, 0) != 0)
    return RECD_ENOMEM;
  for (uint32_t u = 0; u < m->n_rows; u++) {
    for (uint64_t j = m->ptr[u]; j < m->ptr[u + 1]; j++) {
      out->user[j] = u;
      out->item[j] = m->idx[j];
      out->w[j] = m->val[j];
      out->t[j] = DATASET_NO_TIME;
    }
  }
  out->n = (size_t)nnz;
  return 0;
}

/* Checks what every function here relies on: each event inside the
 * n_users x n_items shape with a finite weight > 0, and, in a has_time
 * log, a time. 0, or RECD_EINVAL naming the first bad event. */
static int events__check(const events_t *ev, char *errbuf) {
  if (ev->n > 0 && (ev->user == NULL || ev->item == NULL || ev->w == NULL || ev->t == NULL))
    return recd_errf(errbuf, RECD_EINVAL, "events: %zu events but no arrays", ev->n);
  for (size_t k = 0; k < ev->n; k++) {
    if (ev->user[k] >= ev->n_users)
      return recd_errf(errbuf, RECD_EINVAL, "events: event %zu: user %u out of range (%u users)",
                       k, (unsigned)ev->user[k], (unsigned)ev->n_users);
    if (ev->item[k] >= ev->n_items)
      return recd_errf(errbuf, RECD_EINVAL, "events: event %zu: item %u out of range (%u items)",
                       k, (unsigned)ev->item[k], (unsigned)ev->n_items);
    if (!isfinite(ev->w[k]) || !(ev->w[k] > 0.0f))
      return recd_errf(errbuf, RECD_EINVAL, "events: event %zu: weight %g is not finite and > 0",
                       k, (double)ev->w[k]);
    if (ev->has_time && ev->t[k] == DATASET_NO_TIME)
      return recd_errf(errbuf, RECD_EINVAL, "events: event %zu has no time in a timed log", k);
  }
  return 0;
}

/* The log grouped by (user, item) pair, pairs in (user, item) order. */
typedef struct events__pairs {
  size_t n;       /* distinct pairs */
  uint64_t *uptr; /* n_users + 1: user u's pairs are [uptr[u], uptr[u + 1]) */
  uint32_t *item; /* per pair, ascending within a user */
  size_t *first;  /* n + 1: pair p's events are ord[first[p] .. first[p + 1]) */
  size_t *ord;    /* event indices in (user, item, input) order */
} events__pairs_t;

static void events__pairs_free(events__pairs_t *p) {
  free(p->uptr);
  free(p->item);
  free(p->first);
  free(p->ord);
  memset(p, 0, sizeof *p);
}

/* Groups a checked log by pair (see the top of the file). 0 or RECD_ENOMEM
 * (p zeroed). */
static int events__pairs_build(const events_t *ev, events__pairs_t *p) {
  memset(p, 0, sizeof *p);
  const size_t n = ev->n, slots = n ? n : 1;
  const size_t ncnt = (ev->n_users > ev->n_items ? ev->n_users : ev->n_items) + (size_t)1;
  if (slots > SIZE_MAX / sizeof(size_t) - 1)
    return RECD_ENOMEM;
  size_t *by_item = malloc(slots * sizeof *by_item);
  size_t *cnt = calloc(ncnt, sizeof *cnt);
  p->ord = malloc(slots * sizeof *p->ord);
  p->item = malloc(slots * sizeof *p->item);
  p->first = malloc((n + 1) * sizeof *p->first);
  p->uptr = calloc((size_t)ev->n_users + 1, sizeof *p->uptr);
  if (by_item == NULL || cnt == NULL || p->ord == NULL || p->item == NULL ||
      p->first == NULL || p->uptr == NULL) {
    free(by_item);
    free(cnt);
    events__pairs_free(p);
    return RECD_ENOMEM;
  }
  /* Stable counting sort by item, then by user: (user, item, input). */
  for (size_t k = 0; k < n; k++)
    cnt[ev->item[k] + 1]++;
  for (uint32_t i = 0; i < ev->n_items; i++)
    cnt[i + 1] += cnt[i];
  for (size_t k = 0; k < n; k++)
    by_item[cnt[ev->item[k]]++] = k;
  memset(cnt, 0, ncnt * sizeof *cnt);
  for (size_t k = 0; k < n; k++)
    cnt[ev->user[k] + 1]++;
  for (uint32_t u = 0; u < ev->n_users; u++)
    cnt[u + 1] += cnt[u];
  for (size_t j = 0; j < n; j++) {
    const size_t k = by_item[j];
    p->ord[cnt[ev->user[k]]++] = k;
  }
  free(by_item);
  free(cnt);
  size_t np = 0;
  for (size_t j = 0; j < n; j++) {
    const size_t k = p->ord[j], prev = j > 0 ? p->ord[j - 1] : 0;
    if (j == 0 || ev->user[k] != ev->user[prev] || ev->item[k] != ev->item[prev]) {
      p->first[np] = j;
      p->item[np] = ev->item[k];
      p->uptr[ev->user[k] + 1]++;
      np++;
    }
  }
  p->first[np] = n;
  for (uint32_t u = 0; u < ev->n_users; u++)
    p->uptr[u + 1] += p->uptr[u];
  p->n = np;
  return 0;
}

/* An event's weight, aged: halved every half_life_s before t_ref. The age
 * is taken in unsigned arithmetic, exact for any two int64 times. */
static double events__aged(const events_t *ev, size_t k, double half_life_s, int64_t t_ref) {
  const int64_t t = ev->t[k];
  if (!(half_life_s > 0.0) || t == DATASET_NO_TIME || t >= t_ref)
    return (double)ev->w[k];
  const double age = (double)((uint64_t)t_ref - (uint64_t)t);
  return (double)ev->w[k] * exp2(-age / half_life_s);
}

/* Pair p's weight: its events summed in double in input order (as
 * dataset_finalize sums duplicates), rounded once, clamped to FLT_MAX and
 * kept positive (an aged sum may underflow float). */
static float events__pair_sum(const events_t *ev, const events__pairs_t *p, size_t pair,
                              double half_life_s, int64_t t_ref) {
  double s = 0.0;
  for (size_t j = p->first[pair]; j < p->first[pair + 1]; j++)
    s += events__aged(ev, p->ord[j], half_life_s, t_ref);
  if (s > FLT_MAX)
    return FLT_MAX;
  const float f = (float)s;
  return f > 0.0f ? f : FLT_TRUE_MIN;
}

/* Allocates an n_rows x n_cols CSR with room for nnz entries, ptr zeroed.
 * 0 or RECD_ENOMEM (m zeroed). */
static int events__csr_alloc(csr_t *m, uint32_t n_rows, uint32_t n_cols, size_t nnz) {
  memset(m, 0, sizeof *m);
  m->n_rows = n_rows;
  m->n_cols = n_cols;
  m->ptr = calloc((size_t)n_rows + 1, sizeof *m->ptr);
  m->idx = malloc((nnz ? nnz : 1) * sizeof *m->idx);
  m->val = malloc((nnz ? nnz : 1) * sizeof *m->val);
  if (m->ptr == NULL || m->idx == NULL || m->val == NULL) {
    csr_free(m);
    return RECD_ENOMEM;
  }
  return 0;
}

/* The by-user CSR of the pairs with keep[p] set (every pair when keep is
 * NULL), valued by events__pair_sum. 0 or RECD_ENOMEM (out zeroed). */
static int events__pairs_csr(const events_t *ev, const events__pairs_t *p, const uint8_t *keep,
                             double half_life_s, int64_t t_ref, csr_t *out) {
  size_t nnz = 0;
  for (size_t q = 0; q < p->n; q++)
    nnz += keep == NULL || keep[q];
  if (events__csr_alloc(out, ev->n_users, ev->n_items, nnz) != 0)
    return RECD_ENOMEM;
  size_t w = 0;
  for (uint32_t u = 0; u < ev->n_users; u++) {
    for (uint64_t q = p->uptr[u]; q < p->uptr[u + 1]; q++) {
      if (keep != NULL && !keep[q])
        continue;
      out->idx[w] = p->item[q];
      out->val[w++] = events__pair_sum(ev, p, (size_t)q, half_life_s, t_ref);
    }
    out->ptr[u + 1] = w;
  }
  return 0;
}

/* Contract in events.h. */
int events_to_csr(const events_t *ev, double half_life_s, int64_t t_ref, csr_t *by_user) {
  memset(by_user, 0, sizeof *by_user);
  if (isnan(half_life_s) || half_life_s < 0.0 || events__check(ev, NULL) != 0)
    return RECD_EINVAL;
  events__pairs_t p;
  if (events__pairs_build(ev, &p) != 0)
    return RECD_ENOMEM;
  int rc = events__pairs_csr(ev, &p, NULL, half_life_s, t_ref, by_user);
  events__pairs_free(&p);
  return rc;
}

/* Contract in events.h. */
int events_popularity(const events_t *ev, int64_t since, float *pop) {
  if (events__check(ev, NULL) != 0)
    return RECD_EINVAL;
  events__pairs_t p;
  if (events__pairs_build(ev, &p) != 0)
    return RECD_ENOMEM;
  for (uint32_t i = 0; i < ev->n_items; i++)
    pop[i] = 0.0f;
  /* One count per pair with a recent enough event: distinct users. */
  for (size_t q = 0; q < p.n; q++) {
    for (size_t j = p.first[q]; j < p.first[q + 1]; j++) {
      if (ev->t[p.ord[j]] >= since) {
        pop[p.item[q]] += 1.0f;
        break;
      }
    }
  }
  events__pairs_free(&p);
  return 0;
}

/* Contract in events.h. DATASET_NO_TIME is INT64_MIN, below every time,
 * so untimed events never win and an untimed log gives it back. */
int64_t events_t_max(const events_t *ev) {
  int64_t m = DATASET_NO_TIME;
  for (size_t k = 0; k < ev->n; k++)
    if (ev->t[k] > m)
      m = ev->t[k];
  return m;
}

/* SPLIT_RANDOM: held[q] = 1 for the pairs eval_holdout_split puts in test
 * when given the aggregated matrix, found by walking each user's sorted
 * aggregated and test rows side by side. 0 or RECD_ENOMEM. */
static int events__hold_random(const events_t *ev, const events__pairs_t *p, double fraction,
                               uint64_t seed, uint8_t *held) {
  csr_t agg, tr, te;
  if (events__pairs_csr(ev, p, NULL, 0.0, 0, &agg) != 0)
    return RECD_ENOMEM;
  int rc = eval_holdout_split(&agg, fraction, seed, &tr, &te);
  csr_free(&agg);
  if (rc != 0)
    return rc;
  for (uint32_t u = 0; u < ev->n_users; u++) {
    uint64_t j = te.ptr[u];
    for (uint64_t q = p->uptr[u]; q < p->uptr[u + 1] && j < te.ptr[u + 1]; q++) {
      if (p->item[q] == te.idx[j]) {
        held[q] = 1;
        j++;
      }
    }
  }
  csr_free(&tr);
  csr_free(&te);
  return 0;
}

/* One of a user's pairs, for ordering by first time. */
typedef struct events__dated {
  int64_t t;   /* the pair's earliest event */
  size_t rank; /* position in the seeded shuffle: breaks ties */
  size_t pair;
} events__dated_t;

static int events__dated_cmp(const void *a, const void *b) {
  const events__dated_t *x = a, *y = b;
  if (x->t != y->t)
    return x->t < y->t ? -1 : 1;
  return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* SPLIT_USER_LATEST: held[q] = 1 for each user's latest h pairs (see
 * events.h). Shuffling first and then sorting by (time, shuffled rank)
 * orders tied pairs uniformly at random, deterministically, whatever qsort
 * does with equal keys (there are none). 0 or RECD_ENOMEM. */
static int events__hold_latest(const events_t *ev, const events__pairs_t *p, double fraction,
                               uint64_t seed, uint8_t *held) {
  uint64_t max_row = 0;
  for (uint32_t u = 0; u < ev->n_users; u++)
    if (p->uptr[u + 1] - p->uptr[u] > max_row)
      max_row = p->uptr[u + 1] - p->uptr[u];
  events__dated_t *d = malloc((size_t)(max_row ? max_row : 1) * sizeof *d);
  if (d == NULL)
    return RECD_ENOMEM;
  rng_t r;
  rng_seed(&r, seed);
  for (uint32_t u = 0; u < ev->n_users; u++) {
    const uint64_t b = p->uptr[u];
    const size_t n = (size_t)(p->uptr[u + 1] - b);
    if (n < 2)
      continue;
    size_t h = (size_t)llround(fraction * (double)n);
    h = h < 1 ? 1 : h > n - 1 ? n - 1 : h;
    for (size_t j = 0; j < n; j++) {
      const size_t q = (size_t)b + j;
      int64_t t = ev->t[p->ord[p->first[q]]];
      for (size_t k = p->first[q] + 1; k < p->first[q + 1]; k++)
        if (ev->t[p->ord[k]] < t)
          t = ev->t[p->ord[k]];
      d[j] = (events__dated_t){.t = t, .rank = j, .pair = q};
    }
    /* Fisher-Yates over the ranks. */
    for (size_t j = n - 1; j > 0; j--) {
      const size_t pick = (size_t)rng_below(&r, (uint64_t)j + 1);
      const size_t tmp = d[j].rank;
      d[j].rank = d[pick].rank;
      d[pick].rank = tmp;
    }
    qsort(d, n, sizeof *d, events__dated_cmp);
    for (size_t j = n - h; j < n; j++)
      held[d[j].pair] = 1;
  }
  free(d);
  return 0;
}

/* SPLIT_TIME_CUT: T (see events.h) for a checked, timed, non-empty log.
 * The span is taken in unsigned arithmetic (exact for any two int64) and
 * the offset clamped to it, so that rounding cannot push T past t_max. */
static int64_t events__cut(const events_t *ev, double fraction) {
  int64_t lo = ev->t[0], hi = ev->t[0];
  for (size_t k = 1; k < ev->n; k++) {
    if (ev->t[k] < lo)
      lo = ev->t[k];
    if (ev->t[k] > hi)
      hi = ev->t[k];
  }
  const uint64_t span = (uint64_t)hi - (uint64_t)lo;
  const double off = ceil((1.0 - fraction) * (double)span);
  const uint64_t o = off >= (double)span ? span : (uint64_t)off;
  return (int64_t)((uint64_t)lo + o);
}

/* SPLIT_TIME_CUT: in_train[k] = t < T per event, and held[q] = 1 for the
 * pairs with no train event whose user has one. */
static void events__hold_cut(const events_t *ev, const events__pairs_t *p, int64_t cut,
                             uint8_t *in_train, uint8_t *held) {
  for (size_t k = 0; k < ev->n; k++)
    in_train[k] = ev->t[k] < cut;
  for (uint32_t u = 0; u < ev->n_users; u++) {
    int user_trained = 0;
    for (uint64_t q = p->uptr[u]; q < p->uptr[u + 1] && !user_trained; q++)
      for (size_t j = p->first[q]; j < p->first[q + 1] && !user_trained; j++)
        user_trained = in_train[p->ord[j]];
    if (!user_trained)
      continue;
    for (uint64_t q = p->uptr[u]; q < p->uptr[u + 1]; q++) {
      int pair_trained = 0;
      for (size_t j = p->first[q]; j < p->first[q + 1] && !pair_trained; j++)
        pair_trained = in_train[p->ord[j]];
      held[q] = !pair_trained;
    }
  }
}

/* Contract in events.h. */
int events_split(const events_t *ev, split_kind_t kind, double fraction, uint64_t seed,
                 events_t *train, csr_t *test, int64_t *cut, char *errbuf) {
  if (train == ev)
    return recd_errf(errbuf, RECD_EINVAL, "split: the train output is the input");
  memset(train, 0, sizeof *train);
  memset(test, 0, sizeof *test);
  if ((unsigned)kind >= EVENTS__N_KINDS)
    return recd_errf(errbuf, RECD_EINVAL, "split: unknown kind %d", (int)kind);
  if (!(fraction > 0.0 && fraction < 1.0))
    return recd_errf(errbuf, RECD_EINVAL, "split %s: fraction %g is not in (0, 1)",
                     split_kind_name(kind), fraction);
  if (kind != SPLIT_RANDOM && !ev->has_time)
    return recd_errf(errbuf, RECD_EINVAL,
                     "split %s needs interaction times, and this log has none (or not on "
                     "every interaction); use split random",
                     split_kind_name(kind));
  int rc = events__check(ev, errbuf);
  if (rc != 0)
    return rc;
  events__pairs_t p;
  if (events__pairs_build(ev, &p) != 0)
    return recd_errf(errbuf, RECD_ENOMEM, "split %s: out of memory", split_kind_name(kind));
  uint8_t *held = calloc(p.n ? p.n : 1, 1);
  uint8_t *in_train = malloc(ev->n ? ev->n : 1);
  int64_t t_cut = DATASET_NO_TIME, latest = DATASET_NO_TIME;
  size_t n_train = 0;
  if (held == NULL || in_train == NULL) {
    rc = RECD_ENOMEM;
    goto out;
  }
  if (kind == SPLIT_TIME_CUT) {
    if (ev->n > 0)
      events__hold_cut(ev, &p, t_cut = events__cut(ev, fraction), in_train, held);
  } else {
    rc = kind == SPLIT_RANDOM ? events__hold_random(ev, &p, fraction, seed, held)
                              : events__hold_latest(ev, &p, fraction, seed, held);
    if (rc != 0)
      goto out;
    for (size_t q = 0; q < p.n; q++)
      for (size_t j = p.first[q]; j < p.first[q + 1]; j++)
        in_train[p.ord[j]] = !held[q];
  }
  for (size_t k = 0; k < ev->n; k++)
    n_train += in_train[k];
  if ((rc = events__alloc(train, n_train, ev->n_users, ev->n_items, ev->has_time)) != 0 ||
      (rc = events__pairs_csr(ev, &p, held, 0.0, 0, test)) != 0) {
    events_free(train);
    goto out;
  }
  /* Input order, so that splitting the train part again sees the same log. */
  for (size_t k = 0, w = 0; k < ev->n; k++) {
    if (!in_train[k])
      continue;
    train->user[w] = ev->user[k];
    train->item[w] = ev->item[k];
    train->w[w] = ev->w[k];
    train->t[w++] = ev->t[k];
    if (ev->t[k] > latest)
      latest = ev->t[k];
  }
  train->n = n_train;
  if (cut != NULL)
    *cut = kind == SPLIT_TIME_CUT ? t_cut : latest;
out:
  free(held);
  free(in_train);
  events__pairs_free(&p);
  if (rc == RECD_ENOMEM)
    return recd_errf(errbuf, rc, "split %s: out of memory", split_kind_name(kind));
  return rc;
}
