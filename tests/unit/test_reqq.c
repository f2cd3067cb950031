/* test_reqq.c - the daemon's request queue (src/daemon/reqq.c): replies
 * leave in request order whatever order requests finish in; a request
 * lives exactly as long as its last holder; a detached request's reply goes
 * nowhere. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reqq.h"

static int ready_calls;
static void on_ready(reqq_t *q) {
  (void)q;
  ready_calls++;
}

static int freed;
static void ctx_free(void *p) {
  free(p);
  freed++;
}

/* The bytes of out as a string (replies are small here). */
static const char *out_str(reply_buf_t *out) {
  static char buf[256];
  size_t n;
  const char *d = reply_data(out, &n);
  ck_assert_uint_lt(n, sizeof buf);
  if (n > 0) /* d may be NULL when nothing was ever written */
    memcpy(buf, d, n);
  buf[n] = '\0';
  return buf;
}

START_TEST(replies_leave_in_order) {
  reqq_t q;
  reply_buf_t out;
  reply_init(&out);
  reqq_init(&q, on_ready, &out);
  cmd_stats_t st = {0};
  req_t *a = req_new(&q, &st), *b = req_new(&q, &st), *c = req_new(&q, &st);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_nonnull(c);
  ck_assert_uint_eq(q.len, 3);
  ck_assert_ptr_eq(req_owner(a), &out);
  ready_calls = 0;
  reply_simple(&c->reply, "C");
  req_finish(c, 0);
  ck_assert_int_eq(ready_calls, 1);
  ck_assert_uint_eq(reqq_take_done(&q, &out), 0); /* a and b are not done */
  ck_assert_str_eq(out_str(&out), "");
  reply_simple(&a->reply, "A");
  req_finish(a, 1);
  ck_assert_uint_eq(reqq_take_done(&q, &out), 1);
  ck_assert_str_eq(out_str(&out), "+A\r\n");
  reply_simple(&b->reply, "B");
  req_finish(b, 0);
  ck_assert_uint_eq(reqq_take_done(&q, &out), 2);
  ck_assert_str_eq(out_str(&out), "+A\r\n+B\r\n+C\r\n");
  ck_assert_uint_eq(q.len, 0);
  ck_assert_ptr_null(q.head);
  ck_assert_ptr_null(q.tail);
  ck_assert_uint_eq(st.calls, 3);
  ck_assert_uint_eq(st.errors, 1);
  reply_free(&out);
}
END_TEST

START_TEST(sync_reply_goes_direct_only_when_nothing_is_queued) {
  reqq_t q;
  reply_buf_t out;
  reply_init(&out);
  reqq_init(&q, on_ready, &out);
  ck_assert_ptr_eq(reqq_reply(&q, &out), &out);
  reply_simple(&out, "1");
  req_t *pending = req_new(&q, NULL);
  reply_buf_t *r = reqq_reply(&q, &out); /* behind the pending one */
  ck_assert_ptr_ne(r, &out);
  reply_simple(r, "3");
  ck_assert_uint_eq(reqq_take_done(&q, &out), 0);
  reply_simple(&pending->reply, "2");
  req_finish(pending, 0);
  ck_assert_uint_eq(reqq_take_done(&q, &out), 2);
  ck_assert_str_eq(out_str(&out), "+1\r\n+2\r\n+3\r\n");
  reply_free(&out);
}
END_TEST

START_TEST(held_request_outlives_its_client) {
  reqq_t q;
  reply_buf_t out;
  reply_init(&out);
  reqq_init(&q, on_ready, &out);
  req_t *a = req_new(&q, NULL);
  req_t *b = req_new(&q, NULL);
  a->ctx = malloc(8);
  a->ctx_free = ctx_free;
  b->ctx = malloc(8);
  b->ctx_free = ctx_free;
  req_hold(a); /* a callback still to come */
  freed = 0;
  reqq_detach_all(&q); /* the client goes */
  ck_assert_int_eq(freed, 1); /* b had no other holder */
  ck_assert_uint_eq(q.len, 0);
  ck_assert_ptr_null(req_owner(a));
  ready_calls = 0;
  reply_simple(&a->reply, "late");
  req_finish(a, 0); /* nobody to tell */
  ck_assert_int_eq(ready_calls, 0);
  ck_assert_int_eq(freed, 1);
  req_release(a);
  ck_assert_int_eq(freed, 2);
  ck_assert_str_eq(out_str(&out), "");
  reply_free(&out);
}
END_TEST

START_TEST(many_requests_interleaved) {
  enum { N = 1000 };
  reqq_t q;
  reply_buf_t out;
  reply_init(&out);
  reqq_init(&q, NULL, &out);
  static req_t *r[N];
  for (int i = 0; i < N; i++)
    ck_assert_ptr_nonnull(r[i] = req_new(&q, NULL));
  /* finish odd ones first, then even ones backwards */
  for (int i = 1; i < N; i += 2) {
    reply_int(&r[i]->reply, i);
    req_finish(r[i], 0);
  }
  ck_assert_uint_eq(reqq_take_done(&q, &out), 0);
  unsigned moved = 0;
  for (int i = N - 2; i >= 0; i -= 2) {
    reply_int(&r[i]->reply, i);
    req_finish(r[i], 0);
    moved += reqq_take_done(&q, &out);
  }
  ck_assert_uint_eq(moved, N);
  size_t n;
  const char *d = reply_data(&out, &n);
  char expect[16];
  size_t off = 0;
  for (int i = 0; i < N; i++) {
    int len = snprintf(expect, sizeof expect, ":%d\r\n", i);
    ck_assert_msg(off + (size_t)len <= n && memcmp(d + off, expect, (size_t)len) == 0,
                  "reply %d out of order", i);
    off += (size_t)len;
  }
  ck_assert_uint_eq(off, n);
  reply_free(&out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("reqq");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, replies_leave_in_order);
  tcase_add_test(tc, sync_reply_goes_direct_only_when_nothing_is_queued);
  tcase_add_test(tc, held_request_outlives_its_client);
  tcase_add_test(tc, many_requests_interleaved);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
