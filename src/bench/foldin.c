/* foldin.c - `recd-bench foldin`: the fold-in alone, per history length.
 *
 * With --users-csv, every customer of an interactions CSV is folded in
 * from their own history (the items the model knows, weights summed as
 * Redis holds them, strongest first), in a shuffled order, three times:
 *
 *   warm-up  each history with its weights scaled by 1 + 2^-20: another
 *            history for the answers' cache, the same items for the
 *            model's eigenbasis and its cached rows (a daemon's steady
 *            state; the first solves of a model also build those);
 *   solve    each history as is: its first fold-in (an answers' cache
 *            miss, the whole solve);
 *   again    each history once more: what a customer's next page view
 *            costs (a hit when the cache kept it; checked all the same).
 *
 * Without --users-csv, --users random histories of each --lengths value
 * (distinct items uniform over the catalogue, weights 1..5), timed once
 * each after --warmup such solves: every one a miss.
 *
 * Times are medians per history-length bucket (the items used, after
 * --history-limit). With --check, every solve's vector is compared with
 * the user step solved in double precision for the same entries (LAPACK
 * dposv on the float-defined system): the largest relative error, and how
 * many histories have another top 10, 50 or 100 (rec_score_exact, ties by
 * index, history excluded) than that solution rounded to float. The
 * comparison reads only ws->order and ws->conf, so the file also builds
 * against the fold-in before the eigenbasis (bench/README.md, "The
 * fold-in", compares the two that way).
 */
#include <cblas.h>
#include <getopt.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "recd/dataset.h"
#include "recd/err.h"
#include "recd/foldin.h"
#include "recd/idmap.h"
#include "recd/model.h"
#include "recd/recommend.h"
#include "recd/rng.h"

/* OpenBLAS symbol; declared here because cblas.h of some BLAS builds lacks it. */
void openblas_set_num_threads(int num_threads);

#define FB_TOP 100
#define FB_MAX_LENGTHS 32

typedef struct fb_cfg {
  const char *model, *csv;
  uint32_t users, warmup, limit;
  uint32_t lengths[FB_MAX_LENGTHS];
  size_t n_lengths;
  uint64_t seed;
  int check;
} fb_cfg_t;

void bench_foldin_usage(FILE *fp) {
  fprintf(fp,
"usage: recd-bench foldin --model FILE [options]\n"
"\n"
"Times foldin_solve() alone, per history length: with --users-csv every\n"
"customer's own history (a first solve, then the same history again), else\n"
"random histories of the given lengths. Medians in microseconds, one thread.\n"
"\n"
"  --model FILE        model file written by recd-train (required)\n"
"  --users-csv FILE    interactions CSV (user,item,weight[,timestamp]) whose\n"
"                      customers' histories are folded in\n"
"  --lengths L,L,...   random history lengths without --users-csv\n"
"                      (1,2,5,10,20,35,50,100,200,500)\n"
"  --users N           random histories per length (200)\n"
"  --warmup N          untimed random solves first (500)\n"
"  --history-limit L   strongest items folded in, 0 = all (500, the daemon's)\n"
"  --check             compare every answer with the float64 user step (after\n"
"                      the timings with --users-csv; in between without it,\n"
"                      which then times solves on colder caches)\n"
"  --seed S            sampling seed (1)\n"
"  -h, --help          this text\n");
}

enum { OPT_MODEL = 256, OPT_CSV, OPT_LENGTHS, OPT_USERS, OPT_WARMUP, OPT_LIMIT, OPT_CHECK,
       OPT_SEED };

static int fb_parse_lengths(const char *v, fb_cfg_t *c) {
  c->n_lengths = 0;
  const char *p = v;
  while (*p != '\0') {
    char *end;
    unsigned long x = strtoul(p, &end, 10);
    if (end == p || x == 0 || x > 100000 || c->n_lengths == FB_MAX_LENGTHS ||
        (*end != ',' && *end != '\0')) {
      fprintf(stderr, "recd-bench foldin: --lengths: '%s' is not a list of up to %d lengths "
                      "in 1..100000\n", v, FB_MAX_LENGTHS);
      return -1;
    }
    c->lengths[c->n_lengths++] = (uint32_t)x;
    p = *end == ',' ? end + 1 : end;
  }
  return c->n_lengths > 0 ? 0 : -1;
}

static int fb_parse(int argc, char **argv, fb_cfg_t *c) {
  static const char *cmd = "foldin";
  static const struct option opts[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"users-csv", required_argument, NULL, OPT_CSV},
    {"lengths", required_argument, NULL, OPT_LENGTHS},
    {"users", required_argument, NULL, OPT_USERS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"history-limit", required_argument, NULL, OPT_LIMIT},
    {"check", no_argument, NULL, OPT_CHECK},
    {"seed", required_argument, NULL, OPT_SEED},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
  };
  memset(c, 0, sizeof *c);
  c->users = 200;
  c->warmup = 500;
  c->limit = 500;
  c->seed = 1;
  fb_parse_lengths("1,2,5,10,20,35,50,100,200,500", c);
  opterr = 0;
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
    case OPT_MODEL: c->model = optarg; break;
    case OPT_CSV: c->csv = optarg; break;
    case OPT_LENGTHS: bad = fb_parse_lengths(optarg, c); break;
    case OPT_USERS: bad = bench_opt_u32(cmd, "users", optarg, 1, 10000000, &c->users); break;
    case OPT_WARMUP: bad = bench_opt_u32(cmd, "warmup", optarg, 0, 10000000, &c->warmup); break;
    case OPT_LIMIT: bad = bench_opt_u32(cmd, "history-limit", optarg, 0, 10000000, &c->limit); break;
    case OPT_CHECK: c->check = 1; break;
    case OPT_SEED: bad = bench_opt_u64(cmd, "seed", optarg, &c->seed); break;
    case 'h': bench_foldin_usage(stdout); return 1;
    default:
      return bench_opt_bad(cmd, argv, ch);
    }
    if (bad)
      return -1;
  }
  if (bench_opt_end(cmd, argc, argv) != 0)
    return -1;
  if (c->model == NULL) {
    fprintf(stderr, "recd-bench foldin: --model: required (a file written by recd-train)\n");
    return -1;
  }
  return 0;
}

/* One history: items (model indices) and weights, strongest first. */
typedef struct fb_hist {
  uint32_t *items;
  float *w;
  uint32_t n;
} fb_hist_t;

typedef struct fb_run {
  const fb_cfg_t *cfg;
  const model_t *m;
  const float *Y, *G;
  const params_t *p;
  uint32_t N, k, stride;
  foldin_ws_t ws;
  float *x, *xr;
  double *A, *b;
  uint32_t *top_a, *top_b;
  uint8_t *mark;
  double max_err;
  uint64_t checked, differ[3];
  uint64_t again_differ; /* solves of a history whose bits differ from its first */
} fb_run_t;

/* The customers of the CSV, with the items the model knows. */
static int fb_load_histories(fb_run_t *r, fb_hist_t **out, size_t *n_out) {
  dataset_t ds;
  char err[RECD_ERRLEN];
  uint64_t skipped = 0;
  if (dataset_init(&ds) != 0 ||
      dataset_read_csv(&ds, r->cfg->csv, 1, &skipped, NULL, err) != 0 ||
      dataset_finalize(&ds) != 0) {
    fprintf(stderr, "recd-bench foldin: --users-csv: %s\n", err);
    dataset_free(&ds);
    return -1;
  }
  const uint32_t nu = dataset_n_users(&ds), ni = dataset_n_items(&ds);
  int64_t *map = malloc((ni ? ni : 1) * sizeof *map);
  fb_hist_t *h = calloc(nu ? nu : 1, sizeof *h);
  if (map == NULL || h == NULL) {
    free(map);
    free(h);
    dataset_free(&ds);
    return -1;
  }
  for (uint32_t i = 0; i < ni; i++) {
    size_t len;
    const char *id = idmap_key(ds.items, i, &len);
    map[i] = model_find_item(r->m, id, len);
  }
  size_t n = 0;
  for (uint32_t u = 0; u < nu; u++) {
    const uint64_t b = ds.by_user.ptr[u], e = ds.by_user.ptr[u + 1];
    fb_hist_t *t = &h[n];
    t->items = malloc((e - b + 1) * sizeof *t->items);
    t->w = malloc((e - b + 1) * sizeof *t->w);
    if (t->items == NULL || t->w == NULL) {
      free(t->items);
      free(t->w);
      continue;
    }
    for (uint64_t j = b; j < e; j++)
      if (map[ds.by_user.idx[j]] >= 0) {
        t->items[t->n] = (uint32_t)map[ds.by_user.idx[j]];
        t->w[t->n] = ds.by_user.val[j];
        t->n++;
      }
    /* strongest first, as a ZSET read returns it */
    for (uint32_t j = 1; j < t->n; j++)
      for (uint32_t l = j; l > 0 && t->w[l] > t->w[l - 1]; l--) {
        const uint32_t ti = t->items[l];
        t->items[l] = t->items[l - 1];
        t->items[l - 1] = ti;
        const float tw = t->w[l];
        t->w[l] = t->w[l - 1];
        t->w[l - 1] = tw;
      }
    if (t->n > 0)
      n++;
    else {
      free(t->items);
      free(t->w);
      t->items = NULL;
      t->w = NULL;
    }
  }
  free(map);
  dataset_free(&ds);
  *out = h;
  *n_out = n;
  return 0;
}

typedef struct fb_ranked {
  float s;
  uint32_t i;
} fb_ranked_t;

static int fb_cmp_ranked(const void *a, const void *b) {
  const fb_ranked_t *x = a, *y = b;
  if (x->s != y->s)
    return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

/* The daemon's ranking of x (history excluded), the first FB_TOP. */
static size_t fb_top(fb_run_t *r, const float *x, const fb_hist_t *h, uint32_t *out,
                     fb_ranked_t *buf) {
  for (uint32_t j = 0; j < h->n; j++)
    r->mark[h->items[j]] = 1;
  size_t n = 0;
  for (uint32_t i = 0; i < r->N; i++)
    if (!r->mark[i])
      buf[n++] = (fb_ranked_t){rec_score_exact(x, r->Y + (size_t)i * r->stride, r->k), i};
  for (uint32_t j = 0; j < h->n; j++)
    r->mark[h->items[j]] = 0;
  qsort(buf, n, sizeof *buf, fb_cmp_ranked);
  const size_t top = n < FB_TOP ? n : FB_TOP;
  for (size_t t = 0; t < top; t++)
    out[t] = buf[t].i;
  return top;
}

/* The float64 user step for the entries the solve used, against x. */
static int fb_check(fb_run_t *r, const fb_hist_t *h, size_t used, fb_ranked_t *buf) {
  const uint32_t k = r->k;
  for (size_t i = 0; i < (size_t)k * k; i++)
    r->A[i] = r->G[i];
  memset(r->b, 0, k * sizeof *r->b);
  for (size_t j = 0; j < used; j++) {
    const float *y = r->Y + (size_t)h->items[r->ws.order[j]] * r->stride;
    const double c = r->ws.conf[j];
    for (uint32_t a = 0; a < k; a++) {
      r->b[a] += c * y[a];
      for (uint32_t d = 0; d <= a; d++)
        r->A[(size_t)a * k + d] += (c - 1.0) * y[a] * y[d];
    }
  }
  const double lam = params_lambda(r->p, (uint32_t)used);
  for (uint32_t a = 0; a < k; a++)
    r->A[(size_t)a * k + a] += lam;
  /* Row-major lower = column-major upper (see foldin.c). */
  if (LAPACKE_dposv(LAPACK_COL_MAJOR, 'U', (lapack_int)k, 1, r->A, (lapack_int)k, r->b,
                    (lapack_int)k) != 0)
    return -1;
  double err = 0, xn = 0;
  for (uint32_t a = 0; a < k; a++) {
    r->xr[a] = (float)r->b[a];
    err = fmax(err, fabs((double)r->x[a] - r->b[a]));
    xn = fmax(xn, fabs(r->b[a]));
  }
  if (xn > 0 && err / xn > r->max_err)
    r->max_err = err / xn;
  const size_t na = fb_top(r, r->xr, h, r->top_a, buf);
  const size_t nb = fb_top(r, r->x, h, r->top_b, buf);
  static const size_t tops[3] = {10, 50, FB_TOP};
  for (int t = 0; t < 3; t++) {
    const size_t upto = tops[t] < na ? tops[t] : na;
    r->differ[t] += na != nb || memcmp(r->top_a, r->top_b, upto * sizeof *r->top_a) != 0;
  }
  r->checked++;
  return 0;
}

/* Buckets of the items used. */
static const uint32_t fb_bucket_lo[] = {1, 5, 10, 20, 50, 100, 200, 350, 501, 1001};
#define FB_BUCKETS (sizeof fb_bucket_lo / sizeof *fb_bucket_lo - 1)

static size_t fb_bucket(size_t used) {
  size_t b = 0;
  while (b + 1 < FB_BUCKETS && used >= fb_bucket_lo[b + 1])
    b++;
  return b;
}

static int fb_solve(fb_run_t *r, const fb_hist_t *h, double *us, size_t *used) {
  const double t0 = bench_now_us();
  const int rc = foldin_solve(r->Y, r->stride, r->G, r->p, h->items, h->w, h->n, r->cfg->limit,
                              r->x, used, &r->ws);
  *us = bench_now_us() - t0;
  if (rc != 0)
    fprintf(stderr, "recd-bench foldin: fold-in failed: %s\n", recd_strerror(rc));
  return rc;
}

static double fb_median(double *v, size_t n) {
  bench_summary_t s;
  bench_summarize(v, n, &s);
  return s.median;
}

/* Real histories: warm-up, solve, again; a table per bucket. */
static int fb_real(fb_run_t *r, fb_hist_t *h, size_t nh, rng_t *rng, fb_ranked_t *buf) {
  size_t *order = malloc(nh * sizeof *order), *bucket = malloc(nh * sizeof *bucket);
  double *t1 = malloc(nh * sizeof *t1), *t2 = malloc(nh * sizeof *t2);
  double *v = malloc(nh * sizeof *v);
  if (!order || !bucket || !t1 || !t2 || !v) {
    free(order);
    free(bucket);
    free(t1);
    free(t2);
    free(v);
    return -1;
  }
  for (size_t i = 0; i < nh; i++)
    order[i] = i;
  for (size_t i = nh; i > 1; i--) {
    const size_t s = (size_t)rng_below(rng, i), t = order[i - 1];
    order[i - 1] = order[s];
    order[s] = t;
  }
  int rc = 0;
  double us;
  size_t used;
  for (size_t i = 0; i < nh && rc == 0; i++) {
    fb_hist_t *t = &h[order[i]];
    for (uint32_t j = 0; j < t->n; j++)
      t->w[j] *= 1.0f + 0x1p-20f;
    rc = fb_solve(r, t, &us, &used);
    for (uint32_t j = 0; j < t->n; j++)
      t->w[j] /= 1.0f + 0x1p-20f;
  }
  float *xs = r->cfg->check ? malloc(nh * r->k * sizeof *xs) : NULL;
  if (r->cfg->check && xs == NULL)
    rc = -1;
  for (size_t i = 0; i < nh && rc == 0; i++) {
    rc = fb_solve(r, &h[order[i]], &t1[i], &used);
    bucket[i] = fb_bucket(used);
    if (xs != NULL)
      memcpy(xs + i * r->k, r->x, r->k * sizeof *xs);
  }
  for (size_t i = 0; i < nh && rc == 0; i++)
    rc = fb_solve(r, &h[order[i]], &t2[i], &used);
  /* The check after the timings (its float64 solves would evict the
   * model's basis from the caches): each history solved once more, which
   * must give the first solve's bits, then compared with float64. */
  for (size_t i = 0; xs != NULL && i < nh && rc == 0; i++) {
    if ((rc = fb_solve(r, &h[order[i]], &us, &used)) != 0)
      break;
    r->again_differ += memcmp(xs + i * r->k, r->x, r->k * sizeof *xs) != 0;
    if (fb_check(r, &h[order[i]], used, buf) != 0)
      rc = -1;
  }
  free(xs);
  if (rc == 0) {
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < nh; i++) {
      s1 += t1[i];
      s2 += t2[i];
    }
    printf("| items used | customers | solve, median us | again, median us |\n");
    printf("| --- | ---: | ---: | ---: |\n");
    for (size_t b = 0; b < FB_BUCKETS; b++) {
      size_t n = 0;
      for (size_t i = 0; i < nh; i++)
        if (bucket[i] == b)
          v[n++] = t1[i];
      if (n == 0)
        continue;
      const double m1 = fb_median(v, n);
      n = 0;
      for (size_t i = 0; i < nh; i++)
        if (bucket[i] == b)
          v[n++] = t2[i];
      printf("| %u-%u | %zu | %.1f | %.1f |\n", fb_bucket_lo[b], fb_bucket_lo[b + 1] - 1, n,
             m1, fb_median(v, n));
    }
    memcpy(v, t1, nh * sizeof *v);
    const double m1 = fb_median(v, nh);
    memcpy(v, t2, nh * sizeof *v);
    printf("| all | %zu | %.1f (mean %.1f) | %.1f (mean %.1f) |\n", nh, m1, s1 / (double)nh,
           fb_median(v, nh), s2 / (double)nh);
  }
  free(order);
  free(bucket);
  free(t1);
  free(t2);
  free(v);
  return rc;
}

/* Random histories per length. */
static int fb_random(fb_run_t *r, rng_t *rng, fb_ranked_t *buf) {
  const fb_cfg_t *c = r->cfg;
  uint32_t maxlen = 0;
  for (size_t l = 0; l < c->n_lengths; l++)
    maxlen = c->lengths[l] > maxlen ? c->lengths[l] : maxlen;
  if (maxlen > r->N) {
    fprintf(stderr, "recd-bench foldin: --lengths: %u exceeds the model's %u items\n", maxlen,
            r->N);
    return -1;
  }
  fb_hist_t h = {.items = malloc(maxlen * sizeof *h.items), .w = malloc(maxlen * sizeof *h.w)};
  double *t = malloc((c->users ? c->users : 1) * sizeof *t);
  int rc = h.items && h.w && t ? 0 : -1;
  double us;
  size_t used;
  printf("| history length | median us |\n| ---: | ---: |\n");
  for (uint32_t i = 0; i < c->warmup + c->n_lengths * (size_t)c->users && rc == 0; i++) {
    const size_t l = i < c->warmup ? (size_t)i % c->n_lengths
                                   : (i - c->warmup) / c->users;
    h.n = c->lengths[l];
    for (uint32_t j = 0; j < h.n; j++) { /* distinct: rejection, n << N */
      uint32_t it;
      do
        it = (uint32_t)rng_below(rng, r->N);
      while (r->mark[it]);
      r->mark[it] = 1;
      h.items[j] = it;
      h.w[j] = (float)(1 + rng_below(rng, 5));
    }
    for (uint32_t j = 0; j < h.n; j++)
      r->mark[h.items[j]] = 0;
    rc = fb_solve(r, &h, &us, &used);
    if (rc == 0 && i >= c->warmup) {
      const size_t s = (i - c->warmup) % c->users;
      t[s] = us;
      if (c->check && fb_check(r, &h, used, buf) != 0)
        rc = -1;
      if (s + 1 == c->users)
        printf("| %u | %.1f |\n", c->lengths[l], fb_median(t, c->users));
    }
  }
  free(h.items);
  free(h.w);
  free(t);
  return rc;
}

int bench_foldin_main(int argc, char **argv) {
  fb_cfg_t cfg;
  const int prc = fb_parse(argc, argv, &cfg);
  if (prc != 0)
    return prc > 0 ? 0 : 2;
  openblas_set_num_threads(1);
  char errbuf[RECD_ERRLEN];
  model_t *m = NULL;
  if (model_load(&m, cfg.model, errbuf) != 0) {
    fprintf(stderr, "recd-bench foldin: --model: cannot load %s: %s\n", cfg.model, errbuf);
    return 1;
  }
  fb_run_t r = {.cfg = &cfg, .m = m, .Y = model_item_factors(m), .G = model_gram(m),
                .p = model_params(m), .N = model_n_items(m), .k = model_factors(m),
                .stride = model_stride(m)};
  r.x = malloc(r.k * sizeof *r.x);
  r.xr = malloc(r.k * sizeof *r.xr);
  r.A = malloc((size_t)r.k * r.k * sizeof *r.A);
  r.b = malloc(r.k * sizeof *r.b);
  r.top_a = malloc(FB_TOP * sizeof *r.top_a);
  r.top_b = malloc(FB_TOP * sizeof *r.top_b);
  r.mark = calloc(r.N, 1);
  fb_ranked_t *buf = malloc(r.N * sizeof *buf);
  int rc = r.x && r.xr && r.A && r.b && r.top_a && r.top_b && r.mark && buf &&
                   foldin_ws_init(&r.ws, r.k) == 0
               ? 0
               : -1;
  if (rc != 0)
    fprintf(stderr, "recd-bench foldin: out of memory\n");
  rng_t rng;
  rng_seed(&rng, cfg.seed);
  printf("recd-bench foldin: %s: %u items, k=%u, history limit %u%s\n\n", cfg.model, r.N, r.k,
         cfg.limit, cfg.check ? ", answers checked against float64" : "");
  fb_hist_t *h = NULL;
  size_t nh = 0;
  if (rc == 0 && cfg.csv != NULL) {
    rc = fb_load_histories(&r, &h, &nh);
    if (rc == 0)
      rc = fb_real(&r, h, nh, &rng, buf);
  } else if (rc == 0) {
    rc = fb_random(&r, &rng, buf);
  }
  if (rc == 0 && cfg.check) {
    printf("\nchecked %llu solves against float64: largest |x - x*| / |x*| %.2g; another "
           "top 10 / 50 / 100: %llu / %llu / %llu\n",
           (unsigned long long)r.checked, r.max_err, (unsigned long long)r.differ[0],
           (unsigned long long)r.differ[1], (unsigned long long)r.differ[2]);
    if (cfg.csv != NULL)
      printf("the same history solved again: other bits %llu times\n",
             (unsigned long long)r.again_differ);
  }
  for (size_t i = 0; h != NULL && i < nh; i++) {
    free(h[i].items);
    free(h[i].w);
  }
  free(h);
  free(r.x);
  free(r.xr);
  free(r.A);
  free(r.b);
  free(r.top_a);
  free(r.top_b);
  free(r.mark);
  free(buf);
  foldin_ws_free(&r.ws);
  model_free(m);
  return rc == 0 ? 0 : 1;
}
