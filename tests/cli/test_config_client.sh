#!/usr/bin/env bash
# CONFIG and CLIENT with the stock clients: redis-cli (CONFIG GET / SET,
# CLIENT LIST / KILL), redis-benchmark (its CONFIG fetch of save and
# appendonly must work: no "Could not fetch server CONFIG" warning) and
# Debian's python3-redis (config_get, config_set, client_list,
# client_setname / getname / id / kill_filter). Own redis-server and recd
# on free ports, recd with a password.
. "$(dirname "$0")/lib.sh"
PASS=op-secret-1
cli() { timeout 10 redis-cli -p "$PORT" -a "$PASS" --no-auth-warning "$@"; }

python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
"$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 16 --iterations 5 \
  --out "$TMP/m.bin"
start_redis
"$BIN/recd-train" --import --csv "$TMP/in.csv" --items "$TMP/items.csv" \
  --redis-port "$REDIS_PORT" 2>"$TMP/import.log" || { cat "$TMP/import.log"; fail "import"; }

PORT=$(free_port)
"$BIN/recd" --model "$TMP/m.bin" --port "$PORT" --redis-port "$REDIS_PORT" \
  --requirepass "$PASS" 2>"$TMP/recd.log" &
RECD_PID=$!
for _ in $(seq 1 200); do
  [ "$(cli ping 2>/dev/null)" = PONG ] && break
  kill -0 "$RECD_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
  sleep 0.05
done
[ "$(cli ping)" = PONG ] || { cat "$TMP/recd.log"; fail "recd does not answer PING"; }
pass "recd started"

# 1. redis-cli: CONFIG GET pairs, patterns, the password hidden.
out=$(cli CONFIG GET max-count)
[ "$out" = "$(printf 'max-count\n1000')" ] || fail "CONFIG GET max-count: $out"
out=$(cli CONFIG GET '*')
[ $(( $(cli CONFIG GET '*' | wc -l) % 2 )) = 0 ] || fail "CONFIG GET * is not pairs"
grep -qx port <<< "$out" || fail "CONFIG GET * lacks port"
grep -q "$PASS" <<< "$out" && fail "CONFIG GET * shows the password"
[ "$(cli CONFIG GET requirepass | sed -n 2p)" = "" ] || fail "requirepass not hidden"
[ "$(cli CONFIG GET 'max-*' | sed -n 'p;n' | sort | tr '\n' ' ')" = \
  "max-count max-per-category max-request-args max-request-bytes " ] ||
  fail "CONFIG GET max-*: $(cli CONFIG GET 'max-*')"
[ -z "$(cli CONFIG GET nosuch)" ] || fail "CONFIG GET nosuch is not empty"
# --help and CONFIG GET list the same keys (one table)
help_keys=$("$BIN/recd" --help | sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p' | sort)
get_keys=$(cli CONFIG GET '*' | sed -n 'p;n' | sort)
[ "$help_keys" = "$get_keys" ] || { diff <(echo "$help_keys") <(echo "$get_keys") >&2;
  fail "recd --help and CONFIG GET * list different keys"; }
pass "redis-cli CONFIG GET"

# 2. CONFIG SET: the next request sees it; refusals name the key; atomic.
[ "$(cli CONFIG SET max-count 3)" = OK ] || fail "CONFIG SET max-count 3"
cli RECOMMEND user3 COUNT 4 | grep -q "COUNT must be an integer in \[0, 3\]" ||
  fail "max-count 3 not in force: $(cli RECOMMEND user3 COUNT 4)"
[ "$(cli RECOMMEND user3 COUNT 3 | wc -l)" = 3 ] || fail "RECOMMEND COUNT 3 after CONFIG SET"
out=$(cli CONFIG SET port 1)
[ "$out" = "ERR CONFIG SET: 'port' cannot change at run time; restart recd" ] ||
  fail "CONFIG SET port: $out"
out=$(cli CONFIG SET max-count 9 history-limit -1)
grep -q "^ERR CONFIG SET: history-limit: expected an integer" <<< "$out" ||
  fail "CONFIG SET bad history-limit: $out"
[ "$(cli CONFIG GET max-count | sed -n 2p)" = 3 ] || fail "a refused CONFIG SET changed max-count"
grep -q "CONFIG SET max-count 3" "$TMP/recd.log" || fail "the change is not logged"
pass "redis-cli CONFIG SET"

# 3. CLIENT: LIST, SETNAME, KILL of an idle redis-cli.
(sleep 30 | timeout 40 redis-cli -p "$PORT" -a "$PASS" --no-auth-warning >/dev/null 2>&1) &
IDLE=$!
for _ in $(seq 1 100); do [ "$(cli CLIENT LIST | wc -l)" -ge 2 ] && break; sleep 0.05; done
list=$(cli CLIENT LIST)
[ "$(echo "$list" | wc -l)" = 2 ] || fail "CLIENT LIST: $list"
grep -q '^id=[0-9]* addr=127.0.0.1:[0-9]* laddr=127.0.0.1:'"$PORT"' fd=[0-9]* name= ' <<< "$list" ||
  fail "CLIENT LIST line: $list"
grep -q 'cmd=client|list user=default' <<< "$list" || fail "CLIENT LIST cmd/user: $list"
idle_id=$(echo "$list" | grep -v 'cmd=client|list' | sed 's/^id=\([0-9]*\) .*/\1/')
[ -n "$idle_id" ] || fail "the idle client is not listed: $list"
[ "$(cli CLIENT KILL ID "$idle_id")" = 1 ] || fail "CLIENT KILL ID $idle_id"
[ "$(cli CLIENT LIST | wc -l)" = 1 ] || fail "killed client still listed: $(cli CLIENT LIST)"
out=$(printf 'CLIENT SETNAME ops\nCLIENT GETNAME\nCLIENT INFO\n' | cli)
grep -qx ops <<< "$out" || fail "SETNAME/GETNAME: $out"
grep -q ' name=ops ' <<< "$out" || fail "CLIENT INFO name: $out"
kill "$IDLE" 2>/dev/null || true
wait "$IDLE" 2>/dev/null || true
pass "redis-cli CLIENT LIST / KILL / SETNAME"

# 4. redis-benchmark: its CONFIG fetch works, so no warning.
bench() { timeout 120 redis-benchmark -p "$PORT" -a "$PASS" -n 2000 -c 10 "$@" 2>&1 | tr '\r' '\n'; }
out=$(bench -t ping) || fail "redis-benchmark: $out"
grep -qi "could not fetch" <<< "$out" && fail "redis-benchmark warns: $(echo "$out" | grep -i fetch)"
grep -q 'host configuration "appendonly": no' <<< "$out" ||
  fail "redis-benchmark did not read the config: $(echo "$out" | head -20)"
grep -qE 'requests per second' <<< "$out" || fail "redis-benchmark output: $out"
pass "redis-benchmark fetches CONFIG"

# 5. python3-redis (Debian's): the client library's own calls.
PORT="$PORT" PASS="$PASS" timeout 60 /usr/bin/python3 - <<'EOF' || fail "python3-redis"
import os, redis
r = redis.Redis(host="127.0.0.1", port=int(os.environ["PORT"]), password=os.environ["PASS"],
                decode_responses=True)
cfg = r.config_get("*")
assert cfg["max-count"] == "3", cfg.get("max-count")
assert cfg["requirepass"] == "", "password shown"
assert os.environ["PASS"] not in cfg.values()
assert r.config_get("max-*").keys() == {"max-count", "max-per-category", "max-request-args",
                                        "max-request-bytes"}, r.config_get("max-*")
assert r.config_set("max-count", 1000)
assert r.config_get("max-count") == {"max-count": "1000"}
try:
    r.config_set("workers", 8)
    raise SystemExit("CONFIG SET workers accepted")
except redis.exceptions.ResponseError as e:
    assert "'workers' cannot change at run time" in str(e), e
assert r.client_setname("py-worker")
assert r.client_getname() == "py-worker"
me = r.client_id()
clients = r.client_list()
mine = [c for c in clients if c["id"] == str(me)]
assert len(mine) == 1 and mine[0]["name"] == "py-worker", clients
assert mine[0]["user"] == "default" and mine[0]["laddr"].endswith(":" + os.environ["PORT"])
other = redis.Redis(host="127.0.0.1", port=int(os.environ["PORT"]),
                    password=os.environ["PASS"], decode_responses=True)
other.client_setname("victim")
victim = [c for c in r.client_list() if c["name"] == "victim"][0]
assert r.client_kill_filter(_id=victim["id"]) == 1
assert not [c for c in r.client_list() if c["name"] == "victim"]
try:
    r.client_kill(victim["addr"])  # the old form: gone already
    raise SystemExit("CLIENT KILL of a killed client succeeded")
except redis.exceptions.ResponseError as e:
    assert "No such client" in str(e), e
assert len(r.execute_command("RECOMMEND", "user3", "COUNT", 5)) == 5
print("python3-redis ok")
EOF
pass "python3-redis config_get / config_set / client_list / client_setname / client_kill_filter"

# 6. SIGTERM: exit status 0.
kill -TERM "$RECD_PID"
status=0
for _ in $(seq 1 200); do kill -0 "$RECD_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$RECD_PID" 2>/dev/null && fail "recd still running 10 s after SIGTERM"
wait "$RECD_PID" || status=$?
RECD_PID=""
[ "$status" = 0 ] || { cat "$TMP/recd.log"; fail "recd exited $status after SIGTERM"; }
pass "SIGTERM"
