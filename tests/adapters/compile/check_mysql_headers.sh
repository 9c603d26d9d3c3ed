#!/usr/bin/env bash
# Compiles (-fsyntax-only) every translation unit of the project that includes the MySQL adapter
# against a given set of Connector/C++ 8.x JDBC headers, with the build's own flags and -Werror,
# under GCC and Clang; proves that the adapter's 8.x branch was the one compiled; and proves that
# the headers' "ignore -Wdeprecated-declarations" pragma does not leak into user code.
#   check_mysql_headers.sh <source-dir> <connector-include-dir> <work-dir>
# <connector-include-dir> holds mysql/jdbc.h and jdbc/ (an 8.x install's or archive's include/).
# Used by scripts/driver-matrix.sh (step mysql8). No library is linked: only headers are checked.
set -euo pipefail
src=$1 headers=$2 work=$3
here="$src/tests/adapters/compile"
[ -f "$headers/mysql/jdbc.h" ] && [ -f "$headers/jdbc/mysql_driver.h" ] \
  || { echo "check_mysql_headers: $headers has no mysql/jdbc.h and jdbc/mysql_driver.h" >&2; exit 1; }
grep -Eq '^#define[[:space:]]+MYCPPCONN_DM_MAJOR_VERSION[[:space:]]+([89]|[1-9][0-9])' "$headers/jdbc/cppconn/version_info.h" \
  || { echo "check_mysql_headers: $headers is not Connector/C++ 8.x or later" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work/stub-lib"
: >"$work/stub-lib/libmysqlcppconn.so"  # configure needs a library path; nothing is linked

# 1. Configure the project the way a user with only these headers would: the find_path fallback
#    finds include/jdbc/ (vcpkg and archive layout). Every test, example and benchmark is in.
#    KYSERA_INFRA_EXPECT_MYSQL_JDBC_VERSION=8 makes the adapter #error unless it compiled its 8.x
#    branch.
bench=OFF
if [ -f /usr/include/benchmark/benchmark.h ] || [ -f /usr/local/include/benchmark/benchmark.h ]; then bench=ON; fi
cmake -S "$src" -B "$work/build" -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DKYSERA_INFRA_WERROR=ON -DKYSERA_INFRA_POSTGRES=ON -DKYSERA_INFRA_MYSQL=ON -DKYSERA_INFRA_SQLITE=ON -DKYSERA_INFRA_BUILD_TESTS=ON \
  -DKYSERA_INFRA_BUILD_EXAMPLES=ON -DKYSERA_INFRA_BUILD_BENCHMARKS=$bench \
  "-DKYSERA_INFRA_MYSQLCPPCONN_INCLUDE_DIR=$headers/jdbc" \
  "-DKYSERA_INFRA_MYSQLCPPCONN_LIBRARY=$work/stub-lib/libmysqlcppconn.so" \
  -DCMAKE_CXX_FLAGS=-DKYSERA_INFRA_EXPECT_MYSQL_JDBC_VERSION=8 >"$work/configure.log" 2>&1 \
  || { cat "$work/configure.log" >&2; exit 1; }
grep -q "mysql adapter enabled" "$work/configure.log" || { cat "$work/configure.log" >&2; exit 1; }

# 2. Every translation unit whose includes reach the adapter's driver header, compiled under GCC
#    and Clang with exactly the build's flags (plus -fsyntax-only).
python3 - "$work/build/compile_commands.json" "$work" <<'PY'
import json, os, shlex, subprocess, sys
db, work = sys.argv[1], sys.argv[2]
entries = json.load(open(db))
def argv(e):
    a = shlex.split(e["command"])
    out, skip = [], False
    for x in a:
        if skip: skip = False; continue
        if x == "-o": skip = True; continue
        out.append(x)
    return out
selected = []
for e in entries:
    a = argv(e)
    deps = subprocess.run(a + ["-M"], cwd=e["directory"], capture_output=True, text=True)
    if deps.returncode != 0:
        sys.stderr.write(deps.stderr); sys.exit("check_mysql_headers: cannot preprocess " + e["file"])
    if "adapters/mysql/driver.hpp" in deps.stdout:
        selected.append((e, a))
if len(selected) < 10:
    sys.exit("check_mysql_headers: only %d translation units include the MySQL adapter; expected the tests, examples and benchmarks" % len(selected))
failed = 0
for compiler in ("g++", "clang++"):
    for e, a in selected:
        cmd = [compiler] + a[1:] + ["-fsyntax-only"]
        r = subprocess.run(cmd, cwd=e["directory"], capture_output=True, text=True)
        name = os.path.relpath(e["file"], os.path.dirname(os.path.dirname(db)))
        if r.returncode != 0:
            failed += 1
            print("FAIL %s %s\n%s" % (compiler, e["file"], r.stderr), file=sys.stderr)
    print("check_mysql_headers: %s: %d translation units with the MySQL adapter compiled against the 8.x headers"
          % (compiler, len(selected)), file=sys.stderr)
with open(os.path.join(work, "translation-units.txt"), "w") as f:
    for e, _ in selected: f.write(e["file"] + "\n")
sys.exit(1 if failed else 0)
PY

# 3. The branch check can fail: the same adapter against Debian's Connector/C++ 1.1 with the
#    8.x expectation must stop with the adapter's #error (skipped where 1.1 is not installed).
flags=(-std=c++20 -fsyntax-only -Wall -Wextra -Wpedantic -Werror -I "$src/include")
if [ -f /usr/include/mysql_driver.h ] && [ -f /usr/include/boost/scoped_ptr.hpp ]; then
  if g++ "${flags[@]}" -DKYSERA_INFRA_EXPECT_MYSQL_JDBC_VERSION=8 "$here/deprecated_probe.cpp" \
      >"$work/negative.log" 2>&1; then
    echo "check_mysql_headers: the 8.x expectation passed against Connector/C++ 1.1: the branch check is broken" >&2
    exit 1
  fi
  grep -q "another Connector/C++ generation" "$work/negative.log" || { cat "$work/negative.log" >&2; exit 1; }
  echo "check_mysql_headers: against 1.1 the 8.x expectation fails as it must" >&2
fi

# 4. -Wdeprecated-declarations survives the adapter (GCC and Clang): the probe's deprecated call
#    must be reported; and, as the control, it is silenced when the driver header is included
#    without the adapter (so the probe does test the driver's pragma).
for compiler in g++ clang++; do
  if "$compiler" "${flags[@]}" -isystem "$headers" -DKYSERA_INFRA_EXPECT_MYSQL_JDBC_VERSION=8 \
      "$here/deprecated_probe.cpp" >"$work/deprecated-$compiler.log" 2>&1; then
    echo "check_mysql_headers: $compiler: no deprecation warning after the adapter: the driver's pragma leaked" >&2
    exit 1
  fi
  grep -q "kysera-deprecation-probe" "$work/deprecated-$compiler.log" \
    || { cat "$work/deprecated-$compiler.log" >&2; exit 1; }
  "$compiler" "${flags[@]}" -isystem "$headers" -DKYSERA_PROBE_DRIVER_ONLY "$here/deprecated_probe.cpp" \
    >"$work/control-$compiler.log" 2>&1 \
    || { echo "check_mysql_headers: $compiler: the driver header alone did not silence the probe (control)" >&2;
         cat "$work/control-$compiler.log" >&2; exit 1; }
  echo "check_mysql_headers: $compiler: deprecation warnings reach user code after the adapter" >&2
done
