#!/usr/bin/env bash
# The w4a16 decode steps at ctx 1024, A / B / A on one machine: HEAD, HEAD with each of AB_PATCH's patches
# in turn (space-separated), HEAD again (~3 min from a bare machine, ~30 s a patch where build-gpu is
# warm). For a change whose kernel timings alone do not say what it does inside the step's graph
# (fiftieth session: the split table's 1.8b gain was 2-4x its kernels'). AB_MODELS (default both
# presets) and AB_SWEEP_ARGS (e.g. --timeline: CUPTI's record of one step as the graph ran it, per
# kernel in each run's "timeline") go to `ridgeline sweep`. Everything in $OUT/ab.tgz.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> AB_PATCH=perf/wip/X.patch AB_BATCHES=48,64 \
#     bash perf/wip/w4a16-steps-ab.sh
source "$(dirname "$0")/device-call.sh"
: "${AB_PATCH:?set AB_PATCH to the patches to time}" "${AB_BATCHES:?set AB_BATCHES, e.g. 24,32}"
models=${AB_MODELS:-internlm2-chat-1_8b internlm2-chat-7b}
echo "card: $(card)"
steps() {  # steps LABEL: each model into $W/steps-LABEL-<preset>.json, a line a batch
  local m
  for m in $models; do
    timeout 90 build-gpu/ridgeline sweep --model $m --weights w4a16 --kv fp16 --batch "$AB_BATCHES" \
      --context 1024 ${AB_SWEEP_ARGS:-} --ceilings "$W/ceilings.json" --out "$W/steps-$1-$m.json" \
      >"$W/steps-$1-$m.log" 2>&1
    python3 -c 'import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    print(sys.argv[2], sys.argv[3], "B", r["batch"], "step us", round(r["step"]["time_us"]["median"], 1))' \
      "$W/steps-$1-$m.json" "$1" "$m"
  done
}
build_gpu ridgeline
probe_ceilings
steps head-1
for p in $AB_PATCH; do
  patched_build "$p" ab.tgz ridgeline
  steps "$(basename "$p" .patch)"
  git apply -R "$p" 2>/dev/null || patch -p1 -R <"$p" >>"$W/patch.log" 2>&1
  _applied=
done
build_gpu ridgeline
steps head-2
