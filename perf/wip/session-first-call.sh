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
gpu_tests attention 240 'KernelDecodeAttention.*:KernelDecodeAttentionRope.*'
memcheck memcheck-wide 120 'KernelDecodeAttention.OneWideCtaPerSequenceAndKvHeadMatchesReference'
gpu_tests gpu-tests $(( 570 - ($(date +%s) - start) )) '-DecodeBench.*:KernelDecodeAttention.*:KernelDecodeAttentionRope.*'
