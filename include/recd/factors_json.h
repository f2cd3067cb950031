/* factors_json.h - item factors as JSON lines, the exchange format with
 * trainers outside recd (Spark MLlib's ALSModel.itemFactors.write.json).
 *
 * One object per line:
 *
 *   {"id": "<item>", "features": [f1, f2, ..., fk]}
 *
 * A small, strict reader for exactly this shape (no JSON library):
 *  - the object has the keys "id" and "features", in any order, each once;
 *    any other key is an error (a typo such as "feature" must not pass
 *    silently, and Spark writes no other);
 *  - "id" is a string (JSON escapes, \uXXXX with surrogate pairs decoded to
 *    UTF-8; other bytes >= 0x80 are taken as they are, so any recd id,
 *    which is an opaque byte string, round-trips) or an integer (Spark's
 *    ids; its decimal text is the id); 1..FACTORS_JSON_MAX_ID bytes;
 *  - "features" is an array of 1..FACTORS_JSON_MAX_K JSON numbers, each
 *    rounded once to the nearest float (strtof) and finite as a float;
 *  - JSON whitespace (space, tab, CR) around tokens; a line that is blank
 *    is skipped (but counted); a UTF-8 byte-order mark at the start of the
 *    file is skipped; a line is at most FACTORS_JSON_MAX_LINE bytes;
 *  - in a file, every line has as many features as the first, and no id
 *    appears twice.
 * Every error names the line (file:line) and what was expected there.
 *
 * The writer prints each float with "%.9g", which strtof reads back to the
 * same bits (nine significant digits identify a binary32), and escapes
 * '"', '\\' and control bytes; so write + read is exact.
 *
 * Numbers are parsed with strtof: the process must run in the "C" locale
 * for LC_NUMERIC (recd never calls setlocale).
 */
#ifndef RECD_FACTORS_JSON_H
#define RECD_FACTORS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recd/err.h"
#include "recd/idmap.h"

#define FACTORS_JSON_MAX_ID 256            /* bytes of an id (the model's limit) */
#define FACTORS_JSON_MAX_K 1024            /* features per line (the model's limit) */
#define FACTORS_JSON_MAX_LINE (1u << 20)   /* bytes of a line, without its LF */
#define FACTORS_JSON_MAX_ROWS 0xfffffffeu  /* lines with an object (the model's limit) */

/* One parsed line. */
typedef struct factors_json_row {
  char id[FACTORS_JSON_MAX_ID];
  size_t id_len;
  int id_is_number;                        /* the id was a JSON integer */
  uint32_t k;                              /* features read */
  float features[FACTORS_JSON_MAX_K];
} factors_json_row_t;

/* Parses one line of len bytes (without its LF; a trailing CR is
 * whitespace). Returns 1 with *row filled, 0 for a blank line, or
 * RECD_EFORMAT with "column N: expected ..." in errbuf. */
int factors_json_parse_line(const char *s, size_t len, factors_json_row_t *row, char *errbuf);

/* A whole file: row i (in file order) has id key i of `ids`, features
 * Y[i*k .. i*k+k), and was on line line[i] (1-based). */
typedef struct factors_json {
  uint32_t n, k;
  float *Y;
  idmap_t *ids;
  uint8_t *id_is_number;  /* n flags */
  uint64_t *line;         /* n line numbers */
  uint64_t lines;         /* lines read, blank ones included */
} factors_json_t;

/* Reads every line of fp (`name` in messages). 0 with *out filled (n >= 1),
 * or RECD_EFORMAT ("name:line: ..."; an empty file is one too), RECD_EIO
 * or RECD_ENOMEM with errbuf set and *out zeroed. */
int factors_json_read(factors_json_t *out, FILE *fp, const char *name, char *errbuf);
/* The same from a path ("-" is stdin). */
int factors_json_read_file(factors_json_t *out, const char *path, char *errbuf);
void factors_json_free(factors_json_t *f);

/* Writes one line {"id": "...", "features": [...]} with its LF. 0 or
 * RECD_EIO (the stream's error flag is set; check again after fclose). */
int factors_json_write_row(FILE *fp, const char *id, size_t id_len, const float *features,
                           uint32_t k);

#endif
