/* reqq.c - see reqq.h. */
#include "reqq.h"

#include <stdlib.h>

void reqq_init(reqq_t *q, reqq_ready_fn ready, void *owner) {
  q->head = q->tail = NULL;
  q->len = 0;
  q->ready = ready;
  q->owner = owner;
}

req_t *req_new(reqq_t *q, cmd_stats_t *st) {
  req_t *r = calloc(1, sizeof *r);
  if (r == NULL)
    return NULL;
  reply_init(&r->reply);
  r->q = q;
  r->refs = 1; /* the queue's */
  r->st = st;
  r->start_us = stats_now_us();
  if (q->tail)
    q->tail->next = r;
  else
    q->head = r;
  q->tail = r;
  q->len++;
  return r;
}

req_t *req_hold(req_t *r) {
  r->refs++;
  return r;
}

void req_release(req_t *r) {
  if (--r->refs > 0)
    return;
  if (r->ctx_free)
    r->ctx_free(r->ctx);
  reply_free(&r->reply);
  free(r);
}

void req_finish(req_t *r, int failed) {
  r->done = 1;
  if (r->st)
    cmd_stats_record(r->st, stats_now_us() - r->start_us, failed);
  if (r->q != NULL && r->q->ready != NULL)
    r->q->ready(r->q);
}

void *req_owner(const req_t *r) {
  return r->q ? r->q->owner : NULL;
}

reply_buf_t *reqq_reply(reqq_t *q, reply_buf_t *direct) {
  if (q->head == NULL)
    return direct;
  req_t *r = req_new(q, NULL);
  if (r == NULL)
    return NULL;
  r->done = 1;
  return &r->reply;
}

/* Unlinks the head (the queue's reference goes with it). */
static req_t *reqq__pop(reqq_t *q) {
  req_t *r = q->head;
  q->head = r->next;
  if (q->head == NULL)
    q->tail = NULL;
  q->len--;
  r->next = NULL;
  r->q = NULL;
  return r;
}

unsigned reqq_take_done(reqq_t *q, reply_buf_t *out) {
  unsigned n = 0;
  while (q->head != NULL && q->head->done) {
    req_t *r = reqq__pop(q);
    size_t len;
    const char *data = reply_data(&r->reply, &len);
    if (len > 0)
      reply_raw(out, data, len); /* a failure is sticky in out->err */
    req_release(r);
    n++;
  }
  return n;
}

void reqq_detach_all(reqq_t *q) {
  while (q->head != NULL)
    req_release(reqq__pop(q));
}
