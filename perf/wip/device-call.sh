# Sourced by the perf/wip device-call scripts: strict mode, $OUT required, the repo root as the working
# folder, nvcc on PATH, and $W = $OUT/w created (what comes back from the device call).
set -uo pipefail
: "${OUT:?set OUT to the folder that comes back from the device call}"
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH=/usr/local/cuda/bin:$PATH
W=$OUT/w
mkdir -p "$W"
# build_gpu TARGET...: configures build-gpu (preset gpu), refreshes its mtimes and builds the targets,
# logs under $W; exits the script on a failure. Sets $start (seconds) for the caller's timings.
build_gpu() {
  start=$(date +%s)
  cmake --preset gpu -B build-gpu >"$W/cfg.log" 2>&1 || { tail -20 "$W/cfg.log"; exit 1; }
  bash scripts/refresh-mtimes.sh build-gpu >/dev/null
  cmake --build build-gpu -j16 --target "$@" >"$W/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$W/build.log" | head -30; exit 1; }
  echo "built in $(( $(date +%s) - start )) s"
}
# unpatch PATCH: reverses PATCH (git apply -R, or patch -p1 -R where .git is missing).
unpatch() {
  git apply -R "$1" 2>/dev/null || patch -p1 -R <"$1" >>"$W/patch.log" 2>&1
}
# patched_build PATCH TARBALL TARGET...: applies PATCH (git apply, or patch -p1 where .git is
# missing, as scripts/gpu-kernel-ab.sh does), arranges for it to be reversed and for $W to be tarred
# into $OUT/TARBALL when the script exits, then build_gpu TARGET...; exits the script if PATCH does
# not apply. A script that reverses PATCH itself (unpatch) clears _applied.
patched_build() {
  _patch=$1 _tarball=$2
  shift 2
  trap '[ -n "${_applied:-}" ] && unpatch "$_patch"; tar czf "$OUT/$_tarball" -C "$OUT" w' EXIT
  git apply "$_patch" 2>/dev/null || patch -p1 --forward <"$_patch" >>"$W/patch.log" 2>&1 ||
    { echo "$_patch does not apply (see patch.log)"; exit 1; }
  _applied=1
  build_gpu "$@"
}
# card: the first GPU's name as nvidia-smi gives it (empty where it gives none).
card() { nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1; }
# only_on_h200: ends the script, successfully and saying so, on any other card.
only_on_h200() {
  case "$(card)" in *H200*) ;; *) echo "not an H200 ($(card)): nothing run"; exit 0 ;; esac
}
# The W4A16 GPU tests that the landed wgmma overlap (1c78cbb) and its launcher mend (04e50b7)
# answer to, as one gtest filter for the scripts that run them.
W4A16_OVERLAP_TESTS='KernelW4A16Gemm.*:KernelW4A16Linear.*:CudaEngine.OverlappedLaunches*:'
W4A16_OVERLAP_TESTS+='W4A16ModelShapes*:CudaW4A16.*'
# gpu_tests NAME SECONDS FILTER: the GPU tests FILTER selects (RIDGELINE_REQUIRE_GPU=1) into
# $W/NAME.log within SECONDS, then the exit status and gtest's summary lines.
gpu_tests() {
  RIDGELINE_REQUIRE_GPU=1 timeout "$2" build-gpu/tests/ridgeline_gpu_tests --gtest_filter="$3" >"$W/$1.log" 2>&1
  echo "$1: exit $?"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|^\[ RUN      \]" "$W/$1.log" | tail -4
  grep -E "^\[  FAILED  \]" "$W/$1.log" | head -10
}
# decode_bench NAME SECONDS [VAR=VALUE...]: DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets (the fp16 and
# w4a16 steps at B = 1 / 16 on both presets) with those variables set, into $W/decode-NAME.log within
# SECONDS; returns its exit status.
decode_bench() {
  local name=$1 secs=$2
  shift 2
  env "$@" RIDGELINE_REQUIRE_GPU=1 timeout "$secs" build-gpu/tests/ridgeline_gpu_tests \
    --gtest_filter=DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets >"$W/decode-$name.log" 2>&1
}
# us_counters JSON NAME: a line per benchmark of a Google Benchmark JSON: NAME, its label, its us_* counters.
us_counters() {
  python3 -c 'import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(sys.argv[2], b.get("label"), {k: round(v, 2) for k, v in b.items() if k.startswith("us_")})' \
    "$1" "$2" 2>/dev/null
}
# memcheck NAME SECONDS FILTER: compute-sanitizer's memcheck over those tests, into $W/NAME.log.
memcheck() {
  timeout "$2" compute-sanitizer --tool memcheck build-gpu/tests/ridgeline_gpu_tests --gtest_filter="$3" \
    >"$W/$1.log" 2>&1
  echo "$1: exit $?"
  tail -2 "$W/$1.log"
}
# probe_ceilings: `ridgeline probe` (build-gpu) into $W/ceilings.json, its last log line printed.
probe_ceilings() {
  timeout 60 build-gpu/ridgeline probe --out "$W/ceilings.json" >"$W/probe.log" 2>&1
  tail -1 "$W/probe.log"
}
# vsfp16 ROWS: BM_W4A16VsFp16 on the 8 model shapes at the batch rows ROWS (a regex alternation,
# "32|48|64"), 30 repetitions each, into $W/vsfp16.json, within 90 s; then a line a cell.
vsfp16() {
  timeout 90 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x \
    --benchmark_filter="BM_W4A16VsFp16/[0-7]/($1)/" \
    --benchmark_out="$W/vsfp16.json" --benchmark_out_format=json >"$W/vsfp16.log" 2>&1
  echo "vsfp16 exit $?"
  python3 -c 'import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(b["name"].split("/")[2], b.get("label"), "w4a16 %.2f fp16 %.2f x %.2f" % (b["us_w4a16"], b["us_fp16"], b["x_vs_fp16"]))' \
    "$W/vsfp16.json"
}
# w4a16_steps BATCHES [LABEL]: `ridgeline sweep` of w4a16 weights, fp16 KV, ctx 1024 at BATCHES
# ("48,64") on both presets (or $W4A16_STEPS_MODELS) with $W/ceilings.json (probe_ceilings first) and
# $W4A16_STEPS_ARGS (e.g. --timeline), into $W/steps-<preset>.json (steps-LABEL-<preset>.json), 90 s
# each; then the median step time a batch.
w4a16_steps() {
  local m out
  for m in ${W4A16_STEPS_MODELS:-internlm2-chat-1_8b internlm2-chat-7b}; do
    out=$W/steps-${2:+$2-}$m
    timeout 90 build-gpu/ridgeline sweep --model $m --weights w4a16 --kv fp16 --batch "$1" --context 1024 \
      ${W4A16_STEPS_ARGS:-} --ceilings "$W/ceilings.json" --out "$out.json" >"$out.log" 2>&1
    echo "sweep $m exit $?"
    python3 -c 'import json, sys
for r in json.load(open(sys.argv[1]))["runs"]:
    print(sys.argv[1].split("/")[-1], "B", r["batch"], "step us", round(r["step"]["time_us"]["median"], 1))' \
      "$out.json"
  done
}
# gemm_choice_map NAME ROWS: BM_W4A16Path's GEMV at ROWS ("24|32") on the 8 model shapes into
# $W/gemv-NAME.json, then perf/wip/gemm-choice-map.py against $W/NAME.json (bench_shapes' merged
# BM_W4A16GemmSplits at those rows): the engine's choice against the fastest configuration, a line a cell.
gemm_choice_map() {
  timeout 30 build-gpu/bench/ridgeline_bench --benchmark_filter="BM_W4A16Path/[0-7]/($2)/0/" \
    --benchmark_out="$W/gemv-$1.json" --benchmark_out_format=json >/dev/null 2>&1
  python3 perf/wip/gemm-choice-map.py "$W/$1.json" "$W/gemv-$1.json"
}
# bench_shapes NAME SECONDS FILTER SHAPE...: ridgeline_bench once a shape, FILTER with {} replaced by
# the shape's index, each run within SECONDS (more than 5) and, where $BENCH_DEADLINE (epoch
# seconds) is set, before it; so a run cut off by its limit loses one shape, not all. Logs to
# $W/NAME.log, merges the shapes' JSON into $W/NAME.json (perf/wip/merge-bench-json.py).
bench_shapes() {
  local name=$1 seconds=$2 filter=$3 shape limit left
  shift 3
  for shape in "$@"; do
    limit=$seconds
    if [ -n "${BENCH_DEADLINE:-}" ]; then
      left=$(( BENCH_DEADLINE - $(date +%s) ))
      [ "$left" -lt "$limit" ] && limit=$left
    fi
    [ "$limit" -gt 5 ] || { echo "$name: no time left for shape $shape"; continue; }
    timeout "$limit" build-gpu/bench/ridgeline_bench --benchmark_filter="${filter//\{\}/$shape}" \
      --benchmark_out="$W/$name-$shape.json" --benchmark_out_format=json >>"$W/$name.log" 2>&1
    echo "$name shape $shape exit $?"
  done
  python3 perf/wip/merge-bench-json.py "$W/$name"-*.json >"$W/$name.json"
}
# ncu_profile NAME KERNEL_REGEX FILTER: Nsight Compute on the third launch of the kernels KERNEL_REGEX
# matches in ridgeline_bench --benchmark_filter=FILTER (clocks left alone, as the benchmarks run):
# the main sections into $W/NAME.txt and the stall reasons into $W/NAME-stalls.txt, each within 90 s,
# then the lines worth reading of both.
ncu_profile() {
  local sections=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats
    --section SchedulerStats --section LaunchStats --section Occupancy --section ComputeWorkloadAnalysis)
  local stalls='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
  timeout 90 ncu --clock-control none -k "regex:$2" -s 2 -c 1 "${sections[@]}" \
    build-gpu/bench/ridgeline_bench --benchmark_min_time=1x --benchmark_filter="$3" >"$W/$1.txt" 2>&1
  echo "== $1 (exit $?)"
  grep -E "Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache Throughput|Compute \(SM\) Throughput|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Registers Per|Achieved Occupancy|Block Size|Grid Size|Dynamic Shared|L2 Hit Rate|Executed Ipc A" "$W/$1.txt" | head -20
  timeout 90 ncu --clock-control none -k "regex:$2" -s 2 -c 1 --metrics "$stalls" \
    build-gpu/bench/ridgeline_bench --benchmark_min_time=1x --benchmark_filter="$3" >"$W/$1-stalls.txt" 2>&1
  grep -E "stalled" "$W/$1-stalls.txt" | awk '$NF+0 > 0.05' | sort -k3 -g -r | head -8
}
