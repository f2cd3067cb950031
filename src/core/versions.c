/* versions.c - see recd/versions.h. */
#define _DEFAULT_SOURCE /* timegm, gmtime_r */
#include "recd/versions.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recd/err.h"

int kept_version_format(int64_t t, char out[KEPT_VERSION_LEN + 1]) {
  out[0] = '\0';
  /* 253402300799 = 9999-12-31T23:59:59Z: four-digit years keep text order
   * equal to time order. */
  if (t < 0 || t > 253402300799LL)
    return -1;
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL)
    return -1;
  /* strftime: its output length is known to the compiler no better, but it
   * cannot be truncated silently (0 = did not fit). */
  if (strftime(out, KEPT_VERSION_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != KEPT_VERSION_LEN) {
    out[0] = '\0';
    return -1;
  }
  return 0;
}

int kept_version_parse(const char *s, size_t len, int64_t *t) {
  if (len != KEPT_VERSION_LEN || s[8] != 'T' || s[15] != 'Z')
    return -1;
  int d[14], n = 0;
  for (size_t i = 0; i < 15; i++) {
    if (i == 8)
      continue;
    if (s[i] < '0' || s[i] > '9')
      return -1;
    d[n++] = s[i] - '0';
  }
  struct tm tm = {0};
  tm.tm_year = d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3] - 1900;
  tm.tm_mon = d[4] * 10 + d[5] - 1;
  tm.tm_mday = d[6] * 10 + d[7];
  tm.tm_hour = d[8] * 10 + d[9];
  tm.tm_min = d[10] * 10 + d[11];
  tm.tm_sec = d[12] * 10 + d[13];
  time_t tt = timegm(&tm);
  /* Only canonical spellings: formatting the time back must give s (no
   * month 13, no February 30, no leap second 60). */
  char back[KEPT_VERSION_LEN + 1];
  if (tt == (time_t)-1 || kept_version_format((int64_t)tt, back) != 0 ||
      memcmp(back, s, KEPT_VERSION_LEN) != 0)
    return -1;
  if (t != NULL)
    *t = (int64_t)tt;
  return 0;
}

int kept_stem(const char *path, char *out, size_t cap) {
  const char *slash = strrchr(path, '/');
  const char *name = slash ? slash + 1 : path;
  size_t len = strlen(name);
  if (len > 4 && strcmp(name + len - 4, ".bin") == 0)
    len -= 4;
  if (len == 0 || len + 1 > cap)
    return -1;
  memcpy(out, name, len);
  out[len] = '\0';
  return 0;
}

int kept_name_match(const char *name, const char *stem, char version[KEPT_VERSION_LEN + 1]) {
  size_t sl = strlen(stem), nl = strlen(name);
  if (nl != sl + 1 + KEPT_VERSION_LEN + 4 || memcmp(name, stem, sl) != 0 || name[sl] != '.' ||
      strcmp(name + nl - 4, ".bin") != 0 ||
      kept_version_parse(name + sl + 1, KEPT_VERSION_LEN, NULL) != 0)
    return 0;
  if (version != NULL) {
    memcpy(version, name + sl + 1, KEPT_VERSION_LEN);
    version[KEPT_VERSION_LEN] = '\0';
  }
  return 1;
}

static int kept__cmp(const void *a, const void *b) {
  return memcmp(a, b, KEPT_VERSION_LEN);
}

int kept_list(const char *dir, const char *stem, kept_list_t *out, char *errbuf) {
  out->n = 0;
  out->v = NULL;
  DIR *d = opendir(dir);
  if (d == NULL)
    return recd_errf(errbuf, RECD_EIO, "cannot read the models directory %s: %s", dir,
                     strerror(errno));
  size_t cap = 0;
  int rc = 0;
  struct dirent *de;
  char v[KEPT_VERSION_LEN + 1];
  while ((de = readdir(d)) != NULL) {
    if (!kept_name_match(de->d_name, stem, v))
      continue;
    if (out->n == cap) {
      size_t nc = cap ? 2 * cap : 16;
      void *p = realloc(out->v, nc * sizeof *out->v);
      if (p == NULL) {
        rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory listing %s", dir);
        break;
      }
      out->v = p;
      cap = nc;
    }
    memcpy(out->v[out->n++], v, sizeof v);
  }
  closedir(d);
  if (rc != 0) {
    kept_list_free(out);
    return rc;
  }
  if (out->n > 1)
    qsort(out->v, out->n, sizeof *out->v, kept__cmp);
  return 0;
}

void kept_list_free(kept_list_t *l) {
  free(l->v);
  l->v = NULL;
  l->n = 0;
}
