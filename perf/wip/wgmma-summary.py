#!/usr/bin/env python3
"""One line per BM_W4A16GemmSplits row: fp16, the automatic choice ("auto": from the wgmma route on,
the wgmma kernel at 33..127 rows on Hopper), and the best variant of each kernel family in the run
(tiled "s*"/"t32.*", wgmma "wg.*"/"wg32.*", the ping-pong experiment "pp.*") with its ratio to fp16.

    python3 perf/wip/wgmma-summary.py BENCH.json
"""
import json
import sys

FAMILIES = (("tiled", ("s", "t32.")), ("wgmma", ("wg.", "wg32.")), ("pingpong", ("pp.",)))

for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if not b["name"].startswith("BM_W4A16GemmSplits"):
        continue
    us = {k[3:]: v for k, v in b.items() if k.startswith("us_")}
    fp16 = us["fp16"]
    line = f"{b['label'].split()[0]:10s} M={b['name'].split('/')[2]:3s} fp16 {fp16:6.2f}  auto {us['auto']:6.2f}"
    for family, prefixes in FAMILIES:
        runs = [(v, k) for k, v in us.items() if k.startswith(prefixes)]
        if runs:
            best = min(runs)
            line += f"  {family} {best[0]:6.2f} {best[1]:9s} ({fp16 / best[0]:.2f}x)"
    print(line)
