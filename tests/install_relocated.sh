#!/usr/bin/env bash
# An installed ridgeline works anywhere, with the source tree gone: installs the build into a
# temporary prefix, moves the prefix elsewhere, hides the source tree (a private mount namespace
# with an empty tmpfs over it, where the system allows one), and from / runs `tokenize` with the
# bundled tokenizer (by name) and a CPU sweep of the bundled tiny model.
#
#   tests/install_relocated.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
mv "$work/prefix" "$work/moved"
rl="$work/moved/bin/ridgeline"
unset RIDGELINE_DATA_DIR
run='cd / && "$0" tokenize --tokenizer internlm2 --text hi && "$0" sweep --device cpu --batch 1 --context 64 --iters 2 --warmup 0 --out "$1/run.json"'
if unshare -m true 2>/dev/null; then
  echo "install_relocated: source tree $src hidden under an empty tmpfs"
  unshare -m sh -c "mount -t tmpfs none '$src' && $run" "$rl" "$work"
else
  echo "install_relocated: cannot hide the source tree here (no unshare -m); running relocated only"
  sh -c "$run" "$rl" "$work"
fi
grep -q '"schema": "ridgeline.report.v1"' "$work/run.json"
echo "install_relocated: ok"
