#!/usr/bin/env bash
# Thirty-third: the norms folded into the 3-8-row tensor-core GEMVs (gemv_tc_fused, Fusions::norm_sums).
# One build with perf/wip/tc-norm-knob.patch applied (RL_X_NO_TC_NORM=1: the old launches, add_rmsnorm
# then gemv_tc; RL_X_TC_FUSED_PLAIN=1: the fused GEMVs launched plain, not overlapped), then
#   1. the GPU tests that run the new path (kernels and the tiny-model engine, the 1.8b overlap test);
#   2. interleaved sweeps, old, new, new launched plain, 1.8b and 7b, B=4,8 x ctx 1024,4096, fp16/fp16,
#      two rounds.
#
#   OUT=/some/dir bash perf/wip/tc-norm-ab.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/tc-norm-knob.patch || { echo "patch does not apply"; exit 1; }
build_gpu ridgeline ridgeline_gpu_tests
[ -n "${TC_NORM_AB_NO_TESTS:-}" ] || RIDGELINE_REQUIRE_GPU=1 timeout 240 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelGemvTc*:KernelGemvFused*:KernelGemvSwiglu*:CudaEngine.*' >"$W/tests.log" 2>&1
echo "tests exit $? at $(( $(date +%s) - start )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |\[nmse\] gemv_tc_fused" "$W/tests.log" | head -60
build-gpu/ridgeline probe --out "$W/ceil.json" >"$W/probe.log" 2>&1 || { tail "$W/probe.log"; exit 1; }
grep -iE "read|gemm" "$W/probe.log" | head -4
run() {
  local tag=$1 model=$2
  shift 2
  [ $(( $(date +%s) - start )) -gt ${TC_NORM_AB_BUDGET_S:-540} ] && return
  env "$@" build-gpu/ridgeline sweep --device cuda --model "$model" --batch 4,8 --context 1024,4096 \
    --weights fp16 --kv fp16 --ceilings "$W/ceil.json" --out "$W/$tag.json" >"$W/$tag.log" 2>&1 || echo "$tag failed"
  echo "$tag $(( $(date +%s) - start )) s: $(grep -E '^\[[0-9]+/[0-9]+\]' "$W/$tag.log" | sed 's/^\[[0-9/]*\] //' | tr '\n' ';')"
}
# TC_NORM_AB_MODELS / TC_NORM_AB_VARIANTS pick the rows (default: both presets; old, new, plain).
variants=${TC_NORM_AB_VARIANTS:-"old:RL_X_NO_TC_NORM=1 new:RL_X_NONE=1 plain:RL_X_TC_FUSED_PLAIN=1"}
for rep in 1 2; do
  for model in ${TC_NORM_AB_MODELS:-internlm2-chat-1_8b internlm2-chat-7b}; do
    for v in $variants; do
      run "${v%%:*}-$model-$rep" "$model" "${v#*:}"
    done
  done
done
