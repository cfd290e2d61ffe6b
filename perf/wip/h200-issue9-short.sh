#!/usr/bin/env bash
# Issue 9's figures on an H200 in a short call (~5 min from a bare machine): the W4A16 GPU tests
# (the landed wgmma overlap of 1c78cbb has not run as landed), BM_W4A16VsFp16 at M = 1..64 (the
# kernel rows of its targets) and the decode steps at B=1 and 16, ctx 1024, fp16 and w4a16 weights, on
# both presets (`ridgeline sweep`, the probe's ceilings). For a session with too little device time
# for scripts/gpu-baselines.sh. Stops at once on a card that is not an H200. ISSUE9_SHORT_TESTS=0 skips
# the test binary (its build is most of the call's time; for a commit whose tests already passed on
# another Hopper card, with under 5 minutes of device time left).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/h200-issue9-short.sh
source "$(dirname "$0")/device-call.sh"
only_on_h200
trap 'tar czf "$OUT/all.tgz" -C "$OUT" w' EXIT
if [ "${ISSUE9_SHORT_TESTS:-1}" = 0 ]; then
  build_gpu ridgeline ridgeline_bench
else
  build_gpu ridgeline ridgeline_bench ridgeline_gpu_tests
  gpu_tests tests 60 "$W4A16_OVERLAP_TESTS"
fi
r=build-gpu/ridgeline
probe_ceilings
vsfp16 "1|2|4|8|16|24|32|48|64"
for m in internlm2-chat-1_8b internlm2-chat-7b; do
  timeout 100 $r sweep --model $m --weights fp16,w4a16 --kv fp16 --batch 1,16 --context 1024 \
    --ceilings "$W/ceilings.json" --out "$W/short-$m.json" >"$W/steps-$m.log" 2>&1
  echo "sweep $m exit $?"
done
python3 scripts/targets.py --baselines "$W" --prefix short --ceilings "$W/ceilings.json" "$W/vsfp16.json" \
  >"$W/targets.md" 2>&1
grep -E "^\| 9 " "$W/targets.md"
