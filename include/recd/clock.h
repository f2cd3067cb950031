/* clock.h - elapsed time for progress lines and reports.
 *
 * CLOCK_MONOTONIC: durations must not jump when NTP or an operator sets
 * the wall clock during a long training run.
 */
#ifndef RECD_CLOCK_H
#define RECD_CLOCK_H

#include <time.h>

static inline double recd_clock_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
