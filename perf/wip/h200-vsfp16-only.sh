#!/usr/bin/env bash
# Issue 9's kernel rows on an H200 in the shortest call there is (~3 min from a bare machine, for a
# session with under ~270 s of device time): ridgeline_bench alone built, then BM_W4A16VsFp16 at
# M = 1 / 16 / 32 / 48 / 64 (the M=1 and M=16 targets and "never slower than fp16 up to 64"). No tests,
# no steps: for a commit whose tests have passed on another Hopper card. Stops at once on any card
# that is not an H200.
#
#   OUT=/some/dir bash perf/wip/h200-vsfp16-only.sh
source "$(dirname "$0")/device-call.sh"
only_on_h200
trap 'tar czf "$OUT/all.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline_bench
vsfp16 "1|16|32|48|64"
echo "done at $(( $(date +%s) - start )) s"
