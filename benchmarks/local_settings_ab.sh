#!/usr/bin/env bash
# A/B: the local default database with skype-etl.conf (tuned) vs opted out (PostgreSQL defaults),
# first load of EXPORT, alternating, each into a new local database.
# Usage: SKYPE_ETL=build/skype-etl benchmarks/local_settings_ab.sh EXPORT ROUNDS
set -euo pipefail
bin=$(realpath "${SKYPE_ETL:-build/skype-etl}")
export_file=$1 rounds=$2
parent=$(mktemp -d /tmp/local-settings-ab.XXXX); chmod 755 "$parent"
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE DATABASE_URL
for r in $(seq "$rounds"); do
  for variant in tuned optout; do
    d=$parent/pg-$variant-$r
    "$bin" db start --data-dir "$d" >/dev/null 2>&1
    if [[ $variant == optout ]]; then
      "$bin" db stop --data-dir "$d"
      sed -i "s/^include_if_exists = 'skype-etl.conf'/#&/" "$d/postgresql.conf"
      "$bin" db start --data-dir "$d" >/dev/null 2>&1
    fi
    c=$("$bin" db start --data-dir "$d" 2>/dev/null)
    psql -XAtq -d "$c" -c CHECKPOINT
    lsn=$(psql -XAt -d "$c" -c "SELECT pg_current_wal_lsn()")
    t0=$(date +%s.%N)
    "$bin" run "$export_file" --data-dir "$d" -q >/dev/null 2>&1
    t1=$(date +%s.%N)
    wal=$(psql -XAt -d "$c" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn')::bigint")
    echo "$variant round=$r wall=$(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}') wal_mb=$((wal/1000000)) wal_level=$(psql -XAt -d "$c" -c 'SHOW wal_level')"
    "$bin" db stop --data-dir "$d"; rm -rf "$d"
  done
done
rm -rf "$parent"
