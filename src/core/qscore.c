/* qscore.c - the int8 item copy, query quantisation, the candidate
 * collector and the portable scan kernel (see qscore.h). */
/* madvise(MADV_HUGEPAGE) is Linux's, outside POSIX */
#define _DEFAULT_SOURCE
#include "recd/qscore.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qscore_internal.h"
#include "recd/err.h"

/* Rows are allocated in blocks of 8, the kernels' unit. */
static size_t qmat__rows(uint32_t n) {
  return ((size_t)n + 7) & ~(size_t)7;
}

/* Byte offset of item i's block (layout in qscore.h). */
static size_t qmat__block(const qmat_t *qm, uint32_t i) {
  return (size_t)(i / 8) * 8 * qm->kpad;
}

size_t qquery_bytes(const qmat_t *qm) {
  return (size_t)8 * qm->kpad;
}

/* Row bytes: k padded to whole groups of 8 factors. */
static size_t qmat__kpad(uint32_t k) {
  return (k + 7u) & ~(size_t)7u;
}

/* Memory for one of the copies' arrays (not zeroed), 64-byte aligned. From
 * QSCORE_HUGE_MIN bytes on it is aligned to 2 MiB and the kernel is asked
 * for transparent huge pages (Debian's default THP mode is `madvise`: no
 * huge page unless asked). Why: a one-customer scan streams the 4-bit
 * copy and jumps into the int8 copy for each block that passes; with 4 KB
 * pages every 4 KB of the stream and nearly every jump was a TLB miss.
 * Without THP (or when the kernel has no huge page free) the advice is a
 * no-op. Freed with free(). */
#define QSCORE_HUGE (2u << 20)
#define QSCORE_HUGE_MIN (4u << 20)
void *qscore__alloc_big(size_t bytes) {
  if (bytes < QSCORE_HUGE_MIN)
    return bytes ? aligned_alloc(64, (bytes + 63) & ~(size_t)63) : aligned_alloc(64, 64);
  const size_t size = (bytes + QSCORE_HUGE - 1) & ~(size_t)(QSCORE_HUGE - 1);
  void *p = aligned_alloc(QSCORE_HUGE, size);
  if (p == NULL)
    return NULL;
#ifdef MADV_HUGEPAGE
  (void)madvise(p, size, MADV_HUGEPAGE); /* advice: its failure changes nothing */
#endif
  return p;
}

/* The storage of a build: every row zero (64), scales, norms and residuals
 * 0; the 4-bit copy's with with_q4. 0 or RECD_ENOMEM. */
static int qmat__alloc(qmat_t *qm, uint32_t n, uint32_t k, int with_q4) {
  memset(qm, 0, sizeof *qm);
  qm->n = n;
  qm->k = k;
  qm->kpad = (uint32_t)qmat__kpad(k);
  const size_t rows = qmat__rows(n), bytes = (rows ? rows : 8) * qm->kpad;
  const size_t fbytes = (rows ? rows : 8) * sizeof(float);
  qm->q = qscore__alloc_big(bytes);
  qm->scale = qscore__alloc_big(fbytes);
  qm->norm = qscore__alloc_big(fbytes);
  qm->resid = qscore__alloc_big(fbytes);
  if (qm->q == NULL || qm->scale == NULL || qm->norm == NULL || qm->resid == NULL ||
      (with_q4 && qmat4__alloc(qm, rows ? rows : 8) != 0)) {
    qmat_free(qm);
    return RECD_ENOMEM;
  }
  memset(qm->q, 64, bytes); /* the stored zero */
  memset(qm->scale, 0, fbytes);
  memset(qm->norm, 0, fbytes);
  memset(qm->resid, 0, fbytes);
  return 0;
}

/* lrintf(t) for |t| < 2^22, in the default rounding mode (to nearest,
 * ties to even), without the libm call: adding 1.5 * 2^23 leaves no bits
 * below the unit, so the float addition itself rounds t to an integer.
 * Building the copies called lrintf for every factor (half of a 1M-item
 * build's second). */
static inline long qmat__rint(float t) {
  const float magic = 0x1.8p23f;
  return (long)((t + magic) - magic);
}

/* Row i from the k floats y: its bytes, scale, norm and residual. */
static void qmat__row(qmat_t *qm, uint32_t i, const float *y) {
  const uint32_t k = qm->k;
  float m = 0;
  double norm = 0;
  for (uint32_t a = 0; a < k; a++) {
    m = fabsf(y[a]) > m ? fabsf(y[a]) : m;
    norm += (double)y[a] * y[a];
  }
  float yn = (float)(sqrt(norm) * (1.0 + 0x1p-20)); /* rounded up */
  qm->norm[i] = yn;
  if (yn > qm->max_norm)
    qm->max_norm = yn;
  float s = m / 63.0f;
  qm->scale[i] = s;
  uint8_t *q = qm->q + qmat__block(qm, i) + (i % 8) * 4;
  double resid = 0;
  for (uint32_t a = 0; a < k; a++) {
    long v = 0;
    if (s > 0) {
      v = qmat__rint(y[a] / s); /* |y / s| <= 63 (+ rounding) */
      v = v > 63 ? 63 : v < -63 ? -63 : v;
    }
    q[(a / 4) * 32 + a % 4] = (uint8_t)(v + 64);
    double d = (double)y[a] - (double)s * (double)v;
    resid += d * d;
  }
  /* rounded up so that the bound stays a bound in float */
  float r = (float)(sqrt(resid) * (1.0 + 0x1p-20));
  qm->resid[i] = r;
  if (r > qm->max_resid)
    qm->max_resid = r;
  if (qm->q4 != NULL)
    qmat4__row(qm, i, y, yn);
}

int qmat_build_with(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k, int with_q4) {
  if (qmat__alloc(qm, n, k, with_q4) != 0)
    return RECD_ENOMEM;
  for (uint32_t i = 0; i < n; i++)
    qmat__row(qm, i, Y + (size_t)i * ldy);
  return 0;
}

int qmat_build(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k) {
  return qmat_build_with(qm, Y, ldy, n, k, 1);
}

int qmat_build_cosine(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k,
                      const float *norms, float norm_min, float norm_max) {
  return qmat_build_cosine_with(qm, Y, ldy, n, k, norms, norm_min, norm_max, 1);
}

int qmat_build_cosine_with(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k,
                           const float *norms, float norm_min, float norm_max, int with_q4) {
  if (qmat__alloc(qm, n, k, with_q4) != 0)
    return RECD_ENOMEM;
  float *z = malloc((k ? k : 1) * sizeof *z);
  if (z == NULL) {
    qmat_free(qm);
    return RECD_ENOMEM;
  }
  for (uint32_t i = 0; i < n; i++) {
    const float *y = Y + (size_t)i * ldy, ni = norms[i];
    if (!(ni > 0.0f)) {
      /* Similar to nothing: a NaN scale makes every score NaN, which no
       * threshold test passes and the collector drops like a filtered
       * item, so the row never takes a place in anyone's top. */
      qm->scale[i] = NAN;
      if (qm->q4 != NULL)
        qm->scale4[i] = 0x7fc0; /* NaN too: the prefilter passes it on */
      continue;
    }
    /* z_i = y_i / |y_i| in float, factor by factor: the rounding that
     * recommend.c's rec_similar_slack allows for. */
    for (uint32_t a = 0; a < k; a++)
      z[a] = y[a] / ni;
    qmat__row(qm, i, z);
    if (!(ni >= norm_min && ni <= norm_max)) {
      /* No proven bound for this row: an infinite one keeps it a
       * candidate whatever its score, and never raises a bar. */
      qm->resid[i] = qm->max_resid = INFINITY;
      if (qm->q4 != NULL)
        qm->resid4[i] = 0x7f80;
    }
  }
  free(z);
  return 0;
}

void qmat_free(qmat_t *qm) {
  free(qm->q);
  free(qm->scale);
  free(qm->norm);
  free(qm->resid);
  qmat_drop_q4(qm);
  memset(qm, 0, sizeof *qm);
}

size_t qmat_bytes_int8_for(uint32_t n, uint32_t k) {
  return qmat__rows(n) * (qmat__kpad(k) + 3 * sizeof(float)); /* bytes, scale, norm, resid */
}

size_t qmat_bytes_int8(const qmat_t *qm) {
  return qmat_bytes_int8_for(qm->n, qm->k);
}

size_t qmat_bytes(const qmat_t *qm) {
  /* nibbles, scale and residual per row, the norm per block of 8 */
  const size_t q4 = qm->q4 != NULL ? qmat__rows(qm->n) * (qm->kpad / 2 + 2 * sizeof(uint16_t)) +
                                         qmat__rows(qm->n) / 8 * sizeof(uint16_t)
                                   : 0;
  return qmat_bytes_int8(qm) + q4;
}

float qquery_prepare(const qmat_t *qm, const float *x, qquery_t *qq) {
  const uint32_t k = qm->k;
  float m = 0;
  double xn = 0;
  for (uint32_t a = 0; a < k; a++) {
    m = fabsf(x[a]) > m ? fabsf(x[a]) : m;
    xn += (double)x[a] * x[a];
  }
  const float sx = m / 63.0f;
  memset(qq->xq, 0, qquery_bytes(qm));
  double dxn = 0;
  int32_t sum = 0;
  for (uint32_t a = 0; a < k; a++) {
    long v = 0;
    if (sx > 0) {
      v = lrintf(x[a] / sx);
      v = v > 63 ? 63 : v < -63 ? -63 : v;
    }
    for (uint32_t j = 0; j < 8; j++) /* each 4-byte group, once per item of a block */
      qq->xq[(a / 4) * 32 + j * 4 + a % 4] = (int8_t)v;
    sum += (int32_t)v;
    double d = (double)x[a] - (double)sx * (double)v;
    dxn += d * d;
  }
  qq->sx = sx;
  qq->corr = 64 * sum;
  /* The integer dot is exact (|dot| <= 63 * 63 * k < 2^31 for every k up
   * to MODEL_MAX_FACTORS); the float conversion and the two products round
   * by at most 3 ulps of |s_x q_x| |s_i q_i| <= (|x| + |dx|)(|y_i| + |dy_i|).
   * Per item: e_i = |dy_i| (|x| + |dx| + 4u(|x| + |dx|)) + |y_i| (|dx| +
   * 4u(|x| + |dx|)), the coefficients rounded up by 2^-16 relative, which
   * covers their rounding to float and the float evaluation of
   * qquery_item_bound (2 ulps). */
  const double xnorm = sqrt(xn), dx = sqrt(dxn), u4 = 4.0 * 0x1p-24 * (xnorm + dx);
  const double up = 1.0 + 0x1p-16;
  qq->ea = (float)((xnorm + dx + u4) * up);
  qq->eb = (float)((dx + u4) * up);
  const double ymax = qm->max_norm, r = qm->max_resid;
  return (float)((r * (xnorm + dx + u4) + ymax * (dx + u4)) * up);
}

/* ---- the collector ---------------------------------------------------- */

static int qsel__grow(qsel_t *s, size_t cap);

int qsel_init(qsel_t *s, const topk_filter_t *f, size_t want, float slack) {
  memset(s, 0, sizeof *s);
  s->f = f;
  s->want = want ? want : 1;
  s->slack = slack;
  s->thresh = -INFINITY;
  /* NaN adjustments never raise a score and -inf ones remove it. */
  for (uint32_t c = 0; f != NULL && f->cat_adjust != NULL && c < f->n_slots; c++)
    if (f->cat_adjust[c] > s->amax)
      s->amax = f->cat_adjust[c];
  /* Room for the top `want` and the near misses: with the bar kept up to
   * date offer by offer, a scan offers a few times `want` items. */
  s->lim = 4 * s->want + 1024;
  s->best = malloc(s->want * sizeof *s->best);
  if (s->best == NULL || qsel__grow(s, s->lim) != 0) {
    qsel_free(s);
    return RECD_ENOMEM;
  }
  return 0;
}

void qsel_free(qsel_t *s) {
  free(s->idx);
  free(s->s);
  free(s->err);
  free(s->key);
  free(s->best);
  s->idx = NULL;
  s->s = s->err = s->key = NULL;
  s->best = NULL;
  s->n = s->cap = s->lim = s->hn = 0;
}

/* Resizes *p to n elements of sz bytes; on failure *p is left as it was
 * (and still owned by the collector). 0 or -1. */
static int qsel__resize(void **p, size_t n, size_t sz) {
  void *q = realloc(*p, n * sz);
  if (q == NULL)
    return -1;
  *p = q;
  return 0;
}

/* The four parallel arrays to cap entries (never smaller). */
static int qsel__grow(qsel_t *s, size_t cap) {
  if (cap <= s->cap)
    return 0;
  if (qsel__resize((void **)&s->idx, cap, sizeof *s->idx) != 0 ||
      qsel__resize((void **)&s->s, cap, sizeof *s->s) != 0 ||
      qsel__resize((void **)&s->err, cap, sizeof *s->err) != 0 ||
      qsel__resize((void **)&s->key, cap, sizeof *s->key) != 0)
    return RECD_ENOMEM;
  s->cap = cap;
  return 0;
}

static int qsel__excluded(const topk_filter_t *f, uint32_t i) {
  if (f->exclude_bits != NULL && (f->exclude_bits[i / 64] >> (i % 64)) & 1)
    return 1;
  /* The hint first: the search's unpredictable branches were half of
   * qsel_offer's time at 100k items and 50 connections. */
  if (f->hinted && !((f->exclude_hint[(i / 64) % 8] >> (i % 64)) & 1))
    return 0;
  size_t lo = 0, hi = f->n_exclude; /* sorted: binary search */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (f->exclude[mid] < i)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < f->n_exclude && f->exclude[lo] == i;
}

/* The adjusted score of item i of approximate score v, or -INFINITY when
 * the filter removes it (NaN is reported as -INFINITY too: it never
 * ranks). */
static float qsel__key(const qsel_t *s, uint32_t i, float v) {
  const topk_filter_t *f = s->f;
  if (f != NULL) {
    if (qsel__excluded(f, i))
      return -INFINITY;
    if (f->item_category != NULL && f->cat_adjust != NULL) {
      const uint32_t c = f->item_category[i];
      v += c < f->n_slots ? f->cat_adjust[c] : 0.0f;
    }
  }
  return isnan(v) ? -INFINITY : v;
}

/* Counts lo (key - e - slack, in double: exact enough that its own
 * rounding needs no allowance; the float key's rounding is in slack) among
 * the want best, and raises thresh to the bar L once there are want of
 * them. A NaN lo (an infinite key and bound) never raises the bar. */
static void qsel__count(qsel_t *s, double lo) {
  double *h = s->best;
  if (!(lo > -INFINITY))
    return;
  size_t p;
  if (s->hn < s->want) {
    /* sift up from the new leaf */
    p = s->hn++;
    while (p > 0 && h[(p - 1) / 2] > lo) {
      h[p] = h[(p - 1) / 2];
      p = (p - 1) / 2;
    }
    h[p] = lo;
    s->changes++;
    if (s->hn < s->want)
      return;
  } else {
    if (!(lo > h[0]))
      return;
    /* replace the root, sift down */
    p = 0;
    for (;;) {
      size_t c = 2 * p + 1;
      if (c >= s->hn)
        break;
      if (c + 1 < s->hn && h[c + 1] < h[c])
        c++;
      if (!(h[c] < lo))
        break;
      h[p] = h[c];
      p = c;
    }
    h[p] = lo;
    s->changes++;
  }
  qsel_raise_bar(s, h[0]);
}

void qsel_raise_bar(qsel_t *s, double bar) {
  if (!(bar > -INFINITY))
    return; /* (NaN too) */
  /* The scan compares v + e with thresh, unadjusted: an item with
   * v + e < thresh has hi < bar whatever its category. The relative pad
   * covers the float rounding of v + e and of v + adjustment (a few ulps
   * at these magnitudes); it only lets a few more near misses in. */
  const double t = bar - s->slack - s->amax;
  const double pad = (fabs(t) + fabs(bar) + s->amax + s->slack) * 0x1p-20;
  const float th = (float)(t - pad);
  if (th > s->thresh || isnan(s->thresh))
    s->thresh = th;
}

double qsel_kth_lo(qsel_t *s, size_t j) {
  if (j == 0 || j > s->hn)
    return -INFINITY;
  if (j == s->kth_j && s->changes == s->kth_at)
    return s->kth_lo; /* the best are as they were */
  if (j == s->hn)
    return s->best[0]; /* the min-heap's root (never NaN: qsel__count
                          skips those) */
  /* the j-th largest of the heap's hn values, the k-th smallest (from 0),
   * by selection on a copy (hn <= want, small next to a chunk's scan) */
  double stack[64], *t = s->hn <= 64 ? stack : malloc(s->hn * sizeof *t);
  if (t == NULL)
    return -INFINITY; /* no bar is always valid */
  memcpy(t, s->best, s->hn * sizeof *t);
  const ptrdiff_t k = (ptrdiff_t)(s->hn - j);
  ptrdiff_t lo = 0, hi = (ptrdiff_t)s->hn - 1;
  while (lo < hi) {
    /* Hoare's partition around the middle value: [lo, q] <= pivot <=
     * [q + 1, hi], lo <= q < hi */
    const double pivot = t[lo + (hi - lo) / 2];
    ptrdiff_t a = lo - 1, b = hi + 1;
    for (;;) {
      do
        a++;
      while (t[a] < pivot);
      do
        b--;
      while (t[b] > pivot);
      if (a >= b)
        break;
      const double x = t[a];
      t[a] = t[b];
      t[b] = x;
    }
    if (k <= b)
      hi = b;
    else
      lo = b + 1;
  }
  const double v = t[k];
  if (t != stack)
    free(t);
  s->kth_j = j;
  s->kth_at = s->changes;
  s->kth_lo = v;
  return v;
}

/* Appends a candidate that passed the filter (adjusted score key) to a
 * buffer with room for it, and counts its lo towards the bar. Why the bar
 * is kept up to date here rather than at compactions: a stale bar lets
 * through every item above it until the next compaction, and those offers
 * and compactions were a third of a scan's time at 3,659 items, k = 256
 * (bench/README.md). */
static void qsel__keep(qsel_t *s, uint32_t i, float v, float e, float key) {
  s->idx[s->n] = i;
  s->s[s->n] = v;
  s->err[s->n] = e;
  s->key[s->n] = key;
  s->n++;
  qsel__count(s, (double)key - e - s->slack);
}

int qsel_offer(qsel_t *s, uint32_t i, float v, float e) {
  /* The filter at once (each item is looked up once, as it comes): an
   * item it removes never takes room nor counts towards the bar. */
  const float key = qsel__key(s, i, v);
  if (key == -INFINITY)
    return 0;
  if (s->n >= s->lim) {
    int rc = qsel_compact(s);
    if (rc != 0)
      return rc;
  }
  qsel__keep(s, i, v, e, key);
  return 0;
}

int qsel_compact(qsel_t *s) {
  if (s->hn == s->want) {
    const double bar = s->best[0];
    size_t n = 0;
    for (size_t j = 0; j < s->n; j++) {
      if (!((double)s->key[j] + s->err[j] + s->slack >= bar))
        continue;
      s->idx[n] = s->idx[j];
      s->s[n] = s->s[j];
      s->err[n] = s->err[j];
      s->key[n] = s->key[j];
      n++;
    }
    s->n = n;
  }
  /* The next compaction when the buffer has grown by twice what this one
   * kept (at least), so that compaction work stays linear in the items
   * offered; the buffer is grown to keep that room (degenerate models,
   * where nearly every score ties, grow it instead of compacting after
   * every item). */
  size_t lim = 3 * s->n + 64;
  if (lim < s->lim)
    lim = s->lim;
  if (lim > s->cap && qsel__grow(s, lim > 2 * s->cap ? lim : 2 * s->cap) != 0)
    return RECD_ENOMEM;
  s->lim = lim;
  return 0;
}

int qsel_merge(qsel_t *dst, qsel_t *src) {
  if (qsel__grow(dst, dst->n + src->n + 1) != 0)
    return RECD_ENOMEM;
  if (dst->lim < dst->n + src->n + 1)
    dst->lim = dst->n + src->n + 1;
  /* src's items passed the same filter; their lo count in dst's bar */
  for (size_t j = 0; j < src->n; j++)
    qsel__keep(dst, src->idx[j], src->s[j], src->err[j], src->key[j]);
  src->n = 0;
  return qsel_compact(dst);
}

/* ---- kernels ---------------------------------------------------------- */

/* Item i's integer dot product, in the interleaved layout: group c of its
 * bytes is at block + 32c + 4(i % 8), the query's at 32c (any of its 8
 * copies). */
static int32_t qscore__dot(const qmat_t *qm, uint32_t i, const int8_t *restrict xq) {
  const uint8_t *restrict q = qm->q + qmat__block(qm, i) + (i % 8) * 4;
  int32_t acc = 0;
  for (uint32_t c = 0; c < qm->kpad / 4; c++)
    for (uint32_t t = 0; t < 4; t++)
      acc += (int32_t)q[32 * c + t] * (int32_t)xq[32 * c + t];
  return acc;
}

/* The 8 dot products of one block, in plain C: the same integers as
 * qscore__dot, with the loops ordered so that compilers vectorise across
 * the 8 items (the layout puts them in consecutive 4-byte slots). */
static void qscore__dots8(const uint8_t *restrict blk, uint32_t groups, const int8_t *restrict xq,
                          int32_t acc[8]) {
  for (uint32_t j = 0; j < 8; j++)
    acc[j] = 0;
  for (uint32_t c = 0; c < groups; c++)
    for (uint32_t t = 0; t < 4; t++) {
      const int32_t x = xq[32 * c + t];
      for (uint32_t j = 0; j < 8; j++)
        acc[j] += (int32_t)blk[32 * c + 4 * j + t] * x;
    }
}

int qscan__scalar(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq, qsel_t *sel,
                  size_t nq) {
  for (uint32_t base = lo; base < hi; base += 8) {
    const uint32_t end = hi - base > 8 ? base + 8 : hi;
    const uint8_t *blk = qm->q + qmat__block(qm, base);
    for (size_t r = 0; r < nq; r++) {
      int32_t acc[8];
      qscore__dots8(blk, qm->kpad / 4, qq[r].xq, acc);
      for (uint32_t i = base; i < end; i++) {
        const float v = qscore__value(acc[i - base] - qq[r].corr, qm->scale[i], qq[r].sx);
        const float e = qquery_item_bound(&qq[r], qm->resid[i], qm->norm[i]);
        if (v + e >= sel[r].thresh) {
          int rc = qsel__push(&sel[r], i, v, e);
          if (rc != 0)
            return rc;
        }
      }
    }
  }
  return 0;
}

static int qscore__avx2_ok(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
#else
  return 0;
#endif
}

/* Everything qscore_avx512.c's target attribute enables (libgcc's and
 * compiler-rt's checks include the OS's zmm state in XCR0). */
static int qscore__avx512_ok(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return 0;
#endif
}

int qscore_isa_supported(qscore_isa_t isa) {
  return isa == QSCORE_SCALAR || (isa == QSCORE_AVX2 && qscore__avx2_ok()) ||
         (isa == QSCORE_AVX512 && qscore__avx512_ok());
}

const char *qscore_isa_name(qscore_isa_t isa) {
  return isa == QSCORE_AVX512 ? "avx512" : isa == QSCORE_AVX2 ? "avx2" : "scalar";
}

qscore_isa_t qscore_isa_default(void) {
  /* Decided once per process; a race on first use only computes the same
   * value twice. */
  static volatile int chosen = -1;
  if (chosen < 0) {
    int want = QSCORE_ISA_COUNT - 1; /* the best */
    const char *e = getenv("RECD_QSCORE_ISA");
    for (int i = 0; e != NULL && i < QSCORE_ISA_COUNT; i++)
      if (strcmp(e, qscore_isa_name((qscore_isa_t)i)) == 0)
        want = i;
    while (want > QSCORE_SCALAR && !qscore_isa_supported((qscore_isa_t)want))
      want--;
    chosen = want;
  }
  return (qscore_isa_t)chosen;
}

/* The int8 scan alone, on the isa's kernel. */
static int qscan__int8(qscore_isa_t isa, const qmat_t *qm, uint32_t lo, uint32_t hi,
                       const qquery_t *qq, qsel_t *sel, size_t nq) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == QSCORE_AVX512)
    return qscan__avx512(qm, lo, hi, qq, sel, nq);
  if (isa == QSCORE_AVX2)
    return qscan__avx2(qm, lo, hi, qq, sel, nq);
#else
  (void)isa;
#endif
  return qscan__scalar(qm, lo, hi, qq, sel, nq);
}

/* Items a fresh collector sees through the int8 scan before the 4-bit
 * prefilter starts (or a sixteenth of the range, if more). */
#define QSCORE4_WARM_ITEMS 8192u

/* One customer through the 4-bit prefilter. A collector without a bar yet
 * (a fresh one: the daemon scans a large catalogue in chunks, and only the
 * first finds it so) sees the first items of the range through the int8
 * scan first: the threshold they set is what lets the prefilter skip
 * blocks from the start (on 1M random items, scanned whole,
 * the blocks that pass fall from 2.9% to 2.0% of the rest; the warm-up
 * costs its int8 bytes instead of its 4-bit ones). */
static int qscan__prefiltered(qscore_isa_t isa, const qmat_t *qm, uint32_t lo, uint32_t hi,
                              const qquery_t *qq, qsel_t *sel) {
  uint32_t warm = lo;
  if (sel->thresh == -INFINITY) {
    const uint32_t w = (hi - lo) / 16 > QSCORE4_WARM_ITEMS ? (hi - lo) / 16 : QSCORE4_WARM_ITEMS;
    warm = hi - lo > w ? lo + (w & ~7u) : hi;
  }
  int rc = qscan__int8(isa, qm, lo, warm, qq, sel, 1);
  if (rc != 0)
    return rc;
#if defined(__x86_64__) || defined(__i386__)
  if (isa != QSCORE_SCALAR) /* AVX2 is a part of AVX-512's set */
    return qscan4__avx2(qm, warm, hi, qq, sel);
#endif
  return qscan4__scalar(qm, warm, hi, qq, sel);
}

int qscan(qscore_isa_t isa, const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
          qsel_t *sel, size_t nq) {
  if (hi > qm->n)
    hi = qm->n;
  if (lo >= hi || nq == 0)
    return 0;
  if (nq == 1 && qm->q4 != NULL)
    return qscan__prefiltered(isa, qm, lo, hi, qq, sel);
  return qscan__int8(isa, qm, lo, hi, qq, sel, nq);
}

float qscore_items(const qmat_t *qm, const float *x, float *out, int8_t *scratch) {
  qquery_t qq = {.xq = scratch};
  const float b = qquery_prepare(qm, x, &qq);
  for (uint32_t i = 0; i < qm->n; i++)
    out[i] = qscore__value(qscore__dot(qm, i, qq.xq) - qq.corr, qm->scale[i], qq.sx);
  return b;
}
