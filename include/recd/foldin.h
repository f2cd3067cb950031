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

/* Scratch space for one fold-in: reused across calls to avoid allocation on
 * the request path. Not shared between threads. */
typedef struct foldin_ws {
  uint32_t k;
  size_t cap;      /* history entries the order buffer holds */
  float *A;        /* k x k system matrix, then its Cholesky factor */
  float *b;        /* k right-hand side */
  uint32_t *order; /* history positions, strongest first */
} foldin_ws_t;

int foldin_ws_init(foldin_ws_t *ws, uint32_t k);
void foldin_ws_free(foldin_ws_t *ws);

/* Solves the user step for a history of n (item index, weight) pairs against
 * item factors Y (row i at Y + i*ldy, k = p->factors) and their Gram matrix
 * YtY (k x k). When n > cap (cap > 0), only the cap strongest items are used
 * (ties broken by smaller item index, so the result is deterministic). An
 * empty history gives x = 0. Weights must be finite and > 0.
 * On success x holds k floats and, when n_used is not NULL, *n_used the
 * number of history items used; ws->A then holds the Cholesky factor L
 * (lower triangle, row-major) of the system matrix, which WITHREASONS needs.
 * Returns 0, RECD_ENOMEM, or RECD_ENUMERIC when the system is not positive
 * definite (only possible with lambda <= 0). */
int foldin_solve(const float *Y, size_t ldy, const float *YtY, const params_t *p,
                 const uint32_t *items, const float *weights, size_t n, size_t cap,
                 float *x, size_t *n_used, foldin_ws_t *ws);

#endif
