/* model.c - the parts of the model file format shared by writer and loader:
 * the header codec, the section geometry and the checks on hyperparameters
 * and metadata. Keeping them in one place is what guarantees that every file
 * model_write() produces passes model_load(). The contract of each
 * non-static function here is its comment in model_internal.h.
 */
#include "model_internal.h"

#include <math.h>
#include <string.h>

#include "recd/err.h"

const char *const model__section_name[MODEL__N_SECTIONS] = {
  "Y", "YtY", "popularity", "item_category", "item_id_offsets", "item_ids",
  "category_name_offsets", "category_names",
};

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

/* IEEE 754 values travel as their bit patterns; memcpy is the defined way
 * to reinterpret them. */
static float model__get_f32(const unsigned char *p) {
  uint32_t u = model__get_u32(p);
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static double model__get_f64(const unsigned char *p) {
  uint64_t u = model__get_u64(p);
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

static void model__put_f32(unsigned char *p, float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  model__put_u32(p, u);
}

static void model__put_f64(unsigned char *p, double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  model__put_u64(p, u);
}

static void model__put_metrics(unsigned char *p, const model_metrics_t *m) {
  model__put_f64(p, m->precision);
  model__put_f64(p + 8, m->recall);
  model__put_f64(p + 16, m->ndcg);
  model__put_f64(p + 24, m->map);
  model__put_f64(p + 32, m->coverage);
}

static void model__get_metrics(const unsigned char *p, model_metrics_t *m) {
  m->precision = model__get_f64(p);
  m->recall = model__get_f64(p + 8);
  m->ndcg = model__get_f64(p + 16);
  m->map = model__get_f64(p + 24);
  m->coverage = model__get_f64(p + 32);
}

void model__header_encode(const model__header_t *h, unsigned char *buf) {
  memset(buf, 0, MODEL__HEADER_SIZE);
  memcpy(buf + MODEL__OFF_MAGIC, MODEL__MAGIC, MODEL__MAGIC_LEN);
  model__put_u32(buf + MODEL__OFF_CHECKSUM, h->checksum);
  model__put_u32(buf + MODEL__OFF_VERSION, h->version);
  model__put_u32(buf + MODEL__OFF_HEADER_SIZE, h->header_size);
  model__put_u32(buf + MODEL__OFF_BYTE_ORDER, h->byte_order);
  model__put_u64(buf + MODEL__OFF_FILE_SIZE, h->file_size);
  model__put_u32(buf + MODEL__OFF_N_ITEMS, h->n_items);
  model__put_u32(buf + MODEL__OFF_K, h->k);
  model__put_u32(buf + MODEL__OFF_STRIDE, h->stride);
  model__put_u32(buf + MODEL__OFF_N_CATEGORIES, h->n_categories);
  const params_t *p = &h->params;
  model__put_u32(buf + MODEL__OFF_P_FACTORS, p->factors);
  model__put_u32(buf + MODEL__OFF_P_ITERATIONS, p->iterations);
  model__put_u32(buf + MODEL__OFF_P_CONF_MODE, p->conf_mode);
  model__put_u32(buf + MODEL__OFF_P_CG_STEPS, p->cg_steps);
  model__put_f32(buf + MODEL__OFF_P_LAMBDA, p->lambda);
  model__put_f32(buf + MODEL__OFF_P_ALPHA, p->alpha);
  model__put_f32(buf + MODEL__OFF_P_EPS, p->eps);
  model__put_f32(buf + MODEL__OFF_P_REG_EXPONENT, p->reg_exponent);
  model__put_u64(buf + MODEL__OFF_P_SEED, p->seed);
  const model_meta_t *m = &h->meta;
  model__put_u64(buf + MODEL__OFF_M_CREATED_AT, (uint64_t)m->created_at);
  model__put_u64(buf + MODEL__OFF_M_N_USERS, m->n_users);
  model__put_u64(buf + MODEL__OFF_M_N_INTERACTIONS, m->n_interactions);
  model__put_f64(buf + MODEL__OFF_M_TRAIN_SECONDS, m->train_seconds);
  model__put_f64(buf + MODEL__OFF_M_HOLDOUT_FRACTION, m->holdout_fraction);
  model__put_u64(buf + MODEL__OFF_M_HOLDOUT_USERS, m->holdout_users);
  model__put_metrics(buf + MODEL__OFF_M_MODEL, &m->model);
  model__put_metrics(buf + MODEL__OFF_M_POPULARITY, &m->popularity);
  model__put_f32(buf + MODEL__OFF_M_SCORE_SCALE, m->score_scale);
  for (int s = 0; s < MODEL__N_SECTIONS; s++) {
    model__put_u64(buf + MODEL__OFF_SECTIONS + 16 * s, h->sec[s].offset);
    model__put_u64(buf + MODEL__OFF_SECTIONS + 16 * s + 8, h->sec[s].length);
  }
}

void model__header_decode(const unsigned char *buf, model__header_t *h) {
  memset(h, 0, sizeof *h);
  h->checksum = model__get_u32(buf + MODEL__OFF_CHECKSUM);
  h->version = model__get_u32(buf + MODEL__OFF_VERSION);
  h->header_size = model__get_u32(buf + MODEL__OFF_HEADER_SIZE);
  h->byte_order = model__get_u32(buf + MODEL__OFF_BYTE_ORDER);
  h->file_size = model__get_u64(buf + MODEL__OFF_FILE_SIZE);
  h->n_items = model__get_u32(buf + MODEL__OFF_N_ITEMS);
  h->k = model__get_u32(buf + MODEL__OFF_K);
  h->stride = model__get_u32(buf + MODEL__OFF_STRIDE);
  h->n_categories = model__get_u32(buf + MODEL__OFF_N_CATEGORIES);
  params_t *p = &h->params;
  p->factors = model__get_u32(buf + MODEL__OFF_P_FACTORS);
  p->iterations = model__get_u32(buf + MODEL__OFF_P_ITERATIONS);
  p->conf_mode = model__get_u32(buf + MODEL__OFF_P_CONF_MODE);
  p->cg_steps = model__get_u32(buf + MODEL__OFF_P_CG_STEPS);
  p->lambda = model__get_f32(buf + MODEL__OFF_P_LAMBDA);
  p->alpha = model__get_f32(buf + MODEL__OFF_P_ALPHA);
  p->eps = model__get_f32(buf + MODEL__OFF_P_EPS);
  p->reg_exponent = model__get_f32(buf + MODEL__OFF_P_REG_EXPONENT);
  p->seed = model__get_u64(buf + MODEL__OFF_P_SEED);
  model_meta_t *m = &h->meta;
  m->created_at = (int64_t)model__get_u64(buf + MODEL__OFF_M_CREATED_AT);
  m->n_users = model__get_u64(buf + MODEL__OFF_M_N_USERS);
  m->n_interactions = model__get_u64(buf + MODEL__OFF_M_N_INTERACTIONS);
  m->train_seconds = model__get_f64(buf + MODEL__OFF_M_TRAIN_SECONDS);
  m->holdout_fraction = model__get_f64(buf + MODEL__OFF_M_HOLDOUT_FRACTION);
  m->holdout_users = model__get_u64(buf + MODEL__OFF_M_HOLDOUT_USERS);
  model__get_metrics(buf + MODEL__OFF_M_MODEL, &m->model);
  model__get_metrics(buf + MODEL__OFF_M_POPULARITY, &m->popularity);
  m->score_scale = model__get_f32(buf + MODEL__OFF_M_SCORE_SCALE);
  for (int s = 0; s < MODEL__N_SECTIONS; s++) {
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
  return rc;
}

/* a * b, or -1 on 64-bit overflow. */
static int model__mul(uint64_t a, uint64_t b, uint64_t *out) {
  if (b != 0 && a > UINT64_MAX / b)
    return -1;
  *out = a * b;
  return 0;
}

int model__section_lengths(uint32_t n_items, uint32_t k, uint32_t stride,
                           uint32_t n_categories, uint64_t len[MODEL__N_SECTIONS]) {
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
  return 0;
}

void model__quote(const char *id, size_t len, char out[96]) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  out[o++] = '"';
  for (size_t i = 0; i < len; i++) {
    if (o > 84) { /* room left for \xNN, the dots, the quote and the NUL */
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    unsigned char c = (unsigned char)id[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out[o++] = (char)c;
    } else {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o++] = '"';
  out[o] = '\0';
}
