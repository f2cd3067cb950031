/* model_cmd.c - MODEL INFO | RELOAD | ROLLBACK | PIN | UNPIN | CATEGORIES.
 *
 *   MODEL INFO [variant]
 *   MODEL RELOAD [variant] [path]     (path relative to models-dir)
 *   MODEL ROLLBACK [variant] [version]
 *   MODEL PIN [variant] [version]
 *   MODEL UNPIN [variant]
 *   MODEL CATEGORIES [variant]
 *
 * Without a variant each acts on the control (the first variant; the only
 * one without `variant` lines). A single optional argument is a variant
 * when one has that name, else the path (RELOAD) or version (ROLLBACK,
 * PIN) for the control, as MODEL RELOAD was before variants existed.
 * What a load means for later reloads (model_store.h): RELOAD <path> and
 * ROLLBACK serve until the next plain reload (SIGHUP, a publish) loads the
 * configured model again; PIN holds until UNPIN.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "model_store.h"
#include "variants.h"

#define MODEL_CMD_USAGE                                                                      \
  "(MODEL INFO [variant] | MODEL RELOAD [variant] [path] | MODEL ROLLBACK [variant] "       \
  "[version] | MODEL PIN [variant] [version] | MODEL UNPIN [variant] | MODEL CATEGORIES "    \
  "[variant])"

/* Items without a category: MODEL INFO uncategorized_items. */
static uint32_t model_cmd__uncategorized(const model_t *m) {
  const uint32_t *cat = model_item_categories(m);
  uint32_t n = 0;
  for (uint32_t i = 0; i < model_n_items(m); i++)
    n += cat == NULL || cat[i] == MODEL_NO_CATEGORY;
  return n;
}

/* A flat array of field, value pairs (like CONFIG GET); kept_versions is a
 * nested array (newest first). */
static void model_cmd__info(const variant_t *var, reply_buf_t *r) {
  const served_t *sv = model_store_current(var->store);
  const model_t *m = sv->m;
  const model_meta_t *meta = model_meta(m);
  const params_t *p = model_params(m);
  char v[160], err[RECD_ERRLEN];
  kept_list_t kept = {0};
  /* An unreadable models directory is shown as no kept version, not as an
   * error: INFO must answer whatever the disk does. */
  if (model_store_versions(var->store, &kept, err) != 0)
    kept.n = 0;
  const int pinned = model_store_pinned(var->store);
  reply_array(r, 2 * 27);
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
  /* How it was trained, and whether it is the popularity fallback. */
  KV_STR("serves", model_serves_name(meta->serves));
  KV_STR("eval_split", model_split_name(meta->eval_split));
  KV_FMT("half_life_days", "%g", meta->half_life_days);
  KV_FMT("tuned_at", "%lld", (long long)meta->tuned_at);
  KV_STR("variant", var->name);
  KV_FMT("percent", "%u", var->percent);
  KV_STR("first_pass", serve_pass_name(&sv->sm));
  KV_STR("file", sv->file);
  KV_STR("file_version", sv->file_version);
  KV_STR("pinned", pinned ? "yes" : "no");
  /* What SIGHUP and a plain MODEL RELOAD load next. */
  KV_STR("next_reload", pinned ? "none (pinned)" : model_store_model_path(var->store));
  KV_FMT("uncategorized_items", "%u", model_cmd__uncategorized(m));
  reply_bulk_cstr(r, "kept_versions");
  reply_array(r, kept.n);
  for (size_t i = kept.n; i-- > 0;)
    reply_bulk_cstr(r, kept.v[i]);
  kept_list_free(&kept);
#undef KV_STR
#undef KV_FMT
}

typedef struct cat_count {
  const char *name;
  size_t len;
  uint32_t count;
} cat_count_t;

static int model_cmd__cat_cmp(const void *a, const void *b) {
  const cat_count_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* name, count, name, count ...: every category of the model, sorted by
 * name (bytewise), with its number of items. Items without a category are
 * not a category: MODEL INFO uncategorized_items counts them. */
static int model_cmd__categories(const variant_t *var, reply_buf_t *r) {
  const model_t *m = model_store_current(var->store)->m;
  const uint32_t nc = model_n_categories(m), n = model_n_items(m);
  const uint32_t *cat = model_item_categories(m);
  cat_count_t *c = calloc(nc ? nc : 1, sizeof *c);
  if (c == NULL)
    return -1;
  for (uint32_t j = 0; j < nc; j++)
    c[j].name = model_category_name(m, j + 1, &c[j].len);
  for (uint32_t i = 0; cat != NULL && i < n; i++)
    if (cat[i] != MODEL_NO_CATEGORY && cat[i] <= nc)
      c[cat[i] - 1].count++;
  qsort(c, nc, sizeof *c, model_cmd__cat_cmp);
  reply_array(r, 2 * (size_t)nc);
  for (uint32_t j = 0; j < nc; j++) {
    reply_bulk(r, c[j].name, c[j].len);
    reply_int(r, c[j].count);
  }
  free(c);
  return 0;
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

typedef enum { SUB_INFO, SUB_RELOAD, SUB_ROLLBACK, SUB_PIN, SUB_UNPIN, SUB_CATEGORIES } sub_t;

static const struct {
  const char *name;
  sub_t sub;
  int max_args; /* after the subcommand */
} model_cmd__subs[] = {
    {"info", SUB_INFO, 1},          {"reload", SUB_RELOAD, 2}, {"rollback", SUB_ROLLBACK, 2},
    {"pin", SUB_PIN, 2},            {"unpin", SUB_UNPIN, 1},   {"categories", SUB_CATEGORIES, 1},
};

void model_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  server_t *s = c->srv;
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  int sub = -1;
  for (size_t i = 0; i < sizeof model_cmd__subs / sizeof model_cmd__subs[0]; i++)
    if (strcasecmp(a->argv[1], model_cmd__subs[i].name) == 0 &&
        a->argc - 2 <= (size_t)model_cmd__subs[i].max_args)
      sub = (int)model_cmd__subs[i].sub;
  if (sub < 0) {
    model_cmd__fail(r, "unknown MODEL subcommand or wrong number of arguments " MODEL_CMD_USAGE);
    return;
  }
  /* [variant] [operand]: one argument is a variant if one has that name,
   * else the operand (when the subcommand takes one). */
  const int takes_operand = sub == SUB_RELOAD || sub == SUB_ROLLBACK || sub == SUB_PIN;
  variant_t *var = variants_control(s->variants);
  const char *operand = NULL;
  size_t operand_len = 0;
  if (a->argc >= 3) {
    variant_t *named = variants_find(s->variants, a->argv[2], a->argvlen[2]);
    if (named != NULL) {
      var = named;
    } else if (!takes_operand || a->argc == 4) {
      char err[RECD_ERRLEN];
      variants_unknown(s->variants, "variant", a->argv[2], a->argvlen[2], err);
      reply_error(&r->reply, err);
      req_finish(r, 1);
      return;
    } else {
      operand = a->argv[2]; /* the control's */
      operand_len = a->argvlen[2];
    }
    if (a->argc == 4) {
      operand = a->argv[3];
      operand_len = a->argvlen[3];
    }
  }
  switch ((sub_t)sub) {
  case SUB_INFO:
    model_cmd__info(var, &r->reply);
    req_finish(r, 0);
    return;
  case SUB_CATEGORIES:
    if (model_cmd__categories(var, &r->reply) != 0) {
      model_cmd__fail(r, "out of memory");
      return;
    }
    req_finish(r, 0);
    return;
  case SUB_UNPIN: {
    const served_t *sv = model_store_current(var->store);
    char msg[RECD_ERRLEN + 2 * 4096];
    if (model_store_unpin(var->store))
      snprintf(msg, sizeof msg, "OK unpinned: still serving %s (%s); the next publish, SIGHUP or "
               "MODEL RELOAD serves %s", sv->file_version, sv->file,
               model_store_model_path(var->store));
    else
      snprintf(msg, sizeof msg, "OK not pinned: serving %s (%s)", sv->file_version, sv->file);
    reply_simple(&r->reply, msg);
    req_finish(r, 0);
    return;
  }
  default:
    break;
  }
  if (operand != NULL && memchr(operand, '\0', operand_len) != NULL) {
    model_cmd__fail(r, sub == SUB_RELOAD ? "model path contains a NUL byte"
                                         : "model version contains a NUL byte");
    return;
  }
  char err[RECD_ERRLEN];
  req_hold(r); /* the reload's */
  int rc = sub == SUB_RELOAD     ? model_store_reload(var->store, operand, model_cmd__reload_done,
                                                      r, err)
           : sub == SUB_ROLLBACK ? model_store_rollback(var->store, operand,
                                                        model_cmd__reload_done, r, err)
                                 : model_store_pin(var->store, operand, model_cmd__reload_done,
                                                   r, err);
  if (rc != 0) {
    req_release(r);
    reply_errorf(&r->reply, "%s", err);
    req_finish(r, 1);
  }
}
