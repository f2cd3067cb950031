# cluster_lib.sh - a real Redis Cluster on loopback for the shell tests
# (sourced after lib.sh; not a test itself). start_cluster starts six
# redis-server processes (three masters, three replicas) on free ports, each
# in its own directory under $TMP, creates the cluster with
# `redis-cli --cluster create ... --cluster-replicas 1` and waits until every
# node says cluster_state:ok. Every process is stopped on exit, pass or fail
# (the EXIT trap runs stop_cluster, then lib.sh's cleanup).
#
# After start_cluster:
#   CLUSTER_PORTS   the six client ports
#   CLUSTER_NODES   "127.0.0.1:p1 127.0.0.1:p2 ..." (recd-train's seeds)
#   cluster_masters prints the masters' ports, one a line
#   cluster_cli ... redis-cli -c on the first node
#   cluster_master_of KEY   the port of the master holding KEY's slot
#   cluster_move_slot SLOT FROM_PORT TO_PORT [finish]: migrates a slot's keys
#                   (MIGRATING / IMPORTING, MIGRATE); with "finish", assigns
#                   the slot to the target on every master as well
# CLUSTER_PASSWORD set before start_cluster: requirepass / masterauth.
# CLUSTER_NODE_TIMEOUT set before start_cluster: cluster-node-timeout in ms
#                   (default 5000; small for a quick failover)

CLUSTER_PORTS=()
CLUSTER_PIDS=()
CLUSTER_NODES=""

stop_cluster() {
  local p
  for p in "${CLUSTER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${CLUSTER_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  CLUSTER_PIDS=()
}
trap 'stop_cluster; cleanup' EXIT

# redis-cli on one node (port), with the password when there is one.
ccli() {
  local port=$1; shift
  if [ -n "${CLUSTER_PASSWORD:-}" ]; then
    REDISCLI_AUTH="$CLUSTER_PASSWORD" redis-cli -p "$port" "$@"
  else
    redis-cli -p "$port" "$@"
  fi
}

cluster_cli() { ccli "${CLUSTER_PORTS[0]}" -c "$@"; }

start_cluster() {
  local i port bus dir auth=()
  [ -n "${CLUSTER_PASSWORD:-}" ] && auth=(--requirepass "$CLUSTER_PASSWORD" --masterauth "$CLUSTER_PASSWORD")
  for i in 0 1 2 3 4 5; do
    port=$(free_port)
    bus=$(free_port)
    dir="$TMP/cluster-$port"
    mkdir -p "$dir"
    redis-server --port "$port" --cluster-port "$bus" --bind 127.0.0.1 \
      --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
      --cluster-node-timeout "${CLUSTER_NODE_TIMEOUT:-5000}" --save "" --appendonly no --dir "$dir" \
      --repl-diskless-sync-delay 0 \
      --logfile "$dir/redis.log" "${auth[@]}" &
    CLUSTER_PIDS+=($!)
    CLUSTER_PORTS+=("$port")
  done
  for port in "${CLUSTER_PORTS[@]}"; do
    for i in $(seq 1 100); do
      ccli "$port" ping 2>/dev/null | grep -q PONG && break
      [ "$i" = 100 ] && fail "cluster node on port $port did not start"
      sleep 0.05
    done
  done
  CLUSTER_NODES=""
  for port in "${CLUSTER_PORTS[@]}"; do CLUSTER_NODES="$CLUSTER_NODES 127.0.0.1:$port"; done
  CLUSTER_NODES=${CLUSTER_NODES# }
  # shellcheck disable=SC2086
  ccli "${CLUSTER_PORTS[0]}" --cluster create $CLUSTER_NODES --cluster-replicas 1 \
    --cluster-yes >"$TMP/cluster-create.log" 2>&1 \
    || { cat "$TMP/cluster-create.log" >&2; fail "redis-cli --cluster create"; }
  cluster_wait_ok
  cluster_wait_replicas
}

# Waits (at most 30 s) until every replica has finished its first sync
# (master_link_status:up). A replica that never synced cannot take over:
# a test that kills a master right after the cluster is created (Redis
# delays a diskless full sync by repl-diskless-sync-delay, 5 s by default)
# would otherwise wait for a failover that never comes.
cluster_wait_replicas() {
  local port i up
  for i in $(seq 1 300); do
    up=0
    for port in "${CLUSTER_PORTS[@]}"; do
      ccli "$port" info replication 2>/dev/null | grep -q '^master_link_status:up' && up=$((up + 1))
    done
    [ "$up" -ge 3 ] && return 0
    sleep 0.1
  done
  fail "the cluster's replicas did not finish their first sync in 30 s"
}

# Waits (at most 30 s) until every node reports cluster_state:ok and knows
# three masters with slots.
cluster_wait_ok() {
  local port ok i
  for i in $(seq 1 300); do
    ok=1
    for port in "${CLUSTER_PORTS[@]}"; do
      ccli "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || { ok=0; break; }
      [ "$(ccli "$port" cluster slots 2>/dev/null | grep -c .)" -gt 0 ] || { ok=0; break; }
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  fail "the cluster did not reach cluster_state:ok in 30 s"
}

cluster_masters() {
  ccli "${CLUSTER_PORTS[0]}" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 8 {
    split($2, a, "@"); n = split(a[1], b, ":"); print b[n] }'
}

cluster_master_of() {
  local slot
  slot=$(ccli "${CLUSTER_PORTS[0]}" cluster keyslot "$1")
  ccli "${CLUSTER_PORTS[0]}" cluster nodes | awk -v s="$slot" '$3 ~ /master/ {
    for (i = 9; i <= NF; i++) { n = split($i, r, "-"); lo = r[1]; hi = n > 1 ? r[2] : r[1];
      if ($i !~ /^\[/ && s + 0 >= lo + 0 && s + 0 <= hi + 0) { split($2, a, "@");
        m = split(a[1], b, ":"); print b[m]; exit } } }'
}

cluster_move_slot() {
  local slot=$1 from=$2 to=$3 finish=${4:-} from_id to_id keys p
  from_id=$(ccli "$from" cluster myid)
  to_id=$(ccli "$to" cluster myid)
  ccli "$to" cluster setslot "$slot" importing "$from_id" | grep -q OK || fail "setslot importing"
  ccli "$from" cluster setslot "$slot" migrating "$to_id" | grep -q OK || fail "setslot migrating"
  while :; do
    keys=$(ccli "$from" cluster getkeysinslot "$slot" 100)
    [ -z "$keys" ] && break
    # shellcheck disable=SC2086
    if [ -n "${CLUSTER_PASSWORD:-}" ]; then
      ccli "$from" migrate 127.0.0.1 "$to" "" 0 5000 AUTH "$CLUSTER_PASSWORD" keys $keys >/dev/null
    else
      ccli "$from" migrate 127.0.0.1 "$to" "" 0 5000 keys $keys >/dev/null
    fi
  done
  if [ "$finish" = finish ]; then
    for p in $(cluster_masters) "$to" "$from"; do
      ccli "$p" cluster setslot "$slot" node "$to_id" >/dev/null
    done
  fi
}
