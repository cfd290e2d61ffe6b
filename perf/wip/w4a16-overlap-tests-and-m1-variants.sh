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
gpu_tests overlap-tests ${TESTS_SECONDS:-90} 'KernelW4A16Gemm.*:KernelW4A16Linear.*:CudaEngine.OverlappedLaunches*:W4A16ModelShapes*:CudaW4A16.*'
for shape in ${VARIANT_SHAPES:-5 4 6 7}; do  # 7b only (the M = 1 target), wo first
  timeout 20 build-gpu/bench/ridgeline_bench --benchmark_filter="BM_W4A16GemvVariants/$shape/(1|2)/" \
    --benchmark_out="$W/variants-$shape.json" --benchmark_out_format=json >>"$W/variants.log" 2>&1
  echo "variants shape $shape exit $?"
done
python3 perf/wip/merge-bench-json.py "$W"/variants-?.json >"$W/variants.json"
python3 - "$W/variants.json" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    us = {k[3:]: v for k, v in b.items() if k.startswith("us_") and not k.startswith("us_floor")}
    best = sorted(us.items(), key=lambda t: t[1])[:4]
    print(b["name"].split("/")[2], b.get("label", "?").split()[0], f"default {us['default']:.2f}",
          " ".join(f"{k} {v:.2f}" for k, v in best))
PY
for shape in ${SPLIT_SHAPES:-0 3}; do  # 1.8b wqkv, w2
  timeout 25 build-gpu/bench/ridgeline_bench --benchmark_filter="BM_W4A16GemmSplits/$shape/(48|64)/" \
    --benchmark_out="$W/splits-$shape.json" --benchmark_out_format=json >>"$W/splits.log" 2>&1
  echo "splits shape $shape exit $?"
done
python3 perf/wip/merge-bench-json.py "$W"/splits-?.json >"$W/splits.json"
python3 - "$W/splits.json" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    us = {k[3:]: v for k, v in b.items() if k.startswith("us_") and k != "us_fp16"}
    best = sorted(us.items(), key=lambda t: t[1])[:5]
    print(b["name"].split("/")[2], b.get("label", "?").split()[0], f"fp16 {b['us_fp16']:.2f}",
          f"auto {us['auto']:.2f}", " ".join(f"{k} {v:.2f}" for k, v in best))
PY
echo "done at $(( $(date +%s) - start )) s"
