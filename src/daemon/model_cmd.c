/* model_cmd.c - MODEL INFO [variant] | MODEL RELOAD [variant] [path].
 *
 * Without a variant both act on the control (the first variant; the only
 * one without `variant` lines). MODEL RELOAD's single argument is a
 * variant when one has that name, else a path for the control (what it
 * was before variants existed); a path must resolve inside models-dir.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "model_store.h"
#include "variants.h"

/* A flat array of field, value pairs (like CONFIG GET). */
static void model_cmd__info(const variant_t *var, reply_buf_t *r) {
  const served_t *sv = model_store_current(var->store);
  const model_t *m = sv->m;
  const model_meta_t *meta = model_meta(m);
  const params_t *p = model_params(m);
  char v[160];
  reply_array(r, 2 * 17);
#define KV_STR(k, val) (reply_bulk_cstr(r, k), reply_bulk_cstr(r, val))
#define KV_FMT(k, ...) (snprintf(v, sizeof v, __VA_ARGS__), KV_STR(k, v))
  KV_STR("path", sv->path);
  KV_FMT("version", "%llu", (unsigned long long)sv->version);
  KV_FMT("loaded_at", "%lld", (long long)sv->loaded_at);
  KV_FMT("created_at", "%lld", (long long)meta->created_at);
  KV_FMT("items", "%u", model_n_items(m));
  KV_FMT("factors", "%u", model_factors(m));
  KV_FMT("categories", "%u", model_n_categories(m));
  KV_FMT("checksum", "%08x", model_checksum(m));
  KV_FMT("file_bytes", "%zu", model_file_size(m));
  KV_FMT("users_trained", "%llu", (unsigned long long)meta->n_users);
  KV_FMT("interactions_trained", "%llu", (unsigned long long)meta->n_interactions);
  KV_FMT("holdout_ndcg@10", "%.6f", meta->model.ndcg);
  KV_FMT("holdout_popularity_ndcg@10", "%.6f", meta->popularity.ndcg);
  KV_FMT("params", "factors=%u lambda=%g alpha=%g confidence=%s", p->factors, (double)p->lambda,
         (double)p->alpha, p->conf_mode == PARAMS_CONF_LOG ? "log" : "linear");
  KV_STR("variant", var->name);
  KV_FMT("percent", "%u", var->percent);
  KV_STR("first_pass", serve_pass_name(&sv->sm));
#undef KV_STR
#undef KV_FMT
}

static void model_cmd__reload_done(int status, const char *msg, void *arg) {
  req_t *r = arg;
  if (status == 0)
    reply_simple(&r->reply, msg);
  else
    reply_errorf(&r->reply, "%s", msg);
  req_finish(r, status != 0);
  req_release(r); /* the reload's hold */
}

static void model_cmd__fail(req_t *r, const char *msg) {
  reply_error(&r->reply, msg);
  req_finish(r, 1);
}

void model_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  server_t *s = c->srv;
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  const int info = strcasecmp(a->argv[1], "info") == 0 && a->argc <= 3;
  const int reload = strcasecmp(a->argv[1], "reload") == 0 && a->argc <= 4;
  if (!info && !reload) {
    model_cmd__fail(r, "unknown MODEL subcommand or wrong number of arguments "
                       "(MODEL INFO [variant] | MODEL RELOAD [variant] [path])");
    return;
  }
  variant_t *var = variants_control(s->variants);
  const char *path = NULL;
  if (a->argc >= 3) {
    variant_t *named = variants_find(s->variants, a->argv[2], a->argvlen[2]);
    if (named != NULL)
      var = named;
    else if (info || a->argc == 4) {
      char names[EXP_MAX_VARIANTS * (EXP_NAME_MAX + 2)];
      variants_list(s->variants, names, sizeof names);
      reply_errorf(&r->reply, "unknown variant '%.*s' (variants: %s)",
                   (int)(a->argvlen[2] > 64 ? 64 : a->argvlen[2]), a->argv[2], names);
      req_finish(r, 1);
      return;
    } else {
      path = a->argv[2]; /* MODEL RELOAD <path>: the control's */
    }
    if (a->argc == 4)
      path = a->argv[3];
  }
  if (info) {
    model_cmd__info(var, &r->reply);
    req_finish(r, 0);
    return;
  }
  if (path != NULL && memchr(path, '\0', a->argvlen[a->argc - 1]) != NULL) {
    model_cmd__fail(r, "model path contains a NUL byte");
    return;
  }
  char err[RECD_ERRLEN];
  req_hold(r); /* the reload's */
  if (model_store_reload(var->store, path, model_cmd__reload_done, r, err) != 0) {
    req_release(r);
    reply_errorf(&r->reply, "%s", err);
    req_finish(r, 1);
  }
}
