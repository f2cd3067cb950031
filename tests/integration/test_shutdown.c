/* test_shutdown.c - what recd promises on SIGTERM, checked from outside.
 *
 * README, "Hot reload and shutdown": recd stops accepting, stops reading new
 * commands, answers and flushes every request already read (for at most
 * 5 s), closes the clients and exits 0. These tests hold it to that with
 * clients that behave like a busy storefront's connection pool: they keep
 * sending while the daemon drains, and read what comes back until the
 * connection ends.
 *
 * Determinism: Redis is paused (SIGSTOP) while the clients' requests are
 * read, so every RECOMMEND stays in flight; the test learns from INFO
 * (total_commands_processed) exactly how many commands recd has read, sends
 * SIGTERM, waits until recd's log shows "signal 15: shutting down", and only
 * then sends commands that must never run: ECHO after-signal-<n> markers. A
 * reply to a marker is a command executed after the signal. Redis resumes
 * (SIGCONT) once the markers are on their way, so nothing recd does after
 * the signal can finish before they have arrived.
 *
 * Every socket of the test is non-blocking and every wait is bounded: a
 * daemon that hangs or misbehaves fails the test, never stalls it.
 * Run one test with CK_RUN_CASE=<name>_fn build/tests/integration_test_shutdown.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "helpers.h"

/* What main.c logs when SIGTERM arrives (before it stops reading). */
#define SHUTDOWN_LINE "signal 15: shutting down"
/* recd's grace period (main.c SHUTDOWN_GRACE_MS) and the slack on top of it
 * for a loaded or sanitized machine: an exit later than this after SIGTERM
 * fails. */
#define GRACE_MS 5000
#define EXIT_SLACK_MS 1500
/* How long the clients go on after SIGTERM at most (then the test fails
 * anyway: recd must have exited by GRACE_MS + EXIT_SLACK_MS). */
#define AFTER_SIGNAL_MS 9000
/* The daemon's in-flight limit per client (CLIENT_MAX_QUEUED in server.c,
 * CONN_MAX_QUEUED in conn.h after the refactor): reading from a client
 * stops at this many unanswered requests. */
#define MAX_QUEUED 256
/* Prefix of the marker commands' argument: ECHO after-signal-<client>-<n>. */
#define MARKER "after-signal-"

/* ---- clients ------------------------------------------------------------------ */

enum { END_OPEN, END_EOF, END_RESET, END_ERROR };

typedef struct sclient {
  int id;                /* index, for messages */
  int fd;                /* non-blocking TCP socket to recd */
  redisReader *rd;       /* replies, parsed from the raw bytes */
  char *out;             /* bytes still to send: out[out_off, out_len) */
  size_t out_off, out_len, out_cap;
  int write_err;         /* errno of a failed send (no more sends): a
                            reset shows here first when the test was
                            sending, and recv() then reports a plain EOF */
  size_t n_expected;     /* replies owed: commands recd read before SIGTERM */
  const char **echo;     /* echo[j]: the payload reply j must echo (NULL:
                            reply j answers a RECOMMEND, an array) */
  size_t n_replies;      /* complete replies parsed */
  size_t n_bad;          /* replies of the wrong type or content */
  char bad[160];         /* the first of them, for messages */
  size_t n_markers;      /* markers sent */
  size_t marker_replies; /* replies that echo a marker: must stay 0 */
  uint64_t first_marker_ms; /* when the first of them arrived */
  size_t bytes_in;       /* bytes received */
  int end;               /* END_*: how the connection ended */
  int end_errno;         /* errno of END_RESET / END_ERROR */
  int partial;           /* the stream ended inside a reply */
  uint64_t next_marker;  /* when to send the next marker (after SIGTERM) */
} sclient_t;

static void sc_open(sclient_t *c, int id, int port) {
  memset(c, 0, sizeof *c);
  c->id = id;
  c->fd = it_raw_connect_nb(port);
  c->rd = redisReaderCreate();
  ck_assert_ptr_nonnull(c->rd);
  c->rd->maxbuf = 0; /* large replies: keep the buffer */
}

static void sc_close(sclient_t *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  if (c->rd)
    redisReaderFree(c->rd);
  c->rd = NULL;
  free(c->out);
  c->out = NULL;
  free(c->echo);
  c->echo = NULL;
}

/* Appends one command (argv form, binary safe) to c's output. */
static void sc_queue(sclient_t *c, int argc, const char **argv) {
  char *cmd;
  int n = redisFormatCommandArgv(&cmd, argc, argv, NULL);
  ck_assert_int_gt(n, 0);
  if (c->out_len + (size_t)n > c->out_cap) {
    c->out_cap = (c->out_len + (size_t)n) * 2;
    c->out = realloc(c->out, c->out_cap);
    ck_assert_ptr_nonnull(c->out);
  }
  memcpy(c->out + c->out_len, cmd, (size_t)n);
  c->out_len += (size_t)n;
  free(cmd);
}

static void sc_queue_marker(sclient_t *c) {
  char arg[64];
  it_fmt(arg, sizeof arg, MARKER "%d-%zu", c->id, c->n_markers++);
  const char *argv[] = {"ECHO", arg};
  sc_queue(c, 2, argv);
}

/* Sends what the socket takes now. A send that fails (the daemon closed)
 * ends sending, not the connection: the replies may still be readable. */
static void sc_send(sclient_t *c) {
  while (c->fd >= 0 && c->write_err == 0 && c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    } else {
      c->write_err = n < 0 ? errno : EPIPE;
    }
  }
  if (c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
}

static int sc_sending(const sclient_t *c) {
  return c->fd >= 0 && c->write_err == 0 && c->out_off < c->out_len;
}

/* Checks one reply against what c is owed. */
static void sc_reply(sclient_t *c, const redisReply *r, uint64_t now) {
  size_t j = c->n_replies++;
  if (r->type == REDIS_REPLY_STRING && r->len >= strlen(MARKER) &&
      memcmp(r->str, MARKER, strlen(MARKER)) == 0) {
    if (c->marker_replies++ == 0)
      c->first_marker_ms = now;
    return;
  }
  const char *want = j < c->n_expected && c->echo != NULL ? c->echo[j] : NULL;
  int ok;
  if (want != NULL)
    ok = r->type == REDIS_REPLY_STRING && r->len == strlen(want) &&
         memcmp(r->str, want, r->len) == 0;
  else
    ok = r->type == REDIS_REPLY_ARRAY; /* a RECOMMEND's answer */
  if (!ok && c->n_bad++ == 0)
    it_fmt(c->bad, sizeof c->bad, "reply %zu: type %d, %zu bytes \"%.40s\", want %s", j, r->type,
           (size_t)r->len, r->str ? r->str : "", want ? "an echo" : "an array");
}

/* One recv() of at most `max` bytes (non-blocking); parses what arrived.
 * Records how the connection ended. */
static void sc_recv(sclient_t *c, size_t max, uint64_t now) {
  if (c->end != END_OPEN)
    return;
  char buf[65536];
  if (max > sizeof buf)
    max = sizeof buf;
  ssize_t n = recv(c->fd, buf, max, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0) {
    c->end = n == 0 ? END_EOF : errno == ECONNRESET ? END_RESET : END_ERROR;
    c->end_errno = n == 0 ? 0 : errno;
    c->partial = it_reader_partial(c->rd);
    /* As a client library does: the connection is over, close it (the
     * daemon may be waiting for that before it exits). */
    close(c->fd);
    c->fd = -1;
    return;
  }
  c->bytes_in += (size_t)n;
  ck_assert_msg(redisReaderFeed(c->rd, buf, (size_t)n) == REDIS_OK, "client %d: reader: %s",
                c->id, c->rd->errstr);
  for (;;) {
    void *v = NULL;
    ck_assert_msg(redisReaderGetReply(c->rd, &v) == REDIS_OK,
                  "client %d: not RESP after %zu replies: %s", c->id, c->n_replies, c->rd->errstr);
    if (v == NULL)
      break;
    sc_reply(c, v, now);
    freeReplyObject(v);
  }
}

static const char *sc_end_str(const sclient_t *c) {
  static char buf[128];
  const char *end = c->end == END_EOF     ? "EOF"
                    : c->end == END_RESET ? "ECONNRESET on recv()"
                    : c->end == END_ERROR ? strerror(c->end_errno)
                                          : "still open";
  if (c->write_err != 0)
    it_fmt(buf, sizeof buf, "%s on send(), then %s", strerror(c->write_err), end);
  else
    it_fmt(buf, sizeof buf, "%s", end);
  return buf;
}

/* Sends every client's queued bytes (Redis paused: nothing is answered
 * yet), bounded. */
static void send_all(sclient_t *cl, int n, long timeout_ms) {
  uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
  struct pollfd *p = calloc((size_t)n, sizeof *p);
  ck_assert_ptr_nonnull(p);
  for (;;) {
    int busy = 0;
    for (int j = 0; j < n; j++) {
      sc_send(&cl[j]);
      ck_assert_msg(cl[j].write_err == 0, "client %d: send: %s", j, strerror(cl[j].write_err));
      p[j] = (struct pollfd){.fd = sc_sending(&cl[j]) ? cl[j].fd : -1, .events = POLLOUT};
      busy += sc_sending(&cl[j]);
    }
    if (busy == 0)
      break;
    uint64_t now = it_now_ms();
    ck_assert_msg(now < deadline, "%d clients could not send their requests within %ld ms", busy,
                  timeout_ms);
    poll(p, (nfds_t)n, (int)(deadline - now));
  }
  free(p);
}

/* Waits until recd has read `n` more commands than `before` (INFO counts
 * itself: one per poll); `hint` says why exactly n. */
static void wait_commands(redisContext *c, double before, double n, long timeout_ms,
                          const char *hint) {
  uint64_t t0 = it_now_ms();
  double now = before;
  for (int polls = 1;; polls++) {
    now = it_info_num(c, "stats", "total_commands_processed") - before - polls;
    if (now >= n)
      break;
    ck_assert_msg(it_now_ms() - t0 < (uint64_t)timeout_ms,
                  "recd read %.0f of %.0f commands within %ld ms (%s)", now, n, timeout_ms, hint);
    it_sleep_ms(2);
  }
  ck_assert_msg(now == n, "recd read %.0f commands, want exactly %.0f (%s)", now, n, hint);
}

/* The test's own client (INFO) leaves before SIGTERM: a daemon may wait
 * for an idle connection to hang up until its grace period ends, which is
 * allowed but would only make these tests 5 s longer. */
static void close_control(it_env_t *e) {
  redisFree(e->c);
  e->c = NULL;
}

/* SIGTERM, then waits for recd's shutdown line; returns when SIGTERM was
 * sent (it_now_ms). */
static uint64_t sigterm_and_wait_line(it_env_t *e) {
  uint64_t t_sig = it_now_ms();
  ck_assert_int_eq(kill(e->recd_pid, SIGTERM), 0);
  long waited = it_wait_file_contains(e->recd_log, SHUTDOWN_LINE, 5000);
  ck_assert_msg(waited >= 0, "recd did not log \"" SHUTDOWN_LINE "\" within 5 s of SIGTERM");
  return t_sig;
}

/* The loop after SIGTERM: every client keeps sending a marker every
 * `marker_every_ms` (at most `max_markers`) until its connection ends, and
 * reads at most `read_max` bytes per `tick_ms` (0: as fast as replies come).
 * Returns when every connection has ended and recd has exited, or
 * AFTER_SIGNAL_MS after t_sig. Sets *exited, *status and *t_exit. */
static void run_after_signal(it_env_t *e, sclient_t *cl, int n, uint64_t t_sig,
                             long marker_every_ms, size_t max_markers, size_t read_max,
                             long tick_ms, int *exited, int *status, uint64_t *t_exit) {
  struct pollfd *p = calloc((size_t)n, sizeof *p);
  ck_assert_ptr_nonnull(p);
  uint64_t deadline = t_sig + AFTER_SIGNAL_MS;
  for (;;) {
    uint64_t now = it_now_ms();
    if (!*exited && it_wait_exit(e->recd_pid, 0, status)) {
      *exited = 1;
      *t_exit = now;
    }
    int open = 0;
    for (int j = 0; j < n; j++) {
      sclient_t *c = &cl[j];
      if (c->end != END_OPEN)
        continue;
      open++;
      if (c->write_err == 0 && c->n_markers < max_markers && now >= c->next_marker) {
        sc_queue_marker(c);
        c->next_marker = now + (uint64_t)marker_every_ms;
      }
      sc_send(c);
    }
    if ((open == 0 && *exited) || now >= deadline)
      break;
    if (tick_ms > 0) {
      /* A slow reader: one bounded read per client per tick. */
      it_sleep_ms(tick_ms);
      now = it_now_ms();
      for (int j = 0; j < n; j++)
        sc_recv(&cl[j], read_max, now);
      continue;
    }
    for (int j = 0; j < n; j++)
      p[j] = (struct pollfd){.fd = cl[j].end == END_OPEN ? cl[j].fd : -1,
                             .events = (short)(POLLIN | (sc_sending(&cl[j]) ? POLLOUT : 0))};
    poll(p, (nfds_t)n, 5);
    now = it_now_ms();
    for (int j = 0; j < n; j++)
      if (p[j].fd >= 0 && (p[j].revents & (POLLIN | POLLERR | POLLHUP)))
        for (int k = 0; k < 16 && cl[j].end == END_OPEN; k++) {
          size_t before = cl[j].bytes_in;
          sc_recv(&cl[j], read_max, now);
          if (cl[j].bytes_in == before)
            break;
        }
  }
  free(p);
  if (!*exited && it_wait_exit(e->recd_pid, 1000, status)) {
    *exited = 1;
    *t_exit = it_now_ms();
  }
}

/* recd exited 0 within the grace period (+ slack) of SIGTERM, cleanly. */
static void check_exit(it_env_t *e, int exited, int status, uint64_t t_sig, uint64_t t_exit) {
  if (!exited) {
    it_print_tail(e->recd_log, 20);
    it_kill_hard(e->recd_pid);
    e->recd_pid = 0;
    ck_abort_msg("recd still running %d ms after SIGTERM", AFTER_SIGNAL_MS + 1000);
  }
  e->recd_pid = 0;
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "recd exit status %d (signal %d) after SIGTERM",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  ck_assert_msg(t_exit - t_sig <= GRACE_MS + EXIT_SLACK_MS,
                "recd exited %llu ms after SIGTERM (grace period %d ms)",
                (unsigned long long)(t_exit - t_sig), GRACE_MS);
  it_check_clean_exit(e);
}

/* ---- 1: no command read after SIGTERM runs --------------------------------------- */

/* 50 clients with one RECOMMEND in flight each and 10 that pipeline 400
 * RECOMMENDs without reading: recd reads 256 of them (its in-flight limit)
 * and stops reading those 10 until half are answered. With Redis paused,
 * nothing is answered, so at SIGTERM every request read is still in flight
 * and the 10 pipeliners are paused with the rest of their requests unread.
 * After the shutdown line every client sends markers, and keeps sending one
 * every 25 ms until its connection ends. recd must answer the requests it
 * had read (the 50 in-flight ones, and at least the 256 per pipeliner), run
 * no marker, and exit 0 within its grace period. */
START_TEST(sigterm_stops_reading) {
  enum { N_INFLIGHT = 50, N_PIPE = 10, N = N_INFLIGHT + N_PIPE, PIPELINED = 400 };
  it_env_t e;
  /* Requests wait for Redis until it resumes, well before this deadline. */
  it_opts_t o = {.redis_timeout_ms = 10000};
  it_env_start(&e, __func__, &o);
  redisContext *ctl = e.c;
  static sclient_t cl[N];

  ck_assert_int_eq(kill(e.redis_pid, SIGSTOP), 0);
  double before = it_info_num(ctl, "stats", "total_commands_processed");
  for (int j = 0; j < N; j++) {
    sc_open(&cl[j], j, e.port);
    char user[32];
    it_fmt(user, sizeof user, "user%d", j % 300);
    const char *argv[] = {"RECOMMEND", user, "COUNT", "3"};
    int k = j < N_INFLIGHT ? 1 : PIPELINED;
    for (int i = 0; i < k; i++)
      sc_queue(&cl[j], 4, argv);
  }
  send_all(cl, N, 10000);
  /* Exactly the in-flight limit of each pipeliner is read: they are paused. */
  wait_commands(ctl, before, N_INFLIGHT + N_PIPE * MAX_QUEUED, 10000,
                "each in-flight client's request and the first MAX_QUEUED of each pipeliner: "
                "is the per-client in-flight limit still 256?");
  for (int j = 0; j < N; j++)
    cl[j].n_expected = j < N_INFLIGHT ? 1 : MAX_QUEUED;
  close_control(&e);

  uint64_t t_sig = sigterm_and_wait_line(&e);
  for (int j = 0; j < N; j++) {
    sc_queue_marker(&cl[j]);
    sc_send(&cl[j]);
    cl[j].next_marker = it_now_ms() + 25;
  }
  ck_assert_int_eq(kill(e.redis_pid, SIGCONT), 0);
  int exited = 0, status = 0;
  uint64_t t_exit = 0;
  run_after_signal(&e, cl, N, t_sig, 25, 40, 65536, 0, &exited, &status, &t_exit);

  /* 1. No marker ran. */
  size_t markers = 0, inflight = 0, pipers = 0, extra = 0;
  uint64_t first = UINT64_MAX;
  for (int j = 0; j < N; j++) {
    if (cl[j].marker_replies > 0) {
      markers += cl[j].marker_replies;
      if (j < N_INFLIGHT)
        inflight++;
      else
        pipers++;
      if (cl[j].first_marker_ms < first)
        first = cl[j].first_marker_ms;
    }
    size_t owed = cl[j].n_expected + cl[j].marker_replies;
    if (cl[j].n_replies > owed)
      extra += cl[j].n_replies - owed;
  }
  ck_assert_msg(markers == 0,
                "recd executed commands sent after it logged \"" SHUTDOWN_LINE "\": %zu "
                "replies to ECHO " MARKER "<n> markers, on %zu of the %d paused pipeliners and "
                "%zu of the %d clients with one request in flight, the first %llu ms after "
                "SIGTERM; and %zu replies to RECOMMENDs beyond the %d per pipeliner read before "
                "the signal",
                markers, pipers, N_PIPE, inflight, N_INFLIGHT,
                (unsigned long long)(first - t_sig), extra, MAX_QUEUED);
  /* 2. Exit 0, within the grace period. */
  check_exit(&e, exited, status, t_sig, t_exit);
  /* 3. Every request read before the signal was answered. */
  for (int j = 0; j < N; j++) {
    const sclient_t *c = &cl[j];
    ck_assert_msg(c->n_bad == 0, "client %d: %s", j, c->bad);
    ck_assert_msg(c->n_replies >= c->n_expected && !c->partial,
                  "client %d (%s): %zu of the %zu requests read before SIGTERM answered%s, then %s",
                  j, j < N_INFLIGHT ? "one in flight" : "pipeliner", c->n_replies, c->n_expected,
                  c->partial ? " and a partial reply" : "", sc_end_str(c));
  }
  for (int j = 0; j < N; j++)
    sc_close(&cl[j]);
  it_env_stop(&e);
}
END_TEST

/* ---- 2: replies whole, then a clean EOF ---------------------------------------------- */

/* 4 clients pipeline 49 requests with large replies each (a RECOMMEND
 * first, so that with Redis paused nothing is answered yet, then 24 ECHOs of
 * 32 KiB and 24 RECOMMEND ... COUNT 500 WITHSCORES): about 0.8 MB of replies
 * per client. recd reads them all; SIGTERM; the clients keep writing (a
 * marker every 20 ms until their connection ends) and read slowly, 16 KiB
 * per client every 4 ms. Every client must get its 49 replies whole, no
 * byte of a 50th, and then EOF: not ECONNRESET, which would mean that recd
 * closed a socket with unread input, the kernel answered with a reset and
 * dropped the reply bytes that had not reached the client yet. */
START_TEST(sigterm_replies_whole) {
  enum { N = 4, PAIRS = 24, PER = 1 + 2 * PAIRS, ECHO_BYTES = 32 * 1024 };
  it_env_t e;
  it_opts_t o = {.redis_timeout_ms = 10000};
  it_env_start(&e, __func__, &o);
  redisContext *ctl = e.c;
  static sclient_t cl[N];
  static char payload[N][PAIRS][ECHO_BYTES + 1];

  ck_assert_int_eq(kill(e.redis_pid, SIGSTOP), 0);
  double before = it_info_num(ctl, "stats", "total_commands_processed");
  for (int j = 0; j < N; j++) {
    sclient_t *c = &cl[j];
    sc_open(c, j, e.port);
    c->echo = calloc(PER, sizeof *c->echo);
    ck_assert_ptr_nonnull(c->echo);
    char user[32];
    it_fmt(user, sizeof user, "user%d", j);
    const char *reco[] = {"RECOMMEND", user, "COUNT", "500", "WITHSCORES"};
    sc_queue(c, 5, reco);
    for (int i = 0; i < PAIRS; i++) {
      /* A payload that names its place, so a reply out of place shows. */
      char *pl = payload[j][i];
      int h = snprintf(pl, ECHO_BYTES + 1, "client-%d-echo-%d-", j, i);
      for (int b = h; b < ECHO_BYTES; b++)
        pl[b] = (char)('a' + (b + i + j) % 26);
      pl[ECHO_BYTES] = '\0';
      const char *echo[] = {"ECHO", pl};
      sc_queue(c, 2, echo);
      c->echo[1 + 2 * i] = pl;
      it_fmt(user, sizeof user, "user%d", (j * PAIRS + i) % 300);
      sc_queue(c, 5, reco);
    }
    c->n_expected = PER;
  }
  send_all(cl, N, 10000);
  wait_commands(ctl, before, N * PER, 10000, "every request of every client");
  close_control(&e);

  uint64_t t_sig = sigterm_and_wait_line(&e);
  for (int j = 0; j < N; j++) {
    sc_queue_marker(&cl[j]);
    sc_send(&cl[j]);
    cl[j].next_marker = it_now_ms() + 20;
  }
  ck_assert_int_eq(kill(e.redis_pid, SIGCONT), 0);
  int exited = 0, status = 0;
  uint64_t t_exit = 0;
  run_after_signal(&e, cl, N, t_sig, 20, 100, 16384, 4, &exited, &status, &t_exit);

  char msg[1024] = "";
  size_t mlen = 0;
  int bad = 0;
  for (int j = 0; j < N; j++) {
    const sclient_t *c = &cl[j];
    if (c->n_replies == PER && !c->partial && c->end == END_EOF && c->write_err == 0 &&
        c->n_bad == 0 && c->marker_replies == 0)
      continue;
    bad++;
    int w = snprintf(msg + mlen, sizeof msg - mlen,
                     "; client %d: %zu of %d replies whole%s, then %s (%zu bytes read)", j,
                     c->n_replies, PER, c->partial ? ", then part of one" : "", sc_end_str(c),
                     c->bytes_in);
    if (w > 0 && (size_t)w < sizeof msg - mlen)
      mlen += (size_t)w;
  }
  ck_assert_msg(bad == 0,
                "%d of %d clients did not get every reply to the commands recd read before "
                "SIGTERM whole and then a clean EOF%s",
                bad, N, msg);
  for (int j = 0; j < N; j++) {
    ck_assert_msg(cl[j].marker_replies == 0, "client %d: %zu commands sent after SIGTERM ran", j,
                  cl[j].marker_replies);
    ck_assert_msg(cl[j].n_bad == 0, "client %d: %s", j, cl[j].bad);
  }
  check_exit(&e, exited, status, t_sig, t_exit);
  for (int j = 0; j < N; j++)
    sc_close(&cl[j]);
  it_env_stop(&e);
}
END_TEST

static Suite *shutdown_suite(void) {
  Suite *s = suite_create("shutdown");
  IT_ADD(s, sigterm_stops_reading, 60);
  IT_ADD(s, sigterm_replies_whole, 60);
  return s;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  it_data_prepare();
  int failed = it_run_suite(shutdown_suite());
  it_data_cleanup();
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
