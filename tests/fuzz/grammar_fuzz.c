/* grammar_fuzz.c - libFuzzer target for the request grammar (reco_parse.c):
 * RECOMMEND, RANK, SIMILAR and FEEDBACK arguments as a client may send
 * them, parsed and resolved against a small model with named categories.
 *
 * Input: byte 0 picks the command and max-count, the rest is the argument
 * list, split on '\n' (so empty arguments and any other byte, NUL
 * included, occur). Checked: the result is 0 or an error with a one-line
 * message (no CR or LF: it becomes a -ERR reply) that fits the buffer;
 * on success every position and count stays inside argv and within the
 * documented bounds, and every resolved index is a model item.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reco.h"
#include "recd/model.h"
#include "fuzz.h"

#define N_ITEMS 40
#define MAX_ARGS 64

static model_t *model;

static void load_model(void) {
  static const char *const cats[] = {"kitchen", "garden", "home decor", "Kitchenware", "c"};
  uint32_t clens[5], cat[N_ITEMS], idl[N_ITEMS];
  const char *ids[N_ITEMS];
  char idb[N_ITEMS][8];
  float Y[N_ITEMS * 4], pop[N_ITEMS];
  for (int c = 0; c < 5; c++)
    clens[c] = (uint32_t)strlen(cats[c]);
  for (uint32_t i = 0; i < N_ITEMS; i++) {
    cat[i] = i % 6;
    idl[i] = (uint32_t)snprintf(idb[i], sizeof idb[i], "i%u", i);
    ids[i] = idb[i];
    pop[i] = (float)i;
    for (int k = 0; k < 4; k++)
      Y[i * 4 + k] = (float)((i * 7 + (uint32_t)k * 3) % 11) / 10.0f - 0.5f;
  }
  model_spec_t spec = {.n_items = N_ITEMS,
                       .params = {.factors = 4, .iterations = 1, .conf_mode = PARAMS_CONF_LOG,
                                  .cg_steps = 3, .lambda = 0.5f, .alpha = 2.0f, .eps = 1.0f,
                                  .reg_exponent = 0.5f},
                       .meta = {.score_scale = 0.7f},
                       .Y = Y, .ldy = 4, .popularity = pop, .item_ids = ids,
                       .item_id_lens = idl, .item_category = cat, .n_categories = 5,
                       .category_names = cats, .category_name_lens = clens};
  char path[] = "/tmp/grammar-fuzz-XXXXXX", err[RECD_ERRLEN];
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  CHECK(model_write(&spec, path, err) == 0);
  CHECK(model_load(&model, path, err) == 0);
  unlink(path);
}

static void check_err(const char *err) {
  size_t n = strnlen(err, RECD_ERRLEN);
  CHECK(n > 0 && n < RECD_ERRLEN);
  CHECK(strchr(err, '\r') == NULL && strchr(err, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (model == NULL)
    load_model();
  if (size < 1)
    return 0;
  static const char *const names[] = {"RECOMMEND", "RANK", "SIMILAR", "FEEDBACK"};
  const int which = data[0] & 3;
  const size_t max_count = (size_t)(data[0] >> 2) * 4; /* 0 .. 252 */
  /* argv: the command name, then the '\n'-separated pieces */
  char *argv[MAX_ARGS];
  size_t lens[MAX_ARGS];
  size_t argc = 0;
  argv[argc] = strdup(names[which]);
  lens[argc++] = strlen(names[which]);
  size_t start = 1;
  for (size_t i = 1; i <= size && argc < MAX_ARGS; i++) {
    if (i == size || data[i] == '\n') {
      char *a = malloc(i - start + 1);
      CHECK(a != NULL);
      memcpy(a, data + start, i - start);
      a[i - start] = '\0';
      argv[argc] = a;
      lens[argc++] = i - start;
      start = i + 1;
    }
  }
  resp_cmd_t cmd = {.argc = argc, .argv = (const char **)argv, .argvlen = lens};
  char err[RECD_ERRLEN];
  memset(err, 0, sizeof err);
  if (which == 3) {
    reco_feedback_t f;
    int rc = argc >= 3 ? reco_parse_feedback(&cmd, &f, err) : 0;
    if (argc >= 3 && rc != 0)
      check_err(err);
    else if (argc >= 3) {
      CHECK(f.ulen >= 1 && f.ulen <= 256 && f.ilen >= 1 && f.ilen <= 256);
      CHECK(f.weight == -1.0 || (f.weight > 0 && f.weight <= 1e9));
      CHECK(f.value >= 0 && f.value <= 1e12);
    }
  } else if (argc >= (which == 1 ? 3u : 2u)) {
    reco_opts_t o;
    int rc = which == 0   ? reco_parse_recommend(&cmd, max_count, &o, err)
             : which == 1 ? reco_parse_rank(&cmd, &o, err)
                          : reco_parse_similar(&cmd, max_count, &o, err);
    if (rc == 0)
      rc = reco_resolve(&o, &cmd, model, err);
    if (rc != 0) {
      CHECK(rc == RECD_EINVAL || rc == RECD_ENOMEM);
      check_err(err);
    } else {
      CHECK(o.offset + o.count <= max_count || which == 1);
      CHECK(o.excl_from <= argc && o.argc == argc);
      CHECK(o.hist_from + o.n_hist_arg <= argc);
      CHECK(o.n_hist_arg <= RECO_HISTORY_MAX);
      CHECK(o.n_hist_items <= o.n_hist_arg);
      for (size_t j = 0; j < o.n_hist_items; j++)
        CHECK(o.hist_items[j] < N_ITEMS);
      for (size_t j = 0; j < o.n_excl; j++)
        CHECK(o.excl[j] < N_ITEMS);
      for (size_t j = 0; j < o.n_cats; j++)
        CHECK(o.cats[j] >= 1 && o.cats[j] <= 5);
      for (size_t j = 0; j < o.n_cand; j++)
        CHECK(o.cand[j] >= -1 && o.cand[j] < N_ITEMS);
      CHECK(o.n_cand + 2 <= argc);
    }
    reco_opts_free(&o);
  }
  char line[64];
  reco_syntax((reco_cmd_t)(1u << which), line, sizeof line);
  CHECK(strlen(line) < sizeof line);
  for (size_t i = 0; i < argc; i++)
    free(argv[i]);
  return 0;
}
