#!/usr/bin/env python3
"""Where each numeric target of the open performance issues stands, from committed measurements.

Reads the H200 baselines (reports/baselines/: the decode sweeps of both presets and the prefill
sweeps) and, optionally, Google Benchmark JSON from ridgeline_bench (BM_GemmFp16, BM_DecodeAttention,
BM_W4A16VsFp16), and prints one Markdown table: issue, target, the figure reached, met or not.
Every ratio to a ceiling is taken against the ceilings the measurement's own report carries (the
sweeps' `device.peak`); kernel benchmarks, which carry none, against --ceilings (a `ridgeline probe`
JSON) or else the 1.8b decode baseline's.

  scripts/targets.py [--baselines DIR ...] [--ceilings FILE] [BENCH.json ...]
  e.g. scripts/targets.py bench/results/h200-kernels.json bench/results/h200-decode-attention.json \\
           bench/results/h200-w4a16-vs-fp16.json

The bench rows a table needs and the benchmarks that give them:
  issue 12, GEMV-like ops:     BM_GemmFp16/<shape>/{1,2,4}
  issue 12 and 10, attention:  BM_DecodeAttention/<model>/<kv>/<ctx>/<batch>
  issue 9, W4A16 vs fp16:      BM_W4A16VsFp16/<shape>/<M>
  issue 9, the read floor:     BM_W4A16ReadFloor/<shape>/{1,16} (optional: where present, issue 9's
                               M = 1 / 16 rows and B = 1 step rows also say the most a one-launch
                               W4A16 linear could reach, every linear at the time of a kernel that
                               only reads its packed bytes)
Issue 9's B = 1 step rows always add the step with every layer linear at its roofline and the other
ops as measured (from the decode report alone), and what share of the read peak the linears would need
on average to meet the goal one op after another.
A row whose measurements are missing says so instead of a figure.

--breakdown adds, for each decode-step row that is not met, where that step's time goes: every op
summed over the layers (CUPTI kernel times, serial), its roofline efficiency, the time it would take
at its roofline and the time over it, against the step as the sweep times it (overlapped). Each
kind's ops must add up to the report's own total for that kind, or the script fails.
"""
import argparse
import gzip
import json
import os
import re
import sys


def load(path):
    """JSON, or gzipped JSON (reports/baselines and bench/results keep large runs as .json.gz)."""
    with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
        return json.load(f)


def median_us(step):
    t = step["time_us"]
    return t["median"] if isinstance(t, dict) else t


class Table:
    def __init__(self):
        self.rows = []

    def add(self, issue, target, reached, met):
        self.rows.append((issue, target, reached, "yes" if met is True else "no" if met is False else "?"))

    def missing(self, issue, target, what):
        self.rows.append((issue, target, f"not measured here ({what})", "?"))

    def markdown(self):
        out = ["| issue | target | reached | met |", "| --- | --- | --- | --- |"]
        out += [f"| {i} | {t} | {r} | {m} |" for i, t, r, m in self.rows]
        return "\n".join(out)


def decode_runs(report):
    return {(r["batch"], r["context"], r["weights"], r["kv"]): r for r in report["runs"]}


def kind_time(run, kinds):
    return sum(k["time_us"] for k in run["by_kind"] if k["kind"] in kinds)


def issue12_from_baselines(t, decode, prefill):
    for name, rep in decode.items():
        runs = decode_runs(rep)
        r = runs.get((1, 1024, "fp16", "fp16"))
        if r:
            bw = r["step"]["bandwidth_utilization"]
            t.add("12", f"{name} fp16 B=1 ctx 1024 step >= 0.90 of peak bandwidth",
                  f"{bw:.2f} ({median_us(r['step']):.0f} us)", bw >= 0.90)
            small = kind_time(r, {"norm", "rope", "swiglu", "embed", "sample", "elementwise"})
            share = small / median_us(r["step"])
            t.add("12", f"{name} fp16 B=1: norm, rope, swiglu, embed, sample <= 3% of the step",
                  f"{100 * share:.1f}% ({small:.1f} us, what is left unfused)", share <= 0.03)
        mid = sorted((b, c, r["step"]["roofline_efficiency"]) for (b, c, w, kv), r in runs.items()
                     if w == "fp16" and kv == "fp16" and 4 <= b <= 64 and c in (1024, 4096))
        if mid:
            worst = min(mid, key=lambda x: x[2])
            listed = ", ".join(f"B={b} ctx {c} {e:.2f}" for b, c, e in mid)
            t.add("12", f"{name} fp16 B=4..64 ctx 1024/4096 roofline efficiency >= 0.85",
                  f"min {worst[2]:.2f} ({listed})", worst[2] >= 0.85)
        big = [(c, r) for (b, c, w, kv), r in runs.items() if b == 256 and w == "fp16" and kv == "fp16"]
        for c, r in sorted(big, key=lambda x: x[0]):
            g = next((k for k in r["by_kind"] if k["kind"] == "gemm"), None)
            if g is None:
                continue
            t.add("12", f"{name} fp16 GEMMs at B=256 (ctx {c}) >= 0.75 of peak TFLOP/s",
                  f"{g['compute_utilization']:.2f} ({g['achieved_tflops']:.0f} TFLOP/s)",
                  g["compute_utilization"] >= 0.75)
    for name, rep in prefill.items():
        for r in rep["runs"]:
            if r["weights"] == "fp16" and r["context"] == 2048 and r["batch"] == 1:
                u = r["step"]["compute_utilization"]
                t.add("12", f"{name} prefill 1 x 2048 (fp16) >= 0.60 of peak TFLOP/s",
                      f"{u:.2f} ({median_us(r['step']) / 1000:.1f} ms)", u >= 0.60)


ISSUE9_B1_GOAL = {"1.8b": 2.6, "7b": 3.2}  # w4a16 vs fp16 decode step at B=1, ctx 1024


LINEARS = ("wqkv", "wo", "w13", "w2")
SHAPE_PREFIX = {"1.8b": "1_8b", "7b": "7b"}


def read_floors(bench, m=1):
    """{shape name: us} of BM_W4A16ReadFloor at M = m (empty where it did not run)."""
    return {SHAPES[int(k.split("/")[1])]: b["us_floor_read"] for k, b in bench.items()
            if k.startswith("BM_W4A16ReadFloor/") and int(k.split("/")[2]) == m and "us_floor_read" in b}


def linears_at_floor(run, floors, name):
    """A decode run's four layer linears with each launch at its shape's read floor: a row a linear
    (name, launches, measured us, floor us a launch, us at the floor), or None without every floor."""
    rows = []
    for lin in LINEARS:
        floor = floors.get(f"{SHAPE_PREFIX[name]}.{lin}")
        if floor is None:
            return None
        ops = [o for o in run["ops"] if op_group(o["name"]) == lin]
        rows.append((lin, len(ops), sum(o["time_us"] for o in ops), floor, len(ops) * floor))
    return rows


def step_saving(run, saved):
    """The w4a16 step with its linears `saved` us shorter, two ways: the per-op times summed (the sweep
    times ops one after another), and the measured step less the saving (optimistic: it keeps all of
    the step's overlap, part of which hides the linears' own time)."""
    return sum(o["time_us"] for o in run["ops"]) - saved, median_us(run["step"]) - saved


def step_at_floor(run, floors, name):
    """The w4a16 step with its linears at their read floors (step_saving's two ways), or None."""
    rows = linears_at_floor(run, floors, name)
    if rows is None:
        return None
    return step_saving(run, sum(us - at for _, _, us, _, at in rows))


def step_at_peak(run, goal_us):
    """A bound from the decode report alone: the w4a16 step with every layer linear at its roofline
    (at B = 1, its bytes at the report's read peak) and the other ops as measured (step_saving's two
    ways); then the share of the read peak the linears would need on average for the ops one after
    another to take goal_us (None where the other ops alone take longer), and the other ops' time."""
    lin = [o for o in run["ops"] if op_group(o["name"]) in LINEARS]
    us = sum(o["time_us"] for o in lin)
    roof = sum(o["roofline_time_us"] for o in lin)
    other = sum(o["time_us"] for o in run["ops"]) - us
    share = roof / (goal_us - other) if goal_us > other else None
    return (*step_saving(run, us - roof), share, other)


def issue9_from_baselines(t, decode, floors=None):
    goal = ISSUE9_B1_GOAL
    for name, rep in decode.items():
        runs = decode_runs(rep)
        for b in (1, 16):
            f, q = runs.get((b, 1024, "fp16", "fp16")), runs.get((b, 1024, "w4a16", "fp16"))
            if not (f and q):
                continue
            fp16_us = median_us(f["step"])
            x = fp16_us / median_us(q["step"])
            target = f"{name} decode step B={b} ctx 1024, w4a16 vs fp16"
            if b == 1:
                bound = step_at_floor(q, floors or {}, name)
                floor = (f"; every linear at its read floor: {fp16_us / bound[0]:.2f}x one op after another, "
                         f"{fp16_us / bound[1]:.2f}x overlapped" if bound else "")
                serial, overlapped, share, other = step_at_peak(q, fp16_us / goal[name])
                need = (f"the goal asks the linears for {share:.2f} of the read peak there" if share is not None
                        else f"the other ops alone take {other:.0f} us, more than the goal's "
                        f"{fp16_us / goal[name]:.0f}")
                peak = (f"; every linear at its roofline, the rest as measured: {fp16_us / serial:.2f}x one op "
                        f"after another ({need}), {fp16_us / overlapped:.2f}x overlapped")
                t.add("9", f"{target} >= {goal[name]}x", f"{x:.2f}x{floor}{peak}", x >= goal[name])
            else:
                t.add("9", f"{target} (reported, no target)", f"{x:.2f}x", None)


def op_group(name):
    return re.sub(r"^layers\.\d+\.", "", name)


def breakdown(title, run):
    """Markdown: the run's ops grouped over the layers, against the step's bound."""
    groups = {}
    for o in run["ops"]:
        g = groups.setdefault(op_group(o["name"]), {"n": 0, "us": 0.0, "bytes": 0.0, "flops": 0.0, "roof": 0.0})
        g["n"] += 1
        g["us"] += o["time_us"]
        g["bytes"] += o["bytes"]
        g["flops"] += o["flops"]
        g["roof"] += o["roofline_time_us"]
    total = sum(g["us"] for g in groups.values())
    # Each kind's ops against the report's own total for that kind (which sweep builds from them):
    # a report whose two views disagree is not broken down.
    per_kind = {}
    for o in run["ops"]:
        per_kind[o["kind"]] = per_kind.get(o["kind"], 0.0) + o["time_us"]
    kinds = {k["kind"]: k["time_us"] for k in run["by_kind"]}
    for kind in sorted(set(per_kind) | set(kinds)):
        a, b = per_kind.get(kind, 0.0), kinds.get(kind, 0.0)
        if abs(a - b) > 1e-6 * max(1.0, b):
            sys.exit(f"targets: {title}: the {kind} ops add up to {a:.3f} us, the report's {kind} total is {b:.3f}")
    step = run["step"]
    step_us, bound_us = median_us(step), step["roofline_time_us"]
    out = [f"**{title}**: step {step_us:.0f} us, {step['roofline_efficiency']:.2f} of its roofline "
           f"({bound_us:.0f} us for {step['bytes'] / 1e9:.3f} GB and {step['flops'] / 1e12:.3f} TFLOP).", "",
           "| op | launches | us | share | MB | GFLOP | roofline eff. | us at the roofline | us over it |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, g in sorted(groups.items(), key=lambda x: -x[1]["us"]):
        eff = g["roof"] / g["us"] if g["us"] > 0 else 0.0
        out.append(f"| {name} | {g['n']} | {g['us']:.1f} | {100 * g['us'] / total:.1f}% | {g['bytes'] / 1e6:.1f} | "
                   f"{g['flops'] / 1e9:.1f} | {eff:.2f} | {g['roof']:.1f} | {g['us'] - g['roof']:.1f} |")
    roof = sum(g["roof"] for g in groups.values())
    out.append(f"| the ops one after another | | {total:.1f} | | | | {roof / total:.2f} | {roof:.1f} | "
               f"{total - roof:.1f} |")
    out.append(f"| the step (overlapped) | | {step_us:.1f} | | | | {bound_us / step_us:.2f} | {bound_us:.1f} | "
               f"{step_us - bound_us:.1f} |")
    return "\n".join(out)


def breakdowns(decode):
    """The steps behind every decode-step row of the table that is not met."""
    out = []
    for name, rep in decode.items():
        runs = decode_runs(rep)
        picks = []
        r = runs.get((1, 1024, "fp16", "fp16"))
        if r and r["step"]["bandwidth_utilization"] < 0.90:
            picks.append(("B=1 ctx 1024 fp16/fp16", r))
        mid = [(r["step"]["roofline_efficiency"], b, c, r) for (b, c, w, kv), r in runs.items()
               if w == "fp16" and kv == "fp16" and 4 <= b <= 64 and c in (1024, 4096)]
        if mid:
            e, b, c, r = min(mid, key=lambda x: x[0])
            if e < 0.85:
                picks.append((f"B={b} ctx {c} fp16/fp16 (the lowest of B=4..64)", r))
        r = runs.get((256, 1024, "fp16", "fp16"))
        g = next((k for k in r["by_kind"] if k["kind"] == "gemm"), None) if r else None
        if g and g["compute_utilization"] < 0.75:
            picks.append(("B=256 ctx 1024 fp16/fp16", r))
        f, q = runs.get((1, 1024, "fp16", "fp16")), runs.get((1, 1024, "w4a16", "fp16"))
        if f and q and median_us(f["step"]) / median_us(q["step"]) < ISSUE9_B1_GOAL.get(name, 0):
            picks.append(("B=1 ctx 1024 w4a16/fp16 (issue 9's B=1 step)", q))
        out += [breakdown(f"{name} {what}", run) for what, run in picks]
    return out


def bench_rows(files):
    """Every benchmark of the files by name; a name in several files takes the newest file's row
    (by the run's date), whatever the order the files are given in."""
    docs = []
    for path in files:
        try:
            doc = load(path)
            docs.append((doc.get("context", {}).get("date", ""), path, doc["benchmarks"]))
        except (OSError, ValueError, KeyError) as e:
            print(f"targets: skipping {path}: {e}", file=sys.stderr)
    rows, dated = {}, []
    for date, path, benchmarks in sorted(docs, key=lambda d: d[0]):
        dated.append(f"{os.path.basename(path)} ({date[:10] or 'undated'})")
        for b in benchmarks:
            if b.get("run_type", "iteration") != "iteration" or "error_occurred" in b:
                continue
            rows[re.sub(r"/(manual_time|iterations:\d+.*)$", "", b["name"])] = b
    return rows, dated


SHAPES = ["1_8b.wqkv", "1_8b.wo", "1_8b.w13", "1_8b.w2", "7b.wqkv", "7b.wo", "7b.w13", "7b.w2"]


def issue12_from_bench(t, bench, peak_gbps):
    gemv = [(SHAPES[int(s)], int(m), b["GB/s"] / peak_gbps)
            for k, b in bench.items() if k.startswith("BM_GemmFp16/")
            for s, m in [k.split("/")[1:3]] if int(m) <= 4]
    target = "fp16 GEMV-like ops (M <= 4), every 1.8b and 7b shape, >= 0.90 of peak bandwidth"
    if gemv:
        worst = min(gemv, key=lambda x: x[2])
        met = sum(u >= 0.90 for _, _, u in gemv)
        t.add("12", target, f"{met} of {len(gemv)} at 0.90; min {worst[2]:.2f} ({worst[0]} M={worst[1]})",
              met == len(gemv))
    else:
        t.missing("12", target, "BM_GemmFp16")
    attn = [(k, b["GB/s"] / peak_gbps) for k, b in bench.items() if k.startswith("BM_DecodeAttention/")]
    pick = [(k, u) for k, u in attn if k.split("/")[2] == "0" and int(k.split("/")[3]) >= 4096
            and int(k.split("/")[4]) in (1, 4)]
    target = "fp16-KV decode attention, B=1 and B=4, ctx >= 4096, >= 0.70 of peak bandwidth"
    if pick:
        worst = min(pick, key=lambda x: x[1])
        met = sum(u >= 0.70 for _, u in pick)
        where = attn_name(*worst[0].split("/")[1:])
        t.add("12", target, f"{met} of {len(pick)} at 0.70; min {worst[1]:.2f} ({where})", met == len(pick))
    else:
        t.missing("12", target, "BM_DecodeAttention")


def attn_name(model, kv, ctx, batch):
    return f"{['1.8b', '7b'][int(model)]} {['fp16', 'int8', 'int4'][int(kv)]} ctx {ctx} B={batch}"


def issue10_from_bench(t, bench, peak_gbps):
    def us(model, kv, ctx, batch):
        b = bench.get(f"BM_DecodeAttention/{model}/{kv}/{ctx}/{batch}")
        return b["real_time"] if b else None

    cells = [(m, c, n) for m in (0, 1) for c in (8192, 16384, 32768) for n in (16, 64)
             if us(m, 0, c, n) is not None]
    if not cells:
        t.missing("10", "decode attention at B >= 16, ctx >= 8192", "BM_DecodeAttention")
        return
    bw = [(bench[f"BM_DecodeAttention/{m}/0/{c}/{n}"]["GB/s"] / peak_gbps, (m, 0, c, n))
          for m, c, n in cells]
    worst = min(bw)
    t.add("10", "fp16-KV decode attention, B >= 16, ctx >= 8192, >= 0.92 of peak bandwidth",
          f"min {worst[0]:.2f} ({attn_name(*worst[1])})", worst[0] >= 0.92)
    for kv, goal in ((1, 1.8), (2, 3.0)):
        xs = [(us(m, 0, c, n) / us(m, kv, c, n), (m, kv, c, n)) for m, c, n in cells if us(m, kv, c, n)]
        if not xs:
            continue
        worst = min(xs)
        short = ", ".join(f"{attn_name(*k)} {x:.2f}x" for x, k in sorted(xs) if x < goal)
        t.add("10", f"{['', 'int8', 'int4'][kv]} decode attention >= {goal}x faster than fp16 there",
              f"min {worst[0]:.2f}x" + (f"; short: {short}" if short else ""), worst[0] >= goal)


def issue9_from_bench(t, bench):
    x = {(k.split("/")[1], int(k.split("/")[2])): b["x_vs_fp16"] for k, b in bench.items()
         if k.startswith("BM_W4A16VsFp16/")}
    if not x:
        t.missing("9", "W4A16 vs fp16 GEMM/GEMV time, M = 1..64", "BM_W4A16VsFp16")
        return
    for m, goal in ((1, 3.2), (16, 2.5)):
        seven = [(x[(s, m)], SHAPES[int(s)]) for s in "4567" if (s, m) in x]
        if seven:
            worst = min(seven)
            # The read floor's ratio: fp16 of the same cell over the floor (x_floor_vs_fp16 of
            # BM_W4A16ReadFloor has its own fp16 time; this one compares like with the row).
            floor = read_floors(bench, m)
            fx = {SHAPES[int(s)]: bench[f"BM_W4A16VsFp16/{s}/{m}"]["us_fp16"] / floor[SHAPES[int(s)]]
                  for s in "4567" if (s, m) in x and SHAPES[int(s)] in floor}
            note = ""
            if worst[1] in fx:
                note = f"; the read floor allows {fx[worst[1]]:.2f}x there"
                out = ", ".join(f"{n} {v:.2f}x" for n, v in sorted(fx.items()) if v < goal)
                if out:
                    note += f"; beyond one launch's reach: {out}"
            t.add("9", f"W4A16 vs fp16 at M={m}, every 7b shape, >= {goal}x",
                  f"min {worst[0]:.2f}x ({worst[1]}){note}", worst[0] >= goal)
    slow = sorted((v, SHAPES[int(s)], m) for (s, m), v in x.items() if m <= 64 and v < 1.0)
    listed = ", ".join(f"{n} M={m} {v:.2f}x" for v, n, m in slow)
    t.add("9", "W4A16 never slower than fp16 up to M = 64, every shape",
          f"{len(slow)} slower: {listed}" if slow else "holds", not slow)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench", nargs="*", help="Google Benchmark JSON from ridgeline_bench")
    ap.add_argument("--baselines", action="append",
                    help="a folder of baseline reports; repeat it to fall back (default: the repository's "
                         "reports/baselines)")
    ap.add_argument("--prefix", default="h200", help="the baselines' file prefix")
    ap.add_argument("--ceilings", help="a `ridgeline probe` JSON for the kernel benchmarks' peak")
    ap.add_argument("--breakdown", action="store_true",
                    help="also where the time goes in each decode step whose row is not met")
    a = ap.parse_args()
    presets = {"1.8b": "internlm2-chat-1_8b", "7b": "internlm2-chat-7b"}
    decode, prefill = {}, {}
    here = os.path.dirname(os.path.abspath(__file__))
    folders = a.baselines or [os.path.join(here, "..", "reports", "baselines")]
    for name, model in presets.items():
        for d, suffix in ((decode, ""), (prefill, "-prefill")):
            found = [p for f in folders for ext in (".json.gz", ".json")
                     for p in [os.path.join(f, f"{a.prefix}-{model}{suffix}{ext}")] if os.path.exists(p)]
            if found:
                d[name] = load(found[0])
    if not decode:
        sys.exit(f"targets: no {a.prefix}-*.json(.gz) decode baselines in {', '.join(folders)}")
    if a.ceilings:
        peak_gbps, peak_from = load(a.ceilings)["read_GBps"], a.ceilings
    else:
        first = next(iter(decode.values()))
        peak_gbps, peak_from = first["device"]["peak"]["GBps"], "the decode baseline"
    t = Table()
    bench, dated = bench_rows(a.bench)
    issue12_from_baselines(t, decode, prefill)
    issue9_from_baselines(t, decode, read_floors(bench))
    issue12_from_bench(t, bench, peak_gbps)
    issue10_from_bench(t, bench, peak_gbps)
    issue9_from_bench(t, bench)
    reports = {**decode, **{k + " prefill": v for k, v in prefill.items()}}
    parts = breakdowns(decode) if a.breakdown else []  # before any output: it fails on a bad report
    commits = ", ".join(f"{n} {r['git_commit'][:7]}" for n, r in reports.items())
    print(f"Baselines: {commits}.")
    if dated:
        print(f"Kernel benchmarks: {', '.join(dated)}, against {peak_gbps:.0f} GB/s ({peak_from}).")
    print()
    print(t.markdown())
    if a.breakdown:
        print()
        print("## Where the time goes")
        for b in parts:
            print()
            print(b)


if __name__ == "__main__":
    main()
