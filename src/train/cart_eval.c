/* cart_eval.c - recd-train --eval-cart: how good are recommendations for an
 * anonymous cart (RECOMMEND <session> HISTORY n ...)?
 *
 * For every customer of a timestamped CSV (user,item,weight,timestamp):
 *   - the last basket is held out: the items of the customer's latest
 *     timestamp (an invoice, in online-retail), or, in data sets where one
 *     timestamp rarely holds two items (ratings), the last 10 interactions by
 *     time. Which rule applies is decided once per data set: invoice baskets
 *     when at least half of the customers' latest timestamps hold >= 2 items;
 *   - the basket is put in time order (ties in a seeded random order) and
 *     split: the first floor(n/2) items are the cart, the rest the target;
 *   - a model is trained on everything but the held-out baskets;
 *   - three answers of 10 items are scored against the target with
 *     ndcg@10 (binary gains, log2 discounts, ideal = min(|target|, 10) hits)
 *     and recall@10:
 *       anonymous: the cart as the whole history, weight 1 each, folded in
 *                  exactly as RECOMMEND <anon> HISTORY n ... (the daemon's
 *                  fold-in: model Y and YᵀY, history-limit cap), cart
 *                  items excluded;
 *       known:     the customer's stored (training) history plus the cart
 *                  (weight 1 on top), everything in it excluded, as the
 *                  daemon answers a logged-in customer with HISTORY;
 *       popular:   the most popular items not in the cart.
 * Evaluated: customers with a basket of >= 2 items and some history before
 * it (so that all three answers exist for the same customers).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recd/csv.h"
#include "recd/err.h"
#include "recd/eval.h"
#include "recd/foldin.h"
#include "recd/idmap.h"
#include "recd/rng.h"
#include "recd/score.h"
#include "refresh.h"

#define CART_TOP 10
#define CART_LAST_N 10 /* basket size when timestamps are per event */

typedef struct cart_row {
  uint32_t user, item;
  float w;
  int64_t ts;
  uint64_t tie; /* seeded random, orders equal timestamps */
} cart_row_t;

static int cart__cmp(const void *a, const void *b) {
  const cart_row_t *x = a, *y = b;
  if (x->user != y->user)
    return x->user < y->user ? -1 : 1;
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  return x->tie < y->tie ? -1 : x->tie > y->tie;
}

/* Reads user,item,weight,timestamp; every line validated. */
static int cart__read(const char *path, idmap_t *users, idmap_t *items, cart_row_t **rows,
                      size_t *n_rows, uint64_t seed, char *errbuf) {
  csv_reader_t *r;
  int rc = csv_open(&r, path, errbuf);
  if (rc != 0)
    return rc;
  csv_record_t rec;
  size_t n = 0, cap = 0;
  cart_row_t *a = NULL;
  rng_t g;
  rng_seed(&g, seed);
  int header = 1;
  while ((rc = csv_next(r, &rec, errbuf)) == 1) {
    const unsigned long long line = (unsigned long long)rec.line;
    if (header) {
      header = 0;
      if (rec.n_fields != 4 || strcmp(rec.field[3], "timestamp") != 0) {
        rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: --eval-cart needs the header "
                       "user,item,weight,timestamp", path, line);
        break;
      }
      continue;
    }
    float w;
    int64_t ts;
    if (rec.n_fields != 4 || rec.len[0] == 0 || rec.len[0] > DATASET_MAX_ID ||
        rec.len[1] == 0 || rec.len[1] > DATASET_MAX_ID ||
        csv_parse_float(rec.field[2], rec.len[2], &w) != 0 || !(w > 0) || !isfinite(w) ||
        csv_parse_i64(rec.field[3], rec.len[3], &ts) != 0) {
      rc = recd_errf(errbuf, RECD_EFORMAT, "%s:%llu: expected user,item,weight > 0,timestamp "
                     "(integer)", path, line);
      break;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 1 << 16;
      cart_row_t *b = realloc(a, cap * sizeof *b);
      if (b == NULL) {
        rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory reading %s", path);
        break;
      }
      a = b;
    }
    uint32_t u, i;
    if (idmap_intern(users, rec.field[0], rec.len[0], &u) < 0 ||
        idmap_intern(items, rec.field[1], rec.len[1], &i) < 0) {
      rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory reading %s", path);
      break;
    }
    a[n++] = (cart_row_t){.user = u, .item = i, .w = w, .ts = ts, .tie = rng_next(&g)};
  }
  csv_close(r);
  if (rc < 0) {
    free(a);
    return rc;
  }
  *rows = a;
  *n_rows = n;
  return 0;
}

/* ndcg@10 and recall@10 of top (model indices) against the target set. */
static void cart__score(const uint32_t *top, int n_top, const uint8_t *is_target,
                        uint32_t n_target, double *ndcg, double *recall) {
  double dcg = 0, idcg = 0;
  int hits = 0;
  for (int r = 0; r < n_top; r++)
    if (is_target[top[r]]) {
      dcg += 1.0 / log2(r + 2.0);
      hits++;
    }
  for (uint32_t r = 0; r < n_target && r < CART_TOP; r++)
    idcg += 1.0 / log2(r + 2.0);
  *ndcg = idcg > 0 ? dcg / idcg : 0;
  *recall = n_target ? (double)hits / n_target : 0;
}

/* The CART_TOP best scores not excluded; ties to the smaller index. */
static int cart__top(const float *s, uint32_t n, const uint8_t *excl, uint32_t *top) {
  float best[CART_TOP];
  int nb = 0;
  for (uint32_t j = 0; j < n; j++) {
    if (excl[j] || (nb == CART_TOP && !(s[j] > best[CART_TOP - 1])))
      continue;
    int at = nb < CART_TOP ? nb++ : CART_TOP - 1;
    while (at > 0 && best[at - 1] < s[j]) {
      best[at] = best[at - 1];
      top[at] = top[at - 1];
      at--;
    }
    best[at] = s[j];
    top[at] = j;
  }
  return nb;
}

int cart_eval_main(const refresh_opts_t *o, char *errbuf) {
  idmap_t *users = idmap_new(1 << 12), *items = idmap_new(1 << 12);
  cart_row_t *rows = NULL;
  size_t n_rows = 0;
  int rc = users && items ? 0 : RECD_ENOMEM;
  if (rc == 0)
    rc = cart__read(o->csv, users, items, &rows, &n_rows, o->params.seed, errbuf);
  else
    recd_errf(errbuf, rc, "out of memory");
  if (rc != 0) {
    idmap_free(users);
    idmap_free(items);
    return rc;
  }
  qsort(rows, n_rows, sizeof *rows, cart__cmp);
  const uint32_t n_users = (uint32_t)idmap_size(users);
  size_t *start = calloc((size_t)n_users + 1, sizeof *start);
  uint8_t *in_basket = calloc(n_rows ? n_rows : 1, 1);
  dataset_t train;
  memset(&train, 0, sizeof train);
  char dir[] = "/tmp/recd-eval-cart-XXXXXX", path[64] = "";
  model_t *m = NULL;
  float *scores = NULL, *x = NULL, *hw = NULL;
  uint32_t *hi = NULL;
  uint8_t *excl = NULL, *is_target = NULL;
  foldin_ws_t ws;
  memset(&ws, 0, sizeof ws);
  if (start == NULL || in_basket == NULL || dataset_init(&train) != 0) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
    goto done;
  }
  for (size_t r = 0; r < n_rows; r++)
    start[rows[r].user + 1] = r + 1;
  for (uint32_t u = 0; u < n_users; u++)
    if (start[u + 1] < start[u])
      start[u + 1] = start[u];
  /* Which basket rule: invoices when most latest timestamps hold >= 2 items. */
  uint32_t multi = 0;
  for (uint32_t u = 0; u < n_users; u++) {
    size_t e = start[u + 1], b = e;
    while (b > start[u] && rows[b - 1].ts == rows[e - 1].ts)
      b--;
    multi += e - b >= 2;
  }
  const int invoices = multi * 2 >= n_users;
  uint32_t n_eval_users = 0;
  for (uint32_t u = 0; u < n_users; u++) {
    size_t e = start[u + 1], b = e;
    if (invoices)
      while (b > start[u] && rows[b - 1].ts == rows[e - 1].ts)
        b--;
    else
      b = e - start[u] > CART_LAST_N ? e - CART_LAST_N : start[u];
    /* A basket of >= 2 items with history before it. */
    if (e - b >= 2 && b > start[u]) {
      for (size_t r = b; r < e; r++)
        in_basket[r] = 1;
      n_eval_users++;
    }
  }
  for (size_t r = 0; r < n_rows && rc == 0; r++) {
    if (in_basket[r])
      continue;
    size_t ul, il;
    const char *uid = idmap_key(users, rows[r].user, &ul), *iid = idmap_key(items, rows[r].item, &il);
    rc = dataset_add(&train, uid, ul, iid, il, rows[r].w);
  }
  if (rc == 0)
    rc = dataset_finalize(&train);
  if (rc != 0) {
    recd_errf(errbuf, rc, "out of memory");
    goto done;
  }
  FILE *log = o->quiet ? NULL : stderr;
  if (log)
    fprintf(log, "eval-cart: %s baskets of %u customers held out; training on the rest\n",
            invoices ? "last-invoice" : "last-10", n_eval_users);
  if (mkdtemp(dir) == NULL) {
    rc = recd_errf(errbuf, RECD_EIO, "cannot create a temporary directory");
    goto done;
  }
  snprintf(path, sizeof path, "%s/model.bin", dir);
  als_factors_t f;
  if ((rc = refresh_train(o, &train, o->params.seed, &f, errbuf)) != 0)
    goto done;
  rc = refresh_write_trained(o, &train, &f, path, &m, errbuf);
  als_factors_free(&f);
  if (rc != 0)
    goto done;
  const uint32_t n = model_n_items(m), k = model_factors(m), stride = model_stride(m);
  size_t longest = 1;
  for (uint32_t u = 0; u < n_users; u++)
    if (start[u + 1] - start[u] > longest)
      longest = start[u + 1] - start[u];
  scores = malloc((size_t)n * sizeof *scores);
  x = calloc(stride, sizeof *x);
  hi = malloc(longest * sizeof *hi);
  hw = malloc(longest * sizeof *hw);
  excl = calloc(n, 1);
  is_target = calloc(n, 1);
  if (!scores || !x || !hi || !hw || !excl || !is_target || foldin_ws_init(&ws, k) != 0) {
    rc = recd_errf(errbuf, RECD_ENOMEM, "out of memory");
    goto done;
  }
  const float *pop = model_popularity(m);
  double sum[3][2] = {{0}};
  uint32_t evaluated = 0;
  uint64_t cart_items = 0, target_items = 0;
  for (uint32_t u = 0; u < n_users && rc == 0; u++) {
    size_t b = start[u], e = start[u + 1];
    while (b < e && !in_basket[b])
      b++;
    if (b == e)
      continue;
    const size_t half = (e - b) / 2;
    /* Model indices of the cart (first half) and the target (the rest);
     * items the model never saw stay in the target count (they cannot be
     * recommended: an honest miss). */
    uint32_t n_cart = 0, n_target = 0;
    for (size_t r = b; r < e; r++) {
      size_t il;
      const char *iid = idmap_key(items, rows[r].item, &il);
      int64_t mi = model_find_item(m, iid, il);
      if (r < b + half) {
        if (mi >= 0)
          hi[n_cart++] = (uint32_t)mi;
      }
    }
    for (uint32_t c = 0; c < n_cart; c++)
      excl[hi[c]] = 1;
    for (size_t r = b + half; r < e; r++) {
      size_t il;
      const char *iid = idmap_key(items, rows[r].item, &il);
      int64_t mi = model_find_item(m, iid, il);
      if (mi >= 0 && excl[mi])
        continue; /* also in the cart: not something to recommend */
      if (mi >= 0 && is_target[mi])
        continue;
      if (mi >= 0)
        is_target[mi] = 1;
      n_target++;
    }
    if (n_target == 0 || n_cart == 0) {
      for (uint32_t c = 0; c < n_cart; c++)
        excl[hi[c]] = 0;
      memset(is_target, 0, n);
      continue;
    }
    for (uint32_t c = 0; c < n_cart; c++)
      hw[c] = 1.0f;
    uint32_t top[CART_TOP];
    double nd, rec;
    /* anonymous: the cart is the whole history */
    rc = foldin_solve(model_item_factors(m), stride, model_gram(m), model_params(m), hi, hw,
                      n_cart, o->history_limit, x, NULL, &ws);
    if (rc != 0)
      break;
    score_items(model_item_factors(m), stride, n, k, x, scores);
    cart__score(top, cart__top(scores, n, excl, top), is_target, n_target, &nd, &rec);
    sum[0][0] += nd;
    sum[0][1] += rec;
    /* popular, minus the cart */
    cart__score(top, cart__top(pop, n, excl, top), is_target, n_target, &nd, &rec);
    sum[2][0] += nd;
    sum[2][1] += rec;
    /* known: stored history + cart, all of it excluded */
    uint32_t nh = n_cart;
    for (size_t r = start[u]; r < b; r++) {
      size_t il;
      const char *iid = idmap_key(items, rows[r].item, &il);
      int64_t mi = model_find_item(m, iid, il);
      if (mi < 0)
        continue;
      hi[nh] = (uint32_t)mi;
      hw[nh++] = rows[r].w;
    }
    rc = foldin_solve(model_item_factors(m), stride, model_gram(m), model_params(m), hi, hw, nh,
                      o->history_limit, x, NULL, &ws);
    if (rc != 0)
      break;
    for (uint32_t c = 0; c < nh; c++)
      excl[hi[c]] = 1;
    score_items(model_item_factors(m), stride, n, k, x, scores);
    cart__score(top, cart__top(scores, n, excl, top), is_target, n_target, &nd, &rec);
    sum[1][0] += nd;
    sum[1][1] += rec;
    for (uint32_t c = 0; c < nh; c++)
      excl[hi[c]] = 0;
    memset(is_target, 0, n);
    evaluated++;
    cart_items += n_cart;
    target_items += n_target;
  }
  if (rc != 0) {
    recd_errf(errbuf, rc, "fold-in: %s", recd_strerror(rc));
    goto done;
  }
  const double d = evaluated ? evaluated : 1;
  printf("{\"data\": \"%s\", \"basket\": \"%s\", \"customers\": %u, \"mean_cart\": %.2f, "
         "\"mean_target\": %.2f, \"factors\": %u,\n"
         " \"anonymous_cart\": {\"ndcg@10\": %.4f, \"recall@10\": %.4f},\n"
         " \"known_history_plus_cart\": {\"ndcg@10\": %.4f, \"recall@10\": %.4f},\n"
         " \"popularity\": {\"ndcg@10\": %.4f, \"recall@10\": %.4f}}\n",
         o->csv, invoices ? "last invoice" : "last 10 by time", evaluated, cart_items / d,
         target_items / d, o->params.factors, sum[0][0] / d, sum[0][1] / d, sum[1][0] / d,
         sum[1][1] / d, sum[2][0] / d, sum[2][1] / d);
done:
  foldin_ws_free(&ws);
  model_free(m);
  if (path[0] != '\0') {
    unlink(path);
    rmdir(dir);
  }
  free(scores);
  free(x);
  free(hi);
  free(hw);
  free(excl);
  free(is_target);
  dataset_free(&train);
  free(start);
  free(in_basket);
  free(rows);
  idmap_free(users);
  idmap_free(items);
  return rc;
}
