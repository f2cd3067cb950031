/* reco.h - RECOMMEND and RANK: their grammar, parsed against the served
 * model (pure: no I/O, unit-tested on its own), and the handlers, which
 * read the customer from Redis under a deadline and answer through the
 * batcher (RECOMMEND) or on the loop (RANK, which scores only its
 * candidates).
 *
 *   RECOMMEND <user> [COUNT n] [OFFSET m] [CATEGORY c]... [WITHSCORES]
 *             [WITHREASONS] [EXCLUDE id [id ...]]
 *   RANK <user> <item> [item ...] [WITHSCORES]
 */
#ifndef RECD_DAEMON_RECO_H
#define RECD_DAEMON_RECO_H

#include <stddef.h>
#include <stdint.h>

#include "recd/err.h"
#include "recd/model.h"
#include "recd/resp.h"

typedef struct reco_opts {
  const char *user;         /* argv[1], borrowed */
  size_t ulen;
  size_t count, offset;
  int withscores, withreasons;
  int cat_filter;           /* CATEGORY given */
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

/* Parse a RECOMMEND / RANK command against model m. 0, or RECD_EINVAL /
 * RECD_ENOMEM with the error reply's text in err (RECD_ERRLEN). The
 * borrowed fields point into a, which must outlive o's use. */
int reco_parse_recommend(const resp_cmd_t *a, const model_t *m, size_t max_count,
                         reco_opts_t *o, char *err);
int reco_parse_rank(const resp_cmd_t *a, const model_t *m, reco_opts_t *o, char *err);
void reco_opts_free(reco_opts_t *o);

#endif
