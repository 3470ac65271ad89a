#!/usr/bin/env bash
# Installs the dependencies, builds skype-etl in Release, starts a private PostgreSQL server
# in a temporary directory, runs every ctest suite (labels unit and db) against it, checks
# the package as others use it (scripts/package-test.sh: install, find_package and
# pkg-config consumers, the .deb; then the same with a shared library), then
# (scripts/sanitize.sh) the suites labelled `tsan` built with ThreadSanitizer and every suite
# built with ASan and UBSan, against the same server, and last (scripts/fuzz.sh) each
# fuzzer for SKYPE_ETL_FUZZ_SECONDS (default 60) under ASan and UBSan. Stops the server on
# exit, whatever happens. Exits non-zero when anything fails, a fuzzer's crash included.
#
# Environment: SKYPE_ETL_BUILD_DIR (default build), SKYPE_ETL_SHARED_BUILD_DIR (default
# build-shared), SKYPE_ETL_TSAN_BUILD_DIR (default
# build-tsan), SKYPE_ETL_ASAN_BUILD_DIR (default build-asan), SKYPE_ETL_FUZZ_BUILD_DIR
# (default build-fuzz), all relative to the repository root unless absolute; SKYPE_ETL_JOBS
# (build parallelism, default nproc); SKYPE_ETL_SKIP_INSTALL=1 skips the package check;
# SKYPE_ETL_FUZZ_SECONDS=0 leaves the fuzzers out.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
scripts="$repo_root/scripts"
build_dir=${SKYPE_ETL_BUILD_DIR:-build}
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"
jobs=${SKYPE_ETL_JOBS:-$(nproc 2>/dev/null || echo 2)}
shared_build_dir=${SKYPE_ETL_SHARED_BUILD_DIR:-build-shared}
[[ "$shared_build_dir" = /* ]] || shared_build_dir="$repo_root/$shared_build_dir"

# Each stage says when it starts (seconds since the script's start), so that a CI log shows
# what each one costs.
step() { echo; echo "==> test.sh: $* (at ${SECONDS} s)"; }

if [[ "${SKYPE_ETL_SKIP_INSTALL:-}" != 1 ]]; then
  step "installing missing packages (scripts/install-deps.sh)"
  bash "$scripts/install-deps.sh"
fi

step "building Release in $build_dir"
SKYPE_ETL_JOBS=$jobs bash "$scripts/build.sh" Release "$build_dir"

step "starting a private PostgreSQL server"
pg_dir=$(mktemp -d /tmp/skype-etl-test-pg.XXXXXX)
stop_server() {
  # Quiet: the last stage's summary must stay the last thing the script prints.
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

step "running all suites (ctest in $build_dir)"
ctest --test-dir "$build_dir" --output-on-failure -j2

step "the package as others use it: install, find_package, pkg-config, .deb (scripts/package-test.sh)"
bash "$scripts/package-test.sh" "$build_dir" static

step "a shared libskype_etl in $shared_build_dir: the same consumers, and only the public API exported"
SKYPE_ETL_JOBS=$jobs SKYPE_ETL_CMAKE_ARGS="-DBUILD_SHARED_LIBS=ON -DSKYPE_ETL_BUILD_TESTS=OFF \
-DSKYPE_ETL_BUILD_BENCHMARKS=OFF -DSKYPE_ETL_BUILD_EXAMPLES=OFF -DSKYPE_ETL_INSTALL=ON" \
  bash "$scripts/build.sh" Release "$shared_build_dir"
bash "$scripts/package-test.sh" "$shared_build_dir" shared

step "ThreadSanitizer: the suites labelled tsan (scripts/sanitize.sh tsan)"
SKYPE_ETL_JOBS=$jobs bash "$scripts/sanitize.sh" tsan

step "AddressSanitizer and UndefinedBehaviorSanitizer: every suite (scripts/sanitize.sh asan)"
SKYPE_ETL_JOBS=$jobs bash "$scripts/sanitize.sh" asan

fuzz_seconds=${SKYPE_ETL_FUZZ_SECONDS:-60}
if ((fuzz_seconds > 0)); then
  # Last: its closing line ("fuzz: N passed, N failed") is then the script's.
  step "fuzzers, ${fuzz_seconds} s each under ASan and UBSan (scripts/fuzz.sh)"
  SKYPE_ETL_JOBS=$jobs bash "$scripts/fuzz.sh" "$fuzz_seconds"
fi
