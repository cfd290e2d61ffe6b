#!/usr/bin/env bash
# Twenty-ninth: why rope_in_attention (f001daf) costs 1.8b B=4 at ctx 4096/8192 (+1.2..+6.2%). Hypothesis:
# launched overlapped behind wqkv (many CTAs) instead of behind rope_kv_write (a few), the attention grid's
# 256 CTAs land 3-4 an SM on the SMs wqkv frees first instead of 2 an SM on every SM. Variants of one build
# with perf/wip/ria-placement-experiment.patch applied (env knobs): head, RL_X_NO_RIA (the old two launches),
# RL_X_ATTN_CAP2 (smem request caps the grid at 2 CTAs an SM where choose_splits sized it so),
# RL_X_ATTN_PLAIN (no early launch), both. Run from the repo root with the patch applied; $OUT set.
set -uo pipefail
export PATH=/usr/local/cuda/bin:$PATH
export RIDGELINE_GIT_COMMIT=${RIDGELINE_GIT_COMMIT:-unknown}
W=$OUT/w; mkdir -p $W
trap 'tar czf $OUT/w.tgz -C $OUT w' EXIT
T0=$SECONDS
cmake --preset gpu -B build-gpu > $W/cfg.log 2>&1 && cmake --build build-gpu -j16 --target ridgeline > $W/build.log 2>&1 ||
  { tail -30 $W/build.log; exit 1; }
echo "build $((SECONDS - T0)) s"
build-gpu/ridgeline probe --out $W/ceil.json > $W/probe.log 2>&1 || { cat $W/probe.log; exit 1; }
run() {
  local tag=$1; shift
  [ $((SECONDS - T0)) -gt ${RIA_AB_BUDGET_S:-470} ] && return
  env "$@" build-gpu/ridgeline sweep --model internlm2-chat-1_8b --batch 1,4,8 --context 4096,8192 --weights fp16 \
    --kv fp16,int4 --ceilings $W/ceil.json --timeline --out $W/$tag.json > $W/$tag.log 2>&1 || echo "$tag failed"
  echo "$tag $((SECONDS - T0)) s"
}
for rep in 1 2; do
  run head-$rep RL_X_NONE=1
  run noria-$rep RL_X_NO_RIA=1
  run cap2-$rep RL_X_ATTN_CAP2=1
  run plain-$rep RL_X_ATTN_PLAIN=1
  run cap2noria-$rep RL_X_ATTN_CAP2=1 RL_X_NO_RIA=1
done
python3 perf/wip/ria-placement-summary.py $W | tee $W/summary.txt
