/* reco_parse.c - the grammar of RECOMMEND, RANK, SIMILAR and FEEDBACK (see
 * reco.h): pure parsing of the arguments, then their resolution against a
 * model. No I/O, no server state: unit-tested on its own
 * (tests/unit/test_reco_parse.c).
 *
 * One table of options (reco__opts) drives the parser, the "expected ..."
 * list of every syntax error and the syntax lines of the documentation
 * (reco_syntax, printed by `recd --commands-markdown` into README), so the
 * three cannot drift apart.
 */
#include "reco.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rclient.h"
#include "recd/csv.h"

#define R_ALL_RS (RECO_CMD_RECOMMEND | RECO_CMD_RANK | RECO_CMD_SIMILAR)

typedef enum reco__kind {
  K_FLAG,     /* NAME */
  K_VALUE,    /* NAME value */
  K_COUNTED,  /* NAME n id ... (n ids) */
  K_REST      /* NAME id [id ...] (every argument after it) */
} reco__kind_t;

typedef enum reco__opt_id {
  O_COUNT, O_OFFSET, O_CATEGORY, O_MAXPERCATEGORY, O_FOR, O_WITHSCORES, O_WITHREASONS,
  O_WITHMETA, O_HISTORY, O_SHOWNLIMIT, O_PROMOTE, O_ONEPERGROUP, O_PLACEMENT, O_VARIANT,
  O_NOTRACK, O_EXCLUDE, O_WEIGHT, O_TYPE, O_VALUE, O_N
} reco__opt_id_t;

typedef struct reco__opt {
  const char *name;
  const char *syntax; /* as documented */
  unsigned cmds;      /* reco_cmd_t mask */
  reco__kind_t kind;
  int repeat;         /* may be given more than once */
} reco__opt_t;

/* In the order of the syntax lines and of the "expected" lists. */
static const reco__opt_t reco__opts[O_N] = {
  [O_COUNT] = {"COUNT", "[COUNT n]", RECO_CMD_RECOMMEND | RECO_CMD_SIMILAR, K_VALUE, 0},
  [O_OFFSET] = {"OFFSET", "[OFFSET m]", RECO_CMD_RECOMMEND | RECO_CMD_SIMILAR, K_VALUE, 0},
  [O_CATEGORY] = {"CATEGORY", "[CATEGORY c]...", RECO_CMD_RECOMMEND | RECO_CMD_SIMILAR, K_VALUE,
                  1},
  [O_MAXPERCATEGORY] = {"MAXPERCATEGORY", "[MAXPERCATEGORY n]",
                        RECO_CMD_RECOMMEND | RECO_CMD_SIMILAR, K_VALUE, 0},
  [O_FOR] = {"FOR", "[FOR user]", RECO_CMD_SIMILAR, K_VALUE, 0},
  [O_WITHSCORES] = {"WITHSCORES", "[WITHSCORES]", R_ALL_RS, K_FLAG, 0},
  [O_WITHREASONS] = {"WITHREASONS", "[WITHREASONS]", RECO_CMD_RECOMMEND, K_FLAG, 0},
  [O_WITHMETA] = {"WITHMETA", "[WITHMETA]", R_ALL_RS, K_FLAG, 0},
  [O_HISTORY] = {"HISTORY", "[HISTORY n item [item ...]]", RECO_CMD_RECOMMEND | RECO_CMD_RANK,
                 K_COUNTED, 0},
  [O_SHOWNLIMIT] = {"SHOWNLIMIT", "[SHOWNLIMIT n]", RECO_CMD_RECOMMEND, K_VALUE, 0},
  [O_PROMOTE] = {"PROMOTE", "[PROMOTE n]", RECO_CMD_RECOMMEND, K_VALUE, 0},
  [O_ONEPERGROUP] = {"ONEPERGROUP", "[ONEPERGROUP]", RECO_CMD_RECOMMEND, K_FLAG, 0},
  [O_PLACEMENT] = {"PLACEMENT", "[PLACEMENT p]", R_ALL_RS, K_VALUE, 0},
  [O_VARIANT] = {"VARIANT", "[VARIANT v]", R_ALL_RS, K_VALUE, 0},
  [O_NOTRACK] = {"NOTRACK", "[NOTRACK]", R_ALL_RS, K_FLAG, 0},
  [O_EXCLUDE] = {"EXCLUDE", "[EXCLUDE id [id ...]]", RECO_CMD_RECOMMEND | RECO_CMD_SIMILAR,
                 K_REST, 0},
  [O_WEIGHT] = {"WEIGHT", "[WEIGHT w]", RECO_CMD_FEEDBACK, K_VALUE, 0},
  [O_TYPE] = {"TYPE", "[TYPE purchase|cart|click|hide|unhide]", RECO_CMD_FEEDBACK, K_VALUE, 0},
  [O_VALUE] = {"VALUE", "[VALUE v]", RECO_CMD_FEEDBACK, K_VALUE, 0},
};

/* What each option does, for the command reference (README). */
static const char *const reco__docs[O_N] = {
  [O_COUNT] = "items in the answer, 0 to max-count (default 10)",
  [O_OFFSET] = "skip the first m items of the ranking (\"show more\"); OFFSET + COUNT is at most "
               "max-count",
  [O_CATEGORY] = "only items of category c; repeated, items of any of them. An unknown name is "
                 "an error that suggests close names; names are case-sensitive (MODEL "
                 "CATEGORIES lists them)",
  [O_MAXPERCATEGORY] = "at most n items of one category, the best list under that cap (0 = off; "
                       "default: config max-per-category)",
  [O_FOR] = "apply this customer's filters: history, hidden items, removed categories, "
            "bought families (exclude-bought-groups); their variant answers",
  [O_WITHSCORES] = "each item followed by its score (a bulk string; RANK: nil for an unknown id)",
  [O_WITHREASONS] = "each item followed by the customer's past item that contributed most, "
                    "`promoted` for a promoted slot, or nil when the answer is not personalized",
  [O_WITHMETA] = "one leading element describing the answer (see WITHMETA below)",
  [O_HISTORY] = "n items the visitor is interacting with now (a cart), counted: exactly n ids "
                "follow, n from 1 to 1000; folded in at weight 1 on top of the stored history "
                "(for an unknown id they are the whole history) and never recommended",
  [O_SHOWNLIMIT] = "leave out items shown to the customer n or more times within the attribution "
                   "window with no click, cart or purchase since (0 = off; default: config "
                   "shown-limit)",
  [O_PROMOTE] = "slots 2, 4, ..., 2n go to the customer's best items of the promoted set (0 = "
                "off; default: config promote-slots)",
  [O_ONEPERGROUP] = "at most one item per product family (also config one-per-group)",
  [O_PLACEMENT] = "the touchpoint impressions and outcomes are counted for, 1 to 64 bytes of "
                  "A-Z a-z 0-9 _ . : - (default `default`)",
  [O_VARIANT] = "answer with this variant's model (QA); default: the customer's variant "
                "(SIMILAR: the control)",
  [O_NOTRACK] = "record no impressions for this answer",
  [O_EXCLUDE] = "never return these items; takes every argument after it, so it comes last, "
                "and an option name after it is an error, not an id",
  [O_WEIGHT] = "history weight to add, a finite number in (0, 1e9] (default: the type's "
               "feedback-weight-<type>)",
  [O_TYPE] = "purchase (default), cart or click: an outcome, attributed to the answer that "
             "showed the item; hide / unhide: add the item to / remove it from the customer's "
             "hidden set (no WEIGHT or VALUE)",
  [O_VALUE] = "money the outcome brought, a finite number in [0, 1e12] (default 0)",
};

void reco_options_foreach(reco_cmd_t cmd,
                          void (*fn)(const char *syntax, const char *doc, void *arg), void *arg) {
  for (int k = 0; k < O_N; k++)
    if (reco__opts[k].cmds & (unsigned)cmd)
      fn(reco__opts[k].syntax, reco__docs[k], arg);
}

static const char *reco__cmd_name(reco_cmd_t cmd) {
  switch (cmd) {
  case RECO_CMD_RECOMMEND: return "RECOMMEND";
  case RECO_CMD_RANK: return "RANK";
  case RECO_CMD_SIMILAR: return "SIMILAR";
  case RECO_CMD_FEEDBACK: return "FEEDBACK";
  }
  return "?";
}

/* ---- helpers -------------------------------------------------------------- */

static int reco__eq(const resp_cmd_t *a, size_t i, const char *word) {
  return strlen(word) == a->argvlen[i] && strcasecmp(a->argv[i], word) == 0;
}

/* The option a->argv[i] names (any command's), or -1. */
static int reco__lookup(const resp_cmd_t *a, size_t i, unsigned cmds) {
  for (int k = 0; k < O_N; k++)
    if ((reco__opts[k].cmds & cmds) && reco__eq(a, i, reco__opts[k].name))
      return k;
  return -1;
}

/* An option name of RECOMMEND, RANK or SIMILAR: what ends RANK's items and
 * may not appear among EXCLUDE's or HISTORY's ids. */
static int reco__is_option(const resp_cmd_t *a, size_t i) {
  return reco__lookup(a, i, R_ALL_RS) >= 0;
}

/* A token of the request for a message: at most 24 bytes (then "..."),
 * non-printable bytes and quotes as \xNN. out: RECO__TOK bytes. */
#define RECO__TOK (24 * 4 + 4)
static const char *reco__tok(char *out, const char *s, size_t len) {
  size_t o = 0;
  for (size_t j = 0; j < len && j < 24; j++)
    o += recd_escape_byte(out + o, (unsigned char)s[j], "'");
  if (len > 24) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
  return out;
}
#define TOK(buf, a, i) reco__tok(buf, (a)->argv[i], (a)->argvlen[i])

size_t reco_edit_distance(const char *a, size_t al, const char *b, size_t bl, size_t cap) {
  if ((al > bl ? al - bl : bl - al) > cap)
    return cap + 1;
  if (al > 255 || bl > 255) /* ids and names are at most 256 bytes; bound the work */
    return cap + 1;
  size_t prev[257], cur[257];
  for (size_t j = 0; j <= bl; j++)
    prev[j] = j;
  for (size_t i = 1; i <= al; i++) {
    cur[0] = i;
    size_t best = cur[0];
    const int ca = a[i - 1] >= 'A' && a[i - 1] <= 'Z' ? a[i - 1] + 32 : a[i - 1];
    for (size_t j = 1; j <= bl; j++) {
      const int cb = b[j - 1] >= 'A' && b[j - 1] <= 'Z' ? b[j - 1] + 32 : b[j - 1];
      size_t v = prev[j - 1] + (ca != cb);
      if (prev[j] + 1 < v)
        v = prev[j] + 1;
      if (cur[j - 1] + 1 < v)
        v = cur[j - 1] + 1;
      cur[j] = v;
      if (v < best)
        best = v;
    }
    if (best > cap) /* every path through this row already costs more */
      return cap + 1;
    memcpy(prev, cur, (bl + 1) * sizeof *prev);
  }
  return prev[bl] > cap ? cap + 1 : prev[bl];
}

/* How far a misspelling may be from what was meant. */
static size_t reco__typo_cap(size_t len) {
  return len <= 4 ? 1 : len <= 8 ? 2 : 3;
}

/* "COUNT, OFFSET, ... or EXCLUDE": the options of cmd, in table order. */
static void reco__expected(char *buf, size_t size, unsigned cmd) {
  size_t o = 0, n = 0, total = 0;
  for (int k = 0; k < O_N; k++)
    total += (reco__opts[k].cmds & cmd) != 0;
  buf[0] = '\0';
  for (int k = 0; k < O_N && o < size; k++) {
    if (!(reco__opts[k].cmds & cmd))
      continue;
    n++;
    int w = snprintf(buf + o, size - o, "%s%s", n == 1 ? "" : n == total ? " or " : ", ",
                     reco__opts[k].name);
    if (w < 0)
      break;
    o += (size_t)w;
  }
}

/* The syntax error for an unexpected token a->argv[i] of cmd: what was
 * expected, and the closest option when the token looks like a typo of one
 * (or a bare number where COUNT / WEIGHT was meant). */
static int reco__unexpected(const resp_cmd_t *a, size_t i, unsigned cmd, unsigned seen,
                            const char *why, char *err) {
  char tok[RECO__TOK], exp[200], hint[64] = "";
  reco__expected(exp, sizeof exp, cmd);
  int best = -1;
  size_t bestd = reco__typo_cap(a->argvlen[i]) + 1;
  for (int k = 0; k < O_N; k++) {
    if (!(reco__opts[k].cmds & cmd) || ((seen & (1u << k)) && !reco__opts[k].repeat))
      continue;
    size_t d = reco_edit_distance(a->argv[i], a->argvlen[i], reco__opts[k].name,
                                  strlen(reco__opts[k].name), bestd - 1);
    if (d < bestd) {
      bestd = d;
      best = k;
    }
  }
  uint64_t num;
  if (best >= 0)
    snprintf(hint, sizeof hint, " (did you mean %s?)", reco__opts[best].name);
  else if (csv_parse_u64(a->argv[i], a->argvlen[i], &num) == 0 && a->argvlen[i] <= 20 &&
           (cmd & (RECO_CMD_RECOMMEND | RECO_CMD_SIMILAR)) && !(seen & (1u << O_COUNT)))
    snprintf(hint, sizeof hint, " (did you mean COUNT %.20s?)", a->argv[i]);
  else if (csv_parse_u64(a->argv[i], a->argvlen[i], &num) == 0 && a->argvlen[i] <= 20 &&
           cmd == RECO_CMD_FEEDBACK && !(seen & (1u << O_WEIGHT)))
    snprintf(hint, sizeof hint, " (did you mean WEIGHT %.20s?)", a->argv[i]);
  return recd_errf(err, RECD_EINVAL, "syntax error at '%s': %sexpected %s%s", TOK(tok, a, i),
                   why ? why : "", exp, hint);
}

/* An id argument: 1 to 256 bytes. what: "user id", "EXCLUDE id #2", ... */
static int reco__check_id(const resp_cmd_t *a, size_t i, const char *what, char *err) {
  if (a->argvlen[i] == 0)
    return recd_errf(err, RECD_EINVAL, "%s is empty (ids are 1 to %d bytes)", what,
                     RCLIENT_ID_MAX);
  if (a->argvlen[i] > RCLIENT_ID_MAX) {
    char tok[RECO__TOK];
    return recd_errf(err, RECD_EINVAL, "%s longer than %d bytes (%zu bytes: '%s')", what,
                     RCLIENT_ID_MAX, a->argvlen[i], TOK(tok, a, i));
  }
  return 0;
}

static int reco__size(const resp_cmd_t *a, size_t i, const char *name, size_t lo, size_t max,
                      size_t *out, char *err) {
  uint64_t v;
  if (csv_parse_u64(a->argv[i], a->argvlen[i], &v) != 0 || v < lo || v > max) {
    char tok[RECO__TOK];
    return recd_errf(err, RECD_EINVAL, "%s must be an integer in [%zu, %zu], got '%s'", name, lo,
                     max, TOK(tok, a, i));
  }
  *out = (size_t)v;
  return 0;
}

static void reco__init(const resp_cmd_t *a, reco_cmd_t cmd, reco_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->cmd = cmd;
  snprintf(o->placement, sizeof o->placement, "%s", EXP_DEFAULT_PLACEMENT);
  o->argc = a->argc;
  o->excl_from = a->argc;
  o->shown_limit = o->max_per_category = o->promote = -1;
  o->sim_item = -1;
}

/* ---- the options ---------------------------------------------------------- */

int reco_parse_common(const resp_cmd_t *a, size_t *i, reco_opts_t *o, char *err) {
  if (reco__eq(a, *i, "NOTRACK")) {
    o->notrack = 1;
    return 1;
  }
  if (reco__eq(a, *i, "PLACEMENT") && *i + 1 < a->argc) {
    ++*i;
    if (!exp_name_valid(a->argv[*i], a->argvlen[*i])) {
      char tok[RECO__TOK];
      return recd_errf(err, RECD_EINVAL,
                       "PLACEMENT must be 1 to %d bytes of A-Z a-z 0-9 _ . : -, got '%s'",
                       EXP_NAME_MAX, TOK(tok, a, *i)),
             -1;
    }
    memcpy(o->placement, a->argv[*i], a->argvlen[*i]);
    o->placement[a->argvlen[*i]] = '\0';
    return 1;
  }
  if (reco__eq(a, *i, "VARIANT") && *i + 1 < a->argc) {
    ++*i;
    o->variant = a->argv[*i];
    o->variant_len = a->argvlen[*i];
    return 1;
  }
  return 0;
}

/* Parses the options of o->cmd from a->argv[from] to the end. */
static int reco__options(const resp_cmd_t *a, size_t from, size_t max_count, reco_opts_t *o,
                         char *err) {
  const unsigned cmd = (unsigned)o->cmd;
  unsigned seen = 0;
  char tok[RECO__TOK], why[160];
  for (size_t i = from; i < a->argc; i++) {
    const int k = reco__lookup(a, i, R_ALL_RS);
    if (k < 0) {
      if (o->cmd == RECO_CMD_RANK)
        return reco__unexpected(a, i, cmd, seen, "RANK's items come before its options; ", err);
      return reco__unexpected(a, i, cmd, seen, NULL, err);
    }
    const reco__opt_t *d = &reco__opts[k];
    if (!(d->cmds & cmd)) {
      snprintf(why, sizeof why, "%s does not take %s; ", reco__cmd_name(o->cmd), d->name);
      return reco__unexpected(a, i, cmd, seen, why, err);
    }
    if ((seen & (1u << k)) && !d->repeat)
      return recd_errf(err, RECD_EINVAL, "syntax error at '%s': %s given twice", TOK(tok, a, i),
                       d->name);
    seen |= 1u << k;
    if (d->kind != K_FLAG && i + 1 >= a->argc)
      return recd_errf(err, RECD_EINVAL, "syntax error at '%s': missing value after it (%s)",
                       TOK(tok, a, i), d->syntax);
    switch ((reco__opt_id_t)k) {
    case O_COUNT:
      if (reco__size(a, ++i, "COUNT", 0, max_count, &o->count, err) != 0)
        return RECD_EINVAL;
      break;
    case O_OFFSET:
      if (reco__size(a, ++i, "OFFSET", 0, max_count, &o->offset, err) != 0)
        return RECD_EINVAL;
      break;
    case O_CATEGORY:
      if (a->argvlen[i + 1] == 0)
        return recd_errf(err, RECD_EINVAL, "CATEGORY name is empty");
      o->cat_filter = 1;
      o->cat_arg[o->n_cat_arg++] = ++i;
      break;
    case O_MAXPERCATEGORY:
    case O_PROMOTE: {
      size_t v;
      if (reco__size(a, ++i, d->name, 0, max_count, &v, err) != 0)
        return RECD_EINVAL;
      *(k == O_PROMOTE ? &o->promote : &o->max_per_category) = (int64_t)v;
      break;
    }
    case O_SHOWNLIMIT: {
      size_t v;
      if (reco__size(a, ++i, "SHOWNLIMIT", 0, RECO_SHOWNLIMIT_MAX, &v, err) != 0)
        return RECD_EINVAL;
      o->shown_limit = (int64_t)v;
      break;
    }
    case O_FOR:
      if (reco__check_id(a, ++i, "FOR user id", err) != 0)
        return RECD_EINVAL;
      o->user = a->argv[i];
      o->ulen = a->argvlen[i];
      break;
    case O_WITHSCORES: o->withscores = 1; break;
    case O_WITHREASONS: o->withreasons = 1; break;
    case O_WITHMETA: o->withmeta = 1; break;
    case O_ONEPERGROUP: o->one_per_group = 1; break;
    case O_HISTORY: {
      /* Counted: HISTORY n id ... An option name where an id is due means
       * the count is wrong, not an item called "COUNT". */
      size_t n;
      if (reco__size(a, ++i, "HISTORY's count", 1, RECO_HISTORY_MAX, &n, err) != 0)
        return RECD_EINVAL;
      for (size_t j = 0; j < n; j++) {
        const size_t p = i + 1 + j;
        if (p >= a->argc || reco__is_option(a, p)) {
          if (p >= a->argc)
            return recd_errf(err, RECD_EINVAL,
                             "syntax error at end of command: HISTORY %zu needs %zu item ids, "
                             "got %zu", n, n, j);
          return recd_errf(err, RECD_EINVAL,
                           "syntax error at '%s': HISTORY %zu needs %zu item ids, got %zu "
                           "before this option name", TOK(tok, a, p), n, n, j);
        }
        char what[48];
        snprintf(what, sizeof what, "HISTORY id #%zu", j + 1);
        if (reco__check_id(a, p, what, err) != 0)
          return RECD_EINVAL;
      }
      o->hist_from = i + 1;
      o->n_hist_arg = n;
      i += n;
      break;
    }
    case O_EXCLUDE:
      /* Every argument after it, so it comes last: an option name here was
       * meant as an option, and is an error rather than an id. */
      for (size_t p = i + 1; p < a->argc; p++) {
        if (reco__is_option(a, p))
          return recd_errf(err, RECD_EINVAL,
                           "syntax error at '%s': EXCLUDE takes every argument after it as an "
                           "item id, so options go before EXCLUDE", TOK(tok, a, p));
        char what[48];
        snprintf(what, sizeof what, "EXCLUDE id #%zu", p - i);
        if (reco__check_id(a, p, what, err) != 0)
          return RECD_EINVAL;
      }
      o->excl_from = i + 1;
      i = a->argc;
      break;
    case O_PLACEMENT:
    case O_VARIANT:
    case O_NOTRACK:
      if (reco_parse_common(a, &i, o, err) < 0)
        return RECD_EINVAL;
      break;
    case O_WEIGHT:
    case O_TYPE:
    case O_VALUE:
    case O_N:
      break; /* not R_ALL_RS: never looked up here */
    }
  }
  if (o->offset + o->count > max_count)
    return recd_errf(err, RECD_EINVAL, "OFFSET + COUNT must be at most max-count (%zu)",
                     max_count);
  return 0;
}

/* ---- the commands --------------------------------------------------------- */

int reco_parse_recommend(const resp_cmd_t *a, size_t max_count, reco_opts_t *o, char *err) {
  reco__init(a, RECO_CMD_RECOMMEND, o);
  if (reco__check_id(a, 1, "user id", err) != 0)
    return RECD_EINVAL;
  o->user = a->argv[1];
  o->ulen = a->argvlen[1];
  o->count = 10;
  if ((o->cat_arg = malloc(a->argc * sizeof *o->cat_arg)) == NULL)
    return recd_errf(err, RECD_ENOMEM, "out of memory");
  return reco__options(a, 2, max_count, o, err);
}

int reco_parse_similar(const resp_cmd_t *a, size_t max_count, reco_opts_t *o, char *err) {
  reco__init(a, RECO_CMD_SIMILAR, o);
  if (reco__check_id(a, 1, "item id", err) != 0)
    return RECD_EINVAL;
  o->item = a->argv[1];
  o->ilen = a->argvlen[1];
  o->count = 10;
  if ((o->cat_arg = malloc(a->argc * sizeof *o->cat_arg)) == NULL)
    return recd_errf(err, RECD_ENOMEM, "out of memory");
  return reco__options(a, 2, max_count, o, err);
}

int reco_parse_rank(const resp_cmd_t *a, reco_opts_t *o, char *err) {
  reco__init(a, RECO_CMD_RANK, o);
  if (reco__check_id(a, 1, "user id", err) != 0)
    return RECD_EINVAL;
  o->user = a->argv[1];
  o->ulen = a->argvlen[1];
  /* The items: up to the first option name; then options only. */
  size_t n = 0;
  while (2 + n < a->argc && !reco__is_option(a, 2 + n)) {
    char what[48];
    snprintf(what, sizeof what, "RANK item #%zu", n + 1);
    if (reco__check_id(a, 2 + n, what, err) != 0)
      return RECD_EINVAL;
    n++;
  }
  if (n == 0) {
    char tok[RECO__TOK];
    return recd_errf(err, RECD_EINVAL,
                     "wrong number of arguments for 'rank' command: no item before '%s' "
                     "(RANK <user> <item> [item ...] [options])",
                     TOK(tok, a, 2));
  }
  /* The last item right before the options (or the end) that is a typo
   * of an option name (RANK u a b WITHSCORE) is refused: there it is far
   * more likely a misspelt option than an item. An item with such an id
   * can be listed anywhere else. */
  const size_t last = 2 + n - 1;
  if (a->argvlen[last] >= 7) {
    for (int k = 0; k < O_N; k++) {
      const size_t nl = strlen(reco__opts[k].name);
      if (!(reco__opts[k].cmds & RECO_CMD_RANK) || nl < 7)
        continue;
      if (reco_edit_distance(a->argv[last], a->argvlen[last], reco__opts[k].name, nl,
                             reco__typo_cap(nl)) <= reco__typo_cap(nl)) {
        char tok[RECO__TOK];
        return recd_errf(err, RECD_EINVAL,
                         "syntax error at '%s': a misspelt option? (did you mean %s?) RANK "
                         "takes it as an item only when it is not its last item",
                         TOK(tok, a, last), reco__opts[k].name);
      }
    }
  }
  o->cand_ids = (const char *const *)a->argv + 2;
  o->cand_lens = a->argvlen + 2;
  o->n_cand = n;
  return reco__options(a, 2 + n, 0, o, err);
}

/* ---- resolution ----------------------------------------------------------- */

/* The error for CATEGORY a->argv[i], unknown to m: the close names (equal
 * but for case, or a few edits away, or one a prefix of the other), at
 * most three, best first. */
static int reco__unknown_category(const resp_cmd_t *a, size_t i, const model_t *m, char *err) {
  char tok[RECO__TOK];
  TOK(tok, a, i);
  const uint32_t nc = model_n_categories(m);
  if (nc == 0)
    return recd_errf(err, RECD_EINVAL, "unknown CATEGORY '%s': the model has no categories", tok);
  const char *q = a->argv[i];
  const size_t ql = a->argvlen[i], cap = reco__typo_cap(ql);
  uint32_t best[3] = {0, 0, 0};
  size_t bestd[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
  for (uint32_t c = 1; c <= nc; c++) {
    size_t len;
    const char *name = model_category_name(m, c, &len);
    size_t d = reco_edit_distance(q, ql, name, len, cap);
    if (d > cap && ql >= 3 && len >= 3 &&
        strncasecmp(q, name, ql < len ? ql : len) == 0)
      d = cap; /* "kit" for "kitchen", "home decor" for "home" */
    if (d > cap)
      continue;
    for (int s = 0; s < 3; s++) {
      if (d < bestd[s]) {
        for (int t = 2; t > s; t--) {
          best[t] = best[t - 1];
          bestd[t] = bestd[t - 1];
        }
        best[s] = c;
        bestd[s] = d;
        break;
      }
    }
  }
  if (best[0] == 0)
    return recd_errf(err, RECD_EINVAL,
                     "unknown CATEGORY '%s' (no close match among the model's %u categories; "
                     "MODEL CATEGORIES lists them)", tok, nc);
  char sugg[3 * RECO__TOK + 32] = "";
  size_t o = 0;
  for (int s = 0; s < 3 && best[s] != 0; s++) {
    size_t len;
    const char *name = model_category_name(m, best[s], &len);
    char t[RECO__TOK];
    o += (size_t)snprintf(sugg + o, sizeof sugg - o, "%s'%s'", s == 0 ? "" : " or ",
                          reco__tok(t, name, len));
  }
  return recd_errf(err, RECD_EINVAL,
                   "unknown CATEGORY '%s': did you mean %s? (category names are "
                   "case-sensitive; MODEL CATEGORIES lists them)", tok, sugg);
}

int reco_resolve(reco_opts_t *o, const resp_cmd_t *a, const model_t *m, char *err) {
  const size_t n_excl = o->argc - o->excl_from;
  o->cats = malloc((o->n_cat_arg ? o->n_cat_arg : 1) * sizeof *o->cats);
  o->excl = malloc((n_excl ? n_excl : 1) * sizeof *o->excl);
  o->cand = malloc((o->n_cand ? o->n_cand : 1) * sizeof *o->cand);
  o->hist_items = malloc((o->n_hist_arg ? o->n_hist_arg : 1) * sizeof *o->hist_items);
  if (o->cats == NULL || o->excl == NULL || o->cand == NULL || o->hist_items == NULL)
    return recd_errf(err, RECD_ENOMEM, "out of memory");
  for (size_t j = 0; j < o->n_cat_arg; j++) {
    const size_t i = o->cat_arg[j];
    uint32_t cat = model_find_category(m, a->argv[i], a->argvlen[i]);
    if (cat == 0)
      return reco__unknown_category(a, i, m, err);
    o->cats[o->n_cats++] = cat;
  }
  for (size_t i = o->excl_from; i < o->argc; i++) {
    int64_t idx = model_find_item(m, a->argv[i], a->argvlen[i]);
    if (idx >= 0)
      o->excl[o->n_excl++] = (uint32_t)idx;
  }
  for (size_t i = o->hist_from; i < o->hist_from + o->n_hist_arg; i++) {
    int64_t idx = model_find_item(m, a->argv[i], a->argvlen[i]);
    if (idx >= 0)
      o->hist_items[o->n_hist_items++] = (uint32_t)idx;
  }
  for (size_t j = 0; j < o->n_cand; j++)
    o->cand[j] = model_find_item(m, o->cand_ids[j], o->cand_lens[j]);
  if (o->item != NULL)
    o->sim_item = model_find_item(m, o->item, o->ilen);
  return 0;
}

void reco_opts_free(reco_opts_t *o) {
  free(o->cat_arg);
  free(o->cats);
  free(o->excl);
  free(o->cand);
  free(o->hist_items);
  memset(o, 0, sizeof *o);
}

/* ---- FEEDBACK ------------------------------------------------------------- */

/* A number of the grammar csv_parse_float accepts, in double precision:
 * WEIGHT 0.1 adds 0.1, not 0.100000001490116 (argv is NUL-terminated). */
static int reco__number(const resp_cmd_t *a, size_t i, double lo, double hi, double *out) {
  float f;
  if (csv_parse_float(a->argv[i], a->argvlen[i], &f) != 0)
    return -1;
  const double v = strtod(a->argv[i], NULL);
  if (!(v >= lo && v <= hi))
    return -1;
  *out = v;
  return 0;
}

int reco_parse_feedback(const resp_cmd_t *a, reco_feedback_t *f, char *err) {
  static const char *const types[] = {"purchase", "cart", "click", "hide", "unhide"};
  memset(f, 0, sizeof *f);
  f->weight = -1.0;
  f->type = RECO_FB_PURCHASE;
  char tok[RECO__TOK];
  if (a->argc < 3)
    return recd_errf(err, RECD_EINVAL, "wrong number of arguments for 'feedback' command");
  /* The old message as the prefix, the argument named after it. */
  if (a->argvlen[1] == 0 || a->argvlen[1] > RCLIENT_ID_MAX || a->argvlen[2] == 0 ||
      a->argvlen[2] > RCLIENT_ID_MAX) {
    const size_t i = a->argvlen[1] == 0 || a->argvlen[1] > RCLIENT_ID_MAX ? 1 : 2;
    return recd_errf(err, RECD_EINVAL, "user and item ids must be 1 to %d bytes: the %s id %s",
                     RCLIENT_ID_MAX, i == 1 ? "user" : "item",
                     a->argvlen[i] == 0 ? "is empty" : "is longer");
  }
  f->user = a->argv[1];
  f->ulen = a->argvlen[1];
  f->item = a->argv[2];
  f->ilen = a->argvlen[2];
  unsigned seen = 0;
  for (size_t i = 3; i < a->argc; i++) {
    const int k = reco__lookup(a, i, RECO_CMD_FEEDBACK);
    if (k < 0)
      return reco__unexpected(a, i, RECO_CMD_FEEDBACK, seen, NULL, err);
    if (seen & (1u << k))
      return recd_errf(err, RECD_EINVAL, "syntax error at '%s': %s given twice", TOK(tok, a, i),
                       reco__opts[k].name);
    seen |= 1u << k;
    if (i + 1 >= a->argc)
      return recd_errf(err, RECD_EINVAL, "syntax error at '%s': missing value after it (%s)",
                       TOK(tok, a, i), reco__opts[k].syntax);
    i++;
    if (k == O_WEIGHT) {
      /* It must stay > 0 as a float too: that is how the fold-in reads it
       * back. (A weight of 0, an outcome that leaves the history alone, is
       * the business of the feedback-weight-<type> keys.) */
      if (reco__number(a, i, 0.0, 1e9, &f->weight) != 0 || !((float)f->weight > 0.0f))
        return recd_errf(err, RECD_EINVAL, "WEIGHT must be a finite number in (0, 1e9], got '%s'",
                         TOK(tok, a, i));
    } else if (k == O_VALUE) {
      f->have_value = 1;
      if (reco__number(a, i, 0.0, 1e12, &f->value) != 0)
        return recd_errf(err, RECD_EINVAL, "VALUE must be a finite number in [0, 1e12], got '%s'",
                         TOK(tok, a, i));
    } else {
      size_t t = 0;
      while (t < sizeof types / sizeof types[0] && !reco__eq(a, i, types[t]))
        t++;
      if (t == sizeof types / sizeof types[0])
        return recd_errf(err, RECD_EINVAL,
                         "TYPE must be purchase, cart, click, hide or unhide, got '%s'",
                         TOK(tok, a, i));
      f->type = (reco_fb_type_t)t;
    }
  }
  if ((f->type == RECO_FB_HIDE || f->type == RECO_FB_UNHIDE) && (seen & ~(1u << O_TYPE)))
    return recd_errf(err, RECD_EINVAL, "TYPE %s takes no WEIGHT or VALUE", types[f->type]);
  return 0;
}

/* ---- documentation -------------------------------------------------------- */

size_t reco_syntax(reco_cmd_t cmd, char *buf, size_t size) {
  size_t o = 0;
  char scratch[64]; /* where what does not fit goes, to be counted */
#define PUT(...)                                                                                   \
  do {                                                                                             \
    int w_ = snprintf(o < size ? buf + o : scratch, o < size ? size - o : sizeof scratch,      \
                      __VA_ARGS__);                                                                \
    if (w_ > 0)                                                                                    \
      o += (size_t)w_;                                                                             \
  } while (0)
  switch (cmd) {
  case RECO_CMD_RECOMMEND: PUT("RECOMMEND <user>"); break;
  case RECO_CMD_RANK: PUT("RANK <user> <item> [item ...]"); break;
  case RECO_CMD_SIMILAR: PUT("SIMILAR <item>"); break;
  case RECO_CMD_FEEDBACK: PUT("FEEDBACK <user> <item>"); break;
  }
  for (int k = 0; k < O_N; k++)
    if (reco__opts[k].cmds & (unsigned)cmd)
      PUT(" %s", reco__opts[k].syntax);
#undef PUT
  return o;
}

/* ---- WITHMETA ------------------------------------------------------------- */

void reco_reply_meta(reply_buf_t *r, const char *kind, const char *reason, const char *variant,
                     const char *version, const model_t *m) {
  char sum[16];
  snprintf(sum, sizeof sum, "%08x", model_checksum(m));
  reply_array(r, 10);
  reply_bulk_cstr(r, "kind");
  reply_bulk_cstr(r, kind);
  reply_bulk_cstr(r, "reason");
  reply_bulk_cstr(r, reason ? reason : "");
  reply_bulk_cstr(r, "variant");
  reply_bulk_cstr(r, variant);
  reply_bulk_cstr(r, "model");
  reply_bulk_cstr(r, version);
  reply_bulk_cstr(r, "checksum");
  reply_bulk_cstr(r, sum);
}
