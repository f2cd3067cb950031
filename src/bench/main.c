/* recd-bench - benchmarks for recd.
 *
 *   recd-bench kernel --model FILE [options]   in-process serving kernel
 *   recd-bench e2e --port P [options]           requests to a running daemon
 *   recd-bench similar --model FILE [options]   SIMILAR's passes in-process
 *   recd-bench foldin --model FILE [options]    the fold-in alone, per history length
 *
 * Each mode is a subcommand with its own options, in its own file
 * (kernel.c, ...), dispatched from the table below; a new mode (the
 * end-to-end benchmark against a running daemon) is one more row.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef struct bench_cmd {
  const char *name;
  int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
  void (*usage)(FILE *fp);
  const char *summary;
} bench_cmd_t;

static const bench_cmd_t bench_cmds[] = {
  {"kernel", bench_kernel_main, bench_kernel_usage,
   "fold-in, scoring and top-k latency in-process, on a model file"},
  {"e2e", bench_e2e_main, bench_e2e_usage,
   "RECOMMEND throughput and latency against a running recd"},
  {"compare", bench_compare_main, bench_compare_usage,
   "recd's scoring + top-k on given query vectors, for bench/compare"},
  {"similar", bench_similar_main, bench_similar_usage,
   "SIMILAR in-process: the float pass against the int8 pass, same answers"},
  {"foldin", bench_foldin_main, bench_foldin_usage,
   "the fold-in alone per history length (real or random histories), checked"},
};
#define BENCH_N_CMDS (sizeof bench_cmds / sizeof *bench_cmds)

static void usage(FILE *fp) {
  fprintf(fp, "usage: recd-bench <mode> [options]\n"
              "       recd-bench <mode> --help\n\nmodes:\n");
  for (size_t i = 0; i < BENCH_N_CMDS; i++)
    fprintf(fp, "  %-10s %s\n", bench_cmds[i].name, bench_cmds[i].summary);
  fprintf(fp, "\n");
  for (size_t i = 0; i < BENCH_N_CMDS; i++)
    bench_cmds[i].usage(fp);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < BENCH_N_CMDS; i++)
    if (strcmp(argv[1], bench_cmds[i].name) == 0)
      return bench_cmds[i].run(argc - 1, argv + 1);
  fprintf(stderr, "recd-bench: unknown mode \"%s\" (see recd-bench --help)\n", argv[1]);
  return 2;
}
