/* test_model.c - the model file: round trips, and every way a file can be
 * wrong (truncated, bit-flipped, structurally inconsistent behind a valid
 * checksum), plus atomic publication. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include "model_internal.h"
#include "recd/model.h"
#include "recd/rng.h"
#include "testutil.h"

/* Check records the location of every ck_assert through its fork-mode
 * channel (a write() per call), which dominates loops over millions of
 * elements; this asserts only on failure. */
#define QUIET_ASSERT(cond, ...)                                                \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

/* ---- a random model held by the test ----------------------------------- */

typedef struct tm {
  uint32_t n, k, nc;
  size_t ldy;
  float *Y, *pop;
  uint32_t *cat;          /* NULL: no categories given */
  char **ids;
  uint32_t *id_lens;
  char **cnames;
  uint32_t *clens;
  uint32_t ng;            /* groups: as many as categories, names grp-<g> */
  uint32_t *grp;          /* NULL: no groups given */
  char **gnames;
  uint32_t *glens;
  params_t params;
  model_meta_t meta;
} tm_t;

/* n items, k factors, nc categories. Ids are mostly "item-<i>", with a
 * 256-byte id (item 1) and a binary one with an embedded NUL (item 2) when
 * n allows. Y rows have 3 floats of NaN padding (ldy = k + 3) that the
 * writer must ignore. */
static void tm_init(tm_t *t, uint32_t n, uint32_t k, uint32_t nc, uint64_t seed) {
  memset(t, 0, sizeof *t);
  t->n = n;
  t->k = k;
  t->nc = nc;
  t->ldy = k + 3;
  rng_t r;
  rng_seed(&r, seed);
  t->Y = malloc((size_t)n * t->ldy * sizeof *t->Y);
  t->pop = malloc((size_t)n * sizeof *t->pop);
  t->ids = malloc((size_t)n * sizeof *t->ids);
  t->id_lens = malloc((size_t)n * sizeof *t->id_lens);
  ck_assert(t->Y && t->pop && t->ids && t->id_lens);
  tu_randn(t->Y, (size_t)n * t->ldy, seed, (float)(1.0 / sqrt((double)k)));
  for (uint32_t i = 0; i < n; i++) {
    for (size_t j = k; j < t->ldy; j++)
      t->Y[i * t->ldy + j] = NAN;
    t->pop[i] = i == 0 ? 0.0f : (float)(rng_uniform(&r) * 100);
    char *id = malloc(MODEL_MAX_ID_LEN + 1);
    ck_assert_ptr_nonnull(id);
    if (i == 1 && n > 2) {
      for (int j = 0; j < MODEL_MAX_ID_LEN; j++)
        id[j] = (char)('a' + j % 26);
      t->id_lens[i] = MODEL_MAX_ID_LEN;
    } else if (i == 2) {
      memcpy(id, "\0\xff\n\"x", 5);
      t->id_lens[i] = 5;
    } else {
      t->id_lens[i] = (uint32_t)snprintf(id, MODEL_MAX_ID_LEN, "item-%u", i);
    }
    t->ids[i] = id;
  }
  if (nc > 0) {
    t->cat = malloc((size_t)n * sizeof *t->cat);
    t->cnames = malloc(nc * sizeof *t->cnames);
    t->clens = malloc(nc * sizeof *t->clens);
    ck_assert(t->cat && t->cnames && t->clens);
    for (uint32_t i = 0; i < n; i++)
      t->cat[i] = (uint32_t)rng_below(&r, nc + 1);
    for (uint32_t c = 0; c < nc; c++) {
      t->cnames[c] = malloc(32);
      ck_assert_ptr_nonnull(t->cnames[c]);
      t->clens[c] = (uint32_t)snprintf(t->cnames[c], 32, "cat-%u", c + 1);
    }
    t->ng = nc;
    t->grp = malloc((size_t)n * sizeof *t->grp);
    t->gnames = malloc(nc * sizeof *t->gnames);
    t->glens = malloc(nc * sizeof *t->glens);
    ck_assert(t->grp && t->gnames && t->glens);
    for (uint32_t i = 0; i < n; i++)
      t->grp[i] = (uint32_t)rng_below(&r, nc + 1);
    for (uint32_t g = 0; g < nc; g++) {
      t->gnames[g] = malloc(32);
      ck_assert_ptr_nonnull(t->gnames[g]);
      t->glens[g] = (uint32_t)snprintf(t->gnames[g], 32, "grp-%u", g + 1);
    }
  }
  t->params = (params_t){.factors = k, .iterations = 7, .conf_mode = PARAMS_CONF_LOG,
                         .cg_steps = 3, .lambda = 0.125f, .alpha = 12.5f, .eps = 0.5f,
                         .reg_exponent = 0.75f, .seed = 1234567890123ULL};
  t->meta = (model_meta_t){.created_at = -1700000000LL, .n_users = 987654321ULL,
                           .n_interactions = 1ULL << 40, .train_seconds = 12.25,
                           .holdout_fraction = 0.2, .holdout_users = 4242,
                           .model = {0.1, 0.2, 0.3, 0.4, 0.5},
                           .popularity = {0.01, 0.02, 0.03, 0.04, 0.05},
                           .score_scale = 0.375f, .has_ease = 1,
                           .ease = {0.11, 0.21, 0.31, 0.41, 0.51}, .has_recent = 1,
                           .recent_popularity = {0.012, 0.022, 0.032, 0.042, 0.052},
                           .serves = MODEL_SERVES_ALS, .eval_split = MODEL_SPLIT_TIME_CUT,
                           .half_life_days = 45.5, .tuned_at = 1767225600LL};
}

/* The version-3 metadata as a version-1 or -2 file reads it: absent, 0. */
static void meta_drop_v3(model_meta_t *m) {
  m->has_recent = 0;
  memset(&m->recent_popularity, 0, sizeof m->recent_popularity);
  m->serves = MODEL_SERVES_ALS;
  m->eval_split = MODEL_SPLIT_RANDOM;
  m->half_life_days = 0;
  m->tuned_at = 0;
}

static void tm_free(tm_t *t) {
  for (uint32_t i = 0; i < t->n; i++)
    free(t->ids[i]);
  for (uint32_t c = 0; c < t->nc && t->cnames; c++)
    free(t->cnames[c]);
  for (uint32_t g = 0; g < t->ng && t->gnames; g++)
    free(t->gnames[g]);
  free(t->grp);
  free(t->gnames);
  free(t->glens);
  free(t->Y);
  free(t->pop);
  free(t->cat);
  free(t->ids);
  free(t->id_lens);
  free(t->cnames);
  free(t->clens);
}

static model_spec_t tm_spec(const tm_t *t) {
  return (model_spec_t){.n_items = t->n, .params = t->params, .meta = t->meta, .Y = t->Y,
                        .ldy = t->ldy, .popularity = t->pop,
                        .item_ids = (const char *const *)t->ids, .item_id_lens = t->id_lens,
                        .item_category = t->cat, .n_categories = t->nc,
                        .category_names = (const char *const *)t->cnames,
                        .category_name_lens = t->clens, .item_group = t->grp,
                        .n_groups = t->ng, .group_names = (const char *const *)t->gnames,
                        .group_name_lens = t->glens};
}

static void check_metrics(const model_metrics_t *a, const model_metrics_t *b) {
  ck_assert(a->precision == b->precision && a->recall == b->recall && a->ndcg == b->ndcg &&
            a->map == b->map && a->coverage == b->coverage);
}

/* Compares a loaded model of format `version` with the test's copy, field
 * by field. */
static void tm_check_version(const tm_t *t, const model_t *m, uint32_t version) {
  const uint32_t n = t->n, k = t->k;
  ck_assert_uint_eq(model_n_items(m), n);
  ck_assert_uint_eq(model_factors(m), k);
  const uint32_t stride = model_stride(m);
  ck_assert_uint_eq(stride % 16, 0);
  ck_assert_uint_ge(stride, k);
  ck_assert_uint_lt(stride, k + 16);
  ck_assert_uint_eq(model_n_categories(m), t->nc);

  const params_t *p = model_params(m);
  ck_assert_uint_eq(p->factors, t->params.factors);
  ck_assert_uint_eq(p->iterations, t->params.iterations);
  ck_assert_uint_eq(p->conf_mode, t->params.conf_mode);
  ck_assert_uint_eq(p->cg_steps, t->params.cg_steps);
  ck_assert(p->lambda == t->params.lambda && p->alpha == t->params.alpha);
  ck_assert(p->eps == t->params.eps && p->reg_exponent == t->params.reg_exponent);
  ck_assert_uint_eq(p->seed, t->params.seed);
  const model_meta_t *mm = model_meta(m);
  ck_assert_int_eq(mm->created_at, t->meta.created_at);
  ck_assert_uint_eq(mm->n_users, t->meta.n_users);
  ck_assert_uint_eq(mm->n_interactions, t->meta.n_interactions);
  ck_assert(mm->train_seconds == t->meta.train_seconds);
  ck_assert(mm->holdout_fraction == t->meta.holdout_fraction);
  ck_assert_uint_eq(mm->holdout_users, t->meta.holdout_users);
  check_metrics(&mm->model, &t->meta.model);
  check_metrics(&mm->popularity, &t->meta.popularity);
  ck_assert(mm->score_scale == t->meta.score_scale);
  ck_assert_uint_eq(mm->has_ease, t->meta.has_ease);
  check_metrics(&mm->ease, &t->meta.ease);
  ck_assert_uint_eq(mm->has_recent, t->meta.has_recent);
  check_metrics(&mm->recent_popularity, &t->meta.recent_popularity);
  ck_assert_uint_eq(mm->serves, t->meta.serves);
  ck_assert_uint_eq(mm->eval_split, t->meta.eval_split);
  ck_assert(mm->half_life_days == t->meta.half_life_days);
  ck_assert_int_eq(mm->tuned_at, t->meta.tuned_at);
  ck_assert_uint_eq(model_version(m), version);
  ck_assert_uint_eq(model_n_groups(m), t->ng);

  const float *Y = model_item_factors(m);
  ck_assert_uint_eq((uintptr_t)Y % MODEL_ALIGN, 0);
  const float *norms = model_item_norms(m);
  for (uint32_t i = 0; i < n; i++) {
    const float *row = Y + (size_t)i * stride;
    QUIET_ASSERT(memcmp(row, t->Y + i * t->ldy, k * sizeof(float)) == 0, "Y row %u", i);
    for (uint32_t j = k; j < stride; j++)
      QUIET_ASSERT(row[j] == 0.0f && !signbit(row[j]), "Y row %u padding %u", i, j);
    double sq = 0;
    for (uint32_t j = 0; j < k; j++)
      sq += (double)row[j] * row[j];
    /* One float rounding of an exact-enough double. */
    QUIET_ASSERT(fabs(norms[i] - sqrt(sq)) <= 1e-6 * sqrt(sq) + 1e-30, "norm of item %u", i);
    QUIET_ASSERT(model_popularity(m)[i] == t->pop[i], "popularity of item %u", i);
    QUIET_ASSERT(model_item_categories(m)[i] == (t->cat ? t->cat[i] : 0), "category of %u", i);
    QUIET_ASSERT(model_item_groups(m)[i] == (t->grp ? t->grp[i] : 0), "group of %u", i);
  }

  /* YtY against a double-precision sum. ssyrk accumulates float products;
   * float summation of n terms in any order errs by at most ~n * 2^-24
   * times the sum of the terms' magnitudes (Higham's gamma_n), plus one
   * rounding per product, so that bound (with 2 to spare) is the tolerance. */
  const float *g = model_gram(m);
  ck_assert_uint_eq((uintptr_t)g % MODEL_ALIGN, 0);
  const double u = FLT_EPSILON / 2;
  for (uint32_t a = 0; a < k; a++)
    for (uint32_t b = a; b < k; b++) {
      double ref = 0, mag = 0;
      for (uint32_t i = 0; i < n; i++) {
        double v = (double)t->Y[i * t->ldy + a] * t->Y[i * t->ldy + b];
        ref += v;
        mag += fabs(v);
      }
      double got = g[(size_t)a * k + b];
      QUIET_ASSERT(fabs(got - ref) <= (n + 3) * u * mag + 1e-30,
                   "YtY[%u][%u] = %.9g, reference %.9g", a, b, got, ref);
      QUIET_ASSERT(g[(size_t)a * k + b] == g[(size_t)b * k + a], "YtY[%u][%u] asymmetric", a,
                   b);
    }

  for (uint32_t i = 0; i < n; i++) {
    size_t len;
    const char *id = model_item_id(m, i, &len);
    QUIET_ASSERT(len == t->id_lens[i] && memcmp(id, t->ids[i], len) == 0, "id of item %u", i);
    QUIET_ASSERT(model_find_item(m, t->ids[i], t->id_lens[i]) == i, "find item %u", i);
  }
  size_t len = 99;
  ck_assert_ptr_null(model_item_id(m, n, &len));
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(model_find_item(m, "no-such-item", 12), -1);
  ck_assert_int_eq(model_find_item(m, "item-", 5), -1);
  ck_assert_int_eq(model_find_item(m, "", 0), -1);
  for (uint32_t c = 1; c <= t->nc; c++) {
    const char *name = model_category_name(m, c, &len);
    ck_assert_uint_eq(len, t->clens[c - 1]);
    ck_assert_int_eq(memcmp(name, t->cnames[c - 1], len), 0);
    ck_assert_uint_eq(model_find_category(m, t->cnames[c - 1], t->clens[c - 1]), c);
  }
  ck_assert_ptr_null(model_category_name(m, 0, &len));
  ck_assert_ptr_null(model_category_name(m, t->nc + 1, &len));
  ck_assert_uint_eq(model_find_category(m, "no-such-category", 16), 0);
  for (uint32_t gi = 1; gi <= t->ng; gi++) {
    const char *name = model_group_name(m, gi, &len);
    ck_assert_uint_eq(len, t->glens[gi - 1]);
    ck_assert_int_eq(memcmp(name, t->gnames[gi - 1], len), 0);
    ck_assert_uint_eq(model_find_group(m, t->gnames[gi - 1], t->glens[gi - 1]), gi);
  }
  ck_assert_ptr_null(model_group_name(m, 0, &len));
  ck_assert_uint_eq(len, 0);
  ck_assert_ptr_null(model_group_name(m, t->ng + 1, &len));
  ck_assert_uint_eq(model_find_group(m, "no-such-group", 13), 0);
}

static void tm_check(const tm_t *t, const model_t *m) {
  tm_check_version(t, m, MODEL_VERSION);
}

static uint32_t crc_of(const unsigned char *b, size_t len) {
  return (uint32_t)crc32(crc32(0L, Z_NULL, 0), b + MODEL__CRC_START,
                         (uInt)(len - MODEL__CRC_START));
}

/* Writes, loads from the file and from a misaligned copy in memory, and
 * checks both against t. Returns the file's bytes. */
static unsigned char *round_trip(const tm_t *t, const char *path, size_t *len) {
  char err[RECD_ERRLEN] = "";
  model_spec_t spec = tm_spec(t);
  ck_assert_msg(model_write(&spec, path, err) == 0, "write: %s", err);
  unsigned char *bytes = tu_read_file(path, len);
  model_t *m = NULL;
  ck_assert_msg(model_load(&m, path, err) == 0, "load: %s", err);
  tm_check(t, m);
  ck_assert_uint_eq(model_file_size(m), *len);
  ck_assert_uint_eq(model_checksum(m), crc_of(bytes, *len));
  ck_assert_uint_eq(model_checksum(m), model__get_u32(bytes + MODEL__OFF_CHECKSUM));
  model_free(m);
  unsigned char *odd = malloc(*len + 1);
  memcpy(odd + 1, bytes, *len);
  ck_assert_msg(model_load_buffer(&m, odd + 1, *len, err) == 0, "load_buffer: %s", err);
  free(odd);
  tm_check(t, m);
  model_free(m);
  return bytes;
}

START_TEST(test_round_trip) {
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "m.rmdl");
  tm_t t;
  tm_init(&t, 300, 13, 5, 42);
  size_t len, len2;
  unsigned char *a = round_trip(&t, path, &len);
  /* Same spec, same bytes: the format has no timestamps or padding garbage
   * of its own. */
  unsigned char *b = round_trip(&t, path, &len2);
  ck_assert_uint_eq(len, len2);
  ck_assert_int_eq(memcmp(a, b, len), 0);
  free(a);
  free(b);
  tm_free(&t);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_round_trip_shapes) {
  static const struct { uint32_t n, k, nc; } shapes[] = {
    {1, 1, 0}, {2, 16, 0}, {3, 17, 1}, {2000, 40, 30}, {5, MODEL_MAX_FACTORS, 2},
  };
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "m.rmdl");
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    tm_t t;
    tm_init(&t, shapes[s].n, shapes[s].k, shapes[s].nc, 7 + s);
    size_t len;
    free(round_trip(&t, path, &len));
    tm_free(&t);
  }
  /* No categories at all: item_category NULL means "all 0". */
  tm_t t;
  tm_init(&t, 10, 4, 0, 99);
  size_t len;
  free(round_trip(&t, path, &len));
  tm_free(&t);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* ---- a small fixed model for byte-level attacks ------------------------- */

/* 4 items "aa" "ab" "ac" "ad", k = 3 (stride 16), categories "c1" "c2",
 * groups "g1" "g2", EASE and recent-popularity metrics, every version-3
 * field set, log confidence. About 1 KiB. */
static unsigned char *small_file(size_t *len) {
  static const char *ids[] = {"aa", "ab", "ac", "ad"};
  static const uint32_t id_lens[] = {2, 2, 2, 2};
  static const char *cnames[] = {"c1", "c2"}, *gnames[] = {"g1", "g2"};
  static const uint32_t clens[] = {2, 2}, glens[] = {2, 2};
  static const uint32_t cat[] = {1, 2, 0, 1}, grp[] = {1, 2, 0, 1};
  float Y[4 * 3], pop[4] = {1, 2, 3, 0};
  tu_randn(Y, 12, 5, 1.0f);
  model_spec_t spec = {.n_items = 4, .params = {.factors = 3, .iterations = 5,
                       .conf_mode = PARAMS_CONF_LOG, .lambda = 0.1f, .alpha = 10,
                       .eps = 1}, .meta = {.created_at = 1, .score_scale = 1, .has_ease = 1,
                       .ease = {0.1, 0.2, 0.3, 0.4, 0.5}, .has_recent = 1,
                       .recent_popularity = {0.01, 0.02, 0.03, 0.04, 0.05},
                       .eval_split = MODEL_SPLIT_USER_LATEST, .half_life_days = 30,
                       .tuned_at = 1700000000},
                       .Y = Y, .ldy = 3, .popularity = pop, .item_ids = ids,
                       .item_id_lens = id_lens, .item_category = cat, .n_categories = 2,
                       .category_names = cnames, .category_name_lens = clens,
                       .item_group = grp, .n_groups = 2, .group_names = gnames,
                       .group_name_lens = glens};
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "small.rmdl");
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&spec, path, err) == 0, "%s", err);
  unsigned char *b = tu_read_file(path, len);
  tu_rmtree(dir);
  free(dir);
  return b;
}

/* Loads bytes that must be rejected; returns the code, message in err. */
static int load_bad(const unsigned char *b, size_t len, char *err) {
  model_t *m = (model_t *)&m; /* must come back NULL */
  err[0] = '\0';
  int rc = model_load_buffer(&m, b, len, err);
  QUIET_ASSERT(m == NULL, "a rejected load left a model behind");
  return rc;
}

START_TEST(test_truncation_rejected) {
  size_t len;
  unsigned char *b = small_file(&len);
  char err[RECD_ERRLEN];
  for (size_t cut = 0; cut < len; cut++) {
    int rc = load_bad(b, cut, err);
    QUIET_ASSERT(rc < 0 && err[0] != '\0', "truncation at %zu accepted", cut);
  }
  /* The file path (fstat + mmap) on a dense sample, including 0 bytes. */
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "cut.rmdl");
  for (size_t cut = 0; cut < len; cut += cut < 16 ? 1 : 37) {
    tu_write_file(path, b, cut);
    model_t *mc;
    int rc = model_load(&mc, path, err);
    ck_assert_msg(rc < 0 && mc == NULL, "truncation at %zu accepted", cut);
    ck_assert_msg(strstr(err, path) == err, "message does not start with the path: %s", err);
  }
  tu_write_file(path, b, len - 1);
  model_t *m;
  model_load(&m, path, err);
  ck_assert_msg(strstr(err, "truncated: the header says") != NULL, "%s", err);
  /* Trailing bytes are as wrong as missing ones. */
  unsigned char *longer = calloc(len + 64, 1);
  memcpy(longer, b, len);
  ck_assert_int_eq(load_bad(longer, len + 1, err), RECD_EFORMAT);
  ck_assert_msg(strstr(err, "1 trailing bytes") != NULL, "%s", err);
  ck_assert_int_eq(load_bad(longer, len + 64, err), RECD_EFORMAT);
  free(longer);
  tu_rmtree(dir);
  free(dir);
  free(b);
}
END_TEST

START_TEST(test_every_flipped_byte_rejected) {
  size_t len;
  unsigned char *b = small_file(&len);
  char err[RECD_ERRLEN];
  model_t *m;
  ck_assert_int_eq(model_load_buffer(&m, b, len, err), 0);
  model_free(m);
  for (size_t i = 0; i < len; i++) {
    for (int mask = 1; mask <= 0x100; mask <<= 1) {
      unsigned char x = mask == 0x100 ? 0xff : (unsigned char)mask;
      b[i] ^= x;
      int rc = load_bad(b, len, err);
      QUIET_ASSERT(rc < 0 && err[0] != '\0', "byte %zu ^ 0x%02x accepted", i, x);
      b[i] ^= x;
    }
  }
  free(b);
}
END_TEST

/* ---- structural checks behind a valid checksum -------------------------- */

enum { ABS = -1 };                  /* patch base: absolute file offset */
enum { SET = 0, ADD = 1 };

typedef struct patch {
  int base;       /* ABS or a MODEL__SEC_* (offset relative to that section) */
  uint64_t off;
  int width;      /* 1, 4 or 8 bytes */
  int mode;       /* SET or ADD (two's complement: ADD (uint64_t)-64 subtracts) */
  uint64_t value;
} patch_t;

typedef struct bad_case {
  const char *what;
  patch_t p[2];   /* width 0 = unused */
  int code;
  const char *expect; /* substring of the message */
} bad_case_t;

#define SEC_OFF(s) (MODEL__OFF_SECTIONS + 16 * (s))
#define SEC_LEN(s) (MODEL__OFF_SECTIONS + 16 * (s) + 8)
#define F32_NAN 0x7fc00000u
#define F32_INF 0x7f800000u
#define F32_M1 0xbf800000u  /* -1.0f */
#define F32_1000 0x447a0000u /* 1000.0f */
#define F64_NAN 0x7ff8000000000000ull
#define F64_1 0x3ff0000000000000ull
#define F64_MHALF 0xbfe0000000000000ull
#define F64_INF 0x7ff0000000000000ull
#define P1(b, o, w, m, v) {{b, o, w, m, v}, {0, 0, 0, 0, 0}}

/* Small-file geometry: n = 4, k = 3, stride = 16, n_categories = 2. */
static const bad_case_t bad_cases[] = {
  {"version 7", P1(ABS, MODEL__OFF_VERSION, 4, SET, 7), RECD_EVERSION,
   "unsupported model version 7 (this recd reads 1 to 3)"},
  {"version 0", P1(ABS, MODEL__OFF_VERSION, 4, SET, 0), RECD_EVERSION,
   "unsupported model version 0"},
  {"byte-swapped version", P1(ABS, MODEL__OFF_VERSION, 4, SET, 0x01000000), RECD_EFORMAT,
   "big-endian"},
  {"byte-swapped version 3", P1(ABS, MODEL__OFF_VERSION, 4, SET, 0x03000000), RECD_EFORMAT,
   "big-endian"},
  {"version 4", P1(ABS, MODEL__OFF_VERSION, 4, SET, 4), RECD_EVERSION,
   "unsupported model version 4"},
  {"header size", P1(ABS, MODEL__OFF_HEADER_SIZE, 4, SET, 256), RECD_EFORMAT,
   "header_size is 256"},
  {"big-endian mark", P1(ABS, MODEL__OFF_BYTE_ORDER, 4, SET, 0x04030201), RECD_EFORMAT,
   "written big-endian"},
  {"bad byte-order mark", P1(ABS, MODEL__OFF_BYTE_ORDER, 4, SET, 0), RECD_EFORMAT,
   "bad byte-order mark 0x00000000"},
  {"file size too big", P1(ABS, MODEL__OFF_FILE_SIZE, 8, ADD, 64), RECD_EFORMAT,
   "truncated: the header says"},
  {"file size too small", P1(ABS, MODEL__OFF_FILE_SIZE, 8, ADD, (uint64_t)-64), RECD_EFORMAT,
   "64 trailing bytes"},
  {"huge n_items", P1(ABS, MODEL__OFF_N_ITEMS, 4, SET, 0xfffffff0u), RECD_EFORMAT,
   "n_items 4294967280, k 3, n_categories 2, n_groups 2 need at least"},
  {"max n_items", P1(ABS, MODEL__OFF_N_ITEMS, 4, SET, 0xffffffffu), RECD_EFORMAT,
   "n_items 4294967295 is too large"},
  {"n_items 0", P1(ABS, MODEL__OFF_N_ITEMS, 4, SET, 0), RECD_EFORMAT, "n_items is 0"},
  {"n_items + 1", P1(ABS, MODEL__OFF_N_ITEMS, 4, SET, 5), RECD_EFORMAT, "n_items"},
  {"k 0", P1(ABS, MODEL__OFF_K, 4, SET, 0), RECD_EFORMAT, "k is 0, must be 1..1024"},
  {"k 1025", P1(ABS, MODEL__OFF_K, 4, SET, 1025), RECD_EFORMAT, "k is 1025"},
  {"k differs from factors", P1(ABS, MODEL__OFF_K, 4, SET, 4), RECD_EFORMAT,
   "params.factors 3 differs from k 4"},
  {"stride 0", P1(ABS, MODEL__OFF_STRIDE, 4, SET, 0), RECD_EFORMAT,
   "stride 0 is smaller than k 3"},
  {"stride 2", P1(ABS, MODEL__OFF_STRIDE, 4, SET, 2), RECD_EFORMAT,
   "stride 2 is smaller than k 3"},
  {"stride 20", P1(ABS, MODEL__OFF_STRIDE, 4, SET, 20), RECD_EFORMAT,
   "stride 20 is not a multiple of 16"},
  {"stride 32", P1(ABS, MODEL__OFF_STRIDE, 4, SET, 32), RECD_EFORMAT,
   "stride 32, expected 16 for k 3"},
  {"max n_categories", P1(ABS, MODEL__OFF_N_CATEGORIES, 4, SET, 0xffffffffu), RECD_EFORMAT,
   "n_categories 4294967295 is too large"},
  {"huge n_categories", P1(ABS, MODEL__OFF_N_CATEGORIES, 4, SET, 1000000), RECD_EFORMAT,
   "need at least"},
  {"n_categories 1", P1(ABS, MODEL__OFF_N_CATEGORIES, 4, SET, 1), RECD_EFORMAT,
   "section category_name_offsets: length 24, expected 16"},
  {"params.factors", P1(ABS, MODEL__OFF_P_FACTORS, 4, SET, 5), RECD_EFORMAT,
   "params.factors 5 differs from k 3"},
  {"conf_mode", P1(ABS, MODEL__OFF_P_CONF_MODE, 4, SET, 2), RECD_EFORMAT,
   "params.conf_mode 2 is unknown"},
  {"lambda < 0", P1(ABS, MODEL__OFF_P_LAMBDA, 4, SET, F32_M1), RECD_EFORMAT,
   "params.lambda -1 is not"},
  {"alpha NaN", P1(ABS, MODEL__OFF_P_ALPHA, 4, SET, F32_NAN), RECD_EFORMAT,
   "params.alpha nan is not"},
  {"eps 0 with log", P1(ABS, MODEL__OFF_P_EPS, 4, SET, 0), RECD_EFORMAT,
   "params.eps is 0 but the log confidence divides by it"},
  {"reg_exponent inf", P1(ABS, MODEL__OFF_P_REG_EXPONENT, 4, SET, F32_INF), RECD_EFORMAT,
   "params.reg_exponent inf is not finite"},
  {"train_seconds NaN", P1(ABS, MODEL__OFF_M_TRAIN_SECONDS, 8, SET, F64_NAN), RECD_EFORMAT,
   "meta.train_seconds nan"},
  {"holdout_fraction 1", P1(ABS, MODEL__OFF_M_HOLDOUT_FRACTION, 8, SET, F64_1), RECD_EFORMAT,
   "meta.holdout_fraction 1 is not in [0, 1)"},
  {"ndcg < 0", P1(ABS, MODEL__OFF_M_MODEL + 16, 8, SET, F64_MHALF), RECD_EFORMAT,
   "meta.model.ndcg -0.5"},
  {"popularity coverage NaN", P1(ABS, MODEL__OFF_M_POPULARITY + 32, 8, SET, F64_NAN),
   RECD_EFORMAT, "meta.popularity.coverage nan"},
  {"score_scale < 0", P1(ABS, MODEL__OFF_M_SCORE_SCALE, 4, SET, F32_M1), RECD_EFORMAT,
   "meta.score_scale -1"},
  {"has_ease 2", P1(ABS, MODEL__OFF_M_HAS_EASE, 4, SET, 2), RECD_EFORMAT,
   "meta.has_ease is 2 (must be 0 or 1)"},
  {"ease ndcg NaN", P1(ABS, MODEL__OFF_M_EASE + 16, 8, SET, F64_NAN), RECD_EFORMAT,
   "meta.ease.ndcg nan"},
  {"ease without has_ease", P1(ABS, MODEL__OFF_M_HAS_EASE, 4, SET, 0), RECD_EFORMAT,
   "meta.has_ease is 0 but meta.ease is not all zero"},
  /* version 3 */
  {"has_recent 2", P1(ABS, MODEL__OFF_M_HAS_RECENT, 4, SET, 2), RECD_EFORMAT,
   "meta.has_recent is 2 (must be 0 or 1)"},
  {"has_recent high byte", P1(ABS, MODEL__OFF_M_HAS_RECENT + 3, 1, SET, 1), RECD_EFORMAT,
   "meta.has_recent is 16777217"},
  {"recent ndcg NaN", P1(ABS, MODEL__OFF_M_RECENT + 16, 8, SET, F64_NAN), RECD_EFORMAT,
   "meta.recent_popularity.ndcg nan"},
  {"recent coverage < 0", P1(ABS, MODEL__OFF_M_RECENT + 32, 8, SET, F64_MHALF), RECD_EFORMAT,
   "meta.recent_popularity.coverage -0.5"},
  {"recent without has_recent", P1(ABS, MODEL__OFF_M_HAS_RECENT, 4, SET, 0), RECD_EFORMAT,
   "meta.has_recent is 0 but meta.recent_popularity is not all zero"},
  {"serves 3", P1(ABS, MODEL__OFF_M_SERVES, 4, SET, 3), RECD_EFORMAT,
   "meta.serves is 3 (must be 0 als, 1 popularity or 2 recent-popularity)"},
  {"serves popularity with k 3", P1(ABS, MODEL__OFF_M_SERVES, 4, SET, 1), RECD_EFORMAT,
   "meta.serves is 1 (popularity) but k is 3: a popularity model has one factor"},
  {"serves recent-popularity with k 3", P1(ABS, MODEL__OFF_M_SERVES, 4, SET, 2), RECD_EFORMAT,
   "meta.serves is 2 (recent-popularity) but k is 3"},
  {"eval_split 3", P1(ABS, MODEL__OFF_M_EVAL_SPLIT, 4, SET, 3), RECD_EFORMAT,
   "meta.eval_split is 3 (must be 0 random, 1 user-latest or 2 time-cut)"},
  {"half_life_days NaN", P1(ABS, MODEL__OFF_M_HALF_LIFE_DAYS, 8, SET, F64_NAN), RECD_EFORMAT,
   "meta.half_life_days nan is not a finite value >= 0"},
  {"half_life_days inf", P1(ABS, MODEL__OFF_M_HALF_LIFE_DAYS, 8, SET, F64_INF), RECD_EFORMAT,
   "meta.half_life_days inf"},
  {"half_life_days < 0", P1(ABS, MODEL__OFF_M_HALF_LIFE_DAYS, 8, SET, F64_MHALF), RECD_EFORMAT,
   "meta.half_life_days -0.5"},
  {"tuned_at < 0", P1(ABS, MODEL__OFF_M_TUNED_AT, 8, SET, (uint64_t)-1), RECD_EFORMAT,
   "meta.tuned_at -1 is negative"},
  {"Y inside header", P1(ABS, SEC_OFF(MODEL__SEC_Y), 8, SET, 0), RECD_EFORMAT,
   "section Y: offset 0 is inside the 512-byte header"},
  {"Y misaligned", P1(ABS, SEC_OFF(MODEL__SEC_Y), 8, ADD, 4), RECD_EFORMAT,
   "section Y: offset 516 is not 64-byte aligned"},
  {"popularity past the end", P1(ABS, SEC_OFF(MODEL__SEC_POPULARITY), 8, ADD, 1u << 20),
   RECD_EFORMAT, "section popularity: offset"},
  {"YtY huge length", P1(ABS, SEC_LEN(MODEL__SEC_GRAM), 8, SET, 1ull << 63), RECD_EFORMAT,
   "section YtY: offset 768 + length 9223372036854775808 is past the end"},
  {"YtY offset wraps", P1(ABS, SEC_OFF(MODEL__SEC_GRAM), 8, SET, (uint64_t)-64), RECD_EFORMAT,
   "is past the end"},
  {"YtY short", P1(ABS, SEC_LEN(MODEL__SEC_GRAM), 8, ADD, (uint64_t)-4), RECD_EFORMAT,
   "section YtY: length 32, expected 36 (k x k x 4)"},
  {"Y long", P1(ABS, SEC_LEN(MODEL__SEC_Y), 8, ADD, 64), RECD_EFORMAT,
   "section Y: length 320, expected 256 (n_items x stride x 4)"},
  {"sections overlap", P1(ABS, SEC_OFF(MODEL__SEC_CATEGORY), 8, ADD, (uint64_t)-64),
   RECD_EFORMAT, "sections popularity (832..848) and item_category (832..848) overlap"},
  {"bytes after the last section", P1(ABS, SEC_LEN(MODEL__SEC_GRP_BLOB), 8, ADD, (uint64_t)-1),
   RECD_EFORMAT, "1 bytes after the end of the last section"},
  {"category names short", P1(ABS, SEC_LEN(MODEL__SEC_CAT_BLOB), 8, ADD, (uint64_t)-1),
   RECD_EFORMAT, "padding byte 1155 before section item_group is 0x32"},
  {"padding byte", P1(MODEL__SEC_POPULARITY, 16, 1, SET, 1), RECD_EFORMAT,
   "padding byte 848 before section item_category is 0x01"},
  {"NaN in Y", P1(MODEL__SEC_Y, (1 * 16 + 0) * 4, 4, SET, F32_NAN), RECD_EFORMAT,
   "section Y: item 1, factor 0 is nan (not finite)"},
  {"Y padding", P1(MODEL__SEC_Y, 3 * 4, 4, SET, F32_M1), RECD_EFORMAT,
   "section Y: item 0, padding float 3 is not +0.0"},
  {"Y negative-zero padding", P1(MODEL__SEC_Y, (3 * 16 + 15) * 4, 4, SET, 0x80000000u),
   RECD_EFORMAT, "section Y: item 3, padding float 15"},
  {"YtY inf", P1(MODEL__SEC_GRAM, (2 * 3 + 1) * 4, 4, SET, F32_INF), RECD_EFORMAT,
   "section YtY: [2][1] is inf (not finite)"},
  {"YtY negative diagonal", P1(MODEL__SEC_GRAM, 0, 4, SET, F32_M1), RECD_EFORMAT,
   "section YtY: diagonal [0][0] is negative (-1)"},
  {"YtY diagonal not from Y", P1(MODEL__SEC_GRAM, (1 * 3 + 1) * 4, 4, SET, F32_1000),
   RECD_EFORMAT, "section YtY: diagonal [1][1] is 1000 but column 1 of Y"},
  {"YtY asymmetric", P1(MODEL__SEC_GRAM, (1 * 3 + 0) * 4, 4, SET, F32_1000), RECD_EFORMAT,
   "section YtY: not symmetric, [0][1]"},
  {"YtY not a Gram matrix", {{MODEL__SEC_GRAM, (0 * 3 + 2) * 4, 4, SET, F32_1000},
                             {MODEL__SEC_GRAM, (2 * 3 + 0) * 4, 4, SET, F32_1000}},
   RECD_EFORMAT, "section YtY: |[0][2]| = 1000 exceeds the bound"},
  {"popularity NaN", P1(MODEL__SEC_POPULARITY, 2 * 4, 4, SET, F32_NAN), RECD_EFORMAT,
   "section popularity: item 2 is nan"},
  {"popularity < 0", P1(MODEL__SEC_POPULARITY, 3 * 4, 4, SET, F32_M1), RECD_EFORMAT,
   "section popularity: item 3 is -1 (must be finite and >= 0)"},
  {"category out of range", P1(MODEL__SEC_CATEGORY, 0, 4, SET, 3), RECD_EFORMAT,
   "section item_category: item 0 has category 3, n_categories is 2"},
  {"first id offset", P1(MODEL__SEC_ID_OFFSETS, 0, 8, SET, 1), RECD_EFORMAT,
   "section item_id_offsets: first offset is 1, not 0"},
  {"empty id", P1(MODEL__SEC_ID_OFFSETS, 8, 8, SET, 0), RECD_EFORMAT,
   "item 0: id offsets 0..0 (empty or decreasing)"},
  {"decreasing id offsets", P1(MODEL__SEC_ID_OFFSETS, 16, 8, SET, 1), RECD_EFORMAT,
   "item 1: id offsets 2..1 (empty or decreasing)"},
  {"id offsets end early", P1(MODEL__SEC_ID_OFFSETS, 32, 8, SET, 7), RECD_EFORMAT,
   "section item_ids: length 8, but the offsets end at 7"},
  {"duplicate id", P1(MODEL__SEC_ID_BLOB, 3, 1, SET, 'a'), RECD_EFORMAT,
   "item 1: duplicate id \"aa\" (same as item 0)"},
  {"empty category name", P1(MODEL__SEC_CAT_OFFSETS, 8, 8, SET, 0), RECD_EFORMAT,
   "category 1: name offsets 0..0"},
  {"duplicate category name", P1(MODEL__SEC_CAT_BLOB, 3, 1, SET, '1'), RECD_EFORMAT,
   "category 2: duplicate name \"c1\" (same as category 1)"},
  {"group out of range", P1(MODEL__SEC_GROUP, 4, 4, SET, 3), RECD_EFORMAT,
   "section item_group: item 1 has group 3, n_groups is 2"},
  {"max n_groups", P1(ABS, MODEL__OFF_N_GROUPS, 4, SET, 0xffffffffu), RECD_EFORMAT,
   "n_groups 4294967295 is too large"},
  {"huge n_groups", P1(ABS, MODEL__OFF_N_GROUPS, 4, SET, 1000000), RECD_EFORMAT,
   "need at least"},
  {"n_groups 1", P1(ABS, MODEL__OFF_N_GROUPS, 4, SET, 1), RECD_EFORMAT,
   "section group_name_offsets: length 24, expected 16"},
  {"group table short", P1(ABS, SEC_LEN(MODEL__SEC_GROUP), 8, ADD, (uint64_t)-4), RECD_EFORMAT,
   "section item_group: length 12, expected 16 (n_items x 4)"},
  {"group table outside the file", P1(ABS, SEC_OFF(MODEL__SEC_GROUP), 8, ADD, 1u << 20),
   RECD_EFORMAT, "section item_group: offset"},
  {"empty group name", P1(MODEL__SEC_GRP_OFFSETS, 8, 8, SET, 0), RECD_EFORMAT,
   "group 1: name offsets 0..0"},
  {"group names end early", P1(MODEL__SEC_GRP_OFFSETS, 16, 8, SET, 3), RECD_EFORMAT,
   "section group_names: length 4, but the offsets end at 3"},
  {"duplicate group name", P1(MODEL__SEC_GRP_BLOB, 3, 1, SET, '1'), RECD_EFORMAT,
   "group 2: duplicate name \"g1\" (same as group 1)"},
};

static void apply(unsigned char *b, const model__header_t *h, const patch_t *p) {
  uint64_t at = p->off + (p->base == ABS ? 0 : h->sec[p->base].offset);
  uint64_t v = p->value;
  if (p->width == 1) {
    b[at] = (unsigned char)(p->mode == ADD ? b[at] + v : v);
  } else if (p->width == 4) {
    model__put_u32(b + at, (uint32_t)(p->mode == ADD ? model__get_u32(b + at) + v : v));
  } else {
    model__put_u64(b + at, p->mode == ADD ? model__get_u64(b + at) + v : v);
  }
}

static void fix_crc(unsigned char *b, size_t len) {
  model__put_u32(b + MODEL__OFF_CHECKSUM, crc_of(b, len));
}

START_TEST(test_bad_field_rejected) {
  const bad_case_t *c = &bad_cases[_i];
  size_t len;
  unsigned char *b = small_file(&len);
  model__header_t h;
  model__header_decode(b, &h);
  for (int j = 0; j < 2; j++)
    if (c->p[j].width != 0)
      apply(b, &h, &c->p[j]);
  fix_crc(b, len);
  char err[RECD_ERRLEN];
  int rc = load_bad(b, len, err);
  ck_assert_msg(rc == c->code, "%s: code %s, expected %s (%s)", c->what, recd_err_name(rc),
                recd_err_name(c->code), err);
  ck_assert_msg(strstr(err, c->expect) != NULL, "%s: message \"%s\" lacks \"%s\"", c->what,
                err, c->expect);
  free(b);
}
END_TEST

/* The small file's geometry, which the table above hard-codes. */
START_TEST(test_small_file_geometry) {
  size_t len;
  unsigned char *b = small_file(&len);
  model__header_t h;
  model__header_decode(b, &h);
  ck_assert_uint_eq(h.version, 3);
  ck_assert_uint_eq(h.sec[MODEL__SEC_Y].offset, 512);
  ck_assert_uint_eq(h.sec[MODEL__SEC_GRAM].offset, 768);
  ck_assert_uint_eq(h.sec[MODEL__SEC_POPULARITY].offset, 832);
  ck_assert_uint_eq(h.sec[MODEL__SEC_CATEGORY].offset, 896);
  ck_assert_uint_eq(h.sec[MODEL__SEC_ID_BLOB].length, 8);
  ck_assert_uint_eq(h.sec[MODEL__SEC_CAT_BLOB].offset, 1152);
  ck_assert_uint_eq(h.sec[MODEL__SEC_CAT_BLOB].length, 4);
  ck_assert_uint_eq(h.sec[MODEL__SEC_GROUP].offset, 1216);
  ck_assert_uint_eq(h.sec[MODEL__SEC_GRP_OFFSETS].offset, 1280);
  ck_assert_uint_eq(h.sec[MODEL__SEC_GRP_BLOB].offset, 1344);
  ck_assert_uint_eq(h.sec[MODEL__SEC_GRP_BLOB].length, 4);
  ck_assert_uint_eq(h.file_size, len);
  ck_assert_uint_eq(len, 1348);
  /* Every section starts aligned and the file ends with the last one. */
  for (int s = 0; s < MODEL__N_SECTIONS; s++)
    ck_assert_uint_eq(h.sec[s].offset % MODEL_ALIGN, 0);
  ck_assert_uint_eq(h.sec[MODEL__SEC_GRP_BLOB].offset + h.sec[MODEL__SEC_GRP_BLOB].length, len);
  ck_assert_int_eq(memcmp(b, "RECDMDL\0", 8), 0);
  /* The version-3 fields at the offsets of FORMAT.md (literals on purpose:
   * they pin the documented layout, not the enum). */
  double d;
  uint64_t u;
  ck_assert_uint_eq(model__get_u32(b + 404), 1); /* has_recent */
  ck_assert_uint_eq(model__get_u32(b + 448), 0); /* serves: als */
  ck_assert_uint_eq(model__get_u32(b + 452), 1); /* eval_split: user-latest */
  u = model__get_u64(b + 456);
  memcpy(&d, &u, 8);
  ck_assert(d == 30); /* half_life_days */
  ck_assert_uint_eq(model__get_u64(b + 464), 1700000000); /* tuned_at */
  u = model__get_u64(b + 472 + 16);
  memcpy(&d, &u, 8);
  ck_assert(d == 0.03); /* recent_popularity.ndcg */
  u = model__get_u64(b + 504);
  memcpy(&d, &u, 8);
  ck_assert(d == 0.05); /* recent_popularity.coverage, the header's last 8 bytes */
  free(b);
}
END_TEST

/* ---- version 1 ----------------------------------------------------------- */

/* Re-encodes a version-3 file as version 1: the 384-byte header, the first
 * eight sections at their version-1 places (what the version-1 writer
 * produced), new checksum. The groups and EASE metrics are dropped, so the
 * file must have none; the version-3 fields are dropped too. */
static unsigned char *v1_from_v3(const unsigned char *b, size_t *len) {
  model__header_t h;
  model__header_decode(b, &h);
  ck_assert_uint_eq(h.version, 3);
  ck_assert_uint_eq(h.n_groups, 0);
  ck_assert_uint_eq(h.meta.has_ease, 0);
  model__header_t v1 = h;
  v1.version = 1;
  v1.header_size = MODEL__HEADER_SIZE_V1;
  uint64_t pos = MODEL__HEADER_SIZE_V1;
  for (int s = 0; s < MODEL__N_SECTIONS; s++) {
    if (s >= MODEL__N_SECTIONS_V1) {
      v1.sec[s].offset = v1.sec[s].length = 0;
      continue;
    }
    pos = (pos + MODEL_ALIGN - 1) / MODEL_ALIGN * MODEL_ALIGN;
    v1.sec[s].offset = pos;
    pos += h.sec[s].length;
  }
  v1.file_size = pos;
  unsigned char *out = calloc(pos, 1);
  ck_assert_ptr_nonnull(out);
  model__header_encode(&v1, out);
  for (int s = 0; s < MODEL__N_SECTIONS_V1; s++)
    memcpy(out + v1.sec[s].offset, b + h.sec[s].offset, h.sec[s].length);
  *len = pos;
  model__put_u32(out + MODEL__OFF_CHECKSUM,
                 (uint32_t)crc32(crc32(0L, Z_NULL, 0), out + MODEL__CRC_START,
                                 (uInt)(pos - MODEL__CRC_START)));
  return out;
}

/* What a file before version 3 reads as: none of its fields. */
static void check_no_v3(const model_meta_t *mm) {
  static const model_metrics_t zero;
  ck_assert_uint_eq(mm->has_recent, 0);
  check_metrics(&mm->recent_popularity, &zero);
  ck_assert_uint_eq(mm->serves, MODEL_SERVES_ALS);
  ck_assert_uint_eq(mm->eval_split, MODEL_SPLIT_RANDOM);
  ck_assert(mm->half_life_days == 0 && !signbit(mm->half_life_days));
  ck_assert_int_eq(mm->tuned_at, 0);
}

/* A version-1 file (no groups, no EASE) still loads: every item in no
 * group, no EASE metrics, everything else as written. */
START_TEST(test_v1_still_loads) {
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "m.rmdl");
  tm_t t;
  tm_init(&t, 50, 5, 3, 77);
  free(t.grp);
  t.grp = NULL;
  for (uint32_t g = 0; g < t.ng; g++)
    free(t.gnames[g]);
  t.ng = 0;
  t.meta.has_ease = 0;
  memset(&t.meta.ease, 0, sizeof t.meta.ease);
  model_spec_t spec = tm_spec(&t);
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&spec, path, err) == 0, "%s", err);
  size_t len, len1;
  unsigned char *b = tu_read_file(path, &len);
  unsigned char *v1 = v1_from_v3(b, &len1);
  ck_assert_uint_lt(len1, len);
  model_t *m;
  ck_assert_msg(model_load_buffer(&m, v1, len1, err) == 0, "%s", err);
  ck_assert_uint_eq(model_version(m), 1);
  ck_assert_uint_eq(model_n_groups(m), 0);
  for (uint32_t i = 0; i < t.n; i++)
    ck_assert_uint_eq(model_item_groups(m)[i], MODEL_NO_GROUP);
  ck_assert_ptr_null(model_group_name(m, 1, NULL));
  ck_assert_uint_eq(model_find_group(m, "grp-1", 5), 0);
  ck_assert_uint_eq(model_meta(m)->has_ease, 0);
  check_no_v3(model_meta(m));
  ck_assert_uint_eq(model_n_categories(m), 3);
  ck_assert_uint_eq(model_item_categories(m)[7], t.cat[7]);
  ck_assert_int_eq(memcmp(model_item_factors(m), b + MODEL__HEADER_SIZE, 64 * 50), 0);
  model_free(m);
  /* Version 1 keeps its own header rules: its reserved tail must be zero. */
  v1[MODEL__HEADER_SIZE_V1 - 1] = 1;
  fix_crc(v1, len1);
  ck_assert_int_eq(load_bad(v1, len1, err), RECD_EFORMAT);
  ck_assert_msg(strstr(err, "reserved byte 383 is 0x01") != NULL, "%s", err);
  v1[MODEL__HEADER_SIZE_V1 - 1] = 0;
  /* A version-1 header claiming 512 bytes is refused. */
  model__put_u32(v1 + MODEL__OFF_HEADER_SIZE, MODEL__HEADER_SIZE);
  fix_crc(v1, len1);
  ck_assert_int_eq(load_bad(v1, len1, err), RECD_EFORMAT);
  ck_assert_msg(strstr(err, "header_size is 512, version 1 headers are 384 bytes") != NULL,
                "%s", err);
  free(v1);
  free(b);

  /* The fuzz corpus's seed was written by the version-1 writer itself. */
  char seed[4096];
  const char *src = getenv("RECD_SOURCE_DIR");
  snprintf(seed, sizeof seed, "%s/tests/fuzz/corpus/model/synthetic-12x4.bin",
           src ? src : ".");
  ck_assert_msg(model_load(&m, seed, err) == 0, "%s", err);
  ck_assert_uint_eq(model_version(m), 1);
  ck_assert_uint_eq(model_n_items(m), 12);
  ck_assert_uint_eq(model_n_groups(m), 0);
  ck_assert_uint_eq(model_item_groups(m)[11], 0);
  model_free(m);
  tm_free(&t);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* ---- version 2 ----------------------------------------------------------- */

/* Re-encodes a version-3 file as version 2, as the version-2 writer wrote
 * it: the same layout with version 2 and the bytes version 3 uses ([404,
 * 408) and [448, 512), reserved in version 2) zero; new checksum. */
static unsigned char *v2_from_v3(const unsigned char *b, size_t len) {
  ck_assert_uint_eq(model__get_u32(b + MODEL__OFF_VERSION), 3);
  unsigned char *out = malloc(len);
  ck_assert_ptr_nonnull(out);
  memcpy(out, b, len);
  model__put_u32(out + MODEL__OFF_VERSION, 2);
  memset(out + MODEL__OFF_RESERVED2, 0, 4);
  memset(out + MODEL__OFF_RESERVED3, 0, MODEL__HEADER_SIZE - MODEL__OFF_RESERVED3);
  fix_crc(out, len);
  return out;
}

/* A version-2 file still loads, with groups and EASE, and the version-3
 * fields read as 0 (ALS, random split, no age weighting, not tuned, no
 * recent-popularity metrics); its reserved bytes must still be zero. */
START_TEST(test_v2_still_loads) {
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "m.rmdl");
  tm_t t;
  tm_init(&t, 60, 7, 4, 78);
  model_spec_t spec = tm_spec(&t);
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&spec, path, err) == 0, "%s", err);
  size_t len;
  unsigned char *b = tu_read_file(path, &len);
  unsigned char *v2 = v2_from_v3(b, len);
  model_t *m;
  ck_assert_msg(model_load_buffer(&m, v2, len, err) == 0, "%s", err);
  tm_t t2 = t; /* shares t's arrays: only t is freed */
  meta_drop_v3(&t2.meta);
  tm_check_version(&t2, m, 2);
  check_no_v3(model_meta(m));
  model_free(m);

  /* Version 2's reserved bytes, each refused by its number. */
  static const uint32_t reserved[] = {404, 405, 406, 407, 448, 452, 456, 463, 464, 472, 511};
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
    const uint32_t at = reserved[i];
    v2[at] = 0x80;
    fix_crc(v2, len);
    ck_assert_int_eq(load_bad(v2, len, err), RECD_EFORMAT);
    char want[64];
    snprintf(want, sizeof want, "header: reserved byte %u is 0x80, not 0", at);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
    v2[at] = 0;
  }
  /* A version-3 file relabelled version 2 is refused: its fields sit in
   * version 2's reserved bytes (has_recent, the first, at 404). */
  memcpy(v2, b, len);
  model__put_u32(v2 + MODEL__OFF_VERSION, 2);
  fix_crc(v2, len);
  ck_assert_int_eq(load_bad(v2, len, err), RECD_EFORMAT);
  ck_assert_msg(strstr(err, "reserved byte 404 is 0x01") != NULL, "%s", err);
  free(v2);
  free(b);

  /* The fuzz corpus's version-2 seed, from the version-2 recd-train. */
  char seed[4096];
  const char *src = getenv("RECD_SOURCE_DIR");
  snprintf(seed, sizeof seed, "%s/tests/fuzz/corpus/model/groups-v2-10x4.bin",
           src ? src : ".");
  ck_assert_msg(model_load(&m, seed, err) == 0, "%s", err);
  ck_assert_uint_eq(model_version(m), 2);
  ck_assert_uint_eq(model_n_items(m), 10);
  ck_assert_uint_eq(model_meta(m)->has_ease, 1);
  check_no_v3(model_meta(m));
  model_free(m);
  tm_free(&t);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* ---- version 3: the popularity fallback -------------------------------- */

/* A popularity model (k = 1, the factor is the popularity) round-trips for
 * both kinds; the writer and the loader refuse one that is not what
 * serving it assumes (more factors, a negative factor). */
START_TEST(test_popularity_model) {
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "m.rmdl");
  char err[RECD_ERRLEN];
  static const uint32_t serves[] = {MODEL_SERVES_POPULARITY, MODEL_SERVES_RECENT_POPULARITY};
  for (size_t s = 0; s < 2; s++) {
    tm_t t;
    tm_init(&t, 40, 1, 2, 5 + s);
    for (uint32_t i = 0; i < t.n; i++)
      t.Y[i * t.ldy] = t.pop[i] * (s ? 0.5f : 1.0f); /* item 0's is 0 */
    t.meta.serves = serves[s];
    t.meta.eval_split = s ? MODEL_SPLIT_TIME_CUT : MODEL_SPLIT_USER_LATEST;
    t.meta.half_life_days = s ? 30 : 0;
    t.meta.tuned_at = 0;
    size_t len;
    unsigned char *b = round_trip(&t, path, &len);
    /* The loader: a negative factor (its square, YtY, is unchanged). */
    model__header_t h;
    model__header_decode(b, &h);
    const uint64_t y3 = h.sec[MODEL__SEC_Y].offset + 3 * (uint64_t)h.stride * 4;
    ck_assert(t.Y[3 * t.ldy] > 0);
    b[y3 + 3] ^= 0x80; /* the sign bit of item 3's float */
    fix_crc(b, len);
    ck_assert_int_eq(load_bad(b, len, err), RECD_EFORMAT);
    char want[160];
    snprintf(want, sizeof want, "meta.serves is %u (%s) but item 3's factor is -", serves[s],
             model_serves_name(serves[s]));
    ck_assert_msg(strstr(err, want) != NULL && strstr(err, "is >= 0") != NULL, "%s", err);
    free(b);
    /* The writer. */
    t.Y[3 * t.ldy] = -t.Y[3 * t.ldy];
    model_spec_t spec = tm_spec(&t);
    ck_assert_int_eq(model_write(&spec, path, err), RECD_EINVAL);
    ck_assert_msg(strstr(err, want) != NULL, "%s", err);
    tm_free(&t);
  }
  tm_t t;
  tm_init(&t, 10, 2, 0, 9);
  t.meta.serves = MODEL_SERVES_POPULARITY;
  model_spec_t spec = tm_spec(&t);
  ck_assert_int_eq(model_write(&spec, path, err), RECD_EINVAL);
  ck_assert_str_eq(err, "meta.serves is 1 (popularity) but k is 2: a popularity model has one "
                        "factor");
  tm_free(&t);
  /* The fuzz corpus's version-3 seed: a recent-popularity fallback. */
  char seed[4096];
  const char *src = getenv("RECD_SOURCE_DIR");
  snprintf(seed, sizeof seed, "%s/tests/fuzz/corpus/model/recent-popularity-v3-12x1.bin",
           src ? src : ".");
  model_t *m;
  ck_assert_msg(model_load(&m, seed, err) == 0, "%s", err);
  ck_assert_uint_eq(model_version(m), 3);
  ck_assert_uint_eq(model_factors(m), 1);
  ck_assert_uint_eq(model_meta(m)->serves, MODEL_SERVES_RECENT_POPULARITY);
  ck_assert_uint_eq(model_meta(m)->has_recent, 1);
  model_free(m);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_names) {
  ck_assert_str_eq(model_serves_name(MODEL_SERVES_ALS), "als");
  ck_assert_str_eq(model_serves_name(MODEL_SERVES_POPULARITY), "popularity");
  ck_assert_str_eq(model_serves_name(MODEL_SERVES_RECENT_POPULARITY), "recent-popularity");
  ck_assert_str_eq(model_serves_name(3), "unknown");
  ck_assert_str_eq(model_serves_name(UINT32_MAX), "unknown");
  ck_assert_str_eq(model_split_name(MODEL_SPLIT_RANDOM), "random");
  ck_assert_str_eq(model_split_name(MODEL_SPLIT_USER_LATEST), "user-latest");
  ck_assert_str_eq(model_split_name(MODEL_SPLIT_TIME_CUT), "time-cut");
  ck_assert_str_eq(model_split_name(3), "unknown");
}
END_TEST

/* Ids at the 256-byte limit, and one byte over it in a file. */
START_TEST(test_id_length_limit) {
  char big[MODEL_MAX_ID_LEN + 1];
  memset(big, 'x', sizeof big);
  const char *ids[] = {big, "y"};
  uint32_t lens[] = {MODEL_MAX_ID_LEN, 1};
  float Y[2] = {1, 2}, pop[2] = {0, 0};
  model_spec_t spec = {.n_items = 2, .params = {.factors = 1}, .Y = Y, .ldy = 1,
                       .popularity = pop, .item_ids = ids, .item_id_lens = lens};
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "m.rmdl");
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&spec, path, err) == 0, "%s", err);
  size_t len;
  unsigned char *b = tu_read_file(path, &len);
  model__header_t h;
  model__header_decode(b, &h);
  /* Move the boundary: item 0 becomes 257 bytes ("x"*256 + "y"), item 1 empty. */
  model__put_u64(b + h.sec[MODEL__SEC_ID_OFFSETS].offset + 8, MODEL_MAX_ID_LEN + 1);
  fix_crc(b, len);
  ck_assert_int_eq(load_bad(b, len, err), RECD_EFORMAT);
  ck_assert_msg(strstr(err, "item 0: id of 257 bytes (max 256)") != NULL, "%s", err);
  free(b);
  lens[0] = MODEL_MAX_ID_LEN + 1;
  ck_assert_int_eq(model_write(&spec, path, err), RECD_EINVAL);
  ck_assert_msg(strstr(err, "item 0: id of 257 bytes (must be 1..256)") != NULL, "%s", err);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* The file-level path: the message starts with the file name. */
START_TEST(test_bad_file_names_path) {
  size_t len;
  unsigned char *b = small_file(&len);
  model__put_u32(b + MODEL__OFF_VERSION, 7);
  char *dir = tu_mkdtemp();
  char path[4096];
  snprintf(path, sizeof path, "%s", tu_path(dir, "v7.rmdl"));
  tu_write_file(path, b, len);
  char err[RECD_ERRLEN], want[4200];
  model_t *m;
  ck_assert_int_eq(model_load(&m, path, err), RECD_EVERSION);
  ck_assert_ptr_null(m);
  snprintf(want, sizeof want, "%s: unsupported model version 7 (this recd reads 1 to 3)",
           path);
  ck_assert_str_eq(err, want);
  /* Corruption that only the checksum can see. */
  model__put_u32(b + MODEL__OFF_VERSION, MODEL_VERSION);
  b[len - 1] ^= 0x20;
  tu_write_file(path, b, len);
  ck_assert_int_eq(model_load(&m, path, err), RECD_ECHECKSUM);
  ck_assert_msg(strstr(err, "checksum mismatch: stored") != NULL, "%s", err);
  free(b);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_load_missing_and_odd_files) {
  char *dir = tu_mkdtemp();
  char path[4096], want[4200], err[RECD_ERRLEN];
  model_t *m = NULL;
  snprintf(path, sizeof path, "%s", tu_path(dir, "missing.rmdl"));
  ck_assert_int_eq(model_load(&m, path, err), RECD_ENOTFOUND);
  ck_assert_ptr_null(m);
  snprintf(want, sizeof want, "cannot open model %s: %s", path, strerror(ENOENT));
  ck_assert_str_eq(err, want);

  ck_assert_int_eq(model_load(&m, dir, err), RECD_EFORMAT);
  ck_assert_msg(strstr(err, "is not a regular file") != NULL, "%s", err);

  snprintf(path, sizeof path, "%s", tu_path(dir, "empty.rmdl"));
  tu_write_file(path, "", 0);
  ck_assert_int_eq(model_load(&m, path, err), RECD_EFORMAT);
  ck_assert_msg(strstr(err, "not a recd model file: 0 bytes") != NULL, "%s", err);

  snprintf(path, sizeof path, "%s", tu_path(dir, "text.rmdl"));
  tu_write_file(path, "user,item,weight\n", 17);
  ck_assert_int_eq(model_load(&m, path, err), RECD_EFORMAT);
  ck_assert_msg(strstr(err, "bad magic 75 73 65 72 2c 69 74 65") != NULL, "%s", err);
  ck_assert_ptr_null(m);
  model_free(NULL);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* ---- writing ------------------------------------------------------------ */

/* Names in dir other than . and .., newline-separated, sorted by readdir. */
static int dir_entries(const char *dir, char *names, size_t cap) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  names[0] = '\0';
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    n++;
    strncat(names, e->d_name, cap - strlen(names) - 2);
    strcat(names, "\n");
  }
  closedir(d);
  return n;
}

START_TEST(test_write_replaces_atomically) {
  char *dir = tu_mkdtemp();
  char path[4096], names[1024], err[RECD_ERRLEN];
  snprintf(path, sizeof path, "%s", tu_path(dir, "m.rmdl"));
  tm_t a, b;
  tm_init(&a, 20, 8, 3, 1);
  tm_init(&b, 25, 8, 3, 2);
  model_spec_t sa = tm_spec(&a), sb = tm_spec(&b);
  ck_assert_msg(model_write(&sa, path, err) == 0, "%s", err);
  ck_assert_msg(model_write(&sb, path, err) == 0, "%s", err);
  ck_assert_int_eq(dir_entries(dir, names, sizeof names), 1);
  ck_assert_str_eq(names, "m.rmdl\n");
  size_t len;
  unsigned char *before = tu_read_file(path, &len);
  model_t *m;
  ck_assert_int_eq(model_load(&m, path, err), 0);
  tm_check(&b, m);

  /* An invalid spec: the message names the item, the file is untouched,
   * and no temporary file is left. The mapped old model stays valid. */
  free(a.ids[3]);
  free(a.ids[17]);
  a.ids[3] = strdup("abc");
  a.ids[17] = strdup("abc");
  a.id_lens[3] = a.id_lens[17] = 3;
  sa = tm_spec(&a);
  ck_assert_int_eq(model_write(&sa, path, err), RECD_EINVAL);
  ck_assert_str_eq(err, "item 17: duplicate id \"abc\" (same as item 3)");
  size_t len2;
  unsigned char *after = tu_read_file(path, &len2);
  ck_assert_uint_eq(len, len2);
  ck_assert_int_eq(memcmp(before, after, len), 0);
  ck_assert_int_eq(dir_entries(dir, names, sizeof names), 1);
  tm_check(&b, m);
  model_free(m);
  free(before);
  free(after);
  tm_free(&a);
  tm_free(&b);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* An I/O failure in the middle of the data (the file size limit) must
 * leave the old file and no temporary behind. */
START_TEST(test_write_io_failure_cleans_up) {
  char *dir = tu_mkdtemp();
  char path[4096], names[1024], err[RECD_ERRLEN];
  snprintf(path, sizeof path, "%s", tu_path(dir, "m.rmdl"));
  tm_t small, big;
  tm_init(&small, 3, 2, 0, 1);
  tm_init(&big, 2000, 32, 0, 2); /* Y alone is 256 KB */
  model_spec_t ss = tm_spec(&small), sb = tm_spec(&big);
  ck_assert_msg(model_write(&ss, path, err) == 0, "%s", err);
  size_t len;
  unsigned char *before = tu_read_file(path, &len);

  struct rlimit old, lim;
  ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 100000;
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  int rc = model_write(&sb, path, err);
  ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);

  ck_assert_int_eq(rc, RECD_EIO);
  char want[4200];
  snprintf(want, sizeof want, "writing %s: %s", path, strerror(EFBIG));
  ck_assert_str_eq(err, want);
  size_t len2;
  unsigned char *after = tu_read_file(path, &len2);
  ck_assert_uint_eq(len, len2);
  ck_assert_int_eq(memcmp(before, after, len), 0);
  ck_assert_int_eq(dir_entries(dir, names, sizeof names), 1);
  free(before);
  free(after);

  /* No directory at all: nothing can be created. */
  snprintf(path, sizeof path, "%s/no/such/dir/m.rmdl", dir);
  ck_assert_int_eq(model_write(&ss, path, err), RECD_EIO);
  ck_assert_msg(strstr(err, "cannot create a temporary file next to") != NULL &&
                strstr(err, strerror(ENOENT)) != NULL, "%s", err);
  tm_free(&small);
  tm_free(&big);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* The published file's mode follows the umask, as any created file would
 * (mkstemp's fixed 0600 would hide the model from a daemon user). */
START_TEST(test_write_honours_umask) {
  char *dir = tu_mkdtemp();
  char path[4096], err[RECD_ERRLEN];
  snprintf(path, sizeof path, "%s", tu_path(dir, "m.rmdl"));
  tm_t t;
  tm_init(&t, 3, 2, 0, 1);
  model_spec_t s = tm_spec(&t);
  mode_t old = umask(022);
  ck_assert_int_eq(model_write(&s, path, err), 0);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 0777, 0644);
  umask(077);
  ck_assert_int_eq(model_write(&s, path, err), 0);
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_uint_eq(st.st_mode & 0777, 0600);
  umask(old);
  tm_free(&t);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* Each invalid spec is refused before any file exists, culprit named. */
enum { N_BAD_SPECS = 35 };

START_TEST(test_write_invalid_spec) {
  static char long_id[MODEL_MAX_ID_LEN + 2];
  char *dir = tu_mkdtemp();
  char path[4096], names[1024], err[RECD_ERRLEN];
  snprintf(path, sizeof path, "%s", tu_path(dir, "m.rmdl"));
  tm_t t;
  tm_init(&t, 20, 3, 3, 11);
  model_spec_t s = tm_spec(&t);
  const char *expect = NULL;
  char *orig4 = t.ids[4], *orig9 = t.ids[9]; /* cases 6 and 19 swap them out */
  switch (_i) {
  case 0: s.n_items = 0; expect = "n_items is 0"; break;
  case 1: s.params.factors = 0; expect = "k (params.factors) is 0, must be 1..1024"; break;
  case 2: s.params.factors = 1025; expect = "k (params.factors) is 1025"; break;
  case 3: s.ldy = 2; expect = "ldy 2 is not in k..INT_MAX (k = 3)"; break;
  case 4: s.Y = NULL; expect = "spec.Y is NULL"; break;
  case 5: t.id_lens[2] = 0; expect = "item 2: id of 0 bytes (must be 1..256)"; break;
  case 6:
    memset(long_id, 'z', sizeof long_id);
    t.ids[4] = long_id;
    t.id_lens[4] = MODEL_MAX_ID_LEN + 1;
    expect = "item 4: id of 257 bytes";
    break;
  case 7:
    t.cat[5] = 4;
    expect = "item 5: category 4 out of range (n_categories 3)";
    break;
  case 8:
    memcpy(t.cnames[2], "cat-2", 6);
    expect = "category 3: duplicate name \"cat-2\" (same as category 2)";
    break;
  case 9: t.clens[0] = 0; expect = "category 1: name of 0 bytes (must be 1..256)"; break;
  case 10: t.Y[4 * t.ldy + 2] = NAN; expect = "item 4: Y[4][2] is nan, not finite"; break;
  case 11:
    t.pop[6] = -1;
    expect = "item 6: popularity -1 is not a finite value >= 0";
    break;
  case 12: t.pop[7] = INFINITY; expect = "item 7: popularity inf"; break;
  case 13: s.params.lambda = -1; expect = "params.lambda -1 is not a finite value >= 0"; break;
  case 14: s.params.conf_mode = 5; expect = "params.conf_mode 5 is unknown"; break;
  case 15: s.params.eps = 0; expect = "params.eps is 0 but the log confidence"; break;
  case 16: s.meta.holdout_fraction = 1.5; expect = "meta.holdout_fraction 1.5"; break;
  case 17: s.category_names = NULL; expect = "3 categories but spec.category_names is NULL"; break;
  case 18:
    for (uint32_t i = 0; i < t.n; i++)
      t.Y[i * t.ldy] = 1e30f;
    expect = "YtY[0][0] overflows float32";
    break;
  case 19: t.ids[9] = NULL; expect = "item 9: id pointer is NULL"; break;
  case 20: s.popularity = NULL; expect = "spec.popularity is NULL"; break;
  case 21:
    t.grp[6] = 4;
    expect = "item 6: group 4 out of range (n_groups 3)";
    break;
  case 22:
    memcpy(t.gnames[1], "grp-1", 6);
    expect = "group 2: duplicate name \"grp-1\" (same as group 1)";
    break;
  case 23: s.group_name_lens = NULL; expect = "3 groups but spec.group_name_lens is NULL"; break;
  case 24: s.meta.has_ease = 0; expect = "meta.has_ease is 0 but meta.ease is not all zero"; break;
  case 25: s.meta.ease.map = NAN; expect = "meta.ease.map nan"; break;
  case 26: s.meta.has_recent = 2; expect = "meta.has_recent is 2 (must be 0 or 1)"; break;
  case 27:
    s.meta.has_recent = 0;
    expect = "meta.has_recent is 0 but meta.recent_popularity is not all zero";
    break;
  case 28:
    s.meta.recent_popularity.recall = -1;
    expect = "meta.recent_popularity.recall -1 is not a finite value >= 0";
    break;
  case 29: s.meta.serves = 3; expect = "meta.serves is 3 (must be 0 als"; break;
  case 30:
    s.meta.serves = MODEL_SERVES_RECENT_POPULARITY;
    expect = "meta.serves is 2 (recent-popularity) but k is 3";
    break;
  case 31: s.meta.eval_split = 7; expect = "meta.eval_split is 7 (must be 0 random"; break;
  case 32:
    s.meta.half_life_days = -INFINITY;
    expect = "meta.half_life_days -inf is not a finite value >= 0";
    break;
  case 33: s.meta.half_life_days = NAN; expect = "meta.half_life_days nan"; break;
  case 34: s.meta.tuned_at = INT64_MIN; expect = "meta.tuned_at -9223372036854775808"; break;
  }
  ck_assert_ptr_nonnull(expect);
  int rc = model_write(&s, path, err);
  ck_assert_msg(rc == RECD_EINVAL, "case %d: %s (%s)", _i, recd_err_name(rc), err);
  ck_assert_msg(strstr(err, expect) != NULL, "case %d: \"%s\" lacks \"%s\"", _i, err, expect);
  ck_assert_int_eq(dir_entries(dir, names, sizeof names), 0);
  t.ids[4] = orig4;
  t.ids[9] = orig9;
  tm_free(&t);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

static Suite *model_suite(void) {
  Suite *s = suite_create("model");
  TCase *tc = tcase_create("round_trip");
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_round_trip_shapes);
  tcase_add_test(tc, test_names);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tc = tcase_create("corruption");
  tcase_add_test(tc, test_small_file_geometry);
  tcase_add_test(tc, test_truncation_rejected);
  tcase_add_test(tc, test_every_flipped_byte_rejected);
  tcase_add_loop_test(tc, test_bad_field_rejected, 0,
                      (int)(sizeof bad_cases / sizeof bad_cases[0]));
  tcase_add_test(tc, test_id_length_limit);
  tcase_add_test(tc, test_v1_still_loads);
  tcase_add_test(tc, test_v2_still_loads);
  tcase_add_test(tc, test_popularity_model);
  tcase_add_test(tc, test_bad_file_names_path);
  tcase_add_test(tc, test_load_missing_and_odd_files);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  tc = tcase_create("write");
  tcase_add_test(tc, test_write_replaces_atomically);
  tcase_add_test(tc, test_write_io_failure_cleans_up);
  tcase_add_test(tc, test_write_honours_umask);
  tcase_add_loop_test(tc, test_write_invalid_spec, 0, N_BAD_SPECS);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(model_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
