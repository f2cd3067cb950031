/* client_cmd.c - CLIENT LIST | INFO | KILL | ID | SETNAME | GETNAME |
 * SETINFO | HELP, as Redis 7.
 *
 * CLIENT LIST prints one Redis-format line per connected client ("id=7
 * addr=127.0.0.1:50312 laddr=127.0.0.1:7070 fd=12 name= age=3 idle=0
 * flags=N db=0 ... cmd=recommend user=default ... lib-name= lib-ver=\n"):
 * every field a `key=value` without blanks, so the parsers of client
 * libraries (redis-py's client_list()) read it. Clients already killed or
 * closing are not listed and cannot be killed again.
 *
 * CLIENT KILL marks the client (conn.c's client_kill): it reads no more
 * commands and closes gracefully once every reply it is owed is out. It is
 * never freed on the spot: a request of it still waiting for Redis or
 * running on a worker thread answers into a client that still exists, and
 * the client goes with the usual close path afterwards (conn.c). Killing
 * oneself (SKIPME no, or the old form) works the same way: this reply is
 * the last.
 *
 * Users: the ACL user a client is bound to (acl_cmd.h); client__user() is
 * the one place that says so.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl_cmd.h"
#include "commands.h"
#include "log.h"
#include "server.h"

/* Longest CLIENT SETNAME / SETINFO value kept (Redis has no limit; recd
 * keeps the memory of 10,000 connections small). */
#define CLIENT_ATTR_MAX 256

static const char *client__user(const client_t *c) {
  return acl_client_user(c);
}

/* A client CLIENT LIST shows and CLIENT KILL may kill. */
static int client__listed(const client_t *c) {
  return !(c->flags & (CLIENT_CLOSING | CLIENT_LINGER | CLIENT_KILLED));
}

/* ---- a growable text buffer ---------------------------------------------- */

typedef struct client_text {
  char *buf;
  size_t len, cap;
  int oom;
} client_text_t;

static void client__printf(client_text_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void client__printf(client_text_t *t, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0 || t->oom)
      return;
    if (t->buf && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? t->cap * 2 : 1024;
    while (cap < t->len + (size_t)n + 1)
      cap *= 2;
    char *b = realloc(t->buf, cap);
    if (b == NULL) {
      t->oom = 1;
      return;
    }
    t->buf = b;
    t->cap = cap;
  }
}

/* ---- addresses ----------------------------------------------------------- */

/* "ip:port" as Redis writes it: an IPv6 address in brackets. */
static void client__fmt_sockaddr(const struct sockaddr_storage *ss, char *out, size_t size) {
  char ip[64] = "?";
  int port = 0;
  if (ss->ss_family == AF_INET6) {
    uv_ip6_name((const struct sockaddr_in6 *)ss, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    snprintf(out, size, "[%s]:%d", ip, port);
  } else {
    uv_ip4_name((const struct sockaddr_in *)ss, ip, sizeof ip);
    port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    snprintf(out, size, "%s:%d", ip, port);
  }
}

/* The peer's address (addr=, CLIENT KILL ADDR) or, with local, the
 * address it reached (laddr=, LADDR). A Unix socket client shows the
 * socket's path with port 0, as Redis does. */
static void client__addr(const client_t *c, int local, char *out, size_t size) {
  if (c->flags & CLIENT_UNIX) {
    snprintf(out, size, "%s:0", c->srv->cfg->unixsocket);
    return;
  }
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int rc = local ? uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len)
                 : uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len);
  if (rc == 0)
    client__fmt_sockaddr(&ss, out, size);
  else if (!local) /* the peer is gone: what accept() saw */
    snprintf(out, size, "%s", c->addr);
  else
    snprintf(out, size, "?:0");
}

/* ---- CLIENT LIST / INFO -------------------------------------------------- */

static void client__line(const client_t *c, client_text_t *t) {
  const uint64_t now = uv_now(c->srv->loop);
  char addr[96], laddr[96];
  client__addr(c, 0, addr, sizeof addr);
  client__addr(c, 1, laddr, sizeof laddr);
  uv_os_fd_t fd = -1;
  if (uv_fileno(&c->h.handle, &fd) != 0)
    fd = -1;
  char flags[4];
  size_t nf = 0;
  if (c->flags & CLIENT_CLOSE_AFTER)
    flags[nf++] = 'c';
  if (c->flags & CLIENT_UNIX)
    flags[nf++] = 'U';
  if (nf == 0)
    flags[nf++] = 'N';
  flags[nf] = '\0';
  client__printf(t,
                 "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu flags=%s db=0 "
                 "sub=0 psub=0 multi=-1 qbuf=%zu omem=%zu inflight=%u tot-cmds=%llu "
                 "cmd=%s user=%s resp=2 lib-name=%s lib-ver=%s\n",
                 (unsigned long long)c->id, addr, laddr, (int)fd, c->name ? c->name : "",
                 (unsigned long long)((now - c->created_ms) / 1000),
                 (unsigned long long)((now - c->last_io_ms) / 1000), flags,
                 resp_parser_bytes_buffered(&c->parser), reply_len(&c->out) + c->write_bytes,
                 (unsigned)c->rq.len, (unsigned long long)c->cmds, c->last_cmd[0] ? c->last_cmd : "NULL",
                 client__user(c), c->lib_name ? c->lib_name : "", c->lib_ver ? c->lib_ver : "");
}

static void client__reply_text(reply_buf_t *r, client_text_t *t) {
  if (t->oom)
    reply_error(r, "out of memory");
  else
    reply_bulk(r, t->buf ? t->buf : "", t->len);
  free(t->buf);
}

/* "-ERR ..." for a bad id; 0 with the id in *out. */
static int client__parse_id(const char *s, size_t len, unsigned long long *out) {
  unsigned long long v = 0;
  if (len == 0 || len > 19)
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v == 0)
    return -1;
  *out = v;
  return 0;
}

/* TYPE of CLIENT LIST and KILL: every recd client is a normal one. 1
 * normal, 0 another known type (matches no client), -1 unknown. */
static int client__type(const char *s) {
  if (strcasecmp(s, "normal") == 0)
    return 1;
  if (strcasecmp(s, "master") == 0 || strcasecmp(s, "replica") == 0 ||
      strcasecmp(s, "slave") == 0 || strcasecmp(s, "pubsub") == 0)
    return 0;
  return -1;
}

/* CLIENT LIST [TYPE type] [ID id [id ...]] */
static void client__list(client_t *self, reply_buf_t *r, const resp_cmd_t *a) {
  int type = 1;
  size_t ids_from = 0;
  for (size_t i = 2; i < a->argc; i++) {
    if (strcasecmp(a->argv[i], "type") == 0 && i + 1 < a->argc) {
      type = client__type(a->argv[++i]);
      if (type < 0) {
        char tok[4 * 32 + 1];
        log_sanitize(tok, a->argv[i], a->argvlen[i], 32);
        reply_errorf(r, "Unknown client type '%s'", tok);
        return;
      }
    } else if (strcasecmp(a->argv[i], "id") == 0 && i + 1 < a->argc) {
      ids_from = i + 1;
      for (i = i + 1; i < a->argc; i++) {
        unsigned long long id;
        if (client__parse_id(a->argv[i], a->argvlen[i], &id) != 0) {
          reply_error(r, "Invalid client ID");
          return;
        }
      }
    } else {
      reply_error(r, "syntax error");
      return;
    }
  }
  client_text_t t = {0};
  for (const client_t *c = self->srv->clients; c != NULL && type == 1; c = c->next) {
    if (!client__listed(c))
      continue;
    int want = ids_from == 0;
    for (size_t i = ids_from; ids_from != 0 && i < a->argc && !want; i++) {
      unsigned long long id = 0;
      client__parse_id(a->argv[i], a->argvlen[i], &id);
      want = id == c->id;
    }
    if (want)
      client__line(c, &t);
  }
  client__reply_text(r, &t);
}

/* ---- CLIENT KILL --------------------------------------------------------- */

typedef struct client_filter {
  int has_id, has_addr, has_laddr, has_user, type, skipme;
  unsigned long long id;
  const char *addr, *laddr, *user;
  size_t addr_len, laddr_len, user_len;
} client_filter_t;

static int client__eq(const char *a, size_t alen, const char *b) {
  return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

static int client__match(const client_t *c, const client_filter_t *f) {
  char buf[96];
  if (f->has_id && c->id != f->id)
    return 0;
  if (f->type != 1)
    return 0;
  if (f->has_user && !client__eq(f->user, f->user_len, client__user(c)))
    return 0;
  if (f->has_addr) {
    client__addr(c, 0, buf, sizeof buf);
    if (!client__eq(f->addr, f->addr_len, buf))
      return 0;
  }
  if (f->has_laddr) {
    client__addr(c, 1, buf, sizeof buf);
    if (!client__eq(f->laddr, f->laddr_len, buf))
      return 0;
  }
  return 1;
}

/* Kills every listed client f matches (not self with SKIPME yes); the
 * number killed. */
static long long client__kill_matching(client_t *self, const client_filter_t *f) {
  long long n = 0;
  for (client_t *c = self->srv->clients; c != NULL; c = c->next) {
    if (!client__listed(c) || (c == self && f->skipme) || !client__match(c, f))
      continue;
    if (client_kill(c) == 0)
      n++;
  }
  return n;
}

/* CLIENT KILL addr (old form: +OK or an error) | CLIENT KILL <filter value>
 * ... (the number killed). Every filter is read before anything is
 * killed: a bad one kills nothing. */
static void client__kill(client_t *self, reply_buf_t *r, const resp_cmd_t *a) {
  client_filter_t f = {.type = 1, .skipme = 1};
  if (a->argc == 3) {
    f.has_addr = 1;
    f.addr = a->argv[2];
    f.addr_len = a->argvlen[2];
    f.skipme = 0;
    if (client__kill_matching(self, &f) > 0)
      reply_simple(r, "OK");
    else
      reply_error(r, "No such client");
    return;
  }
  if (a->argc % 2 != 0) {
    reply_error(r, "syntax error");
    return;
  }
  for (size_t i = 2; i + 1 < a->argc; i += 2) {
    const char *opt = a->argv[i], *v = a->argv[i + 1];
    const size_t vlen = a->argvlen[i + 1];
    if (strcasecmp(opt, "id") == 0) {
      if (client__parse_id(v, vlen, &f.id) != 0) {
        reply_error(r, "client-id should be greater than 0");
        return;
      }
      f.has_id = 1;
    } else if (strcasecmp(opt, "type") == 0) {
      f.type = client__type(v);
      if (f.type < 0) {
        char tok[4 * 32 + 1];
        log_sanitize(tok, v, vlen, 32);
        reply_errorf(r, "Unknown client type '%s'", tok);
        return;
      }
    } else if (strcasecmp(opt, "user") == 0) {
      /* A name no user has is an error, as in Redis. */
      if (acl_users_find(&self->srv->acl.users, v, vlen) == NULL) {
        char tok[4 * 32 + 1];
        log_sanitize(tok, v, vlen, 32);
        reply_errorf(r, "No such user '%s'", tok);
        return;
      }
      f.has_user = 1;
      f.user = v;
      f.user_len = vlen;
    } else if (strcasecmp(opt, "addr") == 0) {
      f.has_addr = 1;
      f.addr = v;
      f.addr_len = vlen;
    } else if (strcasecmp(opt, "laddr") == 0) {
      f.has_laddr = 1;
      f.laddr = v;
      f.laddr_len = vlen;
    } else if (strcasecmp(opt, "skipme") == 0) {
      if (strcasecmp(v, "yes") == 0) {
        f.skipme = 1;
      } else if (strcasecmp(v, "no") == 0) {
        f.skipme = 0;
      } else {
        reply_error(r, "syntax error");
        return;
      }
    } else {
      reply_error(r, "syntax error");
      return;
    }
  }
  reply_int(r, client__kill_matching(self, &f));
}

/* ---- names --------------------------------------------------------------- */

/* Redis's rule for names and library attributes: printable ASCII without
 * blanks (a CLIENT LIST line stays one line of key=value fields). */
static int client__attr_ok(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (s[i] < '!' || s[i] > '~')
      return 0;
  return 1;
}

/* *slot = a copy of s[0, len), or NULL for the empty string; 0 or -1 (out
 * of memory, *slot unchanged). */
static int client__set_attr(char **slot, const char *s, size_t len) {
  char *v = NULL;
  if (len > 0) {
    if ((v = malloc(len + 1)) == NULL)
      return -1;
    memcpy(v, s, len);
    v[len] = '\0';
  }
  free(*slot);
  *slot = v;
  return 0;
}

int client_setname(client_t *c, const char *name, size_t len, reply_buf_t *r) {
  if (!client__attr_ok(name, len)) {
    reply_error(r, "Client names cannot contain spaces, newlines or special characters.");
    return -1;
  }
  if (len > CLIENT_ATTR_MAX) {
    reply_errorf(r, "client name longer than %d bytes", CLIENT_ATTR_MAX);
    return -1;
  }
  if (client__set_attr(&c->name, name, len) != 0) {
    reply_error(r, "out of memory");
    return -1;
  }
  return 0;
}

static void client__setinfo(client_t *c, reply_buf_t *r, const resp_cmd_t *a) {
  const char *attr = a->argv[2], *v = a->argv[3];
  const size_t vlen = a->argvlen[3];
  char **slot = strcasecmp(attr, "lib-name") == 0   ? &c->lib_name
                : strcasecmp(attr, "lib-ver") == 0 ? &c->lib_ver
                                                    : NULL;
  char tok[4 * 32 + 1];
  log_sanitize(tok, attr, a->argvlen[2], 32);
  if (slot == NULL) {
    reply_errorf(r, "Unrecognized option '%s'", tok);
    return;
  }
  if (!client__attr_ok(v, vlen)) {
    reply_errorf(r, "%s cannot contain spaces, newlines or special characters.", tok);
    return;
  }
  if (vlen > CLIENT_ATTR_MAX) {
    reply_errorf(r, "%s longer than %d bytes", tok, CLIENT_ATTR_MAX);
    return;
  }
  if (client__set_attr(slot, v, vlen) != 0) {
    reply_error(r, "out of memory");
    return;
  }
  reply_simple(r, "OK");
}

static const char *const client__help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST [TYPE <type>] [ID <id> [<id> ...]]",
    "    Return information about client connections.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID <id>, TYPE normal, USER <username>,",
    "    ADDR <ip:port>, LADDR <ip:port>, SKIPME (yes|no).",
    "GETNAME",
    "    Return the name of the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Set the client library's name or version (shown by CLIENT LIST).",
    "HELP",
    "    Print this help.",
};

void client_command(client_t *c, cmd_stats_t *st, const resp_cmd_t *a) {
  (void)st;
  reply_buf_t *r = client_reply(c);
  if (r == NULL)
    return;
  const char *sub = a->argv[1];
  const size_t argc = a->argc;
  if (strcasecmp(sub, "id") == 0 && argc == 2) {
    reply_int(r, (long long)c->id);
  } else if (strcasecmp(sub, "getname") == 0 && argc == 2) {
    if (c->name != NULL)
      reply_bulk_cstr(r, c->name);
    else
      reply_null(r);
  } else if (strcasecmp(sub, "setname") == 0 && argc == 3) {
    if (client_setname(c, a->argv[2], a->argvlen[2], r) == 0)
      reply_simple(r, "OK");
  } else if (strcasecmp(sub, "setinfo") == 0 && argc == 4) {
    client__setinfo(c, r, a);
  } else if (strcasecmp(sub, "list") == 0) {
    client__list(c, r, a);
  } else if (strcasecmp(sub, "info") == 0 && argc == 2) {
    client_text_t t = {0};
    client__line(c, &t);
    client__reply_text(r, &t);
  } else if (strcasecmp(sub, "kill") == 0 && argc >= 3) {
    client__kill(c, r, a);
  } else if (strcasecmp(sub, "help") == 0 && argc == 2) {
    const size_t n = sizeof client__help / sizeof client__help[0];
    reply_array(r, n);
    for (size_t i = 0; i < n; i++)
      reply_simple(r, client__help[i]);
  } else {
    char tok[4 * 32 + 1];
    log_sanitize(tok, sub, a->argvlen[1], 32);
    reply_errorf(r, "unknown subcommand or wrong number of arguments for '%s'. Try CLIENT HELP.",
                 tok);
  }
}
