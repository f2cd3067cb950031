/* sentinel_lookup.c - see sentinel_lookup.h. */
#include "sentinel_lookup.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "recd/csv.h"
#include "recd/err.h"
#include "redis_cluster.h"

/* One sentinel's answer for `name`: the address it names in *primary. */
static int sentinel__ask(const cluster_node_t *s, const char *name, const char *password,
                         const redis_opts_t *o, cluster_node_t *primary, char *why) {
  /* the sentinel's own password, never the data servers' user */
  redis_opts_t so = *o;
  so.password = password;
  so.user = NULL;
  redisContext *c = NULL;
  int rc = redis_node_connect(&so, s->host, s->port, NULL, &c, why);
  if (rc != 0)
    return rc;
  redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);
  if (r == NULL)
    rc = recd_errf(why, RECD_EREDIS, "%s:%d: %s", s->host, s->port, c->errstr);
  else if (r->type == REDIS_REPLY_ERROR)
    rc = recd_errf(why, RECD_EREDIS, "%s:%d: %s", s->host, s->port, r->str);
  else if (r->type == REDIS_REPLY_NIL)
    rc = recd_errf(why, RECD_EREDIS, "%s:%d: no primary named \"%s\"", s->host, s->port, name);
  else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
           r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
           r->element[0]->len == 0 || r->element[0]->len > CLUSTER_HOST_MAX)
    rc = recd_errf(why, RECD_EREDIS, "%s:%d: SENTINEL get-master-addr-by-name: not an address",
                   s->host, s->port);
  else {
    uint64_t port;
    if (csv_parse_u64(r->element[1]->str, r->element[1]->len, &port) != 0 || port < 1 ||
        port > 65535) {
      rc = recd_errf(why, RECD_EREDIS, "%s:%d: the primary's port \"%.*s\" is not a port",
                     s->host, s->port, (int)(r->element[1]->len > 16 ? 16 : r->element[1]->len),
                     r->element[1]->str);
    } else {
      memcpy(primary->host, r->element[0]->str, r->element[0]->len);
      primary->host[r->element[0]->len] = '\0';
      primary->port = (int)port;
    }
  }
  freeReplyObject(r);
  redisFree(c);
  return rc;
}

/* The server at *p answers ROLE as a primary. */
static int sentinel__is_primary(const cluster_node_t *p, const redis_opts_t *o, char *why) {
  redisContext *c = NULL;
  int rc = redis_node_connect(o, p->host, p->port, NULL, &c, why);
  if (rc != 0)
    return rc;
  redisReply *r = redisCommand(c, "ROLE");
  if (r == NULL)
    rc = recd_errf(why, RECD_EREDIS, "%s:%d: %s", p->host, p->port, c->errstr);
  else if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
           r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "master") != 0)
    rc = recd_errf(why, RECD_EREDIS, "%s:%d is not a primary (ROLE)", p->host, p->port);
  freeReplyObject(r);
  redisFree(c);
  return rc;
}

int sentinel_lookup_primary(const char *sentinels, const char *name,
                            const char *sentinel_password, const redis_opts_t *o,
                            cluster_node_t *primary, char *errbuf) {
  cluster_node_t *s;
  size_t n;
  char why[RECD_ERRLEN];
  int rc = cluster_parse_nodes(sentinels, &s, &n, why);
  if (rc != 0)
    return recd_errf(errbuf, rc, "--redis-sentinels: %s", why);
  /* every failure, each cut to fit, so that the message names them all */
  char all[RECD_ERRLEN] = "";
  size_t used = 0;
  rc = RECD_EREDIS;
  for (size_t i = 0; i < n && rc != 0; i++) {
    rc = sentinel__ask(&s[i], name, sentinel_password, o, primary, why);
    if (rc == 0)
      rc = sentinel__is_primary(primary, o, why);
    if (rc == RECD_ENOMEM)
      break;
    if (rc != 0 && used + 3 < sizeof all) {
      int w = snprintf(all + used, sizeof all - used, "%s%s", used ? "; " : "", why);
      used = w < 0 ? used : used + (size_t)w >= sizeof all ? sizeof all - 1 : used + (size_t)w;
    }
  }
  free(s);
  if (rc == RECD_ENOMEM)
    return recd_errf(errbuf, rc, "sentinels: out of memory");
  if (rc != 0)
    return recd_errf(errbuf, rc, "no sentinel named a primary for \"%s\": %s", name, all);
  return 0;
}
