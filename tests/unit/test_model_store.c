/* test_model_store.c - the served model (src/daemon/model_store.c) on a
 * real libuv loop: reloads on the thread pool swap the model only when the
 * new file is valid, a held reference keeps its model (and its unavailable
 * set) whatever happens after, MODEL RELOAD paths stay inside models-dir,
 * and the store can be freed while a reload runs. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "log.h"
#include "model_store.h"
#include "recd/foldin.h"
#include "testutil.h"

static char *dir;
static uv_loop_t loop;

static void setup(void) {
  log_set_level(CONFIG_LOG_WARNING + 1); /* quiet: failures are expected here */
  dir = tu_mkdtemp();
  tu_write_model(tu_path(dir, "a.bin"), 200, 8, 2, 1);
  tu_write_model(tu_path(dir, "b.bin"), 300, 8, 2, 2);
  ck_assert_int_eq(uv_loop_init(&loop), 0);
}

static void teardown(void) {
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  tu_rmtree(dir);
  free(dir);
}

static model_store_t *open_store(const char *model) {
  char path[1024];
  snprintf(path, sizeof path, "%s", tu_path(dir, model));
  model_store_opts_t o = {.model = path, .models_dir = ""};
  serve_opts_default(&o.serve);
  model_store_t *ms;
  char err[RECD_ERRLEN];
  ck_assert_msg(model_store_open(&loop, &o, &ms, err) == 0, "%s", err);
  return ms;
}

typedef struct outcome {
  int calls, status;
  char msg[RECD_ERRLEN + 64];
} outcome_t;

static void on_reload(int status, const char *msg, void *arg) {
  outcome_t *o = arg;
  o->calls++;
  o->status = status;
  snprintf(o->msg, sizeof o->msg, "%s", msg);
}

/* Reloads `name` (NULL: the served file) and runs the loop until done. */
static outcome_t reload(model_store_t *ms, const char *name) {
  outcome_t o = {0};
  char err[RECD_ERRLEN], path[1024];
  if (name)
    snprintf(path, sizeof path, "%s", tu_path(dir, name));
  ck_assert_msg(model_store_reload(ms, name ? path : NULL, on_reload, &o, err) == 0, "%s", err);
  ck_assert(model_store_reloading(ms));
  ck_assert_int_eq(model_store_reload(ms, NULL, on_reload, &o, err), RECD_EINVAL);
  ck_assert_str_eq(err, "a model reload is already in progress");
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(o.calls, 1);
  ck_assert(!model_store_reloading(ms));
  return o;
}

START_TEST(missing_model_is_a_clear_error) {
  model_store_opts_t o = {.model = tu_path(dir, "nope.bin")};
  serve_opts_default(&o.serve);
  model_store_t *ms = NULL;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_ne(model_store_open(&loop, &o, &ms, err), 0);
  ck_assert_ptr_null(ms);
  ck_assert_msg(strstr(err, "nope.bin") != NULL, "error does not name the file: %s", err);
  o.model = "";
  ck_assert_int_eq(model_store_open(&loop, &o, &ms, err), RECD_EINVAL);
  ck_assert_msg(strstr(err, "no model configured") != NULL, "%s", err);
}
END_TEST

START_TEST(reload_swaps_and_references_hold) {
  model_store_t *ms = open_store("a.bin");
  model_ref_t old;
  model_store_hold(ms, &old);
  ck_assert_uint_eq(old.sv->version, 1);
  ck_assert_uint_eq(model_n_items(old.sv->m), 200);
  /* a.bin replaced by b.bin's content under the same name: SIGHUP's case */
  tu_write_model(tu_path(dir, "a.bin"), 300, 8, 2, 2);
  outcome_t o = reload(ms, NULL);
  ck_assert_msg(o.status == 0, "%s", o.msg);
  ck_assert_str_eq(o.msg, "OK model version 2, 300 items");
  const served_t *cur = model_store_current(ms);
  ck_assert_uint_eq(cur->version, 2);
  ck_assert_uint_eq(model_n_items(cur->m), 300);
  /* the held model is still the old one, fully readable */
  ck_assert_uint_eq(model_n_items(old.sv->m), 200);
  size_t len;
  const char *id = model_item_id(old.sv->m, 199, &len);
  ck_assert_int_eq(memcmp(id, "i199", len), 0);
  model_ref_release(&old);
  ck_assert_ptr_null(old.sv);
  model_store_stats_t st;
  model_store_get_stats(ms, &st);
  ck_assert_uint_eq(st.reloads_ok, 1);
  ck_assert_uint_eq(st.reloads_failed, 0);
  model_store_free(ms);
}
END_TEST

/* A loaded model's fold-in eigenbasis is built by the load (on the reload
 * thread), not left to the first request; freeing the model drops it. */
START_TEST(load_builds_the_foldin_basis) {
  foldin_cache_clear();
  ck_assert_int_eq(foldin_cache_bases(), 0);
  model_store_t *ms = open_store("a.bin");
  ck_assert_int_eq(foldin_cache_bases(), 1);
  outcome_t o = reload(ms, "b.bin");
  ck_assert_msg(o.status == 0, "%s", o.msg);
  /* the old model is freed with its basis once the swap is done */
  ck_assert_int_eq(foldin_cache_bases(), 1);
  model_store_free(ms);
  ck_assert_int_eq(foldin_cache_bases(), 0);
}
END_TEST

START_TEST(bad_file_never_replaces_the_model) {
  model_store_t *ms = open_store("a.bin");
  tu_write_file(tu_path(dir, "bad.bin"), "not a model", 11);
  outcome_t o = reload(ms, "bad.bin");
  ck_assert_int_ne(o.status, 0);
  ck_assert_msg(strstr(o.msg, "model not reloaded, still serving version 1") != NULL, "%s", o.msg);
  ck_assert_uint_eq(model_store_current(ms)->version, 1);
  model_store_stats_t st;
  model_store_get_stats(ms, &st);
  ck_assert_uint_eq(st.reloads_failed, 1);
  ck_assert_msg(strstr(st.last_reload_error, "bad.bin") != NULL, "%s", st.last_reload_error);
  o = reload(ms, "b.bin");
  ck_assert_msg(o.status == 0, "%s", o.msg);
  ck_assert_uint_eq(model_store_current(ms)->version, 2);
  model_store_free(ms);
}
END_TEST

START_TEST(paths_stay_inside_models_dir) {
  model_store_t *ms = open_store("a.bin");
  char err[RECD_ERRLEN];
  outcome_t o = {0};
  ck_assert_int_eq(model_store_reload(ms, "/etc/passwd", on_reload, &o, err), RECD_EINVAL);
  ck_assert_msg(strstr(err, "outside the models directory") != NULL, "%s", err);
  char up[1200];
  snprintf(up, sizeof up, "%s/../../etc/passwd", dir);
  ck_assert_int_eq(model_store_reload(ms, up, on_reload, &o, err), RECD_EINVAL);
  ck_assert_int_eq(model_store_reload(ms, tu_path(dir, "none.bin"), on_reload, &o, err),
                   RECD_ENOTFOUND);
  ck_assert_msg(strstr(err, "none.bin") != NULL, "%s", err);
  ck_assert(!model_store_reloading(ms));
  ck_assert_int_eq(o.calls, 0);
  model_store_free(ms);
}
END_TEST

START_TEST(unavailable_set_follows_the_model) {
  model_store_t *ms = open_store("a.bin");
  const char *ids[] = {"i1", "i250", "i3", "i1", "unknown"};
  const size_t lens[] = {2, 4, 2, 2, 7};
  model_store_set_unavailable(ms, ids, lens, 5);
  model_store_stats_t st;
  model_store_get_stats(ms, &st);
  ck_assert_uint_eq(st.unavailable, 2); /* i1 and i3: i250 is not in a.bin */
  model_ref_t r;
  model_store_hold(ms, &r);
  ck_assert_ptr_nonnull(r.unavail);
  ck_assert(r.unavail->words[0] & (1ull << 1));
  ck_assert(r.unavail->words[0] & (1ull << 3));
  ck_assert_ptr_eq(r.unavail->for_model, r.sv);
  outcome_t o = reload(ms, "b.bin");
  ck_assert_msg(o.status == 0, "%s", o.msg);
  model_store_get_stats(ms, &st);
  ck_assert_uint_eq(st.unavailable, 3); /* rebuilt for b.bin: i250 too */
  /* the held set is the old model's, unchanged */
  ck_assert_uint_eq(r.unavail->n_set, 2);
  model_ref_release(&r);
  model_store_set_unavailable(ms, NULL, NULL, 0);
  model_store_get_stats(ms, &st);
  ck_assert_uint_eq(st.unavailable, 0);
  model_store_free(ms);
}
END_TEST

START_TEST(freed_during_a_reload) {
  model_store_t *ms = open_store("a.bin");
  outcome_t o = {0};
  char err[RECD_ERRLEN];
  ck_assert_int_eq(model_store_reload(ms, tu_path(dir, "b.bin"), on_reload, &o, err), 0);
  model_store_free(ms); /* the reload's callback finishes the job */
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(o.calls, 1);
  ck_assert_int_ne(o.status, 0);
  ck_assert_str_eq(o.msg, "model not reloaded: shutting down");
}
END_TEST

int main(void) {
  Suite *s = suite_create("model_store");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, missing_model_is_a_clear_error);
  tcase_add_test(tc, reload_swaps_and_references_hold);
  tcase_add_test(tc, load_builds_the_foldin_basis);
  tcase_add_test(tc, bad_file_never_replaces_the_model);
  tcase_add_test(tc, paths_stay_inside_models_dir);
  tcase_add_test(tc, unavailable_set_follows_the_model);
  tcase_add_test(tc, freed_during_a_reload);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
