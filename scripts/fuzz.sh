#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang, ASan and UBSan (on the engine library too, in
# its own folder build-fuzz) and runs each for SECONDS_PER_TARGET seconds (default 60) over its
# committed seed corpus in fuzz/corpus/<target>/ plus what earlier runs found (build-fuzz/corpus/).
# Crash inputs go to build-fuzz/crashes/; each target's final libFuzzer stats are printed.
# Exit status: 0 when every target ran its time without a crash, leak, timeout or sanitizer report.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (FUZZ_TARGETS="config_json ..." to run a subset)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
build=build-fuzz
targets=(${FUZZ_TARGETS:-safetensors_header checkpoint_index config_json messages_json tokenizer_encode})

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (Debian: apt-get install clang)" >&2; exit 2; }
san="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all -fno-omit-frame-pointer"
# The root CMakeLists.txt adds fuzz/ as a subdirectory; until it does, a two-line wrapper project
# adds both (so this script works either way).
src=.
if ! grep -q 'add_subdirectory(fuzz' CMakeLists.txt; then
  src="$build/wrapper"
  mkdir -p "$src"
  cat >"$src/CMakeLists.txt" <<WRAP
cmake_minimum_required(VERSION 3.25)
project(ridgeline_fuzz LANGUAGES CXX)
add_subdirectory("$PWD" ridgeline)
add_subdirectory("$PWD/fuzz" fuzz)
WRAP
fi
# A build folder configured from the other source folder (before/after the hook) starts afresh.
if [ -f "$build/CMakeCache.txt" ] &&
   ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$(realpath "$src")" "$build/CMakeCache.txt"; then
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
fi
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRIDGELINE_CUDA=OFF -DRIDGELINE_FUZZ=ON -DBUILD_TESTING=OFF \
  -DCMAKE_CXX_FLAGS="$san" >&2
cmake --build "$build" -j "${JOBS:-2}" --target fuzzers >&2

bin_dir=$(dirname "$(find "$build" -name fuzz_config_json -type f -perm -u+x | head -n1)")
mkdir -p "$build/crashes"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  log="$build/fuzz_$t.log"
  echo "== fuzz_$t: ${seconds}s" >&2
  # New inputs land in the first folder (build-fuzz/corpus); the committed seeds are only read.
  if "$bin_dir/fuzz_$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$build/crashes/$t-" "$corpus" "fuzz/corpus/$t" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    grep -E "ERROR|runtime error|fuzz invariant|uncaught|Test unit written" "$log" | head -n 20 >&2 || true
  fi
  echo "fuzz_$t [$status]: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1)" 
  echo "fuzz_$t [$status]: $(grep -E '^Done [0-9]+ runs' "$log" | tail -n1)"
done
if ((${#failed[@]})); then
  echo "fuzz.sh: crashes in: ${failed[*]} (inputs in $build/crashes/, logs in $build/fuzz_<target>.log)" >&2
  exit 1
fi
