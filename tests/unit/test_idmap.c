/* test_idmap.c - idmap against a brute-force list of keys. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/idmap.h"
#include "recd/rng.h"

START_TEST(test_intern_and_get) {
  idmap_t *m = idmap_new(0);
  ck_assert_ptr_nonnull(m);
  uint32_t idx;
  ck_assert_int_eq(idmap_intern(m, "a", 1, &idx), 1);
  ck_assert_uint_eq(idx, 0);
  ck_assert_int_eq(idmap_intern(m, "b", 1, &idx), 1);
  ck_assert_uint_eq(idx, 1);
  ck_assert_int_eq(idmap_intern(m, "a", 1, &idx), 0);
  ck_assert_uint_eq(idx, 0);
  ck_assert_int_eq(idmap_get(m, "b", 1), 1);
  ck_assert_int_eq(idmap_get(m, "c", 1), -1);
  /* ids are byte strings: a prefix, an embedded NUL and the empty id differ */
  ck_assert_int_eq(idmap_intern(m, "a\0b", 3, &idx), 1);
  ck_assert_int_eq(idmap_intern(m, "", 0, &idx), 1);
  ck_assert_int_eq(idmap_get(m, "a\0b", 3), 2);
  ck_assert_int_eq(idmap_get(m, "", 0), 3);
  size_t len;
  ck_assert_str_eq(idmap_key(m, 1, &len), "b");
  ck_assert_uint_eq(len, 1);
  ck_assert_uint_eq(idmap_size(m), 4);
  idmap_free(m);
}
END_TEST

START_TEST(test_many_keys_survive_growth) {
  /* Plain checks in the loops, one assertion at the end: Check's
   * assertions cost a system call each in fork mode. */
  enum { N = 100000 };
  idmap_t *m = idmap_new(3);
  char buf[32];
  long bad = -1;
  for (int i = 0; i < N && bad < 0; i++) {
    int n = snprintf(buf, sizeof buf, "item-%d", i * 7919);
    uint32_t idx;
    if (idmap_intern(m, buf, (size_t)n, &idx) != 1 || idx != (uint32_t)i)
      bad = i;
  }
  ck_assert_msg(bad < 0, "intern failed at key %ld", bad);
  for (int i = 0; i < N && bad < 0; i++) {
    int n = snprintf(buf, sizeof buf, "item-%d", i * 7919);
    size_t len;
    const char *k = idmap_key(m, (uint32_t)i, &len);
    if (idmap_get(m, buf, (size_t)n) != i || len != (size_t)n || memcmp(k, buf, len) != 0)
      bad = i;
    n = snprintf(buf, sizeof buf, "other-%d", i);
    if (idmap_get(m, buf, (size_t)n) != -1)
      bad = i;
  }
  ck_assert_msg(bad < 0, "lookup failed at key %ld", bad);
  idmap_free(m);
}
END_TEST

static Suite *idmap_suite(void) {
  Suite *s = suite_create("idmap");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_intern_and_get);
  tcase_add_test(tc, test_many_keys_survive_growth);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(idmap_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
