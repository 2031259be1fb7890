#!/usr/bin/env bash
# Installs the Debian packages the build needs, plus any named on the command
# line, when some are missing: apt-get update once, then apt-get install -y,
# as root or through sudo.  tests/run.sh and examples/demo.sh call it.
#
#   tests/install-packages.sh [package ...]
set -euo pipefail

packages=(meson ninja-build pkg-config g++ libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev libsoup-3.0-dev libjson-glib-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  glib-networking openssl
  gstreamer1.0-plugins-bad gstreamer1.0-x  # srtenc and textoverlay (the text pads)
  "$@")
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
