#!/usr/bin/env bash
# Thirty-third: the norms folded into the 3-8-row tensor-core GEMVs (gemv_tc_fused, Fusions::norm_sums),
# over 4e68772 and later (code as at d0d8d2e). Two forms of the normed GEMV's prologue:
#   TC_NORM_FORM=smem (default): perf/wip/gemv-tc-norm-smem.patch, each warp normalizes its input share
#     once into shared memory, then streams with 4 steps in flight. Not run yet.
#   TC_NORM_FORM=regs: that patch, then gemv-tc-norm-regs.patch (the kernel as measured at 751032c:
#     normalized in registers step by step, 2 steps in flight) and tc-norm-knob.patch's launch knobs.
# One build, then the kernel and tiny-model engine tests (TC_NORM_AB_TESTS: a gtest filter) and sweeps
# interleaved per variant, 1.8b and 7b, B=4,8 x ctx 1024,4096, fp16/fp16, two rounds. Variants
# (TC_NORM_AB_VARIANTS, name:VAR=1[,VAR=1]): old = add_rmsnorm + gemv_tc as on main (RL_X_NO_TC_NORM,
# put into engine/ops.cpp here); new = the form as written (normed GEMVs plain, residual GEMVs overlapped
# at 1.8b's sizes); regs only: all-overlapped, all-plain, resid-plain.
#
#   OUT=/some/dir [TC_NORM_FORM=regs] bash perf/wip/tc-norm-ab.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
form=${TC_NORM_FORM:-smem}
git apply perf/wip/gemv-tc-norm-smem.patch || { echo "the patch does not apply"; exit 1; }
if [ "$form" = regs ]; then
  git apply perf/wip/gemv-tc-norm-regs.patch && git apply perf/wip/tc-norm-knob.patch ||
    { echo "the regs patches do not apply"; exit 1; }
fi
sed -i 's/const bool tc_norm = decode/const bool tc_norm = std::getenv("RL_X_NO_TC_NORM") == nullptr \&\& decode/;
        s/#include "engine\/ops.h"/#include "engine\/ops.h"\n#include <cstdlib>/' engine/ops.cpp
grep -q RL_X_NO_TC_NORM engine/ops.cpp || { echo "the knob did not go in"; exit 1; }
build_gpu ridgeline ridgeline_gpu_tests
RIDGELINE_REQUIRE_GPU=1 timeout 200 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter="${TC_NORM_AB_TESTS:-KernelGemvTc*:CudaEngine.Batched*:CudaEngine.BenchmarkHooks*}" >"$W/tests.log" 2>&1
echo "tests exit $? at $(( $(date +%s) - start )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" "$W/tests.log" | head -20
build-gpu/ridgeline probe --out "$W/ceil.json" >"$W/probe.log" 2>&1 || { tail "$W/probe.log"; exit 1; }
grep -iE "^read|^copy" "$W/probe.log" | head -2
default="old:RL_X_NO_TC_NORM=1 new:RL_X_NONE=1"
[ "$form" = regs ] && default="$default all-overlapped:RL_X_TC_OVERLAP_NORMED=1 all-plain:RL_X_TC_PLAIN_RESIDUAL=1
  resid-plain:RL_X_TC_OVERLAP_NORMED=1,RL_X_TC_PLAIN_RESIDUAL=1"
for rep in 1 2; do
  for model in ${TC_NORM_AB_MODELS:-internlm2-chat-1_8b internlm2-chat-7b}; do
    for v in ${TC_NORM_AB_VARIANTS:-$default}; do
      [ $(( $(date +%s) - start )) -gt ${TC_NORM_AB_BUDGET_S:-330} ] && break 3
      tag=${v%%:*}-$model-$rep
      # shellcheck disable=SC2046
      env $(echo "${v#*:}" | tr , ' ') build-gpu/ridgeline sweep --device cuda --model "$model" --batch 4,8 \
        --context 1024,4096 --weights fp16 --kv fp16 --ceilings "$W/ceil.json" --out "$W/$tag.json" \
        >"$W/$tag.log" 2>&1 || echo "$tag failed"
      echo "$tag: $(grep -E '^\[[0-9]+/[0-9]+\]' "$W/$tag.log" | sed 's/^\[[0-9/]*\] //; s/ fp16\/fp16//; s/ us\/step.*//' | tr '\n' ';')"
    done
  done
done
