#!/usr/bin/env python3
"""Summarize perf/wip/cta-trace.patch's stamps (one .tsv per traced configuration).

Per launch (stamps of one tag, in start order, chunked by the launch's stamp count `units`), then per
kernel tag averaged over its launches (the layers), all in us:
  starts   first stamp start -> last stamp start (how long the grid took to get onto the SMs)
  early    stamps that started before the previous launch (any kernel) ended: resident early
  wait     median start -> enter (waiting in overlap_enter)
  body     median enter -> end
  span     first start -> last end
  adv      last end - the previous launch's last end (what the launch adds to the step)
  sm_max / sm_mean   units a SM ran, over the SMs the launch used (uneven placement: max >> mean)
  tail     last end - median end
  tail_sm  the SM of the last stamp's unit count (was the last SM a crowded one?)
Tags: 01NNKKEE gemv_fused<N, kNorm, Epilogue> (per warp), 02GGBBRR decode_attention<group, bits,
rope> (per block), 03000000 the split merge (per block); perf/wip/cta-trace-wgmma.patch's 04BBSSGG
w4a16_gemm_wgmma_kernel<BN> with its splits and input groups, 05KK0000 add_rmsnorm_kernel<kChunks>,
06000000 swiglu_kernel, 07TTNNxE w4a16_gemv_kernel<kTiles, kNT> (x = 1 with the norm prologue, E the
epilogue), 08TTBBxE w4a16_gemv_regs_kernel<kT, kB> (per block). Launches are told apart by tag and stamp
count (units).

  perf/wip/cta-trace-summary.py FILE.tsv [FILE.tsv ...]
"""
import collections
import csv
import statistics
import sys

NAMES = {1: "gemv_fused", 2: "decode_attention", 3: "merge"}


def tag_name(t):
    site, a, b, c = t >> 24, (t >> 16) & 255, (t >> 8) & 255, t & 255
    if site == 1:
        return f"gemv_fused<{a},{'norm' if b else 'plain'},epi{c}>"
    if site == 2:
        return f"decode_attention<g{a},{b}bit,{'rope' if c else 'q'}>"
    if site == 4:
        return f"w4a16_wgmma<{a}>,s{b},g{c}"
    if site == 5:
        return f"add_rmsnorm<{a}>"
    if site == 6:
        return "swiglu"
    if site in (7, 8):
        kind = "ring" if site == 7 else "regs"
        return f"w4a16_gemv_{kind}<{a},{b}>{',norm' if c & 16 else ''},epi{c & 15}"
    return NAMES.get(site, f"site{site}")


def launches(rows):
    by_tag = collections.defaultdict(list)
    for r in rows:
        by_tag[(r["tag"], r["units"])].append(r)
    out = []
    for (tag, n), rs in by_tag.items():
        rs.sort(key=lambda r: r["start"])
        for i in range(0, len(rs), n):
            out.append(((tag, n), rs[i:i + n]))
    out.sort(key=lambda l: min(r["start"] for r in l[1]))
    return out


def summarize(path):
    with open(path) as f:
        rows = [{"tag": int(r["tag"], 16), "unit": int(r["unit"]), "smid": int(r["smid"]), "units": int(r["units"]),
                 "start": int(r["start"]), "enter": int(r["enter"]), "end": int(r["end"])}
                for r in csv.DictReader(f, delimiter="\t")]
    if not rows:
        print(path, "no stamps")
        return
    ls = launches(rows)
    per_tag = collections.defaultdict(lambda: collections.defaultdict(list))
    prev_end = None
    t0 = min(r["start"] for r in rows)
    for tag, rs in ls:
        starts = sorted(r["start"] for r in rs)
        ends = sorted(r["end"] for r in rs)
        last_end = ends[-1]
        per_sm = collections.Counter(r["smid"] for r in rs)
        last = max(rs, key=lambda r: r["end"])
        d = per_tag[tag]
        d["starts"].append((starts[-1] - starts[0]) / 1e3)
        d["early"].append(sum(1 for s in starts if prev_end is not None and s < prev_end))
        d["wait"].append(statistics.median(r["enter"] - r["start"] for r in rs) / 1e3)
        d["body"].append(statistics.median(r["end"] - r["enter"] for r in rs) / 1e3)
        d["span"].append((last_end - starts[0]) / 1e3)
        d["adv"].append((last_end - (prev_end if prev_end is not None else starts[0])) / 1e3)
        d["sm_max"].append(max(per_sm.values()))
        d["sm_mean"].append(len(rs) / len(per_sm))
        d["sms"].append(len(per_sm))
        d["tail"].append((last_end - statistics.median(ends)) / 1e3)
        d["tail_sm"].append(per_sm[last["smid"]])
        d["units"].append(len(rs))
        prev_end = last_end if prev_end is None else max(prev_end, last_end)
    span = (max(r["end"] for r in rows) - t0) / 1e3
    print(f"{path}: {len(ls)} launches, {len(rows)} stamps, traced span {span:.1f} us")
    cols = ["units", "sms", "starts", "early", "wait", "body", "span", "adv", "sm_max", "sm_mean", "tail", "tail_sm"]
    print("  %-34s %5s " % ("kernel", "n") + " ".join("%8s" % c for c in cols))
    for tag, d in sorted(per_tag.items(), key=lambda kv: -sum(kv[1]["adv"])):
        print("  %-34s %5d " % (tag_name(tag[0]), len(d["adv"])) +
              " ".join("%8.2f" % statistics.mean(d[c]) for c in cols) + f"   adv sum {sum(d['adv']):.1f}")


for p in sys.argv[1:]:
    summarize(p)
