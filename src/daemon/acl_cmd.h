/* acl_cmd.h - access control in the daemon: the rule set built from the
 * config, AUTH, the permission check of the dispatch, and the ACL command
 * (WHOAMI LIST USERS LOAD HELP). The rules themselves are acl.h's.
 *
 * A client is always bound to a user of the rule set in force
 * (client_t.user): `default` until it authenticates as another. ACL LOAD
 * replaces the set as a whole and binds every client to its user of the
 * new set by name; a client whose user is gone, or now off, is killed
 * (CLIENT KILL's graceful close: the replies it is owed are sent first).
 *
 * Denials are counted in INFO (acl_denied_commands, acl_denied_auth) and
 * logged once per client, so that a misconfigured storefront shows up in
 * the log without one line per request.
 */
#ifndef RECD_DAEMON_ACL_CMD_H
#define RECD_DAEMON_ACL_CMD_H

#include <stddef.h>

#include "acl.h"
#include "config.h"
#include "conn.h"

/* The rule set cfg describes: its aclfile, or its `user` lines (the two are
 * exclusive, as in Redis), plus the rule that requirepass and a `user
 * default` line do not both set the default user's password. 0, or an
 * error naming the file and line, or the keys; *out is then empty. Run by
 * main() at start and by --test-config. */
int acl_setup(const config_t *cfg, acl_users_t *out, char *errbuf);
/* Logs a warning when users are defined but the default user is on
 * without a password (no requirepass, no `user default` line): every
 * client is then `default` with every command, and the users restrict
 * nobody (Redis's behaviour too, but rarely what was meant). */
void acl_warn_open_default(const acl_users_t *users, const config_t *cfg);

/* conn_init(): binds c to `default`, authenticated when that user is on
 * and takes no password. */
void acl_client_init(client_t *c);
/* The name of c's user (CLIENT LIST's user=). */
const char *acl_client_user(const client_t *c);

/* AUTH [user] password, HELLO AUTH: binds c to the user, or replies the
 * error into r (-WRONGPASS as Redis, counted and logged once) and returns
 * -1. user NULL = `default`. */
int acl_auth(client_t *c, const char *user, size_t ulen, const char *pass, size_t plen,
             reply_buf_t *r);

/* The dispatch's check (after arity and AUTH): 1 when c's user may run the
 * command whose acl_command_id() is id with arguments a; else -NOPERM is
 * replied, counted and logged once per client, and 0 returned. */
int acl_permit(client_t *c, int id, const resp_cmd_t *a);

#endif
