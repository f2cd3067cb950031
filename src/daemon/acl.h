/* acl.h - users and permissions in the style of Redis ACL (issue 17,
 * DESIGN.md "Access control"): the rule parser, the user table, the
 * command categories and the password check.
 *
 * A user is a line of rules, as in Redis:
 *
 *   user <name> [rule ...]
 *
 * Rules (a documented subset of Redis 7's, applied left to right):
 *   on | off              the user may | may not authenticate
 *   ><password>           adds a password (several allowed)
 *   <<password>           removes a password
 *   #<sha256 hex>         adds a password by its SHA-256 (64 hex digits)
 *   !<sha256 hex>         removes a password by its SHA-256
 *   nopass                any password is accepted (forgets the passwords)
 *   resetpass             forgets the passwords and nopass
 *   +@<category> -@<category>
 *   +<command> -<command>           every subcommand of it
 *   +<command>|<sub> -<command>|<sub>  one subcommand (Redis 7 style)
 *   allcommands = +@all, nocommands = -@all
 *   ~* allkeys resetkeys &* allchannels resetchannels
 *                         accepted for rules copied from Redis; recd has
 *                         no keys or channels (any other pattern is an
 *                         error rather than a rule that silently means
 *                         nothing)
 *   reset                 resetpass, off, -@all
 * A new user starts off, without passwords, with no command.
 *
 * Categories: @read (RECOMMEND RANK SIMILAR, MODEL CATEGORIES), @write
 * (FEEDBACK MERGE), @monitor (INFO, MODEL INFO, EXPERIMENT REPORT, CLIENT
 * LIST, CONFIG GET), @admin (MODEL RELOAD ROLLBACK PIN UNPIN, CONFIG SET
 * RESETSTAT, CLIENT KILL, EXPERIMENT RESET, ACL LIST USERS LOAD),
 * @connection (PING ECHO QUIT AUTH HELLO COMMAND, CLIENT ID INFO GETNAME
 * SETNAME SETINFO HELP, CONFIG HELP, ACL WHOAMI HELP): what a connection
 * needs about itself, always allowed to every user (a `-` rule naming one
 * is an error), and @all. Every command and subcommand of commands.c has
 * exactly one category (tests/unit/test_acl.c fails otherwise); a
 * subcommand the table does not know needs every subcommand of its
 * command (the handler then refuses it).
 *
 * The default user: when no rule line names `default`, recd makes it: on,
 * +@all, its password requirepass (nopass when requirepass is empty), read
 * at each AUTH so that CONFIG SET requirepass applies at once. A line
 * naming `default` replaces it (requirepass must then be empty).
 *
 * Passwords are kept only as SHA-256 digests (OpenSSL's EVP) and compared
 * with CRYPTO_memcmp, so the time an AUTH takes does not depend on how
 * much of a guess was right.
 *
 * The module is a leaf (no loop, no sockets): the rules, the table and the
 * checks are tested and fuzzed alone.
 */
#ifndef RECD_DAEMON_ACL_H
#define RECD_DAEMON_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACL_NAME_MAX 128        /* bytes of a user name */
#define ACL_PASS_MAX 16         /* passwords of one user */
#define ACL_USERS_MAX 1024      /* users of one rule set */
#define ACL_RULES_MAX 128       /* command rules kept per user (ACL LIST) */
#define ACL_FILE_MAX (1u << 20) /* bytes of an aclfile */
#define ACL_HASH_LEN 32         /* SHA-256 */

/* Categories (bits). */
enum {
  ACL_CAT_READ = 1u << 0,
  ACL_CAT_WRITE = 1u << 1,
  ACL_CAT_MONITOR = 1u << 2,
  ACL_CAT_ADMIN = 1u << 3,
  ACL_CAT_CONNECTION = 1u << 4
};

typedef struct acl_user {
  char *name;
  bool on;
  bool nopass;
  bool implicit;      /* the default user recd made: password = requirepass */
  size_t npass;
  unsigned char pass[ACL_PASS_MAX][ACL_HASH_LEN];
  uint64_t allowed;   /* one bit per command unit (acl.c's table) */
  /* the command rules in order, for ACL LIST; +@all / -@all start over */
  size_t nrules;
  char *rules[ACL_RULES_MAX];
} acl_user_t;

/* A rule set: the users of recd.conf's lines or of an aclfile, `default`
 * always among them. */
typedef struct acl_users {
  size_t n;
  acl_user_t *u;
} acl_users_t;

/* The daemon's access control: the rule set in force (ACL LOAD replaces
 * it) and INFO's counters. */
typedef struct acl {
  acl_users_t users;
  uint64_t denied_commands; /* NOPERM replies */
  uint64_t denied_auth;     /* AUTH / HELLO AUTH refused */
} acl_t;

/* Rule parsing. Errors name the culprit: "user 'web': unknown rule
 * '+recomend' (did you mean '+recommend'?)". */

/* A fresh user `name` (off, no password, no command). 0, RECD_EINVAL (a
 * bad name) or RECD_ENOMEM. */
int acl_user_init(acl_user_t *u, const char *name, size_t len, char *errbuf);
void acl_user_free(acl_user_t *u);
/* Applies one rule. 0, or an error with u unchanged. */
int acl_user_apply(acl_user_t *u, const char *rule, size_t len, char *errbuf);
/* The user line's tokens after `user`: the name, then the rules. */
int acl_user_parse(acl_user_t *u, int n, const char *const *tok, const size_t *len,
                   char *errbuf);
/* The user as a rule line without `user ` ("web on #<hex> ~* +@read"),
 * which acl_user_parse reads back to the same user; passwords appear only
 * as their digests. Malloc'ed, NULL when out of memory. */
char *acl_user_describe(const acl_user_t *u);

/* Rule sets. */

/* Builds a set from rule lines as acl_user_describe writes them (recd.conf's
 * `user` lines, stored by config.c); `default` is added when no line names
 * it. "name" prefixes messages. 0 or an error; *out is then empty. */
int acl_users_from_lines(acl_users_t *out, size_t n, char *const *lines, char *errbuf);
/* Parses an aclfile: `user ...` lines, blank lines and '#' comments, split
 * like recd.conf lines (quotes). The whole file or nothing: errors name
 * the file and line ("users.acl:3: user 'web': unknown rule 'x'"); a user
 * named twice is an error. `default` is added when no line names it. */
int acl_users_parse(acl_users_t *out, const char *buf, size_t len, const char *name,
                    char *errbuf);
/* Reads and parses the file at path (at most ACL_FILE_MAX bytes). */
int acl_users_load(acl_users_t *out, const char *path, char *errbuf);
void acl_users_free(acl_users_t *s);
/* The user named name[0, len), or NULL. */
acl_user_t *acl_users_find(const acl_users_t *s, const char *name, size_t len);

/* Authentication: the user whose password this is, or NULL (unknown user,
 * user off, wrong password). requirepass is the implicit default user's
 * password. The password is hashed whatever the name, so a wrong user name
 * takes as long as a wrong password. */
acl_user_t *acl_authenticate(const acl_users_t *s, const char *requirepass, const char *user,
                             size_t ulen, const char *pass, size_t plen);
/* Whether a new connection is authenticated as `default` at once (it is on
 * and takes no password). */
bool acl_default_open(const acl_users_t *s, const char *requirepass);

/* Commands. */

/* The command's index in the table (resolve it once), or -1 when the
 * table does not know it. */
int acl_command_id(const char *name);
/* Whether u may run command `id` with first argument sub[0, len) (sub may
 * be NULL for no argument). Unknown ids are refused. */
bool acl_allowed(const acl_user_t *u, int id, const char *sub, size_t len);
/* Category bits of `name` / `name|sub` (lower case), 0 when unknown: for
 * the tests. */
unsigned acl_category_of(const char *name, const char *sub);
/* Calls fn for every unit of the table ("model", "reload" or NULL). */
void acl_units_foreach(void (*fn)(const char *cmd, const char *sub, unsigned cats, void *arg),
                       void *arg);

/* SHA-256 of data into out (ACL_HASH_LEN bytes). 0 or -1. */
int acl_sha256(const void *data, size_t len, unsigned char *out);

#endif
