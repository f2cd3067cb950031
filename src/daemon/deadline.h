/* deadline.h - an asynchronous reply racing a timer: whichever comes first
 * decides the request's answer, exactly once.
 *
 * RECOMMEND and RANK wait for the customer's history at most
 * redis-timeout-ms (then they answer with popular items, counted as
 * degraded); FEEDBACK waits at most feedback-timeout-ms (then it answers an
 * error). Both callbacks call deadline_settle() first and go on only when
 * it returns 1; the loser finds the race decided and only releases what it
 * holds. The deadline holds the request until its timer handle is closed.
 */
#ifndef RECD_DAEMON_DEADLINE_H
#define RECD_DAEMON_DEADLINE_H

#include <stdint.h>
#include <uv.h>

#include "reqq.h"

typedef struct deadline deadline_t;
struct deadline {
  uv_timer_t timer;
  req_t *req;
  int settled;
  void (*expired)(void *arg); /* the timer won */
  void *arg;
};

/* Sets d up for r (held until the timer is closed); not armed yet. */
void deadline_init(deadline_t *d, uv_loop_t *loop, req_t *r);
/* Starts the timer: expired(arg) runs after ms unless settled first. */
void deadline_arm(deadline_t *d, uint64_t ms, void (*expired)(void *arg), void *arg);
/* Decides the race: 1 for the first caller (the timer is then closed), 0
 * for every later one. */
int deadline_settle(deadline_t *d);

#endif
