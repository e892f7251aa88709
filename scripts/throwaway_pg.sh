#!/usr/bin/env bash
# A throwaway PostgreSQL server on a free loopback port, for the tests, the Dagster demo and the
# tenants benchmark. Nothing here is for production (see README, "Running many companies").
#
#   scripts/throwaway_pg.sh start DIR   # initdb in DIR/data, start, create role + database
#                                       # fcsync; writes the URI to DIR/uri (mode 0600)
#   scripts/throwaway_pg.sh stop DIR    # stop that server and remove DIR
#
# DIR/uri holds `postgresql+psycopg://fcsync:<random password>@127.0.0.1:<port>/fcsync`; the
# role may create databases. As root, the Debian package is installed when missing and the
# server runs as the `postgres` user (initdb refuses root). Password authentication even on
# loopback: the machine may be shared.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$2

pg_bindir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ] && command -v pg_config >/dev/null; then
    found=$(pg_config --bindir)
  fi
  echo "$found"
}

as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
start)
  bindir=$(pg_bindir)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "PostgreSQL server binaries not found; install the postgresql package" >&2
      exit 1
    fi
    echo "installing PostgreSQL (apt-get)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    bindir=$(pg_bindir)
  fi
  mkdir -p "$dir"
  chmod 0700 "$dir"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
  as_server_user test -w "$dir" || {
    echo "$dir is not reachable by the postgres user (a parent directory is private?)" >&2
    exit 1
  }
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  pwfile="$dir/.pw"
  (umask 077; printf '%s\n' "$password" >"$pwfile")
  [ "$(id -u)" -ne 0 ] || chown postgres: "$pwfile"
  as_server_user "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile" >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  # Throwaway data: durability settings off for speed.
  as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  PGPASSWORD="$password" "$bindir/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE fcsync LOGIN CREATEDB PASSWORD '$password'" \
    -c "CREATE DATABASE fcsync OWNER fcsync" >/dev/null
  rm -f "$pwfile"
  (umask 077; printf 'postgresql+psycopg://fcsync:%s@127.0.0.1:%s/fcsync\n' "$password" "$port" >"$dir/uri")
  echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir)" >&2
  ;;
stop)
  bindir=$(pg_bindir)
  if [ -n "$bindir" ] && [ -f "$dir/data/postmaster.pid" ]; then
    as_server_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  usage
  ;;
esac
