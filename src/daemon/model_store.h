/* model_store.h - the model being served: initial load, hot reload, and the
 * unavailable-items bitmap that goes with it.
 *
 * One hold/release rule: a request takes a model_ref_t when it starts
 * (model_store_hold) and gives it back when it ends (model_ref_release).
 * The reference pins both the served model and the unavailable set of that
 * model, so a reload or a refresh of the set never changes either under a
 * request in flight; the old model is unmapped when its last reference
 * goes. Everything here runs on the loop thread, except the loading and
 * validation of a new file, which a reload does on libuv's thread pool
 * (a 1M-item model takes ~0.5 s to validate: far too long for the loop).
 */
#ifndef RECD_DAEMON_MODEL_STORE_H
#define RECD_DAEMON_MODEL_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "recd/err.h"
#include "recd/model.h"
#include "recd/serve.h"
#include "recd/versions.h"

/* A loaded model and what is derived from it once (serve.h). */
typedef struct served {
  unsigned refs;       /* loop thread only */
  model_t *m;
  serve_model_t sm;    /* m as served: popularity scale, first pass, int8 copy */
  uint64_t version;    /* 1, 2, ... per successful load */
  char *path;          /* as loaded (the configured `model`, or a path
                          MODEL RELOAD / ROLLBACK / PIN resolved) */
  char *file;          /* path after symlinks (realpath at load) */
  char file_version[KEPT_VERSION_LEN + 1]; /* the kept version it is: from
                          its name when it is <stem>.<version>.bin, else
                          the version its created-at would have */
  int64_t loaded_at;   /* unix seconds */
} served_t;

/* Unavailable items as a bitmap over one model's items. */
typedef struct bits {
  unsigned refs;
  const served_t *for_model; /* the model whose indices the bits use */
  size_t n_set;
  uint64_t words[];
} bits_t;

/* What a request holds: a model and the unavailable set that goes with it. */
typedef struct model_ref {
  served_t *sv;
  bits_t *unavail; /* NULL: nothing unavailable */
} model_ref_t;

typedef struct model_store model_store_t;

typedef struct model_store_opts {
  const char *model;      /* path of the model file */
  const char *models_dir; /* MODEL RELOAD <path> must be inside; "" or NULL:
                             the configured model's directory */
  serve_opts_t serve;     /* how models are served (first pass) */
} model_store_opts_t;

/* Loads and validates o->model. 0, or an error with a message naming the
 * file in errbuf (RECD_ERRLEN). */
int model_store_open(uv_loop_t *loop, const model_store_opts_t *o, model_store_t **out,
                     char *errbuf);
/* Frees the store once no reload is running (call after the loop has run
 * its reload callbacks); models still held by requests stay alive until
 * released. */
void model_store_free(model_store_t *ms);

/* The current model, borrowed: valid until the next return to the loop. */
const served_t *model_store_current(const model_store_t *ms);
/* The current model and unavailable set, held until model_ref_release(). */
void model_store_hold(model_store_t *ms, model_ref_t *out);
void model_ref_release(model_ref_t *r);

/* A reload's outcome, on the loop thread: status 0 or RECD_E*, and a
 * message ("OK model version 3, 3706 items" or why not). */
typedef void (*model_reload_cb)(int status, const char *msg, void *arg);
/* Starts loading a model on the thread pool. path NULL (SIGHUP, a plain
 * MODEL RELOAD): the configured `model` again, whatever was loaded since
 * (a publish replaces it, and an earlier MODEL RELOAD <path> or ROLLBACK
 * does not stick), refused while pinned. A path given by a client is
 * relative to models-dir (absolute ones are taken as they are) and must
 * resolve inside it; it serves until the next plain reload. 0 (done() is
 * called later, exactly once) or an error in errbuf (done() is not
 * called): RECD_EINVAL (a reload already running, pinned, a path outside
 * models-dir), RECD_ENOTFOUND (no such path), RECD_ENOMEM. */
int model_store_reload(model_store_t *ms, const char *path, model_reload_cb done, void *arg,
                       char *errbuf);
int model_store_reloading(const model_store_t *ms);

/* Kept versions (recd/versions.h): models-dir/<stem>.<version>.bin, stem
 * from the configured model's file name ("model" for model.bin), as
 * `recd-train --keep` publishes them. */
/* The kept versions, oldest first. 0 or an error in errbuf. */
int model_store_versions(const model_store_t *ms, kept_list_t *out, char *errbuf);
/* Serves a kept version, NULL: the newest one older than the served one.
 * Not pinned: the next plain reload (SIGHUP, a publish) serves the
 * configured model again. Refused while pinned. As model_store_reload. */
int model_store_rollback(model_store_t *ms, const char *version, model_reload_cb done,
                         void *arg, char *errbuf);
/* Pins a kept version (loaded first; pinned only once it serves), NULL:
 * the served model, at once (then done() is called before returning).
 * While pinned, plain reloads (SIGHUP, MODEL RELOAD) and rollbacks are
 * refused, so the nightly publish cannot replace it. As
 * model_store_reload. */
int model_store_pin(model_store_t *ms, const char *version, model_reload_cb done, void *arg,
                    char *errbuf);
/* Unpins; nothing is loaded (the next plain reload serves the configured
 * model). 1 if it was pinned, else 0. */
int model_store_unpin(model_store_t *ms);
int model_store_pinned(const model_store_t *ms);
/* The configured model's path (what a plain reload loads). */
const char *model_store_model_path(const model_store_t *ms);

/* Replaces the unavailable set (ids as read from Redis). The previous set
 * stays when memory runs out (logged). */
void model_store_set_unavailable(model_store_t *ms, const char *const *ids, const size_t *lens,
                                 size_t n);

typedef struct model_store_stats {
  uint64_t reloads_ok, reloads_failed;
  const char *last_reload_error; /* "" when none */
  size_t unavailable;            /* items of the current model in the set */
} model_store_stats_t;
void model_store_get_stats(const model_store_t *ms, model_store_stats_t *out);

#endif
