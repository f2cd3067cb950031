#!/usr/bin/env bash
# recd with the stock Redis tools as clients: redis-cli (commands, INFO, the
# start-up handshake when reading from stdin) and redis-benchmark (a bounded
# load of RECOMMENDs and PINGs). Own redis-server and recd on free ports.
. "$(dirname "$0")/lib.sh"
# Every client call is bounded: a hung daemon fails the test instead of CI.
cli() { timeout 10 redis-cli -p "$PORT" "$@"; }

python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
"$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 16 --iterations 5 \
  --out "$TMP/m.bin"
start_redis
"$BIN/recd-train" --import --csv "$TMP/in.csv" --items "$TMP/items.csv" \
  --redis-port "$REDIS_PORT" 2>"$TMP/import.log" || { cat "$TMP/import.log"; fail "import"; }

PORT=$(free_port)
"$BIN/recd" --model "$TMP/m.bin" --port "$PORT" --redis-port "$REDIS_PORT" \
  --unavailable-refresh-ms 100 2>"$TMP/recd.log" &
RECD_PID=$!
for _ in $(seq 1 200); do
  [ "$(timeout 2 redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break
  kill -0 "$RECD_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
  sleep 0.05
done
[ "$(cli ping)" = PONG ] || { cat "$TMP/recd.log"; fail "recd does not answer PING"; }
for _ in $(seq 1 200); do
  cli info redis | grep -q '^redis_connected:1' && break
  sleep 0.05
done
cli info redis | grep -q '^redis_connected:1' || fail "recd did not connect to Redis"
pass "recd started"

# 1. redis-cli, one command per invocation (raw output when not a tty).
[ "$(cli PING hello)" = hello ] || fail "PING hello"
[ "$(cli ECHO 'a b')" = "a b" ] || fail "ECHO"
out=$(cli RECOMMEND user3 COUNT 5)
[ "$(echo "$out" | wc -l)" = 5 ] || fail "RECOMMEND user3 COUNT 5 gave: $out"
grep -qvE '^item[0-9]+$' <<< "$out" && fail "RECOMMEND ids: $out"
# user3 is in cluster 3: its recommendations are items of its own cluster.
for id in $out; do [ $(( ${id#item} % 6 )) = 3 ] || fail "$id is not in user3's cluster"; done
hist=$(redis-cli -p "$REDIS_PORT" zrange recd:hist:user3 0 -1)
for id in $out; do grep -qx "$id" <<< "$hist" && fail "history item $id recommended"; done
out=$(cli --no-raw RECOMMEND user3 COUNT 2 WITHSCORES)
grep -qE '^1\) "item[0-9]+"$' <<< "$out" || fail "--no-raw output: $out"
[ "$(cli SIMILAR nosuch | wc -c)" -le 1 ] || fail "SIMILAR of an unknown item is not empty"
cli MODEL INFO | grep -qx 120 || fail "MODEL INFO items"
out=$(cli RECOMMEND user3 COUNT abc)
grep -q "COUNT must be an integer" <<< "$out" || fail "error text: $out"
out=$(cli NOSUCHCMD)
grep -q "unknown command" <<< "$out" || fail "unknown command: $out"
info=$(cli INFO)
for s in Server Clients Model Stats Redis; do
  grep -q "^# $s" <<< "$info" || fail "INFO lacks # $s"
done
grep -q '^cmdstat_recommend:calls=' <<< "$info" || fail "INFO lacks cmdstat_recommend"
cli INFO stats | grep -q '^# Server' && fail "INFO stats shows other sections"
pass "redis-cli commands and INFO"

# 2. The start-up handshake and several commands read from stdin.
[ "$(echo PING | cli)" = PONG ] || fail "echo PING | redis-cli"
out=$(printf 'PING\nRECOMMEND user3 COUNT 2\nECHO done\n' | cli)
[ "$(echo "$out" | head -1)" = PONG ] || fail "stdin session: $out"
[ "$(echo "$out" | tail -1)" = done ] || fail "stdin session: $out"
[ "$(echo "$out" | wc -l)" = 4 ] || fail "stdin session: $out"
pass "redis-cli reading commands from stdin"

# 3. redis-benchmark: a bounded load of RECOMMENDs, then PING as the ceiling.
before=$(cli INFO stats | sed -n 's/^cmdstat_recommend:calls=\([0-9]*\),failed=\([0-9]*\).*/\1 \2/p')
# (-q still draws progress with carriage returns: one line per update here)
bench() { timeout 120 redis-benchmark -p "$PORT" -n 2000 -c 10 -q "$@" 2>&1 | tr '\r' '\n'; }
out=$(bench recommend user3) || fail "redis-benchmark recommend: $out"
grep -qE '^recommend user3: [0-9.]+ requests per second' <<< "$out" ||
  fail "redis-benchmark output: $out"
after=$(cli INFO stats | sed -n 's/^cmdstat_recommend:calls=\([0-9]*\),failed=\([0-9]*\).*/\1 \2/p')
[ $(( ${after% *} - ${before% *} )) -ge 2000 ] || fail "recd counted $before -> $after RECOMMENDs"
[ "${after#* }" = "${before#* }" ] || fail "failed RECOMMENDs: $before -> $after"
echo "$out" | grep 'requests per second'
out=$(bench -t ping) || fail "redis-benchmark ping: $out"
grep -qE '^PING_INLINE: [0-9.]+ requests per second' <<< "$out" || fail "PING_INLINE: $out"
grep -qE '^PING_MBULK: [0-9.]+ requests per second' <<< "$out" || fail "PING_MBULK: $out"
echo "$out" | grep 'requests per second'
[ "$(cli PING)" = PONG ] || fail "recd after the benchmarks"
pass "redis-benchmark"

# 4. SIGTERM: exit status 0.
kill -TERM "$RECD_PID"
status=0
for _ in $(seq 1 200); do kill -0 "$RECD_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$RECD_PID" 2>/dev/null && fail "recd still running 10 s after SIGTERM"
wait "$RECD_PID" || status=$?
RECD_PID=""
[ "$status" = 0 ] || { cat "$TMP/recd.log"; fail "recd exited $status after SIGTERM"; }
pass "SIGTERM"
