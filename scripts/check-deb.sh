#!/usr/bin/env bash
# usage: scripts/check-deb.sh [--yes] [BUILD_DIR]
#
# Builds the Debian package (cpack -G DEB) in BUILD_DIR (default build-deb,
# configured with -DCMAKE_INSTALL_PREFIX=/usr and Debian's build flags),
# lints it (lintian: any error or warning fails), installs it with dpkg -i
# and checks it: the packaged /etc/recd/recd.conf is a conffile and passes
# `recd /etc/recd/recd.conf --test-config` (as root and as the user recd),
# the system user recd exists, the installed units name /usr/bin and pass
# `systemd-analyze verify` (recd@.service as an instance). Then purges it
# and checks that nothing of it is left: binaries, units, docs, manual
# pages, /etc/recd, /var/lib/recd. The user recd is kept by a purge (Debian
# practice); this script removes it again if it created it.
#
# It installs and removes a system package, so it runs only as root and
# only with CI=true or --yes. The machine is left as it was, also on
# failure: a /etc/recd that existed (e.g. from `cmake --install`) is moved
# aside and put back, runtime dependencies that apt-get had to add are
# purged again. It refuses to run when recd is already installed as a
# package or /var/lib/recd holds data.
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
yes=0
build=""
for a in "$@"; do
  case "$a" in
    -h|--help) usage; exit 0 ;;
    --yes) yes=1 ;;
    -*) echo "check-deb.sh: unknown option $a (see --help)" >&2; exit 2 ;;
    *) [ -z "$build" ] || { echo "check-deb.sh: one BUILD_DIR only (see --help)" >&2; exit 2; }
       build=$a ;;
  esac
done
build=${build:-build-deb}
if [ "$(id -u)" -ne 0 ]; then
  echo "check-deb.sh: must run as root (it installs and purges the recd package)" >&2; exit 2
fi
if [ "${CI:-}" != true ] && [ "$yes" != 1 ]; then
  echo "check-deb.sh: installs and purges a system package; run with --yes (or CI=true)" >&2; exit 2
fi
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

fail() { echo "check-deb.sh: FAIL: $*" >&2; exit 1; }
pkg_status() { dpkg-query -W -f='${db:Status-Status}' recd 2>/dev/null || true; }

# Refuse what cleaning up could not undo.
case "$(pkg_status)" in
  ""|not-installed) ;;
  *) echo "check-deb.sh: the recd package is installed here ($(pkg_status)); not touching it" >&2; exit 2 ;;
esac
for d in /var/lib/recd /var/lib/private/recd; do
  if [ -e "$d" ] || [ -L "$d" ]; then
    echo "check-deb.sh: $d exists (models?); a purge would delete it, so not running" >&2; exit 2
  fi
done

# 1. Build and lint.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
      -DRECD_BUILD_TESTS=OFF \
      -DCMAKE_C_FLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
      -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" >/dev/null
cmake --build "$build" -j2 >/dev/null
rm -f "$build"/recd_*.deb
(cd "$build" && cpack -G DEB >cpack.log 2>&1) || { cat "$build/cpack.log"; fail "cpack -G DEB"; }
debs=("$build"/recd_*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then fail "cpack made no single recd_*.deb in $build"; fi
deb=$(realpath "${debs[0]}")
echo "check-deb.sh: built $deb"
dpkg-deb -f "$deb" Package Version Depends | sed 's/^/  /'
# lintian warns that it runs as root; that line is not a finding.
lint_rc=0
lint=$(lintian --fail-on error,warning --info "$deb" 2>&1) || lint_rc=$?
grep -v 'running with root privileges' <<<"$lint" || true
[ $lint_rc -eq 0 ] || fail "lintian (exit status $lint_rc)"
echo "check-deb.sh: lintian: no errors, no warnings"

# 2. Install, with everything needed to undo it on any exit.
tmp=$(mktemp -d /tmp/check-deb.XXXXXX)
etc_moved=0
user_before=0; getent passwd recd >/dev/null && user_before=1
group_before=0; getent group recd >/dev/null && group_before=1
dpkg-query -W -f='${Package}\n' | sort >"$tmp/packages.before"
cleanup() {
  local rc=$?
  set +e
  if [ "$(pkg_status)" != not-installed ] && [ -n "$(pkg_status)" ]; then
    dpkg --purge recd >/dev/null
  fi
  # Packages apt-get added for recd's dependencies, if it had to.
  dpkg-query -W -f='${Package}\n' | sort >"$tmp/packages.after"
  local added
  added=$(comm -13 "$tmp/packages.before" "$tmp/packages.after" | grep -vx recd)
  if [ -n "$added" ]; then
    # shellcheck disable=SC2086
    apt-get purge -y -q $added >/dev/null
  fi
  [ "$user_before" = 1 ] || ! getent passwd recd >/dev/null || userdel recd
  [ "$group_before" = 1 ] || ! getent group recd >/dev/null || groupdel recd
  rm -rf /var/lib/recd /var/lib/private/recd   # refused above if they existed
  if [ "$etc_moved" = 1 ]; then
    rm -rf /etc/recd
    mv "$tmp/etc-recd" /etc/recd
  fi
  rm -rf "$tmp"
  [ $rc -eq 0 ] || echo "check-deb.sh: failed; the machine is back as it was" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -e /etc/recd ]; then
  mv /etc/recd "$tmp/etc-recd"
  etc_moved=1
fi

if ! dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1; then
  cat "$tmp/dpkg.log"
  echo "check-deb.sh: dpkg -i failed; trying apt-get install -f for missing dependencies" \
       "(scripts/install-deps.sh installs them all)"
  apt-get install -f -y -q >/dev/null || fail "apt-get install -f"
fi
[ "$(pkg_status)" = installed ] || fail "recd is $(pkg_status) after the install"
echo "check-deb.sh: installed $(dpkg-query -W -f='${Package} ${Version}' recd)"

# 3. Check the installed package.
for b in recd recd-train recd-bench recd-retrain; do
  [ -x /usr/bin/$b ] || fail "/usr/bin/$b missing"
done
dpkg-query -W -f='${Conffiles}\n' recd | grep -q '^ /etc/recd/recd.conf ' ||
  fail "/etc/recd/recd.conf is not a conffile"
getent passwd recd >/dev/null || fail "no user recd"
getent group recd >/dev/null || fail "no group recd"
[ "$(id -gn recd)" = recd ] || fail "user recd's group is $(id -gn recd)"
/usr/bin/recd /etc/recd/recd.conf --test-config >/dev/null || fail "recd --test-config (root)"
setpriv --reuid=recd --regid=recd --clear-groups \
  /usr/bin/recd /etc/recd/recd.conf --test-config >/dev/null || fail "recd --test-config (as recd)"
echo "check-deb.sh: recd /etc/recd/recd.conf --test-config: ok (root and user recd)"
units=/usr/lib/systemd/system
for u in recd.service recd@.service recd-train.service recd-train.timer \
         recd-refresh.service recd-refresh.timer; do
  [ -f "$units/$u" ] || fail "$units/$u missing"
done
if grep -n '/usr/local' "$units"/recd*; then fail "installed units name /usr/local"; fi
grep -q '^ExecStart=/usr/bin/recd /etc/recd/%i.conf$' "$units/recd@.service" ||
  fail "recd@.service does not start /usr/bin/recd with /etc/recd/%i.conf"
if command -v systemd-analyze >/dev/null; then
  # recd@.service is checked as an instance (a template alone is no unit),
  # found by name in /usr/lib/systemd/system like the others.
  systemd-analyze verify "$units/recd.service" "$units/recd-train.service" \
    "$units/recd-train.timer" "$units/recd-refresh.service" "$units/recd-refresh.timer" \
    recd@check.service
  echo "check-deb.sh: systemd-analyze verify: ok"
else
  echo "check-deb.sh: no systemd-analyze; units not verified"
fi

# 4. Purge and check nothing is left.
dpkg --purge recd >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg --purge"; }
[ "$(pkg_status)" = not-installed ] || [ -z "$(pkg_status)" ] || fail "recd is $(pkg_status) after the purge"
left=$(ls -d /usr/bin/recd* "$units"/recd* /usr/share/doc/recd /usr/share/man/man1/recd* \
             /usr/share/lintian/overrides/recd /etc/recd /var/lib/recd /var/lib/private/recd \
             2>/dev/null || true)
[ -z "$left" ] || fail "left after the purge: $left"
getent passwd recd >/dev/null || fail "the purge removed the user recd (it is to be kept)"
echo "check-deb.sh: purged; nothing left (the user recd is kept by design)"
echo "check-deb.sh: ok"
