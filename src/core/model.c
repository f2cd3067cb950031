/* model.c - the parts of the model file format shared by writer and loader:
 * the header codec, the section geometry and the checks on hyperparameters
 * and metadata. Keeping them in one place is what guarantees that every file
 * model_write() produces passes model_load(). The contract of each
 * non-static function here is its comment in model_internal.h.
 */
#include "model_internal.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "recd/err.h"

const char *const model__section_name[MODEL__N_SECTIONS] = {
  "Y", "YtY", "popularity", "item_category", "item_id_offsets", "item_ids",
  "category_name_offsets", "category_names", "item_group", "group_name_offsets",
  "group_names",
};

/* The layout a version number selects: 2 and 3 their own, anything else
 * version 1's (the loader refuses unknown versions before decoding). */
static uint32_t model__layout_version(uint32_t version) {
  return version == 2 || version == 3 ? version : 1;
}

const char *model_serves_name(uint32_t serves) {
  static const char *const name[] = {"als", "popularity", "recent-popularity"};
  return serves <= MODEL_SERVES_MAX ? name[serves] : "unknown";
}

const char *model_split_name(uint32_t split) {
  static const char *const name[] = {"random", "user-latest", "time-cut"};
  return split <= MODEL_SPLIT_MAX ? name[split] : "unknown";
}

uint32_t model__header_size(uint32_t version) {
  return version >= 2 ? MODEL__HEADER_SIZE : MODEL__HEADER_SIZE_V1;
}

int model__n_sections(uint32_t version) {
  return version >= 2 ? MODEL__N_SECTIONS : MODEL__N_SECTIONS_V1;
}

uint32_t model__get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t model__get_u64(const unsigned char *p) {
  return (uint64_t)model__get_u32(p) | (uint64_t)model__get_u32(p + 4) << 32;
}

void model__put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

void model__put_u64(unsigned char *p, uint64_t v) {
  model__put_u32(p, (uint32_t)v);
  model__put_u32(p + 4, (uint32_t)(v >> 32));
}

/* The header's fields, once: where each lives in the file and in
 * model__header_t. Encoding and decoding walk the same table, so they
 * cannot disagree. Every field is a 4- or 8-byte integer or IEEE 754 value
 * stored little-endian; floats travel as their bit patterns (memcpy is the
 * defined way to reinterpret them). */
typedef struct model__field {
  uint32_t file_off; /* MODEL__OFF_* */
  uint32_t mem_off;  /* offsetof(model__header_t, ...) */
  uint32_t size;     /* 4 or 8: the member's own size */
  uint32_t since;    /* first format version that has the field */
} model__field_t;

#define MODEL__FV(off, member, v)                                                                 \
  {off, offsetof(model__header_t, member), sizeof(((model__header_t *)0)->member), v}
#define MODEL__F(off, member) MODEL__FV(off, member, 1)
#define MODEL__METRICS(off, member, v)                                                            \
  MODEL__FV(off, member.precision, v), MODEL__FV(off + 8, member.recall, v),                     \
      MODEL__FV(off + 16, member.ndcg, v), MODEL__FV(off + 24, member.map, v),                   \
      MODEL__FV(off + 32, member.coverage, v)

static const model__field_t model__fields[] = {
  MODEL__F(MODEL__OFF_CHECKSUM, checksum),
  MODEL__F(MODEL__OFF_VERSION, version),
  MODEL__F(MODEL__OFF_HEADER_SIZE, header_size),
  MODEL__F(MODEL__OFF_BYTE_ORDER, byte_order),
  MODEL__F(MODEL__OFF_FILE_SIZE, file_size),
  MODEL__F(MODEL__OFF_N_ITEMS, n_items),
  MODEL__F(MODEL__OFF_K, k),
  MODEL__F(MODEL__OFF_STRIDE, stride),
  MODEL__F(MODEL__OFF_N_CATEGORIES, n_categories),
  MODEL__F(MODEL__OFF_P_FACTORS, params.factors),
  MODEL__F(MODEL__OFF_P_ITERATIONS, params.iterations),
  MODEL__F(MODEL__OFF_P_CONF_MODE, params.conf_mode),
  MODEL__F(MODEL__OFF_P_CG_STEPS, params.cg_steps),
  MODEL__F(MODEL__OFF_P_LAMBDA, params.lambda),
  MODEL__F(MODEL__OFF_P_ALPHA, params.alpha),
  MODEL__F(MODEL__OFF_P_EPS, params.eps),
  MODEL__F(MODEL__OFF_P_REG_EXPONENT, params.reg_exponent),
  MODEL__F(MODEL__OFF_P_SEED, params.seed),
  MODEL__F(MODEL__OFF_M_CREATED_AT, meta.created_at),
  MODEL__F(MODEL__OFF_M_N_USERS, meta.n_users),
  MODEL__F(MODEL__OFF_M_N_INTERACTIONS, meta.n_interactions),
  MODEL__F(MODEL__OFF_M_TRAIN_SECONDS, meta.train_seconds),
  MODEL__F(MODEL__OFF_M_HOLDOUT_FRACTION, meta.holdout_fraction),
  MODEL__F(MODEL__OFF_M_HOLDOUT_USERS, meta.holdout_users),
  MODEL__METRICS(MODEL__OFF_M_MODEL, meta.model, 1),
  MODEL__METRICS(MODEL__OFF_M_POPULARITY, meta.popularity, 1),
  MODEL__F(MODEL__OFF_M_SCORE_SCALE, meta.score_scale),
  MODEL__FV(MODEL__OFF_N_GROUPS, n_groups, 2),
  MODEL__FV(MODEL__OFF_M_HAS_EASE, meta.has_ease, 2),
  MODEL__METRICS(MODEL__OFF_M_EASE, meta.ease, 2),
  MODEL__FV(MODEL__OFF_M_HAS_RECENT, meta.has_recent, 3),
  MODEL__FV(MODEL__OFF_M_SERVES, meta.serves, 3),
  MODEL__FV(MODEL__OFF_M_EVAL_SPLIT, meta.eval_split, 3),
  MODEL__FV(MODEL__OFF_M_HALF_LIFE_DAYS, meta.half_life_days, 3),
  MODEL__FV(MODEL__OFF_M_TUNED_AT, meta.tuned_at, 3),
  MODEL__METRICS(MODEL__OFF_M_RECENT, meta.recent_popularity, 3),
};
#define MODEL__N_FIELDS (sizeof model__fields / sizeof model__fields[0])

void model__header_encode(const model__header_t *h, unsigned char *buf) {
  const uint32_t version = model__layout_version(h->version > 3 ? 3 : h->version);
  memset(buf, 0, model__header_size(version));
  memcpy(buf + MODEL__OFF_MAGIC, MODEL__MAGIC, MODEL__MAGIC_LEN);
  for (size_t i = 0; i < MODEL__N_FIELDS; i++) {
    const model__field_t *f = &model__fields[i];
    if (f->since > version)
      continue;
    const char *src = (const char *)h + f->mem_off;
    if (f->size == 4) {
      uint32_t v;
      memcpy(&v, src, 4);
      model__put_u32(buf + f->file_off, v);
    } else {
      uint64_t v;
      memcpy(&v, src, 8);
      model__put_u64(buf + f->file_off, v);
    }
  }
  for (int s = 0; s < model__n_sections(version); s++) {
    model__put_u64(buf + MODEL__OFF_SECTIONS + 16 * s, h->sec[s].offset);
    model__put_u64(buf + MODEL__OFF_SECTIONS + 16 * s + 8, h->sec[s].length);
  }
}

void model__header_decode(const unsigned char *buf, model__header_t *h) {
  memset(h, 0, sizeof *h);
  const uint32_t version = model__layout_version(model__get_u32(buf + MODEL__OFF_VERSION));
  for (size_t i = 0; i < MODEL__N_FIELDS; i++) {
    const model__field_t *f = &model__fields[i];
    if (f->since > version)
      continue;
    char *dst = (char *)h + f->mem_off;
    if (f->size == 4) {
      const uint32_t v = model__get_u32(buf + f->file_off);
      memcpy(dst, &v, 4);
    } else {
      const uint64_t v = model__get_u64(buf + f->file_off);
      memcpy(dst, &v, 8);
    }
  }
  for (int s = 0; s < model__n_sections(version); s++) {
    h->sec[s].offset = model__get_u64(buf + MODEL__OFF_SECTIONS + 16 * s);
    h->sec[s].length = model__get_u64(buf + MODEL__OFF_SECTIONS + 16 * s + 8);
  }
}

uint32_t model__stride_for(uint32_t k) {
  const uint32_t per_line = MODEL_ALIGN / sizeof(float);
  return (k + per_line - 1) / per_line * per_line;
}

int model__host_is_little_endian(void) {
  const uint32_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

int model__check_params(const params_t *p, uint32_t k, int err, char *errbuf) {
  if (p->factors != k)
    return recd_errf(errbuf, err, "params.factors %u differs from k %u", p->factors, k);
  if (p->conf_mode != PARAMS_CONF_LINEAR && p->conf_mode != PARAMS_CONF_LOG)
    return recd_errf(errbuf, err, "params.conf_mode %u is unknown (0 = linear, 1 = log)",
                     p->conf_mode);
  /* isfinite() first: NaN compares false with everything, so "x < 0" alone
   * would let it through. */
  if (!isfinite(p->lambda) || p->lambda < 0)
    return recd_errf(errbuf, err, "params.lambda %g is not a finite value >= 0",
                     (double)p->lambda);
  if (!isfinite(p->alpha) || p->alpha < 0)
    return recd_errf(errbuf, err, "params.alpha %g is not a finite value >= 0",
                     (double)p->alpha);
  if (!isfinite(p->eps) || p->eps < 0)
    return recd_errf(errbuf, err, "params.eps %g is not a finite value >= 0", (double)p->eps);
  /* eps divides the weight in the log confidence; the linear mode ignores it. */
  if (p->conf_mode == PARAMS_CONF_LOG && !(p->eps > 0))
    return recd_errf(errbuf, err, "params.eps is 0 but the log confidence divides by it");
  if (!isfinite(p->reg_exponent))
    return recd_errf(errbuf, err, "params.reg_exponent %g is not finite",
                     (double)p->reg_exponent);
  /* iterations, cg_steps and seed describe how the model was trained; no
   * value of them makes the model unusable, so they are not constrained. */
  return 0;
}

static int model__check_metrics(const model_metrics_t *m, const char *which, int err,
                                 char *errbuf) {
  const double v[5] = {m->precision, m->recall, m->ndcg, m->map, m->coverage};
  static const char *const name[5] = {"precision", "recall", "ndcg", "map", "coverage"};
  /* Only finite and >= 0: these are reports, and an upper bound of exactly 1
   * could reject a legitimate file over a rounding ulp. */
  for (int i = 0; i < 5; i++)
    if (!isfinite(v[i]) || v[i] < 0)
      return recd_errf(errbuf, err, "meta.%s.%s %g is not a finite value >= 0", which,
                       name[i], v[i]);
  return 0;
}

/* Baseline metrics that may be missing: has = 1 and valid metrics, or
 * has = 0 and all zero (no hidden values, and two files of the same model
 * are the same bytes). */
static int model__check_optional(uint32_t has, const char *has_name, const model_metrics_t *m,
                                 const char *which, int err, char *errbuf) {
  if (has > 1)
    return recd_errf(errbuf, err, "meta.%s is %u (must be 0 or 1)", has_name, has);
  if (has)
    return model__check_metrics(m, which, err, errbuf);
  if (m->precision != 0 || m->recall != 0 || m->ndcg != 0 || m->map != 0 || m->coverage != 0)
    return recd_errf(errbuf, err, "meta.%s is 0 but meta.%s is not all zero (ndcg %g)",
                     has_name, which, m->ndcg);
  return 0;
}

int model__check_meta(const model_meta_t *m, int err, char *errbuf) {
  if (!isfinite(m->train_seconds) || m->train_seconds < 0)
    return recd_errf(errbuf, err, "meta.train_seconds %g is not a finite value >= 0",
                     m->train_seconds);
  if (!isfinite(m->holdout_fraction) || m->holdout_fraction < 0 || m->holdout_fraction >= 1)
    return recd_errf(errbuf, err, "meta.holdout_fraction %g is not in [0, 1)",
                     m->holdout_fraction);
  /* The daemon multiplies preference adjustments by it. */
  if (!isfinite(m->score_scale) || m->score_scale < 0)
    return recd_errf(errbuf, err, "meta.score_scale %g is not a finite value >= 0",
                     (double)m->score_scale);
  int rc = model__check_metrics(&m->model, "model", err, errbuf);
  if (rc == 0)
    rc = model__check_metrics(&m->popularity, "popularity", err, errbuf);
  if (rc != 0)
    return rc;
  rc = model__check_optional(m->has_ease, "has_ease", &m->ease, "ease", err, errbuf);
  if (rc == 0)
    rc = model__check_optional(m->has_recent, "has_recent", &m->recent_popularity,
                               "recent_popularity", err, errbuf);
  if (rc != 0)
    return rc;
  /* Version 3. Files of versions 1 and 2 read 0 for all of these, which is
   * valid: ALS, a random split, no age weighting, not tuned. */
  if (m->serves > MODEL_SERVES_MAX)
    return recd_errf(errbuf, err, "meta.serves is %u (must be 0 als, 1 popularity or 2 "
                     "recent-popularity)", m->serves);
  if (m->eval_split > MODEL_SPLIT_MAX)
    return recd_errf(errbuf, err, "meta.eval_split is %u (must be 0 random, 1 user-latest or "
                     "2 time-cut)", m->eval_split);
  if (!isfinite(m->half_life_days) || m->half_life_days < 0)
    return recd_errf(errbuf, err, "meta.half_life_days %g is not a finite value >= 0",
                     m->half_life_days);
  if (m->tuned_at < 0)
    return recd_errf(errbuf, err, "meta.tuned_at %lld is negative (0 = not tuned)",
                     (long long)m->tuned_at);
  return 0;
}

int model__check_serves(const model_meta_t *m, uint32_t k, const float *Y, size_t ldy,
                        uint32_t n, int err, char *errbuf) {
  if (m->serves == MODEL_SERVES_ALS)
    return 0;
  /* The daemon serves such a model with the ALS code: only one
   * non-negative factor makes that popularity minus the history. */
  if (k != 1)
    return recd_errf(errbuf, err, "meta.serves is %u (%s) but k is %u: a popularity model has "
                     "one factor", m->serves, model_serves_name(m->serves), k);
  for (uint32_t i = 0; i < n; i++)
    if (!(Y[(size_t)i * ldy] >= 0))
      return recd_errf(errbuf, err, "meta.serves is %u (%s) but item %u's factor is %g: a "
                       "popularity model's factor is >= 0", m->serves,
                       model_serves_name(m->serves), i, (double)Y[(size_t)i * ldy]);
  return 0;
}

/* a * b, or -1 on 64-bit overflow. */
static int model__mul(uint64_t a, uint64_t b, uint64_t *out) {
  if (b != 0 && a > UINT64_MAX / b)
    return -1;
  *out = a * b;
  return 0;
}

int model__section_lengths(uint32_t n_items, uint32_t k, uint32_t stride,
                           uint32_t n_categories, uint32_t n_groups,
                           uint64_t len[MODEL__N_SECTIONS]) {
  uint64_t y;
  /* n * stride < 2^64 always (both are 32-bit), only the * 4 can overflow. */
  if (model__mul((uint64_t)n_items * stride, sizeof(float), &y) != 0)
    return -1;
  len[MODEL__SEC_Y] = y;
  len[MODEL__SEC_GRAM] = (uint64_t)k * k * sizeof(float);
  len[MODEL__SEC_POPULARITY] = (uint64_t)n_items * sizeof(float);
  len[MODEL__SEC_CATEGORY] = (uint64_t)n_items * sizeof(uint32_t);
  len[MODEL__SEC_ID_OFFSETS] = ((uint64_t)n_items + 1) * sizeof(uint64_t);
  len[MODEL__SEC_ID_BLOB] = 0;
  len[MODEL__SEC_CAT_OFFSETS] = ((uint64_t)n_categories + 1) * sizeof(uint64_t);
  len[MODEL__SEC_CAT_BLOB] = 0;
  len[MODEL__SEC_GROUP] = (uint64_t)n_items * sizeof(uint32_t);
  len[MODEL__SEC_GRP_OFFSETS] = ((uint64_t)n_groups + 1) * sizeof(uint64_t);
  len[MODEL__SEC_GRP_BLOB] = 0;
  return 0;
}

void model__quote(const char *id, size_t len, char out[96]) {
  size_t o = 0;
  out[o++] = '"';
  for (size_t i = 0; i < len; i++) {
    if (o > 84) { /* room left for \xNN, the dots, the quote and the NUL */
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    o += recd_escape_byte(out + o, (unsigned char)id[i], "\"");
  }
  out[o++] = '"';
  out[o] = '\0';
}
