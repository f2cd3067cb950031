/* log.c - see log.h. */
#include "log.h"

#include "recd/err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log__level = CONFIG_LOG_NOTICE;

void log_set_level(int level) {
  atomic_store(&log__level, level);
}

int log_get_level(void) {
  return atomic_load(&log__level);
}

void log_msg(int level, const char *fmt, ...) {
  static const char *const names[] = {"debug", "verbose", "notice", "warning"};
  if (level < atomic_load(&log__level))
    return;
  char line[1024];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %d [%s] ", ts.tv_nsec / 1000000L,
                        (int)getpid(), names[level < 0 ? 0 : level > 3 ? 3 : level]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  n = m < 0 ? n : n + (size_t)m < sizeof line - 1 ? n + (size_t)m : sizeof line - 2;
  line[n++] = '\n';
  /* One write per line: concurrent loggers never interleave within a line.
   * A failed log write has nowhere to be reported. */
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
}

void log_sanitize(char *out, const char *s, size_t len, size_t max) {
  size_t o = 0;
  for (size_t i = 0; i < len && i < max; i++)
    o += recd_escape_byte(out + o, (unsigned char)s[i], NULL);
  out[o] = '\0';
}
