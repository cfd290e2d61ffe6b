#!/usr/bin/env bash
# Thirty-ninth session: checks the 2-stage W4A16 GEMV rings at 9-32 rows (perf/wip/w4a16-two-stages-
# landed.patch is its kernel diff): the W4A16 GPU tests, BM_W4A16VsFp16 (issue 9's table), decode
# steps at B = 16/32 (7b and 1.8b, w4a16, ctx 1024) with the change and without it (the patch
# reversed, ridgeline rebuilt), then memcheck over the GEMV tests in the time left. ~7 min.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-two-stages-verify.sh
source "$(dirname "$0")/device-call.sh"
trap 'patch -p1 -N <perf/wip/w4a16-two-stages-landed.patch >/dev/null 2>&1; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
RIDGELINE_REQUIRE_GPU=1 timeout 150 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelW4A16*:W4A16ModelShapes*:CudaW4A16.*' >"$W/tests.log" 2>&1
echo "W4A16 tests exit $?"
grep -E "Failure|^\[  (PASSED|FAILED) " "$W/tests.log" | head -8
timeout 120 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x \
  --benchmark_filter='BM_W4A16VsFp16/[0-7]/(1|16|24|32|48|64)/' \
  --benchmark_out="$W/vsfp16.json" --benchmark_out_format=json >"$W/vsfp16.log" 2>&1
echo "bench exit $?"
sweep() {  # NAME
  for preset in internlm2-chat-7b internlm2-chat-1_8b; do
    timeout 90 build-gpu/ridgeline sweep --model $preset --weights w4a16 --batch 16,32 --context 1024 \
      --repeat 1 --out "$W/sweep-$1-${preset#internlm2-chat-}.json" >"$W/sweep-$1-$preset.log" 2>&1
    echo "sweep $1 $preset exit $?"
  done
}
sweep new
patch -p1 -R <perf/wip/w4a16-two-stages-landed.patch >/dev/null || exit 1
bash scripts/refresh-mtimes.sh build-gpu >/dev/null
cmake --build build-gpu -j16 --target ridgeline >"$W/build-old.log" 2>&1 || { tail -5 "$W/build-old.log"; exit 1; }
sweep old
patch -p1 <perf/wip/w4a16-two-stages-landed.patch >/dev/null
python3 - "$W" <<'PY'
import json, sys, glob
w = sys.argv[1]
def steps(path):
    d = json.load(open(path))
    return {(r["batch"],): r["step"]["time_us"]["median"] / 1000 for r in d["runs"]}
for p in ("7b", "1_8b"):
    try:
        new, old = steps(f"{w}/sweep-new-{p}.json"), steps(f"{w}/sweep-old-{p}.json")
    except Exception as e:
        print(p, "no sweep:", e); continue
    for k in sorted(new):
        print(f"{p} B={k[0]} w4a16 ctx 1024: old {old.get(k, float('nan')):.3f} ms, new {new[k]:.3f} ms")
PY
timeout 75 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelW4A16Gemv.MatchesReferenceForEveryLayout*' >"$W/memcheck.log" 2>&1
echo "memcheck exit $?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) " "$W/memcheck.log" | tail -3
