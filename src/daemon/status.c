/* status.c - see status.h. */
#include "status.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "model_store.h"
#include "rclient.h"
#include "status_page.h"
#include "tracking.h"
#include "variants.h"

typedef struct latency_acc {
  status_latency_t *l;
  size_t n;
} latency_acc_t;

static void status__latency(const char *name, const cmd_stats_t *st, void *arg) {
  latency_acc_t *a = arg;
  if (st->calls == 0)
    return;
  a->l[a->n++] = (status_latency_t){
    .command = name,
    .calls = st->calls,
    .failed = st->errors,
    .p50_us = stats_hist_quantile(&st->latency, 0.5),
    .p99_us = stats_hist_quantile(&st->latency, 0.99),
    .p999_us = stats_hist_quantile(&st->latency, 0.999),
    .max_us = st->latency.max_us,
  };
}

static void status__count(const char *name, const cmd_stats_t *st, void *arg) {
  (void)name, (void)st;
  ++*(size_t *)arg;
}

static double status__ndcg(double v, double fraction) {
  /* A model trained without a hold-out has no figures: 0 there means
   * "not measured", not a zero score. */
  return fraction > 0 ? v : NAN;
}

char *status_html(server_t *s, size_t *len) {
  const variants_t *vs = s->variants;
  const size_t nv = variants_count(vs);
  status_model_t models[EXP_MAX_VARIANTS];
  for (size_t i = 0; i < nv; i++) {
    const variant_t *v = variants_at(vs, i);
    const served_t *sv = model_store_current(v->store);
    const model_meta_t *meta = model_meta(sv->m);
    models[i] = (status_model_t){
      .variant = v->name,
      .percent = v->percent,
      .path = sv->path,
      .version = sv->version,
      .items = model_n_items(sv->m),
      .factors = model_factors(sv->m),
      .created_at = meta->created_at,
      .loaded_at = sv->loaded_at,
      .first_pass = serve_pass_name(&sv->sm),
      .ndcg_model = status__ndcg(meta->model.ndcg, meta->holdout_fraction),
      .ndcg_popularity = status__ndcg(meta->popularity.ndcg, meta->holdout_fraction),
      /* Version-1 model files, and models trained without EASE (catalogue
       * over --ease-max-items), have none: the page shows n/a. */
      .ndcg_ease = meta->has_ease ? status__ndcg(meta->ease.ndcg, meta->holdout_fraction) : NAN,
      .serves = meta->serves,
      /* Model format 3 only, and not always computed: no bar without it. */
      .has_recent = meta->has_recent != 0,
      .ndcg_recent = status__ndcg(meta->recent_popularity.ndcg, meta->holdout_fraction),
    };
  }
  size_t ncmd = 0;
  commands_foreach(status__count, &ncmd);
  latency_acc_t lat = {calloc(ncmd ? ncmd : 1, sizeof *lat.l), 0};
  if (lat.l == NULL)
    return NULL;
  commands_foreach(status__latency, &lat);
  rclient_stats_t rs = {0};
  if (s->redis != NULL)
    rclient_get_stats(s->redis, &rs);
  int64_t age = 0;
  status_page_t p = {
    .version = RECD_VERSION,
    .uptime_s = (uv_now(s->loop) - s->started_ms) / 1000,
    .now = (int64_t)time(NULL),
    .models = models,
    .n_models = nv,
    .report = s->tracker ? tracker_report(s->tracker, &age) : NULL,
    .attribution_window_s = (uint64_t)s->cfg->attribution_window,
    .latency = lat.l,
    .n_latency = lat.n,
    .redis_connected = rs.connected,
    .redis_last_error = rs.last_error,
    .degraded = s->st.degraded,
  };
  p.report_age_ms = age;
  char *html = status_page_html(&p, len);
  free(lat.l);
  return html;
}

char *status_json(server_t *s, size_t *len) {
  const exp_report_t empty = {0};
  const exp_report_t *rep = s->tracker ? tracker_report(s->tracker, NULL) : NULL;
  return exp_report_json(rep ? rep : &empty, len);
}
