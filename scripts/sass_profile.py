#!/usr/bin/env python3
"""Where a kernel's instructions and stalls are, from Nsight Compute's per-instruction counters.

Reads the source page that `ncu --section SourceCounters --page source --print-source sass --csv`
prints (scripts/ncu-sass.sh runs it) and prints:
  - totals: warp instructions executed and warp-state samples (where warps sat, issued or not);
  - regions: the hottest loop (the span of instructions executed at least a quarter as often as the
    most executed one), what runs before it (set-up, prologues, the pipeline's first requests) and
    after it (epilogue), each with its instructions, samples and top stall reasons;
  - opcodes: instructions and samples per opcode (HMMA, LOP3, UBLKCP, ...);
  - the instructions that hold the most samples, with their counts.
This is how perf/NOTES.md ("Session 2026-12-01 (sixth)") found that the normed W4A16 GEMV spends 38%
of its warp time before its main loop.

  scripts/sass_profile.py SASS.csv[.gz] [--top N] [--listing]

--listing prints every instruction: index, times executed, samples, long-scoreboard and wait
samples, SASS.
"""
import argparse
import collections
import csv
import gzip
import re
import sys


def read_rows(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.reader(f))
    for i, row in enumerate(rows):
        if row and row[0] == "Address":
            return row, [r for r in rows[i + 1:] if len(r) == len(row)]
    sys.exit(f"{path}: no 'Address' header: not an ncu --page source --csv file")


def opcode(sass):
    m = re.match(r"\s*(?:@!?U?P\w+\s+)?([A-Z0-9_]+)", sass)
    return m.group(1) if m else sass.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=15, help="hottest instructions to list")
    ap.add_argument("--listing", action="store_true", help="print every instruction")
    a = ap.parse_args()

    head, rows = read_rows(a.csv)
    col = {name: i for i, name in enumerate(head)}
    for need in ("Source", "Instructions Executed", "Warp Stall Sampling (All Samples)"):
        if need not in col:
            sys.exit(f"{a.csv}: no '{need}' column (profile with --section SourceCounters)")
    stall_cols = [(name[len("stall_"):], i) for name, i in col.items()
                  if name.startswith("stall_") and "(Not Issued)" not in name]
    ins = [int(r[col["Instructions Executed"]] or 0) for r in rows]
    smp = [int(r[col["Warp Stall Sampling (All Samples)"]] or 0) for r in rows]
    src = [r[col["Source"]].strip() for r in rows]
    total_i, total_s = sum(ins), sum(smp)
    if total_i == 0:
        sys.exit(f"{a.csv}: no instruction was executed")
    print(f"warp instructions {total_i:,}, warp-state samples {total_s:,}")

    hot = max(ins)
    loop = [k for k, c in enumerate(ins) if c * 4 >= hot]
    first, last = loop[0], loop[-1]
    print(f"hottest loop: instructions {first}..{last}, the most executed {hot:,} times")
    print(f"\n{'region':8s} {'instructions':>14s} {'%':>6s} {'samples':>9s} {'%':>6s}  top stalls (samples)")
    for name, lo, hi in (("before", 0, first), ("loop", first, last + 1), ("after", last + 1, len(rows))):
        ri, rs = sum(ins[lo:hi]), sum(smp[lo:hi])
        st = collections.Counter()
        for r in rows[lo:hi]:
            for s, i in stall_cols:
                st[s] += int(r[i] or 0)
        tops = ", ".join(f"{s} {n}" for s, n in st.most_common(4) if n)
        print(f"{name:8s} {ri:14,d} {100 * ri / total_i:5.1f}% {rs:9,d} {100 * rs / max(total_s, 1):5.1f}%  {tops}")

    by_op_i, by_op_s = collections.Counter(), collections.Counter()
    for k in range(len(rows)):
        by_op_i[opcode(src[k])] += ins[k]
        by_op_s[opcode(src[k])] += smp[k]
    print(f"\n{'opcode':10s} {'instructions':>14s} {'%':>6s} {'samples %':>10s}")
    for op, n in by_op_i.most_common(25):
        print(f"{op:10s} {n:14,d} {100 * n / total_i:5.1f}% {100 * by_op_s[op] / max(total_s, 1):9.1f}%")

    print(f"\nmost sampled instructions (index, executed, samples, SASS):")
    for k in sorted(range(len(rows)), key=lambda k: -smp[k])[:a.top]:
        print(f"{k:6d} {ins[k]:10,d} {smp[k]:6d}  {src[k]}")

    if a.listing:
        lsb, wait = col.get("stall_long_sb"), col.get("stall_wait")
        print("\nindex   executed samples long_sb wait  SASS")
        for k, r in enumerate(rows):
            l = int(r[lsb] or 0) if lsb is not None else 0
            w = int(r[wait] or 0) if wait is not None else 0
            print(f"{k:5d} {ins[k]:10d} {smp[k]:6d} {l:6d} {w:5d}  {src[k]}")


if __name__ == "__main__":
    main()
