#!/usr/bin/env bash
# Forty-third session, the verify call of the landed overlap of the wgmma GEMM (weights of up to 20 MB
# of codes): the W4A16 GEMM tests and the overlapped-bits test, BM_W4A16VsFp16 at 48/64 rows, and the
# w4a16 steps at B=48/64 ctx 1024 (--repeat 3) of both presets, to compare with the previous call's
# plain runs. ~4 min from a bare machine.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-overlap-verify.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/verify.tgz" -C "$OUT" w' EXIT
card
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
gpu_tests tests 60 'KernelW4A16Gemm.*:CudaEngine.OverlappedLaunches*:W4A16ModelShapes*:CudaW4A16.*'
timeout 60 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x --benchmark_filter='BM_W4A16VsFp16/[0-7]/(48|64)/' \
  --benchmark_out="$W/vsfp16.json" --benchmark_out_format=json >"$W/vsfp16.log" 2>&1
echo "bench exit $?"
grep -E "^BM_" "$W/vsfp16.log" | awk '{print $1, $0}' | grep -oE "^BM_[^ ]+|us_fp16=[0-9.]+|us_w4a16=[0-9.]+|x_vs_fp16=[0-9.]+" | paste - - - - 
for preset in 7b 1_8b; do
  timeout 60 build-gpu/ridgeline sweep --model internlm2-chat-$preset --weights w4a16 --context 1024 \
    --batch 48,64 --repeat 3 --out "$W/steps-$preset.json" >"$W/steps-$preset.log" 2>&1
  echo "sweep $preset exit $?"
done
