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
 * SIMILAR needs no Redis. On a model served with the int8 pass (20,000
 * items and more) it goes through the micro-batcher like RECOMMEND
 * (batch.h): the int8 scan of the normalised items with its proven bound,
 * batched with the other SIMILARs waiting and split over the workers on
 * large catalogues, then the exact cosines of the candidates (serve.h,
 * serve_batch_new_similar). On the float pass it is one sgemv over the
 * item matrix and the same exact selection (rec_similar_q): inline on the
 * loop for small catalogues, on the thread pool above
 * SIMILAR_OFFLOAD_ITEMS. Both give the same answer, bit for bit.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "batch.h"
#include "commands.h"
#include "model_store.h"
#include "reco.h"
#include "similar.h"
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
  batch_item_t bi;  /* the int8 pass: the micro-batcher's item */
  similar_answer_t ans;
} similar_ctx_t;

void similar_answer_keep(similar_answer_t *a, const rec_result_t *res, size_t skip) {
  if (skip > res->n)
    skip = res->n;
  const size_t n = res->n - skip;
  a->n = n;
  a->items = malloc((n ? n : 1) * sizeof *a->items);
  a->scores = malloc((n ? n : 1) * sizeof *a->scores);
  if (a->items == NULL || a->scores == NULL) {
    a->rc = RECD_ENOMEM;
    return;
  }
  a->rc = 0;
  if (n > 0) {
    memcpy(a->items, res->items + skip, n * sizeof *a->items);
    memcpy(a->scores, res->scores + skip, n * sizeof *a->scores);
  }
}

void similar_answer_reply(reply_buf_t *r, const model_t *m, const similar_answer_t *a,
                          int withscores, const char *meta_kind, const char *meta_reason,
                          const char *variant, const char *version) {
  reply_array(r, a->n * (withscores ? 2 : 1) + (meta_kind != NULL));
  if (meta_kind != NULL)
    reco_reply_meta(r, meta_kind, meta_reason, variant, version, m);
  for (size_t j = 0; j < a->n; j++) {
    size_t len;
    const char *id = model_item_id(m, a->items[j], &len);
    reply_bulk(r, id, len);
    if (withscores)
      reply_float(r, a->scores[j]);
  }
}

int similar_batched(server_t *s, const served_t *sv) {
  return s->batcher != NULL && sv->sm.pass == SERVE_PASS_INT8;
}

similar_answer_t similar_answer_view(const serve_answer_t *a) {
  return (similar_answer_t){.rc = a->rc, .n = a->rc == 0 ? a->n : 0, .items = a->items,
                            .scores = a->scores};
}

void similar_answer_free(similar_answer_t *a) {
  free(a->items);
  free(a->scores);
  a->items = NULL;
  a->scores = NULL;
}

static void similar__free(void *p) {
  similar_ctx_t *x = p;
  model_ref_release(&x->ref);
  reco_opts_free(&x->o);
  similar_answer_free(&x->ans);
  free(x);
}

static void similar__compute(similar_ctx_t *x, rec_ws_t *ws) {
  rec_result_t res;
  if (x->filtered)
    x->ans.rc = rec_similar_q(x->ref.sv->m, x->item, &x->q, ws, &res);
  else
    x->ans.rc = rec_similar(x->ref.sv->m, x->item, x->offset + x->count,
                            x->ref.unavail ? x->ref.unavail->words : NULL, ws, &res);
  /* res points into ws: copied out before ws is reused or freed. OFFSET
   * (rec_similar): the top offset + count, less the first offset. */
  if (x->ans.rc == 0)
    similar_answer_keep(&x->ans, &res, x->filtered ? 0 : x->offset);
}

static void similar__reply(similar_ctx_t *x) {
  reply_buf_t *r = &x->req->reply;
  if (x->ans.rc != 0) {
    reply_reset(r);
    reply_error(r, "out of memory");
    req_finish(x->req, 1);
    return;
  }
  similar_answer_reply(r, x->ref.sv->m, &x->ans, x->withscores, x->withmeta ? "similar" : NULL,
                       "", x->var->name, x->ref.sv->file_version);
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
    x->ans.rc = RECD_EINVAL;
  similar__reply(x);
  req_release(x->req); /* the work's hold */
}

/* The batcher answered (loop thread). */
static void similar__batch_done(batch_item_t *it, const serve_answer_t *a) {
  similar_ctx_t *x = (similar_ctx_t *)((char *)it - offsetof(similar_ctx_t, bi));
  const client_t *c = req_owner(x->req);
  if (c == NULL || client_gone(c)) {
    req_finish(x->req, 0); /* nobody to answer */
  } else if (a->rc != 0) {
    reply_reset(&x->req->reply);
    reply_error(&x->req->reply, "out of memory");
    req_finish(x->req, 1);
  } else {
    const similar_answer_t view = similar_answer_view(a);
    similar_answer_reply(&x->req->reply, x->ref.sv->m, &view, x->withscores,
                         x->withmeta ? "similar" : NULL, "", x->var->name,
                         x->ref.sv->file_version);
    req_finish(x->req, 0);
  }
  req_release(x->req); /* the batcher's hold */
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
    variants_unknown(s->variants, "VARIANT", o->variant, o->variant_len, err);
    similar__fail(r, err);
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
  if (similar_batched(s, x->ref.sv)) {
    x->bi = (batch_item_t){.model = &x->ref.sv->sm, .q = &x->q, .similar = 1,
                           .item = x->item, .done = similar__batch_done};
    req_hold(r); /* the batcher's */
    batcher_submit(s->batcher, &x->bi);
    return;
  }
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
