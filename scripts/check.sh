#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing (Debian 12), starts PostgreSQL and
# MariaDB on free loopback ports with data under the build tree, then builds and runs every test
# three ways sharing those servers:
#   1. GCC, -Wall -Wextra -Wpedantic -Werror (plus examples and benchmarks built)
#   2. Clang, AddressSanitizer + UndefinedBehaviorSanitizer, -Werror
#   3. Clang, ThreadSanitizer, -Werror
#   4. fuzz: every libFuzzer harness for KYSERA_FUZZ_SECONDS (default 60) each (scripts/fuzz.sh)
# and stops the servers on exit, success or not.
# Usage: scripts/check.sh [gcc|asan|tsan|fuzz ...]   (default: all four)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${KYSERA_CHECK_DIR:-"$root/build/check"}
jobs=${KYSERA_CHECK_JOBS:-$(nproc)}
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(gcc asan tsan fuzz)

bash "$root/scripts/install-deps.sh" full

export KYSERA_TEST_SERVER_DIR="$out/test-servers"
mkdir -p "$KYSERA_TEST_SERVER_DIR"
servers="$root/tests/support/servers.sh"
trap 'bash "$servers" stop all || true' EXIT
bash "$servers" start all

common=(-G Ninja -DKYSERA_INFRA_WERROR=ON -DKYSERA_INFRA_REQUIRE_ALL_BACKENDS=ON
  -DKYSERA_INFRA_BUILD_TESTS=ON -DKYSERA_INFRA_BUILD_EXAMPLES=ON
  "-DKYSERA_TEST_SERVER_DIR=$KYSERA_TEST_SERVER_DIR")
status=0
for v in "${variants[@]}"; do
  if [ "$v" = fuzz ]; then
    echo "=== [fuzz] build and run each harness for ${KYSERA_FUZZ_SECONDS:-60} s" >&2
    KYSERA_FUZZ_DIR="$out/fuzz" bash "$root/scripts/fuzz.sh" "${KYSERA_FUZZ_SECONDS:-60}" || {
      echo "=== [fuzz] FAILED" >&2
      status=1
    }
    continue
  fi
  case "$v" in
    gcc)  args=(-DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=Debug -DKYSERA_INFRA_BUILD_BENCHMARKS=ON) ;;
    asan) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DKYSERA_INFRA_SANITIZE=address,undefined") ;;
    tsan) args=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKYSERA_INFRA_SANITIZE=thread) ;;
    *) echo "check.sh: unknown variant '$v' (gcc, asan, tsan, fuzz)" >&2; exit 2 ;;
  esac
  echo "=== [$v] configure and build" >&2
  cmake -S "$root" -B "$out/$v" "${common[@]}" "${args[@]}" >/dev/null
  cmake --build "$out/$v" -j "$jobs"
  echo "=== [$v] test" >&2
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export LSAN_OPTIONS="suppressions=$root/tests/support/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$root/tests/support/tsan.supp"
  if ! (cd "$out/$v" && ctest -j "$jobs" --output-on-failure --timeout 900); then
    echo "=== [$v] FAILED" >&2
    status=1
  fi
done
exit $status
