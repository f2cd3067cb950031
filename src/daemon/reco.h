/* reco.h - RECOMMEND and RANK: their grammar, parsed against the served
 * model (pure: no I/O, unit-tested on its own), and the handlers, which
 * read the customer from Redis under a deadline and answer through the
 * batcher (RECOMMEND) or on the loop (RANK, which scores only its
 * candidates).
 *
 *   RECOMMEND <user> [COUNT n] [OFFSET m] [CATEGORY c]... [WITHSCORES]
 *             [WITHREASONS] [PLACEMENT p] [VARIANT v] [NOTRACK]
 *             [EXCLUDE id [id ...]]
 *   RANK <user> <item> [item ...] [WITHSCORES] [PLACEMENT p] [VARIANT v]
 *        [NOTRACK]       (the options after the items, in any order)
 *
 * Parsing is two steps: reco_parse_* reads the grammar (no model needed),
 * then reco_resolve maps CATEGORY names and EXCLUDE / RANK ids onto the
 * model of the customer's variant, which the grammar (VARIANT) decides.
 */
#ifndef RECD_DAEMON_RECO_H
#define RECD_DAEMON_RECO_H

#include <stddef.h>
#include <stdint.h>

#include "recd/err.h"
#include "recd/experiment.h"
#include "recd/model.h"
#include "recd/resp.h"

typedef struct reco_opts {
  const char *user;         /* argv[1], borrowed */
  size_t ulen;
  size_t count, offset;
  int withscores, withreasons;
  int notrack;              /* NOTRACK: no impressions for this answer */
  char placement[EXP_NAME_MAX + 1]; /* PLACEMENT, "default" when not given */
  const char *variant;      /* VARIANT (argv, borrowed), NULL = by hash */
  size_t variant_len;
  int cat_filter;           /* CATEGORY given */
  size_t *cat_arg;          /* argv positions of the CATEGORY names ... */
  size_t n_cat_arg;
  size_t excl_from;         /* ... and of the EXCLUDE ids: [excl_from, argc) */
  size_t argc;
  /* reco_resolve: */
  uint32_t *cats;           /* CATEGORY numbers (unknown names: none) */
  size_t n_cats;
  uint32_t *excl;           /* EXCLUDE indices (unknown ids dropped) */
  size_t n_excl;
  /* RANK */
  const char *const *cand_ids; /* argv, borrowed */
  const size_t *cand_lens;
  int64_t *cand;            /* model indices, -1 = unknown */
  size_t n_cand;
} reco_opts_t;

/* Parse a RECOMMEND / RANK command. 0, or RECD_EINVAL / RECD_ENOMEM with
 * the error reply's text in err (RECD_ERRLEN). The borrowed fields point
 * into a, which must outlive o's use. */
int reco_parse_recommend(const resp_cmd_t *a, size_t max_count, reco_opts_t *o, char *err);
int reco_parse_rank(const resp_cmd_t *a, reco_opts_t *o, char *err);
/* The options RECOMMEND, RANK and SIMILAR share (PLACEMENT p, VARIANT v,
 * NOTRACK): 1 when a->argv[*i] is one of them (*i is then moved past its
 * value), 0 when it is not, -1 on a bad value (message in err). */
int reco_parse_common(const resp_cmd_t *a, size_t *i, reco_opts_t *o, char *err);
/* Maps the names and ids of o (parsed from a) onto model m. 0 or
 * RECD_ENOMEM (message in err). */
int reco_resolve(reco_opts_t *o, const resp_cmd_t *a, const model_t *m, char *err);
void reco_opts_free(reco_opts_t *o);

#endif
