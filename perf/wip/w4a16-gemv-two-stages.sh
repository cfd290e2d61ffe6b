#!/usr/bin/env bash
# Thirty-ninth session: the ring W4A16 GEMV with 2-stage rings (perf/wip/w4a16-gemv-two-stages.patch:
# stages 2 allowed, BM_W4A16GemvVariants times them at M = 16 and 32, tests cover them). Why: at 9-16
# rows the 4-stage rings take 209 KB a block (x is 4.3 KB of each 6.5 KB stage), so one 8-warp block
# an SM, and Nsight Compute (bench/results/h100-w4a16-9-32-rows/ncu/) finds 7b w2 M = 16 at 12.5%
# occupancy, 5.6 cycles a warp instruction, the top stall "wait" (fixed-latency dependencies: two
# warps a scheduler cannot hide them). With 2 stages two 8-warp blocks fit (16 warps an SM), each warp
# one group in flight instead of three; at 17-32 rows 8 warps instead of 4. Prediction: if occupancy
# is the limit, 7b w2 / wo / wqkv at M = 16 10-25% faster; if bytes in flight are, slower.
# ~4 min from a bare machine.
#
# Landed in 80e6607 (with a layout rule): on that tree and later the patch is already applied and
# this script stops; the variants alone: `ridgeline_bench --benchmark_filter='BM_W4A16GemvVariants/'`.
#
#   OUT=/some/dir bash perf/wip/w4a16-gemv-two-stages.sh
source "$(dirname "$0")/device-call.sh"
trap 'patch -p1 -R -N <perf/wip/w4a16-gemv-two-stages.patch >/dev/null 2>&1; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
patch -p1 <perf/wip/w4a16-gemv-two-stages.patch >/dev/null || exit 1
build_gpu ridgeline_bench ridgeline_gpu_tests
RIDGELINE_REQUIRE_GPU=1 timeout 120 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelW4A16Gemv.MatchesReferenceForEveryLayout*' >"$W/tests.log" 2>&1
echo "tests exit $?"
grep -E "Failure|^\[  (PASSED|FAILED) " "$W/tests.log" | head -5
timeout 300 build-gpu/bench/ridgeline_bench --benchmark_filter='BM_W4A16GemvVariants/[0-7]/(16|32)/' \
  --benchmark_out="$W/variants.json" --benchmark_out_format=json >"$W/variants.log" 2>&1
echo "variants exit $?"
python3 perf/wip/variants-summary.py "$W/variants.json"
