#!/usr/bin/env bash
# Forty-fifth session (also the W4A16 GEMM and overlapped-launch tests the landed overlap owes):
# choose_config's 4-warp blocks at 9..16 rows where there are more than two
# blocks an SM (the w13s). The W4A16 GEMV tests, BM_W4A16VsFp16 at M = 16, and the w4a16 steps at
# B=16 ctx 1024 on both presets (--repeat 3), to hold against the same day's H200 baselines
# (bench/results/h200-baselines-f195121/). ~5 min from a bare machine, any card.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-m16-w13-warps.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w13.tgz" -C "$OUT" w' EXIT
card
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
gpu_tests tests 120 'KernelW4A16Gemv.*:KernelW4A16Gemm.*:KernelW4A16Linear.*:CudaEngine.OverlappedLaunches*:W4A16ModelShapes*:CudaW4A16.*'
timeout 60 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x --benchmark_filter='BM_W4A16VsFp16/[0-7]/16/' \
  --benchmark_out="$W/vsfp16.json" --benchmark_out_format=json >"$W/vsfp16.log" 2>&1
echo "bench exit $?"
grep -oE "^BM_[^ ]+|x_vs_fp16=[0-9.]+|us_w4a16=[0-9.]+" "$W/vsfp16.log" | paste - - - | head -8
for preset in 7b 1_8b; do
  timeout 90 build-gpu/ridgeline sweep --model internlm2-chat-$preset --weights fp16,w4a16 --context 1024 \
    --batch 16 --repeat 3 --out "$W/steps-$preset.json" >"$W/steps-$preset.log" 2>&1
  echo "sweep $preset exit $?"
  grep -E "w4a16|fp16" "$W/steps-$preset.log" | tail -4
done
echo "done at $(( $(date +%s) - start )) s"
