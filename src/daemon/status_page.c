/* status_page.c - GET / of the metrics port: one self-contained HTML5
 * document (inline CSS, inline SVG, no script, no external asset) showing
 * the daemon, each variant's model, the experiment and request latency.
 *
 * Markup contract (tests/unit/test_status_page.c and scrapers rely on it):
 *
 *   <header id="summary">   <span id="redis" data-connected="0|1">,
 *                           <span id="degraded" data-value="N">
 *   <section id="models">   one <section class="model" data-variant="V"> per
 *                           status_model_t, in the caller's order (none:
 *                           <p class="empty">). A popularity fallback's card
 *                           opens with <p class="fallback" data-serves="S">
 *                           "serves S (fallback)", S model_serves_name().
 *                           The hold-out ndcg@10 figure's <title> lists
 *                           model, popularity, EASE and, when the file has
 *                           them, recent popularity.
 *   <table id="experiment"> one <tr class="exp-row" data-variant="V"
 *                           data-placement="P"> per exp_row_t, in the
 *                           report's order. Figure cells are
 *                           <td class="K" data-value="X">, K the report's
 *                           JSON key (requests impressions clicks carts
 *                           purchases value ctr conversion lift p_value),
 *                           X the raw double as %.17g, "" when NaN (JSON
 *                           null; infinities, which the report does not
 *                           have, too). ctr, conversion and lift cells also carry
 *                           data-low / data-high (ctr_low, ctr_high, ...).
 *                           A row without a lift (has_lift 0: the control,
 *                           organic) has lift and p_value cells without any
 *                           data-* attribute, as its JSON has no such keys.
 *                           p_value < 0.05 adds data-significant="positive"
 *                           or "negative" (the sign of the lift) to the row.
 *                           No report, or an empty one: no table, but
 *                           <p id="experiment-empty">no experiment data yet</p>.
 *   <table id="latency">    one <tr class="latency-row" data-command="C"> per
 *                           command, cells calls failed p50_usec p99_usec
 *                           p999_usec max_usec (INFO's names) with the raw
 *                           integer in data-value and milliseconds as text.
 *
 * Attribute values are HTML-escaped: unescape them before comparing. Text
 * from outside is also made valid UTF-8 (bad bytes and control characters
 * become U+FFFD), since the page declares UTF-8.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status_page.h"

#include "recd/model.h"

/* Written as escapes, and as separate literals, so that a hex digit
 * following one in a string does not extend the escape. */
#define EN_DASH "\xe2\x80\x93"
#define EM_DASH "\xe2\x80\x94"
#define MIDDOT "\xc2\xb7"
#define REPLACEMENT "\xef\xbf\xbd"

/* The growing output. After the first failed allocation every append is a
 * no-op and status_page_html() frees what there is and returns NULL. */
typedef struct page {
  char *buf;
  size_t len, cap;
  int oom;
} page_t;

/* Room for extra more bytes plus the NUL. */
static int pg_reserve(page_t *b, size_t extra) {
  if (b->oom)
    return -1;
  if (b->cap - b->len > extra)
    return 0;
  size_t cap = b->cap ? b->cap : 16384;
  while (cap - b->len <= extra) {
    if (cap > SIZE_MAX / 2) {
      b->oom = 1;
      return -1;
    }
    cap *= 2;
  }
  char *n = realloc(b->buf, cap);
  if (n == NULL) {
    b->oom = 1;
    return -1;
  }
  b->buf = n;
  b->cap = cap;
  return 0;
}

static void pg_raw(page_t *b, const char *s, size_t n) {
  if (pg_reserve(b, n))
    return;
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = '\0';
}

static void pg_puts(page_t *b, const char *s) { pg_raw(b, s, strlen(s)); }

static void pg_printf(page_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pg_printf(page_t *b, const char *fmt, ...) {
  char small[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) { /* cannot happen with our formats; fail rather than truncate */
    b->oom = 1;
    return;
  }
  if ((size_t)n < sizeof small) {
    pg_raw(b, small, (size_t)n);
    return;
  }
  if (pg_reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 when invalid (overlong
 * forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  uint32_t cp, min;
  if (c < 0x80)
    return 1;
  if ((c & 0xe0) == 0xc0)
    len = 2, cp = c & 0x1f, min = 0x80;
  else if ((c & 0xf0) == 0xe0)
    len = 3, cp = c & 0x0f, min = 0x800;
  else if ((c & 0xf8) == 0xf0)
    len = 4, cp = c & 0x07, min = 0x10000;
  else
    return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

/* Outside text, escaped for both element content and quoted attributes.
 * NULL is written as nothing. */
static void pg_text(page_t *b, const char *str) {
  const unsigned char *s = (const unsigned char *)(str ? str : "");
  size_t n = strlen((const char *)s);
  size_t i = 0;
  while (i < n) {
    size_t run = i; /* copy runs of plain bytes in one go */
    while (run < n && s[run] >= 0x20 && s[run] < 0x7f && !strchr("&<>\"'", s[run]))
      run++;
    pg_raw(b, (const char *)s + i, run - i);
    if (run == n)
      break;
    i = run;
    unsigned char c = s[i];
    size_t l = c >= 0x80 ? utf8_len(s + i, n - i) : 0;
    if (l > 0) { /* a valid multi-byte character */
      pg_raw(b, (const char *)s + i, l);
    } else {
      l = 1;
      if (c == '&')
        pg_puts(b, "&amp;");
      else if (c == '<')
        pg_puts(b, "&lt;");
      else if (c == '>')
        pg_puts(b, "&gt;");
      else if (c == '"')
        pg_puts(b, "&quot;");
      else if (c == '\'')
        pg_puts(b, "&#39;");
      else if (c == '\t' || c == '\n')
        pg_raw(b, (const char *)s + i, 1);
      else /* another control character, or a byte that is not UTF-8 */
        pg_puts(b, REPLACEMENT);
    }
    i += l;
  }
}

/* Formatted numbers, returned by value so that they can be used as printf
 * arguments (the array lives until the end of the full expression). */
typedef struct num {
  char s[96];
} num_t;

/* A figure with `decimals` decimals and thousands separators; "n/a" when
 * not finite. Commas, whatever the locale: the page must be deterministic. */
static num_t fmt_grouped(double v, int decimals) {
  num_t r;
  char t[64];
  if (!isfinite(v)) {
    strcpy(r.s, "n/a");
    return r;
  }
  int n = snprintf(t, sizeof t, "%.*f", decimals, v);
  if (n < 0 || (size_t)n >= sizeof t) { /* astronomically large */
    snprintf(r.s, sizeof r.s, "%.6g", v);
    return r;
  }
  const char *p = t;
  char *o = r.s;
  if (*p == '-')
    *o++ = *p++;
  size_t digits = strcspn(p, ".");
  for (size_t i = 0; p[i]; i++) {
    if (i > 0 && i < digits && (digits - i) % 3 == 0)
      *o++ = ',';
    *o++ = p[i];
  }
  *o = '\0';
  return r;
}

/* A proportion as a percentage with 2 decimals ("+" forced for lifts). */
static num_t fmt_pct(double v, int sign) {
  num_t r;
  if (!isfinite(v))
    strcpy(r.s, "n/a");
  else
    snprintf(r.s, sizeof r.s, sign ? "%+.2f%%" : "%.2f%%", 100 * v);
  return r;
}

/* The raw value of a data-value attribute: %.17g round-trips a double;
 * empty when not finite (NaN, which the JSON has as null). */
static num_t fmt_raw(double v) {
  num_t r;
  if (!isfinite(v))
    r.s[0] = '\0';
  else
    snprintf(r.s, sizeof r.s, "%.17g", v);
  return r;
}

/* "42s", "3m 07s", "5h 02m", "12d 04h": two units are enough to read. */
static num_t fmt_duration(uint64_t s) {
  num_t r;
  unsigned long long x = s;
  if (x < 60)
    snprintf(r.s, sizeof r.s, "%llus", x);
  else if (x < 3600)
    snprintf(r.s, sizeof r.s, "%llum %02llus", x / 60, x % 60);
  else if (x < 86400)
    snprintf(r.s, sizeof r.s, "%lluh %02llum", x / 3600, x % 3600 / 60);
  else
    snprintf(r.s, sizeof r.s, "%llud %02lluh", x / 86400, x % 86400 / 3600);
  return r;
}

/* How long ago `t` was; "n/a" for an unknown (0) time, and a time in the
 * future (clock skew between machines) counts as now. */
static num_t fmt_age(int64_t now, int64_t t) {
  num_t r;
  if (t <= 0) {
    strcpy(r.s, "n/a");
    return r;
  }
  r = fmt_duration(now > t ? (uint64_t)(now - t) : 0);
  strcat(r.s, " ago");
  return r;
}

static const char STYLE[] =
    ":root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--accent:#2f6fde;"
    "--good:#146c2e;--goodbg:#e3f4e8;--bad:#b3261e;--badbg:#fce8e6}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;"
    "color:var(--fg);background:var(--bg)}"
    "header{background:#1f2933;color:#e4e7eb;padding:18px 24px}"
    "h1{margin:0 0 8px;font-size:22px;color:#fff}h1 .version{font-weight:400;color:#9aa5b1}"
    ".facts{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:6px 28px}"
    ".facts strong{color:#fff}.facts code{color:#ffd8a8}"
    ".badge{display:inline-block;padding:0 8px;border-radius:9px;font-weight:600}"
    ".up{background:var(--goodbg);color:var(--good)}.down{background:var(--badbg);color:var(--bad)}"
    "main{max-width:1360px;margin:0 auto;padding:4px 24px 40px}"
    "h2{font-size:17px;margin:26px 0 10px}"
    ".meta,.empty,caption{color:var(--muted)}.empty{font-style:italic}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(380px,1fr));gap:16px}"
    ".model{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px}"
    ".model h3{margin:0 0 10px;font-size:16px;display:flex;justify-content:space-between;gap:8px}"
    ".share{color:var(--accent)}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:0 0 12px}"
    "dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}"
    "code{font:12px ui-monospace,Menlo,Consolas,monospace}"
    "figure{margin:0}figcaption{color:var(--muted);font-size:12px;margin-bottom:2px}"
    "table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line);"
    "font-variant-numeric:tabular-nums}"
    "caption{caption-side:bottom;text-align:left;font-size:12px;padding:6px 2px}"
    ".scroll{overflow-x:auto}"
    "th,td{padding:6px 7px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}"
    "#experiment{font-size:13px}"
    "thead th{background:#eef2f6;color:var(--muted);font-size:12px;font-weight:600}"
    "th[scope=row],td.placement,thead th:first-child,#experiment thead th:nth-child(2)"
    "{text-align:left}"
    /* long variant names wrap rather than push the figures off screen */
    "th[scope=row]{font-weight:600;white-space:normal;overflow-wrap:anywhere;min-width:100px;"
    "max-width:200px}"
    ".pc{display:flex;align-items:center;justify-content:flex-end;gap:8px}"
    ".ci{display:block;color:var(--muted);font-size:11px}"
    "svg text{font:11px system-ui,sans-serif;fill:var(--fg)}svg .na{fill:var(--muted)}"
    ".bar{fill:var(--accent)}.base{fill:#9aa5b1}.track{fill:#e9edf2}"
    ".whisker{stroke:#1f2933;stroke-width:1.5}"
    "tr[data-significant=positive] td.lift,tr[data-significant=positive] td.p_value"
    "{background:var(--goodbg);color:var(--good);font-weight:600}"
    "tr[data-significant=negative] td.lift,tr[data-significant=negative] td.p_value"
    "{background:var(--badbg);color:var(--bad);font-weight:600}"
    "td.failed.some{color:var(--bad);font-weight:600}"
    ".fallback{margin:0 0 10px;padding:6px 10px;border-radius:6px;background:#fff4d6;"
    "color:#7a4b00;border:1px solid #f0c36d}";

/* Header: version, uptime, Redis, degraded answers, when rendered. */
static void render_header(page_t *b, const status_page_t *p) {
  char when[32] = "n/a";
  time_t now = (time_t)p->now;
  struct tm tm;
  if (gmtime_r(&now, &tm))
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
  pg_puts(b, "<header id=\"summary\"><h1>recd <span class=\"version\">");
  pg_text(b, p->version);
  pg_printf(b, "</span></h1><ul class=\"facts\"><li>uptime <strong>%s</strong></li>",
            fmt_duration(p->uptime_s).s);
  pg_printf(b,
            "<li>Redis <span id=\"redis\" data-connected=\"%d\" class=\"badge %s\">%s</span></li>",
            p->redis_connected ? 1 : 0, p->redis_connected ? "up" : "down",
            p->redis_connected ? "connected" : "disconnected");
  if (p->redis_last_error && p->redis_last_error[0]) {
    pg_puts(b, "<li>last Redis error <code>");
    pg_text(b, p->redis_last_error);
    pg_puts(b, "</code></li>");
  }
  pg_printf(b, "<li>degraded answers <strong><span id=\"degraded\" data-value=\"%llu\">%s</span>"
               "</strong></li><li>as of <strong>%s</strong></li></ul></header>\n",
            (unsigned long long)p->degraded, fmt_grouped((double)p->degraded, 0).s, when);
}

/* The hold-out ndcg@10 figures of one model as horizontal bars on
 * [0, scale], scale common to every model so that cards compare: model,
 * popularity, EASE, and recent popularity when the file has it. */
static void render_ndcg(page_t *b, const status_model_t *m, double scale) {
  const char *label[4] = {"model", "popularity", "EASE", "recent pop."};
  double v[4] = {m->ndcg_model, m->ndcg_popularity, m->ndcg_ease, m->ndcg_recent};
  const int nb = m->has_recent ? 4 : 3;
  num_t t[4];
  for (int i = 0; i < nb; i++) {
    if (isfinite(v[i]))
      snprintf(t[i].s, sizeof t[i].s, "%.4f", v[i]);
    else
      strcpy(t[i].s, "n/a");
  }
  /* No xmlns on <svg>: the HTML parser puts it in the SVG namespace by
   * itself, and the page keeps no URL at all. */
  const int h = 4 + 18 * nb;
  pg_printf(b, "<figure><figcaption>hold-out ndcg@10</figcaption>"
               "<svg width=\"340\" height=\"%d\" viewBox=\"0 0 340 %d\" role=\"img\">"
               "<title>hold-out ndcg@10: model %s, popularity %s, EASE %s",
            h, h, t[0].s, t[1].s, t[2].s);
  if (m->has_recent)
    pg_printf(b, ", recent popularity %s", t[3].s);
  pg_puts(b, "</title>");
  for (int i = 0; i < nb; i++) {
    int y = 3 + 18 * i;
    pg_printf(b, "<text x=\"0\" y=\"%d\">%s</text>", y + 10, label[i]);
    if (!isfinite(v[i])) { /* no bar for a missing figure */
      pg_printf(b, "<text class=\"na\" x=\"84\" y=\"%d\">n/a</text>", y + 10);
      continue;
    }
    double w = scale > 0 ? fmin(fmax(v[i] / scale, 0), 1) * 200 : 0;
    pg_printf(b, "<rect class=\"%s\" x=\"80\" y=\"%d\" width=\"%.1f\" height=\"12\" rx=\"2\"/>"
                 "<text x=\"%.1f\" y=\"%d\">%s</text>",
              i == 0 ? "bar" : "base", y, w, 86 + w, y + 10, t[i].s);
  }
  pg_puts(b, "</svg></figure>");
}

static void render_models(page_t *b, const status_page_t *p) {
  pg_puts(b, "<section id=\"models\"><h2>Models</h2>");
  if (p->n_models == 0) {
    pg_puts(b, "<p class=\"empty\">no model loaded</p></section>\n");
    return;
  }
  double scale = 0;
  for (size_t i = 0; i < p->n_models; i++) {
    const status_model_t *m = &p->models[i];
    double v[4] = {m->ndcg_model, m->ndcg_popularity, m->ndcg_ease, m->ndcg_recent};
    for (int j = 0; j < (m->has_recent ? 4 : 3); j++)
      if (isfinite(v[j]) && v[j] > scale)
        scale = v[j];
  }
  pg_puts(b, "<div class=\"cards\">");
  for (size_t i = 0; i < p->n_models; i++) {
    const status_model_t *m = &p->models[i];
    pg_puts(b, "<section class=\"model\" data-variant=\"");
    pg_text(b, m->variant);
    pg_puts(b, "\"><h3><span>");
    pg_text(b, m->variant);
    pg_printf(b, "</span><span class=\"share\">%u%% of customers</span></h3>", m->percent);
    /* Not the ALS model: whoever looks must not take it for one. */
    if (m->serves != MODEL_SERVES_ALS)
      pg_printf(b, "<p class=\"fallback\" data-serves=\"%s\"><strong>serves %s (fallback)"
                   "</strong>: training found it beats the ALS model on validation</p>",
                model_serves_name(m->serves), model_serves_name(m->serves));
    pg_puts(b, "<dl><dt>path</dt><dd><code>");
    pg_text(b, m->path);
    pg_printf(b, "</code></dd><dt>version</dt><dd>%llu</dd><dt>items</dt><dd>%s</dd>"
                 "<dt>factors</dt><dd>%s</dd><dt>first pass</dt><dd>",
              (unsigned long long)m->version, fmt_grouped(m->items, 0).s,
              fmt_grouped(m->factors, 0).s);
    pg_text(b, m->first_pass);
    pg_printf(b, "</dd><dt>created</dt><dd>%s</dd><dt>loaded</dt><dd>%s</dd></dl>",
              fmt_age(p->now, m->created_at).s, fmt_age(p->now, m->loaded_at).s);
    render_ndcg(b, m, scale);
    pg_puts(b, "</section>");
  }
  pg_puts(b, "</div></section>\n");
}

/* A proportion (CTR, conversion) in a cell: an SVG bar on [0, scale] with
 * its 95% interval as a whisker, then the figure and the interval as text.
 * A NaN figure is "n/a" without a bar. */
static void render_prop(page_t *b, const char *key, const char *what, double x, double lo,
                        double hi, double scale) {
  pg_printf(b, "<td class=\"%s\" data-value=\"%s\"", key, fmt_raw(x).s);
  pg_printf(b, " data-low=\"%s\" data-high=\"%s\">", fmt_raw(lo).s, fmt_raw(hi).s);
  if (!isfinite(x)) {
    pg_puts(b, "n/a</td>");
    return;
  }
  const double W = 80;
  double px[3] = {x, lo, hi};
  for (int i = 0; i < 3; i++)
    px[i] = !isfinite(px[i]) ? NAN : scale > 0 ? fmin(fmax(px[i] / scale, 0), 1) * W : 0;
  int has_ci = isfinite(lo) && isfinite(hi);
  pg_printf(b, "<div class=\"pc\"><svg width=\"80\" height=\"14\" viewBox=\"0 0 80 14\" "
               "role=\"img\"><title>%s %s",
            what, fmt_pct(x, 0).s);
  if (has_ci)
    pg_printf(b, ", 95%% interval %s to %s", fmt_pct(lo, 0).s, fmt_pct(hi, 0).s);
  pg_printf(b, "</title><rect class=\"track\" x=\"0\" y=\"3\" width=\"80\" height=\"8\" rx=\"2\"/>"
               "<rect class=\"bar\" x=\"0\" y=\"3\" width=\"%.1f\" height=\"8\" rx=\"2\"/>",
            px[0]);
  if (has_ci) /* the interval line and its two end caps */
    pg_printf(b, "<path class=\"whisker\" fill=\"none\" d=\"M%.1f 7H%.1fM%.1f 3V11M%.1f 3V11\"/>",
              px[1], px[2], px[1], px[2]);
  pg_printf(b, "</svg><span>%s", fmt_pct(x, 0).s);
  if (has_ci)
    pg_printf(b, "<span class=\"ci\">%s" EN_DASH "%s</span>", fmt_pct(lo, 0).s, fmt_pct(hi, 0).s);
  pg_puts(b, "</span></div></td>");
}

/* Lift and p-value cells. A row with no lift has no data attributes (its
 * JSON has no such keys) and says why. */
static void render_lift(page_t *b, const exp_row_t *r) {
  if (!r->has_lift) {
    const char *why = strcmp(r->placement, "organic") == 0 ? EM_DASH : "control";
    pg_printf(b, "<td class=\"lift\"><span class=\"ci\">%s</span></td>"
                 "<td class=\"p_value\"><span class=\"ci\">%s</span></td>",
              why, EM_DASH);
    return;
  }
  pg_printf(b, "<td class=\"lift\" data-value=\"%s\"", fmt_raw(r->lift).s);
  pg_printf(b, " data-low=\"%s\" data-high=\"%s\">", fmt_raw(r->lift_low).s,
            fmt_raw(r->lift_high).s);
  /* An arrow besides the colour, for readers who cannot tell green from red. */
  int sig = isfinite(r->p_value) && r->p_value < 0.05 && isfinite(r->lift) && r->lift != 0;
  pg_printf(b, "%s%s", sig ? (r->lift > 0 ? "\xe2\x96\xb2 " : "\xe2\x96\xbc ") : "",
            fmt_pct(r->lift, 1).s);
  if (isfinite(r->lift_low) && isfinite(r->lift_high))
    pg_printf(b, "<span class=\"ci\">%s to %s</span>", fmt_pct(r->lift_low, 1).s,
              fmt_pct(r->lift_high, 1).s);
  pg_printf(b, "</td><td class=\"p_value\" data-value=\"%s\">", fmt_raw(r->p_value).s);
  if (!isfinite(r->p_value))
    pg_puts(b, "n/a");
  else if (r->p_value < 0.0001)
    pg_puts(b, "&lt;0.0001");
  else
    pg_printf(b, "%.4f", r->p_value);
  pg_puts(b, "</td>");
}

static void render_experiment(page_t *b, const status_page_t *p) {
  const exp_report_t *rep = p->report;
  pg_printf(b, "<section id=\"experiment-section\"><h2>Experiment</h2><p class=\"meta\">"
               "attribution window <strong>%s</strong>",
            fmt_duration(p->attribution_window_s).s);
  if (rep == NULL || rep->n == 0) {
    pg_puts(b, "</p><p id=\"experiment-empty\" class=\"empty\">no experiment data yet</p>"
               "</section>\n");
    return;
  }
  if (p->report_age_ms >= 0) /* a negative age (a clock step) is not shown */
    pg_printf(b, " " MIDDOT " figures read <strong>%s</strong> ago",
              p->report_age_ms < 1000 ? "&lt;1s"
                                      : fmt_duration((uint64_t)p->report_age_ms / 1000).s);
  /* One scale per column, so that bars compare down the column. */
  double sctr = 0, sconv = 0;
  for (size_t i = 0; i < rep->n; i++) {
    const exp_row_t *r = &rep->row[i];
    double c = isfinite(r->ctr_high) ? r->ctr_high : r->ctr;
    double v = isfinite(r->conversion_high) ? r->conversion_high : r->conversion;
    if (isfinite(c) && c > sctr)
      sctr = c;
    if (isfinite(v) && v > sconv)
      sconv = v;
  }
  pg_printf(b, "</p><div class=\"scroll\"><table id=\"experiment\"><caption>Lift: conversion "
               "against the first variant of the same placement, with its 95%% interval; "
               "highlighted when p &lt; 0.05. Whiskers: 95%% Wilson intervals. "
               "Bar scales: CTR 0" EN_DASH "%s, conversion 0" EN_DASH "%s.</caption><thead><tr>"
               "<th scope=\"col\">variant</th><th scope=\"col\">placement</th>"
               "<th scope=\"col\">requests</th><th scope=\"col\">impressions</th>"
               "<th scope=\"col\">clicks</th><th scope=\"col\">carts</th>"
               "<th scope=\"col\">purchases</th><th scope=\"col\">value</th>"
               "<th scope=\"col\">CTR</th><th scope=\"col\">conversion</th>"
               "<th scope=\"col\">lift</th><th scope=\"col\">p-value</th></tr></thead><tbody>",
            fmt_pct(sctr, 0).s, fmt_pct(sconv, 0).s);
  for (size_t i = 0; i < rep->n; i++) {
    const exp_row_t *r = &rep->row[i];
    pg_puts(b, "<tr class=\"exp-row\" data-variant=\"");
    pg_text(b, r->variant);
    pg_puts(b, "\" data-placement=\"");
    pg_text(b, r->placement);
    pg_puts(b, "\"");
    if (r->has_lift && isfinite(r->p_value) && r->p_value < 0.05 && isfinite(r->lift) &&
        r->lift != 0)
      pg_printf(b, " data-significant=\"%s\"", r->lift > 0 ? "positive" : "negative");
    pg_puts(b, "><th scope=\"row\">");
    pg_text(b, r->variant);
    pg_puts(b, "</th><td class=\"placement\">");
    pg_text(b, r->placement);
    pg_puts(b, "</td>");
    for (int k = 0; k < EXP_N_COUNTERS; k++)
      pg_printf(b, "<td class=\"%s\" data-value=\"%s\">%s</td>", exp_counter_name(k),
                fmt_raw(r->v[k]).s, fmt_grouped(r->v[k], k == EXP_VALUE ? 2 : 0).s);
    render_prop(b, "ctr", "CTR", r->ctr, r->ctr_low, r->ctr_high, sctr);
    render_prop(b, "conversion", "conversion", r->conversion, r->conversion_low,
                r->conversion_high, sconv);
    render_lift(b, r);
    pg_puts(b, "</tr>\n");
  }
  pg_puts(b, "</tbody></table></div></section>\n");
}

static void render_latency(page_t *b, const status_page_t *p) {
  pg_puts(b, "<section id=\"latency-section\"><h2>Latency</h2>");
  if (p->n_latency == 0) {
    pg_puts(b, "<p class=\"empty\">no commands yet</p></section>\n");
    return;
  }
  pg_puts(b, "<table id=\"latency\"><thead><tr><th scope=\"col\">command</th>"
             "<th scope=\"col\">calls</th><th scope=\"col\">failures</th>"
             "<th scope=\"col\">p50 ms</th><th scope=\"col\">p99 ms</th>"
             "<th scope=\"col\">p99.9 ms</th><th scope=\"col\">max ms</th></tr></thead><tbody>");
  for (size_t i = 0; i < p->n_latency; i++) {
    const status_latency_t *l = &p->latency[i];
    pg_puts(b, "<tr class=\"latency-row\" data-command=\"");
    pg_text(b, l->command);
    pg_puts(b, "\"><th scope=\"row\">");
    pg_text(b, l->command);
    pg_printf(b, "</th><td class=\"calls\" data-value=\"%llu\">%s</td>"
                 "<td class=\"failed%s\" data-value=\"%llu\">%s</td>",
              (unsigned long long)l->calls, fmt_grouped((double)l->calls, 0).s,
              l->failed ? " some" : "", (unsigned long long)l->failed,
              fmt_grouped((double)l->failed, 0).s);
    const char *key[4] = {"p50_usec", "p99_usec", "p999_usec", "max_usec"};
    uint64_t us[4] = {l->p50_us, l->p99_us, l->p999_us, l->max_us};
    for (int k = 0; k < 4; k++)
      pg_printf(b, "<td class=\"%s\" data-value=\"%llu\">%.3f</td>", key[k],
                (unsigned long long)us[k], (double)us[k] / 1000);
    pg_puts(b, "</tr>\n");
  }
  pg_puts(b, "</tbody></table></section>\n");
}

char *status_page_html(const status_page_t *p, size_t *len) {
  page_t b = {0};
  pg_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
              "<title>recd status</title><style>");
  pg_puts(&b, STYLE);
  pg_puts(&b, "</style></head><body>\n");
  render_header(&b, p);
  pg_puts(&b, "<main>\n");
  render_models(&b, p);
  render_experiment(&b, p);
  render_latency(&b, p);
  pg_puts(&b, "</main></body></html>\n");
  if (b.oom) {
    free(b.buf);
    return NULL;
  }
  if (len)
    *len = b.len;
  return b.buf;
}
