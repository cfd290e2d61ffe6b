#!/usr/bin/env bash
# Queued by the forty-first session, run in the forty-second (H100; perf/NOTES.md "forty-second"; the
# ping-pong patch has not applied since that session's review folded BM_W4A16GemmSplits' loops).
# One call, ~9-10 min from a bare machine, on a compute capability 9.0 card, H100 or H200:
#  1. perf/wip/w4a16-wgmma-pingpong.patch (scripts/gpu-kernel-ab.sh, candidate only): the wgmma
#     kernel's warpgroups on alternate groups (one block an SM, named barriers), its tests, and
#     BM_W4A16GemmSplits at 48/64 rows with its splits ("pp.*") beside the landed kernels'. Question:
#     does one warpgroup's unpacking overlapping the other's wgmmas take 1.8b wo at 64 rows under fp16
#     (6.68 -> < 6.44 us)?
#  2. The verify call of the landed wgmma route (w4a16-landed-verify.sh with
#     perf/wip/w4a16-gemm-wgmma-route.patch): the W4A16 tests, issue 9's rows at 16-128 and the split
#     map, the decode steps at B=48/64 with the route and without it, memcheck over the wgmma test.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-next-call.sh
: "${OUT:?set OUT}"
cd "$(dirname "$0")/../.."
# Everything in one archive (a call brings back a few files only).
final=$OUT
OUT=$OUT/x
mkdir -p "$OUT"
trap 'tar czf "$final/all.tgz" -C "$final" x && rm -rf "$final/x"' EXIT
export PATH=/usr/local/cuda/bin:$PATH
RIDGELINE_BENCH_FILTER='BM_W4A16GemmSplits/[0-7]/(48|64)/' RIDGELINE_AB_SKIP_OLD=1 \
  RIDGELINE_TEST_FILTER='KernelW4A16Gemm.Wgmma*' RIDGELINE_BENCH_MIN_TIME=30x \
  bash scripts/gpu-kernel-ab.sh "$OUT/pp" perf/wip/w4a16-wgmma-pingpong.patch - 2>&1 | tail -3
grep -E "PASSED|FAILED" "$OUT/pp/tests.log" | tail -3
python3 perf/wip/wgmma-summary.py "$OUT/pp/new.json"
patch -p1 -R <perf/wip/w4a16-wgmma-pingpong.patch >/dev/null || exit 1
OUT=$OUT/route VERIFY_BATCHES=48,64 VERIFY_REPEAT=${VERIFY_REPEAT:-1} \
  VERIFY_BENCH='BM_W4A16VsFp16/[0-7]/(16|32|48|64|128)/|BM_W4A16GemmSplits/[0-7]/(48|64)/' \
  VERIFY_MEMCHECK='KernelW4A16Gemm.Wgmma*' \
  bash perf/wip/w4a16-landed-verify.sh perf/wip/w4a16-gemm-wgmma-route.patch
python3 perf/wip/wgmma-summary.py "$OUT/route/w/vsfp16.json"
