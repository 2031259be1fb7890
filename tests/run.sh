#!/usr/bin/env bash
# Installs what the build needs (Debian 12), builds from scratch and runs the
# whole suite: once plainly, once under AddressSanitizer + UBSan; then fuzzes
# the server-event parser (clang, libFuzzer) for 60 s and runs the threaded
# suites (element, control, torture) under ThreadSanitizer.
#   tests/run.sh            everything
#   SKIP_SANITIZERS=1 tests/run.sh   the plain build only
#   SKIP_FUZZ=1 / SKIP_TSAN=1        leave out the fuzzer / the TSan pass
#   EXTRA_PACKAGES="a b"             Debian packages to install as well
# Each test program loads only the GStreamer plugins tests/check/meson.build
# names for it, whatever else is installed (the plugins suite checks it).
set -euo pipefail
cd "$(dirname "$0")/.."

# clang and its runtime: the fuzzer and the TSan pass; --webchat: WebRTC,
# Chromium, espeak-ng and puppeteer-core for the webchat suite (espeak-ng
# also voices the room suite, whose webrtcdsp comes with gst-plugins-bad);
# --phone: sofia-sip and baresip for the phone suite.
# shellcheck disable=SC2086  # a word list
tests/install-packages.sh --webchat --phone clang libclang-rt-14-dev ${EXTRA_PACKAGES:-}

run_suite() {
  local dir=$1; shift
  rm -rf "$dir"
  meson setup "$dir" -Dwerror=true -Dtests=enabled "$@"
  meson compile -C "$dir"
  meson test -C "$dir" --print-errorlogs --num-processes 2 --no-suite realtime
}

# The simulated room (suite `realtime`, plain build only) plays audio through
# an echo canceller at real time: it runs alone, after everything else, once.
run_realtime() {
  meson test -C "$1" --print-errorlogs --suite realtime
}

echo "== plain build"
run_suite build
run_realtime build
if [ "${SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
  # Full unwinding lets tests/lsan.supp recognise GLib's constructor leak.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0 \
  LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false
  if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    echo "== libFuzzer: server events (60 s)"
    rm -rf build-fuzz
    FUZZ_BUILD=build-fuzz FUZZ_SECONDS=${FUZZ_SECONDS:-60} tests/fuzz/run.sh
  fi
  if [ "${SKIP_TSAN:-0}" != 1 ]; then
    echo "== ThreadSanitizer: element, control, torture"
    # GLib and GStreamer are not built with TSan: the shim (LD_PRELOAD) shows
    # TSan their locks and hand-offs, tests/tsan.supp ignores what GLib does
    # inside itself (see both files).
    rm -rf build-tsan
    meson setup build-tsan -Dwerror=true -Dtests=enabled -Db_sanitize=thread -Db_lundef=false
    meson compile -C build-tsan
    TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp" \
      meson test -C build-tsan --print-errorlogs --num-processes 2 \
        --wrapper "env LD_PRELOAD=$PWD/build-tsan/tests/libtsan-glib-shim.so" \
        element control torture \
        plugins-element plugins-control plugins-torture
  fi
fi
echo "== all tests passed"
