#!/usr/bin/env bash
# The next call for perf/wip/w4a16-spread-one-an-sm.patch (~8 min from a bare machine, any Hopper card):
# launches of the strip GEMMs that the SMs hold at k = ceil(blocks / SMs) blocks each ask for more than
# 1 / (k + 1) of an SM's shared memory, so the block scheduler cannot pack k + 1 on some SMs while
# others idle (the fiftieth session's CTA trace: in the step's graph 1.8b w2 at B = 48 ran 96 blocks on
# 78 SMs, wqkv's pairs of 32 128 on 79). Predictions: the w4a16 steps at B = 48 / 64 faster on 1.8b (w2,
# wqkv, wo spread: ~3-4%), 7b less (only 7b wo's pairs spread); B = 24 / 32 level; BM_W4A16VsFp16 may
# lose where back-to-back launches overlapped beside each other (not measured here).
# Two calls (each under 10 minutes), PART=1 then PART=2 on the warm machine:
#  PART=1 (~7 min from bare): w4a16-steps-ab.sh, HEAD / spread / HEAD at B = 24, 32, 48, 64, both
#    presets, with --timeline ($OUT/ab.tgz).
#  PART=2 (~6 min): the W4A16 GPU tests with the patch applied (the launches' shared memory is all that
#    changes; $OUT/tests.tgz), then w4a16-wgmma-cta-trace.sh with the spread variant only: does the
#    placement even out (sm_max 1 for the 96- and 128-block launches at B = 48)? ($OUT/w.tgz)
#
# Ran in the fifty-first session with the patch not yet landed (bench/results/h100-spread-one-an-sm);
# the spread has since landed, so the variant is now perf/wip/w4a16-spread-off.patch (HEAD / off / HEAD).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> PART=1 bash perf/wip/w4a16-spread-verify.sh
here=$(cd "$(dirname "$0")" && pwd)
patch=perf/wip/w4a16-spread-off.patch
if [ "${PART:?set PART to 1 or 2}" = 1 ]; then
  AB_PATCH=$patch AB_BATCHES=24,32,48,64 AB_SWEEP_ARGS=--timeline exec bash "$here/w4a16-steps-ab.sh"
fi
(
  source "$here/device-call.sh"
  build_gpu ridgeline_gpu_tests
  gpu_tests spread-tests 120 "$W4A16_OVERLAP_TESTS"
)
TRACE_VARIANTS=off:$patch bash "$here/w4a16-wgmma-cta-trace.sh"
