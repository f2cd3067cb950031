/* faultloop.c - see faultloop.h. */
#define _GNU_SOURCE /* dladdr */
#include "faultloop.h"

#include <check.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "faultalloc.h"
#include "recd/err.h"

/* "test_fault+0x1a2b3" for a code address: `addr2line -f -e <binary> 0x1a2b3`
 * names the function and line that received the failed allocation. */
static const char *fault_where(void *site, char *buf, size_t size) {
  Dl_info info;
  if (site != NULL && dladdr(site, &info) != 0 && info.dli_fname != NULL) {
    const char *base = strrchr(info.dli_fname, '/');
    snprintf(buf, size, "%s+%#lx", base ? base + 1 : info.dli_fname,
             (unsigned long)((char *)site - (char *)info.dli_fbase));
  } else {
    snprintf(buf, size, "%p", site);
  }
  return buf;
}

static void fault_finish(const fault_op_t *op, void *c) {
  if (op->undo != NULL)
    op->undo(c);
  if (op->teardown != NULL)
    op->teardown(c);
}

unsigned long fault_loop(const fault_op_t *op, void *c, int persistent) {
  const char *mode = persistent ? "persistent" : "transient";
  for (unsigned long n = 1; n <= FAULT_MAX_N; n++) {
    const size_t live0 = fa_live();
    if (op->setup != NULL)
      op->setup(c);
    char err[RECD_ERRLEN] = "";
    /* Nothing but the operation between arm and disarm: Check allocates. */
    fa_arm(n, persistent);
    int rc = op->run(c, err);
    const unsigned long failed = fa_failed(), count = fa_count();
    void *site_addr = fa_last_failure_site();
    fa_disarm();
    char site[256];
    fault_where(site_addr, site, sizeof site);
    if (failed == 0) {
      ck_assert_msg(rc == 0, "%s: a run with no failed allocation returned %d (%s): %s",
                    op->name, rc, recd_err_name(rc), err);
      ck_assert_msg(count == n - 1, "%s: %lu allocations after %lu in the previous run: "
                    "the operation is not deterministic", op->name, count, n - 1);
      if (op->check != NULL)
        op->check(c);
      fault_finish(op, c);
      ck_assert_msg(fa_live() == live0, "%s: a complete run leaked %zd allocations", op->name,
                    (ssize_t)(fa_live() - live0));
      return count;
    }
    if (rc == 0 && op->degraded != NULL) {
      op->degraded(c);
    } else {
      ck_assert_msg(rc == RECD_ENOMEM, "%s (%s): allocation %lu (called from %s) failed, the "
                    "operation returned %d (%s) '%s' instead of RECD_ENOMEM", op->name, mode,
                    n, site, rc, recd_err_name(rc), err);
      if (op->has_msg)
        ck_assert_msg(strstr(err, "out of memory") != NULL, "%s (%s): allocation %lu failed, "
                      "message '%s'", op->name, mode, n, err);
      if (op->after_fail != NULL)
        op->after_fail(c, rc);
    }
    if (op->undo != NULL)
      op->undo(c);
    if (op->recover != NULL)
      op->recover(c);
    err[0] = '\0';
    rc = op->run(c, err);
    ck_assert_msg(rc == 0, "%s (%s): after allocation %lu failed, the unarmed retry returned "
                  "%d (%s) '%s'", op->name, mode, n, rc, recd_err_name(rc), err);
    if (op->check != NULL)
      op->check(c);
    fault_finish(op, c);
    ck_assert_msg(fa_live() == live0, "%s (%s): allocation %lu (called from %s) failed: %zd "
                  "allocations leaked", op->name, mode, n, site,
                  (ssize_t)(fa_live() - live0));
  }
  ck_abort_msg("%s: more than %lu allocations", op->name, FAULT_MAX_N);
  return 0;
}

static double fault_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

unsigned long fault_check(const fault_op_t *op, void *c) {
  const double t0 = fault_now();
  unsigned long t = fault_loop(op, c, 0);
  unsigned long p = fault_loop(op, c, 1);
  ck_assert_msg(t == p, "%s: %lu allocations in one loop, %lu in the other", op->name, t, p);
  fprintf(stderr, "fault: %-42s %4lu allocations, each failed alone and onwards (%.0f ms)\n",
          op->name, t, (fault_now() - t0) * 1e3);
  return t;
}
