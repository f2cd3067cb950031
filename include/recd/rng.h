/* rng.h - small deterministic pseudo-random generator (xoshiro256**).
 *
 * Training must give the same bytes for the same seed on every machine, so
 * recd never uses rand() (implementation-defined) for anything that reaches
 * a model or an evaluation split.
 */
#ifndef RECD_RNG_H
#define RECD_RNG_H

#include <stdint.h>

typedef struct rng {
  uint64_t s[4];
} rng_t;

static inline uint64_t rng__splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Seeds the generator; any seed (including 0) gives a valid state. */
static inline void rng_seed(rng_t *r, uint64_t seed) {
  for (int i = 0; i < 4; i++)
    r->s[i] = rng__splitmix(&seed);
}

static inline uint64_t rng__rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(rng_t *r) {
  uint64_t *s = r->s;
  uint64_t result = rng__rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rng__rotl(s[3], 45);
  return result;
}

/* Uniform double in [0, 1). */
static inline double rng_uniform(rng_t *r) {
  return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the tiny bias
 * for huge n does not matter for sampling). */
static inline uint64_t rng_below(rng_t *r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Standard normal deviate (Box-Muller, one of the pair). */
double rng_normal(rng_t *r);

#endif
