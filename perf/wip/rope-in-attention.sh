#!/usr/bin/env bash
# Two device calls (each under 10 minutes; the second ~2 minutes on the same warm machine), queued by
# the twenty-eighth session (no device then): perf/wip/rope-in-attention.patch, rope_kv_write's
# work inside decode attention (Fusions::rope_in_attention: every decode step whose wqkv does not
# rotate; each CTA rotates its q heads from the wqkv output, the CTA whose split holds the newest
# token writes its K/V row, fp16 or quantized, through kernels/kv_write.cuh, rope_kv_write's own
# store).
#   check   the patched tree built into build-ria (build-gpu stays HEAD's): the GPU tests that touch
#           it (KernelDecodeAttentionRope.* hold the fused kernel's pools and outputs byte for byte
#           to rope_kv_write + decode_attention; decode attention's, rope's, the engine's and the
#           quantized-KV engine tests), memcheck and racecheck over the new tests (racecheck: the
#           cos/sin table in shared memory, the race the review found), BM_DecodeAttentionRope
#           (fused against the two launches).
#   sweeps  `ridgeline sweep` with HEAD's build (build-gpu) and the patched one (build-ria), back to
#           back: B = 1, 4, 16, 64 ctx 1024 and B = 16 ctx 8192, fp16 weights, every KV format, both
#           presets, and 1.8b w4a16 B = 1, 16; then step times side by side.
# Prediction (perf/NOTES.md, "twenty-eighth"): the quantized-KV B=1 steps lose most of rope_kv_write
# (1.8b int8 / int4 1256 -> ~1150-1180 us, at or under fp16 KV's 1163; 7b 4239 / 4251 -> ~4080-4120);
# fp16 KV at B >= 4 -1..-3%; BM_DecodeAttentionRope fused <= unfused everywhere, most at B = 1. The
# risks: the writer CTA's longer start (load, quantize, fence, barrier) at B = 1, and 64 double
# sincos a CTA at large batches (before the wait, so hidden unless the grid runs a second wave).
#
#   perf/wip/rope-in-attention.sh OUTDIR check|sweeps
#
# Set RIDGELINE_GIT_COMMIT to the local HEAD first. Leaves the tree as HEAD.
set -uo pipefail
out=${1:?usage: perf/wip/rope-in-attention.sh OUTDIR check|sweeps}
stage=${2:?usage: perf/wip/rope-in-attention.sh OUTDIR check|sweeps}
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
export PATH="/usr/local/cuda/bin:$PATH"
head_build=${RIDGELINE_BUILD_DIR:-build-gpu}
new_build=build-ria
p=perf/wip/rope-in-attention.patch

build_patched() {  # targets...
  git apply "$p" || exit 1
  trap 'git apply -R "$p"' EXIT
  cmake --preset gpu -B "$new_build" >"$out/configure-new.log" 2>&1 || { tail -20 "$out/configure-new.log"; exit 1; }
  bash scripts/refresh-mtimes.sh "$new_build" >/dev/null
  cmake --build "$new_build" -j16 --target "$@" >"$out/build-new.log" 2>&1 ||
    { grep -E "error" "$out/build-new.log" | head; exit 1; }
  grep -c "warning" "$out/build-new.log" | sed 's/^/build warnings: /'
  git apply -R "$p" && trap - EXIT
}

if [ "$stage" = check ]; then
  build_patched ridgeline ridgeline_gpu_tests ridgeline_bench
  tests="$new_build/tests/ridgeline_gpu_tests"
  "$tests" --gtest_filter='KernelDecodeAttentionRope.*:KernelDecodeAttention*:KernelRope*:CudaEngine.*:CudaEngineQuantizedKv*' \
    >"$out/tests.log" 2>&1
  grep -E "^\[  PASSED|^\[  FAILED|FAILED  \]" "$out/tests.log" | head -20
  timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 "$tests" \
    --gtest_filter='KernelDecodeAttentionRope.MixedContexts*:CudaEngineQuantizedKv*' >"$out/memcheck.log" 2>&1
  echo "memcheck exit $? ($(grep -c 'Invalid' "$out/memcheck.log") invalid accesses)"
  timeout 150 compute-sanitizer --tool racecheck --error-exitcode 4 "$tests" \
    --gtest_filter='KernelDecodeAttentionRope.OtherBlockSizes*' >"$out/racecheck.log" 2>&1
  echo "racecheck exit $? ($(grep -ci 'hazard' "$out/racecheck.log") hazard lines)"
  "$new_build/bench/ridgeline_bench" --benchmark_filter=BM_DecodeAttentionRope --benchmark_min_time=30x \
    --benchmark_out="$out/bench-rope.json" --benchmark_out_format=json >"$out/bench-rope.txt" 2>&1 ||
    echo "bench failed"
  python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
t = {}
for b in json.load(open(f"{out}/bench-rope.json"))["benchmarks"]:
    parts = b["name"].split("/")  # BM_DecodeAttentionRope/model/kv/ctx/batch/fused/...
    t[(tuple(parts[1:5]), parts[5])] = b["real_time"]
for (k, f), us in sorted(t.items()):
    if f == "0" and (k, "1") in t:
        print(f"model {k[0]} kv {k[1]} ctx {k[2]} B={k[3]}: rope_kv_write + attention {us:.2f} -> fused {t[(k, '1')]:.2f} us")
PY
  exit 0
fi

[ "$stage" = sweeps ] || { echo "stage must be check or sweeps" >&2; exit 2; }
sweeps() {  # build tag
  for m in 1_8b 7b; do
    "$1/ridgeline" sweep --model internlm2-chat-$m --batch 1,4,16,64 --context 1024 --weights fp16 \
      --kv fp16,int8,int4 --out "$out/sweep-$m-$2.json" >"$out/sweep-$m-$2.log" 2>&1 || echo "sweep $m $2 failed"
    "$1/ridgeline" sweep --model internlm2-chat-$m --batch 16 --context 8192 --weights fp16 \
      --kv fp16,int8,int4 --out "$out/sweep-$m-8k-$2.json" >"$out/sweep-$m-8k-$2.log" 2>&1 || echo "sweep $m 8k $2 failed"
  done
  "$1/ridgeline" sweep --model internlm2-chat-1_8b --batch 1,16 --context 1024 --weights w4a16 \
    --kv fp16,int8,int4 --out "$out/sweep-w4-$2.json" >"$out/sweep-w4-$2.log" 2>&1 || echo "sweep w4 $2 failed"
}
[ -x "$new_build/ridgeline" ] || build_patched ridgeline
cmake --preset gpu -B "$head_build" >"$out/configure-head.log" 2>&1 || { tail -20 "$out/configure-head.log"; exit 1; }
bash scripts/refresh-mtimes.sh "$head_build" >/dev/null
cmake --build "$head_build" -j16 --target ridgeline >"$out/build-head.log" 2>&1 || { echo "HEAD build failed"; exit 1; }
sweeps "$head_build" head
sweeps "$new_build" new
python3 - "$out" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
for head in sorted(glob.glob(f"{out}/sweep-*-head.json")):
    new = head.replace("-head.json", "-new.json")
    if not os.path.exists(new):
        continue
    old = {(r["batch"], r["context"], r["weights"], r["kv"]): r["step"]["time_us"]["median"]
           for r in json.load(open(head))["runs"]}
    for r in json.load(open(new))["runs"]:
        k = (r["batch"], r["context"], r["weights"], r["kv"])
        if k in old:
            t = r["step"]["time_us"]["median"]
            print(f"B={k[0]:<3} ctx {k[1]:<5} {k[2]}/{k[3]}: {old[k]:8.1f} -> {t:8.1f} us ({t / old[k]:.3f})")
PY
