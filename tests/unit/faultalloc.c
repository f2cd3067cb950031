/* faultalloc.c - the __wrap_* allocation functions behind faultalloc.h.
 *
 * Bookkeeping: an open-addressing hash table (linear probing, backward-shift
 * deletion, so no tombstones) from pointer to requested size, grown at half
 * load. It is allocated with __real_calloc/__real_free, which never come
 * back here, so the wrappers do not recurse. One mutex guards the table and
 * the counters; the real allocation runs outside it. The order of table
 * updates is what keeps the count exact with several threads: free()
 * forgets a pointer before releasing it, malloc() records one after
 * obtaining it, so an address is never in the table while another thread
 * can be handed it by the real allocator.
 */
#include "faultalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The real functions (the linker resolves __real_x to x: libc's, or the
 * sanitizer's interceptor) ... */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_posix_memalign(void **out, size_t align, size_t size);
char *__real_realpath(const char *path, char *resolved);
ssize_t __real_getdelim(char **line, size_t *cap, int delim, FILE *fp);
/* ... and the wrappers every call of the test executable is routed to. */
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void __wrap_free(void *p);
void *__wrap_aligned_alloc(size_t align, size_t size);
int __wrap_posix_memalign(void **out, size_t align, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
char *__wrap_realpath(const char *path, char *resolved);
ssize_t __wrap_getline(char **line, size_t *cap, FILE *fp);
ssize_t __wrap_getdelim(char **line, size_t *cap, int delim, FILE *fp);

typedef struct fa_slot {
  uintptr_t p; /* 0 = empty */
  size_t size;
} fa_slot_t;

static pthread_mutex_t fa_lock = PTHREAD_MUTEX_INITIALIZER;
static fa_slot_t *fa_tab;    /* fa_cap slots, a power of two */
static size_t fa_cap, fa_n;  /* slots, pointers held */
static size_t fa_bytes;      /* their sizes, summed */
static unsigned long fa_calls, fa_fails;
static unsigned long fa_target; /* 0 = disarmed */
static int fa_persist;
static void *fa_site;

static size_t fa_hash(uintptr_t p) {
  /* The murmur3 finaliser: every address bit reaches the low bits that
   * index the table (allocations are 16-byte aligned and clustered). */
  uint64_t h = (uint64_t)p;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return (size_t)h;
}

static void fa_die(const char *what) {
  fprintf(stderr, "faultalloc: %s\n", what);
  abort();
}

static void fa_put_slot(fa_slot_t *tab, size_t cap, uintptr_t p, size_t size) {
  size_t i = fa_hash(p) & (cap - 1);
  while (tab[i].p != 0)
    i = (i + 1) & (cap - 1);
  tab[i].p = p;
  tab[i].size = size;
}

/* Records p (lock held). A pointer already present (a libc-internal free
 * we could not see, then the same address handed to us again) is updated
 * in place. */
static void fa_insert(void *ptr, size_t size) {
  uintptr_t p = (uintptr_t)ptr;
  if ((fa_n + 1) * 2 > fa_cap) {
    size_t cap = fa_cap ? fa_cap * 2 : 4096;
    fa_slot_t *tab = __real_calloc(cap, sizeof *tab);
    if (tab == NULL)
      fa_die("cannot grow the pointer table");
    for (size_t i = 0; i < fa_cap; i++)
      if (fa_tab[i].p != 0)
        fa_put_slot(tab, cap, fa_tab[i].p, fa_tab[i].size);
    __real_free(fa_tab);
    fa_tab = tab;
    fa_cap = cap;
  }
  size_t i = fa_hash(p) & (fa_cap - 1);
  for (; fa_tab[i].p != 0; i = (i + 1) & (fa_cap - 1)) {
    if (fa_tab[i].p == p) {
      fa_bytes -= fa_tab[i].size;
      fa_tab[i].size = size;
      fa_bytes += size;
      return;
    }
  }
  fa_tab[i].p = p;
  fa_tab[i].size = size;
  fa_n++;
  fa_bytes += size;
}

/* Forgets p (lock held). Returns 1 if it was recorded (*size: its size),
 * 0 if not (memory that libc or a shared library allocated): then nothing
 * changes. */
static int fa_remove(void *ptr, size_t *size) {
  uintptr_t p = (uintptr_t)ptr;
  if (fa_cap == 0)
    return 0;
  const size_t mask = fa_cap - 1;
  size_t i = fa_hash(p) & mask;
  for (; fa_tab[i].p != p; i = (i + 1) & mask)
    if (fa_tab[i].p == 0)
      return 0;
  *size = fa_tab[i].size;
  fa_bytes -= fa_tab[i].size;
  fa_n--;
  /* Backward-shift deletion: move up every later entry of the run whose
   * home slot is not between the hole and itself (cyclically). */
  size_t hole = i;
  for (size_t j = (i + 1) & mask; fa_tab[j].p != 0; j = (j + 1) & mask) {
    size_t home = fa_hash(fa_tab[j].p) & mask;
    int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      fa_tab[hole] = fa_tab[j];
      hole = j;
    }
  }
  fa_tab[hole].p = 0;
  fa_tab[hole].size = 0;
  return 1;
}

/* Counts one allocation and says whether it must fail (lock not held). */
static int fa_tick(void *site) {
  pthread_mutex_lock(&fa_lock);
  unsigned long c = ++fa_calls;
  int fail = fa_target != 0 && (c == fa_target || (fa_persist && c > fa_target));
  if (fail) {
    fa_fails++;
    fa_site = site;
  }
  pthread_mutex_unlock(&fa_lock);
  return fail;
}

static void *fa_track(void *p, size_t size) {
  if (p != NULL) {
    pthread_mutex_lock(&fa_lock);
    fa_insert(p, size);
    pthread_mutex_unlock(&fa_lock);
  }
  return p;
}

static int fa_untrack(void *p, size_t *size) {
  size_t dummy;
  pthread_mutex_lock(&fa_lock);
  int known = fa_remove(p, size != NULL ? size : &dummy);
  pthread_mutex_unlock(&fa_lock);
  return known;
}

/* ---- the wrappers ------------------------------------------------------ */

static void *fa_malloc_at(size_t size, void *site) {
  if (fa_tick(site)) {
    errno = ENOMEM;
    return NULL;
  }
  return fa_track(__real_malloc(size), size);
}

void *__wrap_malloc(size_t size) {
  return fa_malloc_at(size, __builtin_return_address(0));
}

void *__wrap_calloc(size_t n, size_t size) {
  if (fa_tick(__builtin_return_address(0))) {
    errno = ENOMEM;
    return NULL;
  }
  return fa_track(__real_calloc(n, size), n * size);
}

void *__wrap_realloc(void *p, size_t size) {
  if (p == NULL)
    return fa_malloc_at(size, __builtin_return_address(0));
  if (size != 0 && fa_tick(__builtin_return_address(0))) {
    errno = ENOMEM; /* p stays valid and recorded */
    return NULL;
  }
  /* Forget p before the real call: once it returns, p may already belong
   * to another thread's allocation. */
  size_t old = 0;
  int known = fa_untrack(p, &old);
  void *q = __real_realloc(p, size);
  if (q != NULL)
    return fa_track(q, size); /* also adopts a block libc had allocated */
  if (size != 0 && known)
    fa_track(p, old); /* a real failure: p is still ours */
  return NULL;
}

void __wrap_free(void *p) {
  if (p == NULL)
    return;
  fa_untrack(p, NULL);
  __real_free(p);
}

void *__wrap_aligned_alloc(size_t align, size_t size) {
  if (fa_tick(__builtin_return_address(0))) {
    errno = ENOMEM;
    return NULL;
  }
  return fa_track(__real_aligned_alloc(align, size), size);
}

int __wrap_posix_memalign(void **out, size_t align, size_t size) {
  if (fa_tick(__builtin_return_address(0)))
    return ENOMEM; /* *out untouched, as POSIX says */
  int rc = __real_posix_memalign(out, align, size);
  if (rc == 0)
    fa_track(*out, size);
  return rc;
}

/* strdup and strndup are written here over the counted malloc rather than
 * forwarded: one allocation, one count, whatever libc's does inside. */
char *__wrap_strdup(const char *s) {
  size_t len = strlen(s);
  char *d = fa_malloc_at(len + 1, __builtin_return_address(0));
  if (d != NULL)
    memcpy(d, s, len + 1);
  return d;
}

char *__wrap_strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *d = fa_malloc_at(len + 1, __builtin_return_address(0));
  if (d != NULL) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

/* realpath(path, NULL) allocates its answer inside libc: counted, failable
 * and recorded like a malloc. With a caller's buffer it allocates nothing
 * the caller frees, and is passed through. */
char *__wrap_realpath(const char *path, char *resolved) {
  if (resolved != NULL)
    return __real_realpath(path, resolved);
  if (fa_tick(__builtin_return_address(0))) {
    errno = ENOMEM;
    return NULL;
  }
  char *r = __real_realpath(path, NULL);
  return fa_track(r, r != NULL ? strlen(r) + 1 : 0);
}

/* getdelim may grow *line with libc's realloc: the old pointer is forgotten
 * before the call and whatever *line is afterwards recorded (it is the
 * caller's to free, whatever the result). Every call counts as one
 * allocation, because whether it needs to grow cannot be known before. */
static ssize_t fa_getdelim_at(char **line, size_t *cap, int delim, FILE *fp, void *site) {
  if (fa_tick(site)) {
    errno = ENOMEM;
    return -1;
  }
  if (*line != NULL)
    fa_untrack(*line, NULL);
  ssize_t r = __real_getdelim(line, cap, delim, fp);
  if (*line != NULL)
    fa_track(*line, *cap);
  return r;
}

ssize_t __wrap_getdelim(char **line, size_t *cap, int delim, FILE *fp) {
  return fa_getdelim_at(line, cap, delim, fp, __builtin_return_address(0));
}

ssize_t __wrap_getline(char **line, size_t *cap, FILE *fp) {
  return fa_getdelim_at(line, cap, '\n', fp, __builtin_return_address(0));
}

/* ---- control ----------------------------------------------------------- */

void fa_arm(unsigned long n, int persistent) {
  pthread_mutex_lock(&fa_lock);
  fa_calls = 0;
  fa_fails = 0;
  fa_site = NULL;
  fa_target = n;
  fa_persist = persistent != 0;
  pthread_mutex_unlock(&fa_lock);
}

void fa_disarm(void) {
  pthread_mutex_lock(&fa_lock);
  fa_target = 0;
  fa_persist = 0;
  pthread_mutex_unlock(&fa_lock);
}

unsigned long fa_count(void) {
  pthread_mutex_lock(&fa_lock);
  unsigned long c = fa_calls;
  pthread_mutex_unlock(&fa_lock);
  return c;
}

unsigned long fa_failed(void) {
  pthread_mutex_lock(&fa_lock);
  unsigned long f = fa_fails;
  pthread_mutex_unlock(&fa_lock);
  return f;
}

size_t fa_live(void) {
  pthread_mutex_lock(&fa_lock);
  size_t n = fa_n;
  pthread_mutex_unlock(&fa_lock);
  return n;
}

size_t fa_live_bytes(void) {
  pthread_mutex_lock(&fa_lock);
  size_t b = fa_bytes;
  pthread_mutex_unlock(&fa_lock);
  return b;
}

void *fa_last_failure_site(void) {
  pthread_mutex_lock(&fa_lock);
  void *s = fa_site;
  pthread_mutex_unlock(&fa_lock);
  return s;
}
