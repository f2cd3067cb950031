#!/usr/bin/env bash
# ACL users with the stock clients (issue 17): redis-cli --user/--pass and
# Debian's python3-redis with a username. Allowed commands work, forbidden
# ones get the exact -NOPERM line, a wrong password and a disabled user get
# -WRONGPASS, INFO counts both, a denial is logged once per client, ACL
# LIST shows digests only, ACL LOAD takes a good file and refuses a bad one
# naming its line (the old rules stay), CLIENT LIST / KILL by user.
# Redis itself runs with recd's documented minimal ACL rule (README,
# "Security"): recd logs in with --redis-user, and after RECOMMEND,
# FEEDBACK (all types), MERGE, impressions, outcomes, EXPERIMENT REPORT /
# RESET and the unavailable/promoted refreshes, Redis's ACL LOG is empty and
# recd saw no Redis error. Config errors name the line.
. "$(dirname "$0")/lib.sh"
RECD_PID=""
# SIGTERM must end recd with status 0 (under ASan: no leak, no error).
stop_recd() {
  if [ -n "$RECD_PID" ]; then
    local pid=$RECD_PID st=0
    RECD_PID=""
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || st=$?
    [ "$st" = 0 ] || { tail -30 "$TMP/recd.log" >&2; fail "recd exited with status $st"; }
  fi
}
trap 'stop_recd; cleanup' EXIT

# recd's minimal Redis rule: exactly the README's (tests/cli/test_acl.sh
# reads it from there, so the two cannot drift).
RULE=$(sed -n 's/^user recd on >REDIS-PASSWORD \(.*\)$/\1/p' "$RECD_SOURCE_DIR/README.md")
[ -n "$RULE" ] || fail "README lacks the 'user recd on >REDIS-PASSWORD ...' rule"

python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
"$BIN/recd-train" -q --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 16 --iterations 5 \
  --out "$TMP/m.bin"

# Redis with two users: default (the test's own, for the import and the
# checks) and recd, with the rule above and nothing more.
REDIS_PORT=$(free_port)
{ echo "user recd on >r-pw $RULE"; echo "user trainer on >t-pw ~recd:* +@all"; } >"$TMP/redis.conf"
redis-server "$TMP/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$TMP" --logfile "$TMP/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 100); do
  redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
  sleep 0.05
done
rcli() { timeout 10 redis-cli -p "$REDIS_PORT" "$@"; }
[ "$(rcli ACL WHOAMI)" = default ] || fail "redis-server did not start"
# recd-train as an ACL user of its own: AUTH trainer t-pw (the default user
# takes no password, so a plain AUTH t-pw would be refused: success shows
# the user was sent); a wrong password or user is an error naming AUTH.
"$BIN/recd-train" --import --csv "$TMP/in.csv" --items "$TMP/items.csv" \
  --redis-port "$REDIS_PORT" --redis-user trainer --redis-password t-pw 2>"$TMP/import.log" ||
  { cat "$TMP/import.log"; fail "import as --redis-user trainer"; }
"$BIN/recd-train" -q --redis-port "$REDIS_PORT" --redis-user trainer --redis-password t-pw \
  --factors 8 --iterations 2 --out "$TMP/m2.bin" 2>"$TMP/train.log" ||
  { cat "$TMP/train.log"; fail "training from Redis as --redis-user trainer"; }
expect_fail 1 "AUTH failed.*WRONGPASS" "$BIN/recd-train" -q --redis-port "$REDIS_PORT" \
  --redis-user trainer --redis-password nope --factors 8 --iterations 2 --out "$TMP/m3.bin"
pass "recd-train --redis-user: import and training as ACL user trainer; wrong password refused"
rcli SADD recd:unavailable item1 >/dev/null
rcli SADD recd:promoted item2 >/dev/null
rcli ACL LOG RESET >/dev/null

cat >"$TMP/users.acl" <<'EOF'
# storefront web servers: answers and feedback
user storefront on >web-pw +@read +@write
user monitoring on >mon-pw +@monitor
user ops on >ops-pw +@all
user gone off >gone-pw +@all
user default off
EOF

PORT=$(free_port)
MPORT=$(free_port)
start_recd() {
  "$BIN/recd" --model "$TMP/m.bin" --port "$PORT" --redis-port "$REDIS_PORT" \
    --redis-user recd --redis-password r-pw --unavailable-refresh-ms 100 \
    --experiment-refresh-ms 100 "$@" 2>>"$TMP/recd.log" &
  RECD_PID=$!
  for _ in $(seq 1 200); do
    # the default user is off: NOAUTH is the answer of a running recd
    [ -n "$(redis-cli -p "$PORT" ping 2>/dev/null)" ] && return 0
    kill -0 "$RECD_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
    sleep 0.05
  done
  fail "recd does not answer PING"
}
start_recd --aclfile "$TMP/users.acl" --metrics-port "$MPORT"
# Output in one write: a `| grep -q` that stops reading early must not
# SIGPIPE redis-cli between its lines (pipefail would fail the test).
as() {
  local u=$1 p=$2 o rc=0; shift 2
  o=$(timeout 10 redis-cli -p "$PORT" --user "$u" --pass "$p" --no-auth-warning "$@") || rc=$?
  printf '%s\n' "$o"
  return $rc
}
info() { as ops ops-pw INFO stats | tr -d '\r' | sed -n "s/^$1://p"; }

# 1. storefront: @read @write work; everything else is NOPERM, exactly.
out=$(as storefront web-pw RECOMMEND user3 COUNT 5)
[ "$(echo "$out" | wc -l)" = 5 ] || fail "storefront RECOMMEND: $out"
grep -qvE '^item[0-9]+$' <<< "$out" && fail "RECOMMEND ids: $out"
out=$(as storefront web-pw RANK user3 item3 item4)
grep -q -- item <<<"$out" || fail "storefront RANK: $out"
out=$(as storefront web-pw SIMILAR item3 COUNT 3)
grep -q -- item <<<"$out" || fail "storefront SIMILAR: $out"
out=$(as storefront web-pw MODEL CATEGORIES)
grep -q -- . <<<"$out" || fail "storefront MODEL CATEGORIES: $out"
out=$(as storefront web-pw MODEL RELOAD)
[ "$out" = "NOPERM this user has no permissions to run the 'model|reload' command" ] ||
  fail "storefront MODEL RELOAD: $out"
[ "$(as storefront web-pw INFO)" = \
  "NOPERM this user has no permissions to run the 'info' command" ] || fail "storefront INFO"
[ "$(as storefront web-pw config set max-count 5)" = \
  "NOPERM this user has no permissions to run the 'config|set' command" ] ||
  fail "storefront CONFIG SET"
[ "$(as storefront web-pw ACL WHOAMI)" = storefront ] || fail "ACL WHOAMI"
[ "$(as storefront web-pw PING)" = PONG ] || fail "PING is always allowed"
pass "storefront: @read @write allowed, the rest NOPERM"

# 2. one connection, three denials: counted three times, logged once.
before=$(info acl_denied_commands)
printf 'MODEL RELOAD\nINFO\nCLIENT KILL ID 1\nACL WHOAMI\n' |
  as storefront web-pw >"$TMP/out" 2>&1 || true
n=$(grep -c NOPERM "$TMP/out") || true
[ "$n" = 3 ] || { cat "$TMP/out"; fail "expected 3 NOPERM replies, got $n"; }
after=$(info acl_denied_commands)
[ $((after - before)) = 3 ] || fail "acl_denied_commands went $before -> $after"
sleep 0.2
logged=$(grep -c "user 'storefront': no permission to run" "$TMP/recd.log") || true
[ "$logged" = 4 ] || { grep "no permission" "$TMP/recd.log"; \
  fail "denials logged $logged times for 4 clients"; }
metric() { curl -s "http://127.0.0.1:$MPORT/metrics" | sed -n "s/^$1 //p"; }
[ "$(metric recd_acl_denied_commands_total)" = "$after" ] ||
  fail "/metrics recd_acl_denied_commands_total: $(metric recd_acl_denied_commands_total)"
pass "denials counted ($before -> $after, /metrics too) and logged once per client"

# 3. monitoring and ops.
out=$(as monitoring mon-pw INFO)
grep -q -- '^# Stats' <<<"$out" || fail "monitoring INFO: $out"
out=$(as monitoring mon-pw CONFIG GET max-count)
grep -q -- 1000 <<<"$out" || fail "monitoring CONFIG GET: $out"
out=$(as monitoring mon-pw MODEL INFO)
grep -q -- version <<<"$out" || fail "monitoring MODEL INFO: $out"
out=$(as monitoring mon-pw CLIENT LIST)
grep -q -- 'user=monitoring' <<<"$out" || fail "CLIENT LIST user=: $out"
[ "$(as monitoring mon-pw RECOMMEND user3)" = \
  "NOPERM this user has no permissions to run the 'recommend' command" ] ||
  fail "monitoring RECOMMEND"
[ "$(as monitoring mon-pw EXPERIMENT RESET)" = \
  "NOPERM this user has no permissions to run the 'experiment|reset' command" ] ||
  fail "monitoring EXPERIMENT RESET"
list=$(as ops ops-pw ACL LIST)
grep -qx "user storefront on #$(printf web-pw | sha256sum | cut -c1-64) +@read +@write" <<< "$list" ||
  fail "ACL LIST: $list"
grep -q 'pw' <<< "$list" && fail "ACL LIST shows a password: $list"
[ "$(as ops ops-pw ACL USERS | sort | tr '\n' ' ')" = "default gone monitoring ops storefront " ] ||
  fail "ACL USERS"
out=$(as ops ops-pw CONFIG SET requirepass x)
grep -q "requirepass: the ACL rules define user default, whose passwords they set" <<<"$out" ||
  fail "CONFIG SET requirepass beside a user default line: $out"
pass "monitoring: INFO, CONFIG GET, MODEL INFO, CLIENT LIST; ACL LIST hashed; requirepass refused"

# 4. wrong password, disabled user, unknown user, no AUTH at all.
before=$(info acl_denied_auth)
out=$(as storefront wrong PING 2>&1)
grep -q "WRONGPASS invalid username-password pair or user is disabled." <<< "$out" ||
  fail "wrong password: $out"
out=$(as gone gone-pw PING 2>&1) || true
grep -q WRONGPASS <<< "$out" || fail "disabled user not refused"
out=$(as nobody x PING 2>&1) || true
grep -q WRONGPASS <<< "$out" || fail "unknown user not refused"
[ "$(timeout 5 redis-cli -p "$PORT" RECOMMEND user3)" = "NOAUTH Authentication required." ] ||
  fail "default off: RECOMMEND without AUTH"
after=$(info acl_denied_auth)
[ $((after - before)) = 3 ] || fail "acl_denied_auth went $before -> $after"
[ "$(as ops ops-pw CONFIG RESETSTAT)" = OK ] || fail "CONFIG RESETSTAT"
[ "$(info acl_denied_commands) $(info acl_denied_auth)" = "0 0" ] || fail "RESETSTAT kept ACL counts"
pass "wrong password, disabled and unknown users refused; acl_denied_auth +3; RESETSTAT"

# 5. python3-redis with a username.
timeout 60 /usr/bin/python3 - "$PORT" <<'EOF' || fail "python3-redis (Debian's)"
import sys
import redis
port = int(sys.argv[1])
r = redis.Redis(port=port, username="storefront", password="web-pw", decode_responses=True)
assert len(r.execute_command("RECOMMEND", "user3", "COUNT", 4)) == 4
r.execute_command("FEEDBACK", "user3", "item5", "TYPE", "click")
try:
    r.execute_command("MODEL", "RELOAD")
    raise SystemExit("MODEL RELOAD allowed")
except redis.exceptions.NoPermissionError as e:
    assert "'model|reload'" in str(e), e
for user, pw in (("storefront", "nope"), ("gone", "gone-pw")):
    try:
        redis.Redis(port=port, username=user, password=pw).ping()
        raise SystemExit("%s/%s accepted" % (user, pw))
    except (redis.exceptions.AuthenticationError, redis.exceptions.ResponseError) as e:
        # redis-py 4.3 raises Redis's own WRONGPASS line as a ResponseError
        assert "WRONGPASS invalid username-password pair" in str(e), e
m = redis.Redis(port=port, username="monitoring", password="mon-pw", decode_responses=True)
assert "acl_denied_commands" in m.info("stats")
EOF
pass "python3-redis: username login, NoPermissionError, WRONGPASS"

# 6. recd's writes and reads against Redis's minimal rule.
as storefront web-pw FEEDBACK user3 item7 TYPE purchase >/dev/null
as storefront web-pw FEEDBACK user3 item8 TYPE cart >/dev/null
out=$(as storefront web-pw FEEDBACK user3 item9 TYPE hide)
grep -qx -- 1 <<<"$out" || fail "hide: $out"
out=$(as storefront web-pw FEEDBACK user3 item9 TYPE unhide)
grep -qx -- 1 <<<"$out" || fail "unhide: $out"
as storefront web-pw FEEDBACK user4 item3 WEIGHT 2 >/dev/null
as storefront web-pw RECOMMEND user4 COUNT 3 >/dev/null
as storefront web-pw SIMILAR item3 FOR user4 COUNT 3 >/dev/null
out=$(as storefront web-pw MERGE user4 user5)
grep -qE -- '^[0-9]+$' <<<"$out" || fail "MERGE: $out"
as ops ops-pw EXPERIMENT REPORT >/dev/null
sleep 0.5 # refreshes (unavailable, promoted, experiment counters) run
out=$(as ops ops-pw EXPERIMENT RESET)
grep -qx -- OK <<<"$out" || fail "EXPERIMENT RESET: $out"
[ "$(rcli HLEN recd:imp:user3)" -gt 0 ] || fail "no impressions written for user3"
[ "$(rcli EXISTS recd:hist:user5)" = 1 ] || fail "MERGE wrote no history"
log=$(rcli ACL LOG)
[ -z "$log" ] || { echo "$log"; fail "Redis refused some of recd's commands (ACL LOG above)"; }
rcli CLIENT LIST | grep -c 'user=recd' >/dev/null || fail "recd is not logged in to Redis as user recd"
errs=$(as ops ops-pw INFO redis | tr -d '\r' | sed -n 's/^redis_errors://p')
[ "$errs" = 0 ] || { as ops ops-pw INFO redis; fail "recd saw $errs Redis errors"; }
pass "recd as Redis user 'recd' with the minimal rule: ACL LOG empty, no Redis error"

# 7. CLIENT KILL USER, then ACL LOAD: a good file, then a bad one.
# a storefront connection that waits, killed by user name
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'AUTH storefront web-pw\r\n' >&3
IFS= read -r -t 5 line <&3 || fail "victim AUTH"
[ "$line" = $'+OK\r' ] || fail "victim AUTH: $line"
out=$(as ops ops-pw CLIENT LIST)
grep -q -- 'user=storefront' <<<"$out" || fail "CLIENT LIST user=storefront: $out"
[ "$(as ops ops-pw CLIENT KILL USER storefront)" = 1 ] || fail "CLIENT KILL USER storefront"
IFS= read -r -t 5 line <&3 && fail "killed client still open: $line"
exec 3<&-
[ "$(as ops ops-pw CLIENT KILL USER nobody)" = "ERR No such user 'nobody'" ] ||
  fail "KILL USER unknown"
sed -i 's/^user gone off/user gone on/; $a user late on >late-pw +@read' "$TMP/users.acl"
[ "$(as ops ops-pw ACL LOAD)" = OK ] || fail "ACL LOAD of a good file"
out=$(as late late-pw RECOMMEND user3 COUNT 2)
grep -q -- item <<<"$out" || fail "user added by ACL LOAD: $out"
[ "$(as gone gone-pw ACL WHOAMI)" = gone ] || fail "user turned on by ACL LOAD"
cp "$TMP/users.acl" "$TMP/good.acl"
printf 'user late2 on >x +@read\n\nuser broken on +@reed\n' >>"$TMP/users.acl"
out=$(as ops ops-pw ACL LOAD)
grep -q "users.acl:10: user 'broken': unknown category in rule '+@reed'" <<< "$out" ||
  fail "ACL LOAD of a bad file: $out"
grep -q "the rules in force stay" <<< "$out" || fail "ACL LOAD message: $out"
out=$(as late2 x PING 2>&1) || true
grep -q WRONGPASS <<< "$out" || fail "a refused file applied its first lines"
out=$(as late late-pw PING)
grep -qx -- PONG <<<"$out" || fail "old rules lost after a refused ACL LOAD: $out"
pass "CLIENT KILL USER; ACL LOAD good file applied, bad file refused with its line"
stop_recd

# 8. recd.conf user lines and requirepass as the default user's password.
cat >"$TMP/recd.conf" <<EOF
model $TMP/m.bin
port $PORT
redis-port $REDIS_PORT
redis-user recd
redis-password r-pw
requirepass def-pw
user web on >web-pw +@read +@write
EOF
start_recd_conf() {
  "$BIN/recd" "$TMP/recd.conf" 2>>"$TMP/recd.log" &
  RECD_PID=$!
  for _ in $(seq 1 200); do
    [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" != "" ] && return 0
    sleep 0.05
  done
  fail "recd with user lines did not start"
}
start_recd_conf
[ "$(timeout 5 redis-cli -p "$PORT" -a def-pw --no-auth-warning ACL WHOAMI)" = default ] ||
  fail "AUTH <requirepass> as default"
[ "$(as default def-pw CONFIG GET requirepass | sed -n 1p)" = requirepass ] ||
  fail "default user has every command"
[ "$(as web web-pw ACL WHOAMI)" = web ] || fail "recd.conf user line"
[ "$(as web web-pw ACL LOAD)" = \
  "NOPERM this user has no permissions to run the 'acl|load' command" ] || fail "web ACL LOAD"
out=$(as default def-pw ACL LOAD)
grep -q -- "not configured to use an ACL file" <<<"$out" || fail "ACL LOAD w/o file: $out"
[ "$(as default def-pw CONFIG GET user | sed -n 2p)" = \
  "web on #$(printf web-pw | sha256sum | cut -c1-64) +@read +@write" ] || fail "CONFIG GET user"
out=$(as web web-pw HELLO 2 AUTH web web-pw)
grep -q -- recd <<<"$out" || fail "HELLO 2 AUTH user pass: $out"
stop_recd
grep -q "the default user is on without a password" "$TMP/recd.log" &&
  fail "open-default warning with default off / requirepass set"
pass "recd.conf user lines; requirepass is default's password; HELLO AUTH"

# users beside an open default user: a warning at start
printf 'user web on >w +@read\n' >"$TMP/open.acl"
: >"$TMP/recd.log"
start_recd --aclfile "$TMP/open.acl"
stop_recd
grep -q "1 ACL users are defined, but the default user is on without a password" \
  "$TMP/recd.log" || { cat "$TMP/recd.log"; fail "no warning for an open default user"; }
pass "warning: users defined beside an open default user"

# 9. Config errors name the line; exclusive sources refused at start.
printf 'port %s\nmodel %s\n\nuser web on +recomend\n' "$PORT" "$TMP/m.bin" >"$TMP/bad.conf"
expect_fail 2 "bad.conf:4: user 'web': unknown command in rule '\+recomend' \(did you mean '\+recommend'\?\)" \
  "$BIN/recd" "$TMP/bad.conf" --test-config
expect_fail 2 "user lines and aclfile are exclusive" \
  "$BIN/recd" "$TMP/recd.conf" --aclfile "$TMP/good.acl" --test-config
printf 'user a on\nuser a off\n' >"$TMP/dup.acl"
expect_fail 2 "dup.acl:2: user 'a' is defined twice" \
  "$BIN/recd" --model "$TMP/m.bin" --aclfile "$TMP/dup.acl" --test-config
printf 'user default on >x +@all\n' >"$TMP/def.acl"
expect_fail 2 "requirepass and the rule line of user default" \
  "$BIN/recd" --model "$TMP/m.bin" --aclfile "$TMP/def.acl" --requirepass y --test-config
"$BIN/recd" --model "$TMP/m.bin" --aclfile "$TMP/good.acl" --test-config >"$TMP/dump" ||
  fail "--test-config with a good aclfile"
pass "config errors name the file and line"
