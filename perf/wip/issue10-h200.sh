#!/usr/bin/env bash
# Issue 10's benchmark cells alone, for a session with little device time left: decode attention at
# B = 16 and 64, ctx 8192-32768, fp16 / int8 / int4 KV, both presets (BM_DecodeAttention, graph-replayed,
# rotated caches), with the ratios the issue asks for and the probe's read peak. Stops at once on a card
# that is not an H200 (the issue's figures are H200 figures; the H100's are in
# bench/results/h100-baselines-4f9a8be/). ~3-4 minutes from a bare machine (the bench build most of it).
#
#   OUT=/some/dir bash perf/wip/issue10-h200.sh
source "$(dirname "$0")/device-call.sh"
only_on_h200
trap 'tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
build_gpu ridgeline_bench ridgeline
build-gpu/ridgeline probe --out "$W/ceilings.json" >"$W/probe.log" 2>&1
tail -2 "$W/probe.log"
build-gpu/bench/ridgeline_bench --benchmark_min_time=30x \
  --benchmark_filter='BM_DecodeAttention/[0-9]+/[0-9]+/(8192|16384|32768)/(16|64)/' \
  --benchmark_out="$W/issue10-bench.json" --benchmark_out_format=json >"$W/issue10-bench.log" 2>&1
echo "bench exit $?"
python3 - "$W/issue10-bench.json" "$W/ceilings.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
peak = json.load(open(sys.argv[2]))["read_GBps"]
rows = {}
for b in d["benchmarks"]:
    if not b["name"].startswith("BM_DecodeAttention/"):
        continue
    preset, _, fmt = b["label"].split()[:3]
    _, _, _, ctx, batch = b["name"].split("/")[:5]
    if int(ctx) < 8192 or int(batch) not in (16, 64):
        continue
    rows[(preset, int(ctx), int(batch), fmt)] = (b["real_time"], b["GB/s"])
print(f"read peak {peak:.0f} GB/s")
print("| preset | ctx | B | fp16 us | of peak | int8 us | x | int4 us | x |")
for (preset, ctx, batch, fmt), (t, gbps) in sorted(rows.items()):
    if fmt != "fp16":
        continue
    i8, i4 = rows.get((preset, ctx, batch, "int8")), rows.get((preset, ctx, batch, "int4"))
    print(f"| {preset} | {ctx} | {batch} | {t:.1f} | {gbps / peak:.2f} | {i8[0]:.1f} | {t / i8[0]:.2f} | "
          f"{i4[0]:.1f} | {t / i4[0]:.2f} |")
PY
