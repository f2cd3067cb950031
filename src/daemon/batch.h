/* batch.h - micro-batching of RECOMMEND on libuv's thread pool.
 *
 * Requests whose inputs are ready (history read from Redis, or deadline
 * passed) are queued here. At the end of the loop iteration (uv_check) the
 * queue goes to the thread pool as one job: every customer is folded in,
 * the catalogue is scored for all of them in ONE pass (the fused int8 scan
 * of qscore.h when the model has an int8 copy and the CPU has AVX2, else
 * one sgemm), and the rules select each answer from the exactly re-scored
 * candidates. From `split_items` items on, a job's pieces run on every
 * worker at once and share the scan out. While `max_inflight` jobs are
 * running, new requests wait and are taken together by the next job, so
 * under load the batch grows by itself: the item matrix is read once per
 * batch instead of once per request (it is the memory-bound part), and the
 * loop thread is left to the network. At low load a batch is one request, dispatched in the
 * same loop iteration it became ready.
 */
#ifndef RECD_DAEMON_BATCH_H
#define RECD_DAEMON_BATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "recd/recommend.h"

struct served;

typedef struct batch_item batch_item_t;
struct batch_item {
  batch_item_t *next;          /* private to the batcher */
  const struct served *model;  /* the model to answer with (caller holds a
                                  reference until done) */
  rec_query_t q;               /* inputs: caller-owned until done */
  /* outputs, valid in done(); items and scores are malloc'ed here and
   * freed by batch_item_free() */
  int rc;                      /* 0 or RECD_E* */
  int personalized;
  size_t n;
  uint32_t *items;
  float *scores;
  int32_t *reasons;            /* only with q.with_reasons */
  void (*done)(batch_item_t *it); /* on the loop thread, exactly once */
};

typedef struct batcher batcher_t;

/* max_inflight: jobs running at once (the pool's threads: `workers`);
 * max_rows: customers per job at most (on the float path the score buffer
 * is max_rows x items floats, so it is further capped at 64 MB);
 * split_items: catalogue size from which a job's int8 scan is split over
 * all max_inflight workers (each scans a slice of the items for every
 * customer of the batch; the slices' candidates are merged), so that one
 * customer's answer uses every core. Below it a job runs on one worker from
 * fold-in to answer and the workers take different jobs: a split costs two
 * more trips through the loop, which a short scan does not repay.
 * 0 or RECD_ENOMEM. */
int batcher_new(uv_loop_t *loop, unsigned max_inflight, unsigned max_rows, uint32_t split_items,
                batcher_t **out);
/* Queues it; done() fires later (never from inside this call). */
void batcher_submit(batcher_t *b, batch_item_t *it);
/* Closes the handles; the batcher is freed once they are closed and every
 * job queued or running has come back (requests of clients that left may
 * still be on the pool at shutdown, and items submitted after this call
 * are still answered). */
void batcher_close(batcher_t *b);
void batch_item_free(batch_item_t *it);

/* Counters for INFO. */
typedef struct batcher_stats {
  uint64_t jobs, rows, max_rows_seen;
  uint64_t split_jobs; /* jobs whose scan ran on every worker at once */
} batcher_stats_t;
void batcher_get_stats(const batcher_t *b, batcher_stats_t *out);

#endif
