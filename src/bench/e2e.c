/* e2e.c - `recd-bench e2e`: RECOMMEND (or SIMILAR, RANK, FEEDBACK) against
 * a running recd.
 *
 * One thread, one libuv loop, C hiredis async connections (the libuv
 * adapter), each keeping P requests in flight until N have been answered:
 * the load generator costs one core at most, like redis-benchmark, and
 * leaves the other to the daemon. A request's latency is the time from its
 * send to its reply, so with P > 1 it includes queueing behind the
 * connection's earlier requests, as a pipelining client sees it.
 * --history and --args add the storefront rules' options (a cart, caps,
 * promoted slots) to every request, to measure what they cost. --similar
 * sends SIMILAR <item> COUNT c for random items instead (a product page),
 * to set SIMILAR's latency next to RECOMMEND's on the same daemon; --rank N
 * sends RANK <user> with N random items of the catalogue (a category page
 * re-ordered), --feedback FEEDBACK <user> <item> TYPE click (a write: the
 * history ZSET, its time and the outcome counters, one Lua script in
 * Redis). An error reply counts as an error for every command; RECOMMEND,
 * SIMILAR and RANK must also answer an array.
 */
#include <getopt.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* hiredis's adapter header defines non-prototyped static functions. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <hiredis/adapters/libuv.h>
#pragma GCC diagnostic pop

#include "bench.h"
#include "recd/csv.h"
#include "recd/dataset.h"
#include "recd/rng.h"

#define E2E_RANK_MAX 1000 /* RANK's items per request */

typedef struct e2e {
  const char *host;
  uint32_t port, conns, pipeline, count;
  uint64_t requests, sent, done, errors, empty;
  uint64_t seed;
  const char *users_csv;
  char **users;
  size_t n_users;
  char **items;           /* the CSV's items: HISTORY's candidates */
  size_t n_items;
  uint32_t history;       /* HISTORY n random items per request (0 = none) */
  int similar;            /* SIMILAR <item> instead of RECOMMEND <user> */
  uint32_t rank;          /* RANK <user> with this many random items (0 = off) */
  int feedback;           /* FEEDBACK <user> <item> TYPE click */
  uint32_t n_synth;       /* --items: SIMILAR's items are i0 .. i<n-1> */
  char *args;             /* more options, split into words */
  char *words[64];
  size_t n_words;
  rng_t rng;
  double *lat;
  double t0, t1;
  uint32_t open;
  uv_loop_t *loop;
} e2e_t;

typedef struct e2e_conn {
  e2e_t *b;
  redisAsyncContext *ac;
} e2e_conn_t;

typedef struct e2e_req {
  e2e_conn_t *c;
  double sent_us;
} e2e_req_t;

void bench_e2e_usage(FILE *fp) {
  fprintf(fp,
"usage: recd-bench e2e [options]\n"
"\n"
"Sends RECOMMEND <user> COUNT <c> (or, with --similar, SIMILAR <item>\n"
"COUNT <c>) to a running recd from one event loop\n"
"over --connections connections with --pipeline requests in flight on each,\n"
"until --requests have been answered; prints throughput and the latency\n"
"median, p90, p99, p99.9 and max in microseconds (send to reply).\n"
"\n"
"  --host H            recd address (127.0.0.1)\n"
"  --port P            recd port (7070)\n"
"  --connections C     concurrent connections (1)\n"
"  --pipeline P        requests in flight per connection (1)\n"
"  --requests N        requests in total (10000)\n"
"  --count C           COUNT of each RECOMMEND (10)\n"
"  --users-csv FILE    sample users from this interactions CSV (user column);\n"
"                      without it, users are u0..u9999 (unknown: popular path)\n"
"  --seed S            user sampling seed (1)\n"
"  --history N         each request carries HISTORY N with N random items of\n"
"                      --users-csv (a cart); 0 = none (0)\n"
"  --args \"WORDS\"      more RECOMMEND options, e.g. \"MAXPERCATEGORY 2 PROMOTE 2\"\n"
"  --similar           SIMILAR <item> COUNT <c> [WORDS] for random items: those of\n"
"                      --users-csv, or i0 .. i<N-1> with --items N\n"
"  --items N           the catalogue's ids are i0 .. i<N-1> (recd-train\n"
"                      --synthetic N), for --similar without --users-csv\n"
"  --rank N            RANK <user> <N random items> [HISTORY ...] [WORDS] instead\n"
"                      (items as for --similar; N at most 1000)\n"
"  --feedback          FEEDBACK <user> <random item> TYPE click instead (writes\n"
"                      to the customers' histories in Redis)\n");
}

static void e2e__send(e2e_conn_t *c);

static void e2e__on_reply(redisAsyncContext *ac, void *r, void *priv) {
  (void)ac;
  e2e_req_t *q = priv;
  e2e_conn_t *c = q->c;
  e2e_t *b = c->b;
  redisReply *reply = r;
  double now = bench_now_us();
  if (reply == NULL || reply->type == REDIS_REPLY_ERROR ||
      (!b->feedback && reply->type != REDIS_REPLY_ARRAY))
    b->errors++;
  else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 0)
    b->empty++;
  if (b->done < b->requests)
    b->lat[b->done] = now - q->sent_us;
  b->done++;
  free(q);
  if (b->done == b->requests) {
    b->t1 = now;
  }
  if (reply == NULL)
    return; /* connection gone: its disconnect callback accounts for it */
  if (b->sent < b->requests)
    e2e__send(c);
  else if (b->done >= b->requests)
    uv_stop(b->loop);
}

static void e2e__send(e2e_conn_t *c) {
  e2e_t *b = c->b;
  e2e_req_t *q = malloc(sizeof *q);
  if (q == NULL)
    return;
  q->c = c;
  q->sent_us = bench_now_us();
  char ubuf[32];
  const char *user = ubuf;
  if (b->similar) { /* the catalogue's items: the CSV's, or i0 .. i<n-1> */
    if (b->n_items > 0)
      user = b->items[rng_below(&b->rng, b->n_items)];
    else
      snprintf(ubuf, sizeof ubuf, "i%u", (unsigned)rng_below(&b->rng, b->n_synth));
  } else if (b->n_users > 0) {
    user = b->users[rng_below(&b->rng, b->n_users)];
  } else {
    snprintf(ubuf, sizeof ubuf, "u%u", (unsigned)rng_below(&b->rng, 10000));
  }
  b->sent++;
  /* RECOMMEND user COUNT c [HISTORY n item...] [words...], or RANK user
   * item... [HISTORY ...] [words...], or FEEDBACK user item TYPE click */
  const char *argv[4 + 2 + 256 + 64 + E2E_RANK_MAX];
  char ibuf[E2E_RANK_MAX][16];
  size_t argc = 0;
  char cbuf[16], hbuf[16];
  snprintf(cbuf, sizeof cbuf, "%u", b->count);
  argv[argc++] = b->feedback ? "FEEDBACK" : b->rank ? "RANK" : b->similar ? "SIMILAR" : "RECOMMEND";
  argv[argc++] = user;
  if (b->rank || b->feedback) {
    const uint32_t n = b->feedback ? 1 : b->rank;
    for (uint32_t j = 0; j < n; j++) {
      if (b->n_items > 0) {
        argv[argc++] = b->items[rng_below(&b->rng, b->n_items)];
      } else {
        snprintf(ibuf[j], sizeof ibuf[j], "i%u", (unsigned)rng_below(&b->rng, b->n_synth));
        argv[argc++] = ibuf[j];
      }
    }
    if (b->feedback) {
      argv[argc++] = "TYPE";
      argv[argc++] = "click";
    }
  } else {
    argv[argc++] = "COUNT";
    argv[argc++] = cbuf;
  }
  if (b->history > 0) {
    snprintf(hbuf, sizeof hbuf, "%u", b->history);
    argv[argc++] = "HISTORY";
    argv[argc++] = hbuf;
    for (uint32_t j = 0; j < b->history; j++)
      argv[argc++] = b->items[rng_below(&b->rng, b->n_items)];
  }
  for (size_t j = 0; j < b->n_words; j++)
    argv[argc++] = b->words[j];
  if (redisAsyncCommandArgv(c->ac, e2e__on_reply, q, (int)argc, argv, NULL) != REDIS_OK) {
    free(q);
    b->errors++;
    b->done++;
  }
}

static void e2e__on_connect(const redisAsyncContext *ac, int status) {
  if (status != REDIS_OK)
    fprintf(stderr, "recd-bench e2e: connect: %s\n", ac->errstr);
}

static void e2e__on_disconnect(const redisAsyncContext *ac, int status) {
  e2e_conn_t *c = ac->data;
  (void)status;
  c->b->open--;
}

/* Distinct users of an interactions CSV, through the data set reader. */
static int e2e__load_users(e2e_t *b) {
  dataset_t ds;
  char err[RECD_ERRLEN];
  uint64_t skipped;
  if (dataset_init(&ds) != 0 || dataset_read_csv(&ds, b->users_csv, 1, &skipped, NULL, err) != 0) {
    fprintf(stderr, "recd-bench e2e: %s\n", err);
    dataset_free(&ds);
    return -1;
  }
  b->n_users = dataset_n_users(&ds);
  b->users = malloc(b->n_users * sizeof *b->users);
  for (size_t i = 0; b->users && i < b->n_users; i++)
    b->users[i] = strdup(idmap_key(ds.users, (uint32_t)i, NULL));
  b->n_items = dataset_n_items(&ds);
  b->items = malloc((b->n_items ? b->n_items : 1) * sizeof *b->items);
  for (size_t i = 0; b->items && i < b->n_items; i++)
    b->items[i] = strdup(idmap_key(ds.items, (uint32_t)i, NULL));
  dataset_free(&ds);
  return b->users && b->items ? 0 : -1;
}

int bench_e2e_main(int argc, char **argv) {
  static const struct option opts[] = {
    {"host", required_argument, NULL, 'H'}, {"port", required_argument, NULL, 'p'},
    {"connections", required_argument, NULL, 'c'}, {"pipeline", required_argument, NULL, 'P'},
    {"requests", required_argument, NULL, 'n'}, {"count", required_argument, NULL, 'k'},
    {"users-csv", required_argument, NULL, 'u'}, {"seed", required_argument, NULL, 's'},
    {"history", required_argument, NULL, 'y'}, {"args", required_argument, NULL, 'a'},
    {"similar", no_argument, NULL, 'S'}, {"items", required_argument, NULL, 'I'},
    {"rank", required_argument, NULL, 'R'}, {"feedback", no_argument, NULL, 'F'},
    {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  e2e_t b = {.host = "127.0.0.1", .port = 7070, .conns = 1, .pipeline = 1, .count = 10,
             .requests = 10000, .seed = 1};
  int ch;
  uint32_t n32;
  optind = 1;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
    case 'H': b.host = optarg; break;
    case 'p': bad = bench_opt_u32("e2e", "port", optarg, 1, 65535, &b.port); break;
    case 'c': bad = bench_opt_u32("e2e", "connections", optarg, 1, 10000, &b.conns); break;
    case 'P': bad = bench_opt_u32("e2e", "pipeline", optarg, 1, 10000, &b.pipeline); break;
    case 'n': bad = bench_opt_u32("e2e", "requests", optarg, 1, 100000000, &n32);
      b.requests = n32; break;
    case 'k': bad = bench_opt_u32("e2e", "count", optarg, 0, 100000, &b.count); break;
    case 'u': b.users_csv = optarg; break;
    case 's': bad = bench_opt_u64("e2e", "seed", optarg, &b.seed); break;
    case 'y': bad = bench_opt_u32("e2e", "history", optarg, 0, 256, &b.history); break;
    case 'a': b.args = optarg; break;
    case 'S': b.similar = 1; break;
    case 'R': bad = bench_opt_u32("e2e", "rank", optarg, 1, E2E_RANK_MAX, &b.rank); break;
    case 'F': b.feedback = 1; break;
    case 'I': bad = bench_opt_u32("e2e", "items", optarg, 1, 100000000, &b.n_synth); break;
    case 'h': bench_e2e_usage(stdout); return 0;
    default:
      fprintf(stderr, "recd-bench e2e: unknown or incomplete option \"%s\"\n", argv[optind - 1]);
      return 2;
    }
    if (bad)
      return 2;
  }
  if (b.history > 0 && b.users_csv == NULL) {
    fprintf(stderr, "recd-bench e2e: --history needs --users-csv (its items fill the carts)\n");
    return 2;
  }
  if (b.similar && (b.history > 0 || (b.users_csv == NULL && b.n_synth == 0))) {
    fprintf(stderr, "recd-bench e2e: --similar needs --users-csv or --items (and takes no "
                    "--history)\n");
    return 2;
  }
  if (b.similar + (b.rank > 0) + b.feedback > 1) {
    fprintf(stderr, "recd-bench e2e: --similar, --rank and --feedback: one at a time\n");
    return 2;
  }
  if ((b.rank > 0 || b.feedback) && b.users_csv == NULL && b.n_synth == 0) {
    fprintf(stderr, "recd-bench e2e: --rank and --feedback need --users-csv or --items\n");
    return 2;
  }
  if (b.feedback && (b.history > 0 || b.args != NULL)) {
    fprintf(stderr, "recd-bench e2e: --feedback takes no --history or --args\n");
    return 2;
  }
  if (b.users_csv != NULL && e2e__load_users(&b) != 0)
    return 1;
  if (b.args != NULL) {
    b.args = strdup(b.args);
    for (char *save = NULL, *w = strtok_r(b.args, " ", &save); w != NULL;
         w = strtok_r(NULL, " ", &save)) {
      if (b.n_words == sizeof b.words / sizeof b.words[0]) {
        fprintf(stderr, "recd-bench e2e: --args: more than 64 words\n");
        return 2;
      }
      b.words[b.n_words++] = w;
    }
  }
  rng_seed(&b.rng, b.seed);
  b.lat = malloc(b.requests * sizeof *b.lat);
  e2e_conn_t *conns = calloc(b.conns, sizeof *conns);
  uv_loop_t loop;
  uv_loop_init(&loop);
  b.loop = &loop;
  for (uint32_t i = 0; i < b.conns; i++) {
    conns[i].b = &b;
    conns[i].ac = redisAsyncConnect(b.host, (int)b.port);
    if (conns[i].ac == NULL || conns[i].ac->err) {
      fprintf(stderr, "recd-bench e2e: cannot connect to %s:%u\n", b.host, b.port);
      return 1;
    }
    conns[i].ac->data = &conns[i];
    redisLibuvAttach(conns[i].ac, &loop);
    redisAsyncSetConnectCallback(conns[i].ac, e2e__on_connect);
    redisAsyncSetDisconnectCallback(conns[i].ac, e2e__on_disconnect);
    b.open++;
  }
  b.t0 = bench_now_us();
  for (uint32_t p = 0; p < b.pipeline; p++)
    for (uint32_t i = 0; i < b.conns && b.sent < b.requests; i++)
      e2e__send(&conns[i]);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (b.t1 == 0)
    b.t1 = bench_now_us();
  for (uint32_t i = 0; i < b.conns; i++)
    if (b.open > 0)
      redisAsyncDisconnect(conns[i].ac);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  uint64_t n = b.done < b.requests ? b.done : b.requests;
  bench_summary_t s;
  bench_summarize(b.lat, (size_t)n, &s);
  double secs = (b.t1 - b.t0) / 1e6;
  const char *what = b.feedback ? "FEEDBACK" : b.rank ? "RANK" : b.similar ? "SIMILAR" : "RECOMMEND";
  printf("recd-bench e2e: %llu %s requests, %u connections, pipeline %u, COUNT %u, %s\n",
         (unsigned long long)n, what, b.conns, b.pipeline, b.count,
         b.similar ? "random items" : b.n_users ? "sampled users" : "unknown users (popular path)");
  printf("  throughput %.0f requests/s over %.2f s; %llu errors, %llu empty answers\n",
         (double)n / secs, secs, (unsigned long long)b.errors, (unsigned long long)b.empty);
  printf("  latency us: median %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f\n", s.median,
         s.p90, s.p99, s.p999, s.max);
  for (size_t i = 0; i < b.n_users; i++)
    free(b.users[i]);
  free(b.users);
  for (size_t i = 0; i < b.n_items; i++)
    free(b.items[i]);
  free(b.items);
  free(b.args);
  free(b.lat);
  free(conns);
  return b.errors ? 1 : 0;
}
