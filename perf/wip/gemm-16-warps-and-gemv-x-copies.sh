#!/usr/bin/env bash
# One device call (~5 minutes from a bare machine), queued by the twenty-sixth session (perf/NOTES.md):
#  1. perf/wip/w4a16-gemm-16-warps-k4.patch against HEAD (scripts/gpu-kernel-ab.sh, one build tree):
#     BM_W4A16VsFp16 at M = 16..256 and BM_W4A16GemmSplits at M = 32 / 64, the GEMM tests, and
#     DecodeBench. Prediction: the issue-9 cells still short (wqkv / wo at M = 48-64, 0.80-0.91x
#     fp16) 10-25% faster; 7b w13 slower (224 strips at one block an SM: 1.7 waves).
#  2. Why x's copies stepped by pointer (perf/wip/w4a16-gemv-x-copies-stepped.patch) lose at M <= 8:
#     Nsight Compute per-SASS-line summaries of the ring GEMV at 7b w2 M = 4 (BM_W4A16VsFp16/7/4/),
#     HEAD's and the patch's.
#
#   perf/wip/gemm-16-warps-and-gemv-x-copies.sh OUTDIR
#
# Writes OUTDIR/k4/ (ab.txt, old/new JSON, tests, decode-*.txt) and OUTDIR/sass-gemv-x-{head,stepped}/.
# Set RIDGELINE_GIT_COMMIT to the local HEAD first (the device's .git is stale). Leaves the tree as
# HEAD (both patches reversed).
set -uo pipefail
out=${1:?usage: perf/wip/gemm-16-warps-and-gemv-x-copies.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=${RIDGELINE_BUILD_DIR:-build-gpu}
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
RIDGELINE_BENCH_FILTER='BM_W4A16VsFp16/[0-7]/(16|32|48|64|128|256)/|BM_W4A16GemmSplits/[0-7]/(32|64)/' \
RIDGELINE_BENCH_MIN_TIME=30x RIDGELINE_TEST_FILTER='KernelW4A16Gemm*:W4A16ModelShapes*:CudaW4A16.*' \
RIDGELINE_AB_DECODE=DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets \
  bash scripts/gpu-kernel-ab.sh "$out/k4" perf/wip/w4a16-gemm-16-warps-k4.patch - 2>&1 | tail -3
grep -E "PASSED|FAILED" "$out/k4/tests.log" | tail -3
grep -E "BM_W4A16VsFp16/[0-7]/(48|64)/" "$out/k4/ab.txt"
git apply -R perf/wip/w4a16-gemm-16-warps-k4.patch 2>/dev/null || patch -p1 -R <perf/wip/w4a16-gemm-16-warps-k4.patch >/dev/null
bash scripts/refresh-mtimes.sh "$build" >/dev/null
cmake --build "$build" -j16 --target ridgeline_bench >"$out/build-head.log" 2>&1 || { echo "HEAD build failed"; exit 1; }
timeout 100 bash scripts/ncu-sass.sh "$out/sass-gemv-x-head" w4a16_gemv_kernel 'BM_W4A16VsFp16/7/4/'
p=perf/wip/w4a16-gemv-x-copies-stepped.patch
git apply "$p" 2>/dev/null || patch -p1 --forward <"$p" >/dev/null || { echo "$p does not apply"; exit 1; }
cmake --build "$build" -j16 --target ridgeline_bench >>"$out/build-head.log" 2>&1 || { echo "patched build failed"; exit 1; }
timeout 100 bash scripts/ncu-sass.sh "$out/sass-gemv-x-stepped" w4a16_gemv_kernel 'BM_W4A16VsFp16/7/4/'
git apply -R "$p" 2>/dev/null || patch -p1 -R <"$p" >/dev/null
