#!/usr/bin/env bash
# Usage: benchmarks/compare_tables.sh A_EXE B_EXE EXPORT...
# Loads the same sequence of exports with two builds of skype-etl (A_EXE, B_EXE: paths of
# skype-etl binaries, e.g. a worktree of the commit before a change and build/skype-etl),
# each into a fresh database of one private PostgreSQL server (scripts/pg-server.sh), one
# `skype-etl run` per export in the order given, then compares the md5 of an ordered dump of
# every table of schema skype (partitions included), and of the schema's indexes,
# constraints and partition bounds. Prints one line per table and per load (with the path
# each load took: staged, or the side table attached / rewritten / merged), and exits 1
# when anything differs.
#
# Left out of the comparison, because they differ from run to run by design:
#   accounts.first_loaded_at, accounts.last_loaded_at, exports.loaded_at (now() of the
#   load's transaction), schema_version.applied_at (now() of the migration), and, of
#   exports.statistics, the keys "phases" and "memory" and load.steps / load.merge_seconds
#   (clock times, durations, rates, peak memory). Every other key of the statistics (counts
#   of new, updated, superseded messages, attachments, participants, the side table's
#   outcome, ...) is compared.
set -euo pipefail

(($# >= 3)) || {
  echo "usage: $0 A_EXE B_EXE EXPORT..." >&2
  exit 2
}
a_exe=$1
b_exe=$2
shift 2
exports=("$@")
source "$(dirname "${BASH_SOURCE[0]}")/common/private_pg.sh" compare

# The SELECT that dumps table $1 (schema skype) in a fixed order: by its primary key, else
# by the whole row as text; volatile columns left out (see above).
dump_query() {
  local db=$1 table=$2
  psql -d "$db" -Atq -v ON_ERROR_STOP=1 -v t="skype.$table" <<'SQL'
SELECT 'SELECT ' || string_agg(
         CASE WHEN a.attrelid = 'skype.exports'::regclass AND a.attname = 'statistics'
              THEN $$(statistics - 'phases' - 'memory' #- '{load,steps}' #- '{load,merge_seconds}')$$
              ELSE quote_ident(a.attname) END, ', ' ORDER BY a.attnum) ||
       ' FROM ONLY ' || :'t' || ' x ORDER BY ' ||
       coalesce((SELECT string_agg(quote_ident(k.attname), ', ' ORDER BY array_position(i.indkey::int2[], k.attnum))
                 FROM pg_index i JOIN pg_attribute k ON k.attrelid = i.indrelid AND k.attnum = ANY (i.indkey)
                 WHERE i.indrelid = :'t'::regclass AND i.indisprimary),
                'x::text')
FROM pg_attribute a
WHERE a.attrelid = :'t'::regclass AND a.attnum > 0 AND NOT a.attisdropped
  AND (a.attrelid::regclass::text, a.attname::text) NOT IN
      (('skype.accounts', 'first_loaded_at'), ('skype.accounts', 'last_loaded_at'),
       ('skype.exports', 'loaded_at'), ('skype.schema_version', 'applied_at'))
SQL
}

# md5 of every table of schema skype, and of its catalog: one "name md5 rows" line each.
fingerprint() {
  local db=$1 table query
  for table in $(psql -d "$db" -Atqc "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'skype' AND c.relkind IN ('r', 'p') ORDER BY 1"); do
    query=$(dump_query "$db" "$table")
    # A partitioned table holds no rows of its own: dump it whole (FROM, not FROM ONLY).
    [[ $(psql -d "$db" -Atqc "SELECT relkind FROM pg_class WHERE oid = 'skype.$table'::regclass") == p ]] &&
      query=${query/FROM ONLY/FROM}
    printf '%s %s %s\n' "$table" \
      "$(psql -d "$db" -Atq -v ON_ERROR_STOP=1 -c "COPY ($query) TO STDOUT" | md5sum | cut -c1-32)" \
      "$(psql -d "$db" -Atqc "SELECT count(*) FROM skype.$table")"
  done
  printf '%s %s -\n' "(catalog:indexes,constraints,bounds)" "$(
    psql -d "$db" -Atq -v ON_ERROR_STOP=1 -c "
      SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
        WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'skype'::regnamespace)
      UNION ALL SELECT conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'skype'::regnamespace
      UNION ALL SELECT inhrelid::regclass::text, pg_get_expr(c.relpartbound, c.oid)
        FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid
        WHERE inhparent = 'skype.messages'::regclass
      UNION ALL SELECT 'left in skype_load: ' || count(*), '' FROM pg_class
        WHERE relnamespace = to_regnamespace('skype_load') AND relkind = 'r'
      ORDER BY 1, 2" | md5sum | cut -c1-32)"
}

for side in A B; do
  exe=$a_exe
  [[ $side == B ]] && exe=$b_exe
  db=compare_${side,,}
  psql -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $db" \
    -c "CREATE DATABASE $db" >/dev/null
  n=0
  for export_file in "${exports[@]}"; do
    n=$((n + 1))
    if ! "$exe" run "$export_file" --db "dbname=$db" --report "$work/$side-$n.json" -q \
      >"$work/$side-$n.out" 2>&1; then
      echo "$side: loading $export_file failed: $(cat "$work/$side-$n.out")" >&2
      exit 1
    fi
    path=$(python3 -c '
import json, sys
for e in json.load(open(sys.argv[1])).get("exports", []):
    side = e.get("load", {}).get("side_table")
    m = e.get("messages", {})
    how = "staged" if not side else "side table " + ("rewritten" if side.get("rewritten") else "attached" if side.get("attached") else "merged")
    print("%s, repeats %s; new %s, updated %s, unchanged %s, superseded %s" % (how, (side or {}).get("repeats", "-"), m.get("new"), m.get("updated"), m.get("unchanged"), m.get("superseded")))
' "$work/$side-$n.json" 2>/dev/null || echo "?")
    echo "$side load $n ($(basename "$export_file")): $path"
  done
  fingerprint "$db" >"$work/$side.md5"
done

echo
status=0
while read -r name_a md5_a rows_a && read -r name_b md5_b rows_b <&3; do
  verdict=same
  [[ $name_a == "$name_b" && $md5_a == "$md5_b" ]] || {
    verdict=DIFFERENT
    status=1
  }
  printf '%-40s rows %-9s A %s  B %s  %s\n' "$name_a" "$rows_a" "$md5_a" "$md5_b" "$verdict"
done <"$work/A.md5" 3<"$work/B.md5"
[[ $(wc -l <"$work/A.md5") == $(wc -l <"$work/B.md5") ]] || {
  echo "the two databases have different tables" >&2
  status=1
}
exit $status
