#!/usr/bin/env bash
# Usage: benchmarks/run.sh [--sizes "0.5 1 2 5"] [--quick] [--seed N] [--keep-exports]
#
# The end-to-end benchmark of issue 6. Builds Release (scripts/build.sh; build directory
# $SKYPE_ETL_BUILD_DIR, else build/), starts a private PostgreSQL (scripts/pg-server.sh,
# stopped on exit), generates a tar export per size (millions of messages, fixed seed) and:
#   - for every size: `skype-etl run` (parallel, default settings) into a fresh database:
#     wall time, messages/s, peak RssAnon (the report's statistics.memory.peak_mb);
#   - for 1M (else the smallest size): a second account's export of that size into a database
#     that holds the first account's (its own partition, so it should load as fast), then a
#     later export of the first account (the same messages and 3% newer ones, generated with
#     --newer 3: the archivist's next export, merged into the account's partition); before
#     the second account, `skype-etl export` of the first account's database in each format
#     (benchmarks/export_bench.sh: wall time, messages/s, peak RssAnon; issue 19's targets:
#     html at least 200k messages/s, every format under 64 MB);
#   - for the largest size also: extract-only, transform-only, load-only (pipeline_bench),
#     `skype-etl run --sequential`, and the bare `psql \copy` ceiling: the parallel run's
#     final rows of every skype table copied into a fresh database with the same schema
#     (pg_dump --schema-only of the loaded one: same tables and indexes).
#   - for every size, first (issue 18): the same parallel run against (a) a stock PostgreSQL
#     15 (initdb defaults, durable; scripts/pg-server.sh --stock) and (b) skype-etl's own
#     local default database as `skype-etl db start --data-dir` creates it; the fsync=off
#     server above is the third row, a labelled ceiling. Per row: wall time, WAL bytes
#     (pg_current_wal_lsn difference), the server's CPU seconds (utime+stime of the
#     postmaster and its children, /proc), the client's (/usr/bin/time), and two floors of
#     the same run: CPU ((server + client CPU) / cores) and write ((WAL + the bytes of schema
#     skype's tables and indexes) / the disk's sequential write bandwidth with fsync, measured
#     with dd oflag=direct conv=fdatasync in the file system of the data directories).
# Prints one table and the issue's ratios, and writes them to
# benchmarks/results/<date>.txt (<date>-quick.txt with --quick).
# --quick: sizes 0.05 and 0.1 (a check that the harness works, not a measurement).
# Exports and row dumps live in a mktemp directory under $TMPDIR (default /tmp), deleted on
# exit unless --keep-exports.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sizes="0.5 1 2 5"
quick=0
seed=42
keep=0
python_messages_per_second=1820  # the Python original on the generator's mix (issue 6)

usage() {
  sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
sizes_given=0
while (($#)); do
  case "$1" in
    --sizes)
      (($# >= 2)) || usage
      sizes=$2
      sizes_given=1
      shift 2
      ;;
    --quick)
      quick=1
      shift
      ;;
    --seed)
      (($# >= 2)) || usage
      seed=$2
      shift 2
      ;;
    --keep-exports)
      keep=1
      shift
      ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done
if ((quick)) && ((sizes_given == 0)); then sizes="0.05 0.1"; fi
for size in $sizes; do
  [[ "$size" =~ ^[0-9]+(\.[0-9]+)?$ ]] || {
    echo "run.sh: bad size '$size' (millions of messages, e.g. 0.5)" >&2
    exit 2
  }
done
# Ascending, so the per-size rows read in order; the largest gets every stage.
sizes=$(tr ' ' '\n' <<<"$sizes" | grep -v '^$' | sort -g | uniq | tr '\n' ' ')
largest=$(tr ' ' '\n' <<<"$sizes" | grep -v '^$' | tail -n 1)
second_size=$(tr ' ' '\n' <<<"$sizes" | grep -v '^$' | head -n 1)
for size in $sizes; do [[ "$size" == 1 ]] && second_size=1; done
command_line="benchmarks/run.sh --sizes \"${sizes% }\" --seed $seed"
((quick)) && command_line="benchmarks/run.sh --quick"

log() { echo "run.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# Field of a flat JSON line (first occurrence; pipeline_bench puts the common fields first).
json_field() { grep -o "\"$2\":[^,}]*" <<<"$1" | head -n 1 | cut -d: -f2- | tr -d '"'; }
# Field of a key=value line.
kv_field() { tr ' ' '\n' <<<"$1" | grep "^$2=" | head -n 1 | cut -d= -f2-; }
count_of() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000000 + 0.5 }'; }

# --- build --------------------------------------------------------------------------------
build_dir=${SKYPE_ETL_BUILD_DIR:-build}
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"
log "building Release in $build_dir"
"$repo_root/scripts/build.sh" Release "$build_dir" skype-etl skype-etl-generate pipeline_bench \
  >&2
skype_etl="$build_dir/skype-etl"
generate="$build_dir/benchmarks/generator/skype-etl-generate"
pipeline_bench="$build_dir/benchmarks/pipeline/pipeline_bench"
for binary in "$skype_etl" "$generate" "$pipeline_bench"; do
  [[ -x "$binary" ]] || {
    log "missing $binary after the build"
    exit 1
  }
done

# --- scratch space and the private server ---------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/skype-bench.XXXXXX")
pg_dir=$(mktemp -d /tmp/skype-bench-pg.XXXXXX)
stock_dir=$(mktemp -d /tmp/skype-bench-stock.XXXXXX)
# The local database's parent must be traversable by postgres when we are root.
local_parent=$(mktemp -d /tmp/skype-bench-local.XXXXXX)
chmod 755 "$local_parent"
local_dir="$local_parent/pg"
cleanup() {
  "$repo_root/scripts/pg-server.sh" stop "$pg_dir" || true
  "$repo_root/scripts/pg-server.sh" stop "$stock_dir" || true
  if [[ -e "$local_dir/PG_VERSION" ]]; then
    "$skype_etl" db stop --data-dir "$local_dir" >/dev/null 2>&1 || true
  fi
  rm -rf -- "$local_parent"
  if ((keep)); then
    log "kept exports and logs in $work"
  else
    rm -rf -- "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The largest export is ~350 MB per million messages; the row dumps of the \copy ceiling
# about as much again.
need_mb=$(awk -v s="$largest" 'BEGIN { printf "%d", s * 350 * 2.5 + 200 }')
avail_mb=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
if ((avail_mb < need_mb)); then
  log "only $avail_mb MB free in $work, about $need_mb MB needed for ${largest}M messages"
  exit 1
fi

"$repo_root/scripts/pg-server.sh" start "$pg_dir" >&2
eval "$("$repo_root/scripts/pg-server.sh" env "$pg_dir")"
"$repo_root/scripts/pg-server.sh" start "$stock_dir" --stock >&2
ceiling_conninfo="host=$pg_dir port=$(<"$pg_dir/port") user=postgres"
stock_conninfo="host=$stock_dir port=$(<"$stock_dir/port") user=postgres"
psql_admin() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
fresh_db() {
  psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
  psql_admin -c "CREATE DATABASE $1 TEMPLATE template0 ENCODING 'UTF8'"
}
drop_db() { psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"; }
# Written dirty pages of earlier stages must not be flushed on a later stage's clock.
checkpoint() { psql_admin -c "CHECKPOINT"; }
# Until no autovacuum worker of any server runs (their process titles), at most 300 s.
wait_for_autovacuum() {
  local waited=0
  while pgrep -f "postgres: autovacuum worker" >/dev/null && ((waited < 300)); do
    sleep 1
    waited=$((waited + 1))
  done
  log "waited ${waited} s for autovacuum workers to finish"
}

mkdir -p "$work/logs"

# --- durable servers (issue 18) -------------------------------------------------------------
cores=$(nproc)
clock_ticks=$(getconf CLK_TCK)
# The disk's sequential write bandwidth with fsync, in bytes/s, in the file system that holds
# the data directories (they are all under /tmp).
disk_write_bandwidth() {
  local file="$stock_dir/dd-bandwidth.bin" count=512 out
  ((quick == 0)) || count=128
  out=$(dd if=/dev/zero of="$file" bs=1M count="$count" oflag=direct conv=fdatasync 2>&1) || {
    log "dd oflag=direct failed ($out); measuring without O_DIRECT"
    out=$(dd if=/dev/zero of="$file" bs=1M count="$count" conv=fdatasync 2>&1)
  }
  rm -f -- "$file"
  awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") s = $(i - 1); printf "%.0f", $1 / s }' \
    <<<"$out"
}
# CPU seconds the server DATA_DIR has used: the postmaster's own and its reaped children's
# (utime, stime, cutime, cstime), plus its live children's (backends, parallel workers,
# checkpointer, WAL writer...).
server_cpu_seconds() {
  local postmaster ticks child
  postmaster=$(head -n 1 "$1/postmaster.pid")
  # /proc/PID/stat after "PID (comm) ": field 14 (utime) is word 12.
  ticks=$(sed 's/^.*) //' "/proc/$postmaster/stat" | awk '{ print $12 + $13 + $14 + $15 }')
  for child in $(ps -o pid= --ppid "$postmaster"); do
    ticks=$((ticks + $(sed 's/^.*) //' "/proc/$child/stat" 2>/dev/null |
      awk '{ print $12 + $13 } END { if (NR == 0) print 0 }')))
  done
  awk -v t="$ticks" -v hz="$clock_ticks" 'BEGIN { printf "%.2f", t / hz }'
}
psql_on() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
server_label() {
  case "$1" in
    stock) echo "stock PostgreSQL 15" ;;
    local) echo "skype-etl local default" ;;
    ceiling) echo "fsync=off (ceiling)" ;;
  esac
}
durable_rows=()  # kind|size|messages|wall|wal|data bytes|server cpu|client cpu|settings
# durable_run KIND SIZE DB FILE REPORT: `skype-etl run FILE` (parallel, default options) into
# a fresh database DB on server KIND: stock (the --stock server), local (a new local default
# database, `skype-etl db start --data-dir`, its database skype; DB unused) or ceiling (the
# fsync=off server). Appends a row to durable_rows; sets durable_seconds (wall seconds).
durable_run() {
  local kind=$1 size=$2 db=$3 file=$4 report=$5 conninfo data_dir run_args=() label
  label="$kind-${size}M"
  case "$kind" in
    stock | ceiling)
      if [[ "$kind" == stock ]]; then
        conninfo=$stock_conninfo
        data_dir="$stock_dir/data"
      else
        conninfo=$ceiling_conninfo
        data_dir="$pg_dir/data"
      fi
      psql_on "$conninfo dbname=postgres" "DROP DATABASE IF EXISTS $db WITH (FORCE)"
      psql_on "$conninfo dbname=postgres" "CREATE DATABASE $db TEMPLATE template0 ENCODING 'UTF8'"
      conninfo="$conninfo dbname=$db"
      run_args=(--db "$conninfo")
      ;;
    local)
      if [[ -e "$local_dir/PG_VERSION" ]]; then
        "$skype_etl" db stop --data-dir "$local_dir" >&2
        rm -rf -- "$local_dir"
      fi
      conninfo=$(env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGSERVICE -u DATABASE_URL \
        "$skype_etl" db start --data-dir "$local_dir" 2>"$work/logs/$label-db-start.log")
      data_dir=$local_dir
      run_args=(--data-dir "$local_dir")
      ;;
  esac
  psql_on "$conninfo" "CHECKPOINT"
  local settings lsn cpu0 cpu1 t0 t1 wal bytes client
  settings=$(psql_on "$conninfo" "SELECT string_agg(name || '=' || current_setting(name), ' '
    ORDER BY name) FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit',
    'full_page_writes', 'shared_buffers', 'maintenance_work_mem', 'max_wal_size', 'wal_level',
    'checkpoint_timeout', 'wal_compression', 'max_parallel_maintenance_workers')")
  lsn=$(psql_on "$conninfo" "SELECT pg_current_wal_lsn()")
  cpu0=$(server_cpu_seconds "$data_dir")
  log "$label: skype-etl run $(basename "$file") ${run_args[*]}"
  t0=$(now)
  if ! env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE -u PGSERVICE -u DATABASE_URL \
    /usr/bin/time -f '%U %S' -o "$work/logs/$label.time" \
    "$skype_etl" run "$file" "${run_args[@]}" --report "$report" >"$work/logs/$label.log" 2>&1; then
    log "$label: skype-etl run failed:"
    tail -n 20 "$work/logs/$label.log" >&2
    exit 1
  fi
  t1=$(now)
  sleep 0.2  # the postmaster reaps the run's backends: their CPU moves to its cutime
  cpu1=$(server_cpu_seconds "$data_dir")
  wal=$(psql_on "$conninfo" "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn')::bigint")
  bytes=$(psql_on "$conninfo" "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM
    pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'skype' AND
    c.relkind IN ('r', 'm')")
  client=$(tail -n 1 "$work/logs/$label.time" | awk '{ printf "%.2f", $1 + $2 }')
  local messages
  messages=$(kv_field "$("$pipeline_bench" --summarize-report "$report")" messages)
  durable_rows+=("$kind|$size|$messages|$(elapsed "$t0" "$t1")|$wal|$bytes|$(awk -v a="$cpu0" \
    -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')|$client|$settings")
  durable_seconds=$(elapsed "$t0" "$t1")
}
log "measuring the disk's sequential write bandwidth (dd oflag=direct conv=fdatasync)"
write_bandwidth=$(disk_write_bandwidth)
log "disk: $(awk -v b="$write_bandwidth" 'BEGIN { printf "%.0f", b / 1e6 }') MB/s"

details=()  # raw lines for the results file: where the time goes
rows=()     # stage|messages|seconds|MB/s|peak RssAnon MB

# add_row STAGE MESSAGES SECONDS FILE_BYTES PEAK_MB
add_row() {
  local peak=$5
  [[ "$peak" == - ]] || peak=$(awk -v p="$peak" 'BEGIN { printf "%.1f", p }')
  rows+=("$1|$2|$3|$4|$peak")
}

# timed_run LABEL DB FILE REPORT [skype-etl options...]: `skype-etl run` into database DB as
# it is (after a checkpoint); prints the wall seconds.
timed_run() {
  local label=$1 db=$2 file=$3 report=$4
  shift 4
  checkpoint
  local t0 t1
  log "$label: skype-etl run $(basename "$file") $*"
  t0=$(now)
  if ! "$skype_etl" run "$file" --db "dbname=$db" --report "$report" "$@" \
    >"$work/logs/$label.log" 2>&1; then
    log "$label: skype-etl run failed:"
    tail -n 20 "$work/logs/$label.log" >&2
    exit 1
  fi
  t1=$(now)
  elapsed "$t0" "$t1"
}

# run_e2e LABEL DB FILE REPORT [skype-etl options...]: timed_run into a fresh database DB.
run_e2e() {
  fresh_db "$2"
  timed_run "$@"
}

# Tables of schema skype in an order that satisfies the foreign keys; tables this script
# does not know (a later migration) follow. Partitions are left out: their rows are their
# partitioned table's.
skype_tables() {
  local known="schema_version accounts exports conversations participants messages attachments"
  local all
  all=$(psql -X -At -d "$1" -c "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON
    n.oid = c.relnamespace WHERE n.nspname = 'skype' AND c.relkind IN ('r', 'p') AND
    NOT c.relispartition")
  for t in $known; do grep -qx "$t" <<<"$all" && echo "$t"; done
  for t in $all; do grep -qw "$t" <<<"$known" || echo "$t"; done
}
# Stored (not generated) columns of a table, for \copy's column list.
copy_columns() {
  psql -X -At -d "$1" -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
    FROM pg_attribute WHERE attrelid = 'skype.$2'::regclass AND attnum > 0
    AND NOT attisdropped AND attgenerated = ''"
}

e2e_summaries=()  # size|seconds|messages|peak_mb
parallel_summary=''
sequential_summary=''
copy_seconds=''
stock_copy_seconds=''
parallel_seconds=''
sequential_seconds=''
second_row=''  # size|seconds|messages|peak_mb|first account's seconds
later_row=''   # size|seconds|messages|peak_mb|new|unchanged|seconds into an empty database
format_rows=() # format|file bytes|seconds|messages|peak_mb, the second account's size
export_rows=() # format|exit|messages|seconds|messages/s|output MB|peak_mb: export of that size
largest_messages=0
largest_file_bytes=0

for size in $sizes; do
  count=$(count_of "$size")
  export_file="$work/export-${size}M.tar"
  log "generating ${size}M messages (seed $seed)"
  generated=$("$generate" --messages "$count" --seed "$seed" --format tar -o "$export_file")
  details+=("generate ${size}M: $generated")
  file_bytes=$(stat -c %s "$export_file")

  if [[ "$size" == "$largest" ]]; then
    largest_file_bytes=$file_bytes
    # Stages alone, each in a child process of its own (own peak RssAnon).
    log "pipeline_bench extract, transform on ${size}M"
    checkpoint
    lines=$("$pipeline_bench" "$export_file" --stages extract,transform)
    while IFS= read -r line; do
      details+=("pipeline_bench: $line")
      stage=$(json_field "$line" stage)
      add_row "$stage" "$(json_field "$line" messages)" "$(json_field "$line" seconds)" \
        "$file_bytes" "$(json_field "$line" peak_rss_anon_mb)"
      if [[ "$stage" == transform ]]; then
        transform_only=$(json_field "$line" transform_seconds)
        add_row "  transform alone" "$(json_field "$line" messages)" "$transform_only" \
          "$file_bytes" "-"
      fi
    done <<<"$lines"
    log "pipeline_bench load on ${size}M"
    fresh_db bench_load
    checkpoint
    line=$("$pipeline_bench" "$export_file" --stages load --db dbname=bench_load)
    details+=("pipeline_bench: $line")
    add_row "load" "$(json_field "$line" messages)" "$(json_field "$line" seconds)" \
      "$file_bytes" "$(json_field "$line" peak_rss_anon_mb)"
    add_row "  load: COPY (load_batch)" "$(json_field "$line" messages)" \
      "$(json_field "$line" copy_seconds)" "$file_bytes" "-"
    add_row "  load: merge + commit" "$(json_field "$line" messages)" \
      "$(json_field "$line" merge_seconds)" "$file_bytes" "-"
    drop_db bench_load
  fi

  durable_run stock "$size" bench_durable "$export_file" "$work/report-stock-${size}M.json"
  psql_on "$stock_conninfo dbname=postgres" "DROP DATABASE bench_durable WITH (FORCE)"
  durable_run local "$size" - "$export_file" "$work/report-local-${size}M.json"
  report="$work/report-parallel-${size}M.json"
  checkpoint
  durable_run ceiling "$size" bench_parallel "$export_file" "$report"
  seconds=$durable_seconds
  summary=$("$pipeline_bench" --summarize-report "$report")
  details+=("e2e parallel ${size}M: wall_seconds=$seconds $summary")
  messages=$(kv_field "$summary" messages)
  peak=$(kv_field "$summary" peak_rss_anon_mb)
  e2e_summaries+=("$size|$seconds|$messages|$peak")

  if [[ "$size" == "$second_size" ]]; then
    # The first account's export, then (timed) another account's of the same size.
    second_file="$work/export-${size}M-second.tar"
    generated=$("$generate" --messages "$count" --seed $((seed + 1)) --format tar \
      --user-id 8:live:.cid.fedcba9876543210 -o "$second_file")
    details+=("generate ${size}M, second account: $generated")
    run_e2e "first-account-${size}M" bench_second "$export_file" \
      "$work/report-first-${size}M.json" >/dev/null
    # `skype-etl export` of that database (one account) in each format (issue 19). First
    # the autovacuum of the loads before (this database's, the local server's 1M) must end:
    # it takes a core for seconds, which the export would be timed against.
    wait_for_autovacuum
    checkpoint
    while read -r line; do
      details+=("export of the ${size}M database: $line")
      [[ "$line" == export\ * ]] || continue
      export_rows+=("$(awk '{ print $2 }' <<<"$line")|$(kv_field "$line" exit)|$(kv_field \
        "$line" messages)|$(kv_field "$line" seconds)|$(kv_field "$line" messages_per_s)|$(kv_field \
        "$line" output_mb)|$(kv_field "$line" peak_rss_anon_mb)")
    done < <("$repo_root/benchmarks/export_bench.sh" "$skype_etl" dbname=bench_second \
      html txt csv json)
    second_seconds=$(timed_run "second-account-${size}M" bench_second "$second_file" \
      "$work/report-second-${size}M.json")
    second_summary=$("$pipeline_bench" --summarize-report "$work/report-second-${size}M.json")
    details+=("e2e parallel ${size}M, second account: wall_seconds=$second_seconds $second_summary")
    second_row="${size}|$second_seconds|$(kv_field "$second_summary" messages)|$(kv_field \
      "$second_summary" peak_rss_anon_mb)|$seconds"
    # The first account's next export: its messages again, and 3% newer ones.
    later_file="$work/export-${size}M-later.tar"
    generated=$("$generate" --messages "$count" --seed "$seed" --newer 3 --format tar \
      -o "$later_file")
    details+=("generate ${size}M, later export of the first account: $generated")
    later_report="$work/report-later-${size}M.json"
    later_seconds=$(timed_run "later-export-${size}M" bench_second "$later_file" "$later_report")
    later_summary=$("$pipeline_bench" --summarize-report "$later_report")
    later_counts=''
    # The report's exports[0].messages (the first of each name in the file).
    for key in new updated unchanged; do
      later_counts+=" $key=$(json_field "$(<"$later_report")" "$key" | tr -d ' ')"
    done
    later_line="e2e parallel ${size}M, later export: wall_seconds=$later_seconds$later_counts"
    details+=("$later_line $later_summary")
    later_row="${size}|$later_seconds|$(kv_field "$later_summary" messages)|$(kv_field \
      "$later_summary" peak_rss_anon_mb)|$(kv_field "$later_counts" new)|$(kv_field \
      "$later_counts" unchanged)"
    # The same later export into an empty database: a later export must not cost more than
    # loading it first (issue 18).
    later_fresh_seconds=$(run_e2e "later-first-load-${size}M" bench_later_first "$later_file" \
      "$work/report-later-first-${size}M.json")
    details+=("e2e parallel ${size}M, later export into an empty database: wall_seconds=$later_fresh_seconds")
    later_row+="|$later_fresh_seconds"
    drop_db bench_later_first
    drop_db bench_second
    rm -f -- "$second_file" "$later_file"

    # The same messages as a bare messages.json and as a gzip'd tar: private memory must
    # stay flat for every input format (issue 18; a .tar.gz is inflated in bounded steps
    # into an unlinked temporary file).
    local_format() {
      local name=$1 file=$2 fsecs fsummary
      fsecs=$(run_e2e "format-$name-${size}M" bench_format "$file" \
        "$work/report-format-$name-${size}M.json")
      fsummary=$("$pipeline_bench" --summarize-report "$work/report-format-$name-${size}M.json")
      details+=("e2e parallel ${size}M as $name: wall_seconds=$fsecs $fsummary")
      format_rows+=("$name|$(stat -c %s "$file")|$fsecs|$(kv_field "$fsummary" messages)|$(kv_field \
        "$fsummary" peak_rss_anon_mb)")
      drop_db bench_format
    }
    format_rows+=("tar|$(stat -c %s "$export_file")|$seconds|$messages|$peak")
    json_file="$work/export-${size}M.json"
    "$generate" --messages "$count" --seed "$seed" --format json -o "$json_file" >/dev/null
    local_format json "$json_file"
    rm -f -- "$json_file"
    gzip -1 -c "$export_file" >"$work/export-${size}M.tar.gz"
    local_format tar.gz "$work/export-${size}M.tar.gz"
    rm -f -- "$work/export-${size}M.tar.gz"
  fi

  if [[ "$size" == "$largest" ]]; then
    largest_messages=$messages
    parallel_seconds=$seconds
    parallel_summary=$summary
    add_row "end-to-end parallel" "$messages" "$seconds" "$file_bytes" "$peak"

    # The \copy ceiling: the final rows of the parallel run, into the same schema.
    log "dumping the final rows and the schema of the parallel run"
    mkdir -p "$work/rows"
    pg_dump --schema-only --no-owner -d bench_parallel -f "$work/schema.sql"
    tables=$(skype_tables bench_parallel)
    for t in $tables; do
      psql -X -q -v ON_ERROR_STOP=1 -d bench_parallel \
        -c "\\copy (SELECT $(copy_columns bench_parallel "$t") FROM skype.$t) TO '$work/rows/$t.copy'"
    done
    drop_db bench_parallel
    fresh_db bench_copy
    psql -X -q -v ON_ERROR_STOP=1 -d bench_copy -f "$work/schema.sql" >/dev/null
    declare -A columns=() row_counts=()
    for t in $tables; do
      columns[$t]=$(copy_columns bench_copy "$t")
      row_counts[$t]=$(wc -l <"$work/rows/$t.copy")
    done
    checkpoint
    log "timing psql \\copy of every table"
    copy_t0=$(now)
    for t in $tables; do
      t0=$(now)
      psql -X -q -v ON_ERROR_STOP=1 -d bench_copy \
        -c "\\copy skype.$t (${columns[$t]}) FROM '$work/rows/$t.copy'"
      t1=$(now)
      details+=("psql \\copy skype.$t: rows=${row_counts[$t]} bytes=$(stat -c %s "$work/rows/$t.copy") seconds=$(elapsed "$t0" "$t1")")
    done
    copy_t1=$(now)
    copy_seconds=$(elapsed "$copy_t0" "$copy_t1")
    add_row "bare psql \\copy" "$messages" "$copy_seconds" "$file_bytes" "-"
    drop_db bench_copy
    # The same on the stock server: what its end-to-end row compares with (issue 18's target
    # for stock PostgreSQL: at most 0.5x this).
    psql_on "$stock_conninfo dbname=postgres" "DROP DATABASE IF EXISTS bench_copy WITH (FORCE)"
    psql_on "$stock_conninfo dbname=postgres" \
      "CREATE DATABASE bench_copy TEMPLATE template0 ENCODING 'UTF8'"
    psql -X -q -v ON_ERROR_STOP=1 -d "$stock_conninfo dbname=bench_copy" -f "$work/schema.sql" \
      >/dev/null
    psql_on "$stock_conninfo dbname=bench_copy" "CHECKPOINT"
    log "timing psql \\copy of every table on the stock server"
    copy_t0=$(now)
    for t in $tables; do
      psql -X -q -v ON_ERROR_STOP=1 -d "$stock_conninfo dbname=bench_copy" \
        -c "\\copy skype.$t (${columns[$t]}) FROM '$work/rows/$t.copy'"
    done
    copy_t1=$(now)
    stock_copy_seconds=$(elapsed "$copy_t0" "$copy_t1")
    add_row "bare psql \\copy (stock)" "$messages" "$stock_copy_seconds" "$file_bytes" "-"
    psql_on "$stock_conninfo dbname=postgres" "DROP DATABASE bench_copy WITH (FORCE)"
    rm -rf -- "$work/rows" "$work/schema.sql"

    report_seq="$work/report-sequential-${size}M.json"
    sequential_seconds=$(run_e2e "sequential-${size}M" bench_sequential "$export_file" \
      "$report_seq" --sequential)
    sequential_summary=$("$pipeline_bench" --summarize-report "$report_seq")
    details+=("e2e sequential ${size}M: wall_seconds=$sequential_seconds $sequential_summary")
    add_row "end-to-end --sequential" "$(kv_field "$sequential_summary" messages)" \
      "$sequential_seconds" "$file_bytes" "$(kv_field "$sequential_summary" peak_rss_anon_mb)"
    drop_db bench_sequential
  else
    drop_db bench_parallel
  fi
  ((keep)) || rm -f -- "$export_file"
done

# --- the table ---------------------------------------------------------------------------
machine() {
  local cpu mem
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ { printf "%.1f GB", $2 / 1024 / 1024 }' /proc/meminfo)
  echo "machine: $(nproc) cores ($cpu), $mem RAM, $(uname -sr)"
  echo "server: $(psql -X -At -d postgres -c 'SHOW server_version') (scripts/pg-server.sh:" \
    "$(psql -X -At -d postgres -c "SELECT string_agg(name || '=' ||
      current_setting(name), ' ' ORDER BY name) FROM pg_settings WHERE name IN ('fsync',
      'synchronous_commit', 'full_page_writes', 'shared_buffers', 'work_mem',
      'maintenance_work_mem', 'max_wal_size', 'wal_level', 'max_parallel_maintenance_workers',
      'checkpoint_timeout')"))"
}

render_durable() {
  echo "end-to-end on durable servers (skype-etl run, parallel, default options; the fsync=off"
  echo "row is a ceiling, not a result). Write floor at $(awk -v b="$write_bandwidth" \
    'BEGIN { printf "%.0f", b / 1e6 }') MB/s (dd oflag=direct conv=fdatasync, this run), CPU floor over $cores cores:"
  printf '  %-24s %5s %9s %7s %7s %8s %8s %8s %7s %7s %6s\n' server size messages wall_s \
    WAL_MB data_MB srvCPU_s cliCPU_s cpu_fl wr_fl ratio
  local row kind size messages wall wal bytes server client settings
  for row in "${durable_rows[@]}"; do
    IFS='|' read -r kind size messages wall wal bytes server client settings <<<"$row"
    awk -v k="$(server_label "$kind")" -v z="${size}M" -v m="$messages" -v w="$wall" \
      -v wal="$wal" -v b="$bytes" -v s="$server" -v c="$client" -v n="$cores" \
      -v bw="$write_bandwidth" 'BEGIN {
        cf = (s + c) / n; wf = (wal + b) / bw; f = (cf > wf ? cf : wf)
        printf "  %-24s %5s %9d %7.2f %7.0f %8.0f %8.2f %8.2f %7.2f %7.2f %6.2f\n", k, z, m, w,
          wal / 1e6, b / 1e6, s, c, cf, wf, (f > 0 ? w / f : 0) }'
  done
  echo "  (ratio: wall / max(CPU floor, write floor); issue 18's target <= 1.3)"
  local size_seen='' local_wall ceiling_wall
  for row in "${durable_rows[@]}"; do
    IFS='|' read -r kind size _ <<<"$row"
    # Whole sizes only: "5" is a word of "0.5" to grep -w.
    [[ "$size_seen " == *" $size "* ]] && continue
    size_seen+=" $size"
    local_wall='' ceiling_wall=''
    local r k z w
    for r in "${durable_rows[@]}"; do
      IFS='|' read -r k z _ w _ <<<"$r"
      [[ "$z" == "$size" ]] || continue
      [[ "$k" == local ]] && local_wall=$w
      [[ "$k" == ceiling ]] && ceiling_wall=$w
    done
    [[ -n "$local_wall" && -n "$ceiling_wall" ]] || continue
    awk -v z="${size}M" -v l="$local_wall" -v c="$ceiling_wall" 'BEGIN {
      r = l / c; printf "  %s: local default / fsync=off ceiling wall time: %.2f (target <= 1.15: %s)\n",
        z, r, (r <= 1.15 ? "met" : "NOT met") }'
  done
  echo "  server settings of each row:"
  for row in "${durable_rows[@]}"; do
    IFS='|' read -r kind size _ _ _ _ _ _ settings <<<"$row"
    printf '    %-24s %5s %s\n' "$(server_label "$kind")" "${size}M" "$settings"
  done
}

render() {
  echo "skype-etl benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), git $(git -C "$repo_root" \
    rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo_root" diff --quiet \
    2>/dev/null || echo ' (with uncommitted changes)')"
  echo "command: $command_line"
  machine
  echo "export: generated tar, seed $seed, ${largest}M messages, $largest_file_bytes bytes;" \
    "batch size 1000 (default)"
  echo
  render_durable
  echo
  printf '%-26s %10s %9s %12s %8s %16s\n' stage messages seconds messages/s MB/s \
    "peak RssAnon MB"
  local row stage messages seconds bytes peak rate mbs
  for row in "${rows[@]}"; do
    IFS='|' read -r stage messages seconds bytes peak <<<"$row"
    rate=$(awk -v m="$messages" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')
    mbs=$(awk -v b="$bytes" -v s="$seconds" 'BEGIN { printf "%.1f", (s > 0 ? b / s / 1e6 : 0) }')
    printf '%-26s %10s %9.2f %12s %8s %16s\n' "$stage" "$messages" "$seconds" "$rate" "$mbs" \
      "$peak"
  done
  echo
  echo "end-to-end parallel by export size:"
  printf '  %-8s %10s %9s %12s %16s\n' size messages seconds messages/s "peak RssAnon MB"
  local e size
  for e in "${e2e_summaries[@]}"; do
    IFS='|' read -r size seconds messages peak <<<"$e"
    rate=$(awk -v m="$messages" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')
    printf '  %-8s %10s %9.2f %12s %16s\n' "${size}M" "$messages" "$seconds" "$rate" "$peak"
  done
  if [[ -n "$second_row" ]]; then
    local first_seconds
    IFS='|' read -r size seconds messages peak first_seconds <<<"$second_row"
    rate=$(awk -v m="$messages" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')
    printf '  %-8s %10s %9.2f %12s %16s  (a second account, beside the first: %.2fx the first'"'"'s time)\n' \
      "${size}M" "$messages" "$seconds" "$rate" "$peak" \
      "$(awk -v a="$seconds" -v b="$first_seconds" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
  fi
  if [[ -n "$later_row" ]]; then
    local fresh unchanged empty_seconds
    IFS='|' read -r size seconds messages peak fresh unchanged empty_seconds <<<"$later_row"
    rate=$(awk -v m="$messages" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')
    printf '  %-8s %10s %9.2f %12s %16s  (the first account'"'"'s later export: %s new, %s unchanged)\n' \
      "${size}M+3%" "$messages" "$seconds" "$rate" "$peak" "$fresh" "$unchanged"
    awk -v a="$seconds" -v b="$empty_seconds" 'BEGIN { r = (b > 0 ? a / b : 0);
      printf "  later export / the same export into an empty database (%.2f s): %.2f (target <= 1: %s)\n",
        b, r, (r <= 1 ? "met" : "NOT met") }'
  fi
  if ((${#format_rows[@]} > 0)); then
    echo
    echo "end-to-end parallel by input format (${second_size}M messages, same export):"
    printf '  %-8s %12s %9s %12s %16s\n' format bytes seconds messages/s "peak RssAnon MB"
    local f fbytes fmax=0 fmin=0 name
    for f in "${format_rows[@]}"; do
      IFS='|' read -r name fbytes seconds messages peak <<<"$f"
      rate=$(awk -v m="$messages" -v s="$seconds" 'BEGIN { printf "%.0f", (s > 0 ? m / s : 0) }')
      printf '  %-8s %12s %9.2f %12s %16s\n' "$name" "$fbytes" "$seconds" "$rate" "$peak"
      fmax=$(awk -v a="$fmax" -v b="$peak" 'BEGIN { print (b > a ? b : a) }')
      fmin=$(awk -v a="$fmin" -v b="$peak" 'BEGIN { print (a == 0 || b < a ? b : a) }')
    done
    awk -v a="$fmax" -v b="$fmin" 'BEGIN { printf "  peak RssAnon largest/smallest across formats: %.2f (target: under 32 MB each: %s)\n",
      (b > 0 ? a / b : 0), (a < 32 ? "met" : "NOT met") }'
  fi
  if ((${#export_rows[@]} > 0)); then
    echo
    echo "export of the ${second_size}M database (skype-etl export DIR --format F, one account):"
    printf '  %-8s %10s %9s %12s %10s %16s\n' format messages seconds messages/s "output MB" \
      "peak RssAnon MB"
    local x xformat xrc xmessages xseconds xrate xmb xpeak html_rate='' xmax=0
    for x in "${export_rows[@]}"; do
      IFS='|' read -r xformat xrc xmessages xseconds xrate xmb xpeak <<<"$x"
      printf '  %-8s %10s %9.2f %12s %10s %16s%s\n' "$xformat" "$xmessages" "$xseconds" "$xrate" \
        "$xmb" "$xpeak" "$([[ "$xrc" == 0 ]] || echo "  (FAILED: exit $xrc)")"
      [[ "$xformat" == html ]] && html_rate=$xrate
      xmax=$(awk -v a="$xmax" -v b="$xpeak" 'BEGIN { print (b > a ? b : a) }')
    done
    awk -v r="${html_rate:-0}" 'BEGIN { printf "  html export messages/s: %.0f  (target >= 200000: %s)\n",
      r, (r >= 200000 ? "met" : "NOT met") }'
    awk -v m="$xmax" 'BEGIN { printf "  largest peak RssAnon: %.1f MB  (target < 64: %s)\n", m,
      (m < 64 ? "met" : "NOT met") }'
  fi
  echo
  echo "ratios (${largest}M messages):"
  awk -v p="$parallel_seconds" -v c="$copy_seconds" 'BEGIN {
    r = p / c; printf "  e2e parallel / bare \\copy time:      %6.2f  (target <= 1.25: %s)\n",
      r, (r <= 1.25 ? "met" : "NOT met") }'
  awk -v m="$largest_messages" -v p="$parallel_seconds" -v py="$python_messages_per_second" \
    'BEGIN { r = m / p / py; printf "  e2e messages/s / %d (Python):      %6.1f  (target >= 100: %s)\n",
      py, r, (r >= 100 ? "met" : "NOT met") }'
  local stock_seconds='' r k z w
  for r in "${durable_rows[@]}"; do
    IFS='|' read -r k z _ w _ <<<"$r"
    [[ "$k" == stock && "$z" == "$largest" ]] && stock_seconds=$w
  done
  awk -v p="$stock_seconds" -v c="$stock_copy_seconds" 'BEGIN {
    r = p / c; printf "  stock server: e2e / bare \\copy time:  %6.2f  (target <= 0.5: %s)\n",
      r, (r <= 0.5 ? "met" : "NOT met") }'
  awk -v s="$sequential_seconds" -v p="$parallel_seconds" 'BEGIN {
    r = s / p; printf "  sequential / parallel time:           %6.2f  (target >= 1.5: %s)\n",
      r, (r >= 1.5 ? "met" : "NOT met") }'
  local peaks="" max_peak=0 first_peak="" last_peak=""
  for e in "${e2e_summaries[@]}"; do
    IFS='|' read -r size seconds messages peak <<<"$e"
    peaks+=" ${size}M=${peak}"
    [[ -n "$first_peak" ]] || first_peak=$peak
    last_peak=$peak
    max_peak=$(awk -v a="$max_peak" -v b="$peak" 'BEGIN { print (b > a ? b : a) }')
  done
  awk -v peaks="$peaks" -v max="$max_peak" -v first="$first_peak" -v last="$last_peak" 'BEGIN {
    printf "  peak RssAnon MB by size:%s  (target < 128: %s; largest/smallest %.2f)\n",
      peaks, (max < 128 ? "met" : "NOT met"), (first > 0 ? last / first : 0) }'
  echo
  echo "phases of the parallel run (seconds from the first phase's start):"
  local name
  for name in extract transform load; do
    printf '  %-9s %8s .. %8s\n' "$name" "$(kv_field "$parallel_summary" "${name}_start")" \
      "$(kv_field "$parallel_summary" "${name}_end")"
  done
  local overlap
  overlap=$(kv_field "$parallel_summary" all_three_overlap_seconds)
  awk -v o="$overlap" 'BEGIN { printf "  all three phases running at once for %s s: %s\n", o,
    (o > 0 ? "overlapped" : "NOT overlapped") }'
  echo "phases of the --sequential run:"
  for name in extract transform load; do
    printf '  %-9s %8s .. %8s\n' "$name" "$(kv_field "$sequential_summary" "${name}_start")" \
      "$(kv_field "$sequential_summary" "${name}_end")"
  done
  echo
  echo "details:"
  local d
  for d in "${details[@]}"; do echo "  $d"; done
}

results_dir="$repo_root/benchmarks/results"
mkdir -p "$results_dir"
suffix=''
((quick == 0)) || suffix=-quick
results_file="$results_dir/$(date +%F)$suffix.txt"
render | tee "$results_file"
log "results written to $results_file"
