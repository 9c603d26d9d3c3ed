#!/usr/bin/env bash
# Starts, stops, pauses and restarts the PostgreSQL and MariaDB servers the tests use: loopback
# only, free ports, data under $KYSERA_TEST_SERVER_DIR (the build tree by default).
#
#   servers.sh start|stop [postgres|mysql|all]    start or stop (start is a no-op when running)
#   servers.sh fixture-up | fixture-down           for ctest fixtures: down only stops what up started
#   servers.sh pause|resume|restart|kill <postgres|mysql>
#   servers.sh status | env
#   servers.sh replication-up | replication-down  primaries and replicas for the replication tests
#   servers.sh promote <postgres-replica|mysql-replica>
#
# Replicas: postgres-replica streams from this directory's postgres (a pg_basebackup taken when
# it first starts); mysql-replica replicates this directory's mariadb from its first binary log.
# The MariaDB primary writes a binary log only in a directory marked for replication (the file
# `replication`, which replication-up creates), so the servers of the other tests are unchanged.
# Start/stop/pause/resume/kill take the replica names too; promote makes a replica a writable
# primary (pg_ctl promote; STOP SLAVE, RESET SLAVE ALL, read_only off).
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
# The port of server <name>: the one it had (kept across restarts, so URLs stay valid), or a free
# one when it has none yet or another process took it meanwhile.
server_port() {
  local f="$dir/$1.port" p
  [ -f "$f" ] || free_port > "$f"
  p=$(cat "$f")
  if port_in_use "$p"; then p=$(free_port); echo "$p" > "$f"; fi
  echo "$p"
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
    [ -f "$dir/postgres-replica.port" ] && echo "KYSERA_TEST_POSTGRES_REPLICA_URL=postgres://postgres:${PG_PASSWORD}@127.0.0.1:$(cat "$dir/postgres-replica.port")/postgres"
    if [ -f "$dir/replication" ] && [ -f "$dir/mysql.port" ]; then
      echo "KYSERA_TEST_MYSQL_APP_URL=mysql://kysera_app:${MY_PASSWORD}@127.0.0.1:$(cat "$dir/mysql.port")/kysera_test"
    fi
    [ -f "$dir/mysql-replica.port" ] && echo "KYSERA_TEST_MYSQL_REPLICA_URL=mysql://kysera_app:${MY_PASSWORD}@127.0.0.1:$(cat "$dir/mysql-replica.port")/kysera_test"
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
  port=$(server_port postgres)
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
pg_pause() { pg_pause_pid "$(cat "$dir/postgres.pid")"; }
pg_pause_pid() {
  local p=$1
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
  port=$(server_port mysql)
  "$(my_bin)" --no-defaults --datadir="$data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$sock" --pid-file="$dir/mysql.pidfile" --user="$(id -un)" --skip-name-resolve \
    --max-connections=300 --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
    --innodb-flush-log-at-trx-commit=2 $(my_binlog_args) --log-error="$dir/mysql.err" \
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
  if [ -f "$dir/replication" ]; then
    # The application account of the replication tests: all it needs on kysera_test, and to
    # read the replication status, but not READ ONLY ADMIN, so a replica's read_only binds it.
    "$(my_client)" --no-defaults --socket="$sock" -uroot <<SQL
CREATE USER IF NOT EXISTS 'kysera_app'@'%' IDENTIFIED BY '${MY_PASSWORD}';
GRANT ALL PRIVILEGES ON kysera_test.* TO 'kysera_app'@'%';
GRANT SLAVE MONITOR, BINLOG MONITOR ON *.* TO 'kysera_app'@'%';
SQL
  fi
  write_env
  log "mariadb on 127.0.0.1:$port"
}

my_stop() { my_running || return 0; mariadb_stop_pid "$(cat "$dir/mysql.pid")"; }
# SIGTERM (after SIGCONT, in case it is paused), then SIGKILL if it is still there after 60 s.
mariadb_stop_pid() {
  local pid=$1 i
  kill -CONT "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 600); do pid_alive "$pid" || break; sleep 0.1; done
  pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  return 0
}
my_pause() { local p; p=$(cat "$dir/mysql.pid"); kill -STOP "$p"; wait_stopped "$p"; }
my_resume() { [ -f "$dir/mysql.pid" ] && kill -CONT "$(cat "$dir/mysql.pid")" 2>/dev/null || true; }

# The primary's binary log, in a directory marked for replication only.
my_binlog_args() {
  if [ -f "$dir/replication" ]; then echo "--log-bin=mysql-bin --server-id=1 --binlog-format=ROW"
  else echo "--skip-log-bin"; fi
}

# ---------------------------------------------------------------- replicas

pgr_data() { cat "$dir/postgres-replica.datadir"; }
pgr_running() { [ -f "$dir/postgres-replica.datadir" ] && as_pg "$(pg_bindir)/pg_ctl" -D "$(pgr_data)" status >/dev/null 2>&1; }
pgr_start() {
  pg_running || { log "postgres-replica: the postgres primary is not running"; return 1; }
  local bin port data
  bin=$(pg_bindir)
  if [ ! -f "$dir/postgres-replica.datadir" ]; then
    data="$(pg_data)-replica"  # beside the primary's, so the postgres user can write it too
    mkdir -p "$data"
    if [ "$(id -u)" = 0 ]; then chown postgres "$data"; fi
    chmod 700 "$data"
    as_pg env PGPASSWORD="$PG_PASSWORD" "$bin/pg_basebackup" -h 127.0.0.1 -p "$(cat "$dir/postgres.port")" \
      -U postgres -D "$data" -X stream -R --no-sync >"$dir/postgres-replica.basebackup.log" 2>&1 \
      || { cat "$dir/postgres-replica.basebackup.log" >&2; return 1; }
    # Where the primary is, with the password (the last setting in the file wins). Settings a
    # standby must match (max_connections) are given on the command line as for the primary.
    echo "primary_conninfo = 'host=127.0.0.1 port=$(cat "$dir/postgres.port") user=postgres password=${PG_PASSWORD} application_name=kysera_replica'" \
      | as_pg tee -a "$data/postgresql.auto.conf" >/dev/null
    echo "$data" > "$dir/postgres-replica.datadir"
  fi
  data=$(pgr_data)
  port=$(server_port postgres-replica)
  as_pg "$bin/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200 -c fsync=off -c hot_standby=on" \
    start >/dev/null || { cat "$data/server.log" >&2; return 1; }
  head -1 "$data/postmaster.pid" > "$dir/postgres-replica.pid"
  write_env
  log "postgres-replica on 127.0.0.1:$port"
}
pgr_stop() {
  [ -f "$dir/postgres-replica.datadir" ] || return 0
  pgr_resume
  as_pg "$(pg_bindir)/pg_ctl" -D "$(pgr_data)" -m fast -w -t 60 stop >/dev/null 2>&1 || true
}
pgr_pause() { pg_pause_pid "$(cat "$dir/postgres-replica.pid")"; }
pgr_resume() {
  [ -f "$dir/postgres-replica.pid" ] || return 0
  local p; p=$(cat "$dir/postgres-replica.pid")
  kill -CONT "$p" $(pgrep -P "$p" || true) 2>/dev/null || true
}
pgr_promote() { as_pg "$(pg_bindir)/pg_ctl" -D "$(pgr_data)" -w -t 60 promote >/dev/null; }

myr_socket() { cat "$dir/mysql-replica.socket"; }
myr_running() { [ -f "$dir/mysql-replica.pid" ] && pid_alive "$(cat "$dir/mysql-replica.pid")"; }
myr_sql() { "$(my_client)" --no-defaults --socket="$(myr_socket)" -uroot "$@"; }
myr_start() {
  my_running || { log "mysql-replica: the mariadb primary is not running"; return 1; }
  [ -f "$dir/replication" ] || { log "mysql-replica: the primary writes no binary log (run replication-up)"; return 1; }
  local data="$dir/mysqldata-replica" port sock="$dir/mysql-replica.sock"
  if [ ${#sock} -gt 100 ]; then sock=$(mktemp -u /tmp/kysera-mysql-replica.XXXXXX.sock); fi
  echo "$sock" > "$dir/mysql-replica.socket"
  local fresh=0
  if [ ! -d "$data/mysql" ]; then
    mkdir -p "$data"
    local installer; installer=$(find_bin mariadb-install-db /usr/bin || find_bin mysql_install_db /usr/bin)
    "$installer" --no-defaults --datadir="$data" --user="$(id -un)" --auth-root-authentication-method=socket \
      --skip-test-db >"$dir/mysql-replica.install.log" 2>&1 || { cat "$dir/mysql-replica.install.log" >&2; return 1; }
    fresh=1
  fi
  port=$(server_port mysql-replica)
  "$(my_bin)" --no-defaults --datadir="$data" --port="$port" --bind-address=127.0.0.1 \
    --socket="$sock" --pid-file="$dir/mysql-replica.pidfile" --user="$(id -un)" --skip-name-resolve \
    --max-connections=100 --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
    --innodb-flush-log-at-trx-commit=2 --server-id=2 --read-only=1 --skip-log-bin \
    --relay-log=relay-bin --log-error="$dir/mysql-replica.err" >/dev/null 2>&1 &
  echo $! > "$dir/mysql-replica.pid"
  local i
  for i in $(seq 1 600); do
    if myr_sql -e "select 1" >/dev/null 2>&1; then break; fi
    pid_alive "$(cat "$dir/mysql-replica.pid")" || { cat "$dir/mysql-replica.err" >&2; return 1; }
    sleep 0.1
  done
  if [ "$fresh" = 1 ]; then
    # From the primary's first binary log: it was written from the primary's first start, so the
    # replica replays the accounts and the test database too.
    myr_sql <<SQL
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$(cat "$dir/mysql.port"), MASTER_USER='kysera',
  MASTER_PASSWORD='${MY_PASSWORD}', MASTER_LOG_FILE='mysql-bin.000001', MASTER_LOG_POS=4,
  MASTER_CONNECT_RETRY=1;
START SLAVE;
SQL
  fi
  write_env
  log "mysql-replica on 127.0.0.1:$port"
}
myr_stop() { myr_running || return 0; mariadb_stop_pid "$(cat "$dir/mysql-replica.pid")"; }
myr_pause() { local p; p=$(cat "$dir/mysql-replica.pid"); kill -STOP "$p"; wait_stopped "$p"; }
myr_resume() { [ -f "$dir/mysql-replica.pid" ] && kill -CONT "$(cat "$dir/mysql-replica.pid")" 2>/dev/null || true; }
myr_promote() { myr_sql -e "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;"; }

which_servers() {
  case "${1:-all}" in
    all) echo "postgres mysql" ;;
    postgres|pg) echo postgres ;;
    mysql|mariadb) echo mysql ;;
    postgres-replica) echo postgres-replica ;;
    mysql-replica|mariadb-replica) echo mysql-replica ;;
    replicas) echo "postgres-replica mysql-replica" ;;
    *) log "unknown server '$1'"; exit 2 ;;
  esac
}
prefix() {
  case "$1" in
    postgres) echo pg ;;
    mysql) echo my ;;
    postgres-replica) echo pgr ;;
    mysql-replica) echo myr ;;
  esac
}

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
      case "$s" in
        postgres) kill -KILL $(pg_pids) 2>/dev/null || true; sleep 0.2; rm -f "$(pg_data)/postmaster.pid" ;;
        postgres-replica)
          p=$(cat "$dir/postgres-replica.pid")
          kill -KILL "$p" $(pgrep -P "$p" || true) 2>/dev/null || true; sleep 0.2; rm -f "$(pgr_data)/postmaster.pid" ;;
        *) kill -KILL "$(cat "$dir/$s.pid")" 2>/dev/null || true ;;
      esac
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
  replication-up)
    # Primaries marked for replication, then a replica of each; down stops what up started.
    if [ ! -f "$dir/replication" ] && { my_running || pg_running; }; then
      log "replication-up: servers already run in $dir without replication; use a directory of its own"; exit 1
    fi
    touch "$dir/replication"
    owned=""
    for s in postgres mysql postgres-replica mysql-replica; do
      p=$(prefix "$s")
      if ! "${p}_running"; then "${p}_start"; owned="$owned $s"; fi
    done
    echo "$owned" > "$dir/fixture-owned" ;;
  replication-down)
    # Replicas it started are also discarded, so a replica promoted by a test never outlives it.
    if [ -f "$dir/fixture-owned" ]; then
      for s in $(cat "$dir/fixture-owned"); do p=$(prefix "$s"); "${p}_stop"; done
      for s in $(cat "$dir/fixture-owned"); do
        case "$s" in
          postgres-replica) rm -rf "$(pgr_data)"; rm -f "$dir"/postgres-replica.* ;;
          mysql-replica) rm -rf "$dir/mysqldata-replica"; rm -f "$dir"/mysql-replica.* ;;
        esac
      done
      rm -f "$dir/fixture-owned"
      write_env
    fi ;;
  promote)
    for s in $(which_servers "${2:?which replica}"); do
      case "$s" in postgres-replica|mysql-replica) "$(prefix "$s")_promote" ;; *) log "promote: $s is not a replica"; exit 2 ;; esac
    done ;;
  status)
    for s in postgres mysql; do p=$(prefix "$s"); if "${p}_running"; then echo "$s: running"; else echo "$s: stopped"; fi; done ;;
  env) cat "$dir/server.env" ;;
  *) log "unknown command '$cmd'"; exit 2 ;;
esac
