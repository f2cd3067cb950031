#!/usr/bin/env bash
# recd's shutdown is valgrind-clean: the daemon runs a mix of every kind of
# request (RECOMMEND with batching, RANK, SIMILAR, FEEDBACK, MODEL RELOAD,
# INFO, /metrics) under valgrind, then SIGTERM must end it with exit 0, no
# memory error, and no leaked block.
. "$(dirname "$0")/lib.sh"
# (no `nm | grep -q` pipeline: under pipefail, grep's early exit kills nm
# with SIGPIPE and the test would miss the sanitizer)
syms=$(nm -D "$BIN/recd" 2>/dev/null || true)
if [[ "$syms" == *__asan_init* ]]; then
  echo "ok: skipped in the sanitizer build (valgrind and ASan exclude each other); the normal build runs it"
  exit 0
fi
command -v valgrind >/dev/null || fail "valgrind is not installed (scripts/install-deps.sh installs it)"
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 200 80 4 3
start_redis
"$BIN/recd-train" -q --import --csv "$TMP/in.csv" --items "$TMP/items.csv" --redis-port "$REDIS_PORT"
"$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 8 --iterations 3 \
  --out "$TMP/m.bin"
port=$(free_port)
mport=$(free_port)
valgrind --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --error-exitcode=9 --log-file="$TMP/vg.log" \
  "$BIN/recd" --model "$TMP/m.bin" --port "$port" --redis-port "$REDIS_PORT" \
  --metrics-port "$mport" --unavailable-refresh-ms 200 2>"$TMP/recd.log" &
vg=$!
for _ in $(seq 600); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$port" ping | grep -q PONG || { cat "$TMP/recd.log"; fail "recd under valgrind did not start"; }
for u in 1 2 3 4 5; do
  redis-cli -p "$port" RECOMMEND "user$u" COUNT 5 WITHSCORES WITHREASONS >/dev/null
done
# concurrent requests, so that some are scored in one batch
clients=()
for u in 1 2 3 4 5 6 7 8; do redis-cli -p "$port" RECOMMEND "user$u" COUNT 3 >/dev/null & clients+=($!); done
wait "${clients[@]}"
redis-cli -p "$port" RANK user1 item1 item2 nosuch WITHSCORES >/dev/null
redis-cli -p "$port" SIMILAR item3 COUNT 4 WITHSCORES >/dev/null
redis-cli -p "$port" FEEDBACK user1 item7 WEIGHT 2 >/dev/null
redis-cli -p "$REDIS_PORT" SADD recd:unavailable item2 >/dev/null
redis-cli -p "$port" MODEL RELOAD | grep -q "^OK" || fail "reload under valgrind"
redis-cli -p "$port" INFO >/dev/null
curl -fsS "http://127.0.0.1:$mport/metrics" >/dev/null || fail "metrics under valgrind"
printf 'garbage\r\n*x\r\n' | redis-cli -p "$port" >/dev/null 2>&1 || true
kill -TERM "$vg"
status=0
wait "$vg" || status=$?
[ "$status" = 0 ] || { tail -40 "$TMP/vg.log"; fail "recd under valgrind exited $status"; }
grep -q "ERROR SUMMARY: 0 errors" "$TMP/vg.log" || { tail -40 "$TMP/vg.log"; fail "valgrind errors"; }
grep -Eq "All heap blocks were freed|definitely lost: 0 bytes" "$TMP/vg.log" || { tail -40 "$TMP/vg.log"; fail "leaks"; }
grep -E "in use at exit|ERROR SUMMARY" "$TMP/vg.log"
pass "valgrind-clean shutdown after every kind of request"
