#!/usr/bin/env python3
"""What the engine's W4A16 linear runs at each (shape, rows) of a BM_W4A16GemmSplits run against the
fastest configuration there, with BM_W4A16Path's GEMV time where w4a16_use_gemv sends the rows to the
GEMV: the gain a dispatch or split rule could take, a line a cell. The GEMV rule below mirrors
kernels/w4a16_linear.cpp (w4a16_use_gemv) and kernels/w4a16.cuh's constants on a Hopper card (the wgmma
GEMM beside the GEMV); keep them in step.

    python3 perf/wip/gemm-choice-map.py SPLITS.json [PATH.json]
"""
import json
import sys

SHAPES = {"1_8b.wqkv": (2048, 4096), "1_8b.wo": (2048, 2048), "1_8b.w13": (2048, 16384),
          "1_8b.w2": (8192, 2048), "7b.wqkv": (4096, 6144), "7b.wo": (4096, 4096),
          "7b.w13": (4096, 28672), "7b.w2": (14336, 4096)}
GEMV_MAX_ROWS, TWO_TILE_MAX_OUT, FOUR_TILE_MAX_IN, FOUR_TILE_MAX_OUT = 32, 8192, 4096, 4096  # ...MaxInWgmma


def use_gemv(n, inp, out):
    if n <= 8:
        return True
    if n <= 16:
        return out <= TWO_TILE_MAX_OUT
    return n <= GEMV_MAX_ROWS and inp <= FOUR_TILE_MAX_IN and out <= FOUR_TILE_MAX_OUT


def main():
    splits = json.load(open(sys.argv[1]))["benchmarks"]
    gemv = {}
    if len(sys.argv) > 2:
        for b in json.load(open(sys.argv[2]))["benchmarks"]:
            p = b["name"].split("/")
            if p[0] == "BM_W4A16Path" and p[3] == "0":
                gemv[(b["label"].split()[0], int(p[2]))] = b["us"]
    print("rows shape | what the engine runs, us | the fastest configuration, us | engine over fastest")
    for b in splits:
        if not b["name"].startswith("BM_W4A16GemmSplits/"):
            continue
        shape, n = b["label"].split()[0], int(b["name"].split("/")[2])
        us = {k[3:]: v for k, v in b.items() if k.startswith("us_") and k != "us_fp16"}
        if use_gemv(n, *SHAPES[shape]):
            if (shape, n) not in gemv:
                continue
            now_name, now = "gemv", gemv[(shape, n)]
            us["gemv"] = now
        else:
            now_name, now = "auto", us["auto"]
        best_name, best = min(us.items(), key=lambda t: t[1])
        print(f"{n:4d} {shape:10s} {now_name} {now:7.2f} | {best_name} {best:7.2f} | {now / best - 1:+.0%}"
              f"  [fp16 {b.get('us_fp16', 0):.2f}]")


main()
