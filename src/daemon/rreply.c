/* rreply.c - see rreply.h.
 *
 * A top-level reply is an rreply__root_t: its redisReply first (the
 * pointer hiredis holds and hands to callbacks), then the arena of
 * everything below it: the rest of the first block, then blocks chained
 * as it fills. A nested object finds its arena through the reader's task
 * stack: the root task's obj is the root (hiredis sets it before it reads
 * any element). hiredis frees only top-level replies (freeObject), so
 * freeing is the chain of blocks and the root.
 */
#include "rreply.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Everything handed out is aligned like malloc's. */
#define RREPLY__ALIGN ((size_t)_Alignof(max_align_t))
/* Bytes a first block reserves per declared element (a redisReply, its
 * slot in the element array and a short string), and at most: the count
 * comes from the wire, and a hostile or broken server may declare 2^31
 * elements it never sends (the element array itself is still allocated
 * in full, as hiredis does). Later blocks double, from this minimum. */
#define RREPLY__PER_ELEMENT (sizeof(redisReply) + sizeof(redisReply *) + 32)
#define RREPLY__FIRST_MAX ((size_t)1 << 20)
#define RREPLY__BLOCK_MIN ((size_t)4096)

typedef struct rreply__block {
  struct rreply__block *next;
  size_t cap; /* bytes after this header */
} rreply__block_t;

typedef struct rreply__root {
  redisReply r;          /* first: the root's redisReply is the root */
  rreply__block_t *more; /* blocks after the first, newest first */
  unsigned char *at;     /* the current block's free space ... */
  size_t left;           /* ... and how much of it there is */
} rreply__root_t;

static size_t rreply__round(size_t n) {
  return (n + RREPLY__ALIGN - 1) & ~(RREPLY__ALIGN - 1);
}

/* The root with `cap` bytes of arena right after it, or NULL. */
static rreply__root_t *rreply__root_new(int type, size_t cap) {
  const size_t head = rreply__round(sizeof(rreply__root_t));
  cap = rreply__round(cap);
  if (cap > SIZE_MAX - head)
    return NULL;
  rreply__root_t *root = malloc(head + cap);
  if (root == NULL)
    return NULL;
  memset(&root->r, 0, sizeof root->r);
  root->r.type = type;
  root->more = NULL;
  root->at = (unsigned char *)root + head;
  root->left = cap;
  return root;
}

/* n bytes of root's arena (aligned, uninitialised), or NULL. */
static void *rreply__alloc(rreply__root_t *root, size_t n) {
  n = rreply__round(n);
  if (n == 0 || n > SIZE_MAX / 2)
    return NULL;
  if (n > root->left) {
    const size_t prev = root->more != NULL ? root->more->cap : 0;
    size_t cap = prev * 2 > RREPLY__BLOCK_MIN ? prev * 2 : RREPLY__BLOCK_MIN;
    if (cap < n)
      cap = n;
    const size_t head = rreply__round(sizeof(rreply__block_t));
    rreply__block_t *b = malloc(head + cap);
    if (b == NULL)
      return NULL;
    b->cap = cap;
    b->next = root->more;
    root->more = b;
    root->at = (unsigned char *)b + head;
    root->left = cap;
  }
  void *p = root->at;
  root->at += n;
  root->left -= n;
  return p;
}

static rreply__root_t *rreply__root_of(const redisReadTask *t) {
  while (t->parent != NULL)
    t = t->parent;
  return t->obj;
}

/* A zeroed redisReply of `type` for task t plus `extra` bytes right
 * after it (*extra_at), linked into its parent; the root when t has no
 * parent, with `arena` bytes of room for what will come under it. */
static redisReply *rreply__object(const redisReadTask *t, int type, size_t extra,
                                  size_t arena, void **extra_at) {
  if (t->parent == NULL) {
    if (extra > SIZE_MAX - arena)
      return NULL;
    rreply__root_t *root = rreply__root_new(type, extra + arena);
    if (root == NULL)
      return NULL;
    /* the first block was sized for it: this takes no new block */
    *extra_at = extra > 0 ? rreply__alloc(root, extra) : NULL;
    return &root->r;
  }
  rreply__root_t *root = rreply__root_of(t);
  const size_t head = rreply__round(sizeof(redisReply));
  if (extra > SIZE_MAX - head)
    return NULL;
  unsigned char *p = rreply__alloc(root, head + extra);
  if (p == NULL)
    return NULL;
  redisReply *r = (redisReply *)(void *)p;
  memset(r, 0, sizeof *r);
  r->type = type;
  *extra_at = extra > 0 ? p + head : NULL;
  redisReply *parent = t->parent->obj;
  if (parent != NULL && parent->type == REDIS_REPLY_ARRAY && t->idx >= 0 &&
      (size_t)t->idx < parent->elements)
    parent->element[t->idx] = r;
  return r;
}

static void *rreply__string(const redisReadTask *t, char *str, size_t len) {
  void *buf;
  if (len == SIZE_MAX)
    return NULL;
  /* the task's type: a bulk string, a status or an error */
  redisReply *r = rreply__object(t, t->type, len + 1, 0, &buf);
  if (r == NULL)
    return NULL; /* out of memory: hiredis frees the root (if any) */
  memcpy(buf, str, len);
  ((char *)buf)[len] = '\0';
  r->str = buf;
  r->len = len;
  return r;
}

static void *rreply__array(const redisReadTask *t, int elements) {
  const size_t n = elements > 0 ? (size_t)elements : 0;
  if (n > RREPLY_MAX_ELEMENTS) /* rreply.h */
    return NULL;
  size_t arena = n > RREPLY__FIRST_MAX / RREPLY__PER_ELEMENT ? RREPLY__FIRST_MAX
                                                             : n * RREPLY__PER_ELEMENT;
  void *slots;
  redisReply *r = rreply__object(t, REDIS_REPLY_ARRAY, n * sizeof(redisReply *), arena, &slots);
  if (r == NULL)
    return NULL;
  if (n > 0)
    memset(slots, 0, n * sizeof(redisReply *));
  r->element = slots;
  r->elements = n;
  return r;
}

static void *rreply__integer(const redisReadTask *t, long long value) {
  void *unused;
  redisReply *r = rreply__object(t, REDIS_REPLY_INTEGER, 0, 0, &unused);
  if (r != NULL)
    r->integer = value;
  return r;
}

static void *rreply__nil(const redisReadTask *t) {
  void *unused;
  return rreply__object(t, REDIS_REPLY_NIL, 0, 0, &unused);
}

/* Only ever a root (rreply.h). */
static void rreply__free(void *p) {
  rreply__root_t *root = p;
  if (root == NULL)
    return;
  rreply__block_t *b = root->more;
  while (b != NULL) {
    rreply__block_t *next = b->next;
    free(b);
    b = next;
  }
  free(root);
}

redisReplyObjectFunctions rreply_functions = {
    .createString = rreply__string,
    .createArray = rreply__array,
    .createInteger = rreply__integer,
    .createNil = rreply__nil,
    .freeObject = rreply__free,
};

void rreply_use(redisContext *c) {
  if (c != NULL && c->reader != NULL)
    c->reader->fn = &rreply_functions;
}
