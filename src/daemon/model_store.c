/* model_store.c - see model_store.h.
 *
 * A file that fails validation never replaces the current model; a reload
 * swaps the pointer on the loop thread only after the new model and its
 * serving data (serve_model_init: the int8 copy) are complete.
 */
#define _XOPEN_SOURCE 700 /* realpath, strndup */
#include "model_store.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "recd/foldin.h"

struct model_store {
  uv_loop_t *loop;
  char *model_path;        /* the configured model (its directory is the
                              default models-dir) */
  char *models_dir;        /* "" = the configured model's directory */
  char *base_dir;          /* models_dir, or the configured model's directory */
  char stem[256];          /* kept versions are base_dir/<stem>.<version>.bin */
  int pinned;              /* MODEL PIN: plain reloads and rollbacks refused */
  serve_opts_t serve;
  served_t *current;
  bits_t *unavail;         /* unavailable items of the current model */
  char **unavail_ids;      /* the last set read from Redis, to rebuild */
  size_t *unavail_lens;    /* the bitmap when a new model comes in */
  size_t n_unavail_ids;
  uint64_t next_version;
  int reloading;           /* a load is running on the pool */
  int closing;             /* model_store_free() called during a reload */
  uint64_t reloads_ok, reloads_failed;
  char last_reload_error[RECD_ERRLEN];
};

static served_t *served__hold(served_t *sv) {
  sv->refs++;
  return sv;
}

static void served__release(served_t *sv) {
  if (--sv->refs > 0)
    return;
  serve_model_free(&sv->sm);
  model_free(sv->m);
  free(sv->path);
  free(sv->file);
  free(sv);
}

static bits_t *bits__hold(bits_t *b) {
  b->refs++;
  return b;
}

static void bits__release(bits_t *b) {
  if (--b->refs == 0)
    free(b);
}

void model_store_hold(model_store_t *ms, model_ref_t *out) {
  out->sv = served__hold(ms->current);
  /* The set always belongs to the current model, except after a reload
   * whose rebuild ran out of memory: indices of another model would filter
   * the wrong items, so then nothing is unavailable (logged there). */
  out->unavail = ms->unavail != NULL && ms->unavail->for_model == ms->current
                     ? bits__hold(ms->unavail)
                     : NULL;
}

void model_ref_release(model_ref_t *r) {
  if (r->unavail != NULL)
    bits__release(r->unavail);
  if (r->sv != NULL)
    served__release(r->sv);
  r->sv = NULL;
  r->unavail = NULL;
}

const served_t *model_store_current(const model_store_t *ms) {
  return ms->current;
}

int model_store_reloading(const model_store_t *ms) {
  return ms->reloading;
}

/* Loads and validates `path` into a new served_t (refs = 1). Thread-safe:
 * touches nothing shared (stem is fixed at open). */
static int model_store__open(const char *path, const serve_opts_t *so, const char *stem,
                             served_t **out, char *errbuf) {
  served_t *sv = calloc(1, sizeof *sv);
  if (sv == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  int rc = model_load(&sv->m, path, errbuf);
  if (rc != 0) {
    free(sv);
    return rc;
  }
  sv->path = strdup(path);
  /* The file behind the path (model.bin -> model.<version>.bin): which
   * version is served. Unresolvable (out of memory) is not an error: the
   * path itself is then shown. */
  char real[PATH_MAX];
  sv->file = strdup(realpath(path, real) != NULL ? real : path);
  const char *name = strrchr(sv->file ? sv->file : path, '/');
  name = name ? name + 1 : (sv->file ? sv->file : path);
  if (!kept_name_match(name, stem, sv->file_version))
    kept_version_format(model_meta(sv->m)->created_at, sv->file_version);
  rc = sv->path == NULL || sv->file == NULL ? RECD_ENOMEM
                                            : serve_model_init(&sv->sm, sv->m, so);
  if (rc != 0) {
    free(sv->path);
    free(sv->file);
    model_free(sv->m);
    free(sv);
    return recd_errf(errbuf, rc, "%s: %s preparing the model for serving", path,
                     rc == RECD_ENOMEM ? "out of memory" : "cannot use this CPU's kernel");
  }
  /* The fold-in's eigenbasis now, on the loading thread (the pool, for a
   * reload), rather than in the first request of this model while every
   * other request of it waits (10-50 ms at k = 256). It allocates nothing
   * with malloc; without memory for it solves take the Cholesky path. */
  (void)foldin_prepare(model_item_factors(sv->m), model_stride(sv->m), model_gram(sv->m),
                       model_factors(sv->m));
  sv->refs = 1;
  sv->loaded_at = (int64_t)time(NULL);
  *out = sv;
  return 0;
}

/* Rebuilds the unavailable bitmap for the current model from the last set
 * read from Redis. A new object each time: requests on the thread pool may
 * still read the old one. Out of memory: the previous bitmap stays when it
 * belongs to the current model (a refresh of the set); one of a previous
 * model is dropped (its indices mean other items, and its model may be
 * freed and another allocated at the same address), so that nothing is
 * unavailable until the next refresh. */
static void model_store__rebuild_bits(model_store_t *ms) {
  const model_t *m = ms->current->m;
  size_t words = (model_n_items(m) + 63) / 64;
  bits_t *b = calloc(1, sizeof *b + words * sizeof(uint64_t));
  if (b == NULL) {
    if (ms->unavail != NULL && ms->unavail->for_model != ms->current) {
      bits__release(ms->unavail);
      ms->unavail = NULL;
      log_warning("out of memory building the unavailable set of model version %llu: nothing "
                  "is unavailable until the next refresh",
                  (unsigned long long)ms->current->version);
    } else {
      log_warning("out of memory rebuilding the unavailable set; keeping the previous one");
    }
    return;
  }
  b->refs = 1;
  b->for_model = ms->current;
  for (size_t j = 0; j < ms->n_unavail_ids; j++) {
    int64_t i = model_find_item(m, ms->unavail_ids[j], ms->unavail_lens[j]);
    if (i >= 0 && !(b->words[i / 64] & (1ull << (i % 64)))) {
      b->words[i / 64] |= 1ull << (i % 64);
      b->n_set++;
    }
  }
  if (ms->unavail)
    bits__release(ms->unavail);
  ms->unavail = b;
}

static void model_store__install(model_store_t *ms, served_t *sv) {
  sv->version = ++ms->next_version;
  if (ms->current)
    served__release(ms->current);
  ms->current = sv;
  model_store__rebuild_bits(ms);
  const model_t *m = sv->m;
  log_notice("model %s loaded: version %llu, %u items, k=%u, %u categories, checksum %08x, "
             "first pass %s",
             sv->path, (unsigned long long)sv->version, model_n_items(m), model_factors(m),
             model_n_categories(m), model_checksum(m), serve_pass_name(&sv->sm));
}

int model_store_open(uv_loop_t *loop, const model_store_opts_t *o, model_store_t **out,
                     char *errbuf) {
  if (o->model == NULL || o->model[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL, "no model configured (set `model` in the config "
                                          "file or pass --model PATH)");
  model_store_t *ms = calloc(1, sizeof *ms);
  if (ms == NULL || (ms->model_path = strdup(o->model)) == NULL ||
      (ms->models_dir = strdup(o->models_dir ? o->models_dir : "")) == NULL) {
    if (ms != NULL)
      free(ms->model_path);
    free(ms);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  ms->loop = loop;
  ms->serve = o->serve;
  if (ms->models_dir[0] != '\0') {
    ms->base_dir = strdup(ms->models_dir);
  } else {
    const char *slash = strrchr(o->model, '/');
    ms->base_dir = slash == NULL  ? strdup(".")
                   : slash == o->model ? strdup("/")
                                       : strndup(o->model, (size_t)(slash - o->model));
  }
  if (ms->base_dir == NULL) {
    model_store_free(ms);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  if (kept_stem(o->model, ms->stem, sizeof ms->stem) != 0) {
    model_store_free(ms);
    return recd_errf(errbuf, RECD_EINVAL, "model %s: file name too long", o->model);
  }
  served_t *sv = NULL;
  int rc = model_store__open(o->model, &ms->serve, ms->stem, &sv, errbuf);
  if (rc != 0) {
    model_store_free(ms);
    return rc;
  }
  model_store__install(ms, sv);
  *out = ms;
  return 0;
}

static void model_store__free_ids(model_store_t *ms) {
  for (size_t j = 0; j < ms->n_unavail_ids; j++)
    free(ms->unavail_ids[j]);
  free(ms->unavail_ids);
  free(ms->unavail_lens);
  ms->unavail_ids = NULL;
  ms->unavail_lens = NULL;
  ms->n_unavail_ids = 0;
}

static void model_store__destroy(model_store_t *ms) {
  if (ms->unavail)
    bits__release(ms->unavail);
  model_store__free_ids(ms);
  if (ms->current)
    served__release(ms->current);
  free(ms->model_path);
  free(ms->models_dir);
  free(ms->base_dir);
  free(ms);
}

void model_store_free(model_store_t *ms) {
  if (ms == NULL)
    return;
  if (ms->reloading) {
    ms->closing = 1; /* the reload's callback frees it */
    return;
  }
  model_store__destroy(ms);
}

void model_store_set_unavailable(model_store_t *ms, const char *const *ids, const size_t *lens,
                                 size_t n) {
  char **copy = calloc(n ? n : 1, sizeof *copy);
  size_t *clens = malloc((n ? n : 1) * sizeof *clens);
  int ok = copy != NULL && clens != NULL;
  for (size_t j = 0; ok && j < n; j++) {
    copy[j] = malloc(lens[j] + 1);
    if (copy[j] == NULL) {
      ok = 0;
      break;
    }
    memcpy(copy[j], ids[j], lens[j]);
    copy[j][lens[j]] = '\0';
    clens[j] = lens[j];
  }
  if (!ok) {
    for (size_t j = 0; copy != NULL && j < n; j++)
      free(copy[j]);
    free(copy);
    free(clens);
    log_warning("out of memory copying the unavailable set; keeping the previous one");
    return;
  }
  model_store__free_ids(ms);
  ms->unavail_ids = copy;
  ms->unavail_lens = clens;
  ms->n_unavail_ids = n;
  model_store__rebuild_bits(ms);
}

/* What a load is for: the reply names what serves now, and until when. */
typedef enum reload_kind { RELOAD_CONFIGURED, RELOAD_PATH, RELOAD_ROLLBACK, RELOAD_PIN } reload_kind_t;

typedef struct reload_job {
  uv_work_t work;
  model_store_t *ms;
  reload_kind_t kind;
  char *path;
  served_t *result;
  int rc;
  char err[RECD_ERRLEN];
  model_reload_cb done;
  void *arg;
} reload_job_t;

static void model_store__work(uv_work_t *w) {
  reload_job_t *j = w->data;
  j->rc = model_store__open(j->path, &j->ms->serve, j->ms->stem, &j->result, j->err);
}

static void model_store__after(uv_work_t *w, int status) {
  reload_job_t *j = w->data;
  model_store_t *ms = j->ms;
  ms->reloading = 0;
  char msg[RECD_ERRLEN + 2 * PATH_MAX];
  if (status != 0 && j->rc == 0) {
    served__release(j->result);
    j->rc = RECD_EINVAL;
    snprintf(j->err, sizeof j->err, "reload cancelled");
  }
  if (ms->closing) { /* shut down while loading: nobody to serve it to */
    if (j->rc == 0)
      served__release(j->result);
    j->rc = RECD_EINVAL;
    snprintf(msg, sizeof msg, "model not reloaded: shutting down");
  } else if (j->rc == 0) {
    model_store__install(ms, j->result);
    ms->reloads_ok++;
    const served_t *sv = ms->current;
    int n = snprintf(msg, sizeof msg, "OK model version %llu, %u items",
                     (unsigned long long)sv->version, model_n_items(sv->m));
    size_t o = n > 0 && (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
    if (j->kind == RELOAD_PIN) {
      ms->pinned = 1;
      snprintf(msg + o, sizeof msg - o, ": pinned to %s (%s); SIGHUP, MODEL RELOAD and "
               "MODEL ROLLBACK are refused until MODEL UNPIN", sv->file_version, sv->file);
    } else if (j->kind != RELOAD_CONFIGURED) {
      snprintf(msg + o, sizeof msg - o, ": %s %s (%s), not pinned: the next publish, SIGHUP "
               "or MODEL RELOAD serves %s again",
               j->kind == RELOAD_ROLLBACK ? "rolled back to" : "serving", sv->file_version,
               sv->file, ms->model_path);
    }
    if (j->kind != RELOAD_CONFIGURED)
      log_notice("%s", msg + 3);
  } else {
    ms->reloads_failed++;
    snprintf(ms->last_reload_error, sizeof ms->last_reload_error, "%s", j->err);
    snprintf(msg, sizeof msg, "model not reloaded, still serving version %llu: %s",
             (unsigned long long)ms->current->version, j->err);
    log_warning("%s", msg);
  }
  if (j->done)
    j->done(j->rc, msg, j->arg);
  if (ms->closing)
    model_store__destroy(ms);
  free(j->path);
  free(j);
}

/* MODEL RELOAD <path> may only load from models-dir (default: the
 * directory of the configured model): a client must not be able to make
 * the daemon open arbitrary files. Both sides are resolved with realpath()
 * so that "../" and symlinks cannot escape. */
static int model_store__allowed(const model_store_t *ms, const char *path, char *errbuf) {
  char dir[PATH_MAX], real[PATH_MAX];
  if (realpath(ms->base_dir, dir) == NULL)
    return recd_errf(errbuf, RECD_EINVAL, "models directory %s: %s", ms->base_dir,
                     strerror(errno));
  if (realpath(path, real) == NULL)
    return recd_errf(errbuf, RECD_ENOTFOUND, "%s: %s", path, strerror(errno));
  size_t n = strlen(dir);
  if (strncmp(real, dir, n) != 0 || (real[n] != '/' && strcmp(dir, "/") != 0))
    return recd_errf(errbuf, RECD_EINVAL, "%s is outside the models directory %s", path, dir);
  return 0;
}

static int model_store__pinned_error(const model_store_t *ms, const char *what, char *errbuf) {
  return recd_errf(errbuf, RECD_EINVAL, "%s refused: model pinned to %s (%s); MODEL UNPIN first",
                   what, ms->current->file_version, ms->current->file);
}

/* Queues the load of `p` (already checked) on the thread pool. */
static int model_store__start(model_store_t *ms, const char *p, reload_kind_t kind,
                              model_reload_cb done, void *arg, char *errbuf) {
  reload_job_t *j = calloc(1, sizeof *j);
  if (j == NULL || (j->path = strdup(p)) == NULL) {
    free(j);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  j->ms = ms;
  j->kind = kind;
  j->done = done;
  j->arg = arg;
  j->work.data = j;
  int rc = uv_queue_work(ms->loop, &j->work, model_store__work, model_store__after);
  if (rc != 0) {
    free(j->path);
    free(j);
    return recd_errf(errbuf, RECD_EIO, "cannot start reload: %s", uv_strerror(rc));
  }
  ms->reloading = 1;
  log_notice("reloading model from %s", p);
  return 0;
}

int model_store_reload(model_store_t *ms, const char *path, model_reload_cb done, void *arg,
                       char *errbuf) {
  if (ms->reloading)
    return recd_errf(errbuf, RECD_EINVAL, "a model reload is already in progress");
  if (ms->pinned)
    return model_store__pinned_error(ms, "reload", errbuf);
  if (path == NULL) /* SIGHUP, MODEL RELOAD: the configured model, which a
                       publish replaces; never the file loaded last */
    return model_store__start(ms, ms->model_path, RELOAD_CONFIGURED, done, arg, errbuf);
  /* A relative path is relative to models-dir, not to the daemon's cwd
   * (which an operator at a shell cannot see). */
  char full[PATH_MAX];
  if (path[0] != '/' && path[0] != '\0') { /* "": "No such file", as before */
    int n = snprintf(full, sizeof full, "%s/%s", ms->base_dir, path);
    if (n < 0 || (size_t)n >= sizeof full)
      return recd_errf(errbuf, RECD_EINVAL, "model path too long");
    path = full;
  }
  int rc = model_store__allowed(ms, path, errbuf);
  if (rc != 0)
    return rc;
  return model_store__start(ms, path, RELOAD_PATH, done, arg, errbuf);
}

int model_store_versions(const model_store_t *ms, kept_list_t *out, char *errbuf) {
  return kept_list(ms->base_dir, ms->stem, out, errbuf);
}

/* "a, b, c" (newest first) of a list, for error messages. */
static void model_store__list_text(const kept_list_t *l, char *buf, size_t cap) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = l->n; i-- > 0 && o + KEPT_VERSION_LEN + 8 < cap;)
    o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? ", " : "", l->v[i]);
  if (l->n == 0)
    snprintf(buf, cap, "none");
}

/* The path of kept version `version` (checked: its grammar, and that it is
 * kept), or with version NULL of the newest one older than the served one. */
static int model_store__kept_path(const model_store_t *ms, const char *version, char *path,
                                  size_t cap, char *errbuf) {
  if (version != NULL && kept_version_parse(version, strlen(version), NULL) != 0)
    return recd_errf(errbuf, RECD_EINVAL,
                     "'%.64s' is not a version: expected YYYYMMDDTHHMMSSZ, as MODEL INFO lists "
                     "them in kept_versions", version);
  kept_list_t l;
  int rc = kept_list(ms->base_dir, ms->stem, &l, errbuf);
  if (rc != 0)
    return rc;
  const char *pick = NULL;
  for (size_t i = 0; i < l.n; i++) {
    if (version != NULL ? strcmp(l.v[i], version) == 0
                        : strcmp(l.v[i], ms->current->file_version) < 0)
      pick = l.v[i]; /* the list is oldest first: the last match is the newest */
  }
  char kept[12 * (KEPT_VERSION_LEN + 2)];
  model_store__list_text(&l, kept, sizeof kept);
  if (pick == NULL)
    rc = version != NULL
             ? recd_errf(errbuf, RECD_ENOTFOUND, "no kept version %s in %s (kept: %s)", version,
                         ms->base_dir, kept)
             : recd_errf(errbuf, RECD_ENOTFOUND,
                         "no kept version older than the served %s in %s (kept: %s)",
                         ms->current->file_version, ms->base_dir, kept);
  else if (snprintf(path, cap, "%s/%s.%s.bin", ms->base_dir, ms->stem, pick) >= (int)cap)
    rc = recd_errf(errbuf, RECD_EINVAL, "model path too long");
  kept_list_free(&l);
  return rc != 0 ? rc : model_store__allowed(ms, path, errbuf);
}

int model_store_rollback(model_store_t *ms, const char *version, model_reload_cb done,
                         void *arg, char *errbuf) {
  if (ms->reloading)
    return recd_errf(errbuf, RECD_EINVAL, "a model reload is already in progress");
  if (ms->pinned)
    return model_store__pinned_error(ms, "rollback", errbuf);
  char path[PATH_MAX];
  int rc = model_store__kept_path(ms, version, path, sizeof path, errbuf);
  return rc != 0 ? rc : model_store__start(ms, path, RELOAD_ROLLBACK, done, arg, errbuf);
}

int model_store_pin(model_store_t *ms, const char *version, model_reload_cb done, void *arg,
                    char *errbuf) {
  if (ms->reloading)
    return recd_errf(errbuf, RECD_EINVAL, "a model reload is already in progress");
  if (version == NULL) {
    ms->pinned = 1;
    char msg[RECD_ERRLEN + PATH_MAX];
    snprintf(msg, sizeof msg, "OK model version %llu pinned to %s (%s); SIGHUP, MODEL RELOAD "
             "and MODEL ROLLBACK are refused until MODEL UNPIN",
             (unsigned long long)ms->current->version, ms->current->file_version,
             ms->current->file);
    log_notice("%s", msg + 3);
    done(0, msg, arg);
    return 0;
  }
  char path[PATH_MAX];
  int rc = model_store__kept_path(ms, version, path, sizeof path, errbuf);
  return rc != 0 ? rc : model_store__start(ms, path, RELOAD_PIN, done, arg, errbuf);
}

int model_store_unpin(model_store_t *ms) {
  int was = ms->pinned;
  ms->pinned = 0;
  if (was)
    log_notice("model unpinned: still serving %s; the next publish, SIGHUP or MODEL RELOAD "
               "serves %s", ms->current->file, ms->model_path);
  return was;
}

int model_store_pinned(const model_store_t *ms) {
  return ms->pinned;
}

const char *model_store_model_path(const model_store_t *ms) {
  return ms->model_path;
}

void model_store_get_stats(const model_store_t *ms, model_store_stats_t *out) {
  out->reloads_ok = ms->reloads_ok;
  out->reloads_failed = ms->reloads_failed;
  out->last_reload_error = ms->last_reload_error;
  out->unavailable =
      ms->unavail != NULL && ms->unavail->for_model == ms->current ? ms->unavail->n_set : 0;
}
