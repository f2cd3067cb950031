/* feedback.c - FEEDBACK <user> <item> [WEIGHT w] [TYPE t] [VALUE v]:
 * an outcome (a purchase, a cart, a click) recorded in the customer's
 * history in Redis and attributed to the recommendation that showed the
 * item, if one did (tracking.h).
 *
 * TYPE purchase (the default), cart or click; the history weight is
 * WEIGHT, else the type's feedback-weight-<type> (0: the outcome is
 * counted, the history is not changed). VALUE is the money it brought.
 * The reply is the item's weight in the history afterwards. One round trip
 * carries the history update (the feedback script below, or ZSCORE for
 * weight 0) and the read of the item's impression (tracking.h's outcome
 * script); the outcome counters are written after the reply.
 *
 * Last interaction times (issue 16): a FEEDBACK that adds weight also sets
 * the item's score in <prefix>time:<user> (a ZSET item -> unix seconds) to
 * recd's clock, unless it holds a later time already, in the same script as
 * the ZINCRBY, so the history and its times never disagree. recd's clock,
 * not Redis's TIME: a script that reads the time is not deterministic, and
 * Redis before 5 replicated scripts by their text. A weight-0 outcome and
 * hide / unhide leave the history alone, and so the times too. Neither key
 * expires nor is trimmed (the history has no TTL or cap in Redis).
 *
 * In a Redis Cluster the two keys live on two masters (unless the id has a
 * hash tag, "{u42}", which keeps them in one slot: the script above then
 * runs as on a single Redis). The script is then split in two, one per
 * key: the history's ZINCRBY (with its type check) answers the FEEDBACK,
 * and once it has succeeded the time is written on its own master (the
 * time script, fire and forget). What is lost against a single Redis: the
 * two writes are not atomic: a reader may see the new weight before its
 * time, and when the time's write fails (its master down, a key of the
 * wrong type) the FEEDBACK still succeeds with the weight recorded and
 * the item untimed (full weight, as a history entry without a time always
 * is) until its next interaction; the failure is logged. A time is never
 * written without its weight.
 *
 * TYPE hide / unhide ("not interested"): SADD / SREM of the item in
 * <prefix>hidden:<user>, which every RECOMMEND of that customer reads;
 * the reply is 1 when the set changed, else 0. A hung Redis must not hold this connection's
 * later replies (they leave in order) for longer than feedback-timeout-ms
 * (deadline.h).
 */
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "commands.h"
#include "deadline.h"
#include "log.h"
#include "model_store.h"
#include "reco.h"
#include "variants.h"
#include "rclient.h"
#include "rcluster.h"
#include "rscript.h"
#include "recd/csv.h"
#include "tracking.h"

/* A time more than this far ahead of recd's clock was not written by a
 * sane clock: FEEDBACK replaces it (recd-train counts it as malformed). */
#define FEEDBACK_TIME_AHEAD_S "86400"

/* KEYS[1] = hist:<user>, KEYS[2] = time:<user>; ARGV = weight, item, now
 * (unix seconds). Both keys' types are checked before anything is
 * written, so a key of the wrong type (another program's data) fails the
 * FEEDBACK with its name and changes nothing: a script's writes before an
 * error are not rolled back. The time goes forward only (ZADD GT by hand:
 * GT needs Redis 6.2); a score that is no plausible time (fractional,
 * more than a day ahead) is overwritten. Returns ZINCRBY's reply. */
static rscript_t feedback__script = RSCRIPT_INIT(
    "for i = 1, 2 do\n"
    "  local ty = redis.call('TYPE', KEYS[i])['ok']\n"
    "  if ty ~= 'zset' and ty ~= 'none' then\n"
    "    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' is a ' .. ty ..\n"
    "                             ', not a zset: FEEDBACK recorded nothing')\n"
    "  end\n"
    "end\n"
    "local w = redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[2])\n"
    "local now = tonumber(ARGV[3])\n"
    "local old = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[2]))\n"
    "if not old or old < now or old > now + " FEEDBACK_TIME_AHEAD_S " or\n"
    "   old ~= math.floor(old) then\n"
    "  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])\n"
    "end\n"
    "return w\n");

/* Cluster mode, the keys in two slots: the two halves of feedback__script.
 * KEYS[1] = hist:<user>, ARGV = weight, item, now: ZINCRBY's reply. */
static rscript_t feedback__hist_script = RSCRIPT_INIT(
    "local ty = redis.call('TYPE', KEYS[1])['ok']\n"
    "if ty ~= 'zset' and ty ~= 'none' then\n"
    "  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a ' .. ty ..\n"
    "                           ', not a zset: FEEDBACK recorded nothing')\n"
    "end\n"
    "return redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[2])\n");

/* KEYS[1] = time:<user>, ARGV as above: the time forward only, as in
 * feedback__script. */
static rscript_t feedback__time_script = RSCRIPT_INIT(
    "local ty = redis.call('TYPE', KEYS[1])['ok']\n"
    "if ty ~= 'zset' and ty ~= 'none' then\n"
    "  return redis.error_reply('WRONGTYPE ' .. KEYS[1] .. ' is a ' .. ty ..\n"
    "                           ', not a zset: the time was not recorded')\n"
    "end\n"
    "local now = tonumber(ARGV[3])\n"
    "local old = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))\n"
    "if not old or old < now or old > now + " FEEDBACK_TIME_AHEAD_S " or\n"
    "   old ~= math.floor(old) then\n"
    "  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])\n"
    "end\n"
    "return 1\n");

typedef struct feedback_ctx {
  req_t *req;
  server_t *srv;
  deadline_t dl;
  int timeout_ms;
  exp_counter_t counter;
  double value;
  size_t ulen;
  char user[RCLIENT_ID_MAX];
  /* cluster split: what the time's write needs once the weight is in */
  int split;
  size_t ilen;
  char item[RCLIENT_ID_MAX];
  char now[24];
} feedback_ctx_t;

static void feedback__reply(feedback_ctx_t *f, rclient_status_t st, double score,
                            const char *errstr) {
  req_t *r = f->req;
  if (!deadline_settle(&f->dl))
    return;
  if (st == RCLIENT_OK)
    reply_double(&r->reply, score);
  else
    reply_errorf(&r->reply, "Redis %s: %s", st == RCLIENT_UNAVAILABLE ? "unavailable" : "error",
                 errstr ? errstr : "");
  req_finish(r, st != RCLIENT_OK);
}

/* The time's write of a split FEEDBACK: only counted and logged (the
 * FEEDBACK has been answered by the weight). */
static void feedback__on_time(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                              const char *errstr, void *arg) {
  (void)rc, (void)rep, (void)arg;
  if (st == RCLIENT_ERROR)
    log_warning("FEEDBACK: the weight was recorded, its time not: %s", errstr ? errstr : "");
  else if (st != RCLIENT_OK)
    log_verbose("FEEDBACK: the weight was recorded, its time not (Redis unavailable: %s)",
                errstr ? errstr : "");
}

/* Cluster split: the weight is in, now the time (never without it). */
static void feedback__send_time(feedback_ctx_t *f) {
  rclient_t *rc = f->srv->redis;
  if (rc == NULL)
    return;
  char tkey[RECD_KEY_MAX], wbuf[2] = "0";
  const char *keys[1] = {tkey};
  const size_t klens[1] = {rclient_key(rc, tkey, RECD_KEY_TIME, f->user, f->ulen)};
  const char *args[3] = {wbuf, f->item, f->now};
  const size_t alens[3] = {1, f->ilen, strlen(f->now)};
  if (rscript_call(rc, &feedback__time_script, 1, keys, klens, 3, args, alens, feedback__on_time,
                   NULL) != 0)
    log_warning("FEEDBACK: the weight was recorded, its time not: out of memory");
}

/* The feedback script's reply: ZINCRBY's, the new weight as a bulk
 * string. */
static void feedback__on_script(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                                const char *errstr, void *arg) {
  (void)rc;
  feedback_ctx_t *f = arg;
  if (f->split && st == RCLIENT_OK && rep->type == REDIS_REPLY_STRING)
    feedback__send_time(f);
  double score = 0.0;
  if (st == RCLIENT_OK) {
    char *end = NULL;
    if (rep->type == REDIS_REPLY_STRING)
      score = strtod(rep->str, &end);
    if (end == NULL || end == rep->str || *end != '\0') {
      st = RCLIENT_ERROR;
      errstr = "unexpected reply to the FEEDBACK script";
    }
  }
  feedback__reply(f, st, score, errstr);
  req_release(f->req); /* the Redis callback's hold */
}

/* ZSCORE (weight 0): nil is weight 0, the item is not in the history. */
static void feedback__on_zscore(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                                const char *errstr, void *arg) {
  (void)rc;
  feedback_ctx_t *f = arg;
  double score = 0.0;
  if (st == RCLIENT_OK && rep->type == REDIS_REPLY_STRING)
    score = strtod(rep->str, NULL);
  feedback__reply(f, st, score, errstr);
  req_release(f->req);
}

/* SADD / SREM of TYPE hide / unhide: 1 when the set changed, 0 when the
 * item was already hidden (or not hidden). */
static void feedback__on_hidden(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                                const char *errstr, void *arg) {
  (void)rc;
  feedback_ctx_t *f = arg;
  req_t *r = f->req;
  if (deadline_settle(&f->dl)) {
    if (st == RCLIENT_OK && rep->type == REDIS_REPLY_INTEGER) {
      reply_int(&r->reply, rep->integer);
      req_finish(r, 0);
    } else {
      reply_errorf(&r->reply, "Redis %s: %s",
                   st == RCLIENT_UNAVAILABLE ? "unavailable" : "error",
                   errstr ? errstr : "unexpected reply to SADD/SREM");
      req_finish(r, 1);
    }
  }
  req_release(r);
}

static void feedback__expired(void *arg) {
  feedback_ctx_t *f = arg;
  reply_errorf(&f->req->reply, "Redis did not answer FEEDBACK within %d ms; the interaction "
               "may or may not have been recorded", f->timeout_ms);
  req_finish(f->req, 1);
}

static void feedback__fail(req_t *r, const char *msg) {
  reply_error(&r->reply, msg);
  req_finish(r, 1);
}

/* An item that the customer's model does not know is stored all the same
 * (new products are real), but counted, and with feedback-unknown-items
 * warn logged once per item: an id with the wrong case ("85123a") looks
 * exactly like a new product otherwise (issue 19). */
static void feedback__unknown_item(server_t *s, const reco_feedback_t *fb, int hide) {
  if (hide != 0 || s->variants == NULL)
    return;
  const variant_t *v = variants_for_user(s->variants, fb->user, fb->ulen);
  if (v == NULL || model_find_item(model_store_current(v->store)->m, fb->item, fb->ilen) >= 0)
    return;
  s->traps.feedback_unknown_items++;
  if (s->cfg->feedback_unknown_items == 1 && traps_first(s->traps.seen_items, fb->item, fb->ilen)) {
    char id[4 * 64 + 1];
    log_sanitize(id, fb->item, fb->ilen, 64);
    log_warning("FEEDBACK for item '%s', which model %s (variant %s) does not know: stored in "
                "the history all the same (logged once per item)", id,
                model_store_current(v->store)->path, v->name);
  }
}

void feedback_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  const config_t *cfg = c->srv->cfg;
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  /* The grammar (reco_parse_feedback, unit-tested with the others). */
  reco_feedback_t fb;
  char perr[RECD_ERRLEN];
  if (reco_parse_feedback(a, &fb, perr) != 0) {
    feedback__fail(r, perr);
    return;
  }
  static const exp_counter_t counters[] = {EXP_PURCHASES, EXP_CARTS, EXP_CLICKS, EXP_PURCHASES,
                                           EXP_PURCHASES};
  const double type_weights[] = {cfg->feedback_weight_purchase, cfg->feedback_weight_cart,
                                 cfg->feedback_weight_click, cfg->feedback_weight_hide,
                                 cfg->feedback_weight_unhide};
  const exp_counter_t counter = counters[fb.type];
  const double value = fb.value;
  const int hide = fb.type == RECO_FB_HIDE ? 1 : fb.type == RECO_FB_UNHIDE ? -1 : 0;
  double w = fb.weight >= 0 ? fb.weight : type_weights[fb.type];
  feedback__unknown_item(c->srv, &fb, hide);

  feedback_ctx_t *f = calloc(1, sizeof *f);
  if (f == NULL) {
    feedback__fail(r, "out of memory");
    return;
  }
  f->req = r;
  f->srv = c->srv;
  f->timeout_ms = cfg->feedback_timeout_ms;
  f->counter = counter;
  f->value = value;
  f->ulen = a->argvlen[1];
  memcpy(f->user, a->argv[1], f->ulen);
  r->ctx = f;
  r->ctx_free = free;
  rclient_t *rc = c->srv->redis;
  char key[RECD_KEY_MAX];
  int err;
  req_hold(r); /* the history update's callback */
  if (hide != 0) {
    /* "Not interested": the hidden set, nothing else (no history weight, no
     * outcome). */
    const char *argv[3] = {hide > 0 ? "SADD" : "SREM", key, a->argv[2]};
    const size_t lens[3] = {4, rclient_key(rc, key, RECD_KEY_HIDDEN, a->argv[1], a->argvlen[1]),
                            a->argvlen[2]};
    if (rclient_call(rc, 3, argv, lens, feedback__on_hidden, f) != 0) {
      req_release(r);
      feedback__fail(r, "cannot send FEEDBACK to Redis");
      return;
    }
    deadline_init(&f->dl, c->srv->loop, r);
    deadline_arm(&f->dl, (uint64_t)f->timeout_ms, feedback__expired, f);
    return;
  }
  if (w > 0) {
    char tkey[RECD_KEY_MAX], wbuf[32], now[24];
    const char *keys[2] = {key, tkey};
    const size_t klens[2] = {rclient_key(rc, key, RECD_KEY_HIST, a->argv[1], a->argvlen[1]),
                             rclient_key(rc, tkey, RECD_KEY_TIME, a->argv[1], a->argvlen[1])};
    /* %.17g round-trips every double exactly. */
    const int wl = snprintf(wbuf, sizeof wbuf, "%.17g", w);
    const int nl = snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    const char *args[3] = {wbuf, a->argv[2], now};
    const size_t alens[3] = {(size_t)wl, a->argvlen[2], (size_t)nl};
    /* In a cluster, two slots: the weight first, its time after it. */
    f->split = rclient_is_cluster(rc) && !rcluster_one_slot(2, keys, klens);
    if (f->split) {
      f->ilen = a->argvlen[2];
      memcpy(f->item, a->argv[2], f->ilen);
      memcpy(f->now, now, (size_t)nl + 1);
    }
    err = rscript_call(rc, f->split ? &feedback__hist_script : &feedback__script,
                       f->split ? 1 : 2, keys, klens, 3, args, alens, feedback__on_script, f);
  } else {
    const char *argv[3] = {"ZSCORE", key, a->argv[2]};
    const size_t lens[3] = {6, rclient_key(rc, key, RECD_KEY_HIST, a->argv[1], a->argvlen[1]),
                            a->argvlen[2]};
    err = rclient_call(rc, 3, argv, lens, feedback__on_zscore, f);
  }
  if (err != 0) {
    req_release(r);
    feedback__fail(r, "cannot send FEEDBACK to Redis");
    return;
  }
  /* In the same round trip: the impression that explains the outcome. */
  if (c->srv->tracker != NULL)
    tracker_outcome_send(c->srv->tracker, a->argv[1], a->argvlen[1], a->argv[2], a->argvlen[2],
                         counter, value);
  deadline_init(&f->dl, c->srv->loop, r);
  deadline_arm(&f->dl, (uint64_t)f->timeout_ms, feedback__expired, f);
}
