/* acl.c - users, rules, categories and passwords (see acl.h). */
#include "acl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "recd/err.h"

/* ---- the command table ----------------------------------------------------
 * One row per command, or per subcommand of a command that has some (rows
 * of one command are adjacent). Each row is one bit of acl_user_t.allowed.
 * Keep in step with commands.c: tests/unit/test_acl.c checks that every
 * command of the dispatch table and every subcommand of the command
 * reference has a row. */
typedef struct acl__unit {
  const char *cmd, *sub;
  unsigned cat;
} acl__unit_t;

static const acl__unit_t acl__units[] = {
    {"recommend", NULL, ACL_CAT_READ},
    {"rank", NULL, ACL_CAT_READ},
    {"similar", NULL, ACL_CAT_READ},
    {"feedback", NULL, ACL_CAT_WRITE},
    {"merge", NULL, ACL_CAT_WRITE},
    {"model", "info", ACL_CAT_MONITOR},
    {"model", "categories", ACL_CAT_READ},
    {"model", "reload", ACL_CAT_ADMIN},
    {"model", "rollback", ACL_CAT_ADMIN},
    {"model", "pin", ACL_CAT_ADMIN},
    {"model", "unpin", ACL_CAT_ADMIN},
    {"experiment", "report", ACL_CAT_MONITOR},
    {"experiment", "reset", ACL_CAT_ADMIN},
    {"ping", NULL, ACL_CAT_CONNECTION},
    {"echo", NULL, ACL_CAT_CONNECTION},
    {"quit", NULL, ACL_CAT_CONNECTION},
    {"auth", NULL, ACL_CAT_CONNECTION},
    {"hello", NULL, ACL_CAT_CONNECTION},
    {"command", NULL, ACL_CAT_CONNECTION},
    {"info", NULL, ACL_CAT_MONITOR},
    {"config", "get", ACL_CAT_MONITOR},
    {"config", "set", ACL_CAT_ADMIN},
    {"config", "resetstat", ACL_CAT_ADMIN},
    {"config", "help", ACL_CAT_CONNECTION},
    {"client", "list", ACL_CAT_MONITOR},
    {"client", "kill", ACL_CAT_ADMIN},
    {"client", "info", ACL_CAT_CONNECTION},
    {"client", "id", ACL_CAT_CONNECTION},
    {"client", "setname", ACL_CAT_CONNECTION},
    {"client", "getname", ACL_CAT_CONNECTION},
    {"client", "setinfo", ACL_CAT_CONNECTION},
    {"client", "help", ACL_CAT_CONNECTION},
    {"acl", "whoami", ACL_CAT_CONNECTION},
    {"acl", "list", ACL_CAT_ADMIN},
    {"acl", "users", ACL_CAT_ADMIN},
    {"acl", "load", ACL_CAT_ADMIN},
    {"acl", "help", ACL_CAT_CONNECTION},
};
#define ACL__NUNITS (sizeof acl__units / sizeof acl__units[0])
_Static_assert(ACL__NUNITS <= 64, "acl_user_t.allowed has 64 bits");

#define ACL__ALL (ACL__NUNITS == 64 ? ~0ull : (1ull << ACL__NUNITS) - 1)

static const struct {
  const char *name;
  unsigned bits;
} acl__cats[] = {
    {"read", ACL_CAT_READ},       {"write", ACL_CAT_WRITE},
    {"monitor", ACL_CAT_MONITOR}, {"admin", ACL_CAT_ADMIN},
    {"connection", ACL_CAT_CONNECTION},
    {"all", ACL_CAT_READ | ACL_CAT_WRITE | ACL_CAT_MONITOR | ACL_CAT_ADMIN | ACL_CAT_CONNECTION},
};

/* Units made of exactly the @connection rows: always allowed. */
static uint64_t acl__mask_cat(unsigned cats) {
  uint64_t m = 0;
  for (size_t i = 0; i < ACL__NUNITS; i++)
    if (acl__units[i].cat & cats)
      m |= 1ull << i;
  return m;
}

int acl_command_id(const char *name) {
  for (size_t i = 0; i < ACL__NUNITS; i++)
    if (strcasecmp(acl__units[i].cmd, name) == 0)
      return (int)i;
  return -1;
}

static int acl__unit_ok(const acl_user_t *u, size_t i) {
  return (acl__units[i].cat & ACL_CAT_CONNECTION) || ((u->allowed >> i) & 1u);
}

bool acl_allowed(const acl_user_t *u, int id, const char *sub, size_t len) {
  if (u == NULL || id < 0 || (size_t)id >= ACL__NUNITS)
    return false; /* fail closed: a command the table does not know */
  size_t i = (size_t)id;
  if (acl__units[i].sub == NULL)
    return acl__unit_ok(u, i);
  const char *cmd = acl__units[i].cmd;
  size_t end = i;
  while (end < ACL__NUNITS && strcmp(acl__units[end].cmd, cmd) == 0)
    end++;
  if (sub != NULL)
    for (size_t j = i; j < end; j++)
      if (strlen(acl__units[j].sub) == len && strncasecmp(acl__units[j].sub, sub, len) == 0)
        return acl__unit_ok(u, j);
  /* A subcommand the table does not know: the handler will refuse it, but
   * only a user who may run every subcommand gets to see how. */
  for (size_t j = i; j < end; j++)
    if (!acl__unit_ok(u, j))
      return false;
  return true;
}

unsigned acl_category_of(const char *name, const char *sub) {
  for (size_t i = 0; i < ACL__NUNITS; i++)
    if (strcmp(acl__units[i].cmd, name) == 0 &&
        ((sub == NULL && acl__units[i].sub == NULL) ||
         (sub != NULL && acl__units[i].sub != NULL && strcmp(acl__units[i].sub, sub) == 0)))
      return acl__units[i].cat;
  return 0;
}

void acl_units_foreach(void (*fn)(const char *cmd, const char *sub, unsigned cats, void *arg),
                       void *arg) {
  for (size_t i = 0; i < ACL__NUNITS; i++)
    fn(acl__units[i].cmd, acl__units[i].sub, acl__units[i].cat, arg);
}

/* ---- helpers -------------------------------------------------------------- */

int acl_sha256(const void *data, size_t len, unsigned char *out) {
  unsigned int n = 0;
  if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != ACL_HASH_LEN)
    return -1;
  return 0;
}

/* A token for a message: printable ASCII as is, anything else \xNN, cut
 * at 48 bytes, so that a message always fits RECD_ERRLEN. */
static void acl__show(char *out, const char *s, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < len && i < 48; i++)
    o += recd_escape_byte(out + o, (unsigned char)s[i], "'");
  if (len > 48) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
}
#define ACL__SHOW_BUF (48 * 4 + 4)

static int acl__name_ok(const char *s, size_t len) {
  if (len == 0 || len > ACL_NAME_MAX)
    return 0;
  /* Printable, no blank or quote: a name is written back bare in ACL
   * LIST, CLIENT LIST's user= and log lines. */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\'' || c == '\\')
      return 0;
  }
  return 1;
}

static int acl__hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Levenshtein distance, capped: for "did you mean". */
static size_t acl__distance(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen > 32 || blen > 32)
    return 99;
  size_t row[33];
  for (size_t j = 0; j <= blen; j++)
    row[j] = j;
  for (size_t i = 1; i <= alen; i++) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= blen; j++) {
      size_t cur = row[j];
      char ca = a[i - 1] >= 'A' && a[i - 1] <= 'Z' ? (char)(a[i - 1] - 'A' + 'a') : a[i - 1];
      size_t best = prev + (ca != b[j - 1]);
      if (row[j] + 1 < best)
        best = row[j] + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[blen];
}

/* ---- users ----------------------------------------------------------------- */

int acl_user_init(acl_user_t *u, const char *name, size_t len, char *errbuf) {
  memset(u, 0, sizeof *u);
  if (!acl__name_ok(name, len)) {
    char show[ACL__SHOW_BUF];
    acl__show(show, name, len);
    return recd_errf(errbuf, RECD_EINVAL, "bad user name '%s': expected 1 to %d printable "
                     "bytes without blanks or quotes", show, ACL_NAME_MAX);
  }
  u->name = malloc(len + 1);
  if (u->name == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  memcpy(u->name, name, len);
  u->name[len] = '\0';
  return 0;
}

static void acl__rules_clear(acl_user_t *u) {
  for (size_t i = 0; i < u->nrules; i++)
    free(u->rules[i]);
  u->nrules = 0;
}

void acl_user_free(acl_user_t *u) {
  if (u == NULL)
    return;
  acl__rules_clear(u);
  free(u->name);
  /* the digests are not secrets, but leave nothing of them behind */
  OPENSSL_cleanse(u->pass, sizeof u->pass);
  memset(u, 0, sizeof *u);
}

/* Forgets every password; no stale digest is left in the array. */
static void acl__pass_clear(acl_user_t *u) {
  u->npass = 0;
  memset(u->pass, 0, sizeof u->pass);
}

static int acl__pass_find(const acl_user_t *u, const unsigned char *h) {
  for (size_t i = 0; i < u->npass; i++)
    if (memcmp(u->pass[i], h, ACL_HASH_LEN) == 0)
      return (int)i;
  return -1;
}

static int acl__pass_add(acl_user_t *u, const unsigned char *h, char *errbuf) {
  if (acl__pass_find(u, h) >= 0) {
    u->nopass = false;
    return 0;
  }
  if (u->npass >= ACL_PASS_MAX)
    return recd_errf(errbuf, RECD_ERANGE, "more than %d passwords", ACL_PASS_MAX);
  memcpy(u->pass[u->npass++], h, ACL_HASH_LEN);
  u->nopass = false; /* as in Redis: a password ends nopass */
  return 0;
}

static int acl__pass_del(acl_user_t *u, const unsigned char *h, const char *rule, char *errbuf) {
  int i = acl__pass_find(u, h);
  if (i < 0) /* Redis's own check: removing what is not there is a mistake */
    return recd_errf(errbuf, RECD_EINVAL, "'%s': the user has no such password", rule);
  memmove(u->pass[i], u->pass[i + 1], (u->npass - (size_t)i - 1) * ACL_HASH_LEN);
  u->npass--;
  memset(u->pass[u->npass], 0, ACL_HASH_LEN);
  return 0;
}

/* The mask of a command rule's name ("model", "model|reload", "@read"),
 * lower-cased into canon. */
static int acl__rule_mask(const char *s, size_t len, char sign, char *canon, uint64_t *mask,
                          char *errbuf) {
  char show[ACL__SHOW_BUF];
  acl__show(show, s, len);
  if (len > 64)
    return recd_errf(errbuf, RECD_EINVAL, "unknown command in rule '%c%s'", sign, show);
  for (size_t i = 0; i < len; i++)
    canon[i] = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
  canon[len] = '\0';
  if (canon[0] == '@') {
    for (size_t i = 0; i < sizeof acl__cats / sizeof acl__cats[0]; i++)
      if (strcmp(canon + 1, acl__cats[i].name) == 0) {
        *mask = strcmp(acl__cats[i].name, "all") == 0 ? ACL__ALL
                                                       : acl__mask_cat(acl__cats[i].bits);
        return 0;
      }
    return recd_errf(errbuf, RECD_EINVAL, "unknown category in rule '%c%s' (categories: "
                     "@read @write @monitor @admin @connection @all)", sign, show);
  }
  char *bar = strchr(canon, '|');
  if (bar != NULL)
    *bar = '\0';
  const char *sub = bar != NULL ? bar + 1 : NULL;
  uint64_t m = 0;
  int known = 0;
  for (size_t i = 0; i < ACL__NUNITS; i++) {
    if (strcmp(acl__units[i].cmd, canon) != 0)
      continue;
    known = 1;
    if (sub == NULL || (acl__units[i].sub != NULL && strcmp(acl__units[i].sub, sub) == 0))
      m |= 1ull << i;
  }
  if (bar != NULL)
    *bar = '|';
  if (!known) {
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < ACL__NUNITS; i++) {
      size_t d = acl__distance(s, bar != NULL ? (size_t)(bar - canon) : len, acl__units[i].cmd);
      if (d < bd) {
        bd = d;
        best = acl__units[i].cmd;
      }
    }
    if (best != NULL)
      return recd_errf(errbuf, RECD_EINVAL, "unknown command in rule '%c%s' (did you mean "
                       "'%c%s'?)", sign, show, sign, best);
    return recd_errf(errbuf, RECD_EINVAL, "unknown command in rule '%c%s'", sign, show);
  }
  if (m == 0) /* a subcommand the command does not have, or one it has none of */
    return recd_errf(errbuf, RECD_EINVAL, "unknown subcommand in rule '%c%s'", sign, show);
  *mask = m;
  return 0;
}

static int acl__rule_push(acl_user_t *u, char sign, const char *canon, char *errbuf) {
  if (u->nrules >= ACL_RULES_MAX)
    return recd_errf(errbuf, RECD_ERANGE, "more than %d command rules", ACL_RULES_MAX);
  size_t n = strlen(canon);
  char *r = malloc(n + 2);
  if (r == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  r[0] = sign;
  memcpy(r + 1, canon, n + 1);
  u->rules[u->nrules++] = r;
  return 0;
}

/* +@all / -@all: everything before is overridden, so the list starts over
 * (ACL LIST stays short however many times a file says it). */
static int acl__all(acl_user_t *u, char sign, char *errbuf) {
  acl__rules_clear(u);
  u->allowed = sign == '+' ? ACL__ALL : 0;
  return acl__rule_push(u, sign, "@all", errbuf);
}

static int acl__word(const char *rule, size_t len, const char *w) {
  return strlen(w) == len && strncasecmp(rule, w, len) == 0;
}

int acl_user_apply(acl_user_t *u, const char *rule, size_t len, char *errbuf) {
  char show[ACL__SHOW_BUF];
  if (len == 0)
    return recd_errf(errbuf, RECD_EINVAL, "empty rule");
  if (acl__word(rule, len, "on") || acl__word(rule, len, "off")) {
    u->on = len == 2;
    return 0;
  }
  if (acl__word(rule, len, "nopass")) {
    u->nopass = true;
    acl__pass_clear(u);
    return 0;
  }
  if (acl__word(rule, len, "resetpass")) {
    u->nopass = false;
    acl__pass_clear(u);
    return 0;
  }
  if (acl__word(rule, len, "allcommands"))
    return acl__all(u, '+', errbuf);
  if (acl__word(rule, len, "nocommands"))
    return acl__all(u, '-', errbuf);
  if (acl__word(rule, len, "reset")) {
    u->nopass = false;
    acl__pass_clear(u);
    u->on = false;
    acl__rules_clear(u);
    u->allowed = 0;
    return 0;
  }
  if (acl__word(rule, len, "allkeys") || acl__word(rule, len, "resetkeys") ||
      acl__word(rule, len, "allchannels") || acl__word(rule, len, "resetchannels") ||
      acl__word(rule, len, "~*") || acl__word(rule, len, "&*"))
    return 0; /* recd has no keys or channels: the rule is true of every user */
  switch (rule[0]) {
  case '>':
  case '<': {
    if (len == 1)
      return recd_errf(errbuf, RECD_EINVAL, "empty password in rule '%c' (use nopass for "
                       "a user without a password)", rule[0]);
    unsigned char h[ACL_HASH_LEN];
    if (acl_sha256(rule + 1, len - 1, h) != 0)
      return recd_errf(errbuf, RECD_ENOMEM, "SHA-256 failed");
    /* never show the password itself */
    return rule[0] == '>' ? acl__pass_add(u, h, errbuf) : acl__pass_del(u, h, "<...", errbuf);
  }
  case '#':
  case '!': {
    acl__show(show, rule, len);
    unsigned char h[ACL_HASH_LEN];
    if (len != 1 + 2 * ACL_HASH_LEN)
      return recd_errf(errbuf, RECD_EINVAL, "'%s': expected %c and the 64 hex digits of a "
                       "SHA-256", show, rule[0]);
    for (size_t i = 0; i < ACL_HASH_LEN; i++) {
      int hi = acl__hexval(rule[1 + 2 * i]), lo = acl__hexval(rule[2 + 2 * i]);
      if (hi < 0 || lo < 0)
        return recd_errf(errbuf, RECD_EINVAL, "'%s': expected %c and the 64 hex digits of a "
                         "SHA-256", show, rule[0]);
      h[i] = (unsigned char)(hi * 16 + lo);
    }
    return rule[0] == '#' ? acl__pass_add(u, h, errbuf) : acl__pass_del(u, h, show, errbuf);
  }
  case '~':
  case '%':
  case '&':
    acl__show(show, rule, len);
    return recd_errf(errbuf, RECD_EINVAL, "'%s': recd has no keys or channels; only ~*, &*, "
                     "allkeys and allchannels are accepted", show);
  case '+':
  case '-': {
    char canon[72];
    uint64_t m = 0;
    int err = acl__rule_mask(rule + 1, len - 1, rule[0], canon, &m, errbuf);
    if (err != 0)
      return err;
    if (strcmp(canon, "@all") == 0)
      return acl__all(u, rule[0], errbuf);
    uint64_t conn = acl__mask_cat(ACL_CAT_CONNECTION);
    if (rule[0] == '-' && (m & ~conn) == 0) {
      acl__show(show, rule, len);
      return recd_errf(errbuf, RECD_EINVAL, "'%s': @connection commands (PING, AUTH, HELLO, "
                       "QUIT, ACL WHOAMI, ...) are always allowed", show);
    }
    err = acl__rule_push(u, rule[0], canon, errbuf);
    if (err != 0)
      return err;
    if (rule[0] == '+')
      u->allowed |= m;
    else
      u->allowed &= ~m;
    return 0;
  }
  default:
    break;
  }
  acl__show(show, rule, len);
  return recd_errf(errbuf, RECD_EINVAL, "unknown rule '%s' (expected on, off, >password, "
                   "<password, #sha256, !sha256, nopass, resetpass, reset, +@category, "
                   "-@category, +command, -command, +command|sub, allcommands, nocommands)",
                   show);
}

int acl_user_parse(acl_user_t *u, int n, const char *const *tok, const size_t *len,
                   char *errbuf) {
  if (n < 1)
    return recd_errf(errbuf, RECD_EINVAL, "expected a user name and its rules");
  char msg[RECD_ERRLEN];
  int err = acl_user_init(u, tok[0], len[0], msg);
  if (err != 0)
    return recd_errf(errbuf, err, "%s", msg);
  for (int i = 1; i < n; i++) {
    err = acl_user_apply(u, tok[i], len[i], msg);
    if (err != 0) {
      recd_errf(errbuf, err, "user '%s': %.200s", u->name, msg);
      acl_user_free(u);
      return err;
    }
  }
  return 0;
}

char *acl_user_describe(const acl_user_t *u) {
  size_t size = strlen(u->name) + 16 + u->npass * (2 + 2 * ACL_HASH_LEN) + 16;
  for (size_t i = 0; i < u->nrules; i++)
    size += strlen(u->rules[i]) + 1;
  char *out = malloc(size);
  if (out == NULL)
    return NULL;
  size_t o = (size_t)snprintf(out, size, "%s %s", u->name, u->on ? "on" : "off");
  if (u->nopass)
    o += (size_t)snprintf(out + o, size - o, " nopass");
  for (size_t i = 0; i < u->npass; i++) {
    o += (size_t)snprintf(out + o, size - o, " #");
    for (size_t j = 0; j < ACL_HASH_LEN; j++)
      o += (size_t)snprintf(out + o, size - o, "%02x", u->pass[i][j]);
  }
  if (u->nrules == 0)
    o += (size_t)snprintf(out + o, size - o, " -@all");
  for (size_t i = 0; i < u->nrules; i++)
    o += (size_t)snprintf(out + o, size - o, " %s", u->rules[i]);
  return out;
}

/* ---- rule sets ----------------------------------------------------------- */

void acl_users_free(acl_users_t *s) {
  if (s == NULL)
    return;
  for (size_t i = 0; i < s->n; i++)
    acl_user_free(&s->u[i]);
  free(s->u);
  s->u = NULL;
  s->n = 0;
}

acl_user_t *acl_users_find(const acl_users_t *s, const char *name, size_t len) {
  for (size_t i = 0; i < s->n; i++)
    if (strlen(s->u[i].name) == len && memcmp(s->u[i].name, name, len) == 0)
      return &s->u[i];
  return NULL;
}

/* Room for one more user (grown by doubling). */
static acl_user_t *acl__users_slot(acl_users_t *s, size_t *cap) {
  if (s->n == *cap) {
    size_t ncap = *cap ? 2 * *cap : 8;
    acl_user_t *nu = realloc(s->u, ncap * sizeof *nu);
    if (nu == NULL)
      return NULL;
    s->u = nu;
    *cap = ncap;
  }
  return &s->u[s->n];
}

/* The implicit default user, when no line names it. */
static int acl__add_default(acl_users_t *s, size_t *cap, char *errbuf) {
  if (acl_users_find(s, "default", 7) != NULL)
    return 0;
  acl_user_t *u = acl__users_slot(s, cap);
  if (u == NULL || acl_user_init(u, "default", 7, errbuf) != 0)
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  u->on = true;
  u->implicit = true;
  s->n++;
  if (acl__all(u, '+', errbuf) != 0)
    return RECD_ENOMEM;
  return 0;
}

/* Adds the user of one line (tokens after `user`); where prefixes errors. */
static int acl__users_add(acl_users_t *s, size_t *cap, int n, const char *const *tok,
                          const size_t *len, const char *where, char *errbuf) {
  char msg[RECD_ERRLEN];
  if (s->n >= ACL_USERS_MAX)
    return recd_errf(errbuf, RECD_ERANGE, "%smore than %d users", where, ACL_USERS_MAX);
  if (n >= 1 && acl_users_find(s, tok[0], len[0]) != NULL) {
    char show[ACL__SHOW_BUF];
    acl__show(show, tok[0], len[0]);
    return recd_errf(errbuf, RECD_EINVAL, "%suser '%s' is defined twice", where, show);
  }
  acl_user_t *u = acl__users_slot(s, cap);
  if (u == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "%sout of memory", where);
  int err = acl_user_parse(u, n, tok, len, msg);
  if (err != 0)
    return recd_errf(errbuf, err, "%s%.200s", where, msg);
  s->n++;
  return 0;
}

int acl_users_from_lines(acl_users_t *out, size_t n, char *const *lines, char *errbuf) {
  memset(out, 0, sizeof *out);
  size_t cap = 0;
  int err = 0;
  for (size_t i = 0; i < n && err == 0; i++) {
    /* The stored form has no quotes and single blanks (acl_user_describe). */
    char *copy = strdup(lines[i]);
    if (copy == NULL) {
      err = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
      break;
    }
    const char *tok[2 + ACL_PASS_MAX + ACL_RULES_MAX + 8];
    size_t len[2 + ACL_PASS_MAX + ACL_RULES_MAX + 8];
    int nt = 0;
    for (char *save = NULL, *t = strtok_r(copy, " ", &save); t != NULL;
         t = strtok_r(NULL, " ", &save)) {
      if (nt == (int)(sizeof tok / sizeof tok[0])) {
        nt = -1;
        break;
      }
      tok[nt] = t;
      len[nt++] = strlen(t);
    }
    err = nt < 0 ? recd_errf(errbuf, RECD_ERANGE, "user: too many rules")
                 : acl__users_add(out, &cap, nt, tok, len, "user: ", errbuf);
    free(copy);
  }
  if (err == 0)
    err = acl__add_default(out, &cap, errbuf);
  if (err != 0)
    acl_users_free(out);
  return err;
}

/* Splits [p, end) like recd.conf lines (and Redis's sdssplitargs): blanks
 * separate, "double quotes" take \" \\ \n \r \t \xHH, 'single quotes' take
 * \'. Tokens are written NUL-terminated to out (end - p + 1 bytes). */
static int acl__split(const char *p, const char *end, char *out, const char **tok,
                      size_t *tlen, int max, int *ntok, const char **why) {
  int n = 0;
  char *o = out;
  for (;;) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
      p++;
    if (p == end)
      break;
    char *start = o;
    char q = 0;
    if (*p == '"' || *p == '\'')
      q = *p++;
    for (;;) {
      if (p == end) {
        if (q) {
          *why = "unterminated quoted string";
          return -1;
        }
        break;
      }
      if (!q && (*p == ' ' || *p == '\t' || *p == '\r'))
        break;
      if (q && *p == q) {
        p++;
        if (p < end && *p != ' ' && *p != '\t' && *p != '\r') {
          *why = "closing quote must be followed by a blank";
          return -1;
        }
        break;
      }
      if (q == '"' && *p == '\\' && end - p >= 4 && p[1] == 'x' && acl__hexval(p[2]) >= 0 &&
          acl__hexval(p[3]) >= 0) {
        *o++ = (char)(acl__hexval(p[2]) * 16 + acl__hexval(p[3]));
        p += 4;
      } else if (q == '"' && *p == '\\' && end - p >= 2) {
        char c = p[1];
        *o++ = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
        p += 2;
      } else if (q == '\'' && *p == '\\' && end - p >= 2 && p[1] == '\'') {
        *o++ = '\'';
        p += 2;
      } else {
        *o++ = *p++;
      }
    }
    if (n >= max) {
      *why = "too many rules on one line";
      return -1;
    }
    tok[n] = start;
    tlen[n] = (size_t)(o - start);
    *o++ = '\0';
    n++;
  }
  *ntok = n;
  return 0;
}

int acl_users_parse(acl_users_t *out, const char *buf, size_t len, const char *name,
                    char *errbuf) {
  memset(out, 0, sizeof *out);
  char *scratch = malloc(len + 1);
  if (scratch == NULL)
    return recd_errf(errbuf, RECD_ENOMEM, "%s: out of memory", name);
  size_t cap = 0, pos = 0, lineno = 0;
  int err = 0;
  enum { MAXTOK = 2 + ACL_PASS_MAX + ACL_RULES_MAX + 8 };
  while (pos < len && err == 0) {
    const char *line = buf + pos;
    const char *nl = memchr(line, '\n', len - pos);
    const char *end = nl != NULL ? nl : buf + len;
    pos = (size_t)(end - buf) + (nl != NULL);
    lineno++;
    const char *p = line;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
      p++;
    if (p == end || *p == '#')
      continue;
    char where[RECD_ERRLEN];
    snprintf(where, sizeof where, "%.150s:%zu: ", name, lineno);
    const char *tok[MAXTOK];
    size_t tlen[MAXTOK];
    int n;
    const char *why;
    if (memchr(p, '\0', (size_t)(end - p)) != NULL) {
      err = recd_errf(errbuf, RECD_EFORMAT, "%sNUL byte", where);
    } else if (acl__split(p, end, scratch, tok, tlen, MAXTOK, &n, &why) != 0) {
      err = recd_errf(errbuf, RECD_EFORMAT, "%s%s", where, why);
    } else if (!acl__word(tok[0], tlen[0], "user")) {
      char show[ACL__SHOW_BUF];
      acl__show(show, tok[0], tlen[0]);
      err = recd_errf(errbuf, RECD_EFORMAT, "%sexpected 'user <name> [rule ...]', got '%s'",
                      where, show);
    } else {
      err = acl__users_add(out, &cap, n - 1, tok + 1, tlen + 1, where, errbuf);
    }
  }
  free(scratch);
  if (err == 0)
    err = acl__add_default(out, &cap, errbuf);
  if (err != 0)
    acl_users_free(out);
  return err;
}

int acl_users_load(acl_users_t *out, const char *path, char *errbuf) {
  memset(out, 0, sizeof *out);
  FILE *fp = fopen(path, "rb");
  if (fp == NULL)
    return recd_errf(errbuf, RECD_EIO, "cannot open aclfile '%.150s': %s", path,
                     strerror(errno));
  char *buf = malloc((size_t)ACL_FILE_MAX + 1);
  if (buf == NULL) {
    fclose(fp);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  size_t len = fread(buf, 1, (size_t)ACL_FILE_MAX + 1, fp);
  int rerr = ferror(fp) ? errno : 0;
  fclose(fp);
  int err;
  if (rerr != 0)
    err = recd_errf(errbuf, RECD_EIO, "cannot read aclfile '%.150s': %s", path,
                    strerror(rerr));
  else if (len > ACL_FILE_MAX)
    err = recd_errf(errbuf, RECD_ERANGE, "aclfile '%.150s' is larger than %u bytes", path,
                    ACL_FILE_MAX);
  else
    err = acl_users_parse(out, buf, len, path, errbuf);
  OPENSSL_cleanse(buf, len < ACL_FILE_MAX ? len : ACL_FILE_MAX); /* >password rules */
  free(buf);
  return err;
}

/* ---- authentication ------------------------------------------------------- */

acl_user_t *acl_authenticate(const acl_users_t *s, const char *requirepass, const char *user,
                             size_t ulen, const char *pass, size_t plen) {
  unsigned char h[ACL_HASH_LEN];
  if (acl_sha256(pass, plen, h) != 0)
    return NULL;
  acl_user_t *u = user != NULL ? acl_users_find(s, user, ulen) : acl_users_find(s, "default", 7);
  if (u == NULL || !u->on)
    return NULL;
  if (u->implicit) {
    if (requirepass == NULL || requirepass[0] == '\0')
      return u;
    unsigned char want[ACL_HASH_LEN];
    if (acl_sha256(requirepass, strlen(requirepass), want) != 0)
      return NULL;
    return CRYPTO_memcmp(h, want, ACL_HASH_LEN) == 0 ? u : NULL;
  }
  if (u->nopass)
    return u;
  int ok = 0;
  for (size_t i = 0; i < u->npass; i++) /* no early exit */
    ok |= CRYPTO_memcmp(h, u->pass[i], ACL_HASH_LEN) == 0;
  return ok ? u : NULL;
}

bool acl_default_open(const acl_users_t *s, const char *requirepass) {
  const acl_user_t *d = acl_users_find(s, "default", 7);
  if (d == NULL || !d->on)
    return false;
  return d->implicit ? (requirepass == NULL || requirepass[0] == '\0') : d->nopass;
}
