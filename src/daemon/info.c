/* info.c - INFO [section]: Redis-style sections (server, clients, model,
 * stats, redis) of "field:value" lines. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "commands.h"
#include "model_store.h"
#include "rclient.h"
#include "sentinel.h"
#include "tracking.h"
#include "variants.h"


typedef struct info_out {
  char *buf;
  size_t len, cap;
  int oom;
} info_out_t;

static void info__printf(info_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void info__printf(info_out_t *o, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf ? o->buf + o->len : NULL, o->buf ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0)
      return;
    if (o->buf && o->len + (size_t)n < o->cap) {
      o->len += (size_t)n;
      return;
    }
    size_t cap = o->cap ? o->cap * 2 : 4096;
    while (cap < o->len + (size_t)n + 1)
      cap *= 2;
    char *b = realloc(o->buf, cap);
    if (b == NULL) {
      o->oom = 1;
      return;
    }
    o->buf = b;
    o->cap = cap;
  }
}

static int info__want(const char *section, const char *name) {
  return strcasecmp(section, "all") == 0 || strcasecmp(section, "everything") == 0 ||
         strcasecmp(section, "default") == 0 || strcasecmp(section, name) == 0;
}

static void info__cmdstat(const char *name, const cmd_stats_t *st, void *arg) {
  if (st->calls == 0)
    return;
  info__printf(arg, "cmdstat_%s:calls=%llu,failed=%llu,usec_per_call=%.2f,p50_usec=%llu,"
               "p99_usec=%llu,p999_usec=%llu,max_usec=%llu\r\n",
               name, (unsigned long long)st->calls, (unsigned long long)st->errors,
               (double)st->latency.sum_us / st->calls,
               (unsigned long long)stats_hist_quantile(&st->latency, 0.5),
               (unsigned long long)stats_hist_quantile(&st->latency, 0.99),
               (unsigned long long)stats_hist_quantile(&st->latency, 0.999),
               (unsigned long long)st->latency.max_us);
}

int info_render(server_t *s, const char *section, reply_buf_t *out) {
  info_out_t o = {0};
  uint64_t now = uv_now(s->loop);
  if (info__want(section, "server")) {
    info__printf(&o, "# Server\r\nrecd_version:%s\r\nprocess_id:%d\r\ntcp_port:%d\r\n"
                 "uptime_in_seconds:%llu\r\nlibuv_version:%s\r\n\r\n",
                 RECD_VERSION, (int)getpid(), s->cfg->port,
                 (unsigned long long)((now - s->started_ms) / 1000), uv_version_string());
  }
  if (info__want(section, "clients")) {
    info__printf(&o, "# Clients\r\nconnected_clients:%u\r\nmaxclients:%d\r\n"
                 "total_connections_received:%llu\r\nrejected_connections:%llu\r\n\r\n",
                 s->n_clients, s->cfg->maxclients, (unsigned long long)s->st.total_connections,
                 (unsigned long long)s->st.rejected_connections);
  }
  if (info__want(section, "model")) {
    /* The control's model under the historical names; every variant's
     * under variant_<name>_* (one variant, "default", without variant
     * lines). */
    const variants_t *vs = s->variants;
    for (size_t i = 0; i < variants_count(vs); i++) {
      const variant_t *v = variants_at(vs, i);
      const served_t *sv = model_store_current(v->store);
      const model_t *m = sv->m;
      const model_meta_t *meta = model_meta(m);
      model_store_stats_t ms;
      model_store_get_stats(v->store, &ms);
      if (i == 0)
        info__printf(&o, "# Model\r\nmodel_path:%s\r\nmodel_version:%llu\r\nmodel_items:%u\r\n"
                     "model_factors:%u\r\nmodel_categories:%u\r\nmodel_created_at:%lld\r\n"
                     "model_loaded_at:%lld\r\nmodel_checksum:%08x\r\nmodel_serves:%s\r\n"
                     "model_eval_split:%s\r\nmodel_half_life_days:%g\r\n"
                     "model_tuned_at:%lld\r\nmodel_reloads_ok:%llu\r\n"
                     "model_reloads_failed:%llu\r\nmodel_last_reload_error:%s\r\n"
                     "unavailable_items:%zu\r\nvariants:%zu\r\n",
                     sv->path, (unsigned long long)sv->version, model_n_items(m),
                     model_factors(m), model_n_categories(m),
                     (long long)meta->created_at, (long long)sv->loaded_at, model_checksum(m),
                     model_serves_name(meta->serves), model_split_name(meta->eval_split),
                     meta->half_life_days, (long long)meta->tuned_at,
                     (unsigned long long)ms.reloads_ok, (unsigned long long)ms.reloads_failed,
                     ms.last_reload_error, ms.unavailable, variants_count(vs));
      info__printf(&o, "variant_%s:percent=%u,path=%s,version=%llu,items=%u,factors=%u,"
                   "reloads_ok=%llu,reloads_failed=%llu,serves=%s\r\n",
                   v->name, v->percent, sv->path, (unsigned long long)sv->version,
                   model_n_items(m), model_factors(m), (unsigned long long)ms.reloads_ok,
                   (unsigned long long)ms.reloads_failed, model_serves_name(meta->serves));
    }
    info__printf(&o, "\r\n");
  }
  if (info__want(section, "stats")) {
    info__printf(&o, "# Stats\r\ntotal_commands_processed:%llu\r\nprotocol_errors:%llu\r\n"
                 "degraded_answers:%llu\r\noutput_limit_disconnections:%llu\r\n"
                 "idle_disconnections:%llu\r\n",
                 (unsigned long long)s->st.total_commands,
                 (unsigned long long)s->st.protocol_errors, (unsigned long long)s->st.degraded,
                 (unsigned long long)s->st.output_limit_closes,
                 (unsigned long long)s->st.idle_closes);
    /* issue 19: degraded answers by cause, and what was accepted but
     * could not be used */
    const traps_t *t = &s->traps;
    info__printf(&o, "degraded_answers_timeout:%llu\r\ndegraded_answers_redis_down:%llu\r\n"
                 "degraded_answers_redis_error:%llu\r\nfeedback_unknown_items:%llu\r\n"
                 "customer_unusable_entries:%llu\r\npref_unknown_categories:%llu\r\n",
                 (unsigned long long)t->degraded[TRAPS_DEG_TIMEOUT],
                 (unsigned long long)t->degraded[TRAPS_DEG_REDIS_DOWN],
                 (unsigned long long)t->degraded[TRAPS_DEG_REDIS_ERROR],
                 (unsigned long long)t->feedback_unknown_items,
                 (unsigned long long)t->pref_bad_entries,
                 (unsigned long long)t->pref_unknown_categories);
    /* issue 17: commands and AUTHs the ACL refused (acl_cmd.h) */
    info__printf(&o, "acl_denied_commands:%llu\r\nacl_denied_auth:%llu\r\n",
                 (unsigned long long)s->acl.denied_commands,
                 (unsigned long long)s->acl.denied_auth);
    batcher_stats_t bs = {0};
    /* the int8 copies: the items' (RECOMMEND) and the normalised items'
     * (SIMILAR), the memory recd allocates beyond the mapped model */
    const served_t *control = model_store_current(variants_control(s->variants)->store);
    if (s->batcher != NULL) /* NULL only while shutting down */
      batcher_get_stats(s->batcher, &bs);
    info__printf(&o, "scoring_batches:%llu\r\nscoring_batch_rows:%llu\r\n"
                 "scoring_batch_rows_avg:%.2f\r\nscoring_batch_rows_max:%llu\r\n"
                 "scoring_split_batches:%llu\r\nscoring_split_loop_batches:%llu\r\n"
                 "scoring_split_loop_chunks:%llu\r\nscoring_split_loop_relieved:%llu\r\n"
                 "scoring_first_pass:%s\r\n"
                 "scoring_int8_bytes:%zu\r\nscoring_prefilter:%s\r\n",
                 (unsigned long long)bs.jobs, (unsigned long long)bs.rows,
                 bs.jobs ? (double)bs.rows / (double)bs.jobs : 0.0,
                 (unsigned long long)bs.max_rows_seen, (unsigned long long)bs.split_jobs,
                 (unsigned long long)bs.helped_jobs, (unsigned long long)bs.helped_chunks,
                 (unsigned long long)bs.relieved_jobs,
                 serve_pass_name(&control->sm), serve_model_int8_bytes(&control->sm),
                 serve_prefilter_name(&control->sm));
    commands_foreach(info__cmdstat, &o);
    info__printf(&o, "\r\n");
  }
  if (info__want(section, "experiments") && s->tracker != NULL) {
    tracker_stats_t ts;
    tracker_get_stats(s->tracker, &ts);
    int64_t age = -1;
    const exp_report_t *rep = tracker_report(s->tracker, &age);
    info__printf(&o, "# Experiments\r\ntrack_impressions:%d\r\ntracked_requests:%llu\r\n"
                 "tracked_impressions:%llu\r\ntracking_errors:%llu\r\n"
                 "impression_trims:%llu\r\noutcomes_attributed:%llu\r\n"
                 "outcomes_organic:%llu\r\nreport_anomalies:%llu\r\nreport_age_ms:%lld\r\n",
                 tracker_enabled(s->tracker), (unsigned long long)ts.requests,
                 (unsigned long long)ts.impressions, (unsigned long long)ts.errors,
                 (unsigned long long)ts.trims, (unsigned long long)ts.attributed,
                 (unsigned long long)ts.organic, (unsigned long long)ts.report_anomalies,
                 (long long)age);
    /* One line per (variant, placement), Redis-style key=value pairs. */
    for (size_t i = 0; rep != NULL && i < rep->n; i++) {
      const exp_row_t *w = &rep->row[i];
      info__printf(&o, "exp_%s_%s:requests=%.0f,impressions=%.0f,clicks=%.0f,carts=%.0f,"
                   "purchases=%.0f,value=%.2f,ctr=%.6f,conversion=%.6f",
                   w->variant, w->placement, w->v[EXP_REQUESTS], w->v[EXP_IMPRESSIONS],
                   w->v[EXP_CLICKS], w->v[EXP_CARTS], w->v[EXP_PURCHASES], w->v[EXP_VALUE],
                   w->ctr, w->conversion);
      if (w->has_lift)
        info__printf(&o, ",lift=%.6f,lift_low=%.6f,lift_high=%.6f,p_value=%.6g", w->lift,
                     w->lift_low, w->lift_high, w->p_value);
      info__printf(&o, "\r\n");
    }
    info__printf(&o, "\r\n");
  }
  if (info__want(section, "tls")) {
    /* tls-port's counters and the loaded certificate: its notAfter (unix
     * time, and days left, negative once expired) for an expiry alert. */
    const tls_server_t *t = &s->tls;
    long long left = t->cur.ctx != NULL ? (t->cur.not_after - (long long)time(NULL)) : 0;
    info__printf(&o, "# TLS\r\ntls_port:%d\r\ntls_connections:%llu\r\n"
                 "tls_handshake_failures:%llu\r\ntls_cert_serial:%s\r\n"
                 "tls_cert_not_after:%lld\r\ntls_cert_expires_in_days:%lld\r\n"
                 "tls_reloads_ok:%llu\r\ntls_reloads_failed:%llu\r\n"
                 "tls_last_reload_error:%s\r\n\r\n",
                 t->cur.ctx != NULL ? s->cfg->tls_port : 0, (unsigned long long)t->connections,
                 (unsigned long long)t->handshake_failures,
                 t->cur.ctx != NULL ? t->cur.serial : "", t->cur.ctx != NULL ? t->cur.not_after : 0,
                 /* floor division: 1 s past notAfter is day -1, not 0 */
                 left >= 0 ? left / 86400 : -((-left + 86399) / 86400),
                 (unsigned long long)t->reloads_ok, (unsigned long long)t->reloads_failed,
                 t->last_reload_error);
  }
  if (info__want(section, "redis")) {
    rclient_stats_t rs = {0};
    if (s->redis != NULL) /* NULL only while shutting down */
      rclient_get_stats(s->redis, &rs);
    info__printf(&o, "# Redis\r\nredis_connected:%d\r\nredis_connects:%llu\r\n"
                 "redis_disconnects:%llu\r\nredis_errors:%llu\r\nredis_anomalies:%llu\r\n"
                 "redis_last_error:%s\r\ndegraded_answers:%llu\r\n"
                 "degraded_answers_timeout:%llu\r\ndegraded_answers_redis_down:%llu\r\n"
                 "degraded_answers_redis_error:%llu\r\n",
                 rs.connected, (unsigned long long)rs.connects,
                 (unsigned long long)rs.disconnects, (unsigned long long)rs.errors,
                 (unsigned long long)rs.anomalies, rs.last_error,
                 (unsigned long long)s->st.degraded,
                 (unsigned long long)s->traps.degraded[TRAPS_DEG_TIMEOUT],
                 (unsigned long long)s->traps.degraded[TRAPS_DEG_REDIS_DOWN],
                 (unsigned long long)s->traps.degraded[TRAPS_DEG_REDIS_ERROR]);
    if (s->sentinel != NULL) { /* Sentinel mode (sentinel.h) */
      sentinel_stats_t ss;
      sentinel_get_stats(s->sentinel, &ss);
      info__printf(&o, "redis_mode:sentinel\r\nredis_sentinel_master_name:%s\r\n"
                   "redis_sentinel_primary:%s\r\nredis_sentinel_switches:%llu\r\n"
                   "redis_sentinel_retargets:%llu\r\nredis_sentinel_resolves:%llu\r\n"
                   "redis_sentinel_not_master:%llu\r\nredis_sentinels:%u\r\n"
                   "redis_sentinels_reachable:%u\r\nredis_sentinel_subscribed:%s\r\n",
                   s->cfg->redis_master_name, ss.primary, (unsigned long long)ss.switches,
                   (unsigned long long)ss.retargets, (unsigned long long)ss.resolves,
                   (unsigned long long)ss.not_master, ss.sentinels, ss.reachable,
                   ss.subscribed);
    }
    if (rs.cluster) { /* Redis Cluster mode (rcluster.h) */
      info__printf(&o, "redis_mode:cluster\r\nredis_cluster_nodes_known:%zu\r\n"
                   "redis_cluster_masters:%zu\r\nredis_cluster_masters_connected:%zu\r\n"
                   "redis_cluster_map_refreshes:%llu\r\nredis_cluster_moved:%llu\r\n"
                   "redis_cluster_ask:%llu\r\nredis_cluster_down_replies:%llu\r\n",
                   rs.cluster_nodes, rs.cluster_masters, rs.cluster_connected,
                   (unsigned long long)rs.cluster_refreshes,
                   (unsigned long long)rs.cluster_moved, (unsigned long long)rs.cluster_ask,
                   (unsigned long long)rs.cluster_down);
    } else if (s->sentinel == NULL) {
      info__printf(&o, "redis_mode:standalone\r\n");
    }
    info__printf(&o, "\r\n");
  }
  int rc = o.oom ? RECD_ENOMEM : reply_bulk(out, o.buf ? o.buf : "", o.len);
  free(o.buf);
  return rc;
}
