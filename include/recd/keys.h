/* keys.h - the Redis key layout (DESIGN.md "Redis data layout"), spelled
 * once for the daemon's Redis client and the trainer.
 *
 * Every key is <prefix><kind><id>, the prefix configurable (`key-prefix`,
 * default "recd:"); ids are opaque bytes of 1 to RECD_ID_MAX. The kinds are
 * string literals so that they also fit hiredis format strings:
 *   redisAppendCommand(c, "ZINCRBY %s" RECD_KEY_HIST "%b ...", prefix, ...)
 */
#ifndef RECD_KEYS_H
#define RECD_KEYS_H

#include <stddef.h>

#define RECD_PREFIX_DEFAULT "recd:"
#define RECD_PREFIX_MAX 128
#define RECD_ID_MAX 256

#define RECD_KEY_HIST "hist:"              /* ZSET item -> weight, per customer */
#define RECD_KEY_PREF "pref:"              /* HASH cat:<c> -> [-1, 1], personalize */
#define RECD_KEY_ITEM "item:"              /* HASH category, group, per item (training) */
#define RECD_KEY_UNAVAILABLE "unavailable" /* SET of item ids, global */
#define RECD_KEY_IMP "imp:"                /* HASH item -> "<unix ms>|<variant>|<placement>|<shown>":
                                              the latest impression of each item
                                              shown to a customer, and how often it
                                              was shown since its last outcome */
#define RECD_KEY_HIDDEN "hidden:"          /* SET of items the customer marked
                                              "not interested" (FEEDBACK TYPE hide) */
#define RECD_KEY_TIME "time:"              /* ZSET item -> unix seconds of the customer's
                                              last interaction with it (FEEDBACK,
                                              --import, the storefront's ZADD GT) */
#define RECD_KEY_PROMOTED "promoted"       /* SET of item ids, global: PROMOTE slots */
#define RECD_KEY_EXP_COUNTERS "exp:counters" /* HASH "<variant>|<placement>|<counter>"
                                                -> number: experiment.h */

/* Fields of RECD_KEY_PREF and RECD_KEY_ITEM hashes. */
#define RECD_PREF_CATEGORY_PREFIX "cat:"
#define RECD_PREF_PERSONALIZE "personalize"
#define RECD_ITEM_CATEGORY "category"
#define RECD_ITEM_GROUP "group"       /* product family, copied into the model */

/* Longest key recd builds. */
#define RECD_KEY_MAX (RECD_PREFIX_MAX + 16 + RECD_ID_MAX)

/* Writes <prefix><kind><id> into buf (RECD_KEY_MAX bytes at least, not
 * NUL-terminated) and returns its length. prefix_len <= RECD_PREFIX_MAX,
 * kind one of the RECD_KEY_* literals, idlen <= RECD_ID_MAX. */
size_t recd_key(char *buf, const char *prefix, size_t prefix_len, const char *kind,
                const char *id, size_t idlen);

#endif
