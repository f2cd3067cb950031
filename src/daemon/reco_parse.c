/* reco_parse.c - the grammar of RECOMMEND and RANK (see reco.h): pure
 * parsing of the arguments, then their resolution against a model. No I/O,
 * no server state: unit-tested on its own (tests/unit/test_reco_parse.c).
 */
#include "reco.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rclient.h"
#include "recd/csv.h"

static int reco__eq(const resp_cmd_t *a, size_t i, const char *word) {
  return strlen(word) == a->argvlen[i] && strcasecmp(a->argv[i], word) == 0;
}

static int reco__parse_size(const resp_cmd_t *a, size_t i, size_t max, size_t *out) {
  uint64_t v;
  if (csv_parse_u64(a->argv[i], a->argvlen[i], &v) != 0 || v > max)
    return -1;
  *out = (size_t)v;
  return 0;
}

static int reco__user(const resp_cmd_t *a, reco_opts_t *o, char *err) {
  memset(o, 0, sizeof *o);
  snprintf(o->placement, sizeof o->placement, "%s", EXP_DEFAULT_PLACEMENT);
  o->argc = a->argc;
  o->excl_from = a->argc;
  if (a->argvlen[1] > RCLIENT_ID_MAX)
    return recd_errf(err, RECD_EINVAL, "user id longer than 256 bytes");
  o->user = a->argv[1];
  o->ulen = a->argvlen[1];
  return 0;
}

/* The options RECOMMEND, RANK and SIMILAR share: PLACEMENT, VARIANT,
 * NOTRACK. 1 when a->argv[*i] is one of them (then *i is moved past its
 * value), 0 when not, -1 on a bad value (message in err). */
int reco_parse_common(const resp_cmd_t *a, size_t *i, reco_opts_t *o, char *err) {
  if (reco__eq(a, *i, "NOTRACK")) {
    o->notrack = 1;
    return 1;
  }
  if (reco__eq(a, *i, "PLACEMENT") && *i + 1 < a->argc) {
    ++*i;
    if (!exp_name_valid(a->argv[*i], a->argvlen[*i]))
      return recd_errf(err, RECD_EINVAL, "PLACEMENT must be 1 to %d bytes of A-Z a-z 0-9 _ . : -",
                       EXP_NAME_MAX),
             -1;
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

int reco_parse_recommend(const resp_cmd_t *a, size_t max_count, reco_opts_t *o, char *err) {
  if (reco__user(a, o, err) != 0)
    return RECD_EINVAL;
  o->count = 10;
  if ((o->cat_arg = malloc(a->argc * sizeof *o->cat_arg)) == NULL)
    return recd_errf(err, RECD_ENOMEM, "out of memory");
  for (size_t i = 2; i < a->argc; i++) {
    int common = reco_parse_common(a, &i, o, err);
    if (common < 0)
      return RECD_EINVAL;
    if (common > 0)
      continue;
    if (reco__eq(a, i, "COUNT") && i + 1 < a->argc) {
      if (reco__parse_size(a, ++i, max_count, &o->count) != 0)
        return recd_errf(err, RECD_EINVAL, "COUNT must be an integer in [0, %zu]", max_count);
    } else if (reco__eq(a, i, "OFFSET") && i + 1 < a->argc) {
      if (reco__parse_size(a, ++i, max_count, &o->offset) != 0)
        return recd_errf(err, RECD_EINVAL, "OFFSET must be an integer in [0, %zu]", max_count);
    } else if (reco__eq(a, i, "CATEGORY") && i + 1 < a->argc) {
      o->cat_filter = 1;
      o->cat_arg[o->n_cat_arg++] = ++i;
    } else if (reco__eq(a, i, "WITHSCORES")) {
      o->withscores = 1;
    } else if (reco__eq(a, i, "WITHREASONS")) {
      o->withreasons = 1;
    } else if (reco__eq(a, i, "EXCLUDE") && i + 1 < a->argc) {
      /* EXCLUDE takes every remaining argument. */
      o->excl_from = i + 1;
      break;
    } else {
      return recd_errf(err, RECD_EINVAL, "syntax error");
    }
  }
  if (o->offset + o->count > max_count)
    return recd_errf(err, RECD_EINVAL, "OFFSET + COUNT must be at most max-count (%zu)",
                     max_count);
  return 0;
}

int reco_parse_rank(const resp_cmd_t *a, reco_opts_t *o, char *err) {
  if (reco__user(a, o, err) != 0)
    return RECD_EINVAL;
  /* The options come after the items: peel them off the end (WITHSCORES,
   * NOTRACK, PLACEMENT p, VARIANT v, in any order); what is left are the
   * candidates. */
  size_t n = a->argc - 2;
  int placement_given = 0;
  for (;;) {
    const size_t last = 2 + n - 1;
    if (n > 0 && reco__eq(a, last, "WITHSCORES") && !o->withscores) {
      o->withscores = 1;
      n--;
    } else if (n > 0 && reco__eq(a, last, "NOTRACK") && !o->notrack) {
      o->notrack = 1;
      n--;
    } else if (n > 1 && ((reco__eq(a, last - 1, "PLACEMENT") && !placement_given) ||
                         (reco__eq(a, last - 1, "VARIANT") && o->variant == NULL))) {
      placement_given |= reco__eq(a, last - 1, "PLACEMENT");
      size_t i = last - 1;
      if (reco_parse_common(a, &i, o, err) < 0)
        return RECD_EINVAL;
      n -= 2;
    } else {
      break;
    }
  }
  if (n == 0)
    return recd_errf(err, RECD_EINVAL, "wrong number of arguments for 'rank' command");
  o->cand_ids = (const char *const *)a->argv + 2;
  o->cand_lens = a->argvlen + 2;
  o->n_cand = n;
  return 0;
}

int reco_resolve(reco_opts_t *o, const resp_cmd_t *a, const model_t *m, char *err) {
  const size_t n_excl = o->argc - o->excl_from;
  o->cats = malloc((o->n_cat_arg ? o->n_cat_arg : 1) * sizeof *o->cats);
  o->excl = malloc((n_excl ? n_excl : 1) * sizeof *o->excl);
  o->cand = malloc((o->n_cand ? o->n_cand : 1) * sizeof *o->cand);
  if (o->cats == NULL || o->excl == NULL || o->cand == NULL)
    return recd_errf(err, RECD_ENOMEM, "out of memory");
  for (size_t j = 0; j < o->n_cat_arg; j++) {
    const size_t i = o->cat_arg[j];
    uint32_t cat = model_find_category(m, a->argv[i], a->argvlen[i]);
    if (cat != 0)
      o->cats[o->n_cats++] = cat;
  }
  for (size_t i = o->excl_from; i < o->argc; i++) {
    int64_t idx = model_find_item(m, a->argv[i], a->argvlen[i]);
    if (idx >= 0)
      o->excl[o->n_excl++] = (uint32_t)idx;
  }
  for (size_t j = 0; j < o->n_cand; j++)
    o->cand[j] = model_find_item(m, o->cand_ids[j], o->cand_lens[j]);
  return 0;
}

void reco_opts_free(reco_opts_t *o) {
  free(o->cat_arg);
  free(o->cats);
  free(o->excl);
  free(o->cand);
  memset(o, 0, sizeof *o);
}
