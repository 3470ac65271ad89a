#!/usr/bin/env bash
# Usage: benchmarks/progress_ab.sh EXE EXPORT [ROUNDS]
# What the live progress bar costs: times `EXE run EXPORT --progress=bar` and
# `--progress=none` interleaved, ROUNDS times each (default 3), both on a pseudo-terminal
# (`script -qfec`, so that only the bar differs), each into a fresh database of one private
# PostgreSQL server (scripts/pg-server.sh: fsync off), with a CHECKPOINT before each run.
# Prints one line per run: wall seconds of the whole command, CPU seconds (user + system) of
# skype-etl (/usr/bin/time), and the bytes the run wrote to the terminal.
set -euo pipefail

(($# >= 2)) || {
  echo "usage: $0 EXE EXPORT [ROUNDS]" >&2
  exit 2
}
exe=$(realpath "$1")
export_file=$(realpath "$2")
rounds=${3:-3}
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pg_dir=$(mktemp -d /tmp/skype-progress-pg.XXXXXX)
work=$(mktemp -d "${TMPDIR:-/tmp}/skype-progress.XXXXXX")
cleanup() {
  bash "$repo_root/scripts/pg-server.sh" stop "$pg_dir" >/dev/null 2>&1 || true
  rm -rf -- "$work" "$pg_dir"
}
trap cleanup EXIT
bash "$repo_root/scripts/pg-server.sh" start "$pg_dir" >/dev/null
eval "$(bash "$repo_root/scripts/pg-server.sh" env "$pg_dir")"
export PGHOST PGPORT PGUSER PGDATABASE

for round in $(seq "$rounds"); do
  for mode in bar none; do
    psql -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS skype_progress" \
      -c "CREATE DATABASE skype_progress" >/dev/null
    psql -q -c "CHECKPOINT" >/dev/null
    start=$(date +%s.%N)
    if ! TERM=xterm script -qfec "/usr/bin/time -o '$work/$mode.time' -f '%U %S' '$exe' run \
        '$export_file' --db dbname=skype_progress --progress=$mode" /dev/null \
        >"$work/$mode.out" 2>&1 </dev/null; then
      echo "$mode round $round failed: $(tail -n 3 "$work/$mode.out")"
      continue
    fi
    end=$(date +%s.%N)
    printf '%-4s round %s: %.2f s, %.2f CPU s, %s bytes to the terminal\n' "$mode" "$round" \
      "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" \
      "$(awk '{ print $1 + $2 }' "$work/$mode.time")" "$(wc -c <"$work/$mode.out")"
  done
done
