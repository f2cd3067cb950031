/* sentinel_reply.h - the replies a Redis Sentinel client reads, parsed the
 * same way by the daemon (src/daemon/sentinel.c, asynchronous) and by
 * recd-train (src/train/sentinel_lookup.c, synchronous); both link hiredis,
 * recdcore does not, so this file is compiled into each of them.
 */
#ifndef RECD_COMMON_SENTINEL_REPLY_H
#define RECD_COMMON_SENTINEL_REPLY_H

#include <hiredis/hiredis.h>
#include <stddef.h>

/* An address from a SENTINEL get-master-addr-by-name reply: 1 (host, of
 * hsize bytes at most with its NUL, and port set), 0 for nil (the sentinel
 * does not know the name), -1 for anything else. */
int sentinel_reply_addr(const redisReply *r, char *host, size_t hsize, int *port);

/* "master", "slave", "sentinel" (at most 32 bytes of it, copied to buf) or
 * NULL from a ROLE reply. */
const char *sentinel_reply_role(const redisReply *r, char *buf, size_t size);

#endif
