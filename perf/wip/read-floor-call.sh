#!/usr/bin/env bash
# The read floor of one W4A16 launch (BM_W4A16ReadFloor, bench/kernels/bench_w4a16.cu) on the 8 model
# shapes at M = 1 and 16, on any Hopper card (~3 min from a bare machine, ~1 warm): a kernel that only
# reads the packed codes and records, launched overlapped as the GEMVs are, against w4a16_linear and
# fp16 in the same run. x_floor_vs_fp16 is the most any one-launch W4A16 kernel can gain over fp16 on
# that card in this harness: where it is under issue 9's 3.2x (M = 1) or 2.5x (M = 16), no kernel
# meets the row. Everything comes back in $OUT/read-floor.tgz.
#
#   OUT=/some/dir bash perf/wip/read-floor-call.sh
source "$(dirname "$0")/device-call.sh"
trap 'tar czf "$OUT/read-floor.tgz" -C "$OUT" w' EXIT
echo "card: $(card)"
build_gpu ridgeline_bench
timeout 240 build-gpu/bench/ridgeline_bench --benchmark_filter='BM_W4A16ReadFloor/' \
  --benchmark_out="$W/read-floor.json" --benchmark_out_format=json >"$W/read-floor.log" 2>&1
echo "read floor exit $? at $(( $(date +%s) - start )) s"
python3 -c 'import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if "us_floor_read" not in b: print(b["name"], b.get("error_message")); continue
    print(b["name"].split("/")[2], b.get("label"), "floor %.2f (empty %.2f) w4a16 %.2f fp16 %.2f x %.2f floor_x %.2f GB/s_floor %.0f" % (
        b["us_floor_read"], b["us_floor_overlapped"], b["us_w4a16"], b["us_fp16"], b["x_vs_fp16"],
        b["x_floor_vs_fp16"], b["GB/s_floor_read"]))' "$W/read-floor.json"
