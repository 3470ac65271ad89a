#!/usr/bin/env bash
# Usage: benchmarks/export_bench.sh SKYPE_ETL_EXE DB [FORMATS...]
# `skype-etl export` of the database DB (a conninfo, e.g. "dbname=e1m": an export already
# loaded with `skype-etl run`, such as the 1M-message benchmark export) in each format
# (default: html txt csv json), each into a fresh directory under a mktemp
# directory (removed on exit). Prints a line per format: exit code, wall seconds, messages/s,
# the output's size, and the peak RssAnon of the process sampled every 50 ms from outside.
# TZ is left as it is (the export writes local times).
set -euo pipefail

(($# >= 2)) || {
  echo "usage: $0 SKYPE_ETL_EXE DB [FORMATS...]" >&2
  exit 2
}
exe=$1
db=$2
shift 2
formats=("$@")
((${#formats[@]})) || formats=(html txt csv json)
work=$(mktemp -d "${TMPDIR:-/tmp}/export_bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
messages=$(psql -At -d "$db" -c "SELECT count(*) FROM skype.messages")

for format in "${formats[@]}"; do
  out=$work/$format
  start=$(date +%s.%N)
  "$exe" export "$out" --db "$db" --format "$format" -q >/dev/null 2>"$work/err" &
  pid=$!
  peak_kb=0
  while kill -0 "$pid" 2>/dev/null; do
    # Bash builtins only: a process per sample would take CPU from the export itself.
    while read -r key kb _; do
      [[ $key == RssAnon: ]] && ((kb > peak_kb)) && peak_kb=$kb
    done <"/proc/$pid/status" 2>/dev/null || true
    sleep 0.05
  done
  rc=0
  wait "$pid" || rc=$?
  end=$(date +%s.%N)
  seconds=$(echo "$end - $start" | bc)
  size_mb=$(du -sm "$out" 2>/dev/null | cut -f1 || echo 0)
  printf 'export %-4s exit=%d messages=%d seconds=%.2f messages_per_s=%.0f output_mb=%s peak_rss_anon_mb=%.1f\n' \
    "$format" "$rc" "$messages" "$seconds" "$(echo "$messages / $seconds" | bc -l)" "${size_mb:-0}" \
    "$(echo "$peak_kb / 1024" | bc -l)"
  [[ $rc -eq 0 ]] || sed 's/^/  /' "$work/err"
  rm -rf "$out"
done
