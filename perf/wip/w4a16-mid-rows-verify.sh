#!/usr/bin/env bash
# Forty-seventh session (~3 min from a bare machine, any Hopper card): the wgmma GEMM at 17..32 rows
# (w4a16_gemm_use_wgmma from 17 rows, three blocks an SM at n-tiles of 32, the four-tile GEMV only up to
# 4096 inputs on Hopper) checked and timed: the W4A16 GPU tests, BM_W4A16VsFp16 at 16..64 rows (on an
# H200, issue 9's "never slower than fp16 up to 64" with the pairs of 32 of d483546 too),
# BM_W4A16GemmSplits at 24 / 32 on every shape ("auto" is the new route; the tiled kernel's splits
# "s*" and the GEMV's BM_W4A16Path time, the old routes, in the same run) and the w4a16 decode steps at
# B = 24 / 32 ctx 1024 on both presets. The routes before, for comparison: on an H100
# bench/results/h100-w4a16-pairs-verify-b5e0607/ (mid.json, gemv-mid.json), on an H200 BM_W4A16VsFp16
# at 24 / 32 rows in bench/results/h200-baselines-f195121/targets-bench.json.gz; no step baseline has
# B = 24 / 32, so the steps show the route running end to end, not a gain.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> bash perf/wip/w4a16-mid-rows-verify.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/mid.tgz" -C "$OUT" w' EXIT
echo "card: $(card)"
build_gpu ridgeline ridgeline_bench ridgeline_gpu_tests
gpu_tests tests 90 "$W4A16_OVERLAP_TESTS"
probe_ceilings
vsfp16 "16|24|32|48|64"
bench_shapes mid 25 'BM_W4A16GemmSplits/{}/(24|32)/' 0 1 2 3 4 5 6 7
gemm_choice_map mid "24|32"
w4a16_steps 24,32
echo "done at $(( $(date +%s) - start )) s"
