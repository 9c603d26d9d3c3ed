#!/usr/bin/env bash
# The driver matrix: builds and tests the project against the newer drivers that Debian 12 does
# not ship, from the archives in SOURCES_DIR (see docs/drivers.md):
#   pqxx7   libpqxx 7.10.7 built with GCC 12; the project (PostgreSQL + SQLite, -Werror) built
#           against it and its tests run
#   pqxx8   libpqxx 8.0.1 built with clang-16 + libc++-16 (8.x needs <format>); the same again
#           with that toolchain (Debian's Connector/C++ uses libstdc++, so no MySQL here)
#   mysql8  every translation unit that includes the MySQL adapter compiled (-fsyntax-only,
#           -Werror) against the Connector/C++ 8.3 JDBC headers, with a check that the adapter's
#           8.x branch is the one compiled; plus the check that the adapter keeps the headers'
#           "ignore -Wdeprecated-declarations" pragma from leaking into user code
# The libpqxx installs are cached under the output folder (keyed by archive checksum and
# toolchain), so a second run only rebuilds the project.
#
# Usage: scripts/driver-matrix.sh SOURCES_DIR [pqxx7|pqxx8|mysql8 ...]   (default: all three)
# Environment: KYSERA_MATRIX_DIR (output, default build/matrix), KYSERA_CHECK_JOBS (default
# nproc), KYSERA_TEST_SERVER_DIR (servers already running there are used, else started here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 SOURCES_DIR [pqxx7|pqxx8|mysql8 ...]" >&2; exit 2; }
sources=$(cd "$1" && pwd)
shift
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(pqxx7 pqxx8 mysql8)
out=${KYSERA_MATRIX_DIR:-"$root/build/matrix"}
jobs=${KYSERA_CHECK_JOBS:-$(nproc)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

bash "$root/scripts/install-deps.sh" matrix

log() { echo "=== [matrix] $*" >&2; }
stamp() { date +%s; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

archive() {  # name -> path of the archive, or fail
  local f="$sources/$1"
  [ -f "$f" ] || { echo "driver-matrix: $f not found" >&2; return 1; }
  echo "$f"
}

# Builds libpqxx from an archive into $out/drivers/<name> unless an install made from the same
# archive with the same toolchain is already there. Arguments: archive file, install name, then
# CMake arguments naming the toolchain.
pqxx_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DSKIP_BUILD_TEST=ON -DSKIP_BUILD_EXAMPLES=ON
  -DBUILD_SHARED_LIBS=ON -DCMAKE_CXX_STANDARD=20 -DCMAKE_INSTALL_LIBDIR=lib)
build_libpqxx() {
  local tarball=$1 name=$2; shift 2
  local prefix="$out/drivers/$name" key
  key="$(sha256sum "$tarball" | cut -d' ' -f1) ${pqxx_args[*]} $*"
  if [ -f "$prefix/.kysera-build-key" ] && [ "$(cat "$prefix/.kysera-build-key")" = "$key" ]; then
    log "$name: cached install in $prefix"
    return 0
  fi
  local t0 work="$out/drivers/work-$name"
  t0=$(stamp)
  log "$name: building from $(basename "$tarball") (cached afterwards)"
  rm -rf "$work" "$prefix"
  mkdir -p "$work/src"
  tar -xzf "$tarball" -C "$work/src" --strip-components=1 || return 1
  cmake -S "$work/src" -B "$work/build" "${pqxx_args[@]}" "-DCMAKE_INSTALL_PREFIX=$prefix" "$@" \
    >"$work/configure.log" 2>&1 \
    || { cat "$work/configure.log" >&2; return 1; }
  cmake --build "$work/build" -j "$jobs" >"$work/build.log" 2>&1 || { tail -n 60 "$work/build.log" >&2; return 1; }
  cmake --install "$work/build" >/dev/null || return 1
  echo "$key" >"$prefix/.kysera-build-key"
  rm -rf "$work"
  log "$name: built and installed in $(elapsed "$t0")"
}

# The tests' ctest fixture starts the servers unless they already run in this folder (check.sh
# starts them before the matrix, so the matrix shares them).
export KYSERA_TEST_SERVER_DIR=${KYSERA_TEST_SERVER_DIR:-"$out/test-servers"}

# Builds the project (PostgreSQL + SQLite, -Werror, tests only) against one libpqxx install and
# runs its tests. Arguments: build name, libpqxx install prefix, then CMake toolchain arguments.
build_and_test() {
  local name=$1 prefix=$2; shift 2
  local dir="$out/$name" t0
  t0=$(stamp)
  log "$name: configure and build the project against $(basename "$prefix")"
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DKYSERA_INFRA_WERROR=ON \
    -DKYSERA_INFRA_POSTGRES=ON -DKYSERA_INFRA_SQLITE=ON -DKYSERA_INFRA_MYSQL=OFF \
    -DKYSERA_INFRA_BUILD_TESTS=ON \
    -DKYSERA_INFRA_BUILD_EXAMPLES=OFF -DKYSERA_INFRA_INSTALL=OFF \
    "-DCMAKE_PREFIX_PATH=$prefix" "-DCMAKE_BUILD_RPATH=$prefix/lib" \
    "-DKYSERA_TEST_SERVER_DIR=$KYSERA_TEST_SERVER_DIR" "$@" >"$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log" >&2; return 1; }
  # The project must have found this libpqxx, not Debian's 6.4.
  grep -q "^libpqxx_DIR:PATH=$prefix/" "$dir/CMakeCache.txt" \
    || { echo "driver-matrix: $name did not pick up the libpqxx in $prefix" >&2; return 1; }
  cmake --build "$dir" -j "$jobs" || return 1
  log "$name: built in $(elapsed "$t0")"
  t0=$(stamp)
  log "$name: test"
  (cd "$dir" && ctest -j "$jobs" --output-on-failure --timeout 900) || return 1
  log "$name: tests passed in $(elapsed "$t0")"
}

step_pqxx7() {
  local tarball
  tarball=$(archive libpqxx-7.10.7.tar.gz) || return 1
  build_libpqxx "$tarball" libpqxx-7.10.7-gcc12 -DCMAKE_CXX_COMPILER=g++-12 || return 1
  build_and_test pqxx7-gcc12 "$out/drivers/libpqxx-7.10.7-gcc12" -DCMAKE_CXX_COMPILER=g++-12
}

# Everything linked must use libc++ here: Debian's spdlog (libstdc++) cannot be, so the spdlog
# component is off in this build.
libcxx=(-DCMAKE_CXX_COMPILER=clang++-16 "-DCMAKE_CXX_FLAGS=-stdlib=libc++ -fexperimental-library"
  -DCMAKE_EXE_LINKER_FLAGS=-stdlib=libc++ -DCMAKE_SHARED_LINKER_FLAGS=-stdlib=libc++
  -DKYSERA_INFRA_WITH_SPDLOG=OFF -DKYSERA_INFRA_WITH_HTTP=OFF)
step_pqxx8() {
  local tarball
  tarball=$(archive libpqxx-8.0.1.tar.gz) || return 1
  build_libpqxx "$tarball" libpqxx-8.0.1-clang16-libcxx "${libcxx[@]}" || return 1
  build_and_test pqxx8-clang16-libcxx "$out/drivers/libpqxx-8.0.1-clang16-libcxx" "${libcxx[@]}"
}

step_mysql8() {
  local tarball headers="$out/drivers/mysql-connector-cpp-8.3.0-jdbc-headers"
  tarball=$(archive mysql-connector-cpp-8.3.0-jdbc-headers.tar.gz) || return 1
  rm -rf "$headers"
  mkdir -p "$headers"
  tar -xzf "$tarball" -C "$headers" --strip-components=1 || return 1
  bash "$root/tests/adapters/compile/check_mysql_headers.sh" "$root" "$headers/include" "$out/mysql8"
}

status=0
for s in "${steps[@]}"; do
  case "$s" in
    pqxx7|pqxx8|mysql8) ;;
    *) echo "driver-matrix: unknown step '$s' (pqxx7, pqxx8, mysql8)" >&2; exit 2 ;;
  esac
  t0=$(stamp)
  if "step_$s"; then
    log "$s: passed ($(elapsed "$t0"))"
  else
    log "$s: FAILED ($(elapsed "$t0"))"
    status=1
  fi
done
exit $status
