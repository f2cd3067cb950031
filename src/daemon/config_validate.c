/* config_validate.c - config_validate() (config.h): the rules that span
 * several keys (TLS, Redis Cluster and Sentinel, the experiment's
 * variants, tracking), checked once every key is set. Each key's own
 * range and syntax are the table's (config.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/cluster_slot.h"

#include "config.h"
#include "config_internal.h"

/* The variant rules: a list the setters could only have built well (the
 * guards, for a hand-edited config_t), then the two rules that need every
 * line: the percents sum to 100 (each customer gets exactly one variant)
 * and `model` is empty (a second way to name the served model would leave
 * the operator guessing which one runs). */
static int config__validate_variants(const config_t *cfg, char *errbuf) {
  const config_variants_t *vs = &cfg->variants;
  if (vs->n > CONFIG_VARIANT_MAX)
    return recd_errf(errbuf, RECD_EINVAL, "variant: at most %d variants, got %zu",
                     CONFIG_VARIANT_MAX, vs->n);
  char show[CONFIG__SHOW_BUF];
  unsigned sum = 0;
  for (size_t i = 0; i < vs->n; i++) {
    if (vs->name[i] == NULL || vs->path[i] == NULL)
      return recd_errf(errbuf, RECD_EINVAL, "variant: %zu not set", i + 1);
    size_t nlen = strlen(vs->name[i]);
    config__show(vs->name[i], nlen, show);
    if (!config__variant_name_ok(vs->name[i], nlen))
      return recd_errf(errbuf, RECD_EINVAL, "variant: expected a name of 1 to %d bytes of "
                       "[A-Za-z0-9_.:-], got '%s'", CONFIG_VARIANT_NAME_MAX, show);
    for (size_t j = 0; j < i; j++)
      if (strcmp(vs->name[j], vs->name[i]) == 0)
        return recd_errf(errbuf, RECD_EINVAL, "variant: variant '%s' is given twice", show);
    if (vs->path[i][0] == '\0')
      return recd_errf(errbuf, RECD_EINVAL, "variant: model path of '%s' must not be empty",
                       show);
    if (vs->percent[i] > 100)
      return recd_errf(errbuf, RECD_EINVAL, "variant: percent of '%s': expected an integer "
                       "in [0, 100], got %u", show, vs->percent[i]);
    sum += vs->percent[i];
  }
  if (vs->n == 0)
    return 0;
  if (cfg->model[0] != '\0') {
    config__show(cfg->model, strlen(cfg->model), show);
    return recd_errf(errbuf, RECD_EINVAL, "model and variant are exclusive: with variants, "
                     "every model is named by its variant line (model is '%s')", show);
  }
  if (sum != 100) {
    /* "a 50 + b 40", cut with "..." where it would not fit the message. */
    char list[160];
    size_t o = 0;
    for (size_t i = 0; i < vs->n; i++) {
      char item[CONFIG_VARIANT_NAME_MAX + 16];
      int w = snprintf(item, sizeof item, "%s%s %u", i ? " + " : "", vs->name[i],
                       vs->percent[i]);
      if (w < 0 || o + (size_t)w + 5 > sizeof list) {
        memcpy(list + o, " ...", 5);
        o += 4;
        break;
      }
      memcpy(list + o, item, (size_t)w + 1);
      o += (size_t)w;
    }
    list[o] = '\0';
    return recd_errf(errbuf, RECD_EINVAL, "variant: percents must sum to 100, got %u (%s)",
                     sum, list);
  }
  return 0;
}

/* The tls-* rules that need no file: the files themselves are read by the
 * daemon (tls_creds_load(), also run by --test-config). */
static int config__validate_tls(const config_t *cfg, char *errbuf) {
  /* tls-protocols: blank-separated TLSv1.2 / TLSv1.3 (case-insensitive, as
   * Redis); older versions are not offered at all. */
  const char *p = cfg->tls_protocols;
  int words = 0;
  while (*p != '\0') {
    while (config__isblank(*p))
      p++;
    size_t n = 0;
    while (p[n] != '\0' && !config__isblank(p[n]))
      n++;
    if (n == 0)
      break;
    if (!config__name_eq(p, n, "tlsv1.2") && !config__name_eq(p, n, "tlsv1.3")) {
      char show[CONFIG__SHOW_BUF];
      config__show(p, n, show);
      return recd_errf(errbuf, RECD_EINVAL,
                       "tls-protocols: expected TLSv1.2 and/or TLSv1.3, got '%s'", show);
    }
    words++;
    p += n;
  }
  if (words == 0)
    return recd_errf(errbuf, RECD_EINVAL, "tls-protocols: expected TLSv1.2 and/or TLSv1.3");
  if (cfg->tls_auth_clients < CONFIG_TLS_AUTH_NO || cfg->tls_auth_clients > CONFIG_TLS_AUTH_OPTIONAL)
    return recd_errf(errbuf, RECD_EINVAL, "tls-auth-clients: expected one of no, yes, optional");
  /* metrics-tls serves the metrics port with the same certificate and
   * client-certificate policy; it means nothing without a metrics port. */
  const int metrics_tls = cfg->metrics_tls && cfg->metrics_port != 0;
  if (cfg->tls_port == 0 && !metrics_tls)
    return 0;
  if (cfg->tls_port != 0 && cfg->tls_port == cfg->port)
    return recd_errf(errbuf, RECD_EINVAL, "tls-port and port are both %d", cfg->port);
  if (cfg->tls_port != 0 && cfg->tls_port == cfg->metrics_port)
    return recd_errf(errbuf, RECD_EINVAL, "metrics-port and tls-port are both %d",
                     cfg->tls_port);
  if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
    if (cfg->tls_port == 0)
      return recd_errf(errbuf, RECD_EINVAL, "metrics-tls yes needs tls-cert-file and "
                       "tls-key-file");
    return recd_errf(errbuf, RECD_EINVAL, "tls-port %d needs tls-cert-file and tls-key-file",
                     cfg->tls_port);
  }
  /* Redis's rule: asking for client certificates without a CA to check
   * them against is a configuration mistake, not "anyone goes". */
  if (cfg->tls_auth_clients != CONFIG_TLS_AUTH_NO && cfg->tls_ca_cert_file[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL,
                     "tls-auth-clients %s needs tls-ca-cert-file (the CA that signs client "
                     "certificates); or set tls-auth-clients no",
                     config__tls_auth[cfg->tls_auth_clients]);
  return 0;
}

/* key's "host:port ..." list is well formed; *n: how many it names. */
static int config__node_list(const char *key, const char *list, size_t *n, char *errbuf) {
  cluster_node_t *nodes = NULL;
  char perr[RECD_ERRLEN];
  *n = 0;
  int err = cluster_parse_nodes(list, &nodes, n, perr);
  free(nodes);
  if (err == RECD_ENOMEM)
    return recd_errf(errbuf, err, "%s: out of memory", key);
  if (err != 0)
    return recd_errf(errbuf, err, "%s: %s", key, perr);
  return 0;
}

/* redis-host/redis-port would be ignored beside key (whose reason is
 * `why`): refused rather than silently unused (their defaults, as a dump
 * writes them, pass). */
static int config__no_host_port(const config_t *cfg, const char *key, const char *why,
                                char *errbuf) {
  if (strcmp(cfg->redis_host, "127.0.0.1") == 0 && cfg->redis_port == 6379)
    return 0;
  const char *which = strcmp(cfg->redis_host, "127.0.0.1") != 0 ? "redis-host" : "redis-port";
  return recd_errf(errbuf, RECD_EINVAL, "%s and %s: %s; remove %s", key, which, why, which);
}

/* Redis Cluster mode: a well-formed seed list, and nothing else that
 * would say where Redis is. */
static int config__validate_cluster(const config_t *cfg, char *errbuf) {
  if (cfg->redis_cluster_nodes[0] == '\0')
    return 0;
  size_t n;
  int err = config__node_list("redis-cluster-nodes", cfg->redis_cluster_nodes, &n, errbuf);
  if (err != 0)
    return err;
  if (cfg->redis_socket[0] != '\0')
    return recd_errf(errbuf, RECD_EINVAL, "redis-cluster-nodes and redis-socket: a cluster "
                     "is reached over TCP at its nodes; remove redis-socket");
  if (cfg->redis_sentinels[0] != '\0')
    return recd_errf(errbuf, RECD_EINVAL, "redis-cluster-nodes and redis-sentinels: a Redis "
                     "Cluster fails over by itself; use one or the other");
  return config__no_host_port(cfg, "redis-cluster-nodes",
                              "the seed nodes say where the cluster is", errbuf);
}

/* Sentinel mode: both keys or neither, a well-formed list, and nothing that
 * would say where Redis is besides the sentinels. */
static int config__validate_sentinel(const config_t *cfg, char *errbuf) {
  const int have_list = cfg->redis_sentinels[0] != '\0';
  const int have_name = cfg->redis_master_name[0] != '\0';
  if (!have_list && !have_name) {
    if (cfg->redis_sentinel_password[0] != '\0')
      return recd_errf(errbuf, RECD_EINVAL, "redis-sentinel-password is set but "
                       "redis-sentinels is empty (it is the sentinels' password)");
    return 0;
  }
  if (!have_list || !have_name)
    return recd_errf(errbuf, RECD_EINVAL, "%s is set but %s is empty: Sentinel needs both "
                     "(redis-sentinels \"host:port ...\" and redis-master-name NAME)",
                     have_list ? "redis-sentinels" : "redis-master-name",
                     have_list ? "redis-master-name" : "redis-sentinels");
  size_t n;
  int err = config__node_list("redis-sentinels", cfg->redis_sentinels, &n, errbuf);
  if (err != 0)
    return err;
  if (n > CONFIG_SENTINELS_MAX)
    return recd_errf(errbuf, RECD_EINVAL, "redis-sentinels: %zu sentinels, at most %d", n,
                     CONFIG_SENTINELS_MAX);
  /* The name is one token of a sentinel's +switch-master messages. */
  for (const char *p = cfg->redis_master_name; *p; p++)
    if ((unsigned char)*p <= ' ' || *p == 0x7f)
      return recd_errf(errbuf, RECD_EINVAL, "redis-master-name: '%s' has a blank or a "
                       "control character (sentinel names are one word)",
                       cfg->redis_master_name);
  if (cfg->redis_socket[0] != '\0')
    return recd_errf(errbuf, RECD_EINVAL, "redis-sentinels and redis-socket: the sentinels "
                     "name the primary's TCP address; remove redis-socket");
  return config__no_host_port(cfg, "redis-sentinels", "the sentinels name the primary", errbuf);
}

int config_validate(const config_t *cfg, char *errbuf) {
  /* Cheap guards for a config_t edited by hand rather than through the
   * setters: the daemon indexes bind.addr[] and uses the strings as is. */
  if (cfg->bind.n < 1 || cfg->bind.n > CONFIG_BIND_MAX)
    return recd_errf(errbuf, RECD_EINVAL, "bind: expected 1 to %d addresses",
                     CONFIG_BIND_MAX);
  for (size_t i = 0; i < config__ndefs; i++) {
    const config__def_t *d = &config__defs[i];
    if (d->type == CONFIG__STRING && *(char *const *)config__cfield(cfg, d) == NULL)
      return recd_errf(errbuf, RECD_EINVAL, "%s: not set", d->name);
    if (d->type == CONFIG__DOUBLE) {
      double x = *(const double *)config__cfield(cfg, d);
      if (!(x >= (double)d->min && x <= (double)d->max)) { /* NaN too */
        char expect[128];
        config__expect(d, expect, sizeof expect);
        return recd_errf(errbuf, RECD_EINVAL, "%s: expected %s, got %g", d->name, expect, x);
      }
    }
  }
  if (cfg->key_prefix[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL, "key-prefix: must not be empty");
  if (cfg->experiment_salt[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL, "experiment-salt: must not be empty");
  if (cfg->redis_host[0] == '\0' && cfg->redis_socket[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL, "redis-host: must not be empty");

  /* The cross-field rules. */
  if (cfg->port == 0 && cfg->unixsocket[0] == '\0' && cfg->tls_port == 0)
    return recd_errf(errbuf, RECD_EINVAL,
                     "nothing to listen on: port is 0 and unixsocket is empty");
  if (cfg->metrics_port != 0 && cfg->metrics_port == cfg->port)
    return recd_errf(errbuf, RECD_EINVAL, "metrics-port and port are both %d",
                     cfg->port);
  int tls_err = config__validate_tls(cfg, errbuf);
  if (tls_err != 0)
    return tls_err;
  if (cfg->unixsocket[0] != '\0' && strcmp(cfg->unixsocket, cfg->redis_socket) == 0)
    return recd_errf(errbuf, RECD_EINVAL,
                     "unixsocket and redis-socket are the same path; recd would "
                     "replace Redis's socket with its own");
  const int sentinel_err = config__validate_sentinel(cfg, errbuf);
  if (sentinel_err != 0)
    return sentinel_err;
  const int cluster_err = config__validate_cluster(cfg, errbuf);
  if (cluster_err != 0)
    return cluster_err;
  if (cfg->pidfile[0] != '\0' && strcmp(cfg->pidfile, cfg->unixsocket) == 0)
    return recd_errf(errbuf, RECD_EINVAL, "pidfile and unixsocket are the same path");
  /* Rotation counts impressions: without them a shown limit would never
   * leave anything out. */
  if (!cfg->track_impressions && (cfg->shown_limit > 0 || cfg->track_shown))
    return recd_errf(errbuf, RECD_EINVAL, "%s needs track-impressions yes (items shown are "
                     "counted in the impressions)",
                     cfg->shown_limit > 0 ? "shown-limit" : "track-shown");
  return config__validate_variants(cfg, errbuf);
}
