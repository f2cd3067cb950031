/* csv.c - strict streaming RFC 4180 reader (see csv.h).
 *
 * The reader keeps one byte buffer. Bytes are read from the stream in large
 * chunks (fread into the free tail of the buffer) and lines are found with
 * memchr, so the cost per byte is a scan and, once per record, an in-place
 * parse. The buffer starts small and grows geometrically, but never beyond
 * CSV_MAX_LINE plus a terminator and one byte of slack: a file without
 * newlines is refused instead of exhausting memory, and the reader then
 * discards input up to the next newline so that the caller may carry on.
 *
 * Records are parsed in place: unescaping a quoted field ("" -> ") only ever
 * shrinks it, so each field is written over its own bytes and terminated with
 * NUL where its separator or line terminator was. The one byte of slack at the
 * end of the buffer gives the last line of a file without a final newline
 * somewhere to put its NUL.
 *
 * Policy decisions (the RFC leaves these open, or our data sets need them):
 *  - Empty lines (including a lone CR) are skipped but still counted, so the
 *    line numbers in messages are those an editor shows.
 *  - A UTF-8 byte-order mark at the very start of the file is skipped; Excel
 *    writes one and it would otherwise become part of the first header name.
 *  - A CR is only accepted as part of a CRLF terminator or inside quotes; a
 *    bare CR in an unquoted field is an error (old Mac line endings would
 *    otherwise silently become one huge record).
 *  - Quoted fields may not span lines (see csv.h).
 *
 * Out of memory: the allocation failure is reported as RECD_ENOMEM, like
 * every other error, and the reader stays in that error state.
 */
#include "recd/csv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* First buffer size: large enough for thousands of typical lines per fread. */
#define CSV__INIT_CAP ((size_t)64 * 1024)
/* Largest buffer: a line of CSV_MAX_LINE bytes, its CRLF, and a NUL. */
#define CSV__MAX_CAP ((size_t)CSV_MAX_LINE + 3)

struct csv_reader {
  FILE *fp;         /* input stream */
  int own_fp;       /* 1 when csv_open opened fp and csv_close must close it */
  char *name;       /* file name for messages (owned copy) */
  char *buf;        /* cap bytes; unconsumed input is buf[pos, end) */
  size_t cap, pos, end;
  int eof;          /* the stream returned end of file; no more fills */
  int bom_checked;  /* the first bytes of the file were checked for a BOM */
  int err;          /* sticky RECD_EIO / RECD_ENOMEM, 0 while healthy */
  uint64_t line;    /* physical lines consumed so far */
};

static int csv__init(csv_reader_t **out, FILE *fp, int own_fp, const char *name,
                     char *errbuf) {
  csv_reader_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "%s: out of memory", name);
  r->name = strdup(name);
  r->buf = malloc(CSV__INIT_CAP);
  if (r->name == NULL || r->buf == NULL) {
    free(r->name);
    free(r->buf);
    free(r);
    return recd_errf(errbuf, RECD_ENOMEM, "%s: out of memory", name);
  }
  r->fp = fp;
  r->own_fp = own_fp;
  r->cap = CSV__INIT_CAP;
  *out = r;
  return 0;
}

/* Opens `path` for reading; "-" means stdin, which csv_close leaves open.
 * On success *out owns the stream and must be released with csv_close().
 * Returns 0, RECD_EIO (message names the file and the OS reason) or
 * RECD_ENOMEM. */
int csv_open(csv_reader_t **out, const char *path, char *errbuf) {
  *out = NULL;
  if (strcmp(path, "-") == 0)
    return csv__init(out, stdin, 0, "<stdin>", errbuf);
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return recd_errf(errbuf, RECD_EIO, "cannot open %s: %s", path, strerror(errno));
  int rc = csv__init(out, fp, 1, path, errbuf);
  if (rc != 0)
    fclose(fp);
  return rc;
}

/* Wraps an open stream; the caller keeps ownership of fp and must keep it
 * open until csv_close(). Reading starts at the stream's current position
 * (a BOM is still skipped there). Returns 0 or RECD_ENOMEM. */
int csv_open_stream(csv_reader_t **out, FILE *fp, const char *name, char *errbuf) {
  *out = NULL;
  return csv__init(out, fp, 0, name != NULL ? name : "<stream>", errbuf);
}

/* Frees the reader and closes the file if csv_open() opened it. NULL is a
 * no-op. Read errors at close are not reported: the reader only reads. */
void csv_close(csv_reader_t *r) {
  if (r == NULL)
    return;
  if (r->own_fp)
    fclose(r->fp);
  free(r->name);
  free(r->buf);
  free(r);
}

/* The name given at open time ("<stdin>" for "-"); owned by the reader. */
const char *csv_name(const csv_reader_t *r) {
  return r->name;
}

/* Moves unconsumed bytes to the front, grows the buffer when the pending
 * partial line fills more than half of it, and reads one chunk. Returns 1
 * when bytes were added, 0 at end of file, or RECD_EIO / RECD_ENOMEM. The
 * caller guarantees end - pos < CSV__MAX_CAP - 1, so there is always room. */
static int csv__fill(csv_reader_t *r, char *errbuf) {
  if (r->eof)
    return 0;
  if (r->pos > 0) {
    memmove(r->buf, r->buf + r->pos, r->end - r->pos);
    r->end -= r->pos;
    r->pos = 0;
  }
  /* Growing at half full (not only when full) keeps each fread large, so a
   * long line costs a few big reads rather than many small ones. */
  if (r->end > r->cap / 2 && r->cap < CSV__MAX_CAP) {
    size_t cap = r->cap * 2 < CSV__MAX_CAP ? r->cap * 2 : CSV__MAX_CAP;
    char *b = realloc(r->buf, cap);
    if (b == NULL) {
      r->err = RECD_ENOMEM;
      return recd_errf(errbuf, RECD_ENOMEM, "%s:%llu: out of memory", r->name,
                       (unsigned long long)r->line + 1);
    }
    r->buf = b;
    r->cap = cap;
  }
  /* One byte of slack stays free for the NUL after an unterminated last line. */
  size_t room = r->cap - 1 - r->end;
  size_t n = fread(r->buf + r->end, 1, room, r->fp);
  r->end += n;
  if (n < room) {
    if (ferror(r->fp)) {
      r->err = RECD_EIO;
      return recd_errf(errbuf, RECD_EIO, "%s:%llu: read error: %s", r->name,
                       (unsigned long long)r->line + 1, strerror(errno));
    }
    r->eof = 1;
  }
  return n > 0;
}

/* Discards input up to and including the next newline (or to end of file),
 * after an over-long line has been reported. 0 or RECD_EIO/RECD_ENOMEM. */
static int csv__skip_line(csv_reader_t *r, char *errbuf) {
  for (;;) {
    char *nl = memchr(r->buf + r->pos, '\n', r->end - r->pos);
    if (nl != NULL) {
      r->pos = (size_t)(nl - r->buf) + 1;
      return 0;
    }
    r->pos = r->end;
    int rc = csv__fill(r, errbuf);
    if (rc <= 0)
      return rc;
  }
}

/* Finds the next physical line. Returns 1 with [*s, *e) its content (without
 * LF and without a final CR), 0 at end of file, RECD_EFORMAT for an over-long
 * line (already skipped), or RECD_EIO/RECD_ENOMEM. r->line is advanced. */
static int csv__get_line(csv_reader_t *r, char **s, char **e, char *errbuf) {
  if (!r->bom_checked) {
    /* fread returns short counts only at end of file or on error, but loop
     * anyway so a BOM split across reads is still recognised. */
    while (r->end - r->pos < 3) {
      int rc = csv__fill(r, errbuf);
      if (rc < 0)
        return rc;
      if (rc == 0)
        break;
    }
    if (r->end - r->pos >= 3 && memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0)
      r->pos += 3;
    r->bom_checked = 1;
  }
  size_t scanned = 0; /* bytes after pos already known to hold no LF */
  size_t len;         /* line length without the LF */
  int have_lf;
  for (;;) {
    char *nl = memchr(r->buf + r->pos + scanned, '\n', r->end - r->pos - scanned);
    if (nl != NULL) {
      len = (size_t)(nl - (r->buf + r->pos));
      have_lf = 1;
      break;
    }
    scanned = r->end - r->pos;
    /* CSV_MAX_LINE bytes plus a CR still fit, so only one more byte proves
     * the line too long, whatever follows. */
    if (scanned >= (size_t)CSV_MAX_LINE + 2) {
      r->line++;
      uint64_t bad = r->line;
      int rc = csv__skip_line(r, errbuf);
      if (rc < 0)
        return rc;
      return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: line longer than %u bytes",
                       r->name, (unsigned long long)bad, (unsigned)CSV_MAX_LINE);
    }
    int rc = csv__fill(r, errbuf);
    if (rc < 0)
      return rc;
    if (rc == 0) {
      if (r->end == r->pos)
        return 0;
      len = r->end - r->pos; /* last line without a newline */
      have_lf = 0;
      break;
    }
  }
  r->line++;
  *s = r->buf + r->pos;
  r->pos += len + (size_t)have_lf;
  if (len > 0 && (*s)[len - 1] == '\r')
    len--;
  *e = *s + len;
  if (len > CSV_MAX_LINE)
    return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: line longer than %u bytes", r->name,
                     (unsigned long long)r->line, (unsigned)CSV_MAX_LINE);
  return 1;
}

/* Splits [s, e) into rec's fields in place; e must be writable (it receives
 * the last field's NUL). Returns 0 or RECD_EFORMAT with the reason. */
static int csv__parse(csv_reader_t *r, char *s, char *e, csv_record_t *rec, char *errbuf) {
  char *p = s, *w = s;
  size_t nf = 0;
  for (;;) {
    if (nf == CSV_MAX_FIELDS)
      return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: more than %d fields", r->name,
                       (unsigned long long)r->line, CSV_MAX_FIELDS);
    char *start = w;
    if (p < e && *p == '"') {
      p++;
      for (;;) {
        if (p == e)
          return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: field %zu: unterminated quote",
                           r->name, (unsigned long long)r->line, nf + 1);
        if (*p == '"') {
          if (p + 1 < e && p[1] == '"') {
            *w++ = '"';
            p += 2;
            continue;
          }
          p++;
          break;
        }
        *w++ = *p++;
      }
      if (p < e && *p != ',')
        return recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: field %zu: text after closing quote",
                         r->name, (unsigned long long)r->line, nf + 1);
    } else {
      for (; p < e && *p != ','; *w++ = *p++) {
        if (*p == '"')
          return recd_errf(errbuf, RECD_EFORMAT,
                           "%s:%llu: field %zu: quote inside unquoted field", r->name,
                           (unsigned long long)r->line, nf + 1);
        if (*p == '\r')
          return recd_errf(errbuf, RECD_EFORMAT,
                           "%s:%llu: field %zu: carriage return inside unquoted field",
                           r->name, (unsigned long long)r->line, nf + 1);
      }
    }
    rec->field[nf] = start;
    rec->len[nf] = (size_t)(w - start);
    nf++;
    if (p == e) {
      *w = '\0';
      break;
    }
    /* *p is the separator; w <= p, so the NUL never overwrites unread input. */
    p++;
    *w++ = '\0';
  }
  rec->n_fields = nf;
  rec->line = r->line;
  return 0;
}

/* Reads the next non-empty record into *rec, whose fields point into the
 * reader's buffer until the next call. Returns 1, 0 at end of file, or an
 * error with "file:line: reason" in errbuf: RECD_EFORMAT leaves the reader
 * on the next line (the bad line is consumed), RECD_EIO and RECD_ENOMEM are
 * final and returned again by every later call. */
int csv_next(csv_reader_t *r, csv_record_t *rec, char *errbuf) {
  if (r->err != 0)
    return recd_errf(errbuf, r->err, "%s: reader stopped after an earlier %s", r->name,
                     r->err == RECD_EIO ? "read error" : "allocation failure");
  for (;;) {
    char *s = NULL, *e = NULL; /* set whenever rc == 1; GCC -O2 cannot see it */
    int rc = csv__get_line(r, &s, &e, errbuf);
    if (rc <= 0)
      return rc;
    if (s == e)
      continue;
    rc = csv__parse(r, s, e, rec, errbuf);
    return rc < 0 ? rc : 1;
  }
}

/* Copies a field of at most 127 bytes into a NUL-terminated buffer, after
 * checking that every byte is one of `allowed`: strtof/strtoll accept
 * leading spaces, hex, "nan" and "inf", which a strict parser must not. */
static int csv__number_text(const char *s, size_t len, const char *allowed, char *out) {
  if (len == 0 || len > 127)
    return RECD_EFORMAT;
  for (size_t i = 0; i < len; i++)
    if (s[i] == '\0' || strchr(allowed, s[i]) == NULL)
      return RECD_EFORMAT;
  memcpy(out, s, len);
  out[len] = '\0';
  return 0;
}

/* Parses a decimal float: [+-] digits [. digits] [e [+-] digits], at least
 * one digit in the mantissa. Returns 0, RECD_EFORMAT for anything else, or
 * RECD_ERANGE when the value overflows float. Underflow is not an error: a
 * tiny value rounds to the nearest float (possibly 0), which callers that
 * need a positive weight reject themselves. */
int csv_parse_float(const char *s, size_t len, float *out) {
  char tmp[128];
  if (csv__number_text(s, len, "0123456789+-.eE", tmp) != 0)
    return RECD_EFORMAT;
  /* The allowed characters still admit "1e", "+-1" or "."; strtof parsing
   * the whole text is the grammar check, and it needs a digit to start. */
  const char *m = tmp + (tmp[0] == '+' || tmp[0] == '-');
  if (!(m[0] >= '0' && m[0] <= '9') && !(m[0] == '.' && m[1] >= '0' && m[1] <= '9'))
    return RECD_EFORMAT;
  char *end;
  float v = strtof(tmp, &end);
  if (end != tmp + len)
    return RECD_EFORMAT;
  if (isinf(v) || isnan(v))
    return RECD_ERANGE;
  *out = v;
  return 0;
}

/* Parses decimal digits only (no sign, no spaces) into a uint64_t.
 * Returns 0, RECD_EFORMAT or RECD_ERANGE (above UINT64_MAX). */
int csv_parse_u64(const char *s, size_t len, uint64_t *out) {
  if (len == 0)
    return RECD_EFORMAT;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return RECD_EFORMAT;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) {
      /* Keep scanning so "99999999999999999999x" is a format error, not a
       * range error: the field is not a number at all. */
      for (size_t j = i + 1; j < len; j++)
        if (s[j] < '0' || s[j] > '9')
          return RECD_EFORMAT;
      return RECD_ERANGE;
    }
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* Parses [+-] digits into an int64_t. Returns 0, RECD_EFORMAT or
 * RECD_ERANGE (outside [INT64_MIN, INT64_MAX]). */
int csv_parse_i64(const char *s, size_t len, int64_t *out) {
  int neg = len > 0 && s[0] == '-';
  size_t skip = len > 0 && (s[0] == '-' || s[0] == '+');
  uint64_t mag;
  int rc = csv_parse_u64(s + skip, len - skip, &mag);
  if (rc != 0)
    return rc;
  /* |INT64_MIN| = INT64_MAX + 1 is representable only when negative. */
  if (mag > (uint64_t)INT64_MAX + (uint64_t)neg)
    return RECD_ERANGE;
  if (neg)
    *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
  else
    *out = (int64_t)mag;
  return 0;
}
