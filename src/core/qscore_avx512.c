/* qscore_avx512.c - the AVX-512 VNNI scan kernel (qscan in qscore.h).
 *
 * Built like the AVX2 kernel: a function-level target attribute (AVX-512
 * F, BW, VL and VNNI), so the rest of the binary stays baseline x86-64 and
 * qscan() picks this kernel only when the CPU (and the OS, for the zmm
 * state: __builtin_cpu_supports checks XCR0) has all four.
 *
 * Same contract, layout and collectors as qscan__avx2; per customer of a
 * batch:
 *   - the dot products with vpdpbusd (u8 x s8, four products summed into
 *     an int32 lane): the layout puts item j's factors 4c..4c+3 in bytes
 *     32c + 4j .. 32c + 4j + 3 and the query's in the same bytes of xq, so
 *     one vpdpbusd on 64 bytes (groups c and c + 1) adds group c of the
 *     8 items into lanes 0-7 and group c + 1 into lanes 8-15; the two
 *     halves are added at the end of the block;
 *   - two blocks (16 items) per step in 512-bit registers, for a batch of
 *     customers (one customer is scanned by the AVX2 kernel: see
 *     qscan__avx512);
 *   - the scores, bounds and threshold test 16 at a time, with the same
 *     float operations in the same order as qscore__value() and
 *     qquery_item_bound() (no FMA: the file is built with
 *     -ffp-contract=off, and the intrinsics used are plain mul and add).
 *
 * Why the integers are the portable kernel's, bit for bit: vpdpbusd (not
 * vpdpbusds) neither saturates nor rounds. Each u8 x s8 product is exact
 * in its 16-bit intermediate (|255 x -128| = 32640 < 2^15), the four of a
 * lane are added to the 32-bit accumulator exactly, and the accumulator
 * wraps (never clips) modulo 2^32. With stored bytes 1..127 (padding 64)
 * and |xq| <= 63 every partial sum, in any order, is at most
 * 127 x 63 x kpad <= 127 x 63 x 1024 = 8,193,024 < 2^31 in magnitude
 * (kpad <= MODEL_MAX_FACTORS), so no wrap happens either and the integer
 * sum equals the portable kernel's int32 sum exactly (integer addition is
 * associative; only the grouping differs). Unlike vpmaddubsw (the AVX2
 * kernel's, which saturates to int16 and needs the 7-bit argument in
 * qscore.h), no input the quantiser can produce, nor any other byte, can
 * make vpdpbusd differ from exact arithmetic below 2^31.
 *
 * Per customer the items are offered in increasing order, each tested
 * against the collector's threshold as it is at that moment (the mask
 * only pre-filters with a threshold that can only have risen since), so
 * every collector sees exactly the sequence of pushes the portable kernel
 * gives it: the same candidates, scores and bounds.
 */
#if defined(__x86_64__) || defined(__i386__)

#ifndef QSCORE_AVX512_EMULATED
#include <immintrin.h>
#endif

#include "qscore_internal.h"

#ifndef QSCORE_AVX512_EMULATED
#define QSCORE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#else
/* tests/unit/qscore_avx512_emu.c: this source on SIMDe's portable
 * versions of the same intrinsics (already included), no target needed. */
#define QSCORE_AVX512
#endif

/* The 16 dot products of blocks b0 (lanes 0-7) and b1 (lanes 8-15) with one
 * query: the query's bytes are loaded once for both blocks; two
 * accumulators per block. */
static inline QSCORE_AVX512 __m512i qscore__dots16(const uint8_t *b0, const uint8_t *b1,
                                                   uint32_t groups, const int8_t *xq) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, c0 = a0, c1 = a0;
  uint32_t c = 0;
  for (; c + 4 <= groups; c += 4) {
    const __m512i x0 = _mm512_loadu_si512((const void *)(xq + 32 * c));
    const __m512i x1 = _mm512_loadu_si512((const void *)(xq + 32 * c + 64));
    a0 = _mm512_dpbusd_epi32(a0, _mm512_load_si512((const void *)(b0 + 32 * c)), x0);
    c0 = _mm512_dpbusd_epi32(c0, _mm512_load_si512((const void *)(b1 + 32 * c)), x0);
    a1 = _mm512_dpbusd_epi32(a1, _mm512_load_si512((const void *)(b0 + 32 * c + 64)), x1);
    c1 = _mm512_dpbusd_epi32(c1, _mm512_load_si512((const void *)(b1 + 32 * c + 64)), x1);
  }
  if (c < groups) {
    const __m512i x0 = _mm512_loadu_si512((const void *)(xq + 32 * c));
    a0 = _mm512_dpbusd_epi32(a0, _mm512_load_si512((const void *)(b0 + 32 * c)), x0);
    c0 = _mm512_dpbusd_epi32(c0, _mm512_load_si512((const void *)(b1 + 32 * c)), x0);
  }
  a0 = _mm512_add_epi32(a0, a1); /* block 0: [even groups | odd groups] */
  c0 = _mm512_add_epi32(c0, c1); /* block 1 */
  /* [a0 low 256 | c0 low 256] + [a0 high 256 | c0 high 256] */
  const __m512i lo = _mm512_shuffle_i64x2(a0, c0, _MM_SHUFFLE(1, 0, 1, 0));
  const __m512i hi = _mm512_shuffle_i64x2(a0, c0, _MM_SHUFFLE(3, 2, 3, 2));
  return _mm512_add_epi32(lo, hi);
}

/* Scores items base + j (the lanes of dots set in valid) for customer q and
 * offers those that reach the collector's threshold, in order. 0 or
 * RECD_ENOMEM. */
static inline QSCORE_AVX512 int qscore__offer16(__m512i dots, __mmask16 valid, __m512 scale,
                                                __m512 resid, __m512 norm, const qquery_t *q,
                                                qsel_t *sel, uint32_t base) {
  const __m512i d = _mm512_sub_epi32(dots, _mm512_set1_epi32(q->corr));
  /* qscore__value() and qquery_item_bound(), 16 at a time: the same
   * roundings */
  const __m512 v =
      _mm512_mul_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(scale, _mm512_set1_ps(q->sx)));
  const __m512 e = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(q->ea), resid),
                                 _mm512_mul_ps(_mm512_set1_ps(q->eb), norm));
  const __m512 ve = _mm512_add_ps(v, e);
  unsigned hit =
      (unsigned)_mm512_mask_cmp_ps_mask(valid, ve, _mm512_set1_ps(sel->thresh), _CMP_GE_OQ);
  if (hit == 0)
    return 0;
  float vs[16], es[16], ves[16];
  _mm512_storeu_ps(vs, v);
  _mm512_storeu_ps(es, e);
  _mm512_storeu_ps(ves, ve);
  return qsel__push_hits(sel, base, hit, vs, es, ves);
}

/* Masks of the first `left` lanes (rows past hi are not this scan's; past
 * n: padding, zero rows with zero scale, never offered; masked loads do
 * not touch them). */
static inline __mmask16 qscore__valid(uint32_t left, uint32_t lanes) {
  return left >= lanes ? (__mmask16)((1u << lanes) - 1) : (__mmask16)((1u << left) - 1);
}

int QSCORE_AVX512 qscan__avx512(const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
                                qsel_t *sel, size_t nq) {
  const uint32_t kpad = qm->kpad, groups = kpad / 4;
  if (nq == 1)
    /* One customer: the scan waits for memory (or L3), not for the
     * multiplications, and the AVX2 kernel, which reads the items in order
     * 32 bytes at a time, was the fastest there: one block per step with
     * 256-bit vpdpbusd measured 0.94-1.12x its time (100k and 1M items,
     * k = 64 and 256), two interleaved blocks up to 1.7x. Its results are
     * the same bits. */
    return qscan__avx2(qm, lo, hi, qq, sel, nq);
  /* A batch: the blocks stay in L1 while every customer is scored, and two
   * blocks per step share the query's loads and the scoring's work. */
  for (uint32_t base = lo; base < hi; base += 16) {
    const uint8_t *b0 = qm->q + (size_t)base * kpad;
    /* A lone last block is paired with itself (its copy in lanes 8-15 is
     * masked off): the block after it may not be allocated. */
    const uint8_t *b1 = hi - base > 8 ? b0 + (size_t)8 * kpad : b0;
    const __mmask16 valid = qscore__valid(hi - base, 16);
    const __m512 scale = _mm512_maskz_loadu_ps(valid, qm->scale + base);
    const __m512 resid = _mm512_maskz_loadu_ps(valid, qm->resid + base);
    const __m512 norm = _mm512_maskz_loadu_ps(valid, qm->norm + base);
    for (size_t r = 0; r < nq; r++) {
      int rc = qscore__offer16(qscore__dots16(b0, b1, groups, qq[r].xq), valid, scale, resid,
                               norm, &qq[r], &sel[r], base);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

#else
/* Not x86: qscan() never calls an AVX-512 kernel; keep the unit non-empty. */
typedef int qscore_avx512_unused;
#endif
