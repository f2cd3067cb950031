/* kernel.c - `recd-bench kernel`: the serving kernel's latency, in-process.
 *
 * For each simulated request it samples a history of H distinct items
 * (uniform over the catalogue, in random order like a ZSET read from Redis,
 * weights 1..5 like counted purchases), then times separately
 *
 *   fold-in   foldin_solve() with the history limit, as the daemon calls it;
 *   score     score_items(): one sgemv over all item factors;
 *   top-k     sorting the history into the exclude list (the daemon must do
 *             that too) and topk_select() of --count items;
 *
 * and their sum, end to end. Sampling is outside the timed region. The
 * batched path does the same for B users with one sgemm for the scores,
 * which is what a daemon could do with a queue of requests.
 *
 * Next to those kernels, the daemon's own answer path (serve.h, a batch of
 * one customer whose vector is the fold-in above) is timed on the same
 * queries after each first pass: the float pass (sgemv, then rec_select's
 * top-k and exact re-scoring) and the fused int8 scan with its exact
 * re-scoring; the two answers must be the same.
 *
 * BLAS runs on one thread unless --blas-threads says otherwise (STYLE 25):
 * the daemon owns its threads, and a multi-threaded sgemv on a small model
 * mostly measures thread wake-ups.
 */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "recd/err.h"
#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"
#include "recd/rng.h"
#include "recd/score.h"
#include "recd/serve.h"

/* OpenBLAS symbol; declared here because cblas.h of some BLAS builds lacks it. */
void openblas_set_num_threads(int num_threads);

typedef struct kernel_cfg {
  const char *model;
  uint32_t users;        /* timed single-user queries */
  uint32_t history;      /* H, items per sampled history */
  uint32_t limit;        /* fold-in history cap, 0 = none */
  uint32_t count;        /* items per answer */
  uint32_t batch;        /* users per sgemm, 0 = skip the batched path */
  uint32_t warmup;       /* untimed queries first (caches, page faults) */
  uint64_t seed;
  uint32_t blas_threads; /* 0 = not given: one thread */
} kernel_cfg_t;

void bench_kernel_usage(FILE *fp) {
  fprintf(fp,
"usage: recd-bench kernel --model FILE [options]\n"
"\n"
"Times the serving kernel in-process on a model file: fold-in of a sampled\n"
"history, scoring of every item (sgemv), top-k with the history excluded,\n"
"each separately and end to end, then the batched path (one sgemm for B\n"
"users). Latencies are medians, p90, p99 and max in microseconds over\n"
"--users queries (CLOCK_MONOTONIC); throughput is single-threaded.\n"
"\n"
"  --model FILE        model file written by recd-train (required)\n"
"  --users N           timed queries (default 10000)\n"
"  --history H         items per sampled history, distinct, uniform over the\n"
"                      catalogue, in random order (default 20)\n"
"  --history-limit L   fold-in uses the L strongest items, 0 = all (default 0)\n"
"  --count C           items per answer (default 10)\n"
"  --batch B           users per batched sgemm, 0 = skip (default 32)\n"
"  --warmup N          untimed queries before measuring (default 200)\n"
"  --seed S            sampling seed (default 1)\n"
"  --blas-threads T    OpenBLAS threads (default 1, as in the daemon)\n"
"  -h, --help          this text\n");
}

enum {
  OPT_MODEL = 256, OPT_USERS, OPT_HISTORY, OPT_LIMIT, OPT_COUNT, OPT_BATCH, OPT_WARMUP,
  OPT_SEED, OPT_BLAS
};

static const struct option kernel_options[] = {
  {"model", required_argument, NULL, OPT_MODEL},
  {"users", required_argument, NULL, OPT_USERS},
  {"history", required_argument, NULL, OPT_HISTORY},
  {"history-limit", required_argument, NULL, OPT_LIMIT},
  {"count", required_argument, NULL, OPT_COUNT},
  {"batch", required_argument, NULL, OPT_BATCH},
  {"warmup", required_argument, NULL, OPT_WARMUP},
  {"seed", required_argument, NULL, OPT_SEED},
  {"blas-threads", required_argument, NULL, OPT_BLAS},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/* Returns 0 to run, 1 when --help was printed, -1 on a bad command line
 * (already reported, naming the option). */
static int kernel_parse(int argc, char **argv, kernel_cfg_t *c) {
  static const char *cmd = "kernel";
  memset(c, 0, sizeof *c);
  c->users = 10000;
  c->history = 20;
  c->count = 10;
  c->batch = 32;
  c->warmup = 200;
  c->seed = 1;
  opterr = 0; /* we print our own messages, naming the option */
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, ":h", kernel_options, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
    case OPT_MODEL: c->model = optarg; break;
    case OPT_USERS: bad = bench_opt_u32(cmd, "users", optarg, 1, 100000000, &c->users); break;
    case OPT_HISTORY: bad = bench_opt_u32(cmd, "history", optarg, 0, 10000000, &c->history); break;
    case OPT_LIMIT: bad = bench_opt_u32(cmd, "history-limit", optarg, 0, 10000000, &c->limit); break;
    case OPT_COUNT: bad = bench_opt_u32(cmd, "count", optarg, 1, 100000, &c->count); break;
    case OPT_BATCH: bad = bench_opt_u32(cmd, "batch", optarg, 0, 65536, &c->batch); break;
    case OPT_WARMUP: bad = bench_opt_u32(cmd, "warmup", optarg, 0, 100000000, &c->warmup); break;
    case OPT_SEED: bad = bench_opt_u64(cmd, "seed", optarg, &c->seed); break;
    case OPT_BLAS: bad = bench_opt_u32(cmd, "blas-threads", optarg, 1, 1024, &c->blas_threads); break;
    case 'h': bench_kernel_usage(stdout); return 1;
    default:
      return bench_opt_bad(cmd, argv, ch);
    }
    if (bad)
      return -1;
  }
  if (bench_opt_end(cmd, argc, argv) != 0)
    return -1;
  if (c->model == NULL) {
    fprintf(stderr, "recd-bench kernel: --model: required (a file written by recd-train)\n");
    return -1;
  }
  return 0;
}

/* Everything one run needs, allocated once before timing starts. */
typedef struct kernel_run {
  const kernel_cfg_t *cfg;
  const model_t *m;
  const float *Y, *G;
  const params_t *p;
  uint32_t n, k, stride;
  rng_t rng;
  uint8_t *mark;        /* n flags for distinct sampling, all 0 between samples */
  uint32_t *hist;       /* batch x H item indices */
  float *w;             /* batch x H weights */
  uint32_t *ex;         /* H, sorted exclude list */
  float *x;             /* batch x stride user vectors */
  float *scores;        /* batch x n */
  uint32_t *idx;        /* count */
  float *top;           /* count */
  foldin_ws_t ws;
  double *t[4];         /* per-sample timings: fold-in, score, top-k, total */
  /* The daemon's answer path on the same queries (serve.h: filters,
   * top-k, exact re-scoring of the candidates) after the float pass and
   * after the fused int8 pass; and the int8 pass's dense scores alone */
  serve_model_t fsm, qsm;
  int have_fsm, have_qsm;
  int8_t *qx;
  float *qscores;
  rec_ws_t rws;
  double *d[3];         /* float pass + select, dense int8 pass, fused int8 scan + select */
  uint64_t differ;      /* queries whose two answers differ (must stay 0) */
} kernel_run_t;

/* H distinct items in random order: Floyd's sampling gives the set in
 * O(H) with the mark array, a Fisher-Yates shuffle gives the order. */
static void kernel_sample(kernel_run_t *r, uint32_t *items, float *w) {
  const uint32_t n = r->n, H = r->cfg->history;
  for (uint32_t j = n - H, h = 0; j < n; j++, h++) {
    uint32_t t = (uint32_t)rng_below(&r->rng, (uint64_t)j + 1);
    if (r->mark[t])
      t = j;
    r->mark[t] = 1;
    items[h] = t;
  }
  for (uint32_t h = H; h > 1; h--) {
    uint32_t s = (uint32_t)rng_below(&r->rng, h);
    uint32_t v = items[h - 1];
    items[h - 1] = items[s];
    items[s] = v;
  }
  for (uint32_t h = 0; h < H; h++) {
    r->mark[items[h]] = 0;
    w[h] = (float)(1 + rng_below(&r->rng, 5));
  }
}

static int kernel_cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* The daemon's exclude list: the history, sorted (topk_select walks it with
 * a cursor). Insertion sort for short histories, where qsort's call
 * overhead dominates. */
static void kernel_sort_history(uint32_t *ex, const uint32_t *items, uint32_t H) {
  memcpy(ex, items, (size_t)H * sizeof *ex);
  if (H > 32) {
    qsort(ex, H, sizeof *ex, kernel_cmp_u32);
    return;
  }
  for (uint32_t i = 1; i < H; i++) {
    uint32_t v = ex[i], j = i;
    for (; j > 0 && ex[j - 1] > v; j--)
      ex[j] = ex[j - 1];
    ex[j] = v;
  }
}

static volatile uint64_t kernel_sink; /* keeps results observable */

/* Every phase of a batch of one on this thread, with the customer's
 * vector given (the answer, or its error, is the batch's). */
static void kernel_serve(serve_batch_t *b, const float *x, rec_ws_t *ws) {
  serve_batch_set_vector(b, 0, x);
  if (serve_batch_rows(b) != 0)
    return; /* the row already carries the error */
  (void)serve_batch_scan(b, 0, 0, serve_batch_n_items(b)); /* a failure fails the row */
  for (size_t row = 0; row < serve_batch_n_rows(b); row++)
    serve_batch_finish(b, row, ws);
}

/* One single-user query; timings into r->t[*][slot] when slot >= 0. */
static int kernel_query(kernel_run_t *r, long slot) {
  const kernel_cfg_t *c = r->cfg;
  kernel_sample(r, r->hist, r->w);
  const double t0 = bench_now_us();
  int rc = foldin_solve(r->Y, r->stride, r->G, r->p, r->hist, r->w, c->history, c->limit, r->x,
                        NULL, &r->ws);
  const double t1 = bench_now_us();
  score_items(r->Y, r->stride, r->n, r->k, r->x, r->scores);
  const double t2 = bench_now_us();
  kernel_sort_history(r->ex, r->hist, c->history);
  topk_filter_t f = {.exclude = r->ex, .n_exclude = c->history};
  size_t got = topk_select(r->scores, r->n, &f, c->count, r->idx, r->top);
  const double t3 = bench_now_us();
  if (rc != 0) {
    fprintf(stderr, "recd-bench kernel: fold-in failed: %s\n", recd_strerror(rc));
    return -1;
  }
  kernel_sink += got ? r->idx[0] : 0;
  if (slot >= 0) {
    r->t[0][slot] = t1 - t0;
    r->t[1][slot] = t2 - t1;
    r->t[2][slot] = t3 - t2;
    r->t[3][slot] = t3 - t0;
  }
  /* The daemon's path, both ways, on this query: a batch of one whose
   * vector is the fold-in above (created outside the timed regions). */
  rec_query_t q = {.hist = r->hist, .hist_w = r->w, .n_hist = c->history, .personalize = 1,
                   .exclude_history = 1, .count = c->count};
  const rec_query_t *qs[1] = {&q};
  serve_batch_t *fb = NULL, *qb = NULL;
  int rs = serve_batch_new(&r->fsm, qs, 1, 1, &fb);
  if (rs == 0)
    rs = serve_batch_new(&r->qsm, qs, 1, 1, &qb);
  double u[4] = {0, 0, 0, 0};
  if (rs == 0) {
    u[0] = bench_now_us();
    kernel_serve(fb, r->x, &r->rws);
    u[1] = bench_now_us();
    float err = qscore_items(&r->qsm.q, r->x, r->qscores, r->qx);
    kernel_sink += err > 0;
    u[2] = bench_now_us();
    kernel_serve(qb, r->x, &r->rws);
    u[3] = bench_now_us();
  }
  const serve_answer_t *a = rs == 0 ? serve_batch_answer(fb, 0) : NULL;
  const serve_answer_t *b = rs == 0 ? serve_batch_answer(qb, 0) : NULL;
  if (rs == 0)
    rs = a->rc != 0 ? a->rc : b->rc;
  if (rs == 0)
    r->differ += b->n != a->n || memcmp(b->items, a->items, a->n * sizeof *a->items) != 0;
  serve_batch_free(fb);
  serve_batch_free(qb);
  if (rs != 0) {
    fprintf(stderr, "recd-bench kernel: serving failed: %s\n", recd_strerror(rs));
    return -1;
  }
  if (slot >= 0) {
    r->d[0][slot] = u[1] - u[0];
    r->d[1][slot] = u[2] - u[1];
    r->d[2][slot] = u[3] - u[2];
  }
  return 0;
}

/* One batch of B users: B fold-ins, one sgemm, B top-k selections. */
static int kernel_batch(kernel_run_t *r, long slot) {
  const kernel_cfg_t *c = r->cfg;
  const uint32_t B = c->batch, H = c->history;
  for (uint32_t u = 0; u < B; u++)
    kernel_sample(r, r->hist + (size_t)u * H, r->w + (size_t)u * H);
  const double t0 = bench_now_us();
  int rc = 0;
  for (uint32_t u = 0; u < B && rc == 0; u++)
    rc = foldin_solve(r->Y, r->stride, r->G, r->p, r->hist + (size_t)u * H, r->w + (size_t)u * H,
                      H, c->limit, r->x + (size_t)u * r->stride, NULL, &r->ws);
  const double t1 = bench_now_us();
  score_items_batch(r->Y, r->stride, r->n, r->k, r->x, r->stride, B, r->scores, r->n);
  const double t2 = bench_now_us();
  for (uint32_t u = 0; u < B; u++) {
    kernel_sort_history(r->ex, r->hist + (size_t)u * H, H);
    topk_filter_t f = {.exclude = r->ex, .n_exclude = H};
    size_t got = topk_select(r->scores + (size_t)u * r->n, r->n, &f, c->count, r->idx, r->top);
    kernel_sink += got ? r->idx[0] : 0;
  }
  const double t3 = bench_now_us();
  if (rc != 0) {
    fprintf(stderr, "recd-bench kernel: fold-in failed: %s\n", recd_strerror(rc));
    return -1;
  }
  if (slot >= 0) {
    r->t[0][slot] = t1 - t0;
    r->t[1][slot] = t2 - t1;
    r->t[2][slot] = t3 - t2;
    r->t[3][slot] = t3 - t0;
  }
  return 0;
}

static void kernel_report(kernel_run_t *r, size_t n, const char *names[4], uint32_t per) {
  bench_summary_t s[4];
  for (int i = 0; i < 4; i++)
    bench_summarize(r->t[i], n, &s[i]);
  bench_print_header(stdout, per > 1 ? "microseconds per batch" : "microseconds");
  for (int i = 0; i < 4; i++)
    bench_print_row(stdout, names[i], &s[i]);
  const double qps = (double)n * per / (s[3].total * 1e-6);
  if (per > 1)
    printf("  per user: %.2f us (median end-to-end / %u); throughput %.0f queries/s\n",
           s[3].median / per, per, qps);
  else
    printf("  throughput: %.0f queries/s (1 thread, back to back)\n", qps);
  /* sgemv reads all of Y once per user, so its bandwidth says whether
   * scoring is memory-bound (it is once Y outgrows the caches); sgemm
   * reads Y once per batch and is judged by its arithmetic rate. */
  const double bytes = (double)r->n * r->stride * sizeof(float);
  if (per > 1)
    printf("  sgemm: %.1f GFLOP/s at the median\n",
           2.0 * r->n * r->k * per / (s[1].median * 1e3));
  else
    printf("  sgemv reads %.1f MB of item factors: %.1f GB/s at the median\n", bytes / 1e6,
           bytes / (s[1].median * 1e3));
}

static void kernel_free(kernel_run_t *r) {
  free(r->mark);
  free(r->hist);
  free(r->w);
  free(r->ex);
  free(r->x);
  free(r->scores);
  free(r->idx);
  free(r->top);
  for (int i = 0; i < 4; i++)
    free(r->t[i]);
  for (int i = 0; i < 3; i++)
    free(r->d[i]);
  free(r->qx);
  free(r->qscores);
  if (r->have_fsm)
    serve_model_free(&r->fsm);
  if (r->have_qsm)
    serve_model_free(&r->qsm);
  rec_ws_free(&r->rws);
  foldin_ws_free(&r->ws);
}

int bench_kernel_main(int argc, char **argv) {
  kernel_cfg_t cfg;
  int prc = kernel_parse(argc, argv, &cfg);
  if (prc != 0)
    return prc > 0 ? 0 : 2;
  openblas_set_num_threads(cfg.blas_threads ? (int)cfg.blas_threads : 1);

  char errbuf[RECD_ERRLEN];
  model_t *m = NULL;
  if (model_load(&m, cfg.model, errbuf) != 0) {
    fprintf(stderr, "recd-bench kernel: --model: cannot load %s: %s\n", cfg.model, errbuf);
    return 1;
  }
  kernel_run_t r;
  memset(&r, 0, sizeof r);
  r.cfg = &cfg;
  r.m = m;
  r.n = model_n_items(m);
  r.k = model_factors(m);
  r.stride = model_stride(m);
  r.Y = model_item_factors(m);
  r.G = model_gram(m);
  r.p = model_params(m);
  rng_seed(&r.rng, cfg.seed);
  if (cfg.history > r.n) {
    fprintf(stderr, "recd-bench kernel: --history: %u exceeds the model's %u items\n",
            cfg.history, r.n);
    model_free(m);
    return 2;
  }
  const uint32_t B = cfg.batch > 0 ? cfg.batch : 1;
  const size_t nbatches = cfg.batch > 0 ? (cfg.users / cfg.batch > 0 ? cfg.users / cfg.batch : 1) : 0;
  const size_t nt = cfg.users > nbatches ? cfg.users : nbatches;
  r.mark = calloc(r.n, 1);
  r.hist = malloc(((size_t)B * cfg.history + 1) * sizeof *r.hist);
  r.w = malloc(((size_t)B * cfg.history + 1) * sizeof *r.w);
  r.ex = malloc(((size_t)cfg.history + 1) * sizeof *r.ex);
  r.x = calloc((size_t)B * r.stride, sizeof *r.x);
  r.scores = malloc((size_t)B * r.n * sizeof *r.scores);
  r.idx = malloc((size_t)cfg.count * sizeof *r.idx);
  r.top = malloc((size_t)cfg.count * sizeof *r.top);
  int ok = r.mark && r.hist && r.w && r.ex && r.x && r.scores && r.idx && r.top;
  for (int i = 0; i < 4; i++)
    ok &= (r.t[i] = malloc(nt * sizeof *r.t[i])) != NULL;
  for (int i = 0; i < 3; i++)
    ok &= (r.d[i] = malloc(nt * sizeof *r.d[i])) != NULL;
  rec_ws_init(&r.rws);
  /* Both passes forced, whatever the catalogue's size. */
  serve_opts_t so;
  serve_opts_default(&so);
  so.automatic = 0;
  so.pass = SERVE_PASS_FLOAT;
  ok &= r.have_fsm = serve_model_init(&r.fsm, m, &so) == 0;
  so.pass = SERVE_PASS_INT8;
  ok &= r.have_qsm = serve_model_init(&r.qsm, m, &so) == 0;
  ok &= r.have_qsm && (r.qx = malloc(qquery_bytes(&r.qsm.q))) != NULL &&
        (r.qscores = malloc((size_t)r.n * sizeof(float))) != NULL;
  if (!ok || foldin_ws_init(&r.ws, r.k) != 0) {
    fprintf(stderr, "recd-bench kernel: out of memory (--batch %u x %u items of scores?)\n", B,
            r.n);
    kernel_free(&r);
    model_free(m);
    return 1;
  }

  printf("recd-bench kernel: %s: %u items, k=%u (stride %u), %s confidence\n", cfg.model, r.n,
         r.k, r.stride, r.p->conf_mode == PARAMS_CONF_LOG ? "log" : "linear");
  printf("  %u queries after %u warm-up, history %u (limit %u), count %u, BLAS threads %u\n\n",
         cfg.users, cfg.warmup, cfg.history, cfg.limit, cfg.count,
         cfg.blas_threads ? cfg.blas_threads : 1);

  int rc = 0;
  for (uint32_t i = 0; i < cfg.warmup && rc == 0; i++)
    rc = kernel_query(&r, -1);
  for (uint32_t i = 0; i < cfg.users && rc == 0; i++)
    rc = kernel_query(&r, (long)i);
  if (rc == 0) {
    const char *names[4] = {"fold-in", "score (sgemv)", "top-k", "end-to-end"};
    printf("single user:\n");
    kernel_report(&r, cfg.users, names, 1);
    /* The daemon's answer path after each first pass, side by side. */
    bench_summary_t d[3];
    for (int i = 0; i < 3; i++)
      bench_summarize(r.d[i], cfg.users, &d[i]);
    printf("\ndaemon answer path (rec_select: top-k + exact re-scoring), same queries:\n");
    bench_print_header(stdout, "microseconds");
    bench_print_row(stdout, "sgemv + select", &d[0]);
    bench_print_row(stdout, "int8 dense pass", &d[1]);
    char fused[64];
    snprintf(fused, sizeof fused, "fused int8 scan (%s)", qscore_isa_name(r.qsm.isa));
    bench_print_row(stdout, fused, &d[2]);
    printf("  fused/sgemv path: %.2fx at the median; answers differing: %llu (must be 0)\n",
           d[2].median / d[0].median, (unsigned long long)r.differ);
    if (r.differ != 0)
      rc = -1;
  }
  if (rc == 0 && cfg.batch > 0) {
    const uint32_t wb = cfg.warmup / B > 0 ? cfg.warmup / B : 1;
    for (uint32_t i = 0; i < wb && rc == 0; i++)
      rc = kernel_batch(&r, -1);
    for (size_t i = 0; i < nbatches && rc == 0; i++)
      rc = kernel_batch(&r, (long)i);
    if (rc == 0) {
      char n0[32], n2[32];
      snprintf(n0, sizeof n0, "fold-in x%u", B);
      snprintf(n2, sizeof n2, "top-k x%u", B);
      const char *names[4] = {n0, "score (sgemm)", n2, "end-to-end"};
      printf("\nbatched, %u users per sgemm, %zu batches:\n", B, nbatches);
      kernel_report(&r, nbatches, names, B);
    }
  }
  kernel_free(&r);
  model_free(m);
  return rc == 0 ? 0 : 1;
}
