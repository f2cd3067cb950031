# lib.sh - helpers for the shell-driven integration tests (sourced).
# Each test gets its own temp dir and, when it asks, its own redis-server on
# a free loopback port; both are removed on exit, pass or fail.
set -euo pipefail

BIN="${RECD_BIN_DIR:?RECD_BIN_DIR must point at the build directory}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/recd-cli-XXXXXX")
REDIS_PID=""
# A recd a test starts in the background: it sets RECD_PID, and the recd is
# stopped (SIGTERM, then waited for) by stop_recd or on exit, before the
# temp dir goes. A test that needs more (its exit status checked) defines
# its own stop_recd after sourcing this file.
RECD_PID=""
stop_recd() {
  if [ -n "$RECD_PID" ]; then
    kill "$RECD_PID" 2>/dev/null || true
    wait "$RECD_PID" 2>/dev/null || true
    RECD_PID=""
  fi
}
# Other background processes of a test (servers, sentinels, load
# generators): `PIDS+=($!)`; they are stopped on exit, after the recd.
PIDS=()
cleanup() {
  stop_recd
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# Checks on a captured output read it from a here-string (grep -q PATTERN
# <<< "$out"), not from `echo "$out" | grep -q`: grep -q exits at its first
# match, a long echo then dies of SIGPIPE, and pipefail fails the check
# (redis-benchmark's output did, once in a few runs).
pass() { echo "ok: $*"; }

# A free TCP port on 127.0.0.1, drawn at random below the kernel's ephemeral
# range and checked by binding it. Not bind(0): a port of the ephemeral range
# can become the source port of any outgoing connection (the load tests open
# thousands) before the test's server binds it (tests/unit/testutil.c, the
# same rule for the C tests). The rule is tests/free_port.py's, which the
# benchmarks use too; its path is resolved now, as a test may cd later.
RECD_FREE_PORT_PY="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/free_port.py"
free_port() {
  python3 "$RECD_FREE_PORT_PY"
}

# Starts redis-server on a free loopback port, no persistence; sets REDIS_PORT.
start_redis() {
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$TMP" --logfile "$TMP/redis.log" &
  REDIS_PID=$!
  for _ in $(seq 1 100); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  fail "redis-server did not start on port $REDIS_PORT"
}

# expect_fail EXPECTED_STATUS PATTERN cmd...: the command must exit with that
# status and print PATTERN (grep -E) on stderr.
expect_fail() {
  local want=$1 pattern=$2; shift 2
  local status=0
  "$@" >"$TMP/out" 2>"$TMP/err" || status=$?
  [ "$status" = "$want" ] || { cat "$TMP/err" >&2; fail "$* exited $status, want $want"; }
  grep -Eq -- "$pattern" "$TMP/err" || { cat "$TMP/err" >&2; fail "$*: stderr lacks /$pattern/"; }
}
