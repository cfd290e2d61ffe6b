#!/usr/bin/env bash
# One device call (~2 minutes from a bare machine), queued by the twenty-seventh session
# (perf/NOTES.md): why 7b's wo, launched overlapped, costs the B=1 step 120-130 us with an int8 or
# int4 KV cache and gains ~30 us with an fp16 one (bench/results/h200-gemv-residual-overlap/).
# Applies perf/wip/gemv-residual-split-overlap-knob.patch, builds ridgeline, and records one decode
# step's CUPTI timeline (`ridgeline sweep --timeline`) of 7b, B=1, ctx 1024, fp16 weights, KV fp16
# and int8, with wo plain (RIDGELINE_RESIDUAL_OVERLAP=0, HEAD's launches) and overlapped (=1: w2
# too, as HEAD; 3 would be wo alone, which leaves w2 plain), then prints each kernel's summed
# duration, lead and advance of the step's end side by side.
#
#   perf/wip/wo-overlap-timeline.sh OUTDIR
#
# Set RIDGELINE_GIT_COMMIT to the local HEAD first. Leaves the tree as HEAD (the patch reversed).
set -uo pipefail
out=${1:?usage: perf/wip/wo-overlap-timeline.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=${RIDGELINE_BUILD_DIR:-build-gpu}
p=perf/wip/gemv-residual-split-overlap-knob.patch
git apply "$p" 2>/dev/null || patch -p1 --forward <"$p" >/dev/null || { echo "$p does not apply"; exit 1; }
trap 'git apply -R "$p" 2>/dev/null || patch -p1 -R <"$p" >/dev/null' EXIT
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
bash scripts/refresh-mtimes.sh "$build" >/dev/null
cmake --build "$build" -j16 --target ridgeline >"$out/build.log" 2>&1 || { grep error "$out/build.log" | head; exit 1; }
for o in 0 1; do
  RIDGELINE_RESIDUAL_OVERLAP=$o "$build/ridgeline" sweep --model internlm2-chat-7b --batch 1 --context 1024 \
    --weights fp16 --kv fp16,int8 --timeline --out "$out/timeline-wo$o.json" >"$out/timeline-wo$o.log" 2>&1 ||
    { echo "sweep (overlap $o) failed"; tail -3 "$out/timeline-wo$o.log"; }
done
python3 - "$out" <<'PY' | tee "$out/summary.txt"
import json, sys
out = sys.argv[1]
runs = {}
for o in (0, 1):
    for r in json.load(open(f"{out}/timeline-wo{o}.json"))["runs"]:
        runs[(o, r["kv"])] = r
for kv in ("fp16", "int8"):
    a, b = runs[(0, kv)], runs[(1, kv)]
    ta, tb = a["timeline"], b["timeline"]
    print(f"KV {kv}: span {ta['span_us']:.1f} -> {tb['span_us']:.1f} us, busy {ta['busy_us']:.1f} -> {tb['busy_us']:.1f}")
    kb = {k["name"]: k for k in tb["kernels"]}
    print(f"  {'kernel':60s} {'us':>15s} {'lead':>15s} {'advance':>15s}")
    for k in ta["kernels"]:
        n = k["name"]; m = kb.get(n, {})
        f = lambda key: f"{k[key]:7.1f}/{m.get(key, float('nan')):7.1f}"
        print(f"  {n[:60]:60s} {f('us')} {f('lead_us')} {f('advance_us')}")
PY
