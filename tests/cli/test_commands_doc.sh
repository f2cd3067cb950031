#!/usr/bin/env bash
# test_commands_doc.sh - README's "Command reference" is exactly what
# `recd --commands-markdown` prints (the daemon's command table and the
# parser's option table), so the documentation cannot drift from the
# grammar: regenerate the section when this fails.
. "$(dirname "$0")/lib.sh"
SRC="${RECD_SOURCE_DIR:?}"

"$BIN/recd" --commands-markdown >"$TMP/gen.md" || fail "recd --commands-markdown failed"
grep -q '^### RECOMMEND$' "$TMP/gen.md" || fail "no RECOMMEND in the generated reference"
# README between the markers (exclusive)
awk '/^<!-- BEGIN command reference/ {on=1; skip=1; next}
     on && skip && /-->$/ {skip=0; next}
     /^<!-- END command reference -->/ {on=0}
     on && !skip {print}' "$SRC/README.md" >"$TMP/readme.md"
[ -s "$TMP/readme.md" ] || fail "README.md has no generated Command reference section"
if ! diff -u "$TMP/readme.md" "$TMP/gen.md" >"$TMP/diff"; then
  head -40 "$TMP/diff" >&2
  fail "README's Command reference differs from recd --commands-markdown (regenerate it)"
fi
pass "README's Command reference matches recd --commands-markdown"

# Every command the daemon dispatches is documented (commands_markdown
# exits 1 otherwise, checked above), and every documented syntax line of
# the parsed commands appears in the reference.
for cmd in RECOMMEND RANK SIMILAR FEEDBACK MERGE MODEL EXPERIMENT PING ECHO QUIT AUTH HELLO COMMAND INFO \
           CONFIG CLIENT; do
  grep -q "^### $cmd\$" "$TMP/gen.md" || fail "no section for $cmd"
done
pass "every command has a section"
