#!/usr/bin/env bash
# One spoken turn through the yandexrealtime element: question.ogg in,
# answer.wav out, the transcript and the answer's text printed.
#
#   examples/demo.sh
#
# Builds the plugin into build/ first (and installs the Debian packages the
# build needs, with tests/install-packages.sh).  Talks to Yandex Cloud when
# YANDEX_CLOUD_API_KEY or YANDEX_CLOUD_IAM_TOKEN, plus YANDEX_CLOUD_FOLDER_ID,
# are set; otherwise to the bundled emulator (canned transcript and answer).
#
# Environment:
#   BUILD_DIR      build directory, relative to the repository (default: build)
#   QUESTION       input file, any format decodebin reads (default: question.ogg
#                  in the repository; made when absent)
#   ANSWER         output WAV (default: answer.wav in the repository)
#   DEMO_TEXT      what espeak-ng says when it makes question.ogg
#   DEMO_VOICE     espeak-ng voice for DEMO_TEXT (default: ru)
#   DEMO_EMULATOR  1 = use the emulator even when credentials are set
set -euo pipefail

caller_dir=$PWD
cd "$(dirname "$0")/.."
root=$PWD

absolute() {  # relative paths are taken from where the script was called
  case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$caller_dir/$1" ;; esac
}

BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$root/$BUILD_DIR ;; esac
if [ -n "${QUESTION:-}" ]; then QUESTION=$(absolute "$QUESTION"); else QUESTION=$root/question.ogg; fi
if [ -n "${ANSWER:-}" ]; then ANSWER=$(absolute "$ANSWER"); else ANSWER=$root/answer.wav; fi
DEMO_TEXT=${DEMO_TEXT:-"Здравствуйте! Расскажите в двух словах, что такое GStreamer."}
DEMO_VOICE=${DEMO_VOICE:-ru}

say() { printf '== %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

tmp=$(mktemp -d)
emulator_pid=""
cleanup() {
  if [ -n "$emulator_pid" ]; then
    kill "$emulator_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$emulator_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- packages ----
tests/install-packages.sh

# ---- build ----
if [ ! -d "$BUILD_DIR" ]; then
  say "configuring $BUILD_DIR"
  meson setup "$BUILD_DIR"
fi
say "building $BUILD_DIR"
meson compile -C "$BUILD_DIR"
[ -f "$BUILD_DIR/gst/libgstyandexrealtime.so" ] || die "the plugin was not built in $BUILD_DIR/gst"

# ---- question ----
caps="audio/x-raw,format=S16LE,rate=24000,channels=1"
if [ ! -e "$QUESTION" ]; then
  if command -v espeak-ng >/dev/null; then
    say "making $QUESTION with espeak-ng: $DEMO_TEXT"
    espeak-ng -v "$DEMO_VOICE" -w "$tmp/speech.wav" "$DEMO_TEXT"
    first="filesrc location=$tmp/speech.wav ! wavparse"
  else
    say "making $QUESTION: 1.5 s of a 300 Hz tone (no espeak-ng for speech)"
    first="audiotestsrc wave=sine freq=300 samplesperbuffer=2400 num-buffers=15"
  fi
  # The speech (or tone), then 1 s of silence so that the turn ends cleanly.
  # shellcheck disable=SC2086  # $first is a pipeline description
  gst-launch-1.0 -q concat name=c ! audioconvert ! vorbisenc ! oggmux \
      ! filesink location="$tmp/question.ogg" \
    $first ! audioconvert ! audioresample ! "$caps" ! c. \
    audiotestsrc wave=silence samplesperbuffer=2400 num-buffers=10 ! "$caps" ! c. \
    > "$tmp/make-question.log" 2>&1 || { cat "$tmp/make-question.log" >&2; die "could not make $QUESTION"; }
  mv "$tmp/question.ogg" "$QUESTION"
fi

# ---- service or emulator ----
props=()
run_env=()
if [ "${DEMO_EMULATOR:-0}" != 1 ] && [ -n "${YANDEX_CLOUD_FOLDER_ID:-}" ] &&
    { [ -n "${YANDEX_CLOUD_API_KEY:-}" ] || [ -n "${YANDEX_CLOUD_IAM_TOKEN:-}" ]; }; then
  # The element reads the credentials from the environment itself, so they
  # never appear on a command line.
  say "talking to Yandex Cloud (folder $YANDEX_CLOUD_FOLDER_ID)"
  command -v espeak-ng >/dev/null || [ "$QUESTION" != "$root/question.ogg" ] ||
    say "note: without espeak-ng question.ogg is a tone, which the service does not take for speech"
else
  emulator=$BUILD_DIR/tests/emulator/yandexrealtime-emulator
  [ -x "$emulator" ] || die "$emulator was not built (it needs gstreamer-check-1.0; try: meson configure $BUILD_DIR -Dtests=enabled)"
  "$emulator" --port 0 --api-key demo --speak \
      --answer-text "Hello! This answer comes from the bundled emulator." \
      > "$tmp/emulator.out" 2> "$tmp/emulator.err" &
  emulator_pid=$!
  url=""
  for _ in $(seq 100); do
    # read succeeds only once the whole first line is there
    if IFS= read -r url < "$tmp/emulator.out"; then break; fi
    kill -0 "$emulator_pid" 2>/dev/null || { cat "$tmp/emulator.err" >&2; die "the emulator exited"; }
    sleep 0.1
  done
  case $url in ws://*) ;; *) cat "$tmp/emulator.err" >&2; die "the emulator printed no URL" ;; esac
  say "talking to the emulator at $url (set YANDEX_CLOUD_API_KEY and YANDEX_CLOUD_FOLDER_ID for the real service)"
  props=(location="$url" api-key=demo)
  run_env=(-u YANDEX_CLOUD_API_KEY -u YANDEX_CLOUD_IAM_TOKEN -u YANDEX_CLOUD_FOLDER_ID)
fi

# ---- the turn ----
log=$BUILD_DIR/demo-messages.log
say "asking $QUESTION"
status=0
env "${run_env[@]}" GST_PLUGIN_PATH="$BUILD_DIR/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" \
  gst-launch-1.0 -m filesrc location="$QUESTION" ! decodebin ! audioconvert \
    ! yandexrealtime "${props[@]}" ! wavenc ! filesink location="$ANSWER" \
    > "$log" 2>&1 || status=$?

# Final transcripts and answers, from lines such as
#   Got message #12 from element "yandexrealtime0" (element): yandexrealtime/transcript,
#     item-id=(string)item_1, text=(string)"turn\ 1", final=(boolean)true;
# Strings are serialized with backslash escapes and non-ASCII bytes as \ooo.
perl -ne '
  next unless m{\(element\): yandexrealtime/(transcript|response-text), .*final=\(boolean\)true;};
  my $kind = $1;
  next unless m{ text=\(string\)(?:"((?:[^"\\]|\\.)*)"|([^,;]*))};
  my $text = defined $1 ? $1 : $2;
  $text =~ s/\\(?:([0-7]{3})|(.))/defined $1 ? chr(oct $1) : $2/ge;
  printf "== %-11s %s\n", $kind eq "transcript" ? "you said:" : "agent said:", $text;
' "$log" > "$tmp/turns.txt"
if [ -s "$tmp/turns.txt" ]; then
  cat "$tmp/turns.txt"
else
  say "no transcript or answer text arrived"
fi

if [ "$status" -ne 0 ]; then
  grep -E '^(ERROR|WARNING)' -A3 "$log" >&2 || tail -n 20 "$log" >&2
  die "gst-launch-1.0 failed (exit $status); all messages are in $log"
fi
grep -E '^WARNING' -A3 "$log" >&2 || true

# ---- the answer ----
perl -e '
  my $path = shift;
  open my $f, "<:raw", $path or die "demo: cannot open $path: $!\n";
  local $/; my $d = <$f>;
  die "demo: $path is not a WAV file\n"
    unless length $d >= 12 && substr ($d, 0, 4) eq "RIFF" && substr ($d, 8, 4) eq "WAVE";
  my ($pos, $rate, $channels, $bits, $byterate, $data) = (12);
  while ($pos + 8 <= length $d) {
    my ($id, $size) = unpack "a4 V", substr ($d, $pos, 8);
    if ($id eq "fmt ") {
      (undef, $channels, $rate, $byterate, undef, $bits) = unpack "v v V V v v", substr ($d, $pos + 8, 16);
    } elsif ($id eq "data") {
      $data = $size; last;
    }
    $pos += 8 + $size + ($size & 1);
  }
  die "demo: $path has no fmt or data chunk\n" unless $byterate && defined $data;
  die "demo: $path is truncated\n" if $pos + 8 + $data > length $d;
  printf "== %s: %d bytes, %.2f s of audio (%d Hz, %d channel(s), %d bit)\n",
    $path, length $d, $data / $byterate, $rate, $channels, $bits;
' "$ANSWER"
say "all bus messages: $log"
