/* variants.c - see variants.h. */
#include "variants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct variants {
  variant_t v[EXP_MAX_VARIANTS];
  const char *names[EXP_MAX_VARIANTS];
  unsigned percent[EXP_MAX_VARIANTS];
  size_t n;
  char *salt;
  size_t salt_len;
};

/* One variant: its model store. */
static int variants__add(variants_t *vs, uv_loop_t *loop, const config_t *cfg, const char *name,
                         const char *path, unsigned percent, char *errbuf) {
  variant_t *v = &vs->v[vs->n];
  snprintf(v->name, sizeof v->name, "%s", name);
  v->percent = percent;
  model_store_opts_t mo = {.model = path, .models_dir = cfg->models_dir};
  serve_opts_default(&mo.serve);
  mo.serve.q4_min_bytes = (size_t)cfg->scan_prefilter_bytes;
  char err[RECD_ERRLEN];
  int rc = model_store_open(loop, &mo, &v->store, err);
  if (rc != 0)
    return recd_errf(errbuf, rc, "variant %s: %s", name, err);
  vs->names[vs->n] = v->name;
  vs->percent[vs->n] = percent;
  vs->n++;
  return 0;
}

int variants_open(uv_loop_t *loop, const config_t *cfg, variants_t **out, char *errbuf) {
  variants_t *vs = calloc(1, sizeof *vs);
  if (vs == NULL || (vs->salt = strdup(cfg->experiment_salt)) == NULL) {
    free(vs);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  vs->salt_len = strlen(vs->salt);
  int rc = 0;
  if (cfg->variants.n == 0) {
    if (cfg->model[0] == '\0')
      rc = recd_errf(errbuf, RECD_EINVAL, "no model configured (set `model` in the config file "
                                          "or pass --model PATH, or give `variant` lines)");
    else
      rc = variants__add(vs, loop, cfg, EXP_DEFAULT_VARIANT, cfg->model, 100, errbuf);
  }
  for (size_t i = 0; rc == 0 && i < cfg->variants.n; i++)
    rc = variants__add(vs, loop, cfg, cfg->variants.name[i], cfg->variants.path[i],
                       cfg->variants.percent[i], errbuf);
  if (rc != 0) {
    variants_free(vs);
    return rc;
  }
  *out = vs;
  return 0;
}

void variants_free(variants_t *vs) {
  if (vs == NULL)
    return;
  for (size_t i = 0; i < vs->n; i++)
    model_store_free(vs->v[i].store);
  free(vs->salt);
  free(vs);
}

size_t variants_count(const variants_t *vs) {
  return vs->n;
}

variant_t *variants_at(const variants_t *vs, size_t i) {
  return (variant_t *)&vs->v[i];
}

variant_t *variants_control(const variants_t *vs) {
  return (variant_t *)&vs->v[0];
}

variant_t *variants_find(const variants_t *vs, const char *name, size_t len) {
  for (size_t i = 0; i < vs->n; i++)
    if (strlen(vs->v[i].name) == len && memcmp(vs->v[i].name, name, len) == 0)
      return (variant_t *)&vs->v[i];
  return NULL;
}

variant_t *variants_for_user(const variants_t *vs, const char *user, size_t ulen) {
  if (vs->n == 1)
    return (variant_t *)&vs->v[0];
  return (variant_t *)&vs->v[exp_assign(vs->salt, vs->salt_len, user, ulen, vs->percent,
                                        (unsigned)vs->n)];
}

const char *const *variants_names(const variants_t *vs) {
  return vs->names;
}

int variants_unknown(const variants_t *vs, const char *what, const char *name, size_t len,
                     char *err) {
  char names[EXP_MAX_VARIANTS * (EXP_NAME_MAX + 2)] = "";
  size_t o = 0;
  for (size_t i = 0; i < vs->n && o < sizeof names; i++) {
    int w = snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", vs->v[i].name);
    if (w < 0)
      break;
    o += (size_t)w;
  }
  return recd_errf(err, RECD_EINVAL, "unknown %s '%.*s' (variants: %s)", what,
                   (int)(len > 64 ? 64 : len), name, names);
}
