#!/usr/bin/env bash
# Fifty-second session, written and compile-checked, not run (the session's device time ran out): the
# ring GEMV filling every ring slot before its first multiply and refilling a slot as soon as its
# group is multiplied (perf/wip/w4a16-gemv-fill-every-stage.patch), where HEAD fills kStages - 1 and
# refills the slot read one step before. At one row a warp streams only a few groups (7b wo: 4 groups
# a warp, 4 stages), so HEAD sends the last a DRAM round trip late; 2-stage layouts (7b wqkv's 8
# warps, 4 groups) go from 1 group in flight at the start to 2. Same copies, same arithmetic, so the
# same bits. One call (~7-8 min from a bare machine): scripts/gpu-kernel-ab.sh, HEAD against the
# patch on one machine: BM_W4A16VsFp16 at 1..8 rows and the layouts' own table at one row, the
# W4A16 GEMV, model-shape and engine tests with the patch, and the decode benchmark's w4a16 steps.
#
#   OUT=/some/dir bash perf/wip/w4a16-gemv-fill-every-stage.sh
cd "$(dirname "$0")/../.."
: "${OUT:?set OUT}"
echo "card: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
RIDGELINE_BENCH_FILTER='BM_W4A16VsFp16/[0-7]/(1|2|4|8)/|BM_W4A16GemvVariants/[0-7]/1/' \
  RIDGELINE_TEST_FILTER='KernelW4A16Gemv*:KernelW4A16Linear.*:W4A16ModelShapes*:CudaW4A16.*:CudaEngine.*' \
  RIDGELINE_AB_DECODE=DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets RIDGELINE_BENCH_MIN_TIME=30x \
  timeout 580 bash scripts/gpu-kernel-ab.sh "$OUT/ab" perf/wip/w4a16-gemv-fill-every-stage.patch -
python3 - "$OUT/ab" <<'PY'
import json, sys
d = sys.argv[1]
def rows(side):
    try:
        return {b["name"]: b for b in json.load(open(f"{d}/{side}.json"))["benchmarks"]}
    except (OSError, ValueError):
        return {}
old, new = rows("old"), rows("new")
for name, b in new.items():
    if name.startswith("BM_W4A16VsFp16/") and name in old:
        o = old[name]
        print(name.split("/")[2], b.get("label"), "w4a16 %.2f -> %.2f us, x vs fp16 %.2f -> %.2f" %
              (o["us_w4a16"], b["us_w4a16"], o["x_vs_fp16"], b["x_vs_fp16"]))
PY
