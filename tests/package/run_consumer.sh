#!/usr/bin/env bash
# Package tests: install into a temporary prefix and build consumers against it.
#   run_consumer.sh <mode> <source-dir> <build-dir> <work-dir>
# modes: find_package, add_subdirectory, pkg_config, missing_component
# URLs checked: a fresh SQLite file, plus the test servers' URLs when server.env lists them.
set -euo pipefail
mode=$1 src=$2 build=$3 work=$4
prefix="$work/prefix"
rm -rf "$work/$mode"
mkdir -p "$work/$mode"
# Only components the build has (KYSERA_TEST_COMPONENTS, comma-separated; default all three).
built=",${KYSERA_TEST_COMPONENTS-postgres,mysql,sqlite},"
has() { case "$built" in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
components=""
urls=()
add() { components="${components:+$components;}$1"; urls+=("$2"); }
if has sqlite; then add sqlite "sqlite://$work/$mode/consumer.db"; fi
env_file="${KYSERA_TEST_SERVER_DIR:-$build/test-servers}/server.env"
if [ -f "$env_file" ]; then
  while IFS='=' read -r key value; do
    case "$key" in
      KYSERA_TEST_POSTGRES_URL) if has postgres; then add postgres "$value"; fi ;;
      KYSERA_TEST_MYSQL_URL) if has mysql; then add mysql "$value"; fi ;;
    esac
  done < "$env_file"
fi

install_prefix() {
  # A fresh install for every test (it takes a second), so a stale prefix can never pass.
  rm -rf "$prefix"
  cmake --install "$build" --prefix "$prefix" >/dev/null
}

case "$mode" in
  find_package)
    install_prefix
    cmake -S "$src/tests/package/consumer" -B "$work/$mode" -G Ninja -DMODE=find_package \
      "-DKYSERA_COMPONENTS=$components" "-DCMAKE_PREFIX_PATH=$prefix" -DCMAKE_CXX_COMPILER="${CXX:-c++}" \
      "-DKYSERA_WITH_HTTP=${KYSERA_TEST_HTTP:-OFF}" >/dev/null
    cmake --build "$work/$mode" >/dev/null
    "$work/$mode/consumer" "${urls[@]}"
    if [ "${KYSERA_TEST_HTTP:-OFF}" = ON ]; then "$work/$mode/consumer-http"; fi ;;
  add_subdirectory)
    cmake -S "$src/tests/package/consumer" -B "$work/$mode" -G Ninja -DMODE=add_subdirectory \
      "-DKYSERA_COMPONENTS=$components" "-DKYSERA_SOURCE_DIR=$src" -DCMAKE_CXX_COMPILER="${CXX:-c++}" \
      "-DKYSERA_WITH_HTTP=${KYSERA_TEST_HTTP:-OFF}" >/dev/null
    cmake --build "$work/$mode" >/dev/null
    "$work/$mode/consumer" "${urls[@]}"
    if [ "${KYSERA_TEST_HTTP:-OFF}" = ON ]; then "$work/$mode/consumer-http"; fi ;;
  pkg_config)
    install_prefix
    export PKG_CONFIG_PATH="$prefix/share/pkgconfig"
    flags=$(pkg-config --cflags kysera-infra)
    libs=$(pkg-config --libs kysera-infra)
    # pkg-config users define the adapter macros and link the drivers themselves.
    ${CXX:-c++} $flags -DKYSERA_INFRA_HAS_SQLITE=1 "$src/tests/package/consumer/main.cpp" \
      -o "$work/$mode/consumer" $libs -lsqlite3
    "$work/$mode/consumer" "sqlite://$work/$mode/consumer.db" ;;
  missing_component)
    install_prefix
    if cmake -S "$src/tests/package/consumer/missing" -B "$work/$mode" "-DCMAKE_PREFIX_PATH=$prefix" \
        >"$work/$mode/out.txt" 2>&1; then
      echo "configuration succeeded although a required component is missing" >&2; exit 1
    fi
    grep -q "oracle" "$work/$mode/out.txt" || { cat "$work/$mode/out.txt" >&2; exit 1; }
    echo "missing component rejected:"; grep -m1 "oracle" "$work/$mode/out.txt" ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
