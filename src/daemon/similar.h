/* similar.h - a SIMILAR answer, shared by both ways of asking: similar.c
 * (no customer) and reco.c (SIMILAR ... FOR <user>, which needs the
 * customer's Redis read first). */
#ifndef RECD_DAEMON_SIMILAR_H
#define RECD_DAEMON_SIMILAR_H

#include <stddef.h>
#include <stdint.h>

#include "recd/model.h"
#include "recd/recommend.h"
#include "recd/reply.h"
#include "model_store.h"
#include "recd/serve.h"
#include "server.h"

/* Computed on whichever thread, replied on the loop. */
typedef struct similar_answer {
  int rc;          /* 0 or RECD_E*: then n items and scores */
  size_t n;
  uint32_t *items;
  float *scores;
} similar_answer_t;

/* Copies res (which points into a workspace) into a, less its first
 * `skip` items. Sets a->rc (0 or RECD_ENOMEM). */
void similar_answer_keep(similar_answer_t *a, const rec_result_t *res, size_t skip);
/* The reply: with WITHMETA (meta_kind not NULL) its leading element
 * (reco_reply_meta: kind, reason, variant, model version), then the ids
 * of model m, each followed by its score with withscores. */
void similar_answer_reply(reply_buf_t *r, const model_t *m, const similar_answer_t *a,
                          int withscores, const char *meta_kind, const char *meta_reason,
                          const char *variant, const char *version);
void similar_answer_free(similar_answer_t *a);

/* Does a SIMILAR on sv go through the micro-batcher (the int8 pass, and a
 * batcher still open), rather than rec_similar_q's dense pass? */
int similar_batched(server_t *s, const served_t *sv);
/* A batcher's answer seen as a similar_answer_t (borrowed: not freed). */
similar_answer_t similar_answer_view(const serve_answer_t *a);

#endif
