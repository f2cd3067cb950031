/* faultloop.h - the SQLite-style fault loop over one operation, for the
 * Check suites linked with faultalloc.c (test_fault, test_fault_reload).
 *
 * fault_check(op, ctx) runs op->run with allocation n failing, for n = 1,
 * 2, ... until a run completes without reaching allocation n; then again
 * with allocation n and every later one failing. At every n it asserts:
 *  - the run returned RECD_ENOMEM (and, when op->has_msg, a message with
 *    "out of memory"), unless op->degraded accepts a success: an operation
 *    documented to go on without that memory;
 *  - op->after_fail's checks of the documented state after the failure;
 *  - the unarmed retry on the same state (after op->recover) succeeds and
 *    passes op->check;
 *  - after op->undo and op->teardown, fa_live() is back where it was
 *    before op->setup: nothing leaked.
 * A crash is caught by Check's fork mode (and ASan). Returns the number of
 * allocations of a complete run, and prints it.
 */
#ifndef RECD_FAULTLOOP_H
#define RECD_FAULTLOOP_H

/* More allocations than any operation tested makes: a loop that gets there
 * has an operation that never stops allocating. */
#define FAULT_MAX_N 100000ul

/* One operation under test. `run` is the only hook that runs armed; the
 * others run unarmed and may be NULL. Nothing but the operation may run in
 * `run`, and no Check call: Check allocates (and aborts when it cannot). */
typedef struct fault_op {
  const char *name;
  int has_msg;                         /* run's API writes a message to err */
  void (*setup)(void *c);              /* fresh state for one attempt */
  int (*run)(void *c, char *err);      /* the operation: 0 or a RECD_E* code;
                                          err has RECD_ERRLEN bytes */
  void (*after_fail)(void *c, int rc); /* the documented state after ENOMEM */
  void (*degraded)(void *c);           /* run succeeded although an allocation
                                          failed: checks the documented
                                          degraded result (NULL: an error) */
  void (*recover)(void *c);            /* what a caller does before retrying */
  void (*check)(void *c);              /* after a successful run: results right */
  void (*undo)(void *c);               /* releases what run produced */
  void (*teardown)(void *c);           /* releases setup's state */
} fault_op_t;

/* One loop: allocation n fails, alone (persistent 0) or with every later
 * one (persistent 1). Returns the allocations of a complete run. */
unsigned long fault_loop(const fault_op_t *op, void *c, int persistent);
/* Both loops, which must agree on the count; prints it. */
unsigned long fault_check(const fault_op_t *op, void *c);

#endif
