#!/usr/bin/env bash
# Thirty-third, the landed form of the norms in the 3-8-row tensor-core GEMVs (gemv_tc_fused, the
# normed GEMV launched plain): the whole GPU suite, then old/new sweeps interleaved on both presets
# (perf/wip/tc-norm-off-knob.patch: RL_X_NO_TC_NORM=1 runs add_rmsnorm + gemv_tc as before).
#
#   OUT=/some/dir bash perf/wip/tc-norm-verify.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/tc-norm-off-knob.patch || { echo "patch does not apply"; exit 1; }
build_gpu ridgeline ridgeline_gpu_tests
RIDGELINE_REQUIRE_GPU=1 timeout 330 build-gpu/tests/ridgeline_gpu_tests --gtest_filter='-DecodeBench.*' \
  >"$W/gpu-tests.log" 2>&1
echo "gpu tests exit $? at $(( $(date +%s) - start )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$W/gpu-tests.log" | head -20
grep -E "^\[nmse\] gemv_tc_fused" "$W/gpu-tests.log" | sort -k4 -g | tail -3
build-gpu/ridgeline probe --out "$W/ceil.json" >"$W/probe.log" 2>&1 || { tail "$W/probe.log"; exit 1; }
grep -iE "^read|^copy" "$W/probe.log" | head -2
for rep in 1 2; do
  for model in internlm2-chat-1_8b internlm2-chat-7b; do
    for v in old:RL_X_NO_TC_NORM=1 new:RL_X_NONE=1; do
      [ $(( $(date +%s) - start )) -gt 560 ] && break 3
      tag=${v%%:*}-$model-$rep
      env "${v#*:}" build-gpu/ridgeline sweep --device cuda --model "$model" --batch 4,8 --context 1024,4096 \
        --weights fp16 --kv fp16 --ceilings "$W/ceil.json" --out "$W/$tag.json" >"$W/$tag.log" 2>&1 || echo "$tag failed"
      echo "$tag: $(grep -E '^\[[0-9]+/[0-9]+\]' "$W/$tag.log" | sed 's/^\[[0-9/]*\] //; s/ fp16\/fp16//; s/ us\/step.*//' | tr '\n' ';')"
    done
  done
done
