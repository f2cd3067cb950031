/* redis_io.h - recd-train's Redis side: read histories, import a CSV.
 *
 * Synchronous hiredis with pipelining: recd-train is a batch job, so
 * blocking calls are the simple and right tool here (the daemon uses the
 * async API on its event loop). One Redis server, or a Redis Cluster with
 * --redis-cluster-nodes: redis_cluster.h routes each key to its master.
 */
#ifndef RECD_TRAIN_REDIS_IO_H
#define RECD_TRAIN_REDIS_IO_H

#include <stdint.h>
#include <stdio.h>

#include "recd/dataset.h"

typedef struct redis_opts {
  const char *host;     /* default 127.0.0.1 */
  int port;             /* default 6379 */
  const char *socket;   /* Unix socket path; overrides host/port when set */
  const char *password; /* AUTH before anything else when set */
  const char *user;     /* Redis 6 ACL user: AUTH user password; NULL = none */
  const char *prefix;   /* key prefix, default "recd:" */
  int timeout_ms;       /* connect and command timeout */
  const char *cluster_nodes; /* "host:port ..." seeds of a Redis Cluster, or NULL:
                                then host/port/socket are not used */
} redis_opts_t;

/* One server or a cluster (redis_cluster.h). */
typedef struct redis_link redis_link_t;

/* Reads every <prefix>hist:<user> ZSET (SCAN on every master, then ZRANGE
 * ... WITHSCORES pipelined in batches, customers in byte order of their
 * keys, so that the data set, and the model, do not depend on SCAN's order
 * or on how the keys are spread over a cluster) into ds, each interaction
 * with its last time from <prefix>time:<user> (read in the same pipeline;
 * DATASET_NO_TIME when the item has none there), then each item's category
 * and group from <prefix>item:<item> (HMGET, pipelined). Keys of the wrong type, scores
 * that are not finite and > 0, times that are not whole Unix seconds in
 * [0, now + a day] (the item is then read without a time), and over-long
 * ids are skipped and counted in *anomalies (keys of the wrong type with a
 * note on `log`). Progress on `progress` (may be NULL). */
int redis_read_dataset(const redis_opts_t *o, dataset_t *ds, uint64_t *anomalies,
                       FILE *progress, FILE *log, char *errbuf);

/* Reads the category and group fields of <prefix>item:<id> for the data
 * set's items which[0..n_which) (all items when which is NULL) with HMGET,
 * pipelined; an item key of the wrong type or an over-long value is
 * counted in *anomalies and noted on `log`. 0 or an error (connection, out
 * of memory). */
int redis_read_item_attrs(redis_link_t *l, const char *prefix, dataset_t *ds,
                          const uint32_t *which, uint32_t n_which, uint64_t *anomalies,
                          FILE *log, char *errbuf);

/* Connects (and AUTHs) as recd-train does: redis_link_open(). */
int redis_connect(const redis_opts_t *o, redis_link_t **out, char *errbuf);
void redis_disconnect(redis_link_t *l);

/* Reads every <prefix>hist:<user> and its times into ds (no item
 * attributes); what redis_read_dataset() does first. */
int redis_read_histories(redis_link_t *l, const redis_opts_t *o, dataset_t *ds,
                         uint64_t *anomalies, FILE *progress, FILE *log, char *errbuf);

/* Loads interactions from a CSV (user,item,weight[,timestamp]) into
 * <prefix>hist:<user> with ZINCRBY, one per (user, item) pair with the
 * summed weight, and the pair's latest timestamp, if it has any, into
 * <prefix>time:<user> with ZADD GT (Redis 6.2 or later); and, when
 * items_csv is not NULL, item attributes (title, category and, with a
 * fourth column, group) into <prefix>item:<item> with HSET; all
 * pipelined. A timestamp that is not Unix seconds in [0, now + a day] is
 * an error (milliseconds, usually) unless skip_bad: then that row's time is
 * left out. Every line and time is checked before anything is written.
 * *rows receives the interactions (pairs) written. */
int redis_import_csv(const redis_opts_t *o, const char *csv, const char *items_csv,
                     int skip_bad, uint64_t *rows, FILE *progress, char *errbuf);

#endif
