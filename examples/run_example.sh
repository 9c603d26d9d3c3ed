#!/usr/bin/env bash
# Runs an example against a backend for ctest: run_example.sh <binary> <sqlite|postgres|mysql> <workdir> [args...]
# The servers' URLs come from the test servers' server.env. "{URL}" in args is replaced by the URL.
set -euo pipefail
bin=$1 backend=$2 work=$3; shift 3
mkdir -p "$work"
case "$backend" in
  sqlite) url="sqlite://$work/example-$(basename "$bin").db"; rm -f "$work/example-$(basename "$bin").db"
          # kysera-check never creates a database: give it an (empty, valid) one to probe.
          if [ "$(basename "$bin")" = kysera-check ]; then : > "$work/example-kysera-check.db"; fi ;;
  postgres) url=$(grep '^KYSERA_TEST_POSTGRES_URL=' "$KYSERA_TEST_SERVER_DIR/server.env" | cut -d= -f2-) ;;
  mysql) url=$(grep '^KYSERA_TEST_MYSQL_URL=' "$KYSERA_TEST_SERVER_DIR/server.env" | cut -d= -f2-) ;;
  none) url="" ;;
esac
args=()
for a in "$@"; do args+=("${a//\{URL\}/$url}"); done
cd "$work"
exec "$bin" "${args[@]}"
