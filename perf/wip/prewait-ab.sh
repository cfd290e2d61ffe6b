#!/usr/bin/env bash
# Thirty-seventh: do the next GEMV's weight loads, requested before griddepcontrol.wait, delay the
# kernel before it? The B=1 per-CTA trace (H100, bench/results/h100-cta-trace-b1/) shows w13's first
# warps (3168 of 8192, 13 MB of loads) resident and loading while wo finishes: w13 passes its wait
# 3.0 us after wo's last warp ends, where every other boundary of the layer takes 0.4-0.5 us, and the
# attention merge (2 L2 round trips) takes 3.6-4.9 us while wo's early warps have all 8 MB of wo
# requested. Hypothesis: the predecessor's last memory operations (its stores, the residual, the
# merge's partials) queue behind the successor's early loads in the SMs' memory pipelines.
# perf/wip/prewait-knob.patch makes the loads before the wait a knob: RIDGELINE_PREWAIT_FP16 = loads per
# row and lane of gemv_fused's first batch (0..4, main 4), RIDGELINE_PREWAIT_W4A16 = groups of the
# register W4A16 GEMV's first batch (0.., main all). One device call (~4 min from a bare machine):
# build, probe, B=1/2 ctx 1024 sweeps of both presets over the knob, twice in alternating order.
# Prediction: fp16 prewait 1-2 faster than 4 by 1-3 us a layer (1.8b B=1 -25..-70 us), 0 slower
# than 1-2 (the stream starts a DRAM latency late); W4A16 alike, smaller.
#
#   OUT=/some/dir bash perf/wip/prewait-ab.sh
source "$(dirname "$0")/device-call.sh"
trap 'git apply -R perf/wip/prewait-knob.patch 2>/dev/null; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
git apply perf/wip/prewait-knob.patch || exit 1
build_gpu ridgeline
r=build-gpu/ridgeline
$r probe --out "$W/ceil.json" >"$W/probe.log" 2>&1
grep -iE "^read|^copy" "$W/probe.log"
run() {  # tag model weights batches, env in the caller
  timeout 120 $r sweep --model "$2" --batch "$4" --context 1024 --weights "$3" --kv fp16 --ceilings "$W/ceil.json" \
    --out "$W/$1.json" >"$W/$1.log" 2>&1 || echo "$1 failed"
}
for rep in 1 2; do
  order="4 2 1 0"; [ $rep = 2 ] && order="0 1 2 4"
  for pw in $order; do
    RIDGELINE_PREWAIT_FP16=$pw run "fp16-1_8b-pw$pw-r$rep" internlm2-chat-1_8b fp16 1,2
    RIDGELINE_PREWAIT_FP16=$pw run "fp16-7b-pw$pw-r$rep" internlm2-chat-7b fp16 1,2
  done
  order="all 1 0"; [ $rep = 2 ] && order="0 1 all"
  for pw in $order; do
    v=$pw; [ $pw = all ] && v=
    RIDGELINE_PREWAIT_W4A16=$v run "w4a16-1_8b-pw$pw-r$rep" internlm2-chat-1_8b w4a16 1
    RIDGELINE_PREWAIT_W4A16=$v run "w4a16-7b-pw$pw-r$rep" internlm2-chat-7b w4a16 1
  done
done
python3 - "$W" <<'PY' | tee "$W/summary.txt"
import collections, glob, json, os, sys
rows = collections.defaultdict(list)
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    name = os.path.basename(f)[:-5]
    if name == "ceil": continue
    fmt, model, pw, rep = name.split("-")
    for run in json.load(open(f))["runs"]:
        b = run["batch"]
        rows[(fmt, model, b, pw)].append(run["step"]["time_us"]["median"])
for k in sorted(rows):
    print(*k, " ".join(f"{v:8.1f}" for v in rows[k]))
PY
