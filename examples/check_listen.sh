#!/usr/bin/env bash
# complete --listen: curl sees /livez 200, /readyz 200 once a check passed, the health JSON and
# the pool gauge on /metrics. check_listen.sh <complete> <sqlite-url>
set -u
bin=$1 url=$2
"$bin" "$url" --seconds 4 --listen 127.0.0.1:0 > out.txt 2>&1 &
pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)$|\1|p' out.txt)
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat out.txt; echo "no 'listening on' line"; kill $pid; exit 1; }
code() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$1"; }
[ "$(code /livez)" = 200 ] || { echo "/livez not 200"; exit 1; }
ok=0
for _ in $(seq 1 100); do [ "$(code /readyz)" = 200 ] && { ok=1; break; }; sleep 0.05; done
[ $ok = 1 ] || { echo "/readyz never 200"; exit 1; }
curl -s "http://127.0.0.1:$port/healthz" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["status"] in ("pass","warn"), r' ||
  { echo "/healthz is not the expected JSON"; exit 1; }
curl -s "http://127.0.0.1:$port/metrics" | grep -q '^db_client_connection_count{.*db_client_connection_state="idle".*} [0-9]' ||
  { echo "/metrics has no pool gauge"; exit 1; }
wait $pid || { cat out.txt; echo "complete failed"; exit 1; }
grep -q "shutdown complete" out.txt || { cat out.txt; exit 1; }
echo "ok-listen"
