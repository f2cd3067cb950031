/* rreply_fuzz.c - libFuzzer target for the reply arena (src/daemon/rreply.c).
 *
 * Input: byte 0 seeds the chunk sizes, the rest is what a Redis server
 * sends back. The bytes go to two hiredis readers: one with hiredis's own
 * object functions, fed at once, and one with rreply_functions, fed in
 * random chunks. Both must return the same replies (type, integer, string
 * bytes, elements, recursively), every string NUL-terminated, and fail at
 * the same reply; each reply is freed by its own reader's freeObject, and
 * the readers are freed mid-reply when the input ends there (ASan and
 * LeakSanitizer check those frees).
 *
 * Declared sizes: hiredis allocates the element array of an array reply
 * from its declared count before any element arrives (both readers do), so
 * an input declaring more than FUZZ_MAX_COUNT elements is skipped; that
 * trust is hiredis's and Redis's, not the arena's (rreply caps its own
 * estimate of the room a reply needs).
 *
 * Build: cmake -DRECD_FUZZ=ON with clang (scripts/fuzz.sh), then
 *   ./build-fuzz/rreply_fuzz tests/fuzz/corpus/rreply
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "rreply.h"
#include "fuzz.h"

#define FUZZ_MAX_COUNT 100000

static void same_tree(const redisReply *a, const redisReply *b) {
  CHECK(a != NULL && b != NULL);
  CHECK(a->type == b->type);
  switch (a->type) {
  case REDIS_REPLY_INTEGER:
    CHECK(a->integer == b->integer);
    break;
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_ERROR:
    CHECK(a->len == b->len && memcmp(a->str, b->str, a->len) == 0);
    CHECK(b->str[b->len] == '\0');
    break;
  case REDIS_REPLY_ARRAY:
    CHECK(a->elements == b->elements);
    for (size_t i = 0; i < a->elements; i++)
      same_tree(a->element[i], b->element[i]);
    break;
  default:
    break;
  }
}

/* Whether some '*' or '$' declares a count or length above the cap (a
 * crude scan: any digits after either byte). */
static int declares_huge(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '*' && p[i] != '$')
      continue;
    size_t j = i + 1;
    if (j < n && p[j] == '-')
      j++;
    unsigned long long v = 0;
    while (j < n && p[j] >= '0' && p[j] <= '9' && v <= FUZZ_MAX_COUNT)
      v = v * 10 + (unsigned)(p[j++] - '0');
    if (v > FUZZ_MAX_COUNT)
      return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536 || declares_huge(data + 1, size - 1))
    return 0;
  uint32_t seed = data[0] * 2654435761u + 1;
  const char *wire = (const char *)data + 1;
  const size_t len = size - 1;
  redisReader *ref = redisReaderCreate(), *got = redisReaderCreateWithFunctions(&rreply_functions);
  CHECK(ref != NULL && got != NULL);
  CHECK(redisReaderFeed(ref, wire, len) == REDIS_OK);
  size_t fed = 0;
  for (;;) {
    void *r = NULL;
    if (redisReaderGetReply(got, &r) != REDIS_OK) {
      /* the reference fails at the same reply, at the latest once it has
       * everything (it was fed it all) */
      void *e = NULL;
      int rc;
      while ((rc = redisReaderGetReply(ref, &e)) == REDIS_OK && e != NULL)
        freeReplyObject(e);
      CHECK(rc != REDIS_OK);
      break;
    }
    if (r == NULL) {
      if (fed == len) {
        /* nothing more for the reference either; both may hold half a
         * reply, freed with the readers below */
        void *e = NULL;
        CHECK(redisReaderGetReply(ref, &e) == REDIS_OK && e == NULL);
        break;
      }
      seed = seed * 1103515245u + 12345u;
      size_t m = 1 + (seed >> 16) % 64;
      if (m > len - fed)
        m = len - fed;
      CHECK(redisReaderFeed(got, wire + fed, m) == REDIS_OK);
      fed += m;
      continue;
    }
    void *e = NULL;
    CHECK(redisReaderGetReply(ref, &e) == REDIS_OK && e != NULL);
    same_tree(e, r);
    freeReplyObject(e);
    rreply_functions.freeObject(r);
  }
  redisReaderFree(ref);
  redisReaderFree(got);
  return 0;
}
