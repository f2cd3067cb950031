#!/usr/bin/env bash
# RECOMMEND throughput over TLS against plain TCP (issue 17), on the same
# daemon (`port` and `tls-port` both open), 50 connections each,
# redis-benchmark for both (--tls --cacert --cert --key for TLS, client
# certificates required as in production), alternating rounds, medians.
# Target: TLS at least 0.85x plain (within 15%). Also recd's own CPU time
# per request in each mode (utime + stime of the daemon from /proc), which
# the load of other processes on the machine disturbs less than the
# throughput: on a shared machine the client's TLS work (redis-benchmark
# runs on the same cores) and other jobs shift the wall clock numbers.
#
#   bench/tls.sh [--build DIR] [--rounds N] [--requests N] [--items N]
#
# 100k synthetic items at k = 64 (--items), 2000 customers with 20 past
# items each, so that every request reads a history from Redis and folds it
# in. Starts its own redis-server and recd on free loopback ports, and a
# throw-away PKI (tests/cli/tls_pki.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build rounds=5 requests=20000 items=100000
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --items) items=$2; shift 2 ;;
    -h|--help) sed -n '2,19{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "bench/tls.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for p in recd recd-train; do
  [ -x "$build/$p" ] || { echo "bench/tls.sh: $build/$p not built (--build)" >&2; exit 2; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recd-tls-bench-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "bench/tls.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.05; done; return 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
. tests/cli/tls_pki.sh
make_pki "$tmp/pki"
P=$tmp/pki

echo "bench/tls.sh, $(date '+%Y-%m-%d %H:%M %Z'): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs; load average $(cut -d' ' -f1 /proc/loadavg); $(openssl version)"
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --logfile "$tmp/redis.log" & pids+=($!)
wait_ping "$rport" || fail "redis-server did not start"
"$build/recd-train" -q --synthetic "$items" --factors 64 --out "$tmp/synth.bin"
# Customers named as redis-benchmark's __rand_int__ expands (12 digits), so
# that every request finds a history.
python3 - "$items" > "$tmp/synth.csv" <<'PY'
import random, sys
n = int(sys.argv[1]); rng = random.Random(1)
print("user,item,weight")
for u in range(2000):
    for i in rng.sample(range(n), 20):
        print(f"u{u:012d},i{i},{rng.randint(1, 3)}")
PY
"$build/recd-train" -q --import --csv "$tmp/synth.csv" --redis-port "$rport"
port=$(free_port) tport=$(free_port)
"$build/recd" --model "$tmp/synth.bin" --port "$port" --redis-port "$rport" --tls-port "$tport" \
  --tls-cert-file "$P/server.crt" --tls-key-file "$P/server.key" --tls-ca-cert-file "$P/ca.crt" \
  --loglevel warning 2>>"$tmp/recd.log" & recd_pid=$!
pids+=("$recd_pid")
wait_ping "$port" || fail "recd did not start: $(cat "$tmp/recd.log")"
tls=(--tls --cacert "$P/ca.crt" --cert "$P/client.crt" --key "$P/client.key")
# requests/s of RECOMMEND u<random customer> COUNT 10 at 50 connections
bench() {
  local out
  out=$(timeout 600 redis-benchmark -h 127.0.0.1 "$@" -c 50 -n "$requests" -r 2000 -q \
    RECOMMEND u__rand_int__ COUNT 10 2>&1 | tr '\r' '\n')
  echo "$out" | sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1 | grep . ||
    fail "redis-benchmark $*: $out"
}
[ -n "$(redis-cli -p "$port" RECOMMEND u000000000001 COUNT 10)" ] || fail "RECOMMEND answers nothing"
bench -p "$port" >/dev/null # warm-up (the fold-in's first requests)
# recd's CPU time so far, in clock ticks (utime + stime)
ticks() { awk '{ print $14 + $15 }' "/proc/$recd_pid/stat"; }
hz=$(getconf CLK_TCK)
# microseconds of recd CPU per request between two tick readings
us_per_req() { awk -v a="$1" -v b="$2" -v hz="$hz" -v n="$requests" 'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }'; }
plain=() over_tls=() cpu_plain=() cpu_tls=()
for round in $(seq "$rounds"); do
  t0=$(ticks)
  plain+=("$(bench -p "$port")")
  t1=$(ticks)
  over_tls+=("$(bench -p "$tport" "${tls[@]}")")
  t2=$(ticks)
  cpu_plain+=("$(us_per_req "$t0" "$t1")") cpu_tls+=("$(us_per_req "$t1" "$t2")")
  echo "round $round: plain ${plain[-1]} requests/s (recd ${cpu_plain[-1]} us CPU each), TLS ${over_tls[-1]} (${cpu_tls[-1]} us)" >&2
done
m_plain=$(median "${plain[@]}") m_tls=$(median "${over_tls[@]}")
c_plain=$(median "${cpu_plain[@]}") c_tls=$(median "${cpu_tls[@]}")
# capacity ratio: requests a recd core serves over TLS per request over plain TCP
cr=$(ratio "$c_plain" "$c_tls")
cverdict=$(awk -v r="$cr" 'BEGIN { print (r >= 0.85 ? "met" : "missed") }')
r=$(ratio "$m_tls" "$m_plain")
verdict=$(awk -v r="$r" 'BEGIN { print (r >= 0.85 ? "met" : "missed") }')
echo
echo "## RECOMMEND over TLS against plain TCP ($items items, k = 64, COUNT 10, 50 connections, $rounds alternating rounds of $requests requests, requests/s)"
echo
echo "| | plain TCP | TLS (client certificates) | TLS / plain | target |"
echo "| --- | --- | --- | ---: | --- |"
echo "| requests/s | ${plain[*]} (median $m_plain) | ${over_tls[*]} (median $m_tls) | $r | >= 0.85: $verdict |"
echo "| recd CPU us per request | ${cpu_plain[*]} (median $c_plain) | ${cpu_tls[*]} (median $c_tls) | $cr (plain / TLS) | >= 0.85: $cverdict |"
echo
echo "load average $(cut -d' ' -f1 /proc/loadavg) at the end"
