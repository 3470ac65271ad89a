#!/usr/bin/env bash
# Usage: benchmarks/peak_rss.sh LABEL SKYPE_ETL_EXE EXPORT [RUN OPTIONS...]
# Loads EXPORT with `SKYPE_ETL_EXE run` into a fresh database (created and dropped here) of
# the server the PG* environment names, and prints one line: exit code, wall seconds, the
# report's peak private memory (statistics.memory.peak_mb, sampled by the run's
# MemoryMonitor) and the peak RssAnon sampled from outside every 20 ms (a peak between two of
# the monitor's samples, such as a buffer freed before the next batch, shows only there).
# The report is kept as $TMPDIR/LABEL.report.json (default /tmp).
set -euo pipefail

(($# >= 3)) || {
  echo "usage: $0 LABEL SKYPE_ETL_EXE EXPORT [RUN OPTIONS...]" >&2
  exit 2
}
label=$1
exe=$2
export_file=$3
shift 3
db=skype_peak_rss_$$
report=${TMPDIR:-/tmp}/$label.report.json
createdb "$db"
trap 'dropdb --if-exists "$db"' EXIT
psql -q -d "$db" -c CHECKPOINT >/dev/null

start=$(date +%s.%N)
"$exe" run "$export_file" --db "dbname=$db" --report "$report" -q "$@" >/dev/null 2>&1 &
pid=$!
peak_kb=0
while kill -0 "$pid" 2>/dev/null; do
  kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [[ -n "$kb" && "$kb" -gt "$peak_kb" ]] && peak_kb=$kb
  sleep 0.02
done
rc=0
wait "$pid" || rc=$?
end=$(date +%s.%N)
report_peak=$(sed -n 's/.*"peak_mb": *\([0-9.]*\).*/\1/p' "$report" | tail -1)
printf '%s exit=%d seconds=%.2f report_peak_mb=%s sampled_peak_rss_anon_mb=%d\n' \
  "$label" "$rc" "$(echo "$end - $start" | bc)" "$report_peak" $((peak_kb / 1024))
