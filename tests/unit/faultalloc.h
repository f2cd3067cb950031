/* faultalloc.h - allocation counting and failure injection for tests, in the
 * style of SQLite's malloc tests.
 *
 * A test executable linked with faultalloc.c and the GNU linker's
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,
 *   --wrap=aligned_alloc,--wrap=posix_memalign,--wrap=strdup,--wrap=strndup,
 *   --wrap=realpath,--wrap=getline,--wrap=getdelim
 * has every call to those functions made by the objects linked statically
 * into it (the test, recdcore, recdd, testutil.c and the static Check
 * library) routed through the __wrap_* functions of faultalloc.c. The
 * production code is unchanged: the redirection is done by the linker.
 * Allocations made inside shared libraries (libc's own, OpenBLAS, libuv,
 * hiredis, zlib) are not seen, neither counted nor failed.
 *
 * Live count: every pointer returned through a wrapper is remembered in a
 * private open-addressing table (allocated with the __real_ functions) until
 * it is freed through a wrapper. A free() of a pointer the table does not
 * hold (memory that libc or a shared library allocated and our code frees)
 * changes nothing, so the count cannot drift; memory that we allocate and a
 * shared library frees internally would stay counted (recd does not do
 * that). fa_live() is the number of such pointers: a test reads it before an
 * operation and checks it is back after the cleanup, which finds a leak
 * without ASan.
 *
 * Failure injection: fa_arm(n, persistent) makes the n-th allocation from
 * now (1 = the next one) fail, returning NULL with errno = ENOMEM (or ENOMEM
 * from posix_memalign, or -1/ENOMEM from getline), and with `persistent`
 * every later one too, until fa_disarm(). realloc(p, 0) and free() are never
 * failed: they release memory. The check
 *
 *   for (unsigned long n = 1;; n++) {
 *     fa_arm(n, 0); rc = op(); failed = fa_failed(); fa_disarm();
 *     if (failed == 0) break;   // op made fewer than n allocations: done
 *     ... rc must be a clean RECD_ENOMEM, nothing leaked, op works again ...
 *   }
 *
 * visits every allocation of the operation. Do nothing between fa_arm() and
 * fa_disarm() but the operation: Check itself allocates (ck_assert sends
 * its location to the parent in fork mode), and an injected failure there
 * aborts the test runner.
 *
 * Thread safety: the table and the counters are guarded by one mutex, so
 * allocations on other threads (a libuv thread pool, the trainer's threads)
 * are counted and failed as well; "the n-th allocation" is then the n-th
 * in the order the threads happened to take the lock, and fa_failed() says
 * whether the armed one was reached. Works under ASan: __real_malloc is the
 * sanitizer's malloc.
 */
#ifndef RECD_FAULTALLOC_H
#define RECD_FAULTALLOC_H

#include <stddef.h>

/* Arms the injector: allocation number n (n >= 1) counted from this call
 * fails, and with persistent != 0 every one after it as well. n == 0 counts
 * without failing anything. Resets fa_count() and fa_failed(). */
void fa_arm(unsigned long n, int persistent);
/* Stops failing allocations (the counters are kept). */
void fa_disarm(void);

/* Allocations attempted through the wrappers since the last fa_arm() (or
 * since the start), failed ones included. */
unsigned long fa_count(void);
/* Allocations failed on purpose since the last fa_arm(). */
unsigned long fa_failed(void);
/* Pointers returned by the wrappers and not yet freed through them. */
size_t fa_live(void);
/* Their requested sizes, summed (a getline buffer counts its capacity). */
size_t fa_live_bytes(void);
/* Return address of the call that received the last injected failure
 * (NULL if none): `addr2line -e test_fault -f <addr - load base>`. */
void *fa_last_failure_site(void);

#endif
