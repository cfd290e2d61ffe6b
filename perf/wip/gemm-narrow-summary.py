#!/usr/bin/env python3
"""The summaries of the gemm_narrow device scripts (gemm-narrow.sh, gemm-narrow-share.sh).

  gemm-narrow-summary.py bench W   one line per BM_GemmNarrow row of W/bench-*.json (or W/gemm-narrow-*.json)
  gemm-narrow-summary.py sweep W   each W/narrow*.json sweep's step and per-GEMM times
"""
import glob
import json
import sys


def bench(w):
    try:
        peak = json.load(open(f"{w}/ceilings.json"))["tflops"]
    except Exception:
        peak = float("nan")
    for f in sorted(glob.glob(f"{w}/bench-*.json") + glob.glob(f"{w}/gemm-narrow-*.json")):
        tag = f.split("/")[-1][:-5]
        try:
            benches = json.load(open(f))["benchmarks"]
        except Exception as e:
            print(f"{tag}: no JSON ({e})")
            continue
        for b in benches:
            name = b["name"].split("/manual")[0]
            if "error_occurred" in b:
                print(tag, name, "ERROR", b.get("error_message"))
                continue
            tf = b["TFLOP/s"]
            print(f"{tag:14s} {name:26s} {b.get('label', ''):9s} narrow {b['us_narrow']:7.2f} (ovl "
                  f"{b['us_overlapped']:7.2f}, no sum {b['us_no_sum']:7.2f})  cublas {b['us_cublas']:7.2f}  "
                  f"x{b['x_vs_cublas']:.2f}  {tf / peak:.2f} of peak  split {int(b['split'])}  "
                  f"clusters {int(b['clusters'])}")


def sweep(w):
    for f in sorted(glob.glob(f"{w}/narrow*.json")):
        for r in json.load(open(f)).get("runs", []):
            ops = {}
            for o in r.get("ops", []):
                k = o["name"].split(".")[-1]
                ops[k] = ops.get(k, 0.0) + o.get("time_us", 0.0)
            gemms = {k: round(v, 1) for k, v in ops.items() if k in ("wqkv", "wo", "w13", "w2", "output")}
            print(f.split("/")[-1], r["batch"], r["context"], "step", round(r["step"]["time_us"]["median"], 1),
                  gemms)


if __name__ == "__main__":
    {"bench": bench, "sweep": sweep}[sys.argv[1]](sys.argv[2])
