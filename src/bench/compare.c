/* compare.c - `recd-bench compare`: recd's serving kernel on given query
 * vectors, for the side-by-side comparison with numpy and FAISS
 * (bench/compare drives it; bench/README.md has the figures).
 *
 * The peers are handed the same item matrix (read from the same model file)
 * and the same query vectors, so this mode takes the vectors from a file
 * instead of folding sampled histories in: what is compared is the part of
 * a RECOMMEND that every engine does, scoring the catalogue and selecting
 * the top C. It runs the daemon's own code, serve.h, with each customer's
 * vector given (serve_batch_set_vector) instead of folded in; for one
 * customer on the float pass that is
 *
 *   the scan       one sgemv (score_items) over the whole item matrix, then
 *   the finish     rec_select(): the filtered top-(C + 8) on those scores,
 *                  and the exact re-scoring (rec_score_exact) of every
 *                  candidate within the proven error bound of the C-th
 *                  score;
 *
 * and for a batch of B customers the daemon's micro-batch: one sgemm
 * (score_items_batch) and B rec_select() calls (in batches of at most
 * serve_batch_capacity() customers, as the daemon caps the float pass's
 * score buffer: 16 at 1M items). The query carries no history, filter or
 * category rule (the peers have none), so the answer is what a plain
 * RECOMMEND COUNT C gives after the fold-in.
 *
 * Per query it writes the answer (items and their exact scores) and the
 * timings to --out, one line each, so that the caller can check every
 * answer against a float64 brute force and summarise the timings together
 * with the peers'; stdout gets a short summary of its own.
 *
 * The fused int8 pass (qscore.h: the int8 copy of the items scanned with
 * the candidate collectors, then rec_select_candidates' exact re-scoring),
 * which is what the daemon runs for catalogues of 20k items and more
 * (or 2 MiB of float rows: SERVE_INT8_MIN_BYTES), is
 * timed on the same queries three ways: one customer on one thread; one
 * customer with the scan split in two parts over two threads (a persistent
 * helper thread scans part 1 while this one scans part 0, two barrier
 * waits per query, as the daemon splits a batch's scan over its workers);
 * and B customers in one batch on one thread.
 *
 * Every path times two phases: the first pass (setting the vectors, the
 * rows, the scan) and the finish (merge, exact re-scoring, the rules and
 * the copy of the answer out of the workspace).
 *
 * BLAS runs on one thread (STYLE 25), as in the daemon and as the peers are
 * run by bench/compare (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1).
 */
#include <cblas.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "recd/err.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"
#include "recd/serve.h"
#include <uv.h>

/* OpenBLAS symbol; declared here because cblas.h of some BLAS builds lacks it. */
void openblas_set_num_threads(int num_threads);

typedef struct compare_cfg {
  const char *model;
  const char *queries;   /* raw little-endian float32, rows of k floats */
  const char *out;       /* per-query answers and timings */
  uint32_t count;        /* items per answer */
  uint32_t batch;        /* customers per sgemm, 0 = single path only */
  uint32_t warmup;       /* untimed queries (and one untimed batch) first */
  uint32_t blas_threads; /* 0 = not given: one thread */
} compare_cfg_t;

void bench_compare_usage(FILE *fp) {
  fprintf(fp,
"usage: recd-bench compare --model FILE --queries FILE --out FILE [options]\n"
"\n"
"Scores the given query vectors against the model's item factors with the\n"
"daemon's serving code (serve.h), as it answers one customer (sgemv, then\n"
"rec_select: top-k and the exact re-scoring of the candidates within the error\n"
"bound), and in batches as the daemon's micro-batching does (one sgemm, then\n"
"rec_select per customer; at most 64 MB of scores per sgemm, as in the daemon).\n"
"Writes every answer and its timings to --out for bench/compare, which checks\n"
"the answers against a float64 brute force; prints medians and p99 (us).\n"
"\n"
"  --model FILE        model file written by recd-train (required)\n"
"  --queries FILE      query vectors: raw little-endian float32, one row of k\n"
"                      floats (the model's factors) per query (required)\n"
"  --out FILE          results, one text line per query or batch (required):\n"
"                        S q score_us select_us item*C score*C\n"
"                        B b batch_us sgemm_us        (then one line per query)\n"
"                        R q item*C score*C\n"
"                      and the fused int8 paths (qscore.h) on the same queries:\n"
"                        F q scan_us select_us item*C score*C   one thread\n"
"                        P q scan_us select_us item*C score*C   the scan split\n"
"                                                               over 2 threads\n"
"                        Q b batch_us scan_us      (then T lines as R lines)\n"
"  --count C           items per answer (default 10)\n"
"  --batch B           customers per sgemm, 0 = single path only (default 32)\n"
"  --warmup N          untimed queries before measuring (default 10)\n"
"  --blas-threads T    OpenBLAS threads (default 1, as in the daemon)\n"
"  -h, --help          this text\n");
}

enum { OPT_MODEL = 256, OPT_QUERIES, OPT_OUT, OPT_COUNT, OPT_BATCH, OPT_WARMUP, OPT_BLAS };

static const struct option compare_options[] = {
  {"model", required_argument, NULL, OPT_MODEL},
  {"queries", required_argument, NULL, OPT_QUERIES},
  {"out", required_argument, NULL, OPT_OUT},
  {"count", required_argument, NULL, OPT_COUNT},
  {"batch", required_argument, NULL, OPT_BATCH},
  {"warmup", required_argument, NULL, OPT_WARMUP},
  {"blas-threads", required_argument, NULL, OPT_BLAS},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/* Returns 0 to run, 1 when --help was printed, -1 on a bad command line
 * (already reported, naming the option). */
static int compare_parse(int argc, char **argv, compare_cfg_t *c) {
  static const char *cmd = "compare";
  memset(c, 0, sizeof *c);
  c->count = 10;
  c->batch = 32;
  c->warmup = 10;
  opterr = 0; /* we print our own messages, naming the option */
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, ":h", compare_options, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
    case OPT_MODEL: c->model = optarg; break;
    case OPT_QUERIES: c->queries = optarg; break;
    case OPT_OUT: c->out = optarg; break;
    case OPT_COUNT: bad = bench_opt_u32(cmd, "count", optarg, 1, 100000, &c->count); break;
    case OPT_BATCH: bad = bench_opt_u32(cmd, "batch", optarg, 0, 65536, &c->batch); break;
    case OPT_WARMUP: bad = bench_opt_u32(cmd, "warmup", optarg, 0, 100000000, &c->warmup); break;
    case OPT_BLAS: bad = bench_opt_u32(cmd, "blas-threads", optarg, 1, 1024, &c->blas_threads); break;
    case 'h': bench_compare_usage(stdout); return 1;
    default:
      return bench_opt_bad(cmd, argv, ch);
    }
    if (bad)
      return -1;
  }
  if (bench_opt_end(cmd, argc, argv) != 0)
    return -1;
  const char *missing = c->model == NULL     ? "--model"
                        : c->queries == NULL ? "--queries"
                        : c->out == NULL     ? "--out"
                                             : NULL;
  if (missing != NULL) {
    fprintf(stderr, "recd-bench compare: %s: required (see recd-bench compare --help)\n",
            missing);
    return -1;
  }
  return 0;
}

/* Reads the query file into *out (q rows of `stride` floats, 64-byte
 * aligned, the padding zero, as the daemon's customer vectors are) and sets
 * *q. The file must hold a whole number of k-float rows, at least one.
 * Returns 0, or -1 after printing why. The caller frees *out. */
static int compare_read_queries(const char *path, uint32_t k, uint32_t stride, float **out,
                                size_t *q) {
  *out = NULL;
  *q = 0;
  FILE *fp = fopen(path, "rb");
  struct stat st;
  if (fp == NULL || fstat(fileno(fp), &st) != 0) {
    perror(path);
    if (fp != NULL)
      fclose(fp);
    return -1;
  }
  const size_t row = (size_t)k * sizeof(float);
  if (st.st_size <= 0 || (size_t)st.st_size % row != 0) {
    fprintf(stderr,
            "recd-bench compare: --queries: %s holds %lld bytes, not a positive multiple of "
            "%zu (rows of k = %u float32)\n",
            path, (long long)st.st_size, row, k);
    fclose(fp);
    return -1;
  }
  const size_t n = (size_t)st.st_size / row;
  const size_t bytes = n * stride * sizeof(float);
  float *x = aligned_alloc(MODEL_ALIGN, (bytes + MODEL_ALIGN - 1) / MODEL_ALIGN * MODEL_ALIGN);
  if (x == NULL) {
    fprintf(stderr, "recd-bench compare: out of memory for %zu queries\n", n);
    fclose(fp);
    return -1;
  }
  memset(x, 0, bytes);
  for (size_t i = 0; i < n; i++) {
    if (fread(x + i * stride, sizeof(float), k, fp) != k) {
      fprintf(stderr, "recd-bench compare: --queries: %s: short read at query %zu\n", path, i);
      free(x);
      fclose(fp);
      return -1;
    }
  }
  fclose(fp);
  *out = x;
  *q = n;
  return 0;
}

/* Everything one run needs, allocated before timing starts. */
typedef struct compare_run {
  const compare_cfg_t *cfg;
  const model_t *m;
  uint32_t n, k, stride;
  const float *X;    /* queries, q x stride */
  size_t q;
  rec_ws_t ws;
  rec_query_t rq;    /* RECOMMEND COUNT C: no history, filter or rule */
  const rec_query_t **qs; /* max(batch, 1) pointers to rq: a batch's queries */
  FILE *out;
  serve_model_t fsm; /* the float pass */
  serve_model_t qsm; /* the fused int8 pass */
  size_t fcap;       /* customers per float batch at most */
  serve_batch_t **fb; /* a float batch of B, as ceil(B / fcap) batches */
  size_t nfb;
  /* the helper thread of the split single path */
  uv_thread_t helper;
  uv_barrier_t go, done;
  serve_batch_t *cur; /* the batch whose part 1 it scans */
  int helper_rc;
  int quit;
} compare_run_t;

/* Writes "items scores" of one answer; scores with 9 significant digits,
 * which round-trip a float exactly. */
static void compare_write_answer(FILE *fp, const serve_answer_t *a, uint32_t count) {
  for (uint32_t j = 0; j < count; j++)
    fprintf(fp, " %ld", j < a->n ? (long)a->items[j] : -1L);
  for (uint32_t j = 0; j < count; j++)
    fprintf(fp, " %.9g", j < a->n ? (double)a->scores[j] : 0.0);
  fputc('\n', fp);
}

/* A new batch of b customers (all asking rq) split into `parts`, or NULL
 * after printing why. */
static serve_batch_t *compare_new(compare_run_t *r, const serve_model_t *sm, size_t b,
                                  unsigned parts) {
  serve_batch_t *batch;
  const int rc = serve_batch_new(sm, r->qs, b, parts, &batch);
  if (rc != 0) {
    fprintf(stderr, "recd-bench compare: serve_batch_new: %s\n", recd_strerror(rc));
    return NULL;
  }
  return batch;
}

/* Phases 1 and 2 of a batch whose customer u is query i0 + u. */
static int compare_setup(compare_run_t *r, serve_batch_t *b, size_t i0) {
  for (size_t u = 0; u < serve_batch_size(b); u++)
    serve_batch_set_vector(b, u, r->X + (i0 + u) * r->stride);
  return serve_batch_rows(b);
}

/* Phase 4 for every row of b. */
static void compare_finish(compare_run_t *r, serve_batch_t *b) {
  for (size_t row = 0; row < serve_batch_n_rows(b); row++)
    serve_batch_finish(b, row, &r->ws);
}

/* 0, or -1 after printing the error of the first failed answer of b. */
static int compare_check(const serve_batch_t *b, const char *what) {
  for (size_t u = 0; u < serve_batch_size(b); u++) {
    const int rc = serve_batch_answer(b, u)->rc;
    if (rc != 0) {
      fprintf(stderr, "recd-bench compare: %s: %s\n", what, recd_strerror(rc));
      return -1;
    }
  }
  return 0;
}

/* One customer, as the daemon answers it on the float pass: a batch of
 * one, sgemv, then rec_select (whose first-pass error is 0: a float BLAS
 * pass, whose rounding rec_select bounds itself). Timings (first pass,
 * finish) go to t[0], t[1]; the answer is written to --out as query i when
 * write is set. */
static int compare_single(compare_run_t *r, size_t i, int write, double t[2]) {
  serve_batch_t *b = compare_new(r, &r->fsm, 1, 1);
  if (b == NULL)
    return -1;
  const double t0 = bench_now_us();
  int rc = compare_setup(r, b, i);
  if (rc == 0)
    rc = serve_batch_scan(b, 0, 0, r->n);
  const double t1 = bench_now_us();
  compare_finish(r, b);
  const double t2 = bench_now_us();
  if (compare_check(b, "float pass") != 0) {
    serve_batch_free(b);
    return -1;
  }
  t[0] = t1 - t0;
  t[1] = t2 - t1;
  if (write) {
    fprintf(r->out, "S %zu %.3f %.3f", i, t[0], t[1]);
    compare_write_answer(r->out, serve_batch_answer(b, 0), r->cfg->count);
  }
  serve_batch_free(b);
  return 0;
}

/* B customers from query i0 on, as the daemon's micro-batch scores them on
 * the float pass: one sgemm (per r->fcap customers), then rec_select per
 * customer. Timings (first pass, the B finishes) go to t[0], t[1]. The
 * answers are written after the timed region, when write is set. */
static int compare_batch(compare_run_t *r, size_t i0, size_t b, int write, double t[2]) {
  const uint32_t B = r->cfg->batch;
  int rc = 0;
  for (size_t s = 0; s < r->nfb; s++) {
    const size_t u0 = s * r->fcap, nb = B - u0 < r->fcap ? B - u0 : r->fcap;
    if ((r->fb[s] = compare_new(r, &r->fsm, nb, 1)) == NULL)
      rc = -1;
  }
  if (rc == 0) {
    const double t0 = bench_now_us();
    for (size_t s = 0; s < r->nfb && rc == 0; s++) {
      rc = compare_setup(r, r->fb[s], i0 + s * r->fcap);
      if (rc == 0)
        rc = serve_batch_scan(r->fb[s], 0, 0, r->n);
    }
    const double t1 = bench_now_us();
    for (size_t s = 0; s < r->nfb; s++)
      compare_finish(r, r->fb[s]);
    const double t2 = bench_now_us();
    for (size_t s = 0; s < r->nfb && rc == 0; s++)
      rc = compare_check(r->fb[s], "float batch");
    t[0] = t1 - t0;
    t[1] = t2 - t1;
  }
  if (rc == 0 && write) {
    fprintf(r->out, "B %zu %.3f %.3f\n", b, t[0] + t[1], t[0]);
    for (size_t s = 0; s < r->nfb; s++)
      for (size_t u = 0; u < serve_batch_size(r->fb[s]); u++) {
        fprintf(r->out, "R %zu", i0 + s * r->fcap + u);
        compare_write_answer(r->out, serve_batch_answer(r->fb[s], u), r->cfg->count);
      }
  }
  for (size_t s = 0; s < r->nfb; s++) {
    serve_batch_free(r->fb[s]);
    r->fb[s] = NULL;
  }
  return rc == 0 ? 0 : -1;
}

/* The two parts of the items of a split scan, in whole 8-item blocks. */
static uint32_t compare_half(const compare_run_t *r) {
  return (r->n / 16) * 8;
}

/* The helper thread: scans part 1 (the second half of the items) of the
 * current batch each time the main thread reaches `go`, until quit. */
static void compare_helper(void *arg) {
  compare_run_t *r = arg;
  for (;;) {
    uv_barrier_wait(&r->go);
    if (r->quit)
      return;
    r->helper_rc = serve_batch_scan(r->cur, 1, compare_half(r), r->n);
    uv_barrier_wait(&r->done);
  }
}

/* One customer through the fused int8 pass, on one thread (parts 1) or
 * with the scan split with the helper thread (parts 2). Timings (set-up +
 * scan, merge + exact re-scoring) to t[0], t[1]; the answer is written as
 * an F or P line when write is set. */
static int compare_fused(compare_run_t *r, size_t i, unsigned parts, int write, double t[2]) {
  serve_batch_t *b = compare_new(r, &r->qsm, 1, parts);
  if (b == NULL)
    return -1;
  const double t0 = bench_now_us();
  int rc = compare_setup(r, b, i);
  if (rc == 0 && parts == 1) {
    rc = serve_batch_scan(b, 0, 0, r->n);
  } else if (rc == 0) {
    r->cur = b;
    uv_barrier_wait(&r->go);
    rc = serve_batch_scan(b, 0, 0, compare_half(r));
    uv_barrier_wait(&r->done);
    if (rc == 0)
      rc = r->helper_rc;
  }
  const double t1 = bench_now_us();
  compare_finish(r, b);
  const double t2 = bench_now_us();
  if (compare_check(b, "fused path") != 0) {
    serve_batch_free(b);
    return -1;
  }
  t[0] = t1 - t0;
  t[1] = t2 - t1;
  if (write) {
    fprintf(r->out, "%c %zu %.3f %.3f", parts == 1 ? 'F' : 'P', i, t[0], t[1]);
    compare_write_answer(r->out, serve_batch_answer(b, 0), r->cfg->count);
  }
  serve_batch_free(b);
  return 0;
}

/* B customers in one fused batch on one thread, as a daemon job below
 * scan-split-items runs them. Timings (set-up + scan, the B answers). */
static int compare_fused_batch(compare_run_t *r, size_t i0, size_t b, int write, double t[2]) {
  const uint32_t B = r->cfg->batch;
  serve_batch_t *batch = compare_new(r, &r->qsm, B, 1);
  if (batch == NULL)
    return -1;
  const double t0 = bench_now_us();
  int rc = compare_setup(r, batch, i0);
  if (rc == 0)
    rc = serve_batch_scan(batch, 0, 0, r->n);
  const double t1 = bench_now_us();
  compare_finish(r, batch);
  const double t2 = bench_now_us();
  if (compare_check(batch, "fused batch") != 0) {
    serve_batch_free(batch);
    return -1;
  }
  t[0] = t1 - t0;
  t[1] = t2 - t1;
  if (write) {
    fprintf(r->out, "Q %zu %.3f %.3f\n", b, t[0] + t[1], t[0]);
    for (uint32_t u = 0; u < B; u++) {
      fprintf(r->out, "T %zu", i0 + u);
      compare_write_answer(r->out, serve_batch_answer(batch, u), r->cfg->count);
    }
  }
  serve_batch_free(batch);
  return 0;
}

/* Summary of n (score, select) pairs: column col, or their sum when
 * col < 0, each divided by div (customers per sample). v is scratch of n
 * doubles. */
static void compare_summarize(const double *t, size_t n, int col, double div, double *v,
                              bench_summary_t *s) {
  for (size_t i = 0; i < n; i++)
    v[i] = (col < 0 ? t[2 * i] + t[2 * i + 1] : t[2 * i + (size_t)col]) / div;
  bench_summarize(v, n, s);
}

/* Prints the summary of one path: end to end, its two parts, and the rate
 * at which the first pass read its `bytes` of item factors (once per
 * sample). */
static void compare_report(const char *title, const char *names[2], const double *t, size_t n,
                           uint32_t per, double *v, double bytes) {
  bench_summary_t s[3];
  compare_summarize(t, n, -1, per, v, &s[0]);
  compare_summarize(t, n, 0, per, v, &s[1]);
  compare_summarize(t, n, 1, per, v, &s[2]);
  printf("%s:\n", title);
  bench_print_header(stdout, per > 1 ? "microseconds per customer" : "microseconds");
  bench_print_row(stdout, "end-to-end", &s[0]);
  bench_print_row(stdout, names[0], &s[1]);
  bench_print_row(stdout, names[1], &s[2]);
  printf("  first pass reads %.1f MB of item factors per %s: %.1f GB/s at the median\n",
         bytes / 1e6, per > 1 ? "batch" : "customer", bytes / (s[1].median * per * 1e3));
}

/* The fused paths: single on one thread (tf, 2 q doubles), split over
 * two threads (tp, 2 q), batched (tq, 2 (q / B) + 2). 0 or -1. */
static int compare_measure_fused(compare_run_t *r, double *tf, double *tp, double *tq) {
  const compare_cfg_t *c = r->cfg;
  const size_t warm = c->warmup < r->q ? c->warmup : r->q;
  const size_t nb = c->batch > 0 ? r->q / c->batch : 0;
  double t[2];
  for (unsigned parts = 1; parts <= 2; parts++) {
    for (size_t i = 0; i < warm; i++)
      if (compare_fused(r, i, parts, 0, t) != 0)
        return -1;
    for (size_t i = 0; i < r->q; i++)
      if (compare_fused(r, i, parts, 1, (parts == 1 ? tf : tp) + 2 * i) != 0)
        return -1;
  }
  if (nb > 0 && warm > 0 && compare_fused_batch(r, 0, 0, 0, t) != 0)
    return -1;
  for (size_t b = 0; b < nb; b++)
    if (compare_fused_batch(r, b * c->batch, b, 1, tq + 2 * b) != 0)
      return -1;
  return 0;
}

/* Runs the warm-up, the single path over every query, then the batched
 * path over every whole batch. ts holds 2 q doubles, tb 2 (q / B) + 2.
 * Returns 0 or -1 (reported). */
static int compare_measure(compare_run_t *r, double *ts, double *tb, size_t *nb) {
  const compare_cfg_t *c = r->cfg;
  const size_t warm = c->warmup < r->q ? c->warmup : r->q;
  double t[2];
  *nb = c->batch > 0 ? r->q / c->batch : 0;
  for (size_t i = 0; i < warm; i++)
    if (compare_single(r, i, 0, t) != 0)
      return -1;
  for (size_t i = 0; i < r->q; i++)
    if (compare_single(r, i, 1, ts + 2 * i) != 0)
      return -1;
  /* Two untimed batches: each batch allocates its score buffer (B x n
   * floats, as a daemon job does); glibc maps the first one and unmaps it
   * on free, raising its mmap threshold, so the second one comes from the
   * heap and faults in the pages that every later batch reuses. One
   * warm-up batch left the first timed one paying those page faults. */
  for (int w = 0; w < 2 && *nb > 0 && warm > 0; w++)
    if (compare_batch(r, 0, 0, 0, t) != 0)
      return -1;
  for (size_t b = 0; b < *nb; b++)
    if (compare_batch(r, b * c->batch, b, 1, tb + 2 * b) != 0)
      return -1;
  return 0;
}

int bench_compare_main(int argc, char **argv) {
  compare_cfg_t cfg;
  int prc = compare_parse(argc, argv, &cfg);
  if (prc != 0)
    return prc > 0 ? 0 : 2;
  openblas_set_num_threads(cfg.blas_threads ? (int)cfg.blas_threads : 1);
#ifdef M_MMAP_MAX
  /* Every batch allocates its float score buffer (B x n floats), as a
   * daemon job does. glibc maps any block above 32 MB afresh and unmaps it
   * on free, so each batch of a large catalogue paid the kernel's page
   * faults and zeroing, which cost more than the sgemm itself (10x at 600k
   * items, k = 8, on the 2-vCPU VM). Served from the heap and kept there
   * (no mmap, no trimming), the buffer is faulted in once, in the warm-up:
   * what is timed is the serving, as for the peers. */
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif

  char errbuf[RECD_ERRLEN];
  model_t *m = NULL;
  if (model_load(&m, cfg.model, errbuf) != 0) {
    fprintf(stderr, "recd-bench compare: --model: cannot load %s: %s\n", cfg.model, errbuf);
    return 1;
  }
  compare_run_t r;
  memset(&r, 0, sizeof r);
  r.cfg = &cfg;
  r.m = m;
  r.n = model_n_items(m);
  r.k = model_factors(m);
  r.stride = model_stride(m);
  r.rq.count = cfg.count;
  r.rq.personalize = 1;
  rec_ws_init(&r.ws);

  float *X = NULL;
  double *ts = NULL, *tb = NULL, *v = NULL, *tf = NULL, *tp = NULL, *tq = NULL;
  int helper = 0, have_fsm = 0, have_qsm = 0;
  const uint32_t B = cfg.batch > 0 ? cfg.batch : 1;
  size_t nb = 0;
  int rc = 1;
  if (compare_read_queries(cfg.queries, r.k, r.stride, &X, &r.q) != 0)
    goto out;
  r.X = X;
  /* Both passes forced, whatever the catalogue's size: the float one
   * (what the daemon runs below 20k items and 2 MiB of float rows, or
   * without AVX2) and the fused
   * int8 one with the CPU's best kernel. */
  serve_opts_t so;
  serve_opts_default(&so);
  so.automatic = 0;
  so.pass = SERVE_PASS_FLOAT;
  have_fsm = serve_model_init(&r.fsm, m, &so) == 0;
  so.pass = SERVE_PASS_INT8;
  have_qsm = have_fsm && serve_model_init(&r.qsm, m, &so) == 0;
  r.fcap = have_fsm ? serve_batch_capacity(&r.fsm, B) : 1;
  r.nfb = (B + r.fcap - 1) / r.fcap;
  r.qs = malloc((size_t)B * sizeof *r.qs);
  r.fb = calloc(r.nfb, sizeof *r.fb);
  ts = malloc(2 * r.q * sizeof *ts);
  tb = malloc((2 * (r.q / B) + 2) * sizeof *tb);
  v = malloc((r.q + 1) * sizeof *v);
  tf = malloc(2 * r.q * sizeof *tf);
  tp = malloc(2 * r.q * sizeof *tp);
  tq = malloc((2 * (r.q / B) + 2) * sizeof *tq);
  if (!have_qsm || r.qs == NULL || r.fb == NULL || ts == NULL || tb == NULL || v == NULL ||
      tf == NULL || tp == NULL || tq == NULL) {
    fprintf(stderr, "recd-bench compare: out of memory (the int8 copy of %u items?)\n", r.n);
    goto out;
  }
  for (uint32_t u = 0; u < B; u++)
    r.qs[u] = &r.rq;
  r.out = fopen(cfg.out, "w");
  if (r.out == NULL) {
    perror(cfg.out);
    goto out;
  }
  fprintf(r.out, "# recd-bench compare: items %u k %u stride %u queries %zu count %u batch %u\n",
          r.n, r.k, r.stride, r.q, cfg.count, cfg.batch);

  printf("recd-bench compare: %s: %u items, k=%u (stride %u); %zu queries from %s\n", cfg.model,
         r.n, r.k, r.stride, r.q, cfg.queries);
  printf("  top %u, %u warm-up queries, BLAS threads %u\n\n", cfg.count, cfg.warmup,
         cfg.blas_threads ? cfg.blas_threads : 1);
  if (compare_measure(&r, ts, tb, &nb) != 0)
    goto out;
  if (uv_barrier_init(&r.go, 2) != 0 || uv_barrier_init(&r.done, 2) != 0 ||
      uv_thread_create(&r.helper, compare_helper, &r) != 0) {
    fprintf(stderr, "recd-bench compare: cannot start the helper thread\n");
    goto out;
  }
  helper = 1;
  if (compare_measure_fused(&r, tf, tp, tq) != 0)
    goto out;
  const char *sn[2] = {"score (sgemv)", "rec_select"};
  const double fbytes = (double)r.n * r.stride * sizeof(float);
  const double qbytes = (double)r.n * r.qsm.q.kpad;
  compare_report("one customer per call (sgemv + rec_select)", sn, ts, r.q, 1, v, fbytes);
  if (nb > 0) {
    char title[96];
    snprintf(title, sizeof title, "\nbatches of %u (sgemm + %u rec_select), %zu batches", B, B,
             nb);
    const char *bn[2] = {"score (sgemm)", "rec_select"};
    compare_report(title, bn, tb, nb, B, v, fbytes);
    if (r.nfb > 1)
      printf("  (scored as %zu sgemm of at most %zu customers: the float pass's cap of %zu MB "
             "of scores)\n",
             r.nfb, r.fcap, SERVE_FLOAT_MAX_SCORE_BYTES >> 20);
  }
  const char *fn[2] = {"int8 scan", "exact re-scoring"};
  char title[128];
  snprintf(title, sizeof title, "\nfused int8 path (%s), one customer, one thread",
           qscore_isa_name(r.qsm.isa));
  compare_report(title, fn, tf, r.q, 1, v, qbytes);
  snprintf(title, sizeof title, "\nfused int8 path (%s), one customer, scan on 2 threads",
           qscore_isa_name(r.qsm.isa));
  compare_report(title, fn, tp, r.q, 1, v, qbytes);
  if (nb > 0) {
    snprintf(title, sizeof title, "\nfused int8 path (%s), %u customers per scan, one thread",
             qscore_isa_name(r.qsm.isa), B);
    compare_report(title, fn, tq, nb, B, v, qbytes);
  }
  rc = 0;
out:
  if (helper) {
    r.quit = 1;
    uv_barrier_wait(&r.go);
    uv_thread_join(&r.helper);
    uv_barrier_destroy(&r.go);
    uv_barrier_destroy(&r.done);
  }
  if (r.out != NULL && fclose(r.out) != 0 && rc == 0) {
    perror(cfg.out);
    rc = 1;
  }
  free(X);
  free(ts);
  free(tb);
  free(v);
  free(tf);
  free(tp);
  free(tq);
  free(r.qs);
  free(r.fb);
  if (have_qsm)
    serve_model_free(&r.qsm);
  if (have_fsm)
    serve_model_free(&r.fsm);
  rec_ws_free(&r.ws);
  model_free(m);
  return rc;
}
