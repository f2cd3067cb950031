/* testutil.h - helpers shared by the Check suites. */
#ifndef RECD_TESTUTIL_H
#define RECD_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "recd/model.h"
#include "recd/serve.h"

/* A loopback TCP port nobody uses right now (checked by binding it),
 * below the kernel's ephemeral range (testutil.c says why). Aborts the
 * test on failure. */
int tu_free_port(void);

/* Starts redis-server on loopback `port` without persistence, with the
 * extra arguments `extra` (NULL-terminated; NULL for none), its output
 * discarded; it is killed when the test process dies. Returns its pid
 * (the caller waits for it to answer and kills it). Aborts on failure. */
int tu_redis_spawn(int port, const char *const *extra);

/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp), removed with
 * everything in it by tu_rmtree(). Aborts the test on failure. */
char *tu_mkdtemp(void);
void tu_rmtree(const char *dir);

/* Path `dir`/`name` in a static buffer (valid until the next call). */
const char *tu_path(const char *dir, const char *name);

/* Writes `len` bytes to path, aborting the test on failure. */
void tu_write_file(const char *path, const void *data, size_t len);
/* Reads a whole file into a malloc'ed buffer (*len set); aborts on failure. */
void *tu_read_file(const char *path, size_t *len);

/* Fills n floats with N(0, sd) deviates from a seeded generator. */
void tu_randn(float *v, size_t n, uint64_t seed, float sd);

/* The slow, obvious reference for every linear solve in the tests: solves
 * A X = B for an n x n A and an n x m B (row-major, double) by Gauss-Jordan
 * elimination with partial pivoting, into X (n x m). A and B are left
 * untouched. Fails the test if A is singular. */
void tu_solve(const double *A, int n, const double *B, int m, double *X);

/* Writes a random model file of n items, k factors and n_cat categories
 * (item i is "i<i>", of category i % (n_cat + 1), 0 = none; category c is
 * "c<c>"), reproducibly from seed. Fails the test on error. */
void tu_write_model(const char *path, uint32_t n, uint32_t k, uint32_t n_cat, uint64_t seed);

/* The ways of serving a model the tests compare: 0 the float pass, 1 the
 * int8 pass with the portable kernel, 2 with AVX2, 3 with AVX-512 VNNI
 * (1-3 never with the 4-bit prefilter), 4 and 5 the int8 pass through the
 * 4-bit prefilter (whatever the catalogue's size), portable and AVX2. */
enum { TU_SERVE_WAYS = 6 };
const char *tu_serve_way_name(int way);
/* Serves m the way `way` (serve_model_init, forced); 0 when this CPU cannot
 * (no AVX2, no AVX-512 VNNI). Fails the test on any other error. */
int tu_serve_way(serve_model_t *sm, const model_t *m, int way);
#endif
