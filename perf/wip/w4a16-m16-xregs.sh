#!/usr/bin/env bash
# Forty-third session (queued): the x-in-registers W4A16 GEMV at 9..16 rows, first run
# (perf/wip/w4a16-gemv-m16-xregs.patch: kernels/w4a16_gemv_xregs.cu, W4A16GemvKernel::xregs /
# xregs_l2, never chosen by the dispatch). The untried form of perf/NOTES.md "forty-second", Next 2:
# x's mma B fragments, codes and records loaded straight into registers (4-byte gathers of x: the
# packed layout gives each lane every fourth word of x's row), a warp's batch of 1-2 groups in one
# round trip, shared memory only for the warps' partial tiles. Applies the patch, builds, runs its
# test and the W4A16 GEMV tests, then BM_W4A16GemvVariants at M = 16 on the 8 shapes (the ring's
# layouts, its default and the 18 "xregs_*" layouts in one run), prints a table, reverses the patch.
# ~4 min from a bare machine, any card.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-m16-xregs.sh
source "$(dirname "$0")/device-call.sh"
if [ -z "${NO_BUILD:-}" ]; then  # NO_BUILD=1: the caller has applied the patch and built (a combined call)
  card
  patched_build perf/wip/w4a16-gemv-m16-xregs.patch w.tgz ridgeline_gpu_tests ridgeline_bench
fi
gpu_tests tests 60 'KernelW4A16Gemv.*'
grep -E "Failure|nmse|NMSE" "$W/tests.log" | head -10
timeout ${XREGS_BENCH_SECONDS:-150} build-gpu/bench/ridgeline_bench --benchmark_filter='BM_W4A16GemvVariants/[0-7]/16/' \
  --benchmark_out="$W/xregs.json" --benchmark_out_format=json >"$W/bench.log" 2>&1
echo "bench exit $?"
python3 perf/wip/gemv-variants-table.py "$W/xregs.json" xregs
echo "xregs done at $(( $(date +%s) - start )) s"
