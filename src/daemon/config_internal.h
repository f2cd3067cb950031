/* config_internal.h - what config.c (the table, parsing and setting),
 * config_validate.c (the rules across keys) and config_print.c (--help,
 * CONFIG GET's values and the dump) share: the table of keys and the
 * helpers more than one of them uses. Not for the rest of the daemon,
 * which goes through config.h. */
#ifndef RECD_DAEMON_CONFIG_INTERNAL_H
#define RECD_DAEMON_CONFIG_INTERNAL_H

#include <stddef.h>

#include "config.h"

typedef enum config__type {
  CONFIG__INT,    /* int field, decimal, in [min, max] */
  CONFIG__SIZE,   /* size_t field, bytes with optional unit, in [min, max] */
  CONFIG__BOOL,   /* bool field, yes/no */
  CONFIG__ENUM,   /* int field, index into names[] */
  CONFIG__OCTAL,  /* unsigned field, octal digits, in [min, max] */
  CONFIG__STRING, /* char * field, length in [min, max] bytes */
  CONFIG__ADDRS,  /* config_addrs_t field, [min, max] IP literals */
  CONFIG__DOUBLE, /* double field, a finite decimal number in [min, max] */
  CONFIG__VARIANTS, /* config_variants_t field, appended "name path percent"
                      triples, at most max in all */
  CONFIG__USERS    /* config_users_t field, appended ACL user lines (acl.h),
                      at most max in all */
} config__type_t;

/* Row flags. */
#define CONFIG__SECRET 1u   /* a password: redacted in dumps, hidden by INFO */
#define CONFIG__PATH 2u     /* a file system path (only changes --help) */
/* CONFIG SET may change it while the daemon runs (config_set_runtime):
 * only keys read on the loop thread, per request or per event, and copied
 * by nothing at start-up, so that a new value takes effect for the next
 * request and nothing keeps the old one (see config_cmd.c). */
#define CONFIG__RUNTIME 4u

typedef struct config__def {
  const char *name;          /* the key, lower case, as in DESIGN.md */
  config__type_t type;
  size_t offset;             /* of the field in config_t */
  const char *deflt;         /* default, written as in recd.conf */
  long long min, max;        /* see config__type_t */
  const char *const *names;  /* CONFIG__ENUM: values, NULL-terminated */
  unsigned flags;
  const char *help;          /* one line for --help and systemd/recd.conf */
} config__def_t;

/* One row per key, in --help and dump order (config.c). */
extern const config__def_t config__defs[];
extern const size_t config__ndefs;

/* In config_tls_auth_t order. */
extern const char *const config__tls_auth[];

/* Longest slice of a bad value quoted back in a message, so that a huge
 * value cannot push the key name out of the RECD_ERRLEN buffer; and the
 * buffer config__show() needs for it. */
#define CONFIG__SHOW_MAX 48
#define CONFIG__SHOW_BUF (4 * CONFIG__SHOW_MAX + 4)

int config__isblank(char c);
/* ASCII case-insensitive equality of s[0, len) with the C string name. */
int config__name_eq(const char *s, size_t len, const char *name);
/* The row of a key (any case), or NULL. */
const config__def_t *config__find(const char *key, size_t len);
/* d's field in cfg. */
const void *config__cfield(const config_t *cfg, const config__def_t *d);
/* Printable rendering of s[0, len) for messages, into CONFIG__SHOW_BUF bytes. */
void config__show(const char *s, size_t len, char *out);
/* "an integer in [0, 65535]" etc.: what a valid value of d looks like. */
void config__expect(const config__def_t *d, char *out, size_t size);
/* A size with the largest unit that divides it ("64kb"); a bound as an
 * operator writes it ("1e9"); the shortest text strtod() reads back as v. */
void config__fmt_size(unsigned long long v, char *out, size_t size);
void config__fmt_bound(long long v, char *out, size_t size);
void config__fmt_double(double v, char *out, size_t size);
/* A variant name: 1 to CONFIG_VARIANT_NAME_MAX bytes of [A-Za-z0-9_.:-]. */
int config__variant_name_ok(const char *s, size_t len);

#endif
