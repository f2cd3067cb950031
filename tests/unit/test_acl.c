/* test_acl.c - the ACL rule parser, rule sets, password checks and the
 * command table (src/daemon/acl.c), the `user` key of recd.conf
 * (config.c), and that every command and subcommand the daemon has
 * (commands.c's table and its command reference) has a category: adding
 * a command without one fails here. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "acl_cmd.h"
#include "commands.h"
#include "config.h"
#include "testutil.h"

/* sha256("secret"), as `echo -n secret | sha256sum` prints it */
#define SECRET_HEX "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"

/* Parses "name rule rule ..." (blank-separated) into u; 0 or the error. */
static int parse(acl_user_t *u, const char *line, char *err) {
  char buf[2048];
  snprintf(buf, sizeof buf, "%s", line);
  const char *tok[128];
  size_t len[128];
  int n = 0;
  for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
    tok[n] = t;
    len[n++] = strlen(t);
  }
  return acl_user_parse(u, n, tok, len, err);
}

static bool can(const acl_user_t *u, const char *cmd, const char *sub) {
  return acl_allowed(u, acl_command_id(cmd), sub, sub ? strlen(sub) : 0);
}

START_TEST(test_categories) {
  acl_user_t u;
  char err[RECD_ERRLEN] = "";
  ck_assert_msg(parse(&u, "web on >secret +@read +@write", err) == 0, "%s", err);
  ck_assert(u.on);
  ck_assert(can(&u, "recommend", NULL) && can(&u, "RANK", NULL) && can(&u, "similar", NULL));
  ck_assert(can(&u, "feedback", NULL) && can(&u, "merge", NULL));
  ck_assert(can(&u, "model", "categories") && can(&u, "MODEL", "Categories"));
  ck_assert(!can(&u, "model", "info") && !can(&u, "model", "reload"));
  ck_assert(!can(&u, "info", NULL) && !can(&u, "config", "get") && !can(&u, "config", "set"));
  ck_assert(!can(&u, "client", "list") && !can(&u, "client", "kill"));
  ck_assert(!can(&u, "acl", "list") && !can(&u, "acl", "load"));
  /* @connection: always, whatever the rules */
  ck_assert(can(&u, "ping", NULL) && can(&u, "auth", NULL) && can(&u, "hello", NULL));
  ck_assert(can(&u, "quit", NULL) && can(&u, "acl", "whoami") && can(&u, "client", "setname"));
  acl_user_free(&u);

  ck_assert_int_eq(parse(&u, "mon on nopass +@monitor", err), 0);
  ck_assert(can(&u, "info", NULL) && can(&u, "model", "info") && can(&u, "experiment", "report"));
  ck_assert(can(&u, "client", "list") && can(&u, "config", "get"));
  ck_assert(!can(&u, "recommend", NULL) && !can(&u, "experiment", "reset"));
  ck_assert(!can(&u, "config", "set") && !can(&u, "client", "kill"));
  acl_user_free(&u);

  ck_assert_int_eq(parse(&u, "ops on nopass +@admin", err), 0);
  static const char *const admin[][2] = {
      {"model", "reload"}, {"model", "rollback"}, {"model", "pin"},   {"model", "unpin"},
      {"config", "set"},   {"config", "resetstat"}, {"client", "kill"}, {"experiment", "reset"},
      {"acl", "list"},     {"acl", "load"},       {"acl", "users"}};
  for (size_t i = 0; i < sizeof admin / sizeof admin[0]; i++)
    ck_assert_msg(can(&u, admin[i][0], admin[i][1]), "%s %s", admin[i][0], admin[i][1]);
  ck_assert(!can(&u, "recommend", NULL) && !can(&u, "info", NULL));
  acl_user_free(&u);

  /* subcommands, Redis 7 style; rules apply in order */
  ck_assert_int_eq(parse(&u, "x on nopass allcommands -model|reload -CONFIG|SET", err), 0);
  ck_assert(can(&u, "model", "info") && can(&u, "model", "pin") && !can(&u, "model", "reload"));
  ck_assert(!can(&u, "config", "set") && can(&u, "config", "get"));
  acl_user_free(&u);
  ck_assert_int_eq(parse(&u, "x on nopass +model|info -@all +model|info", err), 0);
  ck_assert(can(&u, "model", "info") && !can(&u, "model", "categories"));
  /* a subcommand the table does not know (or none) needs them all */
  ck_assert(!can(&u, "model", "frobnicate") && !can(&u, "model", NULL));
  acl_user_free(&u);
  ck_assert_int_eq(parse(&u, "x on nopass +model -@all +model", err), 0);
  ck_assert(can(&u, "model", "frobnicate") && can(&u, "model", NULL));
  ck_assert(!can(&u, "recommend", NULL));
  /* a command the table does not know: refused */
  ck_assert(!acl_allowed(&u, -1, NULL, 0) && !acl_allowed(&u, 1000, NULL, 0));
  acl_user_free(&u);
  /* a fresh user: off, nothing; reset goes back there */
  ck_assert_int_eq(parse(&u, "y", err), 0);
  ck_assert(!u.on && !u.nopass && u.npass == 0 && !can(&u, "recommend", NULL));
  acl_user_free(&u);
  ck_assert_int_eq(parse(&u, "y on >a +@all reset", err), 0);
  ck_assert(!u.on && u.npass == 0 && !can(&u, "recommend", NULL));
  acl_user_free(&u);
}
END_TEST

START_TEST(test_rule_errors) {
  acl_user_t u;
  char err[RECD_ERRLEN] = "";
  static const struct {
    const char *line, *msg;
  } bad[] = {
      {"web on +recomend", "user 'web': unknown command in rule '+recomend' (did you mean "
                           "'+recommend'?)"},
      {"web on +@reed", "user 'web': unknown category in rule '+@reed'"},
      {"web on +model|relaod", "user 'web': unknown subcommand in rule '+model|relaod'"},
      {"web on +recommend|x", "user 'web': unknown subcommand in rule '+recommend|x'"},
      {"web on -ping", "@connection commands (PING, AUTH, HELLO, QUIT, ACL WHOAMI, ...) are "
                       "always allowed"},
      {"web on -@connection", "are always allowed"},
      {"web on -acl|whoami", "are always allowed"},
      {"web on ~cart:*", "'~cart:*': recd has no keys or channels"},
      {"web on #abc", "'#abc': expected # and the 64 hex digits of a SHA-256"},
      {"web on #" SECRET_HEX "0", "expected # and the 64 hex digits"},
      {"web on >", "empty password in rule '>'"},
      {"web on <nothere", "the user has no such password"},
      {"web on !" SECRET_HEX, "no such password"},
      {"web on onn", "unknown rule 'onn' (expected on, off"},
      {"we\"b on", "bad user name 'we\"b'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err[0] = '\0';
    ck_assert_int_ne(parse(&u, bad[i].line, err), 0);
    ck_assert_msg(strstr(err, bad[i].msg) != NULL, "%s: got '%s'", bad[i].line, err);
  }
  /* the password itself never appears in a message */
  ck_assert_int_ne(parse(&u, "web on >hunter2 <hunter3", err), 0);
  ck_assert_ptr_null(strstr(err, "hunter"));
  /* Redis's key and channel rules that are true of every user are accepted */
  ck_assert_int_eq(parse(&u, "web on ~* &* allkeys allchannels resetkeys resetchannels", err),
                   0);
  acl_user_free(&u);
}
END_TEST

START_TEST(test_describe_and_passwords) {
  acl_user_t u, v;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(parse(&u, "web on >secret >other +@read -model|categories +@write", err), 0);
  char *d = acl_user_describe(&u);
  ck_assert_ptr_nonnull(d);
  /* passwords only as their SHA-256 */
  ck_assert_ptr_null(strstr(d, "secret"));
  ck_assert_ptr_nonnull(strstr(d, "#" SECRET_HEX));
  ck_assert_int_eq(strncmp(d, "web on #" SECRET_HEX " #", 8 + 64 + 2), 0);
  ck_assert_ptr_nonnull(strstr(d, " +@read -model|categories +@write"));
  /* it reads back to itself */
  ck_assert_int_eq(parse(&v, d, err), 0);
  char *d2 = acl_user_describe(&v);
  ck_assert_str_eq(d, d2);
  ck_assert(can(&v, "recommend", NULL) && !can(&v, "model", "categories"));
  free(d2);
  acl_user_free(&v);
  free(d);

  /* -@all / +@all start the list over; no command at all reads -@all */
  ck_assert_int_eq(parse(&v, "a off +recommend +@all -feedback", err), 0);
  d = acl_user_describe(&v);
  ck_assert_str_eq(d, "a off +@all -feedback");
  free(d);
  acl_user_free(&v);
  ck_assert_int_eq(parse(&v, "a nopass", err), 0);
  d = acl_user_describe(&v);
  ck_assert_str_eq(d, "a off nopass -@all");
  free(d);
  acl_user_free(&v);

  /* authentication against a set */
  acl_users_t s;
  char *lines[] = {(char *)"web on #" SECRET_HEX " >two +@read", (char *)"off1 off >pw +@all",
                   (char *)"open on nopass +@read"};
  ck_assert_msg(acl_users_from_lines(&s, 3, lines, err) == 0, "%s", err);
  ck_assert_uint_eq(s.n, 4); /* default added */
  ck_assert_ptr_eq(acl_authenticate(&s, "", "web", 3, "secret", 6), &s.u[0]);
  ck_assert_ptr_eq(acl_authenticate(&s, "", "web", 3, "two", 3), &s.u[0]);
  ck_assert_ptr_null(acl_authenticate(&s, "", "web", 3, "secreT", 6));
  ck_assert_ptr_null(acl_authenticate(&s, "", "web", 3, "", 0));
  ck_assert_ptr_null(acl_authenticate(&s, "", "off1", 4, "pw", 2)); /* disabled */
  ck_assert_ptr_null(acl_authenticate(&s, "", "nobody", 6, "pw", 2));
  ck_assert_ptr_eq(acl_authenticate(&s, "", "open", 4, "anything", 8), &s.u[2]);
  /* the implicit default user: requirepass, read at each AUTH */
  acl_user_t *def = acl_users_find(&s, "default", 7);
  ck_assert(def != NULL && def->implicit && def->on);
  ck_assert(can(def, "config", "set") && can(def, "recommend", NULL));
  ck_assert(acl_default_open(&s, ""));
  ck_assert(!acl_default_open(&s, "rp"));
  ck_assert_ptr_eq(acl_authenticate(&s, "rp", NULL, 0, "rp", 2), def);
  ck_assert_ptr_eq(acl_authenticate(&s, "rp", "default", 7, "rp", 2), def);
  ck_assert_ptr_null(acl_authenticate(&s, "rp", NULL, 0, "rq", 2));
  ck_assert_ptr_null(acl_authenticate(&s, "new", NULL, 0, "rp", 2));
  acl_users_free(&s);
  acl_user_free(&u);
}
END_TEST

START_TEST(test_aclfile) {
  acl_users_t s;
  char err[RECD_ERRLEN] = "";
  const char *good = "# storefront\n"
                     "\n"
                     "user web on >s3cret +@read +@write\r\n"
                     "  user \"mon\" on '>a b' +@monitor\n"
                     "user default off\n";
  ck_assert_msg(acl_users_parse(&s, good, strlen(good), "users.acl", err) == 0, "%s", err);
  ck_assert_uint_eq(s.n, 3); /* default given: not added */
  acl_user_t *mon = acl_users_find(&s, "mon", 3);
  ck_assert_ptr_nonnull(mon);
  ck_assert_ptr_eq(acl_authenticate(&s, "", "mon", 3, "a b", 3), mon);
  ck_assert(!acl_default_open(&s, ""));
  ck_assert_ptr_null(acl_authenticate(&s, "", NULL, 0, "x", 1));
  acl_users_free(&s);

  static const struct {
    const char *text, *msg;
  } bad[] = {
      {"user a on\n\nuser b on +@reed\n", "users.acl:3: user 'b': unknown category"},
      {"user a on\nuser a off\n", "users.acl:2: user 'a' is defined twice"},
      {"user a on\nrequirepass x\n", "users.acl:2: expected 'user <name> [rule ...]', got "
                                     "'requirepass'"},
      {"user a on \"unterminated\n", "users.acl:1: unterminated quoted string"},
      {"user\n", "users.acl:1: expected a user name and its rules"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_int_ne(acl_users_parse(&s, bad[i].text, strlen(bad[i].text), "users.acl", err),
                     0);
    ck_assert_msg(strstr(err, bad[i].msg) != NULL, "%s: got '%s'", bad[i].text, err);
    ck_assert_uint_eq(s.n, 0);
  }
  ck_assert_int_ne(acl_users_load(&s, "/nonexistent/users.acl", err), 0);
  ck_assert_ptr_nonnull(strstr(err, "cannot open aclfile '/nonexistent/users.acl'"));
}
END_TEST

/* ---- every command and subcommand has a category ------------------------- */

static void check_command(const char *name, const cmd_stats_t *st, void *arg) {
  (void)st, (void)arg;
  ck_assert_msg(acl_command_id(name) >= 0, "command '%s' has no ACL category (acl.c)", name);
}

static void check_unit(const char *cmd, const char *sub, unsigned cats, void *arg) {
  const char *md = arg;
  char want[80];
  /* every row names a command of the reference, so no row is stale */
  for (size_t i = 0; cmd[i] && i < 30; i++)
    want[i] = (char)(cmd[i] - 'a' + 'A'), want[i + 1] = '\0';
  char head[96];
  snprintf(head, sizeof head, "### %s\n", want);
  ck_assert_msg(strstr(md, head) != NULL, "ACL row '%s' is no command", cmd);
  ck_assert_msg(cats != 0 && (cats & (cats - 1)) == 0, "'%s|%s': exactly one category", cmd,
                sub ? sub : "");
}

START_TEST(test_every_command_has_a_category) {
  commands_foreach(check_command, NULL);
  /* the subcommands: the first word after the command in each syntax line
   * of the reference ("MODEL RELOAD [variant] [path]") */
  char *md = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&md, &len);
  ck_assert_int_eq(commands_markdown(fp), 0);
  fclose(fp);
  int subs = 0;
  for (char *line = md; line && *line;) {
    char *nl = strchr(line, '\n');
    char cmd[32], sub[32];
    if (sscanf(line, "%31[A-Z] %31[A-Z]", cmd, sub) == 2 && strcmp(cmd, sub) != 0 &&
        acl_command_id(cmd) >= 0) {
      int id = acl_command_id(cmd);
      char lc[32], ls[32];
      size_t i;
      for (i = 0; cmd[i]; i++)
        lc[i] = (char)(cmd[i] - 'A' + 'a');
      lc[i] = '\0';
      for (i = 0; sub[i]; i++)
        ls[i] = (char)(sub[i] - 'A' + 'a');
      ls[i] = '\0';
      /* only commands with subcommands: RANK <user> is no subcommand */
      char probe[40];
      snprintf(probe, sizeof probe, "%s", lc);
      if (acl_category_of(lc, NULL) == 0) {
        ck_assert_msg(acl_category_of(lc, ls) != 0, "'%s %s' has no ACL category (acl.c)",
                      cmd, sub);
        subs++;
      }
      (void)id;
    }
    line = nl ? nl + 1 : NULL;
  }
  ck_assert_int_ge(subs, 20); /* MODEL, EXPERIMENT, CONFIG, CLIENT, ACL */
  acl_units_foreach(check_unit, md);
  free(md);
}
END_TEST

/* ---- recd.conf's user lines -------------------------------------------- */

START_TEST(test_config_users) {
  config_t c;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(config_init(&c), 0);
  const char *text = "port 7071\n"
                     "user web on \">pass word\" +@read +@write\n"
                     "user mon on >m +@monitor\n";
  ck_assert_msg(config_load_buffer(&c, text, strlen(text), "recd.conf", err) == 0, "%s", err);
  ck_assert_uint_eq(c.users.n, 2);
  /* stored hashed: the config never holds the password */
  ck_assert_ptr_null(strstr(c.users.line[0], "pass word"));
  ck_assert_int_eq(strncmp(c.users.line[0], "web on #", 8), 0);
  /* CONFIG GET's form reads back, several users included */
  char val[4096];
  ck_assert_int_gt(config_format(&c, "user", val, sizeof val), 0);
  ck_assert_ptr_nonnull(strstr(val, " ; mon on #"));
  config_t d;
  ck_assert_int_eq(config_init(&d), 0);
  ck_assert_msg(config_set(&d, "user", val, err) == 0, "%s", err);
  ck_assert_uint_eq(d.users.n, 2);
  ck_assert_str_eq(d.users.line[0], c.users.line[0]);
  ck_assert_str_eq(d.users.line[1], c.users.line[1]);
  /* all or nothing: a bad second user leaves the list as it was */
  ck_assert_int_ne(config_set(&d, "user", "a on ; b on +@nope", err), 0);
  ck_assert_ptr_nonnull(strstr(err, "user 'b': unknown category in rule '+@nope'"));
  ck_assert_uint_eq(d.users.n, 2);
  ck_assert_int_ne(config_set(&d, "user", "web on", err), 0);
  ck_assert_ptr_nonnull(strstr(err, "user 'web' is defined twice"));
  ck_assert_int_ne(config_set(&d, "user", "; a", err), 0);
  ck_assert_int_eq(config_set(&d, "user", "", err), 0);
  ck_assert_uint_eq(d.users.n, 0);
  config_free(&d);

  /* a file's first user line replaces the list; errors name the line */
  const char *bad = "port 7071\n\nuser ok on\nuser web on +recomend\n";
  ck_assert_int_ne(config_load_buffer(&c, bad, strlen(bad), "recd.conf", err), 0);
  ck_assert_msg(strstr(err, "recd.conf:4: user 'web': unknown command in rule '+recomend' "
                            "(did you mean '+recommend'?)") != NULL, "%s", err);
  config_free(&c);

  /* the daemon's rules: user lines and aclfile exclusive; requirepass
   * and a user default line too */
  ck_assert_int_eq(config_init(&c), 0);
  ck_assert_int_eq(config_set(&c, "user", "web on nopass +@read", err), 0);
  ck_assert_int_eq(config_set(&c, "aclfile", "/etc/recd/users.acl", err), 0);
  acl_users_t s;
  ck_assert_int_ne(acl_setup(&c, &s, err), 0);
  ck_assert_ptr_nonnull(strstr(err, "user lines and aclfile are exclusive"));
  ck_assert_int_eq(config_set(&c, "aclfile", "", err), 0);
  ck_assert_msg(acl_setup(&c, &s, err) == 0, "%s", err);
  ck_assert_uint_eq(s.n, 2);
  acl_users_free(&s);
  ck_assert_int_eq(config_set(&c, "user", "default on >x +@all", err), 0);
  ck_assert_int_eq(config_set(&c, "requirepass", "y", err), 0);
  ck_assert_int_ne(acl_setup(&c, &s, err), 0);
  ck_assert_ptr_nonnull(strstr(err, "requirepass and the rule line of user default"));
  config_free(&c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("acl");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_categories);
  tcase_add_test(tc, test_rule_errors);
  tcase_add_test(tc, test_describe_and_passwords);
  tcase_add_test(tc, test_aclfile);
  tcase_add_test(tc, test_every_command_has_a_category);
  tcase_add_test(tc, test_config_users);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
