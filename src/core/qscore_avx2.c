/* qscore_avx2.c - the AVX2 scan kernel (qscan in qscore.h).
 *
 * Built with a function-level target attribute instead of -mavx2 for the
 * file, so the rest of the binary stays baseline x86-64 and qscan() picks
 * this kernel only when the CPU has AVX2.
 *
 * Per block of 8 items and per customer: for each 32-byte chunk of a row,
 * vpmaddubsw (unsigned row bytes x signed query bytes -> 16 int16 pair
 * sums, never saturating: see qscore.h) and vpmaddwd with ones (-> 8 int32)
 * accumulate exactly; a transposing horizontal-add tree then turns the 8
 * accumulators into one vector of the 8 items' dot products, which is
 * scaled, compared with the collector's threshold, and only the (rare)
 * items above it are appended one by one.
 */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#include "qscore_internal.h"

#define QSCORE_AVX2 __attribute__((target("avx2")))

/* Sum of the 8 int32 lanes of each of a0..a7, as lanes 0..7. */
static inline QSCORE_AVX2 __m256i qscore__hsum8(__m256i a0, __m256i a1, __m256i a2, __m256i a3,
                                                __m256i a4, __m256i a5, __m256i a6,
                                                __m256i a7) {
  const __m256i s01 = _mm256_hadd_epi32(a0, a1), s23 = _mm256_hadd_epi32(a2, a3);
  const __m256i s45 = _mm256_hadd_epi32(a4, a5), s67 = _mm256_hadd_epi32(a6, a7);
  /* per 128-bit lane: [a0 a1 a2 a3] and [a4 a5 a6 a7] partial sums */
  const __m256i t0 = _mm256_hadd_epi32(s01, s23), t1 = _mm256_hadd_epi32(s45, s67);
  const __m256i lo = _mm256_permute2x128_si256(t0, t1, 0x20);
  const __m256i hi = _mm256_permute2x128_si256(t0, t1, 0x31);
  return _mm256_add_epi32(lo, hi);
}

#define QSCORE_ACC(acc, row)                                                                  \
  acc = _mm256_add_epi32(                                                                     \
      acc, _mm256_madd_epi16(                                                                 \
               _mm256_maddubs_epi16(_mm256_load_si256((const __m256i *)((row) + c)), x),      \
               ones))

/* The 8 dot products of rows[0..8) (kpad bytes apart) with xq. */
static inline QSCORE_AVX2 __m256i qscore__dots8(const uint8_t *rows, uint32_t kpad,
                                                const int8_t *xq) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
          a7 = a0;
  for (uint32_t c = 0; c < kpad; c += 32) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)(xq + c));
    QSCORE_ACC(a0, rows);
    QSCORE_ACC(a1, rows + kpad);
    QSCORE_ACC(a2, rows + 2 * (size_t)kpad);
    QSCORE_ACC(a3, rows + 3 * (size_t)kpad);
    QSCORE_ACC(a4, rows + 4 * (size_t)kpad);
    QSCORE_ACC(a5, rows + 5 * (size_t)kpad);
    QSCORE_ACC(a6, rows + 6 * (size_t)kpad);
    QSCORE_ACC(a7, rows + 7 * (size_t)kpad);
  }
  return qscore__hsum8(a0, a1, a2, a3, a4, a5, a6, a7);
}

int QSCORE_AVX2 qscan__avx2(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
                            qsel_t *sel, size_t nq) {
  const uint32_t kpad = qm->kpad;
  for (uint32_t base = lo; base < hi; base += 8) {
    const uint8_t *rows = qm->q + (size_t)base * kpad;
    /* Rows past n are padding (zero rows, zero scale), never offered. */
    const int valid = hi - base >= 8 ? 0xff : (1 << (hi - base)) - 1;
    const __m256 scale = _mm256_loadu_ps(qm->scale + base);
    for (size_t r = 0; r < nq; r++) {
      const __m256i d =
          _mm256_sub_epi32(qscore__dots8(rows, kpad, qq[r].xq), _mm256_set1_epi32(qq[r].corr));
      /* qscore__value(), 8 at a time: the same two roundings */
      const __m256 v =
          _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_mul_ps(scale, _mm256_set1_ps(qq[r].sx)));
      int hit = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(sel[r].thresh), _CMP_GE_OQ)) &
                valid;
      if (hit == 0)
        continue;
      float vs[8];
      _mm256_storeu_ps(vs, v);
      while (hit) {
        const int j = __builtin_ctz((unsigned)hit);
        hit &= hit - 1;
        /* thresh may have risen in a compaction: test again */
        if (vs[j] >= sel[r].thresh) {
          int rc = qsel__push(&sel[r], base + (uint32_t)j, vs[j]);
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
