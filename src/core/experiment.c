/* experiment.c - A/B test assignment, outcome counters and the report with
 * its statistics (see experiment.h).
 *
 * Assignment is a pure function of (salt, customer id): FNV-1a 64 over the
 * salt, a 0 byte and the id, then the splitmix64 finalizer, mod 100. FNV
 * alone is a poor bucket source (its low bits are weakly mixed for ids
 * that differ only in their last bytes, like "u1".."u99999"); the
 * finalizer spreads every input bit over the whole word, so mod 100 is
 * uniform to within 2^64 mod 100 / 2^64. The 0 byte keeps salt "ab" with
 * id "c" apart from salt "a" with id "bc". Both steps are tiny and well
 * known, which is the point: another system (the analytics side) can
 * recompute the split from the header comment alone.
 *
 * The counters come back from one HGETALL whose field names any Redis
 * client can write, so parsing is strict and never fails the whole read:
 * a field or value that does not parse is skipped and counted. Cells are
 * found through a small open-addressing index: placements are names that
 * clients send, so the number of cells is not bounded by configuration
 * and a linear search per field would make the read quadratic.
 *
 * Statistics follow the textbook formulas with z = z_0.975:
 *   Wilson:  (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)
 *   z-test:  z = (p1 - p2) / sqrt(P(1-P)(1/n1 + 1/n2)), P pooled,
 *            p = erfc(|z| / sqrt 2)
 *   Katz:    log(p1/p2) +- z sqrt(1/k1 - 1/n1 + 1/k2 - 1/n2)
 * Undefined figures are NaN rather than 0 or a clamped guess: an empty
 * arm must read as "no data" (JSON null), not as "no effect".
 */
#include "recd/experiment.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recd/err.h"
#include "recd/reply.h"

/* z_0.975, the two-sided 95% normal quantile. */
#define EXP__Z 1.959963984540054
/* 1 / sqrt(2): M_SQRT1_2 is not C11 (nor POSIX without XSI). */
#define EXP__SQRT1_2 0.70710678118654752440
/* Longest counter value accepted. Redis writes HINCRBY results as at most
 * 20 characters and HINCRBYFLOAT results with %.17Lg (under 30); anything
 * longer was not written by a counter update. */
#define EXP__VALUE_MAX 63

#define EXP__FNV_BASIS 0xcbf29ce484222325ULL
#define EXP__FNV_PRIME 0x100000001b3ULL

static const char *const exp__counter_names[EXP_N_COUNTERS] = {
    "requests", "impressions", "clicks", "carts", "purchases", "value"};

static uint64_t exp__fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= EXP__FNV_PRIME;
  }
  return h;
}

/* The splitmix64 finalizer (Steele, Lea and Flood 2014; Java's
 * SplittableRandom.mix64). */
static uint64_t exp__mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int exp_name_valid(const char *s, size_t len) {
  if (s == NULL || len == 0 || len > EXP_NAME_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    const unsigned char ch = (unsigned char)s[i];
    /* Explicit ranges rather than isalnum(): the set must not depend on
     * the locale. */
    const int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == ':' || ch == '-';
    if (!ok)
      return 0;
  }
  return 1;
}

uint64_t exp_hash(const char *salt, size_t slen, const char *user, size_t ulen) {
  const unsigned char sep = 0;
  uint64_t h = exp__fnv(EXP__FNV_BASIS, salt, slen);
  h = exp__fnv(h, &sep, 1);
  h = exp__fnv(h, user, ulen);
  return exp__mix64(h);
}

unsigned exp_assign(const char *salt, size_t slen, const char *user, size_t ulen,
                    const unsigned *percent, unsigned n) {
  if (n == 0)
    return 0;
  const unsigned bucket = (unsigned)(exp_hash(salt, slen, user, ulen) % 100);
  /* 64-bit sum: absurd percents cannot wrap around and reorder buckets. */
  unsigned long long cum = 0;
  for (unsigned i = 0; i < n; i++) {
    cum += percent[i];
    if (bucket < cum)
      return i;
  }
  /* Percents summing to less than 100 (a configuration the daemon
   * rejects): the leftover buckets go to the last variant rather than to
   * an index out of range. */
  return n - 1;
}

const char *exp_counter_name(exp_counter_t c) {
  if ((unsigned)c >= EXP_N_COUNTERS)
    return "unknown";
  return exp__counter_names[c];
}

size_t exp_field(char *buf, size_t cap, const char *variant, const char *placement,
                 exp_counter_t c) {
  if (buf == NULL || cap == 0)
    return 0;
  buf[0] = '\0';
  if ((unsigned)c >= EXP_N_COUNTERS || variant == NULL || placement == NULL)
    return 0;
  const size_t vl = strlen(variant), pl = strlen(placement);
  /* A field that exp_counters_add() would reject is not written at all:
   * it would only ever be read back as an anomaly. */
  if (!exp_name_valid(variant, vl) || !exp_name_valid(placement, pl))
    return 0;
  const char *cn = exp__counter_names[c];
  const size_t cl = strlen(cn), len = vl + 1 + pl + 1 + cl;
  if (len >= cap)
    return 0;
  memcpy(buf, variant, vl);
  buf[vl] = '|';
  memcpy(buf + vl + 1, placement, pl);
  buf[vl + 1 + pl] = '|';
  memcpy(buf + vl + 1 + pl + 1, cn, cl);
  buf[len] = '\0';
  return len;
}

/* ---- counters ---------------------------------------------------------- */

void exp_counters_init(exp_counters_t *c) {
  memset(c, 0, sizeof *c);
}

void exp_counters_free(exp_counters_t *c) {
  free(c->cell);
  free(c->slot);
  exp_counters_init(c);
}

static uint64_t exp__key_hash(const char *v, size_t vl, const char *p, size_t pl) {
  const unsigned char sep = 0;
  uint64_t h = exp__fnv(EXP__FNV_BASIS, v, vl);
  h = exp__fnv(h, &sep, 1);
  return exp__mix64(exp__fnv(h, p, pl));
}

static int exp__cell_is(const exp_cell_t *cell, const char *v, size_t vl, const char *p,
                        size_t pl) {
  return strlen(cell->variant) == vl && memcmp(cell->variant, v, vl) == 0 &&
         strlen(cell->placement) == pl && memcmp(cell->placement, p, pl) == 0;
}

/* The index of the cell (v, p), or SIZE_MAX; *where gets the slot that
 * holds it or the empty slot where it would go (n_slot must be > 0). */
static size_t exp__find(const exp_counters_t *c, const char *v, size_t vl, const char *p,
                        size_t pl, size_t *where) {
  const size_t mask = c->n_slot - 1;
  size_t s = (size_t)exp__key_hash(v, vl, p, pl) & mask;
  /* Linear probing; the table is kept under half full, so this ends. */
  for (;; s = (s + 1) & mask) {
    const size_t k = c->slot[s];
    if (k == 0 || exp__cell_is(&c->cell[k - 1], v, vl, p, pl)) {
      if (where != NULL)
        *where = s;
      return k == 0 ? SIZE_MAX : k - 1;
    }
  }
}

/* Makes room for one more cell: the cell array and an index at most half
 * full after the insertion. Leaves c unchanged on failure. */
static int exp__reserve(exp_counters_t *c) {
  if (c->n == c->cap) {
    const size_t cap = c->cap ? c->cap * 2 : 8;
    if (cap > SIZE_MAX / sizeof *c->cell)
      return RECD_ENOMEM;
    exp_cell_t *cell = realloc(c->cell, cap * sizeof *cell);
    if (cell == NULL)
      return RECD_ENOMEM;
    c->cell = cell;
    c->cap = cap;
  }
  if ((c->n + 1) * 2 <= c->n_slot)
    return 0;
  const size_t ns = c->n_slot ? c->n_slot * 2 : 16;
  size_t *slot = calloc(ns, sizeof *slot);
  if (slot == NULL)
    return RECD_ENOMEM;
  for (size_t i = 0; i < c->n; i++) {
    const exp_cell_t *e = &c->cell[i];
    size_t s = (size_t)exp__key_hash(e->variant, strlen(e->variant), e->placement,
                                     strlen(e->placement)) &
               (ns - 1);
    while (slot[s] != 0)
      s = (s + 1) & (ns - 1);
    slot[s] = i + 1;
  }
  free(c->slot);
  c->slot = slot;
  c->n_slot = ns;
  return 0;
}

/* Parses a counter value: digits only for the integer counters (what
 * HINCRBY writes); a finite decimal >= 0 for value (what HINCRBYFLOAT
 * writes: "12.5", "1e3"). 0 or -1. */
static int exp__parse_value(const char *s, size_t len, int integer, double *out) {
  if (len == 0 || len > EXP__VALUE_MAX)
    return -1;
  if (integer) {
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
      if (s[i] < '0' || s[i] > '9')
        return -1;
      const unsigned d = (unsigned)(s[i] - '0');
      if (v > (UINT64_MAX - d) / 10)
        return -1;
      v = v * 10 + d;
    }
    *out = (double)v;
    return 0;
  }
  /* strtod alone would also take leading blanks, a sign, "inf", "nan" and
   * hex floats: allow only the characters of a plain decimal, starting
   * with a digit or '.', so that no sign (hence no negative and no -0)
   * gets through. strtod then decides whether they form a number. */
  if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '.'))
    return -1;
  char buf[EXP__VALUE_MAX + 1];
  for (size_t i = 0; i < len; i++) {
    const char ch = s[i];
    if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E' || ch == '+' ||
          ch == '-'))
      return -1;
    buf[i] = ch;
  }
  buf[len] = '\0';
  char *end;
  errno = 0;
  const double v = strtod(buf, &end);
  /* ERANGE is fine for an underflow (a tiny value is 0 money); an
   * overflow gives inf, rejected just below. */
  if (end != buf + len || !isfinite(v) || v < 0.0)
    return -1;
  *out = v;
  return 0;
}

/* Splits "<variant>|<placement>|<counter>" and checks each part. Names
 * cannot contain '|', so the first two bars split it; a third one ends up
 * in the counter name, which then matches nothing. 0 or -1. */
static int exp__parse_field(const char *f, size_t flen, size_t *vl, const char **pl_start,
                            size_t *pl, int *counter) {
  const char *b1 = memchr(f, '|', flen);
  if (b1 == NULL)
    return -1;
  *pl_start = b1 + 1;
  const char *b2 = memchr(*pl_start, '|', flen - (size_t)(*pl_start - f));
  if (b2 == NULL)
    return -1;
  *vl = (size_t)(b1 - f);
  *pl = (size_t)(b2 - *pl_start);
  if (!exp_name_valid(f, *vl) || !exp_name_valid(*pl_start, *pl))
    return -1;
  const char *cn = b2 + 1;
  const size_t cl = flen - (size_t)(cn - f);
  for (int i = 0; i < EXP_N_COUNTERS; i++)
    if (strlen(exp__counter_names[i]) == cl && memcmp(exp__counter_names[i], cn, cl) == 0) {
      *counter = i;
      return 0;
    }
  return -1;
}

int exp_counters_add(exp_counters_t *c, const char *field, size_t flen, const char *value,
                     size_t vlen) {
  size_t vl, pl;
  const char *pl_start;
  int counter;
  double v;
  if (field == NULL || value == NULL ||
      exp__parse_field(field, flen, &vl, &pl_start, &pl, &counter) != 0 ||
      exp__parse_value(value, vlen, counter != EXP_VALUE, &v) != 0) {
    c->anomalies++;
    return 0;
  }
  size_t at = SIZE_MAX, where = 0;
  if (c->n_slot > 0)
    at = exp__find(c, field, vl, pl_start, pl, &where);
  if (at == SIZE_MAX) {
    if (exp__reserve(c) != 0)
      return RECD_ENOMEM;
    /* The index may have been rebuilt: look the empty slot up again. */
    exp__find(c, field, vl, pl_start, pl, &where);
    at = c->n++;
    exp_cell_t *e = &c->cell[at];
    memset(e, 0, sizeof *e);
    memcpy(e->variant, field, vl);
    memcpy(e->placement, pl_start, pl);
    c->slot[where] = at + 1;
  }
  /* Adding, not overwriting: a HASH holds each field once, but a caller
   * may merge several reads (or several hashes) into one set of cells. */
  c->cell[at].v[counter] += v;
  return 0;
}

/* ---- statistics -------------------------------------------------------- */

void exp_wilson(double k, double n, double *low, double *high) {
  *low = *high = NAN;
  /* Also NaN when k is outside [0, n] (e.g. a customer clicking twice on
   * one impression): the interval of a proportion above 1 is not one. */
  if (!(n > 0.0) || !(k >= 0.0) || !(k <= n) || !isfinite(n))
    return;
  const double z2 = EXP__Z * EXP__Z, p = k / n;
  const double denom = 1.0 + z2 / n;
  const double center = p + z2 / (2.0 * n);
  const double half = EXP__Z * sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n));
  double lo = (center - half) / denom, hi = (center + half) / denom;
  /* At k = 0 and k = n the bounds are exactly 0 and 1; the subtraction
   * leaves a rounding residue either side, which would print as -1e-17. */
  lo = k == 0.0 ? 0.0 : lo < 0.0 ? 0.0 : lo;
  hi = k == n ? 1.0 : hi > 1.0 ? 1.0 : hi;
  *low = lo;
  *high = hi;
}

double exp_two_proportion_p(double k1, double n1, double k2, double n2) {
  if (!(n1 > 0.0) || !(n2 > 0.0) || !(k1 >= 0.0) || !(k2 >= 0.0) || !(k1 <= n1) ||
      !(k2 <= n2) || !isfinite(n1) || !isfinite(n2))
    return NAN;
  const double pool = (k1 + k2) / (n1 + n2);
  /* Pooled proportion 0 or 1: both arms all failures or all successes,
   * zero variance, no test. */
  if (!(pool > 0.0 && pool < 1.0))
    return NAN;
  const double se = sqrt(pool * (1.0 - pool) * (1.0 / n1 + 1.0 / n2));
  const double z = (k1 / n1 - k2 / n2) / se;
  /* erfc rather than 1 - erf: keeps the relative precision of small
   * p-values instead of rounding them to 0. */
  return erfc(fabs(z) * EXP__SQRT1_2);
}

void exp_lift(double k1, double n1, double k2, double n2, double *lift, double *low,
              double *high) {
  *lift = *low = *high = NAN;
  if (!(n1 > 0.0) || !(n2 > 0.0) || !(k2 > 0.0) || !(k1 >= 0.0) || !isfinite(n1) ||
      !isfinite(n2) || !isfinite(k1) || !isfinite(k2))
    return;
  const double p1 = k1 / n1, p2 = k2 / n2;
  *lift = p1 / p2 - 1.0;
  /* The interval needs log(p1): none when the variant converted no one
   * (lift is then exactly -1, but its interval reaches to +inf), nor for
   * counts that are not proportions. */
  if (!(k1 > 0.0) || !(k1 <= n1) || !(k2 <= n2))
    return;
  /* k <= n makes 1/k >= 1/n term by term (rounding is monotonic), so the
   * variance is >= 0 without clamping. */
  const double se = sqrt(1.0 / k1 - 1.0 / n1 + 1.0 / k2 - 1.0 / n2);
  const double lr = log(p1 / p2);
  *low = exp(lr - EXP__Z * se) - 1.0;
  *high = exp(lr + EXP__Z * se) - 1.0;
}

/* ---- report ------------------------------------------------------------ */

/* A cell and its variant's position: the configured index, or n_variants
 * for every unconfigured variant (which then sort by name). */
typedef struct exp__ent {
  const exp_cell_t *cell;
  size_t rank;
} exp__ent_t;

static int exp__is_organic(const char *placement) {
  return strcmp(placement, EXP_ORGANIC) == 0;
}

static int exp__ent_cmp(const void *a, const void *b) {
  const exp__ent_t *x = a, *y = b;
  if (x->rank != y->rank)
    return x->rank < y->rank ? -1 : 1;
  const int r = strcmp(x->cell->variant, y->cell->variant);
  if (r != 0)
    return r;
  const int xo = exp__is_organic(x->cell->placement), yo = exp__is_organic(y->cell->placement);
  if (xo != yo)
    return xo - yo;
  /* (variant, placement) is unique, so the order is total and qsort's
   * instability does not matter. */
  return strcmp(x->cell->placement, y->cell->placement);
}

static void exp__row_fill(exp_row_t *row, const exp_cell_t *cell, const exp_cell_t *control,
                          int has_lift) {
  memset(row, 0, sizeof *row);
  memcpy(row->variant, cell->variant, sizeof row->variant);
  memcpy(row->placement, cell->placement, sizeof row->placement);
  memcpy(row->v, cell->v, sizeof row->v);
  const double n = cell->v[EXP_IMPRESSIONS];
  const double clicks = cell->v[EXP_CLICKS], purchases = cell->v[EXP_PURCHASES];
  row->ctr = n > 0.0 ? clicks / n : NAN;
  exp_wilson(clicks, n, &row->ctr_low, &row->ctr_high);
  row->conversion = n > 0.0 ? purchases / n : NAN;
  exp_wilson(purchases, n, &row->conversion_low, &row->conversion_high);
  row->has_lift = has_lift;
  row->lift = row->lift_low = row->lift_high = row->p_value = NAN;
  if (!has_lift)
    return;
  /* No control cell in this placement: the control showed nothing there,
   * which is 0 / 0 and makes every comparison NaN. */
  const double kc = control ? control->v[EXP_PURCHASES] : 0.0;
  const double nc = control ? control->v[EXP_IMPRESSIONS] : 0.0;
  exp_lift(purchases, n, kc, nc, &row->lift, &row->lift_low, &row->lift_high);
  row->p_value = exp_two_proportion_p(purchases, n, kc, nc);
}

int exp_report_compute(const exp_counters_t *c, const char *const *variants, size_t n_variants,
                       exp_report_t *out) {
  out->row = NULL;
  out->n = 0;
  if (c->n == 0)
    return 0;
  if (c->n > SIZE_MAX / sizeof(exp_row_t))
    return RECD_ENOMEM;
  exp__ent_t *ent = malloc(c->n * sizeof *ent);
  exp_row_t *row = malloc(c->n * sizeof *row);
  if (ent == NULL || row == NULL) {
    free(ent);
    free(row);
    return RECD_ENOMEM;
  }
  for (size_t i = 0; i < c->n; i++) {
    ent[i].cell = &c->cell[i];
    ent[i].rank = n_variants;
    /* The first match: a name configured twice keeps its first place. */
    for (size_t j = 0; j < n_variants; j++)
      if (variants[j] != NULL && strcmp(variants[j], c->cell[i].variant) == 0) {
        ent[i].rank = j;
        break;
      }
  }
  qsort(ent, c->n, sizeof *ent, exp__ent_cmp);
  /* The control is the first configured variant; with none configured
   * there is nothing to compare against. */
  const char *ctl = n_variants > 0 ? variants[0] : NULL;
  const size_t ctl_len = ctl ? strlen(ctl) : 0;
  for (size_t i = 0; i < c->n; i++) {
    const exp_cell_t *cell = ent[i].cell;
    const int has_lift =
        ctl != NULL && strcmp(cell->variant, ctl) != 0 && !exp__is_organic(cell->placement);
    const exp_cell_t *control = NULL;
    if (has_lift) {
      const size_t at = exp__find(c, ctl, ctl_len, cell->placement, strlen(cell->placement),
                                  NULL);
      control = at == SIZE_MAX ? NULL : &c->cell[at];
    }
    exp__row_fill(&row[i], cell, control, has_lift);
  }
  free(ent);
  out->row = row;
  out->n = c->n;
  return 0;
}

void exp_report_free(exp_report_t *r) {
  free(r->row);
  r->row = NULL;
  r->n = 0;
}

/* ---- JSON -------------------------------------------------------------- */

/* A growing output buffer with a sticky out-of-memory flag, so that the
 * writer checks once at the end instead of after every piece. */
typedef struct exp__buf {
  char *p;
  size_t len, cap;
  int failed;
} exp__buf_t;

static void exp__put(exp__buf_t *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->cap - b->len <= n) { /* <=: keep a byte for the final NUL */
    size_t cap = b->cap;
    while (cap - b->len <= n) {
      if (cap > SIZE_MAX / 2) {
        b->failed = 1;
        return;
      }
      cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
}

static void exp__puts(exp__buf_t *b, const char *s) {
  exp__put(b, s, strlen(s));
}

/* A JSON string. Names are restricted to [A-Za-z0-9_.:-], but a row is a
 * public struct: anything else is escaped, bytes >= 0x7f as \u00XX too, so
 * the output stays valid (ASCII) JSON whatever a caller put there. */
static void exp__put_str(exp__buf_t *b, const char *s, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  exp__put(b, "\"", 1);
  /* strnlen is POSIX; bounded so an unterminated name cannot be overread. */
  const size_t n = strnlen(s, cap);
  for (size_t i = 0; i < n; i++) {
    const unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      const char esc[2] = {'\\', (char)ch};
      exp__put(b, esc, 2);
    } else if (ch < 0x20 || ch >= 0x7f) {
      const char esc[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
      exp__put(b, esc, 6);
    } else {
      exp__put(b, (const char *)&ch, 1);
    }
  }
  exp__put(b, "\"", 1);
}

/* ", "key": number-or-null; the shortest text that reads back as d. */
static void exp__put_num(exp__buf_t *b, const char *key, double d) {
  exp__puts(b, ", \"");
  exp__puts(b, key);
  exp__puts(b, "\": ");
  if (!isfinite(d)) {
    exp__puts(b, "null");
    return;
  }
  char num[REPLY_DOUBLE_LEN];
  exp__put(b, num, reply_format_double(num, d));
}

char *exp_report_json(const exp_report_t *r, size_t *len) {
  /* About 600 bytes per row; growth covers any estimate error. */
  exp__buf_t b = {.cap = 64 + (r->n < 1000000 ? r->n : 1000000) * 640};
  b.p = malloc(b.cap);
  if (b.p == NULL)
    return NULL;
  exp__puts(&b, "{\"rows\": [");
  for (size_t i = 0; i < r->n; i++) {
    const exp_row_t *row = &r->row[i];
    exp__puts(&b, i ? ", {\"variant\": " : "{\"variant\": ");
    exp__put_str(&b, row->variant, sizeof row->variant);
    exp__puts(&b, ", \"placement\": ");
    exp__put_str(&b, row->placement, sizeof row->placement);
    for (int c = 0; c < EXP_N_COUNTERS; c++)
      exp__put_num(&b, exp__counter_names[c], row->v[c]);
    exp__put_num(&b, "ctr", row->ctr);
    exp__put_num(&b, "ctr_low", row->ctr_low);
    exp__put_num(&b, "ctr_high", row->ctr_high);
    exp__put_num(&b, "conversion", row->conversion);
    exp__put_num(&b, "conversion_low", row->conversion_low);
    exp__put_num(&b, "conversion_high", row->conversion_high);
    if (row->has_lift) {
      exp__put_num(&b, "lift", row->lift);
      exp__put_num(&b, "lift_low", row->lift_low);
      exp__put_num(&b, "lift_high", row->lift_high);
      exp__put_num(&b, "p_value", row->p_value);
    }
    exp__puts(&b, "}");
  }
  exp__puts(&b, "]}");
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  b.p[b.len] = '\0';
  if (len != NULL)
    *len = b.len;
  return b.p;
}
