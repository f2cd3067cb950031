/* idmap.c - open-addressing hash map from byte-string ids to dense indices.
 *
 * Keys live in one growing arena (NUL-terminated, so idmap_key() can hand
 * out C strings); the table stores, per slot, the key's index + 1 (0 marks
 * an empty slot) and its full 64-bit hash so that probing rarely touches the
 * arena. The table doubles at 50% load. The hash is FNV-1a over a per-map
 * random seed mixed through a final avalanche: ids come from storefronts and
 * the network, and a fixed public hash would let a crafted id set degrade
 * every lookup to a linear scan.
 */
#include "recd/idmap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recd/err.h"
#include "recd/rng.h"

struct idmap {
  uint64_t seed;
  size_t n;          /* keys */
  size_t mask;       /* table slots - 1 (power of two) */
  uint32_t *slot;    /* index + 1, 0 = empty */
  uint64_t *hash;    /* full hash per slot */
  size_t *off;       /* arena offset of key i */
  uint32_t *len;     /* length of key i */
  size_t off_cap;
  char *arena;
  size_t arena_len, arena_cap;
};

static uint64_t idmap__hash(uint64_t seed, const char *key, size_t len) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)key[i];
    h *= 0x100000001b3ULL;
  }
  /* FNV's low bits mix poorly; the table indexes by low bits. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

idmap_t *idmap_new(size_t hint) {
  idmap_t *m = calloc(1, sizeof *m);
  if (m == NULL)
    return NULL;
  size_t slots = 16;
  while (slots < hint * 2)
    slots <<= 1;
  /* The seed only needs to be unpredictable to outsiders, not secure. */
  uint64_t s = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)m;
  rng_t r;
  rng_seed(&r, s);
  m->seed = rng_next(&r);
  m->mask = slots - 1;
  m->slot = calloc(slots, sizeof *m->slot);
  m->hash = calloc(slots, sizeof *m->hash);
  if (m->slot == NULL || m->hash == NULL) {
    idmap_free(m);
    return NULL;
  }
  return m;
}

void idmap_free(idmap_t *m) {
  if (m == NULL)
    return;
  free(m->slot);
  free(m->hash);
  free(m->off);
  free(m->len);
  free(m->arena);
  free(m);
}

static int idmap__equal(const idmap_t *m, uint32_t idx, const char *key, size_t len) {
  return m->len[idx] == len && memcmp(m->arena + m->off[idx], key, len) == 0;
}

int64_t idmap_get(const idmap_t *m, const char *key, size_t len) {
  uint64_t h = idmap__hash(m->seed, key, len);
  for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
    uint32_t s = m->slot[i];
    if (s == 0)
      return -1;
    if (m->hash[i] == h && idmap__equal(m, s - 1, key, len))
      return (int64_t)(s - 1);
  }
}

static int idmap__grow_table(idmap_t *m) {
  size_t slots = (m->mask + 1) * 2;
  uint32_t *slot = calloc(slots, sizeof *slot);
  uint64_t *hash = calloc(slots, sizeof *hash);
  if (slot == NULL || hash == NULL) {
    free(slot);
    free(hash);
    return RECD_ENOMEM;
  }
  for (size_t i = 0; i <= m->mask; i++) {
    if (m->slot[i] == 0)
      continue;
    size_t j = m->hash[i] & (slots - 1);
    while (slot[j] != 0)
      j = (j + 1) & (slots - 1);
    slot[j] = m->slot[i];
    hash[j] = m->hash[i];
  }
  free(m->slot);
  free(m->hash);
  m->slot = slot;
  m->hash = hash;
  m->mask = slots - 1;
  return 0;
}

int idmap_intern(idmap_t *m, const char *key, size_t len, uint32_t *idx) {
  uint64_t h = idmap__hash(m->seed, key, len);
  size_t i;
  for (i = h & m->mask; m->slot[i] != 0; i = (i + 1) & m->mask) {
    if (m->hash[i] == h && idmap__equal(m, m->slot[i] - 1, key, len)) {
      *idx = m->slot[i] - 1;
      return 0;
    }
  }
  if (m->n >= UINT32_MAX - 1 || len > UINT32_MAX)
    return RECD_ENOMEM;
  /* Reserve everything before publishing the key, so a failed allocation
   * leaves the map exactly as it was. */
  if (m->n == m->off_cap) {
    size_t cap = m->off_cap ? m->off_cap * 2 : 64;
    size_t *off = realloc(m->off, cap * sizeof *off);
    if (off == NULL)
      return RECD_ENOMEM;
    m->off = off;
    uint32_t *lens = realloc(m->len, cap * sizeof *lens);
    if (lens == NULL)
      return RECD_ENOMEM;
    m->len = lens;
    m->off_cap = cap;
  }
  if (m->arena_cap - m->arena_len < len + 1) {
    size_t cap = m->arena_cap ? m->arena_cap : 1024;
    while (cap - m->arena_len < len + 1)
      cap *= 2;
    char *a = realloc(m->arena, cap);
    if (a == NULL)
      return RECD_ENOMEM;
    m->arena = a;
    m->arena_cap = cap;
  }
  if ((m->n + 1) * 2 > m->mask + 1) {
    if (idmap__grow_table(m) != 0)
      return RECD_ENOMEM;
    for (i = h & m->mask; m->slot[i] != 0; i = (i + 1) & m->mask)
      ;
  }
  memcpy(m->arena + m->arena_len, key, len);
  m->arena[m->arena_len + len] = '\0';
  m->off[m->n] = m->arena_len;
  m->len[m->n] = (uint32_t)len;
  m->arena_len += len + 1;
  m->slot[i] = (uint32_t)(m->n + 1);
  m->hash[i] = h;
  *idx = (uint32_t)m->n++;
  return 1;
}

size_t idmap_size(const idmap_t *m) {
  return m->n;
}

const char *idmap_key(const idmap_t *m, uint32_t idx, size_t *len) {
  if (len != NULL)
    *len = m->len[idx];
  return m->arena + m->off[idx];
}
