/* keys.c - see keys.h. */
#include "recd/keys.h"

#include <string.h>

size_t recd_key(char *buf, const char *prefix, size_t prefix_len, const char *kind,
                const char *id, size_t idlen) {
  const size_t kl = strlen(kind);
  memcpy(buf, prefix, prefix_len);
  memcpy(buf + prefix_len, kind, kl);
  if (idlen > 0)
    memcpy(buf + prefix_len + kl, id, idlen);
  return prefix_len + kl + idlen;
}
