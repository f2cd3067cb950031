/* model_watch.h - `model-watch yes`: reload when a model file is replaced.
 *
 * Replicas that share a volume, or receive the file by rsync, move to a
 * new model by themselves: each watched path is observed two ways, an
 * inotify watch of its directory (uv_fs_event: prompt, catches the atomic
 * rename recd-train publishes with) and a stat poll of the path
 * (uv_fs_poll: network file systems deliver no inotify events for writes
 * made on other hosts). Either starts a debounce timer; when the path has
 * been quiet for debounce_ms and its identity (inode, size, mtime, ctime)
 * differs from the last one seen, the callback fires once. The daemon then
 * reloads as on SIGHUP; the load verifies the file's checksum, so a file
 * still being written in place fails to load and the current model keeps
 * serving until the writer's next change triggers another attempt.
 *
 * Threading: loop thread only.
 */
#ifndef RECD_MODEL_WATCH_H
#define RECD_MODEL_WATCH_H

#include <stddef.h>

#include <uv.h>

typedef struct model_watch model_watch_t;

/* Fired on the loop thread when a watched file was replaced or changed
 * (path is the watched path, valid during the call). */
typedef void (*model_watch_cb)(const char *path, void *arg);

/* Watches paths[0..n) (copied). poll_ms is the stat poll's period,
 * debounce_ms the quiet time before the callback. Returns 0 and *out, or
 * a libuv/allocation error with a message naming the path in errbuf
 * (RECD_ERRLEN); nothing is left running then. */
int model_watch_start(uv_loop_t *loop, const char *const *paths, size_t n, unsigned poll_ms,
                      unsigned debounce_ms, model_watch_cb cb, void *arg, model_watch_t **out,
                      char *errbuf);

/* Changes seen so far that fired the callback (INFO). */
unsigned long long model_watch_fired(const model_watch_t *w);

/* Stops watching and frees w once its handles have closed (a later loop
 * turn). NULL is a no-op. */
void model_watch_stop(model_watch_t *w);

#endif
