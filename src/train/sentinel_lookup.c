/* sentinel_lookup.c - see sentinel_lookup.h. */
#include "sentinel_lookup.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "recd/err.h"
#include "redis_cluster.h"
#include "sentinel_reply.h"

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
  else {
    const int got = sentinel_reply_addr(r, primary->host, sizeof primary->host, &primary->port);
    if (got == 0)
      rc = recd_errf(why, RECD_EREDIS, "%s:%d: no primary named \"%s\"", s->host, s->port,
                     name);
    else if (got < 0)
      rc = recd_errf(why, RECD_EREDIS,
                     "%s:%d: SENTINEL get-master-addr-by-name: not an address", s->host, s->port);
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
  char role[40];
  const char *name = sentinel_reply_role(r, role, sizeof role);
  if (r == NULL)
    rc = recd_errf(why, RECD_EREDIS, "%s:%d: %s", p->host, p->port, c->errstr);
  else if (name == NULL || strcmp(name, "master") != 0)
    rc = recd_errf(why, RECD_EREDIS, "%s:%d is not a primary (ROLE): %s", p->host, p->port,
                   name != NULL ? name : "unreadable");
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
    if (rc != 0 && used + 1 < sizeof all) { /* snprintf cuts what does not fit */
      const int w = snprintf(all + used, sizeof all - used, "%s%s", used ? "; " : "", why);
      used += w > 0 ? (size_t)w : 0;
      if (used >= sizeof all)
        used = sizeof all - 1;
    }
  }
  free(s);
  if (rc == RECD_ENOMEM)
    return recd_errf(errbuf, rc, "sentinels: out of memory");
  if (rc != 0)
    return recd_errf(errbuf, rc, "no sentinel named a primary for \"%s\": %s", name, all);
  return 0;
}
