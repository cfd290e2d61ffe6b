#!/usr/bin/env bash
# Everything a change to kernels/ or the CUDA engine must show on a real GPU, in one call:
#   1. build (sm_90, Ninja, -j16);
#   2. scripts/gpu-check.sh: GPU tests, the B=1/B=16 decode benchmark, compute-sanitizer memcheck;
#   3. `ridgeline probe` (measured ceilings);
#   4. the default sweep twice, back to back (reproducibility of the median step time);
#   5. the kernel microbenchmarks (Google Benchmark JSON);
#   6. a chat transcript with the tiny model on the GPU.
# Results go under OUTDIR (at most a handful of files, logs packed into logs.tar.gz).
#
#   scripts/gpu-validate.sh OUTDIR
set -uo pipefail
out=${1:?usage: scripts/gpu-validate.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
build=${RIDGELINE_BUILD_DIR:-build-gpu}
logs="$out/logs"
mkdir -p "$logs"
export PATH="/usr/local/cuda/bin:$PATH"
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*" | tee -a "$logs/timeline.txt" >&2; }

stamp "build"
cmake --preset gpu -B "$build" >"$logs/configure.log" 2>&1 || { tail -30 "$logs/configure.log"; exit 1; }
cmake --build "$build" -j16 --target ridgeline ridgeline_gpu_tests ridgeline_bench >"$logs/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$logs/build.log" | head -30; exit 1; }
rl="$build/ridgeline"

stamp "gpu-check"
RIDGELINE_PREBUILT=1 RIDGELINE_BUILD_DIR="$build" scripts/gpu-check.sh "$logs/check" >"$logs/gpu-check.out" 2>&1
check=$?

stamp "probe"
"$rl" probe --out "$out/ceilings.json" >"$logs/probe.txt" 2>&1

stamp "sweep 1"
"$rl" sweep --out "$out/sweep1.json" 2>"$logs/sweep1.log"
stamp "sweep 2"
"$rl" sweep --out "$out/sweep2.json" 2>"$logs/sweep2.log"

stamp "kernel benchmarks"
"$build/bench/ridgeline_bench" --benchmark_min_time=0.05 --benchmark_out="$out/kernels.json" \
  --benchmark_out_format=json >"$logs/bench.txt" 2>&1

stamp "chat transcript"
printf 'What is 40 + 20?\nWhat is the capital of Kenya?\n/stats\n/reset\nRepeat after me: silver eagle rocket garden\n' |
  "$rl" chat --model tests/data/tiny-internlm2-chat --device cuda >"$logs/chat.txt" 2>&1
"$rl" generate --model tests/data/tiny-internlm2-chat --device cuda --chat "What is 40 + 20?" >>"$logs/chat.txt" 2>&1
"$rl" generate --model internlm2-chat-20b --device cuda --prompt "hello" --max-new-tokens 8 >>"$logs/chat.txt" 2>&1

stamp "done"
{
  echo "== gpu-check (exit $check)"
  cat "$logs/check/summary.txt" 2>/dev/null
  echo "== probe"
  cat "$logs/probe.txt"
  echo "== sweep 1"
  grep -E "^\[|sweep:" "$logs/sweep1.log"
  echo "== sweep 2"
  grep -E "^\[|sweep:" "$logs/sweep2.log"
  echo "== chat"
  cat "$logs/chat.txt"
  echo "== timeline"
  cat "$logs/timeline.txt"
} >"$out/summary.txt"
tar -czf "$out/logs.tar.gz" -C "$out" logs && rm -rf "$logs"
cat "$out/summary.txt"
