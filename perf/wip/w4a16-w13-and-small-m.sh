#!/usr/bin/env bash
# Queued by the thirty-ninth session (no device time left to run it). One call, ~7 min from a bare
# machine, any card:
#  1. perf/wip/w4a16-gemv-two-stages-w13.patch against HEAD (scripts/gpu-kernel-ab.sh, one build):
#     the 9-32-row layout rule gives fewer warps a block as the blocks outnumber the SMs (4 at 2-4x,
#     2 beyond), and 9-16 rows of weights up to 16384 outputs (1.8b w13) go to the GEMV. From the
#     thirty-ninth session's variants (H100, M = 16): 1.8b w13 w4t2s2 8.80 us against the GEMM's
#     10.64 and the rule's w8t2s2 11.61; 7b w13 w2t2s2 27.68 against the GEMM's 27.25 (it stays on
#     the GEMM). Prediction: BM_W4A16VsFp16/2/16 10.6 -> ~8.8 us, every other row within 2%; the
#     1.8b w4a16 B=16 step -40 us (24 layers x 1.8 us, ~-2.5%).
#  2. In the same old build: BM_W4A16GemvVariants at M = 2, 4 and 8, whose variants now include
#     2-stage rings (one N tile's stage is 3.3 KB at 8 rows: 4 stages already fit two 8-warp
#     blocks an SM, 2 would fit four). Read: does any 2-stage layout beat the default at M = 2-8?
#     And the launch floors: an empty graph node plain (1.0 us on the H100) and overlapped as the
#     GEMVs launch (us_floor_overlapped, new): how much of 7b wo's 2.2 us beyond its bytes at M = 1
#     no kernel can remove (reports/targets.md, issue 9).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-w13-and-small-m.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
RIDGELINE_BENCH_FILTER='BM_W4A16VsFp16/[0-7]/(1|8|16|32)/|BM_W4A16GemvVariants/[0-7]/(1|2|8)/' \
RIDGELINE_BENCH_MIN_TIME=30x RIDGELINE_TEST_FILTER='KernelW4A16*:W4A16ModelShapes*' \
RIDGELINE_AB_DECODE=DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets \
  bash scripts/gpu-kernel-ab.sh "$W/w13" perf/wip/w4a16-gemv-two-stages-w13.patch - 2>&1 | tail -3
grep -E "PASSED|FAILED" "$W/w13/tests.log" | tail -3
grep -E "BM_W4A16VsFp16/[0-7]/16/" "$W/w13/ab.txt"
grep -h "w4a16 vs fp16\|B=16" "$W"/w13/decode-*.txt
python3 perf/wip/variants-summary.py "$W/w13/old.json"
python3 perf/wip/variants-summary.py "$W/w13/new.json"
