#!/usr/bin/env bash
# Thirty-third, second try: the norms in the 3-8-row tensor-core GEMVs with the normed rows in shared
# memory (perf/wip/gemv-tc-norm-smem.patch over cdf84c3 and later: each warp normalizes its input share once, then
# streams with the plain kernel's 4 steps in flight). One build with the patch and an RL_X_NO_TC_NORM
# knob (sed into engine/ops.cpp), then the kernel and tiny-model engine tests and
# old/new sweeps interleaved, 1.8b and 7b, B=4,8 x ctx 1024,4096, fp16/fp16.
#
#   OUT=/some/dir bash perf/wip/tc-norm-smem-ab.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/gemv-tc-norm-smem.patch || { echo "the patch does not apply"; exit 1; }
# The knob: RL_X_NO_TC_NORM=1 keeps add_rmsnorm + gemv_tc (cuda_fusions without norm_sums).
sed -i 's/const bool tc_norm = decode/const bool tc_norm = std::getenv("RL_X_NO_TC_NORM") == nullptr \&\& decode/;
        s/#include "engine\/ops.h"/#include "engine\/ops.h"\n#include <cstdlib>/' engine/ops.cpp
grep -q RL_X_NO_TC_NORM engine/ops.cpp || { echo "the knob did not go in"; exit 1; }
build_gpu ridgeline ridgeline_gpu_tests
RIDGELINE_REQUIRE_GPU=1 timeout 120 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter="${TC_NORM_AB_TESTS:-KernelGemvTc*:CudaEngine.Batched*:CudaEngine.BenchmarkHooks*}" >"$W/tests.log" 2>&1
echo "tests exit $? at $(( $(date +%s) - start )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" "$W/tests.log" | head -20
build-gpu/ridgeline probe --out "$W/ceil.json" >"$W/probe.log" 2>&1 || { tail "$W/probe.log"; exit 1; }
grep -iE "^read|^copy" "$W/probe.log" | head -2
for rep in 1 2; do
  for model in internlm2-chat-1_8b internlm2-chat-7b; do
    for v in old:RL_X_NO_TC_NORM=1 new:RL_X_NONE=1; do
      [ $(( $(date +%s) - start )) -gt ${TC_NORM_AB_BUDGET_S:-330} ] && break 3
      tag=${v%%:*}-$model-$rep
      env "${v#*:}" build-gpu/ridgeline sweep --device cuda --model "$model" --batch 4,8 --context 1024,4096 \
        --weights fp16 --kv fp16 --ceilings "$W/ceil.json" --out "$W/$tag.json" >"$W/$tag.log" 2>&1 || echo "$tag failed"
      echo "$tag: $(grep -E '^\[[0-9]+/[0-9]+\]' "$W/$tag.log" | sed 's/^\[[0-9/]*\] //; s/ fp16\/fp16//; s/ us\/step.*//' | tr '\n' ';')"
    done
  done
done
