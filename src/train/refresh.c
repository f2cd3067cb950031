/* refresh.c - recd-train --refresh-items and --eval-refresh; see refresh.h.
 *
 * Why the item step against folded-in customers: between two retrains the
 * served model's item side is fixed, and the daemon already represents every
 * customer by folding the live history into it. Solving the ALS item step
 * for a new product against exactly those customer vectors puts the
 * product where a full ALS sweep with fixed X would put it, and leaves
 * every existing row (so every existing answer) untouched.
 */
#include "refresh.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "publish.h"
#include "recipe.h"
#include "recd/als.h"
#include "recd/csv.h"
#include "recd/err.h"
#include "recd/eval.h"
#include "recd/foldin.h"
#include "recd/idmap.h"
#include "recd/rng.h"

/* A printable, quoted rendering of an id for messages (at most ~90 chars). */
static void refresh__quote(char out[100], const char *id, size_t len) {
  size_t o = 0;
  out[o++] = '"';
  for (size_t i = 0; i < len && o < 88; i++)
    o += recd_escape_byte(out + o, (unsigned char)id[i], "\"");
  out[o++] = '"';
  out[o] = '\0';
}

/* 1 when both paths name the same existing file. */
static int refresh__same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/* SOURCE_DATE_EPOCH when set (reproducible files), else now. */
static int64_t refresh__now(void) {
  const char *e = getenv("SOURCE_DATE_EPOCH");
  int64_t t;
  if (e != NULL && csv_parse_i64(e, strlen(e), &t) == 0)
    return t;
  return (int64_t)time(NULL);
}

/* The data set's items that m does not know and that have at least
 * min_users customers; *too_few counts the other unknown ones. *out is
 * malloc'ed (NULL when there are none). */
static int refresh__candidates(const model_t *m, const dataset_t *ds, uint32_t min_users,
                               uint32_t **out, uint32_t *n_out, uint32_t *too_few) {
  const uint32_t n = dataset_n_items(ds);
  uint32_t *c = malloc((size_t)(n ? n : 1) * sizeof *c);
  if (c == NULL)
    return RECD_ENOMEM;
  uint32_t nc = 0, few = 0;
  for (uint32_t i = 0; i < n; i++) {
    size_t len;
    const char *id = idmap_key(ds->items, i, &len);
    if (model_find_item(m, id, len) >= 0)
      continue;
    if (ds->by_item.ptr[i + 1] - ds->by_item.ptr[i] >= min_users)
      c[nc++] = i;
    else
      few++;
  }
  *out = c;
  *n_out = nc;
  *too_few = few;
  return 0;
}

/* A names table (categories or groups) that starts as the model's, in its
 * numbering, and grows with the data set's names of new items. */
static int refresh__names_init(idmap_t **map, const model_t *m, int groups) {
  const uint32_t n = groups ? model_n_groups(m) : model_n_categories(m);
  *map = idmap_new(n + 16);
  if (*map == NULL)
    return RECD_ENOMEM;
  for (uint32_t c = 1; c <= n; c++) {
    size_t len;
    const char *name = groups ? model_group_name(m, c, &len) : model_category_name(m, c, &len);
    uint32_t idx;
    if (idmap_intern(*map, name, len, &idx) < 0)
      return RECD_ENOMEM;
  }
  return 0;
}

/* Number (1-based, 0 = none) in `map` of the data set's category or group
 * of item i. */
static int refresh__name_of(idmap_t *map, const idmap_t *ds_names, const uint32_t *ds_num,
                            size_t ds_cap, uint32_t i, uint32_t *out) {
  *out = 0;
  if (ds_num == NULL || i >= ds_cap || ds_num[i] == 0)
    return 0;
  size_t len;
  const char *name = idmap_key(ds_names, ds_num[i] - 1, &len);
  uint32_t idx;
  if (idmap_intern(map, name, len, &idx) < 0)
    return RECD_ENOMEM;
  *out = idx + 1;
  return 0;
}

/* Keys of a map as the arrays model_spec_t wants. */
static int refresh__name_arrays(const idmap_t *map, const char ***names, uint32_t **lens) {
  const size_t n = idmap_size(map);
  *names = malloc((n ? n : 1) * sizeof **names);
  *lens = malloc((n ? n : 1) * sizeof **lens);
  if (*names == NULL || *lens == NULL)
    return RECD_ENOMEM;
  for (size_t j = 0; j < n; j++) {
    size_t len;
    (*names)[j] = idmap_key(map, (uint32_t)j, &len);
    (*lens)[j] = (uint32_t)len;
  }
  return 0;
}

/* Folds every customer of ds into m as the daemon does (items m does not
 * know are not part of the model's history and are left out). X is
 * n_users x stride, zero where a customer has no known item. */
static int refresh__fold_customers(const model_t *m, const dataset_t *ds, uint32_t cap,
                                   float *X, char *errbuf) {
  const uint32_t stride = model_stride(m), k = model_factors(m);
  /* A model with a half-life: each customer's history weighed by age as
   * the daemon weighs it (recipe.h), so the new items' factors are fitted
   * against the vectors customers are really served with. */
  csr_t aged = {0};
  const csr_t *by_user = &ds->by_user;
  if (model_meta(m)->half_life_days > 0 && ds->has_time) {
    events_t ev;
    recipe_t r = {.params = *model_params(m), .half_life_days = model_meta(m)->half_life_days};
    int err = events_from_dataset(ds, &ev);
    if (err == 0) {
      err = recipe_foldin_matrix(&r, &ev, &aged);
      events_free(&ev);
    }
    if (err != 0)
      return recd_errf(errbuf, err, "out of memory weighing the histories by age");
    by_user = &aged;
  }
  size_t longest = 1;
  for (uint32_t u = 0; u < by_user->n_rows; u++)
    if (by_user->ptr[u + 1] - by_user->ptr[u] > longest)
      longest = (size_t)(by_user->ptr[u + 1] - by_user->ptr[u]);
  uint32_t *hi = malloc(longest * sizeof *hi);
  float *hw = malloc(longest * sizeof *hw);
  int64_t *midx = malloc((size_t)(dataset_n_items(ds) ? dataset_n_items(ds) : 1) * sizeof *midx);
  foldin_ws_t ws;
  int rc = foldin_ws_init(&ws, k);
  if (hi == NULL || hw == NULL || midx == NULL || rc != 0) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory folding in %u customers", by_user->n_rows);
    goto done;
  }
  for (uint32_t i = 0; i < dataset_n_items(ds); i++) {
    size_t len;
    const char *id = idmap_key(ds->items, i, &len);
    midx[i] = model_find_item(m, id, len);
  }
  for (uint32_t u = 0; u < by_user->n_rows && rc == 0; u++) {
    size_t n = 0;
    for (uint64_t j = by_user->ptr[u]; j < by_user->ptr[u + 1]; j++)
      if (midx[by_user->idx[j]] >= 0) {
        hi[n] = (uint32_t)midx[by_user->idx[j]];
        hw[n] = by_user->val[j];
        n++;
      }
    rc = foldin_solve(model_item_factors(m), stride, model_gram(m), model_params(m), hi, hw, n,
                      cap, X + (size_t)u * stride, NULL, &ws);
    if (rc != 0) {
      size_t len;
      const char *id = idmap_key(ds->users, u, &len);
      char q[100];
      refresh__quote(q, id, len);
      recd_errf(errbuf, rc, "folding in customer %s: %s", q, recd_strerror(rc));
    }
  }
done:
  foldin_ws_free(&ws);
  free(hi);
  free(hw);
  free(midx);
  csr_free(&aged);
  return rc;
}

int refresh_items(const model_t *m, const dataset_t *ds, const refresh_opts_t *o,
                  const char *out, refresh_result_t *res, char *errbuf) {
  memset(res, 0, sizeof *res);
  const uint32_t n_old = model_n_items(m), k = model_factors(m), stride = model_stride(m);
  const uint32_t n_users = dataset_n_users(ds);
  uint32_t *cand = NULL, n_new = 0;
  int rc = refresh__candidates(m, ds, o->min_item_users, &cand, &n_new, &res->too_few);
  if (rc != 0)
    return recd_errf(errbuf, rc, "out of memory");
  if ((uint64_t)n_old + n_new > UINT32_MAX - 1) {
    free(cand);
    return recd_errf(errbuf, RECD_EINVAL, "%u + %u items are too many for one model", n_old,
                     n_new);
  }
  /* Nothing to add and NEW is SERVED: leave the file (and the daemon, which
   * a timer would otherwise reload every 15 minutes) alone. */
  if (n_new == 0 && refresh__same_file(o->model, out)) {
    free(cand);
    return 0;
  }
  const uint32_t n = n_old + n_new;
  float *X = calloc((size_t)(n_users ? n_users : 1) * stride, sizeof *X);
  float *XtX = malloc((size_t)k * k * sizeof *XtX);
  float *Y = calloc((size_t)n * stride, sizeof *Y);
  float *pop = malloc((size_t)n * sizeof *pop);
  const char **ids = malloc((size_t)n * sizeof *ids);
  uint32_t *lens = malloc((size_t)n * sizeof *lens);
  uint32_t *cat = malloc((size_t)n * sizeof *cat), *grp = malloc((size_t)n * sizeof *grp);
  idmap_t *cats = NULL, *grps = NULL;
  const char **cnames = NULL, **gnames = NULL;
  uint32_t *clens = NULL, *glens = NULL;
  foldin_ws_t ws;
  memset(&ws, 0, sizeof ws);
  if (X == NULL || XtX == NULL || Y == NULL || pop == NULL || ids == NULL || lens == NULL ||
      cat == NULL || grp == NULL || foldin_ws_init(&ws, k) != 0 ||
      refresh__names_init(&cats, m, 0) != 0 || refresh__names_init(&grps, m, 1) != 0) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory for a model of %u items", n);
    goto done;
  }
  if ((rc = refresh__fold_customers(m, ds, o->history_limit, X, errbuf)) != 0)
    goto done;
  als_gram(X, n_users, k, stride, XtX);
  res->users = n_users;

  /* The old rows, bit for bit (padding included: it is zero in a model). */
  memcpy(Y, model_item_factors(m), (size_t)n_old * stride * sizeof *Y);
  memcpy(pop, model_popularity(m), (size_t)n_old * sizeof *pop);
  memcpy(cat, model_item_categories(m), (size_t)n_old * sizeof *cat);
  memcpy(grp, model_item_groups(m), (size_t)n_old * sizeof *grp);
  for (uint32_t i = 0; i < n_old; i++) {
    size_t len;
    ids[i] = model_item_id(m, i, &len);
    lens[i] = (uint32_t)len;
  }
  const csr_t *by_item = &ds->by_item;
  for (uint32_t j = 0; j < n_new && rc == 0; j++) {
    const uint32_t i = cand[j], row = n_old + j;
    const uint64_t b = by_item->ptr[i], e = by_item->ptr[i + 1];
    size_t len;
    ids[row] = idmap_key(ds->items, i, &len);
    lens[row] = (uint32_t)len;
    /* The ALS item step (as als.c's exact step): the item's customers are
     * its "history" over the customer side, XᵀX the Gram matrix of all. */
    rc = foldin_solve(X, stride, XtX, model_params(m), by_item->idx + b, by_item->val + b,
                      (size_t)(e - b), 0, Y + (size_t)row * stride, NULL, &ws);
    if (rc != 0) {
      char q[100];
      refresh__quote(q, ids[row], len);
      recd_errf(errbuf, rc, "item step of new item %s: %s", q, recd_strerror(rc));
      break;
    }
    double w = 0;
    for (uint64_t t = b; t < e; t++)
      w += by_item->val[t];
    pop[row] = (float)w;
    if (refresh__name_of(cats, ds->categories, ds->item_category, ds->item_category_cap, i,
                         &cat[row]) != 0 ||
        refresh__name_of(grps, ds->groups, ds->item_group, ds->item_group_cap, i,
                         &grp[row]) != 0)
      rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  if (rc != 0)
    goto done;
  if (refresh__name_arrays(cats, &cnames, &clens) != 0 ||
      refresh__name_arrays(grps, &gnames, &glens) != 0) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
    goto done;
  }
  model_meta_t meta = *model_meta(m);
  meta.created_at = o->pub ? publish_created_at(o->pub, refresh__now()) : refresh__now();
  model_spec_t spec = {.n_items = n, .params = *model_params(m), .meta = meta, .Y = Y,
                       .ldy = stride, .popularity = pop, .item_ids = ids, .item_id_lens = lens,
                       .item_category = cat, .n_categories = (uint32_t)idmap_size(cats),
                       .category_names = cnames, .category_name_lens = clens,
                       .item_group = grp, .n_groups = (uint32_t)idmap_size(grps),
                       .group_names = gnames, .group_name_lens = glens};
  /* Published like a retrain's model: under the same lock (a refresh
   * started from the old model must not overwrite a retrain published
   * meanwhile) and, with --keep, as a new kept version behind the symlink
   * rather than a plain file over it. */
  rc = o->pub ? publish_write(o->pub, &spec, o->quiet ? NULL : stderr, errbuf)
              : model_write(&spec, out, errbuf);
  if (rc == 0) {
    res->added = n_new;
    res->written = 1;
  }
done:
  foldin_ws_free(&ws);
  idmap_free(cats);
  idmap_free(grps);
  free(cnames);
  free(clens);
  free(gnames);
  free(glens);
  free(cand);
  free(X);
  free(XtX);
  free(Y);
  free(pop);
  free(ids);
  free(lens);
  free(cat);
  free(grp);
  return rc;
}

/* Histories from --csv (and --items) or from Redis; finalized. With Redis,
 * only the histories are read here; the attributes of the new items are
 * read once they are known (refresh_main). */
int refresh_load(const refresh_opts_t *o, dataset_t *ds, redis_link_t **rc_out,
                 char *errbuf) {
  int rc = dataset_init(ds);
  if (rc != 0)
    return recd_errf(errbuf, rc, "out of memory");
  FILE *log = o->quiet ? NULL : stderr;
  if (o->csv != NULL) {
    uint64_t skipped = 0;
    rc = dataset_read_csv(ds, o->csv, o->skip_bad, &skipped, NULL, errbuf);
    if (rc == 0 && skipped > 0 && log)
      fprintf(log, "%s: skipped %llu bad lines\n", o->csv, (unsigned long long)skipped);
    if (rc == 0 && o->items != NULL)
      rc = dataset_read_items_csv(ds, o->items, errbuf);
  } else {
    uint64_t anomalies = 0;
    rc = redis_connect(&o->redis, rc_out, errbuf);
    if (rc == 0)
      rc = redis_read_histories(*rc_out, &o->redis, ds, &anomalies, NULL, log, errbuf);
    if (rc == 0 && anomalies > 0 && log)
      fprintf(log, "redis: skipped %llu malformed entries\n", (unsigned long long)anomalies);
  }
  if (rc == 0 && (rc = dataset_finalize(ds)) != 0)
    recd_errf(errbuf, rc, "out of memory building the interaction matrix");
  return rc;
}

int refresh_main(const refresh_opts_t *o, char *errbuf) {
  model_t *m = NULL;
  int rc = model_load(&m, o->model, errbuf);
  if (rc != 0)
    return rc;
  dataset_t ds;
  redis_link_t *c = NULL;
  rc = refresh_load(o, &ds, &c, errbuf);
  if (rc == 0 && c != NULL) {
    /* Categories and groups of the new items only: one pipelined HMGET
     * each, however large the catalogue. */
    uint32_t *cand = NULL, n_cand = 0, few = 0;
    uint64_t anomalies = 0;
    rc = refresh__candidates(m, &ds, o->min_item_users, &cand, &n_cand, &few);
    if (rc == 0)
      rc = redis_read_item_attrs(c, o->redis.prefix, &ds, cand, n_cand, &anomalies,
                                 o->quiet ? NULL : stderr, errbuf);
    else
      recd_errf(errbuf, rc, "out of memory");
    free(cand);
  }
  if (c != NULL)
    redis_disconnect(c);
  refresh_result_t res;
  if (rc == 0) {
    rc = refresh_items(m, &ds, o, o->out, &res, errbuf);
    if (rc == 0)
      printf("refresh: %u items added to the %u of %s (%u new items with fewer than %u "
             "customers left out; %u customers folded in); %s %s\n", res.added,
             model_n_items(m), o->model, res.too_few, o->min_item_users, res.users,
             res.written ? "wrote" : "left unchanged", o->out);
  }
  dataset_free(&ds);
  model_free(m);
  return rc;
}

/* ---- --eval-refresh ------------------------------------------------------ */

int refresh_train(const refresh_opts_t *o, const dataset_t *ds, uint64_t seed,
                  als_factors_t *f, char *errbuf) {
  params_t p = o->params;
  p.seed = seed;
  int rc = als_factors_init(f, dataset_n_users(ds), dataset_n_items(ds), &p);
  if (rc != 0)
    return recd_errf(errbuf, rc, "out of memory for the factors");
  als_opts_t ao = {.params = p, .threads = o->threads};
  rc = als_train(&ds->by_user, &ds->by_item, &ao, f, NULL, NULL, errbuf);
  if (rc != 0)
    als_factors_free(f);
  return rc;
}

/* Contract in refresh.h. */
int refresh_write_trained(const refresh_opts_t *o, const dataset_t *ds, const als_factors_t *f,
                          const char *path, model_t **out, char *errbuf) {
  const uint32_t n = f->n_items;
  const char **ids = malloc((size_t)n * sizeof *ids);
  uint32_t *lens = malloc((size_t)n * sizeof *lens);
  float *pop = malloc((size_t)n * sizeof *pop);
  int rc = RECD_ENOMEM;
  if (ids && lens && pop) {
    for (uint32_t i = 0; i < n; i++) {
      size_t len;
      ids[i] = idmap_key(ds->items, i, &len);
      lens[i] = (uint32_t)len;
    }
    eval_popularity(&ds->by_item, pop);
    model_spec_t spec = {.n_items = n, .params = o->params, .meta = {.score_scale = 1},
                         .Y = f->Y, .ldy = f->stride, .popularity = pop, .item_ids = ids,
                         .item_id_lens = lens};
    rc = model_write(&spec, path, errbuf);
    if (rc == 0)
      rc = model_load(out, path, errbuf);
  } else {
    recd_errf(errbuf, rc, "out of memory");
  }
  free(ids);
  free(lens);
  free(pop);
  return rc;
}

/* The 10 nearest items of item i of m by cosine (i itself and zero vectors
 * excluded), best first, as indices of m; returns how many (< 10 only in
 * tiny catalogues). */
static int refresh__neighbours(const model_t *m, uint32_t i, uint32_t top[10]) {
  const uint32_t n = model_n_items(m), k = model_factors(m), stride = model_stride(m);
  const float *Y = model_item_factors(m), *norm = model_item_norms(m);
  float best[10];
  int nb = 0;
  const float *yi = Y + (size_t)i * stride;
  for (uint32_t j = 0; j < n; j++) {
    if (j == i || norm[j] == 0 || norm[i] == 0)
      continue;
    const float *yj = Y + (size_t)j * stride;
    double d = 0;
    for (uint32_t t = 0; t < k; t++)
      d += (double)yi[t] * yj[t];
    float s = (float)(d / ((double)norm[i] * norm[j]));
    if (nb == 10 && !(s > best[9]))
      continue;
    int at = nb < 10 ? nb++ : 9;
    while (at > 0 && best[at - 1] < s) {
      best[at] = best[at - 1];
      top[at] = top[at - 1];
      at--;
    }
    best[at] = s;
    top[at] = j;
  }
  return nb;
}

/* |N_a(id) ∩ N_b(id)| / 10 for an item id both models know. */
static double refresh__overlap(const model_t *a, const model_t *b, const char *id, size_t len) {
  int64_t ia = model_find_item(a, id, len), ib = model_find_item(b, id, len);
  if (ia < 0 || ib < 0)
    return NAN;
  uint32_t ta[10], tb[10];
  int na = refresh__neighbours(a, (uint32_t)ia, ta), nb = refresh__neighbours(b, (uint32_t)ib, tb);
  int hits = 0;
  for (int x = 0; x < na; x++) {
    size_t l;
    const char *nid = model_item_id(a, ta[x], &l);
    int64_t jb = model_find_item(b, nid, l);
    for (int y = 0; y < nb; y++)
      if (jb == (int64_t)tb[y]) {
        hits++;
        break;
      }
  }
  return hits / 10.0;
}

int refresh_eval_main(const refresh_opts_t *o, double fraction, char *errbuf) {
  dataset_t ds, without;
  redis_link_t *none = NULL;
  int rc = refresh_load(o, &ds, &none, errbuf);
  if (rc != 0) {
    dataset_free(&ds);
    return rc;
  }
  const uint32_t n_items = dataset_n_items(&ds);
  uint8_t *held = calloc(n_items, 1);
  char dir[] = "/tmp/recd-eval-refresh-XXXXXX";
  char pa[64] = "", pb[64] = "", pc[64] = "", pd[64] = "";
  model_t *ma = NULL, *mb = NULL, *mc = NULL, *md = NULL;
  als_factors_t f;
  if (held == NULL || dataset_init(&without) != 0) {
    free(held);
    dataset_free(&ds);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory");
  }
  if (mkdtemp(dir) == NULL) {
    rc = recd_errf(errbuf, RECD_EIO, "mkdtemp: %s", strerror(errno));
    goto done;
  }
  snprintf(pa, sizeof pa, "%s/without.bin", dir);
  snprintf(pb, sizeof pb, "%s/refreshed.bin", dir);
  snprintf(pc, sizeof pc, "%s/full.bin", dir);
  snprintf(pd, sizeof pd, "%s/full-seed2.bin", dir);
  /* A seeded random `fraction` of the items (every item equally likely). */
  rng_t r;
  rng_seed(&r, o->params.seed ^ 0x5eedULL);
  uint32_t n_held = 0;
  for (uint32_t i = 0; i < n_items; i++)
    if (rng_uniform(&r) < fraction) {
      held[i] = 1;
      n_held++;
    }
  const csr_t *bu = &ds.by_user;
  for (uint32_t u = 0; u < bu->n_rows && rc == 0; u++)
    for (uint64_t j = bu->ptr[u]; j < bu->ptr[u + 1] && rc == 0; j++) {
      if (held[bu->idx[j]])
        continue;
      size_t ul, il;
      const char *uid = idmap_key(ds.users, u, &ul), *iid = idmap_key(ds.items, bu->idx[j], &il);
      rc = dataset_add(&without, uid, ul, iid, il, bu->val[j]);
    }
  if (rc == 0)
    rc = dataset_finalize(&without);
  if (rc != 0) {
    recd_errf(errbuf, rc, "out of memory");
    goto done;
  }
  FILE *log = o->quiet ? NULL : stderr;
  if (log)
    fprintf(log, "eval-refresh: %u of %u items held out; training without them\n", n_held,
            n_items);
  if ((rc = refresh_train(o, &without, o->params.seed, &f, errbuf)) != 0)
    goto done;
  rc = refresh_write_trained(o, &without, &f, pa, &ma, errbuf);
  als_factors_free(&f);
  if (rc != 0)
    goto done;
  refresh_result_t res;
  if ((rc = refresh_items(ma, &ds, o, pb, &res, errbuf)) != 0 ||
      (rc = model_load(&mb, pb, errbuf)) != 0)
    goto done;
  if (log)
    fprintf(log, "eval-refresh: %u refreshed in (%u with fewer than %u customers); full "
            "retrains\n", res.added, res.too_few, o->min_item_users);
  if ((rc = refresh_train(o, &ds, o->params.seed, &f, errbuf)) != 0)
    goto done;
  rc = refresh_write_trained(o, &ds, &f, pc, &mc, errbuf);
  als_factors_free(&f);
  if (rc != 0 || (rc = refresh_train(o, &ds, o->params.seed + 1, &f, errbuf)) != 0)
    goto done;
  rc = refresh_write_trained(o, &ds, &f, pd, &md, errbuf);
  als_factors_free(&f);
  if (rc != 0)
    goto done;
  /* Over the held-out items that were refreshed in. The old items, for
   * reference: their neighbours in the refreshed model against a retrain. */
  double s_ref = 0, s_noise = 0, s_old = 0;
  uint32_t n_ref = 0, n_old = 0;
  for (uint32_t i = 0; i < n_items; i++) {
    size_t len;
    const char *id = idmap_key(ds.items, i, &len);
    if (held[i]) {
      if (model_find_item(mb, id, len) < 0)
        continue;
      s_ref += refresh__overlap(mb, mc, id, len);
      s_noise += refresh__overlap(md, mc, id, len);
      n_ref++;
    } else if (i % 10 == 0) { /* a 10% sample is plenty for a reference */
      s_old += refresh__overlap(mb, mc, id, len);
      n_old++;
    }
  }
  printf("{\"data\": \"%s\", \"items\": %u, \"held_out\": %u, \"refreshed\": %u, "
         "\"min_item_users\": %u, \"factors\": %u, \"overlap10_refreshed_vs_retrain\": %.4f, "
         "\"overlap10_retrain_vs_retrain_seed2\": %.4f, \"overlap10_old_items_vs_retrain\": "
         "%.4f}\n", o->csv, n_items, n_held, n_ref, o->min_item_users, o->params.factors,
         n_ref ? s_ref / n_ref : 0.0, n_ref ? s_noise / n_ref : 0.0,
         n_old ? s_old / n_old : 0.0);
done:
  model_free(ma);
  model_free(mb);
  model_free(mc);
  model_free(md);
  const char *paths[] = {pa, pb, pc, pd};
  for (int t = 0; t < 4; t++)
    if (paths[t][0] != '\0')
      unlink(paths[t]);
  if (pa[0] != '\0')
    rmdir(dir);
  free(held);
  dataset_free(&without);
  dataset_free(&ds);
  return rc;
}
