/* recd-train - batch training, evaluation, import and synthetic models.
 *
 *   recd-train --csv FILE [--items FILE] --out MODEL [--holdout F] ...
 *   recd-train [--redis-host H --redis-port P ...] --out MODEL ...
 *   recd-train --import --csv FILE [--items FILE] [redis options]
 *   recd-train --synthetic ITEMS --factors K --out MODEL [--seed S]
 *   recd-train --export-factors FILE --model MODEL
 *   recd-train --import-factors FILE --out MODEL [--csv FILE | redis options]
 *
 * See usage() for every option and README.md for the method and figures.
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "recd/als.h"
#include "recd/cluster_slot.h"
#include "recd/csv.h"
#include "recd/dataset.h"
#include "recd/events.h"
#include "recd/clock.h"
#include "recd/err.h"
#include "recd/eval.h"
#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/rng.h"
#include "recd/keys.h"
#include "recd/score.h"
#include "evaluate.h"
#include "factors.h"
#include "gate.h"
#include "popularity.h"
#include "publish.h"
#include "redis_io.h"
#include "refresh.h"
#include "sentinel_lookup.h"
#include "recipe.h"
#include "report.h"
#include "scorer.h"
#include "settings.h"
#include "tune.h"

/* OpenBLAS symbol; declared here because cblas.h of some BLAS builds lacks it. */
void openblas_set_num_threads(int num_threads);

#define TRAIN_MAX_GRID 16

typedef enum train_mode {
  MODE_TRAIN, MODE_IMPORT, MODE_SYNTHETIC, MODE_INFO, MODE_REFRESH, MODE_EVAL_REFRESH,
  MODE_EVAL_CART, MODE_EXPORT_FACTORS, MODE_IMPORT_FACTORS
} train_mode_t;

typedef struct train_cfg {
  train_mode_t mode;
  const char *csv, *items, *out, *report, *info;
  int skip_bad;
  redis_opts_t redis;
  /* --redis-sentinels: the primary they name, looked up once at start */
  const char *sentinels, *master_name, *sentinel_password;
  cluster_node_t primary;
  params_t params;
  uint32_t threads;
  int loss;
  double holdout;
  uint32_t history_limit;
  uint32_t synthetic_items;
  uint32_t ease_max_items;
  float ease_grid[TRAIN_MAX_GRID];
  size_t n_ease_grid;
  int quiet;
  const char *model;        /* --refresh-items: the served model (refresh.h) */
  uint32_t min_item_users;  /* --min-item-users (3) */
  uint32_t keep;    /* --keep N: versioned publishing (publish.h) */
  gate_opts_t gate; /* --compare, --history ...: the retrain gate (gate.h) */
  double half_life_days;  /* --half-life DAYS (0 = off) */
  int split_all;          /* --split all (default): every kind the data allows */
  split_kind_t split;     /* --split KIND */
  int fallback;           /* --fallback yes|no */
  double recent_days;     /* --recent-days D (30) */
  int tune;               /* --tune */
  uint32_t tune_trials;   /* --tune-trials N (40) */
  double tune_seconds;    /* --tune-seconds S (600) */
  const char *settings;   /* --settings FILE */
  uint32_t retune_days;   /* --retune-days D (7) */
  unsigned given;         /* TRAIN_GIVEN_*: set on the command line, so a
                             settings file does not override them */
  const char *factors_file; /* --export-factors / --import-factors FILE */
  const char *factor_ids;   /* --factor-ids MAP.csv */
} train_cfg_t;

/* The command line's settings are fixed in a search too (tune.h). */
enum {
  TRAIN_GIVEN_FACTORS = TUNE_FIX_FACTORS, TRAIN_GIVEN_ITER = TUNE_FIX_ITERATIONS,
  TRAIN_GIVEN_ALPHA = TUNE_FIX_ALPHA, TRAIN_GIVEN_LAMBDA = TUNE_FIX_LAMBDA,
  TRAIN_GIVEN_REGEXP = TUNE_FIX_REG_EXPONENT, TRAIN_GIVEN_HALFLIFE = TUNE_FIX_HALF_LIFE
};

/* Exit status of a run the gate refused (1 is a failure, 2 bad usage). */
#define TRAIN_EXIT_REFUSED 3

/* The output being published (locked for the whole run) and whether the
 * gate refused the model. */
static publish_t g_pub;
static int g_refused;

/* The defaults were chosen on the data sets in README.md ("Choosing the
 * defaults"): log confidence, regularisation proportional to a row's
 * interaction count and 256 factors match EASE on every set where any
 * model beats popularity; the classic setting (linear confidence, constant
 * lambda, 64 factors) trails it by 10-30%. */
static void train_cfg_defaults(train_cfg_t *c) {
  memset(c, 0, sizeof *c);
  c->mode = MODE_TRAIN;
  c->redis = (redis_opts_t){.host = "127.0.0.1", .port = 6379, .prefix = RECD_PREFIX_DEFAULT,
                            .timeout_ms = 5000};
  c->params = (params_t){.factors = 256, .iterations = 15, .conf_mode = PARAMS_CONF_LOG,
                         .cg_steps = 3, .lambda = 0.12f, .alpha = 0.3f, .eps = 1.0f,
                         .reg_exponent = 1.0f, .seed = 42};
  c->threads = 2;
  c->history_limit = 500;
  c->min_item_users = 3;
  c->ease_max_items = 20000;
  const float grid[] = {10, 50, 200, 500, 1000, 3000};
  memcpy(c->ease_grid, grid, sizeof grid);
  c->n_ease_grid = sizeof grid / sizeof grid[0];
  c->half_life_days = 30; /* when every interaction has a time: README "Time" */
  c->split_all = 1;
  c->fallback = 1;
  c->recent_days = POPULARITY_RECENT_DAYS;
  c->tune_trials = 40;
  c->tune_seconds = 600;
  c->retune_days = 7;
  c->gate = (gate_opts_t){.max_drop = GATE_DEFAULT_MAX_DROP,
                          .max_drift = GATE_DEFAULT_MAX_DRIFT,
                          .min_data = GATE_DEFAULT_MIN_DATA,
                          .drift_days = GATE_DEFAULT_DRIFT_DAYS};
}

static void usage(FILE *fp) {
  fprintf(fp,
"usage: recd-train [options]\n"
"\n"
"Trains an implicit-feedback ALS model from Redis histories (default) or a\n"
"CSV file, optionally evaluates it on held-out interactions, and writes the\n"
"model file atomically.\n"
"\n"
"input:\n"
"  --csv FILE             interactions, header user,item,weight[,timestamp]\n"
"  --items FILE           item attributes, header item,title,category[,group]\n"
"  --skip-bad-lines       count and skip malformed CSV lines instead of failing\n"
"  --redis-host HOST      (127.0.0.1)    --redis-port PORT (6379)\n"
"  --redis-socket PATH    --redis-password PASS   --key-prefix PREFIX (recd:)\n"
"  --redis-timeout-ms MS  (5000)  --redis-user USER  Redis 6 ACL user (AUTH USER PASS)\n"
"  --redis-cluster-nodes \"HOST:PORT ...\"  a Redis Cluster's seed nodes instead of\n"
"                         one server: every master is read, keys go to their slot\n"
"  --redis-sentinels \"HOST:PORT ...\"  --redis-master-name NAME  the primary that\n"
"                         Redis Sentinel names, looked up once at start (and checked\n"
"                         with ROLE) instead of --redis-host/--redis-port\n"
"  --redis-sentinel-password PASS  the sentinels' own password (AUTH)\n"
"output:\n"
"  --out MODEL            model file to write (atomically)\n"
"  --report FILE          hold-out figures as JSON\n"
"  --keep N               versioned publishing: write DIR/STEM.<version>.bin\n"
"                         (version = created-at, UTC, YYYYMMDDTHHMMSSZ), make\n"
"                         --out (DIR/STEM.bin) a symlink to it, keep the N\n"
"                         newest versions (stale temp files of interrupted\n"
"                         runs are removed with or without --keep)\n"
"model:\n"
"  --factors K            latent factors (256)\n"
"  --iterations N         ALS sweeps (15)\n"
"  --lambda L             regularisation (0.12)\n"
"  --alpha A              confidence scale (0.3)\n"
"  --confidence MODE      log: c = 1 + alpha*log(1 + w/eps) (default)\n"
"                         linear: c = 1 + alpha*w\n"
"  --eps E                weight scale of the log confidence (1)\n"
"  --reg-exponent NU      lambda * n^NU per row of n interactions (1; 0 = constant)\n"
"  --cg-steps N           conjugate-gradient steps per row (3); 0 = exact Cholesky\n"
"  --half-life DAYS       weigh an interaction 2^(-age/DAYS) in training, age\n"
"                         counted from the newest one (0 = off; needs times)\n"
"  --seed S               initialisation and hold-out split (42)\n"
"  --threads N            worker threads (2)\n"
"  --loss                 print the training loss after every iteration\n"
"evaluation:\n"
"  --holdout F            hold out a fraction F and report precision/recall/\n"
"                         ndcg/map@10 and coverage of what recd ships, its ALS\n"
"                         model, popularity, recent popularity and EASE on\n"
"                         each split, then train on everything\n"
"  --split KIND           random (F of each user's items), user-latest (each\n"
"                         user's latest F), time-cut (the last F of the time\n"
"                         span), or all (default: the three when every\n"
"                         interaction has a time, else random); the first\n"
"                         of time-cut, user-latest, random is the one stored\n"
"                         in the model and used by the gate and for tuning\n"
"  --recent-days D        recent popularity's window (30)\n"
"  --fallback yes|no      ship (recent) popularity, as a 1-factor model, when\n"
"                         it beats the model on a validation split carved\n"
"                         from the training data (yes)\n"
"  --history-limit H      strongest items used to fold a user in (500)\n"
"  --ease-max-items N     skip EASE above N items (20000; it is O(N^3))\n"
"  --ease-lambdas L,L,..  EASE regularisation grid (10,50,200,500,1000,3000)\n"
"tuning:\n"
"  --tune                 search factors, iterations, alpha, lambda, its\n"
"                         exponent and the half-life on a validation split\n"
"                         (the primary kind, carved from the training data),\n"
"                         print the trials, train the best, save it to\n"
"                         --settings\n"
"  --tune-trials N        at most N trials (40) ...\n"
"  --tune-seconds S       ... and none started after S seconds (600; 0 = no\n"
"                         limit); same data, --seed and N = same result\n"
"  --settings FILE        train with FILE's tuned settings (options given on\n"
"                         the command line win); tune and rewrite it when it\n"
"                         is missing or older than --retune-days\n"
"  --retune-days D        (7)\n"
"gate (with --holdout; a refused model is not written, exit status 3):\n"
"  --compare MODEL        evaluate MODEL (the serving model) and the new one\n"
"                         on the same hold-out split and refuse a new model\n"
"                         whose ndcg@10 is below (1 - R) x MODEL's\n"
"  --max-drop R           that relative bound R (0.02)\n"
"  --min-data F           and refuse when the data has fewer than F x the\n"
"                         interactions MODEL was trained on (0.5; 0 = off)\n"
"  --history FILE         published hold-out ndcg@10 values (one \"time version\n"
"                         ndcg\" line per published model, appended on publish):\n"
"                         refuse a new model below (1 - X) x the best of the\n"
"                         last D days\n"
"  --max-drift X          that cumulative bound X (0.05)\n"
"  --drift-days D         the window D (7)\n"
"other modes:\n"
"  --import               load --csv (and --items) into Redis and exit\n"
"  --synthetic ITEMS      write a random well-formed model of ITEMS items\n"
"                         (ids i0.., categories c0..c99) for benchmarks\n"
"  --info MODEL           validate a model file and print what it holds (JSON)\n"
"  --refresh-items        give items in the histories (Redis, or --csv) that\n"
"                         --model MODEL lacks a vector by the ALS item step,\n"
"                         every other row unchanged; publish to --out\n"
"  --min-item-users N     customers a new item needs (3)\n"
"  --eval-refresh         (--csv) hold out 5%% of the items, refresh them in,\n"
"                         compare their neighbours with a full retrain\n"
"  --eval-cart            (--csv with timestamps) last-basket evaluation of\n"
"                         anonymous carts (README \"How good are cart ...\")\n"
"  --export-factors FILE  write --model MODEL's item factors as JSON lines\n"
"                         {\"id\": ..., \"features\": [...]} (\"-\" = stdout)\n"
"  --import-factors FILE  build --out MODEL from such item factors (Spark ALS's\n"
"                         itemFactors), popularity and categories from Redis or\n"
"                         --csv/--items; the model options (--confidence,\n"
"                         --alpha, --lambda, --reg-exponent, --half-life ...)\n"
"                         must say how the factors were trained\n"
"  --factor-ids MAP.csv   (import) header factor_id,item: the file's ids (Spark's\n"
"                         integers) to item ids\n"
"  -q, --quiet            no progress output\n"
"  -h, --help             this text\n");
}

enum {
  OPT_CSV = 256, OPT_ITEMS, OPT_SKIP, OPT_RHOST, OPT_RPORT, OPT_RSOCK, OPT_RPASS, OPT_PREFIX,
  OPT_RTIMEOUT, OPT_OUT, OPT_REPORT, OPT_FACTORS, OPT_ITER, OPT_LAMBDA, OPT_ALPHA, OPT_CONF,
  OPT_EPS, OPT_REGEXP, OPT_CG, OPT_SEED, OPT_THREADS, OPT_LOSS, OPT_HOLDOUT, OPT_HLIMIT,
  OPT_EASEMAX, OPT_EASEGRID, OPT_IMPORT, OPT_SYNTH, OPT_INFO, OPT_REFRESH, OPT_MODEL, OPT_MINUSERS,
  OPT_EVALREFRESH, OPT_EVALCART, OPT_RCLUSTER, OPT_RUSER, OPT_RSENTINELS, OPT_RMASTER, OPT_RSENTPASS,
  OPT_KEEP, OPT_COMPARE, OPT_MAXDROP, OPT_HISTORY, OPT_MAXDRIFT, OPT_DRIFTDAYS, OPT_MINDATA,
  OPT_HALFLIFE, OPT_SPLIT, OPT_RECENT, OPT_FALLBACK, OPT_TUNE, OPT_TUNETRIALS, OPT_TUNESECS,
  OPT_SETTINGS, OPT_RETUNE, OPT_EXPORTFACTORS, OPT_IMPORTFACTORS, OPT_FACTORIDS
};

static const struct option train_options[] = {
  {"csv", required_argument, NULL, OPT_CSV},
  {"items", required_argument, NULL, OPT_ITEMS},
  {"skip-bad-lines", no_argument, NULL, OPT_SKIP},
  {"redis-host", required_argument, NULL, OPT_RHOST},
  {"redis-port", required_argument, NULL, OPT_RPORT},
  {"redis-socket", required_argument, NULL, OPT_RSOCK},
  {"redis-password", required_argument, NULL, OPT_RPASS},
  {"redis-user", required_argument, NULL, OPT_RUSER},
  {"key-prefix", required_argument, NULL, OPT_PREFIX},
  {"redis-timeout-ms", required_argument, NULL, OPT_RTIMEOUT},
  {"redis-cluster-nodes", required_argument, NULL, OPT_RCLUSTER},
  {"redis-sentinels", required_argument, NULL, OPT_RSENTINELS},
  {"redis-master-name", required_argument, NULL, OPT_RMASTER},
  {"redis-sentinel-password", required_argument, NULL, OPT_RSENTPASS},
  {"out", required_argument, NULL, OPT_OUT},
  {"report", required_argument, NULL, OPT_REPORT},
  {"factors", required_argument, NULL, OPT_FACTORS},
  {"iterations", required_argument, NULL, OPT_ITER},
  {"lambda", required_argument, NULL, OPT_LAMBDA},
  {"alpha", required_argument, NULL, OPT_ALPHA},
  {"confidence", required_argument, NULL, OPT_CONF},
  {"eps", required_argument, NULL, OPT_EPS},
  {"reg-exponent", required_argument, NULL, OPT_REGEXP},
  {"cg-steps", required_argument, NULL, OPT_CG},
  {"seed", required_argument, NULL, OPT_SEED},
  {"threads", required_argument, NULL, OPT_THREADS},
  {"loss", no_argument, NULL, OPT_LOSS},
  {"holdout", required_argument, NULL, OPT_HOLDOUT},
  {"history-limit", required_argument, NULL, OPT_HLIMIT},
  {"ease-max-items", required_argument, NULL, OPT_EASEMAX},
  {"ease-lambdas", required_argument, NULL, OPT_EASEGRID},
  {"import", no_argument, NULL, OPT_IMPORT},
  {"synthetic", required_argument, NULL, OPT_SYNTH},
  {"info", required_argument, NULL, OPT_INFO},
  {"refresh-items", no_argument, NULL, OPT_REFRESH},
  {"model", required_argument, NULL, OPT_MODEL},
  {"min-item-users", required_argument, NULL, OPT_MINUSERS},
  {"eval-refresh", no_argument, NULL, OPT_EVALREFRESH},
  {"eval-cart", no_argument, NULL, OPT_EVALCART},
  {"keep", required_argument, NULL, OPT_KEEP},
  {"compare", required_argument, NULL, OPT_COMPARE},
  {"max-drop", required_argument, NULL, OPT_MAXDROP},
  {"history", required_argument, NULL, OPT_HISTORY},
  {"max-drift", required_argument, NULL, OPT_MAXDRIFT},
  {"drift-days", required_argument, NULL, OPT_DRIFTDAYS},
  {"min-data", required_argument, NULL, OPT_MINDATA},
  {"half-life", required_argument, NULL, OPT_HALFLIFE},
  {"split", required_argument, NULL, OPT_SPLIT},
  {"recent-days", required_argument, NULL, OPT_RECENT},
  {"fallback", required_argument, NULL, OPT_FALLBACK},
  {"tune", no_argument, NULL, OPT_TUNE},
  {"tune-trials", required_argument, NULL, OPT_TUNETRIALS},
  {"tune-seconds", required_argument, NULL, OPT_TUNESECS},
  {"settings", required_argument, NULL, OPT_SETTINGS},
  {"retune-days", required_argument, NULL, OPT_RETUNE},
  {"export-factors", required_argument, NULL, OPT_EXPORTFACTORS},
  {"import-factors", required_argument, NULL, OPT_IMPORTFACTORS},
  {"factor-ids", required_argument, NULL, OPT_FACTORIDS},
  {"quiet", no_argument, NULL, 'q'},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0},
};

/* Strict numeric option parsing: the whole value, in [lo, hi]. */
static int opt_u32(const char *name, const char *v, uint64_t lo, uint64_t hi, uint32_t *out) {
  uint64_t x;
  if (csv_parse_u64(v, strlen(v), &x) != 0 || x < lo || x > hi) {
    fprintf(stderr, "recd-train: --%s: expected an integer in [%llu, %llu], got \"%s\"\n", name,
            (unsigned long long)lo, (unsigned long long)hi, v);
    return -1;
  }
  *out = (uint32_t)x;
  return 0;
}

static int opt_float(const char *name, const char *v, double lo, double hi, float *out) {
  float x;
  if (csv_parse_float(v, strlen(v), &x) != 0 || !(x >= lo && x <= hi)) {
    fprintf(stderr, "recd-train: --%s: expected a number in [%g, %g], got \"%s\"\n", name, lo,
            hi, v);
    return -1;
  }
  *out = x;
  return 0;
}

static int parse_grid(const char *v, train_cfg_t *c) {
  c->n_ease_grid = 0;
  const char *p = v;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    float x;
    if (c->n_ease_grid == TRAIN_MAX_GRID || csv_parse_float(p, len, &x) != 0 || !(x > 0)) {
      fprintf(stderr, "recd-train: --ease-lambdas: expected up to %d positive numbers "
              "separated by commas, got \"%s\"\n", TRAIN_MAX_GRID, v);
      return -1;
    }
    c->ease_grid[c->n_ease_grid++] = x;
    p += len + (e != NULL);
  }
  return c->n_ease_grid ? 0 : -1;
}

/* A "host:port ..." list given with --opt parses (cluster_parse_nodes),
 * or the reason is printed. 0 or -1. */
static int check_node_list(const char *opt, const char *list) {
  cluster_node_t *nodes;
  size_t n;
  char err[RECD_ERRLEN];
  if (cluster_parse_nodes(list, &nodes, &n, err) != 0) {
    fprintf(stderr, "recd-train: --%s: %s\n", opt, err);
    return -1;
  }
  free(nodes);
  return 0;
}

static int parse_args(int argc, char **argv, train_cfg_t *c) {
  int ch;
  uint32_t u;
  float f;
  const char *single = NULL; /* --redis-host, --redis-port or --redis-socket given */
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "qh", train_options, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
    case OPT_CSV: c->csv = optarg; break;
    case OPT_ITEMS: c->items = optarg; break;
    case OPT_SKIP: c->skip_bad = 1; break;
    case OPT_RHOST: c->redis.host = optarg; single = "redis-host"; break;
    case OPT_RPORT: bad = opt_u32("redis-port", optarg, 1, 65535, &u); c->redis.port = (int)u;
      single = "redis-port"; break;
    case OPT_RSOCK: c->redis.socket = optarg; single = "redis-socket"; break;
    case OPT_RPASS: c->redis.password = optarg; break;
    case OPT_RUSER: c->redis.user = optarg; break;
    case OPT_PREFIX: c->redis.prefix = optarg;
      if (strlen(optarg) > 128) {
        fprintf(stderr, "recd-train: --key-prefix: longer than 128 bytes\n");
        bad = 1;
      }
      break;
    case OPT_RTIMEOUT: bad = opt_u32("redis-timeout-ms", optarg, 1, 3600000, &u);
      c->redis.timeout_ms = (int)u; break;
    case OPT_RCLUSTER: c->redis.cluster_nodes = optarg; break;
    case OPT_RSENTINELS: c->sentinels = optarg; break;
    case OPT_RMASTER: c->master_name = optarg; break;
    case OPT_RSENTPASS: c->sentinel_password = optarg; break;
    case OPT_OUT: c->out = optarg; break;
    case OPT_REPORT: c->report = optarg; break;
    case OPT_FACTORS: bad = opt_u32("factors", optarg, 1, MODEL_MAX_FACTORS, &c->params.factors);
      c->given |= TRAIN_GIVEN_FACTORS; break;
    case OPT_ITER: bad = opt_u32("iterations", optarg, 1, 10000, &c->params.iterations);
      c->given |= TRAIN_GIVEN_ITER; break;
    case OPT_LAMBDA: bad = opt_float("lambda", optarg, 1e-9, 1e9, &c->params.lambda);
      c->given |= TRAIN_GIVEN_LAMBDA; break;
    case OPT_ALPHA: bad = opt_float("alpha", optarg, 0, 1e9, &c->params.alpha);
      c->given |= TRAIN_GIVEN_ALPHA; break;
    case OPT_CONF:
      if (strcmp(optarg, "log") == 0)
        c->params.conf_mode = PARAMS_CONF_LOG;
      else if (strcmp(optarg, "linear") == 0)
        c->params.conf_mode = PARAMS_CONF_LINEAR;
      else {
        fprintf(stderr, "recd-train: --confidence: expected log or linear, got \"%s\"\n", optarg);
        bad = 1;
      }
      break;
    case OPT_EPS: bad = opt_float("eps", optarg, 1e-9, 1e9, &c->params.eps); break;
    case OPT_REGEXP: bad = opt_float("reg-exponent", optarg, 0, 2, &c->params.reg_exponent);
      c->given |= TRAIN_GIVEN_REGEXP; break;
    case OPT_CG: bad = opt_u32("cg-steps", optarg, 0, 1000, &c->params.cg_steps); break;
    case OPT_SEED: {
      uint64_t s;
      if (csv_parse_u64(optarg, strlen(optarg), &s) != 0) {
        fprintf(stderr, "recd-train: --seed: expected a non-negative integer, got \"%s\"\n", optarg);
        bad = 1;
      }
      c->params.seed = s;
      break;
    }
    case OPT_THREADS: bad = opt_u32("threads", optarg, 1, 64, &c->threads); break;
    case OPT_LOSS: c->loss = 1; break;
    case OPT_HOLDOUT: bad = opt_float("holdout", optarg, 0, 1, &f);
      if (!bad && !(f > 0 && f < 1)) {
        fprintf(stderr, "recd-train: --holdout: expected a fraction strictly between 0 and 1, got \"%s\"\n", optarg);
        bad = 1;
      }
      c->holdout = f;
      break;
    case OPT_HLIMIT: bad = opt_u32("history-limit", optarg, 1, 1000000, &c->history_limit); break;
    case OPT_EASEMAX: bad = opt_u32("ease-max-items", optarg, 0, 100000, &c->ease_max_items); break;
    case OPT_EASEGRID: bad = parse_grid(optarg, c); break;
    case OPT_IMPORT: c->mode = MODE_IMPORT; break;
    case OPT_SYNTH: c->mode = MODE_SYNTHETIC;
      bad = opt_u32("synthetic", optarg, 1, 100000000, &c->synthetic_items); break;
    case OPT_INFO: c->mode = MODE_INFO; c->info = optarg; break;
    case OPT_REFRESH: c->mode = MODE_REFRESH; break;
    case OPT_MODEL: c->model = optarg; break;
    case OPT_MINUSERS: bad = opt_u32("min-item-users", optarg, 1, 1000000, &c->min_item_users); break;
    case OPT_EVALREFRESH: c->mode = MODE_EVAL_REFRESH; break;
    case OPT_EVALCART: c->mode = MODE_EVAL_CART; break;
    case OPT_KEEP: bad = opt_u32("keep", optarg, 1, 1000, &c->keep); break;
    case OPT_COMPARE: c->gate.compare = optarg; break;
    case OPT_MAXDROP: bad = opt_float("max-drop", optarg, 0, 1, &f); c->gate.max_drop = f; break;
    case OPT_HISTORY: c->gate.history = optarg; break;
    case OPT_MAXDRIFT: bad = opt_float("max-drift", optarg, 0, 1, &f); c->gate.max_drift = f; break;
    case OPT_DRIFTDAYS: bad = opt_u32("drift-days", optarg, 1, 3650, &c->gate.drift_days); break;
    case OPT_MINDATA: bad = opt_float("min-data", optarg, 0, 1, &f); c->gate.min_data = f; break;
    case OPT_HALFLIFE: bad = opt_float("half-life", optarg, 0, 36500, &f);
      c->half_life_days = f; c->given |= TRAIN_GIVEN_HALFLIFE; break;
    case OPT_SPLIT:
      c->split_all = strcmp(optarg, "all") == 0;
      if (!c->split_all && split_kind_parse(optarg, &c->split) != 0) {
        fprintf(stderr, "recd-train: --split: expected random, user-latest, time-cut or all, "
                "got \"%s\"\n", optarg);
        bad = 1;
      }
      break;
    case OPT_RECENT: bad = opt_float("recent-days", optarg, 1, 3650, &f); c->recent_days = f; break;
    case OPT_FALLBACK:
      c->fallback = strcmp(optarg, "yes") == 0;
      if (!c->fallback && strcmp(optarg, "no") != 0) {
        fprintf(stderr, "recd-train: --fallback: expected yes or no, got \"%s\"\n", optarg);
        bad = 1;
      }
      break;
    case OPT_TUNE: c->tune = 1; break;
    case OPT_TUNETRIALS: bad = opt_u32("tune-trials", optarg, 1, 100000, &c->tune_trials); break;
    case OPT_TUNESECS: bad = opt_float("tune-seconds", optarg, 0, 1e7, &f); c->tune_seconds = f; break;
    case OPT_SETTINGS: c->settings = optarg; break;
    case OPT_RETUNE: bad = opt_u32("retune-days", optarg, 1, 3650, &c->retune_days); break;
    case OPT_EXPORTFACTORS: c->mode = MODE_EXPORT_FACTORS; c->factors_file = optarg; break;
    case OPT_IMPORTFACTORS: c->mode = MODE_IMPORT_FACTORS; c->factors_file = optarg; break;
    case OPT_FACTORIDS: c->factor_ids = optarg; break;
    case 'q': c->quiet = 1; break;
    case 'h': usage(stdout); exit(0);
    default:
      fprintf(stderr, "recd-train: unknown or incomplete option \"%s\" (see --help)\n",
              argv[optind - 1]);
      return -1;
    }
    if (bad)
      return -1;
  }
  if (optind < argc) {
    fprintf(stderr, "recd-train: unexpected argument \"%s\" (see --help)\n", argv[optind]);
    return -1;
  }
  if (c->mode == MODE_IMPORT && c->csv == NULL) {
    fprintf(stderr, "recd-train: --import needs --csv FILE\n");
    return -1;
  }
  if (c->mode == MODE_SYNTHETIC && c->out == NULL) {
    fprintf(stderr, "recd-train: --synthetic needs --out MODEL\n");
    return -1;
  }
  if (c->mode == MODE_TRAIN && c->out == NULL && c->holdout == 0 && !c->tune) {
    fprintf(stderr, "recd-train: nothing to do: give --out MODEL, --holdout F and/or --tune\n");
    return -1;
  }
  if ((c->gate.compare != NULL || c->gate.history != NULL) &&
      (c->mode != MODE_TRAIN || c->holdout == 0)) {
    fprintf(stderr, "recd-train: --%s needs --holdout F (the new model and the serving one are "
            "judged on its split)\n", c->gate.compare != NULL ? "compare" : "history");
    return -1;
  }
  if (c->keep > 0 && (c->out == NULL || c->mode == MODE_IMPORT || c->mode == MODE_INFO)) {
    fprintf(stderr, "recd-train: --keep needs --out MODEL (the path served)\n");
    return -1;
  }
  if (c->mode == MODE_REFRESH && (c->model == NULL || c->out == NULL)) {
    fprintf(stderr, "recd-train: --refresh-items needs --model SERVED and --out NEW\n");
    return -1;
  }
  if ((c->mode == MODE_EVAL_REFRESH || c->mode == MODE_EVAL_CART) && c->csv == NULL) {
    fprintf(stderr, "recd-train: --eval-%s needs --csv FILE\n",
            c->mode == MODE_EVAL_CART ? "cart" : "refresh");
    return -1;
  }
  if ((c->tune || c->settings != NULL) && c->mode != MODE_TRAIN) {
    fprintf(stderr, "recd-train: --%s goes with training (not with --import, --info, "
            "--synthetic or --refresh-items)\n", c->tune ? "tune" : "settings");
    return -1;
  }
  if (c->mode == MODE_EXPORT_FACTORS && c->model == NULL) {
    fprintf(stderr, "recd-train: --export-factors needs --model MODEL\n");
    return -1;
  }
  if (c->mode == MODE_IMPORT_FACTORS && c->out == NULL) {
    fprintf(stderr, "recd-train: --import-factors needs --out MODEL\n");
    return -1;
  }
  if (c->mode == MODE_IMPORT_FACTORS && c->holdout > 0) {
    fprintf(stderr, "recd-train: --holdout goes with training, not --import-factors (factors "
            "trained on every interaction cannot be judged on a part of them)\n");
    return -1;
  }
  if (c->factor_ids != NULL && c->mode != MODE_IMPORT_FACTORS) {
    fprintf(stderr, "recd-train: --factor-ids goes with --import-factors\n");
    return -1;
  }
  if (c->items != NULL && c->csv == NULL) {
    fprintf(stderr, "recd-train: --items goes with --csv (Redis categories come from %sitem:<id>)\n",
            c->redis.prefix);
    return -1;
  }
  if ((c->sentinels != NULL) != (c->master_name != NULL)) {
    fprintf(stderr, "recd-train: --redis-sentinels and --redis-master-name go together\n");
    return -1;
  }
  if (c->sentinel_password != NULL && c->sentinels == NULL) {
    fprintf(stderr, "recd-train: --redis-sentinel-password goes with --redis-sentinels\n");
    return -1;
  }
  if (c->sentinels != NULL) {
    const char *other = single != NULL ? single
                        : c->redis.cluster_nodes != NULL ? "redis-cluster-nodes" : NULL;
    if (other != NULL) {
      fprintf(stderr, "recd-train: --redis-sentinels and --%s: the sentinels name the server\n",
              other);
      return -1;
    }
    if (c->master_name[0] == '\0') {
      fprintf(stderr, "recd-train: --redis-master-name: empty\n");
      return -1;
    }
    if (check_node_list("redis-sentinels", c->sentinels) != 0)
      return -1;
  }
  if (c->redis.cluster_nodes != NULL) {
    if (single != NULL) {
      fprintf(stderr, "recd-train: --redis-cluster-nodes and --%s: give a cluster's seed nodes "
              "or one server, not both\n", single);
      return -1;
    }
    if (check_node_list("redis-cluster-nodes", c->redis.cluster_nodes) != 0)
      return -1;
  }
  return 0;
}

/* Creation time for the model file: SOURCE_DATE_EPOCH when set (the
 * reproducible-builds convention), so that identical inputs can give
 * byte-identical model files; *reproducible tells the caller to record no
 * wall-clock durations either. */
static int64_t creation_time(int *reproducible) {
  const char *e = getenv("SOURCE_DATE_EPOCH");
  int64_t t;
  *reproducible = e != NULL && csv_parse_i64(e, strlen(e), &t) == 0;
  return *reproducible ? t : (int64_t)time(NULL);
}

/* Trains on (by_user, by_item) from a fresh seeded start: the data set's
 * own matrices when nothing is weighed by age, so that the model is the
 * one recd-train has always written for the same input. */
static int train_model(const train_cfg_t *c, const params_t *p, const csr_t *by_user,
                       const csr_t *by_item, als_factors_t *f, double *seconds, char *errbuf) {
  int rc = als_factors_init(f, by_user->n_rows, by_item->n_rows, p);
  if (rc != 0)
    return recd_errf(errbuf, rc, "cannot allocate factors for %u users x %u items",
                     by_user->n_rows, by_item->n_rows);
  als_opts_t o = {.params = *p, .threads = c->threads, .compute_loss = c->loss,
                  .progress = c->quiet ? NULL : stderr};
  double t0 = recd_clock_seconds();
  rc = als_train(by_user, by_item, &o, f, NULL, NULL, errbuf);
  *seconds = recd_clock_seconds() - t0;
  if (rc != 0)
    als_factors_free(f);
  return rc;
}

/* The kinds of split to evaluate, primary (stored in the model, used by
 * the gate and to tune) first: time-cut, user-latest, random. */
static size_t split_kinds(const train_cfg_t *c, int timed, split_kind_t *kinds) {
  if (!c->split_all) {
    kinds[0] = c->split;
    return 1;
  }
  if (!timed) {
    kinds[0] = SPLIT_RANDOM;
    return 1;
  }
  kinds[0] = SPLIT_TIME_CUT;
  kinds[1] = SPLIT_USER_LATEST;
  kinds[2] = SPLIT_RANDOM;
  return 3;
}

static tune_opts_t tune_options(const train_cfg_t *c, split_kind_t kind, double fraction,
                                uint32_t trials) {
  FILE *log = c->quiet ? NULL : stderr;
  return (tune_opts_t){.kind = kind, .fraction = fraction, .trials = trials,
                       .seconds = c->tune_seconds, .seed = c->params.seed,
                       .threads = c->threads, .history_limit = c->history_limit,
                       .recent_days = c->recent_days, .fallback = c->fallback,
                       .fixed = c->given, .log = log,
                       .progress_bar = log != NULL && isatty(STDERR_FILENO)};
}

/* Hold-out evaluation on every split kind (evaluate.h). */
static int evaluate_all(const train_cfg_t *c, const events_t *ev, const recipe_t *recipe,
                        int tune, report_t *rep, char *errbuf) {
  split_kind_t kinds[3];
  size_t n = split_kinds(c, ev->has_time, kinds);
  evaluate_opts_t eo = {.fraction = c->holdout, .seed = c->params.seed, .threads = c->threads,
                        .history_limit = c->history_limit, .recent_days = c->recent_days,
                        .fallback = c->fallback, .tune = tune,
                        .tune_opts = tune_options(c, kinds[0], c->holdout, c->tune_trials),
                        .ease_max_items = c->ease_max_items, .ease_grid = c->ease_grid,
                        .n_ease_grid = c->n_ease_grid, .log = c->quiet ? NULL : stderr};
  const double t0 = recd_clock_seconds();
  for (size_t i = 0; i < n; i++) {
    /* --tune searches on every split (the evaluation's "recd --tune");
     * a retune that the settings file asked for only on the primary one,
     * whose result is shipped. */
    eo.tune_opts.kind = kinds[i];
    eo.tune = tune && (c->tune || rep->n_splits == 0);
    int rc = evaluate_split(ev, kinds[i], recipe, &eo, &rep->splits[rep->n_splits], errbuf);
    if (rc == RECD_ENOTFOUND && (c->split_all || !c->quiet)) {
      if (!c->quiet)
        fprintf(stderr, "evaluation: %s split skipped: %s\n", split_kind_name(kinds[i]), errbuf);
      errbuf[0] = '\0';
      if (c->split_all)
        continue;
    }
    if (rc != 0)
      return rc;
    rep->n_splits++;
  }
  if (rep->n_splits == 0)
    return recd_errf(errbuf, RECD_EINVAL, "no hold-out split could be evaluated");
  rep->evaluation_seconds = recd_clock_seconds() - t0;
  const split_eval_t *p = &rep->splits[0];
  rep->model = p->recd;
  rep->popularity = p->popularity;
  rep->have_ease = p->have_ease;
  rep->ease = p->ease;
  rep->ease_lambda = p->ease_lambda;
  rep->ease_skipped = p->ease_skipped;
  rep->eval_users = p->users;
  rep->holdout_train_seconds = p->als_seconds;
  return 0;
}

/* Average over (a sample of) users of the standard deviation of their item
 * scores. Preference adjustments at serving time are multiples of it, so
 * "cat:shoes = 0.5" means the same thing for every model. */
static float score_scale(const dataset_t *ds, const als_factors_t *f, const params_t *p,
                         size_t cap) {
  als_scorer_t s;
  float *scores = malloc((size_t)f->n_items * sizeof *scores);
  if (scores == NULL || als_scorer_init(&s, f, p, cap) != 0) {
    free(scores);
    return 1.0f;
  }
  const csr_t *m = &ds->by_user;
  uint32_t step = m->n_rows > 1000 ? m->n_rows / 1000 : 1;
  double sum = 0;
  uint32_t n = 0;
  for (uint32_t u = 0; u < m->n_rows; u += step) {
    if (als_scorer_score(&s, m->idx + m->ptr[u], m->val + m->ptr[u],
                         (size_t)(m->ptr[u + 1] - m->ptr[u]), scores) != 0)
      continue;
    double mean = 0, var = 0;
    for (uint32_t i = 0; i < f->n_items; i++)
      mean += scores[i];
    mean /= f->n_items;
    for (uint32_t i = 0; i < f->n_items; i++)
      var += (scores[i] - mean) * (scores[i] - mean);
    sum += sqrt(var / f->n_items);
    n++;
  }
  als_scorer_free(&s);
  free(scores);
  float v = n ? (float)(sum / n) : 0.0f;
  return v > 0 && isfinite(v) ? v : 1.0f;
}

/* Collects ids and categories from the data set and writes the model. */
static int write_model(const train_cfg_t *c, const dataset_t *ds, const als_factors_t *f,
                       const params_t *params, const float *served_pop,
                       const model_meta_t *meta, char *errbuf) {
  const uint32_t n = f->n_items;
  const uint32_t nc = ds->categories ? (uint32_t)idmap_size(ds->categories) : 0;
  const uint32_t ng = ds->groups ? (uint32_t)idmap_size(ds->groups) : 0;
  const char **ids = malloc((size_t)n * sizeof *ids);
  uint32_t *lens = malloc((size_t)n * sizeof *lens);
  float *pop = malloc((size_t)n * sizeof *pop);
  uint32_t *cat = calloc(n, sizeof *cat);
  const char **cnames = malloc((size_t)(nc ? nc : 1) * sizeof *cnames);
  uint32_t *clens = malloc((size_t)(nc ? nc : 1) * sizeof *clens);
  uint32_t *grp = calloc(n, sizeof *grp);
  const char **gnames = malloc((size_t)(ng ? ng : 1) * sizeof *gnames);
  uint32_t *glens = malloc((size_t)(ng ? ng : 1) * sizeof *glens);
  int rc = RECD_ENOMEM;
  if (ids && lens && pop && cat && cnames && clens && grp && gnames && glens) {
    for (uint32_t i = 0; i < n; i++) {
      size_t len;
      ids[i] = idmap_key(ds->items, i, &len);
      lens[i] = (uint32_t)len;
      if (ds->item_category != NULL && i < ds->item_category_cap)
        cat[i] = ds->item_category[i];
      if (ds->item_group != NULL && i < ds->item_group_cap)
        grp[i] = ds->item_group[i];
    }
    for (uint32_t j = 0; j < ng; j++) {
      size_t len;
      gnames[j] = idmap_key(ds->groups, j, &len);
      glens[j] = (uint32_t)len;
    }
    for (uint32_t j = 0; j < nc; j++) {
      size_t len;
      cnames[j] = idmap_key(ds->categories, j, &len);
      clens[j] = (uint32_t)len;
    }
    /* A popularity model's cold-start order is its own (recent) popularity. */
    if (served_pop != NULL)
      memcpy(pop, served_pop, (size_t)n * sizeof *pop);
    else
      eval_popularity(&ds->by_item, pop);
    model_spec_t spec = {.n_items = n, .params = *params, .meta = *meta, .Y = f->Y,
                         .ldy = f->stride, .popularity = pop, .item_ids = ids,
                         .item_id_lens = lens, .item_category = cat, .n_categories = nc,
                         .category_names = cnames, .category_name_lens = clens,
                         .item_group = grp, .n_groups = ng, .group_names = gnames,
                         .group_name_lens = glens};
    rc = publish_write(&g_pub, &spec, c->quiet ? NULL : stderr, errbuf);
  } else {
    recd_errf(errbuf, rc, "out of memory preparing the model file");
  }
  free(grp);
  free(gnames);
  free(glens);
  free(ids);
  free(lens);
  free(pop);
  free(cat);
  free(cnames);
  free(clens);
  return rc;
}

static int load_data(const train_cfg_t *c, dataset_t *ds, char *errbuf) {
  int rc = dataset_init(ds);
  if (rc != 0)
    return recd_errf(errbuf, rc, "out of memory");
  FILE *progress = !c->quiet && isatty(STDERR_FILENO) ? stderr : NULL;
  if (c->csv != NULL) {
    uint64_t skipped = 0;
    rc = dataset_read_csv(ds, c->csv, c->skip_bad, &skipped, progress, errbuf);
    if (rc == 0 && skipped > 0 && !c->quiet)
      fprintf(stderr, "%s: skipped %llu bad lines\n", c->csv, (unsigned long long)skipped);
    if (rc == 0 && c->items != NULL)
      rc = dataset_read_items_csv(ds, c->items, errbuf);
  } else {
    uint64_t anomalies = 0;
    rc = redis_read_dataset(&c->redis, ds, &anomalies, progress, c->quiet ? NULL : stderr,
                            errbuf);
    if (rc == 0 && anomalies > 0 && !c->quiet)
      fprintf(stderr, "redis: skipped %llu malformed entries\n", (unsigned long long)anomalies);
  }
  if (rc == 0 && (rc = dataset_finalize(ds)) != 0)
    recd_errf(errbuf, rc, "out of memory building the interaction matrix");
  if (rc == 0 && dataset_n_users(ds) == 0)
    rc = recd_errf(errbuf, RECD_EINVAL, "no interactions in %s",
                   c->csv ? c->csv : "Redis (no <prefix>hist:* keys)");
  if (rc != 0)
    dataset_free(ds);
  return rc;
}

/* The settings file (settings.h): applies it unless the command line set
 * the same thing, and says whether it is time to tune again. */
static int apply_settings(const train_cfg_t *c, recipe_t *r, int *retune, char *errbuf) {
  *retune = c->tune;
  if (c->settings == NULL)
    return 0;
  recipe_t file = *r;
  int64_t tuned_at = 0;
  int rc = settings_read(c->settings, &file, &tuned_at, errbuf);
  FILE *log = c->quiet ? NULL : stderr;
  if (rc == RECD_ENOTFOUND) {
    if (log)
      fprintf(log, "settings: %s does not exist yet: tuning\n", c->settings);
    *retune = 1;
    return 0;
  }
  if (rc != 0)
    return rc;
  const double age = difftime(time(NULL), (time_t)tuned_at) / 86400.0;
  if (age > c->retune_days) {
    if (log)
      fprintf(log, "settings: %s was tuned %.1f days ago (--retune-days %u): tuning again\n",
              c->settings, age, c->retune_days);
    *retune = 1;
  } else if (log && !c->tune) {
    fprintf(log, "settings: using %s (tuned %.1f days ago)\n", c->settings, age);
  }
  const unsigned g = c->given;
  if (!(g & TRAIN_GIVEN_FACTORS)) r->params.factors = file.params.factors;
  if (!(g & TRAIN_GIVEN_ITER)) r->params.iterations = file.params.iterations;
  if (!(g & TRAIN_GIVEN_ALPHA)) r->params.alpha = file.params.alpha;
  if (!(g & TRAIN_GIVEN_LAMBDA)) r->params.lambda = file.params.lambda;
  if (!(g & TRAIN_GIVEN_REGEXP)) r->params.reg_exponent = file.params.reg_exponent;
  if (!(g & TRAIN_GIVEN_HALFLIFE)) r->half_life_days = file.half_life_days;
  r->tuned_at = tuned_at;
  return 0;
}

/* What to ship: the recipe (tuned when asked) and, on a validation split of
 * all the data, whether its model beats (recent) popularity. */
static int choose_model(const train_cfg_t *c, const events_t *ev, const split_kind_t *kinds,
                        size_t n_kinds, int retune, recipe_t *r, uint32_t *serves,
                        report_t *rep, char *errbuf) {
  split_kind_t kind = kinds[0];
  *serves = MODEL_SERVES_ALS;
  const double fraction = c->holdout > 0 ? c->holdout : 0.2;
  tune_result_t tr;
  if (retune && rep->n_splits > 0 && rep->splits[0].have_tuned) {
    /* Tuned on the primary split's training part already (its test part
     * unseen): the same search on all the data would find much the same. */
    const split_eval_t *p = &rep->splits[0];
    tr = p->tune;
    rep->tune_kind = p->kind;
    retune = 0;
    rep->tune = tr;
    rep->have_tune = 1;
    /* A safety net on top of validation: the search's best replaces the
     * current settings only if it is not worse on the hold-out either, so
     * that a weekly re-tune cannot ship (and the gate then refuse night
     * after night) something worse than what serves now. */
    if (p->tuned.ndcg >= p->recd.ndcg) {
      r->params = tr.best.params;
      r->half_life_days = tr.best.half_life_days;
      rep->model = p->tuned;
    } else if (!c->quiet) {
      fprintf(stderr, "tuned: the search's best (validation ndcg@10 %.4f) scores %.4f on the "
              "%s hold-out, below the current settings' %.4f: keeping the current settings\n",
              tr.best_ndcg, p->tuned.ndcg, split_kind_name(p->kind), p->recd.ndcg);
    }
  }
  if (!retune && !c->fallback)
    return 0;
  int rc = RECD_ENOTFOUND;
  for (size_t i = 0; i < n_kinds && rc == RECD_ENOTFOUND; i++) {
    tune_opts_t to = tune_options(c, kinds[i], fraction, retune ? c->tune_trials : 1);
    kind = kinds[i];
    errbuf[0] = '\0';
    rc = tune_run(ev, r, &to, &tr, errbuf);
  }
  if (rc != 0)
    return rc;
  if (retune) {
    r->params = tr.best.params;
    r->half_life_days = tr.best.half_life_days;
    rep->tune = tr;
    rep->tune_kind = kind;
    rep->have_tune = 1;
  }
  *serves = c->fallback ? tr.serves : MODEL_SERVES_ALS;
  rep->validation = tr;
  rep->have_validation = 1;
  if (*serves != MODEL_SERVES_ALS && !c->quiet)
    fprintf(stderr, "fallback: on validation (%s split, %llu customers) the model's ndcg@10 "
            "%.4f does not beat popularity %.4f / recent popularity %.4f: shipping %s\n",
            split_kind_name(kind), (unsigned long long)tr.users, tr.best_ndcg, tr.pop_ndcg,
            tr.recent_ndcg, model_serves_name(*serves));
  return 0;
}

static int cmd_train(const train_cfg_t *c, char *errbuf) {
  gate_result_t gres = {0};
  const int64_t now = (int64_t)time(NULL);
  recipe_t recipe = {.params = c->params, .half_life_days = c->half_life_days};
  int retune = 0;
  int rc = apply_settings(c, &recipe, &retune, errbuf);
  dataset_t ds;
  if (rc == 0)
    rc = load_data(c, &ds, errbuf);
  if (rc != 0)
    return rc;
  events_t ev;
  if ((rc = events_from_dataset(&ds, &ev)) != 0) {
    dataset_free(&ds);
    return recd_errf(errbuf, rc, "out of memory building the interaction log");
  }
  if (recipe.half_life_days > 0 && !ev.has_time && !c->quiet)
    fprintf(stderr, "half-life: ignored, not every interaction has a time\n");
  char source[600];
  if (c->csv)
    snprintf(source, sizeof source, "%s", c->csv);
  else if (c->redis.cluster_nodes)
    snprintf(source, sizeof source, "redis cluster %s", c->redis.cluster_nodes);
  else if (c->redis.socket)
    snprintf(source, sizeof source, "redis unix:%s", c->redis.socket);
  else
    snprintf(source, sizeof source, "redis %s:%d", c->redis.host, c->redis.port);
  report_t rep = {.source = source, .params = c->params, .threads = c->threads,
                  .users = dataset_n_users(&ds), .items = dataset_n_items(&ds),
                  .interactions = ds.by_user.ptr[ds.by_user.n_rows], .holdout = c->holdout,
                  .timed = ev.has_time};
  if (!c->quiet)
    fprintf(stderr, "data: %llu users, %llu items, %llu interactions%s\n",
            (unsigned long long)rep.users, (unsigned long long)rep.items,
            (unsigned long long)rep.interactions, ev.has_time ? ", with times" : "");
  split_kind_t kinds[3];
  size_t n_kinds = split_kinds(c, ev.has_time, kinds);
  if (kinds[0] != SPLIT_RANDOM && !ev.has_time) {
    rc = recd_errf(errbuf, RECD_EINVAL, "--split %s needs a time on every interaction (%s has "
                   "some without)", split_kind_name(kinds[0]), source);
  }
  /* The gate's history is read before any training: a bad file fails
   * before hours of work, not after. Its figures are the primary split's. */
  gate_opts_t gate = c->gate;
  gate.split = split_kind_name(kinds[0]);
  if (rc == 0)
    rc = gate_read_history(&gate, now, &gres, errbuf);
  if (rc == 0 && c->holdout > 0) {
    rc = evaluate_all(c, &ev, &recipe, retune, &rep, errbuf);
    if (rc == 0 && rep.splits[0].kind != kinds[0]) {
      /* The primary kind held nothing out: the gate compares the figures
       * of the kind that stands in for it. */
      gate.split = split_kind_name(rep.splits[0].kind);
      gres.have_best = 0;
      rc = gate_read_history(&gate, now, &gres, errbuf);
    }
    if (rc == 0) {
      report_print(&rep, stderr);
      if (c->out == NULL && c->report != NULL && !retune)
        rc = report_write_json(&rep, c->report, errbuf);
    }
  }
  uint32_t serves = MODEL_SERVES_ALS;
  if (rc == 0 && (c->out != NULL || retune))
    rc = choose_model(c, &ev, kinds, n_kinds, retune, &recipe, &serves, &rep, errbuf);
  int reproducible;
  const int64_t created = creation_time(&reproducible);
  if (rc == 0 && rep.have_tune) {
    /* SOURCE_DATE_EPOCH pins it, as the model's creation time: the same
     * data and seed then give the same settings file byte for byte. */
    recipe.tuned_at = created;
    if (!c->quiet)
      fprintf(stderr, "tuned (%u trials in %.0f s; validation ndcg@10 of the best %.4f, of "
              "the starting settings %.4f): shipping factors %u, iterations %u, alpha %.4g, "
              "lambda %.4g, reg-exponent %.2f, half-life %.0f days\n", rep.tune.trials,
              rep.tune.seconds, rep.tune.best_ndcg, rep.tune.start_ndcg, recipe.params.factors,
              recipe.params.iterations, (double)recipe.params.alpha,
              (double)recipe.params.lambda, (double)recipe.params.reg_exponent,
              recipe.half_life_days);
    if (c->settings != NULL)
      rc = settings_write(c->settings, &recipe, created, source, split_kind_name(rep.tune_kind),
                          rep.tune.best_ndcg, errbuf);
    else if (!c->quiet)
      fprintf(stderr, "tuned settings not saved: give --settings FILE to keep them\n");
  }
  rep.params = recipe.params;
  rep.half_life_days = ev.has_time ? recipe.half_life_days : 0;
  rep.tuned_at = recipe.tuned_at;
  rep.serves = serves;
  if (rc == 0 && c->out == NULL && c->report != NULL && retune)
    rc = report_write_json(&rep, c->report, errbuf);
  if (rc == 0 && c->out != NULL) {
    als_factors_t f;
    params_t params = recipe.params;
    float *served_pop = NULL;
    if (!c->quiet)
      fprintf(stderr, "training the model on all %llu interactions\n",
              (unsigned long long)rep.interactions);
    if (serves != MODEL_SERVES_ALS) {
      double t0 = recd_clock_seconds();
      served_pop = malloc((size_t)(rep.items ? rep.items : 1) * sizeof *served_pop);
      rc = served_pop == NULL ? RECD_ENOMEM
                              : popularity_vector(&ev, serves, c->recent_days, served_pop);
      if (rc == 0)
        rc = popularity_factors(served_pop, (uint32_t)rep.items, &f, &params);
      if (rc != 0)
        recd_errf(errbuf, rc, "building the %s model: %s", model_serves_name(serves),
                  recd_strerror(rc));
      rep.train_seconds = recd_clock_seconds() - t0;
    } else if (rep.half_life_days > 0) {
      rc = recipe_fit(&recipe, &ev, c->threads, c->quiet ? NULL : stderr, c->loss, &f,
                      &rep.train_seconds, errbuf);
    } else {
      rc = train_model(c, &params, &ds.by_user, &ds.by_item, &f, &rep.train_seconds, errbuf);
    }
    if (rc == 0) {
      rep.seconds_per_iteration =
          params.iterations ? rep.train_seconds / params.iterations : 0;
      const split_eval_t *pe = rep.n_splits ? &rep.splits[0] : NULL;
      model_meta_t meta = {.created_at = publish_created_at(&g_pub, created),
                           .n_users = rep.users,
                           .n_interactions = rep.interactions,
                           .train_seconds = rep.train_seconds, .holdout_fraction = c->holdout,
                           .holdout_users = rep.eval_users, .model = rep.model,
                           .popularity = rep.popularity, .has_ease = rep.have_ease != 0,
                           .serves = serves, .half_life_days = rep.half_life_days,
                           .tuned_at = recipe.tuned_at,
                           .eval_split = pe ? (uint32_t)pe->kind : MODEL_SPLIT_RANDOM};
      if (rep.have_ease)
        meta.ease = rep.ease;
      if (pe && pe->have_recent) {
        meta.has_recent = 1;
        meta.recent_popularity = pe->recent;
      }
      if (reproducible)
        meta.train_seconds = 0;
      meta.score_scale = score_scale(&ds, &f, &params, c->history_limit);
      /* The gate (gate.h): this model and the serving one on the same split;
       * a refused model is not written. */
      if (gate.compare != NULL || gate.history != NULL) {
        als_scorer_t s;
        rc = als_scorer_init(&s, &f, &params, c->history_limit);
        if (rc == 0) {
          rc = gate_compare(&gate, &ds, c->holdout, c->params.seed, c->history_limit,
                            als_scorer_score, &s, &gres, errbuf);
          als_scorer_free(&s);
        } else {
          recd_errf(errbuf, rc, "out of memory");
        }
        if (rc == 0 && gate_check(&gate, rep.model.ndcg, &gres, stderr, errbuf)) {
          g_refused = 1;
          rc = RECD_EINVAL; /* errbuf says why */
        }
      }
      if (rc == 0)
        rc = write_model(c, &ds, &f, &params, served_pop, &meta, errbuf);
      als_factors_free(&f);
      if (rc == 0 && !c->quiet)
        fprintf(stderr, "wrote %s: %llu items, k=%u, %s, trained in %.2f s\n", c->out,
                (unsigned long long)rep.items, params.factors, model_serves_name(serves),
                rep.train_seconds);
      if (rc == 0 && gate.history != NULL) {
        char v[KEPT_VERSION_LEN + 1];
        if (g_pub.version[0] == '\0')
          kept_version_format(meta.created_at, v);
        rc = gate_record(&gate, now, g_pub.version[0] ? g_pub.version : v, rep.model.ndcg,
                         errbuf);
      }
      if (rc == 0 && c->report != NULL)
        rc = report_write_json(&rep, c->report, errbuf);
    }
    free(served_pop);
  }
  events_free(&ev);
  dataset_free(&ds);
  return rc;
}

/* A random but well-formed model, for benchmarking any catalogue size. */
static int cmd_synthetic(const train_cfg_t *c, char *errbuf) {
  const uint32_t n = c->synthetic_items, k = c->params.factors, nc = 100;
  const uint32_t stride = (k + 15u) & ~15u;
  float *Y = malloc((size_t)n * stride * sizeof *Y);
  float *pop = malloc((size_t)n * sizeof *pop);
  uint32_t *cat = malloc((size_t)n * sizeof *cat);
  char *idbuf = malloc((size_t)n * 12);
  const char **ids = malloc((size_t)n * sizeof *ids);
  uint32_t *lens = malloc((size_t)n * sizeof *lens);
  char cbuf[100][8];
  const char *cnames[100];
  uint32_t clens[100];
  int rc = RECD_ENOMEM;
  if (Y && pop && cat && idbuf && ids && lens) {
    rng_t r;
    rng_seed(&r, c->params.seed);
    const double sd = 1.0 / sqrt((double)k);
    for (uint32_t i = 0; i < n; i++) {
      for (uint32_t j = 0; j < stride; j++)
        Y[(size_t)i * stride + j] = j < k ? (float)(rng_normal(&r) * sd) : 0.0f;
      /* Zipf-like popularity, as in real catalogues. */
      pop[i] = (float)(1e6 / (1.0 + (double)rng_below(&r, n)));
      cat[i] = 1 + (uint32_t)rng_below(&r, nc);
      ids[i] = idbuf + (size_t)i * 12;
      lens[i] = (uint32_t)snprintf(idbuf + (size_t)i * 12, 12, "i%u", i);
    }
    for (uint32_t j = 0; j < nc; j++) {
      clens[j] = (uint32_t)snprintf(cbuf[j], sizeof cbuf[j], "c%u", j);
      cnames[j] = cbuf[j];
    }
    int reproducible;
    model_meta_t meta = {.created_at = publish_created_at(&g_pub, creation_time(&reproducible)),
                         .score_scale = 1.0f};
    model_spec_t spec = {.n_items = n, .params = c->params, .meta = meta, .Y = Y,
                         .ldy = stride, .popularity = pop, .item_ids = ids,
                         .item_id_lens = lens, .item_category = cat, .n_categories = nc,
                         .category_names = cnames, .category_name_lens = clens};
    rc = publish_write(&g_pub, &spec, c->quiet ? NULL : stderr, errbuf);
    if (rc == 0 && !c->quiet)
      fprintf(stderr, "wrote %s: synthetic model, %u items, k=%u\n", c->out, n, k);
  } else {
    recd_errf(errbuf, rc, "out of memory for a synthetic model of %u items", n);
  }
  free(Y);
  free(pop);
  free(cat);
  free(idbuf);
  free(ids);
  free(lens);
  return rc;
}

static int cmd_import(const train_cfg_t *c, char *errbuf) {
  uint64_t rows = 0;
  FILE *progress = !c->quiet && isatty(STDERR_FILENO) ? stderr : NULL;
  int rc = redis_import_csv(&c->redis, c->csv, c->items, c->skip_bad, &rows, progress, errbuf);
  if (rc == 0 && !c->quiet)
    fprintf(stderr, "imported %llu interactions into %shist:*\n", (unsigned long long)rows,
            c->redis.prefix);
  return rc;
}

static void print_metrics(const char *name, const model_metrics_t *m, const char *sep) {
  printf("  \"%s\": {\"precision@10\": %.6f, \"recall@10\": %.6f, \"ndcg@10\": %.6f, "
         "\"map@10\": %.6f, \"coverage\": %.6f}%s\n",
         name, m->precision, m->recall, m->ndcg, m->map, m->coverage, sep);
}

/* Loads (and so fully validates) a model and prints its header as JSON. */
static int cmd_info(const train_cfg_t *c, char *errbuf) {
  model_t *m;
  int rc = model_load(&m, c->info, errbuf);
  if (rc != 0)
    return rc;
  const params_t *p = model_params(m);
  const model_meta_t *meta = model_meta(m);
  printf("{\n  \"version\": %u,\n  \"items\": %u,\n  \"factors\": %u,\n"
         "  \"categories\": %u,\n  \"groups\": %u,\n"
         "  \"file_bytes\": %zu,\n  \"checksum\": \"%08x\",\n  \"iterations\": %u,\n"
         "  \"lambda\": %g,\n  \"alpha\": %g,\n  \"confidence\": \"%s\",\n  \"eps\": %g,\n"
         "  \"reg_exponent\": %g,\n  \"cg_steps\": %u,\n  \"seed\": %llu,\n"
         "  \"created_at\": %lld,\n  \"users\": %llu,\n  \"interactions\": %llu,\n"
         "  \"train_seconds\": %.3f,\n  \"holdout\": %g,\n  \"holdout_users\": %llu,\n"
         "  \"score_scale\": %g,\n  \"serves\": \"%s\",\n  \"eval_split\": \"%s\",\n"
         "  \"half_life_days\": %g,\n  \"tuned_at\": %lld,\n",
         model_version(m), model_n_items(m), model_factors(m), model_n_categories(m),
         model_n_groups(m), model_file_size(m),
         model_checksum(m), p->iterations, (double)p->lambda, (double)p->alpha,
         p->conf_mode == PARAMS_CONF_LOG ? "log" : "linear", (double)p->eps,
         (double)p->reg_exponent, p->cg_steps, (unsigned long long)p->seed,
         (long long)meta->created_at, (unsigned long long)meta->n_users,
         (unsigned long long)meta->n_interactions, meta->train_seconds,
         meta->holdout_fraction, (unsigned long long)meta->holdout_users,
         (double)meta->score_scale, model_serves_name(meta->serves),
         model_split_name(meta->eval_split), meta->half_life_days, (long long)meta->tuned_at);
  print_metrics("model", &meta->model, ",");
  print_metrics("popularity", &meta->popularity, ",");
  /* Baselines a model may lack (older files, no hold-out): null. */
  if (meta->has_ease)
    print_metrics("ease", &meta->ease, ",");
  else
    printf("  \"ease\": null,\n");
  if (meta->has_recent)
    print_metrics("recent_popularity", &meta->recent_popularity, "");
  else
    printf("  \"recent_popularity\": null\n");
  printf("}\n");
  model_free(m);
  return 0;
}

/* --export-factors, --import-factors: factors.c. */
static int cmd_factors(const train_cfg_t *c, char *errbuf) {
  int reproducible;
  factors_opts_t o = {.file = c->factors_file, .model = c->model, .factor_ids = c->factor_ids,
                      .csv = c->csv, .items = c->items, .skip_bad = c->skip_bad,
                      .redis = c->redis, .params = c->params,
                      .half_life_days = c->half_life_days, .history_limit = c->history_limit,
                      .created_at = creation_time(&reproducible), .quiet = c->quiet,
                      .pub = &g_pub};
  if (!(c->given & TRAIN_GIVEN_FACTORS))
    o.params.factors = 0; /* the file's */
  if (c->mode == MODE_EXPORT_FACTORS)
    return factors_export_main(&o, errbuf);
  return factors_import_main(&o, errbuf);
}

/* --refresh-items, --eval-refresh, --eval-cart: refresh.c and cart_eval.c. */
static int cmd_refresh(const train_cfg_t *c, char *errbuf) {
  refresh_opts_t o = {.model = c->model, .out = c->out, .csv = c->csv, .items = c->items,
                      .skip_bad = c->skip_bad, .redis = c->redis,
                      .min_item_users = c->min_item_users,
                      .history_limit = c->history_limit, .params = c->params,
                      .threads = c->threads, .quiet = c->quiet,
                      .pub = c->mode == MODE_REFRESH ? &g_pub : NULL};
  if (c->mode == MODE_EVAL_REFRESH)
    return refresh_eval_main(&o, 0.05, errbuf);
  if (c->mode == MODE_EVAL_CART)
    return cart_eval_main(&o, errbuf);
  return refresh_main(&o, errbuf);
}

int main(int argc, char **argv) {
  train_cfg_t cfg;
  train_cfg_defaults(&cfg);
  if (parse_args(argc, argv, &cfg) != 0)
    return 2;
  /* Training threads across rows itself; BLAS calls inside a row are tiny
   * (k x k), so BLAS threads would only oversubscribe the cores. */
  openblas_set_num_threads(1);
  char errbuf[RECD_ERRLEN] = "";
  int rc = 0;
  /* Before any work: the output is locked and the debris of interrupted
   * runs removed (publish.h). */
  g_pub.lock_fd = -1;
  if (cfg.out != NULL &&
      (cfg.mode == MODE_TRAIN || cfg.mode == MODE_SYNTHETIC || cfg.mode == MODE_REFRESH ||
       cfg.mode == MODE_IMPORT_FACTORS))
    rc = publish_begin(&g_pub, cfg.out, cfg.keep, stderr, errbuf);
  /* Behind Sentinel: the primary now, then as if given with --redis-host. */
  if (rc == 0 && cfg.sentinels != NULL &&
      (rc = sentinel_lookup_primary(cfg.sentinels, cfg.master_name,
                                    cfg.sentinel_password ? cfg.sentinel_password : "",
                                    &cfg.redis, &cfg.primary, errbuf)) == 0) {
    cfg.redis.host = cfg.primary.host;
    cfg.redis.port = cfg.primary.port;
    if (!cfg.quiet)
      fprintf(stderr, "recd-train: the sentinels name %s:%d as the primary \"%s\"\n",
              cfg.primary.host, cfg.primary.port, cfg.master_name);
  }
  if (rc == 0) {
    switch (cfg.mode) {
    case MODE_IMPORT: rc = cmd_import(&cfg, errbuf); break;
    case MODE_SYNTHETIC: rc = cmd_synthetic(&cfg, errbuf); break;
    case MODE_INFO: rc = cmd_info(&cfg, errbuf); break;
    case MODE_REFRESH:
    case MODE_EVAL_REFRESH:
    case MODE_EVAL_CART: rc = cmd_refresh(&cfg, errbuf); break;
    case MODE_EXPORT_FACTORS:
    case MODE_IMPORT_FACTORS: rc = cmd_factors(&cfg, errbuf); break;
    default: rc = cmd_train(&cfg, errbuf); break;
    }
  }
  publish_end(&g_pub);
  if (rc != 0) {
    fprintf(stderr, "recd-train: %s\n", errbuf[0] ? errbuf : recd_strerror(rc));
    return g_refused ? TRAIN_EXIT_REFUSED : 1;
  }
  return 0;
}
