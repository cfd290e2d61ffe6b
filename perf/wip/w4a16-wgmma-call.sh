#!/usr/bin/env bash
# Forty-first session: the tiled W4A16 GEMM's blocks on wgmma (kernels/sm90a/w4a16_gemm_wgmma.cu),
# first run. Tests (the new kernel against the reference at every n-tile width and split, and the
# tiled GEMM's own), then BM_W4A16GemmSplits at 16-64 rows: tiled splits, n-tiles of 32, and the
# wgmma kernel at its own rule and every split, against fp16, in one run.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-call.sh
#   TEST_FILTER, BENCH_FILTER (the split map), VSFP16_FILTER (issue 9's rows, none by default) and
#   MEMCHECK_FILTER (compute-sanitizer memcheck over those tests, none by default). Call 2 ran it as
#   TEST_FILTER='KernelW4A16Gemm.*:KernelW4A16Linear.*:W4A16ModelShapes*'
#   BENCH_FILTER='BM_W4A16GemmSplits/[0-7]/(48|64)/' VSFP16_FILTER='BM_W4A16VsFp16/[0-7]/(48|64)/'
#   MEMCHECK_FILTER='KernelW4A16Gemm.Wgmma*' (then a script of its own, folded in here).
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
nvidia-smi --query-gpu=name --format=csv,noheader
build_gpu ridgeline_gpu_tests ridgeline_bench
RIDGELINE_REQUIRE_GPU=1 timeout 120 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter="${TEST_FILTER:-KernelW4A16Gemm.*}" >"$W/tests.log" 2>&1
echo "tests exit $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests? ran|Failure|NMSE|nmse" "$W/tests.log" | head -20
timeout ${BENCH_TIMEOUT:-240} build-gpu/bench/ridgeline_bench \
  --benchmark_filter="${BENCH_FILTER:-BM_W4A16GemmSplits/[0-7]/(16|32|48|64)/}" \
  --benchmark_out="$W/splits.json" --benchmark_out_format=json >"$W/splits.log" 2>&1
echo "bench exit $?"
python3 perf/wip/wgmma-summary.py "$W/splits.json"
if [ -n "${VSFP16_FILTER:-}" ]; then
  timeout 150 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x --benchmark_filter="$VSFP16_FILTER" \
    --benchmark_out="$W/vsfp16.json" --benchmark_out_format=json >"$W/vsfp16.log" 2>&1
  echo "vsfp16 exit $?"
  python3 - "$W/vsfp16.json" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(b["name"].split("/iter")[0], b.get("label", ""), " ".join(
        f"{k}={v:.2f}" for k, v in b.items() if k.startswith(("us_", "x_"))))
PY
fi
if [ -n "${MEMCHECK_FILTER:-}" ]; then
  timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
    --gtest_filter="$MEMCHECK_FILTER" >"$W/memcheck.log" 2>&1
  echo "memcheck exit $?"
  grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$W/memcheck.log" | tail -3
fi
