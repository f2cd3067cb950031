/* bench.h - internals of recd-bench shared by its subcommands.
 *
 * recd-bench is one binary with subcommands (`recd-bench kernel ...`, later
 * `recd-bench e2e ...`); each lives in its own file and exposes one
 * bench_<name>_main(). Timing and option helpers live in stats.c so that
 * every mode reports latencies the same way.
 */
#ifndef RECD_BENCH_H
#define RECD_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Runs `recd-bench kernel`; argv[0] is "kernel". Returns the exit status. */
int bench_kernel_main(int argc, char **argv);
/* Prints the kernel mode's option list. */
void bench_kernel_usage(FILE *fp);
/* Runs `recd-bench e2e` against a running daemon; argv[0] is "e2e". */
int bench_e2e_main(int argc, char **argv);
void bench_e2e_usage(FILE *fp);
/* Runs `recd-bench compare` (argv[0] is "compare"): the serving kernel on
 * query vectors from a file, answers and timings to a file for
 * bench/compare. Returns the exit status (0, 1 failure, 2 bad usage). */
int bench_compare_main(int argc, char **argv);
void bench_compare_usage(FILE *fp);
/* Runs `recd-bench similar` (argv[0] is "similar"): SIMILAR's float and
 * int8 passes timed on a model file, their answers compared (0, 1
 * differing answers or failure, 2 bad usage). */
int bench_similar_main(int argc, char **argv);
void bench_similar_usage(FILE *fp);
/* Runs `recd-bench foldin` (argv[0] is "foldin"): foldin_solve() timed per
 * history length, optionally checked against the float64 user step (0, 1
 * failure, 2 bad usage). */
int bench_foldin_main(int argc, char **argv);
void bench_foldin_usage(FILE *fp);

/* Monotonic clock in microseconds (CLOCK_MONOTONIC: immune to wall-clock
 * steps, which a benchmark running for minutes may well see). */
double bench_now_us(void);

/* Latency summary of n samples, in the unit of the samples. */
typedef struct bench_summary {
  size_t n;
  double median, p90, p99, p999, max, mean, total;
} bench_summary_t;

/* Summarises v[0, n) (n > 0); sorts v in place. Percentiles are nearest
 * rank: the smallest sample with at least p% of the samples <= it, so that
 * p99 of 100 samples is the second largest, not an interpolation. */
void bench_summarize(double *v, size_t n, bench_summary_t *out);

/* One table row: name, then median/p90/p99/max/mean. */
void bench_print_header(FILE *fp, const char *unit);
void bench_print_row(FILE *fp, const char *name, const bench_summary_t *s);

/* Strict option values: the whole string, in [lo, hi]. On error prints
 * "recd-bench CMD: --OPT: ..." naming the option and returns -1. */
int bench_opt_u32(const char *cmd, const char *opt, const char *v, uint32_t lo, uint32_t hi,
                  uint32_t *out);
int bench_opt_u64(const char *cmd, const char *opt, const char *v, uint64_t *out);

/* The end of a getopt_long loop: bench_opt_bad() reports the option that
 * ended it (':' = its value is missing, anything else = unknown) and
 * returns -1; bench_opt_end() reports an operand left after the options
 * (-1) or returns 0. Messages name CMD and the argument. */
int bench_opt_bad(const char *cmd, char **argv, int ch);
int bench_opt_end(const char *cmd, int argc, char **argv);

#endif
