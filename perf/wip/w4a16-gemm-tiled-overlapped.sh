#!/usr/bin/env bash
# Forty-third session (queued, not run): the tiled W4A16 GEMM launched overlapped under the wgmma
# kernel's cap (perf/wip/w4a16-gemm-tiled-overlapped.patch: `w4a16_gemm_launches_overlapped`, weights
# of up to 20 MB of codes; the tiled kernel runs 17..32 rows, and 33..64 where two_tiles_of_32 keeps
# it, and every size on GPUs without wgmma). Uncapped, the twenty-fifth session measured it level on
# 1.8b and +5% on 7b B=64 (then the tiled kernel ran 48/64 rows). The patch applied, then
# w4a16-landed-verify.sh: W4A16 tests, BM_W4A16VsFp16 at 24-64 rows, steps B=24/32 with and without
# it (ridgeline compare), memcheck over the tiled GEMM's test. ~7 min from a bare machine.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-gemm-tiled-overlapped.sh
cd "$(dirname "$0")/../.."
git apply perf/wip/w4a16-gemm-tiled-overlapped.patch || patch -p1 <perf/wip/w4a16-gemm-tiled-overlapped.patch || exit 1
VERIFY_BATCHES=24,32 VERIFY_REPEAT=3 VERIFY_M='24|32|48|64' VERIFY_MEMCHECK='KernelW4A16Gemm.MatchesReference*' \
  bash perf/wip/w4a16-landed-verify.sh perf/wip/w4a16-gemm-tiled-overlapped.patch
