/* model_load.c - maps a model file and proves it sound before anyone uses it.
 *
 * The loader trusts nothing in the file: it checks identity (magic, version,
 * byte order, header size), integrity (declared size, CRC32), geometry
 * (every size and section offset with overflow-safe arithmetic, alignment,
 * overlap, exact lengths, zero padding) and content (ids, categories,
 * finiteness, the Gram matrix against Y) in that order, so that the message
 * names the first thing wrong at the most useful level: a truncated download
 * says "truncated", not "checksum mismatch", and a valid-checksum file from a
 * buggy writer says which field is wrong. Only then is a model_t returned;
 * after that the serving code may index everything without checks.
 *
 * A loaded model is immutable, so any number of threads may read it.
 */
#include "model_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "recd/foldin.h"
#include "recd/idmap.h"

struct model {
  unsigned char *base;  /* the file's bytes: a mapping or a heap copy */
  size_t size;
  int mapped;           /* 1: munmap(base), 0: free(base) */
  model__header_t h;    /* decoded and validated header */
  const float *Y;       /* n x stride, inside base */
  const float *gram;    /* k x k */
  const float *pop;     /* n */
  const uint32_t *cat;  /* n */
  const uint32_t *grp;  /* n: inside base (v2) or grp_zero (v1) */
  uint32_t *grp_zero;   /* heap, n zeros: a version-1 file has no groups */
  float *norms;         /* heap, n: ||y_i|| for cosine similarity */
  float max_norm;       /* max_i ||y_i||, for error bounds */
  idmap_t *ids;         /* item id -> index (copies of the ids) */
  idmap_t *cats;        /* category name -> number - 1 */
  idmap_t *grps;        /* group name -> number - 1 */
};

/* Tolerances of the Gram matrix checks. The writer mirrors the upper
 * triangle, so a file from recd is exactly symmetric; the relative 1e-6
 * only forgives a writer that computed both triangles in float. The diagonal
 * is compared with a double-precision sum of squares of Y's columns: float
 * accumulation in ssyrk over n items in blocks of ~256 errs by at most about
 * (256 + n/256) * 2^-24 relative for these all-positive sums, ~2e-4 at
 * n = 10^7, so 1e-3 cannot reject a correct file while still catching a YtY
 * that belongs to another Y. Values below 1e-30 count as zero (float
 * denormals lose their relative precision). */
#define MODEL__SYM_TOL 1e-6
#define MODEL__DIAG_TOL 1e-3
#define MODEL__TINY 1e-30

/* ---- identity, integrity, geometry -------------------------------------- */

static int model__check_identity(const unsigned char *b, size_t size, char *eb) {
  if (size < MODEL__MAGIC_LEN)
    return recd_errf(eb, RECD_EFORMAT,
                     "not a recd model file: %zu bytes, shorter than the 8-byte magic", size);
  if (memcmp(b, MODEL__MAGIC, MODEL__MAGIC_LEN) != 0)
    return recd_errf(eb, RECD_EFORMAT,
                     "not a recd model file: bad magic %02x %02x %02x %02x %02x %02x %02x %02x "
                     "(expected \"RECDMDL\\0\")", b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
  if (size < MODEL__OFF_VERSION + 4)
    return recd_errf(eb, RECD_EFORMAT, "truncated: %zu bytes, shorter than the version field",
                     size);
  uint32_t version = model__get_u32(b + MODEL__OFF_VERSION);
  if (version < MODEL_MIN_VERSION || version > MODEL_VERSION) {
    /* A byte-swapped 1, 2 or 3 reads as 0x01000000, 0x02000000 or
     * 0x03000000; say so instead of reporting version 16777216. */
    for (uint32_t v = MODEL_MIN_VERSION; v <= MODEL_VERSION; v++)
      if (version == v << 24)
        return recd_errf(eb, RECD_EFORMAT, "big-endian model file (version field reads "
                         "0x%08x); recd model files are little-endian", version);
    return recd_errf(eb, RECD_EVERSION, "unsupported model version %u (this recd reads %d "
                     "to %d)", version, MODEL_MIN_VERSION, MODEL_VERSION);
  }
  const uint32_t want = model__header_size(version);
  if (size < want)
    return recd_errf(eb, RECD_EFORMAT, "truncated: %zu bytes, the version %u header alone is "
                     "%u", size, version, want);
  uint32_t hsize = model__get_u32(b + MODEL__OFF_HEADER_SIZE);
  if (hsize != want)
    return recd_errf(eb, RECD_EFORMAT, "header: header_size is %u, version %u headers are %u "
                     "bytes", hsize, version, want);
  uint32_t bom = model__get_u32(b + MODEL__OFF_BYTE_ORDER);
  if (bom != MODEL__BYTE_ORDER_MARK) {
    if (bom == 0x04030201u)
      return recd_errf(eb, RECD_EFORMAT, "header: byte-order mark reads 0x04030201: written "
                       "big-endian, recd model files are little-endian");
    return recd_errf(eb, RECD_EFORMAT, "header: bad byte-order mark 0x%08x (expected 0x%08x)",
                     bom, MODEL__BYTE_ORDER_MARK);
  }
  uint64_t fsize = model__get_u64(b + MODEL__OFF_FILE_SIZE);
  if (fsize > size)
    return recd_errf(eb, RECD_EFORMAT, "truncated: the header says %llu bytes, there are %zu",
                     (unsigned long long)fsize, size);
  if (fsize < size)
    return recd_errf(eb, RECD_EFORMAT, "%llu trailing bytes after the %llu bytes the header "
                     "declares", (unsigned long long)(size - fsize), (unsigned long long)fsize);
  return 0;
}

static int model__check_crc(const unsigned char *b, size_t size, char *eb) {
  uLong crc = crc32(0L, Z_NULL, 0);
  /* zlib counts in uInt; feed at most 1 GiB at a time. */
  for (size_t at = MODEL__CRC_START; at < size;) {
    size_t n = size - at < (1u << 30) ? size - at : (1u << 30);
    crc = crc32(crc, b + at, (uInt)n);
    at += n;
  }
  uint32_t stored = model__get_u32(b + MODEL__OFF_CHECKSUM);
  if ((uint32_t)crc != stored)
    return recd_errf(eb, RECD_ECHECKSUM, "checksum mismatch: stored %08x, computed %08x (the "
                     "file is corrupt or was modified)", stored, (uint32_t)crc);
  return 0;
}

static int model__check_reserved(const unsigned char *b, uint32_t version, char *eb) {
  /* [from, to) ranges per version; version 2 uses v1's reserved bytes for
   * n_groups and the three group sections, version 3 all of v2's for its
   * new fields (it has none left). The decoder does not read a version's
   * reserved bytes, so only this check sees them. */
  static const uint32_t v1[][2] = {{MODEL__OFF_RESERVED0, MODEL__OFF_RESERVED0 + 4},
                                   {MODEL__OFF_RESERVED1, MODEL__HEADER_SIZE_V1}};
  static const uint32_t v2[][2] = {{MODEL__OFF_RESERVED2, MODEL__OFF_RESERVED2 + 4},
                                   {MODEL__OFF_RESERVED3, MODEL__HEADER_SIZE}};
  if (version >= 3)
    return 0;
  const uint32_t(*r)[2] = version == 2 ? v2 : v1;
  for (int k = 0; k < 2; k++)
    for (uint32_t i = r[k][0]; i < r[k][1]; i++)
      if (b[i] != 0)
        return recd_errf(eb, RECD_EFORMAT, "header: reserved byte %u is 0x%02x, not 0", i,
                         b[i]);
  return 0;
}

static int model__check_sizes(const model__header_t *h, char *eb) {
  if (h->n_items == 0)
    return recd_errf(eb, RECD_EFORMAT, "header: n_items is 0");
  if (h->n_items == UINT32_MAX)
    return recd_errf(eb, RECD_EFORMAT, "header: n_items %u is too large", h->n_items);
  if (h->k == 0 || h->k > MODEL_MAX_FACTORS)
    return recd_errf(eb, RECD_EFORMAT, "header: k is %u, must be 1..%d", h->k,
                     MODEL_MAX_FACTORS);
  uint32_t want = model__stride_for(h->k);
  if (h->stride < h->k)
    return recd_errf(eb, RECD_EFORMAT, "header: stride %u is smaller than k %u", h->stride,
                     h->k);
  if (h->stride % (MODEL_ALIGN / sizeof(float)) != 0)
    return recd_errf(eb, RECD_EFORMAT, "header: stride %u is not a multiple of %zu floats "
                     "(rows must start on %d-byte boundaries)", h->stride,
                     MODEL_ALIGN / sizeof(float), MODEL_ALIGN);
  if (h->stride != want)
    return recd_errf(eb, RECD_EFORMAT, "header: stride %u, expected %u for k %u", h->stride,
                     want, h->k);
  if (h->n_categories == UINT32_MAX)
    return recd_errf(eb, RECD_EFORMAT, "header: n_categories %u is too large", h->n_categories);
  if (h->n_groups == UINT32_MAX)
    return recd_errf(eb, RECD_EFORMAT, "header: n_groups %u is too large", h->n_groups);
  return 0;
}

static int model__check_sections(const model__header_t *h, const unsigned char *b, size_t size,
                                 char *eb) {
  static const char *const formula[MODEL__N_SECTIONS] = {
    "n_items x stride x 4", "k x k x 4", "n_items x 4", "n_items x 4",
    "(n_items + 1) x 8", NULL, "(n_categories + 1) x 8", NULL, "n_items x 4",
    "(n_groups + 1) x 8", NULL,
  };
  const int nsec = model__n_sections(h->version);
  const uint32_t hsize = model__header_size(h->version);
  uint64_t len[MODEL__N_SECTIONS];
  if (model__section_lengths(h->n_items, h->k, h->stride, h->n_categories, h->n_groups, len) !=
      0)
    return recd_errf(eb, RECD_EFORMAT, "header: n_items %u x stride %u overflows", h->n_items,
                     h->stride);
  /* A cheap, early, readable verdict on absurd counts: the fixed-size
   * sections alone must fit in the file. Saturating sum. */
  uint64_t need = hsize;
  for (int s = 0; s < nsec; s++)
    need = len[s] > UINT64_MAX - need ? UINT64_MAX : need + len[s];
  if (need > size)
    return recd_errf(eb, RECD_EFORMAT, "header: n_items %u, k %u, n_categories %u, n_groups %u "
                     "need at least %llu bytes, the file has %zu", h->n_items, h->k,
                     h->n_categories, h->n_groups, (unsigned long long)need, size);
  uint64_t end = hsize;
  for (int s = 0; s < nsec; s++) {
    const model__section_t *sec = &h->sec[s];
    const char *name = model__section_name[s];
    if (sec->offset % MODEL_ALIGN != 0)
      return recd_errf(eb, RECD_EFORMAT, "section %s: offset %llu is not %d-byte aligned",
                       name, (unsigned long long)sec->offset, MODEL_ALIGN);
    if (sec->offset < hsize)
      return recd_errf(eb, RECD_EFORMAT, "section %s: offset %llu is inside the %u-byte header",
                       name, (unsigned long long)sec->offset, hsize);
    /* Written as a subtraction so that offset + length cannot wrap. */
    if (sec->offset > size || sec->length > size - sec->offset)
      return recd_errf(eb, RECD_EFORMAT, "section %s: offset %llu + length %llu is past the "
                       "end of the file (%zu bytes)", name, (unsigned long long)sec->offset,
                       (unsigned long long)sec->length, size);
    if (formula[s] != NULL && sec->length != len[s])
      return recd_errf(eb, RECD_EFORMAT, "section %s: length %llu, expected %llu (%s)", name,
                       (unsigned long long)sec->length, (unsigned long long)len[s], formula[s]);
    if (sec->offset + sec->length > end)
      end = sec->offset + sec->length;
  }
  for (int s = 0; s < nsec; s++)
    for (int t = s + 1; t < nsec; t++) {
      const model__section_t *a = &h->sec[s], *c = &h->sec[t];
      if (a->length > 0 && c->length > 0 && a->offset < c->offset + c->length &&
          c->offset < a->offset + a->length)
        return recd_errf(eb, RECD_EFORMAT, "sections %s (%llu..%llu) and %s (%llu..%llu) "
                         "overlap", model__section_name[s], (unsigned long long)a->offset,
                         (unsigned long long)(a->offset + a->length), model__section_name[t],
                         (unsigned long long)c->offset,
                         (unsigned long long)(c->offset + c->length));
    }
  if (end != size)
    return recd_errf(eb, RECD_EFORMAT, "%llu bytes after the end of the last section",
                     (unsigned long long)(size - end));
  /* Every byte that belongs to no section is padding and must be zero: the
   * format has no hidden places, so two files with the same model are the
   * same bytes. Sections are visited in file order (selection by offset;
   * there are eight or eleven). */
  uint64_t pos = hsize;
  unsigned done = 0;
  for (int round = 0; round < nsec; round++) {
    int next = -1;
    for (int s = 0; s < nsec; s++)
      if (!(done & 1u << s) && (next < 0 || h->sec[s].offset < h->sec[next].offset))
        next = s;
    done |= 1u << next;
    for (; pos < h->sec[next].offset; pos++)
      if (b[pos] != 0)
        return recd_errf(eb, RECD_EFORMAT, "padding byte %llu before section %s is 0x%02x, "
                         "not 0", (unsigned long long)pos, model__section_name[next], b[pos]);
    if (h->sec[next].offset + h->sec[next].length > pos)
      pos = h->sec[next].offset + h->sec[next].length;
  }
  return 0;
}

/* ---- content ------------------------------------------------------------ */

/* Checks Y (finite, zero padding), computes the item norms and compares the
 * Gram matrix with Y. */
static int model__check_factors(model_t *m, char *eb) {
  const uint32_t n = m->h.n_items, k = m->h.k, stride = m->h.stride;
  double *colsq = calloc(k, sizeof *colsq);
  m->norms = malloc((size_t)n * sizeof *m->norms);
  if (colsq == NULL || m->norms == NULL) {
    free(colsq);
    return recd_errf(eb, RECD_ENOMEM, "out of memory for the norms of %u items", n);
  }
  int rc = 0;
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    const float *row = m->Y + (size_t)i * stride;
    double sq = 0;
    for (uint32_t j = 0; j < k; j++) {
      if (!isfinite(row[j])) {
        rc = recd_errf(eb, RECD_EFORMAT, "section Y: item %u, factor %u is %g (not finite)",
                       i, j, (double)row[j]);
        break;
      }
      double v = (double)row[j] * row[j];
      sq += v;
      colsq[j] += v;
    }
    /* The scoring kernels run over whole rows, padding included. */
    for (uint32_t j = k; j < stride && rc == 0; j++) {
      uint32_t bits;
      memcpy(&bits, &row[j], sizeof bits);
      if (bits != 0)
        rc = recd_errf(eb, RECD_EFORMAT, "section Y: item %u, padding float %u is not +0.0",
                       i, j);
    }
    m->norms[i] = (float)sqrt(sq);
    if (m->norms[i] > m->max_norm)
      m->max_norm = m->norms[i];
  }
  const float *g = m->gram;
  for (uint32_t i = 0; i < k && rc == 0; i++)
    for (uint32_t j = 0; j < k; j++) {
      float v = g[(size_t)i * k + j];
      if (!isfinite(v)) {
        rc = recd_errf(eb, RECD_EFORMAT, "section YtY: [%u][%u] is %g (not finite)", i, j,
                       (double)v);
        break;
      }
    }
  for (uint32_t i = 0; i < k && rc == 0; i++) {
    double d = g[(size_t)i * k + i];
    if (d < 0) {
      rc = recd_errf(eb, RECD_EFORMAT, "section YtY: diagonal [%u][%u] is negative (%g)", i, i,
                     d);
      break;
    }
    if (fabs(d - colsq[i]) > MODEL__DIAG_TOL * fmax(d, colsq[i]) + MODEL__TINY) {
      rc = recd_errf(eb, RECD_EFORMAT, "section YtY: diagonal [%u][%u] is %g but column %u of "
                     "Y has squared norm %g", i, i, d, i, colsq[i]);
      break;
    }
  }
  for (uint32_t i = 0; i < k && rc == 0; i++)
    for (uint32_t j = i + 1; j < k; j++) {
      double a = g[(size_t)i * k + j], c = g[(size_t)j * k + i];
      if (fabs(a - c) > MODEL__SYM_TOL * (fabs(a) + fabs(c)) + MODEL__TINY) {
        rc = recd_errf(eb, RECD_EFORMAT, "section YtY: not symmetric, [%u][%u] = %g but "
                       "[%u][%u] = %g", i, j, a, j, i, c);
        break;
      }
      /* Cauchy-Schwarz: an inner product never exceeds the product of the
       * norms; anything else is not a Gram matrix. */
      double lim = sqrt((double)g[(size_t)i * k + i] * g[(size_t)j * k + j]);
      if (fabs(a) > lim * (1 + MODEL__DIAG_TOL) + MODEL__TINY) {
        rc = recd_errf(eb, RECD_EFORMAT, "section YtY: |[%u][%u]| = %g exceeds the bound %g "
                       "from its diagonal", i, j, fabs(a), lim);
        break;
      }
    }
  free(colsq);
  return rc;
}

static int model__check_items(const model_t *m, char *eb) {
  for (uint32_t i = 0; i < m->h.n_items; i++) {
    float p = m->pop[i];
    if (!isfinite(p) || p < 0)
      return recd_errf(eb, RECD_EFORMAT, "section popularity: item %u is %g (must be finite "
                       "and >= 0)", i, (double)p);
    if (m->cat[i] > m->h.n_categories)
      return recd_errf(eb, RECD_EFORMAT, "section item_category: item %u has category %u, "
                       "n_categories is %u", i, m->cat[i], m->h.n_categories);
    if (m->grp[i] > m->h.n_groups)
      return recd_errf(eb, RECD_EFORMAT, "section item_group: item %u has group %u, "
                       "n_groups is %u", i, m->grp[i], m->h.n_groups);
  }
  return 0;
}

/* Checks one offsets + blob pair and interns every name into a fresh map.
 * `first` is 0 for items (0-based numbers in messages) and 1 for categories
 * and groups (which items refer to by 1-based number). */
static int model__check_names(const model_t *m, const char *what, uint32_t first,
                              int off_sec, int blob_sec, uint32_t n, idmap_t **out, char *eb) {
  const char *kind = first ? "name" : "id";
  const uint64_t *off = (const uint64_t *)(m->base + m->h.sec[off_sec].offset);
  const char *blob = (const char *)(m->base + m->h.sec[blob_sec].offset);
  const uint64_t blob_len = m->h.sec[blob_sec].length;
  if (off[0] != 0)
    return recd_errf(eb, RECD_EFORMAT, "section %s: first offset is %llu, not 0",
                     model__section_name[off_sec], (unsigned long long)off[0]);
  for (uint32_t i = 0; i < n; i++) {
    unsigned long long num = (unsigned long long)first + i;
    if (off[i + 1] <= off[i])
      return recd_errf(eb, RECD_EFORMAT, "%s %llu: %s offsets %llu..%llu (empty or "
                       "decreasing)", what, num, kind, (unsigned long long)off[i],
                       (unsigned long long)off[i + 1]);
    if (off[i + 1] - off[i] > MODEL_MAX_ID_LEN)
      return recd_errf(eb, RECD_EFORMAT, "%s %llu: %s of %llu bytes (max %d)", what, num, kind,
                       (unsigned long long)(off[i + 1] - off[i]), MODEL_MAX_ID_LEN);
  }
  /* Offsets rise, so this also bounds every name inside the blob. */
  if (off[n] != blob_len)
    return recd_errf(eb, RECD_EFORMAT, "section %s: length %llu, but the offsets end at %llu",
                     model__section_name[blob_sec], (unsigned long long)blob_len,
                     (unsigned long long)off[n]);
  idmap_t *map = idmap_new(n);
  if (map == NULL)
    return recd_errf(eb, RECD_ENOMEM, "out of memory for the %s map", what);
  for (uint32_t i = 0; i < n; i++) {
    const char *s = blob + off[i];
    size_t len = (size_t)(off[i + 1] - off[i]);
    uint32_t idx;
    int added = idmap_intern(map, s, len, &idx);
    if (added <= 0) {
      int rc;
      if (added < 0) {
        rc = recd_errf(eb, RECD_ENOMEM, "out of memory for the %s map", what);
      } else {
        char q[96];
        model__quote(s, len, q);
        rc = recd_errf(eb, RECD_EFORMAT, "%s %llu: duplicate %s %s (same as %s %llu)", what,
                       (unsigned long long)first + i, kind, q, what,
                       (unsigned long long)first + idx);
      }
      idmap_free(map);
      return rc;
    }
  }
  *out = map;
  return 0;
}

/* Validates m->base[0..size) and fills in the rest of m. The message goes to
 * eb without any file name; the caller prefixes it. */
static int model__validate(model_t *m, char *eb) {
  const unsigned char *b = m->base;
  int rc = model__check_identity(b, m->size, eb);
  if (rc == 0)
    rc = model__check_crc(b, m->size, eb);
  if (rc != 0)
    return rc;
  model__header_decode(b, &m->h);
  const model__header_t *h = &m->h;
  if ((rc = model__check_reserved(b, h->version, eb)) != 0 ||
      (rc = model__check_sizes(h, eb)) != 0)
    return rc;
  if ((rc = model__check_params(&h->params, h->k, RECD_EFORMAT, eb)) != 0 ||
      (rc = model__check_meta(&h->meta, RECD_EFORMAT, eb)) != 0)
    return rc;
  if ((rc = model__check_sections(h, b, m->size, eb)) != 0)
    return rc;
  /* Offsets are 64-byte aligned within a 64-byte aligned base, so these
   * typed views are properly aligned. */
  m->Y = (const float *)(b + h->sec[MODEL__SEC_Y].offset);
  m->gram = (const float *)(b + h->sec[MODEL__SEC_GRAM].offset);
  m->pop = (const float *)(b + h->sec[MODEL__SEC_POPULARITY].offset);
  m->cat = (const uint32_t *)(b + h->sec[MODEL__SEC_CATEGORY].offset);
  if (h->version >= 2) {
    m->grp = (const uint32_t *)(b + h->sec[MODEL__SEC_GROUP].offset);
  } else {
    /* Callers index model_item_groups() without asking for the version. */
    m->grp_zero = calloc(h->n_items, sizeof *m->grp_zero);
    if (m->grp_zero == NULL)
      return recd_errf(eb, RECD_ENOMEM, "out of memory for the groups of %u items",
                       h->n_items);
    m->grp = m->grp_zero;
  }
  if ((rc = model__check_factors(m, eb)) != 0 || (rc = model__check_items(m, eb)) != 0)
    return rc;
  /* After the factors are known finite, so that a NaN is reported as one. */
  if ((rc = model__check_serves(&h->meta, h->k, m->Y, h->stride, h->n_items, RECD_EFORMAT,
                                eb)) != 0)
    return rc;
  rc = model__check_names(m, "item", 0, MODEL__SEC_ID_OFFSETS, MODEL__SEC_ID_BLOB, h->n_items,
                          &m->ids, eb);
  if (rc == 0)
    rc = model__check_names(m, "category", 1, MODEL__SEC_CAT_OFFSETS, MODEL__SEC_CAT_BLOB,
                            h->n_categories, &m->cats, eb);
  if (rc == 0 && h->version >= 2)
    rc = model__check_names(m, "group", 1, MODEL__SEC_GRP_OFFSETS, MODEL__SEC_GRP_BLOB,
                            h->n_groups, &m->grps, eb);
  else if (rc == 0 && (m->grps = idmap_new(0)) == NULL)
    rc = recd_errf(eb, RECD_ENOMEM, "out of memory for the group map");
  return rc;
}

/* ---- public ------------------------------------------------------------- */

/* Copies msg into errbuf behind "path: ", shortening a long path from the
 * left so the message itself always fits. */
static void model__prefix(char *errbuf, int rc, const char *path, const char *msg) {
  size_t len = strlen(path);
  const size_t max = 100;
  if (len > max)
    recd_errf(errbuf, rc, "...%s: %s", path + len - (max - 3), msg);
  else
    recd_errf(errbuf, rc, "%s: %s", path, msg);
}

static int model__finish(model_t *m, model_t **out, const char *path, char *errbuf) {
  char msg[RECD_ERRLEN] = "";
  int rc = model__validate(m, msg);
  if (rc != 0) {
    if (path != NULL)
      model__prefix(errbuf, rc, path, msg);
    else
      recd_errf(errbuf, rc, "%s", msg);
    model_free(m);
    return rc;
  }
  *out = m;
  return 0;
}

/* Contract in model.h. On failure nothing stays mapped or allocated and the
 * message starts with the path. The file may be replaced (renamed over)
 * while loaded; it must never be modified in place or truncated, which
 * would change or SIGBUS the mapping (see models/FORMAT.md). */
int model_load(model_t **out, const char *path, char *errbuf) {
  *out = NULL;
  if (errbuf != NULL)
    errbuf[0] = '\0';
  if (path == NULL)
    return recd_errf(errbuf, RECD_EINVAL, "model_load: no path");
  /* The sections are used in place, so there is nowhere to byte-swap. */
  if (!model__host_is_little_endian())
    return recd_errf(errbuf, RECD_EFORMAT, "%s: model files are little-endian and this host "
                     "is not; recd does not byte-swap models", path);
  /* O_NONBLOCK: opening a FIFO (or a device) for reading would otherwise
   * block until a writer appears, hanging a reload thread and with it the
   * daemon's shutdown; S_ISREG below refuses it instead. It changes nothing
   * for regular files. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    return recd_errf(errbuf, e == ENOENT ? RECD_ENOTFOUND : RECD_EIO,
                     "cannot open model %s: %s", path, strerror(e));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return recd_errf(errbuf, RECD_EIO, "cannot stat model %s: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return recd_errf(errbuf, RECD_EFORMAT, "model %s is not a regular file", path);
  }
  if ((uintmax_t)st.st_size > SIZE_MAX) {
    close(fd);
    return recd_errf(errbuf, RECD_EFORMAT, "model %s is too large to map", path);
  }
  model_t *m = calloc(1, sizeof *m);
  if (m == NULL) {
    close(fd);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory loading %s", path);
  }
  m->size = (size_t)st.st_size;
  if (m->size == 0) {
    /* mmap() refuses length 0; an empty file still deserves the usual
     * "not a recd model file" verdict. */
    static unsigned char empty[1];
    m->base = empty;
    m->mapped = -1;
  } else {
    void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      close(fd);
      free(m);
      return recd_errf(errbuf, RECD_EIO, "cannot map model %s: %s", path, strerror(e));
    }
    m->base = p;
    m->mapped = 1;
  }
  /* The mapping keeps the file alive; the descriptor is no longer needed. */
  close(fd);
  return model__finish(m, out, path, errbuf);
}

/* Contract in model.h. The caller keeps ownership of `data`; the model owns
 * its own 64-byte aligned copy. Messages carry no file name. */
int model_load_buffer(model_t **out, const void *data, size_t len, char *errbuf) {
  *out = NULL;
  if (errbuf != NULL)
    errbuf[0] = '\0';
  if (!model__host_is_little_endian())
    return recd_errf(errbuf, RECD_EFORMAT, "model files are little-endian and this host is "
                     "not; recd does not byte-swap models");
  if (data == NULL && len > 0)
    return recd_errf(errbuf, RECD_EINVAL, "model_load_buffer: NULL data of %zu bytes", len);
  model_t *m = calloc(1, sizeof *m);
  /* The copy gets the alignment a mapping would have, so the typed views
   * are aligned whatever the caller's buffer was. aligned_alloc() wants a
   * size that is a multiple of the alignment. */
  size_t cap = len / MODEL_ALIGN * MODEL_ALIGN + MODEL_ALIGN;
  unsigned char *copy = cap > len ? aligned_alloc(MODEL_ALIGN, cap) : NULL;
  if (m == NULL || copy == NULL) {
    free(m);
    free(copy);
    return recd_errf(errbuf, RECD_ENOMEM, "out of memory copying a %zu-byte model", len);
  }
  if (len > 0)
    memcpy(copy, data, len);
  m->base = copy;
  m->size = len;
  m->mapped = 0;
  return model__finish(m, out, NULL, errbuf);
}

/* Releases the mapping (or copy), the norms and both maps; NULL is a no-op.
 * Every pointer obtained from the accessors dies here. */
void model_free(model_t *m) {
  if (m == NULL)
    return;
  foldin_forget(model_gram(m)); /* its fold-in caches die with it */
  idmap_free(m->ids);
  idmap_free(m->cats);
  idmap_free(m->grps);
  free(m->grp_zero);
  free(m->norms);
  if (m->mapped == 1)
    munmap(m->base, m->size);
  else if (m->mapped == 0)
    free(m->base);
  free(m);
}

/* Accessors (contracts in model.h): O(1), never fail on a loaded model, and
 * return pointers into the model that live until model_free(). */
uint32_t model_n_items(const model_t *m) { return m->h.n_items; }
uint32_t model_factors(const model_t *m) { return m->h.k; }
uint32_t model_stride(const model_t *m) { return m->h.stride; }
const params_t *model_params(const model_t *m) { return &m->h.params; }
const model_meta_t *model_meta(const model_t *m) { return &m->h.meta; }
const float *model_item_factors(const model_t *m) { return m->Y; }
const float *model_gram(const model_t *m) { return m->gram; }
const float *model_popularity(const model_t *m) { return m->pop; }
const float *model_item_norms(const model_t *m) { return m->norms; }
float model_max_item_norm(const model_t *m) { return m->max_norm; }
const uint32_t *model_item_categories(const model_t *m) { return m->cat; }
uint32_t model_n_categories(const model_t *m) { return m->h.n_categories; }
const uint32_t *model_item_groups(const model_t *m) { return m->grp; }
uint32_t model_n_groups(const model_t *m) { return m->h.n_groups; }
uint32_t model_version(const model_t *m) { return m->h.version; }
uint32_t model_checksum(const model_t *m) { return m->h.checksum; }
size_t model_file_size(const model_t *m) { return m->size; }

/* The id of item i (the map's copy, which happens to be NUL-terminated; the
 * contract only promises `*len` bytes). NULL with *len = 0 when i is out of
 * range. */
const char *model_item_id(const model_t *m, uint32_t i, size_t *len) {
  if (i >= m->h.n_items) {
    if (len != NULL)
      *len = 0;
    return NULL;
  }
  return idmap_key(m->ids, i, len);
}

/* O(1) through the seeded id map; -1 for an unknown id. */
int64_t model_find_item(const model_t *m, const char *id, size_t len) {
  return idmap_get(m->ids, id, len);
}

/* Name of category c in 1..n_categories; NULL with *len = 0 otherwise
 * (including 0, "no category"). */
const char *model_category_name(const model_t *m, uint32_t c, size_t *len) {
  if (c < 1 || c > m->h.n_categories) {
    if (len != NULL)
      *len = 0;
    return NULL;
  }
  return idmap_key(m->cats, c - 1, len);
}

/* 1-based category number of a name, 0 when unknown. */
uint32_t model_find_category(const model_t *m, const char *name, size_t len) {
  int64_t idx = idmap_get(m->cats, name, len);
  return idx < 0 ? 0 : (uint32_t)idx + 1;
}

/* Name of group g in 1..n_groups; NULL with *len = 0 otherwise (including
 * 0, "no group"). */
const char *model_group_name(const model_t *m, uint32_t g, size_t *len) {
  if (g < 1 || g > m->h.n_groups) {
    if (len != NULL)
      *len = 0;
    return NULL;
  }
  return idmap_key(m->grps, g - 1, len);
}

/* 1-based group number of a name, 0 when unknown. */
uint32_t model_find_group(const model_t *m, const char *name, size_t len) {
  int64_t idx = idmap_get(m->grps, name, len);
  return idx < 0 ? 0 : (uint32_t)idx + 1;
}
