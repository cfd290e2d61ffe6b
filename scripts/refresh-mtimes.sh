#!/usr/bin/env bash
# Makes the build see every source whose content changed since the last build in BUILD_DIR, whatever
# its mtime. Why: a machine that receives the tree by copy keeps each file's original mtime, so a
# source put back to an older version (the committed one, after a candidate patch was built in the
# same build folder) looks older than its object and ninja keeps the candidate's object. That
# happened: one session's baselines were built with two reverted candidates still inside.
# Keeps BUILD_DIR/.ridgeline-sources.md5 (content hashes at the last call) and touches every source
# whose hash differs or is new; without that record (a build folder older than this script), all.
#
#   scripts/refresh-mtimes.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: scripts/refresh-mtimes.sh BUILD_DIR}
cd "$(dirname "$0")/.."
mkdir -p "$build"
record=$build/.ridgeline-sources.md5
now=$(mktemp)
find kernels engine bench tests cli analysis fuzz cmake -type f \
  \( -name '*.cu' -o -name '*.cuh' -o -name '*.cpp' -o -name '*.h' -o -name '*.cmake' -o -name CMakeLists.txt \) \
  -print0 2>/dev/null | sort -z | xargs -0 md5sum >"$now"
md5sum CMakeLists.txt >>"$now"
if [ -f "$record" ]; then
  changed=$(sort "$record" | comm -13 - <(sort "$now") | cut -c35-)
else
  changed=$(cut -c35- "$now")
fi
[ -z "$changed" ] || printf '%s\n' "$changed" | xargs -d '\n' touch
echo "refresh-mtimes: $(printf '%s' "$changed" | grep -c . || true) sources touched" >&2
mv "$now" "$record"
