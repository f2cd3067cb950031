/* test_status_page.c - the HTML status page: the document is parsed by
 * Python's html.parser (a real HTML tokenizer) in a child process, which
 * checks that it is well-formed and self-contained and dumps the experiment
 * table's data attributes; those must equal %.17g of the report's figures,
 * NaN as "" and "n/a". Hostile names, paths and errors must come out
 * escaped; a page with nothing to show must still be a valid document;
 * out of memory must give NULL without a leak. */
#include <check.h>
#include <ctype.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recd/model.h"
#include "status_page.h"
#include "testutil.h"

/* The checker: argv[1] is the page. Prints "err\t..." for every problem,
 * "row\t<i>\t<variant>\t<placement>\t<significant>" per experiment row,
 * "cell\t<i>\t<key>\t<data-value>\t<data-low>\t<data-high>" (ABSENT for a
 * missing attribute) and "text\t<i>\t<key>\t<text>" per figure cell,
 * "model\t<variant>" per model card, "latency\t<command>" per latency row,
 * "id\t<id>" per element id, and "end" last. */
static const char CHECKER[] =
    "import re, sys\n"
    "from html.parser import HTMLParser\n"
    "sys.stdout.reconfigure(encoding='utf-8')\n"
    "VOID = {'area','base','br','col','embed','hr','img','input','link','meta','source',"
    "'track','wbr'}\n"
    "KEYS = {'requests','impressions','clicks','carts','purchases','value','ctr',"
    "'conversion','lift','p_value'}\n"
    "BANNED = {'script','img','iframe','object','embed','link','base','audio','video',"
    "'source','image','use','foreignobject'}\n"
    "NUM = re.compile(r'(?i)\\b-?(nan|inf|infinity)\\b')\n"
    "class P(HTMLParser):\n"
    "  def __init__(s):\n"
    "    super().__init__(convert_charrefs=True)\n"
    "    s.stack = []; s.ids = set(); s.row = -1; s.cell = None; s.text = []\n"
    "    s.svg = 0; s.want_title = False; s.head_title = False; s.charset = False\n"
    "    s.rows = []\n"
    "  def err(s, m): print('err\\t%s at %s' % (m, s.getpos()))\n"
    "  def check(s, tag, attrs):\n"
    "    a = dict(attrs)\n"
    "    if tag in BANNED: s.err('banned element ' + tag)\n"
    "    for k, v in attrs:\n"
    "      if k.startswith('on') or k in ('src', 'href', 'xlink:href', 'srcset', 'action'):\n"
    "        s.err('banned attribute ' + k)\n"
    "      if v is not None and NUM.search(v): s.err('non-number in attribute %s=%r' % (k, v))\n"
    "    if 'id' in a:\n"
    "      if a['id'] in s.ids: s.err('duplicate id ' + a['id'])\n"
    "      s.ids.add(a['id']); print('id\\t' + a['id'])\n"
    "    if s.want_title and tag != 'title': s.err('svg without a leading title')\n"
    "    s.want_title = False\n"
    "    if tag == 'svg':\n"
    "      if a.get('role') != 'img': s.err('svg without role=img')\n"
    "      if 'xmlns' in a: s.err('svg with xmlns')\n"
    "      s.want_title = True\n"
    "    if tag == 'th' and a.get('scope') not in ('col', 'row'): s.err('th without scope')\n"
    "    if tag == 'meta' and a.get('charset', '').lower() == 'utf-8': s.charset = True\n"
    "    if tag == 'tr' and a.get('class') == 'exp-row':\n"
    "      s.row += 1; s.rows.append(dict(a, cells={}))\n"
    "      print('row\\t%d\\t%s\\t%s\\t%s' % (s.row, a.get('data-variant'),\n"
    "            a.get('data-placement'), a.get('data-significant', '-')))\n"
    "    if tag == 'td' and a.get('class') in KEYS and s.row >= 0:\n"
    "      s.cell = a['class']; s.text = []; s.rows[-1]['cells'][s.cell] = a\n"
    "      print('cell\\t%d\\t%s\\t%s\\t%s\\t%s' % (s.row, s.cell,\n"
    "            *[a.get(k, 'ABSENT') for k in ('data-value', 'data-low', 'data-high')]))\n"
    "    if tag == 'section' and a.get('class') == 'model':\n"
    "      print('model\\t' + a.get('data-variant'))\n"
    "    if tag == 'tr' and a.get('class') == 'latency-row': print('latency\\t' + "
    "a.get('data-command'))\n"
    "  def handle_starttag(s, tag, attrs):\n"
    "    s.check(tag, attrs)\n"
    "    if tag == 'svg': s.svg += 1\n"
    "    if tag not in VOID: s.stack.append(tag)\n"
    "  def handle_startendtag(s, tag, attrs):\n"
    "    s.check(tag, attrs)\n"
    "    if tag not in VOID and s.svg == 0: s.err('self-closed HTML element ' + tag)\n"
    "  def handle_endtag(s, tag):\n"
    "    if tag in VOID: s.err('end tag of void ' + tag); return\n"
    "    if not s.stack or s.stack[-1] != tag:\n"
    "      s.err('</%s> closes %s' % (tag, s.stack[-1] if s.stack else 'nothing')); return\n"
    "    s.stack.pop()\n"
    "    if tag == 'svg': s.svg -= 1\n"
    "    if tag == 'td' and s.cell:\n"
    "      print('text\\t%d\\t%s\\t%s' % (s.row, s.cell, ' '.join(' '.join(s.text).split())))\n"
    "      s.cell = None\n"
    "  def handle_data(s, d):\n"
    "    if NUM.search(d): s.err('non-number in text %r' % d)\n"
    "    if s.stack and s.stack[-1] == 'title' and 'head' in s.stack and d.strip():\n"
    "      s.head_title = True\n"
    "    if s.cell and s.svg == 0: s.text.append(d)\n"
    "  def handle_comment(s, d): s.err('comment')\n"
    "  def handle_pi(s, d): s.err('processing instruction')\n"
    "  def unknown_decl(s, d): s.err('unknown declaration')\n"
    "raw = open(sys.argv[1], encoding='utf-8', errors='strict').read()\n"
    "if not raw.startswith('<!DOCTYPE html>'): print('err\\tno doctype')\n"
    "p = P(); p.feed(raw); p.close()\n"
    "if p.stack: p.err('unclosed ' + ' '.join(p.stack))\n"
    "if not p.head_title: p.err('no title')\n"
    "if not p.charset: p.err('no meta charset')\n"
    /* argv[2], when given: exp_report_json() of the report rendered, which
     * the DOM must match exactly (a key missing from the JSON is a missing
     * attribute, null an empty one, numbers equal as doubles). */
    "if len(sys.argv) > 2:\n"
    "  import json\n"
    "  rows = json.load(open(sys.argv[2]))['rows']\n"
    "  if len(rows) != len(p.rows): p.err('%d rows, JSON %d' % (len(p.rows), len(rows)))\n"
    "  for i, (j, h) in enumerate(zip(rows, p.rows)):\n"
    "    if (j['variant'], j['placement']) != (h.get('data-variant'), h.get('data-placement')):\n"
    "      p.err('row %d names' % i)\n"
    "    for k in KEYS:\n"
    "      cell = h['cells'].get(k)\n"
    "      if cell is None: p.err('row %d: no %s cell' % (i, k)); continue\n"
    "      pairs = [('data-value', k)]\n"
    "      if k in ('ctr', 'conversion', 'lift'):\n"
    "        pairs += [('data-low', k + '_low'), ('data-high', k + '_high')]\n"
    "      for attr, key in pairs:\n"
    "        want = j.get(key, 'ABSENT'); got = cell.get(attr, 'ABSENT')\n"
    "        if want == 'ABSENT' or got == 'ABSENT': ok = want == got\n"
    "        elif want is None: ok = got == ''\n"
    "        else: ok = got != '' and float(got) == float(want)\n"
    "        if not ok: p.err('row %d %s: %r, JSON %r' % (i, key, got, want))\n"
    "    pv, lift = j.get('p_value'), j.get('lift')\n"
    "    sig = '-' if pv is None or lift is None or pv >= 0.05 or lift == 0 else \\\n"
    "          'positive' if lift > 0 else 'negative'\n"
    "    if h.get('data-significant', '-') != sig: p.err('row %d significance' % i)\n"
    "  print('json\\tok\\t%d' % len(rows))\n"
    "print('end')\n";

typedef struct checked {
  char *out; /* the checker's output */
  char *dir;
} checked_t;

/* Writes the page and the checker to a temporary directory and runs it. */
static checked_t run_checker_json(const char *html, size_t len, const char *json) {
  checked_t c;
  c.dir = tu_mkdtemp();
  char page[4096], script[4096], report[4096], cmd[13000];
  snprintf(page, sizeof page, "%s", tu_path(c.dir, "page.html"));
  snprintf(script, sizeof script, "%s", tu_path(c.dir, "check.py"));
  snprintf(report, sizeof report, "%s", json ? tu_path(c.dir, "report.json") : "");
  tu_write_file(page, html, len);
  tu_write_file(script, CHECKER, sizeof CHECKER - 1);
  if (json)
    tu_write_file(report, json, strlen(json));
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' %s%s%s 2>&1", script, page,
           json ? "'" : "", report, json ? "'" : "");
  FILE *f = popen(cmd, "r");
  ck_assert_ptr_nonnull(f);
  size_t cap = 1 << 16, n = 0;
  c.out = malloc(cap);
  ck_assert_ptr_nonnull(c.out);
  size_t got;
  while ((got = fread(c.out + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (cap - n - 1 == 0) {
      cap *= 2;
      c.out = realloc(c.out, cap);
      ck_assert_ptr_nonnull(c.out);
    }
  }
  c.out[n] = '\0';
  ck_assert_int_eq(pclose(f), 0);
  return c;
}

static checked_t run_checker(const char *html, size_t len) {
  return run_checker_json(html, len, NULL);
}

static void checked_free(checked_t *c) {
  free(c->out);
  tu_rmtree(c->dir);
  free(c->dir);
}

/* The part of the output worth showing in a failure (Check's messages are
 * limited to a few kB): from the first error, else from the start; print
 * it with %.2000s. */
static const char *excerpt(const checked_t *c) {
  const char *e = strstr(c->out, "err\t");
  if (e == NULL)
    e = strstr(c->out, "Traceback");
  return e ? e : c->out;
}

/* Whether the checker printed exactly this line. */
static int has_line(const checked_t *c, const char *line) {
  size_t n = strlen(line);
  for (const char *p = c->out; (p = strstr(p, line)) != NULL; p++)
    if ((p == c->out || p[-1] == '\n') && p[n] == '\n')
      return 1;
  return 0;
}

static size_t count_lines(const checked_t *c, const char *prefix) {
  size_t k = 0, n = strlen(prefix);
  for (const char *p = c->out; *p; p = strchr(p, '\n') + 1) {
    if (strncmp(p, prefix, n) == 0)
      k++;
    if (strchr(p, '\n') == NULL)
      break;
  }
  return k;
}

/* The checker found nothing wrong and ran to the end. */
static void expect_clean(const checked_t *c) {
  ck_assert_msg(strstr(c->out, "err\t") == NULL && strstr(c->out, "Traceback") == NULL,
                "checker: %.2000s", excerpt(c));
  ck_assert_msg(has_line(c, "end"), "checker did not finish: %.2000s", excerpt(c));
}

static int contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n)
      return 1;
  }
  return 0;
}

/* What every page must satisfy, whatever it shows. */
static void expect_self_contained(const char *html, size_t len) {
  ck_assert_uint_eq(strlen(html), len);
  ck_assert_msg(!contains_ci(html, "<script"), "a script element");
  ck_assert_msg(!contains_ci(html, "http://") && !contains_ci(html, "https://"), "a URL");
  ck_assert_msg(!contains_ci(html, "src="), "a src attribute");
  ck_assert_msg(!contains_ci(html, "url("), "a CSS url()");
  ck_assert_msg(!contains_ci(html, "@import"), "a CSS import");
}

static const char *raw17(double v, char *buf) {
  if (isnan(v))
    buf[0] = '\0';
  else
    snprintf(buf, 64, "%.17g", v);
  return buf;
}

static void set_row(exp_row_t *r, const char *variant, const char *placement, double req,
                    double imp, double clicks, double carts, double purchases, double value) {
  memset(r, 0, sizeof *r);
  snprintf(r->variant, sizeof r->variant, "%s", variant);
  snprintf(r->placement, sizeof r->placement, "%s", placement);
  double v[EXP_N_COUNTERS] = {req, imp, clicks, carts, purchases, value};
  memcpy(r->v, v, sizeof v);
  /* Not the real statistics (experiment.c's job): values that exercise the
   * formatting, with full-precision fractions. */
  r->ctr = imp > 0 ? clicks / imp : NAN;
  r->ctr_low = imp > 0 ? r->ctr * 0.9 : NAN;
  r->ctr_high = imp > 0 ? r->ctr * 1.1 : NAN;
  r->conversion = imp > 0 ? purchases / imp : NAN;
  r->conversion_low = imp > 0 ? r->conversion * 0.8 : NAN;
  r->conversion_high = imp > 0 ? r->conversion * 1.2 : NAN;
  r->lift = r->lift_low = r->lift_high = r->p_value = NAN;
}

static void set_lift(exp_row_t *r, double lift, double low, double high, double p) {
  r->has_lift = 1;
  r->lift = lift;
  r->lift_low = low;
  r->lift_high = high;
  r->p_value = p;
}

#define HOSTILE_VARIANT "b\"<script>alert('v')</script>&amp;"
#define HOSTILE_PLACEMENT "x<script>\"'&"

/* The full example: 2 variants, several placements, NaN figures, hostile
 * text everywhere. */
typedef struct example {
  status_model_t models[2];
  exp_row_t rows[7];
  exp_report_t report;
  status_latency_t latency[3];
  status_page_t page;
} example_t;

static void example_init(example_t *e) {
  memset(e, 0, sizeof *e);
  const int64_t now = 1795000000;
  e->models[0] = (status_model_t){"control", 50, "/var/lib/recd/models/als-2026-11-23.recd", 7,
                                  123456, 64, now - 7200, now - 600, "int8",
                                  0.31234, 0.14123, 0.33456, MODEL_SERVES_ALS, 0, NAN};
  e->models[1] = (status_model_t){HOSTILE_VARIANT, 50,
                                  "/tmp/<script>alert(\"p\")</script>&'q'\xff\xfe\x01.recd", 3,
                                  99, 16, 0, now + 50, "exact<b>", 0.2, NAN, NAN,
                                  MODEL_SERVES_ALS, 0, NAN};
  exp_row_t *r = e->rows;
  set_row(&r[0], "control", "default", 100000, 987654, 23456, 3456, 1234, 56789.125);
  set_row(&r[1], "control", "email", 5000, 20000, 300, 40, 12, 345.5);
  set_row(&r[2], "control", "organic", 0, 0, 0, 120, 80, 4000.75);
  set_row(&r[3], HOSTILE_VARIANT, "default", 100100, 990001, 24000, 3600, 1400, 61234.5);
  set_lift(&r[3], 0.1312345678901234, 0.05123, 0.2212, 0.0012345);
  set_row(&r[4], HOSTILE_VARIANT, "email", 4900, 19000, 250, 30, 7, 200);
  set_lift(&r[4], -0.3859649122807018, -0.61, -0.031, 0.049);
  set_row(&r[5], HOSTILE_VARIANT, HOSTILE_PLACEMENT, 10, 0, 0, 0, 0, 0); /* NaN figures */
  set_lift(&r[5], NAN, NAN, NAN, NAN);
  set_row(&r[6], HOSTILE_VARIANT, "organic", 0, 0, 0, 100, 70, 3000);
  e->report = (exp_report_t){e->rows, 7};
  e->latency[0] = (status_latency_t){"recommend", 1234567, 12, 250, 1900, 4100, 52000};
  e->latency[1] = (status_latency_t){"feedback", 4567, 0, 90, 800, 1200, 1300};
  e->latency[2] = (status_latency_t){"<script>", 1, 1, 1, 1, 1, 1};
  e->page = (status_page_t){.version = "0.1.0",
                            .uptime_s = 93784,
                            .now = now,
                            .models = e->models,
                            .n_models = 2,
                            .report = &e->report,
                            .report_age_ms = 4200,
                            .attribution_window_s = 86400,
                            .latency = e->latency,
                            .n_latency = 3,
                            .redis_connected = 0,
                            .redis_last_error = "Connection refused <script>alert(1)</script> & "
                                                "\"quoted\" 'x'",
                            .degraded = 1234};
}

/* The expected cell line of row i, key k. */
static void expect_cell(const checked_t *c, size_t i, const char *key, double v, double lo,
                        double hi, int with_range, int absent) {
  char line[512], a[64], b[64], d[64];
  if (absent)
    snprintf(line, sizeof line, "cell\t%zu\t%s\tABSENT\tABSENT\tABSENT", i, key);
  else if (with_range)
    snprintf(line, sizeof line, "cell\t%zu\t%s\t%s\t%s\t%s", i, key, raw17(v, a), raw17(lo, b),
             raw17(hi, d));
  else
    snprintf(line, sizeof line, "cell\t%zu\t%s\t%s\tABSENT\tABSENT", i, key, raw17(v, a));
  ck_assert_msg(has_line(c, line), "missing line %s in\n%.2000s", line, excerpt(c));
  if (!absent && isnan(v)) { /* shown as n/a */
    snprintf(line, sizeof line, "text\t%zu\t%s\tn/a", i, key);
    ck_assert_msg(has_line(c, line), "missing line %s", line);
  }
}

START_TEST(test_full_page) {
  example_t e;
  example_init(&e);
  size_t len = 0;
  char *html = status_page_html(&e.page, &len);
  ck_assert_ptr_nonnull(html);
  expect_self_contained(html, len);

  /* Escaped, never raw. */
  ck_assert_ptr_nonnull(strstr(html, "&lt;script&gt;alert(&#39;v&#39;)&lt;/script&gt;&amp;amp;"));
  ck_assert_ptr_nonnull(strstr(html, "Connection refused &lt;script&gt;alert(1)&lt;/script&gt; "
                                     "&amp; &quot;quoted&quot; &#39;x&#39;"));
  ck_assert_ptr_nonnull(strstr(html, "exact&lt;b&gt;"));
  /* Bytes that are not UTF-8 and control characters became U+FFFD. */
  ck_assert_ptr_nonnull(strstr(html, "&#39;q&#39;\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd.recd"));
  ck_assert_ptr_null(strstr(html, "\xff"));

  checked_t c = run_checker(html, len);
  expect_clean(&c);
  ck_assert(has_line(&c, "id\texperiment"));
  ck_assert(has_line(&c, "id\tmodels"));
  ck_assert(has_line(&c, "id\tlatency"));
  ck_assert(has_line(&c, "model\tcontrol"));
  ck_assert(has_line(&c, "model\t" HOSTILE_VARIANT));
  ck_assert(has_line(&c, "latency\t<script>"));
  ck_assert_uint_eq(count_lines(&c, "model\t"), 2);
  ck_assert_uint_eq(count_lines(&c, "latency\t"), 3);

  /* The DOM against the report, row by row, in order. */
  ck_assert_uint_eq(count_lines(&c, "row\t"), e.report.n);
  ck_assert_uint_eq(count_lines(&c, "cell\t"), e.report.n * 10);
  static const char *const key[EXP_N_COUNTERS] = {"requests", "impressions", "clicks",
                                                  "carts",    "purchases",   "value"};
  for (size_t i = 0; i < e.report.n; i++) {
    const exp_row_t *r = &e.rows[i];
    const char *sig = "-";
    if (r->has_lift && r->p_value < 0.05)
      sig = r->lift > 0 ? "positive" : "negative";
    char line[512];
    snprintf(line, sizeof line, "row\t%zu\t%s\t%s\t%s", i, r->variant, r->placement, sig);
    ck_assert_msg(has_line(&c, line), "missing %s in\n%.2000s", line, excerpt(&c));
    for (int k = 0; k < EXP_N_COUNTERS; k++)
      expect_cell(&c, i, key[k], r->v[k], 0, 0, 0, 0);
    expect_cell(&c, i, "ctr", r->ctr, r->ctr_low, r->ctr_high, 1, 0);
    expect_cell(&c, i, "conversion", r->conversion, r->conversion_low, r->conversion_high, 1, 0);
    expect_cell(&c, i, "lift", r->lift, r->lift_low, r->lift_high, 1, !r->has_lift);
    expect_cell(&c, i, "p_value", r->p_value, 0, 0, 0, !r->has_lift);
  }
  /* Both significance colours were used, on the rows expected. */
  ck_assert(has_line(&c, "row\t3\t" HOSTILE_VARIANT "\tdefault\tpositive"));
  ck_assert(has_line(&c, "row\t4\t" HOSTILE_VARIANT "\temail\tnegative"));
  /* People's figures. */
  ck_assert(has_line(&c, "text\t0\timpressions\t987,654"));
  ck_assert(has_line(&c, "text\t0\tvalue\t56,789.13") || has_line(&c, "text\t0\tvalue\t56,789.12"));
  ck_assert(has_line(&c, "text\t3\tlift\t\xe2\x96\xb2 +13.12% +5.12% to +22.12%"));
  ck_assert(has_line(&c, "text\t3\tp_value\t0.0012"));
  ck_assert(has_line(&c, "text\t0\tlift\tcontrol"));
  ck_assert_ptr_nonnull(strstr(html, "hold-out ndcg@10: model 0.2000, popularity n/a, EASE n/a"));
  /* ALS models without recent-popularity figures: no banner, three bars. */
  ck_assert_ptr_null(strstr(html, "class=\"fallback\""));
  ck_assert_ptr_null(strstr(html, "recent pop"));
  ck_assert_ptr_nonnull(strstr(html, "data-connected=\"0\""));
  checked_free(&c);

  /* Deterministic. */
  size_t len2 = 0;
  char *again = status_page_html(&e.page, &len2);
  ck_assert_ptr_nonnull(again);
  ck_assert_uint_eq(len, len2);
  ck_assert(memcmp(html, again, len) == 0);
  free(again);

  /* The example for people to look at: RECD_STATUS_EXAMPLE=/tmp/x.html. */
  const char *example = getenv("RECD_STATUS_EXAMPLE");
  FILE *f = example && *example ? fopen(example, "w") : NULL;
  if (f) {
    fwrite(html, 1, len, f);
    fclose(f);
  }
  free(html);
}
END_TEST

/* Model format 3 on the cards: a popularity fallback says so before
 * anything else, and recent popularity gets the fourth bar. */
START_TEST(test_model_format_3) {
  status_model_t m[3] = {
    {.variant = "als", .percent = 40, .path = "/m/a.bin", .first_pass = "int8-avx2",
     .ndcg_model = 0.3, .ndcg_popularity = 0.1, .ndcg_ease = 0.2, .has_recent = 1,
     .ndcg_recent = 0.25},
    {.variant = "pop", .percent = 30, .path = "/m/p.bin", .first_pass = "float-blas",
     .ndcg_model = 0.1, .ndcg_popularity = 0.15, .ndcg_ease = NAN,
     .serves = MODEL_SERVES_POPULARITY},
    {.variant = "recent", .percent = 30, .path = "/m/r.bin", .first_pass = "float-blas",
     .ndcg_model = 0.1, .ndcg_popularity = 0.15, .ndcg_ease = 0.12,
     .serves = MODEL_SERVES_RECENT_POPULARITY, .has_recent = 1, .ndcg_recent = NAN},
  };
  status_page_t p = {.version = "0.1.0", .now = 1795000000, .models = m, .n_models = 3,
                     .redis_connected = 1};
  size_t len = 0;
  char *html = status_page_html(&p, &len);
  ck_assert_ptr_nonnull(html);
  expect_self_contained(html, len);
  checked_t c = run_checker(html, len);
  expect_clean(&c);
  ck_assert_uint_eq(count_lines(&c, "model\t"), 3);
  checked_free(&c);
  const char *als = strstr(html, "data-variant=\"als\"");
  const char *pop = strstr(html, "data-variant=\"pop\"");
  const char *rec = strstr(html, "data-variant=\"recent\"");
  ck_assert(als != NULL && pop != NULL && rec != NULL && als < pop && pop < rec);
  /* The banner, once per fallback, in its own card, above the figures. */
  const char *b1 = strstr(html, "<p class=\"fallback\" data-serves=\"popularity\"><strong>"
                                "serves popularity (fallback)</strong>");
  const char *b2 = strstr(html, "<p class=\"fallback\" data-serves=\"recent-popularity\">"
                                "<strong>serves recent-popularity (fallback)</strong>");
  ck_assert(b1 != NULL && pop < b1 && b1 < rec && b1 < strstr(pop, "<dl>"));
  ck_assert(b2 != NULL && rec < b2 && b2 < strstr(rec, "<dl>"));
  size_t n = 0;
  for (const char *q = html; (q = strstr(q, "class=\"fallback\"")) != NULL; q++)
    n++;
  ck_assert_uint_eq(n, 2);
  /* Four bars with recent popularity (n/a when not measured), three without. */
  const char *t1 = strstr(html, "<title>hold-out ndcg@10: model 0.3000, popularity 0.1000, "
                                "EASE 0.2000, recent popularity 0.2500</title>");
  ck_assert(t1 != NULL && als < t1 && t1 < pop);
  const char *h4 = strstr(als, "height=\"76\"");
  ck_assert(h4 != NULL && h4 < pop);
  ck_assert_ptr_nonnull(strstr(html, "<title>hold-out ndcg@10: model 0.1000, popularity 0.1500, "
                                     "EASE n/a</title>"));
  ck_assert_ptr_nonnull(strstr(html, "EASE 0.1200, recent popularity n/a</title>"));
  ck_assert_ptr_nonnull(strstr(als, ">recent pop.</text>"));
  free(html);
}
END_TEST

START_TEST(test_empty_page) {
  exp_report_t none = {NULL, 0};
  for (int variant = 0; variant < 2; variant++) {
    status_page_t p = {.version = "0.1.0",
                       .now = 1795000000,
                       .report = variant ? &none : NULL,
                       .report_age_ms = -1,
                       .redis_connected = 1,
                       .redis_last_error = variant ? "" : NULL};
    size_t len = 0;
    char *html = status_page_html(&p, &len);
    ck_assert_ptr_nonnull(html);
    expect_self_contained(html, len);
    ck_assert_ptr_nonnull(strstr(html, "no experiment data yet"));
    ck_assert_ptr_null(strstr(html, "last Redis error"));
    checked_t c = run_checker(html, len);
    expect_clean(&c);
    ck_assert(has_line(&c, "id\tmodels"));
    ck_assert(!has_line(&c, "id\texperiment"));
    ck_assert(!has_line(&c, "id\tlatency"));
    ck_assert_uint_eq(count_lines(&c, "row\t"), 0);
    ck_assert_uint_eq(count_lines(&c, "model\t"), 0);
    checked_free(&c);
    free(html);
  }
}
END_TEST

/* Every number format on its edges: zero impressions everywhere (no bar
 * scale), infinities and huge counts, a connected Redis with an error. */
START_TEST(test_edges) {
  exp_row_t r[2];
  set_row(&r[0], "a", "default", 0, 0, 0, 0, 0, 0);
  set_row(&r[1], "b", "default", 1e300, 1e18, 0, 0, 0, -1.5);
  r[1].ctr = r[1].ctr_low = r[1].ctr_high = 0;
  set_lift(&r[1], NAN, NAN, NAN, 1);
  exp_report_t rep = {r, 2};
  status_model_t m = {"default", 100, "", 0, 0, 0, 0, 0, NULL, NAN, NAN, NAN, 0, 0, NAN};
  status_latency_t l = {"ping", UINT64_MAX, 0, 0, 0, 0, UINT64_MAX};
  status_page_t p = {.version = NULL, .uptime_s = UINT64_MAX, .now = 0, .models = &m,
                     .n_models = 1, .report = &rep, .report_age_ms = 0,
                     .latency = &l, .n_latency = 1, .redis_connected = 1,
                     .redis_last_error = "was down\r\n", .degraded = UINT64_MAX};
  size_t len = 0;
  char *html = status_page_html(&p, &len);
  ck_assert_ptr_nonnull(html);
  expect_self_contained(html, len);
  ck_assert_ptr_nonnull(strstr(html, "last Redis error"));
  checked_t c = run_checker(html, len);
  expect_clean(&c);
  char line[128], raw[64];
  snprintf(line, sizeof line, "cell\t1\trequests\t%s\tABSENT\tABSENT", raw17(1e300, raw));
  ck_assert(has_line(&c, line));
  ck_assert(has_line(&c, "text\t1\trequests\t1e+300"));
  ck_assert(has_line(&c, "text\t1\timpressions\t1,000,000,000,000,000,000"));
  ck_assert(has_line(&c, "text\t1\tvalue\t-1.50"));
  ck_assert(has_line(&c, "cell\t1\tlift\t\t\t"));
  ck_assert(has_line(&c, "text\t1\tlift\tn/a"));
  ck_assert(has_line(&c, "row\t1\tb\tdefault\t-"));
  checked_free(&c);
  free(html);
}
END_TEST

/* A report computed by experiment.c from HGETALL-style counters, against
 * its own JSON (what GET /experiments.json and EXPERIMENT REPORT give). */
START_TEST(test_real_report) {
  static const char *const counters[][2] = {
      {"control|default|requests", "1000"},  {"control|default|impressions", "9000"},
      {"control|default|clicks", "270"},     {"control|default|carts", "40"},
      {"control|default|purchases", "90"},   {"control|default|value", "1234.5"},
      {"treat|default|requests", "1010"},    {"treat|default|impressions", "9100"},
      {"treat|default|clicks", "330"},       {"treat|default|purchases", "140"},
      {"treat|default|value", "2000.25"},    {"control|search|impressions", "5000"},
      {"control|search|clicks", "100"},      {"control|search|purchases", "60"},
      {"treat|search|impressions", "5100"},  {"treat|search|clicks", "90"},
      {"treat|search|purchases", "30"},      {"treat|email|impressions", "300"}, /* no control */
      {"treat|email|clicks", "3"},           {"control|organic|purchases", "17"},
      {"treat|organic|purchases", "12"},     {"treat|organic|value", "99.99"},
      {"control|empty|requests", "5"}, /* no impressions: NaN figures */
      {"treat|empty|requests", "4"},
  };
  exp_counters_t c;
  exp_counters_init(&c);
  for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
    ck_assert_int_eq(exp_counters_add(&c, counters[i][0], strlen(counters[i][0]), counters[i][1],
                                      strlen(counters[i][1])),
                     0);
  const char *variants[] = {"control", "treat"};
  exp_report_t rep;
  ck_assert_int_eq(exp_report_compute(&c, variants, 2, &rep), 0);
  ck_assert_uint_eq(rep.n, 9);
  char *json = exp_report_json(&rep, NULL);
  ck_assert_ptr_nonnull(json);
  status_page_t p = {.version = "0.1.0", .now = 1795000000, .report = &rep,
                     .report_age_ms = 1500, .attribution_window_s = 86400};
  size_t len = 0;
  char *html = status_page_html(&p, &len);
  ck_assert_ptr_nonnull(html);
  expect_self_contained(html, len);
  checked_t chk = run_checker_json(html, len, json);
  expect_clean(&chk);
  ck_assert_msg(has_line(&chk, "json\tok\t9"), "%.2000s", excerpt(&chk));
  /* Both colours occur: treat converts better on default, worse on search. */
  ck_assert_uint_eq(count_lines(&chk, "row\t"), 9);
  ck_assert_ptr_nonnull(strstr(chk.out, "\tdefault\tpositive\n"));
  ck_assert_ptr_nonnull(strstr(chk.out, "\tsearch\tnegative\n"));
  checked_free(&chk);
  free(html);
  free(json);
  exp_report_free(&rep);
  exp_counters_free(&c);
}
END_TEST

/* Out of memory: NULL, and everything allocated on the way freed. glibc
 * cannot be made to fail one allocation from here, so the address space is
 * capped in a child process and the page made too big to fit. Not under
 * ASan, whose shadow memory does not live with an address-space limit. */
#if defined(__SANITIZE_ADDRESS__)
#define NO_RLIMIT_TEST 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_RLIMIT_TEST 1
#endif
#endif

START_TEST(test_out_of_memory) {
#ifdef NO_RLIMIT_TEST
  return;
#else
  enum { ROWS = 40000 }; /* some 80 MB of page */
  exp_row_t *rows = malloc(ROWS * sizeof *rows);
  ck_assert_ptr_nonnull(rows);
  for (size_t i = 0; i < ROWS; i++) {
    char name[32];
    snprintf(name, sizeof name, "p%zu", i);
    set_row(&rows[i], i % 2 ? "b" : "a", name, 1e6, 9e5, 3e4, 2e3, 1e3, 12345.67);
    if (i % 2)
      set_lift(&rows[i], 0.1, 0.05, 0.15, 0.01);
  }
  exp_report_t rep = {rows, ROWS};
  status_page_t p = {.version = "0.1.0", .now = 1795000000, .report = &rep};
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* The cap: what the process maps now plus 24 MB. */
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f == NULL || fscanf(f, "%lu", &pages) != 1)
      _exit(2);
    fclose(f);
    struct rlimit rl = {pages * (unsigned long)sysconf(_SC_PAGESIZE) + (24u << 20), RLIM_INFINITY};
    rl.rlim_max = rl.rlim_cur;
    if (setrlimit(RLIMIT_AS, &rl) != 0)
      _exit(3);
    /* A first small page: what libc allocates once for good (gmtime_r's
     * time zone state) is not the renderer's. */
    status_page_t small = {.version = "0.1.0", .now = 1795000000};
    free(status_page_html(&small, NULL));
    struct mallinfo2 before = mallinfo2();
    size_t len = 0;
    char *html = status_page_html(&p, &len);
    struct mallinfo2 after = mallinfo2();
    if (html != NULL)
      _exit(4);
    /* In use: small blocks (uordblks) and mmapped ones (hblkhd). */
    if (after.uordblks != before.uordblks || after.hblkhd != before.hblkhd) {
      fprintf(stderr, "in use before %zu + %zu, after %zu + %zu\n", before.uordblks,
              before.hblkhd, after.uordblks, after.hblkhd);
      _exit(5);
    }
    _exit(0);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  /* Without the cap the same page renders. */
  size_t len = 0;
  char *html = status_page_html(&p, &len);
  ck_assert_ptr_nonnull(html);
  ck_assert_uint_gt(len, 48u << 20);
  free(html);
  free(rows);
#endif
}
END_TEST

static Suite *status_page_suite(void) {
  Suite *s = suite_create("status_page");
  TCase *tc = tcase_create("render");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_full_page);
  tcase_add_test(tc, test_model_format_3);
  tcase_add_test(tc, test_empty_page);
  tcase_add_test(tc, test_edges);
  tcase_add_test(tc, test_real_report);
  tcase_add_test(tc, test_out_of_memory);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(status_page_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
