/* acl_fuzz.c - libFuzzer target for the ACL rule parser (src/daemon/acl.c).
 *
 * The input is aclfile text, fed to acl_users_parse(). Besides "no crash,
 * no leak, no UB", it checks:
 *  - a file that parses has a `default` user and no name twice;
 *  - every user's acl_user_describe() line parses back to a user that
 *    describes the same, allows exactly the same commands, and takes the
 *    same passwords (ACL LIST and recd.conf's stored user lines rely on it);
 *  - a refused file leaves an empty set.
 * An input starting with "RULES\n" is instead split at NUL bytes into the
 * tokens of one user line (name, rules) for acl_user_parse(), binary
 * passwords included, with the same round-trip check.
 *
 * Build: cmake -DRECD_FUZZ=ON with clang (scripts/fuzz.sh), then
 *   ./build-fuzz/acl_fuzz tests/fuzz/corpus/acl
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "recd/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every unit plus an unknown subcommand of each command with some. */
static void same_rights(const acl_user_t *a, const acl_user_t *b) {
  static const char *const cmds[] = {"recommend", "model", "config", "client", "acl",
                                     "experiment", "info", "ping", "feedback"};
  static const char *const subs[] = {NULL, "info", "reload", "get", "set", "kill", "list",
                                     "load", "whoami", "reset", "report", "nope"};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    for (size_t j = 0; j < sizeof subs / sizeof subs[0]; j++) {
      int id = acl_command_id(cmds[i]);
      size_t len = subs[j] ? strlen(subs[j]) : 0;
      if (acl_allowed(a, id, subs[j], len) != acl_allowed(b, id, subs[j], len))
        abort();
    }
  if (a->on != b->on || a->nopass != b->nopass || a->npass != b->npass ||
      a->allowed != b->allowed || memcmp(a->pass, b->pass, a->npass * sizeof a->pass[0]) != 0)
    abort();
}

static void round_trip(const acl_user_t *u) {
  char *d = acl_user_describe(u);
  if (d == NULL)
    abort();
  const char *tok[256];
  size_t len[256];
  int n = 0;
  char *copy = strdup(d);
  for (char *save = NULL, *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
    if (n == 256)
      abort();
    tok[n] = t;
    len[n++] = strlen(t);
  }
  acl_user_t v;
  char err[RECD_ERRLEN];
  if (acl_user_parse(&v, n, tok, len, err) != 0) {
    fprintf(stderr, "describe '%s' does not parse back: %s\n", d, err);
    abort();
  }
  char *d2 = acl_user_describe(&v);
  if (d2 == NULL || strcmp(d, d2) != 0)
    abort();
  same_rights(u, &v);
  free(d2);
  acl_user_free(&v);
  free(copy);
  free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[RECD_ERRLEN];
  if (size >= 6 && memcmp(data, "RULES\n", 6) == 0) {
    const char *tok[64];
    size_t len[64];
    int n = 0;
    const char *p = (const char *)data + 6, *end = (const char *)data + size;
    while (p <= end && n < 64) {
      const char *z = memchr(p, '\0', (size_t)(end - p));
      if (z == NULL)
        z = end;
      tok[n] = p;
      len[n++] = (size_t)(z - p);
      p = z + 1;
    }
    acl_user_t u;
    if (acl_user_parse(&u, n, tok, len, err) == 0) {
      round_trip(&u);
      acl_user_free(&u);
    }
    return 0;
  }
  acl_users_t s;
  if (acl_users_parse(&s, (const char *)data, size, "fuzz.acl", err) != 0) {
    if (s.n != 0 || s.u != NULL)
      abort();
    return 0;
  }
  if (acl_users_find(&s, "default", 7) == NULL)
    abort();
  for (size_t i = 0; i < s.n; i++) {
    for (size_t j = 0; j < i; j++)
      if (strcmp(s.u[i].name, s.u[j].name) == 0)
        abort();
    round_trip(&s.u[i]);
    /* AUTH with bytes of the input must neither crash nor pass a user that is off */
    acl_user_t *who = acl_authenticate(&s, "", s.u[i].name, strlen(s.u[i].name),
                                       (const char *)data, size > 16 ? 16 : size);
    if (who != NULL && !who->on)
      abort();
  }
  acl_users_free(&s);
  return 0;
}
