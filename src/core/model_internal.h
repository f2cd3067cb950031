/* model_internal.h - byte layout of the model file, shared by the writer
 * (model_write.c), the loader (model_load.c) and the tests.
 *
 * models/FORMAT.md is the prose version of this file; the two must change
 * together. Every offset below is a byte offset from the start of the file
 * and every multi-byte value is little-endian.
 */
#ifndef RECD_MODEL_INTERNAL_H
#define RECD_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "recd/model.h"

#define MODEL__MAGIC "RECDMDL" /* 7 letters + the terminating NUL = 8 bytes */
#define MODEL__MAGIC_LEN 8
#define MODEL__BYTE_ORDER_MARK 0x01020304u /* reads 0x04030201 if byte-swapped */
/* Version 1 has a 384-byte header and 8 sections; version 2 a 512-byte
 * header and 11 (the three group sections appended), plus n_groups and the
 * EASE metrics. Everything version 1 defines keeps its offset in version 2
 * except the reserved bytes that version 2 puts to use. Version 3 is
 * version 2 with its reserved bytes put to use (has_recent, serves,
 * eval_split, half_life_days, tuned_at, recent_popularity): same size, same
 * sections, no reserved byte left. */
#define MODEL__HEADER_SIZE_V1 384u
#define MODEL__HEADER_SIZE 512u     /* versions 2 and 3 */
/* The checksum covers bytes [MODEL__CRC_START, file size): everything but
 * the magic and the checksum field itself, which sit together at the start
 * so that the covered range is one contiguous run. */
#define MODEL__CRC_START 12u

/* Header fields (offset of each). */
enum {
  MODEL__OFF_MAGIC = 0,          /* u8[8] */
  MODEL__OFF_CHECKSUM = 8,       /* u32 */
  MODEL__OFF_VERSION = 12,       /* u32 */
  MODEL__OFF_HEADER_SIZE = 16,   /* u32 */
  MODEL__OFF_BYTE_ORDER = 20,    /* u32 */
  MODEL__OFF_FILE_SIZE = 24,     /* u64 */
  MODEL__OFF_N_ITEMS = 32,       /* u32 */
  MODEL__OFF_K = 36,             /* u32 */
  MODEL__OFF_STRIDE = 40,        /* u32 */
  MODEL__OFF_N_CATEGORIES = 44,  /* u32 */
  /* params_t */
  MODEL__OFF_P_FACTORS = 48,     /* u32 */
  MODEL__OFF_P_ITERATIONS = 52,  /* u32 */
  MODEL__OFF_P_CONF_MODE = 56,   /* u32 */
  MODEL__OFF_P_CG_STEPS = 60,    /* u32 */
  MODEL__OFF_P_LAMBDA = 64,      /* f32 */
  MODEL__OFF_P_ALPHA = 68,       /* f32 */
  MODEL__OFF_P_EPS = 72,         /* f32 */
  MODEL__OFF_P_REG_EXPONENT = 76,/* f32 */
  MODEL__OFF_P_SEED = 80,        /* u64 */
  /* model_meta_t */
  MODEL__OFF_M_CREATED_AT = 88,      /* i64 */
  MODEL__OFF_M_N_USERS = 96,         /* u64 */
  MODEL__OFF_M_N_INTERACTIONS = 104, /* u64 */
  MODEL__OFF_M_TRAIN_SECONDS = 112,  /* f64 */
  MODEL__OFF_M_HOLDOUT_FRACTION = 120, /* f64 */
  MODEL__OFF_M_HOLDOUT_USERS = 128,  /* u64 */
  MODEL__OFF_M_MODEL = 136,          /* 5 x f64: precision recall ndcg map coverage */
  MODEL__OFF_M_POPULARITY = 176,     /* 5 x f64, same order */
  MODEL__OFF_M_SCORE_SCALE = 216,    /* f32 */
  MODEL__OFF_RESERVED0 = 220,        /* v1: u32, must be 0 */
  MODEL__OFF_N_GROUPS = 220,         /* v2: u32 (the same bytes) */
  MODEL__OFF_SECTIONS = 224,         /* n_sections x (u64 offset, u64 length) */
  MODEL__OFF_RESERVED1 = 352,        /* v1: up to 384, must be 0 */
  /* version 2 and later: */
  MODEL__OFF_M_HAS_EASE = 400,       /* u32, 0 or 1 */
  MODEL__OFF_RESERVED2 = 404,        /* v2: u32, must be 0 */
  MODEL__OFF_M_HAS_RECENT = 404,     /* v3: u32, 0 or 1 (the same bytes) */
  MODEL__OFF_M_EASE = 408,           /* 5 x f64, same order as meta.model */
  MODEL__OFF_RESERVED3 = 448,        /* v2: up to 512, must be 0 */
  /* version 3 (v2's reserved bytes [448, 512)): */
  MODEL__OFF_M_SERVES = 448,         /* u32, MODEL_SERVES_* */
  MODEL__OFF_M_EVAL_SPLIT = 452,     /* u32, MODEL_SPLIT_* */
  MODEL__OFF_M_HALF_LIFE_DAYS = 456, /* f64 */
  MODEL__OFF_M_TUNED_AT = 464,       /* i64 */
  MODEL__OFF_M_RECENT = 472          /* 5 x f64, same order as meta.model; to 512 */
};

/* Sections, in the order of the section table (and of the file, as written). */
enum {
  MODEL__SEC_Y = 0,        /* n_items x stride f32 */
  MODEL__SEC_GRAM,         /* k x k f32, YtY row-major */
  MODEL__SEC_POPULARITY,   /* n_items f32 */
  MODEL__SEC_CATEGORY,     /* n_items u32 */
  MODEL__SEC_ID_OFFSETS,   /* n_items + 1 u64 */
  MODEL__SEC_ID_BLOB,      /* id bytes */
  MODEL__SEC_CAT_OFFSETS,  /* n_categories + 1 u64 */
  MODEL__SEC_CAT_BLOB,     /* category name bytes */
  MODEL__SEC_GROUP,        /* v2: n_items u32 */
  MODEL__SEC_GRP_OFFSETS,  /* v2: n_groups + 1 u64 */
  MODEL__SEC_GRP_BLOB,     /* v2: group name bytes */
  MODEL__N_SECTIONS
};
#define MODEL__N_SECTIONS_V1 8

typedef struct model__section {
  uint64_t offset;
  uint64_t length;
} model__section_t;

/* The decoded header. */
typedef struct model__header {
  uint32_t checksum, version, header_size, byte_order;
  uint64_t file_size;
  uint32_t n_items, k, stride, n_categories;
  uint32_t n_groups;    /* 0 in version 1 */
  params_t params;
  model_meta_t meta;
  model__section_t sec[MODEL__N_SECTIONS]; /* v1: the last 3 are all 0 */
} model__header_t;

/* Header size and section count of a version (1, 2 or 3). */
uint32_t model__header_size(uint32_t version);
int model__n_sections(uint32_t version);

/* Section names as used in messages and in FORMAT.md. */
extern const char *const model__section_name[MODEL__N_SECTIONS];

/* Little-endian field access; byte by byte, so alignment and host order do
 * not matter for the header. */
uint32_t model__get_u32(const unsigned char *p);
uint64_t model__get_u64(const unsigned char *p);
void model__put_u32(unsigned char *p, uint32_t v);
void model__put_u64(unsigned char *p, uint64_t v);

/* Serialises h into the first model__header_size(h->version) bytes of buf
 * (reserved bytes zeroed), with the fields and sections of that version. The
 * magic is written, the checksum field is h->checksum. */
void model__header_encode(const model__header_t *h, unsigned char *buf);
/* Decodes a header of the version stored at MODEL__OFF_VERSION (a version
 * other than 2 or 3 is decoded as version 1); buf must hold
 * model__header_size() of that version. No validation; fields a version
 * does not have are 0. */
void model__header_decode(const unsigned char *buf, model__header_t *h);

/* Floats per Y row for k factors: k rounded up to a whole 64-byte line. */
uint32_t model__stride_for(uint32_t k);

/* 1 when the host stores integers little-endian (the only layout whose
 * mapped sections can be used in place). */
int model__host_is_little_endian(void);

/* Validate the hyperparameters and metadata for k factors. Shared by writer
 * and loader so that everything written is loadable. Return 0, or a RECD_E*
 * code (`err`) with a message naming the field in errbuf. */
int model__check_params(const params_t *p, uint32_t k, int err, char *errbuf);
int model__check_meta(const model_meta_t *m, int err, char *errbuf);
/* A popularity model (meta.serves != ALS) must be what serving it assumes:
 * k = 1 and every factor >= 0 (so a folded-in customer is a positive
 * multiple of it). Y has n rows of ldy floats. Same return convention. */
int model__check_serves(const model_meta_t *m, uint32_t k, const float *Y, size_t ldy,
                        uint32_t n, int err, char *errbuf);

/* Expected length in bytes of each fixed-size section (the three blobs get
 * 0: their length comes from the offset tables). Returns 0, or -1 when a
 * length overflows 64 bits (which no file can satisfy). */
int model__section_lengths(uint32_t n_items, uint32_t k, uint32_t stride,
                           uint32_t n_categories, uint32_t n_groups,
                           uint64_t len[MODEL__N_SECTIONS]);

/* Writes a printable rendering of an id (at most 92 characters, non-printable
 * bytes as \xNN, "..." when cut) into out[96]. For messages only. */
void model__quote(const char *id, size_t len, char out[96]);

#endif
