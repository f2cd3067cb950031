/* factors_fuzz.c - libFuzzer target for the JSON-lines item-factor reader
 * (recd/factors_json.h).
 *
 * The input is a factors file. The whole input also goes through
 * factors_json_parse_line() as one line. A file that is accepted must hold
 * what the reader promises (n >= 1 rows of k in 1..1024 finite features,
 * distinct ids of 1..256 bytes, rising line numbers), and writing it back
 * with factors_json_write_row() and reading that again must give the same
 * ids and the same float bits; a refused input must say why.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/factors_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_row(const uint8_t *data, size_t size) {
  static factors_json_row_t row;
  char err[RECD_ERRLEN] = "";
  int rc = factors_json_parse_line((const char *)data, size, &row, err);
  if (rc < 0 && err[0] == '\0')
    abort();
  if (rc == 1) {
    if (row.id_len < 1 || row.id_len > FACTORS_JSON_MAX_ID || row.k < 1 ||
        row.k > FACTORS_JSON_MAX_K)
      abort();
    for (uint32_t j = 0; j < row.k; j++)
      if (!isfinite(row.features[j]))
        abort();
  }
}

static void check_file(const uint8_t *data, size_t size) {
  FILE *fp = fmemopen((void *)data, size, "rb");
  if (fp == NULL)
    return;
  factors_json_t f;
  char err[RECD_ERRLEN] = "";
  int rc = factors_json_read(&f, fp, "fuzz", err);
  fclose(fp);
  if (rc != 0) {
    if (err[0] == '\0' || f.Y != NULL || f.ids != NULL)
      abort();
    return;
  }
  if (f.n < 1 || f.k < 1 || f.k > FACTORS_JSON_MAX_K || idmap_size(f.ids) != f.n)
    abort();
  for (uint32_t i = 0; i < f.n; i++) {
    if (f.line[i] < 1 || f.line[i] > f.lines || (i > 0 && f.line[i] <= f.line[i - 1]))
      abort();
    for (uint32_t j = 0; j < f.k; j++)
      if (!isfinite(f.Y[(size_t)i * f.k + j]))
        abort();
  }
  /* Write it back and read that: the same ids, the same bits. */
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (out == NULL)
    abort();
  for (uint32_t i = 0; i < f.n; i++) {
    size_t idlen;
    const char *id = idmap_key(f.ids, i, &idlen);
    if (idlen < 1 || idlen > FACTORS_JSON_MAX_ID ||
        factors_json_write_row(out, id, idlen, f.Y + (size_t)i * f.k, f.k) != 0)
      abort();
  }
  if (fclose(out) != 0)
    abort();
  FILE *in = fmemopen(text, len, "rb");
  factors_json_t g;
  if (in == NULL || factors_json_read(&g, in, "again", err) != 0)
    abort();
  fclose(in);
  if (g.n != f.n || g.k != f.k ||
      memcmp(g.Y, f.Y, (size_t)f.n * f.k * sizeof *f.Y) != 0)
    abort();
  for (uint32_t i = 0; i < f.n; i++) {
    size_t la, lb;
    const char *a = idmap_key(f.ids, i, &la), *b = idmap_key(g.ids, i, &lb);
    if (la != lb || memcmp(a, b, la) != 0)
      abort();
  }
  factors_json_free(&g);
  factors_json_free(&f);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_row(data, size);
  check_file(data, size);
  return 0;
}
