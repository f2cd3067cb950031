#!/usr/bin/env bash
# scripts/recd-retrain: the nightly job publishes a first model, publishes a
# retrain that is not worse, and refuses one that is (leaving the serving
# model untouched and failing visibly).
. "$(dirname "$0")/lib.sh"
R="$(dirname "$0")/../../scripts/recd-retrain"
export RECD_BIN="$BIN"
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
start_redis
"$BIN/recd-train" -q --import --csv "$TMP/in.csv" --items "$TMP/items.csv" --redis-port "$REDIS_PORT"
state="$TMP/state"
mkdir -p "$state"

export RECD_TRAIN_ARGS="-q --redis-port $REDIS_PORT --factors 16 --iterations 8"
"$R" "$state" > "$TMP/log" 2>&1 || { cat "$TMP/log"; fail "first retrain"; }
grep -q "first model" "$TMP/log" || fail "first publication not reported"
[ -s "$state/model.bin" ] && [ -e "$state/.published" ] || fail "first model not published"
rm "$state/.published"
pass "first model published"

# The same training again (same data, same seed) is not worse: published.
"$R" "$state" > "$TMP/log" 2>&1 || { cat "$TMP/log"; fail "second retrain"; }
grep -q "publishing" "$TMP/log" || fail "second publication not reported"
[ -e "$state/.published" ] || fail "second model not marked published"
rm "$state/.published"
sum2=$(md5sum < "$state/model.bin")
pass "equal-quality retrain published"

# A much worse model (one factor, one sweep) is refused with no margin.
status=0
RECD_MARGIN=0 RECD_TRAIN_ARGS="-q --redis-port $REDIS_PORT --factors 1 --iterations 1 --lambda 1000" \
  "$R" "$state" > "$TMP/log" 2>&1 || status=$?
[ "$status" = 1 ] || { cat "$TMP/log"; fail "a worse model was not refused (status $status)"; }
grep -q "not published" "$TMP/log" || fail "refusal not explained"
[ ! -e "$state/.published" ] && [ ! -e "$state/model.new.bin" ] || fail "refused model left behind"
[ "$(md5sum < "$state/model.bin")" = "$sum2" ] || fail "serving model changed"
pass "worse retrain refused"
