#!/usr/bin/env bash
# Usage: scripts/fuzz.sh [SECONDS] [FUZZER...]
# Builds the libFuzzer targets of tests/fuzz (clang++-14 with ASan and UBSan) in a tree of
# their own, writes their seed corpus (from the tests' fixtures and ../shared/samples), then
# runs each FUZZER (default: all of them, one after another) for SECONDS (default 60).
# Exits non-zero when any of them crashed (ASan, UBSan, a broken invariant, a leak, an input
# that takes too long or too much memory), after printing each report and how to reproduce it.
# See tests/fuzz/README.md for longer runs.
#
# In the tree (SKYPE_ETL_FUZZ_BUILD_DIR, default build-fuzz, relative to the repository root
# unless absolute), fuzz/ holds, per fuzzer:
#   seeds/<fuzzer>/    the seed corpus, written anew by every run
#   corpus/<fuzzer>/   the inputs fuzzing found interesting, kept from run to run
#   crashes/<fuzzer>/  crash-*, leak-*, timeout-*, oom-* inputs (reproduce: <fuzzer> FILE)
#   logs/<fuzzer>.log  libFuzzer's output of the last run
# Environment: SKYPE_ETL_JOBS (build parallelism, default nproc); SKYPE_ETL_FUZZ_RSS_MB
# (memory limit of one input, default 2048); SKYPE_ETL_FUZZ_ARGS (more libFuzzer flags,
# e.g. "-jobs=2 -workers=2").
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
if [[ ! "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [FUZZER...]" >&2
  exit 2
fi
fuzzers=("${@:2}")
((${#fuzzers[@]} > 0)) || fuzzers=(export_reader_fuzzer markup_fuzzer tar_fuzzer)
build_dir=${SKYPE_ETL_FUZZ_BUILD_DIR:-build-fuzz}
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"
jobs=${SKYPE_ETL_JOBS:-$(nproc 2>/dev/null || echo 2)}
rss_mb=${SKYPE_ETL_FUZZ_RSS_MB:-2048}
read -r -a extra_args <<<"${SKYPE_ETL_FUZZ_ARGS:-}"

compiler=$(command -v clang++-14 || command -v clang++ || true)
if [[ -z "$compiler" ]]; then
  echo "fuzz: clang++-14 not found: scripts/install-deps.sh installs it" >&2
  exit 1
fi

generator=()
if [[ ! -f "$build_dir/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
echo "fuzz: configuring and building the fuzzers in $build_dir"
cmake -S "$repo_root" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$compiler" -DSKYPE_ETL_BUILD_FUZZERS=ON \
  -DSKYPE_ETL_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build_dir" -j "$jobs" --target "${fuzzers[@]}" skype-etl-fuzz-seeds

work="$build_dir/fuzz"
"$build_dir/tests/fuzz/skype-etl-fuzz-seeds" "$work/seeds"

# A UBSan report stops the input (the tree is built with -fno-sanitize-recover=undefined):
# print where it came from.
export UBSAN_OPTIONS="print_stacktrace=1 ${UBSAN_OPTIONS:-}"
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" && -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
# The export reader's fuzzer writes each input to a file (InputSource opens paths): keep
# those, and what a crash leaves behind, inside the tree.
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR"
passed=0
failed=()
for fuzzer in "${fuzzers[@]}"; do
  mkdir -p "$work/corpus/$fuzzer" "$work/crashes/$fuzzer" "$work/logs"
  log="$work/logs/$fuzzer.log"
  echo "fuzz: running $fuzzer for ${seconds} s (log: $log)"
  dict=()
  if [[ -f "$repo_root/tests/fuzz/$fuzzer.dict" ]]; then
    dict=(-dict="$repo_root/tests/fuzz/$fuzzer.dict")
  fi
  # The first folder receives what fuzzing finds; the seeds are only read.
  if "$build_dir/tests/fuzz/$fuzzer" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" \
    -timeout=20 -print_final_stats=1 -artifact_prefix="$work/crashes/$fuzzer/" "${dict[@]}" \
    "${extra_args[@]}" "$work/corpus/$fuzzer" "$work/seeds/$fuzzer" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "fuzz: $fuzzer: no crash ($(grep -E '^Done [0-9]+ runs' "$log" || echo 'done'))"
  else
    failed+=("$fuzzer")
    echo "fuzz: $fuzzer FAILED; the end of its log:"
    tail -n 60 "$log"
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [[ -n "$crash" ]]; then
      echo "fuzz: reproduce with: $build_dir/tests/fuzz/$fuzzer $crash"
    fi
  fi
done

echo "fuzz: ${#fuzzers[@]} fuzzer(s) ran ${seconds} s each; crash inputs are kept in $work/crashes"
echo "fuzz: $passed passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
