#!/usr/bin/env bash
# The shared-x W4A16 GEMV at 9..16 rows, first run (perf/wip/w4a16-gemv-m16-shared-x.patch:
# kernels/w4a16_gemv_sharedx.cu, W4A16GemvKernel::shared_x, never chosen by the dispatch). From the
# Nsight Compute profile of the ring kernel at 16 rows (7b wqkv, H100, 9.48 us: x is 4.3 KB of each
# warp's 5.4 KB stages, 104 KB a block, ~1.45 blocks an SM, latency-bound with too few warps): a
# block's warps split its strips (one each), not its groups, so one x stage a block serves them all,
# and the input range is split over the blocks of a cluster instead (DSMEM reduction in rank order).
# Target ~8.7 us on that shape. Applies the patch, builds, runs its tests and the other W4A16 GEMV
# tests, then BM_W4A16GemvVariants at M = 16 on the 8 shapes (the ring's layouts, its default and the
# 30 "sx_*" layouts in one run), prints a table, reverses the patch. ~5 min from a bare machine, any card.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-gemv-m16-shared-x.sh
source "$(dirname "$0")/device-call.sh"
if [ -z "${NO_BUILD:-}" ]; then  # NO_BUILD=1: the caller has applied the patch and built (a combined call)
  card
  patched_build perf/wip/w4a16-gemv-m16-shared-x.patch w.tgz ridgeline_gpu_tests ridgeline_bench
fi
gpu_tests tests 90 'KernelW4A16Gemv.*'
grep -E "Failure|nmse|NMSE|SharedX" "$W/tests.log" | head -20
# one process a shape, 7b's first (the M=16 target is theirs)
BENCH_DEADLINE=$(( $(date +%s) + ${SX_BENCH_SECONDS:-180} )) \
  bench_shapes sharedx 180 'BM_W4A16GemvVariants/{}/16/' 7 6 5 4 3 2 1 0
grep -E "shared_x|sx_" "$W/sharedx.log" | head -10  # layouts that threw (their reason)
python3 perf/wip/gemv-variants-table.py "$W/sharedx.json" sx_
echo "shared-x done at $(( $(date +%s) - start )) s"
