#!/usr/bin/env bash
# Forty-third session: the wgmma W4A16 GEMM (33..127 rows on Hopper) launched overlapped, as the GEMVs
# are (perf/wip/w4a16-wgmma-overlapped.patch, RIDGELINE_W4A16_WGMMA_OVERLAP=0|1|2 in one build: plain;
# overlapped, the next kernel released at the wait; overlapped, released after the main loop). The
# tiled kernel overlapped (twenty-fifth session) left the 1.8b steps level and made 7b B=64 5% slower;
# mode 2 tests the candidate cause, successors launched beside a one-wave GEMM. Runs, in ~5 min after
# the build: the wgmma and overlapped-bits tests at modes 1 and 2, BM_W4A16VsFp16 at 48/64 rows at
# each mode, and w4a16 decode steps at B=48/64 (ctx 1024) of both presets at each mode, compared
# against mode 0. With NO_BUILD=1 the caller has applied the patch and built (a combined call).
#
#   OUT=/some/dir RIDGELINE_GIT_COMMIT=$(git rev-parse HEAD) bash perf/wip/w4a16-wgmma-overlapped.sh
source "$(dirname "$0")/device-call.sh"
if [ -z "${NO_BUILD:-}" ]; then
  trap 'git apply -R perf/wip/w4a16-wgmma-overlapped.patch 2>/dev/null; tar czf "$OUT/wo.tgz" -C "$OUT" w' EXIT
  git apply perf/wip/w4a16-wgmma-overlapped.patch || exit 1
  card
  build_gpu ridgeline ridgeline_gpu_tests ridgeline_bench
fi
RIDGELINE_W4A16_WGMMA_OVERLAP=1 gpu_tests ov1-tests 60 \
  'KernelW4A16Gemm.Wgmma*:CudaEngine.OverlappedLaunches*:W4A16ModelShapes*' 
for m in 0 1 2; do
  RIDGELINE_W4A16_WGMMA_OVERLAP=$m timeout 90 build-gpu/bench/ridgeline_bench --benchmark_min_time=30x \
    --benchmark_filter='BM_W4A16VsFp16/[0-7]/(48|64)/' --benchmark_out="$W/ov$m-vsfp16.json" \
    --benchmark_out_format=json >"$W/ov$m-vsfp16.log" 2>&1
  echo "bench mode $m exit $?"
done
python3 - "$W" <<'PY'
import json, sys
rows = {}
for m in (0, 1, 2):
    try:
        for b in json.load(open(f"{sys.argv[1]}/ov{m}-vsfp16.json"))["benchmarks"]:
            rows.setdefault(b["name"].split("/iter")[0], {})[m] = b
    except (OSError, ValueError) as e:
        print("mode", m, e)
print("row | w4a16 us mode 0 / 1 / 2 | fp16 us")
for name, r in rows.items():
    w = " / ".join(f"{r[m].get('us_w4a16', float('nan')):.2f}" if m in r else "-" for m in (0, 1, 2))
    print(name, "|", w, "|", f"{r[0].get('us_fp16', float('nan')):.2f}" if 0 in r else "-")
PY
# The steps, most telling first, each while the call has time left (RIDGELINE_CALL_SECONDS from the
# build's start, default 560).
left() { echo $(( ${RIDGELINE_CALL_SECONDS:-560} - ($(date +%s) - start) )); }
for run in "0 7b" "1 7b" "0 1_8b" "1 1_8b" "2 7b" "2 1_8b"; do
  set -- $run
  [ "$(left)" -gt 40 ] || { echo "no time left for sweep mode $1 $2"; continue; }
  RIDGELINE_W4A16_WGMMA_OVERLAP=$1 timeout $(( $(left) - 5 )) build-gpu/ridgeline sweep \
    --model internlm2-chat-$2 --weights w4a16 --context 1024 --batch 48,64 --out "$W/ov$1-$2.json" \
    >"$W/ov$1-$2.log" 2>&1
  echo "sweep mode $1 $2 exit $? at $(( $(date +%s) - start )) s"
done
for m in 1 2; do
  for preset in 7b 1_8b; do
    [ -f "$W/ov0-$preset.json" ] && [ -f "$W/ov$m-$preset.json" ] || continue
    build-gpu/ridgeline compare "$W/ov0-$preset.json" "$W/ov$m-$preset.json" --md "$W/compare-ov$m-$preset.md" \
      >/dev/null 2>&1
    echo "mode $m against 0, $preset:"
    grep -E "^\| decode" "$W/compare-ov$m-$preset.md"
  done
done
