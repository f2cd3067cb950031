/* reco.h - the request grammar of RECOMMEND, RANK, SIMILAR and FEEDBACK,
 * parsed against the served model (pure: no I/O, reco_parse.c,
 * unit-tested on its own), and the RECOMMEND / RANK handlers (reco.c),
 * which read the customer from Redis under a deadline and answer through
 * the batcher (RECOMMEND) or on the loop (RANK, which scores only its
 * candidates).
 *
 *   RECOMMEND <user> [COUNT n] [OFFSET m] [CATEGORY c]... [WITHSCORES]
 *             [WITHREASONS] [WITHMETA] [HISTORY n item ...] [SHOWNLIMIT n]
 *             [MAXPERCATEGORY n] [PROMOTE n] [ONEPERGROUP] [PLACEMENT p]
 *             [VARIANT v] [NOTRACK] [EXCLUDE id [id ...]]
 *   RANK <user> <item> [item ...] [WITHSCORES] [WITHMETA]
 *        [HISTORY n item ...] [PLACEMENT p] [VARIANT v] [NOTRACK]
 *   SIMILAR <item> [COUNT n] [OFFSET m] [CATEGORY c]... [MAXPERCATEGORY n]
 *           [FOR user] [WITHSCORES] [WITHMETA] [PLACEMENT p] [VARIANT v]
 *           [NOTRACK] [EXCLUDE id [id ...]]
 *   FEEDBACK <user> <item> [WEIGHT w] [TYPE t] [VALUE v]
 *
 * No option is ever swallowed as an id (DESIGN.md "No silent traps"):
 *  - options come in any order, each at most once (CATEGORY repeats);
 *  - HISTORY's list is counted (HISTORY 2 a b), as Redis's numkeys;
 *  - EXCLUDE takes every argument after it (the old form, kept), so it
 *    comes last: an option name among its ids is an error, not an id;
 *  - RANK's items come first, up to the first option name; after that only
 *    options (an id there is an error).
 * An "option name" is any option of RECOMMEND, RANK or SIMILAR, compared
 * case-insensitively: an item whose id is one (an item called "count")
 * cannot be named in these lists. Every error names the offending token
 * and what was expected. Ids (user, item, EXCLUDE, HISTORY, RANK items,
 * FOR) are 1 to 256 bytes, else an error naming the argument.
 *
 * Parsing is two steps: reco_parse_* reads the grammar (no model needed),
 * then reco_resolve maps CATEGORY names and EXCLUDE / HISTORY / RANK /
 * SIMILAR ids onto the model of the customer's variant, which the grammar
 * (VARIANT) decides. An unknown CATEGORY is an error there that suggests
 * the close names (category names are case-sensitive: `Kitchen` is
 * refused with "did you mean 'kitchen'?"); unknown item ids are not
 * errors (dropped, or last in RANK).
 */
#ifndef RECD_DAEMON_RECO_H
#define RECD_DAEMON_RECO_H

#include <stddef.h>
#include <stdint.h>

#include "recd/err.h"
#include "recd/experiment.h"
#include "recd/model.h"
#include "recd/reply.h"
#include "recd/resp.h"

typedef enum reco_cmd {
  RECO_CMD_RECOMMEND = 1,
  RECO_CMD_RANK = 2,
  RECO_CMD_SIMILAR = 4,
  RECO_CMD_FEEDBACK = 8
} reco_cmd_t;

#define RECO_HISTORY_MAX 1000u      /* HISTORY n: n in [1, 1000] */
#define RECO_SHOWNLIMIT_MAX 1000000u /* SHOWNLIMIT n: n in [0, 1000000] */

typedef struct reco_opts {
  reco_cmd_t cmd;
  const char *user;         /* argv[1] (SIMILAR: FOR's user, NULL without
                               FOR), borrowed */
  size_t ulen;
  size_t count, offset;
  int withscores, withreasons;
  int withmeta;             /* WITHMETA: a leading element describing the answer */
  int notrack;              /* NOTRACK: no impressions for this answer */
  char placement[EXP_NAME_MAX + 1]; /* PLACEMENT, "default" when not given */
  const char *variant;      /* VARIANT (argv, borrowed), NULL = by hash */
  size_t variant_len;
  int cat_filter;           /* CATEGORY given */
  size_t *cat_arg;          /* argv positions of the CATEGORY names ... */
  size_t n_cat_arg;
  size_t excl_from;         /* ... and of the EXCLUDE ids: [excl_from, argc) */
  size_t argc;
  /* issue 14 (the computation is the handlers' and the core's): */
  size_t hist_from;         /* HISTORY n: argv positions [hist_from, */
  size_t n_hist_arg;        /*   hist_from + n_hist_arg); 0 = not given */
  int64_t shown_limit;      /* SHOWNLIMIT n; -1 = not given (config shown-limit) */
  int64_t max_per_category; /* MAXPERCATEGORY n; -1 = not given (config) */
  int64_t promote;          /* PROMOTE n; -1 = not given (config promote-slots) */
  int one_per_group;        /* ONEPERGROUP given */
  /* SIMILAR */
  const char *item;         /* argv[1], borrowed */
  size_t ilen;
  /* reco_resolve: */
  uint32_t *cats;           /* CATEGORY numbers (an unknown name is an error) */
  size_t n_cats;
  uint32_t *excl;           /* EXCLUDE indices (unknown ids dropped) */
  size_t n_excl;
  uint32_t *hist_items;     /* HISTORY indices, in order, duplicates kept
                               (unknown ids dropped) */
  size_t n_hist_items;
  int64_t sim_item;         /* SIMILAR: the item's index, -1 = unknown */
  /* RANK */
  const char *const *cand_ids; /* argv, borrowed */
  const size_t *cand_lens;
  int64_t *cand;            /* model indices, -1 = unknown */
  size_t n_cand;
} reco_opts_t;

/* Parse a RECOMMEND / RANK / SIMILAR command. 0, or RECD_EINVAL /
 * RECD_ENOMEM with the error reply's text in err (RECD_ERRLEN). The
 * borrowed fields point into a, which must outlive o's use. Whatever the
 * result, o must be released with reco_opts_free(). */
int reco_parse_recommend(const resp_cmd_t *a, size_t max_count, reco_opts_t *o, char *err);
int reco_parse_rank(const resp_cmd_t *a, reco_opts_t *o, char *err);
int reco_parse_similar(const resp_cmd_t *a, size_t max_count, reco_opts_t *o, char *err);
/* The options RECOMMEND, RANK and SIMILAR share (PLACEMENT p, VARIANT v,
 * NOTRACK): 1 when a->argv[*i] is one of them (*i is then moved past its
 * value), 0 when it is not, -1 on a bad value (message in err). */
int reco_parse_common(const resp_cmd_t *a, size_t *i, reco_opts_t *o, char *err);
/* Maps the names and ids of o (parsed from a) onto model m. 0, RECD_EINVAL
 * (an unknown CATEGORY: the message suggests close names) or RECD_ENOMEM
 * (message in err). */
int reco_resolve(reco_opts_t *o, const resp_cmd_t *a, const model_t *m, char *err);
void reco_opts_free(reco_opts_t *o);

/* FEEDBACK <user> <item> [WEIGHT w] [TYPE t] [VALUE v]. */
typedef enum reco_fb_type {
  RECO_FB_PURCHASE = 0,
  RECO_FB_CART,
  RECO_FB_CLICK,
  RECO_FB_HIDE,
  RECO_FB_UNHIDE
} reco_fb_type_t;

typedef struct reco_feedback {
  const char *user, *item;  /* argv, borrowed */
  size_t ulen, ilen;
  double weight;            /* WEIGHT, in (0, 1e9]; -1 = not given */
  double value;             /* VALUE, in [0, 1e12]; 0 when not given */
  int have_value;
  reco_fb_type_t type;      /* TYPE, purchase when not given */
} reco_feedback_t;

/* 0 or RECD_EINVAL with the message in err. TYPE hide / unhide take no
 * WEIGHT or VALUE. */
int reco_parse_feedback(const resp_cmd_t *a, reco_feedback_t *f, char *err);

/* The syntax line of cmd ("RECOMMEND <user> [COUNT n] ...") from the
 * parser's own option table, so that the documentation cannot drift from
 * the grammar; snprintf-like (returns the full length; buf non-NULL). */
size_t reco_syntax(reco_cmd_t cmd, char *buf, size_t size);

/* Calls fn with the syntax ("[COUNT n]") and the one-line description of
 * every option of cmd, in the documented order. */
void reco_options_foreach(reco_cmd_t cmd,
                          void (*fn)(const char *syntax, const char *doc, void *arg), void *arg);

/* WITHMETA: the leading element of a RECOMMEND / RANK / SIMILAR reply, a
 * flat array of five field, value pairs, always in this order (as MODEL
 * INFO and CONFIG GET reply, so any RESP2 client reads it as a list or a
 * map):
 *   kind     personalized | popular | degraded | similar | unknown_item
 *   reason   popular: no_history | opted_out; degraded: timeout |
 *            redis_down | redis_error; else ""
 *   variant  the variant whose model answered
 *   model    that model's published version (MODEL INFO's file_version,
 *            what MODEL ROLLBACK and PIN take)
 *   checksum its checksum, 8 hex digits (MODEL INFO's checksum: the same
 *            file gives the same value on every replica)
 * SIMILAR answers no customer: kind similar, or unknown_item when the
 * model does not know the item (the answer is then empty). */
/* SIMILAR ... FOR <user> (similar.c hands it over once parsed): reads the
 * customer like RECOMMEND does and answers SIMILAR with their filters. o
 * is moved into the request (the caller's copy is left empty); r's ctx is
 * replaced (the caller must have released its own). */
struct req;
struct server;
void reco_similar_for(struct req *r, struct server *s, reco_opts_t *o, const resp_cmd_t *a);

void reco_reply_meta(reply_buf_t *r, const char *kind, const char *reason, const char *variant,
                     const char *version, const model_t *m);

/* Levenshtein distance of a and b, ASCII case-insensitive, or cap + 1 when
 * it is more than cap (cheap for a small cap: a band of the table). */
size_t reco_edit_distance(const char *a, size_t al, const char *b, size_t bl, size_t cap);

#endif
