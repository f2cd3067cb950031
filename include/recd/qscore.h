/* qscore.h - a compressed copy of the item factors and the fused first
 * pass over it: score + candidate selection without an N-float score array.
 *
 * Scoring a large catalogue is memory-bound: every request reads the whole
 * n x k float32 matrix. qscore keeps each row as 7-bit integers in bytes
 * with one float scale (y_i ~ s_i q_i, |q_ia| <= 63), a quarter of the
 * bytes, and scores a customer with exact integer dot products against the
 * customer's vector, quantized the same way (x ~ s_x q_x, |q_xa| <= 63).
 * The approximation error of every score is bounded per item (e_i, from
 * the item's own norm and quantisation residual: qquery_item_bound), which
 * is what lets recd stay exact: a collector (qsel_t) keeps, while the scan
 * runs, every item that can still reach the top N after the business
 * filters, i.e. whose score plus its bound reaches the N-th best of the
 * scores minus theirs; the caller then re-scores only those in float and
 * gets, provably, the float32 brute force's top N. Why per item: one bound
 * for the whole catalogue (from its largest norm and residual) kept 397 of
 * the 3,706 items of an ALS model of MovieLens-1M (k = 256) as candidates
 * for a top 10, per-item bounds keep 97; on the 100k-item synthetic model
 * 128 against 47.
 *
 * Storage: rows are kept as unsigned bytes q + 64 (1..127), because the
 * x86 integer multiply-add (vpmaddubsw) takes one unsigned and one signed
 * operand; the offset is removed once per query (64 * sum q_x). Why 7 bits
 * on both sides: a pair of products is then at most 2 * 127 * 63 = 16002,
 * so two vpmaddubsw results add in int16 without overflow (32004 < 32767)
 * before one vpmaddwd widens them, a quarter fewer multiply instructions
 * than 8-bit rows (which fill the int16 range alone); the price is a looser
 * error bound (about a third), i.e. a few more candidates to re-score. No
 * product or sum is ever clipped and every integer dot product is exact.
 *
 * Layout: items in blocks of 8, and within a block in groups of 4 factors:
 * the 32 bytes at block + 32c hold factors 4c..4c+3 of item 0, then of
 * item 1, ... item 7. One vpmaddubsw of those 32 bytes against the query's
 * factors 4c..4c+3 (repeated 8 times) and one vpmaddwd give the 8 items'
 * partial dot products in 8 separate int32 lanes, so a block needs no
 * horizontal additions at all: the row-major alternative spent more time
 * reducing lanes than multiplying.
 *
 * The 4-bit prefilter: memory, not arithmetic, bounds one customer's scan
 * of a large catalogue (at 1M items, k = 64, the 2-thread int8 scan moves
 * 76 MB at the machine's 29 GB/s). So every qmat also keeps each row in 4
 * bits (y_i ~ t_i p_i, |p_ia| <= 7, stored as p + 8 in nibbles) with its
 * own residual, and a scan of ONE customer reads that copy first: the
 * same query bytes and the same bound formula (qquery_item_bound with the
 * 4-bit residual: the derivation above holds for any quantisation of the
 * row) give a score and a bound per item; a block of 8 items none of which
 * can reach the collector's threshold is skipped, and a block with any
 * that can is scored from the int8 copy exactly as without the prefilter.
 * A skipped item's score is provably below the threshold, which stays
 * below the bar of the final compaction, so it is in no exact answer: the
 * candidates left are a part of the int8 scan's (bit for bit), holding
 * every item an exact answer needs (the int8 bound alone can keep a few
 * more near the bar), and the answer is the same. Why blocks:
 * an item's int8 bytes are spread over all 8 lines of its block, so one
 * item costs the block's reads. Why one customer only: a batch is bound by
 * the multiplies (L1-resident blocks), and the 4-bit pass has as many;
 * it would only add the refinement. The scales and 4-bit residuals are
 * kept per row as bfloat16 rounded up (the scale is the exact value the
 * row was quantised with), the norm once per block of 8 (the largest,
 * rounded up: a bound for each; it multiplies only the query's own
 * quantisation error, about a seventh of the bound, so sharing it widens
 * the bound by a few percent at most and saves 1.75 bytes per item), 36.25
 * bytes per item at k = 64 against the int8 copy's 76: widening a
 * bfloat16 is a 16-bit shift, exact, in every kernel. An item whose score
 * or bound is not a number passes.
 *
 * Kernels: AVX-512 VNNI (vpdpbusd on the same layout: four products per
 * int32 lane in one instruction, never saturated; 16 items per step for a
 * batch, the AVX2 kernel for one customer, whose scan waits for memory;
 * needs AVX-512 F, BW, VL and VNNI), AVX2
 * (both intrinsics, compiled with function target attributes) and portable
 * C, chosen at run time from the CPU (no -march=native is needed); all
 * compute bit-identical approximate scores (qscore_avx512.c says why for
 * vpdpbusd), so the choice never changes a candidate set.
 */
#ifndef RECD_QSCORE_H
#define RECD_QSCORE_H

#include <stddef.h>
#include <stdint.h>

#include "recd/score.h"

typedef struct qmat {
  uint32_t n, k;
  uint32_t kpad;  /* bytes per item: k rounded up to a multiple of 8 */
  uint8_t *q;     /* n (rounded up to 8) x kpad bytes in the layout above,
                     64-byte aligned, q + 64; padding is 64 (zero) */
  float *scale;   /* per-row scales s_i = max_a |y_ia| / 63 (0 in padding) */
  float *norm;    /* per-row |y_i|, rounded up (0 in padding) */
  float *resid;   /* per-row |y_i - s_i q_i|, rounded up: the quantisation
                     error (0 in padding) */
  float max_norm; /* max_i norm[i] */
  float max_resid;/* max_i resid[i] */
  /* The 4-bit copy (the prefilter above): in a block of 8 items, the 32
   * bytes at block + 32p hold groups 2p (low nibbles) and 2p + 1 (high
   * nibbles) of the int8 layout; kpad / 2 bytes per item, 64-byte
   * aligned, padding 0x88 (zero). NULL: no prefilter (qmat_drop_q4). */
  uint8_t *q4;
  uint16_t *scale4; /* per-row 4-bit scales t_i, bfloat16 (0 in padding) */
  uint16_t *resid4; /* per-row |y_i - t_i p_i| rounded up, bfloat16 */
  uint16_t *norm16; /* per block of 8 rows: the largest norm[i] rounded
                       up to bfloat16 (NaN if any is NaN) */
} qmat_t;

/* Builds the int8 copy of Y (n rows of k floats at stride ldy), with its
 * 4-bit copy. 0 or RECD_ENOMEM. */
int qmat_build(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k);
/* The same, the 4-bit copy only when with_q4 (else q4 stays NULL, as after
 * qmat_drop_q4, and its rows are never computed). */
int qmat_build_with(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k, int with_q4);

/* The int8 copy of the L2-normalised rows, for SIMILAR (a cosine is the
 * dot product of normalised rows): row i is built from the floats z_i =
 * y_i / norms[i] (one float division per factor), so that the scan's
 * scores and bounds are those of a query against z_i. Rows whose norm is
 * 0 (similar to nothing) get a NaN scale: their scores are NaN, never
 * offered to a collector. Rows whose norm is outside [norm_min, norm_max]
 * (where the caller's exact cosine has no relative error bound: underflow
 * or overflow) get an infinite residual, so that they are always
 * candidates and never raise a collector's bar. 0 or RECD_ENOMEM. */
int qmat_build_cosine(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k,
                      const float *norms, float norm_min, float norm_max);
int qmat_build_cosine_with(qmat_t *qm, const float *Y, size_t ldy, uint32_t n, uint32_t k,
                           const float *norms, float norm_min, float norm_max, int with_q4);
void qmat_free(qmat_t *qm);
/* Frees the 4-bit copy: scans of one customer then read the int8 copy
 * alone (benchmarks and tests compare the two ways). */
void qmat_drop_q4(qmat_t *qm);
/* Bytes the copies take (int8, 4-bit and their per-row numbers), and the
 * int8 copy's alone. */
size_t qmat_bytes(const qmat_t *qm);
size_t qmat_bytes_int8(const qmat_t *qm);
/* What qmat_bytes_int8 will say of a copy of n rows of k factors, before
 * building it. */
size_t qmat_bytes_int8_for(uint32_t n, uint32_t k);

/* One customer's quantized vector. */
typedef struct qquery {
  int8_t *xq;   /* qquery_bytes() (caller's memory): each group of 4
                   factors (|.| <= 63) repeated 8 times, the kernels' form */
  float sx;     /* x ~ sx * xq */
  int32_t corr; /* 64 * sum xq: removes the storage offset */
  float ea, eb; /* item i's error bound: qquery_item_bound() */
} qquery_t;

/* Bytes of a qquery_t's xq for this matrix: 8 * kpad. */
size_t qquery_bytes(const qmat_t *qm);

/* Quantizes x (k floats) into qq (qq->xq must point to qquery_bytes()) and
 * sets the coefficients of the per-item bounds. With y_i = s_i q_i + dy_i
 * and x = s_x q_x + dx (both residuals measured exactly):
 *   x.y_i - s_x s_i q_x.q_i = x.dy_i + dx.y_i - dx.dy_i
 *   |.| <= |x| |dy_i| + |dx| |y_i| + |dx| |dy_i|    (Cauchy-Schwarz)
 * plus the rounding of the float scaling of the exact integer dot (3 ulps
 * of (|x| + |dx|)(|y_i| + |dy_i|)). Returns the bound for every item at
 * once (with max|y|, max|dy|). */
float qquery_prepare(const qmat_t *qm, const float *x, qquery_t *qq);

/* |approx_i - x . y_i| <= this, for item i of norm norm[i] and residual
 * resid[i]: ea and eb are the bound's coefficients rounded up (with room
 * for the float rounding of this very expression), and the expression is
 * the one the kernels evaluate, two products and a sum, so that every
 * kernel and test computes the same float. */
static inline float qquery_item_bound(const qquery_t *qq, float resid, float norm) {
  return qq->ea * resid + qq->eb * norm;
}

/* The collector of one customer's candidates. Set up by qsel_init(); the
 * scan offers item i, with its score v_i and bound e_i, when v_i + e_i >=
 * thresh. An offered item the filter removes is dropped at once; the
 * others are kept with key = v + the category adjustment, lo = key - e -
 * slack and hi = key + e + slack (slack: the error of the exact re-scoring
 * itself). L, the want-th best lo so far, is kept up to date offer by
 * offer (a heap of the want best), and thresh rises with it; when the
 * buffer is full it is compacted: items whose hi is below L are dropped.
 * An item whose hi is below L cannot beat any of the want items whose lo
 * is at least L, L only grows as items are seen, so no item that can
 * reach the final top `want` is ever dropped. */
typedef struct qsel {
  const topk_filter_t *f; /* may be NULL: no filter */
  size_t want;
  float slack;            /* error of the exact score (rec_score_slack) */
  float amax;             /* >= every finite category adjustment, >= 0 */
  float thresh;           /* items with v + e below this are not offered */
  size_t n, cap;
  size_t lim;             /* compact when n reaches this (<= cap) */
  uint32_t *idx;          /* candidates (all passed the filter): item index ... */
  float *s;               /* ... approximate (unadjusted) score ... */
  float *err;             /* ... its bound e_i ... */
  float *key;             /* ... and its adjusted score */
  double *best;           /* the hn (<= want) best lo so far, a min-heap:
                             best[0] is L once hn == want */
  size_t hn;
  uint64_t changes;       /* heap updates so far (qsel_kth_lo's cache: */
  uint64_t kth_at;        /* the count it last answered at, */
  size_t kth_j;           /* for this j, */
  double kth_lo;          /* this) */
} qsel_t;

/* want >= 1; f (may be NULL) must outlive the collector. 0 or RECD_ENOMEM. */
int qsel_init(qsel_t *s, const topk_filter_t *f, size_t want, float slack);
void qsel_free(qsel_t *s);
/* Offers item i with approximate score v and bound e (the scan's kernels,
 * through qsel__push). 0 or RECD_ENOMEM. */
int qsel_offer(qsel_t *s, uint32_t i, float v, float e);
/* Applies the bar now (see qsel_t). After the scan, one call leaves
 * exactly the candidates to re-score: every item offered that passes the
 * filter and whose hi reaches the want-th best lo. 0 or RECD_ENOMEM. */
int qsel_compact(qsel_t *s);
/* Moves src's candidates into dst (both collectors of the same customer
 * over disjoint item ranges), then compacts dst. 0 or RECD_ENOMEM. */
int qsel_merge(qsel_t *dst, qsel_t *src);

/* For collectors of one customer over disjoint ranges (a split scan), to
 * share what they have seen: the j-th best lo counted so far (1 <= j <=
 * want; -INFINITY while fewer than j are counted). If each of P collectors
 * holds ceil(want / P) items whose lo is at least L_p, their union holds
 * want of them at least min_p L_p, all kept to the merge (an item among a
 * collector's want best is never compacted away), so min_p L_p is a bar
 * for every one of them. Costs a copy and a selection of want doubles
 * when the collector's best have changed since the last call. */
double qsel_kth_lo(qsel_t *s, size_t j);
/* Raises s's threshold to what the bar `bar` allows (the rule qsel_t's
 * own bar follows); a lower or NaN bar changes nothing. */
void qsel_raise_bar(qsel_t *s, double bar);

/* Instruction sets of the scan (QSCORE_ISA_COUNT: how many). */
typedef enum qscore_isa {
  QSCORE_SCALAR = 0,
  QSCORE_AVX2 = 1,
  QSCORE_AVX512 = 2,
  QSCORE_ISA_COUNT
} qscore_isa_t;

/* The best the CPU runs (AVX-512 VNNI, else AVX2, else the portable
 * kernel), read once; the daemon and recd-bench use this. The environment
 * can ask for another: RECD_QSCORE_ISA=scalar, avx2 or avx512 (its name,
 * qscore_isa_name) takes that kernel, or the best below it that the CPU
 * runs; any other value is ignored. */
qscore_isa_t qscore_isa_default(void);
int qscore_isa_supported(qscore_isa_t isa);
const char *qscore_isa_name(qscore_isa_t isa);

/* The fused first pass: for items [lo, hi) (lo a multiple of 8) and nq
 * customers, computes each approximate score and offers it to that
 * customer's collector. The items are read once for all nq customers, in
 * blocks of 8 that stay in L1 while every customer is scored against them.
 * One customer (nq == 1) goes through the 4-bit prefilter when the qmat
 * has its 4-bit copy. 0, or RECD_ENOMEM when a collector could not grow
 * (then its candidates are incomplete). isa must be supported. */
int qscan(qscore_isa_t isa, const qmat_t *qm, uint32_t lo, uint32_t hi, const qquery_t *qq,
          qsel_t *sel, size_t nq);

/* Dense approximate scores out[i] for every item (tests and benchmarks:
 * the same numbers the scan offers). Returns qquery_prepare()'s bound for
 * every item at once. scratch: qquery_bytes() bytes. */
float qscore_items(const qmat_t *qm, const float *x, float *out, int8_t *scratch);
/* The 4-bit copy's scores out[i] and bounds err[i] for every item (tests:
 * the numbers the prefilter compares with a threshold). qm must have its
 * 4-bit copy. scratch: qquery_bytes() bytes. */
void qscore_items4(const qmat_t *qm, const float *x, float *out, float *err, int8_t *scratch);

#endif
