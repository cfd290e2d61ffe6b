#!/usr/bin/env python3
"""Summarize perf/wip/ria-placement-ab.sh: per configuration and variant the step median (us), the
serial attention op, and the overlapped timeline's decode-attention kernel (us, advance)."""
import collections, glob, gzip, json, os, sys

w = sys.argv[1]
per_kernel = "--kernels" in sys.argv[2:]  # also every kernel's timeline advance, per variant
rows = collections.defaultdict(lambda: collections.defaultdict(list))
kern = collections.defaultdict(dict)
for f in sorted(glob.glob(os.path.join(w, "*.json*"))):
    tag = os.path.basename(f).split(".")[0]
    if tag == "ceil":
        continue
    variant = tag.rsplit("-", 1)[0]
    d = json.load(gzip.open(f) if f.endswith(".gz") else open(f))
    for r in d.get("runs", []):
        k = (r["batch"], r["context"], r["weights"], r["kv"])
        att = sum(o["time_us"] for o in r["ops"] if o["name"].endswith("attention"))
        tl = r.get("timeline", {})
        ta = [x for x in tl.get("kernels", []) if "decode_attention_kernel" in x["name"]]
        kern[k].setdefault(variant, {x["name"][:60]: x["advance_us"] for x in tl.get("kernels", [])})
        rows[k][variant].append((r["step"]["time_us"]["median"], att, sum(x["us"] for x in ta),
                                 sum(x["advance_us"] for x in ta)))
for k in sorted(rows):
    print(k)
    base = None
    for v, xs in rows[k].items():
        step = sorted(x[0] for x in xs)[len(xs) // 2] if len(xs) % 2 else sum(sorted(x[0] for x in xs)[len(xs) // 2 - 1:len(xs) // 2 + 1]) / 2
        base = base or step
        print("  %-12s step %s (%+.1f%%)  serial attn %.0f  timeline attn %.0f adv %.0f" % (
            v, " ".join("%.0f" % x[0] for x in xs), 100 * (step / base - 1), xs[0][1], xs[0][2], xs[0][3]))
    if per_kernel:
        names = sorted({n for v in kern[k].values() for n in v})
        for n in names:
            print("    %-60s %s" % (n, " ".join("%s %.0f" % (v, kern[k][v].get(n, 0.0)) for v in kern[k])))
