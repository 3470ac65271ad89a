#!/usr/bin/env bash
# Usage: scripts/run.sh [EXPORT...] [-- extra skype-etl run arguments]
# Installs the missing packages, builds skype-etl in Release and loads the given exports
# (messages.json or Skype's .tar) into PostgreSQL; with no EXPORT, the sample export in
# examples/sample_export/. With no database configured (no --db, PGHOST, PGDATABASE,
# PGSERVICE or DATABASE_URL), skype-etl starts its own local database and says so.
# Exits with skype-etl's exit code.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${SKYPE_ETL_BUILD_DIR:-build}
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"

exports=()
extra=()
while (($# > 0)); do
  if [[ "$1" == "--" ]]; then
    shift
    extra=("$@")
    break
  fi
  exports+=("$1")
  shift
done
if ((${#exports[@]} == 0)); then
  sample="$repo_root/examples/sample_export/messages.json"
  if [[ ! -f "$sample" ]]; then
    echo "run.sh: no EXPORT given and the sample export $sample is missing;" \
      "usage: scripts/run.sh EXPORT [-- skype-etl run options]" >&2
    exit 2
  fi
  exports=("$sample")
  echo "run.sh: no EXPORT given: loading the sample export $sample"
fi

if [[ "${SKYPE_ETL_SKIP_INSTALL:-}" != 1 ]]; then
  echo "==> run.sh: installing missing packages"
  bash "$repo_root/scripts/install-deps.sh"
fi
echo "==> run.sh: building Release in $build_dir"
# Only the command: the tests and benchmarks are scripts/test.sh's business.
bash "$repo_root/scripts/build.sh" Release "$build_dir" skype-etl

skype_etl="$build_dir/skype-etl"
echo "==> run.sh: $skype_etl run ${exports[*]} ${extra[*]}"
status=0
"$skype_etl" run "${exports[@]}" "${extra[@]}" || status=$?

# Tell the user where the rows went and how to look at them.
db_given=0
db_args=()
previous=
for arg in "${extra[@]}"; do
  case "$arg" in --db | --db=*) db_given=1 ;; --data-dir=*) db_args=("$arg") ;; esac
  [[ "$previous" != --data-dir ]] || db_args=(--data-dir "$arg")
  previous=$arg
done
shown=$skype_etl
[[ "$(pwd)" != "$repo_root" ]] || shown="${skype_etl#"$repo_root"/}"
if ((status == 0)); then
  if ((db_given)); then
    echo "run.sh: query it with: psql \"<the connection string you passed to --db>\""
  elif [[ -n "${DATABASE_URL:-}" ]]; then
    echo "run.sh: query it with: psql \"\$DATABASE_URL\""
  elif [[ -n "${PGHOST:-}${PGDATABASE:-}${PGSERVICE:-}" ]]; then
    echo "run.sh: query it with: psql   (it uses the same PG* environment)"
  else
    echo "run.sh: the rows are in skype-etl's local database; query it with:"
    db="$shown db"
    ((${#db_args[@]} == 0)) || db+=$(printf ' %q' "${db_args[@]}")
    echo "  $db psql        (an interactive psql; e.g. $db psql -c 'select count(*) from skype.messages')"
    echo "  $db status      (its connection string, for: psql \"<conninfo>\")"
    echo "  $db stop        (stops the server; the next run starts it again)"
  fi
fi
exit "$status"
