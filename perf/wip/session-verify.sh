#!/usr/bin/env bash
# One device call (~9 min from a bare machine) that closes a session whose GPU suite already ran in
# full on its HEAD and whose later changes are tests only: builds ridgeline, the GPU tests and the
# benchmarks in one go, runs the dynamic-NTK GPU test (its median-based form), the H200 baselines
# with the targets table (scripts/gpu-baselines.sh, RIDGELINE_BASELINE_TARGETS=1), then
# compute-sanitizer memcheck over decode attention and the quantized-KV engine in the time left.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/session-verify.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
RIDGELINE_REQUIRE_GPU=1 timeout 60 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='CudaEngineQuantizedKv.*' >"$W/quantized-kv.log" 2>&1
echo "quantized-KV engine tests exit $?"
grep -E "^dynamic NTK|Failure|Expected|actual|^\[  (PASSED|FAILED) " "$W/quantized-kv.log" | head -12
RIDGELINE_BASELINE_TARGETS=1 timeout 400 bash scripts/gpu-baselines.sh "$W/bl" >"$W/baselines.log" 2>&1
echo "baselines exit $? at $(( $(date +%s) - start )) s"
grep -vE "^\|" "$W/baselines.log" | tail -12
left=$(( 560 - ($(date +%s) - start) ))
if [ $left -gt 30 ]; then
  timeout $left compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
    --gtest_filter='KernelDecodeAttention*:CudaEngineQuantizedKv.*' >"$W/memcheck.log" 2>&1
  echo "memcheck exit $? (bound ${left} s)"
  grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) |^\[ RUN" "$W/memcheck.log" | tail -4
fi
