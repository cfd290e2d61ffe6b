#!/usr/bin/env bash
# Queued by the forty-first session (no device time left). One call, ~9 min from a bare machine, a
# compute capability 9.0 card, H100 or H200 (on an H200 run perf/wip/issue10-h200.sh and the baselines first):
#  1. perf/wip/w4a16-wgmma-pingpong.patch (scripts/gpu-kernel-ab.sh): the wgmma kernel's warpgroups
#     on alternate groups (one block an SM, named barriers), its tests, and BM_W4A16GemmSplits at
#     48/64 rows with its splits ("pp.*") beside the landed kernel's. Question: does one warpgroup's
#     unpacking overlapping the other's wgmmas take 1.8b wo at 64 rows under fp16 (6.68 -> < 6.44 us)?
#  2. perf/wip/w4a16-wgmma-lean-call.sh: the W4A16 tests, issue 9's rows at 16-128, the split map,
#     memcheck over the wgmma test, and the decode steps at B=48/64 with the wgmma route and without.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-next-call.sh
# First the experiment (a bare machine's full build comes with it), then the lean call (incremental).
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
python3 - "$OUT/pp/new.json" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    us = {k[3:]: v for k, v in b.items() if k.startswith("us_")}
    pp = min((v, k) for k, v in us.items() if k.startswith("pp."))
    wg = min((v, k) for k, v in us.items() if k.startswith("wg."))
    print(b["label"].split()[0], b["name"].split("/")[2], f"fp16 {us['fp16']:.2f} auto {us['auto']:.2f}",
          f"wgmma {wg[0]:.2f} {wg[1]} pingpong {pp[0]:.2f} {pp[1]} (auto {us.get('pp.auto', 0):.2f})")
PY
patch -p1 -R <perf/wip/w4a16-wgmma-pingpong.patch >/dev/null || exit 1
OUT=$OUT/lean LEAN_REPEAT=${LEAN_REPEAT:-1} bash perf/wip/w4a16-wgmma-lean-call.sh
