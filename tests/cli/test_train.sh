#!/usr/bin/env bash
# recd-train end to end: CSV training with hold-out report, bad input,
# Redis import and training from Redis, synthetic models, option errors.
. "$(dirname "$0")/lib.sh"
T="$BIN/recd-train"
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1

# 1. Train from CSV with evaluation; the report has DESIGN.md's keys and the
#    model beats popularity on planted structure.
"$T" --csv "$TMP/in.csv" --items "$TMP/items.csv" --factors 16 --iterations 8 \
  --holdout 0.2 --report "$TMP/r.json" --out "$TMP/m.bin" 2>"$TMP/log" || { cat "$TMP/log"; fail "train"; }
[ -s "$TMP/m.bin" ] || fail "no model written"
python3 - "$TMP/r.json" <<'PY' || fail "report check"
import json, sys
r = json.load(open(sys.argv[1]))
for side in ("model", "popularity", "ease"):
    for k in ("precision@10", "recall@10", "ndcg@10", "map@10", "coverage"):
        assert 0 <= r[side][k] <= 1, (side, k)
for k in ("train_seconds", "iterations", "factors", "users", "items", "interactions"):
    assert k in r, k
assert r["users"] == 300 and r["items"] == 120 and r["factors"] == 16
assert r["model"]["ndcg@10"] > 2 * r["popularity"]["ndcg@10"], r
PY
grep -q "hold-out evaluation" "$TMP/log" || fail "no evaluation table on stderr"
# the model file carries the EASE baseline's figures, as the report does
"$T" --info "$TMP/m.bin" > "$TMP/info.json"
python3 - "$TMP/r.json" "$TMP/info.json" <<'PY' || fail "EASE metrics in the model"
import json, sys
r, i = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert i["version"] == 3 and i["groups"] == 0, i
assert abs(i["ease"]["ndcg@10"] - r["ease"]["ndcg@10"]) < 1e-6, (i["ease"], r["ease"])
PY
pass "csv training with hold-out report"

# 1a. --info's version-3 fields, on the fuzz seeds (fixed files: a
#     recent-popularity fallback, and a version-2 ALS model that reads them
#     as 0), and present in a freshly trained model.
seeds="$(dirname "$0")/../fuzz/corpus/model"
"$T" --info "$seeds/recent-popularity-v3-12x1.bin" > "$TMP/i3.json" || fail "--info of the v3 seed"
"$T" --info "$seeds/groups-v2-10x4.bin" > "$TMP/i2.json" || fail "--info of the v2 seed"
python3 - "$TMP/i3.json" "$TMP/i2.json" "$TMP/info.json" <<'PY' || fail "--info version-3 fields"
import json, sys
i3, i2, i = (json.load(open(p)) for p in sys.argv[1:])
assert i3["version"] == 3 and i3["serves"] == "recent-popularity" and i3["factors"] == 1, i3
assert i3["eval_split"] == "time-cut" and i3["half_life_days"] == 30, i3
assert i3["tuned_at"] == 1767139200 and i3["recent_popularity"]["ndcg@10"] == 0.1, i3
assert i2["version"] == 2 and i2["serves"] == "als" and i2["eval_split"] == "random", i2
assert i2["half_life_days"] == 0 and i2["tuned_at"] == 0 and i2["recent_popularity"] is None, i2
assert i["serves"] in ("als", "popularity", "recent-popularity"), i
assert i["eval_split"] in ("random", "user-latest", "time-cut") and i["tuned_at"] >= 0, i
assert "recent_popularity" in i and i["half_life_days"] >= 0, i
PY
pass "--info: serves, eval_split, half_life_days, tuned_at, recent_popularity"

# 1b. Product families: a fourth column of the items file (empty = none).
python3 - "$TMP/items.csv" "$TMP/items4.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(rows[0] + ["group"])
    for r in rows[1:]:
        n = int(r[0][4:])
        w.writerow(r + ["fam%d" % (n // 3) if n < 60 else ""])
PY
"$T" -q --csv "$TMP/in.csv" --items "$TMP/items4.csv" --factors 8 --iterations 2 --out "$TMP/g.bin"
"$T" --info "$TMP/g.bin" | grep -q '"groups": 20,' || fail "20 groups from the items file"
"$T" --info "$TMP/g.bin" | grep -q '"ease": null' || fail "no EASE without --holdout"
printf 'item,title,category,group\nitem1,t,c\n' > "$TMP/bad4.csv"
expect_fail 1 "bad4.csv:2: expected 4 fields, got 3" \
  "$T" --csv "$TMP/in.csv" --items "$TMP/bad4.csv" --out "$TMP/x.bin"
pass "product families from the items file"

# 2. Same data and seed, same bytes (SOURCE_DATE_EPOCH pins the creation
#    time, as for reproducible builds); another seed, another model.
export SOURCE_DATE_EPOCH=1700000000
"$T" -q --csv "$TMP/in.csv" --factors 8 --iterations 3 --out "$TMP/a.bin"
"$T" -q --csv "$TMP/in.csv" --factors 8 --iterations 3 --out "$TMP/b.bin"
"$T" -q --csv "$TMP/in.csv" --factors 8 --iterations 3 --threads 1 --out "$TMP/c.bin"
"$T" -q --csv "$TMP/in.csv" --factors 8 --iterations 3 --seed 7 --out "$TMP/d.bin"
unset SOURCE_DATE_EPOCH
cmp -s "$TMP/a.bin" "$TMP/b.bin" || fail "same seed gave different model files"
cmp -s "$TMP/a.bin" "$TMP/c.bin" || fail "thread count changed the model file"
cmp -s "$TMP/a.bin" "$TMP/d.bin" && fail "another seed gave the same model file"
"$T" --info "$TMP/a.bin" | grep -q '"created_at": 1700000000' || fail "SOURCE_DATE_EPOCH"
pass "deterministic training"

# 3. Bad lines: an error naming file:line, or counted with --skip-bad-lines.
cp "$TMP/in.csv" "$TMP/bad.csv"
echo "user1,item1,abc,1600000000" >> "$TMP/bad.csv"
echo "user2,item2,-1,1600000000" >> "$TMP/bad.csv"
lines=$(wc -l < "$TMP/bad.csv")
expect_fail 1 "bad.csv:$((lines - 1)):.*weight" "$T" --csv "$TMP/bad.csv" --out "$TMP/x.bin"
[ ! -e "$TMP/x.bin" ] || fail "a failed run wrote a model"
"$T" --csv "$TMP/bad.csv" --skip-bad-lines --factors 4 --iterations 1 --out "$TMP/x.bin" 2>"$TMP/log"
grep -q "skipped 2 bad lines" "$TMP/log" || { cat "$TMP/log"; fail "skip count"; }
expect_fail 1 "nosuch.csv" "$T" --csv "$TMP/nosuch.csv" --out "$TMP/x.bin"
pass "bad CSV lines"

# 4. Options are validated and the culprit named.
expect_fail 2 "--factors" "$T" --csv "$TMP/in.csv" --factors 0 --out "$TMP/x.bin"
expect_fail 2 "--holdout" "$T" --csv "$TMP/in.csv" --holdout 1.5
expect_fail 2 "--lambda" "$T" --csv "$TMP/in.csv" --lambda abc --out "$TMP/x.bin"
expect_fail 2 "--confidence" "$T" --csv "$TMP/in.csv" --confidence cubic --out "$TMP/x.bin"
expect_fail 2 "unknown or incomplete option" "$T" --frobnicate
expect_fail 2 "nothing to do" "$T" --csv "$TMP/in.csv"
pass "option validation"

# 5. Import into a real Redis, then train from it.
start_redis
"$T" --import --csv "$TMP/in.csv" --items "$TMP/items.csv" --redis-port "$REDIS_PORT" 2>"$TMP/log"
n=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'recd:hist:*' | wc -l)
[ "$n" = 300 ] || fail "imported $n histories, want 300"
want=$(awk -F, 'NR > 1 && $1 == "user7" { s += $3 } END { print s }' "$TMP/in.csv")
got=$(redis-cli -p "$REDIS_PORT" eval "local s=0 for _,v in ipairs(redis.call('zrange',KEYS[1],0,-1,'withscores')) do if _ % 2 == 0 then s=s+tonumber(v) end end return s" 1 recd:hist:user7)
[ "$got" = "$want" ] || fail "user7 weight sum $got, want $want"
[ "$(redis-cli -p "$REDIS_PORT" hget recd:item:item3 category)" = cat3 ] || fail "item category"
# groups: from the fourth column on import, and as the storefront writes them
"$T" -q --import --csv "$TMP/in.csv" --items "$TMP/items4.csv" --redis-port "$REDIS_PORT"
[ "$(redis-cli -p "$REDIS_PORT" hget recd:item:item7 group)" = fam2 ] || fail "item group imported"
[ "$(redis-cli -p "$REDIS_PORT" hexists recd:item:item70 group)" = 0 ] || fail "empty group stored"
redis-cli -p "$REDIS_PORT" hset recd:item:item70 group fam-x >/dev/null
redis-cli -p "$REDIS_PORT" hset recd:item:item71 group fam-x >/dev/null
redis-cli -p "$REDIS_PORT" del recd:item:item72 >/dev/null
redis-cli -p "$REDIS_PORT" set recd:item:item72 "not a hash" >/dev/null
# malformed data in Redis is skipped and counted, not fatal
redis-cli -p "$REDIS_PORT" set recd:hist:broken "not a zset" >/dev/null
redis-cli -p "$REDIS_PORT" zadd recd:hist:neg -5 item1 >/dev/null
"$T" --redis-port "$REDIS_PORT" --factors 16 --iterations 8 --holdout 0.2 \
  --report "$TMP/rr.json" --out "$TMP/redis.bin" 2>"$TMP/log" || { cat "$TMP/log"; fail "train from redis"; }
grep -q "skipped 3 malformed" "$TMP/log" || { cat "$TMP/log"; fail "anomaly count"; }
grep -q "item:item72 is not a hash" "$TMP/log" || { cat "$TMP/log"; fail "item key warning"; }
"$T" --info "$TMP/redis.bin" | grep -q '"items": 120' || fail "redis model items"
"$T" --info "$TMP/redis.bin" | grep -q '"categories": 6' || fail "redis model categories"
"$T" --info "$TMP/redis.bin" | grep -q '"groups": 21,' || fail "redis model groups"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["model"]["ndcg@10"] > 2*r["popularity"]["ndcg@10"], r' "$TMP/rr.json" || fail "redis model quality"
# a custom key prefix reads nothing here
expect_fail 1 "no interactions" "$T" --redis-port "$REDIS_PORT" --key-prefix other: --out "$TMP/x.bin"
kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=""
expect_fail 1 "cannot connect" "$T" --redis-port "$REDIS_PORT" --out "$TMP/x.bin"
pass "redis import and training"

# 6. Synthetic models for benchmarks.
"$T" -q --synthetic 5000 --factors 32 --out "$TMP/s.bin"
"$T" --info "$TMP/s.bin" | grep -q '"items": 5000' || fail "synthetic items"
"$T" --info "$TMP/s.bin" | grep -q '"categories": 100' || fail "synthetic categories"
pass "synthetic model"
