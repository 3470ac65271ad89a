#!/usr/bin/env bash
# Peak private memory (RssAnon) of `skype-etl run` for the same generated export as a bare
# messages.json and as a gzip'd tar, at each size (millions of messages), each into a new
# database of the server the PG* variables name. benchmarks/run.sh measures the formats at
# 1M only; this checks that memory stays flat with size for every input format.
# Usage: benchmarks/formats_memory.sh "0.5 5"     (SKYPE_ETL_BUILD_DIR, else build/)
set -euo pipefail
build=${SKYPE_ETL_BUILD_DIR:-build}
gen=$build/benchmarks/generator/skype-etl-generate
work=$(mktemp -d /tmp/formats-memory.XXXX)
trap 'rm -rf "$work"' EXIT
for size in ${1:-0.5 5}; do
  n=$(awk -v s="$size" 'BEGIN { printf "%d", s * 1000000 }')
  "$gen" --messages "$n" --seed 42 --format json -o "$work/e.json" >/dev/null
  "$gen" --messages "$n" --seed 42 --format tar -o "$work/e.tar" >/dev/null
  gzip -1 -c "$work/e.tar" >"$work/e.tar.gz"
  rm -f "$work/e.tar"
  for f in json tar.gz; do
    db=formats_memory_$$
    psql -Xq -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
      -c "CREATE DATABASE $db" postgres
    "$build/skype-etl" run "$work/e.$f" --db "dbname=$db" -q --report "$work/r.json" >/dev/null
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print("%sM %-7s bytes=%s messages=%s peak_rss_anon_mb=%s" % (sys.argv[2], sys.argv[3], sys.argv[4],
      r["exports"][0]["messages"]["read"], r["statistics"]["memory"]["peak_mb"]))' \
      "$work/r.json" "$size" "$f" "$(stat -c %s "$work/e.$f")"
    psql -Xqc "DROP DATABASE $db" postgres
  done
  rm -f "$work/e.json" "$work/e.tar.gz"
done
