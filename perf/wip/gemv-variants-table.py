#!/usr/bin/env python3
"""One BM_W4A16GemvVariants run as a table: us per layout (rows) and shape (columns) for the default
(the ring's choice), the fastest ring layout and every layout whose counter starts with PREFIX; then
per shape the fastest PREFIX layout against the default. For the GEMV candidates' device scripts
(w4a16-m16-xregs.sh: PREFIX xregs; w4a16-gemv-m16-shared-x.sh: PREFIX sx_).

    python3 perf/wip/gemv-variants-table.py RESULTS.json PREFIX
"""
import json
import sys

path, prefix = sys.argv[1], sys.argv[2]
cols, table, ring_best = [], {}, {}
for b in json.load(open(path))["benchmarks"]:
    if not b["name"].startswith("BM_W4A16GemvVariants"):
        continue
    shape = b.get("label", "?").split()[0]
    cols.append(shape)
    ring = min((v, k[3:]) for k, v in b.items() if k.startswith("us_w"))
    ring_best[shape] = ring[1]
    table.setdefault("default", {})[shape] = b["us_default"]
    table.setdefault("ring_best", {})[shape] = ring[0]
    for k, v in b.items():
        if k.startswith("us_" + prefix):
            table.setdefault(k[3:], {})[shape] = v
print(f"{'us at M=16':18s}" + "".join(f"{c:>10s}" for c in cols))
for name, row in table.items():
    print(f"{name:18s}" + "".join(f"{row[c]:10.2f}" if c in row else f"{'-':>10s}" for c in cols))
print(f"{'ring_best is':18s}" + "".join(f"{ring_best[c]:>10s}" for c in cols))
for c in cols:
    x = [(row[c], name) for name, row in table.items() if name.startswith(prefix) and c in row]
    if x:
        us, name = min(x)
        print(f"{c:10s} best {prefix} {name:18s} {us:7.2f} us, default {table['default'][c]:7.2f}:"
              f" {table['default'][c] / us:5.3f}x")
