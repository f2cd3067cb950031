/* reply.c - RESP2 reply buffer (see reply.h).
 *
 * Pending bytes live in data[off, len). Appends go to the end; consume
 * advances off. Nothing is moved on consume: consumed bytes are reclaimed
 * when an append needs room (one memmove of the pending bytes, which a
 * realloc would copy anyway) or for free when everything has been sent,
 * which is the common case for a client that keeps up.
 *
 * Deferred headers are remembered as stream positions (base + index), not
 * indices, so that compaction, which changes indices, does not invalidate
 * the handles the caller holds.
 */
#include "recd/reply.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Smallest allocation. */
#define REPLY__MIN_CAP ((size_t)1024)
/* A buffer larger than this is released once fully sent. */
#define REPLY__KEEP_CAP ((size_t)256 << 10)
/* Deferred header slot: '*', up to 20 digits, CRLF. */
#define REPLY__SLOT 23

static int reply__fail(reply_buf_t *r, int err) {
  r->err = err;
  return err;
}

/* Index where bytes not ready to send begin: the first open slot. */
static size_t reply__ready_end(const reply_buf_t *r) {
  return r->ndefer ? (size_t)(r->defer[0] - r->base) : r->len;
}

/* Returns a pointer to n writable bytes at data + len (the caller writes
 * them and adds n to len), or NULL with the sticky error set. */
static char *reply__room(reply_buf_t *r, size_t n) {
  if (r->err)
    return NULL;
  size_t pending = r->len - r->off;
  if (r->limit && (n > r->limit || pending > r->limit - n)) {
    reply__fail(r, RECD_ERANGE);
    return NULL;
  }
  if (r->cap - r->len >= n)
    return r->data + r->len;
  if (r->off > 0) {
    memmove(r->data, r->data + r->off, pending);
    r->base += r->off;
    r->len = pending;
    r->off = 0;
    if (r->cap - r->len >= n)
      return r->data + r->len;
  }
  if (n > SIZE_MAX / 4 - r->len) {
    reply__fail(r, RECD_ENOMEM);
    return NULL;
  }
  size_t need = r->len + n;
  size_t ncap = r->cap ? r->cap : REPLY__MIN_CAP;
  while (ncap < need)
    ncap *= 2;
  char *nd = realloc(r->data, ncap);
  if (nd == NULL) {
    reply__fail(r, RECD_ENOMEM);
    return NULL;
  }
  r->data = nd;
  r->cap = ncap;
  return r->data + r->len;
}

/* Decimal digits of v into dst (at least 20 bytes); returns the count. */
static size_t reply__utoa(char *dst, unsigned long long v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++)
    dst[i] = tmp[n - 1 - i];
  return n;
}

/* "<type><v>\r\n" into dst (at least 24 bytes); returns the length. */
static size_t reply__header(char *dst, char type, int neg, unsigned long long v) {
  size_t n = 0;
  dst[n++] = type;
  if (neg)
    dst[n++] = '-';
  n += reply__utoa(dst + n, v);
  dst[n++] = '\r';
  dst[n++] = '\n';
  return n;
}

static void reply__sanitize(char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\r' || s[i] == '\n')
      s[i] = ' ';
}

void reply_init(reply_buf_t *r) {
  memset(r, 0, sizeof *r);
}

void reply_free(reply_buf_t *r) {
  free(r->data);
  size_t limit = r->limit;
  reply_init(r);
  r->limit = limit;
}

void reply_reset(reply_buf_t *r) {
  r->base += r->len;
  r->off = r->len = 0;
  r->ndefer = 0;
  r->err = 0;
}

void reply_set_limit(reply_buf_t *r, size_t max_pending) {
  r->limit = max_pending;
}

int reply_raw(reply_buf_t *r, const void *p, size_t len) {
  char *d = reply__room(r, len);
  if (d == NULL)
    return r->err;
  if (len)
    memcpy(d, p, len);
  r->len += len;
  return 0;
}

/* <type><text>\r\n with CR/LF in text blanked; prefix (may be empty) goes
 * between the type and the text. */
static int reply__line(reply_buf_t *r, const char *prefix, size_t plen, const char *s,
                       size_t len) {
  if (len > SIZE_MAX / 4)
    return reply__fail(r, RECD_ENOMEM);
  char *d = reply__room(r, plen + len + 2);
  if (d == NULL)
    return r->err;
  memcpy(d, prefix, plen);
  if (len)
    memcpy(d + plen, s, len);
  reply__sanitize(d + 1, plen - 1 + len);
  d[plen + len] = '\r';
  d[plen + len + 1] = '\n';
  r->len += plen + len + 2;
  return 0;
}

int reply_simple_len(reply_buf_t *r, const char *s, size_t len) {
  return reply__line(r, "+", 1, s, len);
}

int reply_simple(reply_buf_t *r, const char *s) {
  return reply_simple_len(r, s, strlen(s));
}

int reply_error_len(reply_buf_t *r, const char *msg, size_t len) {
  if (len > 0 && msg[0] == '-')
    return reply__line(r, "-", 1, msg + 1, len - 1);
  return reply__line(r, "-ERR ", 5, msg, len);
}

int reply_error(reply_buf_t *r, const char *msg) {
  return reply_error_len(r, msg, strlen(msg));
}

int reply_errorf(reply_buf_t *r, const char *fmt, ...) {
  if (r->err)
    return r->err;
  /* A first pass learns the length and the first character (does the
   * message bring its own "-CODE"?), so that exactly the bytes needed are
   * reserved; the second formats straight into the buffer. */
  char first[2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(first, sizeof first, fmt, ap);
  va_end(ap);
  if (n < 0)
    return reply__fail(r, RECD_EINVAL);
  int own = n > 0 && first[0] == '-';
  size_t plen = own ? 0 : 5, len = plen + (size_t)n;
  char *d = reply__room(r, len + 2);
  if (d == NULL)
    return r->err;
  memcpy(d, "-ERR ", plen);
  /* vsnprintf's NUL lands on d[len], which the CR then overwrites. */
  va_start(ap, fmt);
  vsnprintf(d + plen, (size_t)n + 1, fmt, ap);
  va_end(ap);
  reply__sanitize(d + 1, len - 1);
  d[len] = '\r';
  d[len + 1] = '\n';
  r->len += len + 2;
  return 0;
}

int reply_int(reply_buf_t *r, long long v) {
  char h[24];
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  return reply_raw(r, h, reply__header(h, ':', v < 0, u));
}

int reply_bulk(reply_buf_t *r, const void *p, size_t len) {
  char h[24];
  size_t hl = reply__header(h, '$', 0, len);
  if (len > SIZE_MAX / 4)
    return reply__fail(r, RECD_ENOMEM);
  char *d = reply__room(r, hl + len + 2);
  if (d == NULL)
    return r->err;
  memcpy(d, h, hl);
  if (len)
    memcpy(d + hl, p, len);
  d[hl + len] = '\r';
  d[hl + len + 1] = '\n';
  r->len += hl + len + 2;
  return 0;
}

int reply_bulk_cstr(reply_buf_t *r, const char *s) {
  return s == NULL ? reply_null(r) : reply_bulk(r, s, strlen(s));
}

int reply_null(reply_buf_t *r) {
  return reply_raw(r, "$-1\r\n", 5);
}

int reply_array(reply_buf_t *r, size_t n) {
  char h[24];
  return reply_raw(r, h, reply__header(h, '*', 0, n));
}

int reply_null_array(reply_buf_t *r) {
  return reply_raw(r, "*-1\r\n", 5);
}

size_t reply_format_double(char *buf, double d) {
  if (isnan(d))
    return (size_t)snprintf(buf, REPLY_DOUBLE_LEN, "nan");
  if (isinf(d))
    return (size_t)snprintf(buf, REPLY_DOUBLE_LEN, d > 0 ? "inf" : "-inf");
  /* If some decimal of k <= 15 digits reads back as d, then d is within
   * half an ulp of it, and rounding d to 15 digits gives that decimal
   * (%g drops the trailing zeros): so the first precision that round-trips
   * gives the shortest text. 17 digits always round-trip. */
  int n = 0;
  for (int prec = 15; prec <= 17; prec++) {
    n = snprintf(buf, REPLY_DOUBLE_LEN, "%.*g", prec, d);
    if (strtod(buf, NULL) == d)
      break;
  }
  return (size_t)n;
}

size_t reply_format_float(char *buf, float f) {
  if (isnan(f))
    return (size_t)snprintf(buf, REPLY_DOUBLE_LEN, "nan");
  if (isinf(f))
    return (size_t)snprintf(buf, REPLY_DOUBLE_LEN, f > 0 ? "inf" : "-inf");
  /* The same argument with float precision: 6 to 9 digits. */
  int n = 0;
  for (int prec = 6; prec <= 9; prec++) {
    n = snprintf(buf, REPLY_DOUBLE_LEN, "%.*g", prec, (double)f);
    if (strtof(buf, NULL) == f)
      break;
  }
  return (size_t)n;
}

int reply_double(reply_buf_t *r, double d) {
  char buf[REPLY_DOUBLE_LEN];
  size_t n = reply_format_double(buf, d);
  return reply_bulk(r, buf, n);
}

int reply_float(reply_buf_t *r, float f) {
  char buf[REPLY_DOUBLE_LEN];
  size_t n = reply_format_float(buf, f);
  return reply_bulk(r, buf, n);
}

int reply_defer_array(reply_buf_t *r, reply_defer_t *h) {
  *h = UINT64_MAX;
  if (r->err)
    return r->err;
  if (r->ndefer == REPLY_DEFER_MAX)
    return reply__fail(r, RECD_EINVAL);
  char *d = reply__room(r, REPLY__SLOT);
  if (d == NULL)
    return r->err;
  /* Filled with blanks so that a buffer dumped in a debugger or sanitizer
   * report holds no uninitialised bytes. */
  memset(d, ' ', REPLY__SLOT);
  *h = r->base + r->len;
  r->defer[r->ndefer++] = *h;
  r->len += REPLY__SLOT;
  return 0;
}

int reply_set_array_len(reply_buf_t *r, reply_defer_t h, size_t n) {
  if (r->err)
    return r->err;
  if (r->ndefer == 0 || r->defer[r->ndefer - 1] != h)
    return reply__fail(r, RECD_EINVAL);
  char hdr[24];
  size_t w = reply__header(hdr, '*', 0, n);
  size_t gap = REPLY__SLOT - w;
  size_t at = (size_t)(h - r->base);
  if (at == r->off) {
    /* Nothing unsent before the slot: right-align the header and start
     * sending from it; the gap is skipped instead of moved. */
    memcpy(r->data + at + gap, hdr, w);
    r->off += gap;
  } else {
    /* LIFO order means no open slot lies behind this one, so moving the
     * bytes behind it invalidates no handle. */
    memcpy(r->data + at, hdr, w);
    memmove(r->data + at + w, r->data + at + REPLY__SLOT, r->len - at - REPLY__SLOT);
    r->len -= gap;
  }
  r->ndefer--;
  return 0;
}

size_t reply_len(const reply_buf_t *r) {
  return r->len - r->off;
}

const char *reply_data(const reply_buf_t *r, size_t *n) {
  *n = reply__ready_end(r) - r->off;
  return *n ? r->data + r->off : NULL;
}

void reply_consume(reply_buf_t *r, size_t n) {
  size_t ready = reply__ready_end(r) - r->off;
  if (n > ready)
    n = ready;
  r->off += n;
  if (r->off == r->len) {
    /* All sent (so no slot is open): rewind for free. */
    r->base += r->len;
    r->off = r->len = 0;
    if (r->cap > REPLY__KEEP_CAP) {
      free(r->data);
      r->data = NULL;
      r->cap = 0;
    }
  }
}

int reply_detach(reply_buf_t *r, char **block, const char **data, size_t *n) {
  *block = NULL;
  *data = NULL;
  *n = 0;
  if (r->err)
    return r->err;
  if (r->ndefer)
    return RECD_EINVAL;
  if (r->len == r->off)
    return 0;
  *block = r->data;
  *data = r->data + r->off;
  *n = r->len - r->off;
  r->base += r->len;
  r->data = NULL;
  r->off = r->len = r->cap = 0;
  return 0;
}

size_t reply_mem(const reply_buf_t *r) {
  return r->cap;
}
