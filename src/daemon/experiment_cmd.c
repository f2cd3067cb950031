/* experiment_cmd.c - EXPERIMENT REPORT | EXPERIMENT RESET.
 *
 * REPORT reads the counters from Redis now (not the periodic copy that
 * INFO and the status page show) and replies one element per (variant,
 * placement): a flat array of field, value pairs, the fields of
 * experiment.h's exp_row_t; figures that are undefined (no impressions,
 * no control conversion) are nil. RESET deletes the counters: a new
 * experiment starts (impressions already recorded still attribute).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "tracking.h"

static void experiment__num(reply_buf_t *r, const char *k, double v) {
  reply_bulk_cstr(r, k);
  if (isnan(v) || isinf(v))
    reply_null(r);
  else
    reply_double(r, v);
}

static void experiment__reply_report(reply_buf_t *out, const exp_report_t *rep) {
  reply_array(out, rep->n);
  for (size_t i = 0; i < rep->n; i++) {
    const exp_row_t *w = &rep->row[i];
    reply_array(out, 2 * (2 + EXP_N_COUNTERS + 6 + (w->has_lift ? 4 : 0)));
    reply_bulk_cstr(out, "variant");
    reply_bulk_cstr(out, w->variant);
    reply_bulk_cstr(out, "placement");
    reply_bulk_cstr(out, w->placement);
    for (int c = 0; c < EXP_N_COUNTERS; c++)
      experiment__num(out, exp_counter_name((exp_counter_t)c), w->v[c]);
    experiment__num(out, "ctr", w->ctr);
    experiment__num(out, "ctr_low", w->ctr_low);
    experiment__num(out, "ctr_high", w->ctr_high);
    experiment__num(out, "conversion", w->conversion);
    experiment__num(out, "conversion_low", w->conversion_low);
    experiment__num(out, "conversion_high", w->conversion_high);
    if (w->has_lift) {
      experiment__num(out, "lift", w->lift);
      experiment__num(out, "lift_low", w->lift_low);
      experiment__num(out, "lift_high", w->lift_high);
      experiment__num(out, "p_value", w->p_value);
    }
  }
}

static void experiment__done(int rc, const exp_report_t *rep, const char *errstr, void *arg) {
  req_t *r = arg;
  if (rc != 0)
    reply_errorf(&r->reply, "cannot read the experiment from Redis: %s",
                 errstr ? errstr : "error");
  else if (rep != NULL)
    experiment__reply_report(&r->reply, rep);
  else
    reply_simple(&r->reply, "OK");
  req_finish(r, rc != 0);
  req_release(r); /* the Redis call's hold */
}

void experiment_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  server_t *s = c->srv;
  req_t *r = client_request(c, st);
  if (r == NULL)
    return;
  const int report = strcasecmp(a->argv[1], "report") == 0;
  const int reset = strcasecmp(a->argv[1], "reset") == 0;
  if ((!report && !reset) || s->tracker == NULL) {
    reply_error(&r->reply, report || reset ? "server is shutting down"
                                           : "unknown EXPERIMENT subcommand "
                                             "(EXPERIMENT REPORT | EXPERIMENT RESET)");
    req_finish(r, 1);
    return;
  }
  req_hold(r);
  int rc = report ? tracker_read_report(s->tracker, experiment__done, r)
                  : tracker_reset(s->tracker, experiment__done, r);
  if (rc != 0) {
    req_release(r);
    reply_error(&r->reply, "cannot reach Redis for the experiment");
    req_finish(r, 1);
  }
}
