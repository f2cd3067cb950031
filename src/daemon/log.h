/* log.h - one line per event on stderr: timestamp, level, message.
 *
 * The daemon has exactly one log destination and one level, set once at
 * start-up; keeping them in this module (rather than threading a logger
 * through every call) is the one piece of process-wide state recd allows
 * itself, as Redis and libuv's test runner do. Safe to call from worker
 * threads: each line is formatted into a local buffer and written with a
 * single write(2), so lines never interleave.
 */
#ifndef RECD_DAEMON_LOG_H
#define RECD_DAEMON_LOG_H

#include "config.h"

void log_set_level(int level); /* a config_loglevel_t */
int log_get_level(void);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(CONFIG_LOG_DEBUG, __VA_ARGS__)
#define log_verbose(...) log_msg(CONFIG_LOG_VERBOSE, __VA_ARGS__)
#define log_notice(...) log_msg(CONFIG_LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_msg(CONFIG_LOG_WARNING, __VA_ARGS__)

/* Copies at most `max` bytes of s into out (size >= 4*max+1) with every
 * non-printable byte shown as \xHH, for logging what clients sent. */
void log_sanitize(char *out, const char *s, size_t len, size_t max);

#endif
