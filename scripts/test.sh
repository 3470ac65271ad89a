#!/usr/bin/env bash
# Installs the dependencies, builds skype-etl in Release, starts a private PostgreSQL server
# in a temporary directory, runs every ctest suite (labels unit and db) against it, then
# builds the suites labelled `tsan` with ThreadSanitizer and runs them. Stops the server on
# exit, whatever happens. Exits non-zero when anything fails.
#
# Environment: SKYPE_ETL_BUILD_DIR (default build), SKYPE_ETL_TSAN_BUILD_DIR (default
# build-tsan), both relative to the repository root unless absolute; SKYPE_ETL_JOBS (build
# parallelism, default nproc); SKYPE_ETL_SKIP_INSTALL=1 skips the package check.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
scripts="$repo_root/scripts"
build_dir=${SKYPE_ETL_BUILD_DIR:-build}
tsan_dir=${SKYPE_ETL_TSAN_BUILD_DIR:-build-tsan}
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"
[[ "$tsan_dir" = /* ]] || tsan_dir="$repo_root/$tsan_dir"
jobs=${SKYPE_ETL_JOBS:-$(nproc 2>/dev/null || echo 2)}

step() { echo; echo "==> test.sh: $*"; }

if [[ "${SKYPE_ETL_SKIP_INSTALL:-}" != 1 ]]; then
  step "installing missing packages (scripts/install-deps.sh)"
  bash "$scripts/install-deps.sh"
fi

step "building Release in $build_dir"
SKYPE_ETL_JOBS=$jobs bash "$scripts/build.sh" Release "$build_dir"

step "starting a private PostgreSQL server"
pg_dir=$(mktemp -d /tmp/skype-etl-test-pg.XXXXXX)
stop_server() {
  # Quiet: ctest's summary must stay the last thing the script prints.
  bash "$scripts/pg-server.sh" stop "$pg_dir" >/dev/null 2>&1 || true
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash "$scripts/pg-server.sh" start "$pg_dir"
unset DATABASE_URL PGSERVICE PGSERVICEFILE PGPASSWORD PGPASSFILE PGOPTIONS PGHOSTADDR \
  PGSSLMODE PGAPPNAME
eval "$(bash "$scripts/pg-server.sh" env "$pg_dir")"
export PGHOST PGPORT PGUSER PGDATABASE
echo "PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER PGDATABASE=$PGDATABASE"

# The tsan suites are known before the ThreadSanitizer tree exists: the same CMake lists
# both trees, and a test's executable is named like the test (skype_etl_add_test).
mapfile -t tsan_tests < <(ctest --test-dir "$build_dir" -N -L tsan |
  sed -n 's/^ *Test *#[0-9]*: *\([^ ]*\).*$/\1/p')

step "running all suites (ctest in $build_dir)"
ctest --test-dir "$build_dir" --output-on-failure -j2

if ((${#tsan_tests[@]} == 0)); then
  # Nothing to do: the summary just printed stays the final output.
  exit 0
fi

step "building the ${#tsan_tests[@]} tsan suite(s) with ThreadSanitizer in $tsan_dir: ${tsan_tests[*]}"
generator=()
if [[ ! -f "$tsan_dir/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
cmake -S "$repo_root" -B "$tsan_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="-fsanitize=thread" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  -DSKYPE_ETL_BUILD_BENCHMARKS=OFF -DSKYPE_ETL_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$tsan_dir" -j "$jobs" --target "${tsan_tests[@]}"

step "running the tsan suites under ThreadSanitizer (ctest -L tsan in $tsan_dir)"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
  ctest --test-dir "$tsan_dir" --output-on-failure -j2 -L tsan
