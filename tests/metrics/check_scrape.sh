#!/usr/bin/env bash
# check_scrape.sh CHECKER SCRAPE_BINARY OUT_DIR
#   CHECKER = python: tests/metrics/check_exposition.py on the text format and on OpenMetrics;
#   CHECKER = promtool: `promtool check metrics` (Debian package prometheus) on the text format.
#     promtool reads the text format only, so OpenMetrics is left to the python check. Exit 77
#     (ctest: skipped) where promtool is not installed.
# One promtool lint finding is expected and accepted: OpenTelemetry's gauge
# `db.client.connection.count` becomes `db_client_connection_count`, and promtool's linter flags
# every non-histogram name ending in `_count`. We keep the OpenTelemetry name (dashboards built
# on the semantic conventions query it); any other finding, and any parse error, fails.
set -euo pipefail
checker=$1 bin=$2 out=$3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
"$bin" "$out/scrape.txt" "$out/scrape.om"
case "$checker" in
  python)
    python3 "$here/check_exposition.py" text "$out/scrape.txt"
    python3 "$here/check_exposition.py" openmetrics "$out/scrape.om"
    ;;
  promtool)
    if ! command -v promtool >/dev/null; then
      echo "promtool not found (Debian package prometheus): skipped" >&2
      exit 77
    fi
    rc=0
    promtool check metrics <"$out/scrape.txt" >"$out/promtool.out" 2>&1 || rc=$?
    cat "$out/promtool.out"
    [ "$rc" -eq 0 ] && exit 0
    # Exit 3 means lint findings only (1 would be a parse error): accept the known one alone.
    if [ "$rc" -ne 3 ]; then
      echo "promtool failed with exit $rc" >&2
      exit 1
    fi
    if grep -v -E '^db_client_connection_count:? non-histogram and non-summary metrics should not have "_count" suffix$' \
        "$out/promtool.out" | grep -q .; then
      echo "promtool reported findings other than the accepted one" >&2
      exit 1
    fi
    ;;
  *) echo "usage: $0 python|promtool SCRAPE_BINARY OUT_DIR" >&2; exit 2 ;;
esac
