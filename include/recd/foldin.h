/* foldin.h - the ALS user step: a user vector from a history.
 *
 *   x_u = (YtY + Yt(C_u - I)Y + lambda_u I)^-1 Yt C_u p_u
 *
 * Only the items of the history contribute beyond YtY: this is what lets
 * recd fold a customer in at request time from the live history, and what
 * training uses for its exact (Cholesky) user and item steps.
 *
 * x is that system's exact solution rounded to float: the system is
 * defined by the float inputs (Y, YtY, the confidences and lambda_u as
 * floats) and solved to a relative error certified below 2^-36 (see
 * foldin.c), so two ways of computing it agree on every top-N up to ties
 * closer than that. The cost is O(n k) per solve plus a few k x k
 * matrix-vector products once a model's eigenbasis is known (built once per
 * YtY, see foldin.c), and O(n k^2 + k^3) for the Cholesky fallback.
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
 * order, conf and idx describe that solve, and foldin_factor() puts the
 * Cholesky factor of its system matrix in A (WITHREASONS reads them). */
typedef struct foldin_ws {
  uint32_t k;      /* k the k-sized buffers (A, rows, dv, fv) can hold */
  size_t cap;      /* history entries the order, conf, idx, zp buffers hold */
  float *A;        /* k x k: after foldin_factor(), the Cholesky factor L of
                      the system matrix in the lower triangle (row-major,
                      ld = k of the last solve); the strict upper triangle
                      is left unspecified */
  int factored;    /* A holds the last solve's factor */
  size_t n_used;   /* entries of the last successful solve, 0 = none */
  uint32_t *order; /* [0, n_used): positions in the caller's items/weights of
                      the history entries used, in ascending item order
                      (whatever the input order: the same history gives
                      the same x bit for bit). A duplicated item appears
                      once, at its first position. */
  float *conf;     /* [0, n_used): confidence c of order[j]'s item (from its
                      summed weight when duplicated) */
  uint32_t *idx;   /* [0, n_used): the item of order[j] */
  float *rows;     /* FOLDIN_BLOCK x k gathered rows sqrt(c - 1) y_i */
  uint32_t *slots; /* open-addressing table (item -> entry + 1) that merges
                      duplicates of an unsorted history; 0 = empty */
  size_t n_slots;  /* entries of slots, a power of two (0 until needed) */
  double *dv;      /* 8 x kp (k rounded up to 8): the solve's double vectors */
  float *fv;       /* 8 x kp: its float vectors */
  const float **zp; /* 2 x cap: each entry's row in the eigenbasis, as a
                       float and the float of what it rounded off */
  float *zs;       /* 2 x zs_cap x kp: such rows the model's cache lacks */
  size_t zs_cap;   /* rows zs holds */
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
 * number of distinct history items used (see foldin_ws_t for ws->order,
 * conf and idx; foldin_factor() gives the factor). With an empty history
 * nothing is solved and the workspace's last solve is untouched.
 * The first solve against a YtY builds its eigenbasis (a k x k eigen-
 * decomposition, shared by every thread and kept for the next solves with
 * the same Y and YtY; about 10-50 ms at k = 256): meanwhile other solves
 * against that YtY wait, so that every solve of a model takes the same
 * path and a history always gives the same bits.
 * Items must be < the rows of Y (not checked: Y's size is not known here).
 * Returns 0, RECD_ENOMEM, RECD_EINVAL (a weight not finite and > 0, a
 * confidence that is < 1 or overflows, k = 0, n >= 2^32), or RECD_ENUMERIC
 * when the system is not positive definite (only possible with lambda <= 0).
 * On any error x is all zero. */
int foldin_solve(const float *Y, size_t ldy, const float *YtY, const params_t *p,
                 const uint32_t *items, const float *weights, size_t n, size_t cap,
                 float *x, size_t *n_used, foldin_ws_t *ws);

/* Puts the Cholesky factor L of the last successful foldin_solve()'s system
 * matrix (n_used > 0) in ws->A, for WITHREASONS: the same bits whichever
 * way that solve was computed. Y, ldy, YtY and p must be the solve's. A
 * no-op when ws->A holds it already. Returns 0, RECD_EINVAL (no solve to
 * factor), or RECD_ENUMERIC (not positive definite in float). */
int foldin_factor(const float *Y, size_t ldy, const float *YtY, const params_t *p,
                  foldin_ws_t *ws);

/* Builds the eigenbasis of (Y, YtY) now, as the first solve against them
 * would (the same basis: solves then find it ready), so that a model's
 * loader pays the 10-50 ms at k = 256 instead of its first request.
 * Allocates nothing with malloc (the basis and the decomposition's work
 * space are mapped). Returns 1 when the basis is ready, 0 when solves
 * against this YtY will take the Cholesky path (no memory for a basis, or
 * YtY not decomposable): still correct, only slower. */
int foldin_prepare(const float *Y, size_t ldy, const float *YtY, uint32_t k);

/* Frees every cached eigenbasis that no solve is using (they are otherwise
 * kept, at most four, and replaced oldest first). For tests and tools. */
void foldin_cache_clear(void);

/* Drops the cached eigenbases (with their row and answer caches) of solves
 * against this YtY: model_free() calls it, so that a reloaded model's
 * caches do not outlive it (a basis still in use goes when its last solve
 * ends). A no-op when none is cached. */
void foldin_forget(const float *YtY);

/* The eigenbases cached now (at most four). For tests and tools. */
int foldin_cache_bases(void);

#endif
