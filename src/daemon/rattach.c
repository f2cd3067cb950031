/* rattach.c - see rattach.h. */
#include "rattach.h"

#include <string.h>

#include <hiredis/adapters/libuv.h>

/* On an error status run the handlers of the events that were asked for:
 * hiredis's own read/write/getsockopt then find the error and tear the
 * context down through its usual path. */
static void rattach__poll_cb(uv_poll_t *h, int status, int events) {
  redisLibuvEvents *p = h->data;
  int ev = status < 0 ? p->events : events;
  if (p->context != NULL && (ev & UV_READABLE))
    redisAsyncHandleRead(p->context);
  /* p outlives a free in the read handler: the adapter's cleanup only
   * uv_close()s the handle and clears p->context; the memory goes in the
   * close callback. */
  if (p->context != NULL && (ev & UV_WRITABLE))
    redisAsyncHandleWrite(p->context);
}

static void rattach__update(redisLibuvEvents *p) {
  if (p->events)
    uv_poll_start(&p->handle, p->events, rattach__poll_cb);
  else
    uv_poll_stop(&p->handle);
}

static void rattach__add_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events |= UV_READABLE;
  rattach__update(p);
}

static void rattach__del_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events &= ~UV_READABLE;
  rattach__update(p);
}

static void rattach__add_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events |= UV_WRITABLE;
  rattach__update(p);
}

static void rattach__del_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events &= ~UV_WRITABLE;
  rattach__update(p);
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
