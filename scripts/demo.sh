#!/usr/bin/env bash
# The recd demo: a real shop's purchase histories in Redis, a model trained
# from them with a hold-out report, and recd serving in the foreground.
#
#   scripts/demo.sh                                   # own redis-server
#   scripts/demo.sh --redis-host H --redis-port P     # an existing Redis
#   scripts/demo.sh --port 7070                       # recd's port
#
# With its own redis-server the demo uses a throw-away instance on a free
# loopback port. Against an existing Redis it uses the key prefix
# `recd-demo:` and replaces only those keys, so running it again is safe.
# Ctrl-C stops recd (and the demo's own redis-server) cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
redis_host=127.0.0.1
redis_port=""
port=7070
while [ $# -gt 0 ]; do
  case "$1" in
    --redis-host) redis_host=$2; shift 2 ;;
    --redis-port) redis_port=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    -h|--help) echo "usage: scripts/demo.sh [--redis-host H --redis-port P] [--port N]"
               sed -n '2,12{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
echo "== built recd in build/"

run="$PWD/demo/run"
mkdir -p "$run"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done; return 1; }
redis_pid=""
recd_pid=""
cleanup() {
  [ -n "$recd_pid" ] && kill -TERM "$recd_pid" 2>/dev/null && wait "$recd_pid" 2>/dev/null
  [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

prefix="recd:"
if [ -z "$redis_port" ]; then
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$run" --logfile "$run/redis.log" &
  redis_pid=$!
  wait_ping "$redis_port" || { echo "demo.sh: redis-server did not start (see $run/redis.log)" >&2; exit 1; }
  echo "== started redis-server on 127.0.0.1:$redis_port (demo-only, in memory)"
else
  prefix="recd-demo:"
  echo "== using Redis at $redis_host:$redis_port, keys under $prefix (replaced)"
  redis-cli -h "$redis_host" -p "$redis_port" --scan --pattern "${prefix}*" |
    xargs -r -n 500 redis-cli -h "$redis_host" -p "$redis_port" del >/dev/null
fi
R=(--redis-host "$redis_host" --redis-port "$redis_port" --key-prefix "$prefix")

gzip -dc demo/online-retail/interactions.csv.gz > "$run/interactions.csv"
build/recd-train -q --import --csv "$run/interactions.csv" --items demo/online-retail/items.csv "${R[@]}"
echo "== imported 266,221 purchase histories of 4,334 customers (UCI Online Retail, CC BY 4.0)"

echo "== training from Redis, with a 20% hold-out evaluation"
# A small model first, kept as an earlier version (--keep) to roll back to.
build/recd-train -q "${R[@]}" --factors 16 --iterations 4 --out "$run/model.bin" --keep 3
build/recd-train "${R[@]}" --holdout 0.2 --ease-max-items 0 --report "$run/report.json" \
  --out "$run/model.bin" --keep 3 2>&1 | grep -E '^  |hold-out|wrote|published'

# The demo shop's product families (a parasol in natural, pink, black...)
# are used: no other colour of what the customer already bought.
build/recd --model "$run/model.bin" --port "$port" "${R[@]}" --unavailable-refresh-ms 500 \
  --exclude-bought-groups yes &
recd_pid=$!
wait_ping "$port" || { echo "demo.sh: recd did not start" >&2; exit 1; }

title() { awk -F, -v id="$1" '$1 == id { sub(/^[^,]*,/, ""); sub(/,[^,]*,[^,]*$/, ""); gsub(/"/, ""); print; exit }' demo/online-retail/items.csv; }
show() { # prints ids with their titles
  while read -r id; do [ -n "$id" ] && printf '     %-8s %s\n' "$id" "$(title "$id")"; done
}
customer=17850
product=85123A
echo
echo "== recd is serving on 127.0.0.1:$port. Try (copy-paste):"
echo
echo "   redis-cli -p $port RECOMMEND $customer COUNT 5"
redis-cli -p "$port" RECOMMEND "$customer" COUNT 5 | show
echo "   redis-cli -p $port SIMILAR $product COUNT 5        # $(title $product)"
redis-cli -p "$port" SIMILAR "$product" COUNT 5 | show
echo "   redis-cli -p $port RECOMMEND $customer COUNT 3 CATEGORY kitchen WITHREASONS"
redis-cli -p "$port" RECOMMEND "$customer" COUNT 3 CATEGORY kitchen WITHREASONS | paste - - | while read -r id why; do
  printf '     %-8s %-40s because of %s %s\n' "$id" "$(title "$id")" "$why" "$(title "$why")"; done
first=$(redis-cli -p "$port" RECOMMEND "$customer" COUNT 1)
echo "   redis-cli -p $port FEEDBACK $customer $first          # the customer buys it"
redis-cli -p "$port" FEEDBACK "$customer" "$first" | sed 's/^/     new weight /'
echo "   redis-cli -p $port RECOMMEND $customer COUNT 5        # $first is gone, the rest moved"
redis-cli -p "$port" RECOMMEND "$customer" COUNT 5 | show
echo "   redis-cli -p $port RECOMMEND session-42 HISTORY 3 22727 22726 22728 COUNT 3"
echo "     # an anonymous visitor whose cart holds: $(title 22727), $(title 22726), $(title 22728)"
redis-cli -p "$port" RECOMMEND session-42 HISTORY 3 22727 22726 22728 COUNT 3 | show
not=$(redis-cli -p "$port" RECOMMEND "$customer" COUNT 1)
echo "   redis-cli -p $port FEEDBACK $customer $not TYPE hide     # \"not interested\" in $(title "$not")"
redis-cli -p "$port" FEEDBACK "$customer" "$not" TYPE hide | sed 's/^/     hidden: /'
echo "   redis-cli -p $port RECOMMEND $customer COUNT 3 MAXPERCATEGORY 1   # never again; one per category"
redis-cli -p "$port" RECOMMEND "$customer" COUNT 3 MAXPERCATEGORY 1 | show
echo "   redis-cli -p $port INFO stats"
echo "   redis-cli -p $port MODEL INFO"
echo "   redis-cli -p $port MODEL ROLLBACK                   # the previous version (k=16), until:"
echo "   redis-cli -p $port MODEL RELOAD                     # model.bin, the newest, again"
echo
echo "== recd runs in the foreground; Ctrl-C stops it and the demo's redis-server."
wait "$recd_pid"
