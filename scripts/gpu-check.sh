#!/usr/bin/env bash
# The checks that need a GPU, in one go: builds ridgeline with CUDA (sm_90), runs every GPU test
# (GoogleTest), runs the decode benchmark (internlm2-chat-1_8b, B=1 and B=16 at context 1024; it
# prints ms/step, tokens/s and implied GB/s), and last, the slowest, compute-sanitizer memcheck,
# racecheck (shared-memory hazards) and initcheck (reads of uninitialized device memory) over the
# engine and kernel tests. Logs go under OUTDIR; a summary comes last.
#
#   scripts/gpu-check.sh OUTDIR
#
# Environment: RIDGELINE_BUILD_DIR (default build-gpu); RIDGELINE_PREBUILT=1 skips configure and
# build and uses RIDGELINE_GPU_TESTS (default $RIDGELINE_BUILD_DIR/tests/ridgeline_gpu_tests), for
# a binary built on another machine; RIDGELINE_SANITIZE_FILTER overrides the memcheck test filter and
# RIDGELINE_SANITIZE_TIMEOUT bounds each tool's seconds, RIDGELINE_SANITIZE_TOOLS picks the tools
# (default "memcheck racecheck initcheck"); RIDGELINE_SKIP_MEMCHECK=1 leaves memcheck out and
# RIDGELINE_ONLY_MEMCHECK=1 runs memcheck alone (scripts/gpu-validate.sh splits them into stages);
# RIDGELINE_TEST_FILTER replaces the GPU tests' filter (default: all but DecodeBench.*);
# RIDGELINE_SANITIZE_ARGS_<tool> replaces a tool's extra options (see tool_args below).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
build=${RIDGELINE_BUILD_DIR:-build-gpu}
export PATH="/usr/local/cuda/bin:$PATH"
# On a GPU machine a test that finds no GPU fails instead of skipping (tests/gpu/gpu_test_util.h).
export RIDGELINE_REQUIRE_GPU=${RIDGELINE_REQUIRE_GPU:-1}

if [ "${RIDGELINE_PREBUILT:-0}" != 1 ]; then
  cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  bash scripts/refresh-mtimes.sh "$build"
  cmake --build "$build" -j16 --target ridgeline_gpu_tests ridgeline >"$out/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
fi
tests=${RIDGELINE_GPU_TESTS:-$build/tests/ridgeline_gpu_tests}
[ -x "$tests" ] || { echo "gpu-check: no test binary at $tests" >&2; exit 1; }

nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed" >"$out/nvidia-smi.txt"
status=0

only_memcheck=${RIDGELINE_ONLY_MEMCHECK:-0}
: >"$out/gpu_tests.log"
: >"$out/decode_bench.log"
: >"$out/memcheck.log"
if [ "$only_memcheck" != 1 ]; then
  echo "== GPU tests" >&2
  "$tests" --gtest_filter="${RIDGELINE_TEST_FILTER:--DecodeBench.*}" --gtest_output="xml:$out/gpu_tests.xml" >"$out/gpu_tests.log" 2>&1 ||
    status=1

  echo "== decode benchmark" >&2
  "$tests" --gtest_filter='DecodeBench.*' >"$out/decode_bench.log" 2>&1 || status=1
fi

filter=${RIDGELINE_SANITIZE_FILTER:-CudaEngine.*:Kernel*}
tools=(${RIDGELINE_SANITIZE_TOOLS:-memcheck racecheck initcheck})
if [ "${RIDGELINE_SKIP_MEMCHECK:-0}" = 1 ]; then
  echo "compute-sanitizer skipped (RIDGELINE_SKIP_MEMCHECK=1)" >"$out/memcheck.log"
  tools=()
elif ! command -v compute-sanitizer >/dev/null; then
  echo "compute-sanitizer not found" >"$out/memcheck.log"
  tools=()
  status=1
fi
# Per tool: racecheck leaves cuBLAS's own kernels (nvjet*) out: it reports shared-memory hazards
# inside them (their TMA/mbarrier synchronisation is invisible to it), which are not ours to fix.
# initcheck tracks the bulk (TMA) copies with which cuBLAS's Hopper kernels store their results,
# where this compute-sanitizer can: without it, reading a GEMM's output counts as uninitialized.
# RIDGELINE_SANITIZE_ARGS_<tool> replaces these.
tool_args() {
  case $1 in
    racecheck) echo "${RIDGELINE_SANITIZE_ARGS_racecheck---kernel-name-exclude kns=nvjet}" ;;
    initcheck)
      if [ -n "${RIDGELINE_SANITIZE_ARGS_initcheck+x}" ]; then
        echo "$RIDGELINE_SANITIZE_ARGS_initcheck"
      elif compute-sanitizer --help 2>/dev/null | grep -q -- --check-bulk-copy; then
        echo "--check-bulk-copy yes"
      fi
      ;;
    *) eval echo "\${RIDGELINE_SANITIZE_ARGS_$1-}" ;;
  esac
}
for tool in "${tools[@]}"; do
  args=($(tool_args "$tool"))
  echo "== compute-sanitizer $tool ${args[*]}" >&2
  echo "compute-sanitizer --tool $tool ${args[*]} (filter $filter)" >"$out/$tool.log"
  timeout "${RIDGELINE_SANITIZE_TIMEOUT:-3600}" compute-sanitizer --tool "$tool" "${args[@]}" --error-exitcode 9 \
    "$tests" --gtest_filter="$filter" >>"$out/$tool.log" 2>&1 || status=1
done

{
  echo "gpu-check summary ($(head -1 "$out/nvidia-smi.txt" 2>/dev/null))"
  grep -m1 -E "NVIDIA (H|A|L|B)[0-9]" "$out/nvidia-smi.txt" || true
  echo "-- GPU tests:"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests? ran|relative L2|GB of fp16|Failure$" \
    "$out/gpu_tests.log"
  shown=("${tools[@]}")
  [ ${#shown[@]} -eq 0 ] && shown=(memcheck)  # its log says why nothing ran
  for tool in "${shown[@]}"; do
    echo "-- $tool ($filter):"
    grep -E "^compute-sanitizer|ERROR SUMMARY|^\[  (PASSED|FAILED) |skipped|not found" "$out/$tool.log"
  done
  echo "-- decode benchmark:"
  grep -E "^decode |^method: |^\[  (PASSED|FAILED) " "$out/decode_bench.log"
  echo "status: $([ $status = 0 ] && echo ok || echo FAILED)"
} | tee "$out/summary.txt"
exit $status
