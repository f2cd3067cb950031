/* helpers.h - processes, sockets and clients for the daemon's integration
 * tests.
 *
 * Every test runs in its own Check fork and starts its own redis-server and
 * recd on free loopback ports, in a directory of its own under the suite's
 * temporary directory. Processes are started with fork + exec from the
 * test's main thread with PR_SET_PDEATHSIG = SIGKILL, so they die with the
 * test process however it ends (an assertion, which makes Check _exit(); a
 * timeout, which makes Check SIGKILL the test's process group). A test that
 * ends normally stops them itself and checks how they exited.
 *
 * Every wait is bounded: each helper that waits takes or implies a deadline
 * and fails the test (ck_assert) when it passes.
 */
#ifndef RECD_ITEST_HELPERS_H
#define RECD_ITEST_HELPERS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>
#include <hiredis/hiredis.h>

#define IT_PATH 512

/* ---- time ----------------------------------------------------------------- */

uint64_t it_now_ms(void);
void it_sleep_ms(long ms);

/* Fails the current test (or, before the tests run, the program) with a
 * message; usable where Check's assertions are not (main()). */
void it__fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
#define IT_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      it__fail(__FILE__, __LINE__, __VA_ARGS__);                                                   \
  } while (0)

/* snprintf() into buf that fails the test when the text does not fit (and
 * keeps -Wformat-truncation quiet about paths built from run-time parts). */
void it_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- files ---------------------------------------------------------------- */

/* Copies src to dst (created or truncated); fails the test on error. */
void it_copy_file(const char *src, const char *dst);
/* Publishes src at dst the way recd-train does: a copy in dst's directory,
 * then rename() over dst, so a reader sees the old file or the new one. */
void it_install_file(const char *src, const char *dst);
/* Prints the last `lines` lines of a file to stderr (for failure reports). */
void it_print_tail(const char *path, int lines);

/* ---- processes ------------------------------------------------------------ */

/* Path of a program of the build (RECD_BIN_DIR/name) in a static buffer. */
const char *it_bin(const char *name);

/* Starts argv[0] (searched in PATH) with stdin from /dev/null and stdout and
 * stderr appended to log (NULL: inherited). Returns its pid. */
pid_t it_spawn(char *const argv[], const char *log);
/* Waits up to timeout_ms for pid to exit. Returns 1 and the wait status in
 * *status when it did, 0 when it is still running. */
int it_wait_exit(pid_t pid, long timeout_ms, int *status);
/* SIGKILLs pid and reaps it (no-op for pid <= 0). */
void it_kill_hard(pid_t pid);
/* Runs argv to completion (at most timeout_ms, then it is killed and the test
 * fails) and returns its exit status (-1 when it died of a signal). */
int it_run(char *const argv[], const char *log, long timeout_ms);

/* A free TCP port on 127.0.0.1 (bound to port 0, then released). */
int it_free_port(void);

/* A "<field>: <n> kB" line of /proc/<pid>/status (VmRSS, VmHWM, VmSize...)
 * in kB; fails the test when it cannot be read. */
long it_proc_kb(pid_t pid, const char *field);
/* Open file descriptors of pid (entries of /proc/<pid>/fd). */
int it_proc_fds(pid_t pid);
/* Lines of /proc/<pid>/maps that contain `needle` (mappings of a file). */
int it_proc_maps(pid_t pid, const char *needle);

/* ---- the environment of one test ------------------------------------------ */

typedef struct it_opts {
  const char *requirepass; /* recd --requirepass, NULL = none */
  int unixsocket;          /* also listen on <dir>/recd.sock, mode 700 */
  int redis_timeout_ms;    /* recd --redis-timeout-ms, 0 = 200 */
  int no_import;           /* leave Redis empty */
  const char *model;       /* model to serve (copied), NULL = model1 */
  const char *extra[16];   /* more recd arguments, NULL-terminated */
  int no_model;            /* do not pass --model (variant lines name the
                              models); the copy at e->model is still made */
} it_opts_t;

typedef struct it_env {
  char name[64];
  char dir[IT_PATH];        /* this test's directory */
  char models_dir[IT_PATH]; /* <dir>/models: recd's models directory */
  char model[IT_PATH];      /* <dir>/models/model.bin: the served model */
  char sock[IT_PATH];       /* <dir>/recd.sock when opts.unixsocket */
  char recd_log[IT_PATH], redis_log[IT_PATH], train_log[IT_PATH];
  int redis_port, port;
  pid_t redis_pid, recd_pid;
  redisContext *redis; /* the test's own client to Redis (storefront) */
  redisContext *c;     /* the test's first client to recd */
} it_env_t;

/* Suite-wide inputs, prepared once by main() before the runner forks. */
typedef struct it_data {
  char dir[IT_PATH];    /* suite temporary directory */
  char csv[IT_PATH];    /* interactions (gen_clusters.py) */
  char items[IT_PATH];  /* item categories */
  char model1[IT_PATH]; /* k = 16, seed 42 */
  char model2[IT_PATH]; /* k = 12, seed 7 */
  char synth[IT_PATH];  /* 60000 random items (ids i0.., categories
                           c0..c99), k = 8: above the daemon's
                           thread-pool threshold */
} it_data_t;

extern it_data_t it_data;

/* Prepares it_data: temporary directory, data set, two trained models.
 * Exits the process on failure (it runs before any test). */
void it_data_prepare(void);
/* Removes the suite directory (unless RECD_ITEST_KEEP is set). */
void it_data_cleanup(void);

/* Starts redis-server (with the data imported unless o->no_import) and recd
 * serving a copy of o->model (default model1); connects e->redis and e->c. name names the
 * test's directory (<suite dir>/<name>). */
void it_env_start(it_env_t *e, const char *name, const it_opts_t *o);
/* Stops recd with SIGTERM and requires exit status 0 within 10 s (under
 * ASan this is also the leak check), then stops redis-server. */
void it_env_stop(it_env_t *e);

/* After recd exited: its log shows an orderly stop and no handle left open
 * at uv_loop_close(). */
void it_check_clean_exit(const it_env_t *e);

/* recd alone, against the redis-server of e (already running): started on
 * a new free port with o's options (what it_env_start does after the
 * import), e->port, e->recd_pid and e->c set. With it_recd_stop, a restart
 * with other options on the same Redis data. */
void it_recd_start(it_env_t *e, const it_opts_t *o);
/* The recd half of it_env_stop: SIGTERM, exit status 0 within 10 s, clean
 * exit; e->c closed. Redis keeps running. */
void it_recd_stop(it_env_t *e);

/* redis-server alone: started on e->redis_port with its RDB file in e->dir
 * (no automatic saves), ready to answer PING when this returns. */
void it_redis_start(it_env_t *e);
/* SIGTERM, then waits for its exit. */
void it_redis_stop(it_env_t *e);

/* ---- clients -------------------------------------------------------------- */

/* A hiredis connection to 127.0.0.1:port with 10 s I/O timeouts. */
redisContext *it_connect(int port);
redisContext *it_connect_unix(const char *path);
/* Runs a command (printf-like, as redisCommand) and fails the test when the
 * connection breaks. The reply must be freed by the caller. */
redisReply *it_cmd(redisContext *c, const char *fmt, ...);
/* Same with an argument vector (binary safe). */
redisReply *it_cmdv(redisContext *c, int argc, const char **argv);
/* it_cmd that must return an error reply starting with `prefix`. */
void it_expect_error(redisContext *c, const char *prefix, const char *fmt, ...);
/* The value of `field` in INFO's text ("field:value"), as a number; fails the
 * test when it is missing. */
double it_info_num(redisContext *c, const char *section, const char *field);
/* An INFO field's text (a static buffer, valid until the next call). */
const char *it_info_str(redisContext *c, const char *section, const char *field);
/* The value of a field of MODEL INFO (a static buffer). */
const char *it_model_info(redisContext *c, const char *field);

/* A raw TCP socket to 127.0.0.1:port (blocking, TCP_NODELAY, 10 s receive
 * timeout). */
int it_raw_connect(int port);
/* Sends all of buf (one send() per call on a blocking socket). */
void it_raw_send(int fd, const void *buf, size_t len);
/* Reads replies with a hiredis reader until `n` have arrived (fails the test
 * on EOF or after timeout_ms). Returns an array of n replies (free each with
 * freeReplyObject and the array with free). */
redisReply **it_raw_read_replies(int fd, size_t n, long timeout_ms);
/* Reads until the peer closes (at most timeout_ms); returns the bytes read
 * (NUL-terminated, malloc'ed), *closed = 1 when EOF was seen. */
char *it_raw_read_until_close(int fd, long timeout_ms, size_t *len, int *closed);

/* ---- logs and non-blocking clients (shutdown tests) ----------------------- */

/* Whether the file at path contains `needle` now (0 when it cannot be read). */
int it_file_contains(const char *path, const char *needle);
/* Polls the file at path (every millisecond) until it contains `needle`.
 * Returns the milliseconds waited, or -1 when timeout_ms passed first. */
long it_wait_file_contains(const char *path, const char *needle, long timeout_ms);
/* it_raw_connect(), then O_NONBLOCK: sends and receives never wait. */
int it_raw_connect_nb(int port);
/* After every complete reply has been taken out of rd with
 * redisReaderGetReply(): 1 when it still holds bytes of an incomplete
 * reply (a reply cut short), 0 when it stopped at a reply boundary. */
int it_reader_partial(const redisReader *rd);

/* ---- HTTP (the metrics port) ---------------------------------------------- */

/* GET path from 127.0.0.1:port (HTTP/1.1, Connection: close). Returns the
 * body (malloc'ed, NUL-terminated, *len bytes when len is not NULL) and
 * the status code in *status; fails the test on a connection error or
 * after timeout_ms. */
char *it_http_get(int port, const char *path, int *status, size_t *len, long timeout_ms);

/* Under ASan, freed memory sits in a quarantine (256 MB by default) that
 * would read as RSS growth in tests that watch the daemon's memory: caps it
 * at 16 MB for the processes started afterwards. No effect on other
 * builds. Call before starting daemons. */
void it_cap_asan_quarantine(void);

/* Runs a suite in Check's fork mode and, for every failed test, prints the
 * tail of its recd and redis-server logs. Returns the number of failures. */
int it_run_suite(Suite *suite);
/* Adds test fn to suite s in a test case of its own with a timeout of secs
 * seconds (one redis-server and recd per test: cases must not share). */
#define IT_ADD(s, fn, secs)                                                                        \
  do {                                                                                             \
    TCase *tc_ = tcase_create(#fn "_fn");                                                          \
    tcase_set_timeout(tc_, secs);                                                                  \
    tcase_add_test(tc_, fn);                                                                       \
    suite_add_tcase(s, tc_);                                                                       \
  } while (0)

#endif
