#!/usr/bin/env bash
# The baselines call for an H200 (runs on any compute capability 9.0 card; ~6 min warm, ~8 from a bare
# machine): the W4A16 GEMM tests (the forty-second session's first check of the 128-row-strip launcher
# of b0dfe3d) and memcheck over the wgmma test, then `RIDGELINE_BASELINE_TARGETS=1
# scripts/gpu-baselines.sh` (both presets, both weight formats, the targets' kernel benchmarks with
# BM_W4A16VsFp16 at M = 1..256 and the prefill sizes), all within RIDGELINE_CALL_SECONDS of the
# build's start (default 585). Everything comes back in $OUT/all.tgz.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/h200-baselines-call.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/all.tgz" -C "$OUT" w' EXIT
card
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
gpu_tests w4a16-tests 90 'KernelW4A16Gemm.*:KernelW4A16Linear.*:W4A16ModelShapes*'
memcheck memcheck-wgmma 45 'KernelW4A16Gemm.Wgmma*'
RIDGELINE_BASELINE_TARGETS=1 timeout $(( ${RIDGELINE_CALL_SECONDS:-585} - ($(date +%s) - start) )) \
  bash scripts/gpu-baselines.sh "$W/baselines" >"$W/baselines.log" 2>&1
echo "baselines exit $? at $(( $(date +%s) - start )) s"
grep -vE "^\|" "$W/baselines.log" | tail -12
grep -E "^\| 9 |issue 9|^\| 10 |^\| 12 " "$W/baselines/targets.md" | head -40
