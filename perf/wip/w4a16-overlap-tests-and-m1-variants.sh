#!/usr/bin/env bash
# Forty-fifth session's last call (~4 min from a bare machine, any card): the 17 W4A16 GPU tests the
# landed wgmma overlap still owes as a set (w4a16-overlap-tests-only.sh's filter), then
# BM_W4A16GemvVariants at M = 1 and 2 on the 7b shapes, one process a shape (issue 9's M = 1 cell, 7b
# wo, is 2.30x on the H200 against 2.83x on the H100: do the H100-chosen layouts of
# choose_plain_config fit this card?); then BM_W4A16GemmSplits at 48 / 64 rows on the shapes nearest
# fp16 there (1.8b wqkv 0.90x / 0.89x, the last cells of "never slower up to 64" on the H200).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> [VARIANT_SHAPES="5 4 6 7"] [SPLIT_SHAPES="0 3"] \
#     [TESTS_SECONDS=90] bash perf/wip/w4a16-overlap-tests-and-m1-variants.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/m1.tgz" -C "$OUT" w' EXIT
echo "card: $(card)"
build_gpu ridgeline_gpu_tests ridgeline_bench
gpu_tests overlap-tests ${TESTS_SECONDS:-90} "$W4A16_OVERLAP_TESTS"
# 7b only (the M = 1 target), wo first
bench_shapes variants 20 'BM_W4A16GemvVariants/{}/(1|2)/' ${VARIANT_SHAPES:-5 4 6 7}
python3 perf/wip/best-variants.py "$W/variants.json"
# 1.8b wqkv, w2
bench_shapes splits 25 'BM_W4A16GemmSplits/{}/(48|64)/' ${SPLIT_SHAPES:-0 3}
python3 perf/wip/best-variants.py "$W/splits.json" 5
echo "done at $(( $(date +%s) - start )) s"
