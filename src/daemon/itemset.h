/* itemset.h - a global set of item ids read from Redis (the promoted
 * items), as a bitmap over the items of whichever model a request uses.
 *
 * The set is refreshed in the background (rclient_on_set) and every
 * variant serves its own model, whose item indices differ: the bitmap of a
 * model is built on first use after a refresh or a reload and cached (one
 * entry per model in use), so a request costs a lookup, never a rebuild
 * per request. A request holds its bitmap (itemset_hold) until it ends,
 * since the batch that reads it runs on the thread pool; a refresh never
 * changes a bitmap in use. Loop thread only.
 */
#ifndef RECD_DAEMON_ITEMSET_H
#define RECD_DAEMON_ITEMSET_H

#include <stddef.h>
#include <stdint.h>

#include "recd/model.h"

typedef struct itemset itemset_t;

typedef struct itemset_bits {
  unsigned refs;
  const model_t *for_model; /* with its checksum: the cache key */
  uint32_t checksum;
  size_t n_set;             /* items of the model in the set */
  uint64_t words[];
} itemset_bits_t;

itemset_t *itemset_new(void);
void itemset_free(itemset_t *s);
/* Replaces the ids (as read from Redis). 0 or RECD_ENOMEM (the previous
 * ids stay). */
int itemset_replace(itemset_t *s, const char *const *ids, const size_t *lens, size_t n);
/* Ids currently in the set (whether any model knows them or not). */
size_t itemset_size(const itemset_t *s);
/* The set over model m's items, held until itemset_bits_release; NULL
 * when no item of m is in it (or memory ran out: then nothing is
 * promoted for that request). */
itemset_bits_t *itemset_hold(itemset_t *s, const model_t *m);
void itemset_bits_release(itemset_bits_t *b);

#endif
