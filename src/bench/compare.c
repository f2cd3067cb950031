/* compare.c - `recd-bench compare`: recd's serving kernel on given query
 * vectors, for the side-by-side comparison with numpy and FAISS
 * (bench/compare drives it; bench/README.md has the figures).
 *
 * The peers are handed the same item matrix (read from the same model file)
 * and the same query vectors, so this mode takes the vectors from a file
 * instead of folding sampled histories in: what is compared is the part of
 * a RECOMMEND that every engine does, scoring the catalogue and selecting
 * the top C. For one customer that is exactly the daemon's path:
 *
 *   score_items()  one sgemv over the whole item matrix, then
 *   rec_select()   the filtered top-(C + 8) on those scores, and the exact
 *                  re-scoring (rec_score_exact) of every candidate within
 *                  the proven error bound of the C-th score;
 *
 * and for a batch of B customers the daemon's micro-batch path: one sgemm
 * (score_items_batch) and B rec_select() calls. The query carries no
 * history, filter or category rule (the peers have none), so rec_select()
 * does what a plain RECOMMEND COUNT C does after the fold-in.
 *
 * Per query it writes the answer (items and their exact scores) and the
 * timings to --out, one line each, so that the caller can check every
 * answer against a float64 brute force and summarise the timings together
 * with the peers'; stdout gets a short summary of its own.
 *
 * The fused int8 path (qscore.h: the int8 copy of the items scanned with
 * the candidate collector, then rec_select_candidates' exact re-scoring),
 * which is what the daemon runs for catalogues of 20k items and more, is
 * timed on the same queries three ways: one customer on one thread; one
 * customer with the scan split over two threads (a persistent helper
 * thread and two barrier waits per query, as the daemon splits a batch's
 * scan over its workers); and B customers in one scan on one thread.
 *
 * BLAS runs on one thread (STYLE 25), as in the daemon and as the peers are
 * run by bench/compare (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1).
 */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "recd/err.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"
#include "recd/score.h"
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
"Scores the given query vectors against the model's item factors exactly as\n"
"the daemon answers one customer (sgemv, then rec_select: top-k and the exact\n"
"re-scoring of the candidates within the error bound), and in batches as the\n"
"daemon's micro-batching does (one sgemm, then rec_select per customer).\n"
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
  const float *Y;
  uint32_t n, k, stride;
  float pop_scale;
  const float *X;    /* queries, q x stride */
  size_t q;
  float *scores;     /* max(batch, 1) x n */
  rec_ws_t ws;
  rec_query_t rq;    /* RECOMMEND COUNT C: no history, filter or rule */
  FILE *out;
  /* the fused int8 path */
  qmat_t qm;
  qscore_isa_t isa;
  rec_rules_t rules; /* rq's (empty) filter */
  int8_t *xq;        /* batch x qquery_bytes */
  qquery_t *qq;      /* batch */
  qsel_t *sel;       /* 2 x batch collectors */
  uint32_t *b_items; /* batch x count: a fused batch's answers ... */
  float *b_scores;   /* ... */
  size_t *b_n;       /* ... and their lengths, kept for printing */
  /* the helper thread of the split single path */
  uv_thread_t helper;
  uv_barrier_t go, done;
  int quit;
} compare_run_t;

/* Writes "items scores" of one answer; scores with 9 significant digits,
 * which round-trip a float exactly. */
static void compare_write_answer(FILE *fp, const rec_result_t *res, uint32_t count) {
  for (uint32_t j = 0; j < count; j++)
    fprintf(fp, " %ld", j < res->n ? (long)res->items[j] : -1L);
  for (uint32_t j = 0; j < count; j++)
    fprintf(fp, " %.9g", j < res->n ? (double)res->scores[j] : 0.0);
  fputc('\n', fp);
}

/* One customer, as the daemon answers it on the loop or a worker: sgemv,
 * then rec_select (first-pass error 0: a float BLAS pass, whose rounding
 * rec_select bounds itself). Timings (score, select) go to t[0], t[1]; the
 * answer is written to --out as query i when write is set. */
static int compare_single(compare_run_t *r, size_t i, int write, double t[2]) {
  const float *x = r->X + i * r->stride;
  rec_result_t res;
  const double t0 = bench_now_us();
  score_items(r->Y, r->stride, r->n, r->k, x, r->scores);
  const double t1 = bench_now_us();
  int rc = rec_select(r->m, r->pop_scale, &r->rq, r->scores, x, 0.0f, 0, &r->ws, &res);
  const double t2 = bench_now_us();
  if (rc != 0) {
    fprintf(stderr, "recd-bench compare: rec_select: %s\n", recd_strerror(rc));
    return -1;
  }
  t[0] = t1 - t0;
  t[1] = t2 - t1;
  if (write) {
    fprintf(r->out, "S %zu %.3f %.3f", i, t[0], t[1]);
    compare_write_answer(r->out, &res, r->cfg->count);
  }
  return 0;
}

/* B customers from query i0 on, as the daemon's micro-batch job scores
 * them: one sgemm, then rec_select per customer. Timings (sgemm, the B
 * selections) go to t[0], t[1]. The answers are written after the timed
 * region, when write is set (the daemon copies them out of its workspace
 * after selecting too). */
static int compare_batch(compare_run_t *r, size_t i0, size_t b, int write, double t[2]) {
  const uint32_t B = r->cfg->batch;
  const float *X = r->X + i0 * r->stride;
  rec_result_t res;
  int rc = 0;
  const double t0 = bench_now_us();
  score_items_batch(r->Y, r->stride, r->n, r->k, X, r->stride, B, r->scores, r->n);
  const double t1 = bench_now_us();
  for (uint32_t u = 0; u < B && rc == 0; u++)
    rc = rec_select(r->m, r->pop_scale, &r->rq, r->scores + (size_t)u * r->n,
                    X + (size_t)u * r->stride, 0.0f, 0, &r->ws, &res);
  const double t2 = bench_now_us();
  if (rc != 0) {
    fprintf(stderr, "recd-bench compare: rec_select: %s\n", recd_strerror(rc));
    return -1;
  }
  t[0] = t1 - t0;
  t[1] = t2 - t1;
  if (!write)
    return 0;
  fprintf(r->out, "B %zu %.3f %.3f\n", b, t[0] + t[1], t[0]);
  /* The same selections again, untimed, to print them: rec_select is a
   * pure function of (model, query, scores, x), so these are the answers
   * the timed calls gave. */
  for (uint32_t u = 0; u < B && rc == 0; u++) {
    rc = rec_select(r->m, r->pop_scale, &r->rq, r->scores + (size_t)u * r->n,
                    X + (size_t)u * r->stride, 0.0f, 0, &r->ws, &res);
    if (rc == 0) {
      fprintf(r->out, "R %zu", i0 + u);
      compare_write_answer(r->out, &res, r->cfg->count);
    }
  }
  return rc == 0 ? 0 : -1;
}

/* Collectors for b customers from query i0 on, `parts` per customer
 * (sel[p * b + u]); 0 or -1. */
static int compare_fused_setup(compare_run_t *r, size_t i0, size_t b, unsigned parts) {
  for (size_t u = 0; u < b; u++) {
    const float *x = r->X + (i0 + u) * r->stride;
    qquery_prepare(&r->qm, x, &r->qq[u]); /* its per-item bounds go with the scan */
    const float slack = rec_score_slack(r->m, x, &r->rules.f);
    for (unsigned p = 0; p < parts; p++)
      if (qsel_init(&r->sel[p * b + u], &r->rules.f, r->cfg->count, slack) != 0)
        return -1;
  }
  return 0;
}

/* Merges customer u's collectors and answers it exactly. */
static int compare_fused_answer(compare_run_t *r, size_t i, size_t u, size_t b, unsigned parts,
                                rec_result_t *res) {
  qsel_t *sel = &r->sel[u];
  int rc = 0;
  for (unsigned p = 1; p < parts && rc == 0; p++)
    rc = qsel_merge(sel, &r->sel[p * b + u]);
  if (rc == 0)
    rc = qsel_compact(sel);
  if (rc == 0)
    rc = rec_select_candidates(r->m, &r->rq, &r->rules, r->X + i * r->stride, sel->idx, sel->n,
                               0, &r->ws, res);
  for (unsigned p = 0; p < parts; p++)
    qsel_free(&r->sel[p * b + u]);
  return rc;
}

/* The two halves of the items, in whole 8-item blocks. */
static uint32_t compare_half(const compare_run_t *r) {
  return (r->qm.n / 16) * 8;
}

/* The helper thread: scans the second half for query slot 0 each time the
 * main thread reaches `go`, until quit. */
static void compare_helper(void *arg) {
  compare_run_t *r = arg;
  for (;;) {
    uv_barrier_wait(&r->go);
    if (r->quit)
      return;
    qscan(r->isa, &r->qm, compare_half(r), r->qm.n, r->qq, &r->sel[1], 1);
    uv_barrier_wait(&r->done);
  }
}

/* One customer through the fused path, on one thread (parts 1) or with
 * the scan split with the helper thread (parts 2). Timings (set-up + scan,
 * merge + exact re-scoring) to t[0], t[1]; the answer is written as an F
 * or P line when write is set. */
static int compare_fused(compare_run_t *r, size_t i, unsigned parts, int write, double t[2]) {
  rec_result_t res;
  const double t0 = bench_now_us();
  r->qq[0].xq = r->xq;
  int rc = compare_fused_setup(r, i, 1, parts);
  if (rc == 0 && parts == 1) {
    rc = qscan(r->isa, &r->qm, 0, r->qm.n, r->qq, r->sel, 1);
  } else if (rc == 0) {
    uv_barrier_wait(&r->go);
    rc = qscan(r->isa, &r->qm, 0, compare_half(r), r->qq, r->sel, 1);
    uv_barrier_wait(&r->done);
  }
  const double t1 = bench_now_us();
  if (rc == 0)
    rc = compare_fused_answer(r, i, 0, 1, parts, &res);
  const double t2 = bench_now_us();
  if (rc != 0) {
    fprintf(stderr, "recd-bench compare: fused path: %s\n", recd_strerror(rc));
    return -1;
  }
  t[0] = t1 - t0;
  t[1] = t2 - t1;
  if (write) {
    fprintf(r->out, "%c %zu %.3f %.3f", parts == 1 ? 'F' : 'P', i, t[0], t[1]);
    compare_write_answer(r->out, &res, r->cfg->count);
  }
  return 0;
}

/* B customers in one fused scan on one thread, as a daemon job below
 * scan-split-items runs them. Timings (set-up + scan, the B answers). */
static int compare_fused_batch(compare_run_t *r, size_t i0, size_t b, int write, double t[2]) {
  const uint32_t B = r->cfg->batch;
  const size_t qb = qquery_bytes(&r->qm);
  for (uint32_t u = 0; u < B; u++)
    r->qq[u].xq = r->xq + u * qb;
  const double t0 = bench_now_us();
  int rc = compare_fused_setup(r, i0, B, 1);
  if (rc == 0)
    rc = qscan(r->isa, &r->qm, 0, r->qm.n, r->qq, r->sel, B);
  const double t1 = bench_now_us();
  /* The answers, kept for printing after the timed region (rec_result_t
   * points into the workspace, which the next answer reuses). */
  uint32_t *items = r->b_items;
  float *scores = r->b_scores;
  const uint32_t C = r->cfg->count;
  for (uint32_t u = 0; u < B && rc == 0; u++) {
    rec_result_t res;
    rc = compare_fused_answer(r, i0 + u, u, B, 1, &res);
    if (rc != 0)
      break;
    r->b_n[u] = res.n < C ? res.n : C;
    if (r->b_n[u] > 0) { /* memcpy from NULL is undefined even for 0 bytes */
      memcpy(items + (size_t)u * C, res.items, r->b_n[u] * sizeof *items);
      memcpy(scores + (size_t)u * C, res.scores, r->b_n[u] * sizeof *scores);
    }
  }
  const double t2 = bench_now_us();
  if (rc != 0) {
    fprintf(stderr, "recd-bench compare: fused batch: %s\n", recd_strerror(rc));
    return -1;
  }
  t[0] = t1 - t0;
  t[1] = t2 - t1;
  if (!write)
    return 0;
  fprintf(r->out, "Q %zu %.3f %.3f\n", b, t[0] + t[1], t[0]);
  for (uint32_t u = 0; u < B; u++) {
    const rec_result_t kept = {
        .n = r->b_n[u], .items = items + (size_t)u * C, .scores = scores + (size_t)u * C};
    fprintf(r->out, "T %zu", i0 + u);
    compare_write_answer(r->out, &kept, C);
  }
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
  if (*nb > 0 && warm > 0 && compare_batch(r, 0, 0, 0, t) != 0)
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
  r.Y = model_item_factors(m);
  r.pop_scale = rec_popularity_scale(m);
  r.rq.count = cfg.count;
  r.rq.personalize = 1;
  rec_ws_init(&r.ws);

  float *X = NULL;
  double *ts = NULL, *tb = NULL, *v = NULL, *tf = NULL, *tp = NULL, *tq = NULL;
  int helper = 0;
  const uint32_t B = cfg.batch > 0 ? cfg.batch : 1;
  size_t nb = 0;
  int rc = 1;
  if (compare_read_queries(cfg.queries, r.k, r.stride, &X, &r.q) != 0)
    goto out;
  r.X = X;
  r.scores = malloc((size_t)B * r.n * sizeof *r.scores);
  ts = malloc(2 * r.q * sizeof *ts);
  tb = malloc((2 * (r.q / B) + 2) * sizeof *tb);
  v = malloc((r.q + 1) * sizeof *v);
  tf = malloc(2 * r.q * sizeof *tf);
  tp = malloc(2 * r.q * sizeof *tp);
  tq = malloc((2 * (r.q / B) + 2) * sizeof *tq);
  r.isa = qscore_isa_default();
  r.qq = calloc(B, sizeof *r.qq);
  r.sel = calloc(2 * (size_t)B, sizeof *r.sel);
  r.b_items = malloc((size_t)B * cfg.count * sizeof *r.b_items);
  r.b_scores = malloc((size_t)B * cfg.count * sizeof *r.b_scores);
  r.b_n = malloc((size_t)B * sizeof *r.b_n);
  if (r.scores == NULL || ts == NULL || tb == NULL || v == NULL || tf == NULL || tp == NULL ||
      tq == NULL || r.qq == NULL || r.sel == NULL || r.b_items == NULL ||
      r.b_scores == NULL || r.b_n == NULL || qmat_build(&r.qm, r.Y, r.stride, r.n, r.k) != 0 ||
      (r.xq = malloc((size_t)B * qquery_bytes(&r.qm))) == NULL ||
      rec_rules_init(&r.rules, m, &r.rq, 1.0f) != 0) {
    fprintf(stderr, "recd-bench compare: out of memory (--batch %u x %u items of scores?)\n", B,
            r.n);
    goto out;
  }
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
  const double qbytes = (double)r.n * r.qm.kpad;
  compare_report("one customer per call (sgemv + rec_select)", sn, ts, r.q, 1, v, fbytes);
  if (nb > 0) {
    char title[96];
    snprintf(title, sizeof title, "\nbatches of %u (sgemm + %u rec_select), %zu batches", B, B,
             nb);
    const char *bn[2] = {"score (sgemm)", "rec_select"};
    compare_report(title, bn, tb, nb, B, v, fbytes);
  }
  const char *fn[2] = {"int8 scan", "exact re-scoring"};
  char title[128];
  snprintf(title, sizeof title, "\nfused int8 path (%s), one customer, one thread",
           qscore_isa_name(r.isa));
  compare_report(title, fn, tf, r.q, 1, v, qbytes);
  snprintf(title, sizeof title, "\nfused int8 path (%s), one customer, scan on 2 threads",
           qscore_isa_name(r.isa));
  compare_report(title, fn, tp, r.q, 1, v, qbytes);
  if (nb > 0) {
    snprintf(title, sizeof title, "\nfused int8 path (%s), %u customers per scan, one thread",
             qscore_isa_name(r.isa), B);
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
  free(r.scores);
  free(ts);
  free(tb);
  free(v);
  free(tf);
  free(tp);
  free(tq);
  free(r.xq);
  free(r.qq);
  free(r.sel);
  free(r.b_items);
  free(r.b_scores);
  free(r.b_n);
  qmat_free(&r.qm);
  rec_rules_free(&r.rules);
  rec_ws_free(&r.ws);
  model_free(m);
  return rc;
}
