#!/usr/bin/env bash
# Thirty-fourth, call 2: why gemm_narrow's main loop runs at ~0.55-0.6 of the tensor peak (1.2 us a
# 64-input stage where 0.7 is the peak; perf/NOTES.md "thirty-fourth"). Nsight Compute, clocks left
# alone, on the first launch of (a) 1.8b w13 at split 1 (128 CTAs, no cluster sum), (b) 1.8b w2 at
# split 6, (c) cuBLASLt on w13 at 256 rows for comparison: speed of light, memory workload (L2 and
# DRAM throughput), warp states, scheduler; then per-SASS-line stall samples of (a) (scripts/ncu-sass.sh)
# to see whether the consumers wait on the full barriers (data late) or the producer on the empty
# ones (ring full). ~4 min from a bare machine.
#
# GEMM_NARROW_NCU_SHARE=1 (thirty-fifth): with gemm-narrow-share.patch and gemm-narrow-epilogue.patch
# over it, w13 at split 1 as single tiles, pairs and fours sharing x, and the SASS stalls of the pairs
# (BM_GemmNarrow's last argument is then the share, 1/2/4, and not pair 0/1).
#
#   OUT=/some/dir [GEMM_NARROW_NCU_SHARE=1] bash perf/wip/gemm-narrow-ncu.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
share=${GEMM_NARROW_NCU_SHARE:-0}
git apply -R --check perf/wip/gemm-narrow.patch 2>/dev/null || git apply perf/wip/gemm-narrow.patch ||
  { echo "the patch does not apply"; exit 1; }
if [ "$share" = 1 ]; then
  grep -q "int share" kernels/gemm_narrow.h ||
    { git apply perf/wip/gemm-narrow-share.patch && git apply perf/wip/gemm-narrow-epilogue.patch; } ||
    { echo "the share and epilogue patches do not apply"; exit 1; }
fi
build_gpu ridgeline_bench
sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats
  --section LaunchStats --section Occupancy)
profile() {  # NAME KERNEL_REGEX BENCH_FILTER
  timeout 120 ncu --clock-control none -k "regex:$2" -c 1 "${sections[@]}" build-gpu/bench/ridgeline_bench \
    --benchmark_min_time=1x --benchmark_filter="$3" >"$W/$1.txt" 2>&1
  echo "== $1 (exit $?)"
  grep -E "Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Memory Throughput|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Registers Per|Achieved Occupancy|Max Bandwidth|Mem Busy|L2 Hit Rate" "$W/$1.txt" | head -20
}
if [ "$share" = 1 ]; then
  for n in 1 2 4; do profile "w13-split1-share$n" gemm_narrow_kernel "BM_GemmNarrow/2/256/1/$n/"; done
  timeout 150 bash scripts/ncu-sass.sh "$W/sass-w13" gemm_narrow_kernel 'BM_GemmNarrow/2/256/1/2/'
else
  profile w13-split1 gemm_narrow_kernel 'BM_GemmNarrow/2/256/1/0/'
  profile w2-split6 gemm_narrow_kernel 'BM_GemmNarrow/3/256/6/0/'
  profile w13-cublas 'sm90|xmma|cutlass' 'BM_GemmNarrow/2/256/1/0/'
  timeout 150 bash scripts/ncu-sass.sh "$W/sass-w13" gemm_narrow_kernel 'BM_GemmNarrow/2/256/1/0/'
fi
head -60 "$W/sass-w13/sass.txt"
