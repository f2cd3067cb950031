/* variants.h - the models being served side by side for an A/B test, and
 * which customer gets which (DESIGN.md "Experiments and outcomes").
 *
 * Each variant has its own model store (model_store.h): it loads, reloads
 * and fails on its own, so a bad file for one variant leaves every variant
 * serving. Without `variant` lines there is one variant, "default",
 * serving `model` to everyone. A customer id maps to a variant by
 * exp_assign() (experiment.h): a hash salted with `experiment-salt`, the
 * same on every replica and after every restart.
 */
#ifndef RECD_DAEMON_VARIANTS_H
#define RECD_DAEMON_VARIANTS_H

#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "model_store.h"
#include "recd/experiment.h"

typedef struct variant {
  char name[EXP_NAME_MAX + 1];
  unsigned percent;
  model_store_t *store;
} variant_t;

typedef struct variants variants_t;

/* Opens every variant's model. 0, or an error naming the variant and the
 * file in errbuf (RECD_ERRLEN); then nothing is left open. */
int variants_open(uv_loop_t *loop, const config_t *cfg, variants_t **out, char *errbuf);
void variants_free(variants_t *vs);

size_t variants_count(const variants_t *vs);
variant_t *variants_at(const variants_t *vs, size_t i);
/* The control: the first variant. */
variant_t *variants_control(const variants_t *vs);
/* By name; NULL when there is none of that name. */
variant_t *variants_find(const variants_t *vs, const char *name, size_t len);
/* The variant of a customer. */
variant_t *variants_for_user(const variants_t *vs, const char *user, size_t ulen);
/* The names, in the configured order (for exp_report_compute). */
const char *const *variants_names(const variants_t *vs);
/* The error for a variant name no variant has, into err (RECD_ERRLEN):
 * "unknown <what> '<name>' (variants: a, b, c)", the name cut to 64 bytes.
 * Returns RECD_EINVAL. */
int variants_unknown(const variants_t *vs, const char *what, const char *name, size_t len,
                     char *err);

#endif
