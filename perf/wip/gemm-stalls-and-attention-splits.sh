#!/usr/bin/env bash
# One device call (~5 minutes from a bare machine), queued by the twenty-fifth session (perf/NOTES.md):
#  1. Where the tiled W4A16 GEMM's warps wait at M = 64: Nsight Compute's per-SASS-line samples
#     (scripts/ncu-sass.sh) for 1.8b wqkv (T0-dominated, 8-10 us) and 7b w2 (per-group pace).
#  2. Decode attention's split count per KV format at B = 16 and 64, ctx 8192 and 16384, forced
#     through perf/wip/attention-splits-knob.patch (RIDGELINE_ATTN_SPLITS=N): the data a
#     choose_splits rule for the quantized formats needs (issue 10's last cell, B=16 ctx 8192: int8
#     1.78x fp16 at the rule's 4 splits, 1.84x at 2).
#
#   perf/wip/gemm-stalls-and-attention-splits.sh OUTDIR
#
# Writes OUTDIR/sass-{1_8b-wqkv,7b-w2}/ (sass.txt, the summary), OUTDIR/attn-<N>.json for each
# forced split count (and "rule") and OUTDIR/attn-splits.txt (us per case, one column a setting).
# The tree is left patched.
set -uo pipefail
out=${1:?usage: perf/wip/gemm-stalls-and-attention-splits.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=${RIDGELINE_BUILD_DIR:-build-gpu}
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
bash scripts/refresh-mtimes.sh "$build"
cmake --build "$build" -j16 --target ridgeline_bench >"$out/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$out/build.log" | head -20; exit 1; }
timeout 120 bash scripts/ncu-sass.sh "$out/sass-1_8b-wqkv" w4a16_gemm_kernel 'BM_W4A16VsFp16/0/64/'
timeout 120 bash scripts/ncu-sass.sh "$out/sass-7b-w2" w4a16_gemm_kernel 'BM_W4A16VsFp16/7/64/'
p=perf/wip/attention-splits-knob.patch
git apply "$p" 2>/dev/null || patch -p1 --forward <"$p" >/dev/null || { echo "$p does not apply"; exit 1; }
cmake --build "$build" -j16 --target ridgeline_bench >>"$out/build.log" 2>&1 || { echo "patched build failed"; exit 1; }
filter='BM_DecodeAttention/[01]/[012]/(8192|16384)/(16|64)/'
for s in rule 1 2 3 4 6 8; do
  if [ $s = rule ]; then set -- env -u RIDGELINE_ATTN_SPLITS; else set -- env RIDGELINE_ATTN_SPLITS=$s; fi
  "$@" "$build/bench/ridgeline_bench" --benchmark_min_time=30x --benchmark_filter="$filter" \
    --benchmark_out="$out/attn-$s.json" --benchmark_out_format=json >"$out/attn-$s.log" 2>&1 ||
    echo "splits $s: the benchmark failed (attn-$s.log)"
done
python3 - "$out" <<'PY' >"$out/attn-splits.txt"
import json, os, sys
out = sys.argv[1]
cols = ["rule", "1", "2", "3", "4", "6", "8"]
rows = {}
for c in cols:
    path = os.path.join(out, f"attn-{c}.json")
    if not os.path.exists(path):
        continue
    for b in json.load(open(path))["benchmarks"]:
        rows.setdefault(b["name"].split("/manual_time")[0], {})[c] = b["real_time"]
print("case (model/kv/ctx/batch) " + " ".join(f"{c:>7}" for c in cols) + "   (us; the split count is capped by the context and workspace)")
for name, t in sorted(rows.items()):
    print(name.replace("BM_DecodeAttention/", "") + " " + " ".join(f"{t[c]:7.1f}" if c in t else "      -" for c in cols))
PY
cat "$out/attn-splits.txt"
