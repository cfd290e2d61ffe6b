#!/usr/bin/env bash
# The first GPU-suite call of a session (under the 10-minute limit of one call, from a bare machine):
#   1. the decode-attention tests (the wide CTA of the thirty-seventh session ran its final form on an
#      H100 only, and four of these tests were cut off there) and memcheck over the wide non-RoPE
#      kernels (the RoPE ones were memchecked on the H100: 0 errors), ~3-5 minutes;
#   2. the rest of the GPU suite (every test but DecodeBench.*), RIDGELINE_REQUIRE_GPU=1, bounded by
#      what is left of ~9.5 minutes (the whole suite took ~6 minutes on an H100, the decode-attention
#      tests about half of it; a cut-off run says where it stopped).
#
#   OUT=/some/dir bash perf/wip/session-first-call.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline ridgeline_gpu_tests
RIDGELINE_REQUIRE_GPU=1 timeout 240 build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelDecodeAttention.*:KernelDecodeAttentionRope.*' >"$W/attention.log" 2>&1
echo "decode-attention tests exit $?"
grep -E "^\[  (PASSED|FAILED) |^\[  FAILED|warps=1" "$W/attention.log" | head -12
timeout 120 compute-sanitizer --tool memcheck build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='KernelDecodeAttention.OneWideCtaPerSequenceAndKvHeadMatchesReference' >"$W/memcheck-wide.log" 2>&1
echo "memcheck (wide) exit $?"; tail -2 "$W/memcheck-wide.log"
left=$(( 570 - ($(date +%s) - start) ))
RIDGELINE_REQUIRE_GPU=1 timeout $left build-gpu/tests/ridgeline_gpu_tests \
  --gtest_filter='-DecodeBench.*:KernelDecodeAttention.*:KernelDecodeAttentionRope.*' >"$W/gpu-tests.log" 2>&1
echo "gpu tests exit $? at $(( $(date +%s) - start )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED) " "$W/gpu-tests.log" | head -40
