/* model_write.c - validates a model_spec_t and publishes it as a model file.
 *
 * The file is streamed through a small buffer (Y alone can be gigabytes), the
 * CRC32 accumulating as bytes go out; the checksum field is excluded from its
 * own coverage, so it is patched in with pwrite() once everything else is on
 * disk. Publication is the classic atomic replace: temp file in the target's
 * directory (unnamed with O_TMPFILE where possible, so that even a killed
 * writer leaves nothing; see "atomic publication"), fsync, rename over the
 * target, fsync of the directory. Every failure before the rename removes
 * the temp file, so the old model (if any) is untouched and no debris is
 * left.
 *
 * OOM policy: like the rest of recd's core, allocation failures are reported
 * (RECD_ENOMEM), never fatal.
 */
#define _GNU_SOURCE /* O_TMPFILE, linkat, flock */
#include "model_internal.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "recd/idmap.h"
#include "recd/rng.h"

/* ---- spec validation --------------------------------------------------- */

/* Checks a list of n byte strings: present, 1..MODEL_MAX_ID_LEN bytes and
 * unique. `what` is "item", "category" or "group"; category and group
 * numbers are 1-based in messages because that is how items refer to them.
 * *blob_len receives the summed length. */
static int model__check_names(const char *what, uint32_t first, const char *const *names,
                              const uint32_t *lens, uint32_t n, uint64_t *blob_len,
                              char *errbuf) {
  idmap_t *seen = idmap_new(n);
  if (seen == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory checking %u %s names", n, what);
  uint64_t total = 0;
  int rc = 0;
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    uint64_t num = (uint64_t)first + i;
    if (lens[i] < 1 || lens[i] > MODEL_MAX_ID_LEN) {
      rc = recd_errf(errbuf, RECD_EINVAL, "%s %llu: %s of %u bytes (must be 1..%d)", what,
                     (unsigned long long)num, first ? "name" : "id", lens[i], MODEL_MAX_ID_LEN);
      break;
    }
    if (names[i] == NULL) {
      rc = recd_errf(errbuf, RECD_EINVAL, "%s %llu: %s pointer is NULL", what,
                     (unsigned long long)num, first ? "name" : "id");
      break;
    }
    uint32_t idx;
    int added = idmap_intern(seen, names[i], lens[i], &idx);
    if (added < 0) {
      rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory checking %u %s names", n, what);
    } else if (added == 0) {
      char q[96];
      model__quote(names[i], lens[i], q);
      rc = recd_errf(errbuf, RECD_EINVAL, "%s %llu: duplicate %s %s (same as %s %llu)", what,
                     (unsigned long long)num, first ? "name" : "id", q, what,
                     (unsigned long long)first + idx);
    }
    total += lens[i];
  }
  idmap_free(seen);
  *blob_len = total;
  return rc;
}

/* Everything model_load() will check, checked here first, so that a bad
 * spec fails before any file is created and with the spec's own terms. */
static int model__check_spec(const model_spec_t *s, uint64_t *id_blob, uint64_t *cat_blob,
                             uint64_t *grp_blob, char *errbuf) {
  const uint32_t n = s->n_items, k = s->params.factors;
  if (n < 1)
    return recd_errf(errbuf, RECD_EINVAL, "n_items is 0 (a model needs at least one item)");
  /* The id map (and model_find_item()'s int64 result) index with uint32. */
  if (n > UINT32_MAX - 1)
    return recd_errf(errbuf, RECD_EINVAL, "n_items %u is too large", n);
  if (k < 1 || k > MODEL_MAX_FACTORS)
    return recd_errf(errbuf, RECD_EINVAL, "k (params.factors) is %u, must be 1..%d", k,
                     MODEL_MAX_FACTORS);
  if (s->Y == NULL || s->popularity == NULL || s->item_ids == NULL || s->item_id_lens == NULL)
    return recd_errf(errbuf, RECD_EINVAL, "spec.%s is NULL",
                     s->Y == NULL ? "Y" : s->popularity == NULL ? "popularity"
                     : s->item_ids == NULL ? "item_ids" : "item_id_lens");
  /* BLAS takes the leading dimension as an int. */
  if (s->ldy < k || s->ldy > INT_MAX)
    return recd_errf(errbuf, RECD_EINVAL, "ldy %zu is not in k..INT_MAX (k = %u)", s->ldy, k);
  if (s->n_categories > UINT32_MAX - 1)
    return recd_errf(errbuf, RECD_EINVAL, "n_categories %u is too large", s->n_categories);
  if (s->n_categories > 0 && (s->category_names == NULL || s->category_name_lens == NULL))
    return recd_errf(errbuf, RECD_EINVAL, "%u categories but spec.category_name%s is NULL",
                     s->n_categories, s->category_names == NULL ? "s" : "_lens");
  if (s->n_groups > UINT32_MAX - 1)
    return recd_errf(errbuf, RECD_EINVAL, "n_groups %u is too large", s->n_groups);
  if (s->n_groups > 0 && (s->group_names == NULL || s->group_name_lens == NULL))
    return recd_errf(errbuf, RECD_EINVAL, "%u groups but spec.group_name%s is NULL",
                     s->n_groups, s->group_names == NULL ? "s" : "_lens");
  int rc = model__check_params(&s->params, k, RECD_EINVAL, errbuf);
  if (rc == 0)
    rc = model__check_meta(&s->meta, RECD_EINVAL, errbuf);
  if (rc != 0)
    return rc;
  for (uint32_t i = 0; i < n; i++) {
    const float *row = s->Y + (size_t)i * s->ldy;
    for (uint32_t j = 0; j < k; j++)
      if (!isfinite(row[j]))
        return recd_errf(errbuf, RECD_EINVAL, "item %u: Y[%u][%u] is %g, not finite", i, i,
                         j, (double)row[j]);
    float p = s->popularity[i];
    if (!isfinite(p) || p < 0)
      return recd_errf(errbuf, RECD_EINVAL, "item %u: popularity %g is not a finite value >= 0",
                       i, (double)p);
    if (s->item_category != NULL && s->item_category[i] > s->n_categories)
      return recd_errf(errbuf, RECD_EINVAL, "item %u: category %u out of range (n_categories %u)",
                       i, s->item_category[i], s->n_categories);
    if (s->item_group != NULL && s->item_group[i] > s->n_groups)
      return recd_errf(errbuf, RECD_EINVAL, "item %u: group %u out of range (n_groups %u)", i,
                       s->item_group[i], s->n_groups);
  }
  if ((rc = model__check_serves(&s->meta, k, s->Y, s->ldy, n, RECD_EINVAL, errbuf)) != 0)
    return rc;
  rc = model__check_names("item", 0, s->item_ids, s->item_id_lens, n, id_blob, errbuf);
  if (rc == 0)
    rc = model__check_names("category", 1, s->category_names, s->category_name_lens,
                            s->n_categories, cat_blob, errbuf);
  if (rc == 0)
    rc = model__check_names("group", 1, s->group_names, s->group_name_lens, s->n_groups,
                            grp_blob, errbuf);
  return rc;
}

/* YtY into a k x k buffer: ssyrk fills the upper triangle, then it is
 * mirrored, so the stored matrix is exactly symmetric (the loader checks
 * symmetry). Rows go through BLAS in blocks because its dimensions are int. */
static int model__gram(const model_spec_t *s, float **out, char *errbuf) {
  const uint32_t n = s->n_items, k = s->params.factors;
  float *g = malloc((size_t)k * k * sizeof *g);
  if (g == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory for the %ux%u YtY", k, k);
  const uint32_t block = 1u << 20;
  for (uint32_t r = 0; r < n; r += block) {
    uint32_t rows = n - r < block ? n - r : block;
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k, (int)rows, 1.0f,
                s->Y + (size_t)r * s->ldy, (int)s->ldy, r == 0 ? 0.0f : 1.0f, g, (int)k);
  }
  for (uint32_t i = 0; i < k; i++) {
    for (uint32_t j = i + 1; j < k; j++)
      g[(size_t)j * k + i] = g[(size_t)i * k + j];
    for (uint32_t j = i; j < k; j++)
      if (!isfinite(g[(size_t)i * k + j])) {
        free(g);
        return recd_errf(errbuf, RECD_EINVAL,
                         "YtY[%u][%u] overflows float32: Y values are too large", i, j);
      }
  }
  *out = g;
  return 0;
}

/* ---- buffered output with a running CRC --------------------------------- */

typedef struct model__out {
  int fd;
  uint64_t off;   /* file offset of buf[0] */
  size_t used;    /* bytes pending in buf */
  uLong crc;      /* over file bytes [MODEL__CRC_START, off + flushed) */
  int err;        /* first errno; once set, output is discarded */
  unsigned char buf[1 << 16];
} model__out_t;

static int model__write_all(int fd, const unsigned char *p, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static void model__out_flush(model__out_t *o) {
  if (o->err != 0 || o->used == 0)
    return;
  size_t skip = 0;
  if (o->off < MODEL__CRC_START)
    skip = MODEL__CRC_START - o->off < o->used ? (size_t)(MODEL__CRC_START - o->off) : o->used;
  o->crc = crc32(o->crc, o->buf + skip, (uInt)(o->used - skip));
  o->err = model__write_all(o->fd, o->buf, o->used);
  o->off += o->used;
  o->used = 0;
}

static void model__out_put(model__out_t *o, const void *data, size_t len) {
  const unsigned char *p = data;
  while (len > 0 && o->err == 0) {
    size_t n = sizeof o->buf - o->used;
    if (n > len)
      n = len;
    memcpy(o->buf + o->used, p, n);
    o->used += n;
    p += n;
    len -= n;
    if (o->used == sizeof o->buf)
      model__out_flush(o);
  }
}

static void model__out_zero(model__out_t *o, uint64_t len) {
  static const unsigned char zero[256];
  while (len > 0 && o->err == 0) {
    size_t n = len < sizeof zero ? (size_t)len : sizeof zero;
    model__out_put(o, zero, n);
    len -= n;
  }
}

static uint64_t model__out_pos(const model__out_t *o) {
  return o->off + o->used;
}

static void model__out_u64(model__out_t *o, uint64_t v) {
  unsigned char b[8];
  model__put_u64(b, v);
  model__out_put(o, b, 8);
}

/* ---- layout and streaming ------------------------------------------------ */

static uint64_t model__align_up(uint64_t v) {
  return (v + MODEL_ALIGN - 1) / MODEL_ALIGN * MODEL_ALIGN;
}

/* Places the sections back to back, each at the next 64-byte boundary; the
 * file ends where the last section does. Sizes are bounded by the spec
 * checks (n < 2^32, k <= 1024, ids <= 256 bytes), so nothing overflows. */
static void model__layout(model__header_t *h, uint64_t id_blob, uint64_t cat_blob,
                          uint64_t grp_blob) {
  uint64_t len[MODEL__N_SECTIONS];
  model__section_lengths(h->n_items, h->k, h->stride, h->n_categories, h->n_groups, len);
  len[MODEL__SEC_ID_BLOB] = id_blob;
  len[MODEL__SEC_CAT_BLOB] = cat_blob;
  len[MODEL__SEC_GRP_BLOB] = grp_blob;
  uint64_t pos = MODEL__HEADER_SIZE;
  for (int s = 0; s < MODEL__N_SECTIONS; s++) {
    pos = model__align_up(pos);
    h->sec[s].offset = pos;
    h->sec[s].length = len[s];
    pos += len[s];
  }
  h->file_size = pos;
}

static void model__stream(model__out_t *o, const model__header_t *h, const model_spec_t *s,
                          const float *gram) {
  unsigned char hdr[MODEL__HEADER_SIZE];
  model__header_encode(h, hdr);
  model__out_put(o, hdr, sizeof hdr);
  const uint32_t n = h->n_items, k = h->k;
  for (int sec = 0; sec < MODEL__N_SECTIONS; sec++) {
    model__out_zero(o, h->sec[sec].offset - model__out_pos(o));
    switch (sec) {
    case MODEL__SEC_Y:
      /* The host is little-endian (checked by the caller): float bytes in
       * memory are already the file's bytes. */
      for (uint32_t i = 0; i < n; i++) {
        model__out_put(o, s->Y + (size_t)i * s->ldy, (size_t)k * sizeof(float));
        model__out_zero(o, (uint64_t)(h->stride - k) * sizeof(float));
      }
      break;
    case MODEL__SEC_GRAM:
      model__out_put(o, gram, (size_t)k * k * sizeof(float));
      break;
    case MODEL__SEC_POPULARITY:
      model__out_put(o, s->popularity, (size_t)n * sizeof(float));
      break;
    case MODEL__SEC_CATEGORY:
    case MODEL__SEC_GROUP: {
      const uint32_t *v = sec == MODEL__SEC_CATEGORY ? s->item_category : s->item_group;
      if (v != NULL)
        model__out_put(o, v, (size_t)n * sizeof(uint32_t));
      else
        model__out_zero(o, (uint64_t)n * sizeof(uint32_t));
      break;
    }
    case MODEL__SEC_ID_OFFSETS:
    case MODEL__SEC_CAT_OFFSETS:
    case MODEL__SEC_GRP_OFFSETS: {
      const uint32_t *lens = sec == MODEL__SEC_ID_OFFSETS    ? s->item_id_lens
                             : sec == MODEL__SEC_CAT_OFFSETS ? s->category_name_lens
                                                             : s->group_name_lens;
      uint32_t count = sec == MODEL__SEC_ID_OFFSETS    ? n
                       : sec == MODEL__SEC_CAT_OFFSETS ? h->n_categories
                                                       : h->n_groups;
      uint64_t at = 0;
      model__out_u64(o, at);
      for (uint32_t i = 0; i < count; i++)
        model__out_u64(o, at += lens[i]);
      break;
    }
    case MODEL__SEC_ID_BLOB:
      for (uint32_t i = 0; i < n; i++)
        model__out_put(o, s->item_ids[i], s->item_id_lens[i]);
      break;
    case MODEL__SEC_CAT_BLOB:
      for (uint32_t c = 0; c < h->n_categories; c++)
        model__out_put(o, s->category_names[c], s->category_name_lens[c]);
      break;
    case MODEL__SEC_GRP_BLOB:
      for (uint32_t g = 0; g < h->n_groups; g++)
        model__out_put(o, s->group_names[g], s->group_name_lens[g]);
      break;
    }
  }
  model__out_flush(o);
}

/* ---- atomic publication -------------------------------------------------- */

/* The file is written where no reader can see it and no crash can leave it:
 * with O_TMPFILE (Linux 3.11+, most local file systems) it is an unnamed
 * inode in the target's directory that the kernel frees if the writer dies
 * (an OOM kill, a deploy, a timeout), and it is given a name only once it is
 * complete and synced. Where the file system refuses O_TMPFILE (or /proc,
 * through which an unnamed file is linked, is not mounted) it is the classic
 * named `path`.tmp.XXXXXX. Either way the writer holds an flock() on the
 * file until it is renamed onto `path`, so that a cleaner (recd-train
 * removes stale `<out>.tmp.??????` files of interrupted runs) can tell a
 * file being written (locked) from the debris of a dead writer (unlocked).
 * RECD_MODEL_NAMED_TEMP=1 forces the named file (tests, and file systems
 * whose O_TMPFILE misbehaves). */
typedef struct model__temp {
  int fd;       /* the data, written and synced */
  int lock_fd;  /* dup of fd: holds the flock until the rename is done */
  char *name;   /* `path`.tmp.XXXXXX once named (NULL: still unnamed) */
} model__temp_t;

/* `path`.tmp.XXXXXX with a random suffix into a new buffer. */
static char *model__temp_name(const char *path, rng_t *r) {
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  size_t len = strlen(path);
  char *tmp = malloc(len + 12);
  if (tmp == NULL)
    return NULL;
  memcpy(tmp, path, len);
  memcpy(tmp + len, ".tmp.", 5);
  for (int i = 0; i < 6; i++)
    tmp[len + 5 + i] = alphabet[rng_below(r, sizeof alphabet - 1)];
  tmp[len + 11] = '\0';
  return tmp;
}

static void model__temp_seed(rng_t *r, const void *salt) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  rng_seed(r, (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 20 ^
                  (uint64_t)(uintptr_t)salt);
}

/* The directory part of `path` ("." for a bare name), malloc'ed. */
static char *model__dirname(const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL)
    return strdup(".");
  size_t n = slash == path ? 1 : (size_t)(slash - path); /* "/x" lives in "/" */
  char *dir = malloc(n + 1);
  if (dir != NULL) {
    memcpy(dir, path, n);
    dir[n] = '\0';
  }
  return dir;
}

/* Opens the file the model is written to. 0, or -1 with errno (ENOMEM for
 * a failed allocation). Mode 0666 in both cases (the umask decides, as for
 * any file the trainer creates; mkstemp's 0600 would make the model
 * unreadable to a daemon running as another user). */
static int model__temp_open(const char *path, model__temp_t *t) {
  t->fd = t->lock_fd = -1;
  t->name = NULL;
  const char *force = getenv("RECD_MODEL_NAMED_TEMP");
  if (force == NULL || strcmp(force, "1") != 0) {
    char *dir = model__dirname(path);
    if (dir == NULL) {
      errno = ENOMEM;
      return -1;
    }
    /* Unnamed files are linked through /proc/self/fd: without /proc
     * there would be no way to name the finished file. */
    int fd = access("/proc/self/fd", X_OK) == 0
                 ? open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666)
                 : -1;
    free(dir);
    /* Failed (EOPNOTSUPP, EISDIR, EINVAL: the file system or kernel cannot;
     * EACCES, ENOENT...: the named file below reports the same error). */
    if (fd >= 0) {
      t->fd = fd;
      t->lock_fd = dup(fd);
      if (t->lock_fd < 0 || flock(t->lock_fd, LOCK_EX) != 0) {
        int e = errno;
        close(fd);
        if (t->lock_fd >= 0)
          close(t->lock_fd);
        t->fd = t->lock_fd = -1;
        errno = e;
        return -1;
      }
      return 0;
    }
  }
  rng_t r;
  model__temp_seed(&r, t);
  for (int attempt = 0; attempt < 100; attempt++) {
    char *tmp = model__temp_name(path, &r);
    if (tmp == NULL) {
      errno = ENOMEM;
      return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      int e = errno;
      free(tmp);
      if (e == EEXIST)
        continue;
      errno = e;
      return -1;
    }
    int lfd = dup(fd);
    struct stat st;
    /* A cleaner may have found the new file unlocked between the open and
     * the flock and removed it: then it has no name any more (nlink 0) and
     * another name is tried. */
    if (lfd < 0 || flock(lfd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
      int e = errno;
      unlink(tmp);
      free(tmp);
      close(fd);
      if (lfd >= 0)
        close(lfd);
      errno = e;
      return -1;
    }
    if (st.st_nlink == 0) {
      free(tmp);
      close(fd);
      close(lfd);
      continue;
    }
    t->fd = fd;
    t->lock_fd = lfd;
    t->name = tmp;
    return 0;
  }
  errno = EEXIST;
  return -1;
}

/* Gives an unnamed file its temporary name (linkat through /proc, with a
 * random name as for the named fallback). 0 or an errno value. */
static int model__temp_link(const char *path, model__temp_t *t) {
  if (t->name != NULL)
    return 0;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", t->lock_fd);
  rng_t r;
  model__temp_seed(&r, t);
  for (int attempt = 0; attempt < 100; attempt++) {
    char *tmp = model__temp_name(path, &r);
    if (tmp == NULL)
      return ENOMEM;
    if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) {
      t->name = tmp;
      return 0;
    }
    int e = errno;
    free(tmp);
    if (e != EEXIST)
      return e;
  }
  return EEXIST;
}

/* Removes whatever name the temp file has and releases it. */
static void model__temp_discard(model__temp_t *t) {
  if (t->name != NULL)
    unlink(t->name);
  free(t->name);
  t->name = NULL;
  if (t->fd >= 0)
    close(t->fd);
  if (t->lock_fd >= 0)
    close(t->lock_fd);
  t->fd = t->lock_fd = -1;
}

/* fsync of the directory holding `path`, so that the rename itself survives
 * a crash. Returns 0 or an errno value. */
static int model__sync_dir(const char *path) {
  char *dir = model__dirname(path);
  if (dir == NULL)
    return ENOMEM;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(dir);
  if (fd < 0)
    return errno;
  int e = 0;
  /* Some file systems cannot sync a directory and say EINVAL; there is
   * nothing more to be done there, and the data itself was synced. */
  if (fsync(fd) != 0 && errno != EINVAL)
    e = errno;
  close(fd);
  return e;
}

/* Contract in model.h. Validation happens before any file is created, so an
 * invalid spec (RECD_EINVAL, the culprit named) leaves the directory as it
 * was; an I/O failure (RECD_EIO) removes the temporary file, and `path`
 * keeps its previous content. The spec is only read. */
int model_write(const model_spec_t *spec, const char *path, char *errbuf) {
  if (errbuf != NULL)
    errbuf[0] = '\0';
  if (spec == NULL || path == NULL || path[0] == '\0')
    return recd_errf(errbuf, RECD_EINVAL, "model_write: no spec or no path");
  if (!model__host_is_little_endian())
    return recd_errf(errbuf, RECD_EINVAL,
                     "model files are little-endian and this host is not; recd does not "
                     "byte-swap models");
  uint64_t id_blob = 0, cat_blob = 0, grp_blob = 0;
  int rc = model__check_spec(spec, &id_blob, &cat_blob, &grp_blob, errbuf);
  if (rc != 0)
    return rc;
  float *gram = NULL;
  if ((rc = model__gram(spec, &gram, errbuf)) != 0)
    return rc;

  model__header_t h;
  memset(&h, 0, sizeof h);
  h.version = MODEL_VERSION;
  h.header_size = MODEL__HEADER_SIZE;
  h.byte_order = MODEL__BYTE_ORDER_MARK;
  h.n_items = spec->n_items;
  h.k = spec->params.factors;
  h.stride = model__stride_for(h.k);
  h.n_categories = spec->n_categories;
  h.n_groups = spec->n_groups;
  h.params = spec->params;
  h.meta = spec->meta;
  model__layout(&h, id_blob, cat_blob, grp_blob);

  model__out_t *o = malloc(sizeof *o);
  if (o == NULL) {
    free(gram);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory writing %s", path);
  }
  model__temp_t tf;
  if (model__temp_open(path, &tf) != 0) {
    /* model__temp_open reports its own failed malloc as ENOMEM: that is
     * out of memory, not an I/O error (found by tests/unit/test_fault.c). */
    if (errno == ENOMEM)
      rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory creating a temporary file next to %s",
                     path);
    else
      rc = recd_errf(errbuf, RECD_EIO, "cannot create a temporary file next to %s: %s", path,
                     strerror(errno));
    free(o);
    free(gram);
    return rc;
  }
  o->fd = tf.fd;
  o->off = 0;
  o->used = 0;
  o->crc = crc32(0L, Z_NULL, 0);
  o->err = 0;
  model__stream(o, &h, spec, gram);
  free(gram);

  const char *step = "writing";
  int e = o->err;
  if (e == 0 && o->off != h.file_size) {
    /* Layout and stream disagree: a bug here, not an I/O problem. */
    e = EIO;
    step = "laying out";
  }
  if (e == 0) {
    unsigned char crc[4];
    model__put_u32(crc, (uint32_t)o->crc);
    ssize_t w = pwrite(o->fd, crc, sizeof crc, MODEL__OFF_CHECKSUM);
    if (w != (ssize_t)sizeof crc)
      e = w < 0 ? errno : EIO;
  }
  if (e == 0 && fsync(o->fd) != 0) {
    e = errno;
    step = "syncing";
  }
  /* The data descriptor is closed (and its error seen) before the file is
   * published; the lock stays on lock_fd until the rename is done. */
  if (close(tf.fd) != 0 && e == 0) {
    e = errno;
    step = "closing";
  }
  tf.fd = -1;
  free(o);
  if (e == 0 && (e = model__temp_link(path, &tf)) != 0)
    step = "naming the temporary file of";
  if (e == 0 && rename(tf.name, path) != 0) {
    e = errno;
    step = "renaming the temporary file onto";
  }
  if (e != 0) {
    model__temp_discard(&tf);
    if (e == ENOMEM)
      return recd_errf(errbuf, RECD_ENOMEM, "out of memory publishing %s", path);
    return recd_errf(errbuf, RECD_EIO, "%s %s: %s", step, path, strerror(e));
  }
  free(tf.name); /* renamed: nothing left to remove */
  tf.name = NULL;
  model__temp_discard(&tf);
  /* The new file is in place; only its durability across a crash is in
   * doubt, and the caller should know (a retrain job would retry). */
  if ((e = model__sync_dir(path)) != 0)
    /* ENOMEM is model__sync_dir's own failed malloc (test_fault.c): out of
     * memory, as every other allocation failure here. */
    return recd_errf(errbuf, e == ENOMEM ? RECD_ENOMEM : RECD_EIO,
                     "%s was published but syncing its directory failed: %s", path,
                     e == ENOMEM ? "out of memory" : strerror(e));
  return 0;
}
