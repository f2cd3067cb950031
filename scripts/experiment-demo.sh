#!/usr/bin/env bash
# usage: scripts/experiment-demo.sh [--no-wait]
#
# The A/B demo: two models of the demo shop served side by side, scripted
# shoppers, and the report of what each model sold.
#
#   scripts/experiment-demo.sh            # runs, prints the report, then
#                                         # keeps serving until Ctrl-C
#   scripts/experiment-demo.sh --no-wait  # exits after the report
#
# Every customer's purchases are split (seeded): 80% go to Redis as the
# history recd reads, 20% are the purchases still to come (future.csv),
# which examples/experiment/traffic.py makes each shopper buy if they are
# shown the item. Variant "current" is a small model (k = 16), "candidate"
# the default one (k = 256); customers are split 50/50 by recd.
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  ""|--no-wait) ;;
  *) echo "experiment-demo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
wait_at_end=1
[ "${1:-}" = "--no-wait" ] && wait_at_end=0

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 >/dev/null
run="$PWD/demo/run-experiment"
rm -rf "$run" && mkdir -p "$run"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done; return 1; }
pids=()
cleanup() { # recd first, then its Redis
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null && wait "${pids[i]}" 2>/dev/null
  done
  true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$run" \
  --logfile "$run/redis.log" & pids+=($!)
wait_ping "$rport"

# 80/20 split of every customer's purchases, seeded.
gzip -dc demo/online-retail/interactions.csv.gz | /usr/bin/python3 -c '
import csv, random, sys
rng = random.Random(7)
rows = list(csv.reader(sys.stdin))
head, rows = rows[0], rows[1:]
with open(sys.argv[1], "w", newline="") as h, open(sys.argv[2], "w", newline="") as f:
    wh, wf = csv.writer(h), csv.writer(f)
    wh.writerow(head); wf.writerow(head)
    for r in rows:
        (wf if rng.random() < 0.2 else wh).writerow(r)
' "$run/history.csv" "$run/future.csv"
build/recd-train -q --import --csv "$run/history.csv" --items demo/online-retail/items.csv \
  --redis-port "$rport"
echo "== trained two models on the histories (80% of the purchases)"
build/recd-train -q --csv "$run/history.csv" --items demo/online-retail/items.csv \
  --factors 16 --out "$run/current.bin"
build/recd-train -q --csv "$run/history.csv" --items demo/online-retail/items.csv \
  --out "$run/candidate.bin"

port=$(free_port)
mport=$(free_port)
build/recd --port "$port" --redis-port "$rport" --metrics-port "$mport" \
  --variant "current $run/current.bin 50" --variant "candidate $run/candidate.bin 50" \
  --experiment-refresh-ms 500 --loglevel warning & pids+=($!)
wait_ping "$port"
echo "== recd serves both on 127.0.0.1:$port; shoppers visit the home page"
/usr/bin/python3 examples/experiment/traffic.py "$port" "$run/future.csv"
sleep 1 # the counters of the last answers reach Redis within 100 ms
echo
echo "== redis-cli -p $port EXPERIMENT REPORT (as a table)"
redis-cli -p "$port" EXPERIMENT REPORT | /usr/bin/python3 -c '
import sys
lines = [l.rstrip("\n") for l in sys.stdin]
rows, cur = [], []
# redis-cli prints nested arrays flat, one value per line: pairs of field, value,
# each row starting again at "variant"
for i in range(0, len(lines) - 1, 2):
    k, v = lines[i], lines[i + 1]
    if k == "variant" and cur:
        rows.append(dict(cur)); cur = []
    cur.append((k, v))
if cur:
    rows.append(dict(cur))
cols = ["variant", "placement", "requests", "impressions", "clicks", "purchases", "ctr",
        "conversion", "lift", "lift_low", "lift_high", "p_value"]
def fmt(v):
    try:
        x = float(v)
        return f"{x:.4g}"
    except ValueError:
        return v or "-"
print(" | ".join(cols))
for r in rows:
    print(" | ".join(fmt(r.get(c, "")) for c in cols))
'
echo
echo "== the status page: http://127.0.0.1:$mport/   (JSON: /experiments.json)"
if [ "$wait_at_end" = 1 ]; then
  echo "== Ctrl-C stops recd and the demo's redis-server"
  wait "${pids[1]}"
fi
