/* rscript.h - a Lua script run in Redis by its SHA1 (EVALSHA), with EVAL
 * as the fallback.
 *
 * Sending a script's text with every call costs Redis a hash of the text
 * and the network its bytes (~1 KB); EVALSHA sends 40. The SHA1 is learnt
 * from SCRIPT LOAD, sent once on the first call (EVAL serves meanwhile).
 * When Redis answers NOSCRIPT (restarted, or SCRIPT FLUSH), the call is sent
 * again as EVAL, so the caller never sees that error, and the next call
 * loads the script again. One rscript_t per script text, living as long as
 * the calls made with it (static storage in practice).
 *
 * In a Redis Cluster (rclient_is_cluster) SCRIPT LOAD goes to every master
 * (rcluster.h) and EVALSHA / EVAL to the master of the first key, so every
 * master knows the script; one that does not (a replica promoted since,
 * a master added) answers NOSCRIPT once: that call goes again as EVAL
 * there, and the next call loads the script on every master again. The
 * keys of one call must share a slot (CROSSSLOT otherwise).
 */
#ifndef RECD_DAEMON_RSCRIPT_H
#define RECD_DAEMON_RSCRIPT_H

#include <stddef.h>

#include "rclient.h"

typedef struct rscript {
  const char *text;        /* the Lua source, static */
  enum { RSCRIPT_NONE, RSCRIPT_LOADING, RSCRIPT_READY } state;
  char sha[41];
} rscript_t;

#define RSCRIPT_INIT(src) {(src), RSCRIPT_NONE, ""}

/* EVALSHA (or EVAL) of s with keys[0..nkeys) and args[0..nargs) (lengths
 * in klens / alens; copied, not referenced after the call). cb as for
 * rclient_call (may be NULL). Returns 0 (cb fires once), RECD_EINVAL or
 * RECD_ENOMEM (cb never fires). */
int rscript_call(rclient_t *rc, rscript_t *s, size_t nkeys, const char *const *keys,
                 const size_t *klens, size_t nargs, const char *const *args,
                 const size_t *alens, rclient_call_cb cb, void *arg);

#endif
