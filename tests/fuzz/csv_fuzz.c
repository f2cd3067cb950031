/* csv_fuzz.c - libFuzzer target for the CSV reader and the interaction
 * loader built on it.
 *
 * The input is a CSV file. Every record is read (bad records are errors
 * that must carry a message and leave the reader usable), every field is
 * checked against the reported length, and the number parsers run on every
 * field. The same bytes then go through dataset_read_csv() with
 * --skip-bad-lines semantics and dataset_finalize(), whose CSR views must
 * be consistent.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recd/csv.h"
#include "recd/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_records(const uint8_t *data, size_t size) {
  FILE *fp = fmemopen((void *)data, size, "rb");
  if (fp == NULL)
    return;
  csv_reader_t *r;
  char err[RECD_ERRLEN];
  if (csv_open_stream(&r, fp, "fuzz", err) == 0) {
    csv_record_t rec;
    int rc;
    for (int guard = 0; guard < 100000 && (rc = csv_next(r, &rec, err)) != 0; guard++) {
      if (rc < 0) {
        if (err[0] == '\0')
          abort();
        if (rc != RECD_EFORMAT)
          break; /* I/O or memory errors are sticky */
        continue;
      }
      for (size_t f = 0; f < rec.n_fields; f++) {
        if (rec.field[f][rec.len[f]] != '\0')
          abort(); /* fields are NUL-terminated at their length */
        float x;
        uint64_t u;
        int64_t i;
        (void)csv_parse_float(rec.field[f], rec.len[f], &x);
        (void)csv_parse_u64(rec.field[f], rec.len[f], &u);
        (void)csv_parse_i64(rec.field[f], rec.len[f], &i);
      }
    }
    csv_close(r);
  }
  fclose(fp);
}

static void load_dataset(const uint8_t *data, size_t size) {
  char path[] = "/tmp/recd-csv-fuzz-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    return;
  if (write(fd, data, size) != (ssize_t)size) {
    close(fd);
    unlink(path);
    return;
  }
  close(fd);
  dataset_t ds;
  char err[RECD_ERRLEN];
  uint64_t skipped = 0;
  if (dataset_init(&ds) == 0) {
    if (dataset_read_csv(&ds, path, 1, &skipped, NULL, err) == 0 && dataset_finalize(&ds) == 0) {
      const csr_t *u = &ds.by_user, *t = &ds.by_item;
      if (u->ptr[u->n_rows] != t->ptr[t->n_rows])
        abort(); /* both views hold every pair */
      for (uint32_t r = 0; r < u->n_rows; r++)
        for (uint64_t j = u->ptr[r]; j < u->ptr[r + 1]; j++)
          if (u->idx[j] >= u->n_cols || !(u->val[j] > 0) ||
              (j > u->ptr[r] && u->idx[j - 1] >= u->idx[j]))
            abort();
    }
    dataset_free(&ds);
  }
  unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  read_records(data, size);
  load_dataset(data, size);
  return 0;
}
