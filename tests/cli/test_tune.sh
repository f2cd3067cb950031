#!/usr/bin/env bash
# recd-train's time-aware evaluation, --tune and the popularity fallback,
# end to end: the three kinds of split on timed data, a seeded search that
# gives the same settings file twice, the settings file reused (and the
# command line winning over it), re-tuning once it is old, a log where
# popularity is all there is shipped as a popularity model that a real recd
# serves, and the option errors.
. "$(dirname "$0")/lib.sh"
T="$BIN/recd-train"
G="$(dirname "$0")/gen_timed.py"
python3 "$G" "$TMP/clusters.csv" clusters
python3 "$G" "$TMP/popular.csv" popular
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); $2" "$1"; }

# 1. Timed data: time-cut (primary), user-latest and random are evaluated,
#    each with recd, its ALS model, popularity, recent popularity and EASE.
"$T" --csv "$TMP/clusters.csv" --factors 16 --iterations 8 --holdout 0.2 \
  --report "$TMP/r.json" --out "$TMP/m.bin" 2>"$TMP/log" || { cat "$TMP/log"; fail "train"; }
json "$TMP/r.json" '
assert r["primary_split"] == "time-cut" and r["timestamps"] is True, r
assert list(r["splits"]) == ["time-cut", "user-latest", "random"], list(r["splits"])
for k, s in r["splits"].items():
    assert s["users"] > 0 and s["test_pairs"] > 0, (k, s)
    for side in ("recd", "als", "popularity", "recent_popularity", "ease"):
        assert 0 <= s[side]["ndcg@10"] <= 1, (k, side)
    assert s["recd_serves"] == "als" and s["als"]["ndcg@10"] > 2 * s["popularity"]["ndcg@10"], (k, s)
assert r["model"] == r["splits"]["time-cut"]["recd"], r
assert r["half_life_days"] == 30 and r["serves"] == "als", r' || fail "report"
"$T" --info "$TMP/m.bin" > "$TMP/info.json"
json "$TMP/info.json" '
assert r["eval_split"] == "time-cut" and r["serves"] == "als" and r["half_life_days"] == 30, r
assert r["recent_popularity"] is not None and r["tuned_at"] == 0, r' || fail "info"
grep -q "hold-out evaluation, time-cut split" "$TMP/log" || fail "no time-cut table"
pass "three kinds of split on timed data, time-cut stored in the model"

# Untimed data: random only; a temporal split is refused by name.
sed 's/,[0-9]*$/,/' "$TMP/clusters.csv" > "$TMP/untimed.csv"
"$T" -q --csv "$TMP/untimed.csv" --factors 16 --iterations 8 --holdout 0.2 \
  --report "$TMP/u.json" || fail "untimed"
json "$TMP/u.json" 'assert list(r["splits"]) == ["random"] and r["half_life_days"] == 0, r' ||
  fail "untimed report"
expect_fail 1 "--split time-cut needs a time on every interaction" \
  "$T" --csv "$TMP/untimed.csv" --holdout 0.2 --split time-cut
pass "untimed data: random split only, no half-life"

# 2. The search is a function of the data, the seed and the trial budget.
for run in 1 2; do
  SOURCE_DATE_EPOCH=1767225600 "$T" --csv "$TMP/clusters.csv" --tune --tune-trials 6 \
    --seed 7 --settings "$TMP/s$run.conf" 2>"$TMP/tune$run.log" ||
    { cat "$TMP/tune$run.log"; fail "tune $run"; }
done
# (Only the comment naming the file differs.)
diff <(grep -v '^#' "$TMP/s1.conf") <(grep -v '^#' "$TMP/s2.conf") ||
  fail "tuning not deterministic: different settings"
# The trial table is the same too, but for the seconds column (before the
# optional * that marks a new best).
for run in 1 2; do
  grep -E '^ +[0-9]+ +[0-9]+ +[0-9]+ ' "$TMP/tune$run.log" | sed -E 's/ +[0-9.]+( \*)?$/\1/' > "$TMP/t$run"
done
[ "$(wc -l < "$TMP/t1")" = 6 ] || { cat "$TMP/tune1.log"; fail "expected 6 trial rows"; }
diff "$TMP/t1" "$TMP/t2" || fail "tuning not deterministic: different trials"
grep -q "^tuned-at 1767225600$" "$TMP/s1.conf" || fail "tuned-at not pinned"
pass "tuning with a seed is deterministic (same settings file twice)"

# 3. The settings file is reused; the command line wins; tuned_at is kept.
sed -i 's/^tuned-at .*/tuned-at '"$(date +%s)"'/' "$TMP/s1.conf"
want_k=$(awk '$1 == "factors" { print $2 }' "$TMP/s1.conf")
"$T" --csv "$TMP/clusters.csv" --settings "$TMP/s1.conf" --out "$TMP/t.bin" 2>"$TMP/log" ||
  { cat "$TMP/log"; fail "train with settings"; }
grep -q "settings: using" "$TMP/log" || { cat "$TMP/log"; fail "settings not used"; }
"$T" --info "$TMP/t.bin" > "$TMP/info.json"
json "$TMP/info.json" "assert r['factors'] == $want_k and r['tuned_at'] > 0, r" || fail "tuned model"
"$T" -q --csv "$TMP/clusters.csv" --settings "$TMP/s1.conf" --factors 8 --out "$TMP/t8.bin"
"$T" --info "$TMP/t8.bin" | grep -q '"factors": 8,' || fail "--factors did not win over the file"
# Older than --retune-days: tuned again and rewritten.
sed -i 's/^tuned-at .*/tuned-at 1000000000/' "$TMP/s1.conf"
"$T" --csv "$TMP/clusters.csv" --settings "$TMP/s1.conf" --tune-trials 3 --out "$TMP/t.bin" \
  2>"$TMP/log" || { cat "$TMP/log"; fail "retune"; }
grep -q "tuning again" "$TMP/log" || { cat "$TMP/log"; fail "old settings not re-tuned"; }
grep -q "^tuned-at 1000000000$" "$TMP/s1.conf" && fail "settings file not rewritten"
# A bad line is named.
printf 'tuned-at 1767225600\nfactors many\n' > "$TMP/bad.conf"
expect_fail 1 "bad.conf:2: bad value \"many\" for factors" \
  "$T" --csv "$TMP/clusters.csv" --settings "$TMP/bad.conf" --out "$TMP/x.bin"
pass "settings reused, overridden, re-tuned when old, errors named"

# 4. Nothing to learn but popularity: validation prefers it, recd-train
#    says so and ships a 1-factor popularity model, which a real recd
#    serves: the most popular items the customer does not have.
"$T" --csv "$TMP/popular.csv" --factors 16 --iterations 8 --out "$TMP/pop.bin" 2>"$TMP/log" ||
  { cat "$TMP/log"; fail "train popular"; }
grep -q "does not beat popularity" "$TMP/log" || { cat "$TMP/log"; fail "no fallback message"; }
"$T" --info "$TMP/pop.bin" > "$TMP/info.json"
json "$TMP/info.json" 'assert r["serves"] in ("popularity", "recent-popularity") and r["factors"] == 1, r' ||
  fail "fallback model"
serves=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["serves"])' "$TMP/info.json")
"$T" -q --csv "$TMP/popular.csv" --factors 16 --iterations 8 --fallback no --out "$TMP/als.bin"
"$T" --info "$TMP/als.bin" | grep -q '"serves": "als"' || fail "--fallback no"
start_redis
"$T" -q --import --csv "$TMP/popular.csv" --redis-port "$REDIS_PORT"
PORT=$(free_port)
"$BIN/recd" --model "$TMP/pop.bin" --port "$PORT" --redis-port "$REDIS_PORT" 2>"$TMP/recd.log" &
RECD_PID=$!
trap 'kill $RECD_PID 2>/dev/null; wait $RECD_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 200); do
  timeout 2 redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break
  sleep 0.05
done
for u in user3 user17 user150; do
  redis-cli -p "$PORT" RECOMMEND "$u" COUNT 10 NOTRACK > "$TMP/got"
  python3 - "$TMP/popular.csv" "$u" "$serves" "$TMP/got" <<'PY' || fail "popularity answer for $u"
import csv, sys
path, user, serves, got = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
tmax = max(int(r["timestamp"]) for r in rows)
since = tmax - 30 * 86400
def count(rs):
    c = {}
    for r in rs:
        c.setdefault(r["item"], set()).add(r["user"])
    return {i: len(s) for i, s in c.items()}
alltime = count(rows)
recent = count([r for r in rows if int(r["timestamp"]) >= since])
mine = {r["item"] for r in rows if r["user"] == user}
if serves == "popularity":
    key = lambda i: alltime[i]
else:
    key = lambda i: (recent.get(i, 0), alltime[i])
answer = open(got).read().split()
assert len(answer) == 10 and not set(answer) & mine, (answer, mine)
# Every answer scores at least as high as every item left out.
worst = min(key(i) for i in answer)
left = [i for i in alltime if i not in mine and i not in answer]
assert all(key(i) <= worst for i in left), (answer, worst)
assert [key(i) for i in answer] == sorted((key(i) for i in answer), reverse=True), answer
PY
done
pass "popularity wins on validation: a $serves model, served by recd minus each history"

# 5. Option errors.
expect_fail 2 "--split: expected random, user-latest, time-cut or all" \
  "$T" --csv "$TMP/clusters.csv" --holdout 0.2 --split latest
expect_fail 2 "--tune-trials: expected an integer" "$T" --csv "$TMP/clusters.csv" --tune --tune-trials 0
expect_fail 2 "--fallback: expected yes or no" "$T" --csv "$TMP/clusters.csv" --fallback maybe --out "$TMP/x.bin"
expect_fail 2 "--half-life: expected a number" "$T" --csv "$TMP/clusters.csv" --half-life -1 --out "$TMP/x.bin"
expect_fail 2 "--tune goes with training" "$T" --info "$TMP/m.bin" --tune
pass "option errors"
