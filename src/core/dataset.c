/* dataset.c - interactions, their CSR views, and the CSV loaders.
 *
 * Interactions accumulate in coordinate (COO) arrays that grow by doubling.
 * dataset_finalize() turns them into the two CSR views with counting sorts
 * only (no comparison sort): the COO entries are bucketed by item into an
 * item x user matrix, whose transpose is the user x item matrix with every
 * row's items ascending, because a transpose visits the source rows in
 * order. Duplicate (user, item) pairs are then adjacent and are merged; a
 * second transpose gives by_item. Each pass is O(nnz + rows), so a million
 * interactions take milliseconds, and because counting sort is stable,
 * duplicates are summed in the order they were added (the tests rely on
 * that to compare sums exactly).
 *
 * Times ride along in coo_t. A data set whose every row is timed keeps its
 * COO arrays after finalize as the raw interaction log (temporal splits
 * need each event, not the sums); an untimed one frees them, so the common
 * case costs no memory after loading.
 *
 * Out of memory: every function checks its allocations and returns
 * RECD_ENOMEM, leaving the data set as it was before the call (apart from
 * an id that may stay interned without interactions, see dataset_add()).
 */
#include "recd/dataset.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recd/csv.h"

/* Rows between two progress lines of dataset_read_csv(). */
#define DATASET__PROGRESS_ROWS 1000000u

/* Contract in dataset.h: ds is treated as uninitialised storage; on
 * success it owns two empty id maps and must be released with
 * dataset_free(). On RECD_ENOMEM it is left zeroed. */
int dataset_init(dataset_t *ds) {
  memset(ds, 0, sizeof *ds);
  ds->users = idmap_new(1024);
  ds->items = idmap_new(1024);
  if (ds->users == NULL || ds->items == NULL) {
    dataset_free(ds);
    return RECD_ENOMEM;
  }
  ds->t_min = ds->t_max = DATASET_NO_TIME;
  /* categories stays NULL until a category is set: most data sets have
   * none, and readers treat NULL as "no categories". */
  return 0;
}

/* Releases everything the data set owns and leaves it zeroed, so freeing
 * twice, or freeing after a failed init, is harmless. */
void dataset_free(dataset_t *ds) {
  idmap_free(ds->users);
  idmap_free(ds->items);
  idmap_free(ds->categories);
  free(ds->item_category);
  idmap_free(ds->groups);
  free(ds->item_group);
  free(ds->coo_user);
  free(ds->coo_item);
  free(ds->coo_w);
  free(ds->coo_t);
  csr_free(&ds->by_user);
  csr_free(&ds->by_item);
  memset(ds, 0, sizeof *ds);
}

/* Makes a per-item number array (item_category or item_group) hold at
 * least `need` entries, zeroing the new ones (0 = none). 0 or RECD_ENOMEM
 * (array unchanged). */
static int dataset__reserve_numbers(uint32_t **arr, size_t *arr_cap, size_t need) {
  if (*arr != NULL && *arr_cap >= need)
    return 0;
  size_t cap = *arr_cap ? *arr_cap * 2 : 64;
  if (cap < need)
    cap = need;
  uint32_t *c = realloc(*arr, cap * sizeof *c);
  if (c == NULL)
    return RECD_ENOMEM;
  memset(c + *arr_cap, 0, (cap - *arr_cap) * sizeof *c);
  *arr = c;
  *arr_cap = cap;
  return 0;
}

static int dataset__reserve_categories(dataset_t *ds, size_t need) {
  return dataset__reserve_numbers(&ds->item_category, &ds->item_category_cap, need);
}

/* Makes room for one more COO entry. 0 or RECD_ENOMEM. */
static int dataset__reserve_coo(dataset_t *ds) {
  if (ds->n_coo < ds->coo_cap)
    return 0;
  size_t cap = ds->coo_cap ? ds->coo_cap * 2 : 4096;
  if (cap > SIZE_MAX / sizeof(int64_t))
    return RECD_ENOMEM;
  /* coo_cap only grows once all four arrays have; a partial success just
   * leaves one array larger than needed, which the next attempt reuses. */
  uint32_t *u = realloc(ds->coo_user, cap * sizeof *u);
  if (u == NULL)
    return RECD_ENOMEM;
  ds->coo_user = u;
  uint32_t *i = realloc(ds->coo_item, cap * sizeof *i);
  if (i == NULL)
    return RECD_ENOMEM;
  ds->coo_item = i;
  float *w = realloc(ds->coo_w, cap * sizeof *w);
  if (w == NULL)
    return RECD_ENOMEM;
  ds->coo_w = w;
  int64_t *t = realloc(ds->coo_t, cap * sizeof *t);
  if (t == NULL)
    return RECD_ENOMEM;
  ds->coo_t = t;
  ds->coo_cap = cap;
  return 0;
}

/* Contract in dataset.h. Ids are validated before anything is interned, and
 * storage is reserved first, so an error other than RECD_ENOMEM changes
 * nothing. If interning the item runs out of memory after the user was
 * added, the user stays interned with no interactions: an empty row, which
 * training and evaluation handle like any user without history. */
int dataset_add_timed(dataset_t *ds, const char *user, size_t ulen, const char *item,
                      size_t ilen, float weight, int64_t t) {
  if (ds->finalized || ulen == 0 || ulen > DATASET_MAX_ID || ilen == 0 ||
      ilen > DATASET_MAX_ID)
    return RECD_EINVAL;
  if (!isfinite(weight) || !(weight > 0.0f))
    return RECD_ERANGE;
  if (dataset__reserve_coo(ds) != 0)
    return RECD_ENOMEM;
  /* "grown with items": reserve a slot for a possibly new item now, so the
   * array never lags behind the item map once categories exist. */
  if (ds->item_category != NULL &&
      dataset__reserve_categories(ds, idmap_size(ds->items) + 1) != 0)
    return RECD_ENOMEM;
  if (ds->item_group != NULL &&
      dataset__reserve_numbers(&ds->item_group, &ds->item_group_cap,
                               idmap_size(ds->items) + 1) != 0)
    return RECD_ENOMEM;
  uint32_t u, i;
  if (idmap_intern(ds->users, user, ulen, &u) < 0 || idmap_intern(ds->items, item, ilen, &i) < 0)
    return RECD_ENOMEM;
  ds->coo_user[ds->n_coo] = u;
  ds->coo_item[ds->n_coo] = i;
  ds->coo_w[ds->n_coo] = weight;
  ds->coo_t[ds->n_coo] = t;
  ds->n_coo++;
  ds->n_timed += t != DATASET_NO_TIME;
  return 0;
}

/* Contract in dataset.h: an interaction without a time. */
int dataset_add(dataset_t *ds, const char *user, size_t ulen, const char *item,
                size_t ilen, float weight) {
  return dataset_add_timed(ds, user, ulen, item, ilen, weight, DATASET_NO_TIME);
}

/* Contract in dataset.h. Works before and after dataset_finalize(). An
 * empty category clears the item's category. */
int dataset_set_category(dataset_t *ds, const char *item, size_t ilen, const char *cat,
                         size_t clen) {
  int64_t i = idmap_get(ds->items, item, ilen);
  if (i < 0)
    return RECD_ENOTFOUND;
  if (clen > DATASET_MAX_ID)
    return RECD_EINVAL;
  if (clen == 0) {
    if (ds->item_category != NULL && (size_t)i < ds->item_category_cap)
      ds->item_category[i] = 0;
    return 0;
  }
  if (ds->categories == NULL && (ds->categories = idmap_new(64)) == NULL)
    return RECD_ENOMEM;
  if (dataset__reserve_categories(ds, idmap_size(ds->items)) != 0)
    return RECD_ENOMEM;
  uint32_t c;
  if (idmap_intern(ds->categories, cat, clen, &c) < 0)
    return RECD_ENOMEM;
  ds->item_category[i] = c + 1;
  return 0;
}

/* Contract in dataset.h; dataset_set_category() for groups. */
int dataset_set_group(dataset_t *ds, const char *item, size_t ilen, const char *group,
                      size_t glen) {
  int64_t i = idmap_get(ds->items, item, ilen);
  if (i < 0)
    return RECD_ENOTFOUND;
  if (glen > DATASET_MAX_ID)
    return RECD_EINVAL;
  if (glen == 0) {
    if (ds->item_group != NULL && (size_t)i < ds->item_group_cap)
      ds->item_group[i] = 0;
    return 0;
  }
  if (ds->groups == NULL && (ds->groups = idmap_new(64)) == NULL)
    return RECD_ENOMEM;
  if (dataset__reserve_numbers(&ds->item_group, &ds->item_group_cap, idmap_size(ds->items)) != 0)
    return RECD_ENOMEM;
  uint32_t g;
  if (idmap_intern(ds->groups, group, glen, &g) < 0)
    return RECD_ENOMEM;
  ds->item_group[i] = g + 1;
  return 0;
}

/* Frees a CSR's arrays and zeroes it; a zeroed CSR is a no-op. */
void csr_free(csr_t *m) {
  free(m->ptr);
  free(m->idx);
  free(m->val);
  memset(m, 0, sizeof *m);
}

/* Allocates the arrays of an n_rows x n_cols CSR with nnz entries; ptr is
 * zeroed. 0 or RECD_ENOMEM (m zeroed). */
static int dataset__csr_alloc(csr_t *m, uint32_t n_rows, uint32_t n_cols, uint64_t nnz) {
  memset(m, 0, sizeof *m);
  if (nnz > SIZE_MAX / sizeof(float))
    return RECD_ENOMEM;
  m->n_rows = n_rows;
  m->n_cols = n_cols;
  m->ptr = calloc((size_t)n_rows + 1, sizeof *m->ptr);
  /* At least one element, so an empty matrix still has non-NULL arrays and
   * malloc(0) returning NULL is not mistaken for a failure. */
  m->idx = malloc((nnz ? (size_t)nnz : 1) * sizeof *m->idx);
  m->val = malloc((nnz ? (size_t)nnz : 1) * sizeof *m->val);
  if (m->ptr == NULL || m->idx == NULL || m->val == NULL) {
    csr_free(m);
    return RECD_ENOMEM;
  }
  return 0;
}

/* After a scatter that advanced ptr[r] from the start of row r to its end
 * (= the start of row r + 1), shifts ptr back to row starts. This saves a
 * separate cursor array in both counting sorts. */
static void dataset__ptr_unshift(uint64_t *ptr, uint32_t n_rows) {
  for (uint32_t r = n_rows; r > 0; r--)
    ptr[r] = ptr[r - 1];
  ptr[0] = 0;
}

/* Contract in dataset.h: *out (overwritten, owned by the caller, freed
 * with csr_free) is the n_cols x n_rows transpose of m. Each
 * output row lists its indices ascending, even if m's rows are unsorted,
 * and equal entries keep their relative order. 0 or RECD_ENOMEM. */
int csr_transpose(const csr_t *m, csr_t *out) {
  const uint64_t nnz = m->ptr != NULL ? m->ptr[m->n_rows] : 0;
  csr_t t;
  if (dataset__csr_alloc(&t, m->n_cols, m->n_rows, nnz) != 0) {
    memset(out, 0, sizeof *out);
    return RECD_ENOMEM;
  }
  for (uint64_t j = 0; j < nnz; j++)
    t.ptr[m->idx[j] + 1]++;
  for (uint32_t c = 0; c < t.n_rows; c++)
    t.ptr[c + 1] += t.ptr[c];
  /* Visiting source rows in ascending order is what sorts each output row. */
  for (uint32_t r = 0; r < m->n_rows; r++) {
    for (uint64_t j = m->ptr[r]; j < m->ptr[r + 1]; j++) {
      uint64_t dst = t.ptr[m->idx[j]]++;
      t.idx[dst] = r;
      t.val[dst] = m->val[j];
    }
  }
  dataset__ptr_unshift(t.ptr, t.n_rows);
  *out = t;
  return 0;
}

/* Merges adjacent equal indices within each row of m, in place. Sums are
 * taken in double (a float running sum of many small weights loses them
 * against a large one) and rounded once; a sum beyond FLT_MAX is clamped
 * there rather than becoming inf, which no caller could use. */
static void dataset__merge_duplicates(csr_t *m) {
  uint64_t w = 0, start = 0;
  for (uint32_t r = 0; r < m->n_rows; r++) {
    const uint64_t end = m->ptr[r + 1];
    m->ptr[r] = w;
    for (uint64_t j = start; j < end;) {
      const uint32_t c = m->idx[j];
      double s = m->val[j++];
      while (j < end && m->idx[j] == c)
        s += m->val[j++];
      m->idx[w] = c;
      m->val[w] = s > FLT_MAX ? FLT_MAX : (float)s;
      w++;
    }
    start = end;
  }
  m->ptr[m->n_rows] = w;
}

/* Shrinks the kept COO arrays to n_coo entries (doubling left up to half
 * of them unused). Best effort: a failed shrink keeps the larger array,
 * which is still valid; coo_cap then stays the smallest capacity. */
static void dataset__trim_coo(dataset_t *ds) {
  const size_t n = ds->n_coo;
  if (n == 0 || n == ds->coo_cap)
    return;
  uint32_t *u = realloc(ds->coo_user, n * sizeof *u);
  if (u != NULL)
    ds->coo_user = u;
  uint32_t *i = realloc(ds->coo_item, n * sizeof *i);
  if (i != NULL)
    ds->coo_item = i;
  float *w = realloc(ds->coo_w, n * sizeof *w);
  if (w != NULL)
    ds->coo_w = w;
  int64_t *t = realloc(ds->coo_t, n * sizeof *t);
  if (t != NULL)
    ds->coo_t = t;
  /* Every array holds at least n either way; nothing is added after
   * finalize, so coo_cap only records the exact size when all shrank. */
  if (u != NULL && i != NULL && w != NULL && t != NULL)
    ds->coo_cap = n;
}

/* Contract in dataset.h. On RECD_ENOMEM the COO arrays are kept and the
 * data set stays unfinalized, so the caller may free it or retry. */
int dataset_finalize(dataset_t *ds) {
  if (ds->finalized)
    return 0;
  const uint32_t nu = dataset_n_users(ds), ni = dataset_n_items(ds);
  const uint64_t n = ds->n_coo;
  csr_t x, by_user, by_item;
  /* Bucket the COO entries by item: x is items x users, rows unsorted. */
  if (dataset__csr_alloc(&x, ni, nu, n) != 0)
    return RECD_ENOMEM;
  for (uint64_t j = 0; j < n; j++)
    x.ptr[ds->coo_item[j] + 1]++;
  for (uint32_t i = 0; i < ni; i++)
    x.ptr[i + 1] += x.ptr[i];
  for (uint64_t j = 0; j < n; j++) {
    uint64_t dst = x.ptr[ds->coo_item[j]]++;
    x.idx[dst] = ds->coo_user[j];
    x.val[dst] = ds->coo_w[j];
  }
  dataset__ptr_unshift(x.ptr, ni);
  int rc = csr_transpose(&x, &by_user);
  csr_free(&x);
  if (rc != 0)
    return rc;
  dataset__merge_duplicates(&by_user);
  const uint64_t nnz = by_user.ptr[nu];
  if (nnz > 0 && nnz < n) {
    /* Shrinking cannot fail in practice; if it does, the larger arrays are
     * still valid, so keep them. */
    uint32_t *idx = realloc(by_user.idx, nnz * sizeof *idx);
    if (idx != NULL)
      by_user.idx = idx;
    float *val = realloc(by_user.val, nnz * sizeof *val);
    if (val != NULL)
      by_user.val = val;
  }
  if ((rc = csr_transpose(&by_user, &by_item)) != 0) {
    csr_free(&by_user);
    return rc;
  }
  ds->by_user = by_user;
  ds->by_item = by_item;
  ds->has_time = n > 0 && ds->n_timed == n;
  ds->t_min = ds->t_max = DATASET_NO_TIME;
  if (ds->has_time) {
    ds->t_min = ds->t_max = ds->coo_t[0];
    for (uint64_t j = 1; j < n; j++) {
      if (ds->coo_t[j] < ds->t_min)
        ds->t_min = ds->coo_t[j];
      if (ds->coo_t[j] > ds->t_max)
        ds->t_max = ds->coo_t[j];
    }
    dataset__trim_coo(ds);
  } else {
    free(ds->coo_user);
    free(ds->coo_item);
    free(ds->coo_w);
    free(ds->coo_t);
    ds->coo_user = ds->coo_item = NULL;
    ds->coo_w = NULL;
    ds->coo_t = NULL;
    ds->n_coo = ds->coo_cap = ds->n_timed = 0;
  }
  ds->finalized = 1;
  return 0;
}

/* Checks that m is a well-formed CSR: ptr non-decreasing from 0, indices
 * in range and strictly ascending within each row (no duplicates). */
static int dataset__csr_valid(const csr_t *m) {
  if (m->ptr == NULL || m->ptr[0] != 0)
    return 0;
  for (uint32_t r = 0; r < m->n_rows; r++) {
    if (m->ptr[r + 1] < m->ptr[r])
      return 0;
    for (uint64_t j = m->ptr[r]; j < m->ptr[r + 1]; j++)
      if (m->idx[j] >= m->n_cols || (j > m->ptr[r] && m->idx[j] <= m->idx[j - 1]))
        return 0;
  }
  return 1;
}

/* Contract in dataset.h. `ds` is treated as uninitialised storage (it must
 * not hold a live data set, which would leak) and, on success, is a
 * finalized data set the caller frees with dataset_free(). Returns 0,
 * RECD_EINVAL when by_user is not a well-formed CSR (indices out of range,
 * unsorted or repeated within a row), or RECD_ENOMEM; on error ds is zeroed.
 * Values are copied as they are: the hold-out split passes weights that
 * were already validated. */
int dataset_from_csr(dataset_t *ds, const csr_t *by_user) {
  memset(ds, 0, sizeof *ds);
  if (!dataset__csr_valid(by_user))
    return RECD_EINVAL;
  int rc = dataset_init(ds);
  if (rc != 0)
    return rc;
  char id[16];
  uint32_t idx;
  for (uint32_t r = 0; r < by_user->n_rows && rc == 0; r++) {
    int n = snprintf(id, sizeof id, "u%u", (unsigned)r);
    rc = idmap_intern(ds->users, id, (size_t)n, &idx) < 0 ? RECD_ENOMEM : 0;
  }
  for (uint32_t c = 0; c < by_user->n_cols && rc == 0; c++) {
    int n = snprintf(id, sizeof id, "i%u", (unsigned)c);
    rc = idmap_intern(ds->items, id, (size_t)n, &idx) < 0 ? RECD_ENOMEM : 0;
  }
  const uint64_t nnz = by_user->ptr[by_user->n_rows];
  if (rc == 0)
    rc = dataset__csr_alloc(&ds->by_user, by_user->n_rows, by_user->n_cols, nnz);
  if (rc == 0) {
    memcpy(ds->by_user.ptr, by_user->ptr, ((size_t)by_user->n_rows + 1) * sizeof *by_user->ptr);
    memcpy(ds->by_user.idx, by_user->idx, (size_t)nnz * sizeof *by_user->idx);
    memcpy(ds->by_user.val, by_user->val, (size_t)nnz * sizeof *by_user->val);
    rc = csr_transpose(&ds->by_user, &ds->by_item);
  }
  if (rc != 0) {
    dataset_free(ds);
    return rc;
  }
  /* dataset_init() set t_min = t_max = DATASET_NO_TIME; has_time stays 0. */
  ds->finalized = 1;
  return 0;
}

/* Writes at most ~48 bytes of s into dst (64 bytes) for a message, with
 * non-printable bytes shown as '?' and "..." when cut: fields come from
 * arbitrary files and must not garble a terminal or a log line. */
static const char *dataset__show(char *dst, const char *s, size_t len) {
  size_t n = len > 48 ? 48 : len, k = 0;
  for (size_t j = 0; j < n; j++)
    dst[k++] = s[j] >= 0x20 && s[j] < 0x7f ? s[j] : '?';
  if (n < len) {
    memcpy(dst + k, "...", 3);
    k += 3;
  }
  dst[k] = '\0';
  return dst;
}

/* The record's fields joined with commas, for "bad header" messages. */
static const char *dataset__show_record(char *dst, const csv_record_t *rec) {
  char tmp[128];
  size_t k = 0;
  for (size_t f = 0; f < rec->n_fields && k < sizeof tmp - 1; f++) {
    if (f > 0)
      tmp[k++] = ',';
    size_t n = rec->len[f] < sizeof tmp - 1 - k ? rec->len[f] : sizeof tmp - 1 - k;
    memcpy(tmp + k, rec->field[f], n);
    k += n;
  }
  return dataset__show(dst, tmp, k);
}

/* 1 when the record's fields are exactly names[0..n). */
static int dataset__header_is(const csv_record_t *rec, const char *const *names, size_t n) {
  if (rec->n_fields != n)
    return 0;
  for (size_t f = 0; f < n; f++)
    if (rec->len[f] != strlen(names[f]) || memcmp(rec->field[f], names[f], rec->len[f]) != 0)
      return 0;
  return 1;
}


/* Opens a CSV and reads its header, which must be h_a[0..n_a) or (when
 * h_b is not NULL) h_b[0..n_b). 0 with the reader in *out and the header in
 * rec, or an error naming the file ("expected <expected>"). */
static int dataset__open(const char *path, const char *const *h_a, size_t n_a,
                         const char *const *h_b, size_t n_b, const char *expected,
                         csv_reader_t **out, csv_record_t *rec, char *errbuf) {
  csv_reader_t *r;
  int rc = csv_open(&r, path, errbuf);
  if (rc != 0)
    return rc;
  rc = csv_next(r, rec, errbuf);
  if (rc == 0)
    rc = recd_errf(errbuf, RECD_EFORMAT, "%s: empty file, expected header %s", csv_name(r),
                   expected);
  else if (rc > 0 && !dataset__header_is(rec, h_a, n_a) &&
           !(h_b != NULL && dataset__header_is(rec, h_b, n_b))) {
    char shown[64];
    rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: bad header \"%s\", expected %s", csv_name(r),
                   (unsigned long long)rec->line, dataset__show_record(shown, rec), expected);
  } else if (rc > 0) {
    rc = 0;
  }
  if (rc != 0) {
    csv_close(r);
    return rc;
  }
  *out = r;
  return 0;
}

static double dataset__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Validates one interaction record and adds it. 0, RECD_EFORMAT with
 * "file:line: reason", or RECD_ENOMEM. */
static int dataset__csv_row(dataset_t *ds, const char *name, const csv_record_t *rec,
                            size_t n_fields, char *errbuf) {
  const unsigned long long line = (unsigned long long)rec->line;
  char shown[64];
  if (rec->n_fields != n_fields)
    return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: expected %zu fields, got %zu", name, line,
                     n_fields, rec->n_fields);
  static const char *const what[2] = {"user", "item"};
  for (int f = 0; f < 2; f++) {
    if (rec->len[f] == 0)
      return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: empty %s id", name, line, what[f]);
    if (rec->len[f] > DATASET_MAX_ID)
      return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: %s id longer than %d bytes", name,
                       line, what[f], DATASET_MAX_ID);
  }
  float w;
  int rc = csv_parse_float(rec->field[2], rec->len[2], &w);
  if (rc == RECD_ERANGE)
    return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: weight out of range \"%s\"", name, line,
                     dataset__show(shown, rec->field[2], rec->len[2]));
  if (rc != 0)
    return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: bad weight \"%s\"", name, line,
                     dataset__show(shown, rec->field[2], rec->len[2]));
  if (!(w > 0.0f))
    return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: weight must be > 0, got \"%s\"", name,
                     line, dataset__show(shown, rec->field[2], rec->len[2]));
  int64_t ts = DATASET_NO_TIME;
  /* An empty timestamp is allowed: the column is optional per row (the
   * MovieLens-1m copy has none); such a row has no time. INT64_MIN is
   * refused rather than read as "no time" without a word. */
  if (n_fields == 4 && rec->len[3] > 0 &&
      (csv_parse_i64(rec->field[3], rec->len[3], &ts) != 0 || ts == DATASET_NO_TIME))
    return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: bad timestamp \"%s\"", name, line,
                     dataset__show(shown, rec->field[3], rec->len[3]));
  rc = dataset_add_timed(ds, rec->field[0], rec->len[0], rec->field[1], rec->len[1], w, ts);
  if (rc != 0)
    return recd_errf(errbuf, rc, "%s:%llu: %s", name, line, recd_strerror(rc));
  return 0;
}

/* Contract in dataset.h, plus: the file may be "-" (stdin); *skipped (may
 * be NULL) is set to the number of bad lines skipped, syntax errors
 * included. Every bad line is RECD_EFORMAT. On any error the data set keeps
 * the interactions read before it; the caller frees it. Returns 0,
 * RECD_EFORMAT, RECD_EIO, RECD_ENOMEM, or RECD_EINVAL if ds is finalized. */
int dataset_read_csv(dataset_t *ds, const char *path, int skip_bad, uint64_t *skipped,
                     FILE *progress, char *errbuf) {
  static const char *const h3[] = {"user", "item", "weight"};
  static const char *const h4[] = {"user", "item", "weight", "timestamp"};
  static const char expected[] = "user,item,weight or user,item,weight,timestamp";
  if (skipped != NULL)
    *skipped = 0;
  if (ds->finalized)
    return recd_errf(errbuf, RECD_EINVAL, "%s: data set already finalized", path);
  csv_reader_t *r;
  csv_record_t rec;
  int rc = dataset__open(path, h3, 3, h4, 4, expected, &r, &rec, errbuf);
  if (rc != 0)
    return rc;
  const char *name = csv_name(r);
  const size_t n_fields = rec.n_fields;
  uint64_t rows = 0, bad = 0;
  const double t0 = dataset__now();
  for (;;) {
    rc = csv_next(r, &rec, errbuf);
    if (rc == 0)
      break;
    if (rc == 1)
      rc = dataset__csv_row(ds, name, &rec, n_fields, errbuf);
    if (rc == RECD_EFORMAT && skip_bad) {
      bad++;
      rc = 0;
    }
    if (rc != 0)
      break;
    if (++rows % DATASET__PROGRESS_ROWS == 0 && progress != NULL) {
      fprintf(progress, "\rread %llu rows (%.0f rows/s)", (unsigned long long)rows,
              (double)rows / (dataset__now() - t0 + 1e-9));
      fflush(progress);
    }
  }
  if (progress != NULL) {
    /* Also on error: end the \r line so the caller's message starts clean. */
    fprintf(progress, "\rread %llu rows (%.0f rows/s)\n", (unsigned long long)rows,
            (double)rows / (dataset__now() - t0 + 1e-9));
    fflush(progress);
  }
  if (skipped != NULL)
    *skipped = bad;
  csv_close(r);
  return rc;
}

/* Contract in dataset.h: reads item,title,category[,group] lines and sets
 * the category (and group) of every item the data set knows; *ignored (may be NULL)
 * receives the number of lines naming unknown items. A later line for the
 * same item overrides an earlier one. Titles are not kept. Every bad line
 * (wrong field count, empty or over-long item id, category longer than
 * DATASET_MAX_ID bytes, CSV syntax) is a RECD_EFORMAT error with
 * "file:line: reason": this file is small and hand-made, so a bad line more
 * likely means a wrong file than noise worth skipping. */
int dataset_read_items_csv_ex(dataset_t *ds, const char *path, uint64_t *ignored,
                              char *errbuf) {
  static const char *const h[] = {"item", "title", "category", "group"};
  if (ignored != NULL)
    *ignored = 0;
  csv_reader_t *r;
  csv_record_t rec;
  int rc = dataset__open(path, h, 3, h, 4, "item,title,category[,group]", &r, &rec, errbuf);
  if (rc != 0)
    return rc;
  const size_t nf = rec.n_fields; /* the header's: 3, or 4 with groups */
  const char *name = csv_name(r);
  uint64_t unknown = 0;
  while ((rc = csv_next(r, &rec, errbuf)) == 1) {
    const unsigned long long line = (unsigned long long)rec.line;
    if (rec.n_fields != nf) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: expected %zu fields, got %zu", name, line,
                     nf, rec.n_fields);
      break;
    }
    if (nf == 4 && rec.len[3] > DATASET_MAX_ID) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: group longer than %d bytes", name, line,
                     DATASET_MAX_ID);
      break;
    }
    if (rec.len[0] == 0) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: empty item id", name, line);
      break;
    }
    if (rec.len[0] > DATASET_MAX_ID || rec.len[2] > DATASET_MAX_ID) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: %s longer than %d bytes", name, line,
                     rec.len[0] > DATASET_MAX_ID ? "item id" : "category", DATASET_MAX_ID);
      break;
    }
    rc = dataset_set_category(ds, rec.field[0], rec.len[0], rec.field[2], rec.len[2]);
    if (rc == 0 && nf == 4)
      rc = dataset_set_group(ds, rec.field[0], rec.len[0], rec.field[3], rec.len[3]);
    if (rc == RECD_ENOTFOUND) {
      unknown++;
      continue;
    }
    if (rc != 0) {
      rc = recd_errf(errbuf, rc, "%s:%llu: %s", name, line, recd_strerror(rc));
      break;
    }
  }
  if (ignored != NULL)
    *ignored = unknown;
  csv_close(r);
  return rc;
}

/* Contract in dataset.h; dataset_read_items_csv_ex() without the count. */
int dataset_read_items_csv(dataset_t *ds, const char *path, char *errbuf) {
  return dataset_read_items_csv_ex(ds, path, NULL, errbuf);
}
