#!/usr/bin/env bash
# The first device call of the next session (queued by the thirtieth, which had no device), ~8-9
# minutes from a bare machine, under the 10-minute limit of one call:
#   1. the full GPU suite (every test but DecodeBench.*), RIDGELINE_REQUIRE_GPU=1: the thirtieth's new
#      and tightened GPU tests (CudaW4A16.AnUnquantizedCheckpointQuantizedAtLoadRunsAsItsRtnCheckpoint,
#      KernelDecodeAttention.TheNewestTokenIsNeverLost, the per-format attention NMSE limits, the
#      quantized-KV nearer-reference checks) and the twenty-ninth's dynamic-NTK test have never run;
#   2. perf/wip/layer-stream-ldg-probe.sh: the persistent-layer probe (same build folder, so only the
#      bench target rebuilds).
# Each stage is bounded so that a hang in one leaves the other's results.
#
#   OUT=/some/dir bash perf/wip/session-first-call.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
start=$(date +%s)
cmake --preset gpu -B build-gpu >"$W/cfg.log" 2>&1 || { tail -20 "$W/cfg.log"; exit 1; }
bash scripts/refresh-mtimes.sh build-gpu >/dev/null
cmake --build build-gpu -j16 --target ridgeline ridgeline_gpu_tests ridgeline_bench >"$W/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$W/build.log" | head -30; exit 1; }
echo "built in $(( $(date +%s) - start )) s"
RIDGELINE_REQUIRE_GPU=1 timeout 300 build-gpu/tests/ridgeline_gpu_tests --gtest_filter='-DecodeBench.*' \
  >"$W/gpu-tests.log" 2>&1
echo "gpu tests exit $? at $(( $(date +%s) - start )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$W/gpu-tests.log" | head -40
grep -E "^\[(w4a16 at load|kv)\]" "$W/gpu-tests.log" | head -20
RIDGELINE_BUILD_DIR=build-gpu timeout 280 bash perf/wip/layer-stream-ldg-probe.sh "$W/ldg"
echo "probe exit $? at $(( $(date +%s) - start )) s"
