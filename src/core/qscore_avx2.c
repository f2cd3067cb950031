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
 * against it, so a batch reads the matrix from memory once.
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

int QSCORE_AVX2 qscan__avx2(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
                            qsel_t *sel, size_t nq) {
  const uint32_t kpad = qm->kpad, groups = kpad / 4;
  for (uint32_t base = lo; base < hi; base += 8) {
    const uint8_t *blk = qm->q + (size_t)base * kpad;
    /* Rows past n are padding (zero rows, zero scale), never offered. */
    const int valid = hi - base >= 8 ? 0xff : (1 << (hi - base)) - 1;
    const __m256 scale = _mm256_loadu_ps(qm->scale + base);
    const __m256 resid = _mm256_loadu_ps(qm->resid + base);
    const __m256 norm = _mm256_loadu_ps(qm->norm + base);
    for (size_t r = 0; r < nq; r++) {
      const __m256i d =
          _mm256_sub_epi32(qscore__dots8(blk, groups, qq[r].xq), _mm256_set1_epi32(qq[r].corr));
      /* qscore__value() and qquery_item_bound(), 8 at a time: the same
       * roundings (no FMA: this target does not enable it) */
      const __m256 v =
          _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_mul_ps(scale, _mm256_set1_ps(qq[r].sx)));
      const __m256 e = _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(qq[r].ea), resid),
                                     _mm256_mul_ps(_mm256_set1_ps(qq[r].eb), norm));
      const __m256 ve = _mm256_add_ps(v, e);
      int hit =
          _mm256_movemask_ps(_mm256_cmp_ps(ve, _mm256_set1_ps(sel[r].thresh), _CMP_GE_OQ)) & valid;
      if (hit == 0)
        continue;
      float vs[8], es[8], ves[8];
      _mm256_storeu_ps(vs, v);
      _mm256_storeu_ps(es, e);
      _mm256_storeu_ps(ves, ve);
      while (hit) {
        const int j = __builtin_ctz((unsigned)hit);
        hit &= hit - 1;
        /* thresh may have risen in a compaction: test again */
        if (ves[j] >= sel[r].thresh) {
          int rc = qsel__push(&sel[r], base + (uint32_t)j, vs[j], es[j]);
          if (rc != 0)
            return rc;
        }
      }
    }
  }
  return 0;
}

#else
/* Not x86: qscan() never calls an AVX2 kernel; keep the unit non-empty. */
typedef int qscore_avx2_unused;
#endif
