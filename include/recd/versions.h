/* versions.h - the names of kept model versions, spelled once for the
 * trainer that publishes them and the daemon that rolls back to them.
 *
 * A model published at <dir>/<stem>.bin with `recd-train --keep N` is kept
 * as <dir>/<stem>.<version>.bin, and <stem>.bin is a symlink to the newest
 * one. <version> is the model's created-at time in UTC, YYYYMMDDTHHMMSSZ
 * (ISO 8601 basic format, 16 bytes): it sorts as text in time order, is
 * readable at a glance, and is derivable from the model file's own header,
 * so the daemon can name the version it serves even when the file was
 * reached through another path. The publisher makes it unique per stem
 * (a model created in the same second as the newest kept one is dated one
 * second later), so that text order is publish order.
 */
#ifndef RECD_VERSIONS_H
#define RECD_VERSIONS_H

#include <stddef.h>
#include <stdint.h>

#define KEPT_VERSION_LEN 16 /* "20261123T031500Z" */

/* The version of a model created at unix time t. 0, or -1 when t is not a
 * time of years 1970..9999 (then out is ""). */
int kept_version_format(int64_t t, char out[KEPT_VERSION_LEN + 1]);
/* The unix time of a version; 0, or -1 when s is not one. */
int kept_version_parse(const char *s, size_t len, int64_t *t);

/* The stem of a published path: its file name without a trailing ".bin"
 * ("/var/lib/recd/model.bin" -> "model"). 0, or -1 when it does not fit in
 * cap bytes or the name is empty. */
int kept_stem(const char *path, char *out, size_t cap);
/* Whether `name` (a file name, no directory) is <stem>.<version>.bin; the
 * version is copied into version (may be NULL) when it is. */
int kept_name_match(const char *name, const char *stem, char version[KEPT_VERSION_LEN + 1]);

/* The kept versions of `stem` in `dir`, oldest first. */
typedef struct kept_list {
  size_t n;
  char (*v)[KEPT_VERSION_LEN + 1];
} kept_list_t;
/* 0, RECD_EIO (the directory cannot be read; errbuf says why) or
 * RECD_ENOMEM. An empty list is not an error. */
int kept_list(const char *dir, const char *stem, kept_list_t *out, char *errbuf);
void kept_list_free(kept_list_t *l);

#endif
