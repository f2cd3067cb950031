/* batch.c - see batch.h. */
#include "batch.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "recd/score.h"
#include "server.h"

/* Score buffer of one job at most: 64 MB = 16 customers at 1M items
 * (the float path only: the fused path has no score buffer). */
#define BATCH_MAX_SCORE_BYTES ((size_t)64 << 20)
/* Fewest customers for which one sgemm beats an sgemv each. */
#define BATCH_GEMM_MIN 3
/* Most pieces a split job runs as (one per worker, up to this). */
#define BATCH_MAX_PARTS 8
/* Items per chunk of a scan (a multiple of 8): 1 MB of the int8 copy at
 * k = 64, so a split 1M-item scan has 61 chunks to share out. */
#define BATCH_CHUNK_ITEMS 16384u

struct batcher {
  uv_loop_t *loop;
  uv_idle_t idle;   /* keeps the loop from blocking while a dispatch waits */
  uv_check_t check; /* dispatches after this iteration's I/O callbacks */
  batch_item_t *head, *tail;
  size_t queued;
  unsigned inflight, max_inflight, max_rows;
  uint32_t split_items;
  unsigned handles_open;
  int closing;      /* batcher_close() was called: free when idle */
  qscore_isa_t isa;
  batcher_stats_t st;
};

/* What a job's pieces do; a job is queued to the pool once, as one piece
 * or one per worker, and is answered when all of them are back on the loop. */
enum {
  BATCH_FLOAT, /* one piece: fold-in, BLAS pass, rules (no int8 copy) */
  BATCH_WHOLE, /* one piece: fold-in, fused scan, re-scoring */
  BATCH_SPLIT  /* one piece per worker, sharing the work out (batch__split) */
};

typedef struct batch_job batch_job_t;

typedef struct batch_part {
  uv_work_t work;
  batch_job_t *job;
  unsigned idx;
} batch_part_t;

/* One customer of a fused job. */
typedef struct batch_slot {
  int pers;          /* personalized: scanned and re-scored */
  size_t used;       /* history items folded in */
  float *x;          /* the fold-in (a row of job->X) */
  qquery_t qq;       /* x quantized (xq: a slice of job->XQ) */
  rec_rules_t rules; /* its filters (while pers) */
  float slack;       /* the exact score's own error (rec_score_slack) */
} batch_slot_t;

struct batch_job {
  batcher_t *b;
  batch_item_t *items; /* the list taken from the queue ... */
  batch_item_t **vec;  /* ... and as an array */
  size_t n;
  const served_t *sv;
  unsigned stage, pending, weight, scan_parts;
  batch_part_t part[BATCH_MAX_PARTS];
  /* fused jobs */
  float *X;
  int8_t *XQ;
  batch_slot_t *slot;
  size_t rows;         /* personalized customers ... */
  uint32_t *row_item;  /* ... their item positions ... */
  qquery_t *qq;        /* ... their queries, contiguous for qscan ... */
  qsel_t *sel;         /* ... and collectors: scan_parts x rows */
  int scan_rc[BATCH_MAX_PARTS]; /* a scan part's qscan() result */
  int rows_rc;                  /* batch__make_rows()'s result */
  /* split jobs: the pieces claim work from these counters */
  atomic_uint next_fold;        /* the next customer to fold in */
  atomic_uint folded;           /* customers folded in */
  atomic_int rows_ready;        /* rows and collectors are set up */
  atomic_uint next_chunk;       /* the next chunk of items to scan */
  atomic_uint scanned;          /* pieces done scanning */
};

void batch_item_free(batch_item_t *it) {
  free(it->items);
  free(it->scores);
  free(it->reasons);
  it->items = NULL;
  it->scores = NULL;
  it->reasons = NULL;
}

/* Copies a result out of the (job-local) workspace into the item. */
static void batch__keep(batch_item_t *it, const rec_result_t *res) {
  it->personalized = res->personalized;
  it->n = res->n;
  size_t n = res->n ? res->n : 1;
  it->items = malloc(n * sizeof *it->items);
  it->scores = malloc(n * sizeof *it->scores);
  if (res->reasons != NULL)
    it->reasons = malloc(n * sizeof *it->reasons);
  if (it->items == NULL || it->scores == NULL || (res->reasons && it->reasons == NULL)) {
    batch_item_free(it);
    it->rc = RECD_ENOMEM;
    return;
  }
  if (res->n > 0) {
    memcpy(it->items, res->items, res->n * sizeof *it->items);
    memcpy(it->scores, res->scores, res->n * sizeof *it->scores);
    if (res->reasons)
      memcpy(it->reasons, res->reasons, res->n * sizeof *it->reasons);
  }
}

/* BATCH_FLOAT: the whole job with the float item matrix. */
static void batch__float(batch_job_t *job) {
  const served_t *sv = job->sv;
  const model_t *m = sv->m;
  const uint32_t n_items = model_n_items(m), stride = model_stride(m), k = model_factors(m);
  rec_ws_t ws;
  rec_ws_init(&ws);
  float *X = aligned_alloc(64, ((size_t)job->n * stride * sizeof(float) + 63) & ~(size_t)63);
  float *S = malloc((size_t)job->n * n_items * sizeof *S);
  int *row = malloc(job->n * sizeof *row);
  size_t *used = malloc(job->n * sizeof *used);
  if (X == NULL || S == NULL || row == NULL || used == NULL) {
    for (size_t j = 0; j < job->n; j++)
      job->vec[j]->rc = RECD_ENOMEM;
    goto out;
  }
  /* 1. fold every customer in; personalized ones get a row of X */
  int rows = 0;
  for (size_t j = 0; j < job->n; j++) {
    batch_item_t *it = job->vec[j];
    int pers;
    it->rc = rec_prepare(m, &it->q, &ws, X + (size_t)rows * stride, &pers, &used[j]);
    row[j] = it->rc == 0 && pers ? rows++ : -1;
  }
  /* 2. one pass over the item matrix for all of them. OpenBLAS's sgemm
   * packs (copies) the whole item matrix first, which costs about two
   * sgemv passes: below BATCH_GEMM_MIN rows, sgemv per customer is faster
   * (measured: 1.7 ms vs 5 ms for one customer at 100k items, k = 64). */
  if (rows >= BATCH_GEMM_MIN)
    score_items_batch(model_item_factors(m), stride, n_items, k, X, stride, (uint32_t)rows, S,
                      n_items);
  else
    for (int r = 0; r < rows; r++)
      score_items(model_item_factors(m), stride, n_items, k, X + (size_t)r * stride,
                  S + (size_t)r * n_items);
  /* 3. the rules, per customer */
  for (size_t j = 0; j < job->n; j++) {
    batch_item_t *it = job->vec[j];
    if (it->rc != 0)
      continue;
    const float *scores = row[j] >= 0 ? S + (size_t)row[j] * n_items : NULL;
    const float *x = row[j] >= 0 ? X + (size_t)row[j] * stride : NULL;
    if (it->q.with_reasons && scores != NULL) {
      /* Reasons need this customer's fold-in factor in ws; the batch
       * overwrote it, so fold in again (k^3, small next to the scoring). */
      int pers;
      it->rc = rec_prepare(m, &it->q, &ws, ws.x, &pers, &used[j]);
      if (it->rc != 0)
        continue;
    }
    rec_result_t res;
    it->rc = rec_select(m, sv->pop_scale, &it->q, scores, x, 0.0f, used[j], &ws, &res);
    if (it->rc == 0)
      batch__keep(it, &res);
  }
out:
  free(X);
  free(S);
  free(row);
  free(used);
  rec_ws_free(&ws);
}

/* Fused job memory: everything sized by the batch, allocated on the loop
 * before the first stage. 0 or RECD_ENOMEM. */
static int batch__fused_alloc(batch_job_t *job) {
  const model_t *m = job->sv->m;
  const size_t stride = model_stride(m), qb = qquery_bytes(&job->sv->q), n = job->n;
  job->X = aligned_alloc(64, (n * stride * sizeof(float) + 63) & ~(size_t)63);
  job->XQ = aligned_alloc(64, (n * qb + 63) & ~(size_t)63);
  job->slot = calloc(n, sizeof *job->slot);
  job->row_item = calloc(n, sizeof *job->row_item);
  job->qq = calloc(n, sizeof *job->qq);
  job->sel = calloc(n * job->scan_parts, sizeof *job->sel);
  if (job->X == NULL || job->XQ == NULL || job->slot == NULL || job->row_item == NULL ||
      job->qq == NULL || job->sel == NULL)
    return RECD_ENOMEM;
  for (size_t j = 0; j < n; j++) {
    job->slot[j].x = job->X + j * stride;
    job->slot[j].qq.xq = job->XQ + j * qb;
  }
  return 0;
}

static void batch__fused_free(batch_job_t *job) {
  for (size_t j = 0; job->slot != NULL && j < job->n; j++)
    rec_rules_free(&job->slot[j].rules);
  for (size_t r = 0; job->sel != NULL && r < job->rows * job->scan_parts; r++)
    qsel_free(&job->sel[r]);
  free(job->X);
  free(job->XQ);
  free(job->slot);
  free(job->row_item);
  free(job->qq);
  free(job->sel);
}

/* Fold-in and query set-up of customer j; answers the non-personalized
 * (popularity) ones right away. */
static void batch__fold_one(batch_job_t *job, size_t j, rec_ws_t *ws) {
  const served_t *sv = job->sv;
  const model_t *m = sv->m;
  batch_item_t *it = job->vec[j];
  batch_slot_t *sl = &job->slot[j];
  it->rc = rec_prepare(m, &it->q, ws, sl->x, &sl->pers, &sl->used);
  if (it->rc != 0) {
    sl->pers = 0;
    return;
  }
  rec_result_t res;
  if (!sl->pers || it->q.offset + it->q.count == 0) {
    it->rc = rec_select_q(m, &sv->q, job->b->isa, sv->pop_scale, &it->q,
                          sl->pers ? sl->x : NULL, sl->used, ws, &res);
    sl->pers = 0;
    if (it->rc == 0)
      batch__keep(it, &res);
    return;
  }
  it->rc = rec_rules_init(&sl->rules, m, &it->q, model_meta(m)->score_scale);
  if (it->rc != 0) {
    sl->pers = 0;
    return;
  }
  qquery_prepare(&sv->q, sl->x, &sl->qq); /* its per-item bounds go with the scan */
  sl->slack = rec_score_slack(m, sl->x, &sl->rules.f);
}

/* After the last fold-in (by whichever piece did it): the personalized
 * customers become the contiguous rows qscan wants, each with one
 * collector per scan part. */
static int batch__make_rows(batch_job_t *job) {
  job->rows = 0;
  for (size_t j = 0; j < job->n; j++) {
    batch_slot_t *sl = &job->slot[j];
    if (!sl->pers)
      continue;
    const size_t r = job->rows++;
    job->row_item[r] = (uint32_t)j;
    job->qq[r] = sl->qq;
  }
  for (size_t r = 0; r < job->rows; r++) {
    const batch_item_t *it = job->vec[job->row_item[r]];
    const batch_slot_t *sl = &job->slot[job->row_item[r]];
    for (unsigned p = 0; p < job->scan_parts; p++)
      if (qsel_init(&job->sel[p * job->rows + r], &sl->rules.f, it->q.offset + it->q.count,
                    sl->slack) != 0)
        return RECD_ENOMEM;
  }
  return 0;
}

/* Scan part p: takes chunks of BATCH_CHUNK_ITEMS items from the job's
 * shared counter until none are left, into its own collectors. Fixed
 * halves made one request wait for the slower part: on a busy or
 * virtualised machine the second worker sometimes starts a few
 * milliseconds late (measured: the 90th percentile of the start lag was
 * 2.6 ms on this 2-vCPU VM), and with chunks the first part simply scans
 * more of them. Returns qscan()'s result. */
static int batch__scan_part(batch_job_t *job, unsigned p) {
  const qmat_t *qm = &job->sv->q;
  const uint32_t chunks = (qm->n + BATCH_CHUNK_ITEMS - 1) / BATCH_CHUNK_ITEMS;
  qsel_t *sel = job->sel + (size_t)p * job->rows;
  if (job->rows == 0)
    return 0; /* everyone was answered by the fold (popularity) */
  for (;;) {
    const uint32_t c = atomic_fetch_add(&job->next_chunk, 1);
    if (c >= chunks)
      return 0;
    const uint32_t lo = c * BATCH_CHUNK_ITEMS;
    const uint32_t hi = qm->n - lo > BATCH_CHUNK_ITEMS ? lo + BATCH_CHUNK_ITEMS : qm->n;
    const int rc = qscan(job->b->isa, qm, lo, hi, job->qq, sel, job->rows);
    if (rc != 0)
      return rc;
  }
}

/* Merge of row r's collectors and its exact answer. */
static void batch__finish_one(batch_job_t *job, size_t r, rec_ws_t *ws, float *xtmp) {
  const served_t *sv = job->sv;
  batch_item_t *it = job->vec[job->row_item[r]];
  batch_slot_t *sl = &job->slot[job->row_item[r]];
  qsel_t *sel = &job->sel[r];
  int rc = 0;
  for (unsigned p = 1; p < job->scan_parts && rc == 0; p++)
    rc = qsel_merge(sel, &job->sel[p * job->rows + r]);
  if (rc == 0)
    rc = qsel_compact(sel);
  if (rc == 0 && it->q.with_reasons) {
    /* Reasons need this customer's fold-in factor in ws: fold in again
     * (deterministic: xtmp gets the same x). */
    int pers;
    size_t used;
    rc = rec_prepare(sv->m, &it->q, ws, xtmp, &pers, &used);
  }
  rec_result_t res;
  if (rc == 0)
    rc = rec_select_candidates(sv->m, &it->q, &sl->rules, sl->x, sel->idx, sel->n, sl->used,
                               ws, &res);
  it->rc = rc;
  if (rc == 0)
    batch__keep(it, &res);
}

/* Merge + exact answer of every row, unless a scan part failed. */
static void batch__finish_all(batch_job_t *job, rec_ws_t *ws) {
  float *xtmp = malloc(model_stride(job->sv->m) * sizeof *xtmp);
  int failed = xtmp == NULL || job->rows_rc != 0;
  for (unsigned q = 0; q < job->scan_parts; q++)
    failed |= job->scan_rc[q] != 0;
  for (size_t r = 0; r < job->rows; r++) {
    batch_item_t *it = job->vec[job->row_item[r]];
    if (failed)
      it->rc = RECD_ENOMEM;
    else if (it->rc == 0)
      batch__finish_one(job, r, ws, xtmp);
  }
  free(xtmp);
}

static inline void batch__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* One piece of a split job. Every piece is queued at once and the work is
 * claimed from the job's counters, so a job costs one trip to the pool and
 * back instead of one per phase (on a 2-vCPU VM each wake-up of an idle
 * thread cost 0.1-0.3 ms, several of them per request):
 *  1. fold-ins, customers claimed one by one; the piece that completes the
 *     last one sets up the rows; the others wait for that (at most one
 *     fold-in, ~0.05-0.35 ms; spinning, as the job owns every worker);
 *  2. the scan, chunks claimed from the shared counter, into the piece's
 *     own collectors;
 *  3. the last piece out of the scan merges and answers every row.
 * A piece that starts late (the pool busy with a reload) finds the work
 * taken and only takes part in the count. */
static void batch__split(batch_job_t *job, unsigned p, rec_ws_t *ws) {
  const unsigned n = (unsigned)job->n;
  for (;;) {
    const unsigned j = atomic_fetch_add(&job->next_fold, 1);
    if (j >= n)
      break;
    batch__fold_one(job, j, ws);
    if (atomic_fetch_add(&job->folded, 1) + 1 == n) {
      job->rows_rc = batch__make_rows(job);
      atomic_store(&job->rows_ready, 1);
    }
  }
  while (!atomic_load(&job->rows_ready))
    batch__cpu_relax();
  if (job->rows_rc == 0)
    job->scan_rc[p] = batch__scan_part(job, p);
  if (atomic_fetch_add(&job->scanned, 1) + 1 == job->scan_parts)
    batch__finish_all(job, ws);
}

/* On a pool thread: touches only its share of the job and the (read-only)
 * model. */
static void batch__work(uv_work_t *w) {
  batch_part_t *part = w->data;
  batch_job_t *job = part->job;
  rec_ws_t ws;
  rec_ws_init(&ws);
  switch (job->stage) {
  case BATCH_FLOAT:
    batch__float(job);
    break;
  case BATCH_WHOLE:
    for (size_t j = 0; j < job->n; j++)
      batch__fold_one(job, j, &ws);
    job->rows_rc = batch__make_rows(job);
    if (job->rows_rc == 0)
      job->scan_rc[0] = batch__scan_part(job, 0);
    batch__finish_all(job, &ws);
    break;
  case BATCH_SPLIT:
    batch__split(job, part->idx, &ws);
    break;
  }
  rec_ws_free(&ws);
}

static void batch__dispatch(batcher_t *b);
static void batch__after(uv_work_t *w, int status);
static void batch__maybe_free(batcher_t *b);

/* Queues the job's pieces. 0, or -1 when one could not be queued (then the
 * items are failed and pending counts only the pieces that were). */
static int batch__run(batch_job_t *job, unsigned nparts) {
  job->pending = nparts;
  for (unsigned p = 0; p < nparts; p++) {
    job->part[p].job = job;
    job->part[p].idx = p;
    job->part[p].work.data = &job->part[p];
    if (uv_queue_work(job->b->loop, &job->part[p].work, batch__work, batch__after) != 0) {
      /* Cannot happen with a valid loop and callbacks; the pieces already
       * queued complete normally, the rest count as done (and failed). */
      job->pending -= nparts - p;
      for (size_t j = 0; j < job->n; j++)
        job->vec[j]->rc = RECD_EINVAL;
      return -1;
    }
  }
  return 0;
}

/* The job's items are answered (or failed): hand them back. */
static void batch__complete(batch_job_t *job) {
  batcher_t *b = job->b;
  b->inflight -= job->weight;
  for (batch_item_t *it = job->items, *next; it; it = next) {
    next = it->next;
    it->next = NULL;
    it->done(it);
  }
  batch__fused_free(job);
  free(job->vec);
  free(job);
  /* Everything that queued up while the workers were busy goes now, as
   * one batch: this is where batches grow under load. */
  batch__dispatch(b);
  batch__maybe_free(b);
}

/* Loop thread: the job is answered once all its pieces are back. */
static void batch__after(uv_work_t *w, int status) {
  batch_part_t *part = w->data;
  batch_job_t *job = part->job;
  if (status != 0)
    for (size_t j = 0; j < job->n; j++)
      if (job->vec[j]->rc == 0)
        job->vec[j]->rc = RECD_EINVAL;
  if (--job->pending == 0)
    batch__complete(job);
}

/* Starts jobs while workers are free: each takes, from the head of the
 * queue, up to max_rows items answered with the same model. A job whose
 * scan is split takes every worker, so it starts only when all are free. */
static void batch__dispatch(batcher_t *b) {
  while (b->head != NULL && b->inflight < b->max_inflight) {
    const served_t *sv = b->head->model;
    const int fused = sv->have_q && b->isa != QSCORE_SCALAR;
    const unsigned split =
        fused && model_n_items(sv->m) >= b->split_items && b->max_inflight > 1
            ? (b->max_inflight < BATCH_MAX_PARTS ? b->max_inflight : BATCH_MAX_PARTS)
            : 1;
    if (split > 1 && b->inflight > 0)
      return; /* the next completion dispatches it */
    size_t cap = b->max_rows;
    if (!fused) {
      size_t fit = BATCH_MAX_SCORE_BYTES / ((size_t)model_n_items(sv->m) * sizeof(float));
      cap = fit < cap ? fit : cap;
    }
    if (cap < 1)
      cap = 1;
    batch_job_t *job = calloc(1, sizeof *job);
    batch_item_t **vec = malloc(cap * sizeof *vec);
    if (job == NULL || vec == NULL) {
      free(job);
      free(vec);
      return; /* retried at the next completion or submission */
    }
    job->b = b;
    job->sv = sv;
    job->vec = vec;
    atomic_init(&job->next_fold, 0);
    atomic_init(&job->folded, 0);
    atomic_init(&job->rows_ready, 0);
    atomic_init(&job->next_chunk, 0);
    atomic_init(&job->scanned, 0);
    job->scan_parts = split;
    job->weight = split > 1 ? b->max_inflight : 1;
    batch_item_t **tail = &job->items;
    while (b->head != NULL && b->head->model == sv && job->n < cap) {
      batch_item_t *it = b->head;
      b->head = it->next;
      it->next = NULL;
      *tail = it;
      tail = &it->next;
      job->vec[job->n++] = it;
      b->queued--;
    }
    if (b->head == NULL)
      b->tail = NULL;
    b->inflight += job->weight;
    b->st.jobs++;
    b->st.rows += job->n;
    if (job->n > b->st.max_rows_seen)
      b->st.max_rows_seen = job->n;
    if (split > 1)
      b->st.split_jobs++;
    if (fused && batch__fused_alloc(job) != 0) {
      for (size_t j = 0; j < job->n; j++)
        job->vec[j]->rc = RECD_ENOMEM;
      batch__complete(job);
      return;
    }
    job->stage = !fused ? BATCH_FLOAT : split > 1 ? BATCH_SPLIT : BATCH_WHOLE;
    const unsigned np = job->stage == BATCH_SPLIT ? split : 1;
    if (batch__run(job, np) != 0 && job->pending == 0) {
      batch__complete(job);
      return;
    }
  }
}

static void batch__on_idle(uv_idle_t *h) {
  (void)h; /* exists only so that the loop does not block in poll */
}

static void batch__on_check(uv_check_t *h) {
  batcher_t *b = h->data;
  uv_idle_stop(&b->idle);
  uv_check_stop(&b->check);
  batch__dispatch(b);
}

int batcher_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_rows, uint32_t split_items,
                batcher_t **out) {
  batcher_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return RECD_ENOMEM;
  b->loop = loop;
  b->max_inflight = max_inflight ? max_inflight : 1;
  b->max_rows = max_rows ? max_rows : 1;
  b->isa = qscore_isa_default();
  b->split_items = split_items;
  uv_idle_init(loop, &b->idle);
  uv_check_init(loop, &b->check);
  b->idle.data = b->check.data = b;
  b->handles_open = 2;
  *out = b;
  return 0;
}

void batcher_submit(batcher_t *b, batch_item_t *it) {
  it->next = NULL;
  it->rc = 0;
  if (b->tail)
    b->tail->next = it;
  else
    b->head = it;
  b->tail = it;
  b->queued++;
  /* Closing (a request of a client gone at shutdown, answered late): no
   * handles any more; queue it to the pool now, or the next completion
   * does. Either way done() fires later, from the pool's callback. */
  if (b->closing) {
    batch__dispatch(b);
    return;
  }
  /* A free worker: dispatch at the end of this iteration, together with
   * whatever else this iteration's callbacks make ready. A busy pool: the
   * next completion dispatches. */
  if (b->inflight < b->max_inflight && !uv_is_active((uv_handle_t *)&b->check)) {
    uv_idle_start(&b->idle, batch__on_idle);
    uv_check_start(&b->check, batch__on_check);
  }
}

/* A closed batcher goes once its handles are closed and no job is queued
 * or running: pool threads read it until their job is back. */
static void batch__maybe_free(batcher_t *b) {
  if (b->closing && b->handles_open == 0 && b->inflight == 0 && b->head == NULL)
    free(b);
}

static void batch__closed(uv_handle_t *h) {
  batcher_t *b = h->data;
  b->handles_open--;
  batch__maybe_free(b);
}

void batcher_close(batcher_t *b) {
  b->closing = 1;
  uv_close((uv_handle_t *)&b->idle, batch__closed);
  uv_close((uv_handle_t *)&b->check, batch__closed);
}

void batcher_get_stats(const batcher_t *b, batcher_stats_t *out) {
  *out = b->st;
}
