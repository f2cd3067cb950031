#!/usr/bin/env bash
# Reruns the hold-out evaluation of README.md on the shared data sets
# (../shared/data, never copied into this repository) with the defaults.
#   scripts/evaluate.sh [DATA_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
out=${2:-build/eval}
mkdir -p "$out"
[ -x build/recd-train ] || { cmake -S . -B build >/dev/null && cmake --build build -j2; }
for d in movielens-100k online-retail movielens-1m completejourney-sample; do
  [ -f "$data/$d/interactions.csv" ] || { echo "skip $d: not in $data"; continue; }
  items=()
  [ -f "$data/$d/items.csv" ] && items=(--items "$data/$d/items.csv")
  echo "== $d"
  build/recd-train --csv "$data/$d/interactions.csv" "${items[@]}" --holdout 0.2 \
    --report "$out/$d.json" --out "$out/$d.model" 2>&1 | grep -E '^  |^data:|trained in'
done
