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
if [ "$target" = - ]; then
  stamp "apply $cand, build (new)"
  git apply "$cand" 2>/dev/null || patch -p1 --forward <"$cand" >"$out/patch.log" 2>&1 ||
    { echo "ab: $cand does not apply (see patch.log)"; exit 1; }
else
  stamp "swap $cand -> $target, build (new)"
  cp "$cand" "$target"
fi
build_all new
stamp "tests (new)"
"$build/tests/ridgeline_gpu_tests" --gtest_filter="${RIDGELINE_TEST_FILTER:-*}" >"$out/tests.log" 2>&1
echo "tests (exit $?): $(grep -E '^\[  (PASSED|FAILED)  \]|tests? ran' "$out/tests.log" | tr '\n' ' ')"
grep -E '^\[  FAILED  \]' "$out/tests.log" | head -20
stamp "bench new"
bench new
decode new
python3 - "$out" <<'PY' | tee "$out/ab.txt"
import json, sys
out = sys.argv[1]
def load(side):
    try:
        return {b["name"]: b for b in json.load(open(f"{out}/{side}.json"))["benchmarks"]}
    except (OSError, ValueError, KeyError):
        return {}
old, new = load("old"), load("new")
print(f"{'benchmark':60} {'old us':>9} {'new us':>9} {'old/new':>8}")
for name, b in new.items():
    o = old.get(name)
    ot = o["real_time"] if o else float("nan")
    print(f"{name:60} {ot:9.2f} {b['real_time']:9.2f} {ot / b['real_time']:8.2f}")
PY
if [ -n "${RIDGELINE_NCU_KERNEL:-}" ] && command -v ncu >/dev/null; then
  stamp "ncu"
  ncu --clock-control none -k "regex:$RIDGELINE_NCU_KERNEL" -c 2 --section SpeedOfLight --section WarpStateStats \
    --section Occupancy --section MemoryWorkloadAnalysis "$build/bench/ridgeline_bench" --benchmark_min_time=1x \
    --benchmark_filter="${RIDGELINE_NCU_BENCH:-$filter}" >"$out/ncu.txt" 2>&1
fi
stamp "done"
