/* similar.c - SIMILAR <item> [COUNT n] [WITHSCORES] [PLACEMENT p]
 * [VARIANT v] [NOTRACK]: the items closest to one item by cosine of their
 * factors ("customers also bought"), with the control variant's model
 * unless VARIANT names another. It answers no customer, so it records no
 * impressions (PLACEMENT and NOTRACK are accepted for symmetry).
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
  size_t count;
  int withscores;
  uv_work_t work;
  int rc;           /* the answer: rc, then n items and scores */
  size_t n;
  uint32_t *items;
  float *scores;
} similar_ctx_t;

static void similar__free(void *p) {
  similar_ctx_t *x = p;
  model_ref_release(&x->ref);
  free(x->items);
  free(x->scores);
  free(x);
}

static void similar__compute(similar_ctx_t *x, rec_ws_t *ws) {
  rec_result_t res;
  x->rc = rec_similar(x->ref.sv->m, x->item, x->count,
                      x->ref.unavail ? x->ref.unavail->words : NULL, ws, &res);
  if (x->rc != 0)
    return;
  /* res points into ws: copy it out before ws is reused or freed. */
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
  reply_array(r, x->n * (x->withscores ? 2 : 1));
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

static int similar__eq(const resp_cmd_t *a, size_t i, const char *word) {
  return strlen(word) == a->argvlen[i] && strcasecmp(a->argv[i], word) == 0;
}

void similar_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  server_t *s = c->srv;
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  size_t count = 10;
  int withscores = 0;
  reco_opts_t common = {0};
  char err[RECD_ERRLEN];
  for (size_t i = 2; i < a->argc; i++) {
    uint64_t v;
    int c_rc = reco_parse_common(a, &i, &common, err);
    if (c_rc < 0) {
      reply_error(&r->reply, err);
      req_finish(r, 1);
      return;
    }
    if (c_rc > 0)
      continue;
    if (similar__eq(a, i, "COUNT") && i + 1 < a->argc) {
      i++;
      if (csv_parse_u64(a->argv[i], a->argvlen[i], &v) != 0 || v > (uint64_t)s->cfg->max_count) {
        reply_errorf(&r->reply, "COUNT must be an integer in [0, %d]", s->cfg->max_count);
        req_finish(r, 1);
        return;
      }
      count = (size_t)v;
    } else if (similar__eq(a, i, "WITHSCORES")) {
      withscores = 1;
    } else {
      reply_error(&r->reply, "syntax error");
      req_finish(r, 1);
      return;
    }
  }
  const variant_t *var = common.variant
                             ? variants_find(s->variants, common.variant, common.variant_len)
                             : variants_control(s->variants);
  if (var == NULL) {
    char names[EXP_MAX_VARIANTS * (EXP_NAME_MAX + 2)];
    variants_list(s->variants, names, sizeof names);
    reply_errorf(&r->reply, "unknown VARIANT '%.*s' (variants: %s)",
                 (int)(common.variant_len > 64 ? 64 : common.variant_len), common.variant, names);
    req_finish(r, 1);
    return;
  }
  const model_t *m = model_store_current(var->store)->m;
  int64_t item = model_find_item(m, a->argv[1], a->argvlen[1]);
  if (item < 0 || count == 0) {
    reply_array(&r->reply, 0); /* an unknown item is not an error */
    req_finish(r, 0);
    return;
  }
  similar_ctx_t *x = calloc(1, sizeof *x);
  if (x == NULL) {
    reply_error(&r->reply, "out of memory");
    req_finish(r, 1);
    return;
  }
  x->req = r;
  model_store_hold(var->store, &x->ref);
  x->item = (uint32_t)item;
  x->count = count;
  x->withscores = withscores;
  r->ctx = x;
  r->ctx_free = similar__free;
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
