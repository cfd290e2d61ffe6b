#!/usr/bin/env bash
# One device call (~3-4 minutes from a bare machine): BM_LayerStreamLdg
# (perf/wip/layer-stream-ldg-probe.patch), the persistent-layer probe again with the producer and
# ring taken out. The first probe (BM_LayerStream, perf/NOTES.md "twenty-eighth") streamed a 1.8b /
# 7b fp16 layer's linears at only 0.56 / 0.67 of the read peak, slower than the engine's separate
# GEMVs: one thread's 16 KB bulk copies into an 11-slot ring were the limit, not the grid barriers
# (+7-14%). Here every warp of the persistent CTA (16 an SM, one CTA an SM, cooperative launch)
# streams its share of the rows with 16-byte ld.global.nc loads, `depth` (4 / 8 / 16) in flight a
# lane in a rolling register ring, and in fused mode the ring rolls into the next linear's first
# chunks before the warp reaches the grid barrier. Same chain, modes (floor / fused / serial / the
# engine's GEMVs in a graph), the same NMSE <= 1e-4 host check of modes 1 and 2 before timing, and
# the same 2 s trap on a shut barrier. The patch holds the original BM_LayerStream too (one file),
# so both run here on the same machine.
# Prediction: fp16 floor >= ~0.85-0.93 of the probe's read peak at depth 8 and 16 (depth 4, 32 KB
# in flight an SM, may fall short: that is the Little's-law check); fused within ~5% of the floor;
# serial ~+10-15% over fused. Decision: fused >= ~0.90 (1.8b <= ~31 us a layer of 126 MB, 7b
# <= ~106 us of 436 MB at ~4.5 TB/s) revives the persistent decode layer (the "what the engine
# would build" plan in perf/NOTES.md); a floor under ~0.85 says per-warp streaming in one CTA an SM
# does not reach what the engine's GEMVs reach with many CTAs, and the B=1 row needs another route.
# 4-bit (depth 4 / 8) is secondary: compare it with the engine's W4A16 kernels, as before.
#
#   perf/wip/layer-stream-ldg-probe.sh OUTDIR
#
# Leaves the tree as it found it. (The patch creates bench/kernels/bench_layer_stream.cu, as
# perf/wip/layer-stream-probe.patch does: apply one or the other, not both.)
set -uo pipefail
out=${1:?usage: perf/wip/layer-stream-ldg-probe.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
build=${RIDGELINE_BUILD_DIR:-build-gpu}
p=perf/wip/layer-stream-ldg-probe.patch
git apply "$p" || exit 1
trap 'git apply -R "$p"' EXIT
cmake --preset gpu -B "$build" >"$out/configure.log" 2>&1 || { tail -20 "$out/configure.log"; exit 1; }
bash scripts/refresh-mtimes.sh "$build" >/dev/null
cmake --build "$build" -j16 --target ridgeline ridgeline_bench >"$out/build.log" 2>&1 ||
  { grep -E "error|warning" "$out/build.log" | head -30; exit 1; }
grep -c "warning" "$out/build.log" | sed 's/^/build warnings: /'
"$build/ridgeline" probe --out "$out/ceilings.json" >"$out/probe.txt" 2>&1 || echo "probe failed"
# A hang (a grid barrier that never opens) must not eat the call: each run is ~10x its expected time.
# The new probe first (the question of this call), then the original on the same machine ("/" keeps
# BM_LayerStream's filter from matching BM_LayerStreamLdg).
timeout 240 "$build/bench/ridgeline_bench" --benchmark_filter=BM_LayerStreamLdg --benchmark_min_time=20x \
  --benchmark_out="$out/layer-stream-ldg.json" --benchmark_out_format=json >"$out/layer-stream-ldg.txt" 2>&1
echo "ldg bench exit $?"
timeout 150 "$build/bench/ridgeline_bench" --benchmark_filter='BM_LayerStream/' --benchmark_min_time=20x \
  --benchmark_out="$out/layer-stream.json" --benchmark_out_format=json >"$out/layer-stream.txt" 2>&1
echo "ring bench exit $?"
python3 - "$out" <<'PY' | tee "$out/summary.txt"
import json, sys
out = sys.argv[1]
try:
    peak = json.load(open(f"{out}/ceilings.json"))["read_GBps"]
except Exception:
    peak = 4582.0
print(f"read peak {peak:.0f} GB/s; us a layer (fraction of the peak)")
for f in ("layer-stream-ldg.json", "layer-stream.json"):
    try:
        benches = json.load(open(f"{out}/{f}"))["benchmarks"]
    except Exception as e:
        print(f, "unreadable:", e)
        continue
    for b in benches:
        if "error_occurred" in b:
            print(b["name"], "ERROR", b.get("error_message"))
            continue
        line = [b["name"], b.get("label", ""), f"{b['MB_per_layer']:.0f} MB"]
        for m in ("floor", "fused", "serial", "kernels"):
            line.append(f"{m} {b['us_' + m]:.1f} us ({b['GB/s_' + m] / peak:.2f})")
        line.append(f"fused/floor {b['us_fused'] / b['us_floor']:.3f}")
        line.append(f"nmse {b.get('nmse_mode1', -1):.1e}/{b.get('nmse_mode2', -1):.1e}")
        print("  ".join(line))
PY
