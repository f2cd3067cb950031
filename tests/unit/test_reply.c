/* test_reply.c - the reply buffer: exact bytes for every reply type, a round
 * trip through hiredis's redisReader (a real client parser), deferred array
 * lengths, and consume/append interleaving against an unconsumed twin. */
#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "recd/reply.h"
#include "recd/rng.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Asserts that the pending bytes are exactly want[0, n) and all ready. */
static void expect_bytes(const reply_buf_t *r, const char *want, size_t n) {
  size_t got;
  const char *d = reply_data(r, &got);
  ck_assert_uint_eq(reply_len(r), n);
  ck_assert_uint_eq(got, n);
  ck_assert_msg(n == 0 || memcmp(d, want, n) == 0, "got %.*s, want %.*s", (int)got, d ? d : "",
                (int)n, want);
}
#define EXPECT(r, lit) expect_bytes((r), S(lit))

/* Runs one append on a fresh buffer and compares the bytes. */
#define ONE(call, lit)                                                                             \
  do {                                                                                             \
    reply_buf_t r_;                                                                                \
    reply_init(&r_);                                                                               \
    reply_buf_t *r = &r_;                                                                          \
    ck_assert_int_eq((call), 0);                                                                   \
    EXPECT(r, lit);                                                                                \
    reply_free(&r_);                                                                               \
  } while (0)

START_TEST(test_exact_bytes) {
  ONE(reply_simple(r, "OK"), "+OK\r\n");
  ONE(reply_simple(r, ""), "+\r\n");
  ONE(reply_simple_len(r, S("a\r\nb")), "+a  b\r\n");
  ONE(reply_error(r, "syntax error"), "-ERR syntax error\r\n");
  ONE(reply_error(r, "-WRONGTYPE bad type"), "-WRONGTYPE bad type\r\n");
  ONE(reply_error(r, ""), "-ERR \r\n");
  ONE(reply_error(r, "bad\r\nthing\n"), "-ERR bad  thing \r\n");
  ONE(reply_error_len(r, S("-X\ny")), "-X y\r\n");
  ONE(reply_errorf(r, "unknown command '%s', with args", "x\ny"),
      "-ERR unknown command 'x y', with args\r\n");
  ONE(reply_errorf(r, "-NOAUTH %s required.", "Authentication"),
      "-NOAUTH Authentication required.\r\n");
  ONE(reply_errorf(r, "%s", ""), "-ERR \r\n");
  ONE(reply_int(r, 0), ":0\r\n");
  ONE(reply_int(r, -1), ":-1\r\n");
  ONE(reply_int(r, 1234567), ":1234567\r\n");
  ONE(reply_int(r, LLONG_MAX), ":9223372036854775807\r\n");
  ONE(reply_int(r, LLONG_MIN), ":-9223372036854775808\r\n");
  ONE(reply_bulk(r, "", 0), "$0\r\n\r\n");
  ONE(reply_bulk(r, NULL, 0), "$0\r\n\r\n");
  ONE(reply_bulk(r, S("a\0\r\n")), "$4\r\na\0\r\n\r\n");
  ONE(reply_bulk_cstr(r, "hello"), "$5\r\nhello\r\n");
  ONE(reply_bulk_cstr(r, NULL), "$-1\r\n");
  ONE(reply_null(r), "$-1\r\n");
  ONE(reply_array(r, 3), "*3\r\n");
  ONE(reply_array(r, 0), "*0\r\n");
  ONE(reply_null_array(r), "*-1\r\n");
  ONE(reply_double(r, 0.1), "$3\r\n0.1\r\n");
  ONE(reply_double(r, 1.0 / 3), "$18\r\n0.3333333333333333\r\n");
  ONE(reply_double(r, -2.5), "$4\r\n-2.5\r\n");
  ONE(reply_double(r, INFINITY), "$3\r\ninf\r\n");
  ONE(reply_double(r, -INFINITY), "$4\r\n-inf\r\n");
  ONE(reply_double(r, NAN), "$3\r\nnan\r\n");
  ONE(reply_float(r, 0.3f), "$3\r\n0.3\r\n");
  ONE(reply_float(r, -1.0f / 3), "$11\r\n-0.33333334\r\n");
  ONE(reply_raw(r, S("+PONG\r\n")), "+PONG\r\n");
}
END_TEST

START_TEST(test_number_format) {
  static const struct {
    double d;
    const char *s;
  } dt[] = {
      {0.0, "0"},       {-0.0, "-0"},   {1.0, "1"},          {100.0, "100"},
      {0.1, "0.1"},     {0.3, "0.3"},   {1e300, "1e+300"},   {1.5e-7, "1.5e-07"},
      {123456789012345.0, "123456789012345"}, {1234567890123456.0, "1234567890123456"},
      {0.1 + 0.2, "0.30000000000000004"}, {DBL_MAX, "1.7976931348623157e+308"},
  };
  char buf[REPLY_DOUBLE_LEN];
  for (size_t i = 0; i < sizeof dt / sizeof dt[0]; i++) {
    size_t n = reply_format_double(buf, dt[i].d);
    ck_assert_str_eq(buf, dt[i].s);
    ck_assert_uint_eq(n, strlen(dt[i].s));
  }
  static const struct {
    float f;
    const char *s;
  } ft[] = {{0.0f, "0"}, {0.1f, "0.1"}, {1.0f / 3, "0.33333334"}, {16777217.0f, "16777216"}, {1e-7f, "1e-07"}, {16777216.0f, "16777216"},
            {3.4028235e38f, "3.4028235e+38"}, {0.0625f, "0.0625"}};
  for (size_t i = 0; i < sizeof ft / sizeof ft[0]; i++) {
    reply_format_float(buf, ft[i].f);
    ck_assert_str_eq(buf, ft[i].s);
  }
  /* Every finite double and float reads back exactly (subnormals included,
   * where the text is round-trip but not always the shortest), and a
   * decimal of few digits prints as itself. */
  rng_t rng;
  rng_seed(&rng, 1);
  size_t bad = 0;
  char why[128] = "";
  for (int i = 0; i < 50000; i++) {
    uint64_t bits = rng_next(&rng);
    double d;
    memcpy(&d, &bits, sizeof d);
    if (isfinite(d)) {
      reply_format_double(buf, d);
      if (strtod(buf, NULL) != d && !bad++)
        snprintf(why, sizeof why, "double %a -> %s", d, buf);
    }
    uint32_t fb = (uint32_t)(bits >> 32);
    float f;
    memcpy(&f, &fb, sizeof f);
    if (isfinite(f)) {
      reply_format_float(buf, f);
      if (strtof(buf, NULL) != f && !bad++)
        snprintf(why, sizeof why, "float %a -> %s", (double)f, buf);
    }
    char dec[32];
    snprintf(dec, sizeof dec, "%d.%03d", (int)(rng_next(&rng) % 1000), (int)(rng_next(&rng) % 1000));
    double v = strtod(dec, NULL);
    char want[32];
    snprintf(want, sizeof want, "%g", v);
    reply_format_double(buf, v);
    if (strcmp(buf, want) != 0 && !bad++)
      snprintf(why, sizeof why, "%s -> %s, want %s", dec, buf, want);
  }
  ck_assert_msg(bad == 0, "%zu bad, first: %s", bad, why);
}
END_TEST

START_TEST(test_deferred_array) {
  reply_buf_t r;
  reply_defer_t a, b;
  size_t n;

  /* Slot first in the buffer: the header is right-aligned, nothing moves. */
  reply_init(&r);
  ck_assert_int_eq(reply_defer_array(&r, &a), 0);
  ck_assert_ptr_null(reply_data(&r, &n));
  ck_assert_uint_eq(n, 0);
  reply_bulk_cstr(&r, "a");
  reply_bulk_cstr(&r, "b");
  ck_assert_int_eq(reply_set_array_len(&r, a, 2), 0);
  EXPECT(&r, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
  reply_free(&r);

  /* Slot after unsent bytes: only those are offered until it is filled. */
  reply_init(&r);
  reply_simple(&r, "OK");
  ck_assert_int_eq(reply_defer_array(&r, &a), 0);
  reply_int(&r, 1);
  reply_data(&r, &n);
  ck_assert_uint_eq(n, 5);
  ck_assert_uint_eq(reply_len(&r), 5 + 23 + 4);
  ck_assert_int_eq(reply_set_array_len(&r, a, 1), 0);
  EXPECT(&r, "+OK\r\n*1\r\n:1\r\n");
  reply_free(&r);

  /* Nested, inner first; empty; and the widest count. */
  reply_init(&r);
  reply_simple(&r, "x");
  ck_assert_int_eq(reply_defer_array(&r, &a), 0);
  ck_assert_int_eq(reply_defer_array(&r, &b), 0);
  reply_bulk_cstr(&r, "y");
  ck_assert_int_eq(reply_set_array_len(&r, b, 1), 0);
  reply_data(&r, &n);
  ck_assert_uint_eq(n, 4); /* outer still open */
  ck_assert_int_eq(reply_defer_array(&r, &b), 0);
  ck_assert_int_eq(reply_set_array_len(&r, b, 0), 0);
  ck_assert_int_eq(reply_set_array_len(&r, a, 2), 0);
  ck_assert_int_eq(reply_defer_array(&r, &a), 0);
  ck_assert_int_eq(reply_set_array_len(&r, a, SIZE_MAX), 0);
  EXPECT(&r, "+x\r\n*2\r\n*1\r\n$1\r\ny\r\n*0\r\n*18446744073709551615\r\n");
  reply_free(&r);

  /* Outer before inner is a programming error, and sticky. */
  reply_init(&r);
  reply_defer_array(&r, &a);
  reply_defer_array(&r, &b);
  ck_assert_int_eq(reply_set_array_len(&r, a, 1), RECD_EINVAL);
  ck_assert_int_eq(reply_set_array_len(&r, b, 1), RECD_EINVAL);
  ck_assert_int_eq(reply_simple(&r, "OK"), RECD_EINVAL);
  ck_assert_int_eq(r.err, RECD_EINVAL);
  reply_reset(&r);
  ck_assert_int_eq(r.err, 0);
  ck_assert_uint_eq(reply_len(&r), 0);
  /* Too deep. */
  for (int i = 0; i < REPLY_DEFER_MAX; i++)
    ck_assert_int_eq(reply_defer_array(&r, &a), 0);
  ck_assert_int_eq(reply_defer_array(&r, &b), RECD_EINVAL);
  reply_free(&r);

  /* A handle survives the buffer compacting and growing under it. */
  reply_init(&r);
  char big[3000];
  memset(big, 'q', sizeof big);
  reply_bulk(&r, big, 1000);
  reply_consume(&r, 900);
  ck_assert_int_eq(reply_defer_array(&r, &a), 0);
  for (int i = 0; i < 10; i++)
    reply_bulk(&r, big, sizeof big);
  ck_assert_int_eq(reply_set_array_len(&r, a, 10), 0);
  const char *d = reply_data(&r, &n);
  size_t head = 7 + 1000 + 2 - 900;
  ck_assert_uint_eq(n, head + 5 + 10 * (7 + 3000 + 2));
  ck_assert_int_eq(memcmp(d + head, "*10\r\n$3000\r\nqq", 14), 0);
  reply_free(&r);
}
END_TEST

/* Two buffers fed the same replies: `a` is drained in random bites at
 * random moments (also while deferred slots are open), `b` never is. */
typedef struct twin {
  reply_buf_t a, b;
  rng_t rng;
  char *sent; /* everything taken from a, in order */
  size_t nsent, cap;
} twin_t;

/* Sends a random part (often all) of what `a` offers. */
static void maybe_send(twin_t *t) {
  size_t n;
  const char *d = reply_data(&t->a, &n);
  uint64_t dice = rng_next(&t->rng) % 4;
  size_t take = dice == 0 ? n : dice == 1 ? 0 : (size_t)(rng_next(&t->rng) % (n + 1));
  if (t->nsent + take > t->cap) {
    t->cap = (t->nsent + take) * 2;
    t->sent = realloc(t->sent, t->cap);
    ck_assert_ptr_nonnull(t->sent);
  }
  if (take)
    memcpy(t->sent + t->nsent, d, take);
  t->nsent += take;
  reply_consume(&t->a, take);
}

/* Appends one random reply, maybe a nested (deferred) array, to both. */
static void random_reply(twin_t *t, int depth) {
  char tmp[600];
  reply_buf_t *a = &t->a, *b = &t->b;
  rng_t *rng = &t->rng;
  switch (rng_next(rng) % (depth < 2 ? 9 : 7)) {
  case 0:
    reply_simple(a, "OK");
    reply_simple(b, "OK");
    break;
  case 1: {
    long long v = (long long)rng_next(rng);
    reply_int(a, v);
    reply_int(b, v);
    break;
  }
  case 2: {
    size_t n = rng_next(rng) % sizeof tmp;
    for (size_t i = 0; i < n; i++)
      tmp[i] = (char)rng_next(rng);
    reply_bulk(a, tmp, n);
    reply_bulk(b, tmp, n);
    break;
  }
  case 3:
    reply_null(a);
    reply_null(b);
    break;
  case 4:
    reply_error(a, "boom\r\n");
    reply_error(b, "boom\r\n");
    break;
  case 5: {
    double d = rng_uniform(rng) * 1e6 - 5e5;
    reply_double(a, d);
    reply_double(b, d);
    break;
  }
  case 6:
    reply_null_array(a);
    reply_null_array(b);
    break;
  case 7: {
    size_t n = rng_next(rng) % 4;
    reply_array(a, n);
    reply_array(b, n);
    for (size_t i = 0; i < n; i++)
      random_reply(t, depth + 1);
    break;
  }
  default: {
    reply_defer_t ha, hb;
    reply_defer_array(a, &ha);
    reply_defer_array(b, &hb);
    size_t n = rng_next(rng) % 5;
    for (size_t i = 0; i < n; i++) {
      random_reply(t, depth + 1);
      maybe_send(t);
    }
    reply_set_array_len(a, ha, n);
    reply_set_array_len(b, hb, n);
    break;
  }
  }
  maybe_send(t);
}

/* Parses all of s with hiredis; returns the number of replies or -1. */
static long hiredis_count(const char *s, size_t n, char *why, size_t whylen) {
  redisReader *rd = redisReaderCreate();
  ck_assert_ptr_nonnull(rd);
  long count = -1;
  if (redisReaderFeed(rd, s, n) == REDIS_OK) {
    count = 0;
    for (;;) {
      void *rep = NULL;
      if (redisReaderGetReply(rd, &rep) != REDIS_OK) {
        snprintf(why, whylen, "hiredis: %s", rd->errstr);
        count = -1;
        break;
      }
      if (rep == NULL)
        break;
      freeReplyObject(rep);
      count++;
    }
    /* Everything must have been consumed: no partial reply left over. */
    if (count >= 0 && rd->len != rd->pos) {
      snprintf(why, whylen, "hiredis: %zu trailing bytes", rd->len - rd->pos);
      count = -1;
    }
  }
  redisReaderFree(rd);
  return count;
}

/* The consumed stream of a buffer that is drained in random bites while it
 * is appended to equals the bytes of a twin that is never drained, and is
 * valid RESP for hiredis. */
START_TEST(test_consume_interleaving) {
  twin_t t = {0};
  reply_init(&t.a);
  reply_init(&t.b);
  rng_seed(&t.rng, 99);
  long replies = 0;
  for (int round = 0; round < 3000; round++) {
    random_reply(&t, 0);
    replies++;
  }
  size_t n;
  const char *d = reply_data(&t.a, &n);
  t.sent = realloc(t.sent, t.nsent + n + 1);
  ck_assert_ptr_nonnull(t.sent);
  if (n)
    memcpy(t.sent + t.nsent, d, n);
  t.nsent += n;
  reply_consume(&t.a, n);
  ck_assert_uint_eq(reply_len(&t.a), 0);
  ck_assert_int_eq(t.a.err, 0);
  ck_assert_int_eq(t.b.err, 0);

  const char *want = reply_data(&t.b, &n);
  ck_assert_uint_eq(t.nsent, n);
  ck_assert_int_eq(memcmp(t.sent, want, n), 0);
  char why[256] = "";
  ck_assert_msg(hiredis_count(t.sent, t.nsent, why, sizeof why) == replies, "%s", why);
  free(t.sent);
  reply_free(&t.a);
  reply_free(&t.b);
}
END_TEST

START_TEST(test_hiredis_roundtrip) {
  reply_buf_t r;
  reply_init(&r);
  reply_simple(&r, "PONG");
  reply_error(&r, "-WRONGTYPE Operation\r\nagainst a key");
  reply_int(&r, LLONG_MIN);
  reply_bulk(&r, S("bin\0\r\n"));
  reply_null(&r);
  reply_null_array(&r);
  reply_defer_t h, h2;
  reply_defer_array(&r, &h);
  reply_bulk_cstr(&r, "item:1");
  reply_float(&r, 0.75f);
  reply_defer_array(&r, &h2);
  reply_set_array_len(&r, h2, 0);
  reply_array(&r, 2);
  reply_double(&r, -1e-300);
  reply_bulk_cstr(&r, NULL);
  reply_set_array_len(&r, h, 4);
  ck_assert_int_eq(r.err, 0);

  size_t n;
  const char *d = reply_data(&r, &n);
  redisReader *rd = redisReaderCreate();
  ck_assert_int_eq(redisReaderFeed(rd, d, n), REDIS_OK);
  redisReply *rep;
  void *v;

#define NEXT()                                                                                     \
  do {                                                                                             \
    ck_assert_int_eq(redisReaderGetReply(rd, &v), REDIS_OK);                                       \
    ck_assert_ptr_nonnull(v);                                                                      \
    rep = v;                                                                                       \
  } while (0)
  NEXT();
  ck_assert_int_eq(rep->type, REDIS_REPLY_STATUS);
  ck_assert_str_eq(rep->str, "PONG");
  freeReplyObject(rep);
  NEXT();
  ck_assert_int_eq(rep->type, REDIS_REPLY_ERROR);
  ck_assert_str_eq(rep->str, "WRONGTYPE Operation  against a key");
  freeReplyObject(rep);
  NEXT();
  ck_assert_int_eq(rep->type, REDIS_REPLY_INTEGER);
  ck_assert(rep->integer == LLONG_MIN);
  freeReplyObject(rep);
  NEXT();
  ck_assert_int_eq(rep->type, REDIS_REPLY_STRING);
  ck_assert_uint_eq(rep->len, 6);
  ck_assert_int_eq(memcmp(rep->str, "bin\0\r\n", 6), 0);
  freeReplyObject(rep);
  NEXT();
  ck_assert_int_eq(rep->type, REDIS_REPLY_NIL);
  freeReplyObject(rep);
  NEXT();
  ck_assert_int_eq(rep->type, REDIS_REPLY_NIL); /* hiredis maps *-1 to nil */
  freeReplyObject(rep);
  NEXT();
  ck_assert_int_eq(rep->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(rep->elements, 4);
  ck_assert_str_eq(rep->element[0]->str, "item:1");
  ck_assert(strtof(rep->element[1]->str, NULL) == 0.75f);
  ck_assert_int_eq(rep->element[2]->type, REDIS_REPLY_ARRAY);
  ck_assert_uint_eq(rep->element[2]->elements, 0);
  ck_assert_uint_eq(rep->element[3]->elements, 2);
  ck_assert(strtod(rep->element[3]->element[0]->str, NULL) == -1e-300);
  ck_assert_int_eq(rep->element[3]->element[1]->type, REDIS_REPLY_NIL);
  freeReplyObject(rep);
  ck_assert_int_eq(redisReaderGetReply(rd, &v), REDIS_OK);
  ck_assert_ptr_null(v);
#undef NEXT
  redisReaderFree(rd);
  reply_free(&r);
}
END_TEST

START_TEST(test_limit_and_errors) {
  reply_buf_t r;
  reply_init(&r);
  reply_set_limit(&r, 20);
  ck_assert_int_eq(reply_bulk(&r, "0123456789", 10), 0); /* 17 bytes */
  ck_assert_int_eq(reply_simple(&r, ""), 0);             /* 20: exactly the limit */
  ck_assert_int_eq(reply_int(&r, 1), RECD_ERANGE);
  ck_assert_int_eq(r.err, RECD_ERANGE);
  ck_assert_int_eq(reply_simple(&r, ""), RECD_ERANGE); /* sticky */
  ck_assert_int_eq(reply_errorf(&r, "x"), RECD_ERANGE);
  reply_defer_t h;
  ck_assert_int_eq(reply_defer_array(&r, &h), RECD_ERANGE);
  ck_assert_uint_eq(reply_len(&r), 20);
  char *block;
  const char *d;
  size_t n;
  ck_assert_int_eq(reply_detach(&r, &block, &d, &n), RECD_ERANGE);
  reply_reset(&r);
  ck_assert_int_eq(r.err, 0);
  /* The limit counts pending bytes, so sending makes room again. */
  ck_assert_int_eq(reply_bulk(&r, "0123456789", 10), 0);
  ck_assert_int_eq(reply_int(&r, 12), RECD_ERANGE);
  reply_reset(&r);
  ck_assert_int_eq(reply_bulk(&r, "0123456789", 10), 0);
  reply_consume(&r, 10);
  ck_assert_int_eq(reply_int(&r, 12), 0);
  /* reply_errorf reserves exactly what it writes: 20 bytes fit. */
  reply_reset(&r);
  ck_assert_int_eq(reply_errorf(&r, "%s", "abcdefghijklm"), 0);
  EXPECT(&r, "-ERR abcdefghijklm\r\n");
  reply_reset(&r);
  ck_assert_int_eq(reply_errorf(&r, "-%s", "ABCDEFGHIJKLMNOPQ"), 0);
  ck_assert_uint_eq(reply_len(&r), 20);
  reply_reset(&r);
  ck_assert_int_eq(reply_errorf(&r, "%s", "abcdefghijklmn"), RECD_ERANGE);
  /* Long formatted messages are not truncated. */
  reply_reset(&r);
  reply_set_limit(&r, 0);
  char longmsg[3000];
  memset(longmsg, 'm', sizeof longmsg - 1);
  longmsg[sizeof longmsg - 1] = '\0';
  ck_assert_int_eq(reply_errorf(&r, "x%sy", longmsg), 0);
  ck_assert_uint_eq(reply_len(&r), 5 + 1 + 2999 + 1 + 2);
  reply_free(&r);
}
END_TEST

START_TEST(test_detach_and_memory) {
  reply_buf_t r;
  reply_init(&r);
  char *block;
  const char *d;
  size_t n;
  ck_assert_int_eq(reply_detach(&r, &block, &d, &n), 0);
  ck_assert_ptr_null(block);
  ck_assert_uint_eq(n, 0);

  reply_simple(&r, "OK");
  reply_simple(&r, "QUEUED");
  reply_consume(&r, 3);
  ck_assert_int_eq(reply_detach(&r, &block, &d, &n), 0);
  ck_assert_ptr_nonnull(block);
  ck_assert_uint_eq(n, 11);
  ck_assert_int_eq(memcmp(d, "\r\n+QUEUED\r\n", 11), 0);
  ck_assert_uint_eq(reply_len(&r), 0);
  ck_assert_uint_eq(reply_mem(&r), 0);
  free(block);

  /* Not while a slot is open; nothing changes. */
  reply_defer_t h;
  reply_simple(&r, "A");
  reply_defer_array(&r, &h);
  ck_assert_int_eq(reply_detach(&r, &block, &d, &n), RECD_EINVAL);
  ck_assert_int_eq(r.err, 0);
  ck_assert_int_eq(reply_set_array_len(&r, h, 0), 0);
  EXPECT(&r, "+A\r\n*0\r\n");
  reply_consume(&r, 1000); /* clamped */
  ck_assert_uint_eq(reply_len(&r), 0);

  /* A big reply's buffer is released once it has all been sent. */
  static char big[1 << 20];
  ck_assert_int_eq(reply_bulk(&r, big, sizeof big), 0);
  ck_assert_uint_ge(reply_mem(&r), sizeof big);
  reply_data(&r, &n);
  reply_consume(&r, n - 1);
  ck_assert_uint_ge(reply_mem(&r), sizeof big);
  reply_consume(&r, 1);
  ck_assert_uint_eq(reply_mem(&r), 0);
  ck_assert_int_eq(reply_simple(&r, "OK"), 0);
  EXPECT(&r, "+OK\r\n");
  reply_free(&r);
  reply_free(&r);
}
END_TEST

static Suite *reply_suite(void) {
  Suite *s = suite_create("reply");
  TCase *tc = tcase_create("buffer");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_exact_bytes);
  tcase_add_test(tc, test_number_format);
  tcase_add_test(tc, test_deferred_array);
  tcase_add_test(tc, test_consume_interleaving);
  tcase_add_test(tc, test_hiredis_roundtrip);
  tcase_add_test(tc, test_limit_and_errors);
  tcase_add_test(tc, test_detach_and_memory);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(reply_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
