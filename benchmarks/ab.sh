#!/usr/bin/env bash
# Usage: benchmarks/ab.sh A_EXE B_EXE EXPORT [ROUNDS]
# Times `skype-etl run EXPORT` of two builds (A_EXE, B_EXE: paths of skype-etl binaries,
# e.g. a worktree of the commit before a change and build/skype-etl) interleaved, ROUNDS
# times each (default 3), each into a fresh database of one private PostgreSQL server
# (scripts/pg-server.sh: fsync off, so the figures are a ceiling, comparable only with each
# other), with a CHECKPOINT before each run. Prints one line per run: wall seconds (the
# whole command) and the report's peak private memory (statistics.memory.peak_mb).
set -euo pipefail

(($# >= 3)) || {
  echo "usage: $0 A_EXE B_EXE EXPORT [ROUNDS]" >&2
  exit 2
}
a_exe=$1
b_exe=$2
export_file=$3
rounds=${4:-3}
source "$(dirname "${BASH_SOURCE[0]}")/common/private_pg.sh" ab

for round in $(seq "$rounds"); do
  for side in A B; do
    exe=$a_exe
    [[ $side == B ]] && exe=$b_exe
    psql -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS skype_ab" \
      -c "CREATE DATABASE skype_ab" >/dev/null
    psql -q -c "CHECKPOINT" >/dev/null
    start=$(date +%s.%N)
    if ! "$exe" run "$export_file" --db dbname=skype_ab --report "$work/$side.json" -q \
      >/dev/null 2>"$work/$side.err"; then
      echo "$side round $round failed: $(cat "$work/$side.err")"
      continue
    fi
    end=$(date +%s.%N)
    peak=$(grep -o '"peak_mb": *[0-9.]*' "$work/$side.json" | tail -n 1 | grep -o '[0-9.]*$')
    printf '%s round %s: %.2f s, peak RssAnon %s MB\n' "$side" "$round" \
      "$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')" "$peak"
  done
done
