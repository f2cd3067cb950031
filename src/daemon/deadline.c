/* deadline.c - see deadline.h. */
#include "deadline.h"

static void deadline__closed(uv_handle_t *h) {
  deadline_t *d = h->data;
  req_release(d->req);
}

void deadline_init(deadline_t *d, uv_loop_t *loop, req_t *r) {
  uv_timer_init(loop, &d->timer); /* cannot fail */
  d->timer.data = d;
  d->req = req_hold(r);
  d->settled = 0;
  d->expired = NULL;
  d->arg = NULL;
}

static void deadline__fired(uv_timer_t *t) {
  deadline_t *d = t->data;
  if (deadline_settle(d))
    d->expired(d->arg);
}

void deadline_arm(deadline_t *d, uint64_t ms, void (*expired)(void *arg), void *arg) {
  d->expired = expired;
  d->arg = arg;
  uv_timer_start(&d->timer, deadline__fired, ms, 0);
}

int deadline_settle(deadline_t *d) {
  if (d->settled)
    return 0;
  d->settled = 1;
  /* The close callback releases the request: the deadline may be embedded
   * in the request's context, which must outlive the handle. */
  uv_close((uv_handle_t *)&d->timer, deadline__closed);
  return 1;
}
