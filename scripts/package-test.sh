#!/usr/bin/env bash
# Usage: scripts/package-test.sh BUILD_DIR [static|shared]
# Checks skype-etl as others use it, from a build tree already built:
#  1. `cmake --install` into a temporary prefix; a separate project (tests/consumer: the
#     examples/embed.cpp program) is configured against it with find_package(skype_etl 1.0)
#     and built; it loads the shipped sample into a new database of the PG* server.
#  2. The same program built with `pkg-config --cflags --libs skype-etl` only.
#  3. shared: libskype_etl.so exports the public API (skype_etl::ETLContext, ...) and none of
#     the internals (skype_etl::detail, the loader, the reader).
#  4. static (as root or with passwordless sudo, with apt-get): `cpack -G DEB` gives skype-etl_<version>_amd64.deb; it
#     is installed with apt-get, /usr/bin/skype-etl --version and `skype-etl run` of the
#     sample work from the installed path, and the package is removed again.
# Needs the PG* environment of a running server (scripts/test.sh sets it).
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:?usage: package-test.sh BUILD_DIR [static|shared]}
kind=${2:-static}
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"
sample="$repo_root/examples/sample_export/messages.json"
work=$(mktemp -d /tmp/skype-etl-package.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

fail() {
  echo "package-test ($kind): FAILED: $*" >&2
  exit 1
}

# A new database on the test server for each load; the embed program's result is checked.
fresh_db() {
  local name=skype_etl_pkg_$RANDOM$RANDOM
  psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $name" >/dev/null
  echo "$name"
}
check_load() {  # check_load PROGRAM LABEL
  local db out
  db=$(fresh_db)
  if ! out=$("$1" "dbname=$db" "$sample" 2>"$work/err"); then
    cat "$work/err" >&2
    fail "$2: the embed program failed"
  fi
  grep -q ': loaded, 8 messages read, 8 new' <<<"$out" || fail "$2: it did not say it loaded: $out"
  local count
  count=$(psql -X -At -d "$db" -c 'SELECT count(*) FROM skype.messages')
  [[ "$count" == 8 ]] || fail "$2: $count messages stored, expected the sample's 8"
  psql -X -q -d postgres -c "DROP DATABASE $db" >/dev/null
  echo "package-test ($kind): $2: loaded the sample (8 messages)"
}

prefix="$work/prefix"
echo "package-test ($kind): cmake --install $build_dir --prefix $prefix"
cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log" ||
  { cat "$work/install.log" >&2; fail "cmake --install"; }
for f in bin/skype-etl include/skype_etl/context.hpp lib/cmake/skype_etl/skype_etlConfig.cmake \
  lib/cmake/skype_etl/skype_etlConfigVersion.cmake lib/pkgconfig/skype-etl.pc; do
  [[ -e "$prefix/$f" || -e "$prefix/${f/lib\//lib/x86_64-linux-gnu/}" ]] ||
    fail "the install has no $f"
done
# Internal headers stay private.
[[ ! -e "$prefix/include/skype_etl/../core" && -z "$(find "$prefix/include" -name 'loader.hpp')" ]] ||
  fail "internal headers were installed"

echo "package-test ($kind): building tests/consumer with find_package(skype_etl 1.0)"
cmake -S "$repo_root/tests/consumer" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "configuring the consumer"; }
cmake --build "$work/consumer" >>"$work/consumer.log" 2>&1 ||
  { cat "$work/consumer.log" >&2; fail "building the consumer"; }
check_load "$work/consumer/embed" "find_package consumer"

# Another major version is refused (SameMajorVersion).
mkdir -p "$work/v2"
sed 's/find_package(skype_etl 1.0/find_package(skype_etl 2.0/;
     s|${CMAKE_CURRENT_SOURCE_DIR}/../../examples/embed.cpp|'"$repo_root"'/examples/embed.cpp|' \
  "$repo_root/tests/consumer/CMakeLists.txt" >"$work/v2/CMakeLists.txt"
if cmake -S "$work/v2" -B "$work/v2/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
  fail "find_package(skype_etl 2.0) accepted version 1"
fi

echo "package-test ($kind): configuring tests/consumer with skype-etl as a subproject"
cmake -S "$repo_root/tests/consumer" -B "$work/subproject" -DSKYPE_ETL_SOURCE_DIR="$repo_root" \
  >"$work/subproject.log" 2>&1 || { cat "$work/subproject.log" >&2; fail "as a subproject"; }

echo "package-test ($kind): building examples/embed.cpp with pkg-config only"
libdir=$(dirname "$(find "$prefix" -name skype-etl.pc | head -1)")
# shellcheck disable=SC2046
PKG_CONFIG_PATH="$libdir" c++ -std=c++17 -O1 -o "$work/embed-pc" "$repo_root/examples/embed.cpp" \
  $(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs skype-etl) ||
  fail "building with pkg-config"
if [[ "$kind" == shared ]]; then
  LD_LIBRARY_PATH="$(dirname "$libdir")" check_load "$work/embed-pc" "pkg-config consumer"
else
  check_load "$work/embed-pc" "pkg-config consumer"
fi

if [[ "$kind" == shared ]]; then
  so=$(find "$prefix" -name 'libskype_etl.so.*' -type f | head -1)
  [[ -n "$so" ]] || fail "no libskype_etl.so installed"
  nm -DC --defined-only "$so" | awk '{ $1=""; $2=""; print }' >"$work/symbols"
  for wanted in 'skype_etl::ETLContext::ETLContext' 'skype_etl::EtlGraph::run' \
    'skype_etl::run_etl_pipeline' 'typeinfo for skype_etl::InputError'; do
    grep -qF "$wanted" "$work/symbols" || fail "$so does not export $wanted"
  done
  # Our internals, not std:: templates instantiated with them (their typeinfo is public in
  # libstdc++'s namespace std, whatever the argument's visibility).
  internals='^ *((typeinfo( name)?|vtable|VTT|guard variable) for )?skype_etl::(detail|Loader|ExportReader|RunState|Transformer)'
  if grep -Eq "$internals" "$work/symbols"; then
    grep -E "$internals" "$work/symbols" | head -5
    fail "$so exports internals"
  fi
  echo "package-test ($kind): $so exports $(wc -l <"$work/symbols") symbols, no internals"
fi

if [[ "$kind" == static ]]; then
  # apt-get as root, or through sudo without a password (as install-deps.sh does).
  as_root=()
  if [[ $(id -u) != 0 ]] && sudo -n true 2>/dev/null; then as_root=(sudo -n); fi
  if { [[ $(id -u) != 0 ]] && ((${#as_root[@]} == 0)); } || ! command -v apt-get >/dev/null; then
    echo "package-test ($kind): SKIPPED the .deb check: it installs a package (root or" \
      "passwordless sudo, and apt-get)"
  else
    echo "package-test ($kind): cpack -G DEB"
    (cd "$work" && cpack -G DEB --config "$build_dir/CPackConfig.cmake" >"$work/cpack.log" 2>&1) ||
      { cat "$work/cpack.log" >&2; fail "cpack -G DEB"; }
    deb=$(find "$work" -maxdepth 1 -name 'skype-etl_*_amd64.deb' | head -1)
    [[ -n "$deb" ]] || fail "cpack made no skype-etl_<version>_amd64.deb: $(ls "$work")"
    depends=$(dpkg-deb -f "$deb" Depends)
    echo "package-test ($kind): $(basename "$deb"): Depends: $depends"
    for lib in libtbb libpqxx libpq5; do
      grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
    done
    if dpkg-query -W -f='${Status}' skype-etl 2>/dev/null | grep -q installed; then
      fail "a skype-etl package is installed already: not replacing it"
    fi
    trap '"${as_root[@]}" apt-get remove -y -qq skype-etl >/dev/null 2>&1 || true; cleanup' EXIT
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >"$work/apt.log" 2>&1 ||
      { cat "$work/apt.log" >&2; fail "apt-get install $deb"; }
    version=$(/usr/bin/skype-etl --version)
    [[ "$version" == *"$(dpkg-deb -f "$deb" Version)"* ]] ||
      fail "/usr/bin/skype-etl --version says '$version'"
    db=$(fresh_db)
    /usr/bin/skype-etl run "$sample" --db "dbname=$db" >"$work/run.log" 2>&1 ||
      { cat "$work/run.log" >&2; fail "/usr/bin/skype-etl run"; }
    [[ $(psql -X -At -d "$db" -c 'SELECT count(*) FROM skype.messages') == 8 ]] ||
      fail "the installed skype-etl did not store the sample's 8 messages"
    psql -X -q -d postgres -c "DROP DATABASE $db" >/dev/null
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq skype-etl \
      >/dev/null 2>&1 ||
      fail "apt-get remove skype-etl"
    [[ ! -e /usr/bin/skype-etl ]] || fail "/usr/bin/skype-etl is still there after removal"
    echo "package-test ($kind): installed $(basename "$deb") with apt-get, ran it, removed it"
  fi
fi
echo "package-test ($kind): passed"
