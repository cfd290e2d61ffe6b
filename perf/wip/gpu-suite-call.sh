#!/usr/bin/env bash
# The GPU suite in one call of a short device budget (RIDGELINE_SUITE_SECONDS, default 420, from the
# build's end): every test but DecodeBench.* with RIDGELINE_REQUIRE_GPU=1, the decode-attention tests
# last (about half of the suite's ~6 minutes on an H100; the rest has changed more since the last
# full run). A cut-off run says where it stopped.
#
#   OUT=/some/dir bash perf/wip/gpu-suite-call.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
nvidia-smi --query-gpu=name --format=csv,noheader
build_gpu ridgeline ridgeline_gpu_tests
t0=$(date +%s)
budget=${RIDGELINE_SUITE_SECONDS:-420}
run() {  # NAME FILTER
  local left=$(( budget - ($(date +%s) - t0) ))
  RIDGELINE_REQUIRE_GPU=1 timeout $left build-gpu/tests/ridgeline_gpu_tests --gtest_filter="$2" >"$W/$1.log" 2>&1
  echo "$1: exit $? at $(( $(date +%s) - t0 )) s"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|^\[ RUN      \]" "$W/$1.log" | tail -4
  grep -E "^\[  FAILED  \]" "$W/$1.log" | head -10
}
run suite-rest '-DecodeBench.*:KernelDecodeAttention.*:KernelDecodeAttentionRope.*'
run suite-attention 'KernelDecodeAttention.*:KernelDecodeAttentionRope.*'
