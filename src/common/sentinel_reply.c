/* sentinel_reply.c - see sentinel_reply.h. */
#include "sentinel_reply.h"

#include <stdio.h>
#include <string.h>

int sentinel_reply_addr(const redisReply *r, char *host, size_t hsize, int *port) {
  if (r->type == REDIS_REPLY_NIL)
    return 0;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
      r->element[0]->len == 0 || r->element[0]->len >= hsize || r->element[1]->len > 5 ||
      memchr(r->element[0]->str, '\0', r->element[0]->len) != NULL)
    return -1;
  int p = 0;
  for (size_t i = 0; i < r->element[1]->len; i++) {
    const char c = r->element[1]->str[i];
    if (c < '0' || c > '9')
      return -1;
    p = p * 10 + (c - '0');
  }
  if (p < 1 || p > 65535)
    return -1;
  memcpy(host, r->element[0]->str, r->element[0]->len);
  host[r->element[0]->len] = '\0';
  *port = p;
  return 1;
}

const char *sentinel_reply_role(const redisReply *r, char *buf, size_t size) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
      r->element[0]->type != REDIS_REPLY_STRING)
    return NULL;
  snprintf(buf, size, "%.*s", (int)(r->element[0]->len > 32 ? 32 : r->element[0]->len),
           r->element[0]->str);
  return buf;
}
