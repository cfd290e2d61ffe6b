#!/usr/bin/env bash
# The side-stream L2 prefetch experiment (perf/wip/l2-side-prefetch.patch), on any Hopper card
# (~5 min from a bare machine): each decode layer forks a side stream that asks the L2 for the
# layer's wo, w13 and w2 while wqkv and attention (latency-bound, DRAM mostly idle) run. One patched
# build; DecodeBench (fp16 and w4a16, B = 1 / 16, both presets) with the knob off, the control (the
# fork with no prefetch) and the two most telling caps, then BM_W4A16Fusions at one row with the weights from DRAM and from the L2
# (RIDGELINE_BENCH_HOT=1: the most a prefetch can give a GEMV), then more settings and off again,
# then the engine tests with the knob on (a prefetch has no architectural effect, so they must
# pass). Steps past RIDGELINE_CALL_SECONDS (default 420) from the build's start are skipped.
# Everything comes back in $OUT/l2-side.tgz.
#
#   OUT=/some/dir bash perf/wip/l2-side-prefetch.sh
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
patched_build perf/wip/l2-side-prefetch.patch l2-side.tgz ridgeline_gpu_tests ridgeline_bench
t0=$start
budget=${RIDGELINE_CALL_SECONDS:-420}  # seconds from the build's start; later steps are skipped
step() {  # step NAME [VAR=VALUE...]: DecodeBench with those knobs into $W/decode-NAME.log
  local name=$1
  shift
  if (( $(date +%s) - t0 > budget - 60 )); then echo "== $name skipped (call budget)"; return; fi
  decode_bench "$name" 60 "$@"
  echo "== $name ($*) exit $? at $(( $(date +%s) - t0 )) s"
  grep -E "l2-side-prefetch|ms/step" "$W/decode-$name.log" | sed -E 's/\(p10.*//; s/\[w4a16-bench\] decode internlm2-chat-//'
}
P=RIDGELINE_L2_SIDE_PREFETCH
# The most telling settings first, so a short call still answers the question.
step off
# The control: the same fork and kernel launch at every layer, no prefetch (what the fork alone costs).
step ctrl ${P}_MB=32 ${P}_CTAS=32 ${P}_MODE=3
step c32-bulk-32 ${P}_MB=32 ${P}_CTAS=32
step c48-bulk-32 ${P}_MB=48 ${P}_CTAS=32
step c32-line-32 ${P}_MB=32 ${P}_CTAS=32 ${P}_MODE=1
# The bound on what a prefetch can give a GEMV: the step's fused GEMVs at one row with their weights
# rotated through DRAM (as always) and with one copy left in the L2 (RIDGELINE_BENCH_HOT=1; 7b w13's
# 58 MB does not fit).
fusions() {  # fusions NAME [VAR=VALUE...]
  local name=$1
  shift
  if (( $(date +%s) - t0 > budget - 40 )); then echo "== fusions-$name skipped (call budget)"; return; fi
  env "$@" timeout 40 build-gpu/bench/ridgeline_bench --benchmark_filter='BM_W4A16Fusions/[0-7]/1/' \
    --benchmark_out="$W/fusions-$name.json" --benchmark_out_format=json >"$W/fusions-$name.log" 2>&1
  echo "== fusions-$name exit $?"
  us_counters "$W/fusions-$name.json" "$name"
}
fusions cold
fusions hot RIDGELINE_BENCH_HOT=1
step c32-bulk-32-att ${P}_MB=32 ${P}_CTAS=32 ${P}_AT=attention
step off2
step c32-bulk-8 ${P}_MB=32
step c32-last-32 ${P}_MB=32 ${P}_CTAS=32 ${P}_MODE=2
step c12-bulk-32 ${P}_MB=12 ${P}_CTAS=32
step c32-bulk-132 ${P}_MB=32 ${P}_CTAS=132
export ${P}_MB=32 ${P}_CTAS=32
left=$(( budget - ($(date +%s) - t0) ))
if (( left > 20 )); then gpu_tests tests-c32 "$left" 'CudaEngine*:CudaW4A16*'; else echo "tests-c32 skipped (call budget)"; fi
