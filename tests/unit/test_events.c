/* test_events.c - the interaction log: exact membership of the three
 * splits on hand-made logs, their invariants on random ones, SPLIT_RANDOM
 * against eval_holdout_split, age weighting, popularity since a time, and
 * the CSV reader keeping timestamps. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/dataset.h"
#include "recd/eval.h"
#include "recd/events.h"
#include "recd/rng.h"
#include "testutil.h"

typedef struct row {
  uint32_t u, i;
  float w;
  int64_t t;
} row_t;

#define NT DATASET_NO_TIME
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A hand-made log of the given rows (malloc'ed, so events_free frees it). */
static void mk(events_t *e, uint32_t nu, uint32_t ni, int has_time, const row_t *r, size_t n) {
  memset(e, 0, sizeof *e);
  size_t c = n ? n : 1;
  e->user = malloc(c * sizeof *e->user);
  e->item = malloc(c * sizeof *e->item);
  e->w = malloc(c * sizeof *e->w);
  e->t = malloc(c * sizeof *e->t);
  ck_assert(e->user && e->item && e->w && e->t);
  for (size_t k = 0; k < n; k++) {
    e->user[k] = r[k].u;
    e->item[k] = r[k].i;
    e->w[k] = r[k].w;
    e->t[k] = r[k].t;
  }
  e->n = n;
  e->cap = c;
  e->n_users = nu;
  e->n_items = ni;
  e->has_time = has_time;
}

/* A random log: n events of nu users and ni items, weights 1..4, times in
 * [1000, 1100) (so many ties), or untimed. Every user gets item u % ni
 * first, so no user is missing. */
static void rand_log(events_t *e, uint32_t nu, uint32_t ni, size_t n, uint64_t seed, int timed) {
  rng_t r;
  rng_seed(&r, seed);
  row_t *rows = malloc(n * sizeof *rows);
  for (size_t k = 0; k < n; k++) {
    rows[k].u = k < nu ? (uint32_t)k : (uint32_t)rng_below(&r, nu);
    rows[k].i = k < nu ? (uint32_t)(k % ni) : (uint32_t)rng_below(&r, ni);
    rows[k].w = (float)(1 + rng_below(&r, 4));
    rows[k].t = timed ? 1000 + (int64_t)rng_below(&r, 100) : NT;
  }
  mk(e, nu, ni, timed, rows, n);
  free(rows);
}

/* Asserts that e holds exactly the rows `want`, in order. */
static void assert_events_are(const events_t *e, const row_t *want, size_t n) {
  ck_assert_uint_eq(e->n, n);
  for (size_t k = 0; k < n; k++) {
    ck_assert_msg(e->user[k] == want[k].u && e->item[k] == want[k].i && e->w[k] == want[k].w &&
                      e->t[k] == want[k].t,
                  "event %zu: (%u, %u, %g, %lld), want (%u, %u, %g, %lld)", k, e->user[k],
                  e->item[k], (double)e->w[k], (long long)e->t[k], want[k].u, want[k].i,
                  (double)want[k].w, (long long)want[k].t);
  }
}

/* Asserts that m is nu x ni and holds exactly the (u, i, w) of `want`,
 * which are listed in (u, i) order. */
static void assert_csr_is(const csr_t *m, uint32_t nu, uint32_t ni, const row_t *want, size_t n) {
  ck_assert_uint_eq(m->n_rows, nu);
  ck_assert_uint_eq(m->n_cols, ni);
  ck_assert_uint_eq(m->ptr[0], 0);
  ck_assert_uint_eq(m->ptr[nu], n);
  size_t k = 0;
  for (uint32_t u = 0; u < nu; u++) {
    for (uint64_t j = m->ptr[u]; j < m->ptr[u + 1]; j++, k++) {
      ck_assert_msg(want[k].u == u && want[k].i == m->idx[j] && want[k].w == m->val[j],
                    "entry %zu: (%u, %u, %g), want (%u, %u, %g)", k, u, m->idx[j],
                    (double)m->val[j], want[k].u, want[k].i, (double)want[k].w);
    }
  }
}

static void assert_events_equal(const events_t *a, const events_t *b) {
  ck_assert_uint_eq(a->n, b->n);
  ck_assert_int_eq(a->has_time, b->has_time);
  ck_assert_int_eq(memcmp(a->user, b->user, a->n * sizeof *a->user), 0);
  ck_assert_int_eq(memcmp(a->item, b->item, a->n * sizeof *a->item), 0);
  ck_assert_int_eq(memcmp(a->w, b->w, a->n * sizeof *a->w), 0);
  ck_assert_int_eq(memcmp(a->t, b->t, a->n * sizeof *a->t), 0);
}

static void assert_csr_equal(const csr_t *a, const csr_t *b) {
  ck_assert_uint_eq(a->n_rows, b->n_rows);
  ck_assert_uint_eq(a->n_cols, b->n_cols);
  ck_assert_int_eq(memcmp(a->ptr, b->ptr, ((size_t)a->n_rows + 1) * sizeof *a->ptr), 0);
  const size_t nnz = (size_t)a->ptr[a->n_rows];
  ck_assert_int_eq(memcmp(a->idx, b->idx, nnz * sizeof *a->idx), 0);
  ck_assert_int_eq(memcmp(a->val, b->val, nnz * sizeof *a->val), 0);
}

/* The invariants of events.h for a split of ev into (tr, te) with cut T,
 * checked densely; the loops use plain ifs (Check's asserts are slow in
 * fork mode). */
static void check_split(const events_t *ev, split_kind_t kind, const events_t *tr,
                        const csr_t *te, int64_t cut) {
  const uint32_t nu = ev->n_users, ni = ev->n_items;
  ck_assert_uint_eq(tr->n_users, nu);
  ck_assert_uint_eq(tr->n_items, ni);
  ck_assert_int_eq(tr->has_time, ev->has_time);
  ck_assert_uint_eq(te->n_rows, nu);
  ck_assert_uint_eq(te->n_cols, ni);
  uint32_t *n_tr = calloc((size_t)nu * ni, sizeof *n_tr), *u_tr = calloc(nu, sizeof *u_tr);
  uint8_t *in_te = calloc((size_t)nu * ni, 1);
  double *sum = calloc((size_t)nu * ni, sizeof *sum);
  /* Train is a subsequence of ev; for the per-user kinds, of the events of
   * pairs not in test; for the cut, exactly the events before it. */
  for (uint32_t u = 0; u < nu; u++)
    for (uint64_t j = te->ptr[u]; j < te->ptr[u + 1]; j++) {
      if (j > te->ptr[u] && te->idx[j] <= te->idx[j - 1])
        ck_abort_msg("test row %u not ascending", u);
      in_te[(size_t)u * ni + te->idx[j]] = 1;
    }
  size_t w = 0;
  int64_t latest = NT;
  for (size_t k = 0; k < ev->n; k++) {
    const size_t c = (size_t)ev->user[k] * ni + ev->item[k];
    sum[c] += ev->w[k];
    const int want = kind == SPLIT_TIME_CUT ? ev->t[k] < cut : !in_te[c];
    const int got = w < tr->n && tr->user[w] == ev->user[k] && tr->item[w] == ev->item[k] &&
                    tr->w[w] == ev->w[k] && tr->t[w] == ev->t[k];
    if (want != got)
      ck_abort_msg("event %zu: in train %d, want %d", k, got, want);
    if (got) {
      n_tr[c]++;
      u_tr[ev->user[k]]++;
      if (ev->t[k] > latest)
        latest = ev->t[k];
      w++;
    }
  }
  ck_assert_uint_eq(w, tr->n);
  if (kind != SPLIT_TIME_CUT)
    ck_assert_int_eq(cut, latest);
  /* Test = the pairs with events, none in train, whose user trains. */
  for (uint32_t u = 0; u < nu; u++)
    for (uint32_t i = 0; i < ni; i++) {
      const size_t c = (size_t)u * ni + i;
      const int want = sum[c] > 0 && n_tr[c] == 0 && u_tr[u] > 0;
      if (want != in_te[c])
        ck_abort_msg("pair (%u, %u): in test %d, want %d", u, i, in_te[c], want);
      if (kind != SPLIT_TIME_CUT && sum[c] > 0 && n_tr[c] == 0 && u_tr[u] == 0)
        ck_abort_msg("pair (%u, %u) lost by a per-user split", u, i);
    }
  for (uint32_t u = 0; u < nu; u++)
    for (uint64_t j = te->ptr[u]; j < te->ptr[u + 1]; j++)
      if (te->val[j] != (float)sum[(size_t)u * ni + te->idx[j]])
        ck_abort_msg("pair (%u, %u): test value %g, want %g", u, te->idx[j], (double)te->val[j],
                     sum[(size_t)u * ni + te->idx[j]]);
  free(n_tr);
  free(u_tr);
  free(in_te);
  free(sum);
}

START_TEST(test_kind_names) {
  ck_assert_str_eq(split_kind_name(SPLIT_RANDOM), "random");
  ck_assert_str_eq(split_kind_name(SPLIT_USER_LATEST), "user-latest");
  ck_assert_str_eq(split_kind_name(SPLIT_TIME_CUT), "time-cut");
  ck_assert_str_eq(split_kind_name((split_kind_t)7), "unknown");
  split_kind_t k = SPLIT_RANDOM;
  ck_assert_int_eq(split_kind_parse("time-cut", &k), 0);
  ck_assert_int_eq(k, SPLIT_TIME_CUT);
  ck_assert_int_eq(split_kind_parse("user-latest", &k), 0);
  ck_assert_int_eq(k, SPLIT_USER_LATEST);
  ck_assert_int_eq(split_kind_parse("latest", &k), RECD_EINVAL);
  ck_assert_int_eq(split_kind_parse(NULL, &k), RECD_EINVAL);
  ck_assert_int_eq(k, SPLIT_USER_LATEST);
}
END_TEST

START_TEST(test_user_latest_exact) {
  /* u0: four items, i0 first at 10 and again at 50 (a pair is dated by
   *     its first event, so i0 stays the oldest); half of 4 -> i2, i3.
   * u1: one distinct item twice: nothing held.
   * u2: i3 at 90, then i0, i1, i2 tied at 100: 2 of the tied three.
   * u3: added out of time order: i1 at 200 and then at 120 is dated 120,
   *     so i0 (150) is the later pair and is held out. */
  const row_t in[] = {
      {0, 0, 1, 10},  {0, 1, 2, 20},  {0, 2, 3, 30},  {0, 3, 4, 40},  {0, 0, 5, 50},
      {1, 1, 1, 5},   {1, 1, 2, 60},  {2, 3, 1, 90},  {2, 0, 1, 100}, {2, 1, 1, 100},
      {2, 2, 1, 100}, {3, 1, 1, 200}, {3, 0, 2, 150}, {3, 1, 0.5f, 120},
  };
  events_t ev, tr, tr2;
  csr_t te, te2;
  int64_t cut;
  char err[RECD_ERRLEN];
  mk(&ev, 5, 4, 1, in, N_OF(in));
  ck_assert_int_eq(events_split(&ev, SPLIT_USER_LATEST, 0.5, 1, &tr, &te, &cut, err), 0);
  check_split(&ev, SPLIT_USER_LATEST, &tr, &te, cut);
  ck_assert_uint_eq(te.ptr[1] - te.ptr[0], 2);
  ck_assert_uint_eq(te.idx[0], 2);
  ck_assert_float_eq(te.val[0], 3);
  ck_assert_uint_eq(te.idx[1], 3);
  ck_assert_float_eq(te.val[1], 4);
  ck_assert_uint_eq(te.ptr[2] - te.ptr[1], 0); /* u1 */
  ck_assert_uint_eq(te.ptr[3] - te.ptr[2], 2); /* u2: two of the tied */
  for (uint64_t j = te.ptr[2]; j < te.ptr[3]; j++)
    ck_assert_uint_le(te.idx[j], 2);
  ck_assert_uint_eq(te.ptr[4] - te.ptr[3], 1); /* u3 */
  ck_assert_uint_eq(te.idx[te.ptr[3]], 0);
  ck_assert_float_eq(te.val[te.ptr[3]], 2);
  ck_assert_uint_eq(te.ptr[5], te.ptr[4]); /* u4: no events */
  ck_assert_int_eq(cut, 200);
  /* Deterministic, and ties really are broken at random across seeds. */
  int held_count[3] = {0, 0, 0};
  for (uint64_t seed = 0; seed < 60; seed++) {
    ck_assert_int_eq(events_split(&ev, SPLIT_USER_LATEST, 0.5, seed, &tr2, &te2, &cut, err), 0);
    if (seed == 1) {
      assert_csr_equal(&te, &te2);
      assert_events_equal(&tr, &tr2);
    }
    ck_assert_uint_eq(te2.ptr[3] - te2.ptr[2], 2);
    for (uint64_t j = te2.ptr[2]; j < te2.ptr[3]; j++) {
      ck_assert_uint_le(te2.idx[j], 2); /* never i3, the oldest */
      held_count[te2.idx[j]]++;
    }
    events_free(&tr2);
    csr_free(&te2);
  }
  for (int i = 0; i < 3; i++) {
    ck_assert_int_gt(held_count[i], 0);
    ck_assert_int_lt(held_count[i], 60);
  }
  events_free(&tr);
  csr_free(&te);
  /* A small fraction still holds out one; a large one keeps one. */
  ck_assert_int_eq(events_split(&ev, SPLIT_USER_LATEST, 0.01, 1, &tr, &te, &cut, err), 0);
  ck_assert_uint_eq(te.ptr[1] - te.ptr[0], 1);
  ck_assert_uint_eq(te.idx[0], 3);
  check_split(&ev, SPLIT_USER_LATEST, &tr, &te, cut);
  events_free(&tr);
  csr_free(&te);
  ck_assert_int_eq(events_split(&ev, SPLIT_USER_LATEST, 0.99, 1, &tr, &te, &cut, err), 0);
  ck_assert_uint_eq(te.ptr[1] - te.ptr[0], 3);
  ck_assert_uint_eq(te.idx[0], 1); /* i0 (first at 10) is the one kept */
  check_split(&ev, SPLIT_USER_LATEST, &tr, &te, cut);
  events_free(&tr);
  csr_free(&te);
  events_free(&ev);
}
END_TEST

START_TEST(test_time_cut_exact) {
  /* Times span [0, 100]; fraction 0.255 -> T = ceil(0.745 * 100) = 75
   * (rounding down would put u3's i1 at 74 in test). */
  const row_t in[] = {
      {0, 0, 1, 10},  /* u0: i0 trains, i1 after the cut is tested */
      {0, 1, 2, 80},
      {1, 0, 1, 20},  /* u1: i0 again after the cut: a repeat, no test */
      {1, 0, 1, 90},
      {2, 2, 1, 85},  /* u2: only after the cut: nowhere */
      {3, 1, 1, 74},  /* u3: i2 at exactly T is tested, its two events summed */
      {3, 2, 1, 75},
      {3, 3, 4, 100},
      {3, 2, 2, 99},
      {4, 0, 1, 0},   /* u4: only before */
  };
  const row_t want_tr[] = {{0, 0, 1, 10}, {1, 0, 1, 20}, {3, 1, 1, 74}, {4, 0, 1, 0}};
  const row_t want_te[] = {{0, 1, 2, 0}, {3, 2, 3, 0}, {3, 3, 4, 0}};
  events_t ev, tr, val;
  csr_t te, te_val;
  int64_t cut = 0, cut2 = 0;
  char err[RECD_ERRLEN];
  mk(&ev, 5, 4, 1, in, N_OF(in));
  ck_assert_int_eq(events_split(&ev, SPLIT_TIME_CUT, 0.255, 0, &tr, &te, &cut, err), 0);
  ck_assert_int_eq(cut, 75);
  assert_events_are(&tr, want_tr, N_OF(want_tr));
  assert_csr_is(&te, 5, 4, want_te, N_OF(want_te));
  check_split(&ev, SPLIT_TIME_CUT, &tr, &te, cut);
  /* Validation carved from the train part: its times span [0, 74], so
   * T = ceil(0.5 * 74) = 37; u3 (only at 74) has no train event left. */
  ck_assert_int_eq(events_split(&tr, SPLIT_TIME_CUT, 0.5, 0, &val, &te_val, &cut2, err), 0);
  ck_assert_int_eq(cut2, 37);
  const row_t want_val_tr[] = {{0, 0, 1, 10}, {1, 0, 1, 20}, {4, 0, 1, 0}};
  assert_events_are(&val, want_val_tr, N_OF(want_val_tr));
  assert_csr_is(&te_val, 5, 4, NULL, 0);
  events_free(&val);
  csr_free(&te_val);
  events_free(&tr);
  csr_free(&te);
  /* All at one time: T = t_min, nothing before it. */
  const row_t same[] = {{0, 0, 1, 7}, {0, 1, 1, 7}};
  events_free(&ev);
  mk(&ev, 1, 2, 1, same, 2);
  ck_assert_int_eq(events_split(&ev, SPLIT_TIME_CUT, 0.5, 0, &tr, &te, &cut, err), 0);
  ck_assert_int_eq(cut, 7);
  ck_assert_uint_eq(tr.n, 0);
  ck_assert_uint_eq(te.ptr[1], 0);
  events_free(&tr);
  csr_free(&te);
  /* Extreme times: the span does not overflow. */
  const row_t wide[] = {{0, 0, 1, INT64_MIN + 1}, {0, 1, 1, INT64_MAX}, {0, 2, 1, 0}};
  events_free(&ev);
  mk(&ev, 1, 3, 1, wide, 3);
  ck_assert_int_eq(events_split(&ev, SPLIT_TIME_CUT, 0.5, 0, &tr, &te, &cut, err), 0);
  ck_assert_int_eq(cut, 1); /* INT64_MIN + 1 + 2^63 */
  ck_assert_uint_eq(tr.n, 2);
  ck_assert_uint_eq(te.ptr[1], 1);
  check_split(&ev, SPLIT_TIME_CUT, &tr, &te, cut);
  events_free(&tr);
  csr_free(&te);
  events_free(&ev);
}
END_TEST

START_TEST(test_random_equals_holdout) {
  /* Through a data set, as recd-train will: timed rows with duplicates,
   * and the untimed aggregated view of the same data set. */
  for (int timed = 0; timed < 2; timed++) {
    dataset_t ds;
    ck_assert_int_eq(dataset_init(&ds), 0);
    rng_t r;
    rng_seed(&r, 42);
    char u[16], i[16];
    for (int k = 0; k < 4000; k++) {
      int ul = snprintf(u, sizeof u, "u%d", k < 300 ? k : (int)rng_below(&r, 300));
      int il = snprintf(i, sizeof i, "i%d", (int)rng_below(&r, 60));
      float w = (float)(1 + rng_below(&r, 5)) * 0.3f;
      int64_t t = timed ? (int64_t)rng_below(&r, 1000) : NT;
      ck_assert_int_eq(dataset_add_timed(&ds, u, (size_t)ul, i, (size_t)il, w, t), 0);
    }
    ck_assert_int_eq(dataset_finalize(&ds), 0);
    ck_assert_int_eq(ds.has_time, timed);
    events_t ev, tr;
    csr_t te, want_tr, want_te, got_tr;
    int64_t cut;
    char err[RECD_ERRLEN];
    ck_assert_int_eq(events_from_dataset(&ds, &ev), 0);
    ck_assert_uint_eq(ev.n, timed ? 4000 : ds.by_user.ptr[ds.by_user.n_rows]);
    ck_assert_int_eq(events_split(&ev, SPLIT_RANDOM, 0.3, 17, &tr, &te, &cut, err), 0);
    ck_assert_int_eq(eval_holdout_split(&ds.by_user, 0.3, 17, &want_tr, &want_te), 0);
    assert_csr_equal(&te, &want_te);
    ck_assert_int_eq(events_to_csr(&tr, 0, 0, &got_tr), 0);
    assert_csr_equal(&got_tr, &want_tr);
    check_split(&ev, SPLIT_RANDOM, &tr, &te, cut);
    csr_free(&want_tr);
    csr_free(&want_te);
    csr_free(&got_tr);
    csr_free(&te);
    events_free(&tr);
    /* The log aggregates to exactly the data set's matrix. */
    ck_assert_int_eq(events_to_csr(&ev, 0, 0, &got_tr), 0);
    assert_csr_equal(&got_tr, &ds.by_user);
    csr_free(&got_tr);
    events_free(&ev);
    dataset_free(&ds);
  }
}
END_TEST

START_TEST(test_split_of_split) {
  /* Every kind on random logs, then a validation split of its train part
   * by the same kind: invariants at both levels, and determinism. */
  for (int kind = 0; kind < 3; kind++) {
    events_t ev, tr, tr_b, val;
    csr_t te, te_b, te_val;
    int64_t cut, cut_b, cut_val;
    char err[RECD_ERRLEN];
    rand_log(&ev, 150, 30, 2500, 5 + (uint64_t)kind, kind != SPLIT_RANDOM);
    ck_assert_int_eq(events_split(&ev, (split_kind_t)kind, 0.2, 3, &tr, &te, &cut, err), 0);
    check_split(&ev, (split_kind_t)kind, &tr, &te, cut);
    ck_assert_uint_gt(te.ptr[te.n_rows], 0);
    ck_assert_int_eq(events_split(&ev, (split_kind_t)kind, 0.2, 3, &tr_b, &te_b, &cut_b, err), 0);
    assert_csr_equal(&te, &te_b);
    assert_events_equal(&tr, &tr_b);
    events_free(&tr_b);
    csr_free(&te_b);
    ck_assert_int_eq(events_split(&tr, (split_kind_t)kind, 0.2, 4, &val, &te_val, &cut_val, err),
                     0);
    check_split(&tr, (split_kind_t)kind, &val, &te_val, cut_val);
    ck_assert_uint_gt(te_val.ptr[te_val.n_rows], 0);
    events_free(&val);
    csr_free(&te_val);
    events_free(&tr);
    csr_free(&te);
    events_free(&ev);
  }
}
END_TEST

START_TEST(test_age_weighting) {
  const int64_t ref = 100000, hl = 3600;
  const row_t in[] = {
      {0, 0, 1, ref},          /* age 0: 1 */
      {0, 1, 1, ref - hl},     /* one half-life: 0.5 */
      {0, 2, 2, ref - 2 * hl}, /* two: 2 * 0.25 */
      {1, 0, 1, ref + 50},     /* newer than t_ref: 1 */
      {1, 1, 3, NT},           /* untimed: 3 */
      {1, 2, 1, ref - hl},     /* a pair of two events: 0.5 + 1 */
      {1, 2, 1, ref},
      {2, 0, 1, ref - 1000 * hl}, /* 2^-1000: below float, stays positive */
  };
  const row_t want[] = {{0, 0, 1, 0},    {0, 1, 0.5f, 0}, {0, 2, 0.5f, 0}, {1, 0, 1, 0},
                        {1, 1, 3, 0},    {1, 2, 1.5f, 0}, {2, 0, FLT_TRUE_MIN, 0}};
  const row_t flat[] = {{0, 0, 1, 0}, {0, 1, 1, 0}, {0, 2, 2, 0}, {1, 0, 1, 0},
                        {1, 1, 3, 0}, {1, 2, 2, 0}, {2, 0, 1, 0}};
  events_t ev;
  csr_t m;
  mk(&ev, 3, 3, 0, in, N_OF(in));
  ck_assert_int_eq(events_to_csr(&ev, (double)hl, ref, &m), 0);
  assert_csr_is(&m, 3, 3, want, N_OF(want));
  csr_free(&m);
  ck_assert_int_eq(events_to_csr(&ev, 0, ref, &m), 0);
  assert_csr_is(&m, 3, 3, flat, N_OF(flat));
  csr_free(&m);
  ck_assert_int_eq(events_to_csr(&ev, -1, ref, &m), RECD_EINVAL);
  ck_assert_int_eq(events_to_csr(&ev, NAN, ref, &m), RECD_EINVAL);
  ck_assert_ptr_null(m.ptr);
  events_free(&ev);
}
END_TEST

START_TEST(test_popularity_since) {
  const row_t in[] = {
      {0, 0, 1, 10}, {0, 0, 1, 20}, {1, 0, 1, 30}, {2, 1, 1, 5},
      {0, 2, 1, 40}, {1, 2, 1, 40}, {2, 2, 1, 50}, {2, 2, 1, 60},
  };
  events_t ev;
  float pop[4] = {9, 9, 9, 9};
  mk(&ev, 3, 4, 1, in, N_OF(in));
  ck_assert_int_eq(events_popularity(&ev, INT64_MIN, pop), 0);
  ck_assert_float_eq(pop[0], 2); /* u0 twice counts once */
  ck_assert_float_eq(pop[1], 1);
  ck_assert_float_eq(pop[2], 3);
  ck_assert_float_eq(pop[3], 0);
  ck_assert_int_eq(events_popularity(&ev, 30, pop), 0);
  ck_assert_float_eq(pop[0], 1);
  ck_assert_float_eq(pop[1], 0);
  ck_assert_float_eq(pop[2], 3);
  ck_assert_int_eq(events_popularity(&ev, 45, pop), 0);
  ck_assert_float_eq(pop[0], 0);
  ck_assert_float_eq(pop[2], 1);
  ck_assert_int_eq(events_t_max(&ev), 60);
  /* Untimed: every event counts for INT64_MIN, none for a real time. */
  for (size_t k = 0; k < ev.n; k++)
    ev.t[k] = NT;
  ev.has_time = 0;
  ck_assert_int_eq(events_t_max(&ev), NT);
  ck_assert_int_eq(events_popularity(&ev, INT64_MIN, pop), 0);
  ck_assert_float_eq(pop[2], 3);
  ck_assert_int_eq(events_popularity(&ev, 0, pop), 0);
  ck_assert_float_eq(pop[2], 0);
  events_free(&ev);
}
END_TEST

static char *dir;

static void setup(void) {
  dir = tu_mkdtemp();
}

static void teardown(void) {
  tu_rmtree(dir);
  free(dir);
}

/* Writes text to dir/name; returns the path in a static buffer. */
static const char *write_file(const char *name, const char *text) {
  static char path[4096];
  snprintf(path, sizeof path, "%s", tu_path(dir, name));
  tu_write_file(path, text, strlen(text));
  return path;
}

START_TEST(test_csv_timestamps) {
  dataset_t ds;
  events_t ev;
  char err[RECD_ERRLEN];
  const char *p = write_file("t.csv", "user,item,weight,timestamp\n"
                                      "alice,book,1,1700000000\n"
                                      "bob,book,2,-5\n"
                                      "alice,pen,0.5,1700000100\n"
                                      "alice,book,3,1600000000\n");
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_int_eq(ds.has_time, 1);
  ck_assert_int_eq(ds.t_min, -5);
  ck_assert_int_eq(ds.t_max, 1700000100);
  ck_assert_uint_eq(ds.n_coo, 4);
  ck_assert_uint_eq(ds.by_user.ptr[ds.by_user.n_rows], 3); /* still aggregated */
  ck_assert_int_eq(events_from_dataset(&ds, &ev), 0);
  /* alice = u0, bob = u1, book = i0, pen = i1; raw rows in file order. */
  const row_t want[] = {{0, 0, 1, 1700000000}, {1, 0, 2, -5}, {0, 1, 0.5f, 1700000100},
                        {0, 0, 3, 1600000000}};
  assert_events_are(&ev, want, N_OF(want));
  ck_assert_int_eq(ev.has_time, 1);
  ck_assert_uint_eq(ev.n_users, 2);
  ck_assert_uint_eq(ev.n_items, 2);
  ck_assert_int_eq(events_t_max(&ev), 1700000100);
  events_free(&ev);
  dataset_free(&ds);

  /* One row without a timestamp: no times at all, rows freed as before. */
  p = write_file("u.csv", "user,item,weight,timestamp\n"
                          "alice,book,1,1700000000\n"
                          "alice,pen,2,\n"
                          "alice,book,3,1700000001\n");
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_int_eq(ds.has_time, 0);
  ck_assert_int_eq(ds.t_min, NT);
  ck_assert_int_eq(ds.t_max, NT);
  ck_assert_ptr_null(ds.coo_t);
  ck_assert_uint_eq(ds.n_coo, 0);
  ck_assert_int_eq(events_from_dataset(&ds, &ev), 0);
  const row_t agg[] = {{0, 0, 4, NT}, {0, 1, 2, NT}};
  assert_events_are(&ev, agg, N_OF(agg));
  ck_assert_int_eq(ev.has_time, 0);
  events_t tr;
  csr_t te;
  int64_t cut = 0;
  ck_assert_int_eq(events_split(&ev, SPLIT_USER_LATEST, 0.5, 1, &tr, &te, &cut, err),
                   RECD_EINVAL);
  ck_assert_str_eq(err, "split user-latest needs interaction times, and this log has none (or "
                        "not on every interaction); use split random");
  ck_assert_ptr_null(tr.user);
  ck_assert_ptr_null(te.ptr);
  ck_assert_int_eq(events_split(&ev, SPLIT_TIME_CUT, 0.5, 1, &tr, &te, &cut, err),
                   RECD_EINVAL);
  ck_assert_int_eq(events_split(&ev, SPLIT_RANDOM, 0.5, 1, &tr, &te, &cut, err), 0);
  ck_assert_int_eq(cut, NT);
  ck_assert_int_eq(tr.has_time, 0);
  events_free(&tr);
  csr_free(&te);
  events_free(&ev);
  dataset_free(&ds);

  /* No timestamp column; and a timestamp equal to DATASET_NO_TIME. */
  p = write_file("v.csv", "user,item,weight\nalice,book,1\n");
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_int_eq(ds.has_time, 0);
  dataset_free(&ds);
  p = write_file("w.csv", "user,item,weight,timestamp\nalice,book,1,-9223372036854775808\n");
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), RECD_EFORMAT);
  ck_assert_ptr_nonnull(strstr(err, ":2: bad timestamp \"-9223372036854775808\""));
  dataset_free(&ds);

  /* An empty data set has no times; an unfinalized one gives no log. */
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(events_from_dataset(&ds, &ev), RECD_EINVAL);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_int_eq(ds.has_time, 0);
  ck_assert_int_eq(events_from_dataset(&ds, &ev), 0);
  ck_assert_uint_eq(ev.n, 0);
  events_free(&ev);
  dataset_free(&ds);
}
END_TEST

START_TEST(test_split_errors) {
  const row_t in[] = {{0, 0, 1, 10}, {0, 1, 1, 20}, {1, 0, 1, 30}};
  events_t ev, tr;
  csr_t te;
  int64_t cut;
  char err[RECD_ERRLEN];
  mk(&ev, 2, 2, 1, in, N_OF(in));
  ck_assert_int_eq(events_split(&ev, SPLIT_RANDOM, 0, 1, &tr, &te, &cut, err), RECD_EINVAL);
  ck_assert_str_eq(err, "split random: fraction 0 is not in (0, 1)");
  ck_assert_int_eq(events_split(&ev, SPLIT_TIME_CUT, 1, 1, &tr, &te, &cut, err), RECD_EINVAL);
  ck_assert_int_eq(events_split(&ev, SPLIT_TIME_CUT, NAN, 1, &tr, &te, &cut, err), RECD_EINVAL);
  ck_assert_int_eq(events_split(&ev, (split_kind_t)3, 0.5, 1, &tr, &te, &cut, err), RECD_EINVAL);
  ck_assert_str_eq(err, "split: unknown kind 3");
  ck_assert_int_eq(events_split(&ev, SPLIT_RANDOM, 0.5, 1, &ev, &te, &cut, err), RECD_EINVAL);
  ck_assert_uint_eq(ev.n, 3); /* untouched */
  ev.item[1] = 2;
  ck_assert_int_eq(events_split(&ev, SPLIT_RANDOM, 0.5, 1, &tr, &te, &cut, err), RECD_EINVAL);
  ck_assert_str_eq(err, "events: event 1: item 2 out of range (2 items)");
  ck_assert_int_eq(events_to_csr(&ev, 0, 0, &te), RECD_EINVAL);
  float pop[2];
  ck_assert_int_eq(events_popularity(&ev, 0, pop), RECD_EINVAL);
  ev.item[1] = 1;
  ev.w[2] = 0;
  ck_assert_int_eq(events_split(&ev, SPLIT_USER_LATEST, 0.5, 1, &tr, &te, &cut, err),
                   RECD_EINVAL);
  ck_assert_str_eq(err, "events: event 2: weight 0 is not finite and > 0");
  ev.w[2] = 1;
  ev.t[0] = NT;
  ck_assert_int_eq(events_split(&ev, SPLIT_TIME_CUT, 0.5, 1, &tr, &te, &cut, err), RECD_EINVAL);
  ck_assert_str_eq(err, "events: event 0 has no time in a timed log");
  events_free(&ev);
  /* Empty logs split into empty parts. */
  mk(&ev, 2, 2, 1, NULL, 0);
  for (int kind = 0; kind < 3; kind++) {
    ck_assert_int_eq(events_split(&ev, (split_kind_t)kind, 0.5, 1, &tr, &te, &cut, err), 0);
    ck_assert_uint_eq(tr.n, 0);
    ck_assert_uint_eq(te.ptr[2], 0);
    ck_assert_int_eq(cut, NT);
    events_free(&tr);
    csr_free(&te);
  }
  events_free(&ev);
}
END_TEST

static Suite *events_suite(void) {
  Suite *s = suite_create("events");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_kind_names);
  tcase_add_test(tc, test_user_latest_exact);
  tcase_add_test(tc, test_time_cut_exact);
  tcase_add_test(tc, test_random_equals_holdout);
  tcase_add_test(tc, test_split_of_split);
  tcase_add_test(tc, test_age_weighting);
  tcase_add_test(tc, test_popularity_since);
  tcase_add_test(tc, test_csv_timestamps);
  tcase_add_test(tc, test_split_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(events_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
