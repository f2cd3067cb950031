/* config.h - the daemon's configuration: recd.conf and command-line options.
 *
 * One static table in config.c (name, type, default, bounds, offset, help)
 * drives the defaults, the parsing of recd.conf lines and `--key value`
 * options, the validation, `recd --help` and the dump, as Redis's
 * static_configs[] does: adding a key is adding one row and one field here.
 * The module is a leaf: no event loop, no sockets, no global state, so it can
 * be tested and fuzzed alone.
 *
 * File format (the line format of redis.conf):
 *  - one `key value` per line; keys are case-insensitive;
 *  - blank lines and lines whose first non-blank character is '#' are
 *    ignored; there are no trailing comments (`port 7070 # x` is an error:
 *    three values for `port`), exactly as in redis.conf;
 *  - values are split like Redis's sdssplitargs(): on blanks, with "double
 *    quotes" (escapes \" \\ \n \r \t \a \b \xHH; any other \c is c) and
 *    'single quotes' (only \' is an escape); a closing quote must be followed
 *    by a blank or the end of the line;
 *  - LF or CRLF line ends; a UTF-8 byte-order mark at the start is skipped;
 *  - a key given twice: the last one wins, like a command-line override,
 *    except `variant`, which is repeatable (see below);
 *  - an unknown key is an error (no `include`: one file is the whole truth).
 *
 * Value types:
 *  - integers: decimal digits only, within the key's bounds;
 *  - numbers (feedback-weight-*): decimal, with an optional fraction and
 *    exponent ("0.5", ".5", "1e3", "2.5E-2"), read as a double (strtod in
 *    the C locale: the daemon must not call setlocale() for LC_NUMERIC),
 *    finite and within the key's bounds; no '+', hex, inf or nan;
 *  - sizes: digits with an optional unit as in redis.conf, case-insensitive:
 *    b, k = 1000, kb = 1024, m = 1000^2, mb = 1024^2, g = 1000^3, gb = 1024^3;
 *  - booleans: yes or no;
 *  - octal modes (unixsocketperm): `700`, `0700` and `770` are octal;
 *  - strings: any bytes but NUL; "" is the empty string (an empty value must
 *    be written as "", a key with no value is an error);
 *  - bind: 1 to CONFIG_BIND_MAX IPv4 or IPv6 literals (inet_pton; no host
 *    names, no zone ids), separated by blanks; 0.0.0.0 or :: for all.
 *  - variant: `variant <name> <model-path> <percent>`, repeatable: the
 *    first variant line of a file replaces the variants the config had (as
 *    the first `save` line of redis.conf does, so that loading a file, or a
 *    dump, twice or over any config gives the same list) and each further
 *    line appends one, in order (the first variant is the control of the
 *    experiment), at most CONFIG_VARIANT_MAX in all; on the command line
 *    every --variant appends to what the file gave; name: 1 to
 *    CONFIG_VARIANT_NAME_MAX bytes of [A-Za-z0-9_.:-], unique; model-path:
 *    1 to 4095 bytes (quoted like any value when it has blanks); percent:
 *    an integer in [0, 100]. One line may also give several triples in a
 *    row (`variant a /m/a.bin 50 b /m/b.bin 50`), the form CONFIG GET-like
 *    output uses. `variant ""` removes every variant given so far (as
 *    `save ""` does in redis.conf), so that a command line can replace the
 *    file's variants (--variant "" --variant "a /m/a.bin 100"). The sum of
 *    100 and the exclusion of `model` are
 *    checked by config_validate(), once every line has been applied.
 *
 * Errors are a negative RECD_E* code plus a one-line message that names the
 * culprit: "recd.conf:12: unknown key 'prot'",
 * "recd.conf:3: port: expected an integer in [0, 65535], got '70x0'",
 * "--port: expected an integer in [0, 65535], got '70x0'".
 *
 * Out of memory: every allocation is checked and reported as RECD_ENOMEM with
 * the config left valid (every string field is either the old or the new
 * value) so config_free() is always safe; nothing aborts.
 */
#ifndef RECD_CONFIG_H
#define RECD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "recd/err.h"

#define CONFIG_BIND_MAX 16              /* addresses in `bind` (as Redis) */
#define CONFIG_VARIANT_MAX 16           /* `variant` lines (EXP_MAX_VARIANTS) */
#define CONFIG_VARIANT_NAME_MAX 64      /* bytes of a variant name (EXP_NAME_MAX) */
#define CONFIG_FILE_MAX (1u << 20)      /* bytes; a larger recd.conf is refused */
#define CONFIG_SENTINELS_MAX 32         /* entries of redis-sentinels */
#define CONFIG_USER_MAX 64              /* `user` lines (more: use an aclfile) */
#define CONFIG_USER_TOK_MAX 64          /* rules on one `user` line */

/* Values of config_t.loglevel, least to most severe; a message is logged
 * when its level is >= the configured one. */
typedef enum config_loglevel {
  CONFIG_LOG_DEBUG = 0,
  CONFIG_LOG_VERBOSE = 1,
  CONFIG_LOG_NOTICE = 2,
  CONFIG_LOG_WARNING = 3
} config_loglevel_t;

/* Values of config_t.tls_auth_clients (redis.conf's tls-auth-clients). */
typedef enum config_tls_auth {
  CONFIG_TLS_AUTH_NO = 0,      /* client certificates are not asked for */
  CONFIG_TLS_AUTH_YES = 1,     /* required, and must verify against the CA */
  CONFIG_TLS_AUTH_OPTIONAL = 2 /* asked for; one that is given must verify */
} config_tls_auth_t;

/* The `bind` addresses: n >= 1 NUL-terminated literals, owned by the config. */
typedef struct config_addrs {
  int n;
  char *addr[CONFIG_BIND_MAX];
} config_addrs_t;

/* The `variant` lines, in order: n variants, entry i of each array being
 * variant i (entries n and beyond are NULL / 0). The strings are owned by
 * the config. n = 0 means no variant lines: the daemon then serves `model`
 * as one variant named "default". The layout matches what exp_assign()
 * takes: exp_assign(salt, slen, user, ulen, v->percent, (unsigned)v->n). */
typedef struct config_variants {
  size_t n;                             /* 0..CONFIG_VARIANT_MAX */
  char *name[CONFIG_VARIANT_MAX];       /* 1..64 bytes of [A-Za-z0-9_.:-], unique */
  char *path[CONFIG_VARIANT_MAX];       /* model file, 1..4095 bytes */
  unsigned percent[CONFIG_VARIANT_MAX]; /* 0..100; they sum to 100 once validated */
} config_variants_t;

/* The `user` lines (ACL users, acl.h): n rule lines as acl_user_describe()
 * writes them, "name on #<sha256> +@read ...", in order; passwords are
 * hashed as the line is read, so the config never holds one. */
typedef struct config_users {
  size_t n;                             /* 0..CONFIG_USER_MAX */
  char *line[CONFIG_USER_MAX];
} config_users_t;

/* Every key of recd.conf. Field names are the keys with '-' -> '_' (but
 * `variant`, a list, lives in `variants`). String
 * fields are never NULL after config_init() (empty string = unset) and are
 * owned by the config: release them with config_free(). The defaults and the
 * meaning of each key are in the table in config.c, `recd --help` and
 * systemd/recd.conf. */
typedef struct config {
  /* clients */
  int port;                          /* TCP port, 0 = no TCP listener */
  config_addrs_t bind;               /* addresses the TCP port listens on */
  char *unixsocket;                  /* Unix socket path, "" = none */
  unsigned unixsocketperm;           /* mode of the Unix socket, <= 0777 */
  char *requirepass;                 /* AUTH password, "" = no AUTH */
  config_users_t users;              /* `user` lines, repeatable (acl.h) */
  char *aclfile;                     /* users file, "" = the user lines */
  int maxclients;                    /* connected clients at most */
  int timeout;                       /* idle client timeout, s; 0 = never */
  size_t max_request_bytes;          /* query buffer per client, bytes */
  int max_request_args;              /* arguments of one command at most */
  size_t client_output_buffer_limit; /* pending reply bytes per client */
  /* TLS on the client port (tls.h), redis.conf's names */
  int tls_port;                      /* TLS port, 0 = no TLS listener */
  char *tls_cert_file;               /* server certificate (chain), PEM */
  char *tls_key_file;                /* its private key, PEM */
  char *tls_ca_cert_file;            /* CA of client certificates, "" = none */
  int tls_auth_clients;              /* a config_tls_auth_t */
  char *tls_protocols;               /* "TLSv1.2 TLSv1.3" */
  char *tls_ciphersuites;            /* TLS 1.3 suites, "" = OpenSSL's */
  /* model and scoring */
  char *model;                       /* model file path, "" = not given */
  char *models_dir;                  /* MODEL RELOAD <path> directory,
                                        "" = the directory of `model` */
  bool model_watch;                  /* reload when a model file is replaced */
  int history_limit;                 /* strongest history items used */
  int max_count;                     /* largest COUNT (and OFFSET+COUNT) */
  bool exclude_history;              /* never recommend past items */
  int workers;                       /* scoring threads */
  int scan_split_items;              /* split a batch's scan from this many items */
  int redis_cluster_refresh_ms;      /* slot map re-read period (rcluster.h) */
  int scan_loop_help_us;             /* the loop thread helps a split scan (batch.h) */
  int scan_prefilter_bytes;          /* the 4-bit prefilter from this int8 copy size */
  /* Redis */
  char *redis_host;                  /* never empty */
  int redis_port;
  char *redis_socket;                /* "" = TCP; else used instead of host */
  char *redis_cluster_nodes;         /* "host:port ..." seeds of a Redis
                                        Cluster, "" = no cluster */
  char *redis_user;                  /* Redis ACL user, "" = AUTH password */
  char *redis_password;              /* "" = no AUTH */
  char *redis_sentinels;             /* "host:port ..." of the sentinels,
                                        "" = no Sentinel */
  char *redis_master_name;           /* with redis_sentinels */
  char *redis_sentinel_password;     /* the sentinels' AUTH, "" = none */
  char *key_prefix;                  /* 1..128 bytes */
  int redis_timeout_ms;              /* deadline of a request's Redis trip */
  int feedback_timeout_ms;           /* deadline of FEEDBACK's ZINCRBY */
  int redis_reconnect_max_ms;        /* reconnect backoff cap */
  int unavailable_refresh_ms;        /* period of the recd:unavailable read */
  /* storefront rules (DESIGN.md "Touchpoints and rules") */
  bool track_shown;                  /* impressions carry shown counts */
  int shown_limit;                   /* 0 = off */
  int max_per_category;              /* 0 = off */
  int promote_slots;                 /* 0 = off */
  bool one_per_group;
  bool exclude_bought_groups;
  /* experiments and outcomes (DESIGN.md "Experiments and outcomes") */
  config_variants_t variants;        /* `variant` lines; n = 0: none */
  char *experiment_salt;             /* salt of the customer -> variant hash,
                                        1..64 bytes */
  bool track_impressions;            /* record the items answered as impressions */
  int attribution_window;            /* s an impression can explain an outcome */
  int impressions_max;               /* impressions kept per customer */
  double feedback_weight_purchase;   /* history weight FEEDBACK ... TYPE <t> */
  double feedback_weight_cart;       /* adds without WEIGHT; 0 = counted as */
  double feedback_weight_click;      /* an outcome, history unchanged; */
  double feedback_weight_hide;       /* finite, in [0, 1e9] */
  double feedback_weight_unhide;
  int feedback_unknown_items;        /* 0 count, 1 warn: FEEDBACK of an item
                                        no model knows is also logged once */
  int experiment_refresh_ms;         /* period of the experiment counters' read
                                        (INFO, /metrics, the status page) */
  /* operations */
  int metrics_port;                  /* HTTP /metrics port, 0 = off */
  bool metrics_tls;                  /* HTTPS there, with the tls-* files */
  int loglevel;                      /* a config_loglevel_t */
  char *pidfile;                     /* "" = none */
} config_t;

/* Results of config_parse_args() other than errors. */
typedef enum config_args_result {
  CONFIG_ARGS_RUN = 0,     /* parsed and valid: start the daemon */
  CONFIG_ARGS_HELP = 1,    /* --help or -h: print config_usage(), exit 0 */
  CONFIG_ARGS_VERSION = 2, /* --version: print the version, exit 0 */
  CONFIG_ARGS_TEST = 3     /* --test-config: parsed and valid; print
                              config_dump() and exit 0 without starting */
} config_args_result_t;

/* Flags of config_dump(). */
#define CONFIG_DUMP_REDACT 1 /* print passwords as "(redacted)", not the secret */

/* Fills *cfg with the defaults of every key. Returns 0, or RECD_ENOMEM with
 * *cfg zeroed (config_free() is then a no-op). Whatever the result, *cfg must
 * later be released with config_free(). */
int config_init(config_t *cfg);

/* Frees the strings of *cfg and zeroes it; a zeroed config is accepted, and
 * so is NULL. *cfg may be passed to config_init() again afterwards. */
void config_free(config_t *cfg);

/* Sets one key from its text value, exactly as `--key value` on the command
 * line does (for `bind` the value is split on blanks; for `variant` it is
 * split into tokens as a recd.conf line is, quotes included, and appends,
 * or is "" and removes every variant; other values are taken verbatim, with
 * no quote processing). Returns 0, RECD_ENOTFOUND for an
 * unknown key ("unknown key 'x'"), RECD_EINVAL / RECD_ERANGE for a bad value
 * ("port: expected an integer in [0, 65535], got '70x0'") or RECD_ENOMEM.
 * On error the key keeps its old value. No cross-field check: call
 * config_validate() after the last change. */
int config_set(config_t *cfg, const char *key, const char *value, char *errbuf);

/* Applies the recd.conf text buf[0, len) (any bytes, NUL included, need not
 * be NUL-terminated) line by line; `name` prefixes messages
 * ("name:line: ..."). Its first `variant` line replaces the config's
 * variants, later ones append. Returns 0 or the first error; lines before the bad one
 * stay applied, so on error the caller should config_free() and give up
 * rather than run with half a file. No cross-field check. */
int config_load_buffer(config_t *cfg, const char *buf, size_t len,
                       const char *name, char *errbuf);

/* Reads the file at `path` (at most CONFIG_FILE_MAX bytes) and applies it as
 * config_load_buffer() does, with `path` as the name in messages. Returns 0,
 * RECD_EIO ("cannot open config file 'p': No such file or directory"),
 * RECD_ERANGE for a file that is too large, or an error of
 * config_load_buffer(). */
int config_load_file(config_t *cfg, const char *path, char *errbuf);

/* The cross-field rules, run once everything has been applied (a single
 * key cannot know them): something to listen on (port != 0 or a unixsocket),
 * metrics-port != port, unixsocket != redis-socket, pidfile != unixsocket;
 * with variants, percents summing to 100 ("variant: percents must sum to
 * 100, got 90 (a 50 + b 40)") and an empty `model` (each variant names its
 * model); plus guards for a config_t edited directly rather than through
 * the setters (1..CONFIG_BIND_MAX bind addresses, no NULL string, non-empty
 * key-prefix and experiment-salt, numbers within their bounds, well-formed
 * and unique variants).
 * Whether `model` exists or lies in models-dir is the daemon's business: the
 * parser only stores paths. Returns 0 or RECD_EINVAL with the reason in
 * errbuf ("metrics-port and port are both 7070"). */
int config_validate(const config_t *cfg, char *errbuf);

/* The whole command line: `recd [recd.conf] [--key value ...]`, argv[0]
 * being the program name. The first argument is the config file unless it
 * starts with '-'; the file is read first, then every --key value is applied
 * in order (the last one wins), then config_validate() runs. --help/-h,
 * --version and --test-config may appear anywhere; --help and --version are
 * looked for before anything else is read, so they work even with a broken
 * config file, and --help wins over --version. Option names are
 * case-insensitive; `--key=value` is not accepted (Redis does not either).
 * Returns a config_args_result_t (>= 0) or a negative RECD_E* code with the
 * message in errbuf ("--port: missing value", "unknown option '--prot'").
 * *cfg must have been through config_init(); on error it is partly updated. */
int config_parse_args(config_t *cfg, int argc, char *const argv[], char *errbuf);

/* Prints the usage of `progname` and every key, with its value syntax,
 * default and a one-line help, to fp. */
void config_usage(FILE *fp, const char *progname);

/* Writes the current value of `key` (case-insensitive) to buf as
 * snprintf() does: NUL-terminated and truncated to size bytes (buf may be
 * NULL when size is 0). The text is the raw value, as CONFIG GET shows it:
 * sizes in bytes, booleans yes/no, the mode as 4 octal digits, strings
 * unquoted, bind as the addresses separated by one space, numbers in the
 * shortest form that reads back exactly ("0.5", "1000000000"), variant as
 * its "name path percent" triples separated by one space, a path quoted as
 * in recd.conf when it needs it ("" when there is none). Feeding it back to
 * config_set() gives the same value (for `variant`: on a config without
 * variants, since config_set() appends). Returns the length of the full text
 * (>= size means it was truncated) or RECD_ENOTFOUND for an unknown key. */
int config_format(const config_t *cfg, const char *key, char *buf, size_t size);

/* Writes every key as a recd.conf line ("key value", values quoted when they
 * need it, sizes with units when exact) in table order, `variant` as one
 * line per variant (or `variant ""` when there is none); loading the output
 * with config_load_buffer() into any config reproduces *cfg unless
 * CONFIG_DUMP_REDACT hides the passwords. Returns 0 or RECD_EIO when fp
 * reports a write error. */
int config_dump(const config_t *cfg, FILE *fp, int flags);

/* Number of keys, and the name of key i (i < config_count(), NULL beyond),
 * in table order: to iterate for INFO or CONFIG GET-like output. */
size_t config_count(void);
const char *config_name(size_t i);

/* Whether the value of key i must not be shown to clients (passwords). */
bool config_is_secret(size_t i);

/* Whether key i may change while the daemon runs (CONFIG SET): a flag of
 * its row in config.c's table. */
bool config_is_runtime(size_t i);

/* A rule of the caller's on a candidate config (e.g. what the running
 * daemon was started with): 0, or an error code with the message in
 * errbuf. */
typedef int (*config_check_fn)(const config_t *next, void *arg, char *errbuf);

/* CONFIG SET: applies n (key, value) pairs, kv[2i] = key and kv[2i + 1] =
 * value with their lengths in kvlen (binary safe), all or nothing. Every
 * key must be known ("unknown key 'x'"), changeable at run time ("'port'
 * cannot change at run time; restart recd") and given once ("'x' is given
 * twice"); every value is read by the very parser of recd.conf (the same
 * messages: "max-count: expected an integer in [1, 100000], got 'x'"),
 * then config_validate() and `check` (may be NULL) judge the result. Only
 * when all of that passes are the keys' fields written (and nothing else
 * of *cfg); on any error *cfg is unchanged. Returns 0, RECD_ENOTFOUND,
 * RECD_EINVAL / RECD_ERANGE, RECD_ENOMEM or check's error. */
int config_set_runtime(config_t *cfg, size_t n, const char *const *kv, const size_t *kvlen,
                       config_check_fn check, void *arg, char *errbuf);

#endif
