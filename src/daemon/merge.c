/* merge.c - MERGE <from-id> <to-id>: one customer across channels.
 *
 * When an anonymous visitor logs in, the storefront merges the visitor's
 * id into the customer's (DESIGN.md "Touchpoints and rules"): from-id's
 * history is added to to-id's (weights summed), its hidden items join
 * to-id's, and its impressions join to-id's (per item the latest
 * impression wins, and the shown counts add up, so rotation and
 * attribution carry over), and its last interaction times join to-id's
 * (per item the later time; a score that is no plausible time, see
 * feedback.c, is dropped from from-id's and overwritten in to-id's); then
 * from-id's history, hidden, impressions and times keys are deleted.
 * from-id's preferences (recd:pref) are the storefront's to manage and are
 * left alone. One Lua script does it all, so no reader
 * ever sees half a merge and two replicas merging at once cannot double
 * the weights (the second finds from-id empty). The reply is the number
 * of history items merged.
 *
 * Every key's type is checked before anything is written: a key of the
 * wrong type (another program's data) fails the MERGE with its name and
 * merges nothing, since a script's writes before an error stay.
 *
 * The eight keys name two customers: on a Redis Cluster they live in
 * different slots unless the storefront's ids share a hash tag, and the
 * script is then refused by Redis (CROSSSLOT), reported to the client.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "deadline.h"
#include "rclient.h"
#include "rscript.h"

/* A time more than this far ahead of recd's clock is no time (as in
 * feedback.c). */
#define MERGE_TIME_AHEAD_S "86400"

/* KEYS: hist:from hist:to hidden:from hidden:to imp:from imp:to time:from
 * time:to; ARGV[1]: the attribution window in seconds (imp:to's expiry),
 * ARGV[2]: recd's clock, unix seconds. */
static rscript_t merge__script = RSCRIPT_INIT(
    "local want = {'zset', 'zset', 'set', 'set', 'hash', 'hash', 'zset', 'zset'}\n"
    "for i = 1, 8 do\n"
    "  local ty = redis.call('TYPE', KEYS[i])['ok']\n"
    "  if ty ~= want[i] and ty ~= 'none' then\n"
    "    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' is a ' .. ty .. ', not a ' ..\n"
    "                             want[i] .. ': nothing merged')\n"
    "  end\n"
    "end\n"
    "local n = redis.call('ZCARD', KEYS[1])\n"
    "if n > 0 then\n"
    "  redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1])\n"
    "end\n"
    "if redis.call('SCARD', KEYS[3]) > 0 then\n"
    "  redis.call('SUNIONSTORE', KEYS[4], KEYS[4], KEYS[3])\n"
    "end\n"
    "local imp = redis.call('HGETALL', KEYS[5])\n"
    "local function parse(v)\n"
    "  if not v then return nil end\n"
    "  local head, ms, c = string.match(v, '^((%d+)|[^|]*|[^|]*)|(%d+)$')\n"
    "  if head then return tonumber(ms), head, tonumber(c) end\n"
    "  ms = string.match(v, '^(%d+)|[^|]*|[^|]*$')\n"
    "  if ms then return tonumber(ms), v, 1 end\n"
    "  return nil\n"
    "end\n"
    "for i = 1, #imp, 2 do\n"
    "  local item, v = imp[i], imp[i + 1]\n"
    "  local at, head, c = parse(v)\n"
    "  if at then\n"
    "    local at2, head2, c2 = parse(redis.call('HGET', KEYS[6], item))\n"
    "    if at2 then\n"
    "      if at2 > at then head = head2 end\n"
    "      c = c + c2\n"
    "    end\n"
    "    redis.call('HSET', KEYS[6], item, head .. '|' .. c)\n"
    "  end\n"
    "end\n"
    "if #imp > 0 then redis.call('EXPIRE', KEYS[6], ARGV[1]) end\n"
    "local now = tonumber(ARGV[2])\n"
    "local function time(v)\n"
    "  v = tonumber(v)\n"
    "  if v and v >= 0 and v == math.floor(v) and v <= now + " MERGE_TIME_AHEAD_S " then\n"
    "    return v\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "local ts = redis.call('ZRANGE', KEYS[7], 0, -1, 'WITHSCORES')\n"
    "for i = 1, #ts, 2 do\n"
    "  local t = time(ts[i + 1])\n"
    "  if t then\n"
    "    local t2 = time(redis.call('ZSCORE', KEYS[8], ts[i]))\n"
    "    if not t2 or t2 < t then redis.call('ZADD', KEYS[8], ts[i + 1], ts[i]) end\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[1], KEYS[3], KEYS[5], KEYS[7])\n"
    "return n\n");

typedef struct merge_ctx {
  req_t *req;
  deadline_t dl;
  int timeout_ms;
} merge_ctx_t;

static void merge__done(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                        const char *errstr, void *arg) {
  (void)rc;
  merge_ctx_t *m = arg;
  req_t *r = m->req;
  if (deadline_settle(&m->dl)) {
    if (st == RCLIENT_OK && rep->type == REDIS_REPLY_INTEGER) {
      reply_int(&r->reply, rep->integer);
      req_finish(r, 0);
    } else {
      reply_errorf(&r->reply, "MERGE: Redis %s: %s",
                   st == RCLIENT_UNAVAILABLE ? "unavailable" : "error",
                   errstr ? errstr : "unexpected reply");
      req_finish(r, 1);
    }
  }
  req_release(r);
}

static void merge__expired(void *arg) {
  merge_ctx_t *m = arg;
  reply_errorf(&m->req->reply, "Redis did not answer MERGE within %d ms; the merge may or may "
               "not have happened (running MERGE again is safe)", m->timeout_ms);
  req_finish(m->req, 1);
}

void merge_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  for (size_t i = 1; i <= 2; i++) {
    if (a->argvlen[i] == 0 || a->argvlen[i] > RCLIENT_ID_MAX) {
      reply_errorf(&r->reply, "MERGE: the %s id must be 1 to %d bytes (got %zu)",
                   i == 1 ? "from" : "to", RCLIENT_ID_MAX, a->argvlen[i]);
      req_finish(r, 1);
      return;
    }
  }
  if (a->argvlen[1] == a->argvlen[2] && memcmp(a->argv[1], a->argv[2], a->argvlen[1]) == 0) {
    reply_error(&r->reply, "MERGE: from and to are the same id");
    req_finish(r, 1);
    return;
  }
  merge_ctx_t *m = calloc(1, sizeof *m);
  if (m == NULL) {
    reply_error(&r->reply, "out of memory");
    req_finish(r, 1);
    return;
  }
  m->req = r;
  m->timeout_ms = c->srv->cfg->feedback_timeout_ms;
  r->ctx = m;
  r->ctx_free = free;
  rclient_t *rc = c->srv->redis;
  static const char *const kinds[4] = {RECD_KEY_HIST, RECD_KEY_HIDDEN, RECD_KEY_IMP,
                                       RECD_KEY_TIME};
  char kbuf[8][RECD_KEY_MAX];
  const char *keys[8];
  size_t klens[8];
  for (size_t k = 0; k < 8; k++) {
    const size_t who = 1 + k % 2; /* from, to, from, to, ... */
    klens[k] = rclient_key(rc, kbuf[k], kinds[k / 2], a->argv[who], a->argvlen[who]);
    keys[k] = kbuf[k];
  }
  char win[24], now[24];
  const size_t alens[2] = {
      (size_t)snprintf(win, sizeof win, "%llu",
                       (unsigned long long)c->srv->cfg->attribution_window),
      (size_t)snprintf(now, sizeof now, "%lld", (long long)time(NULL))};
  const char *args[2] = {win, now};
  req_hold(r);
  if (rscript_call(rc, &merge__script, 8, keys, klens, 2, args, alens, merge__done, m) != 0) {
    req_release(r);
    reply_error(&r->reply, "cannot send MERGE to Redis");
    req_finish(r, 1);
    return;
  }
  deadline_init(&m->dl, c->srv->loop, r);
  deadline_arm(&m->dl, (uint64_t)m->timeout_ms, merge__expired, m);
}
