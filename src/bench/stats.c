/* stats.c - clocks, latency percentiles and option parsing for recd-bench. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "recd/csv.h"

double bench_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

static int bench__cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0, n): index ceil(p n / 100) - 1. */
static double bench__rank(const double *v, size_t n, double p) {
  size_t r = (size_t)ceil(p / 100.0 * (double)n);
  return v[r == 0 ? 0 : r - 1];
}

void bench_summarize(double *v, size_t n, bench_summary_t *out) {
  memset(out, 0, sizeof *out);
  out->n = n;
  if (n == 0)
    return;
  double total = 0;
  for (size_t i = 0; i < n; i++)
    total += v[i];
  qsort(v, n, sizeof *v, bench__cmp_double);
  out->median = bench__rank(v, n, 50);
  out->p90 = bench__rank(v, n, 90);
  out->p99 = bench__rank(v, n, 99);
  out->p999 = bench__rank(v, n, 99.9);
  out->max = v[n - 1];
  out->total = total;
  out->mean = total / (double)n;
}

void bench_print_header(FILE *fp, const char *unit) {
  fprintf(fp, "  %-22s %10s %10s %10s %10s %10s   (%s)\n", "phase", "median", "p90", "p99",
          "max", "mean", unit);
}

void bench_print_row(FILE *fp, const char *name, const bench_summary_t *s) {
  fprintf(fp, "  %-22s %10.2f %10.2f %10.2f %10.2f %10.2f\n", name, s->median, s->p90, s->p99,
          s->max, s->mean);
}

int bench_opt_u32(const char *cmd, const char *opt, const char *v, uint32_t lo, uint32_t hi,
                  uint32_t *out) {
  uint64_t x;
  if (csv_parse_u64(v, strlen(v), &x) != 0 || x < lo || x > hi) {
    fprintf(stderr, "recd-bench %s: --%s: expected an integer in [%u, %u], got \"%s\"\n", cmd,
            opt, lo, hi, v);
    return -1;
  }
  *out = (uint32_t)x;
  return 0;
}

int bench_opt_u64(const char *cmd, const char *opt, const char *v, uint64_t *out) {
  if (csv_parse_u64(v, strlen(v), out) != 0) {
    fprintf(stderr, "recd-bench %s: --%s: expected a non-negative integer, got \"%s\"\n", cmd,
            opt, v);
    return -1;
  }
  return 0;
}

int bench_opt_bad(const char *cmd, char **argv, int ch) {
  if (ch == ':')
    fprintf(stderr, "recd-bench %s: %s: missing value\n", cmd, argv[optind - 1]);
  else
    fprintf(stderr, "recd-bench %s: unknown option \"%s\" (see recd-bench %s --help)\n", cmd,
            argv[optind - 1], cmd);
  return -1;
}

int bench_opt_end(const char *cmd, int argc, char **argv) {
  if (optind >= argc)
    return 0;
  fprintf(stderr, "recd-bench %s: unexpected argument \"%s\"\n", cmd, argv[optind]);
  return -1;
}
