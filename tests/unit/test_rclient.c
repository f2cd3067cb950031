/* test_rclient.c - the async Redis client against real redis-servers.
 *
 * Every test starts its own redis-server on a free loopback port (fork +
 * exec), sets data up with a plain synchronous hiredis context, drives the
 * client on a private uv loop and ends with uv_loop_close() == 0. Every
 * wait is bounded by a uv_timer so that a bug fails instead of hanging.
 * Servers are killed at the end of each test, by an atexit handler when an
 * assertion exits the test process early, by PR_SET_PDEATHSIG if the test
 * process dies of a signal, and by Check's killpg of the test's process
 * group on a timeout.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "rclient.h"
#include "testutil.h"

/* ---- redis-server processes ------------------------------------------- */

#define TR_MAX 4
static pid_t tr_pids[TR_MAX];

static void tr_kill_all(void) {
  for (int i = 0; i < TR_MAX; i++) {
    if (tr_pids[i] > 0) {
      kill(tr_pids[i], SIGKILL);
      waitpid(tr_pids[i], NULL, 0);
      tr_pids[i] = 0;
    }
  }
}

typedef struct tredis {
  pid_t pid;
  int port;
  const char *pass;  /* requirepass, NULL = none */
  char sock[108];    /* unixsocket path, "" = none */
} tredis_t;

static void tr_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}


static redisContext *tr_try_connect(const tredis_t *r) {
  struct timeval tv = {0, 200000};
  redisContext *ctx = redisConnectWithTimeout("127.0.0.1", r->port, tv);
  if (ctx == NULL || ctx->err) {
    if (ctx)
      redisFree(ctx);
    return NULL;
  }
  if (r->pass) {
    redisReply *rep = redisCommand(ctx, "AUTH %s", r->pass);
    int ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (rep)
      freeReplyObject(rep);
    if (!ok) {
      redisFree(ctx);
      return NULL;
    }
  }
  return ctx;
}

/* Starts redis-server on r->port (0: a free one) and waits for PONG. */
static void tr_start(tredis_t *r) {
  if (r->port == 0)
    r->port = tu_free_port();
  const char *extra[5];
  int n = 0;
  if (r->pass) {
    extra[n++] = "--requirepass";
    extra[n++] = r->pass;
  }
  if (r->sock[0]) {
    extra[n++] = "--unixsocket";
    extra[n++] = r->sock;
  }
  extra[n] = NULL;
  pid_t pid = tu_redis_spawn(r->port, extra);
  r->pid = pid;
  for (int i = 0; i < TR_MAX; i++) {
    if (tr_pids[i] == 0) {
      tr_pids[i] = pid;
      break;
    }
  }
  for (int i = 0; i < 250; i++) {
    redisContext *ctx = tr_try_connect(r);
    if (ctx) {
      redisReply *rep = redisCommand(ctx, "PING");
      int ok = rep && rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0;
      if (rep)
        freeReplyObject(rep);
      redisFree(ctx);
      if (ok)
        return;
    }
    ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "redis-server exited at start");
    tr_sleep_ms(20);
  }
  ck_abort_msg("redis-server did not answer PING on port %d", r->port);
}

static void tr_stop(tredis_t *r) {
  if (r->pid <= 0)
    return;
  kill(r->pid, SIGKILL);
  waitpid(r->pid, NULL, 0);
  for (int i = 0; i < TR_MAX; i++)
    if (tr_pids[i] == r->pid)
      tr_pids[i] = 0;
  r->pid = 0;
}

static redisContext *tr_sync(const tredis_t *r) {
  redisContext *ctx = tr_try_connect(r);
  ck_assert_ptr_nonnull(ctx);
  return ctx;
}

/* Runs a command given as argv (binary-safe) and checks it did not fail. */
static void tr_cmdv(redisContext *ctx, int argc, const char **argv, const size_t *lens) {
  redisReply *rep = redisCommandArgv(ctx, argc, argv, lens);
  ck_assert_ptr_nonnull(rep);
  ck_assert_msg(rep->type != REDIS_REPLY_ERROR, "%s: %s", argv[0], rep->str);
  freeReplyObject(rep);
}

static void tr_cmd(redisContext *ctx, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *rep = redisvCommand(ctx, fmt, ap);
  va_end(ap);
  ck_assert_ptr_nonnull(rep);
  ck_assert_msg(rep->type != REDIS_REPLY_ERROR, "%s: %s", fmt, rep->str);
  freeReplyObject(rep);
}

/* ---- loop helpers ------------------------------------------------------ */

typedef struct tloop {
  uv_loop_t loop;
  uv_timer_t deadline;
  int expired;
  int closed;          /* rclient close callbacks seen */
  char log[8192];      /* everything the client logged */
  size_t loglen;
} tloop_t;

static void tl_deadline_cb(uv_timer_t *t) {
  ((tloop_t *)t->data)->expired = 1;
}

static void tl_init(tloop_t *t) {
  memset(t, 0, sizeof *t);
  ck_assert_int_eq(uv_loop_init(&t->loop), 0);
  ck_assert_int_eq(uv_timer_init(&t->loop, &t->deadline), 0);
  t->deadline.data = t;
}

typedef int (*tl_pred)(const void *arg);

/* Runs the loop until pred(arg) holds or ms pass; returns pred(arg). */
static int tl_run_until(tloop_t *t, tl_pred pred, const void *arg, unsigned ms) {
  t->expired = 0;
  uv_timer_start(&t->deadline, tl_deadline_cb, ms, 0);
  while (!(pred && pred(arg)) && !t->expired)
    uv_run(&t->loop, UV_RUN_ONCE);
  uv_timer_stop(&t->deadline);
  return pred ? pred(arg) : 0;
}

static void tl_run_for(tloop_t *t, unsigned ms) {
  tl_run_until(t, NULL, NULL, ms);
}

typedef struct int_ge {
  const int *v;
  int want;
} int_ge_t;

static int int_ge(const void *p) {
  const int_ge_t *g = p;
  return *g->v >= g->want;
}

static void tl_wait_count(tloop_t *t, const int *v, int want, unsigned ms) {
  int_ge_t g = {v, want};
  ck_assert_msg(tl_run_until(t, int_ge, &g, ms), "waited %u ms for %d callbacks, got %d", ms,
                want, *v);
}

static void tl_log_cb(int level, const char *msg, void *arg) {
  tloop_t *t = arg;
  int n = snprintf(t->log + t->loglen, sizeof t->log - t->loglen, "%d %s\n", level, msg);
  if (n > 0 && t->loglen + (size_t)n < sizeof t->log)
    t->loglen += (size_t)n;
  if (getenv("RCLIENT_TEST_VERBOSE"))
    fprintf(stderr, "[log %d] %s\n", level, msg);
}

static void tl_closed_cb(void *arg) {
  ((tloop_t *)arg)->closed++;
}

/* Closes the client and the loop; the loop must end with no handle left. */
static void tl_finish(tloop_t *t, rclient_t *c) {
  if (c) {
    rclient_close(c, tl_closed_cb, t);
    tl_wait_count(t, &t->closed, 1, 2000);
    ck_assert_int_eq(t->closed, 1);
  }
  uv_close((uv_handle_t *)&t->deadline, NULL);
  ck_assert_int_eq(uv_run(&t->loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&t->loop), 0);
}

static rclient_opts_t test_opts(tloop_t *t, const tredis_t *r) {
  rclient_opts_t o;
  rclient_opts_init(&o);
  o.port = r->port;
  o.prefix = "t:";
  o.connect_timeout_ms = 1000;
  o.reconnect_min_ms = 50;
  o.reconnect_max_ms = 400;
  o.unavailable_refresh_ms = 100;
  o.log = tl_log_cb;
  o.log_arg = t;
  return o;
}

static rclient_t *new_client(tloop_t *t, const rclient_opts_t *o) {
  rclient_t *c = NULL;
  char err[RECD_ERRLEN] = "";
  ck_assert_msg(rclient_new(&t->loop, o, &c, err) == 0, "rclient_new: %s", err);
  ck_assert_ptr_nonnull(c);
  return c;
}

static int is_connected(const void *p) {
  rclient_stats_t st;
  rclient_get_stats(p, &st);
  return st.connected;
}

static void wait_connected(tloop_t *t, rclient_t *c) {
  ck_assert_msg(tl_run_until(t, is_connected, c, 3000), "client did not connect");
}

/* ---- result capture ---------------------------------------------------- */

#define CAP_N 16
typedef struct fetch_cap {
  int calls;
  rclient_status_t st;
  char err[RCLIENT_ERRLEN];
  size_t n;
  char ids[CAP_N][RCLIENT_ID_MAX];
  size_t lens[CAP_N];
  float w[CAP_N];
  int personalize;
  size_t ncats;
  char cats[CAP_N][32];
  size_t catlens[CAP_N];
  float catv[CAP_N];
  size_t anomalies;
  size_t nhidden;
  char hidden[CAP_N][16];
  size_t nimp;
  char imp[CAP_N][2][48]; /* item, value (NUL-terminated copies) */
  int has_ht;             /* hist_times was not NULL */
  int64_t ht[CAP_N];      /* hist_times */
  size_t ntimes;
  char tids[CAP_N][16];   /* times[i].id (NUL-terminated copies) */
  int64_t tv[CAP_N];
  rclient_t *close_me; /* closes this client from inside the callback */
} fetch_cap_t;

static void fetch_cb(rclient_t *c, const rclient_user_t *res, void *arg) {
  fetch_cap_t *f = arg;
  (void)c;
  f->calls++;
  f->st = res->status;
  snprintf(f->err, sizeof f->err, "%s", res->errstr ? res->errstr : "");
  ck_assert(res->status == RCLIENT_OK || res->errstr != NULL);
  f->n = res->hist_n;
  for (size_t i = 0; i < res->hist_n && i < CAP_N; i++) {
    f->lens[i] = res->hist_lens[i];
    memcpy(f->ids[i], res->hist_ids[i], res->hist_lens[i]);
    f->w[i] = res->hist_weights[i];
  }
  f->personalize = res->personalize;
  f->ncats = res->cats_n;
  for (size_t i = 0; i < res->cats_n && i < CAP_N; i++) {
    ck_assert_uint_lt(res->cats[i].len, 32);
    f->catlens[i] = res->cats[i].len;
    memcpy(f->cats[i], res->cats[i].name, res->cats[i].len);
    f->catv[i] = res->cats[i].value;
  }
  f->anomalies = res->anomalies;
  f->nhidden = res->hidden_n;
  for (size_t i = 0; i < res->hidden_n && i < CAP_N; i++)
    snprintf(f->hidden[i], sizeof f->hidden[i], "%.*s", (int)res->hidden_lens[i],
             res->hidden_ids[i]);
  f->nimp = res->imp_n;
  for (size_t i = 0; i < res->imp_n && i < CAP_N; i++)
    for (int j = 0; j < 2; j++)
      snprintf(f->imp[i][j], sizeof f->imp[i][j], "%.*s", (int)res->imp_lens[2 * i + j],
               res->imp[2 * i + j]);
  f->has_ht = res->hist_times != NULL;
  for (size_t i = 0; f->has_ht && i < res->hist_n && i < CAP_N; i++)
    f->ht[i] = res->hist_times[i];
  f->ntimes = res->times_n;
  ck_assert((res->times_n == 0) == (res->times == NULL));
  for (size_t i = 0; i < res->times_n && i < CAP_N; i++) {
    snprintf(f->tids[i], sizeof f->tids[i], "%.*s", (int)res->times[i].len, res->times[i].id);
    f->tv[i] = res->times[i].t;
  }
  if (f->close_me)
    rclient_close(f->close_me, NULL, NULL);
}

typedef struct fb_cap {
  int calls;
  rclient_status_t st;
  double score;
  char err[RCLIENT_ERRLEN];
} fb_cap_t;

static void fb_cb(rclient_t *c, rclient_status_t st, double score, const char *errstr,
                  void *arg) {
  fb_cap_t *f = arg;
  (void)c;
  f->calls++;
  f->st = st;
  f->score = score;
  ck_assert((st == RCLIENT_OK) == (errstr == NULL));
  snprintf(f->err, sizeof f->err, "%s", errstr ? errstr : "");
}

/* Fetches user and waits for the answer. */
static void fetch(tloop_t *t, rclient_t *c, const char *user, size_t ulen, size_t max,
                  fetch_cap_t *f) {
  memset(f, 0, sizeof *f);
  ck_assert_int_eq(rclient_fetch_user(c, user, ulen, max, 0, fetch_cb, f), 0);
  ck_assert_int_eq(f->calls, 0); /* never synchronous */
  tl_wait_count(t, &f->calls, 1, 2000);
}

/* The same with flags. */
static void fetch_flags(tloop_t *t, rclient_t *c, const char *user, unsigned flags,
                        fetch_cap_t *f) {
  memset(f, 0, sizeof *f);
  ck_assert_int_eq(rclient_fetch_user(c, user, strlen(user), 100, flags, fetch_cb, f), 0);
  tl_wait_count(t, &f->calls, 1, 2000);
}

static int cat_index(const fetch_cap_t *f, const char *name) {
  for (size_t i = 0; i < f->ncats; i++)
    if (f->catlens[i] == strlen(name) && memcmp(f->cats[i], name, f->catlens[i]) == 0)
      return (int)i;
  return -1;
}

/* ---- tests ------------------------------------------------------------- */

static int has_hidden(const fetch_cap_t *f, const char *id) {
  for (size_t i = 0; i < f->nhidden; i++)
    if (strcmp(f->hidden[i], id) == 0)
      return 1;
  return 0;
}

/* The hidden set comes with every read; the impressions only when asked
 * for; wrong types and oversized entries are anomalies, not failures. */
START_TEST(test_fetch_hidden_and_impressions) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "ZADD t:hist:ann 2 a 1 b");
  tr_cmd(ctx, "SADD t:hidden:ann h1 h2");
  tr_cmd(ctx, "HSET t:imp:ann a 1000|v|home|2 b 2000|v|cart|1");
  tr_cmd(ctx, "SET t:hidden:bob notaset");
  tr_cmd(ctx, "SET t:imp:bob notahash");
  tr_cmd(ctx, "ZADD t:hist:bob 1 z");
  char big[1100];
  memset(big, 'v', sizeof big);
  const char *hargv[] = {"HSET", "t:imp:cy", "ok", "1|v|p|1", "big", big};
  size_t hlens[] = {4, 8, 2, 7, 3, sizeof big};
  tr_cmdv(ctx, 6, hargv, hlens);

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);

  fetch_cap_t f;
  fetch_flags(&t, c, "ann", 0, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 2);
  ck_assert_uint_eq(f.nhidden, 2);
  ck_assert(has_hidden(&f, "h1") && has_hidden(&f, "h2"));
  ck_assert_uint_eq(f.nimp, 0); /* not asked for */

  fetch_flags(&t, c, "ann", RCLIENT_FETCH_IMPRESSIONS, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 2); /* the history still comes last, whole */
  ck_assert_int_eq(f.ids[0][0], 'a');
  ck_assert_uint_eq(f.nhidden, 2);
  ck_assert_uint_eq(f.nimp, 2);
  for (size_t i = 0; i < 2; i++) {
    const char *want = strcmp(f.imp[i][0], "a") == 0 ? "1000|v|home|2" : "2000|v|cart|1";
    ck_assert_str_eq(f.imp[i][1], want);
  }

  /* wrong types: anomalies, the history is still read */
  fetch_flags(&t, c, "bob", RCLIENT_FETCH_IMPRESSIONS, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 1);
  ck_assert_uint_eq(f.nhidden, 0);
  ck_assert_uint_eq(f.nimp, 0);
  ck_assert_uint_eq(f.anomalies, 2);

  /* an oversized impression value is skipped, the rest kept */
  fetch_flags(&t, c, "cy", RCLIENT_FETCH_IMPRESSIONS, &f);
  ck_assert_uint_eq(f.nimp, 1);
  ck_assert_str_eq(f.imp[0][0], "ok");
  ck_assert_uint_eq(f.anomalies, 1);

  /* unknown flags are refused */
  memset(&f, 0, sizeof f);
  ck_assert_int_eq(rclient_fetch_user(c, "x", 1, 10, 0x80u, fetch_cb, &f), RECD_EINVAL);

  tl_finish(&t, c);
  ck_assert_int_eq(f.calls, 0);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

static int64_t time_of(const fetch_cap_t *f, const char *id) {
  for (size_t i = 0; i < f->ntimes; i++)
    if (strcmp(f->tids[i], id) == 0)
      return f->tv[i];
  return -1;
}

static uint64_t commands_sent(const rclient_t *c) {
  rclient_stats_t st;
  rclient_get_stats(c, &st);
  return st.commands_sent;
}

/* RCLIENT_FETCH_TIMES: time:<user> in the same round trip, only when
 * asked for; each history entry gets its item's time; a score that is no
 * time (fractional, negative, inf, an integer beyond 2^53) and an
 * oversized id are anomalies (their items untimed); a key of the wrong
 * type is one. */
START_TEST(test_fetch_times) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "ZADD t:hist:ann 5 a 3 b 1 c 2 d");
  /* a, b, d: times (0 and 2^53 are times); x has no history */
  tr_cmd(ctx, "ZADD t:time:ann 1700000000 a 1600000000 b 1.5 c 0 d 100 x "
              "9007199254740992 e -5 neg +inf inf 1e20 big");
  char longid[300];
  memset(longid, 'L', sizeof longid);
  const char *largv[] = {"ZADD", "t:time:ann", "7", longid};
  size_t llens[] = {4, 10, 1, sizeof longid};
  tr_cmdv(ctx, 4, largv, llens);
  tr_cmd(ctx, "HSET t:imp:ann a 1000|v|home|2");
  tr_cmd(ctx, "SET t:time:bob notazset");
  tr_cmd(ctx, "ZADD t:hist:bob 1 z");
  tr_cmd(ctx, "ZADD t:time:cy 5 only"); /* times, no history */
  /* binary ids: "p\0q" is found, "p" is not it */
  const char *bargv[] = {"ZADD", "t:hist:dee", "2", "p\0q", "1", "p"};
  size_t blens[] = {4, 10, 1, 3, 1, 1};
  tr_cmdv(ctx, 6, bargv, blens);
  const char *targv[] = {"ZADD", "t:time:dee", "42", "p\0q"};
  size_t tlens[] = {4, 10, 2, 3};
  tr_cmdv(ctx, 4, targv, tlens);

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);

  /* without the flag the time key is not read: 3 commands, no times */
  fetch_cap_t f;
  uint64_t before = commands_sent(c);
  fetch_flags(&t, c, "ann", 0, &f);
  ck_assert_uint_eq(commands_sent(c) - before, 3);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 4);
  ck_assert_int_eq(f.has_ht, 0);
  ck_assert_uint_eq(f.ntimes, 0);
  ck_assert_uint_eq(f.anomalies, 0);

  before = commands_sent(c);
  fetch_flags(&t, c, "ann", RCLIENT_FETCH_TIMES, &f);
  ck_assert_uint_eq(commands_sent(c) - before, 4);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 4); /* the history still comes whole, strongest first */
  const char *want[] = {"a", "b", "d", "c"};
  const int64_t wt[] = {1700000000, 1600000000, 0, RCLIENT_NO_TIME};
  ck_assert_int_eq(f.has_ht, 1);
  for (int i = 0; i < 4; i++) {
    ck_assert_int_eq(f.ids[i][0], want[i][0]);
    ck_assert_msg(f.ht[i] == wt[i], "%s: %lld", want[i], (long long)f.ht[i]);
  }
  ck_assert_uint_eq(f.ntimes, 5); /* a b d x e */
  ck_assert_int_eq(time_of(&f, "a"), 1700000000);
  ck_assert_int_eq(time_of(&f, "x"), 100);
  ck_assert_int_eq(time_of(&f, "e"), 9007199254740992LL);
  ck_assert_int_eq(time_of(&f, "c"), -1);
  ck_assert_uint_eq(f.anomalies, 5); /* 1.5, -5, inf, 1e20, the 300-byte id */

  /* with the impressions too: every reply goes to its part */
  before = commands_sent(c);
  fetch_flags(&t, c, "ann", RCLIENT_FETCH_TIMES | RCLIENT_FETCH_IMPRESSIONS, &f);
  ck_assert_uint_eq(commands_sent(c) - before, 5);
  ck_assert_uint_eq(f.n, 4);
  ck_assert_uint_eq(f.nimp, 1);
  ck_assert_str_eq(f.imp[0][1], "1000|v|home|2");
  ck_assert_uint_eq(f.ntimes, 5);
  ck_assert(f.has_ht && f.ht[0] == 1700000000);

  /* a time key of the wrong type: one anomaly, the history untimed */
  fetch_flags(&t, c, "bob", RCLIENT_FETCH_TIMES, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 1);
  ck_assert(f.has_ht && f.ht[0] == RCLIENT_NO_TIME);
  ck_assert_uint_eq(f.ntimes, 0);
  ck_assert_uint_eq(f.anomalies, 1);

  /* times without a history: the map, no history times */
  fetch_flags(&t, c, "cy", RCLIENT_FETCH_TIMES, &f);
  ck_assert_uint_eq(f.n, 0);
  ck_assert_int_eq(f.has_ht, 0);
  ck_assert_uint_eq(f.ntimes, 1);
  ck_assert_int_eq(time_of(&f, "only"), 5);

  fetch_flags(&t, c, "dee", RCLIENT_FETCH_TIMES, &f);
  ck_assert_uint_eq(f.n, 2);
  ck_assert_uint_eq(f.lens[0], 3);
  ck_assert(f.ht[0] == 42 && f.ht[1] == RCLIENT_NO_TIME);

  /* an unknown customer */
  fetch_flags(&t, c, "nobody", RCLIENT_FETCH_TIMES, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n + f.ntimes + f.anomalies, 0);

  tl_finish(&t, c);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

START_TEST(test_fetch_history) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "ZADD t:hist:alice 5 a 3 b 10 c 1 d");
  /* bob: a binary id, and four entries that must be skipped */
  char longid[300];
  memset(longid, 'L', sizeof longid);
  const char *zargv[] = {"ZADD", "t:hist:bob", "7", "x\0y", "20", longid,
                         "-1", "neg", "0", "zero", "+inf", "infinite", "2", "ok"};
  size_t zlens[] = {4, 10, 1, 3, 2, sizeof longid, 2, 3, 1, 4, 4, 8, 1, 2};
  tr_cmdv(ctx, 14, zargv, zlens);

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);

  fetch_cap_t f;
  fetch(&t, c, "alice", 5, 100, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 4);
  const char *want[] = {"c", "a", "b", "d"};
  const float ww[] = {10, 5, 3, 1};
  for (int i = 0; i < 4; i++) {
    ck_assert_uint_eq(f.lens[i], 1);
    ck_assert_int_eq(f.ids[i][0], want[i][0]);
    ck_assert_float_eq(f.w[i], ww[i]);
  }
  ck_assert_int_eq(f.personalize, 1);
  ck_assert_uint_eq(f.ncats, 0);
  ck_assert_uint_eq(f.anomalies, 0);

  /* the cap keeps the strongest */
  fetch(&t, c, "alice", 5, 2, &f);
  ck_assert_uint_eq(f.n, 2);
  ck_assert_int_eq(f.ids[0][0], 'c');
  ck_assert_int_eq(f.ids[1][0], 'a');

  fetch(&t, c, "bob", 3, 100, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 2);
  ck_assert_uint_eq(f.lens[0], 3);
  ck_assert_int_eq(memcmp(f.ids[0], "x\0y", 3), 0);
  ck_assert_float_eq(f.w[0], 7);
  ck_assert_uint_eq(f.lens[1], 2);
  ck_assert_int_eq(memcmp(f.ids[1], "ok", 2), 0);
  ck_assert_uint_eq(f.anomalies, 4); /* +inf, 300-byte id, 0, -1 */

  /* unknown user: not an error */
  fetch(&t, c, "nobody", 6, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 0);
  ck_assert_int_eq(f.personalize, 1);
  ck_assert_uint_eq(f.anomalies, 0);

  /* binary-safe user id: "u\0v" is not "u" */
  const char *bargv[] = {"ZADD", "t:hist:u\0v", "1", "bin"};
  size_t blens[] = {4, 10, 1, 3};
  tr_cmdv(ctx, 4, bargv, blens);
  fetch(&t, c, "u\0v", 3, 10, &f);
  ck_assert_uint_eq(f.n, 1);
  ck_assert_int_eq(memcmp(f.ids[0], "bin", 3), 0);
  fetch(&t, c, "u", 1, 10, &f);
  ck_assert_uint_eq(f.n, 0);

  /* refused arguments never fire the callback */
  memset(&f, 0, sizeof f);
  ck_assert_int_eq(rclient_fetch_user(c, longid, sizeof longid, 10, 0, fetch_cb, &f), RECD_EINVAL);
  ck_assert_int_eq(rclient_fetch_user(c, "a", 1, 0, 0, fetch_cb, &f), RECD_EINVAL);
  ck_assert_int_eq(rclient_fetch_user(c, "a", 1, 10, 0, NULL, &f), RECD_EINVAL);

  rclient_stats_t st;
  rclient_get_stats(c, &st);
  ck_assert_uint_eq(st.anomalies, 4);
  ck_assert_uint_eq(st.connects, 1);
  ck_assert_uint_ge(st.commands_sent, 12);
  ck_assert_int_eq(st.state, RCLIENT_CONNECTED);

  tl_finish(&t, c);
  ck_assert_int_eq(f.calls, 0);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

START_TEST(test_prefs_and_wrong_types) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "HSET t:pref:carol personalize 0 cat:books 0.5 cat:toys -1 cat:garden 1 "
              "cat:bad abc cat:big 2 cat:nan nan cat:sp %s cat: 0.1 other x",
         " 0.3");
  tr_cmd(ctx, "ZADD t:hist:carol 2 i1");
  tr_cmd(ctx, "HSET t:pref:dan personalize yes cat:x 1e-3");
  tr_cmd(ctx, "SET t:hist:erin notazset");
  tr_cmd(ctx, "SADD t:pref:erin notahash");

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);

  fetch_cap_t f;
  fetch(&t, c, "carol", 5, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_int_eq(f.personalize, 0);
  ck_assert_uint_eq(f.n, 1); /* fetched anyway; the daemon ignores it */
  ck_assert_uint_eq(f.ncats, 3);
  int i = cat_index(&f, "books");
  ck_assert_int_ge(i, 0);
  ck_assert_float_eq(f.catv[i], 0.5f);
  i = cat_index(&f, "toys");
  ck_assert_int_ge(i, 0);
  ck_assert_float_eq(f.catv[i], -1.0f);
  i = cat_index(&f, "garden");
  ck_assert_int_ge(i, 0);
  ck_assert_float_eq(f.catv[i], 1.0f);
  ck_assert_uint_eq(f.anomalies, 5); /* abc, 2, nan, " 0.3", empty name */

  fetch(&t, c, "dan", 3, 10, &f);
  ck_assert_int_eq(f.personalize, 1); /* only "0" opts out */
  ck_assert_uint_eq(f.ncats, 1);
  ck_assert_float_eq_tol(f.catv[0], 1e-3f, 1e-9f);
  ck_assert_uint_eq(f.anomalies, 1);

  fetch(&t, c, "erin", 4, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 0);
  ck_assert_uint_eq(f.ncats, 0);
  ck_assert_int_eq(f.personalize, 1);
  ck_assert_uint_eq(f.anomalies, 2);

  rclient_stats_t st;
  rclient_get_stats(c, &st);
  ck_assert_uint_eq(st.anomalies, 8);
  ck_assert_uint_eq(st.errors, 0);

  tl_finish(&t, c);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

START_TEST(test_feedback) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "SET t:hist:frank notazset");

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);

  fb_cap_t fb = {0};
  ck_assert_int_eq(rclient_feedback(c, "eve", 3, "item\0one", 8, 1.5, fb_cb, &fb), 0);
  ck_assert_int_eq(fb.calls, 0);
  tl_wait_count(&t, &fb.calls, 1, 2000);
  ck_assert_int_eq(fb.st, RCLIENT_OK);
  ck_assert_double_eq(fb.score, 1.5);
  ck_assert_int_eq(rclient_feedback(c, "eve", 3, "item\0one", 8, 1.0, fb_cb, &fb), 0);
  tl_wait_count(&t, &fb.calls, 2, 2000);
  ck_assert_double_eq(fb.score, 2.5);

  fetch_cap_t f;
  fetch(&t, c, "eve", 3, 10, &f);
  ck_assert_uint_eq(f.n, 1);
  ck_assert_uint_eq(f.lens[0], 8);
  ck_assert_int_eq(memcmp(f.ids[0], "item\0one", 8), 0);
  ck_assert_float_eq(f.w[0], 2.5f);

  ck_assert_int_eq(rclient_feedback(c, "frank", 5, "i", 1, 1.0, fb_cb, &fb), 0);
  tl_wait_count(&t, &fb.calls, 3, 2000);
  ck_assert_int_eq(fb.st, RCLIENT_ERROR);
  ck_assert_msg(strncmp(fb.err, "WRONGTYPE", 9) == 0, "err = %s", fb.err);

  ck_assert_int_eq(rclient_feedback(c, "eve", 3, "i", 1, NAN, fb_cb, &fb), RECD_EINVAL);
  ck_assert_int_eq(rclient_feedback(c, "eve", 3, "i", 1, INFINITY, fb_cb, &fb), RECD_EINVAL);
  char longid[RCLIENT_ID_MAX + 1];
  memset(longid, 'x', sizeof longid);
  ck_assert_int_eq(rclient_feedback(c, "eve", 3, longid, sizeof longid, 1, fb_cb, &fb),
                   RECD_EINVAL);

  rclient_stats_t st;
  rclient_get_stats(c, &st);
  ck_assert_uint_eq(st.errors, 1);
  tl_finish(&t, c);
  ck_assert_int_eq(fb.calls, 3);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

typedef struct unavail_cap {
  int calls;
  size_t n;
  char ids[CAP_N][16];
  size_t lens[CAP_N];
} unavail_cap_t;

static void unavail_cb(const char *const *ids, const size_t *lens, size_t n, void *arg) {
  unavail_cap_t *u = arg;
  u->calls++;
  u->n = n;
  for (size_t i = 0; i < n && i < CAP_N; i++) {
    ck_assert_uint_lt(lens[i], 16);
    memcpy(u->ids[i], ids[i], lens[i]);
    u->lens[i] = lens[i];
  }
}

static int unavail_has(const unavail_cap_t *u, const char *id) {
  for (size_t i = 0; i < u->n; i++)
    if (u->lens[i] == strlen(id) && memcmp(u->ids[i], id, u->lens[i]) == 0)
      return 1;
  return 0;
}

static int unavail_is_b_c(const void *p) {
  const unavail_cap_t *u = p;
  return u->n == 2 && unavail_has(u, "b") && unavail_has(u, "c");
}

typedef struct anomalies_ge {
  rclient_t *c;
  uint64_t want;
} anomalies_ge_t;

static int anomalies_reached(const void *p) {
  const anomalies_ge_t *a = p;
  rclient_stats_t st;
  rclient_get_stats(a->c, &st);
  return st.anomalies >= a->want;
}

START_TEST(test_unavailable_refresh) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "SADD t:unavailable a b");

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  rclient_t *c = new_client(&t, &o);
  unavail_cap_t u = {0};
  rclient_on_unavailable(c, unavail_cb, &u);
  /* read right after connecting, well before the first 100 ms period */
  tl_wait_count(&t, &u.calls, 1, 2000);
  ck_assert_uint_eq(u.n, 2);
  ck_assert(unavail_has(&u, "a") && unavail_has(&u, "b"));

  tr_cmd(ctx, "SADD t:unavailable c");
  tr_cmd(ctx, "SREM t:unavailable a");
  ck_assert_msg(tl_run_until(&t, unavail_is_b_c, &u, 1000), "refresh missed SADD/SREM");

  rclient_stats_t st;
  rclient_get_stats(c, &st);
  ck_assert_uint_ge(st.unavailable_refreshes, 2);
  ck_assert_int_gt(st.last_refresh_unix_ms, 0);
  ck_assert_uint_eq(st.unavailable_count, 2);
  ck_assert_uint_eq(st.anomalies, 0);

  /* a wrong type is counted and delivers nothing: the previous set stays */
  tr_cmd(ctx, "DEL t:unavailable");
  tr_cmd(ctx, "SET t:unavailable oops");
  /* the refresh in flight may still see the deleted (empty) key */
  tl_run_for(&t, 20);
  int calls = u.calls;
  anomalies_ge_t ag = {c, 2};
  ck_assert_msg(tl_run_until(&t, anomalies_reached, &ag, 1000), "wrong type not counted");
  ck_assert_int_eq(u.calls, calls);
  ck_assert_msg(strstr(t.log, "WRONGTYPE") != NULL, "log: %s", t.log);

  /* an empty set is a valid set */
  tr_cmd(ctx, "DEL t:unavailable");
  tl_wait_count(&t, &u.calls, calls + 1, 1000);
  ck_assert_uint_eq(u.n, 0);

  tl_finish(&t, c);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

START_TEST(test_redis_restart) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "ZADD t:hist:gus 1 before");

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);
  fetch_cap_t f;
  fetch(&t, c, "gus", 3, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 1);

  /* Requests really in flight: the server holds them while paused. */
  tr_cmd(ctx, "CLIENT PAUSE 5000");
  fetch_cap_t p1 = {0}, p2 = {0};
  fb_cap_t fb = {0};
  ck_assert_int_eq(rclient_fetch_user(c, "gus", 3, 10, 0, fetch_cb, &p1), 0);
  ck_assert_int_eq(rclient_feedback(c, "gus", 3, "x", 1, 1.0, fb_cb, &fb), 0);
  ck_assert_int_eq(rclient_fetch_user(c, "gus", 3, 10, 0, fetch_cb, &p2), 0);
  tl_run_for(&t, 100);
  ck_assert_int_eq(p1.calls + p2.calls + fb.calls, 0);
  redisFree(ctx);
  tr_stop(&r);

  tl_wait_count(&t, &p1.calls, 1, 2000);
  tl_wait_count(&t, &p2.calls, 1, 2000);
  tl_wait_count(&t, &fb.calls, 1, 2000);
  ck_assert_int_eq(p1.st, RCLIENT_UNAVAILABLE);
  ck_assert_int_eq(p2.st, RCLIENT_UNAVAILABLE);
  ck_assert_int_eq(fb.st, RCLIENT_UNAVAILABLE);
  ck_assert_uint_eq(p1.n, 0);
  rclient_stats_t st;
  rclient_get_stats(c, &st);
  ck_assert_int_eq(st.connected, 0);
  ck_assert_uint_eq(st.disconnects, 1);

  /* new requests while down: UNAVAILABLE on the next loop turn */
  memset(&f, 0, sizeof f);
  ck_assert_int_eq(rclient_fetch_user(c, "gus", 3, 10, 0, fetch_cb, &f), 0);
  ck_assert_int_eq(f.calls, 0);
  tl_wait_count(&t, &f.calls, 1, 500);
  ck_assert_int_eq(f.st, RCLIENT_UNAVAILABLE);
  ck_assert_int_eq(p1.calls + p2.calls + fb.calls, 3); /* exactly once */

  /* let a few backoff attempts fail, then bring Redis back */
  tl_run_for(&t, 300);
  tr_start(&r);
  ctx = tr_sync(&r);
  tr_cmd(ctx, "ZADD t:hist:gus 4 after");
  wait_connected(&t, c);
  fetch(&t, c, "gus", 3, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 1);
  ck_assert_int_eq(memcmp(f.ids[0], "after", 5), 0);

  rclient_get_stats(c, &st);
  ck_assert_uint_eq(st.connects, 2);
  ck_assert_uint_eq(st.disconnects, 1);
  ck_assert_uint_ge(st.reconnect_attempts, 2);
  ck_assert_uint_ge(st.errors, 1); /* the refused attempts */
  ck_assert_msg(strstr(t.log, "lost connection") != NULL, "log: %s", t.log);

  tl_finish(&t, c);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

static int errors_ge2(const void *p) {
  rclient_stats_t st;
  rclient_get_stats(p, &st);
  return st.errors >= 2;
}

START_TEST(test_password) {
  tredis_t r = {0};
  r.pass = "s3cret";
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "ZADD t:hist:hal 1 h");

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  o.password = "s3cret";
  rclient_t *good = new_client(&t, &o);
  o.password = "BadPassw0rd";
  rclient_t *bad = new_client(&t, &o);
  o.password = NULL;
  rclient_t *none = new_client(&t, &o);

  wait_connected(&t, good);
  fetch_cap_t f;
  fetch(&t, good, "hal", 3, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 1);

  /* the wrong password is logged, counted and retried with backoff */
  ck_assert_msg(tl_run_until(&t, errors_ge2, bad, 2000), "AUTH failures not retried");
  rclient_stats_t st;
  rclient_get_stats(bad, &st);
  ck_assert_int_eq(st.connected, 0);
  ck_assert_uint_eq(st.connects, 0);
  ck_assert_msg(strstr(st.last_error, "AUTH") != NULL, "last_error = %s", st.last_error);
  ck_assert_msg(strstr(t.log, "AUTH to 127.0.0.1") != NULL, "log: %s", t.log);
  ck_assert_msg(strstr(t.log, "BadPassw0rd") == NULL, "password leaked into the log");
  fetch(&t, bad, "hal", 3, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_UNAVAILABLE);

  /* no password: connected, but Redis refuses the commands */
  wait_connected(&t, none);
  fetch(&t, none, "hal", 3, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_ERROR);
  ck_assert_msg(strncmp(f.err, "NOAUTH", 6) == 0, "err = %s", f.err);
  ck_assert_uint_eq(f.n, 0);

  rclient_close(bad, tl_closed_cb, &t);
  rclient_close(none, tl_closed_cb, &t);
  tl_wait_count(&t, &t.closed, 2, 2000);
  t.closed = 0;
  tl_finish(&t, good);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

START_TEST(test_close_with_requests_in_flight) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);

  tloop_t t;
  tl_init(&t);
  enum { N = 6 };
  rclient_opts_t o = test_opts(&t, &r);
  o.max_inflight = 2 * N;
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);
  tr_cmd(ctx, "CLIENT PAUSE 5000");
  fetch_cap_t f[N];
  fb_cap_t fb[N];
  memset(f, 0, sizeof f);
  memset(fb, 0, sizeof fb);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(rclient_fetch_user(c, "ivy", 3, 10, 0, fetch_cb, &f[i]), 0);
    ck_assert_int_eq(rclient_feedback(c, "ivy", 3, "i", 1, 1.0, fb_cb, &fb[i]), 0);
  }
  tl_run_for(&t, 50);
  /* over max_inflight: refused as UNAVAILABLE on the next turn */
  rclient_stats_t st;
  rclient_get_stats(c, &st);
  ck_assert_uint_eq(st.inflight, 2 * N);
  fetch_cap_t over;
  fetch(&t, c, "ivy", 3, 10, &over);
  ck_assert_int_eq(over.st, RCLIENT_UNAVAILABLE);
  ck_assert_msg(strstr(over.err, "too many") != NULL, "err = %s", over.err);
  rclient_get_stats(c, &st);
  ck_assert_uint_eq(st.rejected, 1);
  ck_assert_uint_eq(st.inflight, 2 * N);

  rclient_close(c, tl_closed_cb, &t);
  /* documented: in-flight callbacks fire inside rclient_close() */
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(f[i].calls, 1);
    ck_assert_int_eq(f[i].st, RCLIENT_UNAVAILABLE);
    ck_assert_int_eq(fb[i].calls, 1);
    ck_assert_int_eq(fb[i].st, RCLIENT_UNAVAILABLE);
  }
  ck_assert_int_eq(rclient_fetch_user(c, "ivy", 3, 10, 0, fetch_cb, &f[0]), RECD_EINVAL);
  rclient_get_stats(c, &st);
  ck_assert_uint_eq(st.inflight, 0);
  rclient_close(c, tl_closed_cb, &t); /* second close: no-op */
  ck_assert_int_eq(t.closed, 0);      /* done() comes on a later turn */
  tl_wait_count(&t, &t.closed, 1, 2000);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(f[i].calls + fb[i].calls, 2);
  tl_finish(&t, NULL);
  ck_assert_int_eq(t.closed, 1);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

START_TEST(test_close_from_callback) {
  tredis_t r = {0};
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "ZADD t:hist:jo 1 j");

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);
  fetch_cap_t a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.close_me = c; /* the first answer closes the client */
  ck_assert_int_eq(rclient_fetch_user(c, "jo", 2, 10, 0, fetch_cb, &a), 0);
  ck_assert_int_eq(rclient_fetch_user(c, "jo", 2, 10, 0, fetch_cb, &b), 0);
  tl_wait_count(&t, &b.calls, 1, 2000);
  ck_assert_int_eq(a.calls, 1);
  ck_assert_int_eq(a.st, RCLIENT_OK);
  ck_assert_uint_eq(a.n, 1);
  ck_assert_int_eq(b.st, RCLIENT_UNAVAILABLE);

  /* the same from a deferred (not connected) completion */
  tl_finish(&t, NULL);

  tl_init(&t);
  int dead_port = tu_free_port();
  tredis_t nobody = {0};
  nobody.port = dead_port;
  o = test_opts(&t, &nobody);
  c = new_client(&t, &o);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.close_me = c;
  ck_assert_int_eq(rclient_fetch_user(c, "jo", 2, 10, 0, fetch_cb, &a), 0);
  ck_assert_int_eq(rclient_fetch_user(c, "jo", 2, 10, 0, fetch_cb, &b), 0);
  tl_wait_count(&t, &b.calls, 1, 2000);
  ck_assert_int_eq(a.st, RCLIENT_UNAVAILABLE);
  ck_assert_int_eq(b.st, RCLIENT_UNAVAILABLE);
  tl_finish(&t, NULL);
  ck_assert_int_eq(a.calls + b.calls, 2);
  redisFree(ctx);
  tr_stop(&r);
}
END_TEST

typedef struct attempts_ge {
  rclient_t *c;
  uint64_t want;
} attempts_ge_t;

static int attempts_reached(const void *p) {
  const attempts_ge_t *a = p;
  rclient_stats_t st;
  rclient_get_stats(a->c, &st);
  return st.reconnect_attempts >= a->want;
}

/* A listening TCP socket on a free loopback port (*port), that nobody
 * serves: connects complete from its backlog. */
static int listen_loopback(int *port) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(lfd, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
  ck_assert_int_eq(listen(lfd, 16), 0);
  socklen_t len = sizeof sa;
  ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
  *port = ntohs(sa.sin_port);
  return lfd;
}

START_TEST(test_connect_failures) {
  tloop_t t;
  tl_init(&t);

  /* Nobody listening: refused at once, retried with backoff. */
  tredis_t nobody = {0};
  nobody.port = tu_free_port();
  rclient_opts_t o = test_opts(&t, &nobody);
  rclient_t *c = new_client(&t, &o);
  fetch_cap_t f;
  fetch(&t, c, "kim", 3, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_UNAVAILABLE);
  attempts_ge_t ag = {c, 3};
  ck_assert(tl_run_until(&t, attempts_reached, &ag, 2000));
  rclient_stats_t st;
  rclient_get_stats(c, &st);
  ck_assert_int_eq(st.connected, 0);
  ck_assert_uint_ge(st.errors, 3);
  ck_assert_msg(strstr(st.last_error, "refused") != NULL, "last_error = %s", st.last_error);
  /* closed while waiting for the backoff timer */
  tl_finish(&t, c);

  /* A listener that never answers: the TCP handshake completes from the
   * backlog, AUTH never gets a reply, connect_timeout_ms cuts it short. */
  tl_init(&t);
  int port;
  const int lfd = listen_loopback(&port);
  tredis_t mute = {0};
  mute.port = port;
  o = test_opts(&t, &mute);
  o.password = "pw";
  o.connect_timeout_ms = 150;
  c = new_client(&t, &o);
  ag.c = c;
  ag.want = 1;
  ck_assert(tl_run_until(&t, attempts_reached, &ag, 2000));
  rclient_get_stats(c, &st);
  ck_assert_int_eq(st.connected, 0);
  ck_assert_uint_ge(st.errors, 1);
  ck_assert_msg(strstr(t.log, "timed out after 150 ms") != NULL, "log: %s", t.log);
  /* closed while CONNECTING */
  tl_finish(&t, c);
  close(lfd);

  /* bad options */
  tl_init(&t);
  rclient_t *none = NULL;
  char err[RECD_ERRLEN] = "";
  o = test_opts(&t, &nobody);
  o.port = 70000;
  ck_assert_int_eq(rclient_new(&t.loop, &o, &none, err), RECD_EINVAL);
  ck_assert_msg(strstr(err, "redis-port") != NULL, "err = %s", err);
  o = test_opts(&t, &nobody);
  o.reconnect_max_ms = 10;
  ck_assert_int_eq(rclient_new(&t.loop, &o, &none, err), RECD_EINVAL);
  ck_assert_ptr_null(none);
  tl_finish(&t, NULL);
}
END_TEST

/* A connection reset (RST, not FIN) on a live connection shows up in libuv
 * as a poll error; the client must still fail what is pending and
 * reconnect (the hiredis 0.14 adapter alone would swallow it). */
START_TEST(test_connection_reset) {
  int port;
  const int lfd = listen_loopback(&port);

  tloop_t t;
  tl_init(&t);
  tredis_t fake = {0};
  fake.port = port;
  rclient_opts_t o = test_opts(&t, &fake);
  rclient_t *c = new_client(&t, &o);
  /* no AUTH: CONNECTED as soon as the handshake completes from the backlog */
  wait_connected(&t, c);
  fetch_cap_t f;
  memset(&f, 0, sizeof f);
  ck_assert_int_eq(rclient_fetch_user(c, "mo", 2, 10, 0, fetch_cb, &f), 0);
  tl_run_for(&t, 50);
  ck_assert_int_eq(f.calls, 0);

  int cfd = accept(lfd, NULL, NULL);
  ck_assert_int_ge(cfd, 0);
  struct linger lg = {1, 0}; /* close() sends RST */
  ck_assert_int_eq(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
  close(cfd);
  tl_wait_count(&t, &f.calls, 1, 2000);
  ck_assert_int_eq(f.st, RCLIENT_UNAVAILABLE);
  rclient_stats_t st;
  rclient_get_stats(c, &st);
  ck_assert_int_eq(st.connected, 0);
  ck_assert_uint_eq(st.disconnects, 1);
  ck_assert_msg(strstr(t.log, "lost connection") != NULL, "log: %s", t.log);
  /* and it comes back (the listener still accepts into its backlog) */
  wait_connected(&t, c);
  tl_finish(&t, c);
  close(lfd);
}
END_TEST

/* A server that accepts every connection and answers its first bytes
 * with an array declaring 2^31 - 1 elements, which the client's reader
 * refuses (rreply.h), then waits for the client to hang up. */
typedef struct huge_srv {
  int lfd;
  volatile int stop;
} huge_srv_t;

static void huge_srv_run(void *arg) {
  huge_srv_t *h = arg;
  while (!h->stop) {
    struct pollfd p = {.fd = h->lfd, .events = POLLIN};
    if (poll(&p, 1, 20) <= 0)
      continue;
    int cfd = accept(h->lfd, NULL, NULL);
    if (cfd < 0)
      continue;
    char buf[4096];
    struct pollfd q = {.fd = cfd, .events = POLLIN};
    if (poll(&q, 1, 1000) > 0 && read(cfd, buf, sizeof buf) > 0 &&
        write(cfd, "*2147483647\r\n", 13) == 13)
      while (poll(&q, 1, 1000) > 0 && read(cfd, buf, sizeof buf) > 0)
        ;
    close(cfd);
  }
}

/* A server whose every connection breaks on its first reply: reconnects
 * back off as after failed connects. (The backoff used to start again at
 * each connect, so such a server was reconnected every 50-100 ms, each
 * time logged "connected", for as long as it ran.) */
START_TEST(test_backoff_when_every_connection_breaks) {
  int port;
  const int lfd = listen_loopback(&port);
  huge_srv_t h = {.lfd = lfd};
  uv_thread_t th;
  ck_assert_int_eq(uv_thread_create(&th, huge_srv_run, &h), 0);

  tloop_t t;
  tl_init(&t);
  tredis_t fake = {0};
  fake.port = port;
  rclient_opts_t o = test_opts(&t, &fake);
  o.reconnect_min_ms = 100; /* the daemon's defaults */
  o.reconnect_max_ms = 2000;
  rclient_t *c = new_client(&t, &o);
  tl_run_for(&t, 1500);
  rclient_stats_t st;
  rclient_get_stats(c, &st);
  /* delays of 50-100, 100-200, 200-400, 400-800 and 800-1600 ms: at most
   * 5 connects in 1.5 s (reset at each connect: 15 to 30) */
  ck_assert_uint_ge(st.connects, 2);
  ck_assert_msg(st.connects <= 5, "%llu connects in 1.5 s", (unsigned long long)st.connects);
  ck_assert_msg(strstr(t.log, "Out of memory") != NULL, "log: %s", t.log);
  tl_finish(&t, c);
  h.stop = 1;
  uv_thread_join(&th);
  close(lfd);
}
END_TEST

START_TEST(test_unix_socket) {
  char *dir = tu_mkdtemp();
  tredis_t r = {0};
  snprintf(r.sock, sizeof r.sock, "%s", tu_path(dir, "redis.sock"));
  tr_start(&r);
  redisContext *ctx = tr_sync(&r);
  tr_cmd(ctx, "ZADD t:hist:lou 3 viaunix");

  tloop_t t;
  tl_init(&t);
  rclient_opts_t o = test_opts(&t, &r);
  o.host = "no.such.host.invalid"; /* must not be used */
  o.socket = r.sock;
  rclient_t *c = new_client(&t, &o);
  wait_connected(&t, c);
  fetch_cap_t f;
  fetch(&t, c, "lou", 3, 10, &f);
  ck_assert_int_eq(f.st, RCLIENT_OK);
  ck_assert_uint_eq(f.n, 1);
  ck_assert_int_eq(memcmp(f.ids[0], "viaunix", 7), 0);
  ck_assert_msg(strstr(t.log, "unix:") != NULL, "log: %s", t.log);
  tl_finish(&t, c);
  redisFree(ctx);
  tr_stop(&r);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

static Suite *rclient_suite(void) {
  Suite *s = suite_create("rclient");
  TCase *tc = tcase_create("redis");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, test_fetch_history);
  tcase_add_test(tc, test_fetch_hidden_and_impressions);
  tcase_add_test(tc, test_fetch_times);
  tcase_add_test(tc, test_prefs_and_wrong_types);
  tcase_add_test(tc, test_feedback);
  tcase_add_test(tc, test_unavailable_refresh);
  tcase_add_test(tc, test_redis_restart);
  tcase_add_test(tc, test_password);
  tcase_add_test(tc, test_close_with_requests_in_flight);
  tcase_add_test(tc, test_close_from_callback);
  tcase_add_test(tc, test_connect_failures);
  tcase_add_test(tc, test_connection_reset);
  tcase_add_test(tc, test_backoff_when_every_connection_breaks);
  tcase_add_test(tc, test_unix_socket);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  /* hiredis writes with write(2): a dead server must not kill the test. */
  signal(SIGPIPE, SIG_IGN);
  atexit(tr_kill_all);
  SRunner *sr = srunner_create(rclient_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
