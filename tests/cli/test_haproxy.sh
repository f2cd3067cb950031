#!/usr/bin/env bash
# README "Scaling out": two recd replicas sharing one model directory
# (model-watch yes) behind a real HAProxy in TCP mode with the Redis health
# check (PING, expecting +PONG). Checks: requests through the balancer reach
# both replicas; a publish by atomic rename moves both to the new model by
# themselves; a replica killed with -9 costs no request (connection failures
# are redispatched to the other replica before the health check even
# notices), HAProxy then marks it DOWN; restarted, it is marked UP and
# serves again. Skipped (exit 0 with a note) only when haproxy is missing
# outside CI; under CI=true a missing haproxy fails.
. "$(dirname "$0")/lib.sh"
if ! command -v haproxy >/dev/null 2>&1; then
  [ "${CI:-}" = true ] && fail "haproxy is not installed (scripts/install-deps.sh installs it)"
  echo "skip: haproxy not installed"
  exit 0
fi
PIDS=()
HAP_PID=""
stop_all() {
  # || true: some are dead already (a killed replica), and set -e would
  # end the trap there, leaving the others running.
  for p in "${PIDS[@]}" "$HAP_PID"; do [ -z "$p" ] || kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}" "$HAP_PID"; do [ -z "$p" ] || wait "$p" 2>/dev/null || true; done
  cleanup
}
trap stop_all EXIT
cli() { timeout 10 redis-cli "$@"; }

python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
mkdir -p "$TMP/models"
train() { # seed: publishes model.bin by recd-train's atomic rename
  "$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 16 \
    --iterations 5 --seed "$1" --out "$TMP/models/model.bin"
}
train 1
start_redis
"$BIN/recd-train" --import --csv "$TMP/in.csv" --items "$TMP/items.csv" \
  --redis-port "$REDIS_PORT" 2>"$TMP/import.log" || { cat "$TMP/import.log"; fail "import"; }
user=$(sed -n 2p "$TMP/in.csv" | cut -d, -f1)

A=$(free_port) B=$(free_port) H=$(free_port)
# start_replica NAME PORT: recd on PORT with model-watch; its pid in REPLICA_PID
start_replica() {
  "$BIN/recd" --model "$TMP/models/model.bin" --port "$2" --redis-port "$REDIS_PORT" \
    --model-watch yes 2>>"$TMP/recd-$1.log" &
  REPLICA_PID=$!
  PIDS+=("$REPLICA_PID")
  for _ in $(seq 200); do [ "$(cli -p "$2" ping 2>/dev/null)" = PONG ] && return 0; sleep 0.05; done
  cat "$TMP/recd-$1.log" >&2
  fail "replica $1 did not start"
}
start_replica a "$A"; PID_A=$REPLICA_PID
start_replica b "$B"

# The README's recipe as is: a check every second, DOWN after 2 failures.
cat >"$TMP/haproxy.cfg" <<EOF
global
  maxconn 2000
defaults
  mode tcp
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  retries 3
  option redispatch
frontend recd_in
  bind 127.0.0.1:$H
  default_backend recd
backend recd
  balance roundrobin
  option redis-check
  server a 127.0.0.1:$A check inter 1s fall 2 rise 2
  server b 127.0.0.1:$B check inter 1s fall 2 rise 2
EOF
haproxy -c -f "$TMP/haproxy.cfg" >/dev/null || fail "haproxy rejects the README's configuration"
haproxy -db -f "$TMP/haproxy.cfg" 2>"$TMP/haproxy.log" &
HAP_PID=$!
for _ in $(seq 100); do [ "$(cli -p "$H" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
[ "$(cli -p "$H" ping)" = PONG ] || { cat "$TMP/haproxy.log"; fail "no PONG through haproxy"; }

conns() { cli -p "$1" info clients | tr -d '\r' | sed -n 's/^total_connections_received://p'; }
# burst N: N RECOMMENDs through the balancer, a new connection each (as a
# PHP storefront makes); prints the number of failed ones.
burst() {
  /usr/bin/python3 - "$H" "$user" "$1" <<'EOF'
import sys, redis
port, user, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
failed = 0
for _ in range(n):
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        if not r.execute_command("RECOMMEND", user, "COUNT", "5"):
            failed += 1
    except redis.RedisError as e:
        failed += 1
        print("error:", e, file=sys.stderr)
    finally:
        r.close()
print(failed)
EOF
}
a0=$(conns "$A") b0=$(conns "$B")
[ "$(burst 40)" = 0 ] || fail "requests through haproxy failed"
a1=$(conns "$A") b1=$(conns "$B")
# Health checks connect too: only require that both replicas took clients.
[ $((a1 - a0)) -ge 15 ] && [ $((b1 - b0)) -ge 15 ] ||
  fail "round robin: a got $((a1 - a0)) connections, b $((b1 - b0))"
pass "40 RECOMMENDs through HAProxy, spread over both replicas"

checksum() { cli -p "$1" MODEL INFO | awk 'prev == "checksum" { print; exit } { prev = $0 }'; }
c1=$(checksum "$A")
train 2
c2=$("$BIN/recd-train" --info "$TMP/models/model.bin" |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["checksum"])')
[ "$c1" != "$c2" ] || fail "the retrained model should differ"
for _ in $(seq 100); do
  [ "$(checksum "$A")" = "$c2" ] && [ "$(checksum "$B")" = "$c2" ] && break
  sleep 0.05
done
[ "$(checksum "$A")" = "$c2" ] && [ "$(checksum "$B")" = "$c2" ] ||
  fail "replicas serve $(checksum "$A") and $(checksum "$B") after the publish, want $c2"
pass "a publish reaches both replicas by itself (model-watch), one checksum"

# Kill a: the next requests come before the health check notices (1 s x
# 2); their connection failures are redispatched to b (retries 3 + option
# redispatch; without them about half of these requests fail).
kill -9 "$PID_A"
wait "$PID_A" 2>/dev/null || true
failed=$(burst 60)
[ "$failed" = 0 ] || fail "$failed of 60 requests failed with a replica killed"
grep -q 'recd/a is DOWN' "$TMP/haproxy.log" &&
  fail "the health check noticed before the burst ended: redispatch was not exercised"
for _ in $(seq 100); do grep -q 'recd/a is DOWN' "$TMP/haproxy.log" && break; sleep 0.05; done
grep -q 'recd/a is DOWN' "$TMP/haproxy.log" || { cat "$TMP/haproxy.log"; fail "a not marked DOWN"; }
pass "kill -9 of a replica: 60 requests, none failed; HAProxy marked it DOWN"

start_replica a "$A"
for _ in $(seq 160); do grep -q 'recd/a is UP' "$TMP/haproxy.log" && break; sleep 0.05; done
grep -q 'recd/a is UP' "$TMP/haproxy.log" || { cat "$TMP/haproxy.log"; fail "a not marked UP again"; }
a0=$(conns "$A")
[ "$(burst 20)" = 0 ] || fail "requests failed after a came back"
[ $(($(conns "$A") - a0)) -ge 5 ] || fail "the restarted replica gets no traffic"
pass "the restarted replica is UP and serves again"
