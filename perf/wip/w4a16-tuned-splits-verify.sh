#!/usr/bin/env bash
# Fiftieth session (~4 min from a bare machine, any Hopper card): the wgmma kernel's measured splits
# (w4a16_gemm_wgmma_tuned_splits, kernels/w4a16_gemm.cu: at 17..32 rows on an H100 SXM, 1.8b w13 in
# clusters of 1, 7b w2 of 7, 7b wo of 8) checked and timed. First w4a16-mid-rows-verify.sh's call: the
# W4A16 GPU tests, BM_W4A16VsFp16 at 16..64 rows, the 24 / 32-row map ("auto" is now the table's split,
# "wg.auto" the rule's) and the w4a16 steps at B = 24 / 32, against bench/results/h100-accbc49-mid-rows
# (the rule alone, the same script). Then BM_W4A16Path at 16..32 rows on 7b wo, GEMV and GEMM (clusters
# of 8 where the table applies): where the two cross, for w4a16_use_gemv. Everything in $OUT/tuned.tgz.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=<full hash> bash perf/wip/w4a16-tuned-splits-verify.sh
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/w4a16-mid-rows-verify.sh"
source "$here/device-call.sh"
trap 'tar czf "$OUT/tuned.tgz" -C "$OUT" w && rm -f "$OUT/mid.tgz"' EXIT
timeout 60 build-gpu/bench/ridgeline_bench --benchmark_filter='BM_W4A16Path/5/(16|20|24|28|32)/' \
  --benchmark_out="$W/path-7b-wo.json" --benchmark_out_format=json >"$W/path-7b-wo.log" 2>&1
echo "path 7b wo exit $?"
python3 -c 'import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(b["name"].split("/")[2], b["label"], "%.2f us" % b["us"])' "$W/path-7b-wo.json"
