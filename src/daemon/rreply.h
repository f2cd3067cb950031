/* rreply.h - hiredis 0.14 reply objects from one arena per reply.
 *
 * Why: hiredis builds a reply as a tree of separately allocated objects:
 * a redisReply and a string per element, and an element array per array.
 * A customer's history read WITHSCORES is 2n + 2 objects and 2n + 1
 * strings: on the demo shop (61 items per customer on average, some with
 * thousands) malloc and free were about a tenth of the daemon's CPU.
 * These object functions put every object, element array and string of
 * one top-level reply in a chain of blocks owned by that reply: a reply of
 * n elements costs a few mallocs, and freeing it a few frees.
 *
 * The objects are plain redisReply structs (same fields, same meaning), so
 * reply callbacks read them as before. What changes: a reply (or any of
 * its elements) must never be freed with freeReplyObject() or kept after
 * hiredis frees it (hiredis frees only the top-level reply, through
 * reader->fn->freeObject, which this module provides); nothing in the
 * daemon does either (rcluster copies what it keeps, rcluster_reply_dup).
 */
#ifndef RECD_RREPLY_H
#define RECD_RREPLY_H

#include <hiredis/hiredis.h>

/* Most elements an array may declare (at any depth). hiredis 0.14 takes a
 * declared count up to INT_MAX on trust, and an element array is allocated
 * in full before any element arrives: a broken or hostile server sending
 * "*2147483647" made the daemon allocate and zero 16 GB. The largest
 * replies recd asks for are sets of item ids (recd:unavailable, a
 * customer's hidden set) and a customer's impressions, so 16M elements is
 * far past any real one (16x a 1M-item catalogue). A larger count is
 * refused: the reader fails with hiredis's "Out of memory" error, and the
 * connection is dropped and reconnected like any other failure. */
#define RREPLY_MAX_ELEMENTS ((size_t)1 << 24)

/* The object functions (read.h): install with rreply_use(), or pass to
 * redisReaderCreateWithFunctions(). */
extern redisReplyObjectFunctions rreply_functions;

/* Makes c's reader build replies with rreply_functions. Call right after
 * the context is created, before any reply is read. */
void rreply_use(redisContext *c);

#endif
