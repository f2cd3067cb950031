#!/usr/bin/env bash
# The storefront integration examples (examples/python, examples/node) run
# against the bundled demo data: own redis-server with the demo histories
# imported, a small model trained from them, recd on free ports. Each
# example asserts what it demonstrates; either failing fails this test.
# Node.js, npm and python3-redis are required, not optional: CI installs
# them (scripts/install-deps.sh), so a missing one is a failure, not a skip.
. "$(dirname "$0")/lib.sh"
SRC="${RECD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
PY=/usr/bin/python3 # Debian's interpreter, which python3-redis is installed for
"$PY" -c 'import redis' || fail "python3-redis is missing (bash scripts/install-deps.sh)"
command -v node >/dev/null || fail "node is missing (bash scripts/install-deps.sh)"
command -v npm >/dev/null || fail "npm is missing (bash scripts/install-deps.sh)"
echo "node $(node --version), npm $(npm --version 2>/dev/null)"

# Demo data into Redis, and a small model (32 factors, 5 sweeps: seconds).
start_redis
gzip -dc "$SRC/demo/online-retail/interactions.csv.gz" > "$TMP/interactions.csv"
"$BIN/recd-train" -q --import --csv "$TMP/interactions.csv" \
  --items "$SRC/demo/online-retail/items.csv" --redis-port "$REDIS_PORT"
"$BIN/recd-train" -q --redis-port "$REDIS_PORT" --factors 32 --iterations 5 --out "$TMP/model.bin"
pass "demo data imported, model trained"

PORT=$(free_port)
REFRESH_MS=300
"$BIN/recd" --model "$TMP/model.bin" --port "$PORT" --redis-port "$REDIS_PORT" \
  --unavailable-refresh-ms "$REFRESH_MS" 2>"$TMP/recd.log" &
RECD_PID=$!
for _ in $(seq 1 200); do
  timeout 2 redis-cli -p "$PORT" info redis 2>/dev/null | grep -q '^redis_connected:1' && break
  kill -0 "$RECD_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
  sleep 0.05
done
ARGS=(--recd-port "$PORT" --redis-port "$REDIS_PORT" --refresh-ms "$REFRESH_MS")

# Python, twice: the example restores the keys it changed, so it can rerun.
for run in 1 2; do
  timeout 120 "$PY" "$SRC/examples/python/storefront.py" "${ARGS[@]}" > "$TMP/py.out" 2>&1 ||
    { cat "$TMP/py.out"; fail "python example (run $run)"; }
done
cat "$TMP/py.out"
pass "python example"

# Node: install exactly the locked dependencies into a copy of the example
# (the source tree stays clean); --prefer-offline reuses npm's cache.
mkdir -p "$TMP/node"
cp "$SRC/examples/node/package.json" "$SRC/examples/node/package-lock.json" \
  "$SRC/examples/node/storefront.js" "$TMP/node/"
(cd "$TMP/node" && timeout 300 npm ci --prefer-offline --no-audit --no-fund) > "$TMP/npm.log" 2>&1 ||
  { cat "$TMP/npm.log"; fail "npm ci"; }
timeout 120 node "$TMP/node/storefront.js" "${ARGS[@]}" > "$TMP/node.out" 2>&1 ||
  { cat "$TMP/node.out"; fail "node example"; }
cat "$TMP/node.out"
pass "node example"

[ "$(redis-cli -p "$REDIS_PORT" scard recd:unavailable)" = 0 ] || fail "examples left items unavailable"
kill -TERM "$RECD_PID"
status=0
wait "$RECD_PID" || status=$?
RECD_PID=""
[ "$status" = 0 ] || { cat "$TMP/recd.log"; fail "recd exited $status"; }
pass "recd stopped cleanly"
