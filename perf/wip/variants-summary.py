#!/usr/bin/env python3
"""One line per BM_W4A16GemvVariants row of a Google Benchmark JSON: the default layout's time, the
fastest 4/8-stage and 2-stage ring layouts ("w<warps>t<tiles>s<stages>"), and the launch floors.

    python3 perf/wip/variants-summary.py BENCH.json
"""
import json
import sys

for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if not b["name"].startswith("BM_W4A16GemvVariants"):
        continue
    ring = {k[3:]: v for k, v in b.items() if k.startswith("us_w")}
    s2 = min((v, k) for k, v in ring.items() if k.endswith("s2"))
    s48 = min((v, k) for k, v in ring.items() if not k.endswith("s2"))
    floors = " / ".join(f"{b[k]:.2f}" for k in ("us_floor_empty", "us_floor_overlapped") if k in b)
    print(f"{b['label'].split()[0]:10s} M={b['name'].split('/')[2]:2s} default {b['us_default']:6.2f}"
          f"  best s4/s8 {s48[0]:6.2f} {s48[1]:8s}  best s2 {s2[0]:6.2f} {s2[1]:8s}  floors {floors}")
