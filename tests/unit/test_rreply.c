/* test_rreply.c - replies built in one arena per reply (rreply.h) are the
 * same trees hiredis's own object functions build, whatever the shape of
 * the reply and however the bytes arrive; a protocol error or a reader
 * freed mid-reply leaks nothing (the sanitizer build checks). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "rreply.h"

/* Same type, integer, string bytes and elements, recursively. */
static void same_tree(const redisReply *a, const redisReply *b, const char *where) {
  ck_assert_msg(a != NULL && b != NULL, "%s: missing object", where);
  ck_assert_msg(a->type == b->type, "%s: type %d against %d", where, a->type, b->type);
  switch (a->type) {
  case REDIS_REPLY_INTEGER:
    ck_assert_msg(a->integer == b->integer, "%s: integer", where);
    break;
  case REDIS_REPLY_STRING:
  case REDIS_REPLY_STATUS:
  case REDIS_REPLY_ERROR:
    ck_assert_msg(a->len == b->len && memcmp(a->str, b->str, a->len) == 0, "%s: string", where);
    ck_assert_msg(b->str[b->len] == '\0', "%s: string not terminated", where);
    break;
  case REDIS_REPLY_ARRAY:
    ck_assert_msg(a->elements == b->elements, "%s: %zu elements against %zu", where,
                  a->elements, b->elements);
    for (size_t i = 0; i < a->elements; i++)
      same_tree(a->element[i], b->element[i], where);
    break;
  default:
    break;
  }
}

/* Feeds wire to a default reader at once and to an rreply reader in pieces
 * of `step` bytes; every reply must match. Returns the replies read. */
static int compare(const char *wire, size_t len, size_t step, const char *what) {
  redisReader *ref = redisReaderCreate(), *got = redisReaderCreateWithFunctions(&rreply_functions);
  ck_assert_ptr_nonnull(ref);
  ck_assert_ptr_nonnull(got);
  ck_assert_int_eq(redisReaderFeed(ref, wire, len), REDIS_OK);
  int n = 0;
  size_t fed = 0;
  for (;;) {
    void *r = NULL;
    ck_assert_int_eq(redisReaderGetReply(got, &r), REDIS_OK);
    if (r == NULL) {
      if (fed == len)
        break;
      const size_t m = len - fed < step ? len - fed : step;
      ck_assert_int_eq(redisReaderFeed(got, wire + fed, m), REDIS_OK);
      fed += m;
      continue;
    }
    void *e = NULL;
    ck_assert_int_eq(redisReaderGetReply(ref, &e), REDIS_OK);
    ck_assert_msg(e != NULL, "%s: an extra reply", what);
    same_tree(e, r, what);
    freeReplyObject(e);
    rreply_functions.freeObject(r);
    n++;
  }
  void *e = NULL;
  ck_assert_int_eq(redisReaderGetReply(ref, &e), REDIS_OK);
  ck_assert_msg(e == NULL, "%s: a reply missing", what);
  redisReaderFree(ref);
  redisReaderFree(got);
  return n;
}

/* A growing buffer of RESP. */
typedef struct wire {
  char *b;
  size_t n, cap;
} wire_t;

static void put(wire_t *w, const char *s, size_t len) {
  if (w->n + len > w->cap) {
    w->cap = (w->n + len) * 2;
    w->b = realloc(w->b, w->cap);
    ck_assert_ptr_nonnull(w->b);
  }
  memcpy(w->b + w->n, s, len);
  w->n += len;
}

static void puts_(wire_t *w, const char *s) {
  put(w, s, strlen(s));
}

static void putf(wire_t *w, const char *fmt, long long v) {
  char t[64];
  int m = snprintf(t, sizeof t, fmt, v);
  put(w, t, (size_t)m);
}

static void bulk(wire_t *w, const char *s, size_t len) {
  putf(w, "$%lld\r\n", (long long)len);
  put(w, s, len);
  put(w, "\r\n", 2);
}

START_TEST(every_shape_is_the_same_tree) {
  wire_t w = {0};
  puts_(&w, "+OK\r\n");
  puts_(&w, "-ERR wrong type\r\n");
  puts_(&w, ":-9223372036854775807\r\n");
  puts_(&w, "$-1\r\n");
  puts_(&w, "*-1\r\n");
  puts_(&w, "*0\r\n");
  bulk(&w, "", 0);
  bulk(&w, "a\0b\r\nc", 6); /* binary safe */
  /* a pipeline's reply as recd reads a customer: nested, mixed */
  puts_(&w, "*4\r\n");
  puts_(&w, "*4\r\n");
  bulk(&w, "item1", 5);
  bulk(&w, "3", 1);
  bulk(&w, "item2", 5);
  bulk(&w, "1.5", 3);
  puts_(&w, "*0\r\n");
  puts_(&w, "$-1\r\n");
  puts_(&w, "*3\r\n:1\r\n*2\r\n+x\r\n-y\r\n$-1\r\n");
  const int shapes = 9;
  for (size_t step = 1; step <= 7; step++)
    ck_assert_int_eq(compare(w.b, w.n, step, "shapes"), shapes);
  ck_assert_int_eq(compare(w.b, w.n, w.n, "shapes, at once"), shapes);
  free(w.b);
}
END_TEST

/* Far more than a first block holds: the arena grows by blocks, and
 * strings longer than any block get one of their own. */
START_TEST(long_replies_span_blocks) {
  wire_t w = {0};
  const int n = 20000;
  putf(&w, "*%lld\r\n", 2LL * n);
  for (int i = 0; i < n; i++) {
    char id[32];
    int m = snprintf(id, sizeof id, "item%d", i * 7919);
    bulk(&w, id, (size_t)m);
    putf(&w, ":%lld\r\n", (long long)i);
  }
  /* a few long strings between short ones */
  puts_(&w, "*5\r\n");
  char *big = malloc(300000);
  ck_assert_ptr_nonnull(big);
  for (size_t i = 0; i < 300000; i++)
    big[i] = (char)('a' + i % 26);
  bulk(&w, "s", 1);
  bulk(&w, big, 300000);
  bulk(&w, big, 5000);
  bulk(&w, big, 70000);
  puts_(&w, "*1\r\n*1\r\n:7\r\n");
  ck_assert_int_eq(compare(w.b, w.n, w.n, "long"), 2);
  ck_assert_int_eq(compare(w.b, w.n, 4093, "long, in pieces"), 2);
  free(big);
  free(w.b);
}
END_TEST

/* A protocol error in the middle of a reply, and a reader freed while a
 * reply is half read: the partial reply is freed (ASan would report a
 * leak or a bad free). */
START_TEST(errors_and_partial_replies_free_cleanly) {
  redisReader *r = redisReaderCreateWithFunctions(&rreply_functions);
  const char *bad = "*3\r\n$3\r\nabc\r\n:12\r\n@nonsense\r\n";
  ck_assert_int_eq(redisReaderFeed(r, bad, strlen(bad)), REDIS_OK);
  void *reply = NULL;
  ck_assert_int_eq(redisReaderGetReply(r, &reply), REDIS_ERR);
  ck_assert_ptr_null(reply);
  redisReaderFree(r);

  r = redisReaderCreateWithFunctions(&rreply_functions);
  const char *half = "*2\r\n*2\r\n$5\r\nhello\r\n$3\r\nwo";
  ck_assert_int_eq(redisReaderFeed(r, half, strlen(half)), REDIS_OK);
  ck_assert_int_eq(redisReaderGetReply(r, &reply), REDIS_OK);
  ck_assert_ptr_null(reply);
  redisReaderFree(r);
}
END_TEST

/* A declared count past RREPLY_MAX_ELEMENTS is refused at once, before
 * any element arrives and without allocating for it (at INT_MAX that was
 * 16 GB, zeroed), at the top and nested; the largest count allowed is
 * still taken. */
START_TEST(huge_declared_arrays_are_refused) {
  const char *const bad[] = {"*2147483647\r\n", "*16777217\r\n",
                             "*2\r\n:1\r\n*2147483647\r\n"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    redisReader *r = redisReaderCreateWithFunctions(&rreply_functions);
    ck_assert_int_eq(redisReaderFeed(r, bad[i], strlen(bad[i])), REDIS_OK);
    void *reply = NULL;
    ck_assert_int_eq(redisReaderGetReply(r, &reply), REDIS_ERR);
    ck_assert_ptr_null(reply);
    ck_assert_int_ne(r->err, 0);
    redisReaderFree(r);
  }
  /* RREPLY_MAX_ELEMENTS itself is taken: the array is built and waits for
   * its elements (a partial reply, freed with the reader) */
  char head[32];
  snprintf(head, sizeof head, "*%zu\r\n:7\r\n", RREPLY_MAX_ELEMENTS);
  redisReader *r = redisReaderCreateWithFunctions(&rreply_functions);
  ck_assert_int_eq(redisReaderFeed(r, head, strlen(head)), REDIS_OK);
  void *reply = NULL;
  ck_assert_int_eq(redisReaderGetReply(r, &reply), REDIS_OK);
  ck_assert_ptr_null(reply);
  ck_assert_int_eq(r->err, 0);
  redisReaderFree(r);
}
END_TEST

/* rreply_use() on a real (unconnected) context's reader. */
START_TEST(use_installs_the_functions) {
  redisContext *c = redisConnectUnix("/nonexistent/recd-test.sock");
  ck_assert_ptr_nonnull(c);
  rreply_use(c);
  ck_assert_ptr_eq(c->reader->fn, &rreply_functions);
  redisFree(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("rreply");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, every_shape_is_the_same_tree);
  tcase_add_test(tc, long_replies_span_blocks);
  tcase_add_test(tc, huge_declared_arrays_are_refused);
  tcase_add_test(tc, errors_and_partial_replies_free_cleanly);
  tcase_add_test(tc, use_installs_the_functions);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
