#!/usr/bin/env bash
# A private, throwaway PostgreSQL 15 server for the tests.
#
#   scripts/pg-server.sh start DIR   initdb in DIR/data, start it on a Unix socket in DIR
#   scripts/pg-server.sh start DIR --stock   the same with PostgreSQL's default settings
#                                    (durable; only the socket and listen_addresses set)
#   scripts/pg-server.sh env DIR     print `export PGHOST=... PGPORT=...` for its clients
#   scripts/pg-server.sh stop DIR    stop it (fast) and remove DIR
#
# DIR should be a fresh `mktemp -d` under /tmp. The server has no TCP listener
# (listen_addresses=''), trusts local connections (the socket sits in DIR, which only its
# owner can enter) and trades durability for speed (fsync=off: never keep data in it),
# except with --stock (benchmarks/run.sh measures against such a server).
# As root the server runs as the `postgres` system user, which then owns DIR.
# SKYPE_ETL_PG_BINDIR overrides the directory of initdb and pg_ctl.
set -euo pipefail

usage() {
  echo "usage: $0 start DIR [--stock] | stop DIR | env DIR" >&2
  exit 2
}
stock=0
if (($# == 3)) && [[ "$1" == start && "$3" == --stock ]]; then
  stock=1
  set -- "$1" "$2"
fi
(($# == 2)) || usage
command=$1
dir=$2
[[ "$dir" = /* ]] || dir="$(pwd)/$dir"
# The path goes into postgresql.conf and pg_ctl's shell command line, and the socket path
# (DIR/.s.PGSQL.NNNNN) must fit in 107 bytes: accept plain paths only.
if [[ ! "$dir" =~ ^[A-Za-z0-9_./+-]+$ ]] || ((${#dir} > 90)); then
  echo "pg-server: unsupported directory '$dir': use a short path of letters, digits and" \
    "._+-/ such as \$(mktemp -d)" >&2
  exit 2
fi

find_bindir() {
  if [[ -n "${SKYPE_ETL_PG_BINDIR:-}" ]]; then
    echo "$SKYPE_ETL_PG_BINDIR"
  elif [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
    echo /usr/lib/postgresql/15/bin
  else
    local found='' best=-1 candidate version
    for candidate in /usr/lib/postgresql/*/bin; do
      version=${candidate#/usr/lib/postgresql/}
      version=${version%/bin}
      if [[ "$version" =~ ^[0-9]+$ && -x "$candidate/pg_ctl" ]] && ((version > best)); then
        best=$version
        found=$candidate
      fi
    done
    if [[ -z "$found" ]]; then
      echo "pg-server: PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin:" \
        "run scripts/install-deps.sh or set SKYPE_ETL_PG_BINDIR" >&2
      exit 1
    fi
    echo "$found"
  fi
}

# Runs a command as the server's owner: `postgres` when we are root, else ourselves.
as_owner() {
  if ((EUID == 0)); then
    # cd /: postgres may not be allowed into the caller's working directory.
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

start() {
  local bindir port
  bindir=$(find_bindir)
  if ((EUID == 0)); then
    if ! id -u postgres >/dev/null 2>&1; then
      echo "pg-server: running as root needs the 'postgres' system user (install postgresql-15)" >&2
      exit 1
    fi
    # The server runs as postgres, which must be able to walk down to DIR.
    if ! (cd / && runuser -u postgres -- test -x "$(dirname "$dir")") 2>/dev/null; then
      echo "pg-server: the postgres user cannot reach $dir (a parent directory such as" \
        "/root is private): use a directory under /tmp, e.g. \$(mktemp -d)" >&2
      exit 1
    fi
    mkdir -p "$dir"
    chown postgres: "$dir"
    chmod 700 "$dir"
  else
    mkdir -p "$dir"
  fi
  if [[ -e "$dir/data" ]]; then
    echo "pg-server: $dir/data already exists: give start a fresh directory" >&2
    exit 1
  fi
  echo "pg-server: initdb in $dir/data ($bindir)"
  # C.UTF-8, not C: under C, PostgreSQL's ctype knows no non-ASCII letters, so full-text
  # search (to_tsvector) would drop every Cyrillic or CJK word.
  local locale=C
  if locale -a 2>/dev/null | grep -Eqix 'c\.utf-?8'; then locale=C.UTF-8; fi
  as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust --encoding=UTF8 \
    --locale="$locale" --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    echo "pg-server: initdb failed" >&2
    exit 1
  }
  if ((stock)); then
    cat >>"$dir/data/postgresql.conf" <<CONF
# scripts/pg-server.sh --stock: PostgreSQL's defaults, reached on a private socket only
listen_addresses = ''
unix_socket_directories = '$dir'
CONF
  else
    cat >>"$dir/data/postgresql.conf" <<CONF
# scripts/pg-server.sh: a throwaway test server
listen_addresses = ''
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
CONF
  fi
  # The socket file is named after the port: any free number will do, the directory is ours.
  for _ in 1 2 3 4 5; do
    port=$((54330 + RANDOM % 1000))
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port" start >/dev/null; then
      echo "$port" >"$dir/port"
      echo "pg-server: started on socket $dir/.s.PGSQL.$port"
      return 0
    fi
  done
  tail -n 30 "$dir/server.log" >&2 || true
  echo "pg-server: could not start PostgreSQL (log: $dir/server.log)" >&2
  exit 1
}

stop() {
  local bindir
  bindir=$(find_bindir)
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf -- "$dir"
}

case "$command" in
  start) start ;;
  stop) stop ;;
  env)
    if [[ ! -f "$dir/port" ]]; then
      echo "pg-server: no server started in $dir" >&2
      exit 1
    fi
    printf 'export PGHOST=%q PGPORT=%q PGUSER=postgres PGDATABASE=postgres\n' \
      "$dir" "$(cat "$dir/port")"
    ;;
  *) usage ;;
esac
