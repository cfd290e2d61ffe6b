#!/usr/bin/env bash
# Forty-sixth session (~5 min from a bare machine, any Hopper card; the figures that count are an
# H200's): w4a16_gemm_wgmma_pairs_of_32 (1.8b wqkv and 7b wo at 33..64 rows on the wgmma kernel in
# n-tiles of 32 and clusters of 2; 1.8b w2 there no longer on the tiled kernel's n-tiles of 32) checked
# and timed: the W4A16 GPU tests, BM_W4A16VsFp16 at 32 / 48 / 64 rows (issue 9's "never slower up to
# 64"), BM_W4A16GemmSplits on those three shapes at 48 / 64 (the old choices, t32.auto / wg.auto, in the
# same run), the w4a16 decode steps at B=48 / 64 ctx 1024 on both presets (against
# reports/baselines), BM_W4A16GemmSplits at 24 / 32 rows on every shape beside the GEMV there (the map
# a rule for 17..32 rows needs), and BM_W4A16GemvVariants at M = 1 on the 7b shapes (whether the
# H100's plain layouts suit this card).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> [CALL_SECONDS=330] bash perf/wip/w4a16-pairs-of-32-verify.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/pairs.tgz" -C "$OUT" w' EXIT
echo "card: $(card)"
build_gpu ridgeline ridgeline_bench ridgeline_gpu_tests
BENCH_DEADLINE=$(( start + ${CALL_SECONDS:-330} ))  # the maps and layouts after the checks give way first
gpu_tests tests 90 "$W4A16_OVERLAP_TESTS"
probe_ceilings
vsfp16 "32|48|64"
bench_shapes splits 25 'BM_W4A16GemmSplits/{}/(48|64)/' 0 3 5
python3 perf/wip/best-variants.py "$W/splits.json" 5
w4a16_steps 48,64
bench_shapes mid 25 'BM_W4A16GemmSplits/{}/(24|32)/' 0 1 2 3 4 5 6 7
python3 perf/wip/best-variants.py "$W/mid.json" 4
gemm_choice_map mid "24|32"
bench_shapes variants 20 'BM_W4A16GemvVariants/{}/1/' 4 5 6 7
python3 perf/wip/best-variants.py "$W/variants.json" 4
echo "done at $(( $(date +%s) - start )) s"
