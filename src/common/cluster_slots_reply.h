/* cluster_slots_reply.h - the CLUSTER SLOTS reply, parsed into a slot map
 * (recd/cluster_slot.h). Shared by recd-train (a synchronous hiredis
 * context) and the daemon (asynchronous); both link hiredis, recdcore does
 * not, so this file is compiled into each of them.
 */
#ifndef RECD_COMMON_CLUSTER_SLOTS_REPLY_H
#define RECD_COMMON_CLUSTER_SLOTS_REPLY_H

#include <hiredis/hiredis.h>

#include "recd/cluster_slot.h"

/* Fills m (slots cleared first; nodes kept, new ones added) from a
 * CLUSTER SLOTS reply: for every range its master (the first node entry;
 * the replicas after it are not used); replier is the host the reply came
 * from (an empty or nil endpoint means that host); an endpoint "?" (a
 * hostname preferred but none set) leaves the range unserved. 0 or
 * RECD_EREDIS / RECD_ENOMEM with errbuf set; on error the slots are in an
 * unspecified state (the caller restores its copy). */
int cluster_slots_parse_reply(const redisReply *r, const char *replier, cluster_map_t *m,
                              char *errbuf);

#endif
