/* test_faults.c - recd under load while its surroundings fail: Redis killed
 * and restarted, paused (SIGSTOP/SIGCONT) and made slow (a busy script),
 * and a storm of model reloads, half of them corrupt.
 *
 * The load runs in threads of the test process, each on its own
 * connection, pipelining a few requests and then a PING with a sequence
 * tag, so that every reply is counted and its order checked: a lost or a
 * duplicated reply shifts the tags. Each request's latency (from the send
 * of its pipeline to its reply) is measured. After the load every
 * connection sends a last tagged PING and must read exactly that, then
 * nothing more.
 *
 * Figures are printed as "FIGURE <test>: ..." lines (README, Reliability).
 * Run one test with CK_RUN_CASE=<name>_fn build/tests/integration_test_faults.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "helpers.h"
#include "reference.h"
#include "testutil.h"

static ref_model_t M1;           /* model1: 120 items, k = 16 */
static char synth_b[IT_PATH + 32]; /* a second 60000-item model (another seed) */

/* ---- helpers ------------------------------------------------------------------ */

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void figure(const char *test, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void figure(const char *test, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "FIGURE %s: %s\n", test, msg);
}

static void expect_status(redisReply *r, const char *want) {
  ck_assert_msg(r->type == REDIS_REPLY_STATUS && strcmp(r->str, want) == 0,
                "reply type %d '%s', want +%s", r->type, r->str ? r->str : "", want);
  freeReplyObject(r);
}

/* RECOMMEND user1 checked against the reference: personalized (the
 * history Redis holds now) or, with *degraded non-NULL, possibly degraded
 * (exactly the popular answer). Returns 1 when it was personalized. */
static int witness(it_env_t *e, int *degraded) {
  ref_user_t u;
  ref_user_read(&M1, e->redis, "user1", &u);
  redisReply *r = it_cmd(e->c, "RECOMMEND user1 COUNT 10 WITHSCORES WITHREASONS");
  int deg = r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
            r->element[2]->type == REDIS_REPLY_NIL;
  ck_assert_msg(!deg || degraded != NULL, "witness: a degraded answer");
  ref_query_t q = {.u = deg ? NULL : &u};
  ref_answer_t a;
  ref_recommend(&M1, &q, &a);
  ref_check_recommend(&M1, &a, r, 0, 10, 1, 1, &u, "witness");
  ref_answer_free(&a);
  freeReplyObject(r);
  ref_user_free(&u);
  if (deg)
    (*degraded)++;
  return !deg;
}

/* Waits (bounded) until the witness is personalized again; returns ms. */
static uint64_t wait_personalized(it_env_t *e, const char *after) {
  uint64_t t0 = it_now_ms();
  int deg = 0;
  while (!witness(e, &deg)) {
    ck_assert_msg(it_now_ms() - t0 < 10000, "not personalized 10 s after %s", after);
    it_sleep_ms(10);
  }
  return it_now_ms() - t0;
}

/* ---- the load ------------------------------------------------------------------- */

typedef struct load {
  /* set up by the test */
  int port, id;
  int feedback;          /* 1: FEEDBACK instead of RECOMMEND */
  const char *user_fmt;  /* RECOMMEND user, printf with an int */
  int n_users;
  int batch;             /* requests per pipeline */
  int pace_ms;           /* pause between pipelines */
  long min_requests;     /* keep going at least this long */
  volatile int *stop;    /* then until this is set */
  /* results */
  long sent, replies, answers, errors, bad, out_of_order;
  uint64_t max_us;
  int lost;              /* the connection broke */
  int tail_ok;           /* the last PING came back, and nothing after */
  char first_problem[256];
  pthread_t th;
} load_t;

static void load_note(load_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void load_note(load_t *l, const char *fmt, ...) {
  if (l->first_problem[0] != '\0')
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(l->first_problem, sizeof l->first_problem, fmt, ap);
  va_end(ap);
}

static void *load_run(void *arg) {
  load_t *l = arg;
  struct timeval tv = {10, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", l->port, tv);
  if (c == NULL || c->err) {
    l->lost = 1;
    load_note(l, "connect: %s", c ? c->errstr : "out of memory");
    if (c)
      redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  for (long seq = 0; !(*l->stop && l->sent >= l->min_requests); seq++) {
    uint64_t t0 = now_us();
    for (int j = 0; j < l->batch; j++) {
      int k = (int)((seq * l->batch + j + l->id * 37) % l->n_users);
      if (l->feedback)
        redisAppendCommand(c, "FEEDBACK load-fb%d item%d", l->id, k % 120);
      else
        redisAppendCommand(c, l->user_fmt, k);
    }
    redisAppendCommand(c, "PING c%d-%ld", l->id, seq);
    l->sent += l->batch;
    for (int j = 0; j <= l->batch; j++) {
      void *v = NULL;
      if (redisGetReply(c, &v) != REDIS_OK) {
        l->lost = 1;
        load_note(l, "connection lost after %ld replies: %s", l->replies, c->errstr);
        redisFree(c);
        return NULL;
      }
      uint64_t dt = now_us() - t0;
      redisReply *r = v;
      if (j == l->batch) { /* the tag */
        char want[64];
        snprintf(want, sizeof want, "c%d-%ld", l->id, seq);
        if (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0) {
          l->out_of_order++;
          load_note(l, "PING tag %s came back as type %d '%s'", want, r->type,
                    r->str ? r->str : "");
        }
        freeReplyObject(r);
        continue;
      }
      l->replies++;
      if (dt > l->max_us)
        l->max_us = dt;
      if (r->type == REDIS_REPLY_ERROR) {
        l->errors++;
        if (!l->feedback)
          load_note(l, "error reply: %s", r->str);
      } else if (l->feedback ? r->type == REDIS_REPLY_STRING
                             : r->type == REDIS_REPLY_ARRAY && r->elements == 10) {
        l->answers++;
      } else {
        l->bad++;
        load_note(l, "unexpected reply type %d, %zu elements", r->type, r->elements);
      }
      freeReplyObject(r);
    }
    if (l->pace_ms > 0)
      it_sleep_ms(l->pace_ms);
  }
  /* The end: one more tag, then silence. */
  redisReply *r = redisCommand(c, "PING end-%d", l->id);
  char want[32];
  snprintf(want, sizeof want, "end-%d", l->id);
  l->tail_ok = r != NULL && r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;
  if (r)
    freeReplyObject(r);
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  if (l->tail_ok && poll(&p, 1, 100) != 0) {
    l->tail_ok = 0;
    load_note(l, "bytes after the last reply");
  }
  redisFree(c);
  return NULL;
}

static void load_start(load_t *l) {
  ck_assert_int_eq(pthread_create(&l->th, NULL, load_run, l), 0);
}

/* Joins the load threads (bounded) and checks the invariants every load
 * shares: nothing lost, nothing duplicated or reordered, every reply an
 * answer of the expected shape (errors are counted; the caller decides).
 * Sums into *tot. */
static void load_join(load_t *ls, int n, load_t *tot) {
  memset(tot, 0, sizeof *tot);
  for (int j = 0; j < n; j++) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    ck_assert_msg(pthread_timedjoin_np(ls[j].th, NULL, &dl) == 0, "load %d still running", j);
    load_t *l = &ls[j];
    ck_assert_msg(!l->lost, "load %d: %s", j, l->first_problem);
    ck_assert_msg(l->replies == l->sent, "load %d: %ld replies to %ld requests", j, l->replies,
                  l->sent);
    ck_assert_msg(l->out_of_order == 0, "load %d: %s", j, l->first_problem);
    ck_assert_msg(l->bad == 0, "load %d: %s", j, l->first_problem);
    ck_assert_msg(l->tail_ok, "load %d: the final PING: %s", j, l->first_problem);
    tot->sent += l->sent;
    tot->replies += l->replies;
    tot->answers += l->answers;
    tot->errors += l->errors;
    if (l->max_us > tot->max_us)
      tot->max_us = l->max_us;
  }
}

/* ---- Redis killed, restarted, paused, slow ---------------------------------------- */

/* Keeps Redis busy for `ms` with a script (Redis answers nothing else
 * meanwhile): a slow Redis, seen from recd. */
static void redis_busy(it_env_t *e, int ms) {
  redisReply *r = it_cmd(e->redis,
                         "EVAL %s 0 %d",
                         "local t = redis.call('TIME') "
                         "local s = t[1] * 1000000 + t[2] "
                         "while true do "
                         "  t = redis.call('TIME') "
                         "  if t[1] * 1000000 + t[2] - s > ARGV[1] * 1000 then return 1 end "
                         "end",
                         ms);
  ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "busy script: type %d %s", r->type,
                r->str ? r->str : "");
  freeReplyObject(r);
}

START_TEST(redis_faults_under_load) {
  it_env_t e;
  const int timeout_ms = 100, fb_timeout_ms = 300;
  it_opts_t o = {.redis_timeout_ms = timeout_ms,
                 .extra = {"--feedback-timeout-ms", "300", NULL}};
  it_env_start(&e, __func__, &o);
  double deg0 = it_info_num(e.c, "stats", "degraded_answers");
  double conn0 = it_info_num(e.c, "redis", "redis_connects");
  long rss0 = it_proc_kb(e.recd_pid, "VmRSS");
  volatile int stop = 0;
  enum { N_RECO = 4, N_LOAD = 5 };
  load_t ls[N_LOAD];
  memset(ls, 0, sizeof ls);
  for (int j = 0; j < N_LOAD; j++) {
    ls[j].port = e.port;
    ls[j].id = j;
    ls[j].feedback = j == N_RECO;
    ls[j].user_fmt = "RECOMMEND user%d COUNT 10";
    ls[j].n_users = 300;
    ls[j].batch = j == N_RECO ? 2 : 5;
    ls[j].pace_ms = 10;
    ls[j].min_requests = j == N_RECO ? 0 : 750; /* 3000 RECOMMENDs at least */
    ls[j].stop = &stop;
    load_start(&ls[j]);
  }
  it_sleep_ms(500);

  /* 1. Redis killed (SIGKILL: no goodbye) and started again on the same
   * port from its last save. */
  expect_status(it_cmd(e.redis, "SAVE"), "OK");
  redisFree(e.redis);
  e.redis = NULL;
  double d1 = it_info_num(e.c, "stats", "degraded_answers");
  it_kill_hard(e.redis_pid);
  e.redis_pid = 0;
  it_sleep_ms(1000);
  it_redis_start(&e);
  e.redis = it_connect(e.redis_port);
  uint64_t back_kill = wait_personalized(&e, "Redis restarted");
  double d2 = it_info_num(e.c, "stats", "degraded_answers");
  it_sleep_ms(300);

  /* 2. Redis paused for a second. */
  kill(e.redis_pid, SIGSTOP);
  it_sleep_ms(1000);
  kill(e.redis_pid, SIGCONT);
  uint64_t back_pause = wait_personalized(&e, "SIGCONT");
  double d3 = it_info_num(e.c, "stats", "degraded_answers");
  it_sleep_ms(300);

  /* 3. Redis slow: three 300 ms stalls, 200 ms apart. */
  for (int j = 0; j < 3; j++) {
    redis_busy(&e, 300);
    it_sleep_ms(200);
  }
  uint64_t back_slow = wait_personalized(&e, "the busy scripts");
  double d4 = it_info_num(e.c, "stats", "degraded_answers");
  it_sleep_ms(300);
  stop = 1;
  load_t reco_tot, fb_tot;
  load_join(ls, N_RECO, &reco_tot);
  load_join(ls + N_RECO, 1, &fb_tot);

  /* Every RECOMMEND answered, none an error, each within the deadline
   * plus a margin for a loaded or sanitized machine. */
  ck_assert_int_ge(reco_tot.sent, 3000);
  ck_assert_msg(reco_tot.errors == 0, "%ld RECOMMENDs failed: %s", reco_tot.errors,
                ls[0].first_problem);
  ck_assert_int_eq(reco_tot.answers, reco_tot.sent);
  const uint64_t margin_us = 1000000;
  ck_assert_msg(reco_tot.max_us <= (uint64_t)timeout_ms * 1000 + margin_us,
                "a RECOMMEND took %.1f ms with redis-timeout-ms %d", reco_tot.max_us / 1000.0,
                timeout_ms);
  ck_assert_msg(fb_tot.max_us <= (uint64_t)fb_timeout_ms * 1000 + margin_us,
                "a FEEDBACK took %.1f ms with feedback-timeout-ms %d", fb_tot.max_us / 1000.0,
                fb_timeout_ms);
  ck_assert_int_eq(fb_tot.answers + fb_tot.errors, fb_tot.sent);
  /* Each fault degraded answers; personalization came back after each. */
  ck_assert_msg(d2 > d1, "no degraded answer while Redis was down");
  ck_assert_msg(d3 > d2, "no degraded answer while Redis was paused");
  ck_assert_msg(d4 > d3, "no degraded answer while Redis was busy");
  ck_assert_double_ge(it_info_num(e.c, "redis", "redis_connects"), conn0 + 1);
  ck_assert_double_eq(it_info_num(e.c, "redis", "redis_connected"), 1);
  int personal = 0;
  for (int j = 0; j < 10; j++)
    personal += witness(&e, NULL);
  ck_assert_int_eq(personal, 10);
  redisReply *r = it_cmd(e.c, "FEEDBACK user1 item1");
  ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
  freeReplyObject(r);
  long rss1 = it_proc_kb(e.recd_pid, "VmRSS");
  ck_assert_msg(rss1 - rss0 < 50 * 1024, "RSS %ld -> %ld kB", rss0, rss1);
  figure("redis_faults_under_load",
         "RECOMMEND sent %ld, answered %ld, failed %ld, lost 0, out of order 0, max latency "
         "%.1f ms (redis-timeout-ms %d); degraded: kill %g, pause %g, slow %g (total %g); "
         "personalized again after %llu / %llu / %llu ms; FEEDBACK sent %ld, ok %ld, errors "
         "%ld, max %.1f ms; RSS %ld -> %ld kB",
         reco_tot.sent, reco_tot.answers, reco_tot.errors, reco_tot.max_us / 1000.0, timeout_ms,
         d2 - d1, d3 - d2, d4 - d3, d4 - deg0, (unsigned long long)back_kill,
         (unsigned long long)back_pause, (unsigned long long)back_slow, fb_tot.sent,
         fb_tot.answers, fb_tot.errors, fb_tot.max_us / 1000.0, rss0, rss1);
  it_env_stop(&e);
}
END_TEST

/* ---- a storm of model reloads ------------------------------------------------------ */

static unsigned file_checksum(const char *path) {
  model_t *m = NULL;
  char err[RECD_ERRLEN];
  ck_assert_msg(model_load(&m, path, err) == 0, "%s: %s", path, err);
  unsigned sum = model_checksum(m);
  model_free(m);
  return sum;
}

START_TEST(reload_storm) {
  it_env_t e;
  it_opts_t o = {.model = it_data.synth, .no_import = 1};
  it_env_start(&e, __func__, &o);
  /* Customers with histories, so that answers are personalized. */
  for (int u = 0; u < 8; u++)
    freeReplyObject(
        it_cmd(e.redis, "ZADD recd:hist:p%d 1 i%d 2 i%d 3 i%d", u, u * 7000 + 1, u * 3000 + 2, u));
  /* The files: two good models and six ways of being broken. */
  const char *good[2] = {it_data.synth, synth_b};
  unsigned sums[2] = {file_checksum(good[0]), file_checksum(good[1])};
  size_t len;
  unsigned char *bytes = tu_read_file(good[1], &len);
  char bad[6][IT_PATH + 32];
  const char *bad_names[6] = {"truncated-half", "truncated-1", "flipped-middle",
                              "flipped-header", "empty",       "text"};
  for (int j = 0; j < 6; j++)
    it_fmt(bad[j], sizeof bad[j], "%s/%s.bin", e.dir, bad_names[j]);
  tu_write_file(bad[0], bytes, len / 2);
  tu_write_file(bad[1], bytes, len - 1);
  bytes[len / 2] ^= 0x01;
  tu_write_file(bad[2], bytes, len);
  bytes[len / 2] ^= 0x01;
  bytes[12] ^= 0x80;
  tu_write_file(bad[3], bytes, len);
  tu_write_file(bad[4], bytes, 0);
  tu_write_file(bad[5], "not a model\n", 12);
  free(bytes);

  volatile int stop = 0;
  enum { N_LOAD = 3 };
  load_t ls[N_LOAD];
  memset(ls, 0, sizeof ls);
  for (int j = 0; j < N_LOAD; j++) {
    ls[j].port = e.port;
    ls[j].id = j;
    ls[j].user_fmt = "RECOMMEND p%d COUNT 10";
    ls[j].n_users = 8;
    ls[j].batch = 4;
    ls[j].pace_ms = 2;
    ls[j].min_requests = 0; /* as long as the storm lasts */
    ls[j].stop = &stop;
    load_start(&ls[j]);
  }
  unsigned want = sums[0];
  int n_good = 0, n_bad = 0;
  long rss_warm = 0, rss_max = 0;
  int fds_warm = 0;
  uint64_t t0 = it_now_ms(), worst_reload = 0;
  char sum[16];
  for (int i = 0; i < 100; i++) {
    int corrupt = (i / 2) % 2 == 1; /* half of them; both ways get both */
    const char *src = corrupt ? bad[(i / 4) % 6] : good[(n_good + 1) % 2];
    it_install_file(src, e.model); /* a temporary file, then rename() */
    double ok0 = it_info_num(e.c, "model", "model_reloads_ok");
    double failed0 = it_info_num(e.c, "model", "model_reloads_failed");
    uint64_t r0 = it_now_ms();
    if (i % 2 == 0) {
      redisReply *r = it_cmd(e.c, "MODEL RELOAD");
      if (corrupt)
        ck_assert_msg(r->type == REDIS_REPLY_ERROR && strstr(r->str, "still serving") != NULL,
                      "reload %d (%s): %s", i, src, r->str);
      else
        ck_assert_msg(r->type == REDIS_REPLY_STATUS, "reload %d (%s): %s", i, src, r->str);
      freeReplyObject(r);
    } else {
      kill(e.recd_pid, SIGHUP);
      while (it_info_num(e.c, "model", "model_reloads_ok") +
                 it_info_num(e.c, "model", "model_reloads_failed") <
             ok0 + failed0 + 1) {
        ck_assert_msg(it_now_ms() - r0 < 5000, "SIGHUP reload %d not done after 5 s", i);
        it_sleep_ms(2);
      }
    }
    if (it_now_ms() - r0 > worst_reload)
      worst_reload = it_now_ms() - r0;
    ck_assert_double_eq(it_info_num(e.c, "model", "model_reloads_ok"), ok0 + !corrupt);
    ck_assert_double_eq(it_info_num(e.c, "model", "model_reloads_failed"), failed0 + corrupt);
    if (corrupt) {
      n_bad++;
    } else {
      n_good++;
      want = sums[n_good % 2];
    }
    /* The last good model serves. */
    it_fmt(sum, sizeof sum, "%08x", want);
    ck_assert_msg(strcmp(it_model_info(e.c, "checksum"), sum) == 0,
                  "after reload %d the checksum is %s, want %s", i,
                  it_model_info(e.c, "checksum"), sum);
    long rss = it_proc_kb(e.recd_pid, "VmRSS");
    if (i % 10 == 9)
      figure("reload_storm", "after reload %d: RSS %ld kB (anonymous %ld, file %ld)", i + 1, rss,
             it_proc_kb(e.recd_pid, "RssAnon"), it_proc_kb(e.recd_pid, "RssFile"));
    /* The first 20 reloads are the warm-up: the allocator's arenas reach
     * their working size. After them the peak may not climb. */
    if (i < 20 && rss > rss_warm)
      rss_warm = rss;
    if (i == 19)
      fds_warm = it_proc_fds(e.recd_pid);
    if (i >= 20 && rss > rss_max)
      rss_max = rss;
  }
  uint64_t storm_ms = it_now_ms() - t0;
  stop = 1;
  load_t tot;
  load_join(ls, N_LOAD, &tot);
  ck_assert_int_eq(n_bad, 50);
  ck_assert_int_ge(tot.sent, 300);
  ck_assert_msg(tot.errors == 0, "%ld RECOMMENDs failed during the storm", tot.errors);
  ck_assert_int_eq(tot.answers, tot.sent);
  char v[16];
  it_fmt(v, sizeof v, "%d", 1 + n_good);
  ck_assert_str_eq(it_model_info(e.c, "version"), v);
  /* Old models are unmapped once their last request is done: one mapping
   * of the model file is left, and no file descriptor more than during
   * the storm (the load's connections are closed by now). */
  uint64_t w0 = it_now_ms();
  int maps;
  while ((maps = it_proc_maps(e.recd_pid, e.models_dir)) > 1) {
    ck_assert_msg(it_now_ms() - w0 < 5000, "%d mappings of model files left", maps);
    it_sleep_ms(10);
  }
  int fds_end = it_proc_fds(e.recd_pid);
  ck_assert_msg(fds_end <= fds_warm, "open fds %d after the storm, %d during it", fds_end,
                fds_warm);
  long rss_end = it_proc_kb(e.recd_pid, "VmRSS");
  ck_assert_msg(rss_max - rss_warm < 30 * 1024,
                "RSS peaked at %ld kB in the first 20 reloads, at %ld kB in the last 80", rss_warm,
                rss_max);
  freeReplyObject(it_cmd(e.c, "RECOMMEND p1 COUNT 10"));
  figure("reload_storm",
         "100 reloads (50 MODEL RELOAD, 50 SIGHUP; 50 corrupt: truncated, flipped bytes, empty, "
         "text) in %.1f s, slowest %llu ms; RECOMMEND sent %ld, failed %ld, max latency %.1f ms; "
         "last good model serving (checksum %s); RSS peak %ld kB in reloads 1-20, %ld kB in "
         "21-100, %ld kB at the end; model mappings %d, fds %d -> %d",
         storm_ms / 1000.0, (unsigned long long)worst_reload, tot.sent, tot.errors,
         tot.max_us / 1000.0, sum, rss_warm, rss_max, rss_end, maps, fds_warm, fds_end);
  it_env_stop(&e);
}
END_TEST

static Suite *faults_suite(void) {
  Suite *s = suite_create("faults");
  IT_ADD(s, redis_faults_under_load, 60);
  IT_ADD(s, reload_storm, 60);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_cap_asan_quarantine();
  it_data_prepare();
  ref_model_load(&M1, it_data.model1);
  it_fmt(synth_b, sizeof synth_b, "%s/synth-b.bin", it_data.dir);
  char bin[IT_PATH], log[IT_PATH + 16];
  it_fmt(bin, sizeof bin, "%s", it_bin("recd-train"));
  it_fmt(log, sizeof log, "%s/train-b.log", it_data.dir);
  char *argv[] = {bin, "-q", "--synthetic", "60000", "--factors", "8",
                  "--seed", "2", "--out", synth_b, NULL};
  if (it_run(argv, log, 60000) != 0) {
    it_print_tail(log, 20);
    return EXIT_FAILURE;
  }
  int failed = it_run_suite(faults_suite());
  ref_model_free(&M1);
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
