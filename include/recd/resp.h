/* resp.h - incremental RESP2 request parser (the server side of the Redis
 * protocol).
 *
 * The parser turns the bytes a client sends into commands (argc, argv). It
 * does no I/O and has no global state: the daemon hands it bytes, with
 * resp_parser_feed() or by reading straight into its buffer with
 * resp_parser_reserve()/resp_parser_commit(), and then calls
 * resp_parser_next() until it stops returning RESP_OK. Every call returns an
 * explicit tri-state: a command, "need more bytes", or a protocol error, so
 * "incomplete" and "broken" are never confused.
 *
 * Two request forms are accepted, chosen like Redis by the first byte:
 *  - multibulk:  *<argc>\r\n then argc times $<len>\r\n<len bytes>\r\n
 *  - inline:     words separated by blanks, ended by \n or \r\n, with
 *                Redis-style quoting: "..." understands \xHH, \n, \r, \t,
 *                \b, \a and \<any byte>; '...' understands \' only. A closing
 *                quote must be followed by a blank or the end of the line.
 * Empty inline lines (only blanks) and the empty multibulks *0 and *-1 are
 * skipped without producing a command, as Redis does.
 *
 * Differences from Redis, all deliberate and all stricter:
 *  - The CRLF after a bulk body and after a length line is checked (Redis
 *    skips two bytes unread); a missing one is a protocol error.
 *  - A negative multibulk count other than -1 is an error (Redis skips it).
 *  - Every limit gives the same verdict however the bytes are fragmented:
 *    Redis only measures an inline line that is still unterminated, we
 *    measure the line either way.
 *  - Inline requests are binary safe: a NUL byte is an ordinary byte (Redis
 *    parses the line as a C string and silently truncates at a NUL).
 *  - A byte that cannot belong to a length ("*1x") fails at once, without
 *    waiting for the CR that a confused client may never send.
 *  - A non-printable byte in "expected '$', got 'c'" is shown as \xHH so that
 *    the message is safe to log and to send back.
 *
 * The messages in errstr (the daemon sends "-ERR " + errstr):
 *   Protocol error: invalid multibulk length      bad count or > max_args
 *   Protocol error: expected '$', got 'c'
 *   Protocol error: invalid bulk length           bad length or > max_bulk
 *   Protocol error: expected CRLF after bulk data
 *   Protocol error: too big request               multibulk > max_request
 *   Protocol error: too big inline request        line > max_inline
 *   Protocol error: too many arguments in inline request
 *   Protocol error: unbalanced quotes in request  (any inline quoting error)
 *   out of memory                                 (err is RECD_ENOMEM)
 *
 * Memory: the parser owns one growable input buffer. Arguments are never
 * copied out of it: argv points into the buffer (multibulk arguments in
 * place, inline arguments unescaped in place, which only ever shrinks
 * them), and each argument is NUL-terminated where its CR or separator was,
 * so argv[i] is also a C string when it holds no NUL byte. No length a
 * client declares is allocated up front: the buffer grows geometrically
 * with the bytes actually received, and the argv array starts at
 * min(argc, 1024) entries and doubles as arguments arrive, so a header
 * claiming 2^31 arguments or a 4 GB bulk costs nothing (it is refused by
 * the limits anyway). Consumed input is trimmed lazily: when the parser
 * runs out of complete requests and at least 1 KiB has been consumed (or
 * everything has), or when a feed needs the room; never after every
 * command. A buffer that a big request grew past 256 KiB (or an argv past
 * 1024 entries) is released when the client goes idle.
 *
 * Errors: a protocol violation or an allocation failure puts the parser in
 * a sticky error state: err and errstr are set and every later call
 * returns RESP_ERROR (or the error code). The daemon answers
 * "-ERR <errstr>" and closes the connection; bytes after the violation are
 * never interpreted. resp_parser_reset() clears the state.
 */
#ifndef RECD_RESP_H
#define RECD_RESP_H

#include <stddef.h>

#include "recd/err.h"

/* Defaults used when a resp_config_t field is 0. Redis allows 512 MB bulks
 * and 1M+ arguments; recd's requests are ids and options, so the defaults
 * are far tighter and a misbehaving client costs little. */
#define RESP_DEFAULT_MAX_ARGS 10000u               /* RANK with 10k items */
#define RESP_DEFAULT_MAX_BULK ((size_t)8 << 20)    /* 8 MiB per argument */
#define RESP_DEFAULT_MAX_INLINE ((size_t)64 << 10) /* 64 KiB, as Redis */
#define RESP_DEFAULT_MAX_REQUEST ((size_t)16 << 20) /* 16 MiB per request */

/* Largest values resp_parser_init() accepts, so that no size arithmetic in
 * the parser can overflow and no configuration can ask for absurd memory. */
#define RESP_LIMIT_MAX_ARGS ((size_t)1 << 24)
#define RESP_LIMIT_MAX_BYTES ((size_t)1 << 30)

/* Size of resp_parser_t.errstr. */
#define RESP_ERRSTR_LEN 128

/* Result of resp_parser_next(). */
typedef enum resp_status {
  RESP_OK = 0,        /* *cmd holds one complete command */
  RESP_NEED_MORE = 1, /* no complete command buffered; feed more bytes */
  RESP_ERROR = -1     /* sticky error; see err and errstr */
} resp_status_t;

/* Limits, checked against every declared length before anything is
 * allocated. A field left 0 takes the RESP_DEFAULT_* value. */
typedef struct resp_config {
  size_t max_args;    /* most arguments in one request (both forms) */
  size_t max_bulk;    /* longest multibulk argument, in bytes */
  size_t max_inline;  /* longest inline line, without its \n or \r\n */
  size_t max_request; /* most wire bytes of one multibulk request, from the
                         '*' to the last CRLF (inline requests are bounded
                         by max_inline instead) */
} resp_config_t;

/* One parsed command. The arrays and the bytes they point to belong to the
 * parser and stay valid until the next call on the parser (any call:
 * next, feed, reserve, commit, reset or free). Copy what must outlive it. */
typedef struct resp_cmd {
  size_t argc;           /* >= 1 */
  const char **argv;     /* argv[i] points to argvlen[i] bytes followed by
                            a NUL; the bytes may contain NULs themselves */
  const size_t *argvlen;
  size_t nbytes;         /* wire bytes of this request, for statistics */
} resp_cmd_t;

/* Parser state. Embed it in the connection struct; the fields below "private"
 * belong to resp.c. */
typedef struct resp_parser {
  int err;                       /* 0, RECD_EFORMAT (protocol error) or
                                    RECD_ENOMEM; sticky until reset */
  char errstr[RESP_ERRSTR_LEN];  /* "Protocol error: ..." or "out of memory"
                                    when err != 0, else "" */
  /* private */
  resp_config_t cfg;   /* limits in force (defaults filled in) */
  char *buf;           /* input bytes buf[0, len), capacity cap */
  size_t len, cap;
  size_t req;          /* start of the request being parsed; everything
                          before it is consumed and may be trimmed */
  size_t pos;          /* parse cursor, req <= pos <= len */
  size_t scan;         /* inline: bytes before this have no \n */
  int state;           /* RESP__S_* in resp.c */
  size_t count;        /* multibulk: declared argument count */
  size_t bulklen;      /* multibulk: length of the bulk being read */
  size_t argc, argcap; /* arguments found so far, array capacity */
  size_t *argoff;      /* argument offsets relative to req (survive the
                          buffer moving) */
  size_t *argvlen;     /* argument lengths */
  const char **argv;   /* filled from argoff when a command completes */
} resp_parser_t;

/* Fills *cfg with the default limits. */
void resp_config_default(resp_config_t *cfg);

/* Initialises a parser with the limits in *cfg (NULL: all defaults; a zero
 * field: that default). Allocates nothing. Returns 0, or RECD_EINVAL when a
 * limit exceeds RESP_LIMIT_MAX_ARGS / RESP_LIMIT_MAX_BYTES (the parser is
 * then unusable but safe to pass to resp_parser_free). */
int resp_parser_init(resp_parser_t *p, const resp_config_t *cfg);

/* Releases the parser's memory. The struct itself belongs to the caller and
 * may be initialised again; calling free twice is harmless. */
void resp_parser_free(resp_parser_t *p);

/* Drops all buffered input and any error, keeping the limits and, for reuse,
 * the allocated memory. */
void resp_parser_reset(resp_parser_t *p);

/* Appends len bytes (copied; the caller keeps its buffer) to the input.
 * Returns 0; RECD_ENOMEM when the buffer cannot grow (the parser then enters
 * the sticky error state); or the sticky error code if the parser already is
 * in error (the bytes are ignored). Invalidates the last command's argv. */
int resp_parser_feed(resp_parser_t *p, const void *data, size_t len);

/* Zero-copy input, for a libuv alloc_cb/read_cb pair: reserve makes at least
 * `want` bytes of free space at the end of the input buffer and returns it
 * in *buf and *avail (avail >= want). Read into it, then call
 * resp_parser_commit(p, n) with the n <= avail bytes actually written; until
 * then no other parser call may be made (they may move the buffer).
 * Returns 0, RECD_ENOMEM (sticky, as in feed) or the sticky error code; on
 * failure *buf is NULL and *avail 0. */
int resp_parser_reserve(resp_parser_t *p, size_t want, char **buf, size_t *avail);
void resp_parser_commit(resp_parser_t *p, size_t n);

/* Parses the next command from the buffered input.
 *  RESP_OK:        *cmd holds it (valid until the next parser call).
 *  RESP_NEED_MORE: every complete command has been returned; *cmd is
 *                  untouched. Feed more bytes and call again.
 *  RESP_ERROR:     p->err and p->errstr say why; every later call returns
 *                  RESP_ERROR again. Commands returned before the error were
 *                  well formed and may be executed.
 * Commands come out in the order they were sent, so a pipeline is answered
 * by calling next() until it stops returning RESP_OK. */
resp_status_t resp_parser_next(resp_parser_t *p, resp_cmd_t *cmd);

/* Bytes held for requests not yet returned by next() (a partial request
 * plus any complete ones not parsed yet). The daemon compares it with its
 * query-buffer limit after draining next(). */
size_t resp_parser_bytes_buffered(const resp_parser_t *p);

/* Bytes of heap the parser holds (buffer and argv arrays), for INFO and for
 * tests that a declared length was not allocated. */
size_t resp_parser_mem(const resp_parser_t *p);

#endif
