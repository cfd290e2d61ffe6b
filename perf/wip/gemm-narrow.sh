#!/usr/bin/env bash
# Thirty-fourth: issue 12's B=256 row. gemm_narrow (perf/wip/gemm-narrow.patch: kernels/sm90a/, wgmma
# m64n256k16 on TMA-fed 128-byte-swizzled stages, the K range split over a 1 x split cluster and summed
# through distributed shared memory) against the engine's cuBLASLt GEMM on every 1.8b and 7b shape at
# 192 and 256 rows, and splits 1, 2, 4, 6, 7, 8 forced on the 1.8b shapes at 256 rows. Written without
# a GPU: the first run is its first test. One device call, ~5 min from a bare machine:
#   1. build, then ptxas's registers, spills and wgmma serialization (C7510) for the file;
#   2. the kernel's tests (every split, poisoned rows, determinism; a failure prints the first wrong
#      (row, output) elements; a barrier that never completes traps after 2 s, and a timeout bounds
#      the rest);
#   3. compute-sanitizer memcheck over the same tests;
#   4. the probe's ceilings, then BM_GemmNarrow (plain, overlapped, without the sum, and cuBLASLt, all
#      timed in each iteration), single tiles then pairs of tiles sharing x by multicast;
#   5. if the tests passed, B=256 ctx 1024 fp16 sweeps with the engine's dispatch (the patch sends
#      fp16 GEMMs of 129-256 rows with at most SMs/2 output tiles to gemm_narrow) off / on / pairs /
#      overlapped (RL_X_GEMM_NARROW=0/1/3/2), interleaved, 1.8b twice then 7b, within a time budget;
#   6. in what time is left, the CudaEngine tests (the tiny model's prefills and batches of 129-256 rows
#      run gemm_narrow through the engine's dispatch).
# Prediction (H200, 791 TFLOP/s; the GPCs should hold 16 clusters of 7, not of 8, so w2 and wo run at
# split 7 and wqkv at 3): 1.8b w2 at 256 rows 21.2 -> 15-17 us (0.64-0.72 of the peak; the L2 traffic,
# W once + x once per 128-output tile = 97 MB, may bound it near 12 us of streaming), wqkv 9.8 -> 7-8
# us, wo 6.7 -> 6-7 us (4-5 steps a CTA: the ramp and the sum are most of it); w13 (128 tiles, no
# split) within 10% of cuBLASLt's 0.89.
# Measured (thirty-fourth, H100): right, and slower than cuBLASLt on every shape (w2 27.3 against 22.7
# us; the H100 held 15 clusters of 7 or 8, so w2 ran at split 6); perf/NOTES.md has the figures.
#
#   OUT=/some/dir bash perf/wip/gemm-narrow.sh
source "$(dirname "$0")/device-call.sh"
source "$(dirname "$0")/gemm-narrow-lib.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
# Applied already (a second run on a warm machine, or a tree with the kernel being worked on) or now.
[ -f kernels/sm90a/gemm_narrow.cu ] || git apply perf/wip/gemm-narrow.patch ||
  { echo "the patch does not apply"; exit 1; }
# BM_GemmNarrow's last argument is `pair` (0/1) here; gemm-narrow-share.patch makes it the share (1/2/4).
grep -q "int share" kernels/gemm_narrow.h &&
  { echo "this tree has gemm-narrow-share.patch: run perf/wip/gemm-narrow-share.sh"; exit 1; }
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
narrow_ptxas
narrow_tests 120
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelGemmNarrow*' >"$W/memcheck.log" 2>&1
echo "memcheck exit $?"
tail -3 "$W/memcheck.log"
timeout 120 build-gpu/ridgeline probe --out "$W/ceilings.json" >"$W/probe.log" 2>&1 && tail -2 "$W/probe.log"
# Single tiles, then pairs in a process of their own (a faulting multicast launch ends its process).
for pair in 0 1; do
  timeout 120 build-gpu/bench/ridgeline_bench --benchmark_filter="BM_GemmNarrow/[0-9]+/[0-9]+/[0-9]+/$pair/" \
    --benchmark_min_time=20x --benchmark_out="$W/gemm-narrow-$pair.json" --benchmark_out_format=json \
    >"$W/gemm-narrow-$pair.txt" 2>&1
  echo "bench pair=$pair exit $?"
done
python3 perf/wip/gemm-narrow-summary.py bench "$W"
[ "$tests_rc" -eq 0 ] || { echo "tests failed: no sweeps"; exit 0; }
for round in 1 2; do
  for model in internlm2-chat-1_8b internlm2-chat-7b; do
    [ "$model" = internlm2-chat-7b ] && [ "$round" = 2 ] && continue
    for mode in 0 1 3 2; do
      [ $(( $(date +%s) - start )) -gt ${GEMM_NARROW_BUDGET_S:-450} ] && break 3
      narrow_sweep "$mode" "$model" "narrow$mode-$model-$round"
    done
  done
done
# The engine end to end: the tiny model's shapes qualify (wqkv 512 -> 1024, w13 -> 2816, w2 1408 ->
# 512), so its prefills and batches of 129-256 rows run gemm_narrow against the reference tokens.
left=$(( ${GEMM_NARROW_CALL_S:-580} - ($(date +%s) - start) ))
if [ "$left" -gt 30 ]; then
  RIDGELINE_REQUIRE_GPU=1 timeout "$left" build-gpu/tests/ridgeline_gpu_tests --gtest_filter='CudaEngine*' \
    >"$W/engine-tests.log" 2>&1
  echo "engine tests exit $? ($left s allowed)"
  grep -E "^\[  (PASSED|FAILED) |Failure" "$W/engine-tests.log" | head -10
fi
python3 perf/wip/gemm-narrow-summary.py sweep "$W"
