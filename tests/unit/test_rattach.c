/* test_rattach.c - rattach's write batching against a real redis-server.
 *
 * Each test starts its own redis-server on a free loopback port, drives
 * hiredis contexts attached with rattach_libuv_batched() on a private uv
 * loop, and ends with uv_loop_close() == 0 (every handle closed, the
 * batch's included). Waits are bounded by a uv_timer.
 */
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "rattach.h"
#include "testutil.h"

/* ---- a redis-server ---------------------------------------------------- */

static pid_t ta_pid;
static int ta_port;

static void ta_kill(void) {
  if (ta_pid > 0) {
    kill(ta_pid, SIGKILL);
    waitpid(ta_pid, NULL, 0);
    ta_pid = 0;
  }
}


static int ta_pong(void) {
  struct timeval tv = {0, 200000};
  redisContext *ctx = redisConnectWithTimeout("127.0.0.1", ta_port, tv);
  int ok = 0;
  if (ctx != NULL && !ctx->err) {
    redisReply *rep = redisCommand(ctx, "PING");
    ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
    if (rep != NULL)
      freeReplyObject(rep);
  }
  if (ctx != NULL)
    redisFree(ctx);
  return ok;
}

static void ta_start(void) {
  ta_port = tu_free_port();
  pid_t pid = tu_redis_spawn(ta_port, NULL);
  ta_pid = pid;
  for (int i = 0; i < 250; i++) {
    if (ta_pong())
      return;
    ck_assert_msg(waitpid(pid, NULL, WNOHANG) == 0, "redis-server exited at start");
    struct timespec ts = {0, 20000000L};
    nanosleep(&ts, NULL);
  }
  ck_abort_msg("redis-server did not answer PING on port %d", ta_port);
}

/* ---- the fixture: a loop, a batch, contexts ------------------------------ */

#define TA_CONNS 2
#define TA_CMDS 200

typedef struct ta {
  uv_loop_t loop;
  rattach_batch_t batch;
  uv_timer_t guard;            /* fails a test that hangs */
  uv_timer_t kick;             /* issues commands from a timer callback */
  uv_timer_t idle_long;        /* keeps the loop alive, far in the future */
  redisAsyncContext *ac[TA_CONNS];
  int connected;
  int replies[TA_CONNS];       /* in order: INCR's value == count */
  int nulls;                   /* NULL replies (freed contexts) */
  int out_of_order;
  uint64_t sent_ms, replied_ms;
  int batch_closed;
  int timed_out;
} ta_t;

static void ta_stop_all(ta_t *t);

static void ta_guard_cb(uv_timer_t *h) {
  ta_t *t = h->data;
  t->timed_out = 1;
  ta_stop_all(t);
}

static void ta_batch_closed(void *arg) {
  ((ta_t *)arg)->batch_closed = 1;
}

static void ta_closed_cb(uv_handle_t *h) {
  (void)h;
}

/* Frees the contexts still open and closes every handle, the batch last. */
static void ta_stop_all(ta_t *t) {
  for (int i = 0; i < TA_CONNS; i++) {
    redisAsyncContext *ac = t->ac[i];
    t->ac[i] = NULL;
    if (ac != NULL)
      redisAsyncFree(ac);
  }
  uv_close((uv_handle_t *)&t->guard, ta_closed_cb);
  uv_close((uv_handle_t *)&t->kick, ta_closed_cb);
  uv_close((uv_handle_t *)&t->idle_long, ta_closed_cb);
  rattach_batch_close(&t->batch, ta_batch_closed, t);
}

static void ta_connect_cb(const redisAsyncContext *ac, int status) {
  ta_t *t = ac->data;
  ck_assert_int_eq(status, REDIS_OK);
  t->connected++;
}

static void ta_setup(ta_t *t) {
  memset(t, 0, sizeof *t);
  ck_assert_int_eq(uv_loop_init(&t->loop), 0);
  rattach_batch_init(&t->batch, &t->loop);
  uv_timer_init(&t->loop, &t->guard);
  uv_timer_init(&t->loop, &t->kick);
  uv_timer_init(&t->loop, &t->idle_long);
  t->guard.data = t->kick.data = t->idle_long.data = t;
  uv_timer_start(&t->guard, ta_guard_cb, 10000, 0);
  for (int i = 0; i < TA_CONNS; i++) {
    redisAsyncContext *ac = redisAsyncConnect("127.0.0.1", ta_port);
    ck_assert_ptr_nonnull(ac);
    ck_assert_int_eq(ac->err, 0);
    ck_assert_int_eq(rattach_libuv_batched(ac, &t->loop, &t->batch), 0);
    ac->data = t;
    redisAsyncSetConnectCallback(ac, ta_connect_cb);
    t->ac[i] = ac;
  }
  /* connected: both connect callbacks have run */
  while (t->connected < TA_CONNS && !t->timed_out)
    uv_run(&t->loop, UV_RUN_ONCE);
  ck_assert_int_eq(t->connected, TA_CONNS);
}

static void ta_teardown(ta_t *t) {
  if (!uv_is_closing((uv_handle_t *)&t->guard))
    ta_stop_all(t);
  uv_run(&t->loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(t->batch_closed, 1);
  ck_assert_int_eq(uv_loop_close(&t->loop), 0);
  ta_kill();
}

/* The index of ac in t->ac, or -1 once it has been dropped. */
static int ta_index(const ta_t *t, const redisAsyncContext *ac) {
  for (int i = 0; i < TA_CONNS; i++)
    if (t->ac[i] == ac)
      return i;
  return -1;
}

static void ta_incr_cb(redisAsyncContext *ac, void *reply, void *priv) {
  ta_t *t = ac->data;
  const redisReply *r = reply;
  (void)priv;
  if (r == NULL) {
    t->nulls++;
    return;
  }
  const int i = ta_index(t, ac);
  ck_assert_int_ge(i, 0);
  ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
  if (r->integer != ++t->replies[i])
    t->out_of_order++;
  t->replied_ms = uv_now(&t->loop);
}

static void ta_send(ta_t *t, int i, int n) {
  char key[16];
  snprintf(key, sizeof key, "k%d", i);
  for (int j = 0; j < n; j++)
    ck_assert_int_eq(redisAsyncCommand(t->ac[i], ta_incr_cb, NULL, "INCR %s", key), REDIS_OK);
}

static int ta_all_replied(const ta_t *t, int n) {
  for (int i = 0; i < TA_CONNS; i++)
    if (t->replies[i] < n)
      return 0;
  return 1;
}

/* ---- tests ------------------------------------------------------------- */

/* Commands issued from a reply callback (the I/O phase, where the daemon
 * issues most of them) on two connections: every reply, in order. */
static void ta_chain_cb(redisAsyncContext *ac, void *reply, void *priv) {
  ta_t *t = ac->data;
  ta_incr_cb(ac, reply, priv);
  if (reply != NULL && priv != NULL)
    for (int i = 0; i < TA_CONNS; i++)
      ta_send(t, i, TA_CMDS);
}

START_TEST(test_commands_from_io) {
  ta_start();
  ta_t t;
  ta_setup(&t);
  ck_assert_int_eq(redisAsyncCommand(t.ac[0], ta_chain_cb, &t, "INCR k0"), REDIS_OK);
  while ((t.replies[0] < TA_CMDS + 1 || t.replies[1] < TA_CMDS) && !t.timed_out)
    uv_run(&t.loop, UV_RUN_ONCE);
  ck_assert_int_eq(t.timed_out, 0);
  ck_assert_int_eq(t.replies[0], TA_CMDS + 1);
  ck_assert_int_eq(t.replies[1], TA_CMDS);
  ck_assert_int_eq(t.out_of_order, 0);
  ta_teardown(&t);
}
END_TEST

/* A command issued from a timer callback runs before the poll phase: it
 * must go out before the loop blocks (the prepare handle), not when the
 * next event (here a timer 5 s away) ends the poll. */
static void ta_kick_cb(uv_timer_t *h) {
  ta_t *t = h->data;
  t->sent_ms = uv_now(&t->loop);
  ta_send(t, 0, 1);
}

static void ta_noop_cb(uv_timer_t *h) {
  (void)h;
}

START_TEST(test_command_from_timer_not_delayed) {
  ta_start();
  ta_t t;
  ta_setup(&t);
  uv_timer_start(&t.idle_long, ta_noop_cb, 5000, 0); /* the next event */
  uv_timer_start(&t.kick, ta_kick_cb, 10, 0);
  while (t.replies[0] < 1 && !t.timed_out)
    uv_run(&t.loop, UV_RUN_ONCE);
  ck_assert_int_eq(t.replies[0], 1);
  ck_assert_msg(t.replied_ms - t.sent_ms < 1000, "reply %llu ms after the command",
                (unsigned long long)(t.replied_ms - t.sent_ms));
  ta_teardown(&t);
}
END_TEST

/* A context freed in the turn its commands were queued (marked for the
 * flush, not written): its replies complete as NULL, the flush does not
 * touch it, and the other context's commands still go out. */
START_TEST(test_freed_while_marked) {
  ta_start();
  ta_t t;
  ta_setup(&t);
  ta_send(&t, 0, 3);
  ta_send(&t, 1, 3);
  redisAsyncContext *ac = t.ac[0];
  t.ac[0] = NULL;
  redisAsyncFree(ac);
  ck_assert_int_eq(t.nulls, 3);
  t.replies[0] = 3; /* nothing more expected there */
  while (!ta_all_replied(&t, 3) && !t.timed_out)
    uv_run(&t.loop, UV_RUN_ONCE);
  ck_assert_int_eq(t.replies[1], 3);
  ck_assert_int_eq(t.out_of_order, 0);
  ta_teardown(&t);
}
END_TEST

/* Freed from inside its own reply callback (hiredis defers the free until
 * the callback returns) after queueing more: nothing written, no crash. */
static void ta_free_self_cb(redisAsyncContext *ac, void *reply, void *priv) {
  ta_t *t = ac->data;
  (void)priv;
  if (reply == NULL) {
    t->nulls++;
    return;
  }
  const int i = ta_index(t, ac);
  ck_assert_int_ge(i, 0);
  t->replies[i]++;
  ta_send(t, 1, 2);      /* the other one: written by the flush */
  t->ac[i] = NULL;
  redisAsyncFree(ac);    /* deferred: REDIS_FREEING */
}

START_TEST(test_freed_from_callback) {
  ta_start();
  ta_t t;
  ta_setup(&t);
  ck_assert_int_eq(redisAsyncCommand(t.ac[0], ta_free_self_cb, NULL, "PING"), REDIS_OK);
  ck_assert_int_eq(redisAsyncCommand(t.ac[0], ta_incr_cb, NULL, "INCR k0"), REDIS_OK);
  while (t.replies[1] < 2 && !t.timed_out)
    uv_run(&t.loop, UV_RUN_ONCE);
  ck_assert_int_eq(t.timed_out, 0);
  ck_assert_int_eq(t.replies[0], 1);
  ck_assert_int_eq(t.nulls, 1); /* the INCR queued behind the PING */
  ck_assert_int_eq(t.replies[1], 2);
  ta_teardown(&t);
}
END_TEST

/* The batch closed while a context is still attached and holding a
 * command (an owner's bug): the context falls back to the plain hooks and
 * still gets its reply; freeing it later touches no freed batch. */
START_TEST(test_context_outlives_batch) {
  ta_start();
  ta_t t;
  ta_setup(&t);
  ta_send(&t, 0, 1);
  redisAsyncContext *keep = t.ac[0];
  t.ac[0] = NULL; /* ta_stop_all leaves it alone */
  ta_stop_all(&t);
  t.ac[0] = keep;
  while (t.replies[0] < 1)
    uv_run(&t.loop, UV_RUN_ONCE);
  ck_assert_int_eq(t.batch_closed, 1);
  t.ac[0] = NULL;
  memset(&t.batch, 0xa5, sizeof t.batch); /* as if its owner's memory went */
  redisAsyncFree(keep);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&t.loop), 0);
  ta_kill();
}
END_TEST

static Suite *rattach_suite(void) {
  Suite *s = suite_create("rattach");
  TCase *tc = tcase_create("batch");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_commands_from_io);
  tcase_add_test(tc, test_command_from_timer_not_delayed);
  tcase_add_test(tc, test_freed_while_marked);
  tcase_add_test(tc, test_freed_from_callback);
  tcase_add_test(tc, test_context_outlives_batch);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  atexit(ta_kill);
  SRunner *sr = srunner_create(rattach_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
