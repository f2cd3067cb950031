/* foldin.h - the ALS user step: a user vector from a history.
 *
 *   x_u = (YtY + Yt(C_u - I)Y + lambda_u I)^-1 Yt C_u p_u
 *
 * Only the items of the history contribute beyond YtY, so the cost is
 * O(n k^2 + k^3) for a history of n items: this is what lets recd fold a
 * customer in at request time from the live history, and what training uses
 * for its exact (Cholesky) user and item steps.
 */
#ifndef RECD_FOLDIN_H
#define RECD_FOLDIN_H

#include <stddef.h>
#include <stdint.h>

#include "recd/err.h"
#include "recd/params.h"

/* Rows gathered per cblas_ssyrk call: bounds the scratch at FOLDIN_BLOCK x k
 * floats however long a history is (the trainer's item step sees rows with
 * hundreds of thousands of users), while keeping the update level-3. */
#define FOLDIN_BLOCK 256

/* Scratch space for one fold-in: reused across calls to avoid allocation on
 * the request path. Not shared between threads. Buffers only grow, so once
 * a workspace has seen the largest history and k it will meet, foldin_solve
 * never allocates again. After a successful foldin_solve() with n_used > 0,
 * A, b, order and conf describe that solve (WITHREASONS reads them). */
typedef struct foldin_ws {
  uint32_t k;      /* k the k-sized buffers (A, b, rows) can hold */
  size_t cap;      /* history entries the order and conf buffers hold */
  float *A;        /* k x k system matrix, then its Cholesky factor L in the
                      lower triangle (row-major, ld = k of the last solve);
                      the strict upper triangle is left unspecified */
  float *b;        /* k right-hand side Yt C_u p_u of the last solve */
  uint32_t *order; /* [0, n_used): positions in the caller's items/weights of
                      the history entries used, in ascending item order
                      (whatever the input order: the same history gives
                      the same x bit for bit). A duplicated item appears
                      once, at its first position. */
  float *conf;     /* [0, n_used): confidence c of order[j]'s item (from its
                      summed weight when duplicated) */
  float *rows;     /* FOLDIN_BLOCK x k gathered rows sqrt(c - 1) y_i */
  uint32_t *slots; /* open-addressing table (item -> entry + 1) that merges
                      duplicates of an unsorted history; 0 = empty */
  size_t n_slots;  /* entries of slots, a power of two (0 until needed) */
} foldin_ws_t;

/* Allocates a workspace for k factors (k >= 1). Returns 0 or RECD_ENOMEM
 * (then nothing is allocated and foldin_ws_free() is still safe). */
int foldin_ws_init(foldin_ws_t *ws, uint32_t k);
/* Releases every buffer; the struct may be initialised again. */
void foldin_ws_free(foldin_ws_t *ws);

/* Solves the user step for a history of n (item index, weight) pairs against
 * item factors Y (row i at Y + i*ldy, k = p->factors) and their Gram matrix
 * YtY (k x k). When n > cap (cap > 0), only the cap strongest items are used
 * (ties broken by smaller item index, so the result is deterministic). An
 * empty history gives x = 0. Weights must be finite and > 0.
 * An item index that occurs more than once is ONE interaction whose weight
 * is the sum of its entries (as ZINCRBY accumulates recd:hist:<user>, and as
 * dataset_add merges pairs); the cap ranks the summed weights.
 * On success x holds k floats and, when n_used is not NULL, *n_used the
 * number of distinct history items used; ws->A then holds the Cholesky
 * factor L (lower triangle, row-major) of the system matrix, which
 * WITHREASONS needs (see foldin_ws_t for ws->order and ws->conf). With an
 * empty history nothing is solved and ws->A, b, order, conf are untouched.
 * Items must be < the rows of Y (not checked: Y's size is not known here).
 * Returns 0, RECD_ENOMEM, RECD_EINVAL (a weight not finite and > 0, a
 * confidence that is < 1 or overflows, k = 0, n >= 2^32), or RECD_ENUMERIC
 * when the system is not positive definite (only possible with lambda <= 0).
 * On any error x is all zero. */
int foldin_solve(const float *Y, size_t ldy, const float *YtY, const params_t *p,
                 const uint32_t *items, const float *weights, size_t n, size_t cap,
                 float *x, size_t *n_used, foldin_ws_t *ws);

#endif
