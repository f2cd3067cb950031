/* model_store.c - the served model: initial load, hot reload, and the
 * unavailable-items bitmap that goes with it.
 *
 * A reload maps and validates the new file on libuv's thread pool (a 1M
 * item model takes ~0.5 s to validate, far too long for the loop), then
 * swaps the pointer on the loop thread. Requests in flight keep a reference
 * to the model they started with, so they finish on it; the old model is
 * unmapped when its last request ends. A file that fails validation never
 * replaces the current model.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "server.h"

/* Catalogue size from which the int8 first pass is used (see below). */
#define MODEL_STORE_QSCORE_ITEMS 20000u

served_t *served_ref(served_t *s) {
  s->refs++;
  return s;
}

void served_unref(served_t *s) {
  if (--s->refs > 0)
    return;
  if (s->have_q)
    qmat_free(&s->q);
  model_free(s->m);
  free(s->path);
  free(s);
}

bits_t *bits_ref(bits_t *b) {
  b->refs++;
  return b;
}

void bits_unref(bits_t *b) {
  if (--b->refs == 0)
    free(b);
}

/* Loads and validates `path` into a new served_t (refs = 1). Thread-safe:
 * touches nothing shared. */
static int model_store__open(const char *path, served_t **out, char *errbuf) {
  served_t *sv = calloc(1, sizeof *sv);
  if (sv == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  int rc = model_load(&sv->m, path, errbuf);
  if (rc != 0) {
    free(sv);
    return rc;
  }
  sv->path = strdup(path);
  if (sv->path == NULL) {
    model_free(sv->m);
    free(sv);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  sv->refs = 1;
  sv->loaded_at = (int64_t)time(NULL);
  sv->pop_scale = rec_popularity_scale(sv->m);
  /* Below this size the float matrix stays in cache and sgemv is about as
   * fast; above, the fused int8 scan (a quarter of the bytes, ~+30% memory
   * at k = 64) is 3-4x faster per customer (0.25 vs 1.9 ms at 100k items,
   * k = 64, bench/README.md) with the same answers. Without AVX2 the
   * batcher keeps the float path (the portable kernel is slower than
   * sgemv), so the copy would only cost memory. */
  if (model_n_items(sv->m) >= MODEL_STORE_QSCORE_ITEMS && qscore_isa_default() != QSCORE_SCALAR) {
    if (qmat_build(&sv->q, model_item_factors(sv->m), model_stride(sv->m), model_n_items(sv->m),
                   model_factors(sv->m)) == 0)
      sv->have_q = 1;
  }
  *out = sv;
  return 0;
}

/* Rebuilds the unavailable bitmap for the current model from the last set
 * read from Redis. A new object each time: requests on the thread pool may
 * still read the old one. */
static void model_store__rebuild_bits(server_t *s) {
  const model_t *m = s->model->m;
  size_t words = (model_n_items(m) + 63) / 64;
  bits_t *b = calloc(1, sizeof *b + words * sizeof(uint64_t));
  if (b == NULL) {
    log_warning("out of memory rebuilding the unavailable set; keeping the previous one");
    return;
  }
  b->refs = 1;
  b->for_model = s->model;
  for (size_t j = 0; j < s->n_unavail_ids; j++) {
    int64_t i = model_find_item(m, s->unavail_ids[j], s->unavail_lens[j]);
    if (i >= 0 && !(b->words[i / 64] & (1ull << (i % 64)))) {
      b->words[i / 64] |= 1ull << (i % 64);
      b->n_set++;
    }
  }
  if (s->unavail)
    bits_unref(s->unavail);
  s->unavail = b;
}

static void model_store__install(server_t *s, served_t *sv) {
  sv->version = ++s->next_model_version;
  if (s->model)
    served_unref(s->model);
  s->model = sv;
  model_store__rebuild_bits(s);
  const model_t *m = sv->m;
  log_notice("model %s loaded: version %llu, %u items, k=%u, %u categories, checksum %08x",
             sv->path, (unsigned long long)sv->version, model_n_items(m), model_factors(m),
             model_n_categories(m), model_checksum(m));
}

int model_store_load_initial(server_t *s, char *errbuf) {
  if (s->cfg->model[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL, "no model configured (set `model` in the config "
                                          "file or pass --model PATH)");
  served_t *sv = NULL;
  int rc = model_store__open(s->cfg->model, &sv, errbuf);
  if (rc != 0)
    return rc;
  model_store__install(s, sv);
  return 0;
}

void model_store_set_unavailable(server_t *s, const char *const *ids, const size_t *lens,
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
  for (size_t j = 0; j < s->n_unavail_ids; j++)
    free(s->unavail_ids[j]);
  free(s->unavail_ids);
  free(s->unavail_lens);
  s->unavail_ids = copy;
  s->unavail_lens = clens;
  s->n_unavail_ids = n;
  model_store__rebuild_bits(s);
}

typedef struct reload_job {
  uv_work_t work;
  server_t *srv;
  char *path;
  served_t *result;
  int rc;
  char err[RECD_ERRLEN];
  model_reload_cb done;
  void *arg;
} reload_job_t;

static void model_store__work(uv_work_t *w) {
  reload_job_t *j = w->data;
  j->rc = model_store__open(j->path, &j->result, j->err);
}

static void model_store__after(uv_work_t *w, int status) {
  reload_job_t *j = w->data;
  server_t *s = j->srv;
  s->reloading = 0;
  char msg[RECD_ERRLEN + 64];
  if (status != 0 && j->rc == 0) {
    j->rc = RECD_EINVAL;
    snprintf(j->err, sizeof j->err, "reload cancelled");
  }
  if (j->rc == 0) {
    model_store__install(s, j->result);
    s->reloads_ok++;
    snprintf(msg, sizeof msg, "OK model version %llu, %u items",
             (unsigned long long)s->model->version, model_n_items(s->model->m));
  } else {
    s->reloads_failed++;
    snprintf(s->last_reload_error, sizeof s->last_reload_error, "%s", j->err);
    snprintf(msg, sizeof msg, "model not reloaded, still serving version %llu: %s",
             (unsigned long long)s->model->version, j->err);
    log_warning("%s", msg);
  }
  if (j->done)
    j->done(s, j->rc, msg, j->arg);
  free(j->path);
  free(j);
}

/* MODEL RELOAD <path> may only load from models-dir (default: the
 * directory of the configured model): a client must not be able to make
 * the daemon open arbitrary files. Both sides are resolved with realpath()
 * so that "../" and symlinks cannot escape. */
static int model_store__allowed(server_t *s, const char *path, char *errbuf) {
  char dir[PATH_MAX], real[PATH_MAX];
  const char *base = s->cfg->models_dir;
  char tmp[PATH_MAX];
  if (base[0] == '\0') {
    snprintf(tmp, sizeof tmp, "%s", s->cfg->model);
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

int model_store_reload(server_t *s, const char *path, model_reload_cb done, void *arg,
                       char *errbuf) {
  if (s->reloading)
    return recd_errf(errbuf, RECD_EINVAL, "a model reload is already in progress");
  if (path != NULL && model_store__allowed(s, path, errbuf) != 0)
    return RECD_EINVAL;
  reload_job_t *j = calloc(1, sizeof *j);
  if (j == NULL || (j->path = strdup(path ? path : s->model->path)) == NULL) {
    free(j);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  j->srv = s;
  j->done = done;
  j->arg = arg;
  j->work.data = j;
  int rc = uv_queue_work(s->loop, &j->work, model_store__work, model_store__after);
  if (rc != 0) {
    free(j->path);
    free(j);
    return recd_errf(errbuf, RECD_EIO, "cannot start reload: %s", uv_strerror(rc));
  }
  s->reloading = 1;
  log_notice("reloading model from %s", path ? path : s->model->path);
  return 0;
}

void model_store_shutdown(server_t *s) {
  if (s->unavail)
    bits_unref(s->unavail);
  s->unavail = NULL;
  for (size_t j = 0; j < s->n_unavail_ids; j++)
    free(s->unavail_ids[j]);
  free(s->unavail_ids);
  free(s->unavail_lens);
  s->unavail_ids = NULL;
  s->n_unavail_ids = 0;
  if (s->model)
    served_unref(s->model);
  s->model = NULL;
}
