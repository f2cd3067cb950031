/* settings.c - see settings.h. */
#include "settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "recd/csv.h"
#include "recd/err.h"
#include "recd/model.h"

/* One "key value" line; 0 or -1 with errbuf set. */
static int settings__line(const char *path, unsigned line, char *key, char *val, recipe_t *r,
                          int64_t *tuned_at, char *errbuf) {
  const size_t vlen = strlen(val);
  uint64_t u;
  int64_t i64;
  float f;
  if (strcmp(key, "tuned-at") == 0) {
    if (csv_parse_i64(val, vlen, &i64) == 0 && i64 >= 0) {
      *tuned_at = i64;
      return 0;
    }
  } else if (strcmp(key, "factors") == 0) {
    if (csv_parse_u64(val, vlen, &u) == 0 && u >= 1 && u <= MODEL_MAX_FACTORS) {
      r->params.factors = (uint32_t)u;
      return 0;
    }
  } else if (strcmp(key, "iterations") == 0) {
    if (csv_parse_u64(val, vlen, &u) == 0 && u >= 1 && u <= 10000) {
      r->params.iterations = (uint32_t)u;
      return 0;
    }
  } else if (strcmp(key, "alpha") == 0) {
    if (csv_parse_float(val, vlen, &f) == 0 && f >= 0 && f <= 1e9) {
      r->params.alpha = f;
      return 0;
    }
  } else if (strcmp(key, "lambda") == 0) {
    if (csv_parse_float(val, vlen, &f) == 0 && f >= 1e-9f && f <= 1e9f) {
      r->params.lambda = f;
      return 0;
    }
  } else if (strcmp(key, "reg-exponent") == 0) {
    if (csv_parse_float(val, vlen, &f) == 0 && f >= 0 && f <= 2) {
      r->params.reg_exponent = f;
      return 0;
    }
  } else if (strcmp(key, "half-life-days") == 0) {
    if (csv_parse_float(val, vlen, &f) == 0 && f >= 0 && f <= 36500) {
      r->half_life_days = f;
      return 0;
    }
  } else if (strcmp(key, "validation-ndcg") == 0 || strcmp(key, "split") == 0) {
    return 0; /* informational */
  } else {
    return recd_errf(errbuf, RECD_EFORMAT, "%s:%u: unknown key \"%s\"", path, line, key), -1;
  }
  return recd_errf(errbuf, RECD_EFORMAT, "%s:%u: bad value \"%s\" for %s", path, line, val,
                   key), -1;
}

int settings_read(const char *path, recipe_t *r, int64_t *tuned_at, char *errbuf) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL) {
    if (errno == ENOENT)
      return RECD_ENOTFOUND;
    return recd_errf(errbuf, RECD_EIO, "cannot read %s: %s", path, strerror(errno));
  }
  recipe_t tmp = *r;
  int64_t when = 0;
  char buf[512];
  unsigned line = 0;
  int rc = 0;
  while (rc == 0 && fgets(buf, sizeof buf, fp) != NULL) {
    line++;
    size_t len = strlen(buf);
    if (len == sizeof buf - 1 && buf[len - 1] != '\n') {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%u: line longer than %zu bytes", path, line,
                     sizeof buf - 2);
      break;
    }
    char *save = NULL, *key = strtok_r(buf, " \t\r\n", &save);
    if (key == NULL || key[0] == '#')
      continue;
    char *val = strtok_r(NULL, " \t\r\n", &save);
    if (val == NULL || strtok_r(NULL, " \t\r\n", &save) != NULL) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%u: expected \"key value\" after %s", path,
                     line, key);
      break;
    }
    if (settings__line(path, line, key, val, &tmp, &when, errbuf) != 0)
      rc = RECD_EFORMAT;
  }
  if (rc == 0 && ferror(fp))
    rc = recd_errf(errbuf, RECD_EIO, "cannot read %s", path);
  fclose(fp);
  if (rc == 0 && when == 0)
    rc = recd_errf(errbuf, RECD_EFORMAT, "%s: no tuned-at line (not written by recd-train "
                   "--tune?)", path);
  if (rc == 0) {
    *r = tmp;
    *tuned_at = when;
  }
  return rc;
}

int settings_write(const char *path, const recipe_t *r, int64_t tuned_at, const char *source,
                   const char *split, double validation_ndcg, char *errbuf) {
  size_t n = strlen(path);
  char *tmp = malloc(n + 24);
  if (tmp == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  snprintf(tmp, n + 24, "%s.tmp%ld", path, (long)getpid());
  FILE *fp = fopen(tmp, "w");
  if (fp == NULL) {
    int e = errno;
    free(tmp);
    return recd_errf(errbuf, RECD_EIO, "cannot write %s: %s", path, strerror(e));
  }
  /* The source goes into a comment line: no control bytes may end it. */
  char src[256];
  snprintf(src, sizeof src, "%s", source);
  for (char *q = src; *q; q++)
    if ((unsigned char)*q < 0x20)
      *q = '?';
  char when[32] = "";
  time_t t = (time_t)tuned_at;
  struct tm tm;
  if (gmtime_r(&t, &tm) != NULL)
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  /* %.9g: the value read back is the float that was tuned. */
  fprintf(fp,
          "# recd-train --tune, %s, %s\n"
          "# `recd-train --settings %s` trains with these and tunes again once they are\n"
          "# older than --retune-days.\n"
          "tuned-at %lld\nvalidation-ndcg %.6f\nsplit %s\n"
          "factors %u\niterations %u\nalpha %.9g\nlambda %.9g\nreg-exponent %.9g\n"
          "half-life-days %.9g\n",
          when, src, path, (long long)tuned_at, validation_ndcg, split, r->params.factors,
          r->params.iterations, (double)r->params.alpha, (double)r->params.lambda,
          (double)r->params.reg_exponent, r->half_life_days);
  int bad = ferror(fp) != 0;
  bad |= fflush(fp) != 0 || fsync(fileno(fp)) != 0;
  bad |= fclose(fp) != 0;
  if (bad || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    free(tmp);
    return recd_errf(errbuf, RECD_EIO, "cannot write %s: %s", path, strerror(e));
  }
  free(tmp);
  return 0;
}
