#!/usr/bin/env bash
# The HTTP monitoring endpoint (metrics-port): /metrics parsed by the
# Prometheus text-format parser of Debian's python3-prometheus-client, with
# counters that move; /healthz 200 and 503 while shutting down; 404, 405,
# 400, 431; the connection cap; start-up errors. Own redis-server and recd
# on free ports.
. "$(dirname "$0")/lib.sh"
# Debian's interpreter: python3-prometheus-client is installed for it, and a
# python3 earlier on PATH (pyenv, venv) would not see it.
PY=/usr/bin/python3
"$PY" -c 'import prometheus_client.parser' ||
  fail "python3-prometheus-client is missing (bash scripts/install-deps.sh)"
command -v curl >/dev/null || fail "curl is missing (bash scripts/install-deps.sh)"
cli() { timeout 10 redis-cli -p "$PORT" "$@"; }
# http PATH [curl options]: prints the status code, body in $TMP/body,
# headers in $TMP/headers.
http() {
  local path=$1; shift
  curl -s --max-time 10 -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' "$@" \
    "http://127.0.0.1:$MPORT$path"
}

python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
"$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 8 --iterations 3 \
  --out "$TMP/m.bin"
start_redis
"$BIN/recd-train" -q --import --csv "$TMP/in.csv" --items "$TMP/items.csv" \
  --redis-port "$REDIS_PORT"

# Start-up errors first: a clash with port, and a port already taken.
PORT=$(free_port)
expect_fail 2 "metrics-port and port are both $PORT" \
  "$BIN/recd" --model "$TMP/m.bin" --port "$PORT" --metrics-port "$PORT"
expect_fail 1 "cannot listen on 127.0.0.1:$REDIS_PORT for metrics" \
  "$BIN/recd" --model "$TMP/m.bin" --port "$PORT" --redis-port "$REDIS_PORT" \
  --metrics-port "$REDIS_PORT"
pass "start-up errors"

MPORT=$(free_port)
# A long Redis deadline so that the shutdown test below can hold a request
# in flight while Redis is paused.
"$BIN/recd" --model "$TMP/m.bin" --port "$PORT" --redis-port "$REDIS_PORT" \
  --metrics-port "$MPORT" --redis-timeout-ms 5000 --loglevel verbose 2>"$TMP/recd.log" &
RECD_PID=$!
for _ in $(seq 1 200); do
  [ "$(http /healthz)" = 200 ] && break
  kill -0 "$RECD_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
  sleep 0.05
done
[ "$(http /healthz)" = 200 ] || { cat "$TMP/recd.log"; fail "/healthz is not 200"; }
[ "$(cat "$TMP/body")" = ok ] || fail "/healthz body: $(cat "$TMP/body")"
grep -q "metrics on http://127.0.0.1:$MPORT/metrics" "$TMP/recd.log" || fail "no start-up log line"
for _ in $(seq 1 200); do
  cli info redis | grep -q '^redis_connected:1' && break
  sleep 0.05
done
pass "recd started with metrics on :$MPORT"

# 1. Scrape, run commands, scrape again: both parse, counters moved.
[ "$(http /metrics)" = 200 ] || fail "/metrics status"
grep -qi '^content-type: text/plain; version=0.0.4' "$TMP/headers" || fail "content type"
grep -qi '^connection: close' "$TMP/headers" || fail "no Connection: close"
cp "$TMP/body" "$TMP/before.txt"
for u in user1 user2 user3; do [ -n "$(cli RECOMMEND $u COUNT 3)" ] || fail "RECOMMEND $u"; done
cli RECOMMEND user1 COUNT abc | grep -q "COUNT must be" || fail "RECOMMEND error"
cli PING >/dev/null
cli PING >/dev/null
cli FEEDBACK user1 item0 >/dev/null
[ "$(http /metrics)" = 200 ] || fail "/metrics status (2)"
cp "$TMP/body" "$TMP/after.txt"
"$PY" - "$TMP/before.txt" "$TMP/after.txt" <<'PY' || fail "metrics content"
import sys
from prometheus_client.parser import text_string_to_metric_families

def load(path):
    text = open(path).read()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    # every sample line belongs to a family with HELP and TYPE lines
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            assert ("# HELP " + line.split()[2] + " ") in text, line
    samples = {}
    for f in fams.values():
        for s in f.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return fams, samples

fb, b = load(sys.argv[1])
fa, a = load(sys.argv[2])
# The parser drops "_total" from counter family names.
want = {
    "recd_commands": "counter", "recd_command_duration_seconds": "histogram",
    "recd_degraded_answers": "counter", "recd_protocol_errors": "counter",
    "recd_connected_clients": "gauge", "recd_connections": "counter",
    "recd_rejected_connections": "counter", "recd_redis_connected": "gauge",
    "recd_redis_reconnects": "counter", "recd_redis_errors": "counter",
    "recd_redis_anomalies": "counter", "recd_model_version": "gauge",
    "recd_model_items": "gauge", "recd_model_factors": "gauge",
    "recd_model_age_seconds": "gauge", "recd_model_loaded_timestamp_seconds": "gauge",
    "recd_model_reloads": "counter", "recd_unavailable_items": "gauge",
    "recd_uptime_seconds": "gauge", "recd_scoring_batches": "counter",
    "recd_scoring_batch_rows": "counter",
}
for name, typ in want.items():
    assert name in fa, ("missing family", name)
    assert fa[name].type == typ, (name, fa[name].type)

def v(s, name, **labels):
    return s[(name, tuple(sorted(labels.items())))]

def moved(name, by, **labels):
    d = v(a, name, **labels) - v(b, name, **labels)
    assert d == by, (name, labels, "moved by", d, "want", by)

moved("recd_commands_total", 3, command="recommend", outcome="ok")
moved("recd_commands_total", 1, command="recommend", outcome="error")
moved("recd_commands_total", 2, command="ping", outcome="ok")
moved("recd_commands_total", 1, command="feedback", outcome="ok")
assert v(a, "recd_connections_total") >= v(b, "recd_connections_total") + 7
# the 3 good RECOMMENDs were scored on the pool, in 1 to 3 batches
assert 1 <= v(a, "recd_scoring_batches_total") - v(b, "recd_scoring_batches_total") <= 3
assert v(a, "recd_scoring_batch_rows_total") - v(b, "recd_scoring_batch_rows_total") == 3
assert v(a, "recd_model_items") == 120 and v(a, "recd_model_factors") == 8
assert v(a, "recd_model_version") == 1
assert v(a, "recd_redis_connected") == 1
assert 0 <= v(a, "recd_model_age_seconds") < 3600
assert v(a, "recd_model_loaded_timestamp_seconds") > 1.6e9
assert v(a, "recd_uptime_seconds") > 0
assert v(a, "recd_degraded_answers_total") == 0
assert v(a, "recd_model_reloads_total", outcome="ok") == 0

# Histograms: cumulative buckets, +Inf = _count = calls, _sum > 0 after calls.
h = fa["recd_command_duration_seconds"]
cmds = {s.labels["command"] for s in h.samples}
assert {"recommend", "ping", "feedback", "similar", "rank"} <= cmds, cmds
for cmd in cmds:
    bk = [(float(s.labels["le"]), s.value) for s in h.samples
          if s.name.endswith("_bucket") and s.labels["command"] == cmd]
    les = [le for le, _ in bk]
    assert les == sorted(les) and les[-1] == float("inf") and len(les) == 17, (cmd, les)
    counts = [c for _, c in bk]
    assert counts == sorted(counts), (cmd, counts)
    count = v(a, "recd_command_duration_seconds_count", command=cmd)
    calls = sum(v(a, "recd_commands_total", command=cmd, outcome=o) for o in ("ok", "error"))
    assert counts[-1] == count == calls, (cmd, counts[-1], count, calls)
    if count:
        assert v(a, "recd_command_duration_seconds_sum", command=cmd) > 0, cmd
assert v(a, "recd_command_duration_seconds_count", command="recommend") == \
    v(b, "recd_command_duration_seconds_count", command="recommend") + 4
print("metrics ok:", len(fa), "families")
PY
pass "/metrics parses and counters move"

# 2. Routing: HEAD, query strings, 404, 405.
# (curl -I writes the headers where the body would go.)
[ "$(http /metrics -I)" = 200 ] || fail "HEAD /metrics"
grep -q '^# HELP' "$TMP/body" && fail "HEAD /metrics sent a body"
[ "$(http '/metrics?x=1')" = 200 ] || fail "/metrics?x=1"
[ "$(http /nope)" = 404 ] || fail "/nope is not 404"
[ "$(http /metrics -X POST -d x=1)" = 405 ] || fail "POST /metrics is not 405"
grep -qi '^allow: GET, HEAD' "$TMP/headers" || fail "405 without Allow"
[ "$(http /healthz -X DELETE)" = 405 ] || fail "DELETE /healthz is not 405"
pass "HEAD, 404, 405"

# 3. Garbage and oversized requests: 400 / 431, and recd keeps serving.
python3 - "$MPORT" <<'PY' || fail "bad requests"
import socket, sys
port = int(sys.argv[1])
def ask(data, half_close=False):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out
r = ask(b"\x16\x03\x01garbage\r\n\r\n")
assert r.startswith(b"HTTP/1.1 400 "), r
r = ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
assert r.startswith(b"HTTP/1.1 431 "), r[:80]
r = ask(b"POST /metrics HTTP/1.1\r\nContent-Length: 20000\r\n\r\n" + b"b" * 20000)
assert r.startswith(b"HTTP/1.1 413 "), r[:80]
# HTTP/1.0, half-closed right after the request: the answer still arrives.
r = ask(b"GET /healthz HTTP/1.0\r\n\r\n", half_close=True)
assert r.startswith(b"HTTP/1.1 200 ") and r.endswith(b"\r\n\r\nok\n"), r
# Two pipelined requests: one answer, then the connection is closed.
r = ask(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
assert r.count(b"HTTP/1.1 ") == 1 and r.endswith(b"ok\n"), r
PY
[ "$(http /healthz)" = 200 ] || fail "/healthz after bad requests"
[ "$(cli PING)" = PONG ] || fail "RESP port after bad HTTP requests"
grep -q "bad HTTP request (HPE_INVALID_METHOD)" "$TMP/recd.log" || fail "bad request not logged"
pass "400, 431, 413, half-close, pipelining; recd keeps serving"

# 4. At most 64 connections: the 65th waits until one closes.
python3 - "$MPORT" <<'PY' || fail "connection cap"
import socket, subprocess, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
time.sleep(0.3)
curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
        "http://127.0.0.1:%d/healthz" % port]
r = subprocess.run(curl + ["--max-time", "1"], capture_output=True, text=True)
assert r.returncode == 28, ("65th connection was served", r.returncode, r.stdout)
for s in held[:8]:
    s.close()
r = subprocess.run(curl + ["--max-time", "5"], capture_output=True, text=True)
assert r.returncode == 0 and r.stdout == "200", (r.returncode, r.stdout)
for s in held[8:]:
    s.close()
PY
pass "64-connection cap"

# 5. Shutdown: while a RECOMMEND waits for a paused Redis, /healthz says
#    503; the request is still answered and recd exits 0.
redis-cli -p "$REDIS_PORT" client pause 1500 all >/dev/null
(cli RECOMMEND user2 COUNT 3 > "$TMP/inflight.out") &
inflight=$!
sleep 0.3
kill -TERM "$RECD_PID"
sleep 0.2
[ "$(http /healthz)" = 503 ] || fail "/healthz is not 503 while shutting down"
grep -q "shutting down" "$TMP/body" || fail "503 body: $(cat "$TMP/body")"
wait "$inflight" || fail "in-flight RECOMMEND failed"
[ "$(wc -l < "$TMP/inflight.out")" = 3 ] || fail "in-flight RECOMMEND: $(cat "$TMP/inflight.out")"
status=0
wait "$RECD_PID" || status=$?
RECD_PID=""
[ "$status" = 0 ] || { cat "$TMP/recd.log"; fail "recd exited $status after SIGTERM"; }
grep -q "handles still open" "$TMP/recd.log" && fail "event loop closed with handles open"
pass "/healthz 503 while draining; SIGTERM -> exit 0"
