/* acl_cmd.c - access control in the daemon (see acl_cmd.h) and the ACL
 * command:
 *
 *   ACL WHOAMI   the caller's user (always allowed)
 *   ACL LIST     every user as a rule line, passwords as #<sha256>
 *   ACL USERS    the user names
 *   ACL LOAD     re-reads the aclfile: the whole file or nothing (an
 *                invalid file is refused with its line, the rules in force
 *                stay)
 *   ACL HELP
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl_cmd.h"
#include "commands.h"
#include "log.h"
#include "server.h"

/* client_t.acl_logged bits: what was logged for this client already. */
#define ACL_CMD__LOGGED_NOPERM 1u
#define ACL_CMD__LOGGED_AUTH 2u

int acl_setup(const config_t *cfg, acl_users_t *out, char *errbuf) {
  memset(out, 0, sizeof *out);
  if (cfg->users.n > 0 && cfg->aclfile[0] != '\0')
    return recd_errf(errbuf, RECD_EINVAL, "user lines and aclfile are exclusive (as in "
                     "Redis): define every user in %.150s, or drop aclfile", cfg->aclfile);
  int err = cfg->aclfile[0] != '\0'
                ? acl_users_load(out, cfg->aclfile, errbuf)
                : acl_users_from_lines(out, cfg->users.n, cfg->users.line, errbuf);
  if (err != 0)
    return err;
  const acl_user_t *d = acl_users_find(out, "default", 7);
  if (d != NULL && !d->implicit && cfg->requirepass[0] != '\0') {
    acl_users_free(out);
    /* Two sources for one password would leave the operator guessing which
     * one AUTH takes. */
    return recd_errf(errbuf, RECD_EINVAL, "requirepass and the rule line of user default "
                     "both set the default user's password: keep one (a >password rule of "
                     "user default, or requirepass without a user default line)");
  }
  return 0;
}

void acl_warn_open_default(const acl_users_t *users, const config_t *cfg) {
  const acl_user_t *d = acl_users_find(users, "default", 7);
  if (users->n > 1 && d != NULL && d->implicit && acl_default_open(users, cfg->requirepass))
    log_warning("%zu ACL users are defined, but the default user is on without a password and "
                "may run every command: clients that do not AUTH bypass them; add 'user "
                "default off' (or a requirepass)", users->n - 1);
}

void acl_client_init(client_t *c) {
  const acl_users_t *us = &c->srv->acl.users;
  c->user = acl_users_find(us, "default", 7);
  if (acl_default_open(us, c->srv->cfg->requirepass))
    c->flags |= CLIENT_AUTHED;
}

const char *acl_client_user(const client_t *c) {
  return c->user != NULL ? c->user->name : "default";
}

int acl_auth(client_t *c, const char *user, size_t ulen, const char *pass, size_t plen,
             reply_buf_t *r) {
  server_t *s = c->srv;
  /* Redis's answer to AUTH <password> when the default user takes none:
   * most likely a client configured for another server. */
  if (user == NULL && acl_default_open(&s->acl.users, s->cfg->requirepass)) {
    reply_error(r, "AUTH <password> called without any password configured for the default "
                   "user. Are you sure your configuration is correct?");
    return -1;
  }
  acl_user_t *u = acl_authenticate(&s->acl.users, s->cfg->requirepass, user, ulen, pass, plen);
  if (u == NULL) {
    s->acl.denied_auth++;
    if (!(c->acl_logged & ACL_CMD__LOGGED_AUTH)) {
      c->acl_logged |= ACL_CMD__LOGGED_AUTH;
      char name[4 * 32 + 1];
      log_sanitize(name, user != NULL ? user : "default", user != NULL ? ulen : 7, 32);
      log_notice("client %llu (%s): AUTH as '%s' refused (wrong password, unknown or "
                 "disabled user); logged once per client, INFO acl_denied_auth counts all",
                 (unsigned long long)c->id, c->addr, name);
    }
    reply_error(r, "-WRONGPASS invalid username-password pair or user is disabled.");
    return -1;
  }
  c->user = u;
  c->flags |= CLIENT_AUTHED;
  return 0;
}

int acl_permit(client_t *c, int id, const resp_cmd_t *a) {
  const char *sub = a->argc >= 2 ? a->argv[1] : NULL;
  size_t sublen = a->argc >= 2 ? a->argvlen[1] : 0;
  if (acl_allowed(c->user, id, sub, sublen))
    return 1;
  server_t *s = c->srv;
  s->acl.denied_commands++;
  /* Redis 7's name of what was refused: "model|reload" for a subcommand
   * the table knows, else the command. */
  char what[2 * (4 * 32 + 1) + 2], cmd[4 * 32 + 1];
  log_sanitize(cmd, a->argv[0], a->argvlen[0], 32);
  for (char *p = cmd; *p; p++)
    *p = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
  snprintf(what, sizeof what, "%s", cmd);
  if (sub != NULL && sublen < 32) {
    char low[32];
    for (size_t i = 0; i < sublen; i++)
      low[i] = sub[i] >= 'A' && sub[i] <= 'Z' ? (char)(sub[i] - 'A' + 'a') : sub[i];
    low[sublen] = '\0';
    if (memchr(sub, '\0', sublen) == NULL && acl_category_of(cmd, low) != 0)
      snprintf(what, sizeof what, "%s|%s", cmd, low);
  }
  if (!(c->acl_logged & ACL_CMD__LOGGED_NOPERM)) {
    c->acl_logged |= ACL_CMD__LOGGED_NOPERM;
    log_notice("client %llu (%s) user '%s': no permission to run '%s' (logged once per "
               "client; INFO acl_denied_commands counts all)",
               (unsigned long long)c->id, c->addr, acl_client_user(c), what);
  }
  reply_buf_t *r = client_reply(c);
  if (r != NULL)
    reply_errorf(r, "-NOPERM this user has no permissions to run the '%s' command", what);
  return 0;
}

/* ---- ACL ----------------------------------------------------------------- */

static void acl_cmd__list(client_t *c, reply_buf_t *r) {
  const acl_users_t *us = &c->srv->acl.users;
  reply_array(r, us->n);
  for (size_t i = 0; i < us->n; i++) {
    char *line = acl_user_describe(&us->u[i]);
    if (line == NULL) {
      reply_bulk_cstr(r, "user ? (out of memory)");
      continue;
    }
    size_t n = strlen(line);
    char *full = malloc(n + 6);
    if (full != NULL) {
      memcpy(full, "user ", 5);
      memcpy(full + 5, line, n + 1);
      reply_bulk_cstr(r, full);
    } else {
      reply_bulk_cstr(r, "user ? (out of memory)");
    }
    free(full);
    free(line);
  }
}

/* After ACL LOAD: every client to its user of the new set, by name; one
 * whose user is gone, or off while it is authenticated as it, is killed.
 * Runs before the old set is freed (the names are read from it). */
static void acl_cmd__rebind(server_t *s, const acl_users_t *fresh) {
  acl_user_t *def = acl_users_find(fresh, "default", 7);
  for (client_t *c = s->clients; c != NULL; c = c->next) {
    const char *name = acl_client_user(c);
    acl_user_t *u = acl_users_find(fresh, name, strlen(name));
    int authed = (c->flags & CLIENT_AUTHED) != 0;
    if (u == NULL || (!u->on && authed)) {
      if (client_kill(c) == 0)
        log_notice("client %llu (%s): user '%s' %s by ACL LOAD: closing", (unsigned long long)c->id,
                   c->addr, name, u == NULL ? "removed" : "disabled");
      c->user = def;
    } else {
      c->user = u;
    }
  }
}

static void acl_cmd__load(client_t *c, reply_buf_t *r) {
  server_t *s = c->srv;
  if (s->cfg->aclfile[0] == '\0') {
    reply_error(r, "This instance is not configured to use an ACL file: set aclfile in "
                   "recd.conf (its users then replace the user lines) and restart");
    return;
  }
  acl_users_t fresh;
  char err[RECD_ERRLEN];
  if (acl_setup(s->cfg, &fresh, err) != 0) {
    log_warning("ACL LOAD refused, the rules in force stay: %s", err);
    reply_errorf(r, "ACL LOAD: %s (the rules in force stay)", err);
    return;
  }
  acl_cmd__rebind(s, &fresh);
  acl_users_free(&s->acl.users);
  s->acl.users = fresh;
  log_notice("ACL LOAD: %zu users from %s", fresh.n, s->cfg->aclfile);
  reply_simple(r, "OK");
}

void acl_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r == NULL)
    return;
  const char *sub = a->argv[1];
  if (strcasecmp(sub, "whoami") == 0 && a->argc == 2) {
    reply_bulk_cstr(r, acl_client_user(c));
  } else if (strcasecmp(sub, "list") == 0 && a->argc == 2) {
    acl_cmd__list(c, r);
  } else if (strcasecmp(sub, "users") == 0 && a->argc == 2) {
    const acl_users_t *us = &c->srv->acl.users;
    reply_array(r, us->n);
    for (size_t i = 0; i < us->n; i++)
      reply_bulk_cstr(r, us->u[i].name);
  } else if (strcasecmp(sub, "load") == 0 && a->argc == 2) {
    acl_cmd__load(c, r);
  } else if (strcasecmp(sub, "help") == 0 && a->argc == 2) {
    static const char *const help[] = {
        "ACL <subcommand>. Subcommands are:",
        "WHOAMI",
        "    Return the current connection username.",
        "LIST",
        "    Show users as rule lines (passwords as #<sha256>).",
        "USERS",
        "    List the user names.",
        "LOAD",
        "    Reload the users from the aclfile (all or nothing).",
        "HELP",
        "    Print this help.",
    };
    reply_array(r, sizeof help / sizeof help[0]);
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
      reply_simple(r, help[i]);
  } else {
    char tok[4 * 32 + 1];
    log_sanitize(tok, sub, a->argvlen[1], 32);
    reply_errorf(r, "unknown subcommand or wrong number of arguments for 'ACL|%s': expected "
                 "WHOAMI, LIST, USERS, LOAD or HELP", tok);
  }
}
