/* batch.h - micro-batching of RECOMMEND on libuv's thread pool.
 *
 * Requests whose inputs are ready (history read from Redis, or deadline
 * passed) are queued here. At the end of the loop iteration (uv_check) the
 * queue goes to the thread pool as one job: a serve_batch_t (serve.h, the
 * serving algorithm itself) of up to max_rows customers answered with the
 * same model, so the catalogue is read once per batch instead of once per
 * request (it is the memory-bound part) and the loop thread is left to the
 * network. While `max_inflight` jobs are running, new requests wait and are
 * taken together by the next job, so under load the batch grows by itself;
 * at low load a batch is one request, dispatched in the same loop
 * iteration it became ready.
 *
 * SIMILARs on an int8 model are batched the same way, in jobs of their own
 * (a batch scans one int8 copy: the items', or the normalised items' for
 * SIMILAR): consecutive queued items of the same model and kind.
 *
 * This module only queues, runs jobs on the pool and shares a job's work
 * out among workers: from `split_items` items on (int8 pass), a job has a
 * piece on every worker, and the pieces claim customers to fold in and
 * chunks of the catalogue to scan from shared counters, so that one
 * customer's answer uses every core, and a worker done with one job's
 * chunks goes on to the next job's. For a job of one or two customers
 * dispatched while no other runs (an unloaded daemon's) the loop thread,
 * which queued it, is one of the pieces, in place of a worker that would
 * have to be woken (a halted vCPU's thread takes about a millisecond to
 * wake on a VM); it steps out to serve network work and comes back, and
 * hands its place to the pool once its budget is spent.
 */
#ifndef RECD_DAEMON_BATCH_H
#define RECD_DAEMON_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "recd/recommend.h"
#include "recd/serve.h"

typedef struct batch_item batch_item_t;
struct batch_item {
  batch_item_t *next;          /* private to the batcher */
  const serve_model_t *model;  /* the model to answer with (the caller
                                  keeps it alive until done) */
  const rec_query_t *q;        /* inputs: caller-owned until done */
  int similar;                 /* 1: SIMILAR of `item` under q's rules
                                  (serve_batch_new_similar; the model's
                                  pass must be int8); 0: RECOMMEND */
  uint32_t item;
  /* On the loop thread, exactly once. The answer (a->rc != 0: failed) is
   * valid only during the call. */
  void (*done)(batch_item_t *it, const serve_answer_t *a);
};

typedef struct batcher batcher_t;

/* max_inflight: jobs running at once (the pool's threads: `workers`);
 * max_rows: customers per job at most (further capped by
 * serve_batch_capacity on the float pass); split_items: catalogue size
 * from which an int8 job's scan is split over all max_inflight workers;
 * help_ns: how long the loop thread, right after queueing a split job,
 * at most takes part in it (0: never; `scan-loop-help-us`). 0 or RECD_ENOMEM. */
int batcher_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_rows, uint32_t split_items,
                uint64_t help_ns, batcher_t **out);
/* Queues it; done() fires later (never from inside this call). */
void batcher_submit(batcher_t *b, batch_item_t *it);
/* Closes the handles; the batcher is freed once they are closed and every
 * job queued or running has come back (requests of clients that left may
 * still be on the pool at shutdown, and items submitted after this call
 * are still answered). */
void batcher_close(batcher_t *b);

/* Counters for INFO. */
typedef struct batcher_stats {
  uint64_t jobs, rows, max_rows_seen;
  uint64_t split_jobs; /* jobs whose scan ran on every worker at once */
  uint64_t helped_jobs, helped_chunks; /* split jobs the loop thread took
                                          part in, and chunks it scanned */
  uint64_t relieved_jobs; /* helped jobs the loop thread left with work
                             unclaimed, to a pool piece in its place */
} batcher_stats_t;
void batcher_get_stats(const batcher_t *b, batcher_stats_t *out);

#endif
