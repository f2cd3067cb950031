/* sentinel_lookup.h - recd-train behind Redis Sentinel: which server is
 * the primary now.
 *
 * recd-train is a batch job: it asks once, at start, and then works with
 * that server as with --redis-host/--redis-port (the daemon follows
 * failovers as they happen, src/daemon/sentinel.h). A failover during the
 * job fails it like any lost connection; run it again.
 */
#ifndef RECD_TRAIN_SENTINEL_LOOKUP_H
#define RECD_TRAIN_SENTINEL_LOOKUP_H

#include <stddef.h>

#include "recd/cluster_slot.h"
#include "redis_io.h"

/* Asks each of `sentinels` ("host:port ..." as cluster_parse_nodes reads
 * it) in turn for the primary named `name` (SENTINEL
 * get-master-addr-by-name), AUTHing with sentinel_password when it is not
 * empty, and checks with ROLE, connecting as `o` says (its password, user
 * and timeout), that the server named is a primary; the first that passes
 * gives its address in *primary. Unreachable sentinels, an unknown name,
 * a reply that is not an address, or a server that is not a primary
 * (a sentinel that has not yet seen a failover) make it try the next.
 * 0, or RECD_EREDIS with every sentinel's failure in errbuf, RECD_EINVAL
 * (the list), RECD_ENOMEM. */
int sentinel_lookup_primary(const char *sentinels, const char *name,
                            const char *sentinel_password, const redis_opts_t *o,
                            cluster_node_t *primary, char *errbuf);

#endif
