/* testutil.c - see testutil.h. */
#define _XOPEN_SOURCE 700
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "recd/err.h"
#include "recd/model.h"
#include "recd/rng.h"

/* Binds a TCP socket to 127.0.0.1:port (0: the kernel picks) and returns
 * the port, or -1 when it is taken. */
static int tu__try_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int got = -1;
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    got = ntohs(sa.sin_port);
  }
  close(fd);
  return got;
}

/* Ports are drawn at random from TU_PORT_MIN up to the kernel's ephemeral
 * range (net.ipv4.ip_local_port_range), not taken from bind(0): a port of
 * that range can become the source port of any outgoing connection (the
 * load tests open thousands) between this check and the server's own
 * bind, which now and then kept a test's server from starting. */
#define TU_PORT_MIN 10000

int tu_free_port(void) {
  int eph = 32768;
  FILE *fp = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
  if (fp != NULL) {
    if (fscanf(fp, "%d", &eph) != 1)
      eph = 32768;
    fclose(fp);
  }
  if (eph - TU_PORT_MIN >= 1000) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* distinct per process and call: parallel tests draw different ports */
    unsigned seed = (unsigned)getpid() * 2654435761u ^ (unsigned)ts.tv_nsec;
    for (int tries = 0; tries < 100; tries++) {
      const int port = TU_PORT_MIN + (int)(rand_r(&seed) % (unsigned)(eph - TU_PORT_MIN));
      if (tu__try_port(port) == port)
        return port;
    }
  }
  const int port = tu__try_port(0);
  ck_assert_int_gt(port, 0);
  return port;
}

int tu_redis_spawn(int port, const char *const *extra) {
  char portbuf[16];
  snprintf(portbuf, sizeof portbuf, "%d", port);
  const char *argv[32] = {"redis-server", "--port", portbuf, "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"};
  size_t n = 9;
  for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
    ck_assert_uint_lt(n, sizeof argv / sizeof argv[0] - 1);
    argv[n++] = extra[i];
  }
  argv[n] = NULL;
  pid_t parent = getpid();
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* Dies with the test process even when that one is killed. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 1);
      dup2(null, 2);
    }
    execvp("redis-server", (char *const *)argv);
    _exit(127);
  }
  return (int)pid;
}

char *tu_mkdtemp(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/recd-test-XXXXXX", base && *base ? base : "/tmp");
  char *dir = mkdtemp(tmpl);
  ck_assert_msg(dir != NULL, "mkdtemp(%s) failed", tmpl);
  return strdup(dir);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

void tu_rmtree(const char *dir) {
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tu_path(const char *dir, const char *name) {
  static char buf[4096];
  snprintf(buf, sizeof buf, "%s/%s", dir, name);
  return buf;
}

void tu_write_file(const char *path, const void *data, size_t len) {
  FILE *fp = fopen(path, "wb");
  ck_assert_msg(fp != NULL, "cannot create %s", path);
  ck_assert_uint_eq(fwrite(data, 1, len, fp), len);
  ck_assert_int_eq(fclose(fp), 0);
}

void *tu_read_file(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  ck_assert_msg(fp != NULL, "cannot open %s", path);
  ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
  long n = ftell(fp);
  ck_assert_int_ge(n, 0);
  rewind(fp);
  void *buf = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
  fclose(fp);
  *len = (size_t)n;
  return buf;
}

void tu_randn(float *v, size_t n, uint64_t seed, float sd) {
  rng_t r;
  rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++)
    v[i] = (float)rng_normal(&r) * sd;
}

void tu_solve(const double *A, int n, const double *B, int m, double *X) {
  const int w = n + m;
  double *M = malloc((size_t)n * w * sizeof *M);
  ck_assert_ptr_nonnull(M);
  for (int r = 0; r < n; r++) {
    memcpy(M + (size_t)r * w, A + (size_t)r * n, (size_t)n * sizeof *M);
    memcpy(M + (size_t)r * w + n, B + (size_t)r * m, (size_t)m * sizeof *M);
  }
  for (int col = 0; col < n; col++) {
    int piv = col;
    for (int r = col + 1; r < n; r++)
      if (fabs(M[(size_t)r * w + col]) > fabs(M[(size_t)piv * w + col]))
        piv = r;
    ck_assert_msg(M[(size_t)piv * w + col] != 0.0, "reference system is singular");
    for (int c = 0; piv != col && c < w; c++) {
      double t = M[(size_t)col * w + c];
      M[(size_t)col * w + c] = M[(size_t)piv * w + c];
      M[(size_t)piv * w + c] = t;
    }
    for (int r = 0; r < n; r++) {
      if (r == col)
        continue;
      double f = M[(size_t)r * w + col] / M[(size_t)col * w + col];
      for (int c = col; c < w; c++)
        M[(size_t)r * w + c] -= f * M[(size_t)col * w + c];
    }
  }
  for (int r = 0; r < n; r++)
    for (int c = 0; c < m; c++)
      X[(size_t)r * m + c] = M[(size_t)r * w + n + c] / M[(size_t)r * w + r];
  free(M);
}

void tu_write_model(const char *path, uint32_t n, uint32_t k, uint32_t n_cat, uint64_t seed) {
  float *Y = malloc((size_t)n * k * sizeof *Y);
  float *pop = malloc(n * sizeof *pop);
  uint32_t *cat = malloc(n * sizeof *cat), *lens = malloc(n * sizeof *lens);
  char **ids = malloc(n * sizeof *ids);
  const char **cids = malloc(n * sizeof *cids);
  uint32_t clens[64];
  char cbuf[64][16];
  const char *cnames[64];
  ck_assert(Y && pop && cat && lens && ids && cids && n_cat <= 64);
  tu_randn(Y, (size_t)n * k, seed, 0.3f);
  rng_t r;
  rng_seed(&r, seed + 1);
  for (uint32_t i = 0; i < n; i++) {
    pop[i] = (float)rng_below(&r, 1000);
    cat[i] = n_cat ? i % (n_cat + 1) : 0;
    ids[i] = malloc(16);
    ck_assert(ids[i] != NULL);
    lens[i] = (uint32_t)snprintf(ids[i], 16, "i%u", i);
    cids[i] = ids[i];
  }
  for (uint32_t c = 0; c < n_cat; c++) {
    clens[c] = (uint32_t)snprintf(cbuf[c], sizeof cbuf[c], "c%u", c + 1);
    cnames[c] = cbuf[c];
  }
  model_spec_t spec = {.n_items = n,
                       .params = {.factors = k, .iterations = 1, .conf_mode = PARAMS_CONF_LOG,
                                  .cg_steps = 3, .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f,
                                  .reg_exponent = 0.5f},
                       .meta = {.score_scale = 0.7f},
                       .Y = Y, .ldy = k, .popularity = pop, .item_ids = cids,
                       .item_id_lens = lens, .item_category = cat, .n_categories = n_cat,
                       .category_names = cnames, .category_name_lens = clens};
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&spec, path, err) == 0, "model_write: %s", err);
  for (uint32_t i = 0; i < n; i++)
    free(ids[i]);
  free(Y);
  free(pop);
  free(cat);
  free(lens);
  free(ids);
  free(cids);
}

const char *tu_serve_way_name(int way) {
  static const char *const names[TU_SERVE_WAYS] = {
      "float", "int8-scalar", "int8-avx2", "int8-avx512", "int4+int8-scalar", "int4+int8-avx2"};
  return names[way];
}

int tu_serve_way(serve_model_t *sm, const model_t *m, int way) {
  serve_opts_t o;
  serve_opts_default(&o);
  o.automatic = 0;
  o.pass = way == 0 ? SERVE_PASS_FLOAT : SERVE_PASS_INT8;
  o.isa = way == 3 ? QSCORE_AVX512 : way == 2 || way == 5 ? QSCORE_AVX2 : QSCORE_SCALAR;
  o.q4_min_bytes = way >= 4 ? 0 : SIZE_MAX;
  if (way > 0 && !qscore_isa_supported(o.isa))
    return 0;
  ck_assert_int_eq(serve_model_init(sm, m, &o), 0);
  ck_assert_int_eq(sm->pass, o.pass);
  return 1;
}
