#!/usr/bin/env bash
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
#
# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each one for a
# bounded time on a scratch copy of its seed corpus (tests/fuzz/corpus/<name>;
# the repository's corpus is never modified). Fails on the first finding.
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  ""|[0-9]*) ;;
  *) echo "fuzz.sh: expected SECONDS_PER_TARGET, got $1 (see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
secs=${1:-60}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DRECD_FUZZ=ON \
  -DRECD_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j2 --target resp_fuzz config_fuzz model_fuzz csv_fuzz grammar_fuzz \
  factors_fuzz tls_fuzz acl_fuzz rreply_fuzz >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/recd-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export OPENBLAS_NUM_THREADS=1
for t in resp config model csv grammar factors tls acl rreply; do
  mkdir -p "$work/$t"
  cp tests/fuzz/corpus/$t/* "$work/$t/" 2>/dev/null || true
  # -malloc_limit_mb: a huge allocation is a finding (declared lengths must
  # never be trusted); -rss_limit_mb bounds the whole run.
  echo "== $t: ${secs}s"
  (cd "$work" && "$OLDPWD/build-fuzz/${t}_fuzz" -max_total_time="$secs" -malloc_limit_mb=256 \
      -rss_limit_mb=2048 -print_final_stats=1 "$work/$t" 2>"$work/$t.log") ||
    { tail -40 "$work/$t.log"; echo "FUZZ FINDING in $t" >&2; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/$t.log" | tr '\n' ' '; echo
done
