/* qscore_avx512_emu.c - the AVX-512 VNNI scan kernel, the daemon's own
 * source (src/core/qscore_avx512.c), built against SIMDe's portable C
 * versions of the AVX-512 F/BW/VL/VNNI intrinsics it uses, as
 * qscan__avx512_emu. test_qscore then checks it bit for bit against the
 * portable kernel on any CPU, also one without AVX-512 (the machines this
 * project is built on have AVX2 only, so the real kernel never runs
 * there). What this proves: the kernel's lanes, masks, block pairing,
 * order of offers and float operations, with each intrinsic given its
 * documented semantics (vpdpbusd: four u8 x s8 products summed into an
 * int32 lane, wrapping, never saturating). What it cannot: that the
 * hardware matches those semantics (it is documented to), or its speed.
 * Only built when SIMDe is installed (libsimde-dev, scripts/install-deps.sh),
 * with -ffp-contract=off like the kernel itself. */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* What SIMDe 0.7.4 (Debian 12) lacks, written from Intel's definitions. */
typedef simde__mmask16 __mmask16;

/* vshufi64x2: 128-bit lanes 0-1 of the result from a, 2-3 from b, each
 * picked by two bits of imm. */
static inline simde__m512i emu_shuffle_i64x2(simde__m512i a, simde__m512i b, int imm) {
  uint64_t x[8], y[8], r[8];
  memcpy(x, &a, sizeof x);
  memcpy(y, &b, sizeof y);
  for (int l = 0; l < 4; l++) {
    const uint64_t *src = l < 2 ? x : y;
    const int sel = (imm >> (2 * l)) & 3;
    r[2 * l] = src[2 * sel];
    r[2 * l + 1] = src[2 * sel + 1];
  }
  simde__m512i out;
  memcpy(&out, r, sizeof out);
  return out;
}
#define _mm512_shuffle_i64x2(a, b, imm) emu_shuffle_i64x2((a), (b), (imm))

/* vmovups with a zeroing mask: lanes not in k are 0 and never read (the
 * kernel relies on that past the last item). */
static inline simde__m512 emu_maskz_loadu_ps(simde__mmask16 k, const float *p) {
  float v[16] = {0};
  for (int j = 0; j < 16; j++)
    if ((k >> j) & 1)
      v[j] = p[j];
  return simde_mm512_loadu_ps(v);
}
#define _mm512_maskz_loadu_ps(k, p) emu_maskz_loadu_ps((k), (p))

/* vcvtdq2ps: int32 to float, rounded to nearest (the default MXCSR mode,
 * and C's conversion under the default rounding mode). */
static inline simde__m512 emu_cvtepi32_ps(simde__m512i a) {
  int32_t x[16];
  float r[16];
  memcpy(x, &a, sizeof x);
  for (int j = 0; j < 16; j++)
    r[j] = (float)x[j];
  return simde_mm512_loadu_ps(r);
}
#define _mm512_cvtepi32_ps(a) emu_cvtepi32_ps(a)

/* vcmpps into a mask, under a mask: only the predicate the kernel uses,
 * _CMP_GE_OQ (a >= b, false when either is NaN). */
static inline simde__mmask16 emu_mask_cmp_ge_oq(simde__mmask16 k, simde__m512 a, simde__m512 b) {
  float x[16], y[16];
  memcpy(x, &a, sizeof x);
  memcpy(y, &b, sizeof y);
  simde__mmask16 r = 0;
  for (int j = 0; j < 16; j++)
    if (((k >> j) & 1) && !isunordered(x[j], y[j]) && x[j] >= y[j])
      r |= (simde__mmask16)(1u << j);
  return r;
}
#define _mm512_mask_cmp_ps_mask(k, a, b, pred)                                                     \
  (emu_pred_is_ge_oq(pred), emu_mask_cmp_ge_oq((k), (a), (b)))
#define emu_pred_is_ge_oq(pred) ((void)sizeof(char[(pred) == _CMP_GE_OQ ? 1 : -1]))

#define QSCORE_AVX512_EMULATED 1
#define qscan__avx512 qscan__avx512_emu
#include "qscore_avx512.c"
