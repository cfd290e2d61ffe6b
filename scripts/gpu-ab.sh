#!/usr/bin/env bash
# Before/after on a GPU: times the same decode configurations with two builds of ridgeline,
# interleaved (A B A B ...) so that clock and thermal drift land on both, and prints the median step
# time of each run of each build.
#
#   scripts/gpu-ab.sh OLD_RIDGELINE NEW_RIDGELINE OUTDIR [ROUNDS] [sweep args...]
#
# OLD_RIDGELINE is a `ridgeline` binary built from the commit to compare against (e.g. from
# `git archive <commit> | tar -x -C old && cmake --preset gpu -S old -B old/build-gpu`); the
# default sweep arguments are `--batch 1 --context 1024` on the 1.8b preset.
set -uo pipefail
old=${1:?usage: scripts/gpu-ab.sh OLD NEW OUTDIR [ROUNDS] [sweep args...]}
new=${2:?usage}
out=${3:?usage}
rounds=${4:-2}
shift 4 2>/dev/null || shift $#
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--batch 1 --context 1024)
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  for side in old new; do
    bin=$old
    [ $side = new ] && bin=$new
    "$bin" sweep --device cuda "${args[@]}" --out "$out/ab-$side-$r.json" 2>"$out/ab-$side-$r.log" ||
      echo "ab: $side round $r failed (see $out/ab-$side-$r.log)"
    echo "ab $side round $r: $(grep -E '^\[[0-9]+/[0-9]+\]' "$out/ab-$side-$r.log" | sed 's/^\[[0-9/]*\] //' | tr '\n' ';')"
  done
done
