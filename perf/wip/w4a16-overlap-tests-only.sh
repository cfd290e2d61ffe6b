#!/usr/bin/env bash
# Forty-fourth session's last-resort call (~3 min from a bare machine, any card): the W4A16 GPU tests
# over the landed wgmma overlap (1c78cbb) and the review's launcher mend (04e50b7), which no GPU has
# run as landed. For a session with under ~5 min of device time left.
#
#   OUT=/some/dir bash perf/wip/w4a16-overlap-tests-only.sh
source "$(dirname "$0")/device-call.sh"
echo "card: $(card)"
build_gpu ridgeline_gpu_tests
gpu_tests overlap-tests 90 "$W4A16_OVERLAP_TESTS"
echo "done at $(( $(date +%s) - start )) s"
