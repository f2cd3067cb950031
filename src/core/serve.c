/* serve.c - the serving algorithm for a batch of customers (see serve.h).
 *
 * A batch is n slots, one per customer, and, after phase 2, `rows`: the
 * personalized customers that still need the first pass, in slot order.
 * Every phase writes only what belongs to its own slot, row or part, which
 * is what lets a caller run the calls of one phase on several threads
 * without a lock:
 *
 *   fold(j)      slot j, answer j
 *   rows()       everything (one call)
 *   scan(p)      part p's collectors (int8), part p's columns of the score
 *                rows (float), scan_rc[p], scanned[p]
 *   finish(r)    row r's collectors, its slot's rules, its answer
 *
 * The two first passes:
 *  - float: the customers' vectors are rows of X, and the scan fills the
 *    rows x items score matrix S (per range, one sgemm for a multiple of
 *    SERVE__GEMM_ROWS rows and one sgemv per remaining row); finish runs
 *    rec_select() on the row's scores, which takes the top and re-scores exactly what the
 *    float error bound cannot rule out;
 *  - int8: each row has its quantized query (qquery_t) and one collector
 *    (qsel_t) per part; the scan offers every item of its ranges to part
 *    p's collectors, and finish merges the parts' collectors and re-scores
 *    the survivors exactly (rec_select_candidates).
 * Both end on rec_score_exact() for every answer, so a customer's answer
 * does not depend on the pass, the batch or the split.
 *
 * A SIMILAR batch (serve_batch_new_similar, int8 only) is the same
 * sequence with a query item instead of a customer: phase 1 normalises
 * the item's row and quantizes it against the int8 copy of the normalised
 * items (sm->qc, whose dot products are cosines), the scan reads that copy
 * instead of sm->q, and finish re-scores the candidates by their exact
 * cosine (rec_similar_candidates), deepening like a RECOMMEND, ending on
 * rec_similar_q's dense pass beyond a quarter of the catalogue.
 */
#include "recd/serve.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "recd/err.h"
#include "recd/score.h"

/* The float pass runs sgemm on the largest multiple of SERVE__GEMM_ROWS
 * rows and one sgemv for each remaining row. OpenBLAS's sgemm packs
 * (copies) the item matrix first, which costs about two sgemv passes, and
 * its kernels work on 4 rows at a time: with 1-3 rows, or 3 beside a
 * multiple of 4, it loses to sgemv (measured per row, 3,659 items, k =
 * 256, one thread: 3 rows 139 us by sgemm against 60 us by sgemv; 4 rows
 * 62 against 56; 8 rows 39 against 57; k = 64 and 15,000 items alike). */
#define SERVE__GEMM_ROWS 4

/* A slot's state. */
enum {
  SERVE__NEW = 0, /* not folded in yet (its answer says RECD_EINVAL) */
  SERVE__DONE,    /* answered in phase 1 (or failed) */
  SERVE__ROW      /* goes through the scan and finish */
};

typedef struct serve_slot {
  rec_query_t q;     /* the query, with the model's family index */
  int state;
  size_t used;       /* history items folded in */
  float *x;          /* the customer's vector: a row of b->X */
  qquery_t qq;       /* int8: x quantized (xq: a slice of b->XQ) */
  rec_rules_t rules; /* int8: its filters, while a row */
  float slack;       /* int8: the exact score's own error (rec_score_slack) */
  size_t depth;      /* int8: the top of the filtered ranking to collect */
  uint32_t item;     /* SIMILAR: the query item */
} serve_slot_t;

struct serve_batch {
  const serve_model_t *sm;
  const rec_query_t *const *q;
  size_t n;
  unsigned parts;
  int similar;         /* a batch of SIMILARs (serve_batch_new_similar) */
  const qmat_t *qm;    /* int8: what the scan reads (sm->q, or sm->qc) */
  uint32_t n_items, stride;
  serve_slot_t *slot;
  serve_answer_t *ans;
  float *X;            /* n x stride: the customers' vectors */
  size_t rows;         /* customers of phases 3 and 4 ... */
  size_t *row_slot;    /* ... and their slots */
  /* int8 */
  int8_t *XQ;          /* n x qquery_bytes(): the quantized vectors */
  qquery_t *qq;        /* the rows' queries, contiguous for qscan */
  qsel_t *sel;         /* parts x rows collectors: part p's at p * rows */
  _Atomic uint32_t *bar; /* per row, the best threshold any part has
                            reached (float bits; serve__bar_take); in
                            sel's allocation */
  _Atomic uint64_t *qlo; /* per part and row (part * rows + r), the
                            part's ceil(want / parts)-th best lo (double
                            bits; serve__bar_take); there too */
  /* float */
  float *S;            /* rows x n_items first-pass scores */
  int rows_rc;                        /* serve_batch_rows()'s result */
  int scan_rc[SERVE_MAX_PARTS];       /* a part's first failure */
  uint64_t scanned[SERVE_MAX_PARTS];  /* items a part has covered */
};

static uint32_t serve__float_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float serve__bits_float(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static uint64_t serve__double_bits(double f) {
  uint64_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static double serve__bits_double(uint64_t u) {
  double f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* ---- the model ------------------------------------------------------- */

void serve_opts_default(serve_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->pass = SERVE_PASS_FLOAT;
  o->automatic = 1;
  o->int8_min_items = SERVE_INT8_MIN_ITEMS;
  o->int8_min_bytes = SERVE_INT8_MIN_BYTES;
  o->isa = qscore_isa_default();
  o->q4_min_bytes = SERVE_Q4_MIN_BYTES;
}

/* The depth of a capped walk. With MAXPERCATEGORY or ONEPERGROUP the walk
 * reads an unknown prefix of the filtered ranking, and the int8 pass must
 * collect it up front: a collector of depth d costs about d items of
 * collector work per block (collecting 4x too deep was a third of a busy
 * daemon's time at 100k items, measured with perf), and one too shallow
 * costs a second scan of the catalogue for that customer (serve__deepen).
 * How deep walks read depends on the catalogue (how many categories, how
 * the top items spread over them) far more than on the customer, so each
 * served model learns it: a running average of read / (offset + count),
 * in sixteenths, and a first pass collects 1.5 times that (+8), never more
 * than rec_depth()'s fixed guess (the float pass selects that deep on its
 * dense scores first: there a miss costs only another selection). Only speed depends on it: every answer
 * is exact whatever the depth (a walk that needs more deepens). Updates
 * race benignly (relaxed loads and stores of one word: a lost update is
 * one sample less). */
struct serve_depth {
  _Atomic uint32_t ratio16;
  _Atomic uint32_t sim16; /* SIMILAR's walks, apart: a product's neighbours
                             crowd into its own category far more than a
                             customer's top does */
};
/* rec_depth()'s 4x: the starting point, as before any learning. */
#define SERVE__DEPTH_START16 64u

uint32_t serve_model_walk_ratio16(const serve_model_t *sm) {
  return sm->depth ? atomic_load_explicit(&sm->depth->ratio16, memory_order_relaxed)
                   : SERVE__DEPTH_START16;
}

static _Atomic uint32_t *serve__ratio(const serve_model_t *sm, int similar) {
  return similar ? &sm->depth->sim16 : &sm->depth->ratio16;
}

static size_t serve__depth_for(const serve_model_t *sm, const rec_query_t *q, int similar) {
  const size_t fixed = rec_depth(sm->m, q);
  size_t want = q->offset + q->count;
  if (sm->depth == NULL || !(q->max_per_category > 0 || q->one_per_group) || want == 0 ||
      want > fixed)
    return fixed;
  const uint32_t r16 = atomic_load_explicit(serve__ratio(sm, similar), memory_order_relaxed);
  size_t d = (want * (size_t)r16 * 3 / 2) / 16 + 8;
  if (d < want + 8)
    d = want + 8;
  return d < fixed ? d : fixed;
}

static void serve__depth_learn(const serve_model_t *sm, const rec_query_t *q, size_t read,
                               int similar) {
  const size_t want = q->offset + q->count;
  if (sm->depth == NULL || !(q->max_per_category > 0 || q->one_per_group) || want == 0 ||
      read == 0)
    return;
  size_t obs = (16 * read + want - 1) / want;
  if (obs > 16 * 64)
    obs = 16 * 64; /* one customer's odd walk must not swing it */
  _Atomic uint32_t *ratio = serve__ratio(sm, similar);
  const uint32_t old = atomic_load_explicit(ratio, memory_order_relaxed);
  /* weight 1/8: adapts within a few dozen answers, smooths single ones */
  const uint32_t next = (uint32_t)((7 * (size_t)old + obs + 7) / 8);
  atomic_store_explicit(ratio, next, memory_order_relaxed);
}

/* The float item rows' bytes as the first pass reads them (SERVE_INT8_MIN_BYTES). */
static size_t serve__float_bytes(const model_t *m) {
  return (size_t)model_n_items(m) * model_factors(m) * sizeof(float);
}

int serve_model_init(serve_model_t *sm, const model_t *m, const serve_opts_t *o) {
  serve_opts_t def;
  if (o == NULL) {
    serve_opts_default(&def);
    o = &def;
  }
  memset(sm, 0, sizeof *sm);
  serve_pass_t pass = o->pass;
  if (o->automatic)
    /* The portable kernel is slower than sgemv: without a vector kernel
     * the int8 copy would only cost memory. */
    pass = (model_n_items(m) >= o->int8_min_items ||
            serve__float_bytes(m) >= o->int8_min_bytes) &&
                   o->isa != QSCORE_SCALAR &&
                   qscore_isa_supported(o->isa)
               ? SERVE_PASS_INT8
               : SERVE_PASS_FLOAT;
  if (pass == SERVE_PASS_INT8 && !qscore_isa_supported(o->isa))
    return RECD_EINVAL; /* qscan may only run a supported kernel */
  sm->m = m;
  sm->pop_scale = rec_popularity_scale(m);
  sm->pass = pass;
  sm->isa = o->isa;
  if (rec_families_build(&sm->families, m) != 0) {
    memset(sm, 0, sizeof *sm);
    return RECD_ENOMEM;
  }
  if ((sm->depth = malloc(sizeof *sm->depth)) == NULL) {
    rec_families_free(&sm->families);
    memset(sm, 0, sizeof *sm);
    return RECD_ENOMEM;
  }
  atomic_init(&sm->depth->ratio16, SERVE__DEPTH_START16);
  atomic_init(&sm->depth->sim16, SERVE__DEPTH_START16);
  if (pass == SERVE_PASS_INT8) {
    const float *Y = model_item_factors(m);
    const uint32_t stride = model_stride(m), n = model_n_items(m), k = model_factors(m);
    /* The 4-bit copies only for a catalogue whose int8 copy is this large
     * (SERVE_Q4_MIN_BYTES says why); built with the rows, as they are
     * read once. */
    const int q4 = qmat_bytes_int8_for(n, k) >= o->q4_min_bytes;
    if (qmat_build_with(&sm->q, Y, stride, n, k, q4) != 0 ||
        qmat_build_cosine_with(&sm->qc, Y, stride, n, k, model_item_norms(m),
                               REC_SIMILAR_NORM_MIN, REC_SIMILAR_NORM_MAX, q4) != 0) {
      qmat_free(&sm->q); /* both are safe to free once zeroed */
      rec_families_free(&sm->families);
      free(sm->depth);
      memset(sm, 0, sizeof *sm);
      return RECD_ENOMEM;
    }
  }
  return 0;
}

void serve_model_free(serve_model_t *sm) {
  if (sm->pass == SERVE_PASS_INT8) {
    qmat_free(&sm->q);
    qmat_free(&sm->qc);
  }
  rec_families_free(&sm->families);
  free(sm->depth);
  memset(sm, 0, sizeof *sm);
}

const char *serve_pass_name(const serve_model_t *sm) {
  if (sm->pass == SERVE_PASS_FLOAT)
    return "float-blas";
  return sm->isa == QSCORE_SCALAR   ? "int8-scalar"
         : sm->isa == QSCORE_AVX512 ? "int8-avx512"
                                    : "int8-avx2";
}

const char *serve_prefilter_name(const serve_model_t *sm) {
  return sm->pass == SERVE_PASS_INT8 && sm->q.q4 != NULL ? "int4" : "none";
}

size_t serve_model_int8_bytes(const serve_model_t *sm) {
  return sm->pass == SERVE_PASS_INT8 ? qmat_bytes(&sm->q) + qmat_bytes(&sm->qc) : 0;
}

/* ---- answers --------------------------------------------------------- */

void serve_answer_free(serve_answer_t *a) {
  free(a->items); /* scores and reasons live in the same block */
  memset(a, 0, sizeof *a);
}

/* Copies a result out of the (per-thread) workspace into the answer, which
 * the batch owns. Items, scores and reasons are one allocation: one malloc
 * per customer instead of three, on the path of every request. */
static void serve__keep(serve_answer_t *a, const rec_result_t *res) {
  const size_t n = res->n ? res->n : 1; /* items is never NULL on success */
  const size_t per = sizeof(uint32_t) + sizeof(float) + (res->reasons ? sizeof(int32_t) : 0) +
                     (res->promoted ? sizeof(uint8_t) : 0);
  memset(a, 0, sizeof *a);
  void *blk = malloc(n * per);
  if (blk == NULL) {
    a->rc = RECD_ENOMEM;
    return;
  }
  a->personalized = res->personalized;
  a->n_used = res->n_used;
  a->n = res->n;
  a->items = blk;
  a->scores = (float *)(a->items + n);
  if (res->reasons != NULL)
    a->reasons = (int32_t *)(a->scores + n);
  if (res->promoted != NULL) /* the 1-byte flags last: no alignment gap */
    a->promoted = (uint8_t *)(res->reasons != NULL ? (void *)(a->reasons + n)
                                                   : (void *)(a->scores + n));
  if (res->n > 0) { /* memcpy from NULL is undefined even for 0 bytes */
    memcpy(a->items, res->items, res->n * sizeof *a->items);
    memcpy(a->scores, res->scores, res->n * sizeof *a->scores);
    if (res->reasons != NULL)
      memcpy(a->reasons, res->reasons, res->n * sizeof *a->reasons);
    if (res->promoted != NULL)
      memcpy(a->promoted, res->promoted, res->n * sizeof *a->promoted);
  }
}

static void serve__fail(serve_answer_t *a, int rc) {
  serve_answer_free(a);
  a->rc = rc;
}

/* ---- the batch ------------------------------------------------------- */

size_t serve_batch_capacity(const serve_model_t *sm, size_t wanted) {
  size_t cap = wanted ? wanted : 1;
  if (sm->pass == SERVE_PASS_FLOAT) {
    /* Only the float pass has a score buffer (rows x items floats); the
     * int8 scan keeps a few candidates per customer. */
    const size_t row = (size_t)model_n_items(sm->m) * sizeof(float);
    size_t fit = SERVE_FLOAT_MAX_SCORE_BYTES / (row ? row : 1);
    if (fit < 1)
      fit = 1;
    if (fit < cap)
      cap = fit;
  }
  return cap;
}

/* 64-byte aligned memory for n bytes (aligned_alloc wants a multiple of
 * the alignment), zeroed: the vectors' padding past k stays zero. */
static void *serve__aligned(size_t n) {
  const size_t sz = ((n ? n : 1) + 63) & ~(size_t)63;
  void *p = aligned_alloc(64, sz);
  if (p != NULL)
    memset(p, 0, sz);
  return p;
}

static int serve__batch_new(const serve_model_t *sm, const rec_query_t *const *q,
                            const uint32_t *items, size_t n, unsigned parts,
                            serve_batch_t **out) {
  *out = NULL;
  if (parts < 1 || parts > SERVE_MAX_PARTS || n > serve_batch_capacity(sm, n) ||
      (n > 0 && q == NULL) || (items != NULL && sm->pass != SERVE_PASS_INT8))
    return RECD_EINVAL;
  serve_batch_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return RECD_ENOMEM;
  const model_t *m = sm->m;
  const size_t nn = n ? n : 1;
  b->sm = sm;
  b->q = q;
  b->n = n;
  b->parts = parts;
  b->similar = items != NULL;
  b->qm = b->similar ? &sm->qc : &sm->q;
  b->n_items = model_n_items(m);
  b->stride = model_stride(m);
  b->slot = calloc(nn, sizeof *b->slot);
  b->ans = calloc(nn, sizeof *b->ans);
  b->row_slot = calloc(nn, sizeof *b->row_slot);
  b->X = serve__aligned(nn * b->stride * sizeof(float));
  int ok = b->slot != NULL && b->ans != NULL && b->row_slot != NULL && b->X != NULL;
  size_t qb = 0;
  if (ok && sm->pass == SERVE_PASS_INT8) {
    qb = qquery_bytes(&sm->q);
    b->XQ = serve__aligned(nn * qb);
    b->qq = calloc(nn, sizeof *b->qq);
    ok = b->XQ != NULL && b->qq != NULL;
  }
  if (!ok) {
    serve_batch_free(b);
    return RECD_ENOMEM;
  }
  for (size_t j = 0; j < n; j++) {
    if (b->similar) {
      rec_similar_query(q[j], &b->slot[j].q);
      b->slot[j].item = items[j];
    } else {
      b->slot[j].q = *q[j];
    }
    b->slot[j].q.families = &sm->families;
    b->slot[j].x = b->X + j * b->stride;
    if (b->XQ != NULL)
      b->slot[j].qq.xq = b->XQ + j * qb;
    /* Until its phase computes it: a caller that skips a phase gets an
     * error, never an empty answer that looks right. */
    b->ans[j].rc = RECD_EINVAL;
  }
  *out = b;
  return 0;
}

int serve_batch_new(const serve_model_t *sm, const rec_query_t *const *q, size_t n,
                    unsigned parts, serve_batch_t **out) {
  return serve__batch_new(sm, q, NULL, n, parts, out);
}

int serve_batch_new_similar(const serve_model_t *sm, const rec_query_t *const *q,
                            const uint32_t *items, size_t n, unsigned parts,
                            serve_batch_t **out) {
  static const uint32_t none[1] = {0}; /* n = 0: still a SIMILAR batch */
  if (items == NULL && n > 0) {
    *out = NULL;
    return RECD_EINVAL;
  }
  return serve__batch_new(sm, q, items != NULL ? items : none, n, parts, out);
}

void serve_batch_free(serve_batch_t *b) {
  if (b == NULL)
    return;
  for (size_t j = 0; b->slot != NULL && j < b->n; j++)
    rec_rules_free(&b->slot[j].rules);
  for (size_t r = 0; b->sel != NULL && r < b->rows * b->parts; r++)
    qsel_free(&b->sel[r]);
  for (size_t j = 0; b->ans != NULL && j < b->n; j++)
    serve_answer_free(&b->ans[j]);
  free(b->slot);
  free(b->ans);
  free(b->row_slot);
  free(b->X);
  free(b->XQ);
  free(b->qq);
  free(b->sel);
  free(b->S);
  free(b);
}

size_t serve_batch_size(const serve_batch_t *b) {
  return b->n;
}

uint32_t serve_batch_n_items(const serve_batch_t *b) {
  return b->n_items;
}

size_t serve_batch_n_rows(const serve_batch_t *b) {
  return b->rows;
}

const serve_answer_t *serve_batch_answer(const serve_batch_t *b, size_t j) {
  return &b->ans[j];
}

/* ---- phase 1 --------------------------------------------------------- */

/* Customer j is personalized and its vector is in its slot: either it
 * needs no scan (nothing asked for) and is answered now, or it becomes a
 * row (the int8 pass also sets up its query and filters here, so that
 * this work is shared out with the fold-ins). */
static void serve__admit(serve_batch_t *b, size_t j) {
  const serve_model_t *sm = b->sm;
  const rec_query_t *q = &b->slot[j].q;
  serve_slot_t *sl = &b->slot[j];
  serve_answer_t *a = &b->ans[j];
  sl->state = SERVE__DONE;
  if (q->offset + q->count == 0) {
    /* What the first pass and rec_select would answer: personalized,
     * nothing (and the collectors need want >= 1). */
    const rec_result_t none = {.personalized = 1, .n_used = sl->used};
    serve__keep(a, &none);
    return;
  }
  if (sm->pass == SERVE_PASS_INT8) {
    int rc = rec_rules_init(&sl->rules, sm->m, q, model_meta(sm->m)->score_scale);
    if (rc != 0) {
      serve__fail(a, rc);
      return;
    }
    qquery_prepare(&sm->q, sl->x, &sl->qq); /* its per-item bounds go with the scan */
    sl->slack = rec_score_slack(sm->m, sl->x, &sl->rules.f);
    sl->depth = serve__depth_for(sm, q, 0);
    if (sl->depth < 1)
      sl->depth = 1; /* a collector wants at least one */
  }
  sl->state = SERVE__ROW;
}

/* Phase 1 of a SIMILAR: the query row, normalised (z_q = y_q / |y_q|, the
 * division qmat_build_cosine makes for every row), quantized against the
 * normalised copy; its filters, with the item itself excluded. What
 * needs no scan is answered now: an unknown item, nothing asked for, a
 * zero row (similar to nothing), and a query whose norm has no proven
 * bound (rec_similar_q's dense pass scores it exactly). */
static void serve__admit_similar(serve_batch_t *b, size_t j, rec_ws_t *ws) {
  const serve_model_t *sm = b->sm;
  const model_t *m = sm->m;
  serve_slot_t *sl = &b->slot[j];
  const rec_query_t *q = &sl->q;
  serve_answer_t *a = &b->ans[j];
  const uint32_t item = sl->item, k = model_factors(m);
  sl->state = SERVE__DONE;
  sl->used = 0;
  const float nq = item < b->n_items ? model_item_norms(m)[item] : 0.0f;
  if (q->offset + q->count == 0 || !(nq > 0.0f) || k == 0) {
    const rec_result_t none = {0};
    serve__keep(a, &none);
    return;
  }
  if (!rec_similar_regular(nq)) {
    rec_result_t res;
    int rc = rec_similar_q(m, item, q, ws, &res);
    if (rc != 0)
      serve__fail(a, rc);
    else
      serve__keep(a, &res);
    return;
  }
  int rc = rec_similar_rules_init(&sl->rules, m, q, item);
  if (rc != 0) {
    serve__fail(a, rc);
    return;
  }
  const float *y = model_item_factors(m) + (size_t)item * b->stride;
  for (uint32_t t = 0; t < k; t++)
    sl->x[t] = y[t] / nq;
  qquery_prepare(&sm->qc, sl->x, &sl->qq);
  sl->slack = rec_similar_slack(k);
  sl->depth = serve__depth_for(sm, q, 1);
  if (sl->depth < 1)
    sl->depth = 1;
  sl->state = SERVE__ROW;
}

void serve_batch_fold(serve_batch_t *b, size_t j, rec_ws_t *ws) {
  if (b->similar) {
    serve__admit_similar(b, j, ws);
    return;
  }
  const serve_model_t *sm = b->sm;
  const rec_query_t *q = &b->slot[j].q;
  serve_slot_t *sl = &b->slot[j];
  serve_answer_t *a = &b->ans[j];
  int pers;
  int rc = rec_prepare(sm->m, q, ws, sl->x, &pers, &sl->used);
  if (rc != 0) {
    sl->state = SERVE__DONE;
    serve__fail(a, rc);
    return;
  }
  if (pers) {
    serve__admit(b, j);
    return;
  }
  /* Not personalized: the answer is popularity, whatever the pass. */
  sl->state = SERVE__DONE;
  rec_result_t res;
  rc = rec_select(sm->m, sm->pop_scale, q, NULL, NULL, 0.0f, sl->used, ws, &res);
  if (rc != 0)
    serve__fail(a, rc);
  else
    serve__keep(a, &res);
}

void serve_batch_set_vector(serve_batch_t *b, size_t j, const float *x) {
  serve_slot_t *sl = &b->slot[j];
  memcpy(sl->x, x, (size_t)model_factors(b->sm->m) * sizeof *sl->x);
  sl->used = 0;
  serve__admit(b, j);
}

/* ---- phase 2 --------------------------------------------------------- */

int serve_batch_rows(serve_batch_t *b) {
  const serve_model_t *sm = b->sm;
  b->rows = 0;
  for (size_t j = 0; j < b->n; j++)
    if (b->slot[j].state == SERVE__ROW)
      b->row_slot[b->rows++] = j;
  if (b->rows == 0)
    return 0; /* everyone was answered in phase 1 */
  int rc = 0;
  if (sm->pass == SERVE_PASS_FLOAT) {
    /* sgemm wants the rows' vectors contiguous: move them up in place
     * (row r's slot is at r or after it, and every slot before it that
     * was a row has already moved, so nothing still needed is
     * overwritten). Cheaper than a second n x k matrix. */
    for (size_t r = 0; r < b->rows; r++) {
      serve_slot_t *sl = &b->slot[b->row_slot[r]];
      float *dst = b->X + r * b->stride;
      if (sl->x != dst) {
        memcpy(dst, sl->x, (size_t)b->stride * sizeof *dst);
        sl->x = dst;
      }
    }
    b->S = malloc(b->rows * b->n_items * sizeof *b->S);
    if (b->S == NULL)
      rc = RECD_ENOMEM;
  } else {
    b->sel = calloc(1, b->rows * b->parts * (sizeof *b->sel + sizeof *b->qlo) +
                           b->rows * sizeof *b->bar);
    if (b->sel == NULL) {
      rc = RECD_ENOMEM;
    } else {
      /* (qlo first: qsel_t's alignment suits 8-byte atomics) */
      b->qlo = (_Atomic uint64_t *)(void *)(b->sel + b->rows * b->parts);
      b->bar = (_Atomic uint32_t *)(void *)(b->qlo + b->rows * b->parts);
      for (size_t r = 0; r < b->rows; r++)
        atomic_init(&b->bar[r], serve__float_bits(-INFINITY));
      for (size_t j = 0; j < b->rows * b->parts; j++)
        atomic_init(&b->qlo[j], serve__double_bits(-INFINITY));
      for (size_t r = 0; r < b->rows; r++)
        b->qq[r] = b->slot[b->row_slot[r]].qq;
      /* One collector per part and row: the parts scan concurrently and
       * never share one; finish merges them. */
      for (size_t r = 0; r < b->rows && rc == 0; r++) {
        const serve_slot_t *sl = &b->slot[b->row_slot[r]];
        for (unsigned p = 0; p < b->parts && rc == 0; p++)
          rc = qsel_init(&b->sel[p * b->rows + r], &sl->rules.f, sl->depth, sl->slack);
      }
    }
  }
  if (rc != 0) {
    b->rows_rc = rc;
    for (size_t r = 0; r < b->rows; r++)
      serve__fail(&b->ans[b->row_slot[r]], rc);
  }
  return rc;
}

/* ---- phase 3 --------------------------------------------------------- */

/* The parts of a split scan share their thresholds (serve__bar_take
 * before a range, serve__bar_publish after). Why: each part's
 * collector sees only its share of the items, so its own bar rises as if
 * the catalogue were that much smaller and lets more blocks through to be
 * re-read (and with the 4-bit prefilter, each passing block is a random
 * read of the int8 copy); and every part would warm up on its own. Valid:
 * a part's threshold is below the want-th best lower bound of `want`
 * items it holds (qsel_t), the merge in phase 4 keeps them, so an item
 * under it cannot reach the final top `want` whichever part meets it; and
 * the answer is the same, since every item of the global top `want` by
 * lower bound is above every such threshold and is never skipped. Shared
 * at chunk boundaries: a part raises its collectors' thresholds to the
 * best published before it scans [lo, hi), and publishes its own after.
 * Each part also publishes its ceil(want / parts)-th best lo, and the
 * smallest of the parts' is a bar for all (qsel_kth_lo): the want-th best
 * of everything the parts have seen, near enough, where the best
 * threshold alone is the want-th best of one part's share (2 parts, 100k
 * items, random queries: 325 offers per customer with the threshold
 * alone, 294 with both, 263 unsplit; at 1M, 515, 436 and 384). */
static void serve__bar_take(const serve_batch_t *b, qsel_t *sel) {
  for (size_t r = 0; r < b->rows; r++) {
    const float best = serve__bits_float(atomic_load_explicit(&b->bar[r], memory_order_relaxed));
    if (best > sel[r].thresh)
      sel[r].thresh = best;
    double q = INFINITY;
    for (unsigned p = 0; p < b->parts && q > -INFINITY; p++) {
      const double v =
          serve__bits_double(atomic_load_explicit(&b->qlo[p * b->rows + r], memory_order_relaxed));
      q = v < q ? v : q;
    }
    qsel_raise_bar(&sel[r], q); /* -INFINITY: a part has nothing yet */
  }
}

static void serve__bar_publish(serve_batch_t *b, unsigned part, qsel_t *sel) {
  for (size_t r = 0; r < b->rows; r++) {
    const float t = sel[r].thresh; /* NaN never wins: !(NaN > best) */
    uint32_t cur = atomic_load_explicit(&b->bar[r], memory_order_relaxed);
    while (t > serve__bits_float(cur) &&
           !atomic_compare_exchange_weak_explicit(&b->bar[r], &cur, serve__float_bits(t),
                                                  memory_order_relaxed, memory_order_relaxed))
      ; /* cur now holds the value another part published: compare again */
    /* only this part writes its slot, and its k-th best only grows */
    const size_t k = (sel[r].want + b->parts - 1) / b->parts;
    atomic_store_explicit(&b->qlo[part * b->rows + r], serve__double_bits(qsel_kth_lo(&sel[r], k)),
                          memory_order_relaxed);
  }
}

int serve_batch_scan(serve_batch_t *b, unsigned part, uint32_t lo, uint32_t hi) {
  const serve_model_t *sm = b->sm;
  if (part >= b->parts)
    return RECD_EINVAL; /* no part to remember it in: finish sees the gap */
  if (lo % SERVE_SCAN_ALIGN != 0 || lo > hi || hi > b->n_items) {
    if (b->scan_rc[part] == 0)
      b->scan_rc[part] = RECD_EINVAL;
    return RECD_EINVAL;
  }
  b->scanned[part] += hi - lo;
  if (b->rows_rc != 0)
    return b->rows_rc;
  if (b->rows == 0 || lo == hi)
    return 0;
  int rc = 0;
  if (sm->pass == SERVE_PASS_FLOAT) {
    const model_t *m = sm->m;
    const float *Y = model_item_factors(m) + (size_t)lo * b->stride;
    const uint32_t k = model_factors(m), len = hi - lo;
    const size_t gemm_rows = b->rows / SERVE__GEMM_ROWS * SERVE__GEMM_ROWS;
    if (gemm_rows > 0)
      score_items_batch(Y, b->stride, len, k, b->X, b->stride, (uint32_t)gemm_rows, b->S + lo,
                        b->n_items);
    for (size_t r = gemm_rows; r < b->rows; r++)
      score_items(Y, b->stride, len, k, b->X + r * b->stride, b->S + r * b->n_items + lo);
  } else {
    qsel_t *sel = b->sel + (size_t)part * b->rows;
    if (b->parts > 1)
      serve__bar_take(b, sel);
    rc = qscan(sm->isa, b->qm, lo, hi, b->qq, sel, b->rows);
    if (b->parts > 1 && rc == 0)
      serve__bar_publish(b, part, sel);
  }
  if (rc != 0 && b->scan_rc[part] == 0)
    b->scan_rc[part] = rc; /* the part's candidates are incomplete */
  return rc;
}

/* ---- phase 4 --------------------------------------------------------- */

/* Why no row of this batch may be answered, or 0: phase 2 or a scan part
 * failed, or the parts did not cover the catalogue (a caller's mistake,
 * which would otherwise lose candidates silently). */
static int serve__broken(const serve_batch_t *b) {
  if (b->rows_rc != 0)
    return b->rows_rc;
  uint64_t covered = 0;
  for (unsigned p = 0; p < b->parts; p++) {
    if (b->scan_rc[p] != 0)
      return b->scan_rc[p];
    covered += b->scanned[p];
  }
  return covered == b->n_items ? 0 : RECD_EINVAL;
}

/* WITHREASONS needs the customer's fold-in factor in ws (rec_prepare left
 * it there in phase 1, but this ws has folded others in since, or is
 * another thread's): fold in again. Deterministic, so the vector it
 * computes is the row's own; it goes to ws->x and is not used (the row's
 * x is). k^3, small next to the scan. */
static int serve__refold(const serve_model_t *sm, const rec_query_t *q, rec_ws_t *ws) {
  int pers;
  size_t used;
  /* ws->x exists only once ws is sized for the model: a query that is not
   * personalized makes rec_prepare do just that. */
  const rec_query_t none = {.personalize = 0};
  int rc = rec_prepare(sm->m, &none, ws, NULL, &pers, &used);
  return rc != 0 ? rc : rec_prepare(sm->m, q, ws, ws->x, &pers, &used);
}

/* The int8 pass when the walk needs a deeper prefix than the row's
 * collectors hold: the whole catalogue scanned again for this row alone
 * into a collector of `depth`, and the answer tried again, as often as the
 * walk asks (each time deeper). Rare: rec_depth() collects a few times the
 * answer's length to begin with. From a quarter of the catalogue on, the
 * row is scored densely in float instead (rec_select, which deepens on
 * the scores it has): a collector that deep would hold ~100 bytes per
 * item where the float scores take 4, and the answer is the same (both
 * passes end on the exact scores). */
static int serve__deepen(const serve_batch_t *b, serve_slot_t *sl, const rec_query_t *q,
                         size_t depth, rec_ws_t *ws, rec_result_t *res) {
  const serve_model_t *sm = b->sm;
  int rc = 0;
  while (rc == 0 && depth != 0 && depth <= b->n_items / 4) {
    qsel_t sel;
    rc = qsel_init(&sel, &sl->rules.f, depth, sl->slack);
    if (rc != 0)
      break;
    rc = qscan(sm->isa, b->qm, 0, b->n_items, &sl->qq, &sel, 1);
    if (rc == 0)
      rc = qsel_compact(&sel);
    size_t deeper = 0;
    if (rc == 0 && b->similar)
      rc = rec_similar_candidates(sm->m, q, &sl->rules, sl->item, sel.idx, sel.n, depth, ws,
                                  res, &deeper);
    else if (rc == 0)
      rc = rec_select_candidates(sm->m, q, &sl->rules, sl->x, sel.idx, sel.n, depth, sl->used,
                                 ws, res, &deeper);
    qsel_free(&sel);
    depth = deeper;
  }
  if (rc != 0 || depth == 0)
    return rc;
  if (b->similar)
    return rec_similar_q(sm->m, sl->item, q, ws, res); /* dense, deepens itself */
  float *S = malloc((size_t)(b->n_items ? b->n_items : 1) * sizeof *S);
  if (S == NULL)
    return RECD_ENOMEM;
  const model_t *m = sm->m;
  score_items(model_item_factors(m), model_stride(m), b->n_items, model_factors(m), sl->x, S);
  /* first-pass error 0: float BLAS, whose rounding rec_select bounds */
  rc = rec_select(m, sm->pop_scale, q, S, sl->x, 0.0f, sl->used, ws, res);
  free(S);
  return rc;
}

void serve_batch_finish(serve_batch_t *b, size_t r, rec_ws_t *ws) {
  const serve_model_t *sm = b->sm;
  const size_t j = b->row_slot[r];
  const rec_query_t *q = &b->slot[j].q;
  serve_slot_t *sl = &b->slot[j];
  serve_answer_t *a = &b->ans[j];
  int rc = serve__broken(b);
  qsel_t *sel = NULL;
  if (rc == 0 && sm->pass == SERVE_PASS_INT8) {
    sel = &b->sel[r];
    for (unsigned p = 1; p < b->parts && rc == 0; p++)
      rc = qsel_merge(sel, &b->sel[p * b->rows + r]);
    if (rc == 0)
      rc = qsel_compact(sel); /* with one part: the scan's last word */
  }
  if (rc == 0 && q->with_reasons && sl->used > 0) /* given vectors: no reasons */
    rc = serve__refold(sm, q, ws);
  rec_result_t res;
  if (rc == 0) {
    if (sm->pass == SERVE_PASS_FLOAT) {
      /* first-pass error 0: float BLAS, whose rounding rec_select bounds;
       * the first selection as deep as this model's walks have needed */
      ws->walk_read = 0;
      rc = rec_select_depth(sm->m, sm->pop_scale, q, b->S + r * b->n_items, sl->x, 0.0f,
                            sl->used, serve__depth_for(sm, q, 0), ws, &res);
      if (rc == 0)
        serve__depth_learn(sm, q, ws->walk_read, 0);
    } else {
      size_t deeper = 0;
      ws->walk_read = 0;
      if (b->similar)
        rc = rec_similar_candidates(sm->m, q, &sl->rules, sl->item, sel->idx, sel->n, sl->depth,
                                    ws, &res, &deeper);
      else
        rc = rec_select_candidates(sm->m, q, &sl->rules, sl->x, sel->idx, sel->n, sl->depth,
                                   sl->used, ws, &res, &deeper);
      if (rc == 0 && deeper != 0)
        rc = serve__deepen(b, sl, q, deeper, ws, &res);
      if (rc == 0)
        serve__depth_learn(sm, q, ws->walk_read, b->similar);
    }
  }
  if (rc != 0)
    serve__fail(a, rc);
  else
    serve__keep(a, &res);
  /* The row's collectors and filters are freed with the batch, not here:
   * freeing each row's ~20 kB collectors as soon as it is answered, on the
   * worker, let glibc trim the worker's heap and grow it again for the next
   * batch (page faults: 3% of a busy daemon's time, 8-12% fewer RECOMMENDs
   * at 100k items and 50 connections, measured with perf). */
}

/* ---- on one thread --------------------------------------------------- */

int serve_batch_run(serve_batch_t *b, rec_ws_t *ws) {
  for (size_t j = 0; j < b->n; j++)
    serve_batch_fold(b, j, ws);
  if (serve_batch_rows(b) != 0)
    return 0; /* every row already carries the error */
  /* The result needs no check: a failure is remembered and every row's
   * finish reports it. */
  (void)serve_batch_scan(b, 0, 0, b->n_items);
  for (size_t r = 0; r < b->rows; r++)
    serve_batch_finish(b, r, ws);
  return 0;
}

static int serve__one(const serve_model_t *sm, const rec_query_t *q, const uint32_t *item,
                      rec_ws_t *ws, serve_answer_t *out) {
  memset(out, 0, sizeof *out);
  serve_batch_t *b;
  int rc = serve__batch_new(sm, &q, item, 1, 1, &b);
  if (rc != 0) {
    out->rc = rc;
    return rc;
  }
  serve_batch_run(b, ws);
  /* The answer changes hands: the batch no longer frees it. */
  *out = b->ans[0];
  memset(&b->ans[0], 0, sizeof b->ans[0]);
  serve_batch_free(b);
  return out->rc;
}

int serve_one(const serve_model_t *sm, const rec_query_t *q, rec_ws_t *ws, serve_answer_t *out) {
  return serve__one(sm, q, NULL, ws, out);
}

int serve_similar_one(const serve_model_t *sm, uint32_t item, const rec_query_t *q,
                      rec_ws_t *ws, serve_answer_t *out) {
  if (sm->pass == SERVE_PASS_INT8)
    return serve__one(sm, q, &item, ws, out);
  memset(out, 0, sizeof *out);
  rec_result_t res;
  out->rc = rec_similar_q(sm->m, item, q, ws, &res);
  if (out->rc == 0)
    serve__keep(out, &res);
  return out->rc;
}
