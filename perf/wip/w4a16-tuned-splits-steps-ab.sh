#!/usr/bin/env bash
# Fiftieth session (~3 min on a machine that ran w4a16-tuned-splits-verify.sh: build-gpu is warm): the
# w4a16 decode steps at B = 24 / 32, ctx 1024, both presets, with the measured split table (HEAD) and
# without it (w4a16-tuned-splits-off.patch), on one machine, A B A: is the step gain of the table the
# table's? Everything in $OUT/ab.tgz.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> bash perf/wip/w4a16-tuned-splits-steps-ab.sh
source "$(dirname "$0")/device-call.sh"
steps() {  # steps LABEL: both presets into $W/steps-LABEL-<preset>.json, a line a batch
  local m
  for m in internlm2-chat-1_8b internlm2-chat-7b; do
    timeout 75 build-gpu/ridgeline sweep --model $m --weights w4a16 --kv fp16 --batch 24,32 --context 1024 \
      --ceilings "$W/ceilings.json" --out "$W/steps-$1-$m.json" >"$W/steps-$1-$m.log" 2>&1
    python3 -c 'import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    print(sys.argv[2], sys.argv[3], "B", r["batch"], "step us", round(r["step"]["time_us"]["median"], 1))' \
      "$W/steps-$1-$m.json" "$1" "$m"
  done
}
build_gpu ridgeline
probe_ceilings
steps table-1
patched_build perf/wip/w4a16-tuned-splits-off.patch ab.tgz ridgeline
steps rule
git apply -R perf/wip/w4a16-tuned-splits-off.patch && _applied=
build_gpu ridgeline
steps table-2
