/* config.c - recd.conf and command-line options (see config.h).
 *
 * Everything is driven by config__defs[], one row per key, in the spirit of
 * Redis's static_configs[]: the row gives the key's type, its default (as the
 * text an operator would write in recd.conf, so defaults go through the very
 * parser that user values go through and cannot be out of range), its bounds
 * and where it lives in config_t. Parsing, formatting, --help and the dump
 * all walk the table; only the cross-field rules in config_validate() are
 * written out by hand. This file holds the table, parsing and setting;
 * config_validate.c the rules across keys, config_print.c the config as
 * text (--help, CONFIG GET, the dump); config_internal.h what they share.
 *
 * Every setter parses into a temporary first and touches the config only
 * once the new value is known to be good and fully allocated, so a bad value
 * or an allocation failure leaves the old value in place.
 */
#include "config.h"
#include "config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "acl.h"

/* ------------------------------------------------------------------------ */
/* The table                                                                 */

/* A Unix socket path must fit sun_path with its terminating NUL; checking it
 * here turns a confusing bind() failure at startup into a message that names
 * the key. */
#define CONFIG__SUN_MAX ((long long)sizeof(((struct sockaddr_un *)0)->sun_path) - 1)
/* Longest path accepted for files (Linux PATH_MAX less the NUL). */
#define CONFIG__PATH_MAX 4095LL
/* Passwords: far more than any real secret, small enough for one AUTH. */
#define CONFIG__PASS_MAX 1024LL

#define CONFIG__KB 1024LL
#define CONFIG__MB (1024LL * 1024)
#define CONFIG__GB (1024LL * 1024 * 1024)

static const char *const config__loglevels[] = {"debug", "verbose", "notice",
                                                "warning", NULL};
static const char *const config__unknown_items[] = {"count", "warn", NULL};
/* In config_tls_auth_t order. */
const char *const config__tls_auth[] = {"no", "yes", "optional", NULL};

#define CONFIG__ROW(name, type, field, deflt, min, max, names, flags, help) \
  {name, type, offsetof(config_t, field), deflt, min, max, names, flags, help}
#define CONFIG__INT_ROW(name, field, deflt, min, max, help) \
  CONFIG__ROW(name, CONFIG__INT, field, deflt, min, max, NULL, 0, help)
#define CONFIG__SIZE_ROW(name, field, deflt, min, max, help) \
  CONFIG__ROW(name, CONFIG__SIZE, field, deflt, min, max, NULL, 0, help)
#define CONFIG__STR_ROW(name, field, deflt, min, max, flags, help) \
  CONFIG__ROW(name, CONFIG__STRING, field, deflt, min, max, NULL, flags, help)
#define CONFIG__DBL_ROW(name, field, deflt, min, max, help) \
  CONFIG__ROW(name, CONFIG__DOUBLE, field, deflt, min, max, NULL, 0, help)
/* The same rows for keys CONFIG SET may change (CONFIG__RUNTIME). */
#define CONFIG__INT_RT_ROW(name, field, deflt, min, max, help) \
  CONFIG__ROW(name, CONFIG__INT, field, deflt, min, max, NULL, CONFIG__RUNTIME, help)
#define CONFIG__DBL_RT_ROW(name, field, deflt, min, max, help) \
  CONFIG__ROW(name, CONFIG__DOUBLE, field, deflt, min, max, NULL, CONFIG__RUNTIME, help)

/* Bounds policy: every limit has a floor that keeps the daemon usable (a
 * command must fit in the query buffer, a reply in the output buffer) and a
 * ceiling that keeps arithmetic on it safe (ms * 1000 in int64, sizes within
 * a 32-bit size_t). */
const config__def_t config__defs[] = {
  /* clients */
  CONFIG__INT_ROW("port", port, "7070", 0, 65535,
                  "TCP port for RESP clients; 0 = no TCP listener"),
  CONFIG__ROW("bind", CONFIG__ADDRS, bind, "127.0.0.1", 1, CONFIG_BIND_MAX, NULL, 0,
              "IPv4/IPv6 addresses the TCP port listens on, separated by blanks; "
              "0.0.0.0 or :: for all"),
  CONFIG__STR_ROW("unixsocket", unixsocket, "", 0, CONFIG__SUN_MAX, CONFIG__PATH,
                  "Unix socket for RESP clients; empty = none"),
  CONFIG__ROW("unixsocketperm", CONFIG__OCTAL, unixsocketperm, "700", 0, 0777, NULL, 0,
              "permissions of the Unix socket, octal (700 = owner only)"),
  CONFIG__STR_ROW("requirepass", requirepass, "", 0, CONFIG__PASS_MAX,
                  CONFIG__SECRET | CONFIG__RUNTIME,
                  "password clients must give with AUTH; empty = no AUTH"),
  CONFIG__ROW("user", CONFIG__USERS, users, "", 0, CONFIG_USER_MAX, NULL, 0,
              "repeatable, each appends: an ACL user, <name> on|off >password +@category "
              "-command ... (README, Security); passwords are kept as SHA-256; exclusive "
              "with aclfile; \"\" removes every user"),
  CONFIG__STR_ROW("aclfile", aclfile, "", 0, CONFIG__PATH_MAX, CONFIG__PATH,
                  "file of 'user' lines read at start and by ACL LOAD, instead of user "
                  "lines; empty = none"),
  CONFIG__INT_RT_ROW("maxclients", maxclients, "10000", 1, 1000000,
                  "most clients connected at once (keep below the fd limit)"),
  CONFIG__INT_RT_ROW("timeout", timeout, "0", 0, 31536000,
                  "close a client idle for this many seconds; 0 = never"),
  CONFIG__SIZE_ROW("max-request-bytes", max_request_bytes, "1mb", CONFIG__KB,
                   CONFIG__GB, "query buffer per client; a client sending a "
                   "longer request is closed"),
  CONFIG__INT_ROW("max-request-args", max_request_args, "4096", 16, 1048576,
                  "most arguments in one command"),
  CONFIG__SIZE_ROW("client-output-buffer-limit", client_output_buffer_limit, "32mb",
                   64 * CONFIG__KB, 2 * CONFIG__GB,
                   "pending reply bytes per client before it is closed "
                   "(one hard limit, not Redis's class/hard/soft triple)"),
  /* TLS (tls.h): redis.conf's names and meanings. The certificate files
   * are run-time keys: CONFIG SET loads them into a new context for new
   * connections (config_cmd.c), read once, copied by nothing. */
  CONFIG__INT_ROW("tls-port", tls_port, "0", 0, 65535,
                  "TLS port for RESP clients, on the bind addresses; 0 = no TLS"),
  CONFIG__STR_ROW("tls-cert-file", tls_cert_file, "", 0, CONFIG__PATH_MAX,
                  CONFIG__PATH | CONFIG__RUNTIME,
                  "server certificate, PEM (intermediates after it); reloaded on SIGHUP"),
  CONFIG__STR_ROW("tls-key-file", tls_key_file, "", 0, CONFIG__PATH_MAX,
                  CONFIG__PATH | CONFIG__RUNTIME,
                  "private key of tls-cert-file, PEM, without a passphrase"),
  CONFIG__STR_ROW("tls-ca-cert-file", tls_ca_cert_file, "", 0, CONFIG__PATH_MAX,
                  CONFIG__PATH | CONFIG__RUNTIME,
                  "CA certificates client certificates must chain to, PEM"),
  CONFIG__ROW("tls-auth-clients", CONFIG__ENUM, tls_auth_clients, "yes", 0, 2,
              config__tls_auth, 0,
              "client certificates: yes = required, optional = verified when given, "
              "no = not asked for"),
  CONFIG__STR_ROW("tls-protocols", tls_protocols, "TLSv1.2 TLSv1.3", 1, 64, 0,
                  "TLS versions accepted, blank-separated: TLSv1.2, TLSv1.3"),
  CONFIG__STR_ROW("tls-ciphersuites", tls_ciphersuites, "", 0, 1024, 0,
                  "TLS 1.3 cipher suites (OpenSSL's syntax, colon-separated); "
                  "empty = OpenSSL's default"),
  /* model and scoring */
  CONFIG__STR_ROW("model", model, "", 0, CONFIG__PATH_MAX, CONFIG__PATH,
                  "model file to serve; required unless variant lines name the models"),
  CONFIG__STR_ROW("models-dir", models_dir, "", 0, CONFIG__PATH_MAX, CONFIG__PATH,
                  "the only directory MODEL RELOAD <path> may load from; "
                  "empty = the directory of model"),
  CONFIG__ROW("model-watch", CONFIG__BOOL, model_watch, "no", 0, 1, NULL, 0,
              "reload when a model file is replaced (recd-train's atomic rename, "
              "rsync, a shared volume): watched by inotify and a stat every 2 s, "
              "debounced; a file that fails its checksum is not served"),
  CONFIG__INT_RT_ROW("history-limit", history_limit, "500", 1, 100000,
                  "strongest history items folded into a customer's vector"),
  CONFIG__INT_RT_ROW("max-count", max_count, "1000", 1, 100000,
                  "largest COUNT (and OFFSET + COUNT) a request may ask for"),
  CONFIG__ROW("exclude-history", CONFIG__BOOL, exclude_history, "yes", 0, 1, NULL,
              CONFIG__RUNTIME,
              "never recommend items already in the customer's history"),
  CONFIG__INT_ROW("workers", workers, "2", 1, 256, "scoring threads"),
  CONFIG__INT_ROW("scan-split-items", scan_split_items, "100000", 0, 2147483647,
                  "catalogue size from which one batch's int8 scan is split over all "
                  "workers (0 = always)"),
  CONFIG__INT_ROW("scan-loop-help-us", scan_loop_help_us, "3000", 0, 1000000,
                  "longest the event-loop thread scans a split batch of one or two "
                  "customers in the place of a worker (0 = never)"),
  CONFIG__INT_ROW("scan-prefilter-bytes", scan_prefilter_bytes, "33554432", 0, 2147483647,
                  "size of the int8 copy of the items from which one customer's scan "
                  "reads a 4-bit copy first (0 = always)"),
  /* Redis */
  CONFIG__STR_ROW("redis-host", redis_host, "127.0.0.1", 1, 255, 0,
                  "Redis host name or address"),
  CONFIG__INT_ROW("redis-port", redis_port, "6379", 1, 65535, "Redis TCP port"),
  CONFIG__STR_ROW("redis-socket", redis_socket, "", 0, CONFIG__SUN_MAX, CONFIG__PATH,
                  "Redis Unix socket; when set it is used instead of "
                  "redis-host and redis-port"),
  /* Redis Cluster (rcluster.h): the seeds lead to every master. */
  CONFIG__STR_ROW("redis-cluster-nodes", redis_cluster_nodes, "", 0, 4096, 0,
                  "seed nodes of a Redis Cluster, \"host:port host:port ...\" (any of its "
                  "nodes; the slot map names the masters); instead of redis-host/redis-port/"
                  "redis-socket; empty = one Redis"),
  CONFIG__INT_ROW("redis-cluster-refresh-ms", redis_cluster_refresh_ms, "5000", 100, 3600000,
                  "how often the cluster's slot map is read again (also at once on a MOVED, "
                  "and every 200 ms while a slot has no master)"),
  CONFIG__STR_ROW("redis-user", redis_user, "", 0, 255, 0,
                  "Redis 6+ ACL user recd authenticates as (AUTH redis-user "
                  "redis-password); empty = AUTH with redis-password alone"),
  CONFIG__STR_ROW("redis-password", redis_password, "", 0, CONFIG__PASS_MAX,
                  CONFIG__SECRET, "password recd gives Redis with AUTH; empty = none"),
  /* Sentinel (sentinel.h): the sentinels name the primary, redis-host and
   * redis-port are then not used. */
  CONFIG__STR_ROW("redis-sentinels", redis_sentinels, "", 0, 4096, 0,
                  "Redis Sentinels to ask for the primary, \"host:port host:port ...\" "
                  "(with redis-master-name; instead of redis-host/redis-port/redis-socket); "
                  "empty = no Sentinel"),
  CONFIG__STR_ROW("redis-master-name", redis_master_name, "", 0, 128, 0,
                  "the name the sentinels monitor the primary under (sentinel monitor "
                  "<name> ...); with redis-sentinels"),
  CONFIG__STR_ROW("redis-sentinel-password", redis_sentinel_password, "", 0,
                  CONFIG__PASS_MAX, CONFIG__SECRET,
                  "password recd gives the sentinels with AUTH (their requirepass); "
                  "empty = none"),
  CONFIG__STR_ROW("key-prefix", key_prefix, "recd:", 1, 128, 0,
                  "prefix of every Redis key recd reads and writes"),
  CONFIG__INT_RT_ROW("redis-timeout-ms", redis_timeout_ms, "50", 1, 60000,
                  "a request's deadline for its Redis round trip; after it the "
                  "answer is degraded (popular items)"),
  CONFIG__INT_RT_ROW("feedback-timeout-ms", feedback_timeout_ms, "1000", 1, 60000,
                  "FEEDBACK's deadline for its ZINCRBY; after it the client gets an error "
                  "and the interaction may or may not have been recorded"),
  CONFIG__INT_ROW("redis-reconnect-max-ms", redis_reconnect_max_ms, "2000", 10, 600000,
                  "cap of the exponential backoff between Redis reconnections"),
  CONFIG__INT_ROW("unavailable-refresh-ms", unavailable_refresh_ms, "2000", 100,
                  3600000, "how often the unavailable-items (and promoted-items) sets are "
                  "re-read"),
  /* storefront rules (DESIGN.md "Touchpoints and rules"); each has a
   * per-request option that overrides it */
  CONFIG__ROW("track-shown", CONFIG__BOOL, track_shown, "no", 0, 1, NULL, 0,
              "count in every impression how often the item was shown since its last "
              "outcome, for SHOWNLIMIT (implied by a shown-limit; costs Redis a read of "
              "the shown items per answer)"),
  CONFIG__INT_RT_ROW("shown-limit", shown_limit, "0", 0, 1000000,
                  "leave out items shown to the customer this many times within the "
                  "attribution window without a click, cart or purchase (0 = off; "
                  "SHOWNLIMIT n)"),
  CONFIG__INT_RT_ROW("max-per-category", max_per_category, "0", 0, 100000,
                  "at most this many items of one category per answer (0 = off; "
                  "MAXPERCATEGORY n)"),
  CONFIG__INT_RT_ROW("promote-slots", promote_slots, "0", 0, 100000,
                  "slots 2, 4, ... of an answer given to promoted items (0 = off; "
                  "PROMOTE n)"),
  CONFIG__ROW("one-per-group", CONFIG__BOOL, one_per_group, "no", 0, 1, NULL,
              CONFIG__RUNTIME,
              "at most one item of a product family per answer (ONEPERGROUP)"),
  CONFIG__ROW("exclude-bought-groups", CONFIG__BOOL, exclude_bought_groups, "no", 0, 1, NULL,
              CONFIG__RUNTIME, "leave out the product families of the customer's history"),
  /* experiments and outcomes */
  CONFIG__ROW("variant", CONFIG__VARIANTS, variants, "", 0, CONFIG_VARIANT_MAX, NULL,
              CONFIG__PATH,
              "repeatable, each appends: an A/B variant serving model-path to percent "
              "of the customers (the first is the control); percents sum to 100; "
              "exclusive with model; \"\" removes every variant"),
  CONFIG__STR_ROW("experiment-salt", experiment_salt, "recd", 1, CONFIG_VARIANT_NAME_MAX, 0,
                  "salt of the hash that assigns customers to variants (changing it "
                  "reshuffles them)"),
  CONFIG__ROW("track-impressions", CONFIG__BOOL, track_impressions, "yes", 0, 1, NULL, 0,
              "record the items of every answer to a customer as impressions "
              "(NOTRACK opts one request out)"),
  CONFIG__INT_ROW("attribution-window", attribution_window, "86400", 1, 2592000,
                  "seconds an impression is kept and can explain a later outcome"),
  CONFIG__INT_ROW("impressions-max", impressions_max, "200", 1, 100000,
                  "most impressions kept per customer"),
  CONFIG__DBL_RT_ROW("feedback-weight-purchase", feedback_weight_purchase, "1", 0,
                  1000000000, "history weight FEEDBACK ... TYPE purchase adds without "
                  "WEIGHT; 0 = counted as an outcome, history unchanged"),
  CONFIG__DBL_RT_ROW("feedback-weight-cart", feedback_weight_cart, "0.5", 0, 1000000000,
                  "history weight of FEEDBACK ... TYPE cart (0 = outcome only)"),
  CONFIG__DBL_RT_ROW("feedback-weight-click", feedback_weight_click, "0.1", 0, 1000000000,
                  "history weight of FEEDBACK ... TYPE click (0 = outcome only)"),
  /* DESIGN.md names a weight for every type; "not interested" can only
   * leave the history alone (implicit feedback has no negative weight), so
   * anything but 0 is refused rather than silently ignored. */
  CONFIG__DBL_ROW("feedback-weight-hide", feedback_weight_hide, "0", 0, 0,
                  "history weight of FEEDBACK ... TYPE hide: always 0 (a hide only adds the "
                  "item to the hidden set)"),
  CONFIG__DBL_ROW("feedback-weight-unhide", feedback_weight_unhide, "0", 0, 0,
                  "history weight of FEEDBACK ... TYPE unhide: always 0"),
  CONFIG__ROW("feedback-unknown-items", CONFIG__ENUM, feedback_unknown_items, "count", 0, 1,
              config__unknown_items, CONFIG__RUNTIME,
              "FEEDBACK for an item the model does not know: count (INFO) or warn (count and "
              "log once per item)"),
  CONFIG__INT_ROW("experiment-refresh-ms", experiment_refresh_ms, "2000", 100, 3600000,
                  "how often the experiment counters are re-read for INFO, /metrics "
                  "and the status page"),
  /* operations */
  CONFIG__INT_ROW("metrics-port", metrics_port, "0", 0, 65535,
                  "HTTP port for GET /metrics and /healthz; 0 = off"),
  CONFIG__ROW("metrics-tls", CONFIG__BOOL, metrics_tls, "no", 0, 1, NULL, 0,
              "serve metrics-port over HTTPS with tls-cert-file and tls-key-file (client "
              "certificates as tls-auth-clients says)"),
  CONFIG__ROW("loglevel", CONFIG__ENUM, loglevel, "notice", 0, 3, config__loglevels,
              CONFIG__RUNTIME,
              "least severe level logged"),
  CONFIG__STR_ROW("pidfile", pidfile, "", 0, CONFIG__PATH_MAX, CONFIG__PATH,
                  "file the daemon writes its pid to; empty = none"),
};

#define CONFIG__NDEFS (sizeof config__defs / sizeof config__defs[0])
const size_t config__ndefs = CONFIG__NDEFS;

/* Most tokens kept from one line: the key and the most values a key takes
 * (bind's addresses, or CONFIG_VARIANT_MAX variant triples on one line).
 * More are still counted (for the message) but not stored: config__apply()
 * checks the count before it reads a value, and refuses every count above
 * what is stored. */
#define CONFIG__MAX_VALUES0 \
  (CONFIG_BIND_MAX > 3 * CONFIG_VARIANT_MAX ? CONFIG_BIND_MAX : 3 * CONFIG_VARIANT_MAX)
/* a `user` line: the name and its rules */
#define CONFIG__MAX_VALUES \
  (CONFIG__MAX_VALUES0 > CONFIG_USER_TOK_MAX ? CONFIG__MAX_VALUES0 : CONFIG_USER_TOK_MAX)
#define CONFIG__MAX_TOK (1 + CONFIG__MAX_VALUES)


/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */

int config__isblank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

static char config__lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* ASCII case-insensitive equality of s[0, len) with the C string name; the
 * locale must not decide which keys exist. */
int config__name_eq(const char *s, size_t len, const char *name) {
  size_t n = strlen(name);
  if (len != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (config__lower(s[i]) != name[i])
      return 0;
  return 1;
}

const config__def_t *config__find(const char *key, size_t len) {
  for (size_t i = 0; i < CONFIG__NDEFS; i++)
    if (config__name_eq(key, len, config__defs[i].name))
      return &config__defs[i];
  return NULL;
}

static void *config__field(config_t *cfg, const config__def_t *d) {
  return (char *)cfg + d->offset;
}

const void *config__cfield(const config_t *cfg, const config__def_t *d) {
  return (const char *)cfg + d->offset;
}

static int config__hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Printable rendering of s[0, len) for messages: non-printable bytes and the
 * quote and backslash become escapes, and the text is cut after
 * CONFIG__SHOW_MAX bytes with "...". out holds at least 4 * CONFIG__SHOW_MAX
 * + 4 bytes. */
void config__show(const char *s, size_t len, char *out) {
  size_t o = 0;
  size_t n = len > CONFIG__SHOW_MAX ? CONFIG__SHOW_MAX : len;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\'' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      static const char hex[] = "0123456789abcdef";
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    } else {
      out[o++] = (char)c;
    }
  }
  if (n < len) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
}


/* Writes a size the way an operator would: the largest binary unit that
 * divides it exactly ("1gb", "64kb"), else plain bytes. */
void config__fmt_size(unsigned long long v, char *out, size_t size) {
  if (v != 0 && v % CONFIG__GB == 0)
    snprintf(out, size, "%llugb", v / CONFIG__GB);
  else if (v != 0 && v % CONFIG__MB == 0)
    snprintf(out, size, "%llumb", v / CONFIG__MB);
  else if (v != 0 && v % CONFIG__KB == 0)
    snprintf(out, size, "%llukb", v / CONFIG__KB);
  else
    snprintf(out, size, "%llu", v);
}

/* A bound of a number as an operator writes it: "0", "100", "1e9". */
void config__fmt_bound(long long v, char *out, size_t size) {
  long long m = v;
  int e = 0;
  while (m != 0 && m % 10 == 0) {
    m /= 10;
    e++;
  }
  if (e >= 6)
    snprintf(out, size, "%llde%d", m, e);
  else
    snprintf(out, size, "%lld", v);
}

/* "an integer in [0, 65535]" etc.: what a valid value of d looks like. */
void config__expect(const config__def_t *d, char *out, size_t size) {
  char lo[32], hi[32];
  switch (d->type) {
  case CONFIG__INT:
    snprintf(out, size, "an integer in [%lld, %lld]", d->min, d->max);
    break;
  case CONFIG__DOUBLE:
    config__fmt_bound(d->min, lo, sizeof lo);
    config__fmt_bound(d->max, hi, sizeof hi);
    snprintf(out, size, "a number in [%s, %s]", lo, hi);
    break;
  case CONFIG__VARIANTS:
    snprintf(out, size, "<name> <model-path> <percent>");
    break;
  case CONFIG__USERS:
    snprintf(out, size, "<name> [rule ...]");
    break;
  case CONFIG__SIZE:
    config__fmt_size((unsigned long long)d->min, lo, sizeof lo);
    config__fmt_size((unsigned long long)d->max, hi, sizeof hi);
    snprintf(out, size, "a size in [%s, %s]", lo, hi);
    break;
  case CONFIG__BOOL:
    snprintf(out, size, "yes or no");
    break;
  case CONFIG__ENUM: {
    size_t o = (size_t)snprintf(out, size, "one of");
    for (size_t i = 0; d->names[i] != NULL && o < size; i++)
      o += (size_t)snprintf(out + o, size - o, "%s %s", i ? "," : "", d->names[i]);
    break;
  }
  case CONFIG__OCTAL:
    snprintf(out, size, "an octal mode in [%llo, 0%llo]", (unsigned long long)d->min,
             (unsigned long long)d->max);
    break;
  case CONFIG__STRING:
    snprintf(out, size, "%lld to %lld bytes", d->min, d->max);
    break;
  case CONFIG__ADDRS:
    snprintf(out, size, "%lld to %lld IPv4 or IPv6 addresses", d->min, d->max);
    break;
  }
}

/* Formats "<where><label>: <message>" into errbuf and returns err. `where` is
 * "" or "file:line: ", `label` the key as the user spelled its kind ("port"
 * in a file, "--port" on the command line). */
static int config__fail(char *errbuf, int err, const char *where, const char *label,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int config__fail(char *errbuf, int err, const char *where, const char *label,
                        const char *fmt, ...) {
  char msg[RECD_ERRLEN];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return recd_errf(errbuf, err, "%s%s: %s", where, label, msg);
}

/* "expected <expectation>, got '<value>'", the one message of a bad value. */
static int config__bad_value(char *errbuf, int err, const char *where, const char *label,
                             const config__def_t *d, const char *v, size_t len) {
  char expect[128], show[CONFIG__SHOW_BUF];
  config__expect(d, expect, sizeof expect);
  config__show(v, len, show);
  return config__fail(errbuf, err, where, label, "expected %s, got '%s'", expect, show);
}

/* ------------------------------------------------------------------------ */
/* Value parsers: 0, RECD_EINVAL (not the syntax) or RECD_ERANGE (too big).  */

/* Decimal digits with an optional leading '-': no blanks, no '+', no hex, so
 * "70x0" or " 7070" are refused instead of silently read as 70 or 7070. */
static int config__parse_ll(const char *s, size_t len, long long *out) {
  size_t i = 0;
  int neg = 0;
  if (len > 0 && s[0] == '-') {
    neg = 1;
    i = 1;
  }
  if (i == len)
    return RECD_EINVAL;
  unsigned long long v = 0;
  int range = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return RECD_EINVAL;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (ULLONG_MAX - d) / 10)
      range = 1; /* keep scanning: a later non-digit is the better message */
    else
      v = v * 10 + d;
  }
  if (range || v > (unsigned long long)LLONG_MAX)
    return RECD_ERANGE;
  *out = neg ? -(long long)v : (long long)v;
  return 0;
}

/* Digits and an optional unit as in redis.conf: b, k (1000), kb (1024),
 * m, mb, g, gb, case-insensitive, no blank between. */
static int config__parse_size(const char *s, size_t len, unsigned long long *out) {
  size_t nd = 0;
  while (nd < len && s[nd] >= '0' && s[nd] <= '9')
    nd++;
  if (nd == 0)
    return RECD_EINVAL;
  static const struct { const char *unit; unsigned long long mul; } units[] = {
    {"", 1}, {"b", 1}, {"k", 1000}, {"kb", 1024}, {"m", 1000 * 1000},
    {"mb", 1024 * 1024}, {"g", 1000ULL * 1000 * 1000}, {"gb", 1024ULL * 1024 * 1024},
  };
  unsigned long long mul = 0;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (config__name_eq(s + nd, len - nd, units[i].unit))
      mul = units[i].mul;
  if (mul == 0)
    return RECD_EINVAL;
  long long n;
  int err = config__parse_ll(s, nd, &n);
  if (err != 0)
    return err;
  if ((unsigned long long)n > ULLONG_MAX / mul)
    return RECD_ERANGE;
  *out = (unsigned long long)n * mul;
  return 0;
}

/* Octal digits only: "700", "0700". */
static int config__parse_octal(const char *s, size_t len, unsigned long long *out) {
  if (len == 0)
    return RECD_EINVAL;
  unsigned long long v = 0;
  int range = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '7')
      return RECD_EINVAL;
    if (v > (ULLONG_MAX >> 3))
      range = 1;
    else
      v = (v << 3) | (unsigned)(s[i] - '0');
  }
  if (range)
    return RECD_ERANGE;
  *out = v;
  return 0;
}

/* A decimal number: an optional '-', digits with an optional fraction (at
 * least one digit in all: "1", "0.5", ".5", "5."), an optional exponent
 * ("1e9", "2.5E-2"). No blanks, '+', hex, inf or nan: strtod() would take
 * them, an operator's typo should not. s must be NUL-terminated at len
 * (every value given to config__apply is). The value is strtod()'s, so
 * correctly rounded; out of double range is RECD_ERANGE. */
static int config__parse_double(const char *s, size_t len, double *out) {
  size_t i = 0, digits = 0;
  if (i < len && s[i] == '-')
    i++;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
    digits++;
  if (i < len && s[i] == '.')
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
      digits++;
  if (digits == 0)
    return RECD_EINVAL;
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    size_t edigits = 0;
    i++;
    if (i < len && (s[i] == '+' || s[i] == '-'))
      i++;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
      edigits++;
    if (edigits == 0)
      return RECD_EINVAL;
  }
  if (i != len)
    return RECD_EINVAL;
  char *end;
  double v = strtod(s, &end);
  if (end != s + len) /* a locale with another decimal point */
    return RECD_EINVAL;
  if (!isfinite(v))
    return RECD_ERANGE;
  *out = v + 0.0; /* -0 is 0 */
  return 0;
}

/* The shortest text that strtod() reads back as v: integers in full
 * ("1000000000", not "1e+09"), else %.<p>g with the least p that is exact. */
void config__fmt_double(double v, char *out, size_t size) {
  if (v > -1e15 && v < 1e15 && v == (double)(long long)v) {
    snprintf(out, size, "%.0f", v);
    return;
  }
  for (int p = 1; p <= 17; p++) {
    snprintf(out, size, "%.*g", p, v);
    if (strtod(out, NULL) == v)
      return;
  }
}

/* A variant name: 1 to CONFIG_VARIANT_NAME_MAX bytes of [A-Za-z0-9_.:-], so
 * that it can be a field of a Redis key and of the counters' hash fields
 * ('|' is their separator) without escaping. */
int config__variant_name_ok(const char *s, size_t len) {
  if (len == 0 || len > CONFIG_VARIANT_NAME_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == ':' || c == '-'))
      return 0;
  }
  return 1;
}

/* Binary form of an IP literal, to find the same address written twice. */
typedef struct config__ip {
  int family;
  unsigned char bytes[16];
} config__ip_t;

static int config__parse_ip(const char *s, size_t len, config__ip_t *ip) {
  /* inet_pton wants a C string; a literal is short, and an embedded NUL
   * must not let "127.0.0.1\0junk" pass. */
  char tmp[64];
  if (len == 0 || len >= sizeof tmp || memchr(s, '\0', len) != NULL)
    return RECD_EINVAL;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  memset(ip, 0, sizeof *ip);
  if (inet_pton(AF_INET, tmp, ip->bytes) == 1) {
    ip->family = AF_INET;
    return 0;
  }
  if (inet_pton(AF_INET6, tmp, ip->bytes) == 1) {
    ip->family = AF_INET6;
    return 0;
  }
  return RECD_EINVAL;
}

/* ------------------------------------------------------------------------ */
/* Setting a key                                                             */

static void config__free_addrs(config_addrs_t *a) {
  for (int i = 0; i < a->n && i < CONFIG_BIND_MAX; i++)
    free(a->addr[i]);
  memset(a, 0, sizeof *a);
}

static void config__free_variants(config_variants_t *vs) {
  for (size_t i = 0; i < vs->n && i < CONFIG_VARIANT_MAX; i++) {
    free(vs->name[i]);
    free(vs->path[i]);
  }
  memset(vs, 0, sizeof *vs);
}

static void config__free_users(config_users_t *us) {
  for (size_t i = 0; i < us->n && i < CONFIG_USER_MAX; i++)
    free(us->line[i]);
  memset(us, 0, sizeof *us);
}

/* The name of a stored user line (up to its first blank). */
static size_t config__user_name_len(const char *line) {
  return strcspn(line, " ");
}

/* Appends the users of v to the list of d, or, with `replace`, makes them
 * the whole list; the one value "" empties it. One user per line; a value
 * may hold several, separated by a ";" token (the form config_format
 * writes, so that CONFIG GET user reads back). Each is checked by the ACL
 * parser (acl.h) and stored as acl_user_describe() writes it, passwords
 * hashed. All or nothing. */
static int config__apply_users(config_t *cfg, const config__def_t *d, int n,
                               const char *const *v, const size_t *len, int replace,
                               const char *where, const char *label, char *errbuf) {
  config_users_t *us = config__field(cfg, d);
  if (n == 1 && len[0] == 0) {
    config__free_users(us);
    return 0;
  }
  if (n == 0)
    return config__fail(errbuf, RECD_EINVAL, where, label, "expected <name> [rule ...], got "
                        "nothing (write \"\" to remove every user)");
  if (n > CONFIG_USER_TOK_MAX)
    return config__fail(errbuf, RECD_EINVAL, where, label, "at most %d values (the name and "
                        "its rules), got %d (use an aclfile for longer rules)",
                        CONFIG_USER_TOK_MAX, n);
  char *fresh[CONFIG_USER_MAX];
  size_t k = 0, old = replace ? 0 : us->n;
  int err = 0;
  for (int i = 0; i < n && err == 0;) {
    int j = i;
    while (j < n && !(len[j] == 1 && v[j][0] == ';'))
      j++;
    if (j == i) {
      err = config__fail(errbuf, RECD_EINVAL, where, label, "expected <name> [rule ...] "
                         "around ';'");
      break;
    }
    if (old + k >= (size_t)d->max) {
      err = config__fail(errbuf, RECD_EINVAL, where, label, "at most %lld users (use an "
                         "aclfile for more)", d->max);
      break;
    }
    acl_user_t u;
    char msg[RECD_ERRLEN];
    err = acl_user_parse(&u, j - i, v + i, len + i, msg);
    if (err != 0) {
      err = where[0] != '\0' ? recd_errf(errbuf, err, "%s%.200s", where, msg)
                             : recd_errf(errbuf, err, "%s: %.200s", label, msg);
      break;
    }
    size_t nlen = strlen(u.name);
    int dup = 0;
    for (size_t t = 0; t < old + k && !dup; t++) {
      const char *line = t < old ? us->line[t] : fresh[t - old];
      dup = config__user_name_len(line) == nlen && memcmp(line, u.name, nlen) == 0;
    }
    if (dup) {
      err = config__fail(errbuf, RECD_EINVAL, where, label, "user '%s' is defined twice",
                         u.name);
    } else if ((fresh[k] = acl_user_describe(&u)) == NULL) {
      err = config__fail(errbuf, RECD_ENOMEM, where, label, "out of memory");
    } else {
      /* The stored line must read back as one line too (a dump): its
       * tokens, passwords written as digests, within the same limit. */
      int words = 1;
      for (const char *q = fresh[k]; *q; q++)
        words += *q == ' ';
      if (words > CONFIG_USER_TOK_MAX) {
        free(fresh[k]);
        err = config__fail(errbuf, RECD_EINVAL, where, label, "user '%s': more than %d "
                           "values once written out (use an aclfile)", u.name,
                           CONFIG_USER_TOK_MAX);
      } else {
        k++;
      }
    }
    acl_user_free(&u);
    i = j + 1;
  }
  if (err != 0) {
    for (size_t t = 0; t < k; t++)
      free(fresh[t]);
    return err;
  }
  if (replace)
    config__free_users(us);
  for (size_t t = 0; t < k; t++)
    us->line[us->n++] = fresh[t];
  return 0;
}

/* Appends the n / 3 variants of v (name, path, percent, ...) to the list of
 * d, or, with `replace`, makes them the whole list; the one value "" empties
 * it. All or nothing: every triple is checked and copied before the list
 * changes. Counts are checked before any value is read (see
 * CONFIG__MAX_TOK). */
static int config__apply_variants(config_t *cfg, const config__def_t *d, int n,
                                  const char *const *v, const size_t *len, int replace,
                                  const char *where, const char *label, char *errbuf) {
  config_variants_t *vs = config__field(cfg, d);
  if (n == 1 && len[0] == 0) {
    config__free_variants(vs);
    return 0;
  }
  /* Replacing checks the new triples against none of the old ones. */
  config_variants_t none;
  memset(&none, 0, sizeof none);
  const config_variants_t *old = replace ? &none : vs;
  if (n == 0 || n % 3 != 0)
    return config__fail(errbuf, RECD_EINVAL, where, label,
                        "expected <name> <model-path> <percent>, got %d value%s%s", n,
                        n == 1 ? "" : "s",
                        n == 0 ? " (write \"\" to remove every variant)" : "");
  size_t k = (size_t)n / 3;
  if (old->n > (size_t)d->max || k > (size_t)d->max - old->n)
    return config__fail(errbuf, RECD_EINVAL, where, label, "at most %lld variants, got %zu",
                        d->max, old->n + k);
  char show[CONFIG__SHOW_BUF];
  unsigned percent[CONFIG_VARIANT_MAX];
  for (size_t t = 0; t < k; t++) {
    const char *name = v[3 * t], *path = v[3 * t + 1], *pct = v[3 * t + 2];
    size_t nlen = len[3 * t], plen = len[3 * t + 1], clen = len[3 * t + 2];
    if (!config__variant_name_ok(name, nlen)) {
      config__show(name, nlen, show);
      return config__fail(errbuf, nlen > CONFIG_VARIANT_NAME_MAX ? RECD_ERANGE : RECD_EINVAL,
                          where, label, "expected a name of 1 to %d bytes of "
                          "[A-Za-z0-9_.:-], got '%s'", CONFIG_VARIANT_NAME_MAX, show);
    }
    int dup = 0;
    for (size_t j = 0; j < old->n && !dup; j++)
      dup = old->name[j] != NULL && strlen(old->name[j]) == nlen &&
            memcmp(old->name[j], name, nlen) == 0;
    for (size_t j = 0; j < t && !dup; j++)
      dup = len[3 * j] == nlen && memcmp(v[3 * j], name, nlen) == 0;
    if (dup) {
      config__show(name, nlen, show);
      return config__fail(errbuf, RECD_EINVAL, where, label,
                          "variant '%s' is given twice", show);
    }
    if (memchr(path, '\0', plen) != NULL)
      return config__fail(errbuf, RECD_EINVAL, where, label,
                          "model path of '%s' contains a NUL byte", name);
    if (plen == 0)
      return config__fail(errbuf, RECD_EINVAL, where, label,
                          "model path of '%s' must not be empty", name);
    if ((long long)plen > CONFIG__PATH_MAX)
      return config__fail(errbuf, RECD_ERANGE, where, label,
                          "model path of '%s' longer than %lld bytes", name,
                          CONFIG__PATH_MAX);
    long long ll;
    int err = config__parse_ll(pct, clen, &ll);
    if (err == 0 && (ll < 0 || ll > 100))
      err = RECD_ERANGE;
    if (err != 0) {
      config__show(pct, clen, show);
      return config__fail(errbuf, err, where, label,
                          "percent of '%s': expected an integer in [0, 100], got '%s'", name,
                          show);
    }
    percent[t] = (unsigned)ll;
  }
  char *names[CONFIG_VARIANT_MAX] = {NULL}, *paths[CONFIG_VARIANT_MAX] = {NULL};
  for (size_t t = 0; t < k; t++) {
    names[t] = malloc(len[3 * t] + 1);
    paths[t] = names[t] != NULL ? malloc(len[3 * t + 1] + 1) : NULL;
    if (paths[t] == NULL) {
      for (size_t j = 0; j <= t; j++) {
        free(names[j]);
        free(paths[j]);
      }
      return config__fail(errbuf, RECD_ENOMEM, where, label, "out of memory");
    }
    memcpy(names[t], v[3 * t], len[3 * t] + 1);
    memcpy(paths[t], v[3 * t + 1], len[3 * t + 1] + 1);
  }
  if (replace)
    config__free_variants(vs);
  for (size_t t = 0; t < k; t++) {
    vs->name[vs->n] = names[t];
    vs->path[vs->n] = paths[t];
    vs->percent[vs->n] = percent[t];
    vs->n++;
  }
  return 0;
}

/* Applies n values v[i] (v[i][0, len[i]), NUL-terminated at len[i]) to key
 * d. Only `bind` and `variant` take several values; every other key takes
 * exactly one. The count is checked before any value is read, so v may hold
 * fewer than n values when n is too large for d. The field changes only on
 * success. */
static int config__apply(config_t *cfg, const config__def_t *d, int n,
                         const char *const *v, const size_t *len, const char *where,
                         const char *label, char *errbuf) {
  if (d->type == CONFIG__VARIANTS)
    return config__apply_variants(cfg, d, n, v, len, 0, where, label, errbuf);
  if (d->type == CONFIG__USERS)
    return config__apply_users(cfg, d, n, v, len, 0, where, label, errbuf);
  if (d->type == CONFIG__ADDRS) {
    if (n < d->min || n > d->max)
      return config__fail(errbuf, RECD_EINVAL, where, label,
                          "expected %lld to %lld addresses, got %d", d->min, d->max, n);
  } else if (n != 1) {
    return config__fail(errbuf, RECD_EINVAL, where, label, "expected 1 value, got %d%s",
                        n, n == 0 && d->type == CONFIG__STRING
                               ? " (write \"\" for an empty value)" : "");
  }
  void *field = config__field(cfg, d);
  long long ll;
  unsigned long long ull;
  int err;
  switch (d->type) {
  case CONFIG__INT:
    err = config__parse_ll(v[0], len[0], &ll);
    if (err == 0 && (ll < d->min || ll > d->max))
      err = RECD_ERANGE;
    if (err != 0)
      return config__bad_value(errbuf, err, where, label, d, v[0], len[0]);
    *(int *)field = (int)ll;
    return 0;
  case CONFIG__DOUBLE: {
    double x;
    err = config__parse_double(v[0], len[0], &x);
    if (err == 0 && (x < (double)d->min || x > (double)d->max))
      err = RECD_ERANGE;
    if (err != 0)
      return config__bad_value(errbuf, err, where, label, d, v[0], len[0]);
    *(double *)field = x;
    return 0;
  }
  case CONFIG__SIZE:
    err = config__parse_size(v[0], len[0], &ull);
    if (err == 0 && (ull < (unsigned long long)d->min || ull > (unsigned long long)d->max))
      err = RECD_ERANGE;
    if (err != 0)
      return config__bad_value(errbuf, err, where, label, d, v[0], len[0]);
    *(size_t *)field = (size_t)ull;
    return 0;
  case CONFIG__OCTAL:
    err = config__parse_octal(v[0], len[0], &ull);
    if (err == 0 && (ull < (unsigned long long)d->min || ull > (unsigned long long)d->max))
      err = RECD_ERANGE;
    if (err != 0)
      return config__bad_value(errbuf, err, where, label, d, v[0], len[0]);
    *(unsigned *)field = (unsigned)ull;
    return 0;
  case CONFIG__BOOL:
    if (config__name_eq(v[0], len[0], "yes"))
      *(bool *)field = true;
    else if (config__name_eq(v[0], len[0], "no"))
      *(bool *)field = false;
    else
      return config__bad_value(errbuf, RECD_EINVAL, where, label, d, v[0], len[0]);
    return 0;
  case CONFIG__ENUM:
    for (int i = 0; d->names[i] != NULL; i++) {
      if (config__name_eq(v[0], len[0], d->names[i])) {
        *(int *)field = i;
        return 0;
      }
    }
    return config__bad_value(errbuf, RECD_EINVAL, where, label, d, v[0], len[0]);
  case CONFIG__STRING: {
    /* Strings are handed to C APIs (open, AUTH through hiredis's %s, ...)
     * where a NUL would silently cut them. */
    if (memchr(v[0], '\0', len[0]) != NULL)
      return config__fail(errbuf, RECD_EINVAL, where, label, "contains a NUL byte");
    if ((long long)len[0] < d->min)
      return config__fail(errbuf, RECD_EINVAL, where, label, "must not be empty");
    if ((long long)len[0] > d->max)
      return config__fail(errbuf, RECD_ERANGE, where, label, "longer than %lld bytes%s",
                          d->max, d->max == CONFIG__SUN_MAX && (d->flags & CONFIG__PATH)
                                      ? ", the limit of a Unix socket path" : "");
    char *copy = malloc(len[0] + 1);
    if (copy == NULL)
      return config__fail(errbuf, RECD_ENOMEM, where, label, "out of memory");
    memcpy(copy, v[0], len[0]);
    copy[len[0]] = '\0';
    free(*(char **)field);
    *(char **)field = copy;
    return 0;
  }
  case CONFIG__ADDRS: {
    config__ip_t ips[CONFIG_BIND_MAX];
    for (int i = 0; i < n; i++) {
      char show[CONFIG__SHOW_BUF];
      if (config__parse_ip(v[i], len[i], &ips[i]) != 0) {
        config__show(v[i], len[i], show);
        return config__fail(errbuf, RECD_EINVAL, where, label,
                            "expected an IPv4 or IPv6 address, got '%s'", show);
      }
      for (int j = 0; j < i; j++) {
        if (ips[j].family == ips[i].family && memcmp(ips[j].bytes, ips[i].bytes, 16) == 0) {
          config__show(v[i], len[i], show);
          return config__fail(errbuf, RECD_EINVAL, where, label,
                              "address '%s' is listed twice", show);
        }
      }
    }
    config_addrs_t fresh;
    memset(&fresh, 0, sizeof fresh);
    for (int i = 0; i < n; i++) {
      fresh.addr[i] = malloc(len[i] + 1);
      if (fresh.addr[i] == NULL) {
        fresh.n = i;
        config__free_addrs(&fresh);
        return config__fail(errbuf, RECD_ENOMEM, where, label, "out of memory");
      }
      memcpy(fresh.addr[i], v[i], len[i]);
      fresh.addr[i][len[i]] = '\0';
    }
    fresh.n = n;
    config__free_addrs((config_addrs_t *)field);
    *(config_addrs_t *)field = fresh;
    return 0;
  }
  case CONFIG__VARIANTS:
  case CONFIG__USERS:
    break; /* handled above */
  }
  return RECD_EINVAL; /* not reached: every type is handled above */
}

static int config__split(const char *p, const char *end, char *out, const char **tok,
                         size_t *tlen, int *ntok, const char **why);

/* `variant` from the command line or config_set(): the value is split into
 * tokens as a recd.conf line is (quotes and escapes included, so a model
 * path with blanks can be given, and config_format()'s output reads back);
 * the empty value is the one empty token that removes every variant. */
static int config__apply_variants_text(config_t *cfg, const config__def_t *d,
                                       const char *value, size_t vlen, const char *label,
                                       char *errbuf) {
  if (vlen == 0)
    return config__apply(cfg, d, 1, &value, &vlen, "", label, errbuf);
  char *scratch = malloc(vlen + 1);
  if (scratch == NULL)
    return config__fail(errbuf, RECD_ENOMEM, "", label, "out of memory");
  const char *tok[CONFIG__MAX_TOK];
  size_t tlen[CONFIG__MAX_TOK];
  int n;
  const char *why;
  int err = config__split(value, value + vlen, scratch, tok, tlen, &n, &why) != 0
                ? config__fail(errbuf, RECD_EFORMAT, "", label, "%s", why)
                : config__apply(cfg, d, n, tok, tlen, "", label, errbuf);
  free(scratch);
  return err;
}

/* `user` from the command line or config_set(): the value is cut at its
 * ";" tokens (outside quotes) into one user each, the form config_format
 * writes for several users, and each is split and applied as a recd.conf
 * line is; all or nothing (the users appended are taken back on error).
 * Cutting first keeps each piece within the token limit of one line. */
static int config__apply_users_text(config_t *cfg, const config__def_t *d, const char *value,
                                    size_t vlen, const char *label, char *errbuf) {
  if (vlen == 0)
    return config__apply(cfg, d, 1, &value, &vlen, "", label, errbuf);
  config_users_t *us = config__field(cfg, d);
  size_t before = us->n, start = 0;
  int err = 0;
  char q = 0;
  for (size_t i = 0; i <= vlen && err == 0; i++) {
    if (i < vlen && q != 0) { /* inside quotes: a ';' is data */
      if (value[i] == '\\' && i + 1 < vlen)
        i++;
      else if (value[i] == q)
        q = 0;
      continue;
    }
    if (i < vlen && (value[i] == '"' || value[i] == '\'')) {
      q = value[i];
      continue;
    }
    int cut = i == vlen;
    if (!cut && value[i] == ';' && (i == 0 || config__isblank(value[i - 1])) &&
        (i + 1 == vlen || config__isblank(value[i + 1])))
      cut = 1;
    if (!cut)
      continue;
    /* "" would remove every user: an empty piece is a mistake here */
    err = i == start ? config__fail(errbuf, RECD_EINVAL, "", label, "expected <name> [rule "
                                    "...] around ';'")
                     : config__apply_variants_text(cfg, d, value + start, i - start, label,
                                                   errbuf);
    start = i + 1;
  }
  if (err != 0)
    while (us->n > before)
      free(us->line[--us->n]);
  return err;
}

/* Applies the text `value` to d the command-line way: verbatim, except that
 * a multi-value key is split: bind on blanks, variant into tokens. */
static int config__apply_text(config_t *cfg, const config__def_t *d, const char *value,
                              const char *label, char *errbuf) {
  size_t vlen = strlen(value);
  if (d->type == CONFIG__USERS)
    return config__apply_users_text(cfg, d, value, vlen, label, errbuf);
  if (d->type == CONFIG__VARIANTS)
    return config__apply_variants_text(cfg, d, value, vlen, label, errbuf);
  if (d->type != CONFIG__ADDRS)
    return config__apply(cfg, d, 1, &value, &vlen, "", label, errbuf);
  char *copy = malloc(vlen + 1);
  if (copy == NULL)
    return config__fail(errbuf, RECD_ENOMEM, "", label, "out of memory");
  memcpy(copy, value, vlen + 1);
  const char *tok[CONFIG_BIND_MAX];
  size_t tlen[CONFIG_BIND_MAX];
  int n = 0;
  char *p = copy;
  for (;;) {
    while (*p != '\0' && config__isblank(*p))
      p++;
    if (*p == '\0')
      break;
    char *start = p;
    while (*p != '\0' && !config__isblank(*p))
      p++;
    if (n < CONFIG_BIND_MAX) {
      tok[n] = start;
      tlen[n] = (size_t)(p - start);
    }
    n++;
    if (*p != '\0')
      *p++ = '\0';
  }
  int err = n > CONFIG_BIND_MAX
                ? config__fail(errbuf, RECD_EINVAL, "", label,
                               "expected %lld to %lld addresses, got %d", d->min, d->max, n)
                : config__apply(cfg, d, n, tok, tlen, "", label, errbuf);
  free(copy);
  return err;
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */

int config_init(config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < CONFIG__NDEFS; i++) {
    const config__def_t *d = &config__defs[i];
    /* A default that fails to parse is a bug in the table that the unit
     * tests catch; ENOMEM is the only error a correct table can produce. */
    int err = config__apply_text(cfg, d, d->deflt, d->name, NULL);
    if (err != 0) {
      config_free(cfg);
      return err;
    }
  }
  return 0;
}

void config_free(config_t *cfg) {
  if (cfg == NULL)
    return;
  for (size_t i = 0; i < CONFIG__NDEFS; i++) {
    const config__def_t *d = &config__defs[i];
    if (d->type == CONFIG__STRING)
      free(*(char **)config__field(cfg, d));
    else if (d->type == CONFIG__ADDRS)
      config__free_addrs((config_addrs_t *)config__field(cfg, d));
    else if (d->type == CONFIG__VARIANTS)
      config__free_variants((config_variants_t *)config__field(cfg, d));
    else if (d->type == CONFIG__USERS)
      config__free_users((config_users_t *)config__field(cfg, d));
  }
  memset(cfg, 0, sizeof *cfg);
}

int config_set(config_t *cfg, const char *key, const char *value, char *errbuf) {
  const config__def_t *d = config__find(key, strlen(key));
  if (d == NULL) {
    char show[CONFIG__SHOW_BUF];
    config__show(key, strlen(key), show);
    return recd_errf(errbuf, RECD_ENOTFOUND, "unknown key '%s'", show);
  }
  return config__apply_text(cfg, d, value, d->name, errbuf);
}

/* Splits one line [p, end) into tokens the way sdssplitargs() does, writing
 * the unescaped bytes to out (each token NUL-terminated; out needs
 * end - p + 1 bytes: a token never grows, and every token but the last is
 * followed by at least one blank that pays for its terminator). The first
 * CONFIG__MAX_TOK tokens are stored in tok/tlen; *ntok counts them all.
 * Returns 0 or RECD_EFORMAT with *why set. */
static int config__split(const char *p, const char *end, char *out, const char **tok,
                         size_t *tlen, int *ntok, const char **why) {
  int n = 0;
  char *o = out;
  for (;;) {
    while (p < end && config__isblank(*p))
      p++;
    if (p == end)
      break;
    char *start = o;
    int inq = 0, insq = 0;
    for (;;) {
      if (inq) {
        if (p == end) {
          *why = "unterminated quoted string";
          return RECD_EFORMAT;
        }
        if (*p == '\\' && end - p >= 4 && p[1] == 'x' && config__hexval(p[2]) >= 0 &&
            config__hexval(p[3]) >= 0) {
          *o++ = (char)(config__hexval(p[2]) * 16 + config__hexval(p[3]));
          p += 4;
        } else if (*p == '\\' && end - p >= 2) {
          char c = p[1];
          switch (c) {
          case 'n': c = '\n'; break;
          case 'r': c = '\r'; break;
          case 't': c = '\t'; break;
          case 'b': c = '\b'; break;
          case 'a': c = '\a'; break;
          default: break; /* \" \\ and any other \c stand for c */
          }
          *o++ = c;
          p += 2;
        } else if (*p == '"') {
          p++;
          /* "a"b would be ambiguous; Redis refuses it, and so do we. */
          if (p < end && !config__isblank(*p)) {
            *why = "closing quote must be followed by a blank";
            return RECD_EFORMAT;
          }
          break;
        } else {
          *o++ = *p++;
        }
      } else if (insq) {
        if (p == end) {
          *why = "unterminated quoted string";
          return RECD_EFORMAT;
        }
        if (*p == '\\' && end - p >= 2 && p[1] == '\'') {
          *o++ = '\'';
          p += 2;
        } else if (*p == '\'') {
          p++;
          if (p < end && !config__isblank(*p)) {
            *why = "closing quote must be followed by a blank";
            return RECD_EFORMAT;
          }
          break;
        } else {
          *o++ = *p++;
        }
      } else {
        if (p == end || config__isblank(*p))
          break;
        if (*p == '"') {
          inq = 1;
          p++;
        } else if (*p == '\'') {
          insq = 1;
          p++;
        } else {
          *o++ = *p++;
        }
      }
    }
    if (n < CONFIG__MAX_TOK) {
      tok[n] = start;
      tlen[n] = (size_t)(o - start);
    }
    *o++ = '\0';
    n++;
  }
  *ntok = n;
  return 0;
}

int config_load_buffer(config_t *cfg, const char *buf, size_t len, const char *name,
                       char *errbuf) {
  if (len == SIZE_MAX)
    return recd_errf(errbuf, RECD_ERANGE, "%s: too large", name);
  /* One scratch buffer serves every line: a line's tokens fit in its length
   * plus one byte (see config__split). */
  char *scratch = malloc(len + 1);
  if (scratch == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "%s: out of memory", name);
  size_t pos = 0, lineno = 0;
  int err = 0, variant_seen = 0, user_seen = 0;
  if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
    pos = 3;
  while (pos < len && err == 0) {
    const char *line = buf + pos;
    const char *nl = memchr(line, '\n', len - pos);
    const char *end = nl != NULL ? nl : buf + len;
    pos = (size_t)(end - buf) + (nl != NULL);
    lineno++;

    const char *p = line;
    while (p < end && config__isblank(*p))
      p++;
    if (p == end || *p == '#')
      continue;

    char where[RECD_ERRLEN];
    snprintf(where, sizeof where, "%s:%zu: ", name, lineno);
    const char *tok[CONFIG__MAX_TOK];
    size_t tlen[CONFIG__MAX_TOK];
    int n;
    const char *why;
    if (config__split(p, end, scratch, tok, tlen, &n, &why) != 0) {
      err = recd_errf(errbuf, RECD_EFORMAT, "%s%s", where, why);
      break;
    }
    const config__def_t *d = config__find(tok[0], tlen[0]);
    if (d == NULL) {
      char show[CONFIG__SHOW_BUF];
      config__show(tok[0], tlen[0], show);
      err = recd_errf(errbuf, RECD_ENOTFOUND, "%sunknown key '%s'", where, show);
      break;
    }
    /* Beyond CONFIG__MAX_TOK the tokens are counted, not stored; config__apply
     * refuses such a count before it reads a value. The first variant line
     * of a file replaces the list, as the first `save` line of redis.conf
     * does: the file then says what the variants are whatever the config
     * held, so loading it twice, or a dump over any config, gives the same
     * list. */
    if (d->type == CONFIG__VARIANTS)
      err = config__apply_variants(cfg, d, n - 1, tok + 1, tlen + 1, !variant_seen, where,
                                   d->name, errbuf);
    else if (d->type == CONFIG__USERS) /* the same rule as variant's */
      err = config__apply_users(cfg, d, n - 1, tok + 1, tlen + 1, !user_seen, where, d->name,
                                errbuf);
    else
      err = config__apply(cfg, d, n - 1, tok + 1, tlen + 1, where, d->name, errbuf);
    variant_seen |= d->type == CONFIG__VARIANTS;
    user_seen |= d->type == CONFIG__USERS;
  }
  free(scratch);
  return err;
}

int config_load_file(config_t *cfg, const char *path, char *errbuf) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return recd_errf(errbuf, RECD_EIO, "cannot open config file '%s': %s", path,
                     strerror(errno));
  /* Read one byte past the cap to tell "exactly the cap" from "too large"
   * without trusting a size from stat (the file may be a pipe). */
  char *buf = malloc((size_t)CONFIG_FILE_MAX + 1);
  if (buf == NULL) {
    fclose(fp);
    return recd_errf(errbuf, RECD_ENOMEM, "%s: out of memory", path);
  }
  size_t len = fread(buf, 1, (size_t)CONFIG_FILE_MAX + 1, fp);
  int rerr = ferror(fp) ? errno : 0;
  fclose(fp);
  int err;
  if (rerr != 0)
    err = recd_errf(errbuf, RECD_EIO, "cannot read config file '%s': %s", path,
                    strerror(rerr));
  else if (len > CONFIG_FILE_MAX)
    err = recd_errf(errbuf, RECD_ERANGE, "config file '%s' is larger than %u bytes", path,
                    CONFIG_FILE_MAX);
  else
    err = config_load_buffer(cfg, buf, len, path, errbuf);
  free(buf);
  return err;
}

static int config__is_opt(const char *a, const char *opt) {
  return config__name_eq(a, strlen(a), opt);
}

int config_parse_args(config_t *cfg, int argc, char *const argv[], char *errbuf) {
  int first = 1;
  const char *file = NULL;
  if (argc > 1 && argv[1][0] != '-') {
    file = argv[1];
    first = 2;
  }
  /* Pass 1: --help and --version win over everything, even a broken file
   * or a bad option, because that is when people reach for them. Every
   * other --x is taken to have a value, exactly as pass 2 pairs them, so a
   * password that happens to be "--help" stays a password. */
  int help = 0, version = 0, test = 0;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (config__is_opt(a, "--help") || strcmp(a, "-h") == 0)
      help = 1;
    else if (config__is_opt(a, "--version"))
      version = 1;
    else if (config__is_opt(a, "--test-config"))
      test = 1;
    else if (a[0] == '-' && a[1] == '-')
      i++;
  }
  if (help)
    return CONFIG_ARGS_HELP;
  if (version)
    return CONFIG_ARGS_VERSION;

  int err;
  if (file != NULL && (err = config_load_file(cfg, file, errbuf)) != 0)
    return err;
  /* Pass 2: the overrides, in order. */
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    char show[CONFIG__SHOW_BUF];
    if (config__is_opt(a, "--test-config"))
      continue;
    if (a[0] != '-') {
      config__show(a, strlen(a), show);
      return recd_errf(errbuf, RECD_EINVAL,
                       "unexpected argument '%s' (only the first argument may be "
                       "the config file)", show);
    }
    const config__def_t *d =
        a[1] == '-' ? config__find(a + 2, strlen(a + 2)) : NULL;
    if (d == NULL) {
      config__show(a, strlen(a), show);
      return recd_errf(errbuf, RECD_ENOTFOUND, "unknown option '%s'", show);
    }
    char label[64];
    snprintf(label, sizeof label, "--%s", d->name);
    if (i + 1 >= argc)
      return recd_errf(errbuf, RECD_EINVAL, "%s: missing value", label);
    err = config__apply_text(cfg, d, argv[++i], label, errbuf);
    if (err != 0)
      return err;
  }
  err = config_validate(cfg, errbuf);
  if (err != 0)
    return err;
  return test ? CONFIG_ARGS_TEST : CONFIG_ARGS_RUN;
}

size_t config_count(void) {
  return CONFIG__NDEFS;
}

const char *config_name(size_t i) {
  return i < CONFIG__NDEFS ? config__defs[i].name : NULL;
}

bool config_is_secret(size_t i) {
  return i < CONFIG__NDEFS && (config__defs[i].flags & CONFIG__SECRET) != 0;
}

bool config_is_runtime(size_t i) {
  return i < CONFIG__NDEFS && (config__defs[i].flags & CONFIG__RUNTIME) != 0;
}

/* Bytes of d's field in config_t. Only the scalar and string types: a list
 * (bind, variant) is never a run-time key. */
static size_t config__scalar_size(const config__def_t *d) {
  switch (d->type) {
  case CONFIG__INT:
  case CONFIG__ENUM:
    return sizeof(int);
  case CONFIG__SIZE:
    return sizeof(size_t);
  case CONFIG__BOOL:
    return sizeof(bool);
  case CONFIG__OCTAL:
    return sizeof(unsigned);
  case CONFIG__STRING:
    return sizeof(char *);
  case CONFIG__DOUBLE:
    return sizeof(double);
  case CONFIG__ADDRS:
  case CONFIG__VARIANTS:
  case CONFIG__USERS:
    break;
  }
  return 0;
}

int config_set_runtime(config_t *cfg, size_t n, const char *const *kv, const size_t *kvlen,
                       config_check_fn check, void *arg, char *errbuf) {
  char show[CONFIG__SHOW_BUF];
  /* First every name: known, changeable now, given once. Distinct keys are
   * table rows, so there are at most CONFIG__NDEFS of them. */
  const config__def_t *defs[CONFIG__NDEFS];
  for (size_t i = 0; i < n; i++) {
    const char *key = kv[2 * i];
    const size_t klen = kvlen[2 * i];
    const config__def_t *d = config__find(key, klen);
    config__show(key, klen, show);
    if (d == NULL)
      return recd_errf(errbuf, RECD_ENOTFOUND, "unknown key '%s'", show);
    if (!(d->flags & CONFIG__RUNTIME) || config__scalar_size(d) == 0)
      return recd_errf(errbuf, RECD_EINVAL, "'%s' cannot change at run time; restart recd",
                       d->name);
    for (size_t j = 0; j < i; j++)
      if (defs[j] == d)
        return recd_errf(errbuf, RECD_EINVAL, "'%s' is given twice", d->name);
    defs[i] = d;
  }
  /* Then every value, into a shallow copy: the strings of the keys being
   * set start out NULL in it, so that the setter frees nothing the running
   * config still points to. */
  config_t next = *cfg;
  for (size_t i = 0; i < n; i++)
    if (defs[i]->type == CONFIG__STRING)
      *(char **)config__field(&next, defs[i]) = NULL;
  int err = 0;
  for (size_t i = 0; i < n && err == 0; i++) {
    const char *v = kv[2 * i + 1];
    err = config__apply(&next, defs[i], 1, &v, &kvlen[2 * i + 1], "", defs[i]->name, errbuf);
  }
  if (err == 0)
    err = config_validate(&next, errbuf);
  if (err == 0 && check != NULL)
    err = check(&next, arg, errbuf);
  for (size_t i = 0; i < n; i++) {
    if (defs[i]->type != CONFIG__STRING)
      continue;
    /* On failure the new strings go; on success the old ones. */
    char **f = (char **)config__field(err == 0 ? cfg : &next, defs[i]);
    free(*f);
    *f = NULL;
  }
  if (err != 0)
    return err;
  /* Only the fields of the keys set are written: the rest of the running
   * config is not touched at all. */
  for (size_t i = 0; i < n; i++)
    memcpy(config__field(cfg, defs[i]), config__cfield(&next, defs[i]),
           config__scalar_size(defs[i]));
  return 0;
}
