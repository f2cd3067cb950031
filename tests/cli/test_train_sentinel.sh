#!/usr/bin/env bash
# recd-train behind Redis Sentinel: a primary and a replica with passwords,
# a sentinel that knows the primary (its own password), and a second
# sentinel that names the replica under the same name (what a sentinel that
# has not yet seen a failover would say), on loopback.
#   1. --import through the sentinels lands on the primary: the dead
#      address and the sentinel naming a replica (ROLE says slave) are
#      skipped;
#   2. training through the sentinels gives the model byte for byte that
#      --redis-host/--redis-port of the primary gives;
#   3. errors name the culprit: an unknown name, a wrong sentinel password,
#      no sentinel reachable, and the option conflicts.
. "$(dirname "$0")/lib.sh"
T="$BIN/recd-train"
PW=data-pw
SPW=sentinel-pw
NAME=shop
# wait_ping PORT PASSWORD
wait_ping() {
  for _ in $(seq 1 100); do
    REDISCLI_AUTH=$2 redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.05
  done
  fail "nothing answers on $1"
}
start_data() { # start_data PORT [options]
  local port=$1; shift
  mkdir -p "$TMP/r$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$TMP/r$port" \
    --logfile "$TMP/r$port/redis.log" --requirepass "$PW" --masterauth "$PW" "$@" &
  PIDS+=($!)
  wait_ping "$port" "$PW"
}
start_sentinel() { # start_sentinel PORT MONITORED_PORT
  local dir="$TMP/s$1"
  mkdir -p "$dir"
  cat >"$dir/sentinel.conf" <<EOF
port $1
bind 127.0.0.1
dir $dir
logfile $dir/sentinel.log
requirepass $SPW
sentinel monitor $NAME 127.0.0.1 $2 1
sentinel auth-pass $NAME $PW
EOF
  redis-server "$dir/sentinel.conf" --sentinel &
  PIDS+=($!)
  wait_ping "$1" "$SPW"
}
P=$(free_port)
start_data "$P"
R=$(free_port)
start_data "$R" --replicaof 127.0.0.1 "$P"
S_GOOD=$(free_port)
start_sentinel "$S_GOOD" "$P"
S_LIAR=$(free_port)
start_sentinel "$S_LIAR" "$R"
DEAD=$(free_port) # nothing listens there
SENT=(--redis-sentinels "127.0.0.1:$DEAD 127.0.0.1:$S_LIAR 127.0.0.1:$S_GOOD"
      --redis-master-name "$NAME" --redis-sentinel-password "$SPW" --redis-password "$PW")
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 200 80 4 3

# 1. --import through the sentinels writes to the primary.
"$T" --import --csv "$TMP/in.csv" "${SENT[@]}" 2>"$TMP/log" || { cat "$TMP/log"; fail "import"; }
grep -q "the sentinels name 127.0.0.1:$P as the primary \"$NAME\"" "$TMP/log" ||
  { cat "$TMP/log"; fail "the primary not reported"; }
n=$(REDISCLI_AUTH=$PW redis-cli -p "$P" --scan --pattern 'recd:hist:*' | wc -l)
[ "$n" = 200 ] || fail "200 histories on the primary, found $n"
pass "--import through the sentinels lands on the primary (a dead one and one naming a replica skipped)"

# 2. Training through the sentinels = training against the primary.
export SOURCE_DATE_EPOCH=1700000000
"$T" -q "${SENT[@]}" --factors 8 --iterations 4 --out "$TMP/via-sentinel.bin" ||
  fail "training through the sentinels"
"$T" -q --redis-port "$P" --redis-password "$PW" --factors 8 --iterations 4 \
  --out "$TMP/direct.bin" || fail "training against the primary"
cmp -s "$TMP/via-sentinel.bin" "$TMP/direct.bin" || fail "the two models differ"
pass "training through the sentinels gives the primary's model, byte for byte"

# 3. Errors.
expect_fail 1 "no sentinel named a primary for \"nosuch\".*no primary named \"nosuch\"" \
  "$T" --redis-sentinels "127.0.0.1:$S_GOOD" --redis-master-name nosuch \
  --redis-sentinel-password "$SPW" --out "$TMP/x.bin"
expect_fail 1 "AUTH failed on 127.0.0.1:$S_GOOD" \
  "$T" --redis-sentinels "127.0.0.1:$S_GOOD" --redis-master-name "$NAME" \
  --redis-sentinel-password wrong --out "$TMP/x.bin"
expect_fail 1 "127.0.0.1:$R is not a primary \(ROLE\)" \
  "$T" --redis-sentinels "127.0.0.1:$S_LIAR" --redis-master-name "$NAME" \
  --redis-sentinel-password "$SPW" --redis-password "$PW" --out "$TMP/x.bin"
expect_fail 1 "cannot connect to 127.0.0.1:$DEAD" \
  "$T" --redis-sentinels "127.0.0.1:$DEAD" --redis-master-name "$NAME" --out "$TMP/x.bin"
expect_fail 2 "--redis-sentinels and --redis-master-name go together" \
  "$T" --redis-sentinels "127.0.0.1:$S_GOOD" --out "$TMP/x.bin"
expect_fail 2 "--redis-sentinels and --redis-host" \
  "$T" "${SENT[@]}" --redis-host 127.0.0.1 --out "$TMP/x.bin"
expect_fail 2 "--redis-sentinels and --redis-cluster-nodes" \
  "$T" "${SENT[@]}" --redis-cluster-nodes "127.0.0.1:$P" --out "$TMP/x.bin"
expect_fail 2 "--redis-sentinel-password goes with --redis-sentinels" \
  "$T" --redis-sentinel-password x --out "$TMP/x.bin"
expect_fail 2 "--redis-sentinels: " \
  "$T" --redis-sentinels "127.0.0.1:0" --redis-master-name "$NAME" --out "$TMP/x.bin"
pass "errors name the culprit"
