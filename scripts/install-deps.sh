#!/usr/bin/env bash
# Installs the Debian 12 packages a profile needs, skipping those already present.
#   scripts/install-deps.sh demo   compiler, CMake and SQLite: enough for the demo
#   scripts/install-deps.sh full   everything the test suite, sanitizers and benchmarks use
#   scripts/install-deps.sh matrix full, plus what scripts/driver-matrix.sh needs to build libpqxx
#                                  7 (GCC 12) and 8 (clang-16 with libc++-16, for <format>)
set -euo pipefail
profile=${1:-full}
demo_pkgs=(g++ cmake ninja-build pkg-config libsqlite3-dev)
full_pkgs=("${demo_pkgs[@]}" clang libclang-rt-14-dev catch2 libpqxx-dev libmysqlcppconn-dev
  libboost-dev postgresql mariadb-server mariadb-client libbenchmark-dev libsoci-dev libpoco-dev
  libspdlog-dev libcpp-httplib-dev prometheus curl python3 procps util-linux openssl)
matrix_pkgs=("${full_pkgs[@]}" g++-12 clang-16 libc++-16-dev libc++abi-16-dev libpq-dev python3)
case "$profile" in
  demo) pkgs=("${demo_pkgs[@]}") ;;
  full) pkgs=("${full_pkgs[@]}") ;;
  matrix) pkgs=("${matrix_pkgs[@]}") ;;
  *) echo "usage: $0 demo|full|matrix" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start the system-wide servers: the tests run their own on free ports.
policy_created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  policy_created=1
fi
trap 'if [ $policy_created = 1 ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi' EXIT
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
