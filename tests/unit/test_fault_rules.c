/* test_fault_rules.c - every allocation of the storefront rules' paths
 * (recommend.h's walk, the promoted items, the family index, the int8
 * pass's deeper rescans and its dense fallback, SIMILAR with filters, RANK
 * with hidden items) failed in turn, with faultloop.h: each failure is
 * reported as RECD_ENOMEM, leaks nothing, and the retry gives the
 * unarmed answer. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultalloc.h"
#include "faultloop.h"
#include "recd/model.h"
#include "recd/recommend.h"
#include "recd/rng.h"
#include "recd/serve.h"
#include "testutil.h"

enum { N = 4001, K = 8, NC = 4, NQ = 6, MAXA = 600 };

static char *g_dir;
static model_t *g_m;

static void make_model(void) {
  g_dir = tu_mkdtemp();
  static float Y[N * K], pop[N];
  static uint32_t cat[N], grp[N], lens[N], clens[NC], glens[N];
  static char idbuf[N][8], cbuf[NC][8], gbuf[N][8];
  static const char *ids[N], *cnames[NC], *gnames[N];
  tu_randn(Y, N * K, 5, 0.5f);
  rng_t r;
  rng_seed(&r, 6);
  uint32_t ng = 0;
  for (uint32_t i = 0; i < N;) {
    const uint32_t size = 1 + (uint32_t)rng_below(&r, 3), c = (uint32_t)rng_below(&r, NC + 1);
    const uint32_t g = size > 1 ? ++ng : 0;
    for (uint32_t j = 0; j < size && i < N; j++, i++) {
      cat[i] = c;
      grp[i] = g;
      if (j > 0)
        for (int a = 0; a < K; a++)
          Y[(size_t)i * K + a] = Y[(size_t)(i - 1) * K + a] + 0.01f * (float)a;
    }
  }
  for (uint32_t i = 0; i < N; i++) {
    pop[i] = (float)rng_below(&r, 30);
    lens[i] = (uint32_t)snprintf(idbuf[i], sizeof idbuf[i], "i%u", i);
    ids[i] = idbuf[i];
  }
  for (int c = 0; c < NC; c++) {
    clens[c] = (uint32_t)snprintf(cbuf[c], sizeof cbuf[c], "c%d", c + 1);
    cnames[c] = cbuf[c];
  }
  for (uint32_t g = 0; g < ng; g++) {
    glens[g] = (uint32_t)snprintf(gbuf[g], sizeof gbuf[g], "g%u", g + 1);
    gnames[g] = gbuf[g];
  }
  model_spec_t spec = {.n_items = N,
                       .params = {.factors = K, .iterations = 1, .conf_mode = PARAMS_CONF_LOG,
                                  .cg_steps = 3, .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f,
                                  .reg_exponent = 0.5f},
                       .meta = {.score_scale = 0.6f},
                       .Y = Y, .ldy = K, .popularity = pop, .item_ids = ids,
                       .item_id_lens = lens, .item_category = cat, .n_categories = NC,
                       .category_names = cnames, .category_name_lens = clens,
                       .item_group = grp, .n_groups = ng, .group_names = gnames,
                       .group_name_lens = glens};
  char err[RECD_ERRLEN];
  ck_assert_int_eq(model_write(&spec, tu_path(g_dir, "m.bin"), err), 0);
  ck_assert_msg(model_load(&g_m, tu_path(g_dir, "m.bin"), err) == 0, "%s", err);
}

/* The queries: every rule, a deep walk, popularity with promoted slots. */
static uint32_t hist[4] = {3, 40, 41, 700}, hidden[3] = {4, 5, 4}, excl[2] = {9, 10};
static float hist_w[4] = {1, 2, 1, 1};
static uint64_t promoted[(N + 63) / 64];
static rec_query_t qs[NQ];
static const rec_query_t *qp[NQ];

static void make_queries(void) {
  for (uint32_t i = 0; i < N; i += 13)
    promoted[i / 64] |= (uint64_t)1 << (i % 64);
  const rec_query_t base = {.hist = hist, .hist_w = hist_w, .n_hist = 4, .history_limit = 8,
                            .personalize = 1, .exclude_history = 1, .exclude = excl,
                            .n_exclude = 2, .hidden = hidden, .n_hidden = 3, .count = 8};
  for (int j = 0; j < NQ; j++)
    qs[j] = base;
  qs[0].max_per_category = 2;
  qs[0].promoted = promoted;
  qs[0].promote = 2;
  qs[0].with_reasons = 1;
  qs[1].one_per_group = 1;
  qs[1].exclude_bought_groups = 1;
  qs[1].offset = 3;
  qs[2].one_per_group = 1; /* deep: rescans, then the dense fallback */
  qs[2].max_per_category = 40;
  qs[2].count = 500;
  qs[3].personalize = 0; /* popularity */
  qs[3].promoted = promoted;
  qs[3].promote = 3;
  qs[3].max_per_category = 1;
  qs[4].exclude_bought_groups = 1;
  qs[4].promoted = promoted;
  qs[4].promote = 1;
  qs[5].max_per_category = 1;
  qs[5].count = 60; /* a depth between the first and a quarter: rescans */
  for (int j = 0; j < NQ; j++)
    qp[j] = &qs[j];
}

/* The unarmed answers. */
typedef struct ref {
  size_t n;
  uint32_t items[MAXA];
  uint8_t promo[MAXA];
} ref_t;

typedef struct ctx {
  int way;
  serve_model_t sm;
  rec_ws_t ws;
  serve_answer_t ans[NQ];
  ref_t ref[NQ];
  rec_result_t res;
  uint32_t order[16];
} ctx_t;

static void same(const serve_answer_t *a, const ref_t *r, size_t j) {
  ck_assert_msg(a->rc == 0, "query %zu: rc %d", j, a->rc);
  ck_assert_uint_eq(a->n, r->n);
  for (size_t i = 0; i < r->n; i++) {
    ck_assert_uint_eq(a->items[i], r->items[i]);
    if (a->promoted != NULL)
      ck_assert_uint_eq(a->promoted[i], r->promo[i]);
  }
}

static void keep(const serve_answer_t *a, ref_t *r) {
  ck_assert_int_eq(a->rc, 0);
  ck_assert_uint_le(a->n, MAXA);
  r->n = a->n;
  memcpy(r->items, a->items, a->n * sizeof *a->items);
  for (size_t i = 0; i < a->n; i++)
    r->promo[i] = a->promoted != NULL ? a->promoted[i] : 0;
}

/* ---- serve_model_init with families ---------------------------------- */

static int init_run(void *c, char *err) {
  (void)err;
  ctx_t *x = c;
  serve_opts_t o;
  serve_opts_default(&o);
  o.automatic = 0;
  o.pass = x->way ? SERVE_PASS_INT8 : SERVE_PASS_FLOAT;
  o.isa = QSCORE_SCALAR;
  return serve_model_init(&x->sm, g_m, &o);
}

static void init_after_fail(void *c, int rc) {
  (void)rc;
  ctx_t *x = c;
  ck_assert_ptr_null(x->sm.families.start);
  ck_assert_ptr_null(x->sm.families.items);
}

static void init_check(void *c) {
  ctx_t *x = c;
  ck_assert_uint_eq(x->sm.families.n_groups, model_n_groups(g_m));
}

static void init_undo(void *c) {
  serve_model_free(&((ctx_t *)c)->sm);
}

/* ---- serve_one over the queries --------------------------------------- */

static void one_setup(void *c) {
  rec_ws_init(&((ctx_t *)c)->ws);
}

static void one_teardown(void *c) {
  rec_ws_free(&((ctx_t *)c)->ws);
}

static int one_run(void *c, char *err) {
  (void)err;
  ctx_t *x = c;
  int first = 0;
  for (size_t j = 0; j < NQ; j++) {
    const int rc = serve_one(&x->sm, qp[j], &x->ws, &x->ans[j]);
    if (first == 0)
      first = rc;
  }
  return first;
}

static void one_after_fail(void *c, int rc) {
  (void)rc;
  ctx_t *x = c;
  for (size_t j = 0; j < NQ; j++)
    if (x->ans[j].rc != RECD_ENOMEM)
      same(&x->ans[j], &x->ref[j], j);
}

static void one_check(void *c) {
  ctx_t *x = c;
  for (size_t j = 0; j < NQ; j++)
    same(&x->ans[j], &x->ref[j], j);
}

static void one_undo(void *c) {
  ctx_t *x = c;
  for (size_t j = 0; j < NQ; j++)
    serve_answer_free(&x->ans[j]);
}

/* ---- SIMILAR with filters and RANK with hidden items ------------------- */

static int sim_run(void *c, char *err) {
  (void)err;
  ctx_t *x = c;
  rec_query_t q = qs[2];
  q.count = 200; /* deep on dense cosines */
  int rc = rec_similar_q(g_m, 17, &q, &x->ws, &x->res);
  if (rc != 0)
    return rc;
  q = qs[1];
  q.families = &x->sm.families;
  rc = rec_similar_q(g_m, 17, &q, &x->ws, &x->res);
  if (rc != 0)
    return rc;
  const int64_t cand[8] = {4, 3, 100, -1, 5, 200, 9, 300};
  int pers;
  return rec_rank(g_m, 1.0f, &qs[0], cand, 8, &x->ws, x->order, NULL, &pers);
}

static void sim_check(void *c) {
  ctx_t *x = c;
  /* RANK: hidden 4 and 5 after the scored ones, in their order, then -1 */
  ck_assert_uint_eq(x->order[7], 3);
  ck_assert_uint_eq(x->order[5], 0);
  ck_assert_uint_eq(x->order[6], 4);
  ck_assert_uint_gt(x->res.n, 0);
}

START_TEST(test_rules_faults) {
  static ctx_t x;
  make_model();
  make_queries();
  for (int way = 0; way < 2; way++) {
    memset(&x, 0, sizeof x);
    x.way = way;
    char name[64];
    snprintf(name, sizeof name, "serve_model_init with families (%s)", way ? "int8" : "float");
    const fault_op_t init = {.name = name, .run = init_run, .after_fail = init_after_fail,
                             .check = init_check, .undo = init_undo};
    ck_assert_uint_ge(fault_check(&init, &x), 3);

    ck_assert_int_eq(init_run(&x, NULL), 0);
    rec_ws_init(&x.ws);
    for (size_t j = 0; j < NQ; j++) {
      serve_answer_t a;
      serve_one(&x.sm, qp[j], &x.ws, &a);
      keep(&a, &x.ref[j]);
      serve_answer_free(&a);
    }
    rec_ws_free(&x.ws);
    ck_assert_uint_gt(x.ref[2].n, 100); /* the deep walk is deep */
    snprintf(name, sizeof name, "serve_one x%d with the rules (%s)", NQ,
             way ? "int8" : "float");
    const fault_op_t one = {.name = name, .setup = one_setup, .run = one_run,
                            .after_fail = one_after_fail, .check = one_check, .undo = one_undo,
                            .teardown = one_teardown};
    fault_check(&one, &x);
    if (way == 0) {
      const fault_op_t sim = {.name = "rec_similar_q x2 + rec_rank (hidden)",
                              .setup = one_setup, .run = sim_run, .check = sim_check,
                              .teardown = one_teardown};
      fault_check(&sim, &x);
    }
    serve_model_free(&x.sm);
  }
  model_free(g_m);
  tu_rmtree(g_dir);
  free(g_dir);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fault_rules");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_rules_faults);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  const int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
