/* factors.c - recd-train --export-factors / --import-factors (factors.h). */
#include "factors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recd/csv.h"
#include "recd/dataset.h"
#include "recd/eval.h"
#include "recd/factors_json.h"
#include "recd/model.h"
#include "scorer.h"

/* ---- export -------------------------------------------------------------- */

int factors_export_main(const factors_opts_t *o, char *errbuf) {
  model_t *m;
  int rc = model_load(&m, o->model, errbuf);
  if (rc != 0)
    return rc;
  const int to_stdout = strcmp(o->file, "-") == 0;
  char tmp[4200];
  FILE *fp = stdout;
  if (!to_stdout) {
    /* A temp name in the same directory, renamed when complete: a reader
     * never sees half a file. */
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", o->file, (long)getpid()) >= (int)sizeof tmp) {
      model_free(m);
      return recd_errf(errbuf, RECD_EINVAL, "%s: path too long", o->file);
    }
    if ((fp = fopen(tmp, "w")) == NULL) {
      rc = recd_errf(errbuf, RECD_EIO, "cannot create %s: %s", tmp, strerror(errno));
      model_free(m);
      return rc;
    }
  }
  const uint32_t n = model_n_items(m), k = model_factors(m), stride = model_stride(m);
  const float *Y = model_item_factors(m);
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    size_t len;
    const char *id = model_item_id(m, i, &len);
    rc = factors_json_write_row(fp, id, len, Y + (size_t)i * stride, k);
  }
  if (to_stdout) {
    if (fflush(stdout) != 0 || ferror(stdout))
      rc = RECD_EIO;
  } else if (fclose(fp) != 0) {
    rc = RECD_EIO;
  }
  if (rc == 0 && !to_stdout && rename(tmp, o->file) != 0)
    rc = RECD_EIO;
  if (rc != 0) {
    recd_errf(errbuf, rc, "writing %s: %s", to_stdout ? "stdout" : o->file, strerror(errno));
    if (!to_stdout)
      unlink(tmp);
  } else if (!o->quiet) {
    fprintf(stderr, "wrote %s: %u items, k=%u, from %s", to_stdout ? "stdout" : o->file, n, k,
            o->model);
    if (model_meta(m)->serves != MODEL_SERVES_ALS)
      fprintf(stderr, " (a %s fallback model: its one factor is a popularity, not ALS)",
              model_serves_name(model_meta(m)->serves));
    fputc('\n', stderr);
  }
  model_free(m);
  return rc;
}

/* ---- import -------------------------------------------------------------- */

/* --factor-ids MAP.csv (header factor_id,item): replaces each row's id by
 * its item. ids[i]/lens[i] receive pointers into *items. */
static int factors__map_ids(const factors_opts_t *o, const factors_json_t *fj, idmap_t **items,
                            const char **ids, uint32_t *lens, char *errbuf) {
  csv_reader_t *r;
  int rc = csv_open(&r, o->factor_ids, errbuf);
  if (rc != 0)
    return rc;
  idmap_t *from = idmap_new(fj->n);
  *items = idmap_new(fj->n);
  uint64_t *line = NULL;
  size_t cap = 0;
  csv_record_t rec;
  if (from == NULL || *items == NULL) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
    goto done;
  }
  rc = csv_next(r, &rec, errbuf);
  if (rc == 0)
    rc = recd_errf(errbuf, RECD_EFORMAT, "%s: empty file, expected header factor_id,item",
                   o->factor_ids);
  else if (rc > 0 && (rec.n_fields != 2 || strcmp(rec.field[0], "factor_id") != 0 ||
                      strcmp(rec.field[1], "item") != 0))
    rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: bad header, expected factor_id,item",
                   o->factor_ids, (unsigned long long)rec.line);
  while (rc > 0 && (rc = csv_next(r, &rec, errbuf)) > 0) {
    const char *where = NULL;
    if (rec.n_fields != 2)
      where = "expected 2 fields (factor_id,item)";
    else if (rec.len[0] == 0 || rec.len[0] > FACTORS_JSON_MAX_ID)
      where = "expected a factor_id of 1 to 256 bytes";
    else if (rec.len[1] == 0 || rec.len[1] > DATASET_MAX_ID)
      where = "expected an item id of 1 to 256 bytes";
    if (where != NULL) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: %s", o->factor_ids,
                     (unsigned long long)rec.line, where);
      break;
    }
    uint32_t a, b;
    int added = idmap_intern(from, rec.field[0], rec.len[0], &a);
    const char *what = "factor_id", *dup = rec.field[0];
    uint32_t earlier = a;
    if (added == 1) {
      added = idmap_intern(*items, rec.field[1], rec.len[1], &b);
      what = "item";
      dup = rec.field[1];
      earlier = b;
    }
    if (added < 0) {
      rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
      break;
    }
    if (added == 0) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: duplicate %s \"%.64s\" (line %llu has it)",
                     o->factor_ids, (unsigned long long)rec.line, what, dup,
                     (unsigned long long)line[earlier]);
      break;
    }
    if (a >= cap) {
      size_t nc = cap ? cap * 2 : 1024;
      uint64_t *l = realloc(line, nc * sizeof *l);
      if (l == NULL) {
        rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
        break;
      }
      line = l;
      cap = nc;
    }
    line[a] = rec.line;
  }
  if (rc < 0)
    goto done;
  for (uint32_t i = 0; i < fj->n; i++) {
    size_t len;
    const char *key = idmap_key(fj->ids, i, &len);
    int64_t j = idmap_get(from, key, len);
    if (j < 0) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: id %s%.64s%s is not in %s", o->file,
                     (unsigned long long)fj->line[i], fj->id_is_number[i] ? "" : "\"", key,
                     fj->id_is_number[i] ? "" : "\"", o->factor_ids);
      goto done;
    }
    ids[i] = idmap_key(*items, (uint32_t)j, &len);
    lens[i] = (uint32_t)len;
  }
  rc = 0;
done:
  csv_close(r);
  idmap_free(from);
  free(line);
  return rc;
}

/* recd-train's score_scale() (main.c), on the modelled items: the average
 * over (a sample of) users of the standard deviation of their item scores.
 * Kept the same computation so that a round trip is exact. */
static float factors__score_scale(const csr_t *m, const als_factors_t *f, const params_t *p,
                                  size_t cap) {
  als_scorer_t s;
  float *scores = malloc((size_t)f->n_items * sizeof *scores);
  if (scores == NULL || als_scorer_init(&s, f, p, cap) != 0) {
    free(scores);
    return 1.0f;
  }
  uint32_t step = m->n_rows > 1000 ? m->n_rows / 1000 : 1;
  double sum = 0;
  uint32_t n = 0;
  for (uint32_t u = 0; u < m->n_rows; u += step) {
    if (als_scorer_score(&s, m->idx + m->ptr[u], m->val + m->ptr[u],
                         (size_t)(m->ptr[u + 1] - m->ptr[u]), scores) != 0)
      continue;
    double mean = 0, var = 0;
    for (uint32_t i = 0; i < f->n_items; i++)
      mean += scores[i];
    mean /= f->n_items;
    for (uint32_t i = 0; i < f->n_items; i++)
      var += (scores[i] - mean) * (scores[i] - mean);
    sum += sqrt(var / f->n_items);
    n++;
  }
  als_scorer_free(&s);
  free(scores);
  float v = n ? (float)(sum / n) : 0.0f;
  return v > 0 && isfinite(v) ? v : 1.0f;
}

/* The histories, with the factor items interned first (item i of the data
 * set is row i of the factors; items only the histories have come after). */
static int factors__load(const factors_opts_t *o, const char *const *ids, const uint32_t *lens,
                         uint32_t n, dataset_t *ds, uint64_t *ignored, char *errbuf) {
  int rc = dataset_init(ds);
  if (rc != 0)
    return recd_errf(errbuf, rc, "out of memory");
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    uint32_t idx;
    if (idmap_intern(ds->items, ids[i], lens[i], &idx) != 1 || idx != i)
      rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  FILE *log = o->quiet ? NULL : stderr;
  if (rc == 0 && o->csv != NULL) {
    uint64_t skipped = 0;
    rc = dataset_read_csv(ds, o->csv, o->skip_bad, &skipped, NULL, errbuf);
    if (rc == 0 && skipped > 0 && log)
      fprintf(log, "%s: skipped %llu bad lines\n", o->csv, (unsigned long long)skipped);
    if (rc == 0 && o->items != NULL)
      rc = dataset_read_items_csv_ex(ds, o->items, ignored, errbuf);
  } else if (rc == 0) {
    uint64_t anomalies = 0;
    rc = redis_read_dataset(&o->redis, ds, &anomalies, NULL, log, errbuf);
    if (rc == 0 && anomalies > 0 && log)
      fprintf(log, "redis: skipped %llu malformed entries\n", (unsigned long long)anomalies);
  }
  if (rc == 0 && (rc = dataset_finalize(ds)) != 0)
    recd_errf(errbuf, rc, "out of memory building the interaction matrix");
  if (rc == 0 && dataset_n_users(ds) == 0)
    rc = recd_errf(errbuf, RECD_EINVAL, "no interactions in %s",
                   o->csv ? o->csv : "Redis (no <prefix>hist:* keys)");
  return rc;
}

/* by_user restricted to the columns < n (the modelled items). */
static int factors__restrict(const csr_t *m, uint32_t n, csr_t *out) {
  memset(out, 0, sizeof *out);
  out->n_rows = m->n_rows;
  out->n_cols = n;
  const uint64_t nnz = m->ptr[m->n_rows];
  out->ptr = malloc(((size_t)m->n_rows + 1) * sizeof *out->ptr);
  out->idx = malloc((size_t)(nnz ? nnz : 1) * sizeof *out->idx);
  out->val = malloc((size_t)(nnz ? nnz : 1) * sizeof *out->val);
  if (out->ptr == NULL || out->idx == NULL || out->val == NULL) {
    csr_free(out);
    return RECD_ENOMEM;
  }
  uint64_t w = 0;
  out->ptr[0] = 0;
  for (uint32_t r = 0; r < m->n_rows; r++) {
    for (uint64_t j = m->ptr[r]; j < m->ptr[r + 1]; j++) {
      if (m->idx[j] < n) {
        out->idx[w] = m->idx[j];
        out->val[w++] = m->val[j];
      }
    }
    out->ptr[r + 1] = w;
  }
  return 0;
}

int factors_import_main(const factors_opts_t *o, char *errbuf) {
  factors_json_t fj;
  int rc = factors_json_read_file(&fj, o->file, errbuf);
  if (rc != 0)
    return rc;
  FILE *log = o->quiet ? NULL : stderr;
  const uint32_t n = fj.n, k = fj.k, stride = (k + 15u) & ~15u;
  if (o->params.factors != 0 && o->params.factors != k) {
    factors_json_free(&fj);
    return recd_errf(errbuf, RECD_EINVAL, "--factors %u, but %s has %u features per item",
                     o->params.factors, o->file, k);
  }
  const char **ids = malloc((size_t)n * sizeof *ids);
  uint32_t *lens = malloc((size_t)n * sizeof *lens);
  float *Y = aligned_alloc(64, (size_t)n * stride * sizeof *Y);
  idmap_t *mapped = NULL;
  dataset_t ds;
  int have_ds = 0;
  csr_t by_user = {0};
  float *pop = NULL;
  uint32_t *cat = NULL, *grp = NULL;
  const char **cnames = NULL, **gnames = NULL;
  uint32_t *clens = NULL, *glens = NULL;
  if (ids == NULL || lens == NULL || Y == NULL) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory for %u items of %u factors", n, k);
    goto done;
  }
  for (uint32_t i = 0; i < n; i++) {
    memcpy(Y + (size_t)i * stride, fj.Y + (size_t)i * k, (size_t)k * sizeof *Y);
    memset(Y + (size_t)i * stride + k, 0, (size_t)(stride - k) * sizeof *Y);
  }
  if (o->factor_ids != NULL) {
    rc = factors__map_ids(o, &fj, &mapped, ids, lens, errbuf);
  } else {
    for (uint32_t i = 0; i < n; i++) {
      size_t len;
      ids[i] = idmap_key(fj.ids, i, &len);
      lens[i] = (uint32_t)len;
    }
  }
  uint64_t ignored = 0;
  if (rc == 0) {
    have_ds = 1;
    rc = factors__load(o, ids, lens, n, &ds, &ignored, errbuf);
  }
  if (rc != 0)
    goto done;

  /* What the two sides have in common. */
  const uint32_t n_ds = dataset_n_items(&ds);
  uint32_t cold = 0, numeric = 0;
  for (uint32_t i = 0; i < n; i++) {
    cold += ds.by_item.ptr[i + 1] == ds.by_item.ptr[i];
    numeric += fj.id_is_number[i];
  }
  const uint64_t nnz_all = ds.by_user.ptr[ds.by_user.n_rows];
  if ((rc = factors__restrict(&ds.by_user, n, &by_user)) != 0) {
    recd_errf(errbuf, rc, "out of memory");
    goto done;
  }
  const uint64_t nnz = by_user.ptr[by_user.n_rows];
  if (cold == n) {
    rc = recd_errf(errbuf, RECD_EINVAL, "none of the %u item ids of %s appears in the "
                   "histories of %s%s", n, o->file, o->csv ? o->csv : "Redis",
                   numeric && o->factor_ids == NULL
                       ? " (integer ids, as Spark's: map them with --factor-ids MAP.csv)"
                       : "");
    goto done;
  }
  uint64_t users = 0;
  for (uint32_t u = 0; u < by_user.n_rows; u++)
    users += by_user.ptr[u + 1] > by_user.ptr[u];
  if (log && cold > 0)
    fprintf(log, "import-factors: %u of the %u items with factors have no interactions in "
            "the histories: kept (popularity 0)\n", cold, n);
  if (log && n_ds > n)
    fprintf(log, "import-factors: %u items of the histories have no factors (%llu of %llu "
            "interactions): left out of the model\n", n_ds - n,
            (unsigned long long)(nnz_all - nnz), (unsigned long long)nnz_all);
  if (log && ignored > 0)
    fprintf(log, "%s: %llu lines name items that are neither in the factors nor in the "
            "histories: ignored\n", o->items, (unsigned long long)ignored);

  /* Popularity, categories and groups as recd-train's write_model() takes
   * them from the data set. */
  const uint32_t nc = ds.categories ? (uint32_t)idmap_size(ds.categories) : 0;
  const uint32_t ng = ds.groups ? (uint32_t)idmap_size(ds.groups) : 0;
  pop = malloc((size_t)n_ds * sizeof *pop);
  cat = calloc(n, sizeof *cat);
  grp = calloc(n, sizeof *grp);
  cnames = malloc((size_t)(nc ? nc : 1) * sizeof *cnames);
  clens = malloc((size_t)(nc ? nc : 1) * sizeof *clens);
  gnames = malloc((size_t)(ng ? ng : 1) * sizeof *gnames);
  glens = malloc((size_t)(ng ? ng : 1) * sizeof *glens);
  if (!pop || !cat || !grp || !cnames || !clens || !gnames || !glens) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory preparing the model file");
    goto done;
  }
  eval_popularity(&ds.by_item, pop);
  for (uint32_t i = 0; i < n; i++) {
    if (ds.item_category != NULL && i < ds.item_category_cap)
      cat[i] = ds.item_category[i];
    if (ds.item_group != NULL && i < ds.item_group_cap)
      grp[i] = ds.item_group[i];
  }
  for (uint32_t j = 0; j < nc; j++) {
    size_t len;
    cnames[j] = idmap_key(ds.categories, j, &len);
    clens[j] = (uint32_t)len;
  }
  for (uint32_t j = 0; j < ng; j++) {
    size_t len;
    gnames[j] = idmap_key(ds.groups, j, &len);
    glens[j] = (uint32_t)len;
  }
  params_t params = o->params;
  params.factors = k;
  als_factors_t f = {.n_items = n, .k = k, .stride = stride, .Y = Y};
  model_meta_t meta = {.created_at = publish_created_at(o->pub, o->created_at),
                       .n_users = users, .n_interactions = nnz,
                       .serves = MODEL_SERVES_ALS, .eval_split = MODEL_SPLIT_RANDOM,
                       .half_life_days = ds.has_time ? o->half_life_days : 0};
  meta.score_scale = factors__score_scale(&by_user, &f, &params, o->history_limit);
  model_spec_t spec = {.n_items = n, .params = params, .meta = meta, .Y = Y, .ldy = stride,
                       .popularity = pop, .item_ids = ids, .item_id_lens = lens,
                       .item_category = cat, .n_categories = nc, .category_names = cnames,
                       .category_name_lens = clens, .item_group = grp, .n_groups = ng,
                       .group_names = gnames, .group_name_lens = glens};
  rc = publish_write(o->pub, &spec, log, errbuf);
  if (rc == 0 && log)
    fprintf(log, "wrote %s: %u items, k=%u, factors from %s, %llu users and %llu "
            "interactions from %s\n", o->pub->out, n, k, o->file, (unsigned long long)users,
            (unsigned long long)nnz, o->csv ? o->csv : "Redis");
done:
  free(pop);
  free(cat);
  free(grp);
  free(cnames);
  free(clens);
  free(gnames);
  free(glens);
  csr_free(&by_user);
  if (have_ds)
    dataset_free(&ds);
  idmap_free(mapped);
  free(ids);
  free(lens);
  free(Y);
  factors_json_free(&fj);
  return rc;
}
