#!/bin/sh
# Makes DIR a GStreamer plugin directory that holds only the named plugins,
# as symbolic links, so that a program run with
# GST_PLUGIN_SYSTEM_PATH_1_0=DIR (and an empty GST_PLUGIN_PATH_1_0) opens
# those and no other plugin installed on the machine (meson calls it at
# configure time; see tests/check/meson.build).
#
#   tests/plugin-dir.sh SEARCH OWN DIR NAME...
#
# SEARCH  where installed plugins are, directories separated by ':'
# OWN     the plugin files this build makes, separated by ':' (they need not
#         exist yet)
# DIR     made afresh
# NAME    a plugin by file name: NAME is libgstNAME.so, looked up in OWN, then
#         in SEARCH.  One not found is linked where it would be installed and
#         reported on stderr; it works once installed, without reconfiguring.
set -eu
search=$1 own=$2 dir=$3
shift 3
rm -rf "$dir"
mkdir -p "$dir"
for name in "$@"; do
  file=libgst$name.so
  target=""
  old_ifs=$IFS; IFS=:
  for path in $own; do
    [ "$(basename "$path")" = "$file" ] && { target=$path; break; }
  done
  if [ -z "$target" ]; then
    for d in $search; do
      [ -e "$d/$file" ] && { target=$d/$file; break; }
    done
  fi
  IFS=$old_ifs
  if [ -z "$target" ]; then
    target=${search%%:*}/$file
    echo "GStreamer plugin $name: no $file in $search; install the package that has it" >&2
  fi
  ln -s "$target" "$dir/$file"
done
