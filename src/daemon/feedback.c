/* feedback.c - FEEDBACK <user> <item> [WEIGHT w]: records an interaction
 * in the customer's history in Redis (ZINCRBY) and replies the new
 * weight. A hung Redis must not hold this connection's later replies (they
 * leave in order) for longer than feedback-timeout-ms (deadline.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "deadline.h"
#include "rclient.h"
#include "recd/csv.h"

typedef struct feedback_ctx {
  req_t *req;
  deadline_t dl;
  int timeout_ms;
} feedback_ctx_t;

static void feedback__on_reply(rclient_t *rc, rclient_status_t st, double score,
                               const char *errstr, void *arg) {
  (void)rc;
  feedback_ctx_t *f = arg;
  req_t *r = f->req;
  if (deadline_settle(&f->dl)) {
    if (st == RCLIENT_OK)
      reply_double(&r->reply, score);
    else
      reply_errorf(&r->reply, "Redis %s: %s",
                   st == RCLIENT_UNAVAILABLE ? "unavailable" : "error", errstr ? errstr : "");
    req_finish(r, st != RCLIENT_OK);
  }
  req_release(r); /* the Redis callback's hold */
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

void feedback_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  double w = 1.0;
  if (a->argc == 5 && a->argvlen[3] == 6 && strcasecmp(a->argv[3], "WEIGHT") == 0) {
    /* csv_parse_float checks the grammar (argv[4] is NUL-terminated); the
     * value is taken in double precision, so that WEIGHT 0.1 adds 0.1 and
     * not 0.100000001490116, and 1000000001 is over the limit. It must
     * stay > 0 as a float too: that is how the fold-in reads it back. */
    float wf;
    if (csv_parse_float(a->argv[4], a->argvlen[4], &wf) != 0 ||
        !((w = strtod(a->argv[4], NULL)) > 0.0) || w > 1e9 || !((float)w > 0.0f)) {
      feedback__fail(r, "WEIGHT must be a finite number in (0, 1e9]");
      return;
    }
  } else if (a->argc != 3) {
    feedback__fail(r, "syntax error");
    return;
  }
  if (a->argvlen[1] == 0 || a->argvlen[1] > RCLIENT_ID_MAX || a->argvlen[2] == 0 ||
      a->argvlen[2] > RCLIENT_ID_MAX) {
    feedback__fail(r, "user and item ids must be 1 to 256 bytes");
    return;
  }
  feedback_ctx_t *f = calloc(1, sizeof *f);
  if (f == NULL) {
    feedback__fail(r, "out of memory");
    return;
  }
  f->req = r;
  f->timeout_ms = c->srv->cfg->feedback_timeout_ms;
  r->ctx = f;
  r->ctx_free = free;
  req_hold(r); /* the Redis callback's */
  if (rclient_feedback(c->srv->redis, a->argv[1], a->argvlen[1], a->argv[2], a->argvlen[2], w,
                       feedback__on_reply, f) != 0) {
    req_release(r);
    feedback__fail(r, "cannot send FEEDBACK to Redis");
    return;
  }
  deadline_init(&f->dl, c->srv->loop, r);
  deadline_arm(&f->dl, (uint64_t)f->timeout_ms, feedback__expired, f);
}
