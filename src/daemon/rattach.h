/* rattach.h - attach a hiredis 0.14 async context to a libuv loop, with the
 * adapter's error handling fixed and, for busy connections, its writes
 * batched.
 *
 * hiredis 0.14's adapters/libuv.h returns from its poll callback when libuv
 * reports an error status, which is how POLLERR shows up (a refused
 * asynchronous connect, a reset connection): hiredis then never learns of
 * it, so a refused connect waits for the caller's timeout and a reset
 * connection keeps its requests pending. Upstream fixed this after 0.14
 * (redis/hiredis PR #624). Every hiredis connection of the daemon (rclient's,
 * rcluster's, the Sentinel module's) attaches through this one copy of the
 * fix.
 *
 * Why the batching: hiredis 0.14 calls the adapter's addWrite for every
 * command it queues and addRead after every read, and the adapter restarts
 * its uv_poll handle each time, which libuv turns into an epoll_ctl DEL
 * (and an ADD on the next poll): about two system calls per command and
 * per read, on the connections that carry every request of the daemon.
 * Here an event that is already armed stays as it is, and with a batch
 * (rattach_libuv_batched) a command on a connected context arms nothing:
 * the context is marked, and the batch writes every marked context once,
 * at the end of the loop turn (a uv_check handle: right after the I/O
 * callbacks that issue most commands), or before the loop would block (a
 * uv_prepare handle: for commands issued from timers and idle callbacks,
 * which the check handle alone would leave waiting for the next event).
 * The write event is armed only while connecting and for the rest of a
 * partial write. A low-rate connection (Sentinel's) can keep the plain
 * rattach_libuv().
 */
#ifndef RECD_RATTACH_H
#define RECD_RATTACH_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches ac to loop through redisLibuvAttach() and swaps in the fixed
 * poll hooks. Returns 0, or -1 when the adapter could not allocate its
 * state; ac is then left without hooks and the caller must redisAsyncFree()
 * it (safe: nothing was registered). Call before setting the connect
 * callback, which starts polling. */
int rattach_libuv(redisAsyncContext *ac, uv_loop_t *loop);

typedef struct rattach__conn rattach__conn_t;

/* The end-of-turn writer of the contexts attached to it; embedded in its
 * owner (one per client), between rattach_batch_init() and the callback
 * of rattach_batch_close(). The fields are rattach.c's. */
typedef struct rattach_batch {
  uv_check_t check;           /* the end of a loop turn */
  uv_prepare_t prepare;       /* before the loop blocks */
  rattach__conn_t *conns;     /* every context attached */
  rattach__conn_t *dirty;     /* those with commands not yet written */
  rattach__conn_t *writing;   /* the one the flush is writing */
  int open;                   /* handles not through their close callback */
  void (*closed)(void *arg);
  void *closed_arg;
} rattach_batch_t;

/* Cannot fail (libuv's check and prepare init only link the handles). */
void rattach_batch_init(rattach_batch_t *b, uv_loop_t *loop);

/* Closes b's handles; closed(arg) runs from the last close callback, after
 * which b's memory may go. Free every context attached to b first: one
 * still attached then (a bug) falls back to the plain hooks. */
void rattach_batch_close(rattach_batch_t *b, void (*closed)(void *arg), void *arg);

/* rattach_libuv(), then ac's commands are written by b. Returns as
 * rattach_libuv(); when the batching state cannot be allocated ac keeps the
 * plain hooks (correct, only slower) and this still returns 0. */
int rattach_libuv_batched(redisAsyncContext *ac, uv_loop_t *loop, rattach_batch_t *b);

#endif
