#!/usr/bin/env bash
# Every script in scripts/ answers --help: exit status 0, a "usage:" line
# on stdout, nothing on stderr, and no side effects. Each runs from a copy
# of scripts/ in a scratch tree (the scripts cd to their repository, so
# anything they would build or write lands there and is seen), with every
# tool a script could start (cmake, apt-get, redis-server, recd-train ...)
# replaced by a stub that records the call. Before this test,
# `recd-retrain --help` ran a retrain into a state directory named --help.
. "$(dirname "$0")/lib.sh"
SRC="${RECD_SOURCE_DIR:?}"
repo="$TMP/repo"
stub="$TMP/stub"
mkdir -p "$repo/scripts" "$stub" "$TMP/cwd"
for f in "$SRC"/scripts/*; do
  case "$(basename "$f")" in
    make-demo-data.py) ;; # a data converter run by hand, not an operator script
    *) cp -p "$f" "$repo/scripts/" ;; # every other one, new ones included
  esac
done
for c in cmake ctest make apt-get sudo dpkg-query redis-server redis-cli redis-benchmark \
         systemd-analyze systemctl python3 clang recd recd-train recd-bench valgrind; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/called"\nexit 1\n' "$c" "$TMP" > "$stub/$c"
  chmod +x "$stub/$c"
done
n=0
for s in "$repo"/scripts/*; do
  name=$(basename "$s")
  status=0
  (cd "$TMP/cwd" && PATH="$stub:$PATH" RECD_BIN="$stub" RECD_BIN_DIR="$stub" \
     timeout 20 "$s" --help >"$TMP/out" 2>"$TMP/err") || status=$?
  [ "$status" = 0 ] || { cat "$TMP/err"; fail "$name --help exited $status"; }
  grep -q '^usage: ' "$TMP/out" || { cat "$TMP/out"; fail "$name --help prints no usage line"; }
  [ ! -s "$TMP/err" ] || { cat "$TMP/err"; fail "$name --help wrote to stderr"; }
  [ ! -e "$TMP/called" ] || { cat "$TMP/called"; fail "$name --help ran other programs"; }
  [ -z "$(ls -A "$TMP/cwd")" ] || { ls -la "$TMP/cwd"; fail "$name --help created files in its cwd"; }
  [ "$(ls -A "$repo")" = scripts ] || { ls -la "$repo"; fail "$name --help created files in its tree"; }
  n=$((n + 1))
done
[ "$n" -ge 9 ] || fail "only $n scripts found"
pass "$n scripts answer --help without side effects"

# recd-retrain: no state dir, an unknown option, two dirs: usage errors
# (exit 2) that name the problem, and still nothing run.
r="$repo/scripts/recd-retrain"
PATH="$stub:$PATH" RECD_BIN="$stub" expect_fail 2 '^usage: recd-retrain STATE_DIR' "$r"
PATH="$stub:$PATH" RECD_BIN="$stub" expect_fail 2 'unknown option --bogus' "$r" --bogus
PATH="$stub:$PATH" RECD_BIN="$stub" expect_fail 2 'expected one STATE_DIR, got 2' "$r" a b
PATH="$stub:$PATH" RECD_BIN="$stub" expect_fail 2 'nosuch is not a directory' "$r" "$TMP/nosuch"
[ ! -e "$TMP/called" ] || { cat "$TMP/called"; fail "recd-retrain ran recd-train on a usage error"; }
pass "recd-retrain usage errors"
