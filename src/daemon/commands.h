/* commands.h - the command table and the handlers.
 *
 * commands_dispatch() is the server's dispatch function (server_init): it
 * looks the command up, checks arity and the auth policy and calls the
 * handler; the handlers live with their subject:
 *   commands.c  PING ECHO QUIT AUTH HELLO COMMAND INFO (text in info.c)
 *   reco.c      RECOMMEND RANK        similar.c  SIMILAR
 *   feedback.c  FEEDBACK              model_cmd.c  MODEL
 *   merge.c     MERGE
 *   experiment_cmd.c  EXPERIMENT
 *   config_cmd.c  CONFIG          client_cmd.c  CLIENT
 *   acl_cmd.c   ACL, and the permission check of every command
 * A handler answers at once into client_reply(), or later through a
 * request from client_request() that it finishes with req_finish(); `st`
 * is the command's statistics, which a request records when it finishes.
 */
#ifndef RECD_DAEMON_COMMANDS_H
#define RECD_DAEMON_COMMANDS_H

#include <stdio.h>

#include "conn.h"
#include "recd/resp.h"
#include "stats.h"

typedef void (*cmd_fn)(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);

void commands_dispatch(client_t *c, const resp_cmd_t *cmd);
/* Prints the command reference (README's "Command reference") as
 * Markdown: every command of the table, its syntax (for RECOMMEND, RANK,
 * SIMILAR and FEEDBACK generated from the parser's option table), options,
 * grammar and reply. 0, or -1 when a command has no documentation. */
int commands_markdown(FILE *fp);
/* Calls fn for every command with its statistics (INFO, /metrics). */
void commands_foreach(void (*fn)(const char *name, const cmd_stats_t *st, void *arg), void *arg);

void reco_recommend(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void reco_rank(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void similar_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void feedback_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void merge_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void model_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void experiment_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void config_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void client_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);
void acl_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a);

/* Sets c's name (CLIENT SETNAME, HELLO SETNAME; "" removes it): 0, or -1
 * with the error replied into r (blanks or special characters, too long,
 * out of memory). client_cmd.c. */
int client_setname(client_t *c, const char *name, size_t len, reply_buf_t *r);
/* CONFIG RESETSTAT: every command's statistics back to 0. */
void commands_reset_stats(void);

/* INFO [section] text (info.c). 0 or RECD_ENOMEM. */
int info_render(server_t *s, const char *section, reply_buf_t *out);

#endif
