#!/usr/bin/env bash
# Per-instruction profile of one kernel launch on a GPU: Nsight Compute's SourceCounters (warp
# instructions executed and warp-state samples per SASS line) for the first launch of a kernel
# matching KERNEL_REGEX in the ridgeline_bench benchmarks matching BENCH_FILTER, then
# scripts/sass_profile.py's summary (regions before, in and after the hottest loop; opcodes; the
# most sampled instructions). Clocks are left alone (--clock-control none), as the benchmarks run.
#
#   scripts/ncu-sass.sh OUTDIR KERNEL_REGEX BENCH_FILTER
#     e.g. scripts/ncu-sass.sh $OUT/w13 w4a16_gemv_kernel 'BM_W4A16Fusions/6/1/'
#
# Writes OUTDIR/sass.csv.gz (the raw page) and OUTDIR/sass.txt (the summary). RIDGELINE_BUILD_DIR
# (default build-gpu) holds a built bench/ridgeline_bench. RIDGELINE_NCU_CACHE (default all: ncu
# flushes the caches before the launch, so data the kernel before left in the L2 come from DRAM)
# may be none, which keeps what the benchmark's own launches left there.
set -uo pipefail
out=${1:?usage: scripts/ncu-sass.sh OUTDIR KERNEL_REGEX BENCH_FILTER}
kernel=${2:?usage}
filter=${3:?usage}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
bench=${RIDGELINE_BUILD_DIR:-build-gpu}/bench/ridgeline_bench
[ -x "$bench" ] || { echo "ncu-sass: no benchmark binary at $bench" >&2; exit 1; }
export PATH="/usr/local/cuda/bin:$PATH"
ncu --clock-control none --cache-control "${RIDGELINE_NCU_CACHE:-all}" -k "regex:$kernel" -c 1 \
  --section SourceCounters --page source --print-source sass --csv \
  "$bench" --benchmark_min_time=1x --benchmark_filter="$filter" >"$out/sass.csv" 2>"$out/ncu.log" ||
  { tail -5 "$out/ncu.log" >&2; exit 1; }
python3 scripts/sass_profile.py "$out/sass.csv" >"$out/sass.txt" || exit 1
gzip -f "$out/sass.csv"
head -8 "$out/sass.txt"
