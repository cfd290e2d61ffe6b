#!/usr/bin/env bash
# Before/after for one kernel file on a GPU, in one process tree and one build folder: benchmarks the
# kernel as committed, copies a candidate source over it, rebuilds (only that file recompiles), runs
# the GPU tests against the candidate and benchmarks it again, so that the two sets of numbers come
# from the same machine minutes apart. Optionally profiles the candidate with Nsight Compute.
#
#   scripts/gpu-kernel-ab.sh OUTDIR CANDIDATE TARGET
#     e.g. scripts/gpu-kernel-ab.sh $OUT perf/wip/decode_attention_mma.cu kernels/decode_attention.cu
#   scripts/gpu-kernel-ab.sh OUTDIR CHANGE.patch -
#     the candidate is a patch over the tree (git apply, or patch -p1 where .git is missing): one that
#     touches several files, adds tests, changes the engine
#   scripts/gpu-kernel-ab.sh OUTDIR A.patch,B.patch -
#     several patches, each measured alone against the same old build (applied, built, tested,
#     benchmarked, reversed in turn): OUTDIR/new-A.json, tests-A.log, ..., one column each in ab.txt
#   RIDGELINE_BENCH_FILTER  benchmarks to time (Google Benchmark regex; default: all)
#   RIDGELINE_TEST_FILTER   GPU tests to run against the candidate (default: all)
#   RIDGELINE_NCU_KERNEL    a kernel-name regex: profile its first launches (ncu --clock-control none)
#   RIDGELINE_NCU_BENCH     the benchmark (filter) ncu runs for that (default: RIDGELINE_BENCH_FILTER)
#   RIDGELINE_AB_SKIP_OLD=1 only the candidate (when the committed kernel's numbers are already known)
#   RIDGELINE_AB_DECODE     a gtest filter of decode-step benchmarks to run on both sides too
#                           (e.g. DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets): OUTDIR/decode-{old,new}.txt
#   RIDGELINE_BENCH_MIN_TIME  Google Benchmark's --benchmark_min_time (default 100x: 100 iterations; a
#                           bare number is read as seconds, which makes the graph-replay benchmarks
#                           run thousands of iterations, several seconds each)
# Writes OUTDIR/old.json, OUTDIR/new.json (Google Benchmark JSON), OUTDIR/ab.txt (side by side),
# OUTDIR/tests.log, OUTDIR/ncu.txt. The candidate stays in place afterwards: the tree is a scratch copy.
set -uo pipefail
out=${1:?usage: scripts/gpu-kernel-ab.sh OUTDIR CANDIDATE TARGET}
cand=${2:?usage}
target=${3:?usage}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
build=${RIDGELINE_BUILD_DIR:-build-gpu}
export PATH="/usr/local/cuda/bin:$PATH"
# On a GPU machine a test that finds no GPU fails instead of skipping (tests/gpu/gpu_test_util.h).
export RIDGELINE_REQUIRE_GPU=${RIDGELINE_REQUIRE_GPU:-1}
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*" >&2; }
filter=${RIDGELINE_BENCH_FILTER:-.}
bench() {
  "$build/bench/ridgeline_bench" --benchmark_min_time="${RIDGELINE_BENCH_MIN_TIME:-100x}" --benchmark_filter="$filter" \
    --benchmark_out="$out/$1.json" --benchmark_out_format=json >"$out/$1-bench.txt" 2>&1 ||
    echo "ab: the $1 benchmark run failed (see $1-bench.txt)"
}
decode() {
  [ -n "${RIDGELINE_AB_DECODE:-}" ] || return 0
  "$build/tests/ridgeline_gpu_tests" --gtest_filter="$RIDGELINE_AB_DECODE" >"$out/decode-$1.txt" 2>&1
  grep -E "ms/step" "$out/decode-$1.txt" | sed "s/^/$1: /"
}
build_all() {
  bash scripts/refresh-mtimes.sh "$build"  # the candidate and its reversal both rebuild
  cmake --build "$build" -j16 --target ridgeline_gpu_tests ridgeline_bench >"$out/build-$1.log" 2>&1 ||
    { grep -E "error|FAILED" "$out/build-$1.log" | head -30; exit 1; }
}
stamp "configure + build (old)"
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
build_all old
if [ "${RIDGELINE_AB_SKIP_OLD:-0}" != 1 ]; then
  stamp "bench old"
  bench old
  decode old
fi
# Applies patch $2, or reverses it with $1 = -R (git apply, or patch -p1 where .git is missing).
patch_tree() {
  git apply $1 "$2" 2>/dev/null || patch -p1 ${1:---forward} <"$2" >"$out/patch.log" 2>&1
}
measure_new() {  # $1: the suffix of this candidate's files ("" for one candidate)
  build_all "new$1"
  stamp "tests (new$1)"
  "$build/tests/ridgeline_gpu_tests" --gtest_filter="${RIDGELINE_TEST_FILTER:-*}" >"$out/tests$1.log" 2>&1
  echo "tests$1 (exit $?): $(grep -E '^\[  (PASSED|FAILED)  \]|tests? ran' "$out/tests$1.log" | tr '\n' ' ')"
  grep -E '^\[  FAILED  \]' "$out/tests$1.log" | head -20
  stamp "bench new$1"
  bench "new$1"
  decode "new$1"
}
sides=(new)
if [ "$target" = - ] && [[ "$cand" == *,* ]]; then
  IFS=, read -r -a patches <<<"$cand"
  sides=()
  for p in "${patches[@]}"; do
    name=$(basename "$p" .patch)
    stamp "apply $p, build (new-$name)"
    patch_tree "" "$p" || { echo "ab: $p does not apply"; continue; }
    measure_new "-$name"
    sides+=("new-$name")
    patch_tree -R "$p" || { echo "ab: $p does not reverse; stopping"; break; }
  done
elif [ "$target" = - ]; then
  stamp "apply $cand, build (new)"
  patch_tree "" "$cand" || { echo "ab: $cand does not apply (see patch.log)"; exit 1; }
  measure_new ""
else
  stamp "swap $cand -> $target, build (new)"
  cp "$cand" "$target"
  measure_new ""
fi
python3 - "$out" "${sides[@]}" <<'PY' | tee "$out/ab.txt"
import json, sys
out, sides = sys.argv[1], sys.argv[2:]
def load(side):
    try:
        return {b["name"]: b for b in json.load(open(f"{out}/{side}.json"))["benchmarks"]}
    except (OSError, ValueError, KeyError):
        return {}
old, new = load("old"), {side: load(side) for side in sides}
names = list(dict.fromkeys(n for side in sides for n in new[side]))
print(f"{'benchmark':60} {'old us':>9}" + "".join(f" {side + ' us':>14} {'old/' + side:>14}" for side in sides))
for name in names:
    o = old.get(name)
    ot = o["real_time"] if o else float("nan")
    row = f"{name:60} {ot:9.2f}"
    for side in sides:
        b = new[side].get(name)
        t = b["real_time"] if b else float("nan")
        row += f" {t:14.2f} {ot / t:14.2f}"
    print(row)
PY
if [ -n "${RIDGELINE_NCU_KERNEL:-}" ] && command -v ncu >/dev/null; then
  stamp "ncu"
  ncu --clock-control none -k "regex:$RIDGELINE_NCU_KERNEL" -c 2 --section SpeedOfLight --section WarpStateStats \
    --section Occupancy --section MemoryWorkloadAnalysis "$build/bench/ridgeline_bench" --benchmark_min_time=1x \
    --benchmark_filter="${RIDGELINE_NCU_BENCH:-$filter}" >"$out/ncu.txt" 2>&1
fi
stamp "done"
