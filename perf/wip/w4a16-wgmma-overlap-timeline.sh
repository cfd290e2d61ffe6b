#!/usr/bin/env bash
# Forty-third session (queued, not run): why 7b's w2 and w13, launched overlapped, make the w4a16
# B=48/64 step slower while each is faster alone (perf/NOTES.md "forty-third", call 3). Applies
# perf/wip/w4a16-wgmma-overlap-cap-knob.patch (RIDGELINE_W4A16_OVERLAP_MAX_MB overrides the 20 MB cap),
# builds ridgeline, and records one decode step's CUPTI timeline (`ridgeline sweep --timeline`) of 7b
# w4a16, B=64, ctx 1024, at the landed cap and uncapped (100), then prints each run's kernels (summed
# duration, lead, advance of the step's end) side by side by name with template arguments dropped
# (the wgmma kernel's overlapped and plain instantiations differ only there), and the step's span.
# ~3 min from a bare machine.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-overlap-timeline.sh
source "$(dirname "$0")/device-call.sh"
p=perf/wip/w4a16-wgmma-overlap-cap-knob.patch
trap 'git apply -R "$p" 2>/dev/null; tar czf "$OUT/timeline.tgz" -C "$OUT" w' EXIT
git apply "$p" || exit 1
card
build_gpu ridgeline
for cap in 20 100; do
  RIDGELINE_W4A16_OVERLAP_MAX_MB=$cap timeout 90 build-gpu/ridgeline sweep --model internlm2-chat-7b \
    --weights w4a16 --batch 64 --context 1024 --timeline --out "$W/timeline-cap$cap.json" \
    >"$W/timeline-cap$cap.log" 2>&1 || { echo "sweep (cap $cap) failed"; tail -3 "$W/timeline-cap$cap.log"; }
done
python3 - "$W" <<'PY' | tee "$W/summary.txt"
import json, re, sys
w = sys.argv[1]
def table(cap):
    t = json.load(open(f"{w}/timeline-cap{cap}.json"))["runs"][0]["timeline"]
    ks = {}
    for k in t["kernels"]:
        n = re.sub(r"[<(].*", "", k["name"].replace("(anonymous namespace)::", "")).split("::")[-1][:50]
        e = ks.setdefault(n, {"us": 0.0, "lead_us": 0.0, "advance_us": 0.0, "launches": 0})
        for key in ("us", "lead_us", "advance_us", "launches"):
            e[key] += k[key]
    return t, ks
(ta, a), (tb, b) = table(20), table(100)
print(f"7b w4a16 B=64 ctx 1024: span {ta['span_us']:.1f} (cap 20 MB) -> {tb['span_us']:.1f} us (uncapped)")
print(f"{'kernel':50s} {'launches':>9s} {'us':>17s} {'lead':>17s} {'advance':>17s}")
for n in sorted(set(a) | set(b), key=lambda n: -a.get(n, b.get(n))["advance_us"]):
    x, y = a.get(n, {}), b.get(n, {})
    f = lambda key: f"{x.get(key, float('nan')):8.1f}/{y.get(key, float('nan')):8.1f}"
    print(f"{n:50s} {x.get('launches', 0):4d}/{y.get('launches', 0):4d} {f('us')} {f('lead_us')} {f('advance_us')}")
PY
