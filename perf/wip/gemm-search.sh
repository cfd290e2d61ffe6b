#!/usr/bin/env bash
# One device call (~4-6 min from a bare machine, most of it the build): BM_CublasLtSearch
# (bench/kernels/bench_gemm_search.cpp) on every 1.8b and 7b fp16 GEMM shape at 64, 128 and 256 rows:
# every cuBLASLt configuration the library offers (up to 64 heuristic results, then each algorithm
# id's tiles x split-K x reduction scheme x swizzle) against the heuristic's first choice, the one
# engine/cuda/gemm.cpp runs. The question is issue 12's B=256 row (1.8b GEMMs at 0.67-0.68 of the
# peak TFLOP/s, 0.75 asked; reports/targets.md): wo 0.41, wqkv 0.55, w2 0.51 of their roofline
# at 256 rows, where w13 and the head reach ~0.9.
# Prediction: the narrow GEMMs (1.8b wo, w2, wqkv) gain from split-K 2-4 (32-64 output tiles of
# 128 x 128 for 132 SMs): w2 (K = 8192) ~1.3-1.6x, wo and wqkv ~1.1-1.3x; w13 and the 7b shapes within
# a few percent. If the best is within ~5% everywhere, cuBLASLt has nothing better to offer and the
# row needs a kernel of ridgeline's own (reports/targets.md). If it gains, the engine's plan_for
# takes the search's winner per (shape, rows) (a search at load, outside graph capture).
#
#   OUT=/some/dir bash perf/wip/gemm-search.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline ridgeline_bench
build-gpu/ridgeline probe --out "$W/ceilings.json" >"$W/probe.log" 2>&1 && tail -2 "$W/probe.log"
# The row the question is about first (256 rows), then 64 and 128 rows in what time is left; a run cut
# by its timeout leaves its JSON unterminated, so each has its own file and the text log is kept.
timeout 300 build-gpu/bench/ridgeline_bench --benchmark_filter='BM_CublasLtSearch/[0-7]/256/' --benchmark_min_time=10x \
  --benchmark_out="$W/gemm-search-256.json" --benchmark_out_format=json >"$W/gemm-search-256.txt" 2>&1
echo "search 256 exit $?"
timeout 200 build-gpu/bench/ridgeline_bench --benchmark_filter='BM_CublasLtSearch/[0-7]/(64|128)/' \
  --benchmark_min_time=10x --benchmark_out="$W/gemm-search-64-128.json" --benchmark_out_format=json \
  >"$W/gemm-search-64-128.txt" 2>&1
echo "search 64/128 exit $?"
python3 - "$W" <<'PY'
import json, sys
w = sys.argv[1]
peak = json.load(open(f"{w}/ceilings.json"))["tflops"]
for name in ("gemm-search-256", "gemm-search-64-128"):
    try:
        benches = json.load(open(f"{w}/{name}.json"))["benchmarks"]
    except Exception as e:  # cut by its timeout: the text log has the rows that finished
        print(f"{name}: no JSON ({e}); see {name}.txt")
        continue
    for b in benches:
        if "error_occurred" in b:
            print(b["name"], "ERROR", b.get("error_message"))
            continue
        tf = b["TFLOP/s"]
        print(f"{b['name'].split('/manual')[0]:28s} heuristic {b['heuristic_us']:8.2f} us  best {b['best_us']:8.2f} us "
              f"x{b['x_vs_heuristic']:.2f}  {tf:6.1f} TFLOP/s ({tf / peak:.2f})  timed {int(b['configs'])} of "
              f"{int(b['offered'])}  {b.get('label', '')}")
PY
