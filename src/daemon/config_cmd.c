/* config_cmd.c - CONFIG GET | SET | RESETSTAT | REWRITE | HELP, as Redis.
 *
 * CONFIG GET walks config.c's key table (config_count / config_name /
 * config_format), so every key, including keys added later, is listed with
 * no change here; a secret key (config_is_secret) shows "" instead of its
 * value. Patterns are Redis's globs (* ? [abc] [^a-z] \x), case-insensitive
 * like key names; the reply is RESP2's flat array of name, value pairs, a
 * key matched by several patterns listed once. Redis's `save` and
 * `appendonly`, which redis-benchmark asks for and which recd does not have
 * (it persists nothing), answer "" and "no" to their exact names only, so
 * that `CONFIG GET *` lists recd's own keys.
 *
 * CONFIG SET key value [key value ...] goes through config_set_runtime():
 * only keys whose row carries the run-time flag, every value parsed by the
 * recd.conf parser, the cross-field rules and this daemon's own rule (a
 * shown-limit needs a tracker that counts shown items, which is decided at
 * start-up) checked on the whole candidate, and nothing changed unless all
 * of it passes.
 *
 * Threads: the running config is main()'s config_t, which the server holds
 * as s->cfg. Every run-time key is read on the loop thread only, when a
 * request starts or an event fires (the values a worker thread needs are
 * copied into its job, e.g. rec_query_t), and CONFIG SET runs on the loop
 * thread too: a new value takes effect for the next request, and no lock
 * is needed. The log level, which worker threads do read, is an atomic in
 * log.c, set here after the change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "log.h"
#include "server.h"
#include "tls.h"
#include "tracking.h"

/* Redis-compatible keys recd does not have, for tools that ask for them
 * (redis-benchmark fails its CONFIG fetch on an empty reply). */
static const struct {
  const char *name, *value;
} config_cmd__compat[] = {
    {"save", ""},       /* recd writes no snapshots */
    {"appendonly", "no"}, /* nor an append-only file */
};
#define CONFIG_CMD__NCOMPAT (sizeof config_cmd__compat / sizeof config_cmd__compat[0])

static unsigned char config_cmd__fold(unsigned char c, int nocase) {
  return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Whether the pattern element at p[0, plen) (a '?', a [class], a \escape or
 * a byte; not '*') matches the byte c; *adv is its length in the pattern.
 * An unterminated class runs to the end of the pattern. */
static int config_cmd__one(const char *p, size_t plen, unsigned char c, size_t *adv,
                           int nocase) {
  c = config_cmd__fold(c, nocase);
  if (p[0] == '?') {
    *adv = 1;
    return 1;
  }
  if (p[0] == '\\' && plen >= 2) {
    *adv = 2;
    return config_cmd__fold((unsigned char)p[1], nocase) == c;
  }
  if (p[0] != '[') {
    *adv = 1;
    return config_cmd__fold((unsigned char)p[0], nocase) == c;
  }
  size_t i = 1;
  int neg = 0, match = 0;
  if (i < plen && p[i] == '^') {
    neg = 1;
    i++;
  }
  for (; i < plen && p[i] != ']'; i++) {
    if (p[i] == '\\' && i + 1 < plen) {
      i++;
      match |= config_cmd__fold((unsigned char)p[i], nocase) == c;
    } else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
      unsigned char lo = config_cmd__fold((unsigned char)p[i], nocase);
      unsigned char hi = config_cmd__fold((unsigned char)p[i + 2], nocase);
      if (lo > hi) {
        unsigned char t = lo;
        lo = hi;
        hi = t;
      }
      match |= c >= lo && c <= hi;
      i += 2;
    } else {
      match |= config_cmd__fold((unsigned char)p[i], nocase) == c;
    }
  }
  *adv = i < plen ? i + 1 : plen; /* past the ']' */
  return neg ? !match : match;
}

/* Glob match of s[0, slen) against p[0, plen) with Redis's syntax.
 * Iterative, backtracking only to the last '*': O(plen * slen) at worst,
 * whatever the pattern (no recursion a client could deepen). */
static int config_glob_match(const char *p, size_t plen, const char *s, size_t slen, int nocase) {
  size_t pi = 0, si = 0, star_p = 0, star_s = 0;
  int star = 0;
  while (si < slen) {
    if (pi < plen && p[pi] == '*') {
      while (pi < plen && p[pi] == '*')
        pi++;
      if (pi == plen)
        return 1;
      star = 1;
      star_p = pi;
      star_s = si;
      continue;
    }
    size_t adv;
    if (pi < plen && config_cmd__one(p + pi, plen - pi, (unsigned char)s[si], &adv, nocase)) {
      pi += adv;
      si++;
      continue;
    }
    if (!star)
      return 0;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < plen && p[pi] == '*')
    pi++;
  return pi == plen;
}

static int config_cmd__matches(const resp_cmd_t *a, const char *name) {
  for (size_t j = 2; j < a->argc; j++)
    if (config_glob_match(a->argv[j], a->argvlen[j], name, strlen(name), 1))
      return 1;
  return 0;
}

/* The value of key i as CONFIG GET shows it (malloc'ed), or NULL when out
 * of memory. */
static char *config_cmd__value(const config_t *cfg, size_t i) {
  if (config_is_secret(i))
    return strdup("");
  int n = config_format(cfg, config_name(i), NULL, 0);
  if (n < 0)
    return strdup("");
  char *v = malloc((size_t)n + 1);
  if (v != NULL)
    config_format(cfg, config_name(i), v, (size_t)n + 1);
  return v;
}

static void config_cmd__get(client_t *c, reply_buf_t *r, const resp_cmd_t *a) {
  const config_t *cfg = c->srv->cfg;
  reply_defer_t h;
  size_t n = 0;
  if (reply_defer_array(r, &h) != 0)
    return;
  for (size_t i = 0; i < config_count(); i++) {
    if (!config_cmd__matches(a, config_name(i)))
      continue;
    char *v = config_cmd__value(cfg, i);
    reply_bulk_cstr(r, config_name(i));
    reply_bulk_cstr(r, v != NULL ? v : "");
    free(v);
    n += 2;
  }
  for (size_t k = 0; k < CONFIG_CMD__NCOMPAT; k++) {
    for (size_t j = 2; j < a->argc; j++) {
      if (strlen(config_cmd__compat[k].name) == a->argvlen[j] &&
          strcasecmp(config_cmd__compat[k].name, a->argv[j]) == 0) {
        reply_bulk_cstr(r, config_cmd__compat[k].name);
        reply_bulk_cstr(r, config_cmd__compat[k].value);
        n += 2;
        break;
      }
    }
  }
  reply_set_array_len(r, h, n);
}

/* What config_cmd__check sees and prepares. */
typedef struct config_cmd__set_ctx {
  const server_t *s;
  int tls_keys;     /* a tls-* file is among the keys set */
  tls_creds_t tls;  /* the credentials loaded from the candidate's files */
} config_cmd__set_ctx_t;

/* The rules only the running daemon knows: impressions carry shown counts
 * only when it was started with track-shown or a shown-limit (the tracker
 * is set up once), and without them a shown-limit would leave nothing
 * out; new TLS files must load (and the key match the certificate) before
 * anything changes, as Redis's CONFIG SET tls-cert-file does. Setting a
 * file to its current path reloads it: the way to pick up a certificate
 * renewed in place without a signal. */
static int config_cmd__check(const config_t *next, void *arg, char *errbuf) {
  config_cmd__set_ctx_t *x = arg;
  const server_t *s = x->s;
  if (next->shown_limit > 0 && (s->tracker == NULL || !tracker_counts_shown(s->tracker)))
    return recd_errf(errbuf, RECD_EINVAL,
                     "shown-limit needs shown counts in the impressions, which this recd was "
                     "started without: set track-shown yes (or a shown-limit) in its config "
                     "and restart");
  /* With a `user default` rule line the default user's passwords are the
   * rules' (acl.h): a requirepass beside them would be a second truth. */
  const acl_user_t *def = acl_users_find(&s->acl.users, "default", 7);
  if (next->requirepass[0] != '\0' && def != NULL && !def->implicit)
    return recd_errf(errbuf, RECD_EINVAL, "requirepass: the ACL rules define user default, "
                     "whose passwords they set; change them there (>password)");
  if (x->tls_keys && s->tls.cur.ctx != NULL)
    return tls_creds_load(next, &x->tls, errbuf);
  return 0;
}

static void config_cmd__set(client_t *c, reply_buf_t *r, const resp_cmd_t *a) {
  server_t *s = c->srv;
  /* main() owns the config as a modifiable object; the server holds it
   * const so that nothing else changes it by accident. This is the one
   * writer, on the loop thread (see the top of this file). */
  config_t *cfg = (config_t *)s->cfg;
  char err[RECD_ERRLEN];
  size_t n = (a->argc - 2) / 2;
  config_cmd__set_ctx_t x = {.s = s};
  for (size_t j = 0; j < n; j++)
    x.tls_keys |= strncasecmp(a->argv[2 + 2 * j], "tls-", 4) == 0;
  if (config_set_runtime(cfg, n, a->argv + 2, a->argvlen + 2, config_cmd__check, &x, err) != 0) {
    tls_creds_free(&x.tls);
    reply_errorf(r, "CONFIG SET: %s", err);
    return;
  }
  if (x.tls.ctx != NULL) {
    tls_server_install(&s->tls, &x.tls);
    s->tls.reloads_ok++;
    s->tls.last_reload_error[0] = '\0';
    log_notice("CONFIG SET: TLS certificate %s (serial %s) serves new connections; established "
               "connections keep theirs",
               cfg->tls_cert_file, s->tls.cur.serial);
  }
  for (size_t j = 0; j < n; j++) {
    const char *key = a->argv[2 + 2 * j];
    for (size_t i = 0; i < config_count(); i++) {
      if (strcasecmp(config_name(i), key) != 0)
        continue;
      char *v = config_is_secret(i) ? NULL : config_cmd__value(cfg, i);
      char show[4 * 64 + 1];
      log_sanitize(show, v != NULL ? v : "(redacted)", strlen(v != NULL ? v : "(redacted)"),
                   64);
      log_notice("CONFIG SET %s %s (client %llu, %s)", config_name(i), show,
                 (unsigned long long)c->id, c->addr);
      free(v);
    }
    if (strcasecmp(key, "loglevel") == 0)
      log_set_level(cfg->loglevel);
  }
  reply_simple(r, "OK");
}

/* CONFIG RESETSTAT: the counters of INFO (commandstats, stats, the
 * degraded answers by cause) start again from 0, as Redis's. Not
 * total_connections_received: client ids are drawn from it. */
static void config_cmd__resetstat(server_t *s) {
  uint64_t conns = s->st.total_connections;
  memset(&s->st, 0, sizeof s->st);
  s->st.total_connections = conns;
  memset(s->traps.degraded, 0, sizeof s->traps.degraded);
  s->traps.feedback_unknown_items = 0;
  s->traps.pref_bad_entries = 0;
  s->traps.pref_unknown_categories = 0;
  s->acl.denied_commands = 0;
  s->acl.denied_auth = 0;
  commands_reset_stats();
}

static const char *const config_cmd__help[] = {
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern> [<pattern> ...]",
    "    Return the values of the keys matching the glob-like patterns (secrets as \"\").",
    "SET <key> <value> [<key> <value> ...]",
    "    Change run-time keys, all or none (recd --help lists every key).",
    "RESETSTAT",
    "    Reset the statistics reported by INFO.",
    "REWRITE",
    "    Not supported: edit recd.conf.",
    "HELP",
    "    Print this help.",
};

void config_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r == NULL)
    return;
  const char *sub = a->argv[1];
  if (strcasecmp(sub, "get") == 0) {
    if (a->argc < 3)
      reply_error(r, "wrong number of arguments for 'config|get' command (CONFIG GET pattern "
                     "[pattern ...])");
    else
      config_cmd__get(c, r, a);
  } else if (strcasecmp(sub, "set") == 0) {
    if (a->argc < 4 || a->argc % 2 != 0)
      reply_error(r, "wrong number of arguments for 'config|set' command (CONFIG SET key value "
                     "[key value ...])");
    else
      config_cmd__set(c, r, a);
  } else if (strcasecmp(sub, "resetstat") == 0 && a->argc == 2) {
    config_cmd__resetstat(c->srv);
    reply_simple(r, "OK");
  } else if (strcasecmp(sub, "rewrite") == 0 && a->argc == 2) {
    reply_error(r, "CONFIG REWRITE is not supported by recd: edit recd.conf (recd "
                   "--test-config checks it) and restart, or CONFIG SET the run-time keys");
  } else if (strcasecmp(sub, "help") == 0 && a->argc == 2) {
    const size_t n = sizeof config_cmd__help / sizeof config_cmd__help[0];
    reply_array(r, n);
    for (size_t i = 0; i < n; i++)
      reply_simple(r, config_cmd__help[i]);
  } else {
    char tok[4 * 32 + 1];
    log_sanitize(tok, sub, a->argvlen[1], 32);
    reply_errorf(r, "unknown subcommand or wrong number of arguments for '%s'. Try CONFIG HELP.",
                 tok);
  }
}
