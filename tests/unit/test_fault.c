/* test_fault.c - every allocation of the core operations, failed one at a
 * time, in the style of SQLite's malloc tests (faultalloc.h, faultloop.h).
 *
 * For each operation, n = 1, 2, ...: allocation n fails (then, in a second
 * loop, allocation n and every one after it), and the operation must
 *  - return its documented out-of-memory code (RECD_ENOMEM) and, where the
 *    API has an error buffer, say "out of memory";
 *  - not crash (Check's fork mode, and ASan in the sanitizer build);
 *  - leave what it documents (a parser in its sticky error state, a config
 *    whose every key holds its old or its new value, a workspace that is
 *    still valid, answers that are either right or RECD_ENOMEM);
 *  - leak nothing: after the cleanup, fa_live() is back where it was;
 *  - and work again, unarmed, on the same state;
 * until n passes the number of allocations the operation makes, which is
 * printed. Only the allocations of our own code are seen (faultalloc.h):
 * OpenBLAS's and libc's internal ones are not.
 *
 * Operations: model_load, model_load_buffer, model_write; config_init,
 * config_load_buffer, config_load_file, config_parse_args; the RESP parser
 * on pipelined input with big bulks and many arguments, fed in pieces;
 * qmat_build, the int8 scan's collectors (qscan, qsel_merge) on a catalogue
 * where they must grow; foldin_ws_init and foldin_solve on a workspace that
 * must grow; serve_model_init, serve_one and serve_batch (1 and 3 parts)
 * with both first passes. And the hook itself. The daemon's model reload,
 * whose loading runs on libuv's thread pool, is test_fault_reload.c.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#include "config.h"
#include "faultalloc.h"
#include "faultloop.h"
#include "recd/foldin.h"
#include "recd/model.h"
#include "recd/qscore.h"
#include "recd/recommend.h"
#include "recd/resp.h"
#include "recd/rng.h"
#include "recd/serve.h"
#include "testutil.h"

/* An assertion that reaches Check only when it fails: every ck_assert is a
 * write() to the parent in fork mode, which in loops over items, repeated
 * at every n of every fault loop, would be most of the suite's time. */
#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond))                                                              \
      ck_abort_msg(__VA_ARGS__);                                              \
  } while (0)

/* ---- a small model -------------------------------------------------------- */

enum { N = 300, K = 16, NC = 5 };

typedef struct fx {
  char *dir;
  char path[4096];
  float Y[N * K], pop[N];
  uint32_t cat[N], lens[N], clens[NC];
  char idbuf[N][224], cbuf[NC][16];
  const char *ids[N], *cnames[NC];
  model_spec_t spec;
  model_t *m;
} fx_t;

static fx_t fx;

/* Writes and loads the model every model-based test starts from: ids of
 * different lengths (one of 220 bytes) so the id map's arena and arrays
 * grow several times, categories, duplicated rows. */
static void fx_init(void) {
  memset(&fx, 0, sizeof fx);
  fx.dir = tu_mkdtemp();
  snprintf(fx.path, sizeof fx.path, "%s/m.bin", fx.dir);
  tu_randn(fx.Y, N * K, 11, 0.3f);
  for (int i = 40; i < N; i += 40) /* exact ties */
    memcpy(fx.Y + (size_t)i * K, fx.Y + (size_t)(i - 1) * K, K * sizeof *fx.Y);
  rng_t r;
  rng_seed(&r, 17);
  for (int i = 0; i < N; i++) {
    fx.pop[i] = (float)rng_below(&r, 60);
    fx.cat[i] = (uint32_t)(i % (NC + 1));
    if (i == 7) {
      memset(fx.idbuf[i], 'x', 220);
      fx.lens[i] = 220;
    } else {
      fx.lens[i] = (uint32_t)snprintf(fx.idbuf[i], sizeof fx.idbuf[i], "sku-%0*d",
                                      (int)(i % 9) + 1, i);
    }
    fx.ids[i] = fx.idbuf[i];
  }
  for (int c = 0; c < NC; c++) {
    fx.clens[c] = (uint32_t)snprintf(fx.cbuf[c], sizeof fx.cbuf[c], "category-%d", c + 1);
    fx.cnames[c] = fx.cbuf[c];
  }
  fx.spec = (model_spec_t){
      .n_items = N,
      .params = {.factors = K, .iterations = 1, .conf_mode = PARAMS_CONF_LOG, .cg_steps = 3,
                 .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f, .reg_exponent = 0.5f},
      .meta = {.created_at = 1700000000, .score_scale = 0.7f},
      .Y = fx.Y, .ldy = K, .popularity = fx.pop, .item_ids = fx.ids,
      .item_id_lens = fx.lens, .item_category = fx.cat, .n_categories = NC,
      .category_names = fx.cnames, .category_name_lens = fx.clens};
  char err[RECD_ERRLEN];
  ck_assert_msg(model_write(&fx.spec, fx.path, err) == 0, "%s", err);
  ck_assert_msg(model_load(&fx.m, fx.path, err) == 0, "%s", err);
}

static void fx_free(void) {
  model_free(fx.m);
  tu_rmtree(fx.dir);
  free(fx.dir);
}

/* ---- (a) the model file ---------------------------------------------------- */

typedef struct model_ctx {
  const char *path;
  const void *data; /* model_load_buffer: the file's bytes */
  size_t len;
  model_t *m;
  uint32_t checksum;
} model_ctx_t;

static int ml_run(void *c, char *err) {
  model_ctx_t *x = c;
  return model_load(&x->m, x->path, err);
}

static int mlb_run(void *c, char *err) {
  model_ctx_t *x = c;
  return model_load_buffer(&x->m, x->data, x->len, err);
}

static void ml_after_fail(void *c, int rc) {
  (void)rc;
  model_ctx_t *x = c;
  ck_assert_ptr_null(x->m);
}

static void ml_check(void *c) {
  model_ctx_t *x = c;
  const model_t *m = x->m;
  ck_assert_ptr_nonnull(m);
  ck_assert_uint_eq(model_n_items(m), N);
  ck_assert_uint_eq(model_factors(m), K);
  ck_assert_uint_eq(model_n_categories(m), NC);
  ck_assert_uint_eq(model_checksum(m), x->checksum);
  for (uint32_t i = 0; i < N; i++) {
    size_t len;
    const char *id = model_item_id(m, i, &len);
    CHECK(len == fx.lens[i] && memcmp(id, fx.ids[i], len) == 0 &&
          model_find_item(m, fx.ids[i], fx.lens[i]) == (int64_t)i, "item %u's id", i);
  }
  for (uint32_t c2 = 1; c2 <= NC; c2++)
    ck_assert_uint_eq(model_find_category(m, fx.cnames[c2 - 1], fx.clens[c2 - 1]), c2);
  ck_assert(memcmp(model_gram(m), model_gram(fx.m), (size_t)K * K * sizeof(float)) == 0);
  ck_assert(memcmp(model_item_norms(m), model_item_norms(fx.m), N * sizeof(float)) == 0);
}

static void ml_undo(void *c) {
  model_ctx_t *x = c;
  model_free(x->m);
  x->m = NULL;
}

START_TEST(test_model_load) {
  fx_init();
  model_ctx_t x = {.path = fx.path, .checksum = model_checksum(fx.m)};
  const fault_op_t op = {.name = "model_load", .has_msg = 1, .run = ml_run,
                         .after_fail = ml_after_fail, .check = ml_check, .undo = ml_undo};
  unsigned long n = fault_check(&op, &x);
  ck_assert_uint_ge(n, 10); /* the model, its norms, two id maps growing */

  x.data = tu_read_file(fx.path, &x.len);
  const fault_op_t opb = {.name = "model_load_buffer", .has_msg = 1, .run = mlb_run,
                          .after_fail = ml_after_fail, .check = ml_check, .undo = ml_undo};
  ck_assert_uint_eq(fault_check(&opb, &x), n + 1); /* + the copy */
  free((void *)x.data);
  fx_free();
}
END_TEST

/* model_write: the trainer's side, which builds the files above. */
typedef struct mw_ctx {
  char path[4096];
  void *ref;
  size_t ref_len;
} mw_ctx_t;

static int mw_run(void *c, char *err) {
  mw_ctx_t *x = c;
  return model_write(&fx.spec, x->path, err);
}

/* Whatever failed, no temporary file is left behind. */
static void mw_after_fail(void *c, int rc) {
  (void)c, (void)rc;
  DIR *d = opendir(fx.dir);
  ck_assert_ptr_nonnull(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "temporary file %s left behind",
                  e->d_name);
  closedir(d);
}

static void mw_check(void *c) {
  mw_ctx_t *x = c;
  size_t len;
  void *got = tu_read_file(x->path, &len);
  ck_assert_uint_eq(len, x->ref_len);
  ck_assert(memcmp(got, x->ref, len) == 0);
  free(got);
  mw_after_fail(c, 0);
}

static void mw_undo(void *c) {
  mw_ctx_t *x = c;
  unlink(x->path); /* a failure after the rename may have published it */
}

START_TEST(test_model_write) {
  fx_init();
  mw_ctx_t x;
  snprintf(x.path, sizeof x.path, "%s/w.bin", fx.dir);
  x.ref = tu_read_file(fx.path, &x.ref_len);
  const fault_op_t op = {.name = "model_write", .has_msg = 1, .run = mw_run,
                         .after_fail = mw_after_fail, .check = mw_check, .undo = mw_undo};
  fault_check(&op, &x);
  free(x.ref);
  fx_free();
}
END_TEST

/* ---- (b) the configuration ---------------------------------------------- */

#define SNAP_KEYS 80
#define SNAP_LEN 160

/* Every key's value as config_format() gives it: reads every field, so a
 * dangling or NULL string is a crash (or an ASan report) here. */
typedef struct snap {
  size_t n;
  char v[SNAP_KEYS][SNAP_LEN];
} snap_t;

static void snap_take(const config_t *cfg, snap_t *s) {
  s->n = config_count();
  ck_assert_uint_le(s->n, SNAP_KEYS);
  for (size_t i = 0; i < s->n; i++) {
    int len = config_format(cfg, config_name(i), s->v[i], SNAP_LEN);
    CHECK(len >= 0 && len < SNAP_LEN, "%s: config_format gave %d", config_name(i), len);
  }
}

static void snap_eq(const snap_t *a, const snap_t *b, const char *what) {
  for (size_t i = 0; i < a->n; i++)
    CHECK(strcmp(a->v[i], b->v[i]) == 0, "%s: %s is '%s', expected '%s'", what,
          config_name(i), a->v[i], b->v[i]);
}

/* Every key of *got holds one of the values of the allowed snapshots. */
static void snap_one_of(const snap_t *got, const snap_t *const *allowed, int n_allowed) {
  for (size_t i = 0; i < got->n; i++) {
    int ok = 0;
    for (int a = 0; a < n_allowed && !ok; a++)
      ok = strcmp(got->v[i], allowed[a]->v[i]) == 0;
    CHECK(ok, "after out of memory, %s is '%s', neither its old nor its new value",
          config_name(i), got->v[i]);
  }
}

#define CONF_MAIN \
    "\xef\xbb\xbf# recd.conf for the fault tests: every key, quoting, CRLF\r\n" \
    "port 7171\r\n" \
    "bind 127.0.0.1 ::1 \"10.1.2.3\"\n" \
    "unixsocket /tmp/recd-fault.sock\n" \
    "unixsocketperm 0770\n" \
    "requirepass \"pa ss\\\"word\"\n" \
    "maxclients 5000\n" \
    "timeout 300\n" \
    "\n" \
    "   # an indented comment\n" \
    "max-request-bytes 2mb\n" \
    "max-request-args 10000\n" \
    "client-output-buffer-limit 64MB\n" \
    "model /var/lib/recd/model.bin\n" \
    "models-dir '/var/lib/recd'\n" \
    "history-limit 250\n" \
    "max-count 500\n" \
    "exclude-history no\n" \
    "workers 4\n" \
    "scan-split-items 100000\n" \
    "redis-host redis.example\n" \
    "redis-port 6380\n" \
    "redis-socket \"\"\n" \
    "redis-password 's3cret'\n" \
    "KEY-PREFIX \"shop:\\x41\"\n" \
    "redis-timeout-ms 75\n" \
    "feedback-timeout-ms 1500\n" \
    "redis-reconnect-max-ms 5000\n" \
    "unavailable-refresh-ms 3000\n" \
    CONF_VARIANT1 \
    "VARIANT \"test-1\" '/var/lib/recd/b model.bin' 40\n" \
    "experiment-salt \"salt 2\"\n" \
    "track-impressions no\n" \
    "attribution-window 3600\n" \
    "impressions-max 500\n" \
    "feedback-weight-purchase 2.5\n" \
    "feedback-weight-cart 0.75\n" \
    "feedback-weight-click 1e-2\n" \
    "feedback-weight-hide 0\n" \
    "feedback-weight-unhide 0\n" \
    "experiment-refresh-ms 1500\n" \
    "metrics-port 9121\n" \
    "loglevel verbose\n" \
    "pidfile /run/recd/recd.pid\n"
/* variant appends: after its first line and before its second, the list is
 * neither the old one nor the new one (snapshot `one`). */
#define CONF_VARIANT1 "variant control /var/lib/recd/a.bin 60\n"
/* Keys given a second time: the last value wins. */
#define CONF_TAIL \
    "experiment-salt third\n" \
    "requirepass second\n" \
    "bind 127.0.0.1 ::1 10.1.2.3 192.168.7.1"
static const char conf_text[] = CONF_MAIN CONF_TAIL;

typedef struct cfg_ctx {
  config_t cfg;
  const char *path;
  int argc;
  char *const *argv;
  snap_t defaults, one, mid, file, final; /* the references: mid is CONF_MAIN alone,
                                            one has its first variant line only */
  snap_t got;
} cfg_ctx_t;

static void cfg_setup(void *c) {
  cfg_ctx_t *x = c;
  ck_assert_int_eq(config_init(&x->cfg), 0);
}

static void cfg_teardown(void *c) {
  cfg_ctx_t *x = c;
  config_free(&x->cfg);
}

static int cfg_init_run(void *c, char *err) {
  cfg_ctx_t *x = c;
  int rc = config_init(&x->cfg);
  if (rc != 0) /* config_init has no error buffer */
    snprintf(err, RECD_ERRLEN, "%s", recd_strerror(rc));
  return rc;
}

static void cfg_init_after_fail(void *c, int rc) {
  (void)rc;
  cfg_ctx_t *x = c;
  static const config_t zero;
  ck_assert_msg(memcmp(&x->cfg, &zero, sizeof zero) == 0, "config_init failed but left *cfg "
                "not zeroed");
  config_free(&x->cfg); /* documented: "whatever the result" */
}

static void cfg_check_defaults(void *c) {
  cfg_ctx_t *x = c;
  snap_take(&x->cfg, &x->got);
  snap_eq(&x->got, &x->defaults, "config_init");
}

static int cfg_load_run(void *c, char *err) {
  cfg_ctx_t *x = c;
  return config_load_buffer(&x->cfg, conf_text, sizeof conf_text - 1, "recd.conf", err);
}

static void cfg_load_after_fail(void *c, int rc) {
  (void)rc;
  cfg_ctx_t *x = c;
  snap_take(&x->cfg, &x->got);
  const snap_t *allowed[] = {&x->defaults, &x->one, &x->mid, &x->file};
  snap_one_of(&x->got, allowed, 4);
}

static void cfg_check_file(void *c) {
  cfg_ctx_t *x = c;
  snap_take(&x->cfg, &x->got);
  snap_eq(&x->got, &x->file, "config_load_buffer");
  ck_assert_int_eq(x->cfg.port, 7171);
  ck_assert_int_eq(x->cfg.bind.n, 4);
  ck_assert_str_eq(x->cfg.bind.addr[3], "192.168.7.1");
  ck_assert_str_eq(x->cfg.requirepass, "second");
  ck_assert_str_eq(x->cfg.key_prefix, "shop:A");
  ck_assert_uint_eq(x->cfg.max_request_bytes, 2u << 20);
  ck_assert_uint_eq(x->cfg.variants.n, 2);
  ck_assert_str_eq(x->cfg.variants.name[1], "test-1");
  ck_assert_str_eq(x->cfg.variants.path[1], "/var/lib/recd/b model.bin");
  ck_assert_uint_eq(x->cfg.variants.percent[1], 40);
  ck_assert_str_eq(x->cfg.experiment_salt, "third");
  ck_assert(x->cfg.feedback_weight_click == 0.01);
}

static int cfg_file_run(void *c, char *err) {
  cfg_ctx_t *x = c;
  return config_load_file(&x->cfg, x->path, err);
}

static int cfg_args_run(void *c, char *err) {
  cfg_ctx_t *x = c;
  return config_parse_args(&x->cfg, x->argc, x->argv, err);
}

static void cfg_args_after_fail(void *c, int rc) {
  (void)rc;
  cfg_ctx_t *x = c;
  snap_take(&x->cfg, &x->got);
  const snap_t *allowed[] = {&x->defaults, &x->one, &x->mid, &x->file, &x->final};
  snap_one_of(&x->got, allowed, 5);
}

static void cfg_check_args(void *c) {
  cfg_ctx_t *x = c;
  snap_take(&x->cfg, &x->got);
  snap_eq(&x->got, &x->final, "config_parse_args");
  ck_assert_int_eq(x->cfg.port, 7272);
  ck_assert_int_eq(x->cfg.bind.n, 3);
  ck_assert_str_eq(x->cfg.bind.addr[2], "::1");
  ck_assert_str_eq(x->cfg.requirepass, "--help");
  ck_assert_str_eq(x->cfg.model, "");
  ck_assert_uint_eq(x->cfg.variants.n, 3);
  ck_assert_str_eq(x->cfg.variants.name[2], "canary");
  ck_assert_str_eq(x->cfg.variants.path[2], "/srv/models/next.bin");
  ck_assert(x->cfg.feedback_weight_click == 0.5);
}

START_TEST(test_config) {
  char *dir = tu_mkdtemp();
  char path[4096];
  snprintf(path, sizeof path, "%s/recd.conf", dir);
  tu_write_file(path, conf_text, sizeof conf_text - 1);
  char *const argv[] = {"recd", path,
                        "--port", "7272",
                        "--bind", " 0.0.0.0  10.9.8.7 ::1 ",
                        "--requirepass", "--help", /* a value, not the option */
                        "--model", "", /* exclusive with the file's variants */
                        "--variant", "canary /srv/models/next.bin 0", /* appends */
                        "--feedback-weight-click", ".5",
                        "--LOGLEVEL", "debug",
                        "--redis-socket", "/run/redis/redis.sock",
                        "--key-prefix", "k:",
                        NULL};
  static cfg_ctx_t x; /* large: not on the stack */
  memset(&x, 0, sizeof x);
  x.path = path;
  x.argc = (int)(sizeof argv / sizeof argv[0]) - 1;
  x.argv = argv;

  /* The references, unarmed. */
  char err[RECD_ERRLEN];
  ck_assert_int_eq(config_init(&x.cfg), 0);
  snap_take(&x.cfg, &x.defaults);
  ck_assert_msg(config_load_buffer(&x.cfg, CONF_VARIANT1, sizeof CONF_VARIANT1 - 1,
                                   "recd.conf", err) == 0, "%s", err);
  snap_take(&x.cfg, &x.one);
  config_free(&x.cfg);
  ck_assert_int_eq(config_init(&x.cfg), 0);
  ck_assert_msg(config_load_buffer(&x.cfg, CONF_MAIN, sizeof CONF_MAIN - 1, "recd.conf",
                                   err) == 0, "%s", err);
  snap_take(&x.cfg, &x.mid);
  config_free(&x.cfg);
  ck_assert_int_eq(config_init(&x.cfg), 0);
  ck_assert_msg(config_load_buffer(&x.cfg, conf_text, sizeof conf_text - 1, "recd.conf",
                                   err) == 0, "%s", err);
  snap_take(&x.cfg, &x.file);
  config_free(&x.cfg);
  ck_assert_int_eq(config_init(&x.cfg), 0);
  ck_assert_msg(config_parse_args(&x.cfg, x.argc, argv, err) == CONFIG_ARGS_RUN, "%s", err);
  snap_take(&x.cfg, &x.final);
  config_free(&x.cfg);

  const fault_op_t init = {.name = "config_init", .has_msg = 1, .run = cfg_init_run,
                           .after_fail = cfg_init_after_fail, .check = cfg_check_defaults,
                           .teardown = cfg_teardown};
  fault_check(&init, &x);
  const fault_op_t load = {.name = "config_load_buffer (every key)", .has_msg = 1,
                           .setup = cfg_setup, .run = cfg_load_run,
                           .after_fail = cfg_load_after_fail, .check = cfg_check_file,
                           .teardown = cfg_teardown};
  fault_check(&load, &x);
  const fault_op_t file = {.name = "config_load_file", .has_msg = 1, .setup = cfg_setup,
                           .run = cfg_file_run, .after_fail = cfg_load_after_fail,
                           .check = cfg_check_file, .teardown = cfg_teardown};
  fault_check(&file, &x);
  const fault_op_t args = {.name = "config_parse_args (file + 9 --key)", .has_msg = 1,
                           .setup = cfg_setup, .run = cfg_args_run,
                           .after_fail = cfg_args_after_fail, .check = cfg_check_args,
                           .teardown = cfg_teardown};
  fault_check(&args, &x);
  tu_rmtree(dir);
  free(dir);
}
END_TEST

/* ---- (c) the RESP parser ------------------------------------------------- */

#define RESP_MAX_CMDS 16
#define RESP_SEGS 3

typedef struct resp_ctx {
  resp_parser_t p;
  const char *seg[RESP_SEGS]; /* after each segment the parser is idle */
  size_t seg_len[RESP_SEGS];
  size_t piece;
  uint64_t dig[RESP_MAX_CMDS];
  size_t ncmd;
  uint64_t ref[RESP_MAX_CMDS];
  size_t nref;
} resp_ctx_t;

/* A digest of the command: argc, then each argument's length, its NUL
 * terminator and the CRC-32 of its bytes (zlib's: fast even in the
 * unoptimised sanitizer build, where a byte loop over 600 kB per run is
 * most of the suite's time). */
static uint64_t resp_digest(const resp_cmd_t *cmd) {
  uint64_t h = 0xcbf29ce484222325ull;
#define MIX(b) (h = (h ^ (uint64_t)(b)) * 0x100000001b3ull)
  MIX(cmd->argc);
  for (size_t i = 0; i < cmd->argc; i++) {
    MIX(cmd->argvlen[i]);
    MIX(cmd->argv[i][cmd->argvlen[i]] == '\0'); /* NUL-terminated in place */
    MIX(crc32(0, (const Bytef *)cmd->argv[i], (uInt)cmd->argvlen[i]));
  }
#undef MIX
  return h;
}

static void resp_setup(void *c) {
  resp_ctx_t *x = c;
  ck_assert_int_eq(resp_parser_init(&x->p, NULL), 0);
}

/* Feeds every segment in pieces, alternately through feed() and through
 * reserve()/commit(), draining next() after each piece. */
static int resp_run(void *c, char *err) {
  resp_ctx_t *x = c;
  resp_parser_t *p = &x->p;
  x->ncmd = 0;
  unsigned turn = 0;
  for (int s = 0; s < RESP_SEGS; s++) {
    for (size_t off = 0; off < x->seg_len[s]; off += x->piece, turn++) {
      const size_t m = x->seg_len[s] - off < x->piece ? x->seg_len[s] - off : x->piece;
      int rc;
      if (turn % 2 == 0) {
        rc = resp_parser_feed(p, x->seg[s] + off, m);
      } else {
        char *buf;
        size_t avail;
        rc = resp_parser_reserve(p, m, &buf, &avail);
        if (rc == 0) {
          memcpy(buf, x->seg[s] + off, m);
          resp_parser_commit(p, m);
        }
      }
      if (rc != 0) {
        snprintf(err, RECD_ERRLEN, "%s", p->errstr);
        return rc;
      }
      resp_cmd_t cmd;
      resp_status_t st;
      while ((st = resp_parser_next(p, &cmd)) == RESP_OK)
        if (x->ncmd < RESP_MAX_CMDS)
          x->dig[x->ncmd++] = resp_digest(&cmd);
      if (st == RESP_ERROR) {
        snprintf(err, RECD_ERRLEN, "%s", p->errstr);
        return p->err;
      }
    }
  }
  return 0;
}

static void resp_after_fail(void *c, int rc) {
  (void)rc;
  resp_ctx_t *x = c;
  resp_parser_t *p = &x->p;
  /* Sticky: nothing more is parsed or accepted. */
  ck_assert_int_eq(p->err, RECD_ENOMEM);
  ck_assert_str_eq(p->errstr, "out of memory");
  resp_cmd_t cmd;
  ck_assert_int_eq(resp_parser_next(p, &cmd), RESP_ERROR);
  ck_assert_int_eq(resp_parser_feed(p, "PING\r\n", 6), RECD_ENOMEM);
  char *buf = (char *)1;
  size_t avail = 1;
  ck_assert_int_eq(resp_parser_reserve(p, 16, &buf, &avail), RECD_ENOMEM);
  ck_assert_ptr_null(buf);
  ck_assert_uint_eq(avail, 0);
  /* The commands returned before the failure were the right ones. */
  ck_assert_uint_le(x->ncmd, x->nref);
  for (size_t i = 0; i < x->ncmd; i++)
    CHECK(x->dig[i] == x->ref[i], "command %zu before the failure is wrong", i);
}

static void resp_recover(void *c) {
  resp_ctx_t *x = c;
  resp_parser_reset(&x->p);
}

static void resp_check(void *c) {
  resp_ctx_t *x = c;
  ck_assert_uint_eq(x->ncmd, x->nref);
  for (size_t i = 0; i < x->ncmd; i++)
    CHECK(x->dig[i] == x->ref[i], "command %zu is wrong", i);
  ck_assert_uint_eq(resp_parser_bytes_buffered(&x->p), 0);
}

static void resp_teardown(void *c) {
  resp_ctx_t *x = c;
  resp_parser_free(&x->p);
}

START_TEST(test_resp) {
  /* Segment 0: a 270 kB bulk (past the 256 kB the parser keeps when idle),
   * an inline command, a multibulk with a NUL in an argument. */
  const size_t big0 = 270000, big2 = 280000, nargs = 2000;
  char *s0 = malloc(big0 + 256);
  size_t l0 = (size_t)sprintf(s0, "*3\r\n$3\r\nSET\r\n$7\r\nbig:one\r\n$%zu\r\n", big0);
  for (size_t i = 0; i < big0; i++)
    s0[l0 + i] = (char)('a' + i % 26);
  l0 += big0;
  static const char tail0[] = "\r\nPING  hello\r\n*2\r\n$4\r\nECHO\r\n$5\r\nhe\0lo\r\n";
  memcpy(s0 + l0, tail0, sizeof tail0 - 1);
  l0 += sizeof tail0 - 1;
  /* Segment 1: a RANK of 2000 items (argv past the 1024 entries kept). */
  char *s1 = malloc(nargs * 32 + 256);
  size_t l1 = (size_t)sprintf(s1, "*%zu\r\n$4\r\nRANK\r\n$6\r\nuser-1\r\n$5\r\nITEMS\r\n",
                              nargs + 3);
  for (size_t i = 0; i < nargs; i++) {
    char id[24];
    int n = snprintf(id, sizeof id, "item-%zu", i * 7919);
    l1 += (size_t)sprintf(s1 + l1, "$%d\r\n%s\r\n", n, id);
  }
  /* Segment 2: inline quoting, two pipelined PINGs and a 280 kB bulk. */
  char *s2 = malloc(big2 + 256);
  size_t l2 = (size_t)sprintf(s2, "RECOMMEND \"user\\x41 2\" COUNT 10 'it\\'s'\r\n"
                                  "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n"
                                  "*3\r\n$3\r\nSET\r\n$7\r\nbig:two\r\n$%zu\r\n", big2);
  for (size_t i = 0; i < big2; i++)
    s2[l2 + i] = (char)(i * 31 % 251);
  l2 += big2;
  l2 += (size_t)sprintf(s2 + l2, "\r\n");

  static resp_ctx_t x;
  memset(&x, 0, sizeof x);
  x.seg[0] = s0, x.seg_len[0] = l0;
  x.seg[1] = s1, x.seg_len[1] = l1;
  x.seg[2] = s2, x.seg_len[2] = l2;
  x.piece = 65521; /* a prime: pieces end anywhere */
  char err[RECD_ERRLEN];
  resp_setup(&x);
  ck_assert_msg(resp_run(&x, err) == 0, "%s", err);
  ck_assert_uint_eq(x.ncmd, 8);
  memcpy(x.ref, x.dig, sizeof x.ref);
  x.nref = x.ncmd;
  resp_teardown(&x);

  const fault_op_t op = {.name = "resp parse (8 commands, 600 kB)", .has_msg = 1,
                         .setup = resp_setup, .run = resp_run, .after_fail = resp_after_fail,
                         .recover = resp_recover, .check = resp_check,
                         .teardown = resp_teardown};
  fault_check(&op, &x);
  x.piece = 8191;
  const fault_op_t small = {.name = "resp parse (8 kB pieces)", .has_msg = 1,
                            .setup = resp_setup, .run = resp_run,
                            .after_fail = resp_after_fail, .recover = resp_recover,
                            .check = resp_check, .teardown = resp_teardown};
  fault_check(&small, &x);
  free(s0);
  free(s1);
  free(s2);
}
END_TEST

/* ---- (e) the int8 copy and the fold-in workspace -------------------------- */

typedef struct q_ctx {
  qmat_t q, ref;
} q_ctx_t;

static int qm_run(void *c, char *err) {
  (void)err;
  q_ctx_t *x = c;
  const model_t *m = fx.m;
  return qmat_build(&x->q, model_item_factors(m), model_stride(m), model_n_items(m),
                    model_factors(m));
}

static void qm_after_fail(void *c, int rc) {
  (void)rc;
  q_ctx_t *x = c;
  ck_assert(x->q.q == NULL && x->q.scale == NULL && x->q.norm == NULL && x->q.resid == NULL);
}

static void qm_check(void *c) {
  q_ctx_t *x = c;
  const size_t rows = ((size_t)N + 7) & ~(size_t)7;
  ck_assert(x->q.n == x->ref.n && x->q.k == x->ref.k && x->q.kpad == x->ref.kpad);
  ck_assert(memcmp(x->q.q, x->ref.q, rows * x->q.kpad) == 0);
  ck_assert(memcmp(x->q.scale, x->ref.scale, rows * sizeof(float)) == 0);
  ck_assert(memcmp(x->q.norm, x->ref.norm, rows * sizeof(float)) == 0);
  ck_assert(memcmp(x->q.resid, x->ref.resid, rows * sizeof(float)) == 0);
  ck_assert(x->q.max_norm == x->ref.max_norm && x->q.max_resid == x->ref.max_resid);
  ck_assert(memcmp(x->q.q4, x->ref.q4, rows * x->q.kpad / 2) == 0);
  ck_assert(memcmp(x->q.scale4, x->ref.scale4, rows * sizeof(uint16_t)) == 0);
  ck_assert(memcmp(x->q.resid4, x->ref.resid4, rows * sizeof(uint16_t)) == 0);
  ck_assert(memcmp(x->q.norm16, x->ref.norm16, rows / 8 * sizeof(uint16_t)) == 0);
}

static void qm_undo(void *c) {
  q_ctx_t *x = c;
  qmat_free(&x->q);
}

START_TEST(test_qmat_build) {
  fx_init();
  q_ctx_t x;
  memset(&x, 0, sizeof x);
  ck_assert_int_eq(qmat_build(&x.ref, model_item_factors(fx.m), model_stride(fx.m), N, K), 0);
  const fault_op_t op = {.name = "qmat_build", .run = qm_run, .after_fail = qm_after_fail,
                         .check = qm_check, .undo = qm_undo};
  /* the int8 copy and its three per-row arrays, the 4-bit copy and its */
  ck_assert_uint_eq(fault_check(&op, &x), 8);
  qmat_free(&x.ref);
  fx_free();
}
END_TEST

/* The candidate collectors on a degenerate catalogue: every item has the
 * same vector, so every score ties and no compaction can drop anything; the
 * collectors must grow to hold the whole catalogue (qsel__grow from the
 * scan's compactions), and the merge of two parts grows the destination. */
#define QS_N 4000

typedef struct qs_ctx {
  qmat_t qm;
  qsel_t a, b;
  qquery_t qq;
  int8_t *xq;
  float x[K];
  unsigned char seen[QS_N];
} qs_ctx_t;

static int qs_run(void *c, char *err) {
  (void)err;
  qs_ctx_t *x = c;
  int rc = qsel_init(&x->a, NULL, 5, 1e-6f);
  if (rc == 0)
    rc = qsel_init(&x->b, NULL, 5, 1e-6f);
  if (rc != 0)
    return rc;
  const uint32_t mid = (QS_N / 2) & ~7u;
  const qscore_isa_t isa = qscore_isa_default();
  rc = qscan(isa, &x->qm, 0, mid, &x->qq, &x->a, 1);
  if (rc == 0)
    rc = qscan(isa, &x->qm, mid, QS_N, &x->qq, &x->b, 1);
  if (rc == 0)
    rc = qsel_merge(&x->a, &x->b);
  return rc;
}

static void qs_check(void *c) {
  qs_ctx_t *x = c;
  ck_assert_uint_eq(x->a.n, QS_N); /* all tied: all kept */
  memset(x->seen, 0, sizeof x->seen);
  /* ck_abort only on failure: each ck_assert is a write() to the parent */
  for (size_t j = 0; j < x->a.n; j++) {
    if (x->a.idx[j] >= QS_N || x->seen[x->a.idx[j]])
      ck_abort_msg("candidate %zu: item %u out of range or twice", j, x->a.idx[j]);
    x->seen[x->a.idx[j]] = 1;
  }
}

static void qs_undo(void *c) {
  qs_ctx_t *x = c;
  qsel_free(&x->a);
  qsel_free(&x->b);
}

START_TEST(test_qsel) {
  static qs_ctx_t x;
  memset(&x, 0, sizeof x);
  float *Y = malloc((size_t)QS_N * K * sizeof *Y);
  tu_randn(Y, K, 3, 0.5f);
  for (size_t i = 1; i < QS_N; i++)
    memcpy(Y + i * K, Y, K * sizeof *Y);
  ck_assert_int_eq(qmat_build(&x.qm, Y, K, QS_N, K), 0);
  free(Y);
  tu_randn(x.x, K, 4, 1.0f);
  x.xq = aligned_alloc(64, (qquery_bytes(&x.qm) + 63) & ~(size_t)63);
  x.qq.xq = x.xq;
  qquery_prepare(&x.qm, x.x, &x.qq);
  const fault_op_t op = {.name = "qscan + qsel_merge (4000 tied items)", .run = qs_run,
                         .check = qs_check, .undo = qs_undo};
  ck_assert_uint_ge(fault_check(&op, &x), 12); /* 2 x 5 arrays, then growth */
  free(x.xq);
  qmat_free(&x.qm);
}
END_TEST

#define FI_N1 150
#define FI_N2 400

typedef struct fi_ctx {
  foldin_ws_t ws;
  uint32_t init_k;
  uint32_t items1[FI_N1], items2[FI_N2];
  float w1[FI_N1], w2[FI_N2];
  float x1[K], x2[K], ref1[K], ref2[K];
  size_t used1, used2, ref_used1, ref_used2;
  int rc1, rc2;
} fi_ctx_t;

static int fiw_run(void *c, char *err) {
  (void)err;
  fi_ctx_t *x = c;
  return foldin_ws_init(&x->ws, K);
}

static void fiw_after_fail(void *c, int rc) {
  (void)rc;
  fi_ctx_t *x = c;
  const foldin_ws_t *w = &x->ws;
  ck_assert_msg(w->A == NULL && w->order == NULL && w->conf == NULL &&
                w->rows == NULL && w->slots == NULL && w->dv == NULL && w->fv == NULL &&
                w->idx == NULL && w->zp == NULL && w->zs == NULL,
                "a failed foldin_ws_init kept memory");
}

static void fi_teardown(void *c) {
  fi_ctx_t *x = c;
  foldin_ws_free(&x->ws);
}

static void fis_setup(void *c) {
  fi_ctx_t *x = c;
  ck_assert_int_eq(foldin_ws_init(&x->ws, x->init_k), 0);
}

/* Two fold-ins on one workspace: unsorted histories with duplicates (the
 * merge table), longer than the workspace's 64 entries (order/conf grow),
 * capped, and k larger than the workspace was made for (A, b, rows grow). */
static int fis_run(void *c, char *err) {
  (void)err;
  fi_ctx_t *x = c;
  const model_t *m = fx.m;
  x->rc1 = foldin_solve(model_item_factors(m), model_stride(m), model_gram(m),
                        model_params(m), x->items1, x->w1, FI_N1, 100, x->x1, &x->used1,
                        &x->ws);
  x->rc2 = foldin_solve(model_item_factors(m), model_stride(m), model_gram(m),
                        model_params(m), x->items2, x->w2, FI_N2, 0, x->x2, &x->used2, &x->ws);
  return x->rc1 != 0 ? x->rc1 : x->rc2;
}

static void fi_expect(const float *got, const float *want, int rc) {
  for (int a = 0; a < K; a++) {
    if (rc != 0)
      CHECK(got[a] == 0.0f, "a failed fold-in left x[%d] = %g", a, (double)got[a]);
    else
      CHECK(fabsf(got[a] - want[a]) <= 1e-5f * (1.0f + fabsf(want[a])),
            "x[%d] = %.9g, expected %.9g", a, (double)got[a], (double)want[a]);
  }
}

static void fis_after_fail(void *c, int rc) {
  (void)rc;
  fi_ctx_t *x = c;
  ck_assert(x->rc1 == 0 || x->rc1 == RECD_ENOMEM);
  ck_assert(x->rc2 == 0 || x->rc2 == RECD_ENOMEM);
  fi_expect(x->x1, x->ref1, x->rc1);
  fi_expect(x->x2, x->ref2, x->rc2);
}

static void fis_check(void *c) {
  fi_ctx_t *x = c;
  fi_expect(x->x1, x->ref1, 0);
  fi_expect(x->x2, x->ref2, 0);
  ck_assert_uint_eq(x->used1, x->ref_used1);
  ck_assert_uint_eq(x->used2, x->ref_used2);
}

START_TEST(test_foldin) {
  fx_init();
  static fi_ctx_t x;
  memset(&x, 0, sizeof x);
  rng_t r;
  rng_seed(&r, 23);
  for (int i = 0; i < FI_N1; i++) {
    x.items1[i] = (uint32_t)rng_below(&r, N); /* unsorted, with repeats */
    x.w1[i] = 1.0f + (float)rng_below(&r, 5);
  }
  for (int i = 0; i < FI_N2; i++) {
    x.items2[i] = (uint32_t)rng_below(&r, N);
    x.w2[i] = 0.5f + (float)rng_below(&r, 3);
  }
  const fault_op_t init = {.name = "foldin_ws_init", .run = fiw_run,
                           .after_fail = fiw_after_fail, .teardown = fi_teardown};
  /* A, rows, the double and float vectors; order, conf, idx, zp. */
  ck_assert_uint_eq(fault_check(&init, &x), 8);

  /* The references, on a workspace that is already big enough. */
  ck_assert_int_eq(foldin_ws_init(&x.ws, K), 0);
  ck_assert_int_eq(fis_run(&x, NULL), 0);
  memcpy(x.ref1, x.x1, sizeof x.ref1);
  memcpy(x.ref2, x.x2, sizeof x.ref2);
  x.ref_used1 = x.used1;
  x.ref_used2 = x.used2;
  ck_assert_uint_eq(x.ref_used1, 100);
  foldin_ws_free(&x.ws);

  x.init_k = 2;
  const fault_op_t solve = {.name = "foldin_solve x2 (workspace grows)", .setup = fis_setup,
                            .run = fis_run, .after_fail = fis_after_fail, .check = fis_check,
                            .teardown = fi_teardown};
  fault_check(&solve, &x);
  fx_free();
}
END_TEST

/* ---- (d) RECOMMEND through serve.h ------------------------------------------ */

#define SV_Q 6
#define SV_MAXN 32

typedef struct sv_ref {
  int rc, personalized;
  size_t n_used, n;
  uint32_t items[SV_MAXN];
  float scores[SV_MAXN];
  int32_t reasons[SV_MAXN];
  int has_reasons;
} sv_ref_t;

typedef struct sv_ctx {
  serve_model_t sm;
  serve_opts_t opts;
  rec_query_t q[SV_Q];
  const rec_query_t *qp[SV_Q];
  size_t nq;
  unsigned parts;
  rec_ws_t ws;
  serve_answer_t ans[SV_Q]; /* serve_one */
  serve_batch_t *b;         /* serve_batch */
  sv_ref_t ref[SV_Q];
} sv_ctx_t;

/* The customers: histories (unsorted, repeated items, past the history
 * limit), filters of every kind, preferences, paging, reasons; one opted
 * out, one who asks for nothing, one without history. */
static uint32_t sv_hist[3][60];
static float sv_hist_w[3][60];
static uint32_t sv_excl[4] = {5, 17, 250, 3};
static uint32_t sv_cats[2] = {2, 4};
static uint32_t sv_pcat[3] = {1, 3, 5};
static float sv_pval[3] = {0.5f, -1.0f, -0.25f};
static uint64_t sv_unavail[(N + 63) / 64];

static void sv_queries(sv_ctx_t *x) {
  rng_t r;
  rng_seed(&r, 31);
  for (int h = 0; h < 3; h++)
    for (int i = 0; i < 60; i++) {
      sv_hist[h][i] = (uint32_t)rng_below(&r, N);
      sv_hist_w[h][i] = 1.0f + (float)rng_below(&r, 4);
    }
  memset(sv_unavail, 0, sizeof sv_unavail);
  for (uint32_t i = 0; i < N; i += 13)
    sv_unavail[i / 64] |= 1ull << (i % 64);
  rec_query_t *q = x->q;
  memset(q, 0, sizeof x->q);
  q[0] = (rec_query_t){.hist = sv_hist[0], .hist_w = sv_hist_w[0], .n_hist = 60,
                       .history_limit = 40, .personalize = 1, .exclude_history = 1,
                       .exclude = sv_excl, .n_exclude = 4, .pref_cat = sv_pcat,
                       .pref_val = sv_pval, .n_pref = 3, .unavailable = sv_unavail,
                       .offset = 2, .count = 10, .with_reasons = 1};
  q[1] = (rec_query_t){.hist = sv_hist[1], .hist_w = sv_hist_w[1], .n_hist = 25,
                       .history_limit = 100, .personalize = 1, .categories = sv_cats,
                       .n_categories = 2, .category_filter = 1, .count = 20,
                       .with_reasons = 1};
  q[2] = (rec_query_t){.hist = sv_hist[2], .hist_w = sv_hist_w[2], .n_hist = 60,
                       .history_limit = 500, .personalize = 0, .exclude_history = 1,
                       .categories = sv_cats, .n_categories = 1, .category_filter = 1,
                       .count = 8};
  q[3] = (rec_query_t){.hist = sv_hist[1], .hist_w = sv_hist_w[1], .n_hist = 10,
                       .history_limit = 5, .personalize = 1, .count = 0, .offset = 0};
  q[4] = (rec_query_t){.personalize = 1, .unavailable = sv_unavail, .pref_cat = sv_pcat,
                       .pref_val = sv_pval, .n_pref = 3, .count = 12, .with_reasons = 1};
  q[5] = (rec_query_t){.hist = sv_hist[2], .hist_w = sv_hist_w[2], .n_hist = 30,
                       .history_limit = 30, .personalize = 1, .exclude_history = 1,
                       .exclude = sv_excl, .n_exclude = 4, .offset = 5, .count = 25};
  for (int j = 0; j < SV_Q; j++)
    x->qp[j] = &q[j];
  x->nq = SV_Q;
}

static void sv_keep(sv_ref_t *r, const serve_answer_t *a) {
  memset(r, 0, sizeof *r);
  r->rc = a->rc;
  r->personalized = a->personalized;
  r->n_used = a->n_used;
  r->n = a->n;
  ck_assert_uint_le(a->n, SV_MAXN);
  if (a->n > 0) {
    memcpy(r->items, a->items, a->n * sizeof *a->items);
    memcpy(r->scores, a->scores, a->n * sizeof *a->scores);
  }
  r->has_reasons = a->reasons != NULL;
  if (a->reasons != NULL && a->n > 0)
    memcpy(r->reasons, a->reasons, a->n * sizeof *a->reasons);
}

/* An answer is either RECD_ENOMEM or exactly the reference. */
static void sv_expect(const serve_answer_t *a, const sv_ref_t *r, size_t j, int may_fail) {
  if (may_fail && a->rc != 0) {
    CHECK(a->rc == RECD_ENOMEM, "customer %zu: rc %d (%s), want RECD_ENOMEM", j, a->rc,
          recd_err_name(a->rc));
    return;
  }
  CHECK(a->rc == r->rc, "customer %zu: rc %d, expected %d", j, a->rc, r->rc);
  CHECK(a->personalized == r->personalized && a->n_used == r->n_used && a->n == r->n,
        "customer %zu: personalized %d, %zu used, %zu items; expected %d, %zu, %zu", j,
        a->personalized, a->n_used, a->n, r->personalized, r->n_used, r->n);
  for (size_t i = 0; i < a->n; i++)
    CHECK(a->items[i] == r->items[i] && a->scores[i] == r->scores[i],
          "customer %zu, rank %zu: item %u (%g), expected %u (%g)", j, i, a->items[i],
          (double)a->scores[i], r->items[i], (double)r->scores[i]);
  CHECK((a->reasons != NULL) == r->has_reasons, "customer %zu: reasons %s", j,
        a->reasons ? "given" : "missing");
  for (size_t i = 0; a->reasons != NULL && i < a->n; i++)
    CHECK(a->reasons[i] == r->reasons[i], "customer %zu, rank %zu: reason %d, expected %d", j,
          i, a->reasons[i], r->reasons[i]);
}

static void sv_ws_setup(void *c) {
  sv_ctx_t *x = c;
  rec_ws_init(&x->ws);
}

static void sv_ws_teardown(void *c) {
  sv_ctx_t *x = c;
  rec_ws_free(&x->ws);
}

/* serve_model_init */
static int svm_run(void *c, char *err) {
  (void)err;
  sv_ctx_t *x = c;
  return serve_model_init(&x->sm, fx.m, &x->opts);
}

static void svm_after_fail(void *c, int rc) {
  (void)rc;
  sv_ctx_t *x = c;
  ck_assert_ptr_null(x->sm.q.q);
}

static void svm_check(void *c) {
  sv_ctx_t *x = c;
  ck_assert_int_eq(x->sm.pass, x->opts.pass);
  ck_assert_ptr_eq(x->sm.m, fx.m);
}

static void svm_undo(void *c) {
  sv_ctx_t *x = c;
  serve_model_free(&x->sm);
}

/* serve_one for every customer, one after the other on one workspace. */
static int svo_run(void *c, char *err) {
  (void)err;
  sv_ctx_t *x = c;
  int first = 0;
  for (size_t j = 0; j < x->nq; j++) {
    int rc = serve_one(&x->sm, x->qp[j], &x->ws, &x->ans[j]);
    if (first == 0 && rc != x->ref[j].rc)
      first = rc;
  }
  return first;
}

static void svo_after_fail(void *c, int rc) {
  (void)rc;
  sv_ctx_t *x = c;
  for (size_t j = 0; j < x->nq; j++)
    sv_expect(&x->ans[j], &x->ref[j], j, 1);
}

static void svo_check(void *c) {
  sv_ctx_t *x = c;
  for (size_t j = 0; j < x->nq; j++)
    sv_expect(&x->ans[j], &x->ref[j], j, 0);
}

static void svo_undo(void *c) {
  sv_ctx_t *x = c;
  for (size_t j = 0; j < x->nq; j++)
    serve_answer_free(&x->ans[j]);
}

/* A batch of every customer, phase by phase, the scan split in x->parts. */
static int svb_run(void *c, char *err) {
  (void)err;
  sv_ctx_t *x = c;
  int rc = serve_batch_new(&x->sm, x->qp, x->nq, x->parts, &x->b);
  if (rc != 0)
    return rc;
  serve_batch_t *b = x->b;
  for (size_t j = 0; j < x->nq; j++)
    serve_batch_fold(b, j, &x->ws);
  rc = serve_batch_rows(b);
  if (rc == 0) {
    const uint32_t n = serve_batch_n_items(b);
    uint32_t lo = 0;
    for (unsigned p = 0; p < x->parts; p++) {
      uint32_t hi = p + 1 == x->parts ? n : (n * (p + 1) / x->parts) & ~(SERVE_SCAN_ALIGN - 1);
      int r2 = serve_batch_scan(b, p, lo, hi);
      if (rc == 0)
        rc = r2;
      lo = hi;
    }
    for (size_t r = 0; r < serve_batch_n_rows(b); r++)
      serve_batch_finish(b, r, &x->ws);
  }
  for (size_t j = 0; j < x->nq && rc == 0; j++)
    if (serve_batch_answer(b, j)->rc != x->ref[j].rc)
      rc = serve_batch_answer(b, j)->rc;
  return rc;
}

static void svb_after_fail(void *c, int rc) {
  (void)rc;
  sv_ctx_t *x = c;
  if (x->b == NULL)
    return; /* serve_batch_new itself failed */
  for (size_t j = 0; j < x->nq; j++)
    sv_expect(serve_batch_answer(x->b, j), &x->ref[j], j, 1);
}

static void svb_check(void *c) {
  sv_ctx_t *x = c;
  for (size_t j = 0; j < x->nq; j++)
    sv_expect(serve_batch_answer(x->b, j), &x->ref[j], j, 0);
}

static void svb_undo(void *c) {
  sv_ctx_t *x = c;
  serve_batch_free(x->b);
  x->b = NULL;
}

/* prefilter: one customer's scans go through the 4-bit prefilter (its
 * collectors compact more often, its own allocations fail too). */
static void sv_run_all(serve_pass_t pass, const char *tag, int prefilter) {
  static sv_ctx_t x;
  memset(&x, 0, sizeof x);
  sv_queries(&x);
  serve_opts_default(&x.opts);
  x.opts.automatic = 0;
  x.opts.pass = pass;
  x.opts.q4_min_bytes = prefilter ? 0 : SIZE_MAX;
  char name[96];

  snprintf(name, sizeof name, "serve_model_init (%s)", tag);
  const fault_op_t init = {.name = name, .run = svm_run, .after_fail = svm_after_fail,
                           .check = svm_check, .undo = svm_undo};
  unsigned long n = fault_check(&init, &x);
  /* the learnt walk depth, the int8 copy (4) and, with the prefilter, its
   * 4-bit copy (4), and the same for SIMILAR's copies of the normalised
   * items (and a row of scratch); the 4-bit copies are never allocated
   * without the prefilter */
  ck_assert_uint_eq(n, pass == SERVE_PASS_INT8 ? (prefilter ? 18 : 10) : 1);

  /* The references: serve_one, unarmed, on a fresh workspace; the float
   * and int8 passes must agree (serve.h), which the float references of
   * an int8 run check through the shared static results. */
  ck_assert_int_eq(serve_model_init(&x.sm, fx.m, &x.opts), 0);
  rec_ws_init(&x.ws);
  for (size_t j = 0; j < x.nq; j++) {
    serve_answer_t a;
    serve_one(&x.sm, x.qp[j], &x.ws, &a);
    ck_assert_msg(a.rc == 0, "customer %zu: %s", j, recd_err_name(a.rc));
    sv_keep(&x.ref[j], &a);
    serve_answer_free(&a);
  }
  rec_ws_free(&x.ws);
  static sv_ref_t float_ref[SV_Q];
  static int have_float_ref;
  if (pass == SERVE_PASS_FLOAT) {
    memcpy(float_ref, x.ref, sizeof float_ref);
    have_float_ref = 1;
  } else if (have_float_ref) {
    for (size_t j = 0; j < x.nq; j++) {
      serve_answer_t a = {.rc = x.ref[j].rc, .personalized = x.ref[j].personalized,
                          .n_used = x.ref[j].n_used, .n = x.ref[j].n,
                          .items = x.ref[j].items, .scores = x.ref[j].scores,
                          .reasons = x.ref[j].has_reasons ? x.ref[j].reasons : NULL};
      sv_expect(&a, &float_ref[j], j, 0);
    }
  }
  ck_assert_uint_gt(x.ref[0].n, 0);
  ck_assert_int_eq(x.ref[0].has_reasons, 1);
  ck_assert_int_eq(x.ref[2].personalized, 0);
  ck_assert_uint_eq(x.ref[3].n, 0);

  snprintf(name, sizeof name, "serve_one x%zu (%s)", x.nq, tag);
  const fault_op_t one = {.name = name, .setup = sv_ws_setup, .run = svo_run,
                          .after_fail = svo_after_fail, .check = svo_check, .undo = svo_undo,
                          .teardown = sv_ws_teardown};
  fault_check(&one, &x);
  for (unsigned parts = 1; parts <= 3; parts += 2) {
    x.parts = parts;
    /* Unarmed first: a wrong answer here is not about memory. */
    sv_ws_setup(&x);
    ck_assert_int_eq(svb_run(&x, NULL), 0);
    svb_check(&x);
    svb_undo(&x);
    sv_ws_teardown(&x);
    snprintf(name, sizeof name, "serve_batch of %zu, %u part%s (%s)", x.nq, parts,
             parts > 1 ? "s" : "", tag);
    const fault_op_t batch = {.name = name, .setup = sv_ws_setup, .run = svb_run,
                              .after_fail = svb_after_fail, .check = svb_check,
                              .undo = svb_undo, .teardown = sv_ws_teardown};
    fault_check(&batch, &x);
  }
  serve_model_free(&x.sm);
}

START_TEST(test_serve) {
  fx_init();
  sv_run_all(SERVE_PASS_FLOAT, "float", 0);
  sv_run_all(SERVE_PASS_INT8, "int8", 0); /* with the default kernel */
  sv_run_all(SERVE_PASS_INT8, "int8 + 4-bit prefilter", 1);
  fx_free();
}
END_TEST

/* ---- the hook itself --------------------------------------------------- */

/* The counts are exact, a free of memory the wrappers never saw changes
 * nothing, and armed failures land where they are asked to. */
START_TEST(test_faultalloc_itself) {
  const size_t live0 = fa_live();
  fa_arm(0, 0);
  /* No Check call until the counts are read: Check allocates. */
  void *a = malloc(10), *b = calloc(3, 4), *c2 = strdup("abc"), *d = NULL;
  int pm = posix_memalign(&d, 64, 128);
  void *e = aligned_alloc(64, 256);
  char *f = strndup("abcdef", 3);
  const unsigned long count = fa_count();
  const size_t live = fa_live();
  ck_assert_int_eq(pm, 0);
  ck_assert(a && b && c2 && d && e && f);
  ck_assert_uint_eq(count, 6);
  ck_assert_uint_eq(live, live0 + 6);
  ck_assert_str_eq(f, "abc");
  const size_t live1 = fa_live();
  a = realloc(a, 100000); /* moves */
  const size_t live2 = fa_live();
  free(a), free(b), free(c2), free(d), free(e), free(f);
  const size_t live3 = fa_live();
  ck_assert_uint_eq(live2, live1);
  ck_assert_uint_eq(live3, live0);

  /* realpath(p, NULL): libc's allocation, recorded and released. */
  char *rp = realpath(".", NULL);
  const size_t live4 = fa_live();
  free(rp);
  const size_t live5 = fa_live();
  ck_assert_ptr_nonnull(rp);
  ck_assert_uint_eq(live4, live0 + 1);
  ck_assert_uint_eq(live5, live0);

  /* Arming: the 3rd fails alone; persistently, the 2nd and after. */
  fa_arm(3, 0);
  void *p1 = malloc(8), *p2 = malloc(8), *p3 = malloc(8), *p4 = malloc(8);
  unsigned long failed = fa_failed();
  fa_disarm();
  ck_assert(p1 && p2 && !p3 && p4);
  ck_assert_uint_eq(failed, 1);
  free(p1), free(p2), free(p4);
  fa_arm(2, 1);
  p1 = malloc(8), p2 = malloc(8), p3 = realloc(p1, 64);
  char *s = strdup("x");
  failed = fa_failed();
  fa_disarm();
  const size_t live6 = fa_live();
  ck_assert(p1 && !p2 && !p3 && !s);
  ck_assert_uint_eq(failed, 3);
  ck_assert_uint_eq(live6, live0 + 1); /* p1 survived its failed realloc */
  free(p1);

  /* Many live pointers (the table grows and deletes in any order). */
  enum { M = 20000 };
  const size_t live7 = fa_live();
  void **v = malloc(M * sizeof *v);
  for (int i = 0; i < M; i++)
    v[i] = malloc((size_t)(i % 100) + 1);
  const size_t live8 = fa_live();
  for (int i = 0; i < M; i += 2)
    free(v[i]);
  for (int i = M - 1; i > 0; i -= 2)
    free(v[i]);
  free(v);
  const size_t live9 = fa_live();
  ck_assert_uint_eq(live8, live7 + M + 1);
  ck_assert_uint_eq(live9, live7);
}
END_TEST

/* getline's buffer: allocated and grown inside libc, recorded by the
 * wrapper, failable. */
START_TEST(test_faultalloc_getline) {
  static const char text[] = "short\na much longer second line that makes getline grow "
                             "its buffer well past the first allocation it made\n";
  FILE *fp = fmemopen((void *)text, sizeof text - 1, "r");
  ck_assert_ptr_nonnull(fp);
  const size_t live0 = fa_live();
  char *line = NULL;
  size_t cap = 0;
  ssize_t n1 = getline(&line, &cap, fp);
  const size_t live1 = fa_live();
  ssize_t n2 = getline(&line, &cap, fp);
  const size_t live2 = fa_live();
  fa_arm(1, 0);
  ssize_t n3 = getline(&line, &cap, fp);
  const int e3 = errno;
  const unsigned long failed = fa_failed();
  fa_disarm();
  free(line);
  const size_t live3 = fa_live();
  fclose(fp);
  ck_assert_int_eq(n1, 6);
  ck_assert_int_eq(n2, (ssize_t)sizeof text - 1 - 6);
  ck_assert_uint_eq(live1, live0 + 1);
  ck_assert_uint_eq(live2, live0 + 1);
  ck_assert_int_eq(n3, -1);
  ck_assert_int_eq(e3, ENOMEM);
  ck_assert_uint_eq(failed, 1);
  ck_assert_uint_eq(live3, live0);
}
END_TEST

/* Allocations on several threads at once (what a libuv thread pool does
 * during a model reload): every one counted, the live count exact, and a
 * persistent failure reaches every thread. */
#define FA_THREADS 4
#define FA_ITER 20000

static void *fa_thread(void *arg) {
  unsigned long *nulls = arg;
  void *keep[8] = {0};
  for (int i = 0; i < FA_ITER; i++) {
    void *p = i % 3 == 0 ? calloc(1, 24) : malloc((size_t)(i % 200) + 1);
    if (p == NULL) {
      ++*nulls;
      continue;
    }
    if (i % 5 == 0) {
      void *q = realloc(p, 4096);
      if (q != NULL)
        p = q; /* else p is still valid */
    }
    free(keep[i % 8]);
    keep[i % 8] = p;
  }
  for (int i = 0; i < 8; i++)
    free(keep[i]);
  return NULL;
}

START_TEST(test_faultalloc_threads) {
  const size_t live0 = fa_live();
  pthread_t t[FA_THREADS];
  unsigned long nulls[FA_THREADS] = {0};
  int created = 0;
  /* No Check call while counting: Check allocates. */
  fa_arm(0, 0);
  for (int i = 0; i < FA_THREADS; i++)
    created += pthread_create(&t[i], NULL, fa_thread, &nulls[i]) == 0;
  for (int i = 0; i < FA_THREADS; i++)
    pthread_join(t[i], NULL);
  const unsigned long count = fa_count();
  const size_t live1 = fa_live();
  /* Persistently failing from the 1000th: every thread sees NULLs. */
  unsigned long nulls2[FA_THREADS] = {0};
  fa_arm(1000, 1);
  for (int i = 0; i < FA_THREADS; i++)
    created += pthread_create(&t[i], NULL, fa_thread, &nulls2[i]) == 0;
  for (int i = 0; i < FA_THREADS; i++)
    pthread_join(t[i], NULL);
  const unsigned long count2 = fa_count(), failed2 = fa_failed();
  fa_disarm();
  const size_t live2 = fa_live();
  unsigned long total_nulls = 0;
  for (int i = 0; i < FA_THREADS; i++)
    total_nulls += nulls2[i];
  ck_assert_int_eq(created, 2 * FA_THREADS);
  ck_assert_uint_eq(nulls[0] + nulls[1] + nulls[2] + nulls[3], 0);
  /* FA_ITER allocations per thread, plus a realloc every 5th */
  ck_assert_uint_eq(count, (unsigned long)FA_THREADS * (FA_ITER + FA_ITER / 5));
  ck_assert_uint_eq(live1, live0);
  /* every call from the 1000th on failed, whichever thread made it */
  ck_assert_uint_gt(count2, 1000);
  ck_assert_uint_eq(failed2, count2 - 999);
  ck_assert_uint_ge(total_nulls, 1);
  ck_assert_uint_eq(live2, live0);
}
END_TEST

static Suite *fault_suite(void) {
  Suite *s = suite_create("fault");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_faultalloc_itself);
  tcase_add_test(tc, test_faultalloc_getline);
  tcase_add_test(tc, test_faultalloc_threads);
  tcase_add_test(tc, test_model_load);
  tcase_add_test(tc, test_model_write);
  tcase_add_test(tc, test_config);
  tcase_add_test(tc, test_resp);
  tcase_add_test(tc, test_qmat_build);
  tcase_add_test(tc, test_qsel);
  tcase_add_test(tc, test_foldin);
  tcase_add_test(tc, test_serve);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(fault_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
