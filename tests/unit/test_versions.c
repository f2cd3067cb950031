/* test_versions.c - the names of kept model versions (recd/versions.h):
 * format and parse round trip, only canonical spellings accepted (so a
 * version given to MODEL ROLLBACK can never be a path), name matching
 * against a stem, and the directory listing in time order. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recd/err.h"
#include "recd/versions.h"

START_TEST(format_parse) {
  char v[KEPT_VERSION_LEN + 1];
  ck_assert_int_eq(kept_version_format(0, v), 0);
  ck_assert_str_eq(v, "19700101T000000Z");
  ck_assert_int_eq(kept_version_format(1700000000, v), 0);
  ck_assert_str_eq(v, "20231114T221320Z");
  int64_t t;
  ck_assert_int_eq(kept_version_parse(v, strlen(v), &t), 0);
  ck_assert_int_eq(t, 1700000000);
  ck_assert_int_eq(kept_version_format(253402300799LL, v), 0);
  ck_assert_str_eq(v, "99991231T235959Z");
  ck_assert_int_eq(kept_version_format(253402300800LL, v), -1);
  ck_assert_str_eq(v, "");
  ck_assert_int_eq(kept_version_format(-1, v), -1);
  /* Text order is time order. */
  char a[KEPT_VERSION_LEN + 1], b[KEPT_VERSION_LEN + 1];
  for (int64_t x = 0; x < 4000000000LL; x += 99999989) {
    kept_version_format(x, a);
    kept_version_format(x + 1, b);
    ck_assert_int_lt(strcmp(a, b), 0);
  }
}
END_TEST

START_TEST(parse_refuses) {
  static const char *bad[] = {
      "",                  "2026010T000000Z",    "20260101T000000z",  "20260101t000000Z",
      "20261301T000000Z",  "20260230T000000Z",   "20260101T240000Z",  "20260101T235960Z",
      "20260101T000000ZZ", "2026-01-01T00:00:00Z", "../../etc/passwd", "20260101 000000Z",
      "+0260101T000000Z",  "20260101T00000 Z",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(kept_version_parse(bad[i], strlen(bad[i]), NULL) != 0, "accepted '%s'",
                  bad[i]);
  ck_assert_int_eq(kept_version_parse("20240229T120000Z", 16, NULL), 0); /* leap day */
}
END_TEST

START_TEST(stems_and_names) {
  char stem[64], v[KEPT_VERSION_LEN + 1];
  ck_assert_int_eq(kept_stem("/var/lib/recd/model.bin", stem, sizeof stem), 0);
  ck_assert_str_eq(stem, "model");
  ck_assert_int_eq(kept_stem("candidate", stem, sizeof stem), 0);
  ck_assert_str_eq(stem, "candidate");
  ck_assert_int_eq(kept_stem("a/b.model", stem, sizeof stem), 0);
  ck_assert_str_eq(stem, "b.model");
  ck_assert_int_eq(kept_stem("/dir/", stem, sizeof stem), -1);
  ck_assert_int_eq(kept_stem("/dir/.bin", stem, sizeof stem), 0); /* ".bin" is the name */
  ck_assert_int_eq(kept_stem("/x/0123456789.bin", stem, 5), -1);
  ck_assert(kept_name_match("model.20260101T000000Z.bin", "model", v));
  ck_assert_str_eq(v, "20260101T000000Z");
  ck_assert(!kept_name_match("model.20260101T000000Z.bin", "mode", NULL));
  ck_assert(!kept_name_match("model.bin", "model", NULL));
  ck_assert(!kept_name_match("model.20260101T000000Z.bin.tmp.abcdef", "model", NULL));
  ck_assert(!kept_name_match("model.20261301T000000Z.bin", "model", NULL));
  ck_assert(!kept_name_match("candidate.20260101T000000Z.bin", "model", NULL));
}
END_TEST

START_TEST(listing) {
  char dir[] = "/tmp/recd-versions-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  static const char *files[] = {"model.20260102T000000Z.bin", "model.20251231T235959Z.bin",
                                "model.bin", "model.20260101T000000Z.bin.tmp.abcdef",
                                "other.20260103T000000Z.bin", "model.20260103T000000Z.bin"};
  char p[256];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
  }
  kept_list_t l;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(kept_list(dir, "model", &l, err), 0);
  ck_assert_uint_eq(l.n, 3);
  ck_assert_str_eq(l.v[0], "20251231T235959Z");
  ck_assert_str_eq(l.v[1], "20260102T000000Z");
  ck_assert_str_eq(l.v[2], "20260103T000000Z");
  kept_list_free(&l);
  ck_assert_int_eq(kept_list(dir, "nothing", &l, err), 0);
  ck_assert_uint_eq(l.n, 0);
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i]);
    unlink(p);
  }
  rmdir(dir);
  ck_assert_int_eq(kept_list(dir, "model", &l, err), RECD_EIO);
  ck_assert_ptr_nonnull(strstr(err, "cannot read the models directory"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("versions");
  TCase *tc = tcase_create("versions");
  tcase_add_test(tc, format_parse);
  tcase_add_test(tc, parse_refuses);
  tcase_add_test(tc, stems_and_names);
  tcase_add_test(tc, listing);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
