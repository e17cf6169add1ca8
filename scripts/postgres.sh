#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the tests and the replica run: Debian's `postgresql` package,
# started with initdb + pg_ctl as the `postgres` user (the server refuses to run as root).
#
#   scripts/postgres.sh start   # prints the GATEWAY_TEST_POSTGRES_URL to export
#   scripts/postgres.sh stop
#
# PGPORT (55432) and PGDATA_DIR (/tmp/gateway-postgres) may be set. The password is made here, at random, and
# never committed.
set -euo pipefail
port="${PGPORT:-55432}"
dir="${PGDATA_DIR:-/tmp/gateway-postgres}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/pg_ctl" ] || { echo "PostgreSQL is not installed: apt-get install postgresql" >&2; exit 1; }
as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

case "${1:-}" in
start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        chown postgres "$dir"
        head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/password"
        chown postgres "$dir/password"
        chmod 600 "$dir/password"
        as_postgres "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --pwfile="$dir/password" >/dev/null
        {
            echo "listen_addresses = '127.0.0.1'"
            echo "port = $port"
            echo "unix_socket_directories = '$dir'"
            echo "max_connections = 300"
            echo "fsync = on"
        } >> "$dir/data/postgresql.conf"
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
    fi
    password="$(cat "$dir/password")"
    as_postgres "$bin/psql" -h "$dir" -p "$port" -U postgres -qtAc "SELECT 1 FROM pg_database WHERE datname = 'gateway'" | grep -q 1 \
        || as_postgres "$bin/psql" -h "$dir" -p "$port" -U postgres -qc "CREATE DATABASE gateway" >/dev/null
    echo "postgres://postgres:${password}@127.0.0.1:${port}/gateway?sslmode=disable"
    ;;
stop)
    as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
