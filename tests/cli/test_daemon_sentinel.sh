#!/usr/bin/env bash
# recd behind Redis Sentinel (issue 15): one primary, one replica
# (--replicaof) and three sentinels (redis-server sentinel.conf --sentinel),
# all with passwords, on loopback. recd is given the sentinels (plus one
# address where nothing listens, to be skipped) and the master name:
#   1. the daemon contract: RECOMMEND and WITHMETA personalized from the
#      histories written to the primary, FEEDBACK lands on the primary and
#      reaches the replica; INFO shows the sentinel mode, the primary, the
#      sentinels reachable (3 of 4) and the subscription;
#   2. kill -9 of the primary under RECOMMEND load: zero error replies,
#      zero hangs (every answer within redis-timeout-ms plus slack),
#      degraded answers only while the sentinels promote the replica, then
#      personalized answers by themselves; INFO's primary is the old
#      replica; the degraded window is printed;
#   3. SENTINEL FAILOVER (a clean switch back, once the old primary has
#      returned as a replica) under load: followed, same guarantees;
#   3b. the sentinel holding the +switch-master subscription is killed:
#      another one is subscribed to, INFO counts one sentinel fewer;
#   3c. a recd started while no sentinel answers: degraded answers, then
#      the primary as soon as a sentinel is up;
#   4. a sentinel naming a server that is a replica (a real sentinel
#      monitoring the replica's address): its ROLE is checked, recd does not
#      use it and answers degraded, never with an error;
#   5. configuration errors name the key.
. "$(dirname "$0")/lib.sh"
declare -A SPID # sentinel port -> pid
PW=primary-pw
SPW=sentinel-pw
NAME=recdmaster
DEADLINE_MS=200
LIMIT_MS=1200 # an answer later than this is a hang (deadline plus slack on a busy machine)
rcli() { local p=$1; shift; REDISCLI_AUTH=$PW timeout 10 redis-cli -p "$p" "$@"; }
scli() { local p=$1; shift; REDISCLI_AUTH=$SPW timeout 10 redis-cli -p "$p" "$@"; }
icli() { timeout 10 redis-cli -p "$RP" "$@"; }
info() { icli INFO redis | tr -d '\r' | sed -n "s/^$1://p"; }
# wait_until SECONDS DESCRIPTION COMMAND...: polls every 0.1 s
wait_until() {
  local secs=$1 what=$2; shift 2
  local i
  for i in $(seq 1 $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "timed out after ${secs}s waiting for: $what"
}

# start_data PORT [redis-server options...]: a primary or replica with the
# passwords (masterauth too: every node may become a replica).
start_data() {
  local port=$1; shift
  mkdir -p "$TMP/r$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$TMP/r$port" --logfile "$TMP/r$port/redis.log" --requirepass "$PW" \
    --masterauth "$PW" "$@" &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_until 10 "redis-server on $port" sh -c "REDISCLI_AUTH=$PW redis-cli -p $port ping | grep -q PONG"
}
# start_sentinel PORT MASTER_NAME MASTER_PORT QUORUM
start_sentinel() {
  local port=$1 name=$2 mport=$3 quorum=$4 dir="$TMP/s$1"
  mkdir -p "$dir"
  cat >"$dir/sentinel.conf" <<EOF
port $port
bind 127.0.0.1
dir $dir
logfile $dir/sentinel.log
requirepass $SPW
sentinel sentinel-pass $SPW
sentinel monitor $name 127.0.0.1 $mport $quorum
sentinel auth-pass $name $PW
sentinel down-after-milliseconds $name 1000
sentinel failover-timeout $name 5000
sentinel parallel-syncs $name 1
EOF
  redis-server "$dir/sentinel.conf" --sentinel &
  PIDS+=($!)
  SPID[$port]=$!
  wait_until 10 "sentinel on $port" sh -c "REDISCLI_AUTH=$SPW redis-cli -p $port ping | grep -q PONG"
}
# sentinel_field SENTINEL_PORT FIELD: a field of SENTINEL master $NAME
sentinel_field() {
  scli "$1" SENTINEL master "$NAME" | awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'
}
sentinels_ready() {
  local s
  for s in $S1 $S2 $S3; do
    [ "$(sentinel_field "$s" num-other-sentinels)" = 2 ] || return 1
    [ "$(sentinel_field "$s" num-slaves)" -ge 1 ] || return 1
  done
}
# replica_ready PRIMARY_PORT REPLICA_PORT: the link is up and every
# sentinel lists the replica with plain "slave" flags (a good candidate).
replica_ready() {
  rcli "$2" INFO replication | tr -d '\r' | grep -q "^master_port:$1$" || return 1
  rcli "$2" INFO replication | tr -d '\r' | grep -q '^master_link_status:up' || return 1
  local s
  for s in $S1 $S2 $S3; do
    scli "$s" SENTINEL replicas "$NAME" | awk -v p="$2" '
      prev == "port" && $0 == p { found = 1 }
      found && prev == "flags" { ok = ($0 == "slave"); exit }
      { prev = $0 } END { exit !ok }' || return 1
  done
}
meta_kind() { icli RECOMMEND "$1" COUNT 5 WITHMETA NOTRACK | sed -n 2p; }
# run_load NAME: RECOMMEND load in the background until $TMP/stop-NAME exists
run_load() {
  rm -f "$TMP/stop-$1"
  /usr/bin/python3 "$(dirname "$0")/sentinel_load.py" "$RP" "$USERS" "$TMP/stop-$1" "$LIMIT_MS" \
    "$TMP/load-$1.json" >"$TMP/load-$1.out" 2>&1 &
  LOAD_PID=$!
  PIDS+=("$LOAD_PID")
}
# check_load NAME: stops it; no error, no hang, personalized at the end
check_load() {
  touch "$TMP/stop-$1"
  wait "$LOAD_PID" || { cat "$TMP/load-$1.out" >&2; fail "$1: the load script failed"; }
  python3 - "$TMP/load-$1.json" "$1" <<'EOF' || fail "$1: $(cat "$TMP/load-$1.json")"
import json, sys
s = json.load(open(sys.argv[1]))
c = s["counts"]
print("%s: %d answers %s, slowest %.1f ms, degraded window %.0f ms"
      % (sys.argv[2], s["total"], c, s["max_ms"], s["window_ms"]))
assert s["total"] > 100, "too few answers"
assert c.get("error", 0) == 0, "error replies: %s" % s["errors"]
assert c.get("hang", 0) == 0, "hangs"
assert c.get("popular", 0) == 0, "popular answers (a history was not read)"
assert s["last_personalized"], "not personalized at the end"
EOF
}

# ---- the set-up -------------------------------------------------------------
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
"$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 16 --iterations 5 \
  --out "$TMP/m.bin"
P=$(free_port) R=$(free_port) S1=$(free_port) S2=$(free_port) S3=$(free_port)
DEAD=$(free_port) RP=$(free_port)
start_data "$P"; P_PID=$STARTED
start_data "$R" --replicaof 127.0.0.1 "$P"
"$BIN/recd-train" --import --csv "$TMP/in.csv" --items "$TMP/items.csv" --redis-port "$P" \
  --redis-password "$PW" 2>"$TMP/import.log" || { cat "$TMP/import.log"; fail "import"; }
# A loaded CI machine may take seconds for the replica's first full sync.
[ "$(rcli "$P" WAIT 1 30000)" = 1 ] || fail "the replica did not acknowledge the import"
for s in $S1 $S2 $S3; do start_sentinel "$s" "$NAME" "$P" 2; done
wait_until 30 "the sentinels know each other and the replica" sentinels_ready
pass "primary $P, replica $R, sentinels $S1 $S2 $S3"

SENTINELS="127.0.0.1:$DEAD 127.0.0.1:$S1 127.0.0.1:$S2 127.0.0.1:$S3"
"$BIN/recd" --model "$TMP/m.bin" --port "$RP" --redis-sentinels "$SENTINELS" \
  --redis-master-name "$NAME" --redis-password "$PW" --redis-sentinel-password "$SPW" \
  --redis-timeout-ms "$DEADLINE_MS" --loglevel verbose 2>"$TMP/recd.log" &
RECD_PID=$!
PIDS+=("$RECD_PID")
wait_until 10 "recd answers PING" sh -c "redis-cli -p $RP ping | grep -q PONG"
wait_until 10 "recd connected to the primary" sh -c \
  "redis-cli -p $RP INFO redis | tr -d '\r' | grep -qx 'redis_connected:1'"

# ---- 1. the daemon contract -----------------------------------------------------
[ "$(info redis_mode)" = sentinel ] || fail "INFO redis_mode: $(info redis_mode)"
[ "$(info redis_sentinel_master_name)" = "$NAME" ] || fail "INFO master name"
[ "$(info redis_sentinel_primary)" = "127.0.0.1:$P" ] ||
  { cat "$TMP/recd.log" >&2; fail "INFO primary: $(info redis_sentinel_primary)"; }
[ "$(info redis_sentinels)" = 4 ] || fail "INFO redis_sentinels: $(info redis_sentinels)"
wait_until 10 "3 of 4 sentinels reachable" sh -c \
  "redis-cli -p $RP INFO redis | tr -d '\r' | grep -qx 'redis_sentinels_reachable:3'"
wait_until 10 "a +switch-master subscription" sh -c \
  "redis-cli -p $RP INFO redis | tr -d '\r' | grep -q '^redis_sentinel_subscribed:127.0.0.1:'"
[ "$(meta_kind user7)" = personalized ] || fail "user7 is not personalized: $(meta_kind user7)"
icli RECOMMEND user7 COUNT 5 | grep -q '^item' || fail "RECOMMEND user7 gives no items"
before=$(rcli "$P" ZSCORE recd:hist:user7 item1)
[ "$(icli FEEDBACK user7 item1 WEIGHT 2)" = "$(( ${before:-0} + 2 ))" ] || fail "FEEDBACK reply"
[ "$(rcli "$P" ZSCORE recd:hist:user7 item1)" = "$(( ${before:-0} + 2 ))" ] ||
  fail "FEEDBACK did not land on the primary"
wait_until 5 "FEEDBACK replicated" sh -c \
  "[ \"\$(REDISCLI_AUTH=$PW redis-cli -p $R ZSCORE recd:hist:user7 item1)\" = $(( ${before:-0} + 2 )) ]"
pass "contract through the sentinels: personalized, FEEDBACK on the primary and replicated"

# Every customer's history on the replica before the primary dies.
[ "$(rcli "$P" WAIT 1 5000)" = 1 ] || fail "WAIT before the kill"
USERS=$(seq -s, -f 'user%g' 0 299)

# ---- 2. kill -9 of the primary under load ------------------------------------
run_load kill
sleep 1.5
# (reaped inside the braces: no "Killed" notice from bash)
{ kill -9 "$P_PID"; wait "$P_PID"; } 2>/dev/null || true
t0=$(date +%s%N)
wait_until 60 "recd follows the promoted replica" sh -c \
  "redis-cli -p $RP INFO redis | tr -d '\r' | grep -qx 'redis_sentinel_primary:127.0.0.1:$R'"
wait_until 10 "connected to the new primary" sh -c \
  "redis-cli -p $RP INFO redis | tr -d '\r' | grep -qx 'redis_connected:1'"
t1=$(date +%s%N)
echo "kill -9 to recd on the new primary: $(( (t1 - t0) / 1000000 )) ms"
sleep 2
check_load kill
rcli "$R" ROLE | head -1 | grep -qx master || fail "$R is not a master"
[ "$(info redis_sentinel_switches)" -ge 1 ] || fail "no +switch-master seen"
[ "$(icli FEEDBACK user8 item2)" != "" ] || fail "FEEDBACK after the failover"
[ "$(rcli "$R" ZSCORE recd:hist:user8 item2)" != "" ] || fail "FEEDBACK not on the new primary"
pass "kill -9: no error, no hang, personalized again on the old replica $R"

# ---- 3. SENTINEL FAILOVER back, once the old primary is a replica again -------
start_data "$P" --replicaof 127.0.0.1 "$R"
wait_until 60 "the old primary is a good replica again" replica_ready "$R" "$P"
switches=$(info redis_sentinel_switches)
run_load failover
sleep 1
ok=""
for _ in $(seq 1 60); do
  out=$(scli "$S1" SENTINEL FAILOVER "$NAME" 2>&1)
  [ "$out" = OK ] && { ok=1; break; }
  sleep 0.5 # NOGOODSLAVE until the sentinels have refreshed the replica
done
[ -n "$ok" ] || fail "SENTINEL FAILOVER: $out"
wait_until 60 "recd follows SENTINEL FAILOVER" sh -c \
  "redis-cli -p $RP INFO redis | tr -d '\r' | grep -qx 'redis_sentinel_primary:127.0.0.1:$P'"
sleep 2
check_load failover
[ "$(info redis_sentinel_switches)" -gt "$switches" ] || fail "the switch was not counted"
[ "$(info redis_connected)" = 1 ] || fail "not connected after SENTINEL FAILOVER"
pass "SENTINEL FAILOVER followed without errors"

# ---- 3b. the sentinel holding the subscription dies ------------------------------
sub=$(info redis_sentinel_subscribed)
sub_port=${sub##*:}
case " $S1 $S2 $S3 " in *" $sub_port "*) ;; *) fail "subscribed to '$sub'" ;; esac
{ kill -9 "${SPID[$sub_port]}"; wait "${SPID[$sub_port]}"; } 2>/dev/null || true
wait_until 10 "the subscription moves to another sentinel" sh -c \
  "s=\$(redis-cli -p $RP INFO redis | tr -d '\r' | sed -n 's/^redis_sentinel_subscribed://p');
   [ -n \"\$s\" ] && [ \"\$s\" != '$sub' ]"
wait_until 15 "2 of 4 sentinels reachable" sh -c \
  "redis-cli -p $RP INFO redis | tr -d '\r' | grep -qx 'redis_sentinels_reachable:2'"
[ "$(meta_kind user9)" = personalized ] || fail "not personalized after a sentinel died"
pass "a dead sentinel: subscribed to the next one, reachable count 2"

# ---- 3c. no sentinel at start: degraded answers, then the primary ------------
S5=$(free_port) RP3=$(free_port)
"$BIN/recd" --model "$TMP/m.bin" --port "$RP3" --redis-sentinels "127.0.0.1:$S5" \
  --redis-master-name "$NAME" --redis-password "$PW" --redis-sentinel-password "$SPW" \
  --redis-timeout-ms "$DEADLINE_MS" 2>"$TMP/recd3.log" &
RECD3_PID=$!
PIDS+=("$RECD3_PID")
wait_until 10 "recd3 answers PING" sh -c "redis-cli -p $RP3 ping | grep -q PONG"
out=$(redis-cli -p "$RP3" RECOMMEND user7 COUNT 3 WITHMETA NOTRACK)
echo "$out" | sed -n 2p | grep -qx degraded || fail "recd3 without sentinels: $out"
start_sentinel "$S5" "$NAME" "$P" 2
wait_until 10 "recd3 finds the primary once a sentinel is up" sh -c \
  "redis-cli -p $RP3 INFO redis | tr -d '\r' | grep -qx 'redis_sentinel_primary:127.0.0.1:$P'"
wait_until 10 "recd3 answers personalized" sh -c \
  "redis-cli -p $RP3 RECOMMEND user7 COUNT 3 WITHMETA NOTRACK | sed -n 2p | grep -qx personalized"
kill -TERM "$RECD3_PID"
wait "$RECD3_PID" || fail "recd3 exited $? on SIGTERM"
pass "no sentinel at start: degraded, then the primary as soon as one answers"

# ---- 4. a server that is not a master is not used -----------------------------
# A real sentinel monitoring the replica's address as the master "wrongname"
# names a replica (as a sentinel that has not caught up would).
S4=$(free_port) RP2=$(free_port)
wait_until 10 "$R is a replica" sh -c "REDISCLI_AUTH=$PW redis-cli -p $R ROLE | head -1 | grep -qx slave"
start_sentinel "$S4" wrongname "$R" 1
"$BIN/recd" --model "$TMP/m.bin" --port "$RP2" --redis-sentinels "127.0.0.1:$S4" \
  --redis-master-name wrongname --redis-password "$PW" --redis-sentinel-password "$SPW" \
  --redis-timeout-ms "$DEADLINE_MS" 2>"$TMP/recd2.log" &
RECD2_PID=$!
PIDS+=("$RECD2_PID")
wait_until 10 "recd2 answers PING" sh -c "redis-cli -p $RP2 ping | grep -q PONG"
wait_until 10 "recd2 refuses the replica" sh -c \
  "redis-cli -p $RP2 INFO redis | tr -d '\r' | grep -q '^redis_sentinel_not_master:[1-9]'"
r2() { redis-cli -p "$RP2" INFO redis | tr -d '\r' | sed -n "s/^$1://p"; }
[ "$(r2 redis_sentinel_primary)" = "" ] || fail "recd2 uses $(r2 redis_sentinel_primary)"
[ "$(r2 redis_connected)" = 0 ] || fail "recd2 is connected"
out=$(redis-cli -p "$RP2" RECOMMEND user7 COUNT 3 WITHMETA NOTRACK)
echo "$out" | sed -n 2p | grep -qx degraded || fail "recd2 answer: $out"
grep -q "is not a master (ROLE 'slave')" "$TMP/recd2.log" || fail "no log line for the replica"
kill -TERM "$RECD2_PID"
wait "$RECD2_PID" || fail "recd2 exited $? on SIGTERM (while searching for a primary)"
pass "a replica named by a sentinel is not used; answers degraded"

# ---- 5. configuration errors -----------------------------------------------------
expect_fail 2 "redis-sentinels is set but redis-master-name is empty" \
  "$BIN/recd" --model "$TMP/m.bin" --redis-sentinels "127.0.0.1:$S1" --test-config
expect_fail 2 "redis-master-name is set but redis-sentinels is empty" \
  "$BIN/recd" --model "$TMP/m.bin" --redis-master-name "$NAME" --test-config
expect_fail 2 'redis-sentinels: "127.0.0.1:x" is not host:port' \
  "$BIN/recd" --model "$TMP/m.bin" --redis-sentinels "127.0.0.1:$S1 127.0.0.1:x" \
  --redis-master-name "$NAME" --test-config
expect_fail 2 "redis-sentinels and redis-socket" \
  "$BIN/recd" --model "$TMP/m.bin" --redis-sentinels "127.0.0.1:$S1" \
  --redis-master-name "$NAME" --redis-socket /tmp/x.sock --test-config
pass "configuration errors name the key"

# ---- a clean shutdown ------------------------------------------------------------
kill -TERM "$RECD_PID"
wait "$RECD_PID" || fail "recd exited $? on SIGTERM"
grep -q "recd stopped" "$TMP/recd.log" || fail "no clean stop"
pass "SIGTERM: clean exit"
