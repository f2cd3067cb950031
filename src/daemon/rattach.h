/* rattach.h - attach a hiredis 0.14 async context to a libuv loop, with the
 * adapter's error handling fixed.
 *
 * hiredis 0.14's adapters/libuv.h returns from its poll callback when libuv
 * reports an error status, which is how POLLERR shows up (a refused
 * asynchronous connect, a reset connection): hiredis then never learns of
 * it, so a refused connect waits for the caller's timeout and a reset
 * connection keeps its requests pending. Upstream fixed this after 0.14
 * (redis/hiredis PR #624). Every hiredis connection of the daemon (rclient's,
 * the Sentinel module's) attaches through this one copy of the fix.
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

#endif
