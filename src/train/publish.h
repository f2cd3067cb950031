/* publish.h - how recd-train puts a model file in place: the lock against a
 * concurrent recd-train on the same output, the removal of temp files that
 * an interrupted run left, and versioned publishing (--keep N).
 *
 * Without --keep, --out is written atomically as a plain file (model.h).
 * With --keep N the model is written as <dir>/<stem>.<version>.bin
 * (recd/versions.h), --out becomes a symlink to it (replaced atomically:
 * a symlink made under a temp name, renamed over --out), and only the N
 * newest versions are kept. A symlink, not a copy or hard link, because it
 * says which version is served (`ls -l`, and the daemon's realpath()),
 * while every reader that opens --out (the daemon's `model`, SIGHUP,
 * systemd units, `recd-train --info`) still reads the newest model.
 */
#ifndef RECD_TRAIN_PUBLISH_H
#define RECD_TRAIN_PUBLISH_H

#include <stdint.h>
#include <stdio.h>

#include "recd/model.h"
#include "recd/versions.h"

typedef struct publish {
  const char *out;
  uint32_t keep;         /* 0: a plain file at out */
  char *dir, *base;      /* out's directory and file name */
  char stem[256];
  int lock_fd;
  int have_newest;       /* a kept version exists */
  int64_t newest;        /* its time */
  char version[KEPT_VERSION_LEN + 1]; /* of the model published (keep > 0) */
  uint64_t stale_removed, stale_bytes, pruned;
} publish_t;

/* Before any work: locks <dir>/.<base>.lock (flock; refused while another
 * recd-train holds it, so two runs never publish to one path), removes the
 * temp files that interrupted writers left in dir (<base>.tmp.XXXXXX, and
 * <stem>.<version>.bin.tmp.XXXXXX with keep) unless a writer still holds
 * them, reporting how many on `log` (may be NULL), and with keep > 0 and a
 * plain file at out (an unversioned publish), keeps that file as a version
 * first so that a rollback can reach it. 0 or an error in errbuf. */
int publish_begin(publish_t *p, const char *out, uint32_t keep, FILE *log, char *errbuf);
/* The created-at time to give the new model: t, or one second after the
 * newest kept version when t would not sort after it. */
int64_t publish_created_at(const publish_t *p, int64_t t);
/* Writes the model (spec->meta.created_at from publish_created_at) and,
 * with keep, points out at it and removes all but the `keep` newest
 * versions. 0 or an error in errbuf; on error out is unchanged. */
int publish_write(publish_t *p, const model_spec_t *spec, FILE *log, char *errbuf);
/* Releases the lock. */
void publish_end(publish_t *p);

#endif
