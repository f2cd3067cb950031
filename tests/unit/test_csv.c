/* test_csv.c - the CSV reader on good and bad files, and the strict number
 * parsers. Files are generated in a temporary directory so that every byte
 * (BOM, CR, NUL, missing final newline) is visible in the test itself. */
#include <check.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recd/csv.h"
#include "testutil.h"

static char *dir;

static void setup(void) {
  dir = tu_mkdtemp();
}

static void teardown(void) {
  tu_rmtree(dir);
  free(dir);
}

/* Writes `text` (len bytes) to dir/name and opens a reader on it. */
static csv_reader_t *open_text(const char *name, const char *text, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s", tu_path(dir, name));
  tu_write_file(path, text, len);
  csv_reader_t *r;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(csv_open(&r, path, err), 0);
  return r;
}

static csv_reader_t *open_str(const char *name, const char *text) {
  return open_text(name, text, strlen(text));
}

/* Asserts the next record is line `line` with the given fields. */
static void expect_record(csv_reader_t *r, uint64_t line, size_t n, const char *const *fields) {
  csv_record_t rec;
  char err[RECD_ERRLEN] = "";
  int rc = csv_next(r, &rec, err);
  ck_assert_msg(rc == 1, "expected a record at line %llu, got %d (%s)",
                (unsigned long long)line, rc, err);
  ck_assert_uint_eq(rec.line, line);
  ck_assert_uint_eq(rec.n_fields, n);
  for (size_t f = 0; f < n; f++) {
    ck_assert_uint_eq(rec.len[f], strlen(fields[f]));
    ck_assert_str_eq(rec.field[f], fields[f]); /* also proves the NUL */
  }
}

/* Asserts the next call fails with RECD_EFORMAT and exactly "<path>:<msg>". */
static void expect_error(csv_reader_t *r, const char *msg) {
  csv_record_t rec;
  char err[RECD_ERRLEN] = "";
  ck_assert_int_eq(csv_next(r, &rec, err), RECD_EFORMAT);
  /* Built as recd_errf would cut it, so a long TMPDIR cannot fail this. */
  char want[8192];
  snprintf(want, sizeof want, "%s:%s", csv_name(r), msg);
  want[RECD_ERRLEN - 1] = '\0';
  ck_assert_str_eq(err, want);
}

static void expect_eof(csv_reader_t *r) {
  csv_record_t rec;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(csv_next(r, &rec, err), 0);
  ck_assert_int_eq(csv_next(r, &rec, err), 0); /* and stays there */
}

START_TEST(test_good_file) {
  /* BOM, CRLF and LF mixed, quoted separators and line-free escapes, empty
   * fields everywhere, blank lines (skipped but counted), no final newline. */
  static const char text[] =
      "\xEF\xBB\xBFuser,item,weight\r\n"
      "u1,\"a, b\",1\r\n"
      "\n"
      "u2,\"say \"\"hi\"\"\",2\n"
      "\r\n"
      "u3,,\n"
      ",\"\",\"\"\"\"\n"
      "\"\"\"x\",\"y\"\"\",\"a\rb\"\n"
      "last,line,3";
  csv_reader_t *r = open_text("good.csv", text, sizeof text - 1);
  expect_record(r, 1, 3, (const char *[]){"user", "item", "weight"});
  expect_record(r, 2, 3, (const char *[]){"u1", "a, b", "1"});
  expect_record(r, 4, 3, (const char *[]){"u2", "say \"hi\"", "2"});
  expect_record(r, 6, 3, (const char *[]){"u3", "", ""});
  expect_record(r, 7, 3, (const char *[]){"", "", "\""});
  expect_record(r, 8, 3, (const char *[]){"\"x", "y\"", "a\rb"});
  expect_record(r, 9, 3, (const char *[]){"last", "line", "3"});
  expect_eof(r);
  csv_close(r);
}
END_TEST

START_TEST(test_single_fields_and_edges) {
  /* A lone separator is two empty fields; a file of only a BOM is empty;
   * a NUL byte is data and only len shows it. */
  csv_reader_t *r = open_str("comma.csv", ",\nx\n");
  expect_record(r, 1, 2, (const char *[]){"", ""});
  expect_record(r, 2, 1, (const char *[]){"x"});
  expect_eof(r);
  csv_close(r);

  r = open_str("bom.csv", "\xEF\xBB\xBF");
  expect_eof(r);
  csv_close(r);

  r = open_str("empty.csv", "");
  expect_eof(r);
  csv_close(r);

  /* A BOM is only skipped at the start of the file. */
  r = open_str("bom2.csv", "a\n\xEF\xBB\xBF" "b\n");
  expect_record(r, 1, 1, (const char *[]){"a"});
  expect_record(r, 2, 1, (const char *[]){"\xEF\xBB\xBF" "b"});
  csv_close(r);

  static const char nul[] = "a\0b,\"c\0\"\n";
  r = open_text("nul.csv", nul, sizeof nul - 1);
  csv_record_t rec;
  char err[RECD_ERRLEN];
  ck_assert_int_eq(csv_next(r, &rec, err), 1);
  ck_assert_uint_eq(rec.n_fields, 2);
  ck_assert_uint_eq(rec.len[0], 3);
  ck_assert_int_eq(memcmp(rec.field[0], "a\0b", 4), 0);
  ck_assert_uint_eq(rec.len[1], 2);
  ck_assert_int_eq(memcmp(rec.field[1], "c\0", 3), 0);
  csv_close(r);

  /* Exactly CSV_MAX_FIELDS fields is fine; one more is an error. */
  char two[4 * CSV_MAX_FIELDS + 8];
  size_t k = 0;
  for (int line = 0; line < 2; line++)
    for (int f = 0; f < CSV_MAX_FIELDS + line; f++) {
      two[k++] = 'x';
      two[k++] = f + 1 < CSV_MAX_FIELDS + line ? ',' : '\n';
    }
  two[k] = '\0';
  r = open_str("fields.csv", two);
  ck_assert_int_eq(csv_next(r, &rec, err), 1);
  ck_assert_uint_eq(rec.n_fields, CSV_MAX_FIELDS);
  expect_error(r, "2: more than 64 fields");
  expect_eof(r);
  csv_close(r);
}
END_TEST

START_TEST(test_bad_lines_and_recovery) {
  /* Every syntax error names file:line and the field, consumes exactly its
   * line, and the next good line is still read. */
  static const char text[] =
      "h1,h2\n"
      "a,b\"c\n"           /* 2: quote in unquoted field */
      "ok,1\n"             /* 3 */
      "a,\"unterminated\n" /* 4 */
      "\"x\"y,z\n"         /* 5: text after closing quote */
      "ok,2\r\n"           /* 6 */
      "a\rb,c\n"           /* 7: bare CR */
      "\"a\"\"\n"          /* 8: "" escape at the end leaves it open */
      "a, \"b\"\n"         /* 9: space before the quote: unquoted field */
      "\"a\" ,b\n"         /* 10: space after the quote */
      "ok,3";              /* 11 */
  csv_reader_t *r = open_str("bad.csv", text);
  expect_record(r, 1, 2, (const char *[]){"h1", "h2"});
  expect_error(r, "2: field 2: quote inside unquoted field");
  expect_record(r, 3, 2, (const char *[]){"ok", "1"});
  expect_error(r, "4: field 2: unterminated quote");
  expect_error(r, "5: field 1: text after closing quote");
  expect_record(r, 6, 2, (const char *[]){"ok", "2"});
  expect_error(r, "7: field 1: carriage return inside unquoted field");
  expect_error(r, "8: field 1: unterminated quote");
  expect_error(r, "9: field 2: quote inside unquoted field");
  expect_error(r, "10: field 1: text after closing quote");
  expect_record(r, 11, 2, (const char *[]){"ok", "3"});
  expect_eof(r);
  csv_close(r);
}
END_TEST

/* A file of `before` lines "x", one line of `len` bytes of 'a' ended by
 * `term`, then "next,1\n". */
static csv_reader_t *open_long(const char *name, size_t len, const char *term) {
  size_t tl = strlen(term), total = 4 + len + tl + 7;
  char *text = malloc(total);
  ck_assert_ptr_nonnull(text);
  memcpy(text, "x\nx\n", 4);
  memset(text + 4, 'a', len);
  memcpy(text + 4 + len, term, tl);
  memcpy(text + 4 + len + tl, "next,1\n", 7);
  csv_reader_t *r = open_text(name, text, total);
  free(text);
  return r;
}

START_TEST(test_line_cap) {
  char err[RECD_ERRLEN];
  csv_record_t rec;
  /* One byte over the cap: an error for that line, then the reader goes on. */
  csv_reader_t *r = open_long("over.csv", CSV_MAX_LINE + 1, "\n");
  expect_record(r, 1, 1, (const char *[]){"x"});
  expect_record(r, 2, 1, (const char *[]){"x"});
  expect_error(r, "3: line longer than 1048576 bytes");
  expect_record(r, 4, 2, (const char *[]){"next", "1"});
  expect_eof(r);
  csv_close(r);

  /* Far over the cap (several buffers' worth), with CRLF. */
  r = open_long("way-over.csv", 3 * CSV_MAX_LINE + 12345, "\r\n");
  expect_record(r, 1, 1, (const char *[]){"x"});
  expect_record(r, 2, 1, (const char *[]){"x"});
  expect_error(r, "3: line longer than 1048576 bytes");
  expect_record(r, 4, 2, (const char *[]){"next", "1"});
  csv_close(r);

  /* Exactly at the cap is accepted, with LF and with CRLF (the CR is the
   * terminator's, not the line's). */
  static const char *const terms[] = {"\n", "\r\n"};
  for (int t = 0; t < 2; t++) {
    r = open_long("at.csv", CSV_MAX_LINE, terms[t]);
    expect_record(r, 1, 1, (const char *[]){"x"});
    expect_record(r, 2, 1, (const char *[]){"x"});
    ck_assert_int_eq(csv_next(r, &rec, err), 1);
    ck_assert_uint_eq(rec.line, 3);
    ck_assert_uint_eq(rec.len[0], CSV_MAX_LINE);
    ck_assert_int_eq(rec.field[0][CSV_MAX_LINE], '\0');
    expect_record(r, 4, 2, (const char *[]){"next", "1"});
    csv_close(r);
  }

  /* An over-long line that ends the file, with and without its newline. */
  char *text = malloc(CSV_MAX_LINE + 8);
  memcpy(text, "x\n", 2);
  memset(text + 2, 'b', CSV_MAX_LINE + 1);
  r = open_text("tail.csv", text, CSV_MAX_LINE + 3);
  expect_record(r, 1, 1, (const char *[]){"x"});
  expect_error(r, "2: line longer than 1048576 bytes");
  expect_eof(r);
  csv_close(r);
  /* ... and a last line exactly at the cap with no newline is fine. */
  r = open_text("tail2.csv", text, CSV_MAX_LINE + 2);
  expect_record(r, 1, 1, (const char *[]){"x"});
  ck_assert_int_eq(csv_next(r, &rec, err), 1);
  ck_assert_uint_eq(rec.len[0], CSV_MAX_LINE);
  expect_eof(r);
  csv_close(r);
  /* ... also with a lone CR before end of file (CSV_MAX_LINE + 1 bytes
   * without a newline are not yet too long: the CR may end a CRLF). */
  text[CSV_MAX_LINE + 2] = '\r';
  r = open_text("tail3.csv", text, CSV_MAX_LINE + 3);
  expect_record(r, 1, 1, (const char *[]){"x"});
  ck_assert_int_eq(csv_next(r, &rec, err), 1);
  ck_assert_uint_eq(rec.len[0], CSV_MAX_LINE);
  expect_eof(r);
  csv_close(r);
  free(text);
}
END_TEST

START_TEST(test_many_lines_across_buffers) {
  /* Lines of varying length, some quoted, straddle every buffer refill:
   * every record must come back intact and numbered. */
  enum { N = 20000 };
  size_t cap = (size_t)N * 400, k = 0;
  char *text = malloc(cap);
  ck_assert_ptr_nonnull(text);
  for (int i = 0; i < N; i++) {
    int pad = (i * 7919) % 300;
    k += (size_t)sprintf(text + k, "%d,\"q,%d\"\"\",%.*s%s", i, i, pad,
                         "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
                         "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
                         "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
                         "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp",
                         i % 3 ? "\n" : "\r\n");
  }
  csv_reader_t *r = open_text("many.csv", text, k);
  free(text);
  csv_record_t rec;
  char err[RECD_ERRLEN], want[64];
  /* Plain ifs: each Check assertion costs a system call in fork mode. */
  for (int i = 0; i < N; i++) {
    if (csv_next(r, &rec, err) != 1)
      ck_abort_msg("record %d: %s", i, err);
    char want1[64];
    snprintf(want, sizeof want, "%d", i);
    snprintf(want1, sizeof want1, "q,%d\"", i);
    if (rec.line != (uint64_t)i + 1 || rec.n_fields != 3 || strcmp(rec.field[0], want) != 0 ||
        strcmp(rec.field[1], want1) != 0 || rec.len[1] != strlen(want1) ||
        rec.len[2] != (size_t)((i * 7919) % 300))
      ck_abort_msg("record %d (line %llu) is wrong", i, (unsigned long long)rec.line);
  }
  expect_eof(r);
  csv_close(r);
}
END_TEST

START_TEST(test_open_and_stream) {
  csv_reader_t *r;
  char err[RECD_ERRLEN];
  const char *missing = tu_path(dir, "missing.csv");
  ck_assert_int_eq(csv_open(&r, missing, err), RECD_EIO);
  char want[8192];
  snprintf(want, sizeof want, "cannot open %s: No such file or directory", missing);
  want[RECD_ERRLEN - 1] = '\0';
  ck_assert_str_eq(err, want);

  /* A stream is read from where it stands and is not closed by the reader. */
  FILE *fp = tmpfile();
  ck_assert_ptr_nonnull(fp);
  fputs("skip me\n\xEF\xBB\xBF" "a,b\nc\n", fp);
  rewind(fp);
  char line[64];
  ck_assert_ptr_nonnull(fgets(line, sizeof line, fp));
  ck_assert_int_eq(csv_open_stream(&r, fp, "stream", err), 0);
  ck_assert_str_eq(csv_name(r), "stream");
  expect_record(r, 1, 2, (const char *[]){"a", "b"});
  expect_record(r, 2, 1, (const char *[]){"c"});
  expect_eof(r);
  csv_close(r);
  ck_assert_int_eq(fseek(fp, 0, SEEK_SET), 0); /* still open */
  fclose(fp);
}
END_TEST

START_TEST(test_parse_float) {
  static const struct {
    const char *s;
    float v;
  } good[] = {{"1", 1.0f},       {"0", 0.0f},         {"-2.5", -2.5f}, {"+3", 3.0f},
              {".5", 0.5f},      {"5.", 5.0f},        {"1e3", 1000.0f}, {"1E-2", 0.01f},
              {"007", 7.0f},     {"3.4028234e38", FLT_MAX}, {"1e-50", 0.0f}};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    float v = -1.0f;
    ck_assert_msg(csv_parse_float(good[i].s, strlen(good[i].s), &v) == 0, "%s", good[i].s);
    ck_assert_float_eq(v, good[i].v);
  }
  static const char *const bad[] = {"",    "nan", "NaN",  "inf", "-inf", "infinity", "0x10",
                                    " 1",  "1 ",  "1,5",  "abc", "1e",   "e5",       ".",
                                    "-",   "+-1", "1..2", "1e+", "--1",  "1f",       "\t1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    float v = 42.0f;
    ck_assert_msg(csv_parse_float(bad[i], strlen(bad[i]), &v) == RECD_EFORMAT, "%s", bad[i]);
    ck_assert_float_eq(v, 42.0f); /* untouched on error */
  }
  float v;
  ck_assert_int_eq(csv_parse_float("1e999", 5, &v), RECD_ERANGE);
  ck_assert_int_eq(csv_parse_float("-3.5e38", 7, &v), RECD_ERANGE);
  /* Only len bytes count: the parser must not read past them. */
  ck_assert_int_eq(csv_parse_float("12x", 2, &v), 0);
  ck_assert_float_eq(v, 12.0f);
  ck_assert_int_eq(csv_parse_float("1\0" "2", 3, &v), RECD_EFORMAT);
}
END_TEST

START_TEST(test_parse_integers) {
  uint64_t u;
  int64_t i;
  ck_assert_int_eq(csv_parse_u64("0", 1, &u), 0);
  ck_assert_uint_eq(u, 0);
  ck_assert_int_eq(csv_parse_u64("18446744073709551615", 20, &u), 0);
  ck_assert_uint_eq(u, UINT64_MAX);
  ck_assert_int_eq(csv_parse_u64("18446744073709551616", 20, &u), RECD_ERANGE);
  ck_assert_int_eq(csv_parse_u64("99999999999999999999999", 23, &u), RECD_ERANGE);
  ck_assert_int_eq(csv_parse_u64("99999999999999999999999x", 24, &u), RECD_EFORMAT);
  static const char *const bad_u[] = {"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "1.0", "nan", "inf"};
  for (size_t k = 0; k < sizeof bad_u / sizeof *bad_u; k++)
    ck_assert_msg(csv_parse_u64(bad_u[k], strlen(bad_u[k]), &u) == RECD_EFORMAT, "%s", bad_u[k]);

  ck_assert_int_eq(csv_parse_i64("-9223372036854775808", 20, &i), 0);
  ck_assert(i == INT64_MIN);
  ck_assert_int_eq(csv_parse_i64("9223372036854775807", 19, &i), 0);
  ck_assert(i == INT64_MAX);
  ck_assert_int_eq(csv_parse_i64("+12", 3, &i), 0);
  ck_assert_int_eq(i, 12);
  ck_assert_int_eq(csv_parse_i64("-0", 2, &i), 0);
  ck_assert_int_eq(i, 0);
  ck_assert_int_eq(csv_parse_i64("1700000000", 10, &i), 0);
  ck_assert_int_eq(i, 1700000000);
  ck_assert_int_eq(csv_parse_i64("9223372036854775808", 19, &i), RECD_ERANGE);
  ck_assert_int_eq(csv_parse_i64("-9223372036854775809", 20, &i), RECD_ERANGE);
  static const char *const bad_i[] = {"", "-", "+", "--1", "+-1", " 1", "1 ", "0x10",
                                      "1e3", "1.5", "nan", "inf", "12a"};
  for (size_t k = 0; k < sizeof bad_i / sizeof *bad_i; k++)
    ck_assert_msg(csv_parse_i64(bad_i[k], strlen(bad_i[k]), &i) == RECD_EFORMAT, "%s", bad_i[k]);
}
END_TEST

static Suite *csv_suite(void) {
  Suite *s = suite_create("csv");
  TCase *tc = tcase_create("reader");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_good_file);
  tcase_add_test(tc, test_single_fields_and_edges);
  tcase_add_test(tc, test_bad_lines_and_recovery);
  tcase_add_test(tc, test_line_cap);
  tcase_add_test(tc, test_many_lines_across_buffers);
  tcase_add_test(tc, test_open_and_stream);
  suite_add_tcase(s, tc);
  TCase *tn = tcase_create("numbers");
  tcase_add_test(tn, test_parse_float);
  tcase_add_test(tn, test_parse_integers);
  suite_add_tcase(s, tn);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(csv_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
