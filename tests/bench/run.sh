#!/usr/bin/env bash
# Benchmarks of the yandexrealtime element against the bundled emulator,
# which runs in its own process on loopback (docs/performance.md).
#
#   tests/bench/run.sh                  every benchmark
#   tests/bench/run.sh file ttfa        some: file latency ttfa memory scale micro aec
#
# Each benchmark prints a Markdown table and appends it to
# docs/performance.md ("Results log"), with the date, the core count and the
# load average.  Figures are medians of RUNS runs; ratios are taken within
# each run, then the median of those.
#
# Environment:
#   BENCH_BUILD      build directory (default build-bench: release, -Dbench=enabled)
#   RUNS             runs per benchmark (default 3)
#   FILE_MINUTES     length of the file-turn input (default 10)
#   CALLGRIND=1      file turn: also count instructions under callgrind (slow)
#   LATENCY_SECONDS  length of the traced live session (default 60)
#   TTFA_TURNS       turns per time-to-first-audio run (default 10)
#   MEMORY_MINUTES   stream time of the memory run (default 60)
#   SCALE_SESSIONS   session counts tried (default "25 50 100 200 300")
#   SCALE_SECONDS    measured window of each scale run (default 30)
#   SCALE_SHARE      sessions-per-thread of the scale run's elements (default 0: the
#                    element's default, automatic sharing)
#   AEC_SECONDS      length of each echo-canceller run (default 60)
#   NO_DOC=1         print the tables only
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

BENCH_BUILD=${BENCH_BUILD:-build-bench}
case $BENCH_BUILD in /*) ;; *) BENCH_BUILD=$root/$BENCH_BUILD ;; esac
RUNS=${RUNS:-3}
FILE_MINUTES=${FILE_MINUTES:-10}
LATENCY_SECONDS=${LATENCY_SECONDS:-60}
TTFA_TURNS=${TTFA_TURNS:-10}
MEMORY_MINUTES=${MEMORY_MINUTES:-60}
SCALE_SESSIONS=${SCALE_SESSIONS:-"25 50 100 200 300"}
SCALE_SECONDS=${SCALE_SECONDS:-30}
SCALE_SHARE=${SCALE_SHARE:-0}
KEY=bench-key
doc=$root/docs/performance.md

benches=("$@")
[ ${#benches[@]} -gt 0 ] || benches=(micro file latency ttfa memory scale aec)
for b in "${benches[@]}"; do
  case $b in micro|file|latency|ttfa|memory|scale|aec) ;; *) echo "unknown benchmark: $b" >&2; exit 2 ;; esac
done

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# ---- build ----
if [ ! -f "$BENCH_BUILD/build.ninja" ]; then
  say "configuring $BENCH_BUILD"
  meson setup "$BENCH_BUILD" -Dbuildtype=release -Dtests=enabled -Dbench=enabled >/dev/null
else
  meson configure "$BENCH_BUILD" -Dtests=enabled -Dbench=enabled >/dev/null
fi
say "building $BENCH_BUILD"
ninja -C "$BENCH_BUILD" >/dev/null || { ninja -C "$BENCH_BUILD"; die "build failed"; }
bench=$BENCH_BUILD/tests/bench/yrt-bench
emulator=$BENCH_BUILD/tests/emulator/yandexrealtime-emulator
[ -x "$bench" ] && [ -x "$emulator" ] || die "yrt-bench or the emulator was not built"

work=$BENCH_BUILD/bench-work
mkdir -p "$work"
# Only the plugins tests/bench/meson.build names, with a registry of our own.
export GST_PLUGIN_SYSTEM_PATH_1_0=$BENCH_BUILD/tests/bench/gst-plugins
export GST_PLUGIN_PATH_1_0=""
export GST_REGISTRY_1_0=$work/registry.bin
unset YANDEX_CLOUD_API_KEY YANDEX_CLOUD_IAM_TOKEN YANDEX_CLOUD_FOLDER_ID
gst-inspect-1.0 yandexrealtime >/dev/null 2>&1 ||
  die "GStreamer cannot load the plugin from $GST_PLUGIN_SYSTEM_PATH_1_0"

# ---- the emulator, in its own process ----
emu_pid=""
emu_url=""
emu_count=0
start_emulator() {  # extra emulator flags
  stop_emulator
  # A file of its own: the shell truncates it only once the child runs, so
  # reading a reused one could return the previous emulator's URL.
  emu_count=$((emu_count + 1))
  local out=$work/emulator.$emu_count.out
  rm -f "$out"
  "$emulator" --api-key "$KEY" "$@" > "$out" 2> "$work/emulator.err" &
  emu_pid=$!
  emu_url=""
  for _ in $(seq 100); do
    if [ -f "$out" ] && IFS= read -r emu_url < "$out" && [ -n "$emu_url" ]; then break; fi
    kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emulator.err" >&2; die "the emulator exited"; }
    sleep 0.05
  done
  case $emu_url in ws://*) ;; *) die "the emulator printed no URL" ;; esac
}
stop_emulator() {
  if [ -n "$emu_pid" ]; then
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
    rm -f "$work/emulator.$emu_count.out"
    emu_pid=""
  fi
}
trap stop_emulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# utime + stime of a process, in seconds
proc_cpu() { awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"; }

# ---- helpers over RESULT lines ----
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }          # stdin: RESULT lines
median() {                                             # stdin: numbers, one a line
  sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2];
    else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
med() { field "$2" < "$1" | median; }                  # file key
fmt() { awk -v v="$2" "BEGIN { if (v == \"n/a\") print v; else printf \"$1\", v }"; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "n/a" && v + 0 <= t + 0) ? "**met**" : "**missed**" }'; }

section=""
begin_section() {  # title
  section=$work/section.md
  {
    printf '\n### %s\n\n' "$1"
    printf '%s · %s cores (%s) · load before %s · %s · runs %s\n\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
      "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
      "$load_before" \
      "$(git -C "$root" describe --always --dirty 2>/dev/null || echo 'no git')" "$RUNS"
  } > "$section"
}
end_section() {
  cat "$section"
  if [ "${NO_DOC:-0}" != 1 ]; then
    grep -q '^## Results log' "$doc" 2>/dev/null || printf '\n## Results log\n' >> "$doc"
    cat "$section" >> "$doc"
  fi
}

# ---- micro: hot paths in-process ----
bench_micro() {
  say "micro: hot paths in-process, and the fast paths verified"
  begin_section "Hot paths (yrt-bench micro, in-process)"
  "$bench" verify > "$work/verify.out" 2>&1 || { cat "$work/verify.out" >&2; die "yrt-bench verify failed"; }
  "$bench" micro --seconds 1 >> "$section"
  { echo; echo "Resampler quality (\`yrt-bench resampler\`: tones through the uplink, 44.1 → 24 kHz; cost: S16 stereo 44.1 kHz in):"; echo
    "$bench" resampler --seconds 1; } >> "$section"
  { echo; sed -n '/RESULT/!s/^/    /p' "$work/verify.out"; } >> "$section"
  end_section
}

# ---- 1. file turn ----
bench_file() {
  local wav=$work/speech-${FILE_MINUTES}min.wav out=$work/answer.wav r
  [ -f "$wav" ] || { say "making $wav"; "$bench" gen-wav "$wav" "$FILE_MINUTES" >/dev/null; }
  start_emulator
  local src="filesrc location=$wav ! decodebin"
  local conv="audioconvert ! audioresample ! audio/x-raw,rate=24000,channels=1,format=S16LE"
  local rt="yandexrealtime location=$emu_url api-key=$KEY turn-detection=none"
  declare -A pipes=(
    [ours]="$src ! $rt ! wavenc ! filesink location=$out"
    [ours_q4]="$src ! $rt resample-quality=4 ! wavenc ! filesink location=$out"
    [passthrough]="$src ! $conv ! $rt ! wavenc ! filesink location=$out"
    [bare]="$src ! $conv ! fakesink"
  )
  : > "$work/file.res"
  # shellcheck disable=SC2086  # pipelines are word lists
  gst-launch-1.0 -q ${pipes[bare]} >/dev/null 2>&1  # registry and page cache
  for r in $(seq "$RUNS"); do
    say "file turn: run $r of $RUNS"
    local line="RESULT file run=$r"
    for p in ours ours_q4 passthrough bare; do
      local e0 e1
      e0=$(proc_cpu "$emu_pid")
      rm -f "$out"
      # shellcheck disable=SC2086
      /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" gst-launch-1.0 -q ${pipes[$p]} \
        > "$work/gst.log" 2>&1 || { cat "$work/gst.log" >&2; die "$p pipeline failed"; }
      e1=$(proc_cpu "$emu_pid")
      if [ "$p" != bare ]; then
        [ "$(stat -c %s "$out")" -gt 44100 ] || die "$p: no answer in $out"
      fi
      read -r wall user sys rss < "$work/time.txt"
      line+=$(awk -v p="$p" -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v e="$(awk -v a="$e0" -v b="$e1" 'BEGIN { print b - a }')" \
        'BEGIN { printf " %s_wall=%s %s_user=%s %s_sys=%s %s_cpu=%.2f %s_rss=%.1f %s_emu=%.2f", p, w, p, u, p, s, p, u + s, p, m / 1024, p, e }')
    done
    echo "$line" >> "$work/file.res"
  done
  # ratios within each run
  awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
         printf "RESULT ratio ours=%.3f ours_q4=%.3f passthrough=%.3f\n", v["ours_cpu"] / v["bare_cpu"],
           v["ours_q4_cpu"] / v["bare_cpu"], v["passthrough_cpu"] / v["bare_cpu"] }' \
    "$work/file.res" > "$work/file.ratio"
  stop_emulator

  begin_section "1. File turn: ${FILE_MINUTES} min of 44.1 kHz stereo speech-like WAV, turn-detection=none"
  {
    echo "| pipeline | CPU s | user s | sys s | wall s | peak RSS MB | CPU ÷ bare (same run) | emulator CPU s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for p in ours ours_q4 passthrough bare; do
      local ratio="1"
      [ "$p" = bare ] || ratio=$(fmt %.2f "$(med "$work/file.ratio" "$p")")
      local emu="—"
      [ "$p" = bare ] || emu=$(fmt %.2f "$(med "$work/file.res" "${p}_emu")")
      printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$p" \
        "$(fmt %.2f "$(med "$work/file.res" "${p}_cpu")")" "$(fmt %.2f "$(med "$work/file.res" "${p}_user")")" \
        "$(fmt %.2f "$(med "$work/file.res" "${p}_sys")")" "$(fmt %.2f "$(med "$work/file.res" "${p}_wall")")" \
        "$(fmt %.1f "$(med "$work/file.res" "${p}_rss")")" "$ratio" "$emu"
    done
    echo
    echo "- ours: \`filesrc ! decodebin ! yandexrealtime turn-detection=none ! wavenc ! filesink\`"
    echo "  (resample-quality 3, the default); ours_q4: the same with resample-quality=4, audioresample's default;"
    echo "  passthrough: the same with the bare conversion in front (the element sends as is);"
    echo "  bare: \`filesrc ! decodebin ! audioconvert ! audioresample ! audio/x-raw,rate=24000,channels=1,format=S16LE ! fakesink\`."
    echo "- Target ours ≤ 1.1 × bare CPU: $(verdict "$(med "$work/file.ratio" ours)" 1.1)" \
      "(median ratio $(fmt %.2f "$(med "$work/file.ratio" ours)"); with resample-quality=4" \
      "$(fmt %.2f "$(med "$work/file.ratio" ours_q4)")); passthrough ÷ bare" \
      "$(fmt %.2f "$(med "$work/file.ratio" passthrough)") is the cost of the network path alone on top of the bare conversion."
  } >> "$section"
  if [ "${CALLGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
    say "file turn: instruction counts under callgrind"
    start_emulator
    local p ir
    echo >> "$section"
    echo "| pipeline (callgrind, user-space instructions) | instructions | ÷ bare |" >> "$section"
    echo "|---|---:|---:|" >> "$section"
    declare -A irs=()
    for p in bare ours passthrough; do
      rt="yandexrealtime location=$emu_url api-key=$KEY turn-detection=none"
      pipes[ours]="$src ! $rt ! wavenc ! filesink location=$out"
      pipes[passthrough]="$src ! $conv ! $rt ! wavenc ! filesink location=$out"
      # shellcheck disable=SC2086
      valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.$p" gst-launch-1.0 -q ${pipes[$p]} \
        > "$work/callgrind.$p.log" 2>&1 || die "callgrind $p failed"
      ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/callgrind.$p.log" | tail -1)
      irs[$p]=$ir
      printf '| %s | %s | %s |\n' "$p" "$(fmt %.0f "$ir")" \
        "$(awk -v a="$ir" -v b="${irs[bare]}" 'BEGIN { printf "%.2f", a / b }')" >> "$section"
    done
    stop_emulator
  fi
  end_section
}

# ---- 2. added latency, from the element's trace points ----
bench_latency() {
  start_emulator --pace-ms 100 --audio-delta-ms 100 --answer-ms 2000
  : > "$work/latency.res"
  local r status=0
  for r in $(seq "$RUNS"); do
    say "latency: run $r of $RUNS (${LATENCY_SECONDS} s live session)"
    status=0
    "$bench" latency --url "$emu_url" --api-key "$KEY" --seconds "$LATENCY_SECONDS" \
      > "$work/latency.out" 2> "$work/latency.err" || status=$?
    grep '^RESULT' "$work/latency.out" >> "$work/latency.res" || true
    [ $status -eq 77 ] && break
    [ $status -eq 0 ] || { cat "$work/latency.out" "$work/latency.err" >&2; die "latency run failed"; }
  done
  stop_emulator
  begin_section "2. Added latency inside the element (trace points, ${LATENCY_SECONDS} s live session)"
  if [ $status -eq 77 ]; then
    {
      echo "Skipped: $(grep -m1 'trace points missing' "$work/latency.out")."
      echo "See \"Trace points\" above for the lines the element needs."
    } >> "$section"
  else
    {
      echo "| path | events (median) | p50 µs | p99 µs | max µs |"
      echo "|---|---:|---:|---:|---:|"
      printf '| uplink: buffer enters chain → its append handed to the socket | %s | %s | %s | %s |\n' \
        "$(med "$work/latency.res" up_n)" "$(med "$work/latency.res" up_p50_us)" \
        "$(med "$work/latency.res" up_p99_us)" "$(med "$work/latency.res" up_max_us)"
      printf '| downlink: audio delta frame received → its buffer pushed on src | %s | %s | %s | %s |\n' \
        "$(med "$work/latency.res" down_n)" "$(med "$work/latency.res" down_p50_us)" \
        "$(med "$work/latency.res" down_p99_us)" "$(med "$work/latency.res" down_max_us)"
      echo
      echo "- Live appsrc (24 kHz mono S16, 40 ms buffers = chunk-ms, real time) → yandexrealtime → appsink sync=false;"
      echo "  2 s of voice, 4 s of silence; emulator answers 2 s, paced 100 ms per delta. Medians over runs of each run's percentile."
    } >> "$section"
  fi
  end_section
}

# ---- 3. time to first audio ----
bench_ttfa() {
  start_emulator --first-audio-delay-ms 0
  : > "$work/ttfa.res"
  local r
  for r in $(seq "$RUNS"); do
    say "ttfa: run $r of $RUNS ($TTFA_TURNS turns)"
    "$bench" ttfa --url "$emu_url" --api-key "$KEY" --turns "$TTFA_TURNS" > "$work/ttfa.out" 2>&1 ||
      { cat "$work/ttfa.out" >&2; die "ttfa run failed"; }
    grep '^RESULT' "$work/ttfa.out" >> "$work/ttfa.res"
  done
  stop_emulator
  local over
  over=$(med "$work/ttfa.res" over_p50_ms)
  begin_section "3. Time to first audio (last voiced buffer pushed → first answer buffer at appsink)"
  {
    echo "| turns | VAD silence window ms | TTFA p50 ms | TTFA max ms | over window p50 ms | p90 ms | max ms | missed turns | interrupted |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
      "$(field turns < "$work/ttfa.res" | awk '{ s += $1 } END { print s + 0 }')" "$(med "$work/ttfa.res" silence_ms)" \
      "$(med "$work/ttfa.res" ttfa_p50_ms)" "$(med "$work/ttfa.res" ttfa_max_ms)" "$over" \
      "$(med "$work/ttfa.res" over_p90_ms)" "$(med "$work/ttfa.res" over_max_ms)" \
      "$(field missed < "$work/ttfa.res" | awk '{ s += $1 } END { print s + 0 }')" \
      "$(field interrupted < "$work/ttfa.res" | awk '{ s += $1 } END { print s + 0 }')"
    echo
    echo "- appsrc live do-timestamp (24 kHz mono, 40 ms buffers in real time) → yandexrealtime (server VAD) → appsink sync=false;"
    echo "  1.2 s voice + 2.8 s silence per turn; emulator unpaced, first-audio delay 0. Medians over runs of each run's statistic."
    if grep -q 'split_up_ms' "$work/ttfa.res"; then
      echo "- Split of the time over the window (trace points, p50): element uplink $(med "$work/ttfa.res" split_up_ms) ms," \
        "emulator + loopback $(med "$work/ttfa.res" split_emu_ms) ms (including the element reading the events before the first delta)," \
        "element downlink $(med "$work/ttfa.res" split_down_ms) ms, src push → appsink $(med "$work/ttfa.res" split_app_ms) ms."
    fi
    echo "- Target window + ≤ 5 ms (p50): $(verdict "$over" 5)."
  } >> "$section"
  end_section
}

# ---- 4. memory ----
bench_memory() {
  : > "$work/memory.res"
  local r
  for r in $(seq "$RUNS"); do
    start_emulator
    say "memory: run $r of $RUNS (${MEMORY_MINUTES} min of stream, as fast as possible)"
    "$bench" memory --url "$emu_url" --api-key "$KEY" --minutes "$MEMORY_MINUTES" --emulator-pid "$emu_pid" \
      > "$work/memory.out" 2>&1 || { cat "$work/memory.out" >&2; die "memory run failed"; }
    grep '^RESULT' "$work/memory.out" >> "$work/memory.res"
  done
  stop_emulator
  local growth
  growth=$(med "$work/memory.res" growth_kb)
  begin_section "4. Memory: one non-live session, ${MEMORY_MINUTES} min of stream (8 s voice + 2 s silence), as fast as possible"
  {
    echo "| VmRSS at min 5 MB | at min ${MEMORY_MINUTES} MB | growth kB | peak (VmHWM) MB | after the drain MB | pushed in s | drained in s | answers s | CPU s | emulator CPU s | emulator RSS MB |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
      "$(fmt %.1f "$(med "$work/memory.res" rss5_kb | awk '{ print $1 / 1024 }')")" \
      "$(fmt %.1f "$(med "$work/memory.res" rss_last_kb | awk '{ print $1 / 1024 }')")" "$growth" \
      "$(fmt %.1f "$(med "$work/memory.res" peak_kb | awk '{ print $1 / 1024 }')")" \
      "$(fmt %.1f "$(med "$work/memory.res" rss_after_kb | awk '{ print $1 / 1024 }')")" \
      "$(med "$work/memory.res" pushed_s)" "$(med "$work/memory.res" drained_s)" \
      "$(med "$work/memory.res" answers_s)" "$(med "$work/memory.res" cpu_s)" \
      "$(med "$work/memory.res" emu_cpu_s)" \
      "$(fmt %.1f "$(med "$work/memory.res" emu_rss_kb | awk '{ print $1 / 1024 }')")"
    echo
    echo "- appsrc (non-live, 100 ms buffers, block=true) → yandexrealtime (server VAD) → fakesink sync=false, in yrt-bench;"
    echo "  VmRSS of that process read when the stream time of the buffers entering the element crosses each minute."
    echo "- Target growth from minute 5 to ${MEMORY_MINUTES} ≤ 1 MB (1024 kB): $(verdict "$growth" 1024)."
  } >> "$section"
  end_section
}

# ---- 5. scale ----
bench_scale() {
  : > "$work/scale.res"
  local n r
  for n in $SCALE_SESSIONS; do
    for r in $(seq "$RUNS"); do
      start_emulator
      say "scale: $n sessions, run $r of $RUNS (${SCALE_SECONDS} s window)"
      "$bench" scale --url "$emu_url" --api-key "$KEY" --sessions "$n" --seconds "$SCALE_SECONDS" \
        --sessions-per-thread "$SCALE_SHARE" --emulator-pid "$emu_pid" > "$work/scale.out" 2>&1 || { cat "$work/scale.out" >&2; die "scale run failed"; }
      grep '^RESULT' "$work/scale.out" >> "$work/scale.res"
    done
  done
  stop_emulator
  begin_section "5. Scale: N live sessions in one process"
  local best=0
  {
    echo "| N | CPU % of machine | CPU % of one core | per session ms/s | emulator % of one core | output buffers | late | worst vs deadline ms | answers / expected | interrupted | errors | RSS MB |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for n in $SCALE_SESSIONS; do
      grep " sessions=$n " "$work/scale.res" > "$work/scale.n"
      local pct late errs
      pct=$(med "$work/scale.n" cpu_machine_pct)
      late=$(field late < "$work/scale.n" | sort -g | tail -1)
      errs=$(field errors < "$work/scale.n" | sort -g | tail -1)
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |\n' "$n" "$pct" \
        "$(med "$work/scale.n" cpu_core_pct)" "$(med "$work/scale.n" per_session_ms_per_s)" \
        "$(med "$work/scale.n" emu_core_pct)" "$(med "$work/scale.n" buffers)" "$late" \
        "$(field worst_late_ms < "$work/scale.n" | sort -g | tail -1)" \
        "$(med "$work/scale.n" answers)" "$(med "$work/scale.n" expected_answers)" \
        "$(med "$work/scale.n" interrupted)" "$errs" \
        "$(fmt %.0f "$(med "$work/scale.n" rss_kb | awk '{ print $1 / 1024 }')")"
      if [ "$late" = 0 ] && [ "$errs" = 0 ] && awk -v p="$pct" 'BEGIN { exit !(p < 50) }'; then
        best=$n
      fi
    done
    echo
    echo "- Each session: appsrc live do-timestamp (24 kHz mono, 40 ms buffers in real time, 1.52 s voice + 3.48 s silence, phases staggered) → yandexrealtime → fakesink sync=true;"
    echo "  one feeder thread for all; sessions-per-thread=$SCALE_SHARE (0: automatic). Emulator unpaced, 1 s answers. \"late\": an output buffer reaching its sink after running time + latency (worst across runs)."
    echo "- CPU over the ${SCALE_SECONDS} s window (medians over runs), % of machine = of all $(nproc) cores; the emulator's own CPU is separate."
    echo "  The real service has a per-folder session quota; the emulator has none."
    echo "- Largest N tried with zero late buffers, no errors and CPU < 50 % of the machine: **${best}**; target N ≥ 200: $(verdict "$((200 - best))" 0)."
  } >> "$section"
  end_section
}

# ---- 6. echo cancellation (hands-free pipeline) ----
bench_aec() {
  local aec=$BENCH_BUILD/tests/bench/yrt-bench-aec
  [ -x "$aec" ] || die "yrt-bench-aec was not built"
  gst-inspect-1.0 webrtcdsp >/dev/null 2>&1 || die "webrtcdsp is missing (gstreamer1.0-plugins-bad)"
  say "aec: webrtcdsp + webrtcechoprobe in real time, ${AEC_SECONDS:-60} s x $RUNS"
  begin_section "6. Echo cancellation: webrtcdsp + webrtcechoprobe of the hands-free pipeline, 48 kHz, real time"
  "$aec" "${AEC_SECONDS:-60}" "$RUNS" >> "$section"
  end_section
}

load_before=""
for b in "${benches[@]}"; do
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)  # other jobs on the machine, before ours
  "bench_$b"
done
say "done"
