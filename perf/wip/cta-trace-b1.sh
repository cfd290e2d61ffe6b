#!/usr/bin/env bash
# Thirty-sixth: where the B=1 step's GEMVs lose their time, per CTA (issue 12's B=1 row; reports/
# targets.md names this as the next measurement). 1.8b's four layer linears take 1011 us against 671
# at the read peak: wqkv (17 MB) and w13 (67 MB) are 3.6-4.6 us a launch over their bytes' time. Is
# that the grid getting onto the SMs (starts), the wait for the previous kernel (wait), a slow body,
# or a tail of late CTAs (tail)? perf/wip/cta-trace.patch stamps every gemv_fused warp's start, its
# exit from overlap_enter and its end (globaltimer); built into build-trace/ with
# -DRIDGELINE_CTA_TRACE=ON, the engine otherwise as on main.
# One device call (~4 min from a bare machine): build, probe, B=1 ctx 1024 fp16/fp16 sweeps of both
# presets with the stamps on, perf/wip/cta-trace-summary.py over them.
# Prediction: at 1.8b the body of each launch runs near the read peak (wqkv 3.7 us, w13 15 us) and
# starts + wait + tail make up the 3.6-4.6 us over it, about half each side of the body.
#
#   OUT=/some/dir bash perf/wip/cta-trace-b1.sh
source "$(dirname "$0")/device-call.sh"
mkdir -p "$W/trace"
trap 'git apply -R perf/wip/cta-trace.patch 2>/dev/null; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/cta-trace.patch || exit 1
start=$(date +%s)
cmake --preset gpu -B build-trace -DRIDGELINE_CTA_TRACE=ON >"$W/cfg.log" 2>&1 || { tail -20 "$W/cfg.log"; exit 1; }
cmake --build build-trace -j16 --target ridgeline >"$W/build.log" 2>&1 || { grep -E "error" "$W/build.log" | head; exit 1; }
echo "built in $(( $(date +%s) - start )) s"
build-trace/ridgeline probe --out "$W/ceil.json" >"$W/probe.log" 2>&1
grep -iE "^read|^copy" "$W/probe.log"
for model in internlm2-chat-1_8b internlm2-chat-7b; do
  RIDGELINE_CTA_TRACE="$W/trace/$model" build-trace/ridgeline sweep --model $model --batch 1 --context 1024 \
    --weights fp16 --kv fp16 --ceilings "$W/ceil.json" --timeline --out "$W/$model.json" >"$W/$model.log" 2>&1 ||
    echo "$model sweep failed"
  tail -1 "$W/$model.log"
done
python3 perf/wip/cta-trace-summary.py "$W"/trace/*.tsv | tee "$W/summary.txt"
gzip -f "$W"/trace/*.tsv
