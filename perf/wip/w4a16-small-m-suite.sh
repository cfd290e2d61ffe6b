#!/usr/bin/env bash
# Fortieth session's closing call (~7 min from a bare machine): the whole GPU suite at HEAD after the
# plain GEMV's own layouts at 1-8 rows (choose_plain_config), then issue 9's table, BM_W4A16VsFp16 at
# every M, in the time left.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-small-m-suite.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline_gpu_tests ridgeline_bench
RIDGELINE_REQUIRE_GPU=1 timeout 150 build-gpu/tests/ridgeline_gpu_tests >"$W/gpu-suite.log" 2>&1
echo "GPU suite exit $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran" "$W/gpu-suite.log" | head -8
timeout 120 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x \
  --benchmark_filter='BM_W4A16VsFp16/[0-7]/(1|2|4|8|16|24|32|48|64|128|256)/' \
  --benchmark_out="$W/vsfp16.json" --benchmark_out_format=json >"$W/vsfp16.log" 2>&1
echo "bench exit $?"
