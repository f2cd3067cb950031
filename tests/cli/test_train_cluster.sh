#!/usr/bin/env bash
# recd-train against a real Redis Cluster (three masters, three replicas on
# loopback, tests/cli/cluster_lib.sh): --import spreads the keys over the
# masters, training reads every master and gives the model a single Redis
# with the same data gives, byte for byte; an import with a stale slot map
# (MOVED) and training during a slot migration (ASK) still see every
# customer; CLUSTERDOWN is retried, a bounded time; AUTH on every node;
# option errors name the culprit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/cluster_lib.sh"
T="$BIN/recd-train"
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 2000 150 6 3
users=$(tail -n +2 "$TMP/in.csv" | cut -d, -f1 | sort -u | wc -l)

# 1. Option errors, before any connection.
expect_fail 2 'redis-cluster-nodes: "127.0.0.1:0" is not host:port' \
  "$T" --redis-cluster-nodes "127.0.0.1:7000 127.0.0.1:0" --out "$TMP/x.bin"
expect_fail 2 'redis-cluster-nodes: "localhost" is not host:port' \
  "$T" --import --csv "$TMP/in.csv" --redis-cluster-nodes "localhost"
expect_fail 2 'redis-cluster-nodes: no node given' "$T" --redis-cluster-nodes " " --out "$TMP/x.bin"
expect_fail 2 'redis-cluster-nodes and --redis-host' \
  "$T" --redis-host 127.0.0.1 --redis-cluster-nodes "127.0.0.1:7000" --out "$TMP/x.bin"
expect_fail 2 'redis-cluster-nodes and --redis-socket' \
  "$T" --redis-cluster-nodes "127.0.0.1:7000" --redis-socket /tmp/x.sock --out "$TMP/x.bin"
pass "option errors"

start_cluster
start_redis
# A plain Redis named as a seed: not a cluster.
expect_fail 1 "cluster support disabled" \
  "$T" --redis-cluster-nodes "127.0.0.1:$REDIS_PORT" --out "$TMP/x.bin"
# A cluster node named as one server: a hint.
cport=${CLUSTER_PORTS[0]}
cluster_cli zadd recd:hist:probe 1 item1 >/dev/null
cluster_cli zadd recd:hist:probe2 1 item1 >/dev/null
expect_fail 1 "is a Redis Cluster node .*use --redis-cluster-nodes" \
  "$T" --redis-port "$cport" --out "$TMP/x.bin"
cluster_cli del recd:hist:probe >/dev/null
cluster_cli del recd:hist:probe2 >/dev/null
pass "a plain Redis as a seed, a cluster node as one server"

# 2. Import into the cluster (one seed is enough) and into the single Redis.
"$T" --import --csv "$TMP/in.csv" --items "$TMP/items.csv" \
  --redis-cluster-nodes "127.0.0.1:${CLUSTER_PORTS[4]} 127.0.0.1:1" 2>"$TMP/log" \
  || { cat "$TMP/log"; fail "import into the cluster"; }
"$T" -q --import --csv "$TMP/in.csv" --items "$TMP/items.csv" --redis-port "$REDIS_PORT"
total=0
for m in $(cluster_masters); do
  n=$(ccli "$m" dbsize)
  [ "$n" -gt 0 ] || fail "master $m holds no keys"
  h=$(ccli "$m" --scan --pattern 'recd:hist:*' | wc -l)
  total=$((total + h))
done
[ "$(cluster_masters | wc -l)" = 3 ] || fail "three masters"
[ "$total" = "$users" ] || fail "$total hist keys over the masters, want $users"
# Every customer's history, read through redis-cli -c, as in the single Redis.
tail -n +2 "$TMP/in.csv" | cut -d, -f1 | sort -u | sed 's/^/ZRANGE recd:hist:/; s/$/ 0 -1 WITHSCORES/' > "$TMP/cmds"
cluster_cli < "$TMP/cmds" 2>/dev/null | grep -v '^-> Redirected' > "$TMP/from-cluster"
redis-cli -p "$REDIS_PORT" < "$TMP/cmds" > "$TMP/from-single"
[ "$(grep -c . "$TMP/from-single")" -gt "$users" ] || fail "histories in the single Redis"
cmp -s "$TMP/from-cluster" "$TMP/from-single" || fail "histories read through redis-cli -c differ"
[ "$(cluster_cli hget recd:item:item3 category 2>/dev/null | tail -1)" = cat3 ] || fail "item attributes"
pass "import spreads $users customers over 3 masters, all readable with redis-cli -c"

# 3. Training from the cluster and from the single Redis: the same model,
#    byte for byte (same seed, SOURCE_DATE_EPOCH, one thread each).
export SOURCE_DATE_EPOCH=1700000000
train() {
  "$T" -q --factors 8 --iterations 4 --holdout 0.2 --seed 5 --threads 1 "$@" >/dev/null \
    2>"$TMP/tlog" || { cat "$TMP/tlog" >&2; fail "recd-train $*"; }
}
errorstat() { # errorstat PORT ASK|MOVED: the node's count of such replies
  ccli "$1" info errorstats | tr -d '\r' | sed -n "s/^errorstat_$2:count=//p" | grep . || echo 0
}
train --redis-port "$REDIS_PORT" --out "$TMP/single.bin" --report "$TMP/single.json"
train --redis-cluster-nodes "$CLUSTER_NODES" --out "$TMP/cluster.bin" --report "$TMP/cluster.json"
cmp -s "$TMP/single.bin" "$TMP/cluster.bin" || fail "the cluster's model differs from the single Redis's"
"$T" --info "$TMP/cluster.bin" | grep -q "\"users\": $users," || fail "users in the model"
"$T" --info "$TMP/cluster.bin" | grep -q '"categories": 6,' || fail "categories from the cluster"
grep -q '"source": "redis cluster ' "$TMP/cluster.json" || fail "report source"
pass "same model from the cluster as from a single Redis"

# 4. ASK: the slot of a customer's history is migrating (its keys already on
#    the target, the slot still the source's): training still reads every
#    customer and gives the same model.
key=recd:hist:user7
src=$(cluster_master_of "$key")
slot=$(ccli "$src" cluster keyslot "$key")
dst=$(cluster_masters | grep -vx "$src" | head -1)
ask0=$(errorstat "$src" ASK)
cluster_move_slot "$slot" "$src" "$dst"
[ "$(ccli "$src" cluster countkeysinslot "$slot")" = 0 ] || fail "slot $slot's keys still on the source"
[ "$(ccli "$dst" cluster countkeysinslot "$slot")" -gt 0 ] || fail "slot $slot's keys not on the target"
train --redis-cluster-nodes "$CLUSTER_NODES" --out "$TMP/ask.bin"
ask=$(( $(errorstat "$src" ASK) - ask0 ))
[ "$ask" -gt 0 ] || fail "no ASK redirection happened"
cmp -s "$TMP/single.bin" "$TMP/ask.bin" || fail "the model during a migration differs"
pass "ASK during a slot migration ($ask redirections)"

# 5. MOVED: recd-train reads the slot map, then (while it waits for its CSV
#    on a FIFO) a slot moves to another master; the import is told MOVED,
#    re-reads the map and writes every key where it belongs.
key=mv:hist:user11
src=$(cluster_master_of "$key")
slot=$(ccli "$src" cluster keyslot "$key")
dst=$(cluster_masters | grep -vx "$src" | head -1)
moved0=$(errorstat "$src" MOVED)
# Until recd-train --import (started before) holds a connection to every
# master: it has read the slot map by then. A normal client on one master
# alone could be its seed connection, open before the map is read (under a
# loaded CI a slot could then move before the map was read, and no MOVED
# would happen); its connections to the others open only after.
wait_connected_everywhere() {
  local i m ok
  for i in $(seq 1 200); do
    ok=1
    for m in $(cluster_masters); do
      [ "$(ccli "$m" client list | grep -v 'cmd=client' | grep -c 'flags=N')" -ge 1 ] || ok=0
    done
    [ "$ok" = 1 ] && return 0
    kill -0 "$imp" 2>/dev/null || fail "recd-train --import exited before it connected"
    sleep 0.05
  done
  fail "recd-train did not connect to every master"
}
mkfifo "$TMP/fifo"
"$T" -q --import --csv "$TMP/fifo" --key-prefix mv: --redis-cluster-nodes "$CLUSTER_NODES" \
  2>"$TMP/mvlog" &
imp=$!
trap 'kill "$imp" 2>/dev/null || true; stop_cluster; cleanup' EXIT
# Once it is connected to every master, the slot moves.
wait_connected_everywhere
cluster_move_slot "$slot" "$src" "$dst" finish
cat "$TMP/in.csv" > "$TMP/fifo"
wait "$imp" || { cat "$TMP/mvlog"; fail "import with a stale slot map"; }
moved=$(( $(errorstat "$src" MOVED) - moved0 ))
[ "$moved" -gt 0 ] || fail "no MOVED redirection happened"
# the map is re-read after the first: only the first batch's commands on
# that slot are redirected
[ "$moved" -lt 100 ] || fail "$moved MOVED redirections: the slot map was not refreshed"
[ "$(ccli "$dst" exists "$key")" = 1 ] || fail "$key not on its new master"
sed 's/recd:hist:/mv:hist:/' "$TMP/cmds" > "$TMP/mvcmds"
cluster_cli < "$TMP/mvcmds" 2>/dev/null | grep -v '^-> Redirected' > "$TMP/from-mv"
cmp -s "$TMP/from-mv" "$TMP/from-single" || fail "histories imported through a MOVED differ"
train --redis-cluster-nodes "$CLUSTER_NODES" --key-prefix mv: --out "$TMP/mv.bin"
"$T" --info "$TMP/mv.bin" | grep -q "\"users\": $users," || fail "users after the move"
pass "MOVED with a stale slot map ($moved redirections)"

# 6. CLUSTERDOWN: the slot of a key is served by no one for a while (DELSLOTS
#    on every node) while an import waits for its CSV; it is retried until
#    the slot's owner takes it back. Left unserved, the import fails after
#    its bounded retries with the reason.
key=down:hist:user5
owner=$(cluster_master_of "$key")
slot=$(ccli "$owner" cluster keyslot "$key")
import_waiting() { # import_waiting PREFIX: recd-train --import on a FIFO, connected
  rm -f "$TMP/fifo"
  mkfifo "$TMP/fifo"
  "$T" -q --import --csv "$TMP/fifo" --key-prefix "$1" --redis-cluster-nodes "$CLUSTER_NODES" \
    2>"$TMP/downlog" &
  imp=$!
  wait_connected_everywhere
}
down0=$(errorstat "$owner" CLUSTERDOWN)
import_waiting down:
for p in "${CLUSTER_PORTS[@]}"; do ccli "$p" cluster delslots "$slot" >/dev/null; done
{ sleep 1.5; ccli "$owner" cluster addslots "$slot" >/dev/null; } &
back=$!
cat "$TMP/in.csv" > "$TMP/fifo"
wait "$imp" || { cat "$TMP/downlog"; fail "import while a slot was down"; }
wait "$back"
down=$(( $(errorstat "$owner" CLUSTERDOWN) - down0 ))
[ "$down" -gt 0 ] || fail "no CLUSTERDOWN reply happened"
cluster_wait_ok
sed 's/recd:hist:/down:hist:/' "$TMP/cmds" > "$TMP/downcmds"
cluster_cli < "$TMP/downcmds" 2>/dev/null | grep -v '^-> Redirected' > "$TMP/from-down"
cmp -s "$TMP/from-down" "$TMP/from-single" || fail "histories imported through CLUSTERDOWN differ"
import_waiting never:
for p in "${CLUSTER_PORTS[@]}"; do ccli "$p" cluster delslots "$slot" >/dev/null; done
cat "$TMP/in.csv" > "$TMP/fifo"
status=0
wait "$imp" || status=$?
[ "$status" = 1 ] || fail "import with a slot never served exited $status"
grep -Eq "unanswered after 16 attempts \(last: CLUSTERDOWN" "$TMP/downlog" \
  || { cat "$TMP/downlog"; fail "no clear error for a slot never served"; }
ccli "$owner" cluster addslots "$slot" >/dev/null
cluster_wait_ok
pass "CLUSTERDOWN retried ($down replies), then a clear error"

# 7. AUTH on every node; a wrong password is a clear error.
stop_cluster
CLUSTER_PORTS=()
CLUSTER_PASSWORD=s3cret start_cluster
CLUSTER_PASSWORD=s3cret
"$T" -q --import --csv "$TMP/in.csv" --redis-cluster-nodes "$CLUSTER_NODES" --redis-password s3cret
train --redis-cluster-nodes "$CLUSTER_NODES" --redis-password s3cret --out "$TMP/auth.bin"
"$T" --info "$TMP/auth.bin" | grep -q "\"users\": $users," || fail "users with AUTH"
expect_fail 1 "AUTH failed|NOAUTH|WRONGPASS" \
  "$T" --redis-cluster-nodes "$CLUSTER_NODES" --redis-password wrong --out "$TMP/x.bin"
pass "AUTH on every node of the cluster"
