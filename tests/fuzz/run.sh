#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and
# fuzzes the server-event parser for a bounded time.
#   tests/fuzz/run.sh                      60 s
#   FUZZ_SECONDS=600 tests/fuzz/run.sh     longer
#   FUZZ_BUILD=/tmp/f tests/fuzz/run.sh    another build directory
#   FUZZ_SEED=<n> tests/fuzz/run.sh        libFuzzer's random seed (-seed=<n>); each
#                                          run prints the one it used as FUZZ_SEED=<n>
#                                          (a time-bound run repeats only as far as
#                                          the machine's speed lets it)
# Exits non-zero when the fuzzer finds anything; the crashing input is kept in
# $FUZZ_BUILD/findings/ (reproduce: $FUZZ_BUILD/tests/fuzz/fuzz-server-event <file>).
# The checked-in corpus is never modified: the fuzzer works on a copy.
set -euo pipefail
cd "$(dirname "$0")/../.."

build=${FUZZ_BUILD:-build-fuzz}
seconds=${FUZZ_SECONDS:-60}
fuzzer=$build/tests/fuzz/fuzz-server-event

if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$build" -Dfuzzing=enabled -Dtests=auto \
    -Dbuildtype=debugoptimized
fi
ninja -C "$build" tests/fuzz/fuzz-server-event

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

work=$build/fuzz-work
rm -rf "$work" "$build/findings"
mkdir -p "$work/corpus" "$work/regressions" "$build/findings"
cp tests/fuzz/corpus/* "$work/corpus/"
cp tests/fuzz/regressions/* "$work/regressions/"
# Nesting deep enough to exhaust an 8 MiB thread stack in a recursive parser
# (~150 KB of brackets; the element accepts frames of up to 64 MiB).
{ printf '{"type":"session.created","session":'; head -c 100000 /dev/zero | tr '\0' '['
  head -c 100000 /dev/zero | tr '\0' ']'; printf '}'; } > "$work/regressions/deep-nesting.json"

failed=0
echo "== fuzz-server-event: seed corpus and regression inputs"
"$fuzzer" -runs=1 "$work"/corpus/* > "$work/seeds.log" 2>&1 || {
  cat "$work/seeds.log"; echo "== a seed of tests/fuzz/corpus crashes the parser" >&2; failed=1; }
for input in "$work"/regressions/*; do
  if "$fuzzer" -runs=1 "$input" > "$work/regression.log" 2>&1; then
    echo "   ok  $(basename "$input")"
  else
    grep -E 'ERROR|runtime error|SUMMARY' "$work/regression.log" | head -5
    echo "   FAILED  $(basename "$input")" >&2
    cp "$input" "$build/findings/regression-$(basename "$input")"
    failed=1
  fi
done

seed=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
seed=$(( seed == 0 ? 1 : seed ))  # -seed=0 would mean "pick one"
echo "FUZZ_SEED=$seed" >&2
echo "== fuzz-server-event: ${seconds} s"
status=0
"$fuzzer" "$work/corpus" -dict=tests/fuzz/server-event.dict -seed="$seed" \
  -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$build/findings/" > "$work/fuzz.log" 2>&1 || status=$?
grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$work/fuzz.log" | tail -n 60
grep -E '^#[0-9]+[[:space:]]+(pulse|DONE)' "$work/fuzz.log" | tail -n 1 || true
if [ "$status" -ne 0 ]; then
  echo "== fuzz-server-event FOUND A PROBLEM (exit $status, FUZZ_SEED=$seed); input in $build/findings/" >&2
  failed=1
fi
if [ "$failed" -ne 0 ]; then
  echo "== fuzz-server-event: FAILED (inputs kept in $build/findings/)" >&2
  exit 1
fi
echo "== fuzz-server-event: nothing found"
