#!/usr/bin/env python3
"""One line per BM_W4A16GemmSplits row: fp16, the automatic choice ("auto": from the wgmma route on,
the wgmma kernel at 33..127 rows on Hopper) and the tiled kernel's best split, the wgmma kernel's own
choice and best split, and the best of each against fp16.

    python3 perf/wip/wgmma-summary.py BENCH.json
"""
import json
import sys

for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if not b["name"].startswith("BM_W4A16GemmSplits"):
        continue
    us = {k[3:]: v for k, v in b.items() if k.startswith("us_")}
    tiled = min((v, k) for k, v in us.items() if k[0] in "st")
    wg = [(v, k) for k, v in us.items() if k.startswith("wg")]
    best_wg = min(wg) if wg else (float("nan"), "-")
    fp16 = us["fp16"]
    print(f"{b['label'].split()[0]:10s} M={b['name'].split('/')[2]:3s} fp16 {fp16:6.2f}  auto "
          f"{us['auto']:6.2f} tiled best {tiled[0]:6.2f} {tiled[1]:8s} ({fp16 / tiled[0]:.2f}x)  wgmma auto "
          f"{us.get('wg.auto', float('nan')):6.2f} best {best_wg[0]:6.2f} {best_wg[1]:8s} "
          f"({fp16 / best_wg[0]:.2f}x)")
