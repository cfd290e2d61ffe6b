#!/usr/bin/env bash
# Thirty-seventh, for a later session: why int4 decode attention streams ~11% slower as one wide CTA
# of 16 warps than as 4 split CTAs of 4 warps (H100, B=16: ctx 16384 +0.6-3%, ctx 32768 +6%; fp16 and
# int8 at most +0.3%; perf/NOTES.md "thirty-seventh"), though each SM runs the same warps over the
# same tiles with the same registers and shared memory. perf/wip/wide-max-context-knob.patch lets
# RIDGELINE_WIDE_MAX_CONTEXT lift the 8192 bound. Nsight Compute, clocks left alone, on 1.8b int4
# B=16 ctx 32768 both ways (and int8 wide for contrast): speed of light, memory workload, warp
# states, scheduler, occupancy; then per-SASS-line samples of both int4 forms (scripts/ncu-sass.sh),
# to see whether the wide kernel's SASS or its stalls differ. ~5 min from a bare machine.
# Hypotheses to tell apart: different SASS from __launch_bounds__(512, 1) (instruction counts per
# tile differ), or the memory system (same instructions, more long-scoreboard stalls: all 16 warps
# of an SM inside one (sequence, KV head) at once instead of four regions).
#
#   OUT=/some/dir bash perf/wip/wide-int4-ncu.sh
source "$(dirname "$0")/device-call.sh"
trap 'git apply -R perf/wip/wide-max-context-knob.patch 2>/dev/null; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/wide-max-context-knob.patch || exit 1
build_gpu ridgeline_bench
sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats
  --section LaunchStats --section Occupancy)
f='BM_DecodeAttention/0/2/32768/16/'
profile() {  # NAME WIDE FILTER
  RIDGELINE_WIDE_ATTENTION=$2 RIDGELINE_WIDE_MAX_CONTEXT=32768 timeout 120 ncu --clock-control none \
    -k "regex:decode_attention_kernel" -c 1 "${sections[@]}" build-gpu/bench/ridgeline_bench \
    --benchmark_min_time=1x --benchmark_filter="$3" >"$W/$1.txt" 2>&1
  echo "== $1 (exit $?)"
  grep -E "Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Registers Per|Achieved Occupancy|Block Size|Grid Size|L2 Hit Rate|Mem Busy" "$W/$1.txt" | head -20
}
profile int4-split 0 "$f"
profile int4-wide 1 "$f"
profile int8-wide 1 'BM_DecodeAttention/0/1/32768/16/'
for k in 0 1; do
  RIDGELINE_WIDE_ATTENTION=$k RIDGELINE_WIDE_MAX_CONTEXT=32768 timeout 150 bash scripts/ncu-sass.sh "$W/sass-int4-$k" \
    decode_attention_kernel "$f"
done
head -40 "$W/sass-int4-0/sass.txt" "$W/sass-int4-1/sass.txt"
