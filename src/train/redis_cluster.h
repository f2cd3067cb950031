/* redis_cluster.h - recd-train's link to Redis: one server, or a Redis
 * Cluster (--redis-cluster-nodes), behind one batch interface.
 *
 * A batch is a list of commands, each on one key (its first argument, as
 * for every command recd-train sends), appended like redisAppendCommand()
 * and run by redis_link_exec(): in a cluster each key goes to the master of
 * its slot (recd/cluster_slot.h), the commands of each master pipelined on
 * its connection (all masters written before any reply is read), and the
 * replies are handed back in the order the commands were appended. Commands
 * on one key keep their order (one slot, one node). -MOVED updates the slot
 * map (and re-reads CLUSTER SLOTS) and sends the command again to the
 * named node; -ASK sends ASKING and the command to the named node;
 * -TRYAGAIN, -CLUSTERDOWN and -LOADING are retried after short sleeps, a
 * bounded number of times, then an error. An error reply is not executed,
 * so a retried ZINCRBY is never applied twice.
 *
 * SCAN sees one node's slots only: redis_link_scan() runs it on every
 * master of the map. Every connection AUTHs with --redis-password.
 */
#ifndef RECD_TRAIN_REDIS_CLUSTER_H
#define RECD_TRAIN_REDIS_CLUSTER_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "recd/cluster_slot.h"
#include "redis_io.h"

/* Connects: to o->host:o->port (or o->socket), or, when o->cluster_nodes
 * is set, to the first seed that answers CLUSTER SLOTS and then to every
 * master it names. 0 or RECD_EREDIS / RECD_EINVAL / RECD_ENOMEM. */
int redis_link_open(const redis_opts_t *o, redis_link_t **out, char *errbuf);
void redis_link_close(redis_link_t *l);
/* One connection to host:port (or the Unix socket sock), with o's timeout,
 * AUTHed with o's password (and user). 0 or RECD_EREDIS / RECD_ENOMEM. */
int redis_node_connect(const redis_opts_t *o, const char *host, int port, const char *sock,
                       redisContext **out, char *errbuf);
int redis_link_is_cluster(const redis_link_t *l);
/* Masters of the slot map (1 for a single server). */
size_t redis_link_n_masters(const redis_link_t *l);

/* Calls fn(arg, key, len) for every key SCAN MATCH pattern returns, on
 * every master (a key may come more than once, as SCAN allows). fn returns
 * 0 to go on, else that code is returned. */
int redis_link_scan(redis_link_t *l, const char *pattern,
                    int (*fn)(void *arg, const char *key, size_t len), void *arg,
                    char *errbuf);

/* Appends one command (redisFormatCommand's format) to the batch.
 * 0, or RECD_ENOMEM (the batch is then unusable until redis_link_exec
 * reports the error). */
int redis_link_append(redis_link_t *l, const char *fmt, ...);
/* Commands in the batch. */
size_t redis_link_pending(const redis_link_t *l);
/* Runs the batch. 0: every command has its reply (an error reply such as
 * WRONGTYPE is a reply), redis_link_reply(l, i) until the next append;
 * else an error (connection lost, redirections or retries exhausted) and
 * the batch is dropped. */
int redis_link_exec(redis_link_t *l, char *errbuf);
/* Reply i of the batch just run (owned by the link). */
const redisReply *redis_link_reply(const redis_link_t *l, size_t i);

#endif
