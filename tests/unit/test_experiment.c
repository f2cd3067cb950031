/* test_experiment.c - A/B testing (experiment.h): the documented
 * assignment hash re-implemented here and against constants computed
 * elsewhere, the split's proportions and the independence of salts, the
 * statistics against values computed with Python's math module, strict
 * parsing of the Redis counters, the report's order and comparisons, and
 * the JSON read back by a real JSON parser (Python's). */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "recd/experiment.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- the assignment ----------------------------------------------------- */

/* The header's algorithm, written out again from its comment (not shared
 * with experiment.c, so that a change on either side shows). */
static uint64_t ref_fnv(uint64_t h, const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

static uint64_t ref_hash(const char *salt, size_t slen, const char *user, size_t ulen) {
  const unsigned char zero = 0;
  uint64_t z = ref_fnv(0xcbf29ce484222325ULL, (const unsigned char *)salt, slen);
  z = ref_fnv(z, &zero, 1);
  z = ref_fnv(z, (const unsigned char *)user, ulen);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static unsigned ref_assign(uint64_t h, const unsigned *percent, unsigned n) {
  unsigned bucket = (unsigned)(h % 100), cum = 0;
  for (unsigned i = 0; i < n; i++) {
    cum += percent[i];
    if (bucket < cum)
      return i;
  }
  return n - 1;
}

START_TEST(test_hash_reference) {
  /* Computed with /usr/bin/python3 from the header's description:
   *   fnv = FNV-1a 64 over salt + b"\0" + user; mix = splitmix64 finalizer
   * (see the report of this change for the script). Binary ids included. */
  static const struct {
    const char *salt;
    size_t slen;
    const char *user;
    size_t ulen;
    uint64_t hash;
    unsigned bucket;
  } cases[] = {
      {S("salt"), S("u1"), 0x516d64ee8936218cULL, 92},
      {S(""), S(""), 0x25fc6dd36ce04b20ULL, 8},
      {S("exp-2024"), S("a\0b"), 0xf57b208cff410b6aULL, 22},
      {S("exp-2024"), S("a\0c"), 0x5b1443ad232ebaa2ULL, 90},
      {S("x"), S("\0\0\0"), 0xc44dc8bd9f4f5133ULL, 87},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const uint64_t h = exp_hash(cases[i].salt, cases[i].slen, cases[i].user, cases[i].ulen);
    ck_assert_msg(h == cases[i].hash, "case %zu: %016llx", i, (unsigned long long)h);
    ck_assert_uint_eq(h, ref_hash(cases[i].salt, cases[i].slen, cases[i].user, cases[i].ulen));
    ck_assert_uint_eq(h % 100, cases[i].bucket);
  }
  /* The bytes after a NUL count, and the separator keeps the salt / id
   * boundary: ("ab", "c") is not ("a", "bc"). */
  ck_assert_uint_ne(exp_hash(S("s"), S("a\0b")), exp_hash(S("s"), S("a\0c")));
  ck_assert_uint_ne(exp_hash(S("s"), S("a\0b")), exp_hash(S("s"), S("a")));
  ck_assert_uint_ne(exp_hash(S("ab"), S("c")), exp_hash(S("a"), S("bc")));
  /* Many ids against the independent implementation, all percents. */
  const unsigned pc[] = {10, 0, 25, 65};
  char id[32];
  for (int u = 0; u < 2000; u++) {
    const int n = snprintf(id, sizeof id, "cust\x01%d", u);
    const uint64_t h = ref_hash(S("exp"), id, (size_t)n);
    ck_assert_uint_eq(exp_hash(S("exp"), id, (size_t)n), h);
    ck_assert_uint_eq(exp_assign(S("exp"), id, (size_t)n, pc, 4), ref_assign(h, pc, 4));
  }
}
END_TEST

/* Counts of "u0".."u99999" per variant. */
static void split_counts(const char *salt, const unsigned *pc, unsigned n, unsigned *count) {
  char id[16];
  memset(count, 0, n * sizeof *count);
  for (int u = 0; u < 100000; u++) {
    const int len = snprintf(id, sizeof id, "u%d", u);
    const unsigned v = exp_assign(salt, strlen(salt), id, (size_t)len, pc, n);
    ck_assert_uint_lt(v, n);
    count[v]++;
  }
}

/* |observed - N p| within 4 binomial standard deviations. */
static void expect_binomial(unsigned observed, double n, double p) {
  const double mean = n * p, sd = sqrt(n * p * (1 - p));
  ck_assert_msg(fabs(observed - mean) <= 4 * sd, "%u, expected %.0f +- %.0f", observed, mean,
                4 * sd);
}

START_TEST(test_assign_split) {
  unsigned count[2];
  split_counts("salt-a", (const unsigned[]){50, 50}, 2, count);
  expect_binomial(count[0], 1e5, 0.5);
  split_counts("salt-a", (const unsigned[]){90, 10}, 2, count);
  expect_binomial(count[0], 1e5, 0.9);
  expect_binomial(count[1], 1e5, 0.1);
  unsigned c3[3];
  split_counts("other", (const unsigned[]){20, 30, 50}, 3, c3);
  expect_binomial(c3[0], 1e5, 0.2);
  expect_binomial(c3[1], 1e5, 0.3);
  expect_binomial(c3[2], 1e5, 0.5);
}
END_TEST

START_TEST(test_assign_salts_independent) {
  /* Two salts, 50/50 each: independent assignments put a quarter of the
   * ids in each of the four (first, second) combinations. Correlated ones
   * (the same split, or its mirror) would leave two of them near empty. */
  const unsigned pc[] = {50, 50};
  unsigned both[2][2] = {{0, 0}, {0, 0}};
  char id[16];
  for (int u = 0; u < 100000; u++) {
    const int len = snprintf(id, sizeof id, "u%d", u);
    const unsigned a = exp_assign(S("spring"), id, (size_t)len, pc, 2);
    const unsigned b = exp_assign(S("summer"), id, (size_t)len, pc, 2);
    both[a][b]++;
  }
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++)
      expect_binomial(both[a][b], 1e5, 0.25);
  /* And stable: the same salt and id, the same variant. */
  ck_assert_uint_eq(exp_assign(S("spring"), S("u42"), pc, 2),
                    exp_assign(S("spring"), S("u42"), pc, 2));
}
END_TEST

START_TEST(test_assign_zero_percents) {
  unsigned count[3];
  split_counts("z", (const unsigned[]){0, 100}, 2, count);
  ck_assert_uint_eq(count[0], 0);
  ck_assert_uint_eq(count[1], 100000);
  split_counts("z", (const unsigned[]){100, 0}, 2, count);
  ck_assert_uint_eq(count[0], 100000);
  split_counts("z", (const unsigned[]){50, 0, 50}, 3, count);
  ck_assert_uint_eq(count[1], 0);
  expect_binomial(count[0], 1e5, 0.5);
  split_counts("z", (const unsigned[]){0, 0, 100}, 3, count);
  ck_assert_uint_eq(count[2], 100000);
  split_counts("z", (const unsigned[]){100}, 1, count);
  ck_assert_uint_eq(count[0], 100000);
  /* Documented fallbacks: no variants gives 0; percents summing to less
   * than 100 leave the rest to the last variant. */
  ck_assert_uint_eq(exp_assign(S("z"), S("u1"), NULL, 0), 0);
  split_counts("z", (const unsigned[]){30, 0}, 2, count);
  expect_binomial(count[0], 1e5, 0.3);
  expect_binomial(count[1], 1e5, 0.7);
}
END_TEST

/* ---- statistics -------------------------------------------------------- */

/* Relative closeness: the formulas are the same, the order of the floating
 * point operations is not. */
#define NEAR(got, want)                                                                            \
  ck_assert_msg(fabs((got) - (want)) <= 1e-12 * fabs(want) + 1e-15, "%s = %.17g, want %.17g",      \
                #got, (got), (want))

START_TEST(test_wilson) {
  /* /usr/bin/python3, z = 1.959963984540054, p = k/n:
   *   ((p + z*z/(2n)) -+ z*sqrt(p*(1-p)/n + z*z/(4n*n))) / (1 + z*z/n) */
  static const double want[][4] = {
      {3, 10, 0.10779126740630099, 0.60322185253885463},
      {47, 1000, 0.035527105106384495, 0.061939938081528451},
      {120, 100000, 0.001003736359151164, 0.0014345845619616762},
      {0, 10, 0, 0.2775327998628892},
      {10, 10, 0.72246720013711063, 1},
      {1, 1, 0.20654931437723742, 1},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    double lo, hi;
    exp_wilson(want[i][0], want[i][1], &lo, &hi);
    NEAR(lo, want[i][2]);
    NEAR(hi, want[i][3]);
  }
  /* The bounds at k = 0 and k = n are exact, not rounding residue. */
  double lo, hi;
  exp_wilson(0, 7, &lo, &hi);
  ck_assert(lo == 0.0 && hi > 0 && hi < 1);
  exp_wilson(7, 7, &lo, &hi);
  ck_assert(hi == 1.0 && lo > 0 && lo < 1);
  /* Undefined: no trials, a count outside [0, n]. */
  exp_wilson(0, 0, &lo, &hi);
  ck_assert(isnan(lo) && isnan(hi));
  exp_wilson(3, 2, &lo, &hi);
  ck_assert(isnan(lo) && isnan(hi));
  exp_wilson(-1, 2, &lo, &hi);
  ck_assert(isnan(lo) && isnan(hi));
  exp_wilson(NAN, 2, &lo, &hi);
  ck_assert(isnan(lo) && isnan(hi));
}
END_TEST

START_TEST(test_two_proportion_p) {
  /* /usr/bin/python3: P = (k1+k2)/(n1+n2), se = sqrt(P(1-P)(1/n1+1/n2)),
   * z = (k1/n1 - k2/n2)/se, p = math.erfc(abs(z)/math.sqrt(2)). */
  static const double want[][5] = {
      {30, 1000, 20, 1000, 0.15207808079297527},
      {0, 100, 5, 100, 0.02354005826117795},
      {5, 5, 3, 10, 0.010414994659063292},
      {10, 100, 10, 100, 1},
      {200, 10000, 100, 10000, 5.9806727448735546e-09},
      {8, 50, 2, 60, 0.021390824546928325},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const double *w = want[i];
    NEAR(exp_two_proportion_p(w[0], w[1], w[2], w[3]), w[4]);
    /* Two-sided: swapping the arms changes nothing. */
    NEAR(exp_two_proportion_p(w[2], w[3], w[0], w[1]), w[4]);
  }
  /* Undefined: an empty arm, both all failures, both all successes. */
  ck_assert(isnan(exp_two_proportion_p(1, 0, 1, 10)));
  ck_assert(isnan(exp_two_proportion_p(1, 10, 0, 0)));
  ck_assert(isnan(exp_two_proportion_p(0, 10, 0, 20)));
  ck_assert(isnan(exp_two_proportion_p(10, 10, 20, 20)));
  ck_assert(isnan(exp_two_proportion_p(11, 10, 2, 20)));
}
END_TEST

START_TEST(test_lift) {
  /* /usr/bin/python3: rr = (k1/n1)/(k2/n2), se = sqrt(1/k1-1/n1+1/k2-1/n2),
   * (rr - 1, exp(log(rr) - z*se) - 1, exp(log(rr) + z*se) - 1). */
  static const double want[][7] = {
      {30, 1000, 20, 1000, 0.5, -0.14229667224629783, 1.623284680371567},
      {10, 10, 5, 10, 1, 0.076109420254178994, 2.7170941213907343},
      {8, 50, 2, 60, 3.7999999999999998, 0.067443886012363397, 20.58427276778945},
      {120, 4000, 100, 5000, 0.5, 0.15414741892105588, 0.94949099492280808},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const double *w = want[i];
    double l, lo, hi;
    exp_lift(w[0], w[1], w[2], w[3], &l, &lo, &hi);
    NEAR(l, w[4]);
    NEAR(lo, w[5]);
    NEAR(hi, w[6]);
  }
  double l, lo, hi;
  /* All successes in both arms: zero variance, a degenerate interval. */
  exp_lift(10, 10, 20, 20, &l, &lo, &hi);
  ck_assert(l == 0 && fabs(lo) < 1e-15 && fabs(hi) < 1e-15);
  /* No conversion in the variant: lift -1, no interval. */
  exp_lift(0, 100, 5, 100, &l, &lo, &hi);
  ck_assert(l == -1 && isnan(lo) && isnan(hi));
  /* No conversion in the control, or an empty arm: nothing. */
  exp_lift(5, 100, 0, 100, &l, &lo, &hi);
  ck_assert(isnan(l) && isnan(lo) && isnan(hi));
  exp_lift(5, 0, 5, 100, &l, &lo, &hi);
  ck_assert(isnan(l) && isnan(lo) && isnan(hi));
  exp_lift(5, 100, 5, 0, &l, &lo, &hi);
  ck_assert(isnan(l) && isnan(lo) && isnan(hi));
}
END_TEST

/* ---- counters ---------------------------------------------------------- */

static const exp_cell_t *find_cell(const exp_counters_t *c, const char *v, const char *p) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->cell[i].variant, v) == 0 && strcmp(c->cell[i].placement, p) == 0)
      return &c->cell[i];
  return NULL;
}

static void add(exp_counters_t *c, const char *field, const char *value) {
  ck_assert_int_eq(exp_counters_add(c, field, strlen(field), value, strlen(value)), 0);
}

START_TEST(test_names_and_fields) {
  ck_assert(exp_name_valid(S("default")));
  ck_assert(exp_name_valid(S("A-z_0.9:x")));
  ck_assert(exp_name_valid(S("x")));
  char name[EXP_NAME_MAX + 2];
  memset(name, 'n', sizeof name);
  ck_assert(exp_name_valid(name, EXP_NAME_MAX));
  ck_assert(!exp_name_valid(name, EXP_NAME_MAX + 1));
  ck_assert(!exp_name_valid(S("")));
  ck_assert(!exp_name_valid(S("a|b")));
  ck_assert(!exp_name_valid(S("a b")));
  ck_assert(!exp_name_valid(S("a\0b")));
  ck_assert(!exp_name_valid(S("caf\xc3\xa9")));
  ck_assert(!exp_name_valid(S("a/b")));

  for (int i = 0; i < EXP_N_COUNTERS; i++)
    ck_assert_ptr_nonnull(exp_counter_name((exp_counter_t)i));
  ck_assert_str_eq(exp_counter_name(EXP_REQUESTS), "requests");
  ck_assert_str_eq(exp_counter_name(EXP_IMPRESSIONS), "impressions");
  ck_assert_str_eq(exp_counter_name(EXP_CLICKS), "clicks");
  ck_assert_str_eq(exp_counter_name(EXP_CARTS), "carts");
  ck_assert_str_eq(exp_counter_name(EXP_PURCHASES), "purchases");
  ck_assert_str_eq(exp_counter_name(EXP_VALUE), "value");

  char buf[64];
  ck_assert_uint_eq(exp_field(buf, sizeof buf, "B", "home", EXP_CLICKS), 13);
  ck_assert_str_eq(buf, "B|home|clicks");
  /* Exactly fitting (13 bytes and the NUL), one byte short. */
  ck_assert_uint_eq(exp_field(buf, 14, "B", "home", EXP_CLICKS), 13);
  ck_assert_str_eq(buf, "B|home|clicks");
  ck_assert_uint_eq(exp_field(buf, 13, "B", "home", EXP_CLICKS), 0);
  ck_assert_str_eq(buf, "");
  ck_assert_uint_eq(exp_field(buf, sizeof buf, "B|x", "home", EXP_CLICKS), 0);
  ck_assert_uint_eq(exp_field(buf, sizeof buf, "B", "", EXP_CLICKS), 0);
  ck_assert_uint_eq(exp_field(buf, sizeof buf, "B", "home", EXP_N_COUNTERS), 0);

  /* Every field exp_field() writes parses back into its cell. */
  exp_counters_t c;
  exp_counters_init(&c);
  for (int i = 0; i < EXP_N_COUNTERS; i++) {
    size_t n = exp_field(buf, sizeof buf, "ctl", EXP_ORGANIC, (exp_counter_t)i);
    ck_assert_uint_gt(n, 0);
    char val[8];
    snprintf(val, sizeof val, "%d", i + 1);
    ck_assert_int_eq(exp_counters_add(&c, buf, n, val, strlen(val)), 0);
  }
  ck_assert_uint_eq(c.anomalies, 0);
  ck_assert_uint_eq(c.n, 1);
  for (int i = 0; i < EXP_N_COUNTERS; i++)
    ck_assert(c.cell[0].v[i] == i + 1);
  exp_counters_free(&c);
}
END_TEST

START_TEST(test_counters_parse) {
  exp_counters_t c;
  exp_counters_init(&c);
  add(&c, "A|home|impressions", "1000");
  add(&c, "A|home|clicks", "17");
  add(&c, "A|home|value", "12.5");
  add(&c, "A|default|value", "1e3");
  add(&c, "A|default|value", ".25"); /* the same cell, and added */
  add(&c, "A|default|requests", "0");
  add(&c, "A|default|carts", "007");
  add(&c, "B:2.x_y-z|home|purchases", "3");
  add(&c, "A|home|impressions", "24"); /* the same field again: summed */
  add(&c, "A|home|value", "5.");
  /* Lengths, not NULs: the first 13 bytes of the field, 1 of the value. */
  ck_assert_int_eq(exp_counters_add(&c, "A|home|clicksXYZ", 13, "39", 1), 0);
  ck_assert_uint_eq(c.anomalies, 0);
  ck_assert_uint_eq(c.n, 3);
  const exp_cell_t *h = find_cell(&c, "A", "home"), *d = find_cell(&c, "A", "default");
  const exp_cell_t *b = find_cell(&c, "B:2.x_y-z", "home");
  ck_assert(h && d && b);
  ck_assert(h->v[EXP_IMPRESSIONS] == 1024);
  ck_assert(h->v[EXP_CLICKS] == 20);
  ck_assert(h->v[EXP_VALUE] == 17.5);
  ck_assert(h->v[EXP_PURCHASES] == 0 && h->v[EXP_REQUESTS] == 0 && h->v[EXP_CARTS] == 0);
  ck_assert(d->v[EXP_VALUE] == 1000.25);
  ck_assert(d->v[EXP_CARTS] == 7);
  ck_assert(d->v[EXP_REQUESTS] == 0);
  ck_assert(b->v[EXP_PURCHASES] == 3);

  /* Every kind of malformed field or value: each is one anomaly and
   * changes nothing. */
  char longname[EXP_NAME_MAX + 32];
  memset(longname, 'v', EXP_NAME_MAX + 1);
  strcpy(longname + EXP_NAME_MAX + 1, "|home|clicks");
  static const struct {
    const char *field;
    size_t flen;
    const char *value;
    size_t vlen;
  } bad[] = {
      {S(""), S("1")},
      {S("nobar"), S("1")},
      {S("A|home"), S("1")},
      {S("A|home|"), S("1")},
      {S("|home|clicks"), S("1")},
      {S("A||clicks"), S("1")},
      {S("A|home|clicks|x"), S("1")},
      {S("A|ho me|clicks"), S("1")},
      {S("A\0|home|clicks"), S("1")},
      {S("A|home|Clicks"), S("1")},
      {S("A|home|click"), S("1")},
      {S("A|home|clicks "), S("1")},
      {S("A|home|bogus"), S("1")},
      {S("A|home|clicks"), S("")},
      {S("A|home|clicks"), S("-1")},
      {S("A|home|clicks"), S("+1")},
      {S("A|home|clicks"), S(" 1")},
      {S("A|home|clicks"), S("1 ")},
      {S("A|home|clicks"), S("1x")},
      {S("A|home|clicks"), S("1\0")},
      {S("A|home|clicks"), S("1.5")},
      {S("A|home|clicks"), S("1e3")},
      {S("A|home|clicks"), S("0x10")},
      {S("A|home|clicks"), S("nan")},
      {S("A|home|clicks"), S("inf")},
      {S("A|home|clicks"), S("99999999999999999999999")},
      {S("A|home|value"), S("")},
      {S("A|home|value"), S("-1.5")},
      {S("A|home|value"), S("-0")},
      {S("A|home|value"), S("nan")},
      {S("A|home|value"), S("NaN")},
      {S("A|home|value"), S("inf")},
      {S("A|home|value"), S("-inf")},
      {S("A|home|value"), S("1e999")},
      {S("A|home|value"), S("0x1p3")},
      {S("A|home|value"), S("1e")},
      {S("A|home|value"), S(".")},
      {S("A|home|value"), S("1.5.2")},
      {S("A|home|value"), S("2.5abc")},
      {S("A|home|value"), S(" 2")},
      {S("A|home|value"), S("2 ")},
      {S("A|home|value"), S("1,5")},
  };
  const size_t nbad = sizeof bad / sizeof bad[0];
  for (size_t i = 0; i < nbad; i++) {
    ck_assert_int_eq(exp_counters_add(&c, bad[i].field, bad[i].flen, bad[i].value, bad[i].vlen),
                     0);
    ck_assert_msg(c.anomalies == i + 1, "accepted: %.*s = %.*s", (int)bad[i].flen, bad[i].field,
                  (int)bad[i].vlen, bad[i].value);
  }
  add(&c, longname, "1");
  ck_assert_uint_eq(c.anomalies, nbad + 1);
  ck_assert_int_eq(exp_counters_add(&c, NULL, 0, "1", 1), 0);
  ck_assert_uint_eq(c.anomalies, nbad + 2);
  ck_assert_uint_eq(c.n, 3);
  ck_assert(h->v[EXP_CLICKS] == 20 && h->v[EXP_VALUE] == 17.5);
  exp_counters_free(&c);
  ck_assert_uint_eq(c.n, 0);
  ck_assert_ptr_null(c.cell);
}
END_TEST

START_TEST(test_counters_many_cells) {
  /* Enough placements to grow and re-index several times; fields come in
   * an interleaved order so that every lookup hits a cell made earlier. */
  enum { P = 3000 };
  exp_counters_t c;
  exp_counters_init(&c);
  char field[64];
  for (int round = 0; round < 2; round++)
    for (int p = 0; p < P; p++)
      for (int v = 0; v < 2; v++) {
        snprintf(field, sizeof field, "%s|p%d|impressions", v ? "B" : "A", p);
        add(&c, field, round ? "1" : "10");
      }
  ck_assert_uint_eq(c.n, 2 * P);
  ck_assert_uint_eq(c.anomalies, 0);
  for (size_t i = 0; i < c.n; i++)
    ck_assert(c.cell[i].v[EXP_IMPRESSIONS] == 11);
  ck_assert_ptr_nonnull(find_cell(&c, "B", "p2999"));
  exp_counters_free(&c);
}
END_TEST

/* ---- report ------------------------------------------------------------ */

/* The report's fixture: configured {ctl, B, A} (not alphabetical), two
 * variants no longer configured (zzz, old), a placement where the control
 * has no row (B/aaa), one that sorts after "organic" (A/pdp), organic rows.
 * Added in an order unrelated to the report's. */
static void fixture(exp_counters_t *c) {
  static const char *const f[][2] = {
      {"zzz|default|impressions", "10"}, {"zzz|default|purchases", "1"},
      {"A|pdp|impressions", "50"},       {"A|pdp|purchases", "1"},
      {"B|organic|purchases", "1"},      {"B|organic|value", "9.99"},
      {"old|home|impressions", "5"},     {"A|home|impressions", "400"},
      {"A|home|purchases", "8"},         {"A|home|clicks", "40"},
      {"ctl|organic|purchases", "3"},    {"ctl|organic|value", "10"},
      {"B|default|impressions", "1000"}, {"B|default|purchases", "30"},
      {"B|default|clicks", "120"},       {"B|default|requests", "100"},
      {"B|aaa|impressions", "100"},      {"B|aaa|purchases", "2"},
      {"ctl|home|impressions", "500"},   {"ctl|home|purchases", "5"},
      {"ctl|home|clicks", "30"},         {"A|default|impressions", "900"},
      {"A|default|purchases", "0"},      {"ctl|default|impressions", "1000"},
      {"ctl|default|purchases", "20"},   {"ctl|default|clicks", "100"},
      {"ctl|default|requests", "100"},   {"ctl|default|carts", "40"},
      {"ctl|default|value", "250.5"},
  };
  exp_counters_init(c);
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    add(c, f[i][0], f[i][1]);
  ck_assert_uint_eq(c->anomalies, 0);
}

/* Asserts a == b, NaN equal to NaN. */
#define SAME(a, b)                                                                                 \
  ck_assert_msg((isnan(a) && isnan(b)) || (a) == (b), "%s = %.17g, want %.17g", #a, (a), (b))

/* The row's figures recomputed with the exported statistics. */
static void expect_figures(const exp_row_t *r, const exp_counters_t *c, const char *control) {
  const exp_cell_t *cell = find_cell(c, r->variant, r->placement);
  ck_assert_ptr_nonnull(cell);
  for (int i = 0; i < EXP_N_COUNTERS; i++)
    ck_assert(r->v[i] == cell->v[i]);
  const double n = cell->v[EXP_IMPRESSIONS], k = cell->v[EXP_PURCHASES];
  double lo, hi;
  SAME(r->ctr, n > 0 ? cell->v[EXP_CLICKS] / n : NAN);
  exp_wilson(cell->v[EXP_CLICKS], n, &lo, &hi);
  SAME(r->ctr_low, lo);
  SAME(r->ctr_high, hi);
  SAME(r->conversion, n > 0 ? k / n : NAN);
  exp_wilson(k, n, &lo, &hi);
  SAME(r->conversion_low, lo);
  SAME(r->conversion_high, hi);
  const int want_lift = control != NULL && strcmp(r->variant, control) != 0 &&
                        strcmp(r->placement, EXP_ORGANIC) != 0;
  ck_assert_int_eq(r->has_lift, want_lift);
  if (!want_lift)
    return;
  const exp_cell_t *ctl = find_cell(c, control, r->placement);
  const double kc = ctl ? ctl->v[EXP_PURCHASES] : 0, nc = ctl ? ctl->v[EXP_IMPRESSIONS] : 0;
  double l;
  exp_lift(k, n, kc, nc, &l, &lo, &hi);
  SAME(r->lift, l);
  SAME(r->lift_low, lo);
  SAME(r->lift_high, hi);
  SAME(r->p_value, exp_two_proportion_p(k, n, kc, nc));
}

static void expect_order(const exp_report_t *r, const char *const (*want)[2], size_t n) {
  ck_assert_uint_eq(r->n, n);
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(strcmp(r->row[i].variant, want[i][0]) == 0 &&
                      strcmp(r->row[i].placement, want[i][1]) == 0,
                  "row %zu: %s/%s, want %s/%s", i, r->row[i].variant, r->row[i].placement,
                  want[i][0], want[i][1]);
  }
}

START_TEST(test_report_order_and_lift) {
  exp_counters_t c;
  fixture(&c);
  const char *const variants[] = {"ctl", "B", "A"};
  exp_report_t r;
  ck_assert_int_eq(exp_report_compute(&c, variants, 3, &r), 0);
  static const char *const want[][2] = {
      {"ctl", "default"}, {"ctl", "home"},    {"ctl", "organic"}, {"B", "aaa"},
      {"B", "default"},   {"B", "organic"},   {"A", "default"},   {"A", "home"},
      {"A", "pdp"},       {"old", "home"},    {"zzz", "default"},
  };
  expect_order(&r, want, sizeof want / sizeof want[0]);
  for (size_t i = 0; i < r.n; i++)
    expect_figures(&r.row[i], &c, "ctl");

  /* Spot checks against hand-known values. B/default vs ctl/default:
   * 30/1000 against 20/1000, the first lift and p-value of test_lift and
   * test_two_proportion_p. */
  const exp_row_t *bd = &r.row[4];
  ck_assert(bd->has_lift);
  NEAR(bd->conversion, 0.03);
  NEAR(bd->ctr, 0.12);
  NEAR(bd->lift, 0.5);
  NEAR(bd->lift_low, -0.14229667224629783);
  NEAR(bd->lift_high, 1.623284680371567);
  NEAR(bd->p_value, 0.15207808079297527);
  /* A/home against ctl/home (8/400 vs 5/500), not against B. */
  NEAR(r.row[7].lift, (8.0 / 400) / (5.0 / 500) - 1);
  /* A/default converted no one: lift -1, no interval. */
  ck_assert(r.row[6].lift == -1 && isnan(r.row[6].lift_low));
  /* B/aaa and A/pdp: the control has no row there, so nothing to compare. */
  ck_assert(r.row[3].has_lift && isnan(r.row[3].lift) && isnan(r.row[3].p_value));
  ck_assert(r.row[8].has_lift && isnan(r.row[8].lift));
  /* The control and the organic rows: no comparison, NaN figures. */
  ck_assert(!r.row[0].has_lift && !r.row[2].has_lift && !r.row[5].has_lift);
  ck_assert(isnan(r.row[0].lift) && isnan(r.row[0].p_value));
  /* Organic rows have no impressions: per-impression rates undefined. */
  ck_assert(isnan(r.row[5].conversion) && isnan(r.row[5].ctr_low));
  ck_assert(r.row[5].v[EXP_VALUE] == 9.99);
  /* Unconfigured variants are still compared with the control. */
  ck_assert(r.row[10].has_lift);
  NEAR(r.row[10].lift, (1.0 / 10) / (20.0 / 1000) - 1);
  exp_report_free(&r);
  ck_assert_ptr_null(r.row);

  /* Another control: B. Now ctl is just one more variant. */
  const char *const other[] = {"B", "ctl"};
  ck_assert_int_eq(exp_report_compute(&c, other, 2, &r), 0);
  static const char *const want2[][2] = {
      {"B", "aaa"},      {"B", "default"}, {"B", "organic"}, {"ctl", "default"},
      {"ctl", "home"},   {"ctl", "organic"}, {"A", "default"}, {"A", "home"},
      {"A", "pdp"},      {"old", "home"},  {"zzz", "default"},
  };
  expect_order(&r, want2, sizeof want2 / sizeof want2[0]);
  for (size_t i = 0; i < r.n; i++)
    expect_figures(&r.row[i], &c, "B");
  NEAR(r.row[3].lift, (20.0 / 1000) / (30.0 / 1000) - 1);
  exp_report_free(&r);

  /* Nothing configured: all by name, and no control to compare with. */
  ck_assert_int_eq(exp_report_compute(&c, NULL, 0, &r), 0);
  static const char *const want3[][2] = {
      {"A", "default"},   {"A", "home"},    {"A", "pdp"},       {"B", "aaa"},
      {"B", "default"},   {"B", "organic"}, {"ctl", "default"}, {"ctl", "home"},
      {"ctl", "organic"}, {"old", "home"},  {"zzz", "default"},
  };
  expect_order(&r, want3, sizeof want3 / sizeof want3[0]);
  for (size_t i = 0; i < r.n; i++)
    expect_figures(&r.row[i], &c, NULL);
  exp_report_free(&r);

  /* A configured variant with no counters has no row; the others still
   * compare against it (as zeros). */
  const char *const missing[] = {"new", "A"};
  ck_assert_int_eq(exp_report_compute(&c, missing, 2, &r), 0);
  ck_assert_uint_eq(r.n, 11);
  ck_assert_str_eq(r.row[0].variant, "A");
  for (size_t i = 0; i < r.n; i++)
    expect_figures(&r.row[i], &c, "new");
  exp_report_free(&r);
  exp_counters_free(&c);

  /* No counters: an empty report. */
  exp_counters_init(&c);
  ck_assert_int_eq(exp_report_compute(&c, variants, 3, &r), 0);
  ck_assert_uint_eq(r.n, 0);
  exp_report_free(&r);
}
END_TEST

/* ---- JSON -------------------------------------------------------------- */

/* Feeds json to `python3 -c script` on stdin; returns its exit status
 * (0: parsed, and the script's own assertions held). */
static int python_check(const char *json, const char *script) {
  char cmd[4096];
  ck_assert_ptr_null(strchr(script, '\''));
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 -c '%s'", script);
  FILE *p = popen(cmd, "w");
  ck_assert_ptr_nonnull(p);
  fputs(json, p);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The number after "key": in the row beginning at row_start. */
static double json_number(const char *row_start, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *at = strstr(row_start, pat);
  ck_assert_ptr_nonnull(at);
  return strtod(at + strlen(pat), NULL);
}

START_TEST(test_report_json) {
  exp_counters_t c;
  fixture(&c);
  const char *const variants[] = {"ctl", "B", "A"};
  exp_report_t r;
  ck_assert_int_eq(exp_report_compute(&c, variants, 3, &r), 0);
  size_t len = 0;
  char *json = exp_report_json(&r, &len);
  ck_assert_ptr_nonnull(json);
  ck_assert_uint_eq(len, strlen(json));

  /* A real parser: valid JSON, exactly the documented keys in each row
   * (the comparison ones only where the row compares with the control),
   * counters as numbers, null where undefined. */
  static const char script[] =
      "import json, sys, math\n"
      "d = json.load(sys.stdin)\n"
      "assert list(d) == [\"rows\"]\n"
      "rows = d[\"rows\"]\n"
      "assert len(rows) == 11, len(rows)\n"
      "base = [\"variant\", \"placement\", \"requests\", \"impressions\", \"clicks\",\n"
      "        \"carts\", \"purchases\", \"value\", \"ctr\", \"ctr_low\", \"ctr_high\",\n"
      "        \"conversion\", \"conversion_low\", \"conversion_high\"]\n"
      "lift = [\"lift\", \"lift_low\", \"lift_high\", \"p_value\"]\n"
      "for r in rows:\n"
      "    cmp = r[\"variant\"] != \"ctl\" and r[\"placement\"] != \"organic\"\n"
      "    assert list(r) == base + (lift if cmp else []), (r, list(r))\n"
      "    for k in base[2:8]:\n"
      "        assert type(r[k]) in (int, float) and r[k] >= 0, (k, r)\n"
      "    for k in base[8:] + (lift if cmp else []):\n"
      "        assert r[k] is None or math.isfinite(r[k]), (k, r)\n"
      "first = rows[0]\n"
      "assert (first[\"variant\"], first[\"placement\"]) == (\"ctl\", \"default\")\n"
      "assert first[\"requests\"] == 100 and first[\"carts\"] == 40 and first[\"value\"] == 250.5\n"
      "assert first[\"conversion\"] == 0.02 and first[\"ctr\"] == 0.1\n"
      "org = rows[5]\n"
      "assert (org[\"variant\"], org[\"placement\"]) == (\"B\", \"organic\")\n"
      "assert org[\"value\"] == 9.99 and org[\"conversion\"] is None and org[\"ctr_low\"] is None\n"
      "aaa = rows[3]\n"
      "assert aaa[\"lift\"] is None and aaa[\"p_value\"] is None and aaa[\"conversion\"] == 0.02\n"
      "assert abs(rows[4][\"lift\"] - 0.5) < 1e-12\n"
      "assert rows[6][\"lift\"] == -1 and rows[6][\"lift_low\"] is None\n";
  ck_assert_int_eq(python_check(json, script), 0);

  /* The numbers read back bit for bit (shortest round-trip text). */
  const char *bd = strstr(json, "{\"variant\": \"B\", \"placement\": \"default\"");
  ck_assert_ptr_nonnull(bd);
  ck_assert(json_number(bd, "p_value") == r.row[4].p_value);
  ck_assert(json_number(bd, "lift_high") == r.row[4].lift_high);
  ck_assert(json_number(bd, "conversion_low") == r.row[4].conversion_low);
  ck_assert_ptr_nonnull(strstr(json, "\"value\": 9.99,"));
  ck_assert_ptr_nonnull(strstr(json, "\"conversion\": null"));
  ck_assert_ptr_null(strstr(json, "nan"));
  free(json);
  exp_report_free(&r);
  exp_counters_free(&c);

  /* Empty report. */
  exp_report_t empty = {NULL, 0};
  json = exp_report_json(&empty, &len);
  ck_assert_ptr_nonnull(json);
  ck_assert_str_eq(json, "{\"rows\": []}");
  ck_assert_int_eq(python_check(json, "import json, sys; assert json.load(sys.stdin) == "
                                      "{\"rows\": []}"),
                   0);
  free(json);

  /* Escaping, for rows a caller filled in by hand: quotes, backslashes,
   * control and non-ASCII bytes all come out as valid JSON; infinities are
   * null too. */
  exp_row_t row;
  memset(&row, 0, sizeof row);
  snprintf(row.variant, sizeof row.variant, "%s", "a\"b\\c\n\x01\x7f\xff");
  snprintf(row.placement, sizeof row.placement, "%s", "</script>");
  row.ctr = INFINITY;
  row.ctr_low = -INFINITY;
  row.ctr_high = NAN;
  row.conversion = 1e-300;
  row.has_lift = 1;
  row.lift = -0.25;
  row.p_value = 5e-324;
  exp_report_t one = {&row, 1};
  json = exp_report_json(&one, NULL);
  ck_assert_ptr_nonnull(json);
  ck_assert_int_eq(
      python_check(json, "import json, sys\n"
                         "r = json.load(sys.stdin)[\"rows\"][0]\n"
                         "assert r[\"variant\"] == \"a\\\"b\\\\c\\n\\x01\\x7f\\xff\", r\n"
                         "assert r[\"placement\"] == \"</script>\"\n"
                         "assert r[\"ctr\"] is None and r[\"ctr_low\"] is None\n"
                         "assert r[\"ctr_high\"] is None and r[\"conversion\"] == 1e-300\n"
                         "assert r[\"lift\"] == -0.25 and r[\"p_value\"] == 5e-324\n"),
      0);
  free(json);
}
END_TEST

static Suite *experiment_suite(void) {
  Suite *s = suite_create("experiment");
  TCase *tc = tcase_create("core");
  /* Check's default of 4 s is too tight for a sanitized build on a
   * loaded 2-core machine. */
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_hash_reference);
  tcase_add_test(tc, test_assign_split);
  tcase_add_test(tc, test_assign_salts_independent);
  tcase_add_test(tc, test_assign_zero_percents);
  tcase_add_test(tc, test_wilson);
  tcase_add_test(tc, test_two_proportion_p);
  tcase_add_test(tc, test_lift);
  tcase_add_test(tc, test_names_and_fields);
  tcase_add_test(tc, test_counters_parse);
  tcase_add_test(tc, test_counters_many_cells);
  tcase_add_test(tc, test_report_order_and_lift);
  tcase_add_test(tc, test_report_json);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(experiment_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
