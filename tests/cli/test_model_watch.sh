#!/usr/bin/env bash
# model-watch yes (issue 11): recd reloads by itself when the model file is
# replaced, as replicas sharing a volume or fed by rsync need. recd-train's
# atomic rename is picked up; a file written in place and caught half
# written fails its checksum and is not served (the previous model keeps
# answering), and the completed file is then served; without model-watch a
# replaced file waits for SIGHUP.
. "$(dirname "$0")/lib.sh"
T="$BIN/recd-train"
start_redis
RECD_PID="" RECD2_PID=""
stop_all() {
  for p in "$RECD_PID" "$RECD2_PID"; do [ -z "$p" ] || kill "$p" 2>/dev/null || true; done
  cleanup
}
trap stop_all EXIT
mkdir -p "$TMP/models"
for s in 1 3; do "$T" -q --synthetic 300 --factors 8 --seed "$s" --out "$TMP/m$s.bin"; done
checksum_of() { "$T" --info "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["checksum"])'; }
c1=$(checksum_of "$TMP/m1.bin") c3=$(checksum_of "$TMP/m3.bin")
[ "$c1" != "$c3" ] || fail "the models should differ"
cp "$TMP/m1.bin" "$TMP/models/model.bin"

# start_recd PORT [options...]: sets STARTED_PID (a child of this shell, so
# that wait works); the log goes to recd-PORT.log.
start_recd() {
  local port=$1; shift
  "$BIN/recd" --model "$TMP/models/model.bin" --port "$port" --redis-port "$REDIS_PORT" \
    "$@" 2>"$TMP/recd-$port.log" &
  STARTED_PID=$!
}
served() { redis-cli -p "$1" MODEL INFO | awk 'prev == "checksum" { print; exit } { prev = $0 }'; }
# wait_served PORT CHECKSUM: true once recd serves it (5 s at most)
wait_served() {
  for _ in $(seq 100); do [ "$(served "$1")" = "$2" ] && return 0; sleep 0.05; done
  return 1
}
P=$(free_port) P2=$(free_port)
start_recd "$P" --model-watch yes; RECD_PID=$STARTED_PID
start_recd "$P2"; RECD2_PID=$STARTED_PID
for p in "$P" "$P2"; do
  for _ in $(seq 100); do redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
  [ "$(served "$p")" = "$c1" ] || fail "port $p does not serve the first model"
done

# 1. recd-train publishes with an atomic rename (a new file: a new checksum).
"$T" -q --synthetic 300 --factors 8 --seed 2 --out "$TMP/models/model.bin"
c2=$(checksum_of "$TMP/models/model.bin")
wait_served "$P" "$c2" || fail "model-watch: the renamed model was not loaded (serving $(served "$P"))"
grep -q "model-watch: .*model.bin changed; reloading" "$TMP/recd-$P.log" ||
  fail "no model-watch log line"
pass "an atomic rename is reloaded"

# 2. A publisher that is not atomic (the old file removed, the new one
# written under the same name, slowly): caught half written it fails its
# checksum and is not served (the previous model keeps answering); once
# complete it is served. (Writing over the file in place, as cp, scp and
# rsync --inplace do, is not allowed: the file is mapped; see README.)
size=$(stat -c %s "$TMP/m3.bin")
rm "$TMP/models/model.bin"
exec 7>"$TMP/models/model.bin"
head -c $((size / 2)) "$TMP/m3.bin" >&7
sleep 3 # debounce and a stat poll, twice over
[ "$(served "$P")" = "$c2" ] || fail "a half-written file replaced the model"
grep -Eqi "checksum|truncated|size|short" "$TMP/recd-$P.log" ||
  { cat "$TMP/recd-$P.log" >&2; fail "the refused half file left no log line"; }
redis-cli -p "$P" RECOMMEND nobody COUNT 3 | grep -q . || fail "no answers after a refused reload"
tail -c +$((size / 2 + 1)) "$TMP/m3.bin" >&7 # the rest arrives
exec 7>&-
wait_served "$P" "$c3" || fail "the completed file was not loaded (serving $(served "$P"))"
pass "a half-written file is refused, the completed one served"

# 3. Without model-watch the file waits for SIGHUP.
[ "$(served "$P2")" = "$c1" ] || fail "recd without model-watch reloaded by itself"
kill -HUP "$RECD2_PID"
wait_served "$P2" "$c3" || fail "SIGHUP did not load the replaced file"
pass "without model-watch, SIGHUP reloads"

# 4. A clean shutdown with the watcher running.
kill -TERM "$RECD_PID"
status=0; wait "$RECD_PID" || status=$?
RECD_PID=""
[ "$status" = 0 ] || fail "recd exited $status on SIGTERM"
pass "SIGTERM with model-watch exits 0"
