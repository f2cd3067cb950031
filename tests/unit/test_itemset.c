/* test_itemset.c - the promoted set as a bitmap over a model's items
 * (src/daemon/itemset.c): ids the model does not know are skipped, the
 * bitmap is cached per model and rebuilt after a replace, a held bitmap
 * survives a replace, and an empty or foreign set gives NULL. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itemset.h"
#include "testutil.h"

static model_t *load(const char *dir, const char *name, uint32_t n, uint64_t seed) {
  char path[512], err[RECD_ERRLEN];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  tu_write_model(path, n, 4, 3, seed);
  model_t *m = NULL;
  ck_assert_msg(model_load(&m, path, err) == 0, "%s", err);
  return m;
}

static int bit(const itemset_bits_t *b, uint32_t i) {
  return (int)((b->words[i / 64] >> (i % 64)) & 1u);
}

START_TEST(test_itemset) {
  char dir[] = "/tmp/recd-itemset-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  model_t *a = load(dir, "a.bin", 100, 1), *b = load(dir, "b.bin", 10, 2);
  itemset_t *s = itemset_new();
  ck_assert_ptr_nonnull(s);
  ck_assert_ptr_null(itemset_hold(s, a)); /* empty */

  const char *ids[] = {"i3", "i70", "nope", "i70", "i99"};
  const size_t lens[] = {2, 3, 4, 3, 3};
  ck_assert_int_eq(itemset_replace(s, ids, lens, 5), 0);
  ck_assert_uint_eq(itemset_size(s), 5);
  itemset_bits_t *ba = itemset_hold(s, a);
  ck_assert_ptr_nonnull(ba);
  ck_assert_uint_eq(ba->n_set, 3); /* i3, i70 (twice), i99; "nope" unknown */
  for (uint32_t i = 0; i < 100; i++)
    ck_assert_int_eq(bit(ba, i), i == 3 || i == 70 || i == 99);
  /* cached: the same bitmap for the same model */
  itemset_bits_t *ba2 = itemset_hold(s, a);
  ck_assert_ptr_eq(ba, ba2);
  itemset_bits_release(ba2);
  /* another model maps the same ids onto its own items */
  itemset_bits_t *bb = itemset_hold(s, b);
  ck_assert_ptr_nonnull(bb);
  ck_assert_uint_eq(bb->n_set, 1); /* only i3 exists among 10 items */
  ck_assert_int_eq(bit(bb, 3), 1);
  itemset_bits_release(bb);

  /* a replace: new bitmaps, the held one unchanged */
  const char *ids2[] = {"i5"};
  const size_t lens2[] = {2};
  ck_assert_int_eq(itemset_replace(s, ids2, lens2, 1), 0);
  ck_assert_int_eq(bit(ba, 70), 1);
  itemset_bits_t *ba3 = itemset_hold(s, a);
  ck_assert_ptr_nonnull(ba3);
  ck_assert_ptr_ne(ba3, ba);
  ck_assert_uint_eq(ba3->n_set, 1);
  ck_assert_int_eq(bit(ba3, 5), 1);
  itemset_bits_release(ba3);
  itemset_bits_release(ba);

  /* ids no model item matches: NULL (nothing promoted) */
  const char *ids3[] = {"x", "y"};
  const size_t lens3[] = {1, 1};
  ck_assert_int_eq(itemset_replace(s, ids3, lens3, 2), 0);
  ck_assert_ptr_null(itemset_hold(s, a));
  ck_assert_int_eq(itemset_replace(s, NULL, NULL, 0), 0);
  ck_assert_ptr_null(itemset_hold(s, a));

  itemset_free(s);
  model_free(a);
  model_free(b);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("itemset");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_itemset);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
