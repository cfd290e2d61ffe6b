#!/usr/bin/env bash
# Thirty-ninth session: what limits the ring W4A16 GEMV at 9-16 rows (issue 9's M = 16 row: 7b min
# 1.98x on the H100, 1.73x on the H200, 2.5x asked). At M = 8 and M = 16 the GEMV reads the same x
# bytes from L2 (7b w2: 8 rows x 256 one-strip blocks = 16 rows x 128 two-strip blocks = 58.7 MB), yet
# M = 16 takes 1.5x as long (H100: 13.9 -> 20.7 us), so x's L2 traffic is not the difference. The
# hypothesis: one 8-warp block an SM (209 KB of rings at M = 16, against two blocks at M = 8) leaves
# two warps a scheduler, each a dependent dequant -> mma chain per group. Nsight Compute (clocks left
# alone) on BM_W4A16Path's GEMV at 7b w2 M = 8 and 16, 7b wo and wqkv M = 16: speed of light,
# occupancy, warp states, scheduler, stall reasons per issue; per-SASS-line samples of 7b w2 M = 16;
# then BM_W4A16Path (GEMV against GEMM) at M = 9-32 and BM_W4A16GemvVariants at M = 16 on the 7b
# shapes, to re-check w4a16_use_gemv on this card. ~4 min from a bare machine.
#
#   OUT=/some/dir bash perf/wip/w4a16-m16-ncu.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline_bench
sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats
  --section LaunchStats --section Occupancy)
stalls='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
profile() {  # NAME FILTER
  timeout 120 ncu --clock-control none -k "regex:w4a16_gemv_kernel" -c 1 "${sections[@]}" \
    build-gpu/bench/ridgeline_bench --benchmark_min_time=1x --benchmark_filter="$2" >"$W/$1.txt" 2>&1
  echo "== $1 (exit $?)"
  grep -E "Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Registers Per|Achieved Occupancy|Block Size|Grid Size|Dynamic Shared|L2 Hit Rate" "$W/$1.txt" | head -20
  timeout 120 ncu --clock-control none -k "regex:w4a16_gemv_kernel" -c 1 --metrics "$stalls" \
    build-gpu/bench/ridgeline_bench --benchmark_min_time=1x --benchmark_filter="$2" >"$W/$1-stalls.txt" 2>&1
  grep -E "stalled" "$W/$1-stalls.txt" | awk '$NF+0 > 0.05' | sort -k3 -g -r | head -8
}
profile 7b-w2-m8 'BM_W4A16Path/7/8/0/'
profile 7b-w2-m16 'BM_W4A16Path/7/16/0/'
profile 7b-wo-m16 'BM_W4A16Path/5/16/0/'
profile 7b-wqkv-m16 'BM_W4A16Path/4/16/0/'
timeout 150 bash scripts/ncu-sass.sh "$W/sass-7b-w2-m16" w4a16_gemv_kernel 'BM_W4A16Path/7/16/0/'
head -40 "$W/sass-7b-w2-m16/sass.txt"
build-gpu/bench/ridgeline_bench --benchmark_min_time=20x --benchmark_filter='BM_W4A16Path/[0-7]/(16|24|32)/' \
  --benchmark_out="$W/path.json" --benchmark_out_format=json >"$W/path.log" 2>&1
echo "path exit $?"
grep -E "^BM_W4A16Path" "$W/path.log" | awk '{print $1, $NF, $(NF-1)}' | sed 's/manual_time//' | head -60
build-gpu/bench/ridgeline_bench --benchmark_filter='BM_W4A16GemvVariants/[4-7]/16/' \
  --benchmark_out="$W/variants.json" --benchmark_out_format=json >"$W/variants.log" 2>&1
echo "variants exit $?"
grep -E "^BM_W4A16GemvVariants" "$W/variants.log" | head -8
