#!/usr/bin/env bash
# compute-sanitizer memcheck over the W4A16 GEMM tests (the strip GEMMs' launches, whose shared memory
# the spread of dc36825 sets) and the model-shape tests, on any Hopper card (~4 min from bare;
# $OUT/w.tgz). MEMCHECK_FILTER overrides the gtest filter.
#   OUT=/some/dir bash perf/wip/w4a16-memcheck-call.sh
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline_gpu_tests
memcheck memcheck-w4a16 300 "${MEMCHECK_FILTER:-KernelW4A16Gemm.*:W4A16ModelShapes*:CudaW4A16.*}"
grep -E "^\[  (PASSED|FAILED) |ERROR SUMMARY" "$W/memcheck-w4a16.log" | tail -4
echo "done at $(( $(date +%s) - start )) s"
