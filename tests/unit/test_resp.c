/* test_resp.c - the RESP request parser, fed in every fragmentation.
 *
 * Each case is an input and the transcript the parser must produce: the
 * commands in order ("[arg|arg]", non-printables as \xHH), then MORE(n) with
 * the bytes still buffered, or ERR(message). check_all() feeds the input
 * whole, byte by byte, split at every offset, in 4-byte chunks, through
 * reserve/commit, and in random chunks, and requires the same transcript
 * every time: the parser's verdict may not depend on how TCP cut the bytes.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recd/resp.h"
#include "recd/rng.h"

/* A string literal with its length, for inputs holding NUL bytes. */
#define S(lit) (lit), (sizeof(lit) - 1)

typedef struct sbuf {
  char *s;
  size_t n, cap;
} sbuf_t;

static void sb_putn(sbuf_t *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1)
      cap *= 2;
    b->s = realloc(b->s, cap);
    if (b->s == NULL)
      abort();
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = '\0';
}

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Transcript form of one argument. */
static void sb_arg(sbuf_t *b, const char *a, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)a[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '|' && c != '[' && c != ']')
      sb_putn(b, (const char *)&c, 1);
    else
      sb_printf(b, "\\x%02x", c);
  }
}

static void sb_cmd(sbuf_t *b, const resp_cmd_t *cmd) {
  sb_putn(b, "[", 1);
  for (size_t i = 0; i < cmd->argc; i++) {
    if (i)
      sb_putn(b, "|", 1);
    sb_arg(b, cmd->argv[i], cmd->argvlen[i]);
  }
  sb_putn(b, "]", 1);
}

/* Drains the parser into b; returns 1 once an error was recorded. Contract
 * violations are written into the transcript (as "!..."), so that one
 * string comparison catches them without asserting in a loop. */
static int drain(resp_parser_t *p, sbuf_t *b) {
  for (;;) {
    resp_cmd_t cmd;
    resp_status_t st = resp_parser_next(p, &cmd);
    if (st == RESP_NEED_MORE)
      return 0;
    if (st == RESP_ERROR) {
      sb_printf(b, "ERR(%s)", p->errstr);
      char saved[RESP_ERRSTR_LEN];
      memcpy(saved, p->errstr, sizeof saved);
      if (resp_parser_next(p, &cmd) != RESP_ERROR || strcmp(saved, p->errstr) != 0)
        sb_printf(b, "!not-sticky");
      if (resp_parser_feed(p, "x", 1) != p->err || p->err == 0)
        sb_printf(b, "!feed-after-error");
      return 1;
    }
    if (st != RESP_OK) {
      sb_printf(b, "!status(%d)", (int)st);
      return 1;
    }
    if (cmd.argc == 0 || cmd.nbytes == 0)
      sb_printf(b, "!empty");
    for (size_t i = 0; i < cmd.argc; i++)
      if (cmd.argv[i][cmd.argvlen[i]] != '\0')
        sb_printf(b, "!nonul");
    sb_cmd(b, &cmd);
  }
}

enum { VIA_FEED, VIA_RESERVE };

/* Parses in[0, n): a first chunk of `first` bytes, then chunks of `step`
 * (a step of 0 means random sizes 1..64 from `seed`). Returns the
 * transcript (malloc'ed). */
static char *transcript(const char *in, size_t n, const resp_config_t *cfg, size_t first,
                        size_t step, int via, uint64_t seed) {
  resp_parser_t p;
  sbuf_t b = {0};
  sb_putn(&b, "", 0);
  if (resp_parser_init(&p, cfg) != 0) {
    sb_printf(&b, "!init");
    return b.s;
  }
  rng_t rng;
  rng_seed(&rng, seed);
  size_t at = 0;
  int failed = 0;
  while (at < n && !failed) {
    size_t c = at == 0 && first ? first : step ? step : 1 + rng_next(&rng) % 64;
    if (c > n - at)
      c = n - at;
    if (via == VIA_FEED) {
      if (resp_parser_feed(&p, in + at, c) != 0)
        sb_printf(&b, "!feed");
    } else {
      char *dst;
      size_t avail;
      if (resp_parser_reserve(&p, c, &dst, &avail) != 0 || avail < c) {
        sb_printf(&b, "!reserve");
        break;
      }
      memcpy(dst, in + at, c);
      resp_parser_commit(&p, c);
    }
    at += c;
    failed = drain(&p, &b);
  }
  if (n == 0)
    failed = drain(&p, &b);
  if (!failed)
    sb_printf(&b, "MORE(%zu)", resp_parser_bytes_buffered(&p));
  resp_parser_free(&p);
  return b.s;
}

/* The heart of the suite: every fragmentation gives `expect`. */
static void check_all(const char *in, size_t n, const resp_config_t *cfg, const char *expect) {
  struct {
    const char *name;
    size_t first, step;
    int via;
  } modes[] = {
      {"whole", n, n, VIA_FEED},    {"byte-by-byte", 0, 1, VIA_FEED},
      {"4-byte chunks", 0, 4, VIA_FEED}, {"reserve/commit by 3", 0, 3, VIA_RESERVE},
      {"random chunks", 0, 0, VIA_FEED}, {"random reserve", 0, 0, VIA_RESERVE},
  };
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    char *t = transcript(in, n, cfg, modes[m].first, modes[m].step, modes[m].via, 42 + m);
    ck_assert_msg(strcmp(t, expect) == 0, "%s: got %s, want %s", modes[m].name, t, expect);
    free(t);
  }
  /* Split at every offset (sampled for long inputs to stay fast). */
  size_t stride = n <= 4096 ? 1 : n / 512;
  char *bad = NULL;
  size_t bad_at = 0;
  for (size_t k = 1; k < n && bad == NULL; k += stride) {
    char *t = transcript(in, n, cfg, k, n, VIA_FEED, 0);
    if (strcmp(t, expect) != 0) {
      bad = t;
      bad_at = k;
    } else {
      free(t);
    }
  }
  ck_assert_msg(bad == NULL, "split at %zu: got %s, want %s", bad_at, bad ? bad : "", expect);
}

#define CHECK(lit, expect) check_all(S(lit), NULL, expect)
#define CHECK_CFG(lit, cfg, expect) check_all(S(lit), cfg, expect)

START_TEST(test_multibulk) {
  CHECK("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n", "[SET|k|hello]MORE(0)");
  CHECK("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", "[PING][ECHO|hi]MORE(0)");
  /* Incomplete requests wait, with every byte accounted for. */
  CHECK("*2\r\n$3\r\nGET\r\n$1\r\n", "MORE(17)");
  CHECK("*1\r\n$4\r\nPING\r\n*2\r\n$3", "[PING]MORE(6)");
  CHECK("*1\r\n$4\r\nPI", "MORE(10)");
  CHECK("*1\r\n$4\r\nPING\r", "MORE(13)");
  CHECK("*", "MORE(1)");
  CHECK("", "MORE(0)");
  /* 20 characters is the longest strict integer: still parsed (and then
   * refused by the limits), not cut off as too long. */
  CHECK("*-9223372036854775808\r\n", "ERR(Protocol error: invalid multibulk length)");
  CHECK("*1\r\n$-9223372036854775808\r\n", "ERR(Protocol error: invalid bulk length)");
}
END_TEST

START_TEST(test_binary_args) {
  CHECK("*4\r\n$3\r\na\0b\r\n$4\r\n\r\n\r\n\r\n$0\r\n\r\n$2\r\n\xff\x01\r\n",
        "[a\\x00b|\\x0d\\x0a\\x0d\\x0a||\\xff\\x01]MORE(0)");
  /* A bulk that looks like protocol is data. */
  CHECK("*2\r\n$4\r\n*1\r\n\r\n$5\r\n$-1\r\n\r\n", "[*1\\x0d\\x0a|$-1\\x0d\\x0a]MORE(0)");
}
END_TEST

START_TEST(test_empty_multibulk_skipped) {
  CHECK("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n*0\r\n", "[PING]MORE(0)");
  CHECK("*0\r\n", "MORE(0)");
  CHECK("*-1\r\n*0\r\n*-1\r\n", "MORE(0)");
}
END_TEST

START_TEST(test_inline) {
  CHECK("PING\r\n", "[PING]MORE(0)");
  CHECK("set a b\n", "[set|a|b]MORE(0)");
  CHECK("  set   a\tb  \r\n", "[set|a|b]MORE(0)");
  /* Blank lines are skipped, as in Redis. */
  CHECK("\r\n\n   \r\n\t\nPING\n\n", "[PING]MORE(0)");
  CHECK("set \"a b\" 'c d'\r\n", "[set|a b|c d]MORE(0)");
  CHECK("echo \"\\x41\\x4a\\x4a\\n\\t\\r\\b\\a\\\\\\\"\\q\"\n",
        "[echo|AJJ\\x0a\\x09\\x0d\\x08\\x07\\x5c\"q]MORE(0)");
  /* \x without two hex digits is just an escaped 'x'. */
  CHECK("echo \"\\xZZ\" \"\\x4\"\n", "[echo|xZZ|x4]MORE(0)");
  /* Single quotes only know \'. */
  CHECK("echo 'it\\'s' 'a\\b\"c'\n", "[echo|it's|a\\x5cb\"c]MORE(0)");
  /* A quote may open mid-word, and empty quotes are empty arguments. */
  CHECK("foo\"bar\" x\n", "[foobar|x]MORE(0)");
  CHECK("echo \"\" ''\n", "[echo||]MORE(0)");
  /* Binary safe: a raw NUL is a byte, \x00 and \xff decode. */
  CHECK("ec\0ho\n", "[ec\\x00ho]MORE(0)");
  CHECK("set k \"\\x00\\xfF\"\n", "[set|k|\\x00\\xff]MORE(0)");
  /* A lone CR inside the line separates words; \v belongs to the word (the
   * sdssplitargs rules: words end at space, tab, CR, LF). */
  CHECK("a\rb\n", "[a|b]MORE(0)");
  CHECK("a\vb\n", "[a\\x0bb]MORE(0)");
  /* The quote must close before a blank or the end of the line. */
  CHECK("echo \"a\"\tb\n", "[echo|a|b]MORE(0)");
  CHECK("echo 'a'\r\n", "[echo|a]MORE(0)");
  /* Mixed with multibulk in one pipeline. */
  CHECK("PING\r\n*1\r\n$4\r\nPING\r\nECHO hi\n", "[PING][PING][ECHO|hi]MORE(0)");
  /* Unterminated line waits. */
  CHECK("PING", "MORE(4)");
  CHECK("PING\r", "MORE(5)");
  CHECK("GET \"a", "MORE(6)");
}
END_TEST

START_TEST(test_inline_errors) {
  const char *ub = "ERR(Protocol error: unbalanced quotes in request)";
  CHECK("set \"abc\r\n", ub);
  CHECK("set 'abc\n", ub);
  CHECK("set \"a\"b\n", ub);
  CHECK("set 'a'b\n", ub);
  CHECK("set \"abc\\\"\n", ub);
  CHECK("set \"abc\\\n", ub);
  CHECK("\"\n", ub);
  sbuf_t want = {0};
  sb_printf(&want, "[PING]%s", ub);
  CHECK("PING\nset \"x\nPING\n", want.s);
  free(want.s);
}
END_TEST

START_TEST(test_multibulk_errors) {
  const char *mb = "ERR(Protocol error: invalid multibulk length)";
  const char *bl = "ERR(Protocol error: invalid bulk length)";
  CHECK("*x\r\n", mb);
  CHECK("*-2\r\n", mb);
  CHECK("*01\r\n", mb);
  CHECK("*-0\r\n", mb);
  CHECK("*1\rx", mb);
  CHECK("*\r\n", mb);
  CHECK("* 1\r\n", mb);
  CHECK("*+1\r\n", mb);
  CHECK("*1 \r\n", mb);
  CHECK("*99999999999999999999\r\n", mb);
  CHECK("*123456789012345678901234", mb);
  CHECK("*1\r\nx\r\n", "ERR(Protocol error: expected '$', got 'x')");
  CHECK("*1\r\n\r\n", "ERR(Protocol error: expected '$', got '\\x0d')");
  CHECK("*2\r\n$1\r\na\r\n*1\r\n", "ERR(Protocol error: expected '$', got '*')");
  CHECK("*1\r\n$x\r\n", bl);
  CHECK("*1\r\n$-1\r\n", bl);
  CHECK("*1\r\n$\r\n", bl);
  CHECK("*1\r\n$01\r\n", bl);
  CHECK("*1\r\n$1\n", bl);
  CHECK("*1\r\n$123456789012345678901", bl);
  /* A byte that cannot be part of a length fails without waiting for CR. */
  CHECK("*x", mb);
  CHECK("*1\r\n$1x", bl);
  CHECK("*1-", mb);
  const char *crlf = "ERR(Protocol error: expected CRLF after bulk data)";
  CHECK("*1\r\n$3\r\nabcX", crlf);
  CHECK("*1\r\n$3\r\nabc\rX", crlf);
  CHECK("*1\r\n$3\r\nabcd\r\n", crlf);
  CHECK("*1\r\n$0\r\n\n", crlf);
  /* Commands before the error come out first. */
  CHECK("*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n*1\r\n$4\r\nPING\r\n", "[PING]ERR(Protocol error: invalid bulk length)");
}
END_TEST

START_TEST(test_limit_edges) {
  resp_config_t cfg = {.max_args = 3, .max_bulk = 5, .max_inline = 8, .max_request = 1000};
  /* max_args: exactly 3 passes, 4 fails, in both forms. */
  CHECK_CFG("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", &cfg, "[a|b|c]MORE(0)");
  CHECK_CFG("*4\r\n", &cfg, "ERR(Protocol error: invalid multibulk length)");
  CHECK_CFG("a b c\n", &cfg, "[a|b|c]MORE(0)");
  CHECK_CFG("a b c d\n", &cfg, "ERR(Protocol error: too many arguments in inline request)");
  /* max_bulk: 5 passes, 6 fails before any body byte arrives. */
  CHECK_CFG("*1\r\n$5\r\nabcde\r\n", &cfg, "[abcde]MORE(0)");
  CHECK_CFG("*1\r\n$6\r\n", &cfg, "ERR(Protocol error: invalid bulk length)");
  /* max_inline: 8 bytes of line (its terminator not counted) pass. */
  const char *big = "ERR(Protocol error: too big inline request)";
  CHECK_CFG("12345678\r\n", &cfg, "[12345678]MORE(0)");
  CHECK_CFG("12345678\n", &cfg, "[12345678]MORE(0)");
  CHECK_CFG("1234 678\n", &cfg, "[1234|678]MORE(0)");
  CHECK_CFG("123456789\n", &cfg, big);
  CHECK_CFG("123456789\r\n", &cfg, big);
  CHECK_CFG("12345678", &cfg, "MORE(8)");
  CHECK_CFG("12345678\r", &cfg, "MORE(9)");
  CHECK_CFG("123456789", &cfg, big);
  CHECK_CFG("12345678\r\r", &cfg, big);
  /* A bare 9th CR could still be the CR of CRLF, so it waits. */
  CHECK_CFG("        \r\n", &cfg, "MORE(0)");
  CHECK_CFG("         \r\n", &cfg, big);
  /* max_request: "*2 abcde fghij" is 4 + 11 + 11 = 26 wire bytes. */
  resp_config_t rq = {.max_request = 26};
  CHECK_CFG("*2\r\n$5\r\nabcde\r\n$5\r\nfghij\r\n", &rq, "[abcde|fghij]MORE(0)");
  rq.max_request = 25;
  CHECK_CFG("*2\r\n$5\r\nabcde\r\n$5\r\nfghij\r\n", &rq, "ERR(Protocol error: too big request)");
  /* The limit applies per request, not to a pipeline. */
  rq.max_request = 26;
  CHECK_CFG("*2\r\n$5\r\nabcde\r\n$5\r\nfghij\r\n*2\r\n$5\r\nabcde\r\n$5\r\nfghij\r\n", &rq,
            "[abcde|fghij][abcde|fghij]MORE(0)");
}
END_TEST

/* A declared length is refused, or at least not allocated, before its bytes
 * arrive: the header alone must not cost memory. */
START_TEST(test_huge_headers_allocate_nothing) {
  resp_parser_t p;
  resp_cmd_t cmd;
  clock_t t0 = clock();

  ck_assert_int_eq(resp_parser_init(&p, NULL), 0);
  ck_assert_int_eq(resp_parser_feed(&p, S("*2147483648\r\n")), 0);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_ERROR);
  ck_assert_str_eq(p.errstr, "Protocol error: invalid multibulk length");
  ck_assert_uint_le(resp_parser_mem(&p), 4096);
  resp_parser_free(&p);

  ck_assert_int_eq(resp_parser_init(&p, NULL), 0);
  ck_assert_int_eq(resp_parser_feed(&p, S("*1\r\n$4294967296\r\n")), 0);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_ERROR);
  ck_assert_str_eq(p.errstr, "Protocol error: invalid bulk length");
  ck_assert_uint_le(resp_parser_mem(&p), 64 * 1024);
  resp_parser_free(&p);

  /* With the largest limits allowed, the claims are legal: still nothing
   * beyond a 1024-entry argv and the bytes received is allocated. */
  resp_config_t cfg = {.max_args = RESP_LIMIT_MAX_ARGS,
                       .max_bulk = RESP_LIMIT_MAX_BYTES,
                       .max_request = RESP_LIMIT_MAX_BYTES};
  ck_assert_int_eq(resp_parser_init(&p, &cfg), 0);
  ck_assert_int_eq(resp_parser_feed(&p, S("*16777216\r\n$1073741000\r\nabc")), 0);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_NEED_MORE);
  ck_assert_uint_le(resp_parser_mem(&p), 64 * 1024);
  ck_assert_uint_eq(resp_parser_bytes_buffered(&p), 27);
  resp_parser_free(&p);

  ck_assert_msg((double)(clock() - t0) / CLOCKS_PER_SEC < 0.5, "huge headers took too long");
}
END_TEST

/* Builds a pipeline of n commands alternating multibulk and inline forms,
 * with its expected transcript. */
static void make_pipeline(size_t n, sbuf_t *in, sbuf_t *want) {
  for (size_t i = 0; i < n; i++) {
    char key[32], val[64];
    int kl = snprintf(key, sizeof key, "key:%zu", i);
    int vl = snprintf(val, sizeof val, "v\r\n%zu", i * 7919);
    if (i % 2 == 0) {
      sb_printf(in, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", kl, key, vl);
      sb_putn(in, val, (size_t)vl);
      sb_putn(in, "\r\n", 2);
      sb_printf(want, "[SET|%s|v\\x0d\\x0a%zu]", key, i * 7919);
    } else {
      sb_printf(in, "GET \"%s\"\r\n", key);
      sb_printf(want, "[GET|%s]", key);
    }
  }
  sb_printf(want, "MORE(0)");
}

START_TEST(test_pipeline_1000) {
  sbuf_t in = {0}, want = {0};
  make_pipeline(1000, &in, &want);
  check_all(in.s, in.n, NULL, want.s);

  /* One feed, 1000 next() calls, in order, without trimming per command:
   * the buffer is not reallocated or moved while they are drained. */
  resp_parser_t p;
  ck_assert_int_eq(resp_parser_init(&p, NULL), 0);
  ck_assert_int_eq(resp_parser_feed(&p, in.s, in.n), 0);
  size_t got = 0, bad = 0, total = 0;
  resp_cmd_t cmd;
  const char *first = NULL;
  while (resp_parser_next(&p, &cmd) == RESP_OK) {
    if (first == NULL)
      first = cmd.argv[0];
    if (cmd.argv[0] < first || strcmp(cmd.argv[0], got % 2 ? "GET" : "SET") != 0)
      bad++;
    total += cmd.nbytes;
    got++;
  }
  ck_assert_uint_eq(got, 1000);
  ck_assert_uint_eq(bad, 0);
  ck_assert_uint_eq(total, in.n);
  ck_assert_uint_eq(resp_parser_bytes_buffered(&p), 0);
  resp_parser_free(&p);
  free(in.s);
  free(want.s);
}
END_TEST

START_TEST(test_error_sticky_and_reset) {
  resp_parser_t p;
  resp_cmd_t cmd;
  ck_assert_int_eq(resp_parser_init(&p, NULL), 0);
  ck_assert_int_eq(resp_parser_feed(&p, S("PING\n*1\r\nx")), 0);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_OK);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_ERROR);
  ck_assert_int_eq(p.err, RECD_EFORMAT);
  ck_assert_str_eq(p.errstr, "Protocol error: expected '$', got 'x'");
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_ERROR);
  ck_assert_int_eq(resp_parser_feed(&p, S("PING\n")), RECD_EFORMAT);
  char *dst;
  size_t avail;
  ck_assert_int_eq(resp_parser_reserve(&p, 16, &dst, &avail), RECD_EFORMAT);
  ck_assert_ptr_null(dst);
  ck_assert_uint_eq(avail, 0);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_ERROR);
  ck_assert_str_eq(p.errstr, "Protocol error: expected '$', got 'x'");

  resp_parser_reset(&p);
  ck_assert_int_eq(p.err, 0);
  ck_assert_str_eq(p.errstr, "");
  ck_assert_uint_eq(resp_parser_bytes_buffered(&p), 0);
  ck_assert_int_eq(resp_parser_feed(&p, S("PING\n")), 0);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_OK);
  ck_assert_uint_eq(cmd.argc, 1);
  ck_assert_str_eq(cmd.argv[0], "PING");
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_NEED_MORE);
  resp_parser_free(&p);
  resp_parser_free(&p); /* twice is harmless */
}
END_TEST

START_TEST(test_cmd_fields) {
  resp_parser_t p;
  resp_cmd_t cmd;
  ck_assert_int_eq(resp_parser_init(&p, NULL), 0);
  ck_assert_int_eq(resp_parser_feed(&p, S("*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n  get  \"k 1\"\r\n")), 0);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_OK);
  ck_assert_uint_eq(cmd.argc, 2);
  ck_assert_uint_eq(cmd.nbytes, 23);
  ck_assert_str_eq(cmd.argv[0], "ECHO");
  ck_assert_uint_eq(cmd.argvlen[1], 3);
  ck_assert_int_eq(memcmp(cmd.argv[1], "a\0b\0", 4), 0);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_OK);
  ck_assert_uint_eq(cmd.argc, 2);
  ck_assert_uint_eq(cmd.nbytes, 14);
  ck_assert_str_eq(cmd.argv[0], "get");
  ck_assert_str_eq(cmd.argv[1], "k 1");
  ck_assert_uint_eq(cmd.argvlen[1], 3);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_NEED_MORE);
  resp_parser_free(&p);
}
END_TEST

/* Arguments of a request that arrives across many feeds survive the buffer
 * growing and moving under them. */
START_TEST(test_args_survive_buffer_moves) {
  resp_parser_t p;
  resp_cmd_t cmd;
  ck_assert_int_eq(resp_parser_init(&p, NULL), 0);
  enum { N = 200, LEN = 1000 };
  sbuf_t in = {0};
  sb_printf(&in, "PING\r\n*%d\r\n", N);
  char arg[LEN];
  for (int i = 0; i < N; i++) {
    memset(arg, 'a' + i % 26, LEN);
    sb_printf(&in, "$%d\r\n", LEN);
    sb_putn(&in, arg, LEN);
    sb_putn(&in, "\r\n", 2);
  }
  size_t got = 0, bad = 0;
  for (size_t at = 0; at < in.n; at += 777) {
    size_t c = in.n - at < 777 ? in.n - at : 777;
    ck_assert_int_eq(resp_parser_feed(&p, in.s + at, c), 0);
    while (resp_parser_next(&p, &cmd) == RESP_OK) {
      got++;
      if (cmd.argc == N)
        for (int i = 0; i < N; i++)
          if (cmd.argvlen[i] != LEN || cmd.argv[i][0] != 'a' + i % 26 ||
              cmd.argv[i][LEN - 1] != 'a' + i % 26 || cmd.argv[i][LEN] != '\0')
            bad++;
    }
  }
  ck_assert_uint_eq(got, 2);
  ck_assert_uint_eq(bad, 0);
  ck_assert_uint_eq(resp_parser_bytes_buffered(&p), 0);
  resp_parser_free(&p);
  free(in.s);
}
END_TEST

/* Lazy trimming keeps memory bounded on an endless stream, and a big
 * request's buffer is given back once the client goes idle. */
START_TEST(test_trim_and_memory) {
  resp_parser_t p;
  resp_cmd_t cmd;
  ck_assert_int_eq(resp_parser_init(&p, NULL), 0);
  const char req[] = "*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
  size_t n = sizeof req - 1, got = 0, off = 0, fed = 0;
  size_t max_mem = 0;
  /* An endless stream of requests in chunks of 1..n+6 bytes, which mostly
   * end mid-request, so the buffer is rarely empty. */
  for (int i = 0; i < 20000; i++) {
    size_t chunk = 1 + (size_t)i % (n + 6);
    for (size_t j = 0; j < chunk; j++) {
      ck_assert_int_eq(resp_parser_feed(&p, req + off, 1), 0);
      off = (off + 1) % n;
    }
    fed += chunk;
    while (resp_parser_next(&p, &cmd) == RESP_OK)
      got++;
    if (resp_parser_mem(&p) > max_mem)
      max_mem = resp_parser_mem(&p);
  }
  ck_assert_uint_eq(got, fed / n);
  ck_assert_uint_le(max_mem, 8192);

  /* A 4 MB bulk in 64 KiB reads, straight into the buffer. */
  resp_parser_reset(&p);
  size_t big = (size_t)4 << 20;
  char hdr[64];
  int hl = snprintf(hdr, sizeof hdr, "*1\r\n$%zu\r\n", big);
  ck_assert_int_eq(resp_parser_feed(&p, hdr, (size_t)hl), 0);
  size_t left = big + 2, reads = 0;
  resp_status_t st = RESP_NEED_MORE;
  while (left > 0) {
    char *dst;
    size_t avail;
    ck_assert_int_eq(resp_parser_reserve(&p, 65536, &dst, &avail), 0);
    size_t c = left < 65536 ? left : 65536;
    memset(dst, 'z', c);
    if (left == c) {
      dst[c - 2] = '\r';
      dst[c - 1] = '\n';
    }
    resp_parser_commit(&p, c);
    left -= c;
    reads++;
    st = resp_parser_next(&p, &cmd);
    if (left > 0 && st != RESP_NEED_MORE)
      break;
  }
  ck_assert_int_eq(st, RESP_OK);
  ck_assert_uint_eq(cmd.argvlen[0], big);
  ck_assert_int_eq(cmd.argv[0][big - 1], 'z');
  ck_assert_uint_le(resp_parser_mem(&p), 2 * big + 65536 + 64 * 1024);
  ck_assert_int_eq(resp_parser_next(&p, &cmd), RESP_NEED_MORE);
  ck_assert_uint_le(resp_parser_mem(&p), 64 * 1024);
  resp_parser_free(&p);
}
END_TEST

START_TEST(test_config) {
  resp_config_t d;
  resp_config_default(&d);
  ck_assert_uint_eq(d.max_args, 10000);
  ck_assert_uint_eq(d.max_bulk, 8u << 20);
  ck_assert_uint_eq(d.max_inline, 64u << 10);
  ck_assert_uint_eq(d.max_request, 16u << 20);
  resp_parser_t p;
  resp_config_t zero = {0};
  ck_assert_int_eq(resp_parser_init(&p, &zero), 0);
  ck_assert_uint_eq(p.cfg.max_args, d.max_args);
  ck_assert_uint_eq(p.cfg.max_request, d.max_request);
  resp_parser_free(&p);
  resp_config_t bad = {.max_args = RESP_LIMIT_MAX_ARGS + 1};
  ck_assert_int_eq(resp_parser_init(&p, &bad), RECD_EINVAL);
  resp_parser_free(&p);
  bad = (resp_config_t){.max_bulk = RESP_LIMIT_MAX_BYTES + 1};
  ck_assert_int_eq(resp_parser_init(&p, &bad), RECD_EINVAL);
  resp_parser_free(&p);
}
END_TEST

/* Random inputs from protocol-shaped tokens: whatever the verdict, it must
 * not depend on the fragmentation. */
START_TEST(test_random_fragmentation_agrees) {
  static const char *tok[] = {"*", "$", "\r\n", "\n", "\r", "0", "1", "2", "3", "-1", "12",
                              "a", "b", " ", "\"", "'", "\\", "x", "\\x4", "1", "\t"};
  const size_t ntok = sizeof tok / sizeof tok[0];
  resp_config_t cfg = {.max_args = 3, .max_bulk = 12, .max_inline = 10, .max_request = 40};
  rng_t rng;
  rng_seed(&rng, 7);
  int bad = 0;
  char why[512] = "";
  for (int iter = 0; iter < 2000 && !bad; iter++) {
    sbuf_t in = {0};
    sb_putn(&in, "", 0);
    size_t ntoks = 1 + rng_next(&rng) % 24;
    for (size_t i = 0; i < ntoks; i++) {
      const char *t = tok[rng_next(&rng) % ntok];
      sb_putn(&in, t, strlen(t));
    }
    char *whole = transcript(in.s, in.n, &cfg, in.n, in.n, VIA_FEED, 0);
    char *bytes = transcript(in.s, in.n, &cfg, 0, 1, VIA_FEED, 0);
    char *rnd = transcript(in.s, in.n, &cfg, 0, 0, VIA_RESERVE, (uint64_t)iter);
    if (strcmp(whole, bytes) != 0 || strcmp(whole, rnd) != 0 || strchr(whole, '!')) {
      bad = 1;
      snprintf(why, sizeof why, "whole %s / bytes %s / random %s", whole, bytes, rnd);
    }
    free(whole);
    free(bytes);
    free(rnd);
    free(in.s);
  }
  ck_assert_msg(!bad, "%s", why);
}
END_TEST

static Suite *resp_suite(void) {
  Suite *s = suite_create("resp");
  TCase *tc = tcase_create("parser");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_multibulk);
  tcase_add_test(tc, test_binary_args);
  tcase_add_test(tc, test_empty_multibulk_skipped);
  tcase_add_test(tc, test_inline);
  tcase_add_test(tc, test_inline_errors);
  tcase_add_test(tc, test_multibulk_errors);
  tcase_add_test(tc, test_limit_edges);
  tcase_add_test(tc, test_huge_headers_allocate_nothing);
  tcase_add_test(tc, test_pipeline_1000);
  tcase_add_test(tc, test_error_sticky_and_reset);
  tcase_add_test(tc, test_cmd_fields);
  tcase_add_test(tc, test_args_survive_buffer_moves);
  tcase_add_test(tc, test_trim_and_memory);
  tcase_add_test(tc, test_config);
  tcase_add_test(tc, test_random_fragmentation_agrees);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(resp_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
