/* cluster_slots_reply.c - see cluster_slots_reply.h. */
#include "cluster_slots_reply.h"

#include <string.h>

#include "recd/err.h"

/* One node entry of CLUSTER SLOTS ([endpoint, port, id, ...]) as a map
 * node index in *idx, -1 when its endpoint is unknown ("?"). 0 or an error
 * (not the index itself: RECD_ENOMEM is -1 too). */
static int cluster__slots_node(const redisReply *n, const char *replier, cluster_map_t *m,
                               int *idx, char *errbuf) {
  *idx = -1;
  if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
      n->element[1]->type != REDIS_REPLY_INTEGER ||
      (n->element[0]->type != REDIS_REPLY_STRING && n->element[0]->type != REDIS_REPLY_NIL))
    return recd_errf(errbuf, RECD_EREDIS, "redis cluster: unexpected CLUSTER SLOTS node entry");
  const redisReply *ep = n->element[0];
  const char *host = replier;
  size_t hlen = strlen(replier);
  if (ep->type == REDIS_REPLY_STRING && ep->len > 0) {
    if (ep->len == 1 && ep->str[0] == '?')
      return 0; /* cluster-preferred-endpoint-type hostname, none set */
    host = ep->str;
    hlen = ep->len;
  }
  const int i = cluster_map_node(m, host, hlen, (int)n->element[1]->integer);
  if (i == RECD_ENOMEM)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  if (i < 0)
    return recd_errf(errbuf, RECD_EREDIS, "redis cluster: CLUSTER SLOTS names the bad "
                     "endpoint %.*s:%lld", (int)(hlen > 64 ? 64 : hlen), host,
                     (long long)n->element[1]->integer);
  *idx = i;
  return 0;
}

int cluster_slots_parse_reply(const redisReply *r, const char *replier, cluster_map_t *m,
                              char *errbuf) {
  if (r->type == REDIS_REPLY_ERROR)
    return recd_errf(errbuf, RECD_EREDIS, "redis cluster: CLUSTER SLOTS: %s", r->str);
  if (r->type != REDIS_REPLY_ARRAY)
    return recd_errf(errbuf, RECD_EREDIS, "redis cluster: unexpected CLUSTER SLOTS reply");
  cluster_map_clear_slots(m);
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_INTEGER)
      return recd_errf(errbuf, RECD_EREDIS, "redis cluster: unexpected CLUSTER SLOTS entry %zu",
                       i);
    const long long lo = e->element[0]->integer, hi = e->element[1]->integer;
    if (lo < 0 || hi < lo || hi >= CLUSTER_N_SLOTS)
      return recd_errf(errbuf, RECD_EREDIS, "redis cluster: CLUSTER SLOTS range %lld-%lld", lo,
                       hi);
    /* The master is the first node; the replicas after it are not used. */
    int node;
    const int rc = cluster__slots_node(e->element[2], replier, m, &node, errbuf);
    if (rc != 0)
      return rc;
    if (node >= 0)
      cluster_map_assign(m, (uint32_t)lo, (uint32_t)hi, node);
  }
  return 0;
}

