/* model_fuzz.c - libFuzzer target for the model-file loader.
 *
 * The input is a model file. model_load_buffer() must reject every
 * malformed input with a message and never crash; for an input it accepts,
 * every accessor must stay in bounds (ids, categories, factors, lookups),
 * which ASan checks as the loop below touches all of them. Most mutations
 * break the CRC32 and stop at the checksum, so the target also re-seals the
 * input's checksum (when the magic is intact) to reach the structural
 * checks behind it.
 *
 * Built by `cmake -DRECD_FUZZ=ON` (clang); run by scripts/fuzz.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "recd/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch(const model_t *m) {
  volatile float sink = 0;
  const uint32_t n = model_n_items(m), k = model_factors(m), st = model_stride(m);
  const float *Y = model_item_factors(m);
  for (uint32_t i = 0; i < n; i++) {
    size_t len;
    const char *id = model_item_id(m, i, &len);
    if (model_find_item(m, id, len) != (int64_t)i)
      abort(); /* ids are unique and found */
    sink += Y[(size_t)i * st + (k - 1)] + model_popularity(m)[i] + model_item_norms(m)[i];
    if (model_item_categories(m)[i] > model_n_categories(m))
      abort();
    if (model_item_groups(m)[i] > model_n_groups(m))
      abort();
  }
  for (uint32_t g = 1; g <= model_n_groups(m); g++) {
    size_t len;
    const char *name = model_group_name(m, g, &len);
    if (model_find_group(m, name, len) != g)
      abort();
  }
  for (uint32_t c = 1; c <= model_n_categories(m); c++) {
    size_t len;
    const char *name = model_category_name(m, c, &len);
    if (model_find_category(m, name, len) != c)
      abort();
  }
  sink += model_gram(m)[(size_t)k * k - 1];
  /* Version 3: what the daemon and recd-train --info print must be a name,
   * and a popularity fallback is one non-negative factor. */
  const model_meta_t *meta = model_meta(m);
  if (strcmp(model_serves_name(meta->serves), "unknown") == 0 ||
      strcmp(model_split_name(meta->eval_split), "unknown") == 0)
    abort();
  if (meta->serves != MODEL_SERVES_ALS) {
    if (k != 1)
      abort();
    for (uint32_t i = 0; i < n; i++)
      if (!(Y[(size_t)i * st] >= 0))
        abort();
  }
  (void)sink;
}

static void try_load(const uint8_t *data, size_t size) {
  model_t *m = NULL;
  char err[RECD_ERRLEN];
  if (model_load_buffer(&m, data, size, err) == 0) {
    touch(m);
    model_free(m);
  } else if (err[0] == '\0') {
    abort(); /* a rejection always says why */
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try_load(data, size);
  /* Re-seal: CRC32 of bytes 12.. stored little-endian at 8 (models/FORMAT.md). */
  if (size >= 16 && memcmp(data, "RECDMDL", 8) == 0) {
    uint8_t *copy = malloc(size);
    if (copy == NULL)
      return 0;
    memcpy(copy, data, size);
    uLong crc = crc32(0L, copy + 12, (uInt)(size - 12));
    for (int b = 0; b < 4; b++)
      copy[8 + b] = (uint8_t)(crc >> (8 * b));
    try_load(copy, size);
    free(copy);
  }
  return 0;
}
