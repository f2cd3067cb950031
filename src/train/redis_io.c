/* redis_io.c - see redis_io.h. */
#include "redis_io.h"

#include <hiredis/hiredis.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "recd/csv.h"
#include "recd/err.h"
#include "recd/keys.h"
#include "redis_cluster.h"

/* Commands in flight per pipeline batch: enough to hide the round trip,
 * small enough that replies for one batch stay a few MB at most. */
#define REDIS_IO_BATCH 512

/* Last interaction times (<prefix>time:<user>, Unix seconds): a time more
 * than this far ahead of the clock is no time (a wrong unit, milliseconds,
 * or garbage), as for the daemon's FEEDBACK, which overwrites it. */
#define REDIS_IO_TIME_AHEAD_S 86400

/* A time recd-train accepts: whole seconds in [0, now + a day]. */
static int redis_io__time_ok(int64_t t, int64_t now) {
  return t >= 0 && t <= now + REDIS_IO_TIME_AHEAD_S;
}

/* One entry of a customer's time ZSET, for lookups by item. */
typedef struct redis_io__time {
  const char *item;
  size_t len;
  int64_t t;
} redis_io__time_t;

static int redis_io__time_cmp(const void *pa, const void *pb) {
  const redis_io__time_t *a = pa, *b = pb;
  int d = memcmp(a->item, b->item, a->len < b->len ? a->len : b->len);
  if (d != 0)
    return d;
  return (a->len > b->len) - (a->len < b->len);
}

/* The time of item among times[0..n) (sorted), DATASET_NO_TIME if none. */
static int64_t redis_io__time_of(const redis_io__time_t *times, size_t n, const char *item,
                                 size_t len) {
  const redis_io__time_t key = {item, len, 0};
  const redis_io__time_t *hit = n > 0 ? bsearch(&key, times, n, sizeof *times,
                                                redis_io__time_cmp) : NULL;
  return hit != NULL ? hit->t : DATASET_NO_TIME;
}

/* A customer's ZRANGE time:<user> 0 -1 WITHSCORES reply into *times
 * (grown as needed, sorted by item): the valid entries only; each
 * malformed one (not a whole number of seconds in [0, now + a day]) is
 * counted in *anomalies; a key of the wrong type is one anomaly, noted on
 * log. Returns the entries kept, or -1 when out of memory. */
static long redis_io__times(const redisReply *r, const char *prefix, const char *user,
                            size_t ulen, int64_t now, redis_io__time_t **times, size_t *cap,
                            uint64_t *anomalies, FILE *log) {
  if (r->type != REDIS_REPLY_ARRAY) {
    if (log)
      fprintf(log, "warning: %s" RECD_KEY_TIME "%.*s is not a sorted set (%s), its times are "
              "ignored\n", prefix, (int)ulen, user,
              r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    ++*anomalies;
    return 0;
  }
  if (r->elements / 2 > *cap) {
    redis_io__time_t *t = realloc(*times, r->elements / 2 * sizeof *t);
    if (t == NULL)
      return -1;
    *times = t;
    *cap = r->elements / 2;
  }
  size_t n = 0;
  for (size_t e = 0; e + 1 < r->elements; e += 2) {
    const redisReply *item = r->element[e], *score = r->element[e + 1];
    int64_t t;
    /* Redis prints a whole score without a fraction or exponent up to
     * 1e17, so the strict integer parser rejects fractions, 1e+300, inf. */
    if (item->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING ||
        csv_parse_i64(score->str, score->len, &t) != 0 || !redis_io__time_ok(t, now)) {
      ++*anomalies;
      continue;
    }
    (*times)[n++] = (redis_io__time_t){item->str, item->len, t};
  }
  if (n > 1) /* qsort(NULL, 0, ...) is undefined: an empty time key */
    qsort(*times, n, sizeof **times, redis_io__time_cmp);
  return (long)n;
}

static double redis_io__now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Fetches the histories of a batch of keys and their customers' last
 * interaction times, pipelined: ZRANGE hist:<user> 0 -1 WITHSCORES and
 * ZRANGE time:<user> 0 -1 WITHSCORES per key. */
/* The hist: keys SCAN found, in one buffer; sorted and deduplicated
 * before they are read. */
typedef struct redis_io__key {
  size_t off, len;
} redis_io__key_t;

typedef struct redis_io__keys {
  char *bytes;
  size_t n_bytes, bytes_cap;
  redis_io__key_t *key;
  size_t n, cap;
} redis_io__keys_t;

static int redis_io__keys_add(void *arg, const char *k, size_t len) {
  redis_io__keys_t *ks = arg;
  if (ks->n_bytes + len > ks->bytes_cap) {
    size_t nc = ks->bytes_cap ? 2 * ks->bytes_cap : 1 << 16;
    while (nc < ks->n_bytes + len)
      nc *= 2;
    char *g = realloc(ks->bytes, nc);
    if (g == NULL)
      return RECD_ENOMEM;
    ks->bytes = g;
    ks->bytes_cap = nc;
  }
  if (ks->n == ks->cap) {
    size_t nc = ks->cap ? 2 * ks->cap : 1024;
    redis_io__key_t *g = realloc(ks->key, nc * sizeof *g);
    if (g == NULL)
      return RECD_ENOMEM;
    ks->key = g;
    ks->cap = nc;
  }
  memcpy(ks->bytes + ks->n_bytes, k, len);
  ks->key[ks->n++] = (redis_io__key_t){ks->n_bytes, len};
  ks->n_bytes += len;
  return 0;
}

/* qsort has no context argument: the buffer of the keys being sorted. */
static const char *redis_io__sort_bytes;

static int redis_io__key_cmp(const void *pa, const void *pb) {
  const redis_io__key_t *a = pa, *b = pb;
  int d = memcmp(redis_io__sort_bytes + a->off, redis_io__sort_bytes + b->off,
                 a->len < b->len ? a->len : b->len);
  if (d != 0)
    return d;
  return (a->len > b->len) - (a->len < b->len);
}

/* Sorts the keys by their bytes and drops repeats (SCAN may return a key
 * more than once; read twice, its weights would count twice). */
static void redis_io__keys_sort(redis_io__keys_t *ks) {
  if (ks->n < 2)
    return;
  redis_io__sort_bytes = ks->bytes;
  qsort(ks->key, ks->n, sizeof *ks->key, redis_io__key_cmp);
  redis_io__sort_bytes = NULL;
  size_t w = 1;
  for (size_t i = 1; i < ks->n; i++) {
    const redis_io__key_t *p = &ks->key[w - 1], *k = &ks->key[i];
    if (k->len != p->len || memcmp(ks->bytes + k->off, ks->bytes + p->off, k->len) != 0)
      ks->key[w++] = *k;
  }
  ks->n = w;
}

static void redis_io__keys_free(redis_io__keys_t *ks) {
  free(ks->bytes);
  free(ks->key);
}

static int redis_io__read_histories(redis_link_t *l, const redis_io__keys_t *ks, size_t b,
                                    size_t n, const char *prefix, size_t plen, int64_t now,
                                    dataset_t *ds, uint64_t *anomalies, FILE *log,
                                    char *errbuf) {
  int rc = 0;
  for (size_t j = b; j < b + n && rc == 0; j++) {
    const char *key = ks->bytes + ks->key[j].off;
    const size_t klen = ks->key[j].len;
    if ((rc = redis_link_append(l, "ZRANGE %b 0 -1 WITHSCORES", key, klen)) == 0)
      rc = redis_link_append(l, "ZRANGE %s" RECD_KEY_TIME "%b 0 -1 WITHSCORES", prefix,
                             key + plen, klen - plen);
  }
  if (rc != 0 || (rc = redis_link_exec(l, errbuf)) != 0)
    return rc == RECD_ENOMEM ? recd_errf(errbuf, rc, "out of memory reading histories") : rc;
  redis_io__time_t *times = NULL;
  size_t times_cap = 0;
  for (size_t j = 0; j < n && rc == 0; j++) {
    const redisReply *r = redis_link_reply(l, 2 * j), *tr = redis_link_reply(l, 2 * j + 1);
    const char *key = ks->bytes + ks->key[b + j].off;
    const size_t klen = ks->key[b + j].len;
    const char *user = key + plen;
    size_t ulen = klen - plen;
    if (r->type != REDIS_REPLY_ARRAY) {
      /* SCAN MATCH cannot filter by type: a STRING under hist: is the
       * storefront's bug, not a reason to stop retraining. */
      if (log)
        fprintf(log, "warning: %.*s is not a sorted set (%s), skipped\n", (int)klen, key,
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
      ++*anomalies;
      continue;
    }
    const long nt = redis_io__times(tr, prefix, user, ulen, now, &times, &times_cap, anomalies,
                                    log);
    if (nt < 0)
      rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory reading times");
    for (size_t e = 0; rc == 0 && e + 1 < r->elements; e += 2) {
      redisReply *item = r->element[e], *score = r->element[e + 1];
      float w;
      if (item->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING ||
          csv_parse_float(score->str, score->len, &w) != 0 || !(w > 0.0f)) {
        ++*anomalies;
        continue;
      }
      /* An item without a time (written before times were kept, or by a
       * storefront that does not write them) is DATASET_NO_TIME. */
      const int64_t t = redis_io__time_of(times, (size_t)nt, item->str, item->len);
      int a = dataset_add_timed(ds, user, ulen, item->str, item->len, w, t);
      if (a == RECD_ENOMEM)
        rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory reading histories");
      else if (a != 0)
        ++*anomalies; /* over-long or empty id */
    }
  }
  free(times);
  return rc;
}

int redis_connect(const redis_opts_t *o, redis_link_t **out, char *errbuf) {
  return redis_link_open(o, out, errbuf);
}

void redis_disconnect(redis_link_t *l) {
  redis_link_close(l);
}

int redis_read_histories(redis_link_t *l, const redis_opts_t *o, dataset_t *ds,
                         uint64_t *anomalies, FILE *progress, FILE *log, char *errbuf) {
  char pattern[512];
  snprintf(pattern, sizeof pattern, "%s" RECD_KEY_HIST "*", o->prefix);
  const size_t plen = strlen(o->prefix) + strlen(RECD_KEY_HIST);
  const int64_t now = (int64_t)time(NULL);
  /* Every key first, then read in byte order: the customers' (and so the
   * items') order in the data set is then the same whatever order SCAN,
   * a restart of Redis or a cluster's layout gives. */
  redis_io__keys_t ks = {0};
  int rc = redis_link_scan(l, pattern, redis_io__keys_add, &ks, errbuf);
  if (rc == RECD_ENOMEM)
    recd_errf(errbuf, rc, "out of memory listing histories");
  if (rc == 0)
    redis_io__keys_sort(&ks);
  uint64_t users = 0;
  double t0 = redis_io__now();
  for (size_t b = 0; b < ks.n && rc == 0; b += REDIS_IO_BATCH) {
    size_t n = ks.n - b < REDIS_IO_BATCH ? ks.n - b : REDIS_IO_BATCH;
    rc = redis_io__read_histories(l, &ks, b, n, o->prefix, plen, now, ds, anomalies, log,
                                  errbuf);
    users += n;
    if (progress != NULL && rc == 0 && (users % 8192 < REDIS_IO_BATCH || users == ks.n))
      fprintf(progress, "\rread %llu histories (%.0f/s)", (unsigned long long)users,
              users / (redis_io__now() - t0 + 1e-9));
  }
  if (progress != NULL)
    fputc('\n', progress);
  redis_io__keys_free(&ks);
  return rc;
}

int redis_read_dataset(const redis_opts_t *o, dataset_t *ds, uint64_t *anomalies,
                       FILE *progress, FILE *log, char *errbuf) {
  redis_link_t *l = NULL;
  int rc = redis_link_open(o, &l, errbuf);
  if (rc != 0)
    return rc;
  *anomalies = 0;
  rc = redis_read_histories(l, o, ds, anomalies, progress, log, errbuf);
  /* Categories and groups, for the items the histories mention. */
  if (rc == 0)
    rc = redis_read_item_attrs(l, o->prefix, ds, NULL, 0, anomalies, log, errbuf);
  redis_link_close(l);
  return rc;
}

/* One item's HMGET reply: [category, group], each a string or nil. */
static int redis_io__item_attrs(dataset_t *ds, uint32_t i, const redisReply *r,
                                uint64_t *anomalies, FILE *log, char *errbuf) {
  size_t len;
  const char *id = idmap_key(ds->items, i, &len);
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
    /* A <prefix>item:<id> that is not a hash: the storefront's bug. */
    if (log)
      fprintf(log, "warning: item:%.*s is not a hash (%s), its category and group are "
              "ignored\n", (int)len, id, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    ++*anomalies;
    return 0;
  }
  for (int f = 0; f < 2; f++) {
    const redisReply *v = r->element[f];
    if (v->type != REDIS_REPLY_STRING)
      continue; /* nil: no such field */
    int s = f == 0 ? dataset_set_category(ds, id, len, v->str, v->len)
                   : dataset_set_group(ds, id, len, v->str, v->len);
    if (s == RECD_ENOMEM)
      return recd_errf(errbuf, RECD_ENOMEM, "out of memory reading item attributes");
    if (s != 0) {
      if (log)
        fprintf(log, "warning: item:%.*s: %s longer than %d bytes, ignored\n", (int)len, id,
                f == 0 ? "category" : "group", DATASET_MAX_ID);
      ++*anomalies;
    }
  }
  return 0;
}

int redis_read_item_attrs(redis_link_t *l, const char *prefix, dataset_t *ds,
                          const uint32_t *which, uint32_t n_which, uint64_t *anomalies,
                          FILE *log, char *errbuf) {
  const uint32_t n_items = which != NULL ? n_which : dataset_n_items(ds);
  int rc = 0;
  for (uint32_t b = 0; b < n_items && rc == 0; b += REDIS_IO_BATCH) {
    uint32_t n = n_items - b < REDIS_IO_BATCH ? n_items - b : REDIS_IO_BATCH;
    for (uint32_t t = b; t < b + n && rc == 0; t++) {
      size_t len;
      const char *id = idmap_key(ds->items, which != NULL ? which[t] : t, &len);
      rc = redis_link_append(l, "HMGET %s" RECD_KEY_ITEM "%b " RECD_ITEM_CATEGORY " "
                             RECD_ITEM_GROUP, prefix, id, len);
    }
    if (rc == RECD_ENOMEM)
      return recd_errf(errbuf, rc, "out of memory reading item attributes");
    if ((rc = redis_link_exec(l, errbuf)) != 0)
      return rc;
    for (uint32_t t = b; t < b + n && rc == 0; t++)
      rc = redis_io__item_attrs(ds, which != NULL ? which[t] : t, redis_link_reply(l, t - b),
                                anomalies, log, errbuf);
  }
  return rc;
}

/* Runs the pending batch and checks every reply. */
static int redis_io__drain(redis_link_t *l, const char *what, char *errbuf) {
  int rc = redis_link_exec(l, errbuf);
  for (size_t j = 0; rc == 0 && redis_link_reply(l, j) != NULL; j++) {
    const redisReply *r = redis_link_reply(l, j);
    if (r->type == REDIS_REPLY_ERROR)
      rc = recd_errf(errbuf, RECD_EREDIS, "redis: %s: %s", what, r->str);
  }
  return rc;
}

/* The timed rows of a data set (before finalize): user, item and time of
 * each row that has a time. */
typedef struct redis_io__timed {
  size_t n;
  uint32_t *user, *item;
  int64_t *t;
} redis_io__timed_t;

static void redis_io__timed_free(redis_io__timed_t *x) {
  free(x->user);
  free(x->item);
  free(x->t);
}

/* Copies the timed rows of ds (not finalized) into *x. A time that is not
 * Unix seconds in [0, now + a day] is an error naming the file, the
 * customer and the item (milliseconds are the usual mistake), or with
 * skip_bad left out (the row's weight is imported, its time is not).
 * Nothing is written to Redis before this has passed. */
static int redis_io__timed_rows(const dataset_t *ds, const char *path, int skip_bad,
                                int64_t now, redis_io__timed_t *x, char *errbuf) {
  memset(x, 0, sizeof *x);
  if (ds->n_timed == 0)
    return 0;
  x->user = malloc(ds->n_timed * sizeof *x->user);
  x->item = malloc(ds->n_timed * sizeof *x->item);
  x->t = malloc(ds->n_timed * sizeof *x->t);
  if (x->user == NULL || x->item == NULL || x->t == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory reading %s", path);
  for (size_t r = 0; r < ds->n_coo; r++) {
    const int64_t t = ds->coo_t[r];
    if (t == DATASET_NO_TIME)
      continue;
    if (!redis_io__time_ok(t, now)) {
      if (skip_bad)
        continue;
      size_t ul, il;
      const char *u = idmap_key(ds->users, ds->coo_user[r], &ul);
      const char *i = idmap_key(ds->items, ds->coo_item[r], &il);
      return recd_errf(errbuf, RECD_EFORMAT, "%s: timestamp %lld of user %.*s, item %.*s is "
                       "not Unix seconds between 1970 and tomorrow%s", path, (long long)t,
                       (int)(ul > 64 ? 64 : ul), u, (int)(il > 64 ? 64 : il), i,
                       t > now + REDIS_IO_TIME_AHEAD_S ? " (milliseconds?)" : "");
    }
    x->user[x->n] = ds->coo_user[r];
    x->item[x->n] = ds->coo_item[r];
    x->t[x->n++] = t;
  }
  return 0;
}

static int redis_io__u32_cmp(const void *pa, const void *pb) {
  const uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
  return (a > b) - (a < b);
}

/* The latest time of every (user, item) pair of the finalized ds, in
 * by_user's order (DATASET_NO_TIME: none), into *out (NULL when no row
 * has a time). 0 or RECD_ENOMEM. */
static int redis_io__pair_times(const dataset_t *ds, const redis_io__timed_t *x,
                                int64_t **out) {
  *out = NULL;
  if (x->n == 0)
    return 0;
  const csr_t *m = &ds->by_user;
  const uint64_t nnz = m->ptr[m->n_rows];
  int64_t *pt = malloc((nnz > 0 ? nnz : 1) * sizeof *pt);
  if (pt == NULL)
    return RECD_ENOMEM;
  for (uint64_t j = 0; j < nnz; j++)
    pt[j] = DATASET_NO_TIME;
  for (size_t r = 0; r < x->n; r++) {
    const uint32_t u = x->user[r];
    const uint32_t *row = m->idx + m->ptr[u];
    const uint32_t *hit = bsearch(&x->item[r], row, (size_t)(m->ptr[u + 1] - m->ptr[u]),
                                  sizeof *row, redis_io__u32_cmp);
    if (hit == NULL)
      continue; /* cannot happen: every row is a pair of by_user */
    int64_t *p = &pt[m->ptr[u] + (uint64_t)(hit - row)];
    if (*p == DATASET_NO_TIME || x->t[r] > *p)
      *p = x->t[r];
  }
  *out = pt;
  return 0;
}

/* What one pipelined reply of the interaction import answers. */
typedef struct redis_io__sent {
  uint32_t user, item;
  int time; /* 0: ZINCRBY hist:, 1: ZADD time: */
} redis_io__sent_t;

/* Reads the replies of sent[0..pending); an error names the command and
 * its key and member. */
static int redis_io__drain_pairs(redis_link_t *l, const dataset_t *ds, const char *prefix,
                                 const redis_io__sent_t *sent, size_t pending, char *errbuf) {
  int rc = redis_link_exec(l, errbuf);
  if (rc != 0)
    return rc;
  for (size_t j = 0; j < pending; j++) {
    const redisReply *r = redis_link_reply(l, j);
    if (r->type == REDIS_REPLY_ERROR) {
      size_t ul, il;
      const char *u = idmap_key(ds->users, sent[j].user, &ul);
      const char *i = idmap_key(ds->items, sent[j].item, &il);
      recd_errf(errbuf, RECD_EREDIS, "redis: %s %s%s%.*s %.*s: %s",
                sent[j].time ? "ZADD" : "ZINCRBY", prefix,
                sent[j].time ? RECD_KEY_TIME : RECD_KEY_HIST, (int)(ul > 64 ? 64 : ul), u,
                (int)(il > 64 ? 64 : il), i, r->str);
      return RECD_EREDIS;
    }
  }
  return 0;
}

int redis_import_csv(const redis_opts_t *o, const char *path, const char *items_csv,
                     int skip_bad, uint64_t *rows, FILE *progress, char *errbuf) {
  redis_link_t *c = NULL;
  int rc = redis_link_open(o, &c, errbuf);
  if (rc != 0)
    return rc;
  /* Parse the whole file first (the data set's reader validates every
   * line, this function every time), so a bad file never leaves Redis
   * half-imported. */
  dataset_t ds;
  uint64_t skipped = 0;
  redis_io__timed_t timed = {0};
  int64_t *pair_t = NULL;
  if ((rc = dataset_init(&ds)) != 0 ||
      (rc = dataset_read_csv(&ds, path, skip_bad, &skipped, progress, errbuf)) != 0 ||
      (rc = redis_io__timed_rows(&ds, path, skip_bad, (int64_t)time(NULL), &timed,
                                 errbuf)) != 0 ||
      (rc = dataset_finalize(&ds)) != 0 || (rc = redis_io__pair_times(&ds, &timed, &pair_t)) != 0) {
    if (rc == RECD_ENOMEM)
      recd_errf(errbuf, rc, "out of memory reading %s", path);
    redis_io__timed_free(&timed);
    dataset_free(&ds);
    redis_link_close(c);
    return rc;
  }
  redis_io__timed_free(&timed);
  *rows = 0;
  /* Per pair: ZINCRBY of the summed weight and, when the file gives the
   * pair a time, ZADD GT of its latest (GT: a later time already in Redis,
   * the storefront's or recd's, stays; needs Redis 6.2). */
  redis_io__sent_t sent[REDIS_IO_BATCH];
  size_t pending = 0;
  const csr_t *m = &ds.by_user;
  double t0 = redis_io__now();
  for (uint32_t u = 0; u < m->n_rows && rc == 0; u++) {
    size_t ulen;
    const char *user = idmap_key(ds.users, u, &ulen);
    for (uint64_t j = m->ptr[u]; j < m->ptr[u + 1] && rc == 0; j++) {
      size_t ilen;
      const char *item = idmap_key(ds.items, m->idx[j], &ilen);
      char w[32];
      snprintf(w, sizeof w, "%.9g", (double)m->val[j]);
      if (redis_link_append(c, "ZINCRBY %s" RECD_KEY_HIST "%b %s %b", o->prefix, user, ulen, w,
                            item, ilen) != 0)
        rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory importing %s", path);
      sent[pending++] = (redis_io__sent_t){u, m->idx[j], 0};
      ++*rows;
      if (pair_t != NULL && pair_t[j] != DATASET_NO_TIME) {
        char t[24];
        snprintf(t, sizeof t, "%lld", (long long)pair_t[j]);
        if (redis_link_append(c, "ZADD %s" RECD_KEY_TIME "%b GT %s %b", o->prefix, user, ulen,
                              t, item, ilen) != 0)
          rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory importing %s", path);
        sent[pending++] = (redis_io__sent_t){u, m->idx[j], 1};
      }
      if (rc == 0 && pending >= REDIS_IO_BATCH - 1) {
        rc = redis_io__drain_pairs(c, &ds, o->prefix, sent, pending, errbuf);
        pending = 0;
      }
    }
    if (progress != NULL && (u % 1000 == 999 || u + 1 == m->n_rows))
      fprintf(progress, "\rimported %llu interactions (%.0f/s)", (unsigned long long)*rows,
              *rows / (redis_io__now() - t0 + 1e-9));
  }
  if (rc == 0 && pending > 0)
    rc = redis_io__drain_pairs(c, &ds, o->prefix, sent, pending, errbuf);
  if (progress != NULL)
    fputc('\n', progress);
  free(pair_t);
  dataset_free(&ds);

  if (rc == 0 && items_csv != NULL) {
    csv_reader_t *r;
    if ((rc = csv_open(&r, items_csv, errbuf)) != 0) {
      redis_link_close(c);
      return rc;
    }
    csv_record_t rec;
    int n;
    pending = 0;
    size_t nf = 0; /* fields per line, from the header: 3, or 4 with groups */
    while (rc == 0 && (n = csv_next(r, &rec, errbuf)) != 0) {
      if (n < 0) {
        rc = n;
        break;
      }
      if (nf == 0) {
        if (rec.n_fields != 3 && rec.n_fields != 4) {
          rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: expected the header "
                         "item,title,category[,group], got %zu fields", items_csv,
                         (unsigned long long)rec.line, rec.n_fields);
          break;
        }
        nf = rec.n_fields;
        continue;
      }
      if (rec.n_fields != nf) {
        rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: expected %zu fields (item,title,category%s), "
                       "got %zu", items_csv, (unsigned long long)rec.line, nf,
                       nf == 4 ? ",group" : "", rec.n_fields);
        break;
      }
      if (rec.len[0] == 0 || rec.len[0] > 256) {
        rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: bad item id", items_csv,
                       (unsigned long long)rec.line);
        break;
      }
      if (nf == 4 && rec.len[3] > 256) {
        rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: group longer than 256 bytes", items_csv,
                       (unsigned long long)rec.line);
        break;
      }
      int a;
      if (nf == 4 && rec.len[3] > 0)
        a = redis_link_append(c, "HSET %s" RECD_KEY_ITEM "%b title %b " RECD_ITEM_CATEGORY " %b "
                           RECD_ITEM_GROUP " %b", o->prefix, rec.field[0], rec.len[0],
                           rec.field[1], rec.len[1], rec.field[2], rec.len[2], rec.field[3],
                           rec.len[3]);
      else
        a = redis_link_append(c, "HSET %s" RECD_KEY_ITEM "%b title %b " RECD_ITEM_CATEGORY " %b",
                           o->prefix, rec.field[0], rec.len[0], rec.field[1], rec.len[1],
                           rec.field[2], rec.len[2]);
      if (a != 0) {
        rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory importing %s", items_csv);
        break;
      }
      if (++pending == REDIS_IO_BATCH) {
        rc = redis_io__drain(c, "HSET", errbuf);
        pending = 0;
      }
    }
    if (rc == 0 && pending > 0)
      rc = redis_io__drain(c, "HSET", errbuf);
    csv_close(r);
  }
  redis_link_close(c);
  return rc;
}
