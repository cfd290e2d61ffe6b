#!/usr/bin/env python3
"""The most issue 9's B=1 steps could gain over fp16 if every layer linear ran at its read floor.

Takes BM_W4A16ReadFloor's M = 1 rows (perf/wip/read-floor-call.sh: a kernel that only reads a weight's
packed codes and records, one overlapped launch) and the B=1 ctx 1024 runs of the baseline sweeps. In
each w4a16 step it replaces the four linears' measured per-op time by launches x that shape's read
floor and keeps every other op (attention, the fp16 head, sampling) as measured, then divides the
fp16 step by the result, two ways:
  - ops one after another: the per-op times summed (the sweep times ops without overlap);
  - overlapped: the measured step less what the linears would save (optimistic: it keeps all of the
    step's overlap, some of which hides the linears' own time).
If even the larger of the two is under issue 9's goal (2.6x 1.8b, 3.2x 7b), no W4A16 linear of one
launch a layer linear meets the row on that card; only fewer launches, or a faster rest of the step,
could. Compare floors and steps of the same card.

    python3 perf/wip/read-floor-step-bound.py READ_FLOOR_JSON REPORT_1_8B REPORT_7B
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from targets import ISSUE9_B1_GOAL, SHAPES, decode_runs, load, median_us, op_group  # noqa: E402

LINEARS = ("wqkv", "wo", "w13", "w2")


def floors(path):
    """{shape name: us} from BM_W4A16ReadFloor's M = 1 rows."""
    out = {}
    for b in load(path)["benchmarks"]:
        parts = b["name"].split("/")
        if parts[0] == "BM_W4A16ReadFloor" and parts[2] == "1" and "us_floor_read" in b:
            out[SHAPES[int(parts[1])]] = b["us_floor_read"]
    return out


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    floor = floors(sys.argv[1])
    for path, prefix in ((sys.argv[2], "1_8b"), (sys.argv[3], "7b")):
        rep = load(path)
        runs = decode_runs(rep)
        f, q = runs[(1, 1024, "fp16", "fp16")], runs[(1, 1024, "w4a16", "fp16")]
        fp16_step, w4_step = median_us(f["step"]), median_us(q["step"])
        ops_total = sum(o["time_us"] for o in q["ops"])
        saved = 0.0
        print(f"{rep['model']['name']} ({rep.get('device', {}).get('name', '?')}, "
              f"{rep.get('git_commit', '?')[:7]}): fp16 step {fp16_step:.0f} us, w4a16 {w4_step:.0f} us "
              f"({fp16_step / w4_step:.2f}x)")
        print("| linear | launches | measured us | read floor us a launch | at the floor | saved |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for lin in LINEARS:
            ops = [o for o in q["ops"] if op_group(o["name"]) == lin]
            us = sum(o["time_us"] for o in ops)
            at = len(ops) * floor[f"{prefix}.{lin}"]
            saved += us - at
            print(f"| {lin} | {len(ops)} | {us:.1f} | {floor[f'{prefix}.{lin}']:.2f} | {at:.1f} | {us - at:.1f} |")
        serial, overlapped = ops_total - saved, w4_step - saved
        goal = ISSUE9_B1_GOAL["1.8b" if prefix == "1_8b" else "7b"]
        print(f"ops one after another {ops_total:.0f} -> {serial:.0f} us: {fp16_step / serial:.2f}x; "
              f"overlapped {w4_step:.0f} -> {overlapped:.0f} us: {fp16_step / overlapped:.2f}x "
              f"(goal {goal}x)\n")


if __name__ == "__main__":
    main()
