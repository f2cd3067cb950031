#!/usr/bin/env bash
# usage: scripts/test.sh [--sanitize]
#
# Sets up (dependencies, build) and runs the whole test suite.
#   scripts/test.sh             Release build in build/, all tests
#   scripts/test.sh --sanitize  ASan+UBSan build in build-asan/, all tests
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  ""|--sanitize) ;;
  *) echo "test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
dir=build
flags=(-DCMAKE_BUILD_TYPE=Release)
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-asan
  flags=(-DCMAKE_BUILD_TYPE=Debug -DRECD_SANITIZE=ON)
  # OpenBLAS keeps thread buffers until exit; that is not a recd leak.
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S . -B "$dir" -DRECD_WERROR="$werror" "${flags[@]}" >/dev/null
cmake --build "$dir" -j2
cd "$dir"
ctest --output-on-failure -j2
