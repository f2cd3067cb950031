/* itemset.c - see itemset.h. */
#include "itemset.h"

#include <stdlib.h>
#include <string.h>

#include "recd/err.h"

/* Models cached at once: the variants' models, plus one being replaced. */
#define ITEMSET_CACHE 16

struct itemset {
  char *bytes;     /* the ids back to back */
  size_t *off;     /* id j is bytes[off[j] .. off[j + 1]) */
  size_t n;
  itemset_bits_t *cache[ITEMSET_CACHE];
  size_t next;     /* round-robin eviction */
};

itemset_t *itemset_new(void) {
  return calloc(1, sizeof(itemset_t));
}

void itemset_bits_release(itemset_bits_t *b) {
  if (b != NULL && --b->refs == 0)
    free(b);
}

static void itemset__drop_cache(itemset_t *s) {
  for (size_t i = 0; i < ITEMSET_CACHE; i++) {
    itemset_bits_release(s->cache[i]);
    s->cache[i] = NULL;
  }
}

void itemset_free(itemset_t *s) {
  if (s == NULL)
    return;
  itemset__drop_cache(s);
  free(s->bytes);
  free(s->off);
  free(s);
}

int itemset_replace(itemset_t *s, const char *const *ids, const size_t *lens, size_t n) {
  size_t total = 0;
  for (size_t j = 0; j < n; j++)
    total += lens[j];
  char *bytes = malloc(total ? total : 1);
  size_t *off = malloc((n + 1) * sizeof *off);
  if (bytes == NULL || off == NULL) {
    free(bytes);
    free(off);
    return RECD_ENOMEM;
  }
  off[0] = 0;
  for (size_t j = 0; j < n; j++) {
    memcpy(bytes + off[j], ids[j], lens[j]);
    off[j + 1] = off[j] + lens[j];
  }
  free(s->bytes);
  free(s->off);
  s->bytes = bytes;
  s->off = off;
  s->n = n;
  itemset__drop_cache(s); /* requests keep the bitmaps they hold */
  return 0;
}

size_t itemset_size(const itemset_t *s) {
  return s->n;
}

static itemset_bits_t *itemset__build(const itemset_t *s, const model_t *m) {
  const uint32_t n_items = model_n_items(m);
  const size_t words = ((size_t)n_items + 63) / 64;
  itemset_bits_t *b = calloc(1, sizeof *b + words * sizeof(uint64_t));
  if (b == NULL)
    return NULL;
  b->for_model = m;
  b->checksum = model_checksum(m);
  for (size_t j = 0; j < s->n; j++) {
    const int64_t i = model_find_item(m, s->bytes + s->off[j], s->off[j + 1] - s->off[j]);
    if (i < 0)
      continue;
    uint64_t *w = &b->words[(uint64_t)i / 64];
    const uint64_t bit = (uint64_t)1 << ((uint64_t)i % 64);
    if (!(*w & bit))
      b->n_set++;
    *w |= bit;
  }
  return b;
}

itemset_bits_t *itemset_hold(itemset_t *s, const model_t *m) {
  if (s->n == 0)
    return NULL;
  itemset_bits_t *b = NULL;
  for (size_t i = 0; i < ITEMSET_CACHE && b == NULL; i++)
    if (s->cache[i] != NULL && s->cache[i]->for_model == m &&
        s->cache[i]->checksum == model_checksum(m))
      b = s->cache[i];
  if (b == NULL) {
    /* A model at the address of a freed one has a checksum of its own
     * unless it is the same file, whose bitmap is then the same too. */
    if ((b = itemset__build(s, m)) == NULL)
      return NULL;
    b->refs = 1; /* the cache's */
    itemset_bits_release(s->cache[s->next]);
    s->cache[s->next] = b;
    s->next = (s->next + 1) % ITEMSET_CACHE;
  }
  if (b->n_set == 0)
    return NULL;
  b->refs++;
  return b;
}
