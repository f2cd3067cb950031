/* tracking.c - see tracking.h. */
#include "tracking.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rscript.h"

/* A customer's impressions are trimmed back to the cap once they exceed it
 * by a quarter: trimming costs an HGETALL of the whole hash, which must not
 * happen on every answer of a customer who sits at the cap. */
#define TRACKER_TRIM_SLACK(cap) ((cap) / 4 + 1)

/* Requests and impressions of one (variant, placement) not yet added to
 * Redis. */
typedef struct tracker__agg {
  char variant[EXP_NAME_MAX + 1];
  char placement[EXP_NAME_MAX + 1];
  uint64_t requests, impressions;
} tracker__agg_t;

/* How often the counted requests and impressions go to Redis. */
#define TRACKER_FLUSH_MS 100

struct tracker {
  uv_loop_t *loop;
  rclient_t *rc;
  const variants_t *vs;
  tracker_opts_t o;
  uv_timer_t refresh;
  uv_timer_t flush;        /* TRACKER_FLUSH_MS: the counted requests */
  int handles;             /* refresh and flush, until closed */
  tracker__agg_t *agg;
  size_t n_agg, cap_agg;
  void (*closed)(void *arg); /* tracker_close()'s callback */
  void *closed_arg;
  int refresh_inflight;
  int closing;
  unsigned pending;        /* Redis calls whose callback still needs us */
  exp_report_t report;     /* the last refresh's */
  int have_report;
  uint64_t report_at_ms;   /* uv_now() of that refresh */
  tracker_stats_t st;
};

static void tracker__maybe_free(tracker_t *t) {
  if (t->closing && t->pending == 0 && t->handles == 0) {
    void (*closed)(void *) = t->closed;
    void *arg = t->closed_arg;
    exp_report_free(&t->report);
    free(t->agg);
    free(t);
    if (closed != NULL)
      closed(arg);
  }
}

static int64_t tracker__now_ms(void) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0)
    return 0;
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Counts a failed fire-and-forget write. */
static void tracker__write_done(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                                const char *errstr, void *arg) {
  (void)rc, (void)rep, (void)errstr;
  tracker_t *t = arg;
  t->pending--;
  if (st != RCLIENT_OK)
    t->st.errors++;
  tracker__maybe_free(t);
}

static void tracker__send(tracker_t *t, int argc, const char **argv, const size_t *lens,
                          rclient_call_cb cb, void *arg) {
  if (rclient_call(t->rc, argc, argv, lens, cb, arg) != 0) {
    t->st.errors++;
    return;
  }
  t->pending++;
}

/* HINCRBY (or HINCRBYFLOAT) <prefix>exp:counters <variant>|<placement>|<c> by. */
static void tracker__count(tracker_t *t, const char *variant, const char *placement,
                           exp_counter_t c, double by) {
  char key[RECD_KEY_MAX], field[3 * EXP_NAME_MAX + 16], num[32];
  const size_t kl = rclient_key(t->rc, key, RECD_KEY_EXP_COUNTERS, NULL, 0);
  const size_t fl = exp_field(field, sizeof field, variant, placement, c);
  if (fl == 0)
    return; /* names are validated before they get here */
  const int is_float = c == EXP_VALUE;
  const int nl = is_float ? snprintf(num, sizeof num, "%.17g", by)
                          : snprintf(num, sizeof num, "%lld", (long long)by);
  const char *argv[4] = {is_float ? "HINCRBYFLOAT" : "HINCRBY", key, field, num};
  const size_t lens[4] = {is_float ? 12u : 7u, kl, fl, (size_t)nl};
  tracker__send(t, 4, argv, lens, tracker__write_done, t);
}

/* ---- impressions ----------------------------------------------------- */

/* The end of both impressions scripts: past cap + slack, the oldest
 * beyond cap are deleted; this answer's own items (the Lua table `new`,
 * filled by the Lua line fill_new from the script's item arguments) never lose a tie to an
 * older one written in the same millisecond, and equal times are broken by
 * item id so that the choice is deterministic. HDEL goes in slices because
 * Lua's unpack() has a stack limit (~8000 values). */
#define TRACKER__TRIM_LUA(fill_new)                                                                \
  "local cap = tonumber(ARGV[4])\n"                                                               \
  "if redis.call('HLEN', key) <= cap + tonumber(ARGV[5]) then return 0 end\n"                     \
  "local new = {}\n" fill_new                                                                     \
  "local all = redis.call('HGETALL', key)\n"                                                      \
  "local t = {}\n"                                                                                \
  "for i = 1, #all, 2 do\n"                                                                       \
  "  t[#t + 1] = {all[i], tonumber(string.match(all[i + 1], '^(%d+)|')) or 0,\n"                  \
  "               new[all[i]] and 1 or 0}\n"                                                      \
  "end\n"                                                                                         \
  "table.sort(t, function(x, y)\n"                                                                \
  "  if x[3] ~= y[3] then return x[3] > y[3] end\n"                                               \
  "  if x[2] ~= y[2] then return x[2] > y[2] end\n"                                               \
  "  return x[1] < y[1]\n"                                                                        \
  "end)\n"                                                                                        \
  "local n = 0\n"                                                                                 \
  "for i = cap + 1, #t, 1000 do\n"                                                                \
  "  local d = {}\n"                                                                              \
  "  for j = i, math.min(i + 999, #t) do d[#d + 1] = t[j][1] end\n"                               \
  "  n = n + redis.call('HDEL', key, unpack(d))\n"                                                \
  "end\n"                                                                                         \
  "return n\n"

/* One command per answer: the items' impressions (HSET, the latest wins,
 * each with the number of times it was shown since its last outcome, see
 * tracking.h), the expiry (EXPIRE, sliding with the customer's last
 * answer) and the cap (past cap + slack, the oldest beyond cap are
 * deleted; this answer's own items never lose a tie to an older one
 * written in the same millisecond, and equal times are broken by item id
 * so that the choice is deterministic), atomically in Redis. Against HSET +
 * EXPIRE + HLEN from the daemon (and the HGETALL and HDEL of a trim), this
 * halves the commands per answer (measured: tracking then cost 15-25% of
 * RECOMMEND throughput at 100k items and 50 connections). One key: the
 * script is cluster-safe. HMGET / HDEL go in slices because Lua's unpack()
 * has a stack limit (~8000 values).
 * KEYS[1] = imp:<user>; ARGV = now ms, "|<variant>|<placement>|", window s,
 * cap, slack, item... */
static rscript_t tracker__script = RSCRIPT_INIT(
    "local key, now, tag = KEYS[1], tonumber(ARGV[1]), ARGV[2]\n"
    "local win = tonumber(ARGV[3]) * 1000\n"
    "local items = {}\n"
    "for i = 6, #ARGV do items[#items + 1] = ARGV[i] end\n"
    "local a = {}\n"
    "for i = 1, #items, 1000 do\n"
    "  local s = {}\n"
    "  for j = i, math.min(i + 999, #items) do s[#s + 1] = items[j] end\n"
    "  local old = redis.call('HMGET', key, unpack(s))\n"
    "  for j = 1, #s do\n"
    "    local n = 1\n"
    "    if old[j] then\n"
    "      local t, c = string.match(old[j], '^(%d+)|[^|]*|[^|]*|(%d+)$')\n"
    "      if t and now - tonumber(t) <= win then n = tonumber(c) + 1 end\n"
    "    end\n"
    "    a[#a + 1] = s[j]; a[#a + 1] = ARGV[1] .. tag .. n\n"
    "  end\n"
    "end\n"
    "for i = 1, #a, 1000 do\n"
    "  redis.call('HSET', key, unpack(a, i, math.min(i + 999, #a)))\n"
    "end\n"
    "redis.call('EXPIRE', key, ARGV[3])\n"
    TRACKER__TRIM_LUA("for i = 1, #items do new[items[i]] = true end\n"));

/* The same without shown counts (track-shown no, the default): values
 * "<unix ms>|<variant>|<placement>", no read of the old values. Counting
 * costs Redis a read and a parse of every shown item's old value (the
 * script above took about twice this one's Redis time, measured with
 * redis-benchmark), so a shop that does not rotate does not pay for it.
 * ARGV as above. */
static rscript_t tracker__plain_script = RSCRIPT_INIT(
    "local key, tag = KEYS[1], ARGV[1] .. string.sub(ARGV[2], 1, -2)\n"
    "local a = {}\n"
    "for i = 6, #ARGV do a[#a + 1] = ARGV[i]; a[#a + 1] = tag end\n"
    "for i = 1, #a, 1000 do\n"
    "  redis.call('HSET', key, unpack(a, i, math.min(i + 999, #a)))\n"
    "end\n"
    "redis.call('EXPIRE', key, ARGV[3])\n"
    TRACKER__TRIM_LUA("for i = 6, #ARGV do new[ARGV[i]] = true end\n"));

/* An outcome (click, cart, purchase) of an item: its impression is read
 * for the attribution and, in the same step, its shown count goes back to
 * 0 ("shown n times without an outcome since", the rotation rule).
 * KEYS[1] = imp:<user>; ARGV[1] = the item. Returns the impression as it
 * was (nil when none). */
static rscript_t tracker__outcome_script = RSCRIPT_INIT(
    "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if v then\n"
    "  local head = string.match(v, '^(%d+|[^|]*|[^|]*)|%d+$')\n"
    "  if head then redis.call('HSET', KEYS[1], ARGV[1], head .. '|0') end\n"
    "end\n"
    "return v\n");

/* The script's reply: how many impressions the cap removed. */
static void tracker__script_done(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                                 const char *errstr, void *arg) {
  (void)rc, (void)errstr;
  tracker_t *t = arg;
  t->pending--;
  if (st != RCLIENT_OK)
    t->st.errors++;
  else if (rep->type == REDIS_REPLY_INTEGER && rep->integer > 0)
    t->st.trims++;
  tracker__maybe_free(t);
}

/* Requests and impressions are counted in memory and added to Redis every
 * TRACKER_FLUSH_MS: one HINCRBY per (variant, placement, counter) and
 * period instead of two per answer. */
static tracker__agg_t *tracker__agg(tracker_t *t, const char *variant, const char *placement) {
  for (size_t i = 0; i < t->n_agg; i++)
    if (strcmp(t->agg[i].variant, variant) == 0 && strcmp(t->agg[i].placement, placement) == 0)
      return &t->agg[i];
  if (t->n_agg == t->cap_agg) {
    size_t cap = t->cap_agg ? 2 * t->cap_agg : 8;
    tracker__agg_t *a = realloc(t->agg, cap * sizeof *a);
    if (a == NULL)
      return NULL;
    t->agg = a;
    t->cap_agg = cap;
  }
  tracker__agg_t *g = &t->agg[t->n_agg++];
  memset(g, 0, sizeof *g);
  snprintf(g->variant, sizeof g->variant, "%s", variant);
  snprintf(g->placement, sizeof g->placement, "%s", placement);
  return g;
}

static void tracker__flush(tracker_t *t) {
  for (size_t i = 0; i < t->n_agg; i++) {
    tracker__agg_t *g = &t->agg[i];
    if (g->requests > 0)
      tracker__count(t, g->variant, g->placement, EXP_REQUESTS, (double)g->requests);
    if (g->impressions > 0)
      tracker__count(t, g->variant, g->placement, EXP_IMPRESSIONS, (double)g->impressions);
  }
  /* The pairs stay (a few per placement): their order is stable and the
   * next period needs no allocation. */
  for (size_t i = 0; i < t->n_agg; i++)
    t->agg[i].requests = t->agg[i].impressions = 0;
}

static void tracker__flush_tick(uv_timer_t *h) {
  tracker__flush(h->data);
}

void tracker_impressions(tracker_t *t, const char *user, size_t ulen, const char *variant,
                         const char *placement, const char *const *ids, const size_t *lens,
                         size_t n) {
  if (!t->o.enabled || t->closing)
    return;
  t->st.requests++;
  t->st.impressions += n;
  tracker__agg_t *g = tracker__agg(t, variant, placement);
  if (g == NULL) {
    t->st.errors++; /* out of memory: counted, not recorded */
    return;
  }
  g->requests++;
  g->impressions += n;
  if (n == 0)
    return;
  const char **argv = malloc((n + 5) * sizeof *argv);
  size_t *alens = malloc((n + 5) * sizeof *alens);
  if (argv == NULL || alens == NULL) {
    t->st.errors++;
    free(argv);
    free(alens);
    return;
  }
  char key[RECD_KEY_MAX], now[24], tag[4 + 2 * EXP_NAME_MAX], secs[24], cap[24], slack[24];
  const size_t kl = rclient_key(t->rc, key, RECD_KEY_IMP, user, ulen);
  const int nl = snprintf(now, sizeof now, "%lld", (long long)tracker__now_ms());
  const int tl = snprintf(tag, sizeof tag, "|%s|%s|", variant, placement);
  const int sl = snprintf(secs, sizeof secs, "%llu", (unsigned long long)t->o.window_s);
  const int cl = snprintf(cap, sizeof cap, "%u", t->o.cap);
  const int xl = snprintf(slack, sizeof slack, "%u", TRACKER_TRIM_SLACK(t->o.cap));
  size_t argc = 0;
#define ARG(p, l) (argv[argc] = (p), alens[argc++] = (size_t)(l))
  ARG(now, nl);
  ARG(tag, tl);
  ARG(secs, sl);
  ARG(cap, cl);
  ARG(slack, xl);
  for (size_t i = 0; i < n; i++)
    ARG(ids[i], lens[i]);
#undef ARG
  const char *keys[1] = {key};
  if (rscript_call(t->rc, t->o.count_shown ? &tracker__script : &tracker__plain_script, 1, keys,
                   &kl, argc, argv, alens,
                   tracker__script_done, t) != 0)
    t->st.errors++;
  else
    t->pending++;
  free(argv);
  free(alens);
}

int tracker_parse_impression(const char *v, size_t len, tracker_impression_t *out) {
  memset(out, 0, sizeof *out);
  size_t i = 0;
  int64_t at = 0;
  for (; i < len && i < 18 && v[i] >= '0' && v[i] <= '9'; i++)
    at = at * 10 + (v[i] - '0');
  if (i == 0 || i >= len || v[i] != '|' || at <= 0)
    return -1;
  const char *p1 = v + i;
  const char *end = v + len;
  const char *p2 = memchr(p1 + 1, '|', (size_t)(end - p1 - 1));
  if (p2 == NULL)
    return -1;
  const char *p3 = memchr(p2 + 1, '|', (size_t)(end - p2 - 1));
  const char *pend = p3 ? p3 : end;
  const size_t vl = (size_t)(p2 - p1 - 1), pl = (size_t)(pend - p2 - 1);
  if (!exp_name_valid(p1 + 1, vl) || !exp_name_valid(p2 + 1, pl))
    return -1;
  uint64_t shown = 1; /* written before counts were kept: shown once */
  if (p3 != NULL) {
    const char *q = p3 + 1;
    if (q == end || end - q > 9)
      return -1;
    shown = 0;
    for (; q < end; q++) {
      if (*q < '0' || *q > '9')
        return -1;
      shown = shown * 10 + (uint64_t)(*q - '0');
    }
  }
  out->at_ms = at;
  memcpy(out->variant, p1 + 1, vl);
  out->variant[vl] = '\0';
  memcpy(out->placement, p2 + 1, pl);
  out->placement[pl] = '\0';
  out->shown = shown;
  return 0;
}

int tracker_within_window(const tracker_t *t, int64_t at_ms) {
  const int64_t age = tracker__now_ms() - at_ms;
  /* A minute of clock skew between replicas is tolerated. */
  return age >= -60000 && age <= (int64_t)t->o.window_s * 1000;
}

void tracker_outcome(tracker_t *t, const char *user, size_t ulen, const char *impression,
                     size_t ilen, exp_counter_t counter, double value) {
  if (t->closing)
    return;
  char variant[EXP_NAME_MAX + 1], placement[EXP_NAME_MAX + 1];
  tracker_impression_t imp;
  /* Anything tracker_impressions did not write (another program's value)
   * is no impression. */
  if (impression != NULL && ilen > 0 && tracker_parse_impression(impression, ilen, &imp) == 0 &&
      tracker_within_window(t, imp.at_ms)) {
    memcpy(variant, imp.variant, sizeof variant);
    memcpy(placement, imp.placement, sizeof placement);
    t->st.attributed++;
  } else {
    snprintf(variant, sizeof variant, "%s", variants_for_user(t->vs, user, ulen)->name);
    snprintf(placement, sizeof placement, "%s", EXP_ORGANIC);
    t->st.organic++;
  }
  tracker__count(t, variant, placement, counter, 1);
  if (value > 0)
    tracker__count(t, variant, placement, EXP_VALUE, value);
}

/* An outcome's reading of its impression (the outcome script). */
typedef struct tracker__outcome {
  tracker_t *t;
  exp_counter_t counter;
  double value;
  size_t ulen;
  char user[];
} tracker__outcome_t;

static void tracker__outcome_done(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                                  const char *errstr, void *arg) {
  (void)rc, (void)errstr;
  tracker__outcome_t *o = arg;
  tracker_t *t = o->t;
  t->pending--;
  if (st != RCLIENT_OK) {
    t->st.errors++; /* the outcome goes uncounted; the history is updated */
  } else {
    const int have = rep->type == REDIS_REPLY_STRING;
    tracker_outcome(t, o->user, o->ulen, have ? rep->str : NULL, have ? rep->len : 0, o->counter,
                    o->value);
  }
  free(o);
  tracker__maybe_free(t);
}

void tracker_outcome_send(tracker_t *t, const char *user, size_t ulen, const char *item,
                          size_t ilen, exp_counter_t counter, double value) {
  if (t->closing)
    return;
  tracker__outcome_t *o = malloc(sizeof *o + ulen);
  if (o == NULL) {
    t->st.errors++;
    return;
  }
  o->t = t;
  o->counter = counter;
  o->value = value;
  o->ulen = ulen;
  memcpy(o->user, user, ulen);
  char key[RECD_KEY_MAX];
  const size_t kl = rclient_key(t->rc, key, RECD_KEY_IMP, user, ulen);
  const char *keys[1] = {key}, *args[1] = {item};
  if (rscript_call(t->rc, &tracker__outcome_script, 1, keys, &kl, 1, args, &ilen,
                   tracker__outcome_done, o) != 0) {
    t->st.errors++;
    free(o);
    return;
  }
  t->pending++;
}

/* ---- the report ------------------------------------------------------- */

typedef struct read_ctx {
  tracker_t *t;
  tracker_report_cb done; /* NULL: the periodic refresh */
  void *arg;
} read_ctx_t;

/* HGETALL reply -> report. 0, RECD_EFORMAT (not a flat array) or
 * RECD_ENOMEM. */
static int tracker__parse(tracker_t *t, const redisReply *rep, exp_report_t *out) {
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2 != 0)
    return RECD_EFORMAT;
  exp_counters_t c;
  exp_counters_init(&c);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i + 1 < rep->elements; i += 2) {
    const redisReply *f = rep->element[i], *v = rep->element[i + 1];
    if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
      rc = exp_counters_add(&c, f->str, f->len, v->str, v->len);
    else
      c.anomalies++;
  }
  if (rc == 0)
    rc = exp_report_compute(&c, variants_names(t->vs), variants_count(t->vs), out);
  /* Fields another program wrote into the hash are skipped, not fatal;
   * they show in INFO (report_anomalies). */
  t->st.report_anomalies = c.anomalies;
  exp_counters_free(&c);
  return rc;
}

static void tracker__read_done(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                               const char *errstr, void *arg) {
  (void)rc;
  read_ctx_t *x = arg;
  tracker_t *t = x->t;
  t->pending--;
  exp_report_t r = {0};
  int err = st == RCLIENT_OK ? tracker__parse(t, rep, &r) : RECD_EIO;
  /* tracking_errors counts what was lost; a read that could not happen
   * (Redis not connected yet, at start) loses nothing. */
  if (st == RCLIENT_ERROR)
    t->st.errors++;
  if (x->done != NULL) {
    x->done(err, err == 0 ? &r : NULL,
            err == 0 ? NULL : st != RCLIENT_OK ? errstr : recd_strerror(err), x->arg);
    exp_report_free(&r);
  } else {
    t->refresh_inflight = 0;
    if (err == 0) {
      exp_report_free(&t->report);
      t->report = r;
      if (!t->have_report && !t->closing) /* from now on, the configured period */
        uv_timer_set_repeat(&t->refresh, t->o.refresh_ms);
      t->have_report = 1;
      t->report_at_ms = uv_now(t->loop);
    }
  }
  free(x);
  tracker__maybe_free(t);
}

static int tracker__read(tracker_t *t, tracker_report_cb done, void *arg) {
  read_ctx_t *x = malloc(sizeof *x);
  if (x == NULL)
    return RECD_ENOMEM;
  *x = (read_ctx_t){t, done, arg};
  char key[RECD_KEY_MAX];
  const char *argv[2] = {"HGETALL", key};
  const size_t lens[2] = {7, rclient_key(t->rc, key, RECD_KEY_EXP_COUNTERS, NULL, 0)};
  int rc = rclient_call(t->rc, 2, argv, lens, tracker__read_done, x);
  if (rc != 0) {
    free(x);
    return rc;
  }
  t->pending++;
  return 0;
}

int tracker_read_report(tracker_t *t, tracker_report_cb done, void *arg) {
  return tracker__read(t, done, arg);
}

static void tracker__refresh_tick(uv_timer_t *h) {
  tracker_t *t = h->data;
  if (t->refresh_inflight)
    return;
  if (tracker__read(t, NULL, NULL) == 0)
    t->refresh_inflight = 1;
}

typedef struct reset_ctx {
  tracker_t *t;
  tracker_report_cb done;
  void *arg;
} reset_ctx_t;

static void tracker__reset_done(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                                const char *errstr, void *arg) {
  (void)rc, (void)rep;
  reset_ctx_t *x = arg;
  tracker_t *t = x->t;
  t->pending--;
  if (st == RCLIENT_OK) {
    /* The cached copy is stale now: show an empty experiment at once. */
    exp_report_free(&t->report);
    t->report_at_ms = uv_now(t->loop);
  }
  x->done(st == RCLIENT_OK ? 0 : RECD_EIO, NULL, errstr, x->arg);
  free(x);
  tracker__maybe_free(t);
}

int tracker_reset(tracker_t *t, tracker_report_cb done, void *arg) {
  reset_ctx_t *x = malloc(sizeof *x);
  if (x == NULL)
    return RECD_ENOMEM;
  *x = (reset_ctx_t){t, done, arg};
  char key[RECD_KEY_MAX];
  const char *argv[2] = {"DEL", key};
  const size_t lens[2] = {3, rclient_key(t->rc, key, RECD_KEY_EXP_COUNTERS, NULL, 0)};
  int rc = rclient_call(t->rc, 2, argv, lens, tracker__reset_done, x);
  if (rc != 0) {
    free(x);
    return rc;
  }
  t->pending++;
  return 0;
}

/* ---- life cycle ------------------------------------------------------- */

int tracker_new(uv_loop_t *loop, rclient_t *rc, const variants_t *vs, const tracker_opts_t *o,
                tracker_t **out) {
  tracker_t *t = calloc(1, sizeof *t);
  if (t == NULL)
    return RECD_ENOMEM;
  t->loop = loop;
  t->rc = rc;
  t->vs = vs;
  t->o = *o;
  uv_timer_init(loop, &t->refresh); /* cannot fail */
  uv_timer_init(loop, &t->flush);
  t->refresh.data = t->flush.data = t;
  t->handles = 2;
  /* Until the first read succeeds (Redis connects within moments of the
   * start), retry every TRACKER_FLUSH_MS rather than every refresh_ms. */
  uv_timer_start(&t->refresh, tracker__refresh_tick, 0,
                 o->refresh_ms < TRACKER_FLUSH_MS ? o->refresh_ms : TRACKER_FLUSH_MS);
  uv_timer_start(&t->flush, tracker__flush_tick, TRACKER_FLUSH_MS, TRACKER_FLUSH_MS);
  *out = t;
  return 0;
}

static void tracker__closed(uv_handle_t *h) {
  tracker_t *t = h->data;
  t->handles--;
  tracker__maybe_free(t);
}

/* What was counted since the last flush goes now, while Redis is still
 * connected: the daemon closes the Redis client only once every call is
 * back (closed()), since closing it drops what hiredis has not sent. */
void tracker_close(tracker_t *t, void (*closed)(void *arg), void *arg) {
  tracker__flush(t);
  t->closed = closed;
  t->closed_arg = arg;
  t->closing = 1;
  uv_close((uv_handle_t *)&t->refresh, tracker__closed);
  uv_close((uv_handle_t *)&t->flush, tracker__closed);
}

int tracker_enabled(const tracker_t *t) {
  return t->o.enabled;
}

int tracker_counts_shown(const tracker_t *t) {
  return t->o.enabled && t->o.count_shown;
}

const exp_report_t *tracker_report(const tracker_t *t, int64_t *age_ms) {
  if (!t->have_report)
    return NULL;
  if (age_ms != NULL)
    *age_ms = (int64_t)(uv_now(t->loop) - t->report_at_ms);
  return &t->report;
}

void tracker_get_stats(const tracker_t *t, tracker_stats_t *out) {
  *out = t->st;
}
