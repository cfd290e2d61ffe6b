#!/usr/bin/env bash
# Queued by the fortieth session (no device time left). One call, ~8 min from a bare machine, any card
# (on an H200 run perf/wip/issue10-h200.sh and the baselines first: perf/NOTES.md "fortieth", Next):
#  1. perf/wip/w4a16-plain-wo-8-warps-4-stages.patch against HEAD (scripts/gpu-kernel-ab.sh): the
#     plain GEMV at 1-2 rows on weights of up to 32 groups and 1-2 strips an SM (1.8b wqkv, 7b wo)
#     with 8 warps and 4 stages instead of 16 (8) warps and 2. From the fortieth session's variants
#     (H100): 7b wo M = 1 / 2 4.77 / 4.78 -> 4.56 / 4.41 us, 1.8b wqkv M = 2 3.13 -> 3.06; M = 1 of
#     1.8b wqkv stays on the register kernel. Prediction: BM_W4A16VsFp16/5/1 4.79 -> ~4.6 us (2.71x
#     -> ~2.85x), /5/2 4.73 -> ~4.45, /0/2 3.15 -> ~3.08, every other row within 2%; the B=2 steps
#     (plain GEMVs) -0.2..-0.5%.
#  2. BM_W4A16GemvVariants at M = 1, 2, 8 in the old build: on an H200, whether choose_plain_config's
#     picks (made on H100 measurements) are its best there too.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-next-call.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
nvidia-smi --query-gpu=name --format=csv,noheader
RIDGELINE_BENCH_FILTER='BM_W4A16VsFp16/[0-7]/(1|2|8)/|BM_W4A16GemvVariants/[0-7]/(1|2|8)/' \
RIDGELINE_BENCH_MIN_TIME=30x RIDGELINE_TEST_FILTER='KernelW4A16*:W4A16ModelShapes*:CudaW4A16.*' \
  bash scripts/gpu-kernel-ab.sh "$W/wo" perf/wip/w4a16-plain-wo-8-warps-4-stages.patch - 2>&1 | tail -3
grep -E "PASSED|FAILED" "$W/wo/tests.log" | tail -3
grep -E "BM_W4A16VsFp16/" "$W/wo/ab.txt"
python3 perf/wip/variants-summary.py "$W/wo/old.json"
