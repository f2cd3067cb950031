#!/usr/bin/env bash
# recd-train --export-factors / --import-factors (factors trained elsewhere):
# a model's factors exported as JSON lines and imported with the same data
# and options give the same model file byte for byte (so the same factors,
# YtY, popularity, categories, RECOMMEND answers and evaluation); Spark's
# shape (integer ids, compact, another float spelling, another order) with
# --factor-ids gives the same item factors bit for bit and the same answers;
# catalogue items without history, history items without factors, Redis as
# the source; every bad input is refused with file:line and what was wrong.
. "$(dirname "$0")/lib.sh"
T="$BIN/recd-train"
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
# Pinned creation time: identical inputs give identical bytes (README).
export SOURCE_DATE_EPOCH=1700000000
OPTS=(--factors 16 --iterations 8 --fallback no)
D=(--csv "$TMP/in.csv" --items "$TMP/items.csv")

# 1. Round trip: train, export, import with the same data and options.
"$T" -q "${D[@]}" "${OPTS[@]}" --out "$TMP/a.bin"
"$T" --export-factors "$TMP/f.jsonl" --model "$TMP/a.bin" 2>"$TMP/log" ||
  { cat "$TMP/log"; fail "export"; }
grep -q "wrote .*f.jsonl: 120 items, k=16" "$TMP/log" || { cat "$TMP/log"; fail "export message"; }
"$T" -q --export-factors - --model "$TMP/a.bin" > "$TMP/f-stdout.jsonl"
cmp -s "$TMP/f.jsonl" "$TMP/f-stdout.jsonl" || fail "--export-factors - differs from the file"
python3 - "$TMP/a.bin" "$TMP/f.jsonl" <<'PY' || fail "exported factors are not the model's"
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n, k, stride = struct.unpack_from("<III", b, 32)
sec = [struct.unpack_from("<QQ", b, 224 + 16 * s) for s in range(11)]
off = struct.unpack_from("<%dQ" % (n + 1), b, sec[4][0])
ids = [b[sec[5][0] + off[i]:sec[5][0] + off[i + 1]].decode() for i in range(n)]
lines = open(sys.argv[2]).read().splitlines()
assert len(lines) == n == 120, (len(lines), n)
for i, line in enumerate(lines):
    o = json.loads(line)
    assert set(o) == {"id", "features"} and o["id"] == ids[i], (i, o["id"])
    y = struct.unpack_from("<%df" % k, b, sec[0][0] + 4 * stride * i)
    got = struct.pack("<%df" % k, *o["features"])
    assert got == struct.pack("<%df" % k, *y), ("row", i)
PY
"$T" --import-factors "$TMP/f.jsonl" "${D[@]}" "${OPTS[@]}" --out "$TMP/b.bin" 2>"$TMP/log" ||
  { cat "$TMP/log"; fail "import"; }
grep -q "wrote .*b.bin: 120 items, k=16, factors from .*f.jsonl, 300 users and 1800 interactions" \
  "$TMP/log" || { cat "$TMP/log"; fail "import message"; }
cmp "$TMP/a.bin" "$TMP/b.bin" || fail "round trip: the imported model differs from the trained one"
# --factors is optional (the file's k); given, it must match
"$T" -q --import-factors "$TMP/f.jsonl" "${D[@]}" --iterations 8 --out "$TMP/b2.bin"
cmp -s "$TMP/a.bin" "$TMP/b2.bin" || fail "import without --factors differs"
pass "round trip: export, import with the same data and options: the same model byte for byte"

# 2. Spark's shape: {"id":240,"features":[...]} compact, integer ids, floats
#    spelled as Python's repr of the double (not %.9g), with a factor_id,item
#    map; in the model's order (the same file), and in another order (the
#    same factors; popularity ties are then broken in the other order).
python3 - "$TMP/f.jsonl" "$TMP/spark.json" "$TMP/map.csv" "$TMP/shuffled.json" <<'PY'
import json, random, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def spark(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps({"id": int(r["id"][4:]) * 10, "features": r["features"]},
                               separators=(",", ":")) + "\n")
spark(sys.argv[2], rows)
random.Random(7).shuffle(rows)
spark(sys.argv[4], rows)
with open(sys.argv[3], "w") as f:
    f.write("factor_id,item\n")
    for i in range(130):  # more ids than factors: extra ones are ignored
        f.write(f"{i * 10},item{i}\n")
PY
"$T" -q --import-factors "$TMP/spark.json" --factor-ids "$TMP/map.csv" "${D[@]}" "${OPTS[@]}" \
  --out "$TMP/s.bin" || fail "Spark-shaped import"
cmp "$TMP/a.bin" "$TMP/s.bin" || fail "Spark-shaped import in model order differs"
"$T" -q --import-factors "$TMP/shuffled.json" --factor-ids "$TMP/map.csv" "${D[@]}" \
  "${OPTS[@]}" --out "$TMP/c.bin" || fail "Spark-shaped import, shuffled"
"$T" --info "$TMP/a.bin" > "$TMP/ia.json"
"$T" --info "$TMP/c.bin" > "$TMP/ic.json"
python3 - "$TMP/a.bin" "$TMP/c.bin" "$TMP/ia.json" "$TMP/ic.json" <<'PY' || fail "Spark-shaped import"
import json, struct, sys
def load(path):
    b = open(path, "rb").read()
    n, k, stride = struct.unpack_from("<III", b, 32)
    sec = [struct.unpack_from("<QQ", b, 224 + 16 * s) for s in range(11)]
    off = struct.unpack_from("<%dQ" % (n + 1), b, sec[4][0])
    items = {}
    for i in range(n):
        iid = b[sec[5][0] + off[i]:sec[5][0] + off[i + 1]]
        y = b[sec[0][0] + 4 * stride * i:sec[0][0] + 4 * stride * i + 4 * k]
        pop = b[sec[2][0] + 4 * i:sec[2][0] + 4 * i + 4]
        cat = struct.unpack_from("<I", b, sec[3][0] + 4 * i)[0]
        items[iid] = (y, pop, cat)
    return items
a, c = load(sys.argv[1]), load(sys.argv[2])
assert a.keys() == c.keys()
for iid in a:
    assert a[iid][0] == c[iid][0], ("factors differ", iid)
    assert a[iid][1] == c[iid][1], ("popularity differs", iid)
ia, ic = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
for key in ("items", "factors", "categories", "lambda", "alpha", "confidence", "eps",
            "reg_exponent", "users", "interactions", "half_life_days", "serves"):
    assert ia[key] == ic[key], (key, ia[key], ic[key])
assert abs(ia["score_scale"] - ic["score_scale"]) <= 1e-5 * ia["score_scale"], "score_scale"
PY
pass "Spark's shape (integer ids, --factor-ids): the same file; in another order the same factors"

# 3. The same answers through recd (RECOMMEND) and the same evaluation (the
#    gate evaluates the serving model, --compare, on a hold-out split).
start_redis
R=(--redis-port "$REDIS_PORT")
"$T" -q --import "${D[@]}" "${R[@]}"
recommend_all() { # model file -> one line per customer
  local port
  port=$(free_port)
  "$BIN/recd" --model "$1" --port "$port" "${R[@]}" 2>"$TMP/recd.log" &
  RECD_PID=$!
  for _ in $(seq 1 200); do
    timeout 2 redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
    kill -0 "$RECD_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
    sleep 0.05
  done
  for u in 0 1 2 3 5 8 13 21 34 55 89 144 233 299; do
    echo "user$u: $(redis-cli -p "$port" RECOMMEND "user$u" COUNT 10 NOTRACK | tr '\n' ' ')"
  done
  echo "similar: $(redis-cli -p "$port" SIMILAR item7 COUNT 10 | tr '\n' ' ')"
  stop_recd
}
recommend_all "$TMP/a.bin" > "$TMP/rec-a"
recommend_all "$TMP/b.bin" > "$TMP/rec-b"
recommend_all "$TMP/c.bin" > "$TMP/rec-c"
grep -q '^user0: item' "$TMP/rec-a" || { cat "$TMP/rec-a"; fail "RECOMMEND answered nothing"; }
diff "$TMP/rec-a" "$TMP/rec-b" || fail "RECOMMEND/SIMILAR differ between trained and imported"
diff "$TMP/rec-a" "$TMP/rec-c" || fail "RECOMMEND/SIMILAR differ for the model imported in another order"
gate_eval() {
  "$T" "${D[@]}" "${OPTS[@]}" --holdout 0.2 --compare "$1" --max-drop 1 --min-data 0 \
    --out "$TMP/g.bin" 2>&1 | grep '^gate: ndcg@10' | sed 's/new [0-9.]*, //; s/ (.*bin)//'
}
gate_eval "$TMP/a.bin" > "$TMP/eval-a"
gate_eval "$TMP/b.bin" > "$TMP/eval-b"
gate_eval "$TMP/c.bin" > "$TMP/eval-c"
[ -s "$TMP/eval-a" ] || fail "no gate evaluation line"
diff "$TMP/eval-a" "$TMP/eval-b" || fail "evaluation of the imported model differs"
diff "$TMP/eval-a" "$TMP/eval-c" || fail "evaluation of the model imported in another order differs"
pass "RECOMMEND, SIMILAR and the hold-out evaluation: the same for trained and imported"

# 4. Redis as the source (histories, categories from recd:item:*), and a
#    catalogue item with factors but no history, with a category in Redis.
"$T" -q "${R[@]}" "${OPTS[@]}" --out "$TMP/r.bin"
"$T" -q --export-factors "$TMP/r.jsonl" --model "$TMP/r.bin"
"$T" -q --import-factors "$TMP/r.jsonl" "${R[@]}" "${OPTS[@]}" --out "$TMP/r2.bin"
cmp "$TMP/r.bin" "$TMP/r2.bin" || fail "round trip from Redis differs"
{ cat "$TMP/r.jsonl"; sed -n 1p "$TMP/r.jsonl" | sed 's/"id": "[^"]*"/"id": "newitem"/'; } \
  > "$TMP/cat.jsonl"
redis-cli -p "$REDIS_PORT" hset recd:item:newitem category cat3 >/dev/null
"$T" --import-factors "$TMP/cat.jsonl" "${R[@]}" "${OPTS[@]}" --out "$TMP/r3.bin" 2>"$TMP/log" ||
  { cat "$TMP/log"; fail "import with a catalogue item"; }
grep -q "1 of the 121 items with factors have no interactions in the histories: kept" "$TMP/log" ||
  { cat "$TMP/log"; fail "catalogue item not reported"; }
PORT=$(free_port)
"$BIN/recd" --model "$TMP/r3.bin" --port "$PORT" "${R[@]}" 2>"$TMP/recd.log" &
RECD_PID=$!
for _ in $(seq 1 200); do
  timeout 2 redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break
  sleep 0.05
done
redis-cli -p "$PORT" SIMILAR newitem COUNT 3 | grep -q . || fail "SIMILAR of the catalogue item"
redis-cli -p "$PORT" RECOMMEND user3 COUNT 200 CATEGORY cat3 NOTRACK | grep -qx newitem ||
  fail "the catalogue item is not in its Redis category"
stop_recd
pass "Redis source: round trip exact; a catalogue item without history kept, category from Redis"

# 5. History items without factors: left out and counted; the histories'
#    other items are served.
grep -v '"id": "item5"' "$TMP/f.jsonl" | grep -v '"id": "item11"' > "$TMP/less.jsonl"
"$T" --import-factors "$TMP/less.jsonl" "${D[@]}" "${OPTS[@]}" --out "$TMP/d.bin" 2>"$TMP/log" ||
  { cat "$TMP/log"; fail "import with fewer factors"; }
grep -q "2 items of the histories have no factors ([0-9]* of 1800 interactions): left out" \
  "$TMP/log" || { cat "$TMP/log"; fail "missing factors not reported"; }
"$T" --info "$TMP/d.bin" | grep -q '"items": 118' || fail "model without the two items"
pass "history items without factors: left out and counted"

# 6. Bad input: named with file:line and what was expected; nothing written.
bad_import() { # status pattern file [more options]
  local want=$1 pattern=$2 file=$3; shift 3
  expect_fail "$want" "$pattern" "$T" --import-factors "$file" "${D[@]}" --out "$TMP/x.bin" "$@"
  [ ! -e "$TMP/x.bin" ] || fail "a model was written for $file"
}
: > "$TMP/empty.jsonl"
bad_import 1 "empty.jsonl: no items \(0 lines\), expected JSON lines" "$TMP/empty.jsonl"
printf '{"id": "item1", "features": [1, 2]}\n{"id": "item2", "features": [1 2]}\n' > "$TMP/e1.jsonl"
bad_import 1 "e1.jsonl:2: column 32: expected ',' or ']' in \"features\", got '2'" "$TMP/e1.jsonl"
printf '{"id": "item1", "features": [1, 2]}\n\n{"id": "item2", "features": [1]}\n' > "$TMP/e2.jsonl"
bad_import 1 "e2.jsonl:3: expected 2 features \(as on line 1\), got 1" "$TMP/e2.jsonl"
printf '{"id": "item1", "features": [1, 2e39]}\n' > "$TMP/e3.jsonl"
bad_import 1 "e3.jsonl:1: column 33: features\[1\]: expected a finite float, got 2e39" "$TMP/e3.jsonl"
printf '{"id": "item1", "features": [1, NaN]}\n' > "$TMP/e4.jsonl"
bad_import 1 "e4.jsonl:1: column 33: expected a number, got 'N'" "$TMP/e4.jsonl"
printf '{"id": "item1", "features": [1]}\n{"id": "item1", "features": [2]}\n' > "$TMP/e5.jsonl"
bad_import 1 "e5.jsonl:2: duplicate id \"item1\" \(line 1 has it\)" "$TMP/e5.jsonl"
printf '{"id": "item1", "features": [1], "score": 2}\n' > "$TMP/e6.jsonl"
bad_import 1 "e6.jsonl:1: column 34: expected the key \"id\" or \"features\", got \"score\"" "$TMP/e6.jsonl"
printf '{"id": "item1"}\n' > "$TMP/e7.jsonl"
bad_import 1 "e7.jsonl:1: column 15: expected the key \"features\" in the object" "$TMP/e7.jsonl"
printf 'item1,1,2\n' > "$TMP/e8.jsonl"
bad_import 1 "e8.jsonl:1: column 1: expected '\{'" "$TMP/e8.jsonl"
bad_import 1 "cannot open .*nosuch.jsonl" "$TMP/nosuch.jsonl"
# Spark's integer ids without their map: nothing matches, and the hint says why
bad_import 1 "none of the 120 item ids of .*spark.json appears in the histories of .*in.csv \(integer ids, as Spark's: map them with --factor-ids MAP.csv\)" \
  "$TMP/spark.json"
printf 'factor_id,item\n10,item1\n' > "$TMP/short.csv"
bad_import 1 "spark.json:[0-9]+: id [0-9]+ is not in .*short.csv" "$TMP/spark.json" \
  --factor-ids "$TMP/short.csv"
printf 'factor_id,item\n10,item1\n20,item1\n' > "$TMP/dup.csv"
bad_import 1 "dup.csv:3: duplicate item \"item1\" \(line 2 has it\)" "$TMP/spark.json" \
  --factor-ids "$TMP/dup.csv"
printf 'factor_id,item\n10,item1\n10,item2\n' > "$TMP/dup2.csv"
bad_import 1 "dup2.csv:3: duplicate factor_id \"10\" \(line 2 has it\)" "$TMP/spark.json" \
  --factor-ids "$TMP/dup2.csv"
printf 'spark,item\n' > "$TMP/hdr.csv"
bad_import 1 "hdr.csv:1: bad header, expected factor_id,item" "$TMP/spark.json" --factor-ids "$TMP/hdr.csv"
bad_import 1 "\-\-factors 32, but .*f.jsonl has 16 features per item" "$TMP/f.jsonl" --factors 32
bad_import 2 "\-\-holdout goes with training, not \-\-import-factors" "$TMP/f.jsonl" --holdout 0.2
expect_fail 2 "\-\-import-factors needs \-\-out MODEL" "$T" --import-factors "$TMP/f.jsonl" "${D[@]}"
expect_fail 2 "\-\-export-factors needs \-\-model MODEL" "$T" --export-factors "$TMP/x.jsonl"
expect_fail 2 "\-\-factor-ids goes with \-\-import-factors" "$T" "${D[@]}" --factor-ids "$TMP/map.csv" --out "$TMP/x.bin"
expect_fail 1 "cannot open model .*nosuch.bin" "$T" --export-factors "$TMP/x.jsonl" --model "$TMP/nosuch.bin"
[ ! -e "$TMP/x.jsonl" ] || fail "an export of a missing model left a file"
"$T" --help | grep -q -- "--import-factors FILE" || fail "--help lacks --import-factors"
pass "bad input refused with file:line and what was expected, nothing written"
