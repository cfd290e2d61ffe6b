#!/usr/bin/env bash
# The README's test command, and CI's (.ci/run). Stages, each timed on stderr:
#   1. build everything (scripts/build.sh) and run every test: CPU tests always, GPU tests where a GPU
#      answers (elsewhere they are reported as skipped, "GPU not available: ...");
#   2. the CPU test suite again under AddressSanitizer + UndefinedBehaviorSanitizer
#      (scripts/sanitize.sh, build-asan/): any sanitizer report fails;
#   3. each libFuzzer target for RIDGELINE_FUZZ_SECONDS (default 30) under ASan + UBSan
#      (scripts/fuzz.sh, clang, build-fuzz/): any crash fails, the input is kept in build-fuzz/crashes/.
# On a 2-core machine the three took 49 minutes from a fresh clone (perf/NOTES.md, "CI time").
#   scripts/test.sh [--quick] [ctest arguments]      (--quick: stage 1 only)
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
if [ "${1:-}" = --quick ]; then
  quick=1
  shift
fi
start=$(date +%s)
took() { echo "test.sh: $1 took $(($(date +%s) - $2)) s" >&2; }

t=$(date +%s)
scripts/build.sh
ctest --preset release -j "$(nproc)" "$@"
took "build and test suite" "$t"
[ "$quick" = 1 ] && exit 0

t=$(date +%s)
scripts/sanitize.sh
took "ASan+UBSan test suite" "$t"

t=$(date +%s)
if command -v clang++ >/dev/null; then
  scripts/fuzz.sh "${RIDGELINE_FUZZ_SECONDS:-30}"
  took "fuzzers" "$t"
else
  echo "test.sh: fuzzers SKIPPED: clang++ not found and could not be installed (Debian: apt-get install clang)" >&2
fi
took "all stages" "$start"
