#!/usr/bin/env bash
# usage: scripts/check-units.sh [BUILD_DIR]
#
# Installs the build (cmake --install, as the units expect) and checks the
# systemd units: `systemd-analyze verify` must pass (the template
# recd@.service as an instance, recd@check.service), and the exposure score
# of recd.service and recd@.service must stay below 2.0.
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) echo "check-units.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
build=${1:-build}
cmake --install "$build" >/dev/null
units=(/usr/local/lib/systemd/system/recd.service /usr/local/lib/systemd/system/recd-train.service
       /usr/local/lib/systemd/system/recd-train.timer /usr/local/lib/systemd/system/recd-refresh.service
       /usr/local/lib/systemd/system/recd-refresh.timer)
# A template is no unit by itself: verify an instance, found by name in
# /usr/local/lib/systemd/system.
systemd-analyze verify "${units[@]}" recd@check.service
echo "systemd-analyze verify: ok"
for u in recd.service recd@.service recd-train.service; do
  score=$(systemd-analyze security --offline=true "systemd/$u" 2>/dev/null |
          sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  echo "systemd-analyze security $u: exposure $score"
  if [ "$u" != recd-train.service ]; then
    awk -v s="$score" 'BEGIN { exit !(s < 2.0) }' || { echo "$u exposure $score >= 2.0" >&2; exit 1; }
  fi
done
