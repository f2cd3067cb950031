/* csv.h - strict streaming reader for RFC 4180 CSV files.
 *
 * One record at a time; fields may be quoted ("a, ""b""" is `a, "b"`) and
 * quoted fields may not span lines (the data sets recd reads never need it,
 * and refusing it keeps line numbers meaningful in error messages). Lines
 * end in LF or CRLF. A record longer than CSV_MAX_LINE bytes is an error,
 * so a file without newlines cannot exhaust memory. Empty lines are skipped
 * (but counted in line numbers), a UTF-8 BOM at the start of the input is
 * skipped, and a CR outside quotes that does not end the line is an error.
 */
#ifndef RECD_CSV_H
#define RECD_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recd/err.h"

#define CSV_MAX_LINE (1u << 20)
#define CSV_MAX_FIELDS 64

typedef struct csv_reader csv_reader_t;

/* One record: fields point into the reader's buffer and stay valid until the
 * next csv_next() call. Fields are NUL-terminated; a field may contain a NUL
 * byte from the file, so use len. */
typedef struct csv_record {
  size_t n_fields;
  const char *field[CSV_MAX_FIELDS];
  size_t len[CSV_MAX_FIELDS];
  uint64_t line; /* 1-based line number of this record */
} csv_record_t;

/* Opens `path` ("-" is stdin). Returns 0 or RECD_EIO/RECD_ENOMEM. */
int csv_open(csv_reader_t **out, const char *path, char *errbuf);
/* Reads from an already open stream, which the reader does not close.
 * `name` is used in messages. */
int csv_open_stream(csv_reader_t **out, FILE *fp, const char *name, char *errbuf);
void csv_close(csv_reader_t *r);

/* Reads the next record. Returns 1 with *rec filled, 0 at end of file, or a
 * RECD_E* code with "file:line: reason" in errbuf. After a RECD_EFORMAT for
 * a bad record the reader is positioned at the next line, so a caller may
 * count the bad line and continue; after RECD_EIO or RECD_ENOMEM it may not. */
int csv_next(csv_reader_t *r, csv_record_t *rec, char *errbuf);

/* Name given at open time, for messages. */
const char *csv_name(const csv_reader_t *r);

/* Strict number parsing for CSV fields and command-line values: the whole
 * field must be the number (no spaces, no trailing bytes), finite, in range.
 * Return 0 or RECD_EFORMAT / RECD_ERANGE. */
int csv_parse_float(const char *s, size_t len, float *out);
int csv_parse_u64(const char *s, size_t len, uint64_t *out);
int csv_parse_i64(const char *s, size_t len, int64_t *out);

#endif
