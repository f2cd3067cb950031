/* reco.c - RECOMMEND, RANK, SIMILAR and FEEDBACK.
 *
 * RECOMMEND and RANK are asynchronous: the request reads the customer's
 * history and preferences from Redis (one pipelined round trip), computes
 * the answer, and replies in order through the client's request queue. A
 * per-request timer bounds the Redis trip at redis-timeout-ms: when it
 * fires first, the customer gets the non-personalized answer (counted as
 * degraded) and the late Redis reply is ignored. RECOMMEND is scored on
 * libuv's thread pool through the micro-batcher (batch.c), so the loop only
 * parses, reads Redis and writes replies; RANK scores just its candidates
 * and stays on the loop.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "recd/csv.h"
#include "batch.h"
#include "server.h"

/* History entries read per request: the strongest history-limit feed the
 * fold-in, and up to this many are excluded from the answer. A customer
 * with more distinct past items may see one of the weakest again. */
#define RECO_MIN_FETCH 2000u

typedef enum { RECO_RECOMMEND, RECO_RANK } reco_kind_t;

typedef struct reco_ctx {
  req_t *req;
  server_t *srv;
  reco_kind_t kind;
  served_t *model;          /* the model this request started with */
  bits_t *unavail;          /* and the unavailable set of that model */
  char *user;
  size_t ulen;
  size_t count, offset;
  int withscores, withreasons;
  int cat_filter;
  uint32_t *cats;           /* CATEGORY numbers (unknown names: none) */
  size_t n_cats;
  uint32_t *excl;           /* EXCLUDE indices (unknown ids dropped) */
  size_t n_excl;
  char **cand_ids;          /* RANK candidates, copied */
  size_t *cand_lens;
  int64_t *cand;            /* their model indices, -1 = unknown */
  size_t n_cand;
  uv_timer_t timer;         /* redis-timeout-ms deadline */
  int answered;
  /* inputs and results of the computation */
  batch_item_t bi;          /* RECOMMEND: the micro-batcher's item */
  uint32_t *hist;
  float *hist_w;
  char **hist_ids;          /* copies of the known history ids, for reasons */
  size_t n_hist;
  int personalize;
  uint32_t *pref_cat;
  float *pref_val;
  size_t n_pref;
  int rc;
  uint32_t *rank_order;
  float *rank_scores;
  int rank_personalized;
} reco_ctx_t;

static void reco__ctx_free(void *p) {
  reco_ctx_t *x = p;
  if (x->model)
    served_unref(x->model);
  if (x->unavail)
    bits_unref(x->unavail);
  free(x->user);
  free(x->cats);
  free(x->excl);
  for (size_t i = 0; i < x->n_cand; i++)
    free(x->cand_ids[i]);
  free(x->cand_ids);
  free(x->cand_lens);
  free(x->cand);
  free(x->hist);
  free(x->hist_w);
  free(x->hist_ids);
  free(x->pref_cat);
  free(x->pref_val);
  free(x->rank_order);
  free(x->rank_scores);
  batch_item_free(&x->bi);
  free(x);
}

static int reco__eq(const resp_cmd_t *a, size_t i, const char *word) {
  return strlen(word) == a->argvlen[i] && strcasecmp(a->argv[i], word) == 0;
}

static int reco__parse_size(const resp_cmd_t *a, size_t i, size_t max, size_t *out) {
  uint64_t v;
  if (csv_parse_u64(a->argv[i], a->argvlen[i], &v) != 0 || v > max)
    return -1;
  *out = (size_t)v;
  return 0;
}

/* Replies an error to a request that never started its Redis trip. */
static void reco__fail(req_t *r, const char *msg) {
  reply_reset(&r->reply);
  reply_error(&r->reply, msg);
  req_finish(r, 1);
}

static void reco__timer_closed(uv_handle_t *h) {
  reco_ctx_t *x = h->data;
  req_unref(x->req);
}

/* The answer is decided (Redis replied, or the deadline passed): the
 * deadline timer has no further use. */
static void reco__settle(reco_ctx_t *x) {
  x->answered = 1;
  uv_close((uv_handle_t *)&x->timer, reco__timer_closed);
}

/* Formats the answer of a RECOMMEND. */
static void reco__reply_recommend(reco_ctx_t *x) {
  reply_buf_t *r = &x->req->reply;
  const model_t *m = x->model->m;
  const batch_item_t *res = &x->bi;
  size_t per = 1 + (size_t)x->withscores + (size_t)x->withreasons;
  reply_array(r, res->n * per);
  for (size_t j = 0; j < res->n; j++) {
    size_t len;
    const char *id = model_item_id(m, res->items[j], &len);
    reply_bulk(r, id, len);
    if (x->withscores)
      reply_float(r, res->scores[j]);
    if (x->withreasons) {
      int32_t why = res->reasons ? res->reasons[j] : -1;
      if (why >= 0) {
        const char *rid = model_item_id(m, x->hist[why], &len);
        reply_bulk(r, rid, len);
      } else {
        reply_null(r);
      }
    }
  }
}

static void reco__reply_rank(reco_ctx_t *x) {
  reply_buf_t *r = &x->req->reply;
  reply_array(r, x->n_cand * (x->withscores ? 2 : 1));
  for (size_t j = 0; j < x->n_cand; j++) {
    uint32_t pos = x->rank_order[j];
    reply_bulk(r, x->cand_ids[pos], x->cand_lens[pos]);
    if (x->withscores) {
      if (isnan(x->rank_scores[j]) || isinf(x->rank_scores[j]))
        reply_null(r);
      else
        reply_float(r, x->rank_scores[j]);
    }
  }
}

/* The query of this request, from its parsed options and fetched inputs. */
static rec_query_t reco__query(const reco_ctx_t *x) {
  const server_t *s = x->srv;
  rec_query_t q = {.hist = x->hist, .hist_w = x->hist_w, .n_hist = x->n_hist,
                   .history_limit = (size_t)s->cfg->history_limit,
                   .personalize = x->personalize, .exclude_history = s->cfg->exclude_history,
                   .exclude = x->excl, .n_exclude = x->n_excl, .categories = x->cats,
                   .n_categories = x->n_cats, .category_filter = x->cat_filter,
                   .pref_cat = x->pref_cat, .pref_val = x->pref_val, .n_pref = x->n_pref,
                   .unavailable = x->unavail ? x->unavail->words : NULL, .offset = x->offset,
                   .count = x->count, .with_reasons = x->withreasons};
  return q;
}

static void reco__finish(reco_ctx_t *x) {
  /* The client left (or was cut off at its output limit) while the answer
   * was being computed: formatting up to max-count ids and scores for
   * nobody would only steal loop time from the clients still here. */
  if (x->req->c == NULL || (x->req->c->flags & CLIENT_CLOSING)) {
    req_finish(x->req, 0);
    return;
  }
  if (x->rc != 0) {
    reco__fail(x->req, "internal error computing the answer");
    return;
  }
  if (x->kind == RECO_RECOMMEND)
    reco__reply_recommend(x);
  else
    reco__reply_rank(x);
  req_finish(x->req, 0);
}

/* The batcher answered (loop thread). */
static void reco__batch_done(batch_item_t *it) {
  reco_ctx_t *x = (reco_ctx_t *)((char *)it - offsetof(reco_ctx_t, bi));
  x->rc = it->rc;
  reco__finish(x);
  req_unref(x->req); /* the batcher's reference */
}

/* RANK scores only its candidates: cheap enough for the loop. */
static void reco__rank_now(reco_ctx_t *x) {
  rec_query_t q = reco__query(x);
  x->rank_order = malloc((x->n_cand ? x->n_cand : 1) * sizeof *x->rank_order);
  x->rank_scores = malloc((x->n_cand ? x->n_cand : 1) * sizeof *x->rank_scores);
  x->rc = x->rank_order && x->rank_scores
              ? rec_rank(x->model->m, x->model->pop_scale, &q, x->cand, x->n_cand, &x->srv->ws,
                         x->rank_order, x->rank_scores, &x->rank_personalized)
              : RECD_ENOMEM;
  reco__finish(x);
}

/* Maps the fetched history and preferences onto the model and answers. */
static void reco__answer(reco_ctx_t *x, const rclient_user_t *u) {
  const model_t *m = x->model->m;
  x->personalize = u ? u->personalize : 1;
  if (u != NULL && u->hist_n > 0) {
    x->hist = malloc(u->hist_n * sizeof *x->hist);
    x->hist_w = malloc(u->hist_n * sizeof *x->hist_w);
    if (x->hist == NULL || x->hist_w == NULL) {
      reco__fail(x->req, "out of memory");
      return;
    }
    for (size_t j = 0; j < u->hist_n; j++) {
      int64_t i = model_find_item(m, u->hist_ids[j], u->hist_lens[j]);
      if (i < 0)
        continue; /* an item newer than the model: nothing to fold in */
      x->hist[x->n_hist] = (uint32_t)i;
      x->hist_w[x->n_hist++] = u->hist_weights[j];
    }
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
  if (x->kind == RECO_RANK) {
    reco__rank_now(x);
    return;
  }
  x->bi.model = x->model;
  x->bi.q = reco__query(x);
  x->bi.done = reco__batch_done;
  x->req->refs++;
  batcher_submit(x->srv->batcher, &x->bi);
}

static void reco__on_user(rclient_t *rc, const rclient_user_t *u, void *arg) {
  (void)rc;
  reco_ctx_t *x = arg;
  if (!x->answered) {
    reco__settle(x);
    if (u->status != RCLIENT_OK) {
      x->srv->degraded++;
      u = NULL;
    }
    if (x->req->c != NULL)
      reco__answer(x, u);
    else
      req_finish(x->req, 0);
  }
  req_unref(x->req); /* the fetch's reference */
}

static void reco__on_deadline(uv_timer_t *t) {
  reco_ctx_t *x = t->data;
  if (x->answered)
    return;
  reco__settle(x);
  x->srv->degraded++;
  if (x->req->c != NULL)
    reco__answer(x, NULL);
  else
    req_finish(x->req, 0);
}

/* Common start of RECOMMEND and RANK once the options are parsed. */
static void reco__start(reco_ctx_t *x) {
  server_t *s = x->srv;
  req_t *r = x->req;
  x->model = served_ref(s->model);
  x->unavail = s->unavail ? bits_ref(s->unavail) : NULL;
  uv_timer_init(s->loop, &x->timer);
  x->timer.data = x;
  r->refs++; /* released when the timer handle is closed */
  r->refs++; /* released by the fetch callback */
  size_t fetch = (size_t)s->cfg->history_limit;
  if (fetch < RECO_MIN_FETCH)
    fetch = RECO_MIN_FETCH;
  if (rclient_fetch_user(s->redis, x->user, x->ulen, fetch, reco__on_user, x) != 0) {
    r->refs--;
    reco__settle(x);
    s->degraded++;
    reco__answer(x, NULL);
  } else {
    uv_timer_start(&x->timer, reco__on_deadline, (uint64_t)s->cfg->redis_timeout_ms, 0);
  }
}

static reco_ctx_t *reco__new(client_t *c, struct cmd_def *cmd, reco_kind_t kind,
                             const resp_cmd_t *a) {
  req_t *r = req_new(c, cmd);
  if (r == NULL)
    return NULL;
  reco_ctx_t *x = calloc(1, sizeof *x);
  if (x == NULL) {
    reco__fail(r, "out of memory");
    return NULL;
  }
  x->req = r;
  x->srv = c->srv;
  x->kind = kind;
  r->ctx = x;
  r->ctx_free = reco__ctx_free;
  if (a->argvlen[1] > RCLIENT_ID_MAX) {
    reco__fail(r, "user id longer than 256 bytes");
    return NULL;
  }
  x->user = malloc(a->argvlen[1] + 1);
  if (x->user == NULL) {
    reco__fail(r, "out of memory");
    return NULL;
  }
  memcpy(x->user, a->argv[1], a->argvlen[1]);
  x->ulen = a->argvlen[1];
  return x;
}

/* RECOMMEND <user> [COUNT n] [OFFSET m] [CATEGORY c]... [WITHSCORES]
 *           [WITHREASONS] [EXCLUDE id [id ...]] */
void reco_recommend(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  reco_ctx_t *x = reco__new(c, cmd, RECO_RECOMMEND, a);
  if (x == NULL)
    return;
  const config_t *cfg = c->srv->cfg;
  const model_t *m = c->srv->model->m;
  x->count = 10;
  if ((x->cats = malloc(a->argc * sizeof *x->cats)) == NULL ||
      (x->excl = malloc(a->argc * sizeof *x->excl)) == NULL) {
    reco__fail(x->req, "out of memory");
    return;
  }
  for (size_t i = 2; i < a->argc; i++) {
    if (reco__eq(a, i, "COUNT") && i + 1 < a->argc) {
      if (reco__parse_size(a, ++i, (size_t)cfg->max_count, &x->count) != 0) {
        reply_errorf(&x->req->reply, "COUNT must be an integer in [0, %d]", cfg->max_count);
        req_finish(x->req, 1);
        return;
      }
    } else if (reco__eq(a, i, "OFFSET") && i + 1 < a->argc) {
      if (reco__parse_size(a, ++i, (size_t)cfg->max_count, &x->offset) != 0) {
        reply_errorf(&x->req->reply, "OFFSET must be an integer in [0, %d]", cfg->max_count);
        req_finish(x->req, 1);
        return;
      }
    } else if (reco__eq(a, i, "CATEGORY") && i + 1 < a->argc) {
      i++;
      x->cat_filter = 1;
      uint32_t cat = model_find_category(m, a->argv[i], a->argvlen[i]);
      if (cat != 0)
        x->cats[x->n_cats++] = cat;
    } else if (reco__eq(a, i, "WITHSCORES")) {
      x->withscores = 1;
    } else if (reco__eq(a, i, "WITHREASONS")) {
      x->withreasons = 1;
    } else if (reco__eq(a, i, "EXCLUDE") && i + 1 < a->argc) {
      /* EXCLUDE takes every remaining argument. */
      for (i++; i < a->argc; i++) {
        int64_t idx = model_find_item(m, a->argv[i], a->argvlen[i]);
        if (idx >= 0)
          x->excl[x->n_excl++] = (uint32_t)idx;
      }
    } else {
      reco__fail(x->req, "syntax error");
      return;
    }
  }
  if (x->offset + x->count > (size_t)cfg->max_count) {
    reply_errorf(&x->req->reply, "OFFSET + COUNT must be at most max-count (%d)",
                 cfg->max_count);
    req_finish(x->req, 1);
    return;
  }
  reco__start(x);
}

/* RANK <user> <item> [item ...] [WITHSCORES] */
void reco_rank(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  reco_ctx_t *x = reco__new(c, cmd, RECO_RANK, a);
  if (x == NULL)
    return;
  const model_t *m = c->srv->model->m;
  size_t n = a->argc - 2;
  if (n > 0 && reco__eq(a, a->argc - 1, "WITHSCORES")) {
    x->withscores = 1;
    n--;
  }
  if (n == 0) {
    reco__fail(x->req, "wrong number of arguments for 'rank' command");
    return;
  }
  x->cand_ids = calloc(n, sizeof *x->cand_ids);
  x->cand_lens = malloc(n * sizeof *x->cand_lens);
  x->cand = malloc(n * sizeof *x->cand);
  if (x->cand_ids == NULL || x->cand_lens == NULL || x->cand == NULL) {
    reco__fail(x->req, "out of memory");
    return;
  }
  for (size_t j = 0; j < n; j++) {
    size_t len = a->argvlen[2 + j];
    x->cand_ids[j] = malloc(len + 1);
    if (x->cand_ids[j] == NULL) {
      x->n_cand = j;
      reco__fail(x->req, "out of memory");
      return;
    }
    memcpy(x->cand_ids[j], a->argv[2 + j], len);
    x->cand_lens[j] = len;
    x->cand[j] = model_find_item(m, a->argv[2 + j], len);
  }
  x->n_cand = n;
  reco__start(x);
}

/* SIMILAR needs no Redis. It is one pass over the item matrix: inline on
 * the loop for small catalogues, on the thread pool above this size, where
 * the pass (~1.7 ms at 100k items, k = 64) would stall every other client. */
#define RECO_SIMILAR_OFFLOAD_ITEMS 50000u

typedef struct similar_ctx {
  req_t *req;
  served_t *model;
  bits_t *unavail;
  uint32_t item;
  size_t count;
  int withscores;
  uv_work_t work;
  batch_item_t out; /* results (items, scores), freed with the context */
} similar_ctx_t;

static void reco__similar_free(void *p) {
  similar_ctx_t *x = p;
  served_unref(x->model);
  if (x->unavail)
    bits_unref(x->unavail);
  batch_item_free(&x->out);
  free(x);
}

static void reco__similar_compute(similar_ctx_t *x, rec_ws_t *ws) {
  rec_result_t res;
  x->out.rc = rec_similar(x->model->m, x->item, x->count, x->unavail ? x->unavail->words : NULL,
                          ws, &res);
  if (x->out.rc != 0)
    return;
  x->out.n = res.n;
  x->out.items = malloc((res.n ? res.n : 1) * sizeof *x->out.items);
  x->out.scores = malloc((res.n ? res.n : 1) * sizeof *x->out.scores);
  if (x->out.items == NULL || x->out.scores == NULL) {
    x->out.rc = RECD_ENOMEM;
    return;
  }
  memcpy(x->out.items, res.items, res.n * sizeof *x->out.items);
  memcpy(x->out.scores, res.scores, res.n * sizeof *x->out.scores);
}

static void reco__similar_reply(similar_ctx_t *x) {
  reply_buf_t *r = &x->req->reply;
  if (x->out.rc != 0) {
    reco__fail(x->req, "out of memory");
    return;
  }
  reply_array(r, x->out.n * (x->withscores ? 2 : 1));
  for (size_t j = 0; j < x->out.n; j++) {
    size_t len;
    const char *id = model_item_id(x->model->m, x->out.items[j], &len);
    reply_bulk(r, id, len);
    if (x->withscores)
      reply_float(r, x->out.scores[j]);
  }
  req_finish(x->req, 0);
}

static void reco__similar_work(uv_work_t *w) {
  similar_ctx_t *x = w->data;
  rec_ws_t ws;
  rec_ws_init(&ws);
  reco__similar_compute(x, &ws);
  rec_ws_free(&ws);
}

static void reco__similar_after(uv_work_t *w, int status) {
  similar_ctx_t *x = w->data;
  if (status != 0)
    x->out.rc = RECD_EINVAL;
  reco__similar_reply(x);
  req_unref(x->req); /* the work's reference */
}

/* SIMILAR <item> [COUNT n] [WITHSCORES] */
void reco_similar(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  server_t *s = c->srv;
  req_t *r = req_new(c, cmd);
  if (r == NULL)
    return;
  size_t count = 10;
  int withscores = 0;
  for (size_t i = 2; i < a->argc; i++) {
    if (reco__eq(a, i, "COUNT") && i + 1 < a->argc) {
      if (reco__parse_size(a, ++i, (size_t)s->cfg->max_count, &count) != 0) {
        reply_errorf(&r->reply, "COUNT must be an integer in [0, %d]", s->cfg->max_count);
        req_finish(r, 1);
        return;
      }
    } else if (reco__eq(a, i, "WITHSCORES")) {
      withscores = 1;
    } else {
      reco__fail(r, "syntax error");
      return;
    }
  }
  const model_t *m = s->model->m;
  int64_t item = model_find_item(m, a->argv[1], a->argvlen[1]);
  if (item < 0 || count == 0) {
    reply_array(&r->reply, 0); /* an unknown item is not an error */
    req_finish(r, 0);
    return;
  }
  similar_ctx_t *x = calloc(1, sizeof *x);
  if (x == NULL) {
    reco__fail(r, "out of memory");
    return;
  }
  x->req = r;
  x->model = served_ref(s->model);
  x->unavail = s->unavail ? bits_ref(s->unavail) : NULL;
  x->item = (uint32_t)item;
  x->count = count;
  x->withscores = withscores;
  r->ctx = x;
  r->ctx_free = reco__similar_free;
  if (model_n_items(m) > RECO_SIMILAR_OFFLOAD_ITEMS) {
    x->work.data = x;
    r->refs++;
    if (uv_queue_work(s->loop, &x->work, reco__similar_work, reco__similar_after) == 0)
      return;
    r->refs--;
  }
  reco__similar_compute(x, &s->ws);
  reco__similar_reply(x);
}

/* A FEEDBACK in flight: answered by Redis or by its deadline, whichever
 * comes first; the request is freed after both the Redis callback and the
 * timer's close. */
typedef struct feedback_ctx {
  req_t *req;
  uv_timer_t timer;
  int timeout_ms;
  int answered;
} feedback_ctx_t;

static void reco__feedback_timer_closed(uv_handle_t *h) {
  feedback_ctx_t *f = h->data;
  req_unref(f->req);
}

static void reco__feedback_settle(feedback_ctx_t *f) {
  f->answered = 1;
  uv_close((uv_handle_t *)&f->timer, reco__feedback_timer_closed);
}

static void reco__on_feedback(rclient_t *rc, rclient_status_t st, double score,
                              const char *errstr, void *arg) {
  (void)rc;
  feedback_ctx_t *f = arg;
  req_t *r = f->req;
  if (!f->answered) {
    reco__feedback_settle(f);
    if (st == RCLIENT_OK) {
      reply_double(&r->reply, score);
    } else {
      reply_errorf(&r->reply, "Redis %s: %s",
                   st == RCLIENT_UNAVAILABLE ? "unavailable" : "error", errstr ? errstr : "");
    }
    req_finish(r, st != RCLIENT_OK);
  }
  req_unref(r); /* the Redis callback's reference */
}

/* A hung Redis must not hold this connection's later replies (they leave
 * in order) for longer than feedback-timeout-ms. */
static void reco__on_feedback_deadline(uv_timer_t *t) {
  feedback_ctx_t *f = t->data;
  if (f->answered)
    return;
  reco__feedback_settle(f);
  reply_errorf(&f->req->reply, "Redis did not answer FEEDBACK within %d ms; the interaction "
               "may or may not have been recorded", f->timeout_ms);
  req_finish(f->req, 1);
}

void reco_feedback(client_t *c, struct cmd_def *cmd, const resp_cmd_t *a) {
  req_t *r = req_new(c, cmd);
  if (r == NULL)
    return;
  double w = 1.0;
  if (a->argc == 5 && reco__eq(a, 3, "WEIGHT")) {
    /* csv_parse_float checks the grammar (argv[4] is NUL-terminated); the
     * value is taken in double precision, so that WEIGHT 0.1 adds 0.1 and
     * not 0.100000001490116, and 1000000001 is over the limit. It must
     * stay > 0 as a float too: that is how the fold-in reads it back. */
    float wf;
    if (csv_parse_float(a->argv[4], a->argvlen[4], &wf) != 0 ||
        !((w = strtod(a->argv[4], NULL)) > 0.0) || w > 1e9 || !((float)w > 0.0f)) {
      reco__fail(r, "WEIGHT must be a finite number in (0, 1e9]");
      return;
    }
  } else if (a->argc != 3) {
    reco__fail(r, "syntax error");
    return;
  }
  if (a->argvlen[1] == 0 || a->argvlen[1] > RCLIENT_ID_MAX || a->argvlen[2] == 0 ||
      a->argvlen[2] > RCLIENT_ID_MAX) {
    reco__fail(r, "user and item ids must be 1 to 256 bytes");
    return;
  }
  feedback_ctx_t *f = calloc(1, sizeof *f);
  if (f == NULL) {
    reco__fail(r, "out of memory");
    return;
  }
  f->req = r;
  f->timeout_ms = c->srv->cfg->feedback_timeout_ms;
  r->ctx = f;
  r->ctx_free = free;
  if (rclient_feedback(c->srv->redis, a->argv[1], a->argvlen[1], a->argv[2], a->argvlen[2], w,
                       reco__on_feedback, f) != 0) {
    reco__fail(r, "cannot send FEEDBACK to Redis");
    return;
  }
  r->refs += 2; /* the Redis callback's and the timer's */
  uv_timer_init(c->srv->loop, &f->timer);
  f->timer.data = f;
  uv_timer_start(&f->timer, reco__on_feedback_deadline,
                 (uint64_t)c->srv->cfg->feedback_timeout_ms, 0);
}
