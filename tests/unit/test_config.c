/* test_config.c - recd.conf parsing, command-line overrides, validation,
 * formatting and the shipped systemd/recd.conf. Error messages are asserted
 * byte for byte: they are what an operator sees at startup. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Loads `text` as a file named recd.conf into a fresh default config and
 * checks the result code and, for errors, the exact message. */
static void expect_file(const char *text, int want, const char *msg) {
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  int rc = config_load_buffer(&c, text, strlen(text), "recd.conf", err);
  ck_assert_msg(rc == want, "rc %d (%s), want %d for <%s>", rc, err, want, text);
  if (msg != NULL)
    ck_assert_str_eq(err, msg);
  config_free(&c);
}

/* Runs config_parse_args on a fresh config and checks code and message. */
static void expect_args(int argc, char *const argv[], int want, const char *msg) {
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  int rc = config_parse_args(&c, argc, argv, err);
  ck_assert_msg(rc == want, "rc %d (%s), want %d", rc, err, want);
  if (msg != NULL)
    ck_assert_str_eq(err, msg);
  config_free(&c);
}

/* A bad value in both spellings: "recd.conf:1: key: <msg>" from a file and
 * "--key: <msg>" from the command line. */
static void expect_bad(const char *key, const char *value, const char *msg) {
  char line[1024], want[RECD_ERRLEN];
  snprintf(line, sizeof line, "%s %s\n", key, value);
  snprintf(want, sizeof want, "recd.conf:1: %s: %s", key, msg);
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_lt(config_load_buffer(&c, line, strlen(line), "recd.conf", err), 0);
  ck_assert_str_eq(err, want);
  config_free(&c);

  /* The command line takes the value verbatim, so strip one level of the
   * quotes a test may have used for the file form. */
  char raw[1024];
  size_t n = strlen(value);
  if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
    memcpy(raw, value + 1, n - 2);
    raw[n - 2] = '\0';
  } else {
    snprintf(raw, sizeof raw, "%s", value);
  }
  char opt[64];
  snprintf(opt, sizeof opt, "--%s", key);
  char *argv[] = {"recd", opt, raw};
  snprintf(want, sizeof want, "--%s: %s", key, msg);
  ck_assert_int_eq(config_init(&c), 0);
  int rc = config_parse_args(&c, ARGC(argv), argv, err);
  ck_assert_int_lt(rc, 0);
  ck_assert_str_eq(err, want);
  config_free(&c);
}

/* Shorthand: the raw value of key in c (static buffer). */
static const char *fmt(const config_t *c, const char *key) {
  static char buf[8192];
  int n = config_format(c, key, buf, sizeof buf);
  ck_assert_msg(n >= 0 && (size_t)n < sizeof buf, "config_format(%s) = %d", key, n);
  return buf;
}

/* Every key formats identically in a and b. */
static void assert_same(const config_t *a, const config_t *b) {
  for (size_t i = 0; i < config_count(); i++) {
    const char *k = config_name(i);
    char va[8192], vb[8192];
    ck_assert_int_ge(config_format(a, k, va, sizeof va), 0);
    ck_assert_int_ge(config_format(b, k, vb, sizeof vb), 0);
    ck_assert_msg(strcmp(va, vb) == 0, "%s: '%s' != '%s'", k, va, vb);
  }
}

START_TEST(test_defaults) {
  config_t c;
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(c.port, 7070);
  ck_assert_int_eq(c.bind.n, 1);
  ck_assert_str_eq(c.bind.addr[0], "127.0.0.1");
  ck_assert_str_eq(c.unixsocket, "");
  ck_assert_uint_eq(c.unixsocketperm, 0700);
  ck_assert_str_eq(c.requirepass, "");
  ck_assert_int_eq(c.maxclients, 10000);
  ck_assert_int_eq(c.timeout, 0);
  ck_assert_uint_eq(c.max_request_bytes, 1024 * 1024);
  ck_assert_int_eq(c.max_request_args, 4096);
  ck_assert_uint_eq(c.client_output_buffer_limit, 32 * 1024 * 1024);
  ck_assert_str_eq(c.model, "");
  ck_assert_str_eq(c.models_dir, "");
  ck_assert_int_eq(c.history_limit, 500);
  ck_assert_int_eq(c.max_count, 1000);
  ck_assert(c.exclude_history);
  ck_assert_int_eq(c.workers, 2);
  ck_assert_str_eq(c.redis_host, "127.0.0.1");
  ck_assert_int_eq(c.redis_port, 6379);
  ck_assert_str_eq(c.redis_socket, "");
  ck_assert_str_eq(c.redis_password, "");
  ck_assert_str_eq(c.key_prefix, "recd:");
  ck_assert_int_eq(c.redis_timeout_ms, 50);
  ck_assert_int_eq(c.redis_reconnect_max_ms, 2000);
  ck_assert_int_eq(c.unavailable_refresh_ms, 2000);
  ck_assert_int_eq(c.metrics_port, 0);
  ck_assert_int_eq(c.loglevel, CONFIG_LOG_NOTICE);
  ck_assert_str_eq(c.pidfile, "");
  /* experiments and outcomes */
  ck_assert_uint_eq(c.variants.n, 0);
  for (int i = 0; i < CONFIG_VARIANT_MAX; i++) {
    ck_assert_ptr_null(c.variants.name[i]);
    ck_assert_ptr_null(c.variants.path[i]);
    ck_assert_uint_eq(c.variants.percent[i], 0);
  }
  ck_assert_str_eq(c.experiment_salt, "recd");
  ck_assert(c.track_impressions);
  ck_assert_int_eq(c.attribution_window, 86400);
  ck_assert_int_eq(c.impressions_max, 200);
  ck_assert(c.feedback_weight_purchase == 1.0);
  ck_assert(c.feedback_weight_cart == 0.5);
  ck_assert(c.feedback_weight_click == 0.1);
  ck_assert(c.feedback_weight_hide == 0.0);
  ck_assert(c.feedback_weight_unhide == 0.0);
  ck_assert_int_eq(c.experiment_refresh_ms, 2000);
  ck_assert_str_eq(fmt(&c, "variant"), "");
  ck_assert_str_eq(fmt(&c, "feedback-weight-purchase"), "1");
  ck_assert_str_eq(fmt(&c, "feedback-weight-cart"), "0.5");
  ck_assert_str_eq(fmt(&c, "feedback-weight-click"), "0.1");
  ck_assert_str_eq(fmt(&c, "feedback-weight-hide"), "0");
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_validate(&c, err), 0);

  /* the names DESIGN.md fixes, all present */
  static const char *const design[] = {
    "port", "bind", "unixsocket", "unixsocketperm", "requirepass", "maxclients",
    "model", "redis-host", "redis-port", "redis-socket", "redis-password", "redis-cluster-nodes",
    "key-prefix", "redis-timeout-ms", "feedback-timeout-ms", "history-limit", "max-count", "metrics-port",
    "loglevel", "variant", "experiment-salt", "track-impressions", "attribution-window",
    "impressions-max", "feedback-weight-purchase", "feedback-weight-cart",
    "feedback-weight-click", "feedback-weight-hide", "feedback-weight-unhide",
    "experiment-refresh-ms"};
  for (size_t i = 0; i < sizeof design / sizeof design[0]; i++)
    ck_assert_int_ge(config_format(&c, design[i], NULL, 0), 0);
  ck_assert_uint_eq(config_count(), 66);
  ck_assert_ptr_null(config_name(config_count()));
  ck_assert(config_is_secret(0) == false);
  config_free(&c);
  config_free(&c); /* zeroed: a second free is harmless */
  config_free(NULL);
}
END_TEST

START_TEST(test_file_syntax) {
  static const char text[] =
      "\xef\xbb\xbf# a comment, after a byte-order mark\r\n"
      "\r\n"
      "   # indented comment\n"
      "\t\n"
      "PORT 7071\r\n"
      "Bind   127.0.0.1\t::1  \n"
      "requirepass \"s3cret with spaces\"\r\n"
      "key-prefix 'shop:'\n"
      "redis-host   redis.internal\n"
      "loglevel WARNING\n"
      "exclude-history No\n"
      "max-request-bytes 2MB\n"
      "unixsocket /run/recd/recd.sock\n"
      "model \"/var/lib/recd/my model.bin\"\n"
      "port 7072\n" /* repeated: the last one wins */
      "pidfile \"\"\n"
      "workers 4"; /* no final newline */
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_load_buffer(&c, text, strlen(text), "recd.conf", err), 0);
  ck_assert_int_eq(c.port, 7072);
  ck_assert_int_eq(c.bind.n, 2);
  ck_assert_str_eq(c.bind.addr[0], "127.0.0.1");
  ck_assert_str_eq(c.bind.addr[1], "::1");
  ck_assert_str_eq(c.requirepass, "s3cret with spaces");
  ck_assert_str_eq(c.key_prefix, "shop:");
  ck_assert_str_eq(c.redis_host, "redis.internal");
  ck_assert_int_eq(c.loglevel, CONFIG_LOG_WARNING);
  ck_assert(!c.exclude_history);
  ck_assert_uint_eq(c.max_request_bytes, 2 * 1024 * 1024);
  ck_assert_str_eq(c.unixsocket, "/run/recd/recd.sock");
  ck_assert_str_eq(c.model, "/var/lib/recd/my model.bin");
  ck_assert_str_eq(c.pidfile, "");
  ck_assert_int_eq(c.workers, 4);
  ck_assert_int_eq(config_validate(&c, err), 0);
  config_free(&c);

  /* an empty file and a file of comments change nothing */
  expect_file("", 0, NULL);
  expect_file("# only\n\n#comments\n", 0, NULL);
}
END_TEST

START_TEST(test_file_escapes) {
  static const char text[] =
      "requirepass \"a\\\"b\\\\c\\n\\r\\t\\a\\b\\x41\\x7e\\q\\x4\"\n"
      "redis-password 'it\\'s \"quoted\" \\n'\n"
      "key-prefix pre\"fix with blanks\"\n"
      "model \"\\xc3\\xa9t\\xc3\\xa9.bin\"\n";
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_load_buffer(&c, text, strlen(text), "recd.conf", err), 0);
  /* \x4 lacks a second hex digit: the backslash escape gives a plain 'x' */
  ck_assert_str_eq(c.requirepass, "a\"b\\c\n\r\t\a\bA~qx4");
  /* single quotes: only \' is an escape */
  ck_assert_str_eq(c.redis_password, "it's \"quoted\" \\n");
  /* a quote inside a bare word starts a quoted section, as in sdssplitargs */
  ck_assert_str_eq(c.key_prefix, "prefix with blanks");
  ck_assert_str_eq(c.model, "\xc3\xa9t\xc3\xa9.bin");
  config_free(&c);
}
END_TEST

START_TEST(test_file_errors) {
  expect_file("port 7070\n\n# c\nprot 7070\n", RECD_ENOTFOUND,
              "recd.conf:4: unknown key 'prot'");
  expect_file("port 7070 # comment\n", RECD_EINVAL,
              "recd.conf:1: port: expected 1 value, got 3");
  expect_file("port\n", RECD_EINVAL, "recd.conf:1: port: expected 1 value, got 0");
  expect_file("requirepass\n", RECD_EINVAL,
              "recd.conf:1: requirepass: expected 1 value, got 0 "
              "(write \"\" for an empty value)");
  expect_file("requirepass a b\n", RECD_EINVAL,
              "recd.conf:1: requirepass: expected 1 value, got 2");
  expect_file("\n\nrequirepass \"abc\n", RECD_EFORMAT,
              "recd.conf:3: unterminated quoted string");
  expect_file("requirepass 'abc\n", RECD_EFORMAT,
              "recd.conf:1: unterminated quoted string");
  expect_file("requirepass \"abc\\\"\n", RECD_EFORMAT,
              "recd.conf:1: unterminated quoted string");
  expect_file("requirepass \"ab\"c\n", RECD_EFORMAT,
              "recd.conf:1: closing quote must be followed by a blank");
  expect_file("requirepass 'ab'c\n", RECD_EFORMAT,
              "recd.conf:1: closing quote must be followed by a blank");
  /* CRLF counts one line; the CR is a blank, not part of the value */
  expect_file("port 1\r\nport x\r\n", RECD_EINVAL,
              "recd.conf:2: port: expected an integer in [0, 65535], got 'x'");
  /* key names are bytes too: an unprintable key is shown escaped */
  expect_file("po\x01rt 1\n", RECD_ENOTFOUND, "recd.conf:1: unknown key 'po\\x01rt'");
  expect_file("\"port\\x00\" 1\n", RECD_ENOTFOUND,
              "recd.conf:1: unknown key 'port\\x00'");
  /* no include directive: one file is the whole configuration */
  expect_file("include other.conf\n", RECD_ENOTFOUND,
              "recd.conf:1: unknown key 'include'");
  /* a raw NUL byte in a file is just a byte */
  static const char nul[] = "requirepass a\0b\n";
  config_t c;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_load_buffer(&c, nul, sizeof nul - 1, "x.conf", err), RECD_EINVAL);
  ck_assert_str_eq(err, "x.conf:1: requirepass: contains a NUL byte");
  config_free(&c);
}
END_TEST

START_TEST(test_integers) {
  expect_bad("port", "70x0", "expected an integer in [0, 65535], got '70x0'");
  expect_bad("port", "65536", "expected an integer in [0, 65535], got '65536'");
  expect_bad("port", "-1", "expected an integer in [0, 65535], got '-1'");
  expect_bad("port", "+80", "expected an integer in [0, 65535], got '+80'");
  expect_bad("port", "0x50", "expected an integer in [0, 65535], got '0x50'");
  expect_bad("port", "\"\"", "expected an integer in [0, 65535], got ''");
  expect_bad("port", "\" 80\"", "expected an integer in [0, 65535], got ' 80'");
  expect_bad("port", "99999999999999999999999",
             "expected an integer in [0, 65535], got '99999999999999999999999'");
  expect_bad("maxclients", "0", "expected an integer in [1, 1000000], got '0'");
  expect_bad("redis-port", "0", "expected an integer in [1, 65535], got '0'");
  expect_bad("workers", "257", "expected an integer in [1, 256], got '257'");
  expect_bad("redis-timeout-ms", "0", "expected an integer in [1, 60000], got '0'");
  expect_bad("max-request-args", "15", "expected an integer in [16, 1048576], got '15'");
  expect_bad("history-limit", "1e3", "expected an integer in [1, 100000], got '1e3'");
  expect_bad("timeout", "1.5", "expected an integer in [0, 31536000], got '1.5'");

  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "port", "0", err), 0);
  ck_assert_int_eq(c.port, 0);
  ck_assert_int_eq(config_set(&c, "port", "65535", err), 0);
  ck_assert_int_eq(c.port, 65535);
  ck_assert_int_eq(config_set(&c, "port", "007071", err), 0);
  ck_assert_int_eq(c.port, 7071);
  /* range errors are RECD_ERANGE, syntax errors RECD_EINVAL; the value keeps */
  ck_assert_int_eq(config_set(&c, "port", "65536", err), RECD_ERANGE);
  ck_assert_int_eq(config_set(&c, "port", "x", err), RECD_EINVAL);
  ck_assert_str_eq(err, "port: expected an integer in [0, 65535], got 'x'");
  ck_assert_int_eq(c.port, 7071);
  config_free(&c);
}
END_TEST

START_TEST(test_sizes) {
  static const struct { const char *in; size_t bytes; } good[] = {
    {"1024", 1024}, {"1024b", 1024}, {"2k", 2000}, {"1kb", 1024}, {"2KB", 2048},
    {"1m", 1000000}, {"1mb", 1048576}, {"3Mb", 3 * 1048576}, {"1g", 1000000000},
    {"1gb", 1073741824}, {"0001mb", 1048576}, {"1048576", 1048576},
  };
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    ck_assert_msg(config_set(&c, "max-request-bytes", good[i].in, err) == 0, "%s: %s",
                  good[i].in, err);
    ck_assert_uint_eq(c.max_request_bytes, good[i].bytes);
  }
  ck_assert_int_eq(config_set(&c, "client-output-buffer-limit", "2gb", err), 0);
  ck_assert_uint_eq(c.client_output_buffer_limit, (size_t)2 << 30);
  ck_assert_int_eq(config_set(&c, "client-output-buffer-limit", "64kb", err), 0);
  ck_assert_uint_eq(c.client_output_buffer_limit, 65536);
  config_free(&c);

  expect_bad("max-request-bytes", "1023", "expected a size in [1kb, 1gb], got '1023'");
  expect_bad("max-request-bytes", "2gb", "expected a size in [1kb, 1gb], got '2gb'");
  expect_bad("max-request-bytes", "1.5mb", "expected a size in [1kb, 1gb], got '1.5mb'");
  expect_bad("max-request-bytes", "mb", "expected a size in [1kb, 1gb], got 'mb'");
  expect_bad("max-request-bytes", "1tb", "expected a size in [1kb, 1gb], got '1tb'");
  expect_file("max-request-bytes 1 mb\n", RECD_EINVAL,
              "recd.conf:1: max-request-bytes: expected 1 value, got 2");
  expect_bad("max-request-bytes", "-1mb", "expected a size in [1kb, 1gb], got '-1mb'");
  expect_bad("max-request-bytes", "99999999999999999999gb",
             "expected a size in [1kb, 1gb], got '99999999999999999999gb'");
  expect_bad("max-request-bytes", "9999999999999gb",
             "expected a size in [1kb, 1gb], got '9999999999999gb'");
  expect_bad("client-output-buffer-limit", "65535",
             "expected a size in [64kb, 2gb], got '65535'");
}
END_TEST

START_TEST(test_octal_bool_enum) {
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "unixsocketperm", "770", err), 0);
  ck_assert_uint_eq(c.unixsocketperm, 0770);
  ck_assert_int_eq(config_set(&c, "unixsocketperm", "0777", err), 0);
  ck_assert_uint_eq(c.unixsocketperm, 0777);
  ck_assert_int_eq(config_set(&c, "unixsocketperm", "0", err), 0);
  ck_assert_uint_eq(c.unixsocketperm, 0);
  ck_assert_int_eq(config_set(&c, "unixsocketperm", "700", err), 0);
  ck_assert_str_eq(fmt(&c, "unixsocketperm"), "0700");
  ck_assert_int_eq(config_set(&c, "exclude-history", "no", err), 0);
  ck_assert(!c.exclude_history);
  ck_assert_int_eq(config_set(&c, "exclude-history", "YES", err), 0);
  ck_assert(c.exclude_history);
  static const char *const levels[] = {"debug", "verbose", "notice", "warning"};
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(config_set(&c, "loglevel", levels[i], err), 0);
    ck_assert_int_eq(c.loglevel, i);
    ck_assert_str_eq(fmt(&c, "loglevel"), levels[i]);
  }
  config_free(&c);

  expect_bad("unixsocketperm", "800", "expected an octal mode in [0, 0777], got '800'");
  expect_bad("unixsocketperm", "1777", "expected an octal mode in [0, 0777], got '1777'");
  expect_bad("unixsocketperm", "0o700", "expected an octal mode in [0, 0777], got '0o700'");
  expect_bad("unixsocketperm", "rwx", "expected an octal mode in [0, 0777], got 'rwx'");
  expect_bad("unixsocketperm", "777777777777777777777777",
             "expected an octal mode in [0, 0777], got '777777777777777777777777'");
  expect_bad("exclude-history", "true", "expected yes or no, got 'true'");
  expect_bad("exclude-history", "1", "expected yes or no, got '1'");
  expect_bad("exclude-history", "yess", "expected yes or no, got 'yess'");
  expect_bad("loglevel", "info",
             "expected one of debug, verbose, notice, warning, got 'info'");
  expect_bad("loglevel", "nothing",
             "expected one of debug, verbose, notice, warning, got 'nothing'");
}
END_TEST

START_TEST(test_strings) {
  config_t c;
  char err[RECD_ERRLEN] = "";
  char big[200];
  ck_assert_int_eq(config_init(&c), 0);
  memset(big, 'p', 128);
  big[128] = '\0';
  ck_assert_int_eq(config_set(&c, "key-prefix", big, err), 0);
  ck_assert_uint_eq(strlen(c.key_prefix), 128);
  /* Unix socket paths must fit sun_path (108 bytes with the NUL) */
  memset(big, 's', 107);
  big[0] = '/';
  big[107] = '\0';
  ck_assert_int_eq(config_set(&c, "unixsocket", big, err), 0);
  ck_assert_int_eq(config_set(&c, "redis-socket", big + 1, err), 0);
  ck_assert_int_eq(config_set(&c, "requirepass", "", err), 0);
  ck_assert_int_eq(config_set(&c, "requirepass", "--help", err), 0);
  ck_assert_str_eq(c.requirepass, "--help");
  config_free(&c);

  expect_bad("key-prefix", "\"\"", "must not be empty");
  expect_bad("redis-host", "''", "must not be empty");
  memset(big, 'p', 129);
  big[129] = '\0';
  expect_bad("key-prefix", big, "longer than 128 bytes");
  memset(big, 's', 108);
  big[0] = '/';
  big[108] = '\0';
  expect_bad("unixsocket", big, "longer than 107 bytes, the limit of a Unix socket path");
  expect_bad("redis-socket", big, "longer than 107 bytes, the limit of a Unix socket path");
  /* an escaped NUL can only come from a file */
  expect_file("requirepass \"a\\x00b\"\n", RECD_EINVAL,
              "recd.conf:1: requirepass: contains a NUL byte");
}
END_TEST

START_TEST(test_bind) {
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "bind", " 10.0.0.1\t::1 0.0.0.0 :: ", err), 0);
  ck_assert_int_eq(c.bind.n, 4);
  ck_assert_str_eq(c.bind.addr[3], "::");
  ck_assert_str_eq(fmt(&c, "bind"), "10.0.0.1 ::1 0.0.0.0 ::");
  ck_assert_int_eq(config_set(&c, "bind", "::ffff:192.168.1.1", err), 0);
  ck_assert_int_eq(c.bind.n, 1);
  /* 16 addresses is the cap */
  char many[1024] = "";
  for (int i = 1; i <= 16; i++)
    snprintf(many + strlen(many), sizeof many - strlen(many), "10.0.0.%d ", i);
  ck_assert_int_eq(config_set(&c, "bind", many, err), 0);
  ck_assert_int_eq(c.bind.n, 16);
  strcat(many, "10.0.0.17");
  ck_assert_int_eq(config_set(&c, "bind", many, err), RECD_EINVAL);
  ck_assert_str_eq(err, "bind: expected 1 to 16 addresses, got 17");
  ck_assert_int_eq(c.bind.n, 16); /* unchanged */
  config_free(&c);

  char line[1100];
  snprintf(line, sizeof line, "bind %s\n", many);
  expect_file(line, RECD_EINVAL, "recd.conf:1: bind: expected 1 to 16 addresses, got 17");
  expect_file("bind\n", RECD_EINVAL, "recd.conf:1: bind: expected 1 to 16 addresses, got 0");
  expect_file("bind \"\"\n", RECD_EINVAL,
              "recd.conf:1: bind: expected an IPv4 or IPv6 address, got ''");
  char *empty[] = {"recd", "--bind", " "};
  expect_args(ARGC(empty), empty, RECD_EINVAL, "--bind: expected 1 to 16 addresses, got 0");
  expect_bad("bind", "localhost", "expected an IPv4 or IPv6 address, got 'localhost'");
  expect_bad("bind", "127.0.0.256", "expected an IPv4 or IPv6 address, got '127.0.0.256'");
  expect_bad("bind", "127.1", "expected an IPv4 or IPv6 address, got '127.1'");
  expect_bad("bind", "fe80::1%eth0", "expected an IPv4 or IPv6 address, got 'fe80::1%eth0'");
  expect_bad("bind", "[::1]", "expected an IPv4 or IPv6 address, got '[::1]'");
  expect_bad("bind", "*", "expected an IPv4 or IPv6 address, got '*'");
  expect_bad("bind", "::1 0:0::1", "address '0:0::1' is listed twice");
  expect_bad("bind", "1.2.3.4 5.6.7.8 1.2.3.4", "address '1.2.3.4' is listed twice");
  expect_file("bind \"127.0.0.1\\x00x\"\n", RECD_EINVAL,
              "recd.conf:1: bind: expected an IPv4 or IPv6 address, got '127.0.0.1\\x00x'");
}
END_TEST

START_TEST(test_command_line) {
  char *dir = tu_mkdtemp();
  char path[4096];
  snprintf(path, sizeof path, "%s", tu_path(dir, "recd.conf"));
  static const char text[] = "port 7071\nmodel /m.bin\nloglevel debug\nworkers 3\n";
  tu_write_file(path, text, sizeof text - 1);

  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  char *argv[] = {"recd", path, "--port", "7072", "--LogLevel", "warning",
                  "--bind", "127.0.0.1 ::1", "--port", "7073", "--requirepass", "a b"};
  ck_assert_int_eq(config_parse_args(&c, ARGC(argv), argv, err), CONFIG_ARGS_RUN);
  ck_assert_int_eq(c.port, 7073); /* overrides apply in order, after the file */
  ck_assert_int_eq(c.loglevel, CONFIG_LOG_WARNING);
  ck_assert_int_eq(c.workers, 3);  /* from the file */
  ck_assert_str_eq(c.model, "/m.bin");
  ck_assert_int_eq(c.bind.n, 2);
  ck_assert_str_eq(c.requirepass, "a b"); /* verbatim: the shell did the quoting */
  config_free(&c);

  /* no file at all: defaults plus overrides */
  char *noconf[] = {"recd", "--port", "0", "--unixsocket", "/tmp/r.sock"};
  expect_args(ARGC(noconf), noconf, CONFIG_ARGS_RUN, NULL);
  char *none[] = {"recd"};
  expect_args(ARGC(none), none, CONFIG_ARGS_RUN, NULL);

  /* errors */
  char *missing[] = {"recd", path, "--port"};
  expect_args(ARGC(missing), missing, RECD_EINVAL, "--port: missing value");
  char *unknown[] = {"recd", "--prot", "7070"};
  expect_args(ARGC(unknown), unknown, RECD_ENOTFOUND, "unknown option '--prot'");
  char *single[] = {"recd", "-p", "7070"};
  expect_args(ARGC(single), single, RECD_ENOTFOUND, "unknown option '-p'");
  char *stray[] = {"recd", "--port", "1", "other.conf"};
  expect_args(ARGC(stray), stray, RECD_EINVAL,
              "unexpected argument 'other.conf' (only the first argument may be the "
              "config file)");
  char *late[] = {"recd", "--port", "1", path};
  expect_args(ARGC(late), late, RECD_EINVAL, NULL);
  char *bad[] = {"recd", path, "--max-count", "0"};
  expect_args(ARGC(bad), bad, RECD_ERANGE,
              "--max-count: expected an integer in [1, 100000], got '0'");
  char *noval[] = {"recd", "--requirepass"};
  expect_args(ARGC(noval), noval, RECD_EINVAL, "--requirepass: missing value");

  /* the file's errors name the file */
  static const char broken[] = "port 7070\nbind localhost\n";
  tu_write_file(path, broken, sizeof broken - 1);
  char want[8192]; /* a temporary path is far shorter than RECD_ERRLEN */
  snprintf(want, sizeof want,
           "%s:2: bind: expected an IPv4 or IPv6 address, got 'localhost'", path);
  char *withfile[] = {"recd", path};
  expect_args(ARGC(withfile), withfile, RECD_EINVAL, want);

  /* a missing file */
  char *nofile[] = {"recd", "/nonexistent/recd.conf", "--port", "1"};
  expect_args(ARGC(nofile), nofile, RECD_EIO,
              "cannot open config file '/nonexistent/recd.conf': No such file or directory");
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_load_file(&c, dir, err), RECD_EIO);
  snprintf(want, sizeof want, "cannot read config file '%s': Is a directory", dir);
  ck_assert_str_eq(err, want);
  config_free(&c);

  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_help_version_test) {
  char *help[] = {"recd", "--help"};
  expect_args(ARGC(help), help, CONFIG_ARGS_HELP, NULL);
  char *h[] = {"recd", "-h"};
  expect_args(ARGC(h), h, CONFIG_ARGS_HELP, NULL);
  char *version[] = {"recd", "--version"};
  expect_args(ARGC(version), version, CONFIG_ARGS_VERSION, NULL);
  char *both[] = {"recd", "--version", "--HELP"};
  expect_args(ARGC(both), both, CONFIG_ARGS_HELP, NULL);
  /* help works with a missing file and bad options, which are not read */
  char *broken[] = {"recd", "/nonexistent.conf", "--prot", "1", "--port", "x", "--help"};
  expect_args(ARGC(broken), broken, CONFIG_ARGS_HELP, NULL);
  /* ...but a value that looks like --help is a value */
  char *pass[] = {"recd", "--requirepass", "--help"};
  expect_args(ARGC(pass), pass, CONFIG_ARGS_RUN, NULL);
  char *test[] = {"recd", "--test-config", "--port", "7071"};
  expect_args(ARGC(test), test, CONFIG_ARGS_TEST, NULL);
  /* --test-config still validates */
  char *testbad[] = {"recd", "--port", "0", "--test-config"};
  expect_args(ARGC(testbad), testbad, RECD_EINVAL,
              "nothing to listen on: port is 0 and unixsocket is empty");
}
END_TEST

/* The tls-* rules config_validate() knows without reading a file (the
 * files are the daemon's: tests/cli/test_tls.sh). */
START_TEST(test_tls_cross_field) {
  char *ok[] = {"recd", "--tls-port", "6380", "--tls-cert-file", "/c.pem", "--tls-key-file",
                "/k.pem", "--tls-ca-cert-file", "/ca.pem"};
  expect_args(ARGC(ok), ok, CONFIG_ARGS_RUN, NULL);
  /* port 0 with a tls-port: TLS only */
  char *only[] = {"recd", "--port", "0", "--tls-port", "6380", "--tls-cert-file", "/c.pem",
                  "--tls-key-file", "/k.pem", "--tls-auth-clients", "no"};
  expect_args(ARGC(only), only, CONFIG_ARGS_RUN, NULL);
  char *nocert[] = {"recd", "--tls-port", "6380", "--tls-key-file", "/k.pem"};
  expect_args(ARGC(nocert), nocert, RECD_EINVAL,
              "tls-port 6380 needs tls-cert-file and tls-key-file");
  char *noca[] = {"recd", "--tls-port", "6380", "--tls-cert-file", "/c.pem", "--tls-key-file",
                  "/k.pem"};
  expect_args(ARGC(noca), noca, RECD_EINVAL,
              "tls-auth-clients yes needs tls-ca-cert-file (the CA that signs client "
              "certificates); or set tls-auth-clients no");
  char *same[] = {"recd", "--tls-port", "7070", "--tls-cert-file", "/c.pem", "--tls-key-file",
                  "/k.pem", "--tls-auth-clients", "no"};
  expect_args(ARGC(same), same, RECD_EINVAL, "tls-port and port are both 7070");
  char *metrics[] = {"recd", "--tls-port", "9121", "--metrics-port", "9121", "--tls-cert-file",
                     "/c.pem", "--tls-key-file", "/k.pem", "--tls-auth-clients", "no"};
  expect_args(ARGC(metrics), metrics, RECD_EINVAL, "metrics-port and tls-port are both 9121");
  char *proto[] = {"recd", "--tls-protocols", "TLSv1.2 SSLv3"};
  expect_args(ARGC(proto), proto, RECD_EINVAL,
              "tls-protocols: expected TLSv1.2 and/or TLSv1.3, got 'SSLv3'");
  char *proto_ok[] = {"recd", "--tls-protocols", "tlsv1.3"};
  expect_args(ARGC(proto_ok), proto_ok, CONFIG_ARGS_RUN, NULL);
  /* metrics-tls: the same files, only with a metrics port */
  char *mtls[] = {"recd", "--metrics-port", "9121", "--metrics-tls", "yes"};
  expect_args(ARGC(mtls), mtls, RECD_EINVAL, "metrics-tls yes needs tls-cert-file and tls-key-file");
  char *mtls_off[] = {"recd", "--metrics-tls", "yes"};
  expect_args(ARGC(mtls_off), mtls_off, CONFIG_ARGS_RUN, NULL);
  char *mtls_ok[] = {"recd", "--metrics-port", "9121", "--metrics-tls", "yes", "--tls-cert-file",
                     "/c.pem", "--tls-key-file", "/k.pem", "--tls-auth-clients", "no"};
  expect_args(ARGC(mtls_ok), mtls_ok, CONFIG_ARGS_RUN, NULL);
  char *auth[] = {"recd", "--tls-auth-clients", "maybe"};
  expect_args(ARGC(auth), auth, RECD_EINVAL,
              "--tls-auth-clients: expected one of no, yes, optional, got 'maybe'");
}
END_TEST

/* Redis Cluster mode: a well-formed seed list, nothing else saying where
 * Redis is. */
START_TEST(test_cluster_cross_field) {
  char *ok[] = {"recd", "--redis-cluster-nodes", "127.0.0.1:7000 [::1]:7001,redis-3:7002",
                "--redis-password", "s"};
  expect_args(ARGC(ok), ok, CONFIG_ARGS_RUN, NULL);
  char *noport[] = {"recd", "--redis-cluster-nodes", "127.0.0.1:7000 127.0.0.1"};
  expect_args(ARGC(noport), noport, RECD_EINVAL,
              "redis-cluster-nodes: \"127.0.0.1\" is not host:port with a port of 1 to 65535 "
              "(an IPv6 address in brackets: [::1]:7000)");
  char *blank[] = {"recd", "--redis-cluster-nodes", " , "};
  expect_args(ARGC(blank), blank, RECD_EINVAL,
              "redis-cluster-nodes: no node given (expected \"host:port host:port ...\")");
  char *sock[] = {"recd", "--redis-cluster-nodes", "h:1", "--redis-socket", "/run/redis.sock"};
  expect_args(ARGC(sock), sock, RECD_EINVAL,
              "redis-cluster-nodes and redis-socket: a cluster is reached over TCP at its "
              "nodes; remove redis-socket");
  char *host[] = {"recd", "--redis-cluster-nodes", "h:1", "--redis-host", "10.0.0.1"};
  expect_args(ARGC(host), host, RECD_EINVAL,
              "redis-cluster-nodes and redis-host: the seed nodes say where the cluster is; "
              "remove redis-host");
  char *port[] = {"recd", "--redis-cluster-nodes", "h:1", "--redis-port", "7000"};
  expect_args(ARGC(port), port, RECD_EINVAL,
              "redis-cluster-nodes and redis-port: the seed nodes say where the cluster is; "
              "remove redis-port");
  char *sent[] = {"recd", "--redis-cluster-nodes", "h:1", "--redis-sentinels", "s:26379",
                  "--redis-master-name", "m"};
  expect_args(ARGC(sent), sent, RECD_EINVAL,
              "redis-cluster-nodes and redis-sentinels: a Redis Cluster fails over by itself; "
              "use one or the other");
}
END_TEST

/* Sentinel mode: both keys or neither, a well-formed list, nothing else
 * saying where Redis is. */
START_TEST(test_sentinel_cross_field) {
  char *ok[] = {"recd", "--redis-sentinels", "127.0.0.1:26379 [::1]:26380,sentinel-3:26381",
                "--redis-master-name", "mymaster", "--redis-sentinel-password", "s"};
  expect_args(ARGC(ok), ok, CONFIG_ARGS_RUN, NULL);
  char *noname[] = {"recd", "--redis-sentinels", "127.0.0.1:26379"};
  expect_args(ARGC(noname), noname, RECD_EINVAL,
              "redis-sentinels is set but redis-master-name is empty: Sentinel needs both "
              "(redis-sentinels \"host:port ...\" and redis-master-name NAME)");
  char *nolist[] = {"recd", "--redis-master-name", "mymaster"};
  expect_args(ARGC(nolist), nolist, RECD_EINVAL,
              "redis-master-name is set but redis-sentinels is empty: Sentinel needs both "
              "(redis-sentinels \"host:port ...\" and redis-master-name NAME)");
  char *pass[] = {"recd", "--redis-sentinel-password", "s"};
  expect_args(ARGC(pass), pass, RECD_EINVAL,
              "redis-sentinel-password is set but redis-sentinels is empty (it is the "
              "sentinels' password)");
  char *noport[] = {"recd", "--redis-sentinels", "127.0.0.1:26379 127.0.0.1",
                    "--redis-master-name", "m"};
  expect_args(ARGC(noport), noport, RECD_EINVAL,
              "redis-sentinels: \"127.0.0.1\" is not host:port with a port of 1 to 65535 "
              "(an IPv6 address in brackets: [::1]:7000)");
  char *badport[] = {"recd", "--redis-sentinels", "h:0", "--redis-master-name", "m"};
  expect_args(ARGC(badport), badport, RECD_EINVAL,
              "redis-sentinels: \"h:0\" is not host:port with a port of 1 to 65535 "
              "(an IPv6 address in brackets: [::1]:7000)");
  char *blank[] = {"recd", "--redis-sentinels", " ", "--redis-master-name", "m"};
  expect_args(ARGC(blank), blank, RECD_EINVAL,
              "redis-sentinels: no node given (expected \"host:port host:port ...\")");
  char *name[] = {"recd", "--redis-sentinels", "h:1", "--redis-master-name", "my master"};
  expect_args(ARGC(name), name, RECD_EINVAL,
              "redis-master-name: 'my master' has a blank or a control character (sentinel "
              "names are one word)");
  char *sock[] = {"recd", "--redis-sentinels", "h:1", "--redis-master-name", "m",
                  "--redis-socket", "/run/redis.sock"};
  expect_args(ARGC(sock), sock, RECD_EINVAL,
              "redis-sentinels and redis-socket: the sentinels name the primary's TCP "
              "address; remove redis-socket");
  char *host[] = {"recd", "--redis-sentinels", "h:1", "--redis-master-name", "m",
                  "--redis-host", "10.0.0.1"};
  expect_args(ARGC(host), host, RECD_EINVAL,
              "redis-sentinels and redis-host: the sentinels name the primary; remove "
              "redis-host");
  char *port[] = {"recd", "--redis-sentinels", "h:1", "--redis-master-name", "m",
                  "--redis-port", "6380"};
  expect_args(ARGC(port), port, RECD_EINVAL,
              "redis-sentinels and redis-port: the sentinels name the primary; remove "
              "redis-port");
  /* 33 sentinels */
  char many[33 * 8 + 1] = "";
  for (int i = 0; i < 33; i++)
    strcat(many, "h:26379 ");
  char *toomany[] = {"recd", "--redis-sentinels", many, "--redis-master-name", "m"};
  expect_args(ARGC(toomany), toomany, RECD_EINVAL, "redis-sentinels: 33 sentinels, at most 32");
}
END_TEST

START_TEST(test_cross_field) {
  char *nolisten[] = {"recd", "--port", "0"};
  expect_args(ARGC(nolisten), nolisten, RECD_EINVAL,
              "nothing to listen on: port is 0 and unixsocket is empty");
  char *metrics[] = {"recd", "--metrics-port", "7070"};
  expect_args(ARGC(metrics), metrics, RECD_EINVAL, "metrics-port and port are both 7070");
  char *metrics_ok[] = {"recd", "--metrics-port", "9121"};
  expect_args(ARGC(metrics_ok), metrics_ok, CONFIG_ARGS_RUN, NULL);
  /* metrics-port 0 with port 0 is not a clash */
  char *zero[] = {"recd", "--port", "0", "--unixsocket", "/tmp/x.sock"};
  expect_args(ARGC(zero), zero, CONFIG_ARGS_RUN, NULL);
  char *sock[] = {"recd", "--unixsocket", "/tmp/x.sock", "--redis-socket", "/tmp/x.sock"};
  expect_args(ARGC(sock), sock, RECD_EINVAL,
              "unixsocket and redis-socket are the same path; recd would replace "
              "Redis's socket with its own");
  char *pid[] = {"recd", "--unixsocket", "/tmp/x", "--pidfile", "/tmp/x"};
  expect_args(ARGC(pid), pid, RECD_EINVAL, "pidfile and unixsocket are the same path");

  /* the guards for a hand-edited struct */
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  c.key_prefix[0] = '\0';
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "key-prefix: must not be empty");
  config_free(&c);
  ck_assert_int_eq(config_init(&c), 0);
  int n = c.bind.n;
  c.bind.n = 0;
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "bind: expected 1 to 16 addresses");
  c.bind.n = n;
  config_free(&c);
}
END_TEST

/* Non-default values for every key, chosen to exercise formatting: blanks,
 * quotes, backslashes, control bytes and UTF-8 in strings, sizes that are
 * not a whole unit. */
static void set_unusual(config_t *c) {
  static const char *const kv[][2] = {
    {"port", "0"}, {"bind", "::1 10.1.2.3"}, {"unixsocket", "/run/r e\"c'd\\.sock"},
    {"unixsocketperm", "0750"}, {"requirepass", "p\tw \x01\x7f\xc3\xa9 #x"},
    {"maxclients", "1"}, {"timeout", "31536000"}, {"max-request-bytes", "1000001"},
    {"max-request-args", "16"}, {"client-output-buffer-limit", "2147483647"},
    {"model", "/srv/m o d.bin"}, {"models-dir", "/srv/models"},
    {"history-limit", "100000"}, {"max-count", "1"}, {"exclude-history", "no"},
    {"workers", "256"}, {"scan-split-items", "0"}, {"scan-loop-help-us", "1000000"},
    {"scan-prefilter-bytes", "0"},
    {"redis-host", "::1"}, {"redis-port", "1"}, {"redis-cluster-refresh-ms", "3600000"},
    {"redis-socket", "/run/redis.sock"}, {"redis-password", "'\"\n\r"},
    {"key-prefix", "#"}, {"redis-timeout-ms", "60000"}, {"feedback-timeout-ms", "1"},
    {"redis-reconnect-max-ms", "10"}, {"unavailable-refresh-ms", "3600000"},
    {"metrics-port", "65535"}, {"loglevel", "debug"}, {"pidfile", "/run/recd.pid"},
    /* two variants in one value, the second's path needing quotes */
    {"variant", "ctl /srv/a.bin 30 t-2.x:Y \"/srv/v 2/\\\"q'\\\\\\t.bin\" 70"},
    {"experiment-salt", "s a\"lt"}, {"track-impressions", "no"},
    {"attribution-window", "2592000"}, {"impressions-max", "1"},
    {"feedback-weight-purchase", "1000000000"}, {"feedback-weight-cart", "0.3"},
    {"feedback-weight-click", "1e-300"}, {"feedback-weight-hide", "0"},
    {"feedback-weight-unhide", "0"}, {"experiment-refresh-ms", "100"},
    {"feedback-unknown-items", "warn"}, {"shown-limit", "0"}, {"max-per-category", "1"},
    {"track-shown", "no"},
    {"promote-slots", "100000"}, {"one-per-group", "yes"}, {"exclude-bought-groups", "yes"},
    {"model-watch", "yes"},
    /* two users in one value (CONFIG GET's form), passwords hashed */
    {"user", "web on >pw \"> two\" +@read -model|categories ; mon off nopass +@monitor"},
    {"aclfile", "/etc/recd/users acl"}, {"redis-user", "recd"},
    {"redis-sentinels", "127.0.0.1:26379 [::1]:26380"}, {"redis-master-name", "m.1-x"},
    {"redis-cluster-nodes", "127.0.0.1:7000 [::1]:7001,redis-3:7002"},
    {"redis-sentinel-password", "s \"p\x01"},
    {"tls-port", "6380"}, {"tls-cert-file", "/etc/recd/c rt.pem"},
    {"tls-key-file", "/etc/recd/k.pem"}, {"tls-ca-cert-file", "/etc/recd/ca.pem"},
    {"tls-auth-clients", "optional"}, {"tls-protocols", "TLSv1.3"},
    {"tls-ciphersuites", "TLS_AES_256_GCM_SHA384"}, {"metrics-tls", "yes"},
  };
  char err[RECD_ERRLEN] = "";
  size_t n = sizeof kv / sizeof kv[0];
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(config_set(c, kv[i][0], kv[i][1], err) == 0, "%s: %s", kv[i][0], err);
    for (size_t j = 0; j < i; j++)
      ck_assert_str_ne(kv[i][0], kv[j][0]);
  }
  /* n distinct valid keys: every key is covered, so the round trips below
   * test all of them */
  ck_assert_uint_eq(n, config_count());
}

START_TEST(test_round_trip) {
  config_t a, b, d;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&a), 0);
  set_unusual(&a);
  ck_assert_int_eq(config_set(&a, "port", "7070", err), 0);

  /* config_format -> config_set, key by key */
  ck_assert_int_eq(config_init(&b), 0);
  for (size_t i = 0; i < config_count(); i++) {
    const char *k = config_name(i);
    char val[8192];
    ck_assert_int_ge(config_format(&a, k, val, sizeof val), 0);
    ck_assert_msg(config_set(&b, k, val, err) == 0, "%s '%s': %s", k, val, err);
  }
  assert_same(&a, &b);
  ck_assert_str_eq(b.requirepass, "p\tw \x01\x7f\xc3\xa9 #x");
  ck_assert_uint_eq(b.unixsocketperm, 0750);
  ck_assert_uint_eq(b.max_request_bytes, 1000001);
  ck_assert_uint_eq(b.variants.n, 2);
  ck_assert_str_eq(b.variants.name[1], "t-2.x:Y");
  ck_assert_str_eq(b.variants.path[1], "/srv/v 2/\"q'\\\t.bin");
  ck_assert_uint_eq(b.variants.percent[1], 70);
  ck_assert_str_eq(b.experiment_salt, "s a\"lt");
  ck_assert(b.feedback_weight_click == 1e-300);
  ck_assert(b.feedback_weight_unhide == 0.0);
  ck_assert_int_eq(b.shown_limit, 0);
  ck_assert(!b.track_shown);
  ck_assert(b.one_per_group && b.exclude_bought_groups);
  /* variants and model are exclusive */
  ck_assert_int_eq(config_validate(&b, err), RECD_EINVAL);
  ck_assert_int_eq(config_set(&b, "model", "", err), 0);
  /* redis-sentinels and a Redis address are exclusive */
  ck_assert_int_eq(config_validate(&b, err), RECD_EINVAL);
  ck_assert_int_eq(config_set(&b, "redis-socket", "", err), 0);
  ck_assert_int_eq(config_set(&b, "redis-host", "127.0.0.1", err), 0);
  ck_assert_int_eq(config_set(&b, "redis-port", "6379", err), 0);
  /* and so are redis-cluster-nodes and redis-sentinels */
  ck_assert_int_eq(config_validate(&b, err), RECD_EINVAL);
  ck_assert_str_eq(err, "redis-cluster-nodes and redis-sentinels: a Redis Cluster fails over "
                   "by itself; use one or the other");
  ck_assert_int_eq(config_set(&b, "redis-cluster-nodes", "", err), 0);
  ck_assert_int_eq(config_validate(&b, err), 0);

  /* config_dump -> config_load_buffer, the whole file */
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&text, &len);
  ck_assert_ptr_nonnull(fp);
  ck_assert_int_eq(config_dump(&a, fp, 0), 0);
  ck_assert_int_eq(fclose(fp), 0);
  ck_assert_int_eq(config_init(&d), 0);
  ck_assert_msg(config_load_buffer(&d, text, len, "dump", err) == 0, "%s\n%s", err, text);
  assert_same(&a, &d);
  ck_assert_ptr_nonnull(strstr(text, "\nmax-request-bytes 1000001\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nclient-output-buffer-limit 2147483647\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nbind ::1 10.1.2.3\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nmodel \"/srv/m o d.bin\"\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nkey-prefix #\n"));
  /* one line per variant, in order */
  ck_assert_ptr_nonnull(strstr(text, "\nvariant ctl /srv/a.bin 30\n"
                                     "variant t-2.x:Y \"/srv/v 2/\\\"q'\\\\\\t.bin\" 70\n"
                                     "experiment-salt \"s a\\\"lt\"\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nfeedback-weight-purchase 1000000000\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nfeedback-weight-cart 0.3\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nfeedback-weight-click 1e-300\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nfeedback-weight-hide 0\n"));
  ck_assert_ptr_nonnull(strstr(text, "\npromote-slots 100000\n"));
  free(text);
  config_free(&d);

  /* the defaults dump in units and round-trip as well */
  config_t def;
  ck_assert_int_eq(config_init(&def), 0);
  fp = open_memstream(&text, &len);
  ck_assert_int_eq(config_dump(&def, fp, 0), 0);
  fclose(fp);
  ck_assert_ptr_nonnull(strstr(text, "\nmax-request-bytes 1mb\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nunixsocketperm 0700\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nrequirepass \"\"\n"));
  /* no variants: `variant ""`, which also empties set_unusual's two */
  ck_assert_ptr_nonnull(strstr(text, "\nvariant \"\"\nexperiment-salt recd\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nfeedback-weight-click 0.1\n"));
  ck_assert_int_eq(config_init(&d), 0);
  set_unusual(&d);
  ck_assert_int_eq(config_load_buffer(&d, text, len, "dump", err), 0);
  assert_same(&def, &d);
  free(text);
  config_free(&d);
  config_free(&def);

  /* redacted: passwords are commented out, the rest still loads */
  fp = open_memstream(&text, &len);
  ck_assert_int_eq(config_dump(&a, fp, CONFIG_DUMP_REDACT), 0);
  fclose(fp);
  ck_assert_ptr_null(strstr(text, "p\\tw"));
  ck_assert_ptr_nonnull(strstr(text, "\n# requirepass (redacted)\n"));
  ck_assert_ptr_nonnull(strstr(text, "\n# redis-password (redacted)\n"));
  ck_assert_int_eq(config_init(&d), 0);
  ck_assert_int_eq(config_load_buffer(&d, text, len, "dump", err), 0);
  ck_assert_str_eq(d.requirepass, "");
  ck_assert_str_eq(d.model, a.model);
  free(text);
  config_free(&d);
  config_free(&a);
  config_free(&b);
}
END_TEST

START_TEST(test_format) {
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_str_eq(fmt(&c, "port"), "7070");
  ck_assert_str_eq(fmt(&c, "PORT"), "7070");
  ck_assert_str_eq(fmt(&c, "max-request-bytes"), "1048576");
  ck_assert_str_eq(fmt(&c, "exclude-history"), "yes");
  ck_assert_str_eq(fmt(&c, "unixsocket"), "");
  ck_assert_str_eq(fmt(&c, "key-prefix"), "recd:");
  ck_assert_str_eq(fmt(&c, "bind"), "127.0.0.1");
  ck_assert_int_eq(config_format(&c, "prot", NULL, 0), RECD_ENOTFOUND);
  /* snprintf semantics: the full length, a truncated NUL-terminated copy */
  char small[4];
  ck_assert_int_eq(config_format(&c, "redis-host", small, sizeof small), 9);
  ck_assert_str_eq(small, "127");
  ck_assert_int_eq(config_format(&c, "redis-host", NULL, 0), 9);
  char one[1] = {'x'};
  ck_assert_int_eq(config_format(&c, "port", one, 1), 4);
  ck_assert_int_eq(one[0], '\0');
  /* config_set on an unknown key */
  ck_assert_int_eq(config_set(&c, "prot", "1", err), RECD_ENOTFOUND);
  ck_assert_str_eq(err, "unknown key 'prot'");
  /* secrets */
  for (size_t i = 0; i < config_count(); i++) {
    int secret = strcmp(config_name(i), "requirepass") == 0 ||
                 strcmp(config_name(i), "redis-password") == 0 ||
                 strcmp(config_name(i), "redis-sentinel-password") == 0;
    ck_assert_int_eq(config_is_secret(i), secret);
  }
  /* long bad values are cut in messages so the key stays visible */
  char big[300];
  memset(big, '9', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  big[0] = 'x';
  ck_assert_int_eq(config_set(&c, "port", big, err), RECD_EINVAL);
  char want[RECD_ERRLEN];
  snprintf(want, sizeof want, "port: expected an integer in [0, 65535], got '%.48s...'",
           big);
  ck_assert_str_eq(err, want);
  config_free(&c);
}
END_TEST

START_TEST(test_usage) {
  char *text = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&text, &len);
  config_usage(fp, "recd");
  fclose(fp);
  ck_assert_ptr_nonnull(strstr(text, "Usage: recd [/path/to/recd.conf] [--key value ...]"));
  ck_assert_ptr_nonnull(strstr(text, "  --port <0..65535>  (default: 7070)\n"
                                     "      TCP port for RESP clients; 0 = no TCP listener\n"));
  ck_assert_ptr_nonnull(strstr(text, "  --loglevel <debug|verbose|notice|warning>  "
                                     "(default: notice)\n"));
  ck_assert_ptr_nonnull(strstr(text, "  --max-request-bytes <size 1kb..1gb>  "
                                     "(default: 1mb)\n"));
  ck_assert_ptr_nonnull(strstr(text, "  --unixsocket <path>  (default: \"\")\n"));
  ck_assert_ptr_nonnull(strstr(text, "  --variant <\"name path percent\">  (default: \"\")\n"
                                     "      repeatable, each appends: "));
  ck_assert_ptr_nonnull(strstr(text, "  --feedback-weight-cart <number 0..1e9>  "
                                     "(default: 0.5)\n"));
  ck_assert_ptr_nonnull(strstr(text, "  --attribution-window <1..2592000>  "
                                     "(default: 86400)\n"));
  ck_assert_ptr_nonnull(strstr(text, "  --track-impressions <yes|no>  (default: yes)\n"));
  ck_assert_ptr_nonnull(strstr(text, "  --experiment-salt <string>  (default: recd)\n"));
  for (size_t i = 0; i < config_count(); i++) {
    char opt[64];
    snprintf(opt, sizeof opt, "\n  --%s <", config_name(i));
    ck_assert_msg(strstr(text, opt) != NULL, "%s missing from usage", config_name(i));
  }
  free(text);
}
END_TEST

/* systemd/recd.conf is the documentation of every key: it must load, hold
 * the defaults (model aside) and mention every key. */
START_TEST(test_shipped_conf) {
  char path[4096];
  const char *data = getenv("RECD_SOURCE_DIR");
  if (data != NULL)
    snprintf(path, sizeof path, "%s/systemd/recd.conf", data);
  else
    snprintf(path, sizeof path, "systemd/recd.conf");
  config_t c, def;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_msg(config_load_file(&c, path, err) == 0, "%s", err);
  ck_assert_int_eq(config_validate(&c, err), 0);
  ck_assert_str_eq(c.model, "/var/lib/recd/model.bin");
  ck_assert_int_eq(config_init(&def), 0);
  ck_assert_int_eq(config_set(&def, "model", c.model, err), 0);
  assert_same(&c, &def);
  config_free(&def);
  config_free(&c);

  size_t len;
  char *text = tu_read_file(path, &len);
  text[len] = '\0';
  for (size_t i = 0; i < config_count(); i++) {
    char line[64];
    /* variant has no default line: its examples are commented out */
    snprintf(line, sizeof line, strcmp(config_name(i), "variant") == 0 ? "\n# %s " : "\n%s ",
             config_name(i));
    ck_assert_msg(strstr(text, line) != NULL, "%s not in %s", config_name(i), path);
  }
  /* the commented examples are valid variant lines (with model "") */
  const char *ex = strstr(text, "\n# variant control ");
  ck_assert_ptr_nonnull(ex);
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "model", "", err), 0);
  char lines[512] = "";
  for (int k = 0; k < 2; k++) {
    const char *eol = strchr(ex + 1, '\n');
    ck_assert_ptr_nonnull(eol);
    ck_assert_int_eq(strncmp(ex, "\n# variant ", 11), 0);
    snprintf(lines + strlen(lines), sizeof lines - strlen(lines), "%.*s\n",
             (int)(eol - (ex + 3)), ex + 3);
    ex = eol;
  }
  ck_assert_msg(config_load_buffer(&c, lines, strlen(lines), "example", err) == 0, "%s", err);
  ck_assert_uint_eq(c.variants.n, 2);
  ck_assert_msg(config_validate(&c, err) == 0, "%s", err);
  config_free(&c);
  free(text);
}
END_TEST

START_TEST(test_file_limits) {
  char *dir = tu_mkdtemp();
  char path[4096];
  snprintf(path, sizeof path, "%s", tu_path(dir, "big.conf"));
  /* exactly CONFIG_FILE_MAX bytes of comments load; one more byte does not */
  size_t n = CONFIG_FILE_MAX;
  char *buf = malloc(n + 1);
  memset(buf, '#', n + 1);
  for (size_t i = 99; i < n + 1; i += 100)
    buf[i] = '\n';
  tu_write_file(path, buf, n);
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_msg(config_load_file(&c, path, err) == 0, "%s", err);
  tu_write_file(path, buf, n + 1);
  ck_assert_int_eq(config_load_file(&c, path, err), RECD_ERANGE);
  char want[8192];
  snprintf(want, sizeof want, "config file '%s' is larger than 1048576 bytes", path);
  ck_assert_str_eq(err, want);
  config_free(&c);
  free(buf);

  /* a long line full of tokens: counted, not stored, no overflow */
  size_t ln = 200000;
  char *line = malloc(ln + 16);
  memcpy(line, "bind", 4);
  for (size_t i = 4; i + 2 <= ln; i += 2) {
    line[i] = ' ';
    line[i + 1] = '"';
  }
  line[ln] = '\0';
  strcat(line, "\"\n");
  expect_file(line, RECD_EFORMAT, NULL);
  for (size_t i = 4; i + 2 <= ln; i += 2)
    line[i + 1] = 'x';
  line[ln] = '\0';
  expect_file(line, RECD_EINVAL, "recd.conf:1: bind: expected 1 to 16 addresses, got 99998");
  free(line);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* The numbers of feedback-weight-*: a double, with messages like the
 * integers'. */
START_TEST(test_numbers) {
  static const struct { const char *in; double v; const char *out; } good[] = {
    {"0", 0, "0"}, {"1", 1, "1"}, {"0.5", 0.5, "0.5"}, {".5", 0.5, "0.5"},
    {"5.", 5, "5"}, {"000.25", 0.25, "0.25"}, {"1e9", 1e9, "1000000000"},
    {"1000000000", 1e9, "1000000000"}, {"1000000000.0", 1e9, "1000000000"},
    {"2.5E-2", 0.025, "0.025"}, {"1e+3", 1000, "1000"}, {"-0", 0, "0"},
    {"-0.0e5", 0, "0"}, {"0.1", 0.1, "0.1"}, {"0.3", 0.3, "0.3"}, {"1e-5", 1e-5, "1e-05"},
    {"123456.789", 123456.789, "123456.789"}, {"1e-400", 0, "0"},
    {"0.1000000000000000055511151231257827", 0.1, "0.1"},
    {"999999999.99999994", 999999999.99999994, "999999999.9999999"},
  };
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    ck_assert_msg(config_set(&c, "feedback-weight-cart", good[i].in, err) == 0, "%s: %s",
                  good[i].in, err);
    ck_assert_msg(c.feedback_weight_cart == good[i].v, "%s: %.17g", good[i].in,
                  c.feedback_weight_cart);
    ck_assert_str_eq(fmt(&c, "feedback-weight-cart"), good[i].out);
    ck_assert(!signbit(c.feedback_weight_cart));
  }
  /* every key of the kind, both bounds */
  static const char *const keys[] = {"feedback-weight-purchase", "feedback-weight-cart",
                                     "feedback-weight-click"};
  for (size_t k = 0; k < 3; k++) {
    ck_assert_int_eq(config_set(&c, keys[k], "0", err), 0);
    ck_assert_int_eq(config_set(&c, keys[k], "1e9", err), 0);
    ck_assert_str_eq(fmt(&c, keys[k]), "1000000000");
    ck_assert_int_eq(config_set(&c, keys[k], "1000000001", err), RECD_ERANGE);
    char want[RECD_ERRLEN];
    snprintf(want, sizeof want, "%s: expected a number in [0, 1e9], got '1000000001'",
             keys[k]);
    ck_assert_str_eq(err, want);
    ck_assert_str_eq(fmt(&c, keys[k]), "1000000000"); /* kept */
  }
  /* hide and unhide never weigh anything: only 0, anything else named */
  ck_assert_int_eq(config_set(&c, "feedback-weight-hide", "0", err), 0);
  ck_assert_int_eq(config_set(&c, "feedback-weight-unhide", "0.1", err), RECD_ERANGE);
  ck_assert_str_eq(err, "feedback-weight-unhide: expected a number in [0, 0], got '0.1'");
  /* what formats reads back bit for bit: a spread of doubles in range */
  uint64_t x = 88172645463325252ULL;
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double v = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
    v = i % 3 == 0 ? v * 1e9 : i % 3 == 1 ? v : v * pow(10, -(double)(i % 300));
    char in[64];
    snprintf(in, sizeof in, "%.17g", v);
    ck_assert_msg(config_set(&c, "feedback-weight-click", in, err) == 0, "%s: %s", in, err);
    ck_assert(c.feedback_weight_click == v);
    char back[64];
    const char *f = fmt(&c, "feedback-weight-click");
    ck_assert_uint_lt(strlen(f), sizeof back);
    memcpy(back, f, strlen(f) + 1);
    ck_assert_int_eq(config_set(&c, "feedback-weight-click", back, err), 0);
    ck_assert_msg(c.feedback_weight_click == v, "%s -> %s", in, back);
    ck_assert_uint_le(strlen(back), strlen(in));
  }
  config_free(&c);

  const char *range = "expected a number in [0, 1e9], got ";
  static const char *const bad[] = {
    "x", "\"\"", "\" 1\"", "\"1 \"", "+1", "0x10", "inf", "-inf", "nan", "NAN", "1e", "1e+",
    "e5", ".", "-", "-.", "1.2.3", "1,5", "1e5.5", "1_000", "١", "0.5x", "1e9999999999999999999",
    "-1", "-0.001", "1e10", "1000000000.0000002", "1e999", "-1e999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char msg[RECD_ERRLEN], raw[64];
    size_t n = strlen(bad[i]);
    if (bad[i][0] == '"')
      snprintf(raw, sizeof raw, "%.*s", (int)(n - 2), bad[i] + 1);
    else
      snprintf(raw, sizeof raw, "%s", bad[i]);
    char show[64];
    if (strcmp(raw, "١") == 0)
      snprintf(show, sizeof show, "\\xd9\\xa1");
    else
      snprintf(show, sizeof show, "%s", raw);
    snprintf(msg, sizeof msg, "%s'%s'", range, show);
    expect_bad("feedback-weight-click", bad[i], msg);
  }
  /* syntax errors are RECD_EINVAL, out of range RECD_ERANGE */
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "feedback-weight-cart", "x", err), RECD_EINVAL);
  ck_assert_str_eq(err, "feedback-weight-cart: expected a number in [0, 1e9], got 'x'");
  ck_assert_int_eq(config_set(&c, "feedback-weight-cart", "-1", err), RECD_ERANGE);
  ck_assert_int_eq(config_set(&c, "feedback-weight-cart", "1e999", err), RECD_ERANGE);
  ck_assert(c.feedback_weight_cart == 0.5);
  config_free(&c);
  expect_file("\n\nfeedback-weight-click 0.1 0.2\n", RECD_EINVAL,
              "recd.conf:3: feedback-weight-click: expected 1 value, got 2");
  expect_file("feedback-weight-click\n", RECD_EINVAL,
              "recd.conf:1: feedback-weight-click: expected 1 value, got 0");
  expect_file("feedback-weight-click \"0.5\\x00\"\n", RECD_EINVAL,
              "recd.conf:1: feedback-weight-click: expected a number in [0, 1e9], got "
              "'0.5\\x00'");

  /* a hand-edited NaN or out-of-range number is caught by config_validate */
  ck_assert_int_eq(config_init(&c), 0);
  c.feedback_weight_cart = NAN;
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "feedback-weight-cart: expected a number in [0, 1e9], got nan");
  c.feedback_weight_cart = -1;
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "feedback-weight-cart: expected a number in [0, 1e9], got -1");
  config_free(&c);
}
END_TEST

/* The experiment keys other than variant: every bound. */
START_TEST(test_experiment_keys) {
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  static const struct { const char *key; const char *lo, *hi; int *field; } ints[] = {
    {"attribution-window", "1", "2592000", NULL},
    {"impressions-max", "1", "100000", NULL},
    {"experiment-refresh-ms", "100", "3600000", NULL},
  };
  int *fields[] = {&c.attribution_window, &c.impressions_max, &c.experiment_refresh_ms};
  for (size_t i = 0; i < 3; i++) {
    ck_assert_int_eq(config_set(&c, ints[i].key, ints[i].lo, err), 0);
    ck_assert_int_eq(*fields[i], atoi(ints[i].lo));
    ck_assert_int_eq(config_set(&c, ints[i].key, ints[i].hi, err), 0);
    ck_assert_int_eq(*fields[i], atoi(ints[i].hi));
    ck_assert_str_eq(fmt(&c, ints[i].key), ints[i].hi);
  }
  ck_assert_int_eq(config_set(&c, "track-impressions", "no", err), 0);
  ck_assert(!c.track_impressions);
  ck_assert_int_eq(config_set(&c, "track-impressions", "Yes", err), 0);
  ck_assert(c.track_impressions);
  char salt[80];
  memset(salt, 'z', 64);
  salt[64] = '\0';
  ck_assert_int_eq(config_set(&c, "experiment-salt", salt, err), 0);
  ck_assert_uint_eq(strlen(c.experiment_salt), 64);
  ck_assert_int_eq(config_set(&c, "experiment-salt", "a b\t\"c'", err), 0);
  ck_assert_str_eq(c.experiment_salt, "a b\t\"c'");
  ck_assert_int_eq(config_validate(&c, err), 0);
  /* a hand-emptied salt */
  c.experiment_salt[0] = '\0';
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "experiment-salt: must not be empty");
  config_free(&c);

  expect_bad("attribution-window", "0", "expected an integer in [1, 2592000], got '0'");
  expect_bad("attribution-window", "2592001",
             "expected an integer in [1, 2592000], got '2592001'");
  expect_bad("attribution-window", "1d", "expected an integer in [1, 2592000], got '1d'");
  expect_bad("impressions-max", "0", "expected an integer in [1, 100000], got '0'");
  expect_bad("impressions-max", "100001", "expected an integer in [1, 100000], got '100001'");
  expect_bad("experiment-refresh-ms", "99",
             "expected an integer in [100, 3600000], got '99'");
  expect_bad("experiment-refresh-ms", "3600001",
             "expected an integer in [100, 3600000], got '3600001'");
  expect_bad("track-impressions", "on", "expected yes or no, got 'on'");
  expect_bad("experiment-salt", "\"\"", "must not be empty");
  memset(salt, 'z', 65);
  salt[65] = '\0';
  expect_bad("experiment-salt", salt, "longer than 64 bytes");
  expect_file("experiment-salt \"a\\x00b\"\n", RECD_EINVAL,
              "recd.conf:1: experiment-salt: contains a NUL byte");
  expect_file("# x\ntrack-impressions yes no\n", RECD_EINVAL,
              "recd.conf:2: track-impressions: expected 1 value, got 2");

  /* a file with every experiment key */
  static const char text[] =
      "model \"\"\n"
      "variant control /var/lib/recd/a.bin 90\n"
      "VARIANT test /var/lib/recd/b.bin 10\n"
      "experiment-salt spring-2025\n"
      "track-impressions no\n"
      "attribution-window 3600\n"
      "impressions-max 50\n"
      "feedback-weight-purchase 2\n"
      "feedback-weight-cart 0.25\n"
      "feedback-weight-click 0\n"
      "feedback-weight-hide 0\n"
      "feedback-weight-unhide 0e0\n"
      "experiment-refresh-ms 500\n";
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_msg(config_load_buffer(&c, text, strlen(text), "recd.conf", err) == 0, "%s", err);
  ck_assert_int_eq(config_validate(&c, err), 0);
  ck_assert_uint_eq(c.variants.n, 2);
  ck_assert_str_eq(c.variants.name[0], "control");
  ck_assert_str_eq(c.variants.path[0], "/var/lib/recd/a.bin");
  ck_assert_uint_eq(c.variants.percent[0], 90);
  ck_assert_str_eq(c.variants.name[1], "test");
  ck_assert_str_eq(c.variants.path[1], "/var/lib/recd/b.bin");
  ck_assert_uint_eq(c.variants.percent[1], 10);
  ck_assert_ptr_null(c.variants.name[2]);
  ck_assert_str_eq(c.experiment_salt, "spring-2025");
  ck_assert(!c.track_impressions);
  ck_assert_int_eq(c.attribution_window, 3600);
  ck_assert_int_eq(c.impressions_max, 50);
  ck_assert(c.feedback_weight_purchase == 2);
  ck_assert(c.feedback_weight_cart == 0.25);
  ck_assert(c.feedback_weight_click == 0);
  ck_assert(c.feedback_weight_hide == 0);
  ck_assert(c.feedback_weight_unhide == 0);
  ck_assert_int_eq(c.experiment_refresh_ms, 500);
  ck_assert_str_eq(fmt(&c, "variant"),
                   "control /var/lib/recd/a.bin 90 test /var/lib/recd/b.bin 10");
  ck_assert_str_eq(fmt(&c, "feedback-weight-unhide"), "0");
  config_free(&c);
}
END_TEST

/* Loads text into a fresh config (model "" first) and returns it in *c. */
static void load_ok(config_t *c, const char *text) {
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(c), 0);
  ck_assert_int_eq(config_set(c, "model", "", err), 0);
  ck_assert_msg(config_load_buffer(c, text, strlen(text), "recd.conf", err) == 0, "%s: %s",
                text, err);
}

START_TEST(test_variant_lines) {
  config_t c;
  char err[RECD_ERRLEN] = "";

  /* repeated lines append in order; quoting as for any value; "" empties */
  load_ok(&c, "variant a /m/a.bin 20\n"
              "variant \"b\" '/m/with blanks.bin' 30\n"
              "Variant c.2:x-y_Z /m/c.bin 50\n");
  ck_assert_uint_eq(c.variants.n, 3);
  ck_assert_str_eq(c.variants.name[1], "b");
  ck_assert_str_eq(c.variants.path[1], "/m/with blanks.bin");
  ck_assert_str_eq(c.variants.name[2], "c.2:x-y_Z");
  ck_assert_uint_eq(c.variants.percent[0] + c.variants.percent[1] + c.variants.percent[2],
                    100);
  ck_assert_str_eq(fmt(&c, "variant"),
                   "a /m/a.bin 20 b \"/m/with blanks.bin\" 30 c.2:x-y_Z /m/c.bin 50");
  ck_assert_int_eq(config_validate(&c, err), 0);
  ck_assert_int_eq(config_set(&c, "variant", "", err), 0);
  ck_assert_uint_eq(c.variants.n, 0);
  ck_assert_ptr_null(c.variants.name[0]);
  ck_assert_str_eq(fmt(&c, "variant"), "");
  config_free(&c);

  /* `variant ""` in a file empties what came before it; one line may hold
   * several triples; percent 0 is a variant only VARIANT <name> reaches */
  load_ok(&c, "variant old /m/old.bin 100\n"
              "variant \"\"\n"
              "variant a /m/a.bin 100 b /m/b.bin 0\n"
              "variant c /m/c.bin 0\n");
  ck_assert_uint_eq(c.variants.n, 3);
  ck_assert_str_eq(c.variants.name[0], "a");
  ck_assert_str_eq(c.variants.name[1], "b");
  ck_assert_uint_eq(c.variants.percent[1], 0);
  ck_assert_str_eq(c.variants.name[2], "c");
  ck_assert_int_eq(config_validate(&c, err), 0);
  config_free(&c);

  /* a file's first variant line replaces the list (as redis.conf's first
   * `save` line does), so loading it twice, or over other variants, gives
   * its list; a file without variant lines leaves the list alone */
  static const char two[] = "variant a /m/a.bin 50\nvariant b /m/b.bin 50\n";
  load_ok(&c, two);
  ck_assert_int_eq(config_load_buffer(&c, two, sizeof two - 1, "recd.conf", err), 0);
  ck_assert_uint_eq(c.variants.n, 2);
  ck_assert_str_eq(fmt(&c, "variant"), "a /m/a.bin 50 b /m/b.bin 50");
  ck_assert_int_eq(config_load_buffer(&c, "port 1\n", 7, "recd.conf", err), 0);
  ck_assert_uint_eq(c.variants.n, 2);
  ck_assert_int_eq(config_load_buffer(&c, "variant z /m/z.bin 100\n", 23, "x", err), 0);
  ck_assert_str_eq(fmt(&c, "variant"), "z /m/z.bin 100");
  /* a bad first line leaves the old list */
  ck_assert_int_eq(config_load_buffer(&c, "variant y /m/y.bin 101\n", 23, "x", err),
                   RECD_ERANGE);
  ck_assert_str_eq(fmt(&c, "variant"), "z /m/z.bin 100");
  /* config_set and the command line append, to a file's list too */
  ck_assert_int_eq(config_set(&c, "variant", "y /m/y.bin 0", err), 0);
  ck_assert_str_eq(fmt(&c, "variant"), "z /m/z.bin 100 y /m/y.bin 0");
  ck_assert_int_eq(config_set(&c, "variant", "y /m/y2.bin 0", err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: variant 'y' is given twice");
  config_free(&c);

  /* the cap: 16 variants, from a file, and one line of 16 triples */
  char text[4096] = "", line16[4096] = "variant";
  for (int i = 0; i < 16; i++) {
    snprintf(text + strlen(text), sizeof text - strlen(text), "variant v%d /m/%d.bin %d\n", i,
             i, i < 4 ? 25 : 0);
    snprintf(line16 + strlen(line16), sizeof line16 - strlen(line16), " v%d /m/%d.bin %d", i,
             i, i < 4 ? 25 : 0);
  }
  load_ok(&c, text);
  ck_assert_uint_eq(c.variants.n, 16);
  ck_assert_str_eq(c.variants.name[15], "v15");
  ck_assert_int_eq(config_validate(&c, err), 0);
  ck_assert_int_eq(config_set(&c, "variant", "v16 /m/16.bin 0", err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: at most 16 variants, got 17");
  ck_assert_uint_eq(c.variants.n, 16);
  config_free(&c);
  strcat(line16, "\n");
  load_ok(&c, line16);
  ck_assert_uint_eq(c.variants.n, 16);
  config_free(&c);
  strcat(text, "variant v16 /m/16.bin 0\n");
  expect_file(text, RECD_EINVAL, "recd.conf:17: variant: at most 16 variants, got 17");
  line16[strlen(line16) - 1] = '\0';
  strcat(line16, " v16 /m/16.bin 0\n");
  expect_file(line16, RECD_EINVAL, "recd.conf:1: variant: at most 16 variants, got 17");
  /* a line far beyond the tokens stored: counted, refused before reading */
  char huge[8192] = "variant";
  for (int i = 0; i < 200; i++)
    strcat(huge, " a /m 1");
  strcat(huge, "\n");
  expect_file(huge, RECD_EINVAL, "recd.conf:1: variant: at most 16 variants, got 200");
  huge[strlen(huge) - 3] = '\n';
  huge[strlen(huge) - 2] = '\0';
  expect_file(huge, RECD_EINVAL,
              "recd.conf:1: variant: expected <name> <model-path> <percent>, got 599 values");

  /* the number of values */
  expect_file("variant\n", RECD_EINVAL,
              "recd.conf:1: variant: expected <name> <model-path> <percent>, got 0 values "
              "(write \"\" to remove every variant)");
  expect_bad("variant", "a", "expected <name> <model-path> <percent>, got 1 value");
  expect_bad("variant", "a /m.bin", "expected <name> <model-path> <percent>, got 2 values");
  expect_bad("variant", "a /m.bin 50 b",
             "expected <name> <model-path> <percent>, got 4 values");
  char *blank[] = {"recd", "--variant", " \t"};
  expect_args(ARGC(blank), blank, RECD_EINVAL,
              "--variant: expected <name> <model-path> <percent>, got 0 values (write \"\" "
              "to remove every variant)");

  /* names */
  const char *badname = "expected a name of 1 to 64 bytes of [A-Za-z0-9_.:-], got ";
  char want[RECD_ERRLEN];
  static const char *const names[][2] = {
    {"a/b", "a/b"}, {"a|b", "a|b"}, {"\"a b\"", "a b"}, {"\"\"", ""}, {"caf\xc3\xa9", "caf\\xc3\\xa9"},
    {"\"a\\x00\"", "a\\x00"}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char line[256];
    snprintf(line, sizeof line, "variant %s /m.bin 100\n", names[i][0]);
    snprintf(want, sizeof want, "recd.conf:1: variant: %s'%s'", badname, names[i][1]);
    expect_file(line, RECD_EINVAL, want);
  }
  char name[80];
  memset(name, 'n', 64);
  name[64] = '\0';
  char value[256];
  snprintf(value, sizeof value, "%s /m.bin 100", name);
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "variant", value, err), 0);
  ck_assert_uint_eq(strlen(c.variants.name[0]), 64);
  config_free(&c);
  snprintf(value, sizeof value, "%sn /m.bin 100", name);
  snprintf(want, sizeof want, "%s'%.48s...'", badname, name);
  expect_bad("variant", value, want);
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "variant", value, err), RECD_ERANGE);
  config_free(&c);

  /* duplicates: on one line, across lines (with the line), across the file
   * and the command line; case matters, as in Redis key names */
  expect_bad("variant", "a /m/1.bin 50 a /m/2.bin 50", "variant 'a' is given twice");
  expect_file("variant a /m/1.bin 50\n# c\nvariant a /m/2.bin 50\n", RECD_EINVAL,
              "recd.conf:3: variant: variant 'a' is given twice");
  load_ok(&c, "variant a /m/1.bin 50\nvariant A /m/2.bin 50\n");
  ck_assert_int_eq(config_validate(&c, err), 0);
  config_free(&c);

  /* paths */
  expect_bad("variant", "a \"\" 100", "model path of 'a' must not be empty");
  expect_file("variant a \"/m\\x00.bin\" 100\n", RECD_EINVAL,
              "recd.conf:1: variant: model path of 'a' contains a NUL byte");
  char *path = malloc(4200);
  memset(path, 'p', 4095);
  path[0] = '/';
  path[4095] = '\0';
  char *pv = malloc(4300);
  snprintf(pv, 4300, "a %s 100", path);
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "variant", pv, err), 0);
  ck_assert_uint_eq(strlen(c.variants.path[0]), 4095);
  config_free(&c);
  snprintf(pv, 4300, "a %sp 100", path);
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "variant", pv, err), RECD_ERANGE);
  ck_assert_str_eq(err, "variant: model path of 'a' longer than 4095 bytes");
  config_free(&c);
  snprintf(pv, 4300, "variant a %sp 100\n", path);
  expect_file(pv, RECD_ERANGE, "recd.conf:1: variant: model path of 'a' longer than 4095 bytes");
  free(pv);
  free(path);

  /* percents */
  const char *pct = "percent of 'a': expected an integer in [0, 100], got ";
  static const char *const pcts[][2] = {
    {"101", "101"}, {"-1", "-1"}, {"50%", "50%"}, {"\"\"", ""}, {"0x10", "0x10"},
    {"1.5", "1.5"}, {"+5", "+5"}, {"99999999999999999999999", "99999999999999999999999"}};
  for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++) {
    char v[128];
    snprintf(v, sizeof v, "a /m.bin %s", pcts[i][0]);
    /* (the command-line form of these messages is in test_variant_args) */
    char line[256];
    snprintf(line, sizeof line, "variant %s\n", v);
    snprintf(want, sizeof want, "recd.conf:1: variant: %s'%s'", pct, pcts[i][1]);
    config_t t;
    ck_assert_int_eq(config_init(&t), 0);
    int rc = config_load_buffer(&t, line, strlen(line), "recd.conf", err);
    ck_assert_int_eq(rc, i == 0 || i == 1 || i == 7 ? RECD_ERANGE : RECD_EINVAL);
    ck_assert_str_eq(err, want);
    config_free(&t);
  }
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "variant", "a /m.bin 007", err), 0);
  ck_assert_uint_eq(c.variants.percent[0], 7);
  ck_assert_str_eq(fmt(&c, "variant"), "a /m.bin 7");
  config_free(&c);

  /* all or nothing: a bad second triple leaves the list as it was */
  load_ok(&c, "variant a /m/a.bin 50\n");
  ck_assert_int_eq(config_set(&c, "variant", "b /m/b.bin 25 c /m/c.bin 250", err),
                   RECD_ERANGE);
  ck_assert_str_eq(err, "variant: percent of 'c': expected an integer in [0, 100], got '250'");
  ck_assert_uint_eq(c.variants.n, 1);
  ck_assert_ptr_null(c.variants.name[1]);
  ck_assert_int_eq(config_set(&c, "variant", "b /m/b.bin 25 a /m/c.bin 25", err),
                   RECD_EINVAL);
  ck_assert_str_eq(err, "variant: variant 'a' is given twice");
  ck_assert_uint_eq(c.variants.n, 1);
  /* the value is split like a recd.conf line, so quoting errors are its */
  ck_assert_int_eq(config_set(&c, "variant", "b \"/m/b.bin 50", err), RECD_EFORMAT);
  ck_assert_str_eq(err, "variant: unterminated quoted string");
  ck_assert_int_eq(config_set(&c, "variant", "b \"/m/b\".bin 50", err), RECD_EFORMAT);
  ck_assert_str_eq(err, "variant: closing quote must be followed by a blank");
  ck_assert_int_eq(config_set(&c, "variant", "b '/m/it''s.bin' 50", err), RECD_EFORMAT);
  ck_assert_int_eq(config_set(&c, "variant", "b \"/m/it's \\\"b\\\".bin\" 50", err), 0);
  ck_assert_str_eq(c.variants.path[1], "/m/it's \"b\".bin");
  ck_assert_uint_eq(c.variants.n, 2);
  ck_assert_int_eq(config_validate(&c, err), 0);
  config_free(&c);
}
END_TEST

START_TEST(test_variant_validate) {
  config_t c;
  char err[RECD_ERRLEN] = "";

  /* the sum, named with the variants */
  load_ok(&c, "variant control /m/a.bin 50\nvariant test /m/b.bin 40\n");
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: percents must sum to 100, got 90 (control 50 + test 40)");
  ck_assert_int_eq(config_set(&c, "variant", "x /m/x.bin 11", err), 0);
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: percents must sum to 100, got 101 "
                        "(control 50 + test 40 + x 11)");
  config_free(&c);
  load_ok(&c, "variant only /m/a.bin 0\n");
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: percents must sum to 100, got 0 (only 0)");
  config_free(&c);
  load_ok(&c, "variant only /m/a.bin 100\n");
  ck_assert_int_eq(config_validate(&c, err), 0);
  config_free(&c);
  /* 16 long names: the list is cut, the message still fits */
  char text[8192] = "";
  for (int i = 0; i < 16; i++)
    snprintf(text + strlen(text), sizeof text - strlen(text),
             "variant %02d-%.58s /m/%d.bin 1\n", i,
             "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", i);
  load_ok(&c, text);
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  static const char head[] = "variant: percents must sum to 100, got 16 (00-nnn";
  ck_assert_msg(strncmp(err, head, sizeof head - 1) == 0, "%s", err);
  ck_assert_msg(strlen(err) < RECD_ERRLEN - 1 && strcmp(err + strlen(err) - 5, " ...)") == 0,
                "%s", err);
  config_free(&c);

  /* model and variant are exclusive, whichever way they come */
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "model", "/var/lib/recd/model.bin", err), 0);
  ck_assert_int_eq(config_set(&c, "variant", "a /m/a.bin 100", err), 0);
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "model and variant are exclusive: with variants, every model is "
                        "named by its variant line (model is '/var/lib/recd/model.bin')");
  config_free(&c);
  char *both[] = {"recd", "--model", "/m.bin", "--variant", "a /m/a.bin 100"};
  expect_args(ARGC(both), both, RECD_EINVAL,
              "model and variant are exclusive: with variants, every model is named by "
              "its variant line (model is '/m.bin')");
  char *fine[] = {"recd", "--variant", "a /m/a.bin 60", "--variant", "b /m/b.bin 40"};
  expect_args(ARGC(fine), fine, CONFIG_ARGS_RUN, NULL);
  char *sum[] = {"recd", "--variant", "a /m/a.bin 60", "--variant", "b /m/b.bin 30"};
  expect_args(ARGC(sum), sum, RECD_EINVAL,
              "variant: percents must sum to 100, got 90 (a 60 + b 30)");
  char *emptied[] = {"recd", "--variant", "a /m/a.bin 60", "--variant", "", "--model", "/m"};
  expect_args(ARGC(emptied), emptied, CONFIG_ARGS_RUN, NULL);

  /* the guards for a hand-edited struct */
  load_ok(&c, "variant a /m/a.bin 50\nvariant b /m/b.bin 50\n");
  ck_assert_int_eq(config_validate(&c, err), 0);
  c.variants.name[1][0] = 'a';
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: variant 'a' is given twice");
  c.variants.name[1][0] = '|';
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: expected a name of 1 to 64 bytes of [A-Za-z0-9_.:-], "
                        "got '|'");
  c.variants.name[1][0] = 'b';
  c.variants.percent[1] = 101;
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: percent of 'b': expected an integer in [0, 100], got 101");
  c.variants.percent[1] = 50;
  c.variants.path[1][0] = '\0';
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: model path of 'b' must not be empty");
  c.variants.path[1][0] = '/';
  char *saved = c.variants.path[1];
  c.variants.path[1] = NULL;
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: 2 not set");
  c.variants.path[1] = saved;
  c.variants.n = CONFIG_VARIANT_MAX + 1;
  ck_assert_int_eq(config_validate(&c, err), RECD_EINVAL);
  ck_assert_str_eq(err, "variant: at most 16 variants, got 17");
  c.variants.n = 2;
  ck_assert_int_eq(config_validate(&c, err), 0);
  config_free(&c);
}
END_TEST

/* --variant on the command line: appends after the file's lines, one
 * variant per option, and --test-config's dump re-parses to the same. */
START_TEST(test_variant_args) {
  char *dir = tu_mkdtemp();
  char path[4096];
  snprintf(path, sizeof path, "%s", tu_path(dir, "recd.conf"));
  static const char text[] = "model \"\"\n"
                             "variant control /m/control.bin 80\n"
                             "experiment-salt s1\n"
                             "feedback-weight-cart 0.75\n";
  tu_write_file(path, text, sizeof text - 1);

  config_t c, d;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  char *argv[] = {"recd", path, "--variant", "b /m/b.bin 15", "--test-config",
                  "--VARIANT", "\tc  '/m/c c.bin'  5 ", "--track-impressions", "no"};
  ck_assert_int_eq(config_parse_args(&c, ARGC(argv), argv, err), CONFIG_ARGS_TEST);
  ck_assert_uint_eq(c.variants.n, 3);
  ck_assert_str_eq(c.variants.name[0], "control");
  ck_assert_str_eq(c.variants.name[1], "b");
  ck_assert_str_eq(c.variants.name[2], "c");
  ck_assert_str_eq(c.variants.path[2], "/m/c c.bin");
  ck_assert_uint_eq(c.variants.percent[2], 5);
  ck_assert(!c.track_impressions);

  /* what --test-config prints loads back to the same configuration */
  char *dump = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&dump, &len);
  ck_assert_int_eq(config_dump(&c, fp, CONFIG_DUMP_REDACT), 0);
  fclose(fp);
  ck_assert_ptr_nonnull(strstr(dump, "\nvariant control /m/control.bin 80\n"
                                     "variant b /m/b.bin 15\n"
                                     "variant c \"/m/c c.bin\" 5\n"
                                     "experiment-salt s1\n"
                                     "track-impressions no\n"
                                     "attribution-window 86400\n"
                                     "impressions-max 200\n"
                                     "feedback-weight-purchase 1\n"
                                     "feedback-weight-cart 0.75\n"
                                     "feedback-weight-click 0.1\n"
                                     "feedback-weight-hide 0\n"
                                     "feedback-weight-unhide 0\n"
                                     "feedback-unknown-items count\n"
                                     "experiment-refresh-ms 2000\n"));
  ck_assert_int_eq(config_init(&d), 0);
  ck_assert_msg(config_load_buffer(&d, dump, len, "dump", err) == 0, "%s\n%s", err, dump);
  ck_assert_int_eq(config_validate(&d, err), 0);
  assert_same(&c, &d);
  config_free(&d);
  /* and as a file for a second --test-config */
  tu_write_file(path, dump, len);
  ck_assert_int_eq(config_init(&d), 0);
  char *again[] = {"recd", path, "--test-config"};
  ck_assert_int_eq(config_parse_args(&d, ARGC(again), again, err), CONFIG_ARGS_TEST);
  assert_same(&c, &d);
  config_free(&d);
  free(dump);
  config_free(&c);

  /* the command line's errors name the option; the file's, its line */
  tu_write_file(path, text, sizeof text - 1);
  char *dup[] = {"recd", path, "--variant", "control /m/x.bin 20"};
  expect_args(ARGC(dup), dup, RECD_EINVAL, "--variant: variant 'control' is given twice");
  char *miss[] = {"recd", path, "--variant"};
  expect_args(ARGC(miss), miss, RECD_EINVAL, "--variant: missing value");
  char *sum[] = {"recd", path, "--variant", "b /m/b.bin 10"};
  expect_args(ARGC(sum), sum, RECD_EINVAL,
              "variant: percents must sum to 100, got 90 (control 80 + b 10)");
  char *quote[] = {"recd", "--variant", "b '/m/b.bin 10"};
  expect_args(ARGC(quote), quote, RECD_EFORMAT, "--variant: unterminated quoted string");
  char *pct[] = {"recd", "--variant", "b /m/b.bin 1e2"};
  expect_args(ARGC(pct), pct, RECD_EINVAL,
              "--variant: percent of 'b': expected an integer in [0, 100], got '1e2'");
  char *wt[] = {"recd", "--feedback-weight-purchase", "lots"};
  expect_args(ARGC(wt), wt, RECD_EINVAL,
              "--feedback-weight-purchase: expected a number in [0, 1e9], got 'lots'");
  /* --variant "" replaces the file's variants */
  char *replace[] = {"recd", path, "--variant", "", "--variant", "x /m/x.bin 100"};
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_parse_args(&c, ARGC(replace), replace, err), CONFIG_ARGS_RUN);
  ck_assert_uint_eq(c.variants.n, 1);
  ck_assert_str_eq(c.variants.name[0], "x");
  config_free(&c);
  static const char bad[] = "model \"\"\nvariant control /m/control.bin 80\n"
                            "variant b /m/b.bin 20 x\n";
  tu_write_file(path, bad, sizeof bad - 1);
  char *withfile[] = {"recd", path};
  char want[8192];
  snprintf(want, sizeof want,
           "%s:3: variant: expected <name> <model-path> <percent>, got 4 values", path);
  expect_args(ARGC(withfile), withfile, RECD_EINVAL, want);

  tu_rmtree(dir);
  free(dir);
}
END_TEST

static Suite *config_suite(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60); /* sanitized builds on a loaded machine */
  tcase_add_test(tc, test_defaults);
  tcase_add_test(tc, test_file_syntax);
  tcase_add_test(tc, test_file_escapes);
  tcase_add_test(tc, test_file_errors);
  tcase_add_test(tc, test_integers);
  tcase_add_test(tc, test_sizes);
  tcase_add_test(tc, test_octal_bool_enum);
  tcase_add_test(tc, test_strings);
  tcase_add_test(tc, test_bind);
  tcase_add_test(tc, test_command_line);
  tcase_add_test(tc, test_help_version_test);
  tcase_add_test(tc, test_cross_field);
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_format);
  tcase_add_test(tc, test_usage);
  tcase_add_test(tc, test_shipped_conf);
  tcase_add_test(tc, test_tls_cross_field);
  tcase_add_test(tc, test_sentinel_cross_field);
  tcase_add_test(tc, test_cluster_cross_field);
  tcase_add_test(tc, test_file_limits);
  tcase_add_test(tc, test_numbers);
  tcase_add_test(tc, test_experiment_keys);
  tcase_add_test(tc, test_variant_lines);
  tcase_add_test(tc, test_variant_validate);
  tcase_add_test(tc, test_variant_args);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(config_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
