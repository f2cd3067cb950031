/* err.h - error codes shared by every recd module.
 *
 * Functions return 0 on success or one of the negative RECD_E* codes below.
 * Where the code alone cannot say what went wrong (which file, which line,
 * which field), the function also takes a caller-provided char buffer of
 * RECD_ERRLEN bytes and writes a one-line, human-readable message into it.
 * The list is one X-macro so that the enum, the name and the message can
 * never drift apart (the UV_ERRNO_MAP pattern of libuv).
 */
#ifndef RECD_ERR_H
#define RECD_ERR_H

#include <stddef.h>

#define RECD_ERRLEN 256

#define RECD_ERR_MAP(X)                                               \
  X(NOMEM,   -1, "out of memory")                                     \
  X(IO,      -2, "I/O error")                                         \
  X(FORMAT,  -3, "malformed input")                                   \
  X(INVAL,   -4, "invalid argument")                                  \
  X(RANGE,   -5, "value out of range")                                \
  X(NOTFOUND,-6, "not found")                                         \
  X(NUMERIC, -7, "numerical failure")                                 \
  X(VERSION, -8, "unsupported version")                               \
  X(CHECKSUM,-9, "checksum mismatch")                                 \
  X(REDIS,  -10, "Redis error")

typedef enum recd_err {
  RECD_OK = 0,
#define RECD__ERR_ENUM(name, code, msg) RECD_E##name = (code),
  RECD_ERR_MAP(RECD__ERR_ENUM)
#undef RECD__ERR_ENUM
} recd_err_t;

/* "RECD_ENOMEM" style name of an error code; "RECD_OK" for 0, "unknown" else. */
const char *recd_err_name(int err);
/* Short English description of an error code; never NULL. */
const char *recd_strerror(int err);

/* printf-style write of a message into an error buffer of RECD_ERRLEN bytes
 * (which may be NULL: then nothing is written). Returns `err` so callers can
 * write `return recd_errf(errbuf, RECD_EFORMAT, "...", ...);`. */
int recd_errf(char *errbuf, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes byte c for a message or a log line: as itself when it is
 * printable ASCII other than a backslash and the bytes in `also`, else as
 * \xNN. Returns the bytes written to out (1 or 4), so that ids that are
 * opaque bytes can be shown without breaking a line or a quote. */
size_t recd_escape_byte(char *out, unsigned char c, const char *also);

#endif
