#!/usr/bin/env python3
"""Issue 9's kernel cells and B=1 / B=16 decode steps on two cards side by side: which times fall with
the second card's bandwidth and which do not. For each shape and batch of BM_W4A16VsFp16, the w4a16
and fp16 times on both cards and how much faster each is on the second, against the ratio of the
two read peaks (a time set by DRAM bytes alone would fall by that ratio); then the same for the decode
steps of the baseline sweeps. Compare only runs of the same kernels (the fifty-fourth session's
NOTES say which commits qualify).

    python3 perf/wip/cards-side-by-side.py A_DIR B_DIR [--rows 1,4,8,16] [--steps A1.json.gz,A7.json.gz
        B1.json.gz,B7.json.gz]

A_DIR / B_DIR: baseline folders with targets-bench.json.gz and ceilings.json
(scripts/gpu-baselines.sh with RIDGELINE_BASELINE_TARGETS=1 writes both).
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
from targets import SHAPES, bench_rows, decode_runs, load, median_us  # noqa: E402


def card(folder):
    rows, _ = bench_rows([os.path.join(folder, "targets-bench.json.gz")])
    ceil = load(os.path.join(folder, "ceilings.json"))
    return rows, ceil["read_GBps"], ceil["device"].get("datasheet", {}).get("name", folder)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rows", default="1,4,8,16")
    ap.add_argument("--steps", nargs=2, metavar=("A_REPORTS", "B_REPORTS"),
                    help="comma-separated sweep reports of each card, in the same preset order")
    args = ap.parse_args()
    (ra, pa, na), (rb, pb, nb) = card(args.a), card(args.b)
    print(f"{na} read peak {pa:.0f} GB/s, {nb} {pb:.0f} GB/s: a time set by bytes alone is "
          f"{pb / pa:.2f}x shorter on the second.\n")
    print(f"| shape | M | w4a16 us {na} | {nb} | faster | fp16 us {na} | {nb} | faster | "
          f"x vs fp16 {na} | {nb} |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    gains = {"w4a16": [], "fp16": []}
    for m in (int(x) for x in args.rows.split(",")):
        for i, shape in enumerate(SHAPES):
            name = f"BM_W4A16VsFp16/{i}/{m}"
            if name not in ra or name not in rb:
                continue
            a, b = ra[name], rb[name]
            gw, gf = a["us_w4a16"] / b["us_w4a16"], a["us_fp16"] / b["us_fp16"]
            gains["w4a16"].append(gw)
            gains["fp16"].append(gf)
            print(f"| {shape} | {m} | {a['us_w4a16']:.2f} | {b['us_w4a16']:.2f} | {gw:.2f} | "
                  f"{a['us_fp16']:.2f} | {b['us_fp16']:.2f} | {gf:.2f} | {a['x_vs_fp16']:.2f} | "
                  f"{b['x_vs_fp16']:.2f} |")
    for k, g in gains.items():
        if g:
            print(f"\n{k}: {nb} faster by {min(g):.2f}-{max(g):.2f}x (median {statistics.median(g):.2f}) "
                  f"over {len(g)} cells", end="")
    print()
    if args.steps:
        print(f"\n| preset | B | fp16 us {na} | {nb} | faster | w4a16 us {na} | {nb} | faster |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for pa_path, pb_path in zip(args.steps[0].split(","), args.steps[1].split(",")):
            rep_a = load(pa_path)
            ua, ub = decode_runs(rep_a), decode_runs(load(pb_path))
            preset = rep_a["model"]["name"]
            for batch in (1, 16):
                keys = [(batch, 1024, w, "fp16") for w in ("fp16", "w4a16")]
                if not all(k in ua and k in ub for k in keys):
                    continue
                (fa, fb), (qa, qb) = ((median_us(ua[k]["step"]), median_us(ub[k]["step"])) for k in keys)
                print(f"| {preset} | {batch} | {fa:.0f} | {fb:.0f} | {fa / fb:.2f} | {qa:.0f} | "
                      f"{qb:.0f} | {qa / qb:.2f} |")


if __name__ == "__main__":
    main()
