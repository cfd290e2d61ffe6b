#!/usr/bin/env bash
# The verify call of a landed W4A16 kernel change, given its kernel diff as a patch (the device's
# .git is stale, so the diff travels as a file: `git diff A B -- kernels/ > perf/wip/X-landed.patch`):
# the W4A16 GPU tests; BM_W4A16VsFp16 (issue 9's table); w4a16 decode steps of both presets at ctx
# 1024 with the change and without it (the patch reversed, ridgeline rebuilt), set side by side by
# `ridgeline compare`; then compute-sanitizer memcheck in the time left. ~7-8 min from a bare machine.
# Thirty-ninth session: run for perf/wip/w4a16-9-32-rows-landed.patch (VERIFY_BATCHES=16,24,32
# VERIFY_REPEAT=2 VERIFY_MEMCHECK='KernelW4A16Gemv*:KernelW4A16Linear*') and for
# perf/wip/w4a16-two-stages-landed.patch (the defaults), then as two scripts with a Python step table.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-landed-verify.sh PATCH
#   VERIFY_BATCHES   decode batch sizes (default 16,32)
#   VERIFY_REPEAT    sweep --repeat (default 1)
#   VERIFY_M         BM_W4A16VsFp16 rows, a regex (default 1|16|24|32|48|64)
#   VERIFY_BENCH     the whole benchmark filter instead (default BM_W4A16VsFp16 at VERIFY_M); its JSON
#                    is vsfp16.json either way
#   VERIFY_MEMCHECK  the gtest filter memcheck runs (default the GEMV layout test)
patch_file=${1:?usage: perf/wip/w4a16-landed-verify.sh PATCH}
source "$(dirname "$0")/device-call.sh"
trap 'patch -p1 -N <"$patch_file" >/dev/null 2>&1; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
RIDGELINE_REQUIRE_GPU=1 timeout 150 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelW4A16*:W4A16ModelShapes*:CudaW4A16.*' >"$W/tests.log" 2>&1
echo "W4A16 tests exit $?"
grep -E "Failure|^\[  (PASSED|FAILED) " "$W/tests.log" | head -8
timeout 150 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x \
  --benchmark_filter="${VERIFY_BENCH:-BM_W4A16VsFp16/[0-7]/(${VERIFY_M:-1|16|24|32|48|64})/}" \
  --benchmark_out="$W/vsfp16.json" --benchmark_out_format=json >"$W/vsfp16.log" 2>&1
echo "bench exit $?"
sweep() {  # NAME
  for preset in 7b 1_8b; do
    timeout 90 build-gpu/ridgeline sweep --model internlm2-chat-$preset --weights w4a16 --context 1024 \
      --batch "${VERIFY_BATCHES:-16,32}" --repeat "${VERIFY_REPEAT:-1}" --out "$W/sweep-$1-$preset.json" \
      >"$W/sweep-$1-$preset.log" 2>&1
    echo "sweep $1 $preset exit $?"
  done
}
sweep new
patch -p1 -R <"$patch_file" >/dev/null || exit 1
bash scripts/refresh-mtimes.sh build-gpu >/dev/null
cmake --build build-gpu -j16 --target ridgeline >"$W/build-old.log" 2>&1 || { tail -5 "$W/build-old.log"; exit 1; }
sweep old
patch -p1 <"$patch_file" >/dev/null
for preset in 7b 1_8b; do  # old is the base: a slower new step is what compare flags
  build-gpu/ridgeline compare "$W/sweep-old-$preset.json" "$W/sweep-new-$preset.json" \
    --md "$W/compare-$preset.md" >"$W/compare-$preset.log" 2>&1
  echo "compare $preset exit $?"
  cat "$W/compare-$preset.md"
done
timeout 75 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter="${VERIFY_MEMCHECK:-KernelW4A16Gemv.MatchesReferenceForEveryLayout*}" >"$W/memcheck.log" 2>&1
echo "memcheck exit $?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$W/memcheck.log" | tail -3
