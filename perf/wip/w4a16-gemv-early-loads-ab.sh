#!/usr/bin/env bash
# Fifty-second session; run in the fifty-third on an H100 at b467400, both slower, neither landed
# (bench/results/h100-early-loads-ab-b467400/). Two GEMV changes that request weights earlier, each
# measured alone against HEAD on one machine
# (scripts/gpu-kernel-ab.sh's "A.patch,B.patch" form; ~8-9 min from a bare machine):
#  - w4a16-gemv-fill-every-stage.patch: the ring GEMV fills every ring slot before its first multiply
#    and refills a slot right after its group is multiplied (HEAD: kStages - 1 slots, the refill after
#    the next wait). At one row 7b wo's 4 groups a warp all go out at once (HEAD: 3, the 4th a DRAM
#    round trip later). It touches every ring GEMV launch: the plain ones (1 to 32 rows; at 16,
#    2-stage rings: 1 group in flight a warp at HEAD, 2 with the patch), the normed and fused ones at
#    2..8.
#  - w4a16-gemv-regs-both-batches-early.patch: the register GEMV (the B = 1 step's fused GEMVs)
#    requests its second register batch before the wait too, where ptxas keeps the registers
#    (not the normed SwiGLU pair and the normed one-strip store, which would spill): the RoPE wqkv
#    and the residual wo / w2 of every B = 1 step.
# Same copies, same arithmetic: the bits are HEAD's, which the tests check. The summary prints
# BM_W4A16VsFp16 at 1..16 rows (at 16 the 2-stage rings: 1 group in flight a warp at HEAD, up to 2
# with the first patch) and the decode benchmark's w4a16 steps (B = 1 and 16) for each side.
#
#   OUT=/some/dir bash perf/wip/w4a16-gemv-early-loads-ab.sh
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
RIDGELINE_BENCH_FILTER='BM_W4A16VsFp16/[0-7]/(1|2|4|8|16)/' \
  RIDGELINE_TEST_FILTER='KernelW4A16Gemv*:KernelRopeEpilogue*:W4A16ModelShapes*:CudaW4A16.*' \
  RIDGELINE_AB_DECODE=DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets RIDGELINE_BENCH_MIN_TIME=30x \
  timeout 570 bash scripts/gpu-kernel-ab.sh "$OUT/ab" \
  perf/wip/w4a16-gemv-fill-every-stage.patch,perf/wip/w4a16-gemv-regs-both-batches-early.patch -
python3 - "$OUT/ab" <<'PY'
import json, sys
d = sys.argv[1]
def rows(side):
    try:
        return {b["name"]: b for b in json.load(open(f"{d}/{side}.json"))["benchmarks"]}
    except (OSError, ValueError):
        return {}
sides = ["old", "new-w4a16-gemv-fill-every-stage", "new-w4a16-gemv-regs-both-batches-early"]
r = {s: rows(s) for s in sides}
for name, b in r["old"].items():
    line = f'{name.split("/")[2]:>2} {b.get("label"):10} us_w4a16 / x_vs_fp16:'
    for s in sides:
        c = r[s].get(name)
        line += f'  {c["us_w4a16"]:6.2f} {c["x_vs_fp16"]:4.2f}x' if c else "  -"
    print(line)
PY
