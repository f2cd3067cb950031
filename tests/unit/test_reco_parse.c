/* test_reco_parse.c - the grammar of RECOMMEND, RANK, SIMILAR and FEEDBACK
 * (src/daemon/reco_parse.c),
 * parsed from real RESP bytes against a real model. */
#include <check.h>
#include <stdio.h>
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
  ck_assert(!o.withscores && !o.withreasons && !o.cat_filter && !o.withmeta);
  ck_assert_int_eq(o.shown_limit, -1);
  ck_assert_int_eq(o.max_per_category, -1);
  ck_assert_int_eq(o.promote, -1);
  ck_assert(!o.one_per_group);
  ck_assert_uint_eq(o.n_hist_arg, 0);
  reco_opts_free(&o);
  ck_assert_int_eq(rec("recommend u COUNT 5 offset 7 WithScores WITHREASONS CATEGORY c2 "
                       "CATEGORY c1 EXCLUDE i3 zzz i4", &o, err), 0);
  ck_assert_uint_eq(o.count, 5);
  ck_assert_uint_eq(o.offset, 7);
  ck_assert(o.withscores && o.withreasons && o.cat_filter);
  ck_assert_uint_eq(o.n_cats, 2);
  ck_assert_uint_eq(o.cats[0], model_find_category(m, "c2", 2));
  ck_assert_uint_eq(o.cats[1], model_find_category(m, "c1", 2));
  ck_assert_uint_eq(o.n_excl, 2); /* an unknown id is dropped */
  ck_assert_uint_eq(o.excl[0], 3);
  ck_assert_uint_eq(o.excl[1], 4);
  reco_opts_free(&o);
}
END_TEST

/* Issue 14's options: grammar and bounds only. */
START_TEST(recommend_touchpoint_options) {
  reco_opts_t o;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(rec("RECOMMEND anon HISTORY 3 i1 nope i2 SHOWNLIMIT 4 MAXPERCATEGORY 2 "
                       "PROMOTE 1 ONEPERGROUP WITHMETA COUNT 5", &o, err), 0);
  ck_assert_uint_eq(o.n_hist_arg, 3);
  ck_assert_uint_eq(o.hist_from, 4);
  ck_assert_uint_eq(o.n_hist_items, 2); /* unknown ids dropped, order kept */
  ck_assert_uint_eq(o.hist_items[0], 1);
  ck_assert_uint_eq(o.hist_items[1], 2);
  ck_assert_int_eq(o.shown_limit, 4);
  ck_assert_int_eq(o.max_per_category, 2);
  ck_assert_int_eq(o.promote, 1);
  ck_assert(o.one_per_group && o.withmeta);
  ck_assert_uint_eq(o.count, 5);
  reco_opts_free(&o);
  /* 0 is "off" for the three numbers, and differs from "not given" */
  ck_assert_int_eq(rec("RECOMMEND u SHOWNLIMIT 0 MAXPERCATEGORY 0 PROMOTE 0", &o, err), 0);
  ck_assert_int_eq(o.shown_limit, 0);
  ck_assert_int_eq(o.max_per_category, 0);
  ck_assert_int_eq(o.promote, 0);
  reco_opts_free(&o);
  /* duplicates in HISTORY are kept (each adds weight 1) */
  ck_assert_int_eq(rec("RECOMMEND u HISTORY 2 i5 i5", &o, err), 0);
  ck_assert_uint_eq(o.n_hist_items, 2);
  reco_opts_free(&o);
  static const struct {
    const char *line, *msg;
  } bad[] = {
    {"RECOMMEND u HISTORY 0 i1", "HISTORY's count must be an integer in [1, 1000], got '0'"},
    {"RECOMMEND u HISTORY 1001 i1", "HISTORY's count must be an integer in [1, 1000], got '1001'"},
    {"RECOMMEND u HISTORY i1 i2", "HISTORY's count must be an integer in [1, 1000], got 'i1'"},
    {"RECOMMEND u HISTORY 3 i1 i2", "syntax error at end of command: HISTORY 3 needs 3 item ids, "
                                    "got 2"},
    {"RECOMMEND u HISTORY 3 i1 i2 COUNT 2", "syntax error at 'COUNT': HISTORY 3 needs 3 item "
                                            "ids, got 2 before this option name"},
    {"RECOMMEND u HISTORY 2 i1 \"\"", "HISTORY id #2 is empty (ids are 1 to 256 bytes)"},
    {"RECOMMEND u HISTORY", "syntax error at 'HISTORY': missing value after it "
                            "([HISTORY n item [item ...]])"},
    {"RECOMMEND u SHOWNLIMIT -1", "SHOWNLIMIT must be an integer in [0, 1000000], got '-1'"},
    {"RECOMMEND u MAXPERCATEGORY 101", "MAXPERCATEGORY must be an integer in [0, 100], got '101'"},
    {"RECOMMEND u PROMOTE x", "PROMOTE must be an integer in [0, 100], got 'x'"},
    {"RECOMMEND u ONEPERGROUP ONEPERGROUP", "syntax error at 'ONEPERGROUP': ONEPERGROUP given "
                                            "twice"},
    {"RECOMMEND u FOR v", "syntax error at 'FOR': RECOMMEND does not take FOR; expected COUNT, "
                          "OFFSET, CATEGORY, MAXPERCATEGORY, WITHSCORES, WITHREASONS, WITHMETA, "
                          "HISTORY, SHOWNLIMIT, PROMOTE, ONEPERGROUP, PLACEMENT, VARIANT, NOTRACK "
                          "or EXCLUDE"},
  };
  for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
    ck_assert_msg(rec(bad[j].line, &o, err) == RECD_EINVAL, "%s accepted", bad[j].line);
    ck_assert_str_eq(err, bad[j].msg);
    reco_opts_free(&o);
  }
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
  ck_assert_str_eq(err, "PLACEMENT must be 1 to 64 bytes of A-Z a-z 0-9 _ . : -, got 'a|b'");
  reco_opts_free(&o);
}
END_TEST

/* The traps of issue 19: nothing is swallowed, every error names the token
 * and what was expected. */
START_TEST(no_swallowing) {
  reco_opts_t o;
  char err[RECD_ERRLEN];
  static const struct {
    const char *line, *msg;
  } bad[] = {
    {"RECOMMEND 12347 EXCLUDE 21977 COUNT 2",
     "syntax error at 'COUNT': EXCLUDE takes every argument after it as an item id, so options "
     "go before EXCLUDE"},
    {"RECOMMEND 12347 EXCLUDE 21977 withscores",
     "syntax error at 'withscores': EXCLUDE takes every argument after it as an item id, so "
     "options go before EXCLUDE"},
    /* an option of another command is an option name too */
    {"RECOMMEND u EXCLUDE i1 FOR", "syntax error at 'FOR': EXCLUDE takes every argument after "
                                   "it as an item id, so options go before EXCLUDE"},
    {"RECOMMEND 12347 COUNTS 2",
     "syntax error at 'COUNTS': expected COUNT, OFFSET, CATEGORY, MAXPERCATEGORY, WITHSCORES, "
     "WITHREASONS, WITHMETA, HISTORY, SHOWNLIMIT, PROMOTE, ONEPERGROUP, PLACEMENT, VARIANT, "
     "NOTRACK or EXCLUDE (did you mean COUNT?)"},
    {"RECOMMEND 12347 WITHSCORE",
     "syntax error at 'WITHSCORE': expected COUNT, OFFSET, CATEGORY, MAXPERCATEGORY, WITHSCORES, "
     "WITHREASONS, WITHMETA, HISTORY, SHOWNLIMIT, PROMOTE, ONEPERGROUP, PLACEMENT, VARIANT, "
     "NOTRACK or EXCLUDE (did you mean WITHSCORES?)"},
    {"RECOMMEND 12347 5",
     "syntax error at '5': expected COUNT, OFFSET, CATEGORY, MAXPERCATEGORY, WITHSCORES, "
     "WITHREASONS, WITHMETA, HISTORY, SHOWNLIMIT, PROMOTE, ONEPERGROUP, PLACEMENT, VARIANT, "
     "NOTRACK or EXCLUDE (did you mean COUNT 5?)"},
    {"RECOMMEND u COUNT 101", "COUNT must be an integer in [0, 100], got '101'"},
    {"RECOMMEND u COUNT -1", "COUNT must be an integer in [0, 100], got '-1'"},
    {"RECOMMEND u COUNT x", "COUNT must be an integer in [0, 100], got 'x'"},
    {"RECOMMEND u OFFSET 1e3", "OFFSET must be an integer in [0, 100], got '1e3'"},
    {"RECOMMEND u COUNT 60 OFFSET 41", "OFFSET + COUNT must be at most max-count (100)"},
    {"RECOMMEND u COUNT 2 COUNT 3", "syntax error at 'COUNT': COUNT given twice"},
    {"RECOMMEND u COUNT", "syntax error at 'COUNT': missing value after it ([COUNT n])"},
    {"RECOMMEND u EXCLUDE", "syntax error at 'EXCLUDE': missing value after it "
                            "([EXCLUDE id [id ...]])"},
    {"RECOMMEND u CATEGORY \"\"", "CATEGORY name is empty"},
    {"RECOMMEND u EXCLUDE i1 \"\"", "EXCLUDE id #2 is empty (ids are 1 to 256 bytes)"},
    {"RECOMMEND \"\" COUNT 2", "user id is empty (ids are 1 to 256 bytes)"},
    /* a token is shown escaped and cut */
    {"RECOMMEND u \"a'b\\r\\nabcdefghijklmnopqrstuvwxyz\"",
     "syntax error at 'a\\x27b\\x0d\\x0aabcdefghijklmnopqrs...': expected COUNT, OFFSET, "
     "CATEGORY, MAXPERCATEGORY, WITHSCORES, WITHREASONS, WITHMETA, HISTORY, SHOWNLIMIT, PROMOTE, "
     "ONEPERGROUP, PLACEMENT, VARIANT, NOTRACK or EXCLUDE"},
  };
  for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
    ck_assert_msg(rec(bad[j].line, &o, err) == RECD_EINVAL, "%s accepted", bad[j].line);
    ck_assert_str_eq(err, bad[j].msg);
    reco_opts_free(&o);
  }
  /* the old forms still work: options first, EXCLUDE last */
  ck_assert_int_eq(rec("RECOMMEND 12347 COUNT 2 WITHSCORES EXCLUDE i1 i2 21977", &o, err), 0);
  ck_assert(o.withscores);
  ck_assert_uint_eq(o.count, 2);
  ck_assert_uint_eq(o.argc - o.excl_from, 3);
  ck_assert_uint_eq(o.n_excl, 2);
  reco_opts_free(&o);
  char line[400] = "RECOMMEND ";
  memset(line + 10, 'u', 257);
  line[267] = '\0';
  ck_assert_int_eq(rec(line, &o, err), RECD_EINVAL);
  ck_assert_str_eq(err, "user id longer than 256 bytes (257 bytes: 'uuuuuuuuuuuuuuuuuuuuuuuu...')");
  reco_opts_free(&o);
  memcpy(line, "RECOMMEND u EXCLUDE ", 20);
  memset(line + 20, 'i', 256);
  line[276] = '\0';
  ck_assert_int_eq(rec(line, &o, err), 0); /* 256 bytes: an id, unknown */
  reco_opts_free(&o);
}
END_TEST

START_TEST(unknown_category) {
  /* a model whose categories have real names */
  const char *names[] = {"kitchen", "garden", "home decor", "Kitchenware", "lighting"};
  uint32_t lens[5], cat[10], idl[10];
  const char *ids[10];
  char idb[10][8];
  float Y[10 * 4], pop[10];
  for (int c = 0; c < 5; c++)
    lens[c] = (uint32_t)strlen(names[c]);
  for (uint32_t i = 0; i < 10; i++) {
    cat[i] = i % 6;
    idl[i] = (uint32_t)snprintf(idb[i], sizeof idb[i], "x%u", i);
    ids[i] = idb[i];
    pop[i] = (float)i;
  }
  tu_randn(Y, 40, 3, 0.3f);
  model_spec_t spec = {.n_items = 10,
                       .params = {.factors = 4, .iterations = 1, .conf_mode = PARAMS_CONF_LOG,
                                  .cg_steps = 3, .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f,
                                  .reg_exponent = 0.5f},
                       .meta = {.score_scale = 0.7f},
                       .Y = Y, .ldy = 4, .popularity = pop, .item_ids = ids,
                       .item_id_lens = idl, .item_category = cat, .n_categories = 5,
                       .category_names = names, .category_name_lens = lens};
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&spec, tu_path(dir, "cats.bin"), err) == 0, "%s", err);
  model_t *mc;
  ck_assert_msg(model_load(&mc, tu_path(dir, "cats.bin"), err) == 0, "%s", err);
  static const struct {
    const char *line, *msg;
  } bad[] = {
    {"RECOMMEND u CATEGORY kitchn", "unknown CATEGORY 'kitchn': did you mean 'kitchen'? "
                                    "(category names are case-sensitive; MODEL CATEGORIES lists "
                                    "them)"},
    /* case-insensitive equality is the best match, but refused */
    {"RECOMMEND u CATEGORY Kitchen", "unknown CATEGORY 'Kitchen': did you mean 'kitchen' or "
                                     "'Kitchenware'? (category names are case-sensitive; MODEL "
                                     "CATEGORIES lists them)"},
    {"RECOMMEND u CATEGORY home", "unknown CATEGORY 'home': did you mean 'home decor'? "
                                  "(category names are case-sensitive; MODEL CATEGORIES lists "
                                  "them)"},
    {"RECOMMEND u CATEGORY kitchen CATEGORY zzzzzzzz", "unknown CATEGORY 'zzzzzzzz' (no close match "
                                                  "among the model's 5 categories; MODEL "
                                                  "CATEGORIES lists them)"},
  };
  for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
    reco_opts_t o;
    resp_cmd_t c = cmd(bad[j].line);
    ck_assert_int_eq(reco_parse_recommend(&c, 100, &o, err), 0);
    ck_assert_msg(reco_resolve(&o, &c, mc, err) == RECD_EINVAL, "%s accepted", bad[j].line);
    ck_assert_str_eq(err, bad[j].msg);
    reco_opts_free(&o);
  }
  reco_opts_t o;
  resp_cmd_t c = cmd("SIMILAR x1 CATEGORY kitchen CATEGORY Kitchenware");
  ck_assert_int_eq(reco_parse_similar(&c, 100, &o, err), 0);
  ck_assert_int_eq(reco_resolve(&o, &c, mc, err), 0);
  ck_assert_uint_eq(o.n_cats, 2);
  ck_assert_int_eq(o.sim_item, 1);
  reco_opts_free(&o);
  /* a model without categories says so */
  c = cmd("RECOMMEND u CATEGORY c1");
  model_t *m0;
  tu_write_model(tu_path(dir, "nocat.bin"), 5, 4, 0, 1);
  ck_assert_msg(model_load(&m0, tu_path(dir, "nocat.bin"), err) == 0, "%s", err);
  ck_assert_int_eq(reco_parse_recommend(&c, 100, &o, err), 0);
  ck_assert_int_eq(reco_resolve(&o, &c, m0, err), RECD_EINVAL);
  ck_assert_str_eq(err, "unknown CATEGORY 'c1': the model has no categories");
  reco_opts_free(&o);
  model_free(m0);
  model_free(mc);
}
END_TEST

START_TEST(edit_distance) {
  ck_assert_uint_eq(reco_edit_distance("kitchen", 7, "kitchn", 6, 3), 1);
  ck_assert_uint_eq(reco_edit_distance("KITCHEN", 7, "kitchen", 7, 3), 0);
  ck_assert_uint_eq(reco_edit_distance("count", 5, "counts", 6, 3), 1);
  ck_assert_uint_eq(reco_edit_distance("abc", 3, "xyz", 3, 3), 3);
  ck_assert_uint_eq(reco_edit_distance("abc", 3, "xyz", 3, 2), 3); /* cap + 1 */
  ck_assert_uint_eq(reco_edit_distance("a", 1, "abcdef", 6, 2), 3);
  ck_assert_uint_eq(reco_edit_distance("", 0, "ab", 2, 3), 2);
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
  /* a typo-like id is an item anywhere but last */
  c = cmd("RANK u WITHSCORE i1");
  ck_assert_int_eq(reco_parse_rank(&c, &o, err), 0);
  ck_assert_uint_eq(o.n_cand, 2);
  reco_opts_free(&o);
  c = cmd("RANK u i1 i2 notrack PLACEMENT pdp HISTORY 2 i3 i4 WITHMETA VARIANT b");

  ck_assert_int_eq(reco_parse_rank(&c, &o, err), 0);
  ck_assert_int_eq(reco_resolve(&o, &c, m, err), 0);
  ck_assert_uint_eq(o.n_cand, 2);
  ck_assert(o.notrack && o.withmeta);
  ck_assert_str_eq(o.placement, "pdp");
  ck_assert_uint_eq(o.n_hist_items, 2);
  ck_assert_uint_eq(o.hist_items[0], 3);
  ck_assert_uint_eq(o.variant_len, 1);
  reco_opts_free(&o);
  static const struct {
    const char *line, *msg;
  } bad[] = {
    {"RANK u WITHSCORES", "wrong number of arguments for 'rank' command: no item before "
                          "'WITHSCORES' (RANK <user> <item> [item ...] [options])"},
    {"RANK 12347 21977 WITHSCORES 22730",
     "syntax error at '22730': RANK's items come before its options; expected WITHSCORES, "
     "WITHMETA, HISTORY, PLACEMENT, VARIANT or NOTRACK"},
    {"RANK u i1 WITHSCORES WITHSCORES", "syntax error at 'WITHSCORES': WITHSCORES given twice"},
    {"RANK u i1 COUNT 2", "syntax error at 'COUNT': RANK does not take COUNT; expected "
                          "WITHSCORES, WITHMETA, HISTORY, PLACEMENT, VARIANT or NOTRACK"},
    {"RANK u i1 WITHSCORE", "syntax error at 'WITHSCORE': a misspelt option? (did you mean "
                            "WITHSCORES?) RANK takes it as an item only when it is not its last "
                            "item"},
    {"RANK u i1 withscore NOTRACK", "syntax error at 'withscore': a misspelt option? (did you "
                                    "mean WITHSCORES?) RANK takes it as an item only when it is "
                                    "not its last item"},
    {"RANK u i1 \"\" i2", "RANK item #2 is empty (ids are 1 to 256 bytes)"},
    {"RANK \"\" i1", "user id is empty (ids are 1 to 256 bytes)"},
  };
  for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
    c = cmd(bad[j].line);
    ck_assert_msg(reco_parse_rank(&c, &o, err) == RECD_EINVAL, "%s accepted", bad[j].line);
    ck_assert_str_eq(err, bad[j].msg);
    reco_opts_free(&o);
  }
}
END_TEST

START_TEST(similar_grammar) {
  reco_opts_t o;
  char err[RECD_ERRLEN];
  resp_cmd_t c = cmd("SIMILAR i3");
  ck_assert_int_eq(reco_parse_similar(&c, 100, &o, err), 0);
  ck_assert_int_eq(reco_resolve(&o, &c, m, err), 0);
  ck_assert_uint_eq(o.count, 10);
  ck_assert_int_eq(o.sim_item, 3);
  ck_assert_ptr_null(o.user);
  reco_opts_free(&o);
  c = cmd("SIMILAR i3 COUNT 4 OFFSET 2 CATEGORY c1 MAXPERCATEGORY 1 FOR cust WITHSCORES WITHMETA "
          "PLACEMENT pdp NOTRACK EXCLUDE i1 i2");
  ck_assert_int_eq(reco_parse_similar(&c, 100, &o, err), 0);
  ck_assert_int_eq(reco_resolve(&o, &c, m, err), 0);
  ck_assert_uint_eq(o.count, 4);
  ck_assert_uint_eq(o.offset, 2);
  ck_assert_uint_eq(o.n_cats, 1);
  ck_assert_int_eq(o.max_per_category, 1);
  ck_assert_uint_eq(o.ulen, 4);
  ck_assert_int_eq(memcmp(o.user, "cust", 4), 0);
  ck_assert(o.withscores && o.withmeta && o.notrack);
  ck_assert_uint_eq(o.n_excl, 2);
  reco_opts_free(&o);
  c = cmd("SIMILAR nosuch");
  ck_assert_int_eq(reco_parse_similar(&c, 100, &o, err), 0);
  ck_assert_int_eq(reco_resolve(&o, &c, m, err), 0);
  ck_assert_int_eq(o.sim_item, -1); /* not an error */
  reco_opts_free(&o);
  static const struct {
    const char *line, *msg;
  } bad[] = {
    {"SIMILAR 85123A 5", "syntax error at '5': expected COUNT, OFFSET, CATEGORY, MAXPERCATEGORY, "
                         "FOR, WITHSCORES, WITHMETA, PLACEMENT, VARIANT, NOTRACK or EXCLUDE (did "
                         "you mean COUNT 5?)"},
    {"SIMILAR i1 WITHREASONS", "syntax error at 'WITHREASONS': SIMILAR does not take "
                               "WITHREASONS; expected COUNT, OFFSET, CATEGORY, MAXPERCATEGORY, "
                               "FOR, WITHSCORES, WITHMETA, PLACEMENT, VARIANT, NOTRACK or EXCLUDE"},
    {"SIMILAR i1 FOR \"\"", "FOR user id is empty (ids are 1 to 256 bytes)"},
    {"SIMILAR \"\"", "item id is empty (ids are 1 to 256 bytes)"},
    {"SIMILAR i1 COUNT 101", "COUNT must be an integer in [0, 100], got '101'"},
    {"SIMILAR i1 EXCLUDE i2 COUNT 3", "syntax error at 'COUNT': EXCLUDE takes every argument "
                                      "after it as an item id, so options go before EXCLUDE"},
  };
  for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
    c = cmd(bad[j].line);
    ck_assert_msg(reco_parse_similar(&c, 100, &o, err) == RECD_EINVAL, "%s accepted",
                  bad[j].line);
    ck_assert_str_eq(err, bad[j].msg);
    reco_opts_free(&o);
  }
}
END_TEST

START_TEST(feedback_grammar) {
  reco_feedback_t f;
  char err[RECD_ERRLEN];
  resp_cmd_t c = cmd("FEEDBACK u i1");
  ck_assert_int_eq(reco_parse_feedback(&c, &f, err), 0);
  ck_assert(f.weight < 0 && f.type == RECO_FB_PURCHASE && !f.have_value);
  ck_assert_uint_eq(f.ulen, 1);
  ck_assert_uint_eq(f.ilen, 2);
  c = cmd("FEEDBACK u i1 weight 2.5 TYPE Cart VALUE 10");
  ck_assert_int_eq(reco_parse_feedback(&c, &f, err), 0);
  ck_assert(f.weight == 2.5 && f.type == RECO_FB_CART && f.have_value && f.value == 10.0);
  c = cmd("FEEDBACK u i1 TYPE hide");
  ck_assert_int_eq(reco_parse_feedback(&c, &f, err), 0);
  ck_assert(f.type == RECO_FB_HIDE);
  c = cmd("FEEDBACK u i1 TYPE unhide");
  ck_assert_int_eq(reco_parse_feedback(&c, &f, err), 0);
  ck_assert(f.type == RECO_FB_UNHIDE);
  static const struct {
    const char *line, *msg;
  } bad[] = {
    {"FEEDBACK 12347 21977 5", "syntax error at '5': expected WEIGHT, TYPE or VALUE (did you mean "
                               "WEIGHT 5?)"},
    {"FEEDBACK u i1 WIEGHT 2", "syntax error at 'WIEGHT': expected WEIGHT, TYPE or VALUE (did you "
                               "mean WEIGHT?)"},
    {"FEEDBACK u i1 WEIGHT", "syntax error at 'WEIGHT': missing value after it ([WEIGHT w])"},
    {"FEEDBACK u i1 WEIGHT 1 2", "syntax error at '2': expected WEIGHT, TYPE or VALUE"},
    {"FEEDBACK u i1 WEIGHT 0", "WEIGHT must be a finite number in (0, 1e9], got '0'"},
    {"FEEDBACK u i1 VALUE -1", "VALUE must be a finite number in [0, 1e12], got '-1'"},
    {"FEEDBACK u i1 TYPE buy", "TYPE must be purchase, cart, click, hide or unhide, got 'buy'"},
    {"FEEDBACK u i1 TYPE click TYPE cart", "syntax error at 'TYPE': TYPE given twice"},
    {"FEEDBACK u i1 TYPE hide WEIGHT 2", "TYPE hide takes no WEIGHT or VALUE"},
    {"FEEDBACK u \"\"", "user and item ids must be 1 to 256 bytes: the item id is empty"},
    {"FEEDBACK \"\" i", "user and item ids must be 1 to 256 bytes: the user id is empty"},
  };
  for (size_t j = 0; j < sizeof bad / sizeof bad[0]; j++) {
    c = cmd(bad[j].line);
    ck_assert_msg(reco_parse_feedback(&c, &f, err) == RECD_EINVAL, "%s accepted", bad[j].line);
    ck_assert_str_eq(err, bad[j].msg);
  }
}
END_TEST

/* The documented syntax is the parser's table. */
START_TEST(syntax_lines) {
  char buf[512];
  ck_assert_uint_eq(reco_syntax(RECO_CMD_RANK, buf, sizeof buf), strlen(buf));
  ck_assert_str_eq(buf, "RANK <user> <item> [item ...] [WITHSCORES] [WITHMETA] [HISTORY n item "
                        "[item ...]] [PLACEMENT p] [VARIANT v] [NOTRACK]");
  reco_syntax(RECO_CMD_FEEDBACK, buf, sizeof buf);
  ck_assert_str_eq(buf, "FEEDBACK <user> <item> [WEIGHT w] [TYPE purchase|cart|click|hide|unhide] "
                        "[VALUE v]");
  size_t full = reco_syntax(RECO_CMD_RECOMMEND, buf, sizeof buf);
  char small[16];
  ck_assert_uint_eq(reco_syntax(RECO_CMD_RECOMMEND, small, sizeof small), full);
  ck_assert_str_eq(small, "RECOMMEND <user");
  ck_assert(strstr(buf, "[EXCLUDE id [id ...]]") != NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reco_parse");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, recommend_defaults_and_options);
  tcase_add_test(tc, recommend_touchpoint_options);
  tcase_add_test(tc, placement_variant_notrack);
  tcase_add_test(tc, no_swallowing);
  tcase_add_test(tc, unknown_category);
  tcase_add_test(tc, edit_distance);
  tcase_add_test(tc, rank_candidates);
  tcase_add_test(tc, similar_grammar);
  tcase_add_test(tc, feedback_grammar);
  tcase_add_test(tc, syntax_lines);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
