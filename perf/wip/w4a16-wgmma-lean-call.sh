#!/usr/bin/env bash
# Forty-first session, the one call a short device budget allows (~6 min from a bare machine), most
# needed first: build; the W4A16 GPU tests; issue 9's rows at 48/64 (BM_W4A16VsFp16) and the split map
# with the wgmma kernel (BM_W4A16GemmSplits); memcheck over the wgmma test; then the w4a16 decode
# steps at B=64 with the wgmma route and without it (perf/wip/w4a16-gemm-wgmma-route.patch reversed).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-lean-call.sh
source "$(dirname "$0")/device-call.sh"
nvidia-smi --query-gpu=name --format=csv,noheader
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
RIDGELINE_REQUIRE_GPU=1 timeout 100 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelW4A16*:W4A16ModelShapes*:CudaW4A16.*' >"$W/tests.log" 2>&1
echo "W4A16 tests exit $?"
grep -E "Failure|^\[  (PASSED|FAILED|SKIPPED) " "$W/tests.log" | head -8
timeout 60 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x \
  --benchmark_filter='BM_W4A16VsFp16/[0-7]/(16|32|48|64|128)/|BM_W4A16GemmSplits/[0-7]/(48|64)/' \
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
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelW4A16Gemm.Wgmma*' >"$W/memcheck.log" 2>&1
echo "memcheck exit $?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$W/memcheck.log" | tail -3
sweep() {  # NAME
  for preset in 7b 1_8b; do
    timeout 120 build-gpu/ridgeline sweep --model internlm2-chat-$preset --weights w4a16 --context 1024 \
      --batch "${LEAN_BATCHES:-48,64}" --repeat "${LEAN_REPEAT:-2}" --out "$W/sweep-$1-$preset.json" >"$W/sweep-$1-$preset.log" 2>&1
    echo "sweep $1 $preset exit $?"
  done
}
sweep new
patch -p1 -R <perf/wip/w4a16-gemm-wgmma-route.patch >/dev/null || exit 1
bash scripts/refresh-mtimes.sh build-gpu >/dev/null
cmake --build build-gpu -j16 --target ridgeline >"$W/build-old.log" 2>&1 || { tail -5 "$W/build-old.log"; exit 1; }
sweep old
for preset in 7b 1_8b; do
  build-gpu/ridgeline compare "$W/sweep-old-$preset.json" "$W/sweep-new-$preset.json" \
    --md "$W/compare-$preset.md" >"$W/compare-$preset.log" 2>&1
  echo "compare $preset exit $?"
  grep -E "B=64|step" "$W/compare-$preset.md" | head -6
done
