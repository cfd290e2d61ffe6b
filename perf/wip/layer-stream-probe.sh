#!/usr/bin/env bash
# One device call (~3 minutes from a bare machine), queued by the twenty-eighth session (which had
# no device): BM_LayerStream (perf/wip/layer-stream-probe.patch), the feasibility probe for issue 12's
# B=1 row. A persistent kernel streams a 1.8b / 7b layer's four fp16 linears at one row through a
# per-SM ring of bulk copies, with a grid barrier between linears; modes: floor (no barrier), fused
# (the ring streams across the barrier), serial (the producer waits at the barrier too), against
# the engine's own GEMV kernels in a graph. The benchmark first checks modes 1 and 2 over two layers
# against a host reference (NMSE <= 1e-4) and fails otherwise.
# Prediction (perf/NOTES.md, "twenty-eighth"): floor ~0.90-0.93 of the probe's read peak; fused
# within ~5% of the floor (1.8b ~31-32 us a layer of 126 MB); serial ~+10-12 us a layer (four
# barriers, input loads and DRAM ramps exposed), about what the separate kernels take (~42 us).
# If fused reaches >= 0.93 of the peak, a persistent decode layer is worth building into the
# engine; if the floor itself is below ~0.93, issue 12's B=1 row is out of reach of this design.
#
#   perf/wip/layer-stream-probe.sh OUTDIR
#
# Leaves the tree as it found it.
set -uo pipefail
out=${1:?usage: perf/wip/layer-stream-probe.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=${RIDGELINE_BUILD_DIR:-build-gpu}
p=perf/wip/layer-stream-probe.patch
git apply "$p" || exit 1
trap 'git apply -R "$p"' EXIT
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
bash scripts/refresh-mtimes.sh "$build" >/dev/null
cmake --build "$build" -j16 --target ridgeline ridgeline_bench >"$out/build.log" 2>&1 ||
  { grep -E "error|warning" "$out/build.log" | head -30; exit 1; }
grep -c "warning" "$out/build.log" | sed 's/^/build warnings: /'
"$build/ridgeline" probe --out "$out/ceilings.json" >"$out/probe.txt" 2>&1 || echo "probe failed"
# A hang (a grid barrier that never opens) must not eat the call: 240 s is ~10x the expected run.
timeout 240 "$build/bench/ridgeline_bench" --benchmark_filter=BM_LayerStream --benchmark_min_time=20x \
  --benchmark_out="$out/layer-stream.json" --benchmark_out_format=json >"$out/layer-stream.txt" 2>&1
echo "bench exit $?"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
try:
    peak = json.load(open(f"{out}/ceilings.json"))["read_GBps"]
except Exception:
    peak = 4582.0
for b in json.load(open(f"{out}/layer-stream.json"))["benchmarks"]:
    if "error_occurred" in b:
        print(b["name"], "ERROR", b.get("error_message"))
        continue
    line = [b["name"], b.get("label", ""), f"{b['MB_per_layer']:.0f} MB"]
    for m in ("floor", "fused", "serial", "kernels"):
        line.append(f"{m} {b['us_' + m]:.1f} us ({b['GB/s_' + m] / peak:.2f})")
    line.append(f"nmse {b.get('nmse_mode1', -1):.1e}/{b.get('nmse_mode2', -1):.1e}")
    print("  ".join(line))
PY
