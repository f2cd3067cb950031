/* test_config.c - recd.conf parsing, command-line overrides, validation,
 * formatting and the shipped systemd/recd.conf. Error messages are asserted
 * byte for byte: they are what an operator sees at startup. */
#include <check.h>
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
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_validate(&c, err), 0);

  /* the names DESIGN.md fixes, all present */
  static const char *const design[] = {
    "port", "bind", "unixsocket", "unixsocketperm", "requirepass", "maxclients",
    "model", "redis-host", "redis-port", "redis-socket", "redis-password",
    "key-prefix", "redis-timeout-ms", "feedback-timeout-ms", "history-limit", "max-count", "metrics-port",
    "loglevel"};
  for (size_t i = 0; i < sizeof design / sizeof design[0]; i++)
    ck_assert_int_ge(config_format(&c, design[i], NULL, 0), 0);
  ck_assert_uint_eq(config_count(), 29);
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
    {"workers", "256"}, {"scan-split-items", "0"}, {"redis-host", "::1"}, {"redis-port", "1"},
    {"redis-socket", "/run/redis.sock"}, {"redis-password", "'\"\n\r"},
    {"key-prefix", "#"}, {"redis-timeout-ms", "60000"}, {"feedback-timeout-ms", "1"},
    {"redis-reconnect-max-ms", "10"}, {"unavailable-refresh-ms", "3600000"},
    {"metrics-port", "65535"}, {"loglevel", "debug"}, {"pidfile", "/run/recd.pid"},
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
                 strcmp(config_name(i), "redis-password") == 0;
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
    snprintf(line, sizeof line, "\n%s ", config_name(i));
    ck_assert_msg(strstr(text, line) != NULL, "%s not in %s", config_name(i), path);
  }
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
  tcase_add_test(tc, test_file_limits);
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
