/* topk.c - filtered top-N selection (topk_select in score.h).
 *
 * One pass over the scores in index order with a bounded heap of `want`
 * entries held in the caller's idx_out, whose root is the worst kept item.
 * Scanning in index order is what makes ties cheap: an item that merely
 * equals the root's score has a larger index than everything already kept,
 * so it loses, and the steady-state test is one float comparison
 * `s > threshold`. The threshold starts at -INFINITY, which also removes
 * NaN (every comparison with NaN is false) and -INFINITY adjusted scores
 * (a removed category) without a separate test.
 *
 * Items are taken in blocks of 64. A block first gets a vectorised
 * pre-test (could any score here, plus the largest adjustment, beat the
 * threshold?); once the heap is full nearly every block stops there, which
 * took a 100k-item selection from about 100 us to about 20 us. Blocks that
 * pass fold both exclusion filters into one 64-bit mask: the bitmap word,
 * OR the sorted exclude list walked with a cursor. That costs
 * O(n / 64 + n_exclude) and leaves the per-item work a bit test.
 *
 * The heap stores item indices only (score_out may be NULL, and nothing may
 * be allocated); a kept item's key is recomputed from scores[] and the
 * category adjustment when the heap needs it. Insertions are rare after
 * the heap fills (about want * ln(n / want) of them for a random order), so
 * that costs nothing measurable, and the recomputed float is bit-identical.
 */
#include "recd/score.h"

#include <math.h>
#include <string.h>

/* What a key is made of; has_cat is a compile-time constant in each
 * instantiation of topk__scan, so the no-category scan has no category
 * loads at all. */
typedef struct topk__src {
  const float *scores;
  const uint32_t *cat;
  const float *adj;
  uint32_t n_slots;
  float bound; /* >= every adjustment (0 without categories) */
} topk__src_t;

static inline float topk__key(const topk__src_t *s, uint32_t i, int has_cat) {
  float v = s->scores[i];
  if (has_cat) {
    /* An out-of-range category slot (a caller bug) means no adjustment
     * rather than a read past cat_adjust. */
    const uint32_t c = s->cat[i];
    v += c < s->n_slots ? s->adj[c] : 0.0f;
  }
  return v;
}

/* Is item a (key ka) ranked below item b (key kb)? The inverse of the
 * total order of score.h: lower key, or equal key and larger index. */
static inline int topk__worse(float ka, uint32_t a, float kb, uint32_t b) {
  return ka < kb || (ka == kb && a > b);
}

static inline void topk__sift_down(const topk__src_t *s, uint32_t *heap, size_t len,
                                   size_t pos, int has_cat) {
  const uint32_t it = heap[pos];
  const float key = topk__key(s, it, has_cat);
  for (;;) {
    size_t child = 2 * pos + 1;
    if (child >= len)
      break;
    float ck = topk__key(s, heap[child], has_cat);
    if (child + 1 < len) {
      const float rk = topk__key(s, heap[child + 1], has_cat);
      if (topk__worse(rk, heap[child + 1], ck, heap[child])) {
        child++;
        ck = rk;
      }
    }
    if (!topk__worse(ck, heap[child], key, it))
      break;
    heap[pos] = heap[child];
    pos = child;
  }
  heap[pos] = it;
}

static inline void topk__sift_up(const topk__src_t *s, uint32_t *heap, size_t pos,
                                 int has_cat) {
  const uint32_t it = heap[pos];
  const float key = topk__key(s, it, has_cat);
  while (pos > 0) {
    const size_t parent = (pos - 1) / 2;
    if (!topk__worse(key, it, topk__key(s, heap[parent], has_cat), heap[parent]))
      break;
    heap[pos] = heap[parent];
    pos = parent;
  }
  heap[pos] = it;
}

/* The whole selection for one value of has_cat (always inlined into the
 * two call sites so the flag is constant-folded). */
static inline __attribute__((always_inline)) size_t
topk__scan(const topk__src_t *s, uint32_t n, const topk_filter_t *f, size_t want,
           uint32_t *heap, float *score_out, int has_cat) {
  const uint32_t *ex = f != NULL ? f->exclude : NULL;
  const uint32_t *const ex_end = ex != NULL ? ex + f->n_exclude : NULL;
  const uint64_t *bits = f != NULL ? f->exclude_bits : NULL;
  size_t len = 0;
  float thr = -INFINITY;
  for (uint32_t base = 0; base < n; base += 64) {
    const uint32_t end = n - base > 64 ? base + 64 : n;
    uint64_t mask = bits != NULL ? bits[base / 64] : 0;
    /* The list is sorted, so every entry below `base` was consumed by an
     * earlier block; the >= test only guards against an unsorted list
     * turning into an out-of-range shift. */
    while (ex != ex_end && *ex < end) {
      if (*ex >= base)
        mask |= (uint64_t)1 << (*ex - base);
      ex++;
    }
    if (end - base == 64) {
      /* Block pre-test: can anything here beat the threshold? Float
       * addition is monotonic, so key(i) <= scores[i] + bound, and a block
       * where no scores[i] + bound exceeds thr holds no candidate. This is
       * an integer count of float compares, which the compiler vectorises;
       * once the heap is full almost every block ends here. It ignores the
       * exclusion mask, so an excluded high scorer only costs a full scan
       * of its block. */
      const float *sb = s->scores + base;
      const float bound = s->bound;
      uint32_t hits = 0;
      for (uint32_t j = 0; j < 64; j++)
        hits += sb[j] + bound > thr;
      if (hits == 0)
        continue;
    }
    for (uint32_t i = base; i < end; i++) {
      if ((mask >> (i - base)) & 1)
        continue;
      const float v = topk__key(s, i, has_cat);
      if (!(v > thr))
        continue;
      if (len < want) {
        heap[len] = i;
        topk__sift_up(s, heap, len, has_cat);
        len++;
        if (len == want)
          thr = topk__key(s, heap[0], has_cat);
      } else {
        heap[0] = i;
        topk__sift_down(s, heap, len, 0, has_cat);
        thr = topk__key(s, heap[0], has_cat);
      }
    }
  }
  /* Heapsort: each step moves the worst remaining item to the back, which
   * leaves idx_out best first. */
  for (size_t e = len; e > 1; e--) {
    const uint32_t t = heap[0];
    heap[0] = heap[e - 1];
    heap[e - 1] = t;
    topk__sift_down(s, heap, e - 1, 0, has_cat);
  }
  if (score_out != NULL)
    for (size_t j = 0; j < len; j++)
      score_out[j] = topk__key(s, heap[j], has_cat);
  return len;
}

/* Contract in score.h. Beyond it: an item whose adjusted score is
 * -INFINITY is never returned, whether the -INFINITY came from cat_adjust
 * or from the score itself; exclude entries >= n are ignored; idx_out and
 * score_out are written only in [0, return value). */
size_t topk_select(const float *scores, uint32_t n, const topk_filter_t *f, size_t want,
                   uint32_t *idx_out, float *score_out) {
  if (want == 0 || n == 0)
    return 0;
  if (want > n)
    want = n; /* the heap never holds more than n items */
  topk__src_t s = {.scores = scores};
  if (f != NULL && f->item_category != NULL && f->cat_adjust != NULL && f->n_slots > 0) {
    s.cat = f->item_category;
    s.adj = f->cat_adjust;
    s.n_slots = f->n_slots;
    /* 0 covers out-of-range slots (no adjustment); NaN adjustments never
     * win a comparison, so skipping them keeps the bound sound. */
    s.bound = 0.0f;
    for (uint32_t c = 0; c < f->n_slots; c++)
      s.bound = f->cat_adjust[c] > s.bound ? f->cat_adjust[c] : s.bound;
    return topk__scan(&s, n, f, want, idx_out, score_out, 1);
  }
  return topk__scan(&s, n, f, want, idx_out, score_out, 0);
}

void topk_filter_hint(topk_filter_t *f) {
  memset(f->exclude_hint, 0, sizeof f->exclude_hint);
  for (size_t j = 0; j < f->n_exclude; j++)
    f->exclude_hint[(f->exclude[j] / 64) % 8] |= 1ULL << (f->exclude[j] % 64);
  f->hinted = 1;
}
