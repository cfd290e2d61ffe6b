#!/usr/bin/env bash
# Thirty-fifth: gemm_narrow with x shared by 2 or 4 output tiles (perf/wip/gemm-narrow-share.patch over
# gemm-narrow.patch). Why: the single tiles' main loop is fed from the L2, not DRAM: 1.8b w13 at split 1
# reads 128 tiles x 32 stages x 48 KB = 201 MB from the L2 in 38.7 us (5.2 TB/s on the H100) while one
# CTA alone runs a stage at the SM's peak (w2 at split 1: 16 CTAs, 0.63 us a stage). Sharing x cuts a
# CTA's stage to 32 KB (pairs) or 24 KB (fours). The thirty-fourth session's pairs were slower than
# single tiles (w13 split 1: 52.7 against 38.7 us); suspect: every consumer warp's remote arrival was a
# release at cluster scope (and the producer's wait an acquire at cluster scope), which may be a fence a
# stage. The delta makes them CTA-scope (CUTLASS's form) and keeps the first form behind
# RL_X_GEMM_NARROW_SCOPE=cluster, and generalizes pairs to groups of `share` tiles (1, 2, 4).
# One device call, ~6 min from a bare machine:
#   1. build; ptxas's view; SASS fences (MEMBAR) per kernel instance;
#   2. the kernel tests (groups of 2 and 4 bit-identical to single tiles at every split);
#   3. probe; BM_GemmNarrow at 256 rows: every shape at the plan's split x share 1/2/4, the 1.8b shapes
#      at forced splits; then shares 2 and 4 again with RL_X_GEMM_NARROW_SCOPE=cluster (split 0 only);
#   4. B=256 ctx 1024 sweeps, 1.8b then 7b: RL_X_GEMM_NARROW=0 (cuBLASLt), 1, 3 (pairs), 5 (fours);
#   5. memcheck over the sharing test, in what time is left.
# Prediction: if the cluster-scope release was the cost, pairs at split 1 on w13 go from 52.7 to below
# the single tiles' 38.7 us, toward the 201 -> 134 MB of L2 traffic (~26 us at 5.2 TB/s, so the tensor
# cores' ~24 us bound it); fours 100 MB. With the cluster scope restored, pairs as before.
#
#   OUT=/some/dir bash perf/wip/gemm-narrow-share.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
if [ ! -f kernels/sm90a/gemm_narrow.cu ]; then
  git apply perf/wip/gemm-narrow.patch && git apply perf/wip/gemm-narrow-share.patch ||
    { echo "the patches do not apply"; exit 1; }
fi
build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
python3 -c "import json; print([e for e in json.load(open('build-gpu/compile_commands.json'))
  if e['file'].endswith('/sm90a/gemm_narrow.cu')][0]['command'])" >"$W/nvcc.cmd" &&
  (cd build-gpu && eval "$(sed 's/ -o [^ ]*/ -o \/dev\/null/' "$W/nvcc.cmd") -Xptxas -v" 2>&1 |
    grep -E "registers|spill|C7510" | head -6)
obj=$(find build-gpu -name 'gemm_narrow.cu.o' | head -1)
if [ -n "$obj" ] && command -v cuobjdump >/dev/null; then
  cuobjdump -sass "$obj" >"$W/gemm-narrow.sass" 2>&1
  awk '/Function :/ {f=$3} /MEMBAR|FENCE|ERRBAR/ {n[f]++} END {for (k in n) print "fences", n[k], k}' \
    "$W/gemm-narrow.sass"
  grep -c "Function :" "$W/gemm-narrow.sass"
fi
RIDGELINE_REQUIRE_GPU=1 timeout 150 build-gpu/tests/ridgeline_gpu_tests --gtest_filter='KernelGemmNarrow*' \
  >"$W/tests.log" 2>&1
tests_rc=$?
echo "tests exit $tests_rc at $(( $(date +%s) - start )) s"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[gemm_narrow\]" "$W/tests.log" | head -12
grep -E -A3 "Failure" "$W/tests.log" | head -30
echo "worst NMSE:"; grep "^\[nmse\]" "$W/tests.log" | awk '{print $NF, $0}' | sort -g | tail -3 | cut -d" " -f2-
timeout 120 build-gpu/ridgeline probe --out "$W/ceilings.json" >"$W/probe.log" 2>&1 && tail -2 "$W/probe.log"
bench() {  # tag, filter, then env
  local tag=$1 filter=$2
  shift 2
  env "$@" timeout 150 build-gpu/bench/ridgeline_bench --benchmark_filter="$filter" --benchmark_min_time=20x \
    --benchmark_out="$W/bench-$tag.json" --benchmark_out_format=json >"$W/bench-$tag.txt" 2>&1
  echo "bench $tag exit $?"
}
# Each share in a process of its own (a faulting multicast launch ends its process).
for share in 1 2 4; do bench share$share "BM_GemmNarrow/[0-9]+/256/[0-9]+/$share/" RL_NONE=1; done
for share in 2 4; do bench cluster$share "BM_GemmNarrow/[0-9]+/256/0/$share/" RL_X_GEMM_NARROW_SCOPE=cluster; done
python3 - "$W" <<'PY'
import glob, json, sys
w = sys.argv[1]
try:
    peak = json.load(open(f"{w}/ceilings.json"))["tflops"]
except Exception:
    peak = float("nan")
for f in sorted(glob.glob(f"{w}/bench-*.json")):
    tag = f.split("bench-")[-1][:-5]
    try:
        benches = json.load(open(f))["benchmarks"]
    except Exception as e:
        print(f"{tag}: no JSON ({e})")
        continue
    for b in benches:
        name = b["name"].split("/manual")[0]
        if "error_occurred" in b:
            print(tag, name, "ERROR", b.get("error_message"))
            continue
        tf = b["TFLOP/s"]
        print(f"{tag:9s} {name:26s} {b.get('label', ''):9s} narrow {b['us_narrow']:7.2f} (ovl "
              f"{b['us_overlapped']:7.2f}, no sum {b['us_no_sum']:7.2f})  cublas {b['us_cublas']:7.2f}  "
              f"x{b['x_vs_cublas']:.2f}  {tf / peak:.2f} of peak  split {int(b['split'])}  "
              f"clusters {int(b['clusters'])}")
PY
if [ "$tests_rc" -eq 0 ]; then
  for model in internlm2-chat-1_8b internlm2-chat-7b; do
    for mode in 0 1 3 5; do
      [ $(( $(date +%s) - start )) -gt ${GEMM_NARROW_BUDGET_S:-430} ] && break 2
      tag=narrow$mode-$model
      left=$(( ${GEMM_NARROW_CALL_S:-580} - ($(date +%s) - start) - 60 ))
      RL_X_GEMM_NARROW=$mode timeout "$left" build-gpu/ridgeline sweep --device cuda --model "$model" \
        --batch 256 --context 1024 --weights fp16 --kv fp16 --ceilings "$W/ceilings.json" --out "$W/$tag.json" \
        >"$W/$tag.log" 2>&1 || echo "$tag failed"
      echo "$tag: $(grep -E '^\[[0-9]+/[0-9]+\]' "$W/$tag.log" | sed 's/^\[[0-9/]*\] //' | tr '\n' ';')"
    done
  done
else
  echo "tests failed: no sweeps"
fi
left=$(( ${GEMM_NARROW_CALL_S:-580} - ($(date +%s) - start) - 10 ))
if [ "$left" -gt 40 ]; then
  timeout "$left" compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/ridgeline_gpu_tests \
    --gtest_filter='KernelGemmNarrow.TilesSharing*' >"$W/memcheck.log" 2>&1
  echo "memcheck exit $? ($left s allowed)"
  tail -2 "$W/memcheck.log"
fi
python3 - "$W" <<'PY'
import glob, json, sys
for f in sorted(glob.glob(f"{sys.argv[1]}/narrow*.json")):
    for r in json.load(open(f)).get("runs", []):
        ops = {}
        for o in r.get("ops", []):
            k = o["name"].split(".")[-1]
            ops[k] = ops.get(k, 0.0) + o.get("time_us", 0.0)
        gemms = {k: round(v, 1) for k, v in ops.items() if k in ("wqkv", "wo", "w13", "w2", "output")}
        print(f.split("/")[-1], r["batch"], r["context"], "step", round(r["step"]["time_us"]["median"], 1), gemms)
PY
