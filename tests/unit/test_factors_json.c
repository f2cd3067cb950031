/* test_factors_json.c - the JSON-lines item-factor reader and writer
 * (recd/factors_json.h): Spark's and recd's shapes, every kind of bad line
 * with the message it must carry, and write + read being exact. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/factors_json.h"
#include "testutil.h"

static factors_json_row_t row;
static char err[RECD_ERRLEN];

static int parse(const char *s) {
  err[0] = '\0';
  return factors_json_parse_line(s, strlen(s), &row, err);
}

/* The line must be refused with a message containing `want`. */
static void bad(const char *line, const char *want) {
  int rc = parse(line);
  ck_assert_msg(rc == RECD_EFORMAT, "accepted: %s", line);
  ck_assert_msg(strstr(err, want) != NULL, "%s: message \"%s\" lacks \"%s\"", line, err, want);
}

/* Reads a whole file given as text; returns the code, err set. */
static int read_text(const char *text, size_t len, factors_json_t *f) {
  FILE *fp = fmemopen((void *)text, len, "rb");
  ck_assert_ptr_nonnull(fp);
  err[0] = '\0';
  int rc = factors_json_read(f, fp, "f.jsonl", err);
  fclose(fp);
  return rc;
}

static void read_bad(const char *text, const char *want) {
  factors_json_t f;
  int rc = read_text(text, strlen(text), &f);
  ck_assert_msg(rc != 0, "accepted: %s", text);
  ck_assert_msg(strstr(err, want) != NULL, "message \"%s\" lacks \"%s\"", err, want);
  ck_assert_ptr_null(f.Y);
  ck_assert_ptr_null(f.ids);
}

static uint32_t bits(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

START_TEST(test_shapes) {
  /* recd's own shape */
  ck_assert_int_eq(parse("{\"id\": \"item7\", \"features\": [0.5, -1.25, 3e-2]}"), 1);
  ck_assert_int_eq(row.id_len, 5);
  ck_assert_mem_eq(row.id, "item7", 5);
  ck_assert_int_eq(row.id_is_number, 0);
  ck_assert_uint_eq(row.k, 3);
  ck_assert_float_eq(row.features[0], 0.5f);
  ck_assert_float_eq(row.features[1], -1.25f);
  ck_assert_float_eq(row.features[2], 3e-2f);
  /* Spark's: integer id, compact, Java float spelling, keys in either order */
  ck_assert_int_eq(parse("{\"id\":17,\"features\":[1.0E-5,-0.0,2.5E+3]}"), 1);
  ck_assert_int_eq(row.id_is_number, 1);
  ck_assert_uint_eq(row.id_len, 2);
  ck_assert_mem_eq(row.id, "17", 2);
  ck_assert_float_eq(row.features[0], 1.0e-5f);
  ck_assert_uint_eq(bits(row.features[1]), 0x80000000u);
  ck_assert_float_eq(row.features[2], 2500.0f);
  ck_assert_int_eq(parse(" \t{ \"features\" : [ 1 ] , \"id\" : -3 }\r"), 1);
  ck_assert_mem_eq(row.id, "-3", 2);
  ck_assert_uint_eq(row.k, 1);
  /* escapes: \uXXXX to UTF-8, a surrogate pair, \u0000, raw bytes >= 0x80 */
  ck_assert_int_eq(parse("{\"id\": \"a\\\"b\\\\c\\/\\t\\u00e9\\ud83d\\ude00\\u0000\xff\", "
                         "\"features\": [0]}"), 1);
  const char want[] = "a\"b\\c/\t\xc3\xa9\xf0\x9f\x98\x80\0\xff";
  ck_assert_uint_eq(row.id_len, sizeof want - 1);
  ck_assert_mem_eq(row.id, want, sizeof want - 1);
  /* a key spelled with an escape is the key */
  ck_assert_int_eq(parse("{\"\\u0069d\": \"x\", \"features\": [1]}"), 1);
  /* blank lines */
  ck_assert_int_eq(parse(""), 0);
  ck_assert_int_eq(parse("  \t\r"), 0);
  /* limits: 256-byte id, 1024 features; subnormal and rounding to float */
  char line[40000];
  int o = snprintf(line, sizeof line, "{\"id\": \"");
  for (int i = 0; i < FACTORS_JSON_MAX_ID; i++)
    line[o++] = 'x';
  o += snprintf(line + o, sizeof line - (size_t)o, "\", \"features\": [");
  for (int i = 0; i < FACTORS_JSON_MAX_K; i++)
    o += snprintf(line + o, sizeof line - (size_t)o, i ? ",%d" : "%d", i);
  snprintf(line + o, sizeof line - (size_t)o, "]}");
  ck_assert_int_eq(parse(line), 1);
  ck_assert_uint_eq(row.id_len, FACTORS_JSON_MAX_ID);
  ck_assert_uint_eq(row.k, FACTORS_JSON_MAX_K);
  ck_assert_float_eq(row.features[1023], 1023.0f);
  ck_assert_int_eq(parse("{\"id\": 1, \"features\": [1e-45, 0.1, 3.4028234e38]}"), 1);
  ck_assert_uint_eq(bits(row.features[0]), 1u);
  ck_assert_float_eq(row.features[1], 0.1f);
  ck_assert_float_eq(row.features[2], 3.4028234e38f);
}
END_TEST

START_TEST(test_bad_lines) {
  bad("[1, 2]", "column 1: expected '{'");
  bad("{\"id\": \"a\"}", "expected the key \"features\"");
  bad("{\"features\": [1]}", "expected the key \"id\"");
  bad("{}", "expected the key \"id\"");
  bad("{\"id\": \"a\", \"features\": [1], \"name\": \"x\"}",
      "got \"name\" (no other key is allowed)");
  bad("{\"id\": \"a\", \"feature\": [1]}", "got \"feature\"");
  bad("{\"id\": \"a\", \"id\": \"b\", \"features\": [1]}", "duplicate key \"id\"");
  bad("{\"id\": \"a\", \"features\": [1], \"features\": [2]}", "duplicate key \"features\"");
  bad("{\"id\": \"a\", \"features\": []}", "expected 1 to 1024 features, got an empty array");
  bad("{\"id\": \"a\", \"features\": [1,]}", "expected a number");
  bad("{\"id\": \"a\", \"features\": [1 2]}", "expected ',' or ']'");
  bad("{\"id\": \"a\", \"features\": 1}", "expected '['");
  bad("{\"id\": \"a\", \"features\": [\"1\"]}", "expected a number, got '\"'");
  bad("{\"id\": \"a\", \"features\": [NaN]}", "expected a number, got 'N'");
  bad("{\"id\": \"a\", \"features\": [Infinity]}", "expected a number");
  bad("{\"id\": \"a\", \"features\": [null]}", "expected a number");
  bad("{\"id\": \"a\", \"features\": [1e39]}", "features[0]: expected a finite float, got 1e39");
  bad("{\"id\": \"a\", \"features\": [0, -1e999]}", "features[1]: expected a finite float");
  bad("{\"id\": \"a\", \"features\": [01]}", "after the number");
  bad("{\"id\": \"a\", \"features\": [1.]}", "a digit after the decimal point");
  bad("{\"id\": \"a\", \"features\": [.5]}", "expected a number");
  bad("{\"id\": \"a\", \"features\": [+1]}", "expected a number");
  bad("{\"id\": \"a\", \"features\": [1e]}", "a digit of the exponent");
  bad("{\"id\": \"a\", \"features\": [0x10]}", "after the number");
  bad("{\"id\": \"a\", \"features\": [1]", "expected ',' or '}'");
  bad("{\"id\": \"a\", \"features\": [1]} x", "column 30: expected the end of the line");
  bad("{\"id\": \"a\", \"features\": [1]}{\"id\": \"b\", \"features\": [1]}", "one object per line");
  bad("{\"id\": \"\", \"features\": [1]}", "expected an id of 1 to 256 bytes, got 0");
  bad("{\"id\": 1.5, \"features\": [1]}", "got a number with a fraction or an exponent");
  bad("{\"id\": 1e3, \"features\": [1]}", "fraction or an exponent");
  bad("{\"id\": null, \"features\": [1]}", "\"id\" to be a string or an integer");
  bad("{\"id\": true, \"features\": [1]}", "\"id\" to be a string or an integer");
  bad("{\"id\": \"a, \"features\": [1]}", "column 13: expected ',' or '}'");
  bad("{\"id\" \"a\", \"features\": [1]}", "column 7: expected ':' after the key");
  bad("{\"id\": \"abc", "the string is not closed");
  bad("{\"id\": \"a\tb\", \"features\": [1]}", "a control byte must be escaped");
  bad("{\"id\": \"a\\x\", \"features\": [1]}", "expected an escape");
  bad("{\"id\": \"a\\u12\", \"features\": [1]}", "hexadecimal digit");
  bad("{\"id\": \"\\ud800\", \"features\": [1]}", "low surrogate after a high one");
  bad("{\"id\": \"\\ud800\\u0041\", \"features\": [1]}", "low surrogate after a high one");
  bad("{\"id\": \"\\udc00\", \"features\": [1]}", "not a lone low surrogate");
  bad("{id: \"a\", \"features\": [1]}", "expected a key");
  bad("{'id': 'a', 'features': [1]}", "expected a key");
  bad("{\"id\": \"a\" \"features\": [1]}", "expected ',' or '}'");
  bad("{\"id\": \"a\",}", "expected a key");
  /* an id one byte too long, 1025 features, an over-long number */
  char line[40000];
  int o = snprintf(line, sizeof line, "{\"id\": \"");
  for (int i = 0; i <= FACTORS_JSON_MAX_ID; i++)
    line[o++] = 'x';
  snprintf(line + o, sizeof line - (size_t)o, "\", \"features\": [1]}");
  bad(line, "expected an id of 1 to 256 bytes, got 257");
  o = snprintf(line, sizeof line, "{\"id\": \"a\", \"features\": [");
  for (int i = 0; i <= FACTORS_JSON_MAX_K; i++)
    o += snprintf(line + o, sizeof line - (size_t)o, i ? ",%d" : "%d", i);
  snprintf(line + o, sizeof line - (size_t)o, "]}");
  bad(line, "expected at most 1024 features");
  o = snprintf(line, sizeof line, "{\"id\": \"a\", \"features\": [0.");
  for (int i = 0; i < 300; i++)
    line[o++] = '1';
  snprintf(line + o, sizeof line - (size_t)o, "]}");
  bad(line, "expected a number of at most 255 characters, got 302");
  /* a NUL in the middle of a line (len counts it) */
  const char nul[] = "{\"id\": \"a\", \"features\": [1]}\0x";
  ck_assert_int_eq(factors_json_parse_line(nul, sizeof nul - 1, &row, err), RECD_EFORMAT);
}
END_TEST

START_TEST(test_file) {
  const char *text = "\xef\xbb\xbf{\"id\": \"a\", \"features\": [1, 2]}\r\n"
                     "\n"
                     "{\"id\":7,\"features\":[3,4]}\n"
                     "{\"features\": [5, 6], \"id\": \"c\"}"; /* no final newline */
  factors_json_t f;
  ck_assert_int_eq(read_text(text, strlen(text), &f), 0);
  ck_assert_uint_eq(f.n, 3);
  ck_assert_uint_eq(f.k, 2);
  ck_assert_uint_eq(f.lines, 4);
  const float want[] = {1, 2, 3, 4, 5, 6};
  for (int i = 0; i < 6; i++)
    ck_assert_float_eq(f.Y[i], want[i]);
  size_t len;
  ck_assert_str_eq(idmap_key(f.ids, 0, &len), "a");
  ck_assert_str_eq(idmap_key(f.ids, 1, &len), "7");
  ck_assert_str_eq(idmap_key(f.ids, 2, &len), "c");
  ck_assert_int_eq(f.id_is_number[0], 0);
  ck_assert_int_eq(f.id_is_number[1], 1);
  ck_assert_uint_eq(f.line[0], 1);
  ck_assert_uint_eq(f.line[1], 3);
  ck_assert_uint_eq(f.line[2], 4);
  factors_json_free(&f);
  ck_assert_ptr_null(f.Y);

  /* many rows: the arrays grow */
  size_t cap = 3000 * 40, o = 0;
  char *big = malloc(cap);
  for (int i = 0; i < 3000; i++)
    o += (size_t)snprintf(big + o, cap - o, "{\"id\": %d, \"features\": [%d]}\n", i, -i);
  ck_assert_int_eq(read_text(big, o, &f), 0);
  ck_assert_uint_eq(f.n, 3000);
  ck_assert_float_eq(f.Y[2999], -2999.0f);
  ck_assert_str_eq(idmap_key(f.ids, 2999, &len), "2999");
  factors_json_free(&f);
  free(big);

  read_bad("", "f.jsonl: no items (0 lines), expected JSON lines");
  read_bad("\n  \n", "f.jsonl: no items (2 lines)");
  read_bad("{\"id\": \"a\", \"features\": [1, 2]}\n{\"id\": \"b\", \"features\": [1]}\n",
           "f.jsonl:2: expected 2 features (as on line 1), got 1");
  read_bad("\n{\"id\": \"a\", \"features\": [1]}\n{\"id\": \"b\", \"features\": [1, 2]}\n",
           "f.jsonl:3: expected 1 features (as on line 2), got 2");
  read_bad("{\"id\": \"a\", \"features\": [1]}\n{\"id\": \"b\", \"features\": [1]}\n"
           "{\"id\": \"a\", \"features\": [2]}\n",
           "f.jsonl:3: duplicate id \"a\" (line 1 has it)");
  read_bad("{\"id\": 5, \"features\": [1]}\n{\"id\": \"5\", \"features\": [1]}\n",
           "f.jsonl:2: duplicate id \"5\" (line 1 has it)");
  read_bad("{\"id\": \"a\", \"features\": [1]}\n{\"id\": \"b\", \"features\": [nan]}\n",
           "f.jsonl:2: column 26: expected a number, got 'n'");
  read_bad("{\"id\": \"a\", \"features\": [1]}\n{\"id\": \"b\", \"features\": [1e40]}\n",
           "f.jsonl:2: column 26: features[0]: expected a finite float");
  read_bad("{\"id\": \"a\", \"features\": [1]}\n{\"id\": \"b\" \"features\": [1]}\n",
           "f.jsonl:2: column 12: expected ',' or '}'");
  /* a BOM only at the start of the file */
  read_bad("{\"id\": \"a\", \"features\": [1]}\n\xef\xbb\xbf{\"id\": \"b\", \"features\": [1]}\n",
           "f.jsonl:2: column 1: expected '{'");
  /* a line over the limit */
  size_t n = FACTORS_JSON_MAX_LINE + 10;
  char *huge = malloc(n);
  memset(huge, ' ', n);
  huge[n - 1] = '\n';
  factors_json_t g;
  ck_assert_int_eq(read_text(huge, n, &g), RECD_EFORMAT);
  ck_assert_ptr_nonnull(strstr(err, "f.jsonl:1: expected a line of at most 1048576 bytes"));
  free(huge);
}
END_TEST

/* Writes row i of ids/Y with factors_json_write_row and reads the whole
 * thing back: the ids and every float's bits come back. */
START_TEST(test_round_trip) {
  char *dir = tu_mkdtemp();
  const char *path = tu_path(dir, "rt.jsonl");
  char saved[4096];
  snprintf(saved, sizeof saved, "%s", path);
  enum { N = 200, K = 7 };
  static float Y[N * K];
  tu_randn(Y, N * K, 5, 1.0f);
  /* awkward floats: extremes, subnormals, signed zero, values needing 9 digits */
  const float special[] = {0.0f, -0.0f, 1e-45f, -1.17549435e-38f, 3.40282347e38f, -3.40282347e38f,
                           0.1f, 16777217.0f, 1.00000012f, 2.5e-10f, 123456.789f};
  memcpy(Y, special, sizeof special);
  for (int i = 0; i < N * K; i += 13)
    Y[i] *= 1e-30f;
  char ids[N][40];
  size_t lens[N];
  for (int i = 0; i < N; i++)
    lens[i] = (size_t)snprintf(ids[i], sizeof ids[i], "item%d", i);
  /* ids that need escaping, and raw bytes */
  memcpy(ids[1], "q\"b\\s\n\x01\x7f\t\r\b\f/", 14);
  lens[1] = 14;
  memcpy(ids[2], "\xff\xfe\0z", 4);
  lens[2] = 4;
  memcpy(ids[3], "caf\xc3\xa9 \xe2\x82\xac", 9);
  lens[3] = 9;
  FILE *fp = fopen(saved, "w");
  ck_assert_ptr_nonnull(fp);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(factors_json_write_row(fp, ids[i], lens[i], Y + i * K, K), 0);
  ck_assert_int_eq(fclose(fp), 0);
  factors_json_t f;
  ck_assert_int_eq(factors_json_read_file(&f, saved, err), 0);
  ck_assert_uint_eq(f.n, N);
  ck_assert_uint_eq(f.k, K);
  for (int i = 0; i < N; i++) {
    size_t len;
    const char *id = idmap_key(f.ids, (uint32_t)i, &len);
    ck_assert_uint_eq(len, lens[i]);
    ck_assert_mem_eq(id, ids[i], len);
    for (int j = 0; j < K; j++)
      ck_assert_msg(bits(f.Y[i * K + j]) == bits(Y[i * K + j]), "row %d col %d: %a vs %a", i, j,
                    (double)f.Y[i * K + j], (double)Y[i * K + j]);
  }
  factors_json_free(&f);
  /* the exact text of one line */
  size_t len;
  char *text = tu_read_file(saved, &len);
  const char first[] = "{\"id\": \"item0\", \"features\": [0, -0, 1.40129846e-45, "
                       "-1.17549435e-38, 3.40282347e+38, -3.40282347e+38, 0.100000001]}\n";
  ck_assert_uint_ge(len, sizeof first - 1);
  ck_assert_mem_eq(text, first, sizeof first - 1);
  ck_assert_ptr_nonnull(strstr(text, "{\"id\": \"q\\\"b\\\\s\\n\\u0001\\u007f\\t\\r\\b\\f/\\u0000\", "));
  free(text);
  ck_assert_int_eq(factors_json_read_file(&f, tu_path(dir, "missing.jsonl"), err), RECD_EIO);
  ck_assert_ptr_nonnull(strstr(err, "cannot open"));
  tu_rmtree(dir);
  free(dir);
}
END_TEST

static Suite *factors_json_suite(void) {
  Suite *s = suite_create("factors_json");
  TCase *tc = tcase_create("parse");
  tcase_add_test(tc, test_shapes);
  tcase_add_test(tc, test_bad_lines);
  tcase_add_test(tc, test_file);
  tcase_add_test(tc, test_round_trip);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(factors_json_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
