#!/usr/bin/env bash
# The side-stream L2 prefetch experiment (perf/wip/l2-side-prefetch.patch), on any Hopper card
# (~4 min from a bare machine): each decode layer forks a side stream that asks the L2 for the
# layer's wo, w13 and w2 while wqkv and attention (latency-bound, DRAM mostly idle) run. One patched
# build; DecodeBench (fp16 and w4a16, B = 1 / 16, both presets) with the knob off, then at several
# caps, modes and CTA counts, then off again; then the engine tests with the knob on (the prefetch
# has no architectural effect, so they must pass). Everything comes back in $OUT/l2-side.tgz.
#
#   OUT=/some/dir bash perf/wip/l2-side-prefetch.sh
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
patched_build perf/wip/l2-side-prefetch.patch l2-side.tgz ridgeline_gpu_tests
t0=$start
budget=${RIDGELINE_CALL_SECONDS:-420}  # seconds from the build's start; later steps are skipped
step() {  # step NAME [VAR=VALUE...]: DecodeBench with those knobs into $W/decode-NAME.log
  local name=$1
  shift
  if (( $(date +%s) - t0 > budget - 30 )); then echo "== $name skipped (call budget)"; return; fi
  env "$@" RIDGELINE_REQUIRE_GPU=1 timeout 60 build-gpu/tests/ridgeline_gpu_tests \
    --gtest_filter=DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets >"$W/decode-$name.log" 2>&1
  echo "== $name ($*) exit $? at $(( $(date +%s) - t0 )) s"
  grep -E "l2-side-prefetch|ms/step" "$W/decode-$name.log" | sed -E 's/\(p10.*//; s/\[w4a16-bench\] decode internlm2-chat-//'
}
P=RIDGELINE_L2_SIDE_PREFETCH
# The most telling settings first, so a short call still answers the question.
step off
step c32-bulk-32 ${P}_MB=32 ${P}_CTAS=32
step c48-bulk-32 ${P}_MB=48 ${P}_CTAS=32
step c32-line-32 ${P}_MB=32 ${P}_CTAS=32 ${P}_MODE=1
step c32-bulk-32-att ${P}_MB=32 ${P}_CTAS=32 ${P}_AT=attention
step off2
step c32-bulk-8 ${P}_MB=32
step c32-last-32 ${P}_MB=32 ${P}_CTAS=32 ${P}_MODE=2
step c12-bulk-32 ${P}_MB=12 ${P}_CTAS=32
step c32-bulk-132 ${P}_MB=32 ${P}_CTAS=132
export ${P}_MB=32 ${P}_CTAS=32
left=$(( budget - ($(date +%s) - t0) ))
(( left > 20 )) && gpu_tests tests-c32 "$left" 'CudaEngine*:CudaW4A16*'
