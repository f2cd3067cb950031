/* popularity.h - the popularity baselines, and the model that serves one.
 *
 * Plain popularity ranks items by the number of distinct customers who
 * have them; recent popularity by the customers who had them in the last
 * `recent_days` before the newest interaction (ties, e.g. items nobody
 * bought lately, by plain popularity). Both are vectors y > 0 over the
 * items, so that "never worse than popularity" can ship them as a model
 * with one factor: folding any customer in gives x > 0 (the right-hand
 * side of the ALS user step is a positive sum of positive y), so the
 * daemon's exact scores x * y_i rank the catalogue by y, the customer's
 * history left out, with no serving code of its own.
 */
#ifndef RECD_TRAIN_POPULARITY_H
#define RECD_TRAIN_POPULARITY_H

#include <stdint.h>

#include "recd/als.h"
#include "recd/eval.h"
#include "recd/events.h"
#include "recd/model.h"

#define POPULARITY_RECENT_DAYS 30.0

/* Fills y[0..ev->n_items) for serves = MODEL_SERVES_POPULARITY or
 * MODEL_SERVES_RECENT_POPULARITY (the latter needs ev->has_time). Every
 * value is > 0 and the order is strict wherever the counts differ. */
int popularity_vector(const events_t *ev, uint32_t serves, double recent_days, float *y);

/* A k = 1 model of y: f->Y holds y (f->X is empty); params describe it
 * (exact Cholesky fold-in, constant lambda). 0 or RECD_ENOMEM. */
int popularity_factors(const float *y, uint32_t n_items, als_factors_t *f, params_t *p);

/* Judges popularity_vector(train, serves) on test (training items
 * excluded: train_raw is train as a matrix). 0 or a RECD_E* code with
 * errbuf set. */
int popularity_evaluate(const events_t *train, const csr_t *train_raw, const csr_t *test,
                        uint32_t serves, double recent_days, model_metrics_t *m,
                        char *errbuf);

#endif
