/* qscore_avx2.c - the AVX2 scan kernel (qscan in qscore.h).
 *
 * Built with a function-level target attribute instead of -mavx2 for the
 * file, so the rest of the binary stays baseline x86-64 and qscan() picks
 * this kernel only when the CPU has AVX2.
 *
 * Per block of 8 items and per customer: the 8 exact dot products in one
 * vector (qscore__dots8, two vpmaddubsw + one vpaddw + one vpmaddwd per 64
 * bytes), scaled, compared with the collector's threshold;
 * only the (rare) items above it are appended one by one. The block (8 x
 * kpad bytes) stays in L1 while every customer of the batch is scored
 * against it, so a batch reads the matrix from memory once; a batch takes
 * two blocks and two customers per step (qscore__dots8x4).
 *
 * Also here: the 4-bit prefilter's kernel for one customer (qscan4__avx2,
 * qscore.h), which scans the blocks that pass with the same code.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include "qscore_internal.h"

#define QSCORE_AVX2 __attribute__((target("avx2")))

/* Groups c and c + 1: two vpmaddubsw (u8 x s8 pairs into int16, exact),
 * added in int16 (at most 2 x 16002, no overflow: qscore.h), then one
 * vpmaddwd with ones widens to int32. */
#define QSCORE_GROUPS(acc, c)                                                                 \
  acc = _mm256_add_epi32(                                                                     \
      acc,                                                                                    \
      _mm256_madd_epi16(                                                                      \
          _mm256_add_epi16(                                                                   \
              _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(blk + 32 * (c))),      \
                                   _mm256_loadu_si256((const __m256i *)(xq + 32 * (c)))),     \
              _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)(blk + 32 * (c) + 32)), \
                                   _mm256_loadu_si256((const __m256i *)(xq + 32 * (c) + 32)))), \
          ones))

/* The 8 dot products of a block (layout in qscore.h) with one query, as
 * 8 int32 lanes. Unrolled to 4 groups with two accumulators: at k = 64
 * the loop overhead was a third of the instructions. groups = kpad / 4 is
 * even. */
static inline QSCORE_AVX2 __m256i qscore__dots8(const uint8_t *blk, uint32_t groups,
                                                const int8_t *xq) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0;
  uint32_t c = 0;
  for (; c + 4 <= groups; c += 4) {
    QSCORE_GROUPS(a0, c);
    QSCORE_GROUPS(a1, c + 2);
  }
  if (c < groups)
    QSCORE_GROUPS(a0, c);
  return _mm256_add_epi32(a0, a1);
}

/* The 8 dot products of blocks b0 and b1 with queries x0 and x1 each, in
 * d[2 * customer + block]. Why two by two: one customer against one block
 * loads an item vector and a query vector for every vpmaddubsw, and the
 * loads, not the multiplies, bounded the batched scan (about 16 MAC per
 * cycle at 100k items, L3-resident); here each loaded vector feeds two
 * vpmaddubsw. Four accumulators, four independent chains. */
static inline QSCORE_AVX2 void qscore__dots8x4(const uint8_t *b0, const uint8_t *b1,
                                               uint32_t groups, const int8_t *x0,
                                               const int8_t *x1, __m256i d[4]) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00;
  for (uint32_t c = 0; c < groups; c += 2) {
    const size_t o = 32 * (size_t)c;
    __m256i i0 = _mm256_load_si256((const __m256i *)(b0 + o));
    __m256i i1 = _mm256_load_si256((const __m256i *)(b1 + o));
    __m256i q0 = _mm256_loadu_si256((const __m256i *)(x0 + o));
    __m256i q1 = _mm256_loadu_si256((const __m256i *)(x1 + o));
    __m256i m00 = _mm256_maddubs_epi16(i0, q0), m01 = _mm256_maddubs_epi16(i1, q0);
    __m256i m10 = _mm256_maddubs_epi16(i0, q1), m11 = _mm256_maddubs_epi16(i1, q1);
    i0 = _mm256_load_si256((const __m256i *)(b0 + o + 32));
    i1 = _mm256_load_si256((const __m256i *)(b1 + o + 32));
    q0 = _mm256_loadu_si256((const __m256i *)(x0 + o + 32));
    q1 = _mm256_loadu_si256((const __m256i *)(x1 + o + 32));
    /* groups c and c + 1 added in int16, as in QSCORE_GROUPS */
    m00 = _mm256_add_epi16(m00, _mm256_maddubs_epi16(i0, q0));
    m01 = _mm256_add_epi16(m01, _mm256_maddubs_epi16(i1, q0));
    m10 = _mm256_add_epi16(m10, _mm256_maddubs_epi16(i0, q1));
    m11 = _mm256_add_epi16(m11, _mm256_maddubs_epi16(i1, q1));
    a00 = _mm256_add_epi32(a00, _mm256_madd_epi16(m00, ones));
    a01 = _mm256_add_epi32(a01, _mm256_madd_epi16(m01, ones));
    a10 = _mm256_add_epi32(a10, _mm256_madd_epi16(m10, ones));
    a11 = _mm256_add_epi32(a11, _mm256_madd_epi16(m11, ones));
  }
  d[0] = a00;
  d[1] = a01;
  d[2] = a10;
  d[3] = a11;
}

/* One block's metadata, loaded once for every customer of the batch. */
typedef struct qscore__blk8 {
  __m256 scale, resid, norm;
  int valid; /* lanes that are items of [lo, hi): rows past are padding */
} qscore__blk8_t;

static inline QSCORE_AVX2 qscore__blk8_t qscore__blk8(const qmat_t *qm, uint32_t base,
                                                      uint32_t hi) {
  qscore__blk8_t b;
  b.scale = _mm256_loadu_ps(qm->scale + base);
  b.resid = _mm256_loadu_ps(qm->resid + base);
  b.norm = _mm256_loadu_ps(qm->norm + base);
  b.valid = hi - base >= 8 ? 0xff : (1 << (hi - base)) - 1;
  return b;
}

/* Scores block base's 8 items for one customer from their integer dots
 * and offers those that reach the threshold. 0 or RECD_ENOMEM. */
static inline QSCORE_AVX2 int qscore__offer8(const qscore__blk8_t *b, uint32_t base,
                                             __m256i dots, const qquery_t *q, qsel_t *sel) {
  const __m256i d = _mm256_sub_epi32(dots, _mm256_set1_epi32(q->corr));
  /* qscore__value() and qquery_item_bound(), 8 at a time: the same
   * roundings (no FMA: this target does not enable it) */
  const __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_mul_ps(b->scale, _mm256_set1_ps(q->sx)));
  const __m256 e = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(q->ea), b->resid),
                                 _mm256_mul_ps(_mm256_set1_ps(q->eb), b->norm));
  const __m256 ve = _mm256_add_ps(v, e);
  int hit = _mm256_movemask_ps(_mm256_cmp_ps(ve, _mm256_set1_ps(sel->thresh), _CMP_GE_OQ)) & b->valid;
  if (hit == 0)
    return 0;
  float vs[8], es[8], ves[8];
  _mm256_storeu_ps(vs, v);
  _mm256_storeu_ps(es, e);
  _mm256_storeu_ps(ves, ve);
  return qsel__push_hits(sel, base, (unsigned)hit, vs, es, ves);
}

/* Two blocks (16 items) per step, and within it two customers at a time
 * (qscore__dots8x4); an odd customer or a last single block takes the
 * one-by-one path. Each customer still gets its items in increasing
 * order, so its collector sees the portable kernel's sequence of pushes. */
int QSCORE_AVX2 qscan__avx2(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
                            qsel_t *sel, size_t nq) {
  const uint32_t kpad = qm->kpad, groups = kpad / 4;
  int rc;
  for (uint32_t base = lo; base < hi; base += 16) {
    const uint8_t *b0 = qm->q + (size_t)base * kpad;
    const qscore__blk8_t m0 = qscore__blk8(qm, base, hi);
    if (hi - base <= 8) { /* the last, single block */
      for (size_t r = 0; r < nq; r++)
        if ((rc = qscore__offer8(&m0, base, qscore__dots8(b0, groups, qq[r].xq), &qq[r],
                                 &sel[r])) != 0)
          return rc;
      break;
    }
    const uint8_t *b1 = b0 + (size_t)8 * kpad;
    const qscore__blk8_t m1 = qscore__blk8(qm, base + 8, hi);
    size_t r = 0;
    for (; r + 2 <= nq; r += 2) {
      __m256i d[4];
      qscore__dots8x4(b0, b1, groups, qq[r].xq, qq[r + 1].xq, d);
      if ((rc = qscore__offer8(&m0, base, d[0], &qq[r], &sel[r])) != 0 ||
          (rc = qscore__offer8(&m1, base + 8, d[1], &qq[r], &sel[r])) != 0 ||
          (rc = qscore__offer8(&m0, base, d[2], &qq[r + 1], &sel[r + 1])) != 0 ||
          (rc = qscore__offer8(&m1, base + 8, d[3], &qq[r + 1], &sel[r + 1])) != 0)
        return rc;
    }
    if (r < nq) {
      if ((rc = qscore__offer8(&m0, base, qscore__dots8(b0, groups, qq[r].xq), &qq[r],
                               &sel[r])) != 0 ||
          (rc = qscore__offer8(&m1, base + 8, qscore__dots8(b1, groups, qq[r].xq), &qq[r],
                               &sel[r])) != 0)
        return rc;
    }
  }
  return 0;
}

/* The 8 stored-nibble dot products of 4-bit blocks b0 and b1 with one
 * query (the offset 8 not yet removed), into d0 and d1: per 32 bytes, the
 * low nibbles are group 2p and the high ones group 2p + 1 of the int8
 * layout, so they meet the query's bytes exactly as QSCORE_GROUPS's. Each
 * vpmaddubsw lane is at most 2 x 15 x 63 = 1890, so sixteen of them (8
 * pairs, 64 factors) add in int16 (30240 < 32767) before one vpmaddwd
 * widens them. Two blocks at a time: each query load feeds both, and the
 * two chains overlap (single thread, 1M items: 9-12% less time than
 * one block per step). b1 == NULL: b0 alone. */
static inline QSCORE_AVX2 void qscore4__dots8x2(const uint8_t *b0, const uint8_t *b1,
                                                uint32_t pairs, const int8_t *xq, __m256i *d0,
                                                __m256i *d1) {
  const __m256i ones = _mm256_set1_epi16(1), low = _mm256_set1_epi8(0x0f);
  __m256i c0 = _mm256_setzero_si256(), c1 = c0;
  for (uint32_t p0 = 0; p0 < pairs; p0 += 8) {
    const uint32_t end = pairs - p0 > 8 ? p0 + 8 : pairs;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (uint32_t p = p0; p < end; p++) {
      const __m256i q0 = _mm256_loadu_si256((const __m256i *)(xq + 64 * (size_t)p));
      const __m256i q1 = _mm256_loadu_si256((const __m256i *)(xq + 64 * (size_t)p + 32));
      const __m256i v0 = _mm256_load_si256((const __m256i *)(b0 + 32 * (size_t)p));
      a0 = _mm256_add_epi16(
          a0, _mm256_add_epi16(
                  _mm256_maddubs_epi16(_mm256_and_si256(v0, low), q0),
                  _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v0, 4), low), q1)));
      if (b1 != NULL) {
        const __m256i v1 = _mm256_load_si256((const __m256i *)(b1 + 32 * (size_t)p));
        a1 = _mm256_add_epi16(
            a1, _mm256_add_epi16(
                    _mm256_maddubs_epi16(_mm256_and_si256(v1, low), q0),
                    _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v1, 4), low), q1)));
      }
    }
    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(a0, ones));
    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(a1, ones));
  }
  *d0 = c0;
  *d1 = c1;
}

/* 8 bfloat16s widened to floats (exact: a 16-bit shift). */
static inline QSCORE_AVX2 __m256 qscore4__bf16x8(const uint16_t *h) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)h));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* One customer through the 4-bit prefilter (qscore.h), the portable
 * qscan4__scalar's decisions bit for bit: per block, the 4-bit scores and
 * bounds with the same float operations (qscore__value4, then
 * qquery_item_bound, then their sum); a block any of whose items is not
 * below the threshold (NaN is not below) is prefetched and scanned from
 * the int8 copy when due (qscore4_lag_t). */
static QSCORE_AVX2 int qscan4__flush_avx2(const qmat_t *qm, uint32_t hi, const qquery_t *qq,
                                           qsel_t *sel, qscore4_lag_t *lag, uint32_t base) {
  while (qscore4__due(lag, base)) {
    const uint32_t b = qscore4__pop(lag);
    const qscore__blk8_t m = qscore__blk8(qm, b, hi);
    int rc = qscore__offer8(
        &m, b, qscore__dots8(qm->q + (size_t)b * qm->kpad, qm->kpad / 4, qq->xq), qq, sel);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Block base's 4-bit scores plus bounds, v + e, from its stored-nibble
 * dots: qscore__value4, then qquery_item_bound, then their sum. */
static inline QSCORE_AVX2 __m256 qscore4__ve8(const qmat_t *qm, uint32_t base, __m256i dots,
                                              const qquery_t *qq) {
  const __m256i d = _mm256_sub_epi32(dots, _mm256_set1_epi32(qq->corr / 8));
  const __m256 v = _mm256_mul_ps(
      _mm256_cvtepi32_ps(d), _mm256_mul_ps(qscore4__bf16x8(qm->scale4 + base), _mm256_set1_ps(qq->sx)));
  const __m256 e =
      _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(qq->ea), qscore4__bf16x8(qm->resid4 + base)),
                    _mm256_mul_ps(_mm256_set1_ps(qq->eb),
                                  _mm256_set1_ps(qscore__bf16(qm->norm16[base / 8]))));
  return _mm256_add_ps(v, e);
}

/* Block base's test against the threshold as it is now (NaN is not below
 * it); a block that passes is queued and its int8 rows prefetched, and
 * the blocks due by then are scanned. */
static inline QSCORE_AVX2 int qscan4__test(const qmat_t *qm, uint32_t base, uint32_t hi,
                                           __m256 ve, const qquery_t *qq, qsel_t *sel,
                                           qscore4_lag_t *lag) {
  const int valid = hi - base >= 8 ? 0xff : (1 << (hi - base)) - 1;
  const int pass =
      _mm256_movemask_ps(_mm256_cmp_ps(ve, _mm256_set1_ps(sel->thresh), _CMP_NLT_UQ)) & valid;
  if (pass != 0) {
    qscore4__push(lag, base);
    const uint32_t kpad = qm->kpad;
    const char *b8 = (const char *)(qm->q + (size_t)base * kpad);
    for (uint32_t o = 0; o < 8 * kpad; o += 64)
      _mm_prefetch(b8 + o, _MM_HINT_T0);
    _mm_prefetch((const char *)(qm->scale + base), _MM_HINT_T0);
    _mm_prefetch((const char *)(qm->resid + base), _MM_HINT_T0);
    _mm_prefetch((const char *)(qm->norm + base), _MM_HINT_T0);
  }
  return lag->n > 0 ? qscan4__flush_avx2(qm, hi, qq, sel, lag, base) : 0;
}

/* How far ahead of the step the 4-bit stream is prefetched, in bytes:
 * 2-4 KB measured equal (one thread, 1M items, k = 64: 8 steps ahead),
 * 1 KB half as good; about what memory latency times one core's
 * bandwidth covers. */
#define QSCORE4_PREFETCH 4096

/* Two blocks' dots per step, then each block tested in turn exactly as
 * one at a time (the dots do not depend on the threshold; the test of the
 * second block sees what the first one's queue flushing raised). */
int QSCORE_AVX2 qscan4__avx2(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
                             qsel_t *sel) {
  const uint32_t kpad = qm->kpad, pairs = kpad / 8;
  qscore4_lag_t lag = {.n = 0};
  int rc;
  for (uint32_t base = lo; base < hi; base += 16) {
    const uint8_t *b0 = qm->q4 + (size_t)base * (kpad / 2);
    const int two = hi - base > 8;
    /* The hardware prefetcher alone left this stream waiting on memory:
     * one thread, 1M items, 3,080 -> 2,300-2,400 us with it (the scales'
     * and residuals' streams gained nothing from the same). Prefetching
     * past the end of the copy is harmless (a hint, never a fault). */
    for (uint32_t o = 0; o < 8 * kpad; o += 64)
      _mm_prefetch((const char *)b0 + QSCORE4_PREFETCH + o, _MM_HINT_T0);
    __m256i d0, d1;
    qscore4__dots8x2(b0, two ? b0 + (size_t)4 * kpad : NULL, pairs, qq->xq, &d0, &d1);
    if ((rc = qscan4__test(qm, base, hi, qscore4__ve8(qm, base, d0, qq), qq, sel, &lag)) != 0 ||
        (two && (rc = qscan4__test(qm, base + 8, hi, qscore4__ve8(qm, base + 8, d1, qq), qq, sel,
                                   &lag)) != 0))
      return rc;
  }
  return qscan4__flush_avx2(qm, hi, qq, sel, &lag, UINT32_MAX);
}

#else
/* Not x86: qscan() never calls an AVX2 kernel; keep the unit non-empty. */
typedef int qscore_avx2_unused;
#endif
