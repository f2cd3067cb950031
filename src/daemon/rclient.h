/* rclient.h - the daemon's asynchronous Redis client.
 *
 * One hiredis 0.14 async connection attached to the daemon's libuv loop
 * through hiredis's libuv adapter (or, with cluster_nodes, one per master
 * of a Redis Cluster: rcluster.h, which routes every command; a fetch's
 * commands then go to their masters in parallel and the fetch completes
 * when all are back). The module owns the connection's whole
 * life: connect (TCP or Unix socket), AUTH before any other command,
 * reconnection with exponential backoff and jitter, the periodic refresh of
 * <prefix>unavailable, and the two request types the daemon needs: a
 * customer's history + preferences (one pipelined round trip) and FEEDBACK.
 *
 * Threading: everything runs on the loop thread; no function is thread-safe.
 *
 * Connection states:
 *
 *   CONNECTING    a connect(2) or the AUTH reply is outstanding; bounded by
 *                 connect_timeout_ms
 *   CONNECTED     commands are sent
 *   DISCONNECTED  waiting for the backoff timer before the next attempt
 *
 * Requests are only sent while CONNECTED. Otherwise they complete with
 * RCLIENT_UNAVAILABLE on the next loop turn (never synchronously: a caller
 * may finish setting up its own request state after the call returns).
 *
 * Callback guarantee: a request call that returns 0 fires its callback
 * exactly once: with the parsed reply, with RCLIENT_ERROR (Redis answered
 * with an error), or with RCLIENT_UNAVAILABLE (not connected, connection
 * lost, client closed). A call that returns an error code never fires the
 * callback. No callback is ever fired from inside the call that issued the
 * request. There is no per-request deadline here: the daemon runs its own
 * timer and ignores late answers, relying on the exactly-once guarantee to
 * free its request.
 *
 * OOM policy (hiredis's, not Redis's): nothing aborts. A request call whose
 * allocation fails returns RECD_ENOMEM and has no effect. An allocation that
 * fails while a reply is being parsed completes that request with
 * RCLIENT_ERROR "out of memory"; a callback never sees a partial result.
 * Connection-time allocation failures count as failed attempts and are
 * retried with backoff.
 *
 * SIGPIPE: hiredis writes with write(2), so the process must ignore SIGPIPE
 * (as every network daemon does); a library must not change signal
 * dispositions behind the program's back, so rclient does not.
 */
#ifndef RECD_RCLIENT_H
#define RECD_RCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "recd/err.h"
#include "recd/keys.h"

/* Longest user or item id (DESIGN.md: ids are up to 256 bytes). Longer ids
 * in requests are refused (RECD_EINVAL); longer ids read from Redis are
 * skipped and counted as anomalies. */
#define RCLIENT_ID_MAX RECD_ID_MAX
/* Longest key prefix accepted by rclient_new() (config key-prefix). */
#define RCLIENT_PREFIX_MAX RECD_PREFIX_MAX
/* Size of the error strings carried in results and stats. */
#define RCLIENT_ERRLEN 128

typedef struct rclient rclient_t;

/* Log levels; the values equal config_loglevel_t's so the daemon can
 * compare them with its configured level directly. */
typedef enum rclient_log_level {
  RCLIENT_LOG_DEBUG = 0,
  RCLIENT_LOG_VERBOSE = 1,
  RCLIENT_LOG_NOTICE = 2,
  RCLIENT_LOG_WARNING = 3
} rclient_log_level_t;

/* Called for every connection event (one line, no newline). The message is
 * valid during the call only. It may be called synchronously from any
 * rclient function, so it must not call back into rclient. */
typedef void (*rclient_log_cb)(int level, const char *msg, void *arg);

typedef enum rclient_state {
  RCLIENT_CONNECTING = 0,
  RCLIENT_CONNECTED = 1,
  RCLIENT_DISCONNECTED = 2
} rclient_state_t;

typedef enum rclient_status {
  RCLIENT_OK = 0,
  RCLIENT_UNAVAILABLE = 1, /* not connected, connection lost or closed;
                              a FEEDBACK's outcome is then unknown */
  RCLIENT_ERROR = 2        /* Redis answered with an error, or out of memory */
} rclient_status_t;

typedef struct rclient_opts {
  const char *host;            /* TCP host, default "127.0.0.1". Resolved by
                                  hiredis with a blocking getaddrinfo() at
                                  every attempt: use an address or a name
                                  from /etc/hosts */
  int port;                    /* TCP port, default 6379 */
  const char *socket;          /* Unix socket path; non-NULL and non-empty
                                  overrides host/port. Default NULL */
  const char *password;        /* AUTH on every (re)connect before any other
                                  command; NULL or "" = no AUTH */
  const char *user;            /* Redis 6 ACL user: AUTH user password
                                  (redis-user); NULL or "" = none */
  const char *prefix;          /* key prefix, default "recd:", at most
                                  RCLIENT_PREFIX_MAX bytes */
  unsigned connect_timeout_ms; /* connect + AUTH bound, default 1000 */
  unsigned reconnect_min_ms;   /* first backoff delay, default 100 */
  unsigned reconnect_max_ms;   /* backoff cap, default 5000 */
  unsigned unavailable_refresh_ms; /* SMEMBERS period, default 2000 */
  const char *cluster_nodes;   /* Redis Cluster seeds "host:port ..."; non-NULL
                                  and non-empty: cluster mode (rcluster.h),
                                  host, port and socket are not used */
  unsigned cluster_refresh_ms; /* slot map re-read period while the cluster
                                  is healthy, default 5000 */
  unsigned max_inflight;       /* requests waiting for Redis at most,
                                  default 10000, 0 = no limit. hiredis 0.14
                                  has no command timeout: a Redis that hangs
                                  while connected would otherwise make the
                                  queue grow without bound. Requests over the
                                  limit complete with RCLIENT_UNAVAILABLE */
  rclient_log_cb log;          /* may be NULL */
  void *log_arg;
  int wait_for_target;         /* do not connect until rclient_set_target()
                                  names the server (Sentinel: the primary is
                                  not known yet); until then requests
                                  complete with RCLIENT_UNAVAILABLE.
                                  Default 0 */
} rclient_opts_t;

/* The global item sets refreshed in the background. */
typedef enum rclient_set {
  RCLIENT_SET_UNAVAILABLE = 0, /* <prefix>unavailable */
  RCLIENT_SET_PROMOTED = 1,    /* <prefix>promoted */
  RCLIENT_SET_COUNT = 2
} rclient_set_t;

/* Counters for INFO. Copied out by rclient_get_stats(). */
typedef struct rclient_stats {
  rclient_state_t state;
  int connected;                 /* state == RCLIENT_CONNECTED */
  uint64_t connects;             /* connections that reached CONNECTED */
  uint64_t disconnects;          /* CONNECTED connections lost */
  uint64_t reconnect_attempts;   /* attempts started by the backoff timer */
  uint64_t errors;               /* failed attempts, AUTH failures, error
                                    replies, OOM while parsing */
  uint64_t anomalies;            /* bad data skipped (wrong key type, bad
                                    score or value, oversized id) */
  uint64_t commands_sent;        /* commands handed to hiredis */
  uint64_t rejected;             /* requests refused over max_inflight */
  size_t inflight;               /* requests waiting for Redis now */
  uint64_t unavailable_refreshes;/* successful SMEMBERS refreshes */
  int64_t last_refresh_unix_ms;  /* wall clock of the last successful
                                    refresh, 0 = never */
  size_t unavailable_count;      /* ids delivered by that refresh */
  size_t promoted_count;         /* ids of the last promoted-set refresh */
  char last_error[RCLIENT_ERRLEN]; /* "" until the first error */
  /* Cluster mode only (0 otherwise); connected above then means: the slot
   * map covers every slot and every master is connected, and the counters
   * above add up the connections to every node. */
  int cluster;
  size_t cluster_nodes;          /* nodes known: seeds, masters, targets */
  size_t cluster_masters;        /* masters in the slot map */
  size_t cluster_connected;      /* masters connected */
  uint64_t cluster_refreshes;    /* slot maps loaded (CLUSTER SLOTS) */
  uint64_t cluster_moved;        /* MOVED redirections followed */
  uint64_t cluster_ask;          /* ASK redirections followed */
  uint64_t cluster_down;         /* CLUSTERDOWN, TRYAGAIN, MASTERDOWN,
                                    LOADING replies (requests UNAVAILABLE) */
} rclient_stats_t;

/* The result of rclient_fetch_user(). Every pointer is borrowed (from the
 * hiredis reply or from rclient's request memory) and valid only during the
 * callback: copy what must outlive it. Unless status is RCLIENT_OK the
 * arrays are empty, personalize is 1 and errstr says why. */
typedef struct rclient_cat {
  const char *name; /* category name: the field after "cat:", binary-safe */
  size_t len;
  float value;      /* finite, in [-1, 1] */
} rclient_cat_t;

/* One entry of <prefix>time:<user> (RCLIENT_FETCH_TIMES). */
typedef struct rclient_time {
  const char *id; /* binary-safe, not NUL-terminated */
  size_t len;     /* in [0, RCLIENT_ID_MAX] */
  int64_t t;      /* Unix seconds, in [0, 2^53] */
} rclient_time_t;

/* A history entry without a time (the value of age.h's AGE_NO_TIME). */
#define RCLIENT_NO_TIME INT64_MIN

typedef struct rclient_user {
  rclient_status_t status;
  const char *errstr;          /* NULL when status is RCLIENT_OK */
  /* History, strongest first (ZREVRANGE order), at most max_history
   * entries; parallel arrays so that weights can go to the fold-in as is. */
  size_t hist_n;
  const char *const *hist_ids; /* binary-safe, NOT NUL-terminated for use */
  const size_t *hist_lens;     /* each in [0, RCLIENT_ID_MAX] */
  const float *hist_weights;   /* each finite and > 0 */
  /* Preferences. personalize is 0 only for the exact value "0"; the daemon
   * must then ignore the history (it is fetched anyway: same round trip). */
  int personalize;
  size_t cats_n;
  const rclient_cat_t *cats;
  /* Entries skipped in this reply (also added to the stats): a key of the
   * wrong type, a score that is not a number, not finite or <= 0, an id
   * longer than RCLIENT_ID_MAX, a cat: value that is not a finite number in
   * [-1, 1], a personalize value other than "0" or "1", a time that is not
   * an integer in [0, 2^53]. */
  size_t anomalies;
  /* The first unusable preference entry among them, described for a log
   * line ("cat:kitchen = '5'"; each part at most 32 bytes, escaped), or
   * NULL when every preference entry was usable. */
  const char *pref_bad;
  /* Items the customer marked "not interested" (SMEMBERS hidden:<user>). */
  size_t hidden_n;
  const char *const *hidden_ids;
  const size_t *hidden_lens;
  /* With RCLIENT_FETCH_IMPRESSIONS: the impressions hash (HGETALL
   * imp:<user>), imp_n pairs: imp[2j] the item, imp[2j + 1] its value
   * (tracking.h parses it), lengths in imp_lens. */
  size_t imp_n;
  const char *const *imp;
  const size_t *imp_lens;
  /* With RCLIENT_FETCH_TIMES: the last interaction times (ZRANGE
   * time:<user> 0 -1 WITHSCORES), times_n entries sorted by id (length,
   * then bytes), each an integer number of Unix seconds in [0, 2^53]; and
   * hist_times[j], the time of hist_ids[j] or RCLIENT_NO_TIME when the
   * time key has none for it (then NULL only when hist_n is 0). Without
   * the flag times_n is 0 and both are NULL. */
  size_t times_n;
  const rclient_time_t *times;
  const int64_t *hist_times;
} rclient_user_t;

typedef void (*rclient_user_cb)(rclient_t *c, const rclient_user_t *res, void *arg);
/* score is the new accumulated weight when st is RCLIENT_OK; errstr is NULL
 * then, else a message valid during the call. */
typedef void (*rclient_feedback_cb)(rclient_t *c, rclient_status_t st, double score,
                                    const char *errstr, void *arg);
/* The complete current content of <prefix>unavailable (n may be 0). The
 * arrays and ids are valid during the call only. */
typedef void (*rclient_unavailable_cb)(const char *const *ids, const size_t *lens, size_t n,
                                       void *arg);
/* Fired once when rclient_close() has finished; the client is freed. */
typedef void (*rclient_close_cb)(void *arg);

/* Fills o with the defaults documented in rclient_opts_t. */
void rclient_opts_init(rclient_opts_t *o);

/* Creates a client on loop and starts connecting at once; the strings in o
 * are copied, o may be discarded afterwards. Returns 0 and sets *out, or
 * RECD_EINVAL (bad option, message in errbuf), RECD_ENOMEM or RECD_EIO (a
 * libuv handle could not be initialised; handles already initialised are
 * then closing and are released by the next loop run). On error *out is
 * untouched and nothing stays active on the loop. Redis being down is
 * not an error: the client keeps retrying in the background. May call the
 * log callback synchronously; fires no other callback. The client must be
 * released with rclient_close() before the loop is closed. */
int rclient_new(uv_loop_t *loop, const rclient_opts_t *o, rclient_t **out, char *errbuf);

/* Registers the callback that receives every successful refresh of
 * <prefix>unavailable (replacing any previous one; NULL disables). The set
 * is read right after each (re)connect and then every
 * unavailable_refresh_ms while connected, with at most one read in flight.
 * A reply of the wrong type is logged and counted and no callback fires, so
 * the daemon keeps its previous copy. Never fires synchronously. */
void rclient_on_unavailable(rclient_t *c, rclient_unavailable_cb cb, void *arg);
/* The same for any watched set: rclient_on_set(c, RCLIENT_SET_UNAVAILABLE,
 * ...) is rclient_on_unavailable. A set other than the unavailable one is
 * read only while a callback is registered. */
void rclient_on_set(rclient_t *c, rclient_set_t set, rclient_unavailable_cb cb, void *arg);

/* rclient_fetch_user flags. */
#define RCLIENT_FETCH_IMPRESSIONS 1u /* also read imp:<user> (rotation) */
#define RCLIENT_FETCH_TIMES 2u       /* also read time:<user> (the fold-in of a
                                        model with a half-life, age.h) */

/* Reads the history (strongest max_history items), the preferences and
 * the hidden items of user (ulen bytes, binary-safe) in one pipelined round
 * trip:
 *   HGETALL <prefix>pref:<user>
 *   SMEMBERS <prefix>hidden:<user>
 *   HGETALL <prefix>imp:<user>          (RCLIENT_FETCH_IMPRESSIONS only)
 *   ZRANGE <prefix>time:<user> 0 -1 WITHSCORES  (RCLIENT_FETCH_TIMES only;
 *                                        whole: a ZSET is not ordered by id,
 *                                        so the history's items cannot be
 *                                        picked out in the same round trip)
 *   ZREVRANGE <prefix>hist:<user> 0 <max_history-1> WITHSCORES
 * Bad data is skipped and counted (see rclient_user_t), never fatal: an
 * unknown user is RCLIENT_OK with empty arrays. Returns 0 (cb fires exactly
 * once, never before this call returns), RECD_EINVAL (ulen > RCLIENT_ID_MAX,
 * max_history == 0 or > INT32_MAX, unknown flags, cb NULL, client closing)
 * or RECD_ENOMEM; on error cb never fires. user is not referenced after the
 * call. */
int rclient_fetch_user(rclient_t *c, const char *user, size_t ulen, size_t max_history,
                       unsigned flags, rclient_user_cb cb, void *arg);

/* ZINCRBY <prefix>hist:<user> <weight> <item>. Returns 0 (cb fires exactly
 * once with the new score or an error status, never before this call
 * returns), RECD_EINVAL (an id longer than RCLIENT_ID_MAX, weight not
 * finite, cb NULL, client closing) or RECD_ENOMEM (cb never fires). */
int rclient_feedback(rclient_t *c, const char *user, size_t ulen, const char *item,
                     size_t ilen, double weight, rclient_feedback_cb cb, void *arg);

/* Any command, for the daemon's writes and reads beyond the two above
 * (impressions, outcome counters, the experiment report). Commands issued
 * back to back in one loop turn leave in one write (hiredis pipelines
 * them) and are answered in order. cb (may be NULL: fire and forget, a
 * failure is only counted) fires exactly once, never before this call
 * returns: with st RCLIENT_OK and the reply (borrowed: valid during the
 * call; an error reply is RCLIENT_ERROR, counted in the stats), or with
 * another status, a NULL reply and errstr. Returns 0, RECD_EINVAL (client
 * closing, argc < 1) or RECD_ENOMEM (cb never fires). */
struct redisReply;
typedef void (*rclient_call_cb)(rclient_t *c, rclient_status_t st, const struct redisReply *rep,
                                const char *errstr, void *arg);
int rclient_call(rclient_t *c, int argc, const char **argv, const size_t *lens,
                 rclient_call_cb cb, void *arg);
/* <prefix><kind><id> into buf (RECD_KEY_MAX bytes); returns its length. */
size_t rclient_key(const rclient_t *c, char *buf, const char *kind, const char *id,
                   size_t idlen);

/* Fired on every change of the connection state (rclient_state_t), never
 * after rclient_close(). It runs inside hiredis's and rclient's callback
 * chains, so it must not call rclient_set_target() or rclient_close() (defer
 * those to a timer); it may issue requests. */
typedef void (*rclient_state_cb)(rclient_t *c, rclient_state_t state, void *arg);
/* Registers the state callback (replacing any previous one; NULL
 * disables). */
void rclient_on_state(rclient_t *c, rclient_state_cb cb, void *arg);

/* Points the client at another TCP server (Sentinel: the new primary):
 * drops the current connection (requests in flight complete with
 * RCLIENT_UNAVAILABLE, synchronously inside this call unless it is made
 * from one of this client's reply callbacks), then connects to host:port
 * at once, without backoff; later reconnections go there too. host is
 * copied. Not from the log or state callbacks. Returns 0, RECD_EINVAL
 * (client closing, empty or over-long host, port not in 1..65535) or
 * RECD_ENOMEM, with a message in errbuf (RECD_ERRLEN, may be NULL); on
 * error nothing changed. */
int rclient_set_target(rclient_t *c, const char *host, int port, char *errbuf);

/* 1 in cluster mode (rclient_opts_t.cluster_nodes): every command then
 * goes to the master of its first key's slot, and multi-key commands and
 * scripts must keep their keys in one slot (Redis refuses others with
 * CROSSSLOT; rcluster_one_slot() tells). */
int rclient_is_cluster(const rclient_t *c);

/* Copies the counters into *out. */
void rclient_get_stats(const rclient_t *c, rclient_stats_t *out);

/* Shuts the client down: stops the timers, drops the connection (requests
 * in flight complete with RCLIENT_UNAVAILABLE: synchronously inside this
 * call, or right after the current callback returns when called from one of
 * this client's callbacks, because hiredis defers the free then), then
 * closes every handle and fires done(arg) once on a later loop turn, after
 * which c is freed. After it returns no new request may be issued (they are
 * refused with RECD_EINVAL); on_unavailable never fires again. Calling it
 * twice is a no-op. Safe from inside any rclient callback except the log
 * callback. done may be NULL. */
void rclient_close(rclient_t *c, rclient_close_cb done, void *arg);

#endif
