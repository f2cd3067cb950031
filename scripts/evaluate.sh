#!/usr/bin/env bash
# usage: scripts/evaluate.sh [DATA_DIR] [OUT_DIR]
#
# Reruns the hold-out evaluation of README.md on the shared data sets
# (../shared/data, never copied into this repository) with the defaults.
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) echo "evaluate.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
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
