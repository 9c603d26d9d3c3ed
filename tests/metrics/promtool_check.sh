#!/usr/bin/env bash
# promtool_check.sh SCRAPE_BINARY OUT_DIR: writes a scrape in both formats and checks each with
# `promtool check metrics` (Debian package prometheus). Exit 77 (ctest: skipped) without promtool.
set -euo pipefail
if ! command -v promtool >/dev/null; then
  echo "promtool not found (install the Debian package prometheus): skipped" >&2
  exit 77
fi
bin=$1 out=$2
mkdir -p "$out"
"$bin" "$out/scrape.txt" "$out/scrape.om"
status=0
for f in "$out/scrape.txt" "$out/scrape.om"; do
  echo "== promtool check metrics < $f"
  if ! promtool check metrics <"$f"; then status=1; fi
done
exit $status
