#!/usr/bin/env bash
# How many conversations one examples/webchat server holds: N browser tabs
# (one headless Chromium, tests/webchat/capacity.mjs) talk hands-free to one
# server, against the emulator, for T seconds each; the server's CPU time
# (user + system, from /proc) over those seconds gives its cost per
# conversation.  Figures in docs/webchat.md.
#
#   tests/bench/webchat-capacity.sh [N ...]     (default: 1 4 8)
#
# Needs a build with the webchat and the emulator (build/, or BUILD_DIR) and
# what tests/install-packages.sh --webchat installs.  SECONDS_PER_RUN
# (default 30).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$root/$BUILD_DIR ;; esac
T=${SECONDS_PER_RUN:-30}
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1 4 8)

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# The question: spoken, then 2.7 s of silence; Chromium loops it, so every
# tab takes a turn about every 5 s.
espeak-ng -v en -s 150 -w "$tmp/speech.wav" "What is the weather like in Moscow today?"
gst-launch-1.0 -q concat name=c ! audioconvert ! wavenc ! filesink location="$tmp/question.wav" \
  filesrc location="$tmp/speech.wav" ! wavparse ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=1 ! c. \
  audiotestsrc wave=silence samplesperbuffer=4800 num-buffers=27 ! audio/x-raw,rate=48000,channels=1 ! c.

first_line() {
  for _ in $(seq 100); do
    if IFS= read -r line < "$1"; then printf '%s\n' "$line"; return; fi
    sleep 0.1
  done
  echo "no URL in $1" >&2; exit 1
}
"$BUILD_DIR/tests/emulator/yandexrealtime-emulator" --port 0 --api-key bench --answer-ms 2000 \
  > "$tmp/emu.out" 2>/dev/null &
pids+=($!)
emu_pid=$!
emu=$(first_line "$tmp/emu.out")
YANDEX_CLOUD_API_KEY=bench GST_PLUGIN_PATH=$BUILD_DIR/gst \
  "$BUILD_DIR/examples/webchat/yandexrealtime-webchat" --port 0 --max-sessions 1000 --location "$emu" \
  > "$tmp/server.out" 2>/dev/null &
pids+=($!)
server=$!
url=$(first_line "$tmp/server.out")

cpu() {  # utime + stime of a process, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)
printf '%s · %s cores · load before %s · %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" \
  "$(cut -d' ' -f1-3 /proc/loadavg)" "$(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)"
echo
echo "| tabs | seconds | server CPU % of one core | per conversation % | server RSS MiB | emulator CPU % | answers heard | answers per tab per minute | speech end → answer sound, median ms |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in "${counts[@]}"; do
  node tests/webchat/capacity.mjs --url "$url" --wav "$tmp/question.wav" --tabs "$n" --seconds "$T" \
    > "$tmp/run.out" 2> "$tmp/run.err" &
  driver=$!
  until grep -q START "$tmp/run.out" 2>/dev/null; do
    kill -0 "$driver" 2>/dev/null || { cat "$tmp/run.err" >&2; exit 1; }
    sleep 0.2
  done
  s0=$(cpu "$server") e0=$(cpu "$emu_pid") t0=$(date +%s.%N)
  until grep -q STOP "$tmp/run.out" 2>/dev/null; do sleep 0.2; done
  s1=$(cpu "$server") e1=$(cpu "$emu_pid") t1=$(date +%s.%N)
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")
  wait "$driver" || { cat "$tmp/run.err" >&2; exit 1; }
  tail -n 1 "$tmp/run.out" | node -e '
    const [n, s0, s1, e0, e1, t0, t1, hz, rss] = process.argv.slice(1).map(Number);
    const tabs = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const wall = t1 - t0, cpu = (s1 - s0) / hz / wall * 100, emu = (e1 - e0) / hz / wall * 100;
    const answers = tabs.reduce((a, t) => a + t.answers, 0);
    const lat = tabs.flatMap((t) => t.latencies).sort((a, b) => a - b);
    const med = lat.length ? lat[Math.floor(lat.length / 2)] : NaN;
    const lost = tabs.filter((t) => !t.ready).length;
    console.log(`| ${n} | ${wall.toFixed(0)} | ${cpu.toFixed(1)} | ${(cpu / n).toFixed(1)} | ${(rss / 1024).toFixed(0)} | ${emu.toFixed(1)} | ` +
      `${answers}${lost ? ` (${lost} tabs lost)` : ""} | ${(answers / n / wall * 60).toFixed(1)} | ${med} |`);
  ' "$n" "$s0" "$s1" "$e0" "$e1" "$t0" "$t1" "$hz" "$rss"
done
