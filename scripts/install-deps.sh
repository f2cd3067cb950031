#!/usr/bin/env bash
# usage: scripts/install-deps.sh
#
# Installs everything recd needs to build, test and run its demo on Debian 12.
# Idempotent: apt-get skips what is already there.
set -euo pipefail
usage() { sed -n '2,/^set -/{/^#/{s/^# \{0,1\}//;p}}' "$0"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) echo "install-deps.sh: takes no arguments, got $1 (see --help)" >&2; exit 2 ;;
esac
PACKAGES=(
  build-essential cmake pkg-config          # toolchain
  libuv1-dev libhiredis-dev                 # event loop, Redis client
  libhttp-parser-dev                        # HTTP parser of the /metrics endpoint
  libssl-dev openssl                        # tls-port (OpenSSL 3); certificates in the TLS tests
  libopenblas-dev liblapacke-dev zlib1g-dev # BLAS/LAPACK, CRC32
  libsystemd-dev systemd                    # sd_notify; systemd-analyze for the unit checks
  check valgrind                            # unit tests; valgrind-clean shutdown test
  libsimde-dev                              # the AVX-512 kernel's test on any CPU (test_qscore)
  strace                                    # epoll_ctl count (tests/cli/test_redis_syscalls.sh)
  redis-server redis-tools                  # tests and demo
  python3                                   # data conversion scripts
  python3-numpy python3-faiss               # bench/compare: the numpy and FAISS peers
  curl python3-prometheus-client            # metrics endpoint tests
  python3-redis                             # Python storefront example
  clang libclang-rt-14-dev                  # libFuzzer targets (scripts/fuzz.sh)
  chromium                                  # the status page rendered in a real browser
  dpkg-dev file lintian adduser             # the Debian package (scripts/check-deb.sh)
  haproxy                                   # the Scaling out recipe (tests/cli/test_haproxy.sh)
)
# Node.js and npm for the Node storefront example: Debian's nodejs + npm,
# unless a node and an npm are already installed (e.g. a NodeSource nodejs,
# which bundles npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ "${RECD_FORCE_APT:-}" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
fi
