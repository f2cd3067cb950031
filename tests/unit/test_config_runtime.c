/* test_config_runtime.c - config_set_runtime(), CONFIG SET's entry point:
 * which keys may change, the messages an operator sees, all-or-nothing on
 * every kind of failure (name, value, cross-field rule, the caller's
 * check), and strings (requirepass) replaced without a leak or a double
 * free (the ASan build runs this suite). */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* README's list of the keys CONFIG SET accepts ("Configuration
 * reference"): a key flagged in config.c's table must be documented. */
static const char *const runtime_keys[] = {
    "requirepass",          "maxclients",           "timeout",
    "history-limit",        "max-count",            "exclude-history",
    "redis-timeout-ms",     "feedback-timeout-ms",  "shown-limit",
    "max-per-category",     "promote-slots",        "one-per-group",
    "exclude-bought-groups", "feedback-weight-purchase", "feedback-weight-cart",
    "feedback-weight-click", "feedback-unknown-items", "loglevel",
    "tls-cert-file",        "tls-key-file",         "tls-ca-cert-file",
};
#define N_RUNTIME (sizeof runtime_keys / sizeof runtime_keys[0])

/* CONFIG SET with NULL-terminated key, value strings. */
static int set(config_t *c, char *err, ...) {
  const char *kv[32];
  size_t kvlen[32], n = 0;
  va_list ap;
  va_start(ap, err);
  for (const char *s; (s = va_arg(ap, const char *)) != NULL && n < 32;) {
    kv[n] = s;
    kvlen[n++] = strlen(s);
  }
  va_end(ap);
  ck_assert_int_eq(n % 2, 0);
  err[0] = '\0';
  return config_set_runtime(c, n / 2, kv, kvlen, NULL, NULL, err);
}

static char *fmt(const config_t *c, const char *key) {
  static char buf[4096];
  ck_assert_int_ge(config_format(c, key, buf, sizeof buf), 0);
  return buf;
}

START_TEST(runtime_flags_match_the_docs) {
  size_t flagged = 0;
  for (size_t i = 0; i < config_count(); i++) {
    int listed = 0;
    for (size_t j = 0; j < N_RUNTIME; j++)
      listed |= strcmp(config_name(i), runtime_keys[j]) == 0;
    ck_assert_msg(listed == (int)config_is_runtime(i), "%s: run-time flag %d, README says %d",
                  config_name(i), (int)config_is_runtime(i), listed);
    flagged += config_is_runtime(i);
  }
  ck_assert_uint_eq(flagged, N_RUNTIME);
}
END_TEST

/* Every run-time key takes its own formatted value back; every other key
 * is refused by name, and nothing changes. */
START_TEST(every_key) {
  config_t c, ref;
  char err[RECD_ERRLEN], want[RECD_ERRLEN];
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_init(&ref), 0);
  for (size_t i = 0; i < config_count(); i++) {
    const char *k = config_name(i);
    char val[4096];
    snprintf(val, sizeof val, "%s", fmt(&c, k));
    int rc = set(&c, err, k, val, NULL);
    if (config_is_runtime(i)) {
      ck_assert_msg(rc == 0, "%s '%s': %s", k, val, err);
    } else {
      ck_assert_int_eq(rc, RECD_EINVAL);
      snprintf(want, sizeof want, "'%s' cannot change at run time; restart recd", k);
      ck_assert_str_eq(err, want);
    }
    ck_assert_str_eq(fmt(&c, k), fmt(&ref, k));
  }
  config_free(&c);
  config_free(&ref);
}
END_TEST

START_TEST(values_and_messages) {
  config_t c;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(set(&c, err, "MAX-COUNT", "5", "loglevel", "WARNING", "exclude-history", "no",
                       "feedback-weight-cart", "2.5", "feedback-unknown-items", "warn", NULL),
                   0);
  ck_assert_int_eq(c.max_count, 5);
  ck_assert_int_eq(c.loglevel, CONFIG_LOG_WARNING);
  ck_assert(!c.exclude_history);
  ck_assert(c.feedback_weight_cart == 2.5);
  ck_assert_int_eq(c.feedback_unknown_items, 1);

  ck_assert_int_eq(set(&c, err, "max-count", "abc", NULL), RECD_EINVAL);
  ck_assert_str_eq(err, "max-count: expected an integer in [1, 100000], got 'abc'");
  ck_assert_int_eq(set(&c, err, "max-count", "0", NULL), RECD_ERANGE);
  ck_assert_str_eq(err, "max-count: expected an integer in [1, 100000], got '0'");
  ck_assert_int_eq(set(&c, err, "nosuch", "1", NULL), RECD_ENOTFOUND);
  ck_assert_str_eq(err, "unknown key 'nosuch'");
  ck_assert_int_eq(set(&c, err, "max-count", "6", "Max-Count", "7", NULL), RECD_EINVAL);
  ck_assert_str_eq(err, "'max-count' is given twice");
  ck_assert_int_eq(set(&c, err, "feedback-weight-hide", "0", NULL), RECD_EINVAL);
  ck_assert_str_eq(err, "'feedback-weight-hide' cannot change at run time; restart recd");
  /* a binary key or value: named, never taken */
  const char *kv[2] = {"requirepass", "a\0b"};
  size_t kvlen[2] = {11, 3};
  ck_assert_int_eq(config_set_runtime(&c, 1, kv, kvlen, NULL, NULL, err), RECD_EINVAL);
  ck_assert_str_eq(err, "requirepass: contains a NUL byte");
  kv[0] = "max-count\0x";
  kvlen[0] = 11;
  kv[1] = "9";
  kvlen[1] = 1;
  ck_assert_int_eq(config_set_runtime(&c, 1, kv, kvlen, NULL, NULL, err), RECD_ENOTFOUND);
  ck_assert_str_eq(err, "unknown key 'max-count\\x00x'");
  ck_assert_int_eq(c.max_count, 5);
  /* none at all: nothing to do */
  ck_assert_int_eq(config_set_runtime(&c, 0, kv, kvlen, NULL, NULL, err), 0);
  config_free(&c);
}
END_TEST

static int refuse_big_count(const config_t *next, void *arg, char *errbuf) {
  ++*(int *)arg;
  return next->max_count > 100 ? recd_errf(errbuf, RECD_EINVAL, "too many for this daemon") : 0;
}

/* A failure anywhere leaves every key as it was, strings included. */
START_TEST(all_or_nothing) {
  config_t c;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(set(&c, err, "requirepass", "old", "max-count", "10", NULL), 0);
  char *old_pass = c.requirepass;
  /* a bad value after good ones, a refused key, an unknown one */
  ck_assert_int_ne(set(&c, err, "requirepass", "new", "max-count", "20", "history-limit", "0",
                       NULL), 0);
  ck_assert_int_ne(set(&c, err, "requirepass", "new", "max-count", "20", "port", "1", NULL), 0);
  ck_assert_int_ne(set(&c, err, "requirepass", "new", "max-count", "20", "x", "1", NULL), 0);
  /* a cross-field rule (config_validate) on the candidate */
  ck_assert_int_eq(config_set(&c, "track-impressions", "no", err), 0);
  ck_assert_int_eq(set(&c, err, "requirepass", "new", "shown-limit", "3", NULL), RECD_EINVAL);
  ck_assert_str_eq(err, "shown-limit needs track-impressions yes (items shown are counted in "
                        "the impressions)");
  /* the caller's check */
  int calls = 0;
  const char *kv[4] = {"requirepass", "new", "max-count", "500"};
  size_t kvlen[4] = {11, 3, 9, 3};
  ck_assert_int_eq(config_set_runtime(&c, 2, kv, kvlen, refuse_big_count, &calls, err),
                   RECD_EINVAL);
  ck_assert_str_eq(err, "too many for this daemon");
  ck_assert_int_eq(calls, 1);
  ck_assert_ptr_eq(c.requirepass, old_pass);
  ck_assert_str_eq(c.requirepass, "old");
  ck_assert_int_eq(c.max_count, 10);
  ck_assert_int_eq(c.shown_limit, 0);
  ck_assert_int_eq(c.history_limit, 500);
  /* accepted: the check saw the candidate, the strings moved over */
  kv[3] = "50";
  kvlen[3] = 2;
  ck_assert_int_eq(config_set_runtime(&c, 2, kv, kvlen, refuse_big_count, &calls, err), 0);
  ck_assert_int_eq(calls, 2);
  ck_assert_str_eq(c.requirepass, "new");
  ck_assert_int_eq(c.max_count, 50);
  ck_assert_int_eq(config_validate(&c, err), 0);
  ck_assert_int_eq(set(&c, err, "requirepass", "", NULL), 0);
  ck_assert_str_eq(c.requirepass, "");
  config_free(&c);
}
END_TEST

static Suite *config_runtime_suite(void) {
  Suite *s = suite_create("config_runtime");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, runtime_flags_match_the_docs);
  tcase_add_test(tc, every_key);
  tcase_add_test(tc, values_and_messages);
  tcase_add_test(tc, all_or_nothing);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(config_runtime_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
