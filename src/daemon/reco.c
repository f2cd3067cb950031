/* reco.c - RECOMMEND and RANK (see reco.h).
 *
 * A request reads the customer's history and preferences from Redis (one
 * pipelined round trip) under a deadline (deadline.h): when redis-timeout-ms
 * passes first, the customer gets the non-personalized answer (counted as
 * degraded) and the late Redis reply is ignored. RECOMMEND is then answered
 * on libuv's thread pool through the micro-batcher (batch.c), so the loop
 * only parses, reads Redis and writes replies; RANK scores just its
 * candidates and stays on the loop.
 */
#include "reco.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "batch.h"
#include "commands.h"
#include "deadline.h"
#include "itemset.h"
#include "log.h"
#include "model_store.h"
#include "rclient.h"
#include "similar.h"
#include "recd/age.h"
#include "recd/csv.h"
#include "tracking.h"
#include "variants.h"

/* History entries read per request: the strongest history-limit feed the
 * fold-in, and up to this many are excluded from the answer. A customer
 * with more distinct past items may see one of the weakest again. */
#define RECO_MIN_FETCH 2000u

_Static_assert(RCLIENT_NO_TIME == AGE_NO_TIME, "an untimed history entry is age.h's");

/* ---- requests ------------------------------------------------------------ */

/* SIMILAR ... FOR <user> comes here from similar.c: the customer's
 * filters need their Redis read, which is this file's. */
typedef enum { RECO_RECOMMEND, RECO_RANK, RECO_SIMILAR } reco_kind_t;

typedef struct reco_ctx {
  req_t *req;
  server_t *srv;
  reco_kind_t kind;
  const variant_t *variant; /* the customer's (or the forced one) */
  model_ref_t ref;          /* its model when this request started */
  reco_opts_t o;
  char *user;               /* copies of what outlives the command's argv */
  char *cand_buf;           /* RANK: the candidate ids, back to back */
  size_t *cand_off;
  deadline_t dl;            /* redis-timeout-ms */
  /* the query, from the options and the customer read from Redis */
  rec_query_t q;
  batch_item_t bi;          /* RECOMMEND, and SIMILAR FOR on the int8 pass:
                               the micro-batcher's item */
  uint32_t *hist;
  float *hist_w;
  size_t n_hist;
  uint32_t *pref_cat;
  float *pref_val;
  size_t n_pref;
  uint32_t *hidden;         /* the hidden set, model indices */
  size_t n_hidden;
  uint32_t *excl;           /* EXCLUDE ids, HISTORY items and the items shown
                               too often (SHOWNLIMIT) */
  size_t n_excl;
  itemset_bits_t *promoted; /* held for the batch (PROMOTE) */
  uv_work_t work;           /* SIMILAR FOR on the thread pool */
  similar_answer_t sim;     /* its answer */
  int deg;                  /* degraded: 1 + traps_degraded_t; 0 = not */
  size_t stored_n;          /* history entries read from Redis (WITHMETA) */
} reco_ctx_t;

static void reco__ctx_free(void *p) {
  reco_ctx_t *x = p;
  model_ref_release(&x->ref);
  reco_opts_free(&x->o);
  free(x->user);
  free(x->cand_buf);
  free(x->cand_off);
  free(x->hist);
  free(x->hist_w);
  free(x->pref_cat);
  free(x->pref_val);
  free(x->hidden);
  free(x->excl);
  similar_answer_free(&x->sim);
  itemset_bits_release(x->promoted);
  free(x);
}

static void reco__fail(req_t *r, const char *msg) {
  reply_reset(&r->reply);
  reply_error(&r->reply, msg);
  req_finish(r, 1);
}

/* Nobody to answer: the client left (or was cut off at its output limit)
 * while the request waited. Formatting up to max-count ids and scores for
 * nobody would only steal loop time from the clients still here. */
static int reco__nobody(const req_t *r) {
  const client_t *c = req_owner(r);
  return c == NULL || client_gone(c);
}

/* A degraded answer: counted by cause (INFO, /metrics) and remembered for
 * WITHMETA. */
static void reco__degraded(reco_ctx_t *x, traps_degraded_t cause) {
  x->srv->st.degraded++;
  x->srv->traps.degraded[cause]++;
  x->deg = 1 + (int)cause;
}

/* WITHMETA's leading element (reco.h: reco_reply_meta). */
static void reco__meta(reco_ctx_t *x, int personalized) {
  const char *kind = "personalized", *reason = "";
  if (x->deg) {
    kind = "degraded";
    reason = traps_degraded_name((traps_degraded_t)(x->deg - 1));
  } else if (!personalized) {
    kind = "popular";
    /* a stored history none of whose items the model knows (new products
     * only) is not the same as none at all */
    reason = !x->q.personalize ? "opted_out" : x->stored_n > 0 ? "unknown_items" : "no_history";
  }
  reco_reply_meta(&x->req->reply, kind, reason, x->variant->name, x->ref.sv->file_version,
                  x->ref.sv->m);
}

/* Issue 19: what the customer's keys hold but the answer cannot use (a
 * cat: value that is not a number in [-1, 1], a personalize other than
 * 0 / 1, a bad history entry: rclient skips and counts them; a cat:<name>
 * the model does not know) is logged once per customer, with the key. */
static void reco__check_user(reco_ctx_t *x, const rclient_user_t *u) {
  const model_t *m = x->ref.sv->m;
  size_t unknown = 0;
  const rclient_cat_t *first = NULL;
  for (size_t j = 0; j < u->cats_n; j++)
    if (model_find_category(m, u->cats[j].name, u->cats[j].len) == 0) {
      unknown++;
      if (first == NULL)
        first = &u->cats[j];
    }
  if (unknown == 0 && u->anomalies == 0)
    return;
  traps_t *t = &x->srv->traps;
  t->pref_unknown_categories += unknown;
  t->pref_bad_entries += u->anomalies;
  if (!traps_first(t->seen_users, x->o.user, x->o.ulen))
    return;
  const char *prefix = x->srv->cfg->key_prefix;
  char user[4 * 64 + 1], cat[4 * 64 + 1];
  log_sanitize(user, x->o.user, x->o.ulen, 64);
  if (u->pref_bad != NULL)
    log_warning("%spref:%s: %s is not usable (a cat: value must be a number in [-1, 1], "
                "personalize 0 or 1); skipped, with %zu unusable entries in all (logged once "
                "per customer)", prefix, user, u->pref_bad, u->anomalies);
  else if (u->anomalies > 0)
    log_warning("%spref:%s / %shist:%s: %zu unusable entries skipped (a key of the wrong "
                "type, a history score that is not a number > 0 or an id longer than 256 "
                "bytes; logged once per customer)", prefix, user, prefix, user, u->anomalies);
  if (first != NULL) {
    log_sanitize(cat, first->name, first->len, 64);
    log_warning("%spref:%s: field cat:%s names a category that model %s does not know (%zu such "
                "fields; category names are case-sensitive; logged once per customer)",
                prefix, user, cat, x->ref.sv->path, unknown);
  }
}

static void reco__reply_recommend(reco_ctx_t *x, const serve_answer_t *a) {
  reply_buf_t *r = &x->req->reply;
  const model_t *m = x->ref.sv->m;
  size_t per = 1 + (size_t)x->o.withscores + (size_t)x->o.withreasons;
  reply_array(r, a->n * per + (size_t)x->o.withmeta);
  if (x->o.withmeta)
    reco__meta(x, a->personalized);
  for (size_t j = 0; j < a->n; j++) {
    size_t len;
    const char *id = model_item_id(m, a->items[j], &len);
    reply_bulk(r, id, len);
    if (x->o.withscores)
      reply_float(r, a->scores[j]);
    if (x->o.withreasons) {
      int32_t why = a->reasons ? a->reasons[j] : -1;
      if (a->promoted != NULL && a->promoted[j]) {
        reply_bulk(r, "promoted", 8);
      } else if (why >= 0) {
        const char *rid = model_item_id(m, x->hist[why], &len);
        reply_bulk(r, rid, len);
      } else {
        reply_null(r);
      }
    }
  }
}

/* The answer's items are impressions (after the reply is formatted: the
 * writes to Redis never delay it). */
static void reco__track(reco_ctx_t *x, const uint32_t *items, size_t n) {
  tracker_t *t = x->srv->tracker;
  if (x->o.notrack || t == NULL || !tracker_enabled(t))
    return;
  const char **ids = malloc((n ? n : 1) * sizeof *ids);
  size_t *lens = malloc((n ? n : 1) * sizeof *lens);
  if (ids != NULL && lens != NULL) {
    for (size_t j = 0; j < n; j++)
      ids[j] = model_item_id(x->ref.sv->m, items[j], &lens[j]);
    tracker_impressions(t, x->o.user, x->o.ulen, x->variant->name, x->o.placement, ids, lens, n);
  }
  free(ids);
  free(lens);
}

/* The batcher answered (loop thread). */
static void reco__batch_done(batch_item_t *it, const serve_answer_t *a) {
  reco_ctx_t *x = (reco_ctx_t *)((char *)it - offsetof(reco_ctx_t, bi));
  if (reco__nobody(x->req))
    req_finish(x->req, 0);
  else if (a->rc != 0)
    reco__fail(x->req, "internal error computing the answer");
  else {
    reco__reply_recommend(x, a);
    req_finish(x->req, 0);
    reco__track(x, a->items, a->n);
  }
  req_release(x->req); /* the batcher's hold */
}

/* RANK scores only its candidates: cheap enough for the loop. */
static void reco__rank_now(reco_ctx_t *x) {
  const size_t n = x->o.n_cand;
  uint32_t *order = malloc(n * sizeof *order);
  float *scores = malloc(n * sizeof *scores);
  int personalized;
  const served_t *sv = x->ref.sv;
  int rc = order && scores ? rec_rank(sv->m, sv->sm.pop_scale, &x->q, x->o.cand, n,
                                      &x->srv->ws, order, scores, &personalized)
                           : RECD_ENOMEM;
  if (rc != 0) {
    reco__fail(x->req, "internal error computing the answer");
  } else {
    reply_buf_t *r = &x->req->reply;
    reply_array(r, n * (x->o.withscores ? 2 : 1) + (size_t)x->o.withmeta);
    if (x->o.withmeta)
      reco__meta(x, personalized);
    for (size_t j = 0; j < n; j++) {
      uint32_t pos = order[j];
      reply_bulk(r, x->cand_buf + x->cand_off[pos], x->cand_off[pos + 1] - x->cand_off[pos]);
      if (x->o.withscores) {
        if (isnan(scores[j]) || isinf(scores[j]))
          reply_null(r);
        else
          reply_float(r, scores[j]);
      }
    }
    req_finish(x->req, 0);
    /* RANK shows every known candidate, in its order */
    size_t known = 0;
    for (size_t j = 0; j < n; j++)
      if (x->o.cand[order[j]] >= 0)
        order[known++] = (uint32_t)x->o.cand[order[j]];
    reco__track(x, order, known);
  }
  free(order);
  free(scores);
}

/* The SHOWNLIMIT in force: the request's, else the config's. */
static size_t reco__shown_limit(const reco_ctx_t *x) {
  return x->o.shown_limit >= 0 ? (size_t)x->o.shown_limit : (size_t)x->srv->cfg->shown_limit;
}

/* The customer's history as model indices: the stored one (strongest
 * first, items newer than the model skipped) and then the request's
 * HISTORY items at weight 1 each (the fold-in sums an item's weights). An
 * opted-out customer has none: their answer is an unknown visitor's.
 * With a model trained with a half-life (its times were read, reco__start)
 * each stored weight is aged as in training (age.h) against the customer's
 * own newest interaction among the entries read, known to the model or
 * not; a HISTORY cart is an interaction now, so it moves that reference to
 * the wall clock and is not aged itself. An item without a time keeps its
 * weight. */
static int reco__history(reco_ctx_t *x, const rclient_user_t *u, int personalize) {
  const model_t *m = x->ref.sv->m;
  const size_t stored = u != NULL && personalize ? u->hist_n : 0;
  x->stored_n = stored;
  const size_t cart = personalize ? x->o.n_hist_items : 0;
  if (stored + cart == 0)
    return 0;
  const double half_life_s = model_meta(m)->half_life_days * 86400.0;
  const int64_t *times = stored > 0 && half_life_s > 0 ? u->hist_times : NULL;
  int64_t t_ref = AGE_NO_TIME;
  for (size_t j = 0; times != NULL && j < stored; j++)
    if (times[j] > t_ref)
      t_ref = times[j];
  if (times != NULL && cart > 0) {
    const int64_t now = (int64_t)time(NULL);
    if (now > t_ref)
      t_ref = now;
  }
  x->hist = malloc((stored + cart) * sizeof *x->hist);
  x->hist_w = malloc((stored + cart) * sizeof *x->hist_w);
  if (x->hist == NULL || x->hist_w == NULL)
    return RECD_ENOMEM;
  for (size_t j = 0; j < stored; j++) {
    int64_t i = model_find_item(m, u->hist_ids[j], u->hist_lens[j]);
    if (i < 0)
      continue; /* an item newer than the model: nothing to fold in */
    x->hist[x->n_hist] = (uint32_t)i;
    x->hist_w[x->n_hist++] = times != NULL ? age_weight(u->hist_weights[j], times[j], t_ref,
                                                        half_life_s)
                                           : u->hist_weights[j];
  }
  for (size_t j = 0; j < cart; j++) {
    x->hist[x->n_hist] = x->o.hist_items[j];
    x->hist_w[x->n_hist++] = 1.0f;
  }
  return 0;
}

/* Everything that must not be shown: EXCLUDE ids, the HISTORY items (even
 * for an opted-out customer: the cart is on the page already) and, with a
 * shown limit, the items shown that often since their last outcome within
 * the attribution window (tracking.h); and the hidden set apart (RANK
 * puts it last rather than dropping it). */
static int reco__exclusions(reco_ctx_t *x, const rclient_user_t *u) {
  const model_t *m = x->ref.sv->m;
  const size_t limit = reco__shown_limit(x);
  const size_t n_imp = u != NULL && limit > 0 ? u->imp_n : 0;
  const size_t n_hid = u != NULL ? u->hidden_n : 0;
  const size_t cap = x->o.n_excl + x->o.n_hist_items + n_imp;
  if (cap > 0 && (x->excl = malloc(cap * sizeof *x->excl)) == NULL)
    return RECD_ENOMEM;
  if (x->o.n_excl > 0)
    memcpy(x->excl, x->o.excl, x->o.n_excl * sizeof *x->excl);
  if (x->o.n_hist_items > 0)
    memcpy(x->excl + x->o.n_excl, x->o.hist_items, x->o.n_hist_items * sizeof *x->excl);
  x->n_excl = x->o.n_excl + x->o.n_hist_items;
  tracker_t *t = x->srv->tracker;
  for (size_t j = 0; j < n_imp && t != NULL; j++) {
    tracker_impression_t imp;
    if (tracker_parse_impression(u->imp[2 * j + 1], u->imp_lens[2 * j + 1], &imp) != 0 ||
        imp.shown < limit || !tracker_within_window(t, imp.at_ms))
      continue;
    int64_t i = model_find_item(m, u->imp[2 * j], u->imp_lens[2 * j]);
    if (i >= 0)
      x->excl[x->n_excl++] = (uint32_t)i;
  }
  if (n_hid > 0 && (x->hidden = malloc(n_hid * sizeof *x->hidden)) == NULL)
    return RECD_ENOMEM;
  for (size_t j = 0; j < n_hid; j++) {
    int64_t i = model_find_item(m, u->hidden_ids[j], u->hidden_lens[j]);
    if (i >= 0)
      x->hidden[x->n_hidden++] = (uint32_t)i;
  }
  return 0;
}

/* ---- SIMILAR ... FOR <user> ------------------------------------------------ */

/* Catalogue size from which SIMILAR's pass (~1.7 ms at 100k items, k = 64)
 * goes to the thread pool rather than stalling the loop (as similar.c). */
#define RECO_SIMILAR_OFFLOAD_ITEMS 50000u

static void reco__similar_compute(reco_ctx_t *x, rec_ws_t *ws) {
  rec_result_t res;
  x->sim.rc = rec_similar_q(x->ref.sv->m, (uint32_t)x->o.sim_item, &x->q, ws, &res);
  if (x->sim.rc == 0) /* res points into ws: copied out before ws is reused */
    similar_answer_keep(&x->sim, &res, 0);
}

static void reco__similar_reply(reco_ctx_t *x) {
  if (x->sim.rc != 0) {
    reco__fail(x->req, "internal error computing the answer");
    return;
  }
  const char *kind = x->o.withmeta ? x->deg ? "degraded" : "similar" : NULL;
  similar_answer_reply(&x->req->reply, x->ref.sv->m, &x->sim, x->o.withscores, kind,
                       x->deg ? traps_degraded_name((traps_degraded_t)(x->deg - 1)) : "",
                       x->variant->name, x->ref.sv->file_version);
  req_finish(x->req, 0);
}

static void reco__similar_work(uv_work_t *w) {
  reco_ctx_t *x = w->data;
  rec_ws_t ws;
  rec_ws_init(&ws);
  reco__similar_compute(x, &ws);
  rec_ws_free(&ws);
}

static void reco__similar_after(uv_work_t *w, int status) {
  reco_ctx_t *x = w->data;
  if (status != 0)
    x->sim.rc = RECD_EINVAL;
  if (reco__nobody(x->req))
    req_finish(x->req, 0);
  else
    reco__similar_reply(x);
  req_release(x->req); /* the work's hold */
}

/* The batcher answered a SIMILAR FOR (loop thread). */
static void reco__similar_batch_done(batch_item_t *it, const serve_answer_t *a) {
  reco_ctx_t *x = (reco_ctx_t *)((char *)it - offsetof(reco_ctx_t, bi));
  if (reco__nobody(x->req)) {
    req_finish(x->req, 0);
  } else {
    x->sim = similar_answer_view(a); /* borrowed: only for the reply */
    reco__similar_reply(x);
    x->sim = (similar_answer_t){0};
  }
  req_release(x->req); /* the batcher's hold */
}

/* The items similar to o.sim_item, with the customer's filters in x->q
 * (SIMILAR records no impressions: it answers a page, not a customer):
 * through the micro-batcher on the int8 pass (as similar.c), else
 * rec_similar_q. */
static void reco__similar_now(reco_ctx_t *x) {
  if (x->o.sim_item < 0 || x->o.count == 0) {
    /* an unknown item is not an error (WITHMETA says which it was) */
    reply_buf_t *r = &x->req->reply;
    reply_array(r, (size_t)x->o.withmeta);
    if (x->o.withmeta)
      reco_reply_meta(r, x->o.sim_item < 0 ? "unknown_item" : "similar", "", x->variant->name,
                      x->ref.sv->file_version, x->ref.sv->m);
    req_finish(x->req, 0);
    return;
  }
  if (similar_batched(x->srv, x->ref.sv)) {
    x->bi = (batch_item_t){.model = &x->ref.sv->sm, .q = &x->q, .similar = 1,
                           .item = (uint32_t)x->o.sim_item, .done = reco__similar_batch_done};
    req_hold(x->req); /* the batcher's */
    batcher_submit(x->srv->batcher, &x->bi);
    return;
  }
  if (model_n_items(x->ref.sv->m) > RECO_SIMILAR_OFFLOAD_ITEMS) {
    x->work.data = x;
    req_hold(x->req);
    if (uv_queue_work(x->srv->loop, &x->work, reco__similar_work, reco__similar_after) == 0)
      return;
    req_release(x->req);
  }
  reco__similar_compute(x, &x->srv->ws);
  reco__similar_reply(x);
}

/* Maps the customer read from Redis (NULL: degraded, nothing read) onto
 * the model and answers. */
static void reco__answer(reco_ctx_t *x, const rclient_user_t *u) {
  if (reco__nobody(x->req)) {
    req_finish(x->req, 0);
    return;
  }
  const model_t *m = x->ref.sv->m;
  const config_t *cfg = x->srv->cfg;
  /* An opted-out customer's history is not used at all: not for the
   * fold-in, and not to filter the answer either, so that they get exactly
   * what an unknown visitor gets (DESIGN.md, recd:pref personalize = 0). */
  const int personalize = u ? u->personalize : 1;
  if (reco__history(x, u, personalize) != 0 || reco__exclusions(x, u) != 0) {
    reco__fail(x->req, "out of memory");
    return;
  }
  if (u != NULL && u->cats_n > 0) {
    x->pref_cat = malloc(u->cats_n * sizeof *x->pref_cat);
    x->pref_val = malloc(u->cats_n * sizeof *x->pref_val);
    if (x->pref_cat == NULL || x->pref_val == NULL) {
      reco__fail(x->req, "out of memory");
      return;
    }
    for (size_t j = 0; j < u->cats_n; j++) {
      uint32_t c = model_find_category(m, u->cats[j].name, u->cats[j].len);
      if (c == 0)
        continue;
      x->pref_cat[x->n_pref] = c;
      x->pref_val[x->n_pref++] = u->cats[j].value;
    }
  }
  const size_t promote = x->o.promote >= 0 ? (size_t)x->o.promote : (size_t)cfg->promote_slots;
  if (promote > 0 && x->kind == RECO_RECOMMEND)
    x->promoted = itemset_hold(x->srv->promoted, m);
  x->q = (rec_query_t){.hist = x->hist, .hist_w = x->hist_w, .n_hist = x->n_hist,
                       .history_limit = (size_t)cfg->history_limit,
                       .personalize = personalize, .exclude_history = cfg->exclude_history,
                       .exclude = x->excl, .n_exclude = x->n_excl,
                       .categories = x->o.cats, .n_categories = x->o.n_cats,
                       .category_filter = x->o.cat_filter, .pref_cat = x->pref_cat,
                       .pref_val = x->pref_val, .n_pref = x->n_pref,
                       .unavailable = x->ref.unavail ? x->ref.unavail->words : NULL,
                       .offset = x->o.offset, .count = x->o.count,
                       .with_reasons = x->o.withreasons,
                       .hidden = x->hidden, .n_hidden = x->n_hidden,
                       .max_per_category = x->o.max_per_category >= 0
                                               ? (size_t)x->o.max_per_category
                                               : (size_t)cfg->max_per_category,
                       .one_per_group = x->o.one_per_group || cfg->one_per_group,
                       .exclude_bought_groups = cfg->exclude_bought_groups,
                       .promoted = x->promoted ? x->promoted->words : NULL,
                       .promote = x->promoted ? promote : 0};
  if (x->kind == RECO_RANK) {
    reco__rank_now(x);
    return;
  }
  if (x->kind == RECO_SIMILAR) {
    /* The customer's filters on the cosine ranking (recommend.h,
     * rec_similar_q): history (unless exclude-history no), hidden items,
     * categories they removed, the families they bought (with
     * exclude-bought-groups); the request's own CATEGORY, EXCLUDE and
     * MAXPERCATEGORY; never the config's caps or promoted slots. */
    x->q.max_per_category = x->o.max_per_category >= 0 ? (size_t)x->o.max_per_category : 0;
    x->q.one_per_group = 0;
    x->q.promoted = NULL;
    x->q.promote = 0;
    x->q.with_reasons = 0;
    x->q.families = &x->ref.sv->sm.families;
    reco__similar_now(x);
    return;
  }
  x->bi.model = &x->ref.sv->sm;
  x->bi.q = &x->q;
  x->bi.done = reco__batch_done;
  req_hold(x->req); /* the batcher's */
  batcher_submit(x->srv->batcher, &x->bi);
}

static void reco__on_user(rclient_t *rc, const rclient_user_t *u, void *arg) {
  (void)rc;
  reco_ctx_t *x = arg;
  if (deadline_settle(&x->dl)) {
    if (u->status != RCLIENT_OK) {
      reco__degraded(x, u->status == RCLIENT_ERROR ? TRAPS_DEG_REDIS_ERROR
                                                   : TRAPS_DEG_REDIS_DOWN);
      u = NULL;
    }
    if (u != NULL)
      reco__check_user(x, u);
    reco__answer(x, u);
  }
  req_release(x->req); /* the fetch's hold */
}

static void reco__on_deadline(void *arg) {
  reco_ctx_t *x = arg;
  reco__degraded(x, TRAPS_DEG_TIMEOUT);
  reco__answer(x, NULL);
}

/* Common start of RECOMMEND and RANK once the options are parsed. */
static void reco__start(reco_ctx_t *x) {
  server_t *s = x->srv;
  deadline_init(&x->dl, s->loop, x->req);
  size_t fetch = (size_t)s->cfg->history_limit;
  if (fetch < RECO_MIN_FETCH)
    fetch = RECO_MIN_FETCH;
  req_hold(x->req); /* the fetch's */
  /* The impressions are read only when the rotation rule needs them, the
   * times only for a fold-in that ages the history (SIMILAR FOR folds
   * nothing in: the history only filters it). */
  unsigned flags =
      x->kind == RECO_RECOMMEND && reco__shown_limit(x) > 0 ? RCLIENT_FETCH_IMPRESSIONS : 0;
  if (x->kind != RECO_SIMILAR && model_meta(x->ref.sv->m)->half_life_days > 0)
    flags |= RCLIENT_FETCH_TIMES;
  if (rclient_fetch_user(s->redis, x->o.user, x->o.ulen, fetch, flags, reco__on_user, x) != 0) {
    req_release(x->req);
    deadline_settle(&x->dl);
    reco__degraded(x, TRAPS_DEG_REDIS_DOWN);
    reco__answer(x, NULL);
    return;
  }
  deadline_arm(&x->dl, (uint64_t)s->cfg->redis_timeout_ms, reco__on_deadline, x);
}

/* Copies what must outlive the command's arguments: the user id, and
 * RANK's candidate ids (they are the reply). */
static int reco__keep(reco_ctx_t *x) {
  reco_opts_t *o = &x->o;
  if ((x->user = malloc(o->ulen + 1)) == NULL)
    return RECD_ENOMEM;
  memcpy(x->user, o->user, o->ulen);
  o->user = x->user;
  o->variant = NULL; /* argv; x->variant holds the outcome */
  if (o->n_cand == 0)
    return 0;
  size_t total = 0;
  for (size_t j = 0; j < o->n_cand; j++)
    total += o->cand_lens[j];
  x->cand_buf = malloc(total ? total : 1);
  x->cand_off = malloc((o->n_cand + 1) * sizeof *x->cand_off);
  if (x->cand_buf == NULL || x->cand_off == NULL)
    return RECD_ENOMEM;
  x->cand_off[0] = 0;
  for (size_t j = 0; j < o->n_cand; j++) {
    memcpy(x->cand_buf + x->cand_off[j], o->cand_ids[j], o->cand_lens[j]);
    x->cand_off[j + 1] = x->cand_off[j] + o->cand_lens[j];
  }
  o->cand_ids = NULL;
  o->cand_lens = NULL;
  return 0;
}

static void reco__begin(reco_ctx_t *x, const resp_cmd_t *a);

static void reco__command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a, reco_kind_t kind) {
  server_t *s = c->srv;
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  reco_ctx_t *x = calloc(1, sizeof *x);
  if (x == NULL) {
    reco__fail(r, "out of memory");
    return;
  }
  x->req = r;
  x->srv = s;
  x->kind = kind;
  r->ctx = x;
  r->ctx_free = reco__ctx_free;
  char err[RECD_ERRLEN];
  int rc = kind == RECO_RECOMMEND ? reco_parse_recommend(a, (size_t)s->cfg->max_count, &x->o, err)
                                  : reco_parse_rank(a, &x->o, err);
  if (rc != 0) {
    reco__fail(r, err);
    return;
  }
  reco__begin(x, a);
}

/* After the grammar: the variant (the customer's, or VARIANT's), its
 * model held for the whole request, the names and ids resolved against
 * it, then the customer's Redis read. */
static void reco__begin(reco_ctx_t *x, const resp_cmd_t *a) {
  server_t *s = x->srv;
  req_t *r = x->req;
  char err[RECD_ERRLEN];
  int rc = 0;
  if (x->kind == RECO_RECOMMEND && x->o.shown_limit > 0 &&
      (s->tracker == NULL || !tracker_counts_shown(s->tracker))) {
    reco__fail(r, "SHOWNLIMIT needs shown counts in the impressions, which this recd does not "
                  "keep: set track-shown yes (or a shown-limit) in its config");
    return;
  }
  x->variant = x->o.variant ? variants_find(s->variants, x->o.variant, x->o.variant_len)
                            : variants_for_user(s->variants, x->o.user, x->o.ulen);
  if (x->variant == NULL)
    rc = variants_unknown(s->variants, "VARIANT", x->o.variant, x->o.variant_len, err);
  if (rc == 0) {
    /* The request answers with the model it was resolved against. */
    model_store_hold(x->variant->store, &x->ref);
    rc = reco_resolve(&x->o, a, x->ref.sv->m, err);
  }
  if (rc == 0 && reco__keep(x) != 0)
    rc = recd_errf(err, RECD_ENOMEM, "out of memory");
  if (rc != 0) {
    reco__fail(r, err);
    return;
  }
  reco__start(x);
}

void reco_recommend(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  reco__command(c, st, a, RECO_RECOMMEND);
}

void reco_rank(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  reco__command(c, st, a, RECO_RANK);
}

void reco_similar_for(req_t *r, server_t *s, reco_opts_t *o, const resp_cmd_t *a) {
  reco_ctx_t *x = calloc(1, sizeof *x);
  if (x == NULL) {
    reco_opts_free(o);
    reco__fail(r, "out of memory");
    return;
  }
  x->req = r;
  x->srv = s;
  x->kind = RECO_SIMILAR;
  x->o = *o; /* moved: the caller's copy must not be freed */
  memset(o, 0, sizeof *o);
  r->ctx = x;
  r->ctx_free = reco__ctx_free;
  reco__begin(x, a);
}
