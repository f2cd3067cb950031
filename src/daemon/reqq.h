/* reqq.h - a connection's requests and their replies, in request order.
 *
 * A client may pipeline many commands, some answered at once (PING), some
 * later (RECOMMEND waits for Redis and the thread pool). Each command gets
 * a req_t appended to the client's queue; its reply is written into the
 * request, and only the done requests at the head of the queue move to the
 * connection's output, so replies leave in order whatever order they are
 * completed in.
 *
 * Life cycle, one rule: a request is freed when its last holder releases
 * it. The queue holds it until its reply has moved to the output (or the
 * client has gone); everything that will call back later (a Redis fetch, a
 * deadline timer, a job on the thread pool) takes req_hold() before it
 * starts and calls req_release() when it is over. A request whose client
 * went away lives on, detached (req_owner() = NULL), until its last
 * callback, and its reply goes nowhere.
 *
 * Loop thread only.
 */
#ifndef RECD_DAEMON_REQQ_H
#define RECD_DAEMON_REQQ_H

#include <stdint.h>

#include "recd/reply.h"
#include "stats.h"

typedef struct req req_t;
typedef struct reqq reqq_t;

/* Called when the request at the head of the queue may be done. */
typedef void (*reqq_ready_fn)(reqq_t *q);

struct reqq {
  req_t *head, *tail;
  unsigned len;            /* requests not yet moved to the output */
  reqq_ready_fn ready;
  void *owner;             /* the connection (req_owner) */
};

struct req {
  req_t *next;             /* in the queue */
  reqq_t *q;               /* NULL once detached */
  int done;                /* reply complete */
  unsigned refs;
  reply_buf_t reply;
  uint64_t start_us;
  cmd_stats_t *st;         /* recorded by req_finish (may be NULL) */
  void *ctx;               /* command-specific state ... */
  void (*ctx_free)(void *ctx); /* ... freed with the request */
};

void reqq_init(reqq_t *q, reqq_ready_fn ready, void *owner);

/* A new pending request at the tail (held by the queue), or NULL when out
 * of memory. st: the command's statistics, recorded when it finishes. */
req_t *req_new(reqq_t *q, cmd_stats_t *st);
req_t *req_hold(req_t *r);
void req_release(req_t *r);
/* The reply is complete: records the statistics and tells the queue. */
void req_finish(req_t *r, int failed);
/* The connection of an attached request, NULL once its client has gone. */
void *req_owner(const req_t *r);

/* Where a command answered at once writes its reply: `direct` (the
 * connection's output) when nothing is queued before it, else a new done
 * request in the queue; NULL when out of memory. */
reply_buf_t *reqq_reply(reqq_t *q, reply_buf_t *direct);

/* Appends the replies of the done requests at the head to out, in order,
 * and releases those requests. Returns how many moved. */
unsigned reqq_take_done(reqq_t *q, reply_buf_t *out);

/* The client has gone: every request is detached and released by the
 * queue (those with callbacks pending live on until their last release). */
void reqq_detach_all(reqq_t *q);

#endif
