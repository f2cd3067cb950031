/* config_fuzz.c - libFuzzer target for the recd.conf parser.
 *
 * The input is config file text, fed to config_load_buffer(). Besides "no
 * crash, no leak, no UB", it checks these properties:
 *  - a text that loads dumps to a text that loads back to the same values
 *    (config_dump and the tokenizer agree on quoting), into a fresh config
 *    and again over that result (the dump's first `variant` line replaces
 *    the list, so a second load changes nothing);
 *  - config_format() of every key is accepted by config_set() unchanged
 *    (on a fresh config: `variant` appends).
 * An input starting with "ARGV\n" is instead split at NUL bytes into a
 * command line for config_parse_args(), unless its first argument would be
 * taken as a file name (the fuzzer must not read files it names).
 * An input starting with "SET\n" is split at NUL bytes into CONFIG SET's
 * key, value pairs for config_set_runtime(): refused, the config is
 * exactly what it was; accepted, it validates and every value set reads
 * back and sets again to the same config.
 *
 * Build (or cmake -DRECD_FUZZ=ON with clang):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L \
 *     -Iinclude -Isrc/daemon src/daemon/config.c src/core/err.c \
 *     tests/fuzz/config_fuzz.c -o config_fuzz
 *   ./config_fuzz tests/fuzz/corpus/config
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* config_format() of key k in a malloc'ed string: `variant` may be far
 * longer than any fixed buffer (16 quoted paths of 4095 bytes). */
static char *format_key(const config_t *c, const char *k) {
  int n = config_format(c, k, NULL, 0);
  if (n < 0)
    abort();
  char *v = malloc((size_t)n + 1);
  if (v == NULL)
    abort();
  if (config_format(c, k, v, (size_t)n + 1) != n)
    abort();
  return v;
}

static void check_same(const config_t *a, const config_t *b) {
  for (size_t i = 0; i < config_count(); i++) {
    const char *k = config_name(i);
    char *va = format_key(a, k), *vb = format_key(b, k);
    if (strcmp(va, vb) != 0) {
      fprintf(stderr, "%s: '%s' != '%s'\n", k, va, vb);
      abort();
    }
    free(va);
    free(vb);
  }
}

static void fuzz_text(const uint8_t *data, size_t size) {
  config_t c;
  char err[RECD_ERRLEN];
  if (config_init(&c) != 0)
    return;
  int rc = config_load_buffer(&c, (const char *)data, size, "fuzz", err);
  if (rc == 0) {
    (void)config_validate(&c, err);

    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (fp != NULL) {
      if (config_dump(&c, fp, 0) != 0)
        abort();
      fclose(fp);
      config_t d;
      if (config_init(&d) == 0) {
        if (config_load_buffer(&d, text, len, "dump", err) != 0) {
          fprintf(stderr, "dump does not load: %s\n%s", err, text);
          abort();
        }
        check_same(&c, &d);
        if (config_load_buffer(&d, text, len, "dump", err) != 0) {
          fprintf(stderr, "dump does not load twice: %s\n%s", err, text);
          abort();
        }
        check_same(&c, &d);
      }
      config_free(&d);
      free(text);
    }

    config_t e;
    if (config_init(&e) == 0) {
      for (size_t i = 0; i < config_count(); i++) {
        const char *k = config_name(i);
        char *val = format_key(&c, k);
        if (config_set(&e, k, val, err) != 0) {
          fprintf(stderr, "%s '%s' does not set back: %s\n", k, val, err);
          abort();
        }
        free(val);
      }
      check_same(&c, &e);
    }
    config_free(&e);
  }
  config_free(&c);
}

static void fuzz_args(const uint8_t *data, size_t size) {
  /* NUL-separated arguments; a copy with a final NUL so each is a string. */
  char *buf = malloc(size + 1);
  if (buf == NULL)
    return;
  memcpy(buf, data, size);
  buf[size] = '\0';
  char *argv[64];
  int argc = 0;
  argv[argc++] = "recd";
  for (size_t i = 0; i <= size && argc < 63;) {
    argv[argc++] = buf + i;
    i += strlen(buf + i) + 1;
  }
  argv[argc] = NULL;
  if (argc < 2 || argv[1][0] == '-') {
    config_t c;
    char err[RECD_ERRLEN];
    if (config_init(&c) == 0)
      (void)config_parse_args(&c, argc, argv, err);
    config_free(&c);
  }
  free(buf);
}

static void fuzz_set(const uint8_t *data, size_t size) {
  /* NUL-separated tokens (binary values would be cut at a NUL here, which
   * the lengths below then reflect), taken in pairs. */
  const char *kv[64];
  size_t kvlen[64], n = 0;
  char *buf = malloc(size + 1);
  if (buf == NULL)
    return;
  memcpy(buf, data, size);
  buf[size] = '\0';
  for (size_t i = 0; i <= size && n < 64;) {
    kv[n] = buf + i;
    kvlen[n] = strlen(buf + i);
    i += kvlen[n++] + 1;
  }
  n &= ~(size_t)1;
  config_t before, c;
  char err[RECD_ERRLEN];
  if (config_init(&before) == 0 && config_init(&c) == 0) {
    if (config_set_runtime(&c, n / 2, kv, kvlen, NULL, NULL, err) != 0) {
      check_same(&before, &c);
    } else {
      if (config_validate(&c, err) != 0) {
        fprintf(stderr, "accepted, then invalid: %s\n", err);
        abort();
      }
      config_t again;
      if (config_init(&again) == 0) {
        for (size_t j = 0; j + 1 < n; j += 2) {
          char *val = format_key(&c, kv[j]);
          const char *pair[2] = {kv[j], val};
          const size_t plen[2] = {kvlen[j], strlen(val)};
          if (config_set_runtime(&again, 1, pair, plen, NULL, NULL, err) != 0) {
            fprintf(stderr, "%s '%s' does not set again: %s\n", kv[j], val, err);
            abort();
          }
          free(val);
        }
        check_same(&c, &again);
      }
      config_free(&again);
    }
  }
  config_free(&before);
  config_free(&c);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size >= 5 && memcmp(data, "ARGV\n", 5) == 0)
    fuzz_args(data + 5, size - 5);
  else if (size >= 4 && memcmp(data, "SET\n", 4) == 0)
    fuzz_set(data + 4, size - 4);
  else
    fuzz_text(data, size);
  return 0;
}
