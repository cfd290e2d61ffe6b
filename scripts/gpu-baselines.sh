#!/usr/bin/env bash
# The baselines of reports/baselines/ for the card it runs on (h200-*, h100-*, ...) in one go, as each session has refreshed them by hand:
# builds ridgeline, measures the ceilings (`ridgeline probe`), sweeps both presets over both weight
# formats and all three KV formats (1.8b: batch 1..256 x context 1024/4096/8192; 7b: batch 1, 16, 64
# x context 1024/8192) and prefills one sequence of 512 and 2048 tokens of each (both weight formats,
# fp16 KV), compares each against the committed baseline and writes the new ones where they can be
# committed as they are.
#
#   scripts/gpu-baselines.sh OUTDIR
#
# Writes OUTDIR/ceilings.json, OUTDIR/<card>-internlm2-chat-{1_8b,7b}{,-prefill}.json.gz (gzipped by
# the sweep itself, as the committed ones are: the 1.8b decode sweep is 11 MB as JSON, 1.3 MB gzipped,
# and the tree a device call carries is capped at 64 MiB), OUTDIR/compare-{1_8b,7b}{,-prefill}.md and
# the sweeps' logs, and all of it again as one archive
# beside the folder, OUTDIR.tgz (a remote runner that returns a bounded number of files, like the
# device tool's $OUT, then still returns the reports). Takes about 3 minutes after the build.
# Environment: RIDGELINE_GIT_COMMIT, the commit under test (the device machines' copy of .git is
# stale: set it to the local `git rev-parse HEAD`, or the reports record the copy's HEAD);
# RIDGELINE_BUILD_DIR (default build-gpu); RIDGELINE_BASELINE_PREFIX (default the card's short name
# from nvidia-smi, "NVIDIA H200" -> h200, as scripts/gpu-ci.sh names its baseline; one naming another
# card is refused before the build: an H100 run once wrote h200-*.json and compared them against the
# H200 baselines, 119 "regressions" that were the card);
# RIDGELINE_BASELINE_PRESETS, the presets to sweep (default "1_8b 7b"; "7b" alone after a change
# that only 7b's rows can see saves the 1.8b sweep's ~90 s of device time); RIDGELINE_BASELINE_PHASES,
# the phases (default "decode prefill"; "prefill" alone refreshes the prefill reports in seconds);
# RIDGELINE_BASELINE_TARGETS=1
# (below) adds the targets table.
set -uo pipefail
out=${1:?usage: scripts/gpu-baselines.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
build=${RIDGELINE_BUILD_DIR:-build-gpu}
# nvidia-smi that cannot reach the driver prints its complaint on stdout: only a name it gave counts.
card=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null) || card=
card=$(echo "$card" | head -1 | tr '[:upper:]' '[:lower:]' | sed -e 's/^nvidia //' -e 's/[^a-z0-9].*//')
prefix=${RIDGELINE_BASELINE_PREFIX:-${card:-unknown}}
if [ -n "$card" ] && [ "${prefix%%-*}" != "$card" ]; then
  echo "gpu-baselines: this GPU is an $card, and RIDGELINE_BASELINE_PREFIX=$prefix names another card's" \
    "baselines: unset it (the card's name is the default) or set it to $card" >&2
  exit 1
fi
echo "gpu-baselines: ${card:-no GPU found by nvidia-smi}, files $prefix-*.json.gz"
export PATH="/usr/local/cuda/bin:$PATH"
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
bash scripts/refresh-mtimes.sh "$build"
cmake --build "$build" -j16 --target ridgeline >"$out/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
r=$build/ridgeline
"$r" probe --out "$out/ceilings.json" >"$out/probe.log" 2>&1 || { tail -5 "$out/probe.log"; exit 1; }
tail -3 "$out/probe.log"
status=0
sweep() {  # name, then the sweep's own arguments
  local name=$1
  shift
  local report=$out/$prefix-internlm2-chat-$name.json.gz  # --out *.gz: the sweep writes it gzipped
  "$r" sweep --weights fp16,w4a16 --ceilings "$out/ceilings.json" "$@" \
    --out "$report" >"$out/sweep-$name.log" 2>&1 || { echo "sweep $name failed"; tail -5 "$out/sweep-$name.log"; status=1; return; }
  rm -f "$out/compare-$name.md"
  local base=reports/baselines/$prefix-internlm2-chat-$name.json.gz
  if [ -f "$base" ]; then  # a regression (or a failed comparison) fails the script; the verdict is line 3
    "$r" compare "$base" "$report" --md "$out/compare-$name.md" \
      >"$out/compare-$name.log" 2>&1 || { echo "compare $name: exit $? (see compare-$name.log)"; status=1; }
    [ -f "$out/compare-$name.md" ] && sed -n 3p "$out/compare-$name.md"
  fi
}
presets=" ${RIDGELINE_BASELINE_PRESETS:-1_8b 7b} "
phases=" ${RIDGELINE_BASELINE_PHASES:-decode prefill} "
if [[ $phases == *" decode "* ]]; then
  [[ $presets == *" 1_8b "* ]] && sweep 1_8b --kv fp16,int8,int4 --context 1024,4096,8192
  [[ $presets == *" 7b "* ]] && sweep 7b --model internlm2-chat-7b --kv fp16,int8,int4 --batch 1,16,64 --context 1024,8192
fi
# Prefill, fp16 KV (the quantized caches' prefill is the same GEMMs; their attention is in
# bench/results/): one sequence of 512 and of 2048 tokens, the prefill row of issue 12.
prefill=(--kv fp16 --phase prefill --batch 1 --prompt-len 512,2048 --iters 10 --warmup 2)
if [[ $phases == *" prefill "* ]]; then
  [[ $presets == *" 1_8b "* ]] && sweep 1_8b-prefill "${prefill[@]}"
  [[ $presets == *" 7b "* ]] && sweep 7b-prefill --model internlm2-chat-7b "${prefill[@]}"
fi
# With RIDGELINE_BASELINE_TARGETS=1 also the kernel benchmarks the issues' targets name (a few minutes
# more; BM_W4A16VsFp16 at every M it has, 1..256 and the prefill sizes, as issue 9 asks for the
# comparison, though its targets stop at 64; BM_W4A16ReadFloor, the most a one-launch W4A16 linear
# could reach, ~1 min), and scripts/targets.py's table of every target over the new reports:
# OUTDIR/targets.md.
if [ "${RIDGELINE_BASELINE_TARGETS:-0}" = 1 ]; then
  # The committed reports stand in for a preset this run did not sweep (the table's first line names
  # each report's commit); a benchmark run that failed leaves its rows "not measured".
  if cmake --build "$build" -j16 --target ridgeline_bench >>"$out/build.log" 2>&1; then
    "$build/bench/ridgeline_bench" --benchmark_min_time=30x \
      --benchmark_filter='BM_GemmFp16/[0-7]/(1|2|4)/|BM_DecodeAttention/|BM_W4A16VsFp16/[0-7]/[0-9]+/|BM_W4A16ReadFloor/' \
      --benchmark_out="$out/targets-bench.json" --benchmark_out_format=json >"$out/targets-bench.log" 2>&1 ||
      { echo "the targets' benchmarks failed (see targets-bench.log)"; status=1; }
  else
    echo "ridgeline_bench did not build (see build.log)"
    status=1
  fi
  python3 scripts/targets.py --breakdown --baselines "$out" --baselines reports/baselines --prefix "$prefix" \
    --ceilings "$out/ceilings.json" "$out/targets-bench.json" >"$out/targets.md" || status=1
  cat "$out/targets.md"
fi
echo "baselines in $out: copy them to reports/baselines/ to commit them; re-render the example with" \
  "ridgeline report reports/baselines/$prefix-internlm2-chat-1_8b.json.gz -o reports/examples/$prefix-internlm2-chat-1_8b.md (and .html)"
tar czf "$out.tgz" -C "$(dirname "$out")" "$(basename "$out")" || { echo "could not archive $out"; status=1; }
exit $status
