/* helpers.c - see helpers.h. */
#define _GNU_SOURCE /* PR_SET_PDEATHSIG via sys/prctl.h, mkdtemp */
#include "helpers.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

it_data_t it_data;

/* Check's assertions may only run inside a test; the suite's preparation
 * runs before, in main(). IT_CHECK works in both. */
static int it__in_test = 1;

void it__fail(const char *file, int line, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (it__in_test)
    ck_abort_msg("%s:%d: %s", file, line, msg);
  fprintf(stderr, "%s:%d: %s\n", file, line, msg);
  exit(1);
}

/* ---- time ----------------------------------------------------------------- */

uint64_t it_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void it_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void it_fmt(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  IT_CHECK(n >= 0 && (size_t)n < size, "text too long for its buffer: %s", buf);
}

/* ---- files ---------------------------------------------------------------- */

void it_copy_file(const char *src, const char *dst) {
  size_t len;
  void *buf = tu_read_file(src, &len);
  tu_write_file(dst, buf, len);
  free(buf);
}

void it_install_file(const char *src, const char *dst) {
  char tmp[IT_PATH + 16];
  it_fmt(tmp, sizeof tmp, "%s.tmp", dst);
  it_copy_file(src, tmp);
  IT_CHECK(rename(tmp, dst) == 0, "rename %s -> %s: %s", tmp, dst, strerror(errno));
}

void it_print_tail(const char *path, int lines) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL)
    return;
  /* Small logs: read it all, print the last `lines` lines. */
  char *buf = NULL;
  size_t cap = 0, len = 0;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
    if (len + n + 1 > cap) {
      cap = (len + n + 1) * 2;
      char *b = realloc(buf, cap);
      if (b == NULL)
        break;
      buf = b;
    }
    memcpy(buf + len, chunk, n);
    len += n;
  }
  fclose(fp);
  if (buf == NULL)
    return;
  buf[len] = '\0';
  size_t start = len;
  int seen = 0;
  while (start > 0) {
    if (buf[start - 1] == '\n' && ++seen > lines)
      break;
    start--;
  }
  fprintf(stderr, "---- %s (last %d lines) ----\n%s---- end ----\n", path, lines, buf + start);
  free(buf);
}

/* ---- processes ------------------------------------------------------------ */

const char *it_bin(const char *name) {
  static char buf[IT_PATH];
  const char *dir = getenv("RECD_BIN_DIR");
  it_fmt(buf, sizeof buf, "%s/%s", dir && *dir ? dir : ".", name);
  return buf;
}

pid_t it_spawn(char *const argv[], const char *log) {
  pid_t parent = getpid();
  pid_t pid = fork();
  IT_CHECK(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    /* Dies with the test process, whichever way that one ends. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0) {
      dup2(in, 0);
      close(in);
    }
    if (log != NULL) {
      int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
    }
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

int it_wait_exit(pid_t pid, long timeout_ms, int *status) {
  uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      if (status)
        *status = st;
      return 1;
    }
    IT_CHECK(r == 0, "waitpid(%d): %s", (int)pid, strerror(errno));
    if (it_now_ms() >= deadline)
      return 0;
    it_sleep_ms(5);
  }
}

void it_kill_hard(pid_t pid) {
  if (pid <= 0)
    return;
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

int it_run(char *const argv[], const char *log, long timeout_ms) {
  pid_t pid = it_spawn(argv, log);
  int st;
  if (!it_wait_exit(pid, timeout_ms, &st)) {
    it_kill_hard(pid);
    if (log)
      it_print_tail(log, 30);
    IT_CHECK(0, "%s did not finish within %ld ms", argv[0], timeout_ms);
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int it_free_port(void) {
  return tu_free_port(); /* testutil.c: below the ephemeral range, and why */
}

long it_proc_kb(pid_t pid, const char *field) {
  char path[64], line[256];
  it_fmt(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *fp = fopen(path, "r");
  IT_CHECK(fp != NULL, "%s: %s", path, strerror(errno));
  size_t flen = strlen(field);
  long kb = -1;
  while (fgets(line, sizeof line, fp) != NULL)
    if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
      kb = strtol(line + flen + 1, NULL, 10);
      break;
    }
  fclose(fp);
  IT_CHECK(kb >= 0, "%s has no %s", path, field);
  return kb;
}

int it_proc_fds(pid_t pid) {
  char path[64];
  it_fmt(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  IT_CHECK(d != NULL, "%s: %s", path, strerror(errno));
  int n = 0;
  for (struct dirent *de; (de = readdir(d)) != NULL;)
    n += de->d_name[0] != '.';
  closedir(d);
  return n;
}

int it_proc_maps(pid_t pid, const char *needle) {
  char path[64], line[1024];
  it_fmt(path, sizeof path, "/proc/%d/maps", (int)pid);
  FILE *fp = fopen(path, "r");
  IT_CHECK(fp != NULL, "%s: %s", path, strerror(errno));
  int n = 0;
  while (fgets(line, sizeof line, fp) != NULL)
    n += strstr(line, needle) != NULL;
  fclose(fp);
  return n;
}

/* ---- suite data ----------------------------------------------------------- */

/* A small deterministic generator (splitmix64), independent of the code
 * under test. */
static uint64_t it__rng_state;
static uint64_t it__rand(void) {
  uint64_t z = (it__rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The planted data set of tests/cli/gen_clusters.py, written in C so the
 * suite needs no interpreter: 300 users and 120 items in 6 clusters; a user
 * buys a third of their cluster's items (weights 1..4) and, one time in
 * three, one random item of any cluster, so that scores are not all exact
 * ties outside the user's cluster. Category = cluster; product family =
 * the pair {i, i + 6} of the same cluster (i % 12 < 6), "fam<n>". */
#define IT_USERS 300
#define IT_ITEMS 120
#define IT_CLUSTERS 6
static void it__write_data(void) {
  it__rng_state = 1;
  FILE *fp = fopen(it_data.csv, "w");
  IT_CHECK(fp != NULL, "cannot create a data file: %s", strerror(errno));
  fprintf(fp, "user,item,weight,timestamp\n");
  for (int u = 0; u < IT_USERS; u++) {
    int own[IT_ITEMS], n = 0;
    for (int i = 0; i < IT_ITEMS; i++)
      if (i % IT_CLUSTERS == u % IT_CLUSTERS)
        own[n++] = i;
    int k = n / 3 < 2 ? 2 : n / 3;
    for (int j = 0; j < k; j++) { /* partial Fisher-Yates: k distinct items */
      int r = j + (int)(it__rand() % (uint64_t)(n - j));
      int t = own[j];
      own[j] = own[r];
      own[r] = t;
      fprintf(fp, "user%d,item%d,%d,%d\n", u, own[j], 1 + (int)(it__rand() % 4), 1600000000 + u);
    }
    if (it__rand() % 3 == 0) {
      int i = (int)(it__rand() % IT_ITEMS);
      if (i % IT_CLUSTERS != u % IT_CLUSTERS)
        fprintf(fp, "user%d,item%d,1,%d\n", u, i, 1600000000 + u);
    }
  }
  IT_CHECK(fclose(fp) == 0, "fclose(fp) == 0 failed");
  fp = fopen(it_data.items, "w");
  IT_CHECK(fp != NULL, "cannot create a data file: %s", strerror(errno));
  fprintf(fp, "item,title,category,group\n");
  for (int i = 0; i < IT_ITEMS; i++)
    fprintf(fp, "item%d,\"Item %d\",cat%d,fam%d\n", i, i, i % IT_CLUSTERS,
            i / (2 * IT_CLUSTERS) * IT_CLUSTERS + i % IT_CLUSTERS);
  IT_CHECK(fclose(fp) == 0, "fclose(fp) == 0 failed");
}

static void it__train(const char *out, const char *factors, const char *seed) {
  char log[IT_PATH];
  it_fmt(log, sizeof log, "%s/train.log", it_data.dir);
  char *argv[] = {(char *)it_bin("recd-train"),
                  "-q",
                  "--csv",
                  it_data.csv,
                  "--items",
                  it_data.items,
                  "--factors",
                  (char *)factors,
                  "--iterations",
                  "8",
                  "--seed",
                  (char *)seed,
                  "--out",
                  (char *)out,
                  NULL};
  char bin[IT_PATH];
  it_fmt(bin, sizeof bin, "%s", it_bin("recd-train"));
  argv[0] = bin;
  int rc = it_run(argv, log, 120000);
  if (rc != 0) {
    it_print_tail(log, 30);
    fprintf(stderr, "recd-train failed (%d)\n", rc);
    exit(1);
  }
}

void it_data_prepare(void) {
  it__in_test = 0;
  const char *base = getenv("TMPDIR");
  it_fmt(it_data.dir, sizeof it_data.dir, "%s/recd-itest-XXXXXX", base && *base ? base : "/tmp");
  IT_CHECK(mkdtemp(it_data.dir) != NULL, "mkdtemp %s: %s", it_data.dir, strerror(errno));
  it_fmt(it_data.csv, sizeof it_data.csv, "%s/interactions.csv", it_data.dir);
  it_fmt(it_data.items, sizeof it_data.items, "%s/items.csv", it_data.dir);
  it_fmt(it_data.model1, sizeof it_data.model1, "%s/model1.bin", it_data.dir);
  it_fmt(it_data.model2, sizeof it_data.model2, "%s/model2.bin", it_data.dir);
  it__write_data();
  it__train(it_data.model1, "16", "42");
  it__train(it_data.model2, "12", "7");
  it_fmt(it_data.synth, sizeof it_data.synth, "%s/synth.bin", it_data.dir);
  char bin[IT_PATH], log[IT_PATH];
  it_fmt(bin, sizeof bin, "%s", it_bin("recd-train"));
  it_fmt(log, sizeof log, "%s/train.log", it_data.dir);
  char *argv[] = {bin, "-q",    "--synthetic", "60000", "--factors",
                  "8", "--out", it_data.synth, NULL};
  IT_CHECK(it_run(argv, log, 60000) == 0, "recd-train --synthetic failed");
  it__in_test = 1;
}

void it_data_cleanup(void) {
  const char *keep = getenv("RECD_ITEST_KEEP");
  if (keep != NULL && *keep != '\0' && strcmp(keep, "0") != 0) {
    fprintf(stderr, "kept %s\n", it_data.dir);
    return;
  }
  tu_rmtree(it_data.dir);
}

/* ---- environment ---------------------------------------------------------- */

void it_redis_start(it_env_t *e) {
  char port[16];
  it_fmt(port, sizeof port, "%d", e->redis_port);
  char *argv[] = {
      "redis-server", "--port",      port,    "--bind", "127.0.0.1",    "--save",   "",
      "--appendonly", "no",          "--dir", e->dir,   "--dbfilename", "dump.rdb", "--logfile",
      e->redis_log,   "--daemonize", "no",    NULL};
  e->redis_pid = it_spawn(argv, e->redis_log);
  uint64_t deadline = it_now_ms() + 10000;
  for (;;) {
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", e->redis_port, tv);
    if (c != NULL && c->err == 0) {
      redisSetTimeout(c, tv);
      redisReply *r = redisCommand(c, "PING");
      int ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
      if (r)
        freeReplyObject(r);
      redisFree(c);
      if (ok)
        return;
    } else if (c != NULL) {
      redisFree(c);
    }
    int st;
    if (it_wait_exit(e->redis_pid, 0, &st)) {
      e->redis_pid = 0;
      it_print_tail(e->redis_log, 20);
      IT_CHECK(0, "redis-server exited at start-up (port %d)", e->redis_port);
    }
    IT_CHECK(it_now_ms() < deadline, "redis-server did not answer on port %d", e->redis_port);
    it_sleep_ms(20);
  }
}

void it_redis_stop(it_env_t *e) {
  if (e->redis_pid <= 0)
    return;
  kill(e->redis_pid, SIGTERM);
  if (!it_wait_exit(e->redis_pid, 10000, NULL))
    it_kill_hard(e->redis_pid);
  e->redis_pid = 0;
}

static void it__wait_recd(it_env_t *e, const it_opts_t *o) {
  uint64_t deadline = it_now_ms() + 15000;
  for (;;) {
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", e->port, tv);
    if (c != NULL && c->err == 0) {
      redisFree(c);
      break;
    }
    if (c != NULL)
      redisFree(c);
    int st;
    if (it_wait_exit(e->recd_pid, 0, &st)) {
      e->recd_pid = 0;
      it_print_tail(e->recd_log, 30);
      IT_CHECK(0, "recd exited at start-up with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
    IT_CHECK(it_now_ms() < deadline, "recd did not listen on port %d", e->port);
    it_sleep_ms(10);
  }
  e->c = it_connect(e->port);
  if (o->requirepass) {
    redisReply *r = it_cmd(e->c, "AUTH %s", o->requirepass);
    IT_CHECK(r->type == REDIS_REPLY_STATUS, "r->type == REDIS_REPLY_STATUS failed");
    freeReplyObject(r);
  }
  /* recd connects to Redis in the background: wait for it, so that the
   * first request of a test is not a degraded answer by accident. */
  if (!o->no_import) {
    while (it_info_num(e->c, "redis", "redis_connected") != 1) {
      IT_CHECK(it_now_ms() < deadline, "recd did not connect to Redis");
      it_sleep_ms(10);
    }
  }
}

void it_env_start(it_env_t *e, const char *name, const it_opts_t *o) {
  static const it_opts_t none;
  if (o == NULL)
    o = &none;
  memset(e, 0, sizeof *e);
  it_fmt(e->name, sizeof e->name, "%s", name);
  it_fmt(e->dir, sizeof e->dir, "%s/%s", it_data.dir, name);
  IT_CHECK(mkdir(e->dir, 0700) == 0, "mkdir %s: %s", e->dir, strerror(errno));
  it_fmt(e->models_dir, sizeof e->models_dir, "%s/models", e->dir);
  IT_CHECK(mkdir(e->models_dir, 0700) == 0, "mkdir(e->models_dir, 0700) == 0 failed");
  it_fmt(e->model, sizeof e->model, "%s/model.bin", e->models_dir);
  it_copy_file(o->model ? o->model : it_data.model1, e->model);
  it_fmt(e->recd_log, sizeof e->recd_log, "%s/recd.log", e->dir);
  it_fmt(e->redis_log, sizeof e->redis_log, "%s/redis.log", e->dir);
  it_fmt(e->train_log, sizeof e->train_log, "%s/train.log", e->dir);

  e->redis_port = it_free_port();
  it_redis_start(e);
  char rport[16];
  it_fmt(rport, sizeof rport, "%d", e->redis_port);
  if (!o->no_import) {
    char bin[IT_PATH];
    it_fmt(bin, sizeof bin, "%s", it_bin("recd-train"));
    char *argv[] = {bin,           "--import",     "--csv", it_data.csv, "--items",
                    it_data.items, "--redis-port", rport,   NULL};
    int rc = it_run(argv, e->train_log, 30000);
    if (rc != 0)
      it_print_tail(e->train_log, 20);
    IT_CHECK(rc == 0, "recd-train --import exited %d", rc);
  }
  e->redis = it_connect(e->redis_port);
  it_recd_start(e, o);
}

void it_recd_start(it_env_t *e, const it_opts_t *o) {
  static const it_opts_t none;
  if (o == NULL)
    o = &none;
  char rport[16];
  it_fmt(rport, sizeof rport, "%d", e->redis_port);
  e->port = it_free_port();
  char port[16], tmo[16], bin[IT_PATH];
  it_fmt(port, sizeof port, "%d", e->port);
  it_fmt(tmo, sizeof tmo, "%d", o->redis_timeout_ms > 0 ? o->redis_timeout_ms : 200);
  it_fmt(bin, sizeof bin, "%s", it_bin("recd"));
  char *argv[64];
  int n = 0;
  argv[n++] = bin;
  if (!o->no_model) {
    argv[n++] = "--model";
    argv[n++] = e->model;
  }
  argv[n++] = "--port";
  argv[n++] = port;
  argv[n++] = "--bind";
  argv[n++] = "127.0.0.1";
  argv[n++] = "--redis-port";
  argv[n++] = rport;
  argv[n++] = "--redis-timeout-ms";
  argv[n++] = tmo;
  argv[n++] = "--unavailable-refresh-ms";
  argv[n++] = "100";
  argv[n++] = "--redis-reconnect-max-ms";
  argv[n++] = "200";
  argv[n++] = "--loglevel";
  argv[n++] = "verbose";
  if (o->unixsocket) {
    it_fmt(e->sock, sizeof e->sock, "%s/recd.sock", e->dir);
    argv[n++] = "--unixsocket";
    argv[n++] = e->sock;
    argv[n++] = "--unixsocketperm";
    argv[n++] = "700";
  }
  if (o->requirepass) {
    argv[n++] = "--requirepass";
    argv[n++] = (char *)o->requirepass;
  }
  for (int i = 0; i < 16 && o->extra[i] != NULL; i++)
    argv[n++] = (char *)o->extra[i];
  argv[n] = NULL;
  e->recd_pid = it_spawn(argv, e->recd_log);
  it__wait_recd(e, o);
}

void it_check_clean_exit(const it_env_t *e) {
  /* recd closes every handle before uv_loop_close() (STYLE 22) and says
   * so; a leaked handle is logged, and is a failure here. */
  size_t len;
  char *log = tu_read_file(e->recd_log, &len);
  char *text = realloc(log, len + 1);
  IT_CHECK(text != NULL, "out of memory");
  text[len] = '\0';
  int leaked = strstr(text, "handles still open") != NULL;
  int stopped = strstr(text, "recd stopped") != NULL;
  free(text);
  if (leaked || !stopped)
    it_print_tail(e->recd_log, 20);
  IT_CHECK(!leaked, "recd's event loop closed with handles still open");
  IT_CHECK(stopped, "recd did not log its orderly stop");
}

void it_env_stop(it_env_t *e) {
  it_recd_stop(e);
  if (e->redis) {
    redisFree(e->redis);
    e->redis = NULL;
  }
  it_redis_stop(e);
}

void it_recd_stop(it_env_t *e) {
  if (e->c) {
    redisFree(e->c);
    e->c = NULL;
  }
  if (e->recd_pid > 0) {
    kill(e->recd_pid, SIGTERM);
    int st = 0;
    int done = it_wait_exit(e->recd_pid, 10000, &st);
    if (!done || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      it_print_tail(e->recd_log, 40);
    if (!done)
      it_kill_hard(e->recd_pid);
    e->recd_pid = 0;
    IT_CHECK(done, "recd did not exit within 10 s of SIGTERM");
    IT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "recd exit status %d (signal %d) after SIGTERM",
             WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    it_check_clean_exit(e);
  }
}

/* ---- clients -------------------------------------------------------------- */

redisContext *it_connect(int port) {
  struct timeval tv = {10, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
  IT_CHECK(c != NULL && c->err == 0, "connect to port %d: %s", port,
           c ? c->errstr : "out of memory");
  redisSetTimeout(c, tv);
  return c;
}

redisContext *it_connect_unix(const char *path) {
  struct timeval tv = {10, 0};
  redisContext *c = redisConnectUnixWithTimeout(path, tv);
  IT_CHECK(c != NULL && c->err == 0, "connect to %s: %s", path, c ? c->errstr : "out of memory");
  redisSetTimeout(c, tv);
  return c;
}

redisReply *it_cmd(redisContext *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  IT_CHECK(r != NULL, "command '%s' failed: %s", fmt, c->errstr);
  return r;
}

redisReply *it_cmdv(redisContext *c, int argc, const char **argv) {
  redisReply *r = redisCommandArgv(c, argc, argv, NULL);
  IT_CHECK(r != NULL, "command %s failed: %s", argv[0], c->errstr);
  return r;
}

void it_expect_error(redisContext *c, const char *prefix, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  IT_CHECK(r != NULL, "command '%s' failed: %s", fmt, c->errstr);
  IT_CHECK(r->type == REDIS_REPLY_ERROR, "'%s': expected an error '%s...', got type %d", fmt,
           prefix, r->type);
  IT_CHECK(strncmp(r->str, prefix, strlen(prefix)) == 0, "'%s': error '%s', want '%s...'", fmt,
           r->str, prefix);
  freeReplyObject(r);
}

const char *it_info_str(redisContext *c, const char *section, const char *field) {
  static char buf[512];
  redisReply *r = it_cmd(c, "INFO %s", section);
  IT_CHECK(r->type == REDIS_REPLY_STRING, "r->type == REDIS_REPLY_STRING failed");
  char key[128];
  it_fmt(key, sizeof key, "\n%s:", field);
  const char *p = strstr(r->str, key);
  IT_CHECK(p != NULL, "INFO %s has no field %s", section, field);
  p += strlen(key);
  it_fmt(buf, sizeof buf, "%.*s", (int)strcspn(p, "\r\n"), p);
  freeReplyObject(r);
  return buf;
}

double it_info_num(redisContext *c, const char *section, const char *field) {
  return strtod(it_info_str(c, section, field), NULL);
}

const char *it_model_info(redisContext *c, const char *field) {
  static char buf[512];
  redisReply *r = it_cmd(c, "MODEL INFO");
  IT_CHECK(r->type == REDIS_REPLY_ARRAY, "r->type == REDIS_REPLY_ARRAY failed");
  IT_CHECK(r->elements % 2 == 0, "r->elements %% 2 == 0 failed");
  buf[0] = '\0';
  int found = 0;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    if (strcmp(r->element[i]->str, field) == 0) {
      it_fmt(buf, sizeof buf, "%s", r->element[i + 1]->str);
      found = 1;
    }
  }
  freeReplyObject(r);
  IT_CHECK(found, "MODEL INFO has no field %s", field);
  return buf;
}

int it_raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  IT_CHECK(fd >= 0, "socket: %s", strerror(errno));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  IT_CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

void it_raw_send(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    IT_CHECK(n > 0, "send: %s", strerror(errno));
    p += n;
    len -= (size_t)n;
  }
}

/* Waits until fd is readable or the deadline passes; 1 = readable. */
static int it__readable(int fd, uint64_t deadline) {
  for (;;) {
    uint64_t now = it_now_ms();
    if (now >= deadline)
      return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n = poll(&p, 1, (int)(deadline - now));
    if (n > 0)
      return 1;
    if (n < 0 && errno != EINTR)
      return 0;
  }
}

redisReply **it_raw_read_replies(int fd, size_t n, long timeout_ms) {
  redisReader *rd = redisReaderCreate();
  IT_CHECK(rd != NULL, "out of memory");
  redisReply **out = calloc(n ? n : 1, sizeof *out);
  IT_CHECK(out != NULL, "out of memory");
  size_t got = 0;
  uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
  char buf[65536];
  while (got < n) {
    void *rep = NULL;
    IT_CHECK(redisReaderGetReply(rd, &rep) == REDIS_OK, "bad reply: %s", rd->errstr);
    if (rep != NULL) {
      out[got++] = rep;
      continue;
    }
    IT_CHECK(it__readable(fd, deadline), "only %zu of %zu replies within %ld ms", got, n,
             timeout_ms);
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR)
      continue;
    IT_CHECK(r > 0, "connection closed after %zu of %zu replies", got, n);
    IT_CHECK(redisReaderFeed(rd, buf, (size_t)r) == REDIS_OK, "reader: %s", rd->errstr);
  }
  redisReaderFree(rd);
  return out;
}

char *it_raw_read_until_close(int fd, long timeout_ms, size_t *len, int *closed) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  IT_CHECK(buf != NULL, "out of memory");
  uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
  *closed = 0;
  while (it__readable(fd, deadline)) {
    if (n + 1024 > cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      IT_CHECK(buf != NULL, "out of memory");
    }
    ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      *closed = 1; /* EOF, or a reset: either way the server closed it */
      break;
    }
    n += (size_t)r;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* ---- logs and non-blocking clients ---------------------------------------- */

int it_file_contains(const char *path, const char *needle) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL)
    return 0;
  /* Read in chunks that overlap by strlen(needle) - 1 bytes, so a needle
   * across a chunk boundary is still found. */
  const size_t nlen = strlen(needle);
  char buf[8192 + 1];
  size_t keep = 0;
  int found = 0;
  IT_CHECK(nlen > 0 && nlen < sizeof buf / 2, "needle of %zu bytes", nlen);
  for (;;) {
    size_t n = fread(buf + keep, 1, sizeof buf - 1 - keep, fp);
    if (n == 0)
      break;
    size_t len = keep + n;
    buf[len] = '\0';
    /* memmem: the log may hold NUL bytes that would stop strstr early. */
    if (memmem(buf, len, needle, nlen) != NULL) {
      found = 1;
      break;
    }
    keep = len < nlen - 1 ? len : nlen - 1;
    memmove(buf, buf + len - keep, keep);
  }
  fclose(fp);
  return found;
}

long it_wait_file_contains(const char *path, const char *needle, long timeout_ms) {
  uint64_t t0 = it_now_ms();
  for (;;) {
    if (it_file_contains(path, needle))
      return (long)(it_now_ms() - t0);
    if (it_now_ms() - t0 >= (uint64_t)timeout_ms)
      return -1;
    it_sleep_ms(1);
  }
}

int it_raw_connect_nb(int port) {
  int fd = it_raw_connect(port);
  int fl = fcntl(fd, F_GETFL);
  IT_CHECK(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0, "O_NONBLOCK: %s",
           strerror(errno));
  return fd;
}

int it_reader_partial(const redisReader *rd) {
  /* Unparsed bytes, or a reply begun: redisReaderGetReply() sets up the
   * root task (ridx 0, type -1) even when no byte is left, and gives the
   * root its type only once it has consumed the reply's first byte. */
  return rd->len > rd->pos || (rd->ridx >= 0 && rd->rstack[0].type != -1);
}

int it_run_suite(Suite *suite) {
  SRunner *sr = srunner_create(suite);
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  if (failed > 0) {
    /* The daemon's and Redis's logs of the failed tests. */
    TestResult **res = srunner_failures(sr);
    for (int j = 0; j < failed; j++) {
      char path[IT_PATH + 64];
      it_fmt(path, sizeof path, "%s/%s/recd.log", it_data.dir, tr_tcname(res[j]));
      it_print_tail(path, 40);
      it_fmt(path, sizeof path, "%s/%s/redis.log", it_data.dir, tr_tcname(res[j]));
      it_print_tail(path, 10);
    }
    free(res);
  }
  srunner_free(sr);
  return failed;
}

/* ---- HTTP ------------------------------------------------------------------ */

char *it_http_get(int port, const char *path, int *status, size_t *len, long timeout_ms) {
  int fd = it_raw_connect(port);
  char req[1024];
  it_fmt(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
         path);
  it_raw_send(fd, req, strlen(req));
  size_t cap = 8192, n = 0;
  char *buf = malloc(cap);
  IT_CHECK(buf != NULL, "out of memory");
  uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
  long clen = -1;
  size_t body = 0; /* offset of the body once the head is complete */
  for (;;) {
    if (body == 0) {
      buf[n] = '\0';
      char *end = strstr(buf, "\r\n\r\n");
      if (end != NULL) {
        body = (size_t)(end + 4 - buf);
        /* Content-Length, when given, ends the response (keep-alive or not). */
        for (char *h = buf; h < end; h++)
          if ((h == buf || h[-1] == '\n') && strncasecmp(h, "Content-Length:", 15) == 0)
            clen = strtol(h + 15, NULL, 10);
      }
    }
    if (body > 0 && clen >= 0 && n - body >= (size_t)clen)
      break;
    if (n + 4096 + 1 > cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      IT_CHECK(buf != NULL, "out of memory");
    }
    IT_CHECK(it__readable(fd, deadline), "GET %s: no complete response within %ld ms", path,
             timeout_ms);
    ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
    if (r < 0 && errno == EINTR)
      continue;
    IT_CHECK(r >= 0, "GET %s: recv: %s", path, strerror(errno));
    if (r == 0)
      break; /* the server closed: the body is what came */
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  IT_CHECK(body > 0, "GET %s: no HTTP head in %zu bytes", path, n);
  int code = 0;
  IT_CHECK(sscanf(buf, "HTTP/1.%*d %d", &code) == 1, "GET %s: bad status line", path);
  if (status != NULL)
    *status = code;
  size_t blen = n - body;
  if (clen >= 0 && (size_t)clen < blen)
    blen = (size_t)clen;
  memmove(buf, buf + body, blen);
  buf[blen] = '\0';
  if (len != NULL)
    *len = blen;
  return buf;
}

void it_cap_asan_quarantine(void) {
  const char *asan = getenv("ASAN_OPTIONS");
  char opts[1024];
  it_fmt(opts, sizeof opts, "%s%squarantine_size_mb=16", asan ? asan : "",
         asan && *asan ? ":" : "");
  setenv("ASAN_OPTIONS", opts, 1);
}
