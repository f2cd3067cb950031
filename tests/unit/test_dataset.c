/* test_dataset.c - the interaction data set against brute-force dense
 * matrices, and its CSV loaders on good and bad files. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/csv.h"
#include "recd/dataset.h"
#include "recd/rng.h"
#include "testutil.h"

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

/* Asserts err is the message `path` + `msg`, as recd_errf would have cut
 * it to RECD_ERRLEN bytes (a long TMPDIR must not fail the test). */
static void assert_err(const char *err, const char *path, const char *msg) {
  char want[8192];
  snprintf(want, sizeof want, "%s%s", path, msg);
  want[RECD_ERRLEN - 1] = '\0';
  ck_assert_str_eq(err, want);
}

static int64_t user_of(const dataset_t *ds, const char *id) {
  return idmap_get(ds->users, id, strlen(id));
}

static int64_t item_of(const dataset_t *ds, const char *id) {
  return idmap_get(ds->items, id, strlen(id));
}

/* Weight of (user, item) in by_user and, checked to agree, in by_item;
 * 0 when absent. */
static float weight_of(const dataset_t *ds, const char *user, const char *item) {
  int64_t u = user_of(ds, user), i = item_of(ds, item);
  ck_assert_int_ge(u, 0);
  ck_assert_int_ge(i, 0);
  float a = 0, b = 0;
  for (uint64_t j = ds->by_user.ptr[u]; j < ds->by_user.ptr[u + 1]; j++)
    if (ds->by_user.idx[j] == (uint32_t)i)
      a = ds->by_user.val[j];
  for (uint64_t j = ds->by_item.ptr[i]; j < ds->by_item.ptr[i + 1]; j++)
    if (ds->by_item.idx[j] == (uint32_t)u)
      b = ds->by_item.val[j];
  ck_assert_float_eq(a, b);
  return a;
}

/* Check's assertions each cost a system call in fork mode (they record
 * the last passed point), so the loops below over thousands of entries
 * test with plain ifs and fail through ck_abort_msg. */

/* Asserts that m is a well-formed CSR equal to the dense rows x cols
 * matrix d (row-major, 0 = absent), with exact values. */
static void assert_csr_equals_dense(const csr_t *m, const float *d, uint32_t rows, uint32_t cols) {
  ck_assert_uint_eq(m->n_rows, rows);
  ck_assert_uint_eq(m->n_cols, cols);
  ck_assert_uint_eq(m->ptr[0], 0);
  uint64_t nnz = 0;
  for (uint32_t r = 0; r < rows; r++) {
    if (m->ptr[r] > m->ptr[r + 1])
      ck_abort_msg("row %u: ptr decreases", r);
    uint64_t j = m->ptr[r];
    for (uint32_t c = 0; c < cols; c++) {
      float want = d[(size_t)r * cols + c];
      if (want == 0.0f)
        continue;
      /* Matching column by column also proves ascending order, no extras. */
      if (j >= m->ptr[r + 1] || m->idx[j] != c)
        ck_abort_msg("row %u: column %u missing or out of order", r, c);
      if (m->val[j] != want)
        ck_abort_msg("(%u, %u): %.9g, want %.9g", r, c, (double)m->val[j], (double)want);
      j++;
      nnz++;
    }
    if (j != m->ptr[r + 1])
      ck_abort_msg("row %u: %llu extra entries", r, (unsigned long long)(m->ptr[r + 1] - j));
  }
  ck_assert_uint_eq(m->ptr[rows], nnz);
}

START_TEST(test_add_validates) {
  dataset_t ds;
  ck_assert_int_eq(dataset_init(&ds), 0);
  char id[300];
  memset(id, 'x', sizeof id);
  ck_assert_int_eq(dataset_add(&ds, "", 0, "i", 1, 1.0f), RECD_EINVAL);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "", 0, 1.0f), RECD_EINVAL);
  ck_assert_int_eq(dataset_add(&ds, id, 257, "i", 1, 1.0f), RECD_EINVAL);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, id, 257, 1.0f), RECD_EINVAL);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "i", 1, 0.0f), RECD_ERANGE);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "i", 1, -1.0f), RECD_ERANGE);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "i", 1, NAN), RECD_ERANGE);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "i", 1, INFINITY), RECD_ERANGE);
  /* Rejected calls intern nothing. */
  ck_assert_uint_eq(dataset_n_users(&ds), 0);
  ck_assert_uint_eq(dataset_n_items(&ds), 0);
  ck_assert_int_eq(dataset_add(&ds, id, 256, id, 256, 1.0f), 0);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "i", 1, 1e-30f), 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "i", 1, 1.0f), RECD_EINVAL);
  dataset_free(&ds);
  dataset_free(&ds); /* freeing twice is harmless */
}
END_TEST

START_TEST(test_duplicates_summed) {
  dataset_t ds;
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_add(&ds, "alice", 5, "book", 4, 1.0f), 0);
  ck_assert_int_eq(dataset_add(&ds, "bob", 3, "book", 4, 2.0f), 0);
  ck_assert_int_eq(dataset_add(&ds, "alice", 5, "pen", 3, 0.5f), 0);
  ck_assert_int_eq(dataset_add(&ds, "alice", 5, "book", 4, 3.0f), 0);
  /* 2^24 + 1 + 1 is 2^24 in float arithmetic but 2^24 + 2 in double, which
   * float represents exactly: proves the sum is taken in double. */
  ck_assert_int_eq(dataset_add(&ds, "carol", 5, "big", 3, 16777216.0f), 0);
  ck_assert_int_eq(dataset_add(&ds, "carol", 5, "big", 3, 1.0f), 0);
  ck_assert_int_eq(dataset_add(&ds, "carol", 5, "big", 3, 1.0f), 0);
  /* A sum beyond FLT_MAX is clamped, not inf. */
  ck_assert_int_eq(dataset_add(&ds, "dave", 4, "big", 3, 3e38f), 0);
  ck_assert_int_eq(dataset_add(&ds, "dave", 4, "big", 3, 3e38f), 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0); /* idempotent */
  ck_assert_ptr_null(ds.coo_user);
  ck_assert_uint_eq(ds.n_coo, 0);
  ck_assert_uint_eq(dataset_n_users(&ds), 4);
  ck_assert_uint_eq(dataset_n_items(&ds), 3);
  ck_assert_uint_eq(ds.by_user.ptr[ds.by_user.n_rows], 5);
  ck_assert_uint_eq(ds.by_item.ptr[ds.by_item.n_rows], 5);
  ck_assert_float_eq(weight_of(&ds, "alice", "book"), 4.0f);
  ck_assert_float_eq(weight_of(&ds, "alice", "pen"), 0.5f);
  ck_assert_float_eq(weight_of(&ds, "bob", "book"), 2.0f);
  ck_assert_float_eq(weight_of(&ds, "bob", "pen"), 0.0f);
  ck_assert_float_eq(weight_of(&ds, "carol", "big"), 16777218.0f);
  ck_assert_float_eq(weight_of(&ds, "dave", "big"), FLT_MAX);
  dataset_free(&ds);
}
END_TEST

START_TEST(test_empty_dataset) {
  dataset_t ds;
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_uint_eq(ds.by_user.n_rows, 0);
  ck_assert_uint_eq(ds.by_user.ptr[0], 0);
  ck_assert_uint_eq(ds.by_item.ptr[0], 0);
  dataset_free(&ds);
}
END_TEST

START_TEST(test_random_against_dense) {
  /* Random interactions with many duplicates; ids are spelled so that
   * interning order differs from numeric order. Duplicates are summed in
   * insertion order both here (double) and in finalize (stable counting
   * sort, double accumulator), so the floats must match exactly. */
  enum { NU = 57, NI = 83, N = 20000 };
  for (uint64_t seed = 1; seed <= 3; seed++) {
    rng_t r;
    rng_seed(&r, seed);
    dataset_t ds;
    ck_assert_int_eq(dataset_init(&ds), 0);
    double *acc = calloc((size_t)NU * NI, sizeof *acc);
    int su[N], si[N];
    float sw[N];
    for (int k = 0; k < N; k++) {
      su[k] = (int)(rng_next(&r) % NU);
      si[k] = (int)(rng_next(&r) % NI);
      sw[k] = (float)(rng_next(&r) % 1000 + 1) / 7.0f;
      char u[16], i[16];
      int ul = snprintf(u, sizeof u, "user%d", su[k]);
      int il = snprintf(i, sizeof i, "item%d", si[k]);
      if (dataset_add(&ds, u, (size_t)ul, i, (size_t)il, sw[k]) != 0)
        ck_abort_msg("dataset_add %d failed", k);
    }
    ck_assert_int_eq(dataset_finalize(&ds), 0);
    const uint32_t nu = dataset_n_users(&ds), ni = dataset_n_items(&ds);
    /* Dense matrices in the data set's own index order. */
    float *d = calloc((size_t)nu * ni, sizeof *d), *dt = calloc((size_t)nu * ni, sizeof *dt);
    for (int k = 0; k < N; k++) {
      char u[16], i[16];
      snprintf(u, sizeof u, "user%d", su[k]);
      snprintf(i, sizeof i, "item%d", si[k]);
      acc[(size_t)user_of(&ds, u) * ni + (size_t)item_of(&ds, i)] += sw[k];
    }
    for (uint32_t u = 0; u < nu; u++)
      for (uint32_t i = 0; i < ni; i++) {
        d[(size_t)u * ni + i] = (float)acc[(size_t)u * ni + i];
        dt[(size_t)i * nu + u] = d[(size_t)u * ni + i];
      }
    assert_csr_equals_dense(&ds.by_user, d, nu, ni);
    assert_csr_equals_dense(&ds.by_item, dt, ni, nu);
    free(acc);
    free(d);
    free(dt);
    dataset_free(&ds);
  }
}
END_TEST

/* A random rows x cols CSR with about `density` of the cells set. */
static void random_csr(csr_t *m, uint32_t rows, uint32_t cols, double density, uint64_t seed) {
  rng_t r;
  rng_seed(&r, seed);
  m->n_rows = rows;
  m->n_cols = cols;
  m->ptr = calloc((size_t)rows + 1, sizeof *m->ptr);
  m->idx = malloc(((size_t)rows * cols + 1) * sizeof *m->idx);
  m->val = malloc(((size_t)rows * cols + 1) * sizeof *m->val);
  uint64_t k = 0;
  for (uint32_t i = 0; i < rows; i++) {
    for (uint32_t j = 0; j < cols; j++) {
      if ((double)(rng_next(&r) >> 11) * 0x1.0p-53 < density) {
        m->idx[k] = j;
        m->val[k] = (float)(rng_next(&r) % 100 + 1);
        k++;
      }
    }
    m->ptr[i + 1] = k;
  }
}

static void assert_csr_equal(const csr_t *a, const csr_t *b) {
  ck_assert_uint_eq(a->n_rows, b->n_rows);
  ck_assert_uint_eq(a->n_cols, b->n_cols);
  ck_assert_int_eq(memcmp(a->ptr, b->ptr, ((size_t)a->n_rows + 1) * sizeof *a->ptr), 0);
  uint64_t nnz = a->ptr[a->n_rows];
  ck_assert_int_eq(memcmp(a->idx, b->idx, nnz * sizeof *a->idx), 0);
  ck_assert_int_eq(memcmp(a->val, b->val, nnz * sizeof *a->val), 0);
}

START_TEST(test_transpose) {
  static const struct {
    uint32_t rows, cols;
    double density;
  } shapes[] = {{40, 70, 0.1}, {70, 40, 0.5}, {1, 200, 0.3}, {200, 1, 0.3}, {10, 10, 0.0},
                {0, 5, 0.0},   {5, 0, 0.0},   {33, 33, 1.0}};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    csr_t m, t, tt;
    random_csr(&m, shapes[s].rows, shapes[s].cols, shapes[s].density, 100 + s);
    ck_assert_int_eq(csr_transpose(&m, &t), 0);
    /* The transpose against a dense copy of m. */
    float *dt = calloc((size_t)m.n_rows * m.n_cols + 1, sizeof *dt);
    for (uint32_t i = 0; i < m.n_rows; i++)
      for (uint64_t j = m.ptr[i]; j < m.ptr[i + 1]; j++)
        dt[(size_t)m.idx[j] * m.n_rows + i] = m.val[j];
    assert_csr_equals_dense(&t, dt, m.n_cols, m.n_rows);
    ck_assert_int_eq(csr_transpose(&t, &tt), 0);
    assert_csr_equal(&m, &tt);
    free(dt);
    csr_free(&m);
    csr_free(&t);
    csr_free(&tt);
    ck_assert_ptr_null(tt.ptr); /* csr_free zeroes */
  }
}
END_TEST

START_TEST(test_from_csr) {
  csr_t m;
  random_csr(&m, 30, 20, 0.2, 7);
  dataset_t ds;
  ck_assert_int_eq(dataset_from_csr(&ds, &m), 0);
  ck_assert_int_eq(ds.finalized, 1);
  ck_assert_uint_eq(dataset_n_users(&ds), 30);
  ck_assert_uint_eq(dataset_n_items(&ds), 20);
  ck_assert_int_eq(user_of(&ds, "u17"), 17);
  ck_assert_int_eq(item_of(&ds, "i0"), 0);
  ck_assert_int_eq(item_of(&ds, "i19"), 19);
  assert_csr_equal(&ds.by_user, &m);
  csr_t t;
  ck_assert_int_eq(csr_transpose(&m, &t), 0);
  assert_csr_equal(&ds.by_item, &t);
  csr_free(&t);
  ck_assert_int_eq(dataset_finalize(&ds), 0); /* already finalized: no-op */
  assert_csr_equal(&ds.by_user, &m);
  dataset_free(&ds);

  /* Malformed inputs are refused: unsorted row, repeated index, index out
   * of range. */
  csr_t bad = m;
  uint32_t idx[3] = {2, 1, 0};
  float val[3] = {1, 1, 1};
  uint64_t ptr[2] = {0, 2};
  bad.n_rows = 1;
  bad.n_cols = 3;
  bad.ptr = ptr;
  bad.idx = idx;
  bad.val = val;
  ck_assert_int_eq(dataset_from_csr(&ds, &bad), RECD_EINVAL);
  idx[0] = 1;
  ck_assert_int_eq(dataset_from_csr(&ds, &bad), RECD_EINVAL);
  idx[0] = 0;
  idx[1] = 3;
  ck_assert_int_eq(dataset_from_csr(&ds, &bad), RECD_EINVAL);
  idx[1] = 2;
  ck_assert_int_eq(dataset_from_csr(&ds, &bad), 0);
  dataset_free(&ds);
  csr_free(&m);
}
END_TEST

START_TEST(test_read_csv_good) {
  dataset_t ds;
  char err[RECD_ERRLEN] = "";
  uint64_t skipped = 99;
  /* 4 columns, empty and negative timestamps, quoted ids with commas,
   * CRLF, BOM, duplicates. */
  const char *p = write_file("good.csv",
                             "\xEF\xBB\xBFuser,item,weight,timestamp\r\n"
                             "u1,i1,1,1700000000\r\n"
                             "u1,\"i,2\",2.5,\r\n"
                             "\"u 2\",i1,3,-5\r\n"
                             "u1,i1,1e1,\r\n");
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, &skipped, NULL, err), 0);
  ck_assert_uint_eq(skipped, 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_uint_eq(dataset_n_users(&ds), 2);
  ck_assert_uint_eq(dataset_n_items(&ds), 2);
  ck_assert_float_eq(weight_of(&ds, "u1", "i1"), 11.0f);
  ck_assert_float_eq(weight_of(&ds, "u1", "i,2"), 2.5f);
  ck_assert_float_eq(weight_of(&ds, "u 2", "i1"), 3.0f);
  dataset_free(&ds);

  /* 3 columns; two files accumulate into one data set. */
  ck_assert_int_eq(dataset_init(&ds), 0);
  p = write_file("three.csv", "user,item,weight\na,x,1\nb,x,2");
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), 0);
  p = write_file("three-more.csv", "user,item,weight\na,x,4\n");
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), 0);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_float_eq(weight_of(&ds, "a", "x"), 5.0f);
  ck_assert_float_eq(weight_of(&ds, "b", "x"), 2.0f);
  /* Reading into a finalized data set is refused. */
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), RECD_EINVAL);
  dataset_free(&ds);
}
END_TEST

/* One bad line per entry, with the expected message after "path:". */
static const struct {
  const char *line;
  const char *msg;
} bad_lines[] = {
    {"a,b\n", "expected 4 fields, got 2"},
    {"a,b,1,2,3\n", "expected 4 fields, got 5"},
    {",b,1,\n", "empty user id"},
    {"a,\"\",1,\n", "empty item id"},
    {"a,b,abc,\n", "bad weight \"abc\""},
    {"a,b,,\n", "bad weight \"\""},
    {"a,b,nan,\n", "bad weight \"nan\""},
    {"a,b, 1,\n", "bad weight \" 1\""},
    {"a,b,1e999,\n", "weight out of range \"1e999\""},
    {"a,b,0,\n", "weight must be > 0, got \"0\""},
    {"a,b,-2,\n", "weight must be > 0, got \"-2\""},
    {"a,b,1,yesterday\n", "bad timestamp \"yesterday\""},
    {"a,b,1,1.5\n", "bad timestamp \"1.5\""},
    {"a,b\"c,1,\n", "field 2: quote inside unquoted field"},
    {"a,\"b,1,\n", "field 2: unterminated quote"},
};
#define N_BAD (sizeof bad_lines / sizeof *bad_lines)

/* Writes a file: header, then for each bad line a good line before it, and
 * a last good line. Returns the path. Good lines are "g<k>,item,1,". */
static const char *write_mixed(void) {
  static char text[8192];
  size_t k = (size_t)snprintf(text, sizeof text, "user,item,weight,timestamp\n");
  for (size_t b = 0; b < N_BAD; b++)
    k += (size_t)snprintf(text + k, sizeof text - k, "g%zu,item,1,\n%s", b, bad_lines[b].line);
  k += (size_t)snprintf(text + k, sizeof text - k, "last,item,1,\n");
  return write_file("mixed.csv", text);
}

START_TEST(test_read_csv_bad_lines) {
  char path[4096];
  snprintf(path, sizeof path, "%s", write_mixed());
  dataset_t ds;
  char err[RECD_ERRLEN];
  uint64_t skipped = 0;
  /* skip_bad: exactly the bad lines are counted, every good one is kept. */
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, path, 1, &skipped, NULL, err), 0);
  ck_assert_uint_eq(skipped, N_BAD);
  ck_assert_uint_eq(dataset_n_users(&ds), N_BAD + 1);
  ck_assert_uint_eq(ds.n_coo, N_BAD + 1);
  dataset_free(&ds);

  /* Each bad line alone, without skip_bad: the error names file:line. */
  for (size_t b = 0; b < N_BAD; b++) {
    char text[256];
    snprintf(text, sizeof text, "user,item,weight,timestamp\nok,x,1,\n\nok,y,2,3\n%s",
             bad_lines[b].line);
    const char *p = write_file("one.csv", text);
    ck_assert_int_eq(dataset_init(&ds), 0);
    err[0] = '\0';
    skipped = 99;
    ck_assert_int_eq(dataset_read_csv(&ds, p, 0, &skipped, NULL, err), RECD_EFORMAT);
    char msg[256];
    snprintf(msg, sizeof msg, ":5: %s", bad_lines[b].msg);
    assert_err(err, p, msg);
    ck_assert_uint_eq(skipped, 0);
    ck_assert_uint_eq(ds.n_coo, 2); /* the lines before it were read */
    dataset_free(&ds);
  }

  /* The mixed file without skip_bad stops at its first bad line (line 3). */
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, path, 0, NULL, NULL, err), RECD_EFORMAT);
  char msg[256];
  snprintf(msg, sizeof msg, ":3: %s", bad_lines[0].msg);
  assert_err(err, path, msg);
  dataset_free(&ds);
}
END_TEST

START_TEST(test_read_csv_long_ids_and_lines) {
  /* A 257-byte id, a 256-byte one, and a line over the reader's cap: with
   * skip_bad two lines are skipped and the file is read to its end. */
  size_t cap = CSV_MAX_LINE + 4096;
  char *text = malloc(cap);
  size_t k = (size_t)sprintf(text, "user,item,weight\n");
  memset(text + k, 'u', 257);
  k += 257;
  k += (size_t)sprintf(text + k, ",i,1\n");
  memset(text + k, 'v', 256);
  k += 256;
  k += (size_t)sprintf(text + k, ",i,1\nw,");
  memset(text + k, 'i', 257);
  k += 257;
  k += (size_t)sprintf(text + k, ",1\n");
  memset(text + k, 'z', CSV_MAX_LINE + 1);
  k += CSV_MAX_LINE + 1;
  k += (size_t)sprintf(text + k, "\nlast,i,1\n");
  const char *p = tu_path(dir, "long.csv");
  tu_write_file(p, text, k);
  free(text);

  dataset_t ds;
  char err[RECD_ERRLEN];
  uint64_t skipped;
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, p, 1, &skipped, NULL, err), 0);
  ck_assert_uint_eq(skipped, 3);
  ck_assert_uint_eq(ds.n_coo, 2);
  ck_assert_int_eq(user_of(&ds, "last"), 1);
  dataset_free(&ds);

  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), RECD_EFORMAT);
  assert_err(err, p, ":2: user id longer than 256 bytes");
  dataset_free(&ds);
}
END_TEST

START_TEST(test_read_csv_bad_header) {
  static const struct {
    const char *text;
    const char *msg;
  } cases[] = {
      {"user,item\na,b\n", "1: bad header \"user,item\", expected user,item,weight or "
                           "user,item,weight,timestamp"},
      {"\n\nUser,Item,Weight\n", "3: bad header \"User,Item,Weight\", expected user,item,weight or "
                                 "user,item,weight,timestamp"},
      {"user,item,weight,timestamp,extra\n",
       "1: bad header \"user,item,weight,timestamp,extra\", expected user,item,weight or "
       "user,item,weight,timestamp"},
      {"a,b,1\n", "1: bad header \"a,b,1\", expected user,item,weight or "
                  "user,item,weight,timestamp"},
      {"user,item,weight \n", "1: bad header \"user,item,weight \", expected user,item,weight or "
                              "user,item,weight,timestamp"},
      {"", " empty file, expected header user,item,weight or user,item,weight,timestamp"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    const char *p = write_file("header.csv", cases[c].text);
    dataset_t ds;
    char err[RECD_ERRLEN], msg[256];
    ck_assert_int_eq(dataset_init(&ds), 0);
    ck_assert_int_eq(dataset_read_csv(&ds, p, 1, NULL, NULL, err), RECD_EFORMAT);
    snprintf(msg, sizeof msg, ":%s", cases[c].msg);
    assert_err(err, p, msg);
    dataset_free(&ds);
  }
  /* A missing file is an I/O error naming it. */
  dataset_t ds;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, tu_path(dir, "nope.csv"), 0, NULL, NULL, err),
                   RECD_EIO);
  ck_assert_ptr_nonnull(strstr(err, "nope.csv"));
  dataset_free(&ds);
}
END_TEST

START_TEST(test_read_csv_progress) {
  /* Just over one progress interval: one \r line during, one final line. */
  enum { ROWS = 1000001 };
  FILE *fp = fopen(tu_path(dir, "big.csv"), "wb");
  ck_assert_ptr_nonnull(fp);
  fputs("user,item,weight\n", fp);
  for (int i = 0; i < ROWS; i++)
    fprintf(fp, "%d,%d,1\n", i % 5000, i % 1000);
  ck_assert_int_eq(fclose(fp), 0);
  char *out = NULL;
  size_t out_len = 0;
  FILE *progress = open_memstream(&out, &out_len);
  dataset_t ds;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_read_csv(&ds, tu_path(dir, "big.csv"), 0, NULL, progress, err), 0);
  fclose(progress);
  unsigned long long n1, n2;
  double r1, r2;
  ck_assert_msg(sscanf(out, "\rread %llu rows (%lf rows/s)\rread %llu rows (%lf rows/s)\n", &n1,
                       &r1, &n2, &r2) == 4,
                "progress output: %s", out);
  ck_assert_uint_eq(n1, 1000000);
  ck_assert_uint_eq(n2, ROWS);
  ck_assert_int_eq(out[out_len - 1], '\n');
  free(out);
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  ck_assert_uint_eq(ds.by_user.ptr[ds.by_user.n_rows], 5000); /* 5000 distinct pairs */
  ck_assert_float_eq(weight_of(&ds, "7", "7"), 200.0f); /* i = 7 + 5000k */
  dataset_free(&ds);
}
END_TEST

START_TEST(test_items_csv) {
  dataset_t ds;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(dataset_init(&ds), 0);
  const char *p = write_file("inter.csv", "user,item,weight\nu,a,1\nu,b,1\nu,c,1\nv,d,1\n");
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), 0);
  p = write_file("items.csv",
                 "item,title,category\r\n"
                 "a,\"Title, with comma\",books\r\n"
                 "zzz,Unknown,books\r\n"
                 "b,\"Say \"\"hi\"\"\",toys\r\n"
                 "c,No category,\r\n"
                 "nope,Unknown too,garden\r\n"
                 "d,first,toys\r\n"
                 "d,later wins,books\r\n");
  uint64_t ignored = 0;
  ck_assert_int_eq(dataset_read_items_csv_ex(&ds, p, &ignored, err), 0);
  ck_assert_uint_eq(ignored, 2);
  ck_assert_ptr_nonnull(ds.categories);
  ck_assert_uint_eq(idmap_size(ds.categories), 2); /* unknown items add none */
  ck_assert_uint_ge(ds.item_category_cap, dataset_n_items(&ds));
  const char *want[] = {"a", "books", "b", "toys", "c", NULL, "d", "books"};
  for (int k = 0; k < 8; k += 2) {
    uint32_t c = ds.item_category[item_of(&ds, want[k])];
    if (want[k + 1] == NULL) {
      ck_assert_uint_eq(c, 0);
    } else {
      ck_assert_uint_ne(c, 0);
      ck_assert_str_eq(idmap_key(ds.categories, c - 1, NULL), want[k + 1]);
    }
  }
  /* New items after categories exist get "none", and the array keeps up. */
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "e", 1, 1.0f), 0);
  ck_assert_uint_ge(ds.item_category_cap, dataset_n_items(&ds));
  ck_assert_uint_eq(ds.item_category[item_of(&ds, "e")], 0);
  /* Categories may also be read after finalize; the plain variant works. */
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  p = write_file("items2.csv", "item,title,category\ne,t,garden\n");
  ck_assert_int_eq(dataset_read_items_csv(&ds, p, err), 0);
  ck_assert_str_eq(idmap_key(ds.categories, ds.item_category[item_of(&ds, "e")] - 1, NULL),
                   "garden");
  /* dataset_set_category directly. */
  ck_assert_int_eq(dataset_set_category(&ds, "nope", 4, "x", 1), RECD_ENOTFOUND);
  char big[300];
  memset(big, 'c', sizeof big);
  ck_assert_int_eq(dataset_set_category(&ds, "a", 1, big, 257), RECD_EINVAL);
  ck_assert_int_eq(dataset_set_category(&ds, "a", 1, big, 256), 0);
  ck_assert_int_eq(dataset_set_category(&ds, "a", 1, "", 0), 0);
  ck_assert_uint_eq(ds.item_category[item_of(&ds, "a")], 0);
  dataset_free(&ds);
}
END_TEST

/* The optional fourth column: product families, like categories. */
START_TEST(test_items_csv_groups) {
  dataset_t ds;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(dataset_init(&ds), 0);
  const char *p = write_file("inter.csv", "user,item,weight\nu,a,1\nu,b,1\nu,c,1\nv,d,1\n");
  ck_assert_int_eq(dataset_read_csv(&ds, p, 0, NULL, NULL, err), 0);
  p = write_file("items.csv",
                 "item,title,category,group\n"
                 "a,PARASOL NATURAL,garden,PARASOL\n"
                 "b,PARASOL PINK,garden,PARASOL\n"
                 "c,MUG,,\n"
                 "zzz,unknown,x,PARASOL\n"
                 "d,\"BAG, RED\",bags,BAG\n");
  uint64_t ignored = 0;
  ck_assert_msg(dataset_read_items_csv_ex(&ds, p, &ignored, err) == 0, "%s", err);
  ck_assert_uint_eq(ignored, 1);
  ck_assert_ptr_nonnull(ds.groups);
  ck_assert_uint_eq(idmap_size(ds.groups), 2);
  uint32_t ga = ds.item_group[item_of(&ds, "a")], gd = ds.item_group[item_of(&ds, "d")];
  ck_assert_uint_eq(ga, ds.item_group[item_of(&ds, "b")]);
  ck_assert_str_eq(idmap_key(ds.groups, ga - 1, NULL), "PARASOL");
  ck_assert_str_eq(idmap_key(ds.groups, gd - 1, NULL), "BAG");
  ck_assert_uint_eq(ds.item_group[item_of(&ds, "c")], 0);
  ck_assert_uint_eq(ds.item_category[item_of(&ds, "c")], 0);
  /* New items after groups exist get "none", and the array keeps up. */
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "e", 1, 1.0f), 0);
  ck_assert_uint_ge(ds.item_group_cap, dataset_n_items(&ds));
  ck_assert_uint_eq(ds.item_group[item_of(&ds, "e")], 0);
  ck_assert_int_eq(dataset_set_group(&ds, "nope", 4, "x", 1), RECD_ENOTFOUND);
  char big[300];
  memset(big, 'g', sizeof big);
  ck_assert_int_eq(dataset_set_group(&ds, "a", 1, big, 257), RECD_EINVAL);
  ck_assert_int_eq(dataset_set_group(&ds, "a", 1, "", 0), 0);
  ck_assert_uint_eq(ds.item_group[item_of(&ds, "a")], 0);
  /* A three-column file leaves groups alone. */
  p = write_file("items3.csv", "item,title,category\nb,t,toys\n");
  ck_assert_int_eq(dataset_read_items_csv(&ds, p, err), 0);
  ck_assert_uint_eq(ds.item_group[item_of(&ds, "b")], ga);
  dataset_free(&ds);
}
END_TEST

START_TEST(test_items_csv_errors) {
  char cat[300];
  memset(cat, 'k', 257);
  cat[257] = '\0';
  char long_cat[400];
  snprintf(long_cat, sizeof long_cat, "item,title,category\na,t,%s\n", cat);
  char long_grp[400];
  snprintf(long_grp, sizeof long_grp, "item,title,category,group\na,t,c,%s\n", cat);
  static const char *const head = "item,title,category\na,ok,x\n";
  char buf[4][128];
  snprintf(buf[0], sizeof buf[0], "%sb,only two\n", head);
  snprintf(buf[1], sizeof buf[1], "%s,t,x\n", head);
  snprintf(buf[2], sizeof buf[2], "%sb,\"open,x\n", head);
  snprintf(buf[3], sizeof buf[3], "%sb,t,x,y\n", head);
  const struct {
    const char *text;
    const char *msg;
  } cases[] = {
      {"item,name,category\n",
       "1: bad header \"item,name,category\", expected item,title,category[,group]"},
      {"", " empty file, expected header item,title,category[,group]"},
      {buf[0], "3: expected 3 fields, got 2"},
      {buf[1], "3: empty item id"},
      {buf[2], "3: field 2: unterminated quote"},
      {buf[3], "3: expected 3 fields, got 4"},
      {long_cat, "2: category longer than 256 bytes"},
      {long_grp, "2: group longer than 256 bytes"},
      {"item,title,category,group\na,t,x,g\nb,t,x\n", "3: expected 4 fields, got 3"},
      {"item,title,category,family\n",
       "1: bad header \"item,title,category,family\", expected item,title,category[,group]"},
  };
  dataset_t ds;
  ck_assert_int_eq(dataset_init(&ds), 0);
  ck_assert_int_eq(dataset_add(&ds, "u", 1, "a", 1, 1.0f), 0);
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    const char *p = write_file("items.csv", cases[c].text);
    char err[RECD_ERRLEN], msg[256];
    ck_assert_int_eq(dataset_read_items_csv(&ds, p, err), RECD_EFORMAT);
    snprintf(msg, sizeof msg, ":%s", cases[c].msg);
    assert_err(err, p, msg);
  }
  dataset_free(&ds);
}
END_TEST

START_TEST(test_finalize_large) {
  /* 1M interactions, 50k users x 20k items, about 2% duplicates: a smoke
   * test that finalize stays linear (a quadratic step would time out). */
  enum { N = 1000000, NU = 50000, NI = 20000 };
  dataset_t ds;
  ck_assert_int_eq(dataset_init(&ds), 0);
  rng_t r;
  rng_seed(&r, 42);
  char u[16], i[16];
  for (int k = 0; k < N; k++) {
    int ul = snprintf(u, sizeof u, "%u", (unsigned)(rng_next(&r) % NU));
    int il = snprintf(i, sizeof i, "%u", (unsigned)(rng_next(&r) % NI));
    if (dataset_add(&ds, u, (size_t)ul, i, (size_t)il, 1.0f) != 0)
      ck_abort_msg("dataset_add %d failed", k);
  }
  ck_assert_int_eq(dataset_finalize(&ds), 0);
  double total = 0;
  const csr_t *m = &ds.by_user;
  for (uint32_t row = 0; row < m->n_rows; row++)
    for (uint64_t j = m->ptr[row]; j < m->ptr[row + 1]; j++) {
      if (j > m->ptr[row] && m->idx[j] <= m->idx[j - 1])
        ck_abort_msg("row %u not strictly ascending", row);
      total += m->val[j];
    }
  ck_assert(total == (double)N);
  ck_assert_uint_eq(ds.by_item.ptr[ds.by_item.n_rows], m->ptr[m->n_rows]);
  dataset_free(&ds);
}
END_TEST

static Suite *dataset_suite(void) {
  Suite *s = suite_create("dataset");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_add_validates);
  tcase_add_test(tc, test_duplicates_summed);
  tcase_add_test(tc, test_empty_dataset);
  tcase_add_test(tc, test_random_against_dense);
  tcase_add_test(tc, test_transpose);
  tcase_add_test(tc, test_from_csr);
  tcase_add_test(tc, test_finalize_large);
  suite_add_tcase(s, tc);
  TCase *tio = tcase_create("csv");
  tcase_add_checked_fixture(tio, setup, teardown);
  tcase_set_timeout(tio, 30);
  tcase_add_test(tio, test_read_csv_good);
  tcase_add_test(tio, test_read_csv_bad_lines);
  tcase_add_test(tio, test_read_csv_long_ids_and_lines);
  tcase_add_test(tio, test_read_csv_bad_header);
  tcase_add_test(tio, test_read_csv_progress);
  tcase_add_test(tio, test_items_csv);
  tcase_add_test(tio, test_items_csv_errors);
  tcase_add_test(tio, test_items_csv_groups);
  suite_add_tcase(s, tio);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(dataset_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
