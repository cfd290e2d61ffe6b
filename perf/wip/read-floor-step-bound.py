#!/usr/bin/env python3
"""Issue 9's B=1 steps with every layer linear at its read floor, linear by linear.

scripts/targets.py puts the bound in the B=1 rows of its table when the bench JSON it reads has
BM_W4A16ReadFloor rows (targets.py's step_at_floor says how it is taken); this prints the per-linear
table behind it: launches, the measured per-op time, the read floor a launch (BM_W4A16ReadFloor at
M = 1, perf/wip/read-floor-call.sh) and the time at the floor. Compare floors and steps of one card.

    python3 perf/wip/read-floor-step-bound.py READ_FLOOR_JSON REPORT_1_8B REPORT_7B
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from targets import (ISSUE9_B1_GOAL, bench_rows, decode_runs, linears_at_floor, load, median_us,  # noqa: E402
                     read_floors, step_at_floor)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    bench, _ = bench_rows([sys.argv[1]])
    floors = read_floors(bench)
    for path, name in ((sys.argv[2], "1.8b"), (sys.argv[3], "7b")):
        rep = load(path)
        runs = decode_runs(rep)
        f, q = runs[(1, 1024, "fp16", "fp16")], runs[(1, 1024, "w4a16", "fp16")]
        fp16_us, w4_us = median_us(f["step"]), median_us(q["step"])
        print(f"{rep['model']['name']} ({rep['device']['name']}, {rep['git_commit'][:7]}): fp16 step "
              f"{fp16_us:.0f} us, w4a16 {w4_us:.0f} us ({fp16_us / w4_us:.2f}x; goal {ISSUE9_B1_GOAL[name]}x)")
        rows = linears_at_floor(q, floors, name)
        if rows is None:
            print("no read floor for every linear of this preset\n")
            continue
        print("| linear | launches | measured us | read floor us a launch | at the floor | saved |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for lin, n, us, floor, at in rows:
            print(f"| {lin} | {n} | {us:.1f} | {floor:.2f} | {at:.1f} | {us - at:.1f} |")
        serial, overlapped = step_at_floor(q, floors, name)
        print(f"one op after another -> {serial:.0f} us: {fp16_us / serial:.2f}x; overlapped -> "
              f"{overlapped:.0f} us: {fp16_us / overlapped:.2f}x\n")


if __name__ == "__main__":
    main()
