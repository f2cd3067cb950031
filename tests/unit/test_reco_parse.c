/* test_reco_parse.c - the grammar of RECOMMEND and RANK (src/daemon/reco.c),
 * parsed from real RESP bytes against a real model. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "reco.h"
#include "recd/model.h"
#include "recd/resp.h"
#include "testutil.h"

static char *dir;
static model_t *m;
static resp_parser_t parser;

static void setup(void) {
  dir = tu_mkdtemp();
  tu_write_model(tu_path(dir, "m.bin"), 50, 8, 3, 7);
  char err[RECD_ERRLEN];
  ck_assert_msg(model_load(&m, tu_path(dir, "m.bin"), err) == 0, "%s", err);
  ck_assert_int_eq(resp_parser_init(&parser, &(resp_config_t){0}), 0);
}

static void teardown(void) {
  resp_parser_free(&parser);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}

/* The inline command `line` as the server would see it. */
static resp_cmd_t cmd(const char *line) {
  resp_cmd_t c;
  resp_parser_reset(&parser);
  ck_assert_int_eq(resp_parser_feed(&parser, line, strlen(line)), 0);
  ck_assert_int_eq(resp_parser_feed(&parser, "\r\n", 2), 0);
  ck_assert_int_eq(resp_parser_next(&parser, &c), RESP_OK);
  return c;
}

static int rec(const char *line, reco_opts_t *o, char *err) {
  resp_cmd_t c = cmd(line);
  int rc = reco_parse_recommend(&c, 100, o, err);
  return rc != 0 ? rc : reco_resolve(o, &c, m, err);
}

START_TEST(recommend_defaults_and_options) {
  reco_opts_t o;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(rec("RECOMMEND u1", &o, err), 0);
  ck_assert_uint_eq(o.ulen, 2);
  ck_assert_int_eq(memcmp(o.user, "u1", 2), 0);
  ck_assert_uint_eq(o.count, 10);
  ck_assert_uint_eq(o.offset, 0);
  ck_assert(!o.withscores && !o.withreasons && !o.cat_filter);
  reco_opts_free(&o);
  ck_assert_int_eq(rec("recommend u COUNT 5 offset 7 WithScores WITHREASONS CATEGORY c2 "
                       "CATEGORY nope EXCLUDE i3 zzz i4", &o, err), 0);
  ck_assert_uint_eq(o.count, 5);
  ck_assert_uint_eq(o.offset, 7);
  ck_assert(o.withscores && o.withreasons && o.cat_filter);
  ck_assert_uint_eq(o.n_cats, 1); /* an unknown category matches nothing */
  ck_assert_uint_eq(o.cats[0], model_find_category(m, "c2", 2));
  ck_assert_uint_eq(o.n_excl, 2); /* an unknown id is dropped */
  ck_assert_uint_eq(o.excl[0], 3);
  ck_assert_uint_eq(o.excl[1], 4);
  reco_opts_free(&o);
}
END_TEST

START_TEST(placement_variant_notrack) {
  reco_opts_t o;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(rec("RECOMMEND u", &o, err), 0);
  ck_assert_str_eq(o.placement, "default");
  ck_assert(!o.notrack);
  ck_assert_ptr_null(o.variant);
  reco_opts_free(&o);
  ck_assert_int_eq(rec("RECOMMEND u placement home.top NOTRACK VARIANT b COUNT 3", &o, err), 0);
  ck_assert_str_eq(o.placement, "home.top");
  ck_assert(o.notrack);
  ck_assert_uint_eq(o.variant_len, 1);
  ck_assert_int_eq(o.variant[0], 'b');
  ck_assert_uint_eq(o.count, 3);
  reco_opts_free(&o);
  ck_assert_int_eq(rec("RECOMMEND u PLACEMENT a|b", &o, err), RECD_EINVAL);
  ck_assert_msg(strstr(err, "PLACEMENT must be 1 to 64 bytes") != NULL, "%s", err);
  reco_opts_free(&o);
  /* EXCLUDE still takes every remaining argument, options included */
  ck_assert_int_eq(rec("RECOMMEND u EXCLUDE i1 NOTRACK i2", &o, err), 0);
  ck_assert(!o.notrack);
  ck_assert_uint_eq(o.n_excl, 2);
  reco_opts_free(&o);
}
END_TEST

START_TEST(recommend_errors) {
  reco_opts_t o;
  char err[RECD_ERRLEN];
  static const struct {
    const char *line, *msg;
  } bad[] = {
    {"RECOMMEND u COUNT 101", "COUNT must be an integer in [0, 100]"},
    {"RECOMMEND u COUNT -1", "COUNT must be an integer in [0, 100]"},
    {"RECOMMEND u COUNT x", "COUNT must be an integer in [0, 100]"},
    {"RECOMMEND u OFFSET 1e3", "OFFSET must be an integer in [0, 100]"},
    {"RECOMMEND u COUNT 60 OFFSET 41", "OFFSET + COUNT must be at most max-count (100)"},
    {"RECOMMEND u COUNTS 2", "syntax error"},
    {"RECOMMEND u COUNT", "syntax error"},
    {"RECOMMEND u EXCLUDE", "syntax error"},
  };
  for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
    ck_assert_msg(rec(bad[j].line, &o, err) == RECD_EINVAL, "%s accepted", bad[j].line);
    ck_assert_str_eq(err, bad[j].msg);
    reco_opts_free(&o);
  }
  char line[400] = "RECOMMEND ";
  memset(line + 10, 'u', 257);
  line[267] = '\0';
  ck_assert_int_eq(rec(line, &o, err), RECD_EINVAL);
  ck_assert_str_eq(err, "user id longer than 256 bytes");
  reco_opts_free(&o);
}
END_TEST

START_TEST(rank_candidates) {
  reco_opts_t o;
  char err[RECD_ERRLEN];
  resp_cmd_t c = cmd("RANK u i1 nope i2 WITHSCORES");
  ck_assert_int_eq(reco_parse_rank(&c, &o, err), 0);
  ck_assert_int_eq(reco_resolve(&o, &c, m, err), 0);
  ck_assert(o.withscores);
  ck_assert_uint_eq(o.n_cand, 3);
  ck_assert_int_eq(o.cand[0], 1);
  ck_assert_int_eq(o.cand[1], -1);
  ck_assert_int_eq(o.cand[2], 2);
  ck_assert_uint_eq(o.cand_lens[1], 4);
  ck_assert_int_eq(memcmp(o.cand_ids[1], "nope", 4), 0);
  reco_opts_free(&o);
  c = cmd("RANK u WITHSCORES");
  ck_assert_int_eq(reco_parse_rank(&c, &o, err), RECD_EINVAL);
  ck_assert_str_eq(err, "wrong number of arguments for 'rank' command");
  reco_opts_free(&o);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reco_parse");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, recommend_defaults_and_options);
  tcase_add_test(tc, recommend_errors);
  tcase_add_test(tc, placement_variant_notrack);
  tcase_add_test(tc, rank_candidates);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
