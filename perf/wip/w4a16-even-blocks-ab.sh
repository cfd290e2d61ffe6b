#!/usr/bin/env bash
# Does an even share of the SMs speed up the 7b B = 1 step's fused SwiGLU GEMV (w13)? Its 896 gate/up
# pairs run as 224 blocks of 8 warps (2 slices a pair), two on most SMs and one on the rest (1.18x
# the mean); 2-warp blocks of one pair (896 blocks, 6 or 7 an SM) are even (1.03x). perf/NOTES.md,
# "fifty-sixth", has the reading and the prediction. Any Hopper card, ~5 min from a bare machine:
# builds with perf/wip/w4a16-fused-layout-knobs.patch (RIDGELINE_REGS_<in>x<out>=W.S.B forces a fused
# one-row layout), then for the default and 2.2.2 (and 1.1.2: one slice a pair, one warp a block) in
# turn, twice (A / B / C / A / B / C): BM_W4A16Fusions on 7b w13 at one row and the 7b w4a16 B = 1
# ctx 1024 step (`ridgeline sweep --repeat 3`). Everything comes back in $OUT/even-blocks.tgz.
#
#   OUT=/some/dir bash perf/wip/w4a16-even-blocks-ab.sh
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
patched_build perf/wip/w4a16-fused-layout-knobs.patch even-blocks.tgz ridgeline ridgeline_bench
probe_ceilings
for round in 1 2; do
  for layout in default 2.2.2 1.1.2; do
    tag=$layout-$round
    if [ "$layout" = default ]; then unset RIDGELINE_REGS_4096x28672; else export RIDGELINE_REGS_4096x28672=$layout; fi
    timeout 40 build-gpu/bench/ridgeline_bench --benchmark_filter='BM_W4A16Fusions/6/1/' \
      --benchmark_out="$W/fusions-$tag.json" --benchmark_out_format=json >"$W/fusions-$tag.log" 2>&1
    python3 -c 'import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(sys.argv[2], b.get("label"), "fused %.2f us" % b.get("us_fused", float("nan")))' "$W/fusions-$tag.json" "$tag"
    W4A16_STEPS_MODELS=internlm2-chat-7b W4A16_STEPS_ARGS="--repeat 3" w4a16_steps 1 "$tag"
  done
done
echo "done at $(( $(date +%s) - start )) s"
