#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing (Debian 12), starts PostgreSQL and
# MariaDB on free loopback ports with data under the build tree, then builds and runs every test
# three ways sharing those servers:
#   1. GCC, -Wall -Wextra -Wpedantic -Werror (plus examples and benchmarks built)
#   2. Clang, AddressSanitizer + UndefinedBehaviorSanitizer, -Werror
#   3. Clang, ThreadSanitizer, -Werror
# then two builds with only some backends (unit tests, package tests):
#   sqlite        GCC, SQLite only
#   mysql-sqlite  Clang, MySQL + SQLite
# then the driver matrix (scripts/driver-matrix.sh: libpqxx 7 and 8, Connector/C++ 8.3 headers)
# from the archives in $KYSERA_DRIVER_SOURCES (default: ../shared/vendor beside the clone), skipped
# with a message when that folder does not exist; then every libFuzzer harness for
# KYSERA_FUZZ_SECONDS (default 60) each (scripts/fuzz.sh); and stops the servers on exit,
# success or not.
# Usage: scripts/check.sh [gcc|asan|tsan|sqlite|mysql-sqlite|matrix|fuzz ...]   (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${KYSERA_CHECK_DIR:-"$root/build/check"}
jobs=${KYSERA_CHECK_JOBS:-$(nproc)}
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(gcc asan tsan sqlite mysql-sqlite matrix fuzz)
driver_sources=${KYSERA_DRIVER_SOURCES:-"$root/../shared/vendor"}

deps=full
for v in "${variants[@]}"; do
  if [ "$v" = matrix ] && [ -d "$driver_sources" ]; then deps=matrix; fi
done
bash "$root/scripts/install-deps.sh" "$deps"

export KYSERA_TEST_SERVER_DIR="$out/test-servers"
mkdir -p "$KYSERA_TEST_SERVER_DIR"
servers="$root/tests/support/servers.sh"
trap 'bash "$servers" stop all || true' EXIT
bash "$servers" start all

common=(-G Ninja -DKYSERA_INFRA_WERROR=ON -DKYSERA_INFRA_POSTGRES=ON -DKYSERA_INFRA_MYSQL=ON -DKYSERA_INFRA_SQLITE=ON
  -DKYSERA_INFRA_BUILD_TESTS=ON -DKYSERA_INFRA_BUILD_EXAMPLES=ON
  "-DKYSERA_TEST_SERVER_DIR=$KYSERA_TEST_SERVER_DIR")
status=0
summary=()
note() {  # variant, result: one line of the summary printed at the end
  summary+=("$(printf '%-13s %-8s %5ss' "$1" "$2" "$((SECONDS - start))")")
}
# A build with only some backends: no examples, no integration or soak tests.
# Compile time is most of CI (the tests are template-heavy): only the GCC build keeps full debug
# information; the others keep line tables (-g1), which is all a sanitizer report or a failed
# assertion needs. ASan + UBSan run at -O0 (a third of the -O2 compile time here, and -O0 hides
# nothing from either), TSan at -O1 (at -O0 it slows the stress tests too much).
lines=-DCMAKE_CXX_FLAGS_DEBUG=-g1
subset=(-DKYSERA_INFRA_BUILD_EXAMPLES=OFF -DKYSERA_INFRA_BUILD_INTEGRATION_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug "$lines")
for v in "${variants[@]}"; do
  start=$SECONDS
  case "$v" in
    gcc)  args=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug -DKYSERA_INFRA_BUILD_BENCHMARKS=ON) ;;
    asan) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug "$lines" "-DKYSERA_INFRA_SANITIZE=address,undefined") ;;
    tsan) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DKYSERA_INFRA_SANITIZE=thread) ;;
    sqlite) args=(-DCMAKE_CXX_COMPILER=g++ "${subset[@]}" -DKYSERA_INFRA_POSTGRES=OFF -DKYSERA_INFRA_MYSQL=OFF) ;;
    mysql-sqlite) args=(-DCMAKE_CXX_COMPILER=clang++ "${subset[@]}" -DKYSERA_INFRA_POSTGRES=OFF) ;;
    matrix)
      if [ ! -d "$driver_sources" ]; then
        echo "=== [matrix] skipped: no driver archives in $driver_sources (set KYSERA_DRIVER_SOURCES)" >&2
        note matrix skipped
        continue
      fi
      echo "=== [matrix] driver matrix from $driver_sources" >&2
      if KYSERA_MATRIX_DIR="$out/matrix" KYSERA_CHECK_JOBS="$jobs" bash "$root/scripts/driver-matrix.sh" "$driver_sources"; then
        note matrix passed
      else
        echo "=== [matrix] FAILED" >&2
        note matrix FAILED
        status=1
      fi
      echo "=== [matrix] done in $((SECONDS - start))s" >&2
      continue ;;
    fuzz)
      echo "=== [fuzz] build and run each harness for ${KYSERA_FUZZ_SECONDS:-60} s" >&2
      if KYSERA_FUZZ_DIR="$out/fuzz" bash "$root/scripts/fuzz.sh" "${KYSERA_FUZZ_SECONDS:-60}"; then
        note fuzz passed
      else
        echo "=== [fuzz] FAILED" >&2
        note fuzz FAILED
        status=1
      fi
      echo "=== [fuzz] done in $((SECONDS - start))s" >&2
      continue ;;
    *) echo "check.sh: unknown variant '$v' (gcc, asan, tsan, sqlite, mysql-sqlite, matrix, fuzz)" >&2; exit 2 ;;
  esac
  echo "=== [$v] configure and build" >&2
  cmake -S "$root" -B "$out/$v" "${common[@]}" "${args[@]}" >/dev/null
  cmake --build "$out/$v" -j "$jobs"
  echo "=== [$v] built in $((SECONDS - start))s" >&2
  echo "=== [$v] test" >&2
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export LSAN_OPTIONS="suppressions=$root/tests/support/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/support/tsan.supp"
  if (cd "$out/$v" && ctest -j "$jobs" --output-on-failure --timeout 900); then
    note "$v" passed
  else
    echo "=== [$v] FAILED" >&2
    note "$v" FAILED
    status=1
  fi
  echo "=== [$v] done in $((SECONDS - start))s" >&2
done
echo "=== summary (wall time per step; $SECONDS s in all, set-up included)" >&2
for line in "${summary[@]}"; do echo "    $line" >&2; done
exit $status
