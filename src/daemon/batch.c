/* batch.c - see batch.h. */
#include "batch.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Items per chunk of a split scan (multiples of SERVE_SCAN_ALIGN): about
 * a 32nd of the catalogue, between these bounds. At most 1 MB of the int8
 * copy at k = 64, so a split 1M-item scan has 61 chunks to share out; at
 * 100k items 25 chunks of 4096, not 7 of 16384: the last chunk, which one
 * piece scans alone while the other has nothing left to claim, is that
 * much shorter (100k items, 50 connections: 2% more RECOMMENDs/s than
 * 16384, median of six alternating rounds, within the noise). Not
 * smaller: the loop thread polls its epoll descriptor once per chunk when
 * it helps, and each chunk is a round of the shared bar. */
#define BATCH_CHUNK_MIN 4096u
#define BATCH_CHUNK_MAX 16384u

/* The chunks of a scan of n items, and (size) their items each. */
static uint32_t batch__chunks(uint32_t n, uint32_t *size) {
  uint32_t c = (n / 32 + SERVE_SCAN_ALIGN - 1) / SERVE_SCAN_ALIGN * SERVE_SCAN_ALIGN;
  *size = c < BATCH_CHUNK_MIN ? BATCH_CHUNK_MIN : c > BATCH_CHUNK_MAX ? BATCH_CHUNK_MAX : c;
  return (n + *size - 1) / *size;
}

/* The loop thread helps split jobs of at most this many customers
 * (batch__help). A batch grows only under load, and then the workers are
 * awake and the loop has network work. (Helping batches of ~20 at 1M items
 * and 50 connections first measured 3-5% fewer RECOMMENDs/s, but that
 * turned out to be the order of the runs, bench/README.md; the limit is
 * kept because there is nothing to gain there.) */
#define BATCH_HELP_MAX_ROWS 2u

struct batcher {
  uv_loop_t *loop;
  uv_idle_t idle;   /* keeps the loop from blocking while a dispatch waits */
  uv_check_t check; /* dispatches after this iteration's I/O callbacks */
  uv_idle_t rejoin_idle;   /* the same for the loop thread's return ... */
  uv_check_t rejoin_check; /* ... to the split job it left (batch__help) */
  struct batch_job *rejoin; /* that job, or NULL */
  batch_item_t *head, *tail;
  size_t queued;
  unsigned inflight, max_inflight, max_rows;
  uint32_t split_items;
  uint64_t help_ns; /* batch__help's budget; 0: the loop never helps */
  unsigned handles_open;
  int closing;      /* batcher_close() was called: free when idle */
  batcher_stats_t st;
};

typedef struct batch_job batch_job_t;

typedef struct batch_part {
  uv_work_t work;
  batch_job_t *job;
  unsigned idx;
} batch_part_t;

struct batch_job {
  batcher_t *b;
  batch_item_t **vec;       /* the items taken from the queue */
  const rec_query_t **qv;   /* and their queries */
  uint32_t *sim;            /* SIMILAR jobs: the query items */
  size_t n;
  serve_batch_t *sb;
  unsigned parts;           /* pieces queued on the pool at dispatch */
  unsigned helper;          /* 1: the loop thread is piece `parts` too */
  unsigned slots;           /* parts + helper: the pieces that count out;
                               more than one: the work is shared out */
  uint64_t help_t0;         /* when the loop thread began to help */
  int away;                 /* the loop thread left for network work and
                               comes back (counted in pending meanwhile) */
  int helped;               /* it scanned a chunk (INFO) */
  unsigned pending;
  int failed;               /* RECD_E*: answer every item with it */
  batch_part_t part[SERVE_MAX_PARTS];
  /* split jobs: the pieces claim work from these counters */
  atomic_uint next_fold;    /* the next customer to fold in */
  atomic_uint folded;       /* customers folded in */
  atomic_int rows_ready;    /* serve_batch_rows() is done */
  atomic_uint next_chunk;   /* the next chunk of items to scan */
  atomic_uint scanned;      /* pieces done scanning */
};

static inline void batch__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/* The loop thread's piece stops when the loop has anything else to do
 * (its epoll descriptor is readable: a client's bytes, a Redis reply, a
 * piece coming back), or when its budget (`scan-loop-help-us`) is spent:
 * when there is network work, every request's would wait behind the
 * helper; one poll() per chunk costs about a microsecond against ~40 us
 * of scanning. Pool pieces (helping 0) never stop early. */
static int batch__leave(batch_job_t *job, int helping, uint64_t t0) {
  if (!helping)
    return 0;
  if (uv_hrtime() - t0 >= job->b->help_ns)
    return 1;
  struct pollfd pfd = {.fd = uv_backend_fd(job->b->loop), .events = POLLIN};
  return pfd.fd >= 0 && poll(&pfd, 1, 0) != 0;
}

/* Scan part p: takes chunks (batch__chunks) from the job's
 * shared counter until none are left, or, for the loop thread's piece,
 * until batch__leave() says so (checked before each chunk). Fixed halves made
 * one request wait for the slower part: on a busy or virtualised machine
 * the second worker sometimes starts a few milliseconds late (measured:
 * the 90th percentile of the start lag was 2.6 ms on this 2-vCPU VM), and
 * with chunks the first part simply scans more of them. Returns the
 * chunks it scanned. */
static uint32_t batch__scan_part(batch_job_t *job, unsigned p, int helping, uint64_t t0) {
  const uint32_t n = serve_batch_n_items(job->sb);
  uint32_t size;
  const uint32_t chunks = batch__chunks(n, &size);
  uint32_t mine = 0;
  if (serve_batch_n_rows(job->sb) == 0)
    return 0; /* everyone was answered by the fold (popularity) */
  for (;;) {
    if (batch__leave(job, helping, t0))
      return mine;
    const uint32_t c = atomic_fetch_add(&job->next_chunk, 1);
    if (c >= chunks)
      return mine;
    const uint32_t lo = c * size;
    const uint32_t hi = n - lo > size ? lo + size : n;
    mine++;
    if (serve_batch_scan(job->sb, p, lo, hi) != 0)
      return mine; /* remembered by the batch: every row fails */
  }
}

/* Work of a split job nobody has claimed yet: customers to fold in, or
 * the scan not begun (the rows are not ready), or chunks left. */
static int batch__unclaimed(batch_job_t *job) {
  if (atomic_load(&job->next_fold) < job->n || !atomic_load(&job->rows_ready))
    return 1;
  uint32_t size;
  return serve_batch_n_rows(job->sb) > 0 &&
         atomic_load(&job->next_chunk) < batch__chunks(serve_batch_n_items(job->sb), &size);
}

/* One piece of a split job. Every piece is queued at once and the work is
 * claimed from the job's counters, so a job costs one trip to the pool and
 * back instead of one per phase (on a 2-vCPU VM each wake-up of an idle
 * thread cost 0.1-0.3 ms, several of them per request):
 *  1. fold-ins, customers claimed one by one; the piece that completes the
 *     last one runs phase 2; the others wait for that (at most one
 *     fold-in, ~0.05-0.35 ms; spinning, as the job owns every worker);
 *  3. the scan, chunks claimed from the shared counter;
 *  4. the last piece out of the scan finishes every row.
 * A piece that starts late (the pool busy with a reload) finds the work
 * taken and only takes part in the count. The loop thread's piece
 * (batch__help, helping 1) leaves early, at any point, once
 * batch__leave() says so.
 * Returns the chunks this piece scanned. */
static uint32_t batch__split(batch_job_t *job, unsigned p, rec_ws_t *ws, int helping,
                             uint64_t t0, int *relieve) {
  const unsigned n = (unsigned)job->n;
  uint32_t chunks = 0;
  *relieve = 0;
  for (;;) {
    if (batch__leave(job, helping, t0))
      goto out;
    const unsigned j = atomic_fetch_add(&job->next_fold, 1);
    if (j >= n)
      break;
    serve_batch_fold(job->sb, j, ws);
    if (atomic_fetch_add(&job->folded, 1) + 1 == n) {
      serve_batch_rows(job->sb); /* a failure fails every row in phase 4 */
      atomic_store(&job->rows_ready, 1);
    }
  }
  while (!atomic_load(&job->rows_ready)) {
    if (batch__leave(job, helping, t0))
      goto out;
    batch__cpu_relax();
  }
  chunks = batch__scan_part(job, p, helping, t0);
out:
  /* A helper that left with work still unclaimed keeps its place open:
   * it comes back, or a pool piece counts for it (batch__help); the pool
   * pieces already running would finish the job, but with one thread
   * fewer. */
  if (helping && batch__unclaimed(job)) {
    *relieve = 1;
    return chunks;
  }
  /* Every piece counts here exactly once. A helper that left before the
   * rows were ready is never the last: the pool's pieces count only after
   * them. */
  if (atomic_fetch_add(&job->scanned, 1) + 1 == job->slots)
    for (size_t r = 0; r < serve_batch_n_rows(job->sb); r++)
      serve_batch_finish(job->sb, r, ws);
  return chunks;
}

/* On a pool thread: touches only its share of the job. */
static void batch__work(uv_work_t *w) {
  batch_part_t *part = w->data;
  batch_job_t *job = part->job;
  rec_ws_t ws;
  rec_ws_init(&ws);
  if (job->slots == 1) { /* not split: one piece runs the whole job */
    serve_batch_run(job->sb, &ws);
  } else {
    int relieve;
    (void)batch__split(job, part->idx, &ws, 0, 0, &relieve);
  }
  rec_ws_free(&ws);
}

static void batch__dispatch(batcher_t *b);
static void batch__after(uv_work_t *w, int status);
static void batch__maybe_free(batcher_t *b);
static void batch__on_rejoin(uv_check_t *h);

static void batch__on_idle(uv_idle_t *h) {
  (void)h; /* exists only so that the loop does not block in poll */
}

/* The job's items are answered (or failed): hand them back. */
static void batch__complete(batch_job_t *job) {
  batcher_t *b = job->b;
  b->inflight--;
  for (size_t j = 0; j < job->n; j++) {
    const serve_answer_t failed = {.rc = job->failed};
    const serve_answer_t *a = job->failed ? &failed : serve_batch_answer(job->sb, j);
    job->vec[j]->next = NULL;
    job->vec[j]->done(job->vec[j], a);
  }
  serve_batch_free(job->sb);
  free(job->vec);
  free(job->qv);
  free(job->sim);
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
  if (status != 0 && job->failed == 0)
    job->failed = RECD_EINVAL; /* cancelled: cannot happen, the loop runs on */
  if (--job->pending == 0)
    batch__complete(job);
}

/* The loop thread's piece has counted out (batch__split): if it had left
 * and come back, its hold on the job goes, and it may be the last. */
static void batch__helper_out(batch_job_t *job) {
  if (job->away) {
    job->away = 0;
    if (--job->pending == 0)
      batch__complete(job);
  }
}

/* Queues piece p of the job on the pool: 0, or RECD_EINVAL (cannot
 * happen with a valid loop and callbacks). */
static int batch__queue(batch_job_t *job, unsigned p) {
  job->part[p].job = job;
  job->part[p].idx = p;
  job->part[p].work.data = &job->part[p];
  return uv_queue_work(job->b->loop, &job->part[p].work, batch__work, batch__after) == 0
             ? 0
             : RECD_EINVAL;
}

/* Queues the job's pieces. On a failure the pieces already queued
 * complete normally and the job fails; returns the pieces queued. */
static unsigned batch__run(batch_job_t *job) {
  for (unsigned p = 0; p < job->parts; p++)
    if (batch__queue(job, p) != 0) {
      job->failed = RECD_EINVAL;
      return p;
    }
  return job->parts;
}

/* The loop thread is one of the split job's pieces: the job it has just
 * queued has a piece on every worker but one, and the loop thread scans
 * in the last one's place. Why: it does so only for a job dispatched when
 * no other runs, so every worker is idle, and on a VM an idle vCPU is
 * halted; waking a second pool thread took about 1 ms on average on the
 * 2-vCPU VM (the first 22 us), and once woken it competed for a vCPU with
 * the loop thread, which is awake and would otherwise only wait in epoll.
 * Bounded (batch__leave), so the network is never left waiting for more
 * than a chunk: when the loop has network work the loop thread leaves with
 * its slot open and comes back after that iteration's I/O callbacks
 * (batch__on_rejoin: at 1M items and 2 connections each request's bytes
 * and Redis reply made it leave, and a worker woken to take its place
 * started a millisecond later); once its budget is spent (or at shutdown)
 * a pool piece takes its slot (`parts`) instead. */
static void batch__help(batch_job_t *job) {
  batcher_t *b = job->b;
  rec_ws_t ws;
  rec_ws_init(&ws);
  int relieve;
  const uint32_t chunks = batch__split(job, job->parts, &ws, 1, job->help_t0, &relieve);
  b->st.helped_chunks += chunks;
  if (chunks > 0 && !job->helped) {
    job->helped = 1;
    b->st.helped_jobs++;
  }
  if (relieve && !b->closing && uv_hrtime() - job->help_t0 < b->help_ns) {
    if (!job->away) {
      job->away = 1;
      job->pending++; /* the loop thread's slot, until it counts out */
    }
    b->rejoin = job;
    uv_idle_start(&b->rejoin_idle, batch__on_idle);
    uv_check_start(&b->rejoin_check, batch__on_rejoin);
  } else if (relieve) {
    if (batch__queue(job, job->parts) == 0) {
      if (!job->away)
        job->pending++; /* (an away slot's count passes to the piece) */
      job->away = 0;
      b->st.relieved_jobs++;
    } else { /* no pool piece: the rest is the loop thread's after all */
      b->st.helped_chunks += batch__split(job, job->parts, &ws, 0, 0, &relieve);
      batch__helper_out(job);
    }
  } else {
    batch__helper_out(job);
  }
  rec_ws_free(&ws);
}

/* The next job from the head of the queue: up to the batch capacity of
 * items answered with the same model, all RECOMMENDs or all SIMILARs. NULL
 * when out of memory (the items stay queued). */
static batch_job_t *batch__take(batcher_t *b, unsigned slots, unsigned helper) {
  const serve_model_t *sm = b->head->model;
  const int similar = b->head->similar;
  const size_t cap = serve_batch_capacity(sm, b->max_rows);
  batch_job_t *job = calloc(1, sizeof *job);
  batch_item_t **vec = malloc(cap * sizeof *vec);
  const rec_query_t **qv = malloc(cap * sizeof *qv);
  uint32_t *sim = similar ? malloc(cap * sizeof *sim) : NULL;
  if (job == NULL || vec == NULL || qv == NULL || (similar && sim == NULL)) {
    free(job);
    free(vec);
    free(qv);
    free(sim);
    return NULL;
  }
  job->b = b;
  job->vec = vec;
  job->qv = qv;
  job->sim = sim;
  job->slots = slots;
  /* Every queued item of the head's model and kind, in order (the others
   * keep theirs, the first of them now at the head): a storefront's mix of
   * RECOMMEND and SIMILAR, or of variants, still makes full batches. */
  batch_item_t **link = &b->head, *last = NULL;
  while (*link != NULL && job->n < cap) {
    batch_item_t *it = *link;
    if (it->model != sm || it->similar != similar) {
      last = it;
      link = &it->next;
      continue;
    }
    *link = it->next;
    if (similar)
      job->sim[job->n] = it->item;
    job->vec[job->n] = it;
    job->qv[job->n++] = it->q;
    b->queued--;
  }
  if (*link == NULL)
    b->tail = last;
  job->helper = helper && job->n <= BATCH_HELP_MAX_ROWS;
  job->parts = slots - job->helper;
  atomic_init(&job->next_fold, 0);
  atomic_init(&job->folded, 0);
  atomic_init(&job->rows_ready, 0);
  atomic_init(&job->next_chunk, 0);
  atomic_init(&job->scanned, 0);
  job->failed = similar ? serve_batch_new_similar(sm, job->qv, job->sim, job->n, slots, &job->sb)
                        : serve_batch_new(sm, job->qv, job->n, slots, &job->sb);
  return job;
}

/* Starts jobs while fewer than max_inflight are running. A split job has
 * a piece on every worker, and it may start while another job runs: its
 * pieces queue behind that job's, and each worker that runs out of the
 * first job's chunks goes on to the second's. (Waiting until every worker
 * was free left one worker the only runnable thread 13% of the time at
 * 100k items and 50 connections, with the last chunks and rows of a big
 * job while the other had nothing to do; overlapping: 9-10%, and 7,441
 * against 7,020 RECOMMENDs/s, medians of six alternating rounds,
 * bench/README.md.) */
static void batch__dispatch(batcher_t *b) {
  while (b->head != NULL && b->inflight < b->max_inflight) {
    const serve_model_t *sm = b->head->model;
    unsigned slots = 1; /* pieces: one per worker */
    if (sm->pass == SERVE_PASS_INT8 && model_n_items(sm->m) >= b->split_items &&
        b->max_inflight > 1)
      slots = b->max_inflight < SERVE_MAX_PARTS ? b->max_inflight : SERVE_MAX_PARTS;
    /* the loop thread takes a split job's last piece (batch__help) when
     * the job is the only one (the workers are idle, so their vCPUs may be
     * halted), except at shutdown (dispatched from the pool's callbacks,
     * nothing left to wait for) */
    const unsigned helper = slots > 1 && !b->closing && b->help_ns > 0 && b->inflight == 0;
    batch_job_t *job = batch__take(b, slots, helper);
    if (job == NULL)
      return; /* retried at the next completion or submission */
    b->inflight++;
    b->st.jobs++;
    b->st.rows += job->n;
    if (job->n > b->st.max_rows_seen)
      b->st.max_rows_seen = job->n;
    if (slots > 1)
      b->st.split_jobs++;
    if (job->failed != 0) {
      batch__complete(job);
      return;
    }
    job->pending = batch__run(job);
    if (job->pending == 0) {
      batch__complete(job);
      return;
    }
    if (job->helper && job->failed == 0) {
      job->help_t0 = uv_hrtime();
      batch__help(job);
    }
  }
}


/* The loop thread returns to the split job it left for network work. */
static void batch__on_rejoin(uv_check_t *h) {
  batcher_t *b = h->data;
  uv_idle_stop(&b->rejoin_idle);
  uv_check_stop(&b->rejoin_check);
  batch_job_t *job = b->rejoin;
  b->rejoin = NULL;
  if (job != NULL)
    batch__help(job);
}

static void batch__on_check(uv_check_t *h) {
  batcher_t *b = h->data;
  uv_idle_stop(&b->idle);
  uv_check_stop(&b->check);
  batch__dispatch(b);
}

int batcher_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_rows, uint32_t split_items,
                uint64_t help_ns, batcher_t **out) {
  batcher_t *b = calloc(1, sizeof *b);
  if (b == NULL)
    return RECD_ENOMEM;
  b->loop = loop;
  b->max_inflight = max_inflight ? max_inflight : 1;
  b->max_rows = max_rows ? max_rows : 1;
  b->split_items = split_items;
  b->help_ns = help_ns;
  uv_idle_init(loop, &b->idle);
  uv_check_init(loop, &b->check);
  uv_idle_init(loop, &b->rejoin_idle);
  uv_check_init(loop, &b->rejoin_check);
  b->idle.data = b->check.data = b->rejoin_idle.data = b->rejoin_check.data = b;
  b->handles_open = 4;
  *out = b;
  return 0;
}

void batcher_submit(batcher_t *b, batch_item_t *it) {
  it->next = NULL;
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
  /* A split job the loop thread was to come back to: it helps once more,
   * and whatever it leaves goes to the pool (closing). */
  if (b->rejoin != NULL) {
    batch_job_t *job = b->rejoin;
    b->rejoin = NULL;
    batch__help(job);
  }
  /* Items queued for this iteration's uv_check would never be dispatched
   * once the handles are closed: they go now (and the rest as jobs
   * complete). */
  batch__dispatch(b);
  uv_close((uv_handle_t *)&b->idle, batch__closed);
  uv_close((uv_handle_t *)&b->check, batch__closed);
  uv_close((uv_handle_t *)&b->rejoin_idle, batch__closed);
  uv_close((uv_handle_t *)&b->rejoin_check, batch__closed);
}

void batcher_get_stats(const batcher_t *b, batcher_stats_t *out) {
  *out = b->st;
}
