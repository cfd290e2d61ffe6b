#!/usr/bin/env bash
# The GPU suite in one call of a short device budget (RIDGELINE_SUITE_SECONDS, default 420, from the
# build's end): every test but DecodeBench.* with RIDGELINE_REQUIRE_GPU=1, the decode-attention tests
# last (about half of the suite's ~6 minutes on an H100; the rest has changed more since the last
# full run). A cut-off run says where it stopped.
#
#   OUT=/some/dir bash perf/wip/gpu-suite-call.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
card
build_gpu ridgeline ridgeline_gpu_tests
t0=$(date +%s)
budget=${RIDGELINE_SUITE_SECONDS:-420}
left() { echo $(( budget - ($(date +%s) - t0) )); }
gpu_tests suite-rest "$(left)" '-DecodeBench.*:KernelDecodeAttention.*:KernelDecodeAttentionRope.*'
gpu_tests suite-attention "$(left)" 'KernelDecodeAttention.*:KernelDecodeAttentionRope.*'
