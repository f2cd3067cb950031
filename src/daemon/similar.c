/* similar.c - SIMILAR <item> [COUNT n] [OFFSET m] [CATEGORY c]...
 * [MAXPERCATEGORY n] [FOR user] [WITHSCORES] [WITHMETA] [PLACEMENT p]
 * [VARIANT v] [NOTRACK] [EXCLUDE id ...] (grammar: reco_parse_similar):
 * the items closest to one item by cosine of their factors ("customers
 * also bought"), with the control variant's model unless VARIANT names
 * another. It answers no customer, so it records no impressions
 * (PLACEMENT and NOTRACK are accepted for symmetry). OFFSET pages through
 * the ranking. With CATEGORY, EXCLUDE or MAXPERCATEGORY the answer is
 * rec_similar_q's (the rules of recommend.h); without, rec_similar's, as
 * before. With FOR <user> the request goes to reco.c (reco_similar_for),
 * which reads the customer from Redis like RECOMMEND and applies their
 * filters (history, hidden items, removed categories, bought families),
 * answering with the customer's variant; a customer Redis cannot give in
 * time gets the answer without their filters, counted as degraded.
 *
 * SIMILAR needs no Redis. It is one pass over the item matrix: inline on
 * the loop for small catalogues, on the thread pool above
 * SIMILAR_OFFLOAD_ITEMS, where the pass (~1.7 ms at 100k items, k = 64)
 * would stall every other client.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "model_store.h"
#include "reco.h"
#include "recd/csv.h"
#include "variants.h"

#define SIMILAR_OFFLOAD_ITEMS 50000u

typedef struct similar_ctx {
  req_t *req;
  model_ref_t ref;
  uint32_t item;
  size_t count, offset;
  int withscores, withmeta;
  const variant_t *var;
  int filtered;     /* rec_similar_q with q */
  rec_query_t q;
  reco_opts_t o;    /* owns q's CATEGORY and EXCLUDE arrays */
  uv_work_t work;
  int rc;           /* the answer: rc, then n items and scores */
  size_t n;
  uint32_t *items;
  float *scores;
} similar_ctx_t;

static void similar__free(void *p) {
  similar_ctx_t *x = p;
  model_ref_release(&x->ref);
  reco_opts_free(&x->o);
  free(x->items);
  free(x->scores);
  free(x);
}

static void similar__compute(similar_ctx_t *x, rec_ws_t *ws) {
  rec_result_t res;
  if (x->filtered)
    x->rc = rec_similar_q(x->ref.sv->m, x->item, &x->q, ws, &res);
  else
    x->rc = rec_similar(x->ref.sv->m, x->item, x->offset + x->count,
                        x->ref.unavail ? x->ref.unavail->words : NULL, ws, &res);
  if (x->rc != 0)
    return;
  /* res points into ws: copy it out before ws is reused or freed. OFFSET
   * (rec_similar): the top offset + count, less the first offset. */
  const size_t skip = x->filtered ? 0 : res.n < x->offset ? res.n : x->offset;
  res.items += skip;
  res.scores += skip;
  res.n -= skip;
  x->n = res.n;
  x->items = malloc((res.n ? res.n : 1) * sizeof *x->items);
  x->scores = malloc((res.n ? res.n : 1) * sizeof *x->scores);
  if (x->items == NULL || x->scores == NULL) {
    x->rc = RECD_ENOMEM;
    return;
  }
  if (res.n > 0) {
    memcpy(x->items, res.items, res.n * sizeof *x->items);
    memcpy(x->scores, res.scores, res.n * sizeof *x->scores);
  }
}

static void similar__reply(similar_ctx_t *x) {
  reply_buf_t *r = &x->req->reply;
  if (x->rc != 0) {
    reply_reset(r);
    reply_error(r, "out of memory");
    req_finish(x->req, 1);
    return;
  }
  reply_array(r, x->n * (x->withscores ? 2 : 1) + (size_t)x->withmeta);
  if (x->withmeta)
    reco_reply_meta(r, "similar", "", x->var->name, x->ref.sv->file_version, x->ref.sv->m);
  for (size_t j = 0; j < x->n; j++) {
    size_t len;
    const char *id = model_item_id(x->ref.sv->m, x->items[j], &len);
    reply_bulk(r, id, len);
    if (x->withscores)
      reply_float(r, x->scores[j]);
  }
  req_finish(x->req, 0);
}

static void similar__work(uv_work_t *w) {
  similar_ctx_t *x = w->data;
  rec_ws_t ws;
  rec_ws_init(&ws);
  similar__compute(x, &ws);
  rec_ws_free(&ws);
}

static void similar__after(uv_work_t *w, int status) {
  similar_ctx_t *x = w->data;
  if (status != 0)
    x->rc = RECD_EINVAL;
  similar__reply(x);
  req_release(x->req); /* the work's hold */
}

static void similar__fail(req_t *r, const char *msg) {
  reply_error(&r->reply, msg);
  req_finish(r, 1);
}

void similar_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  server_t *s = c->srv;
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  similar_ctx_t *x = calloc(1, sizeof *x);
  if (x == NULL) {
    similar__fail(r, "out of memory");
    return;
  }
  x->req = r;
  r->ctx = x;
  r->ctx_free = similar__free;
  reco_opts_t *o = &x->o;
  char err[RECD_ERRLEN];
  if (reco_parse_similar(a, (size_t)s->cfg->max_count, o, err) != 0) {
    similar__fail(r, err);
    return;
  }
  if (o->user != NULL) {
    /* FOR <user>: the customer's filters need their Redis read, which
     * reco.c does (as for RECOMMEND); it takes the request over. */
    reco_opts_t moved = *o;
    memset(o, 0, sizeof *o);
    r->ctx = NULL;
    similar__free(x);
    reco_similar_for(r, s, &moved, a);
    return;
  }
  const variant_t *var = o->variant ? variants_find(s->variants, o->variant, o->variant_len)
                                    : variants_control(s->variants);
  if (var == NULL) {
    char names[EXP_MAX_VARIANTS * (EXP_NAME_MAX + 2)];
    variants_list(s->variants, names, sizeof names);
    reply_errorf(&r->reply, "unknown VARIANT '%.*s' (variants: %s)",
                 (int)(o->variant_len > 64 ? 64 : o->variant_len), o->variant, names);
    req_finish(r, 1);
    return;
  }
  x->var = var;
  /* The request answers with the model it resolved against. */
  model_store_hold(var->store, &x->ref);
  const model_t *m = x->ref.sv->m;
  if (reco_resolve(o, a, m, err) != 0) {
    similar__fail(r, err);
    return;
  }
  x->count = o->count;
  x->offset = o->offset;
  x->withscores = o->withscores;
  x->withmeta = o->withmeta;
  /* The cap is the request's: SIMILAR does not take the config's
   * max-per-category or one-per-group (a product page's neighbours are
   * not a home page's list). */
  const size_t cap = o->max_per_category >= 0 ? (size_t)o->max_per_category : 0;
  x->filtered = o->cat_filter || o->n_excl > 0 || cap > 0;
  x->q = (rec_query_t){.exclude = o->excl, .n_exclude = o->n_excl,
                       .categories = o->cats, .n_categories = o->n_cats,
                       .category_filter = o->cat_filter,
                       .unavailable = x->ref.unavail ? x->ref.unavail->words : NULL,
                       .offset = o->offset, .count = o->count,
                       .max_per_category = cap};
  const int64_t item = o->sim_item;
  if (item < 0 || x->count == 0) {
    /* an unknown item is not an error (WITHMETA says which it was) */
    reply_array(&r->reply, (size_t)x->withmeta);
    if (x->withmeta)
      reco_reply_meta(&r->reply, item < 0 ? "unknown_item" : "similar", "", var->name,
                      x->ref.sv->file_version, m);
    req_finish(r, 0);
    return;
  }
  x->item = (uint32_t)item;
  if (model_n_items(m) > SIMILAR_OFFLOAD_ITEMS) {
    x->work.data = x;
    req_hold(r);
    if (uv_queue_work(s->loop, &x->work, similar__work, similar__after) == 0)
      return;
    req_release(r);
  }
  similar__compute(x, &s->ws);
  similar__reply(x);
}
