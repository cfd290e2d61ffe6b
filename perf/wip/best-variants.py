#!/usr/bin/env python3
"""Per benchmark of a variants run (BM_W4A16GemvVariants, BM_W4A16GemmSplits: one us_<name> counter
per layout), one line: the shape, the baseline counter (`default`, or `auto` for the GEMM's splits),
us_fp16 where the benchmark has it, and the N fastest layouts. The launch floors and fp16 are not
layouts and are left out.

    python3 perf/wip/best-variants.py RESULTS.json [N]
"""
import json
import sys

path, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 4
for b in json.load(open(path))["benchmarks"]:
    us = {k[3:]: v for k, v in b.items() if k.startswith("us_") and not k.startswith("us_floor")}
    fp16 = us.pop("fp16", None)
    base = next((k for k in ("default", "auto") if k in us), None)
    if base is None:  # not a variants benchmark (BM_W4A16Fusions and the like in the same file)
        continue
    best = sorted(us.items(), key=lambda t: t[1])[:top]
    print(b["name"].split("/")[2], b.get("label", "?").split()[0], f"{base} {us[base]:.2f}",
          f"fp16 {fp16:.2f}" if fp16 is not None else "", " ".join(f"{k} {v:.2f}" for k, v in best))
