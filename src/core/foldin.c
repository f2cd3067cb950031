/* foldin.c - the ALS user step (see foldin.h).
 *
 * One solve is four phases, each O(n) or better except the BLAS/LAPACK ones:
 *
 *   1. collect  validate the weights and merge duplicate items (a strictly
 *               ascending history, which is what the trainer's CSR rows are,
 *               cannot hold duplicates and skips the hash table);
 *   2. cap      when more distinct items than `cap` remain, keep the cap
 *               strongest with a bounded heap: O(n log cap) worst case and
 *               about O(n) in practice (most entries lose one comparison
 *               against the heap root), never a sort of the whole history;
 *   3. assemble A = YtY + sum (c_i - 1) y_i y_i^T + lambda_u I and
 *               b = sum c_i y_i;
 *   4. solve    Cholesky factor and triangular solves with LAPACKE.
 *
 * Phase 3 gathers the rows scaled by sqrt(c_i - 1) into a block of at most
 * FOLDIN_BLOCK x k and applies them with one cblas_ssyrk per block, rather
 * than one cblas_ssyr per item: a rank-1 update is level-2 and streams the
 * whole k x k triangle through memory once per item, while ssyrk is a
 * blocked level-3 kernel that keeps A in registers/cache across many rows.
 * Measured at k = 64 (OpenBLAS 0.3.21, one thread, AMD EPYC): 20 items take
 * 2.5 us with one ssyrk against 17 us with 20 ssyr calls, 100 items 9.5 us
 * against 143 us; only a single item is a draw. The gather costs O(n k).
 * Blocking bounds the scratch for the trainer's item step, where one
 * "history" is every user of a popular item.
 *
 * OOM policy: every allocation failure is returned as RECD_ENOMEM and leaves
 * the workspace as it was (still valid, just not grown).
 */
#include "recd/foldin.h"

#include <cblas.h>
#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int foldin_ws_init(foldin_ws_t *ws, uint32_t k) {
  memset(ws, 0, sizeof *ws);
  if (k == 0)
    k = 1; /* keep every pointer valid; foldin_solve rejects k = 0 itself */
  const size_t cap = 64; /* a typical capped history; grows on demand */
  ws->A = malloc((size_t)k * k * sizeof *ws->A);
  ws->b = malloc((size_t)k * sizeof *ws->b);
  ws->rows = malloc((size_t)FOLDIN_BLOCK * k * sizeof *ws->rows);
  ws->order = malloc(cap * sizeof *ws->order);
  ws->conf = malloc(cap * sizeof *ws->conf);
  if (ws->A == NULL || ws->b == NULL || ws->rows == NULL || ws->order == NULL ||
      ws->conf == NULL) {
    foldin_ws_free(ws);
    return RECD_ENOMEM;
  }
  ws->k = k;
  ws->cap = cap;
  return 0;
}

void foldin_ws_free(foldin_ws_t *ws) {
  free(ws->A);
  free(ws->b);
  free(ws->rows);
  free(ws->order);
  free(ws->conf);
  free(ws->slots);
  memset(ws, 0, sizeof *ws);
}

/* Makes the k-sized buffers hold k factors. The old contents need not
 * survive, so new buffers replace old ones only once all three exist. */
static int foldin__grow_k(foldin_ws_t *ws, uint32_t k) {
  if (k <= ws->k)
    return 0;
  float *A = malloc((size_t)k * k * sizeof *A);
  float *b = malloc((size_t)k * sizeof *b);
  float *rows = malloc((size_t)FOLDIN_BLOCK * k * sizeof *rows);
  if (A == NULL || b == NULL || rows == NULL) {
    free(A);
    free(b);
    free(rows);
    return RECD_ENOMEM;
  }
  free(ws->A);
  free(ws->b);
  free(ws->rows);
  ws->A = A;
  ws->b = b;
  ws->rows = rows;
  ws->k = k;
  return 0;
}

/* Makes order/conf hold n entries, growing geometrically so that a slowly
 * growing history does not reallocate on every request. */
static int foldin__grow_n(foldin_ws_t *ws, size_t n) {
  if (n <= ws->cap)
    return 0;
  size_t cap = ws->cap * 2 > n ? ws->cap * 2 : n;
  uint32_t *order = malloc(cap * sizeof *order);
  float *conf = malloc(cap * sizeof *conf);
  if (order == NULL || conf == NULL) {
    free(order);
    free(conf);
    return RECD_ENOMEM;
  }
  free(ws->order);
  free(ws->conf);
  ws->order = order;
  ws->conf = conf;
  ws->cap = cap;
  return 0;
}

/* Heapsort of the entries order/conf[0, n) by items[order[j]] ascending:
 * in place (no allocation on the request path), O(n log n). Items are
 * distinct here (duplicates were merged), so the order is total. */
static void foldin__sift_item(uint32_t *order, float *conf, const uint32_t *items, size_t root,
                         size_t n) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n)
      return;
    if (child + 1 < n && items[order[child + 1]] > items[order[child]])
      child++;
    if (items[order[root]] >= items[order[child]])
      return;
    const uint32_t o = order[root];
    order[root] = order[child];
    order[child] = o;
    const float c = conf[root];
    conf[root] = conf[child];
    conf[child] = c;
    root = child;
  }
}

static void foldin__sort_by_item(uint32_t *order, float *conf, const uint32_t *items, size_t n) {
  for (size_t i = n / 2; i-- > 0;)
    foldin__sift_item(order, conf, items, i, n);
  for (size_t end = n; end-- > 1;) {
    const uint32_t o = order[0];
    order[0] = order[end];
    order[end] = o;
    const float c = conf[0];
    conf[0] = conf[end];
    conf[end] = c;
    foldin__sift_item(order, conf, items, 0, end);
  }
}

/* Smallest power of two >= 2n: the table stays at most half full, so a
 * linear probe ends after a couple of steps on average. */
static size_t foldin__table_size(size_t n) {
  size_t s = 16;
  while (s < 2 * n)
    s *= 2;
  return s;
}

static int foldin__grow_slots(foldin_ws_t *ws, size_t size) {
  if (size <= ws->n_slots)
    return 0;
  uint32_t *slots = malloc(size * sizeof *slots);
  if (slots == NULL)
    return RECD_ENOMEM;
  free(ws->slots);
  ws->slots = slots;
  ws->n_slots = size;
  return 0;
}

/* Phase 1, unsorted history: merges duplicates through an open-addressing
 * table of `size` slots (a power of two). order/conf are rewritten with the
 * distinct items in first-occurrence order, conf holding summed weights.
 * Only the first `size` slots are cleared, so a table once grown for a huge
 * history costs nothing extra on small ones. Returns the distinct count. */
static size_t foldin__merge(foldin_ws_t *ws, const uint32_t *items, const float *weights,
                            size_t n, size_t size) {
  uint32_t *slots = ws->slots;
  uint32_t *order = ws->order;
  float *conf = ws->conf;
  int bits = 0;
  while (((size_t)1 << bits) < size)
    bits++;
  memset(slots, 0, size * sizeof *slots);
  const size_t mask = size - 1;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    const uint32_t it = items[i];
    /* Fibonacci hashing: the top bits of the product mix every input bit,
     * so item indices that differ only in high bits still spread out. */
    size_t h = (size_t)((it * 0x9E3779B97F4A7C15ull) >> (64 - bits));
    for (;;) {
      const uint32_t s = slots[h];
      if (s == 0) {
        slots[h] = (uint32_t)(m + 1);
        order[m] = (uint32_t)i;
        conf[m] = weights[i];
        m++;
        break;
      }
      if (items[order[s - 1]] == it) {
        conf[s - 1] += weights[i];
        break;
      }
      h = (h + 1) & mask;
    }
  }
  return m;
}

/* The cap's total order: is entry (wa, ia) weaker than (wb, ib)? Item
 * indices of distinct entries differ, so this never calls two equal. */
static inline int foldin__weaker(float wa, uint32_t ia, float wb, uint32_t ib) {
  return wa < wb || (wa == wb && ia > ib);
}

/* Sift-down in a heap of `len` entries (order[], w[]) whose root is the
 * weakest entry. */
static void foldin__sift(uint32_t *order, float *w, const uint32_t *items, size_t len,
                         size_t pos) {
  const uint32_t po = order[pos];
  const float pw = w[pos];
  const uint32_t pi = items[po];
  for (;;) {
    size_t child = 2 * pos + 1;
    if (child >= len)
      break;
    if (child + 1 < len &&
        foldin__weaker(w[child + 1], items[order[child + 1]], w[child], items[order[child]]))
      child++;
    if (!foldin__weaker(w[child], items[order[child]], pw, pi))
      break;
    order[pos] = order[child];
    w[pos] = w[child];
    pos = child;
  }
  order[pos] = po;
  w[pos] = pw;
}

/* Phase 2: keeps the `cap` strongest of the m entries in order/w[0, cap),
 * strongest first. The heap is built in place over the first cap entries;
 * an entry j >= cap that beats the root overwrites it, which is safe because
 * slot 0 is never read again as a candidate. */
static void foldin__select(uint32_t *order, float *w, const uint32_t *items, size_t m,
                           size_t cap) {
  for (size_t i = cap / 2; i-- > 0;)
    foldin__sift(order, w, items, cap, i);
  for (size_t j = cap; j < m; j++) {
    if (foldin__weaker(w[0], items[order[0]], w[j], items[order[j]])) {
      order[0] = order[j];
      w[0] = w[j];
      foldin__sift(order, w, items, cap, 0);
    }
  }
  /* Heapsort: moving the weakest remaining entry to the back each time
   * leaves the array strongest first. */
  for (size_t end = cap; end > 1; end--) {
    uint32_t to = order[0];
    float tw = w[0];
    order[0] = order[end - 1];
    w[0] = w[end - 1];
    order[end - 1] = to;
    w[end - 1] = tw;
    foldin__sift(order, w, items, end - 1, 0);
  }
}

static int foldin__fail(float *x, uint32_t k, int rc) {
  memset(x, 0, (size_t)k * sizeof *x);
  return rc;
}

int foldin_solve(const float *Y, size_t ldy, const float *YtY, const params_t *p,
                 const uint32_t *items, const float *weights, size_t n, size_t cap,
                 float *x, size_t *n_used, foldin_ws_t *ws) {
  const uint32_t k = p->factors;
  if (n_used != NULL)
    *n_used = 0;
  if (k == 0)
    return RECD_EINVAL;
  if (n == 0) {
    memset(x, 0, (size_t)k * sizeof *x);
    return 0;
  }
  /* Positions are stored as uint32 and slot values as position + 1. */
  if (n >= UINT32_MAX)
    return foldin__fail(x, k, RECD_EINVAL);
  int rc = foldin__grow_k(ws, k);
  if (rc == 0)
    rc = foldin__grow_n(ws, n);
  if (rc != 0)
    return foldin__fail(x, k, rc);

  /* Phase 1. One pass validates, copies and tests for strictly ascending
   * indices; only an unsorted history pays for duplicate merging. The test
   * `w > 0 && w <= FLT_MAX` is false for NaN, infinities and w <= 0. */
  uint32_t *order = ws->order;
  float *conf = ws->conf;
  int ascending = 1;
  for (size_t i = 0; i < n; i++) {
    const float w = weights[i];
    if (!(w > 0.0f && w <= FLT_MAX))
      return foldin__fail(x, k, RECD_EINVAL);
    order[i] = (uint32_t)i;
    conf[i] = w;
    ascending &= i == 0 || items[i] > items[i - 1];
  }
  size_t m = n;
  if (!ascending) {
    const size_t size = foldin__table_size(n);
    if ((rc = foldin__grow_slots(ws, size)) != 0)
      return foldin__fail(x, k, rc);
    m = foldin__merge(ws, items, weights, n, size);
  }

  /* Phase 2. */
  size_t used = m;
  if (cap > 0 && m > cap) {
    foldin__select(order, conf, items, m, cap);
    used = cap;
  }

  /* The entries go in ascending item order whatever the input order, so
   * that the same history gives the same floats bit for bit however it was
   * assembled (a stored history comes strongest first, a cart in page
   * order, and HISTORY a b c must answer exactly like a stored {a, b, c}):
   * the sums of phase 3 are not associative. An ascending input that the
   * cap did not reorder already is. */
  if (!ascending || used < m)
    foldin__sort_by_item(order, conf, items, used);

  /* Weights become confidences in place. c < 1 (a negative alpha) could not
   * be written as a sqrt-scaled row, and an overflowed c (huge summed
   * weights) would poison the whole system: both are caller errors. */
  for (size_t j = 0; j < used; j++) {
    const float c = params_confidence(p, conf[j]);
    if (!(c >= 1.0f && c <= FLT_MAX))
      return foldin__fail(x, k, RECD_EINVAL);
    conf[j] = c;
  }

  /* Phase 3. Only the lower triangle of A is maintained (ssyrk writes only
   * it and potrf reads only it); copying all of YtY in one call is cheaper
   * than k row copies of the triangle. The copy is cblas_scopy, not memcpy:
   * glibc's memcpy moves 16 KiB with `rep movsb`, which on AMD Zen runs
   * some 40x slower when the destination sits 16 bytes past the source
   * modulo 4 KiB (measured: 7-11 us instead of 0.2-0.4 us), and where a
   * malloc'ed A lands relative to the model's YtY is luck. */
  float *A = ws->A, *b = ws->b, *rows = ws->rows;
  cblas_scopy((int)(k * k), YtY, 1, A, 1);
  memset(b, 0, (size_t)k * sizeof *b);
  for (size_t j0 = 0; j0 < used; j0 += FOLDIN_BLOCK) {
    const size_t nb = used - j0 < FOLDIN_BLOCK ? used - j0 : FOLDIN_BLOCK;
    for (size_t r = 0; r < nb; r++) {
      const float c = conf[j0 + r];
      const float s = sqrtf(c - 1.0f);
      const float *y = Y + (size_t)items[order[j0 + r]] * ldy;
      float *row = rows + r * k;
      for (uint32_t d = 0; d < k; d++) {
        row[d] = s * y[d];
        b[d] += c * y[d];
      }
    }
    /* A += R^T R for the nb x k block R (one item per row, hence Trans). */
    cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, (int)k, (int)nb, 1.0f, rows,
                (int)k, 1.0f, A, (int)k);
  }
  const float lambda = params_lambda(p, used > UINT32_MAX ? UINT32_MAX : (uint32_t)used);
  for (uint32_t d = 0; d < k; d++)
    A[(size_t)d * k + d] += lambda;

  /* Phase 4. The lower triangle of a row-major matrix is, byte for byte,
   * the upper triangle of the same matrix read column-major, and the
   * factor U = L^T of A = U^T U lands exactly where L of A = L L^T goes.
   * Calling LAPACKE in column-major/'U' therefore computes the row-major
   * lower factor that foldin.h promises, without the transposed copies
   * that LAPACKE's row-major wrappers make around the Fortran call (counted
   * with a malloc interposer: one malloc per spotrf, two per spotrs, plus
   * the k x k transposes). Once the workspace is warm, a fold-in makes no
   * allocation at all (OpenBLAS keeps its own buffer pool).
   * The _work entry points are the same routines without LAPACKE's NaN scan
   * of the matrix (twice per solve, about 15% of a k = 64 fold-in): the
   * inputs cannot hold NaN here, since weights were checked above and the
   * model loader rejects non-finite factors, and a NaN that got in anyway
   * would surface as a failed factorisation or a NaN x, not a crash. */
  lapack_int info = LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)k, A, (lapack_int)k);
  if (info != 0)
    return foldin__fail(x, k, RECD_ENUMERIC);
  memcpy(x, b, (size_t)k * sizeof *x);
  info = LAPACKE_spotrs_work(LAPACK_COL_MAJOR, 'U', (lapack_int)k, 1, A, (lapack_int)k, x,
                             (lapack_int)k);
  if (info != 0)
    return foldin__fail(x, k, RECD_ENUMERIC);
  if (n_used != NULL)
    *n_used = used;
  return 0;
}
