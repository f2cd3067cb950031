/* idmap.h - string id <-> dense index map.
 *
 * Interning assigns indices 0, 1, 2, ... in insertion order; the map keeps
 * its own copy of every key in an arena so callers may free their buffers.
 * Open addressing with linear probing; the hash is seeded per map so that
 * ids chosen by outsiders cannot be crafted to collide (see idmap.c).
 */
#ifndef RECD_IDMAP_H
#define RECD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct idmap idmap_t;

/* New empty map sized for about `hint` keys; NULL when out of memory. */
idmap_t *idmap_new(size_t hint);
void idmap_free(idmap_t *map);

/* Index of `key`, or -1 when absent. */
int64_t idmap_get(const idmap_t *map, const char *key, size_t len);

/* Looks `key` up and adds it when absent. *idx receives its index.
 * Returns 1 when the key was added, 0 when it was already there, or
 * RECD_ENOMEM (the map is unchanged). */
int idmap_intern(idmap_t *map, const char *key, size_t len, uint32_t *idx);

/* Number of keys. */
size_t idmap_size(const idmap_t *map);

/* Key of index idx < idmap_size() (NUL-terminated copy owned by the map). */
const char *idmap_key(const idmap_t *map, uint32_t idx, size_t *len);

#endif
