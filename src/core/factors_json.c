/* factors_json.c - item factors as JSON lines (see factors_json.h).
 *
 * A recursive-descent parser for one fixed shape of object, on one line
 * held in memory: every token is checked against the JSON grammar (RFC
 * 8259) before anything is converted, so strtof() only ever sees a valid
 * JSON number and stops exactly where the grammar did.
 */
#include "recd/factors_json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Longest number token converted (Spark writes ~12 characters, Python's
 * repr 24; a longer one is refused rather than truncated). */
#define FJ_MAX_NUMBER 255

typedef struct fj {
  const char *s;
  size_t len, p;
  char *err;
} fj_t;

static int fj_peek(const fj_t *j) {
  return j->p < j->len ? (unsigned char)j->s[j->p] : -1;
}

static void fj_ws(fj_t *j) {
  while (j->p < j->len && (j->s[j->p] == ' ' || j->s[j->p] == '\t' || j->s[j->p] == '\r'))
    j->p++;
}

/* "column N: expected WHAT, got X". */
static int fj_expected(fj_t *j, const char *what) {
  char got[24];
  int c = fj_peek(j);
  if (c < 0) {
    snprintf(got, sizeof got, "the end of the line");
  } else {
    got[0] = '\'';
    size_t n = 1 + recd_escape_byte(got + 1, (unsigned char)c, "'");
    got[n] = '\'';
    got[n + 1] = '\0';
  }
  return recd_errf(j->err, RECD_EFORMAT, "column %zu: expected %s, got %s", j->p + 1, what, got);
}

static int fj_hex4(fj_t *j, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int c = fj_peek(j);
    uint32_t d;
    if (c >= '0' && c <= '9')
      d = (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = (uint32_t)(c - 'A' + 10);
    else
      return fj_expected(j, "a hexadecimal digit of a \\u escape");
    v = v << 4 | d;
    j->p++;
  }
  *out = v;
  return 0;
}

/* Appends byte b to out[0..cap); *n counts every byte, so *n > cap says the
 * string did not fit. */
static void fj_put(char *out, size_t cap, size_t *n, unsigned char b) {
  if (*n < cap)
    out[*n] = (char)b;
  ++*n;
}

/* A JSON string at j->p (which is '"'), decoded into out (at most cap
 * bytes kept; *n receives the full decoded length). */
static int fj_string(fj_t *j, char *out, size_t cap, size_t *n) {
  *n = 0;
  j->p++; /* the opening quote */
  for (;;) {
    int c = fj_peek(j);
    if (c < 0)
      return fj_expected(j, "'\"' (the string is not closed)");
    if (c == '"') {
      j->p++;
      return 0;
    }
    if (c < 0x20)
      return fj_expected(j, "a string character (a control byte must be escaped)");
    if (c != '\\') {
      fj_put(out, cap, n, (unsigned char)c);
      j->p++;
      continue;
    }
    j->p++;
    c = fj_peek(j);
    const char *simple = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
    const char *hit = c > 0 ? strchr(simple, c) : NULL;
    if (hit != NULL) {
      fj_put(out, cap, n, (unsigned char)to[hit - simple]);
      j->p++;
      continue;
    }
    if (c != 'u')
      return fj_expected(j, "an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)");
    j->p++;
    uint32_t cp = 0;
    int rc = fj_hex4(j, &cp);
    if (rc != 0)
      return rc;
    if (cp >= 0xdc00 && cp <= 0xdfff) {
      j->p -= 6;
      return fj_expected(j, "a \\u escape that is not a lone low surrogate");
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
      uint32_t lo = 0;
      if (fj_peek(j) != '\\' || j->p + 1 >= j->len || j->s[j->p + 1] != 'u')
        return fj_expected(j, "a \\uDC00-\\uDFFF low surrogate after a high one");
      j->p += 2;
      if ((rc = fj_hex4(j, &lo)) != 0)
        return rc;
      if (lo < 0xdc00 || lo > 0xdfff) {
        j->p -= 6;
        return fj_expected(j, "a \\uDC00-\\uDFFF low surrogate after a high one");
      }
      cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    if (cp < 0x80) {
      fj_put(out, cap, n, (unsigned char)cp);
    } else if (cp < 0x800) {
      fj_put(out, cap, n, (unsigned char)(0xc0 | cp >> 6));
      fj_put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      fj_put(out, cap, n, (unsigned char)(0xe0 | cp >> 12));
      fj_put(out, cap, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
      fj_put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3f)));
    } else {
      fj_put(out, cap, n, (unsigned char)(0xf0 | cp >> 18));
      fj_put(out, cap, n, (unsigned char)(0x80 | ((cp >> 12) & 0x3f)));
      fj_put(out, cap, n, (unsigned char)(0x80 | ((cp >> 6) & 0x3f)));
      fj_put(out, cap, n, (unsigned char)(0x80 | (cp & 0x3f)));
    }
  }
}

static int fj_digit(const fj_t *j) {
  int c = fj_peek(j);
  return c >= '0' && c <= '9';
}

/* A JSON number at j->p: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?.
 * *is_int: neither a fraction nor an exponent. */
static int fj_number(fj_t *j, const char *what, int *is_int) {
  *is_int = 1;
  if (fj_peek(j) == '-')
    j->p++;
  if (fj_peek(j) == '0') {
    j->p++;
  } else if (fj_digit(j)) {
    while (fj_digit(j))
      j->p++;
  } else {
    return fj_expected(j, what);
  }
  if (fj_peek(j) == '.') {
    *is_int = 0;
    j->p++;
    if (!fj_digit(j))
      return fj_expected(j, "a digit after the decimal point");
    while (fj_digit(j))
      j->p++;
  }
  if (fj_peek(j) == 'e' || fj_peek(j) == 'E') {
    *is_int = 0;
    j->p++;
    if (fj_peek(j) == '+' || fj_peek(j) == '-')
      j->p++;
    if (!fj_digit(j))
      return fj_expected(j, "a digit of the exponent");
    while (fj_digit(j))
      j->p++;
  }
  /* JSON allows no digit, letter or point right after a number ("01", "1x"). */
  int c = fj_peek(j);
  if (c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
    return fj_expected(j, "',', ']', '}' or a space after the number");
  return 0;
}

static int fj_id(fj_t *j, factors_json_row_t *row) {
  int c = fj_peek(j);
  size_t start = j->p, n;
  int rc;
  if (c == '"') {
    if ((rc = fj_string(j, row->id, sizeof row->id, &n)) != 0)
      return rc;
    row->id_is_number = 0;
  } else {
    int is_int;
    if ((rc = fj_number(j, "\"id\" to be a string or an integer", &is_int)) != 0)
      return rc;
    if (!is_int) {
      j->p = start;
      return recd_errf(j->err, RECD_EFORMAT, "column %zu: expected \"id\" to be a string or an "
                       "integer, got a number with a fraction or an exponent", start + 1);
    }
    n = j->p - start;
    if (n <= sizeof row->id)
      memcpy(row->id, j->s + start, n);
    row->id_is_number = 1;
  }
  if (n == 0 || n > FACTORS_JSON_MAX_ID)
    return recd_errf(j->err, RECD_EFORMAT, "column %zu: expected an id of 1 to %d bytes, got %zu",
                     start + 1, FACTORS_JSON_MAX_ID, n);
  row->id_len = n;
  return 0;
}

static int fj_features(fj_t *j, factors_json_row_t *row) {
  if (fj_peek(j) != '[')
    return fj_expected(j, "'[' (\"features\" is an array of numbers)");
  j->p++;
  fj_ws(j);
  if (fj_peek(j) == ']')
    return recd_errf(j->err, RECD_EFORMAT, "column %zu: expected 1 to %d features, got an "
                     "empty array", j->p + 1, FACTORS_JSON_MAX_K);
  row->k = 0;
  for (;;) {
    size_t start = j->p;
    int is_int, rc;
    if ((rc = fj_number(j, "a number", &is_int)) != 0)
      return rc;
    const size_t tl = j->p - start;
    if (row->k == FACTORS_JSON_MAX_K)
      return recd_errf(j->err, RECD_EFORMAT, "column %zu: expected at most %d features",
                       start + 1, FACTORS_JSON_MAX_K);
    if (tl > FJ_MAX_NUMBER)
      return recd_errf(j->err, RECD_EFORMAT, "column %zu: features[%u]: expected a number of "
                       "at most %d characters, got %zu", start + 1, row->k, FJ_MAX_NUMBER, tl);
    char buf[FJ_MAX_NUMBER + 1];
    memcpy(buf, j->s + start, tl);
    buf[tl] = '\0';
    errno = 0;
    float x = strtof(buf, NULL);
    if (!isfinite(x))
      return recd_errf(j->err, RECD_EFORMAT, "column %zu: features[%u]: expected a finite "
                       "float, got %.40s (out of range)", start + 1, row->k, buf);
    row->features[row->k++] = x;
    fj_ws(j);
    int c = fj_peek(j);
    if (c == ']') {
      j->p++;
      return 0;
    }
    if (c != ',')
      return fj_expected(j, "',' or ']' in \"features\"");
    j->p++;
    fj_ws(j);
  }
}

int factors_json_parse_line(const char *s, size_t len, factors_json_row_t *row, char *errbuf) {
  fj_t j = {.s = s, .len = len, .p = 0, .err = errbuf};
  fj_ws(&j);
  if (j.p == len)
    return 0;
  if (fj_peek(&j) != '{')
    return fj_expected(&j, "'{' (one {\"id\": ..., \"features\": [...]} object per line)");
  j.p++;
  int have_id = 0, have_features = 0, rc;
  row->id_len = 0;
  row->k = 0;
  fj_ws(&j);
  if (fj_peek(&j) != '}') {
    for (;;) {
      if (fj_peek(&j) != '"')
        return fj_expected(&j, "a key (\"id\" or \"features\")");
      const size_t kstart = j.p;
      char key[16];
      size_t klen;
      if ((rc = fj_string(&j, key, sizeof key, &klen)) != 0)
        return rc;
      fj_ws(&j);
      if (fj_peek(&j) != ':')
        return fj_expected(&j, "':' after the key");
      j.p++;
      fj_ws(&j);
      int *seen;
      if (klen == 2 && memcmp(key, "id", 2) == 0) {
        seen = &have_id;
      } else if (klen == 8 && memcmp(key, "features", 8) == 0) {
        seen = &have_features;
      } else {
        char shown[80];
        size_t o = 0;
        for (size_t i = 0; i < klen && i < sizeof key; i++)
          o += recd_escape_byte(shown + o, (unsigned char)key[i], "\"");
        if (klen > sizeof key) {
          memcpy(shown + o, "...", 3);
          o += 3;
        }
        shown[o] = '\0';
        return recd_errf(errbuf, RECD_EFORMAT, "column %zu: expected the key \"id\" or "
                         "\"features\", got \"%s\" (no other key is allowed)", kstart + 1, shown);
      }
      if (*seen)
        return recd_errf(errbuf, RECD_EFORMAT, "column %zu: duplicate key \"%s\"", kstart + 1,
                         seen == &have_id ? "id" : "features");
      *seen = 1;
      rc = seen == &have_id ? fj_id(&j, row) : fj_features(&j, row);
      if (rc != 0)
        return rc;
      fj_ws(&j);
      if (fj_peek(&j) == '}')
        break;
      if (fj_peek(&j) != ',')
        return fj_expected(&j, "',' or '}' after a value");
      j.p++;
      fj_ws(&j);
    }
  }
  j.p++; /* '}' */
  if (!have_id || !have_features)
    return recd_errf(errbuf, RECD_EFORMAT, "column %zu: expected the key \"%s\" in the object",
                     j.p, !have_id ? "id" : "features");
  fj_ws(&j);
  if (j.p != len)
    return fj_expected(&j, "the end of the line after the object (one object per line)");
  return 1;
}

void factors_json_free(factors_json_t *f) {
  free(f->Y);
  idmap_free(f->ids);
  free(f->id_is_number);
  free(f->line);
  memset(f, 0, sizeof *f);
}

/* An id for a message: escaped, at most 64 bytes of it. */
static void fj_show_id(char *out, size_t cap, const char *id, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (o + 8 >= cap || i == 64) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    o += recd_escape_byte(out + o, (unsigned char)id[i], "\"");
  }
  out[o] = '\0';
}

/* Room for row n (0-based) in f's arrays. */
static int fj_grow(factors_json_t *f, size_t *cap) {
  if (f->n < *cap)
    return 0;
  size_t nc = *cap ? *cap * 2 : 1024;
  if (nc > FACTORS_JSON_MAX_ROWS)
    nc = FACTORS_JSON_MAX_ROWS;
  if (nc > SIZE_MAX / sizeof(float) / f->k || nc > SIZE_MAX / sizeof(uint64_t))
    return RECD_ENOMEM;
  float *y = realloc(f->Y, nc * f->k * sizeof *y);
  if (y == NULL)
    return RECD_ENOMEM;
  f->Y = y;
  uint8_t *num = realloc(f->id_is_number, nc);
  if (num == NULL)
    return RECD_ENOMEM;
  f->id_is_number = num;
  uint64_t *line = realloc(f->line, nc * sizeof *line);
  if (line == NULL)
    return RECD_ENOMEM;
  f->line = line;
  *cap = nc;
  return 0;
}

/* Reads one line (without its LF) into *buf (*cap bytes, grown up to
 * FACTORS_JSON_MAX_LINE); *len its length. 1 a line, 0 end of file,
 * RECD_EFORMAT too long (the rest of it is skipped), RECD_EIO, RECD_ENOMEM. */
static int fj_getline(FILE *fp, char **buf, size_t *cap, size_t *len) {
  size_t n = 0;
  int c, too_long = 0;
  while ((c = getc(fp)) != EOF && c != '\n') {
    if (n == *cap && n < FACTORS_JSON_MAX_LINE) {
      size_t nc = *cap * 2 < FACTORS_JSON_MAX_LINE ? *cap * 2 : FACTORS_JSON_MAX_LINE;
      char *b = realloc(*buf, nc);
      if (b == NULL)
        return RECD_ENOMEM;
      *buf = b;
      *cap = nc;
    }
    if (n < *cap)
      (*buf)[n++] = (char)c;
    else
      too_long = 1;
  }
  if (ferror(fp))
    return RECD_EIO;
  *len = n;
  if (too_long)
    return RECD_EFORMAT;
  return c == EOF && n == 0 ? 0 : 1;
}

int factors_json_read(factors_json_t *out, FILE *fp, const char *name, char *errbuf) {
  memset(out, 0, sizeof *out);
  size_t buf_cap = 4096;
  char *buf = malloc(buf_cap);
  factors_json_row_t *row = malloc(sizeof *row);
  int rc = 0;
  size_t cap = 0, len;
  char msg[RECD_ERRLEN];
  if (buf == NULL || row == NULL || (out->ids = idmap_new(1024)) == NULL) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "%s: out of memory", name);
    goto done;
  }
  for (;;) {
    rc = fj_getline(fp, &buf, &buf_cap, &len);
    if (rc == 0)
      break;
    out->lines++;
    if (rc == RECD_ENOMEM) {
      rc = recd_errf(errbuf, rc, "%s:%llu: out of memory", name, (unsigned long long)out->lines);
      goto done;
    }
    if (rc == RECD_EIO) {
      rc = recd_errf(errbuf, rc, "%s:%llu: read error", name, (unsigned long long)out->lines);
      goto done;
    }
    if (rc == RECD_EFORMAT) {
      rc = recd_errf(errbuf, rc, "%s:%llu: expected a line of at most %u bytes", name,
                     (unsigned long long)out->lines, FACTORS_JSON_MAX_LINE);
      goto done;
    }
    const char *s = buf;
    if (out->lines == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
      s += 3;
      len -= 3;
    }
    rc = factors_json_parse_line(s, len, row, msg);
    if (rc == 0)
      continue;
    if (rc < 0) {
      rc = recd_errf(errbuf, rc, "%s:%llu: %s", name, (unsigned long long)out->lines, msg);
      goto done;
    }
    if (out->n == 0) {
      out->k = row->k;
    } else if (row->k != out->k) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: expected %u features (as on line %llu), "
                     "got %u", name, (unsigned long long)out->lines, out->k,
                     (unsigned long long)out->line[0], row->k);
      goto done;
    }
    if (out->n == FACTORS_JSON_MAX_ROWS) {
      rc = recd_errf(errbuf, RECD_ERANGE, "%s:%llu: expected at most %u items", name,
                     (unsigned long long)out->lines, FACTORS_JSON_MAX_ROWS);
      goto done;
    }
    if (fj_grow(out, &cap) != 0) {
      rc = recd_errf(errbuf, RECD_ENOMEM, "%s:%llu: out of memory for %u items of %u factors",
                     name, (unsigned long long)out->lines, out->n + 1, out->k);
      goto done;
    }
    uint32_t idx;
    int added = idmap_intern(out->ids, row->id, row->id_len, &idx);
    if (added < 0) {
      rc = recd_errf(errbuf, RECD_ENOMEM, "%s:%llu: out of memory", name,
                     (unsigned long long)out->lines);
      goto done;
    }
    if (added == 0) {
      char shown[300];
      fj_show_id(shown, sizeof shown, row->id, row->id_len);
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: duplicate id \"%s\" (line %llu has it)",
                     name, (unsigned long long)out->lines, shown,
                     (unsigned long long)out->line[idx]);
      goto done;
    }
    memcpy(out->Y + (size_t)out->n * out->k, row->features, (size_t)out->k * sizeof(float));
    out->id_is_number[out->n] = (uint8_t)row->id_is_number;
    out->line[out->n] = out->lines;
    out->n++;
  }
  rc = 0;
  if (out->n == 0)
    rc = recd_errf(errbuf, RECD_EFORMAT, "%s: no items (%llu lines), expected JSON lines "
                   "{\"id\": ..., \"features\": [...]}", name, (unsigned long long)out->lines);
done:
  free(buf);
  free(row);
  if (rc != 0)
    factors_json_free(out);
  return rc;
}

int factors_json_read_file(factors_json_t *out, const char *path, char *errbuf) {
  memset(out, 0, sizeof *out);
  if (strcmp(path, "-") == 0)
    return factors_json_read(out, stdin, "stdin", errbuf);
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return recd_errf(errbuf, RECD_EIO, "cannot open %s: %s", path, strerror(errno));
  int rc = factors_json_read(out, fp, path, errbuf);
  fclose(fp);
  return rc;
}

int factors_json_write_row(FILE *fp, const char *id, size_t id_len, const float *features,
                           uint32_t k) {
  static const char hex[] = "0123456789abcdef";
  fputs("{\"id\": \"", fp);
  for (size_t i = 0; i < id_len; i++) {
    unsigned char c = (unsigned char)id[i];
    switch (c) {
    case '"': fputs("\\\"", fp); break;
    case '\\': fputs("\\\\", fp); break;
    case '\b': fputs("\\b", fp); break;
    case '\f': fputs("\\f", fp); break;
    case '\n': fputs("\\n", fp); break;
    case '\r': fputs("\\r", fp); break;
    case '\t': fputs("\\t", fp); break;
    default:
      if (c < 0x20 || c == 0x7f) {
        char e[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], '\0'};
        fputs(e, fp);
      } else {
        putc(c, fp);
      }
    }
  }
  fputs("\", \"features\": [", fp);
  for (uint32_t j = 0; j < k; j++)
    fprintf(fp, j ? ", %.9g" : "%.9g", (double)features[j]);
  fputs("]}\n", fp);
  return ferror(fp) ? RECD_EIO : 0;
}
