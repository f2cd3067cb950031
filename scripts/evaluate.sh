#!/usr/bin/env bash
# usage: scripts/evaluate.sh [--quick] [DATA_DIR] [OUT_DIR]
#
# Reruns the evaluation of README.md ("How good are the recommendations")
# on the shared data sets (../shared/data, never copied into this
# repository): for each data set, every kind of hold-out split its data
# allows (time-cut, user-latest and random when the interactions have
# timestamps, random otherwise), recd with its defaults, recd --tune,
# popularity, recent popularity and EASE, each on the same split. Writes
# OUT_DIR/<set>.json (recd-train --report) and OUT_DIR/<set>.log, prints
# the README's table (ndcg@10) and how long each set took.
#
#   --quick   no tuning (the recd --tune column stays empty)
#
# Environment: TUNE_TRIALS (40) and TUNE_SECONDS (600) bound each search.
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
tune=(--tune --tune-trials "${TUNE_TRIALS:-40}" --tune-seconds "${TUNE_SECONDS:-600}")
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  --quick) tune=(); shift ;;
  -*) echo "evaluate.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
out=${2:-build/eval}
mkdir -p "$out"
[ -x build/recd-train ] || { cmake -S . -B build >/dev/null && cmake --build build -j2; }
sets=()
for d in online-retail movielens-100k movielens-1m completejourney-sample; do
  [ -f "$data/$d/interactions.csv" ] || { echo "skip $d: not in $data" >&2; continue; }
  items=()
  [ -f "$data/$d/items.csv" ] && items=(--items "$data/$d/items.csv")
  echo "== $d" >&2
  start=$(date +%s)
  build/recd-train --csv "$data/$d/interactions.csv" "${items[@]}" --holdout 0.2 "${tune[@]}" \
    --report "$out/$d.json" --out "$out/$d.model" 2>"$out/$d.log" ||
    { tail -5 "$out/$d.log" >&2; exit 1; }
  echo "$(( $(date +%s) - start ))" >"$out/$d.seconds"
  grep -E '^hold-out|^  |^tuned:|^fallback:' "$out/$d.log" >&2 || true
  sets+=("$d")
done
[ ${#sets[@]} -gt 0 ] || { echo "evaluate.sh: no data set found in $data" >&2; exit 1; }
/usr/bin/python3 - "$out" "${sets[@]}" <<'PY'
import json, sys
out, sets = sys.argv[1], sys.argv[2:]
def f(m):
    return "%.4f" % m["ndcg@10"] if m else "-"
print("| data set | split | recd defaults | recd --tune | popularity | recent popularity | EASE | seconds |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for d in sets:
    r = json.load(open("%s/%s.json" % (out, d)))
    secs = open("%s/%s.seconds" % (out, d)).read().strip()
    for i, (kind, s) in enumerate(r["splits"].items()):
        recd = f(s["recd"]) + ("" if s["recd_serves"] == "als" else " (%s)" % s["recd_serves"])
        tuned = "-"
        if "tuned" in s:
            tuned = f(s["tuned"]) + ("" if s["tuned_serves"] == "als" else " (%s)" % s["tuned_serves"])
        print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            d if i == 0 else "", kind, recd, tuned, f(s["popularity"]),
            f(s.get("recent_popularity")), f(s.get("ease")), secs if i == 0 else ""))
PY
