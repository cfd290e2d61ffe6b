#!/usr/bin/env bash
# Thirty-third: the norms folded into the 3-8-row tensor-core GEMVs (perf/wip/gemv-tc-norm-sums.patch:
# gemv_tc_fused, Fusions::norm_sums), measured and not landed. Applies that patch and
# perf/wip/tc-norm-knob.patch over b1ce4f4 (or any tree where they apply), builds once, then
#   1. with TC_NORM_AB_TESTS=1 the whole GPU suite (every test but DecodeBench.*);
#   2. sweeps interleaved per variant, 1.8b and 7b, B=4,8 x ctx 1024,4096, fp16/fp16, two rounds.
# Variants (TC_NORM_AB_VARIANTS, name:VAR=1[,VAR=1]): old = add_rmsnorm + gemv_tc as on main;
# normed-plain = the patch as written (normed GEMVs plain, residual GEMVs overlapped at 1.8b's sizes);
# all-overlapped; all-plain; resid-plain (normed overlapped, residual plain).
#
#   OUT=/some/dir bash perf/wip/tc-norm-ab.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/gemv-tc-norm-sums.patch && git apply perf/wip/tc-norm-knob.patch ||
  { echo "the patches do not apply"; exit 1; }
build_gpu ridgeline ridgeline_gpu_tests
if [ -n "${TC_NORM_AB_TESTS:-}" ]; then
  RIDGELINE_REQUIRE_GPU=1 timeout 330 build-gpu/tests/ridgeline_gpu_tests --gtest_filter='-DecodeBench.*' \
    >"$W/gpu-tests.log" 2>&1
  echo "gpu tests exit $? at $(( $(date +%s) - start )) s"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$W/gpu-tests.log" | head -20
fi
build-gpu/ridgeline probe --out "$W/ceil.json" >"$W/probe.log" 2>&1 || { tail "$W/probe.log"; exit 1; }
grep -iE "^read|^copy" "$W/probe.log" | head -2
variants=${TC_NORM_AB_VARIANTS:-"old:RL_X_NO_TC_NORM=1 normed-plain:RL_X_NONE=1 all-overlapped:RL_X_TC_OVERLAP_NORMED=1 all-plain:RL_X_TC_PLAIN_RESIDUAL=1 resid-plain:RL_X_TC_OVERLAP_NORMED=1,RL_X_TC_PLAIN_RESIDUAL=1"}
for rep in 1 2; do
  for model in ${TC_NORM_AB_MODELS:-internlm2-chat-1_8b internlm2-chat-7b}; do
    for v in $variants; do
      [ $(( $(date +%s) - start )) -gt ${TC_NORM_AB_BUDGET_S:-560} ] && break 3
      tag=${v%%:*}-$model-$rep
      # shellcheck disable=SC2046
      env $(echo "${v#*:}" | tr , ' ') build-gpu/ridgeline sweep --device cuda --model "$model" --batch 4,8 \
        --context 1024,4096 --weights fp16 --kv fp16 --ceilings "$W/ceil.json" --out "$W/$tag.json" \
        >"$W/$tag.log" 2>&1 || echo "$tag failed"
      echo "$tag: $(grep -E '^\[[0-9]+/[0-9]+\]' "$W/$tag.log" | sed 's/^\[[0-9/]*\] //; s/ fp16\/fp16//; s/ us\/step.*//' | tr '\n' ';')"
    done
  done
done
