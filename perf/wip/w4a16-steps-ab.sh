#!/usr/bin/env bash
# The w4a16 decode steps at ctx 1024, A / B / A on one machine: HEAD, HEAD with each of AB_PATCH's patches
# in turn (space-separated), HEAD again (~3 min from a bare machine, ~30 s a patch where build-gpu is
# warm). For a change whose kernel timings alone do not say what it does inside the step's graph
# (fiftieth session: the split table's 1.8b gain was 2-4x its kernels'). AB_MODELS (default both
# presets) and AB_SWEEP_ARGS (e.g. --timeline: CUPTI's record of one step as the graph ran it, per
# kernel in each run's "timeline") go to `ridgeline sweep`. Everything in $OUT/ab.tgz.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> AB_PATCH=perf/wip/X.patch AB_BATCHES=48,64 \
#     bash perf/wip/w4a16-steps-ab.sh
source "$(dirname "$0")/device-call.sh"
: "${AB_PATCH:?set AB_PATCH to the patches to time}" "${AB_BATCHES:?set AB_BATCHES, e.g. 24,32}"
echo "card: $(card)"
export W4A16_STEPS_MODELS=${AB_MODELS:-} W4A16_STEPS_ARGS=${AB_SWEEP_ARGS:-}
build_gpu ridgeline
probe_ceilings
w4a16_steps "$AB_BATCHES" head-1
for p in $AB_PATCH; do
  patched_build "$p" ab.tgz ridgeline
  w4a16_steps "$AB_BATCHES" "$(basename "$p" .patch)"
  unpatch "$p"
  _applied=
done
build_gpu ridgeline
w4a16_steps "$AB_BATCHES" head-2
