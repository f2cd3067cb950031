#!/usr/bin/env bash
# The status page in a real browser: recd with two variants and scripted
# traffic; Debian's chromium (headless) renders GET / of the metrics port,
# and the rendered DOM must carry the variants, the models and exactly the
# figures of EXPERIMENT REPORT. A screenshot goes next to the test log
# (Testing/Temporary/status_page.png in the build directory).
source "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null || fail "chromium is not installed (scripts/install-deps.sh installs it)"

start_redis
# Both models from the same purchases with a hold-out, so that each card
# has its three ndcg bars (model, popularity, EASE: model format 2).
python3 "$(dirname "$0")/gen_clusters.py" "$TMP/buys.csv" "$TMP/items.csv"
for s in 1 2; do
  "$BIN/recd-train" -q --csv "$TMP/buys.csv" --items "$TMP/items.csv" --holdout 0.2 \
    --factors 16 --seed $s --out "$TMP/m$s.bin"
done
mv "$TMP/m1.bin" "$TMP/a.bin"
mv "$TMP/m2.bin" "$TMP/b.bin"
ease_a=$("$BIN/recd-train" --info "$TMP/a.bin" | sed -n 's/.*"ease": {.*"ndcg@10": \([0-9.]*\),.*/\1/p')
[ -n "$ease_a" ] || fail "recd-train --info shows no EASE ndcg@10 for a model trained with a hold-out"
port=$(free_port)
mport=$(free_port)
"$BIN/recd" --port "$port" --redis-port "$REDIS_PORT" --metrics-port "$mport" --loglevel warning \
  --variant "control $TMP/a.bin 50" --variant "candidate $TMP/b.bin 50" \
  --experiment-refresh-ms 100 2>"$TMP/recd.log" &
RECD_PID=$!
trap 'kill $RECD_PID 2>/dev/null; wait $RECD_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

# Traffic: 200 customers on two placements; some buy, some click.
/usr/bin/python3 - "$port" <<'PY'
import random, sys
import redis
r = redis.Redis(port=int(sys.argv[1]), decode_responses=True)
rng = random.Random(3)
for u in range(200):
    for placement in ("home", "cart"):
        items = r.execute_command("RECOMMEND", f"u{u}", "COUNT", 5, "PLACEMENT", placement)
        for it in items:
            x = rng.random()
            if x < 0.1:
                r.execute_command("FEEDBACK", f"u{u}", it, "TYPE", "purchase", "VALUE", "9.5")
            elif x < 0.3:
                r.execute_command("FEEDBACK", f"u{u}", it, "TYPE", "click")
r.execute_command("FEEDBACK", "u1", "item7", "TYPE", "cart")  # never shown: organic
PY
# The page shows the periodic copy: wait until it has the last outcome.
sleep 0.5
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$mport/experiments.json" | grep -q '"organic"' && break
  sleep 0.1
done

chromium --headless=new --no-sandbox --disable-gpu --dump-dom \
  "http://127.0.0.1:$mport/" >"$TMP/dom.html" 2>"$TMP/chromium.log" ||
  { cat "$TMP/chromium.log" >&2; fail "chromium could not render the page"; }
shot_dir="$BIN/Testing/Temporary"
mkdir -p "$shot_dir"
chromium --headless=new --no-sandbox --disable-gpu --window-size=1280,1400 \
  --screenshot="$shot_dir/status_page.png" "http://127.0.0.1:$mport/" >/dev/null 2>&1 ||
  fail "chromium could not take the screenshot"
[ -s "$shot_dir/status_page.png" ] || fail "no screenshot"

/usr/bin/python3 - "$port" "$TMP/dom.html" "$ease_a" <<'PY' || fail "the rendered page does not match EXPERIMENT REPORT"
import sys
from html.parser import HTMLParser
import redis

port, dom = int(sys.argv[1]), sys.argv[2]
r = redis.Redis(port=port, decode_responses=True)
report = []
for row in r.execute_command("EXPERIMENT", "REPORT"):
    report.append(dict(zip(row[0::2], row[1::2])))

class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.models, self.row = {}, set(), None
        self.titles, self.in_title, self.variant = {}, False, None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "tr" and "exp-row" in cls:
            self.row = self.rows.setdefault((a["data-variant"], a["data-placement"]), {})
        elif tag == "section" and "model" in cls:
            self.models.add(a["data-variant"])
            self.variant = a["data-variant"]
        elif tag == "title" and self.variant is not None:
            self.in_title = True
        elif self.row is not None and "data-value" in a and cls:
            self.row[cls[0]] = a["data-value"]
    def handle_data(self, data):
        if self.in_title and data.startswith("hold-out ndcg@10"):
            self.titles[self.variant] = data
    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
        elif tag == "title":
            self.in_title = False

p = Page()
p.feed(open(dom, encoding="utf-8").read())
assert p.models == {"control", "candidate"}, p.models
# The control's card shows its EASE baseline as recd-train --info gives it.
ease = "EASE %.4f" % float(sys.argv[3])
assert ease in p.titles.get("control", ""), (p.titles, ease)
assert "n/a" not in "".join(p.titles.values()), p.titles
keys = {(w["variant"], w["placement"]) for w in report}
assert set(p.rows) == keys, (sorted(p.rows), sorted(keys))
assert ("control", "organic") in keys or ("candidate", "organic") in keys
checked = 0
for w in report:
    cells = p.rows[(w["variant"], w["placement"])]
    for field in ("requests", "impressions", "clicks", "carts", "purchases", "value", "ctr",
                  "conversion", "lift", "p_value"):
        if field not in w:
            continue
        want, got = w[field], cells.get(field)
        if want is None:
            assert got in (None, ""), (w["variant"], w["placement"], field, got)
        else:
            assert got is not None and float(got) == float(want), \
                (w["variant"], w["placement"], field, got, want)
            checked += 1
print(f"ok: {len(report)} rows, {checked} figures equal to EXPERIMENT REPORT")
PY
pass "status page rendered by chromium matches EXPERIMENT REPORT (screenshot: $shot_dir/status_page.png)"
