/* reply.h - RESP2 reply buffer.
 *
 * Command handlers append replies (simple strings, errors, integers, bulk
 * strings, nulls, arrays, numbers as bulks) to a reply_buf_t; the daemon
 * sends reply_data() to the socket and drops what was written with
 * reply_consume(). The buffer is one growable byte array, with no I/O, no
 * loop and no global state, so it can be tested alone and its bytes checked
 * by a real client parser (the tests use hiredis's redisReader).
 *
 * Error policy (one for the whole module): every append returns 0 or a
 * negative RECD_E* code, and the first failure is sticky in r->err - later
 * appends do nothing and return the same code. Handlers may therefore
 * append a whole reply and check once (or let the daemon check r->err after
 * the command). A failed buffer holds an incomplete reply: the daemon must
 * close the connection instead of sending more. The codes are
 *   RECD_ENOMEM  allocation failed;
 *   RECD_ERANGE  the hard limit set with reply_set_limit() would be passed
 *                (client-output-buffer-limit style: the client reads too
 *                slowly or asked for too much);
 *   RECD_EINVAL  deferred lengths used out of order (a programming error;
 *                sending the bytes would corrupt the stream).
 *
 * Text replies (simple strings and errors) cannot contain CR or LF in RESP:
 * each CR or LF in a message is replaced by a space, as Redis does for error
 * messages, so no message can inject a reply.
 *
 * Numbers as bulk strings: reply_double() writes the shortest decimal that
 * reads back as the same double (tries %.15g, %.16g, then %.17g, keeping the
 * first that strtod() maps back exactly), reply_float() the same for a float
 * (%.6g to %.9g, so a float32 score 0.3f is "0.3", not
 * "0.30000001192092896"). Infinities are "inf" and "-inf" and NaN is "nan",
 * like Redis. Formatting uses the C locale's '.', so the daemon must not
 * call setlocale() for LC_NUMERIC.
 *
 * Deferred array lengths: when a handler does not know how many elements it
 * will emit, reply_defer_array() reserves a header slot and
 * reply_set_array_len() fills it in afterwards. The slot is 23 bytes, room
 * for "*" + 20 digits + CRLF; filling it writes the real header and closes
 * the gap: free when the slot is the first unsent byte (the header is
 * written right-aligned and the send position skips the gap), else one
 * memmove of the elements written since. Slots nest, but must be filled in
 * LIFO order (inner before outer), at most REPLY_DEFER_MAX deep; bytes from
 * the first open slot on are not offered by reply_data() until it is filled.
 */
#ifndef RECD_REPLY_H
#define RECD_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "recd/err.h"

/* Deepest nesting of open deferred arrays. */
#define REPLY_DEFER_MAX 8
/* Buffer size that reply_format_double() needs. */
#define REPLY_DOUBLE_LEN 32

/* Handle of a deferred array header (a position in the reply stream). */
typedef uint64_t reply_defer_t;

/* Embed in the connection struct. Fields below "private" belong to
 * reply.c. */
typedef struct reply_buf {
  int err;          /* 0 or the sticky RECD_E* code (see above) */
  /* private */
  size_t limit;     /* most pending bytes; 0 = unlimited */
  char *data;       /* pending bytes are data[off, len), capacity cap */
  size_t off, len, cap;
  uint64_t base;    /* stream position of data[0]: handles are stream
                       positions so they survive compaction */
  uint64_t defer[REPLY_DEFER_MAX]; /* open slots, a stack, oldest first */
  size_t ndefer;
} reply_buf_t;

/* Initialises an empty buffer (allocates nothing, no limit). */
void reply_init(reply_buf_t *r);
/* Releases the memory; the struct may be initialised again. */
void reply_free(reply_buf_t *r);
/* Drops all pending bytes, open slots and the sticky error; keeps the
 * limit and the memory. */
void reply_reset(reply_buf_t *r);

/* Hard cap on pending bytes (0 = none): an append that would make
 * reply_len() exceed it fails with RECD_ERANGE (sticky). Checking
 * reply_len() after each command gives a soft limit instead. */
void reply_set_limit(reply_buf_t *r, size_t max_pending);

/* "+<s>\r\n". CR/LF in s become spaces. Return 0 or the sticky error. */
int reply_simple(reply_buf_t *r, const char *s);
int reply_simple_len(reply_buf_t *r, const char *s, size_t len);

/* "-ERR <msg>\r\n", or "<msg>\r\n" when msg starts with '-' and so carries
 * its own error code ("-WRONGTYPE ..."), Redis's addReplyError convention.
 * CR/LF in msg become spaces. Return 0 or the sticky error. */
int reply_error(reply_buf_t *r, const char *msg);
int reply_error_len(reply_buf_t *r, const char *msg, size_t len);
int reply_errorf(reply_buf_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ":<v>\r\n". */
int reply_int(reply_buf_t *r, long long v);

/* "$<len>\r\n<bytes>\r\n", binary safe; the bytes are copied. */
int reply_bulk(reply_buf_t *r, const void *p, size_t len);
/* Bulk of a C string; NULL gives the null bulk, like Redis's
 * addReplyBulkCString. */
int reply_bulk_cstr(reply_buf_t *r, const char *s);
/* Null bulk "$-1\r\n" (nil). */
int reply_null(reply_buf_t *r);

/* "*<n>\r\n"; the caller then appends n replies. */
int reply_array(reply_buf_t *r, size_t n);
/* Null array "*-1\r\n". */
int reply_null_array(reply_buf_t *r);

/* Number as a bulk string, shortest round-trip form (see above). */
int reply_double(reply_buf_t *r, double d);
int reply_float(reply_buf_t *r, float f);

/* Appends bytes that already are valid RESP (a canned reply). */
int reply_raw(reply_buf_t *r, const void *p, size_t len);

/* Reserves an array header whose count is set later; *h receives the
 * handle. Fails with RECD_EINVAL (sticky) beyond REPLY_DEFER_MAX open
 * slots. */
int reply_defer_array(reply_buf_t *r, reply_defer_t *h);
/* Writes "*<n>\r\n" into the most recently reserved open slot h. Returns 0,
 * the sticky error, or RECD_EINVAL (sticky) if h is not the innermost open
 * slot. */
int reply_set_array_len(reply_buf_t *r, reply_defer_t h, size_t n);

/* Bytes appended and not yet consumed, including any open deferred array;
 * compare with the client output limits. */
size_t reply_len(const reply_buf_t *r);

/* The bytes ready to send: *n of them at the returned pointer (NULL when
 * *n is 0). Stops at the first open deferred slot. The pointer is valid
 * until the next append, consume, detach, reset or free. */
const char *reply_data(const reply_buf_t *r, size_t *n);

/* Drops the first n ready bytes (those the socket accepted); n is clamped
 * to what reply_data() offers. Trimming is lazy: the bytes are only moved
 * when space is needed, and when everything is sent the buffer is rewound
 * for free (or released, if a big reply had grown it past 256 KiB). */
void reply_consume(reply_buf_t *r, size_t n);

/* Hands the ready bytes over for an asynchronous write without copying:
 * *block receives the allocation (the caller free()s it when the write
 * completes), *data and *n the bytes to send inside it, and the buffer
 * starts empty again. Returns 0 (with *block NULL and *n 0 if nothing is
 * pending); RECD_EINVAL, not sticky and changing nothing, while a
 * deferred slot is open; or the sticky error (nothing may be sent). */
int reply_detach(reply_buf_t *r, char **block, const char **data, size_t *n);

/* Heap bytes held, for INFO. */
size_t reply_mem(const reply_buf_t *r);

/* Writes the shortest round-trip text of d into buf (REPLY_DOUBLE_LEN
 * bytes), NUL-terminated; returns its length. For INFO and the tests. */
size_t reply_format_double(char *buf, double d);
/* Same for a float. */
size_t reply_format_float(char *buf, float f);

#endif
