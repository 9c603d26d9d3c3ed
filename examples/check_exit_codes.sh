#!/usr/bin/env bash
# Checks kysera-check's exit statuses: check_exit_codes.sh <kysera-check> <unhealthy|usage|missing-sqlite>
set -u
bin=$1
case "$2" in
  unhealthy)
    # Nothing listens on port 1: unhealthy (2), and the password never reaches the output.
    "$bin" postgres://u:Secret-xyz@127.0.0.1:1/db --timeout 1s > out.txt 2>&1
    rc=$?
    cat out.txt
    [ $rc -eq 2 ] || { echo "expected status 2, got $rc"; exit 1; }
    grep -q unhealthy out.txt || { echo "no 'unhealthy' in the report"; exit 1; }
    if grep -q Secret-xyz out.txt; then echo "password leaked"; exit 1; fi
    echo "ok-2" ;;
  usage)
    "$bin" --timeout soon x 2> err.txt; rc=$?
    [ $rc -eq 64 ] || { echo "bad --timeout: expected 64, got $rc"; exit 1; }
    grep -q "bad --timeout" err.txt || { echo "no message for bad --timeout"; exit 1; }
    "$bin" 2> err.txt; rc=$?
    [ $rc -eq 64 ] || { echo "missing URL: expected 64, got $rc"; exit 1; }
    grep -q "missing URL" err.txt || { echo "no message for a missing URL"; exit 1; }
    "$bin" --frobnicate x 2> err.txt; rc=$?
    [ $rc -eq 64 ] || { echo "unknown option: expected 64, got $rc"; exit 1; }
    "$bin" a://x b://y 2> err.txt; rc=$?
    [ $rc -eq 64 ] || { echo "two URLs: expected 64, got $rc"; exit 1; }
    "$bin" "sqlite://$PWD/x.db?mode=rwc" 2> err.txt; rc=$?
    [ $rc -eq 64 ] || { echo "mode=rwc: expected 64, got $rc"; exit 1; }
    [ ! -e x.db ] || { echo "mode=rwc created x.db"; exit 1; }
    echo "ok-64" ;;
  missing-sqlite)
    # A typo in a SQLite path: unhealthy (2), a message that says so, and no file left behind.
    rm -f "$PWD/no-such-typo.db"
    "$bin" "sqlite://$PWD/no-such-typo.db" > out.txt 2>&1; rc=$?
    cat out.txt
    [ $rc -eq 2 ] || { echo "expected status 2, got $rc"; exit 1; }
    grep -q "does not exist" out.txt || { echo "no 'does not exist' in the report"; exit 1; }
    [ ! -e "$PWD/no-such-typo.db" ] || { echo "the probe created the database file"; exit 1; }
    "$bin" "sqlite://$PWD/no-such-typo.db" --json > out.json 2>&1; rc=$?
    [ $rc -eq 2 ] || { echo "--json: expected status 2, got $rc"; exit 1; }
    [ ! -e "$PWD/no-such-typo.db" ] || { echo "the --json probe created the database file"; exit 1; }
    if command -v python3 > /dev/null; then
      python3 -c 'import json,sys; r=json.load(open("out.json")); assert r["status"]=="fail" and "does not exist" in r["output"], r' ||
        { echo "--json output is not the expected JSON"; cat out.json; exit 1; }
    fi
    # A file that exists is probed as usual (and left as it was).
    printf '' > "$PWD/empty.db"
    "$bin" "sqlite://$PWD/empty.db" > out.txt 2>&1; rc=$?
    [ $rc -le 1 ] || { cat out.txt; echo "existing file: expected healthy or degraded, got $rc"; exit 1; }
    echo "ok-missing" ;;
esac
