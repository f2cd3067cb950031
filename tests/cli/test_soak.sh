#!/usr/bin/env bash
# A short soak (30 s) of the real binaries under mixed load: flat RSS, no
# file-descriptor growth, no failed command (scripts/soak.sh; run it longer
# by hand with --seconds N).
set -euo pipefail
exec bash "${RECD_SOURCE_DIR:?}/scripts/soak.sh" --seconds "${RECD_SOAK_SECONDS:-30}" --sample 3 \
  --bin-dir "${RECD_BIN_DIR:?}"
