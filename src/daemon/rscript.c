/* rscript.c - see rscript.h. */
#include "rscript.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/err.h"

/* A call in flight: its arguments, kept for a resend as EVAL. */
typedef struct rscript__call {
  rscript_t *s;
  rclient_call_cb cb;
  void *arg;
  int retried;
  int argc;
  const char **argv;       /* argv[0..1] are rewritten for the resend */
  size_t *lens;
} rscript__call_t;

static void rscript__free(rscript__call_t *c) {
  free(c->argv);
  free(c);
}

static void rscript__loaded(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                            const char *errstr, void *arg) {
  (void)rc, (void)errstr;
  rscript_t *s = arg;
  if (st == RCLIENT_OK && rep->type == REDIS_REPLY_STRING && rep->len == 40) {
    memcpy(s->sha, rep->str, 40);
    s->sha[40] = '\0';
    s->state = RSCRIPT_READY;
  } else {
    s->state = RSCRIPT_NONE; /* EVAL until a later load works */
  }
}

static void rscript__load(rclient_t *rc, rscript_t *s) {
  if (s->state != RSCRIPT_NONE)
    return;
  const char *argv[3] = {"SCRIPT", "LOAD", s->text};
  const size_t lens[3] = {6, 4, strlen(s->text)};
  if (rclient_call(rc, 3, argv, lens, rscript__loaded, s) == 0)
    s->state = RSCRIPT_LOADING;
}

static int rscript__send(rclient_t *rc, rscript__call_t *c);

static void rscript__done(rclient_t *rc, rclient_status_t st, const redisReply *rep,
                          const char *errstr, void *arg) {
  rscript__call_t *c = arg;
  if (st == RCLIENT_ERROR && errstr != NULL && strncmp(errstr, "NOSCRIPT", 8) == 0 &&
      !c->retried) {
    /* Redis lost its scripts: forget the SHA (the next call loads it
     * again) and resend this one with the text. */
    if (c->s->state == RSCRIPT_READY)
      c->s->state = RSCRIPT_NONE;
    c->retried = 1;
    if (rscript__send(rc, c) == 0)
      return;
  }
  if (c->cb != NULL)
    c->cb(rc, st, rep, errstr, c->arg);
  rscript__free(c);
}

static int rscript__send(rclient_t *rc, rscript__call_t *c) {
  rscript_t *s = c->s;
  if (!c->retried)
    rscript__load(rc, s);
  if (s->state == RSCRIPT_READY && !c->retried) {
    c->argv[0] = "EVALSHA";
    c->lens[0] = 7;
    c->argv[1] = s->sha;
    c->lens[1] = 40;
  } else {
    c->argv[0] = "EVAL";
    c->lens[0] = 4;
    c->argv[1] = s->text;
    c->lens[1] = strlen(s->text);
  }
  return rclient_call(rc, c->argc, c->argv, c->lens, rscript__done, c);
}

int rscript_call(rclient_t *rc, rscript_t *s, size_t nkeys, const char *const *keys,
                 const size_t *klens, size_t nargs, const char *const *args,
                 const size_t *alens, rclient_call_cb cb, void *arg) {
  if (rc == NULL || s == NULL || nkeys + nargs > 1000000)
    return RECD_EINVAL;
  size_t bytes = 0;
  for (size_t i = 0; i < nkeys; i++)
    bytes += klens[i];
  for (size_t i = 0; i < nargs; i++)
    bytes += alens[i];
  const size_t argc = 3 + nkeys + nargs;
  rscript__call_t *c = calloc(1, sizeof *c);
  /* One block: argv, lens, the key count's digits, then the bytes. */
  char *block = malloc(argc * (sizeof(char *) + sizeof(size_t)) + 24 + bytes);
  if (c == NULL || block == NULL) {
    free(c);
    free(block);
    return RECD_ENOMEM;
  }
  c->s = s;
  c->cb = cb;
  c->arg = arg;
  c->argc = (int)argc;
  c->argv = (const char **)(void *)block;
  c->lens = (size_t *)(void *)(c->argv + argc);
  char *p = (char *)(c->lens + argc);
  c->lens[2] = (size_t)snprintf(p, 24, "%zu", nkeys);
  c->argv[2] = p;
  p += 24;
  for (size_t i = 0; i < nkeys + nargs; i++) {
    const char *src = i < nkeys ? keys[i] : args[i - nkeys];
    const size_t len = i < nkeys ? klens[i] : alens[i - nkeys];
    memcpy(p, src, len);
    c->argv[3 + i] = p;
    c->lens[3 + i] = len;
    p += len;
  }
  int err = rscript__send(rc, c);
  if (err != 0)
    rscript__free(c);
  return err;
}
