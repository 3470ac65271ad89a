# Sourced by the benchmark scripts: starts a private PostgreSQL server
# (scripts/pg-server.sh: fsync off, so timings are a ceiling, comparable only with each
# other) and a scratch directory, both removed when the script exits; exports the PG*
# variables that point at the server. Sets repo_root, pg_dir and work; `name` names both.
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/common/private_pg.sh" NAME
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
pg_dir=$(mktemp -d "/tmp/skype-$1-pg.XXXXXX")
work=$(mktemp -d "${TMPDIR:-/tmp}/skype-$1.XXXXXX")
cleanup() {
  bash "$repo_root/scripts/pg-server.sh" stop "$pg_dir" >/dev/null 2>&1 || true
  rm -rf -- "$work" "$pg_dir"
}
trap cleanup EXIT
bash "$repo_root/scripts/pg-server.sh" start "$pg_dir" >/dev/null
eval "$(bash "$repo_root/scripts/pg-server.sh" env "$pg_dir")"
export PGHOST PGPORT PGUSER PGDATABASE
