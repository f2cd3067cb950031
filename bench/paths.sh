#!/usr/bin/env bash
# One table per request path, each against its peer or target, in one run:
#   RECOMMEND  against FAISS IndexFlatIP (bench/compare: 100k and 1M items,
#              k = 64; targets: 1M one connection p50 <= 0.05x FAISS nq = 1,
#              100k 50 connections >= 3x FAISS nq = 32 queries/s)
#   SIMILAR    against RECOMMEND on the same daemon (bench/compare; target:
#              p50 at most RECOMMEND's at 1M items)
#   RANK       20 candidates against RECOMMEND COUNT 10 on the same daemon
#              (100k items; target: p50 at most RECOMMEND's: RANK reads and
#              folds in like RECOMMEND but scores only its candidates)
#   FEEDBACK   through recd against the bare Redis write it wraps
#              (redis-benchmark ZINCRBY on the same redis-server; peer ratio)
#   rules      a cart (HISTORY 3) and a category cap with promoted slots
#              (MAXPERCATEGORY 2 PROMOTE 2) against a plain RECOMMEND
#   default    the demo shop's default model (k = 256) against the same data
#              at k = 64, 50 connections (target: at least 0.7x)
# Alternating rounds (--rounds, default 3) on the same daemon, medians of
# the rounds. Starts its own redis-server and recd on free loopback ports.
#
#   bench/paths.sh [--build DIR] [--rounds N] [--requests N] [--skip-compare]
#
# --skip-compare leaves out bench/compare (RECOMMEND and SIMILAR against
# FAISS: about 5 minutes of the run, and it needs python3-faiss).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build rounds=3 requests=20000 compare=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --skip-compare) compare=0; shift ;;
    -h|--help) sed -n '2,22{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "bench/paths.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for p in recd recd-train recd-bench; do
  [ -x "$build/$p" ] || { echo "bench/paths.sh: $build/$p not built (--build)" >&2; exit 2; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-paths-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 tests/free_port.py; } # below the ephemeral range
wait_ping() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done; return 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# recd-bench e2e's throughput and median latency: "rps p50"
e2e() { "$build/recd-bench" e2e "$@" | awk '/throughput/ { r = $2 } /median/ { m = $4 } END { print r, m }'; }

start=$(date +%s)
echo "bench/paths.sh, $(date '+%Y-%m-%d %H:%M %Z'): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; load average $(cut -d' ' -f1 /proc/loadavg)"
echo

if [ "$compare" = 1 ]; then
  echo "## RECOMMEND and SIMILAR (bench/compare)"
  echo
  /usr/bin/python3 bench/compare --build "$build" --sizes 100000,1000000 --queries 1024,512 \
    --e2e-sizes 100000,1000000
  echo
fi

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --logfile "$tmp/redis.log" & pids+=($!)
wait_ping "$rport"

# 100k synthetic items, k = 64; 2000 customers with 20 random past items
# each, so that every request folds a history in.
n=100000
"$build/recd-train" -q --synthetic "$n" --factors 64 --out "$tmp/synth.bin"
python3 - "$n" > "$tmp/synth.csv" <<'PY'
import random, sys
n = int(sys.argv[1]); rng = random.Random(1)
print("user,item,weight")
for u in range(2000):
    for i in rng.sample(range(n), 20):
        print(f"u{u},i{i},{rng.randint(1, 3)}")
PY
"$build/recd-train" -q --import --csv "$tmp/synth.csv" --redis-port "$rport"
python3 -c 'import random, sys; r = random.Random(5)
print(" ".join(f"i{i}" for i in r.sample(range(int(sys.argv[1])), 100)))' "$n" |
  xargs redis-cli -p "$rport" sadd recd:promoted >/dev/null
port=$(free_port)
"$build/recd" --model "$tmp/synth.bin" --port "$port" --redis-port "$rport" --loglevel warning \
  2>>"$tmp/recd.log" & recd_pid=$!
pids+=("$recd_pid")
wait_ping "$port"
sleep 2.5 # the promoted set is read with the unavailable set, every 2 s
u=(--port "$port" --users-csv "$tmp/synth.csv" --requests "$requests")
e2e "${u[@]}" --connections 50 --requests 2000 >/dev/null # warm-up

# RANK against RECOMMEND, and the rules against plain, alternating.
declare -A r1 l1 r50
for round in $(seq "$rounds"); do
  for mode in rec rank cart rules; do
    extra=()
    case $mode in
      rank) extra=(--rank 20) ;;
      cart) extra=(--history 3) ;;
      rules) extra=(--args "MAXPERCATEGORY 2 PROMOTE 2") ;;
    esac
    if [ "$mode" = rec ] || [ "$mode" = rank ]; then
      read -r rps p50 < <(e2e "${u[@]}" --connections 1 "${extra[@]}")
      r1[$mode]+="$rps " l1[$mode]+="$p50 "
    fi
    read -r rps p50 < <(e2e "${u[@]}" --connections 50 "${extra[@]}")
    r50[$mode]+="$rps "
  done
done
# FEEDBACK through recd against ZINCRBY on the same redis-server, 50
# connections each, alternating.
fb=() zi=()
for round in $(seq "$rounds"); do
  read -r rps _ < <(e2e "${u[@]}" --connections 50 --feedback)
  fb+=("$rps")
  zi+=("$(redis-benchmark -p "$rport" -q -c 50 -n "$requests" -r 100000 \
    zincrby recd:hist:bench 1 i__rand_int__ 2>/dev/null | tr '\r' '\n' |
    sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)")
done
kill "$recd_pid"; wait "$recd_pid" 2>/dev/null || true

# shellcheck disable=SC2086
{
  m_rec1=$(median ${l1[rec]}) m_rank1=$(median ${l1[rank]})
  m_rec50=$(median ${r50[rec]}) m_rank50=$(median ${r50[rank]})
  m_cart=$(median ${r50[cart]}) m_rules=$(median ${r50[rules]})
  m_fb=$(median "${fb[@]}") m_zi=$(median "${zi[@]}")
}
verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = op == "le" ? v <= t : v >= t; print ok ? "met" : "missed" }'; }

echo "## RANK (100k items, k = 64, 20 candidates; $rounds alternating rounds, $requests requests each)"
echo
echo "| | RECOMMEND COUNT 10 | RANK 20 items | RANK / RECOMMEND | target |"
echo "| --- | --- | --- | ---: | --- |"
echo "| p50 us, 1 connection | ${l1[rec]}(median $m_rec1) | ${l1[rank]}(median $m_rank1) | $(ratio "$m_rank1" "$m_rec1") | <= 1: $(verdict "$(ratio "$m_rank1" "$m_rec1")" 1 le) |"
echo "| requests/s, 50 connections | ${r50[rec]}(median $m_rec50) | ${r50[rank]}(median $m_rank50) | $(ratio "$m_rank50" "$m_rec50") | |"
echo
echo "## FEEDBACK (50 connections; TYPE click: history ZSET, its time and the outcome counters in one Lua script)"
echo
echo "| FEEDBACK/s through recd | ZINCRBY/s on the same redis-server | FEEDBACK / ZINCRBY |"
echo "| --- | --- | ---: |"
echo "| ${fb[*]} (median $m_fb) | ${zi[*]} (median $m_zi) | $(ratio "$m_fb" "$m_zi") |"
echo
echo "## Storefront rules (100k items, k = 64, 50 connections, requests/s)"
echo
echo "| plain RECOMMEND | HISTORY 3 (a cart) | MAXPERCATEGORY 2 PROMOTE 2 | cart / plain | rules / plain |"
echo "| --- | --- | --- | ---: | ---: |"
echo "| ${r50[rec]}(median $m_rec50) | ${r50[cart]}(median $m_cart) | ${r50[rules]}(median $m_rules) | $(ratio "$m_cart" "$m_rec50") | $(ratio "$m_rules" "$m_rec50") |"
echo

# The demo shop's default model against k = 64 on the same data.
gzip -dc demo/online-retail/interactions.csv.gz > "$tmp/demo.csv"
redis-cli -p "$rport" flushall >/dev/null
"$build/recd-train" -q --import --csv "$tmp/demo.csv" --redis-port "$rport"
"$build/recd-train" -q --csv "$tmp/demo.csv" --out "$tmp/k256.bin"
"$build/recd-train" -q --csv "$tmp/demo.csv" --factors 64 --out "$tmp/k64.bin"
declare -A kr
for round in $(seq "$rounds"); do
  for k in 256 64; do
    port=$(free_port)
    "$build/recd" --model "$tmp/k$k.bin" --port "$port" --redis-port "$rport" --loglevel warning \
      2>>"$tmp/recd.log" & pid=$!
    wait_ping "$port"
    # the first requests build the fold-in's eigenbasis: untimed
    e2e --port "$port" --connections 50 --requests 2000 --users-csv "$tmp/demo.csv" >/dev/null
    read -r rps _ < <(e2e --port "$port" --connections 50 --requests "$requests" --users-csv "$tmp/demo.csv")
    kr[$k]+="$rps "
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
# shellcheck disable=SC2086
m256=$(median ${kr[256]}) m64=$(median ${kr[64]})
echo "## The default model (demo shop, online-retail: k = 256 against k = 64, 50 connections, RECOMMEND/s)"
echo
echo "| k = 256 | k = 64 | k = 256 / k = 64 | target |"
echo "| --- | --- | ---: | --- |"
echo "| ${kr[256]}(median $m256) | ${kr[64]}(median $m64) | $(ratio "$m256" "$m64") | >= 0.7: $(verdict "$(ratio "$m256" "$m64")" 0.7 ge) |"
echo
echo "$(( $(date +%s) - start )) s; load average $(cut -d' ' -f1 /proc/loadavg) at the end"
