#!/usr/bin/env bash
# Builds and runs the complete example on SQLite: no server needed. Ctrl-C shuts it down
# gracefully. Usage: scripts/demo.sh [build-dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-"$root/build/demo"}
bash "$root/scripts/install-deps.sh" demo
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DKYSERA_INFRA_POSTGRES=OFF -DKYSERA_INFRA_MYSQL=OFF \
  -DKYSERA_INFRA_BUILD_TESTS=OFF -DKYSERA_INFRA_BUILD_EXAMPLES=ON -DKYSERA_INFRA_INSTALL=OFF >/dev/null
cmake --build "$build" --target complete
cd "$build"
exec ./examples/complete "sqlite://$build/demo.db"
