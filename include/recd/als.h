/* als.h - implicit-feedback alternating least squares.
 *
 * Hu, Koren & Volinsky (2008) with the conjugate-gradient row updates of
 * Takacs, Pilaszy & Tikk (2011): each sweep computes the Gram matrix of the
 * fixed side once (YtY), then updates every user (then every item) with a
 * few CG steps warm-started from its current vector, touching only the
 * row's observed entries. params.cg_steps = 0 selects the exact Cholesky
 * solve of foldin_solve() instead, which is what the daemon's fold-in does.
 *
 * Rows are spread over worker threads in chunks taken from a shared counter;
 * every row's update reads only the fixed side, so the result does not
 * depend on which thread did what: the same data and seed give the same
 * bytes for any thread count. Within a chunk, groups of rows take their CG
 * steps in lock step so that one pass over the Gram matrix serves them all;
 * each row still does exactly the arithmetic it would do alone, in a fixed
 * order, so the bytes do not depend on the instruction set (als_isa_t)
 * either.
 */
#ifndef RECD_ALS_H
#define RECD_ALS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recd/dataset.h"
#include "recd/params.h"

typedef struct als_factors {
  uint32_t n_users, n_items, k;
  uint32_t stride; /* floats per row, multiple of 16 (64-byte rows) */
  float *X;        /* n_users x stride, 64-byte aligned */
  float *Y;        /* n_items x stride, 64-byte aligned */
} als_factors_t;

typedef struct als_opts {
  params_t params;
  uint32_t threads;   /* worker threads, >= 1 */
  int compute_loss;   /* evaluate the objective after every sweep */
  FILE *progress;     /* per-iteration line (time, loss), or NULL */
} als_opts_t;

/* Per-sweep observer, e.g. for tests that check the loss decreases. */
typedef void (*als_iter_cb)(uint32_t iteration, double loss, double seconds,
                            void *arg);

/* Allocates and randomly initialises factors for a data set's shape
 * (N(0, 0.01^2) entries from params.seed; padding zero). 0 or RECD_ENOMEM. */
int als_factors_init(als_factors_t *f, uint32_t n_users, uint32_t n_items,
                     const params_t *p);
void als_factors_free(als_factors_t *f);

/* Trains for params.iterations sweeps on the interactions given both ways
 * (by_user: users x items; by_item: its transpose, as dataset_finalize()
 * builds them), starting from the factors in f (as initialised by
 * als_factors_init, with matching shape). `cb` may be
 * NULL; when compute_loss is off it receives NAN as the loss. Returns 0,
 * RECD_ENOMEM, RECD_EINVAL (bad parameters, errbuf says which) or
 * RECD_ENUMERIC (a system that should be positive definite is not). */
int als_train(const csr_t *by_user, const csr_t *by_item, const als_opts_t *o,
              als_factors_t *f, als_iter_cb cb, void *cb_arg, char *errbuf);

/* One half-sweep, exposed for tests: recomputes every row of `rows` (with
 * observations `obs`, row r's entries are columns of the fixed side) from
 * the fixed side `fixed`. Both are laid out as als_factors_init() lays
 * them out (stride a multiple of 16 and >= k, zero from column k on);
 * RECD_EINVAL for a stride that is not. */
int als_update_side(const csr_t *obs, float *rows, const float *fixed,
                    uint32_t n_fixed, uint32_t stride, const params_t *p,
                    uint32_t threads);

/* Instruction sets of the CG row update. Every one computes the same
 * floats in the same order (see als.c), so the model bytes do not depend
 * on which one runs. */
typedef enum als_isa {
  ALS_ISA_BASELINE = 0, /* x86-64 SSE2, or the compiler's baseline elsewhere */
  ALS_ISA_AVX2 = 1,
  ALS_ISA_AVX512 = 2, /* AVX-512 F and VL */
  ALS_ISA_COUNT
} als_isa_t;

/* The best the CPU runs, read once per process; the environment can ask
 * for another: RECD_ALS_ISA=baseline, avx2 or avx512 (als_isa_name) takes
 * that one, or the best below it that the CPU runs; any other value is
 * ignored. als_train and als_update_side use it. */
als_isa_t als_isa_default(void);
int als_isa_supported(als_isa_t isa);
const char *als_isa_name(als_isa_t isa);

/* als_update_side with a given instruction set (for tests): RECD_EINVAL
 * when the CPU does not run it. */
int als_update_side_isa(const csr_t *obs, float *rows, const float *fixed,
                        uint32_t n_fixed, uint32_t stride, const params_t *p,
                        uint32_t threads, als_isa_t isa);

/* The training objective:
 *   sum_{u,i} c_ui (p_ui - x_u.y_i)^2 + sum_u lambda_u |x_u|^2
 *                                     + sum_i lambda_i |y_i|^2
 * over ALL user-item pairs (unobserved ones with c = 1, p = 0), computed
 * in O(nnz k + (U + I) k^2) with the Gram trick. */
double als_loss(const csr_t *by_user, const csr_t *by_item, const params_t *p,
                const als_factors_t *f);

/* Gram matrix G = F^T F of n rows (k x k, row-major, full symmetric). */
void als_gram(const float *F, uint32_t n, uint32_t k, uint32_t stride, float *G);

#endif
