/* config_print.c - the config as text: --help (config_usage), one key's
 * value for CONFIG GET (config_format) and the whole config as a
 * recd.conf (config_dump, --test-config), all walking the table
 * (config.c). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"

/* "<0..65535>", "<yes|no>", ...: the value syntax of d for --help. */
static void config__hint(const config__def_t *d, char *out, size_t size) {
  char lo[32], hi[32];
  switch (d->type) {
  case CONFIG__INT:
    snprintf(out, size, "<%lld..%lld>", d->min, d->max);
    break;
  case CONFIG__SIZE:
    config__fmt_size((unsigned long long)d->min, lo, sizeof lo);
    config__fmt_size((unsigned long long)d->max, hi, sizeof hi);
    snprintf(out, size, "<size %s..%s>", lo, hi);
    break;
  case CONFIG__DOUBLE:
    config__fmt_bound(d->min, lo, sizeof lo);
    config__fmt_bound(d->max, hi, sizeof hi);
    snprintf(out, size, "<number %s..%s>", lo, hi);
    break;
  case CONFIG__VARIANTS:
    snprintf(out, size, "<\"name path percent\">");
    break;
  case CONFIG__USERS:
    snprintf(out, size, "<\"name rule ...\">");
    break;
  case CONFIG__BOOL:
    snprintf(out, size, "<yes|no>");
    break;
  case CONFIG__ENUM: {
    size_t o = (size_t)snprintf(out, size, "<");
    for (size_t i = 0; d->names[i] != NULL && o < size; i++)
      o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "|" : "", d->names[i]);
    if (o < size)
      snprintf(out + o, size - o, ">");
    break;
  }
  case CONFIG__OCTAL:
    snprintf(out, size, "<octal mode>");
    break;
  case CONFIG__STRING:
    snprintf(out, size, "%s", (d->flags & CONFIG__PATH) ? "<path>"
                              : (d->flags & CONFIG__SECRET) ? "<password>" : "<string>");
    break;
  case CONFIG__ADDRS:
    snprintf(out, size, "<\"addr [addr ...]\">");
    break;
  }
}

void config_usage(FILE *fp, const char *progname) {
  fprintf(fp,
          "Usage: %s [/path/to/recd.conf] [--key value ...]\n"
          "       %s --help | --version\n"
          "\n"
          "Reads the config file (if the first argument is not an option), then\n"
          "applies the --key value overrides in order; the last value of a key wins.\n"
          "--test-config checks the result, prints it and exits without serving.\n"
          "Every key below is also a 'key value' line of recd.conf. Sizes take the\n"
          "units of redis.conf: k = 1000, kb = 1024, m, mb, g, gb.\n"
          "\n",
          progname, progname);
  for (size_t i = 0; i < config__ndefs; i++) {
    const config__def_t *d = &config__defs[i];
    char hint[96];
    config__hint(d, hint, sizeof hint);
    fprintf(fp, "  --%s %s  (default: %s)\n      %s\n", d->name, hint,
            d->deflt[0] != '\0' ? d->deflt : "\"\"", d->help);
  }
}

/* Output sink with snprintf semantics: counts everything, stores what fits;
 * or, when fp is set, writes everything to fp. */
typedef struct config__out {
  char *buf;
  size_t size;
  size_t len;
  FILE *fp;
} config__out_t;

static void config__put(config__out_t *o, const char *s, size_t n) {
  if (o->fp != NULL) {
    fwrite(s, 1, n, o->fp);
  } else if (o->len < o->size) {
    size_t room = o->size - 1 - o->len;
    memcpy(o->buf + o->len, s, n < room ? n : room);
    o->buf[o->len + (n < room ? n : room)] = '\0';
  }
  o->len += n;
}

static void config__puts(config__out_t *o, const char *s) {
  config__put(o, s, strlen(s));
}

/* Writes s as one recd.conf token: bare when that reads back the same,
 * otherwise in double quotes with escapes. */
static void config__token(config__out_t *o, const char *s) {
  int bare = s[0] != '\0';
  for (const char *p = s; *p != '\0' && bare; p++) {
    unsigned char c = (unsigned char)*p;
    if (config__isblank(*p) || c == '"' || c == '\'' || c == '\\' || c < 0x20 || c == 0x7f)
      bare = 0;
  }
  if (bare) {
    config__puts(o, s);
    return;
  }
  config__puts(o, "\"");
  for (const char *p = s; *p != '\0'; p++) {
    unsigned char c = (unsigned char)*p;
    char esc[8];
    switch (c) {
    case '"': config__puts(o, "\\\""); break;
    case '\\': config__puts(o, "\\\\"); break;
    case '\n': config__puts(o, "\\n"); break;
    case '\r': config__puts(o, "\\r"); break;
    case '\t': config__puts(o, "\\t"); break;
    default:
      if (c < 0x20 || c == 0x7f) {
        snprintf(esc, sizeof esc, "\\x%02x", c);
        config__puts(o, esc);
      } else {
        config__put(o, (const char *)p, 1);
      }
    }
  }
  config__puts(o, "\"");
}

/* Variant i as "name path percent", the path quoted when it needs it. */
static void config__variant(config__out_t *o, const config_variants_t *vs, size_t i) {
  char num[32];
  config__token(o, vs->name[i] != NULL ? vs->name[i] : "");
  config__puts(o, " ");
  config__token(o, vs->path[i] != NULL ? vs->path[i] : "");
  snprintf(num, sizeof num, " %u", vs->percent[i]);
  config__puts(o, num);
}

/* The raw value of d in cfg, as config_format() documents it. */
static void config__format_def(const config_t *cfg, const config__def_t *d,
                               config__out_t *o) {
  const void *f = config__cfield(cfg, d);
  char num[64];
  switch (d->type) {
  case CONFIG__INT:
    snprintf(num, sizeof num, "%d", *(const int *)f);
    config__puts(o, num);
    break;
  case CONFIG__SIZE:
    snprintf(num, sizeof num, "%zu", *(const size_t *)f);
    config__puts(o, num);
    break;
  case CONFIG__OCTAL:
    snprintf(num, sizeof num, "%04o", *(const unsigned *)f);
    config__puts(o, num);
    break;
  case CONFIG__BOOL:
    config__puts(o, *(const bool *)f ? "yes" : "no");
    break;
  case CONFIG__ENUM: {
    int v = *(const int *)f;
    if (v >= d->min && v <= d->max) {
      config__puts(o, d->names[v]);
    } else {
      snprintf(num, sizeof num, "%d", v);
      config__puts(o, num);
    }
    break;
  }
  case CONFIG__STRING: {
    const char *s = *(char *const *)f;
    config__puts(o, s != NULL ? s : "");
    break;
  }
  case CONFIG__ADDRS: {
    const config_addrs_t *a = f;
    for (int i = 0; i < a->n && i < CONFIG_BIND_MAX; i++) {
      if (i > 0)
        config__puts(o, " ");
      config__puts(o, a->addr[i]);
    }
    break;
  }
  case CONFIG__DOUBLE:
    config__fmt_double(*(const double *)f, num, sizeof num);
    config__puts(o, num);
    break;
  case CONFIG__VARIANTS: {
    const config_variants_t *vs = f;
    for (size_t i = 0; i < vs->n && i < CONFIG_VARIANT_MAX; i++) {
      if (i > 0)
        config__puts(o, " ");
      config__variant(o, vs, i);
    }
    break;
  }
  case CONFIG__USERS: { /* the stored lines need no quotes (acl.h) */
    const config_users_t *us = f;
    for (size_t i = 0; i < us->n && i < CONFIG_USER_MAX; i++) {
      if (i > 0)
        config__puts(o, " ; ");
      config__puts(o, us->line[i] != NULL ? us->line[i] : "");
    }
    break;
  }
  }
}

int config_format(const config_t *cfg, const char *key, char *buf, size_t size) {
  const config__def_t *d = config__find(key, strlen(key));
  if (d == NULL)
    return RECD_ENOTFOUND;
  config__out_t o = {buf, size, 0, NULL};
  if (buf != NULL && size > 0)
    buf[0] = '\0';
  config__format_def(cfg, d, &o);
  return o.len > INT_MAX ? INT_MAX : (int)o.len;
}

int config_dump(const config_t *cfg, FILE *fp, int flags) {
  config__out_t out = {NULL, 0, 0, fp};
  for (size_t i = 0; i < config__ndefs; i++) {
    const config__def_t *d = &config__defs[i];
    const void *f = config__cfield(cfg, d);
    if (d->type == CONFIG__VARIANTS) {
      /* One line per variant, as an operator writes them; "" for none, so
       * that the key is visible in --test-config's output and a dump of a
       * config without variants empties the list it is loaded into. */
      const config_variants_t *vs = f;
      if (vs->n == 0)
        fprintf(fp, "%s \"\"\n", d->name);
      for (size_t j = 0; j < vs->n && j < CONFIG_VARIANT_MAX; j++) {
        fprintf(fp, "%s ", d->name);
        config__variant(&out, vs, j);
        fputc('\n', fp);
      }
    } else if (d->type == CONFIG__USERS) {
      /* One line per user, as for variants ("" for none). */
      const config_users_t *us = f;
      if (us->n == 0)
        fprintf(fp, "%s \"\"\n", d->name);
      for (size_t j = 0; j < us->n && j < CONFIG_USER_MAX; j++)
        fprintf(fp, "%s %s\n", d->name, us->line[j] != NULL ? us->line[j] : "");
    } else if (d->type == CONFIG__STRING) {
      const char *s = *(char *const *)f;
      if (s == NULL)
        s = "";
      /* Commented out rather than replaced by a placeholder, so that a
       * redacted dump still loads (without the secret). */
      if ((d->flags & CONFIG__SECRET) && (flags & CONFIG_DUMP_REDACT) && s[0] != '\0') {
        fprintf(fp, "# %s (redacted)\n", d->name);
        continue;
      }
      fprintf(fp, "%s ", d->name);
      config__token(&out, s);
      fputc('\n', fp);
    } else if (d->type == CONFIG__SIZE) {
      char num[64];
      config__fmt_size(*(const size_t *)f, num, sizeof num);
      fprintf(fp, "%s %s\n", d->name, num);
    } else {
      /* Numbers, yes/no, enum names and IP literals never need quotes. */
      char val[CONFIG_BIND_MAX * 64];
      config__out_t o = {val, sizeof val, 0, NULL};
      val[0] = '\0';
      config__format_def(cfg, d, &o);
      fprintf(fp, "%s %s\n", d->name, val);
    }
  }
  return ferror(fp) ? RECD_EIO : 0;
}
