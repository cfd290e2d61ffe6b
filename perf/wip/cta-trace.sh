#!/usr/bin/env bash
# One device call (~5 min from a bare machine): where the CTAs of 1.8b's B=2 decode step land, with and
# without decode attention's two-an-SM spread (perf/NOTES.md, "thirtieth": with the spread, the fp16
# GEMVs after attention lose 79 us a step while attention gains 28; the W4A16 kernels do not lose).
# Applies perf/wip/attention-spread-small-batches-knob.patch (RL_X_SPREAD_ALL=1 spreads B=1-2) and
# perf/wip/cta-trace.patch (per-CTA stamps, built with -DRIDGELINE_CTA_TRACE=ON into build-trace/),
# sweeps B=2 ctx 4096/8192 fp16/w4a16 weights fp16 KV both ways with RIDGELINE_CTA_TRACE set, and
# summarizes (perf/wip/cta-trace-summary.py: per kernel, how many CTAs an SM ran, how many were
# resident before the previous kernel ended, and what each launch added to the step).
# Prediction: with the spread, wo's and w13's launches (gemv_fused<2,plain,epi3>, <2,norm,epi2>) show
# a higher sm_max / sm_mean or a tail on a crowded SM; if they do not, placement is not the cause.
#
#   OUT=/some/dir bash perf/wip/cta-trace.sh
source "$(dirname "$0")/device-call.sh"
mkdir -p "$W/trace"
trap 'git apply -R perf/wip/cta-trace.patch perf/wip/attention-spread-small-batches-knob.patch 2>/dev/null;
      tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/attention-spread-small-batches-knob.patch perf/wip/cta-trace.patch || exit 1
cmake --preset gpu -B build-trace -DRIDGELINE_CTA_TRACE=ON >"$W/cfg.log" 2>&1 || { tail -20 "$W/cfg.log"; exit 1; }
cmake --build build-trace -j16 --target ridgeline >"$W/build.log" 2>&1 || { grep -E "error" "$W/build.log" | head; exit 1; }
build-trace/ridgeline probe --out "$W/ceil.json" >"$W/probe.log" 2>&1
for tag in head spread; do
  x=RL_X_NONE=1
  [ $tag = spread ] && x=RL_X_SPREAD_ALL=1
  env $x RIDGELINE_CTA_TRACE="$W/trace/$tag" build-trace/ridgeline sweep --model internlm2-chat-1_8b --batch 2 \
    --context 4096,8192 --weights fp16,w4a16 --kv fp16 --ceilings "$W/ceil.json" --timeline \
    --out "$W/$tag.json" >"$W/$tag.log" 2>&1 || echo "$tag sweep failed"
done
python3 perf/wip/cta-trace-summary.py "$W"/trace/*.tsv | tee "$W/summary.txt"
gzip -f "$W"/trace/*.tsv
