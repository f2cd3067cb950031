#!/usr/bin/env bash
# recd-train --refresh-items against a real Redis and a real recd: a product
# launched after the retrain, bought by customers of one cluster, gets a
# vector by the ALS item step, shows up in SIMILAR next to that cluster's
# items, and every old row of the model stays bit for bit the same.
. "$(dirname "$0")/lib.sh"
T="$BIN/recd-train"
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/in.csv" "$TMP/items.csv" 300 120 6 1
start_redis
R=(--redis-port "$REDIS_PORT")
"$T" -q --import --csv "$TMP/in.csv" --items "$TMP/items.csv" "${R[@]}"
"$T" -q "${R[@]}" --factors 16 --iterations 8 --out "$TMP/served.bin"

# Pinned creation time: two refreshes of the same data give the same bytes.
export SOURCE_DATE_EPOCH=1700000000
# Nothing new yet: 0 items added, the copy is written all the same.
"$T" -q --refresh-items --model "$TMP/served.bin" --out "$TMP/same.bin" "${R[@]}" > "$TMP/out"
grep -q "refresh: 0 items added" "$TMP/out" || { cat "$TMP/out"; fail "no new item expected"; }
pass "no new items"

# The launch: 'newitem' bought by 8 customers of cluster 0 (users 0, 6, 12,
# ...), 'rareitem' by only 2; attributes as the storefront writes them.
for u in 0 6 12 18 24 30 36 42; do
  redis-cli -p "$REDIS_PORT" zincrby "recd:hist:user$u" 2 newitem >/dev/null
done
redis-cli -p "$REDIS_PORT" zincrby recd:hist:user1 1 rareitem >/dev/null
redis-cli -p "$REDIS_PORT" zincrby recd:hist:user7 1 rareitem >/dev/null
redis-cli -p "$REDIS_PORT" hset recd:item:newitem category cat0 group new-family >/dev/null
"$T" --refresh-items --model "$TMP/served.bin" --out "$TMP/new.bin" "${R[@]}" > "$TMP/out" \
  2>"$TMP/log" || { cat "$TMP/log"; fail "refresh"; }
grep -q "refresh: 1 items added to the 120 of .*served.bin (1 new items with fewer than 3" \
  "$TMP/out" || { cat "$TMP/out"; fail "refresh count"; }
"$T" --info "$TMP/new.bin" > "$TMP/info.json"
python3 - "$TMP/served.bin" "$TMP/new.bin" "$TMP/info.json" <<'PY' || fail "old rows changed"
import json, struct, sys
def sections(path):
    b = open(path, "rb").read()
    assert b[:8] == b"RECDMDL\0" and struct.unpack_from("<I", b, 12)[0] == 3
    n, k, stride = struct.unpack_from("<III", b, 32)
    sec = [struct.unpack_from("<QQ", b, 224 + 16 * s) for s in range(11)]
    return b, n, stride, sec
a, na, sa, seca = sections(sys.argv[1])
b, nb, sb, secb = sections(sys.argv[2])
assert nb == na + 1 and sa == sb, (na, nb)
ya = a[seca[0][0]:seca[0][0] + seca[0][1]]
yb = b[secb[0][0]:secb[0][0] + secb[0][1]]
assert yb[:len(ya)] == ya, "the rows of the served items differ"
assert any(yb[len(ya):]), "the new item's row is all zero"
pa = a[seca[2][0]:seca[2][0] + seca[2][1]]
assert b[secb[2][0]:secb[2][0] + len(pa)] == pa, "popularity of old items changed"
assert struct.unpack_from("<f", b, secb[2][0] + 4 * na)[0] == 16.0, "new item popularity"
info = json.load(open(sys.argv[3]))
assert info["items"] == 121 and info["groups"] == 1 and info["categories"] == 6, info
PY
pass "new item added, old rows bit-identical"

# Through a running recd: SIMILAR of the new item is cluster 0, and the new
# item is among the neighbours of cluster-0 items.
PORT=$(free_port)
"$BIN/recd" --model "$TMP/new.bin" --port "$PORT" "${R[@]}" 2>"$TMP/recd.log" &
RECD_PID=$!
for _ in $(seq 1 200); do
  timeout 2 redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break
  kill -0 "$RECD_PID" 2>/dev/null || { cat "$TMP/recd.log"; fail "recd exited at start-up"; }
  sleep 0.05
done
redis-cli -p "$PORT" SIMILAR newitem COUNT 10 > "$TMP/sim"
same=$(awk '{ sub(/^item/, ""); if ($0 % 6 == 0) n++ } END { print n + 0 }' "$TMP/sim")
[ "$same" -ge 8 ] || { cat "$TMP/sim"; fail "SIMILAR newitem: $same of 10 from cluster 0"; }
hits=0
for i in 0 6 12 18 24 30 36 42 48 54; do
  redis-cli -p "$PORT" SIMILAR "item$i" COUNT 20 | grep -qx newitem && hits=$((hits + 1))
done
[ "$hits" -ge 5 ] || fail "newitem in SIMILAR of only $hits of 10 cluster-0 items"
redis-cli -p "$PORT" SIMILAR item1 COUNT 20 | grep -qx newitem && fail "newitem next to cluster 1"
stop_recd
pass "SIMILAR through recd ($same/10 neighbours in its cluster, next to $hits/10 cluster items)"

# NEW may be SERVED (published atomically over it); bad input is named.
cp "$TMP/served.bin" "$TMP/inplace.bin"
"$T" -q --refresh-items --model "$TMP/inplace.bin" --out "$TMP/inplace.bin" "${R[@]}" >/dev/null
cmp -s "$TMP/inplace.bin" "$TMP/new.bin" || fail "refresh over the served file differs"
ino=$(stat -c %i "$TMP/inplace.bin")
"$T" --refresh-items --model "$TMP/inplace.bin" --out "$TMP/inplace.bin" "${R[@]}" |
  grep -q "refresh: 0 items added.*left unchanged" || fail "nothing new: served file rewritten"
[ "$(stat -c %i "$TMP/inplace.bin")" = "$ino" ] || fail "nothing new: served file replaced"
"$T" -q --refresh-items --model "$TMP/served.bin" --out "$TMP/m9.bin" --min-item-users 9 \
  "${R[@]}" | grep -q "refresh: 0 items added" || fail "--min-item-users 9"
expect_fail 2 "needs --model SERVED and --out NEW" "$T" --refresh-items --out "$TMP/x.bin"
expect_fail 1 "cannot open model .*nosuch.bin" \
  "$T" --refresh-items --model "$TMP/nosuch.bin" --out "$TMP/x.bin" "${R[@]}"
printf 'garbage' > "$TMP/bad.bin"
expect_fail 1 "bad.bin: not a recd model file" \
  "$T" --refresh-items --model "$TMP/bad.bin" --out "$TMP/x.bin" "${R[@]}"
pass "in place, --min-item-users, errors"

# Kept versions (--keep, as the nightly retrain publishes): the refresh is
# published like a retrain, a new version behind the model.bin symlink,
# never a plain file over it, and under the same lock.
mkdir -p "$TMP/kept"
cp "$TMP/served.bin" "$TMP/kept/model.bin"
unset SOURCE_DATE_EPOCH
"$T" -q --refresh-items --model "$TMP/kept/model.bin" --out "$TMP/kept/model.bin" --keep 3 \
  "${R[@]}" > "$TMP/out" || fail "refresh with --keep"
[ -L "$TMP/kept/model.bin" ] || fail "--keep: model.bin is no longer a symlink"
nv=$(ls "$TMP/kept" | grep -c '^model\.[0-9T]*Z\.bin$')
[ "$nv" = 2 ] || { ls -la "$TMP/kept"; fail "--keep: expected the old and the refreshed version, got $nv"; }
"$T" --info "$TMP/kept/model.bin" | grep -q '"items": 121' || fail "--keep: the link is not the refreshed model"
exec 9>"$TMP/kept/.model.bin.lock"
flock -n 9 || fail "cannot take the publish lock"
expect_fail 1 "lock" "$T" -q --refresh-items --model "$TMP/kept/model.bin" \
  --out "$TMP/kept/model.bin" --keep 3 "${R[@]}"
exec 9>&-
pass "--keep: a new kept version behind the symlink, under the publish lock"
