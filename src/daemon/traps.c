/* traps.c - see traps.h. */
#include "traps.h"

const char *traps_degraded_name(traps_degraded_t c) {
  switch (c) {
  case TRAPS_DEG_TIMEOUT: return "timeout";
  case TRAPS_DEG_REDIS_DOWN: return "redis_down";
  case TRAPS_DEG_REDIS_ERROR: return "redis_error";
  case TRAPS_DEG_N: break;
  }
  return "unknown";
}

int traps_first(uint64_t *set, const char *id, size_t len) {
  /* FNV-1a, then a splitmix64 finaliser so that the slot bits are mixed */
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char)id[i]) * 0x100000001b3ull;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  if (h == 0)
    h = 1; /* 0 marks an empty slot */
  uint64_t *slot = &set[h % TRAPS_SLOTS];
  if (*slot == h)
    return 0;
  *slot = h;
  return 1;
}
