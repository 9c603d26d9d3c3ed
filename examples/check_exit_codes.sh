#!/usr/bin/env bash
# Checks kysera-check's exit statuses: check_exit_codes.sh <kysera-check> <unhealthy|usage>
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
    echo "ok-64" ;;
esac
