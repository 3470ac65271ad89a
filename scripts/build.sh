#!/usr/bin/env bash
# Usage: scripts/build.sh [BUILD_TYPE] [BUILD_DIR] [TARGET...]
# Configures and builds skype-etl: all targets, or only the given ones. BUILD_TYPE defaults
# to Release; BUILD_DIR to $SKYPE_ETL_BUILD_DIR, else build/ (relative paths are relative to
# the repository root).
# Extra CMake cache settings can be given in SKYPE_ETL_CMAKE_ARGS (whitespace-separated);
# the parallelism in SKYPE_ETL_JOBS (default: nproc).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_type=${1:-Release}
build_dir=${2:-${SKYPE_ETL_BUILD_DIR:-build}}
targets=("${@:3}")
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"
jobs=${SKYPE_ETL_JOBS:-$(nproc 2>/dev/null || echo 2)}

generator=()
# Keep the generator an existing build tree was made with; Ninja for a new one if present.
if [[ ! -f "$build_dir/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
read -r -a extra_args <<<"${SKYPE_ETL_CMAKE_ARGS:-}"

echo "build: configuring $build_type in $build_dir"
cmake -S "$repo_root" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE="$build_type" \
  "${extra_args[@]}"
echo "build: building with $jobs jobs"
target_args=()
((${#targets[@]} == 0)) || target_args=(--target "${targets[@]}")
cmake --build "$build_dir" -j "$jobs" "${target_args[@]}"
