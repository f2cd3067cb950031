#!/usr/bin/env bash
# recd (the daemon) against a real Redis Cluster (three masters, three
# replicas on loopback, tests/cli/cluster_lib.sh): the daemon contract with
# every customer's keys spread over the masters (RECOMMEND personalized
# from histories written by redis-cli -c, WITHMETA, preferences and hidden
# items, FEEDBACK, MERGE, SIMILAR FOR, the unavailable set); a slot moved
# while recd runs (MOVED with a stale map) and a slot half migrated (ASK);
# a master killed with kill -9 under a load of RECOMMENDs: zero error
# replies, zero hangs, degraded answers only during the failover and
# personalized answers again once the replica is promoted; AUTH on every
# node; option errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
CLUSTER_NODE_TIMEOUT=1000 # a quick failover
LOAD_PID=""
stop_all() {
  [ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null || true
  [ -z "${HUNG_PID:-}" ] || kill -CONT "$HUNG_PID" 2>/dev/null || true
  stop_recd
  stop_cluster
  cleanup
}
trap stop_all EXIT
cli() { timeout 10 redis-cli -p "$PORT" "$@"; }
info_field() { cli info redis | tr -d '\r' | sed -n "s/^$1://p"; }
# RECOMMEND with WITHMETA: the kind (line 2), the items (after the 10 lines
# of the meta array).
reco() { cli RECOMMEND "$1" COUNT "${2:-5}" WITHMETA; }
kind_of() { reco "$1" | sed -n 2p; }
items_of() { reco "$1" "${2:-5}" | tail -n +11; }
history_of() { cluster_cli zrange "recd:hist:$1" 0 -1 2>/dev/null | grep -v '^-> Redirected'; }
ccl() { cluster_cli "$@" 2>/dev/null | grep -v '^-> Redirected'; }

start_recd() { # start_recd [recd options...]
  PORT=$(free_port)
  "$BIN/recd" --model "$TMP/m.bin" --port "$PORT" --unavailable-refresh-ms 100 \
    --redis-timeout-ms 100 "$@" 2>"$TMP/recd.log" &
  RECD_PID=$!
  for _ in $(seq 1 200); do
    [ "$(timeout 2 redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$RECD_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
    sleep 0.05
  done
  fail "recd does not answer PING"
}
wait_connected() { # wait_connected [0|1]: INFO redis_connected
  for _ in $(seq 1 200); do
    [ "$(info_field redis_connected)" = "${1:-1}" ] && return 0
    sleep 0.05
  done
  cli info redis >&2
  fail "redis_connected did not become ${1:-1}"
}

python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
"$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 16 --iterations 5 \
  --out "$TMP/m.bin"

# 1. Option errors: the seeds are checked, and nothing else may say where
#    Redis is.
expect_fail 2 'redis-cluster-nodes: "127.0.0.1:0" is not host:port' \
  "$BIN/recd" --model "$TMP/m.bin" --redis-cluster-nodes "127.0.0.1:7000 127.0.0.1:0" --test-config
expect_fail 2 'redis-cluster-nodes and redis-socket' \
  "$BIN/recd" --model "$TMP/m.bin" --redis-cluster-nodes "127.0.0.1:7000" \
  --redis-socket /tmp/x.sock --test-config
expect_fail 2 'redis-cluster-nodes and redis-host' \
  "$BIN/recd" --model "$TMP/m.bin" --redis-cluster-nodes "127.0.0.1:7000" \
  --redis-host 10.1.1.1 --test-config
"$BIN/recd" --model "$TMP/m.bin" --redis-cluster-nodes "127.0.0.1:7000,[::1]:7001" \
  --test-config >/dev/null 2>&1 || fail "a valid seed list refused"
pass "option errors"

start_cluster
"$BIN/recd-train" -q --import --csv "$TMP/in.csv" --items "$TMP/items.csv" \
  --redis-cluster-nodes "$CLUSTER_NODES"
# One seed is enough, and a dead one is skipped. The map is read again every
# redis-cluster-refresh-ms (the default, 5 s, would not show in a test).
start_recd --redis-cluster-nodes "127.0.0.1:1 127.0.0.1:${CLUSTER_PORTS[3]}" \
  --redis-cluster-refresh-ms 150
wait_connected 1
[ "$(info_field redis_mode)" = cluster ] || fail "INFO redis_mode: $(info_field redis_mode)"
[ "$(info_field redis_cluster_masters)" = 3 ] || fail "INFO redis_cluster_masters"
[ "$(info_field redis_cluster_masters_connected)" = 3 ] || fail "INFO masters connected"
r0=$(info_field redis_cluster_map_refreshes)
[ "$r0" -ge 1 ] || fail "INFO map refreshes"
sleep 1.2
r1=$(info_field redis_cluster_map_refreshes)
[ "$r1" -ge $((r0 + 3)) ] || fail "the slot map read $r0 then $r1 times in 1.2 s at 150 ms"
pass "recd reads the slot map from a seed, connects to the 3 masters and reads it again every redis-cluster-refresh-ms"

# 2. RECOMMEND: a customer on each master, personalized from histories in
#    the cluster: items of the customer's own cluster, none of the history.
masters=$(cluster_masters)
USERS_ON=()
for m in $masters; do
  for u in $(seq 0 299); do
    if [ "$(cluster_master_of "recd:hist:user$u")" = "$m" ]; then USERS_ON+=("user$u"); break; fi
  done
done
[ "${#USERS_ON[@]}" = 3 ] || fail "a customer on each master: ${USERS_ON[*]}"
for u in "${USERS_ON[@]}"; do
  [ "$(kind_of "$u")" = personalized ] || { reco "$u"; fail "$u not personalized"; }
  n=${u#user}
  hist=$(history_of "$u")
  [ -n "$hist" ] || fail "no history of $u through redis-cli -c"
  out=$(items_of "$u")
  [ "$(echo "$out" | wc -l)" = 5 ] || fail "$u: $out"
  for id in $out; do
    [ $(( ${id#item} % 6 )) = $(( n % 6 )) ] || fail "$id is not in $u's cluster"
    grep -qx "$id" <<< "$hist" && fail "history item $id recommended to $u"
  done
done
# The keys of one customer are on several masters (no hash tags).
spread=0
for u in "${USERS_ON[@]}"; do
  [ "$(cluster_master_of "recd:hist:$u")" != "$(cluster_master_of "recd:time:$u")" ] && spread=1
done
[ "$spread" = 1 ] || fail "no customer with history and times on two masters"
pass "RECOMMEND personalized for customers on each master (${USERS_ON[*]})"

# 3. Preferences and hidden items, written with redis-cli -c.
u=user3
top=$(items_of $u | head -1)
[ "$(cli FEEDBACK $u "$top" TYPE hide)" = 1 ] || fail "FEEDBACK TYPE hide"
[ "$(ccl sismember recd:hidden:$u "$top")" = 1 ] || fail "hidden item not in the cluster"
items_of $u 10 | grep -qx "$top" && fail "hidden item $top still recommended"
ccl hset recd:pref:$u cat:cat3 -1 >/dev/null
for id in $(items_of $u 10); do
  [ $(( ${id#item} % 6 )) != 3 ] || fail "$id of category cat3, which $u hid"
done
ccl hdel recd:pref:$u cat:cat3 >/dev/null
ccl hset recd:pref:user4 personalize 0 >/dev/null
[ "$(kind_of user4)" = popular ] || fail "personalize 0 ignored"
ccl hdel recd:pref:user4 personalize >/dev/null
[ "$(kind_of user4)" = personalized ] || fail "user4 personalized again"
pass "preferences and hidden items honoured"

# 4. FEEDBACK: the weight and its time land where redis-cli -c finds them
#    (history and times of that customer on two masters), a hash-tagged id
#    too (one slot: the single Redis's script); a history key of the wrong
#    type fails the FEEDBACK and writes no time; a time key of the wrong
#    type does not fail it.
fu=""
for n in $(seq 0 299); do
  if [ "$(cluster_master_of "recd:hist:user$n")" != "$(cluster_master_of "recd:time:user$n")" ]; then
    fu=user$n
    break
  fi
done
before=$(ccl zscore recd:hist:$fu item1)
w=$(cli FEEDBACK $fu item1 WEIGHT 2.5)
awk -v a="${before:-0}" -v b="$w" 'BEGIN { exit !(a + 2.5 == b) }' || fail "FEEDBACK reply $w, before ${before:-0}"
[ "$(ccl zscore recd:hist:$fu item1)" = "$w" ] || fail "the weight is not in the cluster"
t=$(ccl zscore recd:time:$fu item1)
now=$(date +%s)
[ -n "$t" ] && [ $(( now - t )) -le 5 ] && [ $(( t - now )) -le 5 ] || fail "time of $fu/item1: '$t'"
[ "$(cli FEEDBACK '{vip}7' item2)" = 1 ] || fail "FEEDBACK of a hash-tagged id"
[ "$(ccl zscore 'recd:hist:{vip}7' item2)" = 1 ] || fail "hash-tagged weight"
[ -n "$(ccl zscore 'recd:time:{vip}7' item2)" ] || fail "hash-tagged time"
ccl set recd:hist:badh x >/dev/null
cli FEEDBACK badh item1 | grep -q "WRONGTYPE recd:hist:badh is a string" || fail "FEEDBACK on a string history"
[ "$(ccl exists recd:time:badh)" = 0 ] || fail "a time written without its weight"
ccl set recd:time:badt x >/dev/null
[ "$(cli FEEDBACK badt item1)" = 1 ] || fail "FEEDBACK with a string time key"
[ "$(ccl zscore recd:hist:badt item1)" = 1 ] || fail "weight with a string time key"
for _ in $(seq 1 50); do grep -q "its time not: WRONGTYPE recd:time:badt" "$TMP/recd.log" && break; sleep 0.05; done
grep -q "its time not: WRONGTYPE recd:time:badt" "$TMP/recd.log" || fail "the lost time is not logged"
pass "FEEDBACK writes land in the cluster ($fu: history and times on two masters)"

# 5. MERGE: a visitor's history, hidden items, impressions and times join
#    a customer's, on other masters; from-id's keys are gone; again: 0; a
#    key of the wrong type: nothing merged.
to=user9
b5=$(ccl zscore recd:hist:$to item5)
b6=$(ccl zscore recd:hist:$to item6)
cli FEEDBACK anon1 item5 >/dev/null
cli FEEDBACK anon1 item6 WEIGHT 2 >/dev/null
cli FEEDBACK anon1 item7 TYPE hide >/dev/null
shown=$(cli RECOMMEND anon1 COUNT 3 | head -1)
for _ in $(seq 1 50); do [ "$(ccl hexists recd:imp:anon1 "$shown")" = 1 ] && break; sleep 0.05; done
[ "$(ccl hexists recd:imp:anon1 "$shown")" = 1 ] || fail "no impression of anon1"
[ "$(cluster_master_of recd:hist:anon1)" != "$(cluster_master_of recd:hist:$to)" ] ||
  [ "$(cluster_master_of recd:hidden:anon1)" != "$(cluster_master_of recd:hidden:$to)" ] ||
  fail "anon1 and $to on one master: pick other ids"
[ "$(cli MERGE anon1 $to)" = 2 ] || fail "MERGE reply"
awk -v a="${b5:-0}" -v b="$(ccl zscore recd:hist:$to item5)" 'BEGIN { exit !(a + 1 == b) }' ||
  fail "item5 not summed"
awk -v a="${b6:-0}" -v b="$(ccl zscore recd:hist:$to item6)" 'BEGIN { exit !(a + 2 == b) }' ||
  fail "item6 not summed"
[ "$(ccl sismember recd:hidden:$to item7)" = 1 ] || fail "hidden item not merged"
[ "$(ccl hexists recd:imp:$to "$shown")" = 1 ] || fail "impression not merged"
[ -n "$(ccl zscore recd:time:$to item6)" ] || fail "time not merged"
for k in hist hidden imp time; do
  [ "$(ccl exists recd:$k:anon1)" = 0 ] || fail "recd:$k:anon1 left after MERGE"
done
[ "$(cli MERGE anon1 $to)" = 0 ] || fail "a second MERGE"
cli FEEDBACK anon2 item1 >/dev/null
ccl set recd:hidden:user10 x >/dev/null
cli MERGE anon2 user10 | grep -q "WRONGTYPE recd:hidden:user10 is a string" || fail "MERGE wrong type"
[ "$(ccl zscore recd:hist:anon2 item1)" = 1 ] || fail "a refused MERGE moved something"
# ids sharing a hash tag: one slot, the single Redis's atomic script
cli FEEDBACK '{c1}:web' item4 WEIGHT 2 >/dev/null
cli FEEDBACK '{c1}:app' item4 >/dev/null
[ "$(cli MERGE '{c1}:web' '{c1}:app')" = 1 ] || fail "MERGE of hash-tagged ids"
[ "$(ccl zscore 'recd:hist:{c1}:app' item4)" = 3 ] || fail "hash-tagged MERGE sum"
[ "$(ccl exists 'recd:hist:{c1}:web')" = 0 ] || fail "hash-tagged MERGE left the from id"
pass "MERGE across masters"

# 6. SIMILAR FOR and the unavailable set.
out=$(cli SIMILAR item3 COUNT 5 FOR user3 WITHMETA)
[ "$(echo "$out" | sed -n 2p)" = similar ] || fail "SIMILAR FOR: $out"
hist=$(history_of user3)
for id in $(echo "$out" | tail -n +11); do
  grep -qx "$id" <<< "$hist" && fail "SIMILAR FOR user3 gave history item $id"
done
top=$(items_of user5 | head -1)
ccl sadd recd:unavailable "$top" >/dev/null
sleep 0.5
items_of user5 10 | grep -qx "$top" && fail "unavailable item $top recommended"
ccl srem recd:unavailable "$top" >/dev/null
pass "SIMILAR FOR and the unavailable set"

# 7. Impressions and outcomes (tracking.c's one-key scripts): an item shown
#    to a customer and then clicked is attributed; the counters are read
#    back by EXPERIMENT REPORT; nothing failed on a healthy cluster.
shown=$(cli RECOMMEND user6 COUNT 3 PLACEMENT home | head -1)
for _ in $(seq 1 50); do [ "$(ccl hexists recd:imp:user6 "$shown")" = 1 ] && break; sleep 0.05; done
at0=$(cli info experiments | tr -d '\r' | sed -n 's/^outcomes_attributed://p')
cli FEEDBACK user6 "$shown" TYPE click >/dev/null
for _ in $(seq 1 50); do
  at1=$(cli info experiments | tr -d '\r' | sed -n 's/^outcomes_attributed://p')
  [ "$at1" -gt "$at0" ] && break
  sleep 0.05
done
[ "$at1" -gt "$at0" ] || fail "the click on a shown item was not attributed"
sleep 0.3 # the counters' 100 ms flush
cli EXPERIMENT REPORT | grep -qx home || fail "EXPERIMENT REPORT: $(cli EXPERIMENT REPORT | head -5)"
[ "$(cli info experiments | tr -d '\r' | sed -n 's/^tracking_errors://p')" = 0 ] ||
  fail "tracking errors on a healthy cluster"
pass "impressions, outcomes and the experiment counters"

# 8. MOVED: a history's slot moves to another master while recd runs; the
#    next request is told MOVED, follows it and is personalized. (A map
#    re-read between the move and the request would hide the MOVED: then
#    another slot is tried.)
moved=0
for u in "${USERS_ON[@]}"; do
  key=recd:hist:$u
  src=$(cluster_master_of "$key")
  slot=$(ccli "$src" cluster keyslot "$key")
  dst=$(cluster_masters | grep -vx "$src" | head -1)
  m0=$(info_field redis_cluster_moved)
  cluster_move_slot "$slot" "$src" "$dst" finish
  [ "$(kind_of "$u")" = personalized ] || fail "$u after its slot moved"
  [ "$(ccli "$dst" exists "$key")" = 1 ] || fail "$key not on $dst"
  m1=$(info_field redis_cluster_moved)
  if [ "$m1" -gt "$m0" ]; then moved=$((m1 - m0)); break; fi
done
[ "$moved" -gt 0 ] || fail "no MOVED followed"
pass "MOVED with a stale slot map ($moved followed)"

# 9. ASK: a slot half migrated (its keys on the target, the slot still the
#    source's): reads and FEEDBACK are asked over; then the move finishes.
u=$(for n in $(seq 20 299); do echo user$n; done | while read -r x; do
  [ "$(cluster_master_of "recd:hist:$x")" = "${CLUSTER_PORTS[0]}" ] || { echo "$x"; break; }; done)
key=recd:hist:$u
src=$(cluster_master_of "$key")
slot=$(ccli "$src" cluster keyslot "$key")
dst=$(cluster_masters | grep -vx "$src" | head -1)
a0=$(info_field redis_cluster_ask)
cluster_move_slot "$slot" "$src" "$dst"
[ "$(ccli "$src" cluster countkeysinslot "$slot")" = 0 ] || fail "slot $slot's keys still on $src"
[ "$(kind_of "$u")" = personalized ] || fail "$u during the migration"
b0=$(printf 'ASKING\nZSCORE %s item0\n' "$key" | ccli "$dst" | tail -1)
w=$(cli FEEDBACK "$u" item0 WEIGHT 3)
awk -v a="${b0:-0}" -v b="$w" 'BEGIN { exit !(a + 3 == b) }' || fail "FEEDBACK during the migration: $w"
[ "$(ccli "$src" cluster countkeysinslot "$slot")" = 0 ] ||
  fail "FEEDBACK during the migration wrote on $src"
a1=$(info_field redis_cluster_ask)
[ "$a1" -gt "$a0" ] || fail "no ASK followed"
dst_id=$(ccli "$dst" cluster myid)
for p in $(cluster_masters); do ccli "$p" cluster setslot "$slot" node "$dst_id" >/dev/null; done
[ "$(ccl zscore "$key" item0)" = "$w" ] || fail "FEEDBACK during the migration lost"
[ "$(kind_of "$u")" = personalized ] || fail "$u after the migration"
pass "ASK during a slot migration ($((a1 - a0)) followed)"

# 10. Failover: kill -9 a master under load. Every request is answered,
#    within the deadline (100 ms) and some slack; degraded during the
#    failover only; personalized again, by itself, once its replica is
#    promoted.
victim=$(cluster_masters | grep -vx "${CLUSTER_PORTS[0]}" | head -1)
victim_id=$(ccli "$victim" cluster myid)
vu=$(for n in $(seq 0 299); do echo user$n; done | while read -r x; do
  [ "$(cluster_master_of "recd:hist:$x")" = "$victim" ] && { echo "$x"; break; }; done)
w=$(cli FEEDBACK "$vu" item2 WEIGHT 7)
sleep 0.3 # replicated (asynchronously) to the victim's replica
users=$(seq 0 59 | sed 's/^/user/' | paste -sd,)
python3 "$(dirname "$0")/cluster_load.py" "$PORT" "$users" "$TMP/stop" 600 "$TMP/load.json" 8 &
LOAD_PID=$!
sleep 2
for i in "${!CLUSTER_PORTS[@]}"; do
  if [ "${CLUSTER_PORTS[$i]}" = "$victim" ]; then
    kill -9 "${CLUSTER_PIDS[$i]}"
    wait "${CLUSTER_PIDS[$i]}" 2>/dev/null || true # (no "Killed" line)
  fi
done
t0=$(date +%s%N)
# Until a replica has taken over the victim's slots and the survivors
# agree the cluster is ok again (cluster-node-timeout 1000 ms).
promoted=""
for _ in $(seq 1 300); do
  ok=1
  for p in "${CLUSTER_PORTS[@]}"; do
    [ "$p" = "$victim" ] && continue
    ccli "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || { ok=0; break; }
  done
  promoted=$(ccli "${CLUSTER_PORTS[0]}" cluster nodes 2>/dev/null |
    awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 8 { split($2, a, "@"); n = split(a[1], b, ":"); print b[n] }' |
    grep -vx "$victim" | wc -l)
  [ "$ok" = 1 ] && [ "$promoted" = 3 ] && break
  sleep 0.1
done
[ "$promoted" = 3 ] || fail "no replica promoted"
t1=$(date +%s%N)
wait_connected 1
t2=$(date +%s%N)
sleep 2 # load on the healed cluster
touch "$TMP/stop"
wait "$LOAD_PID" || fail "the load generator failed"
LOAD_PID=""
summary=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
c = d["counts"]
print(d["total"], c.get("personalized", 0), c.get("degraded", 0), c.get("popular", 0),
      c.get("error", 0), c.get("hang", 0), d["max_ms"], d["window_ms"],
      int(d["tail_personalized"]), "|".join(d["errors"]))' "$TMP/load.json")
read -r total pers deg pop errs hangs max_ms window tail_ok errtexts <<<"$summary"
[ "$errs" = 0 ] || fail "$errs error replies during the failover: $errtexts"
[ "$hangs" = 0 ] || fail "$hangs answers slower than 600 ms during the failover"
[ "$deg" -gt 0 ] || fail "no degraded answer while a master was down ($summary)"
[ "$tail_ok" = 1 ] || fail "not personalized again after the failover ($summary)"
[ "$(kind_of "$vu")" = personalized ] || fail "$vu (on the killed master) after the failover"
[ "$(ccl zscore "recd:hist:$vu" item2)" = "$w" ] || fail "FEEDBACK before the kill lost"
[ "$(info_field redis_cluster_masters)" = 3 ] || fail "masters after the failover"
[ "$(cli FEEDBACK "$vu" item2)" != "" ] || fail "FEEDBACK after the failover"
echo "failover: $total answers ($pers personalized, $deg degraded, $pop popular), 0 errors," \
  "0 hangs, slowest ${max_ms} ms; not personalized for ${window} ms; replica promoted" \
  "$(( (t1 - t0) / 1000000 )) ms after the kill, recd healthy $(( (t2 - t0) / 1000000 )) ms after"
pass "kill -9 of a master under load: 0 errors, 0 hangs, personalized again"

# 11. A master that hangs (SIGSTOP) under load: its connection stays open
#     and its commands are never answered; the deadline answers meanwhile,
#     the cluster promotes its replica, and recd (its map read of the hung
#     node given up, the hung connection dropped once it is no master)
#     personalizes again without waiting for the node to wake up.
hung=""
for m in $(cluster_masters | grep -vx "${CLUSTER_PORTS[0]}"); do
  mid=$(ccli "$m" cluster myid)
  ccli "${CLUSTER_PORTS[0]}" cluster nodes | grep -q "slave $mid" && { hung=$m; break; }
done
[ -n "$hung" ] || fail "no master with a replica left to stop"
for i in "${!CLUSTER_PORTS[@]}"; do
  [ "${CLUSTER_PORTS[$i]}" = "$hung" ] && HUNG_PID=${CLUSTER_PIDS[$i]}
done
rm -f "$TMP/stop"
python3 "$(dirname "$0")/cluster_load.py" "$PORT" "$users" "$TMP/stop" 600 "$TMP/load2.json" 8 &
LOAD_PID=$!
sleep 1
kill -STOP "$HUNG_PID" # stop_all sends SIGCONT should the test fail
t0=$(date +%s%N)
for _ in $(seq 1 300); do
  n=$(ccli "${CLUSTER_PORTS[0]}" cluster nodes 2>/dev/null |
    awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 8' | grep -vc ":$hung@" || true)
  [ "$n" = 3 ] && break
  sleep 0.1
done
[ "$n" = 3 ] || fail "the hung master's replica was not promoted"
wait_connected 1
t1=$(date +%s%N)
sleep 2
touch "$TMP/stop"
wait "$LOAD_PID" || fail "the load generator failed"
LOAD_PID=""
kill -CONT "$HUNG_PID"
HUNG_PID=""
summary=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
c = d["counts"]
print(d["total"], c.get("personalized", 0), c.get("degraded", 0), c.get("error", 0),
      c.get("hang", 0), d["max_ms"], d["window_ms"], int(d["tail_personalized"]),
      "|".join(d["errors"]))' "$TMP/load2.json")
read -r total pers deg errs hangs max_ms window tail_ok errtexts <<<"$summary"
[ "$errs" = 0 ] || fail "$errs error replies with a hung master: $errtexts"
[ "$hangs" = 0 ] || fail "$hangs answers slower than 600 ms with a hung master"
[ "$deg" -gt 0 ] || fail "no degraded answer while a master hung ($summary)"
[ "$tail_ok" = 1 ] || fail "not personalized again while the old master still hangs ($summary)"
echo "hung master: $total answers ($pers personalized, $deg degraded), 0 errors, 0 hangs," \
  "slowest ${max_ms} ms; not personalized for ${window} ms; recd healthy" \
  "$(( (t1 - t0) / 1000000 )) ms after SIGSTOP"
pass "a hung master (SIGSTOP) under load: 0 errors, 0 hangs, personalized again"
stop_recd

# 12. AUTH on every node; a wrong password is reported, not fatal.
stop_cluster
CLUSTER_PORTS=()
CLUSTER_PASSWORD=s3cret start_cluster
CLUSTER_PASSWORD=s3cret
"$BIN/recd-train" -q --import --csv "$TMP/in.csv" --redis-cluster-nodes "$CLUSTER_NODES" \
  --redis-password s3cret
start_recd --redis-cluster-nodes "$CLUSTER_NODES" --redis-password s3cret
wait_connected 1
[ "$(kind_of user3)" = personalized ] || fail "user3 with AUTH"
stop_recd
start_recd --redis-cluster-nodes "$CLUSTER_NODES" --redis-password wrong
sleep 0.5
[ "$(info_field redis_connected)" = 0 ] || fail "connected with a wrong password"
info_field redis_last_error | grep -Eq "AUTH .*(WRONGPASS|invalid)" || fail "AUTH error: $(info_field redis_last_error)"
[ "$(kind_of user3)" = degraded ] || fail "no degraded answer without Redis"
pass "AUTH on every node of the cluster"
