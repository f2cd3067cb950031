/* recd - the recommendation daemon: start-up, signals, shutdown.
 *
 *   recd [recd.conf] [--key value ...]
 *
 * Start-up order matters: the model is loaded and validated before any
 * socket listens, so a daemon that accepts connections can always answer;
 * Redis being down is not a start-up error (answers degrade to popular
 * items until it is back).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acl_cmd.h"
#include "batch.h"
#include "commands.h"
#include "itemset.h"
#include "log.h"
#include "metrics.h"
#include "model_store.h"
#include "model_watch.h"
#include "notify.h"
#include "rclient.h"
#include "sentinel.h"
#include "server.h"
#include "tls.h"
#include "tracking.h"
#include "variants.h"

void openblas_set_num_threads(int num_threads);

/* model-watch: the stat poll's period (network file systems send no
 * inotify events for other hosts' writes) and the quiet time before a
 * reload (an rsync or cp writing in place emits many events). */
#define MODEL_WATCH_POLL_MS 2000
#define MODEL_WATCH_QUIET_MS 300

/* How long SIGTERM waits for in-flight requests before closing anyway. */
#define SHUTDOWN_GRACE_MS 5000
/* Then how long the Redis connection stays for the tracker's last writes. */
#define SHUTDOWN_REDIS_MS 1000

typedef struct daemon_ctx {
  server_t srv;
  uv_signal_t sig_hup, sig_term, sig_int;
  uv_timer_t drain;
  uint64_t drain_started;
  int reload_pending; /* SIGHUP during a reload: reload again after it */
  unsigned reloads_running; /* variants a SIGHUP is reloading */
  uv_timer_t redis_grace; /* shutdown: the tracker's last writes, at most */
  int redis_closing;
  metrics_t *metrics; /* HTTP /metrics and /healthz; NULL when off */
  model_watch_t *watch; /* model-watch yes; NULL when off */
  const char *reload_why; /* "SIGHUP" or "model-watch": log lines */
} daemon_ctx_t;

static void on_rclient_log(int level, const char *msg, void *arg) {
  (void)arg;
  log_msg(level, "%s", msg);
}

/* The set is one for the shop; each variant maps it onto its own model. */
static void on_unavailable(const char *const *ids, const size_t *lens, size_t n, void *arg) {
  variants_t *vs = arg;
  for (size_t i = 0; i < variants_count(vs); i++)
    model_store_set_unavailable(variants_at(vs, i)->store, ids, lens, n);
}

/* The promoted set: one for the shop, mapped onto each model on use. */
static void on_promoted(const char *const *ids, const size_t *lens, size_t n, void *arg) {
  if (itemset_replace(arg, ids, lens, n) != 0)
    log_warning("out of memory replacing the promoted set; keeping the previous one");
}

static void on_sighup_reload_done(int status, const char *msg, void *arg);

/* SIGHUP (and model-watch) reloads every variant's model file; each fails
 * on its own. */
static void start_signal_reload(daemon_ctx_t *d) {
  variants_t *vs = d->srv.variants;
  if (d->reloads_running > 0) {
    d->reload_pending = 1;
    return;
  }
  notify_reloading();
  for (size_t i = 0; i < variants_count(vs); i++) {
    char err[RECD_ERRLEN];
    variant_t *v = variants_at(vs, i);
    if (model_store_reload(v->store, NULL, on_sighup_reload_done, d, err) == 0)
      d->reloads_running++;
    else
      log_warning("%s: variant %s: %s", d->reload_why, v->name, err);
  }
  if (d->reloads_running == 0)
    notify_reloaded("reload refused; serving the previous models");
}

static void on_sighup_reload_done(int status, const char *msg, void *arg) {
  daemon_ctx_t *d = arg;
  if (status == 0)
    log_notice("%s: %s", d->reload_why, msg); /* failures: model_store logs them */
  if (--d->reloads_running > 0)
    return;
  /* systemd waits for READY=1 after RELOADING=1 whatever the outcome: a
   * failed reload leaves the old model serving, which is a ready daemon. */
  notify_reloaded(msg);
  if (d->reload_pending && !d->srv.stopping) {
    d->reload_pending = 0;
    start_signal_reload(d);
  }
}

static void on_sighup(uv_signal_t *h, int signum) {
  daemon_ctx_t *d = h->data;
  (void)signum;
  d->reload_why = "SIGHUP";
  /* Renewed certificates (certbot, an internal CA) are picked up like a
   * new model: new connections get them, established ones keep theirs. */
  if (d->srv.tls.cur.ctx != NULL && !d->srv.stopping)
    tls_server_reload(&d->srv.tls, d->srv.cfg, "SIGHUP");
  start_signal_reload(d);
}

/* A watched model file was replaced: reload as on SIGHUP (every variant;
 * those whose file did not change load the same model again). */
static void on_model_changed(const char *path, void *arg) {
  daemon_ctx_t *d = arg;
  if (d->srv.stopping)
    return;
  log_notice("model-watch: %s changed; reloading", path);
  d->reload_why = "model-watch";
  start_signal_reload(d);
}

/* Watches each variant's model file (model-watch yes). */
static int start_model_watch(daemon_ctx_t *d, uv_loop_t *loop, char *err) {
  variants_t *vs = d->srv.variants;
  const size_t n = variants_count(vs);
  const char **paths = calloc(n ? n : 1, sizeof *paths);
  if (paths == NULL) {
    snprintf(err, RECD_ERRLEN, "model-watch: out of memory");
    return RECD_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    paths[i] = model_store_model_path(variants_at(vs, i)->store);
  int rc = model_watch_start(loop, paths, n, MODEL_WATCH_POLL_MS, MODEL_WATCH_QUIET_MS,
                             on_model_changed, d, &d->watch, err);
  free(paths);
  return rc;
}

static void on_redis_closed(void *arg) {
  server_t *s = arg;
  s->redis = NULL;
}

static void close_redis(daemon_ctx_t *d) {
  server_t *s = &d->srv;
  if (!uv_is_closing((uv_handle_t *)&d->redis_grace))
    uv_close((uv_handle_t *)&d->redis_grace, NULL);
  /* The sentinel module first: it must stop pointing the client anywhere. */
  sentinel_close(s->sentinel);
  s->sentinel = NULL;
  if (s->redis != NULL && !d->redis_closing) {
    d->redis_closing = 1;
    rclient_close(s->redis, on_redis_closed, s);
  }
}

static void on_tracker_closed(void *arg) {
  close_redis(arg);
}

static void on_redis_grace(uv_timer_t *t) {
  close_redis(t->data);
}

/* Everything is answered (or the grace period is over): close the rest. */
static void finish_shutdown(daemon_ctx_t *d) {
  server_t *s = &d->srv;
  uv_timer_stop(&d->drain);
  uv_close((uv_handle_t *)&d->drain, NULL);
  server_close(s);
  /* The metrics listener closes last, so that /healthz answers 503 (not
   * "connection refused") while the requests in flight drain. */
  metrics_stop(d->metrics);
  d->metrics = NULL;
  if (s->batcher) {
    batcher_close(s->batcher);
    s->batcher = NULL;
  }
  /* The Redis client goes once the tracker's last writes are answered
   * (counts of the last 100 ms, outcomes), or after SHUTDOWN_REDIS_MS if
   * Redis does not answer. */
  if (s->tracker) {
    uv_timer_start(&d->redis_grace, on_redis_grace, SHUTDOWN_REDIS_MS, 0);
    tracker_close(s->tracker, on_tracker_closed, d);
    s->tracker = NULL;
  } else {
    close_redis(d);
  }
  model_watch_stop(d->watch);
  d->watch = NULL;
  uv_close((uv_handle_t *)&d->sig_hup, NULL);
  uv_close((uv_handle_t *)&d->sig_term, NULL);
  uv_close((uv_handle_t *)&d->sig_int, NULL);
}

static void on_drain_tick(uv_timer_t *t) {
  daemon_ctx_t *d = t->data;
  int drained = server_drained(&d->srv);
  if (drained || uv_now(d->srv.loop) - d->drain_started > SHUTDOWN_GRACE_MS) {
    if (!drained)
      log_warning("shutdown: grace period over, closing clients with requests in flight");
    finish_shutdown(d);
  }
}

static void on_sigterm(uv_signal_t *h, int signum) {
  daemon_ctx_t *d = h->data;
  server_t *s = &d->srv;
  if (s->stopping) {
    log_warning("second signal %d: closing now", signum);
    uv_timer_stop(&d->drain);
    d->drain_started = 0;
    on_drain_tick(&d->drain);
    return;
  }
  notify_stopping();
  notify_close();
  log_notice("signal %d: shutting down (no new connections, finishing %u clients' requests)",
             signum, s->n_clients);
  /* No new commands; requests already read are answered and flushed. */
  server_shutdown_begin(s);
  d->drain_started = uv_now(s->loop);
  uv_timer_start(&d->drain, on_drain_tick, 0, 10);
}

static int write_pidfile(const char *path) {
  FILE *fp = fopen(path, "w");
  if (fp == NULL)
    return -1;
  fprintf(fp, "%d\n", (int)getpid());
  return fclose(fp);
}

int main(int argc, char **argv) {
  config_t cfg;
  char err[RECD_ERRLEN] = "";
  /* The command reference (README's "Command reference" is this output;
   * tests/cli/test_commands_doc.sh keeps the two equal). */
  if (argc == 2 && strcmp(argv[1], "--commands-markdown") == 0)
    return commands_markdown(stdout) == 0 ? 0 : 1;
  if (config_init(&cfg) != 0) {
    fprintf(stderr, "recd: out of memory\n");
    return 1;
  }
  int rc = config_parse_args(&cfg, argc, argv, err);
  /* The users (user lines or the aclfile) are read before anything starts,
   * and by --test-config as well, so a bad rule is found before a restart. */
  acl_users_t users = {0};
  if ((rc == CONFIG_ARGS_RUN || rc == CONFIG_ARGS_TEST) && acl_setup(&cfg, &users, err) != 0) {
    fprintf(stderr, "recd: %s\n", err);
    config_free(&cfg);
    return 2;
  }
  if (rc == CONFIG_ARGS_TEST)
    acl_users_free(&users);
  switch (rc) {
  case CONFIG_ARGS_HELP:
    config_usage(stdout, "recd");
    config_free(&cfg);
    return 0;
  case CONFIG_ARGS_VERSION:
    printf("recd %s\n", RECD_VERSION);
    config_free(&cfg);
    return 0;
  case CONFIG_ARGS_TEST:
    /* The TLS files are read as at start-up: an unreadable certificate or
     * a key of another certificate is found before a restart. */
    if (cfg.tls_port > 0 || (cfg.metrics_tls && cfg.metrics_port > 0)) {
      tls_creds_t creds;
      if (tls_creds_load(&cfg, &creds, err) != 0) {
        fprintf(stderr, "recd: %s\n", err);
        config_free(&cfg);
        return 2;
      }
      tls_creds_free(&creds);
    }
    config_dump(&cfg, stdout, CONFIG_DUMP_REDACT);
    config_free(&cfg);
    return 0;
  case CONFIG_ARGS_RUN:
    break;
  default:
    fprintf(stderr, "recd: %s\n", err);
    config_free(&cfg);
    return 2;
  }
  log_set_level(cfg.loglevel);
  /* `workers` sizes libuv's thread pool, which scores large catalogues and
   * loads models; it must be set before the pool's first use. */
  char workers[16];
  snprintf(workers, sizeof workers, "%d", cfg.workers);
  setenv("UV_THREADPOOL_SIZE", workers, 1);
  /* A peer that closes mid-write must not kill the daemon. */
  signal(SIGPIPE, SIG_IGN);
  /* recd owns its threads (loop + pool); BLAS must not add its own. */
  openblas_set_num_threads(1);

  static daemon_ctx_t d; /* static: large, and lives as long as main */
  server_t *s = &d.srv;
  uv_loop_t loop;
  uv_loop_init(&loop);
  server_init(s, &loop, &cfg, commands_dispatch);
  s->acl.users = users;
  acl_warn_open_default(&s->acl.users, &cfg);
  log_notice("recd %s starting, pid %d", RECD_VERSION, (int)getpid());

  if (variants_open(&loop, &cfg, &s->variants, err) != 0) {
    log_warning("cannot start: %s", err);
    fprintf(stderr, "recd: cannot start: %s\n", err);
    rec_ws_free(&s->ws);
    uv_loop_close(&loop);
    config_free(&cfg);
    return 1;
  }
  /* Loading the model took this thread seconds at 1M items, and libuv's
   * clock is only read at the top of a loop iteration: every timer armed
   * from here on (the Redis connect's 1 s timeout first) would otherwise
   * count from before the load and fire at once ("connecting ... timed
   * out", then a reconnect, with the first requests answered degraded). */
  uv_update_time(&loop);
  /* Rows per batch: enough to amortise one pass over the item matrix, few
   * enough that the slowest customer in a batch does not hold many others. */
  if (batcher_new(&loop, (unsigned)cfg.workers, 64, (uint32_t)cfg.scan_split_items,
                  (uint64_t)cfg.scan_loop_help_us * 1000u, &s->batcher) != 0) {
    fprintf(stderr, "recd: out of memory\n");
    return 1;
  }
  rclient_opts_t ro;
  rclient_opts_init(&ro);
  ro.host = cfg.redis_host;
  ro.port = cfg.redis_port;
  ro.socket = cfg.redis_socket[0] ? cfg.redis_socket : NULL;
  ro.cluster_nodes = cfg.redis_cluster_nodes; /* "" = one Redis */
  ro.cluster_refresh_ms = (unsigned)cfg.redis_cluster_refresh_ms;
  ro.password = cfg.redis_password;
  ro.user = cfg.redis_user;
  ro.prefix = cfg.key_prefix;
  ro.reconnect_max_ms = (unsigned)cfg.redis_reconnect_max_ms;
  ro.unavailable_refresh_ms = (unsigned)cfg.unavailable_refresh_ms;
  ro.log = on_rclient_log;
  /* Sentinel mode: the client connects nowhere until the sentinels have
   * named the primary. */
  ro.wait_for_target = cfg.redis_sentinels[0] != '\0';
  if (rclient_new(&loop, &ro, &s->redis, err) != 0) {
    fprintf(stderr, "recd: redis client: %s\n", err);
    return 1;
  }
  if (ro.wait_for_target) {
    sentinel_opts_t so;
    sentinel_opts_init(&so);
    so.sentinels = cfg.redis_sentinels;
    so.master_name = cfg.redis_master_name;
    so.sentinel_password = cfg.redis_sentinel_password;
    so.password = cfg.redis_password;
    so.user = cfg.redis_user;
    so.log = on_rclient_log;
    if (sentinel_new(&loop, s->redis, &so, &s->sentinel, err) != 0) {
      fprintf(stderr, "recd: %s\n", err);
      return 1;
    }
  }
  rclient_on_unavailable(s->redis, on_unavailable, s->variants);
  if ((s->promoted = itemset_new()) == NULL) {
    fprintf(stderr, "recd: out of memory\n");
    return 1;
  }
  rclient_on_set(s->redis, RCLIENT_SET_PROMOTED, on_promoted, s->promoted);
  tracker_opts_t to = {.enabled = cfg.track_impressions,
                       .window_s = (uint64_t)cfg.attribution_window,
                       .cap = (unsigned)cfg.impressions_max,
                       .refresh_ms = (uint64_t)cfg.experiment_refresh_ms,
                       .count_shown = cfg.track_shown || cfg.shown_limit > 0};
  if (tracker_new(&loop, s->redis, s->variants, &to, &s->tracker) != 0) {
    fprintf(stderr, "recd: out of memory\n");
    return 1;
  }

  uv_signal_init(&loop, &d.sig_hup);
  uv_signal_init(&loop, &d.sig_term);
  uv_signal_init(&loop, &d.sig_int);
  d.sig_hup.data = d.sig_term.data = d.sig_int.data = &d;
  uv_signal_start(&d.sig_hup, on_sighup, SIGHUP);
  uv_signal_start(&d.sig_term, on_sigterm, SIGTERM);
  uv_signal_start(&d.sig_int, on_sigterm, SIGINT);
  uv_timer_init(&loop, &d.drain);
  d.drain.data = &d;
  uv_timer_init(&loop, &d.redis_grace);
  d.redis_grace.data = &d;

  d.reload_why = "SIGHUP";
  int listen_rc = server_listen(s, err);
  if (listen_rc == 0 && cfg.model_watch)
    listen_rc = start_model_watch(&d, &loop, err);
  if (listen_rc == 0 && cfg.metrics_port != 0)
    listen_rc = metrics_start(s, &d.metrics, err);
  if (listen_rc != 0) {
    fprintf(stderr, "recd: %s\n", err);
    log_warning("cannot start: %s", err);
    rc = 1;
    on_sigterm(&d.sig_term, SIGTERM);
  } else {
    rc = 0;
    if (cfg.pidfile[0] && write_pidfile(cfg.pidfile) != 0)
      log_warning("cannot write pidfile %s", cfg.pidfile);
    log_notice("ready to accept connections");
    char status[128];
    const served_t *ctl = model_store_current(variants_control(s->variants)->store);
    snprintf(status, sizeof status, "serving model version %llu (%u items)",
             (unsigned long long)ctl->version, model_n_items(ctl->m));
    notify_ready(&loop, status);
  }
  uv_run(&loop, UV_RUN_DEFAULT);

  if (cfg.pidfile[0])
    unlink(cfg.pidfile);
  variants_free(s->variants);
  itemset_free(s->promoted);
  acl_users_free(&s->acl.users);
  int close_rc = uv_loop_close(&loop);
  if (close_rc != 0)
    log_warning("event loop closed with handles still open: %s", uv_strerror(close_rc));
  log_notice("recd stopped");
  config_free(&cfg);
  return rc;
}
