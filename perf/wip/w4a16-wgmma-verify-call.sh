#!/usr/bin/env bash
# Forty-first session, one call (~8 min from a bare machine): the wgmma GEMM's tests and split map
# (perf/wip/w4a16-wgmma-call.sh), then the landed-change verify of its automatic route at 33..127
# rows (perf/wip/w4a16-gemm-wgmma-route.patch: decode steps at B=48/64 with and without it).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-verify-call.sh
: "${OUT:?set OUT}"
cd "$(dirname "$0")/../.."
OUT=$OUT/a TEST_FILTER='KernelW4A16Gemm.*:KernelW4A16Linear.*' BENCH_FILTER='BM_W4A16GemmSplits/[0-7]/(48|64)/' \
  bash perf/wip/w4a16-wgmma-call.sh
OUT=$OUT/b VERIFY_BATCHES=48,64 VERIFY_REPEAT=1 VERIFY_M='16|32|48|64|128' \
  VERIFY_MEMCHECK='KernelW4A16Gemm.Wgmma*' \
  bash perf/wip/w4a16-landed-verify.sh perf/wip/w4a16-gemm-wgmma-route.patch
