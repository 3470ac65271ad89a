#!/usr/bin/env bash
# Usage: scripts/sanitize.sh asan|tsan
# Builds test suites with a sanitizer in a build tree of their own and runs them with ctest:
#   asan  every suite, with AddressSanitizer and UndefinedBehaviorSanitizer (a UBSan report
#         fails the suite), in build-asan
#   tsan  the suites labelled `tsan`, with ThreadSanitizer, in build-tsan
# Both use the default compiler (g++), -O1 and line tables. The suites labelled `db` need the
# PostgreSQL server of the PG* environment: scripts/test.sh starts one, then calls this; by
# hand, point PG* at a server of yours (or see scripts/pg-server.sh).
#
# Environment: SKYPE_ETL_ASAN_BUILD_DIR (default build-asan), SKYPE_ETL_TSAN_BUILD_DIR
# (default build-tsan), relative to the repository root unless absolute; SKYPE_ETL_JOBS
# (build parallelism, default nproc).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kind=${1:-}
jobs=${SKYPE_ETL_JOBS:-$(nproc 2>/dev/null || echo 2)}
case "$kind" in
  asan)
    build_dir=${SKYPE_ETL_ASAN_BUILD_DIR:-build-asan}
    flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    link_flags="-fsanitize=address,undefined"
    label=()
    ;;
  tsan)
    build_dir=${SKYPE_ETL_TSAN_BUILD_DIR:-build-tsan}
    flags="-fsanitize=thread"
    link_flags="-fsanitize=thread"
    label=(-L tsan)
    ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan" >&2
    exit 2
    ;;
esac
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"

generator=()
if [[ ! -f "$build_dir/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
# -O1 -g1 (line tables) rather than RelWithDebInfo's -O2 -g: reports keep their files and
# lines, and the suites build in less than half the time (load_tests.cpp with ASan: 90 s at
# -O2 -g, 39 s at -O1 -g1), which matters on CI's two cores.
cmake -S "$repo_root" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$link_flags" \
  -DSKYPE_ETL_BUILD_EXAMPLES=OFF >/dev/null
# Only the suites (and what they run, such as skype-etl): a test's executable is named like
# the test (skype_etl_add_test), and ctest lists the tests of a tree not built yet.
# A test NAME_baseline runs NAME's executable on the scanners' baseline code
# (tests/extract.cmake): its target is NAME.
mapfile -t tests < <(ctest --test-dir "$build_dir" -N "${label[@]}" |
  sed -n 's/^ *Test *#[0-9]*: *\([^ ]*\).*$/\1/p' | sed 's/_baseline$//' | sort -u)
if ((${#tests[@]} == 0)); then
  echo "sanitize: no $kind suite to run"
  exit 0
fi
echo "sanitize: building ${#tests[@]} suite(s) with $flags in $build_dir"
cmake --build "$build_dir" -j "$jobs" --target "${tests[@]}"

echo "sanitize: running them (ctest ${label[*]} in $build_dir)"
suppressions="$repo_root/scripts/sanitizers"
if [[ "$kind" == asan ]]; then
  # LeakSanitizer stays on; the suppressions say what is excluded and why.
  export ASAN_OPTIONS="detect_stack_use_after_return=1 strict_string_checks=1 ${ASAN_OPTIONS:-}"
  export UBSAN_OPTIONS="print_stacktrace=1 suppressions=$suppressions/ubsan.supp ${UBSAN_OPTIONS:-}"
else
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
fi
ctest --test-dir "$build_dir" --output-on-failure -j2 "${label[@]}"
