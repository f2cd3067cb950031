/* resp_fuzz.c - libFuzzer target for the RESP request parser.
 *
 * Input: byte 0 picks the limits and the feeding style, byte 1 seeds the
 * chunk sizes, the rest is what a client sends. Each input is parsed twice,
 * once in a single feed and once in random chunks (mixing feed() and
 * reserve()/commit()), and the two transcripts must agree: the verdict may
 * not depend on fragmentation. Along the way the target checks the
 * contract: argc and lengths within the limits, every argument
 * NUL-terminated, nbytes and bytes_buffered consistent, errors sticky with
 * a message, memory proportional to the input.
 *
 * Capped allocator: the limits here are tiny (at most 64-byte bulks), so any
 * large allocation is a bug; run with -malloc_limit_mb=16 and libFuzzer
 * reports one as a crash. Build and run (not part of CMake yet):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *     src/core/resp.c src/core/err.c tests/fuzz/resp_fuzz.c -o /tmp/resp_fuzz
 *   /tmp/resp_fuzz -max_total_time=60 -malloc_limit_mb=16 tests/fuzz/corpus/resp
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recd/resp.h"
#include "fuzz.h"

typedef struct run {
  uint64_t hash;   /* FNV-1a over the transcript */
  size_t commands; /* commands returned */
  size_t fed;      /* bytes handed to the parser */
} run_t;

static void mix(run_t *r, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    r->hash ^= b[i];
    r->hash *= 0x100000001b3ULL;
  }
}

static uint64_t next_rand(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Drains the parser; returns 1 once it is in the error state. */
static int drain(resp_parser_t *p, const resp_config_t *cfg, run_t *r) {
  for (;;) {
    resp_cmd_t cmd;
    resp_status_t st = resp_parser_next(p, &cmd);
    if (st == RESP_NEED_MORE) {
      CHECK(p->err == 0);
      CHECK(resp_parser_bytes_buffered(p) <= r->fed);
      return 0;
    }
    if (st == RESP_ERROR) {
      CHECK(p->err != 0);
      size_t n = strnlen(p->errstr, sizeof p->errstr);
      CHECK(n > 0 && n < sizeof p->errstr);
      CHECK(strncmp(p->errstr, "Protocol error: ", 16) == 0 || p->err == RECD_ENOMEM);
      mix(r, "E", 1);
      mix(r, p->errstr, n);
      /* Sticky: nothing gets the parser out of the error state. */
      char saved[RESP_ERRSTR_LEN];
      memcpy(saved, p->errstr, sizeof saved);
      CHECK(resp_parser_next(p, &cmd) == RESP_ERROR);
      CHECK(resp_parser_feed(p, "*1\r\n$1\r\na\r\n", 11) == p->err);
      char *dst;
      size_t avail;
      CHECK(resp_parser_reserve(p, 8, &dst, &avail) == p->err && dst == NULL && avail == 0);
      CHECK(resp_parser_next(p, &cmd) == RESP_ERROR);
      CHECK(memcmp(saved, p->errstr, sizeof saved) == 0);
      return 1;
    }
    CHECK(st == RESP_OK);
    CHECK(cmd.argc >= 1 && cmd.argc <= cfg->max_args);
    CHECK(cmd.nbytes > 0 && cmd.nbytes <= r->fed);
    CHECK(cmd.nbytes <= cfg->max_request || cmd.nbytes <= cfg->max_inline + 2);
    r->commands++;
    mix(r, "C", 1);
    mix(r, &cmd.argc, sizeof cmd.argc);
    mix(r, &cmd.nbytes, sizeof cmd.nbytes);
    for (size_t i = 0; i < cmd.argc; i++) {
      size_t len = cmd.argvlen[i];
      CHECK(len <= cfg->max_bulk || len <= cfg->max_inline);
      CHECK(cmd.argv[i][len] == '\0');
      mix(r, &len, sizeof len);
      mix(r, cmd.argv[i], len);
    }
  }
}

/* Parses in[0, n) in chunks: all at once when seed is 0, else random sizes
 * from the seed, alternating between feed() and reserve()/commit(). */
static run_t parse(const uint8_t *in, size_t n, const resp_config_t *cfg, uint64_t seed,
                   size_t max_chunk) {
  run_t r = {0xcbf29ce484222325ULL, 0, 0};
  resp_parser_t p;
  CHECK(resp_parser_init(&p, cfg) == 0);
  size_t at = 0;
  int failed = 0;
  while (at < n && !failed) {
    size_t c = seed ? 1 + next_rand(&seed) % max_chunk : n;
    if (c > n - at)
      c = n - at;
    if (seed && (next_rand(&seed) & 1)) {
      char *dst;
      size_t avail;
      CHECK(resp_parser_reserve(&p, c, &dst, &avail) == 0 && avail >= c);
      memcpy(dst, in + at, c);
      resp_parser_commit(&p, c);
    } else {
      CHECK(resp_parser_feed(&p, in + at, c) == 0);
    }
    at += c;
    r.fed += c;
    failed = drain(&p, cfg, &r);
    /* Memory follows the bytes received, never a declared length. */
    CHECK(resp_parser_mem(&p) <= 4 * r.fed + 64 * 1024);
  }
  if (!failed) {
    size_t buffered = resp_parser_bytes_buffered(&p);
    mix(&r, "M", 1);
    mix(&r, &buffered, sizeof buffered);
  }
  resp_parser_free(&p);
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  uint8_t mode = data[0];
  uint64_t seed = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)data[1] << 17) ^ size;
  const uint8_t *in = data + 2;
  size_t n = size - 2;

  /* Small limits so that the fuzzer reaches every edge quickly. */
  resp_config_t cfg = {
      .max_args = 1 + (mode & 7),
      .max_bulk = (mode & 8) ? 64 : 5,
      .max_inline = (mode & 16) ? 64 : 8,
      .max_request = (mode & 32) ? 256 : 40,
  };
  size_t max_chunk = (mode & 64) ? 3 : 37;

  run_t whole = parse(in, n, &cfg, 0, 0);
  run_t split = parse(in, n, &cfg, seed, max_chunk);
  CHECK(whole.hash == split.hash);
  CHECK(whole.commands == split.commands);
  return 0;
}
