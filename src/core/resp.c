/* resp.c - incremental RESP2 request parser (see resp.h).
 *
 * The parser is a state machine over one input buffer:
 *
 *   START --'*'--> COUNT --> BULKLEN --> BODY --(argc done)--> START
 *     |                        ^           |
 *     |                        +-----------+ (more arguments)
 *     +--other--> INLINE --(line complete)--> START
 *
 * Each state handler looks only at buf[pos, len) and either advances (the
 * loop in resp_parser_next() goes on), asks for more bytes (nothing is
 * consumed, so calling again after a feed resumes exactly there), completes
 * a command, or fails. There is no recursion and no hidden state: requests
 * are flat arrays of bulks, so no stack is needed.
 *
 * Offsets, not pointers: while a request is incomplete its arguments are
 * remembered as offsets from the request start (req), because feeding more
 * bytes may move the buffer (realloc) and trimming moves the request to the
 * front. Pointers are made only when the command is returned.
 *
 * Verdicts never depend on fragmentation. A length line is at most a prefix,
 * 20 characters (the longest strict 64-bit integer) and CRLF, so a longer
 * unterminated line is refused with the same message the complete line
 * would get. An inline line is measured with or without its terminator
 * (see resp__inline). The tests feed every input whole, byte by byte, split
 * at every offset and in 4-byte chunks and require identical results.
 *
 * Out of memory is one policy everywhere: the parser enters the sticky error
 * state with err = RECD_ENOMEM, because a client whose bytes we could not
 * keep can no longer be parsed consistently; the daemon closes it.
 */
#include "recd/resp.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  RESP__S_START,   /* between requests */
  RESP__S_COUNT,   /* at "*<count>\r\n" */
  RESP__S_BULKLEN, /* at "$<len>\r\n" */
  RESP__S_BODY,    /* at "<bulklen bytes>\r\n" */
  RESP__S_INLINE   /* inside an inline line */
};

/* What a state handler did. */
enum {
  RESP__STEP_NEXT, /* advanced; run the next state */
  RESP__STEP_MORE, /* needs bytes that have not arrived */
  RESP__STEP_CMD,  /* a command is complete at buf[req, pos) */
  RESP__STEP_ERR   /* err/errstr set */
};

/* Trim consumed input once at least this much has accumulated (or all of
 * it is consumed): memmove per batch, not per command (hiredis read.c uses
 * the same 1 KiB threshold). */
#define RESP__TRIM_MIN ((size_t)1024)
/* When the parser goes idle it frees a buffer or argv array larger than
 * this, so that one big request does not pin memory for an idle client. */
#define RESP__KEEP_BUF ((size_t)256 << 10)
#define RESP__KEEP_ARGS ((size_t)1024)
/* First buffer allocation. */
#define RESP__MIN_BUF ((size_t)1024)
/* The argv arrays start at min(count, this) entries (Redis uses the same
 * bound) and double from there as arguments actually arrive. */
#define RESP__ARGV_START ((size_t)1024)
/* Longest strict integer: "-9223372036854775808". */
#define RESP__NUM_MAX 20

static int resp__fail(resp_parser_t *p, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Enters the sticky error state. Returns RESP__STEP_ERR for tail calls. */
static int resp__fail(resp_parser_t *p, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->errstr, sizeof p->errstr, fmt, ap);
  va_end(ap);
  p->err = err;
  return RESP__STEP_ERR;
}

static int resp__nomem(resp_parser_t *p) {
  return resp__fail(p, RECD_ENOMEM, "out of memory");
}

/* Strict decimal parse of s[0, n): optional '-', no '+', no blanks, no
 * leading zeros (only "0" itself), no overflow. Re-creates the rules of
 * Redis's string2ll() so that what Redis refuses, we refuse. Returns 0 or
 * -1. */
static int resp__strtoll(const char *s, size_t n, long long *out) {
  if (n == 0 || n > RESP__NUM_MAX)
    return -1;
  if (n == 1 && s[0] == '0') {
    *out = 0;
    return 0;
  }
  size_t i = 0;
  int neg = 0;
  if (s[0] == '-') {
    neg = 1;
    i = 1;
  }
  if (i == n || s[i] < '1' || s[i] > '9')
    return -1;
  unsigned long long v = 0;
  for (; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (ULLONG_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > (unsigned long long)LLONG_MAX + 1)
      return -1;
    *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
  } else {
    if (v > (unsigned long long)LLONG_MAX)
      return -1;
    *out = (long long)v;
  }
  return 0;
}

/* Makes room for `want` argument slots (want <= max_args). The three arrays
 * are grown one by one; a failure leaves the larger ones in place, which is
 * harmless because argcap only changes once all three succeeded. */
static int resp__args_reserve(resp_parser_t *p, size_t want) {
  if (want <= p->argcap)
    return 0;
  size_t *off = realloc(p->argoff, want * sizeof *off);
  if (off == NULL)
    return -1;
  p->argoff = off;
  size_t *lens = realloc(p->argvlen, want * sizeof *lens);
  if (lens == NULL)
    return -1;
  p->argvlen = lens;
  const char **v = realloc(p->argv, want * sizeof *v);
  if (v == NULL)
    return -1;
  p->argv = v;
  p->argcap = want;
  return 0;
}

/* Records argument number argc (the caller checked argc < max_args). */
static int resp__args_push(resp_parser_t *p, size_t off, size_t len) {
  if (p->argc == p->argcap) {
    size_t want = p->argcap ? p->argcap * 2 : 8;
    if (want > p->cfg.max_args)
      want = p->cfg.max_args;
    if (resp__args_reserve(p, want) != 0)
      return resp__nomem(p);
  }
  p->argoff[p->argc] = off;
  p->argvlen[p->argc] = len;
  p->argc++;
  return RESP__STEP_NEXT;
}

static void resp__args_release(resp_parser_t *p) {
  free(p->argoff);
  free(p->argvlen);
  free(p->argv);
  p->argoff = NULL;
  p->argvlen = NULL;
  p->argv = NULL;
  p->argcap = 0;
}

/* Moves the unconsumed bytes buf[req, len) to the front. */
static void resp__compact(resp_parser_t *p) {
  size_t shift = p->req;
  if (shift == 0)
    return;
  memmove(p->buf, p->buf + shift, p->len - shift);
  p->len -= shift;
  p->pos -= shift;
  p->scan = p->scan > shift ? p->scan - shift : 0;
  p->req = 0;
}

/* Called whenever next() runs out of complete requests: the lazy trim. */
static void resp__trim(resp_parser_t *p) {
  if (p->req == p->len) {
    /* Everything consumed (so we are between requests): resetting the
     * offsets is free, and an oversized buffer is given back. */
    p->len = p->pos = p->req = p->scan = 0;
    if (p->cap > RESP__KEEP_BUF) {
      free(p->buf);
      p->buf = NULL;
      p->cap = 0;
    }
    if (p->argcap > RESP__KEEP_ARGS)
      resp__args_release(p);
  } else if (p->req >= RESP__TRIM_MIN) {
    resp__compact(p);
  }
}

/* Ensures want bytes of free space after len. Reclaims consumed bytes
 * before growing; grows geometrically so that a large bulk arriving in
 * small reads is moved O(1) times per byte, amortised. */
static int resp__room(resp_parser_t *p, size_t want) {
  if (p->cap - p->len >= want)
    return 0;
  if (p->req > 0) {
    resp__compact(p);
    if (p->cap - p->len >= want)
      return 0;
  }
  if (want > SIZE_MAX / 4 - p->len)
    return resp__nomem(p), -1;
  size_t need = p->len + want;
  size_t ncap = p->cap ? p->cap : RESP__MIN_BUF;
  while (ncap < need)
    ncap *= 2;
  char *nb = realloc(p->buf, ncap);
  if (nb == NULL)
    return resp__nomem(p), -1;
  p->buf = nb;
  p->cap = ncap;
  return 0;
}

void resp_config_default(resp_config_t *cfg) {
  cfg->max_args = RESP_DEFAULT_MAX_ARGS;
  cfg->max_bulk = RESP_DEFAULT_MAX_BULK;
  cfg->max_inline = RESP_DEFAULT_MAX_INLINE;
  cfg->max_request = RESP_DEFAULT_MAX_REQUEST;
}

int resp_parser_init(resp_parser_t *p, const resp_config_t *cfg) {
  memset(p, 0, sizeof *p);
  resp_config_default(&p->cfg);
  if (cfg != NULL) {
    if (cfg->max_args)
      p->cfg.max_args = cfg->max_args;
    if (cfg->max_bulk)
      p->cfg.max_bulk = cfg->max_bulk;
    if (cfg->max_inline)
      p->cfg.max_inline = cfg->max_inline;
    if (cfg->max_request)
      p->cfg.max_request = cfg->max_request;
  }
  p->state = RESP__S_START;
  if (p->cfg.max_args > RESP_LIMIT_MAX_ARGS || p->cfg.max_bulk > RESP_LIMIT_MAX_BYTES ||
      p->cfg.max_inline > RESP_LIMIT_MAX_BYTES || p->cfg.max_request > RESP_LIMIT_MAX_BYTES) {
    resp__fail(p, RECD_EINVAL, "invalid parser limits");
    return RECD_EINVAL;
  }
  return 0;
}

void resp_parser_free(resp_parser_t *p) {
  free(p->buf);
  p->buf = NULL;
  p->len = p->cap = p->pos = p->req = p->scan = 0;
  resp__args_release(p);
  p->argc = 0;
  p->state = RESP__S_START;
}

void resp_parser_reset(resp_parser_t *p) {
  p->len = p->pos = p->req = p->scan = 0;
  p->argc = p->count = p->bulklen = 0;
  p->state = RESP__S_START;
  p->err = 0;
  p->errstr[0] = '\0';
}

int resp_parser_feed(resp_parser_t *p, const void *data, size_t len) {
  if (p->err)
    return p->err;
  if (len == 0)
    return 0;
  if (resp__room(p, len) != 0)
    return p->err;
  memcpy(p->buf + p->len, data, len);
  p->len += len;
  return 0;
}

int resp_parser_reserve(resp_parser_t *p, size_t want, char **buf, size_t *avail) {
  *buf = NULL;
  *avail = 0;
  if (p->err)
    return p->err;
  if (resp__room(p, want ? want : 1) != 0)
    return p->err;
  *buf = p->buf + p->len;
  *avail = p->cap - p->len;
  return 0;
}

void resp_parser_commit(resp_parser_t *p, size_t n) {
  /* A failed reserve handed out no space; n must then be 0. Clamping keeps
   * a caller bug from walking past the buffer. */
  if (p->err || n > p->cap - p->len)
    return;
  p->len += n;
}

size_t resp_parser_bytes_buffered(const resp_parser_t *p) {
  return p->len - p->req;
}

size_t resp_parser_mem(const resp_parser_t *p) {
  return p->cap + p->argcap * (2 * sizeof(size_t) + sizeof(const char *));
}

/* Reads a length line "<prefix><integer>\r\n" at pos (the prefix byte is
 * known to be there). On RESP__STEP_NEXT, *val holds the integer and *end
 * the offset after the LF. A line that cannot be a valid length - too long,
 * not a strict integer, CR without LF - fails with `msg`. */
static int resp__len_line(resp_parser_t *p, const char *msg, long long *val, size_t *end) {
  size_t start = p->pos + 1;
  size_t lim = p->len - start > RESP__NUM_MAX ? start + RESP__NUM_MAX + 1 : p->len;
  size_t i;
  /* Refuse a byte that cannot belong to a length as soon as it arrives,
   * rather than waiting for a CR that a confused client may never send. */
  for (i = start; i < lim && p->buf[i] != '\r'; i++)
    if ((p->buf[i] < '0' || p->buf[i] > '9') && !(p->buf[i] == '-' && i == start))
      return resp__fail(p, RECD_EFORMAT, "Protocol error: %s", msg);
  if (i == lim)
    return i - start > RESP__NUM_MAX ? resp__fail(p, RECD_EFORMAT, "Protocol error: %s", msg)
                                     : RESP__STEP_MORE;
  if (i + 1 == p->len)
    return RESP__STEP_MORE;
  if (p->buf[i + 1] != '\n' || resp__strtoll(p->buf + start, i - start, val) != 0)
    return resp__fail(p, RECD_EFORMAT, "Protocol error: %s", msg);
  *end = i + 2;
  return RESP__STEP_NEXT;
}

static int resp__count(resp_parser_t *p) {
  long long n;
  size_t end;
  int rc = resp__len_line(p, "invalid multibulk length", &n, &end);
  if (rc != RESP__STEP_NEXT)
    return rc;
  if (n == 0 || n == -1) {
    /* Empty and null multibulks carry no command; Redis skips them too. */
    p->pos = p->req = end;
    p->state = RESP__S_START;
    return RESP__STEP_NEXT;
  }
  if (n < 0 || (unsigned long long)n > p->cfg.max_args)
    return resp__fail(p, RECD_EFORMAT, "Protocol error: invalid multibulk length");
  /* The count is only a claim: reserve a bounded start, grow on arrival. */
  size_t want = (size_t)n < RESP__ARGV_START ? (size_t)n : RESP__ARGV_START;
  if (resp__args_reserve(p, want) != 0)
    return resp__nomem(p);
  p->count = (size_t)n;
  p->argc = 0;
  p->pos = end;
  p->state = RESP__S_BULKLEN;
  return RESP__STEP_NEXT;
}

static int resp__bulklen(resp_parser_t *p) {
  if (p->pos == p->len)
    return RESP__STEP_MORE;
  unsigned char c = (unsigned char)p->buf[p->pos];
  if (c != '$') {
    if (c >= 0x20 && c < 0x7f)
      return resp__fail(p, RECD_EFORMAT, "Protocol error: expected '$', got '%c'", c);
    return resp__fail(p, RECD_EFORMAT, "Protocol error: expected '$', got '\\x%02x'", c);
  }
  long long n;
  size_t end;
  int rc = resp__len_line(p, "invalid bulk length", &n, &end);
  if (rc != RESP__STEP_NEXT)
    return rc;
  if (n < 0 || (unsigned long long)n > p->cfg.max_bulk)
    return resp__fail(p, RECD_EFORMAT, "Protocol error: invalid bulk length");
  /* Every earlier bulk passed this test, so end - req is at most
   * max_request plus one length line: no overflow. */
  if (end - p->req + (size_t)n + 2 > p->cfg.max_request)
    return resp__fail(p, RECD_EFORMAT, "Protocol error: too big request");
  p->bulklen = (size_t)n;
  p->pos = end;
  p->state = RESP__S_BODY;
  return RESP__STEP_NEXT;
}

static int resp__body(resp_parser_t *p) {
  size_t avail = p->len - p->pos, n = p->bulklen;
  /* Check the terminator as soon as its bytes arrive. */
  if ((avail > n && p->buf[p->pos + n] != '\r') ||
      (avail > n + 1 && p->buf[p->pos + n + 1] != '\n'))
    return resp__fail(p, RECD_EFORMAT, "Protocol error: expected CRLF after bulk data");
  if (avail < n + 2)
    return RESP__STEP_MORE;
  if (resp__args_push(p, p->pos - p->req, n) != RESP__STEP_NEXT)
    return RESP__STEP_ERR;
  p->buf[p->pos + n] = '\0'; /* the CR, already checked: argv[i] is a C string */
  p->pos += n + 2;
  if (p->argc == p->count)
    return RESP__STEP_CMD;
  p->state = RESP__S_BULKLEN;
  return RESP__STEP_NEXT;
}

/* isspace() in the C locale, without depending on the process locale. */
static int resp__isspace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int resp__hexval(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static unsigned char resp__unescape(unsigned char c) {
  switch (c) {
  case 'n': return '\n';
  case 'r': return '\r';
  case 't': return '\t';
  case 'b': return '\b';
  case 'a': return '\a';
  default: return c;
  }
}

/* Inline request: one line, split into words with the quoting rules of
 * Redis's sdssplitargs(). The line is parsed only once it is complete, in
 * place: every output byte consumes at least one input byte, so the write
 * cursor w never passes the read cursor r, and the NUL after each word
 * lands on a byte already read (its separator, or the line terminator). */
static int resp__inline(resp_parser_t *p) {
  unsigned char *b = (unsigned char *)p->buf;
  const size_t max = p->cfg.max_inline;
  const unsigned char *nl = memchr(b + p->scan, '\n', p->len - p->scan);
  if (nl == NULL) {
    /* The line so far may still end in "\r" + "\n" to come, which would
     * not count: refuse only what can no longer fit. */
    size_t n = p->len - p->req;
    p->scan = p->len;
    if (n > max + 1 || (n == max + 1 && b[p->len - 1] != '\r'))
      return resp__fail(p, RECD_EFORMAT, "Protocol error: too big inline request");
    return RESP__STEP_MORE;
  }
  size_t lf = (size_t)(nl - b), e = lf;
  if (e > p->req && b[e - 1] == '\r')
    e--;
  if (e - p->req > max)
    return resp__fail(p, RECD_EFORMAT, "Protocol error: too big inline request");

  size_t r = p->req, w = p->req;
  p->argc = 0;
  for (;;) {
    while (r < e && resp__isspace(b[r]))
      r++;
    if (r == e)
      break;
    if (p->argc == p->cfg.max_args)
      return resp__fail(p, RECD_EFORMAT,
                        "Protocol error: too many arguments in inline request");
    size_t start = w;
    unsigned char q = 0; /* 0 outside quotes, else the open quote */
    for (;;) {
      if (q == 0) {
        if (r == e)
          break;
        unsigned char c = b[r];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
          break;
        if (c == '"' || c == '\'')
          q = c; /* a quote may open mid-word: foo"bar" is foobar */
        else
          b[w++] = c;
        r++;
      } else if (r == e) {
        goto unbalanced;
      } else if (q == '"') {
        unsigned char c = b[r];
        int hi, lo;
        if (c == '\\' && e - r > 3 && b[r + 1] == 'x' && (hi = resp__hexval(b[r + 2])) >= 0 &&
            (lo = resp__hexval(b[r + 3])) >= 0) {
          b[w++] = (unsigned char)(hi * 16 + lo);
          r += 4;
        } else if (c == '\\' && e - r > 1) {
          b[w++] = resp__unescape(b[r + 1]);
          r += 2;
        } else if (c == '"') {
          r++;
          if (r < e && !resp__isspace(b[r]))
            goto unbalanced; /* closing quote must end the word */
          break;
        } else {
          b[w++] = c;
          r++;
        }
      } else {
        unsigned char c = b[r];
        if (c == '\\' && e - r > 1 && b[r + 1] == '\'') {
          b[w++] = '\'';
          r += 2;
        } else if (c == '\'') {
          r++;
          if (r < e && !resp__isspace(b[r]))
            goto unbalanced;
          break;
        } else {
          b[w++] = c;
          r++;
        }
      }
    }
    /* The word ended at a blank (consume it, so that r > w below) or at e. */
    if (r < e)
      r++;
    if (resp__args_push(p, start - p->req, w - start) != RESP__STEP_NEXT)
      return RESP__STEP_ERR;
    b[w++] = '\0';
  }
  p->pos = lf + 1;
  if (p->argc == 0) {
    /* A blank line: skipped, like Redis (which uses it as a keepalive). */
    p->req = p->pos;
    p->state = RESP__S_START;
    return RESP__STEP_NEXT;
  }
  return RESP__STEP_CMD;

unbalanced:
  return resp__fail(p, RECD_EFORMAT, "Protocol error: unbalanced quotes in request");
}

resp_status_t resp_parser_next(resp_parser_t *p, resp_cmd_t *cmd) {
  if (p->err)
    return RESP_ERROR;
  for (;;) {
    int rc;
    switch (p->state) {
    case RESP__S_START:
      if (p->pos == p->len) {
        rc = RESP__STEP_MORE;
        break;
      }
      p->argc = 0;
      if (p->buf[p->pos] == '*') {
        p->state = RESP__S_COUNT;
      } else {
        p->state = RESP__S_INLINE;
        p->scan = p->pos;
      }
      continue;
    case RESP__S_COUNT: rc = resp__count(p); break;
    case RESP__S_BULKLEN: rc = resp__bulklen(p); break;
    case RESP__S_BODY: rc = resp__body(p); break;
    case RESP__S_INLINE: rc = resp__inline(p); break;
    default: rc = resp__fail(p, RECD_EINVAL, "corrupt parser state"); break;
    }
    switch (rc) {
    case RESP__STEP_NEXT:
      continue;
    case RESP__STEP_MORE:
      resp__trim(p);
      return RESP_NEED_MORE;
    case RESP__STEP_CMD: {
      const char *base = p->buf + p->req;
      for (size_t i = 0; i < p->argc; i++)
        p->argv[i] = base + p->argoff[i];
      cmd->argc = p->argc;
      cmd->argv = p->argv;
      cmd->argvlen = p->argvlen;
      cmd->nbytes = p->pos - p->req;
      p->req = p->pos;
      p->argc = 0;
      p->state = RESP__S_START;
      return RESP_OK;
    }
    default:
      return RESP_ERROR;
    }
  }
}
