#!/usr/bin/env bash
# One device call (~4 minutes from a bare machine): the one-row fused W4A16 GEMVs of the B=1 step
# at other register layouts and at a ring of 4 register batches, each alone in the step. Applies
# perf/wip/w4a16-fused-layout-knobs.patch (RIDGELINE_REGS_<in>x<out>=W.S.B) and
# perf/wip/w4a16-gemv-regs-depth4.patch (RIDGELINE_REGS_DEPTH=4) to a scratch tree, builds once, and
# for each setting runs DecodeBench's w4a16/fp16 rows and BM_W4A16Fusions at M=1.
#
#   perf/wip/w4a16-layout-sweep.sh OUTDIR
#
# Writes OUTDIR/decode-NAME.txt, OUTDIR/fusions-NAME.json and OUTDIR/summary.txt (one line a
# setting: the 1.8b and 7b w4a16 B=1 ms, then each fused GEMV's us). The tree is left patched.
set -uo pipefail
out=${1:?usage: perf/wip/w4a16-layout-sweep.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=${RIDGELINE_BUILD_DIR:-build-gpu}
for p in perf/wip/w4a16-fused-layout-knobs.patch perf/wip/w4a16-gemv-regs-depth4.patch; do
  git apply "$p" 2>/dev/null || patch -p1 --forward <"$p" >/dev/null || { echo "sweep: $p does not apply"; exit 1; }
done
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
bash scripts/refresh-mtimes.sh "$build"
cmake --build "$build" -j16 --target ridgeline_gpu_tests ridgeline_bench >"$out/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$out/build.log" | head -20; exit 1; }
run() {  # name, then VAR=value settings
  local name=$1
  shift
  env "$@" "$build/tests/ridgeline_gpu_tests" --gtest_filter=DecodeBench.W4A16VsFp16OnThe1_8bAnd7bPresets \
    >"$out/decode-$name.txt" 2>&1
  env "$@" "$build/bench/ridgeline_bench" --benchmark_filter='BM_W4A16Fusions/[0-7]/1/' \
    --benchmark_out="$out/fusions-$name.json" --benchmark_out_format=json >/dev/null 2>&1
  python3 - "$name" "$out/decode-$name.txt" "$out/fusions-$name.json" <<'PY' | tee -a "$out/summary.txt"
import json, re, sys
name, decode, fusions = sys.argv[1:]
ms = re.findall(r"decode internlm2-chat-(\S+) w4a16 B=1 ctx=1024: ([0-9.]+) ms", open(decode).read())
try:
    fused = [(b["label"].split()[0], b["us_fused"]) for b in json.load(open(fusions))["benchmarks"] if "us_fused" in b]
except (OSError, ValueError, KeyError):
    fused = []
print(f"{name:28}", " ".join(f"{p} {t}" for p, t in ms), "|", " ".join(f"{l} {u:.2f}" for l, u in fused))
PY
}
run default
run depth4 RIDGELINE_REGS_DEPTH=4
# 1.8b: wo (residual; default 16.16.4), wqkv (RoPE pair; 8.8.2), w13 (SwiGLU pair; 8.4.2)
run 1_8b-wo-8.8.2 RIDGELINE_REGS_2048x2048=8.8.2
run 1_8b-wo-8.8.4 RIDGELINE_REGS_2048x2048=8.8.4
run 1_8b-wqkv-16.16.2 RIDGELINE_REGS_2048x4096=16.16.2
run 1_8b-w13-16.8.2 RIDGELINE_REGS_2048x16384=16.8.2
run 1_8b-w13-8.8.2 RIDGELINE_REGS_2048x16384=8.8.2
# 7b: wqkv (RoPE pair; 8.8.2), w13 (SwiGLU pair; 8.2.2), w2 (residual; 8.8.4)
run 7b-wqkv-16.16.2 RIDGELINE_REGS_4096x6144=16.16.2
run 7b-wqkv-16.8.2 RIDGELINE_REGS_4096x6144=16.8.2
run 7b-w13-16.4.2 RIDGELINE_REGS_4096x28672=16.4.2
run 7b-w13-16.2.2 RIDGELINE_REGS_4096x28672=16.2.2
run 7b-w2-16.8.4 RIDGELINE_REGS_14336x4096=16.8.4
run 7b-w2-16.16.4 RIDGELINE_REGS_14336x4096=16.16.4
