#!/usr/bin/env bash
# A short soak (30 s) of the real binaries under mixed load: flat RSS, no
# file-descriptor growth, no failed command (scripts/soak.sh; run it longer
# by hand with --seconds N).
set -euo pipefail
# Slack 16 MB (soak.sh's default). A reload must give back the old model's
# fold-in caches (model_free -> foldin_forget): before it did, four
# reloaded models' caches piled up and RSS grew by 48 MB in CI's 30 s soak
# (2026-12-03); with it, 0.5 MB (2026-12-04).
exec bash "${RECD_SOURCE_DIR:?}/scripts/soak.sh" --seconds "${RECD_SOAK_SECONDS:-30}" --sample 3 \
  --bin-dir "${RECD_BIN_DIR:?}"
