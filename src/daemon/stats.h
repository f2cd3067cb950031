/* stats.h - latency histograms for INFO and benchmarks.
 *
 * Log-linear buckets (8 per power of two, from 1 us to ~1 hour): constant
 * memory, O(1) record, percentiles within 1/8 = 12.5% relative error, and no
 * sample is ever dropped, unlike a ring of recent samples. */
#ifndef RECD_DAEMON_STATS_H
#define RECD_DAEMON_STATS_H

#include <stdint.h>

#define STATS_SUB 8
#define STATS_BUCKETS (32 * STATS_SUB)

typedef struct stats_hist {
  uint64_t count;
  uint64_t sum_us;
  uint64_t max_us;
  uint64_t bucket[STATS_BUCKETS];
} stats_hist_t;

void stats_hist_record(stats_hist_t *h, uint64_t us);
/* Value in microseconds below which a fraction q of the samples fall
 * (upper edge of the bucket holding that rank); 0 with no samples. */
uint64_t stats_hist_quantile(const stats_hist_t *h, double q);
/* Largest value in microseconds that falls in bucket b (< STATS_BUCKETS);
 * increasing in b. For exporters that re-bucket the counts (metrics.c). The
 * last bucket also holds every larger value. */
uint64_t stats_hist_bucket_upper(unsigned b);

/* One command's figures (INFO cmdstat_*, /metrics). */
typedef struct cmd_stats {
  uint64_t calls, errors;
  stats_hist_t latency;
} cmd_stats_t;
void cmd_stats_record(cmd_stats_t *st, uint64_t us, int failed);

/* Monotonic clock in microseconds. */
uint64_t stats_now_us(void);
/* The same clock in nanoseconds. */
uint64_t stats_now_ns(void);

#endif
