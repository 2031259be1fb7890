#!/usr/bin/env bash
# The browser voice chat (examples/webchat, docs/webchat.md): builds it,
# starts it and prints the URL to open.
#
#   examples/webchat.sh [server options ...]     e.g. --voice alena
#
# Talks to Yandex Cloud when YANDEX_CLOUD_API_KEY or YANDEX_CLOUD_IAM_TOKEN,
# plus YANDEX_CLOUD_FOLDER_ID, are set (the server reads them; the page
# never sees them); otherwise to the bundled emulator, which transcribes
# every turn as "turn <n>" and speaks a canned answer.  Ctrl+C stops it.
#
# Environment:
#   BUILD_DIR         build directory, relative to the repository (default: build)
#   PORT              HTTP port (default 8080; 0 = any free port)
#   ADDRESS           address to listen on (default 127.0.0.1; see docs/webchat.md
#                     before opening it to other machines)
#   WEBCHAT_EMULATOR  1 = use the emulator even when credentials are set
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

BUILD_DIR=${BUILD_DIR:-build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$root/$BUILD_DIR ;; esac
PORT=${PORT:-8080}
ADDRESS=${ADDRESS:-127.0.0.1}

say() { printf '== %s\n' "$*"; }
die() { printf 'webchat: %s\n' "$*" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Reads the first line a background program prints (its URL).
first_line() {  # file pid what
  local line=""
  for _ in $(seq 100); do
    if IFS= read -r line < "$1"; then printf '%s\n' "$line"; return; fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  cat "${1%.out}.err" >&2 2>/dev/null || true
  die "$3 printed no URL"
}

# ---- packages and build ----
tests/install-packages.sh libgstreamer-plugins-bad1.0-dev gstreamer1.0-plugins-bad gstreamer1.0-nice
if [ ! -d "$BUILD_DIR" ]; then
  say "configuring $BUILD_DIR"
  meson setup "$BUILD_DIR"
fi
say "building $BUILD_DIR"
meson compile -C "$BUILD_DIR"
server=$BUILD_DIR/examples/webchat/yandexrealtime-webchat
[ -x "$server" ] || die "$server was not built (it needs libgstreamer-plugins-bad1.0-dev; try: meson setup --reconfigure $BUILD_DIR)"

# ---- service or emulator ----
location=()
if [ "${WEBCHAT_EMULATOR:-0}" != 1 ] && [ -n "${YANDEX_CLOUD_FOLDER_ID:-}" ] &&
    { [ -n "${YANDEX_CLOUD_API_KEY:-}" ] || [ -n "${YANDEX_CLOUD_IAM_TOKEN:-}" ]; }; then
  say "talking to Yandex Cloud (folder $YANDEX_CLOUD_FOLDER_ID)"
else
  emulator=$BUILD_DIR/tests/emulator/yandexrealtime-emulator
  [ -x "$emulator" ] || die "$emulator was not built (it needs gstreamer-check-1.0; try: meson configure $BUILD_DIR -Dtests=enabled)"
  "$emulator" --port 0 --api-key webchat-demo --speak \
      --answer-text "Hello! This answer comes from the bundled emulator." \
      > "$tmp/emulator.out" 2> "$tmp/emulator.err" &
  pids+=($!)
  url=$(first_line "$tmp/emulator.out" "$!" "the emulator")
  say "talking to the emulator at $url (set YANDEX_CLOUD_API_KEY and YANDEX_CLOUD_FOLDER_ID for the real service)"
  location=(--location "$url")
  export YANDEX_CLOUD_API_KEY=webchat-demo
  unset YANDEX_CLOUD_IAM_TOKEN YANDEX_CLOUD_FOLDER_ID
fi

# ---- the server ----
GST_PLUGIN_PATH="$BUILD_DIR/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" \
  "$server" --address "$ADDRESS" --port "$PORT" "${location[@]}" "$@" \
  > "$tmp/server.out" 2> "$tmp/server.err" &
pids+=($!)
server_pid=$!
page=$(first_line "$tmp/server.out" "$server_pid" "the server")
say "open $page in a browser (Ctrl+C stops the server)"
tail -n +2 -f "$tmp/server.out" --pid "$server_pid" &
pids+=($!)
wait "$server_pid"
