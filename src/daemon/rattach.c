/* rattach.c - see rattach.h. */
#include "rattach.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libuv.h>

/* ---- the fixed adapter hooks ------------------------------------------ */

/* On an error status run the handlers of the events that were asked for:
 * hiredis's own read/write/getsockopt then find the error and tear the
 * context down through its usual path. */
static void rattach__poll_cb(uv_poll_t *h, int status, int events) {
  redisLibuvEvents *p = h->data;
  int ev = status < 0 ? p->events : events;
  /* On POLLERR libuv has stopped the handle: forget what was armed, so that
   * the hooks hiredis calls from here (a read can still find data before
   * the error) arm it again and the error shows up again. */
  if (status < 0)
    p->events = 0;
  if (p->context != NULL && (ev & UV_READABLE))
    redisAsyncHandleRead(p->context);
  /* p outlives a free in the read handler: the adapter's cleanup only
   * uv_close()s the handle and clears p->context; the memory goes in the
   * close callback. */
  if (p->context != NULL && (ev & UV_WRITABLE))
    redisAsyncHandleWrite(p->context);
}

/* Arms exactly events. hiredis asks for what is armed already after every
 * read and write; a restart would cost an epoll_ctl DEL and ADD. */
static void rattach__set(redisLibuvEvents *p, int events) {
  if (events == p->events)
    return;
  p->events = events;
  if (events)
    uv_poll_start(&p->handle, events, rattach__poll_cb);
  else
    uv_poll_stop(&p->handle);
}

static void rattach__add_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  rattach__set(p, p->events | UV_READABLE);
}

static void rattach__del_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  rattach__set(p, p->events & ~UV_READABLE);
}

static void rattach__add_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  rattach__set(p, p->events | UV_WRITABLE);
}

static void rattach__del_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  rattach__set(p, p->events & ~UV_WRITABLE);
}

int rattach_libuv(redisAsyncContext *ac, uv_loop_t *loop) {
  if (redisLibuvAttach(ac, loop) != REDIS_OK) {
    /* The adapter installs its hooks before allocating its state and
     * leaves them behind on failure; with ev.data NULL its cleanup hook
     * would dereference NULL inside redisAsyncFree, so clear them. */
    memset(&ac->ev, 0, sizeof ac->ev);
    return -1;
  }
  ac->ev.addRead = rattach__add_read;
  ac->ev.delRead = rattach__del_read;
  ac->ev.addWrite = rattach__add_write;
  ac->ev.delWrite = rattach__del_write;
  return 0;
}

/* ---- write batching ---------------------------------------------------- */

/* One batched context (its ac->ev.data), between rattach_libuv_batched()
 * and hiredis's cleanup hook. */
struct rattach__conn {
  redisLibuvEvents *p;          /* the adapter's state */
  void (*cleanup)(void *);      /* the adapter's cleanup hook */
  redisAsyncContext *ac;
  rattach_batch_t *b;           /* NULL once b is closed */
  rattach__conn_t *prev, *next; /* in b->conns */
  rattach__conn_t *next_dirty;  /* in b->dirty, while dirty */
  int dirty;
};

static void rattach__flush(rattach_batch_t *b);

static void rattach__check_cb(uv_check_t *h) {
  rattach__flush(h->data);
}

static void rattach__prepare_cb(uv_prepare_t *h) {
  rattach__flush(h->data);
}

/* Whether a command on e may wait for the flush: only on a connected
 * context that is not going away, and not from inside e's own write (that
 * is hiredis asking for the rest of a partial write: the write event). */
static int rattach__can_defer(const rattach__conn_t *e) {
  const int flags = e->ac->c.flags;
  return e->b != NULL && e->b->writing != e && (flags & REDIS_CONNECTED) &&
         !(flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

static void rattach__mark(rattach_batch_t *b, rattach__conn_t *e) {
  if (e->dirty)
    return;
  if (b->dirty == NULL) {
    uv_check_start(&b->check, rattach__check_cb);
    uv_prepare_start(&b->prepare, rattach__prepare_cb);
  }
  e->dirty = 1;
  e->next_dirty = b->dirty;
  b->dirty = e;
}

static void rattach__unmark(rattach_batch_t *b, rattach__conn_t *e) {
  if (!e->dirty)
    return;
  rattach__conn_t **pp = &b->dirty;
  while (*pp != e)
    pp = &(*pp)->next_dirty;
  *pp = e->next_dirty;
  e->next_dirty = NULL;
  e->dirty = 0;
}

/* Writes what hiredis holds for e. A context freed since it was marked has
 * left the list (rattach__b_cleanup); one being freed from inside a
 * callback (REDIS_FREEING) must not be written: its owner has given up on
 * it, and its pending replies complete as NULL. */
static void rattach__write(rattach_batch_t *b, rattach__conn_t *e) {
  if (e->ac->c.flags & REDIS_FREEING)
    return;
  b->writing = e;
  /* On a write error hiredis frees the context, and e with it (the cleanup
   * hook clears b->writing): e is not used after this. */
  redisAsyncHandleWrite(e->ac);
  b->writing = NULL;
}

/* Every marked context, once. A write that fails runs the reply callbacks
 * (NULL replies), whose new commands on other contexts join the list and
 * go out in this same pass. */
static void rattach__flush(rattach_batch_t *b) {
  rattach__conn_t *e;
  while ((e = b->dirty) != NULL) {
    b->dirty = e->next_dirty;
    e->next_dirty = NULL;
    e->dirty = 0;
    rattach__write(b, e);
  }
  uv_check_stop(&b->check);
  uv_prepare_stop(&b->prepare);
}

static void rattach__b_add_read(void *d) {
  rattach__conn_t *e = d;
  rattach__add_read(e->p);
}

static void rattach__b_del_read(void *d) {
  rattach__conn_t *e = d;
  rattach__del_read(e->p);
}

static void rattach__b_add_write(void *d) {
  rattach__conn_t *e = d;
  if (rattach__can_defer(e))
    rattach__mark(e->b, e);
  else
    rattach__add_write(e->p);
}

static void rattach__b_del_write(void *d) {
  rattach__conn_t *e = d;
  rattach__del_write(e->p);
}

/* hiredis's last word on the context (0.14 calls it once, as the context
 * is freed): e leaves its batch, so a context freed while marked is never
 * written, then the adapter's cleanup closes the poll handle. */
static void rattach__b_cleanup(void *d) {
  rattach__conn_t *e = d;
  rattach_batch_t *b = e->b;
  if (b != NULL) {
    rattach__unmark(b, e);
    if (b->writing == e)
      b->writing = NULL;
    if (e->prev != NULL)
      e->prev->next = e->next;
    else
      b->conns = e->next;
    if (e->next != NULL)
      e->next->prev = e->prev;
  }
  if (e->cleanup != NULL)
    e->cleanup(e->p);
  free(e);
}

int rattach_libuv_batched(redisAsyncContext *ac, uv_loop_t *loop, rattach_batch_t *b) {
  if (rattach_libuv(ac, loop) != 0)
    return -1;
  rattach__conn_t *e = calloc(1, sizeof *e);
  if (e == NULL)
    return 0; /* the plain hooks: one write event per command, still right */
  e->p = ac->ev.data;
  e->cleanup = ac->ev.cleanup;
  e->ac = ac;
  e->b = b;
  e->next = b->conns;
  if (b->conns != NULL)
    b->conns->prev = e;
  b->conns = e;
  ac->ev.data = e;
  ac->ev.addRead = rattach__b_add_read;
  ac->ev.delRead = rattach__b_del_read;
  ac->ev.addWrite = rattach__b_add_write;
  ac->ev.delWrite = rattach__b_del_write;
  ac->ev.cleanup = rattach__b_cleanup;
  return 0;
}

void rattach_batch_init(rattach_batch_t *b, uv_loop_t *loop) {
  memset(b, 0, sizeof *b);
  uv_check_init(loop, &b->check);
  uv_prepare_init(loop, &b->prepare);
  b->check.data = b;
  b->prepare.data = b;
}

static void rattach__batch_closed_cb(uv_handle_t *h) {
  rattach_batch_t *b = h->data;
  if (--b->open > 0)
    return;
  if (b->closed != NULL)
    b->closed(b->closed_arg);
}

void rattach_batch_close(rattach_batch_t *b, void (*closed)(void *arg), void *arg) {
  /* Contexts still attached (their owner should have freed them) go on
   * with the plain hooks; commands they were holding get the write event. */
  rattach__conn_t *e = b->conns;
  while (e != NULL) {
    rattach__conn_t *next = e->next;
    if (e->dirty && !(e->ac->c.flags & REDIS_FREEING))
      rattach__add_write(e->p);
    e->b = NULL;
    e->prev = e->next = e->next_dirty = NULL;
    e->dirty = 0;
    e = next;
  }
  b->conns = b->dirty = b->writing = NULL;
  b->closed = closed;
  b->closed_arg = arg;
  b->open = 2;
  uv_close((uv_handle_t *)&b->check, rattach__batch_closed_cb);
  uv_close((uv_handle_t *)&b->prepare, rattach__batch_closed_cb);
}
