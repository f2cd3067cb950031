/* settings.h - the tuned settings file that the nightly retrain reuses.
 *
 * recd-train --tune writes the best recipe to --settings FILE; a later
 * `recd-train --settings FILE` trains with it, and tunes again (rewriting
 * FILE) when FILE is missing or older than --retune-days (7), so a nightly
 * retrain re-tunes weekly by itself. The format is recd.conf's: one
 * "key value" per line, '#' comments:
 *
 *   # recd-train --tune, 2026-12-03T23:10:00Z, <source>
 *   tuned-at 1764803400         (unix seconds)
 *   validation-ndcg 0.1234      (informational)
 *   split time-cut              (informational: how validation was carved)
 *   factors 128
 *   iterations 12
 *   alpha 1.5
 *   lambda 0.05
 *   reg-exponent 0.5
 *   half-life-days 30           (0 = off)
 *
 * Every line is validated as the command-line option of the same name is;
 * an unknown key or bad value is an error naming FILE:line.
 */
#ifndef RECD_TRAIN_SETTINGS_H
#define RECD_TRAIN_SETTINGS_H

#include <stdint.h>

#include "recipe.h"

/* Reads path into r (only the keys it sets change) and *tuned_at. Returns
 * 0, RECD_ENOTFOUND when the file does not exist (r untouched), or a
 * RECD_E* code with errbuf naming the file and line. */
int settings_read(const char *path, recipe_t *r, int64_t *tuned_at, char *errbuf);

/* Writes the recipe atomically (temp file + rename). */
int settings_write(const char *path, const recipe_t *r, int64_t tuned_at, const char *source,
                   const char *split, double validation_ndcg, char *errbuf);

#endif
