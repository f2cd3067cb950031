/* stats.c - see stats.h. */
#include "stats.h"

#include <time.h>

/* Bucket of a value: values below STATS_SUB map to themselves; above, the
 * power of two selects a group of STATS_SUB buckets and the next 3 bits
 * below the leading one select the bucket within it. */
static unsigned stats__bucket(uint64_t v) {
  if (v < STATS_SUB)
    return (unsigned)v;
  unsigned lg = 63u - (unsigned)__builtin_clzll(v); /* >= 3 */
  unsigned sub = (unsigned)(v >> (lg - 3)) & (STATS_SUB - 1);
  unsigned b = (lg - 2) * STATS_SUB + sub;
  return b < STATS_BUCKETS ? b : STATS_BUCKETS - 1;
}

/* Largest value that falls in bucket b. */
static uint64_t stats__upper(unsigned b) {
  if (b < STATS_SUB)
    return b;
  unsigned lg = b / STATS_SUB + 2, sub = b % STATS_SUB;
  return ((uint64_t)(STATS_SUB + sub + 1) << (lg - 3)) - 1;
}

uint64_t stats_hist_bucket_upper(unsigned b) {
  return stats__upper(b);
}

void stats_hist_record(stats_hist_t *h, uint64_t us) {
  h->count++;
  h->sum_us += us;
  if (us > h->max_us)
    h->max_us = us;
  h->bucket[stats__bucket(us)]++;
}

uint64_t stats_hist_quantile(const stats_hist_t *h, double q) {
  if (h->count == 0)
    return 0;
  uint64_t rank = (uint64_t)(q * (double)h->count);
  if (rank >= h->count)
    rank = h->count - 1;
  uint64_t seen = 0;
  for (unsigned b = 0; b < STATS_BUCKETS; b++) {
    seen += h->bucket[b];
    if (seen > rank) {
      uint64_t u = stats__upper(b);
      return u < h->max_us ? u : h->max_us;
    }
  }
  return h->max_us;
}

uint64_t stats_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t stats_now_us(void) {
  return stats_now_ns() / 1000u;
}

void cmd_stats_record(cmd_stats_t *st, uint64_t us, int failed) {
  st->calls++;
  st->errors += failed != 0;
  stats_hist_record(&st->latency, us);
}
