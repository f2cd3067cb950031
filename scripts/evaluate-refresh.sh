#!/usr/bin/env bash
# usage: scripts/evaluate-refresh.sh [BUILD_DIR] [DATA_DIR]
#
# The figures of README "New products before the retrain" and "How good
# are cart recommendations", on the shared data sets (movielens-1m,
# online-retail: DATA_DIR/<name>/interactions.csv, default
# ../shared/data; a missing data set is skipped, not an error):
#   recd-train --eval-refresh: a seeded random 5% of the items held out,
#     a model trained without them, the items refreshed in
#     (--refresh-items' code), their top-10 cosine neighbours compared with
#     a full retrain's (overlap@10), and a second full retrain with another
#     seed for the noise floor;
#   recd-train --eval-cart (data sets with timestamps: online-retail,
#     movielens-100k): each customer's last basket held out, the first
#     half fed as an anonymous cart, ndcg@10 of the rest against popularity
#     and against the customer's known history plus the cart.
# Default model settings (256 factors, 15 sweeps); runs at nice 10.
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) echo "evaluate-refresh.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
build=${1:-build}
data=${2:-../shared/data}
# The shared movielens-1m copy has no timestamps, so the cart evaluation
# (which needs the order of events) runs on movielens-100k instead.
for d in movielens-1m online-retail movielens-100k; do
  csv="$data/$d/interactions.csv"
  if [ ! -f "$csv" ]; then
    echo "$d: $csv not found, skipped"
    continue
  fi
  [ "$d" = movielens-100k ] || nice -n 10 "$build/recd-train" -q --eval-refresh --csv "$csv"
  if sed -n 2p "$csv" | grep -q ',[0-9][0-9]*$'; then
    nice -n 10 "$build/recd-train" -q --eval-cart --csv "$csv"
  else
    echo "$d: no timestamps, no cart evaluation"
  fi
done
