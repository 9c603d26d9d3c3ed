#!/usr/bin/env bash
# Starts, stops, pauses and restarts the PostgreSQL and MariaDB servers the tests use: loopback
# only, free ports, data under $KYSERA_TEST_SERVER_DIR (the build tree by default).
#
#   servers.sh start|stop [postgres|mysql|all]    start or stop (start is a no-op when running)
#   servers.sh fixture-up | fixture-down           for ctest fixtures: down only stops what up started
#   servers.sh pause|resume|restart|kill <postgres|mysql>
#   servers.sh status | env
#
# State lives in $KYSERA_TEST_SERVER_DIR: <name>.port, <name>.pid, server.env (URLs for tests).
# MariaDB also listens on a unix socket (KYSERA_TEST_MYSQL_SOCKET) and offers TLS with a
# certificate from a CA made here (KYSERA_TEST_MYSQL_TLS_DIR: ca.pem, server-*.pem, client-*.pem
# signed by that CA, and other-ca.pem, a second CA that signed nothing the server uses).
set -euo pipefail

# The servers this script starts outlive it: they must not inherit the caller's descriptors (a
# test's capture pipe, ctest's output pipe), or whoever reads those pipes waits for the servers.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  # (255 is where bash reads this script from.)
  if [ "$fd" -gt 2 ] 2>/dev/null && [ "$fd" != 255 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
done

dir=${KYSERA_TEST_SERVER_DIR:?set KYSERA_TEST_SERVER_DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
PG_PASSWORD='pg-Secret-7d2f'
MY_PASSWORD='my-Secret-91ac'

log() { echo "servers.sh: $*" >&2; }

find_bin() {  # name, extra search dirs...
  local name=$1; shift
  command -v "$name" 2>/dev/null && return 0
  local d
  for d in "$@"; do [ -x "$d/$name" ] && { echo "$d/$name"; return 0; }; done
  return 1
}
pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }; done
  dirname "$(command -v pg_ctl)"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Ports below the kernel's ephemeral range: a client that keeps reconnecting to a stopped server
# can otherwise be handed the server's own port as its source port (a TCP self-connect), and the
# restarted server then fails to bind it.
free_port() {
  local low=32768 p
  if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then read -r low _ < /proc/sys/net/ipv4/ip_local_port_range; fi
  [ "$low" -gt 12000 ] || low=12000
  for _ in $(seq 1 200); do
    p=$(( (RANDOM * 32768 + RANDOM) % (low - 10000) + 10000 ))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  log "no free port found"; return 1
}

# Postgres refuses to run as root: run its tools as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_data() { cat "$dir/postgres.datadir"; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

write_env() {
  # Written to a temporary file and renamed, so a reader never sees a half-written file.
  {
    [ -f "$dir/postgres.port" ] && echo "KYSERA_TEST_POSTGRES_URL=postgres://postgres:${PG_PASSWORD}@127.0.0.1:$(cat "$dir/postgres.port")/postgres"
    [ -f "$dir/mysql.port" ] && echo "KYSERA_TEST_MYSQL_URL=mysql://kysera:${MY_PASSWORD}@127.0.0.1:$(cat "$dir/mysql.port")/kysera_test"
    [ -f "$dir/mysql.socket" ] && echo "KYSERA_TEST_MYSQL_SOCKET=$(cat "$dir/mysql.socket")"
    [ -f "$dir/mysql-tls/ca.pem" ] && echo "KYSERA_TEST_MYSQL_TLS_DIR=$dir/mysql-tls"
    true
  } > "$dir/server.env.tmp.$$"
  mv -f "$dir/server.env.tmp.$$" "$dir/server.env"
}

pg_running() { [ -f "$dir/postgres.datadir" ] && as_pg "$(pg_bindir)/pg_ctl" -D "$(pg_data)" status >/dev/null 2>&1; }

pg_start() {
  local bin port data
  bin=$(pg_bindir)
  if [ ! -f "$dir/postgres.datadir" ]; then
    # The data directory must be reachable by the postgres user; the build tree may not be.
    data="$dir/pgdata"
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$data"
      if ! runuser -u postgres -- test -w "$data"; then
        rmdir "$data"
        data=$(mktemp -d /tmp/kysera-pgdata.XXXXXX)
        chown postgres "$data"
      fi
    fi
    echo "$data" > "$dir/postgres.datadir"
    local pw; pw=$(mktemp); echo "$PG_PASSWORD" > "$pw"; chmod 644 "$pw"
    as_pg "$bin/initdb" -D "$data" -U postgres --pwfile="$pw" --auth-host=scram-sha-256 \
      --auth-local=trust -E UTF8 --no-sync >"$dir/postgres.initdb.log" 2>&1 \
      || { rm -f "$pw"; cat "$dir/postgres.initdb.log" >&2; return 1; }
    rm -f "$pw"
  fi
  data=$(pg_data)
  [ -f "$dir/postgres.port" ] || free_port > "$dir/postgres.port"
  port=$(cat "$dir/postgres.port")
  if port_in_use "$port"; then port=$(free_port); echo "$port" > "$dir/postgres.port"; fi
  as_pg "$bin/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { cat "$data/server.log" >&2; return 1; }
  head -1 "$data/postmaster.pid" > "$dir/postgres.pid"
  write_env
  log "postgres on 127.0.0.1:$port"
}

pg_stop() {
  [ -f "$dir/postgres.datadir" ] || return 0
  pg_resume 2>/dev/null || true
  as_pg "$(pg_bindir)/pg_ctl" -D "$(pg_data)" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}

# A paused server: the postmaster and every backend stop (SIGSTOP), so connections hang.
pg_pids() { local p; p=$(cat "$dir/postgres.pid"); echo "$p"; pgrep -P "$p" || true; }
# SIGSTOP is asynchronous: kill returns before every thread of the target has stopped, and a
# thread still running can answer one more query. Wait (up to 5 s) until every thread of every
# given process is in the stopped state.
wait_stopped() {
  local i pid t state all
  for i in $(seq 1 500); do
    all=1
    for pid in "$@"; do
      for t in /proc/"$pid"/task/*/stat; do
        [ -r "$t" ] || continue
        state=$(sed 's/^.*) //' "$t" 2>/dev/null | cut -d' ' -f1)
        # Z/X: a backend that exited just before the pause stays a zombie (its stopped parent
        # cannot reap it); it serves nothing, so it counts as stopped.
        case "$state" in T|t|Z|X|"") ;; *) all=0 ;; esac
      done
    done
    [ "$all" = 1 ] && return 0
    sleep 0.01
  done
  log "processes $* did not stop"; return 1
}

# The postmaster stops first: a backend forked between listing the children and stopping them
# would otherwise keep serving its connection through the whole pause.
pg_pause() {
  local p; p=$(cat "$dir/postgres.pid")
  kill -STOP "$p"
  local children; children=$(pgrep -P "$p" || true)
  [ -z "$children" ] || kill -STOP $children
  wait_stopped "$p" $children
}
pg_resume() { [ -f "$dir/postgres.pid" ] && kill -CONT $(pg_pids) 2>/dev/null || true; }

my_bin() { find_bin mariadbd /usr/sbin /usr/libexec || find_bin mysqld /usr/sbin; }
my_client() { find_bin mariadb /usr/bin || find_bin mysql /usr/bin; }
my_running() { [ -f "$dir/mysql.pid" ] && pid_alive "$(cat "$dir/mysql.pid")"; }

# A throw-away CA, a server certificate it signed for localhost / 127.0.0.1 / ::1, a client
# certificate it signed, and a second CA that signed nothing (for verification failures).
my_tls() {
  local tls="$dir/mysql-tls"
  [ -f "$tls/other-ca.pem" ] && return 0
  command -v openssl >/dev/null || { log "openssl is needed for the MariaDB TLS certificates"; return 1; }
  rm -rf "$tls.tmp" && mkdir -p "$tls.tmp"
  (
    cd "$tls.tmp"
    local subj=/O=kysera-infra-tests
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "$subj/CN=kysera test CA" \
      -keyout ca-key.pem -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "$subj/CN=localhost" -keyout server-key.pem -out server.csr
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n' > server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -extfile server.ext -out server-cert.pem
    openssl req -newkey rsa:2048 -nodes -subj "$subj/CN=kysera test client" -keyout client-key.pem -out client.csr
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -out client-cert.pem
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "$subj/CN=kysera other CA" \
      -keyout other-ca-key.pem -out other-ca.pem
    rm -f ./*.csr ./*.ext ./*.srl
  ) >"$dir/mysql.tls.log" 2>&1 || { cat "$dir/mysql.tls.log" >&2; return 1; }
  chmod 600 "$tls.tmp"/*-key.pem
  mv "$tls.tmp" "$tls"
}

my_start() {
  local data="$dir/mysqldata" port sock="$dir/mysql.sock"
  if [ ${#sock} -gt 100 ]; then sock=$(mktemp -u /tmp/kysera-mysql.XXXXXX.sock); fi
  echo "$sock" > "$dir/mysql.socket"
  local fresh=0
  if [ ! -d "$data/mysql" ]; then
    mkdir -p "$data"
    local installer; installer=$(find_bin mariadb-install-db /usr/bin || find_bin mysql_install_db /usr/bin)
    "$installer" --no-defaults --datadir="$data" --user="$(id -un)" --auth-root-authentication-method=socket \
      --skip-test-db >"$dir/mysql.install.log" 2>&1 || { cat "$dir/mysql.install.log" >&2; return 1; }
    fresh=1
  fi
  my_tls
  local tls="$dir/mysql-tls"
  [ -f "$dir/mysql.port" ] || free_port > "$dir/mysql.port"
  port=$(cat "$dir/mysql.port")
  if port_in_use "$port"; then port=$(free_port); echo "$port" > "$dir/mysql.port"; fi
  "$(my_bin)" --no-defaults --datadir="$data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$sock" --pid-file="$dir/mysql.pidfile" --user="$(id -un)" --skip-name-resolve \
    --max-connections=300 --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
    --innodb-flush-log-at-trx-commit=2 --skip-log-bin --log-error="$dir/mysql.err" \
    --ssl-ca="$tls/ca.pem" --ssl-cert="$tls/server-cert.pem" --ssl-key="$tls/server-key.pem" \
    >/dev/null 2>&1 &
  echo $! > "$dir/mysql.pid"
  local i
  for i in $(seq 1 600); do
    if "$(my_client)" --no-defaults --socket="$sock" -uroot -e "select 1" >/dev/null 2>&1; then break; fi
    pid_alive "$(cat "$dir/mysql.pid")" || { cat "$dir/mysql.err" >&2; return 1; }
    sleep 0.1
  done
  if [ "$fresh" = 1 ]; then
    "$(my_client)" --no-defaults --socket="$sock" -uroot <<SQL
DELETE FROM mysql.global_priv WHERE User='';
CREATE USER 'kysera'@'%' IDENTIFIED BY '${MY_PASSWORD}';
GRANT ALL PRIVILEGES ON *.* TO 'kysera'@'%' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS kysera_test;
FLUSH PRIVILEGES;
SQL
  fi
  # An account that must present a client certificate signed by the test CA (data directories
  # made before TLS was added get it too).
  "$(my_client)" --no-defaults --socket="$sock" -uroot <<SQL
CREATE USER IF NOT EXISTS 'kysera_x509'@'%' IDENTIFIED BY '${MY_PASSWORD}' REQUIRE X509;
GRANT ALL PRIVILEGES ON kysera_test.* TO 'kysera_x509'@'%';
SQL
  write_env
  log "mariadb on 127.0.0.1:$port"
}

my_stop() {
  my_running || return 0
  local pid; pid=$(cat "$dir/mysql.pid")
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 600); do pid_alive "$pid" || break; sleep 0.1; done
  pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  return 0
}
my_pause() { local p; p=$(cat "$dir/mysql.pid"); kill -STOP "$p"; wait_stopped "$p"; }
my_resume() { [ -f "$dir/mysql.pid" ] && kill -CONT "$(cat "$dir/mysql.pid")" 2>/dev/null || true; }

which_servers() {
  case "${1:-all}" in
    all) echo "postgres mysql" ;;
    postgres|pg) echo postgres ;;
    mysql|mariadb) echo mysql ;;
    *) log "unknown server '$1'"; exit 2 ;;
  esac
}
prefix() { [ "$1" = postgres ] && echo pg || echo my; }

cmd=${1:-status}
case "$cmd" in
  start)
    for s in $(which_servers "${2:-all}"); do
      p=$(prefix "$s"); "${p}_running" || "${p}_start"
    done ;;
  stop)
    for s in $(which_servers "${2:-all}"); do p=$(prefix "$s"); "${p}_stop"; done ;;
  restart)
    for s in $(which_servers "${2:?which server}"); do p=$(prefix "$s"); "${p}_stop"; "${p}_start"; done ;;
  kill)
    # Abrupt: SIGKILL the server (postgres: the postmaster and its backends); `start` brings it back.
    for s in $(which_servers "${2:?which server}"); do
      p=$(prefix "$s")
      if [ "$s" = postgres ]; then kill -KILL $(pg_pids) 2>/dev/null || true; sleep 0.2; rm -f "$(pg_data)/postmaster.pid"
      else kill -KILL "$(cat "$dir/mysql.pid")" 2>/dev/null || true; fi
    done ;;
  pause)
    for s in $(which_servers "${2:?which server}"); do p=$(prefix "$s"); "${p}_pause"; done ;;
  resume)
    for s in $(which_servers "${2:?which server}"); do p=$(prefix "$s"); "${p}_resume"; done ;;
  fixture-up)
    owned=""
    for s in postgres mysql; do
      p=$(prefix "$s")
      if ! "${p}_running"; then "${p}_start"; owned="$owned $s"; fi
    done
    echo "$owned" > "$dir/fixture-owned" ;;
  fixture-down)
    if [ -f "$dir/fixture-owned" ]; then
      for s in $(cat "$dir/fixture-owned"); do p=$(prefix "$s"); "${p}_stop"; done
      rm -f "$dir/fixture-owned"
    fi ;;
  status)
    for s in postgres mysql; do p=$(prefix "$s"); if "${p}_running"; then echo "$s: running"; else echo "$s: stopped"; fi; done ;;
  env) cat "$dir/server.env" ;;
  *) log "unknown command '$cmd'"; exit 2 ;;
esac
