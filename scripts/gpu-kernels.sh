#!/usr/bin/env bash
# The kernel tests (kernels/*.cu against the CPU reference, tests/gpu/test_kernels*.cu) on a GPU,
# and compute-sanitizer memcheck over them.
#
#   scripts/gpu-kernels.sh build DIR          # on any machine with nvcc (no GPU needed): builds
#                                             # DIR/ridgeline_kernel_tests, self-contained (static
#                                             # cudart, gtest and libstdc++), from the kernel and
#                                             # test sources alone, so it runs on a GPU machine that
#                                             # lacks fmt / GoogleTest / SentencePiece
#   scripts/gpu-kernels.sh run OUTDIR [BINARY]  # on the GPU machine: runs BINARY (default: builds
#                                             # build-gpu/tests/ridgeline_gpu_tests with CMake), then
#                                             # memcheck; logs and a summary under OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/cuda/bin:$PATH"
mode=${1:?usage: scripts/gpu-kernels.sh build DIR | run OUTDIR [BINARY]}

if [ "$mode" = build ]; then
  set -e
  dir=${2:?usage: scripts/gpu-kernels.sh build DIR}
  mkdir -p "$dir/obj"
  cuflags=(-O3 -std=c++20 -arch=sm_90 --expt-relaxed-constexpr -lineinfo -I. -Xcompiler=-Wall,-Wextra)
  headers=$(ls kernels/*.cuh kernels/*.h kernels/cpu/*.h tests/gpu/*.h)
  stale() {  # object older than its source or any header
    [ ! -f "$1" ] && return 0
    for f in "$2" $headers; do [ "$f" -nt "$1" ] && return 0; done
    return 1
  }
  pids=()
  compile() {  # at most two compilers at a time: the build machine has two cores
    if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
    "$@" &
    pids+=($!)
  }
  objs=()
  for src in kernels/*.cu tests/gpu/test_kernels*.cu; do
    obj="$dir/obj/$(echo "$src" | tr / _).o"
    objs+=("$obj")
    stale "$obj" "$src" && compile nvcc "${cuflags[@]}" -DGTEST_HAS_PTHREAD=1 -c "$src" -o "$obj"
  done
  obj="$dir/obj/reference.o"
  objs+=("$obj")
  stale "$obj" kernels/cpu/reference.cpp && compile g++ -O2 -std=c++20 -Wall -Wextra -I. -c kernels/cpu/reference.cpp -o "$obj"
  for p in "${pids[@]}"; do wait "$p"; done
  nvcc -arch=sm_90 -o "$dir/ridgeline_kernel_tests" "${objs[@]}" -lgtest_main -lgtest -lpthread \
    -Xcompiler=-static-libstdc++,-static-libgcc
  echo "built $dir/ridgeline_kernel_tests"
  exit 0
fi

[ "$mode" = run ] || { echo "unknown mode '$mode'" >&2; exit 2; }
out=${2:?usage: scripts/gpu-kernels.sh run OUTDIR [BINARY]}
mkdir -p "$out" && out=$(cd "$out" && pwd)
tests=${3:-}
if [ -z "$tests" ]; then
  # CMake 3.25 does not know nvcc's C++20 flag; naming it is harmless on newer CMake.
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DRIDGELINE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCMAKE_CUDA20_STANDARD_COMPILE_OPTION=-std=c++20 -DCMAKE_CUDA20_EXTENSION_COMPILE_OPTION=-std=c++20 \
    >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
  ninja -C build-gpu -j16 ridgeline_gpu_tests >"$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
  tests=build-gpu/tests/ridgeline_gpu_tests
fi
[ -x "$tests" ] || { echo "gpu-kernels: no test binary at $tests" >&2; exit 1; }
nvidia-smi -L >"$out/device.txt" 2>&1 || true
status=0

echo "== kernel tests" >&2
start=$(date +%s)
timeout "${RL_TEST_TIMEOUT:-150}" "$tests" --gtest_filter='Kernel*' >"$out/kernels.log" 2>&1 || status=1
echo "kernel tests: $(( $(date +%s) - start )) s" >&2

echo "== compute-sanitizer memcheck" >&2
start=$(date +%s)
timeout "${RL_MEMCHECK_TIMEOUT:-270}" compute-sanitizer --tool memcheck --error-exitcode 9 "$tests" --gtest_filter='Kernel*' \
  >"$out/memcheck.log" 2>&1 || status=1
echo "memcheck: $(( $(date +%s) - start )) s" >&2

{
  echo "gpu-kernels summary: $(head -1 "$out/device.txt")"
  echo "-- kernel tests:"
  grep -E "^\[device\]|^\[nmse\]|^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|Failure|test suites? ran" "$out/kernels.log"
  echo "-- memcheck:"
  grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED) |^\[  FAILED  \]|test suites? ran" "$out/memcheck.log"
  echo "status: $([ $status = 0 ] && echo ok || echo FAILED)"
} | tee "$out/summary.txt"
exit $status
