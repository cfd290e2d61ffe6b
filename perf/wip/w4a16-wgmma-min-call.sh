#!/usr/bin/env bash
# Forty-first session, the smallest useful call (~3.5 min from a bare machine) when the device budget
# is nearly spent: the W4A16 GPU tests and memcheck over the wgmma test at HEAD, and issue 9's
# 48/64-row cells with the split map. No decode steps (perf/wip/w4a16-wgmma-lean-call.sh has them).
#
#   OUT=/some/dir bash perf/wip/w4a16-wgmma-min-call.sh
source "$(dirname "$0")/device-call.sh"
nvidia-smi --query-gpu=name --format=csv,noheader
build_gpu ridgeline_gpu_tests ridgeline_bench
RIDGELINE_REQUIRE_GPU=1 timeout 60 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelW4A16Gemm.*:KernelW4A16Linear.*:W4A16ModelShapes*' >"$W/tests.log" 2>&1
echo "tests exit $?"
grep -E "Failure|^\[  (PASSED|FAILED|SKIPPED) " "$W/tests.log" | head -8
timeout 30 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x \
  --benchmark_filter='BM_W4A16VsFp16/[0-7]/(48|64)/|BM_W4A16GemmSplits/[0-7]/(48|64)/' \
  --benchmark_out="$W/bench.json" --benchmark_out_format=json >"$W/bench.log" 2>&1
echo "bench exit $?"
python3 perf/wip/wgmma-summary.py "$W/bench.json"
python3 - "$W/bench.json" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b["name"].startswith("BM_W4A16VsFp16"):
        print(b["name"].split("/iter")[0], b.get("label", "").split()[0],
              f"w4a16 {b['us_w4a16']:.2f} fp16 {b['us_fp16']:.2f} x {b['x_vs_fp16']:.2f}")
PY
timeout 45 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelW4A16Gemm.Wgmma*' >"$W/memcheck.log" 2>&1
echo "memcheck exit $?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$W/memcheck.log" | tail -3
