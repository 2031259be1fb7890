#!/usr/bin/env bash
# Installs what the build needs (Debian 12), builds from scratch and runs the
# whole suite: once plainly, once under AddressSanitizer + UBSan.
#   tests/run.sh            everything
#   SKIP_SANITIZERS=1 tests/run.sh   the plain build only
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(meson ninja-build pkg-config g++ libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev libsoup-3.0-dev libjson-glib-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi

run_suite() {
  local dir=$1; shift
  rm -rf "$dir"
  meson setup "$dir" -Dwerror=true -Dtests=enabled "$@"
  meson compile -C "$dir"
  meson test -C "$dir" --print-errorlogs --num-processes 2
}

echo "== plain build"
run_suite build
if [ "${SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
  # Full unwinding lets tests/lsan.supp recognise GLib's constructor leak.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false
fi
echo "== all tests passed"
