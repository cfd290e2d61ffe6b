#!/usr/bin/env bash
# Queued (twenty-ninth): why the two-an-SM spread of decode attention (launch_smem) helps B=2 with
# w4a16 weights (2.7-6% faster steps) but costs B=2 with fp16 weights (0.6-3.3%), and is -1.5..+1.0% at
# B=1 ctx 8192. With perf/wip/attention-spread-small-batches-knob.patch applied, RL_X_SPREAD_ALL=1 spreads
# B=1-2 too; sweeps both ways with --timeline (what each kernel adds to the overlapped step: the
# predecessor, gemv_fused at fp16 B<=2 vs add_rmsnorm + the W4A16 GEMV, is the suspect). Run from the
# repo root on a GPU machine, $OUT set: bash perf/wip/attention-spread-small-batches.sh
set -uo pipefail
export PATH=/usr/local/cuda/bin:$PATH
W=$OUT/w; mkdir -p $W
trap 'tar czf $OUT/w.tgz -C $OUT w' EXIT
git apply perf/wip/attention-spread-small-batches-knob.patch || exit 1
cmake --preset gpu -B build-gpu > $W/cfg.log 2>&1 && cmake --build build-gpu -j16 --target ridgeline > $W/build.log 2>&1 ||
  { tail -30 $W/build.log; exit 1; }
build-gpu/ridgeline probe --out $W/ceil.json > $W/probe.log 2>&1
for rep in 1 2; do for tag in head spread; do
  x=RL_X_NONE=1; [ $tag = spread ] && x=RL_X_SPREAD_ALL=1
  env $x build-gpu/ridgeline sweep --model internlm2-chat-1_8b --batch 1,2 --context 4096,8192,16384 \
    --weights fp16,w4a16 --kv fp16,int4 --ceilings $W/ceil.json --timeline --out $W/$tag-$rep.json > $W/$tag-$rep.log 2>&1 ||
    echo "$tag failed"
done; done
python3 perf/wip/ria-placement-summary.py $W | tee $W/summary.txt
git apply -R perf/wip/attention-spread-small-batches-knob.patch
