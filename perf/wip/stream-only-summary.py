#!/usr/bin/env python3
"""Where the W4A16 GEMV's time goes at M = 1 and 16 (perf/wip/w4a16-stream-only-call.sh).

Per shape and M: fp16, the read floor (BM_W4A16ReadFloor's best layout, grid-strided), the same reads
in the GEMVs' order (BM_W4A16ReadFloorStrips: each warp one contiguous run), and for the engine's
default layout and the fastest as-built layout, the as-built time against the same layout with
perf/wip/w4a16-gemv-stream-only.patch (weights moved, nothing computed). The x columns are fp16 over
each time: what issue 9 reads at M = 1 (3.2x on 7b) and M = 16 (2.5x). For another patch's A/B
(w4a16-stream-only-call.sh's RIDGELINE_AB_*), NAME heads its columns, and READ_FLOOR_JSON may be "-"
(no floors, no fp16, no ratios).

    python3 perf/wip/stream-only-summary.py READ_FLOOR_JSON VARIANTS_HEAD_JSON VARIANTS_STREAM_JSON [NAME]
"""
import json
import sys


def benchmarks(path):
    """The rows of a Google Benchmark JSON; of one cut off by its time limit (Google Benchmark writes
    each row as it finishes), the rows up to the last whole one; none for "-"."""
    if path == "-":
        return []
    try:
        text = open(path).read()
    except OSError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return []
    try:
        return json.loads(text)["benchmarks"]
    except (ValueError, KeyError):
        end = text.rfind("\n    }")
        try:
            rows = json.loads(text[:end + 6] + "\n  ]\n}")["benchmarks"] if end >= 0 else []
        except (ValueError, KeyError):
            rows = []
        print(f"{path}: cut off; {len(rows)} whole rows read", file=sys.stderr)
        return rows


def cells(path, bench):
    """{(shape, m): row} of one benchmark's rows in a Google Benchmark JSON ((shape,) where it has no M)."""
    out = {}
    for b in benchmarks(path):
        parts = b["name"].split("/")
        if parts[0] == bench and "error_message" not in b:
            out[tuple(int(p) for p in parts[1:3] if p.isdigit())] = b
    return out


def layouts(row):
    return {k[3:]: v for k, v in row.items() if k.startswith("us_") and k not in ("us_best",)
            and not k.startswith("us_floor")}


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    patched = sys.argv[4] if len(sys.argv) == 5 else "stream-only"
    floor = cells(sys.argv[1], "BM_W4A16ReadFloor")
    strips = cells(sys.argv[1], "BM_W4A16ReadFloorStrips")
    head = cells(sys.argv[2], "BM_W4A16GemvVariants")
    stream = cells(sys.argv[3], "BM_W4A16GemvVariants")
    print(f"| shape | M | fp16 us | read floor us (x) | in the GEMVs' order us (x) | default: as built (x) / {patched} (x) | "
          f"fastest as built: layout, us (x) / {patched} (x) | fastest {patched}: layout, us (x) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in sorted(head):
        h, s, f = layouts(head[key]), layouts(stream.get(key, {})), floor.get(key)
        if not h:
            continue
        name = head[key].get("label", "").split()[0]
        fp16 = f.get("us_fp16", float("nan")) if f else float("nan")
        best = min(h, key=h.get)
        sbest = min(s, key=s.get) if s else None
        def us_x(us):  # "us (fp16 / us x)"
            if us != us:
                return "-"
            return f"{us:.2f} ({fp16 / us:.2f}x)" if fp16 == fp16 else f"{us:.2f}"
        fl = us_x(f["us_floor_read"]) if f else "-"
        st = us_x(strips[key[:1]]["us_floor_strips"]) if key[:1] in strips else "-"
        d = f"{us_x(h['default'])} / {us_x(s.get('default', float('nan')))}"
        b = f"{best}, {us_x(h[best])} / {us_x(s.get(best, float('nan')))}"
        sb = f"{sbest}, {us_x(s[sbest])}" if sbest else "-"
        print(f"| {name} | {key[1]} | {fp16:.2f} | {fl} | {st} | {d} | {b} | {sb} |".replace("| nan |", "| - |"))


if __name__ == "__main__":
    main()
