#!/usr/bin/env bash
# A/B: an account's first load into the local default database (wal_level=minimal) with
# the side table not split (binary A, e.g. a build of a commit before the split) and split
# into one part per stream (binary B), alternating, each into a new local database; then
# the same database exported as txt (what the split costs readers).
# Usage: benchmarks/side_split_ab.sh BIN_A BIN_B EXPORT ROUNDS
set -euo pipefail
bin_a=$(realpath "$1") bin_b=$(realpath "$2") export_file=$3 rounds=$4
parent=$(mktemp -d /tmp/side-split-ab.XXXX); chmod 755 "$parent"
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE DATABASE_URL
for r in $(seq "$rounds"); do
  for variant in a b; do
    bin=$bin_a; [[ $variant == b ]] && bin=$bin_b
    d=$parent/pg-$variant-$r
    c=$("$bin" db start --data-dir "$d" 2>/dev/null)
    psql -XAtq -d "$c" -c CHECKPOINT
    lsn=$(psql -XAt -d "$c" -c "SELECT pg_current_wal_lsn()")
    t0=$(date +%s.%N)
    "$bin" run "$export_file" --data-dir "$d" -q --report "$parent/report.json" >/dev/null 2>&1
    t1=$(date +%s.%N)
    wal=$(psql -XAt -d "$c" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn')::bigint")
    parts=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['exports'][0]['load']['side_table'].get('parts', 1))" "$parent/report.json")
    t2=$(date +%s.%N)
    "$bin" export "$parent/out" --format txt --data-dir "$d" -q >/dev/null 2>&1
    t3=$(date +%s.%N)
    rm -rf "$parent/out"
    echo "$variant round=$r load_s=$(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') wal_mb=$((wal/1000000)) parts=$parts export_txt_s=$(awk -v a=$t2 -v b=$t3 'BEGIN{printf "%.2f", b-a}')"
    "$bin" db stop --data-dir "$d"; rm -rf "$d"
  done
done
rm -rf "$parent"
