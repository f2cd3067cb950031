#!/usr/bin/env bash
# recd's Redis connection costs no epoll_ctl per request (rattach.h): under
# strace, 2000 RECOMMENDs of known customers (several Redis commands each,
# over 4 client connections) must make far fewer epoll_ctl calls than
# requests. With the libuv adapter's pattern (the poll handle restarted for
# every command and after every read) they make several per request.
# Skipped (exit 77) only when strace is missing outside CI; under CI=true a
# missing strace fails (scripts/install-deps.sh installs it).
. "$(dirname "$0")/lib.sh"
if ! command -v strace >/dev/null 2>&1; then
  [ "${CI:-}" = true ] && fail "strace is not installed (scripts/install-deps.sh installs it)"
  echo "skip: strace not installed"
  exit 77
fi
STRACE_PID=""
# strace -o blocks the fatal signals it gets (-I3): stop the daemon itself,
# strace ends with it.
stop_recd() {
  if [ -n "$STRACE_PID" ]; then
    [ ! -s "$TMP/recd.pid" ] || kill "$(cat "$TMP/recd.pid")" 2>/dev/null || true
    wait "$STRACE_PID" 2>/dev/null || true
    STRACE_PID=""
  fi
}
trap 'stop_recd; cleanup' EXIT
cli() { timeout 10 redis-cli -p "$PORT" "$@"; }
N=2000

python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
"$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 8 --iterations 3 \
  --out "$TMP/m.bin"
start_redis
"$BIN/recd-train" -q --import --csv "$TMP/in.csv" --items "$TMP/items.csv" \
  --redis-port "$REDIS_PORT"

PORT=$(free_port)
# --seccomp-bpf: only epoll_ctl stops the daemon, not its every call.
strace -f -qq --seccomp-bpf -o "$TMP/strace.log" -e trace=epoll_ctl \
  "$BIN/recd" --model "$TMP/m.bin" --port "$PORT" --redis-port "$REDIS_PORT" \
  --pidfile "$TMP/recd.pid" 2>"$TMP/recd.log" &
STRACE_PID=$!
for _ in $(seq 1 300); do
  cli info redis 2>/dev/null | grep -q '^redis_connected:1' && break
  kill -0 "$STRACE_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
  sleep 0.05
done
cli info redis | grep -q '^redis_connected:1' || { cat "$TMP/recd.log"; fail "recd not connected"; }
calls() { grep -c 'epoll_ctl(' "$TMP/strace.log" || true; }
processed() { timeout 10 redis-cli -p "$REDIS_PORT" info stats |
  sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p'; }
degraded() { cli info redis | sed -n 's/^degraded_answers:\([0-9]*\).*/\1/p'; }
before=$(calls)
p0=$(processed)
timeout 60 "$BIN/recd-bench" e2e --port "$PORT" --connections 4 --requests "$N" \
  --users-csv "$TMP/in.csv" --count 5 >"$TMP/bench.out" 2>&1 ||
  { cat "$TMP/bench.out"; fail "recd-bench e2e"; }
after=$(calls)
sent=$(($(processed) - p0 - 1)) # less this INFO
used=$((after - before))
echo "epoll_ctl during $N RECOMMENDs ($sent Redis commands): $used"
# The load itself opens and closes 4 client connections (an ADD and a DEL
# each): a handful. The adapter's pattern: about 7 per request.
[ "$sent" -ge $((3 * N)) ] ||
  { cat "$TMP/bench.out"; fail "only $sent Redis commands for $N requests"; }
[ "$(degraded)" = 0 ] || fail "degraded answers: not every request was served from Redis"
[ "$used" -lt $((N / 20)) ] || fail "$used epoll_ctl calls for $N requests (want < $((N / 20)))"
pass "$used epoll_ctl for $N requests"
