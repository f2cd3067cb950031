/* similar.c - `recd-bench similar`: SIMILAR's passes in-process.
 *
 * For --queries random items of the model (seeded) it times, per query,
 * the three ways recd can answer SIMILAR <item> COUNT C:
 *
 *   float   rec_similar_q: one sgemv over the float items, the cosines,
 *           the top C + 8 and the exact re-scoring (the daemon's pass
 *           below 20,000 items and 2 MiB of float rows, or
 *           without AVX2);
 *   int8    a batch of one through serve.h: the scan of the int8 copy of
 *           the normalised items with its proven bound, then the exact
 *           cosines of the candidates (the daemon's pass from 20,000
 *           items or 2 MiB of float rows, before a batch is split over the workers);
 *   int8 xB B queries in one batch, per query (the daemon under load);
 *
 * and fails (exit 1) when any answer differs from the float one, ids or
 * scores, bit for bit. BLAS runs on one thread, as in the daemon.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "recd/err.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"
#include "recd/rng.h"
#include "recd/serve.h"

void openblas_set_num_threads(int num_threads);

void bench_similar_usage(FILE *fp) {
  fprintf(fp,
"usage: recd-bench similar --model FILE [options]\n"
"\n"
"Times SIMILAR <item> COUNT C in-process on a model file, three ways: the\n"
"float pass (sgemv + exact selection), the int8 pass for one query (a batch\n"
"of one: the scan of the normalised int8 copy + exact cosines) and B queries\n"
"per int8 batch; medians, p90, p99 and max in microseconds per query. Exits\n"
"1 when any answer differs from the float pass's, ids or scores.\n"
"\n"
"  --model FILE        model file written by recd-train (required)\n"
"  --queries N         timed queries (default 1000)\n"
"  --count C           COUNT (default 10)\n"
"  --max-per-category M  MAXPERCATEGORY (default 0: none)\n"
"  --batch B           queries per int8 batch, 0 = skip (default 32)\n"
"  --warmup N          untimed queries first (default 20)\n"
"  --seed S            item sampling seed (default 1)\n"
"  -h, --help          this text\n");
}

static int similar__same(const rec_result_t *e, const serve_answer_t *a) {
  return a->rc == 0 && a->n == e->n &&
         (e->n == 0 || (memcmp(a->items, e->items, e->n * sizeof *e->items) == 0 &&
                        memcmp(a->scores, e->scores, e->n * sizeof *e->scores) == 0));
}

int bench_similar_main(int argc, char **argv) {
  static const struct option opts[] = {
    {"model", required_argument, NULL, 'm'}, {"queries", required_argument, NULL, 'q'},
    {"count", required_argument, NULL, 'c'}, {"max-per-category", required_argument, NULL, 'M'},
    {"batch", required_argument, NULL, 'b'}, {"warmup", required_argument, NULL, 'w'},
    {"seed", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  const char *cmd = "similar", *path = NULL;
  uint32_t queries = 1000, count = 10, cap = 0, batch = 32, warmup = 20;
  uint64_t seed = 1;
  int ch;
  optind = 1;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
    case 'm': path = optarg; break;
    case 'q': bad = bench_opt_u32(cmd, "queries", optarg, 1, 10000000, &queries); break;
    case 'c': bad = bench_opt_u32(cmd, "count", optarg, 1, 100000, &count); break;
    case 'M': bad = bench_opt_u32(cmd, "max-per-category", optarg, 0, 100000, &cap); break;
    case 'b': bad = bench_opt_u32(cmd, "batch", optarg, 0, 4096, &batch); break;
    case 'w': bad = bench_opt_u32(cmd, "warmup", optarg, 0, 1000000, &warmup); break;
    case 's': bad = bench_opt_u64(cmd, "seed", optarg, &seed); break;
    case 'h': bench_similar_usage(stdout); return 0;
    default:
      bench_opt_bad(cmd, argv, ch);
      return 2;
    }
    if (bad)
      return 2;
  }
  if (bench_opt_end(cmd, argc, argv) != 0)
    return 2;
  if (path == NULL) {
    fprintf(stderr, "recd-bench similar: --model is required\n");
    return 2;
  }
  openblas_set_num_threads(1);
  char err[RECD_ERRLEN];
  model_t *m;
  if (model_load(&m, path, err) != 0) {
    fprintf(stderr, "recd-bench similar: %s\n", err);
    return 1;
  }
  const uint32_t n = model_n_items(m);
  serve_opts_t so;
  serve_opts_default(&so);
  so.automatic = 0;
  so.pass = SERVE_PASS_INT8;
  serve_model_t sm;
  if (serve_model_init(&sm, m, &so) != 0) {
    fprintf(stderr, "recd-bench similar: cannot build the int8 copies\n");
    model_free(m);
    return 1;
  }
  const size_t total = (size_t)warmup + queries;
  uint32_t *items = malloc(total * sizeof *items);
  double *tf = malloc(queries * sizeof *tf), *t1 = malloc(queries * sizeof *t1);
  double *tb = malloc((queries / (batch ? batch : 1) + 1) * sizeof *tb);
  rec_result_t *ref = calloc(total, sizeof *ref);
  const rec_query_t **qv = malloc((batch ? batch : 1) * sizeof *qv);
  if (items == NULL || tf == NULL || t1 == NULL || tb == NULL || ref == NULL || qv == NULL) {
    fprintf(stderr, "recd-bench similar: out of memory\n");
    return 1;
  }
  rng_t r;
  rng_seed(&r, seed);
  for (size_t j = 0; j < total; j++)
    items[j] = (uint32_t)rng_below(&r, n);
  const rec_query_t q = {.count = count, .max_per_category = cap};
  rec_ws_t ws;
  rec_ws_init(&ws);
  size_t differ = 0, answered = 0;
  /* float, then int8 on the same item, alternating: the same drift for both */
  for (size_t j = 0; j < total; j++) {
    rec_result_t res;
    double t0 = bench_now_us();
    int rc = rec_similar_q(m, items[j], &q, &ws, &res);
    const double dt = bench_now_us() - t0;
    if (rc != 0) {
      fprintf(stderr, "recd-bench similar: out of memory\n");
      return 1;
    }
    /* a copy: res points into ws */
    ref[j].n = res.n;
    ref[j].items = malloc((res.n ? res.n : 1) * sizeof *res.items);
    ref[j].scores = malloc((res.n ? res.n : 1) * sizeof *res.scores);
    if (res.n > 0) {
      memcpy(ref[j].items, res.items, res.n * sizeof *res.items);
      memcpy(ref[j].scores, res.scores, res.n * sizeof *res.scores);
    }
    serve_answer_t a;
    t0 = bench_now_us();
    serve_similar_one(&sm, items[j], &q, &ws, &a);
    const double d1 = bench_now_us() - t0;
    differ += !similar__same(&ref[j], &a);
    answered += ref[j].n > 0;
    serve_answer_free(&a);
    if (j >= warmup) {
      tf[j - warmup] = dt;
      t1[j - warmup] = d1;
    }
  }
  size_t nb = 0;
  for (size_t j0 = warmup; batch > 0 && j0 + batch <= total; j0 += batch) {
    serve_batch_t *b;
    for (size_t t = 0; t < batch; t++)
      qv[t] = &q;
    const double t0 = bench_now_us();
    if (serve_batch_new_similar(&sm, qv, items + j0, batch, 1, &b) != 0) {
      fprintf(stderr, "recd-bench similar: out of memory\n");
      return 1;
    }
    serve_batch_run(b, &ws);
    tb[nb++] = (bench_now_us() - t0) / batch;
    for (size_t t = 0; t < batch; t++)
      differ += !similar__same(&ref[j0 + t], serve_batch_answer(b, t));
    serve_batch_free(b);
  }
  printf("recd-bench similar: %s, %u items, k = %u, first pass %s; %u queries, COUNT %u%s, "
         "%u warm-up\n", path, n, model_factors(m), serve_pass_name(&sm), queries, count,
         cap ? " MAXPERCATEGORY" : "", warmup);
  if (cap)
    printf("  MAXPERCATEGORY %u\n", cap);
  bench_print_header(stdout, "us per query");
  bench_summary_t s;
  bench_summarize(tf, queries, &s);
  bench_print_row(stdout, "float: sgemv + exact", &s);
  bench_summarize(t1, queries, &s);
  bench_print_row(stdout, "int8: one query", &s);
  if (nb > 0) {
    bench_summarize(tb, nb, &s);
    char name[48];
    snprintf(name, sizeof name, "int8: batch of %u, per query", batch);
    bench_print_row(stdout, name, &s);
  }
  printf("  answers differing from the float pass: %zu (%zu of %zu queries non-empty)\n", differ,
         answered, total);
  for (size_t j = 0; j < total; j++) {
    free(ref[j].items);
    free(ref[j].scores);
  }
  free(ref);
  free(qv);
  free(items);
  free(tf);
  free(t1);
  free(tb);
  rec_ws_free(&ws);
  serve_model_free(&sm);
  model_free(m);
  return differ ? 1 : 0;
}
