#!/usr/bin/env bash
# Installs the Debian 12 packages skype-etl needs to build, test and run, only those that
# are missing. Runs apt-get as root, or through sudo when run by another user.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libtbb-dev libsimdjson-dev libpqxx-dev libpq-dev libboost-test-dev nlohmann-json3-dev
  libcli11-dev libspdlog-dev libfmt-dev zlib1g-dev libssl-dev
  postgresql-15 postgresql-client-15
  tar gzip bsdutils
  # cli_tests renders the HTML report in headless Chromium (skipped, saying so, without it);
  # `script` (bsdutils) gives the progress bar's test a pseudo-terminal.
  chromium
  # The fuzzers (scripts/fuzz.sh): clang, its libFuzzer and sanitizer runtimes, and
  # llvm-symbolizer (in llvm-14) so that their reports name functions and lines.
  clang-14 libclang-rt-14-dev llvm-14
)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: dpkg-query/apt-get not found: this script supports Debian 12 (bookworm);" \
    "install the equivalents of: ${packages[*]}" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root, or install sudo, or install them yourself:" >&2
  echo "  apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
