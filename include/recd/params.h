/* params.h - the hyperparameters that define an implicit-feedback ALS model.
 *
 * They are stored in the model file because serving needs them: fold-in of
 * a customer at request time must be exactly the ALS user step that training
 * used, with the same confidence function and the same regularisation.
 */
#ifndef RECD_PARAMS_H
#define RECD_PARAMS_H

#include <math.h>
#include <stdint.h>

/* How an accumulated interaction weight w becomes a confidence c >= 1. */
typedef enum params_conf_mode {
  PARAMS_CONF_LINEAR = 0, /* c = 1 + alpha * w  (Hu, Koren & Volinsky 2008, eq. 2) */
  PARAMS_CONF_LOG = 1     /* c = 1 + alpha * log(1 + w / eps)           (eq. 3) */
} params_conf_mode_t;

typedef struct params {
  uint32_t factors;    /* k, latent dimensions */
  uint32_t iterations; /* ALS sweeps (one user pass + one item pass each) */
  uint32_t conf_mode;  /* params_conf_mode_t */
  uint32_t cg_steps;   /* conjugate-gradient steps per row; 0 = exact Cholesky */
  float lambda;        /* L2 regularisation base */
  float alpha;         /* confidence scale */
  float eps;           /* weight scale of the log confidence */
  float reg_exponent;  /* nu: a row with n observations gets lambda * n^nu
                          (frequency-scaled regularisation, Rendle et al.
                          2021); 0 gives the classic constant lambda */
  uint64_t seed;       /* initialisation and hold-out split */
} params_t;

/* Confidence of an accumulated weight. Weights are validated to be finite
 * and > 0 where they enter recd, so this never sees w <= 0. */
static inline float params_confidence(const params_t *p, float w) {
  if (p->conf_mode == PARAMS_CONF_LOG)
    return 1.0f + p->alpha * log1pf(w / p->eps);
  return 1.0f + p->alpha * w;
}

/* Regularisation of a row (user or item) with n observed interactions. */
static inline float params_lambda(const params_t *p, uint32_t n) {
  if (p->reg_exponent == 0.0f || n == 0)
    return p->lambda;
  return p->lambda * powf((float)n, p->reg_exponent);
}

#endif
