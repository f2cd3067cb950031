#!/usr/bin/env bash
# recd-train and the last interaction times (issue 16), <prefix>time:<user>,
# a ZSET item -> Unix seconds: --import writes each pair's latest CSV
# timestamp with ZADD GT (a later time already there stays), refuses
# millisecond timestamps before writing anything (or leaves the time out
# with --skip-bad-lines); training from Redis reads the times with the
# histories, and a time that is no time (a fraction, negative, far ahead, a
# key of the wrong type) is a counted anomaly that does not stop training.
. "$(dirname "$0")/lib.sh"
T="$BIN/recd-train"
start_redis
R() { redis-cli -p "$REDIS_PORT" "$@"; }

# 1. --import: per pair the latest timestamp; rows without one give none.
cat > "$TMP/t.csv" <<'CSV'
user,item,weight,timestamp
u1,a,1,1600000000
u1,a,2,1600000500
u1,a,1,1600000200
u1,b,1,1600000100
u1,c,1,
u2,a,1,1600000300
u2,b,1,1600000050
CSV
R zadd recd:time:u2 1700000000 a >/dev/null   # a later time already in Redis
"$T" -q --import --csv "$TMP/t.csv" --redis-port "$REDIS_PORT"
[ "$(R zscore recd:hist:u1 a)" = 4 ] || fail "u1/a weight $(R zscore recd:hist:u1 a)"
[ "$(R zscore recd:time:u1 a)" = 1600000500 ] || fail "u1/a time $(R zscore recd:time:u1 a)"
[ "$(R zscore recd:time:u1 b)" = 1600000100 ] || fail "u1/b time"
[ -z "$(R zscore recd:time:u1 c)" ] || fail "u1/c has a time without a timestamp"
[ "$(R zscore recd:hist:u1 c)" = 1 ] || fail "u1/c weight"
[ "$(R zscore recd:time:u2 a)" = 1700000000 ] || fail "u2/a: the later time in Redis was overwritten"
[ "$(R zscore recd:time:u2 b)" = 1600000050 ] || fail "u2/b time"
# again: weights add up, times stay (GT)
"$T" -q --import --csv "$TMP/t.csv" --redis-port "$REDIS_PORT"
[ "$(R zscore recd:hist:u1 a)" = 8 ] || fail "u1/a weight after a second import"
[ "$(R zscore recd:time:u1 a)" = 1600000500 ] || fail "u1/a time after a second import"
pass "--import writes the latest timestamp per pair"

# 2. Milliseconds (or negative times) are refused before anything is
#    written, the culprit named; --skip-bad-lines imports the weight alone.
printf 'user,item,weight,timestamp\nm1,a,1,1600000000\nm2,b,1,1600000000000\n' > "$TMP/ms.csv"
expect_fail 1 "ms.csv: timestamp 1600000000000 of user m2, item b .*milliseconds" \
  "$T" --import --csv "$TMP/ms.csv" --redis-port "$REDIS_PORT"
[ "$(R exists recd:hist:m1 recd:time:m1 recd:hist:m2)" = 0 ] || fail "a refused import wrote keys"
printf 'user,item,weight,timestamp\nn1,a,1,-5\n' > "$TMP/neg.csv"
expect_fail 1 "timestamp -5 of user n1, item a" \
  "$T" --import --csv "$TMP/neg.csv" --redis-port "$REDIS_PORT"
"$T" -q --import --csv "$TMP/ms.csv" --skip-bad-lines --redis-port "$REDIS_PORT"
[ "$(R zscore recd:hist:m2 b)" = 1 ] || fail "--skip-bad-lines: m2/b weight"
[ "$(R exists recd:time:m2)" = 0 ] || fail "--skip-bad-lines: m2 got a time"
[ "$(R zscore recd:time:m1 a)" = 1600000000 ] || fail "--skip-bad-lines: m1/a time"
# a time key of the wrong type: the import fails naming it
R set recd:time:u1 not-a-zset >/dev/null
expect_fail 1 "ZADD recd:time:u1 a: WRONGTYPE" \
  "$T" --import --csv "$TMP/t.csv" --redis-port "$REDIS_PORT"
R del recd:time:u1 >/dev/null
pass "bad timestamps are refused, the culprit named"

# 3. Training from Redis reads the times; malformed ones are counted
#    anomalies (one each), never fatal.
R flushall >/dev/null
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
"$T" -q --import --csv "$TMP/in.csv" --redis-port "$REDIS_PORT"
[ "$(R zscore recd:time:user7 "$(R zrange recd:hist:user7 0 0)")" = 1600000007 ] ||
  fail "gen_clusters' timestamps imported"
"$T" --redis-port "$REDIS_PORT" --factors 4 --iterations 1 --out "$TMP/ok.bin" 2>"$TMP/log" ||
  { cat "$TMP/log"; fail "train from redis with times"; }
grep -q "malformed" "$TMP/log" && { cat "$TMP/log"; fail "well-formed times counted as malformed"; }
now=$(date +%s)
R zadd recd:time:user1 1.5 item1 >/dev/null             # a fraction
R zadd recd:time:user2 -5 item2 >/dev/null              # before 1970
R zadd recd:time:user4 1e300 item4 >/dev/null           # absurd
R zadd recd:time:user5 $((now + 3 * 86400)) item5 >/dev/null  # days ahead
R zadd recd:time:user5 inf item6 >/dev/null
R zadd recd:time:user6 $((now + 3600)) item6 >/dev/null # an hour ahead (clock skew): fine
R del recd:time:user3 >/dev/null
R set recd:time:user3 not-a-zset >/dev/null             # the wrong type
"$T" --redis-port "$REDIS_PORT" --factors 4 --iterations 1 --out "$TMP/bad.bin" 2>"$TMP/log" ||
  { cat "$TMP/log"; fail "train from redis with malformed times"; }
grep -q "skipped 6 malformed" "$TMP/log" || { cat "$TMP/log"; fail "anomaly count (want 6)"; }
grep -q "recd:time:user3 is not a sorted set" "$TMP/log" || { cat "$TMP/log"; fail "wrong-type warning"; }
"$T" --info "$TMP/bad.bin" | grep -q '"items": 120' || fail "model from redis with bad times"
pass "training reads the times; malformed ones are counted, not fatal"
