#!/usr/bin/env bash
# Forty-third session, second call: whether the wgmma GEMM launched overlapped loses in the 7b step
# (first call: 7b w4a16 B=48/64 +2.5 / +0.8%, 1.8b -1.1 / -1.6%, while BM_W4A16VsFp16 gained on every
# shape) and whether a weight-size rule keeps 1.8b's gain: RIDGELINE_W4A16_WGMMA_OVERLAP=1 with
# RIDGELINE_W4A16_WGMMA_OVERLAP_MAX_MB unset / 10 / 20 (codes: 1.8b wo 2, wqkv 4, w2 8, w13 17; 7b wo 8,
# wqkv 13, w2 29, w13 59) against 0, interleaved, two rounds, w4a16 B=48/64 ctx 1024 --repeat 3.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-overlapped-steps.sh
source "$(dirname "$0")/device-call.sh"
patch=perf/wip/w4a16-wgmma-overlapped.patch
trap 'git apply -R "$patch" 2>/dev/null; tar czf "$OUT/steps.tgz" -C "$OUT" w' EXIT
git apply "$patch" || exit 1
card
build_gpu ridgeline
for round in 1 2; do
  for cfg in "0 all" "1 all" "1 10" "1 20"; do
    set -- $cfg
    for preset in 7b 1_8b; do
      name=r$round-m$1-$2-$preset
      if [ "$2" = all ]; then unset RIDGELINE_W4A16_WGMMA_OVERLAP_MAX_MB; else export RIDGELINE_W4A16_WGMMA_OVERLAP_MAX_MB=$2; fi
      RIDGELINE_W4A16_WGMMA_OVERLAP=$1 timeout 60 build-gpu/ridgeline sweep --model internlm2-chat-$preset \
        --weights w4a16 --context 1024 --batch 48,64 --repeat 3 --out "$W/$name.json" >"$W/$name.log" 2>&1 ||
        echo "$name failed"
    done
  done
done
echo "sweeps done at $(( $(date +%s) - start )) s"
for round in 1 2; do
  for cfg in m1-all m1-10 m1-20; do
    for preset in 7b 1_8b; do
      build-gpu/ridgeline compare "$W/r$round-m0-all-$preset.json" "$W/r$round-$cfg-$preset.json" \
        --md "$W/cmp-r$round-$cfg-$preset.md" >/dev/null 2>&1
      grep -E "^\| decode" "$W/cmp-r$round-$cfg-$preset.md" | sed "s/^/r$round $cfg $preset /"
    done
  done
done
