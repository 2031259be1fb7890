#!/usr/bin/env bash
# Installs the Debian packages the build needs, plus any named on the command
# line, when some are missing: apt-get update once, then apt-get install -y,
# as root or through sudo.  tests/run.sh and examples/demo.sh call it.
#
#   tests/install-packages.sh [--webchat] [--phone] [package ...]
#
# --webchat: also what examples/webchat and its browser test need: WebRTC
# (gst-plugins-bad, libnice's plugin), Debian's Chromium, espeak-ng (and
# libespeak-ng-dev, so that the emulator speaks its answers), nginx and the
# Prometheus client's text parser (python3-prometheus-client) for the
# load-balancer test (webchat-lb), Node.js and npm (unless node and npm are
# there already), then puppeteer-core into tests/webchat/node_modules (npm ci,
# from tests/webchat/package-lock.json).
#
# --phone: what examples/phone and its test need: sofia-sip's GLib
# integration (libsofia-sip-ua-glib-dev), Debian's baresip (the softphone
# that calls it), gst-libav (G.722).
set -euo pipefail

webchat=0
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --webchat)
      webchat=1
      extra+=(libgstreamer-plugins-bad1.0-dev gstreamer1.0-plugins-bad gstreamer1.0-nice
        chromium espeak-ng libespeak-ng-dev nginx python3-prometheus-client)
      command -v node >/dev/null && command -v npm >/dev/null || extra+=(nodejs npm)
      ;;
    --phone)
      extra+=(libsofia-sip-ua-glib-dev baresip gstreamer1.0-libav)
      ;;
    *) extra+=("$1") ;;
  esac
  shift
done
packages=(meson ninja-build pkg-config g++ libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev libsoup-3.0-dev libjson-glib-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  glib-networking openssl  # wss:// and the TLS suite's test CA
  gstreamer1.0-plugins-bad gstreamer1.0-x  # srtenc and textoverlay (the text pads)
  ${extra[@]+"${extra[@]}"})
if ! command -v dpkg-query >/dev/null; then
  echo "== not Debian: install by hand: ${packages[*]}"
  exit 0
fi
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

if [ "$webchat" = 1 ] && [ ! -f "$(dirname "$0")/webchat/node_modules/puppeteer-core/package.json" ]; then
  echo "== installing puppeteer-core into tests/webchat/node_modules"
  # puppeteer-core never downloads a browser: the test uses /usr/bin/chromium.
  npm ci --prefix "$(dirname "$0")/webchat" --no-audit --no-fund
fi
