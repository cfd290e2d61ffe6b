#!/usr/bin/env bash
# The shared-x W4A16 GEMV at 9..16 rows, first run (perf/wip/w4a16-gemv-m16-shared-x.patch:
# kernels/w4a16_gemv_sharedx.cu, W4A16GemvKernel::shared_x, never chosen by the dispatch). From the
# Nsight Compute profile of the ring kernel at 16 rows (7b wqkv, H100, 9.48 us: x is 4.3 KB of each
# warp's 5.4 KB stages, 104 KB a block, ~1.45 blocks an SM, latency-bound with too few warps): a
# block's warps split its strips (one each), not its groups, so one x stage a block serves them all,
# and the input range is split over the blocks of a cluster instead (DSMEM reduction in rank order).
# Target ~8.7 us on that shape. Applies the patch, builds, runs its tests and the other W4A16 GEMV
# tests, then BM_W4A16GemvVariants at M = 16 on the 8 shapes (the ring's layouts, its default and the
# 30 "sx_*" layouts in one run), prints a table, reverses the patch. ~5 min from a bare machine, any card.
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-gemv-m16-shared-x.sh
source "$(dirname "$0")/device-call.sh"
patch=perf/wip/w4a16-gemv-m16-shared-x.patch
# patch_tree "" applies the patch, patch_tree -R reverses it (git apply, or patch -p1 where .git is
# missing), as scripts/gpu-kernel-ab.sh does.
patch_tree() { git apply $1 "$patch" 2>/dev/null || patch -p1 ${1:---forward} <"$patch" >>"$W/patch.log" 2>&1; }
if [ -z "${NO_BUILD:-}" ]; then  # NO_BUILD=1: the caller has applied the patch and built (a combined call)
  applied=0
  trap '[ $applied = 1 ] && patch_tree -R; tar czf "$OUT/w.tgz" -C "$OUT" w' EXIT
  card
  patch_tree "" || { echo "$patch does not apply (see patch.log)"; exit 1; }
  applied=1
  build_gpu ridgeline_gpu_tests ridgeline_bench
fi
gpu_tests tests 90 'KernelW4A16Gemv.*'
grep -E "Failure|nmse|NMSE|SharedX" "$W/tests.log" | head -20
timeout ${SX_BENCH_SECONDS:-180} build-gpu/bench/ridgeline_bench --benchmark_filter='BM_W4A16GemvVariants/[0-7]/16/' \
  --benchmark_out="$W/sharedx.json" --benchmark_out_format=json >"$W/bench.log" 2>&1
echo "bench exit $?"
grep -E "shared_x|sx_" "$W/bench.log" | head -10  # layouts that threw (their reason)
# us per layout (rows) and shape (columns): the default (the ring's choice), the fastest ring layout,
# every shared-x layout; then per shape the fastest shared-x layout against the default.
python3 - "$W/sharedx.json" <<'PY'
import json, sys
cols, table, ring_best = [], {}, {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if not b["name"].startswith("BM_W4A16GemvVariants"):
        continue
    shape = b.get("label", "?").split()[0]
    cols.append(shape)
    ring = min((v, k[3:]) for k, v in b.items() if k.startswith("us_w"))
    ring_best[shape] = ring[1]
    table.setdefault("default", {})[shape] = b["us_default"]
    table.setdefault("ring_best", {})[shape] = ring[0]
    for k, v in b.items():
        if k.startswith("us_sx_"):
            table.setdefault(k[3:], {})[shape] = v
print(f"{'us at M=16':18s}" + "".join(f"{c:>10s}" for c in cols))
for name, row in table.items():
    print(f"{name:18s}" + "".join(f"{row[c]:10.2f}" if c in row else f"{'-':>10s}" for c in cols))
print(f"{'ring_best is':18s}" + "".join(f"{ring_best[c]:>10s}" for c in cols))
for c in cols:
    x = [(row[c], name) for name, row in table.items() if name.startswith("sx_") and c in row]
    if x:
        us, name = min(x)
        print(f"{c:10s} best shared-x {name:14s} {us:7.2f} us, default {table['default'][c]:7.2f}:"
              f" {table['default'][c] / us:5.3f}x")
PY
echo "shared-x done at $(( $(date +%s) - start )) s"
