/* batch.c - see batch.h. */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "recd/score.h"
#include "server.h"

/* Score buffer of one job at most: 64 MB = 16 customers at 1M items. */
#define BATCH_MAX_SCORE_BYTES ((size_t)64 << 20)
/* Fewest customers for which one sgemm beats an sgemv each. */
#define BATCH_GEMM_MIN 3
/* With an int8 copy of the items (large catalogues), one int8 pass per
 * customer reads a quarter of a float pass; one sgemm reads the float
 * matrix about three times (packing): int8 wins below this many rows. */
#define BATCH_Q_MAX_ROWS 12

struct batcher {
  uv_loop_t *loop;
  uv_idle_t idle;   /* keeps the loop from blocking while a dispatch waits */
  uv_check_t check; /* dispatches after this iteration's I/O callbacks */
  batch_item_t *head, *tail;
  size_t queued;
  unsigned inflight, max_inflight, max_rows;
  unsigned handles_open;
  batcher_stats_t st;
};

typedef struct batch_job {
  uv_work_t work;
  batcher_t *b;
  batch_item_t *items; /* the list taken from the queue */
  size_t n;
} batch_job_t;

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

/* On a pool thread: touches only the job's items and their (read-only)
 * model. */
static void batch__work(uv_work_t *w) {
  batch_job_t *job = w->data;
  const served_t *sv = job->items->model;
  const model_t *m = sv->m;
  const uint32_t n_items = model_n_items(m), stride = model_stride(m), k = model_factors(m);
  rec_ws_t ws;
  rec_ws_init(&ws);
  float *X = aligned_alloc(64, ((size_t)job->n * stride * sizeof(float) + 63) & ~(size_t)63);
  float *S = malloc((size_t)job->n * n_items * sizeof *S);
  int *row = malloc(job->n * sizeof *row);
  size_t *used = malloc(job->n * sizeof *used);
  float *err = calloc(job->n, sizeof *err);
  int8_t *qx = sv->have_q ? malloc(qquery_bytes(&sv->q)) : NULL;
  if (X == NULL || S == NULL || row == NULL || used == NULL || err == NULL ||
      (sv->have_q && qx == NULL)) {
    for (batch_item_t *it = job->items; it; it = it->next)
      it->rc = RECD_ENOMEM;
    goto out;
  }
  /* 1. fold every customer in; personalized ones get a row of X */
  int rows = 0;
  size_t j = 0;
  for (batch_item_t *it = job->items; it; it = it->next, j++) {
    int pers;
    it->rc = rec_prepare(m, &it->q, &ws, X + (size_t)rows * stride, &pers, &used[j]);
    row[j] = it->rc == 0 && pers ? rows++ : -1;
  }
  /* 2. one pass over the item matrix for all of them. OpenBLAS's sgemm
   * packs (copies) the whole item matrix first, which costs about two
   * sgemv passes: below BATCH_GEMM_MIN rows, sgemv per customer is faster
   * (measured: 1.7 ms vs 5 ms for one customer at 100k items, k = 64). */
  if (sv->have_q && rows < BATCH_Q_MAX_ROWS)
    for (int r = 0; r < rows; r++)
      err[r] = qscore_items(&sv->q, X + (size_t)r * stride, S + (size_t)r * n_items, qx);
  else if (rows >= BATCH_GEMM_MIN)
    score_items_batch(model_item_factors(m), stride, n_items, k, X, stride, (uint32_t)rows, S,
                      n_items);
  else
    for (int r = 0; r < rows; r++)
      score_items(model_item_factors(m), stride, n_items, k, X + (size_t)r * stride,
                  S + (size_t)r * n_items);
  /* 3. the rules, per customer */
  j = 0;
  for (batch_item_t *it = job->items; it; it = it->next, j++) {
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
    it->rc = rec_select(m, sv->pop_scale, &it->q, scores, x, row[j] >= 0 ? err[row[j]] : 0.0f,
                        used[j], &ws, &res);
    if (it->rc == 0)
      batch__keep(it, &res);
  }
out:
  free(X);
  free(S);
  free(row);
  free(used);
  free(err);
  free(qx);
  rec_ws_free(&ws);
}

static void batch__dispatch(batcher_t *b);

static void batch__after(uv_work_t *w, int status) {
  batch_job_t *job = w->data;
  batcher_t *b = job->b;
  b->inflight--;
  for (batch_item_t *it = job->items, *next; it; it = next) {
    next = it->next;
    it->next = NULL;
    if (status != 0 && it->rc == 0)
      it->rc = RECD_EINVAL;
    it->done(it);
  }
  free(job);
  /* Everything that queued up while the workers were busy goes now, as
   * one batch: this is where batches grow under load. */
  batch__dispatch(b);
}

/* Starts jobs while workers are free: each takes, from the head of the
 * queue, up to max_rows items answered with the same model. */
static void batch__dispatch(batcher_t *b) {
  while (b->head != NULL && b->inflight < b->max_inflight) {
    const served_t *sv = b->head->model;
    size_t cap = BATCH_MAX_SCORE_BYTES / ((size_t)model_n_items(sv->m) * sizeof(float));
    if (cap > b->max_rows)
      cap = b->max_rows;
    if (cap < 1)
      cap = 1;
    batch_job_t *job = calloc(1, sizeof *job);
    if (job == NULL)
      return; /* retried at the next completion or submission */
    job->b = b;
    job->work.data = job;
    batch_item_t **tail = &job->items;
    while (b->head != NULL && b->head->model == sv && job->n < cap) {
      batch_item_t *it = b->head;
      b->head = it->next;
      it->next = NULL;
      *tail = it;
      tail = &it->next;
      job->n++;
      b->queued--;
    }
    if (b->head == NULL)
      b->tail = NULL;
    if (uv_queue_work(b->loop, &job->work, batch__work, batch__after) != 0) {
      /* Cannot happen with a valid loop and callbacks; fail the items
       * rather than lose them. */
      for (batch_item_t *it = job->items, *next; it; it = next) {
        next = it->next;
        it->next = NULL;
        it->rc = RECD_EINVAL;
        it->done(it);
      }
      free(job);
      continue;
    }
    b->inflight++;
    b->st.jobs++;
    b->st.rows += job->n;
    if (job->n > b->st.max_rows_seen)
      b->st.max_rows_seen = job->n;
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

int batcher_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_rows, batcher_t **out) {
  batcher_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return RECD_ENOMEM;
  b->loop = loop;
  b->max_inflight = max_inflight ? max_inflight : 1;
  b->max_rows = max_rows ? max_rows : 1;
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
  /* A free worker: dispatch at the end of this iteration, together with
   * whatever else this iteration's callbacks make ready. A busy pool: the
   * next completion dispatches. */
  if (b->inflight < b->max_inflight && !uv_is_active((uv_handle_t *)&b->check)) {
    uv_idle_start(&b->idle, batch__on_idle);
    uv_check_start(&b->check, batch__on_check);
  }
}

static void batch__closed(uv_handle_t *h) {
  batcher_t *b = h->data;
  if (--b->handles_open == 0)
    free(b);
}

void batcher_close(batcher_t *b) {
  uv_close((uv_handle_t *)&b->idle, batch__closed);
  uv_close((uv_handle_t *)&b->check, batch__closed);
}

void batcher_get_stats(const batcher_t *b, batcher_stats_t *out) {
  *out = b->st;
}
