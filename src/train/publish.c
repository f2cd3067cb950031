/* publish.c - see publish.h. */
#define _GNU_SOURCE /* flock, O_NOFOLLOW, symlink */
#include "publish.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recd/err.h"
#include "recd/rng.h"

static int publish__split(publish_t *p, const char *out, char *errbuf) {
  const char *slash = strrchr(out, '/');
  const char *name = slash ? slash + 1 : out;
  if (name[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL, "--out %s: not a file name", out);
  size_t dl = slash == NULL ? 0 : slash == out ? 1 : (size_t)(slash - out);
  p->dir = dl ? strndup(out, dl) : strdup(".");
  p->base = strdup(name);
  if (p->dir == NULL || p->base == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  if (kept_stem(out, p->stem, sizeof p->stem) != 0)
    return recd_errf(errbuf, RECD_EINVAL, "--out %s: file name too long", out);
  return 0;
}

/* dir/name into buf. */
static const char *publish__path(const publish_t *p, const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s", p->dir, name);
  return buf;
}

/* Whether `name` is <prefix>.tmp.XXXXXX, the temp-file pattern of
 * model_write (src/core/model_write.c, model__temp_name) and of the
 * symlink swap below. */
static int publish__is_temp_of(const char *name, const char *prefix) {
  size_t pl = strlen(prefix);
  if (strncmp(name, prefix, pl) != 0 || strncmp(name + pl, ".tmp.", 5) != 0 ||
      strlen(name + pl + 5) != 6)
    return 0;
  for (const char *c = name + pl + 5; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
      return 0;
  return 1;
}

/* A temp file is stale when no writer holds its flock (model_write keeps
 * it locked from creation to rename, and a dead writer's lock died with
 * it). A symlink is the swap's own temp name, only ever made under the
 * publish lock that this run holds: stale by definition. Removes it and
 * adds its size; 1 removed, 0 in use or gone, -1 error (errno). */
static int publish__remove_if_stale(const char *path, uint64_t *bytes) {
  struct stat ls;
  if (lstat(path, &ls) != 0)
    return errno == ENOENT ? 0 : -1;
  if (S_ISLNK(ls.st_mode)) {
    if (unlink(path) != 0)
      return errno == ENOENT ? 0 : -1;
    return 1;
  }
  if (!S_ISREG(ls.st_mode))
    return 0;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  int removed = 0;
  struct stat fs;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &fs) == 0 && lstat(path, &ls) == 0 &&
      ls.st_ino == fs.st_ino && ls.st_dev == fs.st_dev) {
    /* Still the file that was locked (not one a new writer made since):
     * removed while locked, so no writer can take it over meanwhile. */
    if (unlink(path) == 0) {
      *bytes += (uint64_t)fs.st_size;
      removed = 1;
    }
  }
  close(fd);
  return removed;
}

static int publish__clean(publish_t *p, FILE *log, char *errbuf) {
  DIR *d = opendir(p->dir);
  if (d == NULL)
    return recd_errf(errbuf, RECD_EIO, "cannot read the output directory %s: %s", p->dir,
                     strerror(errno));
  char path[4096], kept_prefix[300];
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    int ours = publish__is_temp_of(n, p->base);
    if (!ours && p->keep > 0) {
      /* <stem>.<version>.bin.tmp.XXXXXX: a version being written. */
      size_t nl = strlen(n);
      if (nl > 11) {
        snprintf(kept_prefix, sizeof kept_prefix, "%.*s", (int)(nl - 11), n);
        ours = kept_name_match(kept_prefix, p->stem, NULL) && publish__is_temp_of(n, kept_prefix);
      }
    }
    if (!ours)
      continue;
    int r = publish__remove_if_stale(publish__path(p, n, path, sizeof path), &p->stale_bytes);
    if (r < 0) {
      rc = recd_errf(errbuf, RECD_EIO, "cannot remove the stale temporary file %s: %s", path,
                     strerror(errno));
      break;
    }
    if (r == 1) {
      p->stale_removed++;
      if (log)
        fprintf(log, "removed %s, a temporary file left by an interrupted recd-train\n", path);
    }
  }
  closedir(d);
  if (rc == 0 && p->stale_removed > 0 && log)
    fprintf(log, "removed %llu stale temporary file%s (%.1f MB) in %s\n",
            (unsigned long long)p->stale_removed, p->stale_removed == 1 ? "" : "s",
            (double)p->stale_bytes / 1e6, p->dir);
  return rc;
}

/* A plain file at out (published before --keep was used): kept as the
 * version of its own created-at, by a hard link, before out becomes a
 * symlink. A file that does not load is left alone (and replaced). */
static int publish__adopt(publish_t *p, FILE *log, char *errbuf) {
  struct stat st;
  if (lstat(p->out, &st) != 0 || !S_ISREG(st.st_mode))
    return 0;
  model_t *m;
  char err[RECD_ERRLEN];
  if (model_load(&m, p->out, err) != 0) {
    if (log)
      fprintf(log, "warning: the existing %s is not kept as a version: %s\n", p->out, err);
    return 0;
  }
  char v[KEPT_VERSION_LEN + 1], name[300], path[4096];
  int ok = kept_version_format(model_meta(m)->created_at, v) == 0;
  model_free(m);
  if (!ok)
    return 0;
  snprintf(name, sizeof name, "%s.%s.bin", p->stem, v);
  publish__path(p, name, path, sizeof path);
  if (link(p->out, path) != 0) {
    if (errno == EEXIST)
      return 0;
    return recd_errf(errbuf, RECD_EIO, "cannot keep the existing %s as %s: %s", p->out, path,
                     strerror(errno));
  }
  if (log)
    fprintf(log, "kept the existing %s as version %s\n", p->out, v);
  return 0;
}

int publish_begin(publish_t *p, const char *out, uint32_t keep, FILE *log, char *errbuf) {
  memset(p, 0, sizeof *p);
  p->out = out;
  p->keep = keep;
  p->lock_fd = -1;
  int rc = publish__split(p, out, errbuf);
  if (rc != 0)
    return rc;
  char lock[4096], name[300];
  snprintf(name, sizeof name, ".%s.lock", p->base);
  publish__path(p, name, lock, sizeof lock);
  p->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
  if (p->lock_fd < 0)
    return recd_errf(errbuf, RECD_EIO, "cannot create the lock file %s: %s", lock,
                     strerror(errno));
  if (flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0)
    return recd_errf(errbuf, RECD_EINVAL,
                     errno == EWOULDBLOCK
                         ? "another recd-train is publishing %s (it holds %s); not starting a "
                           "second one"
                         : "cannot lock %s (%s)",
                     out, errno == EWOULDBLOCK ? lock : strerror(errno));
  if ((rc = publish__clean(p, log, errbuf)) != 0)
    return rc;
  if (keep > 0 && (rc = publish__adopt(p, log, errbuf)) != 0)
    return rc;
  if (keep > 0) {
    kept_list_t l;
    if ((rc = kept_list(p->dir, p->stem, &l, errbuf)) != 0)
      return rc;
    if (l.n > 0) {
      p->have_newest = 1;
      kept_version_parse(l.v[l.n - 1], KEPT_VERSION_LEN, &p->newest);
    }
    kept_list_free(&l);
  }
  return 0;
}

int64_t publish_created_at(const publish_t *p, int64_t t) {
  if (p->keep > 0 && p->have_newest && t <= p->newest)
    return p->newest + 1;
  return t;
}

/* out -> target, replaced atomically: a symlink under a temp name, renamed
 * over out (rename replaces a file or a symlink in one step), then the
 * directory synced. */
static int publish__point(publish_t *p, const char *target, char *errbuf) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  char tmp[4096];
  rng_t r;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  rng_seed(&r, (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32);
  int made = 0;
  for (int attempt = 0; attempt < 100 && !made; attempt++) {
    char sfx[7];
    for (int i = 0; i < 6; i++)
      sfx[i] = alphabet[rng_below(&r, sizeof alphabet - 1)];
    sfx[6] = '\0';
    snprintf(tmp, sizeof tmp, "%s.tmp.%s", p->out, sfx);
    if (symlink(target, tmp) == 0)
      made = 1;
    else if (errno != EEXIST)
      break;
  }
  if (!made)
    return recd_errf(errbuf, RECD_EIO, "cannot create a symlink next to %s: %s", p->out,
                     strerror(errno));
  if (rename(tmp, p->out) != 0) {
    int e = errno;
    unlink(tmp);
    return recd_errf(errbuf, RECD_EIO, "cannot point %s at %s: %s", p->out, target, strerror(e));
  }
  int dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    int e = fsync(dfd) != 0 && errno != EINVAL ? errno : 0;
    close(dfd);
    if (e != 0)
      return recd_errf(errbuf, RECD_EIO, "%s now points at %s but syncing %s failed: %s",
                       p->out, target, p->dir, strerror(e));
  }
  return 0;
}

/* Removes all but the `keep` newest versions. The newest is the one just
 * published, so out never dangles. */
static int publish__prune(publish_t *p, FILE *log, char *errbuf) {
  kept_list_t l;
  int rc = kept_list(p->dir, p->stem, &l, errbuf);
  if (rc != 0)
    return rc;
  char name[300], path[4096];
  for (size_t i = 0; i + p->keep < l.n; i++) {
    snprintf(name, sizeof name, "%s.%s.bin", p->stem, l.v[i]);
    if (unlink(publish__path(p, name, path, sizeof path)) != 0 && errno != ENOENT) {
      rc = recd_errf(errbuf, RECD_EIO, "cannot remove the old version %s: %s", path,
                     strerror(errno));
      break;
    }
    p->pruned++;
    if (log)
      fprintf(log, "removed version %s (keeping the %u newest)\n", l.v[i], p->keep);
  }
  kept_list_free(&l);
  return rc;
}

int publish_write(publish_t *p, const model_spec_t *spec, FILE *log, char *errbuf) {
  if (p->keep == 0)
    return model_write(spec, p->out, errbuf);
  if (kept_version_format(spec->meta.created_at, p->version) != 0)
    return recd_errf(errbuf, RECD_EINVAL,
                     "created-at %lld is not a time of years 1970..9999: cannot name the version",
                     (long long)spec->meta.created_at);
  char name[300], path[4096];
  snprintf(name, sizeof name, "%s.%s.bin", p->stem, p->version);
  int rc = model_write(spec, publish__path(p, name, path, sizeof path), errbuf);
  if (rc == 0)
    rc = publish__point(p, name, errbuf);
  if (rc != 0) {
    /* out still points at the previous version; this one is not kept. */
    unlink(path);
    return rc;
  }
  if (log)
    fprintf(log, "published version %s: %s -> %s\n", p->version, p->out, name);
  p->have_newest = 1;
  kept_version_parse(p->version, KEPT_VERSION_LEN, &p->newest);
  return publish__prune(p, log, errbuf);
}

void publish_end(publish_t *p) {
  if (p->lock_fd >= 0)
    close(p->lock_fd);
  p->lock_fd = -1;
  free(p->dir);
  free(p->base);
  p->dir = p->base = NULL;
}
