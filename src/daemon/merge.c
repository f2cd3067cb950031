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
 * In a Redis Cluster the eight keys live in as many slots (unless the two
 * ids share a hash tag, "{c42}:web" and "{c42}:app": the script then runs
 * as on a single Redis), and one script cannot touch them: MERGE is then
 * done in per-key steps, each of the four kinds on its own:
 *   1. read from-id's keys (ZRANGE / SMEMBERS / HGETALL) and check the
 *      types of to-id's (TYPE), all in parallel; a key of the wrong type
 *      fails the MERGE, named, before anything is written;
 *   2. add what was read to to-id's key (one single-key script or SADD per
 *      kind, the same rules as the script: weights summed, the latest
 *      impression with the shown counts added, the later time);
 *   3. remove from from-id's key exactly what was read (an entry that
 *      changed meanwhile, a FEEDBACK to from-id during the MERGE, keeps
 *      the difference), for each kind whose step 2 succeeded.
 * What is lost against a single Redis: atomicity. A reader may see a half
 * merge (to-id's history merged, the hidden items not yet), and two MERGEs
 * of the same ids at once (two replicas) may both add from-id's entries
 * to to-id's (the single Redis's second MERGE finds from-id empty). A
 * failure (a master down) leaves the kinds that failed in from-id's keys
 * and says so; running MERGE again then completes the merge (each kind
 * that was moved is gone from from-id), except after a failure in step 3
 * (the entries moved but not removed would be added again: the error says
 * so).
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "deadline.h"
#include "log.h"
#include "rclient.h"
#include "rcluster.h"
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

/* ---- cluster mode: per-key steps ------------------------------------- */

/* Step 2, KEYS[1] = hist:to, ARGV = member, score pairs of hist:from. */
static rscript_t merge__hist_add = RSCRIPT_INIT(
    "for i = 1, #ARGV, 2 do redis.call('ZINCRBY', KEYS[1], ARGV[i + 1], ARGV[i]) end\n"
    "return #ARGV / 2\n");

/* Step 2, KEYS[1] = imp:to, ARGV[1] = the window (its expiry), then item,
 * impression pairs of imp:from; the rule of merge__script. */
static rscript_t merge__imp_add = RSCRIPT_INIT(
    "local function parse(v)\n"
    "  if not v then return nil end\n"
    "  local head, ms, c = string.match(v, '^((%d+)|[^|]*|[^|]*)|(%d+)$')\n"
    "  if head then return tonumber(ms), head, tonumber(c) end\n"
    "  ms = string.match(v, '^(%d+)|[^|]*|[^|]*$')\n"
    "  if ms then return tonumber(ms), v, 1 end\n"
    "  return nil\n"
    "end\n"
    "for i = 2, #ARGV, 2 do\n"
    "  local item, v = ARGV[i], ARGV[i + 1]\n"
    "  local at, head, c = parse(v)\n"
    "  if at then\n"
    "    local at2, head2, c2 = parse(redis.call('HGET', KEYS[1], item))\n"
    "    if at2 then\n"
    "      if at2 > at then head = head2 end\n"
    "      c = c + c2\n"
    "    end\n"
    "    redis.call('HSET', KEYS[1], item, head .. '|' .. c)\n"
    "  end\n"
    "end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[1])\n"
    "return 1\n");

/* Step 2, KEYS[1] = time:to, ARGV[1] = recd's clock, then member, score
 * pairs of time:from; the rule of merge__script. */
static rscript_t merge__time_add = RSCRIPT_INIT(
    "local now = tonumber(ARGV[1])\n"
    "local function time(v)\n"
    "  v = tonumber(v)\n"
    "  if v and v >= 0 and v == math.floor(v) and v <= now + " MERGE_TIME_AHEAD_S " then\n"
    "    return v\n"
    "  end\n"
    "  return nil\n"
    "end\n"
    "for i = 2, #ARGV, 2 do\n"
    "  local t = time(ARGV[i + 1])\n"
    "  if t then\n"
    "    local t2 = time(redis.call('ZSCORE', KEYS[1], ARGV[i]))\n"
    "    if not t2 or t2 < t then redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i]) end\n"
    "  end\n"
    "end\n"
    "return 1\n");

/* Step 3, KEYS[1] = hist:from, ARGV = the pairs read: an unchanged entry
 * goes, a changed one keeps the difference. */
static rscript_t merge__hist_take = RSCRIPT_INIT(
    "for i = 1, #ARGV, 2 do\n"
    "  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])\n"
    "  if s == ARGV[i + 1] then redis.call('ZREM', KEYS[1], ARGV[i])\n"
    "  elseif s then redis.call('ZINCRBY', KEYS[1], -tonumber(ARGV[i + 1]), ARGV[i]) end\n"
    "end\n"
    "return 1\n");

/* Step 3, KEYS[1] = imp:from, ARGV[1] unused, then the pairs read: an
 * unchanged field goes. */
static rscript_t merge__imp_take = RSCRIPT_INIT(
    "for i = 2, #ARGV, 2 do\n"
    "  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then\n"
    "    redis.call('HDEL', KEYS[1], ARGV[i])\n"
    "  end\n"
    "end\n"
    "return 1\n");

/* Step 3, KEYS[1] = time:from, ARGV[1] unused, then the pairs read. */
static rscript_t merge__time_take = RSCRIPT_INIT(
    "for i = 2, #ARGV, 2 do\n"
    "  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then\n"
    "    redis.call('ZREM', KEYS[1], ARGV[i])\n"
    "  end\n"
    "end\n"
    "return 1\n");

enum { MERGE__HIST = 0, MERGE__HIDDEN = 1, MERGE__IMP = 2, MERGE__TIME = 3, MERGE__KINDS = 4 };
static const char *const merge__kind_name[MERGE__KINDS] = {"history", "hidden items",
                                                           "impressions", "times"};

typedef struct merge_split merge_split_t;

/* One call of a step: its callback's arg. */
typedef struct merge_call {
  merge_split_t *ms;
  int idx; /* step 1: 0-3 the reads of from-id's kinds, 4-7 the types of
              to-id's; steps 2 and 3: the kind */
} merge_call_t;

/* What step 1 read from one of from-id's keys: v[2..2+n) with their
 * lengths; v[0] and v[1] are free for the command or a leading argument. */
typedef struct merge_read {
  size_t n;
  const char **v;
  size_t *len;
  char *bytes;
} merge_read_t;

struct merge_split {
  struct merge_ctx *m;
  int step;                  /* 0 before step 1, then 1, 2, 3 */
  int pending;               /* calls of the step not back yet */
  rclient_status_t st;       /* the first failure of the step ... */
  char err[RCLIENT_ERRLEN];  /* ... and why */
  int failed_add[MERGE__KINDS];  /* the kind's step 2 failed */
  int failed_take[MERGE__KINDS]; /* the kind's step 3 failed */
  int moved[MERGE__KINDS];   /* step 2 done for the kind (something read) */
  merge_read_t got[MERGE__KINDS];
  long long merged;          /* history items read */
  char key[8][RECD_KEY_MAX]; /* hist:from hist:to hidden:from ... */
  size_t klen[8];
  char arg1[2][24];          /* the window, recd's clock */
  merge_call_t calls[8];
};

typedef struct merge_ctx {
  req_t *req;
  deadline_t dl;
  int timeout_ms;
  rclient_t *rc;
  merge_split_t *split;      /* cluster mode, keys in several slots */
} merge_ctx_t;

static void merge__ctx_free(void *p) {
  merge_ctx_t *m = p;
  if (m->split != NULL)
    for (int k = 0; k < MERGE__KINDS; k++) {
      free(m->split->got[k].v);
      free(m->split->got[k].bytes);
    }
  free(m->split);
  free(m);
}

static void merge__fail(merge_split_t *ms, rclient_status_t st, const char *why) {
  if (ms->st == RCLIENT_OK) {
    ms->st = st;
    snprintf(ms->err, sizeof ms->err, "%s", why != NULL ? why : "unexpected reply");
  }
}

/* Copies the strings of an array reply into got (v[2..]). */
static int merge__keep(merge_read_t *got, const redisReply *rep) {
  size_t bytes = 0;
  for (size_t i = 0; i < rep->elements; i++)
    if (rep->element[i]->type == REDIS_REPLY_STRING)
      bytes += rep->element[i]->len;
  got->v = malloc((rep->elements + 2) * (sizeof *got->v + sizeof *got->len));
  got->bytes = malloc(bytes > 0 ? bytes : 1);
  if (got->v == NULL || got->bytes == NULL)
    return RECD_ENOMEM;
  got->len = (size_t *)(void *)(got->v + rep->elements + 2);
  char *p = got->bytes;
  for (size_t i = 0; i < rep->elements; i++) {
    const redisReply *e = rep->element[i];
    if (e->type != REDIS_REPLY_STRING)
      return RECD_EFORMAT;
    memcpy(p, e->str, e->len);
    got->v[2 + got->n] = p;
    got->len[2 + got->n] = e->len;
    got->n++;
    p += e->len;
  }
  return 0;
}

static void merge__step(merge_ctx_t *m);

/* "history, times": the kinds flagged in f. */
static void merge__kinds(char *out, size_t cap, const int *f) {
  out[0] = '\0';
  for (int k = 0; k < MERGE__KINDS; k++)
    if (f[k])
      snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? ", " : "",
               merge__kind_name[k]);
}

static void merge__reply_cluster(merge_ctx_t *m) {
  merge_split_t *ms = m->split;
  req_t *r = m->req;
  if (!deadline_settle(&m->dl))
    return;
  char add[96], take[96];
  merge__kinds(add, sizeof add, ms->failed_add);
  merge__kinds(take, sizeof take, ms->failed_take);
  if (ms->step <= 1 && ms->st != RCLIENT_OK) {
    reply_errorf(&r->reply, "MERGE: Redis %s: %s (nothing merged)",
                 ms->st == RCLIENT_UNAVAILABLE ? "unavailable" : "error", ms->err);
    req_finish(r, 1);
  } else if (add[0] != '\0') {
    reply_errorf(&r->reply, "MERGE: partly done in the Redis Cluster: %s not merged (%s); "
                 "running MERGE again completes it%s%s%s", add, ms->err,
                 take[0] ? ", but would add the " : "", take,
                 take[0] ? " twice (moved, not removed from the from id)" : "");
    req_finish(r, 1);
  } else if (take[0] != '\0') {
    reply_errorf(&r->reply, "MERGE: merged, but the %s of the from id could not be removed "
                 "(%s); running MERGE again would add them twice", take, ms->err);
    req_finish(r, 1);
  } else {
    reply_int(&r->reply, ms->merged);
    req_finish(r, 0);
  }
}

static void merge__call_done(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                             const char *errstr, void *arg) {
  (void)rc;
  merge_call_t *c = arg;
  merge_split_t *ms = c->ms;
  int bad = 0;
  if (st != RCLIENT_OK) {
    merge__fail(ms, st, errstr);
    bad = 1;
  } else if (rep->type == REDIS_REPLY_ERROR) {
    merge__fail(ms, RCLIENT_ERROR, rep->str);
    bad = 1;
  } else if (ms->step == 1 && c->idx < MERGE__KINDS) {
    merge_read_t *got = &ms->got[c->idx];
    const int rcode = rep->type == REDIS_REPLY_ARRAY ? merge__keep(got, rep) : RECD_EFORMAT;
    if (rcode != 0)
      merge__fail(ms, RCLIENT_ERROR, rcode == RECD_ENOMEM ? "out of memory"
                                                          : "unexpected reply to a read");
    else if (c->idx == MERGE__HIST)
      ms->merged = (long long)(got->n / 2);
  } else if (ms->step == 1) {
    static const char *const want[MERGE__KINDS] = {"zset", "set", "hash", "zset"};
    const int k = c->idx - MERGE__KINDS;
    const char *ty = (rep->type == REDIS_REPLY_STATUS || rep->type == REDIS_REPLY_STRING) &&
                     rep->str != NULL ? rep->str : "?";
    if (strcmp(ty, want[k]) != 0 && strcmp(ty, "none") != 0) {
      char why[RCLIENT_ERRLEN];
      snprintf(why, sizeof why, "WRONGTYPE %.*s is a %.16s, not a %s",
               (int)(ms->klen[2 * k + 1] > 64 ? 64 : ms->klen[2 * k + 1]), ms->key[2 * k + 1],
               ty, want[k]);
      merge__fail(ms, RCLIENT_ERROR, why);
    }
  }
  if (bad && ms->step == 2 && c->idx < MERGE__KINDS)
    ms->failed_add[c->idx] = 1;
  else if (bad && ms->step == 3 && c->idx < MERGE__KINDS)
    ms->failed_take[c->idx] = 1;
  if (--ms->pending > 0)
    return;
  merge__step(ms->m);
}

/* Sends one call of the current step (its callback's arg: calls[idx]);
 * a call that cannot be sent fails the step's kind at once. */
static void merge__send(merge_ctx_t *m, int idx, rscript_t *script, int argc, const char **argv,
                        const size_t *lens) {
  merge_split_t *ms = m->split;
  ms->calls[idx] = (merge_call_t){ms, idx};
  int rc;
  if (script != NULL) /* argv[0] is the key, the rest its arguments */
    rc = rscript_call(m->rc, script, 1, argv, lens, (size_t)argc - 1, argv + 1, lens + 1,
                      merge__call_done, &ms->calls[idx]);
  else
    rc = rclient_call(m->rc, argc, argv, lens, merge__call_done, &ms->calls[idx]);
  if (rc == 0) {
    ms->pending++;
    return;
  }
  merge__fail(ms, RCLIENT_ERROR, "cannot send MERGE to Redis");
  if (ms->step == 2 && idx < MERGE__KINDS)
    ms->failed_add[idx] = 1;
  else if (ms->step == 3 && idx < MERGE__KINDS)
    ms->failed_take[idx] = 1;
}

/* Step 2 (add to to-id's key) or 3 (take from from-id's) of kind k. */
static void merge__send_kind(merge_ctx_t *m, int k, int take) {
  merge_split_t *ms = m->split;
  merge_read_t *got = &ms->got[k];
  const int key = 2 * k + (take ? 0 : 1);
  static rscript_t *const add_s[MERGE__KINDS] = {&merge__hist_add, NULL, &merge__imp_add,
                                                 &merge__time_add};
  static rscript_t *const take_s[MERGE__KINDS] = {&merge__hist_take, NULL, &merge__imp_take,
                                                  &merge__time_take};
  if (k == MERGE__HIDDEN) {
    got->v[0] = take ? "SREM" : "SADD";
    got->len[0] = 4;
    got->v[1] = ms->key[key];
    got->len[1] = ms->klen[key];
    merge__send(m, k, NULL, (int)got->n + 2, got->v, got->len);
    return;
  }
  /* [key, (leading argument,) the pairs read] */
  const int lead = k == MERGE__HIST ? 0 : 1;
  const char **v = got->v + 1 - lead;
  size_t *len = got->len + 1 - lead;
  if (lead) {
    got->v[1] = ms->arg1[k == MERGE__IMP ? 0 : 1];
    got->len[1] = strlen(got->v[1]);
  }
  v[0] = ms->key[key];
  len[0] = ms->klen[key];
  merge__send(m, k, take ? take_s[k] : add_s[k], (int)got->n + 1 + lead, v, len);
}

/* Runs the next step once the current one is back; the reply when none is
 * left (or the request cannot go on). */
static void merge__step(merge_ctx_t *m) {
  merge_split_t *ms = m->split;
  while (ms->pending == 0) {
    if (ms->step == 0) {
      static const char *const read[MERGE__KINDS] = {"ZRANGE", "SMEMBERS", "HGETALL", "ZRANGE"};
      ms->step = 1;
      for (int k = 0; k < MERGE__KINDS; k++) {
        const int zset = k == MERGE__HIST || k == MERGE__TIME;
        const char *argv[5] = {read[k], ms->key[2 * k], "0", "-1", "WITHSCORES"};
        const size_t lens[5] = {strlen(read[k]), ms->klen[2 * k], 1, 2, 10};
        merge__send(m, k, NULL, zset ? 5 : 2, argv, lens);
        const char *targv[2] = {"TYPE", ms->key[2 * k + 1]};
        const size_t tlens[2] = {4, ms->klen[2 * k + 1]};
        merge__send(m, MERGE__KINDS + k, NULL, 2, targv, tlens);
      }
      continue; /* a read that could not be sent fails step 1 */
    }
    if (ms->step == 1) {
      if (ms->st != RCLIENT_OK)
        break; /* nothing written */
      ms->step = 2;
      for (int k = 0; k < MERGE__KINDS; k++)
        if (ms->got[k].n > 0) {
          ms->moved[k] = 1;
          merge__send_kind(m, k, 0);
        }
      continue;
    }
    if (ms->step == 2) {
      ms->step = 3;
      for (int k = 0; k < MERGE__KINDS; k++)
        if (ms->moved[k] && !ms->failed_add[k])
          merge__send_kind(m, k, 1);
      continue;
    }
    break;
  }
  if (ms->pending > 0)
    return;
  merge__reply_cluster(m);
  req_release(m->req); /* merge_command's hold */
}

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
  if (m->split != NULL)
    reply_errorf(&m->req->reply, "Redis did not answer MERGE within %d ms; its steps go on in "
                 "the Redis Cluster and the merge may be partly done", m->timeout_ms);
  else
    reply_errorf(&m->req->reply, "Redis did not answer MERGE within %d ms; the merge may or "
                 "may not have happened (running MERGE again is safe)", m->timeout_ms);
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
  r->ctx_free = merge__ctx_free;
  rclient_t *rc = c->srv->redis;
  m->rc = rc;
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
  if (rclient_is_cluster(rc) && !rcluster_one_slot(8, keys, klens)) {
    merge_split_t *ms = calloc(1, sizeof *ms);
    if (ms == NULL) {
      reply_error(&r->reply, "out of memory");
      req_finish(r, 1);
      return;
    }
    m->split = ms;
    ms->m = m;
    for (size_t k = 0; k < 8; k++) {
      memcpy(ms->key[k], keys[k], klens[k]);
      ms->klen[k] = klens[k];
    }
    memcpy(ms->arg1[0], win, alens[0] + 1);
    memcpy(ms->arg1[1], now, alens[1] + 1);
    req_hold(r); /* released when the last step is back */
    deadline_init(&m->dl, c->srv->loop, r);
    deadline_arm(&m->dl, (uint64_t)m->timeout_ms, merge__expired, m);
    merge__step(m);
    return;
  }
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
