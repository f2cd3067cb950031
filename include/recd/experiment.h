/* experiment.h - A/B tests between models: assigning customers to
 * variants, the outcome counters, and the report with its statistics.
 *
 * Pure computation (no I/O): the daemon keeps the counters in Redis (one
 * HASH, <prefix>exp:counters, so that every replica and restart adds to
 * the same figures), reads them back with HGETALL and hands the field /
 * value pairs to exp_counters_add(); exp_report_compute() turns them into
 * the rows of EXPERIMENT REPORT, INFO, /metrics and the status page.
 *
 * Counter fields: "<variant>|<placement>|<counter>", counter one of
 * requests, impressions, clicks, carts, purchases (integers, HINCRBY) and
 * value (money, HINCRBYFLOAT). Variant and placement names are 1 to
 * EXP_NAME_MAX bytes of [A-Za-z0-9_.:-] (exp_name_valid), so '|' never
 * occurs in them. Outcomes that no impression explains are counted under
 * the customer's own variant and the placement "organic".
 *
 * Statistics, per (variant, placement), n = impressions:
 *   ctr        = clicks / n,     95% Wilson score interval
 *   conversion = purchases / n,  95% Wilson score interval
 * and against the control (the first configured variant) in the same
 * placement, for every other variant's row but the organic ones:
 *   lift       = conversion / conversion_control - 1, 95% interval from the
 *                log of the ratio of two proportions (Katz et al. 1978)
 *   p_value    = two-sided two-proportion z-test (pooled variance) of the
 *                two conversions.
 * Undefined figures (no impressions, a control with no conversion or no
 * row in that placement) are NaN; the daemon replies them as nil / JSON
 * null.
 */
#ifndef RECD_EXPERIMENT_H
#define RECD_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>

#define EXP_NAME_MAX 64
#define EXP_MAX_VARIANTS 16
#define EXP_ORGANIC "organic"
#define EXP_DEFAULT_PLACEMENT "default"
#define EXP_DEFAULT_VARIANT "default" /* the one variant without `variant` lines */

/* 1 when s[0..len) is a valid variant or placement name. */
int exp_name_valid(const char *s, size_t len);

/* The variant (index into percent[0..n)) of a customer: the first i with
 * bucket < percent[0] + ... + percent[i], where
 *   bucket = mix64(fnv1a64(salt, 0x00, user)) mod 100,
 * fnv1a64 the 64-bit FNV-1a hash of the bytes (offset basis
 * 0xcbf29ce484222325, prime 0x100000001b3) of the salt, one 0 byte and the
 * id, and mix64 the splitmix64 finalizer
 *   z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9; z = (z ^ z >> 27) * 0x94d049bb133111eb;
 *   z ^ z >> 31
 * (documented so that other systems can reproduce the split); exp_hash()
 * returns that mix64 value. percent: whole percents summing to 100 (if
 * they sum to less, the leftover buckets go to the last variant); n = 0
 * gives 0. */
uint64_t exp_hash(const char *salt, size_t slen, const char *user, size_t ulen);
unsigned exp_assign(const char *salt, size_t slen, const char *user, size_t ulen,
                    const unsigned *percent, unsigned n);

typedef enum exp_counter {
  EXP_REQUESTS = 0,
  EXP_IMPRESSIONS,
  EXP_CLICKS,
  EXP_CARTS,
  EXP_PURCHASES,
  EXP_VALUE,
  EXP_N_COUNTERS
} exp_counter_t;

/* "requests", "impressions", ... ("unknown" out of range). */
const char *exp_counter_name(exp_counter_t c);

/* Writes "<variant>|<placement>|<counter>" into buf (cap bytes, NUL
 * terminated); returns its length, or 0 when it does not fit, a name is
 * not exp_name_valid() or c is out of range (such a field would only be
 * read back as an anomaly). */
size_t exp_field(char *buf, size_t cap, const char *variant, const char *placement,
                 exp_counter_t c);

typedef struct exp_cell {
  char variant[EXP_NAME_MAX + 1];
  char placement[EXP_NAME_MAX + 1];
  double v[EXP_N_COUNTERS];
} exp_cell_t;

/* The counters read back: one cell per (variant, placement). */
typedef struct exp_counters {
  exp_cell_t *cell;
  size_t n, cap;
  uint64_t anomalies; /* fields or values that did not parse (skipped) */
  /* Private: a hash index of cell (placements are client-chosen, so
   * cells may be many). */
  size_t *slot;
  size_t n_slot;
} exp_counters_t;

void exp_counters_init(exp_counters_t *c);
void exp_counters_free(exp_counters_t *c);
/* Adds one HGETALL field / value pair (neither needs a NUL), summing into
 * the cell of its (variant, placement). Values: digits only for the
 * integer counters; for value a finite decimal >= 0 ("12.5", "1e3"), no
 * sign, blanks, inf, nan or hex. A malformed field (bad name, unknown
 * counter) or value is skipped and counted in anomalies. 0 or RECD_ENOMEM
 * (then c is unchanged). */
int exp_counters_add(exp_counters_t *c, const char *field, size_t flen, const char *value,
                     size_t vlen);

/* One row of the report. */
typedef struct exp_row {
  char variant[EXP_NAME_MAX + 1];
  char placement[EXP_NAME_MAX + 1];
  double v[EXP_N_COUNTERS];           /* the counters */
  double ctr, ctr_low, ctr_high;
  double conversion, conversion_low, conversion_high;
  int has_lift;                       /* 0 for the control and organic rows */
  double lift, lift_low, lift_high, p_value;
} exp_row_t;

typedef struct exp_report {
  exp_row_t *row;
  size_t n;
} exp_report_t;

/* Rows in this order: variants as in `variants` (the configured order; the
 * first is the control; variants found in the counters but not configured
 * any more come after, by name), then within a variant the placements by
 * name with "organic" last; names compare as bytes (strcmp). One row per
 * (variant, placement) present in c: a variant with no counters has no
 * row. has_lift for every row but the control's and the organic ones (none
 * when n_variants = 0), against the control's row of the same placement.
 * *out is empty (row NULL) when c is. 0 or RECD_ENOMEM. */
int exp_report_compute(const exp_counters_t *c, const char *const *variants, size_t n_variants,
                       exp_report_t *out);
void exp_report_free(exp_report_t *r);

/* The statistics, exposed for tests and for other callers. */
/* 95% Wilson score interval of k successes in n trials (NaN when n = 0 or
 * k is not in [0, n]). */
void exp_wilson(double k, double n, double *low, double *high);
/* Two-sided p-value of the pooled two-proportion z-test (NaN when
 * undefined: an empty arm, or both proportions 0 or both 1). */
double exp_two_proportion_p(double k1, double n1, double k2, double n2);
/* Relative lift p1/p2 - 1 of variant (k1/n1) over control (k2/n2) and its
 * 95% interval (Katz log method). lift is NaN when n1, n2 or k2 is 0; the
 * interval also when k1 is 0 (lift is then -1 but log p1 is -inf) or a k
 * exceeds its n. */
void exp_lift(double k1, double n1, double k2, double n2, double *lift, double *low,
              double *high);

/* The report as JSON: {"rows": [{"variant": ..., "placement": ..., the
 * counters, the figures (null when NaN)}, ...]}, into a malloc'ed string
 * (*len bytes, NUL terminated). NULL when out of memory. */
char *exp_report_json(const exp_report_t *r, size_t *len);

#endif
