/* model_store.c - see model_store.h.
 *
 * A file that fails validation never replaces the current model; a reload
 * swaps the pointer on the loop thread only after the new model and its
 * serving data (serve_model_init: the int8 copy) are complete.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "model_store.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct model_store {
  uv_loop_t *loop;
  char *model_path;        /* the configured model (its directory is the
                              default models-dir) */
  char *models_dir;        /* "" = the configured model's directory */
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
 * touches nothing shared. */
static int model_store__open(const char *path, const serve_opts_t *so, served_t **out,
                             char *errbuf) {
  served_t *sv = calloc(1, sizeof *sv);
  if (sv == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  int rc = model_load(&sv->m, path, errbuf);
  if (rc != 0) {
    free(sv);
    return rc;
  }
  sv->path = strdup(path);
  rc = sv->path == NULL ? RECD_ENOMEM : serve_model_init(&sv->sm, sv->m, so);
  if (rc != 0) {
    free(sv->path);
    model_free(sv->m);
    free(sv);
    return recd_errf(errbuf, rc, "%s: %s preparing the model for serving", path,
                     rc == RECD_ENOMEM ? "out of memory" : "cannot use this CPU's kernel");
  }
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
  served_t *sv = NULL;
  int rc = model_store__open(o->model, &ms->serve, &sv, errbuf);
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

typedef struct reload_job {
  uv_work_t work;
  model_store_t *ms;
  char *path;
  served_t *result;
  int rc;
  char err[RECD_ERRLEN];
  model_reload_cb done;
  void *arg;
} reload_job_t;

static void model_store__work(uv_work_t *w) {
  reload_job_t *j = w->data;
  j->rc = model_store__open(j->path, &j->ms->serve, &j->result, j->err);
}

static void model_store__after(uv_work_t *w, int status) {
  reload_job_t *j = w->data;
  model_store_t *ms = j->ms;
  ms->reloading = 0;
  char msg[RECD_ERRLEN + 64];
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
    snprintf(msg, sizeof msg, "OK model version %llu, %u items",
             (unsigned long long)ms->current->version, model_n_items(ms->current->m));
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
  const char *base = ms->models_dir;
  char tmp[PATH_MAX];
  if (base[0] == '\0') {
    snprintf(tmp, sizeof tmp, "%s", ms->model_path);
    char *slash = strrchr(tmp, '/');
    if (slash == NULL)
      snprintf(tmp, sizeof tmp, ".");
    else if (slash == tmp)
      tmp[1] = '\0';
    else
      *slash = '\0';
    base = tmp;
  }
  if (realpath(base, dir) == NULL)
    return recd_errf(errbuf, RECD_EINVAL, "models directory %s: %s", base, strerror(errno));
  if (realpath(path, real) == NULL)
    return recd_errf(errbuf, RECD_ENOTFOUND, "%s: %s", path, strerror(errno));
  size_t n = strlen(dir);
  if (strncmp(real, dir, n) != 0 || (real[n] != '/' && strcmp(dir, "/") != 0))
    return recd_errf(errbuf, RECD_EINVAL, "%s is outside the models directory %s", path, dir);
  return 0;
}

int model_store_reload(model_store_t *ms, const char *path, model_reload_cb done, void *arg,
                       char *errbuf) {
  if (ms->reloading)
    return recd_errf(errbuf, RECD_EINVAL, "a model reload is already in progress");
  int rc = path != NULL ? model_store__allowed(ms, path, errbuf) : 0;
  if (rc != 0)
    return rc;
  /* No path (SIGHUP, MODEL RELOAD): the file the served model came from,
   * which a retrain replaces in place. */
  const char *p = path ? path : ms->current->path;
  reload_job_t *j = calloc(1, sizeof *j);
  if (j == NULL || (j->path = strdup(p)) == NULL) {
    free(j);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  j->ms = ms;
  j->done = done;
  j->arg = arg;
  j->work.data = j;
  rc = uv_queue_work(ms->loop, &j->work, model_store__work, model_store__after);
  if (rc != 0) {
    free(j->path);
    free(j);
    return recd_errf(errbuf, RECD_EIO, "cannot start reload: %s", uv_strerror(rc));
  }
  ms->reloading = 1;
  log_notice("reloading model from %s", p);
  return 0;
}

void model_store_get_stats(const model_store_t *ms, model_store_stats_t *out) {
  out->reloads_ok = ms->reloads_ok;
  out->reloads_failed = ms->reloads_failed;
  out->last_reload_error = ms->last_reload_error;
  out->unavailable =
      ms->unavail != NULL && ms->unavail->for_model == ms->current ? ms->unavail->n_set : 0;
}
