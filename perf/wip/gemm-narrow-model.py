#!/usr/bin/env python3
"""A bound model of gemm_narrow at 256 rows (perf/wip/gemm-narrow*.patch), to predict before measuring.

Each launch is bounded by the largest of
  - the tensor cores: every CTA runs its k_blocks stages of 4.19 MFLOP at the rate one CTA alone reaches
    (T_STAGE, from 16 CTAs at split 1: 1.8b wo's 32 stages in 28.2 us and w2's 128 in 81.2), times the
    waves its clusters need;
  - the L2 -> SM feed: every CTA reads its W box (16 KB) and its share of x (32/share KB, multicast) a
    stage, at L2_BW (what single tiles reached at 1.8b w13, split 1: 201 MB in 38.7 us less the fixed
    cost, 7.1 TB/s);
  - DRAM: W once, at DRAM_BW;
plus a fixed cost a wave (--fixed, default the same fit's 10.5 us with the first epilogue; the epilogue
patch is meant to take 3-6 us off it) and the cluster sum when split > 1 (SUM a wave, thirty-fourth:
us_narrow - us_no_sum). The cluster occupancy (how many clusters of a size fit at once) is the H100's as
measured (clusters of 1-8 singles, and pairs); fours are guessed from them (clusters of 4, 8, 12, 16 as the
singles' 4 and 8 and the pairs' 6 and 8).

  python3 perf/wip/gemm-narrow-model.py [--fixed US] [--measured bench/results/h100-gemm-narrow/one-ring-single.json.gz]

prints, per shape, the model's best (share, split) and its time next to cuBLASLt's measured time, and with
--measured a calibration table: model against each measured single-tile row.
"""
import argparse
import gzip
import json
import math

SHAPES = [("1_8b.wqkv", 2048, 4096), ("1_8b.wo", 2048, 2048), ("1_8b.w13", 2048, 16384),
          ("1_8b.w2", 8192, 2048), ("7b.wqkv", 4096, 6144), ("7b.wo", 4096, 4096), ("7b.w13", 4096, 28672),
          ("7b.w2", 14336, 4096)]
CUBLAS_US = {"1_8b.wqkv": 12.0, "1_8b.wo": 8.5, "1_8b.w13": 33.2, "1_8b.w2": 22.7, "7b.wqkv": 25.3,
             "7b.wo": 20.2, "7b.w13": 106.7, "7b.w2": 64.2}  # H100, thirty-fourth, 256 rows
ROWS, TILE_OUT, TILE_K, SMS = 256, 128, 64, 132
T_STAGE = (81.2 - 28.2) / (128 - 32)  # us: one CTA alone, a 64-input stage (0.55)
FIT_FIXED = 28.2 - 32 * T_STAGE  # us a launch besides the stages (10.5)
L2_BW = 201e6 / ((38.7 - FIT_FIXED) * 1e-6)  # bytes/s: single tiles at 1.8b w13, split 1, less the fixed cost
DRAM_BW = 3186e9 * 0.9
SUM = 3.5  # us, split > 1
# clusters of this many CTAs the H100 held at once (measured: 1-8 singles, 2-16 pairs; the rest guessed)
CLUSTERS_FIT = {1: 132, 2: 66, 3: 39, 4: 30, 5: 22, 6: 17, 7: 15, 8: 15, 10: 7, 12: 7, 14: 7, 16: 7}


def model(inp, out, share, split, fixed):
    tiles = out // TILE_OUT
    if tiles % share or share * split > 16 or split > inp // TILE_K:
        return None
    size = share * split
    fit = CLUSTERS_FIT.get(size, 0)
    clusters = tiles // share
    if fit == 0:
        return None
    waves = math.ceil(clusters / fit)
    steps = math.ceil(inp // TILE_K / split)
    tensor = steps * T_STAGE * waves
    ctas = tiles * split
    l2 = ctas * steps * (16384 + 32768 / share) / L2_BW * 1e6
    dram = (inp * out * 2 + ROWS * inp * 2) / DRAM_BW * 1e6
    t = max(tensor, l2, dram) + (fixed + (SUM if split > 1 else 0.0)) * waves
    bound = max((tensor, "tensor"), (l2, "L2"), (dram, "DRAM"))[1]
    return t, bound, waves


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--measured")
    ap.add_argument("--fixed", type=float, default=FIT_FIXED)
    a = ap.parse_args()
    if a.measured:
        print("calibration: measured single tiles (share 1) against the model")
        for b in json.load(gzip.open(a.measured) if a.measured.endswith(".gz") else open(a.measured))["benchmarks"]:
            parts = b["name"].split("/")
            if parts[2] != "256" or "us_narrow" not in b:
                continue
            name, inp, out = SHAPES[int(parts[1])]
            split = int(b["split"])
            m = model(inp, out, 1, split, a.fixed)
            if m:
                print(f"  {name:10s} split {split}: measured {b['us_narrow']:6.1f} us (no sum {b['us_no_sum']:6.1f}), "
                      f"model {m[0]:6.1f} ({m[1]}, {m[2]} wave(s))")
    print(f"best (share, split) a shape by the model at {a.fixed:.1f} us fixed a wave, against cuBLASLt (H100, 256 rows)")
    for name, inp, out in SHAPES:
        best = None
        for share in (1, 2, 4):
            for split in range(1, 9):
                m = model(inp, out, share, split, a.fixed)
                if m and (best is None or m[0] < best[0]):
                    best = (m[0], share, split, m[1])
        flops = 2.0 * ROWS * inp * out
        print(f"  {name:10s} share {best[1]} split {best[2]}: {best[0]:6.1f} us ({best[3]}-bound), "
              f"{flops / best[0] / 1e6 / 802:.2f} of 802 TFLOP/s; cuBLASLt {CUBLAS_US[name]:6.1f} us")


if __name__ == "__main__":
    main()
