/* rng.c - the non-inline part of rng.h. */
#include "recd/rng.h"

#include <math.h>

double rng_normal(rng_t *r) {
  double u1 = rng_uniform(r), u2 = rng_uniform(r);
  if (u1 < 1e-300)
    u1 = 1e-300; /* log(0) would give -inf */
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
