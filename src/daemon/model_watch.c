/* model_watch.c - see model_watch.h. */
#include "model_watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recd/err.h"

/* One watched path: its directory's inotify watch, its stat poll and its
 * debounce timer. */
typedef struct mw__path {
  struct model_watch *w;
  char *path, *dir;
  const char *base; /* in path */
  uv_fs_event_t event;
  uv_fs_poll_t poll;
  uv_timer_t quiet;
  int event_on;     /* event was started (a directory may not be watchable) */
  struct stat seen; /* the identity of the last version reported or loaded */
  int have_seen;
} mw__path_t;

struct model_watch {
  uv_loop_t *loop;
  mw__path_t *p;
  size_t n;
  unsigned debounce_ms;
  model_watch_cb cb;
  void *arg;
  unsigned long long fired;
  unsigned open_handles; /* handles not yet closed by model_watch_stop */
};

static int mw__same(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
         a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* The path has been quiet for debounce_ms: report it if it is another
 * file (or the same file changed) than the last one reported. A path that
 * does not exist now (between an unlink and a rename) waits for the next
 * event. */
static void mw__quiet_cb(uv_timer_t *t) {
  mw__path_t *p = t->data;
  struct stat st;
  if (stat(p->path, &st) != 0 || !S_ISREG(st.st_mode))
    return;
  if (p->have_seen && mw__same(&st, &p->seen))
    return;
  p->seen = st;
  p->have_seen = 1;
  p->w->fired++;
  p->w->cb(p->path, p->w->arg);
}

static void mw__poke(mw__path_t *p) {
  uv_timer_start(&p->quiet, mw__quiet_cb, p->w->debounce_ms, 0);
}

/* Events for every entry of the directory: only the watched name counts
 * (a rename onto it reports the new name; recd-train's temporary file has
 * another). A NULL name (an overflowed queue) may be anything. */
static void mw__event_cb(uv_fs_event_t *h, const char *name, int events, int status) {
  mw__path_t *p = h->data;
  (void)events;
  if (status == 0 && (name == NULL || strcmp(name, p->base) == 0))
    mw__poke(p);
}

static void mw__poll_cb(uv_fs_poll_t *h, int status, const uv_stat_t *prev,
                        const uv_stat_t *curr) {
  (void)prev;
  (void)curr;
  if (status == 0)
    mw__poke(h->data);
}

static void mw__closed_cb(uv_handle_t *h) {
  mw__path_t *p = h->data;
  model_watch_t *w = p->w;
  if (--w->open_handles > 0)
    return;
  for (size_t i = 0; i < w->n; i++) {
    free(w->p[i].path);
    free(w->p[i].dir);
  }
  free(w->p);
  free(w);
}

void model_watch_stop(model_watch_t *w) {
  if (w == NULL)
    return;
  w->open_handles = 0;
  for (size_t i = 0; i < w->n; i++)
    w->open_handles += 3;
  if (w->open_handles == 0) { /* no path: nothing to close */
    free(w->p);
    free(w);
    return;
  }
  for (size_t i = 0; i < w->n; i++) {
    mw__path_t *p = &w->p[i];
    uv_close((uv_handle_t *)&p->event, mw__closed_cb);
    uv_close((uv_handle_t *)&p->poll, mw__closed_cb);
    uv_close((uv_handle_t *)&p->quiet, mw__closed_cb);
  }
}

unsigned long long model_watch_fired(const model_watch_t *w) {
  return w != NULL ? w->fired : 0;
}

int model_watch_start(uv_loop_t *loop, const char *const *paths, size_t n, unsigned poll_ms,
                      unsigned debounce_ms, model_watch_cb cb, void *arg, model_watch_t **out,
                      char *errbuf) {
  model_watch_t *w = calloc(1, sizeof *w);
  mw__path_t *ps = calloc(n ? n : 1, sizeof *ps);
  if (w == NULL || ps == NULL) {
    free(w);
    free(ps);
    snprintf(errbuf, RECD_ERRLEN, "model-watch: out of memory");
    return RECD_ENOMEM;
  }
  *w = (model_watch_t){.loop = loop, .p = ps, .n = 0, .debounce_ms = debounce_ms, .cb = cb,
                       .arg = arg};
  for (size_t i = 0; i < n; i++) {
    mw__path_t *p = &ps[i];
    p->w = w;
    p->path = strdup(paths[i]);
    const char *slash = p->path != NULL ? strrchr(p->path, '/') : NULL;
    p->dir = p->path == NULL ? NULL
             : slash == NULL ? strdup(".")
             : slash == p->path ? strdup("/")
                                : strndup(p->path, (size_t)(slash - p->path));
    if (p->path == NULL || p->dir == NULL) {
      free(p->path);
      free(p->dir);
      model_watch_stop(w);
      snprintf(errbuf, RECD_ERRLEN, "model-watch: out of memory");
      return RECD_ENOMEM;
    }
    p->base = slash != NULL ? slash + 1 : p->path;
    struct stat st;
    if (stat(p->path, &st) == 0) {
      p->seen = st; /* the version being served now */
      p->have_seen = 1;
    }
    uv_fs_event_init(loop, &p->event);
    uv_fs_poll_init(loop, &p->poll);
    uv_timer_init(loop, &p->quiet);
    p->event.data = p->poll.data = p->quiet.data = p;
    w->n++;
    int rc = uv_fs_event_start(&p->event, mw__event_cb, p->dir, 0);
    p->event_on = rc == 0; /* without inotify the poll still sees changes */
    rc = uv_fs_poll_start(&p->poll, mw__poll_cb, p->path, poll_ms);
    if (rc != 0) {
      snprintf(errbuf, RECD_ERRLEN, "model-watch: cannot watch %s: %s", p->path,
               uv_strerror(rc));
      model_watch_stop(w);
      return RECD_EIO;
    }
  }
  *out = w;
  return 0;
}
