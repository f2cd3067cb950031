/* serve.h - the serving algorithm: a batch of customers from fold-in to
 * exact answers, phase by phase.
 *
 * A RECOMMEND is: the customer folded into the model (rec_prepare), a first
 * pass over the catalogue (float BLAS, or the fused int8 scan of qscore.h
 * with its candidate collectors), the exact re-scoring of the candidates
 * and the rules (recommend.h). This module owns that sequence for a batch
 * of customers, so that whoever runs it (the daemon's batcher on its thread
 * pool, recd-bench, the tests) runs the very same code. It knows nothing
 * about threads or event loops: a caller that shares a batch among threads
 * decides who runs which phase and provides the barriers between phases.
 *
 *   serve_batch_new()              memory for n customers
 *   1. serve_batch_fold(j)         per customer, any order (or
 *                                  serve_batch_set_vector(j) when the
 *                                  customer's vector is given)
 *   2. serve_batch_rows()          once, after every customer of phase 1:
 *                                  the personalized customers become rows
 *   3. serve_batch_scan(p, lo, hi) the first pass over items [lo, hi) for
 *                                  every row, into part p's collectors; the
 *                                  parts' ranges must together cover
 *                                  [0, serve_batch_n_items()) exactly once
 *   4. serve_batch_finish(r)       per row, after every scan: merges the
 *                                  parts and computes the exact answer
 *   serve_batch_answer(j)          customer j's answer, after phase 4
 *
 * Within a phase, calls for different j, parts or rows may run
 * concurrently (each touches only its own slot); the phases themselves must
 * not overlap. serve_batch_run() runs all four on the calling thread.
 *
 * SIMILAR runs the same phases (serve_batch_new_similar) on the int8
 * copy of the normalised items, a cosine being the dot product of
 * normalised rows; its answers are rec_similar_q's.
 *
 * Every answer equals the float32 brute force's top-N after the rules
 * whatever the pass, the batch size or the split: personalized answers are
 * ranked on rec_score_exact(), and each first pass keeps every candidate
 * that its proven error bound cannot rule out.
 *
 * Caps and families (recommend.h, "Depth"): the first pass collects the
 * top rec_depth() of the filtered ranking; when the walk needs more, the
 * float pass selects deeper on the row's scores it still has, and the
 * int8 pass scans the catalogue again for that row alone in phase 4 (one
 * customer's scan, about a batch row's cost) with a deeper collector,
 * until the answer is decided; a depth beyond a quarter of the catalogue
 * is served by scoring the row densely in float instead (same answer: both
 * end on the exact scores), which bounds the memory of the worst case to
 * the float pass's 4 bytes per item. Bought families (exclude-bought-
 * groups) cost no depth: serve_model_t's family index turns them into
 * exclusions of the first pass.
 */
#ifndef RECD_SERVE_H
#define RECD_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"

/* The first pass over the catalogue. */
typedef enum serve_pass {
  SERVE_PASS_FLOAT = 0, /* sgemv / sgemm over the float item matrix */
  SERVE_PASS_INT8 = 1   /* the fused int8 scan (qscore.h) */
} serve_pass_t;

/* The int8 pass is chosen (serve_opts_default) for catalogues of
 * SERVE_INT8_MIN_ITEMS items or more, and for smaller ones whose float
 * rows (items x k x 4 bytes) reach SERVE_INT8_MIN_BYTES: 8,192 items at
 * k = 64, 2,048 at k = 256. Below both the float rows stay in the core's
 * own cache and one sgemm for a batch costs no more; above, the fused scan
 * reads a quarter of the bytes and skips the full score buffer, for ~+30%
 * memory at k = 64, with the same answers (0.25 vs 1.9 ms per customer at
 * 100k items, k = 64). Why a size too: the float pass's cost per customer
 * grows with k, the int8 pass's fixed part (the exact re-scoring of a few
 * candidates) much less. At 3,706 items and k = 256 (3.8 MB) the int8 pass
 * answered 15-17% more RECOMMENDs/s at 50 connections on two real data
 * sets, 8-9% more at 6,000 items, k = 128 and 10,000 items, k = 64; at
 * 0.9 MB (k = 64) and 1.7 MB (k = 256) the two were equal within the noise
 * (bench/README.md). */
#define SERVE_INT8_MIN_ITEMS 20000u
#define SERVE_INT8_MIN_BYTES ((size_t)2 << 20)
/* The int8 copy's size (its bytes and per-row numbers) from which a scan
 * of one customer goes through the 4-bit prefilter (qscore.h). Below it
 * the int8 copy sits in the last-level cache and the scan is bound by its
 * multiplies, which the prefilter does not reduce: it was 1.3-1.5x slower
 * at 100k-200k items, even at 400k (30 MB), and 0.8x at 1M items (76 MB),
 * k = 64, on the 2-vCPU EPYC VM with 32 MB of L3 (bench/README.md). The
 * CPU's own cache size is not used: in a VM cpuid reports the host's
 * (sysconf says 256 MB here). */
#define SERVE_Q4_MIN_BYTES ((size_t)32 << 20)
/* The float pass's score buffer (rows x items floats) is capped at this
 * many bytes per batch: 16 customers at 1M items. */
#define SERVE_FLOAT_MAX_SCORE_BYTES ((size_t)64 << 20)
/* serve_batch_scan's ranges start at multiples of this (the int8 copy's
 * blocks of 8 items). */
#define SERVE_SCAN_ALIGN 8u
/* Most parts a batch's scan may be split into. */
#define SERVE_MAX_PARTS 8u

typedef struct serve_opts {
  serve_pass_t pass;        /* used when !automatic */
  int automatic;            /* choose: int8 from int8_min_items items or
                               int8_min_bytes of float item rows
                               (items x k x 4) on,
                               when isa is not QSCORE_SCALAR (the portable
                               kernel is slower than sgemv: without AVX2 the
                               int8 copy would only cost memory) */
  uint32_t int8_min_items;
  size_t int8_min_bytes;
  qscore_isa_t isa;         /* the int8 scan's kernel */
  size_t q4_min_bytes;      /* the 4-bit prefilter from this int8 copy
                               size on (SIZE_MAX: never) */
} serve_opts_t;

/* automatic, SERVE_INT8_MIN_ITEMS, SERVE_INT8_MIN_BYTES, qscore_isa_default(),
 * SERVE_Q4_MIN_BYTES. */
void serve_opts_default(serve_opts_t *o);

/* A model as served: everything derived from it once, at load, so that a
 * batch is only its customers. */
typedef struct serve_model {
  const model_t *m;   /* borrowed: must outlive the serve_model_t */
  float pop_scale;    /* rec_popularity_scale(m) */
  serve_pass_t pass;  /* the first pass every batch of this model uses */
  qscore_isa_t isa;   /* its kernel (SERVE_PASS_INT8) */
  qmat_t q;           /* the int8 copy of the items (SERVE_PASS_INT8 only) */
  qmat_t qc;          /* ... and of the L2-normalised items, SIMILAR's
                         (qmat_build_cosine; as much memory again) */
  rec_families_t families; /* the product families' members: every
                              batch's queries get it (exclude_bought_groups
                              as a first-pass filter) */
  struct serve_depth *depth; /* how deep capped walks read (int8 pass):
                                see serve_depth_for() in serve.c */
} serve_model_t;

/* 0, RECD_ENOMEM (the int8 copy could not be built) or RECD_EINVAL (the
 * int8 pass forced with a kernel this CPU does not run). o NULL:
 * defaults. */
int serve_model_init(serve_model_t *sm, const model_t *m, const serve_opts_t *o);
void serve_model_free(serve_model_t *sm);
/* What the model has learnt of its capped walks (MAXPERCATEGORY,
 * ONEPERGROUP): the running average of items read per answer position,
 * in sixteenths (64 = 4x, the starting guess). The int8 pass collects
 * about 1.5 times that; only speed depends on it. */
uint32_t serve_model_walk_ratio16(const serve_model_t *sm);

/* "int8-avx512", "int8-avx2", "int8-scalar" or "float-blas": for INFO and
 * benchmarks. */
const char *serve_pass_name(const serve_model_t *sm);
/* Bytes of the int8 copies (the items' and the normalised items', 0 on
 * the float pass) with their 4-bit copies when kept: INFO
 * scoring_int8_bytes. */
size_t serve_model_int8_bytes(const serve_model_t *sm);
/* "int4" when a scan of one customer goes through the 4-bit prefilter
 * (SERVE_Q4_MIN_BYTES), else "none": INFO scoring_prefilter. */
const char *serve_prefilter_name(const serve_model_t *sm);

/* One customer's answer, owned by the batch. Until the phase that computes
 * it has run, rc is RECD_EINVAL. */
typedef struct serve_answer {
  int rc;            /* 0 or RECD_E* (then nothing else is set) */
  int personalized;  /* the customer's vector was used */
  size_t n_used;     /* history items folded in */
  size_t n;          /* items (<= count) */
  uint32_t *items;   /* model indices, best first (never NULL when rc is
                        0; scores and reasons share its allocation) */
  float *scores;     /* adjusted scores */
  int32_t *reasons;  /* with_reasons only (else NULL): index into the
                        query's hist of the past item contributing most,
                        -1 when none */
  uint8_t *promoted; /* promote > 0 with a promoted bitmap only (else
                        NULL; may be NULL when n is 0): 1 for an item in
                        a promoted slot
                        (WITHREASONS says "promoted"), 0 otherwise */
} serve_answer_t;

typedef struct serve_batch serve_batch_t;

/* How many of `wanted` customers fit in one batch of this model (the float
 * pass's score buffer is capped by SERVE_FLOAT_MAX_SCORE_BYTES); >= 1. */
size_t serve_batch_capacity(const serve_model_t *sm, size_t wanted);

/* A batch of the n queries q[0..n) (copied; what they point to is
 * borrowed until serve_batch_free, and their `families` is replaced by the
 * served model's; n <=
 * serve_batch_capacity) whose scan is split into `parts` parts (1 ..
 * SERVE_MAX_PARTS). 0, RECD_EINVAL or RECD_ENOMEM. */
int serve_batch_new(const serve_model_t *sm, const rec_query_t *const *q, size_t n,
                    unsigned parts, serve_batch_t **out);

/* A batch of n SIMILARs: query j asks for the items most similar to
 * items[j] under q[j]'s rules (rec_similar_q's contract; copied as for
 * serve_batch_new). The same phases: phase 1 (serve_batch_fold; nothing is
 * folded in) quantizes each query row, normalised, against the int8 copy
 * of the normalised items (sm->qc), the scan offers cosines to the
 * collectors, and phase 4 re-scores the candidates exactly
 * (rec_similar_candidates): every answer equals rec_similar_q's bit for
 * bit, whatever the batch or the split. The int8 pass only (RECD_EINVAL
 * otherwise); the answers say personalized 0. */
int serve_batch_new_similar(const serve_model_t *sm, const rec_query_t *const *q,
                            const uint32_t *items, size_t n, unsigned parts,
                            serve_batch_t **out);
void serve_batch_free(serve_batch_t *b);

size_t serve_batch_size(const serve_batch_t *b);
/* Items of the catalogue: the range phase 3 covers. */
uint32_t serve_batch_n_items(const serve_batch_t *b);

/* Phase 1: folds customer j in. A customer who needs no scan (not
 * personalized, or offset + count = 0) is answered right away. ws: one per
 * thread. */
void serve_batch_fold(serve_batch_t *b, size_t j, rec_ws_t *ws);
/* Phase 1 for a customer whose vector is given (k floats; recd-bench, whose
 * peers are handed the same vectors): personalized, nothing folded in
 * (n_used 0, so no reasons). */
void serve_batch_set_vector(serve_batch_t *b, size_t j, const float *x);

/* Phase 2. 0 or RECD_ENOMEM (then every row will fail). */
int serve_batch_rows(serve_batch_t *b);
/* Customers that go through phases 3 and 4. */
size_t serve_batch_n_rows(const serve_batch_t *b);

/* Phase 3: items [lo, hi) for every row, into part p's collectors (int8)
 * or score rows (float). lo is a multiple of SERVE_SCAN_ALIGN. A part may
 * be given several ranges (one call at a time per part). 0, RECD_ENOMEM,
 * RECD_EINVAL (part or range out of bounds) or phase 2's error; a failure
 * is also remembered, and fails every row in phase 4, as does a scan whose
 * ranges do not add up to serve_batch_n_items() (RECD_EINVAL). */
int serve_batch_scan(serve_batch_t *b, unsigned part, uint32_t lo, uint32_t hi);

/* Phase 4: row r's exact answer. ws: one per thread. */
void serve_batch_finish(serve_batch_t *b, size_t r, rec_ws_t *ws);

const serve_answer_t *serve_batch_answer(const serve_batch_t *b, size_t j);

/* Every phase on this thread, the scan as one part over every item.
 * Returns 0 (per-customer errors are in the answers). */
int serve_batch_run(serve_batch_t *b, rec_ws_t *ws);

/* One customer on this thread: a batch of one, the answer copied into
 * *out (free with serve_answer_free). Returns out->rc. */
int serve_one(const serve_model_t *sm, const rec_query_t *q, rec_ws_t *ws,
              serve_answer_t *out);
/* One SIMILAR of `item` likewise: through a batch of one on the int8
 * pass, rec_similar_q (the dense pass) on the float pass. */
int serve_similar_one(const serve_model_t *sm, uint32_t item, const rec_query_t *q,
                      rec_ws_t *ws, serve_answer_t *out);
void serve_answer_free(serve_answer_t *a);

#endif
