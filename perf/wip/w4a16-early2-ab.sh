#!/usr/bin/env bash
# perf/wip/w4a16-gemv-regs-second-batch-early.patch against HEAD on any Hopper card (~3-4 min from a
# bare machine): the GEMV tests on the patched build (same bits as HEAD, so the bits tests must pass),
# then BM_W4A16GemvVariants at one row, BM_W4A16Fusions at one row and the B = 1 / 16 steps, as built
# and patched (perf/wip/w4a16-stream-only-call.sh's A/B form). Comes back in $OUT/early2.tgz.
#
#   OUT=/some/dir bash perf/wip/w4a16-early2-ab.sh
export RIDGELINE_AB_PATCH=perf/wip/w4a16-gemv-regs-second-batch-early.patch RIDGELINE_AB_NAME=early2 \
  RIDGELINE_AB_FLOOR=0 RIDGELINE_AB_ROWS=1 RIDGELINE_CALL_SECONDS=${RIDGELINE_CALL_SECONDS:-300} \
  RIDGELINE_AB_TESTS='KernelW4A16Gemv.*:KernelW4A16GemvFused.*:KernelRopeEpilogue.*:CudaW4A16.*'
exec bash "$(dirname "$0")/w4a16-stream-only-call.sh"
