#!/usr/bin/env bash
# Where the W4A16 GEMV's small-batch time goes, on any Hopper card (~8 min from a bare machine, all
# within RIDGELINE_CALL_SECONDS of the build's start, default 570): the read floor (BM_W4A16ReadFloor,
# M = 1 / 16) and the same reads in the GEMVs' order (BM_W4A16ReadFloorStrips), then twice, as built and with perf/wip/w4a16-gemv-stream-only.patch (both GEMV kernels
# keep their weight loads and ring copies, the shared-memory reads of the weight words, x staging,
# reductions and stores, but fold the weight words instead of reading x by ldmatrix, dequantizing
# and multiplying; outputs wrong): BM_W4A16GemvVariants at M = 1 / 16, BM_W4A16Fusions
# at M = 1 (the B = 1 step's fused GEMVs) and DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets (the
# steps; fp16 untouched by the patch, so the stream-only w4a16 B = 1 step against it is the ratio
# issue 9's B = 1 rows would read if the GEMVs' arithmetic cost nothing). Per layout, real minus
# stream-only is the arithmetic the layout does not hide, stream-only minus the read floor what its
# own streaming costs (the patch also frees registers, so more warps may fit: regs-*.txt has
# each kernel's count). perf/wip/stream-only-summary.py prints the kernel table. Everything comes back
# in $OUT/stream-only.tgz.
#
#   OUT=/some/dir bash perf/wip/w4a16-stream-only-call.sh
#   OUT=/some/dir RIDGELINE_AB_PATCH=perf/wip/w4a16-gemv-regs-block-sum-x.patch RIDGELINE_AB_NAME=sumx \
#     RIDGELINE_AB_FLOOR=0 RIDGELINE_AB_ROWS=1 \
#     RIDGELINE_AB_TESTS='KernelW4A16Gemv.*:KernelW4A16GemvFused.*:KernelRopeEpilogue.*:CudaW4A16.*' \
#     bash perf/wip/w4a16-stream-only-call.sh   (perf/wip/w4a16-regs-ab.sh wraps this form)
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
left() {  # left SECONDS: SECONDS, or what is left of the call if less
  local l=$(( ${RIDGELINE_CALL_SECONDS:-570} - ($(date +%s) - t0) ))
  echo $(( l < $1 ? (l > 1 ? l : 1) : $1 ))
}
bench() {  # bench NAME SECONDS FILTER: ridgeline_bench FILTER into $W/NAME.json
  timeout "$(left "$2")" build-gpu/bench/ridgeline_bench --benchmark_filter="$3" \
    --benchmark_out="$W/$1.json" --benchmark_out_format=json >"$W/$1.log" 2>&1
  echo "$1 exit $? at $(( $(date +%s) - t0 )) s"
}
measure() {  # measure NAME: the GEMV kernels' registers, the variants, the fusions and the steps of this build
  cuobjdump -res-usage build-gpu/bench/ridgeline_bench 2>/dev/null | grep -A1 "w4a16_gemv" >"$W/regs-$1.txt"
  bench "variants-$1" 120 "BM_W4A16GemvVariants/[0-7]/(${RIDGELINE_AB_ROWS:-1|16})/"
  bench "fusions-$1" 40 'BM_W4A16Fusions/[0-7]/1/'
  decode_bench "$1" "$(left 120)"
  echo "decode $1 exit $? at $(( $(date +%s) - t0 )) s"
  grep "w4a16-bench" "$W/decode-$1.log"
  us_counters "$W/fusions-$1.json" "$1"
}
# The same A/B for another GEMV patch: RIDGELINE_AB_PATCH (default the stream-only patch) named
# RIDGELINE_AB_NAME (default stream; the tarball is then $OUT/<name>.tgz), RIDGELINE_AB_FLOOR=0 leaves
# the read floors out, RIDGELINE_AB_TESTS a gtest filter of GPU tests run on the patched build,
# RIDGELINE_AB_ROWS the variants' rows (default "1|16").
patch=${RIDGELINE_AB_PATCH:-perf/wip/w4a16-gemv-stream-only.patch} name=${RIDGELINE_AB_NAME:-stream}
tarball=$([ "$name" = stream ] && echo stream-only.tgz || echo "$name.tgz")
trap 'tar czf "$OUT/$tarball" -C "$OUT" w' EXIT
build_gpu ridgeline_bench ridgeline_gpu_tests
t0=$start
[ "${RIDGELINE_AB_FLOOR:-1}" = 0 ] || bench read-floor 180 'BM_W4A16ReadFloor/|BM_W4A16ReadFloorStrips/'
measure head
patched_build "$patch" "$tarball" ridgeline_bench ridgeline_gpu_tests
[ -z "${RIDGELINE_AB_TESTS:-}" ] || gpu_tests "tests-$name" "$(left 150)" "$RIDGELINE_AB_TESTS"
measure "$name"
floor=$W/read-floor.json
[ -f "$floor" ] || floor=-
python3 perf/wip/stream-only-summary.py "$floor" "$W/variants-head.json" "$W/variants-$name.json" "$name" |
  tee "$W/summary.txt"
